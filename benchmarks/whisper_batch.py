"""Throughput of ``WhisperTranscriber.transcribe_batch`` and ``transcribe_packed`` against one-by-one
``transcribe``, same run.

Both sides use the same loaded Whisper tiny.en model (int8, greedy, word timestamps) on the LibriSpeech
test-other mini set (50 clips, ~6 min). Rounds alternate (one-by-one, batched, one-by-one, ...) so load
on the machine hits all alike. Also prints the WER of each side (jiwer + Whisper English normaliser),
because batched decoding drops temperature fallback and previous-text conditioning, and packed decoding
lets neighbouring clips act as context.

    python benchmarks/whisper_batch.py [--repeats 2] [--batch-size 8] [--threads 0] [--limit N]

Baseline: one-by-one ``transcribe``. Reported: audio seconds per wall second (RTFx) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    import jiwer
    import numpy as np
    import soundfile as sf
    from _bundled import data_dir
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxproof.audio.signal import Audio
    from voxproof.backends.whisper import WhisperOptions, WhisperTranscriber

    folder = data_dir()
    refs = dict(line.split("\t", 1) for line in (folder / "transcripts.tsv").read_text().splitlines())
    ids = sorted(refs)[: args.limit]
    audios = []
    for uid in ids:
        samples, rate = sf.read(str(folder / "audio" / f"{uid}.flac"), dtype="float32")
        audios.append(Audio(np.ascontiguousarray(samples), rate))
    audio_seconds = sum(a.duration for a in audios)

    started = time.perf_counter()
    model = WhisperTranscriber(WhisperOptions(batch_size=args.batch_size, cpu_threads=args.threads))
    print(f"model load {time.perf_counter() - started:.2f} s, {model.cpu_threads} threads, "
          f"{len(audios)} clips, {audio_seconds:.1f} s of audio")
    model.transcribe(audios[0])  # warm-up

    times: dict[str, list[float]] = {"one-by-one": [], "batched": [], "packed": []}
    texts: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, runs in times.items():
            t0 = time.perf_counter()
            if name == "one-by-one":
                out = [model.transcribe(a) for a in audios]
            elif name == "batched":
                out = model.transcribe_batch(audios)
            else:
                out = model.transcribe_packed(audios)
            runs.append(time.perf_counter() - t0)
            texts[name] = [t.text for t in out]

    norm = EnglishTextNormalizer()
    references = [norm(refs[i]) for i in ids]
    base = statistics.median(times["one-by-one"])
    for name, values in times.items():
        wall = statistics.median(values)
        wer = jiwer.wer(references, [norm(t) for t in texts[name]])
        print(f"{name:11s} median {wall:6.2f} s  RTFx {audio_seconds / wall:5.1f}  "
              f"speed vs one-by-one x{base / wall:4.2f}  WER {100 * wer:.1f} %  runs {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main()
