"""Long-form failure analysis of session rows (tag ``session_segments``, :mod:`voxproof.perturb.sessions`)
from the one alignment of the whole session's reference and hypothesis.

- **Loops**: hypothesis n-grams (default 3) that occur more often than in the reference; a loop is an
  n-gram repeated at least ``loop_min_excess`` times beyond the reference.
- **Dropped windows**: runs of consecutive deleted reference words spanning more than ``drop_seconds``.
- **Error by position**: errors per reference word in consecutive windows of ``window_seconds``
  (substitutions and deletions at their reference word, insertions at the reference word before them).

Reference word times: only utterance boundaries are exact; a word inside an utterance is placed by
linear interpolation between its utterance's measured speech start and end (said in every result).

Alignment cost: rapidfuzz's ``editops`` on tokens mapped to code points, a bit-parallel Levenshtein
(Hyyrö): O(ceil(m / 64) * n) word steps and O(m + n) memory for the path via Hirschberg-style splitting,
so a 2-hour session (about 20,000 words each side) is one call (measured in the notes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.align import DELETE, INSERT, SUBSTITUTE, align
from voxproof.metrics.intervals import _num
from voxproof.metrics.normalize import Normalizer
from voxproof.metrics.timing import has_segments, segments_of
from voxproof.run.records import ResultRow

WINDOW_S = 30.0
DROP_S = 5.0
NGRAM = 3
LOOP_MIN_EXCESS = 3
PLACEMENT = "reference word times interpolated linearly inside each utterance between its measured speech edges"


@dataclass(frozen=True)
class Loop:
    session: str
    ngram: str
    hyp_count: int
    ref_count: int

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "ngram": self.ngram, "hyp_count": self.hyp_count,
                "ref_count": self.ref_count}


@dataclass(frozen=True)
class DroppedWindow:
    session: str
    start: float
    end: float
    words: int

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "start": round(self.start, 2), "end": round(self.end, 2),
                "seconds": round(self.end - self.start, 2), "words": self.words}


@dataclass(frozen=True)
class LongformScores:
    """Long-form failures over a condition's session rows; ``by_position`` rows are
    ``(window start s, reference words, errors)`` summed over sessions."""

    sessions: int
    ref_words: int
    errors: int
    loops: tuple[Loop, ...]
    dropped: tuple[DroppedWindow, ...]
    window_seconds: float
    by_position: tuple[tuple[float, int, int], ...]
    settings: dict[str, Any]
    note: str = PLACEMENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions, "ref_words": self.ref_words, "errors": self.errors,
            "session_wer": _num(self.errors / self.ref_words if self.ref_words else float("nan")),
            "loops": [x.to_dict() for x in self.loops], "dropped": [x.to_dict() for x in self.dropped],
            "window_seconds": self.window_seconds,
            "by_position": [{"start": s, "ref_words": n, "errors": e,
                             "wer": _num(e / n if n else float("nan"))} for s, n, e in self.by_position],
            "settings": self.settings, "note": self.note,
        }


def reference_times(row: ResultRow, norm: Normalizer) -> tuple[list[str], list[float]]:
    """The session's normalised reference tokens and an estimated time (s) for each (see :data:`PLACEMENT`)."""
    tokens: list[str] = []
    times: list[float] = []
    for _utt, _start, _end, speech_start, speech_end, text in segments_of(row):
        toks = norm(text).split()
        k = len(toks)
        tokens += toks
        times += [speech_start + (speech_end - speech_start) * (i + 0.5) / k for i in range(k)]
    return tokens, times


def loops_of(session: str, ref: Sequence[str], hyp: Sequence[str], n: int, min_excess: int) -> list[Loop]:
    """Hypothesis n-grams occurring at least ``min_excess`` times more than in the reference."""
    def grams(tokens: Sequence[str]) -> Counter[str]:
        return Counter(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))

    rc, hc = grams(ref), grams(hyp)
    found = [Loop(session, g, c, rc.get(g, 0)) for g, c in hc.items() if c - rc.get(g, 0) >= min_excess]
    return sorted(found, key=lambda x: (x.ref_count - x.hyp_count, x.ngram))


def analyze_session(
    row: ResultRow, norm: Normalizer, *, window_seconds: float = WINDOW_S, drop_seconds: float = DROP_S,
    ngram: int = NGRAM, loop_min_excess: int = LOOP_MIN_EXCESS,
) -> tuple[list[Loop], list[DroppedWindow], dict[int, list[int]], int, int]:
    """Loops, dropped windows, ``{window index: [ref words, errors]}``, reference words and errors of one row."""
    ref, times = reference_times(row, norm)
    hyp = norm(row.hypothesis or "").split()
    a = align(ref, hyp)
    windows: dict[int, list[int]] = {}
    for t in times:
        windows.setdefault(int(t // window_seconds), [0, 0])[0] += 1
    dropped: list[DroppedWindow] = []
    run: list[int] = []
    last_ref = 0

    def close_run() -> None:
        if run and times[run[-1]] - times[run[0]] > drop_seconds:
            dropped.append(DroppedWindow(row.utt_id, times[run[0]], times[run[-1]], len(run)))
        run.clear()

    for op, i, _j in a.ops:
        if op == DELETE:
            run.append(i)
        else:
            close_run()
        if i is not None:
            last_ref = i
        if op in (SUBSTITUTE, DELETE, INSERT) and times:
            w = int(times[min(last_ref, len(times) - 1)] // window_seconds)
            windows.setdefault(w, [0, 0])[1] += 1
    close_run()
    return (loops_of(row.utt_id, ref, hyp, ngram, loop_min_excess), dropped, windows, len(ref),
            a.counts.errors)


def score_longform(
    rows: Sequence[ResultRow], norm: Normalizer, *, window_seconds: float = WINDOW_S, drop_seconds: float = DROP_S,
    ngram: int = NGRAM, loop_min_excess: int = LOOP_MIN_EXCESS,
) -> LongformScores | None:
    """Long-form failures over the ok session rows among ``rows`` (None when there are none)."""
    sessions = [r for r in rows if r.ok and has_segments(r)]
    if not sessions:
        return None
    loops: list[Loop] = []
    dropped: list[DroppedWindow] = []
    pos: dict[int, list[int]] = {}
    ref_words = errors = 0
    for row in sessions:
        lp, dr, win, n, e = analyze_session(row, norm, window_seconds=window_seconds, drop_seconds=drop_seconds,
                                            ngram=ngram, loop_min_excess=loop_min_excess)
        loops += lp
        dropped += dr
        ref_words += n
        errors += e
        for w, (words, errs) in win.items():
            acc = pos.setdefault(w, [0, 0])
            acc[0] += words
            acc[1] += errs
    by_position = tuple((w * window_seconds, n, e) for w, (n, e) in sorted(pos.items()))
    settings = {"window_seconds": window_seconds, "drop_seconds": drop_seconds, "ngram": ngram,
                "loop_min_excess": loop_min_excess}
    return LongformScores(len(sessions), ref_words, errors, tuple(loops), tuple(dropped), window_seconds,
                          by_position, settings)
