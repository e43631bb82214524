"""Predictor calibration against listeners, on a design of 3 systems x 15 clips answered by SIMULATED
listeners (voxproof.listen.simulate): a predictor that follows the true qualities is trusted, one
that reverses two systems or is random is not."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.listen.answers import AnswersRead, parse_answers
from voxproof.listen.calibration import calibrate, correlations
from voxproof.listen.design import Clip, Design, Item, ListenOptions
from voxproof.listen.score import score_listening
from voxproof.listen.simulate import simulate_listeners

QUALITY = {"good": 4.2, "mid": 3.2, "poor": 1.8}


def _design(predictor) -> Design:
    rng = np.random.default_rng(7)
    clips, items = [], []
    for s in sorted(QUALITY):
        for k in range(15):
            clips.append(Clip(s, f"p{k:02d}", f"/nonexistent/{s}/{k}.wav", "", {"mos_ovrl": predictor(s, rng)}))
            items.append(Item(f"q{len(items) + 1:03d}", "acr", (len(clips) - 1,)))
    items.append(Item("q999", "acr-check", (0,), 1, (True,)))
    return Design("t" * 64, tuple(sorted(QUALITY)), tuple(clips), tuple(items), ListenOptions(modes=("acr",)), ())


def _score(design):
    files = simulate_listeners(design, QUALITY, 6, seed=1)
    read = AnswersRead(tuple(parse_answers(f, design, f"sim{k}") for k, f in enumerate(files)))
    result = score_listening(design, read, n_resamples=300, seed=0)
    return calibrate(design, result, n_resamples=300, seed=0).predictors[0]


def test_predictor_following_the_listeners_is_trusted():
    cal = _score(_design(lambda s, rng: QUALITY[s] * 0.5 + 1.2 + rng.normal(0, 0.1)))
    assert cal.verdict == "trusted", cal.why
    assert cal.spearman.low > 0.5 and cal.kendall_tau_systems == pytest.approx(1.0)
    assert all(p["same_order"] for p in cal.pairs)


def test_predictor_reversing_two_systems_is_not_trusted():
    swapped = {"good": 3.0, "mid": 3.5, "poor": 1.5}
    cal = _score(_design(lambda s, rng: swapped[s] + rng.normal(0, 0.1)))
    assert cal.verdict == "untrusted" and "against the listeners" in cal.why
    assert [p["same_order"] for p in cal.pairs].count(False) == 1


def test_random_predictor_is_not_trusted():
    cal = _score(_design(lambda s, rng: rng.uniform(1, 5)))
    assert cal.verdict == "untrusted"


def test_correlations_degenerate_inputs():
    sp, _pe = correlations(np.array([1.0, 2.0]), np.array([2.0, 1.0]), n_resamples=50, seed=0, level=0.95)
    assert sp.estimate is None and "only 2" in sp.why
    sp, _ = correlations(np.ones(5), np.arange(5.0), n_resamples=50, seed=0, level=0.95)
    assert sp.estimate is None and "constant" in sp.why
