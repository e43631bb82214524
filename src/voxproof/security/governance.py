"""Governance view: voxproof's evidence for one model version mapped to the NIST AI RMF 1.0 functions
(Govern, Map, Measure, Manage).

It states which evidence exists, which is missing, and where it is; it claims nothing beyond that (a
present row says a figure was produced, not that the model is fit for a use). Inputs are records that
already exist: the registry's run snapshots and gate records (model card), the gate verdict's rule results
(gate report), and **one evidence record per run**, read from its run store (:func:`read_run_evidence`:
the provenance and status, nothing recomputed), plus optional evidence directories (an audit's
``findings.json``, a probe's ``probe.json``).

Rows: ``Govern`` release policy and gate decisions, model identity (checksum verification), the
accountability log; ``Map`` intended use, evaluation data, data audit; ``Measure`` accuracy with
intervals, slices, robustness, calibration, latency and cost, security probes; ``Manage`` release
decision, monitoring.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("voxproof.security.governance")

FUNCTIONS = ("Govern", "Map", "Measure", "Manage")
PRESENT, PARTIAL, MISSING = "present", "partial", "missing"
MONITOR_ROLES = ("monitor", "canary", "shadow", "production")
MAX_EVIDENCE_BYTES = 64 << 20  # a findings.json larger than this is linked, not read
REFERENCE = "NIST AI RMF 1.0 (NIST AI 100-1, 2023)"


@dataclass(frozen=True)
class RunEvidence:
    """What one run store says about itself (provenance and status), or why it could not be read."""

    path: str
    readable: bool
    why: str | None = None
    kind: str | None = None
    probe: str | None = None
    conditions: tuple[str, ...] = ()
    dataset: str | None = None
    status: str | None = None
    verification: str | None = None  # model_verification status recorded by eval
    files: tuple[str, ...] = ()  # report files present next to the store


@dataclass(frozen=True)
class EvidenceRow:
    function: str
    item: str
    status: str  # present | partial | missing
    detail: str
    links: tuple[str, ...] = ()


def read_run_evidence(path: str | Path) -> RunEvidence:
    """One record per run: the run store's provenance and status (no scoring)."""
    from voxproof.errors import VoxproofError
    from voxproof.run.store import RunStore

    p = Path(path)
    if not (p / "run.sqlite").is_file() and not (p.is_file() and p.name.endswith(".sqlite")):
        return RunEvidence(str(path), False, "run directory not on this machine")
    try:
        with RunStore.open(p) as store:
            prov = store.provenance or {}
            status = store.meta("status")
    except (VoxproofError, OSError, ValueError, sqlite3.Error) as exc:
        return RunEvidence(str(path), False, f"{type(exc).__name__}: {exc}"[:200])
    run_options = prov.get("run_options") or {}
    dataset = prov.get("dataset") or {}
    files = tuple(n for n in ("report.html", "summary.json", "probe.json") if (p / n).is_file())
    conds = tuple(str(c.get("name")) for c in (prov.get("conditions") or []) if isinstance(c, dict))
    return RunEvidence(
        str(path), True, kind=(prov.get("backend") or {}).get("kind"), probe=run_options.get("probe"),
        conditions=conds, dataset=dataset.get("name") or dataset.get("hash") or prov.get("dataset_hash"),
        status=status, verification=(prov.get("model_verification") or {}).get("status"), files=files)


def read_audit_evidence(path: str | Path) -> dict[str, Any] | None:
    """``{"path", "counts", "failed", "source"}`` of an audit output directory (or its findings.json),
    None when ``path`` holds no audit."""
    p = Path(path)
    f = p / "findings.json" if p.is_dir() else p
    if f.name != "findings.json" or not f.is_file():
        return None
    if f.stat().st_size > MAX_EVIDENCE_BYTES:
        return {"path": str(f), "counts": None, "failed": None, "source": None}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {"path": str(f), "counts": data.get("counts"), "failed": data.get("failed"), "source": data.get("source")}


def _link(ev: RunEvidence) -> str:
    return str(Path(ev.path) / ev.files[0]) if ev.files else ev.path


def _row(function: str, item: str, present: bool | str, detail: str, links: Iterable[str] = ()) -> EvidenceRow:
    status = present if isinstance(present, str) else (PRESENT if present else MISSING)
    return EvidenceRow(function, item, status, detail, tuple(links))


def _probe_rows(evidence: Sequence[RunEvidence]) -> EvidenceRow:
    probes = [e for e in evidence if e.readable and e.probe]
    if not probes:
        return _row("Measure", "security probes", False, "no probe run (voxproof probe inject/search/detect) is "
                    "linked to this version")
    names = sorted({str(e.probe) for e in probes})
    return _row("Measure", "security probes", True, f"{len(probes)} probe run(s): {', '.join(names)}",
                [_link(e) for e in probes])


