"""The server's own overhead, A/B: two servers (two source trees, e.g. before and after a change) with
an instant model answer, the same client alternating one request to each, so both see the same machine
load (the real-model ``serve_load.py`` needs a quiet machine: under heavy load Whisper's own spread
swamps a few milliseconds). Loopback only, bounded in time.

Per server: the client's time per transcription (multipart upload of the shortest bundled clip, JSON
answer) p50/p90, and from the server's request log the split: ``decode_s``, ``queue_s``, and the rest of
the handler (``latency_s`` minus decode, queue and model). The "model" is a function returning a fixed
transcript, so the client's time is all overhead: HTTP, multipart, decoding, thread hand-offs, routing,
auth, the answer.

    python benchmarks/serve_overhead_ab.py --a SRC_BEFORE --b src [--n 300] [--a-env K=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import wait_ready  # noqa: E402

SERVER = r'''
import sys
from pathlib import Path
import uvicorn
from voxproof.backends.base import Transcript
from voxproof.registry import Registry
from voxproof.serve.app import create_app
from voxproof.serve.keys import KeyStore
from voxproof.serve.options import ServeOptions

class Instant:
    def transcribe(self, audio):
        return Transcript("instant answer")

work, port = Path(sys.argv[1]), int(sys.argv[2])
with Registry.open(work / "reg.sqlite") as reg:
    reg.register("w1", backend="whisper", actor="bench", options={"beam_size": 1})
    reg.promote("w1", actor="bench")
store = KeyStore(work / "keys.sqlite")
(work / "key").write_text(store.create("bench", ["transcribe"])[1])
options = ServeOptions(port=port, request_log=str(work / "requests.sqlite"), rate_limit=100000.0, burst=100000)
app = create_app(work / "reg.sqlite", options, store, loader=lambda version: Instant())
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="asyncio")  # as run_server
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split(log: Path, n: int) -> dict:
    deadline = time.monotonic() + 20
    rows: list = []
    while time.monotonic() < deadline and len(rows) < n:
        time.sleep(0.3)
        with sqlite3.connect(log) as db:
            rows = db.execute("SELECT latency_s, decode_s, queue_s, model_s FROM requests WHERE status = 200").fetchall()
    r = np.array(rows, dtype=float)
    rest = r[:, 0] - r[:, 1] - r[:, 2] - r[:, 3]
    return {"rows": len(r), **{f"{k}_p50_ms": round(float(np.median(v)) * 1000, 3)
                               for k, v in (("latency", r[:, 0]), ("decode", r[:, 1]), ("queue", r[:, 2]),
                                            ("handler_rest", rest))}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="PYTHONPATH of server A (e.g. a checkout's src of the base commit)")
    ap.add_argument("--b", default=str(REPO / "src"), help="PYTHONPATH of server B (default: this tree)")
    ap.add_argument("--n", type=int, default=300, help="requests per server (at most 5000)")
    ap.add_argument("--gap-ms", type=float, default=200.0,
                    help="pause after each request, so one server's work after its answer (the request-log "
                         "writer) does not land on the other server's request")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    n = max(10, min(args.n, 5000))
    sys.path.insert(0, str(REPO / "src"))
    from voxproof.manifest.bundled import bundled_dataset_path

    data = min(((bundled_dataset_path() / "audio").glob("*.flac")), key=lambda p: p.stat().st_size).read_bytes()
    servers, targets = [], []
    try:
        for name, src in (("A", args.a), ("B", args.b)):
            work, port = Path(tempfile.mkdtemp(prefix=f"voxproof-ab-{name}-")), free_port()
            servers.append(subprocess.Popen([sys.executable, "-c", SERVER, str(work), str(port)],
                                            env=dict(os.environ, PYTHONPATH=src)))
            targets.append((name, src, work, f"http://127.0.0.1:{port}"))
        clients = []
        for (_name, _src, work, base), server in zip(targets, servers):
            wait_ready(base, server)
            clients.append(httpx.Client(base_url=base, timeout=60,
                                        headers={"Authorization": f"Bearer {(work / 'key').read_text()}"}))
        load_before = os.getloadavg()
        times: list[list[float]] = [[], []]
        for i in range(n + 5):
            for j, client in enumerate(clients):
                t = time.perf_counter()
                r = client.post("/v1/audio/transcriptions", files={"file": ("a.flac", data)}, data={"model": "production"})
                dt = time.perf_counter() - t
                if r.status_code != 200:
                    raise SystemExit(f"server {targets[j][0]}: {r.status_code} {r.text[:200]}")
                if i >= 5:  # warm-up requests are not counted
                    times[j].append(dt)
                time.sleep(min(args.gap_ms, 5000.0) / 1000.0)
        report = {"n": n, "gap_ms": args.gap_ms, "clip_bytes": len(data), "load_before": load_before, "load_after": os.getloadavg()}
        for (name, src, work, _base), ts in zip(targets, times):
            report[name] = {"src": src, "client_p50_ms": round(statistics.median(ts) * 1000, 3),
                            "client_p90_ms": round(float(np.percentile(ts, 90)) * 1000, 3),
                            **split(work / "requests.sqlite", n + 5)}
            print(name, json.dumps(report[name]), flush=True)
        print("load", json.dumps({"before": load_before, "after": report["load_after"]}))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))
    finally:
        for p in servers:
            p.terminate()
        for p in servers:
            p.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
