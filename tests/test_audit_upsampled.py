"""Issue 19 part 4: a file upsampled from 8 kHz by naive linear interpolation keeps a mirror image of its
band above 4 kHz; the audit finds it (``signal.upsampled_image``) and does not flag genuine wideband clips
or a properly resampled (band-limited) file. Real bundled LibriSpeech audio only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from voxproof.audit.runner import AuditOptions, run_audit
from voxproof.audit.signal import mirror_image
from voxproof.manifest import bundled_dataset_path

CLIPS = ("1688-142285-0002", "1998-15444-0008", "2033-164914-0005", "3080-5032-0003", "367-130732-0009")


def _clip(uid: str) -> np.ndarray:
    x, rate = sf.read(str(bundled_dataset_path() / "audio" / f"{uid}.flac"), dtype="float32")
    assert rate == 16000
    return x


def naive_upsample(x8: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz by linear interpolation between neighbouring samples (no anti-imaging filter)."""
    t8 = np.arange(len(x8)) / 8000
    return np.interp(np.arange(2 * len(x8)) / 16000, t8, x8).astype(np.float32)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("upsampled")
    lines = []
    for uid in CLIPS:
        sf.write(str(root / f"{uid}.wav"), _clip(uid), 16000)
        lines.append({"id": uid, "audio": str(root / f"{uid}.wav"), "text": "x"})
    x8 = soxr.resample(_clip(CLIPS[0]), 16000, 8000)
    sf.write(str(root / "naive.wav"), naive_upsample(x8), 16000)
    sf.write(str(root / "proper.wav"), soxr.resample(x8, 8000, 16000), 16000)
    lines += [{"id": "naive", "audio": str(root / "naive.wav"), "text": "x"},
              {"id": "proper", "audio": str(root / "proper.wav"), "text": "x"}]
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_audit(manifest, out_dir=root / "out", options=AuditOptions(vad="energy", workers=1, cache=False))


def test_naive_upsample_is_found_and_genuine_clips_are_not(audited):
    images = [f for f in audited.findings if f.kind == "signal.upsampled_image"]
    assert [f.items for f in images] == [("naive",)]
    ev = images[0].evidence
    assert ev["original_nyquist_hz"] == 4000 and ev["likely_source_rate"] == 8000 and ev["mirror_correlation"] > 0.9
    # the old check misses it: images keep energy up to 8 kHz, so the effective bandwidth looks wide
    narrow = {i for f in audited.findings if f.kind == "signal.narrow_band" for i in f.items}
    assert "naive" not in narrow and "proper" in narrow
    for uid in CLIPS:
        assert audited.analysis(uid).features["mirror_correlation"] < 0.3


def test_mirror_image_numbers_on_real_clips():
    for uid in CLIPS[1:3]:
        x = _clip(uid)
        assert mirror_image(x, 16000)[1] < 0.3
        fc, corr = mirror_image(naive_upsample(soxr.resample(x, 16000, 8000)), 16000)
        assert fc == 4000 and corr > 0.9
    # at 44.1 kHz: 11.025 kHz upsampled 4x by linear interpolation mirrors around 5.5 kHz
    x11 = soxr.resample(_clip(CLIPS[1]), 16000, 11025)
    up = np.interp(np.arange(4 * len(x11)) / 44100, np.arange(len(x11)) / 11025, x11)
    fc, corr = mirror_image(up, 44100)
    assert fc == 5512.5 and corr > 0.9
    assert mirror_image(np.zeros(100, np.float32), 16000) is None  # too short to tell
    silent = mirror_image(np.zeros(16000, np.float32), 16000)
    assert silent is None or silent[1] < 0.7
