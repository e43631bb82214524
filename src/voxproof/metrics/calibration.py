"""Confidence calibration: does a model's confidence say when to trust its words and utterances?

Stage: metrics. Reads stored run rows (``transcript.words[i].confidence``, ``transcript.confidence``),
marks each hypothesis word correct or wrong from the alignment against the reference, and hands on a
:class:`CalibrationReport` (ECE with its binning recorded, MCE, Brier score, AUROC and AUPRC for
detecting wrong words and wrong utterances, reliability-diagram bins, and the review-budget curve).

How raw words are mapped to aligned tokens (an approximation, stated in every report):
confidences belong to the model's raw words ("Hello,") while WER is computed on normalised tokens.
Each raw word is normalised on its own with the run's normaliser; the tokens it yields are concatenated
(each remembers its raw word) and aligned to the normalised reference. A raw word is *correct* when it
yields at least one token and every token it yields is a hit. Words that normalise to nothing (fillers,
lone punctuation) are left out and counted. Normalising word by word can differ from normalising the
whole text (numbers spanning words: "three thirty" -> "330"); the report counts the utterances where
the two token sequences differ so the size of the approximation is visible.

Utterance level: an utterance is *wrong* when its whole-text normalised alignment has any edit. Its
confidence is ``transcript.confidence`` (Whisper: exp of the mean token log-probability; PocketSphinx:
the hypothesis posterior) when the backend gives one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxproof.errors import UsageError

log = logging.getLogger("voxproof.metrics.calibration")

EQUAL_WIDTH = "equal_width"
EQUAL_MASS = "equal_mass"
BINNING_SCHEMES = (EQUAL_WIDTH, EQUAL_MASS)
DEFAULT_BINS = 10
DEFAULT_WER_TARGETS = (0.10, 0.05, 0.02, 0.0)

MAPPING_NOTE = (
    "confidences are on raw words; each raw word is normalised on its own and its tokens aligned to the "
    "normalised reference; a word is correct when all its tokens are hits; words that normalise to nothing "
    "are excluded"
)


# --------------------------------------------------------------------------------------------------
# Core scores on arrays (numpy only; checked against scikit-learn in the tests)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: confidences in [lower, upper) (the last bin closed)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float  # nan for an empty bin
    accuracy: float  # share of correct items; nan for an empty bin

    @property
    def gap(self) -> float:
        return abs(self.accuracy - self.mean_confidence) if self.count else float("nan")


@dataclass(frozen=True)
class Binned:
    """ECE and MCE under one binning, with the bins and their edges recorded."""

    scheme: str
    n_bins: int
    edges: tuple[float, ...]
    ece: float
    mce: float
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "n_bins": self.n_bins,
            "edges": list(self.edges),
            "ece": _num(self.ece),
            "mce": _num(self.mce),
            "bins": [{k: _num(v) for k, v in asdict(b).items()} for b in self.bins],
        }


def _as_arrays(confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray):
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.shape != corr.shape or conf.ndim != 1:
        raise UsageError(f"confidence and correctness must be 1-D of equal length, got {conf.shape} and {corr.shape}")
    if conf.size and (np.nanmin(conf) < 0 or np.nanmax(conf) > 1 or np.isnan(conf).any()):
        raise UsageError("confidences must be probabilities in [0, 1] without NaN")
    return conf, corr


def bin_edges(confidence: np.ndarray, n_bins: int = DEFAULT_BINS, scheme: str = EQUAL_WIDTH) -> np.ndarray:
    """Bin edges over [0, 1]: equal width, or equal mass (quantiles of the confidences, deduplicated)."""
    if n_bins < 1:
        raise UsageError(f"n_bins={n_bins} must be at least 1")
    if scheme == EQUAL_WIDTH:
        return np.linspace(0.0, 1.0, n_bins + 1)
    if scheme == EQUAL_MASS:
        if confidence.size == 0:
            return np.array([0.0, 1.0])
        inner = np.quantile(confidence, np.linspace(0, 1, n_bins + 1)[1:-1])
        return np.unique(np.concatenate([[0.0], inner, [1.0]]))
    raise UsageError(f"binning scheme {scheme!r} is not one of {', '.join(BINNING_SCHEMES)}")


def reliability(
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    n_bins: int = DEFAULT_BINS,
    scheme: str = EQUAL_WIDTH,
) -> Binned:
    """Reliability bins, expected calibration error (count-weighted mean |accuracy - confidence|) and
    maximum calibration error (largest gap over non-empty bins) under the given binning."""
    conf, corr = _as_arrays(confidence, correct)
    edges = bin_edges(conf, n_bins, scheme)
    # bin i holds edges[i] <= c < edges[i+1]; the last bin also holds c == 1
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, len(edges) - 2)
    bins = []
    ece = 0.0
    mce = 0.0
    for i in range(len(edges) - 1):
        mask = idx == i
        n = int(mask.sum())
        if n:
            mc, acc = float(conf[mask].mean()), float(corr[mask].mean())
            gap = abs(acc - mc)
            ece += gap * n / conf.size
            mce = max(mce, gap)
        else:
            mc = acc = float("nan")
        bins.append(ReliabilityBin(float(edges[i]), float(edges[i + 1]), n, mc, acc))
    if conf.size == 0:
        ece = mce = float("nan")
    return Binned(scheme, len(edges) - 1, tuple(float(e) for e in edges), ece, mce, tuple(bins))


def brier_score(confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray) -> float:
    """Mean squared difference between confidence and correctness (0 best, 1 worst)."""
    conf, corr = _as_arrays(confidence, correct)
    return float(np.mean((conf - corr) ** 2)) if conf.size else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=float)
    # ties share the mean of their 1-based ranks
    boundaries = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def spearman_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks); ``nan`` when either is constant."""
    rx, ry = _average_ranks(np.asarray(x, dtype=float)), _average_ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve for ``scores`` ranking ``positive`` items first (ties count half).
    ``nan`` when only one class is present."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: sum over distinct thresholds of
    (recall step) x precision, ties at one threshold taken together. ``nan`` without positives."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_threshold]
    predicted = last_of_threshold + 1
    precision = tp / predicted
    recall = tp / n_pos
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


