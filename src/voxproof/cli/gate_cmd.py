"""``voxproof gate``: decide whether a candidate may replace a baseline, from two runs or two models."""

from __future__ import annotations

from pathlib import Path

import click

from voxproof.cli.params import EXISTING_PATH
from voxproof.security.cli_support import supply_options

# The gate's exit codes are every command's: 0 every rule holds, 1 a rule fails, 2 a usage mistake (bad
# policy or option, a path that is not a run, runs that are not comparable), 3 could not evaluate (a
# corrupt run, a model that fails to load or stops a run).
GATE_PASS, GATE_FAIL = 0, 1
DEFAULT_CACHE = Path("~/.cache/voxproof/gate-runs")


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
@click.option("-d", "--data", default=None, type=EXISTING_PATH,
              help="Dataset for model mode (default: the bundled sample).")
@click.option("--suite", "suites", multiple=True, help="Perturbation suite for model mode (repeatable).")
@click.option("--perturb", "perturbs", multiple=True, metavar="SPEC", help="Perturbation condition for model mode.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Model mode: only the first N utterances.")
@click.option("--sample", type=int, default=None, metavar="N",
              help="Model mode: N utterances drawn with --seed, stratified by speaker.")
@click.option("--cache-dir", "--cache", "cache_dir", default=None, metavar="DIR",
              help=f"Model mode: where both runs are kept and reused (default: {DEFAULT_CACHE}); each run "
                   "lives in DIR/BACKEND-KEY, printed as it starts.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Model mode: run seed (and sample seed).")
@click.option("--allow-url-host", "allow_url_host", multiple=True, metavar="HOST",
              help="Model mode: fetch manifest audio URLs from HOST (repeatable; URLs are off by default).")
@click.option("--tests", "tests", type=click.Choice(["textbook", "sctk"]), default=None,
              help="Paired tests recorded with the WER rules: textbook forms, or NIST sc_stats' definitions "
                   "(overrides the policy's decision.tests; the rules decide on the interval either way).")
@click.option("--show-policy", is_flag=True, help="Print the default policy (annotated TOML) and exit.")
@click.option("--price", default=None, metavar="NAME=USD_PER_HOUR",
              help="Price of the machine per hour for the policy's cost rule (overrides [cost] "
                   "price_per_machine_hour), e.g. --price my-vm=0.05.")
@supply_options
@click.pass_context
def gate_command(ctx, baseline, candidate, policy_path, out, baseline_model, candidate_model, options, data,
                 suites, perturbs, limit, sample, cache_dir, seed, tests, show_policy,
                 allow_url_host, price, expect_checksum, registry, expect_version, allow_changed_model,
                 allow_pickle) -> None:
    """Gate a CANDIDATE against a BASELINE: every policy rule, a table, gate.json and gate.html.

    \b
    Exit codes: 0 every rule holds, 1 a rule fails (named in the output),
    2 usage mistake (bad policy or option, a path that is not a run, runs that are not comparable:
    different data, normaliser or utterances), 3 could not evaluate (corrupt run, failing model, a
    candidate model whose checksum differs from --expect-checksum / --expect-version: ModelChanged).
    The supply-chain flags check the candidate: in model mode on load, before evaluating; always against
    the checksum the candidate run recorded. The check is written to gate.json (model_verification).
    """
    from voxproof.gate.policy import default_policy_text
    from voxproof.run.runner import RunInterrupted

    if show_policy:
        click.echo(default_policy_text(), nl=False)
        return
    supply = _Supply(expect_checksum, registry, expect_version, allow_changed_model, allow_pickle)
    try:
        verdict = _evaluate(baseline, candidate, policy_path, baseline_model, candidate_model,
                            ctx.meta.get("gate_argv", []) if options else [], data, suites, perturbs, limit,
                            sample, cache_dir, seed, allow_url_host, price, supply, tests)
    except RunInterrupted as exc:
        exc.resume_hint = ("run the same 'voxproof gate' command again: it resumes the cached run "
                           f"{exc.run_dir} and reuses finished ones")
        raise
    from voxproof.gate.html import write_html
    from voxproof.gate.verdict import format_table

    out_dir = Path(out) if out else Path("gate-" + verdict.created_at.replace(":", "").replace("-", ""))
    json_path = verdict.write_json(out_dir / "gate.json")
    html_path = write_html(verdict, out_dir / "gate.html")
    click.echo(f"options that differ: {differing_options(verdict.baseline, verdict.candidate)}")
    click.echo(format_table(verdict))
    click.echo(f"verdict: {json_path}")
    click.echo(f"page:    {html_path}")
    ctx.exit(GATE_PASS if verdict.passed else GATE_FAIL)


class _Supply:
    """The gate's supply-chain flags and the candidate checks they make."""

    def __init__(self, expect_checksum, registry, expect_version, allow_changed, allow_pickle):
        from voxproof.errors import UsageError
        from voxproof.security.supply import registry_checksum

        if expect_version and not registry:
            raise UsageError("--expect-version needs --registry PATH naming the registry that records it")
        if expect_version and expect_checksum:
            raise UsageError("give --expect-checksum or --expect-version, not both")
        self.expected = registry_checksum(registry, expect_version) if expect_version else expect_checksum
        self.version, self.allow_changed, self.allow_pickle = expect_version, allow_changed, allow_pickle
        self.load_record: dict | None = None

    def factory(self, load):
        """A verified loader of the candidate (checked once, on load, before any evaluation)."""
        from voxproof.security.cli_support import verified_factory

        factory, self.load_record = verified_factory(load, self.expected, None, None, self.allow_changed,
                                                     self.allow_pickle)
        return factory

    def check(self, verdict):
        """The verdict with the candidate run's recorded checksum verified (raises ModelChanged)."""
        import dataclasses

        from voxproof.security.supply import verify_run_model

        record = verify_run_model(verdict.candidate, self.expected, allow_changed=self.allow_changed).to_dict()
        if self.version:
            record["registry_version"] = self.version
        if self.load_record is not None:
            record["on_load"] = self.load_record
        return dataclasses.replace(verdict, model_verification=record)


