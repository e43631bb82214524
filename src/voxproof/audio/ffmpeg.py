"""Decoding stage, ffmpeg half: formats libsndfile cannot read (MP3, M4A/AAC, Opus, WebM, AMR, video).

``ffprobe`` reads the stream parameters, ``ffmpeg`` decodes to 32-bit float mono PCM on a pipe, and
the pipe is read in chunks so the decoded length is checked while decoding: once it passes the limit
the process is killed. Hands a float32 array and its rate to :mod:`voxproof.audio.io`.

The path is always passed as ``file:<absolute path>`` with ``-protocol_whitelist file``, so a manifest
entry can never make ffmpeg open a network or ``concat:``/``subfile`` URL, and ``-nostdin`` keeps it
from reading the terminal.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxproof.errors import AudioTooLarge, CorruptAudio, EmptyAudio, UnsupportedAudio

log = logging.getLogger("voxproof.audio")

_CHUNK_BYTES = 1 << 20  # 1 MiB of float32 = 262,144 samples per read
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
    sample_rate: int,
    *,
    channels: int = 1,
    offset: float = 0.0,
    duration: float | None = None,
    max_frames: int,
    max_seconds: float,
    timeout: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz (ffmpeg resamples only if the stream's rate
    differs; callers pass the probed native rate).

    ``channels`` is the stream's channel count: ffmpeg outputs that many interleaved channels and they
    are averaged here, chunk by chunk, so the mix-down is the plain channel mean, as for soundfile
    formats (ffmpeg's own ``-ac 1`` scales stereo by 1/sqrt(2) instead).
    ``offset``/``duration`` select a segment in seconds. Reading stops and ffmpeg is killed as soon as
    more than ``max_frames`` frames have come out (``AudioTooLarge``, naming ``max_seconds``), or when
    decoding takes longer than ``timeout`` seconds of wall time (``CorruptAudio``).
    """
    exe = _require("ffmpeg", path)
    channels = max(1, int(channels))
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file"]
    if offset > 0:
        cmd += ["-ss", f"{offset:.6f}"]
    cmd += ["-i", _file_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"]
    frame_bytes = 4 * channels
    read_size = max(frame_bytes, _CHUNK_BYTES - _CHUNK_BYTES % frame_bytes)
    mono = bytearray()  # float32 mono samples, grown chunk by chunk
    frames = 0
    too_large = timed_out = False
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
            pending = b""
            while True:
                chunk = stdout.read(read_size)
                if not chunk:
                    break
                data = pending + chunk
                usable = len(data) - len(data) % frame_bytes
                pending = data[usable:]
                block = np.frombuffer(data, dtype="<f4", count=usable // 4)
                frames += usable // frame_bytes
                if frames > max_frames:
                    too_large = True
                    break
                if channels > 1:
                    block = block.reshape(-1, channels).mean(axis=1, dtype=np.float32)
                mono += block.astype(np.float32, copy=False).tobytes()
            finished = True
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if not finished or too_large:
                proc.kill()
            stdout.close()
            returncode = proc.wait()
        errfile.seek(0)
        err = errfile.read().decode("utf-8", "replace").strip()
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
    if returncode != 0:
        raise CorruptAudio(
            f"ffmpeg could not decode {path}: {_last_line(err) or f'exit status {returncode}'}"
        )
    if err:
        log.warning("ffmpeg reported problems decoding %s: %s", path, _last_line(err))
    return np.frombuffer(mono, dtype=np.float32)


def _float_or_none(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
