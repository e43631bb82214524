"""Monitor stage 1: read a request log (SQLite, PostgreSQL URL, JSONL or CSV) in bounded chunks.

The log format is the contract in docs/ARCHITECTURE.md ("Request log format"): one row per request with
the columns of :data:`COLUMNS`. ``voxproof serve`` writes it; a team can write the same rows itself as
JSONL or CSV. Readers hand on :class:`RequestBatch` objects: columnar numpy arrays (numbers as float64
with NaN for null, text as object arrays with None), in (ts, id) order for SQL stores and in file order
(the order rows were appended) for JSONL and CSV. Unknown extra keys are ignored; missing optional keys
are null; a row without a finite ``ts`` (or another required key) is counted in
:attr:`LogSource.bad_rows` with its line, never silently dropped.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.errors import DataError, UsageError

log = logging.getLogger("voxproof.monitor")

SCHEMA_VERSION = 1
TABLE = "requests"

# column -> kind: "int" / "real" (float64 arrays, NaN for null) or "text" (object arrays, None for null)
COLUMNS: dict[str, str] = {
    "id": "int", "ts": "real", "request_id": "text", "key_name": "text", "endpoint": "text",
    "model": "text", "version": "text", "route": "text", "status": "int", "error_type": "text",
    "latency_s": "real", "queue_s": "real", "decode_s": "real", "model_s": "real", "audio_s": "real",
    "sample_rate": "int", "codec": "text", "rms_dbfs": "real", "snr_db": "real", "speech_ratio": "real",
    "clipping_ratio": "real", "bandwidth_hz": "real", "conf_mean": "real", "conf_min": "real",
    "words": "int", "words_per_s": "real", "output_chars": "int", "text": "text", "word_confs": "text",
}
REQUIRED = ("ts", "endpoint", "route", "status")
ROUTES = ("main", "canary", "shadow")
DEFAULT_CHUNK = 50_000
MAX_LINE_BYTES = 1 << 20  # a JSONL/CSV line longer than 1 MiB is refused as not a request row
MAX_TEXT_CHARS = 100_000
_MAX_PROBLEMS = 20


class LogUnreadable(DataError):
    """The request log cannot be opened or read (exit code 3)."""


@dataclass
class RequestBatch:
    """Rows of the log as columns. ``cols[name]`` is a float64 array (numbers) or an object array (text)."""

    cols: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.cols["ts"]) if "ts" in self.cols else 0

    def __len__(self) -> int:
        return self.n

    def get(self, name: str) -> np.ndarray:
        """A column; a column the log does not have reads as all-null."""
        if name in self.cols:
            return self.cols[name]
        if COLUMNS.get(name) == "text":
            return np.full(self.n, None, dtype=object)
        return np.full(self.n, np.nan)

    def take(self, index: np.ndarray | slice) -> RequestBatch:
        return RequestBatch({k: v[index] for k, v in self.cols.items()})

    @staticmethod
    def concat(batches: Sequence[RequestBatch]) -> RequestBatch:
        batches = [b for b in batches if b.n]
        if not batches:
            return empty_batch()
        if len(batches) == 1:
            return batches[0]
        names = list(dict.fromkeys(k for b in batches for k in b.cols))
        return RequestBatch({k: np.concatenate([b.get(k) for b in batches]) for k in names})


def empty_batch(columns: Iterable[str] = ("ts",)) -> RequestBatch:
    return RequestBatch({c: np.empty(0, dtype=object if COLUMNS.get(c) == "text" else float) for c in columns})


def batch_from_records(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> RequestBatch:
    """A batch from row dicts (already validated): missing keys are null."""
    names = list(columns or COLUMNS)
    cols: dict[str, np.ndarray] = {}
    for name in names:
        values = [r.get(name) for r in records]
        if COLUMNS.get(name, "text") == "text":
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            cols[name] = arr
        else:
            cols[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
    return RequestBatch(cols)


# -- value checks shared by the file readers ---------------------------------------------------------
def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    x = float(value)
    return x if math.isfinite(x) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    s = str(value)
    return s[:MAX_TEXT_CHARS] if len(s) > MAX_TEXT_CHARS else s


def clean_record(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw row (JSON object or CSV dict) checked against the schema; raises ValueError with the reason."""
    out: dict[str, Any] = {}
    for name, kind in COLUMNS.items():
        value = raw.get(name)
        if kind == "text":
            out[name] = _text(value)
        else:
            try:
                out[name] = _number(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name}={str(value)[:40]!r} is not a number") from None
    for name in REQUIRED:
        if out[name] is None:
            raise ValueError(f"required key {name!r} is missing or not finite")
    if out["route"] not in ROUTES:
        raise ValueError(f"route={out['route'][:40]!r} is not one of {', '.join(ROUTES)}")
    return out


