"""Gate rules and the ``voxproof gate`` exit codes on run stores built in tmp_path.

The rows carry the real LibriSpeech test-other references and speakers from ../shared/data; the
hypotheses are those references with words deleted in chosen utterances, so every expected WER change
is computed here from the edits made (the real-model planted regression is in test_gate_real.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from voxproof.backends.base import Transcript, Word
from voxproof.cli.main import main
from voxproof.errors import NotComparable, RunError
from voxproof.gate import evaluate_gate, parse_policy
from voxproof.run.provenance import build_provenance
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore

NORM = {"name": "whisper-en", "version": "1"}


@pytest.fixture(scope="module")
def utterances(shared_data):
    return read_utterances(shared_data / "librispeech-test-other-mini")


def read_utterances(d: Path) -> list[tuple[str, str, str, str, float]]:
    """(id, reference, speaker, gender, seconds) of a LibriSpeech sample folder (transcripts.tsv, utt_info.tsv)."""
    info = {r["id"]: r for r in csv.DictReader((d / "utt_info.tsv").read_text().splitlines(), delimiter="\t")}
    out = []
    for line in (d / "transcripts.tsv").read_text().splitlines():
        uid, text = line.rstrip("\n").split("\t", 1)
        out.append((uid, text, info[uid]["speaker"], info[uid]["gender"], float(info[uid]["duration_s"])))
    return out


def normalised(text: str) -> str:
    from voxproof.metrics.normalize import get_normalizer

    return get_normalizer("whisper-en")(text)


def drop_words(text: str, n: int) -> str:
    """The normalised text without its first ``n`` tokens: exactly ``n`` deletions when scored."""
    return " ".join(normalised(text).split()[n:])


def make_run(path: Path, utts, hyp=lambda u, cond: drop_words(u[1], 0), *, options=None, dataset_hash="ds1", normalizer=NORM,
             conditions=("clean",), timed=True, errors=(), speed=0.1, kind="asr", conf=0.9) -> Path:
    prov = build_provenance(
        backend={"name": "whisper", "kind": kind, "model": "tiny.en", "model_checksum": "sha256:abc",
                 "options": options or {"beam_size": 1}},
        dataset={"hash": dataset_hash, "utterances": len(utts)}, normalizer=normalizer, seed=0,
        run_options={"workers": 1}, conditions=[{"name": c, "chain": []} for c in conditions],
    )
    with RunStore.create(path, prov) as store:
        store.set_conditions([(c, {"name": c, "chain": [] if c == "clean" else [{"kind": c}]}) for c in conditions])
        for cond in conditions:
            for i, u in enumerate(utts):
                uid, ref, spk, gender, dur = u
                if (uid, cond) in errors:
                    row = ResultRow(uid, cond, "error", reference=ref, error_type="CorruptAudio",
                                    error_message="bad header", speaker=spk, tags={"gender": gender})
                else:
                    text = hyp(u, cond)
                    words = tuple(Word(w, None, None, conf) for w in text.split())
                    row = ResultRow(uid, cond, "ok", reference=ref, hypothesis=text,
                                    transcript=Transcript(text, words, conf), audio_duration=dur,
                                    processing_time=dur * speed if timed else None, speaker=spk,
                                    tags={"gender": gender})
                store.add_row(row, i)
        store.set_meta("status", "complete")
        store.set_meta("resources", {"wall_seconds": 10.0, "workers": 1})
    return path


POINT = """
[decision]
method = "point"
resamples = 500
[wer.overall]
max_increase = 0.01
[wer.slices]
by = ["speaker", "gender"]
max_increase = 0.05
min_utterances = 5
[wer.conditions]
max_increase = 0.05
"""


def words(u) -> int:
    return len(normalised(u[1]).split())


def errors(utts, hyp) -> int:
    """Word errors of ``hyp(u)`` against each reference, summed (the aligner's counts)."""
    from voxproof.metrics.align import word_counts

    return sum(word_counts(normalised(u[1]), normalised(hyp(u))).errors for u in utts)


def test_identical_candidate_passes_and_writes_verdict(tmp_path, utterances):
    base = make_run(tmp_path / "base", utterances, lambda u, c: drop_words(u[1], 1))
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 1), options={"beam_size": 5})
    out = tmp_path / "gate"
    code = main(["gate", "--baseline", str(base), "--candidate", str(cand), "-o", str(out)])
    assert code == 0
    data = json.loads((out / "gate.json").read_text())
    assert data["passed"] is True and data["failing_rules"] == []
    overall = next(r for r in data["rules"] if r["rule"] == "wer.overall")
    expected = errors(utterances, lambda u: drop_words(u[1], 1)) / sum(words(u) for u in utterances)
    assert overall["baseline"] == pytest.approx(expected) and overall["candidate"] == pytest.approx(expected)
    assert overall["estimate"] == 0.0 and overall["interval"] == [0.0, 0.0]
    html = (out / "gate.html").read_text()
    assert "PASSED" in html and "<script" not in html and "wer.slice[speaker=367]" in html
    # TTS floors do not apply to recognisers: reported as such, never counted as passes
    tts = [r for r in data["rules"] if r["group"] == "tts"]
    assert {r["verdict"] for r in tts} == {"not_applicable"} and len(tts) == 2


