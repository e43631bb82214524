"""N-system comparison: Friedman and chi-square against scipy, Holm against a worked example, the
permutation omnibus and the ranking on constructed counts, and ``voxproof compare`` with three runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_metrics_classes import BASIC, digits, make_store, spoken

from voxproof.cli.main import main
from voxproof.errors import NotComparable
from voxproof.metrics.compare import compare_many
from voxproof.metrics.multi import chi2_sf, compare_matrix, friedman, holm, permutation_omnibus
from voxproof.run.store import RunStore


@pytest.mark.parametrize("n, k, seed", [(50, 3, 1), (8, 4, 2), (200, 5, 3), (30, 3, 4)])
def test_friedman_equals_scipy(n, k, seed):
    stats = pytest.importorskip("scipy.stats")
    e = np.random.default_rng(seed).integers(0, 4, (n, k)).astype(float)  # many ties
    ours = friedman(e)
    ref = stats.friedmanchisquare(*e.T)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("x, df", [(0.01, 1), (0.5, 1), (3.0, 2), (10.0, 4), (50.0, 3), (200.0, 10), (7.0, 7)])
def test_chi_square_survival_equals_scipy(x, df):
    stats = pytest.importorskip("scipy.stats")
    assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)


def test_holm_worked_example():
    # p = 0.01, 0.04, 0.03, nan over 3 tests: sorted 0.01*3=0.03, 0.03*2=0.06, max(0.06, 0.04*1)=0.06
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_omnibus_and_ranking_on_constructed_counts():
    rng = np.random.default_rng(0)
    n = 60
    ref = rng.integers(10, 30, n)
    good = rng.binomial(ref, 0.05)
    same = good.copy()
    bad = rng.binomial(ref, 0.30)
    m = compare_matrix(ref, [good, same, bad], ["good", "same", "bad"], n_resamples=500, n_permutations=500)
    tests = {t.name: t for t in m.omnibus}
    assert tests["friedman"].p_value < 1e-6 and tests["permutation"].p_value < 0.01
    ranking = {r.system: r for r in m.ranking}
    assert ranking["bad"].rank == 3 and ranking["bad"].p_best == 0 and ranking["bad"].rank_low == 3
    assert ranking["good"].rank == ranking["same"].rank == 1.5  # a tie shares the mid-rank
    assert sum(r.p_best for r in m.ranking) == pytest.approx(1.0)
    pair = {(a, b): (c, adj) for a, b, c, adj in m.pairwise}
    comp, adjusted = pair[(0, 1)]
    assert comp.difference.estimate == 0 and adjusted["sign"] == 1.0
    assert all(adj[t] >= c.test(t).p_value for _, _, c, adj in m.pairwise for t in adj)
    null = permutation_omnibus(ref.astype(float), np.column_stack([good, same, good]).astype(float),
                               n_permutations=300, seed=1, block_label="utterances")
    assert null.p_value > 0.5


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")

    def worse(uid, ref):
        words = spoken(uid, ref).split()
        return " ".join(words[2:] if int(uid[-1]) % 2 == 0 else words)

    return [make_store(root / name, fn) for name, fn in (("spoken", spoken), ("digits", digits), ("worse", worse))]


def test_compare_many_refuses_repeated_or_single_runs(three):
    with RunStore.open(three[0]) as a, RunStore.open(three[1]) as b:
        with pytest.raises(NotComparable, match="twice"):
            compare_many([a, b], ["x", "x"], "basic")
        with pytest.raises(NotComparable, match="two or more"):
            compare_many([a], ["x"], "basic")


def test_compare_cli_with_three_runs_writes_one_table_and_one_page(three, tmp_path, capsys):
    out = tmp_path / "cmp" / "compare.json"
    code = main(["compare", *map(str, three), "--normalizer", "basic", "--resamples", "300", "--permutations", "300",
                 "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "omnibus friedman" in text and "omnibus permutation" in text and "P(best)" in text
    data = json.loads(out.read_text())
    cond = data["conditions"][0]
    assert data["systems"] == ["spoken", "digits", "worse"] and len(cond["pairwise"]) == 3
    assert cond["ranking"][0]["system"] == "spoken" and cond["ranking"][-1]["system"] == "worse"
    page = out.with_suffix(".html").read_text()
    assert "Omnibus tests" in page and "Holm" in page and "spoken" in page
    assert main(["compare", str(three[0]), str(three[0])]) == 2
    assert main(["compare", str(three[0])]) == 2
    assert main(["compare", *map(str, three), "--classes", "numbers"]) == 2


def test_compare_cli_two_runs_per_class(three, capsys):
    code = main(["compare", str(three[0]), str(three[1]), "--normalizer", "basic", "--classes", "numbers,function_words",
                 "--resamples", "200", "--json", str(three[1] / "cls.json")])
    text = capsys.readouterr().out
    assert code == 0 and "classes (condition clean):" in text
    line = next(l for l in text.splitlines() if l.strip().startswith("numbers"))
    assert "%" in line and "n/a" not in line
    assert BASIC.name == "basic"
