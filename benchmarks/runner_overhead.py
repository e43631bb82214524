"""Overhead of ``voxproof eval`` against a bare faster-whisper loop, measured in the same run.

Both sides use Whisper tiny.en (int8, greedy, word timestamps, the same decoding options and threads)
over the same files. The voxproof side is the whole job a user runs: manifest reading, audio decoding,
per-row features, the run store, scoring with bootstrap intervals, summary.json and the HTML report.
Runs alternate (bare, voxproof, bare, voxproof...) so load on the machine hits both alike.

    python benchmarks/runner_overhead.py [--repeats 2] [--limit N]

Target: wall-clock ratio voxproof / bare <= 1.10.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bare_loop(paths: list[str], kwargs: dict, threads: int, model_dir: str) -> tuple[float, float]:
    from faster_whisper import WhisperModel

    start = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
    audio_seconds = 0.0
    for path in paths:
        segments, info = model.transcribe(path, **kwargs)
        list(segments)
        audio_seconds += info.duration
    return time.perf_counter() - start, audio_seconds


def voxproof_eval(limit: int | None) -> tuple[float, float]:
    from voxproof.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        args = ["--quiet", "eval", "-m", "whisper", "-o", str(Path(tmp) / "run")]
        if limit:
            args += ["--limit", str(limit)]
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            code = main(args)
        elapsed = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"voxproof eval exited {code}")
        import json

        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        audio = summary["scores"]["conditions"][0]["audio_hours"] * 3600
    return elapsed, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N utterances only")
    args = parser.parse_args()

    from voxproof.backends.whisper import (
        WhisperOptions,
        WhisperTranscriber,
        _bundled_model_dir,
    )
    from voxproof.manifest import bundled_dataset_path, read_manifest

    utts = list(read_manifest(bundled_dataset_path()))[: args.limit or None]
    paths = [u.audio for u in utts]
    probe = WhisperTranscriber(WhisperOptions())
    kwargs = probe._common_kwargs()  # the exact decoding options voxproof uses
    threads = probe.cpu_threads
    del probe
    model_dir = str(_bundled_model_dir())
    print(f"{len(paths)} files; decoding options {kwargs}; cpu_threads {threads}")

    bare, vox = [], []
    for i in range(args.repeats):
        t, audio = bare_loop(paths, kwargs, threads, model_dir)
        bare.append(t)
        print(f"round {i + 1}: bare faster-whisper {t:.2f} s (RTFx {audio / t:.1f})", flush=True)
        t, audio_v = voxproof_eval(args.limit)
        vox.append(t)
        print(f"round {i + 1}: voxproof eval      {t:.2f} s (RTFx {audio_v / t:.1f})", flush=True)
    b, v = statistics.median(bare), statistics.median(vox)
    print(f"audio {audio:.1f} s; bare median {b:.2f} s RTFx {audio / b:.1f}; voxproof median {v:.2f} s RTFx {audio / v:.1f}")
    print(f"ratio voxproof/bare (median of {args.repeats}): {v / b:.3f}  (target <= 1.10)")
    print(f"ratio voxproof/bare (best of {args.repeats}):   {min(vox) / min(bare):.3f}")


if __name__ == "__main__":
    main()
