"""Database access for the registry: one small adapter per engine (embedded SQLite, PostgreSQL).

The registry logic (:mod:`voxproof.registry.store`) writes portable SQL with ``?`` placeholders and
runs every change inside :meth:`Database.write`, which serialises writers:

- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before anything is read, so a
  read-check-write sequence in one process cannot interleave with another's (the other waits up to
  ``busy_timeout``).
- PostgreSQL: the transaction first locks the single row of ``registry_lock`` with
  ``SELECT ... FOR UPDATE``; every writer goes through that row, so writers queue on it, and under
  READ COMMITTED each later statement sees everything committed before the lock was granted.

psycopg (PostgreSQL) is imported only when a PostgreSQL URL is opened.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError
from voxproof.registry.models import RegistryError

log = logging.getLogger("voxproof.registry")

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registry_lock (id INTEGER PRIMARY KEY, changes BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS registry_versions (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    options TEXT NOT NULL,
    model_checksum TEXT,
    notes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_aliases (
    alias TEXT PRIMARY KEY,
    version TEXT NOT NULL REFERENCES registry_versions(name),
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_production_stack (
    position INTEGER PRIMARY KEY,
    version TEXT NOT NULL REFERENCES registry_versions(name)
);
CREATE TABLE IF NOT EXISTS registry_runs (
    id {serial},
    version TEXT NOT NULL REFERENCES registry_versions(name),
    path TEXT NOT NULL,
    run_key TEXT NOT NULL,
    role TEXT NOT NULL,
    summary TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    attached_by TEXT NOT NULL,
    UNIQUE (version, run_key, role)
);
CREATE TABLE IF NOT EXISTS registry_gates (
    id {serial},
    candidate TEXT NOT NULL REFERENCES registry_versions(name),
    baseline TEXT NOT NULL REFERENCES registry_versions(name),
    passed INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    path TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_history (
    seq {serial},
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    version TEXT,
    alias TEXT,
    from_version TEXT,
    to_version TEXT,
    reason TEXT NOT NULL,
    details TEXT NOT NULL
);
"""

_SQLITE_GUARDS = (
    ("CREATE TRIGGER IF NOT EXISTS registry_history_no_update BEFORE UPDATE ON registry_history "
     "BEGIN SELECT RAISE(ABORT, 'registry history is append-only'); END"),
    ("CREATE TRIGGER IF NOT EXISTS registry_history_no_delete BEFORE DELETE ON registry_history "
     "BEGIN SELECT RAISE(ABORT, 'registry history is append-only'); END"),
)

_PG_GUARDS = """
CREATE OR REPLACE FUNCTION registry_history_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'registry history is append-only'; END; $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS registry_history_no_change ON registry_history;
CREATE TRIGGER registry_history_no_change BEFORE UPDATE OR DELETE ON registry_history
FOR EACH ROW EXECUTE FUNCTION registry_history_append_only();
"""

