"""Provenance of a run: what model, options, data, normaliser, seed and machine produced its rows."""

from __future__ import annotations

import os
import platform
import sys
import time
from functools import lru_cache
from typing import Any

from voxproof import __version__


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Facts about this machine that figures depend on (the instruction sets that decide a backend's
    kernels are in the provenance's ``runtime`` section, see :mod:`voxproof.run.cpu`)."""
    from voxproof.run.cpu import cpu_flags

    flags = cpu_flags()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_vendor": flags["vendor"],
        "cpu_flags": flags["flags"],
        "cpu_count": os.cpu_count(),
    }


PER_CLIP = {"mode": "per-clip"}


def measurement_mode(provenance: dict[str, Any]) -> dict[str, Any]:
    """How clips were decoded: ``{"mode": "per-clip"}`` (one decode per clip, the default, also for runs
    recorded before this key existed) or ``{"mode": "packed", ...}`` (short clips shared windows)."""
    m = provenance.get("measurement")
    return dict(m) if isinstance(m, dict) and m.get("mode") else dict(PER_CLIP)


def build_provenance(
    *,
    backend: dict[str, Any],
    dataset: dict[str, Any],
    normalizer: dict[str, Any],
    seed: int,
    run_options: dict[str, Any],
    conditions: list[dict[str, Any]],
    runtime: dict[str, Any] | None = None,
    measurement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``runtime``: what the backend reports about how it runs on this machine (CPU dispatch, threads);
    ``measurement``: per-clip or packed decoding (see :func:`measurement_mode`)."""
    return {
        "schema": 1,
        "voxproof_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": backend,
        "dataset": dataset,
        "dataset_hash": dataset.get("hash"),
        "normalizer": normalizer,
        "seed": seed,
        "run_options": run_options,
        "conditions": conditions,
        "machine": machine_info(),
        "runtime": runtime or {},
        "measurement": measurement or dict(PER_CLIP),
    }


# Keys that must match for a run to be resumed (or two runs to be the same evaluation).
IDENTITY_KEYS = ("backend", "dataset_hash", "seed", "conditions")


def identity(provenance: dict[str, Any]) -> dict[str, Any]:
    """The part of a provenance that defines what the rows mean (machine, runtime and time excluded; a
    packed run's measurement included)."""
    backend = dict(provenance.get("backend") or {})
    backend.pop("library_versions", None)
    out = {k: provenance.get(k) for k in IDENTITY_KEYS}
    out["backend"] = backend
    if measurement_mode(provenance) != PER_CLIP:  # per-clip runs keep the keys they always had
        out["measurement"] = measurement_mode(provenance)
    return out
