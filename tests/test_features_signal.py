"""Signal features on real recordings: LibriSpeech (16 kHz, CC BY 4.0), Free Spoken Digit Dataset
(8 kHz, CC BY-SA 4.0), AMI (CC BY 4.0), and the bundled Speech Commands noise (CC BY 4.0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxproof.audio.features import FEATURE_NAMES, signal_features
from voxproof.audio.io import load_audio
from voxproof.audio.signal import Audio
from voxproof.perturb import AddNoise
from voxproof.perturb.condition import step_rng
from voxproof.perturb.noise import bundled_dir


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> Audio:
    return load_audio(shared_data / "librispeech-test-other-mini" / "audio" / "2033-164914-0002.flac")


def test_every_feature_is_present_and_plain(speech: Audio) -> None:
    f = signal_features(speech)
    assert set(f) == set(FEATURE_NAMES)
    assert all(v is None or isinstance(v, float) for v in f.values())
    assert f["duration_s"] == pytest.approx(speech.duration)
    assert -40 < f["rms_dbfs"] < -10 and f["peak_dbfs"] <= 0
    assert f["rms_dbfs"] < f["loudness_db"]  # gating drops the pauses
    assert abs(f["dc_offset"]) < 0.01
    assert 0.3 < f["speech_ratio"] < 1.0
    assert f["clipping_ratio"] == 0.0


def test_8khz_recording_upsampled_reads_about_4khz_bandwidth(shared_data: Path, speech: Audio) -> None:
    files = sorted((shared_data / "fsdd-digits" / "audio").glob("*.wav"))[:5]
    for path in files:
        narrow = load_audio(path)
        assert narrow.sample_rate == 8000
        up = narrow.resampled(16000)
        assert 3500 <= signal_features(up, vad=False)["bandwidth_hz"] <= 4000
    assert signal_features(speech, vad=False)["bandwidth_hz"] >= 7500


def test_snr_estimate_falls_with_the_mixing_snr(speech: Audio) -> None:
    estimates = []
    for snr in (30.0, 20.0, 10.0, 5.0, 0.0):
        noisy = AddNoise(snr=snr).apply(speech, step_rng(11, 0))
        estimates.append(signal_features(noisy, vad=False)["snr_db"])
    assert all(a > b for a, b in zip(estimates, estimates[1:]))
    # active-speech SNR: at or a few dB above the whole-utterance mixing target
    for target, est in zip((10.0, 5.0, 0.0), estimates[2:]):
        assert target - 1 <= est <= target + 8


def test_silence_and_noise_have_almost_no_speech() -> None:
    noise = load_audio(bundled_dir("noise") / "running_tap.flac")
    tap = Audio(noise.samples[: 16000 * 5], 16000)
    assert signal_features(tap)["speech_ratio"] < 0.2
    silent = signal_features(Audio(np.zeros(16000, dtype=np.float32), 16000))
    assert silent["speech_ratio"] == 0.0 and silent["snr_db"] is None and silent["loudness_db"] is None
    empty = signal_features(Audio(np.zeros(0, dtype=np.float32), 16000))
    assert empty["duration_s"] == 0.0 and empty["rms_dbfs"] is None


def test_vad_off_skips_only_the_speech_ratio(speech: Audio) -> None:
    with_vad = signal_features(speech)
    without = signal_features(speech, vad=False)
    assert without["speech_ratio"] is None
    assert {k: v for k, v in with_vad.items() if k != "speech_ratio"} == {
        k: v for k, v in without.items() if k != "speech_ratio"}
    assert signal_features(speech) == with_vad  # no state carried between calls


def test_clipping_ratio_sees_plateaus_even_after_attenuation(speech: Audio) -> None:
    x = speech.samples / np.max(np.abs(speech.samples))
    t = np.quantile(np.abs(x), 0.98)
    clipped = np.clip(x / t, -1, 1) * 0.5  # clipped, then turned down
    assert signal_features(Audio(clipped.astype(np.float32), 16000), vad=False)["clipping_ratio"] == pytest.approx(
        0.02, abs=0.003)


def test_ami_meeting_audio_is_quieter_than_read_speech(shared_data: Path, speech: Audio) -> None:
    ami = load_audio(next((shared_data / "ami-excerpt" / "audio").iterdir()))
    assert signal_features(ami, vad=False)["rms_dbfs"] < signal_features(speech, vad=False)["rms_dbfs"]


def test_welch_psd_equals_scipy_welch_and_gives_the_same_bandwidth() -> None:
    """The vectorised Welch estimate (it runs for every served request) against scipy's on the bundled
    clips, resampled to 8 kHz and 44.1 kHz too, plus odd segment lengths and the bundled noise."""
    from scipy.signal import welch

    from voxproof.audio.features import bandwidth_hz, welch_psd
    from voxproof.manifest.bundled import bundled_dataset_path

    def scipy_bandwidth(x: np.ndarray, rate: int) -> float | None:
        from voxproof.audio import features

        fast = features.welch_psd
        features.welch_psd = lambda y, fs, n: welch(y, fs, nperseg=n)
        try:
            return bandwidth_hz(x, rate)
        finally:
            features.welch_psd = fast

    clips = sorted((bundled_dataset_path() / "audio").glob("*.flac"))[:4] + sorted(bundled_dir("noise").glob("*.flac"))[:1]
    for i, path in enumerate(clips):
        audio = load_audio(path)
        for rate in (audio.sample_rate, 8000, 44100) if i == 0 else (audio.sample_rate,):
            x = np.asarray(audio.resampled(rate).samples, dtype=np.float64)[: 4 * rate]  # the scipy reference is slow
            for n in (512, 511, 256) if i == 0 and rate == audio.sample_rate else (512,):
                f_ref, p_ref = welch(x, rate, nperseg=n)
                f_new, p_new = welch_psd(x, rate, n)
                np.testing.assert_array_equal(f_new, f_ref)
                np.testing.assert_allclose(p_new, p_ref, rtol=1e-9, atol=1e-12 * float(p_ref.max()))
            assert bandwidth_hz(x, rate) == scipy_bandwidth(x, rate), (path.name, rate)
