"""Supply chain, gate side: ``voxproof gate`` refuses a candidate whose model file changed (ModelChanged,
exit 3, naming both checksums), on load in model mode and from the checksum a candidate run recorded in
run mode; ``--allow-changed-model`` lets it through and gate.json records the override."""

from __future__ import annotations

import json

import pytest

from voxproof.cli.main import main

IDS = {"1688-142285-0002"}  # one short clip Whisper tiny.en gets partly wrong


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A baseline run with the bundled Whisper tiny.en, a candidate run with a one-byte-changed copy of it
    (made with --allow-changed-model), the manifest, the changed model dir and the registered checksum."""
    from test_security_supply import _changed_whisper_copy

    from voxproof.backends.registry import load_backend
    from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl

    tmp = tmp_path_factory.mktemp("gate-supply")
    expected = load_backend("whisper", kind="asr").info().model_checksum
    model_dir = _changed_whisper_copy(tmp)
    write_jsonl([u for u in read_manifest(bundled_dataset_path()) if u.id in IDS], tmp / "m.jsonl")
    common = ["-d", str(tmp / "m.jsonl"), "--json-only", "--features", "none"]
    assert main(["eval", "-m", "whisper", "-o", str(tmp / "base"), *common]) == 0
    assert main(["eval", "-m", "whisper", "-O", f"model_path={model_dir}", "-o", str(tmp / "cand"), *common,
                 "--expect-checksum", expected, "--allow-changed-model"]) == 0
    return tmp, expected, model_dir


def test_gate_run_mode_refuses_changed_candidate(runs, capsys):
    tmp, expected, _ = runs
    args = ["gate", "--baseline", str(tmp / "base"), "--candidate", str(tmp / "cand"), "--expect-checksum", expected]
    assert main(args + ["-o", str(tmp / "g1")]) == 3
    err = capsys.readouterr().err
    assert err.count("ModelChanged") == 1 and expected in err and "Traceback" not in err
    assert not (tmp / "g1" / "gate.json").exists()
    code = main(args + ["-o", str(tmp / "g2"), "--allow-changed-model"])
    assert code in (0, 1)  # the rules decide; the model check let it through
    mv = json.loads((tmp / "g2" / "gate.json").read_text())["model_verification"]
    assert mv["status"] == "overridden" and mv["expected"] == expected != mv["actual"]
    assert "overridden" in (tmp / "g2" / "gate.html").read_text()


def test_gate_run_mode_matching_candidate_recorded(runs):
    tmp, expected, _ = runs
    assert main(["gate", "--baseline", str(tmp / "cand"), "--candidate", str(tmp / "base"),
                 "--expect-checksum", expected, "-o", str(tmp / "g3")]) in (0, 1)
    mv = json.loads((tmp / "g3" / "gate.json").read_text())["model_verification"]
    assert mv["status"] == "match" and mv["actual"] == expected


def test_gate_model_mode_refuses_changed_model_before_evaluating(runs, capsys):
    tmp, expected, model_dir = runs
    cache = tmp / "cache"
    code = main(["gate", "--baseline-model", "whisper", "--candidate-model", "whisper", "-O",
                 f"model_path={model_dir}", "-d", str(tmp / "m.jsonl"), "--cache-dir", str(cache),
                 "--expect-checksum", expected, "-o", str(tmp / "g4")])
    assert code == 3
    err = capsys.readouterr().err
    assert "ModelChanged" in err and expected in err
    assert not cache.exists() or not any(cache.iterdir())  # refused before either model evaluated anything


def test_gate_supply_usage_errors(runs, capsys):
    tmp = runs[0]
    base = ["gate", "--baseline", str(tmp / "base"), "--candidate", str(tmp / "cand")]
    assert main(base + ["--expect-checksum", "zz" * 40]) == 2
    assert main(base + ["--expect-version", "v1"]) == 2
    assert "UsageError" in capsys.readouterr().err


# -- governance view (NIST AI RMF) on the same runs ------------------------------------------------
def test_gate_report_governance_section(runs):
    from voxproof.gate.verdict import GateVerdict
    from voxproof.security.governance import MISSING, PRESENT, gate_rows, read_run_evidence

    tmp, expected, _ = runs
    assert main(["gate", "--baseline", str(tmp / "cand"), "--candidate", str(tmp / "base"),
                 "--expect-checksum", expected, "-o", str(tmp / "g5")]) in (0, 1)
    page = (tmp / "g5" / "gate.html").read_text()
    assert "Governance (NIST AI RMF)" in page
    verdict = GateVerdict.from_dict(json.loads((tmp / "g5" / "gate.json").read_text()))
    ev = read_run_evidence(tmp / "base")
    assert ev.readable and ev.kind == "asr" and ev.probe is None and "summary.json" in ev.files
    rows = {r.item: r for r in gate_rows(verdict, [ev])}
    assert rows["model identity"].status == PRESENT and expected in rows["model identity"].detail
    assert rows["accuracy with intervals"].status == PRESENT  # the wer.overall rule was decided
    assert rows["robustness"].status == MISSING  # clean speech only: no claim
    assert rows["security probes"].status == MISSING and rows["monitoring"].status == MISSING
    assert {r.function for r in rows.values()} == {"Govern", "Map", "Measure", "Manage"}


def test_model_card_governance_links_runs_probes_and_audit(runs, capsys):
    from voxproof.security.store import open_probe_store

    tmp = runs[0]
    reg = ["--registry", str(tmp / "reg.sqlite")]
    assert main(["registry", *reg, "register", "v1", "--from-run", str(tmp / "base"),
                 "--notes", "English read speech, offline"]) == 0
    bare = tmp / "card-bare.md"
    assert main(["card", "v1", *reg, "-o", str(bare)]) == 0
    text = bare.read_text()
    section = text[text.index("## Governance (NIST AI RMF)"):text.index("## Gate history")]
    assert "| Measure | security probes | missing |" in section and "| Map | data audit | missing |" in section
    assert "| Measure | accuracy with intervals | present |" in section
    assert "| Map | intended use | present |" in section
    # a probe run store (as `voxproof probe` opens it) and an audit directory given as evidence
    store = open_probe_store(tmp / "probe", probe="inject", backend={"name": "whisper", "kind": "asr"},
                             dataset={"name": "mini"}, normalizer={"name": "whisper-en", "version": 1}, seed=0,
                             options={}, conditions=[("clean", {})], resume=False)
    store.close()
    (tmp / "audit").mkdir()
    (tmp / "audit" / "findings.json").write_text(json.dumps(
        {"source": "train.jsonl", "counts": {"high": 2}, "failed": True, "findings": []}))
    full = tmp / "card.md"
    assert main(["card", "v1", *reg, "-o", str(full), "--evidence", str(tmp / "probe"),
                 "--evidence", str(tmp / "audit")]) == 0
    section = full.read_text().split("## Governance (NIST AI RMF)")[1].split("## Gate history")[0]
    assert "| Measure | security probes | present | 1 probe run(s): inject |" in section
    assert "| Map | data audit | present | train.jsonl: high 2 (failing) |" in section
    assert main(["card", "v1", *reg, "--evidence", str(tmp)]) == 2  # neither an audit nor a run
    assert main(["card", "v1", *reg, "--evidence", "/dev/zero"]) == 2
    (tmp / "junk").mkdir()
    (tmp / "junk" / "run.sqlite").write_bytes(b"\0" * 4096)  # a corrupt store: linked as unreadable, no crash
    assert main(["card", "v1", *reg, "--evidence", str(tmp / "junk"), "-o", str(tmp / "c2.md")]) == 0
    assert "UsageError" in capsys.readouterr().err
