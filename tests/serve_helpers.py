"""Shared helpers for the serve tests: a registry with real models, keys, short bundled clips, a live app."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import soundfile

from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.registry import Registry
from voxproof.serve.keys import KeyStore

AUDIO = bundled_dataset_path() / "audio"
SHORT = ("367-130732-0006", "367-130732-0000", "1688-142285-0002")  # the three shortest clips (2.4-2.8 s)


def clip(utt_id: str = SHORT[0]) -> bytes:
    return (AUDIO / f"{utt_id}.flac").read_bytes()


def make_registry(path: Path, *, canary: bool = False) -> str:
    """Versions: w1 (Whisper greedy, production), w2 (Whisper, canary when asked), s1 (PocketSphinx),
    e1/e2 (eSpeak, tts)."""
    location = str(path)
    with Registry.open(location) as reg:
        reg.register("w1", backend="whisper", actor="setup", options={"beam_size": 1})
        reg.register("w2", backend="whisper", actor="setup", options={"beam_size": 1, "no_speech_threshold": 0.5})
        reg.register("s1", backend="sphinx", actor="setup")
        reg.register("e1", backend="espeak", kind="tts", actor="setup")
        reg.register("e2", backend="espeak", kind="tts", actor="setup", options={"rate": 190})
        reg.promote("w1", actor="setup")
        reg.set_alias("voice", "e1", actor="setup")
        if canary:
            reg.set_alias("canary", "w2", actor="setup")
    return location


def make_keys(path: Path) -> tuple[KeyStore, dict[str, str]]:
    store = KeyStore(path)
    keys = {scope: store.create(f"{scope}-key", [scope])[1] for scope in ("transcribe", "synthesize", "admin")}
    return store, keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_ready(client, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"server not ready after {timeout} s: {client.get('/readyz').json()}")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(registry: str, keys: Path, log: Path, *extra: str, timeout: float = 120.0):
    """``voxproof serve`` in a subprocess on a free loopback port; yields (base_url, process)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "voxproof", "serve", "--registry", registry, "--keys", str(keys),
           "--port", str(port), "--request-log", str(log), "--poll-s", "0.2", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready")
            time.sleep(0.2)
        yield base, proc
    finally:
        stop_process(proc, timeout=60)


def short_dataset(dest: Path, ids=SHORT) -> Path:
    """A folder dataset (audio/ + transcripts.tsv) holding the given bundled utterances."""
    src = bundled_dataset_path()
    (dest / "audio").mkdir(parents=True)
    lines = {line.split("\t")[0]: line for line in (src / "transcripts.tsv").read_text().splitlines() if line}
    for utt in ids:
        shutil.copy(src / "audio" / f"{utt}.flac", dest / "audio" / f"{utt}.flac")
    (dest / "transcripts.tsv").write_text("\n".join(lines[u] for u in ids) + "\n")
    return dest


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   timeout=120)


def duration(data: bytes) -> float:
    import io

    return soundfile.info(io.BytesIO(data)).duration


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (the server drains and flushes its log), then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