# An arbitrary constant key for the PostgreSQL advisory lock that serialises schema creation.
_PG_SCHEMA_LOCK = 0x766F7870  # "voxp"


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class Database:
    """One connection to the registry database. Not shared between threads; open one per process."""

    engine = "?"

    def write(self):  # pragma: no cover - interface
        """Context manager: a transaction holding the registry's write lock; yields a :class:`Cursor`."""
        raise NotImplementedError

    def read(self):  # pragma: no cover - interface
        """Context manager: a consistent read-only snapshot; yields a :class:`Cursor`."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def location(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class Cursor:
    """Portable cursor: ``?`` placeholders everywhere, rows as tuples."""

    def __init__(self, raw: Any, paramstyle: str):
        self._raw = raw
        self._pg = paramstyle == "format"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if self._pg:
            sql = sql.replace("%", "%%").replace("?", "%s")
        self._raw.execute(sql, tuple(params))
        return self

    def fetchone(self) -> tuple | None:
        return self._raw.fetchone()

    def fetchall(self) -> list[tuple]:
        return list(self._raw.fetchall())

    def insert_returning_id(self, sql: str, params: Sequence[Any], id_column: str) -> int:
        """Run an INSERT and return the generated ``id_column``."""
        self.execute(sql + f" RETURNING {id_column}", params)
        row = self.fetchone()
        assert row is not None
        return int(row[0])


class SQLiteDatabase(Database):
    engine = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 60.0):
        self.path = path
        if path.is_dir():
            raise UsageError(f"registry path {path} is a directory; give a file such as {path}/registry.sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self.write() as cur:
                for statement in _split(_TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT")):
                    cur.execute(statement)
                for statement in _SQLITE_GUARDS:
                    cur.execute(statement)
                _init_meta(cur)
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"{path} is not a usable voxproof registry: {exc}") from exc

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def _tx(self, begin: str) -> Iterator[Cursor]:
        try:
            with self._raw_tx(begin) as cur:
                yield cur
        except sqlite3.DatabaseError as exc:
            if "full" in str(exc):
                raise RegistryError(f"cannot write to the registry {self.path}: the disk is full ({exc}); free some "
                                    "space and try again (nothing was changed)") from exc
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise RegistryError(f"cannot write to the registry {self.path}: it is read-only ({exc})") from exc
            if "locked" in str(exc) or "busy" in str(exc):
                raise RegistryError(f"the registry {self.path} stayed locked by another process ({exc}); try again") \
                    from exc
            raise RegistryError(f"{self.path} is not a usable voxproof registry: {exc}") from exc

    @contextmanager
    def _raw_tx(self, begin: str) -> Iterator[Cursor]:
        raw = self._conn.cursor()
        raw.execute(begin)
        try:
            yield Cursor(raw, "qmark")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            raw.close()

    def write(self):
        return self._tx("BEGIN IMMEDIATE")

    def read(self):
        return self._tx("BEGIN DEFERRED")

    def close(self) -> None:
        self._conn.close()


class PostgresDatabase(Database):
    engine = "postgresql"

    def __init__(self, url: str, connect_timeout: int = 10):
        try:
            import psycopg
        except ImportError as exc:
            raise UsageError(
                "a PostgreSQL registry needs psycopg; install with: pip install 'voxproof[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self._url = url
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise RegistryError(f"cannot connect to the PostgreSQL registry at {_redact(url)}: {exc}") from exc
        try:
            with self._conn.transaction():
                raw = self._conn.cursor()
                cur = Cursor(raw, "format")
                if not _pg_ready(raw):  # DDL only once: it takes table locks that would queue behind users
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
                    for statement in _split(_TABLES.format(serial="BIGSERIAL PRIMARY KEY")):
                        cur.execute(statement)
                    if not _pg_ready(raw):
                        raw.execute(_PG_GUARDS)
                _init_meta(cur)
        except psycopg.Error as exc:
            raise RegistryError(f"cannot set up the registry tables at {_redact(url)}: {exc}") from exc

    @property
    def location(self) -> str:
        return _redact(self._url)

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        try:
            with self._conn.transaction():
                raw = self._conn.cursor()
                raw.execute("SELECT changes FROM registry_lock WHERE id = 1 FOR UPDATE")
                cur = Cursor(raw, "format")
                yield cur
        except self._psycopg.Error as exc:
            raise RegistryError(f"registry transaction failed at {self.location}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        try:
            with self._conn.transaction():
                raw = self._conn.cursor()
                raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield Cursor(raw, "format")
        except self._psycopg.Error as exc:
            raise RegistryError(f"registry read failed at {self.location}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()


def connect(location: str | Path) -> Database:
    """A :class:`Database` for a PostgreSQL URL or a SQLite file path."""
    if is_postgres_url(location):
        return PostgresDatabase(str(location))
    text = str(location)
    if "://" in text:
        raise UsageError(
            f"unsupported registry location {text!r}: give a file path (SQLite) or a postgresql:// URL"
        )
    return SQLiteDatabase(Path(text).expanduser())


def _pg_ready(raw: Any) -> bool:
    """Whether the registry tables and the append-only trigger exist in the current schema."""
    raw.execute(
        "SELECT 1 FROM pg_trigger WHERE tgname = 'registry_history_no_change' "
        "AND tgrelid = to_regclass('registry_history')"
    )
    return raw.fetchone() is not None


def _init_meta(cur: Cursor) -> None:
    row = cur.execute("SELECT value FROM registry_meta WHERE key = 'schema'").fetchone()
    if row is None:
        cur.execute("INSERT INTO registry_meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    elif int(row[0]) > SCHEMA_VERSION:
        raise RegistryError(
            f"the registry uses schema {row[0]}, newer than this voxproof understands ({SCHEMA_VERSION}); "
            "upgrade voxproof"
        )
    if cur.execute("SELECT 1 FROM registry_lock WHERE id = 1").fetchone() is None:
        cur.execute("INSERT INTO registry_lock (id, changes) VALUES (1, 0)")


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _redact(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
