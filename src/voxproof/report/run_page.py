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
    details,
    esc,
    figure,
    fmt_interval,
    fmt_pct,
    interval_bar,
    json_block,
    kv,
    na,
    paragraph,
    reason_of,
    table,
)
from voxproof.report.longform import longform_html
from voxproof.report.nonspeech import non_speech_html
from voxproof.report.timing import timing_html
from voxproof.run.store import RunStore

log = logging.getLogger("voxproof.report")

MAX_UTTERANCE_ROWS = 2000
WORST_CONDITIONS_SHOWN = 2  # slice tables shown open besides clean; the others are folded


def _ci_text(iv: dict[str, Any], level: int) -> str:
    if iv.get("low") is None or iv.get("high") is None:
        return f"{level}% CI " + na(reason_of(iv, "interval") or reason_of(iv, "estimate"))
    return f"{level}% CI {fmt_pct(iv['low'], 1)} – {fmt_pct(iv['high'], 1)}"


def _headline(summary: dict[str, Any]) -> str:
    scores = summary["scores"]
    if not scores["conditions"]:
        return "<p class='err'>No rows were stored.</p>"
    first = scores["conditions"][0]
    level = round(100 * scores["intervals"]["level"])
    lat = (summary.get("latency") or {}).get(first["condition"]) or {}
    cov = first["coverage"]
    items = [
        ("WER (" + first["condition"] + ")", fmt_pct(first["wer"]["estimate"], 2, reason_of(first["wer"], "estimate")),
         _ci_text(first["wer"], level)),
        ("CER", fmt_pct(first["cer"]["estimate"], 2, reason_of(first["cer"], "estimate")), _ci_text(first["cer"], level)),
        ("raw WER (no normaliser)", fmt_pct(first["raw_wer"], 2, reason_of(first, "raw_wer")),
         "case and punctuation count"),
        ("coverage", f"{cov['ok']}/{cov['total']}", f"{cov['total'] - cov['ok']} error rows"),
        ("reference words", str(first["ref_words"]), f"{first['utterances']} utterances, {first['speakers']} speakers"),
        ("audio", f"{first['audio_hours'] * 60:.1f} min", f"{first['condition']} condition"),
    ]
    if isinstance(lat, dict) and lat.get("rtfx"):
        p90 = (lat.get("latency_seconds") or {}).get("p90")
        items.append(("RTFx", f"{lat['rtfx']:.1f}", "latency p90 " + (f"{p90:.2f} s" if p90 is not None else na())))
    elif isinstance(lat, dict) and lat.get("available") is False:
        items.append(("RTFx", na(), str(lat.get("reason") or "")))
    return cards(items)


def _wer_bar(w: dict[str, Any], scale: float) -> str:
    if w.get("estimate") is None:
        return ""
    low, high = w.get("low"), w.get("high")
    return interval_bar(w["estimate"], w["estimate"] if low is None else low, w["estimate"] if high is None else high,
                        scale)


def _conditions(summary: dict[str, Any]) -> str:
    conds = summary["scores"]["conditions"]
    scale = max([c["wer"]["high"] or c["wer"]["estimate"] or 0 for c in conds] + [0.01]) * 1.05
    rows = []
    for c in conds:
        w = c["wer"]
        errors = ", ".join(f"{k} {v}" for k, v in sorted(c["coverage"]["by_error_type"].items())) or "none"
        rows.append([
            c["condition"], (esc(fmt_interval(w)), w["estimate"] or 0), (_wer_bar(w, scale), w["estimate"] or 0),
            fmt_interval(c["cer"]), fmt_pct(c["raw_wer"], 2, reason_of(c, "raw_wer")),
            fmt_pct(c["mean_utterance_wer"], 2, reason_of(c, "mean_utterance_wer")),
            f"{c['coverage']['ok']}/{c['coverage']['total']}", errors,
        ])
    return table(["condition", "WER (corpus)", "interval", "CER", "raw WER", "mean utterance WER (not corpus)",
                  "coverage", "error rows"], rows)


