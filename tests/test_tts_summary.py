"""Summaries and paired comparisons computed from stored rows: corpus WER, failures counted as
deletions, penalised MOS, paired bootstrap and tests against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from voxproof.metrics.normalize import get_normalizer
from voxproof.run.records import ResultRow
from voxproof.tts.detectors import FAILURE_KINDS
from voxproof.tts.summary import compare_systems, prompt_scores, summarise, worst_items

NORM = get_normalizer("whisper-en")


def _row(uid, ref_words, errors, ovrl=None, flags=(), status="ok"):
    failures = {k: k in flags for k in FAILURE_KINDS}
    if status != "ok":
        return ResultRow(uid, "tts", "error", reference=" ".join(["word"] * ref_words), error_type="BackendError",
                         tags={"category": "c"}, extras={"failures": failures})
    w = {"hits": ref_words - errors, "substitutions": errors, "deletions": 0, "insertions": 0}
    features = {} if ovrl is None else {"mos_ovrl": ovrl, "mos_sig": ovrl, "mos_bak": ovrl, "mos_p808": ovrl}
    return ResultRow(uid, "tts", "ok", reference="x", hypothesis="y", audio_duration=2.0, processing_time=0.1,
                     tags={"category": "c" if int(uid[1:]) % 2 else "d"}, features=features,
                     extras={"words": w, "chars": dict(w), "failures": failures, "synthesis_cpu_seconds": 0.05})


def test_corpus_wer_failures_and_penalised_mos():
    rows = [_row("p1", 10, 1, 3.0), _row("p2", 5, 0, 3.5, flags=("clipping",)), _row("p3", 4, 0, flags=("synthesis_error",), status="error")]
    scores = prompt_scores(rows, NORM)
    s = summarise("sys", scores, n_resamples=200)
    # the failed prompt counts as 4 deleted words: (1 + 0 + 4) / (10 + 5 + 4)
    assert s.wer.estimate == pytest.approx(5 / 19)
    assert s.n_items == 3 and s.n_ok == 2 and s.n_synthesis_errors == 1
    assert s.failures["clipping"] == {"count": 1, "share": 1 / 3, "ids": ["p2"]}
    assert s.any_failure == {"count": 2, "share": 2 / 3, "ids": ["p2", "p3"]}
    assert s.mos["ovrl"].estimate == pytest.approx(3.25) and s.mos_n == 2
    assert s.ovrl_penalised == pytest.approx((3.0 + 3.5 + 1.0) / 3)
    assert s.timing["rtf"] == pytest.approx(0.2 / 4.0) and s.timing["cpu_rtf"] == pytest.approx(0.1 / 4.0)
    assert s.by_category["c"]["n"] == 2 and s.by_category["c"]["errors"] == 5
    assert summarise("sys", scores, n_resamples=200, mos_enabled=False).ovrl_penalised is None
    assert [w.id for w in worst_items(scores, 2)] == ["p3", "p2"]  # one flag each; p3 has WER 100 %


def test_paired_comparison_matches_direct_computation():
    rng = np.random.default_rng(1)
    n = 30
    refs = rng.integers(3, 15, n)
    err_a = rng.integers(0, 3, n)
    err_b = err_a + rng.integers(0, 3, n)
    mos_a = rng.uniform(2.5, 3.5, n)
    mos_b = mos_a - 0.3 + rng.normal(0, 0.1, n)
    a = prompt_scores([_row(f"p{i}", int(refs[i]), int(err_a[i]), float(mos_a[i])) for i in range(n)], NORM)
    b = prompt_scores([_row(f"p{i}", int(refs[i]), int(err_b[i]), float(mos_b[i])) for i in range(n)], NORM)
    comp = compare_systems("a", a, "b", b, n_resamples=500, seed=3)
    wer = comp.metric("wer")
    assert wer.a == pytest.approx(err_a.sum() / refs.sum()) and wer.b == pytest.approx(err_b.sum() / refs.sum())
    assert wer.difference.low <= wer.difference.estimate <= wer.difference.high
    assert wer.difference.low > 0 and wer.prob_b_better == 0.0  # B never has fewer errors
    ovrl = comp.metric("mos_ovrl")
    assert ovrl.difference.estimate == pytest.approx(float(np.mean(mos_b - mos_a)))
    assert ovrl.difference.high < 0
    from scipy.stats import wilcoxon

    ours = {t.name: t for t in ovrl.tests}["wilcoxon"]
    assert ours.p_value == pytest.approx(wilcoxon(mos_a - mos_b).pvalue)
    assert comp.n_common == n and not comp.warnings
    again = compare_systems("a", a, "b", b, n_resamples=500, seed=3)
    assert again.to_dict() == comp.to_dict()  # seeded: same numbers


def test_plcmos_summarised_compared_and_reported_only_where_it_ran(tmp_path):
    """Rows carry ``mos_plcmos`` when tts-eval ran --plcmos: its interval covers the rows that have it,
    the paired comparison includes it only when every paired clip has it, and both reports show it."""
    from voxproof.tts.report import build_tts_summary, console_table, write_html

    def with_plc(row, value):
        if value is not None:
            row.features["mos_plcmos"] = value
        return row

    plc_a = [4.1, 4.4, None]
    a = prompt_scores([with_plc(_row(f"p{i}", 6, 1, 3.0 + i / 10), v) for i, v in enumerate(plc_a)], NORM)
    b = prompt_scores([with_plc(_row(f"p{i}", 6, 2, 2.5), 3.0) for i in range(3)], NORM)
    sa, sb = summarise("a", a, n_resamples=200), summarise("b", b, n_resamples=200)
    assert sa.mos["plcmos"].estimate == pytest.approx(4.25) and sb.mos["plcmos"].estimate == pytest.approx(3.0)
    assert "plcmos" not in summarise("c", prompt_scores([_row("p1", 6, 1, 3.0)], NORM), n_resamples=50).mos
    partial = compare_systems("a", a, "b", b, n_resamples=200, seed=0)
    assert "mos_plcmos" not in [m.metric for m in partial.metrics]  # p2 of a has no PLCMOS
    full = compare_systems("a", a[:2], "b", b[:2], n_resamples=200, seed=0)
    assert full.metric("mos_plcmos").b - full.metric("mos_plcmos").a == pytest.approx(3.0 - 4.25)
    judges = {"asr": {"name": "sphinx"}, "normalizer": {"name": "whisper-en", "version": 1}, "vad": "energy",
              "mos": {"name": "dnsmos", "version": "speechmos 0.0.1.1", "model_checksum": "0" * 16,
                      "plcmos": {"model": "plcmos_v2.onnx", "model_checksum": "1" * 16, "rater_embeddings": "15"}}}
    summary = build_tts_summary([sa, sb], [full], floor=None, judges=judges, prompts={"n": 3})
    text = console_table(summary)
    assert "PLCMOS v2 [95% CI]  a 4.25" in text and "mos_plcmos" in text
    html = write_html(summary, tmp_path / "r.html").read_text()
    assert "plcmos_v2.onnx" in html and "<th>PLCMOS</th>" in html and "4.25 [" in html
