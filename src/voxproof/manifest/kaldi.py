"""Manifest reader for Kaldi data directories: ``wav.scp`` plus optional ``text``, ``utt2spk``,
``segments`` and ``spk2gender``.

Safety: a ``wav.scp`` entry that is a command (ends or starts with ``|``, or has more than one field) is
reported as unsafe and never executed; ``read_manifest`` raises :class:`~voxproof.errors.UnsafeManifest`
for it. Archive references (``foo.ark:1234``) and stdin (``-``) are reported as unsupported. Relative
paths are resolved against the data directory. Utterances follow ``segments`` order when it exists,
else ``wav.scp`` order (utterance id = recording id).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from voxproof.manifest.entries import Entry, Problem, resolve_audio, text_lines
from voxproof.manifest.utterance import Utterance

WAV_SCP = "wav.scp"
_ARK = re.compile(r"\.ark:\d+$")


def is_kaldi_dir(path: Path) -> bool:
    return path.is_dir() and (path / WAV_SCP).is_file()


def _lines(path: Path, problems: list[Entry]) -> Iterator[tuple[int, list[str]]]:
    """Non-empty lines split as ``key rest`` (rest may be empty); undecodable lines go to ``problems``."""
    for number, line in text_lines(path):
        if isinstance(line, Problem):
            problems.append(Entry(number, line, path.name))
        elif line.strip():
            yield number, line.strip().split(maxsplit=1)


def _table(path: Path, problems: list[Entry]) -> dict[str, str]:
    """``key value`` file as a dict (missing file -> empty); duplicate keys are problems."""
    table: dict[str, str] = {}
    if not path.is_file():
        return table
    for number, parts in _lines(path, problems):
        if parts[0] in table:
            problems.append(Entry(number, Problem(f"duplicate key {parts[0]!r}"), path.name))
            continue
        table[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return table


def _recordings(root: Path, problems: list[Entry]) -> dict[str, tuple[int, str]]:
    """recording id -> (wav.scp line, resolved path), in file order."""
    recordings: dict[str, tuple[int, str]] = {}
    for number, parts in _lines(root / WAV_SCP, problems):
        rec = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value:
            problems.append(Entry(number, Problem(f"recording {rec!r} has no audio path"), WAV_SCP))
        elif value.endswith("|") or value.startswith("|") or len(value.split()) > 1:
            problems.append(
                Entry(
                    number,
                    Problem(
                        f"recording {rec!r} is a shell command ({value[:80]!r}); voxproof never runs wav.scp commands: "
                        "decode the audio to files first and list their paths",
                        unsafe=True,
                    ),
                    WAV_SCP,
                )
            )
        elif value == "-" or _ARK.search(value):
            problems.append(
                Entry(
                    number,
                    Problem(
                        f"recording {rec!r} points into a Kaldi archive or stdin ({value!r}), which voxproof does not "
                        "read; list plain audio file paths"
                    ),
                    WAV_SCP,
                )
            )
        elif rec in recordings:
            problems.append(Entry(number, Problem(f"duplicate recording id {rec!r}"), WAV_SCP))
        else:
            recordings[rec] = (number, resolve_audio(value, root))
    return recordings


def read_kaldi(root: Path) -> Iterator[Entry]:
    """Entries of a Kaldi data dir. Problems in every file are yielded before any utterance."""
    problems: list[Entry] = []
    recordings = _recordings(root, problems)
    texts = _table(root / "text", problems)
    utt2spk = _table(root / "utt2spk", problems)
    spk2gender = _table(root / "spk2gender", problems)
    yield from problems

    def make(
        utt_id: str, audio: str, line: int, where: str, offset: float = 0.0, duration: float | None = None
    ) -> Entry:
        speaker = utt2spk.get(utt_id)
        tags = {}
        if speaker is not None and speaker in spk2gender:
            tags["gender"] = spk2gender[speaker]
        utt = Utterance(
            id=utt_id,
            audio=audio,
            text=texts.get(utt_id),
            offset=offset,
            duration=duration,
            speaker=speaker,
            tags=tags,
        )
        return Entry(line, utt, where)

    segments = root / "segments"
    if not segments.is_file():
        for rec, (number, audio) in recordings.items():
            yield make(rec, audio, number, WAV_SCP)
        return
    late: list[Entry] = []
    for number, parts in _lines(segments, late):
        yield from late
        late.clear()
        fields = [parts[0], *(parts[1].split() if len(parts) > 1 else [])]
        if len(fields) != 4:
            yield Entry(
                number, Problem(f"expected 'utt rec start end', got {len(fields)} fields"), "segments"
            )
            continue
        utt_id, rec, start_s, end_s = fields
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            yield Entry(number, Problem(f"start/end must be seconds, got {start_s!r} {end_s!r}"), "segments")
            continue
        if rec not in recordings:
            yield Entry(
                number,
                Problem(f"segment {utt_id!r} names recording {rec!r}, which is not in wav.scp"),
                "segments",
            )
            continue
        if start < 0 or (end != -1 and end <= start):
            yield Entry(
                number,
                Problem(
                    f"segment {utt_id!r} has start {start:g} s and end {end:g} s; need "
                    "0 <= start < end (or end = -1 for the end of the file)"
                ),
                "segments",
            )
            continue
        yield make(utt_id, recordings[rec][1], number, "segments", start, None if end == -1 else end - start)
    yield from late
