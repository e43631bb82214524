"""Audit stage 4, contamination and leakage between two datasets (``voxproof audit TRAIN --against TEST``):
shared audio (exact PCM and near fingerprints), shared or highly overlapping transcripts (normalised word
n-grams), and speakers present in both.

Findings name the TRAIN items (the dataset being audited, the one ``--fix`` cleans) and carry the TEST
items they collide with in the evidence.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from voxproof.audit.findings import Finding
from voxproof.audit.fingerprint import Fingerprint, find_near_duplicates
from voxproof.audit.transcript import normalise_for_match

log = logging.getLogger("voxproof.audit.contamination")


@dataclass(frozen=True)
class Side:
    """One dataset's part in a comparison: ids, texts, speakers, PCM hashes and fingerprints, aligned.
    Each may be a list or a lazy view of the audit's store: they are streamed once, and looked up by
    position only for the items a check names."""

    ids: Sequence[str]
    texts: Sequence[str | None]
    speakers: Sequence[str | None]
    hashes: Sequence[str | None]
    prints: Sequence[Fingerprint | None]


def _hash64(h: str) -> int:
    return int(h[:16], 16) - (1 << 63)  # the first 64 bits of a SHA-1, as a signed int64


def _sorted_index(keys: list[int] | np.ndarray, positions: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, positions) as int64/int32 arrays sorted by key: a compact lookup table (12 bytes an entry)."""
    k = np.asarray(keys, dtype=np.int64)
    p = np.asarray(positions, dtype=np.int32)
    order = np.argsort(k, kind="stable")
    return k[order], p[order]


def _lookup(keys: np.ndarray, positions: np.ndarray, key: int, limit: int) -> list[int]:
    lo = int(np.searchsorted(keys, key, "left"))
    hi = int(np.searchsorted(keys, key, "right"))
    return positions[lo:min(hi, lo + limit)].tolist()


def shared_audio(train: Side, test: Side, *, max_ber: float) -> list[Finding]:
    findings: list[Finding] = []
    keys, pos = [], []
    for j, h in enumerate(test.hashes):
        if h:
            keys.append(_hash64(h))
            pos.append(j)
    test_keys, test_pos = _sorted_index(keys, pos)
    del keys, pos
    exact_pairs = set()
    for i, (tid, h) in enumerate(zip(train.ids, train.hashes)):
        if not h:
            continue
        hits = [test.ids[j] for j in _lookup(test_keys, test_pos, _hash64(h), 20) if test.hashes[j] == h]
        if hits:
            exact_pairs.add(i)
            findings.append(
                Finding("contamination.exact_audio", "critical", (tid,),
                        f"training item {tid} has the same decoded audio as test item(s) {', '.join(hits[:5])}",
                        {"test_items": hits}, action="exclude")
            )
    n = len(train.ids)
    matches, stats = find_near_duplicates(_Chain(train.prints, test.prints), max_ber=max_ber, boundary=n)
    near: dict[int, list[tuple[str, float]]] = {}
    for m in matches:
        a, b = (m.a, m.b) if m.a < n else (m.b, m.a)
        if a in exact_pairs:
            continue
        near.setdefault(a, []).append((test.ids[b - n], m.ber))
    for a, hits in near.items():
        hits.sort(key=lambda x: x[1])
        findings.append(
            Finding("contamination.near_audio", "critical", (train.ids[a],),
                    f"training item {train.ids[a]} holds the same audio as test item(s) "
                    f"{', '.join(h[0] for h in hits[:5])} (re-encoded, re-levelled or trimmed)",
                    {"test_items": [h[0] for h in hits[:20]], "ber": [round(h[1], 3) for h in hits[:20]],
                     "max_ber": max_ber}, action="exclude")
        )
    log.debug("contamination index: %s", stats)
    return findings


