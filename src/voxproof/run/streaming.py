"""Streaming simulation: how long a live user waits for the first words and for the final text.

Stage: run. Feeds one clip to a backend in chunks of a given length and replays the measured processing
times on a virtual clock, so the figures are those of a live stream without sleeping in real time:

- chunk *i* (ending at audio time ``t_i``) can start when it has arrived and the decoder is free:
  ``start_i = max(t_i, finish_{i-1})``; ``finish_i = start_i + compute_i`` (measured wall seconds).
- **time to first partial** = ``finish`` of the first chunk whose partial hypothesis is non-empty,
  measured from the start of the audio (it includes the audio the user had to speak first);
  ``first_partial_audio`` is how much audio had been fed then.
- **final-result delay** = finish of the final result - end of the audio: what the user waits after
  they stop speaking.
- **keeps up** = no chunk started later than it arrived plus one chunk length (the backlog never grew).

Backends stream through the :class:`StreamingTranscriber` protocol (``transcribe_stream(audio,
chunk_seconds)`` returning records with ``audio_seconds``, ``text``, ``wall_seconds`` cumulative, and
``final``): PocketSphinx does so natively (partial hypotheses from its decoder). Whisper cannot stream;
:class:`ChunkedRedecoder` gives it a documented **chunked re-decoding** mode: after every chunk the whole
audio received so far (the last 30 s at most) is decoded again from scratch, and that text is the
partial; the final result is a decode of the whole clip. Its cost grows with the audio heard, which is
exactly what the simulation shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import UsageError

log = logging.getLogger("voxproof.run.streaming")

DEFAULT_CHUNKS = (0.1, 0.25, 0.5)


@dataclass(frozen=True)
class Partial:
    """One record of a stream: after ``audio_seconds`` fed, text shown; ``wall_seconds`` is cumulative
    processing time since the stream started; the last record is ``final``."""

    audio_seconds: float
    text: str
    wall_seconds: float
    final: bool = False


@runtime_checkable
class StreamingTranscriber(Protocol):
    """A backend that can decode a clip chunk by chunk and report partial hypotheses."""

    def transcribe_stream(self, audio: Audio, chunk_seconds: float = 0.5) -> Sequence[Any]: ...


class ChunkedRedecoder:
    """Streaming for a non-streaming :class:`~voxproof.backends.base.Transcriber` by re-decoding the audio
    received so far after every chunk (at most ``max_window`` seconds, Whisper's 30 s window).

    ``min_seconds`` skips partial decodes before that much audio has arrived (the first decode happens
    at the first chunk boundary at or after it)."""

    def __init__(self, transcriber: Any, max_window: float = 30.0, min_seconds: float = 0.0):
        self.transcriber = transcriber
        self.max_window = max_window
        self.min_seconds = min_seconds

    def transcribe_stream(self, audio: Audio, chunk_seconds: float = 0.5) -> list[Partial]:
        if chunk_seconds <= 0:
            raise UsageError(f"chunk_seconds={chunk_seconds} must be positive")
        sr = audio.sample_rate
        step = max(1, round(chunk_seconds * sr))
        n = len(audio.samples)
        out: list[Partial] = []
        elapsed = 0.0
        for end in range(step, n + step, step):
            end = min(end, n)
            fed = end / sr
            if end == n:
                break  # the last chunk is decoded once, as the final result
            if fed + 1e-9 < self.min_seconds:
                out.append(Partial(fed, "", elapsed))
                continue
            start = max(0, end - int(self.max_window * sr))
            t0 = time.perf_counter()
            text = self.transcriber.transcribe(Audio(audio.samples[start:end], sr)).text
            elapsed += time.perf_counter() - t0
            out.append(Partial(fed, text, elapsed))
        t0 = time.perf_counter()
        final = self.transcriber.transcribe(audio).text
        elapsed += time.perf_counter() - t0
        out.append(Partial(n / sr, final, elapsed, final=True))
        return out


@dataclass(frozen=True)
class StreamResult:
    """Simulated live-stream figures for one clip at one chunk length (seconds)."""

    utt_id: str
    chunk_seconds: float
    audio_seconds: float
    first_partial_seconds: float | None  # from audio start; None when no partial had text
    first_partial_audio: float | None
    final_delay_seconds: float
    compute_seconds: float
    max_chunk_compute: float
    keeps_up: bool
    partials: int
    final_text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulate(partials: Sequence[Any], chunk_seconds: float, utt_id: str = "") -> StreamResult:
    """Replay a stream's measured processing times on the virtual live clock (see module docstring)."""
    if not partials or not partials[-1].final:
        raise UsageError("a stream must end with a final record")
    finish = 0.0
    prev_wall = 0.0
    first: tuple[float, float] | None = None
    keeps_up = True
    max_compute = 0.0
    duration = float(partials[-1].audio_seconds)
    for p in partials:
        compute = max(0.0, float(p.wall_seconds) - prev_wall)
        prev_wall = float(p.wall_seconds)
        arrival = float(p.audio_seconds)
        start = max(arrival, finish)
        if start - arrival > chunk_seconds + 1e-9 and not p.final:
            keeps_up = False
        finish = start + compute
        max_compute = max(max_compute, compute)
        if first is None and p.text.strip():
            first = (finish, arrival)
    return StreamResult(
        utt_id=utt_id,
        chunk_seconds=chunk_seconds,
        audio_seconds=duration,
        first_partial_seconds=None if first is None else first[0],
        first_partial_audio=None if first is None else first[1],
        final_delay_seconds=finish - duration,
        compute_seconds=prev_wall,
        max_chunk_compute=max_compute,
        keeps_up=keeps_up,
        partials=sum(1 for p in partials if not p.final),
        final_text=partials[-1].text,
    )


def stream_clip(backend: Any, audio: Audio, chunk_seconds: float, utt_id: str = "") -> StreamResult:
    """Stream one clip through ``backend`` (native streaming, or chunked re-decoding when the backend
    has only ``transcribe``) and simulate the live clock."""
    streamer = backend if isinstance(backend, StreamingTranscriber) else ChunkedRedecoder(backend)
    return simulate(streamer.transcribe_stream(audio, chunk_seconds), chunk_seconds, utt_id)


@dataclass(frozen=True)
class StreamingSummary:
    """Streaming figures over many clips at one chunk length. Percentiles over clips; seconds."""

    backend: str
    mode: str  # "native partial hypotheses" or "chunked re-decoding"
    chunk_seconds: float
    n: int
    first_partial: dict[str, float]
    first_partial_missing: int
    final_delay: dict[str, float]
    compute_rtf: float
    keeps_up_share: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pcts(values: Iterable[float]) -> dict[str, float]:
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {}
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "max": float(arr.max()),
    }


