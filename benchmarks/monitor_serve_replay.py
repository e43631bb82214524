"""Replay real speech through ``voxproof serve`` and watch its own request log with ``voxproof monitor``.

    python benchmarks/monitor_serve_replay.py [--clips 50] [--reference 50] [--clean 100] [--shift 50] [--window 25]

Everything goes over real HTTP to a ``voxproof serve`` process on 127.0.0.1 (Whisper tiny.en from a registry);
the server writes the SQLite request log; the monitor reads only that log.

1. **Drift.** Bundled clips (the first ``--clips``, split in two halves: the reference needs many distinct
   clips, or clean traffic on other clips is rightly seen as drift) are sent clean: the first
   ``--reference`` requests on one half are the reference window (``monitor baseline --log --until``); then
   ``--clean`` clean requests on the other half, then ``--shift`` requests with telephony (G.711 mu-law, 300-3400 Hz)
   and ``--shift`` with recorded noise (bundled) at 5 dB SNR, both on that other half. ``monitor analyze`` over
   fixed windows of ``--window`` requests. Reported: false alarms over the clean windows with a Clopper-Pearson
   95 % interval, and the requests after each shift until the end of the first window that alarms.
2. **Rollback.** Production ``w1`` (Whisper) and canary ``w2`` (Whisper with ``vad_filter=true``, the gate's
   planted regression: the VAD takes speech 55 dB down for silence) behind ``--canary-share 0.25`` (sticky per
   key: one of four client keys lands on the canary). ``monitor watch --every 1`` runs beside the server. Quiet
   clips are sent until the watcher removes the canary alias through the registry; then more requests from
   the canary key show that ``production`` now serves ``w1`` to it, without a server restart.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from serve_helpers import auth, live_server, make_keys, stop_process

DRIFT_POLICY = """
[window]
by = "count"
size = {window}
step = {window}
min_requests = {min_requests}
"""

ROLLBACK_POLICY = """
[[slo]]
name = "canary-empty-output"
metric = "empty_output"
route = "canary"
compare = "production"
max = 0.05
window = 200
min_requests = {min_requests}
"""


def clips(n: int) -> list:
    from voxproof.manifest import bundled_dataset_path, read_manifest

    return sorted(read_manifest(bundled_dataset_path()), key=lambda u: (u.duration or 0, u.id))[:n]


def wav(utt, perturb: str | None = None, *, seed: int = 0) -> bytes:
    """The clip as a float WAV, perturbed by a voxproof perturbation (``telephone:mulaw``, ``gain:-55``...)."""
    import soundfile

    from voxproof.audio.io import load_audio
    from voxproof.perturb import resolve_conditions

    audio = load_audio(utt.audio, sample_rate=16000)
    if perturb:
        audio = resolve_conditions([], [perturb])[0].apply(audio, seed)
    buf = io.BytesIO()
    soundfile.write(buf, np.asarray(audio.samples, dtype=np.float32), audio.sample_rate, format="WAV",
                    subtype="FLOAT")
    return buf.getvalue()


def transcribe(client, base: str, key: str, data: bytes) -> tuple[int, str, str]:
    r = client.post(f"{base}/v1/audio/transcriptions", headers=auth(key), files={"file": ("a.wav", data)},
                    data={"model": "production"})
    return r.status_code, r.headers.get("x-voxproof-version", ""), r.headers.get("x-request-id", "")


def wait_logged(log: Path, n: int, timeout: float = 60.0) -> None:
    """Wait until the server's request-log writer has written ``n`` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            with sqlite3.connect(log) as db:
                try:
                    if db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] >= n:
                        return
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.2)
    raise RuntimeError(f"the server logged fewer than {n} requests within {timeout} s")