# -- sources ---------------------------------------------------------------------------------------
@dataclass
class LogSource:
    """One request log. Iterate :meth:`chunks`; :attr:`bad_rows` counts rows refused (with their lines
    in :attr:`problems`)."""

    location: str
    kind: str  # sqlite / postgresql / jsonl / csv
    bad_rows: int = 0
    problems: list[str] = field(default_factory=list)

    def _bad(self, where: str, why: str) -> None:
        self.bad_rows += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"{where}: {why}")

    def chunks(
        self,
        columns: Sequence[str] | None = None,
        *,
        chunk_rows: int = DEFAULT_CHUNK,
        since: float | None = None,
    ) -> Iterator[RequestBatch]:
        """Batches of at most ``chunk_rows`` rows (rows with ``ts >= since`` when given)."""
        if chunk_rows < 1:
            raise UsageError(f"chunk_rows={chunk_rows} must be at least 1")
        names = _columns(columns)
        yield from self._chunks(names, chunk_rows, since)

    def _chunks(self, names: list[str], chunk_rows: int, since: float | None) -> Iterator[RequestBatch]:
        raise NotImplementedError

    def read(self, columns: Sequence[str] | None = None, *, since: float | None = None) -> RequestBatch:
        """Every row at once (for small logs and tests)."""
        return RequestBatch.concat(list(self.chunks(columns, since=since)))


def _columns(columns: Sequence[str] | None) -> list[str]:
    names = list(columns or COLUMNS)
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise UsageError(f"unknown request-log column(s) {', '.join(unknown)}; columns: {', '.join(COLUMNS)}")
    for must in ("ts", "id"):
        if must not in names:
            names.insert(0, must)
    return names


class _FileSource(LogSource):
    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        raise NotImplementedError

    def _chunks(self, names: list[str], chunk_rows: int, since: float | None) -> Iterator[RequestBatch]:
        pending: list[dict[str, Any]] = []
        for line_no, raw in self._records():
            try:
                rec = clean_record(raw)
            except ValueError as exc:
                self._bad(f"line {line_no}", str(exc))
                continue
            if rec["id"] is None:
                rec["id"] = float(line_no)
            if since is not None and rec["ts"] < since:
                continue
            pending.append(rec)
            if len(pending) >= chunk_rows:
                yield batch_from_records(pending, names)
                pending = []
        if pending:
            yield batch_from_records(pending, names)


