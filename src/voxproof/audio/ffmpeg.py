"""Decoding stage, ffmpeg half: formats libsndfile cannot read (MP3, M4A/AAC, Opus, WebM, AMR, video).

``ffprobe`` reads the stream parameters, ``ffmpeg`` decodes to 32-bit float mono PCM on a pipe, and
the pipe is read in chunks so the decoded length is checked while decoding: once it passes the limit
the process is killed. Hands a float32 array and its rate to :mod:`voxproof.audio.io`.

The path is always passed as ``file:<absolute path>`` with ``-protocol_whitelist file``, so a manifest
entry can never make ffmpeg open a network or ``concat:``/``subfile`` URL, and ``-nostdin`` keeps it
from reading the terminal. ``-format_whitelist`` (:data:`DEMUXERS`) admits only single-file audio and
media containers, so a file that is really an HLS playlist (``#EXTM3U``) or an ``ffconcat`` list cannot
pull other local files into the decode (ffmpeg's probe would otherwise open them).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from voxproof.errors import AudioTooLarge, CorruptAudio, EmptyAudio, UnsupportedAudio

log = logging.getLogger("voxproof.audio")

_CHUNK_BYTES = 1 << 20  # 1 MiB of float32 = 262,144 samples per read
#: ffmpeg demuxers voxproof lets decode (single-file containers; no playlists, concat lists or manifests).
DEMUXERS = (
    "aac,ac3,aiff,amr,amrnb,amrwb,ape,asf,au,caf,eac3,flac,matroska,mov,mp3,ogg,w64,wav,wv"
)
_INSTALL_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)"


@dataclass(frozen=True)
class StreamInfo:
    """What ffprobe says about the first audio stream of a file. ``duration`` in seconds, or None."""

    sample_rate: int
    channels: int
    duration: float | None
    codec: str
    container: str


def ffmpeg_available() -> bool:
    """True when both ``ffmpeg`` and ``ffprobe`` are on PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _require(tool: str, path: Path) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise UnsupportedAudio(
            f"cannot decode {path}: this format needs {tool}, which is not on PATH; {_INSTALL_HINT}"
        )
    return exe


def _file_url(path: Path) -> str:
    return "file:" + str(path.resolve())


