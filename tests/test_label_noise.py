"""Issue 19 part 4: label noise vs model error. A planted mini corpus from the bundled LibriSpeech clips
(swapped, truncated and partly wrong transcripts; hard but correct clips, one in loud tap noise), decoded
by Whisper tiny.en and PocketSphinx through ``check_asr``: the wrong transcripts are label noise, the hard
correct ones are not (the old rule, WER > 60 %, called the hard clean one label noise)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voxproof.audit.label_noise import (
    DEFAULT_SEVERITY,
    Decoded,
    LabelNoiseRule,
    judge,
    label_noise_evidence,
    longest_error_share,
    second_recogniser,
)
from voxproof.audit.transcript import check_asr
from voxproof.errors import UsageError
from voxproof.manifest import bundled_dataset_path, read_manifest
from voxproof.manifest.utterance import Utterance
from voxproof.metrics.normalize import get_normalizer


def _noisy(path: str, out: str, snr_db: float = 3.0) -> None:
    x, rate = sf.read(path, dtype="float32")
    noise, nrate = sf.read(str(bundled_dataset_path().parent / "noise" / "running_tap.flac"), dtype="float32")
    assert nrate == rate == 16000
    n = np.resize(noise, x.shape)
    gain = np.sqrt(np.mean(x ** 2) / (np.mean(n ** 2) * 10 ** (snr_db / 10)))
    sf.write(out, x + gain * n, rate)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-noise")
    by_id = {u.id: u for u in read_manifest(bundled_dataset_path())}

    def item(new_id: str, src: str, text: str, audio: str | None = None) -> Utterance:
        return Utterance(id=new_id, audio=audio or by_id[src].audio, text=text, speaker=by_id[src].speaker)

    words9 = by_id["1688-142285-0009"].text.split()
    words2 = by_id["1688-142285-0002"].text.split()
    _noisy(by_id["367-130732-0006"].audio, str(root / "noisy.wav"))
    utts = [
        item("swapped", "367-130732-0009", by_id["1688-142285-0008"].text),
        item("truncated", "1688-142285-0009", " ".join(words9[: len(words9) // 2])),
        item("partly_wrong", "1688-142285-0002",
             " ".join(words2[:3] + ["MARGARET", "SAID", "MISTER", "HALE"] + words2[7:])),
        item("hard", "367-130732-0006", by_id["367-130732-0006"].text),
        item("hard_in_noise", "367-130732-0006", by_id["367-130732-0006"].text, str(root / "noisy.wav")),
        item("easy", "1688-142285-0008", by_id["1688-142285-0008"].text),
    ]
    findings, stats = check_asr(utts, "whisper", second="sphinx", cache_path=root / "cache.sqlite")
    again, stats2 = check_asr(utts, "whisper", second="sphinx", cache_path=root / "cache.sqlite")
    return findings, stats, again, stats2


def test_wrong_transcripts_are_label_noise_and_hard_ones_are_not(audited):
    findings, stats, _, _ = audited
    noise = [f for f in findings if f.kind == "transcript.asr_disagreement"]
    assert sorted(f.items[0] for f in noise) == ["partly_wrong", "swapped", "truncated"]
    assert all(f.severity == DEFAULT_SEVERITY and len(f.evidence["reasons"]) >= 2 for f in noise)
    assert all(f.evidence["error_confidence"] >= 0.6 for f in noise)
    hard = [f for f in findings if f.kind == "transcript.asr_hard"]
    assert len(hard) == 1 and set(hard[0].items) <= {"hard", "hard_in_noise"} and hard[0].severity == "info"
    assert "hard" in hard[0].items  # WER 75 %: the old single-threshold rule called it label noise
    assert stats["second_recogniser"]["name"] == "sphinx" and stats["scored"] == 6
    assert stats["candidates"] >= 4  # 'easy' never reaches the second recogniser


def test_rerun_reads_every_transcript_from_the_cache(audited):
    findings, stats, again, stats2 = audited
    assert stats2["from_cache"] == stats["scored"] + stats["candidates"]
    assert [(f.kind, f.items) for f in again] == [(f.kind, f.items) for f in findings]


def test_evidence_and_rule_on_constructed_transcripts():
    norm = get_normalizer("whisper-en")
    ref = "the cat sat on the mat near the door of the house"
    # confident, one block of errors (a partly replaced transcript)
    sure = Decoded("the cat sat on a bright red carpet rug of the house",
                   tuple((w, 0.95) for w in ["the", "cat", "sat", "on", "a", "bright", "red", "carpet", "rug", "of", "the", "house"]))
    ev = label_noise_evidence(ref, sure, None, norm)
    assert ev["error_confidence"] == pytest.approx(0.95) and ev["error_block_share"] >= 0.35
    assert judge(ev, LabelNoiseRule())[0] is True
    # same words but unsure and scattered errors: a hard utterance
    unsure = Decoded("a cat sat in the mat near a door on the house",
                     tuple((w, 0.3) for w in ["a", "cat", "sat", "in", "the", "mat", "near", "a", "door", "on", "the", "house"]))
    ev2 = label_noise_evidence(ref, unsure, None, norm)
    assert ev2["wer"] >= 0.25 and judge(ev2, LabelNoiseRule())[0] is False
    # a second recogniser that agrees with the first (and not the reference) adds a vote
    ev3 = label_noise_evidence(ref, unsure, Decoded("a cat sat in the mat near a door on the house"), norm)
    assert ev3["agreement"] > 0.1 and judge(ev3, LabelNoiseRule(min_block_share=0.0))[0] is True
    # nothing heard is never label noise; no reference words, no evidence
    assert judge(label_noise_evidence(ref, Decoded(""), None, norm), LabelNoiseRule()) == (False, [])
    assert label_noise_evidence("", sure, None, norm) is None
    assert longest_error_share([("equal", 0, 0), ("substitute", 1, 1), ("insert", None, 2)]) == pytest.approx(2 / 3)
    assert Decoded.from_json("old cache text") == Decoded("old cache text")


def test_rule_options_are_checked():
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(UsageError):
            LabelNoiseRule(min_wer=bad)
    assert second_recogniser("whisper", "none") is None
    assert second_recogniser("sphinx", "auto") is None
    assert second_recogniser("whisper", "auto") in ("sphinx", None)
