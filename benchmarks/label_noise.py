"""Precision and recall of the label-noise finding (``transcript.asr_disagreement``) on a planted corpus.

Corpus (real audio from ../shared/data, see its README; transcripts planted by this script, seed 19):

- hard but correct: 30 LibriSpeech test-other utterances as recorded, 10 of them again mixed with
  kitchen/tap/bike noise at 3 dB SNR, the 10 CMU ARCTIC prompts (US and Indian-English speakers),
  10 Free Spoken Digit clips (8 kHz, French/German/Greek accents);
- label noise: the other 20 LibriSpeech utterances with their transcripts swapped (7), truncated to the
  first 40-60 % of the words (7) or with a block of 40 % of the words replaced by words of another
  transcript (6).

Every clip is decoded once by Whisper tiny.en, and the candidates (WER >= the rule's min_wer) once by
PocketSphinx, as ``audit --asr`` does (cached in --cache as JSON); then every item is
judged by the old rule (WER > 60 %, one recogniser) and by :func:`voxproof.audit.label_noise.judge`
with Whisper's word confidences alone, with the alignment shape, and with all three kinds of evidence.

    PYTHONPATH=src python benchmarks/label_noise.py [--cache /tmp/label-noise.json] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bundled import REPO, data_dir

SHARED = data_dir().parent


def _tsv(folder: Path) -> list[tuple[str, str, Path]]:
    out = []
    for line in (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            uid, text = line.split("\t", 1)
            audio = next((folder / "audio").glob(f"{uid}.*"))
            out.append((uid, text, audio))
    return out


def build_corpus(seed: int = 19) -> list[dict]:
    """Items ``{id, audio (path), noise (name or None), text, planted (kind or None), true_text}``."""
    rng = random.Random(seed)
    libri = _tsv(SHARED / "librispeech-test-other-mini")
    rng.shuffle(libri)
    clean, planted = libri[:30], libri[30:]
    items = [{"id": u, "audio": str(a), "noise": None, "text": t, "planted": None} for u, t, a in clean]
    noises = ["doing_the_dishes", "running_tap", "exercise_bike"]
    items += [{"id": f"{u}+noise", "audio": str(a), "noise": noises[k % 3], "text": t, "planted": None}
              for k, (u, t, a) in enumerate(clean[:10])]
    items += [{"id": u, "audio": str(a), "noise": None, "text": t, "planted": None} for u, t, a in _tsv(SHARED / "cmu-arctic")]
    digits = _tsv(SHARED / "fsdd-digits")
    accented = [d for d in digits if d[0].split("_")[1] in ("nicolas", "yweweler", "lucas", "george")]
    items += [{"id": u, "audio": str(a), "noise": None, "text": t, "planted": None} for u, t, a in rng.sample(accented, 10)]
    others = [t for _, t, _ in clean]
    for k, (u, t, a) in enumerate(planted):
        words = t.split()
        if k < 7:
            kind, text = "swapped", planted[(k + 1) % len(planted)][1]
        elif k < 14:
            kind, text = "truncated", " ".join(words[: max(1, round(len(words) * rng.uniform(0.4, 0.6)))])
        else:
            kind = "partly_wrong"
            n = max(2, round(len(words) * 0.4))
            start = rng.randrange(0, len(words) - n + 1)
            donor = rng.choice(others).split()
            text = " ".join(words[:start] + donor[:n] + words[start + n:])
        items.append({"id": f"{u}+{kind}", "audio": str(a), "noise": None, "text": text, "planted": kind})
    return items


def _audio(item: dict, rate: int):
    from voxproof.audio.io import load_audio
    from voxproof.audio.signal import Audio

    audio = load_audio(item["audio"], sample_rate=rate)
    if item["noise"]:
        noise = load_audio(str(REPO / "src/voxproof/data/noise" / f"{item['noise']}.flac"), sample_rate=rate).samples
        s = audio.samples
        n = np.resize(noise, s.shape)
        gain = np.sqrt(np.mean(s ** 2) / (np.mean(n ** 2) * 10 ** (3 / 10)))
        audio = Audio((s + gain * n).astype(np.float32), rate)
    return audio


def decode_all(items: list[dict], cache: Path) -> dict[str, dict]:
    from voxproof.audit.label_noise import Decoded, LabelNoiseRule
    from voxproof.backends.registry import load_backend
    from voxproof.metrics.align import word_counts
    from voxproof.metrics.normalize import get_normalizer

    norm = get_normalizer("whisper-en")
    done = json.loads(cache.read_text()) if cache.exists() else {}
    for name in ("whisper", "sphinx"):
        todo = [it for it in items if f"{name}:{it['id']}" not in done]
        if name == "sphinx":  # as in check_asr: the second recogniser runs on candidates only
            todo = [it for it in todo if word_counts(norm(it["text"]), norm(done[f"whisper:{it['id']}"]["text"]))
                    .error_rate >= LabelNoiseRule().min_wer]
        if not todo:
            continue
        backend = load_backend(name, kind="asr")
        for k, it in enumerate(todo):
            t = backend.transcribe(_audio(it, backend.sample_rate))
            done[f"{name}:{it['id']}"] = Decoded(t.text, tuple((w.text, w.confidence) for w in t.words)).to_json()
            if k % 10 == 9:
                cache.write_text(json.dumps(done))
                print(f"  {name}: {k + 1}/{len(todo)}", file=sys.stderr)
        cache.write_text(json.dumps(done))
    return done


def score(flags: list[bool], truth: list[bool]) -> dict:
    tp = sum(f and t for f, t in zip(flags, truth))
    fp = sum(f and not t for f, t in zip(flags, truth))
    fn = sum(t and not f for f, t in zip(flags, truth))
    return {"flagged": tp + fp, "true_positives": tp, "false_positives": fp, "missed": fn,
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default="/tmp/voxproof-label-noise.json")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from voxproof.audit.label_noise import Decoded, LabelNoiseRule, judge, label_noise_evidence
    from voxproof.metrics.normalize import get_normalizer

    norm = get_normalizer("whisper-en")
    items = build_corpus()
    decoded = decode_all(items, Path(args.cache))
    truth = [it["planted"] is not None for it in items]
    rows = []
    for it in items:
        first = Decoded.from_json(decoded[f"whisper:{it['id']}"])
        key = f"sphinx:{it['id']}"
        second = Decoded.from_json(decoded[key]) if key in decoded else None
        rows.append((it, label_noise_evidence(it["text"], first, second, norm),
                     label_noise_evidence(it["text"], first, None, norm),
                     label_noise_evidence(it["text"], Decoded(first.text), None, norm)))
    rule = LabelNoiseRule()
    variants = {
        "before: WER > 60 % (one recogniser)": [ev["wer"] > 0.6 for _, ev, _, _ in rows],
        "shape only (no confidences, no second recogniser)": [judge(bare, rule)[0] for _, _, _, bare in rows],
        "confidence + shape (Whisper only)": [judge(ev1, rule)[0] for _, _, ev1, _ in rows],
        "after: confidence + shape + PocketSphinx agreement": [judge(ev, rule)[0] for _, ev, _, _ in rows],
    }
    report = {"items": len(items), "label_noise": sum(truth), "hard_but_correct": len(items) - sum(truth),
              "rule": {k: getattr(rule, k) for k in rule.__dataclass_fields__}, "variants": {}}
    print(f"planted corpus: {len(items)} items, {sum(truth)} with wrong transcripts, {len(items) - sum(truth)} hard "
          "but correct")
    for name, flags in variants.items():
        s = score(flags, truth)
        report["variants"][name] = s
        p = "n/a (nothing flagged)" if s["precision"] is None else f"{s['precision']:.2f}"
        print(f"  {name:<52} precision {p}  recall {s['recall']:.2f}  ({s['true_positives']} right, "
              f"{s['false_positives']} false alarms, {s['missed']} missed)")
    after = variants["after: confidence + shape + PocketSphinx agreement"]
    before = variants["before: WER > 60 % (one recogniser)"]
    print("false alarms / misses after:")
    for (it, ev, _, _), f, b, t in zip(rows, after, before, truth):
        if f != t or b != t:
            print(f"  {'FLAG' if f else 'pass'} (before {'FLAG' if b else 'pass'}) {it['id']:<34} planted={it['planted']} "
                  f"{json.dumps(ev)}")
    if args.json:
        report["items_detail"] = [{"id": it["id"], "planted": it["planted"], "evidence": ev, "before": b, "after": f}
                                  for (it, ev, _, _), f, b in zip(rows, after, before)]
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
