"""Label-free WER estimate vs true WER per robustness condition (Whisper tiny.en, bundled 50 utterances).

    python benchmarks/monitor_estimate.py [--runs DIR] [--json out.json]

The calibration (confidence -> word correctness) is fitted on the clean rows of the run; each condition's
rows become request-log rows (``rows_from_run``: word confidences, features) and the monitor estimates
their WER without references (bootstrap 95 % interval over requests). The true WER is the corpus WER of
the same rows against their references. The clean row is in-sample (the calibration was fitted on it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _monitor_runs import DEFAULT_RUNS, ensure_runs


def true_wer(rows, norm) -> float:
    from voxproof.metrics.calibration import align_ops

    errors = words = 0
    for r in rows:
        if not r.ok or r.reference is None:
            continue
        ref = norm(r.reference).split()
        ops = align_ops(ref, norm(r.hypothesis or "").split())
        errors += sum(op != "equal" for op, _a, _b in ops)
        words += len(ref)
    return errors / words if words else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.monitor.estimate import estimate_window, request_mass
    from voxproof.monitor.profile import profile_from_run
    from voxproof.monitor.runlog import log_row
    from voxproof.monitor.source import batch_from_records
    from voxproof.run.store import RunStore

    runs = ensure_runs(args.runs)
    norm = get_normalizer("whisper-en")
    cal = profile_from_run(runs["production"]).calibration
    table = []
    sources = [(runs["production"], None), (runs["quiet-production"], "default"),
               (runs["quiet-canary-vad"], "vad_filter=true")]
    for run_dir, label in sources:
        with RunStore.open(run_dir) as store:
            conds = [c for c, _ in store.conditions()] or sorted({r.condition for r in store.rows()})
            if "clean" not in conds and store.count_rows():
                conds = sorted({r.condition for r in store.rows()})
            for cond in (["clean"] if label is None else []) + [c for c in conds if c != "clean"]:
                rows = list(store.rows(condition=cond))
                if not rows:
                    continue
                batch = batch_from_records([log_row(r, ts=float(i), version="v") for i, r in enumerate(rows)])
                est = estimate_window(request_mass(batch, cal), cal, resamples=1000, min_words=1)
                truth = true_wer(rows, norm)
                name = cond if label is None else f"{cond} ({label})"
                table.append({"condition": name, "utterances": len(rows), "true_wer": truth,
                              "estimate": est.point, "low": est.low, "high": est.high,
                              "error": est.point - truth, "covered": est.low <= truth <= est.high,
                              "empty_outputs": sum(not (r.hypothesis or "").strip() for r in rows)})
    print(f"calibration: {cal.words} clean words, ECE {cal.ece:.3f}, deletions/word {cal.deletions_per_word:.3f}, "
          f"insertion share {cal.insertion_share:.3f}")
    print("| condition | true WER | estimated WER [95 % CI] | error (est - true) | truth in CI | empty outputs |")
    print("|---|---:|---:|---:|:-:|---:|")
    for t in table:
        print(f"| {t['condition']} | {100 * t['true_wer']:.1f} % | {100 * t['estimate']:.1f} % "
              f"[{100 * t['low']:.1f}, {100 * t['high']:.1f}] | {100 * t['error']:+.1f} pts | "
              f"{'yes' if t['covered'] else 'no'} | {t['empty_outputs']} |")
    errs = [abs(t["error"]) for t in table]
    print(f"mean |error| {100 * sum(errs) / len(errs):.1f} pts; optimistic (est < true, truth above CI) in "
          f"{sum(t['high'] < t['true_wer'] for t in table)} of {len(table)} conditions")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
