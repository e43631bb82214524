"""Gate model mode as a user sees it: where the runs live (``--cache-dir``), what differs between the two
models, a reused run reported once, and ``--sample`` recorded in both runs (real PocketSphinx, 2 clips)."""

from __future__ import annotations

import pytest

from voxproof.cli.main import main
from voxproof.run.store import RunStore


def test_cache_dir_is_printed_and_reused_runs_are_reported_once(tmp_path, capsys, caplog):
    pytest.importorskip("pocketsphinx")
    cache = tmp_path / "gate-cache"
    args = ["gate", "--baseline-model", "sphinx", "--candidate-model", "sphinx", "-O", "lw=7", "--sample", "2",
            "--seed", "3", "--cache-dir", str(cache)]
    first = main([*args, "-o", str(tmp_path / "g1")])
    out, err = capsys.readouterr()
    assert first in (0, 1)
    runs = sorted(p.parent for p in cache.glob("sphinx-*/run.sqlite"))
    assert len(runs) == 2
    for run in runs:
        assert f"evaluating {run} (2 rows)" in err and f"evaluated {run}" in err
        with RunStore.open(run) as store:
            assert store.provenance["dataset"]["sample"]["n"] == 2
            assert store.provenance["dataset"]["sample"]["seed"] == 3
    assert "stratified sample: 2 of 50, 2 speakers, seed 3" in err and f"run cache: {cache}" in err
    assert "options that differ: lw 6.5 -> 7.0" in out
    caplog.clear()
    again = main([*args, "-o", str(tmp_path / "g2")])
    out, err = capsys.readouterr()
    assert again == first
    assert err.count("reused") == 2 and "evaluating" not in err
    assert not [r for r in caplog.records if "reusing" in r.getMessage()]  # the CLI line is the only mention
    for run in runs:
        assert f"reused {run} (complete, 2 rows)" in err
