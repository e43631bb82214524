"""How fast is ``voxproof score RUN``? Before/after the vectorised calibration bootstrap, against sclite.

Measures, in one run on this machine (so the ratios hold even when the machine is busy; the CPU
seconds of each child process are reported beside the wall time):

1. ``voxproof score RUN`` end to end as a process on a 50-utterance run (target < 0.3 s), with this
   checkout's code ("after") and with the code of ``--before-ref`` (default: the commit before the
   change, extracted with ``git archive``), and ``sclite`` on the same 50 utterances (exported with
   ``voxproof export --format trn``): the ratio voxproof / sclite.
2. The calibration bootstrap alone on 20,000 utterances (utterance level, and word level with their
   words), 1,000 resamples (target < 3 s): the vectorised form against the plain per-resample loop
   it replaces (same resamples; the loop is timed on fewer resamples and scaled), and the largest
   difference between their intervals.

    python benchmarks/score_speed.py --run runs/whisper-bundled          # a finished 50-utterance run
    python benchmarks/score_speed.py                                     # evaluates Whisper first

Prints ``uptime``'s load: on a shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Best wall seconds and the CPU seconds (user + sys) of that best child run."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (wall, cpu))
    return best


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src)}


def _before_src(ref: str, work: Path) -> Path | None:
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True).stdout
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"before: cannot extract {ref} ({exc}); skipped")
        return None
    return work / "src"


def _make_run(work: Path) -> Path:
    run = work / "run"
    print("evaluating Whisper tiny.en on the bundled 50 utterances for the benchmark run ...")
    subprocess.run([sys.executable, "-m", "voxproof", "eval", "-o", str(run), "--features", "none"], check=True,
                   env=_env(REPO / "src"), stdout=subprocess.DEVNULL)
    return run


def process_times(run: Path, before_ref: str, repeat: int, work: Path) -> None:
    after_src = REPO / "src"
    score = [sys.executable, "-m", "voxproof", "score", str(run)]
    subprocess.run(score, env=_env(after_src), check=True, stdout=subprocess.DEVNULL)  # warm caches, pyc
    after = _timed(score, _env(after_src), repeat)
    old = _before_src(before_ref, work / "before")
    before = None
    if old is not None:
        subprocess.run(score, env=_env(old), check=True, stdout=subprocess.DEVNULL)
        before = _timed(score, _env(old), repeat)
    empty = _timed([sys.executable, "-c", "pass"], os.environ.copy(), repeat)
    print(f"\n1. voxproof score on {run} (50 utterances), best of {repeat}, wall s (CPU s)")
    if before:
        print(f"   before ({before_ref}):  {before[0]:7.3f}  ({before[1]:.3f})")
    print(f"   after:             {after[0]:7.3f}  ({after[1]:.3f})   target < 0.3 s: "
          f"{'met' if after[0] < 0.3 else 'not met'} on this machine")
    print(f"   python -c pass:    {empty[0]:7.3f}  ({empty[1]:.3f})   interpreter start alone")
    if before:
        print(f"   speed-up:          {before[0] / after[0]:.1f}x wall, {before[1] / max(after[1], 1e-9):.1f}x CPU")
    sctk = shutil.which("sctk")
    if sctk is None:
        print("   sclite: not installed (apt-get install sctk); no ratio")
        return
    out = work / "trn"
    subprocess.run([sys.executable, "-m", "voxproof", "export", str(run), "--format", "trn", "-o", str(out)],
                   env=_env(after_src), check=True, stdout=subprocess.DEVNULL)
    sclite = [sctk, "sclite", "-r", str(out / "ref.trn"), "trn", "-h", str(out / "hyp.trn"), "trn", "-i", "spu_id",
              "-o", "sum", "-O", str(out)]
    st = _timed(sclite, os.environ.copy(), repeat)
    print(f"   sclite:            {st[0]:7.3f}  ({st[1]:.3f})   same 50 utterances, alignment + report")
    print(f"   voxproof / sclite: {after[0] / st[0]:.1f}x wall"
          + (f" (before: {before[0] / st[0]:.1f}x)" if before else ""))


def calibration_times(n_utts: int, words_per_utt: float, n_boot: int, plain_boot: int) -> None:
    sys.path.insert(0, str(REPO / "src"))
    import numpy as np

    from voxproof.metrics import calibration as cal

    rng = np.random.default_rng(0)
    words = rng.poisson(words_per_utt, n_utts).clip(1)
    group = np.repeat(np.arange(n_utts), words)
    wconf = rng.beta(5, 1, group.size).astype(np.float32).astype(float)  # float32 like Whisper's
    wcorr = rng.random(group.size) < wconf
    uconf = rng.beta(5, 1, n_utts).astype(np.float32).astype(float)
    ucorr = rng.random(n_utts) < uconf ** 3
    print(f"\n2. calibration bootstrap, {n_utts:,} utterances ({group.size:,} words), {n_boot:,} resamples")
    for level, conf, corr, g in (("utterance", uconf, ucorr, np.arange(n_utts)), ("word", wconf, wcorr, group)):
        t, c = time.perf_counter(), time.process_time()
        fast = cal._bootstrap_draws(conf, corr, g, cal.DEFAULT_BINS, n_boot, np.random.default_rng(1))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        plain = cal._bootstrap_draws_plain(conf, corr, g, cal.DEFAULT_BINS, plain_boot, np.random.default_rng(1))
        pwall, pcpu = (time.perf_counter() - t) * n_boot / plain_boot, (time.process_time() - c) * n_boot / plain_boot
        diff = max(float(np.nanmax(np.abs(fast[k][:plain_boot] - plain[k]))) for k in fast)
        print(f"   {level:9s}: vectorised {wall:6.2f} s ({cpu:.2f} CPU)   plain loop {pwall:7.1f} s ({pcpu:.1f} CPU, "
              f"{plain_boot} resamples x {n_boot // plain_boot})   {pwall / wall:.0f}x   max |difference| of the "
              f"draws {diff:.1e}")
    t, c = time.perf_counter(), time.process_time()
    cal.score_confidences(uconf, ucorr, level="utterance", n_boot=n_boot, seed=0)
    u_wall, u_cpu = time.perf_counter() - t, time.process_time() - c
    cal.score_confidences(wconf, wcorr, level="word", groups=group, n_boot=n_boot, seed=0)
    total, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"   score_confidences, utterance level: {u_wall:.2f} s wall ({u_cpu:.2f} CPU); with the word level: "
          f"{total:.2f} s wall ({cpu:.2f} CPU)   target < 3 s: {'met' if total < 3 else 'not met'} on this machine "
          "(on a busy machine judge by CPU seconds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a finished 50-utterance run (default: evaluate one)")
    ap.add_argument("--before-ref", default="32f11df", help="git commit for the 'before' timing")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--utterances", type=int, default=20_000)
    ap.add_argument("--words-per-utterance", type=float, default=18.0)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--plain-resamples", type=int, default=20, help="resamples the slow loop is timed on")
    args = ap.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run or _make_run(work)
        process_times(run, args.before_ref, args.repeat, work)
    calibration_times(args.utterances, args.words_per_utterance, args.resamples, args.plain_resamples)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == "__main__":
    main()
