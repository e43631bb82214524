"""``voxproof eval``: run a recogniser on a dataset (clean and perturbed), score it, write the reports."""

from __future__ import annotations

import math
import time

import click

from voxproof.cli.derive import dataclass_options, pop_dataclass
from voxproof.cli.params import EXISTING_PATH
from voxproof.errors import EXIT_CANNOT_EVALUATE, UsageError
from voxproof.run.runner import RunOptions
from voxproof.security.cli_support import record_verification, supply_options, verified_factory


def check_sample(limit: int | None, sample: int | None) -> None:
    """``--limit`` and ``--sample`` choose utterances in two different ways: refuse both at once."""
    if limit is not None and sample is not None:
        raise UsageError("give either --limit N (the first N utterances) or --sample N (a stratified sample), "
                         "not both")
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1, got {sample}")


def sample_note(dataset: dict) -> str:
    """`` (stratified sample: N of M, S speakers, seed X)`` for a sampled dataset, else ''."""
    s = dataset.get("sample")
    if not s:
        return ""
    return f" (stratified sample: {dataset['utterances']} of {s['of']}, {s['speakers']} speakers, seed {s['seed']})"


RUN_HELP = {
    "workers": "Parallel workers, each with its own model instance.",
    "seed": "Seed for perturbations and resampling; same seed, same bytes and numbers.",
    "timeout": "Seconds one utterance may take in the model before it is an error row (default: none).",
    "max_seconds": "Longest decoded utterance in seconds; longer audio becomes an AudioTooLarge error row.",
    "include_clean": "Also evaluate the unperturbed audio (condition 'clean').",
    "features": "Signal features per row: basic (level, SNR, clipping, bandwidth), full (+ Silero VAD speech "
                "ratio, costly), none, or auto (full with perturbations, else basic).",
    "keep_audio": "Write the perturbed audio the model heard under RUN/audio/ for listening.",
    "allow_url_host": "Fetch manifest audio URLs from this host (URLs are off by default; * = any public host).",
    "max_text_chars": "Longest reference or hypothesis scored (characters); longer is a TranscriptTooLong error row.",
}


@click.command("eval")
@click.option("-m", "--model", default="whisper", show_default=True, help="Recogniser backend (see 'voxproof models').")
@click.option("-O", "--option", "model_options", multiple=True, metavar="KEY=VALUE",
              help="Backend option, repeatable (e.g. -O beam_size=5); 'voxproof models --options' lists them.")
@click.option("-d", "--data", default=None, type=EXISTING_PATH,
              help="Dataset: folder, NeMo/voxproof JSONL, Kaldi dir, CSV, HF dataset dir. "
                   "Default: the bundled LibriSpeech test-other sample; 'non-speech' = the generated non-speech suite "
                   "(hallucination on silence, noise, tones, music; seeded by --seed).")
@click.option("--format", "data_format", default=None, help="Force the manifest format instead of detecting it.")
@click.option("-o", "--out", default=None, help="Run directory (default: runs/MODEL-DATASET-TIME).")
@click.option("--normalizer", default="whisper-en", show_default=True, help="Text normaliser for scoring (raw scores are kept too).")
@click.option("--suite", "suites", multiple=True, help="Perturbation suite, repeatable (see 'voxproof suites').")
@click.option("--perturb", "perturbs", multiple=True, metavar="SPEC", help="A perturbation condition, e.g. 'noise:snr=10' or 'codec:opus,bitrate=8k'.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Evaluate only the first N utterances.")
@click.option("--sample", type=int, default=None, metavar="N",
              help="Evaluate N utterances drawn with --seed, stratified by speaker (recorded in provenance).")
@click.option("--wer-threshold", type=float, default=None,
              help="WER (0.2 = 20 %) at which robustness curves report the crossing severity.")
