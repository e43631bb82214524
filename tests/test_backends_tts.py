"""Piper (joe voice) and eSpeak NG synthesisers, checked by listening with Whisper (round trip)."""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.backends import Synthesizer, load_backend
from voxproof.errors import BackendError, UsageError
from voxproof.options import build_options

SENTENCE = "The quick brown fox."
TWO_SENTENCES = "The quick brown fox jumps over the lazy dog. Then it runs into the forest."
normalise = EnglishTextNormalizer()


def active_seconds(audio, threshold_db=-40.0) -> float:
    """Seconds of 10 ms frames within 40 dB of the loudest frame."""
    hop = audio.sample_rate // 100
    frames = audio.samples[: len(audio.samples) // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-12
    level = 20 * np.log10(rms / rms.max())
    return float((level > threshold_db).sum() * 0.01)


@pytest.fixture(scope="module")
def piper():
    pytest.importorskip("piper")
    from voxproof.backends.piper import PiperOptions, PiperSynthesizer

    return PiperSynthesizer(PiperOptions(threads=1))


@pytest.fixture(scope="module")
def espeak():
    from voxproof.backends.espeak import EspeakOptions, EspeakSynthesizer

    return EspeakSynthesizer(EspeakOptions())


@pytest.fixture(scope="module")
def whisper():
    pytest.importorskip("faster_whisper")
    from voxproof.backends.whisper import WhisperOptions, WhisperTranscriber

    return WhisperTranscriber(WhisperOptions(word_timestamps=False))


@pytest.fixture(params=["piper", "espeak"])
def tts(request):
    return request.getfixturevalue(request.param)


def test_short_sentence_is_speech_of_plausible_length(tts):
    assert isinstance(tts, Synthesizer)
    audio = tts.synthesize(SENTENCE)
    assert audio.sample_rate == tts.sample_rate == 22050 and audio.samples.dtype == np.float32
    # Four words at normal speed: roughly 1-3 s with edges, about 0.7-2.5 s of it voiced.
    assert 0.8 < audio.duration < 3.5
    assert 0.5 < active_seconds(audio) < 3.0
    peak = float(np.abs(audio.samples).max())
    assert 0.1 < peak <= 1.0
    assert np.sqrt(np.mean(audio.samples.astype(np.float64) ** 2)) > 0.01


# Piper joe is near-natural; eSpeak's formant voice costs Whisper tiny.en about a third of the words
# ("the quick roundfark stump over the lazy nog"), still most of them.
ROUND_TRIP_MAX_WER = {"piper": 0.2, "espeak": 0.5}


@pytest.mark.parametrize("name", ["piper", "espeak"])
def test_round_trip_through_whisper_recognises_most_words(name, request, whisper):
    audio = request.getfixturevalue(name).synthesize(TWO_SENTENCES)
    heard = whisper.transcribe(audio.resampled(16000)).text
    assert jiwer.wer(normalise(TWO_SENTENCES), normalise(heard)) < ROUND_TRIP_MAX_WER[name], heard


def test_empty_text_is_a_backend_error(tts):
    with pytest.raises(BackendError, match="empty"):
        tts.synthesize("   ")


def test_piper_options_change_the_audio_and_show_in_info(piper):
    from voxproof.backends.piper import PiperOptions, PiperSynthesizer

    slow = PiperSynthesizer(build_options(PiperOptions, ["length_scale=1.6", "noise_scale=0", "noise_w_scale=0", "threads=1"]))
    normal = PiperSynthesizer(PiperOptions(noise_scale=0.0, noise_w_scale=0.0, threads=1))
    assert slow.synthesize(SENTENCE).duration > 1.3 * normal.synthesize(SENTENCE).duration
    # Without noise, Piper is deterministic: the same text gives the same samples.
    assert np.array_equal(normal.synthesize(SENTENCE).samples, normal.synthesize(SENTENCE).samples)
    info = slow.info()
    assert info.name == "piper" and info.kind == "tts"
    assert info.options["length_scale"] == 1.6
    assert len(info.model_checksum) == 64 and info.model_checksum == piper.info().model_checksum
    assert info.library_versions["piper-tts"].startswith("1.8")


def test_piper_sentence_silence_joins_sentence_chunks(piper):
    from voxproof.backends.piper import PiperOptions, PiperSynthesizer

    plain = PiperSynthesizer(PiperOptions(noise_scale=0.0, noise_w_scale=0.0, threads=1))
    gapped = PiperSynthesizer(PiperOptions(noise_scale=0.0, noise_w_scale=0.0, sentence_silence=0.5, threads=1))
    difference = gapped.synthesize(TWO_SENTENCES).duration - plain.synthesize(TWO_SENTENCES).duration
    assert difference == pytest.approx(0.5, abs=1e-3)  # one gap between two sentences


def test_espeak_rate_and_voice_options(espeak):
    from voxproof.backends.espeak import EspeakOptions, EspeakSynthesizer

    slow = load_backend("espeak", pairs=["rate=100", "voice=en-gb"])
    assert slow.synthesize(SENTENCE).duration > 1.3 * espeak.synthesize(SENTENCE).duration
    info = slow.info()
    assert info.options["rate"] == 100 and info.options["voice"] == "en-gb"
    assert info.library_versions["espeak-ng"].startswith("1.")
    assert len(info.model_checksum) == 64
    with pytest.raises(UsageError, match="voice"):
        EspeakSynthesizer(EspeakOptions(voice="nonexistent"))
    with pytest.raises(UsageError, match="rate"):
        build_options(EspeakOptions, ["rate=5"])


def test_espeak_text_is_never_parsed_as_options_or_shell(espeak):
    audio = espeak.synthesize("--help; $(touch /tmp/voxproof-pwned) -v xx")
    assert audio.duration > 1.0
    import os

    assert not os.path.exists("/tmp/voxproof-pwned")
