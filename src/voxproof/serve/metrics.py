"""Serving stage, Prometheus metrics: base units, ``_total`` counters, ``_seconds`` histograms.

Labels are bounded sets only (endpoint, HTTP status, registry version, route); nothing per request
or per key. Each app has its own :class:`prometheus_client.CollectorRegistry`, so several servers (or
tests) in one process do not mix their numbers.
"""

from __future__ import annotations

from collections.abc import Callable

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class ServeMetrics:
    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:
            from voxproof.errors import BackendUnavailable

            raise BackendUnavailable("voxproof serve needs prometheus-client; install with: "
                                     "pip install 'voxproof[serve]'") from exc
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("voxproof_requests", "Requests answered, by endpoint, HTTP status, version "
                                "and route", ["endpoint", "status", "version", "route"], registry=r)
        self.latency = Histogram("voxproof_request_duration_seconds", "Time from request arrival to answer",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("voxproof_queue_wait_seconds", "Time a request waited in its version's "
                                    "batch queue", buckets=_LATENCY_BUCKETS, registry=r)
        self.decode = Histogram("voxproof_audio_decode_seconds", "Time to decode an upload",
                                buckets=_LATENCY_BUCKETS, registry=r)
        self.model = Histogram("voxproof_model_seconds", "Model time of a request (its batch's time)",
                               ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("voxproof_batch_size", "Requests decoded together in one model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.audio = Counter("voxproof_audio_seconds", "Seconds of audio transcribed or synthesised",
                             ["endpoint"], registry=r)
        self.queue_depth = Gauge("voxproof_queue_depth", "Requests waiting in a version's queue", ["version"],
                                 registry=r)
        self.model_loaded = Gauge("voxproof_model_loaded", "1 when a version's model is loaded, 0 while "
                                  "loading, -1 when it failed", ["version"], registry=r)
        self.in_flight = Gauge("voxproof_requests_in_flight", "Requests being handled", registry=r)
        self.rate_limited = Counter("voxproof_rate_limited", "Requests refused by the per-key rate limit",
                                    registry=r)
        self.shadow_dropped = Counter("voxproof_shadow_dropped", "Shadow runs skipped (shadow queue full or "
                                      "shadow version unavailable)", registry=r)
        self.log_dropped = Counter("voxproof_request_log_dropped", "Request-log rows dropped (buffer full "
                                   "or write failed)", registry=r)
        self.log_depth = Gauge("voxproof_request_log_queue_depth", "Request-log rows waiting to be written",
                               registry=r)

    def render(self, refresh: Callable[[], None] | None = None) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if refresh is not None:
            refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
