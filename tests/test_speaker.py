"""Speaker similarity: Resemblyzer's weights read without torch, the encoder run in numpy, verified
on real bundled LibriSpeech speakers (EER), then used as a tts-eval judge whose model checksum makes
runs with different embedding models incomparable."""

from __future__ import annotations

import importlib.util
import itertools
import pickle

import numpy as np
import pytest

from voxproof.audio.io import load_audio
from voxproof.errors import DataError, NotComparable

pytestmark = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None,
                                reason="pip install --no-deps resemblyzer (scripts/setup.sh does)")

# the two shortest bundled utterances of each of the 5 LibriSpeech speakers
CLIPS = {"1688": ("1688-142285-0002", "1688-142285-0009"), "1998": ("1998-15444-0008", "1998-15444-0007"),
         "2033": ("2033-164914-0005", "2033-164914-0004"), "3080": ("3080-5032-0003", "3080-5032-0000"),
         "367": ("367-130732-0006", "367-130732-0000")}


@pytest.fixture(scope="module")
def encoder():
    from voxproof.speaker.encoder import SpeakerEncoder

    return SpeakerEncoder()


@pytest.fixture(scope="module")
def embeddings(encoder):
    from voxproof.manifest import bundled_dataset_path

    root = bundled_dataset_path() / "audio"
    return {(spk, uid): encoder.embed(load_audio(str(root / f"{uid}.flac")))
            for spk, ids in CLIPS.items() for uid in ids}


def test_weights_read_without_torch(encoder):
    import sys

    from voxproof.speaker.encoder import default_weights_path
    from voxproof.speaker.weights import file_sha256, load_checkpoint

    state = load_checkpoint(default_weights_path())["model_state"]
    assert state["lstm.weight_ih_l0"].shape == (1024, 40) and state["linear.weight"].shape == (256, 256)
    assert state["lstm.weight_hh_l2"].dtype == np.float32 and np.all(np.isfinite(state["lstm.weight_hh_l2"]))
    assert "torch" not in sys.modules
    assert encoder.info().checksum == file_sha256(default_weights_path()) and len(encoder.info().checksum) == 64


def test_hostile_checkpoints_are_refused(tmp_path):
    from voxproof.speaker.weights import LEGACY_MAGIC, load_checkpoint

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"".join(pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC, 1001, {}, Evil())))
    with pytest.raises(DataError, match="refusing"):
        load_checkpoint(evil)
    for name, data in (("empty.pt", b""), ("text.pt", b"not a checkpoint"),
                       ("cut.pt", pickle.dumps(LEGACY_MAGIC, protocol=2))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError):
            load_checkpoint(tmp_path / name)


def test_mel_filters_match_librosa():
    """Resemblyzer's front end is librosa's melspectrogram; the filters are the part worth checking
    (the full melspectrogram also matched to 1e-7 relative when checked by hand; it costs a numba
    compile, so it is not repeated here)."""
    librosa = pytest.importorskip("librosa")
    from voxproof.speaker.encoder import slaney_mel

    assert np.allclose(slaney_mel(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), atol=1e-8)


def test_equal_error_rate_on_real_speakers(embeddings):
    from voxproof.tts.speaker import eer

    keys = list(embeddings)
    scores, same = [], []
    for a, b in itertools.combinations(keys, 2):
        scores.append(float(embeddings[a] @ embeddings[b]))
        same.append(a[0] == b[0])
    rate, threshold = eer(scores, same)
    assert sum(same) == 5 and len(same) == 45
    assert rate <= 0.2, (rate, threshold)  # a random encoder would sit near 0.5
    s, y = np.array(scores), np.array(same)
    assert s[y].mean() > s[~y].mean() + 0.05


def test_degenerate_clips_have_no_embedding(encoder):
    from voxproof.audio.signal import Audio

    assert encoder.embed(Audio(np.zeros(0, np.float32), 16000)) is None
    assert encoder.embed(Audio(np.zeros(16000, np.float32), 16000)) is None
    e = encoder.embed(Audio(np.full(8000, np.nan, np.float32), 8000))
    assert e is None or np.all(np.isfinite(e))


