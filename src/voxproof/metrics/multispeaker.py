"""Multi-speaker scoring of given outputs: cpWER for speaker-attributed transcripts, DER and JER for
diarization, per session and summed over sessions (segments from :mod:`voxproof.metrics.segments`).

**cpWER** (concatenated minimum-permutation WER, as MeetEval's ``cpwer``): per session, each speaker's
words are concatenated in start-time order (reference and hypothesis alike); the Levenshtein distance
of every reference stream to every hypothesis stream is computed with the same aligner as WER, the
matrix is padded with empty streams, and the assignment of least total distance is found with the
Hungarian method. cpWER = summed distances / reference words. A hypothesis speaker left without a
reference speaker counts all its words as insertions (``falarm_speakers``), a reference speaker
without a hypothesis speaker all its words as deletions (``missed_speakers``).

**DER** (as ``pyannote.metrics.diarization.DiarizationErrorRate``): the scored region is the UEM
(default: from the earliest start to the latest end of reference and hypothesis); a ``collar`` removes
``collar / 2`` seconds on each side of every reference boundary; ``skip_overlap`` removes regions where
reference speakers overlap. Reference and hypothesis speakers are mapped one-to-one by the Hungarian
method maximising their total co-occurrence. On every stretch with ``r`` reference speakers, ``h``
hypothesis speakers and ``c`` mapped pairs both speaking: total += r, missed += max(0, r - h), false
alarm += max(0, h - r), confusion += min(r, h) - c (times the stretch's duration).
DER = (missed + false alarm + confusion) / total.

**JER** (as pyannote's ``JaccardErrorRate``): with the same mapping, each reference speaker's error is
(missed + false alarm) / (its speech + false alarm) against its mapped hypothesis speaker (1 when it has
none); JER is the mean over the reference speakers of all sessions that speak inside the scored region.

Where the conventions differ: a speaker whose own segments overlap is counted once here (as NIST md-eval
and dscore do); pyannote.metrics counts each segment, so its total and missed speech are larger.

**ORC-WER** (optimal reference combination WER, as MeetEval's ``orcwer``): every reference segment
(utterance) is assigned whole to one hypothesis stream, keeping reference order within a stream, and
the assignment with the fewest errors is found exactly by dynamic programming over the positions
reached in every hypothesis stream (state space: the product of the streams' lengths, so meant for
short sessions; :func:`orc_wer` refuses beyond ``ORC_MAX_STATES``).

**tcpWER** (time-constrained cpWER, as MeetEval's ``tcpwer`` with its defaults): words get pseudo
times from their segment, split in proportion to their characters (reference: intervals; hypothesis:
the centre points of those intervals, widened by ``collar`` on each side); a reference and a
hypothesis word may be aligned (hit or substitution) only when their times overlap strictly, otherwise
they cost a deletion plus an insertion; streams are in segment start order; speakers are assigned as
for cpWER (Hungarian method on the time-constrained distances).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from voxproof.metrics.align import count_edits
from voxproof.metrics.intervals import _num
from voxproof.metrics.segments import Segment

Region = tuple[float, float]


def _by_session(segments: Sequence[Segment]) -> dict[str, list[Segment]]:
    out: dict[str, list[Segment]] = defaultdict(list)
    for s in segments:
        out[s.session].append(s)
    return out


def _streams(segments: Sequence[Segment], norm: Any = None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s in sorted(segments, key=lambda s: (s.start, s.end)):
        out[s.speaker].extend((norm(s.words) if norm else s.words).split())
    return dict(out)


@dataclass(frozen=True)
class CpWer:
    """cpWER over sessions: ``errors`` (summed assignment distances) over ``length`` reference words."""

    errors: int
    length: int
    missed_speakers: int
    falarm_speakers: int
    scored_speakers: int
    assignment: dict[str, dict[str, str | None]] = field(default_factory=dict)  # session -> ref -> hyp

    @property
    def error_rate(self) -> float:
        return self.errors / self.length if self.length else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": "cpwer", "error_rate": _num(self.error_rate), "errors": self.errors, "length": self.length,
                "missed_speakers": self.missed_speakers, "falarm_speakers": self.falarm_speakers,
                "scored_speakers": self.scored_speakers, "assignment": self.assignment}


def cp_wer(reference: Sequence[Segment], hypothesis: Sequence[Segment], norm: Any = None) -> CpWer:
    """cpWER of speaker-attributed hypothesis segments against reference segments (module docstring)."""
    from scipy.optimize import linear_sum_assignment

    refs, hyps = _by_session(reference), _by_session(hypothesis)
    errors = length = missed = falarm = scored = 0
    assignment: dict[str, dict[str, str | None]] = {}
    for session in sorted(set(refs) | set(hyps)):
        r = _streams(refs.get(session, []), norm)
        h = _streams(hyps.get(session, []), norm)
        rk, hk = sorted(r), sorted(h)
        size = max(len(rk), len(hk))
        cost = np.zeros((size, size), dtype=np.int64)
        for i in range(size):
            for j in range(size):
                a = r[rk[i]] if i < len(rk) else []
                b = h[hk[j]] if j < len(hk) else []
                cost[i, j] = count_edits(a, b).errors if a and b else len(a) + len(b)
        rows, cols = linear_sum_assignment(cost) if size else ([], [])
        errors += int(cost[rows, cols].sum()) if size else 0
        length += sum(len(w) for w in r.values())
        pairs: dict[str, str | None] = {}
        for i, j in zip(rows.tolist() if size else [], cols.tolist() if size else []):
            if i < len(rk):
                pairs[rk[i]] = hk[j] if j < len(hk) else None
                missed += int(j >= len(hk))
            else:
                falarm += 1
        scored += len(rk)
        assignment[session] = pairs
    return CpWer(errors, length, missed, falarm, scored, assignment)


def _timed_streams(segments: Sequence[Segment], norm: Any, points: bool, collar: float
                   ) -> dict[str, tuple[list[str], np.ndarray]]:
    out: dict[str, tuple[list[str], list[tuple[float, float]]]] = {}
    for s in sorted(segments, key=lambda s: s.start):
        words = (norm(s.words) if norm else s.words).split()
        if not words:
            continue
        ends = np.cumsum([len(w) for w in words], dtype=float)
        step = (s.end - s.start) / ends[-1]
        starts = np.concatenate([[0.0], ends[:-1]])
        spans = [(s.start + step * a, s.start + step * b) for a, b in zip(starts, ends)] if len(words) > 1 \
            else [(s.start, s.end)]
        if points:
            spans = [((a + b) / 2 - collar, (a + b) / 2 + collar) for a, b in spans]
        ws, ts = out.setdefault(s.speaker, ([], []))
        ws.extend(words)
        ts.extend(spans)
    return {k: (w, np.asarray(t, dtype=float).reshape(-1, 2)) for k, (w, t) in out.items()}


def _tc_distance(ref: tuple[list[str], np.ndarray], hyp: tuple[list[str], np.ndarray]) -> int:
    """Levenshtein distance where a diagonal step needs overlapping times (else it costs 2)."""
    rw, rt = ref
    hw, ht = hyp
    m = len(hw)
    if not rw or not m:
        return len(rw) + m
    vocab: dict[str, int] = {}
    h_ids = np.array([vocab.setdefault(w, len(vocab)) for w in hw])
    idx = np.arange(m + 1, dtype=float)
    row = idx.copy()
    for word, (a, b) in zip(rw, rt):
        overlap = (a < ht[:, 1]) & (b > ht[:, 0])
        diag = np.where(overlap, (h_ids != vocab.get(word, -1)).astype(float), 2.0)
        cand = np.empty(m + 1)
        cand[0] = row[0] + 1
        cand[1:] = np.minimum(row[1:] + 1, row[:-1] + diag)
        row = np.minimum.accumulate(cand - idx) + idx
    return int(row[-1])


def tcp_wer(reference: Sequence[Segment], hypothesis: Sequence[Segment], *, collar: float = 0.0,
            norm: Any = None) -> CpWer:
    """tcpWER with ``collar`` seconds around hypothesis word times (module docstring)."""
    from scipy.optimize import linear_sum_assignment

    refs, hyps = _by_session(reference), _by_session(hypothesis)
    errors = length = missed = falarm = scored = 0
    for session in sorted(set(refs) | set(hyps)):
        r = _timed_streams(refs.get(session, []), norm, False, 0.0)
        h = _timed_streams(hyps.get(session, []), norm, True, collar)
        rk, hk = sorted(r), sorted(h)
        size = max(len(rk), len(hk))
        empty: tuple[list[str], np.ndarray] = ([], np.zeros((0, 2)))
        cost = np.array([[_tc_distance(r[rk[i]] if i < len(rk) else empty, h[hk[j]] if j < len(hk) else empty)
                          for j in range(size)] for i in range(size)], dtype=np.int64).reshape(size, size)
        if size:
            rows, cols = linear_sum_assignment(cost)
            errors += int(cost[rows, cols].sum())
            missed += sum(1 for i, j in zip(rows.tolist(), cols.tolist()) if i < len(rk) and j >= len(hk))
            falarm += sum(1 for i in rows.tolist() if i >= len(rk))
        length += sum(len(w) for w, _ in r.values())
        scored += len(rk)
    return CpWer(errors, length, missed, falarm, scored)


ORC_MAX_STATES = 5_000_000


def _substring_distances(words: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    """``E[j, j2]`` = edit distance of ``words`` to ``hyp[j:j2]`` (inf where ``j2 < j``)."""
    n, m = len(hyp), len(words)
    out = np.full((n + 1, n + 1), np.inf)
    for j in range(n + 1):
        prev = np.arange(n - j + 1, dtype=float)  # zero words against hyp[j:j+t]: t insertions
        for i in range(1, m + 1):
            cur = np.empty_like(prev)
            cur[0] = i
            for t in range(1, n - j + 1):
                cur[t] = min(prev[t] + 1, cur[t - 1] + 1, prev[t - 1] + (words[i - 1] != hyp[j + t - 1]))
            prev = cur
        out[j, j:] = prev
    return out


def orc_wer(reference: Sequence[Segment], hypothesis: Sequence[Segment], norm: Any = None) -> CpWer:
    """ORC-WER (module docstring); the result's ``assignment`` maps session -> segment index -> stream."""
    from voxproof.errors import UsageError

    refs, hyps = _by_session(reference), _by_session(hypothesis)
    errors = length = 0
    for session in sorted(set(refs) | set(hyps)):
        utts = [(norm(s.words) if norm else s.words).split()
                for s in sorted(refs.get(session, []), key=lambda s: (s.start, s.end))]
        streams = _streams(hyps.get(session, []), norm)
        keys = sorted(streams)
        shape = tuple(len(streams[k]) + 1 for k in keys)
        if int(np.prod(shape, dtype=float)) > ORC_MAX_STATES:
            raise UsageError(f"ORC-WER of session {session}: {int(np.prod(shape, dtype=float)):,} states, over "
                             f"{ORC_MAX_STATES:,}; score shorter sessions (cpWER has no such limit)")
        length += sum(len(u) for u in utts)
        if not keys:
            errors += sum(len(u) for u in utts)
            continue
        cost = np.full(shape, np.inf)
        cost[(0,) * len(keys)] = 0.0
        for words in utts:
            best = np.full(shape, np.inf)
            for axis, k in enumerate(keys):
                e = _substring_distances(words, streams[k])  # (L+1, L+1)
                moved = np.moveaxis(cost, axis, -1)[..., :, None] + e  # [..., j, j2]
                best = np.minimum(best, np.moveaxis(moved.min(axis=-2), -1, axis))
            cost = best
        rest = sum(np.meshgrid(*[len(streams[k]) - np.arange(len(streams[k]) + 1) for k in keys], indexing="ij"))
        errors += int((cost + rest).min())
    return CpWer(errors, length, 0, 0, sum(len({s.speaker for s in refs.get(x, [])}) for x in refs))


