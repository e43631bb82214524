"""Latency and speed of a run: per-utterance processing time, RTF, RTFx, percentiles, and their spread.

Stage: metrics. Reads stored rows (``processing_time``: wall seconds of the backend call;
``audio_duration``: seconds of audio heard) and the run's ``resources`` meta (model load time), and hands
on a :class:`LatencyReport` that always carries the :class:`Conditions` it was measured under (threads,
batch size, precision, warm-up, workers, CPU model), since a speed figure without them means nothing.

Definitions:
- RTF of one utterance = processing time / audio duration (lower is faster).
- RTFx of a run = total audio seconds / total processing seconds (the Open ASR Leaderboard's figure,
  higher is faster); it is a ratio of sums, not a mean of per-utterance ratios.
- Latency percentiles are over per-utterance processing times (linear interpolation). With n utterances,
  p99 is only as good as the top 1 % of n: ``n`` is reported beside it.
- Repeatability: a percentile bootstrap interval of RTFx (resampling utterances) and the interquartile
  range of per-utterance RTF. Two runs of one configuration agree when each one's RTFx lies inside the
  other's interval (:func:`latency_agreement`).
- Cold start (model load) is reported separately and never mixed into RTF.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxproof.errors import UsageError
from voxproof.run.provenance import cpu_model

log = logging.getLogger("voxproof.metrics.latency")

PERCENTILES = (50, 90, 99)


def _loadavg() -> float | None:
    """1-minute load average (runnable processes) when the figure was computed: above the number of
    cores, other work competed for the CPU and wall-clock figures are inflated."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Conditions:
    """What a speed figure was measured under. ``threads`` is the backend's compute threads (0 = its
    default), ``workers`` the number of concurrent model instances, ``precision`` the compute type,
    ``warmup`` the number of untimed calls made before timing."""

    backend: str = "unknown"
    threads: int | None = None
    workers: int = 1
    batch_size: int = 1
    precision: str | None = None
    warmup: int = 0
    cpu_model: str = field(default_factory=cpu_model)
    logical_cpus: int = field(default_factory=lambda: os.cpu_count() or 0)
    load_average: float | None = field(default_factory=lambda: _loadavg())
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_run(cls, provenance: dict[str, Any], resources: dict[str, Any] | None = None, **over: Any) -> Conditions:
        """Conditions read from a run's provenance (backend options) and resources meta."""
        backend = provenance.get("backend") or {}
        opts = backend.get("options") or {}
        run_opts = provenance.get("run_options") or {}
        machine = provenance.get("machine") or {}
        values: dict[str, Any] = {
            "backend": backend.get("name", "unknown"),
            "threads": opts.get("cpu_threads", opts.get("threads")),
            "workers": int((resources or {}).get("workers") or run_opts.get("workers") or 1),
            "batch_size": int(opts.get("batch_size_used", 1)),
            "precision": opts.get("compute_type", opts.get("precision")),
            "warmup": int(run_opts.get("warmup", 0) or 0),
        }
        # facts of the machine that ran it, not of the one reading it
        if machine.get("cpu_model"):
            values["cpu_model"] = machine["cpu_model"]
        if machine.get("cpu_count"):
            values["logical_cpus"] = int(machine["cpu_count"])
        values["load_average"] = (resources or {}).get("load_average")
        values.update(over)
        return cls(**values)


@dataclass(frozen=True)
class LatencyReport:
    """Speed of one run (one condition). Times in seconds."""

    n: int
    audio_seconds: float
    processing_seconds: float
    rtf: float
    rtfx: float
    rtfx_interval: tuple[float, float]
    latency_percentiles: dict[int, float]
    latency_mean: float
    rtf_percentiles: dict[int, float]
    rtf_iqr: float
    model_load_seconds: float | None
    conditions: Conditions
    per_utterance: tuple[tuple[str, float, float], ...]  # (utt_id, processing s, audio s)
    bootstrap: dict[str, Any]
    n_missing: int = 0
    cpu_seconds: float | None = None
    cpu_rtfx: float | None = None
    cpu_rtfx_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return latency_to_dict(self)


