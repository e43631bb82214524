"""Console rendering of a run summary: one table row per condition, then slices and warnings."""

from __future__ import annotations

from typing import Any

import click

from voxproof.report.html import fmt_interval

MAX_WARNINGS = 6


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def pct_interval(iv: dict[str, Any]) -> str:
    return fmt_interval(iv, sep=", ", space="")


def print_summary(summary: dict[str, Any]) -> None:
    scores = summary["scores"]
    prov = summary.get("provenance") or {}
    backend = prov.get("backend") or {}
    level = int(round(100 * scores["intervals"]["level"]))
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
        rtf = f"{lat['rtf']:.3f}" if isinstance(lat, dict) and lat.get("rtf") is not None else "-"
        line = [
            cond["condition"], pct_interval(cond["wer"]), pct_interval(cond["cer"]), pct(cond["raw_wer"]),
            f"{cov['ok']}/{cov['total']}", str(cond["utterances"]), str(cond["ref_words"]),
            f"{cond['audio_hours']:.3f}", rtf,
        ]
        if deltas:
            delta = deltas.get(cond["condition"])
            text = pct_interval(delta) if isinstance(delta, dict) else "-"
            line.insert(2, "+" + text if text[0].isdigit() else text)
        lines.append(line)
    _table(headers, lines)
    first = latency.get(scores["conditions"][0]["condition"]) if scores["conditions"] and isinstance(latency, dict) else None
    if isinstance(first, dict) and first.get("rtfx"):
        p = first.get("latency_seconds", {})
        click.echo(
            f"speed: RTFx {first['rtfx']:.1f} (audio s / processing s), latency p50 {p.get('p50', 0):.3f} s "
            f"p90 {p.get('p90', 0):.3f} s, model load {first.get('model_load_seconds') or 0:.2f} s"
        )
    _print_deployment(summary)
    for index, cond in enumerate(scores["conditions"]):
        errors = cond["coverage"].get("by_error_type") or {}
        if errors:
            listed = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
            click.echo(f"errors in {cond['condition']}: {listed}")
        # slice gaps of the first (clean) condition; the others are in the report and summary.json
        for gap in cond.get("gaps", [])[:3] if index == 0 else ():
            g = gap["gap"]
            click.echo(
                f"slice gap by {gap['key']} ({cond['condition']}): worst {gap['worst']} vs best {gap['best']}: "
                f"{pct_interval(g)}"
            )
    for suite in rob.get("suites", []):
        crossing = [f"{c['family']} at {c['crossing']:g}" for c in suite.get("curves", []) if c.get("crossing") is not None]
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


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def _print_deployment(summary: dict[str, Any]) -> None:
    """One line each: word calibration, cost per audio hour, model size (the report has the figures)."""
    cal = summary.get("calibration") or {}
    word = cal.get("word") if isinstance(cal, dict) else None
    if isinstance(word, dict) and word.get("ece") is not None:
        def num(key: str) -> str:  # AUROC is undefined when every word is right (or every word wrong)
            value = word.get(key)
            return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a (undefined for these words)"

        click.echo(
            f"calibration: word ECE {num('ece')} ({word['ece_binning']}), Brier {num('brier')}, "
            f"AUROC for wrong words {num('auroc_error')} (n={word['n']})"
        )
    elif isinstance(cal, dict) and cal.get("available") is False:
        click.echo(f"calibration: {cal.get('reason')}")
    dep = summary.get("deployment") or {}
    lines = ((dep.get("cost") or {}).get("lines") or []) if isinstance(dep, dict) else []
    if lines:
        costs = "; ".join(f"{c['cost_per_audio_hour']:.4f} {c['currency']} per audio hour on {c['machine']} at "
                          f"{c['price_per_machine_hour']:g}/h" for c in lines[:2])
        click.echo(f"cost (example prices, not quotes): {costs}")
    eff = dep.get("efficiency") if isinstance(dep, dict) else None
    if isinstance(eff, dict) and eff.get("parameters"):
        click.echo(f"model: {eff['parameters']:,} parameters, {eff.get('disk_bytes', 0) / 1e6:.1f} MB on disk")
