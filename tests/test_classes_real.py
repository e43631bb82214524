"""Real models on bundled clips with numbers: Whisper tiny.en (greedy and beam 5) and PocketSphinx, scored
per token class and compared as three systems (omnibus test, ranking), plus Whisper's initial_prompt
used for biasing on one clip."""

from __future__ import annotations

import pytest

from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.manifest.reader import read_manifest
from voxproof.metrics.classes import load_class_spec
from voxproof.metrics.compare import compare_many, compare_runs
from voxproof.metrics.normalize import get_normalizer
from voxproof.metrics.scoring import score_run
from voxproof.run.store import RunStore

CLIPS = ("1998-15444-0008", "2033-164914-0007", "2033-164914-0009", "367-130732-0007")  # ten, two, first, one


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("pocketsphinx")
    from voxproof.backends.registry import load_backend
    from voxproof.manifest.hashing import dataset_hash
    from voxproof.run.runner import RunOptions, run_eval

    utts = [u for u in read_manifest(str(bundled_dataset_path())) if u.id in CLIPS]
    root = tmp_path_factory.mktemp("real-classes")
    ds = {"hash": dataset_hash(utts), "utterances": len(utts)}
    norm = get_normalizer("basic").to_dict()
    out = {}
    for name, backend, pairs in (("greedy", "whisper", ["cpu_threads=1"]),
                                 ("beam5", "whisper", ["cpu_threads=1", "beam_size=5"]),
                                 ("sphinx", "sphinx", [])):
        run_eval(lambda b=backend, p=pairs: load_backend(b, kind="asr", pairs=p), utts, root / name,
                 options=RunOptions(features="none"), normalizer=norm, dataset=ds)
        out[name] = root / name
    return out


@pytest.mark.slow
def test_per_class_wer_of_whisper_and_sphinx(runs):
    spec = load_class_spec(get_normalizer("basic"), rules="numbers,function_words,ordinals")
    scores = {}
    for name in ("greedy", "sphinx"):
        with RunStore.open(runs[name]) as store:
            scores[name] = score_run(store, "basic", classes=spec, n_resamples=200).condition("clean")
    for name, c in scores.items():
        numbers = c.token_class("numbers")
        assert numbers.counts.ref_len >= 6, name  # ten, two, one x4 ...
        assert numbers.wer.low <= numbers.wer.estimate <= numbers.wer.high
        fw = c.token_class("function_words")
        assert 0 < fw.counts.ref_len < c.ref_words
        # class counts are a restriction of the utterance counts
        assert fw.counts.substitutions + fw.counts.deletions <= c.word_counts.substitutions + c.word_counts.deletions
    assert scores["greedy"].wer.estimate < scores["sphinx"].wer.estimate
    with RunStore.open(runs["greedy"]) as a, RunStore.open(runs["sphinx"]) as b:
        comp = compare_runs(a, b, "basic", classes=spec, n_resamples=200)
    assert comp.token_class("numbers").ref_words == scores["greedy"].token_class("numbers").counts.ref_len


@pytest.mark.slow
def test_three_systems_compared_with_an_omnibus_test(runs):
    with RunStore.open(runs["greedy"]) as a, RunStore.open(runs["beam5"]) as b, RunStore.open(runs["sphinx"]) as c:
        result = compare_many([a, b, c], ["greedy", "beam5", "sphinx"], "basic", n_resamples=200, n_permutations=200)
    cond = result.condition("clean")
    assert cond.utterances == len(CLIPS) and len(cond.pairwise) == 3
    assert {t.name for t in cond.omnibus} >= {"friedman", "permutation"}
    ranking = {r.system: r for r in cond.ranking}
    assert ranking["sphinx"].rank == 3 and ranking["sphinx"].wer > ranking["greedy"].wer
    assert sum(r.p_best for r in cond.ranking) == pytest.approx(1.0)


def test_whisper_initial_prompt_biases_one_clip():
    pytest.importorskip("faster_whisper")
    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import load_backend

    utt = next(u for u in read_manifest(str(bundled_dataset_path())) if u.id == "2033-164914-0007")
    backend = load_backend("whisper", kind="asr", pairs=["cpu_threads=1"])
    audio = load_audio(utt.audio, sample_rate=16000)
    plain = backend.transcribe(audio).text.lower()
    biased = backend.transcribe(audio, initial_prompt="distichs, improvised").text.lower()
    assert "distichs" not in plain and "distichs" in biased  # the list word is recognised only when biased
