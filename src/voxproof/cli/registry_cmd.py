"""``voxproof registry``: model versions, aliases, promotion, rollback and the history log.

Where the registry lives: ``--registry PATH_OR_URL``, else ``$VOXPROOF_REGISTRY``, else
``~/.local/share/voxproof/registry.sqlite``. A ``postgresql://`` URL uses PostgreSQL.
Who acts: ``--user``, else ``$VOXPROOF_USER``, else the login name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from voxproof.cli.params import RUN_DIR

DEFAULT_REGISTRY = Path.home() / ".local" / "share" / "voxproof" / "registry.sqlite"


def registry_location(value: str | None) -> str:
    return value or os.environ.get("VOXPROOF_REGISTRY") or str(DEFAULT_REGISTRY)


def current_user(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("VOXPROOF_USER")
    if env:
        return env
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def open_registry(ctx: click.Context):
    from voxproof.registry import Registry

    return Registry.open(ctx.obj["registry_location"])


def _json_out(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group("registry")
@click.option("--registry", "location", default=None, metavar="PATH|URL",
              help="Registry SQLite file or postgresql:// URL (default: $VOXPROOF_REGISTRY or "
                   "~/.local/share/voxproof/registry.sqlite).")
@click.option("--user", default=None, help="Who is acting (default: $VOXPROOF_USER or the login name).")
@click.pass_context
def registry_group(ctx: click.Context, location: str | None, user: str | None) -> None:
    """Model versions with aliases (production, canary, previous), linked runs and gate verdicts.

    Every change is logged (who, what, when, why); promote needs a passing gate against production.
    """
    ctx.ensure_object(dict)
    ctx.obj["registry_location"] = registry_location(location)
    ctx.obj["user"] = current_user(user)


@registry_group.command("register")
@click.argument("version")
@click.option("-m", "--model", "backend", default=None, help="Backend name (e.g. whisper).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Backend option (repeatable).")
@click.option("--kind", type=click.Choice(["asr", "tts"]), default=None, help="asr or tts (default: from the backend).")
@click.option("--checksum", default=None, help="Model checksum (default: from --from-run, else none).")
@click.option("--from-run", "from_run", default=None, metavar="RUN", type=RUN_DIR,
              help="Take backend, options and checksum from this run's provenance and attach the run.")
@click.option("--notes", default="", help="Free notes (intended use, training data, known issues...).")
@click.option("--reason", default="", help="Why it is registered (logged).")
@click.pass_context
def register_cmd(ctx, version, backend, options, kind, checksum, from_run, notes, reason) -> None:
    """Register VERSION: a backend with options and a model checksum."""
    from voxproof.errors import UsageError

    opts: dict[str, Any] = {}
    summary = None
    if from_run:
        prov, summary, key = _run_snapshot(from_run)
        b = prov.get("backend") or {}
        if backend and backend != b.get("name"):
            raise UsageError(f"--model {backend} differs from the run's backend {b.get('name')}")
        backend = b.get("name")
        opts = dict(b.get("options") or {})
        kind = kind or b.get("kind")
        checksum = checksum or b.get("model_checksum")
    if not backend:
        raise UsageError("give --model BACKEND (and -O options) or --from-run RUN")
    if options:
        from voxproof.backends.registry import get_spec
        from voxproof.options import build_options, options_dict

        spec = get_spec(backend)
        kind = kind or spec.kind
        opts = options_dict(build_options(spec.options_class(), list(options)))
    if kind is None:
        from voxproof.backends.registry import get_spec

        kind = get_spec(backend).kind
    with open_registry(ctx) as reg:
        v = reg.register(version, backend=backend, kind=kind, options=opts, model_checksum=checksum, notes=notes,
                         actor=ctx.obj["user"], reason=reason)
        click.echo(f"registered {v.name}: {v.backend} ({v.kind}) checksum {v.model_checksum or '-'}")
        if from_run:
            run = reg.attach_run(v.name, str(Path(from_run).resolve()), run_key=key, summary=summary,
                                 actor=ctx.obj["user"])
            click.echo(f"attached run #{run.id} {run.path}")


def _run_snapshot(run_dir: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(provenance, summary snapshot, run key) of a run directory."""
    from voxproof.gate.evidence import run_key
    from voxproof.registry.card import run_summary
    from voxproof.run.store import RunStore

    with RunStore.open(run_dir) as store:
        prov = store.provenance
        summary = run_summary(store, Path(run_dir))
    return prov, summary, run_key(prov)


