"""The gate verdict: every rule's result, the runs and the policy, as one record (``gate.json``).

Stage: the gate's output. :func:`evaluate_gate` opens and pairs two runs, evaluates the policy and
returns a :class:`GateVerdict`; :func:`format_table` renders it as text for the console;
:mod:`voxproof.gate.html` renders it as a page. The registry stores the verdict's dict.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof import __version__
from voxproof.errors import EXIT_FAILED, EXIT_OK
from voxproof.gate.policy import GatePolicy, load_policy
from voxproof.gate.rules import FAIL, INSUFFICIENT, NO_DATA, NOT_APPLICABLE, PASS, RuleResult, evaluate_rules

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GateVerdict:
    """The outcome of a gate: ``passed`` when no rule result is failing."""

    passed: bool
    rules: tuple[RuleResult, ...]
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    policy: dict[str, Any]
    normalizer: str
    notes: tuple[str, ...]
    created_at: str
    voxproof_version: str = __version__
    model_verification: dict[str, Any] | None = None  # the candidate model's checksum check (security/supply.py)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_FAILED

    def failing(self) -> list[RuleResult]:
        return [r for r in self.rules if r.failing]

    def rules_of(self, group: str) -> list[RuleResult]:
        return [r for r in self.rules if r.group == group]

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in (PASS, FAIL, NO_DATA, INSUFFICIENT, NOT_APPLICABLE)}
        for r in self.rules:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "gate_verdict", "schema": SCHEMA_VERSION, "passed": self.passed,
            "status": "pass" if self.passed else "fail",
            "failing_rules": [r.rule for r in self.failing()], "counts": self.counts(),
            "rules": [r.to_dict() for r in self.rules], "baseline": self.baseline, "candidate": self.candidate,
            "policy": self.policy, "normalizer": self.normalizer, "notes": list(self.notes),
            "created_at": self.created_at, "voxproof_version": self.voxproof_version,
            "model_verification": self.model_verification,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateVerdict:
        return cls(
            passed=bool(d["passed"]), rules=tuple(RuleResult.from_dict(r) for r in d.get("rules", [])),
            baseline=d.get("baseline", {}), candidate=d.get("candidate", {}), policy=d.get("policy", {}),
            normalizer=d.get("normalizer", ""), notes=tuple(d.get("notes", [])), created_at=d.get("created_at", ""),
            voxproof_version=d.get("voxproof_version", ""), model_verification=d.get("model_verification"),
        )

    def write_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return p


def read_verdict(path: str | Path) -> dict[str, Any]:
    """The dict of a ``gate.json`` file (or of the ``gate.json`` inside a gate output directory)."""
    from voxproof.errors import UsageError

    p = Path(path)
    if p.is_dir():
        p = p / "gate.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no gate verdict at {p}; run 'voxproof gate ... -o DIR' first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p} is not a readable gate verdict: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "gate_verdict":
        raise UsageError(f"{p} is not a gate verdict written by 'voxproof gate'")
    return data


def evaluate_gate(
    baseline: str | Path, candidate: str | Path, policy: GatePolicy | None = None,
) -> GateVerdict:
    """Evaluate ``policy`` (default: the shipped policy) for ``candidate`` against ``baseline`` (run
    directories). Raises :class:`~voxproof.errors.NotComparable` or a data error when the runs cannot
    be compared; a failed rule is part of the verdict, not an exception."""
    from voxproof.errors import UsageError
    from voxproof.gate.evidence import open_inputs

    policy = policy or load_policy()
    if not policy.rules():
        raise UsageError(f"the policy {policy.source} has no rule, so the gate would pass any candidate")
    inputs = open_inputs(baseline, candidate, normalizer=policy.normalizer)
    try:
        results = evaluate_rules(policy, inputs)
    finally:
        inputs.close()
    if all(r.verdict == NOT_APPLICABLE for r in results):
        raise UsageError(
            f"no rule of the policy {policy.source} ({', '.join(policy.rules())}) applies to {inputs.kind} runs, so "
            "the gate would decide nothing; add a rule for this kind of run"
        )
    return GateVerdict(
        passed=not any(r.failing for r in results), rules=tuple(results), baseline=inputs.baseline.to_dict(),
        candidate=inputs.candidate.to_dict(), policy=policy.to_dict(), normalizer=inputs.normalizer.label,
        notes=tuple(inputs.notes), created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


# -- text rendering (the CLI prints this) --------------------------------------------------------
def fmt_value(unit: str, x: float | None, *, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if unit == "wer":
        return f"{x * 100:+.2f} pts" if signed else f"{x * 100:.2f}%"
    if unit == "fraction":
        return f"{x:.1%}"
    if unit == "score":
        return f"{x:.3f}"
    if unit == "seconds":
        return f"{x:.3f}s"
    if unit == "money":
        return f"{x:.4g}"
    if unit == "words/min":
        return f"{x:+.2f} words/min" if signed else f"{x:.2f} words/min"
    return f"{x:.3g}"


PAIRED_UNITS = ("wer", "words/min")  # rules decided on a candidate-minus-baseline difference


def value_text(r: RuleResult) -> str:
    """The figure column: for WER rules, the change with both rates; otherwise the candidate's value."""
    if r.unit in PAIRED_UNITS and r.estimate is not None:
        return (f"{fmt_value(r.unit, r.estimate, signed=True)} ({fmt_value(r.unit, r.baseline)} -> "
                f"{fmt_value(r.unit, r.candidate)})")
    if r.candidate is not None:
        base = "" if r.baseline is None else f" (baseline {fmt_value(r.unit, r.baseline)})"
        return fmt_value(r.unit, r.candidate) + base
    return "-"


