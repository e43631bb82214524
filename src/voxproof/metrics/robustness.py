"""Metrics stage, robustness and out-of-distribution view: how WER moves under the run's perturbation
conditions, and where in signal-feature space the errors are. Hands a :class:`RobustnessReport`
(``robustness_to_dict`` for ``summary.json``, ``plot_robustness`` PNG bytes for the HTML report).

Definitions (all WERs are corpus WERs: summed edits / summed reference words):

- Per condition: WER with a percentile-bootstrap interval; degradation against clean on the *paired*
  utterances (scorable in both): ``delta = WER_cond - WER_clean`` and ``relative = delta / WER_clean``,
  each with a paired bootstrap interval (one draw of utterances, or of speakers when every row has one,
  shared by the clean and the perturbed columns).
- Robustness score of a suite (``retained accuracy``): the mean over the suite's conditions of
  ``clip((1 - WER_cond) / (1 - WER_clean), 0, 1)``, the share of the clean word accuracy kept, computed
  on the utterances scorable in clean and in every condition of the suite, with a paired bootstrap
  interval. 1.0 means no loss under any condition, 0.0 means nothing recognised. Because the suites'
  rungs are spread over their severity range, it approximates the normalised area under the
  accuracy-vs-severity curve with equal weight per rung. Mean absolute and relative degradation are
  given beside it.
- Threshold crossing: per family (one curve: the conditions of a suite sharing a family, ordered from
  mildest to harshest), the severity at which WER first reaches ``threshold``, linearly interpolated
  between the last rung below and the first rung at or above it. ``status`` says when the curve starts
  above the threshold (``above-at-mildest``: the crossing is milder than every tested rung) or never
  reaches it (``not-reached``).
- WER by feature bin: every scorable row (all conditions pooled) binned by the signal features stored
  on it (fixed edges per feature, :data:`FEATURE_BINS`), with a bootstrap interval per bin (rows
  resampled as units; rows of one utterance under several conditions are not independent, so these
  intervals are optimistic).
- OOD flag: the evaluated rows fill a region (a feature bin) that the reference rows lack: at least
  ``min_share`` (5 %) of evaluated rows fall in a bin holding under 1 % of reference rows. The default
  reference is the run's clean rows.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.intervals import (
    METHOD,
    Interval,
    _num,
    check_settings,
    percentile_interval,
    resample_sums,
)
from voxproof.run.records import CLEAN, ResultRow

SCHEMA_VERSION = 1
INF = math.inf
#: fixed bin edges per feature for the OOD view (left-closed bins)
FEATURE_BINS: dict[str, tuple[float, ...]] = {
    "snr_db": (-INF, 0.0, 5.0, 10.0, 20.0, 30.0, INF),
    "duration_s": (0.0, 2.0, 5.0, 10.0, 20.0, INF),
    "loudness_db": (-INF, -50.0, -40.0, -30.0, -20.0, -10.0, INF),
    "speech_ratio": (0.0, 0.25, 0.5, 0.75, INF),
    "clipping_ratio": (0.0, 1e-4, 1e-3, 1e-2, INF),
    "bandwidth_hz": (0.0, 3000.0, 4500.0, 6000.0, 7500.0, INF),
}
OOD_MIN_SHARE = 0.05
OOD_REFERENCE_MAX_SHARE = 0.01


# -- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionRobustness:
    """One condition: its WER, and its degradation against clean on paired utterances."""

    condition: str
    suite: str | None
    family: str | None
    severity: float | None
    axis: str | None
    worse: str
    rows: int
    scored: int
    paired: int
    wer: Interval
    clean_wer_paired: float
    delta: Interval
    relative: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition, "suite": self.suite, "family": self.family,
            "severity": _num(self.severity) if self.severity is not None else None, "axis": self.axis,
            "worse": self.worse, "rows": self.rows, "scored": self.scored, "paired": self.paired,
            "wer": self.wer.to_dict(), "clean_wer_paired": _num(self.clean_wer_paired),
            "delta": self.delta.to_dict(), "relative": self.relative.to_dict(),
        }


@dataclass(frozen=True)
class Crossing:
    """Where one family's WER curve reaches the threshold."""

    threshold: float
    severity: float | None
    status: str  # crossed | above-at-mildest | not-reached | no-data

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "severity": _num(self.severity) if self.severity is not None
                else None, "status": self.status}