def test_slice_regression_is_caught_and_named(tmp_path, utterances, capsys):
    # candidate: better than the baseline on four speakers, 4 words lost per utterance of speaker 2033
    base = make_run(tmp_path / "base", utterances, lambda u, c: drop_words(u[1], 0 if u[2] == "2033" else 1))
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 4 if u[2] == "2033" else 0))
    policy = tmp_path / "p.toml"
    policy.write_text(POINT)
    code = main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(policy),
                 "-o", str(tmp_path / "g")])
    out = capsys.readouterr().out
    assert code == 1
    assert "failed: wer.slice[speaker=2033]" in out and "GATE FAILED" in out
    data = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert data["failing_rules"] == ["wer.slice[speaker=2033]", "wer.slice[gender=M]"]
    rules = {r["rule"]: r for r in data["rules"]}
    total = sum(words(u) for u in utterances)
    n2033 = sum(1 for u in utterances if u[2] == "2033")
    others = len(utterances) - n2033
    assert rules["wer.overall"]["verdict"] == "pass"
    base_err = errors(utterances, lambda u: drop_words(u[1], 0 if u[2] == "2033" else 1))
    cand_err = errors(utterances, lambda u: drop_words(u[1], 4 if u[2] == "2033" else 0))
    assert cand_err - base_err == 4 * n2033 - others
    assert rules["wer.overall"]["estimate"] == pytest.approx((cand_err - base_err) / total)
    slice_words = sum(words(u) for u in utterances if u[2] == "2033")
    assert rules["wer.slice[speaker=2033]"]["estimate"] == pytest.approx(4 * n2033 / slice_words)
    assert rules["wer.slice[speaker=367]"]["verdict"] == "pass"


def test_interval_decision_is_stricter_than_the_point_estimate(tmp_path, utterances):
    # three deletions in each of three utterances of one speaker: +0.85 pts, under the 1-pt margin as
    # a point, but 50 utterances of 5 speakers cannot show the upper bound is under 1 pt
    hit = {u[0] for u in utterances if u[2] == "1688"}
    hit = set(sorted(hit)[:3])
    base = make_run(tmp_path / "base", utterances)
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 3 if u[0] in hit else 0))
    point = evaluate_gate(base, cand, parse_policy(POINT))
    interval = evaluate_gate(base, cand, parse_policy(POINT.replace('"point"', '"interval"')))
    p = next(r for r in point.rules if r.rule == "wer.overall")
    i = next(r for r in interval.rules if r.rule == "wer.overall")
    assert p.estimate == i.estimate and 0 < p.estimate < 0.01
    assert p.verdict == "pass" and p.value == p.estimate
    assert i.interval[0] <= i.estimate <= i.interval[1]
    assert i.value == i.interval[1]
    assert (i.verdict == "fail") == (i.interval[1] > 0.01)
    assert i.verdict == "fail", f"upper bound {i.interval[1]} should exceed 1 pt on 50 utterances"


