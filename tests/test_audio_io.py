"""Decoding real and broken audio: formats, segments, resampling, limits and typed errors.

Real clips come from ../shared/data (LibriSpeech test-other, CC BY 4.0; OpenAIR RIR, CC BY 3.0); lossy
copies and broken files are made in tmp_path with ffmpeg and by cutting real files.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.audio.io import AudioInfo, AudioLimits, load_audio, probe_audio
from voxproof.errors import (
    AudioNotFound,
    AudioTooLarge,
    CorruptAudio,
    EmptyAudio,
    UnsupportedAudio,
    UsageError,
)

CLIP = "librispeech-test-other-mini/audio/1688-142285-0000.flac"  # 15.000 s, 16 kHz, mono
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> Path:
    return shared_data / CLIP


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


# ------------------------------------------------------------------------------------------ real files


def test_flac_decodes_to_its_declared_length(clip: Path, shared_data: Path) -> None:
    info = {
        line.split("\t")[0]: line.split("\t")
        for line in (shared_data / "librispeech-test-other-mini/utt_info.tsv").read_text().splitlines()[1:]
    }
    audio = load_audio(clip)
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(float(info[clip.stem][5]), abs=1e-3)
    reference, _rate = sf.read(clip, dtype="float32")
    np.testing.assert_array_equal(audio.samples, reference)
    assert 0.01 < float(np.abs(audio.samples).max()) <= 1.0


def test_segment_is_the_same_samples_as_slicing(clip: Path) -> None:
    full = load_audio(clip)
    part = load_audio(clip, offset=2.5, duration=1.25)
    assert len(part.samples) == 20000
    np.testing.assert_array_equal(part.samples, full.samples[40000:60000])
    tail = load_audio(clip, offset=14.0)
    np.testing.assert_array_equal(tail.samples, full.samples[224000:])


def test_resampling_keeps_duration_and_content(clip: Path) -> None:
    full = load_audio(clip)
    low = load_audio(clip, sample_rate=8000)
    assert low.sample_rate == 8000
    assert abs(len(low.samples) - len(full.samples) // 2) <= 1
    back = low.resampled(16000)
    assert _corr(back.samples, full.samples) > 0.95  # the band below 4 kHz carries most speech energy


def test_stereo_is_mixed_down_to_the_channel_mean(shared_data: Path) -> None:
    path = shared_data / "rir/medium_hall.wav"
    stereo, rate = sf.read(path, dtype="float32", always_2d=True)
    assert stereo.shape[1] == 2
    audio = load_audio(path)
    assert audio.sample_rate == rate
    np.testing.assert_allclose(audio.samples, stereo.mean(axis=1), atol=1e-7)
    info = probe_audio(path)
    assert (info.channels, info.sample_rate, info.frames) == (2, rate, len(stereo))


def test_probe_reads_the_header(clip: Path) -> None:
    info = probe_audio(clip)
    assert info == AudioInfo(16000, 1, 240000, "FLAC", "PCM_16", clip.stat().st_size)
    assert info.duration == 15.0
    assert info.to_dict()["duration"] == 15.0


def test_bytes_source_decodes_like_the_file(clip: Path) -> None:
    from_bytes = load_audio(clip.read_bytes())
    np.testing.assert_array_equal(from_bytes.samples, load_audio(clip).samples)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        ("mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
        ("opus", ["-c:a", "libopus", "-b:a", "32k"]),
        ("m4a", ["-c:a", "aac", "-b:a", "64k"]),
        ("webm", ["-c:a", "libopus", "-b:a", "32k"]),
    ],
)
def test_lossy_formats_decode_through_ffmpeg(
    clip: Path, tmp_path: Path, suffix: str, codec: list[str]
) -> None:
    path = tmp_path / f"clip.{suffix}"
    _ffmpeg("-i", str(clip), *codec, str(path))
    original = load_audio(clip)
    audio = load_audio(path, sample_rate=16000)
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(15.0, abs=0.05)
    assert _corr(audio.samples, original.samples) > 0.97  # time-aligned, not just the right length
    native = probe_audio(path)
    assert native.sample_rate == (48000 if "libopus" in codec else 16000)
    assert native.duration == pytest.approx(15.0, abs=0.1)  # a header estimate (MP3: with encoder padding)


def _encode_amr_nb(samples_8k: np.ndarray) -> bytes:
    """AMR-NB 12.2 kbit/s file bytes through libopencore-amrnb (ffmpeg here decodes AMR but cannot encode)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("opencore-amrnb")
    if name is None:
        pytest.skip("libopencore-amrnb is not installed")
    lib = ctypes.CDLL(name)
    lib.Encoder_Interface_init.restype = ctypes.c_void_p
    lib.Encoder_Interface_init.argtypes = [ctypes.c_int]
    lib.Encoder_Interface_Encode.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int,
    ]  # fmt: skip
    lib.Encoder_Interface_exit.argtypes = [ctypes.c_void_p]
    pcm = np.clip(samples_8k * 32767, -32768, 32767).astype(np.int16)
    state = lib.Encoder_Interface_init(0)
    out, buf = bytearray(b"#!AMR\n"), (ctypes.c_ubyte * 64)()
    try:
        for i in range(0, len(pcm) - 159, 160):  # 20 ms frames
            frame = np.ascontiguousarray(pcm[i : i + 160])
            n = lib.Encoder_Interface_Encode(
                state, 7, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), buf, 0
            )
            out += bytes(buf[:n])
    finally:
        lib.Encoder_Interface_exit(state)
    return bytes(out)


