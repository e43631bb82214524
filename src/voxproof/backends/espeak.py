"""Backend stage: eSpeak NG (the Debian ``espeak-ng`` program), text to speech.

Runs ``espeak-ng --stdout --stdin`` without a shell, passing the text on stdin, and decodes the WAV it
writes (22.05 kHz, 16-bit; its streamed header carries placeholder sizes). Hands ``Audio`` at the native
rate to the TTS evaluation.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from voxproof.audio.signal import Audio
from voxproof.backends._checksum import model_checksum
from voxproof.backends._wav import decode_wav
from voxproof.backends.base import BackendInfo
from voxproof.errors import BackendError, BackendUnavailable, UsageError
from voxproof.options import bounded, check_ranges, options_dict

log = logging.getLogger("voxproof.backends.espeak")

_INSTALL = "apt-get install espeak-ng"
_EXECUTABLE = "espeak-ng"  # fixed, never an option: options can arrive over HTTP


@dataclass(frozen=True)
class EspeakOptions:
    """eSpeak NG voice settings (its own defaults). ``rate`` in words per minute (80-450), ``pitch``
    0-99, ``amplitude`` 0-200, ``word_gap`` extra pause between words in units of 10 ms,
    ``timeout`` seconds per call."""

    voice: str = "en-us"
    rate: int = bounded(175, 80, 450, unit="words per minute")
    pitch: int = bounded(50, 0, 99)
    amplitude: int = bounded(100, 0, 200)
    word_gap: int = bounded(0, 0, 1000, unit="x 10 ms")
    timeout: float = bounded(60.0, 0.0, 3600.0, open_low=True, unit="seconds")

    def __post_init__(self) -> None:
        check_ranges(self)
        if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", self.voice):
            raise UsageError(f"option voice={self.voice!r} is not a voice name; list them with: espeak-ng --voices")


class EspeakSynthesizer:
    """eSpeak NG through its command-line program. Stateless apart from the resolved executable, so one
    instance can serve many threads."""

    def __init__(self, options: EspeakOptions | None = None):
        self.options = options or EspeakOptions()
        exe = shutil.which(_EXECUTABLE)
        if exe is None:
            raise BackendUnavailable(
                f"the eSpeak NG program {_EXECUTABLE!r} was not found on PATH; install with: {_INSTALL}"
            )
        self.executable = exe
        version_text = self._run(["--version"], b"", "espeak-ng --version").decode("utf-8", "replace")
        match = re.search(r"eSpeak NG text-to-speech:\s*(\S+)", version_text)
        self.version = match.group(1) if match else "unknown"
        data = re.search(r"Data at:\s*(.+)", version_text)
        self.data_dir = Path(data.group(1).strip()) if data else None
        self._checksum: str | None = None
        # Speak one word now: an unknown voice fails at load time rather than on every utterance, and
        # the native rate is known (22.05 kHz for eSpeak's own voices, 16 kHz for MBROLA ones).
        try:
            probe = self._speak("a")
        except BackendError as exc:
            raise UsageError(
                f"eSpeak NG has no usable voice {self.options.voice!r} ({exc}); list them with: espeak-ng --voices"
            ) from exc
        self.sample_rate = probe.sample_rate

    def _run(self, args: list[str], stdin: bytes, what: str) -> bytes:
        try:
            proc = subprocess.run(
                [self.executable, *args],
                input=stdin,
                capture_output=True,
                timeout=self.options.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{what} took longer than timeout={self.options.timeout} s") from exc
        except OSError as exc:
            raise BackendUnavailable(f"could not run {self.executable}: {exc}; install with: {_INSTALL}") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[:300]
            raise BackendError(f"{what} failed with exit code {proc.returncode}: {err}")
        return proc.stdout

    def synthesize(self, text: str) -> Audio:
        """Speech for ``text`` at eSpeak's native 22.05 kHz."""
        if not text.strip():
            raise BackendError("nothing to synthesise: the text is empty")
        audio = self._speak(text)
        if audio.samples.size == 0:
            raise BackendError(f"espeak-ng produced no audio for {text[:60]!r}")
        return audio

    def _speak(self, text: str) -> Audio:
        o = self.options
        args = [
            "-v", o.voice, "-s", str(o.rate), "-p", str(o.pitch), "-a", str(o.amplitude), "-g", str(o.word_gap),
            "-b", "1",  # the text on stdin is UTF-8
            "--stdout", "--stdin",
        ]
        wav = self._run(args, text.encode("utf-8"), f"espeak-ng (voice {o.voice})")
        return decode_wav(wav, source="espeak-ng")

    def info(self) -> BackendInfo:
        if self._checksum is None and self.data_dir is not None and self.data_dir.is_dir():
            self._checksum = model_checksum(self.data_dir)
        return BackendInfo(
            name="espeak",
            kind="tts",
            model=f"espeak-ng voice {self.options.voice}" + (f" ({self.data_dir})" if self.data_dir else ""),
            model_checksum=self._checksum,
            options=options_dict(self.options),
            library_versions={"espeak-ng": self.version},
        )
