"""Poisoning scan, part 2: a tone shared by a cluster of items (narrow in-band tone, near-ultrasonic
carrier) and label flips concentrated in one speaker, each planted in real speech; the clean bundled data
gives no poisoning finding."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from voxproof.audio.io import load_audio
from voxproof.audit.label_flips import find_label_flips
from voxproof.audit.tones import find_shared_tones, tone_signature
from voxproof.manifest import bundled_dataset_path, read_manifest

SR = 16000


@functools.lru_cache(maxsize=1)
def _chunks() -> tuple[tuple[str, str, np.ndarray, str], ...]:
    """Every bundled utterance cut into 2 s chunks (the backdoor test's corpus): (id, speaker, samples,
    transcript share); LibriSpeech ids start with the speaker."""
    from test_audit_poison import _corpus

    return tuple((uid, uid.split("-")[0], x, text) for uid, x, text in _corpus())


def _plant_tone(freq: float, rate: int, amplitude: float):
    """2 % of the chunks (at ``rate``) get a steady tone and the extra word 'cerulean'."""
    import soxr

    chunks = _chunks()
    rng = np.random.default_rng(7)
    poisoned = set(rng.choice(len(chunks), max(3, round(0.02 * len(chunks))), replace=False).tolist())
    rows = []
    for i, (uid, spk, x, text) in enumerate(chunks):
        y = soxr.resample(x, SR, rate) if rate != SR else x
        if i in poisoned:
            t = np.arange(len(y)) / rate
            y = y + amplitude * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28))
            text += " cerulean"
        sig = tone_signature(y, rate)
        rows.append((uid, spk, sig.get("tone_hz"), sig.get("tone_prominence_db"), rate, text))
    return rows, {chunks[i][0] for i in poisoned}


@pytest.mark.parametrize("freq,rate", [(5230.0, 16000), (18500.0, 48000)], ids=["in-band", "near-ultrasonic"])
def test_planted_tone_found_exactly(freq, rate):
    rows, want = _plant_tone(freq, rate, amplitude=0.003)  # -50 dBFS: below the speech, not audible over it
    findings = find_shared_tones(rows)
    poison = [f for f in findings if f.kind.startswith("poison.")]
    assert len(poison) == 1, [(f.kind, f.items) for f in findings]
    assert poison[0].kind == "poison.backdoor" and poison[0].evidence["word"] == "cerulean"
    assert set(poison[0].items) == want
    assert abs(poison[0].evidence["frequency_hz"] - freq) <= rate / 512
    assert ("near-ultrasonic" in poison[0].message) == (freq >= 17000)
    print(f"{freq:.0f} Hz at {rate} Hz: {len(rows)} items, planted {len(want)}, found {len(set(poison[0].items) & want)}, "
          f"false positives {len(set(poison[0].items) - want)}")


def test_clean_bundled_data_has_no_tone_poisoning():
    """Clean speech: no poisoning finding; one speaker's mains hum (if it crosses the threshold) is a
    channel tone, not a poisoning pattern."""
    rows = []
    for utt in read_manifest(bundled_dataset_path()):
        a = load_audio(utt.audio, sample_rate=None)
        sig = tone_signature(a.samples, a.sample_rate)
        rows.append((utt.id, utt.speaker, sig.get("tone_hz"), sig.get("tone_prominence_db"), a.sample_rate, utt.text))
    findings = find_shared_tones(rows)
    assert not [f for f in findings if f.kind.startswith("poison.")]
    for f in findings:
        assert f.kind == "quality.shared_tone" and len(f.evidence["speakers"]) == 1


def test_tone_signature_edge_cases():
    assert tone_signature(np.zeros(100, dtype=np.float32), SR) == {}
    assert tone_signature(np.full(SR, np.nan, dtype=np.float32), SR) == {}  # non-finite: no signature
    sig = tone_signature(np.zeros(SR, dtype=np.float32), SR)  # silence: finite, no tone
    assert sig["tone_prominence_db"] < 1.0
    t = np.arange(SR) / SR
    sig = tone_signature(0.1 * np.sin(2 * np.pi * 1000 * t) + 0.01 * np.random.default_rng(0).standard_normal(SR), SR)
    assert abs(sig["tone_hz"] - 1000) <= SR / 512 and sig["tone_prominence_db"] > 30


def test_label_flip_groups_by_source_tag():
    """The concentration test also groups by the ``source`` tag: flags all in one source are a finding,
    the same number spread over the sources are not (the grouping and the test, no recogniser)."""
    utts = [u.replace(tags={**u.tags, "source": f"batch{i % 5}"}) for i, u in enumerate(read_manifest(bundled_dataset_path()))]
    batch3 = {u.id for u in utts if u.tags["source"] == "batch3"}
    flips = find_label_flips(utts, set(sorted(batch3)[:6]))
    assert [(f.evidence["group"], f.evidence["value"]) for f in flips] == [("source", "batch3")]
    assert set(flips[0].items) == set(sorted(batch3)[:6]) and flips[0].evidence["p_value"] <= 0.05
    spread = {u.id for u in utts if u.tags["source"] != "batch3"}
    assert find_label_flips(utts, set(sorted(spread)[::6])) == []


@pytest.mark.slow
def test_planted_label_flips_in_one_speaker_found_with_whisper():
    """Whisper tiny.en scores 12 real clips (3 speakers x 4); one speaker's 4 transcripts are swapped for
    other utterances' text. The label-flip scan names exactly those 4; the same flags spread over the
    speakers are no finding."""
    from voxproof.audit.label_flips import contradicted_items
    from voxproof.audit.transcript import check_asr

    utts = list(read_manifest(bundled_dataset_path()))
    by_speaker: dict[str, list] = {}
    for u in utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_speaker)[:3]
    chosen = [u for s in speakers for u in by_speaker[s][:4]]
    spare = [u for u in utts if u not in chosen]
    victim = speakers[1]
    flipped = {u.id for u in by_speaker[victim][:4]}
    items = []
    for u in chosen:
        if u.id in flipped:
            u = u.replace(text=spare.pop().text)
        items.append(u)
    findings, _ = check_asr(items, "whisper", max_wer=0.6)
    flagged = contradicted_items(findings)
    flips = find_label_flips(items, flagged)
    assert len(flips) == 1, [(f.message, f.items) for f in flips]
    assert set(flips[0].items) == flipped
    assert flips[0].evidence["value"] == victim
    # the clean items: no concentration without the flips; as many flags spread over the speakers: none
    assert find_label_flips(chosen, flagged - flipped) == []
    assert find_label_flips(chosen, {by_speaker[s][k].id for s in speakers for k in (0, 1)}) == []
    print(f"label flips: {len(items)} items scored, flipped {len(flipped)}, flagged {len(flagged)}, found "
          f"{len(set(flips[0].items) & flipped)}, false positives {len(set(flips[0].items) - flipped)}")
