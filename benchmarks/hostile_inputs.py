"""Hostile inputs end to end (issue 21): generated malformed audio and hostile manifests through
``voxproof eval`` and ``voxproof audit``, as subprocesses with timeouts.

Audio cases go in batches (one CSV manifest per batch, so the model loads once per batch): each case's
outcome is its eval row (ok or error type) and its audit item (ok or error type). Manifest cases run one
subprocess each. Reported: cases, untyped crashes (a traceback, exit 1 from eval, an exit code outside
0-3, or a row/item whose error is not a voxproof error type), hangs (a subprocess past its timeout),
peak RSS of any one voxproof process (os.wait4), and tallies of exit codes and error types.

    python benchmarks/hostile_inputs.py --cases 2000 [--batch 100] [--model whisper] [--out /tmp/hostile]
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_corpus import generate_audio, generate_manifests

import voxproof.errors as vx_errors

TYPED = {name for name, obj in vars(vx_errors).items() if isinstance(obj, type) and issubclass(obj, Exception)}
TYPED |= {"Timeout", "TranscriptTooLong", "EmptyReference", "EmptyAudio"}  # runner row types


def run(argv: list[str], cwd: Path, timeout: float) -> dict:
    """One voxproof subprocess: exit code (None on a hang), stderr's last line, peak RSS (MB), seconds."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", "voxproof", *argv], cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        code, rss_kb, hung = None, 0, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                rss_kb = usage.ru_maxrss
                break
            if time.monotonic() - started > timeout:
                hung = True
                os.killpg(proc.pid, 9)
                _, status, usage = os.wait4(proc.pid, 0)
                rss_kb = usage.ru_maxrss
                break
            time.sleep(0.05)
        proc.returncode = code if code is not None else -9
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return {"argv": argv, "code": code, "hung": hung, "traceback": "Traceback (most recent call last)" in text,
            "last": lines[-1][:300] if lines else "", "rss_mb": rss_kb / 1024, "seconds": time.monotonic() - started}


def error_type(line: str) -> str:
    head = line.split(":", 1)[0].strip()
    return head if head.isidentifier() else "(none)"


