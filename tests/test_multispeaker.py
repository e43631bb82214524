"""Multi-speaker scoring against MeetEval (cpWER) and pyannote.metrics (DER, JER) on the same inputs,
interchange-format round trips, and hostile files. The inputs are seeded random sessions (overlaps,
silences, missing and extra speakers) and a two-speaker case made from the bundled real speech."""

from __future__ import annotations

import json
import random

import pytest

from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.metrics.multispeaker import cp_wer, diarization_errors, orc_wer, tcp_wer
from voxproof.metrics.segments import (
    Segment,
    read_ctm,
    read_rttm,
    read_seglst,
    read_segments,
    read_stm,
    read_uem,
    write_ctm,
    write_rttm,
    write_seglst,
    write_stm,
    write_uem,
)

VOCAB = ["the", "a", "of", "lobster", "cream", "sherry", "margaret", "said", "thornton", "hale", "yes", "no", "one", "two", "ten"]


def random_session(rng: random.Random, session: str, speakers: int, turns: int, words: bool = True) -> list[Segment]:
    out, t, last = [], 0.0, {}
    for _ in range(turns):
        speaker = f"s{rng.randrange(speakers)}"
        start = round(t + rng.uniform(-0.8, 1.5), 2)  # negative gaps overlap the previous turn
        start = max(0.0, start, last.get(speaker, 0.0))  # a speaker never overlaps itself (see SELF_OVERLAP)
        end = round(start + rng.uniform(0.3, 4.0), 2)
        text = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 8))) if words else ""
        out.append(Segment(session, speaker, start, end, text))
        t = last[speaker] = end
    return out


def perturb(rng: random.Random, segs: list[Segment], speakers: int) -> list[Segment]:
    """A hypothesis: shifted boundaries, some speakers relabelled, words dropped or changed."""
    out = []
    relabel = {f"s{i}": f"h{rng.randrange(speakers + 1)}" for i in range(speakers)}
    for s in segs:
        if rng.random() < 0.1:
            continue
        words = [w if rng.random() > 0.2 else rng.choice(VOCAB) for w in s.words.split() if rng.random() > 0.1]
        start = max(0.0, round(s.start + rng.uniform(-0.3, 0.3), 2))
        out.append(Segment(s.session, relabel[s.speaker] if rng.random() > 0.15 else "h9", start,
                           round(max(start, s.end + rng.uniform(-0.3, 0.3)), 2), " ".join(words)))
    return no_self_overlap(out)


def no_self_overlap(segs: list[Segment]) -> list[Segment]:
    """Each speaker's segments trimmed so that they do not overlap each other."""
    out, last = [], {}
    for s in sorted(segs, key=lambda s: (s.session, s.start, s.end)):
        key = (s.session, s.speaker)
        start = max(s.start, last.get(key, 0.0))
        if start < s.end:
            out.append(Segment(s.session, s.speaker, start, s.end, s.words))
            last[key] = s.end
    return out


def cases(n=6):
    rng = random.Random(7)
    for k in range(n):
        spk = rng.randint(1, 4)
        ref = [s for i in range(2) for s in random_session(rng, f"sess{k}-{i}", spk, rng.randint(2, 12))]
        yield ref, perturb(rng, ref, spk)


def to_seglst(segs):
    return [{"session_id": s.session, "speaker": s.speaker, "start_time": s.start, "end_time": s.end,
             "words": s.words} for s in segs]


@pytest.mark.parametrize("case", range(6))
def test_cpwer_equals_meeteval(case):
    meeteval = pytest.importorskip("meeteval")
    from meeteval.io import SegLST
    from meeteval.wer import combine_error_rates
    from meeteval.wer.wer.cp import cp_word_error_rate_multifile

    ref, hyp = list(cases())[case]
    ours = cp_wer(ref, hyp)
    theirs = combine_error_rates(*cp_word_error_rate_multifile(SegLST(to_seglst(ref)), SegLST(to_seglst(hyp))).values())
    assert (ours.errors, ours.length) == (theirs.errors, theirs.length)
    assert ours.missed_speakers == theirs.missed_speaker and ours.falarm_speakers == theirs.falarm_speaker
    assert meeteval is not None