def test_relative_margin_and_small_slices(tmp_path, utterances):
    base = make_run(tmp_path / "base", utterances, lambda u, c: drop_words(u[1], 2))
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 2))
    text = POINT.replace("max_increase = 0.01", "max_increase = 0.1\nmargin = \"relative\"").replace(
        "min_utterances = 5", "min_utterances = 11")
    v = evaluate_gate(base, cand, parse_policy(text))
    overall = next(r for r in v.rules if r.rule == "wer.overall")
    assert overall.limit == pytest.approx(0.1 * overall.baseline)
    spk = [r for r in v.rules if r.rule.startswith("wer.slice[speaker=")]
    assert len(spk) == 5 and {r.verdict for r in spk} == {"insufficient"} and not any(r.failing for r in spk)
    gender = [r for r in v.rules if r.rule.startswith("wer.slice[gender=")]
    assert {r.verdict for r in gender} == {"pass"}
    assert v.passed


def test_condition_regression(tmp_path, utterances):
    conds = ("clean", "noise")
    base = make_run(tmp_path / "base", utterances, conditions=conds)
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 3 if c == "noise" else 0),
                    conditions=conds)
    v = evaluate_gate(base, cand, parse_policy(POINT))
    assert [r.rule for r in v.failing()] == ["wer.condition[noise]"]
    overall = next(r for r in v.rules if r.rule == "wer.overall")
    assert overall.estimate == 0.0  # overall is the clean condition


def test_coverage_and_missing_evidence(tmp_path, utterances):
    errors = {(u[0], "clean") for u in utterances[:3]}
    base = make_run(tmp_path / "base", utterances)
    cand = make_run(tmp_path / "cand", utterances, errors=errors, timed=False)
    text = "[coverage]\nmin = 0.98\n[latency]\nmax_p90_seconds = 5\n"
    v = evaluate_gate(base, cand, parse_policy(text))
    rules = {r.rule: r for r in v.rules}
    assert rules["coverage"].verdict == "fail" and rules["coverage"].candidate == pytest.approx(47 / 50)
    assert "CorruptAudio: 3" in rules["coverage"].detail
    assert rules["latency.p90"].verdict == "no_data" and rules["latency.p90"].failing
    warn = evaluate_gate(base, cand, parse_policy('[decision]\nmissing_evidence = "warn"\n' + text))
    lat = next(r for r in warn.rules if r.rule == "latency.p90")
    assert lat.verdict == "no_data" and not lat.failing


def test_latency_rtf_and_cost_rules(tmp_path, utterances):
    base = make_run(tmp_path / "base", utterances, speed=0.1)
    cand = make_run(tmp_path / "cand", utterances, speed=0.5)
    text = "[latency]\nmax_rtf = 0.3\nmax_p90_seconds = 100\n[cost]\nprice_per_machine_hour = 0.36\nmax_per_audio_hour = 1\n"
    v = evaluate_gate(base, cand, parse_policy(text))
    rules = {r.rule: r for r in v.rules}
    assert rules["latency.rtf"].candidate == pytest.approx(0.5) and rules["latency.rtf"].verdict == "fail"
    assert rules["latency.rtf"].baseline == pytest.approx(0.1)
    assert rules["latency.p90"].verdict == "pass"
    audio = sum(u[4] for u in utterances)
    assert rules["cost.per_audio_hour"].candidate == pytest.approx(0.36 * 10.0 / audio)
    assert [r.rule for r in v.failing()] == ["latency.rtf"]


def test_not_comparable_runs_exit_2(tmp_path, utterances):
    base = make_run(tmp_path / "base", utterances)
    other_data = make_run(tmp_path / "other", utterances, dataset_hash="ds2")
    other_norm = make_run(tmp_path / "norm", utterances, normalizer={"name": "basic", "version": "1"})
    fewer = make_run(tmp_path / "fewer", utterances[:-1])
    with pytest.raises(NotComparable, match="different data"):
        evaluate_gate(base, other_data)
    for cand, phrase in ((other_data, "different data"), (other_norm, "different normalisers"),
                         (fewer, "different utterance sets")):
        assert main(["gate", "--baseline", str(base), "--candidate", str(cand), "-o", str(tmp_path / "g")]) == 2
    # the policy may re-score both runs with one normaliser
    v = evaluate_gate(base, other_norm, parse_policy('[decision]\nnormalizer = "basic"\n[wer.overall]\nmax_increase = 0'))
    assert v.passed and v.normalizer == "basic@1"