@click.option("--resume", is_flag=True, help="Continue the run in --out, skipping finished rows.")
@click.option("--chunk-seconds", type=float, default=None, metavar="S",
              help="Decode in fixed windows of S seconds stitched by word times (long-form 'chunked' mode) "
                   "instead of the backend's own long-form path.")
@click.option("--chunk-overlap", type=float, default=5.0, show_default=True, metavar="S",
              help="Seconds shared by neighbouring windows with --chunk-seconds.")
@dataclass_options(RunOptions, RUN_HELP)
@click.option("--json-only", is_flag=True, help="Skip the HTML report.")
@click.option("--price", "prices", multiple=True, metavar="NAME=USD_PER_HOUR",
              help="Price of a machine per hour for the cost per audio hour, repeatable (e.g. --price my-vm=0.05). "
                   "Default: labelled example prices.")
@click.option("--repeat-check", "repeat_check", type=click.IntRange(1, 10_000), default=None, metavar="N",
              help="Instead of a run: decode a seeded sample of N utterances twice, with a new model instance "
                   "and with 1 vs N threads, and report whether outputs are deterministic on this machine "
                   "(exit 1 if not). With -o, writes the report as JSON there.")
@supply_options
def eval_command(model, model_options, data, data_format, out, normalizer, suites, perturbs, limit, sample,
                 wer_threshold, resume, chunk_seconds, chunk_overlap, json_only, prices, expect_checksum, registry,
                 expect_version, allow_changed_model, allow_pickle, repeat_check, **kwargs) -> None:
    """Evaluate MODEL on a dataset: accuracy with intervals, coverage, speed, robustness.

    With no arguments: Whisper tiny.en on the bundled 50 LibriSpeech test-other utterances.
    """
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.cli.progress import ProgressBar
    from voxproof.cli.render import print_summary
    from voxproof.metrics.cost import parse_prices
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.options import build_options
    from voxproof.report.build import write_reports
    from voxproof.run.inputs import resolve_inputs
    from voxproof.run.runner import run_eval
    from voxproof.run.sampling import sample_inputs

    run_options = pop_dataclass(RunOptions, kwargs)
    if repeat_check is not None:
        if suites or perturbs or resume or sample is not None:
            raise UsageError("--repeat-check decodes the clean audio of its own sample: drop --suite, --perturb, "
                             "--sample and --resume")
        repeat_check_command(model, model_options, data, data_format, limit, repeat_check, run_options, out)
        return
    if wer_threshold is not None and not (math.isfinite(wer_threshold) and 0 < wer_threshold <= 10):
        raise UsageError(f"--wer-threshold={wer_threshold} must be a positive rate up to 10, such as 0.2 (20 %)")
    parsed_prices = parse_prices(prices)  # checked before any decoding
    spec = get_spec(model, kind="asr")
    backend_options = build_options(spec.options_class(), list(model_options))
    norm = get_normalizer(normalizer)
    check_sample(limit, sample)
    chunking = None
    if chunk_seconds is not None:
        from voxproof.backends.chunked import ChunkOptions

        if run_options.pack:
            raise UsageError("--pack shares one window among short clips and --chunk-seconds splits long ones; "
                             "give one of them")

        chunking = ChunkOptions(chunk_seconds, chunk_overlap)
    inputs = resolve_inputs(data, data_format=data_format, limit=limit, suites=suites, perturbs=perturbs,
                            seed=run_options.seed)
    if sample is not None:
        inputs = sample_inputs(inputs, sample, run_options.seed)
    if out is None:
        if resume:
            raise UsageError("--resume needs --out DIR naming the run to continue")
        out = f"runs/{model}-{inputs.source.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    bar = ProgressBar(f"{model}")
    click.echo(f"evaluating {model} on {len(inputs.utterances)} utterances of {inputs.source}"
               f"{sample_note(inputs.dataset)} -> {out}", err=True)
    factory, verification = verified_factory(lambda: load_backend(model, backend_options, kind="asr"),
                                             expect_checksum, registry, expect_version, allow_changed_model, allow_pickle)
    if chunking is not None:
        from voxproof.backends.chunked import ChunkedTranscriber

        inner_factory = factory
        factory = lambda: ChunkedTranscriber(inner_factory(), chunking)
    result = run_eval(
        factory,
        inputs.utterances,
        out,
        options=run_options,
        conditions=inputs.conditions,
        normalizer={"name": norm.name, "version": norm.version},
        dataset=inputs.dataset,
        resume=resume,
        progress=bar,
    )
    record_verification(result.run_dir, verification)
    if wer_threshold is not None:
        from voxproof.run.store import RunStore

        with RunStore.open(result.run_dir) as store:
            store.set_meta("report_settings", {"wer_threshold": wer_threshold})
    if parsed_prices:
        from voxproof.report.build import record_prices

        record_prices(result.run_dir, parsed_prices)
    summary, paths = write_reports(result.run_dir, normalizer=normalizer, html=not json_only)
    print_summary(summary)
    for label, path in paths.items():
        click.echo(f"{label}: {path}")
    if result.errors >= result.total_rows:
        click.echo(f"DataError: no utterance could be evaluated ({result.errors} error rows); see {paths.get('summary')}",
                   err=True)
        raise click.exceptions.Exit(EXIT_CANNOT_EVALUATE)