@dataclass(frozen=True)
class CalibrationScores:
    """Calibration of one level (``word`` or ``utterance``): n items, their accuracy and mean confidence,
    ECE/MCE under equal-width and equal-mass binning, Brier score, and how well low confidence finds
    wrong items (AUROC, AUPRC with wrong = positive, score = 1 - confidence; AUPRC's chance level is
    the error rate). ``intervals`` holds percentile bootstrap intervals resampling utterances."""

    level: str
    n: int
    accuracy: float
    mean_confidence: float
    brier: float
    auroc_error: float
    auprc_error: float
    equal_width: Binned
    equal_mass: Binned
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    @property
    def ece(self) -> float:
        """ECE with equal-width bins (the headline figure; the binning is recorded beside it)."""
        return self.equal_width.ece

    @property
    def error_rate(self) -> float:
        return 1.0 - self.accuracy if self.n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "n": self.n,
            "accuracy": _num(self.accuracy),
            "error_rate": _num(self.error_rate),
            "mean_confidence": _num(self.mean_confidence),
            "ece": _num(self.ece),
            "ece_binning": f"{EQUAL_WIDTH}, {self.equal_width.n_bins} bins",
            "mce": _num(self.equal_width.mce),
            "ece_equal_mass": _num(self.equal_mass.ece),
            "brier": _num(self.brier),
            "auroc_error": _num(self.auroc_error),
            "auprc_error": _num(self.auprc_error),
            "auprc_chance": _num(self.error_rate),
            "equal_width": self.equal_width.to_dict(),
            "equal_mass": self.equal_mass.to_dict(),
            "intervals": {k: [_num(a), _num(b)] for k, (a, b) in self.intervals.items()},
            "bootstrap": dict(self.bootstrap),
        }


