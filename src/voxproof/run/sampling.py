"""Choosing which utterances a run evaluates: a seeded sample stratified by speaker (``--sample N``).

Stage: between reading the manifest and the runner. ``--limit N`` takes the first N lines, which in a
corpus sorted by speaker is one speaker; a stratified sample spreads N over the speakers in proportion to
their share of the manifest (every speaker gets at least one utterance when N allows it). The same
manifest, N and seed always give the same utterances, in manifest order, on any machine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxproof.errors import UsageError
from voxproof.manifest.utterance import Utterance

SAMPLE_METHOD = "stratified-by-speaker/1"
_UNKNOWN = "\x00unknown"  # the stratum of utterances without a speaker (cannot clash with a real name)


def _allocate(sizes: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """How many utterances each stratum gives: ``n`` split in proportion to the strata's sizes (largest
    remainder, ties to the earlier stratum), then every empty stratum given one, taken from the largest
    allocation, so each speaker appears when ``n`` allows it. With fewer than one per stratum, ``n``
    strata are drawn without replacement with probability proportional to their size."""
    k, total = len(sizes), sum(sizes)
    if n < k:
        chosen = set(rng.choice(k, size=n, replace=False, p=np.asarray(sizes, dtype=float) / total).tolist())
        return [1 if i in chosen else 0 for i in range(k)]
    shares = [n * size / total for size in sizes]
    alloc = [math.floor(x) for x in shares]
    for i in sorted(range(k), key=lambda i: (-(shares[i] - alloc[i]), i))[: n - sum(alloc)]:
        alloc[i] += 1
    for i in range(k):
        if alloc[i] == 0:
            donor = max(range(k), key=lambda j: (alloc[j], -j))
            alloc[donor] -= 1
            alloc[i] = 1
    return alloc


def stratified_sample(utterances: Sequence[Utterance], n: int, seed: int) -> list[Utterance]:
    """``n`` utterances drawn with ``seed``, stratified by speaker, returned in manifest order.

    Utterances without a speaker form one stratum. ``n`` at or above the manifest size returns it all.
    Raises :class:`UsageError` for ``n < 1``.
    """
    if n < 1:
        raise UsageError(f"--sample must be at least 1, got {n}")
    if n >= len(utterances):
        return list(utterances)
    strata: dict[str, list[int]] = {}
    for i, utt in enumerate(utterances):
        strata.setdefault(utt.speaker if utt.speaker is not None else _UNKNOWN, []).append(i)
    keys = sorted(strata)
    rng = np.random.default_rng([seed % (1 << 64), 0x5A4D, len(utterances)])
    alloc = _allocate([len(strata[k]) for k in keys], n, rng)
    picked: list[int] = []
    for key, count in zip(keys, alloc):
        if count:
            members = strata[key]
            picked += [members[j] for j in rng.permutation(len(members))[:count].tolist()]
    return [utterances[i] for i in sorted(picked)]


def sample_inputs(inputs: Any, n: int, seed: int) -> Any:
    """``inputs`` (a :class:`~voxproof.run.inputs.RunInputs`) reduced to a stratified sample of ``n``
    utterances; the dataset record gets the sample's hash and count and a ``sample`` entry (n, seed,
    method, size of the manifest it was drawn from), so the run's provenance says how it was chosen."""
    from voxproof.manifest import dataset_hash

    chosen = stratified_sample(inputs.utterances, n, seed)
    speakers = {u.speaker for u in chosen}
    dataset = {
        **inputs.dataset,
        "hash": dataset_hash(chosen),
        "utterances": len(chosen),
        "sample": {"n": n, "seed": seed, "method": SAMPLE_METHOD, "of": len(inputs.utterances),
                   "speakers": len(speakers - {None})},
    }
    return dataclasses.replace(inputs, utterances=chosen, dataset=dataset)
