"""Monitor stage: SLO rules judged on the latest requests of each route, with intervals.

:func:`read_tail` streams the log once (in chunks) and keeps the last requests of each route;
:func:`evaluate_rules` judges every rule of the policy on them:

- ``error_rate`` (5xx share, Wilson interval), ``empty_output`` (share of successful requests with no
  words, Wilson), ``marker:*`` rates (Wilson), ``est_wer`` (label-free
  estimate, bootstrap over requests), ``latency_p99`` (distribution-free order-statistic interval),
  ``drift`` (drifted features of the latest window against the reference);
- comparisons (``compare = "production"``): the difference route - production as a bootstrap interval,
  two-sample for ``canary`` rows (independent resampling of each side) and paired for ``shadow`` rows
  (the same request ids served by production; pairs resampled together).

With ``decision = "interval"`` a rule breaches only when its whole interval lies above ``max``; fewer
than ``min_requests`` requests give "too small", never a breach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.monitor.drift import Window, drift_window
from voxproof.monitor.estimate import request_mass
from voxproof.monitor.markers import marker_flags, wilson
from voxproof.monitor.policy import MonitorPolicy, SloRule
from voxproof.monitor.profile import ReferenceProfile, ok_mask
from voxproof.monitor.source import ROUTES, RequestBatch


@dataclass(frozen=True)
class RuleResult:
    rule: SloRule
    status: str  # ok / breach / too small / n/a
    value: float
    low: float
    high: float
    n: int
    n_production: int | None
    version: str | None
    detail: str
    row_ids: tuple[int, ...] = ()
    method: str = ""

    @property
    def breached(self) -> bool:
        return self.status == "breach"

    def to_dict(self) -> dict[str, Any]:
        f = lambda x: None if not math.isfinite(x) else round(float(x), 6)
        r = self.rule
        return {"rule": r.name, "metric": r.metric, "route": r.route, "compare": r.compare, "max": r.max,
                "decision": r.decision, "status": self.status, "value": f(self.value), "low": f(self.low),
                "high": f(self.high), "n": self.n, "n_production": self.n_production, "version": self.version,
                "method": self.method, "detail": self.detail, "row_ids": list(self.row_ids)}


# -- the tail of the log -----------------------------------------------------------------------------
def read_tail(chunks: Iterable[RequestBatch], keep: int) -> dict[str, RequestBatch]:
    """The last ``keep`` rows of each route (main keeps 2 x ``keep`` for shadow pairing)."""
    tails: dict[str, RequestBatch] = {}
    route_keep = {r: keep * (2 if r == "main" else 1) for r in ROUTES}
    for chunk in chunks:
        routes = chunk.get("route")
        for r in ROUTES:
            part = chunk.take(np.flatnonzero(routes == r))
            if not part.n:
                continue
            merged = RequestBatch.concat([tails[r], part]) if r in tails else part
            if merged.n > route_keep[r]:
                merged = merged.take(np.arange(merged.n - route_keep[r], merged.n))
            tails[r] = merged
    return tails


def _select(tails: dict[str, RequestBatch], route: str, version: str | None, window: int) -> RequestBatch:
    if route == "all":
        parts = [tails[r] for r in ("main", "canary") if r in tails]
        b = RequestBatch.concat(parts)
        if b.n:
            b = b.take(np.argsort(b.get("ts"), kind="mergesort"))
    else:
        b = tails.get(route) or RequestBatch.concat([])
    if version is not None and b.n:
        b = b.take(np.flatnonzero(b.get("version") == version))
    if b.n > window:
        b = b.take(np.arange(b.n - window, b.n))
    return b


# -- per-request contributions ------------------------------------------------------------------------
def _contrib(b: RequestBatch, rule: SloRule, profile: ReferenceProfile | None,
             policy: MonitorPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) per request for ratio metrics; latency values as (values, ones)."""
    m = rule.metric
    if m == "error_rate":
        status = b.get("status")
        return (status >= 500).astype(float), np.ones(b.n)
    if m == "empty_output":
        words = b.get("words")
        judged = ok_mask(b) & np.isfinite(words)
        return (judged & (words == 0)).astype(float), judged.astype(float)
    if m.startswith("marker:"):
        flag, judged = marker_flags(b, profile, policy.markers)[m[7:]]
        return (flag & judged).astype(float), judged.astype(float)
    if m == "est_wer":
        rm = request_mass(b, profile.calibration)
        return np.where(rm.scored, rm.mass, 0.0), np.where(rm.scored, rm.words, 0.0)
    if m == "latency_p99":
        lat = b.get("latency_s")
        keep = ok_mask(b) & np.isfinite(lat)
        return np.where(keep, lat, np.nan), keep.astype(float)
    raise ValueError(m)


