"""``voxproof listen make|score|simulate``: listening tests from TTS runs, and their scoring."""

from __future__ import annotations

import json
from pathlib import Path

import click

from voxproof.errors import UsageError


@click.group("listen")
def listen_group() -> None:
    """Listening tests: make a self-contained HTML test from tts-eval runs, score the answer files."""


@listen_group.command("make")
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, help="Folder for test.html (send it to listeners) and design.json (keep it).")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["acr", "ab"]),
              help="acr (P.808 absolute category rating), ab (pairwise preference); default both.")
@click.option("--attention-checks", type=click.IntRange(0, 20), default=2, show_default=True, help="Attention checks per mode.")
@click.option("--reference-clips", type=click.IntRange(0, 100), default=4, show_default=True,
              help="Real recordings (the runs' floor) rated as the hidden reference.")
@click.option("--max-items", type=click.IntRange(1, 2000), default=200, show_default=True)
@click.option("--max-clip-seconds", type=click.FloatRange(0.5, 120.0), default=20.0, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--title", default="Listening test", show_default=True)
def make_command(runs, out, modes, attention_checks, reference_clips, max_items, max_clip_seconds, seed, title) -> None:
    """Write OUT/test.html and OUT/design.json from tts-eval output folders (or system run folders).

    Example: voxproof listen make runs/tts -o runs/listen
    """
    from voxproof.listen.design import ListenOptions, build_design, collect_runs, write_design
    from voxproof.listen.page import write_page

    try:
        options = ListenOptions(tuple(modes) or ("acr", "ab"), attention_checks, reference_clips, max_items,
                                max_clip_seconds, seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    systems, floor = collect_runs(list(runs))
    design = build_design(systems, floor, options, tuple(str(r) for r in runs))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = write_page(design, out_dir / "test.html", title)
    write_design(design, out_dir / "design.json")
    kinds = {}
    for it in design.items:
        kinds[it.kind] = kinds.get(it.kind, 0) + 1
    click.echo(f"test {design.test_id[:12]}: {len(design.items)} items ("
               + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + f") over {', '.join(design.systems)}")
    click.echo(f"page:   {page} ({page.stat().st_size / 1e6:.1f} MB, self-contained)")
    click.echo(f"design: {out_dir / 'design.json'} (keep it: it maps items to systems)")


@listen_group.command("score")
@click.argument("design_path", metavar="DESIGN")
@click.argument("answers", nargs=-1, required=True)
@click.option("--n-resamples", type=click.IntRange(10, 100_000), default=2000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--level", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--json", "json_out", default=None, help="Also write the result as JSON to this file.")
def score_command(design_path, answers, n_resamples, seed, level, json_out) -> None:
    """Score answer files against DESIGN (design.json or its folder): screening, MOS with intervals,
    Bradley-Terry preference, agreement, and how well the MOS predictors agree with the listeners.

    Exit 0 when at least one listener was kept, 3 when none could be used.
    """
    from voxproof.errors import DataError
    from voxproof.listen.answers import read_answers
    from voxproof.listen.calibration import calibrate
    from voxproof.listen.design import read_design
    from voxproof.listen.render import result_lines
    from voxproof.listen.score import score_listening

    design = read_design(design_path)
    read = read_answers(list(answers), design)
    result = score_listening(design, read, n_resamples=n_resamples, seed=seed, level=level)
    calib = calibrate(design, result, n_resamples=n_resamples, seed=seed, level=level)
    click.echo("\n".join(result_lines(result, calib)))
    if json_out:
        Path(json_out).write_text(json.dumps({**result.to_dict(), "calibration": calib.to_dict()}, indent=1) + "\n",
                                  encoding="utf-8")
    if not any(s.kept for s in result.screening):
        raise DataError("no answer file gave a listener who passed screening; nothing to report")


@listen_group.command("simulate")
@click.argument("design_path", metavar="DESIGN")
@click.option("-q", "--quality", "qualities", multiple=True, required=True, metavar="SYSTEM=MOS",
              help="True 1-5 quality of each system (and hidden-reference), repeatable.")
@click.option("-n", "--listeners", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--careless", type=click.IntRange(0, 100), default=0, show_default=True,
              help="How many of them are careless (straight-lining, ignoring checks).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("-o", "--out", required=True, help="Folder for the simulated answer files.")
def simulate_command(design_path, qualities, listeners, careless, seed, out) -> None:
    """Write answer files of SIMULATED listeners (documented generative model in
    voxproof.listen.simulate), labelled as simulated, to test the scoring."""
    import math

    from voxproof.listen.design import read_design
    from voxproof.listen.simulate import simulate_listeners

    quality = {}
    for q in qualities:
        name, sep, value = q.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        if not sep or not math.isfinite(v) or not 1.0 <= v <= 5.0:
            raise UsageError(f"--quality {q!r} must be SYSTEM=MOS with MOS in 1..5")
        quality[name] = v
    if careless > listeners:
        raise UsageError(f"--careless {careless} is more than --listeners {listeners}")
    design = read_design(design_path)
    try:
        files = simulate_listeners(design, quality, listeners, careless=careless, seed=seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        path = out_dir / f"answers-{f['listener']}.json"
        path.write_text(json.dumps(f, indent=1) + "\n", encoding="utf-8")
        click.echo(f"{path} (SIMULATED)")