@dataclass(frozen=True)
class FamilyCurve:
    """One curve: conditions of a suite sharing a family, mildest first."""

    suite: str | None
    family: str
    axis: str | None
    worse: str
    conditions: tuple[str, ...]
    severities: tuple[float | None, ...]
    wers: tuple[float, ...]
    crossing: Crossing | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "family": self.family, "axis": self.axis, "worse": self.worse,
            "conditions": list(self.conditions),
            "severities": [None if s is None else _num(s) for s in self.severities],
            "wers": [_num(w) for w in self.wers],
            "crossing": None if self.crossing is None else self.crossing.to_dict(),
        }


@dataclass(frozen=True)
class SuiteRobustness:
    """A suite's single score (retained accuracy, see the module docstring) and its curves."""

    suite: str
    conditions: tuple[str, ...]
    paired: int
    score: Interval
    mean_delta: float
    mean_relative: float
    worst_condition: str | None
    curves: tuple[FamilyCurve, ...]
    definition: str = "retained accuracy: mean over conditions of clip((1-WER_c)/(1-WER_clean), 0, 1)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "conditions": list(self.conditions), "paired": self.paired,
            "score": self.score.to_dict(), "score_definition": self.definition,
            "mean_delta": _num(self.mean_delta), "mean_relative": _num(self.mean_relative),
            "worst_condition": self.worst_condition, "curves": [c.to_dict() for c in self.curves],
        }


@dataclass(frozen=True)
class FeatureBin:
    feature: str
    low: float
    high: float
    rows: int
    ref_words: int
    wer: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "low": _num(self.low), "high": _num(self.high), "rows": self.rows,
                "ref_words": self.ref_words, "wer": self.wer.to_dict()}


@dataclass(frozen=True)
class OODFlag:
    """Evaluated rows in a feature region the reference rows lack."""

    feature: str
    low: float
    high: float
    evaluated_share: float
    reference_share: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "low": _num(self.low), "high": _num(self.high),
                "evaluated_share": self.evaluated_share, "reference_share": self.reference_share,
                "message": self.message}


@dataclass(frozen=True)
class RobustnessReport:
    """Everything the robustness view shows; ``conditions`` is sorted worst (highest WER) first."""

    clean: Interval | None
    conditions: tuple[ConditionRobustness, ...]
    suites: tuple[SuiteRobustness, ...]
    feature_bins: tuple[FeatureBin, ...]
    ood_flags: tuple[OODFlag, ...]
    threshold: float | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return robustness_to_dict(self)


def robustness_to_dict(report: RobustnessReport) -> dict[str, Any]:
    """JSON-safe dict for ``summary.json`` (key ``robustness``)."""
    return {
        "schema": SCHEMA_VERSION,
        "clean_wer": None if report.clean is None else report.clean.to_dict(),
        "threshold": report.threshold,
        "conditions": [c.to_dict() for c in report.conditions],
        "suites": [s.to_dict() for s in report.suites],
        "feature_bins": [b.to_dict() for b in report.feature_bins],
        "ood_flags": [f.to_dict() for f in report.ood_flags],
        "settings": dict(report.settings),
        "definitions": {
            "delta": "WER_condition - WER_clean on utterances scorable in both (paired bootstrap interval)",
            "relative": "delta / WER_clean (paired bootstrap interval)",
            "score": "retained accuracy: mean over a suite's conditions of clip((1-WER_c)/(1-WER_clean),0,1)",
            "crossing": "severity where WER first reaches the threshold, linear between rungs, mildest first",
            "ood_flag": f">= {OOD_MIN_SHARE:.0%} of evaluated rows in a feature bin holding < "
                        f"{OOD_REFERENCE_MAX_SHARE:.0%} of reference rows",
        },
    }


# -- computation --------------------------------------------------------------------------------
def _interval(est: float, samples: np.ndarray | None, *, level: float, n_resamples: int, seed: int,
              blocked: str | None, units: int) -> Interval:
    low, high = (float("nan"), float("nan")) if samples is None else percentile_interval(samples, level)
    return Interval(est, low, high, level, METHOD, n_resamples, seed, blocked, units)


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(den) > 0, np.asarray(num) / np.where(np.asarray(den) > 0, den, 1), np.nan)