def _stat(rule: SloRule, num: np.ndarray, den: np.ndarray, profile: ReferenceProfile | None) -> np.ndarray:
    """The metric from summed numerators/denominators (arrays: one per resample)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule.metric == "est_wer":
            cal = profile.calibration
            dels = cal.deletions_per_word * den
            ref = den - cal.insertion_share * num + dels
            return np.where((den > 0) & (ref > 0), (num + dels) / ref, np.nan)
        return np.where(den > 0, num / den, np.nan)


def _p99(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.quantile(v, 0.99)) if v.size else math.nan


def _resampled(rule: SloRule, num: np.ndarray, den: np.ndarray, idx: np.ndarray,
               profile: ReferenceProfile | None) -> np.ndarray:
    if rule.metric == "latency_p99":
        vals = num[idx]
        with np.errstate(all="ignore"):
            return np.nanquantile(np.where(den[idx] > 0, vals, np.nan), 0.99, axis=1)
    return _stat(rule, num[idx].sum(axis=1), den[idx].sum(axis=1), profile)


def _point(rule: SloRule, num: np.ndarray, den: np.ndarray, profile: ReferenceProfile | None) -> float:
    if rule.metric == "latency_p99":
        return _p99(np.where(den > 0, num, np.nan))
    return float(_stat(rule, np.array([num.sum()]), np.array([den.sum()]), profile)[0])


def _ids(b: RequestBatch, limit: int = 50) -> tuple[int, ...]:
    ids = b.get("id")
    ids = ids[np.isfinite(ids)]
    return tuple(int(i) for i in ids[-limit:])


def _version(b: RequestBatch) -> str | None:
    v = [x for x in b.get("version") if x is not None]
    if not v:
        return None
    vals, counts = np.unique(np.asarray(v, dtype=str), return_counts=True)
    return str(vals[int(np.argmax(counts))])


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if not s.size:
        return math.nan, math.nan
    a = (1 - level) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def _decide(rule: SloRule, value: float, low: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if rule.decision == "point" or not math.isfinite(low):
        return "breach" if value > rule.max else "ok"
    return "breach" if low > rule.max else "ok"


# -- judging ----------------------------------------------------------------------------------------
def evaluate_rule(rule: SloRule, tails: dict[str, RequestBatch], policy: MonitorPolicy,
                  profile: ReferenceProfile | None, aliases: dict[str, str] | None = None) -> RuleResult:
    aliases = aliases or {}
    prod_version = aliases.get("production")
    own_version = aliases.get("canary") if rule.target == "canary" else (prod_version if rule.route == "main" else None)
    nan = math.nan
    if rule.target == "canary" and aliases and "canary" not in aliases:
        return RuleResult(rule, "n/a", nan, nan, nan, 0, None, None, "no canary alias in the registry")
    needs_profile = rule.metric in ("est_wer", "drift") or rule.metric == "marker:wps_out_of_range"
    if needs_profile and (profile is None or (rule.metric == "est_wer" and profile.calibration is None)):
        return RuleResult(rule, "n/a", nan, nan, nan, 0, None, None,
                          "n/a (needs a reference profile with calibration: --profile from 'monitor baseline RUN')")
    b = _select(tails, rule.route, own_version, rule.window)
    version = own_version or _version(b)
    if rule.metric == "drift":
        ok_n = int(ok_mask(b).sum())
        if ok_n < rule.min_requests:
            return RuleResult(rule, "too small", nan, nan, nan, ok_n, None, version,
                              f"{ok_n} successful requests (needs {rule.min_requests})", _ids(b))
        ts = b.get("ts")
        wd = drift_window(Window(0, float(ts[0]), float(ts[-1]), b), profile, policy.drift, rule.min_requests)
        k = float(len(wd.drifted))
        detail = f"drifted: {', '.join(wd.drifted) or 'none'} ({policy.drift.correction} over {len(wd.features)} features)"
        return RuleResult(rule, "breach" if k > rule.max else "ok", k, nan, nan, ok_n, None, version, detail,
                          _ids(b), "PSI + KS/chi-square")
    num, den = _contrib(b, rule, profile, policy)
    n = int((den > 0).sum())
    rng = np.random.default_rng(policy.seed)
    B = policy.resamples or 200
    if rule.compare is None:
        if n < rule.min_requests:
            return RuleResult(rule, "too small", nan, nan, nan, n, None, version,
                              f"{n} requests judged (needs {rule.min_requests})", _ids(b))
        value = _point(rule, num, den, profile)
        if rule.metric == "latency_p99":
            low, high = _quantile_interval(np.where(den > 0, num, np.nan), 0.99, policy.confidence)
            method = "order-statistic interval"
        elif rule.metric == "est_wer":
            keep = np.flatnonzero(den > 0)
            low, high = _interval(_resampled(rule, num[keep], den[keep], rng.integers(0, keep.size, (B, keep.size)),
                                             profile), policy.confidence)
            method = "bootstrap over requests"
        else:
            k_, n_ = int(num.sum()), int(den.sum())
            low, high = wilson(k_, n_, policy.confidence)
            method = "Wilson interval"
        detail = f"{rule.metric} {_fmt(value)} [{_fmt(low)}, {_fmt(high)}] over {n} requests; max {_fmt(rule.max)}"
        return RuleResult(rule, _decide(rule, value, low), value, low, high, n, None, version, detail, _ids(b), method)
    # comparison with production's main rows
    prod = _select(tails, "main", prod_version, rule.window * (4 if rule.route == "shadow" else 1))
    pnum, pden = _contrib(prod, rule, profile, policy)
    if rule.route == "shadow":
        return _paired(rule, b, num, den, prod, pnum, pden, policy, profile, version, rng, B)
    pn = int((pden > 0).sum())
    if n < rule.min_requests or pn < rule.min_requests:
        return RuleResult(rule, "too small", nan, nan, nan, n, pn, version,
                          f"{n} {rule.route} and {pn} production requests judged (needs {rule.min_requests} each)",
                          _ids(b))
    ka, kb = np.flatnonzero(den > 0), np.flatnonzero(pden > 0)
    value = _point(rule, num[ka], den[ka], profile) - _point(rule, pnum[kb], pden[kb], profile)
    da = _resampled(rule, num[ka], den[ka], rng.integers(0, ka.size, (B, ka.size)), profile)
    db = _resampled(rule, pnum[kb], pden[kb], rng.integers(0, kb.size, (B, kb.size)), profile)
    low, high = _interval(da - db, policy.confidence)
    detail = (f"{rule.metric} {rule.route} - production = {_fmt(value)} [{_fmt(low)}, {_fmt(high)}] "
              f"({n} vs {pn} requests, two-sample bootstrap); max increase {_fmt(rule.max)}")
    return RuleResult(rule, _decide(rule, value, low), value, low, high, n, pn, version, detail, _ids(b),
                      "two-sample bootstrap")


def _paired(rule, b, num, den, prod, pnum, pden, policy, profile, version, rng, B) -> RuleResult:
    nan = math.nan
    pos = {rid: i for i, rid in enumerate(prod.get("request_id")) if rid is not None}
    ia, ib = [], []
    for i, rid in enumerate(b.get("request_id")):
        j = pos.get(rid)
        if j is not None and den[i] > 0 and pden[j] > 0:
            ia.append(i)
            ib.append(j)
    n = len(ia)
    if n < rule.min_requests:
        return RuleResult(rule, "too small", nan, nan, nan, n, n, version,
                          f"{n} shadow requests paired with production (needs {rule.min_requests})", _ids(b))
    ia_a, ib_a = np.asarray(ia), np.asarray(ib)
    a_num, a_den, b_num, b_den = num[ia_a], den[ia_a], pnum[ib_a], pden[ib_a]
    value = _point(rule, a_num, a_den, profile) - _point(rule, b_num, b_den, profile)
    idx = rng.integers(0, n, (B, n))
    diff = _resampled(rule, a_num, a_den, idx, profile) - _resampled(rule, b_num, b_den, idx, profile)
    low, high = _interval(diff, policy.confidence)
    detail = (f"{rule.metric} shadow - production = {_fmt(value)} [{_fmt(low)}, {_fmt(high)}] on {n} paired "
              f"requests (same request_id); max increase {_fmt(rule.max)}")
    return RuleResult(rule, _decide(rule, value, low), value, low, high, n, n, version, detail, _ids(b),
                      "paired bootstrap")


def _quantile_interval(values: np.ndarray, q: float, level: float) -> tuple[float, float]:
    """Distribution-free interval of the q-quantile from order statistics (binomial ranks); the upper
    end is inf when the sample is too small to bound it."""
    from scipy.stats import binom

    v = np.sort(values[np.isfinite(values)])
    n = v.size
    if n == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo_rank = int(binom.ppf(a, n, q))
    hi_rank = int(binom.ppf(1 - a, n, q)) + 1
    low = float(v[max(lo_rank - 1, 0)])
    high = float(v[hi_rank - 1]) if hi_rank <= n else math.inf
    return low, high


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "inf" if x == math.inf else "n/a"
    return f"{x:.4g}"


def evaluate_rules(tails: dict[str, RequestBatch], policy: MonitorPolicy, profile: ReferenceProfile | None,
                   aliases: dict[str, str] | None = None) -> list[RuleResult]:
    return [evaluate_rule(r, tails, policy, profile, aliases) for r in policy.rules]
