"""Monitor stage: windows of traffic and their drift against the reference profile.

Windows are fixed (step = size) or sliding (step < size), by request count or by time (seconds of
``ts``), cut from the log's chunks with bounded memory (:func:`iter_windows`). For each window and each
monitoring feature the reference is compared with:

- numeric features: PSI over the reference's quantile bins (effect size) and the two-sample
  Kolmogorov-Smirnov test (asymptotic p-value with Stephens' small-sample correction);
- categorical features (sample rate, codec, empty output): PSI over the categories and Pearson's
  chi-square test of the 2 x k table reference counts vs window counts.

Multiple testing: the features of one window are one family; p-values are adjusted with Holm's
step-down method (family-wise error rate) by default, or Benjamini-Hochberg (false-discovery rate), or
not at all. A feature drifts when its adjusted p-value is below ``alpha`` AND its PSI is at least the
policy's threshold, so a tiny but significant shift in a huge window does not alarm and a large PSI
from a handful of values does not either. A window with fewer than ``min_requests`` successful requests
is reported as too small, never as drift.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np

from voxproof.errors import UsageError
from voxproof.monitor.profile import (
    CATEGORICAL,
    NUMERIC,
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    feature_values,
    ok_mask,
)
from voxproof.monitor.source import RequestBatch

PSI_FLOOR = 1e-4
CORRECTIONS = ("holm", "bh", "none")
MIN_REFERENCE = 20  # reference values a feature needs to be tested


@dataclass(frozen=True)
class WindowSpec:
    """``by``: ``count`` (size/step in requests) or ``time`` (seconds). step == size: fixed windows."""

    by: str = "count"
    size: float = 200
    step: float = 200
    min_requests: int = 50

    def __post_init__(self) -> None:
        if self.by not in ("count", "time"):
            raise UsageError(f"window by={self.by!r} is not one of count, time")
        for name in ("size", "step"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 or v > 1e9:
                raise UsageError(f"window {name}={v!r} must be a positive number (at most 1e9)")
        if self.step > self.size:
            raise UsageError(f"window step={self.step} is larger than size={self.size}; rows would be skipped")
        if self.by == "count" and (int(self.size) != self.size or int(self.step) != self.step):
            raise UsageError("count windows need whole numbers of requests for size and step")
        if not isinstance(self.min_requests, int) or self.min_requests < 1:
            raise UsageError(f"window min_requests={self.min_requests!r} must be an integer >= 1")


@dataclass
class Window:
    index: int
    start: float  # ts of the window's start (time windows: the boundary; count windows: first row's ts)
    end: float
    batch: RequestBatch
    partial: bool = False

    @property
    def row_ids(self) -> tuple[int, int] | None:
        ids = self.batch.get("id")
        return (int(ids[0]), int(ids[-1])) if ids.size and np.isfinite(ids[[0, -1]]).all() else None


def iter_windows(chunks: Iterable[RequestBatch], spec: WindowSpec) -> Iterator[Window]:
    """Windows over a stream of batches in ts order (bounded memory: the rows of one window plus a chunk)."""
    return _count_windows(chunks, spec) if spec.by == "count" else _time_windows(chunks, spec)


def _count_windows(chunks: Iterable[RequestBatch], spec: WindowSpec) -> Iterator[Window]:
    size, step = int(spec.size), int(spec.step)
    buf: RequestBatch | None = None
    pos = 0  # first row of the next window in buf (windows are slices: no copy per window)
    k = 0
    for chunk in chunks:
        if buf is None or pos >= buf.n:
            buf, pos = chunk, (pos - buf.n if buf is not None else 0)
        else:
            buf, pos = RequestBatch.concat([buf.take(slice(pos, buf.n)), chunk]), 0
        while buf.n - pos >= size:
            w = buf.take(slice(pos, pos + size))
            ts = w.get("ts")
            yield Window(k, float(ts[0]), float(ts[-1]), w)
            k += 1
            pos += step
    rest = 0 if buf is None else buf.n - max(pos, 0)
    if buf is not None and rest > 0 and (k == 0 or rest > size - step):
        w = buf.take(slice(pos, buf.n))
        ts = w.get("ts")
        yield Window(k, float(ts[0]), float(ts[-1]), w, partial=True)


def _time_windows(chunks: Iterable[RequestBatch], spec: WindowSpec) -> Iterator[Window]:
    size, step = float(spec.size), float(spec.step)
    buf: RequestBatch | None = None
    start: float | None = None
    k = 0
    for chunk in chunks:
        if chunk.n == 0:
            continue
        buf = chunk if buf is None else RequestBatch.concat([buf, chunk])
        if start is None:
            start = math.floor(float(buf.get("ts")[0]) / step) * step
        ts = buf.get("ts")
        while ts.size and ts[-1] >= start + size:
            sel = np.flatnonzero((ts >= start) & (ts < start + size))
            yield Window(k, start, start + size, buf.take(sel))
            k += 1
            start += step
            keep = np.flatnonzero(ts >= start)
            buf = buf.take(keep)
            ts = buf.get("ts")
    if buf is not None and start is not None:
        ts = buf.get("ts")
        while ts.size:
            sel = np.flatnonzero((ts >= start) & (ts < start + size))
            yield Window(k, start, start + size, buf.take(sel), partial=True)
            k += 1
            start += step
            keep = np.flatnonzero(ts >= start)
            buf = buf.take(keep)
            ts = buf.get("ts")


# -- tests and effect size --------------------------------------------------------------------------
def psi(window_shares: np.ndarray, ref_shares: np.ndarray) -> float:
    """Population stability index sum (w - r) ln(w / r), shares floored at 1e-4."""
    w = np.maximum(np.asarray(window_shares, dtype=float), PSI_FLOOR)
    r = np.maximum(np.asarray(ref_shares, dtype=float), PSI_FLOOR)
    return float(np.sum((w - r) * np.log(w / r)))


def ks_two_sample(a: np.ndarray, b_sorted: np.ndarray, n_b: int) -> tuple[float, float]:
    """KS statistic D of sample ``a`` against sorted reference ``b_sorted`` (standing for ``n_b`` values)
    and its asymptotic p-value with Stephens' correction."""
    return _ks(np.sort(a), b_sorted, _reference_cdf(b_sorted), n_b)


