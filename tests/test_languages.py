"""Languages: the multilingual-<lang> normalisers on golden texts (numbers spoken in the language,
punctuation by Unicode category, characters of unspaced scripts as tokens), the mixed error rate they
give, and language confusion with langid."""

from __future__ import annotations

import pytest

from voxproof.errors import UsageError
from voxproof.metrics.align import char_counts, word_counts
from voxproof.metrics.normalize import get_normalizer

pytest.importorskip("num2words")

GOLDEN = [
    ("en", "It's 10 o'clock!", "it's ten o'clock"),
    ("de", "Es kostet 21 Euro, oder?", "es kostet einundzwanzig euro oder"),
    ("fr", "Il a 3 chats.", "il a trois chats"),
    ("es", "¡Tengo 2 perros!", "tengo dos perros"),
    ("ru", "У меня 5 кошек.", "у меня пять кошек"),
    ("ja", "今日は２つのリンゴを食べました。", "今 日 は 二 つ の リ ン ゴ を 食 べ ま し た"),
    ("zh", "我有三个苹果。", "我 有 三 个 苹 果"),
    ("th", "ฉันมี 2 แมว", "ฉั น มี ส อ ง แ ม ว"),
    ("de", "STRASSE Straße", "strasse strasse"),  # case folding
]


@pytest.mark.parametrize("lang, text, expected", GOLDEN)
def test_golden_texts(lang, text, expected):
    norm = get_normalizer(f"multilingual-{lang}")
    assert norm(text) == expected
    assert norm.label == f"multilingual-{lang}@1"


def test_mixed_error_rate_is_cer_for_chinese_and_wer_elsewhere():
    zh = get_normalizer("multilingual-zh")
    ref, hyp = zh("我有三个苹果"), zh("我有两个苹果")
    assert word_counts(ref, hyp).errors == 1 and word_counts(ref, hyp).ref_len == 6  # one character of six
    ja = get_normalizer("multilingual-ja")
    mixed_ref, mixed_hyp = ja("Tokyo は 大きい"), ja("Tokyo は 大きな")
    counts = word_counts(mixed_ref, mixed_hyp)
    assert counts.ref_len == 5 and counts.errors == 1  # "tokyo" one token, kana and kanji by character
    assert char_counts(mixed_ref, mixed_hyp).errors == 1


def test_unknown_language_code_keeps_digits_and_bad_names_are_refused():
    norm = get_normalizer("multilingual-xx")
    assert norm("a 5 b") == "a 5 b" and "digits kept" in norm.description
    with pytest.raises(UsageError, match="multilingual-LANG"):
        get_normalizer("multilingual-../x")


def test_language_confusion_with_langid():
    pytest.importorskip("langid")
    from voxproof.metrics.language import language_confusion

    texts = ["the cat sat on the mat and looked out of the window", "the weather is very nice today",
             "das Wetter ist heute sehr schön und warm", "", "we will meet again tomorrow morning"]
    lc = language_confusion(texts, "en", n_resamples=200)
    assert (lc.outputs, lc.empty, lc.confused) == (4, 1, 1)
    assert lc.identified["de"] == 1 and lc.rate.estimate == pytest.approx(0.25)
    with pytest.raises(UsageError, match="ISO 639-1"):
        language_confusion(texts, "../etc")