def repeat_check_command(model: str, model_options: tuple[str, ...], data, data_format, limit, n: int,
                         run_options: RunOptions, out: str | None) -> None:
    """``eval --repeat-check N``: see :mod:`voxproof.run.determinism`."""
    import dataclasses
    import json
    from pathlib import Path

    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.options import build_options
    from voxproof.run.determinism import check_determinism, report_lines
    from voxproof.run.inputs import resolve_inputs
    from voxproof.run.sampling import stratified_sample

    spec = get_spec(model, kind="asr")
    cls = spec.options_class()
    has_threads = cls is not None and "cpu_threads" in {f.name for f in dataclasses.fields(cls)}
    build_options(cls, list(model_options))  # refuse a bad option before any decoding

    def load(threads: int | None):
        pairs = list(model_options) + ([f"cpu_threads={threads}"] if threads is not None and has_threads else [])
        return load_backend(model, build_options(cls, pairs), kind="asr")

    inputs = resolve_inputs(data, data_format=data_format, limit=limit)
    chosen = stratified_sample(inputs.utterances, n, run_options.seed)
    limits = run_options.audio_limits()
    probe = load(None)
    try:
        threads = int(getattr(probe, "cpu_threads", 0)) or None if has_threads else None
        rate = int(getattr(probe, "sample_rate", 16000))
        runtime = dict(probe.runtime_info()) if callable(getattr(probe, "runtime_info", None)) else {}
        model_dir = getattr(probe, "model_dir", None)
    finally:
        close = getattr(probe, "close", None)
        if callable(close):
            close()
    audios = [load_audio(u.audio, sample_rate=rate, offset=u.offset, duration=u.duration, limits=limits)
              for u in chosen]
    if runtime.get("ctranslate2") and model_dir is not None:
        from voxproof.run.cpu import probe_mkl_dispatch

        runtime["mkl_probe"] = probe_mkl_dispatch(str(model_dir), str(getattr(probe.options, "compute_type", "int8")))
    click.echo(f"repeat check: {model} on {len(chosen)} of {len(inputs.utterances)} utterances of {inputs.source} "
               f"(seed {run_options.seed})", err=True)
    report = check_determinism(load, [u.id for u in chosen], audios, seed=run_options.seed, threads=threads,
                               runtime=runtime)
    for line in report_lines(report):
        click.echo(line)
    if out is not None:
        path = Path(out)
        if path.is_dir():
            path = path / "determinism.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        click.echo(f"report: {path}")
    if not report.deterministic:
        raise click.exceptions.Exit(1)
