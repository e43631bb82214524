"""Bootstrap confidence intervals for corpus-level error rates (the stage after alignment counts).

What is resampled is the unit of sampling, with its counts: utterances' ``(errors, ref_len)`` pairs,
or, when speakers are known, whole speakers (the sum of their utterances' counts; a *cluster* or
*blocked* bootstrap, because utterances of one speaker are not independent). Each resample's rate is
``sum(errors) / sum(ref_len)``: the corpus WER of the resampled corpus, never a mean of per-utterance
rates.

Method: percentile bootstrap (default). The interval at level ``L`` is the ``(1-L)/2`` and
``(1+L)/2`` quantiles (numpy's default linear interpolation) of the resampled rates. ``method="bca"``
gives Efron's bias-corrected and accelerated interval from the same resamples (jackknife over the
same units for the acceleration). Resampling is vectorised: a
chunk of resamples draws a ``(chunk, n)`` matrix of unit indices from a seeded
``numpy.random.Generator`` (PCG64) and sums the gathered counts row by row (two integer count columns
packed into one int64, so one gather serves both); when units repeat few distinct count rows, the
equivalent multinomial draw over those rows is used instead (see :func:`resample_sums`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.errors import UsageError

METHOD = "percentile"
METHODS = ("percentile", "bca")
SCHEMA_VERSION = 1
_CHUNK_ELEMENTS = 2_000_000  # indices drawn at once (8 MB of int32)
_MULTINOMIAL_FACTOR = 10  # multinomial draw over distinct rows when n_units >= 10 x distinct rows


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval and how it was computed.

    ``n_units`` is the number of resampled units (utterances, or speakers when ``blocked_by`` is
    ``"speaker"``). ``low``/``high`` are ``nan`` when there is nothing to resample.
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_resamples: int
    seed: int
    blocked_by: str | None
    n_units: int

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": _num(self.estimate), "low": _num(self.low), "high": _num(self.high),
            "level": self.level, "method": self.method, "n_resamples": self.n_resamples,
            "seed": self.seed, "blocked_by": self.blocked_by, "n_units": self.n_units,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interval:
        f = lambda v: float("nan") if v is None else float(v)
        return cls(f(d["estimate"]), f(d["low"]), f(d["high"]), float(d["level"]), d["method"],
                   int(d["n_resamples"]), int(d["seed"]), d.get("blocked_by"), int(d["n_units"]))


def _num(x: float) -> float | None:
    """JSON-safe float: nan and inf become None."""
    return None if x is None or not math.isfinite(x) else float(x)


def check_settings(n_resamples: int, level: float) -> None:
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise UsageError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise UsageError(f"interval level must be between 0 and 1 (for example 0.95), got {level!r}")


def block_sums(values: np.ndarray, groups: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Per-group sums of ``values`` (rows = units, any trailing shape), groups in first-seen order."""
    order: dict[Any, int] = {}
    codes = np.fromiter((order.setdefault(g, len(order)) for g in groups), dtype=np.int64, count=len(groups))
    out = np.zeros((len(order),) + values.shape[1:], dtype=np.float64)
    np.add.at(out, codes, values)
    return out, list(order)


