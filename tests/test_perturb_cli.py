"""``voxproof suites``: lists suites, conditions, kinds; bad names exit 2 with one clear line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from voxproof.cli.main import cli, main


def test_suites_lists_every_suite_and_its_conditions() -> None:
    out = CliRunner().invoke(cli, ["suites"])
    assert out.exit_code == 0
    for name in ("noise-ladder@1", "telephony@1", "rooms@1", "codecs@1", "full@1"):
        assert name in out.output
    detail = CliRunner().invoke(cli, ["suites", "noise-ladder"])
    assert "noise-ladder/snr=0" in detail.output and "noise:snr=0" in detail.output


def test_suites_json_marks_availability() -> None:
    out = CliRunner().invoke(cli, ["suites", "codecs", "--json"])
    data = json.loads(out.output)
    conds = {c["name"]: c for c in data[0]["conditions"]}
    assert conds["codecs/amr-nb=4.75k"]["available"] is True  # SoX + libopencore-amrnb on this machine
    assert conds["codecs/opus=8k"]["chain"] == [{"kind": "codec", "codec": "opus", "bitrate": 8.0}]


def test_perturbation_kinds_and_check() -> None:
    kinds = CliRunner().invoke(cli, ["suites", "--perturbations"])
    assert kinds.exit_code == 0 and "packet loss" in kinds.output and "--perturb 'codec:mp3'" in kinds.output
    check = CliRunner().invoke(cli, ["suites", "--check", "codec:mp3,bitrate=16k+noise:snr=20"])
    assert "family=noise severity=20.0" in check.output


def test_bad_names_exit_2(capsys) -> None:
    assert main(["suites", "nosuch"]) == 2
    assert "UsageError: unknown suite 'nosuch'; choose one of noise-ladder" in capsys.readouterr().err
    assert main(["suites", "--check", "codec:aac"]) == 2
