"""Serving stage, the HTTP application: OpenAI-compatible speech endpoints routed through the registry.

``create_app(registry, options, keys)`` builds a FastAPI app. Endpoints (all but ``/healthz`` and
``/readyz`` need an API key, ``Authorization: Bearer vxp_...``):

- ``POST /v1/audio/transcriptions`` (scope ``transcribe``): multipart ``file``, ``model``, ``language``,
  ``prompt``, ``response_format`` (json|text|srt|vtt|verbose_json), ``temperature``,
  ``timestamp_granularities[]`` (word|segment);
- ``POST /v1/audio/speech`` (scope ``synthesize``): JSON ``input``, ``model``, ``voice``,
  ``response_format`` (wav|flac|mp3|opus|pcm), ``speed``;
- ``GET /v1/models`` (any scope); ``GET /metrics`` (``admin`` unless ``metrics_public``);
- ``POST /admin/promote``, ``/admin/rollback``, ``/admin/canary`` (``admin``): registry changes with the
  key's name as actor;
- ``GET /healthz`` (process up), ``GET /readyz`` (production/canary/shadow models loaded).

Every answer carries ``x-request-id``; model answers carry ``x-voxproof-version``. Every error is
``{"error": {"message", "type", "param", "code"}}``; no input produces a traceback.
The request handling lives in :mod:`voxproof.serve.handlers`; this module wires the state together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from voxproof.registry import CANARY, PRODUCTION, Registry
from voxproof.serve.errors import ApiError, internal_error
from voxproof.serve.keys import KeyRing, KeyStore
from voxproof.serve.metrics import ServeMetrics
from voxproof.serve.options import ServeOptions
from voxproof.serve.ratelimit import RateLimiter
from voxproof.serve.requestlog import RequestLog
from voxproof.serve.routing import RegistryWatcher, Router, Snapshot, read_snapshot
from voxproof.serve.workers import ModelPool

log = logging.getLogger("voxproof.serve")


class ServerState:
    """Everything the handlers share: options, router, model pool, keys, limiter, log, metrics."""

    def __init__(self, registry_location: str, options: ServeOptions, keys: KeyStore | KeyRing,
                 *, loader: Any = None):
        self.registry_location = str(registry_location)
        self.options = options
        self.metrics = ServeMetrics()
        with Registry.open(self.registry_location) as reg:
            snapshot = read_snapshot(reg)
        if options.shadow and snapshot.resolve(options.shadow) is None:
            from voxproof.errors import UsageError

            raise UsageError(f"--shadow {options.shadow!r} is not a version or alias in the registry")
        self.router = Router(snapshot, canary_share=options.canary_share, seed=options.seed)
        self.keystore = keys if isinstance(keys, KeyStore) else None
        self.keys: KeyRing = keys.snapshot() if isinstance(keys, KeyStore) else keys
        self.limiter = RateLimiter(options.rate_limit, options.burst)
        self.pool = ModelPool(max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
                              max_queue=options.max_queue, workers=options.workers,
                              on_batch=lambda _v, n: self.metrics.batch_size.observe(n), loader=loader,
                              allow_changed_model=options.allow_changed_model)
        self.request_log: RequestLog | None = None
        self.watcher = RegistryWatcher(self.registry_location, options.poll_s, self._on_registry_change,
                                       extra=self._reload_keys)
        self.decode_slots: asyncio.Semaphore | None = None
        self.started = time.time()
        self.draining = False
        self._log_dropped_seen = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.request_log = RequestLog(self.options.request_log, buffer=self.options.log_buffer,
                                      log_text=self.options.log_text, vad=self.options.log_vad,
                                      max_pending_audio_bytes=64 * 1024 * 1024)
        self.decode_slots = asyncio.Semaphore(self.options.decode_concurrency)
        if self.options.preload:
            self._preload(self.router.snapshot)
        self.watcher.start(self.router.snapshot)
        log.info("serving registry %s: aliases %s", self.registry_location, self.router.snapshot.aliases)

    def stop(self) -> None:
        """After the HTTP server stopped taking requests: finish queued model work, flush the log."""
        self.draining = True
        self.watcher.stop()
        self.pool.stop(timeout=self.options.request_timeout_s)
        if self.request_log is not None:
            self.request_log.close()
            log.info("request log closed: %d rows written, %d dropped", self.request_log.written,
                     self.request_log.dropped)

    def _preload(self, snap: Snapshot) -> None:
        for name in self.preload_names(snap):
            version = snap.resolve(name)
            if version is not None:
                self.pool.get(version)

    def preload_names(self, snap: Snapshot) -> list[str]:
        names = [PRODUCTION]
        if self.options.canary_share > 0:
            names.append(CANARY)
        if self.options.shadow:
            names.append(self.options.shadow)
        return names

    def _on_registry_change(self, snap: Snapshot) -> None:
        self.router.update(snap)
        if self.options.preload:
            self._preload(snap)

    def _reload_keys(self) -> None:
        if self.keystore is not None:
            self.keys = self.keystore.snapshot()

    def refresh_after_admin(self, reg: Registry) -> None:
        """Apply an admin change at once (the watcher would see it at its next poll)."""
        self._on_registry_change(read_snapshot(reg))
        self.watcher.poke()

    # -- readiness and metrics ---------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, str]]:
        snap = self.router.snapshot
        states: dict[str, str] = {}
        workers = self.pool.workers()
        for name in self.preload_names(snap):
            version = snap.resolve(name)
            if version is None:
                if name == PRODUCTION:
                    states[name] = "no production version in the registry"
                continue
            worker = workers.get(version.name)
            if worker is None or not worker.loaded.is_set():
                states[name] = f"{version.name}: loading"
            elif worker.load_error is not None:
                states[name] = f"{version.name}: failed ({type(worker.load_error).__name__}: {worker.load_error})"
            else:
                states[name] = f"{version.name}: loaded"
        ok = bool(states) and all(s.endswith(": loaded") for s in states.values()) and not self.draining
        return ok, states

    def refresh_metrics(self) -> None:
        m = self.metrics
        for name, worker in self.pool.workers().items():
            m.queue_depth.labels(name).set(worker.depth())
            state = 0 if not worker.loaded.is_set() else (-1 if worker.load_error else 1)
            m.model_loaded.labels(name).set(state)
        if self.request_log is not None:
            m.log_depth.set(self.request_log.depth())
            dropped = self.request_log.dropped
            if dropped > self._log_dropped_seen:
                m.log_dropped.inc(dropped - self._log_dropped_seen)
                self._log_dropped_seen = dropped


def create_app(registry_location: str | Path, options: ServeOptions | None = None,
               keys: KeyStore | KeyRing | None = None, *, loader: Any = None):
    """The FastAPI app serving the registry at ``registry_location``. ``keys``: a key store (re-read
    every ``poll_s``) or a fixed :class:`KeyRing`. ``loader`` replaces how a version's model is built
    (``ModelVersion -> backend``), for embedding."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError as exc:
        from voxproof.errors import BackendUnavailable

        raise BackendUnavailable("voxproof serve needs FastAPI and uvicorn; install with: "
                                 "pip install 'voxproof[serve]'") from exc
    from voxproof.serve import handlers

    state = ServerState(str(registry_location), options or ServeOptions(), keys or KeyRing([]), loader=loader)

    @asynccontextmanager
    async def lifespan(_app):
        state.start()
        try:
            yield
        finally:
            await asyncio.to_thread(state.stop)

    app = FastAPI(title="voxproof serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.voxproof = state

    def error_response(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers())

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(ApiError(exc.status_code, str(exc.detail), "invalid_request_error", None, code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query"))
        message = f"invalid request: {where or 'body'}: {first.get('msg', 'invalid value')}"
        return error_response(ApiError(400, message[:300], "invalid_request_error", where or None, "invalid_value"))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.error("unexpected error: %s", exc, exc_info=exc)
        return error_response(internal_error())

    handlers.add_routes(app, state)
    return app
