"""The bundled ``sessions`` suite: long recordings made by joining the bundled LibriSpeech utterances of
one speaker with measured gaps, so the session reference and its utterance boundaries are known exactly
(``voxproof eval --data sessions``).

Version 1: one session per speaker of the bundled sample (5 sessions), every utterance of that speaker
once in a seeded order, separated by seeded gaps of 0.5-1.5 s of room tone (pink noise at -65 dBFS).
Each session is one manifest entry: ``text`` is the references joined in order, tag ``session_segments``
holds ``[[utt_id, start, end, speech_start, speech_end, text], ...]`` in seconds of the session, where
``start``/``end`` are the pasted recording's edges and ``speech_start``/``speech_end`` its first and last
voiced 20 ms frame (within 35 dB of the loudest, :func:`voxproof.perturb.nonspeech.voiced_span`). Those
are the reference times of each utterance's first word start and last word end, scored by
:mod:`voxproof.metrics.timing`.

Version 2 (same audio and segments as version 1) adds tag ``session_word_times``: ``[[utt_id, word,
start, end], ...]`` in seconds of the session, every word of each utterance placed by a PocketSphinx forced
alignment of its reference (:func:`voxproof.backends.sphinx.align_words`). Utterances with a word outside
PocketSphinx's dictionary are not aligned (14 of the 50 bundled ones); without pocketsphinx the tag is left
out. :func:`build_session` makes longer sessions (repeating utterances) for
long-form work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from voxproof.manifest.entries import SEGMENTS_TAG, WORD_TIMES_TAG
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.perturb")

NAME = "sessions"
VERSION = 2
RNG_KEY = "sessions@1"  # kept from version 1: version 2 has the same audio and only adds word times
SAMPLE_RATE = 16000
GAP_RANGE_S = (0.5, 1.5)
ROOM_TONE_DBFS = -65.0


@dataclass(frozen=True)
class Segment:
    """One utterance inside a session (seconds from the session start)."""

    utt_id: str
    text: str
    start: float
    end: float
    speech_start: float
    speech_end: float
    words: tuple[tuple[str, float, float], ...] | None = None  # forced-aligned (word, start, end), session s

    def to_list(self) -> list:
        return [self.utt_id, round(self.start, 4), round(self.end, 4), round(self.speech_start, 4),
                round(self.speech_end, 4), self.text]


@dataclass(frozen=True)
class Session:
    id: str
    speaker: str | None
    samples: np.ndarray  # float32 mono at SAMPLE_RATE
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _rng(seed: int, key: str) -> np.random.Generator:
    from voxproof.perturb.generated import suite_rng

    return suite_rng(RNG_KEY, seed, key)


def build_session(session_id: str, pieces: Sequence[tuple[Utterance, np.ndarray]], seed: int,
                  *, min_seconds: float = 0.0) -> Session:
    """Join ``pieces`` (utterance, 16 kHz samples) in a seeded order with seeded room-tone gaps; with
    ``min_seconds`` the (reshuffled) list is repeated until the session is at least that long."""
    from voxproof.perturb.noise import pink_noise
    from voxproof.perturb.nonspeech import _at_dbfs, voiced_span

    rng = _rng(seed, session_id)
    aligned = _aligned(pieces)
    parts: list[np.ndarray] = []
    segments: list[Segment] = []
    t = 0
    while True:
        for k in rng.permutation(len(pieces)):
            utt, samples = pieces[int(k)]
            gap = int(rng.uniform(*GAP_RANGE_S) * SAMPLE_RATE)
            parts.append(_at_dbfs(pink_noise(gap, rng), ROOM_TONE_DBFS))
            t += gap
            start, end = t / SAMPLE_RATE, (t + len(samples)) / SAMPLE_RATE
            span = voiced_span(samples, SAMPLE_RATE) or (0.0, end - start)
            words = None if aligned[int(k)] is None else tuple(
                (w, round(start + a, 4), round(start + b, 4)) for w, a, b in aligned[int(k)])  # type: ignore[union-attr]
            segments.append(Segment(utt.id, utt.text or "", start, end, start + span[0], start + span[1], words))
            parts.append(samples.astype(np.float32))
            t += len(samples)
        if t / SAMPLE_RATE >= min_seconds or not pieces:
            break
    tail = int(GAP_RANGE_S[0] * SAMPLE_RATE)
    parts.append(_at_dbfs(pink_noise(tail, rng), ROOM_TONE_DBFS))
    speaker = pieces[0][0].speaker if pieces else None
    return Session(session_id, speaker, np.concatenate(parts) if parts else np.zeros(0, np.float32),
                   tuple(segments))


def _aligned(pieces: Sequence[tuple[Utterance, np.ndarray]]) -> list:
    """Forced-aligned words of each piece (None for a piece that could not be aligned, all None without
    pocketsphinx)."""
    from voxproof.errors import BackendUnavailable

    try:
        from voxproof.backends.sphinx import align_words

        return align_words([(utt.text or "", samples) for utt, samples in pieces])
    except BackendUnavailable as exc:
        log.warning("sessions: no forced-aligned word times: %s", exc)
        return [None] * len(pieces)


def bundled_pieces() -> dict[str, list[tuple[Utterance, np.ndarray]]]:
    """The bundled utterances at 16 kHz, grouped by speaker (manifest order)."""
    from voxproof.audio.io import load_audio
    from voxproof.manifest import bundled_dataset_path, read_manifest

    groups: dict[str, list[tuple[Utterance, np.ndarray]]] = {}
    for utt in read_manifest(bundled_dataset_path()):
        groups.setdefault(utt.speaker or "?", []).append(
            (utt, load_audio(utt.audio, sample_rate=SAMPLE_RATE).samples))
    return groups


def sessions(seed: int = 0, *, min_seconds: float = 0.0) -> list[Session]:
    """One session per speaker of the bundled sample."""
    return [build_session(f"session-{speaker}", pieces, seed, min_seconds=min_seconds)
            for speaker, pieces in sorted(bundled_pieces().items())]


def to_utterance(session: Session) -> Utterance:
    tags = {SEGMENTS_TAG: json.dumps([s.to_list() for s in session.segments]), "suite": f"{NAME}@{VERSION}"}
    words = [[s.utt_id, w, a, b] for s in session.segments for w, a, b in s.words or ()]
    if words:
        tags[WORD_TIMES_TAG] = json.dumps(words)
    return Utterance(id=session.id, audio=f"audio/{session.id}.wav", text=session.text, speaker=session.speaker,
                     tags=tags)


def items(seed: int) -> Iterator[tuple[Utterance, np.ndarray]]:
    for s in sessions(seed):
        yield to_utterance(s), s.samples


def materialize(seed: int = 0, cache_dir=None):
    """Write the suite for ``seed`` (once) and return its JSONL manifest (see :mod:`voxproof.perturb.generated`)."""
    from voxproof.perturb.generated import materialize as write

    return write(f"{NAME}@{VERSION}", seed, cache_dir, items)