def _paired_columns(
    utt_ids: Sequence[str], conditions: Sequence[str], counts: dict[tuple[str, str], ErrorCounts],
    speakers: dict[str, str | None],
) -> tuple[np.ndarray, str | None]:
    """Columns (errors, ref_len) for clean then each condition, one row per unit (utterance or speaker)."""
    cols = np.array(
        [[v for name in (CLEAN, *conditions) for v in (counts[(u, name)].errors, counts[(u, name)].ref_len)]
         for u in utt_ids],
        dtype=np.float64,
    ).reshape(len(utt_ids), 2 * (1 + len(conditions)))
    groups = [speakers.get(u) for u in utt_ids]
    if utt_ids and all(g is not None for g in groups) and len(set(groups)) >= 2:
        order: dict[Any, int] = {}
        codes = np.array([order.setdefault(g, len(order)) for g in groups])
        summed = np.zeros((len(order), cols.shape[1]))
        np.add.at(summed, codes, cols)
        return summed, "speaker"
    return cols, None


def condition_robustness(
    name: str, spec: dict[str, Any], rows: Sequence[ResultRow], counts: dict[tuple[str, str], ErrorCounts],
    speakers: dict[str, str | None], *, n_resamples: int, seed: int, level: float,
) -> ConditionRobustness:
    """WER and paired degradation of condition ``name`` against clean."""
    boot = {"level": level, "n_resamples": n_resamples, "seed": seed}
    cond_rows = [r for r in rows if r.condition == name]
    scored = [r.utt_id for r in cond_rows if (r.utt_id, name) in counts]
    paired = [u for u in scored if (u, CLEAN) in counts]
    # the condition's own WER over all its scored rows
    own = np.array([[counts[(u, name)].errors, counts[(u, name)].ref_len] for u in scored],
                   dtype=np.float64).reshape(-1, 2)
    own_units, own_blocked = own, None
    groups = [speakers.get(u) for u in scored]
    if scored and all(g is not None for g in groups) and len(set(groups)) >= 2:
        order: dict[Any, int] = {}
        codes = np.array([order.setdefault(g, len(order)) for g in groups])
        own_units = np.zeros((len(order), 2))
        np.add.at(own_units, codes, own)
        own_blocked = "speaker"
    wer_est = float(_ratio(own[:, 0].sum(), own[:, 1].sum())) if len(own) else float("nan")
    wer_samples = None
    if len(own_units) and own_units[:, 1].sum() > 0:
        s = resample_sums(own_units, n_resamples, np.random.default_rng(seed))
        wer_samples = _ratio(s[:, 0], s[:, 1])
    wer = _interval(wer_est, wer_samples, blocked=own_blocked, units=len(own_units), **boot)
    # paired degradation
    cols, blocked = _paired_columns(paired, [name], counts, speakers)
    if len(cols) and cols[:, 1].sum() > 0 and cols[:, 3].sum() > 0:
        clean_est = float(cols[:, 0].sum() / cols[:, 1].sum())
        cond_est = float(cols[:, 2].sum() / cols[:, 3].sum())
        s = resample_sums(cols, n_resamples, np.random.default_rng(seed))
        w_clean, w_cond = _ratio(s[:, 0], s[:, 1]), _ratio(s[:, 2], s[:, 3])
        delta_s = w_cond - w_clean
        rel_s = _ratio(delta_s, w_clean)
        rel_est = (cond_est - clean_est) / clean_est if clean_est > 0 else float("nan")
        delta = _interval(cond_est - clean_est, delta_s, blocked=blocked, units=len(cols), **boot)
        relative = _interval(rel_est, rel_s, blocked=blocked, units=len(cols), **boot)
    else:
        clean_est = float("nan")
        delta = _interval(float("nan"), None, blocked=blocked, units=len(cols), **boot)
        relative = _interval(float("nan"), None, blocked=blocked, units=len(cols), **boot)
    sev = spec.get("severity")
    return ConditionRobustness(
        condition=name, suite=spec.get("suite"), family=spec.get("family"),
        severity=None if sev is None else float(sev), axis=spec.get("axis"), worse=spec.get("worse") or "higher",
        rows=len(cond_rows), scored=len(scored), paired=len(paired), wer=wer, clean_wer_paired=clean_est,
        delta=delta, relative=relative,
    )


