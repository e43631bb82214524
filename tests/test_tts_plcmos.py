"""PLCMOS v2 (speechmos' packet-loss-concealment MOS predictor, offline ONNX) through voxproof: equal to
speechmos' own averaging over the same rater embeddings, reproducible, lower on real speech with lost
packets, and calibrated against (SIMULATED) listeners like DNSMOS is. Real bundled LibriSpeech audio,
cut to 1.5 s; 13 PLCMOS calls in all (about 3 s on a loaded machine)."""

from __future__ import annotations

import numpy as np
import pytest

CLIPS = ("367-130732-0000", "1688-142285-0002", "1998-15444-0000", "3080-5032-0000")
FRAME = 320  # 20 ms at 16 kHz: one lost packet


@pytest.fixture(scope="module")
def predictor():
    from voxproof.tts.mos import DnsmosPredictor, MosOptions

    return DnsmosPredictor(MosOptions(plcmos=True))


@pytest.fixture(scope="module")
def speech():
    import soundfile as sf

    from voxproof.manifest.bundled import bundled_dataset_path

    out = []
    for cid in CLIPS:
        x, sr = sf.read(str(bundled_dataset_path() / "audio" / f"{cid}.flac"), dtype="float32")
        assert sr == 16000
        out.append(x[: 3 * sr // 2])
    return out


SHARE = {"clean": 0.0, "loss10": 0.1, "loss30": 0.3}


@pytest.fixture(scope="module")
def scored(predictor, speech):
    """PLCMOS of every clip at 0 / 10 / 30 % lost packets: {condition: [score per clip]}."""
    return {s: [predictor.plcmos(_lose(x, share, 10 + k)) for k, x in enumerate(speech)] for s, share in SHARE.items()}


def _lose(x: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Zero a random ``share`` of 20 ms frames (packet loss without concealment)."""
    y = x.copy()
    rng = np.random.default_rng(seed)
    for i in range(0, y.size - FRAME, FRAME):
        if rng.random() < share:
            y[i:i + FRAME] = 0.0
    return y


def test_equals_speechmos_with_the_same_raters_and_is_reproducible(predictor, speech, monkeypatch):
    import speechmos.plcmos as sp

    from voxproof.tts.mos import PLCMOS_ROUNDS

    x = speech[0]
    ours = predictor.plcmos(x)
    assert predictor.plcmos(x) == ours  # fixed rater embeddings: the same clip, the same score
    raters = iter(np.random.default_rng(predictor.options.plcmos_seed).normal(size=(PLCMOS_ROUNDS, 64)))
    monkeypatch.setattr(sp.np.random, "normal", lambda size: next(raters).reshape(size))
    theirs = sp.PLCMOS().get_mos(x)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert 1.0 < ours < 5.0
    info = predictor.info()["plcmos"]
    assert info["model"] == "plcmos_v2.onnx" and len(info["model_checksum"]) == 16


def test_plcmos_drops_with_packet_loss(scored):
    from voxproof.tts.mos import MosScore

    clean = scored["clean"]
    for c, mid, lo in zip(clean, scored["loss10"], scored["loss30"]):
        assert c > mid > lo and c - lo > 1.0, scored  # 30 % lost packets: measured drop 2.1-2.8 points
    score = MosScore(3.0, 3.5, 2.9, 3.4, 16000, 2.0, plcmos=clean[0])
    assert score.features()["mos_plcmos"] == clean[0]
    assert "mos_plcmos" not in MosScore(3.0, 3.5, 2.9, 3.4, 16000, 2.0).features()


def test_plcmos_needs_the_mos_predictors(tmp_path, capsys):
    from voxproof.cli.main import main
    from voxproof.tts.evaluate import TtsEvalOptions

    with pytest.raises(ValueError, match="plcmos"):
        TtsEvalOptions(mos=False, plcmos=True)
    assert main(["tts-eval", "-m", "espeak", "--no-mos", "--plcmos", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "plcmos" in err.lower() and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_calibration_reports_plcmos_against_listeners(scored):
    """Three 'systems' = the same real clips with 0 / 10 / 30 % packet loss; SIMULATED listeners hear
    them as 4.3 / 3.2 / 1.8. Real PLCMOS scores go into the design, and the calibration ranks it."""
    from voxproof.listen.answers import AnswersRead, parse_answers
    from voxproof.listen.calibration import calibrate
    from voxproof.listen.design import Clip, Design, Item, ListenOptions
    from voxproof.listen.render import result_lines
    from voxproof.listen.score import score_listening
    from voxproof.listen.simulate import simulate_listeners

    quality = {"clean": 4.3, "loss10": 3.2, "loss30": 1.8}
    clips, items = [], []
    for s in sorted(quality):
        for k, plc in enumerate(scored[s]):
            clips.append(Clip(s, f"p{k}", f"/nonexistent/{s}/{k}.wav", "", {"mos_plcmos": plc}))
            items.append(Item(f"q{len(items) + 1:03d}", "acr", (len(clips) - 1,)))
    items.append(Item("q999", "acr-check", (0,), 1, (True,)))
    design = Design("p" * 64, tuple(sorted(quality)), tuple(clips), tuple(items), ListenOptions(modes=("acr",)), ())
    files = simulate_listeners(design, quality, 5, seed=2)
    read = AnswersRead(tuple(parse_answers(f, design, f"sim{k}") for k, f in enumerate(files)))
    result = score_listening(design, read, n_resamples=200, seed=0)
    calib = calibrate(design, result, n_resamples=200, seed=0)
    (cal,) = calib.predictors
    assert cal.predictor == "mos_plcmos" and cal.n_clips == 12
    assert cal.spearman.estimate > 0.5 and all(p["same_order"] for p in cal.pairs)
    assert cal.verdict in ("trusted", "weak"), cal.why
    text = "\n".join(result_lines(result, calib))
    assert "mos_plcmos" in text
