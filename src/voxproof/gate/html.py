"""The gate verdict as one self-contained HTML page (inline CSS and SVG, no scripts, no network).

Stage: gate output, beside ``gate.json``. Built from the shared report components
(:mod:`voxproof.report.html`). Each WER rule gets an interval bar: the paired interval of the WER
change, the point estimate, zero, and the allowed increase, on one shared scale.
"""

from __future__ import annotations

import math
from pathlib import Path

from voxproof.gate.rules import FAIL, INSUFFICIENT, NO_DATA, NOT_APPLICABLE, PASS, RuleResult
from voxproof.gate.verdict import VERDICT_LABEL, GateVerdict, interval_text, margin_text, value_text

_COLORS = {PASS: "#1a7f37", FAIL: "#cf222e", NO_DATA: "#9a6700", INSUFFICIENT: "#57606a", NOT_APPLICABLE: "#8c959f"}

def _bar(r: RuleResult, lo_scale: float, hi_scale: float, width: int = 300, height: int = 22) -> str:
    if r.unit != "wer" or r.interval is None or r.interval[0] is None or r.interval[1] is None:
        return ""
    lo, hi = r.interval
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi_scale <= lo_scale:
        return ""

    def x(v: float) -> float:
        return 4 + (width - 8) * (min(max(v, lo_scale), hi_scale) - lo_scale) / (hi_scale - lo_scale)

    color = _COLORS.get(r.verdict, "#57606a")
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="interval of the WER change">',
             f'<line x1="{x(0):.1f}" y1="2" x2="{x(0):.1f}" y2="{height - 2}" stroke="#8c959f" stroke-dasharray="2,2"/>']
    if r.limit is not None and math.isfinite(r.limit):
        parts.append(f'<line x1="{x(r.limit):.1f}" y1="0" x2="{x(r.limit):.1f}" y2="{height}" stroke="#cf222e" '
                     'stroke-width="2"><title>allowed increase</title></line>')
    parts.append(f'<line x1="{x(lo):.1f}" y1="{height / 2}" x2="{x(hi):.1f}" y2="{height / 2}" stroke="{color}" '
                 'stroke-width="4" stroke-linecap="round"/>')
    if r.estimate is not None:
        parts.append(f'<circle cx="{x(r.estimate):.1f}" cy="{height / 2}" r="4" fill="#fff" stroke="{color}" '
                     'stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


_KIND = {PASS: "pass", FAIL: "fail", NO_DATA: "warn", INSUFFICIENT: "info", NOT_APPLICABLE: "muted"}


def render_html(verdict: GateVerdict) -> str:
    """The page as a string."""
    from voxproof.report.html import Section, badge, esc, kv, page, paragraph, plain, table, typographic

    status = "PASSED" if verdict.passed else "FAILED"
    wer = [r for r in verdict.rules if r.unit == "wer" and r.interval and None not in r.interval]
    points = [v for r in wer for v in (r.interval[0], r.interval[1], r.limit or 0.0) if v is not None and math.isfinite(v)]  # type: ignore[index]
    lo_s, hi_s = (min(points + [0.0]), max(points + [0.0])) if points else (0.0, 0.0)
    pad = (hi_s - lo_s) * 0.05 or 0.01
    lo_s, hi_s = lo_s - pad, hi_s + pad
    rows = [[
        (f"<code>{esc(r.rule)}</code><div class='muted'>{esc(r.detail)}</div>", r.rule),
        (dash(typographic(value_text(r))), r.estimate if r.estimate is not None else 0),
        (dash(esc(margin_text(r))), r.limit if r.limit is not None else 0),
        (dash(typographic(interval_text(r))), r.estimate if r.estimate is not None else 0),
        (_bar(r, lo_s, hi_s), r.estimate if r.estimate is not None else 0),
        (badge(VERDICT_LABEL.get(r.verdict, r.verdict), _KIND.get(r.verdict, "info")), r.verdict),
    ] for r in verdict.rules]
    sections = []
    failing = verdict.failing()
    if failing:
        sections.append(Section("Failing rules", "<ul>" + "".join(
            f"<li><code>{esc(r.rule)}</code>: {esc(r.detail)}</li>" for r in failing) + "</ul>", "failing"))
    sections.append(Section("Rules", table(
        ["rule", "value", "margin", "interval", "change of WER (bar: interval, dot: estimate, dashed: 0, red: allowed)",
         "verdict"], rows, sortable=False, numeric=(1, 2, 3)) + paragraph(
        "WER changes are candidate minus baseline on the same utterances (positive = worse), corpus level "
        "(edits / reference words), with a paired percentile bootstrap interval. Under the interval decision a "
        "rule holds when the upper bound is at most the allowed increase (non-inferiority).", "muted"), "rules"))
    if verdict.notes:
        sections.append(Section("Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in verdict.notes) + "</ul>",
                                "notes"))

    def run_kv(info: dict) -> str:
        opts = ", ".join(f"{k}={plain(v)}" for k, v in sorted((info.get("options") or {}).items()) if v is not None)
        return kv({"run": info.get("path"), "backend": f"{plain(info.get('backend'))} ({plain(info.get('kind'))})",
                   "model checksum": info.get("model_checksum"), "options (set)": opts or "library defaults",
                   "dataset hash": info.get("dataset_hash"), "run key": info.get("run_key")})

    mv = verdict.model_verification
    verified = kv({"model verification": f"{mv.get('status')} (expected {mv.get('expected') or 'n/a (none given)'}, "
                                         f"run recorded {mv.get('actual') or 'n/a (no checksum)'})"}) if mv else ""
    sections.append(Section("Runs", "<h3>Baseline</h3>" + run_kv(verdict.baseline) + "<h3>Candidate</h3>"
                            + run_kv(verdict.candidate) + verified, "runs"))
    from voxproof.security import governance as gov

    evidence = [gov.read_run_evidence(side["path"]) for side in (verdict.baseline, verdict.candidate)
                if side.get("path")]
    sections.append(Section("Governance (NIST AI RMF)", gov.html(gov.gate_rows(verdict, evidence, "gate.json")),
                            "governance"))
    pol = verdict.policy
    subtitle = (f"{verdict.created_at} · voxproof {verdict.voxproof_version} · policy {plain(pol.get('source'))} · "
                f"decision: {plain(pol.get('decision'))} at {plain(pol.get('confidence'))} "
                f"({plain(pol.get('resamples'))} paired bootstrap resamples, seed {plain(pol.get('seed'))}) · "
                f"normaliser {verdict.normalizer}")
    return page(f"voxproof gate: {status}", sections, subtitle=subtitle,
                badge_html=badge(status, "pass" if verdict.passed else "fail"))


def dash(text: str) -> str:
    """An en dash for an empty cell (the verdict's text functions use "-")."""
    return "–" if text in ("-", "") else text


def write_html(verdict: GateVerdict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(verdict), encoding="utf-8")
    return p
