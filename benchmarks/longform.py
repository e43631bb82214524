"""Long-form sessions: a 20-minute session per speaker built from the bundled utterances, decoded natively
and chunked, scored with one alignment over the session, against the per-utterance WER of the same
audio; and the cost of that alignment on a 2-hour session.

    python benchmarks/longform.py align-cost                 # one alignment over ~2 h of words
    python benchmarks/longform.py sessions --minutes 20 --speakers 3080 -m whisper --out /tmp/lf

``sessions`` writes OUT/manifest.jsonl (one session per speaker, utterances repeated in seeded orders
until the session is MINUTES long), then runs ``voxproof eval`` natively and with --chunk-seconds 30
--chunk-overlap 5, and prints session WER, loops, dropped windows and WER by window for both, beside
the per-utterance WER of the same utterances (each utterance decoded alone, once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def align_cost(hours: float, seed: int) -> None:
    from voxproof.metrics.align import align
    from voxproof.metrics.longform import loops_of
    from voxproof.manifest import bundled_dataset_path, read_manifest
    from voxproof.metrics.normalize import get_normalizer

    norm = get_normalizer("whisper-en")
    words = [w for u in read_manifest(bundled_dataset_path()) for w in norm(u.text or "").split()]
    rate = 2.6  # words per second of read speech (bundled sample: 1,060 words in ~410 s)
    n = int(hours * 3600 * rate)
    rng = np.random.default_rng(seed)
    ref = [words[i % len(words)] for i in rng.permutation(n * 2)[:n] % len(words)]
    hyp = []
    for w in ref:  # ~12 % errors: 7 % substitutions, 3 % deletions, 2 % insertions
        r = rng.random()
        if r < 0.07:
            hyp.append(words[int(rng.integers(len(words)))])
        elif r < 0.10:
            continue
        else:
            hyp.append(w)
        if rng.random() < 0.02:
            hyp.append(words[int(rng.integers(len(words)))])
    for m in (n // 8, n // 4, n // 2, n):
        t = time.perf_counter()
        a = align(ref[:m], hyp[: int(m * len(hyp) / n)])
        el = time.perf_counter() - t
        print(f"{m:>6} reference words ({m / rate / 3600:.2f} h): align {el:.2f} s, WER {a.counts.error_rate:.3f}")
    t = time.perf_counter()
    loops_of("s", ref, hyp, 3, 3)
    print(f"loop n-gram count over {n} words: {time.perf_counter() - t:.2f} s")


def sessions(args: argparse.Namespace) -> None:
    import soundfile as sf

    from voxproof.manifest import write_jsonl
    from voxproof.perturb.sessions import SAMPLE_RATE, build_session, bundled_pieces, to_utterance

    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    groups = bundled_pieces()
    utts, singles = [], []
    for speaker in args.speakers:
        s = build_session(f"session-{speaker}-{args.minutes:g}min", groups[speaker], args.seed,
                          min_seconds=args.minutes * 60)
        path = out / "audio" / f"{s.id}.wav"
        sf.write(str(path), s.samples, SAMPLE_RATE, subtype="PCM_16")
        utts.append(to_utterance(s).replace(audio=str(path)))
        singles += [u for u, _ in groups[speaker]]
        print(f"{s.id}: {s.duration / 60:.1f} min, {len(s.segments)} utterances, {len(s.text.split())} words")
    write_jsonl(utts, out / "manifest.jsonl")
    write_jsonl(singles, out / "utterances.jsonl")
    env = dict(os.environ)
    base = [sys.executable, "-m", "voxproof", "eval", "-m", args.model, "--json-only", "--max-seconds",
            str(args.minutes * 60 + 120)]
    runs = {"native": [], "chunked": ["--chunk-seconds", "30", "--chunk-overlap", "5"]}
    for label, extra in runs.items():
        if (out / label / "summary.json").is_file() and args.reuse:
            continue
        t = time.perf_counter()
        subprocess.run(base + ["--data", str(out / "manifest.jsonl"), "-o", str(out / label)] + extra,
                       env=env, check=False, stdout=subprocess.DEVNULL)
        print(f"{label}: decoded in {time.perf_counter() - t:.0f} s")
    if not ((out / "per-utterance" / "summary.json").is_file() and args.reuse):
        subprocess.run(base + ["--data", str(out / "utterances.jsonl"), "-o", str(out / "per-utterance")],
                       env=env, check=False, stdout=subprocess.DEVNULL)
    from voxproof.report.html import fmt_interval
    from voxproof.report.longform import longform_lines

    for label in (*runs, "per-utterance"):
        summary = json.loads((out / label / "summary.json").read_text())
        cond = summary["scores"]["conditions"][0]
        print(f"\n{label}: corpus WER {fmt_interval(cond['wer'])} ({cond['utterances']} rows)")
        if cond.get("longform"):
            for line in longform_lines(cond["longform"]):
                print("  " + line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("align-cost")
    a.add_argument("--hours", type=float, default=2.0)
    a.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sessions")
    s.add_argument("--minutes", type=float, default=20.0)
    s.add_argument("--speakers", nargs="+", default=["1688", "1998", "2033", "3080", "367"])
    s.add_argument("-m", "--model", default="whisper")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--reuse", action="store_true", help="keep runs already complete in OUT")
    args = ap.parse_args()
    if args.cmd == "align-cost":
        align_cost(args.hours, args.seed)
    else:
        sessions(args)


if __name__ == "__main__":
    main()