def voxproof(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "voxproof", *args], capture_output=True, text=True, timeout=600,
                          check=False)
    if check and proc.returncode not in (0, 1):
        raise RuntimeError(f"voxproof {' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def drift_replay(root: Path, *, n_clips: int = 12, reference: int = 24, clean: int = 48, shift: int = 24,
                 window: int = 12) -> dict:
    """Phases over HTTP, then ``monitor baseline`` + ``monitor analyze`` on the server's log."""
    import httpx

    from voxproof.registry import Registry

    registry = str(root / "drift-registry.sqlite")
    with Registry.open(registry) as reg:
        reg.register("w1", backend="whisper", actor="setup", options={"beam_size": 1})
        reg.promote("w1", actor="setup")
    _store, keys = make_keys(root / "drift-keys.sqlite")
    utts = clips(n_clips)
    ref_half, traffic_half = utts[0::2], utts[1::2]
    phases = [("reference", ref_half, None, reference), ("clean", traffic_half, None, clean),
              ("telephony", traffic_half, "telephone:mulaw", shift), ("noise 5 dB", traffic_half, "noise:snr=5", shift)]
    log = root / "drift-requests.sqlite"
    phase_of: dict[str, str] = {}
    sent = 0
    with live_server(registry, root / "drift-keys.sqlite", log) as (base, _proc), httpx.Client(timeout=300) as c:
        for name, pool, perturb, n in phases:
            audio = [wav(u, perturb, seed=i) for i, u in enumerate(pool)]
            for i in range(n):
                status, _version, rid = transcribe(c, base, keys["transcribe"], audio[i % len(audio)])
                if status != 200:
                    raise RuntimeError(f"{name} request {i}: HTTP {status}")
                phase_of[rid] = name
                sent += 1
            if name == "reference":
                wait_logged(log, sent)
                with sqlite3.connect(log) as db:
                    until = db.execute("SELECT MAX(ts) FROM requests").fetchone()[0] + 1e-6
        wait_logged(log, sent)
    profile = root / "drift-profile.json"
    voxproof("monitor", "baseline", "--log", str(log), "--until", repr(until), "-o", str(profile))
    policy = root / "drift-policy.toml"
    policy.write_text(DRIFT_POLICY.format(window=window, min_requests=max(2, window - 2)))
    windows = root / "drift-windows.jsonl"
    voxproof("monitor", "analyze", "--log", str(log), "--profile", str(profile), "--policy", str(policy),
             "-o", str(windows))
    with sqlite3.connect(log) as db:
        row_phase = {i: phase_of.get(r, "?") for i, r in db.execute("SELECT id, request_id FROM requests")}
        first_row = {}
        for i in sorted(row_phase):
            first_row.setdefault(row_phase[i], i)
    reports = [json.loads(line) for line in windows.read_text().splitlines()]
    out: dict = {"requests": sent, "window": window, "phases": {}}
    for name, *_ in phases:
        mine = [r for r in reports if r["drift"]["row_ids"] and not r["partial"]
                and {row_phase[r["drift"]["row_ids"][0]], row_phase[r["drift"]["row_ids"][1]]} == {name}]
        alarms = [r for r in mine if r["drift"]["status"] == "drift"]
        entry = {"windows": len(mine), "alarms": len(alarms),
                 "drifted": sorted({f for r in alarms for f in r["drift"]["drifted"]})}
        if name in ("reference", "clean"):
            entry["alarm_rate_interval"] = clopper_pearson(len(alarms), len(mine)) if mine else None
        elif alarms:
            entry["requests_until_alarm"] = alarms[0]["drift"]["row_ids"][1] - first_row[name] + 1
        out["phases"][name] = entry
    return out


def canary_keys(names: list[str], share: float = 0.25, seed: int = 0) -> list[str]:
    """The key names the server's sticky hash sends to the canary (serve.routing)."""
    from voxproof.serve.routing import unit_hash

    return [n for n in names if unit_hash("canary", seed, n) < share]