def threshold_crossing(severities: Sequence[float | None], wers: Sequence[float], threshold: float) -> Crossing:
    """First severity (points ordered mildest first) where WER reaches ``threshold``, interpolated."""
    pts = [(s, w) for s, w in zip(severities, wers) if s is not None and math.isfinite(w)]
    if not pts:
        return Crossing(threshold, None, "no-data")
    if pts[0][1] >= threshold:
        return Crossing(threshold, pts[0][0], "above-at-mildest")
    for (s0, w0), (s1, w1) in zip(pts, pts[1:]):
        if w1 >= threshold:
            sev = s0 if w1 == w0 else s0 + (threshold - w0) * (s1 - s0) / (w1 - w0)
            return Crossing(threshold, float(sev), "crossed")
    return Crossing(threshold, None, "not-reached")


def _mildest_first(items: list[ConditionRobustness]) -> list[ConditionRobustness]:
    with_sev = [c for c in items if c.severity is not None]
    without = [c for c in items if c.severity is None]
    worse = with_sev[0].worse if with_sev else "higher"
    with_sev.sort(key=lambda c: c.severity, reverse=(worse == "lower"))  # type: ignore[arg-type,return-value]
    return with_sev + without


def suite_robustness(
    suite: str, conds: Sequence[ConditionRobustness], counts: dict[tuple[str, str], ErrorCounts],
    speakers: dict[str, str | None], threshold: float | None, *, n_resamples: int, seed: int, level: float,
) -> SuiteRobustness:
    """Retained-accuracy score with a paired interval over utterances scorable in clean and every
    condition of the suite, and one curve per family."""
    names = [c.condition for c in conds]
    utts = sorted({u for (u, c) in counts if c == CLEAN})
    common = [u for u in utts if all((u, n) in counts for n in names)]
    cols, blocked = _paired_columns(common, names, counts, speakers)
    boot = {"level": level, "n_resamples": n_resamples, "seed": seed}

    def score_of(sums: np.ndarray) -> np.ndarray:
        # sums: (B, 2*(1+k)) -> retained accuracy per row
        clean = _ratio(sums[:, 0], sums[:, 1])
        kept = []
        for j in range(len(names)):
            w = _ratio(sums[:, 2 + 2 * j], sums[:, 3 + 2 * j])
            kept.append(np.clip(_ratio(1.0 - w, 1.0 - clean), 0.0, 1.0))
        if not kept:
            return np.full(len(sums), np.nan)
        stacked = np.vstack(kept)
        counted = np.sum(np.isfinite(stacked), axis=0)
        # a resample where every condition is undefined (no reference words) stays nan, without a warning
        return np.where(counted > 0, np.nansum(stacked, axis=0) / np.maximum(counted, 1), np.nan)

    if len(cols) and cols[:, 1].sum() > 0:
        est_row = cols.sum(axis=0, keepdims=True)
        with np.errstate(all="ignore"):
            est = float(score_of(est_row)[0])
            samples = score_of(resample_sums(cols, n_resamples, np.random.default_rng(seed)))
        score = _interval(est, samples, blocked=blocked, units=len(cols), **boot)
    else:
        score = _interval(float("nan"), None, blocked=blocked, units=len(cols), **boot)
    deltas = [c.delta.estimate for c in conds if math.isfinite(c.delta.estimate)]
    rels = [c.relative.estimate for c in conds if math.isfinite(c.relative.estimate)]
    finite = [c for c in conds if math.isfinite(c.wer.estimate)]
    worst = max(finite, key=lambda c: c.wer.estimate).condition if finite else None
    families: dict[str, list[ConditionRobustness]] = {}
    for c in conds:
        families.setdefault(c.family or c.condition, []).append(c)
    curves = []
    for fam, members in families.items():
        ordered = _mildest_first(members)
        sevs = tuple(c.severity for c in ordered)
        wers = tuple(c.wer.estimate for c in ordered)
        crossing = None if threshold is None else threshold_crossing(sevs, wers, threshold)
        curves.append(FamilyCurve(suite, fam, ordered[0].axis, ordered[0].worse,
                                  tuple(c.condition for c in ordered), sevs, wers, crossing))
    curves.sort(key=lambda f: -max((w for w in f.wers if math.isfinite(w)), default=-1.0))
    return SuiteRobustness(
        suite=suite, conditions=tuple(names), paired=len(common), score=score,
        mean_delta=float(np.mean(deltas)) if deltas else float("nan"),
        mean_relative=float(np.mean(rels)) if rels else float("nan"),
        worst_condition=worst, curves=tuple(curves),
    )


