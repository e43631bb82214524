"""The HTML page comparing two runs: paired WER difference with its interval per condition, the paired
significance tests (textbook forms, or sc_stats' definitions with ``--tests sctk``), both runs' slices side by side, and accuracy against speed (WER vs RTFx)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from voxproof.report.html import (
    Page,
    esc,
    figure,
    fmt_interval,
    fmt_num,
    fmt_pct,
    json_block,
    na,
    paragraph,
    table,
)

log = logging.getLogger("voxproof.report")


def _summary(run: str | Path) -> dict[str, Any] | None:
    path = Path(run) / "summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def _difference_bar(d: dict[str, Any], scale: float) -> str:
    """A bar on [-scale, +scale] centred on zero: the interval of B - A and its estimate."""
    if d.get("estimate") is None or scale <= 0:
        return ""

    def pos(x: float) -> float:
        return max(0.0, min(100.0, 50.0 + 50.0 * x / scale))

    low, high = d.get("low", d["estimate"]), d.get("high", d["estimate"])
    return (
        "<div class='ival'><div class='p' style='left:50%;background:#999'></div>"
        f"<div class='r' style='left:{pos(low):.1f}%;width:{max(pos(high) - pos(low), 0.5):.1f}%'></div>"
        f"<div class='p' style='left:{pos(d['estimate']):.1f}%'></div></div>"
    )


def _comparisons(data: dict[str, Any]) -> str:
    rows = []
    scale = max([abs(c["difference"].get(k) or 0) for c in data["comparisons"] for k in ("low", "high", "estimate")]
                + [0.01]) * 1.05
    for c in data["comparisons"]:
        d = c["difference"]
        rows.append([
            c["condition"], c["utterances"], c["ref_words"], fmt_pct(c["wer_a"]), fmt_pct(c["wer_b"]),
            (esc(fmt_interval(d)), d.get("estimate") or 0), (_difference_bar(d, scale), d.get("estimate") or 0),
            fmt_num(c["prob_b_better"], reason="no resample"),
        ])
    head = table(["condition", "utterances", "words", "WER A", "WER B", "B − A (paired)",
                  "interval (0 in the middle; left: B better)", "P(B better)"], rows, numeric=(1, 2))
    tests = []
    for c in data["comparisons"]:
        for t in c["tests"]:
            why = _test_reason(t)
            definition = "sc_stats definitions" if t.get("definition") == "sc_stats" else "textbook"
            tests.append([c["condition"], t["name"], fmt_num(t["statistic"], ".4g", why),
                          fmt_num(t["p_value"], ".3g", why), f"{t['method']} ({definition})", t["n"]])
        for w in c["warnings"]:
            tests.append([c["condition"], "warning", "", "", w, ""])
    return head + "<h3>Significance tests</h3>" + table(
        ["condition", "test", "statistic", "p", "method", "n"], tests, numeric=(5,))


def _test_reason(t: dict[str, Any]) -> str:
    """Why a paired test has no statistic or p-value."""
    details = t.get("details") or {}
    if details.get("reason"):
        return str(details["reason"])
    if details.get("sd") == 0.0:
        return "every utterance differs by the same amount" if details.get("mean_difference") else "no differences"
    return "too few utterances" if (t.get("n") or 0) < 2 else "not computable"


def _dropped_text(dropped: Any) -> str:
    """``3 only in B`` from compare's dropped counts."""
    if not isinstance(dropped, dict):
        return str(dropped)
    labels = {"only_in_a": "only in A", "only_in_b": "only in B", "reference_differs": "reference differs",
              "error_rows": "error rows"}
    parts = [f"{v} {labels.get(k, k.replace('_', ' '))}" for k, v in dropped.items() if v]
    return ", ".join(parts) or "none"


def _slices(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None:
        return paragraph("Slices need both runs' summary.json (run 'voxproof report RUN').")
    rows = []
    conds_b = {c["condition"]: c for c in b["scores"]["conditions"]}
    for ca in a["scores"]["conditions"]:
        cb = conds_b.get(ca["condition"])
        if cb is None:
            continue
        sb = {(s["key"], s["value"]): s for s in cb["slices"]}
        for s in ca["slices"]:
            other = sb.get((s["key"], s["value"]))
            if other is None:
                continue
            wa, wb = s["wer"]["estimate"], other["wer"]["estimate"]
            change = None if wa is None or wb is None else wb - wa
            rows.append([
                ca["condition"], s["key"], s["value"], s["utterances"], esc(fmt_interval(s["wer"])),
                esc(fmt_interval(other["wer"])),
                (esc(na("a run has no reference words here") if change is None else
                     ("+" if change >= 0 else "") + fmt_num(100 * change, ".2f") + " pts"), change or 0),
            ])
    note = ("<p>Per-slice WER of each run with its own interval; the paired test of a slice is the gate's job "
            "('voxproof gate' checks every slice against a margin).</p>")
    return note + table(["condition", "slice by", "value", "utterances", "WER A", "WER B", "change"], rows,
                        numeric=(3,))


def _speed(a: dict[str, Any] | None, b: dict[str, Any] | None, labels: tuple[str, str]) -> str | None:
    points = []
    for label, s in zip(labels, (a, b)):
        if s is None or not s["scores"]["conditions"]:
            continue
        first = s["scores"]["conditions"][0]
        lat = (s.get("latency") or {}).get(first["condition"]) or {}
        if not lat.get("rtfx"):
            continue
        w = first["wer"]
        points.append({"name": label, "wer": w["estimate"], "rtfx": lat["rtfx"],
                       "wer_interval": None if w.get("low") is None else [w["low"], w["high"]]})
    if not points:
        return None
    rows = [[p["name"], fmt_pct(p["wer"]), f"{p['rtfx']:.1f}"] for p in points]
    html = table(["run", "WER (first condition)", "RTFx"], rows, sortable=False)
    try:
        from voxproof.report.deployment import wer_rtfx_scatter_png

        html += figure(wer_rtfx_scatter_png(points, "WER vs RTFx"),
                       "WER of the first condition against speed (RTFx, log scale) for each run, with its interval.")
    except Exception as exc:  # the figure is optional; the table above has the numbers
        log.warning("scatter failed: %s", exc)
    return html


def render_compare_page(data: dict[str, Any], run_a: str | Path, run_b: str | Path) -> str:
    """The comparison page for ``compare_to_dict`` output ``data`` of runs A and B."""
    a, b = _summary(run_a), _summary(run_b)
    norm = data["normalizer"]
    hashes = data.get("dataset_hash")
    dataset = hashes.get("a") if isinstance(hashes, dict) else hashes
    intersect = "only shared utterances (--intersect)" if data.get("intersect") else "every utterance"
    page = Page(f"voxproof compare: {Path(str(run_a)).name} (A) vs {Path(str(run_b)).name} (B)",
                f"normaliser {norm.get('name')}@{norm.get('version')} · dataset {str(dataset)[:12]} · "
                f"compared: {intersect} · left out: {_dropped_text(data.get('dropped'))}")
    page.add("Paired WER difference", _comparisons(data), "difference")
    speed = _speed(a, b, ("A: " + Path(str(run_a)).name, "B: " + Path(str(run_b)).name))
    if speed:
        page.add("Accuracy and speed", speed, "speed")
    page.add("Slices", _slices(a, b), "slices")
    page.add("Data", json_block(data), "data")
    return page.render()
