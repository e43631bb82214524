"""Decoding stage: turns an audio file, URL or in-memory bytes into an :class:`~voxproof.audio.signal.Audio`.

WAV/FLAC/OGG (and the other libsndfile formats) are read with soundfile, block by block; everything else
(MP3, M4A/AAC, Opus, WebM, AMR, video containers) goes through an ffmpeg subprocess
(:mod:`voxproof.audio.ffmpeg`). Multi-channel audio is mixed down to mono (mean of the channels), and
the result is resampled with soxr when a rate is requested.

Limits (:class:`AudioLimits`) are enforced while decoding: the file size before anything is read, the
decoded duration block by block, so a small file that decodes to hours stops at the limit instead of
filling memory. :data:`DEFAULT_LIMITS` (600 s, 192 kHz, no URLs) is the one safe default every entry point
uses (eval, audit, the TTS floor, the gate, serving), so peak decoding memory is bounded by
``max_seconds * max_sample_rate * 4`` bytes plus one block. Only regular files are read (after resolving
symlinks): devices, FIFOs and sockets are refused before they are opened. Every failure is one of the
typed errors in :mod:`voxproof.errors`.

Hands on an ``Audio`` to the runner, the auditor and the TTS evaluator; :func:`probe_audio` hands the
auditor a cheap header read (:class:`AudioInfo`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Union

import numpy as np

from voxproof.audio import ffmpeg as _ffmpeg
from voxproof.audio.remote import DOWNLOAD_TIMEOUT_S, downloaded, is_url, normalise_hosts
from voxproof.audio.signal import Audio
from voxproof.errors import (
    AudioNotFound,
    AudioSourceRefused,
    AudioTooLarge,
    CorruptAudio,
    EmptyAudio,
    UnsupportedAudio,
    UsageError,
)

log = logging.getLogger("voxproof.audio")

AudioSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

#: Suffixes read with soundfile (libsndfile). Anything else goes to ffmpeg.
SOUNDFILE_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".w64",
        ".caf",
        ".rf64",
    }
)
#: Suffixes decoded through ffmpeg.
FFMPEG_SUFFIXES = frozenset(
    {
        ".mp3",
        ".m4a",
        ".mp4",
        ".aac",
        ".opus",
        ".webm",
        ".amr",
        ".3gp",
        ".wma",
        ".mka",
        ".mkv",
        ".mov",
        ".ac3",
        ".mp2",
        ".spx",
    }
)
#: Every suffix voxproof treats as audio (used by manifest readers to find files).
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | FFMPEG_SUFFIXES

_BLOCK_FRAMES = 1 << 18  # frames per soundfile read (16 s at 16 kHz)
_UNKNOWN_FRAMES = 1 << 62  # libsndfile reports INT64_MAX frames when the length is unknown
_MAX_WAV_CHUNKS = 4096  # RIFF chunks walked by the header check before giving up (a crafted file has millions)


@dataclass(frozen=True)
class AudioLimits:
    """Resource limits for decoding one source; :data:`DEFAULT_LIMITS` is the shared safe default.

    ``max_file_bytes``: largest local file (or byte string) accepted, in bytes (2 GiB: a long recording
    read by segments is fine; only the segment is decoded).
    ``max_seconds``: longest decoded audio accepted, in seconds (600; checked while decoding, after
    ``offset``/``duration`` are applied).
    ``max_sample_rate``: highest sample rate accepted, in Hz (192 kHz); with ``max_seconds`` it bounds the
    decoded samples, so a decode never holds more than ``max_seconds * max_sample_rate`` float32 samples
    (460 MB at the defaults; 38 MB for 600 s at 16 kHz).
    ``decode_timeout_s``: wall-clock seconds an ffmpeg decode may take before it is killed
    (``CorruptAudio``); soundfile decoding is bounded by ``max_seconds`` alone.
    ``url_hosts``: hosts http(s) URLs may be fetched from (empty: URLs are refused; ``*``: any public host);
    ``max_download_bytes`` (256 MiB) and ``download_timeout_s`` (60 s, the whole fetch) cap one download.
    """

    max_file_bytes: int = 2 * 1024**3
    max_seconds: float = 600.0
    decode_timeout_s: float = 600.0
    max_sample_rate: int = 192_000
    url_hosts: tuple[str, ...] = ()
    max_download_bytes: int = 256 * 1024**2
    download_timeout_s: float = DOWNLOAD_TIMEOUT_S

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_sample_rate", "max_download_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UsageError(f"AudioLimits.{name} must be a positive integer, got {value!r}")
        for name in ("max_seconds", "decode_timeout_s", "download_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > 0
            ):
                raise UsageError(f"AudioLimits.{name} must be a positive number, got {value!r}")
        object.__setattr__(self, "url_hosts", normalise_hosts(self.url_hosts))

    @classmethod
    def default(cls) -> AudioLimits:
        """The shared safe default (:data:`DEFAULT_LIMITS`)."""
        return DEFAULT_LIMITS

    def replace(self, **changes: Any) -> AudioLimits:
        """A copy with some limits changed (validated like the original)."""
        return replace(self, **changes)

    def max_frames(self, sample_rate: int) -> int:
        """The decoded-length limit in samples at ``sample_rate`` Hz."""
        return math.ceil(self.max_seconds * sample_rate)


#: The one default every entry point decodes with (eval, audit, TTS floor, gate, serve).
DEFAULT_LIMITS = AudioLimits()


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, without decoding it.

    ``frames`` is the length in samples per channel (None when the header does not say);
    ``format`` is the container (libsndfile's name such as ``WAV``/``FLAC``/``OGG``, or ffmpeg's such as
    ``mp3``/``ogg``); ``codec`` the encoding (``PCM_16``, ``VORBIS``, ``opus``...); ``file_bytes`` the size.
    """

    sample_rate: int
    channels: int
    frames: int | None
    format: str
    codec: str
    file_bytes: int

    @property
    def duration(self) -> float | None:
        """Length in seconds, or None when unknown."""
        return None if self.frames is None else self.frames / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration"] = self.duration
        return out


