"""Bootstrap intervals: corpus ratio of resampled counts (not a mean of rates), seeded, blocked by
speaker, and coverage of a known truth by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.errors import UsageError
from voxproof.metrics.intervals import Interval, bootstrap_difference, bootstrap_rate


def test_resamples_corpus_counts_not_utterance_rates():
    """One 1-word utterance with 1 error (rate 1.0) and one 99-word utterance with none: the corpus
    WER is 1/100 (mean of utterance rates would be 0.5). Every resample is a corpus of two
    utterances, so its WER is one of 0 (twice the long one), 1/100 (one of each) or 1 (twice the
    short one): the interval lies on those values, never near 0.5 by averaging."""
    iv = bootstrap_rate([1, 0], [1, 99], n_resamples=4000, seed=1)
    assert iv.estimate == pytest.approx(0.01)
    assert iv.low == 0.0 and iv.high == 1.0
    # the middle of the resampled distribution is the corpus ratio
    mid = bootstrap_rate([1, 0], [1, 99], n_resamples=4000, seed=1, level=0.4)
    assert mid.low == pytest.approx(0.01) and mid.high == pytest.approx(0.01)


def test_against_a_plain_loop_with_the_same_draws():
    rng = np.random.default_rng(5)
    n = rng.integers(3, 30, size=200)
    e = rng.binomial(n, 0.15)
    iv = bootstrap_rate(e, n, n_resamples=300, seed=9)
    draws = np.random.default_rng(9).integers(0, 200, size=(300, 200), dtype=np.int32)
    rates = [e[row].sum() / n[row].sum() for row in draws]
    low, high = np.quantile(rates, [0.025, 0.975])
    assert (iv.low, iv.high) == pytest.approx((low, high))
    assert iv.to_dict() == {"estimate": pytest.approx(e.sum() / n.sum()), "low": pytest.approx(low),
                            "high": pytest.approx(high), "level": 0.95, "method": "percentile",
                            "n_resamples": 300, "seed": 9, "blocked_by": None, "n_units": 200}
    assert Interval.from_dict(iv.to_dict()) == iv


def test_seeded_and_blocked():
    rng = np.random.default_rng(0)
    n = rng.integers(5, 25, size=300)
    e = rng.binomial(n, 0.1)
    a = bootstrap_rate(e, n, seed=3)
    assert a == bootstrap_rate(e, n, seed=3)
    assert a != bootstrap_rate(e, n, seed=4)
    # speakers with very different error rates: the blocked interval is wider than the naive one
    speakers = np.repeat(np.arange(10), 30)
    e2 = rng.binomial(n, np.repeat(np.linspace(0.02, 0.4, 10), 30))
    naive = bootstrap_rate(e2, n, seed=1)
    blocked = bootstrap_rate(e2, n, groups=list(speakers), seed=1)
    assert blocked.blocked_by == "speaker" and blocked.n_units == 10
    assert blocked.estimate == naive.estimate
    assert blocked.width > 2 * naive.width


def test_difference_and_empty_and_bad_settings():
    d = bootstrap_difference(([30], [100], None), ([10], [100], None), n_resamples=200)
    assert d.estimate == pytest.approx(0.2) and d.low == pytest.approx(0.2) and d.high == pytest.approx(0.2)
    empty = bootstrap_rate([], [])
    assert np.isnan(empty.low) and empty.n_units == 0 and empty.to_dict()["low"] is None
    with pytest.raises(UsageError, match="n_resamples"):
        bootstrap_rate([1], [2], n_resamples=0)
    with pytest.raises(UsageError, match="level"):
        bootstrap_rate([1], [2], level=95)


def simulate_coverage(repetitions: int, n_utts: int, n_resamples: int, seed: int) -> tuple[float, float]:
    """Share of 95 % intervals covering the true corpus WER of a synthetic population.

    Population: utterance length ~ 5 + Poisson(15) words, each utterance with its own word error
    probability ~ Beta(1.5, 10) (mean 0.13, heterogeneous). The true corpus WER is
    E[len * p] / E[len] = E[p] = 1.5/11.5 since length and p are drawn independently."""
    rng = np.random.default_rng(seed)
    truth = 1.5 / 11.5
    covered = 0
    for rep in range(repetitions):
        n = 5 + rng.poisson(15, size=n_utts)
        p = rng.beta(1.5, 10, size=n_utts)
        e = rng.binomial(n, p)
        iv = bootstrap_rate(e, n, n_resamples=n_resamples, seed=rep)
        covered += iv.contains(truth)
    return covered / repetitions, truth


def test_coverage_quick():
    """A quick version of benchmarks/interval_coverage.py (200 repetitions): the band is wider
    because 200 repetitions alone scatter by about 1.5 points."""
    share, _ = simulate_coverage(200, 300, 400, seed=2)
    assert 0.89 <= share <= 0.99


@pytest.mark.slow
def test_coverage_1000_repetitions():
    """1,000 seeded repetitions, 1,000 resamples each: 95 % intervals cover the truth 93-97 % of the time."""
    share, _ = simulate_coverage(1000, 300, 1000, seed=1)
    assert 0.93 <= share <= 0.97


def test_bca_agrees_with_scipy_and_shifts_with_skew():
    """BCa from voxproof and from scipy.stats.bootstrap (its own resamples, so a tolerance) on a
    corpus ratio; on skewed per-utterance errors BCa moves the interval relative to the percentile one."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(4)
    n = rng.integers(3, 30, size=150)
    e = rng.binomial(n, rng.beta(0.5, 4, size=150))  # heavy right tail
    ours = bootstrap_rate(e, n, n_resamples=4000, seed=1, method="bca")
    ref = bootstrap((e, n), lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis), paired=True,
                    vectorized=True, n_resamples=4000, method="BCa", random_state=1).confidence_interval
    width = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.08 * width and abs(ours.high - ref.high) < 0.08 * width
    pct = bootstrap_rate(e, n, n_resamples=4000, seed=1)
    assert (ours.low, ours.high) != (pct.low, pct.high) and ours.method == "bca"
    with pytest.raises(UsageError, match="interval method"):
        bootstrap_rate(e, n, method="studentized")


def test_multinomial_path_matches_index_resampling():
    """20,000 utterances with few distinct (errors, ref_len) rows take the multinomial draw over
    distinct rows; its resampled rates have the same distribution as drawing utterance indices."""
    from voxproof.metrics.intervals import resample_sums

    rng = np.random.default_rng(8)
    n = rng.integers(5, 25, size=20000)
    e = rng.binomial(n, 0.12)
    ones = np.ones_like(n)
    cols = np.column_stack([e, n, ones]).astype(float)
    assert len(np.unique(cols, axis=0)) * 10 <= len(cols)  # the multinomial path applies
    fast = resample_sums(cols, 2000, np.random.default_rng(1))
    assert np.all(fast[:, 2] == 20000)  # every resample holds exactly n utterances
    idx = np.random.default_rng(2).integers(0, 20000, size=(2000, 20000))
    slow_rates = e[idx].sum(axis=1) / n[idx].sum(axis=1)
    fast_rates = fast[:, 0] / fast[:, 1]
    assert fast_rates.mean() == pytest.approx(slow_rates.mean(), rel=2e-3)
    assert fast_rates.std() == pytest.approx(slow_rates.std(), rel=0.1)
    iv = bootstrap_rate(e, n, n_resamples=2000, seed=1)
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(fast_rates, [0.025, 0.975])))