@registry_group.command("attach-run")
@click.argument("version")
@click.argument("run", type=RUN_DIR)
@click.option("--role", default="eval", show_default=True, help="What the run is for (eval, robustness, canary...).")
@click.pass_context
def attach_run_cmd(ctx, version, run, role) -> None:
    """Link RUN (a run directory) to VERSION, with a snapshot of its scores."""
    _, summary, key = _run_snapshot(run)
    with open_registry(ctx) as reg:
        rec = reg.attach_run(version, str(Path(run).resolve()), run_key=key, role=role, summary=summary,
                             actor=ctx.obj["user"])
    click.echo(f"attached run #{rec.id} ({role}, key {rec.run_key}) to {rec.version}")


@registry_group.command("attach-gate")
@click.argument("gate_json")
@click.option("--candidate", "candidate", default=None, help="Candidate version (default: found by its run).")
@click.option("--baseline", "baseline", default=None, help="Baseline version (default: found by its run).")
@click.pass_context
def attach_gate_cmd(ctx, gate_json, candidate, baseline) -> None:
    """Record a gate verdict (gate.json or its directory) for the versions it compared.

    Versions are found from the runs the verdict names (attach them first) unless given.
    """
    from voxproof.errors import UsageError
    from voxproof.gate.verdict import read_verdict

    verdict = read_verdict(gate_json)
    with open_registry(ctx) as reg:
        names = {}
        for label, given in (("candidate", candidate), ("baseline", baseline)):
            if given:
                names[label] = reg.get(given).name
                continue
            key = (verdict.get(label) or {}).get("run_key")
            found = sorted({r.version for r in reg.find_runs(key)}) if key else []
            if len(found) != 1:
                why = "no registered version has" if not found else f"several versions ({', '.join(found)}) have"
                raise UsageError(f"{why} the {label} run {(verdict.get(label) or {}).get('path')}; pass "
                                 f"--{label} VERSION or attach the run with 'voxproof registry attach-run'")
            names[label] = found[0]
        path = Path(gate_json)
        rec = reg.attach_gate(names["candidate"], names["baseline"], verdict, actor=ctx.obj["user"],
                              path=str((path / "gate.json" if path.is_dir() else path).resolve()))
    state = "PASSED" if rec.passed else "FAILED (" + ", ".join(rec.failed_rules()) + ")"
    click.echo(f"gate #{rec.id}: {rec.candidate} vs {rec.baseline}: {state}")


@registry_group.command("alias")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--remove", is_flag=True, help="Remove the alias.")
@click.option("--reason", default="", help="Why (logged).")
@click.pass_context
def alias_cmd(ctx, alias, version, remove, reason) -> None:
    """Point ALIAS (e.g. canary) at VERSION, or --remove it. production moves only by promote/rollback."""
    from voxproof.errors import UsageError

    with open_registry(ctx) as reg:
        if remove:
            old = reg.remove_alias(alias, actor=ctx.obj["user"], reason=reason)
            click.echo(f"removed {alias} (was {old})")
            return
        if not version:
            raise UsageError("give the VERSION the alias should point to, or --remove")
        old = reg.set_alias(alias, version, actor=ctx.obj["user"], reason=reason)
        target = reg.get(alias).name
    click.echo(f"{alias}: {old or '-'} -> {target}")


