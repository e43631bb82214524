"""The ``whisper-en`` normaliser: Whisper-style English text standardisation as a chain of named steps.

Written for voxproof to give the same words as the English normaliser of the Whisper paper (appendix C),
so a WER computed here can be held against published Whisper figures: lower case; drop bracketed and
parenthesised spans; drop hesitations (hmm, mm, mhm, mmm, uh, um); expand contractions and titles;
drop commas inside numbers and periods that end words; drop symbols and diacritics (keeping the ones
numbers need); spelled numbers to digits; British to American spelling; drop leftover symbols.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib.resources import files

from voxproof.metrics.normalize.base import NamedStep, Normalizer
from voxproof.metrics.normalize.numbers import NumberReader

VERSION = "1"

HESITATIONS = ("hmm", "mm", "mhm", "mmm", "uh", "um")

# Order matters: specific forms before the general suffix rules at the end.
CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\blet's\b", "let us"),
    (r"\bain't\b", "aint"),
    (r"\by'all\b", "you all"),
    (r"\bwanna\b", "want to"),
    (r"\bkinda\b", "kind of"),
    (r"\bsorta\b", "sort of"),
    (r"\bdunno\b", "do not know"),
    (r"\bgotta\b", "got to"),
    (r"\bgonna\b", "going to"),
    (r"\bi'ma\b", "i am going to"),
    (r"\bimma\b", "i am going to"),
    (r"\bwoulda\b", "would have"),
    (r"\bcoulda\b", "could have"),
    (r"\bshoulda\b", "should have"),
    (r"\bcause\b", "because"),
    (r"\bma'am\b", "madam"),
)
TITLES: tuple[tuple[str, str], ...] = tuple(
    (rf"\b{abbr}\b", full + " ")
    for abbr, full in (
        ("mr", "mister"), ("mrs", "missus"), ("st", "saint"), ("dr", "doctor"), ("prof", "professor"),
        ("capt", "captain"), ("gov", "governor"), ("ald", "alderman"), ("gen", "general"),
        ("sen", "senator"), ("rep", "representative"), ("pres", "president"), ("rev", "reverend"),
        ("hon", "honorable"), ("asst", "assistant"), ("assoc", "associate"), ("lt", "lieutenant"),
        ("col", "colonel"), ("jr", "junior"), ("sr", "senior"), ("esq", "esquire"),
    )
)
SUFFIX_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    # perfect tenses first: "'s been" is "has been", not "is been"
    (r"'d been\b", " had been"),
    (r"'s been\b", " has been"),
    (r"'d gone\b", " had gone"),
    (r"'s gone\b", " has gone"),
    (r"'d done\b", " had done"),
    (r"'s got\b", " has got"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'s\b", " is"),
    (r"'d\b", " would"),
    (r"'ll\b", " will"),
    (r"'t\b", " not"),
    (r"'ve\b", " have"),
    (r"'m\b", " am"),
)

# letters NFKD does not decompose
EXTRA_LETTERS = {
    "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ẞ": "SS",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "th", "ł": "l", "Ł": "L",
}
NUMERIC_SYMBOLS = ".%$¢€£"


def _sub(pattern: str, repl: str) -> NamedStep:
    rx = re.compile(pattern)
    return NamedStep(f"sub:{pattern}", lambda s: rx.sub(repl, s))


def _rewrite_words(name: str, rules: tuple[tuple[str, str], ...]) -> NamedStep:
    """Whole-word rewrites (``\\bword\\b`` -> text) in one pass. Equal to applying them one after the
    other because no replacement contains another rule's word and no word is a prefix of another
    followed by a word boundary."""
    table = {p[2:-2]: r for p, r in rules}
    rx = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(table, key=len, reverse=True)) + r")\b")
    return NamedStep(name, lambda s: rx.sub(lambda m: table[m.group(1)], s))


def _rewrite_suffixes(name: str, rules: tuple[tuple[str, str], ...]) -> NamedStep:
    """Suffix contractions, in order; every rule needs an apostrophe, so text without one is skipped."""
    compiled = [(re.compile(p), r) for p, r in rules]

    def run(s: str) -> str:
        if "'" not in s:
            return s
        for rx, repl in compiled:
            s = rx.sub(repl, s)
        return s

    return NamedStep(name, run)


class _SymbolTable(dict):
    """``str.translate`` table built on demand: marks dropped, other marks/symbols/punctuation to a
    space, letters NFKD does not split spelled out, numeric symbols kept."""

    def __init__(self, keep: str):
        super().__init__()
        self.keep = keep

    def __missing__(self, code: int) -> str:
        c = chr(code)
        if c in self.keep:
            out = c
        elif c in EXTRA_LETTERS:
            out = EXTRA_LETTERS[c]
        else:
            cat = unicodedata.category(c)
            out = "" if cat == "Mn" else " " if cat[0] in "MSP" else c
        self[code] = out
        return out


_SYMBOLS = _SymbolTable(NUMERIC_SYMBOLS)


def strip_symbols_and_diacritics(s: str, keep: str = NUMERIC_SYMBOLS) -> str:
    """NFKD; combining marks dropped; other marks, symbols and punctuation become spaces; ``keep``
    is kept as is."""
    table = _SYMBOLS if keep == NUMERIC_SYMBOLS else _SymbolTable(keep)
    return unicodedata.normalize("NFKD", s).translate(table)


@lru_cache(maxsize=1)
def british_to_american() -> dict[str, str]:
    """The British -> American spelling table (1,739 words; see ``british_american.NOTICE``)."""
    path = files("voxproof.metrics.normalize").joinpath("british_american.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _american(s: str) -> str:
    table = british_to_american()
    return " ".join(table.get(w, w) for w in s.split())


def whisper_english() -> Normalizer:
    """The ``whisper-en`` normaliser (default for English)."""
    numbers = NumberReader()
    steps = (
        NamedStep("lowercase", str.lower),
        _sub(r"[<\[][^>\]]*[>\]]", ""),  # drop [bracketed] and <tagged> spans
        _sub(r"\(([^)]+?)\)", ""),  # drop (parenthesised) spans
        _sub(r"\b(" + "|".join(HESITATIONS) + r")\b", ""),
        _sub(r"\s+'", "'"),  # "don 't" -> "don't"
        _rewrite_words("contractions", CONTRACTIONS + TITLES),
        _rewrite_suffixes("suffix_contractions", SUFFIX_CONTRACTIONS),
        _sub(r"(\d),(\d)", r"\1\2"),  # 1,000 -> 1000
        _sub(r"\.([^0-9]|$)", r" \1"),  # periods not followed by digits
        NamedStep("strip_symbols", strip_symbols_and_diacritics),
        NamedStep("numbers", numbers),
        NamedStep("british_to_american", _american),
        _sub(r"[.$¢€£]([^0-9])", r" \1"),  # symbols no number follows
        _sub(r"([^0-9])%", r"\1 "),  # % no number precedes
    )
    return Normalizer(
        name="whisper-en",
        version=VERSION,
        steps=steps,
        description="Whisper-style English: case, punctuation, contractions, numbers to digits, "
        "British to American spelling, hesitations removed",
    )
