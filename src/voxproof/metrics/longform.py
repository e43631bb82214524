"""Long-form failure analysis of session rows (tag ``session_segments``, :mod:`voxproof.perturb.sessions`)
from the one alignment of the whole session's reference and hypothesis.

- **Loops**: tandem repeats in the hypothesis: a unit of 1 to 6 words written back to back at least
  ``loop_min_excess`` (2) more times than the reference repeats it back to back. (Counting n-grams over
  the whole session instead flags every consistent misrecognition of repeated content.)
- **Dropped windows**: runs of consecutive deleted reference words spanning more than ``drop_seconds``.
- **Error by position**: errors per reference word in consecutive windows of ``window_seconds``
  (substitutions and deletions at their reference word, insertions at the reference word before them).
- **The cost of long-form**: when the same condition also holds rows of the joined utterances decoded
  one by one (ids equal to the segment ids, same reference), each utterance's errors inside the session
  alignment (attributed as above) against its errors decoded alone: session WER minus per-utterance WER
  on the same audio and words, with a paired bootstrap resampling sessions (:class:`LongformCost`).

Reference word times: only utterance boundaries are exact; a word inside an utterance is placed by
linear interpolation between its utterance's measured speech start and end (said in every result).

Alignment cost: rapidfuzz's ``editops`` on tokens mapped to code points, a bit-parallel Levenshtein
(Hyyrö): O(ceil(m / 64) * n) word steps and O(m + n) memory for the path via Hirschberg-style splitting,
so a 2-hour session (about 20,000 words each side) is one call (measured in the notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.align import DELETE, INSERT, SUBSTITUTE, align
from voxproof.metrics.intervals import Interval, _num, bootstrap_rate
from voxproof.metrics.normalize import Normalizer
from voxproof.metrics.timing import has_segments, segments_of
from voxproof.run.records import ResultRow

WINDOW_S = 30.0
DROP_S = 5.0
NGRAM = 6  # longest loop unit looked for, in words
LOOP_MIN_EXCESS = 2  # a loop: at least 2 more back-to-back copies than the reference has (3 where it has 1)
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
    session_wer: Interval | None = None  # bootstrap over (session, window) blocks
    note: str = PLACEMENT
    versus_utterances: LongformCost | None = None  # when the run also decoded the utterances one by one

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions, "ref_words": self.ref_words, "errors": self.errors,
            "session_wer": _num(self.errors / self.ref_words if self.ref_words else float("nan")),
            "session_wer_interval": None if self.session_wer is None else self.session_wer.to_dict(),
            "loops": [x.to_dict() for x in self.loops], "dropped": [x.to_dict() for x in self.dropped],
            "window_seconds": self.window_seconds,
            "by_position": [{"start": s, "ref_words": n, "errors": e,
                             "wer": _num(e / n if n else float("nan"))} for s, n, e in self.by_position],
            "settings": self.settings, "note": self.note,
            "versus_utterances": None if self.versus_utterances is None else self.versus_utterances.to_dict(),
        }


@dataclass(frozen=True)
class LongformCost:
    """The same utterances scored inside their sessions and decoded alone: ``difference`` is session WER
    minus per-utterance WER on their words (paired percentile bootstrap, resampling sessions when there
    are at least two, else utterances)."""

    sessions: int
    utterances: int
    ref_words: int
    session_errors: int
    utterance_errors: int
    difference: Interval

    def to_dict(self) -> dict[str, Any]:
        n = self.ref_words
        return {"sessions": self.sessions, "utterances": self.utterances, "ref_words": n,
                "session_errors": self.session_errors, "utterance_errors": self.utterance_errors,
                "session_wer": _num(self.session_errors / n if n else float("nan")),
                "utterance_wer": _num(self.utterance_errors / n if n else float("nan")),
                "difference": self.difference.to_dict()}


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


def _errors_at(ops: Sequence[tuple[str, int | None, int | None]], n_ref: int) -> list[int]:
    """Errors per reference token of one alignment: substitutions and deletions at their reference token,
    insertions at the reference token before them (the first one for leading insertions)."""
    out = [0] * n_ref
    last_ref = 0
    for op, i, _j in ops:
        if i is not None:
            last_ref = i
        if op in (SUBSTITUTE, DELETE, INSERT) and n_ref:
            out[min(last_ref, n_ref - 1)] += 1
    return out


def _runs(tokens: Sequence[str], n: int) -> dict[tuple[str, ...], int]:
    """Most consecutive copies of each n-gram that repeats back to back in ``tokens``."""
    out: dict[tuple[str, ...], int] = {}
    for i in range(len(tokens) - 2 * n + 1):
        g = tuple(tokens[i:i + n])
        run = 1
        while tuple(tokens[i + run * n:i + (run + 1) * n]) == g:
            run += 1
        if run > 1 and run > out.get(g, 1):
            out[g] = run
    return out


def _periodic(g: tuple[str, ...]) -> bool:
    """Whether ``g`` is itself a smaller unit repeated ("beep beep" is "beep" twice)."""
    n = len(g)
    return any(n % p == 0 and g == g[:p] * (n // p) for p in range(1, n))


def loops_of(session: str, ref: Sequence[str], hyp: Sequence[str], n: int, min_excess: int) -> list[Loop]:
    """Tandem repeats of the hypothesis: a unit of 1 to ``n`` words written back to back at least
    ``min_excess`` more times than the reference ever repeats it back to back (a reference that says it
    once counts as one). A unit that is a repeat of a shorter one, or a rotation inside a longer loop
    already found, is not counted again."""
    found: list[Loop] = []
    covered: set[int] = set()
    for size in range(1, n + 1):
        ref_runs = _runs(ref, size)
        i = 0
        while i <= len(hyp) - 2 * size:
            g = tuple(hyp[i:i + size])
            run = 1
            while tuple(hyp[i + run * size:i + (run + 1) * size]) == g:
                run += 1
            base = max(1, ref_runs.get(g, 1))
            if run - base >= min_excess and not _periodic(g) and i not in covered:
                found.append(Loop(session, " ".join(g), run, base))
                covered.update(range(i, i + run * size))
                i += run * size
                continue
            i += 1
    return sorted(found, key=lambda x: (-x.hyp_count, x.ngram))


def analyze_session(
    row: ResultRow, norm: Normalizer, *, window_seconds: float = WINDOW_S, drop_seconds: float = DROP_S,
    ngram: int = NGRAM, loop_min_excess: int = LOOP_MIN_EXCESS,
) -> tuple[list[Loop], list[DroppedWindow], dict[int, list[int]], int, int]:
    """Loops, dropped windows, ``{window index: [ref words, errors]}``, reference words and errors of one row.
    ``Loop.hyp_count`` is the number of back-to-back copies, ``ref_count`` the reference's (at least 1)."""
    ref, times = reference_times(row, norm)
    hyp = norm(row.hypothesis or "").split()
    a = align(ref, hyp)
    windows: dict[int, list[int]] = {}
    for t in times:
        windows.setdefault(int(t // window_seconds), [0, 0])[0] += 1
    dropped: list[DroppedWindow] = []
    run: list[int] = []

    def close_run() -> None:
        if run and times[run[-1]] - times[run[0]] > drop_seconds:
            dropped.append(DroppedWindow(row.utt_id, times[run[0]], times[run[-1]], len(run)))
        run.clear()

    for op, i, _j in a.ops:
        if op == DELETE:
            run.append(i)
        else:
            close_run()
    close_run()
    for t, e in zip(times, _errors_at(a.ops, len(times)), strict=True):
        if e:
            windows.setdefault(int(t // window_seconds), [0, 0])[1] += e
    return (loops_of(row.utt_id, ref, hyp, ngram, loop_min_excess), dropped, windows, len(ref),
            a.counts.errors)


def score_longform(
    rows: Sequence[ResultRow], norm: Normalizer, *, window_seconds: float = WINDOW_S, drop_seconds: float = DROP_S,
    ngram: int = NGRAM, loop_min_excess: int = LOOP_MIN_EXCESS, n_resamples: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> LongformScores | None:
    """Long-form failures over the ok session rows among ``rows`` (None when there are none). The session
    WER's interval resamples ``window_seconds`` blocks of every session (neighbouring windows are not
    independent, so it is a lower bound on the uncertainty when there are few sessions)."""
    sessions = [r for r in rows if r.ok and has_segments(r)]
    if not sessions:
        return None
    loops: list[Loop] = []
    dropped: list[DroppedWindow] = []
    pos: dict[int, list[int]] = {}
    blocks: list[tuple[int, int]] = []
    ref_words = errors = 0
    for row in sessions:
        lp, dr, win, n, e = analyze_session(row, norm, window_seconds=window_seconds, drop_seconds=drop_seconds,
                                            ngram=ngram, loop_min_excess=loop_min_excess)
        loops += lp
        dropped += dr
        ref_words += n
        errors += e
        for w, (words, errs) in win.items():
            blocks.append((errs, words))
            acc = pos.setdefault(w, [0, 0])
            acc[0] += words
            acc[1] += errs
    by_position = tuple((w * window_seconds, n, e) for w, (n, e) in sorted(pos.items()))
    settings = {"window_seconds": window_seconds, "drop_seconds": drop_seconds, "ngram": ngram,
                "loop_min_excess": loop_min_excess}
    wer = bootstrap_rate([e for e, _ in blocks], [n for _, n in blocks], n_resamples=n_resamples, seed=seed,
                         level=level)
    return LongformScores(len(sessions), ref_words, errors, tuple(loops), tuple(dropped), window_seconds,
                          by_position, settings, wer, versus_utterances=longform_cost(
                              rows, norm, n_resamples=n_resamples, seed=seed, level=level))


def longform_cost(rows: Sequence[ResultRow], norm: Normalizer, *, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> LongformCost | None:
    """Session against per-utterance errors of the utterances that ``rows`` hold both ways (ok rows whose
    id is a segment id of an ok session row and whose normalised reference is that segment's); None when
    there are none."""
    from dataclasses import replace

    from voxproof.metrics.paired import compare_counts

    singles = {r.utt_id: r for r in rows if r.ok and not has_segments(r)}
    ref_len: list[int] = []
    alone: list[int] = []
    joined: list[int] = []
    groups: list[str] = []
    for row in rows:
        if not (row.ok and has_segments(row)) or not singles:
            continue
        ref, hyp = reference_times(row, norm)[0], norm(row.hypothesis or "").split()
        err_at = _errors_at(align(ref, hyp).ops, len(ref))
        first = 0
        for utt_id, *_times, text in segments_of(row):
            toks = norm(text).split()
            single = singles.get(utt_id)
            if toks and single is not None and norm(single.reference or "").split() == toks:
                ref_len.append(len(toks))
                alone.append(align(toks, norm(single.hypothesis or "").split()).counts.errors)
                joined.append(sum(err_at[first:first + len(toks)]))
                groups.append(row.utt_id)
            first += len(toks)
    if not ref_len:
        return None
    sessions = len(set(groups))
    comp = compare_counts(ref_len, alone, joined, groups=groups if sessions >= 2 else None,
                          n_resamples=n_resamples, seed=seed, level=level)
    diff = comp.difference if sessions < 2 else replace(comp.difference, blocked_by="session")
    return LongformCost(sessions, len(ref_len), sum(ref_len), sum(joined), sum(alone), diff)