def differing_options(baseline: dict, candidate: dict) -> str:
    """``cpu_threads 0 -> 1, vad_filter False -> True`` for the backend and options that differ between
    the two sides of a verdict (all of them, not only those the table header shows), or ``none``."""
    changes = []
    if baseline.get("backend") != candidate.get("backend"):
        changes.append(f"backend {baseline.get('backend')} -> {candidate.get('backend')}")
    b_opts, c_opts = baseline.get("options") or {}, candidate.get("options") or {}
    for key in sorted(set(b_opts) | set(c_opts)):
        if b_opts.get(key, "(unset)") != c_opts.get(key, "(unset)"):
            changes.append(f"{key} {b_opts.get(key, '(unset)')} -> {c_opts.get(key, '(unset)')}")
    return ", ".join(changes) or "none"


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
              limit, sample, cache_dir, seed, allow_url_host=(), price=None, supply=None, tests=None):
    from voxproof.cli.params import require_run
    from voxproof.errors import UsageError
    from voxproof.gate.policy import load_policy
    from voxproof.gate.verdict import evaluate_gate

    policy = _priced(load_policy(policy_path), price)
    if tests is not None:
        import dataclasses

        policy = dataclasses.replace(policy, tests=tests)
    run_mode = baseline is not None or candidate is not None
    model_mode = baseline_model is not None or candidate_model is not None
    if run_mode and model_mode:
        raise UsageError("give either --baseline/--candidate runs or --baseline-model/--candidate-model, not both")
    if run_mode:
        if baseline is None or candidate is None:
            raise UsageError("the gate needs both --baseline RUN and --candidate RUN")
        verdict = evaluate_gate(require_run(baseline, "--baseline"), require_run(candidate, "--candidate"), policy)
        return supply.check(verdict) if supply is not None else verdict
    if not model_mode:
        raise UsageError("nothing to gate: give --baseline RUN --candidate RUN, or --baseline-model and "
                         "--candidate-model with --data")
    if baseline_model is None or candidate_model is None:
        raise UsageError("model mode needs both --baseline-model and --candidate-model")
    base_pairs, cand_pairs = _split_options(argv)
    if base_pairs == cand_pairs and baseline_model == candidate_model:
        raise UsageError("baseline and candidate models are identical (same backend and options)")
    verdict = _model_mode(policy, baseline_model, base_pairs, candidate_model, cand_pairs, data, suites, perturbs,
                          limit, sample, cache_dir, seed, allow_url_host, supply)
    return supply.check(verdict) if supply is not None else verdict


def _model_mode(policy, base_model, base_pairs, cand_model, cand_pairs, data, suites, perturbs, limit, sample,
                cache_dir, seed, allow_url_host=(), supply=None):
    from voxproof.backends.registry import get_spec
    from voxproof.cli.eval_cmd import check_sample, sample_note
    from voxproof.cli.progress import ProgressBar
    from voxproof.gate.runs import ModelSpec, ensure_run, plan_run
    from voxproof.gate.verdict import evaluate_gate
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.options import build_options
    from voxproof.run.inputs import resolve_inputs
    from voxproof.run.sampling import sample_inputs

    for name, pairs in ((base_model, base_pairs), (cand_model, cand_pairs)):  # fail fast, before any data
        build_options(get_spec(name, kind="asr").options_class(), list(pairs))
    check_sample(limit, sample)
    inputs = resolve_inputs(data, limit=limit, suites=suites, perturbs=perturbs, seed=seed)
    if sample is not None:
        inputs = sample_inputs(inputs, sample, seed)
    norm = get_normalizer(policy.normalizer or "whisper-en")
    cache = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE.expanduser()
    n_rows = len(inputs.utterances) * (1 + len(inputs.conditions))
    click.echo(f"data: {len(inputs.utterances)} utterances of {inputs.source}{sample_note(inputs.dataset)}, "
               f"{1 + len(inputs.conditions)} condition(s); run cache: {cache}", err=True)
    plans = [(label, name, plan_run(ModelSpec(name, tuple(pairs)), inputs, cache, normalizer=norm, seed=seed))
             for label, name, pairs in (("baseline", base_model, base_pairs), ("candidate", cand_model, cand_pairs))]
    cand_load = None
    if supply is not None and (supply.expected or not plans[1][2].reusable):  # verified before anything runs
        from voxproof.backends.registry import load_backend

        cand_load = supply.factory(lambda p=plans[1][2]: load_backend(p.model.backend, p.options, kind="asr"))
    dirs = []
    for label, name, plan in plans:
        load = cand_load if label == "candidate" else None
        if plan.reusable:
            click.echo(f"{label}: reused {plan.run_dir} (complete, {n_rows} rows)", err=True)
        else:
            verb = "resuming" if plan.exists else "evaluating"
            click.echo(f"{label}: {verb} {plan.run_dir} ({n_rows} rows)", err=True)
            bar = ProgressBar(f"{label} {name}")
            ensure_run(plan, progress=bar, allow_url_host=tuple(allow_url_host), load=load)
            click.echo(f"{label}: evaluated {plan.run_dir}", err=True)
        dirs.append(plan.run_dir)
    return evaluate_gate(dirs[0], dirs[1], policy)