def score_confidences(
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    *,
    level: str,
    groups: Sequence[Any] | np.ndarray | None = None,
    n_bins: int = DEFAULT_BINS,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
) -> CalibrationScores:
    """Every calibration score of one level. ``groups`` (one utterance id per item) makes the bootstrap
    resample whole utterances, since words of one utterance are not independent; ``n_boot=0`` skips it."""
    conf, corr = _as_arrays(confidence, correct)
    scores = _point_scores(conf, corr, n_bins)
    intervals: dict[str, tuple[float, float]] = {}
    boot_info: dict[str, Any] = {}
    if n_boot and conf.size:
        g = np.arange(conf.size) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        draws = _bootstrap_draws(conf, corr, g.reshape(-1), n_bins, n_boot, np.random.default_rng(seed))
        alpha = (1 - confidence_level) / 2
        for key, arr in draws.items():
            arr = arr[~np.isnan(arr)]
            if arr.size:
                intervals[key] = (float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha)))
        boot_info = {
            "method": "percentile bootstrap",
            "resampled_unit": "utterance" if groups is not None else "item",
            "replicates": n_boot,
            "seed": seed,
            "confidence_level": confidence_level,
        }
    return CalibrationScores(
        level=level,
        n=int(conf.size),
        accuracy=float(corr.mean()) if conf.size else float("nan"),
        mean_confidence=float(conf.mean()) if conf.size else float("nan"),
        brier=scores["brier"],
        auroc_error=scores["auroc_error"],
        auprc_error=scores["auprc_error"],
        equal_width=scores["equal_width"],
        equal_mass=scores["equal_mass"],
        intervals=intervals,
        bootstrap=boot_info,
    )


