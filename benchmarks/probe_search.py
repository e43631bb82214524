"""Black-box search figures on Whisper tiny.en: held-out WER (or deletion rate) reached vs query budget at
a fixed SNR, against random noise at the same SNR and L-inf, on held-apart utterances.

Runs ``voxproof probe search`` (resumable: rerunning continues from the state file) and prints the curve.
Usage::

    PYTHONPATH=src python benchmarks/probe_search.py --out /tmp/probe-bench/search --queries 240
    PYTHONPATH=src python benchmarks/probe_search.py --objective deletions --placement prefix ...
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/probe-bench/search")
    ap.add_argument("--model", default="whisper")
    ap.add_argument("--queries", type=int, default=240)
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--linf", type=float, default=0.05)
    ap.add_argument("--objective", default="wer")
    ap.add_argument("--placement", default="additive")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    cmd = [sys.executable, "-m", "voxproof", "-q", "probe", "search", "-m", args.model, "--queries", str(args.queries),
           "--snr", str(args.snr), "--linf", str(args.linf), "--objective", args.objective, "--placement",
           args.placement, "--seed", str(args.seed), "-o", str(out)]
    if (out / "run.sqlite").exists():
        cmd.append("--resume")
    print("$ voxproof", " ".join(cmd[4:]), flush=True)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
