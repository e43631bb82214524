"""Release gate: a TOML policy of what must hold for a candidate against a baseline, evaluated on two runs.

``evaluate_gate(baseline_dir, candidate_dir, policy) -> GateVerdict``; the verdict is written as
``gate.json`` and ``gate.html`` by ``voxproof gate`` and recorded in the registry.
"""

from voxproof.gate.policy import GatePolicy, SliceLimits, WerLimit, load_policy, parse_policy
from voxproof.gate.rules import RuleResult
from voxproof.gate.verdict import GateVerdict, evaluate_gate, format_table, read_verdict

__all__ = [
    "GatePolicy", "GateVerdict", "RuleResult", "SliceLimits", "WerLimit", "evaluate_gate", "format_table",
    "load_policy", "parse_policy", "read_verdict",
]