def _bin_index(value: float, edges: Sequence[float]) -> int | None:
    for i in range(len(edges) - 1):
        if edges[i] <= value < edges[i + 1]:
            return i
    return None


def feature_bins(
    rows: Sequence[ResultRow], counts: dict[tuple[str, str], ErrorCounts], *, n_resamples: int, seed: int,
    level: float, bins: dict[str, tuple[float, ...]] = FEATURE_BINS,
) -> list[FeatureBin]:
    """Corpus WER per feature bin over every scorable row that has the feature."""
    out: list[FeatureBin] = []
    for feat, edges in bins.items():
        groups: dict[int, list[ErrorCounts]] = {}
        for r in rows:
            value = r.features.get(feat)
            key = (r.utt_id, r.condition)
            if value is None or key not in counts or not math.isfinite(float(value)):
                continue
            idx = _bin_index(float(value), edges)
            if idx is not None:
                groups.setdefault(idx, []).append(counts[key])
        for idx in sorted(groups):
            cs = groups[idx]
            cols = np.array([[c.errors, c.ref_len] for c in cs], dtype=np.float64)
            ref = int(cols[:, 1].sum())
            est = float(cols[:, 0].sum() / ref) if ref else float("nan")
            samples = None
            if ref:
                s = resample_sums(cols, n_resamples, np.random.default_rng(seed))
                samples = _ratio(s[:, 0], s[:, 1])
            out.append(FeatureBin(feat, edges[idx], edges[idx + 1], len(cs), ref,
                                  _interval(est, samples, level=level, n_resamples=n_resamples, seed=seed,
                                            blocked=None, units=len(cs))))
    return out


def ood_flags(
    evaluated: Iterable[dict[str, Any]], reference: Iterable[dict[str, Any]], *,
    bins: dict[str, tuple[float, ...]] = FEATURE_BINS, min_share: float = OOD_MIN_SHARE,
    reference_max_share: float = OOD_REFERENCE_MAX_SHARE,
) -> list[OODFlag]:
    """Feature bins holding >= ``min_share`` of evaluated feature dicts but < ``reference_max_share``
    of reference ones (see the module docstring)."""
    evaluated, reference = list(evaluated), list(reference)
    flags: list[OODFlag] = []
    for feat, edges in bins.items():
        ev = [float(f[feat]) for f in evaluated if f.get(feat) is not None and math.isfinite(float(f[feat]))]
        rf = [float(f[feat]) for f in reference if f.get(feat) is not None and math.isfinite(float(f[feat]))]
        if not ev or not rf:
            continue
        for i in range(len(edges) - 1):
            e_share = sum(1 for v in ev if edges[i] <= v < edges[i + 1]) / len(ev)
            r_share = sum(1 for v in rf if edges[i] <= v < edges[i + 1]) / len(rf)
            if e_share >= min_share and r_share < reference_max_share:
                flags.append(OODFlag(
                    feat, edges[i], edges[i + 1], round(e_share, 4), round(r_share, 4),
                    f"{e_share:.0%} of evaluated rows have {feat} in [{edges[i]:g}, {edges[i + 1]:g}) where the "
                    f"reference has {r_share:.1%} ({len(rf)} rows): results there are out of distribution",
                ))
    return flags


