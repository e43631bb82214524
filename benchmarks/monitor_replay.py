"""Replay evidence for drift alarms: clean traffic, then telephony, then noise at 5 dB, as a request log.

    python benchmarks/monitor_replay.py [--runs DIR] [--clean 10000] [--shift 1000] [--window 100]

Real Whisper tiny.en outputs on the bundled speech (``_monitor_runs.py``) become request-log rows
(``rows_from_run``) written as a team's own JSONL log, read back by the monitor. Requests draw clips at
random (seeded) from: clean, then ``telephony/g711-mulaw``, then ``noise-ladder/snr=5``.

Two references: ``held-out`` (profile from the 25 even-numbered clips, traffic from the other 25: the
honest test, since production traffic is never the reference's own clips) and ``in-sample`` (all 50).
Reported: false alarms over the fixed clean windows with a Clopper-Pearson 95 % interval, and the
requests after each shift until the first alarming window (sliding windows, step = window / 10).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _monitor_runs import DEFAULT_RUNS, ensure_runs

PHASES = (("clean", "clean"), ("telephony", "telephony/g711-mulaw"), ("noise 5 dB", "noise-ladder/snr=5"))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def replay(run: Path, keep_traffic, sizes: dict[str, int], path: Path, seed: int = 0) -> list[int]:
    """Write the replayed log; returns the request index where each phase starts."""
    from voxproof.monitor.runlog import log_row
    from voxproof.monitor.source import write_jsonl
    from voxproof.run.store import RunStore

    rng = np.random.default_rng(seed)
    starts, i = [], 0
    with RunStore.open(run) as store, path.open("w") as fh:
        fh.close()
        for label, cond in PHASES:
            rows = [r for r in store.rows(condition=cond) if keep_traffic(r.utt_id)]
            starts.append(i)
            picks = rng.integers(0, len(rows), sizes[label])
            recs = []
            for p in picks:
                recs.append(log_row(rows[p], ts=1.7e9 + i, version="v1", request_id=f"req-{i}"))
                i += 1
            write_jsonl(recs, path, append=True)
    return starts


def evaluate(run, ids, reference_keep, traffic_keep, args, label) -> None:
    from voxproof.monitor.analysis import analyze_log
    from voxproof.monitor.drift import WindowSpec
    from voxproof.monitor.policy import load_policy
    from voxproof.monitor.profile import profile_from_run
    from voxproof.monitor.source import open_log

    profile = profile_from_run(run, keep=reference_keep)
    sizes = {"clean": args.clean, "telephony": args.shift, "noise 5 dB": args.shift}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.jsonl"
        starts = replay(run, traffic_keep, sizes, log)
        base = load_policy(args.policy)
        if getattr(args, "features", None):
            from voxproof.monitor.drift import DriftSettings

            d = base.drift
            base = base.__class__(**{**base.__dict__, "drift": DriftSettings(d.psi, d.alpha, d.correction,
                                                                             args.features)})
        w = args.window
        fixed = base.__class__(**{**base.__dict__, "window": WindowSpec("count", w, w, min(w, 50))})
        reps = list(analyze_log(open_log(log), profile, fixed, estimate=False, markers=False))
        clean = [r for r in reps if not r.partial and r.drift.end < 1.7e9 + starts[1]]
        k = sum(r.drift.status == "drift" for r in clean)
        lo, hi = clopper_pearson(k, len(clean))
        drifted = sorted({f for r in clean for f in r.drift.drifted})
        print(f"[{label}] reference {profile.n_requests} clean clips; clean phase: {k} alarms in {len(clean)} "
              f"fixed windows of {w} -> false-alarm rate {100 * k / len(clean):.1f} % "
              f"[{100 * lo:.1f}, {100 * hi:.1f}] (Clopper-Pearson 95 %)" + (f"; features: {drifted}" if k else ""))
        step = max(1, w // 10)
        sliding = base.__class__(**{**base.__dict__, "window": WindowSpec("count", w, step, min(w, 50))})
        reps = list(analyze_log(open_log(log), profile, sliding, estimate=False, markers=False))
        before: set[str] = set()  # features already drifting in the phase before (telephony before noise)
        bounds = [*starts[1:], None]
        for k, ((name, _c), start) in enumerate(list(zip(PHASES, starts))[1:]):
            t0 = 1.7e9 + start
            first = next((r for r in reps if r.drift.end >= t0 and set(r.drift.drifted) - before), None)
            end = bounds[k + 1]
            before = {f for r in reps if r.drift.start >= t0 and (end is None or r.drift.end < 1.7e9 + end)
                      for f in r.drift.drifted}
            if first is None:
                print(f"[{label}] {name}: no alarm")
                continue
            n = int(first.drift.end - t0) + 1
            print(f"[{label}] {name}: first alarm on a newly drifting feature {n} requests after the shift "
                  f"(window {first.drift.index}, drifted: {', '.join(first.drift.drifted)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--clean", type=int, default=10000)
    ap.add_argument("--shift", type=int, default=1000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--policy", default=None)
    args = ap.parse_args()
    from voxproof.run.store import RunStore

    run = ensure_runs(args.runs, ("production",))["production"]
    with RunStore.open(run) as s:
        ids = sorted({r.utt_id for r in s.rows(condition="clean")})
    even = set(ids[::2])
    evaluate(run, ids, lambda u: u in even, lambda u: u not in even, args, "held-out")
    evaluate(run, ids, None, lambda u: True, args, "in-sample")
    # the same without the codec and sample-rate fields: alarms from the audio and output features alone
    from voxproof.monitor.profile import CATEGORICAL, NUMERIC

    args.features = tuple(f for f in NUMERIC + CATEGORICAL if f not in ("codec", "sample_rate"))
    evaluate(run, ids, lambda u: u in even, lambda u: u not in even, args, "held-out, no codec field")


if __name__ == "__main__":
    main()
