"""Throughput of Whisper tiny.en on the bundled 50 LibriSpeech test-other utterances: sequential vs
batched (faster-whisper's batched pipeline) vs 2 workers, as ratios against the sequential figure
measured in the same run.

    python benchmarks/throughput.py [--rounds 2] [--batch-sizes 4,8,16] [--limit N]

Configurations (every one int8 on CPU, greedy, word timestamps on):
- sequential:   one model, cpu_threads=2, one clip per call (the baseline, ratio 1.00)
- batched bN:   one model, cpu_threads=2, ``transcribe_batch`` with batch_size=N (clips laid end to end
                and decoded N encoder windows at a time)
- 2 workers:    two models, cpu_threads=1 each, two threads pulling clips from one queue
Audio is decoded before timing; each configuration makes one untimed warm-up call. Rounds interleave
the configurations (round 1: all, round 2: all...) so a change in machine load hits every one alike;
the figure per configuration is the median over rounds, with the spread printed. WER is printed beside
each so a speed-up that changes the text is visible. The 1-minute load average is printed too: on a
machine shared with other work, wall-clock ratios move with it.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bundled import bundled_utterances


def load_clips(limit: int | None):
    from voxproof.audio.io import load_audio

    utts = bundled_utterances()[:limit] if limit else bundled_utterances()
    return [(u, load_audio(u.audio, sample_rate=16000)) for u in utts]


def whisper(threads: int, batch_size: int = 8):
    from voxproof.backends.whisper import WhisperOptions, WhisperTranscriber

    return WhisperTranscriber(WhisperOptions(cpu_threads=threads, batch_size=batch_size))


def run_sequential(model, clips):
    return [model.transcribe(a).text for _u, a in clips]


def run_batched(model, clips):
    return [t.text for t in model.transcribe_batch([a for _u, a in clips])]


def run_workers(models, clips):
    work: queue.Queue[int] = queue.Queue()
    for i in range(len(clips)):
        work.put(i)
    texts: list[str | None] = [None] * len(clips)

    def worker(model):
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                return
            texts[i] = model.transcribe(clips[i][1]).text

    threads = [threading.Thread(target=worker, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return texts


def wer(clips, texts) -> float:
    from voxproof.metrics.align import count_edits
    from voxproof.metrics.counts import total
    from voxproof.metrics.normalize import get_normalizer

    norm = get_normalizer("whisper-en")
    return total(count_edits(norm(u.text).split(), norm(t or "").split()) for (u, _a), t in zip(clips, texts)).error_rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-sizes", default="8")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None,
                    help="write the points here; 'voxproof report RUN --throughput FILE' puts them in the report")
    args = ap.parse_args()
    from voxproof.run.provenance import cpu_model

    clips = load_clips(args.limit)
    audio = sum(a.duration for _u, a in clips)
    seq = whisper(2)
    pair = [whisper(1), whisper(1)]
    warm = clips[0][1]
    configs = {"sequential": (lambda: run_sequential(seq, clips))}
    for b in (int(x) for x in args.batch_sizes.split(",")):
        model = whisper(2, batch_size=b)
        model.transcribe_batch([warm, warm])
        configs[f"batched b{b}"] = (lambda m=model: run_batched(m, clips))
    configs["2 workers x 1 thread"] = lambda: run_workers(pair, clips)
    seq.transcribe(warm)
    for m in pair:
        m.transcribe(warm)

    print(f"Whisper tiny.en int8, {len(clips)} utterances, {audio:.1f} s audio; CPU {cpu_model()}, "
          f"{os.cpu_count()} logical CPUs; {args.rounds} interleaved rounds")
    walls: dict[str, list[float]] = {k: [] for k in configs}
    cpus: dict[str, list[float]] = {k: [] for k in configs}
    wers: dict[str, float] = {}
    loads = []
    for r in range(args.rounds):
        for name, fn in configs.items():
            loads.append(os.getloadavg()[0])
            c0, t0 = time.process_time(), time.perf_counter()
            texts = fn()
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
            wers[name] = wer(clips, texts)
    base = statistics.median(walls["sequential"])
    cpu_base = statistics.median(cpus["sequential"])
    print(f"{'configuration':<24}{'wall s':>9}{'RTFx':>8}{'ratio':>8}{'range of ratio':>18}{'CPU s':>8}"
          f"{'CPU ratio':>10}{'WER':>8}")
    for name in configs:
        w = statistics.median(walls[name])
        c = statistics.median(cpus[name])
        ratios = [base / x for x in walls[name]]
        print(f"{name:<24}{w:>9.1f}{audio / w:>8.1f}{base / w:>8.2f}{min(ratios):>9.2f}-{max(ratios):<8.2f}"
              f"{c:>8.1f}{cpu_base / c:>10.2f}{wers[name]:>8.3f}")
    if args.json:
        import json

        points = [{"label": name, "rtfx": audio / statistics.median(walls[name]),
                   "ratio_vs_sequential": base / statistics.median(walls[name]), "wer": wers[name],
                   "rounds": args.rounds, "cpu_model": cpu_model()} for name in configs]
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(points, fh, indent=2)
    print(f"ratio = sequential wall time / configuration wall time (higher is faster); CPU ratio = the same "
          f"with process CPU seconds (steadier when other work shares the machine); 1-min load average "
          f"during the runs {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
