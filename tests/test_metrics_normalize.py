"""Normalisers: golden tables for whisper-en (same output as whisper-normalizer's
EnglishTextNormalizer on every LibriSpeech transcript, the quirks in STACK-NOTES, and random number
phrases), basic, none, and the registry's refusals."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.errors import UsageError
from voxproof.metrics.normalize import get_normalizer, list_normalizers
from voxproof.metrics.normalize.numbers import NUMBER_WORDS

WHISPER = EnglishTextNormalizer()
OURS = get_normalizer("whisper-en")


def reference(text: str) -> str:
    """whisper-normalizer's output; it can leave a space at either end, ours strips them."""
    return WHISPER(text).strip()


def test_same_output_as_whisper_normalizer_on_all_librispeech_transcripts(shared_data):
    lines = (shared_data / "librispeech-test-other-mini" / "transcripts.tsv").read_text().splitlines()
    texts = [line.split("\t", 1)[1] for line in lines if line.strip()]
    assert len(texts) == 50
    for text in texts:
        assert OURS(text) == reference(text), text
    # total words after normalisation: the figure STACK-NOTES quotes for this set
    assert sum(len(OURS(t).split()) for t in texts) == 1060


# (input, expected output): each expected value is written out and also checked against whisper-normalizer
GOLDEN = [
    ("9 o'clock", "90 clock"),  # Whisper quirk: "o" read as zero
    ("three thirty", "330"),
    ("It's 3.30", "it is 3.30"),
    ("call 555-1234", "call 555 1234"),
    ("five five five one two three four", "5551234"),
    ("Mr. Smith's colour", "mister smith is color"),
    ("I won't go, okay?", "i will not go okay"),
    ("twenty-one", "21"),
    ("$20 million", "$20000000"),
    ("ten thousand dollars", "$10000"),
    ("one oh one", "101"),
    ("two and a half", "2.5"),
    ("the 1960s", "the 1960s"),
    ("the twenty first century", "the 21st century"),
    ("fifty percent", "50%"),
    ("Um, I'd been there [noise] (laughs)", "i had been there"),
    ("THE FIRST TIME", "the 1st time"),
    ("one of them", "one of them"),
    ("ONE POUND OF LOBSTER", "one of lobster"),
    ("Café naïve", "cafe naive"),
    ("I'm gonna analyse the programme", "i am going to analyze the program"),
    ("it cost $2 and 7 cents", "it cost $2.07"),
    ("double three", "33"),
    ("minus five", "-5"),
]


@pytest.mark.parametrize("text,expected", GOLDEN)
def test_golden_table(text, expected):
    assert OURS(text) == expected
    assert reference(text) == expected


def test_random_number_phrases_match_whisper_normalizer():
    """8,000 random phrases mixing every number word with digits, currencies and plain words."""
    vocab = sorted(NUMBER_WORDS) + ["a", "the", "cat", "1", "23", "4.5", "$3", "£7", "-2", "1st", "1960s",
                                    "half", "o'clock", "colour", "mr.", "it's", "%", ".", "3,000"]
    rng = random.Random(3)
    for _ in range(8000):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 8)))
        assert OURS(text) == reference(text), text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abcdeiouy0123456789 .,'$%-£éæ") + ["one ", "twenty ", "hundred ", " and "]),
                max_size=30).map("".join))
def test_arbitrary_text_matches_whisper_normalizer(text):
    assert OURS(text) == reference(text)


def test_basic_and_none():
    basic = get_normalizer("basic")
    assert basic("Hello, World!  It's   FINE.") == "hello world it's fine"
    assert basic("ninety-nine") == "ninety nine"
    none = get_normalizer("none")
    assert none("  Hello,   World! ") == "Hello, World!"
    assert none.version == "1" and none.steps == ()


def test_registry():
    names = [n.name for n in list_normalizers()]
    assert names[0] == "whisper-en" and {"basic", "none"} <= set(names)
    assert get_normalizer("whisper-en@1") is get_normalizer("whisper-en@1")
    assert get_normalizer("whisper-en").label == "whisper-en@1"
    with pytest.raises(UsageError, match="unknown normalizer 'klingon'"):
        get_normalizer("klingon")
    with pytest.raises(UsageError, match="version '9'"):
        get_normalizer("whisper-en@9")
    trace = OURS.trace("Mr. Smith's colour")
    assert trace[0] == ("input", "Mr. Smith's colour")
    assert [name for name, _ in trace][-4:-2] == ["numbers", "british_to_american"]
