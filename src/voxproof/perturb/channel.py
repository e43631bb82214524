"""Perturbation stage, level and time changes: gain, clipping, speed (pitch and tempo), tempo (pitch
kept, ffmpeg ``atempo``), band limiting, and packet loss (Gilbert-Elliott bursts of lost frames).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.perturb.base import (
    Perturbation,
    PerturbationError,
    register,
    require_choice,
    require_range,
)


@register
@dataclass(frozen=True)
class Gain(Perturbation):
    """Multiply by ``db`` decibels; samples beyond full scale are clipped at +-1 (as a converter would)."""

    db: float = -20.0

    kind = "gain"
    positional = "db"
    severity_field = "db"
    family = "gain"
    axis = "gain (dB)"
    worse = "lower"
    description = "level change in dB (clips at full scale)"

    def validate(self) -> None:
        require_range(self.kind, "db", self.db, -80.0, 40.0)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        y = np.clip(audio.samples.astype(np.float64) * 10.0 ** (self.db / 20.0), -1.0, 1.0)
        return Audio(y.astype(np.float32), audio.sample_rate)


@register
@dataclass(frozen=True)
class Clip(Perturbation):
    """Overdrive: amplify until the loudest ``fraction`` of samples exceeds full scale, then clip them.

    The output's clipping ratio (share of samples at +-1) equals ``fraction``.
    """

    fraction: float = 0.01

    kind = "clip"
    positional = "fraction"
    severity_field = "fraction"
    family = "clipping"
    axis = "clipped samples (fraction)"
    worse = "higher"
    description = "hard clipping of a given fraction of samples"

    def validate(self) -> None:
        require_range(self.kind, "fraction", self.fraction, 0.0, 0.5)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        x = audio.samples.astype(np.float64)
        if len(x) == 0 or self.fraction == 0.0 or not np.any(x):
            return audio
        k = max(1, int(round(self.fraction * len(x))))
        mags = np.abs(x)
        threshold = float(np.partition(mags, len(x) - k)[len(x) - k])
        if threshold <= 0.0:
            return audio
        y = np.clip(x / threshold, -1.0, 1.0)
        return Audio(y.astype(np.float32), audio.sample_rate)


@register
@dataclass(frozen=True)
class Speed(Perturbation):
    """Play ``factor`` times faster (resampling: pitch moves too, like a tape). Duration / ``factor``."""

    factor: float = 1.1

    kind = "speed"
    positional = "factor"
    severity_field = "factor"
    family = "speed"
    axis = "speed factor"
    worse = "higher"
    description = "speed change (pitch and tempo), duration / factor"

    def validate(self) -> None:
        require_range(self.kind, "factor", self.factor, 0.5, 2.0)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        if self.factor == 1.0 or len(audio.samples) == 0:
            return audio
        import soxr

        y = soxr.resample(audio.samples.astype(np.float32), audio.sample_rate * self.factor,
                          audio.sample_rate, "HQ")
        return Audio(np.ascontiguousarray(y, dtype=np.float32), audio.sample_rate)


@register
@dataclass(frozen=True)
class Tempo(Perturbation):
    """Change tempo by ``factor`` keeping the pitch (ffmpeg ``atempo``, WSOLA). Duration / ``factor``."""

    factor: float = 1.1

    kind = "tempo"
    positional = "factor"
    severity_field = "factor"
    family = "tempo"
    axis = "tempo factor"
    worse = "higher"
    description = "tempo change keeping pitch (ffmpeg atempo), duration / factor"

    def validate(self) -> None:
        require_range(self.kind, "factor", self.factor, 0.5, 2.0)

    def unavailable_reason(self) -> str | None:
        return None if shutil.which("ffmpeg") else "ffmpeg is not installed (Debian: apt-get install ffmpeg)"

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        if self.factor == 1.0 or len(audio.samples) == 0:
            return audio
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
               "-f", "f32le", "-ar", str(audio.sample_rate), "-ac", "1", "-i", "pipe:0",
               "-filter:a", f"atempo={self.factor:.6f}", "-f", "f32le", "-ac", "1", "pipe:1"]
        try:
            proc = subprocess.run(cmd, input=audio.samples.astype("<f4").tobytes(), capture_output=True,
                                  check=False, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PerturbationError(f"{self.label()}: ffmpeg failed: {exc}") from exc
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()
            raise PerturbationError(f"{self.label()}: ffmpeg failed: {tail[-1] if tail else proc.returncode}")
        y = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
        return Audio(np.ascontiguousarray(y), audio.sample_rate)


@register
@dataclass(frozen=True)
class BandLimit(Perturbation):
    """Keep only content below ``hz`` (resample down to ``2*hz`` and back), like a low-rate recording."""

    hz: float = 4000.0

    kind = "bandlimit"
    positional = "hz"
    severity_field = "hz"
    family = "bandwidth"
    axis = "bandwidth (Hz)"
    worse = "lower"
    description = "band limit: resample to 2*hz and back"

    def validate(self) -> None:
        require_range(self.kind, "hz", self.hz, 500.0, 48000.0)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        low_rate = int(round(2 * self.hz))
        if low_rate >= audio.sample_rate or len(audio.samples) == 0:
            return audio
        back = audio.resampled(low_rate).resampled(audio.sample_rate).samples
        out = np.zeros(len(audio.samples), dtype=np.float32)
        out[: min(len(out), len(back))] = back[: len(out)]
        return Audio(out, audio.sample_rate)


CONCEALMENT = ("zero", "repeat")


@register
@dataclass(frozen=True)
class PacketLoss(Perturbation):
    """Lose ``rate`` of ``frame_ms`` frames in bursts of mean length ``burst`` frames (two-state
    Gilbert-Elliott chain). Lost frames become silence (``conceal=zero``) or repeat the last good frame
    (``conceal=repeat``). Duration is unchanged."""

    rate: float = 0.05
    burst: float = 1.0
    frame_ms: float = 20.0
    conceal: str = "zero"

    kind = "loss"
    positional = "rate"
    severity_field = "rate"
    family = "packet-loss"
    axis = "frames lost (fraction)"
    worse = "higher"
    description = "packet loss with a rate and mean burst length"

    def validate(self) -> None:
        require_range(self.kind, "rate", self.rate, 0.0, 0.9)
        require_range(self.kind, "burst", self.burst, 1.0, 100.0)
        require_range(self.kind, "frame_ms", self.frame_ms, 2.5, 200.0)
        require_choice(self.kind, "conceal", self.conceal, CONCEALMENT)

    def lost_frames(self, n_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Boolean mask of lost frames. Stationary loss probability ``rate``, mean burst ``burst``."""
        if self.rate == 0.0 or n_frames == 0:
            return np.zeros(n_frames, dtype=bool)
        p_bad_to_good = 1.0 / self.burst
        p_good_to_bad = min(1.0, self.rate * p_bad_to_good / (1.0 - self.rate))
        u = rng.random(n_frames)
        lost = np.zeros(n_frames, dtype=bool)
        bad = bool(rng.random() < self.rate)  # start in the stationary distribution
        for i in range(n_frames):
            lost[i] = bad
            bad = (u[i] >= p_bad_to_good) if bad else (u[i] < p_good_to_bad)
        return lost

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        frame = max(1, int(round(self.frame_ms / 1000.0 * audio.sample_rate)))
        n_frames = -(-len(audio.samples) // frame)
        lost = self.lost_frames(n_frames, rng)
        y = audio.samples.astype(np.float32).copy()
        last_good = np.zeros(frame, dtype=np.float32)
        for i in range(n_frames):
            seg = slice(i * frame, min((i + 1) * frame, len(y)))
            width = seg.stop - seg.start
            if lost[i]:
                y[seg] = 0.0 if self.conceal == "zero" else last_good[:width]
            elif width == frame:
                last_good = audio.samples[seg].astype(np.float32)
        return Audio(y, audio.sample_rate)
