"""Audit stage 3, duplicates inside one dataset: exact audio (same decoded PCM), near audio (matching
fingerprints, found through the index in ``fingerprint``), and duplicate transcripts.

Every cluster becomes one finding listing its members; the first member (manifest order) is kept and
the others are the ones ``--fix`` removes (``evidence["keep"]``). Groups of equal hashes and transcripts
come in as (value, members) pairs, from SQL over the audit's store or ``group_values`` for lists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from voxproof.audit.findings import Finding
from voxproof.audit.fingerprint import Fingerprint, IndexStats, UnionFind, find_near_duplicates
from voxproof.audit.transcript import normalise_for_match

log = logging.getLogger("voxproof.audit.duplicates")


def group_values(ids: Sequence[str], values: Sequence[str | None]) -> list[tuple[str, list[str]]]:
    """(value, ids) for every value held by two or more items, from in-memory lists (the audit runner
    gets the same groups from SQL over its store)."""
    groups: dict[str, list[str]] = {}
    for i, v in zip(ids, values):
        if v:
            groups.setdefault(v, []).append(i)
    return [(v, members) for v, members in groups.items() if len(members) > 1]


def exact_duplicates(groups: Iterable[tuple[str, Sequence[str]]]) -> list[Finding]:
    """Items whose decoded samples are identical (a lossless re-encode counts): one finding per group of
    (PCM hash, member ids in manifest order)."""
    findings = []
    for h, members in groups:
        names = tuple(members)
        findings.append(
            Finding("duplicate.exact_audio", "medium", names,
                    f"{len(names)} items decode to identical samples; keep {names[0]}, drop the rest",
                    {"pcm_sha1": h[:16], "keep": names[0], "size": len(names)}, action="exclude")
        )
    return findings


def near_duplicates(
    ids: Sequence[str],
    prints: Sequence[Fingerprint | None],
    hashes: Sequence[str | None],
    *,
    max_ber: float,
) -> tuple[list[Finding], IndexStats]:
    """Clusters of items with matching fingerprints that are not already exact copies of each other.
    ``ids``, ``prints`` and ``hashes`` may be lazy (the store's views): only matched items are looked up."""
    matches, stats = find_near_duplicates(prints, max_ber=max_ber)
    uf = UnionFind()
    best: dict[tuple[int, int], float] = {}
    for m in matches:
        ha = hashes[m.a]
        if ha and ha == hashes[m.b]:
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


def transcript_key(text: str | None, min_words: int) -> str | None:
    """The normalised transcript two items must share to be duplicate transcripts; None below
    ``min_words`` words (short prompts such as digits and commands are meant to repeat)."""
    if not text:
        return None
    n = normalise_for_match(text)
    return n if len(n.split()) >= min_words else None


def duplicate_transcripts(groups: Iterable[tuple[str, Sequence[str]]], *, exclude_ids: set[str] | None = None
                          ) -> list[Finding]:
    """Different audio items with the same transcript key (``transcript_key``): one finding per group of
    (key, member ids). Items already found to share audio are left out (``exclude_ids``)."""
    findings = []
    for text, ids in groups:
        members = [i for i in ids if not (exclude_ids and i in exclude_ids)]
        if len(members) < 2:
            continue
        findings.append(
            Finding("duplicate.transcript", "low", tuple(members),
                    f"{len(members)} items share the transcript of {len(text.split())} words (same prompt read "
                    "again, or a copied label)",
                    {"words": len(text.split()), "size": len(members)})
        )
    return findings
