"""Speaker-verification EER of voxproof's numpy Resemblyzer encoder on real speakers, and how similar
synthetic voices are to a real speaker.

    python benchmarks/speaker_eer.py [--shared /work/shared/data] [--tts runs/tts]

Trials: every pair of utterances of the real speakers (LibriSpeech test-other: 5 speakers x 10
utterances; CMU ARCTIC aew and axb: 3 each; the LibriSpeech test-clean utterance of speaker 1995;
ARCTIC clips of unstated speaker are left out), same-speaker vs different-speaker, cosine score.
With ``--tts`` (a tts-eval output folder with kept audio), every synthetic clip of each system is
scored against each real speaker's centroid, next to the real same/different-speaker distributions.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np


def real_clips(shared: Path) -> list[tuple[str, Path]]:
    out = []
    for f in sorted((shared / "librispeech-test-other-mini" / "audio").glob("*.flac")):
        out.append((f.stem.split("-")[0], f))
    for f in sorted((shared / "cmu-arctic" / "audio").glob("cmu_arctic_us_*.wav")):
        out.append(("arctic-" + f.stem.split("_")[3], f))
    for f in sorted((shared / "librispeech-test-clean-1" / "audio").glob("*.*")):
        out.append((f.stem.split("-")[0], f))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data")
    ap.add_argument("--tts", default=None)
    args = ap.parse_args()
    from voxproof.audio.io import load_audio
    from voxproof.speaker.encoder import SpeakerEncoder
    from voxproof.tts.speaker import eer

    enc = SpeakerEncoder()
    print(f"encoder {enc.info().name} sha256 {enc.info().checksum[:16]}")
    clips = real_clips(Path(args.shared))
    t0 = time.perf_counter()
    seconds = 0.0
    emb = []
    for spk, path in clips:
        audio = load_audio(str(path))
        seconds += audio.duration
        emb.append((spk, enc.embed(audio)))
    wall = time.perf_counter() - t0
    print(f"{len(emb)} utterances of {len({s for s, _ in emb})} speakers, {seconds:.0f} s of audio embedded "
          f"in {wall:.1f} s wall")
    scores, same = [], []
    for (sa, ea), (sb, eb) in itertools.combinations(emb, 2):
        scores.append(float(ea @ eb))
        same.append(sa == sb)
    s, y = np.array(scores), np.array(same)
    rate, thr = eer(s, y)
    print(f"trials: {int(y.sum())} same-speaker, {int((~y).sum())} different-speaker")
    print(f"EER {100 * rate:.2f}% at cosine threshold {thr:.3f}")
    for label, v in (("same-speaker", s[y]), ("different-speaker", s[~y])):
        print(f"  {label:<18} cosine median {np.median(v):.3f}, 5-95% [{np.quantile(v, .05):.3f}, {np.quantile(v, .95):.3f}]")
    lib = [(sp, e) for sp, e in emb if not sp.startswith("arctic") and sp != "1995"]
    for sp_set, name in ((lib, "LibriSpeech test-other only"),):
        sc, sm = [], []
        for (sa, ea), (sb, eb) in itertools.combinations(sp_set, 2):
            sc.append(float(ea @ eb))
            sm.append(sa == sb)
        r, _t = eer(sc, sm)
        print(f"{name}: EER {100 * r:.2f}% ({sum(sm)} same / {len(sm) - sum(sm)} different trials)")
    if args.tts:
        speakers = sorted({sp for sp, _ in emb})
        centroid = {}
        for sp in speakers:
            m = np.mean([e for s2, e in emb if s2 == sp], axis=0)
            centroid[sp] = m / np.linalg.norm(m)
        root = Path(args.tts)
        print("synthetic voices vs each real speaker's centroid (max over speakers, median over clips):")
        for system in sorted(d.name for d in root.iterdir() if (d / "audio").is_dir()):
            es = [enc.embed(load_audio(str(f))) for f in sorted((root / system / "audio").glob("*.wav"))]
            es = [e for e in es if e is not None]
            best = [max(float(e @ centroid[sp]) for sp in speakers) for e in es]
            to1688 = [float(e @ centroid["1688"]) for e in es]
            self_sim = np.mean([float(a @ b) for a, b in itertools.combinations(es, 2)])
            print(f"  {system:<8} {len(es)} clips: best real speaker {np.median(best):.3f}, vs 1688 (male) "
                  f"{np.median(to1688):.3f}; voice consistency {self_sim:.3f}")


if __name__ == "__main__":
    main()
