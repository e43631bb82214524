"""Provenance helpers shared by the model backends: model checksums and library versions.

A run records which exact model produced it. The checksum of a model is the sha256 of its file (for a
single file, so it matches ``sha256sum``) or, for a model made of several files, the sha256 of the lines
``<relative path>\\t<sha256 of file>\\n`` in sorted path order. Files are read in 1 MiB blocks and each
checksum is computed once per process (cached by path, size and modification time).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

_BLOCK = 1 << 20
_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 hex digest of one file, streamed; cached per process while size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    value = digest.hexdigest()
    with _lock:
        _cache[key] = value
    return value


def model_checksum(root: Path, files: Iterable[Path] | None = None) -> str:
    """Checksum of a model: ``root`` is a file, or a directory whose ``files`` (default: every file
    below it, recursively) make up the model. See the module docstring for the exact definition."""
    root = Path(root)
    if root.is_file():
        return file_sha256(root)
    chosen = sorted(files) if files is not None else sorted(p for p in root.rglob("*") if p.is_file())
    lines = []
    for path in chosen:
        full = path if path.is_absolute() else root / path
        rel = full.relative_to(root).as_posix()
        lines.append(f"{rel}\t{file_sha256(full)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def library_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named pip distributions (``"unknown"`` when metadata is missing)."""
    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out
