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
@class_options
def score_command(run, normalizer, alternates, n_resamples, as_json, write, class_rules, keywords, entities,
                  vocab) -> None:
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
    for label, path in paths.items():
        click.echo(f"{label}: {path}")
    note = unfinished_run_note(run)
    if note:
        click.echo(note, err=True)
