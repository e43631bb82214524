"""Serving stage, model workers: one loaded model per version and worker thread, fed by a bounded queue.

:class:`ModelPool` loads each registry version once (backend + options from the registry) and keeps it.
Each version has a queue of at most ``max_queue`` jobs; ``workers`` threads per version take up to
``max_batch`` jobs at once (waiting at most ``max_wait_ms`` for more to arrive) and run them through the
backend's batch path (``transcribe_batch``) when a batch holds more than one job, else ``transcribe``.
A job may carry a ``prepare`` callable (decoding the upload) that the worker thread runs just before the
model call, so a request crosses threads once (event loop -> worker -> event loop) instead of twice; a
failing ``prepare`` fails only its own job. A full queue raises :class:`QueueFull` (the server answers 429 with Retry-After). Jobs whose requester
gave up (timeout) before they started are skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from voxproof.audio.signal import Audio
from voxproof.backends.registry import load_backend
from voxproof.errors import BackendError, VoxproofError
from voxproof.registry import ModelVersion

log = logging.getLogger("voxproof.serve.workers")


class QueueFull(VoxproofError):
    """The version's queue is full; ``retry_after`` estimates when to try again (seconds)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Job:
    """One unit of work: ``payload`` is an :class:`Audio` (transcribe) or a text (synthesize); or None
    with ``prepare``, which the worker thread calls to make the payload (``prepare_s`` is its time)."""

    payload: Audio | str | None
    prepare: Callable[[], Audio | str] | None = None
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)
    taken: float | None = None
    started: float | None = None
    finished: float | None = None
    prepare_s: float | None = None
    batch_size: int = 1

    @property
    def queue_s(self) -> float | None:
        taken = self.taken if self.taken is not None else self.started
        return None if taken is None else taken - self.enqueued

    @property
    def model_s(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started


_STOP = object()


class VersionWorker:
    """The loaded model(s) and queue of one registry version."""

    def __init__(self, version: ModelVersion, *, max_batch: int, max_wait_ms: float, max_queue: int,
                 workers: int, on_batch: Callable[[str, int], None] | None = None,
                 loader: Callable[[ModelVersion], Any] | None = None, allow_changed_model: bool = False):
        self.version = version
        self.allow_changed_model = allow_changed_model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.on_batch = on_batch
        self._loader = loader or load_version
        self._n = workers
        self.models: list[Any] = []
        self.loaded = threading.Event()
        self.load_error: Exception | None = None
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._recent_s = 1.0  # moving average of a job's model time, for Retry-After

    def start(self) -> None:
        """Load the model instances and start the worker threads (in a background thread)."""
        threading.Thread(target=self._load, name=f"vp-load-{self.version.name}", daemon=True).start()

    def _load(self) -> None:
        try:
            for _ in range(self._n):
                model = self._loader(self.version)
                self.models.append(model)  # before the check, so stop() closes a refused model too
                verify_version_model(self.version, model, allow_changed=self.allow_changed_model)
        except Exception as exc:  # reported to every request for this version
            log.error("could not load version %s: %s", self.version.name, exc)
            self.load_error = exc
            self.loaded.set()
            self._fail_queued(exc)
            return
        for i, model in enumerate(self.models):
            t = threading.Thread(target=self._run, args=(model,), name=f"vp-{self.version.name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self.loaded.set()
        log.info("version %s loaded (%d instance(s))", self.version.name, len(self.models))

    def _fail_queued(self, exc: Exception) -> None:
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(exc)

    def depth(self) -> int:
        return self.queue.qsize()

    def submit(self, payload: Audio | str | None, prepare: Callable[[], Audio | str] | None = None) -> Job:
        if self.load_error is not None:
            raise self.load_error
        job = Job(payload, prepare)
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            waiting = self.queue.qsize()
            retry = max(1.0, waiting * self._recent_s / max(1, self._n * self.max_batch))
            raise QueueFull(f"version {self.version.name} has {waiting} requests waiting; retry later",
                            retry) from None
        return job

    def _take_batch(self) -> list[Job] | None:
        first = self.queue.get()
        if first is _STOP:
            return None
        batch = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = self.queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self.queue.put(_STOP)  # let the next loop (or thread) see it
                break
            batch.append(item)
        return batch

    def _run(self, model: Any) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            live = self._prepared([j for j in batch if j.future.set_running_or_notify_cancel()])
            if not live:
                continue
            started = time.perf_counter()
            for j in live:
                j.started, j.batch_size = started, len(live)
            if self.on_batch is not None:
                self.on_batch(self.version.name, len(live))
            try:
                results = self._call(model, [j.payload for j in live])
            except Exception as exc:  # handed to the requests; the thread keeps serving
                finished = time.perf_counter()
                for j in live:
                    j.finished = finished
                    j.future.set_exception(exc if isinstance(exc, VoxproofError) else
                                           BackendError(f"{type(exc).__name__}: {exc}"))
                continue
            finished = time.perf_counter()
            self._recent_s = 0.8 * self._recent_s + 0.2 * (finished - started) / len(live)
            for j, result in zip(live, results):
                j.finished = finished
                j.future.set_result(result)

    @staticmethod
    def _prepared(jobs: list[Job]) -> list[Job]:
        """Run the jobs' ``prepare`` (decoding); a job whose ``prepare`` fails gets that error and leaves
        the batch."""
        ready = []
        for j in jobs:
            j.taken = time.perf_counter()
            if j.prepare is not None:
                try:
                    j.payload = j.prepare()
                except Exception as exc:  # the requester's error (corrupt upload ...), not the model's
                    j.prepare_s = time.perf_counter() - j.taken
                    j.future.set_exception(exc)
                    continue
                j.prepare_s = time.perf_counter() - j.taken
            ready.append(j)
        return ready

    def _call(self, model: Any, payloads: list[Any]) -> list[Any]:
        if isinstance(payloads[0], str):
            return [model.synthesize(text) for text in payloads]
        if len(payloads) > 1 and hasattr(model, "transcribe_batch"):
            return list(model.transcribe_batch(payloads))
        return [model.transcribe(audio) for audio in payloads]

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then stop the threads."""
        for _ in self._threads:
            self.queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for model in self.models:
            close = getattr(model, "close", None)
            if callable(close):
                close()


def load_version(version: ModelVersion) -> Any:
    """A backend instance for a registry version (its backend name, options and kind)."""
    spec_pairs = [f"{k}={_option_text(v)}" for k, v in sorted(version.options.items())]
    return load_backend(version.backend, kind=version.kind, pairs=spec_pairs)


def verify_version_model(version: ModelVersion, model: Any, *, allow_changed: bool = False) -> None:
    """Check a loaded model against the checksum the registry recorded for ``version`` (the check
    ``eval --expect-version`` makes): raises ``ModelChanged`` when its files changed, unless
    ``allow_changed`` (then logged as a warning); ``UnsafeModelFormat`` for pickle-format files. A version
    without a recorded checksum is not checked."""
    if not version.model_checksum:
        return
    from voxproof.security.supply import verify_backend

    result = verify_backend(model, version.model_checksum, allow_changed=allow_changed)
    if result.status == "overridden":
        log.warning("version %s: serving a model whose files changed since it was registered (registry sha256 "
                    "%s, loaded %s), allowed by --allow-changed-model", version.name, result.expected, result.actual)


def _option_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class ModelPool:
    """Version name -> :class:`VersionWorker`, created (and loaded) on first use."""

    def __init__(self, *, max_batch: int, max_wait_ms: float, max_queue: int, workers: int,
                 on_batch: Callable[[str, int], None] | None = None,
                 loader: Callable[[ModelVersion], Any] | None = None, allow_changed_model: bool = False):
        self._kw = dict(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, workers=workers,
                        on_batch=on_batch, loader=loader, allow_changed_model=allow_changed_model)
        self._workers: dict[str, VersionWorker] = {}
        self._lock = threading.Lock()

    def get(self, version: ModelVersion) -> VersionWorker:
        with self._lock:
            worker = self._workers.get(version.name)
            if worker is None or worker.version != version:
                worker = VersionWorker(version, **self._kw)
                self._workers[version.name] = worker
                worker.start()
            return worker

    def workers(self) -> dict[str, VersionWorker]:
        with self._lock:
            return dict(self._workers)

    def stop(self, timeout: float = 30.0) -> None:
        for worker in self.workers().values():
            worker.stop(timeout)