def summarize_streams(results: Sequence[StreamResult], backend: str = "", mode: str = "") -> StreamingSummary:
    """Aggregate :class:`StreamResult` of one chunk length."""
    if not results:
        raise UsageError("no streamed clips to summarise")
    chunks = {r.chunk_seconds for r in results}
    if len(chunks) != 1:
        raise UsageError(f"summarise one chunk length at a time; got {sorted(chunks)}")
    firsts = [r.first_partial_seconds for r in results if r.first_partial_seconds is not None]
    return StreamingSummary(
        backend=backend,
        mode=mode,
        chunk_seconds=chunks.pop(),
        n=len(results),
        first_partial=_pcts(firsts),
        first_partial_missing=len(results) - len(firsts),
        final_delay=_pcts(r.final_delay_seconds for r in results),
        compute_rtf=sum(r.compute_seconds for r in results) / sum(r.audio_seconds for r in results),
        keeps_up_share=sum(r.keeps_up for r in results) / len(results),
    )


def streaming_mode(backend: Any) -> str:
    return "native partial hypotheses" if isinstance(backend, StreamingTranscriber) else "chunked re-decoding"


def streaming_to_dict(summaries: Sequence[StreamingSummary]) -> dict[str, Any]:
    """JSON-ready streaming section (for summary.json)."""
    return {
        "clock": "virtual live clock replaying measured processing times (chunk i starts at max(arrival, "
        "previous finish))",
        "by_chunk": [s.to_dict() for s in summaries],
    }
