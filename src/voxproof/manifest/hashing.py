"""Dataset identity: one sha256 that says whether two runs saw the same data.

The hash covers, per utterance: id, reference text, offset, duration and the sha256 of the audio file's
CONTENTS (streamed in 1 MiB blocks), never its path, size or mtime, so the same data gives the same hash
on any machine and in any folder. Utterances are sorted by id first, so manifest order does not matter.
Speaker, language and tags are not part of it (they change slices, not scores). A missing or unreadable
file hashes as ``missing``; an http(s) URL hashes as the URL itself (it is not downloaded).
Only regular files are read (symlinks followed): a device, FIFO or socket hashes as ``not-regular`` without
being opened for reading (``/dev/zero`` or a FIFO would never end), and a file over the decoder's size
limit (``AudioLimits.max_file_bytes``) as ``too-large:<bytes>`` without being read; the runner turns both
into error rows. File digests are memoised per process by (path, size, mtime), so hashing the same files
twice is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable

from voxproof.audio.io import DEFAULT_LIMITS
from voxproof.manifest.utterance import Utterance

HASH_VERSION = 1
_BLOCK = 1 << 20
_file_digests: dict[tuple[str, int, int], str] = {}


def audio_digest(audio: str, max_bytes: int = DEFAULT_LIMITS.max_file_bytes) -> str:
    """``sha256:<hex>`` of a regular file's contents, ``url:<url>`` for http(s), ``missing`` when
    unreadable, ``not-regular`` for a device/FIFO/socket/directory, ``too-large:<bytes>`` past ``max_bytes``."""
    if audio.lower().startswith(("http://", "https://")):
        return f"url:{audio}"
    try:
        st = os.stat(audio)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "not-regular"
    if st.st_size > max_bytes:
        return f"too-large:{st.st_size}"
    key = (audio, st.st_size, st.st_mtime_ns)
    cached = _file_digests.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open returns at once and fstat says so
        fd = os.open(audio, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return "missing"
    with os.fdopen(fd, "rb") as fh:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return "not-regular"
            left = st.st_size  # the file may grow while it is read; the bytes past the stat are not hashed
            while left > 0 and (block := fh.read(min(_BLOCK, left))):
                digest.update(block)
                left -= len(block)
        except OSError:
            return "missing"
    out = f"sha256:{digest.hexdigest()}"
    if len(_file_digests) > 200_000:  # bound the memo on huge corpora
        _file_digests.clear()
    _file_digests[key] = out
    return out


def dataset_hash(utts: Iterable[Utterance]) -> str:
    """A 64-hex-digit sha256 identifying the utterances' ids, references, segments and audio contents."""
    records = []
    for utt in utts:
        records.append(
            json.dumps(
                [
                    utt.id,
                    utt.text,
                    float(utt.offset),
                    None if utt.duration is None else float(utt.duration),
                    audio_digest(utt.audio),
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            )
        )
    records.sort()
    total = hashlib.sha256(f"voxproof-dataset-hash-v{HASH_VERSION}\n".encode())
    for record in records:
        total.update(record.encode("utf-8"))
        total.update(b"\n")
    return total.hexdigest()
