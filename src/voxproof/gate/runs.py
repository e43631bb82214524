"""Model-versus-model gating: evaluate both models with the runner, reusing finished runs from a cache.

Stage: before the gate, when ``voxproof gate`` is given models instead of runs. A run is cached under
``CACHE/<key>`` where the key hashes what defines its rows: backend name, its full options, the dataset
hash, the conditions, the seed and the normaliser. A complete cached run is reused as is; an
interrupted one is resumed (the runner refuses if its provenance differs).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("voxproof.gate")


@dataclass(frozen=True)
class ModelSpec:
    """A backend with its options (``key=value`` pairs as on the command line)."""

    backend: str
    pairs: tuple[str, ...] = ()


def cache_key(
    backend: str, options: dict[str, Any], dataset_hash: str, conditions: Sequence[dict[str, Any]], seed: int,
    normalizer: str,
) -> str:
    blob = json.dumps(
        {"backend": backend, "options": options, "dataset_hash": dataset_hash, "conditions": list(conditions),
         "seed": seed, "normalizer": normalizer},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunPlan:
    """Where a model's run lives in the cache (``CACHE/BACKEND-KEY``), what it evaluates, and what
    :func:`ensure_run` will do with it: reuse a complete run (``reusable``), resume an unfinished one
    (``exists``), or evaluate from scratch. ``inputs`` is a :class:`~voxproof.run.inputs.RunInputs`."""

    model: ModelSpec
    options: Any
    inputs: Any
    normalizer: Any
    seed: int
    run_dir: Path
    exists: bool
    reusable: bool


def plan_run(model: ModelSpec, inputs: Any, cache_dir: str | Path, *, normalizer: Any, seed: int = 0) -> RunPlan:
    """The cache directory of ``model`` on ``inputs`` (utterances, conditions, dataset record) and its state."""
    from voxproof.backends.registry import get_spec
    from voxproof.options import build_options, options_dict
    from voxproof.run.store import RunStore, store_path

    options = build_options(get_spec(model.backend, kind="asr").options_class(), list(model.pairs))
    conditions = inputs.conditions
    key = cache_key(model.backend, options_dict(options), str(inputs.dataset.get("hash")),
                    [c.to_spec() for c in conditions], seed, normalizer.label)
    run_dir = Path(cache_dir) / f"{model.backend}-{key}"
    exists = store_path(run_dir).exists()
    complete = False
    if exists:
        with RunStore.open(run_dir) as store:
            complete = (store.meta("status") == "complete"
                        and store.count_rows() == len(inputs.utterances) * (1 + len(conditions)))
    return RunPlan(model, options, inputs, normalizer, seed, run_dir, exists, complete)


def ensure_run(plan: RunPlan, *, workers: int = 1, progress: Callable[[Any], None] | None = None,
               allow_url_host: tuple[str, ...] = (), load: Callable[[], Any] | None = None) -> bool:
    """Make ``plan.run_dir`` hold the complete run (evaluated now, resumed, or reused as is); returns
    whether it was reused without evaluating anything. ``load``: the backend factory (default: load
    ``plan.model`` by name; the gate passes a checksum-verified factory)."""
    from voxproof.backends.registry import load_backend
    from voxproof.run.runner import RunOptions, run_eval

    if plan.reusable:
        log.debug("reusing the finished run %s for %s", plan.run_dir, plan.model.backend)
        return True
    if plan.exists:
        log.debug("resuming the unfinished run %s", plan.run_dir)
    run_eval(
        load or (lambda: load_backend(plan.model.backend, plan.options, kind="asr")),
        list(plan.inputs.utterances),
        plan.run_dir,
        options=RunOptions(seed=plan.seed, workers=workers, allow_url_host=tuple(allow_url_host)),
        conditions=list(plan.inputs.conditions),
        normalizer={"name": plan.normalizer.name, "version": plan.normalizer.version},
        dataset=plan.inputs.dataset,
        resume=plan.exists,
        progress=progress,
    )
    return False