def _bootstrap_draws(conf: np.ndarray, corr: np.ndarray, group: np.ndarray, n_bins: int, n_boot: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ECE (equal width), Brier, AUROC and AUPRC of ``n_boot`` resamples of whole groups, vectorised.

    The resamples are the ones the plain loop draws (``rng.integers(0, G, G)`` per resample, in order),
    held as multiplicities per group instead of concatenated copies: items are ranked once (by ``1 -
    confidence``, ties in blocks), and each resample only re-weights the blocks. The scores equal those
    of :func:`_point_scores` on the concatenated resample up to floating-point summation order."""
    n_groups = int(group.max()) + 1
    score = 1.0 - conf
    order = np.argsort(score, kind="mergesort")  # ascending score = descending confidence
    s_sorted = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s_sorted)) + 1]
    tied = len(starts) < len(order)
    c_sorted = conf[order]
    block_conf = c_sorted[starts]
    if tied and np.any(c_sorted != np.repeat(block_conf, np.diff(np.r_[starts, len(order)]))):
        # 1 - c equal for different c (rounding): fall back to the plain per-resample computation
        return _bootstrap_draws_plain(conf, corr, group, n_bins, n_boot, rng)
    wrong_sorted = (corr[order] < 0.5).astype(float)
    g_sorted = group[order]
    edges = bin_edges(conf, n_bins, EQUAL_WIDTH)
    block_bin = np.clip(np.searchsorted(edges, block_conf, side="right") - 1, 0, len(edges) - 2)
    # blocks run from high confidence to low, so each bin is a contiguous run of blocks: its last block
    bin_last = np.flatnonzero(np.r_[block_bin[1:] != block_bin[:-1], True])
    sq_wrong, sq_right = block_conf**2, (block_conf - 1.0) ** 2
    out = {key: np.empty(n_boot) for key in ("ece", "brier", "auroc_error", "auprc_error")}
    chunk = max(1, min(n_boot, _CHUNK_ITEMS // max(len(order), 1)))  # resamples handled as one 2-D block
    for first in range(0, n_boot, chunk):
        rows = range(first, min(first + chunk, n_boot))
        w = np.empty((len(rows), n_groups))
        for k in range(len(rows)):  # the resamples of the plain loop, drawn in its order
            w[k] = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        wi = w[:, g_sorted]
        pos = wi * wrong_sorted
        if tied:
            tot_b, pos_b = np.add.reduceat(wi, starts, axis=1), np.add.reduceat(pos, starts, axis=1)
        else:
            tot_b, pos_b = wi, pos
        neg_b = tot_b - pos_b
        cum_tot, cum_neg = np.cumsum(tot_b, axis=1), np.cumsum(neg_b, axis=1)
        total, w_neg = cum_tot[:, -1], cum_neg[:, -1]
        w_pos = total - w_neg
        sl = slice(rows.start, rows.stop)
        out["brier"][sl] = (_rowdot(pos_b, sq_wrong) + _rowdot(neg_b, sq_right)) / total
        # per bin: right answers minus summed confidence (0 for an empty bin, which the ECE skips)
        right_sum = _steps(cum_neg[:, bin_last])
        conf_sum = _steps(np.cumsum(tot_b * block_conf, axis=1)[:, bin_last])
        out["ece"][sl] = np.add.reduce(np.abs(right_sum - conf_sum), axis=1) / total
        with np.errstate(divide="ignore", invalid="ignore"):
            # P(score of a wrong item > score of a right one) + half the ties
            auroc = (_rowdot(pos_b, cum_neg) - 0.5 * _rowdot(pos_b, neg_b)) / (w_pos * w_neg)
            out["auroc_error"][sl] = np.where((w_pos == 0) | (w_neg == 0), np.nan, auroc)
            # average precision, thresholds from the highest score down: counts at or above each block
            tp = w_pos[:, None] - (cum_tot - cum_neg) + pos_b
            predicted = total[:, None] - cum_tot + tot_b
            predicted[predicted == 0] = 1.0  # only where pos_b is 0 too
            out["auprc_error"][sl] = np.where(w_pos == 0, np.nan, _rowdot(pos_b, tp / predicted) / w_pos)
    return out


_CHUNK_ITEMS = 1 << 19  # items x resamples per 2-D block (a few MB per array)


def _steps(cum: np.ndarray) -> np.ndarray:
    """Per-bin sums from cumulative sums at each bin's last block (rows: resamples)."""
    out = cum.copy()
    out[:, 1:] -= cum[:, :-1]
    return out


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise inner products without BLAS (whose thread pool costs more than the product here)."""
    return np.add.reduce(a * b, axis=1)


def _bootstrap_draws_plain(conf: np.ndarray, corr: np.ndarray, group: np.ndarray, n_bins: int, n_boot: int,
                           rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The same resamples as :func:`_bootstrap_draws`, each concatenated and scored in full."""
    n_groups = int(group.max()) + 1
    members = np.split(np.argsort(group, kind="mergesort"), np.cumsum(np.bincount(group, minlength=n_groups))[:-1])
    draws: dict[str, list[float]] = {"ece": [], "brier": [], "auroc_error": [], "auprc_error": []}
    for _ in range(n_boot):
        pick = rng.integers(0, n_groups, n_groups)
        idx = np.concatenate([members[k] for k in pick])
        scores = _point_scores(conf[idx], corr[idx], n_bins, light=True)
        for key, values in draws.items():
            values.append(scores[key])
    return {key: np.asarray(values, dtype=float) for key, values in draws.items()}


def _point_scores(conf: np.ndarray, corr: np.ndarray, n_bins: int, light: bool = False) -> dict[str, Any]:
    wrong = corr < 0.5
    out: dict[str, Any] = {
        "brier": float(np.mean((conf - corr) ** 2)) if conf.size else float("nan"),
        "auroc_error": roc_auc(1.0 - conf, wrong),
        "auprc_error": average_precision(1.0 - conf, wrong),
    }
    ew = reliability(conf, corr, n_bins, EQUAL_WIDTH)
    if light:
        out["ece"] = ew.ece
        return out
    out["equal_width"] = ew
    out["equal_mass"] = reliability(conf, corr, n_bins, EQUAL_MASS)
    return out


# --------------------------------------------------------------------------------------------------
# Review budget: how many utterances must a human check, lowest confidence first?
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewBudget:
    """Remaining corpus WER after a human corrects the k lowest-confidence utterances, k = 0..n.

    ``share_reviewed[k] = k / n``; ``remaining_wer[k]`` = errors left in unreviewed utterances /
    all reference words. ``oracle_wer`` reviews the utterances with most errors first (the best any
    ranking can do); random review lowers WER linearly on average. ``needed`` maps each target WER to
    the smallest share of utterances to review (``None`` if unreachable, which cannot happen for
    targets >= 0 since reviewing all leaves 0)."""

    share_reviewed: tuple[float, ...]
    remaining_wer: tuple[float, ...]
    oracle_wer: tuple[float, ...]
    needed: dict[float, float | None]
    needed_oracle: dict[float, float | None]
    n_utterances: int
    ref_words: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_utterances": self.n_utterances,
            "ref_words": self.ref_words,
            "order": "lowest utterance confidence first",
            "share_reviewed": list(self.share_reviewed),
            "remaining_wer": list(self.remaining_wer),
            "oracle_wer": list(self.oracle_wer),
            "needed": {f"{t:g}": v for t, v in self.needed.items()},
            "needed_oracle": {f"{t:g}": v for t, v in self.needed_oracle.items()},
        }


