"""``voxproof suites``: the perturbation suites, their conditions, and every perturbation kind with its
parameters, and whether it can run on this machine (codec encoders, optional packages)."""

from __future__ import annotations

import dataclasses
import json

import click

from voxproof.perturb import get_suite, list_suites, registry, resolve_conditions

SYNTAX = (
    "Syntax: KIND[:[VALUE,]KEY=VALUE,...], steps chained with '+', e.g. 'noise:snr=10', "
    "'codec:opus,bitrate=8k', 'codec:mp3,bitrate=16k+noise:snr=20', 'noise:snr=5,dir=/my/noise', "
    "'reverb:dir=/my/rirs'. Units: 8k = 8 kbit/s, 5% = 0.05, 250ms = 0.25 s."
)


def _kinds() -> list[dict]:
    out = []
    for kind, cls in sorted(registry().items()):
        params = {}
        for f in dataclasses.fields(cls):
            params[f.name] = None if f.default is dataclasses.MISSING else f.default
        out.append({
            "kind": kind, "main": cls.positional, "severity": cls.severity_field, "axis": cls.axis,
            "worse": cls.worse, "parameters": params, "description": cls.description,
            "example": cls().label(),
        })
    return out


@click.command("suites")
@click.argument("names", nargs=-1)
@click.option("--perturbations", "show_kinds", is_flag=True, help="List perturbation kinds and parameters.")
@click.option("--check", "perturbs", multiple=True, metavar="SPEC",
              help="Parse a --perturb SPEC and show the condition it makes (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def suites_command(names: tuple[str, ...], show_kinds: bool, perturbs: tuple[str, ...], as_json: bool) -> None:
    """List perturbation suites (or the conditions of the NAMES given) for 'voxproof eval --suite'."""
    if show_kinds:
        kinds = _kinds()
        if as_json:
            click.echo(json.dumps(kinds, indent=2, default=str))
            return
        click.echo(SYNTAX)
        for k in kinds:
            params = ", ".join(f"{n}={v}" for n, v in k["parameters"].items())
            click.echo(f"\n{k['kind']:<10} {k['description']}")
            click.echo(f"{'':<10} parameters: {params}")
            if k["severity"]:
                click.echo(f"{'':<10} severity: {k['severity']} ({k['axis']}, {k['worse']} is harsher)")
            click.echo(f"{'':<10} example: --perturb '{k['example']}'")
        return
    if perturbs:
        conds = resolve_conditions([], list(perturbs))
        if as_json:
            click.echo(json.dumps([c.to_spec() for c in conds], indent=2))
            return
        for c in conds:
            reason = c.unavailable_reason()
            click.echo(f"{c.name}: family={c.family} severity={c.severity} ({c.axis})"
                       + (f"  UNAVAILABLE: {reason}" if reason else ""))
        return
    suites = [get_suite(n) for n in names] if names else list_suites()
    if as_json:
        payload = [
            {"name": s.name, "version": s.version, "description": s.description,
             "conditions": [dict(c.to_spec(), available=c.unavailable_reason() is None,
                                 unavailable_reason=c.unavailable_reason()) for c in s.conditions]}
            for s in suites
        ]
        click.echo(json.dumps(payload, indent=2))
        return
    for s in suites:
        click.echo(f"{s.ref:<16} {len(s.conditions):>3} conditions  {s.description}")
        if names:
            for c in s.conditions:
                reason = c.unavailable_reason()
                sev = "" if c.severity is None else f"{c.severity:g}"
                click.echo(f"    {c.name:<36} {c.label:<40} {c.family or '':<14} {sev:>6}"
                           + (f"  UNAVAILABLE: {reason}" if reason else ""))
    if not names:
        click.echo("\n'voxproof suites NAME' lists a suite's conditions; '--perturbations' lists kinds.")
