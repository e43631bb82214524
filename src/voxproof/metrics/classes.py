"""Token classes of a reference (numbers, dates, proper nouns, user entities, keywords, out-of-vocabulary
words) and the errors attributed to each class through the word alignment.

Stage: after normalisation and alignment (the same ones WER uses), before intervals. Every class is a
set of positions in the *normalised* reference, so a class's counts are a restriction of the
utterance's WER counts:

- a reference token of class C that is aligned as a hit, a substitution or a deletion counts as such
  for C (a token may belong to several classes: ``20`` in ``20 dollars`` is ``numbers`` and
  ``currency``);
- an inserted hypothesis word counts for C when the reference tokens on both sides of it are of class
  C (an insertion inside a span such as ``twenty one`` -> ``twenty and one``); an insertion at a
  class boundary is not attributed (fstalign attributes it the same way for its class spans).

So class WER = (S + D + I_inside) / reference tokens of the class; the sum over classes is not the
utterance WER (tokens outside every class, and boundary insertions, belong to no class).

Rule classes work on the normalised tokens (and the raw reference for letter case and e-mail/URL
shapes): ``numbers`` (digits, and number words for normalisers that keep them), ``ordinals``,
``dates`` (month and weekday names, numeric dates; ``may``/``march`` only next to a number),
``times`` (``10:30``, ``o'clock``, ``am``/``pm`` after a number, noon, midnight), ``currency``
(symbols, currency words, and the numbers next to them), ``email_url``, ``spelled_letters`` (runs of
two or more one-letter tokens), ``proper_nouns`` (capitalised words of a mixed-case reference that do
not start a sentence; a reference without lower-case letters carries no case, so the rule cannot
apply to it and says so), ``function_words`` (a closed list of English articles, pronouns,
prepositions, conjunctions and auxiliaries) and ``punctuation`` (tokens made only of punctuation and
symbols: present with the ``orthographic`` normaliser, which keeps each mark as a token).

User lists (files, one entry a line, ``#`` comments): ``--entities`` lines ``CLASS<TAB>phrase`` (or a
bare phrase: class ``entities``), ``--keywords`` phrases (class ``keywords``, plus keyword
precision/recall/F1), ``--vocab`` words of a training vocabulary (reference words outside it form the
class ``oov``; OOV recall is the share of them recognised). Phrases are normalised with the run's
normaliser, so they match what is scored.
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voxproof.errors import UsageError
from voxproof.metrics.align import EQUAL, INSERT, SUBSTITUTE, align
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.userfile import read_user_text

log = logging.getLogger("voxproof.metrics.classes")

NUMBERS = "numbers"
ORDINALS = "ordinals"
DATES = "dates"
TIMES = "times"
CURRENCY = "currency"
EMAIL_URL = "email_url"
SPELLED = "spelled_letters"
PROPER = "proper_nouns"
FUNCTION = "function_words"
PUNCTUATION = "punctuation"
RULE_CLASSES = (NUMBERS, ORDINALS, DATES, TIMES, CURRENCY, EMAIL_URL, SPELLED, PROPER, FUNCTION, PUNCTUATION)
KEYWORDS = "keywords"
ENTITIES = "entities"
OOV = "oov"
MAX_LIST_BYTES = 8 * 1024 * 1024
MAX_PHRASE_WORDS = 20
_CLASS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion", "trillion", "dozen"]
_ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth", "ninetieth", "hundredth", "thousandth", "millionth"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
_AMBIGUOUS_MONTHS = {"may", "march"}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_CURRENCY_WORDS = {"dollar", "dollars", "cent", "cents", "euro", "euros", "pence", "penny", "pennies", "shilling",
                   "shillings", "guinea", "guineas", "yen", "franc", "francs", "sterling"}
_CURRENCY_AFTER_NUMBER = {"pound", "pounds", "crowns", "marks"}
_FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "this", "that", "these", "those", "i", "me", "my", "mine", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his", "she", "her", "hers", "it", "its", "they", "them", "their", "theirs", "who", "whom", "whose", "which", "what", "myself", "yourself", "himself", "herself", "itself", "ourselves", "themselves", "of", "in", "on", "at", "by", "for", "with", "from", "to", "into", "onto", "upon", "over", "under", "about", "above", "below", "after", "before", "between", "through", "during", "without", "within", "among", "against", "toward", "towards", "across", "along", "around", "behind", "beyond", "near", "off", "out", "up", "down", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "because", "as", "while", "though", "although", "unless", "until", "whether", "since", "be", "am", "is", "are", "was", "were", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "not", "no", "there", "here", "all", "any", "some", "each", "every", "either", "neither", "both", "such", "own", "same", "other", "another", "very", "too", "also", "just", "only"])
_NUMBER_TOKEN = re.compile(r"^[$£€¥]?\d[\d,.]*%?$")
_ORDINAL_TOKEN = re.compile(r"^\d+(st|nd|rd|th)$")
_DATE_TOKEN = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$")
_TIME_TOKEN = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?(am|pm)?$|^\d{1,2}(am|pm)$")
_URL = re.compile(r"(^https?://|^www\.|@\w|\w\.(com|org|net|io|edu|gov|co|uk|de)\b)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]['\"\u201d\u2019)]*$")
_ABBREVIATION = re.compile(r"^(mr|mrs|ms|dr|st|prof|sr|jr|rev|capt|col|gen|lt|sgt|mt|no|vs|[a-z])\.$", re.IGNORECASE)


# -- user lists ------------------------------------------------------------------------------------
def read_list_file(path: str | os.PathLike[str], what: str) -> tuple[list[tuple[int, str]], str]:
    """The non-empty, non-comment lines of a user list file as ``(line number, text)`` and the file's
    sha256. Only regular files (devices and FIFOs never end), at most 8 MiB, UTF-8, no NUL bytes."""
    text, digest = read_user_text(path, what, MAX_LIST_BYTES)
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            lines.append((number, line))
    return lines, digest


def _phrase(norm: Any, text: str, label: str, number: int) -> tuple[str, ...]:
    words = tuple(norm(text).split())
    if not words:
        raise UsageError(f"{label} line {number}: {text!r} is empty after normalisation")
    if len(words) > MAX_PHRASE_WORDS:
        raise UsageError(f"{label} line {number}: a phrase of {len(words)} words; at most {MAX_PHRASE_WORDS}")
    return words


@dataclass(frozen=True)
class ClassSpec:
    """Which classes to score. ``entities``: ``(class, phrase tokens)``; ``keywords``: phrase tokens;
    ``vocabulary``: normalised words of a user vocabulary (``None``: no OOV class). Phrases are
    normalised with ``normalizer`` (a label)."""

    rules: tuple[str, ...] = RULE_CLASSES
    entities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    keywords: tuple[tuple[str, ...], ...] = ()
    vocabulary: frozenset[str] | None = None
    normalizer: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Every class this spec can produce, in report order."""
        names = list(self.rules) + sorted({c for c, _ in self.entities})
        if self.keywords:
            names.append(KEYWORDS)
        if self.vocabulary is not None:
            names.append(OOV)
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "entity_classes": sorted({c for c, _ in self.entities}),
                "entities": len(self.entities), "keywords": len(self.keywords),
                "vocabulary": None if self.vocabulary is None else len(self.vocabulary),
                "normalizer": self.normalizer, "sources": dict(self.sources)}


