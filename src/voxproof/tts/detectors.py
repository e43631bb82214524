"""TTS evaluation stage 4: failure detectors. Every synthesised clip goes through every detector, and
every flag is stored and counted; nothing is skipped because it failed.

Detectors (``FAILURE_KINDS``, in report order):

- ``synthesis_error``: the synthesiser raised (set by the evaluator, not here);
- ``empty``: no samples, or shorter than ``min_audio_seconds``;
- ``silent``: peak level below ``silence_dbfs``;
- ``no_speech``: audible, but the voice-activity detector finds no speech (noise, clicks, tones);
- ``truncation``: the speech span is shorter than the text can be spoken (expected syllables at
  ``max_syllables_per_second``), or the speech runs into the end of the clip while the recogniser heard
  less than ``truncation_word_ratio`` of the expected words;
- ``long_silence``: a pause inside the speech longer than ``max_pause_seconds``;
- ``repetition``: the transcript has at least ``repetition_word_ratio`` times the expected words (and
  at least ``repetition_min_extra`` more), or repeats a 3-word sequence at least twice more often than
  the reference does (once more is enough when the speech is also over 1.5 times the expected duration
  + 0.5 s: a recogniser often collapses a verbatim repeat, so the audio length corroborates), or the
  speech lasts over ``babble_duration_ratio`` times the expected duration (+1 s). When only the
  transcript is long and the audio is not, the detail says so: a recogniser can loop on odd audio
  (Whisper does on some eSpeak NG clips), which is not the synthesiser repeating;
- ``clipping``: more than ``clip_fraction`` of samples sit at full scale in runs of 3 or more, or any
  sample is beyond full scale;
- ``dc_offset``: the mean sample exceeds ``dc_offset`` (fraction of full scale);
- ``sample_rate``: a non-standard rate, a rate other than the one the system is expected to produce,
  or below ``min_sample_rate``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.tts.activity import SpeechActivity
from voxproof.tts.intelligibility import estimate_syllables, expected_duration

FAILURE_KINDS = (
    "synthesis_error", "empty", "silent", "no_speech", "truncation", "long_silence", "repetition",
    "clipping", "dc_offset", "sample_rate",
)
STANDARD_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


@dataclass(frozen=True)
class DetectorOptions:
    """Thresholds of the failure detectors (see the module docstring for what each means)."""

    min_audio_seconds: float = 0.05
    silence_dbfs: float = -60.0
    max_syllables_per_second: float = 8.0
    truncation_word_ratio: float = 0.75
    max_pause_seconds: float = 1.0
    repetition_word_ratio: float = 2.0
    repetition_min_extra: int = 4
    babble_duration_ratio: float = 3.0
    clip_level: float = 0.999
    clip_fraction: float = 0.001
    dc_offset: float = 0.01
    min_sample_rate: int = 16000


@dataclass(frozen=True)
class Detection:
    """One detector's verdict on one clip: ``value`` is the measured quantity, ``detail`` says why."""

    kind: str
    flagged: bool
    value: float | None = None
    detail: str = ""

    def __post_init__(self) -> None:  # numpy scalars in, plain JSON-safe values out
        object.__setattr__(self, "flagged", bool(self.flagged))
        if self.value is not None:
            object.__setattr__(self, "value", float(self.value))


def detect_failures(
    audio: Audio,
    activity: SpeechActivity,
    spoken: str,
    *,
    reference_words: list[str] | None = None,
    hypothesis_words: list[str] | None = None,
    expected_sample_rate: int | None = None,
    options: DetectorOptions = DetectorOptions(),
) -> list[Detection]:
    """Run every signal and transcript detector on one clip (all but ``synthesis_error``).

    ``spoken`` is the expected spoken form; ``reference_words``/``hypothesis_words`` are the normalised
    tokens of the chosen reference and of the recogniser's transcript (``None`` when no recogniser
    ran: the transcript checks then rely on the signal only).
    """
    x = audio.samples
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    empty = x.size == 0 or audio.duration < options.min_audio_seconds
    silent = not empty and peak_dbfs < options.silence_dbfs
    out = [
        Detection("empty", empty, audio.duration, f"{audio.duration:.3f} s of audio" if empty else ""),
        Detection("silent", silent, _finite(peak_dbfs), f"peak {peak_dbfs:.1f} dBFS" if silent else ""),
    ]
    audible = not empty and not silent
    no_speech = audible and not activity.has_speech
    out.append(Detection("no_speech", no_speech, activity.speech_seconds,
                         f"no speech found by {activity.method} VAD in {audio.duration:.2f} s" if no_speech else ""))
    out.append(_truncation(activity, spoken, reference_words, hypothesis_words, audible, options))
    out.append(_long_silence(activity, options))
    out.append(_repetition(activity, spoken, reference_words, hypothesis_words, options))
    out.append(_clipping(x, options))
    mean = float(np.mean(x, dtype=np.float64)) if x.size else 0.0
    dc = abs(mean) > options.dc_offset
    out.append(Detection("dc_offset", dc, mean, f"mean {mean:+.4f} of full scale" if dc else ""))
    out.append(_sample_rate(audio.sample_rate, expected_sample_rate, options))
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _truncation(activity, spoken, ref_words, hyp_words, audible, options) -> Detection:
    syllables = estimate_syllables(spoken)
    floor = syllables / options.max_syllables_per_second
    span = activity.span
    if not audible or not activity.has_speech:
        return Detection("truncation", False, span, "")  # reported as empty/silent/no_speech instead
    if span < floor:
        return Detection("truncation", True, span,
                         f"{span:.2f} s of speech for {syllables} syllables (needs at least {floor:.2f} s)")
    if ref_words and hyp_words is not None and activity.ends_in_speech():
        ratio = len(hyp_words) / len(ref_words)
        if ratio < options.truncation_word_ratio:
            return Detection("truncation", True, span,
                             f"speech runs into the end of the clip and only {len(hyp_words)} of "
                             f"{len(ref_words)} words were heard")
    return Detection("truncation", False, span, "")