def untyped_call(res: dict, command: str) -> bool:
    code = res["code"]
    if res["hung"] or res["traceback"]:
        return not res["hung"]
    if code not in (0, 1, 2, 3):
        return True
    if command == "eval" and code == 1:  # eval has no verdict: 1 would be a crash
        return True
    return code in (2, 3) and error_type(res["last"]) not in TYPED


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000, help="audio cases (manifest cases come on top)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--model", default="whisper")
    ap.add_argument("--out", default=None)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per batch subprocess")
    ap.add_argument("--json", default=None, help="write the full tallies here")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="voxproof-hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cases = generate_audio(root / "audio", args.cases)
    manifests = generate_manifests(root / "manifests", cases[0][2])
    print(f"corpus: {len(cases)} audio cases, {len(manifests)} manifest cases in {time.monotonic() - t0:.0f} s "
          f"under {root}", flush=True)

    calls: list[dict] = []
    outcomes = {"eval": collections.Counter(), "audit": collections.Counter()}
    untyped: list[str] = []
    families = collections.defaultdict(collections.Counter)
    for b in range(0, len(cases), args.batch):
        batch = cases[b : b + args.batch]
        bdir = root / f"batch-{b // args.batch:03d}"
        bdir.mkdir(exist_ok=True)
        with (bdir / "m.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "audio", "text", "family"])
            for cid, family, path in batch:
                w.writerow([cid, path, "hello world", family])
        ev = run(["eval", "-m", args.model, "-d", "m.csv", "-o", "run", "--json-only", "--features", "none"], bdir,
                 args.timeout)
        au = run(["audit", "m.csv", "-o", "audit", "--workers", "1", "--vad", "energy", "--no-cache"], bdir, args.timeout)
        for command, res in (("eval", ev), ("audit", au)):
            res["case"] = f"batch {b // args.batch} ({command})"
            calls.append(res)
            if untyped_call(res, command):
                untyped.append(f"{res['case']}: exit {res['code']}: {res['last']}")
        rows = _eval_rows(bdir / "run" / "run.sqlite")
        items = _audit_items(bdir / "audit" / "audit-items.sqlite")
        for cid, family, _path in batch:
            for command, got in (("eval", rows.get(cid)), ("audit", items.get(cid))):
                kind = got if got is not None else "(no result: the batch failed)"
                outcomes[command][kind] += 1
                families[family][f"{command}:{kind}"] += 1
                if got is not None and got != "ok" and got not in TYPED:
                    untyped.append(f"{cid} ({family}) {command}: {got}")
        print(f"batch {b // args.batch}: eval exit {ev['code']} ({ev['seconds']:.0f} s, {ev['rss_mb']:.0f} MB), "
              f"audit exit {au['code']} ({au['seconds']:.0f} s, {au['rss_mb']:.0f} MB)", flush=True)

    mdir = root / "manifest-runs"
    mdir.mkdir(exist_ok=True)
    manifest_codes = collections.Counter()
    manifest_types = collections.Counter()
    for name, path in manifests:
        extra = ["--limit", "3"] if name.startswith("million") else []
        for command, argv in (
            ("eval", ["eval", "-m", args.model, "-d", path, "-o", f"run-{len(calls)}", "--json-only", *extra]),
            ("audit", ["audit", path, "-o", f"audit-{len(calls)}", "--workers", "1", "--vad", "energy"]),
        ):
            if command == "audit" and extra:
                continue  # audit has no --limit; a million-line audit is the audit_scale benchmark's job
            res = run(argv, mdir, 300)
            res["case"] = f"{name} ({command})"
            calls.append(res)
            manifest_codes[f"{command}:{res['code']}"] += 1
            manifest_types[f"{command}:{error_type(res['last']) if res['code'] in (2, 3) else 'ok/findings'}"] += 1
            if untyped_call(res, command):
                untyped.append(f"{res['case']}: exit {res['code']}: {res['last']}")
            if name.startswith("million"):
                print(f"million-line manifest, eval --limit 3: exit {res['code']} in {res['seconds']:.1f} s", flush=True)

    hangs = [c["case"] for c in calls if c["hung"]]
    peak = max(c["rss_mb"] for c in calls)
    exit_codes = collections.Counter(f"{c['case'].rsplit('(', 1)[1].rstrip(')')}:{c['code']}" for c in calls)
    report = {
        "audio_cases": len(cases), "manifest_cases": len(manifests), "cases": len(cases) + len(manifests),
        "subprocesses": len(calls), "untyped_crashes": len(untyped), "untyped": untyped[:50], "hangs": hangs,
        "peak_rss_mb": round(peak, 1), "exit_codes": dict(exit_codes),
        "audio_outcomes": {k: dict(v.most_common()) for k, v in outcomes.items()},
        "manifest_exit_codes": dict(manifest_codes), "manifest_error_types": dict(manifest_types.most_common()),
        "by_family": {f: dict(c.most_common()) for f, c in sorted(families.items())},
        "seconds": round(time.monotonic() - t0, 1),
    }
    print(f"\ncases: {report['cases']} ({len(cases)} audio files x eval+audit, {len(manifests)} manifests x eval+audit)")
    print(f"subprocesses: {len(calls)}; untyped crashes: {len(untyped)}; hangs: {len(hangs)}; "
          f"peak RSS of one process: {peak:.0f} MB; {report['seconds']:.0f} s")
    print("exit codes (command:code): " + ", ".join(f"{k} {v}" for k, v in sorted(exit_codes.items())))
    for command, counter in outcomes.items():
        print(f"{command} outcomes per audio case: " + ", ".join(f"{k} {v}" for k, v in counter.most_common()))
    print("manifest cases, error types: " + ", ".join(f"{k} {v}" for k, v in manifest_types.most_common()))
    for line in untyped[:20]:
        print("UNTYPED " + line)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    ok = not untyped and not hangs and peak < 1024
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _eval_rows(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with sqlite3.connect(path) as conn:
        return {u: ("ok" if s == "ok" else (e or "(error without type)"))
                for u, s, e in conn.execute("SELECT utt_id, status, error_type FROM rows")}


def _audit_items(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with sqlite3.connect(path) as conn:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(items)")}
        if "error" not in cols:
            return {}
        return {i: ("ok" if not e else error_type(e)) for i, e in conn.execute("SELECT id, error FROM items WHERE side = 0")}


if __name__ == "__main__":
    sys.exit(main())
