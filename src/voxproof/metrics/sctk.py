"""The paired tests as NIST SCTK's ``sc_stats`` defines them (``voxproof compare --tests sctk``).

voxproof's default paired tests (:mod:`voxproof.metrics.paired`) are the textbook forms on one segment
per utterance. ``sc_stats`` (SCTK 2.4, read from its documentation and source, none of its code used
here) defines them differently, and this module reproduces those definitions so the statistics equal
``sc_stats``' on the same alignments:

- **Alignment**: sclite's weighted alignment, ignoring ASCII case as sclite does unless run with ``-s``, correct 0, substitution 4, insertion 3, deletion 3; at a
  tie the diagonal (hit or substitution) wins, then deletion, then insertion. Minimising ``3 E + S``
  instead of the edit count ``E`` sometimes splits errors differently from voxproof's default
  (Levenshtein) alignment, and can even count one more error (a substitution run traded for
  insertions and deletions); see docs/SCTK.md.
- **MAPSSWE** (Gillick & Cox 1989): each utterance is cut into *error regions*: stretches bounded by
  at least two words that both systems got right (sc_stats' "minimum number of good words" is 2; the
  two bounding words are included on each side where they exist). Per region ``Z = errors_A -
  errors_B``; regions where neither system erred are dropped. ``W = mean(Z) / (sd(Z) / sqrt(n))`` with
  the sample standard deviation; sc_stats sets ``W = 0`` when every ``Z`` is equal.
- **Sign test** on per-speaker %WER (speakers are sclite's blocks: the utterance id up to its first
  ``-``): differences within 0.005 percentage points are ties, and ties are split between the two sides
  (the odd one to the side favouring no difference); the two-sided p is ``2 P(X <= min)`` for
  ``X ~ Bin(n, 1/2)``, or 1 when the sides are equal.
- **Wilcoxon signed-rank** on per-speaker %WER: all speakers are ranked by ``|difference|`` (mid-ranks
  for exactly equal values, ties *included* in the ranking), tied speakers (within 0.005 points) are
  given alternately to the + and - side, ``W`` is the rank sum of the side with fewer
  speakers, and ``Z = (W - n(n+1)/4) / sqrt(n(n+1)(2n+1)/24)`` (normal approximation, no tie
  correction).

p-values: sc_stats reads normal tail probabilities from a table at steps of 0.01 (taking the lower
entry), so its printed p-values are coarse; here they are exact (``erfc``). Its sign test computes the
binomial exactly up to 20 blocks and above that uses a normal approximation that halves the count
(``(R * 0.5 - n/2) / sqrt(n/4)`` instead of ``(R - n/2) / ...``; usnistgov/SCTK pull request 46, open),
which makes e.g. 26 vs 24 of 50 speakers "<0.001". That is documented, not copied: the p-value here is
the exact binomial for every ``n``, and ``details['sc_stats_binomial_bug']`` says when sc_stats' own
figure is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.paired import TestResult, binomial_two_sided

SUB_COST, INS_COST, DEL_COST = 4, 3, 3
CORRECT, SUBSTITUTION, INSERTION, DELETION = "C", "S", "I", "D"
MIN_GOOD = 2  # sc_stats' minimum number of correct words bounding an error region
SIGN_TIE = 0.005  # percentage points within which sc_stats calls two speaker %WERs equal
EXACT_BINOMIAL_MAX = 20  # sc_stats is exact while n p (1 - p) <= 5, i.e. n <= 20 blocks
SCTK_METHOD_NOTE = "sc_stats"
SC_STATS = "sc_stats"
TEST_SETS = ("textbook", "sctk")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def sclite_case(token: str) -> str:
    """A token as sclite compares it by default (without ``-s``): ASCII letters folded to lower case."""
    return token.translate(_ASCII_LOWER)


def sclite_align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """sclite's weighted alignment of two token sequences: ``(eval, ref_word, hyp_word)`` in order,
    eval one of ``C`` ``S`` ``I`` ``D``. Costs and tie rule as in the module docstring."""
    n, m = len(ref), len(hyp)
    # cost[a][b]: cheapest alignment of ref[:a] and hyp[:b]; move[a][b]: 0 diagonal, 1 deletion, 2 insertion
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]
    for b in range(1, m + 1):
        cost[0][b] = cost[0][b - 1] + INS_COST
        move[0][b] = 2
    for a in range(1, n + 1):
        prev, row, mv = cost[a - 1], cost[a], move[a]
        row[0] = prev[0] + DEL_COST
        mv[0] = 1
        word = ref[a - 1]
        for b in range(1, m + 1):
            diag = prev[b - 1] + (0 if word == hyp[b - 1] else SUB_COST)
            dele = prev[b] + DEL_COST
            ins = row[b - 1] + INS_COST
            if diag <= dele and diag <= ins:
                row[b] = diag
            elif dele < ins:
                row[b], mv[b] = dele, 1
            else:
                row[b], mv[b] = ins, 2
    path: list[tuple[str, str | None, str | None]] = []
    a, b = n, m
    while a or b:
        step = move[a][b]
        if step == 0:
            a, b = a - 1, b - 1
            path.append((CORRECT if ref[a] == hyp[b] else SUBSTITUTION, ref[a], hyp[b]))
        elif step == 1:
            a -= 1
            path.append((DELETION, ref[a], None))
        else:
            b -= 1
            path.append((INSERTION, None, hyp[b]))
    path.reverse()
    return path


def path_counts(path: Sequence[tuple[str, Any, Any]]) -> tuple[int, int]:
    """(errors, reference words) of one aligned path."""
    errors = sum(1 for e, _r, _h in path if e != CORRECT)
    return errors, sum(1 for e, _r, _h in path if e != INSERTION)


@dataclass(frozen=True)
class Region:
    """One MAPSSWE error region: its reference words and the errors of each system in it."""

    ref_words: int
    errors_a: int
    errors_b: int


def error_regions(path_a: Sequence[str], path_b: Sequence[str], min_good: int = MIN_GOOD) -> list[Region]:
    """Error regions of one utterance from the two systems' evals (``C``/``S``/``I``/``D``) against the
    same reference. Walks both paths in step over the reference words (insertions are skipped and open
    a region); a region closes at the ``min_good``-th consecutive word both got right and starts
    ``min_good - 1`` words before the last both-right word that preceded it."""
    regions: list[Region] = []
    na, nb = len(path_a), len(path_b)

    def close(beg_a: int, beg_b: int, end_a: int, end_b: int) -> None:
        span_a = path_a[max(beg_a, 0) : end_a + 1]
        span_b = path_b[max(beg_b, 0) : end_b + 1]
        err_a = sum(1 for e in span_a if e != CORRECT)
        err_b = sum(1 for e in span_b if e != CORRECT)
        if err_a or err_b:
            ref_a = sum(1 for e in span_a if e != INSERTION)
            ref_b = sum(1 for e in span_b if e != INSERTION)
            regions.append(Region((ref_a + ref_b) // 2, err_a, err_b))

    i = j = 0
    last_a = last_b = 0  # last position both systems had right before the open region
    inside = False  # an error region is open
    good = 0  # consecutive both-right words since the last error in the open region
    while i < na:
        while i < na and path_a[i] == INSERTION:
            i, inside, good = i + 1, True, 0
        while j < nb and path_b[j] == INSERTION:
            j, inside, good = j + 1, True, 0
        both_right = i < na and j < nb and path_a[i] == CORRECT and path_b[j] == CORRECT
        if not inside:
            if both_right:
                last_a, last_b = i, j
            else:
                inside, good = True, 0
        elif both_right:
            good += 1
            if good == min_good:
                close(last_a - (min_good - 1), last_b - (min_good - 1), i, j)
                last_a, last_b, inside, good = i, j, False, 0
        else:
            good = 0
        if i < na:
            i += 1
        if j < nb:
            j += 1
    if inside or nb > j:
        close(last_a - (min_good - 1), last_b - (min_good - 1), na - 1, nb - 1)
    return regions


def _normal_two_sided(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def mapsswe_regions(regions: Sequence[Region]) -> TestResult:
    """MAPSSWE over error regions, as sc_stats computes it (``Z = errors_A - errors_B`` per region)."""
    z = [r.errors_a - r.errors_b for r in regions]
    n = len(z)
    details: dict[str, Any] = {"segments": n, "segmentation": f"error regions bounded by {MIN_GOOD} words both "
                               "systems got right (sc_stats)",
                               "errors_a": sum(r.errors_a for r in regions),
                               "errors_b": sum(r.errors_b for r in regions),
                               "ref_words": sum(r.ref_words for r in regions)}
    if n < 2:
        details["reason"] = "needs two or more error regions"
        return TestResult("mapsswe", None, float("nan"), SCTK_METHOD_NOTE, n, details, SC_STATS)
    mean = sum(z) / n
    ss = sum((x - mean) ** 2 for x in z)
    details["mean_difference"] = mean
    if ss == 0.0:  # sc_stats reports Z = 0 when every region differs by the same amount
        details["sd"] = 0.0
        return TestResult("mapsswe", 0.0, 1.0, SCTK_METHOD_NOTE + ", normal", n, details, SC_STATS)
    sd = math.sqrt(ss / (n - 1))
    w = mean / (sd / math.sqrt(n))
    details["sd"] = sd
    return TestResult("mapsswe", w, _normal_two_sided(w), SCTK_METHOD_NOTE + ", normal", n, details, SC_STATS)


def _pct(errors: int, ref_words: int) -> float:
    """Percent as sclite computes it (divide, then scale: the rounding decides which speakers tie)."""
    return errors / ref_words * 100.0 if ref_words else 0.0


@dataclass(frozen=True)
class SpeakerWer:
    """Per-speaker %WER of both systems (sclite's blocks), errors / reference words x 100."""

    speaker: str
    wer_a: float
    wer_b: float


def _worse_first(blocks: Sequence[SpeakerWer]) -> bool:
    """True when A has the larger sum of speaker %WERs (sc_stats orders the pair worse-first; B on a tie)."""
    return sum(b.wer_a for b in blocks) > sum(b.wer_b for b in blocks)


def sign_test_speakers(blocks: Sequence[SpeakerWer]) -> TestResult:
    """sc_stats' sign test on per-speaker %WER (ties split, exact binomial for every n)."""
    a_worse = _worse_first(blocks)
    plus = minus = ties = 0  # plus: the worse-first system really is worse on this speaker
    b_better = a_better = 0
    for blk in blocks:
        worse, better = (blk.wer_a, blk.wer_b) if a_worse else (blk.wer_b, blk.wer_a)
        if abs(worse - better) <= SIGN_TIE:
            ties += 1
        elif worse < better:
            minus += 1
        else:
            plus += 1
        if abs(blk.wer_a - blk.wer_b) > SIGN_TIE:
            b_better += blk.wer_b < blk.wer_a
            a_better += blk.wer_a < blk.wer_b
    plus_split = plus + ties // 2
    minus_split = minus + ties // 2 + ties % 2
    n = plus_split + minus_split
    low = min(plus_split, minus_split)
    p = 1.0 if plus_split == minus_split else binomial_two_sided(low, n)
    details: dict[str, Any] = {"b_better": b_better, "a_better": a_better, "ties": ties, "blocks": "speakers",
                               "n_plus": plus_split, "n_minus": minus_split, "tie_rule": "ties split between + and "
                               "- (odd one to -)", "worse_first": "A" if a_worse else "B"}
    if n > EXACT_BINOMIAL_MAX:
        details["sc_stats_binomial_bug"] = (
            f"{n} blocks > {EXACT_BINOMIAL_MAX}: sc_stats' normal approximation halves the count "
            "(usnistgov/SCTK PR 46), so its printed p-value is wrong here; this one is the exact binomial")
    return TestResult("sign", float(low), p, SCTK_METHOD_NOTE + ", exact binomial", n, details, SC_STATS)


def _mid_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda k: values[k])
    ranks = [0.0] * len(values)
    k = 0
    while k < len(order):
        end = k
        while end + 1 < len(order) and values[order[end + 1]] == values[order[k]]:
            end += 1
        for pos in range(k, end + 1):
            ranks[order[pos]] = (k + end) / 2.0 + 1.0
        k = end + 1
    return ranks


