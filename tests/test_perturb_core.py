"""Perturbation core: text syntax, serialisation, seeds, determinism, SNR accuracy, babble, durations.

Real speech: LibriSpeech test-other (CC BY 4.0) from ../shared/data; real noise: the bundled Speech
Commands recordings (CC BY 4.0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxproof.audio.io import load_audio
from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.manifest.utterance import Utterance
from voxproof.perturb import (
    AddNoise,
    Condition,
    PerturbationError,
    PerturbContext,
    condition_seed,
    get_suite,
    list_suites,
    parse_chain,
    perturbation_from_spec,
    resolve_conditions,
)
from voxproof.perturb.condition import step_rng
from voxproof.perturb.noise import bundled_dir

LS = "librispeech-test-other-mini"


@pytest.fixture(scope="module")
def speech(shared_data: Path) -> Audio:
    return load_audio(shared_data / LS / "audio" / "1688-142285-0000.flac")


@pytest.fixture(scope="module")
def utterances(shared_data: Path) -> list[Utterance]:
    files = sorted((shared_data / LS / "audio").glob("*.flac"))
    return [Utterance(id=f.stem, audio=str(f), speaker=f.stem.split("-")[0]) for f in files]


def _mixture_snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    """SNR measured from the output alone: project the mixture on the clean speech (undoes any overall
    scaling), call the rest noise."""
    c = clean.astype(np.float64)
    m = mixed.astype(np.float64)
    g = float(np.dot(m, c) / np.dot(c, c))
    noise = m - g * c
    return 10 * np.log10(np.sum((g * c) ** 2) / np.sum(noise**2))


# -- syntax and serialisation --------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "noise:snr=10", "noise:pink,snr=0", "noise:babble,snr=5,talkers=2", "codec:opus,bitrate=8k",
    "codec:mp3,bitrate=16k+noise:snr=20", "telephone:amr-nb,bitrate=4.75k", "loss:0.1,burst=3",
    "speed:0.9", "tempo:1.25", "gain:-30", "clip:0.05", "bandlimit:4000", "reverb:rir_clap", "room:0.6s",
])
def test_label_and_spec_round_trip(text: str) -> None:
    chain = parse_chain(text)
    cond = Condition.from_chain(chain)
    assert parse_chain(cond.label) == chain
    assert Condition.from_spec(cond.to_spec()) == cond
    assert tuple(perturbation_from_spec(s) for s in cond.chain_spec()) == chain


def test_units_and_synonyms_parse_to_the_same_perturbation() -> None:
    assert parse_chain("codec:opus,bitrate=8k") == parse_chain("codec:codec=opus,bitrate=8")
    assert parse_chain("loss:rate=5%")[0].rate == pytest.approx(0.05)
    assert parse_chain("gain:db=+6")[0].db == 6.0
    assert [p.kind for p in parse_chain("codec:mp3,bitrate=16k+noise:white,snr=20")] == ["codec", "noise"]


@pytest.mark.parametrize("text, fragment", [
    ("codec:aac", "mp3, opus"),
    ("noise:snr=loud", "must be a number"),
    ("noise:snr=500", "out of range"),
    ("codec:amr-nb,bitrate=9k", "12.2k"),
    ("wobble:1", "choose one of"),
    ("gain:db=1,colour=red", "unknown parameter"),
    ("noise:white,dir=/tmp", "only apply to recorded"),
])
def test_bad_specs_raise_usage_errors_naming_the_fix(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_chain(text)


def test_resolve_conditions_orders_dedupes_and_rejects_unknown_suites() -> None:
    conds = resolve_conditions(["noise-ladder"], ["noise:snr=10", "codec:opus,bitrate=8k"])
    names = [c.name for c in conds]
    assert names[:6] == [f"noise-ladder/snr={s}" for s in ("40", "30", "20", "10", "5", "0")]
    assert "noise:snr=10" not in names  # same chain as noise-ladder/snr=10: run once
    assert names[-1] == "codec:opus,bitrate=8k"
    assert "clean" not in names
    assert [c.severity for c in conds[:6]] == [40, 30, 20, 10, 5, 0]
    assert all(c.suite == "noise-ladder" and c.family == "noise" and c.worse == "lower" for c in conds[:6])
    with pytest.raises(UsageError, match="noise-ladder"):
        resolve_conditions(["nosuch"], [])
    with pytest.raises(UsageError, match="version"):
        resolve_conditions(["noise-ladder@7"], [])


def test_suites_are_versioned_with_unique_names_and_full_is_their_union() -> None:
    suites = {s.name: s for s in list_suites()}
    assert {"noise-ladder", "telephony", "rooms", "codecs", "full"} <= set(suites)
    full = [c.name for c in suites["full"].conditions]
    assert len(full) == len(set(full))
    others = [c.name for n, s in suites.items() if n != "full" for c in s.conditions]
    assert sorted(full) == sorted(others)
    assert get_suite("noise-ladder@1").ref == "noise-ladder@1"


# -- seeds and determinism ------------------------------------------------------------------------
def test_condition_seed_is_a_stable_hash() -> None:
    a = condition_seed(0, "utt-1", "noise-ladder/snr=10")
    assert a == condition_seed(0, "utt-1", "noise-ladder/snr=10")
    assert len({a, condition_seed(1, "utt-1", "noise-ladder/snr=10"), condition_seed(0, "utt-2", "noise-ladder/snr=10"),
                condition_seed(0, "utt-1", "noise-ladder/snr=5")}) == 4
    assert 0 <= a < 2**63
    # pinned value: the seed rule is part of the run's provenance and must not drift between versions
    assert a == condition_seed(0, "utt-1", "noise-ladder/snr=10") == _sha_seed(0, "utt-1", "noise-ladder/snr=10")


def _sha_seed(run_seed: int, utt: str, cond: str) -> int:
    import hashlib

    d = hashlib.sha256(f"voxproof-perturb\x00{run_seed}\x00{utt}\x00{cond}".encode()).digest()
    return int.from_bytes(d[:8], "big") >> 1


@pytest.mark.parametrize("text", [
    "noise:snr=10", "noise:white,snr=5", "noise:pink,snr=0", "loss:0.1,burst=2", "room:0.3s", "reverb",
])
def test_same_seed_same_bytes_different_seed_different_audio(speech: Audio, text: str) -> None:
    cond = Condition.from_chain(parse_chain(text))
    a = cond.apply(speech, 1234)
    b = cond.apply(speech, 1234)
    c = cond.apply(speech, 1235)
    d = cond.apply(speech, 99)
    assert a.samples.tobytes() == b.samples.tobytes()
    assert a.sample_rate == speech.sample_rate and a.samples.dtype == np.float32
    # reverb without rir= picks one of 5 RIRs by seed: two other seeds cannot both repeat the choice
    assert a.samples.tobytes() != c.samples.tobytes() or a.samples.tobytes() != d.samples.tobytes()


# -- SNR ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise_type", ["recorded", "white", "pink"])
@pytest.mark.parametrize("snr", [40.0, 20.0, 10.0, 5.0, 0.0])
def test_measured_snr_of_the_mixture_is_within_half_a_db(speech: Audio, noise_type: str, snr: float) -> None:
    out = AddNoise(type=noise_type, snr=snr).apply(speech, step_rng(7, 0))
    assert abs(_mixture_snr(speech.samples, out.samples) - snr) < 0.5
    assert np.max(np.abs(out.samples)) <= 0.99 + 1e-6


def test_low_snr_mixture_that_would_clip_is_scaled_down_keeping_the_snr(speech: Audio) -> None:
    loud = Audio(np.clip(speech.samples * 1.7, -1, 1).astype(np.float32), speech.sample_rate)
    out = AddNoise(type="white", snr=-5).apply(loud, step_rng(3, 0))
    assert np.max(np.abs(out.samples)) == pytest.approx(0.99, abs=1e-4)
    assert abs(_mixture_snr(loud.samples, out.samples) - (-5)) < 0.5


def test_user_noise_folder_is_used(tmp_path: Path, speech: Audio) -> None:
    shutil.copy(bundled_dir("noise") / "running_tap.flac", tmp_path / "tap.flac")
    p = parse_chain(f"noise:snr=10,dir={tmp_path}")[0]
    out = p.apply(speech, step_rng(1, 0))
    assert abs(_mixture_snr(speech.samples, out.samples) - 10) < 0.5
    with pytest.raises(UsageError, match="tap"):
        parse_chain(f"noise:snr=10,dir={tmp_path},file=missing")[0].apply(speech, step_rng(1, 0))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match="no audio files"):
        parse_chain(f"noise:snr=10,dir={empty}")[0].apply(speech, step_rng(1, 0))


# -- babble ---------------------------------------------------------------------------------------
def test_babble_uses_only_other_speakers_at_the_target_snr(utterances: list[Utterance]) -> None:
    loaded: list[str] = []

    def load(u: Utterance) -> Audio:
        loaded.append(u.id)
        return load_audio(u.audio)

    ctx = PerturbContext.from_utterances(utterances, load)
    current = utterances[0]
    clean = load_audio(current.audio)
    cond = Condition.from_chain(parse_chain("noise:babble,snr=5,talkers=4"))
    out = cond.apply(clean, condition_seed(0, current.id, cond.name), ctx.for_utterance(current))
    assert abs(_mixture_snr(clean.samples, out.samples) - 5) < 0.5
    speakers = {u.id: u.speaker for u in utterances}
    assert len(loaded) == 4
    assert all(speakers[i] != current.speaker for i in loaded)
    again = cond.apply(clean, condition_seed(0, current.id, cond.name), ctx.for_utterance(current))
    assert again.samples.tobytes() == out.samples.tobytes()


def test_babble_without_the_current_utterance_or_other_speakers_fails_clearly(utterances: list[Utterance]) -> None:
    ctx = PerturbContext.from_utterances(utterances, lambda u: load_audio(u.audio))
    clean = load_audio(utterances[0].audio)
    cond = Condition.from_chain(parse_chain("noise:babble,snr=5"))
    with pytest.raises(PerturbationError, match="for_utterance"):
        cond.apply(clean, 1, ctx)
    with pytest.raises(PerturbationError, match="PerturbContext"):
        cond.apply(clean, 1, None)
    one_speaker = [u for u in utterances if u.speaker == utterances[0].speaker]
    ctx1 = PerturbContext.from_utterances(one_speaker, lambda u: load_audio(u.audio))
    with pytest.raises(PerturbationError, match="other than"):
        cond.apply(clean, 1, ctx1.for_utterance(utterances[0]))


# -- durations (property tests) -------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(0, 150_000), length=st.integers(0, 40_000), seed=st.integers(0, 2**63 - 1),
    text=st.sampled_from(["noise:snr=10", "noise:pink,snr=0", "loss:0.2,burst=3", "loss:0.3,conceal=repeat",
                          "gain:-20", "clip:0.05", "bandlimit:2000", "reverb:rir_clap"]),
)
def test_length_preserving_perturbations_keep_the_length(speech: Audio, start: int, length: int, seed: int,
                                                         text: str) -> None:
    clip = Audio(speech.samples[start : start + length], speech.sample_rate)
    out = Condition.from_chain(parse_chain(text)).apply(clip, seed)
    assert len(out.samples) == len(clip.samples)
    assert out.sample_rate == clip.sample_rate
    assert np.all(np.isfinite(out.samples)) and np.max(np.abs(out.samples), initial=0) <= 1.0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(factor=st.floats(0.5, 2.0), length=st.integers(1600, 48_000))
def test_speed_divides_the_duration_by_the_factor(speech: Audio, factor: float, length: int) -> None:
    clip = Audio(speech.samples[:length], speech.sample_rate)
    out = Condition.from_chain(parse_chain(f"speed:{factor!r}")).apply(clip, 0)
    assert abs(out.duration - clip.duration / factor) <= 2.0 / clip.sample_rate


def test_packet_loss_rate_and_bursts_match_the_parameters() -> None:
    from voxproof.perturb import PacketLoss

    p = PacketLoss(rate=0.1, burst=3.0)
    lost = p.lost_frames(200_000, step_rng(5, 0))
    assert lost.mean() == pytest.approx(0.1, abs=0.01)
    edges = np.diff(np.concatenate([[0], lost.astype(int), [0]]))
    bursts = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert bursts.mean() == pytest.approx(3.0, rel=0.05)
