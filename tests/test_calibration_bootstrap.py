"""The vectorised calibration bootstrap draws the same resamples as the plain per-resample loop it
replaced and gives the same scores (up to floating-point summation order)."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.metrics.calibration import _bootstrap_draws, _bootstrap_draws_plain, score_confidences


def _data(case: str, rng: np.random.Generator):
    n = 600
    conf = rng.random(n).astype(np.float32).astype(float)
    if case == "ties":
        conf = np.round(conf, 1)
    if case == "edges":  # confidences on bin edges, 0 and 1
        conf = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0], n)
    if case == "rounding":  # different confidences whose 1 - c is equal: the plain form takes over
        conf[:50] = rng.random(50) * 1e-17
    corr = rng.random(n) < conf
    if case == "all_right":
        corr[:] = True
    groups = rng.integers(0, 60, n)
    return conf, corr, groups


@pytest.mark.parametrize("case", ["distinct", "ties", "edges", "all_right", "rounding"])
@pytest.mark.parametrize("grouped", [True, False])
def test_vectorised_draws_equal_the_plain_loop(case, grouped):
    conf, corr, groups = _data(case, np.random.default_rng(3))
    g = groups if grouped else np.arange(conf.size)
    fast = _bootstrap_draws(conf, corr, g, 10, 40, np.random.default_rng(7))
    plain = _bootstrap_draws_plain(conf, corr, g, 10, 40, np.random.default_rng(7))
    for key in plain:
        np.testing.assert_allclose(fast[key], plain[key], rtol=1e-12, atol=1e-15, equal_nan=True, err_msg=key)


def test_intervals_come_from_the_same_resamples_with_the_same_seed():
    conf, corr, groups = _data("distinct", np.random.default_rng(5))
    a = score_confidences(conf, corr, level="word", groups=groups, n_boot=50, seed=11)
    b = score_confidences(conf, corr, level="word", groups=groups, n_boot=50, seed=11)
    c = score_confidences(conf, corr, level="word", groups=groups, n_boot=50, seed=12)
    assert a.intervals == b.intervals and a.intervals != c.intervals
    assert set(a.intervals) == {"ece", "brier", "auroc_error", "auprc_error"}
