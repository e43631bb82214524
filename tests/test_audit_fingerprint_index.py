"""The near-duplicate index in bounded memory: cut into many partitions and spilled to temporary files,
it finds exactly the matches it finds in memory; it reads the fingerprints once, in order, and looks
items up only to verify candidate pairs.

Real recordings from ../shared/data (LibriSpeech test-other, CC BY 4.0) with planted copies: -12 dB,
0.05 s trimmed at either end, resampled to 22.05 kHz.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from voxproof.audit.fingerprint import (
    Fingerprint,
    NearMatch,
    UnionFind,
    compute_fingerprint,
    find_near_duplicates,
)
from voxproof.errors import DataError

LIBRI = "librispeech-test-other-mini"
SR = 16000
KEY_BITS = 24
TINY = 300  # entries in memory at once: forces many partitions, re-cut partitions and spilled votes


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> tuple[list[Fingerprint | None], list[tuple[int, int]]]:
    """Fingerprints of 20 utterances and 4 copies of each of 5 of them, shuffled, with one missing item;
    and the planted (original, copy) pairs as indices into that list."""
    clips = []
    for f in sorted((shared_data / LIBRI / "audio").glob("*.flac"))[:20]:
        x, sr = sf.read(f, dtype="float32")
        clips.append(soxr.resample(x, sr, SR) if sr != SR else x)
    trim = int(0.05 * SR)
    prints: list[Fingerprint | None] = [compute_fingerprint(x, SR) for x in clips]
    source = list(range(len(clips)))
    for k in range(0, 20, 4):
        x = clips[k]
        prints += [compute_fingerprint(0.25 * x, SR), compute_fingerprint(x[trim:], SR),
                   compute_fingerprint(x[:-trim], SR), compute_fingerprint(soxr.resample(x, SR, 22050), 22050)]
        source += [k] * 4
    prints.append(None)
    source.append(-1)
    order = np.random.default_rng(7).permutation(len(prints))
    where = {int(old): new for new, old in enumerate(order)}
    planted = [(where[s], where[c]) for c, s in enumerate(source) if s >= 0 and s != c]
    return [prints[i] for i in order], planted


def _rows(matches: list[NearMatch]) -> list[tuple]:
    return [astuple(m) for m in matches]


@pytest.mark.parametrize("options", [{"key_bits": KEY_BITS}, {"key_bits": KEY_BITS, "boundary": 22}, {}],
                         ids=["key-bits", "boundary", "default-key-bits"])
def test_partitioned_spilled_index_gives_the_in_memory_matches(corpus, options):
    prints, planted = corpus
    in_memory, mem_stats = find_near_duplicates(prints, **options)
    spilled, disk_stats = find_near_duplicates(prints, max_entries=TINY, **options)
    assert mem_stats.partitions == 1 and mem_stats.spilled_bytes == 0
    assert disk_stats.partitions > 1 and disk_stats.spilled_bytes > 0
    assert _rows(spilled) == _rows(in_memory)
    counts = ("indexed_frames", "candidate_pairs", "verified_pairs", "matches", "key_bits")
    assert [getattr(disk_stats, c) for c in counts] == [getattr(mem_stats, c) for c in counts]
    # every planted copy is found: joined to its original directly or through other copies (verification
    # skips pairs already joined); with a boundary, only pairs across it count and are reported
    boundary = options.get("boundary")
    if boundary is not None:
        assert in_memory and all((m.a < boundary) != (m.b < boundary) for m in in_memory)
        planted = [(a, b) for a, b in planted if (a < boundary) != (b < boundary)]
    root = _roots(in_memory)
    assert planted and all(root(a) == root(b) for a, b in planted)


def _roots(matches: list[NearMatch]):
    """Which cluster the matches put an item in (a root item per cluster)."""
    clusters = UnionFind()
    for m in matches:
        clusters.union(m.a, m.b)
    return clusters.find


class CountingPrints:
    """A lazy sequence of fingerprints (as a disk-backed store would be) that counts how it is read."""

    def __init__(self, prints: list[Fingerprint | None]):
        self._prints = prints
        self.passes = 0
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._prints)

    def __iter__(self) -> Iterator[Fingerprint | None]:
        self.passes += 1
        yield from self._prints

    def __getitem__(self, i: int) -> Fingerprint | None:
        self.lookups += 1
        return self._prints[i]


@pytest.mark.parametrize("max_entries", [4_000_000, TINY])
def test_prints_are_streamed_once_and_looked_up_only_to_verify(corpus, max_entries):
    prints, _ = corpus
    lazy = CountingPrints(prints)
    matches, stats = find_near_duplicates(lazy, key_bits=KEY_BITS, max_entries=max_entries)
    assert lazy.passes == 1
    assert 0 < lazy.lookups <= 2 * stats.verified_pairs
    assert _rows(matches) == _rows(find_near_duplicates(prints, key_bits=KEY_BITS)[0])


class ShortPrints(CountingPrints):
    """Claims one more item than it yields."""

    def __len__(self) -> int:
        return super().__len__() + 1


def test_a_source_that_yields_fewer_items_than_its_length_is_an_error(corpus):
    with pytest.raises(DataError, match="yielded"):
        find_near_duplicates(ShortPrints(corpus[0]), key_bits=KEY_BITS)
