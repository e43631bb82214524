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
@click.option("--limit", type=click.IntRange(1, None), default=10, show_default=True, help="Carrier utterances (first N).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
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


@probe_group.command("search")
@click.option("-m", "--model", default="whisper", show_default=True, help="Recogniser backend under attack.")
@click.option("-O", "--option", "model_options", multiple=True, metavar="KEY=VALUE", help="Recogniser option.")
@click.option("-d", "--data", default=None, help="Dataset (default: the bundled LibriSpeech sample).")
@click.option("--format", "data_format", default=None, help="Force the manifest format.")
@click.option("--objective", type=click.Choice(["wer", "deletions"]), default="wer", show_default=True)
@click.option("--placement", type=click.Choice(["additive", "prefix"]), default="additive", show_default=True,
              help="additive: tiled over the utterance; prefix: prepended once (muting attack).")
@click.option("--snr", "snr_db", type=float, default=10.0, show_default=True, help="SNR budget (dB, perturbation below speech).")
@click.option("--linf", type=float, default=0.05, show_default=True, help="L-inf budget (full scale 1.0).")
@click.option("--queries", "query_budget", type=int, default=240, show_default=True, help="Query budget on training clips.")
@click.option("--population", type=int, default=4, show_default=True, help="lambda: offspring per generation.")
@click.option("--train", type=int, default=4, show_default=True, help="Training clips.")
@click.option("--heldout", type=int, default=8, show_default=True, help="Held-apart clips (other speakers first).")
@click.option("--max-seconds", type=float, default=6.0, show_default=True, help="Use clips up to this long (CPU budget).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--normalizer", default="whisper-en", show_default=True)
@click.option("-o", "--out", default=None, help="Output directory (default runs/probe-search-MODEL-TIME).")
@click.option("--resume", is_flag=True, help="Continue the search in --out from its state file.")
def search_command(model, model_options, data, data_format, objective, placement, snr_db, linf, query_budget,
                   population, train, heldout, max_seconds, seed, normalizer, out, resume) -> None:
    """Gradient-free search for a universal perturbation under an SNR and L-inf budget; held-out WER vs
    queries, against random noise at the same budgets."""
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.options import build_options, options_dict
    from voxproof.security import search as S
    from voxproof.security.report import search_html
    from voxproof.security.store import open_probe_store, write_json

    options = S.SearchOptions(objective=objective, placement=placement, snr_db=snr_db, linf=linf,
                              query_budget=query_budget, population=population, train=train, heldout=heldout, seed=seed)
    if not (0.5 <= max_seconds <= 600):
        raise UsageError(f"--max-seconds must be between 0.5 and 600, got {max_seconds}")
    norm = get_normalizer(normalizer)
    train_clips, held_clips, dataset = _search_clips(data, data_format, options, max_seconds, norm)
    spec = get_spec(model, kind="asr")
    transcriber = load_backend(model, build_options(spec.options_class(), list(model_options)), kind="asr")
    if transcriber.sample_rate != S.SR:
        raise UsageError(f"the search works at {S.SR} Hz; backend {model} wants {transcriber.sample_rate} Hz")
    out = Path(out or f"runs/probe-search-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    searched, random = S.heldout_perturbers(options, S.Shaper(options))
    probe = S.Search(options, train_clips, lambda x: transcriber.transcribe(_audio(x)).text, norm, out / S.STATE_NAME)
    conds = [(S.checkpoint_name(m), {"kind": "search", "queries": m}) for m in probe.checkpoint_queries()]
    conds += [(S.random_name(options, d), {"kind": "random-noise", "snr_db": options.snr_db, "linf": options.linf, "draw": d})
              for d in range(options.random_draws)]
    store = open_probe_store(out, probe=S.PROBE, backend=transcriber.info().to_dict(), dataset=dataset,
                             normalizer={"name": norm.name, "version": norm.version}, seed=seed,
                             options={**options_dict(options), "train_ids": [c.utt_id for c in train_clips],
                                      "max_seconds": max_seconds}, conditions=conds, resume=resume)
    if not resume and (out / S.STATE_NAME).exists():
        raise UsageError(f"{out / S.STATE_NAME} exists; pass --resume or choose another --out")
    positions = {c.utt_id: i for i, c in enumerate(held_clips)}
    specs = dict(conds)

    def on_checkpoint(mark, theta):
        name = S.checkpoint_name(mark)
        S.decode_rows(store, transcriber, held_clips, name, searched(theta), specs[name], positions)
        click.echo(f"  checkpoint {mark} queries: held-out rows done", err=True)

    with store:
        S.decode_rows(store, transcriber, held_clips, "clean", lambda c: c.samples, {}, positions)
        for d in range(options.random_draws):
            S.decode_rows(store, transcriber, held_clips, S.random_name(options, d), random(d),
                          specs[S.random_name(options, d)], positions)
        state = probe.run(on_checkpoint)
        store.set_meta("status", "complete")
        report = S.analyze_search(store, state, norm, options)
    write_json(out / "probe.json", report)
    search_html(report, out / "probe.html")
    _print_search(report)
    click.echo(f"json: {out / 'probe.json'}\nhtml: {out / 'probe.html'}\nstate: {out / S.STATE_NAME}")


def _audio(samples):
    from voxproof.audio.signal import Audio

    return Audio(samples, 16000)


def _search_clips(data, data_format, options, max_seconds, norm):
    """Training and held-apart clips: utterances up to ``max_seconds``, shuffled with the seed; held-out
    clips prefer speakers not in the training set."""
    import numpy as np

    from voxproof.audio.io import AudioLimits, load_audio
    from voxproof.errors import DataError
    from voxproof.run.inputs import resolve_inputs
    from voxproof.security.search import Clip

    inputs = resolve_inputs(data, data_format=data_format)
    limits = AudioLimits(max_seconds=max_seconds + 0.5)
    clips = []
    for utt in inputs.utterances:
        try:
            audio = load_audio(utt.audio, sample_rate=16000, offset=utt.offset, duration=utt.duration, limits=limits)
        except Exception:  # noqa: BLE001, S112 - too long or unreadable: not a candidate for this CPU-bounded probe
            continue
        if audio.duration <= max_seconds and utt.text:
            clips.append(Clip(utt.id, utt.speaker, utt.text, tuple(norm(utt.text).split()), audio.samples))
    order = np.random.default_rng(options.seed).permutation(len(clips))
    clips = [clips[i] for i in order]
    if len(clips) < options.train + options.heldout:
        raise DataError(f"only {len(clips)} readable clips up to {max_seconds:g} s; need {options.train} training + "
                        f"{options.heldout} held-out (raise --max-seconds or lower --train/--heldout)")
    train = clips[: options.train]
    speakers = {c.speaker for c in train}
    rest = sorted(clips[options.train:], key=lambda c: c.speaker in speakers and c.speaker is not None)
    held = rest[: options.heldout]
    dataset = {**inputs.dataset, "train_ids": [c.utt_id for c in train], "heldout_ids": [c.utt_id for c in held]}
    return train, held, dataset


def _print_search(report: dict) -> None:
    from voxproof.security.report import pct_iv

    o = report["options"]
    click.echo(f"model {report['model'].get('name')}  {report['method']}  objective {o['objective']}  "
               f"placement {o['placement']}  SNR {o['snr_db']:g} dB  L-inf {o['linf']:g}")
    click.echo(f"queries used {report['queries_used']}, generations {report['generations']}, "
               f"improvements {report['accepted_improvements']}")
    click.echo(f"held-out clean: WER {pct_iv(report['clean']['wer'])}  deletions {pct_iv(report['clean']['deletion_rate'])}")
    click.echo(f"random noise  : WER {pct_iv(report['random_noise']['wer'])}  deletions {pct_iv(report['random_noise']['deletion_rate'])}")
    for p in report["curve"]:
        click.echo(f"after {p['queries']:>5} queries: held-out WER {pct_iv(p['wer'])}  deletions "
                   f"{pct_iv(p['deletion_rate'])}  (train objective {100 * p['train_objective']:.1f} %)")
    paired = report.get("paired_final_vs_random")
    if paired:
        d = paired["difference"]
        click.echo(f"final minus random noise (held-out, paired): {pct_iv(d)}")


@probe_group.command("detect")
@click.option("--pair", "pairs", nargs=2, multiple=True, required=True, metavar="RUN_A RUN_B",
              help="Two run/probe directories over the same audio by two recognisers (repeatable).")
@click.option("--target-false-alarm", type=float, default=0.05, show_default=True,
              help="Clean false-alarm rate the threshold is set for.")
@click.option("--normalizer", default="whisper-en", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("-o", "--out", default=None, help="Output directory (default runs/probe-detect-TIME).")
def detect_command(pairs, target_false_alarm, normalizer, seed, out) -> None:
    """Cross-model disagreement detector: AUROC attacked vs clean and false-alarm rates on clean and
    naturally noisy inputs."""
    from voxproof.errors import NotComparable
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.store import RunStore
    from voxproof.security.detect import analyze_pairs, pair_scores
    from voxproof.security.report import detect_html
    from voxproof.security.store import write_json

    norm = get_normalizer(normalizer)
    scored, sources, seen = [], [], set()
    for dir_a, dir_b in pairs:
        with RunStore.open(dir_a) as a, RunStore.open(dir_b) as b:
            pa, pb = a.provenance, b.provenance
            for key in ("dataset_hash", "seed", "conditions"):
                if pa.get(key) != pb.get(key):
                    raise NotComparable(f"{dir_a} and {dir_b} differ in {key}: they did not decode the same audio; "
                                        "run both recognisers with the same data, seed and conditions")
            # the same audio met twice (e.g. the clean rows of two probes over one dataset) counts once
            rows = [s for s in pair_scores(a, b, norm) if (pa.get("dataset_hash"), s.utt_id, s.condition) not in seen]
            seen.update((pa.get("dataset_hash"), s.utt_id, s.condition) for s in rows)
            scored += rows
            sources.append({"a": str(dir_a), "b": str(dir_b), "rows_paired": len(rows),
                            "model_a": (pa.get("backend") or {}).get("name"),
                            "model_b": (pb.get("backend") or {}).get("name"),
                            "checksum_a": (pa.get("backend") or {}).get("model_checksum"),
                            "checksum_b": (pb.get("backend") or {}).get("model_checksum")})
    report = {"probe": "detect", "schema": 1, "sources": sources, "normalizer": norm.name,
              **analyze_pairs(scored, target_false_alarm=target_false_alarm, seed=seed)}
    out = Path(out or f"runs/probe-detect-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "probe.json", report)
    detect_html(report, out / "probe.html")
    _print_detect(report)
    click.echo(f"json: {out / 'probe.json'}\nhtml: {out / 'probe.html'}")


def _auc_text(a: dict) -> str:
    if a.get("estimate") is None:
        return f"n/a ({a.get('why')})"
    return f"{a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}] ({a['n_pos']} vs {a['n_neg']})"


def _print_detect(report: dict) -> None:
    from voxproof.security.report import pct_iv

    click.echo(f"rows paired: {report['n_rows']}; threshold {report['threshold']:.3f} "
               f"(clean {1 - report['target_false_alarm']:.0%} quantile)")
    click.echo(f"AUROC attacked vs clean: {_auc_text(report['auroc_attacked_vs_clean'])}")
    click.echo(f"AUROC effective attacks (>=50 % payload words) vs clean: {_auc_text(report['auroc_effective_attacks_vs_clean'])}")
    for k, v in report["auroc_by_attack"].items():
        click.echo(f"  AUROC {k}: {_auc_text(v)}")
    ar = report["alarm_rate"]
    click.echo(f"alarm rate clean: {pct_iv(ar['clean'])}")
    if ar["attacked"]:
        click.echo(f"alarm rate attacked (detection): {pct_iv(ar['attacked'])}")
    for name, v in ar["natural"].items():
        click.echo(f"false alarms {name}: {pct_iv(v)}")
