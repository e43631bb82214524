"""``voxproof export RUN --format trn|sgml|ctm``: sclite-compatible files of a run."""

from __future__ import annotations

import click

from voxproof.cli.params import RUN_DIR


@click.command("export")
@click.argument("run", type=RUN_DIR)
@click.option("--format", "fmt", type=click.Choice(["trn", "sgml", "ctm"]), required=True,
              help="trn: ref.trn + hyp.trn; sgml: hyp.sgml aligned as sclite does (what sc_stats reads); "
                   "ctm: hyp.ctm + ref.stm.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory to write into (default: RUN/sctk).")
@click.option("--condition", default="clean", show_default=True, help="Which condition of the run to export.")
@click.option("--normalizer", default=None, help="Normaliser for the texts (default: the run's own).")
def export_command(run, fmt, out_dir, condition, normalizer) -> None:
    """Write RUN's references and hypotheses in sclite's formats, so NIST SCTK (sclite, sc_stats) can
    score it. Texts are normalised as voxproof scores them; error rows are left out and counted."""
    from pathlib import Path

    from voxproof.run.export import export_run

    result = export_run(run, out_dir or Path(run) / "sctk", fmt, condition=condition, normalizer=normalizer)
    click.echo(f"{result.utterances} utterances of condition {result.condition} "
               f"(normalizer {result.normalizer}) as {result.format}"
               + (f"; {result.skipped} error rows left out" if result.skipped else ""))
    if result.without_times:
        click.echo(f"{result.without_times} utterances had no word times: their words are spread evenly")
    for f in result.files:
        click.echo(f"  {f}")
    for c in result.commands:
        click.echo(f"score with SCTK: {c}")
