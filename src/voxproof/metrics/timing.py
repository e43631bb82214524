"""Word-timing accuracy: how far a recogniser's word times fall from known boundaries.

Input: rows of sessions (tag ``session_segments``, :mod:`voxproof.perturb.sessions`), whose reference
times are exact at utterance boundaries: each utterance's first word starts at its measured speech
start, its last word ends at its measured speech end. The session reference and the hypothesis words
(each word normalised on its own, its tokens keeping the word's times) are aligned once over the whole
session; a boundary word is *matched* when the alignment pairs it with an identical hypothesis token.

Figures on matched boundary words: absolute start and end errors (median, p90, p99, percentile
bootstrap over boundary words), the signed median start error (bias), the share within each collar
(50/100/200 ms, Wilson), and a time-constrained error rate: the share of timed reference words that are
not recognised within the collar (missed, substituted, or matched outside it; Wilson).
:func:`paired_p90_start` compares two runs.

Words inside an utterance have no exact time. When the row also has tag ``session_word_times`` (a
PocketSphinx forced alignment of each utterance's reference, ``sessions@2``), every word of an aligned
utterance is judged against the aligner's times through the same session alignment and the same figures
(:class:`AlignedTiming`), next to the aligner's own error at the exact utterance edges, which says how far
those reference times can be trusted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.manifest.entries import SEGMENTS_TAG, WORD_TIMES_TAG, segments_problem, word_times_problem
from voxproof.metrics.align import EQUAL, align
from voxproof.metrics.intervals import (
    Interval,
    _num,
    check_settings,
    percentile_interval,
    proportion_interval,
)
from voxproof.metrics.normalize import Normalizer
from voxproof.run.records import ResultRow

log = logging.getLogger("voxproof.metrics")

COLLARS = (0.05, 0.1, 0.2)
QUANTILES = (0.5, 0.9, 0.99)
START, END = "start", "end"
EXACT, ALIGNED = "exact", "aligned"  # reference time: measured utterance edge, or forced alignment


@dataclass(frozen=True)
class BoundaryError:
    """One timed reference word: ``which`` is ``start`` (an utterance's first word) or ``end`` (its last);
    ``error`` is hypothesis minus reference time in seconds, None when the word was not matched. With
    ``source`` ALIGNED the reference time is the forced alignment's and ``word`` the token's index in its
    utterance (any word, not only the first and last)."""

    session: str
    utt_id: str
    which: str
    ref_time: float
    hyp_time: float | None
    source: str = EXACT
    word: int = -1

    @property
    def error(self) -> float | None:
        return None if self.hyp_time is None else self.hyp_time - self.ref_time

    @property
    def key(self) -> tuple[str, ...]:
        return (self.session, self.utt_id, self.which) if self.source == EXACT else (
            self.session, self.utt_id, self.which, str(self.word))


def has_segments(row: ResultRow) -> bool:
    """A session row whose segments tag is well formed (manifests are checked on reading; a hand-made
    run store may still hold a bad one, which is then skipped with a warning)."""
    if SEGMENTS_TAG not in row.tags:
        return False
    problem = segments_problem(row.tags[SEGMENTS_TAG])
    if problem:
        log.warning("row %r: tag %s ignored: %s", row.utt_id, SEGMENTS_TAG, problem)
    return problem is None


def segments_of(row: ResultRow) -> list[tuple[str, float, float, float, float, str]]:
    """``(utt_id, start, end, speech_start, speech_end, text)`` of every segment of a session row."""
    try:
        value = json.loads(row.tags[SEGMENTS_TAG])
        return [(str(s[0]), float(s[1]), float(s[2]), float(s[3]), float(s[4]), str(s[5])) for s in value]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(f"row {row.utt_id!r} has an unreadable {SEGMENTS_TAG} tag: {exc}") from None


def word_times_of(row: ResultRow) -> dict[str, list[tuple[str, float, float]]]:
    """The forced-aligned ``(word, start, end)`` of each utterance of a session row (empty without a
    well-formed ``session_word_times`` tag)."""
    value = row.tags.get(WORD_TIMES_TAG)
    if value is None:
        return {}
    if problem := word_times_problem(value):
        log.warning("row %r: tag %s ignored: %s", row.utt_id, WORD_TIMES_TAG, problem)
        return {}
    out: dict[str, list[tuple[str, float, float]]] = {}
    for utt_id, word, start, end in json.loads(value):
        out.setdefault(utt_id, []).append((word, float(start), float(end)))
    return out


Span = tuple[tuple[str, float, float, float, float, str], int, int]  # (segment, first ref token, tokens)


def _session_alignment(
    row: ResultRow, norm: Normalizer,
) -> tuple[list[tuple[str, float, float]], list[str], list[Span], dict[int, int]] | None:
    """One alignment of the session reference with the hypothesis words: (hypothesis tokens with the
    times of their word, reference tokens, each segment's span of reference tokens, matched reference
    index -> hypothesis index); None when the backend returned no word times."""
    words = row.transcript.words if row.transcript is not None else ()
    if (row.hypothesis or "").strip() and (not words or any(w.start is None or w.end is None for w in words)):
        return None
    hyp: list[tuple[str, float, float]] = [
        (tok, float(w.start), float(w.end)) for w in words for tok in norm(w.text).split()  # type: ignore[arg-type]
    ]
    ref: list[str] = []
    spans: list[Span] = []
    for seg in segments_of(row):
        tokens = norm(seg[5]).split()
        if tokens:
            spans.append((seg, len(ref), len(tokens)))
            ref.extend(tokens)
    a = align(ref, [t for t, _, _ in hyp])
    matched = {i: j for op, i, j in a.ops if op == EQUAL and i is not None and j is not None}
    return hyp, ref, spans, matched


def boundary_errors(row: ResultRow, norm: Normalizer) -> list[BoundaryError] | None:
    """The timed reference words of one session row with the matched hypothesis times; None when the
    backend returned no word times."""
    found = _session_alignment(row, norm)
    if found is None:
        return None
    hyp, _, spans, matched = found
    out = []
    for (utt_id, _s, _e, speech_start, speech_end, _text), first, n in spans:
        for i, which, t in ((first, START, speech_start), (first + n - 1, END, speech_end)):
            j = matched.get(i)
            got = None if j is None else (hyp[j][1] if which == START else hyp[j][2])
            out.append(BoundaryError(row.utt_id, utt_id, which, t, got))
    return out


def aligned_errors(row: ResultRow, norm: Normalizer) -> tuple[list[BoundaryError], list[BoundaryError], int] | None:
    """Every word of the force-aligned utterances of one session row against the aligner's times:
    (hypothesis errors, one start and one end per word; the aligner's own errors at the exact utterance
    edges, its first word's start minus the measured speech start and its last word's end minus the
    measured speech end; utterances not judged). An utterance is not judged when it has no aligned words
    or its words, normalised one by one, do not give the tokens of its normalised reference. None when
    the backend returned no word times or the row has no aligned words."""
    times = word_times_of(row)
    found = _session_alignment(row, norm) if times else None
    if found is None:
        return None
    hyp, ref, spans, matched = found
    out: list[BoundaryError] = []
    edges: list[BoundaryError] = []
    skipped = 0
    for (utt_id, _s, _e, speech_start, speech_end, _text), first, n in spans:
        toks = [(tok, a, b) for w, a, b in times.get(utt_id, ()) for tok in norm(w).split()]
        if [t for t, _, _ in toks] != ref[first:first + n]:
            skipped += 1
            continue
        for k, (_tok, a, b) in enumerate(toks):
            j = matched.get(first + k)
            out.append(BoundaryError(row.utt_id, utt_id, START, a, None if j is None else hyp[j][1], ALIGNED, k))
            out.append(BoundaryError(row.utt_id, utt_id, END, b, None if j is None else hyp[j][2], ALIGNED, k))
        edges.append(BoundaryError(row.utt_id, utt_id, START, speech_start, toks[0][1], ALIGNED, 0))
        edges.append(BoundaryError(row.utt_id, utt_id, END, speech_end, toks[-1][2], ALIGNED, n - 1))
    return out, edges, skipped


def _quantiles(abs_err: np.ndarray, n_resamples: int, seed: int, level: float) -> dict[str, Interval]:
    out: dict[str, Interval] = {}
    n = len(abs_err)
    rng = np.random.default_rng(seed)
    boot = np.quantile(abs_err[rng.integers(0, n, size=(n_resamples, n))], QUANTILES, axis=1) if n else None
    for k, q in enumerate(QUANTILES):
        est = float(np.quantile(abs_err, q)) if n else float("nan")
        low, high = percentile_interval(boot[k], level) if boot is not None else (float("nan"), float("nan"))
        out[f"p{round(q * 100)}"] = Interval(est, low, high, level, "percentile", n_resamples, seed, None, n)
    return out


@dataclass(frozen=True)
class EdgeTiming:
    """Errors of one edge (``start`` or ``end``) over the matched boundary words, in seconds."""

    which: str
    timed: int
    matched: int
    abs_error: dict[str, Interval]  # p50, p90, p99 of |error|
    median_signed: float
    in_collar: dict[str, Interval]  # "50ms" -> share of matched words with |error| <= 50 ms

    def to_dict(self) -> dict[str, Any]:
        return {"which": self.which, "timed": self.timed, "matched": self.matched,
                "abs_error": {k: v.to_dict() for k, v in self.abs_error.items()},
                "median_signed": _num(self.median_signed),
                "in_collar": {k: v.to_dict() for k, v in self.in_collar.items()}}


@dataclass(frozen=True)
class TimingScores:
    """Word-timing accuracy of one condition's session rows."""

    sessions: int
    start: EdgeTiming
    end: EdgeTiming
    tc_error: dict[str, Interval]  # "100ms" -> share of timed words not recognised within the collar
    note: str
    aligned: AlignedTiming | None = None  # every word, against a forced alignment (sessions@2)

    def to_dict(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "start": self.start.to_dict(), "end": self.end.to_dict(),
                "tc_error": {k: v.to_dict() for k, v in self.tc_error.items()}, "note": self.note,
                "aligned": None if self.aligned is None else self.aligned.to_dict()}


@dataclass(frozen=True)
class AlignedTiming:
    """Word times of every word of the force-aligned utterances against the aligner's times (``start``,
    ``end``, ``tc_error``, as for the exact boundaries), and how good the aligner is: its first-word start
    and last-word end against the measured utterance edges (``aligner_start``, ``aligner_end``)."""

    utterances: int
    skipped: int  # utterances with no alignment or whose aligned words do not normalise to the reference
    start: EdgeTiming
    end: EdgeTiming
    tc_error: dict[str, Interval]
    aligner_start: EdgeTiming
    aligner_end: EdgeTiming
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"utterances": self.utterances, "skipped": self.skipped, "start": self.start.to_dict(),
                "end": self.end.to_dict(), "tc_error": {k: v.to_dict() for k, v in self.tc_error.items()},
                "aligner_start": self.aligner_start.to_dict(), "aligner_end": self.aligner_end.to_dict(),
                "note": self.note}


