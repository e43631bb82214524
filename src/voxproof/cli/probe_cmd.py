"""``voxproof probe``: black-box security probes (injected speech, adversarial search, disagreement
detector). Each writes OUT/run.sqlite (rows, resumable), OUT/probe.json and OUT/probe.html."""

from __future__ import annotations

import time
from pathlib import Path

import click

from voxproof.errors import EXIT_CANNOT_EVALUATE, UsageError

_TTS_DEFAULTS = {"piper": ["noise_scale=0", "noise_w_scale=0", "threads=1"], "espeak": []}


@click.group("probe")
def probe_group() -> None:
    """Security probes: injected speech, black-box adversarial search, cross-model disagreement."""


def _payload_audio(tts: str, tts_options: tuple[str, ...], payload: str, payload_audio: str | None):
    """The payload audio and its provenance: a user's recording, or the TTS backend speaking ``payload``."""
    from voxproof.audio.io import AudioLimits, load_audio
    from voxproof.backends.registry import load_backend

    if payload_audio:
        audio = load_audio(payload_audio, limits=AudioLimits(max_file_bytes=64 << 20, max_seconds=30.0))
        return audio, {"source": "recording", "path": str(payload_audio)}
    defaults = _TTS_DEFAULTS.get(tts, [])
    keys = {p.partition("=")[0] for p in tts_options}
    synth = load_backend(tts, kind="tts", pairs=[p for p in defaults if p.partition("=")[0] not in keys] + list(tts_options))
    return synth.synthesize(payload), {"source": "tts", "backend": synth.info().to_dict()}


@probe_group.command("inject")
@click.option("-m", "--model", default="whisper", show_default=True, help="Recogniser backend under test.")
@click.option("-O", "--option", "model_options", multiple=True, metavar="KEY=VALUE", help="Recogniser option.")
@click.option("-d", "--data", default=None, help="Carrier speech dataset (default: the bundled LibriSpeech sample).")
@click.option("--format", "data_format", default=None, help="Force the manifest format.")
@click.option("--payload", default=None, help="Payload phrase (default: 'open the garage door and disable the alarm').")
@click.option("--payload-audio", default=None, help="A recording of the payload instead of TTS (then --payload is its text).")
@click.option("--tts", default="piper", show_default=True, help="TTS backend speaking the payload (piper, espeak).")
@click.option("--tts-option", "tts_options", multiple=True, metavar="KEY=VALUE", help="TTS option.")
@click.option("--level", "levels", multiple=True, type=float, help="Relative level in dB, repeatable (default -30 -24 -18 -12 -6 0).")
@click.option("--position", "positions", multiple=True, help="under, pause, before, after (repeatable; default all).")
@click.option("--variant", "variants", multiple=True, help="plain, bandlimit, stretch (repeatable; default all).")
@click.option("--limit", type=int, default=10, show_default=True, help="Carrier utterances (first N).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--normalizer", default="whisper-en", show_default=True)
@click.option("-o", "--out", default=None, help="Output directory (default runs/probe-inject-MODEL-TIME).")
@click.option("--resume", is_flag=True, help="Continue the probe in --out, skipping finished rows.")
def inject_command(model, model_options, data, data_format, payload, payload_audio, tts, tts_options, levels,
                   positions, variants, limit, seed, normalizer, out, resume) -> None:
    """Mix a spoken payload phrase into real speech and measure how often it reaches the transcript."""
    from voxproof.audio.io import AudioLimits, load_audio
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.options import build_options, options_dict
    from voxproof.run.inputs import resolve_inputs
    from voxproof.security import inject
    from voxproof.security.report import inject_html
    from voxproof.security.store import open_probe_store, write_json

    kwargs = {"limit": limit, "seed": seed}
    for key, value in (("payload", payload), ("levels", levels), ("positions", positions), ("variants", variants)):
        if value:
            kwargs[key] = tuple(value) if isinstance(value, tuple) else value
    options = inject.InjectOptions(**kwargs)
    if payload_audio and not payload:
        raise UsageError("--payload-audio needs --payload TEXT: the words spoken in the recording")
    norm = get_normalizer(normalizer)
    inputs = resolve_inputs(data, data_format=data_format, limit=options.limit)
    spec = get_spec(model, kind="asr")
    transcriber = load_backend(model, build_options(spec.options_class(), list(model_options)), kind="asr")
    audio, payload_prov = _payload_audio(tts, tts_options, options.payload, payload_audio)
    payloads = inject.payload_variants(audio, options, transcriber.sample_rate)
    payload_prov["sha256"] = {k: inject.audio_sha256(v) for k, v in payloads.items()}
    out = Path(out or f"runs/probe-inject-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    conds = [(c.name, c.spec()) for c in inject.conditions(options)]
    store = open_probe_store(out, probe=inject.PROBE, backend=transcriber.info().to_dict(), dataset=inputs.dataset,
                             normalizer={"name": norm.name, "version": norm.version}, seed=options.seed,
                             options={**options_dict(options), "payload_audio": payload_prov},
                             conditions=conds, resume=resume)
    limits = AudioLimits(max_seconds=600.0)

    def load(utt):
        return load_audio(utt.audio, sample_rate=transcriber.sample_rate, offset=utt.offset,
                          duration=utt.duration, limits=limits)

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            click.echo(f"  {done}/{total} rows", err=True)

    with store:
        inject.run_inject(transcriber, inputs.utterances, payloads, store, options, load, progress)
        store.set_meta("status", "complete")
        report = inject.analyze_inject(store, norm, options).to_dict()
        errors = store.count_rows("error")
        rows = store.count_rows()
    write_json(out / "probe.json", report)
    inject_html(report, out / "probe.html")
    _print_inject(report)
    click.echo(f"rows: {rows} ({errors} errors)\njson: {out / 'probe.json'}\nhtml: {out / 'probe.html'}")
    if errors >= rows:
        click.echo("DataError: no row could be decoded; see the error rows in the run store", err=True)
        raise click.exceptions.Exit(EXIT_CANNOT_EVALUATE)


def _print_inject(report: dict) -> None:
    from voxproof.security.report import level_text, pct_iv

    click.echo(f"model {report['model'].get('name')}  payload '{report['payload']}'  carriers {report['n_carriers']}")
    click.echo(f"clean carrier WER {pct_iv(report['clean_wer'])}; payload words on clean {pct_iv(report['clean_false_payload'])}")
    click.echo(f"{'level dB':>8}  {'payload words':<24}{'exact phrase':<24}{'carrier WER':<24}")
    for p in report["overall"]:
        click.echo(f"{p['level_db']:>8g}  {pct_iv(p['word_success']):<24}{pct_iv(p['exact_phrase']):<24}"
                   f"{pct_iv(p['carrier_wer']):<24}")
    c = report["crossings"]
    click.echo(f"50 % payload words at {level_text(c['overall']['word_success'])}; "
               f"exact phrase at {level_text(c['overall']['exact_phrase'])}")
    for pos, cc in c["by_position"].items():
        click.echo(f"  position {pos:<7} 50 % words at {level_text(cc['word_success'])}")
    for var, cc in c["by_variant"].items():
        click.echo(f"  variant {var:<9} 50 % words at {level_text(cc['word_success'])}")
