"""Perturbation stage, reverberation: convolution with measured room impulse responses (bundled OpenAIR
and clap RIRs, or a user's folder) and with rooms simulated by pyroomacoustics (image sources) for a
target RT60.

The output keeps the input's length (the reverberant tail past the end is dropped, so timings keep
their meaning) and its RMS level; it is scaled down as a whole if it would clip.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.perturb.base import Perturbation, PerturbationError, protect_peak, register, require_range
from voxproof.perturb.noise import bundled_dir, load_bank

_MAX_ORDER = 70  # image-source order cap: keeps a 1 s RT60 room under ~0.1 s to simulate


def estimate_rt60(h: np.ndarray, sample_rate: int) -> float:
    """Broadband RT60 in seconds from an impulse response: Schroeder decay, T20 (-5 to -25 dB) x 3."""
    energy = np.cumsum(np.square(h[::-1], dtype=np.float64))[::-1]
    if len(energy) == 0 or energy[0] <= 0:
        return float("nan")
    decay = 10.0 * np.log10(energy / energy[0] + 1e-30)
    i5 = int(np.argmax(decay <= -5.0))
    i25 = int(np.argmax(decay <= -25.0))
    if i25 <= i5:
        return float("nan")
    return (i25 - i5) / sample_rate * 3.0


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``samples`` convolved with ``rir``, cut to the input length, at the input's RMS level."""
    from scipy.signal import oaconvolve

    x = samples.astype(np.float64)
    if len(x) == 0:
        return samples.astype(np.float32)
    y = oaconvolve(x, rir.astype(np.float64), mode="full")[: len(x)]
    level_in = float(np.sqrt(np.mean(x**2)))
    level_out = float(np.sqrt(np.mean(y**2)))
    if level_out > 0:
        y *= level_in / level_out
    return protect_peak(y)


def _trim_to_direct(h: np.ndarray, sample_rate: int) -> np.ndarray:
    """Drop the silence before the direct sound (keeps 1 ms before the peak), so speech is not delayed."""
    start = max(0, int(np.argmax(np.abs(h))) - int(0.001 * sample_rate))
    return h[start:]


@register
@dataclass(frozen=True)
class Reverb(Perturbation):
    """Convolution with a measured RIR: ``rir`` picks one by file stem (bundled: rir_clap, medium_hall,
    large_church, large_hall, medium_chamber); without it the seed picks one from ``dir`` (default: the
    bundled set). Severity: the chosen RIR's estimated RT60 (s) when ``rir`` is given."""

    rir: str | None = None
    dir: str | None = None

    kind = "reverb"
    positional = "rir"
    family = "reverb"
    axis = "RT60 (s)"
    worse = "higher"
    description = "convolution with a measured room impulse response"

    def _bank(self, sample_rate: int) -> tuple[tuple[str, np.ndarray], ...]:
        return load_bank(self.dir or str(bundled_dir("rir")), sample_rate)

    def _pick(self, sample_rate: int, rng: np.random.Generator | None) -> np.ndarray:
        bank = self._bank(sample_rate)
        if self.rir is not None:
            found = [h for name, h in bank if name == self.rir]
            if not found:
                raise UsageError(
                    f"reverb: rir={self.rir!r} not found; choose one of {', '.join(n for n, _ in bank)}"
                    + ("" if self.dir else " or pass dir=/your/rir/folder")
                )
            return found[0]
        if rng is None:
            raise PerturbationError("reverb without rir= needs a seeded generator to pick an RIR")
        return bank[int(rng.integers(0, len(bank)))][1]

    @property
    def severity(self) -> float | None:
        if self.rir is None:
            return None
        rt60 = estimate_rt60(self._pick(16000, None), 16000)
        return None if np.isnan(rt60) else round(rt60, 2)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        h = _trim_to_direct(self._pick(audio.sample_rate, rng), audio.sample_rate)
        return Audio(reverberate(audio.samples, h), audio.sample_rate)


def _parse_size(kind: str, size: str) -> tuple[float, float, float]:
    try:
        dims = tuple(float(v) for v in size.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or not all(1.5 <= d <= 100.0 for d in dims):
        raise UsageError(f"{kind}: size={size!r} must be LxWxH in metres, each 1.5-100 (e.g. 6x5x3)")
    return dims  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def simulated_rir(rt60: float, size: str, position: int, sample_rate: int) -> np.ndarray:
    """Impulse response of a shoebox room of ``size`` (LxWxH m) with Sabine absorption for ``rt60`` s,
    source and microphone at placement number ``position`` (a fixed, hash-seeded draw, >= 0.5 m from
    walls and >= 1 m apart). Deterministic; cached."""
    try:
        import pyroomacoustics as pra
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PerturbationError("room simulation needs pyroomacoustics: pip install 'voxproof[rooms]'") from exc
    dims = np.array(_parse_size("room", size))
    digest = hashlib.sha256(f"voxproof-room\x00{size}\x00{position}".encode()).digest()
    place = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "big")))
    margin = 0.5
    for _ in range(1000):
        src = place.uniform(margin, dims - margin)
        mic = place.uniform(margin, dims - margin)
        src[2] = place.uniform(1.2, min(1.9, dims[2] - margin))
        mic[2] = place.uniform(0.8, min(1.6, dims[2] - margin))
        if np.linalg.norm(src - mic) >= 1.0:
            break
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims.tolist())
    except ValueError as exc:
        raise UsageError(f"room: rt60={rt60:g} s is not reachable in a {size} m room ({exc}); "
                         "use a larger room or a longer RT60") from None
    room = pra.ShoeBox(dims.tolist(), fs=sample_rate, materials=pra.Material(absorption),
                       max_order=min(int(max_order), _MAX_ORDER))
    room.add_source(src.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    return _trim_to_direct(h, sample_rate)


@register
@dataclass(frozen=True)
class Room(Perturbation):
    """A simulated shoebox room (pyroomacoustics image sources) with reverberation time ``rt60`` s,
    dimensions ``size`` (LxWxH m); the seed picks one of ``positions`` fixed source/mic placements."""

    rt60: float = 0.5
    size: str = "6x5x3"
    positions: int = 4

    kind = "room"
    positional = "rt60"
    severity_field = "rt60"
    family = "room"
    axis = "RT60 (s)"
    worse = "higher"
    label_units: ClassVar[dict[str, str]] = {"rt60": "s"}
    description = "simulated room of a given RT60 (pyroomacoustics)"

    def validate(self) -> None:
        require_range(self.kind, "rt60", self.rt60, 0.05, 3.0)
        require_range(self.kind, "positions", self.positions, 1, 64)
        _parse_size(self.kind, self.size)

    def unavailable_reason(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("pyroomacoustics") is None:
            return "pyroomacoustics is not installed: pip install 'voxproof[rooms]'"
        return None

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        position = int(rng.integers(0, self.positions))
        h = simulated_rir(float(self.rt60), self.size, position, audio.sample_rate)
        return Audio(reverberate(audio.samples, h), audio.sample_rate)
