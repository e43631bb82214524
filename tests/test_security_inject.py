"""Injection probe: placement and levels on synthetic signals, scoring rules, options validation, and a
small real run (PocketSphinx + eSpeak payload on bundled speech) through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from voxproof.errors import UsageError
from voxproof.security import inject
from voxproof.security.mixing import active_power, longest_pause, place_payload
from voxproof.security.store import crossing

SR = 16000


def _speechlike(seconds: float, seed: int, pause: tuple[float, float] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.001 * rng.standard_normal(len(t))
    if pause:
        x[int(pause[0] * SR): int(pause[1] * SR)] = 0.0005 * rng.standard_normal(int(pause[1] * SR) - int(pause[0] * SR))
    return x.astype(np.float32)


@pytest.mark.parametrize("level", [-30.0, -12.0, 0.0])
def test_payload_level_is_relative_active_power(level):
    carrier = _speechlike(3.0, 1)
    payload = 3.0 * _speechlike(0.8, 2)
    mixed, placement = place_payload(carrier, payload, SR, level, "after", np.random.default_rng(0))
    start = int(placement.start * SR)
    added = mixed[start:start + len(payload)]
    got = 10 * math.log10(active_power(added, SR) / active_power(mixed[: len(carrier)], SR))
    assert got == pytest.approx(level, abs=0.3)
    assert len(mixed) == len(carrier) + int(0.3 * SR) + len(payload)


def test_positions_place_payload_where_asked():
    carrier = _speechlike(4.0, 3, pause=(1.9, 2.6))
    payload = _speechlike(0.5, 4)
    assert longest_pause(carrier, SR) == pytest.approx((1.9, 2.6), abs=0.03)
    mixed, p = place_payload(carrier, payload, SR, -6.0, "pause", np.random.default_rng(0))
    assert 1.9 <= p.start <= 2.6 and not p.overlaps_speech
    assert len(mixed) == len(carrier) + len(payload)
    mixed, p = place_payload(carrier, payload, SR, -6.0, "under", np.random.default_rng(0))
    assert len(mixed) == len(carrier) and p.overlaps_speech and 0 <= p.start <= 3.5
    mixed, p = place_payload(carrier, payload, SR, -6.0, "before", np.random.default_rng(0))
    assert p.start == 0.0 and len(mixed) > len(carrier)


def test_loud_payload_never_clips_and_is_finite():
    carrier = 0.9 * np.sign(_speechlike(1.0, 5)).astype(np.float32)
    mixed, _ = place_payload(carrier, _speechlike(0.5, 6), SR, 20.0, "under", np.random.default_rng(1))
    assert np.all(np.isfinite(mixed)) and np.max(np.abs(mixed)) <= 0.99 + 1e-6


def test_payload_hits_count_only_words_beyond_the_carrier():
    payload = ["open", "the", "door"]
    assert inject.payload_hits(payload, ["the", "cat"], ["the", "cat", "open", "the", "door"]) == 3
    assert inject.payload_hits(payload, ["the", "cat"], ["the", "cat"]) == 0
    assert inject.payload_hits(payload, ["the", "door"], ["the", "door", "open"]) == 1
    assert inject.contains_phrase(["a", "open", "the", "door", "b"], payload)
    assert not inject.contains_phrase(["open", "door", "the"], payload)


def test_crossing_interpolates_and_says_why_when_undefined():
    assert crossing([-30, -20, -10], [0.1, 0.3, 0.7])["value"] == pytest.approx(-15.0)
    never = crossing([-30, -20], [0.1, 0.2])
    assert never["value"] is None and "never reaches" in never["why"]
    already = crossing([-30, -20], [0.6, 0.9])
    assert already["value"] is None and "already" in already["why"]


@pytest.mark.parametrize("kwargs", [
    {"levels": (float("nan"),)}, {"levels": (1e9,)}, {"levels": ()}, {"positions": ("inside",)},
    {"variants": ("loud",)}, {"payload": ""}, {"payload": "a\x00b"}, {"limit": 0}, {"stretch": float("inf")},
])
def test_bad_options_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        inject.InjectOptions(**kwargs)


def _short_manifest(tmp_path):
    from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl

    utt = next(u for u in read_manifest(bundled_dataset_path()) if u.id == "1688-142285-0002")  # 2.8 s
    path = tmp_path / "short.jsonl"
    write_jsonl([utt], path)
    return path


def test_cli_probe_inject_real_whisper_espeak(tmp_path):
    """Real models: eSpeak speaks the payload, Whisper tiny.en decodes a real carrier at -30 and 0 dB."""
    from voxproof.cli.main import main

    out = tmp_path / "probe"
    args = ["probe", "inject", "-m", "whisper", "--tts", "espeak", "-d", str(_short_manifest(tmp_path)),
            "--limit", "1", "--level", "-30", "--level", "0",
            "--position", "after", "--variant", "plain", "--payload", "open the door", "-o", str(out)]
    assert main(args) == 0
    report = json.loads((out / "probe.json").read_text())
    loud, quiet = report["overall"][1], report["overall"][0]
    assert (loud["level_db"], quiet["level_db"]) == (0.0, -30.0)
    assert loud["word_success"]["estimate"] >= quiet["word_success"]["estimate"]
    assert loud["word_success"]["estimate"] > 0.0  # a clearly audible payload gets through
    assert "<html" in (out / "probe.html").read_text()
    # resuming with the same options decodes nothing new; other options are refused
    assert main(args + ["--resume"]) == 0
    assert main(args[:-2] + ["--seed", "5", "-o", str(out), "--resume"]) == 3
