"""``voxproof score RUN``: re-score a finished run (another normaliser, alternates) without re-decoding."""

from __future__ import annotations

import json

import click

from voxproof.cli.params import RUN_DIR, class_options, class_request, unfinished_run_note


@click.command("score")
@click.argument("run", type=RUN_DIR)
@click.option("--normalizer", default=None, help="Normaliser to score with (default: the run's own).")
@click.option("--alternates", default=None, help="Alternates file (okay|ok lines), or 'default', or 'none'.")
@click.option("--resamples", "n_resamples", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON instead of a table.")
@click.option("--write/--no-write", default=False, show_default=True,
              help="Rewrite the run's summary.json and report.html with these settings.")
@click.option("--expect-language", default=None, metavar="LANG",
              help="Language confusion: share of outputs identified (langid) as another language than LANG.")
@class_options
def score_command(run, normalizer, alternates, n_resamples, as_json, write, class_rules, keywords, entities,
                  vocab, expect_language) -> None:
    """Score RUN's stored raw hypotheses; counts per normaliser are cached in the run store."""
    from voxproof.cli.render import print_summary
    from voxproof.report.build import build_summary, write_reports

    classes = class_request(class_rules, keywords, entities, vocab)
    if write:
        summary, paths = write_reports(run, normalizer=normalizer, alternates=alternates, n_resamples=n_resamples,
                                       classes=classes)
    else:
        summary, paths = build_summary(run, normalizer=normalizer, alternates=alternates,
                                       n_resamples=n_resamples, classes=classes), {}
    if as_json:
        click.echo(json.dumps(summary["scores"], indent=2))
    else:
        print_summary(summary)
    if expect_language:
        from voxproof.metrics.language import language_confusion
        from voxproof.run.store import RunStore

        with RunStore.open(run) as store:
            rows = [r for r in store.rows() if r.ok and r.condition == "clean"]
        lc = language_confusion([r.hypothesis or "" for r in rows], expect_language,
                                speakers=[r.speaker for r in rows], n_resamples=n_resamples).to_dict()
        rate = lc["rate"]
        shown = "n/a (no output text)" if rate["estimate"] is None else (
            f"{100 * rate['estimate']:.2f}% [{100 * (rate['low'] or 0):.1f}, {100 * (rate['high'] or 0):.1f}]")
        click.echo(f"language confusion (clean): {shown}: {lc['confused']} of {lc['outputs']} outputs identified "
                   f"as other than {expect_language} ({', '.join(f'{k} {v}' for k, v in sorted(lc['identified'].items()))}"
                   f"; {lc['empty']} empty)")
    for label, path in paths.items():
        click.echo(f"{label}: {path}")
    note = unfinished_run_note(run)
    if note:
        click.echo(note, err=True)
