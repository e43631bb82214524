"""``voxproof compare RUN_A RUN_B``: paired comparison of two runs on the same utterances."""

from __future__ import annotations

import json
from pathlib import Path

import click

from voxproof.cli.params import RUN_DIR


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _p(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.3g}" if x >= 0.001 else "<0.001")


@click.command("compare")
@click.argument("run_a", type=RUN_DIR)
@click.argument("run_b", type=RUN_DIR)
@click.option("--normalizer", default=None, help="Normaliser to score both runs with (default: the runs' own, which must match).")
@click.option("--alternates", default=None, help="Alternates file (okay|ok lines), 'default', or 'none'.")
@click.option("--intersect", is_flag=True, help="Compare only the utterances both runs share instead of refusing.")
@click.option("--resamples", "n_resamples", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Bootstrap seed.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Interval level.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Where to write compare.json (default: RUN_B/compare.json).")
def compare_command(run_a, run_b, normalizer, alternates, intersect, n_resamples, seed, level, json_out) -> None:
    """Is RUN_B better than RUN_A? WER difference (B - A) with a paired bootstrap interval, the
    probability that B is better, and the MAPSSWE, sign, Wilcoxon and McNemar tests.

    Refuses (exit 2) runs with different normalisers, datasets or utterance sets unless --intersect.
    """
    from voxproof.metrics.compare import compare_runs, compare_to_dict
    from voxproof.run.store import RunStore

    with RunStore.open(run_a) as sa, RunStore.open(run_b) as sb:
        result = compare_runs(sa, sb, normalizer, intersect=intersect, alternates=alternates,
                              n_resamples=n_resamples, seed=seed, level=level, labels=(str(run_a), str(run_b)))
    data = compare_to_dict(result)
    out = Path(json_out) if json_out else Path(run_b) / "compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    from voxproof.report.compare_page import render_compare_page

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
        click.echo(f"  {'test':<10} {'statistic':>10} {'p':>8}  method")
        for t in c["tests"]:
            stat = "n/a" if t["statistic"] is None else f"{t['statistic']:.3g}"
            click.echo(f"  {t['name']:<10} {stat:>10} {_p(t['p_value']):>8}  {t['method']} (n={t['n']})")
        for w in c["warnings"]:
            click.echo(f"  warning: {w}")
    click.echo(f"\ncompare.json: {out}\ncompare.html: {page}")
