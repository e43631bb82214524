"""TTS evaluation stage 6: from stored rows to per-system figures with intervals, failure counts, and
paired comparisons between systems on the same prompts.

Rules (the same as for recognisers): WER is corpus-level (edits / reference words over all prompts).
A prompt the synthesiser failed on counts as fully deleted (it said nothing), so failures raise WER
instead of vanishing; rows the *judges* could not score (recogniser or predictor error) are left out
of WER and shown as coverage. MOS means are over the clips DNSMOS scored (silent clips included: the
predictor scores them as it finds them); ``ovrl_penalised`` also counts clips it could not score
(synthesis errors, empty audio) at 1.0, the bottom of the scale. Every mean and rate has a
percentile-bootstrap interval over prompts, seeded (over whole speakers when the items are real
recordings with speaker labels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from voxproof.metrics.intervals import Interval, bootstrap_rate, percentile_interval, resample_sums
from voxproof.run.records import ResultRow
from voxproof.tts.detectors import FAILURE_KINDS
from voxproof.tts.mos import MOS_KEYS, PREDICTOR_KEYS

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PromptScore:
    """What the summaries need from one row."""

    id: str
    category: str
    status: str
    scored: bool  # False only when the judges failed (recogniser/predictor error)
    word_errors: int
    word_ref: int
    char_errors: int
    char_ref: int
    mos: dict[str, float]
    failures: dict[str, bool]
    features: dict[str, float]
    row: ResultRow

    @property
    def wer(self) -> float:
        return self.word_errors / self.word_ref if self.word_ref else float(self.word_errors > 0)

    @property
    def failed(self) -> bool:
        return any(self.failures.values())


def prompt_scores(rows: Sequence[ResultRow], normalizer) -> list[PromptScore]:
    """Per-prompt numbers from stored rows; synthesis-error rows become full deletions of the
    canonical expected form under ``normalizer``."""
    out = []
    for row in rows:
        extras = row.extras or {}
        failures = {k: bool(v) for k, v in (extras.get("failures") or {}).items()}
        category = (row.tags or {}).get("category") or extras.get("category") or "general"
        mos = {k: row.features[f"mos_{k}"] for k in PREDICTOR_KEYS if f"mos_{k}" in row.features}
        if row.ok:
            w, c = extras["words"], extras["chars"]
            word_err = w["substitutions"] + w["deletions"] + w["insertions"]
            char_err = c["substitutions"] + c["deletions"] + c["insertions"]
            word_ref = w["hits"] + w["substitutions"] + w["deletions"]
            char_ref = c["hits"] + c["substitutions"] + c["deletions"]
            scored = True
        elif extras.get("scoring_error"):
            word_err = word_ref = char_err = char_ref = 0
            scored = False
        else:
            ref = normalizer(row.reference or "")
            word_err = word_ref = len(ref.split())
            char_err = char_ref = len(ref)
            scored = True
        out.append(PromptScore(row.utt_id, category, row.status, scored, word_err, word_ref, char_err,
                               char_ref, mos, failures, dict(row.features), row))
    return out


@dataclass(frozen=True)
class SystemSummary:
    """One system's figures over a prompt set (or the floor's over real recordings)."""

    system: str
    backend: dict[str, Any]
    n_items: int
    n_ok: int
    n_synthesis_errors: int
    n_unscored: int
    wer: Interval
    cer: Interval
    mos: dict[str, Interval]
    mos_n: int
    ovrl_penalised: float | None
    failures: dict[str, dict[str, Any]]
    any_failure: dict[str, Any]
    mos_warnings: int
    timing: dict[str, float | None]
    by_category: dict[str, dict[str, Any]]
    warnings: tuple[str, ...] = ()
    reference: dict[str, Interval] = field(default_factory=dict)
    reference_n: dict[str, int] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "tts_system_summary", "schema": self.schema, "system": self.system,
            "backend": self.backend, "n_items": self.n_items, "n_ok": self.n_ok,
            "n_synthesis_errors": self.n_synthesis_errors, "n_unscored": self.n_unscored,
            "wer": self.wer.to_dict(), "cer": self.cer.to_dict(),
            "mos": {k: v.to_dict() for k, v in self.mos.items()}, "mos_n": self.mos_n,
            "ovrl_penalised": _num(self.ovrl_penalised), "failures": self.failures,
            "any_failure": self.any_failure, "mos_warnings": self.mos_warnings,
            "timing": {k: _num(v) for k, v in self.timing.items()}, "by_category": self.by_category,
            "warnings": list(self.warnings),
            "reference": {k: v.to_dict() for k, v in self.reference.items()},
            "reference_n": dict(self.reference_n),
        }


def summarise(
    system: str,
    scores: Sequence[PromptScore],
    backend: dict[str, Any] | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    mos_enabled: bool | None = None,
) -> SystemSummary:
    """Per-system figures with bootstrap intervals over prompts. ``mos_enabled`` (default: whether any
    row has MOS) decides whether clips without MOS count at 1.0 in ``ovrl_penalised``."""
    scored = [s for s in scores if s.scored]
    kw = {"n_resamples": n_resamples, "seed": seed, "level": level}
    wer = bootstrap_rate([s.word_errors for s in scored], [s.word_ref for s in scored],
                         groups=_speakers(scored), **kw)
    cer = bootstrap_rate([s.char_errors for s in scored], [s.char_ref for s in scored],
                         groups=_speakers(scored), **kw)
    with_mos = [s for s in scores if s.mos]
    mos = {k: bootstrap_rate([s.mos[k] for s in with_mos], [1.0] * len(with_mos), groups=_speakers(with_mos), **kw)
           for k in MOS_KEYS}
    with_plc = [s for s in with_mos if "plcmos" in s.mos]
    if with_plc:
        mos["plcmos"] = bootstrap_rate([s.mos["plcmos"] for s in with_plc], [1.0] * len(with_plc),
                                       groups=_speakers(with_plc), **kw)
    unscorable = [s for s in scores if not s.mos and s.scored]  # synthesis errors, empty audio
    ovrl_pen = None
    if mos_enabled is None:
        mos_enabled = bool(with_mos)
    if mos_enabled and (with_mos or unscorable):
        vals = [s.mos["ovrl"] for s in with_mos] + [1.0] * len(unscorable)
        ovrl_pen = float(np.mean(vals))
    n = len(scores)
    failures = {}
    for kind in FAILURE_KINDS:
        ids = [s.id for s in scores if s.failures.get(kind)]
        failures[kind] = {"count": len(ids), "share": len(ids) / n if n else None, "ids": ids}
    any_ids = [s.id for s in scores if s.failed]
    ok = [s for s in scores if s.status == "ok"]
    warnings = []
    if n < 30:
        warnings.append(f"only {n} items: intervals are wide and small differences are not meaningful")
    unscored = [s for s in scores if not s.scored]
    speakers = _speakers(scored)
    if speakers is not None and len(set(speakers)) < 10:
        warnings.append(f"intervals resample whole speakers (only {len(set(speakers))}): they are rough")
    if unscored:
        warnings.append(f"{len(unscored)} item(s) could not be judged (recogniser or MOS error) and are "
                        f"left out of WER: {', '.join(s.id for s in unscored[:10])}")
    reference, reference_n = _reference(scores, kw)
    return SystemSummary(
        reference=reference,
        reference_n=reference_n,
        system=system,
        backend=dict(backend or {}),
        n_items=n,
        n_ok=len(ok),
        n_synthesis_errors=sum(1 for s in scores if s.failures.get("synthesis_error")),
        n_unscored=len(unscored),
        wer=wer,
        cer=cer,
        mos=mos,
        mos_n=len(with_mos),
        ovrl_penalised=ovrl_pen,
        failures=failures,
        any_failure={"count": len(any_ids), "share": len(any_ids) / n if n else None, "ids": any_ids},
        mos_warnings=sum(1 for s in ok if (s.row.extras or {}).get("mos_warnings")),
        timing=_timing(ok),
        by_category=_by_category(scored),
        warnings=tuple(warnings),
    )


def _reference(scores: Sequence[PromptScore], kw: dict[str, Any]) -> tuple[dict[str, Interval], dict[str, int]]:
    """Means of the reference figures (``ref_*`` features: PESQ, STOI, MCD, F0) over the items that
    have them, with bootstrap intervals (over speakers when known)."""
    from voxproof.tts.reference import REFERENCE_KEYS

    out, counts = {}, {}
    for key, feature in [(k, f"ref_{k}") for k in REFERENCE_KEYS] + [("speaker_similarity", "spk_sim")]:
        have = [s for s in scores if feature in s.features]
        if have:
            out[key] = bootstrap_rate([s.features[feature] for s in have], [1.0] * len(have),
                                      groups=_speakers(have), **kw)
            counts[key] = len(have)
    from voxproof.tts.speaker import consistency

    embeds = [np.asarray(s.row.extras["speaker_embedding"]) for s in scores
              if s.row.ok and (s.row.extras or {}).get("speaker_embedding")]
    voice = consistency(embeds)
    if voice is not None:
        out["voice_consistency"] = Interval(voice, float("nan"), float("nan"), kw["level"], "none", 0,
                                            kw["seed"], None, len(embeds))
        counts["voice_consistency"] = len(embeds)
    return out, counts


def _speakers(scores: Sequence[PromptScore]) -> list[str] | None:
    """Speaker per item when every item has one and there are several (real recordings): intervals
    then resample speakers, whose utterances are not independent. Synthesised prompts have none."""
    speakers = [s.row.speaker for s in scores]
    if not speakers or any(sp is None for sp in speakers) or len(set(speakers)) < 2:
        return None
    return [str(sp) for sp in speakers]


def _timing(ok: Sequence[PromptScore]) -> dict[str, float | None]:
    def med(key: str) -> float | None:
        vals = [s.features[key] for s in ok if key in s.features and math.isfinite(s.features[key])]
        return float(median(vals)) if vals else None

    synth = sum(s.row.processing_time or 0.0 for s in ok)
    audio = sum(s.row.audio_duration or 0.0 for s in ok)
    cpu_rows = [s for s in ok if "synthesis_cpu_seconds" in (s.row.extras or {})]
    cpu = sum(s.row.extras["synthesis_cpu_seconds"] for s in cpu_rows)
    cpu_audio = sum(s.row.audio_duration or 0.0 for s in cpu_rows)
    return {
        "cpu_rtf": cpu / cpu_audio if cpu_audio > 0 and cpu > 0 else None,
        "median_words_per_second": med("words_per_second"),
        "median_syllables_per_second": med("syllables_per_second"),
        "median_duration_ratio": med("duration_ratio"),
        "rtf": synth / audio if audio > 0 and synth > 0 else None,
        "audio_seconds": audio,
    }


def _by_category(scored: Sequence[PromptScore]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[PromptScore]] = {}
    for s in scored:
        groups.setdefault(s.category, []).append(s)
    out = {}
    for cat, items in groups.items():
        ref = sum(s.word_ref for s in items)
        err = sum(s.word_errors for s in items)
        ovrl = [s.mos["ovrl"] for s in items if "ovrl" in s.mos]
        out[cat] = {
            "n": len(items), "ref_words": ref, "errors": err, "wer": err / ref if ref else None,
            "mos_ovrl": float(np.mean(ovrl)) if ovrl else None,
            "failed": sum(1 for s in items if s.failed),
        }
    return out


@dataclass(frozen=True)
class MetricComparison:
    """B minus A on one metric over the prompts both have: the point difference, a paired bootstrap
    interval, the share of resamples where B is better, and significance tests on per-prompt values."""

    metric: str
    n: int
    a: float
    b: float
    difference: Interval
    prob_b_better: float
    tests: tuple[Any, ...]
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "n": self.n, "a": _num(self.a), "b": _num(self.b),
            "difference": self.difference.to_dict(), "prob_b_better": _num(self.prob_b_better),
            "higher_is_better": self.higher_is_better, "tests": [t.to_dict() for t in self.tests],
        }


@dataclass(frozen=True)
class SystemComparison:
    """System B against system A on the same prompts."""

    a: str
    b: str
    n_common: int
    metrics: tuple[MetricComparison, ...]
    warnings: tuple[str, ...] = field(default=())

    def metric(self, name: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "tts_paired_comparison", "schema": SCHEMA_VERSION, "a": self.a, "b": self.b,
                "n_common": self.n_common, "metrics": [m.to_dict() for m in self.metrics],
                "warnings": list(self.warnings)}


def compare_systems(
    a_name: str,
    a: Sequence[PromptScore],
    b_name: str,
    b: Sequence[PromptScore],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> SystemComparison:
    """Paired comparison of B against A on their common prompts: corpus WER (each system against
    its own best expected forms, so the two denominators may differ), the failure share, and the DNSMOS
    means, each with a paired bootstrap interval (prompts drawn once for both systems), and tests:
    Wilcoxon signed-rank and sign test on per-prompt values, McNemar on per-prompt failure."""
    from voxproof.metrics.paired import mcnemar

    bmap = {s.id: s for s in b if s.scored}
    pairs = [(s, bmap[s.id]) for s in a if s.scored and s.id in bmap]
    rng_seed = seed
    metrics: list[MetricComparison] = []
    warnings: list[str] = []
    if len(pairs) < 20:
        warnings.append(f"only {len(pairs)} common prompts: tests have little power")
    if pairs:
        cols = np.array([[x.word_errors, x.word_ref, y.word_errors, y.word_ref] for x, y in pairs], dtype=float)
        metrics.append(_ratio_comparison("wer", cols, n_resamples, rng_seed, level,
                                         [x.wer for x, _ in pairs], [y.wer for _, y in pairs]))
        fa = [float(x.failed) for x, _ in pairs]
        fb = [float(y.failed) for _, y in pairs]
        cols = np.column_stack([fa, np.ones(len(fa)), fb, np.ones(len(fb))])
        comp = _ratio_comparison("failure_share", cols, n_resamples, rng_seed, level, fa, fb)
        comp = MetricComparison(comp.metric, comp.n, comp.a, comp.b, comp.difference, comp.prob_b_better,
                                (mcnemar([not f for f in fa], [not f for f in fb]),), False)
        metrics.append(comp)
    spk_pairs = [(x, y) for x, y in pairs if "spk_sim" in x.features and "spk_sim" in y.features]
    if spk_pairs:
        va = [x.features["spk_sim"] for x, _ in spk_pairs]
        vb = [y.features["spk_sim"] for _, y in spk_pairs]
        cols = np.column_stack([va, np.ones(len(va)), vb, np.ones(len(vb))])
        metrics.append(_ratio_comparison("speaker_similarity", cols, n_resamples, rng_seed, level, va, vb,
                                         higher=True))
    mos_pairs = [(x, y) for x, y in pairs if x.mos and y.mos]
    if mos_pairs:
        for key in PREDICTOR_KEYS:
            if not all(key in x.mos and key in y.mos for x, y in mos_pairs):
                continue  # PLCMOS only when both runs ran it on every paired clip
            va = [x.mos[key] for x, _ in mos_pairs]
            vb = [y.mos[key] for _, y in mos_pairs]
            cols = np.column_stack([va, np.ones(len(va)), vb, np.ones(len(vb))])
            comp = _ratio_comparison(f"mos_{key}", cols, n_resamples, rng_seed, level, va, vb, higher=True)
            metrics.append(comp)
    return SystemComparison(a_name, b_name, len(pairs), tuple(metrics), tuple(warnings))


def _ratio_comparison(metric, cols, n_resamples, seed, level, per_a, per_b, higher: bool = False):
    """B - A of sum(num)/sum(den) with a paired bootstrap over rows of ``cols`` = [num_a, den_a,
    num_b, den_b], plus Wilcoxon and sign tests on the per-item values ``per_a``/``per_b``."""
    from voxproof.metrics.intervals import METHOD
    from voxproof.metrics.paired import sign_test, wilcoxon_test

    rate_a = cols[:, 0].sum() / cols[:, 1].sum() if cols[:, 1].sum() else float("nan")
    rate_b = cols[:, 2].sum() / cols[:, 3].sum() if cols[:, 3].sum() else float("nan")
    sums = resample_sums(cols, n_resamples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        ra = sums[:, 0] / sums[:, 1]
        rb = sums[:, 2] / sums[:, 3]
    diff = rb - ra
    low, high = percentile_interval(diff, level)
    prob = float(np.mean(rb > ra)) if higher else float(np.mean(rb < ra))
    interval = Interval(float(rate_b - rate_a), low, high, level, METHOD, n_resamples, seed, None, len(cols))
    if higher:  # the tests are on "errors": flip so that a positive statistic direction is consistent
        tests = (wilcoxon_test(per_a, per_b), sign_test([-v for v in per_a], [-v for v in per_b]))
    else:
        tests = (wilcoxon_test(per_a, per_b), sign_test(per_a, per_b))
    return MetricComparison(metric, len(cols), float(rate_a), float(rate_b), interval, prob, tests, higher)


def worst_items(scores: Sequence[PromptScore], n: int = 5) -> list[PromptScore]:
    """The ``n`` worst prompts: most failure flags first, then highest WER, then lowest MOS OVRL."""
    def key(s: PromptScore):
        return (-sum(s.failures.values()), -s.wer, s.mos.get("ovrl", 0.0))

    return sorted(scores, key=key)[:n]


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
