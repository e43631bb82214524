"""Cross-model disagreement detector: score each input by how much two recognisers' transcripts differ,
and measure how well that score separates attacked from clean inputs, and how often it fires on clean
and naturally noisy speech.

Stage: pairs of run stores made over the *same audio* (same data, seed and conditions, two backends;
``voxproof probe inject``/``search`` or ``voxproof eval --suite noise-ladder``) -> rows paired by
(utterance, condition) -> :func:`analyze_pairs` -> a JSON-ready dict.

Score: ``edit_distance(a, b) / max(len(a), len(b))`` over normalised words (symmetric, 0 = identical,
1 = nothing in common; 0 when both are empty). Labels come from the condition: ``inject/...`` and
``search/...`` rows are attacked (``search/q=0000`` too: the unoptimised shaped noise is still the
attacker's input), ``clean`` is clean, anything else (noise-ladder rungs, ``random/...``) is natural.
The alarm threshold is the ``1 - target_false_alarm`` quantile of the clean scores (set on the clean
rows, so the clean false-alarm rate is in-sample by construction; the natural-noise rates are not).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.errors import DataError, UsageError
from voxproof.metrics.align import count_edits
from voxproof.metrics.calibration import roc_auc
from voxproof.metrics.intervals import bootstrap_rate

ATTACK_PREFIXES = ("inject/", "search/")


def disagreement(a: Sequence[str], b: Sequence[str]) -> float:
    """Word edit distance between two transcripts over the longer length (0..1)."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    c = count_edits(list(a), list(b))
    return min(1.0, c.errors / longest)


def label_of(condition: str) -> str:
    if condition == "clean":
        return "clean"
    return "attacked" if condition.startswith(ATTACK_PREFIXES) else "natural"


@dataclass(frozen=True)
class Scored:
    utt_id: str
    condition: str
    label: str
    score: float
    payload_success_a: float | None = None


def pair_scores(store_a: Any, store_b: Any, normalizer: Callable[[str], str]) -> list[Scored]:
    """Disagreement of every (utterance, condition) decoded by both stores (failed rows skipped: no text
    to compare; they are counted in ``unpaired``)."""
    b_rows = {(r.utt_id, r.condition): r for r in store_b.rows() if r.ok}
    out = []
    for r in store_a.rows():
        other = b_rows.get((r.utt_id, r.condition))
        if not r.ok or other is None:
            continue
        ha, hb = normalizer(r.hypothesis or "").split(), normalizer(other.hypothesis or "").split()
        success = None
        payload = (r.extras or {}).get("payload")
        if payload:
            from voxproof.security.inject import payload_hits

            tokens = normalizer(payload).split()
            success = payload_hits(tokens, normalizer(r.reference or "").split(), ha) / max(1, len(tokens))
        out.append(Scored(r.utt_id, r.condition, label_of(r.condition), disagreement(ha, hb), success))
    return out


def _auroc(pos: list[Scored], neg: list[Scored], n_resamples: int, seed: int) -> dict[str, Any]:
    """AUROC with a percentile bootstrap (each class resampled on its own)."""
    if not pos or not neg:
        why = "no attacked rows" if not pos else "no clean rows"
        return {"estimate": None, "low": None, "high": None, "why": why, "n_pos": len(pos), "n_neg": len(neg)}
    sp, sn = np.array([s.score for s in pos]), np.array([s.score for s in neg])
    est = roc_auc(np.r_[sp, sn], np.r_[np.ones(len(sp), bool), np.zeros(len(sn), bool)])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_resamples):
        bp, bn = sp[rng.integers(0, len(sp), len(sp))], sn[rng.integers(0, len(sn), len(sn))]
        boots.append(roc_auc(np.r_[bp, bn], np.r_[np.ones(len(bp), bool), np.zeros(len(bn), bool)]))
    low, high = np.percentile(boots, [2.5, 97.5])
    return {"estimate": float(est), "low": float(low), "high": float(high), "n_pos": len(pos), "n_neg": len(neg)}


def _alarm_rate(rows: list[Scored], threshold: float, seed: int) -> dict[str, Any]:
    flags = [int(s.score > threshold) for s in rows]
    iv = bootstrap_rate(flags, [1] * len(flags), groups=[s.utt_id for s in rows], seed=seed)
    return {**iv.to_dict(), "alarms": sum(flags), "n": len(flags)}


def analyze_pairs(scored: list[Scored], *, target_false_alarm: float = 0.05, n_resamples: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """AUROC attacked vs clean (all attacks, and attacks that put at least half the payload into
    recogniser A's transcript), the alarm threshold, and alarm rates on clean, attacked and each
    natural condition."""
    if not math.isfinite(target_false_alarm) or not 0.0 < target_false_alarm < 1.0:
        raise UsageError(f"target false-alarm rate must be between 0 and 1, got {target_false_alarm!r}")
    clean = [s for s in scored if s.label == "clean"]
    attacked = [s for s in scored if s.label == "attacked"]
    if not clean:
        raise DataError("no clean rows decoded by both recognisers; the detector needs clean rows to set its threshold")
    clean_scores = np.array([s.score for s in clean])
    threshold = float(np.quantile(clean_scores, 1.0 - target_false_alarm))
    natural: dict[str, list[Scored]] = {}
    for s in scored:
        if s.label == "natural":
            natural.setdefault(s.condition, []).append(s)
    effective = [s for s in attacked if s.payload_success_a is not None and s.payload_success_a >= 0.5]
    by_family: dict[str, list[Scored]] = {}
    for s in attacked:
        by_family.setdefault(s.condition.split("/")[0], []).append(s)
    return {
        "detector": "word disagreement of two recognisers (edit distance / longer transcript)",
        "n_rows": len(scored), "threshold": threshold, "target_false_alarm": target_false_alarm,
        "auroc_attacked_vs_clean": _auroc(attacked, clean, n_resamples, seed),
        "auroc_effective_attacks_vs_clean": _auroc(effective, clean, n_resamples, seed),
        "auroc_by_attack": {k: _auroc(v, clean, n_resamples, seed) for k, v in by_family.items()},
        "auroc_natural_vs_clean": _auroc([s for v in natural.values() for s in v], clean, n_resamples, seed),
        "alarm_rate": {
            "clean": _alarm_rate(clean, threshold, seed),
            "attacked": _alarm_rate(attacked, threshold, seed) if attacked else None,
            "effective_attacks": _alarm_rate(effective, threshold, seed) if effective else None,
            "natural": {k: _alarm_rate(v, threshold, seed) for k, v in natural.items()},
        },
        "mean_score": {lab: float(np.mean([s.score for s in scored if s.label == lab]))
                       for lab in ("clean", "attacked", "natural") if any(s.label == lab for s in scored)},
    }
