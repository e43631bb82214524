"""The audit's working store: every item of one audit on disk (SQLite), so corpus-level stages read
streams and SQL aggregates instead of holding per-item objects in memory.

One row per item: the utterance (JSON), its analysis (JSON) and fingerprint (bytes), and the columns the
corpus stages group, sort or join on (decode state, rate, channels, duration, PCM hash, speaker,
normalised transcript, log duration, log characters per second, the measures whose medians are
reported). ``side`` 0 is the audited dataset, 1 the ``--against`` one; ``part`` names the split an item
belongs to for leakage checks, with ``part_pos`` its position inside that part.

Memory: a stage holds what it reports (finding member lists) and small aggregates (one entry per
distinct sample rate, speaker, tag value...), never one object per item. Random access (``View``) is
used only for the few items a search names (near-duplicate verification).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from voxproof.audit.fingerprint import Fingerprint
from voxproof.audit.signal import ItemAnalysis
from voxproof.audit.transcript import letters
from voxproof.errors import DataError
from voxproof.manifest.utterance import Utterance

SCHEMA = """
CREATE TABLE items (
    side INTEGER NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, part TEXT, part_pos INTEGER,
    ok INTEGER NOT NULL, error TEXT, sample_rate INTEGER, channels INTEGER, duration REAL,
    pcm_sha1 TEXT, speaker TEXT, text_key TEXT, log_duration REAL, log_cps REAL,
    speech_ratio REAL, snr_db REAL, loudness_dbfs REAL, bandwidth_hz REAL, clip_ratio REAL,
    utt TEXT NOT NULL, analysis TEXT NOT NULL, fp BLOB,
    PRIMARY KEY (side, seq)
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS items_id ON items (side, id);
CREATE INDEX IF NOT EXISTS items_part ON items (part, part_pos);
CREATE INDEX IF NOT EXISTS items_hash ON items (pcm_sha1);
CREATE INDEX IF NOT EXISTS items_text ON items (side, text_key);
"""
# numeric signal measures whose corpus medians the report states (keys of ItemAnalysis.features, each
# also a column of the store so its median is one sort of a plain column)
MEDIAN_FEATURES = ("speech_ratio", "snr_db", "loudness_dbfs", "bandwidth_hz", "clip_ratio")
N_COLUMNS = 23


class ItemStore:
    """Write once (``add``), then read: ``utterances``/``analyses``/``pairs`` stream a side in manifest
    order; ``column``/``median``/``groups`` aggregate in SQL; ``view`` gives lazy random access.

    ``text_key`` maps a transcript to its duplicate-matching key (None: too short to compare).
    """

    def __init__(self, path: str | Path, text_key: Callable[[str], str | None] | None = None):
        self.path = Path(path)
        for stale in (self.path, self.path.with_name(self.path.name + "-wal"),
                      self.path.with_name(self.path.name + "-shm")):
            stale.unlink(missing_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path))
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")  # a scratch store: the resumable part is the cache
            self.conn.execute("PRAGMA cache_size=-16000")  # 16 MB page cache, whatever the corpus size
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"audit store {self.path} is not usable ({exc})") from exc
        self.text_key = text_key
        self._counts = [0, 0]
        self._part_counts: dict[str, int] = {}

    # --- writing ---------------------------------------------------------------------------------

    def add(self, side: int, rows: Iterable[tuple[Utterance, ItemAnalysis]],
            part: Callable[[Utterance], str | None]) -> None:
        """Append items of ``side`` (in manifest order); ``part(utt)`` names the split the item is in."""
        batch = []
        for utt, a in rows:
            p = part(utt)
            pos = None
            if p is not None:
                pos = self._part_counts.get(p, 0)
                self._part_counts[p] = pos + 1
            dur = a.duration if a.ok else None
            log_cps = None
            if utt.text and dur and dur > 0:
                n = letters(utt.text)
                log_cps = math.log(n / dur) if n else None
            batch.append((
                side, self._counts[side], utt.id, p, pos, int(a.ok), a.error, a.sample_rate, a.channels, dur,
                a.pcm_sha1 if a.ok else None, utt.speaker,
                self.text_key(utt.text) if (self.text_key and utt.text) else None,
                math.log(max(dur, 1e-3)) if dur is not None else None, log_cps,
                *(a.features.get(k) if a.ok else None for k in MEDIAN_FEATURES),
                json.dumps(utt.to_dict(), ensure_ascii=False), json.dumps(a.to_dict()),
                a.fingerprint.to_bytes() if a.fingerprint is not None else None,
            ))
            self._counts[side] += 1
            if len(batch) >= 512:
                self._insert(batch)
                batch = []
        if batch:
            self._insert(batch)

    def _insert(self, batch: list[tuple]) -> None:
        self.conn.executemany(f"INSERT INTO items VALUES ({', '.join('?' * N_COLUMNS)})", batch)
        self.conn.commit()

    def finish(self) -> None:
        """Build the indexes once every item is in (faster than keeping them up to date while writing)."""
        self.conn.executescript(INDEXES)
        self.conn.commit()

    # --- reading ---------------------------------------------------------------------------------

    def count(self, side: int = 0) -> int:
        return self._counts[side]

    def part_count(self, part: str) -> int:
        return self._part_counts.get(part, 0)

    def parts(self) -> list[str]:
        return list(self._part_counts)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """Stream the rows of a query (a fresh cursor: several streams may be open at once)."""
        cur = self.conn.cursor()
        cur.arraysize = 256
        cur.execute(sql, params)
        while True:
            chunk = cur.fetchmany()
            if not chunk:
                return
            yield from chunk

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def utterances(self, side: int = 0) -> Iterator[Utterance]:
        for (u,) in self.rows("SELECT utt FROM items WHERE side = ? ORDER BY seq", (side,)):
            yield Utterance.from_dict(json.loads(u))

    def analyses(self, side: int = 0, *, ok_only: bool = False) -> Iterator[ItemAnalysis]:
        """Analyses without fingerprints (see ``view`` for those)."""
        where = " AND ok = 1" if ok_only else ""
        for (a,) in self.rows(f"SELECT analysis FROM items WHERE side = ?{where} ORDER BY seq", (side,)):
            yield ItemAnalysis.from_dict(json.loads(a))

    def pairs(self, side: int = 0) -> Iterator[tuple[Utterance, ItemAnalysis]]:
        for u, a in self.rows("SELECT utt, analysis FROM items WHERE side = ? ORDER BY seq", (side,)):
            yield Utterance.from_dict(json.loads(u)), ItemAnalysis.from_dict(json.loads(a))

    def analysis(self, item_id: str, side: int = 0) -> ItemAnalysis | None:
        row = self.conn.execute("SELECT analysis, fp FROM items WHERE side = ? AND id = ?", (side, item_id)).fetchone()
        if row is None:
            return None
        return ItemAnalysis.from_dict(json.loads(row[0]), Fingerprint.from_bytes(row[1]) if row[1] else None)

    def median(self, expr: str, where: str, params: Sequence[Any] = ()) -> tuple[float | None, int]:
        """(median of ``expr`` over the rows matching ``where`` (NULLs left out), row count), as
        ``numpy.median`` gives it: the mean of the two middle values for an even count."""
        cond = f"({where}) AND ({expr}) IS NOT NULL"
        n = int(self.scalar(f"SELECT COUNT(*) FROM items WHERE {cond}", params) or 0)
        if n == 0:
            return None, 0
        mid = [r[0] for r in self.conn.execute(
            f"SELECT {expr} AS v FROM items WHERE {cond} ORDER BY v LIMIT ? OFFSET ?",
            (*params, 2 - n % 2, (n - 1) // 2))]
        return float(sum(mid) / len(mid)), n

    def robust(self, column: str, where: str, params: Sequence[Any] = ()) -> tuple[float, float, int] | None:
        """(median, 1.4826 x MAD, count) of ``column`` (a robust centre and sigma), None without rows."""
        med, n = self.median(column, where, params)
        if med is None:
            return None
        mad, _ = self.median(f"abs({column} - {med!r})", where, params)
        return med, (mad or 0.0) * 1.4826, n

    def groups(self, column: str, where: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, list[str]]]:
        """(value, member ids in manifest order) for every value of ``column`` shared by 2+ rows."""
        sql = (f"SELECT {column}, id FROM items WHERE {column} IN (SELECT {column} FROM items WHERE {where} "
               f"AND {column} IS NOT NULL GROUP BY {column} HAVING COUNT(*) > 1) AND {where} "
               f"ORDER BY {column}, side, seq")
        value, members = None, []
        for v, i in self.rows(sql, (*params, *params)):
            if v != value and members:
                yield value, members
                members = []
            value = v
            members.append(i)
        if members:
            yield value, members

    def view(self, column: str, spans: Sequence[tuple[str, Any]]) -> View:
        """Lazy sequence of ``column`` over ``spans``, each ``("side", 0)`` or ``("part", name)``, one
        after the other (a contamination search runs over one part followed by another)."""
        return View(self, column, spans)

    def close(self) -> None:
        self.conn.close()


_DECODE: dict[str, Callable[[Any], Any]] = {"fp": lambda b: Fingerprint.from_bytes(b) if b else None}


class View(Sequence):
    """A read-only column over one or more spans of the store: ``len``, streamed iteration in order,
    and random access by position (one indexed SQL lookup; meant for the few items a search names)."""

    def __init__(self, store: ItemStore, column: str, spans: Sequence[tuple[str, Any]]):
        self.store, self.column = store, column
        self.decode = _DECODE.get(column, lambda v: v)
        # (condition, its parameter, rows, the column giving a row's position in the span)
        self.spans: list[tuple[str, Any, int, str]] = []
        for kind, key in spans:
            if kind == "side":
                self.spans.append(("side = ?", key, store.count(key), "seq"))
            elif kind == "part":
                self.spans.append(("part = ?", key, store.part_count(key), "part_pos"))
            else:
                raise ValueError(f"span kind must be side or part, got {kind!r}")

    def __len__(self) -> int:
        return sum(n for _, _, n, _ in self.spans)

    def __iter__(self) -> Iterator[Any]:
        for where, key, _, pos in self.spans:
            for (v,) in self.store.rows(f"SELECT {self.column} FROM items WHERE {where} ORDER BY {pos}", (key,)):
                yield self.decode(v)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if not isinstance(i, int):
            raise TypeError("a View is indexed by position only")
        if i < 0:
            i += len(self)
        for where, key, n, pos in self.spans:
            if i < n:
                row = self.store.conn.execute(
                    f"SELECT {self.column} FROM items WHERE {where} AND {pos} = ?", (key, i)).fetchone()
                return self.decode(row[0]) if row else None
            i -= n
        raise IndexError("View index out of range")


__all__ = ["MEDIAN_FEATURES", "ItemStore", "View"]
