"""Report views of long-form failures on sessions (summary.json ``scores.conditions[].longform``): loops,
dropped windows and error rate by position, shared by the console and the HTML page."""

from __future__ import annotations

from typing import Any

from voxproof.report.html import condition_sections, esc, fmt_interval, na, table


def _pct(x: float | None, why: str) -> str:
    return na(why) if x is None else f"{x * 100:.1f} %"


def longform_lines(lf: dict[str, Any]) -> list[str]:
    """Plain-text lines: session WER, loops, dropped windows, error by position."""
    iv = lf.get("session_wer_interval")
    lines = [(f"session WER {fmt_interval(iv, minus='-') if iv else _pct(lf.get('session_wer'), 'no reference words')} "
              f"({lf['errors']} errors / {lf['ref_words']} reference words, one alignment per session; interval over {lf['window_seconds']:g} s blocks)")]
    loops = lf.get("loops") or []
    lines.append(f"loops (units of 1-{lf['settings']['ngram']} words written back to back >= "
                 f"{lf['settings']['loop_min_excess']} more times than the reference): {len(loops)}" + (
                     "" if not loops else "; " + "; ".join(
                     f"{x['session']}: \"{x['ngram'][:40]}\" x{x['hyp_count']} (reference x{x['ref_count']})"
                     for x in loops[:3])))
    dropped = lf.get("dropped") or []
    lines.append(f"dropped windows (deletion runs > {lf['settings']['drop_seconds']:g} s): {len(dropped)}" + (
        "" if not dropped else "; " + "; ".join(
            f"{d['session']} {d['start']:.1f}-{d['end']:.1f} s ({d['words']} words)" for d in dropped[:3])))
    lines.append(f"WER by {lf['window_seconds']:g} s window: " + ", ".join(
        f"{p['start']:g}s {_pct(p['wer'], 'no words')}" for p in lf.get("by_position") or []))
    if line := cost_line(lf):
        lines.append(line)
    return lines


def cost_line(lf: dict[str, Any]) -> str | None:
    """The cost of long-form: session WER against the per-utterance WER of the same utterances (None when
    the run did not decode them one by one)."""
    c = lf.get("versus_utterances")
    if not isinstance(c, dict):
        return None
    diff = fmt_interval(c["difference"], scale=100.0, unit="pts", digits=2, ci_digits=2, minus="-")
    return (f"cost of long-form ({c['utterances']} utterances of {c['sessions']} sessions also decoded one by one, "
            f"{c['ref_words']} words): session {_pct(c['session_wer'], 'no words')} vs per-utterance "
            f"{_pct(c['utterance_wer'], 'no words')}, difference {diff} (paired bootstrap)")


def _longform_body(lf: dict[str, Any]) -> str:
    rows = [[f"{p['start']:g}–{p['start'] + lf['window_seconds']:g} s", p["ref_words"], p["errors"],
             _pct(p["wer"], "no words")] for p in lf.get("by_position") or []]
    cost = cost_line(lf)
    return ("".join(f"<p>{esc(line)}</p>" for line in longform_lines(lf)[:3])
            + (f"<p>{esc(cost)}</p>" if cost else "")
            + table(["window", "reference words", "errors", "WER"], rows, numeric=(1, 2))
            + f"<p class='muted'>{esc(lf['note'])}.</p>")


def longform_html(summary: dict[str, Any]) -> str | None:
    """The "Long-form" section body, or None when no condition has session rows."""
    return condition_sections(summary, "longform", _longform_body, "long-form figures as JSON")
