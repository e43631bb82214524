"""Audit stage 7, personal data in transcripts: e-mail addresses (written and spoken), phone numbers
(digits or spoken digit words), card numbers (Luhn-checked), street addresses and personal names.

Each hit becomes a finding with the span masked (never the full value: evidence and logs only ever see
``j***@e***.com``, ``*** *** **67``) and a redacted transcript proposal (``[EMAIL]``, ``[PHONE]``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from voxproof.audit.findings import Finding
from voxproof.audit.names import FIRST_NAMES
from voxproof.manifest.utterance import Utterance

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_TLD = r"(?:com|org|net|edu|gov|io|co|uk|de|fr|info|biz|me)"
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
SPOKEN_EMAIL = re.compile(rf"\b[a-z0-9]+(?: dot [a-z0-9]+)* at [a-z0-9]+(?: dot [a-z0-9]+)* dot {_TLD}\b", re.IGNORECASE)
DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_DW = "|".join(_DIGIT_WORDS) + "|double|triple"
SPOKEN_DIGITS = re.compile(rf"\b(?:(?:{_DW})[\s,-]+){{6,}}(?:{_DW})\b", re.IGNORECASE)
_STREET = r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|place|pl|terrace|crescent)"
_NUMBER_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|" \
                r"sixty|seventy|eighty|ninety|hundred)"
ADDRESS = re.compile(
    rf"\b(?:\d{{1,5}}[a-z]?|{_NUMBER_WORDS}(?:[\s-]{_NUMBER_WORDS})*)\s+((?:[a-z][a-z'.-]*\s+){{1,3}}){_STREET}\b",
    re.IGNORECASE,
)
_FUNCTION_WORDS = {"the", "a", "an", "this", "that", "down", "up", "along", "across", "of", "to", "on", "in",
                   "by", "and", "or", "miles", "mile", "yards", "feet", "steps", "long", "old", "new"}
_AMBIGUOUS_NAMES = {"grace", "mark", "rose", "bill", "frank", "april", "amber", "crystal", "robin", "jack",
                    "will", "joy", "hope", "faith", "jean", "sean", "ray", "victoria", "virginia", "sandy"}

SEVERITY = {"email": "high", "phone": "high", "card": "critical", "address": "medium", "name": "info"}
ACTION = {"email": "exclude", "phone": "exclude", "card": "exclude", "address": "flag", "name": "none"}
PLACEHOLDER = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "address": "[ADDRESS]", "name": "[NAME]"}


@dataclass(frozen=True)
class PiiHit:
    kind: str
    start: int
    end: int
    masked: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _spoken_to_digits(span: str) -> str:
    out, repeat = [], 1
    for w in re.split(r"[\s,-]+", span.lower()):
        if w == "double":
            repeat = 2
        elif w == "triple":
            repeat = 3
        elif w in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[w] * repeat)
            repeat = 1
    return "".join(out)


def mask(value: str, kind: str) -> str:
    """A masked form that shows the shape, never the value."""
    if kind == "email":
        if "@" in value:
            user, _, domain = value.partition("@")
            host, _, tld = domain.rpartition(".")
            return f"{user[:1]}***@{host[:1]}***.{tld}"
        words = value.split()
        return f"{words[0][:1]}*** at ***"
    if kind in ("phone", "card"):
        keep = 4 if kind == "card" else 2
        digits = re.sub(r"\D", "", value) or _spoken_to_digits(value)
        return "*" * max(len(digits) - keep, 0) + digits[-keep:] + f" ({len(digits)} digits)"
    if kind == "address":
        return "[number] " + " ".join(w[:1] + "***" for w in value.split()[1:-1]) + " " + value.split()[-1]
    return value[:1] + "***"


def find_pii(text: str) -> list[PiiHit]:
    """Personal data spans in ``text`` (non-overlapping, earliest first; stronger kinds win overlaps)."""
    hits: list[PiiHit] = []

    def add(kind: str, start: int, end: int) -> None:
        if any(h.start < end and start < h.end for h in hits):
            return
        hits.append(PiiHit(kind, start, end, mask(text[start:end], kind)))

    for m in EMAIL.finditer(text):
        add("email", m.start(), m.end())
    for m in SPOKEN_EMAIL.finditer(text):
        add("email", m.start(), m.end())
    for m in DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            add("card", m.start(), m.end())
        elif 7 <= len(digits) <= 15:
            add("phone", m.start(), m.end())
    for m in SPOKEN_DIGITS.finditer(text):
        digits = _spoken_to_digits(m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            add("card", m.start(), m.end())
        elif len(digits) >= 7:
            add("phone", m.start(), m.end())
    for m in ADDRESS.finditer(text):
        name_words = m.group(1).split()
        if name_words and name_words[-1].lower() not in _FUNCTION_WORDS and name_words[0].lower() not in _FUNCTION_WORDS:
            add("address", m.start(), m.end())
    all_caps = text.upper() == text
    for m in re.finditer(r"[A-Za-z][A-Za-z'-]+", text):
        word = m.group()
        low = word.lower()
        if low not in FIRST_NAMES:
            continue
        if all_caps and low in _AMBIGUOUS_NAMES:
            continue
        if not all_caps and not word[0].isupper():
            continue
        add("name", m.start(), m.end())
    return sorted(hits, key=lambda h: h.start)


def redact(text: str, hits: Sequence[PiiHit]) -> str:
    out, pos = [], 0
    for h in sorted(hits, key=lambda h: h.start):
        out.append(text[pos : h.start])
        out.append(PLACEHOLDER[h.kind])
        pos = h.end
    out.append(text[pos:])
    return "".join(out)


def check_pii(utts: Iterable[Utterance]) -> Iterator[Finding]:
    """One finding per item and kind of personal data, with masked spans and a redacted proposal (yielded
    as the items stream past)."""
    for u in utts:
        if not u.text:
            continue
        hits = find_pii(u.text)
        if not hits:
            continue
        redacted = redact(u.text, hits)
        kinds: dict[str, list[PiiHit]] = {}
        for h in hits:
            kinds.setdefault(h.kind, []).append(h)
        for kind, ks in kinds.items():
            label = {"email": "an e-mail address", "phone": "a phone number", "card": "a payment card number",
                     "address": "a street address", "name": "a personal name"}[kind]
            yield Finding(f"pii.{kind}", SEVERITY[kind], (u.id,),
                          f"transcript of {u.id} contains {label}" + (f" (x{len(ks)})" if len(ks) > 1 else ""),
                          {"masked": [h.masked for h in ks], "redacted_text": redacted,
                           "spans": [[h.start, h.end] for h in ks]}, action=ACTION[kind])
