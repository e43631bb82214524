"""Chunked long-form decoding: any recogniser run on fixed windows with overlap, the windows stitched by
word times (``voxproof eval --chunk-seconds 30 --chunk-overlap 5``), to compare with the backend's own
long-form path (Whisper's sequential 30 s windows conditioned on the previous text; PocketSphinx's one
utterance) on the same session.

Stitching: window ``k`` covers ``[k * step, k * step + window]`` with ``step = window - overlap``; a word
is kept from the window whose *own* part (the window minus half the overlap on each inner side) holds
the word's midpoint, so each stretch of audio is transcribed by exactly one window; a word whose
midpoint falls before the end of the last kept word (the same word heard by both windows, its two
midpoints either side of the seam), or that starts before it, is dropped, so word times never go back. A backend without
word times cannot be stitched that way: its window texts are joined whole (words in an overlap then
appear twice), and the transcript says so in ``extras["stitch"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from voxproof.audio.signal import Audio
from voxproof.backends.base import BackendInfo, Transcriber, Transcript, Word
from voxproof.errors import UsageError

MAX_WINDOW_S = 3600.0


@dataclass(frozen=True)
class ChunkOptions:
    """``window_seconds`` per window, ``overlap_seconds`` shared by neighbours (less than the window)."""

    window_seconds: float = 30.0
    overlap_seconds: float = 5.0

    def __post_init__(self) -> None:
        w, o = self.window_seconds, self.overlap_seconds
        if not (isinstance(w, (int, float)) and math.isfinite(w) and 1.0 <= w <= MAX_WINDOW_S):
            raise UsageError(f"--chunk-seconds={w!r} must be a number of seconds from 1 to {MAX_WINDOW_S:g}")
        if not (isinstance(o, (int, float)) and math.isfinite(o) and 0.0 <= o <= w / 2):
            raise UsageError(f"--chunk-overlap={o!r} must be from 0 to half the window ({w / 2:g} s)")


class ChunkedTranscriber:
    """Wraps a :class:`Transcriber`; ``transcribe`` decodes fixed overlapping windows and stitches them."""

    def __init__(self, inner: Transcriber, options: ChunkOptions | None = None):
        self.inner = inner
        self.options = options or ChunkOptions()
        self.sample_rate = inner.sample_rate

    @property
    def load_seconds(self) -> float | None:
        return getattr(self.inner, "load_seconds", None)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def windows(self, duration: float) -> list[tuple[float, float, float, float]]:
        """``(start, end, own_start, own_end)`` of every window of a clip of ``duration`` seconds."""
        w, o = self.options.window_seconds, self.options.overlap_seconds
        step = w - o
        count = max(1, math.ceil(max(0.0, duration - o) / step))
        out = []
        for k in range(count):
            start = k * step
            end = min(duration, start + w)
            own_start = 0.0 if k == 0 else start + o / 2
            own_end = duration if k == count - 1 else end - o / 2
            out.append((start, end, own_start, own_end))
        return out

    def transcribe(self, audio: Audio) -> Transcript:
        sr = audio.sample_rate
        words: list[Word] = []
        texts: list[str] = []
        timed = True
        for start, end, own_start, own_end in self.windows(audio.duration):
            piece = Audio(audio.samples[round(start * sr):round(end * sr)], sr)
            if len(piece.samples) == 0:
                continue
            t = self.inner.transcribe(piece)
            texts.append(t.text.strip())
            if t.text.strip() and (not t.words or any(x.start is None or x.end is None for x in t.words)):
                timed = False
            for x in t.words:
                if x.start is None or x.end is None:
                    continue
                mid = start + (x.start + x.end) / 2
                owned = own_start <= mid < own_end or (own_end == audio.duration and mid >= own_end)
                # a word heard in both windows with its midpoints either side of the seam: keep it once
                if owned and not (words and (mid < words[-1].end or start + x.start < words[-1].start)):
                    words.append(replace(x, start=round(start + x.start, 3), end=round(start + x.end, 3)))
        if timed:
            text = " ".join(x.text.strip() for x in words)
            extras: dict[str, Any] = {"stitch": "word times", "windows": len(texts)}
        else:
            text = " ".join(s for s in texts if s)
            words = []
            extras = {"stitch": "text (no word times: words in an overlap appear twice)", "windows": len(texts)}
        conf = [x.confidence for x in words if x.confidence is not None]
        return Transcript(text, tuple(words), sum(conf) / len(conf) if conf else None, extras)

    def info(self) -> BackendInfo:
        inner = self.inner.info()
        options = dict(inner.options)
        options["chunked"] = {"window_seconds": self.options.window_seconds,
                              "overlap_seconds": self.options.overlap_seconds}
        return replace(inner, options=options)
