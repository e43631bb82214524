"""The normaliser record: a named, versioned chain of small text steps (the first stage of scoring).

A normaliser is part of the metric: its ``name`` and ``version`` are recorded in every run and every
score, and a change to its output on any input means a new version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Step = Callable[[str], str]

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class NamedStep:
    """One step of a chain: a name (shown by ``voxproof`` and in docs) and a text -> text function."""

    name: str
    fn: Step

    def __call__(self, text: str) -> str:
        return self.fn(text)


@dataclass(frozen=True)
class Normalizer:
    """A named, versioned text normaliser. ``__call__`` runs the steps in order, then collapses
    whitespace and strips the ends, so ``text.split()`` gives the tokens that are scored."""

    name: str
    version: str
    steps: tuple[NamedStep, ...]
    description: str = ""

    def __call__(self, text: str) -> str:
        for step in self.steps:
            text = step(text)
        return _SPACES.sub(" ", text).strip()

    def trace(self, text: str) -> list[tuple[str, str]]:
        """The text after every step, for debugging a surprising score: [(step name, text), ...]."""
        out = [("input", text)]
        for step in self.steps:
            text = step(text)
            out.append((step.name, text))
        return out

    @property
    def label(self) -> str:
        """``name@version``, the key under which counts are cached and scores are recorded."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "steps": [s.name for s in self.steps]}
