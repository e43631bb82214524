"""``voxproof serve`` options: every numeric one refuses NaN, infinities, negatives and huge values with
exit 2 and one line naming the option and its valid range (the ranges live on ServeOptions' fields)."""

from __future__ import annotations

import dataclasses

import pytest

from voxproof.cli.main import main
from voxproof.options import RANGE, option_ranges
from voxproof.serve.options import ServeOptions

NUMERIC = [f.name for f in dataclasses.fields(ServeOptions) if RANGE in f.metadata]


def test_every_numeric_serve_option_declares_a_range() -> None:
    ints_and_floats = [f.name for f in dataclasses.fields(ServeOptions) if f.type in ("int", "float")]
    assert sorted(NUMERIC) == sorted(ints_and_floats) and len(NUMERIC) == 17


@pytest.mark.parametrize("name", NUMERIC)
def test_cli_refuses_nan_inf_negative_and_huge(name: str, capsys, tmp_path) -> None:
    valid = option_ranges(ServeOptions)[name]
    flag = "--" + name.replace("_", "-")
    huge = "1" + "0" * 30
    for value in ("nan", "inf", "-inf", "-1", huge, str(valid.high * 10 + 1)):
        code = main(["serve", "--registry", str(tmp_path / "reg.sqlite"), "--keys", str(tmp_path / "k.sqlite"),
                     f"{flag}={value}"])
        err = capsys.readouterr().err
        assert code == 2, (flag, value, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) <= 4 and "Traceback" not in err, err  # click's usage lines, or our one line
        assert name in err or flag in err, err
    assert not (tmp_path / "k.sqlite").exists()  # refused before anything was opened


def test_library_refuses_the_same_values_and_fractions_of_whole_numbers() -> None:
    from voxproof.errors import UsageError

    for bad in ({"canary_share": 1.5}, {"canary_share": float("nan")}, {"max_upload_bytes": 0},
                {"request_timeout_s": float("inf")}, {"max_batch": 1000}, {"rate_limit": -1.0},
                {"max_batch": 2.5}, {"port": 70000}, {"poll_s": 0.0}, {"max_wait_ms": -0.5}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            ServeOptions(**bad)
    assert ServeOptions(max_wait_ms=0.0, port=0, canary_share=1.0).max_wait_ms == 0.0


def test_help_states_the_ranges(capsys) -> None:
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("from 0 to 65535", "greater than 0 and at most 3600 seconds", "from 1 to 64",
                   "from 1 to 2147483648 bytes", "--allow-changed-model"):
        assert phrase in text, phrase
