"""Multi-speaker interchange formats: read and write STM, CTM, RTTM, SegLST and UEM.

One record for all of them, :class:`Segment` (session, speaker, start, end, words), so the scorers in
:mod:`voxproof.metrics.multispeaker` take any format. Conventions (as NIST SCTK, MeetEval and
pyannote.metrics read them):

- **STM** (reference transcripts): ``session channel speaker start end [<label>] words``; ``;;``
  comment lines; segments whose words are ``ignore_time_segment_in_scoring`` are dropped.
- **CTM** (word hypotheses): ``session channel start duration word [confidence]``; the channel
  field is taken as the speaker (MeetEval's convention for per-speaker CTM files); one word a line.
- **RTTM** (diarization): ``SPEAKER session channel start duration <NA> <NA> speaker <NA> <NA>``;
  other record types are skipped.
- **SegLST** (MeetEval/CHiME-8 JSON): a list of objects with ``session_id``, ``speaker``,
  ``start_time``, ``end_time``, ``words``.
- **UEM** (scored regions): ``session channel start end``.

Every reader refuses (``UsageError`` naming file and line) devices, FIFOs, files over 256 MiB,
non-UTF-8 text, NaN/inf/negative times, end before start, and NUL or ``/`` in session ids.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxproof.errors import UsageError
from voxproof.metrics.userfile import read_user_text

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TIME = 1e7  # seconds (115 days): beyond it a time is a unit mistake


@dataclass(frozen=True)
class Segment:
    """A stretch of one speaker's speech in one session; ``words`` may be empty (diarization)."""

    session: str
    speaker: str
    start: float
    end: float
    words: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


def _read_text(path: str | os.PathLike[str], what: str) -> str:
    return read_user_text(path, what, MAX_FILE_BYTES)[0]


def _time(value: str | float, where: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {value!r} is not a time in seconds") from None
    if not math.isfinite(t) or t < 0 or t > MAX_TIME:
        raise UsageError(f"{where}: time {value!r} must be a finite number of seconds from 0 to {MAX_TIME:g}")
    return t


def _ident(value: str, where: str, what: str) -> str:
    if not value or "/" in value or "\x00" in value or value in (".", ".."):
        raise UsageError(f"{where}: {what} {value!r} is empty or holds '/', NUL or a '.'/'..' name")
    return value


def _segment(session: str, speaker: str, start: float, end: float, words: str, where: str) -> Segment:
    if end < start:
        raise UsageError(f"{where}: segment ends ({end:g} s) before it starts ({start:g} s)")
    return Segment(_ident(session, where, "session"), _ident(speaker, where, "speaker"), start, end, words)


def _lines(text: str) -> Iterable[tuple[int, list[str]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith((";;", "#")):
            yield number, line.split()


def read_stm(path: str | os.PathLike[str]) -> list[Segment]:
    out = []
    for n, f in _lines(_read_text(path, "STM")):
        where = f"{path} line {n}"
        if len(f) < 5:
            raise UsageError(f"{where}: an STM line needs session channel speaker start end [words]")
        rest = f[5:]
        if rest and rest[0].startswith("<") and rest[0].endswith(">"):
            rest = rest[1:]
        words = " ".join(rest)
        if words.strip().lower() == "ignore_time_segment_in_scoring":
            continue
        out.append(_segment(f[0], f[2], _time(f[3], where), _time(f[4], where), words, where))
    return out


def read_ctm(path: str | os.PathLike[str]) -> list[Segment]:
    """One :class:`Segment` per word (channel field as the speaker)."""
    out = []
    for n, f in _lines(_read_text(path, "CTM")):
        where = f"{path} line {n}"
        if len(f) < 5:
            raise UsageError(f"{where}: a CTM line needs session channel start duration word [confidence]")
        start, dur = _time(f[2], where), _time(f[3], where)
        out.append(_segment(f[0], f[1], start, start + dur, f[4], where))
    return out


def read_rttm(path: str | os.PathLike[str]) -> list[Segment]:
    out = []
    for n, f in _lines(_read_text(path, "RTTM")):
        where = f"{path} line {n}"
        if f[0] != "SPEAKER":
            continue
        if len(f) < 8:
            raise UsageError(f"{where}: a SPEAKER line needs type session channel start duration <NA> <NA> speaker")
        start, dur = _time(f[3], where), _time(f[4], where)
        out.append(_segment(f[1], f[7], start, start + dur, "", where))
    return out


def read_uem(path: str | os.PathLike[str]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for n, f in _lines(_read_text(path, "UEM")):
        where = f"{path} line {n}"
        if len(f) < 4:
            raise UsageError(f"{where}: a UEM line needs session channel start end")
        start, end = _time(f[2], where), _time(f[3], where)
        if end < start:
            raise UsageError(f"{where}: region ends before it starts")
        out.setdefault(_ident(f[0], where, "session"), []).append((start, end))
    return out


def read_seglst(path: str | os.PathLike[str]) -> list[Segment]:
    text = _read_text(path, "SegLST")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"SegLST file {path} is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, list):
        raise UsageError(f"SegLST file {path} must hold a JSON list of segments")
    out = []
    for i, d in enumerate(data):
        where = f"{path} segment {i}"
        if not isinstance(d, dict) or not all(k in d for k in ("session_id", "speaker", "start_time", "end_time")):
            raise UsageError(f"{where}: needs session_id, speaker, start_time, end_time (and words)")
        words = d.get("words", "")
        if not isinstance(words, str):
            raise UsageError(f"{where}: words must be a string")
        out.append(_segment(str(d["session_id"]), str(d["speaker"]), _time(d["start_time"], where),
                            _time(d["end_time"], where), words, where))
    return out


READERS = {"stm": read_stm, "ctm": read_ctm, "rttm": read_rttm, "seglst": read_seglst, "json": read_seglst}


def read_segments(path: str | os.PathLike[str], fmt: str | None = None) -> list[Segment]:
    """Segments of a file in ``fmt`` (default: from the suffix: .stm .ctm .rttm .json/.seglst)."""
    kind = (fmt or Path(path).suffix.lstrip(".")).lower()
    if kind not in READERS:
        raise UsageError(f"cannot tell the format of {path}; name it .stm, .ctm, .rttm or .json (SegLST)")
    return READERS[kind](path)


def _t(x: float) -> str:
    return f"{x:.3f}"


def write_stm(segments: Sequence[Segment]) -> str:
    return "".join(f"{s.session} 1 {s.speaker} {_t(s.start)} {_t(s.end)} {s.words}\n" for s in segments)


def write_ctm(segments: Sequence[Segment]) -> str:
    """Words of each segment spread evenly over it (one CTM line a word)."""
    lines = []
    for s in segments:
        words = s.words.split()
        step = s.duration / len(words) if words else 0.0
        for k, w in enumerate(words):
            lines.append(f"{s.session} {s.speaker} {_t(s.start + k * step)} {_t(step)} {w}\n")
    return "".join(lines)


def write_rttm(segments: Sequence[Segment]) -> str:
    return "".join(f"SPEAKER {s.session} 1 {_t(s.start)} {_t(s.duration)} <NA> <NA> {s.speaker} <NA> <NA>\n"
                   for s in segments)


def write_uem(regions: dict[str, list[tuple[float, float]]]) -> str:
    return "".join(f"{session} 1 {_t(a)} {_t(b)}\n" for session, spans in regions.items() for a, b in spans)


def write_seglst(segments: Sequence[Segment]) -> str:
    return json.dumps([{"session_id": s.session, "speaker": s.speaker, "start_time": s.start, "end_time": s.end,
                        "words": s.words} for s in segments], indent=1) + "\n"
