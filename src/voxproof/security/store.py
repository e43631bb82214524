"""Evidence records of the security probes: a run store per probe (same schema as ``voxproof eval``),
opened for a new probe or resumed when its settings are identical, plus shared scoring helpers."""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxproof.errors import RunError, UsageError
from voxproof.run.provenance import build_provenance, identity
from voxproof.run.store import RunStore, store_path

log = logging.getLogger("voxproof.security")


def open_probe_store(out_dir: str | Path, *, probe: str, backend: dict[str, Any], dataset: dict[str, Any],
                     normalizer: dict[str, Any], seed: int, options: dict[str, Any],
                     conditions: list[tuple[str, dict[str, Any]]], resume: bool) -> RunStore:
    """A new store in ``out_dir``, or (``resume``) the existing one when it was made with the same probe,
    backend, data, seed, options and conditions; raises :class:`RunError` otherwise."""
    prov = build_provenance(backend=backend, dataset=dataset, normalizer=normalizer, seed=seed,
                            run_options={"probe": probe, **options},
                            conditions=[{"name": n, **spec} for n, spec in conditions])
    if store_path(out_dir).exists():
        if not resume:
            raise RunError(f"{store_path(out_dir)} already exists; pass --resume to continue it or choose another --out")
        store = RunStore.open(out_dir)
        old = store.provenance
        if identity(old) != identity(prov) or old.get("run_options") != prov["run_options"]:
            store.close()
            raise RunError(f"{out_dir} holds a probe made with other settings; use another --out or the same options")
        log.info("resuming %s: %d rows already done", out_dir, store.count_rows())
    else:
        store = RunStore.create(out_dir, prov)
    store.set_conditions(conditions)
    store.set_meta("status", "running")
    return store


def finite_levels(values: Sequence[float], name: str, low: float, high: float) -> tuple[float, ...]:
    """Validated, sorted, de-duplicated levels in [low, high] (NaN/inf refused)."""
    out = []
    for v in values:
        v = float(v)
        if not math.isfinite(v) or not low <= v <= high:
            raise UsageError(f"{name} must be finite and between {low:g} and {high:g}, got {v!r}")
        out.append(v)
    if not out:
        raise UsageError(f"{name} needs at least one value")
    return tuple(sorted(set(out)))


def crossing(levels: Sequence[float], rates: Sequence[float], target: float = 0.5) -> dict[str, Any]:
    """Where a curve (``rates`` over increasing ``levels``) first reaches ``target``, interpolated
    linearly between the two levels around it. ``value`` is ``None`` with a ``why`` when undefined."""
    pts = [(lv, r) for lv, r in zip(levels, rates) if r is not None and math.isfinite(r)]
    if not pts:
        return {"value": None, "why": "no scored level"}
    if pts[0][1] >= target:
        return {"value": None, "why": f"already at or above {target:.0%} at the lowest level {pts[0][0]:g} dB",
                "below": pts[0][0]}
    for (l0, r0), (l1, r1) in itertools.pairwise(pts):
        if r0 < target <= r1:
            return {"value": l0 + (target - r0) / (r1 - r0) * (l1 - l0), "why": None}
    return {"value": None, "why": f"never reaches {target:.0%} up to {pts[-1][0]:g} dB", "above": pts[-1][0]}


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return path
