"""Audit stage: poisoning / backdoor scan of a training manifest.

Finds a short sound repeated across many items (a backdoor trigger) by *sub-segment* fingerprint
matching, and checks whether the items carrying it share a transcript word that is over-represented
among them (the label the trigger teaches).

Method: every loud frame of every item's fingerprint (:mod:`voxproof.audit.fingerprint`, 16 ms hop) gives
a 16-bit key (the low bits of its code: a partial match survives the trigger being mixed over speech).
Items sharing a key vote for their time offset; a pair with at least ``min_votes`` votes at one offset is
verified: it shares a segment when some ``WINDOW`` consecutive aligned frames have a bit error rate at
most ``max_segment_ber`` (random audio gives about 0.5). Pairs whose whole overlap matches (BER at most
``whole_file_ber``) are whole-file duplicates (the duplicate stage reports those) and are skipped. Linked items form clusters; a cluster of
at least ``min_items`` is a repeated sound. Words are then tested per item for over-representation in
the cluster (one-sided Fisher exact test, Bonferroni over the cluster's words). Key groups larger than
``max_group`` items (stationary sounds every item has, such as hum or silence) are skipped, which keeps
the pair work bounded; memory holds the loud-frame keys of the manifest (4 bytes x 3 per frame).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from voxproof.audit.findings import Finding
from voxproof.audit.fingerprint import Fingerprint, UnionFind

log = logging.getLogger("voxproof.audit.poison")

KEY_MASK = (1 << 16) - 1
WINDOW = 16  # frames (16 ms hop, 128 ms frames: about 0.37 s of audio) a shared segment must span
HOP_S = 0.016


@dataclass(frozen=True)
class PoisonOptions:
    min_votes: int = 1
    min_items: int = 3
    max_group: int = 64
    max_segment_ber: float = 0.2
    whole_file_ber: float = 0.3
    max_p: float = 1e-3


def tokens(text: str | None) -> set[str]:
    return {w.strip(".,;:!?\"'()").lower() for w in (text or "").split()} - {""}


def find_repeated_sounds(items: Iterable[tuple[str, Fingerprint | bytes | None, str | None]],
                         options: PoisonOptions = PoisonOptions()) -> list[Finding]:
    """``items``: (id, fingerprint or its stored bytes, transcript). Findings ``poison.repeated_sound`` (medium) or, with an
    over-represented word, ``poison.backdoor`` (high), each naming the items."""
    ids: list[str] = []
    texts: list[set[str]] = []
    loud_len: list[int] = []
    prints: list[Fingerprint | None] = []
    keys, owners, frames = [], [], []
    for item_id, fp, text in items:
        idx = len(ids)
        if isinstance(fp, (bytes, memoryview)):
            fp = Fingerprint.from_bytes(bytes(fp))
        ids.append(item_id)
        texts.append(tokens(text))
        prints.append(fp)
        if fp is None or len(fp) == 0:
            loud_len.append(0)
            continue
        f = np.flatnonzero(fp.loud)
        loud_len.append(len(f))
        keys.append((fp.codes[f] & KEY_MASK).astype(np.uint32))
        owners.append(np.full(len(f), idx, dtype=np.int32))
        frames.append(f.astype(np.int32))
    if not keys:
        return []
    k, o, fr = np.concatenate(keys), np.concatenate(owners), np.concatenate(frames)
    order = np.lexsort((fr, o, k))
    k, o, fr = k[order], o[order], fr[order]
    bounds = np.flatnonzero(np.diff(k)) + 1
    votes: Counter[tuple[int, int, int]] = Counter()
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(k)]):
        if end - start < 2:
            continue
        grp_o, grp_f = o[start:end], fr[start:end]
        uniq = np.unique(grp_o)
        if len(uniq) < 2 or len(uniq) > options.max_group:
            continue
        for a in range(len(grp_o)):
            for b in range(a + 1, len(grp_o)):
                if grp_o[a] != grp_o[b]:
                    votes[(int(grp_o[a]), int(grp_o[b]), int(grp_f[b] - grp_f[a]))] += 1
    uf = UnionFind()
    linked = 0
    for (a, b, offset), n in votes.items():
        if n < options.min_votes or uf.find(a) == uf.find(b):
            continue
        segment, whole = _segment_ber(prints[a], prints[b], offset)
        if segment > options.max_segment_ber or whole <= options.whole_file_ber:
            continue  # no shared segment, or most of the overlap matches: a whole-file duplicate
        uf.union(a, b)
        linked += 1
    findings = []
    for cluster in uf.clusters():
        if len(cluster) < options.min_items:
            continue
        findings.append(_cluster_finding(sorted(cluster), ids, texts, options))
    log.debug("poison scan: %d items, %d linked pairs, %d clusters", len(ids), linked, len(findings))
    return findings


def _segment_ber(a: Fingerprint, b: Fingerprint, offset: int) -> tuple[float, float]:
    """(lowest bit error rate over any ``WINDOW`` consecutive aligned frames, BER over the whole overlap)
    for frame ``i`` of ``a`` aligned with frame ``i + offset`` of ``b``."""
    start, end = max(0, -offset), min(len(a), len(b) - offset)
    if end - start < WINDOW:
        return 1.0, 1.0
    x = a.codes[start:end] ^ b.codes[start + offset:end + offset]
    bits = np.unpackbits(x.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1).sum(axis=1) / 32.0
    windows = np.convolve(bits, np.ones(WINDOW) / WINDOW, mode="valid")
    return float(windows.min()), float(bits.mean())


def over_represented_word(cluster: Sequence[int], texts: list[set[str]],
                          max_p: float) -> tuple[str, float, int, int] | None:
    """The transcript word most over-represented in ``cluster`` (item indices into ``texts``) against the
    other items: (word, Bonferroni-corrected one-sided Fisher p, items in the cluster with it, items
    outside with it), or None when no word reaches ``max_p``."""
    from scipy.stats import fisher_exact

    inside = set(cluster)
    n_in, n_out = len(cluster), len(texts) - len(cluster)
    words = Counter(w for i in cluster for w in texts[i])
    outside = Counter(w for i, t in enumerate(texts) if i not in inside for w in t if w in words)
    best = None
    for word, a in words.items():
        b = outside[word]
        p = min(1.0, float(fisher_exact([[a, n_in - a], [b, n_out - b]], alternative="greater")[1]) * max(1, len(words)))
        if p <= max_p and (best is None or p < best[1]):
            best = (word, p, a, b)
    return best


def _cluster_finding(cluster: Sequence[int], ids: list[str], texts: list[set[str]], options: PoisonOptions) -> Finding:
    n_in, n_out = len(cluster), len(ids) - len(cluster)
    best = over_represented_word(cluster, texts, options.max_p)
    items = tuple(ids[i] for i in cluster)
    if best is None:
        return Finding("poison.repeated_sound", "medium", items,
                       f"a short sound recurs in {n_in} items (sub-segment fingerprint match), no transcript word "
                       "is over-represented among them", {"items": n_in},
                       "flag")
    word, p, a, b = best
    return Finding("poison.backdoor", "high", items,
                   f"a short sound recurs in {n_in} items and the word {word!r} appears in {a} of them against {b} "
                   f"of the other {n_out} items (Fisher p={p:.2g}, Bonferroni): a possible backdoor trigger",
                   {"items": n_in, "word": word, "in_cluster": a, "outside": b, "p_value": p},
                   "exclude")
