"""What a run evaluates: the utterances of a dataset (optionally the first N), the perturbation
conditions asked for, and the dataset's provenance record. Shared by ``eval`` and ``gate``.

With ``limit=N`` only the first N utterances are read, validated and hashed (the manifest is streamed and
the rest never read), and the provenance says so (``dataset.limit``, ``dataset.hashed``): the hash then
identifies those N utterances, not the whole manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof.errors import DataError, UsageError
from voxproof.manifest.utterance import Utterance


@dataclass(frozen=True)
class RunInputs:
    source: Path
    utterances: list[Utterance]
    conditions: list[Any]
    dataset: dict[str, Any]


def resolve_inputs(
    data: str | Path | None,
    *,
    data_format: str | None = None,
    limit: int | None = None,
    suites: tuple[str, ...] | list[str] = (),
    perturbs: tuple[str, ...] | list[str] = (),
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> RunInputs:
    """Read the dataset (default: the bundled LibriSpeech sample), keep the first ``limit`` utterances,
    resolve the conditions. ``data`` may also name a generated suite (``non-speech`` or
    ``non-speech@1``, ``sessions``): it is built for ``seed`` under ``cache_dir`` (default ``~/.cache/voxproof/suites``)
    once and read like any manifest. Raises :class:`UsageError` for a bad limit or condition,
    :class:`DataError` for an empty dataset."""
    from voxproof.manifest import bundled_dataset_path, dataset_hash, read_manifest
    from voxproof.perturb import generated

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    suite = generated.parse_ref(str(data)) if data and not Path(data).exists() else None
    if suite is not None:
        source = generated.build(str(data), seed, cache_dir)
    else:
        source = Path(data) if data else bundled_dataset_path()
    utterances = list(read_manifest(source, format=data_format, limit=limit))
    if not utterances:
        raise DataError(f"the dataset at {source} has no utterances")
    conditions: list[Any] = []
    if suites or perturbs:
        from voxproof.perturb import resolve_conditions

        conditions = resolve_conditions(list(suites), list(perturbs))
    dataset: dict[str, Any] = {"source": str(source), "hash": dataset_hash(utterances), "utterances": len(utterances)}
    if suite is not None:
        dataset["suite"] = f"{suite[0]}@{suite[1]}"
        dataset["suite_seed"] = seed
    if limit is not None:
        dataset["limit"] = limit
        dataset["hashed"] = (
            f"the first {len(utterances)} utterance(s) of the manifest (--limit {limit}); the rest was not read"
        )
    return RunInputs(source, utterances, conditions, dataset)
