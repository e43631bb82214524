"""``voxproof models``: every backend, whether it can load here, and what to install if not."""

from __future__ import annotations

import dataclasses
import json

import click

from voxproof.backends.registry import list_backends


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--options", "show_options", is_flag=True, help="Also list each backend's -O options and defaults.")
def models_command(as_json: bool, show_options: bool) -> None:
    """List recognisers (asr) and synthesisers (tts) with their install status."""
    rows = []
    for spec in list_backends():
        missing = spec.missing()
        row = {
            "name": spec.name,
            "kind": spec.kind,
            "installed": not missing,
            "missing": missing,
            "install": None if not missing else spec.install_hint(),
            "description": spec.description,
        }
        if show_options and not missing:
            row["options"] = {
                f.name: f.default for f in dataclasses.fields(spec.options_class())
                if f.default is not dataclasses.MISSING
            }
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    click.echo(f"{'backend':<12}{'kind':<6}{'status':<11}description")
    for row in rows:
        status = "installed" if row["installed"] else "missing"
        click.echo(f"{row['name']:<12}{row['kind']:<6}{status:<11}{row['description']}")
        if not row["installed"]:
            click.echo(f"{'':<29}needs {', '.join(row['missing'])}; install: {row['install']}")
        if row.get("options"):
            opts = " ".join(f"{k}={v}" for k, v in row["options"].items())
            click.echo(f"{'':<29}-O options: {opts}")