def interval_text(r: RuleResult) -> str:
    if r.interval is None or r.interval[0] is None or r.interval[1] is None:
        return "-"
    lo, hi = r.interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "-"
    signed = r.unit in PAIRED_UNITS
    return f"[{fmt_value(r.unit, lo, signed=signed)}, {fmt_value(r.unit, hi, signed=signed)}]"


def margin_text(r: RuleResult) -> str:
    if r.unit == "wer" and r.limit is not None and r.margin:
        resolved = fmt_value("wer", r.limit, signed=True)
        return r.margin if "baseline" not in r.margin else f"{r.margin} = {resolved}"
    return r.margin or "-"


VERDICT_LABEL = {PASS: "pass", FAIL: "FAIL", NO_DATA: "NO DATA", INSUFFICIENT: "too small",
                 NOT_APPLICABLE: "n/a"}


def format_table(verdict: GateVerdict) -> str:
    """The verdict as an aligned text table with a headline and the failing rules named."""
    header = ("rule", "value", "margin", "interval", "verdict")
    rows = [header] + [
        (r.rule, value_text(r), margin_text(r), interval_text(r),
         VERDICT_LABEL.get(r.verdict, r.verdict) + (" (fails gate)" if r.verdict == NO_DATA and r.failing else ""))
        for r in verdict.rules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    b, c = verdict.baseline, verdict.candidate
    lines.append(f"baseline:  {b.get('path')}  ({b.get('backend')} {_opts(b.get('options'))})")
    lines.append(f"candidate: {c.get('path')}  ({c.get('backend')} {_opts(c.get('options'))})")
    pol = verdict.policy
    lines.append(f"policy: {pol.get('source')}  decision: {pol.get('decision')} at {pol.get('confidence')}  "
                 f"normaliser: {verdict.normalizer}")
    lines.append("")
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for note in verdict.notes:
        lines.append(f"note: {note}")
    counts = verdict.counts()
    summary = ", ".join(f"{n} {VERDICT_LABEL[k]}" for k, n in counts.items() if n)
    if verdict.passed:
        lines.append(f"GATE PASSED ({summary})")
    else:
        lines.append(f"GATE FAILED ({summary})")
        for r in verdict.failing():
            lines.append(f"  failed: {r.rule}: {r.detail}")
    return "\n".join(lines)


def _opts(options: Any) -> str:
    if not options:
        return ""
    keep = {k: v for k, v in dict(options).items() if k in ("beam_size", "temperature", "compute_type", "language",
                                                              "best_of", "vad_filter", "batch_size")}
    return " ".join(f"{k}={v}" for k, v in keep.items())


# -- re-deriving a recorded verdict (the registry does this before a promotion) -------------------
def rederive(verdict: dict[str, Any]) -> tuple[GateVerdict, list[str]]:
    """Evaluate again the gate that ``verdict`` (a ``gate.json`` dict) claims to record: the same two
    runs (by path) under the policy it records, re-validated. Returns the new verdict and the list of
    disagreements with the recorded one (empty when they agree): pass/fail, each rule's verdict, and
    the runs' keys (a run changed since the gate, or the verdict names other runs than it was made on).

    Raises a :class:`~voxproof.errors.VoxproofError` when the runs or the policy cannot be used.
    """
    from voxproof.errors import UsageError
    from voxproof.gate.policy import policy_from_dict

    if not isinstance(verdict, dict) or verdict.get("type") != "gate_verdict":
        raise UsageError("not a gate verdict written by 'voxproof gate'")
    paths = {}
    for label in ("baseline", "candidate"):
        info = verdict.get(label)
        if not isinstance(info, dict) or not isinstance(info.get("path"), str) or not info["path"]:
            raise UsageError(f"the verdict does not name its {label} run")
        paths[label] = info["path"]
    policy = policy_from_dict(verdict.get("policy"))
    derived = evaluate_gate(paths["baseline"], paths["candidate"], policy)
    problems = []
    for label in ("baseline", "candidate"):
        claimed, actual = verdict[label].get("run_key"), getattr(derived, label).get("run_key")
        if claimed != actual:
            problems.append(f"the {label} run at {paths[label]} has key {actual}, the verdict says {claimed}")
    if bool(verdict.get("passed")) != derived.passed:
        problems.append(f"the verdict says {'passed' if verdict.get('passed') else 'failed'}, the runs give "
                        f"{'passed' if derived.passed else 'failed'}")
    claimed_rules = {r.get("rule"): r.get("verdict") for r in verdict.get("rules") or [] if isinstance(r, dict)}
    derived_rules = {r.rule: r.verdict for r in derived.rules}
    for rule in sorted(set(claimed_rules) | set(derived_rules), key=str):
        if claimed_rules.get(rule) != derived_rules.get(rule):
            problems.append(f"rule {rule}: recorded {claimed_rules.get(rule, 'absent')}, "
                            f"re-derived {derived_rules.get(rule, 'absent')}")
    return derived, problems