def _open_text(path: Path) -> Any:
    try:
        return path.open("r", encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise LogUnreadable(f"cannot open the request log {path}: {exc.strerror or exc}") from None


class JsonlSource(_FileSource):
    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with _open_text(Path(self.location)) as fh:
            line_no = 0
            while True:
                line = fh.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                line_no += 1
                if len(line) > MAX_LINE_BYTES:
                    self._bad(f"line {line_no}", f"longer than {MAX_LINE_BYTES} characters")
                    while line and not line.endswith("\n"):  # skip the rest of the long line
                        line = fh.readline(MAX_LINE_BYTES + 1)
                    continue
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    self._bad(f"line {line_no}", f"not JSON ({str(exc)[:60]})")
                    continue
                if not isinstance(obj, dict):
                    self._bad(f"line {line_no}", "not a JSON object")
                    continue
                yield line_no, obj


class CsvSource(_FileSource):
    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        csv.field_size_limit(MAX_LINE_BYTES)
        with _open_text(Path(self.location)) as fh:
            reader = csv.DictReader(fh)
            try:
                header = reader.fieldnames
            except csv.Error as exc:
                raise LogUnreadable(f"{self.location}: not a CSV request log ({exc})") from None
            if not header or "ts" not in header:
                raise LogUnreadable(f"{self.location}: the CSV header has no 'ts' column; the first line must "
                                    f"name the columns ({', '.join(REQUIRED)} are required)")
            line_no = 1
            while True:
                try:
                    raw = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    line_no += 1
                    self._bad(f"line {line_no}", f"bad CSV ({exc})")
                    continue
                line_no += 1
                yield line_no, raw


class SqliteSource(LogSource):
    def _connect(self) -> sqlite3.Connection:
        uri = Path(self.location).resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30.0)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise LogUnreadable(f"{self.location} is not a readable SQLite request log: {exc}") from None
        if TABLE not in tables:
            conn.close()
            raise LogUnreadable(f"{self.location} has no '{TABLE}' table; is it a request log written by "
                                "'voxproof serve'?")
        if "meta" in tables:
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is not None and str(row[0]) != str(SCHEMA_VERSION):
                conn.close()
                raise LogUnreadable(f"{self.location}: request-log schema_version {row[0]!r}; this voxproof reads "
                                    f"version {SCHEMA_VERSION}")
        return conn

    def _chunks(self, names: list[str], chunk_rows: int, since: float | None) -> Iterator[RequestBatch]:
        """Two queries over one snapshot (one read transaction): the numbers, NULL read as +inf, straight
        into a float array, and the text columns; no per-value Python work beyond what sqlite3 creates."""
        conn = self._connect()
        conn.isolation_level = None  # explicit transaction below
        try:
            present = {r[1] for r in conn.execute(f"PRAGMA table_info({TABLE})")}
            missing = [c for c in REQUIRED if c not in present]
            if missing:
                raise LogUnreadable(f"{self.location}: table {TABLE} lacks required column(s) {', '.join(missing)}")
            by_id = "id" in present and _in_ts_order(conn)
            select = [c for c in names if c in present]
            nums = [c for c in select if COLUMNS[c] != "text"]
            texts = [c for c in select if COLUMNS[c] == "text"]
            try:
                conn.execute("BEGIN")
                curs = [(part, conn.execute(*_query(exprs, present, since, "?", by_id)))
                        for part, exprs in ((nums, [f"COALESCE({c}, 9e999)" for c in nums]), (texts, texts)) if part]
                while True:
                    parts = [(part, cur.fetchmany(chunk_rows)) for part, cur in curs]
                    if not parts[0][1]:
                        return
                    if len({len(rows) for _, rows in parts}) != 1:
                        raise LogUnreadable(f"{self.location}: the request log changed under one read transaction")
                    yield _column_batch(self, parts, names)
            except sqlite3.DatabaseError as exc:
                raise LogUnreadable(f"{self.location}: reading the request log failed: {exc}") from None
        finally:
            conn.close()


def _query(exprs: list[str], present: set[str], since: float | None, mark: str,
           by_id: bool) -> tuple[str, tuple[Any, ...]]:
    """The query for ``exprs`` (ts order; id order when ``by_id``) and its parameters."""
    sql = f"SELECT {', '.join(exprs)} FROM {TABLE}"
    params: tuple[Any, ...] = ()
    if since is not None:
        sql += f" WHERE ts >= {mark}"
        params = (since,)
    sql += " ORDER BY " + ("id" if by_id else "ts, id" if "id" in present else "ts")
    return sql, params


