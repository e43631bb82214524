"""Model card: a Markdown page for one registered version, from the registry and its runs' summaries.

Stage: registry output. :func:`run_summary` takes the compact snapshot of a run that the registry
stores when a run is attached (scores with intervals per condition and slice, coverage, latency,
calibration, TTS figures), so a card can be written on a machine that does not have the run
directories. :func:`render_card` writes the sections: model details, intended use, data, metrics,
slices, robustness, calibration, latency and cost, known failure modes, gate history and the
registry history. A section with no data says so. Every name, note, tag or reason comes from data,
so it goes through :mod:`voxproof.markdown` (escaped, one line, no links or images).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from voxproof.markdown import md_code, md_text
from voxproof.registry.models import VersionDetails

log = logging.getLogger("voxproof.registry")

SNAPSHOT_SCHEMA = 1


def run_summary(store: Any, run_dir: Path | None = None, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """A compact, JSON-ready summary of a run for the registry (scores are computed here, from rows)."""
    from voxproof.run.records import CLEAN

    prov = store.provenance
    backend = prov.get("backend") or {}
    kind = backend.get("kind") or "asr"
    conds = [n for n, _ in store.conditions()] or sorted({r.condition for r in store.rows()})
    main = CLEAN if CLEAN in conds else (conds[0] if conds else CLEAN)
    out: dict[str, Any] = {
        "schema": SNAPSHOT_SCHEMA, "kind": kind, "path": None if run_dir is None else str(run_dir),
        "backend": {k: backend.get(k) for k in ("name", "model", "model_checksum", "options")},
        "dataset": prov.get("dataset") or {"hash": prov.get("dataset_hash")},
        "normalizer": prov.get("normalizer"), "seed": prov.get("seed"), "created_at": prov.get("created_at"),
        "machine": (prov.get("machine") or {}).get("cpu_model"), "status": store.meta("status"),
        "resources": store.meta("resources") or {}, "main_condition": main, "conditions": [],
    }
    if kind == "asr":
        try:
            from voxproof.metrics.scoring import score_run

            norm = (prov.get("normalizer") or {}).get("name") or "whisper-en"
            scores = score_run(store, norm, n_resamples=n_resamples, seed=seed)
            for c in scores.conditions:
                out["conditions"].append({
                    "condition": c.condition, "wer": c.wer.to_dict(), "cer": c.cer.to_dict(),
                    "utterances": c.utterances, "speakers": c.speakers, "ref_words": c.ref_words,
                    "coverage": c.coverage.to_dict(),
                    "slices": [{"key": s.key, "value": s.value, "utterances": s.utterances,
                                "wer": s.wer.to_dict(), "small": s.small} for s in c.slices],
                    "warnings": list(c.warnings),
                })
        except Exception as exc:  # noqa: BLE001 - a card section says what is missing; the attach must not fail
            log.warning("could not score the run for the registry snapshot: %s", exc)
            out["scores_error"] = f"{type(exc).__name__}: {exc}"
        try:
            from voxproof.metrics.calibration import calibrate_store

            cal = calibrate_store(store, condition=main, n_boot=200, seed=seed)
            out["calibration"] = None if not cal.available or cal.word is None else {
                "ece": cal.word.ece, "interval": list(cal.word.intervals.get("ece", ())), "words": cal.word.n,
                "auroc_error": cal.word.auroc_error,
            }
        except Exception as exc:  # noqa: BLE001 - same: the snapshot records the failure
            out["calibration"] = None
            out["calibration_error"] = f"{type(exc).__name__}: {exc}"
    else:
        from voxproof.gate.tts import tts_figures

        figs = tts_figures(store, list(store.rows()))
        out["tts"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in figs.items()}
    try:
        from voxproof.metrics.latency import latency_from_store

        lat = latency_from_store(store, condition=main, n_boot=200, seed=seed)
        out["latency"] = {"n": lat.n, "p50": lat.latency_percentiles[50], "p90": lat.latency_percentiles[90],
                          "rtf": lat.rtf, "rtfx": lat.rtfx, "rtfx_interval": list(lat.rtfx_interval),
                          "model_load_seconds": lat.model_load_seconds, "workers": lat.conditions.workers,
                          "cpu_model": lat.conditions.cpu_model}
    except Exception as exc:  # noqa: BLE001 - same: the snapshot records the failure
        out["latency"] = None
        out["latency_error"] = f"{type(exc).__name__}: {exc}"
    return out


# -- rendering ----------------------------------------------------------------------------------
def _pct(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{float(x) * 100:.1f}%"


def _iv(d: dict[str, Any] | None) -> str:
    if not d or d.get("estimate") is None:
        return "-"
    level = d.get("level")
    lv = f"{level:.0%} " if isinstance(level, (int, float)) else ""
    if d.get("low") is None or d.get("high") is None:
        return _pct(d["estimate"])
    return f"{_pct(d['estimate'])} ({lv}CI {_pct(d['low'])}-{_pct(d['high'])})"


def _asr_runs(details: VersionDetails) -> list[Any]:
    return [r for r in details.runs if r.summary.get("kind", "asr") == "asr"]


def render_card(details: VersionDetails, *, generated_at: str = "", evidence_dirs: tuple[str, ...] = ()) -> str:
    """The model card of ``details`` as Markdown. ``evidence_dirs``: audit output directories and probe
    run directories to link in the governance section (attached runs are read from their stores)."""
    v = details.version
    lines: list[str] = []
    add = lines.append
    t = md_text
    add(f"# Model card: {t(v.name)}")
    add("")
    add(f"Aliases: {', '.join(md_code(a) for a in details.aliases) or 'none'}."
        + (f" Generated {generated_at} by voxproof from the registry." if generated_at else ""))
    add("")
    add("## Model details")
    add("")
    add(f"- Backend: {md_code(v.backend)} ({'speech recognition' if v.kind == 'asr' else 'text to speech'})")
    add(f"- Options: {', '.join(md_code(f'{k}={val}') for k, val in sorted(v.options.items())) or 'backend defaults'}")
    add(f"- Model checksum: {md_code(v.model_checksum or 'not recorded')}")
    add(f"- Registered {t(v.created_at)} by {t(v.created_by)}")
    add("")
    add("## Intended use")
    add("")
    add(t(v.notes, limit=4000) if v.notes else "Not stated. Record it with `voxproof registry register --notes`.")
    add("")
    runs = list(details.runs)

    add("## Data")
    add("")
    if not runs:
        add("No runs are attached, so nothing is known about the data this version was evaluated on. Attach "
            "one with `voxproof registry attach-run`.")
    else:
        add("| run | role | dataset | utterances | dataset hash | conditions | normaliser |")
        add("|---|---|---|---|---|---|---|")
        for r in runs:
            s = r.summary
            ds = s.get("dataset") or {}
            conds = ", ".join(t(c["condition"]) for c in s.get("conditions", [])) or "-"
            norm = s.get("normalizer") or {}
            add(f"| #{r.id} | {t(r.role)} | {t(ds.get('source', '-'))} | {t(ds.get('utterances', '-'))} | "
                f"{md_code(str(ds.get('hash', '-'))[:16], in_table=True)} | {conds} | "
                f"{t(norm.get('name', '-'))}\\@{t(norm.get('version', '-'))} |")
    add("")

    add("## Metrics")
    add("")
    asr = _asr_runs(details)
    metric_rows = [(r, c) for r in asr for c in r.summary.get("conditions", [])
                   if c["condition"] == r.summary.get("main_condition")]
    if v.kind == "tts":
        tts_runs = [r for r in runs if r.summary.get("tts")]
        if not tts_runs:
            add("No data: no text-to-speech run with MOS or intelligibility is attached.")
        for r in tts_runs:
            tts = r.summary["tts"]
            mos = tts.get("mos")
            intel = tts.get("intelligibility")
            add(f"- Run #{r.id}: predicted MOS {mos[0]:.2f} over {mos[1]} clips" if mos else
                f"- Run #{r.id}: no MOS ({t(tts.get('mos_reason', ''))})")
            add(f"- Run #{r.id}: intelligibility {_pct(intel[0])} over {intel[1]} prompts" if intel else
                f"- Run #{r.id}: no intelligibility ({t(tts.get('intelligibility_reason', ''))})")
    elif not metric_rows:
        add("No data: no scored recognition run is attached.")
    else:
        add("Corpus-level WER (edits / reference words) with bootstrap intervals.")
        add("")
        add("| run | condition | WER | CER | utterances | words | coverage |")
        add("|---|---|---|---|---|---|---|")
        for r, c in metric_rows:
            cov = c.get("coverage") or {}
            add(f"| #{r.id} | {t(c['condition'])} | {_iv(c.get('wer'))} | {_iv(c.get('cer'))} | {t(c.get('utterances'))} "
                f"| {t(c.get('ref_words'))} | {t(cov.get('ok', '-'))}/{t(cov.get('total', '-'))} |")
    add("")

    add("## Slices")
    add("")
    slice_lines = []
    for r, c in metric_rows:
        for s in c.get("slices", []):
            small = " (small: read with care)" if s.get("small") else ""
            slice_lines.append(f"| #{r.id} | {t(s['key'])} | {t(s['value'])} | {_iv(s.get('wer'))}{small} | "
                               f"{t(s['utterances'])} |")
    if slice_lines:
        add("| run | key | value | WER | utterances |")
        add("|---|---|---|---|---|")
        lines.extend(slice_lines)
    else:
        add("No data: the attached runs have no speaker or tag slices.")
    add("")

    add("## Robustness")
    add("")
    rob = []
    for r in asr:
        s = r.summary
        main = next((c for c in s.get("conditions", []) if c["condition"] == s.get("main_condition")), None)
        for c in s.get("conditions", []):
            if main is None or c is main:
                continue
            delta = None
            if c["wer"].get("estimate") is not None and main["wer"].get("estimate") is not None:
                delta = c["wer"]["estimate"] - main["wer"]["estimate"]
            rob.append(f"| #{r.id} | {t(c['condition'])} | {_iv(c.get('wer'))} | "
                       f"{'-' if delta is None else f'{delta * 100:+.1f} pts'} |")
    if rob:
        add("| run | condition | WER | change vs clean |")
        add("|---|---|---|---|")
        lines.extend(rob)
    else:
        add("No data: no attached run was evaluated under perturbations (`voxproof eval --suite ...`).")
    add("")

    add("## Calibration")
    add("")
    cal = [(r, r.summary.get("calibration")) for r in asr if r.summary.get("calibration")]
    if cal:
        for r, c in cal:
            iv = c.get("interval") or []
            ci = f" (CI {iv[0]:.3f}-{iv[1]:.3f})" if len(iv) == 2 else ""
            add(f"- Run #{r.id}: word-level ECE {c['ece']:.3f}{ci} over {c['words']} words; AUROC of low confidence "
                f"for finding wrong words {c.get('auroc_error', float('nan')):.3f}")
    else:
        add("No data: no attached run has word confidences to calibrate.")
    add("")

    add("## Latency and cost")
    add("")
    lat = [(r, r.summary.get("latency")) for r in runs if r.summary.get("latency")]
    if lat:
        add("| run | p50 latency | p90 latency | RTF | RTFx (CI) | model load | workers | CPU |")
        add("|---|---|---|---|---|---|---|---|")
        for r, d in lat:
            ci = d.get("rtfx_interval") or [None, None]
            load = d.get("model_load_seconds")
            add(f"| #{r.id} | {d['p50']:.3f}s | {d['p90']:.3f}s | {d['rtf']:.3f} | {d['rtfx']:.1f} "
                f"({ci[0]:.1f}-{ci[1]:.1f}) | {'-' if load is None else f'{load:.2f}s'} | {t(d.get('workers'))} | "
                f"{t(d.get('cpu_model'))} |")
        add("")
        add("Cost: multiply your price per machine-hour by RTF (machine seconds per audio second); voxproof "
            "knows no prices.")
    else:
        add("No data: no attached run has processing times.")
    add("")

    add("## Known failure modes")
    add("")
    failures = _failure_modes(details, metric_rows, asr)
    lines.extend(failures or [("None found in the attached runs and gate verdicts (which says little when "
                               "there are few of them).")])
    add("")

    add("## Governance (NIST AI RMF)")
    add("")
    from voxproof.security import governance as gov

    run_evidence = [gov.read_run_evidence(r.path) for r in details.runs if r.path]
    audits = []
    for d in evidence_dirs:
        audit = gov.read_audit_evidence(d)
        if audit is not None:
            audits.append(audit)
        else:
            run_evidence.append(gov.read_run_evidence(d))
    lines.extend(gov.markdown(gov.card_rows(details, run_evidence, audits)))
    add("")
    add("## Gate history")
    add("")
    if details.gates:
        add("| # | candidate | baseline | verdict | failing rules | when |")
        add("|---|---|---|---|---|---|")
        for g in details.gates:
            add(f"| {g.id} | {t(g.candidate)} | {t(g.baseline)} | {'pass' if g.passed else 'FAIL'} | "
                f"{', '.join(t(r) for r in g.failed_rules()) or '-'} | {t(g.created_at[:19])} |")
    else:
        add("No data: no gate verdict involves this version.")
    add("")
    add("## Registry history")
    add("")
    if details.history:
        for h in details.history:
            why = f" Why: {t(h.reason)}" if h.reason else ""
            add(f"- {t(h.at[:19])} {t(h.actor)}: {t(h.describe())}.{why}")
    else:
        add("No entries.")
    add("")
    return "\n".join(lines)


def _failure_modes(details: VersionDetails, metric_rows: list[Any], asr: list[Any]) -> list[str]:
    out = []
    for r, c in metric_rows:
        overall = (c.get("wer") or {}).get("estimate")
        worst = sorted((s for s in c.get("slices", []) if not s.get("small") and s["wer"].get("estimate") is not None),
                       key=lambda s: -s["wer"]["estimate"])
        for s in worst[:3]:
            if overall is not None and s["wer"]["estimate"] > 1.5 * overall and s["wer"]["estimate"] - overall > 0.02:
                out.append(f"- Run #{r.id}: {md_text(s['key'])}={md_text(s['value'])} has WER {_iv(s['wer'])}, against "
                           f"{_pct(overall)} overall.")
        errors = (c.get("coverage") or {}).get("by_error_type") or {}
        if errors:
            out.append(f"- Run #{r.id}: failed utterances by type: "
                       + ", ".join(f"{md_text(k)} {md_text(n)}" for k, n in sorted(errors.items())) + ".")
    for r in asr:
        s = r.summary
        main = next((c for c in s.get("conditions", []) if c["condition"] == s.get("main_condition")), None)
        if main is None:
            continue
        for c in s.get("conditions", []):
            if c is main:
                continue
            a, b = main["wer"].get("estimate"), c["wer"].get("estimate")
            if a is not None and b is not None and b - a > 0.10:
                out.append(f"- Run #{r.id}: under {md_text(c['condition'])} WER rises to {_pct(b)} (from {_pct(a)} clean).")
    for g in details.gates:
        if not g.passed and g.candidate == details.version.name:
            out.append(f"- Gate #{g.id} against {md_text(g.baseline)} failed: "
                       f"{', '.join(md_text(r) for r in g.failed_rules())}.")
    return out
