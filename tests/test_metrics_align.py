"""Alignment core: counts identical to jiwer (words and characters) and consistent with kaldialign,
the documented tie-breaking rule, alternates."""

from __future__ import annotations

import random

import jiwer
import kaldialign
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxproof.errors import UsageError
from voxproof.metrics.align import align, char_counts, count_edits, word_counts
from voxproof.metrics.alternates import (
    default_alternates,
    load_alternates,
    parse_alternates,
    resolve_alternates,
)
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.normalize import get_normalizer


def _jiwer_words(ref: str, hyp: str) -> ErrorCounts:
    o = jiwer.process_words(ref, hyp)
    return ErrorCounts(o.hits, o.substitutions, o.deletions, o.insertions)


def _jiwer_chars(ref: str, hyp: str) -> ErrorCounts:
    o = jiwer.process_characters(ref, hyp)
    return ErrorCounts(o.hits, o.substitutions, o.deletions, o.insertions)


def _transcripts(shared_data) -> list[str]:
    lines = (shared_data / "librispeech-test-other-mini" / "transcripts.tsv").read_text().splitlines()
    return [line.split("\t", 1)[1] for line in lines if line.strip()]


def _edit(words: list[str], vocab: list[str], rng: random.Random, rate: float) -> list[str]:
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # deletion
        if r < 2 * rate / 3:
            out.append(rng.choice(vocab))  # substitution (sometimes by the same word)
        else:
            out.append(w)
        if rng.random() < rate / 3:
            out.append(rng.choice(vocab))  # insertion
    return out


def test_counts_equal_jiwer_on_10000_random_and_real_pairs(shared_data):
    """5,000 random pairs over small alphabets (many ties between alignments) and 5,000 real
    LibriSpeech sentences with random edits: every S/D/I count equals jiwer.process_words, and
    character counts equal jiwer.process_characters."""
    rng = random.Random(20261126)
    pairs = []
    for _ in range(5000):
        alphabet = "abcdefgh"[: rng.randint(2, 8)]
        ref = [rng.choice(alphabet) for _ in range(rng.randint(1, 30))]
        hyp = [rng.choice(alphabet) for _ in range(rng.randint(0, 30))]
        pairs.append((" ".join(ref), " ".join(hyp)))
    norm = get_normalizer("whisper-en")
    texts = [norm(t) for t in _transcripts(shared_data)]
    vocab = sorted({w for t in texts for w in t.split()})
    for _ in range(5000):
        words = rng.choice(texts).split()
        pairs.append((" ".join(words), " ".join(_edit(words, vocab, rng, rng.choice([0.05, 0.2, 0.5])))))
    mismatches = [(r, h) for r, h in pairs if word_counts(r, h) != _jiwer_words(r, h)]
    assert mismatches == []
    char_mismatches = [(r, h) for r, h in pairs[::5] if h and char_counts(r, h) != _jiwer_chars(r, h)]
    assert char_mismatches == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "the", "cat"]), min_size=1, max_size=25),
    st.lists(st.sampled_from(["a", "b", "c", "the", "dog"]), min_size=0, max_size=25),
)
def test_counts_property_against_jiwer_and_invariants(ref, hyp):
    c = count_edits(ref, hyp)
    assert c == _jiwer_words(" ".join(ref), " ".join(hyp))
    assert c.ref_len == len(ref) and c.hyp_len == len(hyp)
    a = align(ref, hyp)
    assert a.counts == c
    # the ops walk both sequences in order, each token exactly once
    assert [i for _, i, _ in a.ops if i is not None] == list(range(len(ref)))
    assert [j for _, _, j in a.ops if j is not None] == list(range(len(hyp)))
    for op, i, j in a.ops:
        if op == "equal":
            assert ref[i] == hyp[j]
        elif op == "substitute":
            assert ref[i] != hyp[j]


def test_total_edits_equal_kaldialign_and_split_differs_only_on_ties(shared_data):
    """kaldialign (Kaldi) finds the same minimum number of edits on every pair; its S/D/I split can
    differ where several minimum alignments tie (Kaldi may take a deletion and an insertion where
    rapidfuzz/jiwer take two substitutions); on these inputs it agrees on more than 90 % of pairs."""
    rng = random.Random(7)
    norm = get_normalizer("whisper-en")
    texts = [norm(t).split() for t in _transcripts(shared_data)]
    vocab = sorted({w for t in texts for w in t})
    same_split = 0
    n = 2000
    for k in range(n):
        if k % 2:
            ref = [rng.choice("abcd") for _ in range(rng.randint(1, 12))]
            hyp = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        else:
            ref = rng.choice(texts)
            hyp = _edit(ref, vocab, rng, 0.2)
        ours = count_edits(ref, hyp)
        kal = kaldialign.edit_distance(ref, hyp)
        assert ours.errors == kal["total"]
        assert ours.ref_len == kal["ref_len"]
        same_split += (ours.substitutions, ours.deletions, ours.insertions) == (kal["sub"], kal["del"], kal["ins"])
    assert same_split > 0.9 * n
    # the documented example of a tie: two substitutions here, one deletion and one insertion in Kaldi
    assert count_edits(["a", "b"], ["b", "c"]) == ErrorCounts(0, 2, 0, 0)
    assert kaldialign.edit_distance(["a", "b"], ["b", "c"])["sub"] == 0