def _reference_cdf(b_sorted: np.ndarray) -> np.ndarray:
    """The reference's empirical CDF at its own values (the reference half of the KS comparison)."""
    return np.searchsorted(b_sorted, b_sorted, side="right") / b_sorted.size


def _ks(a: np.ndarray, b_sorted: np.ndarray, fb_b: np.ndarray, n_b: int) -> tuple[float, float]:
    """KS of sorted ``a``: the largest CDF gap over the pooled values, taken as the larger of the gaps at
    ``a``'s values and at the reference's (``fb_b`` precomputed); the same maximum as over the pooled array."""
    from scipy.special import kolmogorov

    fa_a = np.searchsorted(a, a, side="right") / a.size
    fb_a = np.searchsorted(b_sorted, a, side="right") / b_sorted.size
    fa_b = np.searchsorted(a, b_sorted, side="right") / a.size
    d = float(max(np.max(np.abs(fa_a - fb_a)), np.max(np.abs(fa_b - fb_b)) if b_sorted.size else 0.0))
    en = math.sqrt(a.size * n_b / (a.size + n_b))
    return d, float(min(1.0, kolmogorov((en + 0.12 + 0.11 / en) * d)))


_PREPARED: dict[int, tuple[NumericProfile, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _prepared(p: NumericProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A numeric profile's arrays (edges, shares, sorted sample, its CDF), built once per profile object
    rather than once per window."""
    hit = _PREPARED.get(id(p))
    if hit is None or hit[0] is not p:
        if len(_PREPARED) > 256:
            _PREPARED.clear()
        sample = np.asarray(p.sample, dtype=float)
        hit = (p, np.asarray(p.edges, dtype=float), np.asarray(p.shares, dtype=float), sample,
               _reference_cdf(sample))
        _PREPARED[id(p)] = hit
    return hit[1:]


def chi_square(window_counts: np.ndarray, ref_counts: np.ndarray) -> tuple[float, float]:
    """Pearson chi-square of the 2 x k table (reference, window) and its p-value (k - 1 df); categories
    empty in both rows are dropped."""
    from scipy.stats import chi2

    table = np.vstack([ref_counts, window_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, float(chi2.sf(stat, table.shape[1] - 1))


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values: Holm step-down, Benjamini-Hochberg step-up, or none."""
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    elif method == "bh":
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
        adj = np.minimum(1.0, adj)
    else:
        raise UsageError(f"correction {method!r} is not one of {', '.join(CORRECTIONS)}")
    out = np.empty(m)
    out[order] = adj
    return out


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric / categorical
    n: int
    psi: float
    test: str  # ks / chi-square
    statistic: float
    p_value: float
    p_adjusted: float
    drifted: bool
    summary: float | str | None  # window median (numeric) or most common value (categorical)
    reason: str | None = None  # why not tested

    def to_dict(self) -> dict[str, Any]:
        f = lambda x: None if isinstance(x, float) and not math.isfinite(x) else x
        return {"feature": self.feature, "kind": self.kind, "n": self.n, "psi": f(self.psi), "test": self.test,
                "statistic": f(self.statistic), "p_value": f(self.p_value), "p_adjusted": f(self.p_adjusted),
                "drifted": self.drifted, "summary": f(self.summary), "reason": self.reason}


@dataclass(frozen=True)
class DriftSettings:
    psi: float = 0.2
    alpha: float = 0.01
    correction: str = "holm"
    features: tuple[str, ...] = NUMERIC + CATEGORICAL

    def __post_init__(self) -> None:
        if not (math.isfinite(self.psi) and self.psi > 0):
            raise UsageError(f"drift psi={self.psi!r} must be a positive number")
        if not 0 < self.alpha < 1:
            raise UsageError(f"drift alpha={self.alpha!r} must be between 0 and 1")
        if self.correction not in CORRECTIONS:
            raise UsageError(f"drift correction {self.correction!r} is not one of {', '.join(CORRECTIONS)}")
        bad = [f for f in self.features if f not in NUMERIC + CATEGORICAL]
        if bad:
            raise UsageError(f"unknown drift feature(s) {', '.join(bad)}; features: {', '.join(NUMERIC + CATEGORICAL)}")


@dataclass(frozen=True)
class WindowDrift:
    index: int
    start: float
    end: float
    requests: int
    status: str  # ok / drift / too small
    features: tuple[FeatureDrift, ...]
    correction: str
    row_ids: tuple[int, int] | None = None

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "end": self.end, "requests": self.requests,
                "status": self.status, "drifted": list(self.drifted), "correction": self.correction,
                "row_ids": None if self.row_ids is None else list(self.row_ids),
                "features": [f.to_dict() for f in self.features]}


def _numeric(p: NumericProfile, values: np.ndarray) -> FeatureDrift:
    return _numeric_windows(p, values, np.array([len(values)]))[0]


def _numeric_windows(p: NumericProfile, values: np.ndarray, lengths: np.ndarray) -> list[FeatureDrift]:
    """PSI, KS and median of several windows at once: ``values`` are the windows' values one after the
    other (``lengths`` each). The same floating-point operations, in the same order, as one window at a
    time: counts of the same values, divided by the same sizes, summed row by row."""
    w = lengths.size
    seg = np.repeat(np.arange(w), lengths)
    finite = np.isfinite(values)
    x, sx = values[finite], seg[finite]
    n = np.bincount(sx, minlength=w)
    out: list[FeatureDrift | None] = [None] * w
    if p.n < MIN_REFERENCE:
        why = f"reference has {p.n} values (needs {MIN_REFERENCE})"
        return [FeatureDrift(p.name, "numeric", int(k), math.nan, "ks", math.nan, math.nan, math.nan, False, None, why)
                for k in n]
    for i in np.flatnonzero(n == 0):
        out[i] = FeatureDrift(p.name, "numeric", 0, math.nan, "ks", math.nan, math.nan, math.nan, False, None,
                              "no values in the window")
    live = np.flatnonzero(n > 0)
    if live.size:
        keep = np.isin(sx, live) if live.size < w else slice(None)
        x, sx = x[keep], np.searchsorted(live, sx[keep])
        psi_v, d, pv, med = _numeric_tests(p, x, sx, n[live])
        for j, i in enumerate(live):
            out[i] = FeatureDrift(p.name, "numeric", int(n[i]), float(psi_v[j]), "ks", float(d[j]), float(pv[j]),
                                  float(pv[j]), False, float(med[j]))
    return out  # type: ignore[return-value]


def _numeric_tests(p: NumericProfile, x: np.ndarray, sx: np.ndarray,
                   n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window (rows ``sx`` of the finite values ``x``, ``n`` > 0 values each): PSI, KS D, its p-value, median."""
    from scipy.special import kolmogorov

    w = n.size
    edges, shares, sample, cdf = _prepared(p)
    k = edges.size + 1
    counts = np.bincount(sx * k + np.searchsorted(edges, x, side="right"), minlength=w * k).reshape(w, k)
    ws = np.maximum(counts / n[:, None], PSI_FLOOR)
    rs = np.maximum(shares, PSI_FLOOR)
    psi_v = np.sum((ws - rs) * np.log(ws / rs), axis=1)
    # each window's values sorted in one row (NaN after them)
    width = int(n.max())
    rows = np.full((w, width), np.nan)
    starts = np.cumsum(n) - n
    rows[sx, np.arange(x.size) - starts[sx]] = x
    rows.sort(axis=1)
    cols = np.arange(width)
    valid = cols < n[:, None]
    # the window's CDF at its own values: 1 + position of the last equal value
    nxt = np.concatenate([rows[:, 1:], np.full((w, 1), np.nan)], axis=1)
    last = np.where(valid & (nxt != rows), cols, width)
    fa_a = (np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1] + 1) / n[:, None]
    fb_a = np.searchsorted(sample, rows, side="right") / sample.size
    d = np.where(valid, np.abs(fa_a - fb_a), -np.inf).max(axis=1)
    if sample.size:  # the window's CDF at the reference values: values with no reference value below them
        nb = sample.size
        below = np.bincount(sx * (nb + 1) + np.searchsorted(sample, x, side="left"), minlength=w * (nb + 1))
        fa_b = np.cumsum(below.reshape(w, nb + 1), axis=1)[:, :nb] / n[:, None]
        d = np.maximum(d, np.abs(fa_b - cdf).max(axis=1))
    en = np.sqrt(n * p.n / (n + p.n))
    pv = np.minimum(1.0, kolmogorov((en + 0.12 + 0.11 / en) * d))
    half = n // 2
    wi = np.arange(w)
    med = rows[wi, half].copy()
    even = np.flatnonzero(n % 2 == 0)
    if even.size:
        med[even] = np.mean(np.stack([rows[even, half[even] - 1], rows[even, half[even]]], axis=1), axis=1)
    return psi_v, d, pv, med


def _categorical(p: CategoricalProfile, values: np.ndarray) -> FeatureDrift:
    return _categorical_windows(p, values, np.array([len(values)]))[0]


def _categorical_windows(p: CategoricalProfile, values: np.ndarray, lengths: np.ndarray) -> list[FeatureDrift]:
    """PSI and chi-square of several windows (``values`` one window after the other, ``lengths`` each): the
    values are counted for all windows at once, each window's test is the one-window computation."""
    w = lengths.size
    seg = np.repeat(np.arange(w), lengths)
    present = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values))
    n_known = np.bincount(seg[present], minlength=w)
    if p.n < MIN_REFERENCE:
        why = f"reference has {p.n} values (needs {MIN_REFERENCE})"
        return [FeatureDrift(p.name, "categorical", int(k), math.nan, "chi-square", math.nan, math.nan, math.nan,
                             False, None, why) for k in n_known]
    known = values[present].tolist()
    distinct = {v: i for i, v in enumerate(dict.fromkeys(known))}
    # labels as np.unique(np.asarray(values, dtype=str)) gives them, sorted; counted per window
    uniq, label = np.unique(np.asarray(list(distinct), dtype=str), return_inverse=True)
    codes = label.ravel()[np.fromiter(map(distinct.__getitem__, known), dtype=np.int64, count=len(known))]
    counts = np.bincount(seg[present] * uniq.size + codes, minlength=w * uniq.size).reshape(w, uniq.size)
    out = []
    for i in range(w):
        if not n_known[i]:
            out.append(FeatureDrift(p.name, "categorical", 0, math.nan, "chi-square", math.nan, math.nan, math.nan,
                                    False, None, "no values in the window"))
            continue
        nz = np.flatnonzero(counts[i])
        out.append(_categorical_test(p, int(n_known[i]), uniq[nz].tolist(), counts[i, nz].tolist()))
    return out


def _categorical_test(p: CategoricalProfile, n_known: int, labels: list[str], counts: list[int]) -> FeatureDrift:
    """One window's categorical drift from its values' counts (``labels`` sorted)."""
    seen = dict(zip(labels, counts))
    cats = list(p.shares)
    new = [c for c in seen if c not in p.shares]
    wc = [seen.get(c, 0) for c in cats if c != OTHER]
    rc = [p.shares[c] * p.n for c in cats if c != OTHER]
    other_w = sum(seen[c] for c in new) + seen.get(OTHER, 0)
    wc.append(other_w)
    rc.append(p.shares.get(OTHER, 0.0) * p.n)
    wc_a, rc_a = np.asarray(wc, dtype=float), np.asarray(rc, dtype=float)
    value = psi(wc_a / wc_a.sum(), rc_a / rc_a.sum())
    stat, pv = chi_square(wc_a, rc_a)
    top = labels[int(np.argmax(counts))]
    return FeatureDrift(p.name, "categorical", n_known, value, "chi-square", stat, pv, pv, False, top)


def drift_window(window: Window, profile: ReferenceProfile, settings: DriftSettings, min_requests: int) -> WindowDrift:
    """Drift of one window's successful requests against the profile."""
    return drift_windows([window], profile, settings, min_requests)[0]


def drift_windows(windows: Sequence[Window], profile: ReferenceProfile, settings: DriftSettings,
                  min_requests: int) -> list[WindowDrift]:
    """Drift of several windows, numeric features computed for all of them at once (same results as one
    window at a time)."""
    oks = []
    for window in windows:
        mask = ok_mask(window.batch)
        oks.append(window.batch if mask.all() else window.batch.take(np.flatnonzero(mask)))  # no copy when all ok
    lengths = np.array([b.n for b in oks], dtype=np.int64)
    per_feature: list[list[FeatureDrift]] = []
    for name in settings.features:
        if name in profile.numeric:
            vals = np.concatenate([feature_values(b, name) for b in oks]) if oks else np.empty(0)
            per_feature.append(_numeric_windows(profile.numeric[name], vals.astype(float, copy=False), lengths))
        elif name in profile.categorical:
            vals = np.concatenate([feature_values(b, name) for b in oks]) if oks else np.empty(0, dtype=object)
            per_feature.append(_categorical_windows(profile.categorical[name], vals, lengths))
    return [_judge(window, ok.n, [f[i] for f in per_feature], settings, min_requests)
            for i, (window, ok) in enumerate(zip(windows, oks))]


def _judge(window: Window, n_ok: int, results: list[FeatureDrift], settings: DriftSettings,
           min_requests: int) -> WindowDrift:
    """The window's verdict: too small, or the features' p-values adjusted as one family."""
    if n_ok < min_requests:
        return WindowDrift(window.index, window.start, window.end, n_ok, "too small", tuple(results),
                           settings.correction, window.row_ids)
    tested = [i for i, r in enumerate(results) if math.isfinite(r.p_value)]
    adj = adjust(np.asarray([results[i].p_value for i in tested]), settings.correction)
    for a, i in zip(adj, tested):
        r = results[i]
        drifted = bool(a < settings.alpha and r.psi >= settings.psi)
        results[i] = FeatureDrift(r.feature, r.kind, r.n, r.psi, r.test, r.statistic, r.p_value, float(a), drifted,
                                  r.summary, r.reason)
    status = "drift" if any(r.drifted for r in results) else "ok"
    return WindowDrift(window.index, window.start, window.end, n_ok, status, tuple(results), settings.correction,
                       window.row_ids)
