"""Decoding stage, fetch half: brings an http(s) audio URL into a temporary local file.

The size limit is enforced while streaming (and up front from ``Content-Length``), so a huge or
endless response stops at the limit. The caller decodes the file and deletes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from voxproof.errors import AudioError, AudioNotFound, AudioTooLarge, EmptyAudio

log = logging.getLogger("voxproof.audio")

DOWNLOAD_TIMEOUT_S = 60.0


def is_url(source: object) -> bool:
    """True for ``http://`` and ``https://`` strings (the only remote sources voxproof fetches)."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


@contextlib.contextmanager
def downloaded(url: str, *, max_bytes: int, timeout: float = DOWNLOAD_TIMEOUT_S) -> Iterator[Path]:
    """Download ``url`` into a temporary file (same suffix as the URL path) and yield its path.

    Raises ``AudioNotFound`` for 404/410, ``AudioTooLarge`` past ``max_bytes``, ``EmptyAudio`` for an
    empty body, and ``AudioError`` for other HTTP or network failures. The file is removed on exit.
    """
    import httpx

    suffix = PurePosixPath(urlparse(url).path).suffix[:10]
    fd, name = tempfile.mkstemp(prefix="voxproof-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
                    if response.status_code in (404, 410):
                        raise AudioNotFound(f"audio URL not found (HTTP {response.status_code}): {url}")
                    if response.status_code >= 400:
                        raise AudioError(f"could not fetch audio URL {url}: HTTP {response.status_code}")
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                        raise AudioTooLarge(
                            f"{url} is {int(declared):,} bytes, over the {max_bytes:,}-byte limit "
                            "(AudioLimits.max_file_bytes)"
                        )
                    total = 0
                    for chunk in response.iter_bytes(1 << 16):
                        total += len(chunk)
                        if total > max_bytes:
                            raise AudioTooLarge(
                                f"{url} sent more than {max_bytes:,} bytes, the AudioLimits.max_file_bytes "
                                "limit; stopped downloading"
                            )
                        out.write(chunk)
            except httpx.HTTPError as exc:
                raise AudioError(
                    f"could not fetch audio URL {url}: {exc}; check the URL and the network"
                ) from exc
        if total == 0:
            raise EmptyAudio(f"audio URL {url} returned an empty body")
        log.debug("downloaded %s (%d bytes) to %s", url, total, path)
        yield path
    finally:
        path.unlink(missing_ok=True)
