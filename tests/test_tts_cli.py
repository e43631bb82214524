"""``voxproof tts-eval`` through the CLI entry point: outputs, resume, and exit codes."""

from __future__ import annotations

import json

import pytest

from voxproof.cli.main import main


@pytest.mark.slow
def test_tts_eval_writes_reports_and_resumes(tmp_path, capsys):
    out = tmp_path / "tts"
    args = ["tts-eval", "-m", "espeak", "-m", "slow=espeak", "-O", "slow:rate=120", "--limit", "2",
            "--no-floor", "--no-mos", "--n-resamples", "200", "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "espeak" in text and "slow" in text and "Paired comparison slow - espeak on 2 prompts" in text
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["systems"]) == {"espeak", "slow"}
    assert summary["systems"]["slow"]["backend"]["options"]["rate"] == 120
    # eSpeak at 120 words per minute speaks more slowly than at its default 175
    assert (summary["systems"]["slow"]["timing"]["median_words_per_second"]
            < summary["systems"]["espeak"]["timing"]["median_words_per_second"])
    assert (out / "report.html").is_file() and (out / "espeak" / "run.sqlite").is_file()
    assert main(args) == 0  # a rerun finds every prompt done and only re-reports
    from voxproof.run.store import RunStore

    with RunStore.open(out / "espeak") as store:
        resources = store.meta("resources")
        assert resources["last_session"]["rows_written"] == 0 and resources["last_session"]["rows_skipped"] == 2
        assert resources["rows_written"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["tts-eval", "-m", "nosuch"],
        ["tts-eval", "-m", "espeak", "-O", "piper:rate=1"],
        ["tts-eval", "-m", "espeak", "-O", "espeak:nosuch=1"],
        ["tts-eval", "-m", "espeak", "-m", "espeak"],
        ["tts-eval", "-m", "espeak", "--vad", "webrtc"],
        ["tts-eval", "-m", "whisper"],
        ["tts-eval", "-m", "espeak", "--detector", "max_pause=2"],
    ],
)
def test_usage_errors_exit_2(args, tmp_path, capsys):
    assert main(args + ["-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(("UsageError: ", "Error: "))  # ours, or click's for a bad choice


def test_missing_prompt_file_exits_3(tmp_path, capsys):
    code = main(["tts-eval", "-m", "espeak", "--prompts", str(tmp_path / "none.jsonl"), "--no-floor",
                 "--no-mos", "-o", str(tmp_path / "x")])
    assert code == 3
    assert "DataError" in capsys.readouterr().err
