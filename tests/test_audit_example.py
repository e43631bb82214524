"""The README's audit example (python3 -m voxproof.audit.example DIR): built from the bundled recordings
only, every planted defect found by a real audit, and bad target folders refused with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voxproof.audit.example import build_example
from voxproof.cli.audit_example import main as example_main
from voxproof.cli.main import main
from voxproof.errors import UsageError


def test_example_is_self_contained_and_its_defects_are_found(tmp_path: Path, capsys) -> None:
    corpus = build_example(tmp_path / "ex")
    train = [json.loads(line) for line in corpus.train.read_text().splitlines()]
    test = [json.loads(line) for line in corpus.test.read_text().splitlines()]
    assert (len(train), len(test)) == (15, 5)
    for item in train + test:  # relative audio paths that exist: the folder can be moved
        assert not Path(item["audio"]).is_absolute() and (corpus.train.parent / item["audio"]).is_file()
    moved = tmp_path / "moved"
    (tmp_path / "ex").rename(moved)
    code = main(["audit", str(moved / "train.jsonl"), "--against", str(moved / "test.jsonl"),
                 "--intended-use", "commercial", "--vad", "energy", "--workers", "1", "-o", str(tmp_path / "out")])
    assert code == 1  # findings at or above high
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())["findings"]
    kinds: dict[str, set[str]] = {}
    for f in findings:
        kinds.setdefault(f["kind"], set()).update(f["items"])
    assert {"1688-142285-0000", "1688-142285-0000-copy"} <= kinds["duplicate.near_audio"]
    assert "clipped" in kinds["signal.clipping"]
    assert {"nc-interview"} <= kinds["licence.non_commercial"] & kinds["pii.email"] & kinds["pii.phone"]
    assert "1998-15444-0001" in kinds["contamination.exact_audio"] & kinds["contamination.transcript"]
    assert "contamination.speaker" in kinds
    assert "licence.missing" not in kinds and "transcript.rate_outlier" not in kinds  # nothing unplanted
    capsys.readouterr()


def test_bad_target_folders_are_usage_errors(tmp_path: Path, capsys) -> None:
    build_example(tmp_path / "ex")
    with pytest.raises(UsageError, match="already exists"):
        build_example(tmp_path / "ex")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        build_example(tmp_path / "file")
    assert example_main([str(tmp_path / "ex")]) == 2
    assert "UsageError: " in capsys.readouterr().err
    assert example_main([]) == 2 and example_main(["--help"]) == 2
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert example_main([str(locked / "ex")]) == 2


def test_runs_as_a_module(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "voxproof.audit.example", "ex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wrote ex/train.jsonl and ex/test.jsonl; planted:")
    assert "nc-interview: non-commercial licence" in out.stdout
