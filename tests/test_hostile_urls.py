"""Issue 21 item 9: manifest URLs are off unless their host is allowed, redirects are checked hop by hop,
downloads have size and time caps, temporary files are cleaned (also after a kill), and a playlist
cannot pull other files into a decode. Every server here listens on 127.0.0.1 only."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.audio.io import DEFAULT_LIMITS, AudioLimits, decode_audio, load_audio
from voxproof.audio.remote import TEMP_PREFIX, sweep_stale_temp_files
from voxproof.errors import AudioError, AudioSourceRefused, AudioTooLarge, CorruptAudio, UsageError

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    hits: dict[str, int]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits[self.path] = type(self).hits.get(self.path, 0) + 1
        port = self.server.server_address[1]
        if self.path == "/to-localhost":
            self._redirect(f"http://localhost:{port}/clip.wav")
        elif self.path == "/to-same":
            self._redirect("/clip.wav")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/endless.wav":
            self.send_response(200)
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                for _ in range(100_000):  # bounded: 6.5 GB, far past any limit in these tests
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif self.path == "/trickle.wav":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"R")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            path = self.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hangs up on purpose at a limit


@pytest.fixture()
def server(tmp_path: Path):
    sf.write(tmp_path / "clip.wav", 0.1 * np.sin(np.arange(16000) / 5.0).astype(np.float32), 16000)
    handler = type("H", (_Handler,), {"root": tmp_path, "hits": {}})
    srv = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler.hits
    finally:
        srv.shutdown()
        srv.server_close()


LOCAL = DEFAULT_LIMITS.replace(url_hosts=("127.0.0.1",))


def _our_temp_files() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"{TEMP_PREFIX}{os.getpid()}-")}


def test_urls_are_off_by_default_and_on_for_allowed_hosts(server) -> None:
    base, hits = server
    with pytest.raises(AudioSourceRefused, match="URLs are off by default; pass --allow-url-host 127.0.0.1"):
        load_audio(f"{base}/clip.wav")
    assert hits == {}  # refused before any request
    with pytest.raises(AudioSourceRefused, match="host '127.0.0.1' is not allowed"):
        load_audio(f"{base}/clip.wav", limits=DEFAULT_LIMITS.replace(url_hosts=("data.example.org",)))
    assert load_audio(f"{base}/clip.wav", limits=LOCAL).duration == pytest.approx(1.0)
    assert hits == {"/clip.wav": 1}


def test_redirects_are_checked_hop_by_hop(server) -> None:
    base, hits = server
    with pytest.raises(AudioSourceRefused, match="host 'localhost' is not allowed"):
        load_audio(f"{base}/to-localhost", limits=LOCAL)
    assert "/clip.wav" not in hits  # the redirect target was never requested
    assert load_audio(f"{base}/to-same", limits=LOCAL).duration == pytest.approx(1.0)
    with pytest.raises(AudioSourceRefused, match="redirects more than 5 times"):
        load_audio(f"{base}/loop", limits=LOCAL)


def test_wildcard_allows_public_hosts_but_never_loopback(server) -> None:
    base, hits = server
    with pytest.raises(AudioSourceRefused, match="non-public address 127.0.0.1"):
        load_audio(f"{base}/clip.wav", limits=DEFAULT_LIMITS.replace(url_hosts=("*",)))
    assert hits == {}


def test_allowlist_entries_are_bare_hosts() -> None:
    for bad in ("http://x.org", "x.org/a", "x.org:80", "a b", "x\0y", ""):
        with pytest.raises(UsageError, match="allow-url-host"):
            AudioLimits(url_hosts=(bad,))
    assert AudioLimits(url_hosts=("Data.Example.ORG.", "::1")).url_hosts == ("::1", "data.example.org")


def test_endless_and_trickling_responses_stop_at_the_caps(server) -> None:
    base, _ = server
    before = _our_temp_files()
    with pytest.raises(AudioTooLarge, match="sent more than 1,000,000 bytes"):
        load_audio(f"{base}/endless.wav", limits=LOCAL.replace(max_download_bytes=1_000_000))
    with pytest.raises(AudioError, match=r"did not finish within 1 s"):
        load_audio(f"{base}/trickle.wav", limits=LOCAL.replace(download_timeout_s=1.0))
    assert _our_temp_files() == before  # both temp files removed


def test_audit_decodes_a_url_item_once(server) -> None:
    from voxproof.audit.signal import analyse_item
    from voxproof.manifest.utterance import Utterance

    base, hits = server
    item = analyse_item(Utterance(id="u", audio=f"{base}/clip.wav"), vad="energy", limits=LOCAL)
    assert item.ok and item.channels == 1 and hits == {"/clip.wav": 1}
    refused = analyse_item(Utterance(id="u", audio=f"{base}/clip.wav"), vad="energy")
    assert refused.error.startswith("AudioSourceRefused:") and hits == {"/clip.wav": 1}


_KILLED_DOWNLOAD = textwrap.dedent(
    """
    import sys
    from voxproof.audio.io import DEFAULT_LIMITS, load_audio
    load_audio(sys.argv[1], limits=DEFAULT_LIMITS.replace(url_hosts=("127.0.0.1",)))
    """
)


def test_temp_file_of_a_killed_download_is_swept(server, tmp_path: Path) -> None:
    base, _ = server
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_DOWNLOAD, f"{base}/trickle.wav"], env=env)
    try:
        deadline = time.monotonic() + 30
        left: list[str] = []
        while time.monotonic() < deadline and not left:
            left = [n for n in os.listdir(tmp_path) if n.startswith(f"{TEMP_PREFIX}{proc.pid}-")]
            time.sleep(0.1)
        assert left, "the download never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (tmp_path / left[0]).exists()  # kill -9 leaves it behind...
    assert sweep_stale_temp_files(str(tmp_path)) == 1  # ...and the next voxproof process removes it
    assert not (tmp_path / left[0]).exists()
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-live.wav"  # a running process's file is kept
    mine.write_bytes(b"x")
    assert sweep_stale_temp_files(str(tmp_path)) == 0 and mine.exists()


@needs_ffmpeg
def test_playlists_and_concat_lists_cannot_pull_other_files(tmp_path: Path) -> None:
    sf.write(tmp_path / "seg.wav", np.zeros(16000, dtype=np.float32), 16000)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(tmp_path / "seg.wav"), str(tmp_path / "seg.mp3")],
                   check=True)
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\nseg.mp3\n#EXT-X-ENDLIST\n"
    for name, text in (("list.m3u8", hls), ("disguised.mp3", hls), ("concat.txt", "ffconcat version 1.0\nfile seg.wav\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises((CorruptAudio, AudioSourceRefused)):
            decode_audio(tmp_path / name)
    assert load_audio(tmp_path / "seg.mp3").duration == pytest.approx(1.0, abs=0.1)  # plain mp3 still decodes


@pytest.mark.parametrize("command", [["eval"], ["audit", "."], ["gate", "--baseline-model", "whisper",
                                                                    "--candidate-model", "sphinx"]])
def test_allow_url_host_flag_is_validated_on_every_command(command: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    out = subprocess.run([sys.executable, "-m", "voxproof", *command, "--allow-url-host", "http://x.org/a"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("UsageError: --allow-url-host takes a bare host")
