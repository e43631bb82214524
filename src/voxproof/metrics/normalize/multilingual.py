"""The ``multilingual-<lang>`` normalisers (version 1): Unicode NFKC, case folding, digits spoken out in
the language with ``num2words``, punctuation and symbols (by Unicode category) to spaces, and every
character of a script written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) made
a token of its own. WER over these tokens is the **mixed error rate** (characters where a script has no
word spaces, words elsewhere); for Chinese, Japanese and Thai it is the character error rate.

``lang`` is an ISO 639-1 code that num2words knows (``en de fr es it pt nl ru pl ja zh th``...); a
language num2words does not know keeps digits as they are (and says so in the normaliser's description).
"""

from __future__ import annotations

import re
import unicodedata

from voxproof.metrics.normalize.base import NamedStep, Normalizer

VERSION = "1"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NUM2WORDS_LANG = {"zh": "zh_CN"}
_UNSPACED = (
    (0x2E80, 0x2FDF), (0x3040, 0x30FF), (0x3100, 0x312F), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x2FA1F),  # Han, kana, bopomofo
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1780, 0x17FF), (0x1000, 0x109F),  # Thai, Lao, Khmer, Myanmar
)


def unspaced(ch: str) -> bool:
    """True for a character of a script written without spaces between words."""
    cp = ord(ch)
    return any(a <= cp <= b for a, b in _UNSPACED)


def _speller(lang: str):
    try:
        from num2words import num2words
    except ImportError:
        return None
    code = _NUM2WORDS_LANG.get(lang, lang)
    try:
        num2words(1, lang=code)
    except NotImplementedError:
        return None

    def spell(text: str) -> str:
        def one(m: re.Match) -> str:
            raw = m.group(0)
            try:
                value = float(raw.replace(",", ".")) if ("." in raw or "," in raw) else int(raw)
                return f" {num2words(value, lang=code)} "
            except (ValueError, OverflowError, NotImplementedError, TypeError):
                return raw
        return _NUMBER.sub(one, text)

    return spell


def _punctuation_to_space(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        inner_apostrophe = ch in "'\u2019" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
        out.append(" " if cat[0] in "PS" and not inner_apostrophe else ch)
    return "".join(out)


def _split_unspaced(text: str) -> str:
    """Characters of unspaced scripts as tokens; a combining mark (Thai vowels and tones) stays with its
    base character."""
    out: list[str] = []
    for ch in text:
        if not unspaced(ch):
            out.append(ch)
        elif unicodedata.category(ch) == "Mn" and out and out[-1] == " ":
            out[-1] = ch
            out.append(" ")
        else:
            out += [" ", ch, " "]
    return "".join(out)


def multilingual(lang: str) -> Normalizer:
    spell = _speller(lang)
    steps = [NamedStep("unicode_nfkc", lambda s: unicodedata.normalize("NFKC", s)),
             NamedStep("casefold", str.casefold)]
    if spell is not None:
        steps.append(NamedStep(f"numbers_to_words_{lang}", spell))
    steps += [NamedStep("punctuation_to_space", _punctuation_to_space),
              NamedStep("unspaced_scripts_by_character", _split_unspaced)]
    note = "" if spell is not None else f"; num2words has no '{lang}', digits kept"
    return Normalizer(name=f"multilingual-{lang}", version=VERSION, steps=tuple(steps),
                      description="NFKC, case folding, numbers in words, punctuation by Unicode category, "
                                  f"characters of unspaced scripts as tokens (mixed error rate){note}")
