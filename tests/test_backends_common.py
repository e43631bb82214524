"""What all backends share: light imports, registry targets, model checksums, WAV decoding."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from voxproof.backends import list_backends
from voxproof.backends._checksum import file_sha256, model_checksum
from voxproof.backends._wav import decode_wav
from voxproof.errors import BackendError
from voxproof.options import options_dict

HEAVY = ["ctranslate2", "faster_whisper", "pocketsphinx", "onnxruntime", "piper", "httpx", "soundfile", "torch"]


def test_importing_backends_and_their_options_loads_no_model_library():
    code = (
        "import sys, json, voxproof.backends as b\n"
        "for spec in b.list_backends(): spec.options_class()\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("spec", list_backends(), ids=lambda s: s.name)
def test_every_registered_backend_has_frozen_defaulted_options(spec):
    cls = spec.options_class()
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    options = cls()  # every field has a default
    json.dumps(options_dict(options))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.__setattr__(dataclasses.fields(cls)[0].name, None)
    assert spec.missing() == [], f"{spec.name} should be installed here: {spec.install_hint()}"


def test_file_checksum_is_plain_sha256_and_cached(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert model_checksum(path) == file_sha256(path)


def test_directory_checksum_covers_names_and_contents(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"alpha")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"beta")
    first = model_checksum(tmp_path)
    lines = "".join(
        f"{rel}\t{hashlib.sha256(data).hexdigest()}\n" for rel, data in [("a.bin", b"alpha"), ("sub/b.txt", b"beta")]
    )
    assert first == hashlib.sha256(lines.encode()).hexdigest()
    (tmp_path / "sub" / "b.txt").write_bytes(b"gamma")  # new size: not served from the cache
    assert model_checksum(tmp_path) != first
    assert model_checksum(tmp_path, [tmp_path / "a.bin"]) != model_checksum(tmp_path)


def wav_bytes(samples, rate, subtype):
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("subtype,tolerance", [("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-6), ("FLOAT", 0.0), ("PCM_U8", 1e-2)])
def test_wav_decoding_matches_soundfile(subtype, tolerance):
    t = np.arange(4410) / 22050
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 220 * t)], axis=1).astype(np.float32)
    audio = decode_wav(wav_bytes(stereo, 22050, subtype), source="test")
    assert audio.sample_rate == 22050 and len(audio.samples) == 4410
    assert np.max(np.abs(audio.samples - stereo.mean(axis=1))) <= tolerance + 1e-7


def test_streamed_wav_with_placeholder_sizes_and_a_torn_last_sample():
    data = bytearray(wav_bytes(np.full(1000, 0.5, np.float32), 16000, "PCM_16"))
    data[4:8] = data[40:44] = (0x7FFFF000).to_bytes(4, "little")  # what espeak-ng writes into a pipe
    audio = decode_wav(bytes(data) + b"\x01", source="pipe")
    assert len(audio.samples) == 1000 and np.allclose(audio.samples, 0.5, atol=1e-4)


@pytest.mark.parametrize("data", [b"", b"ID3\x04fake mp3", b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_non_wav_bytes_are_a_backend_error(data):
    with pytest.raises(BackendError, match="src"):
        decode_wav(data, source="src")
