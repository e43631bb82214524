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
    """Facts about this machine that figures depend on."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
    }


def build_provenance(
    *,
    backend: dict[str, Any],
    dataset: dict[str, Any],
    normalizer: dict[str, Any],
    seed: int,
    run_options: dict[str, Any],
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
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
    }


# Keys that must match for a run to be resumed (or two runs to be the same evaluation).
IDENTITY_KEYS = ("backend", "dataset_hash", "seed", "conditions")


def identity(provenance: dict[str, Any]) -> dict[str, Any]:
    """The part of a provenance that defines what the rows mean (machine and time excluded)."""
    backend = dict(provenance.get("backend") or {})
    backend.pop("library_versions", None)
    out = {k: provenance.get(k) for k in IDENTITY_KEYS}
    out["backend"] = backend
    return out
