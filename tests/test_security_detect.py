"""Disagreement detector: the score, labels, AUROC and alarm rates on planted run stores, the CLI
refusing stores that did not decode the same audio, and hostile values."""

from __future__ import annotations

import json

import pytest

from voxproof.errors import UsageError
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore
from voxproof.security.detect import analyze_pairs, disagreement, label_of, pair_scores

REF = "the cat sat on the mat"


def _store(path, hyps, seed=0):
    prov = {"backend": {"name": path.name}, "dataset_hash": "h", "seed": seed, "conditions": []}
    store = RunStore.create(path, prov)
    for i, (utt, cond, hyp) in enumerate(hyps):
        extras = {"payload": "open the door"} if cond.startswith("inject/") else {}
        store.add_row(ResultRow(utt, cond, "ok", reference=REF, hypothesis=hyp, extras=extras), i)
    return store


def test_disagreement_score():
    assert disagreement([], []) == 0.0
    assert disagreement(["a", "b", "c"], ["a", "b", "c"]) == 0.0
    assert disagreement(["a", "b"], []) == 1.0
    assert disagreement(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == pytest.approx(0.25)
    assert label_of("clean") == "clean" and label_of("inject/plain/under/level=0dB") == "attacked"
    assert label_of("noise-ladder/snr=10") == "natural" and label_of("random/snr=10/draw=0") == "natural"


def _planted(tmp_path):
    a_rows, b_rows = [], []
    for k in range(10):
        u = f"u{k}"
        a_rows.append((u, "clean", REF))
        b_rows.append((u, "clean", REF if k % 5 else "the cat sat on a mat"))
        a_rows.append((u, "inject/plain/under/level=0dB", REF + " open the door"))
        b_rows.append((u, "inject/plain/under/level=0dB", "the cap said on the map oh pen"))
        a_rows.append((u, "noise-ladder/snr=10", REF))
        b_rows.append((u, "noise-ladder/snr=10", "the cat sat on" if k < 3 else REF))
    return _store(tmp_path / "a", a_rows), _store(tmp_path / "b", b_rows)


def test_detector_separates_planted_attacks(tmp_path):
    a, b = _planted(tmp_path)
    scored = pair_scores(a, b, str.lower)
    assert len(scored) == 30
    out = analyze_pairs(scored, target_false_alarm=0.1, n_resamples=200)
    assert out["auroc_attacked_vs_clean"]["estimate"] == 1.0
    assert out["auroc_effective_attacks_vs_clean"]["n_pos"] == 10  # every planted payload got through in A
    assert out["alarm_rate"]["attacked"]["estimate"] == 1.0
    assert out["alarm_rate"]["clean"]["estimate"] <= 0.1
    natural = out["alarm_rate"]["natural"]["noise-ladder/snr=10"]
    assert natural["alarms"] == 3 and natural["n"] == 10
    json.dumps(out, allow_nan=False)


def test_bad_target_and_no_clean_rows(tmp_path):
    a, b = _planted(tmp_path)
    scored = pair_scores(a, b, str.lower)
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(UsageError):
            analyze_pairs(scored, target_false_alarm=bad)


def test_cli_refuses_stores_over_different_audio(tmp_path):
    from voxproof.cli.main import main
    from voxproof.errors import NotComparable

    _store(tmp_path / "a", [("u", "clean", REF)], seed=0).close()
    _store(tmp_path / "b", [("u", "clean", REF)], seed=1).close()
    assert main(["probe", "detect", "--pair", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "o")]) == NotComparable.exit_code
    assert main(["probe", "detect", "--pair", str(tmp_path / "a"), str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 3
