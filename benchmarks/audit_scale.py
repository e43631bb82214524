"""Audit at scale: a generated manifest of N short items (real clips from ../shared/data re-used with
perturbations) audited end to end; reports items/s, real-time multiple per core, peak memory, and the
near-duplicate search time per size against a brute-force pairwise baseline measured in the same run.

    python benchmarks/audit_scale.py --counts 10000,100000 --workdir /tmp/voxproof-audit-scale

How the data is made (kept under --workdir, never in the tree):
- "banks": long 16 kHz WAV files, each a chain of real clips (LibriSpeech test-other, CMU ARCTIC, FSDD
  digits, AMI) with a random gain, a random speed factor in [0.8, 1.25] (resampling), a second talker
  (another clip at its own speed and offset, 2-6 dB below) and background noise (Speech Commands noise)
  at a random SNR of 10-35 dB. The second talker keeps the generated corpus from being full of accidental
  near duplicates: 30 hours made from ~20 minutes of real speech re-use every clip ~100 times, and two
  uses at near-equal speeds hold the same audio; with a different talker over each use they no longer
  do, so true duplicates stay near the planted 1 % at every size, as in a real corpus;
- items: non-overlapping 0.6-1.6 s segments of the banks (offset + duration in the manifest), with a
  random transcript of matching length;
- planted near duplicates (1 % of items): a copy of another item's segment at another gain, trimmed by
  0.03-0.12 s at each end, written as its own WAV (every tenth re-encoded to MP3 at 48 kbit/s); the
  benchmark reports how many of these the audit finds (recall at scale).

Memory: the audit streams the manifest into its on-disk store (OUT/audit-items.sqlite) and every stage
reads that store; the near-duplicate index holds at most ``max_entries`` entries at once and spills the
rest to temporary files. Peak RSS is read right after the audit returns (before this script's own
checks), for the main process and, sampled, for the worker processes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOXPROOF_SHARED_DATA", REPO.parent / "shared" / "data"))
SR = 16000
GENERATOR = 2  # bump when the generated data changes (files are reused by name)


def _clips() -> list[np.ndarray]:
    out = []
    for pattern in ("librispeech-test-other-mini/audio/*.flac", "cmu-arctic/audio/*.wav",
                    "fsdd-digits/audio/*.wav", "ami-excerpt/audio/*.wav"):
        for f in sorted(SHARED.glob(pattern)):
            x, sr = sf.read(f, dtype="float32")
            if x.ndim > 1:
                x = x[:, 0]
            out.append(soxr.resample(x, sr, SR) if sr != SR else x)
    return out


def _noise() -> np.ndarray:
    parts = []
    for f in sorted((SHARED / "noise").glob("*.wav")):
        x, sr = sf.read(f, dtype="float32")
        parts.append(soxr.resample(x, sr, SR) if sr != SR else x)
    return np.concatenate(parts)


def _words() -> list[str]:
    words = set()
    for line in (SHARED / "librispeech-test-other-mini" / "transcripts.tsv").read_text().splitlines():
        words.update(line.split("\t", 1)[1].split())
    return sorted(words)


def generate(count: int, workdir: Path, seed: int = 0) -> tuple[Path, dict]:
    """Write banks, planted copies and the manifest for ``count`` items; returns (manifest, facts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = workdir / f"items-{GENERATOR}-{count}.jsonl"
    facts_path = workdir / f"items-{GENERATOR}-{count}.facts.json"
    if manifest.exists() and facts_path.exists():
        return manifest, json.loads(facts_path.read_text())
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    clips, noise, vocab = _clips(), _noise(), _words()
    n_planted = count // 100
    n_segments = count - n_planted
    bank_seconds = 600.0
    banks_dir = workdir / "banks"
    banks_dir.mkdir(exist_ok=True)
    rows: list[dict] = []
    bank_idx = 0
    seg_total = 0
    audio_seconds = 0.0
    speakers = [f"spk{i:03d}" for i in range(60)]
    while seg_total < n_segments:
        bank_path = banks_dir / f"bank-{GENERATOR}-{seed}-{bank_idx:05d}.wav"
        pieces, length, spans = [], 0, []
        while length < bank_seconds * SR:
            ci = rng.randrange(len(clips))
            clip = clips[ci]
            speed = rng.uniform(0.8, 1.25)
            y = soxr.resample(clip, SR, int(SR / speed), "QQ") * rng.uniform(0.2, 1.0)
            c2 = rng.randrange(len(clips) - 1)
            c2 += c2 >= ci
            other = soxr.resample(clips[c2], SR, int(SR / rng.uniform(0.8, 1.25)), "QQ")
            other = np.roll(np.resize(other, len(y)), rng.randrange(len(y)))
            rel = 10 ** (-rng.uniform(2, 6) / 20) * np.sqrt(float(np.mean(y**2)) / (float(np.mean(other**2)) + 1e-9))
            y = y + rel * other
            start = rng.randrange(len(noise) - len(y)) if len(noise) > len(y) else 0
            nz = noise[start:start + len(y)]
            if len(nz) < len(y):
                nz = np.resize(nz, len(y))
            snr = rng.uniform(10, 35)
            p_s, p_n = float(np.mean(y**2)) + 1e-9, float(np.mean(nz**2)) + 1e-9
            y = y + nz * np.sqrt(p_s / (p_n * 10 ** (snr / 10)))
            pieces.append(np.clip(y, -1, 1).astype(np.float32))
            spans.append((length / SR, (length + len(y)) / SR, (ci, c2), start // (SR // 4)))
            length += len(y)
        bank = np.concatenate(pieces)
        if not bank_path.exists():
            sf.write(bank_path, bank, SR, subtype="PCM_16")
        pos = 0.0
        total = len(bank) / SR
        while seg_total < n_segments:
            dur = round(rng.uniform(0.6, 1.6), 3)
            if pos + dur > total:
                break
            n_words = max(1, int(dur * 2.6 + rng.uniform(-1, 1)))
            spk = speakers[(bank_idx * 7 + int(pos)) % len(speakers)]
            over = [sp for sp in spans if sp[0] < pos + dur and pos < sp[1]]
            used = sorted({c for sp in over for c in sp[2]})
            # noise pool position (0.25 s units) under this segment: lets the report tell matches that
            # come from the same real noise recording
            noise_at = sorted({sp[3] + int(max(0.0, pos - sp[0]) * 4) + k for sp in over for k in range(-8, 9)})
            rows.append({"id": f"b{bank_idx:05d}-{int(pos * 1000):07d}", "audio": str(bank_path), "offset": round(pos, 3),
                         "duration": dur, "text": " ".join(rng.choice(vocab) for _ in range(n_words)),
                         "speaker": spk, "language": "en",
                         "tags": {"gender": "F" if int(spk[3:]) % 2 else "M", "licence": "CC BY 4.0",
                                  "source": "generated from shared/data",
                                  "clips": ",".join(map(str, used)), "noise": ",".join(map(str, noise_at))}})
            audio_seconds += dur
            pos += dur + 0.05
            seg_total += 1
        bank_idx += 1
    copies_dir = workdir / f"copies-{GENERATOR}-{count}"
    copies_dir.mkdir(exist_ok=True)
    planted = []
    for k in range(n_planted):
        src = rows[rng.randrange(n_segments)]
        x, _ = sf.read(src["audio"], start=int(src["offset"] * SR), frames=int(src["duration"] * SR), dtype="float32")
        a, b = int(rng.uniform(0.03, 0.12) * SR), int(rng.uniform(0.03, 0.12) * SR)
        y = np.clip(x[a:len(x) - b] * rng.uniform(0.3, 1.5), -1, 1)
        path = copies_dir / f"copy-{k:06d}.wav"
        sf.write(path, y, SR, subtype="PCM_16")
        if k % 10 == 0:
            mp3 = path.with_suffix(".mp3")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-b:a", "48k", str(mp3)], check=True)
            path.unlink()
            path = mp3
        uid = f"copy-{k:06d}"
        rows.append({**src, "id": uid, "audio": str(path), "offset": 0.0, "duration": None})
        planted.append([uid, src["id"]])
        audio_seconds += len(y) / SR
    order = list(range(len(rows)))
    rng.shuffle(order)
    with manifest.open("w") as fh:
        for i in order:
            fh.write(json.dumps(rows[i]) + "\n")
    facts = {"items": len(rows), "planted": planted, "audio_seconds": audio_seconds, "banks": bank_idx}
    facts_path.write_text(json.dumps(facts))
    del nrng
    return manifest, facts


def brute_force_per_pair(prints: list, n: int = 600) -> float:
    """Seconds per pair for the quadratic baseline: every pair compared once at its best of 5 offsets
    around the start (a lower bound on what a pairwise search costs)."""
    from voxproof.audit.fingerprint import bit_error_rate

    sample = [p for p in prints if p is not None][:n]
    t = time.perf_counter()
    pairs = 0
    for i in range(len(sample)):
        for j in range(i + 1, len(sample)):
            for off in (-2, -1, 0, 1, 2):
                bit_error_rate(sample[i], sample[j], off)
            pairs += 1
    return (time.perf_counter() - t) / max(pairs, 1)


class _WorkerMemory(threading.Thread):
    """Largest peak RSS (VmHWM) of any descendant process, sampled every 0.5 s: the pool's workers are
    children of a fork server, so getrusage(RUSAGE_CHILDREN) does not see them."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_kb = 0

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        out, todo = [], [os.getpid()]
        while todo:
            for c in children.get(todo.pop(), []):
                out.append(c)
                todo.append(c)
        return out

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pid in self._descendants():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue


def run(count: int, workdir: Path, workers: int, vad: str, reuse_cache: bool, option_pairs: list[str]) -> dict:
    from voxproof.audit.runner import AuditOptions, run_audit
    from voxproof.options import build_options

    t = time.perf_counter()
    # generated in a child process, so this process's peak memory is the audit's alone
    subprocess.run([sys.executable, __file__, "--generate", str(count), "--workdir", str(workdir)], check=True)
    manifest, facts = generate(count, workdir)  # now only reads the files back
    gen_s = time.perf_counter() - t
    out = workdir / f"audit-{count}"
    if not reuse_cache and (out / "audit-cache.sqlite").exists():
        for f in out.glob("audit-cache.sqlite*"):
            f.unlink()
    sampler = _WorkerMemory()
    sampler.start()
    t = time.perf_counter()
    options = build_options(AuditOptions, [f"workers={workers}", f"vad={vad}", *option_pairs])
    result = run_audit(manifest, out_dir=out, options=options)
    wall = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = sampler.peak_kb / 1024
    an = result.stats["analysis"]
    idx = result.stats["near_duplicate_index"]
    clusters = [set(f.items) for f in result.findings if f.kind == "duplicate.near_audio"]
    member_of: dict[str, int] = {}
    for k, c in enumerate(clusters):
        for i in c:
            member_of[i] = k
    found = sum(1 for copy, src in facts["planted"] if copy in member_of and member_of.get(src) == member_of[copy])
    # every verified pair (from the findings' evidence) is put in one class: a planted copy, two segments
    # holding the same source clip (re-used at a near-equal speed), two segments over the same stretch of
    # the real noise recording, or none of these (a false match)
    def tagset(uid: str, key: str) -> set[str]:
        u = json.loads(result.store.scalar("SELECT utt FROM items WHERE side = 0 AND id = ?", (uid,)))
        return set((u.get("tags") or {}).get(key, "").split(",")) - {""}

    classes = {"planted": 0, "same_clip": 0, "same_noise": 0, "unexplained": 0}
    for f in result.findings:
        if f.kind != "duplicate.near_audio":
            continue
        for p in f.evidence.get("pairs", []):
            a, b = p["a"], p["b"]
            if a.startswith("copy-") or b.startswith("copy-"):
                classes["planted"] += 1
            elif tagset(a, "clips") & tagset(b, "clips"):
                classes["same_clip"] += 1
            elif tagset(a, "noise") & tagset(b, "noise"):
                classes["same_noise"] += 1
            else:
                classes["unexplained"] += 1
    prints = list(itertools.islice(iter(result.store.view("fp", [("side", 0)])), 600))
    per_pair = brute_force_per_pair(prints)
    brute_est = per_pair * count * (count - 1) / 2
    return {
        "items": count,
        "audio_hours": round(facts["audio_seconds"] / 3600, 2),
        "generate_s": round(gen_s, 1),
        "audit_wall_s": round(wall, 1),
        "items_per_s": round(count / wall, 1),
        "analysed": an["analysed"],
        "cached": an["cached"],
        "analysis_wall_s": round(an["wall_seconds"], 1),
        "analysis_cpu_s": round(an["cpu_seconds"], 1),
        "realtime_per_core": an["realtime_per_core"],
        "near_dup_search_s": round(idx["seconds"], 2),
        "near_dup_index_s": round(idx.get("index_seconds", 0.0), 2),
        "near_dup_verify_s": round(idx.get("verify_seconds", 0.0), 2),
        "near_dup_matches": idx["matches"],
        "near_dup_key_bits": idx.get("key_bits"),
        "indexed_frames": idx["indexed_frames"],
        "candidate_pairs": idx["candidate_pairs"],
        "planted_near_dups": len(facts["planted"]),
        "planted_found": found,
        "near_dup_clusters": len(clusters),
        "near_dup_pairs_by_class": classes,
        "brute_force_per_pair_us": round(per_pair * 1e6, 2),
        "brute_force_estimate_s": round(brute_est, 1),
        "index_vs_brute_force": round(idx["seconds"] / brute_est, 5) if brute_est else None,
        "peak_rss_main_mb": round(self_rss, 1),
        "peak_rss_worker_mb": round(child_rss, 1),
        "findings": len(result.findings),
        "timings": result.stats["timings"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="10000", help="comma-separated manifest sizes, e.g. 10000,100000")
    ap.add_argument("--workdir", default="/tmp/voxproof-audit-scale")
    ap.add_argument("--workers", type=int, default=0, help="0 = every core")
    ap.add_argument("--vad", default="energy", choices=("energy", "silero"))
    ap.add_argument("--reuse-cache", action="store_true", help="keep the per-item cache of an earlier run")
    ap.add_argument("-O", dest="options", action="append", default=[], metavar="NAME=VALUE",
                    help="audit option, e.g. -O min_snr_db=-50 (repeatable)")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    results = []
    for count in counts:
        # each size in its own process so peak memory is per size
        cmd = [sys.executable, __file__, "--one", str(count), "--workdir", args.workdir, "--workers", str(args.workers),
               "--vad", args.vad] + (["--reuse-cache"] if args.reuse_cache else []) + [f"-O{o}" for o in args.options]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        print(json.dumps(res))
    print(f"\ncores: {os.cpu_count()}, workers: {args.workers or os.cpu_count()}, vad: {args.vad}"
          + (f", options: {' '.join(args.options)}" if args.options else ""))
    print(f"{'items':>8} {'hours':>6} {'items/s':>8} {'RT/core':>8} {'peak MB main/worker':>20} "
          f"{'near-dup s':>10} {'brute est s':>12} {'planted found':>14} {'findings':>9}")
    for r in results:
        print(f"{r['items']:>8} {r['audio_hours']:>6} {r['items_per_s']:>8} {r['realtime_per_core'] or '-':>8} "
              f"{r['peak_rss_main_mb']:>9}/{r['peak_rss_worker_mb']:<10} {r['near_dup_search_s']:>10} "
              f"{r['brute_force_estimate_s']:>12} {r['planted_found']:>7}/{r['planted_near_dups']:<6} {r['findings']:>9}")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        size = b["items"] / a["items"]
        def ratio(key: str) -> float:
            return b[key] / max(a[key], 1e-9)

        print(f"near-duplicate search: x{ratio('near_dup_search_s'):.1f} time for x{size:.0f} items "
              f"(linear would be x{size:.0f}, pairwise x{size * size:.0f}); index x{ratio('near_dup_index_s'):.1f}, "
              f"verification x{ratio('near_dup_verify_s'):.1f} for x{ratio('near_dup_matches'):.1f} matching pairs "
              f"(x{ratio('candidate_pairs'):.1f} candidates)")
        print(f"against the pairwise baseline measured here: index {a['index_vs_brute_force']:.2e} "
              f"({a['items']} items), {b['index_vs_brute_force']:.2e} ({b['items']} items) of its estimated time")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--generate":
        generate(int(sys.argv[2]), Path(sys.argv[4]))
        sys.exit(0)
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        ap = argparse.ArgumentParser()
        ap.add_argument("--one", type=int)
        ap.add_argument("--workdir")
        ap.add_argument("--workers", type=int)
        ap.add_argument("--vad")
        ap.add_argument("--reuse-cache", action="store_true")
        ap.add_argument("-O", dest="options", action="append", default=[])
        a = ap.parse_args()
        print(json.dumps(run(a.one, Path(a.workdir), a.workers, a.vad, a.reuse_cache, a.options)))
        sys.exit(0)
    sys.exit(main())
