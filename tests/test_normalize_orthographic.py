"""The ``orthographic`` and ``cased`` normalisers (captioning: case and punctuation count) on golden
texts, and orthographic scoring of a run with the ``punctuation`` token class."""

from __future__ import annotations

import pytest

from voxproof.errors import UsageError
from voxproof.metrics.align import word_counts
from voxproof.metrics.classes import ClassSpec, attribute, tag_reference
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.normalize import get_normalizer, list_normalizers

ORTHO = get_normalizer("orthographic")
CASED = get_normalizer("cased")

GOLDEN = [
    ("Hello, world!", "Hello , world !", "Hello world"),
    ("It\u2019s a well-known fact\u2014isn\u2019t it?", "It's a well-known fact - isn't it ?",
     "It's a well-known fact isn't it"),
    ("\u201cQuoted,\u201d she said\u2026", '" Quoted , " she said ...', "Quoted she said"),
    ("Pay $1,000.50 by 3.5 p.m.", "Pay $ 1,000.50 by 3.5 p . m .", "Pay 1,000.50 by 3.5 p m"),
    ("Cafe\u0301 NOW", "Caf\u00e9 NOW", "Caf\u00e9 NOW"),  # NFC composes e + combining accent
    ("  spaced\ttext \n", "spaced text", "spaced text"),
]


@pytest.mark.parametrize("text, ortho, cased", GOLDEN)
def test_golden_texts(text, ortho, cased):
    assert ORTHO(text) == ortho
    assert CASED(text) == cased


def test_named_and_versioned_like_the_others():
    names = [n.name for n in list_normalizers()]
    assert {"orthographic", "cased"} <= set(names)
    assert ORTHO.label == "orthographic@1" and get_normalizer("orthographic@1")("A, b") == "A , b"
    with pytest.raises(UsageError, match="version '2' is not available"):
        get_normalizer("orthographic@2")


def test_case_and_punctuation_errors_count_only_orthographically():
    ref, hyp = "Yes, Mr. Smith.", "yes mr smith"
    assert word_counts(get_normalizer("basic")(ref), get_normalizer("basic")(hyp)).errors == 0
    assert word_counts(CASED(ref), CASED(hyp)) == ErrorCounts(0, 3, 0, 0)
    assert word_counts(ORTHO(ref), ORTHO(hyp)) == ErrorCounts(0, 3, 3, 0)  # 3 case errors, 3 marks missing


def test_punctuation_class_under_the_orthographic_normaliser():
    spec = ClassSpec(rules=("punctuation",))
    tokens, tags, _ = tag_reference("Yes, Mr. Smith. Come in!", ORTHO, spec)
    counts, _, _ = attribute(tokens, tags, ORTHO("Yes Mr. Smith, come in!").split(), spec)
    # reference marks: , . . !  -> "," deleted, "." hit after Mr, "." -> "," substituted, "!" hit
    assert counts["punctuation"] == ErrorCounts(hits=2, substitutions=1, deletions=1, insertions=0)
