"""TTS evaluation, reference-based judges: how far a clip is from a reference recording of the same
words (vocoder copy-synthesis, codec round trips, a TTS system against a recorded prompt).

Figures (``ReferenceScores``, row features ``ref_*``):

- ``pesq``: ITU-T P.862.2 wide-band PESQ MOS-LQO (PyPI ``pesq``), both signals at 16 kHz, 1.0-4.64.
- ``stoi``: short-time objective intelligibility (PyPI ``pystoi``, Taal et al. 2011), 0-1.
- ``mcd``: mel-cepstral distortion in dB over DTW-aligned frames, cepstral coefficients 1-24 of a
  40-band log-mel spectrum (25 ms / 10 ms frames at 16 kHz; frames where the reference is silent are
  left out). It is the usual formula ``10/ln10 * sqrt(2 * sum (c - c')^2)`` but on a mel-filterbank
  cepstrum, not SPTK's mel-generalised cepstrum, so values are comparable between voxproof runs, not
  with papers' absolute figures.
- ``f0_rmse``: RMSE of F0 in cents over frames both signals voice (DTW-aligned), and ``vuv_error``:
  share of aligned frames whose voiced/unvoiced decision differs. F0 is a normalised-autocorrelation
  tracker (60-400 Hz, voiced when the peak is >= 0.5), the same tracker on both sides.

PESQ and STOI assume time-aligned signals of the same length (true for codec round trips, whose delay
the perturbation removes); MCD and F0 align with DTW so they also apply to a TTS clip against a
recording. A figure that cannot be computed is left out and its reason kept in ``reasons``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio

log = logging.getLogger("voxproof.tts.reference")

RATE = 16000
FRAME = 400  # 25 ms at 16 kHz
F0_FRAME = 640  # 40 ms: two periods of the lowest F0
HOP = 160  # 10 ms
N_MELS = 40
N_CEPS = 24
F0_MIN, F0_MAX = 60.0, 400.0
VOICING_THRESHOLD = 0.5
MAX_DTW_CELLS = 25_000_000  # 5,000 x 5,000 frames: 50 s against 50 s
REFERENCE_KEYS = ("pesq", "stoi", "mcd", "f0_rmse", "vuv_error")
HIGHER_IS_BETTER = {"pesq": True, "stoi": True, "mcd": False, "f0_rmse": False, "vuv_error": False}


@dataclass(frozen=True)
class ReferenceScores:
    """One clip against its reference; a missing figure has its reason in ``reasons``."""

    values: dict[str, float]
    reasons: dict[str, str] = field(default_factory=dict)

    def features(self) -> dict[str, float]:
        return {f"ref_{k}": v for k, v in self.values.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values), "reasons": dict(self.reasons)}


def missing_extra() -> str | None:
    """``None`` when PESQ and STOI can run, else the install hint."""
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError:
        return "PESQ/STOI need the 'reference' extra: pip install 'voxproof[reference]'"
    return None


def reference_scores(reference: Audio, degraded: Audio) -> ReferenceScores:
    """Every reference figure of ``degraded`` against ``reference`` (any rates; both go to 16 kHz)."""
    ref = _prepare(reference)
    deg = _prepare(degraded)
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    if ref.size < FRAME or deg.size < FRAME:
        why = "clip shorter than 25 ms" if deg.size < FRAME else "reference shorter than 25 ms"
        return ReferenceScores({}, {k: why for k in REFERENCE_KEYS})
    extra = missing_extra()
    if extra:
        reasons["pesq"] = reasons["stoi"] = extra
    else:
        n = min(ref.size, deg.size)
        _pesq(ref[:n], deg[:n], values, reasons)
        _stoi(ref[:n], deg[:n], values, reasons)
    _spectral(ref, deg, values, reasons)
    return ReferenceScores({k: float(v) for k, v in values.items() if math.isfinite(v)},
                           {**reasons, **{k: "not finite" for k, v in values.items() if not math.isfinite(v)}})


def _prepare(audio: Audio) -> np.ndarray:
    x = audio.resampled(RATE).samples.astype(np.float64)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _pesq(ref: np.ndarray, deg: np.ndarray, values: dict, reasons: dict) -> None:
    from pesq import PesqError, pesq

    try:
        values["pesq"] = float(pesq(RATE, ref, deg, "wb"))
    except PesqError as exc:  # no speech found, too short...
        reasons["pesq"] = f"PESQ could not score the clip ({type(exc).__name__})"
    except ValueError as exc:
        reasons["pesq"] = f"PESQ refused the clip: {exc}"


def _stoi(ref: np.ndarray, deg: np.ndarray, values: dict, reasons: dict) -> None:
    import warnings

    from pystoi import stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(ref, deg, RATE, extended=False))
    if caught and any("30 frames" in str(w.message) or "frames" in str(w.message) for w in caught):
        reasons["stoi"] = "too little speech for STOI (fewer than 30 frames after silence removal)"
        return
    values["stoi"] = value


def _frames(x: np.ndarray) -> np.ndarray:
    if x.size < FRAME:
        return np.zeros((0, FRAME))
    n = 1 + (x.size - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return x[idx]


def _mel_matrix() -> np.ndarray:
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    n_fft = 512
    freqs = np.linspace(0, RATE / 2, n_fft // 2 + 1)
    edges = hz(np.linspace(mel(0.0), mel(RATE / 2), N_MELS + 2))
    fb = np.zeros((N_MELS, freqs.size))
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


_MEL = None


def mel_power(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mel-band power [frames, 40], frame energy in dB) of a 16 kHz signal."""
    global _MEL
    if _MEL is None:
        _MEL = _mel_matrix()
    frames = _frames(x) * np.hanning(FRAME)[None, :]
    spec = np.abs(np.fft.rfft(frames, 512, axis=1)) ** 2
    mel = spec @ _MEL.T
    return mel, 10.0 * np.log10(np.maximum(np.mean(frames ** 2, axis=1), 1e-12))