def wilcoxon_speakers(blocks: Sequence[SpeakerWer]) -> TestResult:
    """sc_stats' Wilcoxon signed-rank test on per-speaker %WER (ties ranked, then alternated)."""
    n = len(blocks)
    if n == 0:
        return TestResult("wilcoxon", None, float("nan"), SCTK_METHOD_NOTE, 0, {"reason": "no speakers"}, SC_STATS)
    a_worse = _worse_first(blocks)
    diff = [(b.wer_a - b.wer_b) if a_worse else (b.wer_b - b.wer_a) for b in blocks]
    ranks = _mid_ranks([abs(d) for d in diff])
    n_plus = n_minus = 0
    r_plus = r_minus = 0.0
    alternate = 0
    for d, r in zip(diff, ranks):
        if d < 0.0 and abs(d) > SIGN_TIE:
            n_minus, r_minus = n_minus + 1, r_minus + r
        elif d > 0.0 and abs(d) > SIGN_TIE:
            n_plus, r_plus = n_plus + 1, r_plus + r
        else:
            if alternate % 2 == 0:
                n_plus, r_plus = n_plus + 1, r_plus + r
            else:
                n_minus, r_minus = n_minus + 1, r_minus + r
            alternate += 1
    w = r_plus if n_plus < n_minus else r_minus
    mean = n * (n + 1) / 4.0
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
    z = (w - mean) / sd
    details = {"w": w, "n_plus": n_plus, "n_minus": n_minus, "rank_sum_plus": r_plus, "rank_sum_minus": r_minus,
               "blocks": "speakers", "worse_first": "A" if a_worse else "B",
               "tie_rule": f"|difference| <= {SIGN_TIE} points alternated between + and -, starting with +"}
    return TestResult("wilcoxon", z, _normal_two_sided(z), SCTK_METHOD_NOTE + ", normal approximation", n, details,
                      SC_STATS)