def collar_name(c: float) -> str:
    return f"{round(c * 1000)}ms"


def _edge(which: str, errs: Sequence[BoundaryError], n_resamples: int, seed: int, level: float) -> EdgeTiming:
    got = np.array([e.error for e in errs if e.error is not None], dtype=np.float64)
    abs_err = np.abs(got)
    return EdgeTiming(
        which, len(errs), len(got), _quantiles(abs_err, n_resamples, seed, level),
        float(np.median(got)) if len(got) else float("nan"),
        {collar_name(c): proportion_interval(int(np.sum(abs_err <= c + 1e-9)), len(got), level) for c in COLLARS},
    )


NOTE = ("reference times are exact only at utterance boundaries (first word start, last word end of each "
        "joined utterance, measured on 20 ms frames); words inside an utterance are not judged")
ALIGNED_NOTE = ("reference times of every word from a PocketSphinx forced alignment of the reference (10 ms "
                "frames); the aligner rows give its own error at the measured utterance edges")


def _tc_error(errs: Sequence[BoundaryError], level: float) -> dict[str, Interval]:
    """Share of timed words not recognised within each collar (missed, substituted or outside it), Wilson."""
    out = {}
    for c in COLLARS:
        bad = sum(1 for e in errs if e.error is None or abs(e.error) > c + 1e-9)
        out[collar_name(c)] = proportion_interval(bad, len(errs), level)
    return out


