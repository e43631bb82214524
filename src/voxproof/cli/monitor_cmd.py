"""``voxproof monitor``: watch a served model through its request log.

Subcommands: ``baseline`` (reference profile from a run or a log window), ``analyze`` (drift, estimated
WER and markers per window), ``check`` (SLO rules once: exit 0 ok, 1 breach, 2 usage, 3 unreadable log),
``watch`` (rules every N seconds, canary removal / rollback through the registry), ``rules --prometheus``,
``report`` (HTML dashboard), ``log-from-run`` (request-log JSONL from an evaluation run).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import click

from voxproof.errors import EXIT_FAILED, UsageError


def _profile(path: str | None):
    if path is None:
        return None
    from voxproof.monitor.profile import load_profile

    return load_profile(path)


def _policy(path: str | None):
    from voxproof.monitor.policy import load_policy

    return load_policy(path)


def _fmt_pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.2f} %"


@click.group("monitor")
def monitor_group() -> None:
    """Drift, label-free accuracy estimates, failure markers and SLOs from a request log; automatic canary
    removal and rollback through the registry.

    The log is a SQLite file or postgresql:// URL written by 'voxproof serve', or a JSONL/CSV file a team
    writes itself in the same format (docs/ARCHITECTURE.md, "Request log format")."""


@monitor_group.command("baseline")
@click.argument("run", required=False)
@click.option("--log", "log_location", default=None, metavar="PATH|URL", help="Build it from a log window instead.")
@click.option("--since", type=float, default=None, help="Log window start (Unix seconds).")
@click.option("--until", type=float, default=None, help="Log window end (Unix seconds, exclusive).")
@click.option("--route", default="main", show_default=True, type=click.Choice(["main", "canary", "all"]))
@click.option("--condition", default="clean", show_default=True, help="Run condition to profile.")
@click.option("--calibration-from", default=None, metavar="RUN",
              help="With --log: take the confidence calibration from this run (a log has no references).")
@click.option("-o", "--out", default="profile.json", show_default=True, help="Profile JSON to write.")
def baseline_command(run, log_location, since, until, route, condition, calibration_from, out) -> None:
    """Reference profile of RUN (an evaluation run directory) or of a log window."""
    from voxproof.monitor.profile import profile_from_batch, profile_from_run

    if (run is None) == (log_location is None):
        raise UsageError("give either RUN (an evaluation run directory) or --log PATH|URL")
    for name, v in (("--since", since), ("--until", until)):
        if v is not None and not math.isfinite(v):
            raise UsageError(f"{name} must be a finite Unix time")
    if run is not None:
        profile = profile_from_run(run, condition=condition)
    else:
        import numpy as np

        from voxproof.monitor.source import RequestBatch, open_log

        src = open_log(log_location)
        parts = []
        for c in src.chunks(since=since):
            keep = np.ones(c.n, bool)
            if until is not None:
                keep &= c.get("ts") < until
            if route != "all":
                keep &= c.get("route") == route
            parts.append(c.take(np.flatnonzero(keep)))
        cal = profile_from_run(calibration_from).calibration if calibration_from else None
        profile = profile_from_batch(RequestBatch.concat(parts), calibration=cal, source={
            "kind": "log", "log": str(log_location).split("@")[-1], "since": since, "until": until, "route": route,
            "calibration_from": calibration_from})
    profile.save(out)
    click.echo(f"profile: {out} ({profile.n_requests} requests)")
    for name, p in profile.numeric.items():
        if p.available:
            lo, hi = p.band()
            click.echo(f"  {name:15s} median {p.percentiles['p50']:.4g}  p05-p95 {lo:.4g} .. {hi:.4g}")
        else:
            click.echo(f"  {name:15s} n/a (not in the reference)")
    for name, c in profile.categorical.items():
        shown = ", ".join(f"{k} {100 * v:.0f} %" for k, v in list(c.shares.items())[:4]) or "n/a"
        click.echo(f"  {name:15s} {shown}")
    cal = profile.calibration
    if cal is None:
        click.echo("  calibration     n/a (no word confidences with references)")
    else:
        click.echo(f"  calibration     {cal.words} words, ECE {cal.ece:.3f} (equal-mass bins), "
                   f"run WER {_fmt_pct(cal.reference_wer)}, in-sample estimate {_fmt_pct(cal.fitted_wer)}")


@monitor_group.command("analyze")
@click.option("--log", "log_location", required=True, metavar="PATH|URL")
@click.option("--profile", "profile_path", required=True, metavar="FILE")
@click.option("--policy", "policy_path", default=None, metavar="FILE")
@click.option("--route", default="main", show_default=True, type=click.Choice(["main", "canary", "shadow", "all"]))
@click.option("-o", "--out", default=None, metavar="FILE", help="Write every window as JSON lines.")
def analyze_command(log_location, profile_path, policy_path, route, out) -> None:
    """Drift, estimated WER and failure markers per window of the log."""
    from voxproof.monitor.analysis import analyze_log
    from voxproof.monitor.source import open_log

    profile, policy = _profile(profile_path), _policy(policy_path)
    src = open_log(log_location)
    n = alarms = 0
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(out, "w", encoding="utf-8")) if out else None
        click.echo(f"{'window':>6} {'requests':>8} {'status':10} {'est. WER [95 % CI]':28} drifted features")
        for rep in analyze_log(src, profile, policy, route=route):
            n += 1
            alarms += rep.drift.status == "drift"
            e = rep.estimate
            est = "n/a" if e is None or e.reason else f"{_fmt_pct(e.point)} [{_fmt_pct(e.low)}, {_fmt_pct(e.high)}]"
            click.echo(f"{rep.drift.index:>6} {rep.requests:>8} {rep.drift.status:10} {est:28} "
                       f"{', '.join(rep.drift.drifted) or '-'}")
            if fh:
                fh.write(json.dumps(rep.to_dict(), default=str) + "\n")
    if src.bad_rows:
        click.echo(f"{src.bad_rows} log rows refused: {'; '.join(src.problems[:3])}", err=True)
    click.echo(f"{n} windows, {alarms} with drift (correction: {policy.drift.correction}, psi >= {policy.drift.psi:g}, "
               f"alpha {policy.drift.alpha:g})")


def _print_results(results) -> None:
    for r in results:
        click.echo(f"{r.status.upper():10} {r.rule.name:28} {r.detail}")


@monitor_group.command("check")
@click.option("--log", "log_location", required=True, metavar="PATH|URL")
@click.option("--policy", "policy_path", default=None, metavar="FILE", help="Monitor policy TOML (default: shipped).")
@click.option("--profile", "profile_path", default=None, metavar="FILE", help="Reference profile (for est_wer, drift).")
@click.option("--registry", "registry_location", default=None, metavar="PATH|URL",
              help="Judge canary/production rows of the versions the registry's aliases name.")
@click.option("--json", "json_out", default=None, metavar="FILE", help="Write the results as JSON.")
@click.option("--metrics-out", default=None, metavar="FILE",
              help="Write the figures as Prometheus textfile gauges (for 'monitor rules --prometheus').")
@click.pass_context
def check_command(ctx, log_location, policy_path, profile_path, registry_location, json_out, metrics_out) -> None:
    """Judge every SLO rule once. Exit 0 all rules hold, 1 a rule is breached, 2 usage, 3 unreadable log."""
    from voxproof.monitor.rules import evaluate_rules, read_tail
    from voxproof.monitor.source import open_log
    from voxproof.monitor.watch import TAIL_COLUMNS

    policy, profile = _policy(policy_path), _profile(profile_path)
    keep = max((r.window for r in policy.rules), default=500)
    src = open_log(log_location)
    tails = read_tail(src.chunks(TAIL_COLUMNS), keep * 4)
    aliases = None
    if registry_location:
        from voxproof.registry import Registry

        with Registry.open(registry_location) as reg:
            aliases = reg.aliases()
    results = evaluate_rules(tails, policy, profile, aliases)
    _print_results(results)
    if src.bad_rows:
        click.echo(f"{src.bad_rows} log rows refused: {'; '.join(src.problems[:3])}", err=True)
    if json_out:
        Path(json_out).write_text(json.dumps([r.to_dict() for r in results], indent=1) + "\n", encoding="utf-8")
    if metrics_out:
        from voxproof.monitor.prometheus import textfile

        Path(metrics_out).write_text(textfile(results), encoding="utf-8")
    if any(r.breached for r in results):
        ctx.exit(EXIT_FAILED)


@monitor_group.command("watch")
@click.option("--log", "log_location", required=True, metavar="PATH|URL")
@click.option("--registry", "registry_location", required=True, metavar="PATH|URL")
@click.option("--policy", "policy_path", default=None, metavar="FILE")
@click.option("--profile", "profile_path", default=None, metavar="FILE")
@click.option("--every", type=float, default=60.0, show_default=True, help="Seconds between evaluations.")
@click.option("--once", is_flag=True, help="Evaluate once and exit (exit 1 when a rule was breached).")
@click.option("--cycles", type=int, default=None, help="Stop after this many evaluations.")
@click.option("--incidents", "incidents_dir", default="incidents", show_default=True, metavar="DIR")
@click.option("--webhook", default=None, metavar="URL", help="POST every incident as JSON here.")
@click.pass_context
def watch_command(ctx, log_location, registry_location, policy_path, profile_path, every, once, cycles,
                  incidents_dir, webhook) -> None:
    """Evaluate the rules every --every seconds; a breach removes the canary alias or rolls production back
    (when `previous` passes the same rule), as actor 'monitor', and writes an incident record."""
    from voxproof.monitor.watch import watch

    if cycles is not None and cycles < 1:
        raise UsageError(f"--cycles must be at least 1, got {cycles}")
    policy, profile = _policy(policy_path), _profile(profile_path)
    breached = []

    def show(res) -> None:
        for inc in res.incidents:
            breached.append(inc)
            click.echo(f"INCIDENT {inc.rule['rule']}: {inc.action} ({inc.target} {inc.version}); {inc.rule['detail']}")
        if not res.incidents:
            click.echo(f"ok: {sum(r.status == 'ok' for r in res.results)} rules hold, "
                       f"{sum(r.status in ('too small', 'n/a') for r in res.results)} not judged")
        sys.stdout.flush()

    watch(log_location, registry_location, policy, profile, every=every, cycles=1 if once else cycles,
          incidents_dir=incidents_dir, webhook=webhook, on_cycle=show)
    if once and breached:
        ctx.exit(EXIT_FAILED)


@monitor_group.command("rules")
@click.option("--prometheus", is_flag=True, required=True, help="Write Prometheus alerting rules.")
@click.option("--policy", "policy_path", default=None, metavar="FILE")
@click.option("-o", "--out", default=None, metavar="FILE", help="Output file (default: stdout).")
def rules_command(prometheus, policy_path, out) -> None:
    """Prometheus alerting rules equivalent to the policy's SLO rules (on the gauges 'check --metrics-out' writes)."""
    from voxproof.monitor.prometheus import alerting_rules

    text = alerting_rules(_policy(policy_path))
    if out:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"rules: {out}")
    else:
        click.echo(text, nl=False)


