"""voxproof serve as a real process (uvicorn on a free loopback port): eval over HTTP equals in-process
Whisper, canary split and shadow rows, graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_helpers import SHORT, auth, clip, live_server, make_keys, make_registry, short_dataset  # noqa: E402

from voxproof.run.store import RunStore  # noqa: E402
from voxproof.serve.keys import KeyStore  # noqa: E402


def _eval(*args: str, cwd) -> None:
    proc = subprocess.run([sys.executable, "-m", "voxproof", "-q", "eval", "--json-only", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _hypotheses(run_dir) -> dict[str, str]:
    store = RunStore.open(run_dir)
    return {r.utt_id: r.hypothesis for r in store.rows()}


def test_eval_over_http_equals_in_process_whisper(tmp_path):
    registry = make_registry(tmp_path / "reg.sqlite")
    _store, keys = make_keys(tmp_path / "keys.sqlite")
    data = short_dataset(tmp_path / "data")
    with live_server(registry, tmp_path / "keys.sqlite", tmp_path / "requests.sqlite") as (base, _proc):
        _eval("-m", "openai", "-O", f"base_url={base}", "-O", "model=production", "-O",
              f"api_key={keys['transcribe']}", "-d", str(data), "-o", str(tmp_path / "http"), cwd=tmp_path)
    _eval("-m", "whisper", "-O", "beam_size=1", "-d", str(data), "-o", str(tmp_path / "local"), cwd=tmp_path)
    over_http, local = _hypotheses(tmp_path / "http"), _hypotheses(tmp_path / "local")
    assert set(over_http) == set(SHORT) and over_http == local
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("http", "local")]
    wer = [s["scores"]["conditions"][0]["wer"]["estimate"] for s in summaries]
    assert wer[0] == wer[1] and 0 <= wer[0] < 1
    rows = sqlite3.connect(tmp_path / "requests.sqlite").execute(
        "SELECT status, version, route, key_name FROM requests").fetchall()
    assert rows and all(r == (200, "w1", "main", "transcribe-key") for r in rows)


@pytest.mark.slow
def test_canary_split_and_shadow_over_http(tmp_path):
    """24 keys x 2 transcriptions for 'production' with --canary-share 0.25 and --shadow s1: each key stays on
    one version, the canary share of keys is within the 95 % binomial interval, and shadow rows are in the
    log only (answers carry the main version's text and header). The split itself is checked on 400 routing decisions
    in-process (test_serve_parts); this checks it end to end over real HTTP."""
    from scipy.stats import binom

    KEYS = 24  # noqa: N806
    registry = make_registry(tmp_path / "reg.sqlite", canary=True)
    store, _keys = make_keys(tmp_path / "keys.sqlite")
    clients = [store.create(f"client-{i:02d}", ["transcribe"])[1] for i in range(KEYS)]
    log = tmp_path / "requests.sqlite"
    seen: dict[int, set[str]] = {i: set() for i in range(KEYS)}
    args = ("--canary-share", "0.25", "--shadow", "s1")
    with live_server(registry, tmp_path / "keys.sqlite", log, *args) as (base, _proc), \
            httpx.Client(timeout=120) as c:
        for _round in range(2):
            for i, key in enumerate(clients):
                resp = c.post(f"{base}/v1/audio/transcriptions", headers=auth(key),
                              files={"file": ("a.flac", clip())}, data={"model": "production"})
                assert resp.status_code == 200, resp.text
                assert set(resp.json()) == {"text"}
                seen[i].add(resp.headers["x-voxproof-version"])
    assert all(len(v) == 1 for v in seen.values())
    canary = sum(v == {"w2"} for v in seen.values())
    lo, hi = binom.interval(0.95, KEYS, 0.25)
    assert lo <= canary <= hi, canary
    db = sqlite3.connect(log)
    routes = dict(db.execute("SELECT route, COUNT(*) FROM requests GROUP BY route").fetchall())
    assert routes.get("canary") == 2 * canary and routes.get("main") == 2 * (KEYS - canary)
    assert routes.get("shadow", 0) >= 2 * KEYS - 6  # every request is sampled; a few may be dropped on a full queue
    assert db.execute("SELECT DISTINCT version, status FROM requests WHERE route = 'shadow'").fetchall() == [("s1", 200)]
    pairs = db.execute("SELECT COUNT(*) FROM requests a JOIN requests b ON a.request_id = b.request_id "
                       "WHERE a.route != 'shadow' AND b.route = 'shadow'").fetchone()[0]
    assert pairs == routes["shadow"]


def test_sigterm_finishes_in_flight_requests_and_flushes_the_log(tmp_path):
    registry = make_registry(tmp_path / "reg.sqlite")
    _store, keys = make_keys(tmp_path / "keys.sqlite")
    log = tmp_path / "requests.sqlite"
    results: list[httpx.Response] = []
    with live_server(registry, tmp_path / "keys.sqlite", log) as (base, proc):
        def call() -> None:
            results.append(httpx.post(f"{base}/v1/audio/transcriptions", headers=auth(keys["transcribe"]),
                                      files={"file": ("a.flac", clip(SHORT[2]))}, data={"model": "production"},
                                      timeout=120))

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.3)  # the request is in flight (Whisper takes longer than this)
        proc.send_signal(signal.SIGTERM)
        t.join(120)
        assert proc.wait(60) == 0
        stderr = proc.stderr.read()
    assert results and results[0].status_code == 200, results
    assert "stopped" in stderr and "Traceback" not in stderr
    rows = sqlite3.connect(log).execute("SELECT status, request_id FROM requests").fetchall()
    assert rows == [(200, results[0].headers["x-request-id"])]
    assert os.path.exists(log)
    assert KeyStore(tmp_path / "keys.sqlite").list()  # untouched
