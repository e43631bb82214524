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

from voxproof.manifest.utterance import Utterance

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
    """Where a model's run lives in the cache and what ``ensure_run`` will do with it: reuse a complete
    run (``reusable``), resume an unfinished one (``exists``), or evaluate from scratch."""

    run_dir: Path
    exists: bool
    reusable: bool


def plan_run(
    model: ModelSpec,
    utterances: Sequence[Utterance],
    cache_dir: str | Path,
    *,
    dataset: dict[str, Any],
    conditions: Sequence[Any] = (),
    normalizer: Any,
    seed: int = 0,
) -> RunPlan:
    """The cache directory ``CACHE/BACKEND-KEY`` of ``model`` on these utterances, and its state."""
    from voxproof.backends.registry import get_spec
    from voxproof.options import build_options, options_dict
    from voxproof.run.store import RunStore, store_path

    options = build_options(get_spec(model.backend, kind="asr").options_class(), list(model.pairs))
    key = cache_key(model.backend, options_dict(options), str(dataset.get("hash")),
                    [c.to_spec() for c in conditions], seed, normalizer.label)
    run_dir = Path(cache_dir) / f"{model.backend}-{key}"
    if not store_path(run_dir).exists():
        return RunPlan(run_dir, False, False)
    with RunStore.open(run_dir) as store:
        complete = (store.meta("status") == "complete"
                    and store.count_rows() == len(utterances) * (1 + len(conditions)))
    return RunPlan(run_dir, True, complete)


def ensure_run(
    model: ModelSpec,
    utterances: Sequence[Utterance],
    cache_dir: str | Path,
    *,
    dataset: dict[str, Any],
    conditions: Sequence[Any] = (),
    normalizer: Any,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[Any], None] | None = None,
) -> tuple[Path, bool]:
    """The run directory of ``model`` on ``utterances`` (evaluated now, resumed, or reused) and whether
    it was reused without evaluating anything."""
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.options import build_options
    from voxproof.run.runner import RunOptions, run_eval

    plan = plan_run(model, utterances, cache_dir, dataset=dataset, conditions=conditions, normalizer=normalizer,
                    seed=seed)
    if plan.reusable:
        log.debug("reusing the finished run %s for %s", plan.run_dir, model.backend)
        return plan.run_dir, True
    if plan.exists:
        log.debug("resuming the unfinished run %s", plan.run_dir)
    options = build_options(get_spec(model.backend, kind="asr").options_class(), list(model.pairs))
    run_eval(
        lambda: load_backend(model.backend, options, kind="asr"),
        list(utterances),
        plan.run_dir,
        options=RunOptions(seed=seed, workers=workers),
        conditions=list(conditions),
        normalizer={"name": normalizer.name, "version": normalizer.version},
        dataset=dataset,
        resume=plan.exists,
        progress=progress,
    )
    return plan.run_dir, False