def analyze(
    rows: Sequence[ResultRow], counts: dict[tuple[str, str], ErrorCounts],
    condition_specs: Sequence[tuple[str, dict[str, Any]]], *, threshold: float | None = None,
    reference_features: Iterable[dict[str, Any]] | None = None, n_resamples: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> RobustnessReport:
    """The robustness report from rows, per-utterance word counts keyed ``(utt_id, condition)`` (only
    scorable rows), and the run's ``(name, spec)`` conditions in order (``RunStore.conditions()``)."""
    check_settings(n_resamples, level)
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level}
    speakers = {r.utt_id: r.speaker for r in rows}
    clean_conds = [name for name, _ in condition_specs if name == CLEAN]
    clean = None
    if clean_conds or any(c == CLEAN for (_, c) in counts):
        clean = condition_robustness(CLEAN, {}, rows, counts, speakers, **boot).wer
    conds = [condition_robustness(name, spec or {}, rows, counts, speakers, **boot)
             for name, spec in condition_specs if name != CLEAN]
    suites: dict[str, list[ConditionRobustness]] = {}
    for c in conds:
        suites.setdefault(c.suite or "custom", []).append(c)
    suite_reports = [suite_robustness(s, members, counts, speakers, threshold, **boot)
                     for s, members in suites.items()]
    ordered = sorted(conds, key=lambda c: -(c.wer.estimate if math.isfinite(c.wer.estimate) else -1.0))
    scorable_rows = [r for r in rows if (r.utt_id, r.condition) in counts]
    reference = list(reference_features) if reference_features is not None else [
        r.features for r in rows if r.condition == CLEAN and r.features]
    flags = ood_flags([r.features for r in scorable_rows if r.features], reference)
    return RobustnessReport(
        clean=clean, conditions=tuple(ordered), suites=tuple(suite_reports),
        feature_bins=tuple(feature_bins(scorable_rows, counts, **boot)), ood_flags=tuple(flags),
        threshold=threshold,
        settings={**boot, "reference": "given" if reference_features is not None else "clean rows"},
    )


def store_features(store: Any, condition: str | None = CLEAN) -> list[dict[str, Any]]:
    """Feature dicts of a run's rows (default: its clean rows), e.g. a reference run for OOD flags."""
    return [r.features for r in store.rows(condition=condition) if r.features]