# -- diarization ----------------------------------------------------------------------------------
def _merge(regions: Sequence[Region]) -> list[Region]:
    out: list[list[float]] = []
    for a, b in sorted(regions):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _subtract(regions: Sequence[Region], holes: Sequence[Region]) -> list[Region]:
    """``regions`` minus ``holes`` (both merged first; one linear pass)."""
    return _intersect(regions, _complement(_merge(holes)))


def _complement(regions: list[Region]) -> list[Region]:
    out, cur = [], float("-inf")
    for a, b in regions:
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    out.append((cur, float("inf")))
    return out


def _intersect(regions: Sequence[Region], mask: Sequence[Region]) -> list[Region]:
    """Intersection of two region lists (merged first; two pointers, linear)."""
    x, y = _merge(regions), _merge(mask)
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        lo, hi = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if hi > lo:
            out.append((lo, hi))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def _labels(segments: Sequence[Segment], uem: Sequence[Region]) -> dict[str, list[Region]]:
    by: dict[str, list[Region]] = defaultdict(list)
    for s in segments:
        by[s.speaker].append((s.start, s.end))
    cropped = {k: _intersect(v, uem) for k, v in by.items()}
    return {k: v for k, v in cropped.items() if v}  # a speaker with no speech in the scored region is not scored


