"""Manifest reader for CSV/TSV files with a header row (streamed row by row).

Columns are matched case-insensitively: the audio path (``audio``, ``path``, ``audio_path``,
``audio_filepath``, ``file``, ``filename``, ``wav``) is required; ``id``-like (else the audio file's stem),
``text``-like (``text``, ``transcript``, ``sentence``...), ``speaker``-like, ``language``-like, ``duration``
and ``offset`` columns fill the utterance fields; every other non-empty cell becomes a tag. A ``.tsv``
file is tab-separated, anything else comma-separated. Relative paths are resolved against the file's folder.

A stray ``"`` opens a quoted field that swallows the following rows (2,000 rows once became one
utterance). A record whose quoted field spans lines that themselves look like rows (they hold the
delimiter), or spans more than :data:`MAX_FIELD_LINES` lines, is reported with the line the quote
opened on; so is a field over the csv module's 131,072-character limit.
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
MAX_CELL_CHARS = 131_072  # the csv module's default cell limit; a longer cell is a typed ManifestError
MAX_FIELD_LINES = 3  # a quoted cell may hold a line break or two; more is a runaway quote
_STRAY_QUOTE = "a stray '\"' may have opened a quoted field here; remove it or double it (\"\")"


def read_csv(path: Path) -> Iterator[Entry]:
    """Entries of a CSV/TSV manifest; line numbers are physical lines (a quoted multi-line cell counts)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    base = path.parent
    bad_lines: list[int] = []
    with path.open("rb") as fh:
        csv.field_size_limit(MAX_CELL_CHARS)  # the limit is process-wide: other readers (monitor) change it
        reader = csv.reader(_decoded(fh, bad_lines), delimiter=delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            yield Entry(1, Problem(f"the header cannot be read as CSV ({exc}); {_STRAY_QUOTE}"))
            return
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
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit() characters
                yield Entry(start_line + 1, Problem(f"cannot read this row as CSV ({exc}); {_STRAY_QUOTE}"))
                return
            number, start_line = start_line + 1, reader.line_num
            runaway = _runaway_field(cells, delimiter, start_line - number + 1)
            if runaway:
                yield Entry(number, Problem(f"{runaway} (to line {start_line}); {_STRAY_QUOTE}"))
                continue
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


def _runaway_field(cells: list[str], delimiter: str, lines: int) -> str | None:
    """Why a record spanning ``lines`` physical lines looks like rows merged by an unclosed quote."""
    if lines <= 1:
        return None
    for cell in cells:
        if "\n" not in cell and "\r" not in cell:
            continue
        rows = [line for line in cell.splitlines()[1:] if delimiter in line]
        if rows:
            return f"a quoted field spans {lines} lines and holds {len(rows)} line(s) that look like rows"
        if lines > MAX_FIELD_LINES:
            return f"a quoted field spans {lines} lines (more than {MAX_FIELD_LINES})"
    return None


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
