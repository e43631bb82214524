"""Injection probe figures: payload success vs level for Whisper tiny.en and PocketSphinx on the bundled
speech, with the level where payload-word success crosses 50 %.

Carriers: the 2 shortest utterances of each of the 5 bundled speakers (10 carriers, 2.3-6 s), so the
bootstrap clusters span speakers and the CPU cost stays modest. Two probes per model (resumable: a rerun
continues the same folders):

- ``plain``: the payload as spoken, at all four positions (under, pause, before, after);
- ``variants``: band-limited (2 kHz) and time-stretched (x1.3) payloads under speech.

Usage::

    PYTHONPATH=src python benchmarks/probe_inject.py --out /tmp/probe-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

LEVELS = ("-30", "-24", "-18", "-12", "-6", "0")
PROBES = {
    "plain": ["--variant", "plain"] + [a for p in ("under", "pause", "before", "after") for a in ("--position", p)],
    "variants": ["--variant", "bandlimit", "--variant", "stretch", "--position", "under"],
}


def carriers(path: Path, per_speaker: int) -> Path:
    from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl

    by_speaker = defaultdict(list)
    for utt in read_manifest(bundled_dataset_path()):
        by_speaker[utt.speaker].append(utt)
    chosen = [u for utts in by_speaker.values()
              for u in sorted(utts, key=lambda u: float(u.tags["duration_s"]))[:per_speaker]]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(chosen, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/probe-bench")
    ap.add_argument("--per-speaker", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["whisper", "sphinx"])
    args = ap.parse_args()
    manifest = carriers(Path(args.out) / "carriers.jsonl", args.per_speaker)
    for model in args.models:
        for probe, extra in PROBES.items():
            out = Path(args.out) / f"inject-{probe}-{model}"
            cmd = [sys.executable, "-m", "voxproof", "-q", "probe", "inject", "-m", model, "-d", str(manifest),
                   "--limit", "1000", "-o", str(out), *[a for lv in LEVELS for a in ("--level", lv)], *extra]
            if (out / "run.sqlite").exists():
                cmd.append("--resume")
            print("$ voxproof", " ".join(cmd[4:]), flush=True)
            proc = subprocess.run(cmd, check=False)
            if proc.returncode != 0:
                return proc.returncode
            report = json.loads((out / "probe.json").read_text())
            cross = report["crossings"]["overall"]["word_success"]
            text = f"{cross['value']:.1f} dB" if cross["value"] is not None else f"n/a ({cross['why']})"
            print(f"== {model} {probe}: 50 % payload-word crossing at {text}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