def _overlap(a: Sequence[Region], b: Sequence[Region]) -> float:
    return sum(hi - lo for lo, hi in _intersect(a, b))


def _duration(regions: Sequence[Region]) -> float:
    return sum(b - a for a, b in _merge(regions))


@dataclass(frozen=True)
class Diarization:
    """DER components summed over sessions (seconds) and JER's per-speaker errors."""

    total: float
    missed: float
    false_alarm: float
    confusion: float
    speaker_errors: tuple[float, ...]
    mapping: dict[str, dict[str, str]]

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total else float("nan")

    @property
    def jer(self) -> float:
        return float(np.mean(self.speaker_errors)) if self.speaker_errors else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"der": _num(self.der), "jer": _num(self.jer), "total": float(self.total), "missed": float(self.missed),
                "false_alarm": float(self.false_alarm), "confusion": float(self.confusion),
                "reference_speakers": len(self.speaker_errors), "mapping": self.mapping}


def diarization_errors(reference: Sequence[Segment], hypothesis: Sequence[Segment], *, collar: float = 0.0,
                       skip_overlap: bool = False, uem: dict[str, list[Region]] | None = None) -> Diarization:
    """DER and JER of a diarization ``hypothesis`` (module docstring for the conventions)."""
    from scipy.optimize import linear_sum_assignment

    refs, hyps = _by_session(reference), _by_session(hypothesis)
    total = missed = fa = conf = 0.0
    spk_err: list[float] = []
    mappings: dict[str, dict[str, str]] = {}
    for session in sorted(set(refs) | set(hyps)):
        r_segs, h_segs = refs.get(session, []), hyps.get(session, [])
        if uem is not None and session in uem:
            scored = _merge(uem[session])
        else:
            spans = [(s.start, s.end) for s in r_segs + h_segs]
            scored = [(min(a for a, _ in spans), max(b for _, b in spans))] if spans else []
        if collar > 0:
            scored = _subtract(scored, [(t - collar / 2, t + collar / 2) for s in r_segs for t in (s.start, s.end)])
        if skip_overlap:
            ref_by = _labels(r_segs, scored)
            edges = sorted({t for v in ref_by.values() for ab in v for t in ab})
            overlapping = [(a, b) for a, b in pairwise(edges)
                           if sum(1 for v in ref_by.values() if _overlap(v, [(a, b)]) > 0) > 1]
            scored = _subtract(scored, overlapping)
        r_lab, h_lab = _labels(r_segs, scored), _labels(h_segs, scored)
        rk, hk = sorted(r_lab), sorted(h_lab)
        co = np.array([[_overlap(r_lab[a], h_lab[b]) for b in hk] for a in rk]) if rk and hk else np.zeros((0, 0))
        mapping: dict[str, str] = {}
        if co.size:
            rows, cols = linear_sum_assignment(-co)
            mapping = {rk[i]: hk[j] for i, j in zip(rows.tolist(), cols.tolist()) if co[i, j] > 0}
        mappings[session] = mapping
        events = sorted([(t, 0 if end else 1, side, k) for side, lab in ((0, r_lab), (1, h_lab))
                         for k, v in lab.items() for a, b in v for t, end in ((a, False), (b, True))])
        active: tuple[set[str], set[str]] = (set(), set())
        prev = None
        for t, starts, side, k in events:  # sweep: ends before starts at the same time
            if prev is not None and t > prev and (active[0] or active[1]):
                d = t - prev
                n_r, n_h = len(active[0]), len(active[1])
                correct = sum(1 for x in active[0] if mapping.get(x) in active[1])
                total += d * n_r
                missed += d * max(0, n_r - n_h)
                fa += d * max(0, n_h - n_r)
                conf += d * (min(n_r, n_h) - correct)
            prev = t
            (active[side].add if starts else active[side].discard)(k)
        for k in rk:
            if k not in mapping:
                spk_err.append(1.0)
                continue
            ref_t = _duration(r_lab[k])
            hit = _overlap(r_lab[k], h_lab[mapping[k]])
            false_alarm = _duration(h_lab[mapping[k]]) - hit
            union = ref_t + false_alarm
            spk_err.append((ref_t - hit + false_alarm) / union if union > 0 else 0.0)
    return Diarization(total, missed, fa, conf, tuple(spk_err), mappings)