def _score_aligned(rows: Sequence[ResultRow], norm: Normalizer, n_resamples: int, seed: int,
                   level: float) -> AlignedTiming | None:
    errs: list[BoundaryError] = []
    edges: list[BoundaryError] = []
    skipped = 0
    for row in rows:
        found = aligned_errors(row, norm)
        if found is not None:
            errs.extend(found[0])
            edges.extend(found[1])
            skipped += found[2]
    if not edges:
        return None

    def edge(which: str, found: Sequence[BoundaryError]) -> EdgeTiming:
        return _edge(which, [e for e in found if e.which == which], n_resamples, seed, level)

    return AlignedTiming(len(edges) // 2, skipped, edge(START, errs), edge(END, errs), _tc_error(errs, level),
                         edge(START, edges), edge(END, edges), ALIGNED_NOTE)


def score_timing(
    rows: Sequence[ResultRow], norm: Normalizer,
    *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> TimingScores | None:
    """Timing figures of the session rows among ``rows`` (None when there are none or no row has word times)."""
    check_settings(n_resamples, level)
    errs: list[BoundaryError] = []
    timed: list[ResultRow] = []
    for row in rows:
        if not (row.ok and has_segments(row)):
            continue
        found = boundary_errors(row, norm)
        if found is None:
            continue
        timed.append(row)
        errs.extend(found)
    if not timed:
        return None
    starts = [e for e in errs if e.which == START]
    ends = [e for e in errs if e.which == END]
    return TimingScores(len(timed), _edge(START, starts, n_resamples, seed, level),
                        _edge(END, ends, n_resamples, seed, level), _tc_error(errs, level), NOTE,
                        _score_aligned(timed, norm, n_resamples, seed, level))


@dataclass(frozen=True)
class PairedTiming:
    """Candidate minus baseline p90 |start error| on the boundary words matched in both runs."""

    words: int
    baseline_p90: float
    candidate_p90: float
    difference: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words, "baseline_p90": _num(self.baseline_p90),
                "candidate_p90": _num(self.candidate_p90), "difference": self.difference.to_dict()}