@pytest.mark.parametrize("case", range(6))
def test_orcwer_equals_meeteval(case):
    pytest.importorskip("meeteval")
    from meeteval.io import SegLST
    from meeteval.wer import combine_error_rates
    from meeteval.wer.wer.orc import orc_word_error_rate_multifile

    ref, hyp = list(cases())[case]
    ours = orc_wer(ref, hyp)
    theirs = combine_error_rates(*orc_word_error_rate_multifile(SegLST(to_seglst(ref)), SegLST(to_seglst(hyp))).values())
    assert (ours.errors, ours.length) == (theirs.errors, theirs.length)
    assert ours.errors <= cp_wer(ref, hyp).errors  # ORC may split a speaker's segments over streams


@pytest.mark.parametrize("collar", [0.0, 0.5, 5.0])
def test_tcpwer_equals_meeteval(collar):
    pytest.importorskip("meeteval")
    from meeteval.io import SegLST
    from meeteval.wer import combine_error_rates
    from meeteval.wer.wer.time_constrained import tcp_word_error_rate_multifile

    for ref, hyp in cases():
        ours = tcp_wer(ref, hyp, collar=collar)
        theirs = combine_error_rates(*tcp_word_error_rate_multifile(
            SegLST(to_seglst(ref)), SegLST(to_seglst(hyp)), collar=collar).values())
        assert (ours.errors, ours.length) == (theirs.errors, theirs.length)
        assert ours.errors >= cp_wer(ref, hyp).errors  # time constraints only remove alignments


def test_orcwer_refuses_a_state_space_too_large():
    ref = [Segment("s", "a", 0, 1, "x")]
    hyp = [Segment("s", f"h{k}", 0, 1, " ".join(["w"] * 60)) for k in range(4)]
    with pytest.raises(UsageError, match="states"):
        orc_wer(ref, hyp)


def _annotation(segs, session):
    from pyannote.core import Annotation
    from pyannote.core import Segment as PSegment

    a = Annotation(uri=session)
    for i, s in enumerate(x for x in segs if x.session == session):
        a[PSegment(s.start, s.end), i] = s.speaker
    return a


@pytest.mark.parametrize("collar, skip_overlap, with_uem", [(0.0, False, False), (0.5, False, False),
                                                            (0.25, True, False), (0.0, False, True)])
def test_der_and_jer_equal_pyannote(collar, skip_overlap, with_uem):
    metrics = pytest.importorskip("pyannote.metrics.diarization")
    from pyannote.core import Segment as PSegment
    from pyannote.core import Timeline

    der_metric = metrics.DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    jer_metric = metrics.JaccardErrorRate(collar=collar, skip_overlap=skip_overlap)
    refs, hyps, uems = [], [], {}
    for ref, hyp in cases():
        for session in sorted({s.session for s in ref}):
            r, h = _annotation(ref, session), _annotation(hyp, session)
            uem = None
            if with_uem:
                uems[session] = [(1.0, 6.0), (8.0, 30.0)]
                uem = Timeline([PSegment(a, b) for a, b in uems[session]], uri=session)
            der_metric(r, h, uem=uem)
            jer_metric(r, h, uem=uem)
        refs += ref
        hyps += hyp
    ours = diarization_errors(refs, hyps, collar=collar, skip_overlap=skip_overlap, uem=uems or None)
    assert ours.der == pytest.approx(abs(der_metric), abs=1e-9)
    total = sum(der_metric.accumulated_[k] for k in ("total",))
    assert ours.total == pytest.approx(total, abs=1e-6)
    assert ours.jer == pytest.approx(abs(jer_metric), abs=1e-9)


def test_self_overlapping_speaker_is_merged_where_pyannote_counts_twice():
    """SELF_OVERLAP: a reference speaker with two overlapping segments speaks once (voxproof, like NIST
    md-eval and dscore); pyannote.metrics counts each segment, so its total is larger."""
    metrics = pytest.importorskip("pyannote.metrics.diarization")
    ref = [Segment("s", "A", 0.0, 4.0), Segment("s", "A", 2.0, 6.0)]
    hyp = [Segment("s", "x", 0.0, 6.0)]
    ours = diarization_errors(ref, hyp)
    assert (ours.total, ours.der) == (6.0, 0.0)
    theirs = metrics.DiarizationErrorRate()(_annotation(ref, "s"), _annotation(hyp, "s"), detailed=True)
    assert theirs["total"] == pytest.approx(8.0) and theirs["missed detection"] == pytest.approx(2.0)


