"""Scorer speed: voxproof's alignment counts against ``jiwer.process_words`` on the same 20,000
utterance pairs, and the time of a 1,000-resample bootstrap over 20,000 utterances.

    python benchmarks/scorer_speed.py [--pairs 20000] [--repeat 3]

Pairs are real-length sentences: the 50 LibriSpeech test-other transcripts (normalised with
whisper-en), each hypothesis a copy with random substitutions, deletions and insertions at a rate
drawn from 2-40 %. jiwer gets the whole list in one ``process_words`` call (its fastest use; only that
call is timed); voxproof counts utterance by utterance (what scoring stores). Per-utterance counts must be identical (checked; exit 1 otherwise).
Targets: throughput ratio >= 3x; bootstrap < 0.5 s. Best of ``--repeat`` timings, wall clock and CPU
time (the steadier figure when other work shares the machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import jiwer
import numpy as np

from voxproof.metrics.align import word_counts
from voxproof.metrics.intervals import bootstrap_rate, resample_sums
from voxproof.metrics.normalize import get_normalizer

REPO = Path(__file__).resolve().parents[1]


def transcripts() -> list[str]:
    path = REPO.parent / "shared" / "data" / "librispeech-test-other-mini" / "transcripts.tsv"
    norm = get_normalizer("whisper-en")
    return [norm(line.split("\t", 1)[1]) for line in path.read_text().splitlines() if line.strip()]


def make_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts = transcripts()
    vocab = sorted({w for t in texts for w in t.split()})
    refs, hyps = [], []
    for _ in range(n):
        words = rng.choice(texts).split()
        rate = rng.uniform(0.02, 0.4)
        out = []
        for w in words:
            r = rng.random()
            if r < rate / 3:
                continue
            out.append(rng.choice(vocab) if r < 2 * rate / 3 else w)
            if rng.random() < rate / 3:
                out.append(rng.choice(vocab))
        refs.append(" ".join(words))
        hyps.append(" ".join(out) or words[0])  # jiwer needs a non-empty batch entry
    return refs, hyps


def jiwer_counts(out: jiwer.WordOutput) -> list[tuple[int, int, int, int]]:
    """Per-utterance counts read from jiwer's alignment chunks (outside the timed call)."""
    counts = []
    for chunks in out.alignments:
        h = s = d = i = 0
        for c in chunks:
            if c.type == "equal":
                h += c.ref_end_idx - c.ref_start_idx
            elif c.type == "substitute":
                s += c.ref_end_idx - c.ref_start_idx
            elif c.type == "delete":
                d += c.ref_end_idx - c.ref_start_idx
            else:
                i += c.hyp_end_idx - c.hyp_start_idx
        counts.append((h, s, d, i))
    return counts


def voxproof_counts(refs: list[str], hyps: list[str]) -> list[tuple[int, int, int, int]]:
    out = []
    for r, h in zip(refs, hyps):
        c = word_counts(r, h)
        out.append((c.hits, c.substitutions, c.deletions, c.insertions))
    return out


def best_time(fn, repeat: int):
    """Best wall-clock and best CPU seconds of ``repeat`` calls, and the last result. On a shared
    machine CPU time is the steadier figure (wall clock includes waiting for a core)."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return (wall, cpu), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    refs, hyps = make_pairs(args.pairs)
    words = sum(len(r.split()) for r in refs)
    print(f"{args.pairs} pairs, {words} reference words ({words / args.pairs:.1f} per utterance)")

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {args.repeat}, wall / CPU seconds")
    (jw, jc), out = best_time(lambda: jiwer.process_words(refs, hyps), args.repeat)
    c_jiwer = jiwer_counts(out)
    (vw, vc), c_vox = best_time(lambda: voxproof_counts(refs, hyps), args.repeat)
    identical = c_jiwer == c_vox
    print(f"jiwer.process_words : {jw:.3f} s wall, {jc:.3f} s CPU  ({args.pairs / jc:,.0f} utterances per CPU second)")
    print(f"voxproof word_counts: {vw:.3f} s wall, {vc:.3f} s CPU  ({args.pairs / vc:,.0f} utterances per CPU second)")
    print(f"throughput ratio voxproof/jiwer: {jw / vw:.2f}x wall, {jc / vc:.2f}x CPU (target >= 3x)  "
          f"counts identical: {identical}")

    errors = np.array([s + d + i for _, s, d, i in c_vox])
    ref_len = np.array([h + s + d for h, s, d, _ in c_vox])
    (bw, bc), iv = best_time(lambda: bootstrap_rate(errors, ref_len, n_resamples=1000, seed=0), args.repeat)
    speakers = [k % 200 for k in range(args.pairs)]
    (sw, sc), ivb = best_time(lambda: bootstrap_rate(errors, ref_len, groups=speakers, n_resamples=1000, seed=0),
                              args.repeat)
    print(f"bootstrap 1,000 resamples x {args.pairs} utterances: {bw:.3f} s wall, {bc:.3f} s CPU (target < 0.5 s)  "
          f"WER {100 * iv.estimate:.2f} % [{100 * iv.low:.2f}, {100 * iv.high:.2f}]")
    distinct = len(np.unique(np.column_stack([errors, ref_len]), axis=0))
    unique_rows = np.column_stack([errors, ref_len, np.arange(args.pairs)]).astype(float)
    (iw, ic), _ = best_time(lambda: resample_sums(unique_rows, 1000, np.random.default_rng(0)), args.repeat)
    print(f"  ({distinct} distinct (errors, ref_len) rows: multinomial draw over rows; when every row is "
          f"distinct, index resampling: {iw:.3f} s wall, {ic:.3f} s CPU)")
    print(f"speaker-blocked (200 speakers) incl. grouping: {sw:.3f} s wall, {sc:.3f} s CPU  "
          f"[{100 * ivb.low:.2f}, {100 * ivb.high:.2f}]")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
