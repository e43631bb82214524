"""``voxproof registry`` and ``voxproof card`` through the CLI, on SQLite and on the real PostgreSQL server.

Gate verdicts come from ``voxproof gate`` on run stores built in tmp_path (see test_gate_rules.py).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from test_gate_rules import drop_words, make_run

from voxproof.cli.main import main

PG_URL = os.environ.get("VOXPROOF_TEST_PG_URL")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    """Three runs on the real LibriSpeech references: v1, v2 (no worse), v3 (worse on speaker 367)."""
    import csv

    d = shared_data / "librispeech-test-other-mini"
    info = {r["id"]: r for r in csv.DictReader((d / "utt_info.tsv").read_text().splitlines(), delimiter="\t")}
    utts = []
    for line in (d / "transcripts.tsv").read_text().splitlines():
        uid, text = line.rstrip("\n").split("\t", 1)
        utts.append((uid, text, info[uid]["speaker"], info[uid]["gender"], float(info[uid]["duration_s"])))
    root = tmp_path_factory.mktemp("runs")
    out = {
        "v1": make_run(root / "v1", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 1}),
        "v2": make_run(root / "v2", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 2}),
        "v3": make_run(root / "v3", utts, lambda u, c: drop_words(u[1], 5 if u[2] == "367" else 1),
                       options={"beam_size": 3}),
    }
    policy = root / "policy.toml"
    policy.write_text('[decision]\nmethod = "point"\nresamples = 200\n[wer.overall]\nmax_increase = 0.05\n'
                      '[wer.slices]\nby = ["speaker"]\nmax_increase = 0.05\n')
    for cand in ("v2", "v3"):
        assert main(["gate", "--baseline", str(out["v1"]), "--candidate", str(out[cand]), "--policy", str(policy),
                     "-o", str(root / f"gate-{cand}")]) == (0 if cand == "v2" else 1)
        out[f"gate-{cand}"] = root / f"gate-{cand}"
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXPROOF_USER", "dana")
    if request.param == "sqlite":
        path = tmp_path / "reg.sqlite"
        monkeypatch.setenv("VOXPROOF_REGISTRY", str(path))
        yield str(path)
        return
    if not PG_URL:
        pytest.skip("VOXPROOF_TEST_PG_URL is not set: run 'source .ci/postgres.sh' to test the PostgreSQL path")
    import psycopg

    schema = "vp_cli_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    monkeypatch.setenv("VOXPROOF_REGISTRY", url)
    try:
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_register_gate_promote_rollback_card(runs, registry, capsys, tmp_path):
    for v in ("v1", "v2", "v3"):
        code, out, _ = run(["registry", "register", v, "--from-run", str(runs[v]), "--notes", f"notes of {v}"], capsys)
        assert code == 0 and f"registered {v}: whisper (asr) checksum sha256:abc" in out
    assert run(["registry", "promote", "v1", "--reason", "first production"], capsys)[0] == 0

    # no gate verdict yet: refused with exit 1
    code, _, err = run(["registry", "promote", "v3"], capsys)
    assert code == 1 and "PromotionRefused: no gate verdict of 'v3' against the current production 'v1'" in err
    # the failing verdict is recorded (versions found from the runs it names) and still refuses
    code, out, _ = run(["registry", "attach-gate", str(runs["gate-v3"])], capsys)
    assert code == 0 and "v3 vs v1: FAILED (wer.slice[speaker=367])" in out
    code, _, err = run(["registry", "promote", "v3"], capsys)
    assert code == 1 and "failed: wer.slice[speaker=367]" in err
    # the passing one allows promotion
    assert run(["registry", "attach-gate", str(runs["gate-v2"] / "gate.json")], capsys)[0] == 0
    code, out, _ = run(["registry", "promote", "v2", "--reason", "gate passed"], capsys)
    assert code == 0 and "production: v1 -> v2 (gate #2 re-derived from its runs); previous: v1" in out
    assert run(["registry", "alias", "canary", "v3", "--reason", "try on 5 %"], capsys)[0] == 0
    code, out, _ = run(["registry", "rollback", "--reason", "latency spike"], capsys)
    assert code == 0 and "production: v2 -> v1" in out

    code, out, _ = run(["registry", "list", "--json"], capsys)
    listing = {v["name"]: v["aliases"] for v in json.loads(out)}
    assert listing == {"v1": ["production"], "v2": [], "v3": ["canary"]}
    code, out, _ = run(["registry", "history", "--json"], capsys)
    history = json.loads(out)
    assert [h["action"] for h in history] == [
        "register", "attach-run", "register", "attach-run", "register", "attach-run", "promote", "promote-refused",
        "attach-gate", "promote-refused", "attach-gate", "promote", "set-alias", "rollback"]
    assert {h["actor"] for h in history} == {"dana"}
    assert history[-1]["reason"] == "latency spike" and history[11]["details"]["gate_id"] == 2
    assert history[9]["details"]["gate_id"] == 1 and "failed: wer.slice[speaker=367]" in history[9]["details"]["refused_because"]
    code, out, _ = run(["registry", "show", "v3"], capsys)
    assert "FAIL wer.slice[speaker=367]" in out and "canary" in out

    card = tmp_path / "v3.md"
    assert run(["card", "v3", "-o", str(card)], capsys)[0] == 0
    text = card.read_text()
    for section in ("## Intended use", "## Data", "## Metrics", "## Slices", "## Robustness", "## Calibration",
                    "## Latency and cost", "## Known failure modes", "## Gate history"):
        assert section in text
    assert "notes of v3" in text
    assert "| #3 | clean |" in text and "95% CI" in text
    assert "| speaker | 367 |" in text
    assert "No data: no attached run was evaluated under perturbations" in text
    assert "speaker=367 has WER" in text  # the worst slice is listed as a failure mode
    assert r"Gate #1 against v1 failed: wer.slice\[speaker=367\]" in text


def test_card_of_a_bare_version_says_what_is_missing(registry, capsys):
    assert run(["registry", "register", "bare", "-m", "sphinx"], capsys)[0] == 0
    code, out, _ = run(["card", "bare"], capsys)
    assert code == 0
    assert "Not stated." in out
    assert "No runs are attached" in out and "No data: no scored recognition run is attached." in out
    assert "No data: no gate verdict involves this version." in out


def test_registry_usage_errors(registry, capsys):
    code, _, err = run(["registry", "show", "nope"], capsys)
    assert code == 2 and "no version or alias 'nope'" in err
    code, _, err = run(["registry", "register", "x"], capsys)
    assert code == 2 and "give --model BACKEND" in err
    assert run(["registry", "register", "a", "-m", "whisper", "-O", "beam_size=2"], capsys)[0] == 0
    assert run(["registry", "register", "b", "-m", "whisper"], capsys)[0] == 0
    assert run(["registry", "promote", "a"], capsys)[0] == 0
    code, _, err = run(["registry", "promote", "b", "--force"], capsys)
    assert code == 2 and "needs a reason" in err
    code, _, err = run(["registry", "alias", "production", "b"], capsys)
    assert code == 2 and "managed by the registry" in err
    code, _, err = run(["registry", "register", "c", "-m", "whisper", "-O", "beam=2"], capsys)
    assert code == 2 and "unknown option 'beam'" in err