def latency_to_dict(report: LatencyReport, include_rows: bool = False) -> dict[str, Any]:
    """JSON-ready dict (for summary.json); ``include_rows`` adds the per-utterance times."""
    out: dict[str, Any] = {
        "n": report.n,
        "n_missing_time": report.n_missing,
        "audio_seconds": report.audio_seconds,
        "processing_seconds": report.processing_seconds,
        "rtf": report.rtf,
        "rtfx": report.rtfx,
        "rtfx_interval": list(report.rtfx_interval),
        "latency_seconds": {f"p{p}": v for p, v in report.latency_percentiles.items()},
        "latency_mean_seconds": report.latency_mean,
        "rtf_percentiles": {f"p{p}": v for p, v in report.rtf_percentiles.items()},
        "rtf_iqr": report.rtf_iqr,
        "model_load_seconds": report.model_load_seconds,
        "cpu_seconds": report.cpu_seconds,
        "cpu_rtfx": report.cpu_rtfx,
        "cpu_rtfx_interval": None if report.cpu_rtfx_interval is None else list(report.cpu_rtfx_interval),
        "conditions": report.conditions.to_dict(),
        "bootstrap": dict(report.bootstrap),
        "definitions": {
            "rtf": "total processing seconds / total audio seconds",
            "rtfx": "total audio seconds / total processing seconds",
            "latency": "wall seconds of the backend call per utterance (decode, perturbation excluded)",
            "cpu_rtfx": "total audio seconds / CPU seconds (all threads) of the backend calls; steadier than "
            "RTFx on a shared machine, but a measure of compute, not of waiting",
        },
    }
    if include_rows:
        out["per_utterance"] = [
            {"utt_id": u, "processing_seconds": p, "audio_seconds": a} for u, p, a in report.per_utterance
        ]
    return out


def latency_from_times(
    processing: Iterable[float],
    audio: Iterable[float],
    *,
    ids: Iterable[str] | None = None,
    conditions: Conditions | None = None,
    model_load_seconds: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence_level: float = 0.95,
    n_missing: int = 0,
    cpu: Iterable[float] | None = None,
) -> LatencyReport:
    """A :class:`LatencyReport` from per-utterance processing and audio seconds (and optionally the CPU
    seconds of each backend call, giving the CPU-time RTFx and its interval too)."""
    p = np.asarray(list(processing), dtype=float)
    a = np.asarray(list(audio), dtype=float)
    if p.shape != a.shape or p.size == 0:
        raise UsageError(f"latency needs one processing time per audio duration and at least one; got {p.size} and {a.size}")
    if (p < 0).any() or (a <= 0).any():
        raise UsageError("processing times must be >= 0 and audio durations > 0 seconds")
    id_list = list(ids) if ids is not None else [str(i) for i in range(p.size)]
    rtf_each = p / a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, p.size, size=(n_boot, p.size))
    boot = a[idx].sum(axis=1) / np.maximum(p[idx].sum(axis=1), 1e-12)
    alpha = (1 - confidence_level) / 2
    q25, q75 = np.percentile(rtf_each, [25, 75])
    cpu_total = cpu_rtfx = cpu_interval = None
    if cpu is not None:
        c = np.asarray(list(cpu), dtype=float)
        if c.shape != p.shape:
            raise UsageError(f"need one CPU time per utterance; got {c.size} for {p.size} utterances")
        cpu_total = float(c.sum())
        cpu_rtfx = float(a.sum() / cpu_total) if cpu_total > 0 else float("inf")
        cboot = a[idx].sum(axis=1) / np.maximum(c[idx].sum(axis=1), 1e-12)
        cpu_interval = (float(np.quantile(cboot, (1 - confidence_level) / 2)),
                        float(np.quantile(cboot, 1 - (1 - confidence_level) / 2)))
    total_p, total_a = float(p.sum()), float(a.sum())
    return LatencyReport(
        n=int(p.size),
        audio_seconds=total_a,
        processing_seconds=total_p,
        rtf=total_p / total_a,
        rtfx=total_a / total_p if total_p > 0 else float("inf"),
        rtfx_interval=(float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))),
        latency_percentiles={q: float(np.percentile(p, q)) for q in PERCENTILES},
        latency_mean=float(p.mean()),
        rtf_percentiles={q: float(np.percentile(rtf_each, q)) for q in PERCENTILES},
        rtf_iqr=float(q75 - q25),
        model_load_seconds=model_load_seconds,
        conditions=conditions or Conditions(),
        per_utterance=tuple(zip(id_list, (float(x) for x in p), (float(x) for x in a))),
        bootstrap={
            "method": "percentile bootstrap of RTFx, resampling utterances",
            "replicates": n_boot,
            "seed": seed,
            "confidence_level": confidence_level,
        },
        n_missing=n_missing,
        cpu_seconds=cpu_total,
        cpu_rtfx=cpu_rtfx,
        cpu_rtfx_interval=cpu_interval,
    )


