"""Ctrl-C on a terminal: a real SIGINT to ``voxproof eval`` / ``gate`` running on a pseudo-terminal.

It used to print ``Aborted.`` and then ``terminate called without an active exception`` (SIGABRT, 134):
the interpreter tore down CTranslate2 while a worker thread was still decoding. Now the run finishes the
utterances in progress, joins its workers, closes the model and the store, prints how to resume and
exits 130; ``--resume`` then completes with the rows an uninterrupted run gives.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from voxproof.manifest import bundled_dataset_path, read_manifest
from voxproof.run.store import RunStore

REPO = Path(__file__).resolve().parents[1]
N_UTTS = 4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # a terminal session: the progress bar is on
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def _stored_rows(run_dir: Path) -> int:
    path = run_dir / "run.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as conn:
            return conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def interrupt_on_a_terminal(args: list[str], ready: Callable[[], bool], deadline: float = 240.0) -> tuple[int, str]:
    """Run ``voxproof ARGS`` on a pseudo-terminal, press Ctrl-C (SIGINT to its process group, as a
    terminal does) once ``ready()`` (a row is committed), and return the exit code and what it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become voxproof at once
        os.execve(sys.executable, [sys.executable, "-m", "voxproof", *args], _env())
    out = bytearray()
    sent = False
    started = time.monotonic()
    try:
        while True:
            if time.monotonic() - started > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"no exit within {deadline} s; output: {out.decode(errors='replace')[-2000:]}")
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and ready():
                os.killpg(pid, signal.SIGINT)
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert sent, out.decode(errors="replace")
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def _rows(run_dir: Path) -> dict[tuple[str, str], tuple]:
    with RunStore.open(run_dir) as store:
        return {(r.utt_id, r.condition): (r.status, r.hypothesis, tuple(w.text for w in r.transcript.words)
                                          if r.transcript else ()) for r in store.rows()}


def _check_interrupted_then_resumed(model: str, tmp_path: Path, reference) -> None:
    run = tmp_path / "run"
    args = ["eval", "-m", model, "--limit", str(N_UTTS), "--features", "none", "--json-only", "-o", str(run)]
    code, out = interrupt_on_a_terminal(args, lambda: _stored_rows(run) >= 1)
    assert code == 130, out
    assert "terminate called" not in out and "Traceback" not in out and "Aborted" not in out, out
    assert f"continue with --resume -o {run}" in out, out
    with RunStore.open(run) as store:  # readable, and says what happened
        assert store.meta("status") == "interrupted"
        kept = store.count_rows()
    assert 1 <= kept < N_UTTS, out
    resumed = subprocess.run([sys.executable, "-m", "voxproof", *args, "--resume"], env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(run)
    assert len(rows) == N_UTTS
    assert rows == reference


def _uninterrupted(backend, tmp_path: Path):
    from voxproof.run.runner import RunOptions, run_eval

    utts = list(read_manifest(bundled_dataset_path()))[:N_UTTS]
    run_eval(lambda: backend, utts, tmp_path / "reference", options=RunOptions(features="none"))
    return _rows(tmp_path / "reference")


def test_ctrl_c_during_a_whisper_eval_exits_130_and_resumes_to_the_same_rows(tmp_path):
    pytest.importorskip("faster_whisper")
    from voxproof.backends.whisper import WhisperTranscriber

    _check_interrupted_then_resumed("whisper", tmp_path, _uninterrupted(WhisperTranscriber(), tmp_path))


@pytest.mark.slow  # ~25 s: PocketSphinx decodes the same 4 utterances three times
def test_ctrl_c_during_a_pocketsphinx_eval_exits_130_and_resumes_to_the_same_rows(tmp_path):
    pytest.importorskip("pocketsphinx")
    from voxproof.backends.sphinx import SphinxTranscriber

    _check_interrupted_then_resumed("sphinx", tmp_path, _uninterrupted(SphinxTranscriber(), tmp_path))


@pytest.mark.slow
def test_ctrl_c_during_a_gate_model_run_exits_130_and_the_same_command_resumes(tmp_path):
    pytest.importorskip("pocketsphinx")
    cache = tmp_path / "cache"
    args = ["gate", "--baseline-model", "sphinx", "--candidate-model", "sphinx", "-O", "lw=7", "--limit", "3",
            "--cache-dir", str(cache), "-o", str(tmp_path / "gate")]
    # the baseline's run directory is named by a hash: press Ctrl-C once any run in the cache has a row
    code, out = interrupt_on_a_terminal(args, lambda: any(_stored_rows(p) for p in cache.glob("*")))
    assert code == 130, out
    assert "terminate called" not in out and "Traceback" not in out, out
    assert "run the same 'voxproof gate' command again" in out, out
    (interrupted,) = [p.parent for p in cache.glob("*/run.sqlite")]
    with RunStore.open(interrupted) as store:
        assert store.meta("status") == "interrupted" and 1 <= store.count_rows() < 3
    again = subprocess.run([sys.executable, "-m", "voxproof", *args], env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode in (0, 1), again.stderr
    assert f"baseline: resuming {interrupted}" in again.stderr
    with RunStore.open(interrupted) as store:
        assert store.meta("status") == "complete" and store.count_rows() == 3
