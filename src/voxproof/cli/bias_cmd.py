"""``voxproof bias-eval``: Whisper with and without a per-utterance biasing list as its ``initial_prompt``;
biased and unbiased WER of both, with intervals and the paired change (:mod:`voxproof.metrics.biasing`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _iv(d) -> str:
    if d.get("estimate") is None:
        return "n/a (no reference words)"
    if d.get("low") is None:
        return _pct(d["estimate"])
    return f"{_pct(d['estimate'])} [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"


@click.command("bias-eval")
@click.option("-d", "--data", default=None, help="Dataset (default: the bundled LibriSpeech test-other sample).")
@click.option("--lists", "lists_file", type=click.Path(dir_okay=False), default=None,
              help="Biasing lists, lines UTT_ID<TAB>phrase|phrase|... Default: built from the references "
                   "(each utterance's rare words plus --distractors from other utterances).")
@click.option("--distractors", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Distractor words per list when lists are built from the references.")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Whisper option, repeatable.")
@click.option("--normalizer", default="whisper-en", show_default=True, help="Normaliser for every WER.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Only the first N utterances.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed for distractors and bootstrap.")
@click.option("--resamples", "n_resamples", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: lists.tsv, runs without/ and with/, bias.json.")
def bias_eval_command(data, lists_file, distractors, options, normalizer, limit, seed, n_resamples, out) -> None:
    """What biasing buys on list words (B-WER) and costs elsewhere (U-WER): every utterance decoded
    by Whisper without a prompt and with its list as the initial_prompt. The two runs are ordinary
    runs: 'voxproof compare OUT/without OUT/with' and 'voxproof score' work on them."""
    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import load_backend
    from voxproof.errors import UsageError
    from voxproof.manifest.bundled import bundled_dataset_path
    from voxproof.manifest.hashing import dataset_hash
    from voxproof.manifest.reader import read_manifest
    from voxproof.metrics import biasing
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.provenance import build_provenance
    from voxproof.run.records import ResultRow
    from voxproof.run.store import RunStore

    norm = get_normalizer(normalizer)
    source = data or str(bundled_dataset_path())
    utts = list(read_manifest(source, limit=limit))
    if any(o.split("=", 1)[0].strip() == "initial_prompt" for o in options):
        raise UsageError("initial_prompt is what bias-eval sets per utterance; leave it out of -O")
    out = Path(out)
    if (out / "without").exists() or (out / "with").exists():
        raise UsageError(f"{out} already holds a bias evaluation; give a new --out folder")
    refs = {u.id: u.text or "" for u in utts}
    lists = (biasing.parse_lists(lists_file, list(refs)) if lists_file
             else biasing.build_lists(refs, norm, distractors=distractors, seed=seed))
    out.mkdir(parents=True, exist_ok=True)
    (out / "lists.tsv").write_text(biasing.format_lists(lists), encoding="utf-8")
    backend = load_backend("whisper", kind="asr", pairs=list(options))
    info = backend.info()
    ds = {"source": source, "hash": dataset_hash(utts), "utterances": len(utts)}
    stores = {}
    for label in ("without", "with"):
        prov = build_provenance(backend={**info.to_dict(), "bias": label}, dataset=ds, normalizer=norm.to_dict(),
                                seed=seed, run_options={"bias_lists": lists_file or f"built, {distractors} distractors"},
                                conditions=[{"name": "clean", "chain": []}])
        prov["dataset_hash"] = ds["hash"]
        stores[label] = RunStore.create(out / label, prov)
    hyps: dict[str, list[str]] = {"without": [], "with": []}
    try:
        for i, u in enumerate(utts):
            audio = load_audio(u.audio, sample_rate=16000, offset=u.offset, duration=u.duration)
            prompt = ", ".join(lists.get(u.id, ())) or None
            for label, p in (("without", None), ("with", prompt)):
                start = time.perf_counter()
                t = backend.transcribe(audio, initial_prompt=p)
                row = ResultRow(u.id, "clean", "ok", reference=u.text, hypothesis=t.text, transcript=t,
                                audio_duration=audio.duration, processing_time=time.perf_counter() - start,
                                speaker=u.speaker, tags=dict(u.tags))
                stores[label].add_row(row, i)
                hyps[label].append(t.text)
        for s in stores.values():
            s.set_meta("status", "complete")
    finally:
        for s in stores.values():
            s.close()
        if hasattr(backend, "close"):
            backend.close()
    ref_list = [u.text or "" for u in utts]
    ulists = [lists.get(u.id, ()) for u in utts]
    speakers = [u.speaker for u in utts]
    groups = speakers if all(s is not None for s in speakers) and len(set(speakers)) >= 2 else None
    boot = {"n_resamples": n_resamples, "seed": seed, "level": 0.95}
    counts = {k: biasing.per_utterance(ref_list, hyps[k], ulists, norm) for k in hyps}
    scores = {k: biasing.score_setting(k, counts[k], groups, **boot) for k in counts}
    change = biasing.compare_settings(counts["without"], counts["with"], groups, **boot)
    report = {"type": "bias_evaluation", "normalizer": norm.to_dict(), "utterances": len(utts),
              "list_words": sum(len(x) for x in ulists), "settings": {k: v.to_dict() for k, v in scores.items()},
              "change_with_biasing": change, "lists": str(out / "lists.tsv")}
    (out / "bias.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    click.echo(f"{len(utts)} utterances, {report['list_words']} list phrases ({'from ' + lists_file if lists_file else 'built from the references'})")
    click.echo(f"{'setting':<9} {'WER':>8}  {'B-WER [95% CI]':<24} {'U-WER [95% CI]':<24} list recall  list insertions")
    for k, s in scores.items():
        d = s.to_dict()
        wer = (s.biased + s.unbiased).error_rate
        click.echo(f"{k:<9} {_pct(wer):>8}  {_iv(d['b_wer']):<24} {_iv(d['u_wer']):<24} "
                   f"{_pct(d['list_recall']):>11}  {d['list_insertions']:>15}")
    for name in ("b_wer", "u_wer"):
        c = change[name]
        wil = next(t for t in c["tests"] if t["name"] == "wilcoxon")
        click.echo(f"change with biasing, {name.replace('_', '-').upper()}: {_iv(c['difference'])}  "
                   f"(Wilcoxon p {wil['p_value'] if wil['p_value'] is None else format(wil['p_value'], '.3g')})")
    click.echo(f"bias.json: {out / 'bias.json'}\nruns: {out / 'without'}  {out / 'with'}")
