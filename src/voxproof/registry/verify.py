"""Confirming a recorded gate verdict before a promotion: the gate is evaluated again from its runs.

Stage: between the registry's stored verdicts and :meth:`voxproof.registry.Registry.promote`. A
``gate.json`` is a file anyone can edit, so a recorded ``"passed": true`` is not trusted: the gate is
re-derived from the two run directories it names, under the policy it records (validated again), and
must agree rule by rule; the two runs must also be the ones attached to the two versions. Disagreement,
or runs that cannot be read here, raises :class:`~voxproof.registry.models.UnconfirmedVerdict`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from typing import Any

from voxproof.errors import VoxproofError
from voxproof.registry.models import REDERIVED, GateRecord, UnconfirmedVerdict

# (gate record, run keys attached to the candidate, run keys attached to the baseline) -> details
Verifier = Callable[[GateRecord, Collection[str], Collection[str]], dict[str, Any]]


def rederive_gate(gate: GateRecord, candidate_keys: Collection[str], baseline_keys: Collection[str]) -> dict[str, Any]:
    """Re-derive ``gate``'s verdict from its runs; the details to record, or :class:`UnconfirmedVerdict`."""
    from voxproof.gate.verdict import rederive

    try:
        derived, problems = rederive(gate.verdict)
    except VoxproofError as exc:
        raise UnconfirmedVerdict(f"it cannot be re-derived from its runs here ({type(exc).__name__}: {exc})") from exc
    for label, version, keys in (("candidate", gate.candidate, candidate_keys),
                                 ("baseline", gate.baseline, baseline_keys)):
        info = getattr(derived, label)
        if info.get("run_key") not in keys:
            problems.append(f"its {label} run {info.get('path')} (key {info.get('run_key')}) is not a run attached to "
                            f"{version!r} (attach it with 'voxproof registry attach-run')")
    if problems:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise UnconfirmedVerdict(f"re-deriving it from its runs disagrees: {shown}")
    policy = json.dumps(derived.policy, sort_keys=True, default=str)
    return {
        "method": REDERIVED, "passed": derived.passed,
        "baseline_run_key": derived.baseline.get("run_key"), "candidate_run_key": derived.candidate.get("run_key"),
        "policy_source": derived.policy.get("source"),
        "policy_sha256": hashlib.sha256(policy.encode()).hexdigest()[:16],
        "rules": len(derived.rules),
    }
