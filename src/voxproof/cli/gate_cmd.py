"""``voxproof gate``: decide whether a candidate may replace a baseline, from two runs or two models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

# The gate's own exit codes (the contract): 0 every rule holds, 1 a rule fails,
# 2 unusable input (bad policy, missing or broken run, bad option), 3 the runs are not comparable.
GATE_PASS, GATE_FAIL, GATE_UNUSABLE, GATE_NOT_COMPARABLE = 0, 1, 2, 3


class _GateCommand(click.Command):
    """Keeps the raw arguments: each -O belongs to the model named before it on the command line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["gate_argv"] = list(args)
        return super().parse_args(ctx, args)


@click.command("gate", cls=_GateCommand)
@click.option("--baseline", "baseline", default=None, metavar="RUN", help="Baseline run directory.")
@click.option("--candidate", "candidate", default=None, metavar="RUN", help="Candidate run directory.")
@click.option("--policy", "policy_path", default=None, metavar="FILE",
              help="Gate policy TOML (default: the shipped policy; 'voxproof gate --show-policy' prints it).")
@click.option("-o", "--out", default=None, metavar="DIR", help="Where to write gate.json and gate.html.")
@click.option("--baseline-model", default=None, metavar="BACKEND", help="Evaluate this model as the baseline.")
@click.option("--candidate-model", default=None, metavar="BACKEND", help="Evaluate this model as the candidate.")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Backend option of the model named just before it (repeatable): "
                   "--baseline-model whisper -O beam_size=1 --candidate-model whisper -O beam_size=5.")
@click.option("-d", "--data", default=None, help="Dataset for model mode (default: the bundled sample).")
@click.option("--suite", "suites", multiple=True, help="Perturbation suite for model mode (repeatable).")
@click.option("--perturb", "perturbs", multiple=True, metavar="SPEC", help="Perturbation condition for model mode.")
@click.option("--limit", type=int, default=None, help="Model mode: only the first N utterances.")
@click.option("--cache", "cache_dir", default=None, metavar="DIR",
              help="Model mode: where runs are kept and reused (default: ~/.cache/voxproof/gate-runs).")
@click.option("--seed", type=int, default=0, show_default=True, help="Model mode: run seed.")
@click.option("--show-policy", is_flag=True, help="Print the default policy (annotated TOML) and exit.")
@click.option("--price", default=None, metavar="NAME=USD_PER_HOUR",
              help="Price of the machine per hour for the policy's cost rule (overrides [cost] "
                   "price_per_machine_hour), e.g. --price my-vm=0.05.")
@click.pass_context
def gate_command(ctx, baseline, candidate, policy_path, out, baseline_model, candidate_model, options, data,
                 suites, perturbs, limit, cache_dir, seed, show_policy, price) -> None:
    """Gate a CANDIDATE against a BASELINE: every policy rule, a table, gate.json and gate.html.

    \b
    Exit codes: 0 every rule holds, 1 a rule fails (named in the output),
    2 unusable input, 3 the runs are not comparable (different data, normaliser or utterances).
    """
    from voxproof.errors import NotComparable, VoxproofError
    from voxproof.gate.policy import default_policy_text

    if show_policy:
        click.echo(default_policy_text(), nl=False)
        return
    debug = bool((ctx.obj or {}).get("debug"))
    try:
        verdict = _evaluate(baseline, candidate, policy_path, baseline_model, candidate_model,
                            ctx.meta.get("gate_argv", []) if options else [], data, suites, perturbs, limit,
                            cache_dir, seed, price)
    except NotComparable as exc:
        _report_error(exc, debug)
        ctx.exit(GATE_NOT_COMPARABLE)
    except VoxproofError as exc:
        _report_error(exc, debug)
        ctx.exit(GATE_UNUSABLE)
    from voxproof.gate.html import write_html
    from voxproof.gate.verdict import format_table

    out_dir = Path(out) if out else Path("gate-" + verdict.created_at.replace(":", "").replace("-", ""))
    json_path = verdict.write_json(out_dir / "gate.json")
    html_path = write_html(verdict, out_dir / "gate.html")
    click.echo(format_table(verdict))
    click.echo(f"verdict: {json_path}")
    click.echo(f"page:    {html_path}")
    ctx.exit(GATE_PASS if verdict.passed else GATE_FAIL)


def _report_error(exc: Exception, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"{type(exc).__name__}: {exc}", err=True)