def test_formats_round_trip(tmp_path):
    ref, _ = next(cases())
    for write, read, suffix in ((write_stm, read_stm, "stm"), (write_rttm, read_rttm, "rttm"),
                                (write_seglst, read_seglst, "json")):
        p = tmp_path / f"x.{suffix}"
        p.write_text(write(ref), encoding="utf-8")
        back = read_segments(p)
        assert [(s.session, s.speaker, round(s.start, 3), round(s.end, 3)) for s in back] == \
            [(s.session, s.speaker, round(s.start, 3), round(s.end, 3)) for s in ref]
        if suffix != "rttm":
            assert [s.words for s in back] == [s.words for s in ref]
    p = tmp_path / "x.ctm"
    p.write_text(write_ctm(ref), encoding="utf-8")
    assert " ".join(s.words for s in read_ctm(p)) == " ".join(w for s in ref for w in s.words.split())
    u = tmp_path / "x.uem"
    u.write_text(write_uem({"a": [(0.0, 1.5)], "b": [(2.0, 3.0)]}), encoding="utf-8")
    assert read_uem(u) == {"a": [(0.0, 1.5)], "b": [(2.0, 3.0)]}


@pytest.mark.parametrize("text, suffix, message", [
    ("s 1 A 0 nan hello\n", "stm", "finite"), ("s 1 A 5 4 hello\n", "stm", "before it starts"),
    ("SPEAKER ../x 1 0 1 <NA> <NA> A <NA> <NA>\n", "rttm", "'/'"), ("[{\"session_id\": 1}]", "json", "needs"),
    ("{", "json", "not JSON"), ("s A 0 inf w\n", "ctm", "finite"), ("s 1 0 1e12 w\n", "ctm", "finite"),
])
def test_hostile_segment_files_are_refused(tmp_path, text, suffix, message):
    p = tmp_path / f"bad.{suffix}"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        read_segments(p)
    with pytest.raises(UsageError, match="not a regular file"):
        read_segments("/dev/zero", "rttm")


