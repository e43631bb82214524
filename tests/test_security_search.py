"""Black-box search: budgets hold, the ES climbs a black-box objective, resume continues bit-identically,
bad options are usage errors, and a tiny real run against Whisper tiny.en through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from voxproof.errors import RunError, UsageError
from voxproof.security import search as S

SR = 16000
REF = "one two three four five six seven eight nine ten"


def _clip(uid: str, seed: int) -> S.Clip:
    t = np.arange(int(1.0 * SR)) / SR
    x = (0.2 * np.sin(2 * np.pi * (150 + 10 * seed) * t)).astype(np.float32)
    return S.Clip(uid, f"spk{seed}", REF, tuple(REF.split()), x)


def _fake_model(samples: np.ndarray) -> str:
    """A black box that drops words as more of the input's power lies above 3 kHz."""
    spec = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SR)
    frac = float(spec[freqs > 3000].sum() / spec.sum())
    words = REF.split()
    keep = max(0, len(words) - round(len(words) * min(1.0, 40 * frac)))
    return " ".join(words[:keep])


def _norm(text: str) -> str:
    return text.lower()


@pytest.mark.parametrize("placement", ["additive", "prefix"])
def test_perturbation_respects_snr_and_linf(placement):
    opts = S.SearchOptions(placement=placement, snr_db=10.0, linf=0.02)
    speech = _clip("a", 0).samples
    shaper = S.Shaper(opts)
    tile = shaper.tile(np.random.default_rng(0).standard_normal(shaper.dim))
    out = apply = S.apply_perturbation(speech, tile, opts)
    d = (apply - speech) if placement == "additive" else apply[: len(tile)]
    assert np.max(np.abs(d)) <= 0.02 + 1e-6
    snr = 10 * math.log10(np.mean(speech.astype(float) ** 2) / np.mean(d.astype(float) ** 2))
    assert snr >= 10.0 - 0.05
    assert len(out) == len(speech) + (len(tile) if placement == "prefix" else 0)


def test_es_climbs_a_black_box_objective_and_resumes_identically(tmp_path):
    opts = S.SearchOptions(objective="deletions", snr_db=15.0, linf=0.5, query_budget=64, population=4, train=2,
                           bands=8, frames=2, seed=3)
    clips = [_clip("a", 0), _clip("b", 1)]
    full = S.Search(opts, clips, _fake_model, _norm, tmp_path / "full.json").run()
    assert full["queries"] <= 64 and full["generation"] >= 5
    assert full["fitness"] > full["history"][0]["fitness"]  # the ES found a more damaging shape
    assert [h["fitness"] for h in full["history"]] == sorted(h["fitness"] for h in full["history"])  # elitist

    # interrupted after 2 generations, then resumed from the state file: same end state
    calls = {"n": 0}

    def dying(samples):
        calls["n"] += 1
        if calls["n"] > 2 + 2 * 4 * 2:
            raise KeyboardInterrupt
        return _fake_model(samples)

    path = tmp_path / "resumed.json"
    with pytest.raises(KeyboardInterrupt):
        S.Search(opts, clips, dying, _norm, path).run()
    resumed = S.Search(opts, clips, _fake_model, _norm, path).run()
    assert resumed["theta"] == full["theta"] and resumed["queries"] == full["queries"]
    # a state made with other options is refused
    with pytest.raises(RunError):
        S.Search(S.SearchOptions(objective="deletions", query_budget=64, train=2, seed=4), clips, _fake_model, _norm,
                 path)


@pytest.mark.parametrize("kwargs", [{"snr_db": float("nan")}, {"linf": 0.0}, {"query_budget": 3},
                                    {"population": 10**6}, {"tile_s": float("inf")}, {"objective": "x"}])
def test_bad_search_options_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        S.SearchOptions(**kwargs)


@pytest.mark.slow
def test_cli_probe_search_real_whisper(tmp_path):
    from voxproof.cli.main import main

    out = tmp_path / "search"
    args = ["probe", "search", "--queries", "6", "--population", "1", "--train", "2", "--heldout", "2",
            "--max-seconds", "3.5", "-o", str(out)]
    assert main(args) == 0
    report = json.loads((out / "probe.json").read_text())
    assert report["queries_used"] <= 6 and report["curve"][0]["queries"] == 0
    assert report["clean"]["n_rows"] == 2 and report["random_noise"]["n_rows"] == 4
    assert report["curve"][-1]["wer"]["estimate"] is not None
    assert main(args + ["--resume"]) == 0  # nothing left to do; same report
    assert main(args[:-2] + ["--snr", "20", "-o", str(out), "--resume"]) == 3
