"""Listening tests, stage 4: from answer files to figures.

- **Screening** (before anything is counted): a listener is left out who failed an attention check,
  answered none of the test's checks, or gave the same ACR rating to every one of 5+ clips
  (straight-lining). Rating the hidden reference (real speech) a point or more *below* the synthetic
  clips is reported as a warning, not a reason to exclude (a good voice can sound as natural).
- **MOS** per system: mean ACR rating of the kept listeners, with a two-way bootstrap interval
  (listeners and clips resampled together: votes by one listener or on one clip are not independent),
  and, for reference, the P.808-style t interval over votes, which ignores that dependence.
- **Preference**: a Bradley-Terry fit to the A/B choices (Hunter's MM algorithm, each compared pair
  given half a win each way as a weak prior so a system that always wins keeps a finite strength);
  log-strengths centred on 0 and P(i preferred over j), with intervals from the same two-way bootstrap
  (listeners x A/B items).
- **Agreement** between listeners: Krippendorff's alpha, interval metric on ACR ratings, nominal on
  A/B choices (1 perfect agreement, 0 chance level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxproof.listen.answers import AnswerSet, AnswersRead
from voxproof.listen.design import REFERENCE_SYSTEM, Design

STRAIGHT_LINE_MIN = 5
BT_PRIOR = 0.5


@dataclass(frozen=True)
class ListenerScreen:
    listener: str
    kept: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    simulated: bool
    checks_passed: int
    checks_answered: int

    def to_dict(self) -> dict[str, Any]:
        return {"listener": self.listener, "kept": self.kept, "reasons": list(self.reasons),
                "warnings": list(self.warnings), "simulated": self.simulated,
                "checks": f"{self.checks_passed}/{self.checks_answered}"}


@dataclass(frozen=True)
class Estimate:
    estimate: float | None
    low: float | None
    high: float | None
    n: int
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"estimate": _num(self.estimate), "low": _num(self.low), "high": _num(self.high), "n": self.n}
        if self.why:
            d["why"] = self.why
        return d


@dataclass(frozen=True)
class SystemMos:
    system: str
    mos: Estimate
    t_interval: tuple[float | None, float | None]
    votes: int
    listeners: int
    clips: int

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "mos": self.mos.to_dict(), "t_interval_votes": [_num(x) for x in self.t_interval],
                "votes": self.votes, "listeners": self.listeners, "clips": self.clips}


@dataclass(frozen=True)
class ListenResult:
    test_id: str
    screening: tuple[ListenerScreen, ...]
    mos: tuple[SystemMos, ...]
    preference: dict[str, Any]
    agreement: dict[str, Estimate]
    clip_mos: dict[int, tuple[float, int]]  # clip index -> (mean rating, votes)
    answers: AnswersRead
    level: float
    n_resamples: int
    seed: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def simulated(self) -> bool:
        return any(s.simulated for s in self.answers.sets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "voxproof_listening_result", "schema": 1, "test_id": self.test_id,
            "simulated_listeners": sum(1 for s in self.answers.sets if s.simulated),
            "real_listeners": sum(1 for s in self.answers.sets if not s.simulated),
            "bootstrap": {"level": self.level, "n_resamples": self.n_resamples, "seed": self.seed,
                          "method": "two-way percentile bootstrap (listeners x items)"},
            "answers": self.answers.to_dict(),
            "screening": [s.to_dict() for s in self.screening],
            "mos": [m.to_dict() for m in self.mos],
            "preference": self.preference,
            "agreement": {k: v.to_dict() for k, v in self.agreement.items()},
            "warnings": list(self.warnings),
        }


def screen(answers: AnswerSet, design: Design) -> ListenerScreen:
    """Whether one listener's answers are counted, and why not."""
    checks = [i for i in design.items if i.kind.endswith("-check")]
    passed = answered = 0
    reasons, warnings = [], []
    for it in checks:
        given = answers.ratings.get(it.id) if it.kind == "acr-check" else answers.choices.get(it.id)
        if given is None:
            continue
        answered += 1
        passed += given == it.expected
    if answered > passed:
        reasons.append(f"failed {answered - passed} of {answered} attention checks")
    if checks and answered == 0:
        reasons.append("answered none of the attention checks")
    kinds = {i.id: i for i in design.items}
    plain = [r for k, r in answers.ratings.items() if kinds[k].kind == "acr"]
    if len(plain) >= STRAIGHT_LINE_MIN and len(set(plain)) == 1:
        reasons.append(f"straight-lining: the same rating ({plain[0]}) for all {len(plain)} clips")
    ref = [r for k, r in answers.ratings.items() if kinds[k].kind == "acr"
           and design.clips[kinds[k].clips[0]].system == REFERENCE_SYSTEM]
    other = [r for k, r in answers.ratings.items() if kinds[k].kind == "acr"
             and design.clips[kinds[k].clips[0]].system != REFERENCE_SYSTEM]
    if ref and other and np.mean(ref) <= np.mean(other) - 1.0:
        warnings.append(f"rated the hidden reference (real speech) {np.mean(ref):.2f}, below the synthetic "
                        f"clips' {np.mean(other):.2f}")
    return ListenerScreen(answers.listener, not reasons, tuple(reasons), tuple(warnings), answers.simulated,
                          passed, answered)


