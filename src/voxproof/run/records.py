"""The per-utterance result row a run stores, the condition it was produced under, and the one way an
id (utterance, condition, item) becomes a file name."""

from __future__ import annotations

import hashlib
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


# Bytes kept as they are in a file name; everything else is percent-encoded (UTF-8, lone surrogates kept).
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+")
_MAX_NAME = 120  # characters of encoded id; longer names end in a hash (file systems allow 255 bytes)


def id_filename(identifier: str, suffix: str = "") -> str:
    """A file name for ``identifier`` that stays inside the directory it is joined to: one path
    component, never ``.``/``..``, no separators, NUL or control characters, at most ~140 bytes.

    Percent-encoding (``%2F`` for ``/``, ``%00`` for NUL, UTF-8 bytes for non-ASCII) keeps distinct ids
    distinct and readable; a leading dot is encoded too, so no id makes a hidden file. An encoded name
    over 120 characters keeps its first 100 and ends in ``~`` plus 16 hex digits of the id's SHA-256.
    ``suffix`` (such as ``.wav``) is appended as is.
    """
    raw = identifier.encode("utf-8", "surrogatepass")
    encoded = "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in raw)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if not encoded:
        encoded = "%"  # the empty id; "%" alone cannot come from encoding anything else
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        encoded = f"{encoded[:100]}~{digest}"
    return encoded + suffix
