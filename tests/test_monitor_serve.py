"""The monitor on the request log that ``voxproof serve`` itself writes (real HTTP, real Whisper, real audio).

The rollback half of ``benchmarks/monitor_serve_replay.py``, small: a bad canary (``vad_filter=true`` on
speech 55 dB down) removed by ``monitor watch`` through the registry while the server runs, after which
``production`` serves the production version to the canary's key without a restart. (The drift half needs
a reference of many distinct clips, so it lives in the benchmark only.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("faster_whisper")
pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from monitor_serve_replay import rollback_replay


def test_watcher_removes_a_bad_canary_while_the_server_runs(tmp_path):
    out = rollback_replay(tmp_path, n_clips=6, max_requests=48, after=3, every=0.5)
    assert out["removed_after_requests"] is not None, out
    assert out["canary_requests_before_removal"] >= 2
    assert out["aliases"] == {"production": "w1"} or (out["aliases"]["production"] == "w1"
                                                      and "canary" not in out["aliases"])
    last = out["history_last"]
    assert (last["actor"], last["action"], last["alias"], last["from_version"]) == \
        ("monitor", "remove-alias", "canary", "w2")
    assert "canary-empty-output" in last["reason"]
    assert out["incident"]["action"] == "remove-canary"
    # the same server process now routes the canary's key to production
    assert out["server_pid_unchanged"] and out["canary_key_after_removal"] == ["w1"] * 3
    routes = {(k, r, v): n for k, r, v, n in out["log_routes"]}
    assert routes[(out["canary_key"], "main", "w1")] == 3
    assert routes[(out["canary_key"], "canary", "w2")] == out["canary_requests_before_removal"]