def _audit_row(audits: Sequence[dict[str, Any]]) -> EvidenceRow:
    if not audits:
        return _row("Map", "data audit", False, "no data audit is linked (voxproof audit DATA -o DIR, then pass "
                    "--evidence DIR)")
    parts = []
    for a in audits:
        counts = a.get("counts") or {}
        worst = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no findings"
        parts.append(f"{a.get('source') or a['path']}: {worst}" + (" (failing)" if a.get("failed") else ""))
    return _row("Map", "data audit", True, "; ".join(parts), [a["path"] for a in audits])


def card_rows(details: Any, evidence: Sequence[RunEvidence], audits: Sequence[dict[str, Any]] = ()) -> list[EvidenceRow]:
    """The governance rows of a model card (``details``: the registry's ``VersionDetails``)."""
    from voxproof.run.records import CLEAN

    v = details.version
    asr = [r for r in details.runs if (r.summary or {}).get("kind", "asr") == "asr"]
    rows = []
    gates = list(details.gates)
    rows.append(_row("Govern", "release policy and gate decisions", bool(gates),
                     f"{len(gates)} gate verdict(s): {sum(g.passed for g in gates)} passed, "
                     f"{sum(not g.passed for g in gates)} failed" if gates else "no gate verdict is recorded",
                     [g.path for g in gates if g.path]))
    verified = sorted({e.verification for e in evidence if e.readable and e.verification})
    if not v.model_checksum:
        rows.append(_row("Govern", "model identity", False, "no model checksum is recorded for this version"))
    else:
        rows.append(_row("Govern", "model identity", PRESENT if "match" in verified else PARTIAL,
                         f"checksum {v.model_checksum[:12]}... recorded; run checks on load: "
                         f"{', '.join(verified) or 'n/a (no run was made with --expect-checksum/--expect-version)'}"))
    rows.append(_row("Govern", "accountability log", bool(details.history),
                     f"{len(details.history)} registry change(s) with who, when and why" if details.history
                     else "no registry history"))
    rows.append(_row("Map", "intended use", bool((v.notes or "").strip()),
                     "stated in the registration notes" if (v.notes or "").strip() else
                     "no intended use is recorded (voxproof registry register --notes)"))
    datasets = sorted({str(((r.summary or {}).get("dataset") or {}).get("name") or
                            ((r.summary or {}).get("dataset") or {}).get("hash") or "?") for r in asr})
    rows.append(_row("Map", "evaluation data", bool(asr), f"{len(asr)} run(s) on {', '.join(datasets)}" if asr
                     else "no evaluation run is attached", [r.path for r in asr if r.path]))
    rows.append(_audit_row(audits))
    conds = [c for r in asr for c in (r.summary or {}).get("conditions", [])]
    with_iv = [c for c in conds if (c.get("wer") or {}).get("low") is not None]
    run_links = [r.path for r in asr if r.path]
    rows.append(_row("Measure", "accuracy with intervals", PRESENT if with_iv else (PARTIAL if conds else MISSING),
                     f"WER with intervals for {len(with_iv)} of {len(conds)} run condition(s)" if conds
                     else "no scored run", run_links if conds else ()))
    slices = [s for c in conds for s in c.get("slices", [])]
    rows.append(_row("Measure", "slices", bool(slices), f"{len(slices)} slice figure(s), "
                     f"{sum(bool(s.get('small')) for s in slices)} too small to rank" if slices else "no slice figures",
                     run_links if slices else ()))
    perturbed = sorted({str(c.get("condition")) for c in conds if c.get("condition") != CLEAN})
    rows.append(_row("Measure", "robustness", bool(perturbed),
                     f"{len(perturbed)} perturbed condition(s)" if perturbed else "only clean speech was evaluated"))
    cal = [r for r in asr if (r.summary or {}).get("calibration")]
    rows.append(_row("Measure", "calibration", bool(cal), f"ECE in {len(cal)} run(s)" if cal else
                     "no calibration figure (the backend gives no confidences, or no run is attached)"))
    lat = [r for r in details.runs if (r.summary or {}).get("latency")]
    rows.append(_row("Measure", "latency and cost", bool(lat), f"latency in {len(lat)} run(s)" if lat else
                     "no latency figure"))
    rows.append(_probe_rows(evidence))
    rows.append(_row("Manage", "release decision", "production" in details.aliases or bool(gates),
                     ("this version is production" if "production" in details.aliases else
                      f"aliases: {', '.join(details.aliases) or 'none'}") + (f"; latest gate {'passed' if gates[-1].passed else 'failed'}" if gates else "")))
    mon = [r for r in details.runs if r.role in MONITOR_ROLES]
    rows.append(_row("Manage", "monitoring", bool(mon), f"{len(mon)} run(s) attached as {', '.join(sorted({r.role for r in mon}))}"
                     if mon else "no monitoring evidence (no run attached with role monitor, canary or shadow)",
                     [r.path for r in mon if r.path]))
    unreadable = [e for e in evidence if not e.readable]
    if unreadable:
        log.info("governance: %d run store(s) not read: %s", len(unreadable), unreadable[0].why)
    return rows


