"""Hallucination on non-speech and word timing on sessions: the bundled ``non-speech`` and ``sessions``
suites, scoring of clips marked non-speech and of word times at known boundaries, the report sections
and the gate rules ``hallucination.words_per_minute`` and ``timing.p90_start_error``.

Real model: one Whisper tiny.en run (module-scoped) on four short suite clips, one bundled speech
utterance, one unmarked clip with an empty reference and a 3-utterance session. The gate rule's logic is checked on run stores
built here whose hypotheses are chosen, so every expected figure is computed from them.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from voxproof.backends.base import Transcript
from voxproof.cli.main import main
from voxproof.errors import ManifestError, UsageError
from voxproof.gate import evaluate_gate, parse_policy
from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl
from voxproof.manifest.utterance import Utterance
from voxproof.metrics.normalize import get_normalizer
from voxproof.metrics.scoring import score_run
from voxproof.perturb import nonspeech
from voxproof.run.provenance import build_provenance
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore

NORM = {"name": "whisper-en", "version": "1"}


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suites")
    return nonspeech.materialize(0, root).parent


# -- the suite --------------------------------------------------------------------------------------
def test_suite_is_seeded_tagged_and_covers_every_noise_type(suite_dir, tmp_path):
    utts = list(read_manifest(suite_dir / "manifest.jsonl"))
    kinds = {u.tags["kind"] for u in utts}
    assert {"silence", "room-tone", "tone", "clicks", "music", "pause"} <= kinds
    assert {k for k in kinds if k.startswith("noise:")} == {
        "noise:doing_the_dishes", "noise:exercise_bike", "noise:running_tap"}
    assert all(u.tags["non_speech"] == "true" and u.tags["suite"] == "non-speech@1" and not u.text for u in utts)
    # the same seed gives the same bytes; another seed changes the seeded clips but not silence or tones
    again = {c.id: c.samples for c in nonspeech.clips(0)}
    other = {c.id: c.samples for c in nonspeech.clips(1)}
    import soundfile as sf

    for u in utts:
        on_disk, _ = sf.read(u.audio, dtype="float32")
        assert np.allclose(on_disk, again[u.id], atol=1 / 32768 + 1e-7), u.id
    assert np.array_equal(again["tone-440Hz"], other["tone-440Hz"])
    assert not np.array_equal(again["room-tone-pink-60dB"], other["room-tone-pink-60dB"])
    assert not np.array_equal(again["music-melody"], other["music-melody"])
    # levels are what the ids say, and no clip clips
    for cid, db in (("room-tone-pink-60dB", -60.0), ("noise-running_tap-35dB-3s", -35.0)):
        x = again[cid].astype(np.float64)
        assert 10 * np.log10(np.mean(x ** 2)) == pytest.approx(db, abs=0.1)
    assert max(float(np.abs(c).max()) for c in again.values()) < 1.0
    # a second materialise reuses the folder
    assert nonspeech.materialize(0, suite_dir.parent) == suite_dir / "manifest.jsonl"


def test_pauses_are_cut_before_the_speech_starts():
    sr = 16000
    t = np.arange(sr) / sr
    speech = 0.3 * np.sin(2 * np.pi * 200 * t)
    x = np.concatenate([np.zeros(int(0.8 * sr)), speech, 1e-4 * np.ones(int(0.5 * sr))])
    lead, trail = nonspeech.speech_free_edges(x.astype(np.float32), sr)
    assert lead == pytest.approx(0.8 - nonspeech.PAUSE_MARGIN_S, abs=0.021)
    assert trail == pytest.approx(0.5 - nonspeech.PAUSE_MARGIN_S, abs=0.021)
    assert nonspeech.speech_free_edges(np.zeros(10, np.float32), sr) == (0.0, 0.0)


def test_suite_names_and_versions():
    from voxproof.perturb.generated import parse_ref

    assert parse_ref("non-speech") == ("non-speech", 1)
    assert parse_ref("non-speech@1") == ("non-speech", 1)
    assert parse_ref("noise-ladder") is None
    with pytest.raises(UsageError, match="only version is 1"):
        parse_ref("non-speech@7")


# -- the manifest flag --------------------------------------------------------------------------------
@pytest.mark.parametrize("tags,text,message", [
    ({"non_speech": "maybe"}, "", "write true or false"),
    ({"non_speech": "true"}, "hello there", "must be empty"),
    ({"session_segments": "[[1, 2"}, "hi", "not JSON"),
    ({"session_segments": "[]"}, "hi", "non-empty list"),
    ({"session_segments": '[["u", 0, 1e999, 0, 1, "hi"]]'}, "hi", "finite seconds"),
    ({"session_segments": '[["u", 0, 1, 0.5, 0.2, "hi"]]'}, "hi", "speech_start <= speech_end"),
])
def test_manifest_refuses_bad_non_speech_flags(tmp_path, tags, text, message):
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    path = tmp_path / "m.jsonl"
    write_jsonl([Utterance("a", str(wav), text, tags=tags)], path)
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert any(message in m for _, m in info.value.problems)


# -- a real model on a few clips ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def whisper():
    """One Whisper tiny.en for the module (the run below gets a view without ``close``, so it stays open)."""
    from voxproof.backends.registry import load_backend

    backend = load_backend("whisper", None, kind="asr")
    yield backend
    backend.close()


class Unclosable:
    """The shared backend as the runner sees it: the runner closes backends when a run ends."""

    def __init__(self, inner):
        self.inner, self.sample_rate = inner, inner.sample_rate

    def transcribe(self, audio):
        return self.inner.transcribe(audio)

    def info(self):
        return self.inner.info()


@pytest.fixture(scope="module")
def session_utt(tmp_path_factory) -> Utterance:
    """A short session: three utterances of one speaker joined with seeded gaps."""
    import soundfile as sf

    from voxproof.perturb import sessions

    pieces = sessions.bundled_pieces()["2033"][:3]
    session = sessions.build_session("session-test", pieces, seed=0)
    wav = tmp_path_factory.mktemp("session") / "session-test.wav"
    sf.write(str(wav), session.samples, sessions.SAMPLE_RATE, subtype="PCM_16")
    return sessions.to_utterance(session).replace(audio=str(wav))


@pytest.fixture(scope="module")
def whisper_run(suite_dir, tmp_path_factory, whisper, session_utt):
    """Whisper tiny.en on four suite clips, one speech utterance, and one unmarked empty reference."""
    from voxproof.run.runner import RunOptions, run_eval

    by_id = {u.id: u for u in read_manifest(suite_dir / "manifest.jsonl")}
    picks = ["silence-1s", "music-chords", "noise-running_tap-25dB-3s", "pause-3080-5032-0000-lead"]
    speech = next(iter(read_manifest(bundled_dataset_path(), limit=1)))
    unmarked = Utterance("unmarked-empty", by_id["tone-1kHz"].audio, "")
    utts = [by_id[i] for i in picks] + [speech, unmarked, session_utt]
    out = tmp_path_factory.mktemp("runs") / "whisper"
    run_eval(lambda: Unclosable(whisper), utts, out, options=RunOptions(workers=1, features="none"), normalizer=NORM,
             dataset={"hash": "test"})
    return out, picks, speech


def test_non_speech_clips_are_scored_and_unmarked_empty_references_stay_errors(whisper_run):
    out, picks, speech = whisper_run
    norm = get_normalizer("whisper-en")
    with RunStore.open(out) as store:
        rows = {r.utt_id: r for r in store.rows()}
        scores = score_run(store, "whisper-en", n_resamples=200)
    for uid in picks:
        assert rows[uid].ok and rows[uid].reference == ""
    assert rows["unmarked-empty"].error_type == "EmptyReference"
    clean = scores.condition("clean")
    ns = clean.non_speech
    assert ns is not None and ns.overall.clips == len(picks)
    words = [len(norm(rows[u].hypothesis or "").split()) for u in picks]
    minutes = sum(rows[u].audio_duration for u in picks) / 60
    assert ns.overall.words == sum(words)
    assert ns.overall.words_per_minute.estimate == pytest.approx(sum(words) / minutes)
    assert ns.overall.with_output.estimate == pytest.approx(sum(1 for w in words if w) / len(picks))
    assert rows["silence-1s"].hypothesis.strip() == ""  # digital silence: nothing written
    assert {g.name for g in ns.by_kind} == {rows[u].tags["kind"] for u in picks}
    assert sum(p.clips for p in ns.phrases) == sum(1 for w in words if w)
    # the WER holds the speech utterance and the session: the clips are not in it, the unmarked row is an error
    assert clean.utterances == 2 and clean.ref_words == len(norm(speech.text).split()) + len(
        norm(rows["session-test"].reference).split())
    assert clean.coverage.ok == len(picks) + 2 and clean.coverage.by_error_type == {"EmptyReference": 1}
    d = clean.to_dict()["non_speech"]
    assert d["overall"]["clips"] == len(picks) and json.dumps(d)


@pytest.fixture(scope="module")
def report_page(whisper_run) -> str:
    out, _, _ = whisper_run
    assert main(["report", str(out)]) == 0
    return (out / "report.html").read_text()


def test_report_shows_the_hallucination_table(whisper_run, report_page, capsys):
    out, _, _ = whisper_run
    assert "Hallucination on non-speech" in report_page and "hallucinated words / min" in report_page
    summary = json.loads((out / "summary.json").read_text())
    from voxproof.cli.render import print_summary

    print_summary(summary)
    text = capsys.readouterr().out
    assert "hallucination on non-speech (clean)" in text
    assert "noise:running_tap" in text and "pause" in text


# -- the gate rule on chosen hypotheses ---------------------------------------------------------------
CLIPS = [(f"clip{i}", 6.0, "music" if i % 2 else "silence") for i in range(20)]


def make_run(path: Path, hyp, clips=CLIPS, speech=()) -> Path:
    prov = build_provenance(
        backend={"name": "whisper", "kind": "asr", "model": "tiny.en", "model_checksum": "sha256:abc",
                 "options": {}}, dataset={"hash": "ds", "utterances": len(clips) + len(speech)},
        normalizer=NORM, seed=0, run_options={"workers": 1}, conditions=[{"name": "clean", "chain": []}],
    )
    with RunStore.create(path, prov) as store:
        store.set_conditions([("clean", {"name": "clean", "chain": []})])
        for i, (uid, dur, kind) in enumerate(clips):
            text = hyp(i)
            store.add_row(ResultRow(uid, "clean", "ok", reference="", hypothesis=text,
                                    transcript=Transcript(text, (), None), audio_duration=dur, processing_time=0.1,
                                    tags={"non_speech": "true", "kind": kind}), i)
        for j, (uid, ref) in enumerate(speech):
            store.add_row(ResultRow(uid, "clean", "ok", reference=ref, hypothesis=ref,
                                    transcript=Transcript(ref, (), None), audio_duration=3.0, processing_time=0.1),
                          len(clips) + j)
        store.set_meta("status", "complete")
        store.set_meta("resources", {"wall_seconds": 3.0, "workers": 1})
    return path


POLICY = parse_policy('extends = "default"\n[hallucination]\nmax_increase_per_minute = 1.0\n')


def rule(verdict, name):
    return next(r for r in verdict.rules if r.rule == name)


def test_gate_fails_a_candidate_that_hallucinates_more(tmp_path):
    base = make_run(tmp_path / "base", lambda i: "")
    worse = make_run(tmp_path / "worse", lambda i: "thank you for watching" if i % 2 else "")
    verdict = evaluate_gate(base, worse, POLICY)
    r = rule(verdict, "hallucination.words_per_minute")
    # 10 clips x 4 words over 20 clips x 6 s = 2 minutes: +20 words per minute
    assert r.verdict == "fail" and not verdict.passed
    assert r.estimate == pytest.approx(20.0) and r.baseline == 0.0 and r.candidate == pytest.approx(20.0)
    assert r.interval[0] > 1.0
    # only non-speech clips: the WER rules do not apply, they do not fail for want of words
    assert rule(verdict, "wer.overall").verdict == "not_applicable"
    same = evaluate_gate(base, make_run(tmp_path / "same", lambda i: ""), POLICY)
    assert rule(same, "hallucination.words_per_minute").verdict == "pass" and same.passed
    # the other way round: fewer hallucinations pass
    better = evaluate_gate(worse, base, POLICY)
    assert rule(better, "hallucination.words_per_minute").verdict == "pass"


def test_gate_rule_not_applicable_without_non_speech_and_text_output(tmp_path, capsys):
    speech = [("s1", "a cat sat"), ("s2", "on the mat")]
    a = make_run(tmp_path / "a", lambda i: "", clips=(), speech=speech)
    b = make_run(tmp_path / "b", lambda i: "", clips=(), speech=speech)
    verdict = evaluate_gate(a, b, POLICY)
    assert rule(verdict, "hallucination.words_per_minute").verdict == "not_applicable"
    base = make_run(tmp_path / "base", lambda i: "")
    worse = make_run(tmp_path / "worse", lambda i: "you" if i < 10 else "")
    code = main(["gate", "--baseline", str(base), "--candidate", str(worse), "-o", str(tmp_path / "g")])
    out = capsys.readouterr().out
    assert code == 1 and "hallucination.words_per_minute" in out and "words/min" in out


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "\"x\""])
def test_policy_refuses_bad_hallucination_limits(value):
    with pytest.raises(UsageError, match="hallucination"):
        parse_policy(f'extends = "default"\n[hallucination]\nmax_increase_per_minute = {value}\n')


def test_data_names_the_suite_and_a_missing_path_is_a_usage_error(tmp_path, suite_dir):
    from voxproof.run.inputs import resolve_inputs

    inputs = resolve_inputs("non-speech@1", seed=0, cache_dir=suite_dir.parent)  # built once by the fixture
    assert inputs.dataset["suite"] == "non-speech@1" and inputs.dataset["suite_seed"] == 0
    assert len(inputs.utterances) == len(list(read_manifest(suite_dir / "manifest.jsonl")))
    assert main(["eval", "--data", str(tmp_path / "no-such-dir"), "-o", str(tmp_path / "r")]) == 2
    assert main(["eval", "--data", "sessions@9", "-o", str(tmp_path / "r")]) == 2
    assert main(["eval", "--data", "non-speech@../x", "-o", str(tmp_path / "r")]) == 2
    assert main(["eval", "--chunk-seconds", "nan", "--limit", "1", "-o", str(tmp_path / "r")]) == 2


# -- word timing --------------------------------------------------------------------------------------
def test_whisper_word_times_at_session_boundaries(whisper_run, report_page, capsys):
    from voxproof.metrics.timing import boundary_errors

    out, _, _ = whisper_run
    with RunStore.open(out) as store:
        row = next(r for r in store.rows() if r.utt_id == "session-test")
        scores = score_run(store, "whisper-en", n_resamples=200)
    t = scores.condition("clean").timing
    assert t is not None and t.sessions == 1
    assert t.start.timed == 3 and t.end.timed == 3
    errs = boundary_errors(row, get_normalizer("whisper-en"))
    starts = [abs(e.error) for e in errs if e.which == "start" and e.error is not None]
    assert t.start.matched == len(starts) >= 2  # tiny.en recognises most first words of clean read speech
    assert t.start.abs_error["p50"].estimate == pytest.approx(float(np.median(starts)))
    assert max(starts) < 1.0  # word times land near the measured speech onsets, not in another utterance
    bad = sum(1 for e in errs if e.error is None or abs(e.error) > 0.2 + 1e-9)
    assert t.tc_error["200ms"].estimate == pytest.approx(bad / len(errs))
    assert "Word timing" in report_page and "Long-form" in report_page
    from voxproof.cli.render import print_summary

    print_summary(json.loads((out / "summary.json").read_text()))
    text = capsys.readouterr().out
    assert "word timing (clean, 1 sessions" in text and "long-form (clean, 1 sessions)" in text
    # every word of the one utterance PocketSphinx could align (the other two have out-of-vocabulary words)
    a = t.aligned
    assert a is not None and (a.utterances, a.skipped) == (1, 2)
    assert a.start.timed == 17 and 10 <= a.start.matched <= 17 and a.start.abs_error["p50"].estimate < 0.3
    assert a.aligner_start.matched == 1 and abs(a.aligner_start.median_signed) < 0.3
    assert "every word start" in text and "aligner at utterance start" in text and "forced alignment" in report_page


def session_row(uid: str, shift: float, miss_first: bool = False) -> ResultRow:
    """A session of two utterances with known boundaries; the hypothesis words are the reference words
    timed from the boundaries, shifted by ``shift`` seconds (``miss_first`` drops the first word)."""
    from voxproof.backends.base import Word

    segs = [["u1", 0.5, 2.5, 0.7, 2.3, "the cat sat"], ["u2", 3.0, 5.0, 3.2, 4.9, "on a mat"]]
    words = [Word("the", 0.7, 1.0), Word("cat", 1.1, 1.5), Word("sat", 1.6, 2.3),
             Word("on", 3.2, 3.5), Word("a", 3.6, 3.7), Word("mat", 3.8, 4.9)]
    words = [Word(w.text, w.start + shift, w.end + shift) for w in words][1 if miss_first else 0:]
    text = " ".join(w.text for w in words)
    return ResultRow(uid, "clean", "ok", reference="the cat sat on a mat", hypothesis=text,
                     transcript=Transcript(text, tuple(words), None), audio_duration=5.5, processing_time=0.1,
                     tags={"session_segments": json.dumps(segs)})


def test_boundary_errors_are_exact_on_known_times():
    from voxproof.metrics.timing import boundary_errors, score_timing

    norm = get_normalizer("whisper-en")
    errs = boundary_errors(session_row("s", 0.04), norm)
    assert [(e.utt_id, e.which) for e in errs] == [("u1", "start"), ("u1", "end"), ("u2", "start"), ("u2", "end")]
    assert [round(e.error, 6) for e in errs] == [0.04] * 4
    missed = boundary_errors(session_row("s", 0.0, miss_first=True), norm)
    assert missed[0].error is None and missed[1].error == 0.0
    t = score_timing([session_row("s", 0.04), session_row("t", 0.15)], norm, n_resamples=200)
    assert t.start.matched == 4 and t.start.abs_error["p50"].estimate == pytest.approx(0.095)
    assert t.start.in_collar["50ms"].estimate == 0.5 and t.start.in_collar["200ms"].estimate == 1.0
    assert t.tc_error["100ms"].estimate == 0.5 and t.tc_error["200ms"].estimate == 0.0
    assert t.start.median_signed == pytest.approx(0.095)
    # a backend without word times: timing is undefined, not zero
    no_times = session_row("s", 0.0)
    no_times = ResultRow(**{**no_times.__dict__, "transcript": Transcript(no_times.hypothesis, (), None)})
    assert score_timing([no_times], norm) is None


def make_session_run(path: Path, shift: float, n: int = 12) -> Path:
    prov = build_provenance(
        backend={"name": "whisper", "kind": "asr", "model": "tiny.en", "model_checksum": "sha256:abc",
                 "options": {}}, dataset={"hash": "ds", "utterances": n}, normalizer=NORM, seed=0,
        run_options={"workers": 1}, conditions=[{"name": "clean", "chain": []}],
    )
    with RunStore.create(path, prov) as store:
        store.set_conditions([("clean", {"name": "clean", "chain": []})])
        for i in range(n):
            store.add_row(session_row(f"s{i}", shift * (i % 3) / 2), i)
        store.set_meta("status", "complete")
        store.set_meta("resources", {"wall_seconds": 3.0, "workers": 1})
    return path


def test_gate_fails_when_p90_start_error_grows(tmp_path):
    policy = parse_policy('extends = "default"\n[timing]\nmax_p90_start_increase_seconds = 0.02\n')
    base = make_session_run(tmp_path / "base", 0.0)
    late = make_session_run(tmp_path / "late", 0.3)
    verdict = evaluate_gate(base, late, policy)
    r = rule(verdict, "timing.p90_start_error")
    assert r.verdict == "fail" and r.baseline == 0.0 and r.candidate == pytest.approx(0.3)
    assert rule(evaluate_gate(late, base, policy), "timing.p90_start_error").verdict == "pass"
    assert rule(evaluate_gate(base, make_session_run(tmp_path / "same", 0.0), policy),
                "timing.p90_start_error").verdict == "pass"
    # runs without sessions: not applicable
    plain = make_run(tmp_path / "plain", lambda i: "")
    assert rule(evaluate_gate(plain, make_run(tmp_path / "plain2", lambda i: ""), policy),
                "timing.p90_start_error").verdict == "not_applicable"


# -- long-form ----------------------------------------------------------------------------------------
def test_longform_finds_loops_dropped_windows_and_error_by_position():
    from voxproof.backends.base import Word
    from voxproof.metrics.longform import score_longform

    first, second, third = "the quick brown fox jumps over", "alpha beta gamma delta epsilon zeta eta theta", "red green blue"
    segs = [["u1", 0.0, 4.0, 0.5, 3.5, first], ["u2", 5.0, 13.0, 5.2, 12.8, second],
            ["u3", 40.0, 43.0, 40.2, 42.8, third]]

    def row(uid: str, hyp: str) -> ResultRow:
        return ResultRow(uid, "clean", "ok", reference=f"{first} {second} {third}", hypothesis=hyp,
                         transcript=Transcript(hyp, tuple(Word(w) for w in hyp.split()), None), audio_duration=44.0,
                         processing_time=1.0, tags={"session_segments": json.dumps(segs)})

    looped = row("a", f"{first} {second} {third}" + " thank you very much" * 4)  # 16 insertions at the end
    dropped = row("b", f"{first} {third}")  # the 8 words of u2 deleted
    lf = score_longform([looped, dropped], get_normalizer("whisper-en"))
    assert lf.sessions == 2 and lf.ref_words == 34 and lf.errors == 16 + 8
    # one loop: the 4-word unit, not its rotations or sub-grams
    assert [(x.session, x.ngram, x.hyp_count, x.ref_count) for x in lf.loops] == [("a", "thank you very much", 4, 1)]
    (d,) = lf.dropped  # placed over u2's speech (5.2-12.8 s), one word every 0.95 s
    assert d.session == "b" and d.words == 8
    assert d.start == pytest.approx(5.2 + 7.6 * 0.5 / 8) and d.end == pytest.approx(12.8 - 7.6 * 0.5 / 8)
    by = {s: (n, e) for s, n, e in lf.by_position}
    assert by == {0.0: (28, 8), 30.0: (6, 16)}  # the loop counts in the window of the word before it


def test_chunked_decoding_stitches_whisper_windows_without_repeats(whisper_run, whisper, session_utt):
    from voxproof.audio.io import load_audio
    from voxproof.backends.chunked import ChunkedTranscriber, ChunkOptions
    from voxproof.metrics.align import word_counts

    out, _, _ = whisper_run
    with RunStore.open(out) as store:
        row = next(r for r in store.rows() if r.utt_id == "session-test")
    norm = get_normalizer("whisper-en")
    audio = load_audio(session_utt.audio, sample_rate=16000)
    chunked = ChunkedTranscriber(whisper, ChunkOptions(8.0, 2.0))
    wins = chunked.windows(audio.duration)
    assert wins[0][0] == 0.0 and wins[-1][1] == pytest.approx(audio.duration) and len(wins) >= 2
    assert all(b[2] == pytest.approx(a[3]) for a, b in itertools.pairwise(wins))  # own parts tile the clip
    t = chunked.transcribe(audio)
    assert t.extras["stitch"] == "word times" and t.extras["windows"] == len(wins)
    starts = [w.start for w in t.words]
    assert starts == sorted(starts) and starts[-1] < audio.duration
    chunk_c = word_counts(norm(row.reference), norm(t.text))
    native_c = word_counts(norm(row.reference), norm(row.hypothesis))
    # window edges cost a few words, never a repeated overlap (which would show as many insertions)
    assert chunk_c.insertions <= native_c.insertions + 3 and chunk_c.error_rate < native_c.error_rate + 0.25
    assert chunked.info().options["chunked"] == {"window_seconds": 8.0, "overlap_seconds": 2.0}


def test_loops_are_tandem_repeats_beyond_the_reference():
    from voxproof.metrics.longform import loops_of

    ref = "the cat sat on the mat and the dog sat on the mat".split()
    # whole-session repeats of reference content are not loops; back-to-back copies are
    assert loops_of("s", ref, ref, 6, 2) == []
    hyp = ["beep"] * 12 + ref
    (loop,) = loops_of("s", ref, hyp, 6, 2)
    assert (loop.ngram, loop.hyp_count, loop.ref_count) == ("beep", 12, 1)
    said_twice = "very very good".split()
    assert loops_of("s", said_twice, "very very very good".split(), 6, 2) == []  # one more copy: not a loop
    assert loops_of("s", said_twice, ("very " * 5 + "good").split(), 6, 2)[0].hyp_count == 5


@pytest.mark.parametrize("window,overlap", [(float("nan"), 1.0), (float("inf"), 1.0), (0.5, 0.0), (10.0, 6.0),
                                            (10.0, -1.0)])
def test_chunk_options_refuse_bad_values(window, overlap):
    from voxproof.backends.chunked import ChunkOptions

    with pytest.raises(UsageError):
        ChunkOptions(window, overlap)
