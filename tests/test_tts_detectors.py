"""Failure detectors and voice activity on real recordings and on signals with planted defects."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.audio.signal import Audio
from voxproof.tts.activity import SpeechActivity, SpeechDetector
from voxproof.tts.detectors import FAILURE_KINDS, DetectorOptions, detect_failures

CLIP = "librispeech-test-other-mini/audio/1688-142285-0002.flac"  # 2.8 s, 16 kHz


@pytest.fixture(scope="module")
def real(shared_data):
    import soundfile as sf

    x, sr = sf.read(str(shared_data / CLIP), dtype="float32")
    text = dict(
        line.split("\t", 1) for line in (shared_data / "librispeech-test-other-mini/transcripts.tsv").read_text().splitlines()
    )["1688-142285-0002"].lower()
    return Audio(x, sr), text


@pytest.fixture(scope="module")
def silero():
    return SpeechDetector("silero")


def flags(audio, activity, spoken, **kw):
    return {d.kind: d.flagged for d in detect_failures(audio, activity, spoken, **kw)}


def test_real_speech_raises_no_flag(real, silero):
    audio, text = real
    act = silero.detect(audio)
    assert act.method == "silero" and act.has_speech
    assert 0.5 * audio.duration < act.span <= audio.duration
    words = text.split()
    got = flags(audio, act, text, reference_words=words, hypothesis_words=words, expected_sample_rate=16000)
    assert set(got) == set(FAILURE_KINDS) - {"synthesis_error"}
    assert not any(got.values()), got
    energy = SpeechDetector("energy").detect(audio)
    assert energy.has_speech and abs(energy.span - act.span) < 1.0


def test_silence_and_empty(silero):
    sil = Audio(np.zeros(16000, dtype=np.float32), 16000)
    act = silero.detect(sil)
    assert not act.has_speech
    got = flags(sil, act, "hello there")
    assert got["silent"] and not got["empty"] and not got["truncation"]
    empty = Audio(np.zeros(0, dtype=np.float32), 16000)
    got = flags(empty, silero.detect(empty), "hello there")
    assert got["empty"] and not got["silent"]
    # audible noise with no speech in it
    noise = Audio((0.05 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    got = flags(noise, SpeechActivity((), 1.0, "silero"), "hello there")
    assert got["no_speech"] and not got["silent"]


def test_truncation_long_pause_and_repetition(real, silero):
    audio, text = real
    words = text.split()
    cut = Audio(audio.samples[: int(0.3 * len(audio.samples))], audio.sample_rate)
    got = flags(cut, silero.detect(cut), text, reference_words=words, hypothesis_words=words[:3])
    assert got["truncation"]
    gap = np.zeros(int(1.6 * audio.sample_rate), dtype=np.float32)
    half = len(audio.samples) // 2
    paused = Audio(np.concatenate([audio.samples[:half], gap, audio.samples[half:]]), audio.sample_rate)
    act = silero.detect(paused)
    got = flags(paused, act, text, reference_words=words, hypothesis_words=words)
    assert got["long_silence"] and max(e - s for s, e in act.gaps()) > 1.0
    got = flags(audio, silero.detect(audio), text, reference_words=words, hypothesis_words=words * 3)
    assert got["repetition"] and not got["truncation"]
    # a repeated phrase is caught even when the length ratio is modest
    loop = words[:4] + words[2:5] * 3 + words[5:]
    assert flags(audio, silero.detect(audio), text, reference_words=words, hypothesis_words=loop)["repetition"]
    # the whole sentence twice (a recogniser often collapses a third verbatim copy) is a repetition
    assert flags(audio, silero.detect(audio), text, reference_words=words, hypothesis_words=words * 2)["repetition"]
    # a phrase heard once more than written: only a repetition when the audio is long as well
    once = words[:5] + words[2:5] + words[5:]
    assert not flags(audio, silero.detect(audio), text, reference_words=words, hypothesis_words=once)["repetition"]
    gap = np.zeros(int(0.2 * audio.sample_rate), dtype=np.float32)
    thrice = Audio(np.concatenate([audio.samples, gap] * 3), audio.sample_rate)  # 3 copies, 1 phrase heard twice
    assert flags(thrice, silero.detect(thrice), text, reference_words=words, hypothesis_words=once)["repetition"]


def test_clipping_dc_offset_and_sample_rate(real, silero):
    audio, text = real
    act = silero.detect(audio)
    loud = Audio(np.clip(audio.samples * 20, -1, 1).astype(np.float32), audio.sample_rate)
    assert flags(loud, act, text)["clipping"]
    peak_once = audio.samples / np.max(np.abs(audio.samples))  # one sample at 1.0 is not clipping
    assert not flags(Audio(peak_once.astype(np.float32), 16000), act, text)["clipping"]
    over = audio.samples.copy()
    over[100] = 1.2
    assert flags(Audio(over, 16000), act, text)["clipping"]
    shifted = Audio((audio.samples + 0.05).astype(np.float32), 16000)
    assert flags(shifted, act, text)["dc_offset"]
    assert flags(audio, act, text, expected_sample_rate=22050)["sample_rate"]
    odd = Audio(audio.samples, 17000)
    assert flags(odd, act, text)["sample_rate"]
    narrow = audio.resampled(8000)
    assert flags(narrow, act, text, options=DetectorOptions(min_sample_rate=16000))["sample_rate"]
