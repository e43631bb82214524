"""Monitor stage: the self-contained HTML dashboard (``voxproof monitor report``).

One pass of :func:`voxproof.monitor.analysis.analyze_log` over the log, then: each numeric feature's
window median over time against the reference's p05-p95 band (inline SVG), drift per window, the
estimated WER with its interval, failure-marker rates, incidents (from the incidents folder) and alias
changes (from the registry history). Plain HTML with the report module's inline style; no network.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voxproof.monitor.analysis import WindowReport, analyze_log
from voxproof.monitor.policy import MonitorPolicy
from voxproof.monitor.profile import ReferenceProfile
from voxproof.monitor.source import open_log
from voxproof.report.html import Page, cards, esc, table

log = logging.getLogger("voxproof.monitor")
MAX_POINTS = 400
MAX_INCIDENTS = 500
MAX_INCIDENT_BYTES = 1 << 20


def _t(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.2f} %"


def line_svg(values: Sequence[float], *, band: tuple[float, float] | None = None, centre: float | None = None,
             lows: Sequence[float] | None = None, highs: Sequence[float] | None = None, flags: Sequence[bool] = (),
             label: str = "", width: int = 640, height: int = 130) -> str:
    """Window values as a line (red dots where ``flags``), an optional interval ribbon and reference band."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not pts:
        return "<p>n/a (no values)</p>"
    ys = [v for _, v in pts] + [x for x in (lows or []) + (highs or []) if x is not None and math.isfinite(x)]
    if band is not None:
        ys += [b for b in band if math.isfinite(b)]
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    n = max(len(values) - 1, 1)

    def X(i: float) -> float:
        return 40 + (width - 50) * i / n

    def Y(v: float) -> float:
        return 8 + (height - 24) * (1 - (v - lo) / (hi - lo))

    parts = []
    if band is not None and all(math.isfinite(b) for b in band):
        parts.append(f"<rect x='40' y='{Y(band[1]):.1f}' width='{width - 50}' height='{max(Y(band[0]) - Y(band[1]), 1):.1f}'"
                     " fill='#d9ead3'><title>reference p05-p95</title></rect>")
    if centre is not None and math.isfinite(centre):
        parts.append(f"<line x1='40' x2='{width - 10}' y1='{Y(centre):.1f}' y2='{Y(centre):.1f}' stroke='#6aa84f' "
                     "stroke-dasharray='4 3'/>")
    if lows is not None and highs is not None:
        ribbon = [(i, a, b) for i, (a, b) in enumerate(zip(lows, highs))
                  if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        if ribbon:
            top = " ".join(f"{X(i):.1f},{Y(b):.1f}" for i, _a, b in ribbon)
            bottom = " ".join(f"{X(i):.1f},{Y(a):.1f}" for i, a, _b in reversed(ribbon))
            parts.append(f"<polygon points='{top} {bottom}' fill='#cfe2f3'/>")
    parts.append("<polyline fill='none' stroke='#17324d' stroke-width='1.5' points='"
                 + " ".join(f"{X(i):.1f},{Y(v):.1f}" for i, v in pts) + "'/>")
    for i, v in pts:
        if i < len(flags) and flags[i]:
            parts.append(f"<circle cx='{X(i):.1f}' cy='{Y(v):.1f}' r='3' fill='#cc0000'><title>window {i}: drift"
                         "</title></circle>")
    parts.append(f"<text x='0' y='14' font-size='10'>{esc(f'{hi:.3g}')}</text>"
                 f"<text x='0' y='{height - 12}' font-size='10'>{esc(f'{lo:.3g}')}</text>"
                 f"<text x='40' y='{height - 1}' font-size='10'>window 0</text>"
                 f"<text x='{width - 70}' y='{height - 1}' font-size='10'>window {len(values) - 1}</text>")
    return f"<svg width='{width}' height='{height}' role='img' aria-label='{esc(label)}'>{''.join(parts)}</svg>"


def _incidents(folder: str | Path | None) -> list[dict[str, Any]]:
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for p in sorted(Path(folder).glob("incident-*.json"))[:MAX_INCIDENTS]:
        try:
            if not p.is_file() or p.stat().st_size > MAX_INCIDENT_BYTES:
                continue
            d = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(d, dict):
                out.append(d)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            log.warning("skipping unreadable incident file %s", p)
    return out


def _alias_changes(location: str | None) -> list[Any]:
    if not location:
        return []
    from voxproof.registry import Registry

    with Registry.open(location) as reg:
        return [h for h in reg.history() if h.alias is not None or h.action in ("rollback", "promote")]


def render(reports: Sequence[WindowReport], profile: ReferenceProfile, policy: MonitorPolicy, *,
           log_label: str, incidents: Sequence[dict[str, Any]] = (), changes: Sequence[Any] = ()) -> str:
    step = max(1, math.ceil(len(reports) / MAX_POINTS))
    shown = list(reports)[::step]
    page = Page("voxproof monitor", f"log {log_label} · {len(reports)} windows of {policy.window.size:g} "
                f"{'requests' if policy.window.by == 'count' else 's'} · reference: "
                f"{profile.source.get('run') or profile.source.get('log')} ({profile.n_requests} requests)")
    drift_n = sum(r.drift.status == "drift" for r in reports)
    small = sum(r.drift.status == "too small" for r in reports)
    last = next((r.estimate for r in reversed(reports) if r.estimate is not None and r.estimate.reason is None), None)
    page.add("Summary", cards([
        ("windows", str(len(reports)), f"{small} too small"),
        ("windows with drift", str(drift_n), f"{policy.drift.correction}, PSI >= {policy.drift.psi:g}"),
        ("latest estimated WER", _pct(None if last is None else last.point),
         "n/a" if last is None else f"[{_pct(last.low)}, {_pct(last.high)}]"),
        ("incidents", str(len(incidents)), ""),
    ]))
    flags = [r.drift.status == "drift" for r in shown]
    feats = []
    for name, p in profile.numeric.items():
        med = []
        for r in shown:
            f = next((x for x in r.drift.features if x.feature == name), None)
            med.append(f.summary if f is not None and isinstance(f.summary, float) else None)
        feats.append(f"<h3>{esc(name)}</h3>" + line_svg(med, band=p.band() if p.available else None,
                                                         centre=p.percentiles.get("p50"), flags=flags, label=name))
    page.add("Features over time (window median; green band: reference p05-p95; red: drift)", "".join(feats))
    if profile.calibration is not None:
        est = [r.estimate for r in shown]
        page.add("Estimated WER (label-free, bootstrap 95 % interval)", line_svg(
            [None if e is None or e.reason else e.point for e in est],
            lows=[None if e is None or e.reason else e.low for e in est],
            highs=[None if e is None or e.reason else e.high for e in est],
            centre=profile.calibration.reference_wer, label="estimated WER")
            + "<p>Dashed line: the reference run's true WER. The estimate cannot see dropped utterances "
              "(see the empty-on-speech marker) and is optimistic under shifts that leave the model confident.</p>")
    rows = []
    for r in reports[-200:]:
        top = max((f for f in r.drift.features if f.psi == f.psi), key=lambda f: f.psi, default=None)
        e = r.estimate
        rows.append((r.drift.index, _t(r.drift.start), r.requests, r.errors, r.drift.status,
                     ", ".join(r.drift.drifted) or "-",
                     "-" if top is None else f"{top.feature} {top.psi:.3f}",
                     "n/a" if e is None or e.reason else f"{_pct(e.point)} [{_pct(e.low)}, {_pct(e.high)}]",
                     *(_pct(r.markers[m].rate) if m in r.markers else "n/a"
                       for m in ("no_speech_text", "repetition", "wps_out_of_range", "empty_on_speech"))))
    page.add("Windows (latest 200)", table(
        ["window", "start (UTC)", "requests", "5xx", "status", "drifted", "largest PSI", "est. WER",
         "text on no speech", "repetition", "words/s out of range", "empty on speech"], rows, numeric=(0, 2, 3)))
    page.add("Incidents", table(["at", "rule", "action", "target", "version", "detail"], [
        (i.get("at"), (i.get("rule") or {}).get("rule"), i.get("action"), i.get("target"), i.get("version"),
         (i.get("rule") or {}).get("detail")) for i in incidents]) if incidents else "<p>none</p>")
    page.add("Alias changes", table(["at", "actor", "action", "alias", "from", "to", "reason"], [
        (h.at, h.actor, h.action, h.alias, h.from_version, h.to_version, h.reason) for h in changes])
        if changes else "<p>none (or no --registry given)</p>")
    return page.render()


def write_report(log_location: str, profile: ReferenceProfile, policy: MonitorPolicy, out: str | Path, *,
                 incidents_dir: str | Path | None = None, registry_location: str | None = None,
                 route: str = "main") -> Path:
    reports = list(analyze_log(open_log(log_location), profile, policy, route=route))
    label = log_location.split("@")[-1] if "://" in log_location else Path(log_location).name
    text = render(reports, profile, policy, log_label=label, incidents=_incidents(incidents_dir),
                  changes=_alias_changes(registry_location))
    p = Path(out)
    p.write_text(text, encoding="utf-8")
    return p
