"""Comparing N systems on the same utterances: omnibus tests, corrected pairwise tests, and a ranking
with intervals (the stage behind ``voxproof compare RUN_A RUN_B RUN_C ...``).

Inputs: per-utterance reference words ``n_i`` and errors ``e_ij`` of system ``j`` on utterance ``i``
(counts aligned and cached by scoring, as for two runs). Outputs, per condition:

- **Friedman test** (utterances as blocks): within each utterance the systems are ranked by errors
  (mid-ranks for ties); ``Q = [12 / (n k (k+1)) sum_j R_j^2 - 3 n (k+1)] / C`` with the tie correction
  ``C = 1 - sum(t^3 - t) / (n (k^3 - k))`` over tie groups; p from chi-square with ``k - 1`` degrees of
  freedom (equal to ``scipy.stats.friedmanchisquare``). Blocks where all systems tie carry no
  information but stay in ``n`` (as in scipy). With speakers known, the same test on per-speaker WER
  (speakers as blocks) is reported too, since utterances of one speaker are not independent.
- **Permutation test on corpus WER** (an ANOVA-style omnibus on the quantity that is reported): the
  statistic is the variance of the k corpus WERs; the null distribution permutes the systems' errors
  within each utterance (or speaker, when known) block; ``p = (1 + #{perm >= observed}) / (1 + P)``.
- **Pairwise comparisons** for every pair with :func:`voxproof.metrics.paired.compare_counts` (paired
  bootstrap interval of the difference and the MAPSSWE, sign, Wilcoxon and McNemar tests); each test's
  p-values are Holm-corrected over the ``k (k - 1) / 2`` pairs (family-wise error at ``alpha``).
- **Ranking**: the systems' corpus WERs are bootstrapped jointly (the same utterances, or speakers,
  for all systems); each resample ranks them (mid-ranks for ties). Reported per system: rank on the
  data, mean rank, the rank interval at ``level``, and P(best) = share of resamples in which it has
  the lowest WER (a tie for lowest shares the resample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.metrics.intervals import _num, block_sums, check_settings, percentile_interval, resample_sums
from voxproof.metrics.paired import PairedComparison, compare_counts

SCHEMA_VERSION = 1
PAIRWISE_TESTS = ("mapsswe", "sign", "wilcoxon", "mcnemar")


# -- chi-square survival (no scipy import at run time) ------------------------------------------------
def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma ``Q(a, x)`` (series below ``a + 1``, continued fraction above)."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    b = x + 1.0 - a
    c = 1.0 / 1e-300
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - gln) * h)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square variable with ``df`` degrees of freedom."""
    if not math.isfinite(x):
        return 0.0 if x > 0 else 1.0
    return _gamma_q(df / 2.0, x / 2.0)


def _row_ranks(values: np.ndarray) -> np.ndarray:
    """Mid-ranks (1 = smallest) along each row of a 2-D array."""
    n, k = values.shape
    order = np.argsort(values, axis=1, kind="mergesort")
    ranks = np.empty((n, k), dtype=float)
    rows = np.arange(n)[:, None]
    ranks[rows, order] = np.arange(1, k + 1, dtype=float)
    for r in range(n):  # ties: average the ranks of equal values (only rows that have ties)
        v = values[r]
        if len(np.unique(v)) < k:
            for value in np.unique(v):
                mask = v == value
                if mask.sum() > 1:
                    ranks[r, mask] = ranks[r, mask].mean()
    return ranks


@dataclass(frozen=True)
class OmnibusTest:
    """A test of 'all systems have the same error rate'. ``p_value`` is ``nan`` with a ``reason``
    when it cannot be computed."""

    name: str
    statistic: float | None
    p_value: float
    method: str
    blocks: int
    details: dict[str, Any]
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "statistic": None if self.statistic is None else _num(self.statistic),
                "p_value": _num(self.p_value), "method": self.method, "blocks": self.blocks,
                "details": self.details, "reason": self.reason}


