"""Latency statistics, repeatability check, resource meter and cost arithmetic; a real PocketSphinx
run on real recordings through the run store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxproof.errors import UsageError
from voxproof.metrics.cost import (
    EXAMPLE_NOTE,
    cost_per_audio_hour,
    cost_table,
    cost_to_dict,
    disk_size_bytes,
    parse_prices,
)
from voxproof.metrics.latency import (
    Conditions,
    cpu_model,
    latency_agreement,
    latency_from_store,
    latency_from_times,
    latency_to_dict,
)


def test_rtfx_is_a_ratio_of_sums_and_percentiles_are_numpys():
    p = [0.5, 1.0, 0.2, 3.0]
    a = [5.0, 4.0, 2.0, 10.0]
    r = latency_from_times(p, a, n_boot=200)
    assert r.rtfx == pytest.approx(21.0 / 4.7)
    assert r.rtf == pytest.approx(4.7 / 21.0)
    assert r.rtfx != pytest.approx(np.mean(np.array(a) / np.array(p)))  # not a mean of ratios
    assert r.latency_percentiles[50] == pytest.approx(np.percentile(p, 50))
    assert r.latency_percentiles[99] == pytest.approx(np.percentile(p, 99))
    q = np.percentile(np.array(p) / np.array(a), [25, 75])
    assert r.rtf_iqr == pytest.approx(q[1] - q[0])
    lo, hi = r.rtfx_interval
    assert lo <= r.rtfx <= hi
    d = latency_to_dict(r, include_rows=True)
    json.dumps(d)
    assert d["latency_seconds"]["p90"] == r.latency_percentiles[90] and len(d["per_utterance"]) == 4


def test_cpu_time_figures_and_agreement():
    rng = np.random.default_rng(0)
    a = rng.uniform(2, 15, 50)
    wall1 = a * 0.1 * rng.uniform(0.9, 1.1, 50)
    wall2 = wall1 * 1.6  # the machine got busier: wall clock slower
    cpu = a * 0.18 * rng.uniform(0.9, 1.1, 50)
    r1 = latency_from_times(wall1, a, cpu=cpu)
    r2 = latency_from_times(wall2, a, cpu=cpu * rng.uniform(0.98, 1.02, 50))
    wall = latency_agreement(r1, r2)
    assert not wall.agree and wall.ratio == pytest.approx(1 / 1.6)
    cpu_ag = latency_agreement(r1, r2, "cpu_rtfx")
    assert cpu_ag.agree and r1.cpu_rtfx == pytest.approx(a.sum() / cpu.sum())
    same = latency_agreement(r1, latency_from_times(wall1, a, cpu=cpu, seed=5))
    assert same.agree and same.ratio == pytest.approx(1.0)
    with pytest.raises(UsageError, match="cpu_rtfx"):
        latency_agreement(latency_from_times(wall1, a), r1, "cpu_rtfx")


def test_bad_times_are_refused():
    with pytest.raises(UsageError):
        latency_from_times([], [])
    with pytest.raises(UsageError, match="audio durations"):
        latency_from_times([0.1], [0.0])


def test_conditions_record_cpu_and_load():
    c = Conditions(backend="x", threads=2)
    assert c.cpu_model == cpu_model() and c.cpu_model
    if Path("/proc/cpuinfo").exists():
        assert c.cpu_model in Path("/proc/cpuinfo").read_text()
    assert c.logical_cpus >= 1
    assert c.to_dict()["threads"] == 2


_METER_CHILD = """
import json, time
import numpy as np
from voxproof.run.resources import measure_resources
early = np.ones(40_000_000)  # 320 MB touched and freed before the block: the process peak, not the block's
early.sum()
del early
with measure_resources() as meter:
    block = np.ones(12_500_000)  # 100 MB touched inside the block
    block.sum()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    del block
print(json.dumps(meter.usage.to_dict()))
"""


def test_measure_resources_sees_memory_and_cpu():
    # in a fresh child process: the pytest process's RSS depends on which tests ran before (freed pages
    # stay resident and are reused), so a block's growth measured here would be history, not the code
    out = subprocess.run([sys.executable, "-c", _METER_CHILD], capture_output=True, text=True, timeout=120,
                         check=True)
    u = json.loads(out.stdout)
    assert u["cpu_seconds"] >= 0.2 and u["wall_seconds"] >= 0.2
    assert u["cpu_utilisation"] == pytest.approx(u["cpu_seconds"] / u["wall_seconds"])
    grew = u["peak_rss_mb"] - u["start_rss_mb"]
    assert grew > 90  # the 100 MB block is seen
    if u["peak_rss_scope"] == "block":
        assert grew < 250  # the peak was reset at the start: the earlier 320 MB does not count
    else:
        assert u["peak_rss_scope"] == "process" and u["peak_rss_mb"] > 320


def test_cost_arithmetic_and_example_labels(tmp_path):
    assert cost_per_audio_hour(0.10, machine_seconds=360, audio_seconds=3600) == pytest.approx(0.01)
    lines = cost_table(360, 3600)
    assert all(line.is_example for line in lines)
    assert cost_to_dict(lines)["note"] == EXAMPLE_NOTE
    mine = cost_table(360, 3600, {"vm": 1.0})
    assert not mine[0].is_example and mine[0].cost_per_audio_hour == pytest.approx(0.1)
    assert mine[0].audio_hours_per_machine_hour == pytest.approx(10)
    assert parse_prices(["big vm=0.5"]) == {"big vm": 0.5}
    with pytest.raises(UsageError, match="NAME=USD"):
        parse_prices(["nonsense"])
    with pytest.raises(UsageError, match="negative"):
        cost_per_audio_hour(-1, 1, 1)
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 5)
    assert disk_size_bytes(tmp_path) == 15


@pytest.mark.slow
def test_latency_from_a_real_sphinx_run(tmp_path, shared_data):
    from voxproof.backends.registry import load_backend
    from voxproof.manifest.utterance import Utterance
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import RunStore

    folder = shared_data / "librispeech-test-other-mini"
    lines = (folder / "transcripts.tsv").read_text().splitlines()[:2]
    utts = [Utterance(id=i, audio=str(folder / "audio" / f"{i}.flac"), text=t)
            for i, t in (line.split("\t", 1) for line in lines)]
    run_eval(lambda: load_backend("sphinx", kind="asr"), utts, tmp_path / "run",
             options=RunOptions(features="none"), normalizer=get_normalizer("whisper-en").to_dict())
    with RunStore.open(tmp_path / "run") as store:
        rep = latency_from_store(store)
        rows = list(store.rows())
    assert rep.n == 2
    assert rep.audio_seconds == pytest.approx(sum(r.audio_duration for r in rows))
    assert rep.processing_seconds == pytest.approx(sum(r.processing_time for r in rows))
    assert rep.conditions.backend == "sphinx"
    assert rep.model_load_seconds is not None and rep.model_load_seconds > 0
