"""Perturbation stage, additive noise at a target SNR: real recordings (bundled Speech Commands noise or a
user's folder), generated white and pink noise, and babble made from other speakers of the dataset.

SNR definition: ``10 log10(P_speech / P_noise)`` with ``P`` the mean power over the whole utterance
(speech pauses included) of the clean signal and of the added noise. If the mixture would clip, the
whole mixture is scaled down, which keeps the SNR exact.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import DataError, UsageError
from voxproof.perturb.base import (
    Perturbation,
    PerturbationError,
    protect_peak,
    register,
    require_choice,
    require_range,
)

log = logging.getLogger("voxproof.perturb")

NOISE_TYPES = ("recorded", "white", "pink", "babble")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")


def bundled_dir(name: str) -> Path:
    """Path of a bundled data folder (``noise`` or ``rir``) inside the installed package."""
    return Path(str(resources.files("voxproof").joinpath("data", name)))


@functools.lru_cache(maxsize=16)
def load_bank(directory: str, sample_rate: int) -> tuple[tuple[str, np.ndarray], ...]:
    """Every audio file of ``directory`` as (file stem, mono float32 samples at ``sample_rate``), by name.

    Cached per (folder, rate): the bank is read-only once loaded.
    """
    import soundfile as sf

    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"noise/RIR folder {folder} does not exist; pass dir= an existing folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}; put WAV or FLAC files there"
        )
    bank = []
    for path in files:
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise DataError(f"cannot read {path}: {exc}; remove or convert the file") from exc
        mono = np.ascontiguousarray(data[:, 0])
        audio = Audio(mono, int(sr)).resampled(sample_rate)
        bank.append((path.stem, audio.samples))
    return tuple(bank)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``g`` chosen so the whole-utterance SNR is ``snr_db``; the mixture is
    scaled down as a whole if it would clip. ``noise`` must be as long as ``speech``."""
    speech64 = speech.astype(np.float64)
    noise64 = noise.astype(np.float64)
    p_speech = float(np.mean(speech64**2)) if len(speech64) else 0.0
    p_noise = float(np.mean(noise64**2)) if len(noise64) else 0.0
    if p_speech == 0.0:
        log.debug("silent input: noise not added (SNR undefined)")
        return speech.astype(np.float32)
    if p_noise == 0.0:
        raise PerturbationError("the noise segment is digital silence; use another noise file")
    gain = np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    return protect_peak(speech64 + gain * noise64)


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A length-``n`` stretch of ``noise`` starting at a random offset, looping if it is too short."""
    if len(noise) == 0:
        raise PerturbationError("empty noise recording")
    start = int(rng.integers(0, len(noise)))
    reps = (start + n) // len(noise) + 1
    return np.tile(noise, reps)[start : start + n] if reps > 1 else noise[start : start + n]


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (-3 dB per octave), ``n`` samples."""
    if n == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n)


@register
@dataclass(frozen=True)
class AddNoise(Perturbation):
    """Additive noise at ``snr`` dB. ``type``: ``recorded`` (files from ``dir``, default the bundled
    Speech Commands noise; ``file`` picks one by stem, else the seed picks), ``white``, ``pink``, or
    ``babble`` (``talkers`` utterances of other speakers from the dataset, equal level, summed)."""

    type: str = "recorded"
    snr: float = 10.0
    dir: str | None = None
    file: str | None = None
    talkers: int = 4

    kind = "noise"
    positional = "type"
    hide_default_positional = True
    severity_field = "snr"
    axis = "SNR (dB)"
    worse = "lower"
    description = "additive noise at a target SNR (recorded, white, pink, babble)"

    @property
    def family(self) -> str:  # type: ignore[override]
        return "noise" if self.type == "recorded" else f"noise-{self.type}"

    def validate(self) -> None:
        require_choice(self.kind, "type", self.type, NOISE_TYPES)
        require_range(self.kind, "snr", self.snr, -30.0, 100.0)
        require_range(self.kind, "talkers", self.talkers, 1, 64)
        if (self.dir or self.file) and self.type != "recorded":
            raise UsageError(f"noise: dir=/file= only apply to recorded noise, not type={self.type}")

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        n = len(audio.samples)
        if self.type == "white":
            noise = rng.standard_normal(n)
        elif self.type == "pink":
            noise = pink_noise(n, rng)
        elif self.type == "babble":
            noise = self._babble(n, audio.sample_rate, rng, context)
        else:
            noise = self._recorded(n, audio.sample_rate, rng)
        return Audio(mix_at_snr(audio.samples, noise, self.snr), audio.sample_rate)

    def _recorded(self, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        folder = self.dir or str(bundled_dir("noise"))
        bank = load_bank(folder, sample_rate)
        if self.file is not None:
            chosen = [s for name, s in bank if name == self.file]
            if not chosen:
                raise UsageError(
                    f"noise: file={self.file!r} not in {folder}; choose one of {', '.join(n for n, _ in bank)}"
                )
            samples = chosen[0]
        else:
            samples = bank[int(rng.integers(0, len(bank)))][1]
        return fit_length(samples, n, rng).astype(np.float64)

    def _babble(self, n: int, sample_rate: int, rng: np.random.Generator, context: Any) -> np.ndarray:
        if context is None or not getattr(context, "sources", ()):
            raise PerturbationError(
                "babble noise needs the dataset's other utterances: pass PerturbContext.from_utterances(...)"
            )
        if not context.knows_current:
            raise PerturbationError(
                "babble noise must know the current utterance to exclude its speaker: "
                "pass context.for_utterance(utt)"
            )
        others = context.others()
        if not others:
            raise PerturbationError(
                f"babble noise needs utterances by speakers other than {context.current_speaker!r}; "
                "the dataset has none"
            )
        k = min(self.talkers, len(others))
        picks = rng.choice(len(others), size=k, replace=False)
        total = np.zeros(n, dtype=np.float64)
        for i in sorted(int(p) for p in picks):
            talker = others[i].load().resampled(sample_rate).samples.astype(np.float64)
            level = float(np.sqrt(np.mean(talker**2))) if len(talker) else 0.0
            if level == 0.0:
                continue
            total += fit_length(talker / level, n, rng)
        return total
