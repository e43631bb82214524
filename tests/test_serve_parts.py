"""voxproof serve parts on their own: API keys, rate limit, canary routing, model workers (batching,
bounded queue), the request-log writer (drops, PII redaction, JSONL)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import numpy as np
import pytest
from serve_helpers import SHORT, clip

from voxproof.audio.io import load_audio
from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.registry import ModelVersion
from voxproof.serve.keys import KeyStore
from voxproof.serve.options import ServeOptions
from voxproof.serve.ratelimit import RateLimiter
from voxproof.serve.requestlog import COLUMNS, LogEntry, RequestLog
from voxproof.serve.routing import Router, Snapshot
from voxproof.serve.workers import QueueFull, VersionWorker


def _version(name: str, backend: str = "whisper", kind: str = "asr", **options) -> ModelVersion:
    return ModelVersion(name, kind, backend, options, None, "", "2026-01-01T00:00:00.000000Z", "t")


def test_keys_are_stored_hashed_and_verified(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite")
    record, key = store.create("alice", ["transcribe"])
    assert key.startswith("vxp_") and record.scopes == ("transcribe",)
    raw = (tmp_path / "keys.sqlite").read_bytes()
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw
    ring = store.snapshot()
    assert ring.verify(key).name == "alice"
    assert ring.verify(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert ring.verify("") is None and ring.verify("vxp_00000000_" + "a" * 43) is None
    assert ring.verify(key + "\x00") is None and ring.verify("../" * 30) is None
    assert not ring.verify(key).allows("admin") and ring.verify(key).allows("transcribe")
    with pytest.raises(UsageError):
        store.create("alice", ["admin"])
    for bad in ("", "a/b", "x" * 65, "..", "a\x00b"):
        with pytest.raises(UsageError):
            store.create(bad, ["admin"])
    with pytest.raises(UsageError):
        store.create("bob", ["root"])
    store.revoke("alice")
    assert store.snapshot().verify(key) is None


def test_keys_cli_prints_the_key_once(tmp_path):
    from click.testing import CliRunner

    from voxproof.cli.main import cli

    store = tmp_path / "k.sqlite"
    result = CliRunner().invoke(cli, ["keys", "create", "--scope", "transcribe", "--scope", "synthesize",
                                      "--name", "ci", "--store", str(store)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert KeyStore(store).snapshot().verify(key).scopes == ("transcribe", "synthesize")
    listed = CliRunner().invoke(cli, ["keys", "list", "--store", str(store)])
    assert "ci\ttranscribe,synthesize\tactive" in listed.output and key not in listed.output
    bad = CliRunner().invoke(cli, ["keys", "create", "--scope", "everything", "--store", str(store)])
    assert bad.exit_code == 2


def test_token_bucket():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per key
    now[0] = 0.5
    assert limiter.take("a") == 0.0


def test_options_refuse_bad_values():
    for bad in ({"canary_share": 1.5}, {"canary_share": float("nan")}, {"max_upload_bytes": 0},
                {"request_timeout_s": float("inf")}, {"max_batch": 1000}, {"rate_limit": -1.0}):
        with pytest.raises(UsageError):
            ServeOptions(**bad)


def test_canary_split_is_sticky_and_binomial():
    from scipy.stats import binom

    snap = Snapshot({"a": _version("a"), "b": _version("b")}, {"production": "a", "canary": "b"})
    router = Router(snap, canary_share=0.25, seed=0)
    keys = [f"client-{i}" for i in range(40)]
    seen: dict[str, set[str]] = {k: set() for k in keys}
    routes = [router.route("production", keys[i % 40]) for i in range(400)]
    for i, r in enumerate(routes):
        seen[keys[i % 40]].add(r.version.name)
        assert r.route == ("canary" if r.version.name == "b" else "main")
    assert all(len(v) == 1 for v in seen.values())
    canary_keys = sum(v == {"b"} for v in seen.values())
    lo, hi = binom.interval(0.95, 40, 0.25)
    assert lo <= canary_keys <= hi
    # over many seeds the share of keys is 0.25 on average
    shares = [sum(Router(snap, canary_share=0.25, seed=s).route("production", k).route == "canary" for k in keys)
              for s in range(200)]
    assert np.mean(shares) / 40 == pytest.approx(0.25, abs=0.02)
    assert router.route("b", "client-0").route == "main" and router.route("nope", "x") is None
    assert Router(snap, canary_share=0.0).route("production", "client-1").version.name == "a"


def test_worker_batches_concurrent_clips_and_bounds_its_queue():
    audios = [load_audio(clip(u)) for u in SHORT]
    sizes: list[int] = []
    worker = VersionWorker(_version("w", beam_size=1), max_batch=4, max_wait_ms=300, max_queue=8, workers=1,
                           on_batch=lambda _v, n: sizes.append(n))
    worker.start()
    assert worker.loaded.wait(120) and worker.load_error is None
    jobs = [worker.submit(a) for a in audios]
    texts = [j.future.result(timeout=300).text for j in jobs]
    assert sizes == [3] and all(j.batch_size == 3 for j in jobs)
    assert all(len(t.split()) >= 3 for t in texts)
    assert all(j.queue_s >= 0 and j.model_s > 0 for j in jobs)
    worker.stop()


def test_full_queue_raises_with_retry_after():
    gate = threading.Event()

    class Slow:
        """Holds the worker until released, so the queue fills deterministically."""

        def synthesize(self, text):
            gate.wait(30)
            return Audio(np.zeros(160, dtype=np.float32), 16000)

    worker = VersionWorker(_version("e", "espeak", "tts"), max_batch=1, max_wait_ms=0, max_queue=2, workers=1,
                           loader=lambda v: Slow())
    worker.start()
    assert worker.loaded.wait(10)
    first = worker.submit("one")
    deadline = time.monotonic() + 10
    while first.started is None:  # the worker has taken it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    worker.submit("two")
    worker.submit("three")
    with pytest.raises(QueueFull) as info:
        worker.submit("four")
    assert info.value.retry_after >= 1.0
    gate.set()
    assert first.future.result(10).duration == pytest.approx(0.01)
    worker.stop()


def _entry(i: int, text: str | None = None, audio: Audio | None = None) -> LogEntry:
    row = {"ts": time.time(), "request_id": f"r{i}", "endpoint": "transcriptions", "route": "main", "status": 200}
    return LogEntry(row, audio=audio, text=text, word_confs=[0.5, 0.75])


def test_request_log_redacts_text_and_writes_jsonl(tmp_path):
    path = tmp_path / "log.jsonl"
    rl = RequestLog(str(path), log_text=True, vad=False)
    rng = np.random.default_rng(0)
    rl.submit(_entry(1, "call me at john.smith@example.com please",
                     Audio((0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)))
    rl.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["text"] == "call me at [EMAIL] please"
    assert rows[0]["word_confs"] == "[0.5, 0.75]" and rows[0]["rms_dbfs"] == pytest.approx(-20, abs=0.2)
    assert rows[0]["speech_ratio"] is None  # vad off
    rl = RequestLog(str(tmp_path / "log.sqlite"), log_text=False)
    rl.submit(_entry(2, "john.smith@example.com"))
    rl.close()
    db = sqlite3.connect(tmp_path / "log.sqlite")
    assert db.execute("SELECT text, request_id FROM requests").fetchall() == [(None, "r2")]


def test_request_log_drops_when_full_and_counts(tmp_path):
    rl = RequestLog(str(tmp_path / "log.sqlite"), buffer=2)
    release = threading.Event()
    original = rl._sink.write

    def slow_write(rows):
        release.wait(10)
        original(rows)

    rl._sink.write = slow_write  # a store that stalls: the request path must not wait for it
    accepted = [rl.submit(_entry(i)) for i in range(50)]  # a blocking submit would wait for the stall, then accept
    assert rl.dropped == accepted.count(False) >= 47
    release.set()
    rl.close()
    n = sqlite3.connect(tmp_path / "log.sqlite").execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert n == accepted.count(True) == 50 - rl.dropped


def test_request_log_on_postgresql():
    import os
    import uuid

    url = os.environ.get("VOXPROOF_TEST_PG_URL")
    if not url:
        pytest.skip("VOXPROOF_TEST_PG_URL is not set: run 'source .ci/postgres.sh' to test the PostgreSQL path")
    import psycopg

    schema = "vp_reqlog_" + uuid.uuid4().hex[:10]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in url else "?"
        location = f"{url}{sep}options=-csearch_path%3D{schema}"
        rl = RequestLog(location, log_text=True, vad=False)
        rl.submit(_entry(1, "mail me at a.b@example.org"))
        rl.close()
        with psycopg.connect(location) as conn:
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
            assert conn.execute("SELECT request_id, text, word_confs FROM requests").fetchall() == [
                ("r1", "mail me at [EMAIL]", "[0.5, 0.75]")]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
