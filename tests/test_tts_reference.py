"""Reference-based TTS/codec figures (PESQ, STOI, MCD with DTW, F0 RMSE, voicing error) on synthetic
signals with known answers and on a real recording through real codecs, and ``tts-eval --resynth``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxproof.audio.io import load_audio
from voxproof.audio.signal import Audio
from voxproof.tts.reference import REFERENCE_KEYS, dtw_path, f0_track, reference_scores

RATE = 16000
SHORT = "1688-142285-0002"  # 2.8 s bundled LibriSpeech clip


def _vowel(f0: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A harmonic tone: voiced at ``f0`` throughout."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> Audio:
    from voxproof.manifest import bundled_dataset_path

    return load_audio(str(bundled_dataset_path() / "audio" / f"{SHORT}.flac"))


@pytest.mark.parametrize("f0", [100.0, 180.0, 250.0])
def test_f0_tracker_finds_the_pitch_of_a_harmonic_tone(f0):
    track = f0_track(_vowel(f0).astype(np.float64))
    voiced = track[track > 0]
    assert voiced.size > 0.9 * track.size
    assert np.median(np.abs(1200 * np.log2(voiced / f0))) < 20  # within 20 cents


def test_f0_tracker_calls_noise_and_silence_unvoiced():
    rng = np.random.default_rng(0)
    assert np.mean(f0_track(rng.normal(0, 0.1, RATE)) > 0) < 0.2
    assert not np.any(f0_track(np.zeros(RATE)) > 0)


def test_dtw_recovers_a_known_warp():
    a = np.repeat(np.arange(20.0), 1)[:, None]
    b = np.repeat(np.arange(20.0), 2)[:, None]  # every frame twice
    cost = np.abs(a - b.T)
    i, j = dtw_path(cost)
    assert cost[i, j].sum() == 0
    assert i[0] == 0 and j[0] == 0 and i[-1] == 19 and j[-1] == 39
    assert np.all(np.diff(i) >= 0) and np.all(np.diff(j) >= 0)


def test_identical_clip_is_perfect_and_a_different_pitch_is_not(speech):
    same = reference_scores(speech, speech)
    assert same.values["pesq"] > 4.5 and same.values["stoi"] > 0.999
    assert same.values["mcd"] == pytest.approx(0.0, abs=1e-6)
    assert same.values["f0_rmse"] == pytest.approx(0.0, abs=1e-6) and same.values["vuv_error"] == 0.0
    # a tone a fifth higher: F0 RMSE about 702 cents, every frame voiced in both
    low, high = Audio(_vowel(150.0), RATE), Audio(_vowel(225.0), RATE)
    scores = reference_scores(low, high)
    assert scores.values["f0_rmse"] == pytest.approx(702, abs=40)
    assert scores.values["vuv_error"] < 0.1


def test_time_stretched_copy_aligns_under_dtw(speech):
    """MCD uses DTW: the same speech played 10 % slower is far closer than another utterance."""
    slow = speech.samples[np.minimum((np.arange(int(speech.samples.size * 1.1)) / 1.1).astype(int),
                                     speech.samples.size - 1)]
    stretched = reference_scores(speech, Audio(slow, speech.sample_rate))
    noise = Audio(np.random.default_rng(1).normal(0, 0.05, speech.samples.size).astype(np.float32),
                  speech.sample_rate)
    other = reference_scores(speech, noise)
    assert stretched.values["mcd"] < other.values["mcd"] / 2


def test_codec_ordering_on_real_speech(speech):
    """Opus at 16 kbit/s keeps more of the recording than at 6 kbit/s on every reference figure."""
    from voxproof.perturb import resolve_conditions

    hi, lo = resolve_conditions(perturbs=["codec:opus,bitrate=16k", "codec:opus,bitrate=6k"])
    s_hi, s_lo = reference_scores(speech, hi.apply(speech, 0)), reference_scores(speech, lo.apply(speech, 0))
    assert s_hi.values["pesq"] > s_lo.values["pesq"] + 0.5
    assert s_hi.values["stoi"] > s_lo.values["stoi"]
    assert s_hi.values["mcd"] < s_lo.values["mcd"]


@pytest.mark.parametrize("samples", [
    np.zeros(0, dtype=np.float32),
    np.zeros(100, dtype=np.float32),
    np.full(RATE, np.nan, dtype=np.float32),
    np.zeros(RATE, dtype=np.float32),
])
def test_degenerate_clips_give_reasons_not_crashes(speech, samples):
    scores = reference_scores(speech, Audio(samples, RATE))
    assert set(scores.values) | set(scores.reasons) == set(REFERENCE_KEYS)
    assert all(np.isfinite(v) for v in scores.values.values())
    assert all(isinstance(r, str) and r for r in scores.reasons.values())


def test_resynth_cli_table_and_wer_against_floor(tmp_path, capsys, short_floor_dir):
    from voxproof.cli.main import main

    out = tmp_path / "codecs"
    args = ["tts-eval", "--resynth", "codecs/opus=6k", "--resynth", "codec:mp3,bitrate=8k",
            "--floor-data", str(short_floor_dir),
            "--no-mos", "--vad", "energy", "--n-resamples", "200", "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Resynthesis of the floor recordings" in text and "codecs/opus=6k" in text
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text()
    assert "Resynthesis (codecs, vocoders)" in page and "PESQ" in page
    assert "None" not in page and "nan" not in page
    table = {r["condition"]: r for r in summary["resynth"]}
    assert set(table) == {"codecs/opus=6k", "codec:mp3,bitrate=8k"}
    for item in table.values():
        ref = item["summary"]["reference"]
        assert 1.0 <= ref["pesq"]["estimate"] < 3.0 and 0.5 < ref["stoi"]["estimate"] < 1.0
        assert item["summary"]["reference_n"]["pesq"] == 2
        wer = next(m for m in item["versus_floor"]["metrics"] if m["metric"] == "wer")
        assert wer["n"] == 2 and wer["difference"]["estimate"] == pytest.approx(wer["b"] - wer["a"])
        assert item["summary"]["backend"]["kind"] == "resynth"


@pytest.mark.parametrize("args,code", [
    (["tts-eval", "--resynth", "codecs/nosuch"], 2),
    (["tts-eval", "--resynth", "codec:opus,bitrate=nan"], 2),
    (["tts-eval", "--resynth", "codecs", "--no-floor"], 2),
    (["tts-eval"], 2),
])
def test_resynth_usage_errors(args, code, capsys):
    from voxproof.cli.main import main

    assert main(args) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error" in err


def test_prompt_with_a_recording_gets_reference_figures(tmp_path):
    """A prompt file may name a recording of the same words; eSpeak's clip is then scored against it
    (MCD and F0 via DTW since the timing differs), and an unreadable recording is noted, not fatal."""
    from voxproof.backends import load_backend
    from voxproof.manifest import bundled_dataset_path
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.tts.activity import SpeechDetector
    from voxproof.tts.evaluate import TtsEvalOptions, TtsScorer, evaluate_system
    from voxproof.tts.prompts import load_prompts

    src = bundled_dataset_path() / "audio" / f"{SHORT}.flac"
    (tmp_path / "prompts.jsonl").write_text(
        json.dumps({"id": "a", "text": "You don't mean that you thought me so silly.", "reference_audio": str(src)})
        + "\n" + json.dumps({"id": "b", "text": "Hello there.", "reference_audio": "missing.flac"}) + "\n")
    prompts = load_prompts(str(tmp_path / "prompts.jsonl"))
    assert prompts[1].reference_audio == str(tmp_path / "missing.flac")
    scorer = TtsScorer(load_backend("sphinx", kind="asr"), get_normalizer("whisper-en"),
                       speech=SpeechDetector(method="energy"))
    with evaluate_system("espeak", load_backend("espeak", kind="tts"), prompts, tmp_path / "run", scorer,
                         options=TtsEvalOptions(mos=False, keep_audio=False)) as store:
        rows = {r.utt_id: r for r in store.rows()}
    assert {"ref_mcd", "ref_f0_rmse", "ref_vuv_error"} <= set(rows["a"].features)
    assert rows["a"].features["ref_mcd"] > 0
    assert "ref_mcd" not in rows["b"].features and "AudioNotFound" in rows["b"].extras["reference_reasons"]["all"]
