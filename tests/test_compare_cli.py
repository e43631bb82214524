"""``voxproof compare`` through the CLI: a real comparison, compare.json, and the refusals (exit 2)."""

from __future__ import annotations

import json

import pytest
from test_metrics_scoring import build_store

from voxproof.cli.main import main
from voxproof.errors import NotComparable
from voxproof.metrics.compare import compare_runs, compare_to_dict
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore


@pytest.fixture()
def two_runs(tmp_path, shared_data):
    a = build_store(tmp_path, shared_data, name="a", rate=0.3, seed=1)
    b = build_store(tmp_path, shared_data, name="b", rate=0.1, seed=2)
    a.close()
    b.close()
    return tmp_path / "a", tmp_path / "b"


def test_compare_prints_table_and_writes_json(two_runs, tmp_path, capsys):
    a, b = two_runs
    out = tmp_path / "cmp" / "compare.json"
    code = main(["compare", str(a), str(b), "--resamples", "300", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "condition clean" in text and "P(B better)" in text
    for name in ("mapsswe", "sign", "wilcoxon", "mcnemar"):
        assert name in text
    data = json.loads(out.read_text())
    assert data["type"] == "run_comparison" and data["schema"] == 1
    clean = next(c for c in data["comparisons"] if c["condition"] == "clean")
    assert clean["utterances"] == 50 and clean["ref_words"] == 1060
    assert clean["wer_b"] < clean["wer_a"]
    assert clean["difference"]["high"] < 0 and clean["prob_b_better"] > 0.95
    assert clean["difference"]["n_resamples"] == 300 and clean["difference"]["blocked_by"] == "speaker"
    assert {t["name"]: t["p_value"] for t in clean["tests"]}["sign"] < 0.05
    # error rows (same in both runs) are left out and said so
    assert any("3 utterances left out" in w for w in clean["warnings"])
    # default output path: RUN_B/compare.json
    assert main(["compare", str(a), str(b), "--resamples", "50"]) == 0
    assert (b / "compare.json").is_file()
    page = (b / "compare.html").read_text()
    assert "Paired WER difference" in page and "mcnemar" in page and "src='http" not in page


def test_refuses_different_dataset_hash(tmp_path, shared_data, capsys):
    build_store(tmp_path, shared_data, name="a").close()
    build_store(tmp_path, shared_data, name="c", dataset_hash="other").close()
    code = main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--resamples", "50"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("NotComparable: ") and "different datasets" in err and "--intersect" in err
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--resamples", "50", "--intersect"]) == 0


def test_refuses_different_utterance_sets_unless_intersect(tmp_path, shared_data, capsys):
    build_store(tmp_path, shared_data, name="a").close()
    d = build_store(tmp_path, shared_data, name="d", extra_rows=False)
    d.add_row(ResultRow("new-utt", "clean", "ok", reference="HELLO THERE", hypothesis="hello there"), 999)
    d.close()
    code = main(["compare", str(tmp_path / "a"), str(tmp_path / "d"), "--resamples", "50"])
    assert code == 2
    err = capsys.readouterr().err
    assert "different utterance sets" in err and "rows only in A" in err and "rows only in B" in err
    with RunStore.open(tmp_path / "a") as sa, RunStore.open(tmp_path / "d") as sd:
        result = compare_runs(sa, sd, intersect=True, n_resamples=50)
    assert result.dropped == {"only_in_a": 3, "only_in_b": 1, "reference_differs": 0, "error_rows": 0}
    assert result.condition("clean").utterances == 50
    assert compare_to_dict(result)["intersect"] is True


def test_refuses_different_normalizers_unless_one_is_given(tmp_path, shared_data, capsys):
    build_store(tmp_path, shared_data, name="a").close()
    e = build_store(tmp_path, shared_data, name="e")
    e.set_meta("provenance", {"dataset_hash": "h1", "normalizer": {"name": "basic", "version": "1"}})
    e.close()
    code = main(["compare", str(tmp_path / "a"), str(tmp_path / "e"), "--resamples", "50"])
    assert code == 2
    assert "normalizer whisper-en@1" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "e"), "--resamples", "50",
                 "--normalizer", "basic"]) == 0
    with RunStore.open(tmp_path / "a") as sa, RunStore.open(tmp_path / "e") as se, pytest.raises(NotComparable):
        compare_runs(sa, se)


def test_same_run_twice_shows_no_difference(two_runs):
    a, _ = two_runs
    with RunStore.open(a) as s1, RunStore.open(a) as s2:
        c = compare_runs(s1, s2, n_resamples=100).condition("clean")
    assert c.difference.estimate == 0 and c.difference.low == 0 and c.difference.high == 0
    assert all(t.p_value == 1.0 for t in c.tests)


def test_bad_settings_exit_2(two_runs, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--level", "95"]) == 2
    assert "level must be between 0 and 1" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--alternates", str(a / "nope.txt")]) == 2
    assert "alternates file" in capsys.readouterr().err
    assert main(["compare", str(a), str(b / "missing-run")]) == 2  # a usage mistake: no run there