def gap_sentence(g: dict[str, Any]) -> str:
    """``gap by speaker: worst 2033 vs best 1688: 12.1 % [..]``, or why no slice is named."""
    if g.get("worst") is None:
        return f"gap by {g['key']}: " + na(g.get("reason") or "no slice large enough to rank")
    return f"gap by {g['key']}: worst {g['worst']} vs best {g['best']}: {fmt_interval(g.get('gap'))}"


def _slice_table(c: dict[str, Any]) -> str:
    scale = max([s["wer"]["high"] or s["wer"]["estimate"] or 0 for s in c["slices"]] + [0.01]) * 1.05
    rows = []
    for s in sorted(c["slices"], key=lambda s: (s["key"], -(s["wer"]["estimate"] or 0))):
        w = s["wer"]
        rows.append([
            s["key"], s["value"], s["utterances"], s.get("ref_words", s["counts"]["hits"] + s["counts"]["substitutions"]
                                                     + s["counts"]["deletions"]),
            (esc(fmt_interval(w)), w["estimate"] or 0), (_wer_bar(w, scale), w["estimate"] or 0),
            s.get("warning") or "",
        ])
    gaps = "".join(paragraph(gap_sentence(g)) for g in c["gaps"])
    return gaps + table(["slice by", "value", "utterances", "words", "WER", "interval", "note"], rows, numeric=(2, 3, 4))


def class_table(c: dict[str, Any]) -> str:
    """Per-class WER of one condition with intervals, recall, and keyword precision/recall/F1."""
    scale = max([k["wer"]["high"] or k["wer"]["estimate"] or 0 for k in c["classes"]] + [0.01]) * 1.05
    rows = []
    for k in c["classes"]:
        w = k["wer"]
        reason = k.get("reason")
        rows.append([k["name"], k["kind"], k["utterances"], k["ref_words"],
                     (esc(na(reason)) if reason else esc(fmt_interval(w)), w["estimate"] or 0),
                     ("" if reason else _wer_bar(w, scale), w["estimate"] or 0),
                     (esc(na(reason) if reason else fmt_pct(k["recall"])), k["recall"] or 0), k.get("warning") or ""])
    intro = paragraph(f"Condition {c['condition']}. A class's WER counts the errors on its reference words (through "
                      "the alignment) and insertions inside its spans, over its reference words; recall is the share "
                      "of its reference words recognised (OOV recall for class oov).", "muted")
    parts = [intro, table(["class", "kind", "utterances", "words", "WER", "interval", "recall", "note"], rows,
                          numeric=(2, 3, 4, 6))]
    for k in c["classes"]:
        kw = k.get("keywords")
        if kw:
            parts.append(paragraph(
                f"Keywords: {kw['found']} of {kw['ref']} reference occurrences recognised, {kw['hyp']} in the output; "
                f"precision {fmt_pct(kw['precision'], 2, 'no keyword in the output')}, recall "
                f"{fmt_pct(kw['recall'], 2, 'no keyword in the references')}, F1 "
                f"{fmt_pct(kw['f1'], 2, 'precision or recall undefined')}."))
            parts.append(details(f"{kw['keywords_listed']} of {kw['keywords_seen']} keywords, most missed first", table(
                ["keyword", "in references", "in output", "recognised", "precision", "recall", "F1"],
                [[e["keyword"], e["ref"], e["hyp"], e["found"], fmt_pct(e["precision"], 1, "not in output"),
                  fmt_pct(e["recall"], 1, "not in references"), fmt_pct(e["f1"], 1, "undefined")]
                 for e in kw["per_keyword"]], numeric=(1, 2, 3))))
    return "".join(parts)


