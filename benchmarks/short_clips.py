"""Short clips: per-clip decoding vs ``eval --pack`` (several clips share one 30 s Whisper window).

Runs Whisper tiny.en on the same clips through the real runner (one worker), once per clip and
packed (in the corpus order and in a seeded shuffle), and reports for each data set: RTFx of both (audio seconds / decode wall seconds, model
load excluded), the speed-up, both WERs and the paired WER difference (packed - per-clip) with its
95 % bootstrap interval (voxproof's own ``compare``), and how many utterances changed text.

Data: the Free Spoken Digit clips of ../shared/data/fsdd-digits (8 kHz, one digit of ~0.4 s each; a
seeded sample of --digits of the 600), and the bundled LibriSpeech test-other mini set (50 utterances,
2-35 s; packed with --pack-max-s 27 so every clip that fits a window is packed). Target: RTFx >= 5 packed
on the digits.

    PYTHONPATH=src python benchmarks/short_clips.py [--digits 300] [--out /tmp/short-clips] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bundled import data_dir


def measure(name: str, utts: list, out: Path, pack_max_s: float, reuse: bool = False) -> dict:
    from voxproof.backends.whisper import WhisperTranscriber
    from voxproof.manifest import dataset_hash
    from voxproof.metrics.compare import compare_runs
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import RunStore

    norm = {"name": "whisper-en", "version": "1"}
    ds = {"hash": dataset_hash(utts), "utterances": len(utts), "source": name}
    result: dict = {"data": name, "utterances": len(utts)}
    dirs = {}
    # Packed decoding depends on which clips share a window; a corpus stored in label order (all the
    # zeros, then the ones...) is its worst case, so the packed run is also measured in a seeded shuffle.
    shuffled = random.Random(0).sample(utts, len(utts))
    for mode, pack, order in (("per_clip", False, utts), ("packed", True, utts), ("packed_shuffled", True, shuffled)):
        d = out / f"{name}-{mode}"
        dirs[mode] = d
        if reuse and _complete(d):
            with RunStore.open(d) as store:
                res_meta, audio = store.meta("resources"), sum(r.audio_duration or 0.0 for r in store.rows())
            decode = res_meta["wall_seconds"] - res_meta["model_load_seconds"]
            result[mode] = {"rtfx": audio / decode, "decode_seconds": decode, "audio_seconds": audio,
                            "load_average": [res_meta["load_average"]["start"][0], res_meta["load_average"]["end"][0]]}
            continue
        shutil.rmtree(d, ignore_errors=True)
        load_before = os.getloadavg()[0]
        res = run_eval(WhisperTranscriber, order, d, normalizer=norm, dataset=ds,
                       options=RunOptions(features="none", pack=pack, pack_max_s=pack_max_s))
        with RunStore.open(d) as store:
            audio = sum(r.audio_duration or 0.0 for r in store.rows())
        decode = res.resources["wall_seconds"] - res.resources["model_load_seconds"]
        result[mode] = {"rtfx": audio / decode, "decode_seconds": decode, "audio_seconds": audio,
                        "load_average": [load_before, os.getloadavg()[0]]}
    for mode in ("packed", "packed_shuffled"):
        r = result[mode]
        r["speed_up"] = r["rtfx"] / result["per_clip"]["rtfx"]
        with RunStore.open(dirs["per_clip"]) as a, RunStore.open(dirs[mode]) as b:
            comp = compare_runs(a, b, n_resamples=2000, labels=("per-clip", mode))
            rows_a = {x.utt_id: x.hypothesis for x in a.rows()}
            changed = sum(1 for x in b.rows() if rows_a.get(x.utt_id) != x.hypothesis)
        c = comp.comparisons[0].to_dict()
        diff = c["difference"]
        r.update({"wer_per_clip": c["wer_a"], "wer_packed": c["wer_b"], "difference": diff["estimate"],
                  "interval": [diff["low"], diff["high"]], "interval_method": f"{diff['method']} bootstrap, "
                  f"blocked by {diff['blocked_by'] or 'utterance'}", "changed_text": changed,
                  "notes": list(comp.notes)})
    return result


def _complete(d: Path) -> bool:
    from voxproof.run.store import RunStore, store_path

    if not store_path(d).exists():
        return False
    with RunStore.open(d) as store:
        return store.meta("status") == "complete"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digits", type=int, default=300, help="digit clips sampled (seed 0) from the 600")
    ap.add_argument("--out", default="/tmp/voxproof-short-clips")
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-librispeech", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse finished runs in --out instead of decoding again")
    args = ap.parse_args()
    from voxproof.manifest import bundled_dataset_path, read_manifest
    from voxproof.run.sampling import stratified_sample

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    digits = list(read_manifest(data_dir().parent / "fsdd-digits"))
    # speaker from the file name (DIGIT_SPEAKER_TAKE) so the sample and the interval are speaker-stratified
    from dataclasses import replace

    digits = [replace(u, speaker=u.id.split("_")[1]) for u in digits]
    results = [measure("fsdd-digits", stratified_sample(digits, args.digits, 0), out, pack_max_s=8.0, reuse=args.reuse)]
    if not args.skip_librispeech:
        results.append(measure("librispeech-test-other-mini", list(read_manifest(bundled_dataset_path())), out,
                               pack_max_s=27.0, reuse=args.reuse))
    for res in results:
        base = res["per_clip"]
        print(f"{res['data']}: {res['utterances']} clips, {base['audio_seconds']:.0f} s of audio; per-clip RTFx "
              f"{base['rtfx']:.2f} (load average {base['load_average'][0]:.1f}-{base['load_average'][1]:.1f})")
        for mode in ("packed", "packed_shuffled"):
            r = res[mode]
            print(f"  {mode:<16} RTFx {r['rtfx']:.2f}, speed-up {r['speed_up']:.1f}x (load average "
                  f"{r['load_average'][0]:.1f}-{r['load_average'][1]:.1f}); WER per-clip {_pct(r['wer_per_clip'])}, "
                  f"packed {_pct(r['wer_packed'])}; packed - per-clip {_pct(r['difference'])} "
                  f"[{_pct(r['interval'][0])}, {_pct(r['interval'][1])}] 95 % ({r['interval_method']}); "
                  f"{r['changed_text']} of {res['utterances']} hypotheses changed")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
