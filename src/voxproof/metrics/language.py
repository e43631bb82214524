"""Language confusion: the share of a system's outputs identified as a language other than the expected
one, with the offline text language identifier ``langid`` (Lui & Baldwin 2012; its model ships inside
the PyPI package, nothing is downloaded). Empty outputs are left out and counted; the interval resamples
utterances (or speakers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.errors import BackendUnavailable, UsageError
from voxproof.metrics.intervals import Interval, _num, bootstrap_rate

MIN_CHARS = 1


@dataclass(frozen=True)
class LanguageConfusion:
    expected: str
    outputs: int
    empty: int
    confused: int
    rate: Interval
    identified: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "outputs": self.outputs, "empty": self.empty, "confused": self.confused,
                "rate": self.rate.to_dict(), "identified": dict(self.identified),
                "identifier": "langid", "share": _num(self.rate.estimate)}


def identify(texts: Sequence[str]) -> list[str]:
    try:
        import langid
    except ImportError:
        raise BackendUnavailable("language identification needs langid: pip install 'voxproof[lang]'") from None
    return [langid.classify(t)[0] for t in texts]


def language_confusion(texts: Sequence[str], expected: str, *, speakers: Sequence[str | None] | None = None,
                       n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> LanguageConfusion:
    if not expected or not expected.isalpha() or len(expected) > 3:
        raise UsageError(f"expected language {expected!r} must be an ISO 639-1 code such as en or de")
    keep = [i for i, t in enumerate(texts) if len(t.strip()) >= MIN_CHARS]
    langs = identify([texts[i] for i in keep])
    wrong = [int(lang != expected) for lang in langs]
    groups = None
    if speakers is not None:
        spk = [speakers[i] for i in keep]
        groups = spk if spk and all(s is not None for s in spk) and len(set(spk)) >= 2 else None
    rate = bootstrap_rate(wrong, [1] * len(wrong), groups=groups, n_resamples=n_resamples, seed=seed, level=level)
    return LanguageConfusion(expected, len(keep), len(texts) - len(keep), sum(wrong), rate, dict(Counter(langs)))
