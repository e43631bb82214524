"""Perturbation stage: seeded, serialisable audio transforms, grouped into conditions and suites.

The runner calls :func:`resolve_conditions` once (``--suite``/``--perturb``), then for each utterance and
condition ``condition.apply(clean_audio, condition_seed(run_seed, utt.id, condition.name),
context.for_utterance(utt))``, and stores ``condition.to_spec()`` with the run and
``condition.chain_spec()`` on each row. The clean condition is never part of the list.

Text syntax of ``--perturb``: see :mod:`voxproof.perturb.base` (``noise:snr=10``,
``codec:opus,bitrate=8k``, ``codec:mp3,bitrate=16k+noise:snr=20``, ``noise:snr=10,dir=/my/noise``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from voxproof.errors import UsageError
from voxproof.perturb.base import (
    Perturbation,
    PerturbationError,
    PerturbationUnavailable,
    chain_label,
    parse_chain,
    parse_step,
    perturbation_from_spec,
    registry,
)
from voxproof.perturb.channel import BandLimit, Clip, Gain, PacketLoss, Speed, Tempo
from voxproof.perturb.codec import CODECS, Codec, Telephone
from voxproof.perturb.condition import BabbleSource, Condition, PerturbContext, condition_seed, with_context
from voxproof.perturb.noise import AddNoise
from voxproof.perturb.reverb import Reverb, Room
from voxproof.perturb.suites import SUITE_NAMES, Suite, get_suite, list_suites

log = logging.getLogger("voxproof.perturb")


def resolve_conditions(suites: Iterable[str] = (), perturbs: Iterable[str] = ()) -> list[Condition]:
    """Conditions of the named suites (``NAME`` or ``NAME@VERSION``) followed by one per ``--perturb``
    chain, in order, without duplicates (same name, or same chain under another name: the first wins).
    The clean condition is not included. Raises :class:`UsageError` for unknown names or bad values."""
    out: list[Condition] = []
    by_name: dict[str, Condition] = {}
    by_label: dict[str, str] = {}

    def add(cond: Condition) -> None:
        if cond.name in by_name:
            if by_name[cond.name].label != cond.label:
                raise UsageError(f"two different conditions are named {cond.name!r}")
            return
        if cond.label in by_label:
            log.info("condition %s is the same chain as %s; running it once", cond.name, by_label[cond.label])
            return
        by_name[cond.name] = cond
        by_label[cond.label] = cond.name
        out.append(cond)

    for ref in suites:
        for cond in get_suite(ref).conditions:
            add(cond)
    for text in perturbs:
        add(Condition.from_chain(parse_chain(text)))
    return out


__all__ = [
    "CODECS",
    "SUITE_NAMES",
    "AddNoise",
    "BabbleSource",
    "BandLimit",
    "Clip",
    "Codec",
    "Condition",
    "Gain",
    "PacketLoss",
    "PerturbContext",
    "Perturbation",
    "PerturbationError",
    "PerturbationUnavailable",
    "Reverb",
    "Room",
    "Speed",
    "Suite",
    "Telephone",
    "Tempo",
    "chain_label",
    "condition_seed",
    "get_suite",
    "list_suites",
    "parse_chain",
    "parse_step",
    "perturbation_from_spec",
    "registry",
    "resolve_conditions",
    "with_context",
]
