"""Sessions read from an STM file and its audio (``voxproof eval --data talks.stm``): the reader, its
refusals on hostile input, and one real PocketSphinx run scored as a long-form session with word timing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from voxproof.cli.main import main
from voxproof.errors import ManifestError
from voxproof.manifest import bundled_dataset_path, read_manifest, validate_manifest
from voxproof.manifest.entries import SEGMENTS_TAG

SR = 16000


@pytest.fixture(scope="module")
def stm_dir(tmp_path_factory):
    """The two shortest bundled utterances of speaker 1998 (6 s) joined with 1 s of faint noise, as
    ``audio/talk1.wav`` + ``talks.stm``."""
    from voxproof.audio.io import load_audio

    root = tmp_path_factory.mktemp("stm")
    utts = sorted((u for u in read_manifest(bundled_dataset_path()) if u.speaker == "1998"),
                  key=lambda u: sf.info(u.audio).duration)[:2]
    gap = np.random.default_rng(0).normal(0, 3e-4, SR).astype(np.float32)
    parts, lines, t = [gap], [], 1.0
    for u in utts:
        x = load_audio(u.audio, sample_rate=SR).samples
        lines.append(f"talk1 1 1998 {t:.3f} {t + len(x) / SR:.3f} <o,f0,male> {u.text}\n")
        parts += [x, gap]
        t += len(x) / SR + 1.0
    (root / "audio").mkdir()
    sf.write(str(root / "audio" / "talk1.wav"), np.concatenate(parts), SR, subtype="PCM_16")
    (root / "talks.stm").write_text(";; two utterances\n" + "".join(reversed(lines)))  # out of order on purpose
    return root, utts


def test_an_stm_file_reads_as_one_session_per_recording(stm_dir):
    root, utts = stm_dir
    (session,) = read_manifest(root / "talks.stm")
    assert session.id == "talk1" and session.speaker == "1998"
    assert session.audio == str(root / "audio" / "talk1.wav")
    assert session.text == " ".join(u.text for u in utts)
    segs = json.loads(session.tags[SEGMENTS_TAG])
    assert [s[0] for s in segs] == ["talk1-0000", "talk1-0001"] and segs[0][1] == 1.0 and segs[0][5] == utts[0].text
    assert segs[0][2] < segs[1][1]


def write(root, name, text):
    path = root / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, needle", [
    ("s 1 a 0 5 hello there\ns 1 b 4 8 overlap here\n", "overlap"),
    ("s 1 a 0 nan hello\n", "finite"),
    ("s 1 a -1 2 hello\n", "finite"),
    ("s 1 a 0 1e30 hello\n", "finite"),
    ("s 1 a 5 2 hello\n", "before it starts"),
    (".. 1 a 0 2 hello\n", "'..'"),
    ("a/b 1 a 0 2 hello\n", "'/'"),
    ("s 1 a 0\n", "needs session channel speaker"),
    (";; only a comment\n", "no segments"),
])
def test_hostile_stm_files_are_refused_with_every_problem(tmp_path, text, needle):
    path = write(tmp_path, "bad.stm", text)
    with pytest.raises(ManifestError) as err:
        list(read_manifest(path))
    assert needle in str(err.value) + " ".join(m for _, m in err.value.problems)
    assert any(needle in m for _, m in validate_manifest(path))


def test_stm_devices_fifos_and_huge_files_are_refused(tmp_path, monkeypatch):
    for bad in ("/dev/zero", None):
        if bad is None:
            bad = str(tmp_path / "pipe.stm")
            os.mkfifo(bad)
        assert any("not a regular file" in m for _, m in validate_manifest(bad, format="stm"))
    from voxproof.metrics import segments

    monkeypatch.setattr(segments, "MAX_FILE_BYTES", 64)
    path = write(tmp_path, "big.stm", "s 1 a 0 2 hello there\n" * 10)
    assert any("limit" in m for _, m in validate_manifest(path))
    # a session without audio is read (its audio is then a missing-audio error row, as in every format)
    monkeypatch.setattr(segments, "MAX_FILE_BYTES", 1 << 20)
    (utt,) = read_manifest(write(tmp_path, "ok.stm", "s 1 a 0 2 hi\n"))
    assert utt.audio == str(tmp_path / "s.wav")


def test_eval_scores_an_stm_session_as_long_form_with_word_timing(stm_dir, tmp_path):
    pytest.importorskip("pocketsphinx")
    root, _ = stm_dir
    out = tmp_path / "run"
    assert main(["eval", "-m", "sphinx", "--data", str(root / "talks.stm"), "-o", str(out), "--workers", "1",
                 "--features", "none"]) == 0
    cond = json.loads((out / "summary.json").read_text())["scores"]["conditions"][0]
    assert cond["longform"]["sessions"] == 1 and cond["longform"]["ref_words"] == 17
    assert cond["timing"]["sessions"] == 1 and cond["timing"]["start"]["timed"] == 2


def test_the_cost_of_long_form_when_the_run_also_decodes_the_utterances_alone(stm_dir, tmp_path):
    pytest.importorskip("pocketsphinx")
    from voxproof.manifest import write_jsonl

    root, utts = stm_dir
    (session,) = read_manifest(root / "talks.stm")
    alone = [u.replace(id=f"talk1-{k:04d}") for k, u in enumerate(utts)]  # the segment ids
    write_jsonl([session, *alone], tmp_path / "both.jsonl")
    out = tmp_path / "run"
    assert main(["eval", "-m", "sphinx", "--data", str(tmp_path / "both.jsonl"), "-o", str(out), "--workers", "1",
                 "--features", "none"]) == 0
    lf = json.loads((out / "summary.json").read_text())["scores"]["conditions"][0]["longform"]
    cost = lf["versus_utterances"]
    assert (cost["sessions"], cost["utterances"]) == (1, 2) and cost["ref_words"] == lf["ref_words"]
    assert cost["session_errors"] == lf["errors"]  # every session error falls in one of the two utterances
    assert cost["difference"]["estimate"] == pytest.approx(
        (cost["session_errors"] - cost["utterance_errors"]) / cost["ref_words"])
    assert "cost of long-form" in (out / "report.html").read_text()