def cepstra(mel: np.ndarray, floor: float) -> np.ndarray:
    """Cepstral coefficients 1-24 of log mel amplitudes floored at ``floor`` (power)."""
    from scipy.fft import dct

    logmel = 0.5 * np.log(np.maximum(mel, floor))  # natural log amplitude, as SPTK's mcep
    return dct(logmel, type=2, norm="ortho", axis=1)[:, 1:N_CEPS + 1]


def f0_track(x: np.ndarray) -> np.ndarray:
    """F0 in Hz per 10 ms frame (0 = unvoiced) by YIN (de Cheveigne and Kawahara 2002) on 40 ms frames:
    the first lag in 60-400 Hz whose cumulative-mean-normalised difference dips below 0.15 (else the
    minimum, voiced only when below 0.35), frames 40 dB under the loudest frame unvoiced."""
    width = F0_FRAME
    if x.size < width:
        return np.zeros(0)
    n = 1 + (x.size - width) // HOP
    frames = x[np.arange(width)[None, :] + HOP * np.arange(n)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    half = width // 2  # the difference function compares the first half with lagged copies
    lag_hi = int(RATE / F0_MIN)
    spec_a = np.fft.rfft(frames[:, :half], 2 * width, axis=1)
    spec_b = np.fft.rfft(frames, 2 * width, axis=1)
    cross = np.fft.irfft(np.conj(spec_a) * spec_b, axis=1)[:, :lag_hi + 1]
    sq = np.concatenate([np.zeros((n, 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    lags = np.arange(lag_hi + 1)
    energy_lag = sq[:, lags + half] - sq[:, lags]  # sum of x[t]^2 for t in [lag, lag + half)
    diff = np.maximum(sq[:, [half]] + energy_lag - 2 * cross, 0.0)
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, lag_hi + 1)
    cmndf = np.ones_like(diff)
    cmndf[:, 1:] = diff[:, 1:] / np.maximum(cum, 1e-12)
    lag_lo = int(RATE / F0_MAX)
    window = cmndf[:, lag_lo:]
    below = window < 0.15
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(window, axis=1))
    # walk down to the local minimum after the first dip
    rows = np.arange(n)
    for _ in range(20):
        nxt = np.minimum(first + 1, window.shape[1] - 1)
        step = window[rows, nxt] < window[rows, first]
        if not step.any():
            break
        first = np.where(step, nxt, first)
    value = window[rows, first]
    power = sq[:, -1] / width
    loud = power > np.max(power) * 1e-4
    f0 = RATE / (first + lag_lo)
    return np.where((value < 0.35) & loud, f0, 0.0)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotonic alignment (steps (1,0), (0,1), (1,1)) of a cost matrix [n, m]; returns
    the index pairs. Computed along anti-diagonals so each step is one numpy operation."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # cells (i, j) with i + j = k, 1-based
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    i, j = n, m
    path = [(i - 1, j - 1)]
    while i > 1 or j > 1:
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min((s for s in steps if s[0] >= 1 and s[1] >= 1), key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    arr = np.array(path[::-1])
    return arr[:, 0], arr[:, 1]


def _spectral(ref: np.ndarray, deg: np.ndarray, values: dict, reasons: dict) -> None:
    mr, er = mel_power(ref)
    md, _ = mel_power(deg)
    # one floor for both, 60 dB under the reference's loudest band: empty bands of a band-limited
    # codec then count as a bounded difference instead of log(0)
    floor = max(float(np.max(mr)) if mr.size else 0.0, 1e-10) * 1e-6
    cr, cd = cepstra(mr, floor), cepstra(md, floor)
    if cr.shape[0] * cd.shape[0] > MAX_DTW_CELLS:
        for k in ("mcd", "f0_rmse", "vuv_error"):
            reasons[k] = f"clips too long for DTW ({cr.shape[0]} x {cd.shape[0]} frames; limit 50 s each)"
        return
    cost = np.sqrt(np.maximum(np.sum(cr ** 2, 1)[:, None] + np.sum(cd ** 2, 1)[None, :] - 2 * cr @ cd.T, 0.0))
    pi, pj = dtw_path(cost)
    speech = er[pi] > (np.max(er) - 40.0)
    if not np.any(speech):
        reasons["mcd"] = "the reference is silent"
    else:
        diff = cr[pi[speech]] - cd[pj[speech]]
        values["mcd"] = float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))))
    fr, fd = f0_track(ref), f0_track(deg)
    a, b = fr[np.minimum(pi, fr.size - 1)], fd[np.minimum(pj, fd.size - 1)]
    values["vuv_error"] = float(np.mean((a > 0) != (b > 0)))
    both = (a > 0) & (b > 0)
    if np.count_nonzero(both) < 5:
        reasons["f0_rmse"] = f"fewer than 5 aligned frames voiced in both ({int(np.count_nonzero(both))})"
    else:
        cents = 1200.0 * np.log2(b[both] / a[both])
        values["f0_rmse"] = float(np.sqrt(np.mean(cents ** 2)))