def paired_p90_start(
    base_rows: Sequence[ResultRow], cand_rows: Sequence[ResultRow], norm: Normalizer,
    *, n_resamples: int = 2000, seed: int = 0, level: float = 0.95,
) -> PairedTiming | None:
    """Paired percentile bootstrap of p90(|start error|) candidate minus baseline, resampling the
    utterance starts matched in both runs (the same draw for both); None when there are none."""
    def starts(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str], float]:
        out = {}
        for row in rows:
            if row.ok and has_segments(row):
                for e in boundary_errors(row, norm) or ():
                    if e.which == START and e.error is not None:
                        out[(row.condition, *e.key)] = abs(e.error)
        return out

    b, c = starts(base_rows), starts(cand_rows)
    keys = sorted(set(b) & set(c))
    if not keys:
        return None
    bv = np.array([b[k] for k in keys])
    cv = np.array([c[k] for k in keys])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(keys), size=(n_resamples, len(keys)))
    diff = np.quantile(cv[idx], 0.9, axis=1) - np.quantile(bv[idx], 0.9, axis=1)
    low, high = percentile_interval(diff, level)
    bp, cp = float(np.quantile(bv, 0.9)), float(np.quantile(cv, 0.9))
    return PairedTiming(len(keys), bp, cp, Interval(cp - bp, low, high, level, "percentile", n_resamples, seed,
                                                     None, len(keys)))
