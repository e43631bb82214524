"""``voxproof report RUN``: write (or rewrite) a run's self-contained HTML report and summary.json."""

from __future__ import annotations

import click

from voxproof.cli.params import RUN_DIR, class_options, class_request, unfinished_run_note


@click.command("report")
@click.argument("run", type=RUN_DIR)
@click.option("--normalizer", default=None, help="Normaliser (default: the run's own).")
@click.option("-o", "--out", default=None, help="HTML path (default: RUN/report.html).")
@click.option("--throughput", "throughput_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON list of throughput points (label, rtfx) from benchmarks/throughput.py --json; kept in the run.")
@click.option("--price", "prices", multiple=True, metavar="NAME=USD_PER_HOUR",
              help="Price of a machine per hour for the cost per audio hour, repeatable (e.g. --price my-vm=0.05); "
                   "kept in the run. Default: labelled example prices.")
@class_options
def report_command(run, normalizer, out, throughput_file, prices, class_rules, keywords, entities, vocab) -> None:
    """Write RUN's HTML report (opens offline: styles, scripts and images are inline)."""
    from voxproof.metrics.cost import parse_prices
    from voxproof.report.build import record_prices, write_reports

    parsed = parse_prices(prices)

    if throughput_file:
        import json
        from pathlib import Path

        from voxproof.errors import UsageError
        from voxproof.run.store import RunStore

        try:
            points = json.loads(Path(throughput_file).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(f"{throughput_file} is not JSON: {exc}") from None
        if not isinstance(points, list) or not all(isinstance(p, dict) and "rtfx" in p for p in points):
            raise UsageError(f"{throughput_file} must be a JSON list of objects with 'label' and 'rtfx'")
        with RunStore.open(run) as store:
            store.set_meta("throughput", points)

    if parsed:
        record_prices(run, parsed)
    _, paths = write_reports(run, normalizer=normalizer, html_path=out,
                             classes=class_request(class_rules, keywords, entities, vocab))
    for label, path in paths.items():
        click.echo(f"{label}: {path}")
    note = unfinished_run_note(run)
    if note:
        click.echo(note, err=True)
