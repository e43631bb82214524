"""The monitor on real model outputs: Whisper tiny.en on bundled LibriSpeech clips.

1. ``monitor baseline RUN``: a profile from a real run, with the confidence calibration fitted against
   the references, whose in-sample WER estimate is close to the run's true WER.
2. Automatic canary removal end to end: production (Whisper) and a canary with the gate's planted
   regression (``vad_filter=true``: on speech 55 dB down the VAD takes the speech for silence) serve a
   replayed log, the canary 25 % of requests. The watcher, run after every 8 requests, removes the
   canary alias through the registry within a stated number of requests, the history and the incident
   say why, and production is untouched.
"""

from __future__ import annotations

import json

import pytest

from voxproof.cli.main import main
from voxproof.registry import Registry

pytestmark = pytest.mark.slow

N_CLIPS = 6
MAX_REQUESTS = 160

POLICY = """
[[slo]]
name = "canary-empty-output"
metric = "empty_output"
route = "canary"
compare = "production"
max = 0.05
window = 200
min_requests = 8
[[slo]]
name = "error-rate"
metric = "error_rate"
max = 0.05
min_requests = 8
"""


def _run(out, pairs, perturbs, include_clean):
    from voxproof.backends.registry import load_backend
    from voxproof.manifest import bundled_dataset_path, dataset_hash, read_manifest
    from voxproof.perturb import resolve_conditions
    from voxproof.run.runner import RunOptions, run_eval

    utts = sorted(read_manifest(bundled_dataset_path()), key=lambda u: u.duration or 0)[:N_CLIPS]
    run_eval(lambda: load_backend("whisper", kind="asr", pairs=pairs), utts, out,
             options=RunOptions(features="full", include_clean=include_clean),
             conditions=resolve_conditions([], perturbs), normalizer={"name": "whisper-en", "version": 1},
             dataset={"source": "bundled", "hash": dataset_hash(utts), "utterances": len(utts)})
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("faster_whisper")
    root = tmp_path_factory.mktemp("monitor-real")
    return {
        "clean": _run(root / "clean", [], [], True),
        "prod": _run(root / "prod", [], ["gain:-55"], False),
        "canary": _run(root / "canary", ["vad_filter=true"], ["gain:-55"], False),
        "root": root,
    }


def test_baseline_from_a_real_run_has_features_and_calibration(runs, capsys):
    out = runs["root"] / "profile.json"
    assert main(["monitor", "baseline", str(runs["clean"]), "-o", str(out)]) == 0
    prof = json.loads(out.read_text())
    assert prof["n_requests"] == N_CLIPS
    assert prof["numeric"]["speech_ratio"]["n"] == N_CLIPS  # from the run's stored features, not re-decoded
    cal = prof["calibration"]
    assert cal["words"] > 30
    assert abs(cal["fitted_wer"] - cal["reference_wer"]) < 0.08
    assert "calibration" in capsys.readouterr().out


def test_bad_canary_is_removed_by_the_watcher_and_production_untouched(runs, tmp_path, capsys):
    from voxproof.monitor.runlog import log_row
    from voxproof.monitor.source import write_jsonl
    from voxproof.run.store import RunStore

    with RunStore.open(runs["prod"]) as s:
        prod_rows = list(s.rows())
    with RunStore.open(runs["canary"]) as s:
        canary_rows = list(s.rows())
    empty_canary = sum(not (r.hypothesis or "").strip() for r in canary_rows)
    assert empty_canary >= 1, "the planted regression should drop some quiet clips"
    reg = tmp_path / "registry.sqlite"
    with Registry.open(reg) as r:
        r.register("v1", backend="whisper", actor="alice")
        r.register("v2", backend="whisper", actor="alice", options={"vad_filter": True})
        r.promote("v1", actor="alice")
        r.set_alias("canary", "v2", actor="alice", reason="canary 25 %")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    log = tmp_path / "requests.jsonl"
    log.write_text("")
    removed_at = None
    for i in range(MAX_REQUESTS):
        canary = i % 4 == 3  # 25 % of traffic
        src = canary_rows if canary else prod_rows
        row = src[i % len(src)]
        rec = log_row(row, ts=1_000_000.0 + i, version="v2" if canary else "v1", route="canary" if canary else "main",
                      request_id=f"req-{i}")
        write_jsonl([rec], log, append=True)
        if (i + 1) % 8 == 0:
            code = main(["monitor", "watch", "--log", str(log), "--registry", str(reg), "--policy", str(policy),
                         "--once", "--incidents", str(tmp_path / "incidents")])
            assert code in (0, 1)
            if code == 1:
                removed_at = i + 1
                break
    assert removed_at is not None, f"canary not removed within {MAX_REQUESTS} requests"
    with capsys.disabled():
        print(f"\ncanary removed after {removed_at} requests ({removed_at // 4} on the canary)")
    with Registry.open(reg) as r:
        aliases = r.aliases()
        history = r.history()
    assert "canary" not in aliases and aliases["production"] == "v1"
    last = history[-1]
    assert (last.actor, last.action, last.alias, last.from_version) == ("monitor", "remove-alias", "canary", "v2")
    assert "canary-empty-output" in last.reason
    assert not [h for h in history if h.actor == "monitor" and h.alias == "production"]
    incident = json.loads(next((tmp_path / "incidents").glob("incident-*.json")).read_text())
    assert incident["action"] == "remove-canary" and incident["rule"]["rule"] == "canary-empty-output"
    assert incident["rule"]["low"] > 0.05 and incident["log"]["row_ids"]
    assert "INCIDENT canary-empty-output" in capsys.readouterr().out
