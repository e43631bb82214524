"""Streaming latency on the bundled LibriSpeech test-other utterances: PocketSphinx fed in 100, 250 and
500 ms chunks (native partial hypotheses), and optionally Whisper tiny.en in chunked re-decoding mode.

    python benchmarks/streaming.py [--limit 10] [--chunks 0.1,0.25,0.5] [--whisper-chunk 1.0]

For each chunk length: time to first partial (from the start of the audio), final-result delay (after
the end of the audio), whether the decoder kept up with the live audio, and compute RTF, replayed on the
virtual live clock of voxproof.run.streaming from measured processing times. The baseline is the
non-streaming decode of the same clips (final delay = its processing time): ratios are streaming final
delay / full-clip decode time, measured in the same run. The load average is printed: on a shared
machine it inflates every wall-clock figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bundled import bundled_utterances


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--chunks", default="0.1,0.25,0.5")
    ap.add_argument("--whisper-chunk", type=float, default=0.0, help="also stream Whisper at this chunk (s); 0 = skip")
    args = ap.parse_args()
    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import load_backend
    from voxproof.run.provenance import cpu_model
    from voxproof.run.streaming import stream_clip, streaming_mode, summarize_streams

    utts = bundled_utterances()[: args.limit]
    clips = [(u, load_audio(u.audio, sample_rate=16000)) for u in utts]
    audio = sum(a.duration for _u, a in clips)
    print(f"{len(clips)} utterances, {audio:.1f} s audio, CPU {cpu_model()}, load avg {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    runs = [("sphinx", [], [float(c) for c in args.chunks.split(",")])] if args.chunks else []
    if args.whisper_chunk:
        runs.append(("whisper", ["cpu_threads=2"], [args.whisper_chunk]))
    for name, pairs, chunks in runs:
        backend = load_backend(name, kind="asr", pairs=pairs)
        backend.transcribe(clips[0][1])  # warm-up
        full = []
        for _u, a in clips:
            t0 = time.perf_counter()
            backend.transcribe(a)
            full.append(time.perf_counter() - t0)
        base = statistics.median(full)
        print(f"{name}: full-clip decode (baseline) median {base:.3f} s per utterance")
        print(f"  {'chunk':>6} {'first partial p50/p90 s':>24} {'final delay p50/p90 s':>22} {'ratio':>6} "
              f"{'keeps up':>9} {'RTF':>6}  mode")
        for chunk in chunks:
            results = [stream_clip(backend, a, chunk, u.id) for u, a in clips]
            s = summarize_streams(results, name, streaming_mode(backend))
            fp, fd = s.first_partial, s.final_delay
            print(f"  {chunk * 1000:>4.0f}ms {fp.get('p50', float('nan')):>11.3f} /{fp.get('p90', float('nan')):>7.3f}"
                  f"{'':>5} {fd['p50']:>9.3f} /{fd['p90']:>7.3f}{'':>4} {fd['p50'] / base:>6.2f} "
                  f"{s.keeps_up_share:>8.0%} {s.compute_rtf:>6.3f}  {s.mode}")
    print(f"ratio = streaming final-delay p50 / full-clip decode median; load avg now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
