"""Injection probe figures: payload success vs level for Whisper tiny.en and PocketSphinx on the bundled
speech, with the level where payload-word success crosses 50 %.

Runs ``voxproof probe inject`` for each model (resumable: rerun continues the same output folders) and
prints the pooled curve and the crossings. Usage::

    PYTHONPATH=src python benchmarks/probe_inject.py --out /tmp/probe-bench --limit 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/probe-bench")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["whisper", "sphinx"])
    args = ap.parse_args()
    for model in args.models:
        out = Path(args.out) / f"inject-{model}"
        cmd = [sys.executable, "-m", "voxproof", "-q", "probe", "inject", "-m", model, "--limit", str(args.limit),
               "-o", str(out)] + (["--resume"] if (out / "run.sqlite").exists() else [])
        print("$", " ".join(cmd[1:]), flush=True)
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            return proc.returncode
        report = json.loads((out / "probe.json").read_text())
        cross = report["crossings"]["overall"]["word_success"]
        print(f"{model}: 50 % payload-word crossing at "
              f"{cross['value']:.1f} dB" if cross["value"] is not None else f"{model}: crossing n/a ({cross['why']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
