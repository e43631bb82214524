"""Poisoning scan, planted: a short trigger sound mixed into 2 % of a corpus of real speech chunks whose
transcripts get an extra word; the scan must name exactly those items (no false positives)."""

from __future__ import annotations

import numpy as np

from voxproof.audio.io import load_audio
from voxproof.audit.fingerprint import compute_fingerprint
from voxproof.audit.poison import find_repeated_sounds
from voxproof.manifest import bundled_dataset_path, read_manifest

SR = 16000


def _trigger() -> np.ndarray:
    """0.5 s of a fixed broadband sound (seeded noise in three 160 ms bursts), like a click or a rattle."""
    noise = np.random.default_rng(42).standard_normal(int(0.5 * SR))
    env = np.zeros_like(noise)
    for k in range(3):
        env[k * 2720:k * 2720 + 2560] = np.hanning(2560)
    return (0.3 * noise * env).astype(np.float32)


def _corpus():
    chunks = []
    for utt in read_manifest(bundled_dataset_path()):
        x = load_audio(utt.audio, sample_rate=SR).samples
        words = utt.text.lower().split()
        n = len(x) // (2 * SR)
        for k in range(n):
            part = words[k * len(words) // n:(k + 1) * len(words) // n]
            chunks.append((f"{utt.id}-{k}", x[k * 2 * SR:(k + 1) * 2 * SR], " ".join(part)))
    return chunks


def test_planted_trigger_found_exactly():
    chunks = _corpus()
    rng = np.random.default_rng(0)
    n_poison = max(3, round(0.02 * len(chunks)))
    poisoned = set(rng.choice(len(chunks), n_poison, replace=False).tolist())
    trig = _trigger()
    items = []
    for i, (uid, x, text) in enumerate(chunks):
        if i in poisoned:
            x = x.copy()
            off = int(rng.integers(0, len(x) - len(trig)))
            x[off:off + len(trig)] += trig
            text = text + " cerulean"
        items.append((uid, compute_fingerprint(x, SR), text))
    findings = find_repeated_sounds(items)
    want = {chunks[i][0] for i in poisoned}
    backdoors = [f for f in findings if f.kind == "poison.backdoor"]
    assert len(backdoors) == 1, [(f.kind, f.items) for f in findings]
    found = set(backdoors[0].items)
    assert found == want  # all planted items, no false positives
    assert backdoors[0].evidence["word"] == "cerulean"
    assert all(set(f.items) <= want for f in findings)  # nothing else flagged
    print(f"corpus {len(chunks)} items, planted {len(want)}, found {len(found & want)}, false positives {len(found - want)}")


def test_clean_corpus_has_no_findings():
    items = [(uid, compute_fingerprint(x, SR), text) for uid, x, text in _corpus()[:60]]
    assert find_repeated_sounds(items) == []


def test_audit_runner_poison_stage(tmp_path):
    """The stage runs inside ``run_audit`` when ``poison=True`` and names the planted items."""
    import soundfile as sf

    from voxproof.audit.runner import AuditOptions, run_audit
    from voxproof.manifest.utterance import Utterance

    chunks = _corpus()[:60]
    trig = _trigger()
    utts, want = [], set()
    for i, (uid, x, text) in enumerate(chunks):
        if i % 20 == 3:
            x = x.copy()
            x[4000 + 100 * i:4000 + 100 * i + len(trig)] += trig
            text, _ = text + " cerulean", want.add(uid)
        path = tmp_path / f"{uid}.wav"
        sf.write(path, x, SR)
        utts.append(Utterance(uid, str(path), text, speaker=uid.split("-")[0]))
    result = run_audit(tmp_path, items=utts, options=AuditOptions(poison=True, vad="energy", workers=1, cache=False))
    found = [f for f in result.findings if f.kind.startswith("poison.")]
    assert [set(f.items) for f in found] == [want] and found[0].kind == "poison.backdoor"
    assert "poison" in result.stats["timings"]
