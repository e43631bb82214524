"""The in-memory ``Audio`` record every stage passes around: mono float32 samples and a rate in Hz."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono audio. ``samples`` is a 1-D float32 array, nominally in [-1, 1]; ``sample_rate`` in Hz."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError(f"Audio needs mono 1-D samples, got shape {self.samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def resampled(self, sample_rate: int) -> Audio:
        """This audio at ``sample_rate`` (soxr, high quality); itself when the rate already matches."""
        if sample_rate == self.sample_rate:
            return self
        import soxr

        out = soxr.resample(self.samples.astype(np.float32, copy=False), self.sample_rate, sample_rate, "HQ")
        return Audio(np.ascontiguousarray(out, dtype=np.float32), sample_rate)
