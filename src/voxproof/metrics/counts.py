"""Edit counts: the one truth every error rate is read from (corpus WER = total edits / total ref words)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts of one utterance or a sum of many. Tokens are words or characters."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def ref_len(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def hyp_len(self) -> int:
        return self.hits + self.substitutions + self.insertions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )

    @property
    def error_rate(self) -> float:
        """WER (or CER for character counts): edits / reference tokens; ``nan`` with no reference tokens
        and no insertions, ``inf`` with insertions only."""
        if self.ref_len == 0:
            return float("nan") if self.insertions == 0 else float("inf")
        return self.errors / self.ref_len

    @property
    def mer(self) -> float:
        """Match error rate: edits / (hits + edits)."""
        total = self.hits + self.substitutions + self.deletions + self.insertions
        return float("nan") if total == 0 else self.errors / total

    @property
    def wil(self) -> float:
        """Word information lost: 1 - hits^2 / (ref_len * hyp_len)."""
        if self.ref_len == 0 or self.hyp_len == 0:
            return float("nan") if self.ref_len == self.hyp_len else 1.0
        return 1.0 - (self.hits / self.ref_len) * (self.hits / self.hyp_len)

    @property
    def wip(self) -> float:
        """Word information preserved: 1 - WIL."""
        return 1.0 - self.wil

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorCounts:
        return cls(int(d["hits"]), int(d["substitutions"]), int(d["deletions"]), int(d["insertions"]))


def total(counts) -> ErrorCounts:
    """Sum of an iterable of :class:`ErrorCounts`."""
    out = ErrorCounts()
    for c in counts:
        out = out + c
    return out
