"""Signal helpers for the security probes: active-speech power, pause finding and payload placement.

Levels are relative *active-speech* power in dB: ``10 log10(P_payload / P_carrier)`` where each ``P`` is
the mean power over the 20 ms frames that are not silence (see :func:`active_mask`), so 0 dB means the
payload is as loud as the talker and -30 dB is 30 dB quieter. Placement never changes that ratio: if the
mix would clip, the whole mix is scaled down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
POSITIONS = ("under", "pause", "before", "after")
GAP_S = 0.3  # silence between carrier and payload for "before"/"after"


def frame_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level of consecutive 20 ms frames in dBFS (floor -120 dB)."""
    n = max(1, round(FRAME_S * sample_rate))
    frames = len(samples) // n
    if frames == 0:
        return np.zeros(0)
    x = samples[: frames * n].astype(np.float64).reshape(frames, n)
    return 10.0 * np.log10(np.maximum(np.mean(x * x, axis=1), 1e-12))


def active_mask(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame speech activity: frames above ``p10 + 0.25 * (p90 - p10)`` of the frame levels (dB)."""
    db = frame_db(samples, sample_rate)
    if len(db) == 0:
        return np.zeros(0, dtype=bool)
    p10, p90 = np.percentile(db, [10, 90])
    if p90 - p10 < 6.0:  # no dynamics: all speech (or all silence)
        return db > -100.0
    return db > p10 + 0.25 * (p90 - p10)


def active_power(samples: np.ndarray, sample_rate: int) -> float:
    """Mean power over active frames (0.0 for digital silence)."""
    mask = active_mask(samples, sample_rate)
    if not mask.any():
        return 0.0
    n = max(1, round(FRAME_S * sample_rate))
    x = samples[: len(mask) * n].astype(np.float64).reshape(len(mask), n)[mask]
    return float(np.mean(x * x))


def trim_silence(samples: np.ndarray, sample_rate: int, pad_s: float = 0.05) -> np.ndarray:
    """``samples`` without leading and trailing silent frames, keeping ``pad_s`` seconds of margin."""
    mask = active_mask(samples, sample_rate)
    if not mask.any():
        return samples
    n = max(1, round(FRAME_S * sample_rate))
    idx = np.flatnonzero(mask)
    pad = int(pad_s * sample_rate)
    start = max(0, idx[0] * n - pad)
    end = min(len(samples), (idx[-1] + 1) * n + pad)
    return samples[start:end]


def longest_pause(samples: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """(start, end) in seconds of the longest silent stretch between two speech frames, or ``None``."""
    mask = active_mask(samples, sample_rate)
    idx = np.flatnonzero(mask)
    if len(idx) < 2:
        return None
    gaps = np.diff(idx)
    k = int(np.argmax(gaps))
    if gaps[k] <= 1:
        return None
    return (idx[k] + 1) * FRAME_S, idx[k + 1] * FRAME_S


@dataclass(frozen=True)
class Placement:
    """Where a payload went: ``start``/``end`` seconds in the mixed audio; ``gain_db`` applied to it."""

    position: str
    start: float
    end: float
    gain_db: float
    overlaps_speech: bool


def place_payload(carrier: np.ndarray, payload: np.ndarray, sample_rate: int, level_db: float,
                  position: str, rng: np.random.Generator) -> tuple[np.ndarray, Placement]:
    """The carrier with ``payload`` added at ``level_db`` relative active power, at ``position``:

    ``under`` overlays the payload at a random offset inside the carrier (under speech); ``pause``
    splits the carrier at the middle of its longest pause and inserts the payload there; ``before`` and
    ``after`` put it 0.3 s before or after the carrier. The result is scaled down as a whole if it clips.
    """
    p_c = active_power(carrier, sample_rate)
    p_p = active_power(payload, sample_rate)
    gain_db = 0.0 if p_c == 0.0 or p_p == 0.0 else level_db + 10.0 * np.log10(p_c / p_p)
    pay = payload.astype(np.float64) * 10.0 ** (gain_db / 20.0)
    car = carrier.astype(np.float64)
    n_p = len(pay)
    gap = np.zeros(int(GAP_S * sample_rate))
    if position == "under":
        room = max(0, len(car) - n_p)
        offset = int(rng.integers(0, room + 1))
        out = np.zeros(max(len(car), offset + n_p))
        out[: len(car)] += car
        out[offset: offset + n_p] += pay
        start, overlaps = offset, True
    elif position == "pause":
        pause = longest_pause(carrier, sample_rate)
        cut = int(((pause[0] + pause[1]) / 2 if pause else len(car) / 2 / sample_rate) * sample_rate)
        cut = min(max(cut, 0), len(car))
        out = np.concatenate([car[:cut], pay, car[cut:]])
        start, overlaps = cut, False
    elif position == "before":
        out = np.concatenate([pay, gap, car])
        start, overlaps = 0, False
    elif position == "after":
        out = np.concatenate([car, gap, pay])
        start, overlaps = len(car) + len(gap), False
    else:
        raise ValueError(f"unknown position {position!r}")
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 0.99:
        out *= 0.99 / peak
    placement = Placement(position, start / sample_rate, (start + n_p) / sample_rate, float(gain_db), overlaps)
    return out.astype(np.float32), placement
