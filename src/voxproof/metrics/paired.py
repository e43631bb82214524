"""Paired comparison of two systems on the same utterances: the stage behind ``voxproof compare`` and
the release gate.

Inputs are per-utterance counts already aligned and cached by scoring: reference words ``n_i`` and
the errors of system A ``a_i`` and B ``b_i`` on utterance ``i``. Outputs:

- the corpus WER difference ``WER_B - WER_A = (sum b - sum a) / sum n`` with a *paired* percentile
  bootstrap interval (the same utterances, or speakers when known, are drawn for both systems), and the
  probability that B is better: the share of resamples in which B's WER is strictly lower;
- four paired significance tests in their **textbook** forms, one segment per utterance (the
  default, ``--tests textbook``). They are *not* NIST ``sc_stats``' definitions: sc_stats cuts the
  test into error regions for MAPSSWE, runs the sign and Wilcoxon tests on per-speaker %WER with its own
  tie rules and reads p-values from a table; :mod:`voxproof.metrics.sctk` (``--tests sctk``) reproduces
  those. The textbook forms here:

  * **MAPSSWE** (matched-pairs sentence-segment word error, Gillick & Cox 1989): ``Z_i = a_i - b_i``,
    ``W = mean(Z) / (sd(Z) / sqrt(n))`` with the sample standard deviation (``n - 1``); two-sided
    p-value from the standard normal (valid for many segments; warned below 20);
  * **sign test**: utterances where B has fewer errors vs. where A has fewer, ties dropped; exact
    two-sided binomial test with p = 1/2;
  * **Wilcoxon signed-rank** on ``Z_i`` (zeros dropped, mid-ranks for ties): exact null distribution
    when at most 50 non-zero differences without ties, normal approximation otherwise;
  * **McNemar** on utterance correctness (no error at all): discordant pairs ``n10`` (A correct,
    B wrong) and ``n01``; exact binomial when ``n10 + n01 < 25``, else chi-square with continuity
    correction ``(|n10 - n01| - 1)^2 / (n10 + n01)``, 1 degree of freedom.

The tests are written out here from their textbook definitions (no scipy import, so ``voxproof
compare`` starts fast); tests check them against scipy and against worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxproof.metrics.intervals import (
    METHOD,
    Interval,
    _num,
    block_sums,
    check_settings,
    percentile_interval,
    resample_sums,
)

SCHEMA_VERSION = 1
MCNEMAR_EXACT_BELOW = 25
WILCOXON_EXACT_MAX = 50
MAPSSWE_MIN_SEGMENTS = 20


@dataclass(frozen=True)
class TestResult:
    """One significance test. ``p_value`` is two-sided; ``n`` is the number of pairs it used
    (after dropping ties where the test does); ``details`` holds the test's own counts."""

    name: str
    statistic: float | None
    p_value: float
    method: str
    n: int
    details: dict[str, Any] = field(default_factory=dict)
    definition: str = "textbook"  # or "sc_stats" (voxproof.metrics.sctk)

    def significant(self, alpha: float = 0.05) -> bool:
        return math.isfinite(self.p_value) and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "statistic": None if self.statistic is None else _num(self.statistic),
                "p_value": _num(self.p_value), "method": self.method, "n": self.n, "details": dict(self.details),
                "definition": self.definition}


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mapsswe(errors_a: Sequence[float], errors_b: Sequence[float]) -> TestResult:
    """Matched-pairs sentence-segment word error test, textbook form with one segment per utterance
    (sc_stats uses error regions instead: :func:`voxproof.metrics.sctk.mapsswe_regions`)."""
    z = np.asarray(errors_a, dtype=float) - np.asarray(errors_b, dtype=float)
    n = len(z)
    if n < 2:
        return TestResult("mapsswe", None, float("nan"), "normal", n, {"reason": "needs two or more segments"})
    mean = float(z.mean())
    sd = float(z.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return TestResult("mapsswe", None if mean == 0 else math.copysign(math.inf, mean), p, "normal", n,
                          {"mean_difference": mean, "sd": 0.0})
    w = mean / (sd / math.sqrt(n))
    p = min(1.0, 2.0 * _norm_sf(abs(w)))
    return TestResult("mapsswe", w, p, "normal", n, {"mean_difference": mean, "sd": sd})


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` trials with success probability 1/2:
    ``2 * P(X <= min(k, n - k))``, capped at 1 (the distribution is symmetric)."""
    if n == 0:
        return 1.0
    term = tail = 1  # C(n, 0)
    for i in range(1, min(k, n - k) + 1):
        term = term * (n - i + 1) // i
        tail += term
    return min(1.0, (2 * tail) / (1 << n))  # exact integers; int / int stays accurate for large n


def sign_test(errors_a: Sequence[float], errors_b: Sequence[float]) -> TestResult:
    """Exact two-sided sign test on per-utterance errors (ties dropped)."""
    a = np.asarray(errors_a, dtype=float)
    b = np.asarray(errors_b, dtype=float)
    b_better = int(np.sum(b < a))
    a_better = int(np.sum(a < b))
    n = a_better + b_better
    return TestResult("sign", float(b_better), binomial_two_sided(b_better, n), "exact binomial", n,
                      {"b_better": b_better, "a_better": a_better, "ties": int(len(a) - n)})


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    xs = x[order]
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _signed_rank_exact_cdf(t: int, n: int) -> float:
    """P(W <= t) for the signed-rank sum W of ranks 1..n under H0 (each sign equally likely):
    the number of subsets of {1..n} with sum <= t, over 2^n."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    top = 0
    for r in range(1, n + 1):
        top += r
        for s in range(top, r - 1, -1):
            counts[s] += counts[s - r]
    return sum(counts[: t + 1]) / 2.0**n


def wilcoxon_test(errors_a: Sequence[float], errors_b: Sequence[float]) -> TestResult:
    """Wilcoxon signed-rank test on ``d_i = a_i - b_i``: zeros dropped, mid-ranks of ``|d|`` for ties;
    the statistic is ``T = min(W+, W-)``. Exact two-sided p ``2 P(W <= T)`` for at most 50
    differences without ties; otherwise the normal approximation with mean ``n(n+1)/4`` and variance
    ``n(n+1)(2n+1)/24 - sum(t^3 - t)/48`` over tie groups of size ``t`` (no continuity correction)."""
    d = np.asarray(errors_a, dtype=float) - np.asarray(errors_b, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return TestResult("wilcoxon", 0.0, 1.0, "no non-zero differences", 0)
    ranks = _ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    w_minus = float(ranks[d < 0].sum())
    t = min(w_plus, w_minus)
    _, tie_sizes = np.unique(np.abs(d), return_counts=True)
    ties = bool(np.any(tie_sizes > 1))
    details = {"w_plus": w_plus, "w_minus": w_minus, "ties_in_ranks": ties}
    if n <= WILCOXON_EXACT_MAX and not ties:
        p = min(1.0, 2.0 * _signed_rank_exact_cdf(int(t), n))
        return TestResult("wilcoxon", t, p, "exact", n, details)
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(tie_sizes**3 - tie_sizes)) / 48.0
    p = 1.0 if var <= 0 else min(1.0, 2.0 * _norm_sf(abs(t - mean) / math.sqrt(var)))
    return TestResult("wilcoxon", t, p, "normal approximation", n, details)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> TestResult:
    """McNemar's test on utterance correctness."""
    ca = np.asarray(correct_a, dtype=bool)
    cb = np.asarray(correct_b, dtype=bool)
    n10 = int(np.sum(ca & ~cb))
    n01 = int(np.sum(~ca & cb))
    n = n10 + n01
    details = {"a_only_correct": n10, "b_only_correct": n01, "both_correct": int(np.sum(ca & cb)),
               "both_wrong": int(np.sum(~ca & ~cb))}
    if n == 0:
        return TestResult("mcnemar", 0.0, 1.0, "no discordant pairs", 0, details)
    if n < MCNEMAR_EXACT_BELOW:
        return TestResult("mcnemar", float(min(n10, n01)), binomial_two_sided(n01, n), "exact binomial", n, details)
    stat = (abs(n10 - n01) - 1.0) ** 2 / n
    # chi-square with 1 degree of freedom: P(X > x) = P(|N(0,1)| > sqrt(x))
    return TestResult("mcnemar", stat, math.erfc(math.sqrt(stat / 2.0)), "chi-square, continuity corrected",
                      n, details)


@dataclass(frozen=True)
class PairedComparison:
    """A against B on the same utterances of one condition. ``difference`` is ``WER_B - WER_A``
    (negative: B makes fewer errors)."""

    condition: str
    utterances: int
    ref_words: int
    errors_a: int
    errors_b: int
    wer_a: float
    wer_b: float
    difference: Interval
    prob_b_better: float
    tests: tuple[TestResult, ...]
    warnings: tuple[str, ...] = ()
    schema: int = SCHEMA_VERSION

    def test(self, name: str) -> TestResult:
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "paired_comparison", "schema": self.schema, "condition": self.condition,
            "utterances": self.utterances, "ref_words": self.ref_words, "errors_a": self.errors_a,
            "errors_b": self.errors_b, "wer_a": _num(self.wer_a), "wer_b": _num(self.wer_b),
            "difference": self.difference.to_dict(), "prob_b_better": _num(self.prob_b_better),
            "tests": [t.to_dict() for t in self.tests], "warnings": list(self.warnings),
        }


def compare_counts(
    ref_len: Sequence[int],
    errors_a: Sequence[int],
    errors_b: Sequence[int],
    *,
    groups: Sequence[Any] | None = None,
    condition: str = "clean",
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedComparison:
    """Paired comparison from per-utterance counts (utterance ``i`` in every sequence is the same).
    ``groups`` (speaker per utterance) makes the bootstrap resample speakers."""
    check_settings(n_resamples, level)
    n = np.asarray(ref_len, dtype=float)
    a = np.asarray(errors_a, dtype=float)
    b = np.asarray(errors_b, dtype=float)
    if not (len(n) == len(a) == len(b)):
        raise ValueError("ref_len, errors_a and errors_b must have one entry per utterance")
    total_n = float(n.sum())
    wer_a = a.sum() / total_n if total_n else float("nan")
    wer_b = b.sum() / total_n if total_n else float("nan")
    cols = np.column_stack([n, a, b]) if len(n) else np.zeros((0, 3))
    blocked_by = None
    if groups is not None and len(set(groups)) >= 2:
        cols, _ = block_sums(cols, groups)
        blocked_by = "speaker"
    warnings: list[str] = []
    if total_n and len(cols):
        sums = resample_sums(cols, n_resamples, np.random.default_rng(seed))
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = (sums[:, 2] - sums[:, 1]) / sums[:, 0]
        low, high = percentile_interval(diff, level)
        prob = float(np.mean(sums[:, 2] < sums[:, 1]))
    else:
        low = high = prob = float("nan")
    est = float(wer_b - wer_a) if total_n else float("nan")
    interval = Interval(est, low, high, level, METHOD, n_resamples, seed, blocked_by, len(cols))
    tests = (
        mapsswe(a, b), sign_test(a, b), wilcoxon_test(a, b), mcnemar(a == 0, b == 0),
    )
    if len(a) < MAPSSWE_MIN_SEGMENTS:
        warnings.append(f"only {len(a)} utterances: the MAPSSWE normal approximation needs more; "
                        "rely on the exact sign and McNemar tests")
    if blocked_by and len(cols) < 30:
        warnings.append(f"the bootstrap resamples {len(cols)} speakers: with fewer than 30 the interval "
                        "tends to be too narrow")
    return PairedComparison(
        condition=condition, utterances=len(a), ref_words=int(total_n), errors_a=int(a.sum()),
        errors_b=int(b.sum()), wer_a=float(wer_a), wer_b=float(wer_b), difference=interval,
        prob_b_better=prob, tests=tests, warnings=tuple(warnings),
    )
