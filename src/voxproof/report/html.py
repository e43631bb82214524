"""The components of every voxproof HTML page: one stylesheet, one page frame, cards, tables, figures
with captions, and the formatting of numbers, intervals and undefined figures.

Stage: report output. The run, compare, gate, audit and TTS pages are built from these, so they look
the same and share their fixes (an undefined figure reads "n/a (why)", a negative interval reads
``[−53.7, −34.9]``, a missing value is never printed as ``None``). Pages are self-contained (inline CSS
and images; a script only when a table is sortable). Every string from a record is escaped here.

The API is deliberately small: :func:`page` (title, sections), :func:`card`/:func:`cards`,
:func:`table`, :func:`figure`, :func:`kv`, :func:`details`, :func:`badge`, :func:`fmt_interval`,
:func:`fmt_pct`, :func:`fmt_num`, :func:`na`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxproof.report.style import CSS, SORT_JS

MINUS = "\u2212"  # typographic minus: "−53.7", so "[−53.7, −34.9]" never reads as a range "-53.7--34.9"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


# -- numbers ----------------------------------------------------------------------------------------
def defined(value: Any) -> bool:
    """True for a finite number (None, nan and inf are undefined figures)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def na(reason: str | None = None) -> str:
    """The text of an undefined figure: ``n/a (why)``."""
    return f"n/a ({reason})" if reason else "n/a"


def fmt_num(value: Any, spec: str = ".3f", reason: str | None = None, *, minus: str = MINUS) -> str:
    """``value`` formatted with ``spec``, or ``n/a (reason)``; negatives use ``minus``."""
    if not defined(value):
        return na(reason)
    text = format(value, spec)
    return text.replace("-", minus, 1) if text.startswith("-") else text


def fmt_pct(value: Any, digits: int = 2, reason: str | None = None, *, minus: str = MINUS, space: str = " ") -> str:
    """A rate as a percentage (``0.1208`` -> ``12.08 %``), or ``n/a (reason)``."""
    if not defined(value):
        return na(reason)
    return fmt_num(100 * value, f".{digits}f", minus=minus) + space + "%"


def reason_of(obj: Mapping[str, Any] | None, key: str) -> str | None:
    """Why ``obj[key]`` is undefined, from the ``reasons`` map summary.json records beside null figures."""
    if not isinstance(obj, Mapping):
        return None
    reasons = obj.get("reasons")
    return reasons.get(key) if isinstance(reasons, Mapping) else None


def fmt_interval(iv: Mapping[str, Any] | None, *, digits: int = 2, space: str = " ", minus: str = MINUS,
                 scale: float = 100.0, unit: str = "%", ci_digits: int = 1) -> str:
    """``12.08 % [7.7, 16.1]`` from an interval dict (``estimate``, ``low``, ``high`` as rates); a
    difference reads ``−4.10 % [−53.7, −34.9]``. Undefined parts read ``n/a (why)`` from ``reasons``."""
    if not isinstance(iv, Mapping) or not defined(iv.get("estimate")):
        return na(reason_of(iv, "estimate"))
    suffix = (space + unit) if unit else ""
    point = fmt_num(scale * iv["estimate"], f".{digits}f", minus=minus) + suffix
    if not (defined(iv.get("low")) and defined(iv.get("high"))):
        why = reason_of(iv, "interval")
        return f"{point} [{na(why)}]" if why else point
    low = fmt_num(scale * iv["low"], f".{ci_digits}f", minus=minus)
    high = fmt_num(scale * iv["high"], f".{ci_digits}f", minus=minus)
    return f"{point} [{low}, {high}]"


def typographic(text: str) -> str:
    """Escaped text whose negative numbers carry a typographic minus (``[−3.1, −0.4]``)."""
    return re.sub(r"(^|[\s\[(,])-(?=\d)", lambda m: m.group(1) + MINUS, esc(text))


