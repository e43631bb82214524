"""Per-item result cache of the audit (SQLite, one file in the output directory): a killed or repeated
audit skips every file whose path, size, modification time, segment and analysis settings are unchanged.
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
"""


class AnalysisCache:
    """``get(key)`` / ``put_many([(key, analysis)])``; rows are committed per batch so a killed audit
    keeps what it finished."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(str(self.path))
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"audit cache {self.path} is not usable ({exc}); delete it to start afresh") from exc

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
