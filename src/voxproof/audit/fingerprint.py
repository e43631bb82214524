"""Audit stage: acoustic fingerprints and the index that finds near-duplicate audio without comparing
every pair.

A fingerprint is a band-energy-sign code in the style of Haitsma & Kalker (2002): the audio is taken to
8 kHz (so an 8 kHz recording and its 16 kHz upsampled copy give the same code), cut into 128 ms frames
every 16 ms, split into 33 log-spaced bands between 300 and 3,400 Hz, and each frame gives 32 bits: the
sign of the change across time of the energy difference between neighbouring bands. Signs of energy
differences do not move with gain; the bands sit well inside what MP3 keeps; the strong frame overlap
keeps bits stable under trims that are not a whole hop.

Search: every loud frame's code (its 22-28 low-band bits, see ``key_bits_for``) is a key. All (key, item, frame) triples are sorted once by key;
inside a small key group (up to 16 items) every pair of items is a candidate; inside a larger one (a code
many items share) every item is paired with the group's first item only (a star), so the work stays
linear in the number of entries. Pairs that agree on the time offset for at least
``min_votes`` keys are verified by the bit error rate (BER) over their overlap. Total work is
O(E log E) in the number of indexed frames E, and memory is a few arrays of E entries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

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


def compute_fingerprint(samples: np.ndarray, sample_rate: int) -> Fingerprint:
    """The fingerprint of mono float samples at ``sample_rate`` Hz (any rate; taken to 8 kHz)."""
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate != FP_SAMPLE_RATE:
        import soxr

        x = soxr.resample(x, sample_rate, FP_SAMPLE_RATE, "HQ").astype(np.float32, copy=False)
    if len(x) < FRAME + 2 * HOP:
        x = np.pad(x, (0, FRAME + 2 * HOP - len(x)))
    from scipy.fft import rfft  # float32 transforms, several times faster than numpy's here

    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP] * _WINDOW
    spec = rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    # band sums through a cumulative sum (a matrix product would call into threaded BLAS per item)
    csum = np.cumsum(power, axis=1, dtype=np.float64)
    energy = (csum[:, _EDGES[1:] - 1] - csum[:, _EDGES[:-1] - 1]) + 1e-12
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
    items really share audio, which the data decides)."""

    items: int
    indexed_frames: int
    candidate_pairs: int
    verified_pairs: int
    matches: int
    seconds: float
    index_seconds: float = 0.0
    verify_seconds: float = 0.0
    key_bits: int = 0


