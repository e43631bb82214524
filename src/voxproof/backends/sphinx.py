"""Backend stage: PocketSphinx 5 with its bundled US English model, speech to text (batch and streaming).

Audio is fed as 16-bit PCM at 16 kHz. Hands a :class:`~voxproof.backends.base.Transcript` to the runner:
raw text without fillers, words with times (10 ms frames -> seconds) and word posteriors, which
PocketSphinx 5 reports as plain probabilities (not logs). ``transcribe_stream`` feeds the audio in chunks
and records the partial hypothesis after each one, for latency measurements.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.backends._checksum import library_versions, model_checksum
from voxproof.backends.base import BackendInfo, Transcript, Word
from voxproof.errors import BackendError, BackendUnavailable, UsageError
from voxproof.options import bounded, check_ranges, options_dict

log = logging.getLogger("voxproof.backends.sphinx")

SAMPLE_RATE = 16000
_VARIANT = re.compile(r"\(\d+\)$")  # pronunciation variants: "our(2)" -> "our"


@dataclass(frozen=True)
class SphinxOptions:
    """PocketSphinx search settings; defaults are PocketSphinx's own.

    ``lw`` is the language-model weight; ``beam``/``wbeam``/``pbeam`` are pruning thresholds (smaller
    keeps more hypotheses: slower, sometimes more accurate); ``bestpath`` rescores with a lattice
    search; ``fwdflat`` runs the second flat-lexicon pass.
    """

    lw: float = bounded(6.5, 0.0, 100.0, open_low=True)
    beam: float = bounded(1e-48, 0.0, 1.0, open_low=True)
    wbeam: float = bounded(7e-29, 0.0, 1.0, open_low=True)
    pbeam: float = bounded(1e-48, 0.0, 1.0, open_low=True)
    bestpath: bool = True
    fwdflat: bool = True

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class StreamPartial:
    """One partial hypothesis while streaming: after ``audio_seconds`` of audio were fed, the decoder
    showed ``text``; ``wall_seconds`` is the processing time since the stream started. The last
    record of a stream has ``final=True`` and holds the final text."""

    audio_seconds: float
    text: str
    wall_seconds: float
    final: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "audio_seconds": self.audio_seconds,
            "text": self.text,
            "wall_seconds": self.wall_seconds,
            "final": self.final,
        }


def _is_filler(word: str) -> bool:
    return (word.startswith("<") and word.endswith(">")) or (word.startswith("[") and word.endswith("]")) or (
        word.startswith("++") and word.endswith("++")
    )


def _clean(word: str) -> str:
    return _VARIANT.sub("", word)


def _pcm16(audio: Audio) -> bytes:
    samples = audio.resampled(SAMPLE_RATE).samples
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class SphinxTranscriber:
    """PocketSphinx recogniser. One decoder per instance; calls are serialised by a lock, so give each
    worker thread its own instance for parallel decoding."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: SphinxOptions | None = None):
        self.options = options or SphinxOptions()
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise BackendUnavailable(
                f"pocketsphinx is not installed ({exc}); install with: pip install 'voxproof[sphinx]'"
            ) from exc
        o = self.options
        started = time.perf_counter()
        try:
            self._decoder = Decoder(
                loglevel="ERROR",
                lw=o.lw,
                beam=o.beam,
                wbeam=o.wbeam,
                pbeam=o.pbeam,
                bestpath=o.bestpath,
                fwdflat=o.fwdflat,
            )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"could not load the PocketSphinx model: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        config = self._decoder.config
        self._model_files = [Path(config["lm"]), Path(config["dict"])] + sorted(
            p for p in Path(config["hmm"]).iterdir() if p.is_file()
        )
        self._model_dir = str(Path(config["hmm"]).parent)
        self._lock = threading.Lock()
        self._checksum: str | None = None
        log.debug("loaded PocketSphinx in %.2f s", self.load_seconds)

    def close(self) -> None:
        """Free the decoder once the call in progress (if any) has returned; later calls raise."""
        with self._lock:
            self._decoder = None

    def _open_decoder(self) -> Any:
        if self._decoder is None:
            raise BackendError("this PocketSphinx backend was closed")
        return self._decoder

    # -- decoding ------------------------------------------------------------------------------

    def transcribe(self, audio: Audio) -> Transcript:
        """Recognise one clip as a whole utterance (resampled to 16 kHz if needed)."""
        pcm = _pcm16(audio)
        duration = len(pcm) / 2 / SAMPLE_RATE
        if not pcm:
            return Transcript("")  # an empty utterance only makes the decoder log a C-level error
        if not any(pcm):
            # All-zero PCM has no defined log energy: the decoder then emits a random word that depends on
            # its state from earlier calls ("dog", "is"), which would make results depend on order.
            return Transcript("", (), None, {"skipped": "digital silence"})
        with self._lock:
            self._open_decoder()
            try:
                # The feature front end keeps state between utterances: without this reset the same
                # clip gets different word posteriors depending on what was decoded before it.
                self._decoder.reinit_feat()
                self._decoder.start_utt()
                self._decoder.process_raw(pcm, full_utt=True)
                self._decoder.end_utt()
            except RuntimeError as exc:
                raise BackendError(f"PocketSphinx failed on a {duration:.2f} s clip: {exc}") from exc
            return self._result(duration)

    def _result(self, duration: float) -> Transcript:
        """The decoder's current result. Word confidence is the word's lattice posterior; the utterance
        confidence is the mean over its words (the path posterior ``prob`` shrinks with length, so it is
        kept in ``extras`` but is not a usable confidence)."""
        hyp = self._decoder.hyp()
        if hyp is None:
            return Transcript("", (), None, {})
        words = []
        for seg in self._decoder.seg():
            if _is_filler(seg.word):
                continue
            start = min(seg.start_frame / 100.0, duration)
            end = min((seg.end_frame + 1) / 100.0, duration)  # end frame is inclusive
            words.append(Word(_clean(seg.word), round(start, 3), round(end, 3), _posterior(seg.prob)))
        text = " ".join(w.text for w in words)
        confidence = float(np.mean([w.confidence for w in words])) if words else None
        return Transcript(
            text,
            tuple(words),
            confidence,
            {"score": float(hyp.score), "prob": float(hyp.prob), "raw_hyp": hyp.hypstr},
        )

    def transcribe_stream(self, audio: Audio, chunk_seconds: float = 0.5) -> list[StreamPartial]:
        """Feed the clip in chunks of ``chunk_seconds`` as a live stream would and record the partial
        hypothesis after each chunk, then the final one. Wall times are processing times (no sleeping)."""
        if chunk_seconds <= 0:
            raise UsageError(f"chunk_seconds={chunk_seconds} must be positive")
        pcm = _pcm16(audio)
        if not pcm:
            return [StreamPartial(0.0, "", 0.0, final=True)]
        step = max(1, round(chunk_seconds * SAMPLE_RATE)) * 2
        duration = len(pcm) / 2 / SAMPLE_RATE
        out: list[StreamPartial] = []
        with self._lock:
            self._open_decoder()
            started = time.perf_counter()
            try:
                self._decoder.reinit_feat()
                self._decoder.start_utt()
                for pos in range(0, len(pcm), step):
                    self._decoder.process_raw(pcm[pos : pos + step], full_utt=False)
                    hyp = self._decoder.hyp()
                    fed = min(pos + step, len(pcm)) / 2 / SAMPLE_RATE
                    out.append(StreamPartial(fed, _clean_text(hyp.hypstr if hyp else ""),
                                             time.perf_counter() - started))
                self._decoder.end_utt()
            except RuntimeError as exc:
                raise BackendError(f"PocketSphinx failed while streaming a {duration:.2f} s clip: {exc}") from exc
            final = self._result(duration)
            out.append(StreamPartial(duration, final.text, time.perf_counter() - started, final=True))
        return out

    # -- provenance ----------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        if self._checksum is None:
            root = Path(_common_root(self._model_files))
            self._checksum = model_checksum(root, self._model_files)
        return BackendInfo(
            name="sphinx",
            kind="asr",
            model=self._model_dir,
            model_checksum=self._checksum,
            options=options_dict(self.options),
            library_versions=library_versions("pocketsphinx"),
        )


