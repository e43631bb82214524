"""A generator of damaged run stores, for the hostile-input tests (issue 21 item 10).

``corrupt_stores(good, root)`` copies the run directory ``good`` once per kind of damage and yields
``(name, run_dir, expect)``: ``"error"`` (reading must fail with a typed one-line error), ``"works"``
(the damage is harmless or repaired on open: reading must succeed) or ``"either"`` (random byte flips
may land in free space or in a text value: success or a typed error, never a crash).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

STORE = "run.sqlite"


def _copy(good: Path, root: Path, name: str) -> tuple[Path, Path]:
    dst = root / name
    shutil.copytree(good, dst)
    for extra in dst.glob(STORE + "-*"):  # a closed store has merged its WAL
        extra.unlink()
    return dst, dst / STORE


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def _flip(path: Path, rng: random.Random, n: int, lo: int, hi: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    hi = len(data) if hi is None else min(hi, len(data))
    for _ in range(n):
        i = rng.randrange(lo, hi)
        data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def corrupt_stores(good: Path, root: Path, *, seed: int = 0) -> Iterator[tuple[str, Path, str]]:
    rng = random.Random(seed)
    size = (good / STORE).stat().st_size

    for name, keep in (("empty-file", 0), ("truncated-header", 50), ("truncated-1-page", 4096),
                       ("truncated-half", size // 2), ("truncated-last-byte", size - 1)):
        d, p = _copy(good, root, name)
        with open(p, "r+b") as f:
            f.truncate(keep)
        yield name, d, "either" if name == "truncated-last-byte" else "error"

    for name, lo, hi, n in (("flip-header", 0, 100, 4), ("flip-page-1", 100, 4096, 16),
                            ("flip-everywhere-16", 0, None, 16), ("flip-everywhere-256", 0, None, 256)):
        for k in range(3):
            d, p = _copy(good, root, f"{name}-{k}")
            _flip(p, rng, n, lo, hi)
            yield f"{name}-{k}", d, "either"
    d, p = _copy(good, root, "zeroed-middle")
    data = bytearray(p.read_bytes())
    data[size // 3: size // 3 + 8192] = bytes(8192)
    p.write_bytes(bytes(data))
    yield "zeroed-middle", d, "either"

    for table in ("rows", "conditions", "meta"):
        d, p = _copy(good, root, f"drop-{table}")
        _sql(p, f"DROP TABLE {table}")
        yield f"drop-{table}", d, "error"
    d, p = _copy(good, root, "drop-counts")
    _sql(p, "DROP TABLE counts")
    yield "drop-counts", d, "works"  # only a cache: rebuilt on open

    for name, value in (("schema-newer", "99"), ("schema-text", '"abc"'), ("schema-negative", "-1"),
                        ("schema-not-json", "{")):
        d, p = _copy(good, root, name)
        _sql(p, f"UPDATE meta SET value = '{value}' WHERE key = 'store_schema'")
        yield name, d, "error"
    edits = (
        ("schema-missing", ["DELETE FROM meta WHERE key = 'store_schema'"], "error"),
        ("provenance-not-json", ["UPDATE meta SET value = '{\"backend\": ' WHERE key = 'provenance'"], "error"),
        ("provenance-a-list", ["UPDATE meta SET value = '[1, 2]' WHERE key = 'provenance'"], "error"),
        ("row-json-broken", ["UPDATE rows SET tags = '{broken' WHERE rowid = 3"], "error"),
        ("row-transcript-wrong-type", ["UPDATE rows SET transcript = '[1, 2, 3]' WHERE rowid = 2"], "error"),
        # a damaged count cache is ignored and recomputed
        ("counts-garbage", ["INSERT INTO counts VALUES ('x', 'clean', 'whisper-en@1', 'word', -5, 'a', 0, 1e300)"],
         "works"),
        ("rows-wrong-columns", ["DROP TABLE rows", "CREATE TABLE rows (utt_id TEXT, condition TEXT)"], "error"),
    )
    for name, statements, expect in edits:
        d, p = _copy(good, root, name)
        _sql(p, *statements)
        yield name, d, expect

    for name, content in (("garbage-random", bytes(rng.randrange(256) for _ in range(size))),
                          ("garbage-text", b"hello, this is not a database\n" * 100),
                          ("garbage-png", b"\x89PNG\r\n\x1a\n" + bytes(4000)),
                          ("garbage-sqlite-header-only", b"SQLite format 3\x00" + bytes(84))):
        d, p = _copy(good, root, name)
        p.write_bytes(content)
        yield name, d, "error"
    d, p = _copy(good, root, "other-sqlite-database")
    p.unlink()
    _sql(p, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
    yield "other-sqlite-database", d, "error"

    d, p = _copy(good, root, "directory-instead-of-file")
    p.unlink()
    p.mkdir()
    yield "directory-instead-of-file", d, "error"
    d, p = _copy(good, root, "fifo-instead-of-file")
    p.unlink()
    os.mkfifo(p)
    yield "fifo-instead-of-file", d, "error"
    d, p = _copy(good, root, "symlink-to-dev-zero")
    p.unlink()
    p.symlink_to("/dev/zero")
    yield "symlink-to-dev-zero", d, "error"
    d, p = _copy(good, root, "dangling-symlink")
    p.unlink()
    p.symlink_to(root / "nowhere")
    yield "dangling-symlink", d, "error"
    d, p = _copy(good, root, "garbage-wal")
    (d / (STORE + "-wal")).write_bytes(bytes(rng.randrange(256) for _ in range(40000)))
    yield "garbage-wal", d, "works"  # SQLite ignores a WAL whose header and checksums do not match


def make_read_only(run_dir: Path) -> None:
    for f in run_dir.iterdir():
        f.chmod(0o444)
    run_dir.chmod(0o555)


def make_writable(run_dir: Path) -> None:
    run_dir.chmod(0o755)
    for f in run_dir.iterdir():
        f.chmod(0o644)


def store_summary(run_dir: Path) -> dict:
    """What the good store holds, to compare a read-only read against."""
    conn = sqlite3.connect(run_dir / STORE)
    try:
        return {"rows": conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0],
                "provenance": json.loads(conn.execute("SELECT value FROM meta WHERE key='provenance'").fetchone()[0])}
    finally:
        conn.close()