def _documented_rule(ref: list[str], hyp: list[str]) -> tuple:
    """The tie-breaking rule of voxproof.metrics.align's docstring, written out as a plain DP."""
    p = 0
    while p < min(len(ref), len(hyp)) and ref[p] == hyp[p]:
        p += 1
    s = 0
    while s < min(len(ref), len(hyp)) - p and ref[-1 - s] == hyp[-1 - s]:
        s += 1
    r, h = ref[p : len(ref) - s], hyp[p : len(hyp) - s]
    n, m = len(r), len(h)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (r[i - 1] != h[j - 1]))
    ops = []
    i, j = n, m
    while i and j:
        if d[i - 1][j] + 1 == d[i][j]:
            ops.append(("delete", i - 1 + p, None))
            i -= 1
        elif d[i - 1][j - 1] == d[i][j - 1] + 1:
            ops.append(("insert", None, j - 1 + p))
            j -= 1
        else:
            ops.append(("equal" if r[i - 1] == h[j - 1] else "substitute", i - 1 + p, j - 1 + p))
            i, j = i - 1, j - 1
    ops += [("delete", k + p, None) for k in reversed(range(i))] + [("insert", None, k + p) for k in reversed(range(j))]
    head = [("equal", k, k) for k in range(p)]
    tail = [("equal", len(ref) - s + k, len(hyp) - s + k) for k in range(s)]
    return tuple(head + ops[::-1] + tail)


def test_alignment_follows_the_documented_tie_breaking_rule():
    rng = random.Random(11)
    for k in range(3000):
        longer = k % 10 == 0  # some beyond 64 tokens (rapidfuzz's block algorithm)
        ref = [rng.choice("abcd") for _ in range(rng.randint(0, 150 if longer else 12))]
        hyp = [rng.choice("abcd") for _ in range(rng.randint(0, 150 if longer else 12))]
        assert align(ref, hyp).ops == _documented_rule(ref, hyp), (ref, hyp)


def test_edge_cases():
    assert count_edits([], []) == ErrorCounts()
    assert count_edits(["a"], []) == ErrorCounts(0, 0, 1, 0)
    assert count_edits([], ["a", "b"]) == ErrorCounts(0, 0, 0, 2)
    assert count_edits(["a", "b"], ["a", "b"]) == ErrorCounts(2, 0, 0, 0)
    assert align([], ["x"]).ops == (("insert", None, 0),)
    # many distinct tokens (code points beyond the BMP) still align correctly
    ref = [f"w{i}" for i in range(70000)]
    hyp = ref[:-1] + ["zzz"]
    assert count_edits(ref, hyp) == ErrorCounts(69999, 1, 0, 0)
    # CER counts the space between words, as jiwer does
    assert char_counts("ab cd", "abcd") == ErrorCounts(4, 0, 1, 0)


def test_alternates_rewrite_hypothesis_to_the_reference_variant():
    alts = default_alternates().normalized(get_normalizer("whisper-en"))
    # multi-word alternate in the reference, single word in the hypothesis
    assert word_counts("it is all right now", "it is alright now", alts) == ErrorCounts(5, 0, 0, 0)
    assert word_counts("it is all right now", "it is alright now") == ErrorCounts(3, 1, 1, 0)
    # single word in the reference: reference word count unchanged
    assert word_counts("that is alright", "that is all right", alts) == ErrorCounts(3, 0, 0, 0)
    assert word_counts("okay then", "ok then", alts) == ErrorCounts(2, 0, 0, 0)
    # a variant the reference does not use is never rewritten
    assert word_counts("fine then", "ok then", alts) == ErrorCounts(1, 1, 0, 0)
    # character level follows the same rewrite
    assert char_counts("okay then", "ok then", alts) == ErrorCounts(9, 0, 0, 0)


def test_user_alternates_file(tmp_path):
    path = tmp_path / "alts.txt"
    path.write_text("# mine\ncolour | color\nnew york | newyork | ny\n", encoding="utf-8")
    alts = load_alternates(path)
    assert alts.groups[1] == (("new", "york"), ("newyork",), ("ny",))
    assert word_counts("i love new york", "i love ny", alts) == ErrorCounts(4, 0, 0, 0)
    combined = resolve_alternates(f"default+{path}")
    assert len(combined.groups) == len(default_alternates().groups) + 2
    assert resolve_alternates("none") is None
    with pytest.raises(UsageError, match="line 2"):
        parse_alternates("ok|okay\njust one\n", source="x.txt")
    with pytest.raises(UsageError, match="not found"):
        load_alternates(tmp_path / "missing.txt")
