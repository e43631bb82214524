"""Cost of each perturbation, and of the whole noise-ladder suite relative to Whisper tiny.en model time.

Baseline (measured in the same run): Whisper tiny.en (voxproof ``whisper`` backend, int8) transcribing
the same utterances. Costs are CPU seconds per second of audio ("x real time per core"): process CPU
time plus the CPU time of child processes (ffmpeg, SoX), so a perturbation's cost does not depend on how
busy the machine is. The noise-ladder overhead is (CPU of 6 noise conditions) / (CPU of Whisper on
the same 6 perturbed inputs); the issue's target is under 5 %.

    python benchmarks/perturb_speed.py [--utterances 10] [--data PATH]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

KINDS = [
    "noise:snr=10", "noise:white,snr=10", "noise:pink,snr=10", "noise:babble,snr=10", "reverb:medium_hall",
    "room:0.6s", "codec:mp3,bitrate=16k", "codec:opus,bitrate=8k", "codec:amr-nb,bitrate=7.4k",
    "codec:mulaw", "codec:gsm", "codec:g722", "telephone:mulaw", "speed:1.1", "tempo:1.1", "gain:-20",
    "clip:0.05", "loss:0.1,burst=2", "bandlimit:4000",
]


def cpu() -> float:
    """CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    from voxproof.audio.features import signal_features
    from voxproof.audio.io import load_audio
    from voxproof.backends.registry import load_backend
    from voxproof.manifest.reader import read_manifest
    from voxproof.perturb import Condition, PerturbContext, condition_seed, parse_chain, resolve_conditions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                                / "librispeech-test-other-mini"))
    args = parser.parse_args(argv)

    every = list(read_manifest(args.data))
    step = max(1, len(every) // args.utterances)  # spread over speakers (babble needs others)
    utts = every[::step][: args.utterances]
    audios = {u.id: load_audio(u.audio, sample_rate=16000) for u in utts}
    total_s = sum(a.duration for a in audios.values())
    ctx = PerturbContext.from_utterances(utts, lambda u: audios[u.id])
    print(f"{len(utts)} utterances, {total_s:.1f} s of audio (LibriSpeech test-other)")

    # warm caches (noise bank, RIR bank, encoder probe, room RIRs) so steady-state cost is measured
    for text in KINDS:
        cond = Condition.from_chain(parse_chain(text))
        if cond.unavailable_reason() is None:
            cond.apply(audios[utts[0].id], 0, ctx.for_utterance(utts[0]))

    print(f"\n{'perturbation':<28}{'x real time/core':>18}{'wall x RT':>11}")
    for text in KINDS:
        cond = Condition.from_chain(parse_chain(text))
        reason = cond.unavailable_reason()
        if reason:
            print(f"{text:<28}{'unavailable: ' + reason}")
            continue
        c0, w0 = cpu(), time.perf_counter()
        for u in utts:
            cond.apply(audios[u.id], condition_seed(0, u.id, cond.name), ctx.for_utterance(u))
        c, w = cpu() - c0, time.perf_counter() - w0
        print(f"{text:<28}{c / total_s:>18.5f}{w / total_s:>11.5f}")

    for label, vad in (("features basic (no VAD)", False), ("features full (Silero VAD)", True)):
        c0 = cpu()
        for a in audios.values():
            signal_features(a, vad=vad)
        print(f"{label:<28}{(cpu() - c0) / total_s:>18.5f}")

    ladder = resolve_conditions(["noise-ladder"], [])
    backend = load_backend("whisper")
    perturbed = []
    c0 = cpu()
    for cond in ladder:
        for u in utts:
            perturbed.append(cond.apply(audios[u.id], condition_seed(0, u.id, cond.name), ctx.for_utterance(u)))
    perturb_cpu = cpu() - c0
    backend.transcribe(perturbed[0])  # warm-up
    c0, w0 = cpu(), time.perf_counter()
    for audio in perturbed:
        backend.transcribe(audio)
    model_cpu, model_wall = cpu() - c0, time.perf_counter() - w0
    print(f"\nnoise-ladder ({len(ladder)} conditions x {len(utts)} utterances = {len(perturbed)} inputs)")
    print(f"  perturbation CPU   {perturb_cpu:8.2f} s")
    print(f"  Whisper tiny.en    {model_cpu:8.2f} s CPU ({model_wall:.1f} s wall, "
          f"{model_cpu / (total_s * len(ladder)):.4f} x real time/core)")
    print(f"  overhead: perturbation adds {100 * perturb_cpu / model_cpu:.2f} % to model CPU time (target < 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