@registry_group.command("promote")
@click.argument("version")
@click.option("--reason", default="", help="Why (logged; required with --force).")
@click.option("--force", is_flag=True,
              help="Promote without a confirmed passing gate verdict (needs --reason; recorded as forced).")
@click.pass_context
def promote_cmd(ctx, version, reason, force) -> None:
    """Make VERSION production. Needs a passing gate verdict against the current production, which is
    re-derived from the two runs it names (they must be readable here and attached to the versions)."""
    with open_registry(ctx) as reg:
        change = reg.promote(version, actor=ctx.obj["user"], reason=reason, force=force)
    how = {"forced": " (FORCED)", "re-derived": f" (gate #{change.gate_id} re-derived from its runs)"}
    click.echo(f"production: {change.from_version or '-'} -> {change.to_version}{how.get(change.established, '')}; "
               f"previous: {change.previous or '-'}")


@registry_group.command("rollback")
@click.option("--reason", default="", help="Why (logged).")
@click.pass_context
def rollback_cmd(ctx, reason) -> None:
    """Production back to the previous version, in one transaction."""
    with open_registry(ctx) as reg:
        change = reg.rollback(actor=ctx.obj["user"], reason=reason)
    click.echo(f"production: {change.from_version} -> {change.to_version}; previous: {change.previous or '-'}")


@registry_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def list_cmd(ctx, as_json) -> None:
    """Every version with its aliases."""
    with open_registry(ctx) as reg:
        versions = reg.versions()
        aliases = reg.aliases()
    by_version: dict[str, list[str]] = {}
    for a, v in aliases.items():
        by_version.setdefault(v, []).append(a)
    if as_json:
        _json_out([dict(v.to_dict(), aliases=sorted(by_version.get(v.name, []))) for v in versions])
        return
    if not versions:
        click.echo("no versions registered")
        return
    for v in versions:
        tags = ",".join(sorted(by_version.get(v.name, [])))
        click.echo(f"{v.name:<24} {v.backend:<10} {v.kind:<4} {v.created_at[:19]}  {tags}")


@registry_group.command("show")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def show_cmd(ctx, version, as_json) -> None:
    """A version (or alias): options, checksum, aliases, runs, gate verdicts, history."""
    with open_registry(ctx) as reg:
        d = reg.show(version)
    if as_json:
        _json_out(d.to_dict())
        return
    v = d.version
    click.echo(f"{v.name}  ({', '.join(d.aliases) or 'no alias'})")
    click.echo(f"  backend: {v.backend} ({v.kind})  checksum: {v.model_checksum or '-'}")
    click.echo(f"  options: {json.dumps(v.options, sort_keys=True)}")
    click.echo(f"  registered {v.created_at} by {v.created_by}" + (f"; notes: {v.notes}" if v.notes else ""))
    click.echo(f"  runs: {len(d.runs)}")
    for r in d.runs:
        click.echo(f"    #{r.id} {r.role}: {r.path} (key {r.run_key})")
    click.echo(f"  gate verdicts: {len(d.gates)}")
    for g in d.gates:
        state = "pass" if g.passed else "FAIL " + ", ".join(g.failed_rules())
        click.echo(f"    #{g.id} {g.candidate} vs {g.baseline}: {state} ({g.created_at[:19]})")
    click.echo("  history:")
    for h in d.history:
        click.echo("    " + _history_line(h))


def _history_line(h) -> str:
    why = f"  why: {h.reason}" if h.reason else ""
    return f"#{h.seq} {h.at[:19]} {h.actor}: {h.describe()}{why}"


@registry_group.command("history")
@click.argument("version", required=False)
@click.option("-n", "--last", type=int, default=None, help="Only the last N entries.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def history_cmd(ctx, version, last, as_json) -> None:
    """The append-only log (oldest first), optionally for one VERSION."""
    with open_registry(ctx) as reg:
        entries = reg.history(version, limit=last)
    if as_json:
        _json_out([h.to_dict() for h in entries])
        return
    for h in entries:
        click.echo(_history_line(h))
