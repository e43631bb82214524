"""Timing of cpWER, DER and JER on a synthetic 1-hour, 4-speaker session (seeded), voxproof against
MeetEval (cpWER) and pyannote.metrics (DER, JER) when they are installed, with the figures each gives.

    python benchmarks/multispeaker_timing.py [--hours 1] [--speakers 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from voxproof.metrics.multispeaker import cp_wer, diarization_errors, orc_wer, tcp_wer
from voxproof.metrics.segments import Segment

VOCAB = [f"w{i}" for i in range(2000)]


def session(rng: random.Random, hours: float, speakers: int) -> tuple[list[Segment], list[Segment]]:
    ref, hyp, t, last = [], [], 0.0, {}
    while t < hours * 3600:
        spk = f"s{rng.randrange(speakers)}"
        start = max(t + rng.uniform(-0.5, 1.0), last.get(spk, 0.0), 0.0)
        end = start + rng.uniform(1.0, 8.0)
        words = [rng.choice(VOCAB) for _ in range(int((end - start) * 2.5))]
        ref.append(Segment("meeting", spk, round(start, 2), round(end, 2), " ".join(words)))
        hw = [w if rng.random() > 0.15 else rng.choice(VOCAB) for w in words if rng.random() > 0.05]
        hs = "h" + spk[1:] if rng.random() > 0.1 else f"h{rng.randrange(speakers)}"
        hyp.append(Segment("meeting", hs, round(start + rng.uniform(-0.2, 0.2), 2), round(end + rng.uniform(-0.2, 0.2), 2),
                           " ".join(hw)))
        t, last[spk] = end, end
    return ref, hyp


def clock(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--speakers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ref, hyp = session(random.Random(a.seed), a.hours, a.speakers)
    hyp_nso = []  # hypothesis without self-overlap, so pyannote's convention agrees (see multispeaker docs)
    last: dict[str, float] = {}
    for s in sorted(hyp, key=lambda s: s.start):
        start = max(s.start, last.get(s.speaker, 0.0))
        if start < s.end:
            hyp_nso.append(Segment(s.session, s.speaker, start, s.end, s.words))
            last[s.speaker] = s.end
    print(f"{a.hours:g} h, {a.speakers} speakers, {len(ref)} reference segments, "
          f"{sum(len(s.words.split()) for s in ref)} words; load {os.getloadavg()[0]:.1f}")
    c, t = clock(lambda: cp_wer(ref, hyp_nso))
    print(f"voxproof cpWER {c.error_rate:.4%} ({c.errors}/{c.length}) in {t:.2f} s")
    c, t = clock(lambda: tcp_wer(ref, hyp_nso, collar=5.0))
    print(f"voxproof tcpWER {c.error_rate:.4%} ({c.errors}/{c.length}, collar 5 s) in {t:.2f} s")
    d, t = clock(lambda: diarization_errors(ref, hyp_nso, collar=0.25))
    print(f"voxproof DER {d.der:.4%} JER {d.jer:.4%} (collar 0.25) in {t:.2f} s")
    seg = None
    try:
        from meeteval.io import SegLST
        from meeteval.wer.wer.cp import cp_word_error_rate_multifile

        seg = lambda ss: SegLST([{"session_id": s.session, "speaker": s.speaker, "start_time": s.start,
                                  "end_time": s.end, "words": s.words} for s in ss])
        m, t = clock(lambda: cp_word_error_rate_multifile(seg(ref), seg(hyp_nso))["meeting"])
        print(f"MeetEval cpWER {m.error_rate:.4%} ({m.errors}/{m.length}) in {t:.2f} s")
        from meeteval.wer.wer.time_constrained import tcp_word_error_rate_multifile

        m, t = clock(lambda: tcp_word_error_rate_multifile(seg(ref), seg(hyp_nso), collar=5.0)["meeting"])
        print(f"MeetEval tcpWER {m.error_rate:.4%} ({m.errors}/{m.length}, collar 5 s) in {t:.2f} s")
    except ImportError:
        print("MeetEval not installed: pip install meeteval")
    first = [s for s in ref if s.end <= 60.0]
    first_h = [s for s in hyp_nso if s.end <= 60.0]
    o, t = clock(lambda: orc_wer(first, first_h))
    print(f"voxproof ORC-WER on the first minute {o.error_rate:.4%} ({o.errors}/{o.length}) in {t:.2f} s "
          "(the whole hour is refused: its state space is the product of the streams' lengths)")
    try:
        from meeteval.wer.wer.orc import orc_word_error_rate_multifile

        m, t = clock(lambda: orc_word_error_rate_multifile(seg(first), seg(first_h))["meeting"])
        print(f"MeetEval ORC-WER on the first minute {m.error_rate:.4%} ({m.errors}/{m.length}) in {t:.2f} s")
        try:
            m, t = clock(lambda: orc_word_error_rate_multifile(seg(ref), seg(hyp_nso))["meeting"])
            print(f"MeetEval ORC-WER on the hour {m.error_rate:.4%} ({m.errors}/{m.length}) in {t:.2f} s")
        except MemoryError as exc:
            print(f"MeetEval ORC-WER on the hour: n/a ({str(exc).splitlines()[0]})")
    except ImportError:
        pass
    try:
        from pyannote.core import Annotation
        from pyannote.core import Segment as PS
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

        def ann(ss):
            x = Annotation(uri="meeting")
            for i, s in enumerate(ss):
                x[PS(s.start, s.end), i] = s.speaker
            return x

        r, h = ann(ref), ann(hyp_nso)
        der, t = clock(lambda: DiarizationErrorRate(collar=0.25)(r, h))
        print(f"pyannote DER {der:.4%} in {t:.2f} s")
        jer, t = clock(lambda: JaccardErrorRate(collar=0.25)(r, h))
        print(f"pyannote JER {jer:.4%} in {t:.2f} s")
    except ImportError:
        print("pyannote.metrics not installed: pip install pyannote.metrics")


if __name__ == "__main__":
    main()