def plain(value: Any) -> str:
    """Any record value as readable text (never a Python repr): None -> "not set", dicts as
    ``key: value`` pairs, lists joined with commas, floats to 4 significant digits."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_num(value, ".4g", "not a number", minus="-")
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


# -- page frame ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    title: str
    body: str
    anchor: str | None = None

    def render(self) -> str:
        ident = f' id="{esc(self.anchor)}"' if self.anchor else ""
        return f"<section{ident}><h2>{esc(self.title)}</h2>{self.body}</section>"


def page(title: str, sections: Iterable[Section | tuple[str, ...] | str], *,
         subtitle: str = "", badge_html: str = "", footer: str = "") -> str:
    """A whole self-contained page: header (title, optional badge, subtitle), the sections as cards
    (:class:`Section`, ``(title, body[, anchor])``, or an already rendered ``<section>`` string), an
    optional footer (trusted HTML). The sorting script is included only when a table is sortable."""
    body = "".join(s if isinstance(s, str) else (s if isinstance(s, Section) else Section(*s)).render()
                   for s in sections)
    script = f"<script>{SORT_JS}</script>" if "class='sortable'" in body else ""
    foot = f"<footer>{footer}</footer>" if footer else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><header><h1>{esc(title)}{(' ' + badge_html) if badge_html else ''}</h1>"
        f"<p>{esc(subtitle)}</p></header><main>{body}</main>{foot}{script}</body></html>"
    )


@dataclass
class Page:
    """A page assembled section by section (``add``), rendered by :func:`page`."""

    title: str
    subtitle: str = ""
    sections: list[Section | str] = field(default_factory=list)
    badge_html: str = ""

    def add(self, title: str, body: str, anchor: str | None = None) -> None:
        self.sections.append(Section(title, body, anchor))

    def render(self) -> str:
        return page(self.title, self.sections, subtitle=self.subtitle, badge_html=self.badge_html)


# -- components -----------------------------------------------------------------------------------
def badge(text: str, kind: str = "info") -> str:
    """A coloured label; ``kind`` is pass, fail, warn, info, muted or an audit severity."""
    return f"<span class='badge b-{esc(kind)}'>{esc(text)}</span>"


def card(label: str, value: str, note: str = "") -> str:
    """One headline figure: the value big, its label and small print under it."""
    return (f"<div class='card'><div class='v'>{esc(value)}</div><div class='l'>{esc(label)}</div>"
            f"<div class='s'>{esc(note)}</div></div>")


def figure(png: bytes, caption: str, alt: str | None = None) -> str:
    """An embedded PNG with a sentence saying what it shows."""
    return f"<figure>{png_img(png, alt or caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def figures(items: Iterable[str]) -> str:
    return "<div class='figures'>" + "".join(items) + "</div>"


def details(summary: str, body: str, *, open_: bool = False) -> str:
    """A folded block (``<details>``): ``summary`` is text, ``body`` trusted HTML."""
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{body}</details>"


def kv(data: Mapping[str, Any]) -> str:
    """A definition list of ``label: value``; values are shown with :func:`plain` (HTML-escaped) unless
    they are ``(html,)`` one-tuples of trusted HTML."""
    rows = []
    for key, value in data.items():
        shown = value[0] if isinstance(value, tuple) and len(value) == 1 else esc(plain(value))
        rows.append(f"<dt>{esc(key)}</dt><dd>{shown}</dd>")
    return "<dl class='kv'>" + "".join(rows) + "</dl>"


def paragraph(text: str, cls: str = "") -> str:
    return f"<p{f' class={chr(39)}{cls}{chr(39)}' if cls else ''}>{esc(text)}</p>"


def cards(items: Iterable[tuple[str, str, str]]) -> str:
    """Headline cards: (label, value, small print)."""
    return "<div class='cards'>" + "".join(card(label, v, s) for label, v, s in items) + "</div>"


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
                cells.append(f"<td{cls}>{esc(cell if cell is None or isinstance(cell, (str, int)) else plain(cell))}</td>")
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
    if scale <= 0 or not defined(point):
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
    vals = [v for v in values if defined(v)]
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


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def json_block(value: Any, summary: str = "the same figures as JSON") -> str:
    """The record as indented JSON (null for undefined figures), folded."""
    text = json.dumps(_json_safe(value), indent=2, default=str, allow_nan=False)
    return details(summary, f"<pre><code>{esc(text)}</code></pre>")


def condition_sections(summary: Mapping[str, Any], key: str, body: Any, label: str) -> str | None:
    """One ``<h3>`` block per scored condition whose ``key`` figures are present (``body(figures)`` gives
    its HTML), then those figures as JSON; None when no condition has them."""
    conds = summary["scores"]["conditions"]
    parts = [f"<h3>{esc(c['condition'])}</h3>{body(c[key])}" for c in conds if isinstance(c.get(key), dict)]
    if not parts:
        return None
    return "".join(parts) + json_block([c.get(key) for c in conds], label)
