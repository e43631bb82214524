"""Audit records: a ``Finding`` (kind, severity, utterance ids, evidence), the severity scale, and the
``FindingLog`` that holds an audit's findings on disk.

Every check stage hands back (or yields) findings; the runner appends them to a ``FindingLog`` in the
audit's SQLite store, which the JSON, HTML, datasheet and ``--fix`` writers stream. A corpus with a
finding on most items therefore costs disk, not memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class FindingSink(Protocol):
    """Where a stage puts findings as it finds them: a list, or an audit's ``FindingLog``."""

    def append(self, finding: Finding, /) -> None: ...

    def extend(self, findings: Iterable[Finding], /) -> None: ...


FINDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (seq INTEGER PRIMARY KEY, rank INTEGER NOT NULL, kind TEXT NOT NULL,
                                     data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS finding_targets (item TEXT NOT NULL, excluded INTEGER NOT NULL, seq INTEGER NOT NULL);
"""


def fix_targets(f: Finding) -> tuple[str, ...]:
    """The items ``--fix`` acts on: none for ``action='none'``; for ``exclude`` every member but the one a
    duplicate cluster keeps (``evidence['keep']``); for ``flag`` every member."""
    if f.action == "none":
        return ()
    if f.action == "exclude":
        keep = f.evidence.get("keep") if isinstance(f.evidence, dict) else None
        return tuple(i for i in f.items if i != keep)
    return f.items


class FindingLog:
    """An audit's findings, appended in order and kept in SQLite (tables ``findings`` and
    ``finding_targets`` of the given connection); memory holds a small write buffer and the counts.

    Iterating gives the findings in the order they were added; ``by_severity`` worst first (ties in
    order of addition); ``targets`` the findings that exclude or flag one item (for ``--fix``).
    """

    BUFFER = 2000

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        conn.executescript("DROP TABLE IF EXISTS findings; DROP TABLE IF EXISTS finding_targets;" + FINDINGS_SCHEMA)
        self._buffer: list[Finding] = []
        self._seq = 0
        self._counts = {s: 0 for s in SEVERITIES}
        self._indexed = False

    def append(self, finding: Finding) -> None:
        self._buffer.append(finding)
        self._counts[finding.severity] += 1
        if len(self._buffer) >= self.BUFFER:
            self.flush()

    def extend(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.append(f)

    def flush(self) -> None:
        if not self._buffer:
            return
        rows, targets = [], []
        for f in self._buffer:
            self._seq += 1
            rows.append((self._seq, severity_rank(f.severity), f.kind, json.dumps(f.to_dict(), ensure_ascii=False)))
            excluded = int(f.action == "exclude")
            targets.extend((item, excluded, self._seq) for item in fix_targets(f))
        with self.conn:
            self.conn.executemany("INSERT INTO findings VALUES (?, ?, ?, ?)", rows)
            self.conn.executemany("INSERT INTO finding_targets VALUES (?, ?, ?)", targets)
        self._buffer.clear()
        self._indexed = False

    def __len__(self) -> int:
        return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        """Findings per severity, every severity present (0 when none)."""
        return dict(self._counts)

    def count_at_or_above(self, severity: str) -> int:
        rank = severity_rank(severity)
        return sum(n for s, n in self._counts.items() if severity_rank(s) >= rank)

    def _select(self, sql: str, params: tuple = ()) -> Iterator[Finding]:
        self.flush()
        for (data,) in self.conn.execute(sql, params):
            yield Finding.from_dict(json.loads(data))

    def __iter__(self) -> Iterator[Finding]:
        return self._select("SELECT data FROM findings ORDER BY seq")

    def by_severity(self, limit: int | None = None, at_least: str = "info") -> Iterator[Finding]:
        """Worst first, ties in order of addition; at most ``limit``; only ``at_least`` or worse."""
        return self._select("SELECT data FROM findings WHERE rank >= ? ORDER BY rank DESC, seq LIMIT ?",
                            (severity_rank(at_least), -1 if limit is None else limit))

    def kinds(self) -> dict[str, tuple[int, int]]:
        """kind -> (findings, distinct items named by them)."""
        self.flush()
        out = {kind: (n, 0) for kind, n in self.conn.execute("SELECT kind, COUNT(*) FROM findings GROUP BY kind")}
        for kind, items in self.conn.execute(
                "SELECT f.kind, COUNT(DISTINCT j.value) FROM findings f, json_each(f.data, '$.items') j "
                "GROUP BY f.kind"):
            out[kind] = (out[kind][0], items)
        return out

    def targets(self, item: str) -> tuple[list[Finding], list[Finding]]:
        """(findings that exclude ``item``, findings that flag it), each in order of addition."""
        self.flush()
        if not self._indexed:
            self.conn.execute("CREATE INDEX IF NOT EXISTS finding_targets_item ON finding_targets (item)")
            self._indexed = True
        exclude: list[Finding] = []
        flag: list[Finding] = []
        for excluded, data in self.conn.execute(
                "SELECT t.excluded, f.data FROM finding_targets t JOIN findings f ON f.seq = t.seq "
                "WHERE t.item = ? ORDER BY t.seq", (item,)):
            (exclude if excluded else flag).append(Finding.from_dict(json.loads(data)))
        return exclude, flag
