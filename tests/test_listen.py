"""Listening tests end to end: a test made from real Piper and eSpeak NG runs (with real recordings as
hidden reference), answered by SIMULATED listeners (documented model in voxproof.listen.simulate) and
by one hand-written answer file, then scored; hostile answer files are refused with reasons."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from voxproof.cli.main import main
from voxproof.listen.answers import read_answers
from voxproof.listen.design import REFERENCE_SYSTEM, read_design
from voxproof.listen.score import _alpha, bradley_terry, score_listening
from voxproof.listen.simulate import simulate_listeners

PROMPTS = ("q-03", "abbr-01", "hom-01")
QUALITY = {"piper": 4.0, "espeak": 2.3, REFERENCE_SYSTEM: 4.6}  # true qualities of the simulation
HAND = os.path.join(os.path.dirname(__file__), "data", "listen", "hand-answers.json")


@pytest.fixture(scope="module")
def made(tmp_path_factory, short_floor_dir):
    """tts-eval of Piper and eSpeak on 3 prompts (PocketSphinx judge, no MOS: the test needs clips,
    not judgements) with 2 real recordings as floor, then 'voxproof listen make'."""
    from voxproof.backends import load_backend
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.tts.activity import SpeechDetector
    from voxproof.tts.evaluate import TtsEvalOptions, TtsScorer, floor_items
    from voxproof.tts.pipeline import run_tts_eval
    from voxproof.tts.prompts import load_prompts

    root = tmp_path_factory.mktemp("listen")
    by_id = {p.id: p for p in load_prompts()}
    scorer = TtsScorer(load_backend("sphinx", kind="asr"), get_normalizer("whisper-en"),
                       speech=SpeechDetector(method="energy"))
    floor = floor_items(short_floor_dir)
    run_tts_eval({"piper": lambda: load_backend("piper", kind="tts"),
                  "espeak": lambda: load_backend("espeak", kind="tts")},
                 [by_id[i] for i in PROMPTS], root / "tts", scorer, options=TtsEvalOptions(mos=False, n_resamples=100),
                 floor=floor, floor_source="short", html=False)
    assert main(["listen", "make", str(root / "tts"), "-o", str(root / "test")]) == 0
    return root


def test_page_is_self_contained_and_hides_the_systems(made):
    page = (made / "test" / "test.html").read_text()
    design = read_design(made / "test")
    assert page.count("data:audio/wav;base64,") >= 8  # 6 synthetic + 2 real clips (+ noisy check copies)
    assert "http://" not in page and "https://" not in page and "src=\"/" not in page
    for system in ("piper", "espeak", REFERENCE_SYSTEM):
        assert system not in page  # only opaque item ids reach the listener
    kinds = [i.kind for i in design.items]
    assert kinds.count("acr") == 3 * 2 + 2 and kinds.count("ab") == 3
    assert kinds.count("acr-check") == 2 and kinds.count("ab-check") == 2
    assert design.test_id in page and len(design.test_id) == 64


def test_same_runs_and_seed_make_the_same_test(made, tmp_path):
    assert main(["listen", "make", str(made / "tts"), "-o", str(tmp_path / "again")]) == 0
    assert read_design(tmp_path / "again").test_id == read_design(made / "test").test_id
    assert main(["listen", "make", str(made / "tts"), "--seed", "1", "-o", str(tmp_path / "other")]) == 0
    assert read_design(tmp_path / "other").test_id != read_design(made / "test").test_id


@pytest.fixture(scope="module")
def simulated(made):
    design = read_design(made / "test")
    files = simulate_listeners(design, QUALITY, 5, careless=1, seed=3)
    out = made / "sim"
    out.mkdir(exist_ok=True)
    paths = []
    for f in files:
        p = out / f"answers-{f['listener']}.json"
        p.write_text(json.dumps(f))
        paths.append(p)
    return design, paths


def test_simulated_listeners_recover_the_true_order(simulated):
    design, paths = simulated
    result = score_listening(design, read_answers(paths, design), n_resamples=300, seed=0)
    kept = {s.listener: s for s in result.screening}
    assert not kept["sim-careless-5"].kept and "straight-lining" in " ".join(kept["sim-careless-5"].reasons)
    assert sum(s.kept for s in result.screening) == 4
    mos = {m.system: m.mos for m in result.mos}
    assert mos[REFERENCE_SYSTEM].estimate > mos["piper"].estimate > mos["espeak"].estimate
    for m in mos.values():
        assert m.low <= m.estimate <= m.high
    # 3 clips per system: the two-way interval (listeners x clips) is wider than the t interval over
    # votes, which treats 12 votes on 3 clips as independent
    by = {m.system: m for m in result.mos}
    assert mos["espeak"].high - mos["espeak"].low > by["espeak"].t_interval[1] - by["espeak"].t_interval[0]
    pair = result.preference["pairs"][0]
    p = pair["p_a_preferred"]
    assert (pair["a"], pair["b"]) == ("espeak", "piper") and p["estimate"] < 0.5 and p["low"] <= p["estimate"] <= p["high"]
    assert result.agreement["acr_interval"].estimate > 0.3
    assert any("SIMULATED" in w for w in result.warnings)


def test_hand_made_answer_file_is_scored(made, tmp_path, capsys):
    """A hand-written answer file (tests/data/listen/hand-answers.json, written by the developer in the
    page's download format; its test_id is filled in here because the test is rebuilt on each run)."""
    with open(HAND, encoding="utf-8") as fh:
        hand = json.load(fh)
    design = read_design(made / "test")
    hand["test_id"] = design.test_id
    path = tmp_path / "answers-hand.json"
    path.write_text(json.dumps(hand))
    code = main(["listen", "score", str(made / "test"), str(path), "--n-resamples", "200",
                 "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["real_listeners"] == 1 and result["simulated_listeners"] == 0
    assert result["screening"][0]["kept"] and result["screening"][0]["checks"] == "4/4"
    assert {m["system"] for m in result["mos"]} == {"piper", "espeak", REFERENCE_SYSTEM}
    assert "SIMULATED" not in out and "Bradley-Terry" in out


def _write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def test_hostile_answer_files_are_refused_or_trimmed_with_reasons(simulated, tmp_path):
    design, paths = simulated
    good = json.loads(paths[0].read_text())
    item_acr = next(i.id for i in design.items if i.kind == "acr")
    item_ab = next(i.id for i in design.items if i.kind == "ab")
    wrong_types = dict(good, listener="typed", answers=[
        {"item": item_acr, "rating": "5"}, {"item": item_acr, "rating": True}, {"item": item_acr, "rating": 4.5},
        {"item": item_acr, "rating": 9}, {"item": item_ab, "choice": "C"}, {"item": "../../etc", "rating": 3},
        [1, 2], {"item": item_acr, "rating": 4}, {"item": item_acr, "rating": 2}])
    fifo = str(tmp_path / "fifo.json")
    os.mkfifo(fifo)
    files = {
        "huge": _write(tmp_path, "huge.json", b" " * (9 * 1024 * 1024)),
        "nan": _write(tmp_path, "nan.json", json.dumps(good).replace('"rating": 1', '"rating": NaN', 1)),
        "deep": _write(tmp_path, "deep.json", "[" * 100000 + "]" * 100000),
        "binary": _write(tmp_path, "bin.json", b"\xff\xfe\x00garbage"),
        "other-test": _write(tmp_path, "other.json", json.dumps(dict(good, test_id="0" * 64))),
        "bad-listener": _write(tmp_path, "who.json", json.dumps(dict(good, listener="../x\u0000"))),
        "not-list": _write(tmp_path, "nl.json", json.dumps(dict(good, listener="nl", answers={"a": 1}))),
        "too-many": _write(tmp_path, "many.json", json.dumps(dict(good, listener="many", answers=[{}] * 10000))),
        "dup": _write(tmp_path, "dup.json", json.dumps(good)),
        "zero": "/dev/zero",
        "fifo": fifo,
        "typed": _write(tmp_path, "typed.json", json.dumps(wrong_types)),
    }
    read = read_answers([str(paths[0])] + list(files.values()), design)
    refused = dict(read.refused)
    assert {s.listener for s in read.sets} == {good["listener"], "typed"}
    for key in ("huge", "nan", "deep", "binary", "other-test", "bad-listener", "not-list", "too-many", "dup",
                "zero", "fifo"):
        assert files[key] in refused, key
    assert "already answered" in refused[files["dup"]] and "another test" in refused[files["other-test"]]
    typed = next(s for s in read.sets if s.listener == "typed")
    assert typed.ratings == {item_acr: 4} and typed.choices == {}
    assert len(typed.problems) == 8 and any("answered again" in p for p in typed.problems)


def test_score_cli_exit_codes(simulated, tmp_path, capsys):
    _design, paths = simulated
    bad = _write(tmp_path, "bad.json", "{}")
    assert main(["listen", "score", str(paths[0].parent.parent / "test"), bad]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "DataError" in err
    assert main(["listen", "score", str(tmp_path / "nothing"), bad]) == 3
    assert main(["listen", "score", str(paths[0].parent.parent / "test"), str(paths[0]), bad,
                 "--n-resamples", "50"]) == 0
    assert "refused" in capsys.readouterr().out
    assert main(["listen", "simulate", str(paths[0].parent.parent / "test"), "-q", "piper=nan", "-o",
                 str(tmp_path / "s")]) == 2


def test_bradley_terry_recovers_known_strengths():
    rng = np.random.default_rng(0)
    true = np.array([0.0, 1.0, -1.0])
    wins = np.zeros((3, 3))
    for _ in range(6000):
        i, j = rng.choice(3, 2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        if rng.random() < p:
            wins[i, j] += 1
        else:
            wins[j, i] += 1
    est = bradley_terry(wins)
    assert np.allclose(est - est.mean(), true - true.mean(), atol=0.1)
    always = bradley_terry(np.array([[0.0, 10.0], [0.0, 0.0]]))  # one side never wins: still finite
    assert np.all(np.isfinite(always)) and always[0] > always[1]


def test_krippendorff_alpha_known_values():
    same = np.array([[1.0, 2, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert _alpha(same, interval=True).estimate == pytest.approx(1.0)
    # Krippendorff (2011) reliability data, interval metric: alpha = 0.849
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan]])
    assert _alpha(data, interval=True).estimate == pytest.approx(0.849, abs=0.001)
    assert _alpha(np.array([[1.0, 1.0]]), interval=True).estimate is None


def test_page_renders_every_item_in_headless_chromium(made):
    """The page's script builds one answer box per item (the listener's view) without a server."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    page = made / "test" / "test.html"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False).stdout
    n = len(read_design(made / "test").items)
    assert dom.count('class="item"') == n and f"0 of {n} answered" in dom