class _Chain(Sequence):
    """Two sequences one after the other, without copying either (they may be lazy store views)."""

    def __init__(self, first: Sequence, second: Sequence):
        self.first, self.second, self.n = first, second, len(first)

    def __len__(self) -> int:
        return self.n + len(self.second)

    def __iter__(self) -> Iterator:
        yield from self.first
        yield from self.second

    def __getitem__(self, i):  # type: ignore[override]
        return self.first[i] if i < self.n else self.second[i - self.n]


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _gram_keys(text: str | None, n: int, min_words: int) -> list[int]:
    """64-bit keys of the distinct normalised word n-grams of ``text`` (none below ``min_words`` words)."""
    w = normalise_for_match(text).split() if text else []
    if len(w) < min_words:
        return []
    return [int.from_bytes(hashlib.blake2b(" ".join(g).encode(), digest_size=8).digest(), "little", signed=True)
            for g in _ngrams(w, n)]


def shared_transcripts(
    train: Side, test: Side, *, n: int = 4, min_overlap: float = 0.8, min_words: int = 4
) -> list[Finding]:
    """Training transcripts equal to, or sharing at least ``min_overlap`` of the word ``n``-grams of the
    shorter of the two with, a test transcript (normalised; both need at least three n-grams). Work is
    linear: the test n-grams go into one sorted table of 64-bit keys (12 bytes an n-gram), at most 50
    test items per n-gram."""
    keys: list[int] = []
    pos: list[int] = []
    gram_count: list[int] = []
    for j, t in enumerate(test.texts):
        g = _gram_keys(t, n, min_words)
        gram_count.append(len(g))
        keys += g
        pos += [j] * len(g)
    index_keys, index_pos = _sorted_index(keys, pos)
    counts = np.asarray(gram_count, dtype=np.int32)
    del keys, pos, gram_count
    findings = []
    for i, (tid, t) in enumerate(zip(train.ids, train.texts)):
        grams = _gram_keys(t, n, min_words)
        if not grams:
            continue
        hits: dict[int, int] = {}
        for g in grams:
            for j in _lookup(index_keys, index_pos, g, 50):
                hits[j] = hits.get(j, 0) + 1
        if not hits:
            continue
        j, count = max(hits.items(), key=lambda kv: kv[1])
        shorter = min(len(grams), int(counts[j]))
        overlap = count / shorter
        # a short test text inside a long training text is weak evidence: both need 3+ n-grams
        if overlap >= min_overlap and shorter >= 3:
            identical = normalise_for_match(t or "") == normalise_for_match(test.texts[j] or "")
            findings.append(
                Finding("contamination.transcript", "high", (tid,),
                        f"training transcript of {tid} "
                        + ("equals" if identical else f"overlaps {overlap:.0%} of") + f" test transcript of {test.ids[j]}",
                        {"test_item": test.ids[j], "ngram": n, "overlap": round(overlap, 3),
                         "identical": identical, "threshold": min_overlap}, action="exclude")
            )
    return findings


def shared_speakers(train: Side, test: Side) -> list[Finding]:
    test_speakers: dict[str, int] = {}
    for s in test.speakers:
        if s:
            test_speakers[s] = test_speakers.get(s, 0) + 1
    by_speaker: dict[str, list[str]] = {}
    for i, s in zip(train.ids, train.speakers):
        if s and s in test_speakers:
            by_speaker.setdefault(s, []).append(i)
    return [
        Finding("contamination.speaker", "high", tuple(items),
                f"speaker {s} is in both datasets ({len(items)} training, {test_speakers[s]} test items): "
                "results on the test set are not speaker-independent",
                {"speaker": s, "train_items": len(items), "test_items": test_speakers[s]})
        for s, items in by_speaker.items()
    ]


def check_contamination(train: Side, test: Side, *, max_ber: float, ngram: int = 4,
                        min_overlap: float = 0.8) -> list[Finding]:
    return (
        shared_audio(train, test, max_ber=max_ber)
        + shared_transcripts(train, test, n=ngram, min_overlap=min_overlap)
        + shared_speakers(train, test)
    )
