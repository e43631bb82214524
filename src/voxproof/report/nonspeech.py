"""Report views of hallucination on non-speech clips (summary.json ``scores.conditions[].non_speech``):
one table row per noise type and the phrase bag, shared by the console and the HTML page."""

from __future__ import annotations

from typing import Any

from voxproof.report.html import condition_sections, fmt_interval, table

HEADERS = ["noise type", "clips", "minutes", "hallucinated words / min [CI]", "clips with output [CI]"]
PHRASE_HEADERS = ["phrase", "clips", "share of clips [CI]"]


def rate_text(iv: dict[str, Any] | None, minus: str = "-") -> str:
    """Words per minute with its interval, ``n/a (why)`` when undefined."""
    return fmt_interval(iv, scale=1.0, unit="", digits=2, ci_digits=2, minus=minus)


def kind_rows(ns: dict[str, Any], minus: str = "-") -> list[list[str]]:
    """One row per noise type, then ``all``: the cells of :data:`HEADERS` as text."""
    groups = [*ns.get("by_kind", []), ns["overall"]]
    return [[g["name"], str(g["clips"]), f"{g['minutes'] or 0:.2f}", rate_text(g["words_per_minute"], minus),
             fmt_interval(g["with_output"], digits=1, minus=minus)] for g in groups]


def phrase_rows(ns: dict[str, Any], minus: str = "-") -> list[list[str]]:
    return [[_short(p["phrase"]), str(p["clips"]), fmt_interval(p["share"], digits=1, minus=minus)]
            for p in ns.get("phrases", [])]


def _short(phrase: str, limit: int = 60) -> str:
    """A phrase cut for a table cell, saying how many words a looping output had."""
    if len(phrase) <= limit:
        return phrase
    return f"{phrase[:limit].rsplit(' ', 1)[0]} ... ({len(phrase.split())}+ words)"


def _non_speech_body(ns: dict[str, Any]) -> str:
    body = table(HEADERS, kind_rows(ns, minus="−"), numeric=(1, 2))
    phrases = phrase_rows(ns, minus="−")
    body += (f"<p>Most frequent outputs ({ns.get('distinct_phrases', 0)} distinct; a clip's whole normalised "
             "output is one phrase):</p>" + table(PHRASE_HEADERS, phrases, numeric=(1,))
             if phrases else "<p>No clip produced any output.</p>")
    return body


def non_speech_html(summary: dict[str, Any]) -> str | None:
    """The "Hallucination on non-speech" section body, or None when no condition has non-speech clips."""
    sections = condition_sections(summary, "non_speech", _non_speech_body, "non-speech figures as JSON")
    if sections is None:
        return None
    return ("<p>Every word a recogniser writes on a clip marked <code>non_speech=true</code> is an insertion. "
            "Intervals: words per minute, percentile bootstrap over clips (it collapses to [0, 0] when no clip "
            "of a group wrote anything); shares of clips, Wilson.</p>" + sections)
