"""Monitor stage: one pass over the log, window by window: drift, WER estimate, markers.

:func:`analyze_log` streams the log in chunks through the policy's windows (rows of one route, ``main``
by default) and yields a :class:`WindowReport` per window, in bounded memory. The dashboard, the
replay benchmarks and ``voxproof monitor analyze`` read these.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.monitor.drift import Window, WindowDrift, drift_windows, iter_windows
from voxproof.monitor.estimate import WerEstimate, estimate_window, request_mass
from voxproof.monitor.markers import MarkerRate, marker_rates
from voxproof.monitor.policy import MonitorPolicy
from voxproof.monitor.profile import ReferenceProfile
from voxproof.monitor.source import DEFAULT_CHUNK, LogSource, RequestBatch

ANALYSIS_COLUMNS = ("id", "ts", "request_id", "endpoint", "version", "route", "status", "latency_s", "audio_s",
                    "sample_rate", "codec", "rms_dbfs", "snr_db", "speech_ratio", "clipping_ratio", "bandwidth_hz",
                    "conf_mean", "words", "words_per_s", "output_chars", "text", "word_confs")
_NOT_FOR_WINDOWS = ("request_id", "version")  # per-window analysis never reads these
GROUP_WINDOWS, GROUP_ROWS = 64, 200_000  # windows whose drift is computed at once (bounds the memory held)


@dataclass(frozen=True)
class WindowReport:
    drift: WindowDrift
    estimate: WerEstimate | None
    markers: dict[str, MarkerRate]
    errors: int
    requests: int
    latency_p99: float
    partial: bool

    def to_dict(self) -> dict[str, Any]:
        return {"drift": self.drift.to_dict(), "estimate": None if self.estimate is None else self.estimate.to_dict(),
                "markers": {k: v.to_dict() for k, v in self.markers.items()}, "errors": self.errors,
                "requests": self.requests, "partial": self.partial,
                "latency_p99": None if not math.isfinite(self.latency_p99) else self.latency_p99}


def _route_filter(chunks: Iterator[RequestBatch], route: str) -> Iterator[RequestBatch]:
    for c in chunks:
        if route == "all":
            yield c.take(np.flatnonzero(c.get("route") != "shadow"))
        else:
            yield c.take(np.flatnonzero(c.get("route") == route))


def analyze_log(source: LogSource, profile: ReferenceProfile, policy: MonitorPolicy, *, route: str = "main",
                chunk_rows: int = DEFAULT_CHUNK, estimate: bool = True, markers: bool = True,
                since: float | None = None) -> Iterator[WindowReport]:
    columns = [c for c in ANALYSIS_COLUMNS if c not in _NOT_FOR_WINDOWS and (markers or c != "text")]
    chunks = _route_filter(source.chunks(columns, chunk_rows=chunk_rows, since=since), route)
    group: list[Window] = []
    rows = 0
    for w in iter_windows(chunks, policy.window):
        group.append(w)
        rows += w.batch.n
        if len(group) >= GROUP_WINDOWS or rows >= GROUP_ROWS:
            yield from _reports(group, profile, policy, estimate, markers)
            group, rows = [], 0
    yield from _reports(group, profile, policy, estimate, markers)


def _reports(group: list[Window], profile: ReferenceProfile, policy: MonitorPolicy, estimate: bool,
             markers: bool) -> Iterator[WindowReport]:
    """The reports of a group of windows (drift computed for the group at once)."""
    cal = profile.calibration
    drifts = drift_windows(group, profile, policy.drift, policy.window.min_requests) if group else []
    for w, d in zip(group, drifts):
        est = None
        if estimate and cal is not None:
            est = estimate_window(request_mass(w.batch, cal), cal, resamples=policy.resamples,
                                  level=policy.confidence, seed=policy.seed + w.index)
        rates = marker_rates(w.batch, profile, policy.markers) if markers else {}
        status = w.batch.get("status")
        lat = w.batch.get("latency_s")
        lat = lat[np.isfinite(lat)]
        yield WindowReport(d, est, rates, int((status >= 500).sum()), w.batch.n,
                           float(np.quantile(lat, 0.99)) if lat.size else math.nan, w.partial)
