"""Manifest reader for CSV/TSV files with a header row (streamed row by row).

Columns are matched case-insensitively: the audio path (``audio``, ``path``, ``audio_path``,
``audio_filepath``, ``file``, ``filename``, ``wav``) is required; ``id``-like (else the audio file's stem),
``text``-like (``text``, ``transcript``, ``sentence``...), ``speaker``-like, ``language``-like, ``duration``
and ``offset`` columns fill the utterance fields; every other non-empty cell becomes a tag. A ``.tsv``
file is tab-separated, anything else comma-separated. Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from voxproof.manifest.entries import (
    ID_KEYS,
    LANGUAGE_KEYS,
    SPEAKER_KEYS,
    TEXT_KEYS,
    Entry,
    Problem,
    pick,
    resolve_audio,
    tag_value,
    to_float,
)
from voxproof.manifest.utterance import Utterance

AUDIO_KEYS = (
    "audio",
    "path",
    "audio_path",
    "audio_filepath",
    "filepath",
    "file",
    "filename",
    "wav",
    "wav_path",
)


def read_csv(path: Path) -> Iterator[Entry]:
    """Entries of a CSV/TSV manifest; line numbers are physical lines (a quoted multi-line cell counts)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    base = path.parent
    bad_lines: list[int] = []
    with path.open("rb") as fh:
        reader = csv.reader(_decoded(fh, bad_lines), delimiter=delimiter)
        header = next(reader, None)
        if bad_lines:
            yield Entry(1, Problem("the header is not valid UTF-8 text; save the file as UTF-8"))
            return
        if header is None:
            yield Entry(1, Problem("the file is empty; expected a header row"))
            return
        header = [h.strip() for h in header]
        probe = dict.fromkeys(header, "")
        audio_key, _ = pick(probe, AUDIO_KEYS)
        if audio_key is None:
            yield Entry(
                1, Problem(f"no audio column in header {header}; name one of {', '.join(AUDIO_KEYS)}")
            )
            return
        id_key, _ = pick(probe, ID_KEYS)
        text_key, _ = pick(probe, TEXT_KEYS)
        spk_key, _ = pick(probe, SPEAKER_KEYS)
        lang_key, _ = pick(probe, LANGUAGE_KEYS)
        dur_key, _ = pick(probe, ("duration", "duration_s", "dur"))
        off_key, _ = pick(probe, ("offset", "offset_s", "start", "start_s"))
        used = {k for k in (audio_key, id_key, text_key, spk_key, lang_key, dur_key, off_key) if k}
        start_line = reader.line_num
        for cells in reader:
            number, start_line = start_line + 1, reader.line_num
            if bad_lines:
                bad_lines.clear()
                yield Entry(number, Problem("not valid UTF-8 text; save the file as UTF-8"))
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield Entry(number, Problem(f"expected {len(header)} columns, got {len(cells)}"))
                continue
            row = dict(zip(header, cells))
            audio = row[audio_key].strip()
            if not audio:
                yield Entry(number, Problem(f"empty {audio_key!r} cell"))
                continue
            try:
                offset = to_float(row[off_key], off_key) if off_key else None
                duration = to_float(row[dur_key], dur_key) if dur_key else None
            except ValueError as exc:
                yield Entry(number, Problem(str(exc)))
                continue
            utt_id = row[id_key].strip() if id_key else ""
            if not utt_id:
                utt_id = Path(audio).stem if not offset else f"{Path(audio).stem}@{offset:.3f}"
            tags = {k: v for k, v in ((k, tag_value(row[k].strip())) for k in header if k not in used) if v}
            utt = Utterance(
                id=utt_id,
                audio=resolve_audio(audio, base),
                text=row[text_key] if text_key else None,
                offset=offset or 0.0,
                duration=duration,
                speaker=(row[spk_key].strip() or None) if spk_key else None,
                language=(row[lang_key].strip() or None) if lang_key else None,
                tags=tags,
            )
            yield Entry(number, utt)


def _decoded(lines: Iterable[bytes], bad_lines: list[int]) -> Iterator[str]:
    """UTF-8 lines (BOM removed) for ``csv.reader``; appends the number of each undecodable line to
    ``bad_lines`` and passes a replacement-decoded line on, so the row it belongs to can be reported."""
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.append(number)
            yield raw.decode("utf-8", errors="replace")
