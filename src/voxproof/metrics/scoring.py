"""Scoring a run: from stored rows to corpus rates with intervals, slices and coverage per condition.

Hypotheses are stored raw; this stage normalises reference and hypothesis with the chosen normaliser,
aligns each utterance once (counts are cached in the run store under ``name@version`` and reused on
every later scoring), and derives every rate from summed counts. Error rows (and the runner's
``EmptyReference`` rows) are excluded from WER but counted in coverage. Hands a :class:`RunScores`
to the report, compare and gate stages.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.errors import UsageError
from voxproof.manifest.utterance import is_non_speech
from voxproof.metrics.align import EQUAL, SUBSTITUTE, align, char_counts, word_counts
from voxproof.metrics.alternates import Alternates, resolve_alternates
from voxproof.metrics.counts import ErrorCounts, total
from voxproof.metrics.intervals import METHOD, METHODS, Interval, _num, check_settings
from voxproof.metrics.longform import LongformScores, score_longform
from voxproof.metrics.nonspeech import NonSpeechScores, non_speech_rows, score_non_speech
from voxproof.metrics.normalize import DEFAULT_NORMALIZER, Normalizer, get_normalizer
from voxproof.metrics.slices import (
    FEW_SPEAKERS,
    ScoredUtterance,
    SliceGap,
    SliceScore,
    rate_interval,
    score_slices,
    speaker_groups,
)
from voxproof.metrics.timing import TimingScores, has_segments, score_timing
from voxproof.run.records import ResultRow

log = logging.getLogger("voxproof.metrics")

SCHEMA_VERSION = 1
WORD = "word"
CHAR = "char"
WER_BINS = (0.0, 1e-9, 0.1, 0.2, 0.3, 0.5, 1.0, math.inf)


@dataclass(frozen=True)
class Coverage:
    """How many rows of a condition could be scored: ``ok`` of ``total``; error rows by type."""

    total: int
    ok: int
    by_error_type: dict[str, int]

    @property
    def errors(self) -> int:
        return self.total - self.ok

    @property
    def share(self) -> float:
        return self.ok / self.total if self.total else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "ok": self.ok, "errors": self.errors, "share": _num(self.share),
                "by_error_type": dict(sorted(self.by_error_type.items()))}


@dataclass(frozen=True)
class ConditionScores:
    """Scores of one condition. ``wer``/``cer`` are corpus rates with intervals; ``raw_wer`` uses
    the ``none`` normaliser; ``mean_utterance_wer`` is the mean of per-utterance WER (utterances with
    reference words), given for comparison only. ``error_distribution`` holds S/D/I totals and a
    histogram of per-utterance WER (``bins`` edges, ``counts``)."""

    condition: str
    coverage: Coverage
    utterances: int
    speakers: int
    ref_words: int
    ref_chars: int
    audio_hours: float
    word_counts: ErrorCounts
    char_counts: ErrorCounts
    raw_word_counts: ErrorCounts
    wer: Interval
    cer: Interval
    raw_wer: float
    mer: float
    wil: float
    mean_utterance_wer: float
    slices: tuple[SliceScore, ...]
    gaps: tuple[SliceGap, ...]
    error_distribution: dict[str, Any]
    warnings: tuple[str, ...]
    classes: tuple[Any, ...] | None = None  # ClassScore per class when scored with a ClassSpec
    non_speech: NonSpeechScores | None = None  # hallucination on the rows marked non-speech
    timing: TimingScores | None = None  # word-timing accuracy on session rows with known boundaries
    longform: LongformScores | None = None  # loops, dropped windows, error by position on session rows

    def token_class(self, name: str) -> Any:
        """The :class:`voxproof.metrics.class_scores.ClassScore` called ``name`` (KeyError if none)."""
        for c in self.classes or ():
            if c.name == name:
                return c
        raise KeyError(f"no class {name!r}; scored classes: {[c.name for c in self.classes or ()]}")

    def slice(self, key: str, value: str) -> SliceScore | None:
        return next((s for s in self.slices if s.key == key and s.value == value), None)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "condition": self.condition, "coverage": self.coverage.to_dict(), "utterances": self.utterances,
            "speakers": self.speakers, "ref_words": self.ref_words, "ref_chars": self.ref_chars,
            "audio_hours": self.audio_hours, "word_counts": self.word_counts.to_dict(),
            "char_counts": self.char_counts.to_dict(), "raw_word_counts": self.raw_word_counts.to_dict(),
            "wer": self.wer.to_dict(), "cer": self.cer.to_dict(), "raw_wer": _num(self.raw_wer),
            "mer": _num(self.mer), "wil": _num(self.wil), "mean_utterance_wer": _num(self.mean_utterance_wer),
            "slices": [s.to_dict() for s in self.slices], "gaps": [g.to_dict() for g in self.gaps],
            "error_distribution": self.error_distribution, "warnings": list(self.warnings),
            "non_speech": None if self.non_speech is None else self.non_speech.to_dict(),
            "timing": None if self.timing is None else self.timing.to_dict(),
            "longform": None if self.longform is None else self.longform.to_dict(),
        }
        if self.classes is not None:
            out["classes"] = [c.to_dict() for c in self.classes]
        return out


@dataclass(frozen=True)
class RunScores:
    """Scores of every condition of a run, with the settings that produced them."""

    normalizer: dict[str, Any]
    alternates: dict[str, Any] | None
    n_resamples: int
    seed: int
    level: float
    conditions: tuple[ConditionScores, ...]
    interval_method: str = METHOD
    schema: int = SCHEMA_VERSION
    classes: dict[str, Any] | None = None  # the ClassSpec's to_dict() when classes were scored

    def condition(self, name: str) -> ConditionScores:
        for c in self.conditions:
            if c.condition == name:
                return c
        raise KeyError(f"no condition {name!r}; have {[c.condition for c in self.conditions]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "run_scores", "schema": self.schema, "normalizer": self.normalizer,
            "alternates": self.alternates,
            "intervals": {"method": self.interval_method, "n_resamples": self.n_resamples, "seed": self.seed,
                          "level": self.level},
            "conditions": [c.to_dict() for c in self.conditions],
            **({"classes": self.classes} if self.classes is not None else {}),
        }


def normalizer_key(norm: Normalizer, alternates: Alternates | None) -> str:
    """Cache key of counts: ``name@version`` (plus ``+alt:<digest>`` with alternates)."""
    return norm.label + (f"+alt:{alternates.digest}" if alternates is not None and alternates.groups else "")


def scorable(row: ResultRow) -> bool:
    """Rows that enter WER: status ok with a reference (non-speech clips are scored apart, see
    :mod:`voxproof.metrics.nonspeech`)."""
    return row.ok and row.reference is not None and row.reference.strip() != "" and not is_non_speech(row.tags)


def utterance_counts(
    store: Any, rows: Sequence[ResultRow], norm: Normalizer, alternates: Alternates | None = None,
) -> dict[tuple[str, str], tuple[ErrorCounts, ErrorCounts]]:
    """Word and character counts of every scorable row, read from the store's cache; rows not cached
    yet are aligned once and saved."""
    key = normalizer_key(norm, alternates)
    wc = store.cached_counts(key, WORD)
    cc = store.cached_counts(key, CHAR)
    new_w: dict[tuple[str, str], ErrorCounts] = {}
    new_c: dict[tuple[str, str], ErrorCounts] = {}
    for row in rows:
        k = (row.utt_id, row.condition)
        if k in wc and k in cc:
            continue
        ref, hyp = norm(row.reference or ""), norm(row.hypothesis or "")
        new_w[k] = word_counts(ref, hyp, alternates)
        new_c[k] = char_counts(ref, hyp, alternates)
    if new_w:
        log.debug("aligned %d utterances with %s (cached %d)", len(new_w), key, len(wc))
        store.save_counts(key, WORD, new_w)
        store.save_counts(key, CHAR, new_c)
        wc.update(new_w)
        cc.update(new_c)
    return {(r.utt_id, r.condition): (wc[(r.utt_id, r.condition)], cc[(r.utt_id, r.condition)]) for r in rows}


def _distribution(utts: Sequence[ScoredUtterance]) -> dict[str, Any]:
    rates = [u.words.error_rate for u in utts if u.words.ref_len > 0]
    hist = [0] * (len(WER_BINS) - 1)
    for r in rates:
        for b in range(len(WER_BINS) - 1):
            if WER_BINS[b] <= r < WER_BINS[b + 1]:
                hist[b] += 1
                break
    c = total(u.words for u in utts)
    return {
        "substitutions": c.substitutions, "deletions": c.deletions, "insertions": c.insertions,
        "correct_utterances": sum(1 for u in utts if u.words.errors == 0),
        "wer_bins": [b if math.isfinite(b) else None for b in WER_BINS], "wer_bin_counts": hist,
    }


def score_condition(
    condition: str, rows: Sequence[ResultRow], counts: dict, raw: dict,
    *, n_resamples: int, seed: int, level: float, interval_method: str = METHOD, norm: Normalizer | None = None,
) -> ConditionScores:
    by_type = Counter(r.error_type or "Unknown" for r in rows if not r.ok)
    good = [r for r in rows if scorable(r)]
    silent = non_speech_rows(rows)
    empty_ok = sum(1 for r in rows if r.ok and not scorable(r)) - len(silent)
    if empty_ok:
        by_type["EmptyReference"] += empty_ok
    coverage = Coverage(len(rows), len(good) + len(silent), dict(by_type))
    utts = [
        ScoredUtterance(r.utt_id, r.condition, r.speaker, dict(r.tags), *counts[(r.utt_id, r.condition)])
        for r in good
    ]
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level}
    wc = total(u.words for u in utts)
    cc = total(u.chars for u in utts)
    raw_c = total(raw[(r.utt_id, r.condition)][0] for r in good)
    rates = [u.words.error_rate for u in utts if u.words.ref_len > 0]
    slices, gaps, notes = score_slices(utts, method=interval_method, **boot)
    warnings = [s.warning for s in slices if s.warning] + notes
    groups = speaker_groups(utts)
    n_speakers = len({u.speaker for u in utts if u.speaker is not None})
    if groups is not None and n_speakers < FEW_SPEAKERS:
        warnings.insert(0, f"the interval resamples {n_speakers} speakers: with fewer than {FEW_SPEAKERS} "
                        "a speaker-blocked interval tends to be too narrow; treat it as a lower bound on the "
                        "uncertainty")
    empty_after = sum(1 for u in utts if u.words.ref_len == 0)
    if empty_after:
        warnings.insert(0, f"{empty_after} utterances have no reference words after normalisation; "
                        "their inserted words still count as errors in the corpus WER")
    non_speech = None
    if silent:
        non_speech = score_non_speech(silent, norm or get_normalizer(DEFAULT_NORMALIZER), **boot)
        warnings.append(f"{len(silent)} non-speech clips are scored as hallucination (words per minute), "
                        "not in the WER")
    timing = longform = None
    if any(has_segments(r) for r in good):
        longform = score_longform(good, norm or get_normalizer(DEFAULT_NORMALIZER), **boot)
        timing = score_timing(good, norm or get_normalizer(DEFAULT_NORMALIZER), **boot)
        if timing is None:
            warnings.append("the session rows carry no word times, so word timing cannot be scored")
    if coverage.errors:
        warnings.insert(0, f"{coverage.errors} of {coverage.total} rows could not be scored "
                        f"({', '.join(f'{k}: {v}' for k, v in sorted(by_type.items()))})")
    hours = sum(r.audio_duration or 0.0 for r in good) / 3600.0
    return ConditionScores(
        condition=condition, coverage=coverage, utterances=len(utts), speakers=n_speakers,
        ref_words=wc.ref_len, ref_chars=cc.ref_len, audio_hours=hours, word_counts=wc, char_counts=cc,
        raw_word_counts=raw_c, wer=rate_interval(utts, level_name="words", method=interval_method, **boot),
        cer=rate_interval(utts, level_name="chars", method=interval_method, **boot),
        raw_wer=raw_c.error_rate, mer=wc.mer, wil=wc.wil,
        mean_utterance_wer=sum(rates) / len(rates) if rates else float("nan"),
        slices=tuple(slices), gaps=tuple(gaps), error_distribution=_distribution(utts), warnings=tuple(warnings),
        non_speech=non_speech, timing=timing, longform=longform,
    )


def _conditions_in_order(store: Any, rows: Sequence[ResultRow]) -> list[str]:
    names = [name for name, _ in store.conditions()]
    for r in rows:
        if r.condition not in names:
            names.append(r.condition)
    return [n for n in names if any(r.condition == n for r in rows)]


def score_run(
    store: Any,
    normalizer: str | Normalizer = DEFAULT_NORMALIZER,
    *,
    alternates: Alternates | str | bool | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    interval_method: str = METHOD,
    classes: Any = None,
) -> RunScores:
    """Scores of every condition of the run in ``store`` (a :class:`voxproof.run.store.RunStore`).

    ``alternates``: ``None`` (none), ``"default"``/``True`` (bundled list), a file path, or an
    :class:`Alternates`. Intervals: percentile bootstrap with ``n_resamples`` resamples at ``level``,
    seeded with ``seed``, speaker-blocked when every scored row has a speaker;
    ``interval_method="bca"`` for bias-corrected and accelerated intervals. ``classes`` (a
    :class:`voxproof.metrics.classes.ClassSpec`) adds per-class scores to every condition.
    """
    check_settings(n_resamples, level)
    if interval_method not in METHODS:
        raise UsageError(f"unknown interval method {interval_method!r}; choose one of: {', '.join(METHODS)}")
    norm = normalizer if isinstance(normalizer, Normalizer) else get_normalizer(normalizer)
    alts = resolve_alternates(alternates)
    alts = alts.normalized(norm) if alts is not None else None
    rows = list(store.rows())
    good = [r for r in rows if scorable(r)]
    counts = utterance_counts(store, good, norm, alts)
    none = get_normalizer("none")
    raw = counts if norm.label == none.label and alts is None else utterance_counts(store, good, none)
    conditions = tuple(
        score_condition(name, [r for r in rows if r.condition == name], counts, raw,
                        n_resamples=n_resamples, seed=seed, level=level, interval_method=interval_method,
                        norm=norm)
        for name in _conditions_in_order(store, rows)
    )
    if classes is not None:
        from dataclasses import replace

        from voxproof.metrics.class_scores import class_utterances, score_classes

        utts = class_utterances(good, norm, classes, alts)
        conditions = tuple(
            replace(c, classes=score_classes([u for u in utts if u.condition == c.condition], classes,
                                             n_resamples=n_resamples, seed=seed, level=level, method=interval_method))
            for c in conditions
        )
    return RunScores(
        normalizer=norm.to_dict(), alternates=alts.to_dict() if alts is not None else None,
        n_resamples=n_resamples, seed=seed, level=level, conditions=conditions, interval_method=interval_method,
        classes=None if classes is None else classes.to_dict(),
    )


# -- views for the report: one utterance's alignment, confusions -------------------------------------
@dataclass(frozen=True)
class UtteranceAlignment:
    """One utterance aligned for display: ``ops`` are ``(op, ref_word | None, hyp_word | None)``."""

    utt_id: str
    condition: str
    reference: str
    hypothesis: str
    counts: ErrorCounts
    ops: tuple[tuple[str, str | None, str | None], ...]

    @property
    def wer(self) -> float:
        return self.counts.error_rate

    def to_dict(self) -> dict[str, Any]:
        return {"utt_id": self.utt_id, "condition": self.condition, "reference": self.reference,
                "hypothesis": self.hypothesis, "counts": self.counts.to_dict(), "wer": _num(self.wer),
                "ops": [list(o) for o in self.ops]}


def utterance_alignment(
    row: ResultRow, normalizer: str | Normalizer = DEFAULT_NORMALIZER, alternates: Alternates | None = None,
) -> UtteranceAlignment:
    """The word alignment of one row after normalisation (hypothesis variants rewritten when
    ``alternates`` are given, already normalised with :meth:`Alternates.normalized`)."""
    norm = normalizer if isinstance(normalizer, Normalizer) else get_normalizer(normalizer)
    ref = norm(row.reference or "").split()
    hyp = norm(row.hypothesis or "").split()
    if alternates is not None:
        hyp = alternates.apply(ref, hyp)
    a = align(ref, hyp)
    ops = tuple(
        (op, None if i is None else ref[i], None if j is None else hyp[j]) for op, i, j in a.ops
    )
    return UtteranceAlignment(row.utt_id, row.condition, " ".join(ref), " ".join(hyp), a.counts, ops)


def top_confusions(
    rows: Sequence[ResultRow], normalizer: str | Normalizer = DEFAULT_NORMALIZER, *, n: int = 20,
    alternates: Alternates | None = None,
) -> list[dict[str, Any]]:
    """The most frequent word errors over ``rows``: substitution pairs, deleted and inserted words.
    Returns ``[{"op", "ref", "hyp", "count"}]``, most frequent first (ties by words)."""
    tally: Counter[tuple[str, str | None, str | None]] = Counter()
    for row in rows:
        if not scorable(row):
            continue
        for op, r, h in utterance_alignment(row, normalizer, alternates).ops:
            if op != EQUAL:
                tally[(op, r, h)] += 1
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or "", kv[0][2] or ""))
    return [{"op": op, "ref": r, "hyp": h, "count": c} for (op, r, h), c in ranked[:n]]


def substitution_pairs(rows: Sequence[ResultRow], normalizer: str | Normalizer = DEFAULT_NORMALIZER,
                       *, n: int = 20) -> list[tuple[str, str, int]]:
    """Only substitutions: ``[(ref_word, hyp_word, count)]``, most frequent first."""
    out = [(c["ref"], c["hyp"], c["count"]) for c in top_confusions(rows, normalizer, n=10**9)
           if c["op"] == SUBSTITUTE]
    return out[:n]