def _in_ts_order(conn: sqlite3.Connection) -> bool:
    """True when ids are contiguous and ts never decreases from one id to the next, so reading in id order
    (no sort of the whole table) is reading in (ts, id) order. Costs one indexed pass."""
    try:
        lo, hi, n = conn.execute(f"SELECT MIN(id), MAX(id), COUNT(*) FROM {TABLE}").fetchone()
        if n == 0 or hi - lo + 1 != n:
            return False
        back = conn.execute(f"SELECT 1 FROM {TABLE} a JOIN {TABLE} b ON b.id = a.id + 1 WHERE b.ts < a.ts "
                            "OR b.ts IS NULL OR a.ts IS NULL LIMIT 1").fetchone()
    except (sqlite3.DatabaseError, TypeError):
        return False
    return back is None


def _numbers(values: Sequence[Any]) -> np.ndarray:
    """A float64 column; None, non-numbers and non-finite values become NaN."""
    try:
        arr = np.array(values, dtype=float)  # None -> nan
    except (TypeError, ValueError, OverflowError):
        arr = np.array([_safe_number(v) for v in values], dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _texts(values: Sequence[Any]) -> np.ndarray:
    """An object column of str / None, long values cut and non-text values rendered as text."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values if _plain_text(values) else [
        None if v is None else (v if isinstance(v, str) and len(v) <= MAX_TEXT_CHARS else _text(v))
        for v in values]
    return arr


def _column_batch(source: LogSource, parts: list[tuple[list[str], list[tuple]]], names: list[str]) -> RequestBatch:
    """A batch from row tuples of the number query (``COALESCE(col, +inf)``: floats or ints, converted as one
    2-D array; a chunk holding anything else is converted value by value) and of the text query."""
    cols: dict[str, np.ndarray] = {}
    for part, rows in parts:
        if COLUMNS[part[0]] != "text":
            try:
                table = np.array(rows, dtype=float)
                table[~np.isfinite(table)] = np.nan
                cols.update((name, np.ascontiguousarray(table[:, j])) for j, name in enumerate(part))
            except (TypeError, ValueError, OverflowError):
                cols.update((name, _numbers(v)) for name, v in zip(part, zip(*rows)))
        else:
            cols.update((name, _texts(v)) for name, v in zip(part, zip(*rows)))
    return _finish_batch(source, cols, len(parts[0][1]), names)


def _finish_batch(source: LogSource, cols: dict[str, np.ndarray], n: int, names: list[str]) -> RequestBatch:
    """Absent columns as all-null; rows without a ts refused and counted."""
    for name in names:
        if name not in cols:
            cols[name] = (np.full(n, None, dtype=object) if COLUMNS[name] == "text" else np.full(n, np.nan))
    bad = np.isnan(cols["ts"])
    if bad.any():
        for _ in range(int(bad.sum())):
            source._bad("row", "ts is null or not a number")
        cols = {k: v[~bad] for k, v in cols.items()}
    return RequestBatch(cols)


def _sql_batch(source: LogSource, rows: list[tuple], select: list[str], names: list[str]) -> RequestBatch:
    """Columns from SQL rows; text columns sanitised, numbers coerced (non-numbers become null and count)."""
    cols = {name: (_texts(values) if COLUMNS[name] == "text" else _numbers(values))
            for name, values in zip(select, zip(*rows))}
    return _finish_batch(source, cols, len(rows), names)


def _plain_text(values: Sequence[Any]) -> bool:
    """True when every value is None or a str of at most MAX_TEXT_CHARS (nothing to sanitise; checked with
    C-level iteration, no Python call per value)."""
    if not set(map(type, values)) <= _PLAIN_TYPES:
        return False
    return max(map(len, filter(None, values)), default=0) <= MAX_TEXT_CHARS


_PLAIN_TYPES = {str, type(None)}


def _safe_number(v: Any) -> float:
    try:
        x = _number(v)
    except (TypeError, ValueError):
        return float("nan")
    return float("nan") if x is None else x


class PostgresSource(LogSource):
    def _chunks(self, names: list[str], chunk_rows: int, since: float | None) -> Iterator[RequestBatch]:
        try:
            import psycopg
        except ImportError:
            raise UsageError("reading a PostgreSQL request log needs psycopg: pip install 'voxproof[postgres]'") from None
        try:
            conn = psycopg.connect(self.location, connect_timeout=10)
        except psycopg.Error as exc:
            raise LogUnreadable(f"cannot connect to the request log database: {str(exc).strip()[:200]}") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (TABLE,))
                present = {r[0] for r in cur.fetchall()}
            if not present:
                raise LogUnreadable(f"the database has no '{TABLE}' table; is it a request log written by "
                                    "'voxproof serve'?")
            select = [c for c in names if c in present]
            sql, params = _query(select, present, since, "%s", False)
            with conn.cursor(name="voxproof_monitor") as cur:  # server-side cursor: streamed, bounded memory
                cur.itersize = chunk_rows
                cur.execute(sql, params)
                while True:
                    rows = cur.fetchmany(chunk_rows)
                    if not rows:
                        return
                    yield _sql_batch(self, rows, select, names)
        except psycopg.Error as exc:
            raise LogUnreadable(f"reading the request log failed: {str(exc).strip()[:200]}") from None
        finally:
            conn.close()


def open_log(location: str | Path) -> LogSource:
    """The log at ``location``: a ``postgresql://`` URL, or a file whose kind is taken from its suffix
    (``.jsonl``/``.ndjson``, ``.csv``) or its content (SQLite header)."""
    loc = str(location)
    if "\x00" in loc:
        raise UsageError("the request-log location contains a NUL character")
    if loc.startswith(("postgresql://", "postgres://")):
        return PostgresSource(loc, "postgresql")
    path = Path(loc)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LogUnreadable(f"the request log {path} does not exist") from None
    except OSError as exc:
        raise LogUnreadable(f"cannot read the request log {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LogUnreadable(f"the request log {path} is not a regular file (a FIFO, device or directory); "
                            "give a SQLite, JSONL or CSV file or a postgresql:// URL")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return JsonlSource(str(path), "jsonl")
    if suffix == ".csv":
        return CsvSource(str(path), "csv")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise LogUnreadable(f"cannot read the request log {path}: {exc.strerror or exc}") from None
    if head.startswith(b"SQLite format 3"):
        return SqliteSource(str(path), "sqlite")
    if head.lstrip()[:1] == b"{":
        return JsonlSource(str(path), "jsonl")
    raise LogUnreadable(f"{path}: not a SQLite, JSONL (.jsonl) or CSV (.csv) request log")


# -- writers (tests, replays, and a team that wants our format) ---------------------------------------
def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path, *, append: bool = False) -> int:
    """Write request-log rows as JSONL; returns the number written."""
    n = 0
    with Path(path).open("a" if append else "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, allow_nan=False, default=_json_default) + "\n")
            n += 1
    return n


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_SQL_TYPES = {"int": "INTEGER", "real": "REAL", "text": "TEXT"}


def create_sqlite_log(path: str | Path) -> sqlite3.Connection:
    """An empty SQLite request log with the schema (the same one ``voxproof serve`` writes)."""
    conn = sqlite3.connect(str(path))
    cols = ", ".join(
        "id INTEGER PRIMARY KEY AUTOINCREMENT" if c == "id" else f"{c} {_SQL_TYPES[k]}" for c, k in COLUMNS.items()
    )
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.commit()
    return conn


def insert_sqlite(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Append rows to a SQLite request log (``id`` assigned by SQLite when absent)."""
    names = [c for c in COLUMNS if c != "id"]
    sql = f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    n = 0
    batch: list[tuple] = []
    for row in rows:
        batch.append(tuple(row.get(c) for c in names))
        if len(batch) >= 10_000:
            conn.executemany(sql, batch)
            n += len(batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
        n += len(batch)
    conn.commit()
    return n
