"""Package contract: light import, console entry point, exit codes, 'voxproof models'."""

from __future__ import annotations

import json
import subprocess
import sys

from voxproof.cli.main import main

HEAVY = ("ctranslate2", "faster_whisper", "onnxruntime", "pocketsphinx", "piper", "ray", "torch", "speechmos",
         "librosa", "matplotlib", "pyroomacoustics", "psycopg")


def test_import_voxproof_pulls_no_model_runtime():
    code = (
        "import sys, voxproof, voxproof.manifest, voxproof.backends, voxproof.run.runner, voxproof.metrics.scoring, "
        "voxproof.cli.main; print([m for m in %r if m in sys.modules])" % (HEAVY,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_models_lists_every_backend_with_install_status(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"whisper", "sphinx", "openai", "piper", "espeak", "openai-tts"} <= set(rows)
    assert rows["whisper"]["kind"] == "asr" and rows["piper"]["kind"] == "tts"
    assert all(r["installed"] for r in rows.values()), rows


def test_usage_errors_exit_2(capsys):
    assert main(["eval", "-m", "nosuchmodel"]) == 2
    assert "unknown asr backend 'nosuchmodel'" in capsys.readouterr().err
    assert main(["eval", "-O", "beam_size=abc"]) == 2
    assert "beam_size" in capsys.readouterr().err
    assert main(["eval", "--no-such-flag"]) == 2


def test_unreadable_data_exits_3_and_missing_data_is_a_usage_mistake(tmp_path, capsys):
    garbage = tmp_path / "m.jsonl"
    garbage.write_text("{not json\n[1, 2\n")
    assert main(["eval", "-d", str(garbage), "-o", str(tmp_path / "run")]) == 3
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith("ManifestError: ")  # one line 'ErrorType: what happened'
    assert main(["eval", "-d", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith("UsageError: -d ") and "does not exist" in err


def test_a_run_where_nothing_can_be_evaluated_exits_3(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0, "text": "hello"}) + "\n"
    )
    assert main(["eval", "-m", "sphinx", "-d", str(manifest), "-o", str(tmp_path / "run"), "--json-only"]) == 3
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    cov = summary["scores"]["conditions"][0]["coverage"]
    assert cov["ok"] == 0 and cov["by_error_type"] == {"AudioNotFound": 1}


def test_root_help_names_only_registered_capabilities(monkeypatch, capsys):
    from voxproof.cli import main as main_module

    assert main_module.capability_summary() == "Evaluate, audit, gate, serve, watch and probe."
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ship? Evaluate, audit, gate, serve, watch and probe. Exit codes" in out and "{capabilities}" not in out
    commands = dict(main_module.COMMANDS)
    commands["monitor"] = "voxproof.cli.card_cmd:card_command"  # any importable module stands in
    del commands["gate"]
    del commands["serve"]
    del commands["probe"]
    monkeypatch.setattr(main_module, "COMMANDS", commands)
    assert main_module.capability_summary() == "Evaluate, audit and watch."
    commands["serve"] = "voxproof.cli.no_such_module:serve_command"  # registered but not installed
    assert main_module.capability_summary() == "Evaluate, audit and watch."
