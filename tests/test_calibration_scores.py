"""Calibration scores: numpy implementations checked against scikit-learn and by hand; the review
budget curve; word correctness mapping with the project's normaliser and alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from voxproof.backends.base import Transcript, Word
from voxproof.errors import UsageError
from voxproof.metrics.calibration import (
    EQUAL_MASS,
    average_precision,
    brier_score,
    calibrate_rows,
    calibration_to_dict,
    judge_words,
    reliability,
    review_budget,
    roc_auc,
    score_confidences,
    spearman_correlation,
)
from voxproof.metrics.normalize import get_normalizer
from voxproof.run.records import ResultRow


def _random_case(seed: int, n: int = 400, ties: bool = False):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    if ties:
        conf = np.round(conf, 1)  # many tied scores
    correct = rng.uniform(0, 1, n) < conf**0.7  # roughly, but not perfectly, calibrated
    return conf, correct


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_auroc_auprc_brier_match_sklearn(seed, ties):
    conf, correct = _random_case(seed, ties=ties)
    wrong = ~correct
    assert roc_auc(1 - conf, wrong) == pytest.approx(roc_auc_score(wrong, 1 - conf), abs=1e-12)
    assert average_precision(1 - conf, wrong) == pytest.approx(average_precision_score(wrong, 1 - conf), abs=1e-12)
    assert brier_score(conf, correct) == pytest.approx(brier_score_loss(correct, conf), abs=1e-12)


def test_reliability_bins_match_sklearn_calibration_curve():
    conf, correct = _random_case(3, n=1000)
    binned = reliability(conf, correct, n_bins=10)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    ours = [(b.accuracy, b.mean_confidence) for b in binned.bins if b.count]
    assert np.allclose([o[0] for o in ours], prob_true)
    assert np.allclose([o[1] for o in ours], prob_pred)
    # ECE by its definition, by hand
    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, 9)
    ece = sum(abs(correct[idx == i].mean() - conf[idx == i].mean()) * (idx == i).mean() for i in range(10) if (idx == i).any())
    assert binned.ece == pytest.approx(ece)
    assert binned.mce == pytest.approx(max(b.gap for b in binned.bins if b.count))
    assert sum(b.count for b in binned.bins) == 1000


def test_equal_mass_bins_hold_similar_counts_and_record_edges():
    conf, correct = _random_case(4, n=1000)
    binned = reliability(conf, correct, n_bins=10, scheme=EQUAL_MASS)
    counts = [b.count for b in binned.bins]
    assert max(counts) - min(counts) <= 2
    assert binned.edges[0] == 0.0 and binned.edges[-1] == 1.0 and len(binned.edges) == 11
    assert binned.to_dict()["scheme"] == "equal_mass"


def test_perfect_and_worst_cases():
    conf = np.array([1.0, 1.0, 0.0, 0.0])
    correct = np.array([True, True, False, False])
    assert reliability(conf, correct).ece == 0.0
    assert brier_score(conf, correct) == 0.0
    assert roc_auc(1 - conf, ~correct) == 1.0
    assert average_precision(1 - conf, ~correct) == 1.0
    assert brier_score(conf, ~correct) == 1.0
    assert np.isnan(roc_auc([0.1, 0.2], [True, True]))  # one class only


def test_bad_confidences_are_refused():
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        reliability([0.5, 1.5], [True, False])
    with pytest.raises(UsageError, match="equal length"):
        brier_score([0.5], [True, False])
    with pytest.raises(UsageError, match="scheme"):
        reliability([0.5], [True], scheme="log")


def test_bootstrap_interval_contains_point_and_resamples_utterances():
    conf, correct = _random_case(5, n=300)
    groups = np.repeat(np.arange(30), 10)
    s = score_confidences(conf, correct, level="word", groups=groups, n_boot=300, seed=1)
    lo, hi = s.intervals["ece"]
    assert lo <= s.ece <= hi or abs(s.ece - lo) < 0.02  # ECE is biased upward under resampling
    lo, hi = s.intervals["auroc_error"]
    assert lo < s.auroc_error < hi
    assert s.bootstrap["resampled_unit"] == "utterance"
    again = score_confidences(conf, correct, level="word", groups=groups, n_boot=300, seed=1)
    assert again.intervals == s.intervals  # seeded


def test_review_budget_curve():
    # three utterances of 10 reference words; the least confident has the most errors
    conf = [0.9, 0.2, 0.6]
    errors = [0, 4, 2]
    ref = [10, 10, 10]
    rb = review_budget(conf, errors, ref, targets=(0.1, 0.05, 0.0))
    assert rb.remaining_wer[0] == pytest.approx(6 / 30)
    assert rb.remaining_wer[1] == pytest.approx(2 / 30)  # reviewed the 0.2 one first
    assert rb.remaining_wer[2] == 0.0
    assert rb.needed[0.1] == pytest.approx(1 / 3)
    assert rb.needed[0.0] == pytest.approx(2 / 3)
    assert rb.oracle_wer == rb.remaining_wer  # confidence ranks as well as the oracle here
    # a misleading confidence needs more review than the oracle
    bad = review_budget([0.1, 0.9, 0.5], errors, ref, targets=(0.0,))
    assert bad.needed[0.0] == 1.0 and bad.needed_oracle[0.0] == pytest.approx(2 / 3)


def test_judge_words_maps_raw_words_to_normalised_tokens():
    norm = get_normalizer("whisper-en")
    words = [Word("Hello,", confidence=0.9), Word("Mr.", confidence=0.8), Word("Smith's", confidence=0.4),
             Word("uh", confidence=0.3), Word("colour", confidence=0.7)]
    judged = judge_words("hello mister smiths color", words, norm)
    by = {j.text: j for j in judged}
    assert by["Hello,"].correct is True and by["Hello,"].tokens == ("hello",)
    assert by["Mr."].tokens == ("mister",) and by["Mr."].correct is True
    assert by["uh"].correct is None  # normalised away (filler), excluded
    assert by["colour"].correct is True  # British spelling mapped by the normaliser
    assert by["Smith's"].correct is (by["Smith's"].tokens == ("smiths",))


def _row(utt, ref, words, conf, ok=True):
    hyp = " ".join(w.text for w in words)
    return ResultRow(utt, "clean", "ok" if ok else "error", reference=ref, hypothesis=hyp,
                     transcript=Transcript(hyp, tuple(words), conf), audio_duration=1.0, processing_time=0.1)


def test_calibrate_rows_end_to_end_and_dict():
    rows = [
        _row("a", "the cat sat", [Word("The", confidence=0.95), Word("cat", confidence=0.9), Word("sat.", confidence=0.9)], 0.9),
        _row("b", "a dog ran", [Word("A", confidence=0.9), Word("frog", confidence=0.3), Word("ran", confidence=0.8)], 0.5),
        _row("c", "no words", [], None),
        ResultRow("d", "clean", "error", reference="x", error_type="CorruptAudio"),
    ]
    rep = calibrate_rows(rows, get_normalizer("whisper-en"), n_boot=50)
    assert rep.available
    assert rep.counters["rows"] == 4 and rep.counters["rows_error"] == 1 and rep.counters["words_with_confidence"] == 6
    assert rep.word.n == 6 and rep.word.accuracy == pytest.approx(5 / 6)
    assert rep.word.auroc_error == 1.0  # the only wrong word has the lowest confidence
    assert rep.utterance.n == 2 and rep.utterance.accuracy == 0.5
    d = calibration_to_dict(rep)
    assert d["word"]["ece_binning"].startswith("equal_width") and d["mapping"]
    assert d["review_budget"]["needed"]["0"] == 0.5


def test_calibration_not_available_without_confidences():
    rows = [_row("a", "the cat", [Word("the"), Word("cat")], None)]
    rep = calibrate_rows(rows, get_normalizer("whisper-en"), n_boot=0)
    assert not rep.available and "not available" in rep.reason
    assert calibration_to_dict(rep)["word"] is None


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_matches_scipy(ties):
    conf, _correct = _random_case(7, n=200, ties=ties)
    other = conf + np.random.default_rng(1).normal(0, 0.3, conf.size)
    assert spearman_correlation(conf, other) == pytest.approx(spearmanr(conf, other).statistic, abs=1e-12)
    assert np.isnan(spearman_correlation([1, 1, 1], [1, 2, 3]))
