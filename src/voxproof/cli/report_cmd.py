"""``voxproof report RUN``: write (or rewrite) a run's self-contained HTML report and summary.json."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--normalizer", default=None, help="Normaliser (default: the run's own).")
@click.option("-o", "--out", default=None, help="HTML path (default: RUN/report.html).")
def report_command(run, normalizer, out) -> None:
    """Write RUN's HTML report (opens offline: styles, scripts and images are inline)."""
    from voxproof.report.build import write_reports

    _, paths = write_reports(run, normalizer=normalizer, html_path=out)
    for label, path in paths.items():
        click.echo(f"{label}: {path}")
