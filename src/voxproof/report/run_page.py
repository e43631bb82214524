"""The HTML page of one run: headline numbers, conditions, slices, worst utterances with coloured
alignments, error distribution and confusions, robustness and deployment figures, provenance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from voxproof.report.html import (
    Page,
    alignment_html,
    cards,
    esc,
    fmt_interval,
    fmt_pct,
    interval_bar,
    json_block,
    kv_table,
    png_img,
    table,
)
from voxproof.run.store import RunStore

log = logging.getLogger("voxproof.report")

MAX_UTTERANCE_ROWS = 2000


def _headline(summary: dict[str, Any]) -> str:
    scores = summary["scores"]
    if not scores["conditions"]:
        return "<p class='err'>No rows were stored.</p>"
    first = scores["conditions"][0]
    level = int(round(100 * scores["intervals"]["level"]))
    lat = (summary.get("latency") or {}).get(first["condition"]) or {}
    cov = first["coverage"]
    items = [
        ("WER (" + first["condition"] + ")", fmt_pct(first["wer"]["estimate"]),
         f"{level}% CI {fmt_pct(first['wer']['low'], 1)} – {fmt_pct(first['wer']['high'], 1)}"),
        ("CER", fmt_pct(first["cer"]["estimate"]), f"{level}% CI {fmt_pct(first['cer']['low'], 1)} – {fmt_pct(first['cer']['high'], 1)}"),
        ("raw WER (no normaliser)", fmt_pct(first["raw_wer"]), "case and punctuation count"),
        ("coverage", f"{cov['ok']}/{cov['total']}", f"{cov['total'] - cov['ok']} error rows"),
        ("reference words", str(first["ref_words"]), f"{first['utterances']} utterances, {first['speakers']} speakers"),
        ("audio", f"{first['audio_hours'] * 60:.1f} min", ""),
    ]
    if isinstance(lat, dict) and lat.get("rtfx"):
        items.append(("RTFx", f"{lat['rtfx']:.1f}", f"latency p90 {lat['latency_seconds'].get('p90', 0):.2f} s"))
    return cards(items)


def _conditions(summary: dict[str, Any]) -> str:
    conds = summary["scores"]["conditions"]
    scale = max([c["wer"]["high"] or c["wer"]["estimate"] or 0 for c in conds] + [0.01]) * 1.05
    rows = []
    for c in conds:
        w = c["wer"]
        bar = interval_bar(w["estimate"] or 0, w["low"] or 0, w["high"] or 0, scale) if w["estimate"] is not None else ""
        errors = ", ".join(f"{k} {v}" for k, v in sorted(c["coverage"]["by_error_type"].items())) or "none"
        rows.append([
            c["condition"], (esc(fmt_interval(w)), w["estimate"] or 0), (bar, w["estimate"] or 0), fmt_interval(c["cer"]),
            fmt_pct(c["raw_wer"]), fmt_pct(c["mean_utterance_wer"]),
            f"{c['coverage']['ok']}/{c['coverage']['total']}", errors,
        ])
    return table(["condition", "WER (corpus)", "interval", "CER", "raw WER", "mean utterance WER (not corpus)",
                  "coverage", "error rows"], rows)


def _slices(summary: dict[str, Any]) -> str:
    parts = []
    for c in summary["scores"]["conditions"]:
        if not c["slices"]:
            continue
        scale = max([s["wer"]["high"] or s["wer"]["estimate"] or 0 for s in c["slices"]] + [0.01]) * 1.05
        rows = []
        for s in sorted(c["slices"], key=lambda s: (s["key"], -(s["wer"]["estimate"] or 0))):
            w = s["wer"]
            rows.append([
                s["key"], s["value"], s["utterances"], s["counts"]["hits"] + s["counts"]["substitutions"] + s["counts"]["deletions"],
                (esc(fmt_interval(w)), w["estimate"] or 0),
                (interval_bar(w["estimate"] or 0, w["low"] or 0, w["high"] or 0, scale), w["estimate"] or 0),
                s.get("warning") or "",
            ])
        gaps = "".join(
            f"<p>gap by <b>{esc(g['key'])}</b>: worst {esc(g['worst'])} vs best {esc(g['best'])}: {esc(fmt_interval(g['gap']))}</p>"
            for g in c["gaps"]
        )
        parts.append(f"<h3>{esc(c['condition'])}</h3>{gaps}" + table(
            ["slice by", "value", "utterances", "words", "WER", "interval", "note"], rows, numeric=(2, 3)))
    return "".join(parts) or "<p>No speaker or tag metadata on the rows.</p>"


def _utterances(store: RunStore, normalizer: str) -> tuple[str, str]:
    from voxproof.metrics.scoring import scorable, top_confusions, utterance_alignment

    rows = list(store.rows())
    scored = []
    for row in rows:
        if scorable(row):
            a = utterance_alignment(row, normalizer)
            scored.append((a.wer, row, a))
        else:
            scored.append((float("inf"), row, None))
    scored.sort(key=lambda t: (-t[0] if t[0] == t[0] else 0, t[1].condition, t[1].utt_id))
    table_rows = []
    for wer, row, a in scored[:MAX_UTTERANCE_ROWS]:
        if a is None:
            table_rows.append([
                row.utt_id, row.condition, row.speaker or "", ("<span class='err'>error</span>", 1e9), "",
                (f"<span class='err'>{esc(row.error_type)}: {esc(row.error_message)}</span>", row.error_type or ""),
            ])
            continue
        c = a.counts
        table_rows.append([
            row.utt_id, row.condition, row.speaker or "", (fmt_pct(wer, 1), wer),
            f"S{c.substitutions} D{c.deletions} I{c.insertions} / {c.ref_len}",
            (alignment_html(a.ops), wer),
        ])
    note = f"<p>{len(rows)} rows, worst first" + (
        f" (first {MAX_UTTERANCE_ROWS} shown)" if len(rows) > MAX_UTTERANCE_ROWS else "") + \
        ". Colours: <span class='ali'><span class='S'>substitution</span> <span class='D'>deletion</span> " \
        "<span class='I'>insertion</span></span>. Click a header to sort.</p>"
    utt_html = note + table(["utterance", "condition", "speaker", "WER", "edits", "alignment (normalised)"], table_rows)
    conf = top_confusions(rows, normalizer, n=25)
    conf_html = table(["edit", "reference", "hypothesis", "count"],
                      [[c["op"], c["ref"] or "", c["hyp"] or "", c["count"]] for c in conf], numeric=(3,))
    return utt_html, conf_html


def _distribution(summary: dict[str, Any]) -> str:
    parts = []
    for c in summary["scores"]["conditions"]:
        d = c["error_distribution"]
        bins, counts = d.get("wer_bins") or [], d.get("wer_bin_counts") or []
        rows = []
        for i, n in enumerate(counts):
            lo, hi = bins[i], bins[i + 1]
            label = f"{100 * lo:.0f}–{'∞' if hi is None else f'{100 * hi:.0f}'} %"
            rows.append([label, (f"<span class='bar' style='width:{4 * n}px'></span> {n}", n)])
        parts.append(
            f"<h3>{esc(c['condition'])}</h3><p>substitutions {d['substitutions']}, deletions {d['deletions']}, "
            f"insertions {d['insertions']}; {d['correct_utterances']} utterances without an error.</p>"
            + table(["utterance WER", "utterances"], rows, sortable=False)
        )
    return "".join(parts)


def _robustness(summary: dict[str, Any], run: Path) -> str | None:
    rob = summary.get("robustness")
    if not isinstance(rob, dict) or not rob:
        return None
    if rob.get("available") is False:
        return f"<p class='warn'>{esc(rob.get('reason'))}</p>"
    body = ""
    try:
        from voxproof.metrics.robustness import robustness_curves_png

        body += png_img(robustness_curves_png(rob), "WER against severity per condition family")
    except Exception as exc:  # the figure is optional; the numbers below are not
        log.warning("robustness figure failed: %s", exc)
    return body + json_block(rob)


def _add_deployment(page: Page, summary: dict[str, Any], section: Any) -> None:
    """The deployment section: complete with its heading when ``section`` draws, else a warning."""
    if section is None:
        reason = (summary.get("deployment") or {}).get("reason")
        if reason:
            page.add("Deployment", f"<p class='warn'>{esc(reason)}</p>", "deployment")
        return
    from voxproof.report.deployment import deployment_html

    try:
        page.sections.append(deployment_html(section))  # a complete section with its own heading
    except Exception as exc:  # figures are optional; summary.json keeps the numbers
        log.warning("deployment section failed: %s", exc)
        page.add("Deployment", f"<p class='warn'>deployment figures failed: {esc(exc)}</p>", "deployment")


def render_run_page(summary: dict[str, Any], run: str | Path, deployment: Any = None) -> str:
    """The HTML page; ``deployment`` is the run's DeploymentSection (figures are drawn from it)."""
    run = Path(run)
    prov = summary.get("provenance") or {}
    backend = prov.get("backend") or {}
    norm = summary["scores"]["normalizer"]
    page = Page(
        f"voxproof run: {backend.get('name', '?')} on {Path(str((prov.get('dataset') or {}).get('source', '?'))).name}",
        f"{run} · normaliser {norm.get('name')}@{norm.get('version')} · voxproof {prov.get('voxproof_version')} · "
        f"{prov.get('created_at', '')}",
    )
    page.add("Headline", _headline(summary), "headline")
    page.add("Conditions", _conditions(summary), "conditions")
    rob = _robustness(summary, run)
    if rob:
        page.add("Robustness", rob, "robustness")
    page.add("Slices", _slices(summary), "slices")
    with RunStore.open(run) as store:
        utt_html, conf_html = _utterances(store, norm.get("name") or "whisper-en")
    _add_deployment(page, summary, deployment)
    page.add("Utterances", utt_html, "utterances")
    page.add("Error distribution", _distribution(summary), "distribution")
    page.add("Most frequent confusions", conf_html, "confusions")
    page.add("Provenance", kv_table({
        "backend": backend, "dataset": prov.get("dataset"), "normaliser": norm, "seed": prov.get("seed"),
        "run options": prov.get("run_options"), "conditions": prov.get("conditions"),
        "machine": prov.get("machine"), "resources": summary.get("resources"), "status": summary.get("status"),
    }), "provenance")
    return page.render()
