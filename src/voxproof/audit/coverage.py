"""Audit stage 5, coverage and bias: the distribution of every metadata tag in hours and utterances,
imbalance measures (normalised entropy, max/min ratio), speakers dominating the data, and tags missing
for a share of the items.

Hands a ``Coverage`` (for the datasheet and JSON) and dataset-level findings to the runner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from voxproof.audit.findings import Finding
from voxproof.manifest.utterance import Utterance

# tags that describe the data rather than the people or conditions in it: not judged for balance
_NOT_BALANCE = {"licence", "license", "source", "attribution", "split", "url", "path", "transcript"}
DEMOGRAPHIC = ("gender", "accent", "age", "dialect", "language", "device")


@dataclass(frozen=True)
class TagDistribution:
    """One tag: value -> (utterances, hours); items without the tag counted in ``missing``."""

    tag: str
    values: dict[str, tuple[int, float]]
    missing: int
    total: int
    normalised_entropy: float | None  # 1 = perfectly even (by hours), 0 = one value only
    max_min_ratio: float | None  # largest over smallest value, by hours
    truncated: bool = False  # more than MAX_DISTINCT values: only the first ones are listed

    def to_dict(self) -> dict[str, Any]:
        top = sorted(self.values.items(), key=lambda kv: -kv[1][1])
        return {
            "tag": self.tag,
            "values": {k: {"utterances": n, "hours": round(h, 4)} for k, (n, h) in top[:100]},
            "distinct_values": len(self.values),
            "truncated": self.truncated,
            "missing": self.missing,
            "missing_share": round(self.missing / self.total, 4) if self.total else 0.0,
            "normalised_entropy": None if self.normalised_entropy is None else round(self.normalised_entropy, 4),
            "max_min_ratio": None if self.max_min_ratio is None else round(self.max_min_ratio, 3),
        }


@dataclass(frozen=True)
class Coverage:
    items: int
    hours: float
    tags: tuple[TagDistribution, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "hours": round(self.hours, 4), "tags": [t.to_dict() for t in self.tags]}


def _imbalance(hours: list[float]) -> tuple[float | None, float | None]:
    total = sum(hours)
    if len(hours) < 2 or total <= 0:
        return None, None
    ent = -sum((h / total) * math.log(h / total) for h in hours if h > 0)
    positive = [h for h in hours if h > 0]
    ratio = max(positive) / min(positive) if positive else None
    return ent / math.log(len(hours)), ratio


MAX_DISTINCT = 10_000  # values tracked per tag: beyond this a tag is an identifier, not a category
MAX_SPEAKERS = 1_000_000  # speakers are tracked much further: dominance is judged among all of them


def compute_coverage(rows: Iterable[tuple[Utterance, float]]) -> Coverage:
    """Tag distributions from one pass over (utterance, duration in seconds). A tag with more than
    ``MAX_DISTINCT`` values (``MAX_SPEAKERS`` for the speaker) keeps counting its items and missing ones
    but stops listing values (``TagDistribution.truncated``), so memory stays bounded whatever the tags
    hold."""
    values: dict[str, dict[str, list[float]]] = {}
    present: dict[str, int] = {}
    truncated: set[str] = set()
    total, seconds = 0, 0.0
    for u, duration in rows:
        total += 1
        seconds += duration
        tags = {"speaker": u.speaker, "language": u.language, **u.tags}
        for key, v in tags.items():
            if v is None or str(v).strip() == "":
                continue
            present[key] = present.get(key, 0) + 1
            slots = values.setdefault(key, {})
            slot = slots.get(str(v))
            if slot is None:
                if len(slots) >= (MAX_SPEAKERS if key == "speaker" else MAX_DISTINCT):
                    truncated.add(key)
                    continue
                slot = slots[str(v)] = [0, 0.0]
            slot[0] += 1
            slot[1] += duration / 3600
    dists = []
    for key, slots in values.items():
        ent, ratio = (None, None) if key in truncated else _imbalance([h for _, h in slots.values()])
        dists.append(TagDistribution(key, {k: (int(n), float(h)) for k, (n, h) in slots.items()},
                                     total - present[key], total, ent, ratio, key in truncated))
    return Coverage(total, seconds / 3600, tuple(dists))


def coverage_findings(cov: Coverage, *, min_entropy: float = 0.7, dominant_share: float = 0.3) -> list[Finding]:
    findings: list[Finding] = []
    for d in cov.tags:
        share = d.missing / d.total if d.total else 0.0
        if 0 < share < 1:
            findings.append(
                Finding("coverage.missing_tag", "low" if share >= 0.05 else "info", (),
                        f"tag '{d.tag}' is missing on {d.missing} of {d.total} items ({share:.0%})",
                        {"tag": d.tag, "missing": d.missing, "share": round(share, 4)}, action="none")
            )
        if d.tag in DEMOGRAPHIC and d.normalised_entropy is not None and d.normalised_entropy < min_entropy:
            hours = {k: round(h, 4) for k, (_, h) in d.values.items()}
            findings.append(
                Finding("coverage.imbalance", "low", (),
                        f"tag '{d.tag}' is unbalanced: normalised entropy {d.normalised_entropy:.2f} "
                        f"(< {min_entropy}), largest/smallest value {d.max_min_ratio:.1f}x by hours",
                        {"tag": d.tag, "normalised_entropy": round(d.normalised_entropy, 4),
                         "max_min_ratio": round(d.max_min_ratio or 0.0, 3), "hours": hours}, action="none")
            )
        if d.tag == "speaker" and len(d.values) >= 3:
            total = sum(h for _, h in d.values.values())
            limit = max(dominant_share, 3.0 / len(d.values))
            for spk, (n, h) in d.values.items():
                if total > 0 and h / total > limit:
                    findings.append(
                        Finding("coverage.dominant_speaker", "medium", (),
                                f"speaker {spk} holds {h / total:.0%} of the hours ({n} items) among "
                                f"{len(d.values)} speakers",
                                {"speaker": spk, "share": round(h / total, 4), "limit": round(limit, 4)},
                                action="none")
                    )
    return findings
