"""The run store: one SQLite file (WAL) per run directory holding provenance, conditions and result rows.

Rows are committed one by one as they finish, so a run killed at any point (even ``kill -9``) keeps
every finished row, and a resumed run skips them. Per-utterance alignment counts are cached per
normaliser so re-scoring never re-aligns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from voxproof.backends.base import Transcript
from voxproof.errors import RunError
from voxproof.metrics.counts import ErrorCounts
from voxproof.run.records import ResultRow

STORE_NAME = "run.sqlite"
STORE_SCHEMA = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conditions (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL, spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    utt_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    reference TEXT,
    hypothesis TEXT,
    transcript TEXT,
    audio_duration REAL,
    processing_time REAL,
    error_type TEXT,
    error_message TEXT,
    speaker TEXT,
    tags TEXT NOT NULL,
    perturbation TEXT NOT NULL,
    features TEXT NOT NULL,
    extras TEXT NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (utt_id, condition)
);
CREATE TABLE IF NOT EXISTS counts (
    utt_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    normalizer TEXT NOT NULL,
    level TEXT NOT NULL,
    hits INTEGER NOT NULL,
    substitutions INTEGER NOT NULL,
    deletions INTEGER NOT NULL,
    insertions INTEGER NOT NULL,
    PRIMARY KEY (utt_id, condition, normalizer, level)
);
"""


def store_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STORE_NAME


class RunStore:
    """Access to one run's SQLite file. Safe to share between threads (one lock around writes)."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: str | Path, provenance: dict[str, Any]) -> RunStore:
        """A new store in ``run_dir`` (created if needed). Refuses a directory that already has one."""
        path = store_path(run_dir)
        if path.exists():
            raise RunError(f"{path} already exists; pass --resume to continue it or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, _connect(path))
        with store._conn:
            store._conn.executescript(_SCHEMA)
            store._set_meta("store_schema", STORE_SCHEMA)
            store._set_meta("provenance", provenance)
            store._set_meta("created_at", time.time())
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """The existing store of ``run_dir`` (a run directory or the ``run.sqlite`` file itself)."""
        path = Path(run_dir)
        if path.is_dir():
            path = store_path(path)
        if not path.exists():
            raise RunError(f"no run found at {run_dir} (expected {path}); run 'voxproof eval -o DIR' first")
        try:
            conn = _connect(path)
            conn.execute("SELECT value FROM meta WHERE key='store_schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RunError(f"{path} is not a readable voxproof run store: {exc}") from exc
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ----------------------------------------------------------------------------
    def _set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock, self._conn:
            self._set_meta(key, value)

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta("provenance", {})

    # -- conditions --------------------------------------------------------------------------
    def set_conditions(self, conditions: Iterable[tuple[str, Any]]) -> None:
        """Record the run's conditions in order: (name, JSON-serialisable spec)."""
        with self._lock, self._conn:
            for position, (name, spec) in enumerate(conditions):
                self._conn.execute(
                    "INSERT INTO conditions(name, position, spec) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, position=excluded.position",
                    (name, position, json.dumps(spec, sort_keys=True)),
                )

    def conditions(self) -> list[tuple[str, Any]]:
        cur = self._conn.execute("SELECT name, spec FROM conditions ORDER BY position")
        return [(name, json.loads(spec)) for name, spec in cur]

    # -- rows --------------------------------------------------------------------------------
    def done_keys(self) -> set[tuple[str, str]]:
        """(utt_id, condition) of every stored row."""
        return set(self._conn.execute("SELECT utt_id, condition FROM rows"))

    def add_row(self, row: ResultRow, position: int) -> None:
        """Store one row and commit at once. ``position`` is the utterance's index in the manifest,
        so rows read back in manifest order whatever order workers finished in."""
        values = (
            row.utt_id, row.condition, position, row.status, row.reference, row.hypothesis,
            None if row.transcript is None else json.dumps(row.transcript.to_dict()),
            row.audio_duration, row.processing_time, row.error_type, row.error_message, row.speaker,
            json.dumps(row.tags, sort_keys=True), json.dumps(list(row.perturbation), sort_keys=True),
            json.dumps(row.features, sort_keys=True), json.dumps(row.extras, sort_keys=True), time.time(),
        )
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO rows VALUES (" + ",".join("?" * len(values)) + ")", values
            )

    def rows(self, condition: str | None = None) -> Iterator[ResultRow]:
        """Stored rows in manifest order (conditions in their recorded order), optionally one condition."""
        sql = (
            "SELECT r.* FROM rows r LEFT JOIN conditions c ON c.name = r.condition"
            + (" WHERE r.condition = ?" if condition is not None else "")
            + " ORDER BY COALESCE(c.position, 1e9), r.condition, r.position"
        )
        cur = self._conn.execute(sql, () if condition is None else (condition,))
        names = [d[0] for d in cur.description]
        for values in cur:
            yield _row_from_db(dict(zip(names, values)))

    def count_rows(self, status: str | None = None) -> int:
        if status is None:
            return self._conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
        return self._conn.execute("SELECT COUNT(*) FROM rows WHERE status=?", (status,)).fetchone()[0]

    # -- cached alignment counts -------------------------------------------------------------
    def cached_counts(self, normalizer: str, level: str) -> dict[tuple[str, str], ErrorCounts]:
        cur = self._conn.execute(
            "SELECT utt_id, condition, hits, substitutions, deletions, insertions FROM counts "
            "WHERE normalizer=? AND level=?",
            (normalizer, level),
        )
        return {(u, c): ErrorCounts(h, s, d, i) for u, c, h, s, d, i in cur}

    def save_counts(self, normalizer: str, level: str, counts: dict[tuple[str, str], ErrorCounts]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (u, c, normalizer, level, k.hits, k.substitutions, k.deletions, k.insertions)
                    for (u, c), k in counts.items()
                ],
            )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _row_from_db(d: dict[str, Any]) -> ResultRow:
    return ResultRow(
        utt_id=d["utt_id"],
        condition=d["condition"],
        status=d["status"],
        reference=d["reference"],
        hypothesis=d["hypothesis"],
        transcript=None if d["transcript"] is None else Transcript.from_dict(json.loads(d["transcript"])),
        audio_duration=d["audio_duration"],
        processing_time=d["processing_time"],
        error_type=d["error_type"],
        error_message=d["error_message"],
        speaker=d["speaker"],
        tags=json.loads(d["tags"]),
        perturbation=tuple(json.loads(d["perturbation"])),
        features=json.loads(d["features"]),
        extras=json.loads(d["extras"]),
    )
