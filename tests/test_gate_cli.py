"""``voxproof gate`` argument handling that needs no model: -O attribution, mode errors, the shown policy."""

from __future__ import annotations

import pytest

from voxproof.cli.gate_cmd import _split_options
from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.gate.policy import default_policy_text, parse_policy
from voxproof.gate.runs import cache_key


def test_each_option_belongs_to_the_model_named_before_it():
    argv = ["--baseline-model", "whisper", "-O", "beam_size=1", "--candidate-model=whisper", "-O", "beam_size=5",
            "--option=vad_filter=true", "-Otemperature=0.2", "--data", "d"]
    assert _split_options(argv) == (["beam_size=1"], ["beam_size=5", "vad_filter=true", "temperature=0.2"])
    with pytest.raises(UsageError, match="must follow --baseline-model or --candidate-model"):
        _split_options(["-O", "beam_size=5", "--baseline-model", "whisper"])


def test_cache_key_changes_with_what_defines_the_rows():
    base = {"backend": "whisper", "options": {"beam_size": 1}, "dataset_hash": "h", "conditions": [], "seed": 0,
            "normalizer": "whisper-en@1"}
    key = cache_key(**base)
    assert key == cache_key(**base)
    for change in ({"options": {"beam_size": 5}}, {"dataset_hash": "h2"}, {"seed": 1},
                   {"conditions": [{"name": "gain:-55"}]}, {"normalizer": "basic@1"}):
        assert cache_key(**{**base, **change}) != key


def test_mode_errors_exit_2(capsys, tmp_path):
    assert main(["gate"]) == 2
    assert "nothing to gate" in capsys.readouterr().err
    assert main(["gate", "--baseline", "a", "--candidate-model", "whisper"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["gate", "--baseline-model", "whisper", "--candidate-model", "whisper"]) == 2
    assert "identical" in capsys.readouterr().err
    assert main(["gate", "--baseline-model", "whisper", "--candidate-model", "nosuch", "--data", str(tmp_path)]) == 2
    assert "unknown asr backend 'nosuch'" in capsys.readouterr().err


def test_show_policy_prints_the_shipped_default(capsys):
    assert main(["gate", "--show-policy"]) == 0
    out = capsys.readouterr().out
    assert out == default_policy_text()
    assert parse_policy(out).overall is not None
