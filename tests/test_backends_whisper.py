"""Whisper tiny.en backend on real LibriSpeech test-other recordings (CC BY 4.0, ../shared/data)."""

from __future__ import annotations

import dataclasses

import jiwer
import numpy as np
import pytest
import soundfile as sf
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.audio.signal import Audio
from voxproof.backends import Transcriber, load_backend
from voxproof.errors import UsageError
from voxproof.options import build_options

pytest.importorskip("faster_whisper")

from voxproof.backends.whisper import WhisperOptions, WhisperTranscriber

CLIPS = ["1688-142285-0002", "1998-15444-0008", "2033-164914-0005"]
normalise = EnglishTextNormalizer()


def load(path, rate=16000) -> Audio:
    samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(np.ascontiguousarray(samples.mean(axis=1)), sr).resampled(rate)


@pytest.fixture(scope="module")
def clips(shared_data):
    folder = shared_data / "librispeech-test-other-mini"
    refs = dict(line.split("\t", 1) for line in (folder / "transcripts.tsv").read_text().splitlines())
    return [(load(folder / "audio" / f"{cid}.flac"), refs[cid].strip()) for cid in CLIPS]


@pytest.fixture(scope="module")
def whisper():
    return WhisperTranscriber(WhisperOptions())


@pytest.fixture(scope="module")
def singles(whisper, clips):
    return [whisper.transcribe(audio) for audio, _ref in clips]


def wer(refs, hyps):
    return jiwer.wer([normalise(r) for r in refs], [normalise(h) for h in hyps])


def test_recognises_real_speech_with_word_times_and_confidences(whisper, clips, singles):
    assert isinstance(whisper, Transcriber)
    hyps = []
    for (audio, _ref), tr in zip(clips, singles):
        hyps.append(tr.text)
        assert tr.text == tr.text.strip() and tr.text
        assert tr.words, "word_timestamps is on by default"
        assert len(tr.words) == len(tr.text.split())
        for w in tr.words:
            assert 0.0 <= w.start <= w.end <= audio.duration + 1e-6
            assert 0.0 <= w.confidence <= 1.0
        starts = [w.start for w in tr.words]
        assert starts == sorted(starts)
        assert 0.0 < tr.confidence <= 1.0
        assert set(tr.extras) >= {"avg_logprob", "no_speech_prob", "compression_ratio"}
        assert tr.extras["avg_logprob"] < 0.0
        assert tr.to_dict()["words"][0]["text"] == tr.words[0].text
    # tiny.en scores ~15 % on test-other; three short clips allow a wide margin, not a broken decoder.
    assert wer([ref for _a, ref in clips], hyps) < 0.35


def test_confidence_is_geometric_mean_token_probability(singles):
    tr = singles[0]
    assert tr.confidence == pytest.approx(np.exp(tr.extras["avg_logprob"]))


def test_silence_and_empty_audio_give_empty_text(whisper):
    assert whisper.transcribe(Audio(np.zeros(0, np.float32), 16000)).text == ""
    silent = whisper.transcribe(Audio(np.zeros(16000, np.float32), 16000))
    assert silent.text == "" and silent.words == ()


def test_other_sample_rates_are_resampled(whisper, clips):
    audio, ref = clips[0]
    at_8k = audio.resampled(8000)
    tr = whisper.transcribe(at_8k)
    assert wer([ref], [tr.text]) < 0.5
    assert all(w.end <= at_8k.duration + 1e-6 for w in tr.words)


@pytest.mark.slow
def test_batch_matches_one_by_one_and_keeps_order(whisper, clips, singles):
    audios = [a for a, _ in clips] + [Audio(np.zeros(0, np.float32), 16000)]
    batch = whisper.transcribe_batch(audios)
    assert len(batch) == len(audios)
    assert batch[-1].text == ""
    assert wer([ref for _a, ref in clips], [tr.text for tr in batch[:-1]]) < 0.35
    for (audio, _ref), one, tr in zip(clips, singles, batch):
        assert wer([one.text], [tr.text]) < 0.2  # batched decoding has no fallback: near, not equal
        for w in tr.words:  # times are relative to each clip, not to the packed audio
            assert 0.0 <= w.start <= w.end <= audio.duration + 1e-6


def test_packed_windows_split_back_into_the_right_clips(whisper, clips, singles):
    audios = [clips[0][0], Audio(np.zeros(0, np.float32), 16000), clips[1][0], clips[2][0]]
    packed = whisper.transcribe_packed(audios, gap_seconds=1.0)
    assert len(packed) == 4 and packed[1].text == ""
    kept = [packed[0], packed[2], packed[3]]
    assert all(tr.extras["packed_with"] == 3 for tr in kept)  # ~9 s of clips fit one window
    for (audio, _ref), one, tr in zip(clips, singles, kept):
        assert wer([one.text], [tr.text]) < 0.3  # neighbours are context: near, not equal
        assert tr.words and all(0.0 <= w.start <= w.end <= audio.duration + 1e-6 for w in tr.words)
        assert 0.0 < tr.confidence <= 1.0
    assert wer([ref for _a, ref in clips], [tr.text for tr in kept]) < 0.5  # 26 words: a loose sanity bound
    with pytest.raises(UsageError):
        whisper.transcribe_packed(audios, gap_seconds=0.0)


def test_info_reflects_options_and_checksums_the_model(whisper):
    info = whisper.info()
    assert info.name == "whisper" and info.kind == "asr"
    assert len(info.model_checksum) == 64
    assert info.options["beam_size"] == 1 and info.options["compute_type"] == "int8"
    assert info.library_versions["faster-whisper"] == "1.2.1"
    assert whisper.info().model_checksum == info.model_checksum


def test_options_from_cli_pairs_change_decoding(clips):
    backend = load_backend("whisper", pairs=["beam_size=3", "word_timestamps=false", "cpu_threads=1"])
    info = backend.info()
    assert info.options["beam_size"] == 3 and info.options["cpu_threads"] == 1
    tr = backend.transcribe(clips[1][0])
    assert tr.text and tr.words == ()


def test_bad_options_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="beam_size"):
        build_options(WhisperOptions, ["beam_size=0"])
    with pytest.raises(UsageError, match="compute_type"):
        build_options(WhisperOptions, ["compute_type=float64"])
    assert dataclasses.replace(WhisperOptions(), beam_size=5).beam_size == 5


def test_a_missing_model_directory_never_reaches_the_hub(tmp_path):
    from voxproof.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="model.bin"):
        WhisperTranscriber(WhisperOptions(model_path=str(tmp_path)))
    with pytest.raises(BackendUnavailable):
        WhisperTranscriber(WhisperOptions(model_path="tiny.en"))


def test_a_language_the_english_model_cannot_speak_is_refused():
    with pytest.raises(UsageError, match="English-only"):
        WhisperTranscriber(WhisperOptions(language="fr"))
