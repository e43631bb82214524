"""Real Whisper tiny.en runs on the bundled 50 utterances that the monitor benchmarks replay as request logs.

    python benchmarks/_monitor_runs.py [--runs DIR]

``production``: Whisper (defaults) under clean + one or more rungs of every robustness suite family
(noise, telephony, codecs, rooms) + channel/gain=-35dB, features ``full`` (Silero speech ratio included).
``quiet-production`` / ``quiet-canary-vad``: Whisper without / with ``vad_filter=true`` on speech 55 dB down
(``gain:-55``, the gate's planted regression: the VAD takes quiet speech for silence). Runs are resumable and reused when complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = Path("/tmp/voxproof-monitor-runs")

# a subset of the `full` suite (its condition names kept): every family, mild to severe
CONDITIONS = (
    "noise-ladder/snr=10", "noise-ladder/snr=5", "noise-ladder/snr=0",
    "telephony/g711-mulaw", "telephony/gsm", "telephony/amr-nb=4.75k",
    "codecs/mp3=16k", "codecs/opus=6k",
    "rooms/large_church", "rooms/rt60=1.2s",
    "channel/gain=-35dB",
)
QUIET = "gain:-55"  # the gate's planted regression: speech 55 dB down, where faster-whisper's VAD drops it


def _conditions(names):
    from voxproof.perturb import resolve_conditions
    from voxproof.perturb.suites import get_suite

    by_name = {c.name: c for c in get_suite("full").conditions}
    return [by_name[n] if n in by_name else resolve_conditions([], [n])[0] for n in names]


def ensure_runs(runs: Path = DEFAULT_RUNS, only: tuple[str, ...] = ()) -> dict[str, Path]:
    from voxproof.backends.registry import load_backend
    from voxproof.manifest import bundled_dataset_path, dataset_hash, read_manifest
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import RunStore, store_path

    utts = list(read_manifest(bundled_dataset_path()))
    norm = get_normalizer("whisper-en")
    dataset = {"source": "librispeech-test-other-mini", "hash": dataset_hash(utts), "utterances": len(utts)}
    plans = {
        "production": ([], _conditions(CONDITIONS), True),
        "quiet-production": ([], _conditions([QUIET]), False),
        "quiet-canary-vad": (["vad_filter=true"], _conditions([QUIET]), False),
    }
    out = {}
    for name, (pairs, conds, clean) in plans.items():
        if only and name not in only:
            continue
        run_dir = runs / name
        expected = len(utts) * (len(conds) + (1 if clean else 0))
        if store_path(run_dir).exists():
            with RunStore.open(run_dir) as store:
                if store.count_rows() >= expected:
                    out[name] = run_dir
                    continue
        print(f"running {name}: {expected} rows into {run_dir}", file=sys.stderr)
        run_eval(
            lambda pairs=pairs: load_backend("whisper", kind="asr", pairs=pairs),
            utts, run_dir,
            options=RunOptions(workers=1, features="full", include_clean=clean),
            conditions=conds, normalizer={"name": norm.name, "version": norm.version}, dataset=dataset,
            resume=store_path(run_dir).exists(),
        )
        out[name] = run_dir
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--only", action="append", default=[], help="Only this run (repeatable).")
    args = ap.parse_args()
    for k, v in ensure_runs(args.runs, tuple(args.only)).items():
        print(k, v)
