"""Manifest reading: picks the format, checks every entry, then streams :class:`Utterance` records.

``read_manifest`` makes two passes over the source: a checking pass that keeps only ids (to find
duplicates) and problems, then the streaming pass that yields utterances. So a manifest with bad lines
fails before anything is evaluated, with every bad line listed, and a good one is never held in memory
(except Kaldi's small key/value tables). With ``limit=N`` both passes stop after the first N good
utterances, so ``--limit 3`` on a million-line manifest reads a few lines, not the file. Missing audio
files are not manifest problems: the runner records them as error rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from voxproof.errors import ManifestError, UnsafeManifest, UsageError
from voxproof.manifest.entries import Entry, Problem, check_utterance
from voxproof.manifest.folder import TRANSCRIPTS, is_folder_manifest, read_folder
from voxproof.manifest.hf import is_hf_dir, read_hf
from voxproof.manifest.jsonl import read_nemo_jsonl, read_voxproof_jsonl, sniff_jsonl
from voxproof.manifest.kaldi import is_kaldi_dir, read_kaldi
from voxproof.manifest.stm import read_stm_sessions
from voxproof.manifest.tabular import read_csv
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.manifest")

#: Format names accepted by ``read_manifest(format=...)``.
FORMATS = ("folder", "jsonl", "nemo", "kaldi", "csv", "hf", "stm")


def detect_format(source: str | os.PathLike[str]) -> str:
    """The manifest format of ``source`` (one of :data:`FORMATS`), from its layout and first lines."""
    path = Path(source)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}; give a manifest file or dataset folder")
    if path.is_dir():
        if is_folder_manifest(path):
            return "folder"
        if is_kaldi_dir(path):
            return "kaldi"
        if is_hf_dir(path):
            return "hf"
        raise ManifestError(
            f"cannot tell the manifest format of folder {path}: expected {TRANSCRIPTS} + audio/ (folder), "
            "wav.scp (Kaldi), or a Hugging Face save_to_disk folder; or pass a manifest file"
        )
    if path.name == TRANSCRIPTS:
        return "folder"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return sniff_jsonl(path)
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".stm":
        return "stm"
    raise ManifestError(
        f"cannot tell the manifest format of {path} from its suffix {suffix or '(none)'}; use .jsonl, .json, "
        f".csv, .tsv or .stm, or pass format= one of {', '.join(FORMATS)}"
    )


def _entries(path: Path, fmt: str, *, materialize: bool, cache_dir: Path | None) -> Iterator[Entry]:
    try:
        yield from _format_entries(path, fmt, materialize=materialize, cache_dir=cache_dir)
    except OSError as exc:  # unreadable file, permission denied, disappeared mid-read
        raise ManifestError(
            f"cannot read manifest {path}: {exc.strerror or exc}; check it is readable"
        ) from exc


def _format_entries(path: Path, fmt: str, *, materialize: bool, cache_dir: Path | None) -> Iterator[Entry]:
    if fmt == "folder":
        return read_folder(path.parent if path.is_file() else path)
    if fmt == "jsonl":
        return read_voxproof_jsonl(path)
    if fmt == "nemo":
        return read_nemo_jsonl(path)
    if fmt == "kaldi":
        return read_kaldi(path)
    if fmt == "csv":
        return read_csv(path)
    if fmt == "stm":
        return read_stm_sessions(path)
    return read_hf(path, materialize=materialize, cache_dir=cache_dir)


def _resolve(source: str | os.PathLike[str], format: str | None) -> tuple[Path, str]:
    if format is not None and format not in FORMATS:
        raise UsageError(f"unknown manifest format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(os.path.abspath(os.fspath(source)))
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}; give a manifest file or dataset folder")
    fmt = format or detect_format(path)
    needs_dir = fmt in ("kaldi", "hf") or (fmt == "folder" and path.name != TRANSCRIPTS)
    if needs_dir != path.is_dir():
        kind = "a folder" if needs_dir else "a file"
        raise UsageError(f"format {fmt!r} needs {kind}, but {path} is not one")
    return path, fmt


def _check(entries: Iterator[Entry], limit: int | None = None) -> tuple[list[tuple[int, str]], bool, int]:
    """Every problem (line, message), whether any is unsafe, and the number of good utterances; with
    ``limit``, only the entries up to the ``limit``-th good utterance are checked."""
    problems: list[tuple[int, str]] = []
    unsafe = False
    seen: dict[str, int] = {}
    count = 0
    for entry in entries:
        item = entry.item
        if isinstance(item, Problem):
            problems.append(entry.problem_tuple())
            unsafe = unsafe or item.unsafe
            continue
        bad = check_utterance(item)
        if item.id in seen:
            bad.append(f"duplicate id {item.id!r} (first at line {seen[item.id]})")
        else:
            seen[item.id] = entry.line
        for message in bad:
            problems.append(Entry(entry.line, Problem(message), entry.where).problem_tuple())
        if not bad:
            count += 1
            if limit is not None and count >= limit:
                break
    return problems, unsafe, count


def validate_manifest(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[int, str]]:
    """Every problem in a manifest as ``(line number, message)``, in file order; empty when it is valid.

    Line numbers are 1-based lines of the file named in the message (rows for Hugging Face datasets;
    0 for problems not tied to a line). Missing audio files are not checked here.
    """
    path, fmt = _resolve(source, format)
    cache = Path(cache_dir) if cache_dir is not None else None
    problems, _unsafe, _count = _check(_entries(path, fmt, materialize=False, cache_dir=cache))
    return problems


def read_manifest(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Iterator[Utterance]:
    """Stream the utterances of a manifest.

    ``source``: a folder with ``audio/`` + ``transcripts.tsv`` (or that ``transcripts.tsv``), a voxproof or
    NeMo JSONL file, a Kaldi data dir, a CSV/TSV file, or a Hugging Face ``save_to_disk`` folder.
    ``format``: one of :data:`FORMATS`; None detects it. ``cache_dir``: where audio embedded in a Hugging
    Face dataset is written (default ``~/.cache/voxproof``).

    The whole manifest is checked before the first utterance is returned: bad lines raise
    ``ManifestError`` listing every one with its line number (``.problems``), and a piped Kaldi
    ``wav.scp`` raises ``UnsafeManifest`` (it is never executed). Paths in the utterances are absolute
    (or http(s) URLs). ``limit``: only the first ``limit`` utterances are checked and returned; the rest
    of the source is never read.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit must be a positive number of utterances, got {limit!r}")
    path, fmt = _resolve(source, format)
    cache = Path(cache_dir) if cache_dir is not None else None
    problems, unsafe, count = _check(_entries(path, fmt, materialize=False, cache_dir=cache), limit)
    if problems:
        kind = UnsafeManifest if unsafe else ManifestError
        what = "entries voxproof refuses to read" if unsafe else "invalid entries"
        raise kind(f"{path} ({fmt} manifest) has {len(problems)} {what}; fix them and retry", problems)
    log.debug("manifest %s (%s): %d utterances", path, fmt, count)
    return _stream(path, fmt, cache, limit)


def _stream(path: Path, fmt: str, cache: Path | None, limit: int | None) -> Iterator[Utterance]:
    if limit is not None and limit <= 0:
        return
    for count, entry in enumerate(_entries(path, fmt, materialize=True, cache_dir=cache), start=1):
        if isinstance(entry.item, Problem):  # the file changed between the two passes
            raise ManifestError(f"{path} changed while it was read", [entry.problem_tuple()])
        yield entry.item
        if limit is not None and count >= limit:
            return
