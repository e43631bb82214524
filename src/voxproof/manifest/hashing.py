"""Dataset identity: one sha256 that says whether two runs saw the same data.

The hash covers, per utterance: id, reference text, offset, duration and the sha256 of the audio file's
CONTENTS (streamed in 1 MiB blocks), never its path, size or mtime, so the same data gives the same hash
on any machine and in any folder. Utterances are sorted by id first, so manifest order does not matter.
Speaker, language and tags are not part of it (they change slices, not scores). A missing or unreadable
file hashes as ``missing``; an http(s) URL hashes as the URL itself (it is not downloaded).
File digests are memoised per process by (path, size, mtime), so hashing the same files twice is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

from voxproof.manifest.utterance import Utterance

HASH_VERSION = 1
_BLOCK = 1 << 20
_file_digests: dict[tuple[str, int, int], str] = {}


def audio_digest(audio: str) -> str:
    """``sha256:<hex>`` of a file's contents, ``url:<url>`` for http(s), ``missing`` when unreadable."""
    if audio.lower().startswith(("http://", "https://")):
        return f"url:{audio}"
    try:
        st = os.stat(audio)
    except OSError:
        return "missing"
    key = (audio, st.st_size, st.st_mtime_ns)
    cached = _file_digests.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    try:
        with open(audio, "rb") as fh:
            while block := fh.read(_BLOCK):
                digest.update(block)
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
