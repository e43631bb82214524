"""``voxproof tts-eval``: synthesise a prompt set with several TTS systems, judge every clip
(intelligibility, DNSMOS, failure detectors), compare the systems pairwise, write the reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from voxproof.cli.derive import dataclass_options, pop_dataclass
from voxproof.errors import UsageError
from voxproof.tts.evaluate import TtsEvalOptions

TTS_HELP = {
    "asr": "Recogniser that judges intelligibility (see 'voxproof models').",
    "normalizer": "Text normaliser applied to expected forms and transcripts before WER.",
    "vad": "Voice-activity detector for the silence, truncation and pause detectors: silero or energy.",
    "mos": "Predict MOS with DNSMOS (P.835 SIG/BAK/OVRL and P.808).",
    "personalized_mos": "Use the personalised DNSMOS P.835 model (penalises interfering talkers).",
    "plcmos": "Also predict PLCMOS v2 (speechmos, offline ONNX; needs --mos; slower, off by default).",
    "keep_audio": "Write every clip to OUT/<system>/audio/ (the HTML report plays the worst ones).",
    "seed": "Seed of every bootstrap interval and paired test.",
    "n_resamples": "Bootstrap resamples.",
    "level": "Confidence level of the intervals.",
    "speaker_ref": "Recordings of the target voice (manifest or folder): adds speaker similarity per clip "
                   "(needs: pip install --no-deps resemblyzer).",
    "speaker_ref_limit": "Use at most this many speaker reference recordings.",
}


def _parse_systems(models: tuple[str, ...]) -> dict[str, str]:
    systems: dict[str, str] = {}
    for item in models:
        label, sep, backend = item.partition("=")
        if not sep:
            label, backend = item, item
        if label in systems:
            raise UsageError(f"system {label!r} given twice; name repeats like -m slow=espeak -m fast=espeak")
        systems[label] = backend
    return systems


def _parse_options(pairs: tuple[str, ...], systems: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in systems}
    for pair in pairs:
        name, sep, kv = pair.partition(":")
        if not sep or name not in systems:
            raise UsageError(f"option {pair!r} must look like SYSTEM:KEY=VALUE with SYSTEM one of {', '.join(systems)}")
        out[name].append(kv)
    return out


@click.command("tts-eval")
@click.option("-m", "--model", "models", multiple=True, metavar="[NAME=]BACKEND",
              help="Synthesiser to evaluate, repeatable (piper, espeak, openai-tts); NAME labels repeats.")
@click.option("-O", "--option", "model_options", multiple=True, metavar="SYSTEM:KEY=VALUE",
              help="Synthesiser option, repeatable (e.g. -O espeak:rate=140).")
@click.option("--asr-option", "asr_options", multiple=True, metavar="KEY=VALUE", help="Recogniser option, repeatable.")
@click.option("--prompts", default=None, help="Prompt file (.jsonl with id/text/expected, or .txt one per line). Default: the bundled en-stress set.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Use only the first N prompts.")
@click.option("-o", "--out", default=None, help="Output directory (default: runs/tts-TIME). Rerunning with the same directory skips finished prompts.")
@click.option("--floor/--no-floor", default=True, show_default=True,
              help="Also score real recordings (recogniser error floor, MOS ceiling).")
@click.option("--floor-data", default=None, help="Recordings for the floor (default: the bundled LibriSpeech test-other sample).")
@click.option("--floor-limit", type=int, default=None, help="Use only the first N floor recordings.")
@click.option("--worst", type=int, default=5, show_default=True, help="Worst items per system shown (with audio) in the HTML report.")
@click.option("--json-only", is_flag=True, help="Skip the HTML report.")
@click.option("--resynth", "resynth", multiple=True, metavar="SUITE[/RUNG]|CHAIN",
              help="Resynthesis mode, repeatable: pass the floor recordings through a codec (a suite such as "
                   "'codecs', one rung 'codecs/opus=6k', or a chain 'codec:opus,bitrate=6k') and report PESQ, "
                   "STOI, MCD, F0 RMSE against the originals next to the WER the codec causes.")
@click.option("--detector", "detector_options", multiple=True, metavar="KEY=VALUE",
              help="Failure-detector threshold, repeatable (e.g. --detector max_pause_seconds=1.5); "
                   "names as in voxproof.tts.detectors.DetectorOptions.")
@dataclass_options(TtsEvalOptions, TTS_HELP)
def tts_eval_command(models, model_options, asr_options, prompts, limit, out, floor, floor_data, floor_limit,
                     worst, json_only, detector_options, resynth, **kwargs) -> None:
    """Evaluate text-to-speech systems on the same prompts: intelligibility (WER of a recogniser against
    the expected spoken form), DNSMOS, speaking rate, failures (silence, truncation, long pauses,
    repetition, clipping, DC offset, sample rate), and paired comparisons between systems.

    Example: voxproof tts-eval -m piper -m espeak -o runs/tts
    Codecs on real speech: voxproof tts-eval --resynth codecs/opus=6k --resynth codecs/mp3=8k -o runs/codecs
    """
    import time

    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.options import build_options
    from voxproof.tts.detectors import DetectorOptions
    from voxproof.tts.evaluate import TtsScorer, default_floor_source, floor_items
    from voxproof.tts.pipeline import resolve_resynth, run_tts_eval
    from voxproof.tts.prompts import load_prompts
    from voxproof.tts.report import console_table

    try:
        options = pop_dataclass(TtsEvalOptions, kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not models and not resynth:
        raise UsageError("give at least one synthesiser (-m piper) or a resynthesis condition (--resynth codecs)")
    conditions = resolve_resynth(resynth)
    if conditions and not floor:
        raise UsageError("--resynth evaluates codecs on the floor recordings; drop --no-floor")
    systems = _parse_systems(models)
    per_system = _parse_options(model_options, systems)
    built = {}
    for name, backend in systems.items():
        spec = get_spec(backend, kind="tts")
        built[name] = (backend, build_options(spec.options_class(), per_system[name]))
    prompt_list = load_prompts(prompts)
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be at least 1, got {limit}")
        prompt_list = prompt_list[:limit]
    out = Path(out) if out else Path(f"runs/tts-{time.strftime('%Y%m%d-%H%M%S')}")
    thresholds = build_options(DetectorOptions, list(detector_options))
    scorer = TtsScorer.from_options(options, thresholds, asr_pairs=list(asr_options))
    items, source = None, ""
    if floor:
        source = str(floor_data) if floor_data else str(default_floor_source())
        items = floor_items(source, floor_limit)

    def progress(p) -> None:
        if sys.stderr.isatty():
            end = "\n" if p.done >= p.total else ""
            click.echo(f"\r{p.system}: {p.done}/{p.total} ({p.skipped} done before)   ", err=True, nl=False)
            if end:
                click.echo("", err=True)

    factories = {name: (lambda b=backend, o=opts: load_backend(b, o, kind="tts")) for name, (backend, opts) in built.items()}
    result = run_tts_eval(
        factories, prompt_list, out, scorer, options=options, prompt_source=str(prompts or "en-stress"),
        floor=items, floor_source=source, worst_n=worst, html=not json_only, progress=progress,
        resynth=conditions,
    )
    click.echo(console_table(result.summary))
    click.echo(f"\nsummary: {result.summary_path}")
    if result.html_path:
        click.echo(f"report:  {result.html_path}")