class _NotRecognised(Exception):
    """libsndfile does not know this format; ffmpeg may."""


# --------------------------------------------------------------------------------------------- public


def load_audio(
    source: AudioSource,
    *,
    sample_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> Audio:
    """Decode ``source`` into mono float32 :class:`Audio`.

    ``source``: a path to a regular file, an ``http(s)://`` URL (fetched only from ``limits.url_hosts``,
    within ``limits.max_download_bytes``), or the bytes of an audio file. ``sample_rate`` (Hz): resample to this rate
    (soxr); None keeps the file's rate. ``offset``/``duration`` (seconds) select a segment; ``duration=None``
    reads to the end. A segment running past the end of the file returns what is there (logged).

    Raises ``AudioNotFound``, ``EmptyAudio`` (zero bytes, zero channels, no samples, offset past the
    end), ``CorruptAudio`` (unreadable, truncated, header disagreeing with the data, NaN/inf samples),
    ``AudioTooLarge`` (over ``limits``), ``UnsupportedAudio`` (needs ffmpeg, which is missing),
    ``AudioSourceRefused`` (a device, FIFO or socket; a URL whose host is not allowed; a playlist), and
    ``UsageError`` for a bad ``sample_rate``/``offset``/``duration``.
    """
    return decode_audio(source, sample_rate=sample_rate, offset=offset, duration=duration, limits=limits).audio


@dataclass(frozen=True)
class DecodedAudio:
    """:func:`decode_audio`'s result: the mono ``audio`` and the source's ``channels`` before mixing."""

    audio: Audio
    channels: int


def decode_audio(
    source: AudioSource,
    *,
    sample_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> DecodedAudio:
    """:func:`load_audio` plus the channel count, from one read (one fetch for a URL)."""
    sample_rate, offset, duration = _check_request(sample_rate, offset, duration)
    with _local_file(source, limits) as (path, label):
        samples, rate, channels = _decode_path(path, label, offset, duration, limits)
    audio = Audio(np.ascontiguousarray(samples, dtype=np.float32), rate)
    if sample_rate is not None and sample_rate != rate:
        audio = audio.resampled(sample_rate)
    return DecodedAudio(audio, channels)


def probe_audio(source: AudioSource, *, limits: AudioLimits = DEFAULT_LIMITS) -> AudioInfo:
    """Read the header of ``source`` (path, URL or bytes) without decoding the samples.

    Raises the same typed errors as :func:`load_audio`; a WAV whose header declares more data than the
    file holds raises ``CorruptAudio``.
    """
    with _local_file(source, limits) as (path, label):
        size = path.stat().st_size
        if not _wants_ffmpeg(path):
            try:
                return _probe_soundfile(path, label, size)
            except _NotRecognised as exc:
                if not _ffmpeg.ffmpeg_available():
                    raise _unrecognised(label, exc) from exc
        info = _ffmpeg.probe_stream(path)
        frames = None if info.duration is None else round(info.duration * info.sample_rate)
        return AudioInfo(info.sample_rate, info.channels, frames, info.container, info.codec, size)


# ----------------------------------------------------------------------------------------- sources


def _check_request(sample_rate: Any, offset: Any, duration: Any) -> tuple[int | None, float, float | None]:
    """The request as (rate, offset, duration) of the right types; ``UsageError`` naming a bad value."""
    if sample_rate is not None:
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, (int, np.integer))
            or sample_rate <= 0
        ):
            raise UsageError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
        sample_rate = int(sample_rate)
    try:
        offset = float(offset)
        duration = None if duration is None else float(duration)
    except (TypeError, ValueError):
        raise UsageError(
            f"offset and duration must be numbers of seconds, got {offset!r}, {duration!r}"
        ) from None
    if not (math.isfinite(offset) and offset >= 0):
        raise UsageError(f"offset must be a non-negative number of seconds, got {offset!r}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UsageError(f"duration must be a positive number of seconds or None, got {duration!r}")
    return sample_rate, offset, duration


@contextlib.contextmanager
def _local_file(source: AudioSource, limits: AudioLimits) -> Iterator[tuple[Path, str]]:
    """Yield (local path, label for messages) for a path, URL or bytes; checks existence and file size."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyAudio("the audio data is empty (0 bytes)")
        if len(data) > limits.max_file_bytes:
            raise AudioTooLarge(
                f"the audio data is {len(data):,} bytes, over the {limits.max_file_bytes:,}-byte limit "
                "(AudioLimits.max_file_bytes)"
            )
        fd, name = tempfile.mkstemp(prefix=f"voxproof-url-{os.getpid()}-")  # swept like downloads
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            yield Path(name), "<audio bytes>"
        finally:
            Path(name).unlink(missing_ok=True)
        return
    if is_url(source):
        with downloaded(
            str(source),
            hosts=limits.url_hosts,
            max_bytes=min(limits.max_download_bytes, limits.max_file_bytes),
            timeout=limits.download_timeout_s,
        ) as path:
            yield path, str(source)
        return
    try:
        path = Path(os.fspath(source))  # type: ignore[arg-type]
    except TypeError as exc:
        raise UsageError(
            f"audio source must be a path, an http(s) URL or bytes, got {type(source).__name__}"
        ) from exc
    label = str(path)
    st = regular_file_stat(path, label)
    if st.st_size == 0:
        raise EmptyAudio(f"{label} is empty (0 bytes)")
    if st.st_size > limits.max_file_bytes:
        raise AudioTooLarge(
            f"{label} is {st.st_size:,} bytes, over the {limits.max_file_bytes:,}-byte limit "
            "(AudioLimits.max_file_bytes)"
        )
    yield path, label


def regular_file_stat(path: str | os.PathLike[str], label: str | None = None) -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed) when it is a regular file; raises ``AudioNotFound``
    when it is missing and ``AudioSourceRefused`` for a directory, device, FIFO or socket (reading
    ``/dev/zero`` or a FIFO never ends) or a path with a NUL byte. Shared with the dataset hash."""
    label = label if label is not None else str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise AudioNotFound(f"audio file not found: {label}; check the path") from exc
    except ValueError as exc:  # embedded NUL byte
        raise AudioSourceRefused(f"audio path {label!r} contains a NUL byte; fix the manifest") from exc
    except OSError as exc:
        raise AudioNotFound(f"cannot access audio file {label}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise AudioNotFound(f"{label} is not a file (a directory?); give the path of an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = _file_kind(st.st_mode)
        raise AudioSourceRefused(
            f"{label} is {kind}, not a regular file; voxproof reads audio only from regular files "
            "(symlinks are followed)"
        )
    return st


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _wants_ffmpeg(path: Path) -> bool:
    """True for ffmpeg suffixes, and for files without a known suffix (such as uploaded bytes) whose
    first bytes say MP3, MP4/M4A, Matroska/WebM or AMR, so a format decodes the same way with or
    without its suffix."""
    suffix = path.suffix.lower()
    if suffix in FFMPEG_SUFFIXES:
        return True
    if suffix in SOUNDFILE_SUFFIXES:
        return False
    with path.open("rb") as fh:
        return ffmpeg_magic(fh.read(12))


def ffmpeg_magic(head: bytes) -> bool:
    """True when a file's first 12 bytes say MP3, MP4/M4A, Matroska/WebM or AMR: formats that only
    ffmpeg (a subprocess) decodes here."""
    return (
        head.startswith((b"ID3", b"#!AMR", b"\x1a\x45\xdf\xa3"))
        or head[4:8] == b"ftyp"
        or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MPEG audio frame sync
    )


def _decode_path(
    path: Path, label: str, offset: float, duration: float | None, limits: AudioLimits
) -> tuple[np.ndarray, int, int]:
    if _wants_ffmpeg(path):
        return _decode_ffmpeg(path, label, offset, duration, limits)
    try:
        return _decode_soundfile(path, label, offset, duration, limits)
    except _NotRecognised as exc:
        if not _ffmpeg.ffmpeg_available():
            raise _unrecognised(label, exc) from exc
        try:
            return _decode_ffmpeg(path, label, offset, duration, limits)
        except (CorruptAudio, EmptyAudio) as exc2:
            raise CorruptAudio(
                f"{label} is not a readable audio file: libsndfile does not recognise its format and ffmpeg "
                "cannot decode it either; check it is a complete audio file"
            ) from exc2


def _unrecognised(label: str, exc: Exception) -> Exception:
    suffix = Path(label).suffix.lower()
    if suffix in SOUNDFILE_SUFFIXES:
        return CorruptAudio(f"{label} is not a readable {suffix[1:].upper()} file ({exc}); check the file")
    return UnsupportedAudio(
        f"cannot decode {label}: libsndfile does not recognise it and ffmpeg is not installed; "
        "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)"
    )


# ---------------------------------------------------------------------------------------- soundfile


def _open_soundfile(path: Path, label: str) -> Any:
    import soundfile as sf

    try:
        return sf.SoundFile(str(path))
    except sf.LibsndfileError as exc:
        if exc.code == 1:  # SF_ERR_UNRECOGNISED_FORMAT
            raise _NotRecognised(exc.error_string) from exc
        raise CorruptAudio(f"cannot read {label}: {exc.error_string}; the file looks corrupt") from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise CorruptAudio(f"cannot read {label}: {exc}; the file looks corrupt") from exc


def _probe_soundfile(path: Path, label: str, size: int) -> AudioInfo:
    with _open_soundfile(path, label) as f:
        if f.channels <= 0:
            raise EmptyAudio(f"{label} has zero channels")
        frames = f.frames if 0 <= f.frames < _UNKNOWN_FRAMES else None
        if f.format in ("WAV", "WAVEX"):
            _check_wav_header(path, label)
        return AudioInfo(int(f.samplerate), int(f.channels), frames, str(f.format), str(f.subtype), size)


def _decode_soundfile(
    path: Path, label: str, offset: float, duration: float | None, limits: AudioLimits
) -> tuple[np.ndarray, int, int]:
    import soundfile as sf

    with _open_soundfile(path, label) as f:
        rate, channels = int(f.samplerate), int(f.channels)
        if channels <= 0:
            raise EmptyAudio(f"{label} has zero channels")
        if rate <= 0:
            raise CorruptAudio(f"{label} declares a sample rate of {rate} Hz")
        _check_rate(rate, label, limits)
        if f.format in ("WAV", "WAVEX"):
            _check_wav_header(path, label)
        declared = f.frames if 0 <= f.frames < _UNKNOWN_FRAMES else None
        start = round(offset * rate)
        want = None if duration is None else max(1, round(duration * rate))
        max_frames = limits.max_frames(rate)
        if declared is not None:
            if start > 0 and start >= declared:
                raise EmptyAudio(
                    f"offset {offset:g} s is at or past the end of {label} ({declared / rate:.3f} s long)"
                )
            expected = declared - start if want is None else min(want, declared - start)
            if expected > max_frames:
                raise AudioTooLarge(
                    f"{label} declares {expected / rate:,.1f} s of audio, over the {limits.max_seconds:g}-s limit; "
                    "give an offset/duration, split the file, or raise AudioLimits.max_seconds"
                )
        else:
            expected = want if want is not None else _BLOCK_FRAMES
        if start > 0:
            _skip_to(f, start, label)
        buf = _Samples(min(expected, max_frames))
        try:
            while want is None or buf.size < want:
                n = _BLOCK_FRAMES if want is None else min(_BLOCK_FRAMES, want - buf.size)
                block = f.read(n, dtype="float32", always_2d=True)
                if not len(block):
                    break
                if buf.size + len(block) > max_frames:
                    raise AudioTooLarge(
                        f"{label} decodes to more than {limits.max_seconds:g} s of audio (stopped decoding there); "
                        "give an offset/duration, split the file, or raise AudioLimits.max_seconds"
                    )
                buf.append(block[:, 0] if channels == 1 else block.mean(axis=1, dtype=np.float32))
        except sf.LibsndfileError as exc:
            raise CorruptAudio(
                f"{label} is truncated or corrupt: decoding failed after {buf.size / rate:.3f} s "
                f"({exc.error_string})"
            ) from exc
        got = buf.size
        if declared is not None and want is None and got < declared - start:
            raise CorruptAudio(
                f"{label} is truncated: its header declares {declared / rate:.3f} s but only "
                f"{(start + got) / rate:.3f} s could be decoded; re-export or drop the file"
            )
    if want is not None and got < want:
        log.warning(
            "segment of %s at %.3f s for %.3f s runs past the end of the file; got %.3f s",
            label,
            offset,
            duration,
            got / rate,
        )
    return _finish(buf.view(), label, offset), rate, channels


def _check_rate(rate: int, label: str, limits: AudioLimits) -> None:
    if rate > limits.max_sample_rate:
        raise AudioTooLarge(
            f"{label} declares a sample rate of {rate:,} Hz, over the {limits.max_sample_rate:,}-Hz limit "
            "(AudioLimits.max_sample_rate); resample it first"
        )


def _skip_to(f: Any, start: int, label: str) -> None:
    """Seek to frame ``start``; when the file cannot seek, read and drop frames instead."""
    try:
        if f.seekable():
            f.seek(start)
            return
    except (RuntimeError, ValueError):
        pass
    left = start
    while left > 0:
        block = f.read(min(_BLOCK_FRAMES, left), dtype="float32", always_2d=True)
        if not len(block):
            raise EmptyAudio(f"offset {start / f.samplerate:g} s is past the end of {label}")
        left -= len(block)


def _check_wav_header(path: Path, label: str) -> None:
    """Raise ``CorruptAudio`` when a RIFF/WAVE header declares more sample data than the file holds.

    libsndfile silently clamps the length to what is present, so a truncated WAV would otherwise decode
    as a shorter clip. A data size of 0 or 0xFFFFFFFF (written by streaming recorders) means unknown.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        block_align, byte_rate, pos = 1, 0, 12
        for _ in range(_MAX_WAV_CHUNKS):
            if pos + 8 > size:
                return
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"fmt ":
                fmt = fh.read(min(chunk_size, 16))
                if len(fmt) >= 14:
                    _, _, _, byte_rate, block_align = struct.unpack("<HHIIH", fmt[:14])
            elif chunk_id == b"data":
                present = size - (pos + 8)
                if chunk_size in (0, 0xFFFFFFFF) or present >= chunk_size:
                    return
                missing = chunk_size - present
                if missing < max(block_align, 1):
                    return
                seconds = f" ({missing / byte_rate:.3f} s)" if byte_rate else ""
                raise CorruptAudio(
                    f"{label} is truncated or its header lies: the WAV header declares {chunk_size:,} bytes of "
                    f"audio but the file holds {present:,}; {missing:,} bytes{seconds} are missing"
                )
            pos += 8 + chunk_size + (chunk_size & 1)


# ------------------------------------------------------------------------------------------- ffmpeg


def _decode_ffmpeg(
    path: Path, label: str, offset: float, duration: float | None, limits: AudioLimits
) -> tuple[np.ndarray, int, int]:
    samples, rate, channels = _ffmpeg.decode_with_ffmpeg(
        path,
        offset=offset,
        duration=duration,
        max_seconds=limits.max_seconds,
        timeout=limits.decode_timeout_s,
        max_sample_rate=limits.max_sample_rate,
    )
    if duration is not None and len(samples) < round(duration * rate) - 1:
        log.warning(
            "segment of %s at %.3f s for %.3f s runs past the end of the file; got %.3f s",
            label,
            offset,
            duration,
            len(samples) / rate,
        )
    return _finish(samples, label, offset), rate, channels


# ------------------------------------------------------------------------------------------- shared


def _finish(samples: np.ndarray, label: str, offset: float) -> np.ndarray:
    if samples.size == 0:
        where = f" after offset {offset:g} s" if offset > 0 else ""
        raise EmptyAudio(f"{label} decodes to no samples{where}")
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise CorruptAudio(f"{label} decodes to {bad:,} NaN or infinite samples; the file is corrupt")
    return samples


class _Samples:
    """A growable float32 buffer: preallocated to the expected length, doubled when a header undersold."""

    def __init__(self, capacity: int):
        self._data = np.empty(max(int(capacity), 1), dtype=np.float32)
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        end = self.size + len(block)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = block
        self.size = end

    def view(self) -> np.ndarray:
        if self.size < len(self._data) // 2:  # do not keep a mostly unused allocation alive
            return self._data[: self.size].copy()
        return self._data[: self.size]
