"""Disagreement detector figures: Whisper tiny.en vs PocketSphinx on the injection probes of
``benchmarks/probe_inject.py`` (same folder) and on the ``noise-ladder`` suite over the same carriers.

Usage (after probe_inject.py with the same --out)::

    PYTHONPATH=src python benchmarks/probe_detect.py --out /tmp/probe-bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/probe-bench")
    args = ap.parse_args()
    out = Path(args.out)
    vox = [sys.executable, "-m", "voxproof", "-q"]
    for model in ("whisper", "sphinx"):
        run = out / f"nl-{model}"
        cmd = vox + ["eval", "-m", model, "-d", str(out / "carriers.jsonl"), "--suite", "noise-ladder",
                     "--features", "none", "--json-only", "-o", str(run)] + (["--resume"] if run.exists() else [])
        if subprocess.run(cmd, check=False).returncode != 0:
            return 1
    pairs = []
    for name in ("inject-plain", "inject-variants", "nl"):
        pairs += ["--pair", str(out / f"{name}-whisper"), str(out / f"{name}-sphinx")]
    return subprocess.run(vox + ["probe", "detect", *pairs, "-o", str(out / "detect")], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
