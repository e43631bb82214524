"""Robustness metrics: paired degradation, suite score, threshold crossings, feature bins, OOD flags,
curves; plus a real Whisper tiny.en run under the noise ladder (LibriSpeech test-other, CC BY 4.0)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from voxproof.metrics.align import word_counts
from voxproof.metrics.robustness import (
    analyze,
    analyze_run,
    ood_flags,
    plot_robustness,
    robustness_curves_png,
    robustness_to_dict,
    threshold_crossing,
)
from voxproof.perturb import resolve_conditions
from voxproof.run.records import CLEAN, ResultRow
from voxproof.run.store import RunStore

LS = "librispeech-test-other-mini"


def _transcripts(shared_data: Path, n: int) -> list[tuple[str, str]]:
    lines = (shared_data / LS / "transcripts.tsv").read_text().splitlines()
    return [tuple(line.split("\t", 1)) for line in lines[:n]]  # type: ignore[misc]


def _damage(text: str, every: int) -> str:
    """Drop every ``every``-th word (``every=0``: unchanged)."""
    words = text.lower().split()
    return " ".join(w for i, w in enumerate(words) if every == 0 or i % every != every - 1)


def _rows(shared_data: Path) -> tuple[list[ResultRow], dict, list]:
    conds = resolve_conditions(["noise-ladder"], [])[3:]  # snr 10, 5, 0
    damage = {CLEAN: 0, "noise-ladder/snr=10": 8, "noise-ladder/snr=5": 4, "noise-ladder/snr=0": 2}
    snr_feature = {CLEAN: 25.0, "noise-ladder/snr=10": 12.0, "noise-ladder/snr=5": 7.0, "noise-ladder/snr=0": 2.0}
    rows, counts = [], {}
    for utt, ref in _transcripts(shared_data, 20):
        for name in damage:
            spec = next((c for c in conds if c.name == name), None)
            row = ResultRow(
                utt_id=utt, condition=name, status="ok", reference=ref, hypothesis=_damage(ref, damage[name]),
                speaker=utt.split("-")[0], perturbation=() if spec is None else spec.chain_spec(),
                features={"snr_db": snr_feature[name], "duration_s": 5.0},
            )
            rows.append(row)
            counts[(utt, name)] = word_counts(ref.lower(), row.hypothesis)
    specs = [(CLEAN, {"name": CLEAN, "chain": []})] + [(c.name, c.to_spec()) for c in conds]
    return rows, counts, specs


def _wer(counts: dict, name: str, utts=None) -> float:
    sel = [c for (u, n), c in counts.items() if n == name and (utts is None or u in utts)]
    return sum(c.errors for c in sel) / sum(c.ref_len for c in sel)


def test_paired_degradation_and_suite_score_match_hand_computation(shared_data: Path) -> None:
    rows, counts, specs = _rows(shared_data)
    rep = analyze(rows, counts, specs, threshold=0.2, n_resamples=400, seed=1)
    assert rep.clean is not None and rep.clean.estimate == 0.0
    by = {c.condition: c for c in rep.conditions}
    for name in ("noise-ladder/snr=10", "noise-ladder/snr=5", "noise-ladder/snr=0"):
        c = by[name]
        assert c.paired == 20 and c.wer.estimate == pytest.approx(_wer(counts, name))
        assert c.delta.estimate == pytest.approx(_wer(counts, name) - 0.0)
        assert c.delta.low <= c.delta.estimate <= c.delta.high
        assert c.delta.blocked_by == "speaker"
        assert math.isnan(c.relative.estimate)  # clean WER is 0: relative change undefined
    assert [c.condition for c in rep.conditions] == ["noise-ladder/snr=0", "noise-ladder/snr=5", "noise-ladder/snr=10"]
    suite = rep.suites[0]
    expected = np.mean([1 - _wer(counts, n) for n in ("noise-ladder/snr=10", "noise-ladder/snr=5",
                                                       "noise-ladder/snr=0")])
    assert suite.score.estimate == pytest.approx(expected)
    assert suite.score.low <= suite.score.estimate <= suite.score.high
    assert suite.worst_condition == "noise-ladder/snr=0"
    curve = suite.curves[0]
    assert curve.severities == (10.0, 5.0, 0.0)  # mildest first: SNR falls
    w10, w5 = _wer(counts, "noise-ladder/snr=10"), _wer(counts, "noise-ladder/snr=5")
    assert w10 < 0.2 <= w5
    assert curve.crossing.status == "crossed"
    assert curve.crossing.severity == pytest.approx(10 + (0.2 - w10) * (5 - 10) / (w5 - w10))
    json.dumps(robustness_to_dict(rep), allow_nan=False)


def test_relative_degradation_with_a_nonzero_clean_wer(shared_data: Path) -> None:
    rows, counts, specs = _rows(shared_data)
    # give clean some errors: drop every 10th word
    rows = [r if r.condition != CLEAN else ResultRow(**{**r.__dict__, "hypothesis": _damage(r.reference, 10)})
            for r in rows]
    counts.update({(r.utt_id, CLEAN): word_counts(r.reference.lower(), r.hypothesis) for r in rows
                   if r.condition == CLEAN})
    rep = analyze(rows, counts, specs, n_resamples=300)
    c = next(c for c in rep.conditions if c.condition == "noise-ladder/snr=0")
    clean, cond = _wer(counts, CLEAN), _wer(counts, "noise-ladder/snr=0")
    assert c.relative.estimate == pytest.approx((cond - clean) / clean)
    assert c.relative.low <= c.relative.estimate <= c.relative.high


def test_unpaired_and_failed_rows_are_left_out_of_the_pairing(shared_data: Path) -> None:
    rows, counts, specs = _rows(shared_data)
    dropped = rows[0].utt_id
    del counts[(dropped, "noise-ladder/snr=0")]  # an error row: no counts
    rep = analyze(rows, counts, specs, n_resamples=200)
    c = next(c for c in rep.conditions if c.condition == "noise-ladder/snr=0")
    assert c.rows == 20 and c.scored == 19 and c.paired == 19
    assert rep.suites[0].paired == 19


@pytest.mark.parametrize("sevs, wers, thr, status, expected", [
    ((40, 20, 10, 0), (0.1, 0.12, 0.3, 0.8), 0.2, "crossed", 20 + (0.2 - 0.12) * (10 - 20) / (0.3 - 0.12)),
    ((0.3, 0.6, 0.9), (0.1, 0.2, 0.4), 0.3, "crossed", 0.75),
    ((40, 20), (0.5, 0.6), 0.2, "above-at-mildest", 40),
    ((40, 20), (0.05, 0.1), 0.2, "not-reached", None),
    ((), (), 0.2, "no-data", None),
])
def test_threshold_crossing(sevs, wers, thr, status, expected) -> None:
    c = threshold_crossing(sevs, wers, thr)
    assert c.status == status
    assert c.severity == (None if expected is None else pytest.approx(expected))


def test_feature_bins_and_ood_flags(shared_data: Path) -> None:
    rows, counts, specs = _rows(shared_data)
    rep = analyze(rows, counts, specs, n_resamples=200)
    snr_bins = {(b.low, b.high): b for b in rep.feature_bins if b.feature == "snr_db"}
    assert snr_bins[(0.0, 5.0)].rows == 20
    assert snr_bins[(0.0, 5.0)].wer.estimate == pytest.approx(_wer(counts, "noise-ladder/snr=0"))
    flagged = {(f.feature, f.low) for f in rep.ood_flags}
    # the clean reference sits at 25 dB; the perturbed rows fill 0-5, 5-10, 10-20 dB
    assert flagged == {("snr_db", 0.0), ("snr_db", 5.0), ("snr_db", 10.0)}
    assert ood_flags([{"snr_db": 25.0}] * 10, [{"snr_db": 26.0}] * 10) == []


def test_curves_png(shared_data: Path) -> None:
    rows, counts, specs = _rows(shared_data)
    rep = analyze(rows, counts, specs, threshold=0.2, n_resamples=100)
    png = plot_robustness(rep)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # the report page draws from summary.json's dict form: same picture
    as_json = json.loads(json.dumps(robustness_to_dict(rep)))
    assert robustness_curves_png(as_json) == png


@pytest.mark.slow
def test_whisper_wer_rises_as_snr_falls_on_real_speech(shared_data: Path, tmp_path: Path) -> None:
    from voxproof.backends.registry import load_backend
    from voxproof.manifest.reader import read_manifest
    from voxproof.run.runner import RunOptions, run_eval

    utts = list(read_manifest(shared_data / LS))[:4]
    conds = [c for c in resolve_conditions(["noise-ladder"], []) if c.severity in (20.0, 0.0)]
    run_eval(lambda: load_backend("whisper"), utts, tmp_path / "run", conditions=conds,
             options=RunOptions(seed=3, features="basic"))
    store = RunStore.open(tmp_path / "run")
    for row in store.rows():
        if row.condition != CLEAN:
            assert row.perturbation[0]["kind"] == "noise"
            assert row.features["snr_db"] < 40
    rep = analyze_run(store, threshold=0.5, n_resamples=200)
    wer = {c.condition: c.wer.estimate for c in rep.conditions}
    assert wer["noise-ladder/snr=0"] > wer["noise-ladder/snr=20"] >= rep.clean.estimate - 0.02
    worst = rep.conditions[0]
    assert worst.condition == "noise-ladder/snr=0" and worst.delta.estimate > 0
