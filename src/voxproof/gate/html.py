"""The gate verdict as one self-contained HTML page (inline CSS and SVG, no scripts, no network).

Stage: gate output, beside ``gate.json``. Each WER rule gets an interval bar: the paired interval of
the WER change, the point estimate, zero, and the allowed increase, on one shared scale.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from voxproof.gate.rules import FAIL, INSUFFICIENT, NO_DATA, NOT_APPLICABLE, PASS, RuleResult
from voxproof.gate.verdict import VERDICT_LABEL, GateVerdict, interval_text, margin_text, value_text

_COLORS = {PASS: "#1a7f37", FAIL: "#cf222e", NO_DATA: "#9a6700", INSUFFICIENT: "#57606a", NOT_APPLICABLE: "#8c959f"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328}
h1{margin-bottom:.2rem} .sub{color:#57606a;margin-top:0}
.badge{display:inline-block;padding:.3rem .8rem;border-radius:6px;color:#fff;font-weight:600}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:middle}
th{background:#f6f8fa} td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{font-weight:600} .detail{color:#57606a;font-size:.82rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem} dt{font-weight:600}
code{background:#f6f8fa;padding:0 .2rem;border-radius:3px}
"""


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


def render_html(verdict: GateVerdict) -> str:
    """The page as a string."""
    e = html.escape
    status = "PASSED" if verdict.passed else "FAILED"
    color = _COLORS[PASS] if verdict.passed else _COLORS[FAIL]
    wer = [r for r in verdict.rules if r.unit == "wer" and r.interval and None not in r.interval]
    points = [v for r in wer for v in (r.interval[0], r.interval[1], r.limit or 0.0) if v is not None and math.isfinite(v)]  # type: ignore[index]
    lo_s, hi_s = (min(points + [0.0]), max(points + [0.0])) if points else (0.0, 0.0)
    pad = (hi_s - lo_s) * 0.05 or 0.01
    lo_s, hi_s = lo_s - pad, hi_s + pad
    rows = []
    for r in verdict.rules:
        c = _COLORS.get(r.verdict, "#57606a")
        rows.append(
            f"<tr><td><code>{e(r.rule)}</code><div class='detail'>{e(r.detail)}</div></td>"
            f"<td class='num'>{e(value_text(r))}</td><td class='num'>{e(margin_text(r))}</td>"
            f"<td class='num'>{e(interval_text(r))}</td><td>{_bar(r, lo_s, hi_s)}</td>"
            f"<td class='verdict' style='color:{c}'>{e(VERDICT_LABEL.get(r.verdict, r.verdict))}</td></tr>"
        )
    failing = "".join(f"<li><code>{e(r.rule)}</code>: {e(r.detail)}</li>" for r in verdict.failing())
    notes = "".join(f"<li>{e(n)}</li>" for n in verdict.notes)

    def run_dl(label: str, info: dict) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in sorted((info.get("options") or {}).items()))
        return (f"<h3>{label}</h3><dl><dt>run</dt><dd><code>{e(str(info.get('path')))}</code></dd>"
                f"<dt>backend</dt><dd>{e(str(info.get('backend')))} ({e(str(info.get('kind')))})</dd>"
                f"<dt>model checksum</dt><dd><code>{e(str(info.get('model_checksum')))}</code></dd>"
                f"<dt>options</dt><dd>{e(opts) or '-'}</dd>"
                f"<dt>dataset hash</dt><dd><code>{e(str(info.get('dataset_hash')))}</code></dd>"
                f"<dt>run key</dt><dd><code>{e(str(info.get('run_key')))}</code></dd></dl>")

    pol = verdict.policy
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>voxproof gate: {status}</title>
<style>{_CSS}</style></head><body>
<h1>Release gate <span class="badge" style="background:{color}">{status}</span></h1>
<p class="sub">{e(verdict.created_at)} &middot; voxproof {e(verdict.voxproof_version)} &middot; policy
<code>{e(str(pol.get('source')))}</code> &middot; decision: {e(str(pol.get('decision')))} at
{e(str(pol.get('confidence')))} ({e(str(pol.get('resamples')))} paired bootstrap resamples, seed {e(str(pol.get('seed')))})
&middot; normaliser <code>{e(verdict.normalizer)}</code></p>
{f"<h2>Failing rules</h2><ul>{failing}</ul>" if failing else ""}
<h2>Rules</h2>
<table><thead><tr><th>rule</th><th>value</th><th>margin</th><th>interval</th><th>change of WER
(bar: interval, dot: estimate, dashed: 0, red: allowed)</th><th>verdict</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Runs</h2>{run_dl("Baseline", verdict.baseline)}{run_dl("Candidate", verdict.candidate)}
<p class="sub">WER changes are candidate minus baseline on the same utterances (positive = worse), corpus level
(edits / reference words), with a paired percentile bootstrap interval. Under the interval decision a rule holds
when the upper bound is at most the allowed increase (non-inferiority).</p>
</body></html>
"""


def write_html(verdict: GateVerdict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(verdict), encoding="utf-8")
    return p
