"""Runner: rows committed as they finish, error rows instead of crashes, resume after kill -9."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.backends.base import BackendInfo, Transcript, Word
from voxproof.errors import RunError
from voxproof.manifest.utterance import Utterance
from voxproof.run.runner import RunOptions, run_eval
from voxproof.run.store import RunStore


class EchoTranscriber:
    """A deterministic recogniser for runner mechanics: 'hears' the file's reference from a side table,
    raises for ids in ``fail``, sleeps for ids in ``slow``."""

    sample_rate = 16000

    def __init__(self, answers: dict[int, str], fail=(), slow=()):
        self.answers = answers
        self.fail = set(fail)
        self.slow = set(slow)

    def transcribe(self, audio):
        key = len(audio.samples)
        if key in self.fail:
            raise RuntimeError("model exploded")
        if key in self.slow:
            time.sleep(2.0)
        text = self.answers.get(key, "")
        return Transcript(text, tuple(Word(w, None, None, 0.9) for w in text.split()), 0.9)

    def info(self):
        return BackendInfo("echo", "asr", "echo", "0" * 64, {"mode": "echo"})


def _tone(path: Path, seconds: float) -> int:
    n = int(16000 * seconds)
    t = np.arange(n) / 16000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return n


@pytest.fixture()
def tone_corpus(tmp_path):
    answers = {}
    utts = []
    for i in range(6):
        n = _tone(tmp_path / f"u{i}.wav", 0.5 + 0.1 * i)
        answers[n] = f"word {i} here"
        utts.append(Utterance(f"u{i}", str(tmp_path / f"u{i}.wav"), f"word {i} here", speaker=f"s{i % 2}"))
    return tmp_path, utts, answers


def test_bad_inputs_become_error_rows_and_the_run_completes(tmp_path, tone_corpus):
    root, utts, answers = tone_corpus
    (root / "empty.wav").write_bytes(b"")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    long_n = _tone(root / "long.wav", 3.0)
    fail_n = _tone(root / "fail.wav", 1.7)
    bad = [
        Utterance("missing", str(root / "nope.wav"), "a b"),
        Utterance("empty", str(root / "empty.wav"), "a b"),
        Utterance("corrupt", str(root / "corrupt.wav"), "a b"),
        Utterance("noref", str(root / "u0.wav"), ""),
        Utterance("long", str(root / "long.wav"), "a b"),
        Utterance("boom", str(root / "fail.wav"), "a b"),
    ]
    backend = EchoTranscriber(answers, fail={fail_n})
    result = run_eval(lambda: backend, utts + bad, tmp_path / "run", options=RunOptions(max_seconds=2.0))
    with RunStore.open(result.run_dir) as store:
        rows = {r.utt_id: r for r in store.rows()}
    assert len(rows) == 12 and result.total_rows == 12
    assert all(rows[u.id].ok and rows[u.id].hypothesis == u.text for u in utts)
    kinds = {k: rows[k].error_type for k in ("missing", "empty", "corrupt", "noref", "long", "boom")}
    assert kinds == {
        "missing": "AudioNotFound",
        "empty": "EmptyAudio",
        "corrupt": "CorruptAudio",
        "noref": "EmptyReference",
        "long": "AudioTooLarge",
        "boom": "BackendError",
    }
    assert "model exploded" in rows["boom"].error_message
    assert result.errors == 6
    assert long_n  # the 3 s file exists; it was refused by the 2 s limit while decoding


def test_timeout_becomes_an_error_row(tmp_path, tone_corpus):
    root, utts, answers = tone_corpus
    slow_n = len(sf.read(str(root / "u2.wav"))[0])
    backend = EchoTranscriber(answers, slow={slow_n})
    result = run_eval(lambda: backend, utts, tmp_path / "run", options=RunOptions(timeout=0.5))
    with RunStore.open(result.run_dir) as store:
        rows = {r.utt_id: r for r in store.rows()}
    assert rows["u2"].error_type == "Timeout"
    assert sum(r.ok for r in rows.values()) == 5


def test_resume_skips_done_rows_and_refuses_other_settings(tmp_path, tone_corpus):
    _, utts, answers = tone_corpus
    calls = []

    class Counting(EchoTranscriber):
        def transcribe(self, audio):
            calls.append(len(audio.samples))
            return super().transcribe(audio)

    run_eval(lambda: Counting(answers), utts[:3], tmp_path / "run")
    assert len(calls) == 3
    result = run_eval(lambda: Counting(answers), utts, tmp_path / "run", resume=True)
    assert len(calls) == 6 and result.rows_skipped == 3 and result.rows_written == 3
    with RunStore.open(tmp_path / "run") as store:
        assert [r.utt_id for r in store.rows()] == [u.id for u in utts]
        assert store.meta("status") == "complete"
    with pytest.raises(RunError, match="seed"):
        run_eval(lambda: Counting(answers), utts, tmp_path / "run", resume=True, options=RunOptions(seed=7))
    with pytest.raises(RunError, match="already exists"):
        run_eval(lambda: Counting(answers), utts, tmp_path / "run")


def test_workers_give_the_same_rows_in_manifest_order(tmp_path, tone_corpus):
    _, utts, answers = tone_corpus
    one = run_eval(lambda: EchoTranscriber(answers), utts, tmp_path / "one")
    two = run_eval(lambda: EchoTranscriber(answers), utts, tmp_path / "two", options=RunOptions(workers=3))
    with RunStore.open(one.run_dir) as a, RunStore.open(two.run_dir) as b:
        ra = [(r.utt_id, r.hypothesis, r.status) for r in a.rows()]
        rb = [(r.utt_id, r.hypothesis, r.status) for r in b.rows()]
    assert ra == rb and len(ra) == 6


def _row_count(db: Path) -> int:
    try:
        with sqlite3.connect(str(db), timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_rows_and_numbers(tmp_path):
    """A real whisper run killed with SIGKILL halfway, then resumed, equals an uninterrupted run."""
    cli = [sys.executable, "-m", "voxproof.cli", "--quiet", "eval", "-m", "whisper", "--limit", "10",
           "--features", "none", "--json-only"]
    env = dict(os.environ, CI="1")
    full = tmp_path / "full"
    subprocess.run(cli + ["-o", str(full)], check=True, env=env, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli + ["-o", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _row_count(killed / "run.sqlite") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _row_count(killed / "run.sqlite")
    assert 4 <= partial < 10, f"expected the kill to land mid-run, {partial} rows were stored"
    done = subprocess.run(cli + ["-o", str(killed), "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    with RunStore.open(full) as a, RunStore.open(killed) as b:
        ra = [(r.utt_id, r.condition, r.status, r.hypothesis) for r in a.rows()]
        rb = [(r.utt_id, r.condition, r.status, r.hypothesis) for r in b.rows()]
    assert ra == rb and len(rb) == 10
    import json

    sa = json.loads((full / "summary.json").read_text())
    sb = json.loads((killed / "summary.json").read_text())
    assert sa["scores"] == sb["scores"]
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_perturbed_run_resumes_to_identical_rows_with_the_chain_on_every_row(tmp_path, tone_corpus):
    from voxproof.perturb import resolve_conditions

    _, utts, answers = tone_corpus
    conditions = resolve_conditions([], ["noise:white,snr=10", "loss:0.1"])
    full = run_eval(lambda: EchoTranscriber(answers), utts, tmp_path / "full", conditions=conditions,
                    options=RunOptions(features="basic", seed=3))
    run_eval(lambda: EchoTranscriber(answers), utts[:2], tmp_path / "part", conditions=conditions,
             options=RunOptions(features="basic", seed=3))
    resumed = run_eval(lambda: EchoTranscriber(answers), utts, tmp_path / "part", conditions=conditions,
                       options=RunOptions(features="basic", seed=3), resume=True)
    assert resumed.rows_skipped == 6 and resumed.rows_written == 12 and full.total_rows == 18
    with RunStore.open(full.run_dir) as a, RunStore.open(resumed.run_dir) as b:
        ra, rb = list(a.rows()), list(b.rows())
    key = lambda r: (r.utt_id, r.condition, r.status, r.hypothesis, r.perturbation, r.features)
    assert [key(r) for r in ra] == [key(r) for r in rb]
    chains = {r.condition: r.perturbation for r in rb}
    assert chains["clean"] == ()
    assert chains["noise:white,snr=10"][0]["kind"] == "noise" and chains["loss:0.1"][0]["kind"] == "loss"
    # the white noise really changed what the model heard: its level and SNR estimate differ from clean
    feats = {r.condition: r.features for r in rb if r.utt_id == "u0"}
    assert feats["clean"]["rms_dbfs"] != feats["noise:white,snr=10"]["rms_dbfs"]
    assert feats["clean"]["snr_db"] != feats["noise:white,snr=10"]["snr_db"]
