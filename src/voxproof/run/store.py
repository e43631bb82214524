"""The run store: one SQLite file (WAL) per run directory holding provenance, conditions and result rows.

Rows are committed one by one as they finish, so a run killed at any point (even ``kill -9``) keeps
every finished row, and a resumed run skips them. Per-utterance alignment counts are cached per
normaliser so re-scoring never re-aligns.

Opening checks what it opens: a regular file, the four tables, a store schema this version reads (a
newer one is refused). A store that cannot be written (read-only file or directory) is opened
read-only: it can be scored and gated, and the count cache is simply not kept. Damage found while
reading (a truncated file, flipped bytes, a dropped table, a row whose JSON does not parse) raises
:class:`CorruptRunStore` saying what can still be recovered; a full disk while writing says so.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from voxproof.backends.base import Transcript
from voxproof.errors import RunError
from voxproof.metrics.counts import ErrorCounts
from voxproof.run.records import ResultRow

log = logging.getLogger("voxproof.run")

STORE_NAME = "run.sqlite"
STORE_SCHEMA = 1
_TABLES = ("meta", "conditions", "rows", "counts")


class CorruptRunStore(RunError):
    """A run store that is damaged or is not a voxproof run store; the message says what is recoverable."""

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

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool = False):
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self.readonly = readonly

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: str | Path, provenance: dict[str, Any]) -> RunStore:
        """A new store in ``run_dir`` (created if needed). Refuses a directory that already has one."""
        path = store_path(run_dir)
        if path.exists():
            raise RunError(f"{path} already exists; pass --resume to continue it or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            store = cls(path, _connect(path))
        except sqlite3.DatabaseError as exc:
            raise _write_error(path, exc) from exc
        with store._writing():
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
        if path.is_dir():
            raise CorruptRunStore(f"{path} is a directory, not a run store file; nothing to recover from it")
        if not path.is_file():
            raise CorruptRunStore(f"{path} is not a regular file (a device, FIFO or socket), so not a run store")
        conn, readonly = _open_connection(path)
        store = cls(path, conn, readonly=readonly)
        try:
            store._check()
        except BaseException:
            conn.close()
            raise
        return store

    def _check(self) -> None:
        """Refuse what is not a readable voxproof run store of a schema this version knows."""
        with self._reading():
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" not in tables:
                raise CorruptRunStore(f"{self.path} is not a voxproof run store (it has no meta table); "
                                      f"{_recoverable(self.path)}")
            row = self._conn.execute("SELECT value FROM meta WHERE key='store_schema'").fetchone()
        try:
            version = json.loads(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CorruptRunStore(f"{self.path} has no valid store schema version ({None if row is None else row[0]!r}); "
                                  f"{_recoverable(self.path)}")
        if version > STORE_SCHEMA:
            raise RunError(f"{self.path} was written by a newer voxproof (run store schema {version}; this version "
                           f"reads schema {STORE_SCHEMA}); upgrade voxproof to read it")
        missing = [t for t in _TABLES if t not in tables]
        if missing == ["counts"] and not self.readonly:  # only the count cache: rebuild it
            with self._writing():
                self._conn.executescript(_SCHEMA)
        elif missing:
            raise CorruptRunStore(f"{self.path} is damaged: table {', '.join(missing)} is missing; "
                                  f"{_recoverable(self.path)}")
        if not isinstance(self.meta("provenance", {}), dict):
            raise CorruptRunStore(f"{self.path} is damaged: its provenance is not a JSON object; "
                                  f"{_recoverable(self.path)}")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RunError(f"{self.path} is locked by another process ({exc}); try again when it is done") from exc
            raise CorruptRunStore(f"{self.path} is damaged ({exc}); {_recoverable(self.path)}") from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise CorruptRunStore(f"{self.path} is damaged ({exc}); {_recoverable(self.path)}") from exc

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A committed transaction; SQLite errors become typed errors (disk full, read-only, damaged)."""
        if self.readonly:
            raise RunError(f"{self.path} is read-only here; copy the run directory somewhere writable to change it")
        try:
            with self._conn:
                yield
        except sqlite3.DatabaseError as exc:
            raise _write_error(self.path, exc) from exc

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
        with self._lock, self._writing():
            self._set_meta(key, value)

    def meta(self, key: str, default: Any = None) -> Any:
        with self._reading():
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except (TypeError, ValueError) as exc:
            raise CorruptRunStore(f"{self.path} is damaged: metadata {key!r} is not JSON ({exc}); "
                                  f"{_recoverable(self.path)}") from None

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta("provenance", {})

    # -- conditions --------------------------------------------------------------------------
    def set_conditions(self, conditions: Iterable[tuple[str, Any]]) -> None:
        """Record the run's conditions in order: (name, JSON-serialisable spec)."""
        with self._lock, self._writing():
            for position, (name, spec) in enumerate(conditions):
                self._conn.execute(
                    "INSERT INTO conditions(name, position, spec) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, position=excluded.position",
                    (name, position, json.dumps(spec, sort_keys=True)),
                )

    def conditions(self) -> list[tuple[str, Any]]:
        with self._reading():
            rows = self._conn.execute("SELECT name, spec FROM conditions ORDER BY position").fetchall()
        try:
            return [(name, json.loads(spec)) for name, spec in rows]
        except (TypeError, ValueError) as exc:
            raise CorruptRunStore(f"{self.path} is damaged: a condition is not JSON ({exc}); "
                                  f"{_recoverable(self.path)}") from None

    # -- rows --------------------------------------------------------------------------------
    def done_keys(self) -> set[tuple[str, str]]:
        """(utt_id, condition) of every stored row."""
        with self._reading():
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
        with self._lock, self._writing():
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
        with self._reading():
            cur = self._conn.execute(sql, () if condition is None else (condition,))
            names = [d[0] for d in cur.description]
            for values in cur:
                yield self._row(dict(zip(names, values)))

    def _row(self, d: dict[str, Any]) -> ResultRow:
        try:
            return _row_from_db(d)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CorruptRunStore(f"{self.path} is damaged: the row of {str(d.get('utt_id'))[:80]!r} does not parse "
                                  f"({type(exc).__name__}: {exc}); {_recoverable(self.path)}") from None

    def count_rows(self, status: str | None = None) -> int:
        with self._reading():
            if status is None:
                return self._conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM rows WHERE status=?", (status,)).fetchone()[0]

    # -- cached alignment counts -------------------------------------------------------------
    def cached_counts(self, normalizer: str, level: str) -> dict[tuple[str, str], ErrorCounts]:
        try:
            cur = self._conn.execute(
                "SELECT utt_id, condition, hits, substitutions, deletions, insertions FROM counts "
                "WHERE normalizer=? AND level=?",
                (normalizer, level),
            )
            counts = {(u, c): ErrorCounts(h, s, d, i) for u, c, h, s, d, i in cur}
        except (sqlite3.DatabaseError, TypeError, ValueError) as exc:  # only a cache: re-align instead
            log.warning("ignoring the damaged count cache of %s (%s)", self.path, exc)
            return {}
        if not all(isinstance(v, int) and v >= 0 for k in counts.values()
                   for v in (k.hits, k.substitutions, k.deletions, k.insertions)):
            log.warning("ignoring the damaged count cache of %s (bad counts)", self.path)
            return {}
        return counts

    def save_counts(self, normalizer: str, level: str, counts: dict[tuple[str, str], ErrorCounts]) -> None:
        """Cache alignment counts; a read-only store keeps none (they are recomputed next time)."""
        if self.readonly:
            return
        with self._lock, self._writing():
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


