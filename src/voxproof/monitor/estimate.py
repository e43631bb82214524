"""Monitor stage: a label-free WER estimate of a window from word confidences (no references needed).

Each logged word confidence goes through the reference :class:`~voxproof.monitor.profile.CalibrationMap`
to a probability that the word is right. A window's expected wrong hypothesis words are
``M = sum(1 - p)`` (substitutions + insertions); deletions, which no confidence can show, are added at
the reference run's rate per hypothesis word, and insertions are taken as the reference run's share of
wrong words:

    WER_est = (M + d * H) / (H - i * M + d * H)

with ``H`` hypothesis words with confidences, ``d`` deletions per word and ``i`` the insertion share.
The interval is a percentile bootstrap over requests. What this cannot see: whole utterances the model
drops (empty output on speech: a failure marker instead), and any shift that makes the model wrong while
confident (the validation table says where that happens).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any

import numpy as np

from voxproof.monitor.source import RequestBatch

DEFAULT_RESAMPLES = 200
MAX_BOOT_CELLS = 4_000_000  # resample indices held at once


def estimate_wer_point(mass: float, words: float, cal: Any) -> float:
    """The estimate for ``mass`` expected wrong words among ``words`` hypothesis words (formula above)."""
    if words <= 0:
        return math.nan
    dels = cal.deletions_per_word * words
    ref = words - cal.insertion_share * mass + dels
    return (mass + dels) / ref if ref > 0 else math.nan


def parse_word_confs(col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat confidences, the row of each, and a per-row flag: the row's list parsed (None lists count as
    parsed and empty). Malformed lists (not a JSON list of numbers in [0, 1]) are flagged False.

    Fast path (C-level string methods, one numeric parse per window): every present value looks like
    ``[a, b, ...]``; anything else, or counts that do not add up, falls back to JSON per row."""
    n = len(col)
    ok = np.ones(n, dtype=bool)
    present = np.fromiter(map(isinstance, col, repeat(str)), dtype=bool, count=n)
    idx = np.flatnonzero(present)
    strs = col[idx].tolist()
    if not strs:
        return np.array([], dtype=float), np.array([], dtype=np.int64), ok
    lengths = np.fromiter(map(len, strs), dtype=np.int64, count=len(strs))
    commas = np.fromiter(map(str.count, strs, repeat(",")), dtype=np.int64, count=len(strs))
    starts = sum(map(str.startswith, strs, repeat("[")))
    ends = sum(map(str.endswith, strs, repeat("]")))
    counts = np.where(lengths > 2, commas + 1, 0)
    if starts != len(strs) or ends != len(strs):
        return _parse_slow(col)
    body = ",".join(compress(strs, counts)).replace("[", "").replace("]", "")
    try:
        flat = np.fromstring(body, sep=",") if body else np.array([], dtype=float)
    except ValueError:
        return _parse_slow(col)
    if flat.size != counts.sum():
        return _parse_slow(col)
    rows = np.repeat(idx, counts)
    bad = ~np.isfinite(flat) | (flat < 0) | (flat > 1)
    if bad.any():
        ok[np.unique(rows[bad])] = False
        keep = ok[rows]
        flat, rows = flat[keep], rows[keep]
    return flat, rows, ok


def _parse_slow(col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vals: list[float] = []
    rows: list[int] = []
    ok = np.ones(len(col), dtype=bool)
    for i, s in enumerate(col):
        if s is None:
            continue
        try:
            lst = json.loads(s)
            if not isinstance(lst, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in lst
            ):
                raise ValueError
        except (ValueError, TypeError, RecursionError):
            ok[i] = False
            continue
        vals.extend(float(v) for v in lst)
        rows.extend([i] * len(lst))
    return np.asarray(vals, dtype=float), np.asarray(rows, dtype=np.int64), ok


@dataclass(frozen=True)
class RequestMass:
    """Per request: expected wrong words ``mass``, hypothesis words with confidences ``words``, and whether
    the request can be scored (successful, and its confidences are present when it has words)."""

    mass: np.ndarray
    words: np.ndarray
    scored: np.ndarray


def request_mass(batch: RequestBatch, cal: Any) -> RequestMass:
    from voxproof.monitor.profile import ok_mask

    flat, rows, parsed = parse_word_confs(batch.get("word_confs"))
    wrong = 1.0 - cal.prob_correct(flat) if flat.size else flat
    mass = np.bincount(rows, weights=wrong, minlength=batch.n) if flat.size else np.zeros(batch.n)
    words = np.bincount(rows, minlength=batch.n).astype(float) if flat.size else np.zeros(batch.n)
    n_words = batch.get("words")
    has_confs = words > 0
    empty = n_words == 0
    scored = ok_mask(batch) & parsed & (has_confs | empty)
    return RequestMass(mass, words, scored)


@dataclass(frozen=True)
class WerEstimate:
    """Estimated WER of a window with its bootstrap interval; ``reason`` says why it is n/a."""

    point: float
    low: float
    high: float
    requests: int
    scored: int
    words: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        f = lambda x: None if not math.isfinite(x) else round(x, 6)
        return {"point": f(self.point), "low": f(self.low), "high": f(self.high), "requests": self.requests,
                "scored": self.scored, "words": self.words, "reason": self.reason}


def estimate_window(rm: RequestMass, cal: Any, *, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95,
                    seed: int = 0, min_words: int = 20) -> WerEstimate:
    """The estimate over the scored requests of ``rm`` with a percentile bootstrap over requests."""
    n_all = int(rm.mass.size)
    m, w = rm.mass[rm.scored], rm.words[rm.scored]
    n = int(m.size)
    total_words = int(w.sum())
    nan = math.nan
    if total_words < min_words:
        return WerEstimate(nan, nan, nan, n_all, n, total_words,
                           f"n/a ({total_words} words with confidences; needs {min_words})")
    point = estimate_wer_point(float(m.sum()), float(w.sum()), cal)
    if resamples <= 0:
        return WerEstimate(point, nan, nan, n_all, n, total_words, None)
    rng = np.random.default_rng(seed)
    per = max(1, MAX_BOOT_CELLS // max(n, 1))
    ms, ws = [], []
    done = 0
    while done < resamples:
        b = min(per, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        ms.append(m[idx].sum(axis=1))
        ws.append(w[idx].sum(axis=1))
        done += b
    M, W = np.concatenate(ms), np.concatenate(ws)
    dels = cal.deletions_per_word * W
    ref = W - cal.insertion_share * M + dels
    with np.errstate(invalid="ignore", divide="ignore"):
        est = (M + dels) / ref
    est = est[np.isfinite(est)]
    alpha = (1 - level) / 2
    low, high = (float(np.quantile(est, alpha)), float(np.quantile(est, 1 - alpha))) if est.size else (nan, nan)
    return WerEstimate(point, low, high, n_all, n, total_words, None)