@monitor_group.command("report")
@click.option("--log", "log_location", required=True, metavar="PATH|URL")
@click.option("--profile", "profile_path", required=True, metavar="FILE")
@click.option("--policy", "policy_path", default=None, metavar="FILE")
@click.option("--incidents", "incidents_dir", default=None, metavar="DIR")
@click.option("--registry", "registry_location", default=None, metavar="PATH|URL", help="Show alias changes.")
@click.option("-o", "--out", default="monitor.html", show_default=True)
def report_command(log_location, profile_path, policy_path, incidents_dir, registry_location, out) -> None:
    """A self-contained HTML dashboard: features over time against the reference band, drift, estimated WER,
    markers, incidents and alias changes."""
    from voxproof.monitor.report import write_report

    path = write_report(log_location, _profile(profile_path), _policy(policy_path), out,
                        incidents_dir=incidents_dir, registry_location=registry_location)
    click.echo(f"report: {path}")


@monitor_group.command("log-from-run")
@click.argument("run")
@click.option("--condition", default=None, help="Only this condition (default: every row).")
@click.option("--version", "version", default="run", show_default=True, help="Version name written in the rows.")
@click.option("--start", type=float, default=0.0, show_default=True, help="ts of the first row (Unix seconds).")
@click.option("--every", type=float, default=1.0, show_default=True, help="Seconds between rows.")
@click.option("--route", default="main", show_default=True, type=click.Choice(["main", "canary", "shadow"]))
@click.option("--text", "include_text", is_flag=True, help="Include the transcript text.")
@click.option("-o", "--out", required=True, help="Request-log JSONL to write.")
def log_from_run_command(run, condition, version, start, every, route, include_text, out) -> None:
    """Write the request-log rows an evaluation run's audio would have produced (the documented format)."""
    from voxproof.monitor.runlog import rows_from_run
    from voxproof.monitor.source import write_jsonl

    for name, v in (("--start", start), ("--every", every)):
        if not math.isfinite(v) or abs(v) > 1e11:
            raise UsageError(f"{name} must be a finite number of seconds")
    n = write_jsonl(rows_from_run(run, condition=condition, version=version, start_ts=start, every_s=every,
                                  route=route, include_text=include_text), out)
    click.echo(f"{n} request-log rows: {out}")
