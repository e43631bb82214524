"""Why a figure of a run summary is undefined, recorded next to it.

Stage: report, between the metrics and every view of summary.json. A figure that cannot be computed
(a word AUROC when every word is right, an interval from one utterance, a speed with no timed row,
robustness with one condition) is ``null`` in summary.json and its object carries a ``reasons`` map,
``{"auroc_error": "every word is right: no wrong word to find"}``; the console and HTML read that map
and print ``n/a (why)``. :func:`explain_summary` is the one place these reasons are written, from the
counts the summary already holds; it also turns any stray nan/inf into ``null`` so the file is JSON.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from typing import Any

ONE_CONDITION = ("one condition: robustness compares perturbed conditions with clean "
                 "(add --suite or --perturb)")
NO_WORDS = "no reference words to score"


def _set(obj: MutableMapping[str, Any], key: str, reason: str) -> None:
    obj.setdefault("reasons", {})[key] = reason


def _null(obj: MutableMapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def explain_interval(iv: Any, *, what: str = "utterances") -> None:
    """An interval dict (``estimate``, ``low``, ``high``, ``n_units``, ``blocked_by``): an estimate
    from no words, or a "bootstrap" over fewer than two units, is undefined and says why."""
    if not isinstance(iv, MutableMapping) or "estimate" not in iv:
        return
    if _null(iv, "estimate"):
        iv["estimate"] = iv["low"] = iv["high"] = None
        _set(iv, "estimate", NO_WORDS)
        return
    units = iv.get("n_units")
    kind = "speakers" if iv.get("blocked_by") == "speaker" else what
    if isinstance(units, int) and units < 2:
        iv["low"] = iv["high"] = None
        _set(iv, "interval", f"{units} {kind[:-1] if units == 1 else kind}, nothing to resample")
    elif _null(iv, "low") or _null(iv, "high"):
        iv["low"] = iv["high"] = None
        _set(iv, "interval", "no bootstrap resample had reference words")


def _explain_condition(cond: MutableMapping[str, Any]) -> None:
    explain_interval(cond.get("wer"))
    explain_interval(cond.get("cer"))
    ok = (cond.get("coverage") or {}).get("ok", 0)
    why = "no successfully decoded rows" if not ok else NO_WORDS
    for key in ("raw_wer", "mer", "wil", "mean_utterance_wer"):
        if key in cond and _null(cond, key):
            cond[key] = None
            _set(cond, key, why)
    for s in cond.get("slices") or ():
        explain_interval(s.get("wer"))
    for g in cond.get("gaps") or ():
        explain_interval(g.get("gap"))


def ranking_reason(name: str, n: int, error_rate: float | None) -> str:
    """Why AUROC/AUPRC of wrong items is undefined at one calibration level (``word``, ``utterance``)."""
    if not n:
        return f"no {name}s with a confidence"
    if error_rate == 0:
        return f"every {name} is right, so there is no wrong {name} to find"
    if error_rate == 1:
        return f"every {name} is wrong, so there is no right {name} to rank against"
    return "not computable from these confidences"


def _explain_scores(level: MutableMapping[str, Any]) -> None:
    """One calibration level (word or utterance)."""
    name = level.get("level", "item")
    n = level.get("n") or 0
    one_class = ranking_reason(name, n, level.get("error_rate"))
    for key in ("auroc_error", "auprc_error"):
        if _null(level, key):
            level[key] = None
            _set(level, key, one_class)
    for key in ("ece", "mce", "ece_equal_mass", "brier", "accuracy", "mean_confidence", "error_rate",
                "auprc_chance"):
        if key in level and _null(level, key):
            level[key] = None
            _set(level, key, f"no {name}s with a confidence")
    intervals = level.get("intervals")
    if isinstance(intervals, MutableMapping):
        for key in ("ece", "brier", "auroc_error", "auprc_error"):
            pair = intervals.get(key)
            if pair is None or any(v is None for v in pair):
                intervals.pop(key, None)
                _set(level, f"{key}_interval", one_class if key.startswith("au") else "bootstrap not run")


def _explain_calibration(cal: Any) -> None:
    if not isinstance(cal, MutableMapping) or cal.get("available") is False:
        return
    counters = cal.get("counters") or {}
    for key in ("word", "utterance"):
        level = cal.get(key)
        if isinstance(level, MutableMapping):
            _explain_scores(level)
        elif key in cal:
            _set(cal, key, f"no {key}s with a confidence from the backend")
    if _null(cal, "utterance_spearman") and "utterance_spearman" in cal:
        cal["utterance_spearman"] = None
        have = counters.get("utterances_with_confidence", 0)
        _set(cal, "utterance_spearman",
             f"needs 3 utterances with reference words and a confidence (have {have})" if have < 3 else
             "utterance confidence or accuracy does not vary: a rank correlation is undefined")
    for key in ("review_budget", "review_budget_min_word"):
        if key in cal and cal[key] is None:
            _set(cal, key, "no reference words or no confidences to order utterances by")


def _explain_latency(latency: Any) -> None:
    if not isinstance(latency, MutableMapping):
        return
    for cond in latency.values():
        if not isinstance(cond, MutableMapping) or cond.get("available") is False:
            continue
        n = cond.get("n") or 0
        for key in ("rtfx_interval", "cpu_rtfx_interval"):
            pair = cond.get(key)
            if isinstance(pair, list) and n < 2 and pair:
                cond[key] = None
                _set(cond, key, f"{n} timed utterance: an interval needs 2 or more")
        if cond.get("cpu_rtfx") is None and "cpu_rtfx" in cond:
            _set(cond, "cpu_rtfx", "the run recorded no CPU time per utterance")
            cond.setdefault("cpu_rtfx_interval", None)
        if cond.get("model_load_seconds") is None and "model_load_seconds" in cond:
            _set(cond, "model_load_seconds", "the backend reports no load time")


def _explain_deployment(dep: Any) -> None:
    if not isinstance(dep, MutableMapping) or dep.get("available") is False:
        return
    notes = dep.get("notes") or {}
    for key, default in (("cost", "the run recorded no wall time or no timed rows"),
                         ("efficiency", "the model file is not one voxproof can inspect")):
        if key in dep and dep[key] is None:
            _set(dep, key, notes.get(key) or default)
    if dep.get("latency") is None and "latency" in dep:
        _set(dep, "latency", notes.get("latency") or "no timed rows")


def _finite(value: Any, path: str, found: list[str]) -> Any:
    """nan/inf anywhere -> None (the path is recorded so a reason can be given)."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path)
        return None
    if isinstance(value, MutableMapping):
        for k in list(value):
            value[k] = _finite(value[k], f"{path}.{k}", found)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            value[i] = _finite(v, f"{path}[{i}]", found)
    return value


def explain_summary(summary: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Give every undefined figure of a run summary a reason (in place; also returned)."""
    scores = summary.get("scores") or {}
    for cond in scores.get("conditions") or ():
        _explain_condition(cond)
    _explain_latency(summary.get("latency"))
    _explain_calibration(summary.get("calibration"))
    _explain_deployment(summary.get("deployment"))
    if summary.get("robustness") is None:
        n = len(scores.get("conditions") or ())
        summary["robustness"] = {"available": False, "reason": ONE_CONDITION if n < 2 else "not computed"}
    found: list[str] = []
    _finite(summary, "", found)
    if found:
        summary.setdefault("reasons", {}).update({p.lstrip("."): "not a finite number" for p in found})
    return summary
