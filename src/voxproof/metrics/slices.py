"""Per-slice error rates (per speaker and per metadata tag) with intervals, and the best-worst gap.

Takes per-utterance counts already computed by scoring; never aligns. A slice is the utterances
sharing one value of one key (``speaker``, or any tag such as ``gender``, ``accent``, ``device``).
Utterances without the key form the slice ``(missing)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.counts import ErrorCounts, total
from voxproof.metrics.intervals import Interval, bootstrap_difference, bootstrap_rate

MISSING = "(missing)"
SMALL_SLICE_UTTERANCES = 10
SMALL_SLICE_WORDS = 200
MAX_SLICE_VALUES = 100  # a tag with more distinct values (file names, ids) is not sliced
MIN_SHARED_VALUE = 3  # a tag none of whose values covers this many utterances is not categorical
FEW_SPEAKERS = 30  # below this a speaker-blocked interval runs narrow (benchmarks/interval_coverage.py)


@dataclass(frozen=True)
class ScoredUtterance:
    """Counts of one utterance under one condition (input to slices and intervals)."""

    utt_id: str
    condition: str
    speaker: str | None
    tags: dict[str, str]
    words: ErrorCounts
    chars: ErrorCounts

    def key(self, name: str) -> str | None:
        return self.speaker if name == "speaker" else self.tags.get(name)


@dataclass(frozen=True)
class SliceScore:
    """WER of one slice. ``small`` is set when the slice is too small to say much
    (fewer than ``SMALL_SLICE_UTTERANCES`` utterances or ``SMALL_SLICE_WORDS`` reference words);
    ``warning`` says so, or that a speaker-blocked slice has fewer than ``FEW_SPEAKERS`` speakers."""

    key: str
    value: str
    utterances: int
    speakers: int
    counts: ErrorCounts
    wer: Interval
    small: bool
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "value": self.value, "utterances": self.utterances, "speakers": self.speakers,
            "ref_words": self.counts.ref_len, "counts": self.counts.to_dict(), "wer": self.wer.to_dict(),
            "small": self.small, "warning": self.warning,
        }


@dataclass(frozen=True)
class SliceGap:
    """Worst slice WER minus best slice WER for one key, with a stratified bootstrap interval. Only
    slices large enough to rank (not ``small``) are candidates; with fewer than two of them no slice
    is named: ``best``/``worst``/``gap`` are ``None`` and ``reason`` says which criterion failed."""

    key: str
    best: str | None
    worst: str | None
    gap: Interval | None
    ranked: int = 0  # slices large enough to rank
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "best": self.best, "worst": self.worst,
                "gap": None if self.gap is None else self.gap.to_dict(), "ranked": self.ranked,
                "reason": self.reason}


def small_reason(utterances: int, words: int, min_utterances: int, min_words: int) -> str | None:
    """Which size criterion a slice fails (``None`` when it is large enough to rank)."""
    failed = []
    if utterances < min_utterances:
        failed.append(f"{utterances} utterance{'' if utterances == 1 else 's'}, fewer than {min_utterances}")
    if words < min_words:
        failed.append(f"{words} reference words, fewer than {min_words}")
    return "; ".join(failed) or None


def speaker_groups(utts: Sequence[ScoredUtterance]) -> list[str] | None:
    """Speaker ids for a speaker-blocked bootstrap, or ``None`` when some utterance has no speaker or
    there are fewer than two speakers (then utterances are resampled)."""
    speakers = [u.speaker for u in utts]
    if not speakers or any(s is None for s in speakers) or len(set(speakers)) < 2:
        return None
    return speakers  # type: ignore[return-value]


def rate_interval(utts: Sequence[ScoredUtterance], *, level_name: str = "words", **boot: Any) -> Interval:
    counts = [getattr(u, level_name) for u in utts]
    return bootstrap_rate(
        [c.errors for c in counts], [c.ref_len for c in counts], groups=speaker_groups(utts), **boot
    )


def _sample(utts: Sequence[ScoredUtterance]) -> tuple[list[int], list[int], list[str] | None]:
    """``(errors, ref_len, speaker groups)`` of a set of utterances, as the bootstrap takes them."""
    return [u.words.errors for u in utts], [u.words.ref_len for u in utts], speaker_groups(utts)


def slice_keys(utts: Sequence[ScoredUtterance]) -> list[str]:
    """``speaker`` (if any utterance has one) then every tag key present, sorted."""
    keys = ["speaker"] if any(u.speaker is not None for u in utts) else []
    tags = sorted({k for u in utts for k in u.tags})
    return keys + [k for k in tags if k != "speaker"]


def score_slices(
    utts: Sequence[ScoredUtterance], *, n_resamples: int, seed: int, level: float, method: str = "percentile",
    min_utterances: int = SMALL_SLICE_UTTERANCES, min_words: int = SMALL_SLICE_WORDS,
    max_values: int = MAX_SLICE_VALUES,
) -> tuple[list[SliceScore], list[SliceGap], list[str]]:
    """Every slice of every key, one gap per key with two or more slices, and notes on keys not
    sliced (a tag other than ``speaker`` with more than ``max_values`` distinct values). Slice
    intervals use ``method``; gaps always use the percentile method."""
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level}
    slices: list[SliceScore] = []
    gaps: list[SliceGap] = []
    notes: list[str] = []
    for key in slice_keys(utts):
        groups: dict[str, list[ScoredUtterance]] = {}
        for u in utts:
            groups.setdefault(u.key(key) or MISSING, []).append(u)
        if len(groups) < 2 and key != "speaker":
            continue
        if len(groups) > max_values and key != "speaker":
            notes.append(f"tag {key!r} has {len(groups)} distinct values: not sliced (more than {max_values})")
            continue
        if key != "speaker" and len(groups) > 2 and max(len(m) for m in groups.values()) < MIN_SHARED_VALUE:
            # Almost every value is its own slice (a duration, a file name, an id): nothing to compare.
            notes.append(f"tag {key!r}: no value is shared by {MIN_SHARED_VALUE} utterances (continuous or an id):"
                         " not sliced")
            continue
        key_slices = []
        for value in sorted(groups):
            members = groups[value]
            counts = total(u.words for u in members)
            interval = rate_interval(members, method=method, **boot)
            why_small = small_reason(len(members), counts.ref_len, min_utterances, min_words)
            small = why_small is not None
            warning = f"{key}={value}: too small to rank: {why_small}" if small else None
            n_spk = len({u.speaker for u in members if u.speaker is not None})
            if warning is None and interval.blocked_by == "speaker" and n_spk < FEW_SPEAKERS:
                warning = (f"{key}={value}: only {n_spk} speakers; the interval says little about other "
                           f"speakers of this {key} (needs {FEW_SPEAKERS})")
            key_slices.append(SliceScore(key, value, len(members), n_spk, counts, interval, small, warning))
        slices.extend(key_slices)
        rated = [s for s in key_slices if s.counts.ref_len > 0 and not s.small]
        if len(rated) >= 2:
            best = min(rated, key=lambda s: s.wer.estimate)
            worst = max(rated, key=lambda s: s.wer.estimate)
            diff = bootstrap_difference(_sample(groups[worst.value]), _sample(groups[best.value]), **boot)
            gaps.append(SliceGap(key, best.value, worst.value, diff, ranked=len(rated)))
        elif len(key_slices) >= 2:
            gaps.append(SliceGap(key, None, None, None, ranked=len(rated), reason=(
                f"{len(rated)} of {len(key_slices)} {key} slices have {min_utterances} utterances and "
                f"{min_words} reference words; too few to name a worst and a best")))
    return slices, gaps, notes
