"""Cost of voxproof's decoder against the plain libraries it wraps, measured in the same run.

- FLAC: ``load_audio`` (header checks, block reads with a running limit, NaN check) vs ``soundfile.read``
  on the 50 bundled LibriSpeech files. Baseline: soundfile.read.
- MP3: ``load_audio`` (ffprobe + ffmpeg pipe, channel mean, limit) vs one ``ffmpeg ... -f f32le -``
  subprocess per file read with ``subprocess.run``. Baseline: the bare ffmpeg call.
- Resample to 8 kHz: ``load_audio(sample_rate=8000)`` vs ``soundfile.read`` + ``soxr.resample``.

Prints seconds per file and the ratio voxproof / baseline (1.00 = no overhead).
Run: ``python benchmarks/audio_decode.py``.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voxproof.audio.io import load_audio
from voxproof.manifest import bundled_dataset_path


def _best_of(fn, files, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for f in files:
            fn(f)
        best = min(best, time.perf_counter() - start)
    return best / len(files)


def _ffmpeg_raw(path: Path) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32)


def main() -> None:
    flacs = sorted((bundled_dataset_path() / "audio").glob("*.flac"))
    rows = []
    base = _best_of(lambda f: sf.read(f, dtype="float32"), flacs)
    ours = _best_of(load_audio, flacs)
    rows.append(("FLAC decode (50 files)", "soundfile.read", base, ours))
    base = _best_of(lambda f: soxr.resample(sf.read(f, dtype="float32")[0], 16000, 8000, "HQ"), flacs)
    ours = _best_of(lambda f: load_audio(f, sample_rate=8000), flacs)
    rows.append(("FLAC decode + resample to 8 kHz", "soundfile.read + soxr", base, ours))
    with tempfile.TemporaryDirectory() as tmp:
        mp3s = []
        for f in flacs[:10]:
            target = Path(tmp) / f"{f.stem}.mp3"
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-b:a", "64k", str(target)], check=True
            )
            mp3s.append(target)
        base = _best_of(_ffmpeg_raw, mp3s)
        ours = _best_of(load_audio, mp3s)
        rows.append(("MP3 decode (10 files)", "bare ffmpeg subprocess", base, ours))
    print(f"{'case':34} {'baseline':24} {'base s/file':>11} {'voxproof s/file':>15} {'ratio':>6}")
    for case, name, b, o in rows:
        print(f"{case:34} {name:24} {b:11.4f} {o:15.4f} {o / b:6.2f}")


if __name__ == "__main__":
    main()
