"""Manifest reader for long recordings with an STM reference (``voxproof eval --data talks.stm``): one
session per STM session id, its audio beside the STM file, its segments in the ``session_segments`` tag
so long-form and word-timing scoring see the utterance boundaries.

STM lines are ``session channel speaker start end [<label>] words`` (NIST SCTK; read by
:func:`voxproof.metrics.segments.read_stm`, which refuses devices, FIFOs, files over 256 MiB, non-UTF-8
text, NaN/inf/negative/huge times, an end before its start, and ``/``, NUL, ``.`` or ``..`` as a session
id). The audio of session ``S`` is the first of ``S.wav``, ``S.flac``, ``S.ogg``, ``S.mp3`` found in the
STM's folder or its ``audio/`` subfolder (else ``S.wav`` there, a missing-audio error row). A session is one utterance: id ``S``, reference the segments'
words in time order, speaker the segments' speaker when there is one, and each segment
``[S-NNNN, start, end, start, end, words]`` (the STM times stand for both the pasted edges and the first
and last word's times, so word-timing figures on STM sessions are only as exact as the annotation).
Overlapping segments in one session are refused: a session reference is one stream of speech; overlapped
speech belongs to ``voxproof speakers``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

from voxproof.errors import UsageError
from voxproof.manifest.entries import SEGMENTS_TAG, Entry, Problem
from voxproof.manifest.utterance import Utterance

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
OVERLAP_TOLERANCE_S = 0.001  # STM times are written to the millisecond


def _audio(root: Path, session: str) -> Path:
    """The session's audio file; ``S.wav`` beside the STM when none is found (the runner then records
    the missing audio as an error row, as for every manifest format)."""
    for folder in (root, root / "audio"):
        for suffix in AUDIO_SUFFIXES:
            candidate = folder / f"{session}{suffix}"
            if candidate.is_file():
                return candidate
    return root / f"{session}.wav"


def read_stm_sessions(path: Path) -> Iterator[Entry]:
    """One entry per session of the STM file ``path`` (numbered by order of first appearance), or a problem;
    a file :func:`~voxproof.metrics.segments.read_stm` refuses is one problem (it names the line)."""
    from voxproof.metrics.segments import read_stm

    try:
        segments = read_stm(path)
    except UsageError as exc:
        yield Entry(0, Problem(str(exc)))
        return
    if not segments:
        yield Entry(0, Problem("the STM file has no segments; write session channel speaker start end words"))
        return
    sessions: dict[str, list] = {}
    for seg in segments:
        sessions.setdefault(seg.session, []).append(seg)
    for number, (session, segs) in enumerate(sessions.items(), start=1):
        segs.sort(key=lambda s: (s.start, s.end))
        overlap = next(((a, b) for a, b in pairwise(segs) if b.start < a.end - OVERLAP_TOLERANCE_S), None)
        if overlap is not None:
            a, b = overlap
            yield Entry(number, Problem(f"session {session!r}: segments {a.start:g}-{a.end:g} s and {b.start:g}-"
                                       f"{b.end:g} s overlap; a session reference is one stream of speech "
                                       "(score overlapped speech with voxproof speakers)"))
        else:
            speakers = {s.speaker for s in segs}
            tag = [[f"{session}-{k:04d}", s.start, s.end, s.start, s.end, " ".join(s.words.split())]
                   for k, s in enumerate(segs)]
            yield Entry(number, Utterance(
                id=session, audio=str(_audio(path.parent, session)), text=" ".join(t[5] for t in tag if t[5]),
                speaker=speakers.pop() if len(speakers) == 1 else None,
                tags={SEGMENTS_TAG: json.dumps(tag)}))
