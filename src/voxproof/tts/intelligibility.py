"""TTS evaluation stage 3b: intelligibility and timing of one synthesised utterance.

Intelligibility is the word (and character) error of a recogniser's transcript against the prompt's
expected spoken forms, after the named normaliser (``whisper-en`` by default). A prompt may accept
several forms ("three dollars fifty", "three dollars and fifty cents"); the one with the fewest word
edits is the reference (ties: the earlier form), the usual multi-reference rule. The recogniser's own
errors are part of the number: the ground-truth floor (real recordings through the same recogniser)
shows how large they are.

Timing: speaking rate (words and estimated syllables per second of speech), the ratio of the speech
duration to the duration expected at a typical reading rate, and the real-time factor of synthesis.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from voxproof.metrics.counts import ErrorCounts

# Typical rates of read English (words and syllables per second of speech, pauses excluded);
# 150 words per minute is the usual figure for audiobooks and broadcast news.
TYPICAL_WORDS_PER_SECOND = 2.5
TYPICAL_SYLLABLES_PER_SECOND = 4.0

_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Intelligibility:
    """Word and character alignment counts of one utterance against its best expected form.

    ``reference`` is the chosen form (raw), ``reference_norm``/``hypothesis_norm`` the normalised texts
    that were aligned, ``form_index`` the index of the chosen form in the prompt's ``expected``.
    """

    reference: str
    reference_norm: str
    hypothesis_norm: str
    form_index: int
    words: ErrorCounts
    chars: ErrorCounts

    @property
    def wer(self) -> float:
        return self.words.error_rate

    @property
    def cer(self) -> float:
        return self.chars.error_rate

    @property
    def ref_words(self) -> int:
        return self.words.ref_len

    @property
    def hyp_words(self) -> int:
        return self.words.hyp_len

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["words"] = self.words.to_dict()
        out["chars"] = self.chars.to_dict()
        return out


def score_intelligibility(expected: tuple[str, ...] | list[str], hypothesis: str, normalizer) -> Intelligibility:
    """Align ``hypothesis`` against every expected form under ``normalizer``; keep the form with the
    fewest word edits (then fewest character edits, then the earliest)."""
    from voxproof.metrics.align import count_edits

    if not expected:
        raise ValueError("score_intelligibility needs at least one expected form")
    hyp_norm = normalizer(hypothesis or "")
    best: Intelligibility | None = None
    for index, form in enumerate(expected):
        ref_norm = normalizer(form)
        words = count_edits(ref_norm.split(), hyp_norm.split())
        chars = count_edits(ref_norm, hyp_norm)
        if best is None or (words.errors, chars.errors) < (best.words.errors, best.chars.errors):
            best = Intelligibility(form, ref_norm, hyp_norm, index, words, chars)
    assert best is not None
    return best


def count_words(text: str) -> int:
    """Words of a spoken form (letters, digits and apostrophes)."""
    return len(_WORD.findall(text.lower()))


def estimate_syllables(text: str) -> int:
    """A rough syllable count of an English spoken form (vowel groups per word, silent final e,
    at least one per word). Good to ~10 % on running text; used only for rates and expectations."""
    total = 0
    for word in _WORD.findall(text.lower()):
        if word.isdigit():
            total += len(word)  # a digit string is read digit by digit at least
            continue
        groups = len(_VOWEL_GROUPS.findall(word))
        if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and groups > 1:
            groups -= 1
        total += max(1, groups)
    return total


def expected_duration(spoken: str, words_per_second: float = TYPICAL_WORDS_PER_SECOND) -> float:
    """Seconds of speech expected for a spoken form at a typical reading rate (pauses excluded)."""
    return count_words(spoken) / words_per_second


@dataclass(frozen=True)
class Timing:
    """Rates of one utterance. ``speech_seconds`` is the span from the first to the last detected speech;
    rates are per second of that span; ``rtf`` is synthesis wall time / audio duration."""

    audio_seconds: float
    speech_seconds: float
    words: int
    syllables: int
    words_per_second: float | None
    syllables_per_second: float | None
    duration_ratio: float | None
    rtf: float | None

    def features(self) -> dict[str, float]:
        out = {
            "audio_seconds": self.audio_seconds, "speech_seconds": self.speech_seconds,
            "expected_words": float(self.words), "expected_syllables": float(self.syllables),
        }
        for key in ("words_per_second", "syllables_per_second", "duration_ratio", "rtf"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def timing(spoken: str, audio_seconds: float, speech_seconds: float, synthesis_seconds: float | None) -> Timing:
    """Speaking rate, duration ratio (speech span / expected duration) and RTF of one utterance."""
    words = count_words(spoken)
    syllables = estimate_syllables(spoken)
    expected = expected_duration(spoken)
    has_speech = speech_seconds > 0
    return Timing(
        audio_seconds=audio_seconds,
        speech_seconds=speech_seconds,
        words=words,
        syllables=syllables,
        words_per_second=words / speech_seconds if has_speech else None,
        syllables_per_second=syllables / speech_seconds if has_speech else None,
        duration_ratio=speech_seconds / expected if expected > 0 else None,
        rtf=synthesis_seconds / audio_seconds if synthesis_seconds is not None and audio_seconds > 0 else None,
    )
