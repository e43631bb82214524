"""Generated datasets (``voxproof eval --data NAME``): suites whose audio voxproof builds itself from
shipped or generated sound, seeded, so a user's clone needs no download. ``non-speech`` (clips where
nobody speaks, :mod:`voxproof.perturb.nonspeech`) and ``sessions`` (long recordings made by joining the
bundled utterances with known gaps, :mod:`voxproof.perturb.sessions`).

:func:`materialize` writes a suite's audio (16 kHz PCM WAV) and a voxproof JSONL manifest into
``CACHE/NAME@VERSION-seedN/`` once per (suite, seed); it is built in a temporary folder and renamed,
so a crash never leaves half a suite.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from voxproof.errors import DataError, UsageError
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.perturb")

SAMPLE_RATE = 16000
NAMES = ("non-speech", "sessions")


def suite_rng(ref: str, seed: int, key: str) -> np.random.Generator:
    """The generator of one item of a generated suite: fixed by the suite, the run seed and the item."""
    digest = hashlib.sha256(f"{ref}\x00{seed}\x00{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def parse_ref(ref: str) -> tuple[str, int] | None:
    """``(name, version)`` when ``ref`` names a generated suite (``NAME`` or ``NAME@VERSION``), else None."""
    name, sep, version = ref.strip().partition("@")
    if name not in NAMES:
        return None
    current = _module(name).VERSION
    if sep and version != str(current):
        raise UsageError(f"unknown version {version!r} of the {name} suite; the only version is {current}")
    return name, current


def _module(name: str):
    if name == "non-speech":
        from voxproof.perturb import nonspeech

        return nonspeech
    from voxproof.perturb import sessions

    return sessions


def build(ref: str, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """The manifest of the generated suite ``ref`` for ``seed``, written on first use."""
    parsed = parse_ref(ref)
    if parsed is None:
        raise UsageError(f"unknown generated suite {ref!r}; choose one of {', '.join(NAMES)}")
    return _module(parsed[0]).materialize(seed, cache_dir)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "voxproof" / "suites"


def materialize(ref: str, seed: int, cache_dir: str | Path | None,
                items: Callable[[int], Iterator[tuple[Utterance, np.ndarray]]]) -> Path:
    """Write ``items(seed)`` (utterances whose ``audio`` is ``audio/ID.wav``, with their samples at 16 kHz)
    under ``CACHE/REF-seedN/`` once and return the manifest path; a folder from an earlier call is reused."""
    import soundfile as sf

    from voxproof.manifest import write_jsonl

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"{ref}-seed{int(seed)}"
    manifest = target / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{ref}-", dir=root))
    except OSError as exc:
        raise DataError(f"cannot write the {ref} suite under {root}: {exc}; set XDG_CACHE_HOME to a writable "
                        "folder") from None
    try:
        (tmp / "audio").mkdir()
        utts = []
        for utt, samples in items(seed):
            sf.write(str(tmp / utt.audio), samples, SAMPLE_RATE, subtype="PCM_16")
            utts.append(utt)
        write_jsonl(utts, tmp / "manifest.jsonl")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not manifest.is_file():
                raise
    except OSError as exc:
        raise DataError(f"cannot write the {ref} suite under {root}: {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote the %s suite (seed %d) to %s", ref, seed, target)
    return manifest
