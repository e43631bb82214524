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
    allow_url_host: tuple[str, ...] = (),
) -> tuple[Path, bool]:
    """The run directory of ``model`` on ``utterances`` (evaluated now, resumed, or reused) and whether
    it was reused without evaluating anything."""
    from voxproof.backends.registry import get_spec, load_backend
    from voxproof.options import build_options, options_dict
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import RunStore, store_path

    spec = get_spec(model.backend, kind="asr")
    options = build_options(spec.options_class(), list(model.pairs))
    key = cache_key(model.backend, options_dict(options), str(dataset.get("hash")),
                    [c.to_spec() for c in conditions], seed, normalizer.label)
    run_dir = Path(cache_dir) / f"{model.backend}-{key}"
    exists = store_path(run_dir).exists()
    if exists:
        with RunStore.open(run_dir) as store:
            status = store.meta("status")
            complete = status == "complete" and store.count_rows() == len(utterances) * (1 + len(conditions))
        if complete:
            log.info("reusing the finished run %s for %s", run_dir, model.backend)
            return run_dir, True
        log.info("resuming the unfinished run %s (status %s)", run_dir, status)
    run_eval(
        lambda: load_backend(model.backend, options, kind="asr"),
        list(utterances),
        run_dir,
        options=RunOptions(seed=seed, workers=workers, allow_url_host=tuple(allow_url_host)),
        conditions=list(conditions),
        normalizer={"name": normalizer.name, "version": normalizer.version},
        dataset=dataset,
        resume=exists,
        progress=progress,
    )
    return run_dir, False
