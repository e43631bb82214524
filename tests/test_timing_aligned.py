"""Word timing of every word against a PocketSphinx forced alignment (``sessions@2``, tag
``session_word_times``): the aligner on real bundled clips, the scoring on run rows whose hypothesis
times are chosen (so every expected figure is computed here), and the tag's checks on hostile values.
The Whisper run on a real session is checked in ``test_nonspeech.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxproof.backends.base import Transcript, Word
from voxproof.manifest.entries import WORD_TIMES_TAG, check_utterance, word_times_problem
from voxproof.manifest.utterance import Utterance
from voxproof.metrics.normalize import get_normalizer
from voxproof.metrics.timing import aligned_errors, score_timing
from voxproof.report.timing import aligned_text, timing_rows
from voxproof.run.records import ResultRow

NORM = get_normalizer("whisper-en")
SEGS = [["u1", 0.5, 2.5, 0.7, 2.3, "the cat sat"], ["u2", 3.0, 5.0, 3.2, 4.9, "on a mat"]]
ALIGNED = [["u1", "the", 0.68, 1.0], ["u1", "cat", 1.1, 1.5], ["u1", "sat", 1.6, 2.36],
           ["u2", "on", 3.2, 3.5], ["u2", "a", 3.6, 3.7], ["u2", "mat", 3.8, 4.9]]


def row(shift: float, aligned=ALIGNED, drop: str | None = None) -> ResultRow:
    """Hypothesis words at the aligned times shifted by ``shift`` s (``drop`` leaves one word out)."""
    words = tuple(Word(w, a + shift, b + shift) for _, w, a, b in ALIGNED if w != drop)
    text = " ".join(w.text for w in words)
    return ResultRow("s", "clean", "ok", reference="the cat sat on a mat", hypothesis=text,
                     transcript=Transcript(text, words, None), audio_duration=5.5, processing_time=0.1,
                     tags={"session_segments": json.dumps(SEGS), WORD_TIMES_TAG: json.dumps(aligned)})


def test_every_aligned_word_is_judged_and_the_aligner_against_the_exact_edges():
    errs, edges, skipped = aligned_errors(row(0.03), NORM)
    assert skipped == 0 and len(errs) == 12
    assert [round(e.error, 6) for e in errs] == [0.03] * 12
    assert [(e.utt_id, e.which, e.word) for e in errs[:4]] == [("u1", "start", 0), ("u1", "end", 0),
                                                                ("u1", "start", 1), ("u1", "end", 1)]
    # the aligner's first start / last end minus the measured speech start / end of each utterance
    assert [round(e.error, 6) for e in edges] == [-0.02, 0.06, 0.0, 0.0]
    missed, _, _ = aligned_errors(row(0.0, drop="cat"), NORM)
    assert [e.error for e in missed if e.word == 1 and e.utt_id == "u1"] == [None, None]
    # an utterance whose aligned words do not give its reference tokens is not judged
    _, edges, skipped = aligned_errors(row(0.0, aligned=[w for w in ALIGNED if w[1] != "a"]), NORM)
    assert skipped == 1 and [e.utt_id for e in edges] == ["u1", "u1"]


def test_score_timing_reports_the_aligned_words_beside_the_exact_boundaries():
    rows = [row(0.03), row(0.15, drop="cat")]
    rows[1] = ResultRow(**{**rows[1].__dict__, "utt_id": "t"})
    t = score_timing(rows, NORM, n_resamples=200)
    a = t.aligned
    assert (a.utterances, a.skipped) == (4, 0)
    assert a.start.timed == 12 and a.start.matched == 11
    starts = np.array([0.03] * 6 + [0.15] * 5)
    assert a.start.abs_error["p50"].estimate == pytest.approx(float(np.median(starts)))
    assert a.start.in_collar["50ms"].estimate == pytest.approx(6 / 11)
    assert a.tc_error["100ms"].estimate == pytest.approx(12 / 24)  # 5 words x 2 edges outside, 1 missed x 2
    assert a.aligner_start.matched == 4 and a.aligner_start.median_signed == pytest.approx(-0.01)
    d = t.to_dict()
    labels = [r[0] for r in timing_rows(d)]
    assert labels == ["word start", "word end", "every word start", "every word end",
                      "aligner at utterance start", "aligner at utterance end"]
    assert "4 utterances aligned, 0 not" in aligned_text(d)
    # without the tag: the exact-boundary figures only
    plain = [ResultRow(**{**r.__dict__, "tags": {"session_segments": json.dumps(SEGS)}}) for r in rows]
    t2 = score_timing(plain, NORM, n_resamples=200)
    assert t2.aligned is None and t2.to_dict()["aligned"] is None and len(timing_rows(t2.to_dict())) == 2
    assert aligned_text(t2.to_dict()) is None


@pytest.mark.parametrize("value, needle", [
    ("nope", "not JSON"), ('{"a": 1}', "must be a list"), ('[["u", "w", 1]]', "word 0"),
    ('[["u", "w", NaN, 1]]', "finite"), ('[["u", "w", 1, Infinity]]', "finite"), ('[["u", "w", true, 1]]', "finite"),
    ('[["u", "w", -1, 1]]', "0 <= start <= end"), ('[["u", "w", 2, 1]]', "0 <= start <= end"),
    ('[["u", 3, 1, 2]]', "word 0"),
])
def test_bad_word_times_tags_are_refused_and_ignored_when_scoring(value, needle, caplog):
    assert needle in word_times_problem(value)
    utt = Utterance("s", "a.wav", "the cat", tags={"session_segments": json.dumps(SEGS), WORD_TIMES_TAG: value})
    assert any(WORD_TIMES_TAG in p for p in check_utterance(utt))
    bad = ResultRow(**{**row(0.0).__dict__, "tags": {"session_segments": json.dumps(SEGS), WORD_TIMES_TAG: value}})
    assert aligned_errors(bad, NORM) is None and "ignored" in caplog.text


def test_pocketsphinx_forced_alignment_of_bundled_clips():
    pytest.importorskip("pocketsphinx")
    from voxproof.audio.io import load_audio
    from voxproof.backends.sphinx import align_words
    from voxproof.manifest import bundled_dataset_path, read_manifest
    from voxproof.perturb.nonspeech import voiced_span

    utts = {u.id: u for u in read_manifest(bundled_dataset_path())}
    u = utts["1688-142285-0002"]  # "you don't mean that you thought me so silly"
    samples = load_audio(u.audio, sample_rate=16000).samples
    lead = np.random.default_rng(0).normal(0, 1e-4, 16000).astype(np.float32)  # 1 s of faint noise first
    ok, shifted, oov, silent = align_words([(u.text, samples), (u.text, np.concatenate([lead, samples])),
                                            ("helstone " + u.text, samples), (u.text, np.zeros(16000, np.float32))])
    assert [w for w, _, _ in ok] == u.text.lower().split()
    times = [t for _, a, b in ok for t in (a, b)]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= len(samples) / 16000
    assert abs(ok[-1][2] - voiced_span(samples, 16000)[1]) < 0.3
    # the same words one second later when the clip starts one second later
    moved = np.array([t for _, a, b in shifted for t in (a, b)]) - np.array(times)
    assert [w for w, _, _ in shifted] == [w for w, _, _ in ok] and np.all(np.abs(moved - 1.0) <= 0.03)
    assert oov is None and silent is None  # an out-of-vocabulary word; digital silence


def test_longform_cost_pairs_each_utterance_inside_its_session_with_its_lone_decoding():
    from voxproof.metrics.longform import longform_cost, score_longform
    from voxproof.report.longform import cost_line, longform_lines

    def plain(uid: str, ref: str, hyp: str, tags=None) -> ResultRow:
        return ResultRow(uid, "clean", "ok", reference=ref, hypothesis=hyp, transcript=Transcript(hyp, (), None),
                         audio_duration=5.0, processing_time=0.1, tags=tags or {})

    seg = {"session_segments": json.dumps(SEGS)}
    # in the session: "so" inserted before u1 (counted at its first word), "cat" -> "hat", "mat" dropped
    session = plain("s", "the cat sat on a mat", "so the hat sat on a", seg)
    alone = [plain("u1", "the cat sat", "the cat sat"), plain("u2", "on a mat", "on the mat"),
             plain("other", "red sky", "red")]
    cost = longform_cost([session, *alone], NORM, n_resamples=200)
    assert (cost.sessions, cost.utterances, cost.ref_words) == (1, 2, 6)
    assert (cost.session_errors, cost.utterance_errors) == (3, 1)
    assert cost.difference.estimate == pytest.approx(3 / 6 - 1 / 6) and cost.difference.blocked_by is None
    lf = score_longform([session, *alone], NORM, n_resamples=200).to_dict()
    assert lf["versus_utterances"]["session_wer"] == pytest.approx(0.5)
    assert "session 50.0 % vs per-utterance 16.7 %, difference 33.33 pts" in cost_line(lf)
    assert longform_lines(lf)[-1] == cost_line(lf)
    # a lone row whose reference differs from the segment's is not paired; no lone rows: no figure
    changed = plain("u2", "on a hat", "on a hat")
    assert longform_cost([session, alone[0], changed], NORM, n_resamples=200).utterances == 1
    assert longform_cost([session], NORM) is None and score_longform([session], NORM).to_dict()["versus_utterances"] is None