def review_budget(
    confidence: Sequence[float] | np.ndarray,
    errors: Sequence[int] | np.ndarray,
    ref_words: Sequence[int] | np.ndarray,
    targets: Iterable[float] = DEFAULT_WER_TARGETS,
) -> ReviewBudget:
    """The review-budget curve for utterances with ``confidence``, edit ``errors`` and reference length."""
    conf = np.asarray(confidence, dtype=float)
    err = np.asarray(errors, dtype=float)
    ref = np.asarray(ref_words, dtype=float)
    if not (conf.shape == err.shape == ref.shape):
        raise UsageError("confidence, errors and ref_words need one value per utterance")
    n = conf.size
    total_ref = float(ref.sum())
    if n == 0 or total_ref <= 0:
        raise UsageError("a review budget needs utterances with reference words")

    def curve(order: np.ndarray) -> np.ndarray:
        removed = np.r_[0.0, np.cumsum(err[order])]
        return (err.sum() - removed) / total_ref

    by_conf = np.argsort(conf, kind="mergesort")
    by_err = np.argsort(-err, kind="mergesort")
    wer, oracle = curve(by_conf), curve(by_err)
    share = np.arange(n + 1) / n

    def needed(c: np.ndarray) -> dict[float, float | None]:
        out: dict[float, float | None] = {}
        for t in targets:
            hit = np.flatnonzero(c <= t + 1e-12)
            out[float(t)] = float(share[hit[0]]) if hit.size else None
        return out

    return ReviewBudget(
        tuple(float(s) for s in share), tuple(float(w) for w in wer), tuple(float(w) for w in oracle),
        needed(wer), needed(oracle), n, int(total_ref),
    )