def parse_rules(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"all"``/``None`` -> every rule class; ``"none"`` -> none; else a comma list of rule names."""
    if spec is None or spec == "all":
        return RULE_CLASSES
    if spec == "none":
        return ()
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [n for n in names if n not in RULE_CLASSES]
    if bad:
        raise UsageError(f"unknown class rule {bad[0]!r}; choose from: {', '.join(RULE_CLASSES)}, or all / none")
    return tuple(dict.fromkeys(names))


def load_class_spec(
    normalizer: Any, *, rules: str | Sequence[str] | None = None, keywords: str | os.PathLike[str] | None = None,
    entities: str | os.PathLike[str] | None = None, vocab: str | os.PathLike[str] | None = None,
) -> ClassSpec:
    """A :class:`ClassSpec` from rule names and user list files, phrases normalised with ``normalizer``."""
    sources: dict[str, str] = {}
    ents: list[tuple[str, tuple[str, ...]]] = []
    if entities is not None:
        lines, digest = read_list_file(entities, "entities")
        sources["entities"] = f"{os.fspath(entities)} sha256:{digest[:16]}"
        for number, line in lines:
            cls, tab, phrase = line.partition("\t")
            if not tab:
                cls, phrase = ENTITIES, line
            cls = cls.strip().lower()
            if not _CLASS_NAME.match(cls):
                raise UsageError(f"entities line {number}: class {cls!r} must be lower-case letters, digits, _ or - "
                                 "(at most 40), then a TAB and the phrase")
            if cls in (KEYWORDS, OOV):
                raise UsageError(f"entities line {number}: class {cls!r} is reserved; use --keywords or --vocab")
            ents.append((cls, _phrase(normalizer, phrase, "entities", number)))
    kws: list[tuple[str, ...]] = []
    if keywords is not None:
        lines, digest = read_list_file(keywords, "keywords")
        sources["keywords"] = f"{os.fspath(keywords)} sha256:{digest[:16]}"
        kws = list(dict.fromkeys(_phrase(normalizer, line, "keywords", n) for n, line in lines))
    vocabulary = None
    if vocab is not None:
        lines, digest = read_list_file(vocab, "vocabulary")
        sources["vocab"] = f"{os.fspath(vocab)} sha256:{digest[:16]}"
        vocabulary = frozenset(w for _, line in lines for w in normalizer(line).split())
    return ClassSpec(parse_rules(rules), tuple(ents), tuple(kws), vocabulary, getattr(normalizer, "label", ""),
                     sources)


# -- tagging ---------------------------------------------------------------------------------------
def _is_number(t: str) -> bool:
    return bool(_NUMBER_TOKEN.match(t)) or t in _UNITS or (
        "-" in t and all(p in _UNITS for p in t.split("-")))


def _is_ordinal(t: str) -> bool:
    return bool(_ORDINAL_TOKEN.match(t)) or t in _ORDINAL_WORDS


def _raw_owner(raw: str, norm: Any, tokens: list[str]) -> tuple[list[str], list[int | None]]:
    """The raw reference words and, for every normalised token, the raw word it came from (``None``
    when normalisation merged words beyond recognition): each raw word is normalised alone and the
    concatenation is aligned to the normalised reference."""
    raw_words = raw.split()
    flat: list[str] = []
    owner: list[int] = []
    for i, w in enumerate(raw_words):
        for t in norm(w).split():
            flat.append(t)
            owner.append(i)
    if flat == tokens:
        return raw_words, list(owner)
    out: list[int | None] = [None] * len(tokens)
    for op, i, j in align(flat, tokens).ops:
        if op in (EQUAL, SUBSTITUTE):
            out[j] = owner[i]
    return raw_words, out


def tag_reference(raw: str, norm: Any, spec: ClassSpec) -> tuple[list[str], list[frozenset[str]], bool]:
    """The normalised reference tokens, the classes of each, and whether the reference carries
    letter case (``False``: no lower-case letters, so ``proper_nouns`` cannot be judged)."""
    tokens = norm(raw).split()
    tags: list[set[str]] = [set() for _ in tokens]
    rules = set(spec.rules)
    n = len(tokens)
    for i, t in enumerate(tokens):
        prev_t = tokens[i - 1] if i else ""
        next_t = tokens[i + 1] if i + 1 < n else ""
        near_number = _is_number(prev_t) or _is_number(next_t)
        if NUMBERS in rules and _is_number(t):
            tags[i].add(NUMBERS)
        if ORDINALS in rules and _is_ordinal(t):
            tags[i].add(ORDINALS)
        if DATES in rules and (_DATE_TOKEN.match(t) or t in _WEEKDAYS or (
                t in _MONTHS and (t not in _AMBIGUOUS_MONTHS or near_number or _is_ordinal(next_t)))):
            tags[i].add(DATES)
            for k in (i - 1, i + 1):  # the day or year next to a month name
                if 0 <= k < n and (_is_number(tokens[k]) or _is_ordinal(tokens[k])) and t in _MONTHS:
                    tags[k].add(DATES)
        if TIMES in rules and (_TIME_TOKEN.match(t) or t in ("o'clock", "oclock", "noon", "midnight") or (
                t in ("am", "pm", "a.m.", "p.m.") and _is_number(prev_t))):
            tags[i].add(TIMES)
            if t in ("o'clock", "oclock", "am", "pm", "a.m.", "p.m.") and i and _is_number(prev_t):
                tags[i - 1].add(TIMES)
        if CURRENCY in rules and (t[:1] in "$£€¥" and len(t) > 1 or t in _CURRENCY_WORDS or (
                t in _CURRENCY_AFTER_NUMBER and _is_number(prev_t))):
            tags[i].add(CURRENCY)
            k = i - 1
            while k >= 0 and _is_number(tokens[k]) and t[:1] not in "$£€¥":  # "20 dollars", "twenty five cents"
                tags[k].add(CURRENCY)
                k -= 1
        if FUNCTION in rules and t in _FUNCTION_WORDS:
            tags[i].add(FUNCTION)
        if PUNCTUATION in rules and all(unicodedata.category(ch)[0] in "PS" for ch in t):
            tags[i].add(PUNCTUATION)
    if SPELLED in rules:
        i = 0
        while i < n:
            j = i
            while j < n and len(tokens[j]) == 1 and tokens[j].isalpha():
                j += 1
            if j - i >= 2:
                for k in range(i, j):
                    tags[k].add(SPELLED)
            i = max(j, i + 1)
    has_case = any(c.islower() for c in raw)
    if (PROPER in rules and has_case) or EMAIL_URL in rules:
        raw_words, owner = _raw_owner(raw, norm, tokens)
        for j, o in enumerate(owner):
            if o is None:
                continue
            w = raw_words[o]
            if EMAIL_URL in rules and _URL.search(w):
                tags[j].add(EMAIL_URL)
            if PROPER in rules and has_case:
                letters = w.lstrip("\"'(\u201c\u2018[")
                before = raw_words[o - 1] if o else ""
                starts_sentence = o == 0 or (bool(_SENTENCE_END.search(before)) and not _ABBREVIATION.match(before))
                if (letters[:1].isupper() and not starts_sentence and letters not in ("I",)
                        and not letters.startswith(("I'", "I\u2019"))):
                    tags[j].add(PROPER)
    for cls, phrase in spec.entities:
        for start in _occurrences(tokens, phrase):
            for k in range(start, start + len(phrase)):
                tags[k].add(cls)
    for phrase in spec.keywords:
        for start in _occurrences(tokens, phrase):
            for k in range(start, start + len(phrase)):
                tags[k].add(KEYWORDS)
    if spec.vocabulary is not None:
        for i, t in enumerate(tokens):
            if t not in spec.vocabulary:
                tags[i].add(OOV)
    return tokens, [frozenset(t) for t in tags], has_case


def _occurrences(tokens: Sequence[str], phrase: tuple[str, ...]) -> list[int]:
    """Start positions of ``phrase`` in ``tokens`` (overlapping occurrences allowed)."""
    m = len(phrase)
    first = phrase[0]
    return [k for k in range(len(tokens) - m + 1) if tokens[k] == first and tuple(tokens[k:k + m]) == phrase]


# -- attribution -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeywordCounts:
    """Keyword occurrences of one utterance: in the reference, in the hypothesis, and recognised
    (every word of a reference occurrence aligned as a hit)."""

    ref: int = 0
    hyp: int = 0
    found: int = 0

    def __add__(self, other: KeywordCounts) -> KeywordCounts:
        return KeywordCounts(self.ref + other.ref, self.hyp + other.hyp, self.found + other.found)

    @property
    def precision(self) -> float:
        return self.found / self.hyp if self.hyp else float("nan")

    @property
    def recall(self) -> float:
        return self.found / self.ref if self.ref else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r):
            return float("nan")
        if p + r == 0:
            return 0.0
        return 2 * p * r / (p + r)


@dataclass(frozen=True)
class UtteranceClasses:
    """Class counts of one utterance: ``counts[class]`` (hits, S, D, inside insertions), keyword
    occurrences overall and per keyword phrase, and whether the reference had letter case."""

    utt_id: str
    condition: str
    speaker: str | None
    tags: dict[str, str]
    counts: dict[str, ErrorCounts]
    keywords: KeywordCounts
    per_keyword: dict[str, KeywordCounts]
    has_case: bool


def attribute(tokens: Sequence[str], tags: Sequence[frozenset[str]], hyp: Sequence[str],
              spec: ClassSpec) -> tuple[dict[str, ErrorCounts], KeywordCounts, dict[str, KeywordCounts]]:
    """Class counts and keyword counts of one aligned utterance (rules in the module docstring)."""
    ops = align(list(tokens), list(hyp)).ops
    acc: dict[str, list[int]] = {c: [0, 0, 0, 0] for c in spec.names}
    ref_at: list[int | None] = []  # per op: the reference index of the op or None
    for op, i, _ in ops:
        ref_at.append(i)
    prev_ref: int | None = None
    next_ref = [None] * len(ops)
    nxt: int | None = None
    for k in range(len(ops) - 1, -1, -1):
        next_ref[k] = nxt
        if ref_at[k] is not None:
            nxt = ref_at[k]
    status = [EQUAL] * len(tokens)
    for k, (op, i, _) in enumerate(ops):
        if op == INSERT:
            if prev_ref is not None and next_ref[k] is not None:
                for c in tags[prev_ref] & tags[next_ref[k]]:
                    acc.setdefault(c, [0, 0, 0, 0])[3] += 1
            continue
        status[i] = op
        slot = 0 if op == EQUAL else 1 if op == SUBSTITUTE else 2
        for c in tags[i]:
            acc.setdefault(c, [0, 0, 0, 0])[slot] += 1
        prev_ref = i
    counts = {c: ErrorCounts(*v) for c, v in acc.items()}
    total = KeywordCounts()
    per: dict[str, KeywordCounts] = {}
    for phrase in spec.keywords:
        starts = _occurrences(tokens, phrase)
        found = sum(1 for s in starts if all(status[k] == EQUAL for k in range(s, s + len(phrase))))
        kc = KeywordCounts(len(starts), len(_occurrences(hyp, phrase)), found)
        if kc.ref or kc.hyp:
            per[" ".join(phrase)] = kc
            total = total + kc
    return counts, total, per

