"""``voxproof compare RUN_A RUN_B [RUN_C ...]``: paired comparison of two runs on the same utterances, or
omnibus tests, corrected pairwise tests and a ranking for three or more."""

from __future__ import annotations

import json
from pathlib import Path

import click

from voxproof.cli.params import RUN_DIR, class_options, class_request


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _p(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.3g}" if x >= 0.001 else "<0.001")


def _write(out: Path, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--normalizer", default=None, help="Normaliser to score every run with (default: the runs' own, which must match).")
@click.option("--alternates", default=None, help="Alternates file (okay|ok lines), 'default', or 'none'.")
@click.option("--intersect", is_flag=True, help="Compare only the utterances every run shares instead of refusing.")
@click.option("--resamples", "n_resamples", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--permutations", "n_permutations", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Permutations of the omnibus test (three or more runs).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Bootstrap seed.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Interval level.")
@click.option("--tests", "tests", type=click.Choice(["textbook", "sctk"]), default="textbook", show_default=True,
              help="Significance tests: textbook forms on one segment per utterance, or NIST sc_stats' "
                   "definitions (MAPSSWE on error regions, sign and Wilcoxon on per-speaker %WER, exact p).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Where to write compare.json (default: the last run's folder); the page goes next to it (.html).")
@class_options
def compare_command(runs, normalizer, alternates, intersect, n_resamples, n_permutations, seed, level, tests,
                    json_out, class_rules, keywords, entities, vocab) -> None:
    """Is RUN_B better than RUN_A? WER difference (B - A) with a paired bootstrap interval, the
    probability that B is better, and paired tests: MAPSSWE, sign, Wilcoxon and McNemar in their
    textbook forms, or with --tests sctk MAPSSWE, sign and Wilcoxon as NIST sc_stats defines them (per
    token class with --classes/--entities/--keywords/--vocab).

    With three or more runs: Friedman and permutation omnibus tests, every pair compared with
    Holm-corrected p-values, and a ranking with bootstrap rank intervals and P(best).

    Refuses (exit 2) runs with different normalisers, datasets or utterance sets unless --intersect.
    """
    from voxproof.errors import UsageError

    if len(runs) < 2:
        raise UsageError("give two or more runs to compare (voxproof compare RUN_A RUN_B [RUN_C ...])")
    if len({Path(r).resolve() for r in runs}) != len(runs):
        raise UsageError("the same run is given twice; give distinct runs")
    classes = class_request(class_rules, keywords, entities, vocab)
    if len(runs) == 2:
        _two(runs[0], runs[1], normalizer, alternates, intersect, n_resamples, seed, level, json_out, classes,
             tests)
    else:
        if tests != "textbook":
            raise UsageError("--tests sctk compares two runs; with three or more runs the omnibus and Holm-corrected "
                             "pairwise tests apply")
        if classes is not None:
            raise UsageError("--classes, --keywords, --entities and --vocab apply to two runs; compare classes "
                             "pair by pair")
        _many(list(runs), normalizer, alternates, intersect, n_resamples, n_permutations, seed, level, json_out)


def _two(run_a, run_b, normalizer, alternates, intersect, n_resamples, seed, level, json_out, classes,
         tests="textbook") -> None:
    from voxproof.metrics.compare import compare_runs, compare_to_dict
    from voxproof.report.compare_page import render_compare_page
    from voxproof.run.store import RunStore

    with RunStore.open(run_a) as sa, RunStore.open(run_b) as sb:
        result = compare_runs(sa, sb, normalizer, intersect=intersect, alternates=alternates,
                              n_resamples=n_resamples, seed=seed, level=level, labels=(str(run_a), str(run_b)),
                              tests=tests, classes=classes)
    data = compare_to_dict(result)
    out = Path(json_out) if json_out else Path(run_b) / "compare.json"
    _write(out, data)
    page = out.with_suffix(".html")
    page.write_text(render_compare_page(data, run_a, run_b), encoding="utf-8")

    click.echo(f"A: {run_a}\nB: {run_b}\nnormalizer: {result.normalizer['name']}@{result.normalizer['version']}"
               + (f"  (intersect: dropped {result.dropped})" if intersect else ""))
    for note in result.notes:
        click.echo(f"warning: {note}")
    for c in data["comparisons"]:
        d = c["difference"]
        blocked = f", resampling {d['blocked_by']}s" if d["blocked_by"] else ""
        click.echo(f"\ncondition {c['condition']}: {c['utterances']} utterances, {c['ref_words']} reference words")
        click.echo(f"  WER A {_pct(c['wer_a'])}   WER B {_pct(c['wer_b'])}")
        click.echo(f"  B - A {_pct(d['estimate'])}  [{_pct(d['low'])}, {_pct(d['high'])}] "
                   f"{int(100 * d['level'])}% {d['method']} bootstrap, {d['n_resamples']} resamples{blocked}")
        click.echo(f"  P(B better) {c['prob_b_better']:.3f}" if c["prob_b_better"] is not None else "  P(B better) n/a")
        label = "NIST sc_stats definitions" if tests == "sctk" else "textbook forms, one segment per utterance"
        click.echo(f"  paired tests ({label}):")
        click.echo(f"  {'test':<10} {'statistic':>10} {'p':>8}  method")
        for t in c["tests"]:
            stat = "n/a" if t["statistic"] is None else f"{t['statistic']:.3g}"
            click.echo(f"  {t['name']:<10} {stat:>10} {_p(t['p_value']):>8}  {t['method']} (n={t['n']})")
        for w in c["warnings"]:
            click.echo(f"  warning: {w}")
    if data.get("classes"):
        click.echo(f"\nclasses (condition {data['classes'][0]['condition']}):")
        click.echo(f"  {'class':<16} {'words':>6} {'WER A':>8} {'WER B':>8}  {'B - A [interval]':<28} {'wilcoxon p':>10}")
        for c in data["classes"]:
            d = c["difference"]
            iv = "n/a (not in the references)" if not c["ref_words"] else \
                f"{_pct(d['estimate'])} [{_pct(d['low'])}, {_pct(d['high'])}]"
            wil = next(t for t in c["tests"] if t["name"] == "wilcoxon")
            click.echo(f"  {c['class']:<16} {c['ref_words']:>6} {_pct(c['wer_a']):>8} {_pct(c['wer_b']):>8}  "
                       f"{iv:<28} {_p(wil['p_value']):>10}")
    click.echo(f"\ncompare.json: {out}\ncompare.html: {page}")


def _many(runs, normalizer, alternates, intersect, n_resamples, n_permutations, seed, level, json_out) -> None:
    from contextlib import ExitStack

    from voxproof.metrics.compare import compare_many
    from voxproof.report.multi_page import render_multi_page
    from voxproof.run.store import RunStore

    labels = _labels(runs)
    with ExitStack() as stack:
        stores = [stack.enter_context(RunStore.open(r)) for r in runs]
        result = compare_many(stores, labels, normalizer, intersect=intersect, alternates=alternates,
                              n_resamples=n_resamples, n_permutations=n_permutations, seed=seed, level=level)
    data = result.to_dict()
    out = Path(json_out) if json_out else Path(runs[-1]) / "compare.json"
    _write(out, data)
    page = out.with_suffix(".html")
    page.write_text(render_multi_page(data, runs, level), encoding="utf-8")
    click.echo(f"{len(runs)} systems, normalizer {result.normalizer['name']}@{result.normalizer['version']}"
               + (f"  (intersect: dropped {result.dropped})" if intersect else ""))
    for label, run in zip(labels, runs):
        click.echo(f"  {label}: {run}")
    lvl = round(100 * level)
    for c in data["conditions"]:
        click.echo(f"\ncondition {c['condition']}: {c['utterances']} utterances, {c['ref_words']} reference words"
                   + (", resampling speakers" if c["blocked_by"] else ""))
        click.echo(f"  {'system':<20} {'WER':>8}  {'rank [' + str(lvl) + '% interval]':<22} {'P(best)':>8}")
        for r in c["ranking"]:
            rank = f"{r['rank']:g}" + ("" if r["rank_low"] is None else f" [{r['rank_low']:g}, {r['rank_high']:g}]")
            pb = "n/a" if r["p_best"] is None else f"{r['p_best']:.3f}"
            click.echo(f"  {r['system']:<20} {_pct(r['wer']):>8}  {rank:<22} {pb:>8}")
        for t in c["omnibus"]:
            stat = f"n/a ({t['reason']})" if t["statistic"] is None else f"{t['statistic']:.4g}"
            click.echo(f"  omnibus {t['name']:<18} statistic {stat}  p {_p(t['p_value'])}  {t['method']}")
        click.echo(f"  {'A':<20} {'B':<20} {'B - A [interval]':<26} wilcoxon p (Holm)  sign p (Holm)")
        for p in c["pairwise"]:
            d = p["comparison"]["difference"]
            tests = {t["name"]: t for t in p["comparison"]["tests"]}
            click.echo(f"  {p['a']:<20} {p['b']:<20} {_pct(d['estimate']) + ' [' + _pct(d['low']) + ', ' + _pct(d['high']) + ']':<26} "
                       f"{_p(tests['wilcoxon']['p_value'])} ({_p(p['holm_p']['wilcoxon'])})"
                       f"{'':<8}{_p(tests['sign']['p_value'])} ({_p(p['holm_p']['sign'])})")
        for w in c["warnings"]:
            click.echo(f"  warning: {w}")
    click.echo(f"\ncompare.json: {out}\ncompare.html: {page}")


def _labels(runs: list) -> list[str]:
    """Short names for the systems: the run folder names, made unique with their parents when needed."""
    names = [Path(r).resolve().name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [str(Path(r)) for r in runs]
