"""Listening tests: console rendering of a scored test (the CLI prints these lines)."""

from __future__ import annotations

from typing import Any

from voxproof.listen.calibration import Calibration
from voxproof.listen.score import ListenResult


def _est(d: dict[str, Any], digits: int = 2) -> str:
    if d.get("estimate") is None:
        return f"n/a ({d.get('why') or 'undefined'})"
    if d.get("low") is None:
        ci = f" (interval n/a: {d['why']})" if d.get("why") else ""
    else:
        ci = f" [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"
    return f"{d['estimate']:.{digits}f}{ci}"


def _tau(x: float | None) -> str:
    return "n/a (fewer than 2 systems)" if x is None else f"{x:.2f}"


def result_lines(result: ListenResult, calib: Calibration | None = None) -> list[str]:
    d = result.to_dict()
    lines = []
    if result.simulated:
        lines.append(f"*** {d['simulated_listeners']} SIMULATED listener(s) included: figures test the scoring, "
                     "not the voices ***")
    lines.append(f"Listening test {result.test_id[:12]}: {len(d['answers']['files_used'])} answer file(s) used, "
                 f"{len(d['answers']['files_refused'])} refused")
    for r in d["answers"]["files_refused"]:
        lines.append(f"  refused {r['file']}: {r['reason']}")
    for f in d["answers"]["files_used"]:
        for p in f["problems"][:5]:
            lines.append(f"  {f['file']}: {p}")
        if len(f["problems"]) > 5:
            lines.append(f"  {f['file']}: ... {len(f['problems']) - 5} more problem(s)")
    lines.append("")
    lines.append("Screening")
    for s in d["screening"]:
        tag = " (simulated)" if s["simulated"] else ""
        status = "kept" if s["kept"] else "dropped: " + "; ".join(s["reasons"])
        lines.append(f"  {s['listener']:<24}{tag:<12} checks {s['checks']:<6} {status}")
        for w in s["warnings"]:
            lines.append(f"    warning: {w}")
    level = round(100 * result.level)
    lines.append("")
    lines.append(f"MOS (ACR 1-5) with {level}% two-way bootstrap interval (listeners x clips); t interval over votes")
    for m in d["mos"]:
        t = m["t_interval_votes"]
        tt = f"[{t[0]:.2f}, {t[1]:.2f}]" if t[0] is not None else "n/a"
        lines.append(f"  {m['system']:<20} {_est(m['mos']):<24} t {tt:<14} {m['votes']} votes, "
                     f"{m['listeners']} listeners, {m['clips']} clips")
    pref = d["preference"]
    lines.append("")
    if "strengths" in pref:
        lines.append("Preference (A/B), Bradley-Terry log-strength (centred on 0)")
        for s in pref["strengths"]:
            lines.append(f"  {s['system']:<20} {_est(s['log_strength'])}")
        for p in pref["pairs"]:
            lines.append(f"  P({p['a']} preferred over {p['b']}) = {_est(p['p_a_preferred'])}  "
                         f"(chosen {p['a_chosen']} vs {p['b_chosen']})")
    else:
        lines.append(f"Preference: n/a ({pref.get('why')})")
    lines.append("")
    lines.append("Agreement (Krippendorff's alpha): " + ", ".join(f"{k} {_est(v)}" for k, v in d["agreement"].items()))
    if calib is not None:
        lines.append("")
        if not calib.predictors:
            lines.append(f"Predictor calibration: n/a ({calib.why})")
        else:
            lines.append("Predictor calibration against the listeners (per clip; per system)")
            for p in calib.to_dict()["predictors"]:
                lines.append(f"  {p['predictor']:<10} clips {p['n_clips']:>3}  Spearman {_est(p['spearman'])}  "
                             f"Pearson {_est(p['pearson'])}  systems: Spearman {_est(p['system_spearman'])}, "
                             f"Kendall tau {_tau(p['kendall_tau_systems'])}")
                lines.append(f"             verdict: {p['verdict']} ({p['why']})")
    for w in d["warnings"]:
        lines.append(f"note: {w}")
    return lines