def _slices(summary: dict[str, Any]) -> str:
    """Slices of the first (clean) condition and of the worst conditions; the rest folded."""
    conds = [c for c in summary["scores"]["conditions"] if c["slices"]]
    if not conds:
        return "<p>No speaker or tag metadata on the rows.</p>"
    first, rest = conds[0], conds[1:]
    worst = sorted(rest, key=lambda c: -(c["wer"]["estimate"] or 0))[:WORST_CONDITIONS_SHOWN]
    shown = [first] + [c for c in rest if c in worst]
    folded = [c for c in rest if c not in worst]
    parts = []
    for c in shown:
        label = c["condition"] + ("" if c is first else " (among the worst conditions by WER)")
        parts.append(f"<h3>{esc(label)}</h3>" + _slice_table(c))
    for c in folded:
        parts.append(details(f"{c['condition']}: WER {fmt_interval(c['wer'])}, {len(c['slices'])} slices",
                             _slice_table(c)))
    if folded:
        parts.insert(len(shown), paragraph(f"{len(folded)} more condition(s), folded: click to open.", "muted"))
    return "".join(parts)


def _utterances(store: RunStore, normalizer: str) -> tuple[str, str]:
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.metrics.scoring import scorable, top_confusions, utterance_alignment
    from voxproof.security.redact import current_policy, redact_words

    policy = current_policy()  # figures come from the raw text; only the words shown are redacted
    norm = get_normalizer(normalizer) if policy.enabled else None
    rows = list(store.rows())
    row_terms = {(r.utt_id, r.condition): policy.terms((r.reference, r.hypothesis), norm) for r in rows}
    all_terms = frozenset().union(*row_terms.values()) if row_terms else frozenset()

    def shown(ops, terms):
        return ops if not terms else [(op, *redact_words((r, h), terms)) for op, r, h in ops]
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
                (f"<span class='err'>{esc(row.error_type)}: {esc(policy.text(row.error_message or ''))}</span>",
                 row.error_type or ""),
            ])
            continue
        c = a.counts
        table_rows.append([
            row.utt_id, row.condition, row.speaker or "", (fmt_pct(wer, 1), wer),
            f"S{c.substitutions} D{c.deletions} I{c.insertions} / {c.ref_len}",
            (alignment_html(shown(a.ops, row_terms[(row.utt_id, row.condition)])), wer),
        ])
    note = f"<p>{len(rows)} rows, worst first" + (
        f" (first {MAX_UTTERANCE_ROWS} shown)" if len(rows) > MAX_UTTERANCE_ROWS else "") + \
        ". Colours: <span class='ali'><span class='S'>substitution</span> <span class='D'>deletion</span> " \
        "<span class='I'>insertion</span></span>. Click a header to sort.</p>"
    utt_html = note + table(["utterance", "condition", "speaker", "WER", "edits", "alignment (normalised)"], table_rows)
    conf = top_confusions(rows, normalizer, n=25)
    conf_html = table(["edit", "reference", "hypothesis", "count"],
                      [[c["op"], *(w or "" for w in redact_words((c["ref"], c["hyp"]), all_terms)), c["count"]]
                       for c in conf], numeric=(3,))
    return utt_html, conf_html


def _distribution(summary: dict[str, Any]) -> str:
    parts = []
    for index, c in enumerate(summary["scores"]["conditions"]):
        d = c["error_distribution"]
        bins, counts = d.get("wer_bins") or [], d.get("wer_bin_counts") or []
        rows = []
        for i, n in enumerate(counts):
            lo, hi = bins[i], bins[i + 1]
            label = f"{100 * lo:.0f}–{'∞' if hi is None else f'{100 * hi:.0f}'} %"
            rows.append([label, (f"<span class='bar' style='width:{4 * n}px'></span> {n}", n)])
        body = (f"<p>substitutions {d['substitutions']}, deletions {d['deletions']}, insertions {d['insertions']}; "
                f"{d['correct_utterances']} utterances without an error.</p>"
                + table(["utterance WER", "utterances"], rows, sortable=False))
        parts.append(f"<h3>{esc(c['condition'])}</h3>{body}" if index == 0 else details(c["condition"], body))
    return "".join(parts)


