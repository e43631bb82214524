"""Paired significance tests checked against worked examples derived by hand from the textbook
definitions (each derivation is in the test's docstring)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voxproof.metrics.paired import compare_counts, mapsswe, mcnemar, sign_test, wilcoxon_test

# The 8-utterance example used below: every utterance has 10 reference words.
REF = [10] * 8
A = [2, 3, 1, 4, 0, 2, 5, 1]  # 18 errors: WER_A = 18/80 = 0.225
B = [1, 1, 1, 2, 0, 3, 2, 0]  # 10 errors: WER_B = 10/80 = 0.125


def test_mapsswe_worked_example():
    """Z_i = a_i - b_i = [1, 2, 0, 2, 0, -1, 3, 1]; n = 8.
    mean(Z) = 8/8 = 1.
    deviations from the mean: 0, 1, -1, 1, -1, -2, 2, 0; squares sum to 0+1+1+1+1+4+4+0 = 12.
    sample variance = 12/7, so sd/sqrt(n) = sqrt(12/7)/sqrt(8) = sqrt(12/56) = sqrt(3/14).
    W = 1 / sqrt(3/14) = sqrt(14/3) = 2.1602...
    two-sided p = 2 * (1 - Phi(W)) = erfc(W / sqrt(2)) = 0.0307..."""
    t = mapsswe(A, B)
    w = math.sqrt(14 / 3)
    assert t.statistic == pytest.approx(w, rel=1e-12)
    assert t.p_value == pytest.approx(math.erfc(w / math.sqrt(2)), rel=1e-12)
    assert t.p_value == pytest.approx(0.0307, abs=5e-4)
    assert t.n == 8 and t.details["mean_difference"] == 1.0
    # symmetric: swapping the systems flips the sign only
    assert mapsswe(B, A).statistic == pytest.approx(-w)
    assert mapsswe(B, A).p_value == pytest.approx(t.p_value)


def test_sign_test_worked_example():
    """B has fewer errors on utterances 1, 2, 4, 7, 8 (5), A on utterance 6 (1), ties on 3 and 5
    are dropped: n = 6. Under H0 the number of B wins is Binomial(6, 1/2).
    P(X <= 1) = (C(6,0) + C(6,1)) / 2^6 = (1 + 6) / 64; two-sided p = 2 * 7/64 = 14/64 = 0.21875."""
    t = sign_test(A, B)
    assert (t.details["b_better"], t.details["a_better"], t.details["ties"]) == (5, 1, 2)
    assert t.n == 6
    assert t.p_value == pytest.approx(14 / 64, rel=1e-12)
    assert not t.significant(0.05)


def test_sign_test_all_wins():
    """10 wins of B, no losses: p = 2 * (1/2)^10 = 1/512."""
    t = sign_test([3] * 10, [1] * 10)
    assert t.p_value == pytest.approx(2 / 1024, rel=1e-12)


def test_wilcoxon_exact_worked_example():
    """d = [1, -2, 3, 4, 5, 6, -7, 8]: no zeros, no tied magnitudes, so ranks are 1..8 and the
    negative differences have ranks 2 and 7: W- = 9 (W+ = 36 - 9 = 27); the statistic is min = 9.
    Exact null: each of the 2^8 = 256 sign patterns is equally likely; W- <= 9 happens for every
    subset of {1..8} with sum <= 9. Counting subsets by sum s = 0..9: 1, 1, 1, 2, 2, 3, 4, 5, 6, 7
    (e.g. s = 9: {1,8} {2,7} {3,6} {4,5} {1,2,6} {1,3,5} {2,3,4}), 32 in all.
    Two-sided p = 2 * 32 / 256 = 0.25."""
    d = [1, -2, 3, 4, 5, 6, -7, 8]
    t = wilcoxon_test(d, [0] * 8)
    assert t.statistic == 9.0
    assert t.p_value == pytest.approx(0.25, rel=1e-12)
    assert t.method == "exact" and t.n == 8


def test_wilcoxon_all_positive():
    """d = [1, 2, 3, 4, 5]: W- = 0; only the all-positive pattern of 2^5 = 32 has W- <= 0, so
    two-sided p = 2/32 = 0.0625."""
    t = wilcoxon_test([1, 2, 3, 4, 5], [0] * 5)
    assert t.statistic == 0.0
    assert t.p_value == pytest.approx(0.0625, rel=1e-12)


def test_wilcoxon_with_ties_uses_normal_approximation():
    """The 8-utterance example: zeros dropped, d = [1, 2, 2, -1, 3, 1] has tied magnitudes, so the
    exact table does not apply and the normal approximation (with tie correction) is used.
    Mid-ranks of |d| = 1,2,2,1,3,1: the three 1s share rank 2, the two 2s share 4.5, 3 gets 6.
    W- = rank of the one negative (|d| = 1) = 2; W+ = 21 - 2 = 19.
    Mean n(n+1)/4 = 10.5; variance n(n+1)(2n+1)/24 = 22.75 minus the tie term
    sum(t^3 - t)/48 = (24 + 6)/48 = 0.625: 22.125. z = (2 - 10.5)/sqrt(22.125) = -1.807...
    two-sided p = erfc(|z| / sqrt(2)) = 0.0707..."""
    t = wilcoxon_test(A, B)
    assert t.method == "normal approximation" and t.n == 6
    assert t.statistic == 2.0
    z = (2 - 10.5) / math.sqrt(22.125)
    assert t.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)


def test_mcnemar_exact_worked_example():
    """30 utterances: both correct 10, both wrong 9, A only correct 2, B only correct 9.
    Discordant n = 11 < 25: exact binomial. P(X <= 2 | 11, 1/2) = (1 + 11 + 55)/2048 = 67/2048;
    two-sided p = 134/2048 = 0.0654296875."""
    ca = [True] * 10 + [False] * 9 + [True] * 2 + [False] * 9
    cb = [True] * 10 + [False] * 9 + [False] * 2 + [True] * 9
    t = mcnemar(ca, cb)
    assert t.method == "exact binomial"
    assert t.details == {"a_only_correct": 2, "b_only_correct": 9, "both_correct": 10, "both_wrong": 9}
    assert t.p_value == pytest.approx(134 / 2048, rel=1e-12)


def test_mcnemar_chi_square_worked_example():
    """Discordant pairs 10 (A only correct) and 30 (B only correct): n = 40 >= 25, so the
    continuity-corrected statistic (|10 - 30| - 1)^2 / 40 = 361/40 = 9.025 with 1 degree of
    freedom; for 1 df the chi-square tail is P(|N(0,1)| > sqrt(x)) = erfc(sqrt(x/2))."""
    ca = [True] * 10 + [False] * 30 + [True] * 5
    cb = [False] * 10 + [True] * 30 + [True] * 5
    t = mcnemar(ca, cb)
    assert t.statistic == pytest.approx(9.025)
    assert t.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)), rel=1e-9)
    assert t.method.startswith("chi-square")


def test_paired_comparison_worked_example():
    """WER_B - WER_A = (10 - 18)/80 = -0.1 exactly. The paired bootstrap draws the same utterances
    for both systems; it is checked against a plain loop over the same seeded draws (corpus ratio of
    summed counts per resample, then the 2.5 % and 97.5 % quantiles)."""
    c = compare_counts(REF, A, B, n_resamples=2000, seed=42)
    assert c.wer_a == pytest.approx(0.225) and c.wer_b == pytest.approx(0.125)
    assert c.difference.estimate == pytest.approx(-0.1)
    rng = np.random.default_rng(42)
    idx = rng.integers(0, 8, size=(2000, 8), dtype=np.int32)
    diffs, wins = [], 0
    for row in idx:
        n = sum(REF[i] for i in row)
        sa = sum(A[i] for i in row)
        sb = sum(B[i] for i in row)
        diffs.append((sb - sa) / n)
        wins += sb < sa
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert c.difference.low == pytest.approx(low) and c.difference.high == pytest.approx(high)
    assert c.prob_b_better == pytest.approx(wins / 2000)
    assert c.difference.high < 0 < c.prob_b_better
    assert [t.name for t in c.tests] == ["mapsswe", "sign", "wilcoxon", "mcnemar"]
    assert any("MAPSSWE" in w for w in c.warnings)  # 8 utterances is too few for the normal approximation
    d = c.to_dict()
    assert d["difference"]["method"] == "percentile" and d["difference"]["n_resamples"] == 2000


def test_paired_comparison_speaker_blocked_and_identical_systems():
    speakers = ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"]
    c = compare_counts(REF, A, B, groups=speakers, n_resamples=500, seed=0)
    assert c.difference.blocked_by == "speaker" and c.difference.n_units == 4
    same = compare_counts(REF, A, A, n_resamples=500, seed=0)
    assert same.difference.estimate == 0.0 and same.prob_b_better == 0.0
    assert same.test("sign").p_value == 1.0 and same.test("wilcoxon").p_value == 1.0
    assert same.test("mcnemar").p_value == 1.0 and same.test("mapsswe").p_value == 1.0


def test_tests_agree_with_scipy_on_random_data():
    """The tests are implemented from their definitions; scipy's implementations agree."""
    from scipy.stats import binomtest, wilcoxon

    from voxproof.metrics.paired import binomial_two_sided

    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 24, 25, 60, 400, 3000):
        for k in {0, n // 3, n // 2, n}:
            assert binomial_two_sided(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300)
    for size in (5, 12, 30, 50, 51, 300):
        a = rng.poisson(3, size)
        b = rng.poisson(2.5, size)
        ours = wilcoxon_test(a, b)
        d = (a - b)[(a - b) != 0]
        method = "exact" if ours.method == "exact" else "asymptotic"
        ref = wilcoxon(d, zero_method="wilcox", method=method)
        assert ours.statistic == pytest.approx(float(ref.statistic))
        assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)
        # distinct magnitudes: the exact path
        d2 = rng.permutation(np.arange(1, min(size, 50) + 1)) * rng.choice([-1, 1], min(size, 50))
        ours2 = wilcoxon_test(d2, np.zeros(len(d2)))
        ref2 = wilcoxon(d2, method="exact")
        assert ours2.method == "exact" and ours2.p_value == pytest.approx(float(ref2.pvalue), rel=1e-9)