def rollback_replay(root: Path, *, n_clips: int = 6, max_requests: int = 120, after: int = 8,
                    every: float = 1.0, min_requests: int = 6) -> dict:
    """Quiet speech to production with a bad canary; ``monitor watch`` removes the canary alias."""
    import httpx

    from voxproof.registry import Registry

    registry = str(root / "rb-registry.sqlite")
    with Registry.open(registry) as reg:
        reg.register("w1", backend="whisper", actor="setup", options={"beam_size": 1})
        reg.register("w2", backend="whisper", actor="setup", options={"beam_size": 1, "vad_filter": True})
        reg.promote("w1", actor="setup")
        reg.set_alias("canary", "w2", actor="setup", reason="canary 25 %")
    store, _ = make_keys(root / "rb-keys.sqlite")
    names = [f"client-{i:02d}" for i in range(40)]
    on_canary = canary_keys(names)
    on_main = [n for n in names if n not in on_canary]
    chosen = [on_canary[0], *on_main[:3]]  # round robin over 4 keys: 25 % of requests on the canary
    secrets = {n: store.create(n, ["transcribe"])[1] for n in chosen}
    audio = [wav(u, "gain:-55") for u in clips(n_clips)]  # with vad_filter, w2 returns nothing for some
    (root / "rb-policy.toml").write_text(ROLLBACK_POLICY.format(min_requests=min_requests))
    log = root / "rb-requests.sqlite"
    incidents = root / "incidents"
    out: dict = {"canary_key": chosen[0]}
    with live_server(registry, root / "rb-keys.sqlite", log, "--canary-share", "0.25") as (base, proc), \
            httpx.Client(timeout=300) as c:
        pid = proc.pid
        watcher = subprocess.Popen([sys.executable, "-m", "voxproof", "monitor", "watch", "--log", str(log),
                                    "--registry", registry, "--policy", str(root / "rb-policy.toml"),
                                    "--every", str(every), "--incidents", str(incidents)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            versions: list[tuple[str, str]] = []
            removed_at = None
            for i in range(max_requests):
                key = chosen[i % len(chosen)]
                clip = audio[(i // len(chosen)) % len(audio)]  # one clip per round of the 4 keys
                status, version, _rid = transcribe(c, base, secrets[key], clip)
                if status != 200:
                    raise RuntimeError(f"request {i}: HTTP {status}")
                versions.append((key, version))
                with Registry.open(registry) as reg:
                    if "canary" not in reg.aliases():
                        removed_at = i + 1
                        break
            out["removed_after_requests"] = removed_at
            out["canary_requests_before_removal"] = sum(v == "w2" for _k, v in versions)
            if removed_at is not None:
                time.sleep(1.0)  # > --poll-s: the server re-reads the aliases
                after_versions = [transcribe(c, base, secrets[chosen[0]], audio[j % len(audio)])[1]
                                  for j in range(after)]
                out["canary_key_after_removal"] = after_versions
            out["server_pid_unchanged"] = proc.poll() is None and proc.pid == pid
        finally:
            stop_process(watcher, timeout=30)
        wait_logged(log, len(versions) + len(out.get("canary_key_after_removal", [])))
    with Registry.open(registry) as reg:
        last = reg.history()[-1]
        out["aliases"] = reg.aliases()
        out["history_last"] = {"actor": last.actor, "action": last.action, "alias": last.alias,
                               "from_version": last.from_version, "reason": last.reason}
    files = sorted(incidents.glob("incident-*.json"))
    out["incident"] = json.loads(files[0].read_text()) if files else None
    with sqlite3.connect(log) as db:
        out["log_routes"] = db.execute("SELECT key_name, route, version, COUNT(*) FROM requests "
                                       "GROUP BY key_name, route, version ORDER BY key_name, route").fetchall()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--reference", type=int, default=50)
    ap.add_argument("--clean", type=int, default=100)
    ap.add_argument("--shift", type=int, default=50)
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--max-requests", type=int, default=160)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="voxproof-serve-replay-") as tmp:
        t = time.perf_counter()
        d = drift_replay(Path(tmp), n_clips=args.clips, reference=args.reference, clean=args.clean, shift=args.shift,
                         window=args.window)
        print(f"drift: {d['requests']} requests over HTTP, windows of {d['window']} ({time.perf_counter() - t:.0f} s)")
        for name, e in d["phases"].items():
            line = f"  {name:11} {e['windows']:3} windows, {e['alarms']:3} alarms"
            if e.get("alarm_rate_interval"):
                lo, hi = e["alarm_rate_interval"]
                line += f" (false-alarm rate {e['alarms']}/{e['windows']}, 95 % CI [{100 * lo:.1f}, {100 * hi:.1f}] %)"
            if "requests_until_alarm" in e:
                line += f"; first alarm {e['requests_until_alarm']} requests after the shift"
            if e["drifted"]:
                line += f"; drifted: {', '.join(e['drifted'])}"
            print(line)
        t = time.perf_counter()
        r = rollback_replay(Path(tmp), max_requests=args.max_requests)
        print(f"rollback ({time.perf_counter() - t:.0f} s): canary alias removed by the watcher after "
              f"{r['removed_after_requests']} requests ({r['canary_requests_before_removal']} served by the canary)")
        print(f"  registry: {r['history_last']}")
        print(f"  aliases now: {r['aliases']}; server still the same process: {r['server_pid_unchanged']}")
        print(f"  the canary key's next requests served by: {r.get('canary_key_after_removal')}")
        if r["incident"]:
            print(f"  incident: rule {r['incident']['rule']['rule']}, action {r['incident']['action']}")
        print(f"  log (key, route, version, requests): {r['log_routes']}")


if __name__ == "__main__":
    main()