def score_listening(design: Design, read: AnswersRead, *, n_resamples: int = 2000, seed: int = 0,
                    level: float = 0.95) -> ListenResult:
    """Screening, MOS, Bradley-Terry and agreement from the usable answer files."""
    from voxproof.metrics.intervals import check_settings

    check_settings(n_resamples, level)
    screens = tuple(screen(s, design) for s in read.sets)
    kept = [s for s, sc in zip(read.sets, screens) if sc.kept]
    rng = np.random.default_rng(seed)
    acr = [i for i in design.items if i.kind == "acr"]
    ab = [i for i in design.items if i.kind == "ab"]
    ratings = np.full((len(kept), len(acr)), np.nan)
    for li, s in enumerate(kept):
        for ci, it in enumerate(acr):
            if it.id in s.ratings:
                ratings[li, ci] = s.ratings[it.id]
    systems_of = [design.clips[i.clips[0]].system for i in acr]
    mos = []
    for system in sorted(set(systems_of)):
        cols = [c for c, s in enumerate(systems_of) if s == system]
        mos.append(_system_mos(system, ratings[:, cols], n_resamples, rng, level))
    clip_mos = {}
    for ci, it in enumerate(acr):
        col = ratings[:, ci]
        if np.any(~np.isnan(col)):
            clip_mos[it.clips[0]] = (float(np.nanmean(col)), int(np.sum(~np.isnan(col))))
    preference = _preference(design, ab, kept, n_resamples, rng, level)
    agreement = {"acr_interval": _alpha(ratings, interval=True)}
    if ab:
        choice = np.full((len(kept), len(ab)), np.nan)
        for li, s in enumerate(kept):
            for ci, it in enumerate(ab):
                if it.id in s.choices:
                    choice[li, ci] = 0.0 if s.choices[it.id] == "A" else 1.0
        agreement["ab_nominal"] = _alpha(choice, interval=False)
    warnings = []
    if not kept:
        warnings.append("no listener passed screening: no figure can be given")
    elif len(kept) < 5:
        warnings.append(f"only {len(kept)} listener(s) kept: intervals are rough (P.808 asks for many more)")
    if any(s.simulated for s in read.sets):
        warnings.append("SIMULATED listeners are included: these figures test the scoring, not the voices")
    return ListenResult(design.test_id, screens, tuple(mos), preference, agreement, clip_mos, read, level,
                        n_resamples, seed, tuple(warnings))


def _weights(rng: np.random.Generator, n_resamples: int, n: int) -> np.ndarray:
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float) if n else np.zeros((n_resamples, 0))


def _percentile(samples: np.ndarray, level: float) -> tuple[float | None, float | None]:
    s = samples[np.isfinite(samples)]
    if s.size < 0.5 * samples.size or s.size == 0 or np.ptp(s) == 0:
        return None, None  # nothing to resample, or every resample the same (all answers agree)
    a = (1.0 - level) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def _system_mos(system: str, votes: np.ndarray, n_resamples: int, rng, level: float) -> SystemMos:
    mask = ~np.isnan(votes)
    n = int(mask.sum())
    listeners = int(np.any(mask, axis=1).sum())
    clips = int(np.any(mask, axis=0).sum())
    if n == 0:
        return SystemMos(system, Estimate(None, None, None, 0, "no kept listener rated this system"),
                         (None, None), 0, 0, 0)
    v = np.where(mask, votes, 0.0)
    est = float(v.sum() / n)
    wl, wc = _weights(rng, n_resamples, votes.shape[0]), _weights(rng, n_resamples, votes.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.einsum("bl,lc,bc->b", wl, v, wc) / np.einsum("bl,lc,bc->b", wl, mask.astype(float), wc)
    low, high = _percentile(boot, level)
    why = "" if low is not None else "no spread: every resample gives the same mean"
    flat = votes[mask]
    t = (None, None)
    if n > 1:
        from scipy.stats import t as student

        half = float(student.ppf(0.5 + level / 2, n - 1) * flat.std(ddof=1) / math.sqrt(n))
        t = (max(est - half, 1.0), min(est + half, 5.0))  # the scale's ends
    return SystemMos(system, Estimate(est, low, high, n, why), t, n, listeners, clips)


def bradley_terry(wins: np.ndarray, iterations: int = 500, tol: float = 1e-10) -> np.ndarray:
    """Log-strengths (mean 0) from a wins matrix ``wins[i, j]`` = times i was preferred over j, with
    ``BT_PRIOR`` pseudo-wins each way for every pair that was compared. MM updates (Hunter 2004).
    A stack of matrices ``[..., k, k]`` is fitted at once (the bootstrap)."""
    w = np.asarray(wins, dtype=float)
    compared = (w + np.swapaxes(w, -1, -2)) > 0
    w = w + BT_PRIOR * compared
    games = w + np.swapaxes(w, -1, -2)
    total = w.sum(axis=-1)
    p = np.ones(w.shape[:-1])
    for _ in range(iterations):
        denom = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), p)
        new = np.where(new > 0, new, 1e-12)
        new = new / np.exp(np.mean(np.log(new), axis=-1, keepdims=True))
        done = np.max(np.abs(new - p)) < tol
        p = new
        if done:
            break
    return np.log(p)


