"""Hallucination on non-speech: what a recogniser writes when nobody speaks.

An utterance tagged ``non_speech=true`` has an empty reference by definition, so every word of its
(normalised) hypothesis is an insertion. Such rows are scored here, not in the WER (their reference
has no words to divide by): hallucinated words per minute of non-speech audio, the share of clips with
any output, and the phrase bag (the normalised outputs, most frequent first), each with a bootstrap
interval over clips; overall and per ``kind`` tag (the noise type of the bundled ``non-speech`` suite).
:func:`paired_hallucination` compares two runs clip by clip for the gate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.manifest.utterance import NON_SPEECH_TAG, is_non_speech
from voxproof.metrics.intervals import Interval, _num, bootstrap_rate, proportion_interval
from voxproof.metrics.normalize import Normalizer
from voxproof.run.records import ResultRow

KIND_TAG = "kind"
TOP_PHRASES = 10
MAX_PHRASE_CHARS = 300  # a looping output is kept up to this length in the phrase bag
__all__ = ["NON_SPEECH_TAG", "NonSpeechScores", "is_non_speech", "paired_hallucination", "score_non_speech"]


def non_speech_rows(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The rows decoded without error whose utterance is marked non-speech."""
    return [r for r in rows if r.ok and is_non_speech(r.tags)]


@dataclass(frozen=True)
class HallucinationGroup:
    """Hallucination figures of a set of non-speech clips. ``words_per_minute`` is total hypothesis
    words over total minutes; ``with_output`` is the share of clips with at least one word."""

    name: str
    clips: int
    minutes: float
    words: int
    words_per_minute: Interval
    with_output: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "clips": self.clips, "minutes": _num(self.minutes), "words": self.words,
                "words_per_minute": self.words_per_minute.to_dict(), "with_output": self.with_output.to_dict()}


@dataclass(frozen=True)
class PhraseCount:
    """One hallucinated phrase (a clip's whole normalised output): clips that produced it and their share."""

    phrase: str
    clips: int
    share: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "clips": self.clips, "share": self.share.to_dict()}


@dataclass(frozen=True)
class NonSpeechScores:
    """Hallucination on the non-speech rows of one condition."""

    overall: HallucinationGroup
    by_kind: tuple[HallucinationGroup, ...]
    phrases: tuple[PhraseCount, ...]
    distinct_phrases: int

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.to_dict(), "by_kind": [g.to_dict() for g in self.by_kind],
                "phrases": [p.to_dict() for p in self.phrases], "distinct_phrases": self.distinct_phrases}


def clip_words(row: ResultRow, norm: Normalizer) -> list[str]:
    """The normalised hypothesis words of a row: for a non-speech clip, every one is an insertion."""
    return norm(row.hypothesis or "").split()


def _minutes(row: ResultRow) -> float:
    return max(0.0, float(row.audio_duration or 0.0)) / 60.0


def _group(name: str, rows: Sequence[ResultRow], words: Sequence[int], boot: dict[str, Any]) -> HallucinationGroup:
    minutes = [_minutes(r) for r in rows]
    return HallucinationGroup(
        name=name, clips=len(rows), minutes=sum(minutes), words=int(sum(words)),
        words_per_minute=bootstrap_rate(words, minutes, **boot),
        with_output=proportion_interval(sum(1 for w in words if w), len(rows), boot["level"]),
    )


def score_non_speech(
    rows: Sequence[ResultRow], norm: Normalizer, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
    top: int = TOP_PHRASES,
) -> NonSpeechScores | None:
    """Hallucination figures of the non-speech rows among ``rows`` (None when there are none).
    Intervals: words per minute, percentile bootstrap over clips with ``n_resamples`` resamples, seeded
    (it collapses to [0, 0] when no clip of a group wrote anything: read the share's interval then);
    shares of clips, Wilson."""
    ns = non_speech_rows(rows)
    if not ns:
        return None
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level}
    outputs = [" ".join(clip_words(r, norm)) for r in ns]
    words = [len(o.split()) for o in outputs]
    kinds: dict[str, list[int]] = {}
    for i, r in enumerate(ns):
        kinds.setdefault(r.tags.get(KIND_TAG) or "untagged", []).append(i)
    by_kind = tuple(
        _group(kind, [ns[i] for i in idx], [words[i] for i in idx], boot) for kind, idx in kinds.items()
    )
    bag = Counter(o for o in outputs if o)
    ranked = sorted(bag.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    phrases = tuple(PhraseCount(p[:MAX_PHRASE_CHARS], c, proportion_interval(c, len(outputs), level))
                    for p, c in ranked)
    return NonSpeechScores(_group("all", ns, words, boot), by_kind, phrases, len(bag))


@dataclass(frozen=True)
class PairedHallucination:
    """Candidate minus baseline hallucinated words per minute on the same non-speech clips."""

    clips: int
    minutes: float
    baseline_wpm: float
    candidate_wpm: float
    difference: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "minutes": _num(self.minutes), "baseline_wpm": _num(self.baseline_wpm),
                "candidate_wpm": _num(self.candidate_wpm), "difference": self.difference.to_dict()}


def paired_hallucination(
    base_rows: Sequence[ResultRow], cand_rows: Sequence[ResultRow], norm: Normalizer,
    *, n_resamples: int = 2000, seed: int = 0, level: float = 0.95,
) -> PairedHallucination | None:
    """Paired bootstrap of (candidate - baseline) words per minute over the non-speech clips decoded
    without error in both runs (same clip and condition); None when there are none."""
    from voxproof.metrics.paired import compare_counts

    base = {(r.utt_id, r.condition): r for r in non_speech_rows(base_rows)}
    pairs = [(base[k], r) for r in non_speech_rows(cand_rows) if (k := (r.utt_id, r.condition)) in base]
    if not pairs:
        return None
    minutes = [_minutes(b) for b, _ in pairs]
    comp = compare_counts(minutes, [len(clip_words(b, norm)) for b, _ in pairs],
                          [len(clip_words(c, norm)) for _, c in pairs], condition="non-speech",
                          n_resamples=n_resamples, seed=seed, level=level)
    return PairedHallucination(len(pairs), sum(minutes), comp.wer_a, comp.wer_b, comp.difference)
