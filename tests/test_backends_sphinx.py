"""PocketSphinx backend on real recordings: LibriSpeech test-clean (CC BY 4.0) and CMU ARCTIC."""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
import soundfile as sf
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.audio.signal import Audio
from voxproof.backends import Transcriber, load_backend
from voxproof.errors import UsageError
from voxproof.options import build_options

pytest.importorskip("pocketsphinx")

from voxproof.backends.sphinx import SphinxOptions, SphinxTranscriber, StreamPartial

normalise = EnglishTextNormalizer()


def load(path) -> Audio:
    samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(np.ascontiguousarray(samples.mean(axis=1)), sr)


def refs(folder):
    return dict(line.split("\t", 1) for line in (folder / "transcripts.tsv").read_text().splitlines())


@pytest.fixture(scope="module")
def clips(shared_data):
    clean = shared_data / "librispeech-test-clean-1"
    arctic = shared_data / "cmu-arctic"
    return [
        (load(clean / "audio" / "1995-1837-0001.wav"), refs(clean)["1995-1837-0001"].strip()),
        (load(arctic / "audio" / "cmu_arctic_us_aew_a0003.wav"), refs(arctic)["cmu_arctic_us_aew_a0003"].strip()),
    ]


@pytest.fixture(scope="module")
def sphinx():
    return SphinxTranscriber(SphinxOptions())


@pytest.fixture(scope="module")
def transcripts(sphinx, clips):
    return [sphinx.transcribe(audio) for audio, _ref in clips]


def test_recognises_clean_speech_with_words_times_and_posteriors(sphinx, clips, transcripts):
    assert isinstance(sphinx, Transcriber) and sphinx.sample_rate == 16000
    hyps = []
    for (audio, _ref), tr in zip(clips, transcripts):
        hyps.append(tr.text)
        assert tr.words and tr.text == " ".join(w.text for w in tr.words)
        for w in tr.words:
            assert not w.text.startswith(("<", "[")) and "(" not in w.text  # fillers and variants gone
            assert 0.0 <= w.start < w.end <= audio.duration + 1e-6
            assert 0.0 <= w.confidence <= 1.0
        assert [w.start for w in tr.words] == sorted(w.start for w in tr.words)
        assert tr.confidence == pytest.approx(np.mean([w.confidence for w in tr.words]))
        assert 0.0 <= tr.extras["prob"] <= 1.0
    # Published: 31.8 % on LibriSpeech test-clean; two clean clips get a wide margin.
    measured = jiwer.wer([normalise(r) for _a, r in clips], [normalise(h) for h in hyps])
    assert measured < 0.5


def test_posteriors_separate_right_from_wrong_words(clips, transcripts):
    # Word posteriors are plain probabilities: correct words should score higher on average.
    right, wrong = [], []
    for (_audio, ref), tr in zip(clips, transcripts):
        ref_words = set(normalise(ref).split())
        for w in tr.words:
            (right if normalise(w.text) in ref_words else wrong).append(w.confidence)
    assert right and np.mean(right) > 0.5
    if wrong:
        assert np.mean(right) > np.mean(wrong)


def test_silence_and_empty_audio(sphinx):
    assert sphinx.transcribe(Audio(np.zeros(0, np.float32), 16000)).text == ""
    silent = sphinx.transcribe(Audio(np.zeros(16000, np.float32), 16000))
    assert silent.text == "" and silent.confidence is None
    hiss = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 1e-3
    assert sphinx.transcribe(Audio(hiss, 16000)).text == ""


def test_results_do_not_depend_on_earlier_calls(clips, transcripts):
    # transcripts[1] was decoded after clips[0]; a fresh decoder must give identical words and posteriors.
    fresh = SphinxTranscriber(SphinxOptions()).transcribe(clips[1][0])
    assert fresh == transcripts[1]


def test_stream_gives_growing_partials_and_a_final_text(sphinx, clips, transcripts):
    audio, _ref = clips[1]
    parts = sphinx.transcribe_stream(audio, chunk_seconds=0.5)
    assert all(isinstance(p, StreamPartial) for p in parts)
    assert parts[-1].final and not any(p.final for p in parts[:-1])
    fed = [p.audio_seconds for p in parts[:-1]]
    assert fed == sorted(fed) and fed[-1] == pytest.approx(audio.duration)
    assert len(fed) == int(np.ceil(audio.duration / 0.5))
    walls = [p.wall_seconds for p in parts]
    assert walls == sorted(walls) and walls[0] > 0
    # Streaming normalises features live (not over the whole utterance), so the final text is close to,
    # not always equal to, the whole-utterance result.
    assert jiwer.wer(transcripts[1].text, parts[-1].text) < 0.25
    assert any(p.text for p in parts[:-1])  # partial hypotheses appear before the end
    with pytest.raises(UsageError):
        sphinx.transcribe_stream(audio, chunk_seconds=0)


def test_info_checksums_the_model_files_and_records_options():
    backend = load_backend("sphinx", pairs=["lw=8.0"])
    info = backend.info()
    assert info.name == "sphinx" and info.options["lw"] == 8.0
    assert len(info.model_checksum) == 64
    assert info.library_versions["pocketsphinx"].startswith("5.")
    assert backend._decoder.config["lw"] == 8.0


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="beam"):
        build_options(SphinxOptions, ["beam=2"])
    with pytest.raises(UsageError, match="lw"):
        build_options(SphinxOptions, ["lw=-1"])