def friedman(scores: np.ndarray, *, name: str = "friedman", block_label: str = "utterances") -> OmnibusTest:
    """Friedman's test on an ``(n blocks, k systems)`` array of scores (lower is better)."""
    n, k = scores.shape
    if k < 3 or n < 2:
        return OmnibusTest(name, None, float("nan"), "chi-square", n, {},
                           reason=f"needs 3 or more systems and 2 or more {block_label}")
    ranks = _row_ranks(scores)
    rsum = ranks.sum(axis=0)
    ties = 0.0
    for r in range(n):
        _, counts = np.unique(scores[r], return_counts=True)
        ties += float(np.sum(counts.astype(float) ** 3 - counts))
    correction = 1.0 - ties / (n * (k**3 - k))
    details = {"mean_ranks": [float(x) for x in rsum / n], "df": k - 1, "tie_correction": correction}
    if correction <= 0:
        return OmnibusTest(name, 0.0, 1.0, "chi-square", n, details, reason="every system ties on every block")
    q = (12.0 / (n * k * (k + 1)) * float(np.sum(rsum**2)) - 3.0 * n * (k + 1)) / correction
    return OmnibusTest(name, q, chi2_sf(q, k - 1), f"chi-square, {k - 1} df, tie-corrected", n, details)


def permutation_omnibus(ref: np.ndarray, errors: np.ndarray, *, n_permutations: int, seed: int,
                        block_label: str) -> OmnibusTest:
    """Variance of the k corpus WERs against its distribution under within-block permutation."""
    n, k = errors.shape
    total = float(ref.sum())
    if total <= 0 or n < 2:
        return OmnibusTest("permutation", None, float("nan"), "permutation", n, {},
                           reason="no reference words" if total <= 0 else f"needs 2 or more {block_label}")
    observed = float(np.var(errors.sum(axis=0) / total))
    rng = np.random.default_rng(seed)
    exceed = 0
    chunk = max(1, min(n_permutations, 2_000_000 // max(1, n * k)))
    done = 0
    while done < n_permutations:
        m = min(chunk, n_permutations - done)
        keys = rng.random((m, n, k))
        perm = np.argsort(keys, axis=2)
        shuffled = np.take_along_axis(np.broadcast_to(errors, (m, n, k)), perm, axis=2)
        stats = np.var(shuffled.sum(axis=1) / total, axis=1)
        exceed += int(np.sum(stats >= observed - 1e-15))
        done += m
    p = (1 + exceed) / (1 + n_permutations)
    return OmnibusTest("permutation", observed, p, f"within-{block_label[:-1]} permutation, {n_permutations} draws",
                       n, {"statistic": "variance of the corpus WERs", "seed": seed, "permutations": n_permutations})


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (nan stays nan and is not counted)."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(idx)
    order = sorted(idx, key=lambda i: p_values[i])
    out = [float("nan")] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


@dataclass(frozen=True)
class RankEntry:
    """One system's place: ``rank`` on the data (1 = lowest WER, mid-ranks for ties), ``mean_rank``
    and the rank interval over bootstrap resamples, and ``p_best``."""

    system: str
    wer: float
    rank: float
    mean_rank: float
    rank_low: float
    rank_high: float
    p_best: float

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "wer": _num(self.wer), "rank": self.rank, "mean_rank": _num(self.mean_rank),
                "rank_low": _num(self.rank_low), "rank_high": _num(self.rank_high), "p_best": _num(self.p_best)}


@dataclass(frozen=True)
class MultiCondition:
    """N systems on one condition."""

    condition: str
    utterances: int
    ref_words: int
    speakers: int
    wers: tuple[float, ...]
    omnibus: tuple[OmnibusTest, ...]
    pairwise: tuple[tuple[int, int, PairedComparison, dict[str, float]], ...]  # (a, b, comparison, holm p)
    ranking: tuple[RankEntry, ...]
    blocked_by: str | None
    warnings: tuple[str, ...]

    def to_dict(self, systems: Sequence[str]) -> dict[str, Any]:
        return {
            "condition": self.condition, "utterances": self.utterances, "ref_words": self.ref_words,
            "speakers": self.speakers, "wer": {s: _num(w) for s, w in zip(systems, self.wers)},
            "omnibus": [t.to_dict() for t in self.omnibus],
            "pairwise": [{"a": systems[a], "b": systems[b], "comparison": c.to_dict(),
                          "holm_p": {k: _num(v) for k, v in adj.items()}} for a, b, c, adj in self.pairwise],
            "ranking": [r.to_dict() for r in self.ranking], "blocked_by": self.blocked_by,
            "warnings": list(self.warnings),
        }


def compare_matrix(
    ref_len: Sequence[int], errors: Sequence[Sequence[int]], systems: Sequence[str], *,
    groups: Sequence[Any] | None = None, condition: str = "clean", n_resamples: int = 1000,
    n_permutations: int = 2000, seed: int = 0, level: float = 0.95,
) -> MultiCondition:
    """N-system comparison from per-utterance counts: ``errors[j][i]`` is system ``j`` on utterance ``i``."""
    check_settings(n_resamples, level)
    k = len(systems)
    n = np.asarray(ref_len, dtype=float)
    e = np.asarray(errors, dtype=float).T.reshape(len(n), k) if len(n) else np.zeros((0, k))
    total = float(n.sum())
    wers = tuple(float(x) for x in (e.sum(axis=0) / total if total else np.full(k, np.nan)))
    warnings: list[str] = []
    blocked = groups is not None and len(set(groups)) >= 2
    omnibus = [friedman(e)]
    if blocked:
        cols, _ = block_sums(np.column_stack([n, e]), list(groups))  # type: ignore[arg-type]
        with np.errstate(divide="ignore", invalid="ignore"):
            spk_wer = cols[:, 1:] / cols[:, :1]
        spk_wer = spk_wer[np.isfinite(spk_wer).all(axis=1)]
        omnibus.append(friedman(spk_wer, name="friedman_speakers", block_label="speakers"))
        omnibus.append(permutation_omnibus(cols[:, 0], cols[:, 1:], n_permutations=n_permutations, seed=seed,
                                           block_label="speakers"))
        units = cols
        if len(cols) < 30:
            warnings.append(f"the bootstrap and the permutation test resample {len(cols)} speakers: with fewer than "
                            "30 the rank intervals tend to be too narrow")
    else:
        omnibus.append(permutation_omnibus(n, e, n_permutations=n_permutations, seed=seed, block_label="utterances"))
        units = np.column_stack([n, e]) if len(n) else np.zeros((0, k + 1))
    pairs = []
    for a in range(k):
        for b in range(a + 1, k):
            pairs.append((a, b, compare_counts(n, e[:, a], e[:, b], groups=groups if blocked else None,
                                               condition=condition, n_resamples=n_resamples, seed=seed, level=level)))
    adjusted: list[dict[str, float]] = [{} for _ in pairs]
    for test in PAIRWISE_TESTS:
        ps = holm([c.test(test).p_value for _, _, c in pairs])
        for slot, p in zip(adjusted, ps):
            slot[test] = p
    ranking = _ranking(units, systems, wers, n_resamples=n_resamples, seed=seed, level=level)
    if len(n) < 20:
        warnings.append(f"only {len(n)} utterances: the Friedman chi-square approximation needs more; rely on "
                        "the permutation test")
    return MultiCondition(condition, len(n), int(total), len(set(groups)) if groups is not None else 0, wers,
                          tuple(omnibus), tuple((a, b, c, adj) for (a, b, c), adj in zip(pairs, adjusted)),
                          ranking, "speaker" if blocked else None, tuple(warnings))


def _ranking(units: np.ndarray, systems: Sequence[str], wers: Sequence[float], *, n_resamples: int, seed: int,
             level: float) -> tuple[RankEntry, ...]:
    k = len(systems)
    observed = _row_ranks(np.asarray([wers], dtype=float))[0]
    if not len(units) or units[:, 0].sum() <= 0:
        nan = float("nan")
        return tuple(RankEntry(s, w, float(r), nan, nan, nan, nan) for s, w, r in zip(systems, wers, observed))
    sums = resample_sums(units, n_resamples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = sums[:, 1:] / sums[:, :1]
    rates = rates[np.isfinite(rates).all(axis=1)]
    ranks = _row_ranks(rates)
    best = rates.min(axis=1, keepdims=True)
    is_best = rates == best
    p_best = (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)
    out = []
    for j in range(k):
        low, high = percentile_interval(ranks[:, j], level)
        out.append(RankEntry(systems[j], wers[j], float(observed[j]), float(ranks[:, j].mean()), low, high,
                             float(p_best[j])))
    return tuple(sorted(out, key=lambda r: (r.rank, r.system)))