def _preference(design: Design, ab, kept, n_resamples: int, rng, level: float) -> dict[str, Any]:
    names = sorted({design.clips[c].system for it in ab for c in it.clips})
    if not ab or len(names) < 2:
        return {"why": "no A/B items in this test"}
    idx = {s: k for k, s in enumerate(names)}
    # outcome tensor: listener x item -> winner/loser indexes
    events = []  # (listener, item, winner, loser)
    for li, s in enumerate(kept):
        for ii, it in enumerate(ab):
            c = s.choices.get(it.id)
            if c is None:
                continue
            a, b = (design.clips[k].system for k in it.clips)
            win, lose = (a, b) if c == "A" else (b, a)
            events.append((li, ii, idx[win], idx[lose]))
    if not events:
        return {"systems": names, "why": "no kept listener answered an A/B item"}
    ev = np.array(events)
    k = len(names)

    raw = np.zeros((k, k))
    np.add.at(raw, (ev[:, 2], ev[:, 3]), 1.0)
    est = bradley_terry(raw)
    wl, wi = _weights(rng, n_resamples, len(kept)), _weights(rng, n_resamples, len(ab))
    weights = wl[:, ev[:, 0]] * wi[:, ev[:, 1]]  # resample x event
    stack = np.zeros((n_resamples, k, k))
    for e, (_, _, win, lose) in enumerate(events):
        stack[:, win, lose] += weights[:, e]
    boot = bradley_terry(stack)
    strengths = []
    for s, j in idx.items():
        low, high = _percentile(boot[:, j], level)
        why = "" if low is not None else "no spread: every resample gives the same fit (all choices agree)"
        strengths.append({"system": s, "log_strength": Estimate(float(est[j]), low, high,
                                                                int(raw[j].sum() + raw[:, j].sum()), why).to_dict()})
    pairs = []
    for a, b in ((x, y) for x in names for y in names if x < y):
        i, j = idx[a], idx[b]
        n = int(raw[i, j] + raw[j, i])
        prob = 1 / (1 + np.exp(-(boot[:, i] - boot[:, j])))
        low, high = _percentile(prob, level)
        why = "" if low is not None else "no spread: every resample gives the same fit (all choices agree)"
        pairs.append({"a": a, "b": b, "n": n, "a_chosen": int(raw[i, j]), "b_chosen": int(raw[j, i]),
                      "p_a_preferred": Estimate(float(1 / (1 + math.exp(-(est[i] - est[j])))), low, high, n,
                                                         why).to_dict()})
    return {"systems": names, "strengths": strengths, "pairs": pairs, "prior_pseudo_wins": BT_PRIOR}


def _alpha(values: np.ndarray, *, interval: bool) -> Estimate:
    """Krippendorff's alpha over coders (rows) x units (columns), NaN = not rated."""
    cols = [values[~np.isnan(values[:, u]), u] for u in range(values.shape[1])]
    cols = [c for c in cols if c.size >= 2]
    if values.shape[0] < 2 or not cols:
        return Estimate(None, None, None, 0, "needs two or more kept listeners rating the same items")

    def delta(x: np.ndarray) -> np.ndarray:
        d = x[:, None] - x[None, :]
        return d ** 2 if interval else (d != 0).astype(float)

    n = sum(c.size for c in cols)
    d_o = sum(delta(c).sum() / (c.size - 1) for c in cols) / n
    pooled = np.concatenate(cols)
    if interval:
        d_e = 2 * n * np.sum((pooled - pooled.mean()) ** 2) / (n * (n - 1))
    else:
        _, counts = np.unique(pooled, return_counts=True)
        d_e = (n * n - np.sum(counts ** 2)) / (n * (n - 1))
    if d_e == 0:
        return Estimate(None, None, None, len(cols), "every rating is the same: agreement is undefined")
    return Estimate(float(1 - d_o / d_e), None, None, len(cols))


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
