"""Decoding WAV bytes that a synthesiser hands back (a subprocess pipe or an HTTP body) into ``Audio``.

Streamed WAV often carries placeholder sizes in its header (eSpeak NG writes 0x7ffff000 when its
``--stdout`` is a pipe), so the data chunk is read up to the end of the bytes actually received.
Handles integer PCM (8, 16, 24, 32 bit) and 32/64-bit float, any channel count (averaged to mono).
"""

from __future__ import annotations

import struct

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import BackendError

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE


def decode_wav(data: bytes, *, source: str) -> Audio:
    """Mono float32 ``Audio`` from WAV bytes. ``source`` names where the bytes came from, for errors."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        head = data[:16]
        raise BackendError(f"{source} did not return WAV audio ({len(data)} bytes, starting {head!r})")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                break
            code, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if code == _EXTENSIBLE and size >= 26:
                (code,) = struct.unpack("<H", data[body + 24 : body + 26])
            fmt = (code, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise BackendError(f"{source} returned WAV whose data chunk comes before its format chunk")
            end = min(body + size, len(data))  # the header size may be a placeholder
            return _samples(data[body:end], fmt, source)
        pos = body + size + (size & 1)
    raise BackendError(f"{source} returned WAV without a readable format and data chunk ({len(data)} bytes)")


def _samples(raw: bytes, fmt: tuple[int, int, int, int], source: str) -> Audio:
    code, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise BackendError(f"{source} returned WAV with {channels} channels at {rate} Hz")
    width = bits // 8
    frame = width * channels
    raw = raw[: len(raw) - len(raw) % frame] if frame else b""
    if code == _PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif code == _PCM and bits == 32:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif code == _PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    elif code == _PCM and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif code == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
    else:
        raise BackendError(f"{source} returned WAV in an unsupported encoding (format {code}, {bits} bit)")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return Audio(np.ascontiguousarray(x, dtype=np.float32), int(rate))
