"""Audit stage 3, duplicates inside one dataset: exact audio (same decoded PCM), near audio (matching
fingerprints, found through the index in ``fingerprint``), and duplicate transcripts.

Every cluster becomes one finding listing its members; the first member (manifest order) is kept and
the others are the ones ``--fix`` removes (``evidence["keep"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from voxproof.audit.findings import Finding
from voxproof.audit.fingerprint import Fingerprint, IndexStats, find_near_duplicates
from voxproof.audit.transcript import normalise_for_match

log = logging.getLogger("voxproof.audit.duplicates")


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def clusters(self) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            groups.setdefault(self.find(i), []).append(i)
        return [sorted(g) for g in groups.values() if len(g) > 1]


def exact_duplicates(ids: Sequence[str], hashes: Sequence[str | None]) -> list[Finding]:
    """Items whose decoded samples are identical (a lossless re-encode counts)."""
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        if h:
            groups.setdefault(h, []).append(i)
    findings = []
    for h, members in groups.items():
        if len(members) < 2:
            continue
        names = tuple(ids[i] for i in members)
        findings.append(
            Finding("duplicate.exact_audio", "medium", names,
                    f"{len(names)} items decode to identical samples; keep {names[0]}, drop the rest",
                    {"pcm_sha1": h[:16], "keep": names[0], "size": len(names)}, action="exclude")
        )
    return findings


def near_duplicates(
    ids: Sequence[str],
    prints: list[Fingerprint | None],
    hashes: Sequence[str | None],
    *,
    max_ber: float,
) -> tuple[list[Finding], IndexStats]:
    """Clusters of items with matching fingerprints that are not already exact copies of each other."""
    matches, stats = find_near_duplicates(prints, max_ber=max_ber)
    uf = UnionFind(len(ids))
    best: dict[tuple[int, int], float] = {}
    for m in matches:
        if hashes[m.a] and hashes[m.a] == hashes[m.b]:
            continue  # reported as an exact duplicate
        uf.union(m.a, m.b)
        best[(m.a, m.b)] = m.ber
    by_root: dict[int, list[dict[str, object]]] = {}
    for (a, b), ber in best.items():
        root_pairs = by_root.setdefault(uf.find(a), [])
        if len(root_pairs) < 20:
            root_pairs.append({"a": ids[a], "b": ids[b], "ber": round(ber, 3)})
    findings = []
    for members in uf.clusters():
        names = tuple(ids[i] for i in members)
        pairs = by_root.get(uf.find(members[0]), [])
        findings.append(
            Finding("duplicate.near_audio", "medium", names,
                    f"{len(names)} items hold the same audio (re-encoded, re-levelled or trimmed); keep "
                    f"{names[0]}, drop the rest",
                    {"keep": names[0], "size": len(names), "pairs": pairs, "max_ber": max_ber,
                     "fingerprint": "band-energy-sign 8 kHz"}, action="exclude")
        )
    return findings, stats


def duplicate_transcripts(
    ids: Sequence[str], texts: Sequence[str | None], *, min_words: int = 4, exclude_ids: set[str] | None = None
) -> list[Finding]:
    """Different audio items with the same normalised transcript (at least ``min_words`` words: short
    prompts such as digits and commands are meant to repeat). Items already found to share audio are
    left out (``exclude_ids``)."""
    groups: dict[str, list[str]] = {}
    for i, t in zip(ids, texts):
        if not t or (exclude_ids and i in exclude_ids):
            continue
        n = normalise_for_match(t)
        if len(n.split()) >= min_words:
            groups.setdefault(n, []).append(i)
    findings = []
    for text, members in groups.items():
        if len(members) < 2:
            continue
        findings.append(
            Finding("duplicate.transcript", "low", tuple(members),
                    f"{len(members)} items share the transcript of {len(text.split())} words (same prompt read "
                    "again, or a copied label)",
                    {"words": len(text.split()), "size": len(members)})
        )
    return findings