def _posterior(prob: float) -> float:
    # PocketSphinx 5 gives linear word posteriors; its log-math approximation can overshoot 1 slightly.
    return float(min(1.0, max(0.0, prob)))


def _clean_text(hypstr: str) -> str:
    return " ".join(_clean(w) for w in hypstr.split() if not _is_filler(w))


def _common_root(paths: list[Path]) -> str:
    import os.path

    return os.path.commonpath([str(p.parent) for p in paths])


def align_words(pieces: list[tuple[str, np.ndarray]]) -> list[tuple[tuple[str, float, float], ...] | None]:
    """Forced alignment of known transcripts with PocketSphinx's bundled model (``set_align_text``): for
    each ``(text, 16 kHz float samples)`` the words of ``text`` (lower-cased, split on white space) with
    their start and end in seconds of the clip (10 ms frames, end frame inclusive), or None when a word is
    not in the bundled dictionary (it has no pronunciation to align), the clip is silent or the aligner
    did not return every word in order. One decoder for all pieces, reset before each."""
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise BackendUnavailable(
            f"pocketsphinx is not installed ({exc}); install with: pip install 'voxproof[sphinx]'") from exc
    decoder = Decoder(loglevel="ERROR")
    out: list[tuple[tuple[str, float, float], ...] | None] = []
    for text, samples in pieces:
        words = text.lower().split()
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        if not words or not any(pcm) or any(decoder.lookup_word(w) is None for w in words):
            out.append(None)
            continue
        duration = len(pcm) / 2 / SAMPLE_RATE
        try:
            decoder.set_align_text(" ".join(words))
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            segs = [(_clean(s.word), min(s.start_frame / 100.0, duration), min((s.end_frame + 1) / 100.0, duration))
                    for s in decoder.seg() if not _is_filler(s.word)]
        except RuntimeError as exc:
            log.warning("forced alignment failed on a %.2f s clip: %s", duration, exc)
            segs = []
        out.append(tuple((w, round(a, 3), round(b, 3)) for w, a, b in segs)
                   if [w for w, _, _ in segs] == words else None)
    return out