def latency_from_rows(
    rows: Iterable[Any],
    *,
    condition: str = "clean",
    conditions: Conditions | None = None,
    model_load_seconds: float | None = None,
    **kwargs: Any,
) -> LatencyReport:
    """Latency of the ok rows of ``condition`` that have a processing time and audio duration. When every
    such row also has ``extras['cpu_seconds']`` the CPU-time figures are added."""
    ids: list[str] = []
    p: list[float] = []
    a: list[float] = []
    cpu: list[float | None] = []
    missing = 0
    for row in rows:
        if row.condition != condition or not row.ok:
            continue
        if row.processing_time is None or not row.audio_duration:
            missing += 1
            continue
        ids.append(row.utt_id)
        p.append(row.processing_time)
        a.append(row.audio_duration)
        cpu.append((row.extras or {}).get("cpu_seconds"))
    if not p:
        raise UsageError(f"no timed rows in condition {condition!r}; nothing to measure")
    cpu_ok = all(c is not None for c in cpu)
    return latency_from_times(
        p, a, ids=ids, conditions=conditions, model_load_seconds=model_load_seconds, n_missing=missing,
        cpu=cpu if cpu_ok else None, **kwargs,
    )


def latency_from_store(store: Any, *, condition: str = "clean", **kwargs: Any) -> LatencyReport:
    """Latency of a :class:`~voxproof.run.store.RunStore`, conditions and cold start from its meta."""
    resources = store.meta("resources") or {}
    conditions = kwargs.pop("conditions", None) or Conditions.from_run(store.provenance, resources)
    return latency_from_rows(
        store.rows(condition=condition),
        condition=condition,
        conditions=conditions,
        model_load_seconds=resources.get("model_load_seconds"),
        **kwargs,
    )


@dataclass(frozen=True)
class Agreement:
    """Whether two runs' RTFx agree within the spread each reports."""

    rtfx_a: float
    rtfx_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    b_within_a: bool
    a_within_b: bool
    ratio: float  # rtfx_b / rtfx_a
    measure: str = "rtfx"

    @property
    def agree(self) -> bool:
        return self.b_within_a and self.a_within_b

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agree": self.agree}


def latency_agreement(a: LatencyReport, b: LatencyReport, measure: str = "rtfx") -> Agreement:
    """Check two runs of one configuration against each other's interval of ``measure``: ``rtfx``
    (wall clock) or ``cpu_rtfx`` (CPU time; needs both reports to have it)."""
    if measure == "rtfx":
        va, vb, ia, ib = a.rtfx, b.rtfx, a.rtfx_interval, b.rtfx_interval
    elif measure == "cpu_rtfx":
        if a.cpu_rtfx is None or b.cpu_rtfx is None or a.cpu_rtfx_interval is None or b.cpu_rtfx_interval is None:
            raise UsageError("cpu_rtfx agreement needs CPU times in both reports")
        va, vb, ia, ib = a.cpu_rtfx, b.cpu_rtfx, a.cpu_rtfx_interval, b.cpu_rtfx_interval
    else:
        raise UsageError(f"measure {measure!r} is not one of rtfx, cpu_rtfx")
    return Agreement(va, vb, ia, ib, ia[0] <= vb <= ia[1], ib[0] <= va <= ib[1], vb / va, measure)