def _robustness(summary: dict[str, Any], run: Path) -> str | None:
    rob = summary.get("robustness")
    if not isinstance(rob, dict) or not rob:
        return None
    if rob.get("available") is False:
        return paragraph(na(rob.get("reason")), "muted")
    body = ""
    try:
        from voxproof.metrics.robustness import robustness_curves_png

        body += figure(robustness_curves_png(rob), "WER against severity, one line per condition family, "
                       "with the paired interval of each rung; the dashed line is the clean WER.")
    except Exception as exc:  # the figure is optional; the numbers below are not
        log.warning("robustness figure failed: %s", exc)
    suites = [[s["suite"], (esc(fmt_interval(s.get("score"))), (s.get("score") or {}).get("estimate") or 0),
               s.get("worst_condition") or na("no scored condition"), len(s.get("conditions") or ())]
              for s in rob.get("suites") or ()]
    if suites:
        body += table(["suite", "robustness score (retained accuracy) [CI]", "worst condition", "conditions"],
                      suites, numeric=(3,))
    conds = [[c["condition"], c.get("axis") or "", c.get("severity"),
              (esc(fmt_interval(c.get("wer"))), (c.get("wer") or {}).get("estimate") or 0),
              (esc(fmt_interval(c.get("delta"))), (c.get("delta") or {}).get("estimate") or 0), c.get("paired")]
             for c in rob.get("conditions") or ()]
    if conds:
        body += table(["condition", "axis", "severity", "WER", "Δ WER vs clean (paired)", "paired utterances"],
                      conds, numeric=(2, 5))
    for flag in rob.get("ood_flags") or ():
        body += paragraph("Out of distribution: " + str(flag.get("message")), "warn")
    return body + json_block(rob, "robustness figures as JSON")


def _add_deployment(page: Page, summary: dict[str, Any], section: Any) -> None:
    """The deployment section: complete with its heading when ``section`` draws, else a warning."""
    if section is None:
        reason = (summary.get("deployment") or {}).get("reason")
        if reason:
            page.add("Deployment", paragraph(na(reason), "warn"), "deployment")
        return
    from voxproof.report.deployment import deployment_html

    try:
        page.sections.append(deployment_html(section))  # a complete section with its own heading
    except Exception as exc:  # figures are optional; summary.json keeps the numbers
        log.warning("deployment section failed: %s", exc)
        page.add("Deployment", paragraph(f"deployment figures failed: {exc}", "warn"), "deployment")


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
    hallucination = non_speech_html(summary)
    if hallucination:
        page.add("Hallucination on non-speech", hallucination, "non-speech")
    timing = timing_html(summary)
    if timing:
        page.add("Word timing", timing, "timing")
    longform = longform_html(summary)
    if longform:
        page.add("Long-form", longform, "longform")
    page.add("Slices", _slices(summary), "slices")
    first = summary["scores"]["conditions"][0] if summary["scores"]["conditions"] else {}
    if first.get("classes") is not None:
        page.add("Token classes", class_table(first), "classes")
    with RunStore.open(run) as store:
        utt_html, conf_html = _utterances(store, norm.get("name") or "whisper-en")
    _add_deployment(page, summary, deployment)
    page.add("Utterances", utt_html, "utterances")
    page.add("Error distribution", _distribution(summary), "distribution")
    page.add("Most frequent confusions", conf_html, "confusions")
    options = {k: v for k, v in (backend.get("options") or {}).items() if v is not None}
    conditions = [c.get("name") if isinstance(c, dict) else c for c in prov.get("conditions") or ()]
    page.add("Provenance", kv({
        "backend": f"{backend.get('name')} {backend.get('version') or ''}".strip(),
        "model": backend.get("model"), "model checksum": backend.get("model_checksum"),
        "backend options (set)": options or "library defaults",
        "dataset": prov.get("dataset"), "normaliser": f"{norm.get('name')}@{norm.get('version')}",
        "seed": prov.get("seed"), "run options": {k: v for k, v in (prov.get("run_options") or {}).items() if v is not None},
        "conditions": conditions, "machine": prov.get("machine"), "resources": summary.get("resources"),
        "status": summary.get("status"),
    }) + json_block(prov, "provenance as JSON"), "provenance")
    return page.render()
