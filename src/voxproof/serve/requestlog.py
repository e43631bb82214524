"""Serving stage, request log: one row per request, written by a background thread.

The schema is the contract with ``voxproof monitor`` (docs/ARCHITECTURE.md, "Request log format"):
table ``requests`` with the columns of :data:`COLUMNS` plus a ``meta`` table holding
``schema_version`` = ``1``, in a SQLite file (default) or a ``postgresql://`` URL; or a ``.jsonl``
file with one object per line with the same keys.

The request path only puts a :class:`LogEntry` on a bounded queue (``put_nowait``); when the queue is
full the row is dropped and counted (``dropped``), never waited for. The writer thread computes the
signal features of the request's audio (:func:`voxproof.audio.features.signal_features`), so that cost
is off the request path too; audio waiting for it is bounded in bytes (``max_pending_audio_bytes``)
and beyond that a row is written without features (counted in ``features_skipped``).
Transcripts are stored only with ``log_text`` and then PII-redacted under serve's policy
(:func:`voxproof.security.redact.serve_policy`: on unless ``--redact-pii``/``VOXPROOF_REDACT_PII`` say otherwise).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxproof.audio.signal import Audio

log = logging.getLogger("voxproof.serve.requestlog")

SCHEMA_VERSION = "1"
FEATURES = ("rms_dbfs", "snr_db", "speech_ratio", "clipping_ratio", "bandwidth_hz")
#: column -> SQL type, in table order (``id`` is added by the store).
COLUMNS: dict[str, str] = {
    "ts": "REAL NOT NULL",
    "request_id": "TEXT NOT NULL",
    "key_name": "TEXT",
    "endpoint": "TEXT NOT NULL",
    "model": "TEXT",
    "version": "TEXT",
    "route": "TEXT NOT NULL",
    "status": "INTEGER NOT NULL",
    "error_type": "TEXT",
    "latency_s": "REAL",
    "queue_s": "REAL",
    "decode_s": "REAL",
    "model_s": "REAL",
    "audio_s": "REAL",
    "sample_rate": "INTEGER",
    "codec": "TEXT",
    **{name: "REAL" for name in FEATURES},
    "conf_mean": "REAL",
    "conf_min": "REAL",
    "words": "INTEGER",
    "words_per_s": "REAL",
    "output_chars": "INTEGER",
    "text": "TEXT",
    "word_confs": "TEXT",
}


@dataclass
class LogEntry:
    """A row in the making: ``row`` holds column values; ``audio`` (optional) is the decoded request
    audio whose signal features the writer adds; ``text`` the raw transcript (kept only with log_text)."""

    row: dict[str, Any]
    audio: Audio | None = None
    text: str | None = None
    word_confs: list[float] | None = field(default=None)


def transcript_fields(text: str, confidences: list[float | None], audio_s: float | None) -> dict[str, Any]:
    """conf_mean, conf_min, words, words_per_s, output_chars of one transcript."""
    confs = [c for c in confidences if c is not None and math.isfinite(c)]
    words = len(text.split())
    return {
        "conf_mean": sum(confs) / len(confs) if confs else None,
        "conf_min": min(confs) if confs else None,
        "words": words,
        "words_per_s": words / audio_s if audio_s else None,
        "output_chars": len(text),
    }


class _Sink:
    def write(self, rows: list[dict[str, Any]]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SqliteSink(_Sink):
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        cols = ", ".join(f"{k} {t}" for k, t in COLUMNS.items())
        with self.db:
            self.db.execute(f"CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            self.db.execute("CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts)")
        self._sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

    def write(self, rows: list[dict[str, Any]]) -> None:
        with self.db:
            self.db.executemany(self._sql, [tuple(r.get(c) for c in COLUMNS) for r in rows])

    def close(self) -> None:
        self.db.close()


class _PostgresSink(_Sink):
    def __init__(self, url: str):
        from voxproof.errors import BackendUnavailable

        try:
            import psycopg
        except ImportError as exc:
            raise BackendUnavailable("a PostgreSQL request log needs psycopg; install with: "
                                     "pip install 'voxproof[postgres]'") from exc
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        cols = ", ".join(f"{k} {t.replace('REAL', 'DOUBLE PRECISION')}" for k, t in COLUMNS.items())
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS requests (id BIGSERIAL PRIMARY KEY, {cols})")
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING",
                          (SCHEMA_VERSION,))
        self._sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"

    def write(self, rows: list[dict[str, Any]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(self._sql, [tuple(r.get(c) for c in COLUMNS) for r in rows])

    def close(self) -> None:
        self.conn.close()


class _JsonlSink(_Sink):
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.fh.write(json.dumps({c: r.get(c) for c in COLUMNS}, allow_nan=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def open_sink(location: str) -> _Sink:
    if location.startswith(("postgresql://", "postgres://")):
        return _PostgresSink(location)
    path = Path(location)
    if path.suffix.lower() == ".jsonl":
        return _JsonlSink(path)
    return _SqliteSink(path)


class RequestLog:
    """The background writer. :meth:`submit` never blocks; :meth:`close` writes what is queued."""

    def __init__(self, location: str, *, buffer: int = 10000, log_text: bool = False, vad: bool = True,
                 max_pending_audio_bytes: int = 256 * 1024 * 1024):
        self.location = location
        self.log_text = log_text
        self.vad = vad
        self.dropped = 0
        self.features_skipped = 0
        self.written = 0
        self._budget = max_pending_audio_bytes
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=buffer)
        self._sink = open_sink(location)
        self._thread = threading.Thread(target=self._run, name="vp-request-log", daemon=True)
        self._thread.start()

    def submit(self, entry: LogEntry) -> bool:
        """Queue a row; False (and counted) when the buffer is full."""
        nbytes = 0 if entry.audio is None else entry.audio.samples.nbytes
        with self._lock:
            if nbytes and self._pending_bytes + nbytes > self._budget:
                entry.audio, nbytes = None, 0
                self.features_skipped += 1
            self._pending_bytes += nbytes
        try:
            self._queue.put_nowait((entry, nbytes))
        except queue.Full:
            with self._lock:
                self._pending_bytes -= nbytes
                self.dropped += 1
            return False
        return True

    def depth(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            items = [item]
            while item is not None and len(items) < 200:  # batch what is already waiting
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
            stop = items[-1] is None
            rows = [self._finish(entry, nbytes) for entry, nbytes in (i for i in items if i is not None)]
            if rows:
                try:
                    self._sink.write(rows)
                    self.written += len(rows)
                except Exception:  # a failed write loses these rows, counted; the writer keeps going
                    log.exception("request log write to %s failed; %d rows lost", self.location, len(rows))
                    with self._lock:
                        self.dropped += len(rows)
            if stop:
                return

    def _finish(self, entry: LogEntry, nbytes: int) -> dict[str, Any]:
        row = dict(entry.row)
        if entry.audio is not None:
            try:
                from voxproof.audio.features import signal_features

                feats = signal_features(entry.audio, vad=self.vad)
                for name in FEATURES:
                    value = feats.get(name)
                    row[name] = None if value is None or not math.isfinite(value) else float(value)
            except Exception:  # features are best effort; the row is still written
                log.exception("signal features failed for request %s", row.get("request_id"))
            finally:
                with self._lock:
                    self._pending_bytes -= nbytes
        if entry.word_confs:
            row["word_confs"] = json.dumps([round(float(c), 4) for c in entry.word_confs])
        if self.log_text and entry.text is not None:
            from voxproof.security.redact import redact_request_entry

            row["text"] = entry.text
            row = redact_request_entry(row)  # serve's policy: on unless --redact-pii / VOXPROOF_REDACT_PII say otherwise
        return row

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then close the store."""
        if self._thread.is_alive():
            self._queue.put((None))
            self._thread.join(timeout)
        self._sink.close()
