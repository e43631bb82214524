"""The gate on real text-to-speech runs: eSpeak NG at three speaking rates, judged by real Whisper.

``voxproof tts-eval`` synthesises the bundled prompts with eSpeak NG and transcribes them with Whisper
tiny.en; the gate then applies the TTS floors. Speech at 450 words per minute is unintelligible to the
recogniser, so that candidate fails ``tts.intelligibility``; WER rules are reported as not applicable
to TTS runs; a MOS floor without MOS scores is missing evidence, which fails unless the policy says warn.
"""

from __future__ import annotations

import json
import shutil

import pytest

from voxproof.cli.main import main

pytestmark = pytest.mark.slow

POLICY = """
[decision]
method = "point"
resamples = 500
[wer.overall]
max_increase = 0.01
[tts]
min_intelligibility = 0.2
{mos}
"""


@pytest.fixture(scope="module")
def tts_runs(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package espeak-ng) is not installed")
    pytest.importorskip("faster_whisper")
    out = tmp_path_factory.mktemp("tts")
    code = main(["tts-eval", "-m", "base=espeak", "-O", "base:rate=160", "-m", "slower=espeak", "-O", "slower:rate=140",
                 "-m", "fast=espeak", "-O", "fast:rate=450", "--limit", "5", "--no-floor", "--no-mos", "--json-only",
                 "--no-keep-audio", "-o", str(out / "runs")])
    assert code == 0
    return out


def run_gate(tts_runs, candidate, policy_text, name):
    policy = tts_runs / f"{name}.toml"
    policy.write_text(policy_text)
    out = tts_runs / name
    code = main(["gate", "--baseline", str(tts_runs / "runs" / "base"), "--candidate",
                 str(tts_runs / "runs" / candidate), "--policy", str(policy), "-o", str(out)])
    return code, json.loads((out / "gate.json").read_text())


def test_unintelligible_candidate_fails_the_floor(tts_runs):
    code, verdict = run_gate(tts_runs, "fast", POLICY.format(mos=""), "g-fast")
    rules = {r["rule"]: r for r in verdict["rules"]}
    assert code == 1 and verdict["failing_rules"] == ["tts.intelligibility"]
    intel = rules["tts.intelligibility"]
    assert intel["candidate"] < 0.2 < intel["baseline"]
    assert rules["wer.overall"]["verdict"] == "not_applicable"
    assert verdict["candidate"]["kind"] == "tts" and verdict["candidate"]["options"]["rate"] == 450


def test_intelligible_candidate_passes_and_missing_mos_is_not_a_pass(tts_runs):
    code, verdict = run_gate(tts_runs, "slower", POLICY.format(mos=""), "g-slower")
    assert code == 0, verdict["failing_rules"]
    intel = next(r for r in verdict["rules"] if r["rule"] == "tts.intelligibility")
    assert intel["verdict"] == "pass" and intel["candidate"] >= 0.2
    # a MOS floor on runs made without MOS: no data, which fails the gate...
    code, verdict = run_gate(tts_runs, "slower", POLICY.format(mos="min_mos = 3.0"), "g-mos")
    mos = next(r for r in verdict["rules"] if r["rule"] == "tts.mos")
    assert code == 1 and mos["verdict"] == "no_data" and mos["failing"] and "no MOS scores" in mos["detail"]
    # ...unless the policy only wants a warning
    code, verdict = run_gate(tts_runs, "slower", POLICY.format(mos="min_mos = 3.0").replace(
        "[decision]", '[decision]\nmissing_evidence = "warn"'), "g-warn")
    assert code == 0