def test_unusable_input_exits_2(tmp_path, utterances, capsys):
    base = make_run(tmp_path / "base", utterances)
    assert main(["gate", "--baseline", str(base), "--candidate", str(tmp_path / "missing")]) == 2
    assert "UsageError: --candidate" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[wer.overall]\nmax_increase = 'a lot'\n")
    assert main(["gate", "--baseline", str(base), "--candidate", str(base), "--policy", str(bad)]) == 2
    assert "wer.overall.max_increase = 'a lot' must be a number" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base)]) == 2
    unfinished = make_run(tmp_path / "unfinished", utterances)
    with RunStore.open(unfinished) as store:
        store.set_meta("status", "running")
    assert main(["gate", "--baseline", str(base), "--candidate", str(unfinished)]) == 3  # could not evaluate
    assert "is running (50 rows so far)" in capsys.readouterr().err
    with pytest.raises(RunError):
        evaluate_gate(base, tmp_path / "missing")


def test_calibration_ceiling(tmp_path, utterances):
    # every hypothesis word is right: ECE = 1 - confidence (one bin)
    base = make_run(tmp_path / "base", utterances, conf=0.95)
    cand = make_run(tmp_path / "cand", utterances, conf=0.6)
    v = evaluate_gate(base, cand, parse_policy("[decision]\nmethod = \"point\"\n[calibration]\nmax_ece = 0.2\n"))
    ece = next(r for r in v.rules if r.rule == "calibration.ece")
    assert ece.candidate == pytest.approx(0.4, abs=1e-6) and ece.baseline == pytest.approx(0.05, abs=1e-6)
    assert ece.verdict == "fail" and "0.4 > ceiling 0.2" in ece.detail
    v = evaluate_gate(cand, base, parse_policy("[calibration]\nmax_ece = 0.2\n"))
    ece = next(r for r in v.rules if r.rule == "calibration.ece")
    assert ece.verdict == "pass" and ece.value == ece.interval[1]  # interval decision: upper bound


def test_bonferroni_widens_slice_intervals(tmp_path, utterances):
    base = make_run(tmp_path / "base", utterances)
    cand = make_run(tmp_path / "cand", utterances, lambda u, c: drop_words(u[1], 1 if u[0].endswith(("1", "2")) else 0))
    text = "[decision]\nresamples = 2000\n[wer.slices]\nby = [\"speaker\", \"gender\"]\nmax_increase = 0.05\n"
    plain = {r.rule: r for r in evaluate_gate(base, cand, parse_policy(text)).rules}
    adj = {r.rule: r for r in evaluate_gate(base, cand, parse_policy(text + 'adjust = "bonferroni"\n')).rules}
    assert set(plain) == set(adj) and len(plain) == 7
    for name, rule in plain.items():
        assert adj[name].estimate == rule.estimate
        assert adj[name].interval[1] >= rule.interval[1]
        assert adj[name].extra["interval"]["level"] == pytest.approx(1 - 0.05 / 7)
    assert "Bonferroni over 7 slices" in adj["wer.slice[speaker=367]"].detail


def test_slices_under_every_condition(tmp_path, utterances):
    # speaker 367 loses 3 words per utterance, but only under the "noise" condition
    conds = ("clean", "noise")
    base = make_run(tmp_path / "base", utterances, conditions=conds)
    cand = make_run(tmp_path / "cand", utterances, conditions=conds,
                    hyp=lambda u, c: drop_words(u[1], 3 if (c == "noise" and u[2] == "367") else 0))
    text = POINT.replace("[wer.conditions]\nmax_increase = 0.05", "[wer.conditions]\nmax_increase = 0.5")
    main_only = evaluate_gate(base, cand, parse_policy(text))
    assert main_only.passed  # the condition as a whole moves less than the (lax) condition margin
    every = evaluate_gate(base, cand, parse_policy(text.replace("min_utterances = 5", "min_utterances = 5\nconditions = \"all\"")))
    assert [r.rule for r in every.failing()] == ["wer.slice[speaker=367 @ noise]"]
    assert len([r for r in every.rules if r.group == "wer.slice"]) == 2 * len(main_only.rules_of("wer.slice"))
