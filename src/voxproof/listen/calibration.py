"""Listening tests, stage 5: do the MOS predictors agree with this team's listeners?

For each predictor the design recorded per clip (DNSMOS ``mos_ovrl``, ``mos_sig``, ``mos_bak``,
``mos_p808``, and PLCMOS ``mos_plcmos`` when ``tts-eval --plcmos`` ran, from the ``tts-eval`` rows), against the kept listeners' mean rating of the same clip:

- **per utterance**: Spearman and Pearson correlation over clips, with percentile-bootstrap
  intervals (clips resampled);
- **per system**: the same correlations over system means (n/a with fewer than 3 systems), and
  whether the predictor ranks the systems in the listeners' order (Kendall's tau and every pair).

Verdict per predictor: ``untrusted`` when the per-utterance Spearman interval reaches 0 or below, or
when it orders some pair of systems against the listeners; ``trusted`` when the Spearman interval's low
end is at least 0.5 and the system order matches; ``weak`` otherwise. With fewer than 10 clips there is
no verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.listen.design import Design
from voxproof.listen.score import Estimate, ListenResult

MIN_CLIPS = 10
TRUST_LOW = 0.5


@dataclass(frozen=True)
class PredictorCalibration:
    predictor: str
    n_clips: int
    spearman: Estimate
    pearson: Estimate
    system_spearman: Estimate
    system_pearson: Estimate
    kendall_tau_systems: float | None
    pairs: tuple[dict[str, Any], ...]
    verdict: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"predictor": self.predictor, "n_clips": self.n_clips, "spearman": self.spearman.to_dict(),
                "pearson": self.pearson.to_dict(), "system_spearman": self.system_spearman.to_dict(),
                "system_pearson": self.system_pearson.to_dict(),
                "kendall_tau_systems": self.kendall_tau_systems, "system_pairs": list(self.pairs),
                "verdict": self.verdict, "why": self.why}


@dataclass(frozen=True)
class Calibration:
    predictors: tuple[PredictorCalibration, ...]
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"predictors": [p.to_dict() for p in self.predictors]}
        if self.why:
            d["why"] = self.why
        return d


def _corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x with the same row of y."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(-1) / np.sqrt((xc ** 2).sum(-1) * (yc ** 2).sum(-1))


def _ranks(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1)


def correlations(x: np.ndarray, y: np.ndarray, *, n_resamples: int, seed: int, level: float,
                 min_n: int = 3) -> tuple[Estimate, Estimate]:
    """(Spearman, Pearson) of paired values with bootstrap intervals over the pairs."""
    n = x.size
    if n < min_n:
        why = f"only {n} paired values"
        return Estimate(None, None, None, n, why), Estimate(None, None, None, n, why)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        why = "one side is constant"
        return Estimate(None, None, None, n, why), Estimate(None, None, None, n, why)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    bx, by = x[idx], y[idx]
    out = []
    for f in (_ranks, lambda a: a):
        est = float(_corr_rows(f(x)[None, :], f(y)[None, :])[0])
        boot = _corr_rows(f(bx), f(by))
        boot = boot[np.isfinite(boot)]
        a = (1 - level) / 2
        low, high = (float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))) if boot.size else (None, None)
        out.append(Estimate(est, low, high, n))
    return out[0], out[1]


def calibrate(design: Design, result: ListenResult, *, n_resamples: int = 2000, seed: int = 0,
              level: float = 0.95) -> Calibration:
    """Every predictor of the design's clips against the listeners' clip means."""
    rated = {c: m for c, (m, _) in result.clip_mos.items()}
    keys = sorted({k for c in rated for k in design.clips[c].predictors})
    if not rated:
        return Calibration((), "no clip has listener ratings (no kept listener, or no ACR items)")
    if not keys:
        return Calibration((), "the runs carry no predictor scores (tts-eval ran with --no-mos)")
    sys_mos = {m.system: m.mos.estimate for m in result.mos if m.mos.estimate is not None}
    out = []
    for key in keys:
        clips = [c for c in sorted(rated) if key in design.clips[c].predictors]
        x = np.array([design.clips[c].predictors[key] for c in clips])
        y = np.array([rated[c] for c in clips])
        sp, pe = correlations(x, y, n_resamples=n_resamples, seed=seed, level=level)
        systems = sorted({design.clips[c].system for c in clips} & set(sys_mos))
        pred_mean = {s: float(np.mean([design.clips[c].predictors[key] for c in clips
                                       if design.clips[c].system == s])) for s in systems}
        sx = np.array([pred_mean[s] for s in systems])
        sy = np.array([sys_mos[s] for s in systems])
        ssp, spe = correlations(sx, sy, n_resamples=n_resamples, seed=seed, level=level, min_n=4)
        pairs, disagree = [], 0
        for i, a in enumerate(systems):
            for b in systems[i + 1:]:
                same = np.sign(pred_mean[a] - pred_mean[b]) == np.sign(sys_mos[a] - sys_mos[b])
                disagree += not same
                pairs.append({"a": a, "b": b, "predictor_a_minus_b": pred_mean[a] - pred_mean[b],
                              "listeners_a_minus_b": sys_mos[a] - sys_mos[b], "same_order": bool(same)})
        tau = None
        if len(systems) >= 2:
            from scipy.stats import kendalltau

            t = kendalltau(sx, sy).statistic
            tau = float(t) if math.isfinite(t) else None
        verdict, why = _verdict(sp, disagree, len(clips))
        out.append(PredictorCalibration(key, len(clips), sp, pe, ssp, spe, tau, tuple(pairs), verdict, why))
    return Calibration(tuple(out))


def _verdict(sp: Estimate, disagree: int, n: int) -> tuple[str, str]:
    if n < MIN_CLIPS or sp.low is None:
        return "n/a", f"only {n} rated clips (need {MIN_CLIPS}) or no correlation"
    if sp.low <= 0:
        return "untrusted", (f"per-clip Spearman {sp.estimate:.2f} [{sp.low:.2f}, {sp.high:.2f}] does not exclude "
                             "zero: it does not follow these listeners")
    if disagree:
        return "untrusted", f"it orders {disagree} pair(s) of systems against the listeners"
    if sp.low >= TRUST_LOW:
        return "trusted", f"per-clip Spearman >= {sp.low:.2f} and the same system order as the listeners"
    return "weak", (f"per-clip Spearman {sp.estimate:.2f} [{sp.low:.2f}, {sp.high:.2f}]: positive but weak; "
                    "use it to flag, not to decide")
