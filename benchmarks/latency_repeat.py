"""Repeatability of voxproof's latency figures: the same configuration timed twice on the bundled 50
LibriSpeech test-other utterances; do the two runs agree within the interval each report prints?

    python benchmarks/latency_repeat.py [--model whisper|sphinx] [--limit N]

Per utterance the backend call is timed on the wall clock and in process CPU time (all threads). Each
pass gives a LatencyReport with a bootstrap interval of RTFx and of CPU-time RTFx; the second pass is
checked against the first (ratio = pass 2 / pass 1). One untimed warm-up call precedes the passes.
The 1-minute load average before each pass is printed: on a machine shared with other work the wall
clock moves with the load, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bundled import bundled_utterances

PAIRS = {"whisper": ["cpu_threads=2"], "sphinx": []}


def timed_pass(backend, clips, conditions):
    from voxproof.metrics.latency import latency_from_times

    wall, cpu, audio = [], [], []
    for _u, a in clips:
        c0, t0 = time.process_time(), time.perf_counter()
        backend.transcribe(a)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        audio.append(a.duration)
    return latency_from_times(wall, audio, cpu=cpu, ids=[u.id for u, _a in clips], conditions=conditions)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="whisper", choices=sorted(PAIRS))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import load_backend
    from voxproof.metrics.latency import Conditions, latency_agreement

    utts = bundled_utterances()[: args.limit] if args.limit else bundled_utterances()
    clips = [(u, load_audio(u.audio, sample_rate=16000)) for u in utts]
    t0 = time.perf_counter()
    backend = load_backend(args.model, kind="asr", pairs=PAIRS[args.model])
    load = time.perf_counter() - t0
    backend.transcribe(clips[0][1])  # warm-up
    opts = backend.info().options
    reports = []
    for i in (1, 2):
        cond = Conditions(backend=args.model, threads=opts.get("cpu_threads"), precision=opts.get("compute_type"),
                          warmup=1, notes=f"pass {i}")
        reports.append(timed_pass(backend, clips, cond))
    print(f"{args.model}: {len(clips)} utterances, {reports[0].audio_seconds:.1f} s audio, model load {load:.2f} s, "
          f"threads={opts.get('cpu_threads', 'n/a')} precision={opts.get('compute_type', 'n/a')} warm-up=1, "
          f"CPU {reports[0].conditions.cpu_model}")
    for i, r in enumerate(reports, 1):
        print(f"  pass {i}: load avg {r.conditions.load_average}: RTFx {r.rtfx:.2f} [{r.rtfx_interval[0]:.2f}, "
              f"{r.rtfx_interval[1]:.2f}], p50 {r.latency_percentiles[50]:.3f} s p90 {r.latency_percentiles[90]:.3f} s "
              f"p99 {r.latency_percentiles[99]:.3f} s, RTF IQR {r.rtf_iqr:.3f}; CPU-time RTFx {r.cpu_rtfx:.2f} "
              f"[{r.cpu_rtfx_interval[0]:.2f}, {r.cpu_rtfx_interval[1]:.2f}]")
    for measure in ("rtfx", "cpu_rtfx"):
        ag = latency_agreement(reports[0], reports[1], measure)
        print(f"  {measure:<8} pass2/pass1 = {ag.ratio:.3f}: {'agree' if ag.agree else 'DO NOT agree'} "
              f"(pass 2 within pass 1's interval: {ag.b_within_a}; pass 1 within pass 2's: {ag.a_within_b})")
    print(f"  load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
