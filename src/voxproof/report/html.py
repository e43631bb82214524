"""A self-contained HTML report (inline CSS, JS and images; opens offline) from plain view data.

The page is assembled from a :class:`Page` of sections; each section is HTML built here from records,
never from user strings without escaping.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#17324d;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85;font-size:13px}
main{padding:18px 28px;max-width:1400px}
section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;min-width:120px}
.card .v{font-size:20px;font-weight:600}.card .l{font-size:12px;color:#5b6672}.card .s{font-size:11px;color:#5b6672}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e7ebef;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f3f6;cursor:pointer;user-select:none;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ali span{padding:0 2px;border-radius:3px}
.S{background:#ffe08a}.D{background:#ffb3b3;text-decoration:line-through}.I{background:#a8d8ff}
.err{color:#a40000}.warn{color:#8a5a00}
.bar{display:inline-block;height:10px;background:#4f7cac;vertical-align:middle}
.ival{position:relative;height:14px;background:#eef1f4;border-radius:3px;min-width:160px}
.ival .r{position:absolute;top:3px;height:8px;background:#9bb7d4;border-radius:2px}
.ival .p{position:absolute;top:0;width:2px;height:14px;background:#17324d}
img{max-width:100%}
details summary{cursor:pointer}
code{font-size:12px}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.from(body.rows),asc=th.dataset.asc!=='1';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v!==undefined?a.cells[i].dataset.v:a.cells[i].textContent;
        var y=b.cells[i].dataset.v!==undefined?b.cells[i].dataset.v:b.cells[i].textContent;
        var nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.asc;});
      th.dataset.asc=asc?'1':'0';});});});
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt_pct(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{100 * value:.{digits}f} %"


def fmt_interval(iv: dict[str, Any], *, digits: int = 2, sep: str = "–", space: str = " ") -> str:
    """``12.08 % [7.7–16.1]`` from an interval dict (``estimate``, ``low``, ``high`` as rates)."""
    if iv.get("estimate") is None:
        return "n/a"
    point = f"{100 * iv['estimate']:.{digits}f}{space}%"
    if iv.get("low") is None:
        return point
    return f"{point} [{100 * iv['low']:.1f}{sep}{100 * iv['high']:.1f}]"


@dataclass
class Page:
    title: str
    subtitle: str = ""
    sections: list[str] = field(default_factory=list)

    def add(self, title: str, body: str, anchor: str | None = None) -> None:
        ident = f' id="{esc(anchor)}"' if anchor else ""
        self.sections.append(f"<section{ident}><h2>{esc(title)}</h2>{body}</section>")

    def render(self) -> str:
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(self.title)}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>{esc(self.title)}</h1>"
            f"<p>{esc(self.subtitle)}</p></header><main>{''.join(self.sections)}</main>"
            f"<script>{_JS}</script></body></html>"
        )


def cards(items: Iterable[tuple[str, str, str]]) -> str:
    """Headline cards: (label, value, small print)."""
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div class='v'>{esc(v)}</div><div class='l'>{esc(label)}</div>"
        f"<div class='s'>{esc(s)}</div></div>"
        for label, v, s in items
    ) + "</div>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, sortable: bool = True,
          numeric: Sequence[int] = ()) -> str:
    """A table; cells that are ``(display_html, sort_value)`` tuples are inserted as trusted HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = " class='num'" if i in numeric else ""
            if isinstance(cell, tuple):
                shown, key = cell
                cells.append(f"<td{cls} data-v='{esc(key)}'>{shown}</td>")
            else:
                cells.append(f"<td{cls}>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = " class='sortable'" if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def alignment_html(ops: Sequence[tuple[str, str | None, str | None]]) -> str:
    """Coloured alignment: ops are (op, ref_token, hyp_token) with the op names of
    :mod:`voxproof.metrics.align` (equal, substitute, delete, insert)."""
    parts = []
    for op, ref, hyp in ops:
        if op == "equal":
            parts.append(esc(ref))
        elif op == "substitute":
            parts.append(f"<span class='S' title='ref: {esc(ref)}'>{esc(ref)}&rarr;{esc(hyp)}</span>")
        elif op == "delete":
            parts.append(f"<span class='D' title='deleted'>{esc(ref)}</span>")
        else:
            parts.append(f"<span class='I' title='inserted'>{esc(hyp)}</span>")
    return "<span class='ali'>" + " ".join(parts) + "</span>"


def interval_bar(point: float, low: float, high: float, scale: float) -> str:
    """A horizontal interval bar on [0, scale]."""
    if scale <= 0 or point != point:
        return ""

    def pos(x: float) -> float:
        return max(0.0, min(100.0, 100.0 * x / scale))

    return (
        f"<div class='ival'><div class='r' style='left:{pos(low):.1f}%;width:{max(pos(high) - pos(low), 0.5):.1f}%'>"
        f"</div><div class='p' style='left:{pos(point):.1f}%'></div></div>"
    )


def histogram_svg(values: Sequence[float], *, bins: int = 20, upper: float | None = None,
                  label: str = "") -> str:
    """An inline SVG histogram of ``values`` over [0, upper]."""
    vals = [v for v in values if v == v]
    if not vals:
        return "<p>no values</p>"
    top = upper if upper is not None else max(vals) or 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, max(0, int(bins * v / top)))] += 1
    width, height, peak = 420, 120, max(counts) or 1
    bw = width / bins
    rects = "".join(
        f"<rect x='{i * bw:.1f}' y='{height - height * c / peak:.1f}' width='{bw - 1:.1f}' "
        f"height='{height * c / peak:.1f}' fill='#4f7cac'><title>{c}</title></rect>"
        for i, c in enumerate(counts)
    )
    return (
        f"<svg width='{width}' height='{height + 18}' role='img' aria-label='{esc(label)}'>{rects}"
        f"<text x='0' y='{height + 14}' font-size='11'>0</text>"
        f"<text x='{width - 40}' y='{height + 14}' font-size='11'>{esc(f'{top:.2g}')}</text></svg>"
    )


def png_img(data: bytes, alt: str) -> str:
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def wav_player(data: bytes) -> str:
    return f"<audio controls preload='none' src='data:audio/wav;base64,{base64.b64encode(data).decode()}'></audio>"


def json_block(value: Any) -> str:
    return f"<details><summary>JSON</summary><pre><code>{esc(json.dumps(value, indent=2, default=str))}</code></pre></details>"


def kv_table(data: dict[str, Any]) -> str:
    rows = []
    for key, value in data.items():
        shown = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
        rows.append((key, shown))
    return table(["field", "value"], rows, sortable=False)