def test_tts_judge_summary_and_gate_refuse_other_embedding_models(tmp_path, encoder, embeddings):
    """eSpeak NG on 2 prompts judged for similarity to LibriSpeech speaker 1688; a copy of the run whose
    recorded embedding model differs is refused by the gate."""
    import json
    import shutil

    from voxproof.backends import load_backend
    from voxproof.gate import evaluate_gate, load_policy
    from voxproof.manifest import bundled_dataset_path
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.store import RunStore
    from voxproof.tts.activity import SpeechDetector
    from voxproof.tts.evaluate import TtsEvalOptions, TtsScorer, evaluate_system
    from voxproof.tts.prompts import load_prompts
    from voxproof.tts.speaker import SpeakerJudge
    from voxproof.tts.summary import prompt_scores, summarise

    root = bundled_dataset_path() / "audio"
    judge = SpeakerJudge(encoder, [load_audio(str(root / f"{u}.flac")) for u in CLIPS["1688"]], source="1688")
    scorer = TtsScorer(load_backend("sphinx", kind="asr"), get_normalizer("whisper-en"),
                       speech=SpeechDetector(method="energy"), speaker=judge)
    prompts = [p for p in load_prompts() if p.id in ("q-03", "hom-01")]
    store = evaluate_system("espeak", load_backend("espeak", kind="tts"), prompts, tmp_path / "a", scorer,
                            options=TtsEvalOptions(mos=False, keep_audio=False))
    with store:
        rows = list(store.rows())
        judges = store.provenance["run_options"]["judges"]
    summary = summarise("espeak", prompt_scores(rows, scorer.normalizer), n_resamples=100).to_dict()
    sim = summary["reference"]["speaker_similarity"]["estimate"]
    voice = summary["reference"]["voice_consistency"]["estimate"]
    assert voice > sim  # one synthetic voice is closer to itself than to a real speaker
    assert -1.0 <= sim < 0.8 and summary["reference_n"]["speaker_similarity"] == 2
    assert judges["speaker"]["model"]["checksum"] == encoder.info().checksum
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert evaluate_gate(tmp_path / "a", tmp_path / "b", load_policy()).rules  # same judges: comparable
    with RunStore.open(tmp_path / "b") as other:
        prov = json.loads(json.dumps(other.provenance))
        prov["run_options"]["judges"]["speaker"]["model"]["checksum"] = "0" * 64
        other.set_meta("provenance", prov)
    with pytest.raises(NotComparable, match="different embedding models"):
        evaluate_gate(tmp_path / "a", tmp_path / "b", load_policy())


@pytest.mark.parametrize("source,error", [("/dev/zero", "ManifestError"), ("/nonexistent", "ManifestError"),
                                          ("EMPTY", "DataError")])
def test_hostile_speaker_references_are_typed_errors(encoder, tmp_path, source, error):
    from voxproof.errors import VoxproofError
    from voxproof.tts.speaker import SpeakerJudge

    if source == "EMPTY":
        source = str(tmp_path)
    with pytest.raises(VoxproofError) as info:
        SpeakerJudge.from_source(source, encoder=encoder)
    assert type(info.value).__name__ == error


def test_compare_refuses_similarities_from_other_embedding_models():
    from types import SimpleNamespace

    from voxproof.metrics.compare import check_comparable

    def run(checksum, ref="r1"):
        judges = {"speaker": {"model": {"name": "resemblyzer-ge2e", "checksum": checksum},
                              "reference": {"embedding_hash": ref}}}
        return SimpleNamespace(provenance={"run_options": {"judges": judges}, "dataset_hash": "d",
                                           "normalizer": {"name": "whisper-en", "version": "1"}})

    assert check_comparable(run("a" * 64), run("a" * 64), None, False) == "whisper-en@1"
    with pytest.raises(NotComparable, match="different embedding models"):
        check_comparable(run("a" * 64), run("b" * 64), None, False)
    with pytest.raises(NotComparable, match="different reference recordings"):
        check_comparable(run("a" * 64), run("a" * 64, "r2"), None, False)
    with pytest.raises(NotComparable, match="only one"):
        check_comparable(run("a" * 64), SimpleNamespace(provenance={"dataset_hash": "d"}), None, False)