@needs_ffmpeg
def test_amr_nb_decodes_through_ffmpeg(clip: Path, tmp_path: Path) -> None:
    source = load_audio(clip, sample_rate=8000, duration=5.0)
    path = tmp_path / "call.amr"
    path.write_bytes(_encode_amr_nb(source.samples))
    audio = load_audio(path)
    assert audio.sample_rate == 8000
    assert audio.duration == pytest.approx(5.0, abs=0.03)
    # a speech codec keeps the envelope, not the waveform: best correlation over small lags
    best = max(_corr(np.roll(audio.samples, k), source.samples) for k in range(-80, 81, 2))
    assert best > 0.5
    assert probe_audio(path).codec == "amr_nb"


@pytest.mark.slow
@needs_ffmpeg
def test_uploaded_bytes_decode_like_the_named_file(clip: Path, tmp_path: Path) -> None:
    for suffix in ("mp3", "m4a", "webm"):
        path = tmp_path / f"clip.{suffix}"
        _ffmpeg("-i", str(clip), "-t", "3", str(path))
        named, anonymous = load_audio(path), load_audio(path.read_bytes())
        assert anonymous.sample_rate == named.sample_rate
        np.testing.assert_array_equal(anonymous.samples, named.samples)
        assert probe_audio(path.read_bytes()).codec == probe_audio(path).codec


@needs_ffmpeg
def test_ffmpeg_segment_and_native_rate(clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "clip.opus"
    _ffmpeg("-i", str(clip), "-c:a", "libopus", str(path))
    whole = load_audio(path)
    assert whole.sample_rate == 48000  # Opus decodes at 48 kHz
    part = load_audio(path, offset=3.0, duration=2.0, sample_rate=16000)
    assert part.duration == pytest.approx(2.0, abs=0.01)
    reference = load_audio(clip, offset=3.0, duration=2.0)
    assert _corr(part.samples, reference.samples) > 0.95


@needs_ffmpeg
def test_odd_file_names_are_never_options_or_protocols(clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "-i concat:x.mp3"
    _ffmpeg("-i", str(clip), "-t", "1", "-c:a", "libmp3lame", "file:" + str(path))
    assert load_audio(path).duration == pytest.approx(1.0, abs=0.06)


@needs_ffmpeg
def test_stereo_mixes_down_the_same_through_ffmpeg(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "rir/medium_hall.wav"  # stereo, 24-bit, 44.1 kHz
    path = tmp_path / "hall.mka"
    _ffmpeg("-i", str(source), "-c:a", "flac", str(path))  # lossless, so the samples must match
    via_ffmpeg, via_soundfile = load_audio(path), load_audio(source)
    assert via_ffmpeg.sample_rate == via_soundfile.sample_rate == 44100
    np.testing.assert_allclose(via_ffmpeg.samples, via_soundfile.samples, atol=1e-6)


@needs_ffmpeg
def test_video_without_audio_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "silent_film.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=5", "-t", "1", "-c:v", "mpeg4", str(path))
    with pytest.raises(EmptyAudio, match="no audio stream"):
        load_audio(path)


# ------------------------------------------------------------------------------------------ broken files


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioNotFound, match="not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioNotFound, match="not a file"):
        load_audio(tmp_path)


@pytest.mark.parametrize("name", ["empty.wav", "empty.flac", "empty.mp3", "empty"])
def test_zero_byte_files_are_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(EmptyAudio, match="0 bytes"):
        load_audio(path)
    with pytest.raises(EmptyAudio):
        probe_audio(path)


def test_header_only_wav_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(EmptyAudio, match="no samples"):
        load_audio(path)


def test_truncated_flac_is_corrupt(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptAudio, match="truncated") as err:
        load_audio(path)
    assert err.value.__cause__ is not None or "header declares" in str(err.value)


def test_wav_whose_header_lies_is_reported(clip: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.wav"
    sf.write(full, load_audio(clip).samples, 16000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) - 32000])  # header still declares all 480,000 bytes
    with pytest.raises(CorruptAudio, match=r"declares 480,000 bytes .* \(1\.000 s\) are missing"):
        load_audio(cut)
    with pytest.raises(CorruptAudio, match="header lies"):
        probe_audio(cut)
    # A streaming recorder's "unknown length" (0xFFFFFFFF) is not a lie: the data present is read.
    unknown = bytearray(data)
    pos = unknown.index(b"data")
    unknown[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "stream.wav").write_bytes(bytes(unknown))
    assert load_audio(tmp_path / "stream.wav").duration == pytest.approx(15.0, abs=1e-3)


@pytest.mark.parametrize("name", ["noise.wav", "noise.flac", "noise.bin"])
def test_random_bytes_are_corrupt(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptAudio):
        load_audio(path)


@needs_ffmpeg
def test_random_bytes_named_mp3_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptAudio):
        load_audio(path)