def _open_connection(path: Path) -> tuple[sqlite3.Connection, bool]:
    """(connection, read-only?) for an existing store file. When the file or its directory cannot be
    written, it is opened read-only: first through SQLite's read-only mode (which still sees a WAL),
    then as an immutable file (which does not; a warning says so when a WAL file is there)."""
    if os.access(path, os.R_OK) and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        try:
            conn = _connect(path)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn, False
        except UnicodeDecodeError as exc:
            raise CorruptRunStore(f"{path} is damaged ({exc}); {_recoverable(path)}") from exc
        except sqlite3.DatabaseError as exc:
            if "readonly" not in str(exc) and "read-only" not in str(exc) and "unable to open" not in str(exc):
                raise CorruptRunStore(f"{path} is not a readable voxproof run store ({exc}); "
                                      f"{_recoverable(path)}") from exc
    errors = []
    for mode in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True, check_same_thread=False,
                                   timeout=30.0)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
            continue
        wal = Path(f"{path}-wal")
        if mode == "immutable=1" and wal.exists() and wal.stat().st_size > 0:
            log.warning("%s is read-only and has an unmerged write-ahead log; rows written last may be missing",
                        path)
        log.info("opened %s read-only", path)
        return conn, True
    raise CorruptRunStore(f"{path} cannot be opened ({'; '.join(dict.fromkeys(errors))}); {_recoverable(path)}")


def _write_error(path: Path, exc: sqlite3.DatabaseError) -> RunError:
    text = str(exc)
    if "full" in text or getattr(exc, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13):
        return RunError(f"cannot write to {path}: the disk is full ({text}); free some space and rerun with "
                        "--resume (finished rows are kept)")
    if "readonly" in text or "read-only" in text:
        return RunError(f"cannot write to {path}: it is read-only ({text}); make the run directory writable")
    return CorruptRunStore(f"cannot write to {path}: {text}; {_recoverable(path)}")


def _recoverable(path: Path) -> str:
    """What can still be read from a damaged store, in words (reads it again from scratch, read-only)."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?immutable=1", uri=True)
    except sqlite3.Error:
        return "nothing is recoverable with SQLite; evaluate again"
    try:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='provenance'").fetchone()
            provenance = row is not None and isinstance(json.loads(row[0]), dict)
        except (sqlite3.Error, TypeError, ValueError):  # ValueError covers UnicodeDecodeError
            provenance = False
        readable = 0
        try:
            for _ in conn.execute("SELECT utt_id, condition, status FROM rows"):
                readable += 1
        except (sqlite3.Error, UnicodeDecodeError):
            pass
    finally:
        conn.close()
    if not provenance and not readable:
        return "nothing is recoverable; evaluate again"
    what = ("the provenance and " if provenance else "") + f"{readable} result row(s)"
    return (f"recoverable: {what} (copy them out with: sqlite3 {path} .recover > rows.sql), or evaluate again "
            "into a new directory")


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
