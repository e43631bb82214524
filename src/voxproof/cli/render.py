"""Console rendering of a run summary: one table row per condition, then slices and warnings.

Every figure that can be undefined prints ``n/a (why)``, the why read from summary.json's ``reasons``.
"""

from __future__ import annotations

from typing import Any

import click

from voxproof.report.html import fmt_interval, fmt_num, fmt_pct, na, reason_of

MAX_WARNINGS = 6


def pct(value: float | None, reason: str | None = None) -> str:
    return fmt_pct(value, 2, reason, minus="-", space="")


def pct_interval(iv: dict[str, Any] | None) -> str:
    return fmt_interval(iv, space="", minus="-")


def num(obj: dict[str, Any] | None, key: str, spec: str = ".3f") -> str:
    """``obj[key]`` formatted, or ``n/a (why)``."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return fmt_num(value, spec, reason_of(obj, key), minus="-")


def print_summary(summary: dict[str, Any]) -> None:
    scores = summary["scores"]
    prov = summary.get("provenance") or {}
    backend = prov.get("backend") or {}
    level = round(100 * scores["intervals"]["level"])
    click.echo(
        f"model {backend.get('name', '?')} ({backend.get('model', '?')})  normaliser "
        f"{scores['normalizer'].get('name')}@{scores['normalizer'].get('version')}  "
        f"intervals {level}% {scores['intervals']['method']} bootstrap x{scores['intervals']['n_resamples']}"
    )
    latency = summary.get("latency") or {}
    rob = summary.get("robustness") if isinstance(summary.get("robustness"), dict) else {}
    deltas = {c["condition"]: c.get("delta") for c in rob.get("conditions", []) if isinstance(c, dict)}
    headers = ["condition", f"WER [{level}% CI]", f"CER [{level}% CI]", "raw WER", "coverage", "utts", "words",
               "audio h", "RTF"]
    if deltas:
        headers.insert(2, "Δ WER vs clean (paired)")
    lines = []
    for cond in scores["conditions"]:
        cov = cond["coverage"]
        lat = latency.get(cond["condition"]) if isinstance(latency, dict) else None
        rtf = num(lat, "rtf") if isinstance(lat, dict) and lat.get("available") is not False else "n/a"
        line = [
            cond["condition"], pct_interval(cond["wer"]), pct_interval(cond["cer"]),
            pct(cond["raw_wer"], reason_of(cond, "raw_wer")),
            f"{cov['ok']}/{cov['total']}", str(cond["utterances"]), str(cond["ref_words"]),
            f"{cond['audio_hours']:.3f}", rtf,
        ]
        if deltas:
            delta = deltas.get(cond["condition"])
            text = pct_interval(delta) if isinstance(delta, dict) else "-"
            line.insert(2, "+" + text if text[:1].isdigit() else text)
        lines.append(line)
    _table(headers, lines)
    first = latency.get(scores["conditions"][0]["condition"]) if scores["conditions"] and isinstance(latency, dict) else None
    if isinstance(first, dict) and first.get("available") is False:
        click.echo(f"speed: {na(first.get('reason'))}")
    elif isinstance(first, dict):
        p = first.get("latency_seconds") or {}
        click.echo(
            f"speed: RTFx {num(first, 'rtfx', '.1f')} (audio s / processing s), latency p50 {num(p, 'p50')} s "
            f"p90 {num(p, 'p90')} s, model load {num(first, 'model_load_seconds', '.2f')} s"
        )
    _print_deployment(summary)
    if scores["conditions"] and scores["conditions"][0].get("classes") is not None:
        print_classes(scores["conditions"][0], level)
    _print_sessions_and_clips(scores)
    for index, cond in enumerate(scores["conditions"]):
        errors = cond["coverage"].get("by_error_type") or {}
        if errors:
            listed = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
            click.echo(f"errors in {cond['condition']}: {listed}")
        # slice gaps of the first (clean) condition; the others are in the report and summary.json
        for gap in cond.get("gaps", [])[:3] if index == 0 else ():
            click.echo(f"slice gap by {gap['key']} ({cond['condition']}): {gap_text(gap)}")
    for suite in rob.get("suites", []):
        crossing = [f"{c['family']} at {c['crossing']:g}" for c in suite.get("curves", []) if c.get("crossing") is not None]
        if suite.get("worst_condition") is None or not isinstance(suite.get("score"), dict):
            click.echo(f"robustness {suite.get('suite')}: {na(suite.get('reason') or 'no scored condition')}")
            continue
        click.echo(
            f"robustness {suite['suite']}: score {pct_interval(suite['score'])} ({suite['score_definition']}); "
            f"worst {suite['worst_condition']}" + (f"; WER crosses {pct(rob['threshold'])} {', '.join(crossing)}"
                                                   if crossing else "")
        )
    for flag in rob.get("ood_flags", [])[:3]:
        click.echo(f"out of distribution: {flag['message']}")
    warnings = list(dict.fromkeys(w for cond in scores["conditions"] for w in cond.get("warnings", [])))
    for warning in warnings[:MAX_WARNINGS]:
        click.echo(f"warning: {warning}")
    if len(warnings) > MAX_WARNINGS:
        click.echo(f"(+{len(warnings) - MAX_WARNINGS} more warnings in summary.json)")


def print_classes(cond: dict[str, Any], level: int) -> None:
    """Per-class WER of one condition (the first); keyword precision/recall/F1 below the table."""
    click.echo(f"\nclasses ({cond['condition']}):")
    rows = []
    for c in cond["classes"]:
        reason = c.get("reason")
        rows.append([c["name"], c["kind"], str(c["utterances"]), str(c["ref_words"]),
                     na(reason) if reason else pct_interval(c["wer"]),
                     "n/a" if reason else pct(c["recall"])])
    _table(["class", "kind", "utts", "words", f"WER [{level}% CI]", "recall"], rows)
    for c in cond["classes"]:
        kw = c.get("keywords")
        if kw:
            click.echo(f"keywords: {kw['found']} of {kw['ref']} reference occurrences recognised, {kw['hyp']} in the "
                       f"output: precision {pct(kw['precision'], 'no keyword in the output')}, recall "
                       f"{pct(kw['recall'], 'no keyword in the references')}, F1 {pct(kw['f1'], 'precision or recall undefined')}")
        if c.get("warning"):
            click.echo(f"note: {c['warning']}")


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def gap_text(gap: dict[str, Any]) -> str:
    """``worst A vs best B: 12.3% [..]`` for a rankable gap, else why no slice is named."""
    if gap.get("worst") is None:
        return na(gap.get("reason") or "no slice large enough to rank")
    return f"worst {gap['worst']} vs best {gap['best']}: {pct_interval(gap['gap'])}"


def _print_deployment(summary: dict[str, Any]) -> None:
    """One line each: word calibration, cost per audio hour, model size (the report has the figures)."""
    cal = summary.get("calibration") or {}
    word = cal.get("word") if isinstance(cal, dict) else None
    if isinstance(word, dict):
        click.echo(
            f"calibration: word ECE {num(word, 'ece')} ({word.get('ece_binning')}), Brier {num(word, 'brier')}, "
            f"AUROC for wrong words {num(word, 'auroc_error')} (n={word.get('n')})"
        )
    elif isinstance(cal, dict) and cal.get("available") is False:
        click.echo(f"calibration: {na(cal.get('reason'))}")
    elif isinstance(cal, dict) and reason_of(cal, "word"):
        click.echo(f"calibration: word {na(reason_of(cal, 'word'))}")
    dep = summary.get("deployment") or {}
    cost = dep.get("cost") if isinstance(dep, dict) else None
    lines = (cost or {}).get("lines") or []
    if lines:
        label = "example prices, not quotes" if any(c.get("is_example") for c in lines) else "your prices"
        costs = "; ".join(f"{num(c, 'cost_per_audio_hour', '.4f')} {c['currency']} per audio hour on {c['machine']} "
                          f"at {c['price_per_machine_hour']:g}/h" for c in lines[:2])
        click.echo(f"cost ({label}; {cost.get('basis', 'total machine time / total audio')}): {costs}")
        if any(c.get("is_example") for c in lines):
            click.echo(f"  {cost.get('note')}")
    elif isinstance(dep, dict) and reason_of(dep, "cost"):
        click.echo(f"cost: {na(reason_of(dep, 'cost'))}")
    eff = dep.get("efficiency") if isinstance(dep, dict) else None
    if isinstance(eff, dict) and eff.get("parameters"):
        click.echo(f"model: {eff['parameters']:,} parameters, {(eff.get('disk_bytes') or 0) / 1e6:.1f} MB on disk")


def _print_sessions_and_clips(scores: dict[str, Any]) -> None:
    """Hallucination on non-speech clips, word timing and long-form failures, per condition that has them."""
    from voxproof.report.longform import longform_lines
    from voxproof.report.nonspeech import HEADERS, PHRASE_HEADERS, kind_rows, phrase_rows
    from voxproof.report.timing import TIMING_HEADERS, aligned_text, tc_text, timing_rows

    for cond in scores["conditions"]:
        name = cond["condition"]
        if isinstance(ns := cond.get("non_speech"), dict):
            click.echo(f"hallucination on non-speech ({name}):")
            _table(HEADERS, kind_rows(ns))
            if phrases := phrase_rows(ns)[:5]:
                _table(PHRASE_HEADERS, phrases)
        if isinstance(t := cond.get("timing"), dict):
            click.echo(f"word timing ({name}, {t['sessions']} sessions, utterance-boundary words):")
            _table(TIMING_HEADERS, timing_rows(t))
            click.echo(f"time-constrained error rate: {tc_text(t)}")
            if aligned := aligned_text(t):
                click.echo(aligned)
        if isinstance(lf := cond.get("longform"), dict):
            click.echo(f"long-form ({name}, {lf['sessions']} sessions):")
            for line in longform_lines(lf):
                click.echo(f"  {line}")
