"""Every exit path against the README's table: 0 done, 1 gate failed or findings, 2 usage mistake,
3 could not evaluate. A path that is not there, or a folder that is not a run, is a usage mistake (2);
a run that is there but cannot be read is 3; a bug is a one-line ``InternalError`` with 3, never 1."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voxproof.backends.base import BackendInfo, Transcript
from voxproof.cli.main import main
from voxproof.manifest.utterance import Utterance
from voxproof.run.runner import RunOptions, run_eval


class Says:
    sample_rate = 16000

    def __init__(self, text: str):
        self.text = text

    def transcribe(self, audio):
        return Transcript(self.text)

    def info(self):
        return BackendInfo("says", "asr", "says", "0" * 64, {"text": self.text})


def tiny_run(root, name: str, text: str = "a b c", n: int = 4, dataset_hash: str = "h1"):
    utts = []
    for i in range(n):
        path = root / f"{name}-{i}.wav"
        sf.write(str(path), np.full(4000 + 100 * i, 0.1, dtype=np.float32), 16000)
        utts.append(Utterance(f"u{i}", str(path), "a b c", speaker=f"s{i % 2}"))
    run = root / name
    run_eval(lambda: Says(text), utts, run, options=RunOptions(features="none"),
             normalizer={"name": "whisper-en", "version": 1}, dataset={"hash": dataset_hash, "utterances": n})
    return run


@pytest.mark.parametrize("command", [["report"], ["score"], ["compare", "{run}"]])
def test_a_folder_that_is_not_a_run_is_a_usage_mistake(tmp_path, capsys, command):
    run = tiny_run(tmp_path, "run")
    (tmp_path / "plain").mkdir()
    for target in (tmp_path / "plain", tmp_path / "missing"):
        args = [a.format(run=run) for a in command] + [str(target)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert str(target) in err and ("is not a run directory" in err or "does not exist" in err)
        assert "Traceback" not in err


def test_a_corrupt_run_store_could_not_be_evaluated(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.sqlite").write_bytes(b"this is not SQLite " * 100)
    assert main(["report", str(tmp_path / "broken")]) == 3
    assert capsys.readouterr().err.startswith(("RunError: ", "CorruptRunStore: "))


def test_eval_usage_mistakes_exit_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    cases = [
        (["-d", str(tmp_path / "no-such-data")], "does not exist"),
        (["--limit", "3", "--sample", "3"], "not both"),
        (["--sample", "0"], "--sample must be at least 1"),
        (["--wer-threshold", "nan"], "--wer-threshold"),
        (["--wer-threshold", "-0.2"], "--wer-threshold"),
    ]
    for extra, message in cases:
        assert main(["eval", "-m", "sphinx", "-o", str(out), *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
        assert not out.exists()  # refused before a run was started


def test_gate_exit_codes_follow_the_table(tmp_path, capsys):
    a = tiny_run(tmp_path, "a")
    same = tiny_run(tmp_path, "same")
    b = tiny_run(tmp_path, "b", text="a b d")
    other = tiny_run(tmp_path, "other", dataset_hash="h2")
    (tmp_path / "plain").mkdir()
    assert main(["gate", "--baseline", str(a), "--candidate", str(tmp_path / "plain")]) == 2
    assert "--candidate" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(a), "--candidate", str(other), "-o", str(tmp_path / "g0")]) == 2
    assert capsys.readouterr().err.startswith("NotComparable: ")
    assert main(["gate", "--baseline", str(a), "--candidate", str(same), "-o", str(tmp_path / "g1")]) == 0
    captured = capsys.readouterr()
    assert "GATE PASSED" in captured.out and "options that differ: none" in captured.out
    assert main(["gate", "--baseline", str(a), "--candidate", str(b), "-o", str(tmp_path / "g2")]) == 1
    captured = capsys.readouterr()
    assert "GATE FAILED" in captured.out and "options that differ: text a b c -> a b d" in captured.out


def test_a_bug_is_one_line_and_exit_3_never_1(tmp_path, capsys, monkeypatch):
    run = tiny_run(tmp_path, "run")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("voxproof.report.build.write_reports", broken)
    assert main(["report", str(run)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("InternalError: ZeroDivisionError: division by zero") and "Traceback" not in err


def test_registry_and_audit_paths_that_are_not_there_are_usage_mistakes(tmp_path, capsys):
    registry = str(tmp_path / "reg.sqlite")
    (tmp_path / "plain").mkdir()
    cases = [
        (["registry", "--registry", registry, "register", "v1", "--from-run", str(tmp_path / "gone")], "--from-run"),
        (["registry", "--registry", registry, "attach-run", "v1", str(tmp_path / "plain")], "is not a run directory"),
        (["audit", str(tmp_path / "gone")], "DATA"),
        (["audit", str(tmp_path / "plain"), "--against", str(tmp_path / "gone")], "--against"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("UsageError: ") and message in err and err.strip().count("\n") == 0, err


def test_report_and_score_say_when_a_run_is_not_complete(tmp_path, capsys):
    from voxproof.run.store import RunStore

    run = tiny_run(tmp_path, "run")
    assert main(["score", str(run)]) == 0
    assert "not complete" not in capsys.readouterr().err
    with RunStore.open(run) as store:
        store.set_meta("status", "interrupted")
        store.set_meta("provenance", {**store.provenance, "dataset": {"hash": "h1", "utterances": 10}})
    for command in ("score", "report"):
        assert main([command, str(run)]) == 0
        err = capsys.readouterr().err
        assert "the run is not complete (status interrupted): 4 of 10 rows are stored" in err