def test_nan_samples_are_corrupt(tmp_path: Path) -> None:
    samples = np.zeros(1600, dtype=np.float32)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(CorruptAudio, match="NaN"):
        load_audio(path)


def test_offset_past_the_end_is_empty(clip: Path) -> None:
    with pytest.raises(EmptyAudio, match="past the end"):
        load_audio(clip, offset=20.0)


def test_segment_past_the_end_returns_what_is_there(clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    audio = load_audio(clip, offset=14.0, duration=5.0)
    assert audio.duration == pytest.approx(1.0)
    assert "runs past the end" in caplog.text


def test_bad_requests_are_usage_errors(clip: Path) -> None:
    with pytest.raises(UsageError):
        load_audio(clip, sample_rate=0)
    with pytest.raises(UsageError):
        load_audio(clip, offset=-1.0)
    with pytest.raises(UsageError):
        load_audio(clip, duration=0.0)
    with pytest.raises(UsageError):
        AudioLimits(max_seconds=-1)
    with pytest.raises(UsageError):
        AudioLimits(max_file_bytes=0)
    with pytest.raises(UsageError):
        AudioLimits(decode_timeout_s=float("nan"))


def test_ffmpeg_missing_is_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"\xff\xfb\x90\x00" * 100)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on PATH
    with pytest.raises(UnsupportedAudio, match="apt-get install ffmpeg"):
        load_audio(path)


# ------------------------------------------------------------------------------------------------ limits


def test_file_size_limit(clip: Path) -> None:
    with pytest.raises(AudioTooLarge, match="max_file_bytes"):
        load_audio(clip, limits=AudioLimits(max_file_bytes=1000))
    with pytest.raises(AudioTooLarge):
        load_audio(clip.read_bytes(), limits=AudioLimits(max_file_bytes=1000))


def test_duration_limit_uses_the_header(clip: Path) -> None:
    with pytest.raises(AudioTooLarge, match="declares 15.0 s"):
        load_audio(clip, limits=AudioLimits(max_seconds=10))
    # the limit applies to what is decoded, so a segment under it is fine
    assert load_audio(clip, duration=5.0, limits=AudioLimits(max_seconds=10)).duration == 5.0


@pytest.mark.slow
@needs_ffmpeg
def test_two_hour_flac_without_length_stops_at_the_limit(tmp_path: Path) -> None:
    # Written to a pipe, so the FLAC header cannot say how long it is: only decoding can tell.
    path = tmp_path / "two_hours.flac"
    with path.open("wb") as out:
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "anullsrc=r=8000:cl=mono",
                "-t",
                "7200",
                "-c:a",
                "flac",
                "-f",
                "flac",
                "pipe:1",
            ],
            stdout=out,
            check=True,
        )
    assert path.stat().st_size < 3_000_000  # small file, 2 hours of samples
    assert probe_audio(path).frames is None
    full_bytes = 7200 * 8000 * 4
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLarge, match="more than 600 s"):
            load_audio(path, limits=AudioLimits(max_seconds=600))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < full_bytes / 4  # stopped early: never held the 2 hours (230 MB) of samples


@pytest.mark.slow
@needs_ffmpeg
def test_ffmpeg_decoding_is_killed_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "two_hours.mka"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200", "-c:a", "flac", str(path))
    assert probe_audio(path).duration == pytest.approx(7200.0)
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLarge, match="more than 60 s"):
            load_audio(path, limits=AudioLimits(max_seconds=60))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8000 * 60 * 4 * 3  # a minute of samples and a chunk, not 2 hours (230 MB)
    with pytest.raises(CorruptAudio, match="took more than"):  # the wall-clock watchdog
        load_audio(path, limits=AudioLimits(max_seconds=7300, decode_timeout_s=0.05))


# -------------------------------------------------------------------------------------------------- URLs


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hangs up on purpose when a download passes the size limit


@pytest.fixture()
def http_root(tmp_path: Path):
    handler = lambda *a, **k: _Handler(*a, directory=str(tmp_path), **k)
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_url_is_downloaded_within_limits(clip: Path, http_root: tuple[Path, str]) -> None:
    root, base = http_root
    shutil.copy(clip, root / "clip.flac")
    allowed = AudioLimits(url_hosts=("127.0.0.1",))
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    audio = load_audio(f"{base}/clip.flac", sample_rate=8000, limits=allowed)
    assert audio.sample_rate == 8000 and audio.duration == pytest.approx(15.0, abs=1e-3)
    assert not {
        n for n in set(os.listdir(os.environ.get("TMPDIR", "/tmp"))) - before if n.startswith("voxproof-")
    }
    with pytest.raises(AudioNotFound, match="HTTP 404"):
        load_audio(f"{base}/missing.flac", limits=allowed)
    with pytest.raises(AudioTooLarge, match="over the 1,000-byte"):
        load_audio(f"{base}/clip.flac", limits=allowed.replace(max_download_bytes=1000))
