"""Report views of word timing on sessions (summary.json ``scores.conditions[].timing``): one table row
per word edge and the time-constrained error rates, shared by the console and the HTML page."""

from __future__ import annotations

from typing import Any

from voxproof.report.html import condition_sections, esc, fmt_interval, table

TIMING_HEADERS = ["edge", "matched / timed", "median |error| [CI]", "p90 |error| [CI]", "p99 |error| [CI]",
                  "signed median", "within 50 / 100 / 200 ms [CI]"]


def _ms(iv: dict[str, Any] | None, minus: str) -> str:
    return fmt_interval(iv, scale=1000.0, unit="ms", digits=0, ci_digits=0, minus=minus)


def timing_rows(t: dict[str, Any], minus: str = "-") -> list[list[str]]:
    """One row per edge (start, end) of the matched boundary words, then, when the sessions carry a forced
    alignment, one per edge of every aligned word and one per edge of the aligner against the measured
    utterance edges: the cells of :data:`TIMING_HEADERS`."""
    edges = [("word", t["start"]), ("word", t["end"])]
    if isinstance(a := t.get("aligned"), dict):
        edges += [("every word", a["start"]), ("every word", a["end"]),
                  ("aligner at utterance", a["aligner_start"]), ("aligner at utterance", a["aligner_end"])]
    out = []
    for label, edge in edges:
        signed = edge.get("median_signed")
        out.append([
            f"{label} {edge['which']}", f"{edge['matched']} / {edge['timed']}",
            *(_ms(edge["abs_error"].get(q), minus) for q in ("p50", "p90", "p99")),
            "n/a (no matched word)" if signed is None else f"{signed * 1000:+.0f} ms".replace("-", minus),
            " / ".join(fmt_interval(edge["in_collar"].get(c), digits=0, ci_digits=0, minus=minus)
                       for c in ("50ms", "100ms", "200ms")),
        ])
    return out


def tc_text(t: dict[str, Any], minus: str = "-") -> str:
    """The time-constrained error rates at each collar, one line."""
    return ", ".join(f"{c}: {fmt_interval(iv, digits=1, minus=minus)}" for c, iv in t["tc_error"].items())


def aligned_text(t: dict[str, Any], minus: str = "-") -> str | None:
    """One line on the forced-aligned words (None when the sessions have none)."""
    a = t.get("aligned")
    if not isinstance(a, dict):
        return None
    return (f"every word against a forced alignment ({a['utterances']} utterances aligned, {a['skipped']} not): "
            f"time-constrained error rate {tc_text(a, minus)}; {a['note']}")


def _timing_body(t: dict[str, Any]) -> str:
    aligned = aligned_text(t, minus="−")
    return (table(TIMING_HEADERS, timing_rows(t, minus="−"))
            + f"<p>Time-constrained error rate (timed words missed or outside the collar): "
              f"{esc(tc_text(t, minus='−'))}. {t['sessions']} sessions. {esc(t['note'])}.</p>"
            + (f"<p>{esc(aligned)}.</p>" if aligned else ""))


def timing_html(summary: dict[str, Any]) -> str | None:
    """The "Word timing" section body, or None when no condition has session rows with word times."""
    return condition_sections(summary, "timing", _timing_body, "word-timing figures as JSON")