def gate_rows(verdict: Any, evidence: Sequence[RunEvidence], gate_json: str | None = None) -> list[EvidenceRow]:
    """The governance rows of a gate report, from the verdict's rule results and the two runs' records."""
    def applicable(group: str) -> list[Any]:
        return [r for r in verdict.rules if r.group == group and r.verdict != "not_applicable"]

    def decided(rules: list[Any]) -> str:
        return PRESENT if any(r.verdict in ("pass", "fail") for r in rules) else (PARTIAL if rules else MISSING)

    pol = verdict.policy or {}
    mv = verdict.model_verification
    cand = next((e for e in evidence if e.path == str(verdict.candidate.get("path"))), None)
    rows = [
        _row("Govern", "release policy and gate decisions", True,
             f"policy {pol.get('source')}, decision {pol.get('decision')} at {pol.get('confidence')}; "
             f"{len(verdict.rules)} rule(s)", [gate_json] if gate_json else ()),
        _row("Govern", "model identity", {"match": PRESENT, "overridden": PARTIAL}.get((mv or {}).get("status"), MISSING),
             f"candidate checksum {mv['status']}: expected {mv.get('expected')}, run recorded {mv.get('actual')}"
             if mv and mv.get("status") in ("match", "overridden") else
             f"the candidate model (run records checksum {str(verdict.candidate.get('model_checksum'))[:12]}...) was "
             "not verified against a registered checksum (gate --expect-checksum or --expect-version)"),
        _row("Map", "evaluation data", bool(verdict.candidate.get("dataset_hash")),
             f"both runs on dataset {str(verdict.candidate.get('dataset_hash'))[:12]}..., "
             f"{verdict.candidate.get('rows')} candidate row(s)"),
        _row("Map", "data audit", False, "a gate holds no data audit; link one in the model card "
             "(voxproof card VERSION --evidence AUDIT_DIR)"),
    ]
    cand_links = [_link(cand)] if cand is not None and cand.readable else []
    for item, groups in (("accuracy with intervals", ("wer.overall",)), ("slices", ("wer.slice",)),
                         ("robustness", ("wer.condition",)), ("latency and cost", ("latency", "cost"))):
        rules = [r for g in groups for r in applicable(g)]
        status = decided(rules)
        detail = (", ".join(f"{r.rule}: {r.verdict}" for r in rules[:6]) + (" ..." if len(rules) > 6 else "")
                  if rules else "no rule of the policy applies to these runs")
        rows.append(_row("Measure", item, status, detail, cand_links if rules else ()))
    rows.append(_probe_rows(evidence))
    rows.append(_row("Manage", "release decision", True, ("passed" if verdict.passed else
                     f"failed: {', '.join(r.rule for r in verdict.failing())}")))
    rows.append(_row("Manage", "monitoring", False, "a gate has no monitoring evidence; see the model card"))
    if cand is not None and not cand.readable:
        log.info("governance: candidate run not read: %s", cand.why)
    return rows


def markdown(rows: Sequence[EvidenceRow]) -> list[str]:
    """Markdown lines: a table per the four functions, escaped through :mod:`voxproof.markdown`."""
    from voxproof.markdown import md_text

    out = [(f"Evidence mapped to the {REFERENCE} functions. A present row means voxproof produced that "
            "evidence for this version, not that a risk is acceptable; missing rows are gaps."), "",
           "| function | evidence | status | detail | where |", "|---|---|---|---|---|"]
    for f in FUNCTIONS:
        for r in (r for r in rows if r.function == f):
            where = ", ".join(md_text(x) for x in r.links[:3]) + (" ..." if len(r.links) > 3 else "") or "-"
            out.append(f"| {f} | {md_text(r.item)} | {r.status} | {md_text(r.detail)} | {where} |")
    n = {s: sum(r.status == s for r in rows) for s in (PRESENT, PARTIAL, MISSING)}
    out += ["", f"{n[PRESENT]} present, {n[PARTIAL]} partial, {n[MISSING]} missing."]
    return out


def html(rows: Sequence[EvidenceRow]) -> str:
    """An HTML table (shared report components) for the gate page."""
    from voxproof.report.html import badge, esc, paragraph, table

    kind = {PRESENT: "pass", PARTIAL: "warn", MISSING: "fail"}
    body = [[f, r.item, (badge(r.status, kind[r.status]), r.status), r.detail,
             ("<br>".join(esc(x) for x in r.links[:3]) or "–", ", ".join(r.links))]
            for f in FUNCTIONS for r in rows if r.function == f]
    return paragraph(f"Evidence mapped to the {REFERENCE} functions. Present means the figure exists for this "
                     "candidate, not that a risk is acceptable; missing rows are gaps.", "muted") + table(
        ["function", "evidence", "status", "detail", "where"], body, sortable=False)
