"""``voxproof card``: write the Markdown model card of a registered version."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("card")
@click.argument("version")
@click.option("-o", "--out", default=None, metavar="FILE", help="Write here (default: print to stdout).")
@click.option("--registry", "location", default=None, metavar="PATH|URL",
              help="Registry SQLite file or postgresql:// URL (default: $VOXPROOF_REGISTRY or "
                   "~/.local/share/voxproof/registry.sqlite).")
@click.option("--evidence", "evidence", multiple=True, metavar="DIR",
              help="An audit output directory (findings.json) or a probe run directory to link in the "
                   "governance section (repeatable).")
def card_command(version, out, location, evidence) -> None:
    """Model card of VERSION (or an alias such as production): intended use, data, metrics with
    intervals, slices, robustness, calibration, latency and cost, failure modes, gate history."""
    from voxproof.cli.registry_cmd import registry_location
    from voxproof.registry import Registry
    from voxproof.registry.card import render_card

    with Registry.open(registry_location(location)) as reg:
        details = reg.show(version)
    from voxproof.errors import UsageError

    for d in evidence:
        if not (Path(d) / "findings.json").is_file() and not (Path(d) / "run.sqlite").is_file():
            raise UsageError(f"--evidence {d}: neither an audit directory (findings.json) nor a run directory "
                             "(run.sqlite)")
    text = render_card(details, generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       evidence_dirs=tuple(evidence))
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"model card: {path}")
    else:
        click.echo(text, nl=False)