def test_speaker_score_cli_on_two_real_speakers(tmp_path, capsys):
    """Two bundled speakers with known turns (reference STM from the LibriSpeech transcripts and clip
    lengths); the hypothesis swaps the speakers of the last turn and drops a word."""
    d = bundled_dataset_path()
    info = {line.split("\t")[0]: line.split("\t") for line in (d / "utt_info.tsv").read_text().splitlines()[1:]}
    texts = dict(line.split("\t", 1) for line in (d / "transcripts.tsv").read_text().splitlines())
    turns = [("1998-15444-0008", 0.0), ("2033-164914-0007", 2.5), ("1998-15444-0009", 6.8)]
    ref = [Segment("mix", info[u][1], t, round(t + float(info[u][5]), 3), texts[u]) for u, t in turns]
    hyp = [Segment(s.session, {ref[0].speaker: "A", ref[1].speaker: "B"}[s.speaker] if k < 2 else "B",
                   s.start + 0.1, s.end, " ".join(s.words.split()[1:] if k == 0 else s.words.split()))
           for k, s in enumerate(ref)]
    (tmp_path / "ref.stm").write_text(write_stm(ref), encoding="utf-8")
    (tmp_path / "hyp.json").write_text(write_seglst(hyp), encoding="utf-8")
    assert main(["speaker-score", str(tmp_path / "ref.stm"), str(tmp_path / "hyp.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    import jiwer

    def dist(r, h):
        if not h:
            return len(r.split())
        o = jiwer.process_words(r, h)
        return o.substitutions + o.deletions + o.insertions

    r1 = f"{ref[0].words} {ref[2].words}"  # speaker of turns 1 and 3
    h_a, h_b = hyp[0].words, f"{hyp[1].words} {hyp[2].words}"
    expected = min(dist(r1, h_a) + dist(ref[1].words, h_b), dist(r1, h_b) + dist(ref[1].words, h_a))
    assert out["orcwer"]["errors"] <= out["cpwer"]["errors"] <= out["tcpwer"]["errors"]
    assert out["cpwer"]["errors"] == expected and out["cpwer"]["length"] == len((r1 + " " + ref[1].words).split())
    # optimal mapping: speaker 1998 -> B (co-occurrence 0.345 + 7.455 s) and 2033 -> A (0.445 s), 8.245 s in
    # all, beats 1998 -> A, 2033 -> B (2.845 + 4.36 s); so A on turn 1 and B on 2033's own turn are confusions
    assert out["diarization"]["confusion"] == pytest.approx((2.5 - 0.1) + (6.8 - 2.945))
    assert main(["speaker-score", str(tmp_path / "ref.stm"), "/dev/zero", "--hyp-format", "rttm"]) == 2
    for collar in ("nan", "inf", "-1", "1e308"):
        assert main(["speaker-score", str(tmp_path / "ref.stm"), str(tmp_path / "hyp.json"), "--collar", collar]) == 2


@pytest.mark.slow
def test_real_two_speaker_mixture_scored_like_meeteval():
    """Two bundled speakers mixed with known, overlapping turns; Whisper transcribes the mixture with word
    times; each word goes to the speaker whose turn holds its midpoint (an oracle diarization that errs in
    the overlap). cpWER, tcpWER and ORC-WER equal MeetEval's; DER and JER equal pyannote's."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeteval")
    metrics = pytest.importorskip("pyannote.metrics.diarization")
    import numpy as np
    from meeteval.io import SegLST
    from meeteval.wer.wer.cp import cp_word_error_rate_multifile
    from meeteval.wer.wer.orc import orc_word_error_rate_multifile
    from meeteval.wer.wer.time_constrained import tcp_word_error_rate_multifile

    from voxproof.audio.io import Audio, load_audio
    from voxproof.backends.registry import load_backend
    from voxproof.metrics.normalize import get_normalizer

    d = bundled_dataset_path()
    texts = dict(line.split("\t", 1) for line in (d / "transcripts.tsv").read_text().splitlines())
    turns = [("1998-15444-0008", "1998", 0.0), ("2033-164914-0007", "2033", 2.4), ("1998-15444-0002", "1998", 6.3)]
    clips = [load_audio(d / "audio" / f"{u}.flac", sample_rate=16000) for u, _, _ in turns]
    total = max(int(t * 16000) + len(c.samples) for (_, _, t), c in zip(turns, clips))
    mix = np.zeros(total, dtype=np.float32)
    norm = get_normalizer("whisper-en")
    ref = []
    for (u, spk, t), c in zip(turns, clips):
        mix[int(t * 16000):int(t * 16000) + len(c.samples)] += c.samples
        ref.append(Segment("mix", spk, t, t + c.duration, norm(texts[u])))
    words = load_backend("whisper", kind="asr", pairs=["cpu_threads=1"]).transcribe(Audio(mix * 0.7, 16000)).words
    assert words and all(w.start is not None for w in words)
    hyp = []
    for w in words:
        mid = (w.start + w.end) / 2
        owner = next((s.speaker for s in reversed(ref) if s.start <= mid <= s.end), ref[-1].speaker)
        text = norm(w.text)
        if text:
            hyp.append(Segment("mix", "h" + owner, w.start, max(w.end, w.start), text))
    seg = lambda ss: SegLST(to_seglst(ss))
    for ours, fn, kw in ((cp_wer(ref, hyp), cp_word_error_rate_multifile, {}),
                         (tcp_wer(ref, hyp, collar=5.0), tcp_word_error_rate_multifile, {"collar": 5.0}),
                         (orc_wer(ref, hyp), orc_word_error_rate_multifile, {})):
        theirs = fn(seg(ref), seg(hyp), **kw)["mix"]
        assert (ours.errors, ours.length) == (theirs.errors, theirs.length), fn.__name__
    assert cp_wer(ref, hyp).error_rate < 0.6  # real recognition, not noise
    hyp_turns = no_self_overlap([Segment("mix", s.speaker, s.start, s.end) for s in hyp])
    ours = diarization_errors(ref, hyp_turns, collar=0.25)
    r, h = _annotation(ref, "mix"), _annotation(hyp_turns, "mix")
    assert ours.der == pytest.approx(metrics.DiarizationErrorRate(collar=0.25)(r, h), abs=1e-9)
    assert ours.jer == pytest.approx(metrics.JaccardErrorRate(collar=0.25)(r, h), abs=1e-9)