def _packed(columns: np.ndarray) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Columns grouped for gathering: two non-negative integer columns whose bootstrap sums stay
    below 2**31 share one int64 (high and low 32 bits), so one gather serves both."""
    n = len(columns)
    out: list[tuple[np.ndarray, tuple[int, ...]]] = []
    ints = [
        c for c in range(columns.shape[1])
        if np.all(columns[:, c] >= 0) and np.all(columns[:, c] == np.floor(columns[:, c]))
        and float(columns[:, c].max(initial=0)) * n < 2**31
    ]
    for a, b in zip(ints[0::2], ints[1::2]):
        packed = (columns[:, b].astype(np.int64) << 32) | columns[:, a].astype(np.int64)
        out.append((packed, (a, b)))
    paired = {c for _, cs in out for c in cs}
    out += [(columns[:, c], (c,)) for c in range(columns.shape[1]) if c not in paired]
    return out


def resample_sums(columns: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap sums: ``columns`` is ``(n_units, k)``; returns ``(n_resamples, k)``, row ``b`` the
    column sums over ``n_units`` units drawn with replacement (the same draw for every column).

    When many units share the same row of counts (typical: 20,000 utterances have a few hundred
    distinct ``(errors, ref_len)`` pairs), drawing ``n`` units uniformly is the same as drawing how
    many times each distinct row is picked from a multinomial with the rows' frequencies; that
    draw is used then because it is cheaper. Both are exact; the seed fixes which one's numbers.
    """
    n, k = columns.shape
    out = np.empty((n_resamples, k), dtype=np.float64)
    if n == 0:
        out.fill(0.0)
        return out
    rows, freq = np.unique(columns, axis=0, return_counts=True)
    if len(rows) * _MULTINOMIAL_FACTOR <= n:
        chunk = max(1, _CHUNK_ELEMENTS // len(rows))
        p = freq / n
        for start in range(0, n_resamples, chunk):
            stop = min(n_resamples, start + chunk)
            out[start:stop] = rng.multinomial(n, p, size=stop - start) @ rows
        return out
    chunk = max(1, _CHUNK_ELEMENTS // n)
    dtype = np.int32 if n < 2**31 else np.int64
    groups = _packed(columns)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=dtype)
        for values, cols in groups:
            sums = np.take(values, idx).sum(axis=1)
            if len(cols) == 2:
                out[start:stop, cols[0]] = sums & 0xFFFFFFFF
                out[start:stop, cols[1]] = sums >> 32
            else:
                out[start:stop, cols[0]] = sums
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _units(errors: Sequence[float], ref_len: Sequence[float], groups: Sequence[Any] | None) -> tuple[np.ndarray, str | None]:
    cols = np.column_stack([np.asarray(errors, dtype=np.float64), np.asarray(ref_len, dtype=np.float64)])
    if cols.size == 0:
        cols = cols.reshape(0, 2)
    if groups is None:
        return cols, None
    if len(groups) != len(cols):
        raise ValueError("groups must have one entry per utterance")
    summed, _ = block_sums(cols, groups)
    return summed, "speaker"


def bca_interval(samples: np.ndarray, estimate: float, jackknife: np.ndarray, level: float) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa, Efron 1987) interval from bootstrap ``samples``: the
    percentile levels are shifted by the bias ``z0 = Phi^-1(share of samples below the estimate)``
    and the acceleration ``a = sum(d^3) / (6 sum(d^2)^1.5)``, ``d`` the jackknife deviations."""
    from statistics import NormalDist

    samples = samples[np.isfinite(samples)]
    jackknife = jackknife[np.isfinite(jackknife)]
    if samples.size == 0:
        return float("nan"), float("nan")
    nd = NormalDist()
    share = (np.sum(samples < estimate) + 0.5 * np.sum(samples == estimate)) / samples.size
    if share <= 0.0 or share >= 1.0 or jackknife.size < 2:
        return percentile_interval(samples, level)
    z0 = nd.inv_cdf(float(share))
    d = jackknife.mean() - jackknife
    denom = 6.0 * float(np.sum(d**2)) ** 1.5
    a = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    alpha = (1.0 - level) / 2.0
    qs = []
    for z in (nd.inv_cdf(alpha), nd.inv_cdf(1.0 - alpha)):
        qs.append(nd.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z))))
    low, high = np.quantile(samples, qs)
    return float(low), float(high)


def bootstrap_rate(
    errors: Sequence[float],
    ref_len: Sequence[float],
    *,
    groups: Sequence[Any] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: str = METHOD,
) -> Interval:
    """Corpus error rate ``sum(errors) / sum(ref_len)`` with a bootstrap interval.

    ``groups`` (one speaker id per utterance) switches to the speaker-blocked bootstrap.
    ``method``: ``"percentile"`` (default) or ``"bca"`` (bias-corrected and accelerated, with the
    jackknife over the same units; same resamples).
    """
    check_settings(n_resamples, level)
    if method not in METHODS:
        raise UsageError(f"unknown interval method {method!r}; choose one of: {', '.join(METHODS)}")
    cols, blocked_by = _units(errors, ref_len, groups)
    est = float(_ratio(cols[:, 0].sum(keepdims=True), cols[:, 1].sum(keepdims=True))[0]) if len(cols) else float("nan")
    if len(cols) == 0 or cols[:, 1].sum() == 0:
        return Interval(est, float("nan"), float("nan"), level, method, n_resamples, seed, blocked_by, len(cols))
    sums = resample_sums(cols, n_resamples, np.random.default_rng(seed))
    rates = _ratio(sums[:, 0], sums[:, 1])
    if method == "bca":
        e_tot, n_tot = cols[:, 0].sum(), cols[:, 1].sum()
        jack = _ratio(e_tot - cols[:, 0], n_tot - cols[:, 1])  # leave one unit out, closed form
        low, high = bca_interval(rates, est, jack, level)
    else:
        low, high = percentile_interval(rates, level)
    return Interval(est, low, high, level, method, n_resamples, seed, blocked_by, len(cols))


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (nan, nan for n == 0). Unlike a bootstrap it does not
    collapse to [0, 0] when no unit has the property (0 of 4 clips: [0, 0.49] at 95 %)."""
    if n == 0:
        return math.nan, math.nan
    z = _normal_quantile(0.5 + level / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_interval(k: int, n: int, level: float = 0.95) -> Interval:
    """The share k/n with its Wilson interval, as an :class:`Interval` (method ``wilson``)."""
    low, high = wilson(k, n, level)
    return Interval(k / n if n else float("nan"), low, high, level, "wilson", 0, 0, None, n)


def bootstrap_difference(
    a: tuple[Sequence[float], Sequence[float], Sequence[Any] | None],
    b: tuple[Sequence[float], Sequence[float], Sequence[Any] | None],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Rate of ``a`` minus rate of ``b`` for two *independent* samples (for example two slices):
    each is resampled on its own (stratified bootstrap). Each of ``a``, ``b`` is
    ``(errors, ref_len, groups_or_None)``."""
    check_settings(n_resamples, level)
    rng = np.random.default_rng(seed)
    rates = []
    ests = []
    blocked = set()
    units = 0
    for errors, ref_len, groups in (a, b):
        cols, blocked_by = _units(errors, ref_len, groups)
        blocked.add(blocked_by)
        units += len(cols)
        ests.append(cols[:, 0].sum() / cols[:, 1].sum() if len(cols) and cols[:, 1].sum() else float("nan"))
        sums = resample_sums(cols, n_resamples, rng)
        rates.append(_ratio(sums[:, 0], sums[:, 1]))
    est = float(ests[0] - ests[1])
    low, high = percentile_interval(rates[0] - rates[1], level)
    blocked_by = "speaker" if "speaker" in blocked else None
    return Interval(est, low, high, level, METHOD, n_resamples, seed, blocked_by, units)


@functools.lru_cache(maxsize=8)
def _normal_quantile(q: float) -> float:
    """scipy's normal quantile, cached (the monitor asks for the same level thousands of times)."""
    from scipy.stats import norm

    return float(norm.ppf(q))
