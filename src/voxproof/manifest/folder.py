"""Manifest reader for the plain folder layout: ``audio/`` + ``transcripts.tsv`` (+ optional ``utt_info.tsv``).

``transcripts.tsv`` has one ``ID<TAB>TEXT`` line per utterance; the audio is ``audio/ID.<ext>`` for any
audio suffix (IDs may contain ``/`` for sub-folders). ``utt_info.tsv``, when present, has a header row
whose first column is the ID; ``speaker``/``language`` columns fill those fields and every other
column becomes a tag (for example ``gender``, ``duration_s``). An ID without an audio file is not a
manifest error: the utterance points at ``audio/ID`` and the runner records the missing file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from voxproof.audio.io import AUDIO_SUFFIXES
from voxproof.manifest.entries import LANGUAGE_KEYS, SPEAKER_KEYS, Entry, Problem, tag_value, text_lines
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.manifest")

TRANSCRIPTS = "transcripts.tsv"
UTT_INFO = "utt_info.tsv"
AUDIO_DIR = "audio"


def is_folder_manifest(path: Path) -> bool:
    return path.is_dir() and (path / TRANSCRIPTS).is_file()


def read_folder(root: Path) -> Iterator[Entry]:
    """Entries of a folder manifest, in ``transcripts.tsv`` order."""
    audio_dir = root / AUDIO_DIR
    index, clashes = _index_audio(audio_dir)
    info, info_problems = _read_utt_info(root / UTT_INFO)
    yield from info_problems
    for number, line in text_lines(root / TRANSCRIPTS):
        if isinstance(line, Problem):
            yield Entry(number, line, TRANSCRIPTS)
            continue
        if not line.strip():
            continue
        if "\t" not in line:
            yield Entry(number, Problem(f"expected ID<TAB>TEXT, got {line[:60]!r}"), TRANSCRIPTS)
            continue
        utt_id, text = line.split("\t", 1)
        utt_id = utt_id.strip()
        if utt_id in clashes:
            files = ", ".join(sorted(p.name for p in clashes[utt_id]))
            yield Entry(
                number,
                Problem(f"id {utt_id!r} matches several audio files ({files}); keep one"),
                TRANSCRIPTS,
            )
            continue
        audio = index.get(utt_id, audio_dir / utt_id)
        speaker, language, tags = None, None, {}
        for key, value in info.get(utt_id, {}).items():
            low = key.lower()
            if low in SPEAKER_KEYS and speaker is None:
                speaker = value
            elif low in LANGUAGE_KEYS and language is None:
                language = value
            else:
                tags[key] = value
        utt = Utterance(
            id=utt_id, audio=str(audio), text=text.strip(), speaker=speaker, language=language, tags=tags
        )
        yield Entry(number, utt, TRANSCRIPTS)


def _index_audio(audio_dir: Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Map ``relative/path/without/suffix`` -> file for every audio file under ``audio_dir``."""
    index: dict[str, Path] = {}
    clashes: dict[str, list[Path]] = {}
    if not audio_dir.is_dir():
        log.warning(
            "%s has no %s/ folder; every utterance will point at a missing file", audio_dir.parent, AUDIO_DIR
        )
        return index, clashes
    for folder, _dirs, files in os.walk(audio_dir):
        for name in files:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() not in AUDIO_SUFFIXES:
                continue
            path = Path(folder) / name
            key = (path.parent / stem).relative_to(audio_dir).as_posix()
            if key in index:
                clashes.setdefault(key, [index[key]]).append(path)
            else:
                index[key] = path
    return index, clashes


def _read_utt_info(path: Path) -> tuple[dict[str, dict[str, str]], list[Entry]]:
    info: dict[str, dict[str, str]] = {}
    problems: list[Entry] = []
    if not path.is_file():
        return info, problems
    header: list[str] | None = None
    for number, line in text_lines(path):
        if isinstance(line, Problem):
            problems.append(Entry(number, line, UTT_INFO))
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if header is None:
            header = [f.strip() for f in fields]
            continue
        if len(fields) != len(header):
            problems.append(
                Entry(
                    number,
                    Problem(f"expected {len(header)} tab-separated columns, got {len(fields)}"),
                    UTT_INFO,
                )
            )
            continue
        utt_id = fields[0].strip()
        values = {}
        for key, value in zip(header[1:], fields[1:]):
            tagged = tag_value(value.strip())
            if tagged is not None:
                values[key] = tagged
        info[utt_id] = values
    return info, problems
