"""Registry records: model versions, aliases, attached runs, gate verdicts and the history log.

Every record is a frozen dataclass with ``to_dict``; the store (:mod:`voxproof.registry.store`) builds
them from table rows and the CLI and the model card render them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from voxproof.errors import EXIT_FAILED, UsageError, VoxproofError

PRODUCTION = "production"
PREVIOUS = "previous"
CANARY = "canary"
# Aliases the registry moves itself: production through promote/rollback, previous automatically.
MANAGED_ALIASES = (PRODUCTION, PREVIOUS)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,127}$")


class RegistryError(VoxproofError):
    """The registry could not be opened or read (bad URL, unreachable server, corrupt file)."""


class PromotionRefused(VoxproofError):
    """A promotion the registry will not make: no passing gate verdict against the current production.

    Exit code 1 (a failed decision, like a failing gate), not a usage error.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, version: str | None = None, production: str | None = None,
                 gate_id: int | None = None):
        super().__init__(message)
        self.version = version
        self.production = production
        self.gate_id = gate_id


class UnconfirmedVerdict(VoxproofError):
    """A recorded gate verdict could not be confirmed from its runs (edited, runs changed or missing)."""

    exit_code = EXIT_FAILED


# How the verdict behind a promotion was established (recorded in the history as details["verdict"]).
REDERIVED = "re-derived"  # the gate evaluated again from the two runs gave the same verdict
FORCED = "forced"  # promoted with --force and a reason, without a confirmed passing verdict
FIRST = "first-production"  # nothing to compare against


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a valid version or alias name, else :class:`UsageError` saying what is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits and . _ : @ + -, starting with a "
            "letter or digit"
        )
    return name


def check_text(**fields: str | None) -> None:
    """:class:`UsageError` for a text field the registry would store differently per engine: a NUL byte
    (PostgreSQL refuses it, SQLite keeps it) or characters that are not valid UTF-8 (lone surrogates
    from undecodable command-line bytes). Both engines refuse the same values with the same message."""
    for name, value in fields.items():
        if value is None:
            continue
        if "\x00" in value:
            raise UsageError(f"{name} contains a NUL byte; remove it")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{name} is not valid UTF-8 text (was it typed in another encoding?)") from None


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version: which backend, with which options, which model file (checksum)."""

    name: str
    kind: str  # "asr" | "tts"
    backend: str
    options: dict[str, Any]
    model_checksum: str | None
    notes: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AttachedRun:
    """A run linked to a version. ``summary`` is a snapshot taken when it was attached (the run directory
    may later move or live on another machine); ``run_key`` identifies what the rows mean."""

    id: int
    version: str
    path: str
    run_key: str
    role: str
    summary: dict[str, Any]
    attached_at: str
    attached_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateRecord:
    """A gate verdict of ``candidate`` against ``baseline`` (both registered versions)."""

    id: int
    candidate: str
    baseline: str
    passed: bool
    verdict: dict[str, Any]
    path: str | None
    created_at: str
    created_by: str

    def failed_rules(self) -> list[str]:
        return [r.get("rule", "?") for r in self.verdict.get("rules", []) if r.get("verdict") == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the append-only log: who did what, when and why."""

    seq: int
    at: str
    actor: str
    action: str
    version: str | None
    alias: str | None
    from_version: str | None
    to_version: str | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One human-readable line: what happened (without who, when and why)."""
        d = self.details
        if self.action == "register":
            return f"registered {self.version} ({d.get('backend', '?')}, {d.get('kind', '?')})"
        if self.action == "attach-run":
            return f"attached run #{d.get('run_id')} ({d.get('role')}) {d.get('path')} to {self.version}"
        if self.action == "attach-gate":
            state = "passed" if d.get("passed") else "FAILED (" + ", ".join(d.get("failed_rules") or []) + ")"
            return f"gate #{d.get('gate_id')}: {self.to_version} vs {self.from_version} {state}"
        if self.action == "set-alias":
            return f"alias {self.alias}: {self.from_version or '-'} -> {self.to_version}"
        if self.action == "remove-alias":
            return f"removed alias {self.alias} (was {self.from_version})"
        if self.action == "promote":
            forced = " FORCED without a confirmed passing gate" if d.get("forced") else ""
            how = ", verdict re-derived from the runs" if d.get("verdict") == REDERIVED else ""
            gate = f" (gate #{d['gate_id']}{how})" if d.get("gate_id") and not d.get("forced") else ""
            return f"promoted {self.to_version} to production (was {self.from_version or '-'}){gate}{forced}"
        if self.action == "promote-refused":
            gate = f"gate #{d['gate_id']} failed" if d.get("gate_id") else "no gate verdict"
            return f"promotion of {self.to_version} over {self.from_version} REFUSED ({gate})"
        if self.action == "rollback":
            return f"rolled production back from {self.from_version} to {self.to_version}"
        return f"{self.action} {self.version or ''}".strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AliasChange:
    """What a promote or rollback did: ``production`` moved from ``from_version`` to ``to_version``."""

    action: str
    from_version: str | None
    to_version: str
    previous: str | None
    forced: bool = False
    gate_id: int | None = None
    established: str | None = None  # REDERIVED, FORCED or FIRST for a promotion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionDetails:
    """Everything the registry knows about one version (for ``show`` and the model card)."""

    version: ModelVersion
    aliases: tuple[str, ...]
    runs: tuple[AttachedRun, ...]
    gates: tuple[GateRecord, ...]
    history: tuple[HistoryEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "aliases": list(self.aliases),
            "runs": [r.to_dict() for r in self.runs],
            "gates": [g.to_dict() for g in self.gates],
            "history": [h.to_dict() for h in self.history],
        }
