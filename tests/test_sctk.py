"""``--tests sctk`` reproduces NIST sc_stats, and ``voxproof export`` writes files sclite reads.

Parity is checked against the real tools (Debian's ``sctk`` package, installed in CI): synthetic
transcripts with 30 speakers (sc_stats' buggy binomial range) and real runs (Whisper greedy vs beam 5,
Whisper vs PocketSphinx) go through sclite and sc_stats, and the statistics must be equal.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sctk_helpers import SCTK, ScStats, run_sc_stats, sclite_sgml, table_p

from voxproof.metrics.align import count_edits
from voxproof.metrics.sctk import (
    SctkUtterance,
    SpeakerWer,
    error_regions,
    path_counts,
    sclite_align,
    sctk_tests,
    sign_test_speakers,
    wilcoxon_speakers,
)
from voxproof.run.export import trn_id

needs_sctk = pytest.mark.skipif(SCTK is None, reason="NIST SCTK not installed (apt-get install sctk)")


# ------------------------------------------------------------------------------------------------
# Definitions on hand-checked examples
# ------------------------------------------------------------------------------------------------
def test_sclite_alignment_prefers_insertion_and_deletion_to_two_substitutions():
    assert sclite_align(["a", "b"], ["b", "c"]) == [("D", "a", None), ("C", "b", "b"), ("I", None, "c")]
    assert count_edits(["a", "b"], ["b", "c"]).substitutions == 2  # voxproof's default: two substitutions


def test_sclite_alignment_can_count_one_error_more_than_levenshtein():
    ref, hyp = ["d", "b", "b", "c", "a", "a"], ["a", "a", "d", "c"]
    path = sclite_align(ref, hyp)
    assert path_counts(path) == (6, 6)  # 4 deletions + 2 insertions cost 18 < 5 edits with substitutions
    assert count_edits(ref, hyp).errors == 5


def test_error_regions_are_bounded_by_two_words_both_systems_got_right():
    ref = ["a", "b", "c", "d", "e", "f", "g"]
    a = [e for e, _r, _h in sclite_align(ref, ["a", "x", "c", "d", "e", "f", "g"])]
    b = [e for e, _r, _h in sclite_align(ref, ["a", "b", "c", "d", "y", "f", "g"])]
    regions = error_regions(a, b)
    # first region: words 0-3 (A's error at b, closed by c d); second: words 2-6 (B's error at e)
    assert [(r.ref_words, r.errors_a, r.errors_b) for r in regions] == [(4, 1, 0), (5, 0, 1)]


def test_error_regions_insertion_opens_a_region_and_trailing_insertions_close_one():
    ref = ["a", "b", "c", "d"]
    a = [e for e, _r, _h in sclite_align(ref, ["a", "b", "c", "d"])]
    b = [e for e, _r, _h in sclite_align(ref, ["a", "b", "c", "d", "z"])]
    regions = error_regions(a, b)
    assert [(r.errors_a, r.errors_b) for r in regions] == [(0, 1)]
    assert error_regions(a, a) == []


def test_speaker_tests_on_the_greedy_vs_beam_speaker_table():
    # the five speakers' %WER sc_stats printed for Whisper greedy vs beam 5 on the bundled data
    blocks = [SpeakerWer("1688", 5.65, 5.08), SpeakerWer("1998", 17.59, 13.57), SpeakerWer("2033", 18.54, 20.22),
              SpeakerWer("3080", 9.06, 9.06), SpeakerWer("367", 13.91, 13.91)]
    sign = sign_test_speakers(blocks)
    assert (sign.details["n_plus"], sign.details["n_minus"], sign.details["ties"]) == (3, 2, 2)
    assert sign.p_value == 1.0
    wil = wilcoxon_speakers(blocks)
    assert wil.details["rank_sum_plus"] == 9.5 and wil.details["rank_sum_minus"] == 5.5 and wil.details["w"] == 5.5
    assert wil.statistic == pytest.approx(-0.5394, abs=1e-4)


def test_sign_test_over_20_blocks_is_exact_and_names_the_upstream_bug():
    blocks = ([SpeakerWer(f"b{i}", 10.0, 8.0) for i in range(8)] + [SpeakerWer(f"w{i}", 8.0, 10.0) for i in range(5)]
              + [SpeakerWer(f"t{i}", 9.0, 9.0) for i in range(37)])
    sign = sign_test_speakers(blocks)
    assert sign.n == 50 and (sign.details["n_plus"], sign.details["n_minus"]) == (26, 24)
    exact = 2 * sum(math.comb(50, k) for k in range(25)) / 2**50  # 2 P(X <= 24), X ~ Bin(50, 1/2)
    assert sign.p_value == pytest.approx(min(1.0, exact), rel=1e-12)
    assert sign.p_value > 0.8
    assert "PR 46" in sign.details["sc_stats_binomial_bug"]
    small = sign_test_speakers(blocks[:20])
    assert "sc_stats_binomial_bug" not in small.details


def test_tests_without_material_say_why():
    mp, sign, wil = sctk_tests([SctkUtterance("s", ("a",), ("a",), ("a",))])
    assert mp.statistic is None and "two or more" in mp.details["reason"]
    assert sign.p_value == 1.0 and wil.n == 1


# ------------------------------------------------------------------------------------------------
# Against the real sclite and sc_stats
# ------------------------------------------------------------------------------------------------
def assert_same_statistics(ours, theirs: ScStats, *, exact_sign: bool) -> None:
    mp, sign, wil = ours
    assert mp.n == theirs.segments
    assert (mp.details["ref_words"], mp.details["errors_a"], mp.details["errors_b"]) == theirs.totals
    assert round(mp.details["mean_difference"], 3) == pytest.approx(theirs.mean, abs=1e-9)
    assert round(mp.details["sd"], 3) == pytest.approx(theirs.sd, abs=1e-9)
    assert round(mp.statistic, 3) == pytest.approx(theirs.z_mapsswe, abs=1e-9)
    worse_a = sign.details["worse_first"] == "A"
    plus, minus = (sign.details["b_better"], sign.details["a_better"])
    if not worse_a:
        plus, minus = minus, plus
    assert (plus, minus, sign.details["ties"]) == (theirs.sign_plus, theirs.sign_minus, theirs.sign_zero)
    assert (wil.details["n_plus"], wil.details["rank_sum_plus"]) == theirs.wilc_plus
    assert (wil.details["n_minus"], wil.details["rank_sum_minus"]) == theirs.wilc_minus
    assert round(wil.statistic, 2) == pytest.approx(theirs.wilc_z, abs=1e-9)
    # p-values: sc_stats reads normal tails from a table (lower entry at steps of 0.01 in z); ours are exact
    for test, key in ((mp, "MP"), (wil, "WI")):
        printed = theirs.p_unified[key]
        expected = table_p(test.statistic)
        if printed is None:  # sc_stats prints "<0.001"
            assert expected < 0.001 and test.p_value < 0.001
            continue
        assert printed == pytest.approx(round(expected, 3), abs=1.1e-3)
        assert abs(test.p_value - printed) < 0.01
    if exact_sign:
        assert theirs.sign_p == pytest.approx(round(sign.p_value, 3), abs=1e-9)
        assert theirs.p_unified["SI"] == pytest.approx(round(sign.p_value, 3), abs=1e-9)


def _synthetic(seed: int, speakers: int) -> list[SctkUtterance]:
    rnd = random.Random(seed)
    vocab = ["the", "a", "of", "to", "and", "in", "is", "it", "that", "was", "he", "for", "on", "are", "with", "as", "his", "they", "be", "at", "one", "have", "this"]
    utts = []
    for s in range(speakers):
        for u in range(2):
            ref = [rnd.choice(vocab) for _ in range(rnd.randint(3, 14))]

            def noisy(rate: float, ref: list[str] = ref) -> list[str]:
                out = []
                for w in ref:
                    r = rnd.random()
                    if r < rate / 3:
                        continue  # deletion
                    out.append(rnd.choice(vocab) if r < 2 * rate / 3 else w)
                    if rnd.random() < rate / 4:
                        out.append(rnd.choice(vocab))
                return out

            utts.append(SctkUtterance(f"spk{s}", tuple(ref), tuple(noisy(0.25)), tuple(noisy(0.2))))
    utts.append(SctkUtterance("spkx", ("d", "b", "b", "c", "a", "a"), ("a", "a", "d", "c"), ("d", "b", "c", "a")))
    utts.append(SctkUtterance("spkx", ("The", "cat", "sat"), ("the", "Cat", "sat"), ("THE", "cat", "mat")))
    return utts


def _sclite_view(utts: list[SctkUtterance]) -> list[SctkUtterance]:
    """The utterances as sclite compares them (case folded); the files keep the case."""
    from voxproof.metrics.sctk import sclite_case

    return [SctkUtterance(u.speaker, *(tuple(sclite_case(t) for t in side) for side in (u.ref, u.hyp_a, u.hyp_b)))
            for u in utts]


def _write_trn(utts: list[SctkUtterance], out: Path) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"ref": [], "a": [], "b": []}
    for k, u in enumerate(utts):
        ident = trn_id(f"{u.speaker}-u{k}", u.speaker)
        for side, words in (("ref", u.ref), ("a", u.hyp_a), ("b", u.hyp_b)):
            lines[side].append(f"{' '.join(words)} ({ident})\n")
    paths = tuple(out / f"{side}.trn" for side in ("ref", "a", "b"))
    for side, path in zip(("ref", "a", "b"), paths):
        path.write_text("".join(lines[side]))
    return paths  # type: ignore[return-value]


@needs_sctk
def test_synthetic_30_speakers_equal_sc_stats_and_its_binomial_bug_is_not_copied(tmp_path):
    utts = _synthetic(7, 30)
    ref, a, b = _write_trn(utts, tmp_path)
    theirs = run_sc_stats(sclite_sgml(ref, a, tmp_path / "a", "sysa"), sclite_sgml(ref, b, tmp_path / "b", "sysb"),
                          tmp_path / "stats")
    ours = sctk_tests(_sclite_view(utts))
    assert_same_statistics(ours, theirs, exact_sign=False)
    sign = ours[1]
    assert sign.n == 31 and "sc_stats_binomial_bug" in sign.details
    # sc_stats' halved-count approximation prints a different p from the exact binomial here
    assert theirs.p_unified["SI"] is None or abs(theirs.p_unified["SI"] - sign.p_value) > 0.01


@needs_sctk
def test_sclite_alignments_equal_ours_on_synthetic_transcripts(tmp_path):
    utts = _synthetic(3, 12)
    ref, a, _ = _write_trn(utts, tmp_path)
    sgml = sclite_sgml(ref, a, tmp_path / "a", "sysa").read_text()
    paths = re.findall(r'<PATH id="\(([^)]*)\)"[^>]*>\n(.*?)\n</PATH>', sgml, re.DOTALL)
    assert len(paths) == len(utts)
    by_id = {trn_id(f"{u.speaker}-u{k}", u.speaker): u for k, u in enumerate(_sclite_view(utts))}
    for ident, body in paths:
        theirs = [tuple(x.strip('"') or None for x in item.split(",")) for item in body.split(":")] if body else []
        assert [tuple(p) for p in sclite_align(by_id[ident].ref, by_id[ident].hyp_a)] == theirs, ident


# ------------------------------------------------------------------------------------------------
# voxproof export and hostile ids
# ------------------------------------------------------------------------------------------------
def _fake_run(path: Path, rows: list[tuple[str, str | None, str, str | None]]) -> Path:
    from voxproof.run.records import ResultRow
    from voxproof.run.store import RunStore

    with RunStore.create(path, {"normalizer": {"name": "whisper-en"}, "dataset_hash": "x"}) as store:
        for k, (utt, spk, ref, hyp) in enumerate(rows):
            status = "ok" if hyp is not None else "error"
            store.add_row(ResultRow(utt, "clean", status, reference=ref, hypothesis=hyp, speaker=spk,
                                    audio_duration=2.0, error_type=None if hyp is not None else "BackendError"), k)
        store.set_meta("status", "complete")
    return path


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxproof", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ}, check=False)


def test_export_cleans_ids_sclite_cannot_read_and_counts_error_rows(tmp_path):
    run = _fake_run(tmp_path / "run", [
        ("a (b) c", "spk-1", "Hello there.", "hello their"),
        ("../x\ty", None, "Two words", "two words"),
        ("broken", "s2", "never decoded", None),
    ])
    res = _cli("export", str(run), "--format", "trn", "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert "1 error rows left out" in res.stdout
    hyp = (tmp_path / "out" / "hyp.trn").read_text().splitlines()
    assert hyp == ["hello their (spk_1-a__b__c)", "2 words (../x_y-../x_y)"]  # whisper-en: two -> 2
    assert (tmp_path / "out" / "ref.trn").read_text().splitlines()[0] == "hello there (spk_1-a__b__c)"


def test_export_ctm_spreads_words_without_times_and_writes_a_matching_stm(tmp_path):
    run = _fake_run(tmp_path / "run", [("u1", "s1", "red green blue sky", "Red, green blue sky.")])
    res = _cli("export", str(run), "--format", "ctm", "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    ctm = (tmp_path / "out" / "hyp.ctm").read_text().splitlines()
    assert ctm == ["s1-u1 1 0.000 0.500 red", "s1-u1 1 0.500 0.500 green", "s1-u1 1 1.000 0.500 blue",
                   "s1-u1 1 1.500 0.500 sky"]
    assert "1 utterances had no word times" in res.stdout
    assert (tmp_path / "out" / "ref.stm").read_text() == "s1-u1 1 s1 0.000 2.000 red green blue sky\n"


def test_export_refuses_bad_input_with_one_line(tmp_path):
    res = _cli("export", str(tmp_path / "nope"), "--format", "trn")
    assert res.returncode == 2 and "not exist" in res.stderr and "Traceback" not in res.stderr
    run = _fake_run(tmp_path / "run", [("u1", "s1", "a b", "a b")])
    res = _cli("export", str(run), "--format", "trn", "--condition", "noise")
    assert res.returncode == 2 and "no condition 'noise'" in res.stderr
    res = _cli("export", str(run), "--format", "wav")
    assert res.returncode == 2
    other = _fake_run(tmp_path / "other", [("u1", "s1", "a b", "a c")])
    res = _cli("compare", str(run), str(other), "--tests", "sctk", "--alternates", "default")
    assert res.returncode == 2 and "alternates" in res.stderr
    res = _cli("gate", "--baseline", str(run), "--candidate", str(run), "--tests", "nist")
    assert res.returncode == 2 and "Traceback" not in res.stderr


# ------------------------------------------------------------------------------------------------
# Real runs: voxproof export -> sclite -> sc_stats, against voxproof compare --tests sctk
# ------------------------------------------------------------------------------------------------
REAL_SAMPLE = "5"  # one utterance of each of the bundled data's 5 speakers (seeded); the 50 are in docs/SCTK.md


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """Whisper greedy, Whisper beam 5 and PocketSphinx on a stratified sample of the bundled data,
    made once per module (reused from ``VOXPROOF_TEST_RUN_CACHE`` when set)."""
    cache = Path(os.environ.get("VOXPROOF_TEST_RUN_CACHE") or tmp_path_factory.mktemp("sctk-runs"))
    runs = {"greedy": ["-m", "whisper"], "beam5": ["-m", "whisper", "-O", "beam_size=5"], "sphinx": ["-m", "sphinx"]}
    out = {}
    for name, model in runs.items():
        run = cache / f"sctk-{name}-{REAL_SAMPLE}"
        summary = run / "summary.json"
        if not summary.is_file():
            res = _cli("eval", *model, "--sample", REAL_SAMPLE, "--features", "none", "-o", str(run),
                       *(["--resume"] if run.exists() else []), timeout=1800)  # a guard against hangs
            assert res.returncode == 0, res.stderr[-2000:]
        out[name] = run
    return out


@needs_sctk
@pytest.mark.slow
@pytest.mark.parametrize("pair", [("greedy", "beam5"), ("greedy", "sphinx")])
def test_real_runs_equal_sc_stats(real_runs, tmp_path, pair):
    from voxproof.run.export import export_run

    sgml = []
    for name in pair:
        export_run(real_runs[name], tmp_path / name, "trn")
        sgml.append(sclite_sgml(tmp_path / name / "ref.trn", tmp_path / name / "hyp.trn", tmp_path / name, name))
        # voxproof's own SGML aligns every utterance as sclite did
        export_run(real_runs[name], tmp_path / f"{name}-sgml", "sgml")
        ours_paths = re.findall(r"<PATH[^>]*>\n(.*?)\n</PATH>", (tmp_path / f"{name}-sgml" / "hyp.sgml").read_text())
        theirs_paths = re.findall(r"<PATH[^>]*>\n(.*?)\n</PATH>", sgml[-1].read_text())
        assert sorted(ours_paths) == sorted(theirs_paths)
    theirs = run_sc_stats(sgml[0], sgml[1], tmp_path / "stats")
    res = _cli("compare", str(real_runs[pair[0]]), str(real_runs[pair[1]]), "--tests", "sctk",
               "--json", str(tmp_path / "cmp.json"), "--resamples", "200")
    assert res.returncode == 0, res.stderr
    assert "NIST sc_stats definitions" in res.stdout
    tests = json.loads((tmp_path / "cmp.json").read_text())["comparisons"][0]["tests"]
    from voxproof.metrics.paired import TestResult

    ours = tuple(TestResult(t["name"], t["statistic"], t["p_value"] if t["p_value"] is not None else float("nan"),
                            t["method"], t["n"], t["details"], t["definition"]) for t in tests)
    assert [t.name for t in ours] == ["mapsswe", "sign", "wilcoxon"]
    assert all(t.definition == "sc_stats" for t in ours)
    assert_same_statistics(ours, theirs, exact_sign=True)  # 5 speakers: sc_stats' binomial is exact


@pytest.mark.slow
def test_gate_records_sctk_tests_with_its_wer_rules(real_runs, tmp_path):
    res = _cli("gate", "--baseline", str(real_runs["greedy"]), "--candidate", str(real_runs["beam5"]), "--tests", "sctk",
               "-o", str(tmp_path / "gate"))
    assert res.returncode in (0, 1), res.stderr
    verdict = json.loads((tmp_path / "gate" / "gate.json").read_text())
    assert verdict["policy"]["tests"] == "sctk"
    overall = next(r for r in verdict["rules"] if r["rule"] == "wer.overall")
    tests = overall["extra"]["tests"]
    assert sorted(tests) == ["mapsswe", "sign", "wilcoxon"]
    assert {t["definition"] for t in tests.values()} == {"sc_stats"}


def test_export_to_a_path_that_is_not_a_directory_is_a_usage_error(tmp_path):
    run = _fake_run(tmp_path / "run", [("u1", "s1", "a b", "a b")])
    res = _cli("export", str(run), "--format", "sgml", "-o", "/dev/null")
    assert res.returncode == 2 and "cannot write the export to /dev/null" in res.stderr and "Traceback" not in res.stderr
    res = _cli("export", str(run), "--format", "sgml", "-o", str(run / "run.sqlite"))
    assert res.returncode == 2 and "is a file" in res.stderr and "Traceback" not in res.stderr
