"""score_run on run stores built in tmp_path from the real LibriSpeech transcripts: coverage, corpus
rates equal to jiwer, cached counts reused, slices with intervals and warnings, JSON output."""

from __future__ import annotations

import json
import math
import random

import jiwer
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.errors import UsageError
from voxproof.metrics import scoring
from voxproof.metrics.scoring import score_run, substitution_pairs, top_confusions, utterance_alignment
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore


def _librispeech(shared_data):
    folder = shared_data / "librispeech-test-other-mini"
    texts = dict(line.split("\t", 1) for line in (folder / "transcripts.tsv").read_text().splitlines() if line)
    info = {}
    lines = (folder / "utt_info.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    for line in lines[1:]:
        d = dict(zip(head, line.split("\t")))
        info[d["id"]] = d
    return texts, info


def _hypothesis(ref: str, rng: random.Random, rate: float) -> str:
    """A plausible raw hypothesis: mixed case and punctuation, some words dropped or replaced."""
    out = []
    for w in ref.split():
        r = rng.random()
        if r < rate / 2:
            continue
        out.append("BANANA" if r < rate else w)
    text = " ".join(out).capitalize()
    return text + "." if text else text


def build_store(tmp_path, shared_data, *, name="run", rate=0.15, seed=1, extra_rows=True, dataset_hash="h1"):
    texts, info = _librispeech(shared_data)
    store = RunStore.create(tmp_path / name, {"dataset_hash": dataset_hash,
                                              "normalizer": {"name": "whisper-en", "version": "1"}})
    store.set_conditions([("clean", []), ("noise-10db", [{"name": "noise", "snr": 10}])])
    rng = random.Random(seed)
    pos = 0
    for cond, r in (("clean", rate), ("noise-10db", 2 * rate)):
        for utt, ref in texts.items():
            d = info[utt]
            store.add_row(ResultRow(utt, cond, "ok", reference=ref, hypothesis=_hypothesis(ref, rng, r),
                                    audio_duration=float(d["duration_s"]), processing_time=0.1, speaker=d["speaker"],
                                    tags={"gender": d["gender"]}), pos)
            pos += 1
    if extra_rows:
        store.add_row(ResultRow("missing-1", "clean", "error", reference="HELLO", error_type="AudioNotFound",
                                error_message="no such file"), pos)
        store.add_row(ResultRow("empty-ref", "clean", "error", reference="", error_type="EmptyReference"), pos + 1)
        store.add_row(ResultRow("crash-1", "clean", "error", reference="A B", error_type="BackendError"), pos + 2)
    return store


def test_score_run_matches_jiwer_and_reports_coverage(tmp_path, shared_data):
    store = build_store(tmp_path, shared_data)
    scores = score_run(store, n_resamples=300, seed=0)
    assert [c.condition for c in scores.conditions] == ["clean", "noise-10db"]
    clean = scores.condition("clean")
    assert clean.coverage.total == 53 and clean.coverage.ok == 50
    assert clean.coverage.by_error_type == {"AudioNotFound": 1, "EmptyReference": 1, "BackendError": 1}
    assert clean.utterances == 50 and clean.ref_words == 1060 and clean.speakers == 5
    assert clean.audio_hours == pytest.approx(sum(float(d["duration_s"]) for d in _librispeech(shared_data)[1].values()) / 3600)
    # corpus WER equals jiwer on the same texts with Whisper's own normaliser
    whisper = EnglishTextNormalizer()
    rows = [r for r in store.rows("clean") if r.ok]
    out = jiwer.process_words([whisper(r.reference).strip() for r in rows], [whisper(r.hypothesis).strip() for r in rows])
    assert (clean.word_counts.hits, clean.word_counts.substitutions, clean.word_counts.deletions,
            clean.word_counts.insertions) == (out.hits, out.substitutions, out.deletions, out.insertions)
    assert clean.wer.estimate == pytest.approx(out.wer)
    assert clean.mer == pytest.approx(out.mer) and clean.wil == pytest.approx(out.wil)
    chars = jiwer.process_characters([whisper(r.reference).strip() for r in rows],
                                     [whisper(r.hypothesis).strip() or " " for r in rows])
    assert clean.cer.estimate == pytest.approx(chars.cer)
    # raw WER (no normalisation) is far worse: case and punctuation differ
    assert clean.raw_wer > clean.wer.estimate
    # mean of utterance WER is reported separately and differs from the corpus figure
    utt_rates = []
    for r in rows:
        o = jiwer.process_words(whisper(r.reference).strip(), whisper(r.hypothesis).strip() or "x")
        utt_rates.append(o.wer if whisper(r.hypothesis).strip() else 1.0)
    assert clean.mean_utterance_wer == pytest.approx(sum(utt_rates) / len(utt_rates))
    assert clean.wer.low < clean.wer.estimate < clean.wer.high
    assert clean.wer.blocked_by == "speaker" and clean.wer.n_units == 5
    assert scores.condition("noise-10db").wer.estimate > clean.wer.estimate
    assert any("3 of 53 rows could not be scored" in w for w in clean.warnings)


def test_counts_are_cached_and_reused(tmp_path, shared_data, monkeypatch):
    store = build_store(tmp_path, shared_data)
    first = score_run(store, n_resamples=100)
    cached = store.cached_counts("whisper-en@1", "word")
    assert len(cached) == 100  # 50 utterances x 2 conditions, error rows never aligned
    assert len(store.cached_counts("none@1", "word")) == 100

    def boom(*a, **k):
        raise AssertionError("re-aligned an utterance that was already aligned")

    monkeypatch.setattr(scoring, "word_counts", boom)
    monkeypatch.setattr(scoring, "char_counts", boom)
    again = score_run(store, n_resamples=100)
    assert again.to_dict() == first.to_dict()
    # a reopened store reads the same cache
    store.close()
    reopened = RunStore.open(tmp_path / "run")
    assert score_run(reopened, n_resamples=100).to_dict() == first.to_dict()


def test_slices_gaps_and_small_slice_warnings(tmp_path, shared_data):
    store = build_store(tmp_path, shared_data)
    clean = score_run(store, n_resamples=300).condition("clean")
    keys = {(s.key, s.value) for s in clean.slices}
    assert {("speaker", sp) for sp in ("1688", "1998", "2033", "3080", "367")} <= keys
    assert {("gender", "M"), ("gender", "F")} <= keys
    for s in clean.slices:
        assert s.wer.low <= s.wer.estimate <= s.wer.high
        assert s.wer.n_resamples == 300 and s.wer.level == 0.95
    speaker = clean.slice("speaker", "1688")
    assert speaker.utterances == 10 and speaker.wer.blocked_by is None  # one speaker: utterances resampled
    female = clean.slice("gender", "F")
    assert female.utterances == 30 and female.speakers == 3 and female.wer.blocked_by == "speaker"
    # sums of slice counts give the corpus counts
    assert sum(s.counts.ref_len for s in clean.slices if s.key == "gender") == clean.ref_words
    # each speaker has ~200 words: some fall under the 200-word threshold and are flagged
    small = [s for s in clean.slices if s.small]
    assert small and all(s.warning and "too small" in s.warning for s in small)
    assert all(not s.small for s in clean.slices if s.key == "gender")
    assert "only 3 speakers" in clean.slice("gender", "F").warning
    gaps = {g.key: g for g in clean.gaps}
    g = gaps["speaker"]
    worst, best = clean.slice("speaker", g.worst), clean.slice("speaker", g.best)
    assert g.gap.estimate == pytest.approx(worst.wer.estimate - best.wer.estimate)
    assert g.gap.estimate >= 0 and g.gap.low <= g.gap.estimate <= g.gap.high
    assert any("speakers" in w and "too narrow" in w for w in clean.warnings)  # 5 speakers < 30


def test_to_dict_is_json_ready_and_versioned(tmp_path, shared_data):
    store = build_store(tmp_path, shared_data)
    d = score_run(store, n_resamples=50, seed=7, alternates="default").to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["schema"] == 1 and back["type"] == "run_scores"
    assert back["intervals"] == {"method": "percentile", "n_resamples": 50, "seed": 7, "level": 0.95}
    assert back["normalizer"]["name"] == "whisper-en" and back["alternates"]["source"] == "default"
    c = back["conditions"][0]
    assert c["wer"]["method"] == "percentile" and c["wer"]["blocked_by"] == "speaker"
    assert c["coverage"]["share"] == pytest.approx(50 / 53)
    assert sum(c["error_distribution"]["wer_bin_counts"]) == 50
    # alternates are part of the cache key: counts with and without them are kept apart
    assert store.cached_counts("whisper-en@1", "word") == {}
    assert len(store.cached_counts(f"whisper-en@1+alt:{back['alternates']['digest']}", "word")) == 100


def test_normalizer_none_and_bad_settings(tmp_path, shared_data):
    store = build_store(tmp_path, shared_data, extra_rows=False)
    none = score_run(store, normalizer="none", n_resamples=50).condition("clean")
    assert none.wer.estimate == pytest.approx(none.raw_wer)
    with pytest.raises(UsageError):
        score_run(store, normalizer="nope")
    with pytest.raises(UsageError):
        score_run(store, n_resamples=0)


def test_utterance_alignment_and_confusions(tmp_path, shared_data):
    row = ResultRow("u1", "clean", "ok", reference="THE CAT SAT ON THE MAT", hypothesis="Um, the bat sat on mat.")
    a = utterance_alignment(row)
    assert a.reference == "the cat sat on the mat" and a.hypothesis == "the bat sat on mat"
    assert a.ops == (("equal", "the", "the"), ("substitute", "cat", "bat"), ("equal", "sat", "sat"),
                     ("equal", "on", "on"), ("delete", "the", None), ("equal", "mat", "mat"))
    assert a.to_dict()["wer"] == pytest.approx(2 / 6)
    b = utterance_alignment(ResultRow("u2", "clean", "ok", reference="A B", hypothesis="a b, okay"))
    assert b.ops[-1] == ("insert", None, "okay") and b.counts.insertions == 1
    store = build_store(tmp_path, shared_data)
    rows = list(store.rows("clean"))
    conf = top_confusions(rows, n=5)
    assert conf[0]["count"] >= conf[-1]["count"]
    assert all(c["op"] in ("substitute", "delete", "insert") for c in conf)
    subs = substitution_pairs(rows, n=3)
    assert subs and all(h == "banana" for _, h, _ in subs)
    assert not math.isnan(a.wer)


def test_bca_intervals_on_request(tmp_path, shared_data):
    store = build_store(tmp_path, shared_data, extra_rows=False)
    scores = score_run(store, n_resamples=200, interval_method="bca")
    clean = scores.condition("clean")
    assert scores.to_dict()["intervals"]["method"] == "bca"
    assert clean.wer.method == "bca" and all(s.wer.method == "bca" for s in clean.slices)
    assert clean.wer.low <= clean.wer.estimate <= clean.wer.high
    with pytest.raises(UsageError):
        score_run(store, interval_method="magic")