@dataclass(frozen=True)
class SctkUtterance:
    """One utterance of both systems: its sclite block (speaker) and the normalised token sequences."""

    speaker: str
    ref: tuple[str, ...]
    hyp_a: tuple[str, ...]
    hyp_b: tuple[str, ...]


def sclite_speaker(utt_id: str, speaker: str | None) -> str:
    """The block sclite derives from the id ``voxproof export`` writes: the speaker, else the utterance."""
    from voxproof.run.export import trn_id

    ident = trn_id(utt_id, speaker)
    return ident.split("-", 1)[0]


def sctk_tests(utterances: Sequence[SctkUtterance]) -> tuple[TestResult, ...]:
    """MAPSSWE on error regions, speaker-level sign and Wilcoxon tests, all from sclite alignments."""
    regions: list[Region] = []
    per_speaker: dict[str, list[int]] = {}
    for u in utterances:
        pa = sclite_align(u.ref, u.hyp_a)
        pb = sclite_align(u.ref, u.hyp_b)
        regions.extend(error_regions([e for e, _r, _h in pa], [e for e, _r, _h in pb]))
        ea, ra = path_counts(pa)
        eb, _ = path_counts(pb)
        acc = per_speaker.setdefault(u.speaker, [0, 0, 0])
        acc[0] += ra
        acc[1] += ea
        acc[2] += eb
    blocks = [SpeakerWer(s, _pct(v[1], v[0]), _pct(v[2], v[0])) for s, v in per_speaker.items()]
    return mapsswe_regions(regions), sign_test_speakers(blocks), wilcoxon_speakers(blocks)
