"""Codecs (ffmpeg, SoX for AMR-NB), telephone channel, reverberation (measured and simulated rooms),
tempo, clipping, gain: on real LibriSpeech speech (CC BY 4.0) and the bundled RIRs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxproof.audio.features import signal_features
from voxproof.audio.io import load_audio
from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.perturb import Condition, PerturbationUnavailable, parse_chain
from voxproof.perturb import codec as codec_mod
from voxproof.perturb.reverb import estimate_rt60, simulated_rir


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> Audio:
    # a 4.3 s utterance keeps the codec round trips quick
    return load_audio(shared_data / "librispeech-test-other-mini" / "audio" / "1688-142285-0003.flac")


def _apply(text: str, audio: Audio, seed: int = 0) -> Audio:
    return Condition.from_chain(parse_chain(text)).apply(audio, seed)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation at zero lag (1.0 = same waveform up to a gain)."""
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


@pytest.mark.parametrize("text, min_similarity", [
    ("codec:mp3,bitrate=32k", 0.8), ("codec:mp3,bitrate=8k", 0.5), ("codec:opus,bitrate=16k", 0.5),
    ("codec:opus,bitrate=6k", 0.2), ("codec:mulaw", 0.9), ("codec:alaw", 0.9), ("codec:gsm", 0.6),
    ("codec:g722", 0.9), ("codec:amr-nb,bitrate=12.2k", 0.4),
])
def test_codec_round_trip_keeps_length_timing_and_is_deterministic(speech: Audio, text: str,
                                                                    min_similarity: float) -> None:
    cond = Condition.from_chain(parse_chain(text))
    if cond.unavailable_reason() is not None:
        with pytest.raises(PerturbationUnavailable, match="install"):
            cond.apply(speech, 0)
        pytest.skip(cond.unavailable_reason())
    out = cond.apply(speech, 0)
    assert len(out.samples) == len(speech.samples) and out.sample_rate == speech.sample_rate
    # aligned (codec delay removed) and still the same speech
    assert _similarity(out.samples, speech.samples) > min_similarity
    assert not np.array_equal(out.samples, speech.samples)
    assert cond.apply(speech, 0).samples.tobytes() == out.samples.tobytes()


def test_lower_bitrate_loses_more_of_the_signal(speech: Audio) -> None:
    def err(text: str) -> float:
        out = _apply(text, speech)
        return float(np.mean((out.samples - speech.samples) ** 2))

    assert err("codec:mp3,bitrate=8k") > err("codec:mp3,bitrate=32k")
    assert err("codec:opus,bitrate=6k") > err("codec:opus,bitrate=16k")


def test_amr_nb_is_available_through_sox_on_this_machine(speech: Audio) -> None:
    # Debian's ffmpeg has no AMR-NB encoder; SoX + libopencore-amrnb provides it here
    assert "libopencore_amrnb" not in codec_mod.ffmpeg_encoders()
    assert codec_mod.codec_unavailable_reason("amr-nb") is None
    hi = _apply("codec:amr-nb,bitrate=12.2k", speech)
    lo = _apply("codec:amr-nb,bitrate=4.75k", speech)
    assert hi.samples.tobytes() != lo.samples.tobytes()
    assert signal_features(hi, vad=False)["bandwidth_hz"] < 4100


def test_missing_encoder_is_a_typed_unavailable_error(speech: Audio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_mod, "ffmpeg_encoders", lambda: frozenset({"pcm_mulaw"}))
    cond = Condition.from_chain(parse_chain("codec:opus,bitrate=8k"))
    assert "libopus" in (cond.unavailable_reason() or "")
    with pytest.raises(PerturbationUnavailable, match="libopus"):
        cond.apply(speech, 0)


@pytest.mark.parametrize("codec", ["mulaw", "gsm", "amr-nb", "none"])
def test_telephone_channel_is_narrowband(speech: Audio, codec: str) -> None:
    out = _apply(f"telephone:{codec}", speech)
    assert len(out.samples) == len(speech.samples)
    bw = signal_features(out, vad=False)["bandwidth_hz"]
    assert 3000 <= bw <= 4000
    assert signal_features(speech, vad=False)["bandwidth_hz"] > 7000


def test_measured_rirs_reverberate_and_keep_level_and_length(speech: Audio) -> None:
    dry = signal_features(speech, vad=False)
    for name in ("rir_clap", "medium_hall"):
        wet = _apply(f"reverb:{name}", speech)
        assert len(wet.samples) == len(speech.samples)
        change = signal_features(wet, vad=False)["rms_dbfs"] - dry["rms_dbfs"]
        # same RMS, unless the whole output had to be scaled down to stay below full scale
        assert abs(change) < 0.1 or (change < 0 and np.max(np.abs(wet.samples)) == pytest.approx(0.99, abs=1e-3))
        assert _similarity(wet.samples, speech.samples) < 0.9
    with pytest.raises(UsageError, match="rir_clap"):
        _apply("reverb:nosuchroom", speech)
    assert Condition.from_chain(parse_chain("reverb:medium_hall")).severity == pytest.approx(2.2, abs=0.1)


@pytest.mark.parametrize("rt60", [0.3, 0.6, 0.9])
def test_simulated_room_has_the_requested_rt60(rt60: float) -> None:
    h = simulated_rir(rt60, "6x5x3", 0, 16000)
    assert estimate_rt60(h, 16000) == pytest.approx(rt60, rel=0.25)


def test_tempo_keeps_pitch_and_changes_duration(speech: Audio) -> None:
    out = _apply("tempo:1.25", speech)
    assert out.duration == pytest.approx(speech.duration / 1.25, abs=0.05)

    def centroid(a: Audio) -> float:
        """Power-weighted mean frequency below 4 kHz, where voiced speech dominates the recording noise."""
        power = np.abs(np.fft.rfft(a.samples)) ** 2
        freqs = np.fft.rfftfreq(len(a.samples), 1 / a.sample_rate)
        band = freqs < 4000
        return float(np.sum(power[band] * freqs[band]) / np.sum(power[band]))

    sped = _apply("speed:1.25", speech)
    # speed moves the spectrum up by the factor; tempo keeps it close to the original
    assert abs(centroid(out) / centroid(speech) - 1) < 0.1
    assert centroid(sped) / centroid(speech) > 1.15


def test_clip_and_gain_do_what_they_say(speech: Audio) -> None:
    clipped = _apply("clip:0.05", speech)
    assert signal_features(clipped, vad=False)["clipping_ratio"] == pytest.approx(0.05, abs=0.005)
    assert signal_features(speech, vad=False)["clipping_ratio"] < 0.001
    quiet = _apply("gain:-20", speech)
    assert (signal_features(quiet, vad=False)["rms_dbfs"] - signal_features(speech, vad=False)["rms_dbfs"]
            == pytest.approx(-20, abs=0.01))


def test_user_rir_folder(tmp_path: Path, shared_data: Path, speech: Audio) -> None:
    import shutil

    shutil.copy(shared_data / "rir" / "rir_clap.wav", tmp_path / "myroom.wav")  # 44.1 kHz, resampled on load
    wet = _apply(f"reverb:myroom,dir={tmp_path}", speech)
    assert len(wet.samples) == len(speech.samples)
    assert wet.samples.tobytes() == _apply(f"reverb:dir={tmp_path}", speech, seed=5).samples.tobytes()
    assert Condition.from_chain(parse_chain(f"reverb:myroom,dir={tmp_path}")).severity == pytest.approx(0.64, abs=0.1)
