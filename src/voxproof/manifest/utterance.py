"""The ``Utterance`` record: one item of a dataset, handed to the runner and the auditor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

_FIELDS = ("id", "audio", "text", "offset", "duration", "speaker", "language", "tags")
NON_SPEECH_TAG = "non_speech"  # tag marking a clip in which nobody speaks (its empty reference is scored)
TRUE_VALUES = ("true", "1", "yes")
FALSE_VALUES = ("false", "0", "no")


def is_non_speech(tags: dict[str, str]) -> bool:
    """Whether tags mark an utterance as non-speech (``non_speech`` = true/1/yes)."""
    return str(tags.get(NON_SPEECH_TAG, "")).strip().lower() in TRUE_VALUES


@dataclass(frozen=True)
class Utterance:
    """One utterance.

    ``audio`` is a path (absolute, or resolved by the reader) or an http(s) URL. ``offset`` and
    ``duration`` are in seconds and select a segment of the file; ``duration=None`` means to the end.
    ``text`` is the reference transcript (``None`` when there is none, for example for audits or TTS).
    ``tags`` holds free metadata (gender, accent, device, condition, licence, split...), string values.
    """

    id: str
    audio: str
    text: str | None = None
    offset: float = 0.0
    duration: float | None = None
    speaker: str | None = None
    language: str | None = None
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def replace(self, **changes: Any) -> Utterance:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "utterance", "schema": SCHEMA_VERSION}
        for name in _FIELDS:
            value = getattr(self, name)
            if name == "tags":
                value = dict(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        """Inverse of :meth:`to_dict`. Raises ``KeyError``/``TypeError``/``ValueError`` on bad input;
        readers wrap those into :class:`voxproof.errors.ManifestError` with a line number."""
        kwargs = {k: data[k] for k in _FIELDS if k in data}
        if "id" not in kwargs or "audio" not in kwargs:
            raise KeyError("an utterance needs 'id' and 'audio'")
        kwargs["id"] = str(kwargs["id"])
        kwargs["audio"] = str(kwargs["audio"])
        kwargs["offset"] = float(kwargs.get("offset") or 0.0)
        if kwargs.get("duration") is not None:
            kwargs["duration"] = float(kwargs["duration"])
        tags = kwargs.get("tags") or {}
        if not isinstance(tags, dict):
            raise TypeError("'tags' must be an object")
        kwargs["tags"] = {str(k): str(v) for k, v in tags.items()}
        return cls(**kwargs)

    def tag(self, key: str) -> str | None:
        """A metadata value by name; ``speaker`` and ``language`` are tags too."""
        if key == "speaker":
            return self.speaker
        if key == "language":
            return self.language
        return self.tags.get(key)
