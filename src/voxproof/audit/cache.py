"""Per-item result cache of the audit (SQLite, one file in the output directory): a killed or repeated
audit skips every file whose path, size, modification time, segment and analysis settings are unchanged.
The label-noise check keeps its recogniser transcripts in the same file (``TranscriptCache``), keyed by
the file and the recogniser's identity, so a killed ``--asr`` audit does not transcribe anything twice.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from voxproof.audit.fingerprint import Fingerprint
from voxproof.audit.signal import ItemAnalysis
from voxproof.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, data TEXT NOT NULL, fp BLOB);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transcripts (key TEXT PRIMARY KEY, text TEXT NOT NULL);
"""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise DataError(f"audit cache {path} is not usable ({exc}); delete it to start afresh") from exc
    return conn


class AnalysisCache:
    """``get(key)`` / ``put_many([(key, analysis)])``; rows are committed per batch so a killed audit
    keeps what it finished."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = _connect(self.path)

    def get(self, key: str) -> ItemAnalysis | None:
        row = self.conn.execute("SELECT data, fp FROM items WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        fp = Fingerprint.from_bytes(row[1]) if row[1] else None
        return ItemAnalysis.from_dict(json.loads(row[0]), fp)

    def put_many(self, rows: list[tuple[str, ItemAnalysis]]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO items (key, data, fp) VALUES (?, ?, ?)",
            [(k, json.dumps(a.to_dict()), a.fingerprint.to_bytes() if a.fingerprint is not None else None)
             for k, a in rows],
        )
        self.conn.commit()

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


class TranscriptCache:
    """Recogniser transcripts of the label-noise check: ``get(key)`` / ``put(key, text)``, each committed
    at once (a transcript costs far more than a commit)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = _connect(self.path)

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT text FROM transcripts WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, text: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO transcripts (key, text) VALUES (?, ?)", (key, text))

    def close(self) -> None:
        self.conn.close()
