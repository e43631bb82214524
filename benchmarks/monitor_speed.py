"""Drift and label-free WER estimate over 1,000,000 logged requests read from SQLite in chunks.

    python benchmarks/monitor_speed.py [--rows 1000000] [--window 1000] [--db /tmp/monitor-1m.sqlite]

The log is generated once (reused when present) from real Whisper outputs on the bundled speech (clean
rows of ``_monitor_runs.py``'s production run, drawn at random with a little jitter on the features),
with word confidences. The measured pass runs in a fresh child process: stream the SQLite log in 50,000-row
chunks, cut fixed windows, compute drift (PSI + KS / chi-square, Holm) and the estimate with a 200-draw
bootstrap per window. Printed: wall time and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _monitor_runs import DEFAULT_RUNS, ensure_runs

TARGET_S, TARGET_MB = 10.0, 500.0


def generate(db: Path, rows: int, run: Path, seed: int = 0) -> None:
    from voxproof.monitor.runlog import log_row
    from voxproof.monitor.source import create_sqlite_log, insert_sqlite
    from voxproof.run.store import RunStore

    with RunStore.open(run) as s:
        base = [log_row(r, ts=0.0, version="v1") for r in s.rows(condition="clean")]
    rng = np.random.default_rng(seed)
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = create_sqlite_log(tmp)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    jitter = ("rms_dbfs", "snr_db", "conf_mean", "words_per_s", "latency_s")

    def batches():
        for i in range(rows):
            r = dict(base[int(rng.integers(0, len(base)))])
            r["ts"] = 1.7e9 + i * 0.05
            r["request_id"] = f"{i:032x}"
            for k in jitter:
                if r.get(k) is not None:
                    r[k] = float(r[k]) * (1 + 0.01 * float(rng.standard_normal()))
            yield r

    insert_sqlite(conn, batches())
    conn.close()
    tmp.rename(db)


def measure(db: str, profile: str, window: int, markers: bool = False) -> dict:
    from voxproof.monitor.analysis import analyze_log
    from voxproof.monitor.drift import WindowSpec
    from voxproof.monitor.policy import load_policy
    from voxproof.monitor.profile import load_profile
    from voxproof.monitor.source import open_log

    base = load_policy()
    policy = base.__class__(**{**base.__dict__, "window": WindowSpec("count", window, window, 50)})
    prof = load_profile(profile)
    t = time.perf_counter()
    cpu = time.process_time()
    n = alarms = 0
    est = []
    for rep in analyze_log(open_log(db), prof, policy, markers=markers):
        n += 1
        alarms += rep.drift.status == "drift"
        if rep.estimate is not None and rep.estimate.reason is None:
            est.append(rep.estimate.point)
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"windows": n, "alarms": alarms, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_mb,
            "estimate_median": float(np.median(est)) if est else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/monitor-1m.sqlite"))
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--markers", action="store_true", help="also the failure markers (as 'monitor analyze' does)")
    ap.add_argument("--child", nargs=4, metavar=("DB", "PROFILE", "WINDOW", "MARKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], int(args.child[2]), args.child[3] == "1")))
        return
    from voxproof.monitor.profile import profile_from_run

    run = ensure_runs(args.runs, ("production",))["production"]
    if not args.db.exists():
        t = time.perf_counter()
        generate(args.db, args.rows, run)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s -> {args.db} "
              f"({args.db.stat().st_size / 1e6:.0f} MB)")
    profile = args.db.with_suffix(".profile.json")
    profile_from_run(run).save(profile)
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--child", str(args.db), str(profile), str(args.window),
                          "1" if args.markers else "0"],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    what = "drift + estimate + markers" if args.markers else "drift + estimate"
    print(f"{args.rows:,} requests, {r['windows']} windows of {args.window}: {what} in {r['wall_s']:.1f} s "
          f"({r['cpu_s']:.1f} s CPU; load {load:.1f} on {os.cpu_count()} cores) (target < {TARGET_S:g} s), peak RSS {r['peak_rss_mb']:.0f} MB (target < {TARGET_MB:g} MB); "
          f"{r['alarms']} drift alarms; median estimated WER {100 * r['estimate_median']:.1f} %")


if __name__ == "__main__":
    main()