def find_near_duplicates(
    prints: list[Fingerprint | None],
    *,
    max_ber: float = 0.3,
    min_votes: int = 2,
    min_coverage: float = 0.5,
    boundary: int | None = None,
    max_group: int = 16,
    key_bits: int | None = None,
) -> tuple[list[NearMatch], IndexStats]:
    """Pairs of items whose fingerprints match. ``prints[i]`` is item i's fingerprint (None skips it).

    ``min_coverage``: the compared loud frames must cover this share of the shorter item's loud frames
    (a small trim keeps most of it). ``boundary``: when set, only pairs with one item below and one at or
    above this index are reported (contamination between two datasets listed one after the other).
    """
    import time

    started = time.perf_counter()
    loud_total = sum(int(fp.loud.sum()) for fp in prints if fp is not None)
    bits = key_bits if key_bits is not None else key_bits_for(loud_total)
    mask = np.uint32((1 << bits) - 1)
    keys_parts, item_parts, frame_parts = [], [], []
    for i, fp in enumerate(prints):
        if fp is None or len(fp) == 0:
            continue
        idx = np.flatnonzero(fp.loud)
        if len(idx) == 0:
            continue
        codes = fp.codes[idx] & mask
        keep = (codes != 0) & (codes != mask)
        codes, idx = codes[keep], idx[keep]
        # one entry per distinct code per item (the first frame it occurs at)
        codes, first = np.unique(codes, return_index=True)
        keys_parts.append(codes)
        item_parts.append(np.full(len(codes), i, dtype=np.int32))
        frame_parts.append(idx[first].astype(np.int32))
    if not keys_parts:
        return [], IndexStats(len(prints), 0, 0, 0, 0, time.perf_counter() - started, key_bits=bits)
    keys = np.concatenate(keys_parts)
    items = np.concatenate(item_parts)
    frames = np.concatenate(frame_parts)
    del keys_parts, item_parts, frame_parts
    if len(prints) < (1 << 20) and (len(frames) == 0 or int(frames.max()) < (1 << 16)):
        # one packed 64-bit sort (key | item | frame) is several times faster than a lexsort
        packed = (keys.astype(np.uint64) << np.uint64(36)) | (items.astype(np.uint64) << np.uint64(16)) | frames.astype(np.uint64)
        del keys, items, frames
        packed.sort()
        keys = (packed >> np.uint64(36)).astype(np.uint32)
        items = ((packed >> np.uint64(16)) & np.uint64((1 << 20) - 1)).astype(np.int32)
        frames = (packed & np.uint64(0xFFFF)).astype(np.int32)
        del packed
    else:
        order = np.lexsort((items, keys))
        keys, items, frames = keys[order], items[order], frames[order]
        del order
    n_entries = len(keys)
    group_start = np.ones(n_entries, dtype=bool)
    group_start[1:] = keys[1:] != keys[:-1]
    group = (np.cumsum(group_start, dtype=np.int32) - 1).astype(np.int32, copy=False)
    size = np.bincount(group)[group].astype(np.int32)
    del keys
    # small groups: every pair inside (neighbours at lag d in the sorted order); large groups (codes
    # shared by many items, e.g. a common noise pattern): a star to the group's first item, so the
    # work stays linear in the number of entries
    parts_a, parts_b, parts_off = [], [], []
    small = size <= max_group
    for d in range(1, max_group):
        idx = np.flatnonzero(small[:-d] & (group[:-d] == group[d:]))
        if len(idx) == 0:
            break
        parts_a.append(items[idx])
        parts_b.append(items[idx + d])
        parts_off.append(frames[idx + d] - frames[idx])
    big = ~small & ~group_start
    if big.any():
        head = np.maximum.accumulate(np.where(group_start, np.arange(n_entries), 0))
        idx = np.flatnonzero(big)
        parts_a.append(items[head[idx]])
        parts_b.append(items[idx])
        parts_off.append(frames[idx] - frames[head[idx]])
        del head
    del group, size, small, big, group_start
    if not parts_a:
        return [], IndexStats(len(prints), n_entries, 0, 0, 0, time.perf_counter() - started, key_bits=bits)
    pair_a = np.concatenate(parts_a)
    pair_b = np.concatenate(parts_b)
    offset = np.concatenate(parts_off)
    del parts_a, parts_b, parts_off, items, frames
    sel = pair_a != pair_b
    if boundary is not None:
        sel &= (pair_a < boundary) != (pair_b < boundary)
    pair_a, pair_b, offset = pair_a[sel], pair_b[sel], offset[sel]
    # votes per (a, b, offset); offsets within one hop count together (quantised by 2 frames)
    n_items = np.int64(max(len(prints), 1))
    qoff = np.clip(np.floor_divide(offset, 2), -(1 << 18), (1 << 18) - 1).astype(np.int64) + (1 << 18)
    code = (pair_a.astype(np.int64) * n_items + pair_b.astype(np.int64)) * np.int64(1 << 19) + qoff
    del pair_a, pair_b, offset, qoff
    uniq, counts = np.unique(code, return_counts=True)
    del code
    good = counts >= min_votes
    cand, cand_votes = uniq[good], counts[good]
    pair_code = cand >> 19
    # the best-voted offset per pair: sort by pair then by votes descending, keep the first of each pair
    order = np.lexsort((-cand_votes, pair_code))
    cand, cand_votes, pair_code = cand[order], cand_votes[order], pair_code[order]
    first = np.ones(len(cand), dtype=bool)
    first[1:] = pair_code[1:] != pair_code[:-1]
    sel_a = (pair_code[first] // n_items).astype(np.int64)
    sel_b = (pair_code[first] % n_items).astype(np.int64)
    sel_off = (cand[first] & ((1 << 19) - 1)) - (1 << 18)
    sel_votes = cand_votes[first]
    # strongest pairs first; a pair whose items are already joined through verified matches is implied
    # and skipped, so verification work follows the number of items that share audio, not the pairs
    order = np.argsort(-sel_votes, kind="stable")
    indexed_at = time.perf_counter()
    parent = list(range(len(prints)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    matches: list[NearMatch] = []
    verified = 0
    for k in order.tolist():
        a, b, qo, v = int(sel_a[k]), int(sel_b[k]), int(sel_off[k]), int(sel_votes[k])
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        fa, fb = prints[a], prints[b]
        assert fa is not None and fb is not None
        verified += 1
        ber_best, n_best, off_best = 1.0, 0, 0
        for off in range(2 * qo - 1, 2 * qo + 3):
            ber, n = bit_error_rate(fa, fb, off)
            if n and ber < ber_best:
                ber_best, n_best, off_best = ber, n, off
        shorter = min(int(fa.loud.sum()), int(fb.loud.sum()))
        if n_best and ber_best <= max_ber and n_best >= min_coverage * shorter:
            parent[max(ra, rb)] = min(ra, rb)
            matches.append(NearMatch(a, b, off_best, ber_best, n_best, v))
    done = time.perf_counter()
    stats = IndexStats(len(prints), n_entries, len(cand), verified, len(matches), done - started,
                       indexed_at - started, done - indexed_at, bits)
    log.debug("near-duplicate search: %s", stats)
    return matches, stats
