"""Audit stage: acoustic fingerprints and the index that finds near-duplicate audio without comparing
every pair.

A fingerprint is a band-energy-sign code in the style of Haitsma & Kalker (2002): the audio is taken to
8 kHz (so an 8 kHz recording and its 16 kHz upsampled copy give the same code), cut into 128 ms frames
every 16 ms, split into 33 log-spaced bands between 300 and 3,400 Hz, and each frame gives 32 bits: the
sign of the change across time of the energy difference between neighbouring bands. Signs of energy
differences do not move with gain; the bands sit well inside what MP3 keeps; the strong frame overlap
keeps bits stable under trims that are not a whole hop.

Search: every loud frame's code (its 22-28 low-band bits, see ``key_bits_for``) is a key. All (key, item,
frame) triples are sorted by key; inside a small key group (up to 16 items) every pair of items is a
candidate; inside a larger one (a code many items share) every item is paired with the group's first item
only (a star), so the work stays linear in the number of entries. Pairs that agree on the time offset for
at least ``min_votes`` keys are verified by the bit error rate (BER) over their overlap. Total work is
O(E log E) in the number of indexed frames E. Memory is bounded whatever E: the items are read once, the
triples are cut into partitions by key and, like the pair votes, spilled to temporary files past
``max_entries``; each partition is then sorted and paired on its own.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from voxproof.errors import DataError, UsageError

log = logging.getLogger("voxproof.audit.fingerprint")

FP_SAMPLE_RATE = 8000
FRAME = 1024  # 128 ms at 8 kHz
HOP = 128  # 16 ms
N_BANDS = 33
LOW_HZ, HIGH_HZ = 300.0, 3400.0
LOUD_RANGE_DB = 35.0  # frames this far below the loudest frame are not indexed (silence bits are noise)
# Keys are the lowest-band bits of a frame's code: fewer bits give more exact hits under trims and
# re-encoding, more bits keep random collisions rare. The width grows with the index (about four times
# as many keys as entries), between 22 and 28 bits, so random collisions per entry stay constant.
MIN_KEY_BITS, MAX_KEY_BITS = 22, 28
# The index is built in one pass over the items and processed in partitions (see find_near_duplicates).
ENTRIES_PER_ITEM = 64  # the estimate that sets the number of partitions up front (a 1 s item gives 50-60)
MIN_FRAME_BITS = 20  # an entry's frame index gets at least this many bits: items up to 4.6 h are indexed
MAX_PARTITION_BITS = 10  # at most 1,024 partitions, so as many temporary files per spilled buffer
MAX_ITEMS = 1 << 22  # a pair vote is coded as (a * items + b) * 2**19 + offset in an int64
_VOTE_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing spreads pairs evenly over vote buckets


def key_bits_for(entries: int) -> int:
    return int(min(MAX_KEY_BITS, max(MIN_KEY_BITS, math.ceil(math.log2(max(entries, 2))) + 2)))
VERSION = "bes-8k-2"


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """``codes``: one uint32 per frame (16 ms hop); ``loud``: frames within 35 dB of the loudest."""

    codes: np.ndarray
    loud: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def to_bytes(self) -> bytes:
        n = np.uint32(len(self.codes)).tobytes()
        return n + self.codes.astype("<u4").tobytes() + np.packbits(self.loud).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        n = int(np.frombuffer(data[:4], "<u4")[0])
        codes = np.frombuffer(data[4 : 4 + 4 * n], "<u4").astype(np.uint32)
        loud = np.unpackbits(np.frombuffer(data[4 + 4 * n :], np.uint8))[:n].astype(bool)
        return cls(codes, loud)


def _band_edges() -> np.ndarray:
    """FFT bin index where each band starts, plus the end of the last band (bands are contiguous)."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / FP_SAMPLE_RATE)
    edges_hz = np.geomspace(LOW_HZ, HIGH_HZ, N_BANDS + 1)
    return np.searchsorted(freqs, edges_hz).astype(np.intp)


_EDGES = _band_edges()
_WINDOW = np.hanning(FRAME).astype(np.float32)
_WEIGHTS = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)


_BLOCK_FRAMES = 4096  # frames per block of spectra in compute_fingerprint


def compute_fingerprint(samples: np.ndarray, sample_rate: int) -> Fingerprint:
    """The fingerprint of mono float samples at ``sample_rate`` Hz (any rate; taken to 8 kHz)."""
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate != FP_SAMPLE_RATE:
        import soxr

        x = soxr.resample(x, sample_rate, FP_SAMPLE_RATE, "HQ").astype(np.float32, copy=False)
    if len(x) < FRAME + 2 * HOP:
        x = np.pad(x, (0, FRAME + 2 * HOP - len(x)))
    from scipy.fft import rfft  # float32 transforms, several times faster than numpy's here

    windows = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    # band energies block by block (rows are independent), so a 10-minute item holds one block of spectra
    energy = np.empty((len(windows), len(_EDGES) - 1), dtype=np.float64)
    for start in range(0, len(windows), _BLOCK_FRAMES):
        spec = rfft(windows[start : start + _BLOCK_FRAMES] * _WINDOW, axis=1)
        power = spec.real**2 + spec.imag**2
        # band sums through a cumulative sum (a matrix product would call into threaded BLAS per item)
        csum = np.cumsum(power, axis=1, dtype=np.float64)
        energy[start : start + len(csum)] = (csum[:, _EDGES[1:] - 1] - csum[:, _EDGES[:-1] - 1]) + 1e-12
    diff = energy[:, :-1] - energy[:, 1:]
    bits = (diff[1:] - diff[:-1]) > 0
    codes = (bits.astype(np.uint32) * _WEIGHTS).sum(axis=1, dtype=np.uint64).astype(np.uint32)
    level = 10 * np.log10(energy.sum(axis=1))
    level = np.maximum(level[1:], level[:-1])
    loud = (level > level.max() - LOUD_RANGE_DB) & (level > -100.0)
    return Fingerprint(codes, loud)


def bit_error_rate(a: Fingerprint, b: Fingerprint, offset: int) -> tuple[float, int]:
    """BER of ``b`` against ``a`` when b's frame ``i + offset`` lines up with a's frame ``i``, counted on
    frames loud in either; returns (ber, frames compared)."""
    start_a = max(0, -offset)
    end_a = min(len(a), len(b) - offset)
    if end_a - start_a <= 0:
        return 1.0, 0
    ca = a.codes[start_a:end_a]
    cb = b.codes[start_a + offset : end_a + offset]
    mask = a.loud[start_a:end_a] | b.loud[start_a + offset : end_a + offset]
    n = int(mask.sum())
    if n == 0:
        return 1.0, 0
    errors = int(np.bitwise_count(ca[mask] ^ cb[mask]).sum())
    return errors / (32.0 * n), n


@dataclass(frozen=True)
class NearMatch:
    """Two items judged to hold the same audio (``a < b``): ``offset`` in frames (16 ms), ``ber`` over
    ``frames``. The matches of one search form a spanning forest: pairs already joined through other
    matches are not verified again."""

    a: int
    b: int
    offset: int
    ber: float
    frames: int
    votes: int


@dataclass(frozen=True)
class IndexStats:
    """Counts and timings of one search. ``seconds`` = ``index_seconds`` (building the index, pairing and
    voting: linear in entries) + ``verify_seconds`` (BER of each candidate pair: proportional to how many
    items really share audio, which the data decides). ``partitions``: parts of the index processed one
    at a time; ``spilled_bytes``: bytes written to temporary files (0 when everything fitted in memory)."""

    items: int
    indexed_frames: int
    candidate_pairs: int
    verified_pairs: int
    matches: int
    seconds: float
    index_seconds: float = 0.0
    verify_seconds: float = 0.0
    key_bits: int = 0
    partitions: int = 1
    spilled_bytes: int = 0


class FingerprintSource(Protocol):
    """What the search reads: ``len``, one pass in index order (to build the index) and random access
    for the few items it verifies. A list does; so does a disk-backed store view."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Fingerprint | None]: ...

    def __getitem__(self, i: int) -> Fingerprint | None: ...


@dataclass(frozen=True)
class _Layout:
    """How an index entry is packed into one uint64, high bits to low: the key as stored while indexing
    (``stored_bits`` wide) less its ``part_bits`` lowest bits, which name the partition instead; the item;
    the frame. Sorting packed entries sorts them by key, item and frame in one 64-bit sort (several times
    faster than a lexsort)."""

    stored_bits: int
    part_bits: int
    item_bits: int

    @property
    def frame_bits(self) -> int:
        return 64 - (self.stored_bits - self.part_bits) - self.item_bits

    @property
    def key_shift(self) -> int:
        return self.item_bits + self.frame_bits


class _SpillDir:
    """A temporary directory, made on first use, and the number of bytes written into it."""

    def __init__(self, stack: ExitStack):
        self._stack = stack
        self._dir: Path | None = None
        self._files = 0
        self.bytes = 0

    def new_file(self) -> Path:
        if self._dir is None:
            self._dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="voxproof-fp-")))
        self._files += 1
        return self._dir / f"{self._files}.bin"


class _Buckets:
    """64-bit values routed to ``n`` buckets by a bucket id: held in memory up to ``limit`` values, past
    that appended to one temporary file per bucket."""

    def __init__(self, n: int, limit: int, dtype: type[np.integer], spill: _SpillDir):
        self.n, self.limit, self.dtype, self._spill = n, limit, dtype, spill
        self._held: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._held_count = 0
        self._files: list[Path] | None = None
        self._sizes = [0] * n

    def add(self, values: np.ndarray, bucket: np.ndarray | None) -> None:
        """``bucket``: one id in ``range(n)`` per value (None when ``n`` is 1)."""
        if len(values) == 0:
            return
        self._held.append((values, bucket))
        self._held_count += len(values)
        if self._held_count > self.limit:
            self._flush()

    def _route(self) -> list[np.ndarray]:
        held, self._held, self._held_count = self._held, [], 0
        values = held[0][0] if len(held) == 1 else np.concatenate([v for v, _ in held])
        if self.n == 1:
            return [values]
        bucket = np.concatenate([b for _, b in held])
        del held
        order = np.argsort(bucket, kind="stable")  # a radix sort on the small integer ids
        ends = np.cumsum(np.bincount(bucket, minlength=self.n))[:-1]
        return np.split(values[order], ends)

    def _flush(self) -> None:
        if self._files is None:
            self._files = [self._spill.new_file() for _ in range(self.n)]
        for b, part in enumerate(self._route()):
            if len(part):
                with open(self._files[b], "ab") as f:
                    part.tofile(f)
                self._sizes[b] += len(part)
                self._spill.bytes += part.nbytes

    def drain(self) -> Iterator[tuple[int, np.ndarray | tuple[Path, int]]]:
        """Each non-empty bucket once: its values if they never left memory, else its file and length."""
        if self._files is None:
            for b, part in enumerate(self._route() if self._held else []):
                if len(part):
                    yield b, part
            return
        if self._held:
            self._flush()
        for b, (path, size) in enumerate(zip(self._files, self._sizes)):
            if size:
                yield b, (path, size)


# (values, bits already used to split, bits to split by now) -> bucket ids
_Splitter = Callable[[np.ndarray, int, int], np.ndarray]


def _bounded(
    buckets: _Buckets, split: _Splitter, used: int, room: int, spill: _SpillDir, tag: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Every bucket's values, each as one array of at most ``buckets.limit`` values as long as ``split``
    has bits left (``room``) to cut a larger one again; yields (the top-level bucket, its values)."""
    limit = buckets.limit
    for b, part in buckets.drain():
        top = b if tag is None else tag
        if isinstance(part, np.ndarray):
            yield top, part
            continue
        path, size = part
        width = min(room, MAX_PARTITION_BITS, math.ceil(math.log2(size / limit))) if size > limit else 0
        if width <= 0:
            values = np.fromfile(path, buckets.dtype)
            path.unlink()
            yield top, values
            continue
        sub = _Buckets(1 << width, limit, buckets.dtype, spill)
        for start in range(0, size, limit):
            chunk = np.fromfile(path, buckets.dtype, count=limit, offset=start * np.dtype(buckets.dtype).itemsize)
            sub.add(chunk, split(chunk, used, width))
        path.unlink()
        yield from _bounded(sub, split, used + width, room - width, spill, top)


def _stream_entries(prints: FingerprintSource, layout: _Layout, entries: _Buckets, chunk: int) -> int:
    """Reads every fingerprint once, in index order, and adds its entries to ``entries``: one per distinct
    key (``layout.stored_bits`` wide) among its loud frames, at the first frame it occurs. Returns the
    number of loud frames."""
    n = len(prints)
    stored_mask = np.uint32((1 << layout.stored_bits) - 1)
    part_mask = np.uint32((1 << layout.part_bits) - 1)
    part_shift = np.uint32(layout.part_bits)
    key_shift, frame_bits = np.uint64(layout.key_shift), np.uint64(layout.frame_bits)
    frame_limit = 1 << min(layout.frame_bits, 31)
    codes_parts: list[np.ndarray] = []
    frame_parts: list[np.ndarray] = []
    item_ids: list[int] = []
    counts: list[int] = []
    held = loud_total = seen = 0

    def flush() -> None:
        nonlocal held
        if not codes_parts:
            return
        codes = np.concatenate(codes_parts)
        words = (codes >> part_shift).astype(np.uint64) << key_shift
        words |= np.repeat(np.array(item_ids, dtype=np.uint64), counts) << frame_bits
        words |= np.concatenate(frame_parts).astype(np.uint64)
        entries.add(words, (codes & part_mask).astype(np.uint16) if layout.part_bits else None)
        codes_parts.clear()
        frame_parts.clear()
        item_ids.clear()
        counts.clear()
        held = 0

    for i, fp in enumerate(prints):
        if i >= n:
            raise DataError(f"the fingerprints yielded more items than their length ({n})")
        seen = i + 1
        if fp is None or len(fp) == 0:
            continue
        idx = np.flatnonzero(fp.loud)
        if len(idx) == 0:
            continue
        loud_total += len(idx)
        if idx[-1] >= frame_limit:
            raise DataError(f"item {i} has {len(fp)} fingerprint frames; the index holds items up to "
                            f"{frame_limit} frames ({frame_limit * HOP / FP_SAMPLE_RATE / 3600:.1f} h): split it")
        codes = fp.codes[idx] & stored_mask
        keep = (codes != 0) & (codes != stored_mask)
        codes, idx = codes[keep], idx[keep]
        # one entry per distinct code per item (the first frame it occurs at)
        codes, first = np.unique(codes, return_index=True)
        if len(codes) == 0:
            continue
        codes_parts.append(codes)
        frame_parts.append(idx[first])
        item_ids.append(i)
        counts.append(len(codes))
        held += len(codes)
        if held >= chunk:
            flush()
    flush()
    if seen != n:
        raise DataError(f"the fingerprints yielded {seen} items but their length is {n}")
    return loud_total


def _pair_partition(
    words: np.ndarray,
    layout: _Layout,
    local_bits: int,
    ends: tuple[bool, bool],
    max_group: int,
    emit: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
) -> int:
    """Sorts one partition's packed entries and hands ``emit`` the (item a, item b, frame offset) pairs of
    each key group; returns the number of entries indexed. ``local_bits``: the key's width without the
    partition bits; ``ends``: whether this partition holds the all-zeros key and the all-ones key."""
    key_shift, frame_bits = np.uint64(layout.key_shift), np.uint64(layout.frame_bits)
    if layout.stored_bits - layout.part_bits > local_bits:
        # keys were stored wider than the final width: narrow them, and keep one entry per key and item,
        # its first frame, as if the item had been indexed at the final width
        np.bitwise_and(words, np.uint64((1 << (layout.key_shift + local_bits)) - 1), out=words)
        words.sort()
        key_item = words >> frame_bits
        first = np.ones(len(words), dtype=bool)
        np.not_equal(key_item[1:], key_item[:-1], out=first[1:])
        del key_item
        if not first.all():
            words = words[first]
        del first
    else:
        words.sort()
    keys = (words >> key_shift).astype(np.uint32)
    # codes of all zeros or all ones at the final width (silence, clipping) are not keys
    lo = int(np.searchsorted(keys, 1)) if ends[0] else 0
    hi = int(np.searchsorted(keys, (1 << local_bits) - 1)) if ends[1] else len(keys)
    keys, words = keys[lo:hi], words[lo:hi]
    items = ((words >> frame_bits) & np.uint64((1 << layout.item_bits) - 1)).astype(np.int32)
    frames = (words & np.uint64((1 << layout.frame_bits) - 1)).astype(np.int32)
    del words
    n_entries = len(keys)
    if n_entries == 0:
        return 0
    group_start = np.ones(n_entries, dtype=bool)
    group_start[1:] = keys[1:] != keys[:-1]
    group = (np.cumsum(group_start, dtype=np.int32) - 1).astype(np.int32, copy=False)
    size = np.bincount(group)[group].astype(np.int32)
    del keys
    # small groups: every pair inside (neighbours at lag d in the sorted order); large groups (codes
    # shared by many items, e.g. a common noise pattern): a star to the group's first item, so the
    # work stays linear in the number of entries. Either way a < b: a group holds one entry per item,
    # in item order.
    small = size <= max_group
    del size
    for d in range(1, max_group):
        idx = np.flatnonzero(small[:-d] & (group[:-d] == group[d:]))
        if len(idx) == 0:
            break
        emit(items[idx], items[idx + d], frames[idx + d] - frames[idx])
    big = ~small & ~group_start
    if big.any():
        head = np.maximum.accumulate(np.where(group_start, np.arange(n_entries), 0))
        idx = np.flatnonzero(big)
        emit(items[head[idx]], items[idx], frames[idx] - frames[head[idx]])
    return n_entries


def _concat(parts: list[np.ndarray], dtype: type[np.integer]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


class UnionFind:
    """Union-find over the items that take part in matches only (a dict, not a list of every item)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(i, i) != root:
            parent[i], i = root, parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
            self.parent.setdefault(min(ra, rb), min(ra, rb))

    def clusters(self) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for i in self.parent:
            groups.setdefault(self.find(i), []).append(i)
        return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def find_near_duplicates(
    prints: FingerprintSource,
    *,
    max_ber: float = 0.3,
    min_votes: int = 2,
    min_coverage: float = 0.5,
    boundary: int | None = None,
    max_group: int = 16,
    key_bits: int | None = None,
    max_entries: int = 1_000_000,
) -> tuple[list[NearMatch], IndexStats]:
    """Pairs of items whose fingerprints match. ``prints[i]`` is item i's fingerprint (None skips it).

    ``prints`` is iterated once, in index order, to build the index; afterwards only the items of the
    candidate pairs it verifies are looked up (two lookups per verified pair), so a disk-backed view will
    do. ``min_coverage``: the compared loud frames must cover this share of the shorter item's loud
    frames (a small trim keeps most of it). ``boundary``: when set, only pairs with one item below and one
    at or above this index are reported (contamination between two datasets listed one after the other).
    ``key_bits``: the key width; by default ``key_bits_for`` the number of loud frames.

    ``max_entries``: index entries (8 bytes each) held in memory at once, and as many pair votes; the
    search's peak memory is roughly 60 bytes times this. The index is cut into partitions by the keys'
    low bits, as many as ``len(prints)`` needs at ``ENTRIES_PER_ITEM`` entries per item; what does not fit
    goes to temporary files, and a partition that still comes out too large is cut again by further key
    bits. The result is the same whatever ``max_entries``. Items up to 2**20 frames (4.6 h) long are
    always indexed, and up to ``MAX_ITEMS`` items. Raises DataError when ``prints`` yields another number
    of items than its length, or looks up as None an item it yielded a fingerprint for.
    """
    import time

    started = time.perf_counter()
    n = len(prints)
    if max_entries < 1:
        raise UsageError(f"max_entries must be at least 1, not {max_entries}")
    if key_bits is not None and not 1 <= key_bits <= 32:
        raise UsageError(f"key_bits must be between 1 and 32, not {key_bits}")
    if n > MAX_ITEMS:
        raise UsageError(f"the near-duplicate search takes up to {MAX_ITEMS:,} items, not {n:,}: split the corpus")
    # Until every item has been read the number of loud frames, and so the default key width, is not
    # known: keys are stored at the widest width the default can take and narrowed per partition.
    stored_bits = key_bits if key_bits is not None else MAX_KEY_BITS
    narrowest = key_bits if key_bits is not None else MIN_KEY_BITS
    item_bits = max(1, (n - 1).bit_length())
    wanted = max(1, math.ceil(ENTRIES_PER_ITEM * n / max_entries))
    part_bits = max((wanted - 1).bit_length(), stored_bits + item_bits + MIN_FRAME_BITS - 64)
    part_bits = max(0, min(part_bits, MAX_PARTITION_BITS, narrowest))
    layout = _Layout(stored_bits, part_bits, item_bits)
    n_parts = 1 << part_bits
    n64 = np.int64(max(n, 1))

    def vote_split(codes: np.ndarray, used: int, width: int) -> np.ndarray:
        # Fibonacci hashing of the pair (a, b): all votes for one pair land in the same bucket
        h = (codes >> 19).astype(np.uint64) * _VOTE_HASH
        return ((h << np.uint64(used)) >> np.uint64(64 - width)).astype(np.uint16)

    def entry_split(words: np.ndarray, used: int, width: int) -> np.ndarray:
        # the next key bits above the partition bits (inside the final key width)
        return ((words >> np.uint64(layout.key_shift + used)) & np.uint64((1 << width) - 1)).astype(np.uint16)

    with ExitStack() as stack:
        spill = _SpillDir(stack)
        entries = _Buckets(n_parts, max_entries, np.uint64, spill)
        loud_total = _stream_entries(prints, layout, entries, chunk=min(max_entries, 1 << 18))
        bits = key_bits if key_bits is not None else key_bits_for(loud_total)
        local_bits = bits - part_bits
        votes = _Buckets(n_parts, max_entries, np.int64, spill)

        def emit(pair_a: np.ndarray, pair_b: np.ndarray, offset: np.ndarray) -> None:
            if boundary is not None:
                sel = (pair_a < boundary) != (pair_b < boundary)
                pair_a, pair_b, offset = pair_a[sel], pair_b[sel], offset[sel]
            # votes per (a, b, offset); offsets within one hop count together (quantised by 2 frames)
            qoff = np.clip(np.floor_divide(offset, 2), -(1 << 18), (1 << 18) - 1).astype(np.int64) + (1 << 18)
            code = (pair_a.astype(np.int64) * n64 + pair_b.astype(np.int64)) * np.int64(1 << 19) + qoff
            votes.add(code, vote_split(code, 0, part_bits) if part_bits else None)

        n_entries = partitions = 0
        for part, words in _bounded(entries, entry_split, 0, local_bits, spill):
            ends = (part == 0, part == n_parts - 1)
            n_entries += _pair_partition(words, layout, local_bits, ends, max_group, emit)
            partitions += 1
            del words
        # votes for one pair come from different keys, so from different partitions: count them per
        # bucket of pairs and keep the few (pair, offset) with enough votes
        cand_parts, vote_parts = [], []
        for _, codes in _bounded(votes, vote_split, part_bits, 64 - part_bits, spill):
            uniq, counts = np.unique(codes, return_counts=True)
            del codes
            good = counts >= min_votes
            cand_parts.append(uniq[good])
            vote_parts.append(counts[good])
            del uniq, counts, good
        spilled = spill.bytes
    cand, cand_votes = _concat(cand_parts, np.int64), _concat(vote_parts, np.int64)
    if len(cand_parts) > 1:
        order = np.argsort(cand)
        cand, cand_votes = cand[order], cand_votes[order]
    del cand_parts, vote_parts
    pair_code = cand >> 19
    # the best-voted offset per pair: sort by pair then by votes descending, keep the first of each pair
    order = np.lexsort((-cand_votes, pair_code))
    cand, cand_votes, pair_code = cand[order], cand_votes[order], pair_code[order]
    first = np.ones(len(cand), dtype=bool)
    first[1:] = pair_code[1:] != pair_code[:-1]
    sel_a = (pair_code[first] // n64).astype(np.int64)
    sel_b = (pair_code[first] % n64).astype(np.int64)
    sel_off = (cand[first] & ((1 << 19) - 1)) - (1 << 18)
    sel_votes = cand_votes[first]
    # strongest pairs first; a pair whose items are already joined through verified matches is implied
    # and skipped, so verification work follows the number of items that share audio, not the pairs
    order = np.argsort(-sel_votes, kind="stable")
    indexed_at = time.perf_counter()
    joined = UnionFind()  # over the items met in candidate pairs only
    matches: list[NearMatch] = []
    verified = 0
    for k in order.tolist():
        a, b, qo, v = int(sel_a[k]), int(sel_b[k]), int(sel_off[k]), int(sel_votes[k])
        if joined.find(a) == joined.find(b):
            continue
        fa, fb = prints[a], prints[b]
        if fa is None or fb is None:
            raise DataError(f"item {a if fa is None else b} was indexed but its fingerprint now reads as None")
        verified += 1
        ber_best, n_best, off_best = 1.0, 0, 0
        for off in range(2 * qo - 1, 2 * qo + 3):
            ber, n_cmp = bit_error_rate(fa, fb, off)
            if n_cmp and ber < ber_best:
                ber_best, n_best, off_best = ber, n_cmp, off
        shorter = min(int(fa.loud.sum()), int(fb.loud.sum()))
        if n_best and ber_best <= max_ber and n_best >= min_coverage * shorter:
            joined.union(a, b)
            matches.append(NearMatch(a, b, off_best, ber_best, n_best, v))
    done = time.perf_counter()
    stats = IndexStats(n, n_entries, len(cand), verified, len(matches), done - started,
                       indexed_at - started, done - indexed_at, bits, partitions, spilled)
    log.debug("near-duplicate search: %s", stats)
    return matches, stats