def probe_stream(path: Path) -> StreamInfo:
    """Sample rate, channels, duration and codec of the first audio stream (ffprobe; no decoding)."""
    exe = _require("ffprobe", path)
    cmd = [
        exe,
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXERS,
        "-show_entries",
        "stream=codec_type,sample_rate,channels,duration,codec_name:format=duration,format_name",
        "-of",
        "json",
        _file_url(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CorruptAudio(
            f"ffprobe took over 60 s to read the header of {path}; the file looks corrupt"
        ) from exc
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        raise CorruptAudio(
            f"cannot read {path} as audio (ffprobe: {_last_line(err)}); check the file is a valid audio file"
        )
    try:
        data = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise CorruptAudio(f"ffprobe gave unreadable output for {path}") from exc
    all_streams = data.get("streams") or []
    streams = [s for s in all_streams if s.get("codec_type") == "audio"]
    fmt = data.get("format") or {}
    if not streams:
        if any(s.get("codec_type") == "video" for s in all_streams):
            raise EmptyAudio(f"{path} has video but no audio stream; give a file with sound")
        found = (
            f"it reads as {fmt['format_name']!r} with no audio stream"
            if fmt.get("format_name")
            else (_last_line(err) or "format not recognised")
        )
        raise CorruptAudio(f"cannot read {path} as audio ({found}); check the file is a valid audio file")
    stream = streams[0]
    try:
        rate = int(stream.get("sample_rate") or 0)
        channels = int(stream.get("channels") or 0)
    except (TypeError, ValueError) as exc:
        raise CorruptAudio(f"ffprobe reports an unreadable sample rate or channel count for {path}") from exc
    if channels <= 0:
        raise EmptyAudio(f"{path} has an audio stream with zero channels")
    if rate <= 0:
        raise CorruptAudio(f"{path} has an audio stream with no sample rate")
    duration = _float_or_none(stream.get("duration")) or _float_or_none(fmt.get("duration"))
    return StreamInfo(
        rate, channels, duration, str(stream.get("codec_name") or "?"), str(fmt.get("format_name") or "?")
    )


def decode_with_ffmpeg(
    path: Path,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    max_seconds: float,
    timeout: float | None = None,
    max_sample_rate: int | None = None,
) -> tuple[np.ndarray, int, int]:
    """Decode ``path`` to (mono float32 samples, native rate in Hz, channels) with one ffmpeg process.

    ffmpeg writes a float WAV stream to a pipe; its header gives the rate and channel count, and the
    channels are averaged here chunk by chunk, so the mix-down is the plain channel mean, as for
    soundfile formats (ffmpeg's own ``-ac 1`` scales stereo by 1/sqrt(2) instead).
    ``offset``/``duration`` select a segment in seconds. Reading stops and ffmpeg is killed as soon as
    more than ``max_seconds`` of audio has come out (``AudioTooLarge``), or when decoding takes longer
    than ``timeout`` seconds of wall time (``CorruptAudio``); a rate over ``max_sample_rate`` Hz is
    refused before any sample is read (``AudioTooLarge``). When ffmpeg fails, ffprobe classifies the
    file (no audio stream: ``EmptyAudio``; not audio at all: ``CorruptAudio``).
    """
    exe = _require("ffmpeg", path)
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file"]
    cmd += ["-format_whitelist", DEMUXERS]
    if offset > 0:
        cmd += ["-ss", f"{offset:.6f}"]
    cmd += ["-i", _file_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    mono = bytearray()  # float32 mono samples, grown chunk by chunk
    rate = channels = 0
    too_large = timed_out = rate_too_high = False
    with tempfile.TemporaryFile() as errfile:  # a file, not a pipe: a chatty decoder cannot deadlock us
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errfile)
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - Popen always gives a pipe for stdout=PIPE
            raise RuntimeError("ffmpeg started without an output pipe")

        def _expire() -> None:
            nonlocal timed_out
            timed_out = True
            proc.kill()

        watchdog = threading.Timer(timeout, _expire) if timeout else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        finished = False
        try:
            header = _read_wav_header(stdout)
            if header is not None:
                rate, channels = header
                if max_sample_rate is not None and rate > max_sample_rate:
                    rate_too_high = True
                    raise _Stop
                frame_bytes = 4 * channels
                max_frames = math.ceil(max_seconds * rate)
                read_size = max(frame_bytes, _CHUNK_BYTES - _CHUNK_BYTES % frame_bytes)
                frames = 0
                pending = b""
                while True:
                    chunk = stdout.read(read_size)
                    if not chunk:
                        break
                    data = pending + chunk
                    usable = len(data) - len(data) % frame_bytes
                    pending = data[usable:]
                    frames += usable // frame_bytes
                    if frames > max_frames:
                        too_large = True
                        break
                    block = np.frombuffer(data, dtype="<f4", count=usable // 4)
                    if channels > 1:
                        block = block.reshape(-1, channels).mean(axis=1, dtype=np.float32)
                    mono += block.astype(np.float32, copy=False).tobytes()
            finished = True
        except _Stop:
            pass
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if not finished or too_large or rate_too_high:
                proc.kill()
            stdout.close()
            returncode = proc.wait()
        errfile.seek(0)
        err = errfile.read().decode("utf-8", "replace").strip()
    if rate_too_high:
        raise AudioTooLarge(
            f"{path} has a sample rate of {rate:,} Hz, over the {max_sample_rate:,}-Hz limit "
            "(AudioLimits.max_sample_rate); resample it first"
        )
    if too_large:
        raise AudioTooLarge(
            f"{path} decodes to more than {max_seconds:g} s of audio (stopped decoding there); "
            "split the file, give an offset/duration, or raise AudioLimits.max_seconds"
        )
    if timed_out:
        raise CorruptAudio(
            f"ffmpeg took more than {timeout:g} s to decode {path}; the file looks corrupt or pathological "
            "(raise AudioLimits.decode_timeout_s if it is just very long)"
        )
    if returncode != 0 or rate <= 0:
        probe_stream(path)  # raises EmptyAudio/CorruptAudio with the reason when the file is not audio
        raise CorruptAudio(
            f"ffmpeg could not decode {path}: {_last_line(err) or f'exit status {returncode}'}"
        )
    if err:
        log.warning("ffmpeg reported problems decoding %s: %s", path, _last_line(err))
    return np.frombuffer(mono, dtype=np.float32), rate, channels


class _Stop(Exception):
    """Stop reading ffmpeg's output early (the process is killed in ``finally``)."""


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _read_wav_header(stream: IO[bytes]) -> tuple[int, int] | None:
    """Read ffmpeg's streamed WAV header up to the start of the data: (rate, channels), or None."""
    head = _read_exact(stream, 12)
    if head is None or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    rate = channels = 0
    while True:
        chunk = _read_exact(stream, 8)
        if chunk is None:
            return None
        chunk_id, size = struct.unpack("<4sI", chunk)
        if chunk_id == b"data":
            return (rate, channels) if rate > 0 and channels > 0 else None
        body = _read_exact(stream, size + (size & 1))
        if body is None:
            return None
        if chunk_id == b"fmt " and size >= 16:
            _tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
            if bits != 32:
                return None


def _float_or_none(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
