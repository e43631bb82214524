"""The per-utterance result row a run stores, and the condition it was produced under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxproof.backends.base import Transcript

CLEAN = "clean"

STATUS_OK = "ok"
STATUS_ERROR = "error"


@dataclass(frozen=True)
class ResultRow:
    """One utterance under one condition.

    ``status`` is ``ok`` or ``error``; an error row keeps ``error_type`` (a class name such as
    ``AudioNotFound``, ``CorruptAudio``, ``BackendError``, ``Timeout``, ``EmptyReference``) and a message.
    ``hypothesis`` is the raw model text; ``transcript`` adds words, confidences and model extras.
    ``audio_duration`` is seconds of audio the model heard; ``processing_time`` is wall seconds of the
    backend call (decode and perturbation excluded; ``extras['prep_time']`` holds those).
    ``perturbation`` is the serialised chain applied (empty for clean); ``features`` holds per-utterance
    signal features (duration, loudness, SNR estimate...).
    """

    utt_id: str
    condition: str
    status: str
    reference: str | None = None
    hypothesis: str | None = None
    transcript: Transcript | None = None
    audio_duration: float | None = None
    processing_time: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    speaker: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    perturbation: tuple[dict[str, Any], ...] = ()
    features: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK
