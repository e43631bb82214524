"""Serving stage, API keys: created once, stored only as salted hashes, checked on every request.

A key reads ``vxp_<id>_<secret>``: ``id`` (8 hex) finds the stored record, ``secret`` (43 URL-safe
characters, 256 random bits) is checked against ``sha256(salt || secret)`` with a per-key random salt,
compared in constant time. Neither the key nor the secret is ever stored or logged; only the key's
``name`` (who it belongs to) travels further, into the request log and the registry history.

Scopes: ``transcribe``, ``synthesize``, ``admin`` (admin implies the other two).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from voxproof.errors import UsageError, VoxproofError

log = logging.getLogger("voxproof.serve.keys")

SCOPES = ("transcribe", "synthesize", "admin")
_KEY = re.compile(r"^vxp_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    salt TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (without its secret): who it is, what it may do."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    revoked: bool = False

    def allows(self, scope: str) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)


@dataclass(frozen=True)
class _Stored:
    key: ApiKey
    salt: bytes
    digest: bytes


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def check_scopes(scopes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(scopes))
    bad = [s for s in out if s not in SCOPES]
    if not out or bad:
        raise UsageError(f"scope(s) {', '.join(bad) or '(none)'} not valid: choose from {', '.join(SCOPES)}")
    return out


class KeyStore:
    """The key file (SQLite). :meth:`snapshot` gives the in-memory view the server checks keys against."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise VoxproofError(f"cannot open the key store {self.path}: {exc}; check the path") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA busy_timeout = 10000")
        return db

    def create(self, name: str, scopes: tuple[str, ...] | list[str]) -> tuple[ApiKey, str]:
        """A new key: returns (record, the full key string). The key is shown once; only a hash is kept."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise UsageError(f"invalid key name {name!r}: 1-64 letters, digits and . _ @ + -, starting with a "
                             "letter or digit")
        scopes = check_scopes(scopes)
        key_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_bytes(16)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._connect() as db:
            if db.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"a key named {name!r} exists; choose another name or revoke it first")
            db.execute(
                "INSERT INTO api_keys (key_id, name, scopes, salt, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, ",".join(scopes), salt.hex(), _digest(salt, secret).hex(), created),
            )
        return ApiKey(key_id, name, scopes, created), f"vxp_{key_id}_{secret}"

    def revoke(self, name: str) -> None:
        with self._connect() as db:
            if db.execute("UPDATE api_keys SET revoked = 1 WHERE name = ?", (name,)).rowcount == 0:
                raise UsageError(f"no key named {name!r}")

    def list(self) -> list[ApiKey]:
        return [s.key for s in self._load()]

    def _load(self) -> list[_Stored]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT key_id, name, scopes, salt, hash, created_at, revoked FROM api_keys ORDER BY created_at"
            ).fetchall()
        return [
            _Stored(ApiKey(kid, name, tuple(scopes.split(",")), created, bool(revoked)), bytes.fromhex(salt),
                    bytes.fromhex(digest))
            for kid, name, scopes, salt, digest, created, revoked in rows
        ]

    def snapshot(self) -> KeyRing:
        return KeyRing(self._load())


class KeyRing:
    """An immutable in-memory copy of the key store; :meth:`verify` checks a presented key."""

    def __init__(self, stored: list[_Stored]):
        self._by_id = {s.key.key_id: s for s in stored}

    def __len__(self) -> int:
        return len(self._by_id)

    def verify(self, presented: str) -> ApiKey | None:
        """The key record for a presented key string, or None when it is malformed, unknown, wrong or
        revoked. Constant-time comparison of the hash."""
        m = _KEY.match(presented or "")
        if m is None:
            return None
        stored = self._by_id.get(m.group(1))
        if stored is None:
            return None
        if not hmac.compare_digest(_digest(stored.salt, m.group(2)), stored.digest):
            return None
        return None if stored.key.revoked else stored.key
