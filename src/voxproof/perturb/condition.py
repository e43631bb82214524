"""Perturbation stage, what the runner holds: a ``Condition`` (named chain of perturbations), its seed
rule, and the ``PerturbContext`` that gives babble noise access to other speakers' audio.

Seeds: ``condition_seed(run_seed, utt_id, condition_name)`` hashes its inputs with SHA-256, so the
perturbed audio of one utterance depends only on those three values (not on worker order, threads,
the clock or a global RNG). Step ``i`` of a chain draws from ``numpy.random.Generator(PCG64(
SeedSequence([seed, i])))``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.perturb.base import (
    SPEC_VERSION,
    Perturbation,
    chain_label,
    perturbation_from_spec,
)

log = logging.getLogger("voxproof.perturb")


def condition_seed(run_seed: int, utt_id: str, condition_name: str) -> int:
    """A 63-bit seed for one (run seed, utterance, condition), derived with SHA-256."""
    digest = hashlib.sha256(f"voxproof-perturb\x00{int(run_seed)}\x00{utt_id}\x00{condition_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator chain step ``step`` draws from (independent streams per step)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(step)])))


@dataclass(frozen=True)
class Condition:
    """A named, serialisable chain of perturbations applied to an utterance's clean audio.

    ``name`` is stable and human readable (``noise-ladder/snr=10`` for a suite rung, the canonical
    chain text such as ``codec:opus,bitrate=8`` for a ``--perturb``). ``severity`` is on the
    ``axis`` scale of the condition's main step; ``worse`` says which direction is harsher.
    """

    name: str
    chain: tuple[Perturbation, ...]
    suite: str | None = None
    severity: float | None = None
    family: str | None = None
    axis: str | None = None
    worse: str = "higher"
    suite_version: int | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name == "clean":
            raise UsageError(f"a condition needs a name other than 'clean' (got {self.name!r})")
        if not self.chain:
            raise UsageError(f"condition {self.name!r} has no perturbation steps")

    @property
    def label(self) -> str:
        """The chain in text syntax (parses back with ``parse_chain``)."""
        return chain_label(self.chain)

    def apply(self, audio: Audio, seed: int, context: PerturbContext | None = None) -> Audio:
        """The perturbed audio at the input's sample rate. Same ``seed`` -> identical samples."""
        for i, step in enumerate(self.chain):
            audio = step.apply(audio, step_rng(seed, i), context)
        return audio

    def unavailable_reason(self) -> str | None:
        """Why this condition cannot run on this machine (e.g. no AMR-NB encoder), or ``None``."""
        for step in self.chain:
            reason = step.unavailable_reason()
            if reason is not None:
                return f"{step.label()}: {reason}"
        return None

    def chain_spec(self) -> tuple[dict[str, Any], ...]:
        """The serialised chain, as stored on each row's ``perturbation`` field."""
        return tuple(step.to_spec() for step in self.chain)

    def to_spec(self) -> dict[str, Any]:
        """JSON dict stored in the run's ``conditions`` table (``chain`` holds the steps)."""
        return {
            "spec_version": SPEC_VERSION,
            "name": self.name,
            "label": self.label,
            "suite": self.suite,
            "suite_version": self.suite_version,
            "family": self.family,
            "severity": self.severity,
            "axis": self.axis,
            "worse": self.worse,
            "chain": list(self.chain_spec()),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Condition:
        """Inverse of :meth:`to_spec`."""
        try:
            chain = tuple(perturbation_from_spec(s) for s in spec["chain"])
            return cls(
                name=str(spec["name"]),
                chain=chain,
                suite=spec.get("suite"),
                severity=None if spec.get("severity") is None else float(spec["severity"]),
                family=spec.get("family"),
                axis=spec.get("axis"),
                worse=spec.get("worse") or "higher",
                suite_version=spec.get("suite_version"),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(f"not a condition spec ({exc}): {spec!r}") from None

    @classmethod
    def from_chain(
        cls, chain: tuple[Perturbation, ...], *, name: str | None = None, suite: str | None = None,
        suite_version: int | None = None, main: int | None = None,
    ) -> Condition:
        """A condition whose family/severity/axis come from step ``main`` (default: the last step with a
        severity, else the last step) and whose name defaults to the chain's text form."""
        if main is None:
            with_sev = [i for i, s in enumerate(chain) if s.severity is not None]
            main = with_sev[-1] if with_sev else len(chain) - 1
        step = chain[main]
        return cls(
            name=name or chain_label(chain), chain=chain, suite=suite, suite_version=suite_version,
            severity=step.severity, family=step.family, axis=step.axis, worse=step.worse,
        )


# -- context for babble -------------------------------------------------------------------------
@dataclass(frozen=True)
class BabbleSource:
    """Another utterance of the dataset that babble noise may mix in: id, speaker, and a loader."""

    utt_id: str
    speaker: str | None
    load: Callable[[], Audio] = field(compare=False, repr=False)


@dataclass(frozen=True)
class PerturbContext:
    """What perturbations may need beyond the audio itself: the dataset's other utterances (for babble).

    Build it once per run with :meth:`from_utterances`, then hand each utterance its own view with
    :meth:`for_utterance` (that view knows the current speaker, whom babble must exclude).
    """

    sources: tuple[BabbleSource, ...] = ()
    current_id: str | None = None
    current_speaker: str | None = None

    @classmethod
    def from_utterances(
        cls, utterances: Iterable[Any], load_fn: Callable[[Any], Audio], *, cache_size: int = 64
    ) -> PerturbContext:
        """Sources from voxproof ``Utterance`` records (``.id``, ``.speaker``) and ``load_fn(utt) -> Audio``.

        Loads are lazy and the most recent ``cache_size`` decoded utterances are kept in memory.
        """
        utts = sorted(utterances, key=lambda u: u.id)  # order-independent selection by seed
        by_id = {u.id: u for u in utts}

        @functools.lru_cache(maxsize=cache_size)
        def cached(utt_id: str) -> Audio:
            return load_fn(by_id[utt_id])

        return cls(tuple(BabbleSource(u.id, u.speaker, functools.partial(cached, u.id)) for u in utts))

    def for_utterance(self, utt: Any) -> PerturbContext:
        """This context seen from utterance ``utt`` (a record with ``.id`` and ``.speaker``)."""
        return replace(self, current_id=utt.id, current_speaker=utt.speaker)

    @property
    def knows_current(self) -> bool:
        return self.current_id is not None

    def others(self) -> tuple[BabbleSource, ...]:
        """Sources by other speakers. With the current speaker unknown, every source except the current
        utterance; sources whose speaker is unknown are kept only then (they could be anyone)."""
        if self.current_speaker is None:
            return tuple(s for s in self.sources if s.utt_id != self.current_id)
        return tuple(
            s for s in self.sources
            if s.utt_id != self.current_id and s.speaker is not None and s.speaker != self.current_speaker
        )


def with_context(context: PerturbContext | None, utt: Any) -> PerturbContext | None:
    """``context.for_utterance(utt)``, or ``None`` without a context."""
    return None if context is None else context.for_utterance(utt)


def speakers_of(sources: Sequence[BabbleSource]) -> set[str | None]:
    return {s.speaker for s in sources}
