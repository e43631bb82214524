"""What every model backend is: small interfaces for recognisers and synthesisers, and their results.

A backend is constructed with a frozen options dataclass, loads its model lazily or in ``__init__``,
and is passed to the runner (never looked up from a global).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from voxproof.audio.signal import Audio


@dataclass(frozen=True)
class Word:
    """One recognised word. Times in seconds from the start of the audio given to the backend;
    ``confidence`` is a probability in [0, 1], or ``None`` when the model gives none."""

    text: str
    start: float | None = None
    end: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(d["text"], d.get("start"), d.get("end"), d.get("confidence"))


@dataclass(frozen=True)
class Transcript:
    """A recogniser's output for one audio. ``text`` is raw (never normalised).

    ``confidence`` is an utterance-level probability in [0, 1] when the model gives one.
    ``extras`` holds model-specific numbers (Whisper ``avg_logprob``, ``no_speech_prob``,
    ``compression_ratio``; PocketSphinx ``score``), JSON-serialisable.
    """

    text: str
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
            "confidence": self.confidence,
            "extras": dict(self.extras),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(
            d["text"],
            tuple(Word.from_dict(w) for w in d.get("words") or ()),
            d.get("confidence"),
            dict(d.get("extras") or {}),
        )


@dataclass(frozen=True)
class BackendInfo:
    """Provenance of a loaded backend, recorded in every run."""

    name: str
    kind: str  # "asr" or "tts"
    model: str  # model name or path
    model_checksum: str | None  # sha256 of the model file(s), or None for remote endpoints
    options: dict[str, Any]
    library_versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Transcriber(Protocol):
    """Speech-to-text. ``sample_rate`` is the rate the backend wants; the runner resamples to it."""

    sample_rate: int

    def transcribe(self, audio: Audio) -> Transcript: ...

    def info(self) -> BackendInfo: ...


@runtime_checkable
class Synthesizer(Protocol):
    """Text-to-speech. Returns audio at the backend's native rate."""

    def synthesize(self, text: str) -> Audio: ...

    def info(self) -> BackendInfo: ...
