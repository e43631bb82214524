"""Issue 21 item 6: every numeric option is checked up front (finite, in a documented range).

The ranges live on the options dataclasses' fields (``voxproof.options.bounded``); these tests go through
the CLI (the command must refuse before loading a model or writing anything) and through the library.
"""

from __future__ import annotations

import pytest

from voxproof.backends.espeak import EspeakOptions
from voxproof.backends.openai import OpenAISynthesizerOptions, OpenAITranscriberOptions
from voxproof.backends.piper import PiperOptions
from voxproof.backends.sphinx import SphinxOptions
from voxproof.backends.whisper import WhisperOptions
from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.options import Range, build_options, option_ranges
from voxproof.run.runner import RunOptions

HUGE = str(9 * 10**400)


@pytest.mark.parametrize("args, shown", [
    (["-O", "beam_size=100000"], "beam_size=100000 is out of range: valid values are from 1 to 32"),
    (["-O", "cpu_threads=10000"], "cpu_threads=10000 is out of range: valid values are from 0 to 64"),
    (["-O", f"beam_size={HUGE}"], "(401 characters) is out of range"),
    (["-O", "temperature=inf"], "temperature=inf must be a finite number"),
    (["-O", "no_speech_threshold=nan"], "no_speech_threshold=nan must be a finite number"),
    (["-m", "openai", "-O", "backoff=1e9"], "backoff=1000000000.0 is out of range: valid values are from 0 to 60 seconds"),
    (["-m", "openai", "-O", "max_retries=1000000000"], "max_retries=1000000000 is out of range"),
    (["-m", "openai", "-O", "timeout=nan"], "timeout=nan must be a finite number"),
    (["-m", "openai", "-O", "timeout=0"], "timeout=0.0 is out of range: valid values are greater than 0"),
    (["-m", "sphinx", "-O", "beam=0"], "beam=0.0 is out of range"),
    (["--timeout", "nan"], "timeout=nan must be a finite number; valid: greater than 0 and at most 86400 seconds"),
    (["--max-seconds", "inf"], "max_seconds=inf must be a finite number"),
    (["--max-seconds", "nan"], "max_seconds=nan must be a finite number"),
    (["--max-seconds", "1e9"], "max_seconds=1000000000.0 is out of range"),
    (["--workers", "100000"], "workers=100000 is out of range: valid values are from 1 to 64"),
    (["--seed", "-1"], "seed=-1 is out of range: valid values are from 0 to 4294967295"),
    (["--wer-threshold", "nan"], "--wer-threshold=nan must be a positive rate"),
    (["--wer-threshold", "-1"], "--wer-threshold=-1.0 must be a positive rate"),
])
def test_eval_refuses_bad_numbers_before_the_run(tmp_path, capsys, args, shown):
    out = tmp_path / "run"
    code = main(["eval", *args, "--limit", "1", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert shown in err and err.startswith("UsageError: ") and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything was evaluated or written


@pytest.mark.parametrize("args", [["gate", "--seed", "-1"], ["compare", "a", "b", "--seed", "-1"],
                                  ["compare", "a", "b", "--resamples", "200000000"]])
def test_other_commands_bound_seeds_and_resamples(capsys, args):
    assert main(args) == 2
    assert "is not in the range" in capsys.readouterr().err


def test_gate_model_mode_checks_backend_options_before_any_data(tmp_path, capsys):
    code = main(["gate", "--baseline-model", "whisper", "-O", "beam_size=0", "--candidate-model", "whisper",
                 "--cache", str(tmp_path / "cache")])
    assert code == 2 and "beam_size=0 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("cls", [WhisperOptions, SphinxOptions, EspeakOptions, PiperOptions,
                                 OpenAITranscriberOptions, OpenAISynthesizerOptions, RunOptions])
def test_every_numeric_field_has_a_range_and_the_range_is_enforced(cls):
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    numeric = [f.name for f in dataclasses.fields(cls)
               if {int, float} & ({hints[f.name]} | set(typing.get_args(hints[f.name]))) and hints[f.name] is not bool]
    ranges = option_ranges(cls)
    assert numeric and set(numeric) <= set(ranges), f"{cls.__name__}: unbounded {set(numeric) - set(ranges)}"
    for name, valid in ranges.items():
        default = getattr(cls(), name)
        assert default is None or valid.contains(default), (name, default, valid)
        for bad in (valid.high + 1, float("nan"), float("inf")):
            with pytest.raises(UsageError, match=rf"option {name}=\S+ (is out of range|must be a finite)"):
                build_options(cls, {name: bad})
            with pytest.raises(UsageError):  # the library path checks the same ranges
                cls(**{name: bad})
        build_options(cls, {name: valid.high})  # the bounds themselves are valid


def test_range_text():
    assert Range(1, 64).describe() == "from 1 to 64"
    assert Range(0.0, 3600.0, open_low=True, unit="seconds").describe() == "greater than 0 and at most 3600 seconds"
    assert not Range(0.0, 1.0, open_low=True).contains(0.0) and Range(0.0, 1.0).contains(0.0)
