"""Audit stage 1, fan-out: run ``signal.analyse_item`` over every utterance on a process pool (decoding,
measures and fingerprints use all cores), with the per-item SQLite cache in front so an audit resumes
where it stopped. Work is submitted in bounded windows: memory does not grow with pending audio.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace

from voxproof.audio.io import DEFAULT_LIMITS, AudioLimits
from voxproof.audit.cache import AnalysisCache
from voxproof.audit.fingerprint import VERSION as FP_VERSION
from voxproof.audit.signal import ItemAnalysis, analyse_item, cache_key
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit.analyse")

ANALYSIS_VERSION = "4"  # 3: tone signature (audit/tones.py); 4: spectral mirror image (upsampled by interpolation)


@dataclass(frozen=True)
class AnalyseStats:
    items: int
    cached: int
    analysed: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    cpu_seconds: float
    workers: int

    def to_dict(self) -> dict[str, float]:
        out = dict(self.__dict__)
        out["items_per_second"] = round(self.analysed / self.wall_seconds, 2) if self.wall_seconds else None
        out["realtime_per_core"] = (
            round(self.audio_seconds / self.cpu_seconds, 1) if self.cpu_seconds and self.analysed else None
        )
        return out


def _work(
    batch: list[tuple[str, dict]], vad: str, limits: AudioLimits
) -> tuple[list[tuple[str, ItemAnalysis]], float]:
    started = time.process_time()
    out = [(key, analyse_item(Utterance.from_dict(d), vad=vad, limits=limits)) for key, d in batch]
    return out, time.process_time() - started


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server, not a plain fork: a process forked from one that has already
    run a native model (Silero VAD, a recogniser) hangs inside that model. Scripts that call the audit
    with several workers need the usual ``if __name__ == "__main__":`` guard."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["voxproof.audit.signal"])
    return ctx


def settings_tag(vad: str) -> str:
    return f"a{ANALYSIS_VERSION}|fp={FP_VERSION}|vad={vad}"


def analyse_all(
    utts: Iterable[Utterance],
    *,
    vad: str = "silero",
    workers: int = 0,
    cache: AnalysisCache | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> tuple[Iterator[ItemAnalysis], Callable[[], AnalyseStats]]:
    """Yield one ``ItemAnalysis`` per utterance, in manifest order, and a function giving the stats once
    the iterator is exhausted. ``workers=0`` uses every core; ``1`` runs in this process. ``limits``:
    the decoder limits (the shared default; an audit passes its URL hosts)."""
    n_workers = workers or (os.cpu_count() or 1)
    tag = settings_tag(vad)
    counters = {"items": 0, "cached": 0, "analysed": 0, "failed": 0, "audio": 0.0, "cpu": 0.0}
    started = time.perf_counter()

    def stats() -> AnalyseStats:
        return AnalyseStats(counters["items"], counters["cached"], counters["analysed"], counters["failed"],
                            counters["audio"], time.perf_counter() - started, counters["cpu"], n_workers)

    def account(a: ItemAnalysis, fresh: bool) -> None:
        counters["items"] += 1
        if fresh:
            counters["analysed"] += 1
            counters["audio"] += a.duration or 0.0
        else:
            counters["cached"] += 1
        if not a.ok:
            counters["failed"] += 1
        if progress and counters["items"] % 1000 == 0:
            progress(counters["items"])

    def gen() -> Iterator[ItemAnalysis]:
        # results are yielded in manifest order: a window of pending batches is kept in order
        pending: list[tuple[list[tuple[Utterance, str | None, ItemAnalysis | None]], Future | None]] = []
        pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context()) if n_workers > 1 else None
        max_pending = 4 * n_workers if pool is not None else 1  # inline: commit every batch at once

        def finish(entry) -> Iterator[ItemAnalysis]:
            items, fut = entry
            fresh: Iterator[ItemAnalysis] = iter(())
            if fut is not None:
                results, cpu = fut.result()
                counters["cpu"] += cpu
                if cache is not None:
                    cache.put_many([(k, a) for k, a in results if k])
                fresh = (a for _, a in results)  # in the order the uncached items were submitted
            for utt, _key, cached in items:
                if cached is not None:
                    account(cached, False)
                    yield replace(cached, id=utt.id)
                else:
                    a = replace(next(fresh), id=utt.id)
                    account(a, True)
                    yield a

        def submit(items) -> None:
            todo = [(k or "", u.to_dict()) for u, k, c in items if c is None]
            if not todo:
                pending.append((items, None))
            elif pool is None:
                t0 = time.process_time()
                results = [(k, analyse_item(Utterance.from_dict(d), vad=vad, limits=limits)) for k, d in todo]
                f: Future = Future()
                f.set_result((results, time.process_time() - t0))
                pending.append((items, f))
            else:
                pending.append((items, pool.submit(_work, todo, vad, limits)))

        try:
            batch: list[tuple[Utterance, str | None, ItemAnalysis | None]] = []
            for utt in utts:
                key = cache_key(utt, tag)
                cached = cache.get(key) if (cache is not None and key) else None
                batch.append((utt, key, cached))
                if len(batch) >= batch_size:
                    submit(batch)
                    batch = []
                while len(pending) >= max_pending:
                    head = pending[0][1]
                    if head is not None and not head.done():
                        wait([head], return_when=FIRST_COMPLETED)
                    yield from finish(pending.pop(0))
            if batch:
                submit(batch)
            while pending:
                yield from finish(pending.pop(0))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    return gen(), stats