def analyze_run(
    store: Any, normalizer: str | Any = None, *, threshold: float | None = None,
    reference_features: Iterable[dict[str, Any]] | None = None, n_resamples: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> RobustnessReport:
    """:func:`analyze` on a :class:`~voxproof.run.store.RunStore`; word counts come from (and are cached
    in) the store through :func:`voxproof.metrics.scoring.utterance_counts`. ``reference_features``:
    e.g. ``store_features(RunStore.open(reference_run))``; default: this run's clean rows."""
    from voxproof.metrics.normalize import DEFAULT_NORMALIZER, Normalizer, get_normalizer
    from voxproof.metrics.scoring import scorable, utterance_counts

    norm = normalizer if isinstance(normalizer, Normalizer) else get_normalizer(normalizer or DEFAULT_NORMALIZER)
    rows = list(store.rows())
    good = [r for r in rows if scorable(r)]
    both = utterance_counts(store, good, norm)
    words = {k: v[0] for k, v in both.items()}
    specs = store.conditions()
    if not specs:
        specs = [(name, {}) for name in dict.fromkeys(r.condition for r in rows)]
    report = analyze(rows, words, specs, threshold=threshold, reference_features=reference_features,
                     n_resamples=n_resamples, seed=seed, level=level)
    return RobustnessReport(report.clean, report.conditions, report.suites, report.feature_bins,
                            report.ood_flags, report.threshold, {**report.settings, "normalizer": norm.label})


# -- plots --------------------------------------------------------------------------------------
def score_robustness(
    store: Any, scores: Any = None, *, normalizer: str | Any = None, threshold: float | None = None,
    reference_features: Iterable[dict[str, Any]] | None = None,
) -> RobustnessReport:
    """:func:`analyze_run` with the bootstrap settings of ``scores`` (a ``RunScores``: ``n_resamples``,
    ``seed``, ``level``) so the robustness intervals match the run's other intervals."""
    boot = {}
    if scores is not None:
        boot = {"n_resamples": scores.n_resamples, "seed": scores.seed, "level": scores.level}
    return analyze_run(store, normalizer, threshold=threshold, reference_features=reference_features, **boot)


def _f(value: Any) -> float:
    return float("nan") if value is None else float(value)


def robustness_curves_png(robustness: RobustnessReport | dict[str, Any], *, suite: str | None = None,
                          dpi: int = 110) -> bytes:
    """PNG bytes of the robustness curves, from a report or its ``robustness_to_dict`` form (as stored
    in ``summary.json``): one panel per curve (family), worst curves first, WER vs severity with interval
    bands, the clean WER (dashed, with its band) and the threshold (dotted). Needs matplotlib."""
    rob = robustness_to_dict(robustness) if isinstance(robustness, RobustnessReport) else robustness
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from voxproof.errors import UsageError

        raise UsageError("robustness plots need matplotlib: pip install 'voxproof[plots]'") from exc
    by_name = {c["condition"]: c for c in rob.get("conditions", [])}
    all_curves = [cv for s in rob.get("suites", []) if suite is None or s["suite"] == suite for cv in s["curves"]]
    curves = [cv for cv in all_curves if len(cv["conditions"]) > 1]
    # single conditions share one panel: a bar per condition, worst on top
    singles = sorted((by_name[cv["conditions"][0]] for cv in all_curves
                      if len(cv["conditions"]) == 1 and cv["conditions"][0] in by_name),
                     key=lambda m: _f(m["wer"]["estimate"]) if math.isfinite(_f(m["wer"]["estimate"])) else -1.0)
    clean = rob.get("clean_wer") or {}
    threshold = rob.get("threshold")
    n = max(1, len(curves) + (1 if singles else 0))
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    if not curves and not singles:
        axes[0][0].text(0.5, 0.5, "no perturbed conditions", ha="center", va="center")
    if singles:
        ax = axes.flat[len(curves)]
        ys = list(range(len(singles)))
        est = [100 * _f(m["wer"]["estimate"]) for m in singles]
        err = [[max(0.0, e - 100 * _f(m["wer"]["low"])) if math.isfinite(_f(m["wer"]["low"])) else 0.0
                for e, m in zip(est, singles)],
               [max(0.0, 100 * _f(m["wer"]["high"]) - e) if math.isfinite(_f(m["wer"]["high"])) else 0.0
                for e, m in zip(est, singles)]]
        ax.errorbar([e if math.isfinite(e) else 0.0 for e in est], ys, xerr=err, fmt="o", color="C3", capsize=3)
        ax.set_yticks(ys, [m["condition"] for m in singles], fontsize=7)
        if math.isfinite(_f(clean.get("estimate"))):
            ax.axvline(100 * _f(clean["estimate"]), color="C0", ls="--", lw=1)
        if threshold is not None:
            ax.axvline(100 * float(threshold), color="k", ls=":", lw=1)
        ax.set_xlabel("WER (%)", fontsize=8)
        ax.set_xlim(left=0)
        ax.set_title("single conditions (worst on top)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax, cv in zip(axes.flat, curves):
        title = f"{cv.get('suite') or ''} · {cv['family']}"
        members = [by_name[c] for c in cv["conditions"] if c in by_name]
        sevs = [m.get("severity") for m in members]
        if members and all(v is not None for v in sevs):
            xs = [float(v) for v in sevs]
        else:
            xs = [float(i) for i in range(len(members))]
            ax.set_xticks(xs, [m["condition"].split("/")[-1] for m in members], rotation=30, fontsize=7)
        ys = [100 * _f(m["wer"]["estimate"]) for m in members]
        if not any(math.isfinite(y) for y in ys):
            ax.text(0.5, 0.5, "no scorable rows\n(see coverage)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9)
            ax.set_title(title, fontsize=9)
            continue
        lo = [100 * _f(m["wer"]["low"]) for m in members]
        hi = [100 * _f(m["wer"]["high"]) for m in members]
        ax.plot(xs, ys, "o-", color="C3", label="WER")
        ax.fill_between(xs, lo, hi, color="C3", alpha=0.2, label="95% interval")
        if math.isfinite(_f(clean.get("estimate"))):
            ax.axhline(100 * _f(clean["estimate"]), color="C0", ls="--", lw=1, label="clean")
            if math.isfinite(_f(clean.get("low"))) and math.isfinite(_f(clean.get("high"))):
                ax.axhspan(100 * _f(clean["low"]), 100 * _f(clean["high"]), color="C0", alpha=0.08)
        if threshold is not None:
            ax.axhline(100 * float(threshold), color="k", ls=":", lw=1, label="threshold")
        if cv.get("worse") == "lower" and len(xs) > 1:
            ax.invert_xaxis()
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(cv.get("axis") or "severity", fontsize=8)
        ax.set_ylabel("WER (%)", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    if curves:
        axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


#: the name used in earlier drafts; takes a report or its dict
plot_robustness = robustness_curves_png