# --------------------------------------------------------------------------------------------------
# From run rows: word correctness, utterance correctness, the full report
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WordJudgement:
    """One raw hypothesis word: its confidence, the normalised tokens it yields, and whether all are hits."""

    text: str
    confidence: float | None
    tokens: tuple[str, ...]
    correct: bool | None  # None when the word normalises to nothing


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration of one run (one condition). ``available`` is False with a ``reason`` when the backend
    gives no confidences; the mapping counters show how approximate the word-level correctness is."""

    condition: str
    available: bool
    reason: str | None
    normalizer: dict[str, Any]
    word: CalibrationScores | None
    utterance: CalibrationScores | None
    review: ReviewBudget | None
    counters: dict[str, int]
    mapping: str = MAPPING_NOTE
    review_min_word: ReviewBudget | None = None
    utterance_spearman: float | None = None  # rank correlation of utterance confidence with 1 - utterance WER

    def to_dict(self) -> dict[str, Any]:
        return calibration_to_dict(self)


def calibration_to_dict(report: CalibrationReport) -> dict[str, Any]:
    """JSON-ready dict of a :class:`CalibrationReport` (for summary.json)."""
    return {
        "condition": report.condition,
        "available": report.available,
        "reason": report.reason,
        "normalizer": dict(report.normalizer),
        "mapping": report.mapping,
        "counters": dict(report.counters),
        "word": None if report.word is None else report.word.to_dict(),
        "utterance": None if report.utterance is None else report.utterance.to_dict(),
        "review_budget": None if report.review is None else report.review.to_dict(),
        "utterance_spearman": _num(report.utterance_spearman),
        "utterance_spearman_meaning": "Spearman rank correlation between utterance confidence and the "
        "utterance's word accuracy (1 - its WER); an utterance confidence is a mean token probability, "
        "not the probability that the whole utterance is right",
        "review_budget_min_word": None if report.review_min_word is None else report.review_min_word.to_dict(),
        "review_budget_min_word_order": "lowest word confidence in the utterance first; utterances with no "
        "scored word first of all",
    }


def judge_words(
    reference: str,
    words: Sequence[Any],
    normalizer: Callable[[str], str],
    aligner: Callable[[Sequence[str], Sequence[str]], list[tuple[str, int | None, int | None]]] | None = None,
) -> list[WordJudgement]:
    """Correctness of each raw word (objects with ``.text`` and ``.confidence``) against ``reference``.

    ``aligner(ref, hyp)`` returns edit operations ``(op, ref_index, hyp_index)`` with op in
    ``equal``/``substitute``/``delete``/``insert`` (default: the project's alignment).
    """
    aligner = aligner or align_ops
    ref_tokens = normalizer(reference).split()
    hyp_tokens: list[str] = []
    owner: list[int] = []
    per_word: list[tuple[str, ...]] = []
    for i, w in enumerate(words):
        toks = tuple(normalizer(w.text).split())
        per_word.append(toks)
        hyp_tokens.extend(toks)
        owner.extend([i] * len(toks))
    hit = [False] * len(hyp_tokens)
    for op, _r, h in aligner(ref_tokens, hyp_tokens):
        if op == "equal" and h is not None:
            hit[h] = True
    all_hit = [True] * len(words)
    for token_index, word_index in enumerate(owner):
        if not hit[token_index]:
            all_hit[word_index] = False
    return [
        WordJudgement(w.text, w.confidence, per_word[i], all_hit[i] if per_word[i] else None)
        for i, w in enumerate(words)
    ]


def calibrate_rows(
    rows: Iterable[Any],
    normalizer: Any,
    *,
    condition: str = "clean",
    n_bins: int = DEFAULT_BINS,
    n_boot: int = 1000,
    seed: int = 0,
    targets: Iterable[float] = DEFAULT_WER_TARGETS,
) -> CalibrationReport:
    """Calibration report for the ok rows of ``condition``. ``normalizer`` is a callable text -> text
    (a voxproof normaliser with ``.name``/``.version``). Error rows and rows without a reference are
    counted, not scored."""
    counters = {
        "rows": 0, "rows_scored": 0, "rows_error": 0, "words": 0, "words_with_confidence": 0,
        "words_normalised_away": 0, "utterances_with_confidence": 0, "utterances_tokenisation_differs": 0,
    }
    word_conf: list[float] = []
    word_ok: list[bool] = []
    word_group: list[str] = []
    utt_conf: list[float | None] = []
    utt_min_word: list[float] = []
    utt_err: list[int] = []
    utt_ref: list[int] = []
    memo: dict[str, str] = {}

    def word_norm(text: str) -> str:  # the same words recur: normalise each distinct text once
        out = memo.get(text)
        if out is None:
            out = memo[text] = normalizer(text)
        return out

    for row in rows:
        if row.condition != condition:
            continue
        counters["rows"] += 1
        if not row.ok or row.reference is None:
            counters["rows_error"] += 1
            continue
        counters["rows_scored"] += 1
        transcript = row.transcript
        hyp_text = row.hypothesis or ""
        ref_tokens = normalizer(row.reference).split()
        hyp_tokens = normalizer(hyp_text).split()
        ops = align_ops(ref_tokens, hyp_tokens)
        errors = sum(1 for op, _r, _h in ops if op != "equal")
        utt_err.append(errors)
        utt_ref.append(len(ref_tokens))
        utt_conf.append(None if transcript is None else transcript.confidence)
        word_confs = [w.confidence for w in (transcript.words if transcript else ()) if w.confidence is not None]
        utt_min_word.append(float(min(word_confs)) if word_confs else 0.0)
        if transcript is None:
            continue
        judged = judge_words(row.reference, transcript.words, word_norm)
        counters["words"] += len(judged)
        per_word_tokens = [t for j in judged for t in j.tokens]
        if per_word_tokens != hyp_tokens:
            counters["utterances_tokenisation_differs"] += 1
        for j in judged:
            if j.correct is None:
                counters["words_normalised_away"] += 1
                continue
            if j.confidence is None:
                continue
            counters["words_with_confidence"] += 1
            word_conf.append(float(min(1.0, max(0.0, j.confidence))))
            word_ok.append(bool(j.correct))
            word_group.append(row.utt_id)
    norm_info = {
        "name": getattr(normalizer, "name", str(normalizer)),
        "version": getattr(normalizer, "version", None),
    }

    word_scores = None
    if word_conf:
        word_scores = score_confidences(
            word_conf, word_ok, level="word", groups=word_group, n_bins=n_bins, n_boot=n_boot, seed=seed
        )
    have = [i for i, c in enumerate(utt_conf) if c is not None]
    counters["utterances_with_confidence"] = len(have)
    utt_scores = review = spearman = None
    if have:
        conf = np.clip(np.array([utt_conf[i] for i in have], dtype=float), 0.0, 1.0)
        err = np.array([utt_err[i] for i in have])
        ref = np.array([utt_ref[i] for i in have])
        utt_scores = score_confidences(conf, err == 0, level="utterance", n_bins=n_bins, n_boot=n_boot, seed=seed)
        if ref.sum() > 0:
            review = review_budget(conf, err, ref, targets)
        keep = ref > 0
        if keep.sum() >= 3:
            spearman = spearman_correlation(conf[keep], 1.0 - err[keep] / ref[keep])
    review_min_word = None
    if word_scores is not None and sum(utt_ref) > 0:
        review_min_word = review_budget(np.clip(utt_min_word, 0.0, 1.0), utt_err, utt_ref, targets)
    available = word_scores is not None or utt_scores is not None
    reason = None
    if not available:
        reason = (
            "not available: the backend reports no word or utterance confidences"
            if counters["rows_scored"]
            else "not available: no successfully decoded rows with a reference in this condition"
        )
    return CalibrationReport(
        condition, available, reason, norm_info, word_scores, utt_scores, review, counters,
        review_min_word=review_min_word, utterance_spearman=spearman,
    )


def calibrate_store(store: Any, normalizer: Any = None, *, condition: str = "clean", **kwargs: Any) -> CalibrationReport:
    """Calibration report of a :class:`~voxproof.run.store.RunStore`; the normaliser defaults to the
    one recorded in the run's provenance."""
    if normalizer is None or isinstance(normalizer, str):
        from voxproof.metrics.normalize import get_normalizer

        name = normalizer or (store.provenance.get("normalizer") or {}).get("name")
        if not name:
            raise UsageError("the run records no normaliser; pass one (for example 'whisper')")
        normalizer = get_normalizer(name)
    return calibrate_rows(store.rows(condition=condition), normalizer, condition=condition, **kwargs)


def align_ops(ref_tokens: Sequence[str], hyp_tokens: Sequence[str]) -> list[tuple[str, int | None, int | None]]:
    """Edit operations of the project's one alignment (:func:`voxproof.metrics.align.align`)."""
    from voxproof.metrics.align import align

    return list(align(list(ref_tokens), list(hyp_tokens)).ops)


def _num(x: Any) -> Any:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x
