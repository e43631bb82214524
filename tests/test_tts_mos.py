"""DNSMOS through voxproof equals ``speechmos.dnsmos.run`` on the same audio; headroom and domain
warnings are applied as documented."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.audio.signal import Audio

pytestmark = pytest.mark.slow  # first DNSMOS call compiles numba code (~15 s cold)

CLIP = "librispeech-test-other-mini/audio/1688-142285-0002.flac"


@pytest.fixture(scope="module")
def predictor():
    from voxproof.tts.mos import DnsmosPredictor

    return DnsmosPredictor()


@pytest.fixture(scope="module")
def real(shared_data):
    import soundfile as sf

    x, sr = sf.read(str(shared_data / CLIP), dtype="float32")
    return Audio(x, sr)


def _direct(samples: np.ndarray) -> dict[str, float]:
    from speechmos import dnsmos

    r = dnsmos.run(samples, 16000)
    return {"sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]), "ovrl": float(r["ovrl_mos"]),
            "p808": float(r["p808_mos"])}


def _ours(score) -> dict[str, float]:
    return {"sig": score.sig, "bak": score.bak, "ovrl": score.ovrl, "p808": score.p808}


def test_equals_speechmos_on_real_16k_speech(predictor, real):
    score = predictor.score(real, speech_seconds=real.duration)
    assert _ours(score) == _direct(real.samples)
    assert score.warnings == () and score.gain_db == 0.0
    assert 1.0 < score.ovrl < 5.0 and 1.0 < score.p808 < 5.0
    info = predictor.info()
    assert info["name"] == "dnsmos" and info["version"].startswith("speechmos ")
    assert len(info["model_checksum"]) == 16


def test_equals_speechmos_on_resampled_synthetic_speech(predictor):
    """Piper speaks at 22.05 kHz: our score equals speechmos on the soxr-HQ 16 kHz resampling
    (scaled to peak 1 when resampling overshoots full scale, as documented)."""
    import soxr

    from voxproof.backends import load_backend

    audio = load_backend("piper", kind="tts").synthesize("The bus ticket costs three dollars fifty.")
    assert audio.sample_rate == 22050
    x16 = soxr.resample(audio.samples, 22050, 16000, "HQ").astype(np.float32)
    peak = float(np.max(np.abs(x16)))
    if peak > 1.0:
        x16 = np.clip(x16 / peak, -1.0, 1.0)
    score = predictor.score(audio)
    assert _ours(score) == _direct(x16)
    assert (score.gain_db < 0) == (peak > 1.0)


def test_headroom_and_domain_warnings(predictor, real):
    loud = Audio((real.samples / np.max(np.abs(real.samples)) * 1.5).astype(np.float32), 16000)
    score = predictor.score(loud)
    assert score.gain_db == pytest.approx(-20 * np.log10(1.5), abs=1e-3)
    assert any("scaled" in w for w in score.warnings)
    assert _ours(score) == _direct(np.clip(loud.samples / np.max(np.abs(loud.samples)), -1, 1))
    narrow = predictor.score(real.resampled(8000), speech_seconds=0.0, language="de")
    text = " ".join(narrow.warnings)
    assert "upsampled from 8000 Hz" in text and "little or no speech" in text and "language 'de'" in text
    short = predictor.score(Audio(real.samples[:8000], 16000))
    assert any("tiled" in w for w in short.warnings)
    assert predictor.score(Audio(np.zeros(0, dtype=np.float32), 16000)) is None


def test_score_with_plcmos_adds_it_to_the_dnsmos_figures(predictor, real, monkeypatch):
    """``MosOptions(plcmos=True)``: the same DNSMOS numbers plus PLCMOS on the same prepared samples;
    a clip over PLCMOS' length limit keeps its DNSMOS figures and says why PLCMOS is missing."""
    from voxproof.tts import mos as mos_module
    from voxproof.tts.mos import DnsmosPredictor, MosOptions

    both = DnsmosPredictor(MosOptions(plcmos=True))
    score = both.score(real, speech_seconds=real.duration)
    assert _ours(score) == _ours(predictor.score(real, speech_seconds=real.duration))
    assert score.plcmos == both.plcmos(real.samples) and 1.0 < score.plcmos < 5.0
    assert score.features()["mos_plcmos"] == score.plcmos
    assert both.info()["plcmos"]["model"] == "plcmos_v2.onnx" and "plcmos" not in predictor.info()
    monkeypatch.setattr(mos_module, "PLCMOS_MAX_SECONDS", 1.0)
    long = both.score(real, speech_seconds=real.duration)
    assert long.plcmos is None and "mos_plcmos" not in long.features()
    assert _ours(long) == _ours(score) and any("PLCMOS not run" in w for w in long.warnings)