def _split_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """-O pairs that follow --baseline-model and --candidate-model, read from the command line order."""
    which = None
    out: dict[str, list[str]] = {"baseline": [], "candidate": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--baseline-model", "--candidate-model"):
            which = "baseline" if arg == "--baseline-model" else "candidate"
        elif arg.startswith(("--baseline-model=", "--candidate-model=")):
            which = "baseline" if arg.startswith("--baseline-model=") else "candidate"
        elif arg in ("-O", "--option") or arg.startswith(("--option=", "-O")):
            if arg in ("-O", "--option"):
                i += 1
                value = argv[i] if i < len(argv) else ""
            else:
                value = arg.split("=", 1)[1] if arg.startswith("--option=") else arg[2:]
            if which is None:
                from voxproof.errors import UsageError

                raise UsageError(f"-O {value} must follow --baseline-model or --candidate-model")
            out[which].append(value)
        i += 1
    return out["baseline"], out["candidate"]


def _priced(policy, price: str | None):
    """The policy with ``--price NAME=USD_PER_HOUR`` as its cost rule's price (checked: finite, >= 0)."""
    if price is None:
        return policy
    import dataclasses

    from voxproof.errors import UsageError
    from voxproof.metrics.cost import parse_prices

    ((_, value),) = parse_prices([price]).items()
    if policy.max_cost_per_audio_hour is None:
        raise UsageError("--price sets the price of the policy's cost rule, but the policy has no [cost] "
                         "max_per_audio_hour; add one ('voxproof gate --show-policy' shows the format)")
    return dataclasses.replace(policy, price_per_machine_hour=value)


def _evaluate(baseline, candidate, policy_path, baseline_model, candidate_model, argv, data, suites, perturbs,
              limit, cache_dir, seed, price=None):
    from voxproof.errors import UsageError
    from voxproof.gate.policy import load_policy
    from voxproof.gate.verdict import evaluate_gate

    policy = _priced(load_policy(policy_path), price)
    run_mode = baseline is not None or candidate is not None
    model_mode = baseline_model is not None or candidate_model is not None
    if run_mode and model_mode:
        raise UsageError("give either --baseline/--candidate runs or --baseline-model/--candidate-model, not both")
    if run_mode:
        if baseline is None or candidate is None:
            raise UsageError("the gate needs both --baseline RUN and --candidate RUN")
        return evaluate_gate(baseline, candidate, policy)
    if not model_mode:
        raise UsageError("nothing to gate: give --baseline RUN --candidate RUN, or --baseline-model and "
                         "--candidate-model with --data")
    if baseline_model is None or candidate_model is None:
        raise UsageError("model mode needs both --baseline-model and --candidate-model")
    base_pairs, cand_pairs = _split_options(argv)
    if base_pairs == cand_pairs and baseline_model == candidate_model:
        raise UsageError("baseline and candidate models are identical (same backend and options)")
    return _model_mode(policy, baseline_model, base_pairs, candidate_model, cand_pairs, data, suites, perturbs,
                       limit, cache_dir, seed)


def _model_mode(policy, base_model, base_pairs, cand_model, cand_pairs, data, suites, perturbs, limit, cache_dir,
                seed):
    from voxproof.backends.registry import get_spec
    from voxproof.gate.runs import ModelSpec, ensure_run
    from voxproof.gate.verdict import evaluate_gate
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.options import build_options
    from voxproof.run.inputs import resolve_inputs

    for name, pairs in ((base_model, base_pairs), (cand_model, cand_pairs)):  # fail fast, before any data
        build_options(get_spec(name, kind="asr").options_class(), list(pairs))
    inputs = resolve_inputs(data, limit=limit, suites=suites, perturbs=perturbs)
    norm = get_normalizer(policy.normalizer or "whisper-en")
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "voxproof" / "gate-runs"
    dirs = []
    for label, name, pairs in (("baseline", base_model, base_pairs), ("candidate", cand_model, cand_pairs)):
        run_dir, reused = ensure_run(ModelSpec(name, tuple(pairs)), inputs.utterances, cache,
                                     dataset=inputs.dataset, conditions=inputs.conditions, normalizer=norm, seed=seed)
        click.echo(f"{label}: {'reused' if reused else 'evaluated'} {run_dir}", err=True)
        dirs.append(run_dir)
    return evaluate_gate(dirs[0], dirs[1], policy)
