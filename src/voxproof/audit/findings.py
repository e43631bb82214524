"""Audit records: a ``Finding`` (kind, severity, utterance ids, evidence) and the severity scale.

Every check stage hands back findings; the runner collects them into an ``AuditResult`` that the JSON,
HTML, datasheet and ``--fix`` writers read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxproof.errors import UsageError

SEVERITIES = ("info", "low", "medium", "high", "critical")
SCHEMA_VERSION = 1


def severity_rank(severity: str) -> int:
    """0 for info up to 4 for critical; a bad name raises :class:`UsageError` listing the valid ones."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise UsageError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}") from None


@dataclass(frozen=True, slots=True)  # slots: an audit of a large corpus holds many findings
class Finding:
    """One audit result.

    ``kind`` is a stable dotted name (``signal.clipping``, ``duplicate.near``, ``pii.email``...);
    ``items`` are the utterance ids involved (a cluster's members for duplicates); ``evidence`` holds
    the numbers behind the verdict (never personal data in full: it is masked by the PII stage);
    ``action`` is what ``--fix`` does with the items: ``exclude``, ``flag`` or ``none``.
    """

    kind: str
    severity: str
    items: tuple[str, ...]
    message: str
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    action: str = "flag"

    def __post_init__(self) -> None:
        severity_rank(self.severity)
        if self.action not in ("exclude", "flag", "none"):
            raise ValueError(f"action must be exclude, flag or none, got {self.action!r}")

    @property
    def stage(self) -> str:
        return self.kind.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "items": list(self.items),
            "message": self.message,
            "evidence": self.evidence,
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            kind=str(data["kind"]),
            severity=str(data["severity"]),
            items=tuple(str(i) for i in data.get("items", ())),
            message=str(data.get("message", "")),
            evidence=dict(data.get("evidence") or {}),
            action=str(data.get("action", "flag")),
        )


def at_or_above(findings: list[Finding], severity: str) -> list[Finding]:
    """Findings whose severity is ``severity`` or worse."""
    rank = severity_rank(severity)
    return [f for f in findings if severity_rank(f.severity) >= rank]


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    out = {s: 0 for s in SEVERITIES}
    for f in findings:
        out[f.severity] += 1
    return out
