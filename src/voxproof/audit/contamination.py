"""Audit stage 4, contamination and leakage between two datasets (``voxproof audit TRAIN --against TEST``):
shared audio (exact PCM and near fingerprints), shared or highly overlapping transcripts (normalised word
n-grams), and speakers present in both.

Findings name the TRAIN items (the dataset being audited, the one ``--fix`` cleans) and carry the TEST
items they collide with in the evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from voxproof.audit.findings import Finding
from voxproof.audit.fingerprint import Fingerprint, find_near_duplicates
from voxproof.audit.transcript import normalise_for_match
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit.contamination")


@dataclass(frozen=True)
class Side:
    """One dataset's part in a comparison: ids, texts, speakers, PCM hashes and fingerprints, aligned."""

    ids: Sequence[str]
    texts: Sequence[str | None]
    speakers: Sequence[str | None]
    hashes: Sequence[str | None]
    prints: Sequence[Fingerprint | None]


def side_from(utts: Sequence[Utterance], analyses: dict[str, object]) -> Side:
    hashes, prints = [], []
    for u in utts:
        a = analyses.get(u.id)
        hashes.append(getattr(a, "pcm_sha1", None))
        prints.append(getattr(a, "fingerprint", None))
    return Side([u.id for u in utts], [u.text for u in utts], [u.speaker for u in utts], hashes, prints)


def shared_audio(train: Side, test: Side, *, max_ber: float) -> list[Finding]:
    findings: list[Finding] = []
    test_by_hash: dict[str, list[str]] = {}
    for i, h in zip(test.ids, test.hashes):
        if h:
            test_by_hash.setdefault(h, []).append(i)
    exact_pairs = set()
    for i, (tid, h) in enumerate(zip(train.ids, train.hashes)):
        if h and h in test_by_hash:
            exact_pairs.add(i)
            findings.append(
                Finding("contamination.exact_audio", "critical", (tid,),
                        f"training item {tid} has the same decoded audio as test item(s) "
                        f"{', '.join(test_by_hash[h][:5])}",
                        {"test_items": test_by_hash[h][:20]}, action="exclude")
            )
    n = len(train.ids)
    matches, stats = find_near_duplicates(list(train.prints) + list(test.prints), max_ber=max_ber, boundary=n)
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


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def shared_transcripts(
    train: Side, test: Side, *, n: int = 4, min_overlap: float = 0.8, min_words: int = 4
) -> list[Finding]:
    """Training transcripts equal to, or sharing at least ``min_overlap`` of the word ``n``-grams of the
    shorter of the two with, a test transcript (normalised; both need at least three n-grams). Work is
    linear: test n-grams go into one dictionary."""
    index: dict[tuple[str, ...], list[int]] = {}
    test_words: list[list[str]] = []
    for j, t in enumerate(test.texts):
        w = normalise_for_match(t).split() if t else []
        test_words.append(w)
        if len(w) >= min_words:
            for g in _ngrams(w, n):
                bucket = index.setdefault(g, [])
                if len(bucket) < 50:
                    bucket.append(j)
    findings = []
    for i, t in enumerate(train.texts):
        w = normalise_for_match(t).split() if t else []
        if len(w) < min_words:
            continue
        grams = _ngrams(w, n)
        if not grams:
            continue
        hits: dict[int, int] = {}
        for g in grams:
            for j in index.get(g, ()):
                hits[j] = hits.get(j, 0) + 1
        if not hits:
            continue
        j, count = max(hits.items(), key=lambda kv: kv[1])
        other = _ngrams(test_words[j], n)
        overlap = count / min(len(grams), len(other))
        # a short test text inside a long training text is weak evidence: both need 3+ n-grams
        if overlap >= min_overlap and min(len(grams), len(other)) >= 3:
            identical = w == test_words[j]
            findings.append(
                Finding("contamination.transcript", "high", (train.ids[i],),
                        f"training transcript of {train.ids[i]} "
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