def _long_silence(activity: SpeechActivity, options: DetectorOptions) -> Detection:
    gaps = activity.gaps()
    longest = max((end - start for start, end in gaps), default=0.0)
    flagged = longest > options.max_pause_seconds
    detail = ""
    if flagged:
        start, end = max(gaps, key=lambda g: g[1] - g[0])
        detail = f"{longest:.2f} s pause at {start:.2f}-{end:.2f} s"
    return Detection("long_silence", flagged, longest, detail)


def _repetition(activity, spoken, ref_words, hyp_words, options) -> Detection:
    reasons = []
    value = None
    expected = expected_duration(spoken)
    long_audio = activity.span > 1.5 * expected + 0.5
    if ref_words and hyp_words is not None:
        value = len(hyp_words) / len(ref_words)
        extra = len(hyp_words) - len(ref_words)
        if value >= options.repetition_word_ratio and extra >= options.repetition_min_extra:
            reasons.append(f"heard {len(hyp_words)} words for {len(ref_words)} expected")
        repeated = _excess_trigrams(ref_words, hyp_words, 1 if long_audio else 2)
        if repeated:
            reasons.append(f"repeats {' '.join(repeated)!r}")
    limit = options.babble_duration_ratio * expected + 1.0
    if activity.span > limit:
        reasons.append(f"{activity.span:.1f} s of speech where ~{expected:.1f} s is expected")
    elif reasons and not long_audio:
        # the transcript is long but the audio is not: the recogniser may be the one looping
        reasons.append(f"transcript only: the audio has a normal length ({activity.span:.1f} s for "
                       f"~{expected:.1f} s expected), so the recogniser may be looping")
    return Detection("repetition", bool(reasons), value, "; ".join(reasons))


def _excess_trigrams(ref: list[str], hyp: list[str], excess: int) -> tuple[str, ...] | None:
    """A 3-word sequence the transcript has at least ``excess`` more times than the reference, if any."""
    def grams(tokens):
        return Counter(tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2))

    ref_counts = grams(ref)
    for gram, count in grams(hyp).most_common():
        if count < 2:
            break
        if count >= ref_counts.get(gram, 0) + excess:
            return gram
    return None


def _clipping(x: np.ndarray, options: DetectorOptions) -> Detection:
    if x.size == 0:
        return Detection("clipping", False, 0.0, "")
    over = int(np.count_nonzero(np.abs(x) > 1.0))
    at_full = np.abs(x) >= options.clip_level
    # samples at full scale in runs of >= 3 (a single peak sample at 1.0 is normalisation, not clipping)
    padded = np.concatenate(([False], at_full, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = edges[1::2] - edges[::2]
    in_runs = int(runs[runs >= 3].sum())
    fraction = (in_runs + over) / x.size
    flagged = over > 0 or fraction > options.clip_fraction
    detail = ""
    if flagged:
        detail = f"{fraction:.2%} of samples clipped" + (f", {over} beyond full scale" if over else "")
    return Detection("clipping", flagged, fraction, detail)


def _sample_rate(rate: int, expected: int | None, options: DetectorOptions) -> Detection:
    reasons = []
    if rate not in STANDARD_RATES:
        reasons.append(f"{rate} Hz is not a standard audio rate")
    if expected is not None and rate != expected:
        reasons.append(f"{rate} Hz where {expected} Hz was expected")
    if rate < options.min_sample_rate:
        reasons.append(f"{rate} Hz is below {options.min_sample_rate} Hz (narrowband)")
    return Detection("sample_rate", bool(reasons), float(rate), "; ".join(reasons))
