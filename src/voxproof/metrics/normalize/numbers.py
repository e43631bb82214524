"""Spelled-out English numbers to digits, one step of the ``whisper-en`` normaliser.

Written for voxproof to reproduce, token for token, what Whisper's ``EnglishNumberNormalizer`` does
(so WER matches published Whisper figures), including its quirks: "nine o'clock" -> "90 clock",
"three thirty" -> "330", successive digits read as one number ("five five five" -> "555"),
"one" kept as a word, currencies written before the number ("ten dollars" -> "$10").

The reader walks the words once, holding the number being built (``value``: an ``int`` while it is a
cardinal, a ``str`` once it is a digit string such as "101" or "3.") and a pending sign or currency
``prefix``. Each word class has its own small handler.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction

_ONES = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]
ONES = {name: i for i, name in enumerate(_ONES, start=1)}
ZEROS = {"o", "oh", "zero"}
ONES_PLURAL = {("sixes" if n == "six" else n + "s"): (v, "s") for n, v in ONES.items()}
ONES_ORDINAL = {
    "zeroth": (0, "th"), "first": (1, "st"), "second": (2, "nd"), "third": (3, "rd"),
    "fifth": (5, "th"), "twelfth": (12, "th"),
    **{n + ("h" if n.endswith("t") else "th"): (v, "th") for n, v in ONES.items() if v > 3 and v not in (5, 12)},
}
ONES_SUFFIXED = {**ONES_PLURAL, **ONES_ORDINAL}
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
TENS = {n: 10 * i for i, n in enumerate(_TENS, 2)}
TENS_SUFFIXED = {
    **{n.replace("y", "ies"): (v, "s") for n, v in TENS.items()},
    **{n.replace("y", "ieth"): (v, "th") for n, v in TENS.items()},
}
_MULT_NAMES = [
    "hundred", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion", "sextillion",
    "septillion", "octillion", "nonillion", "decillion",
]
MULTIPLIERS = {"hundred": 100, **{n: 1000 ** i for i, n in enumerate(_MULT_NAMES[1:], start=1)}}
MULTIPLIERS_SUFFIXED = {
    **{n + "s": (v, "s") for n, v in MULTIPLIERS.items()},
    **{n + "th": (v, "th") for n, v in MULTIPLIERS.items()},
}
DECIMALS = {*ONES, *TENS, *ZEROS}
PRECEDING_PREFIXERS = {"minus": "-", "negative": "-", "plus": "+", "positive": "+"}
FOLLOWING_PREFIXERS = {
    "pound": "£", "pounds": "£", "euro": "€", "euros": "€", "dollar": "$", "dollars": "$",
    "cent": "¢", "cents": "¢",
}
PREFIX_SYMBOLS = set(PRECEDING_PREFIXERS.values()) | set(FOLLOWING_PREFIXERS.values())
SUFFIXERS: dict[str, str | dict[str, str]] = {"per": {"cent": "%"}, "percent": "%"}
SPECIALS = {"and", "double", "triple", "point"}
NUMBER_WORDS = {
    *ZEROS, *ONES, *ONES_SUFFIXED, *TENS, *TENS_SUFFIXED, *MULTIPLIERS, *MULTIPLIERS_SUFFIXED,
    *PRECEDING_PREFIXERS, *FOLLOWING_PREFIXERS, *SUFFIXERS, *SPECIALS,
}

_NUMERIC = re.compile(r"^\d+(\.\d+)?$")
_DIGIT = re.compile(r"\d")
_HALF = re.compile(r"\band\s+a\s+half\b")


def _fraction(s: str | int) -> Fraction | None:
    try:
        return Fraction(s)
    except ValueError:
        return None


class _Reader:
    """State of one pass over the words: the number being built and its pending prefix."""

    def __init__(self) -> None:
        self.value: int | str | None = None
        self.prefix: str | None = None

    def emit(self, token: int | str) -> str:
        """The token with any pending prefix, resetting the state."""
        text = str(token)
        if self.prefix is not None:
            text = self.prefix + text
        self.value = None
        self.prefix = None
        return text

    def flush(self) -> Iterator[str]:
        if self.value is not None:
            yield self.emit(self.value)

    # -- joining a small number onto the value --------------------------------------------
    def _joined(self, prev: str | None, n: int, *, ones_word: bool) -> int | str:
        """``value`` extended by ``n`` (1-19 when ``ones_word``, else a multiple of ten)."""
        value = self.value
        if ones_word:
            if isinstance(value, str) or prev in ONES:
                if prev in TENS and n < 10:  # "twenty one" after a digit string: replace the 0
                    return str(value)[:-1] + str(n)
                return str(value) + str(n)
            if n < 10:
                return value + n if value % 10 == 0 else str(value) + str(n)
            return value + n if value % 100 == 0 else str(value) + str(n)
        if isinstance(value, str):
            return value + str(n)
        return value + n if value % 100 == 0 else str(value) + str(n)

    # -- handlers, one per word class ---------------------------------------------------------
    def digits(self, current: str) -> Iterator[str]:
        has_prefix = current[0] in PREFIX_SYMBOLS
        bare = current[1:] if has_prefix else current
        f = _fraction(bare)
        if self.value is not None:
            if isinstance(self.value, str) and self.value.endswith("."):
                self.value = self.value + current  # decimals / ip address components
                return
            yield self.emit(self.value)
        self.prefix = current[0] if has_prefix else self.prefix
        self.value = f.numerator if f is not None and f.denominator == 1 else bare

    def ones(self, prev: str | None, current: str) -> Iterator[str]:
        n = ONES[current]
        self.value = n if self.value is None else self._joined(prev, n, ones_word=True)
        return iter(())

    def ones_suffixed(self, prev: str | None, current: str) -> Iterator[str]:
        n, suffix = ONES_SUFFIXED[current]
        joined = n if self.value is None else self._joined(prev, n, ones_word=True)
        yield self.emit(str(joined) + suffix)

    def tens(self, current: str) -> Iterator[str]:
        n = TENS[current]
        self.value = n if self.value is None else self._joined(None, n, ones_word=False)
        return iter(())

    def tens_suffixed(self, current: str) -> Iterator[str]:
        n, suffix = TENS_SUFFIXED[current]
        joined = n if self.value is None else self._joined(None, n, ones_word=False)
        yield self.emit(str(joined) + suffix)

    def multiplier(self, current: str) -> Iterator[str]:
        m = MULTIPLIERS[current]
        if self.value is None:
            self.value = m
        elif isinstance(self.value, str) or self.value == 0:
            f = _fraction(self.value)
            if f is not None and (f * m).denominator == 1:
                self.value = (f * m).numerator
            else:
                yield self.emit(self.value)
                self.value = m
        else:
            self.value = self.value // 1000 * 1000 + self.value % 1000 * m

    def multiplier_suffixed(self, current: str) -> Iterator[str]:
        m, suffix = MULTIPLIERS_SUFFIXED[current]
        if self.value is None:
            yield self.emit(str(m) + suffix)
        elif isinstance(self.value, str):
            f = _fraction(self.value)
            if f is not None and (f * m).denominator == 1:
                yield self.emit(str((f * m).numerator) + suffix)
            else:
                yield self.emit(self.value)
                yield self.emit(str(m) + suffix)
        else:
            self.value = self.value // 1000 * 1000 + self.value % 1000 * m
            yield self.emit(str(self.value) + suffix)
        self.value = None

    def preceding_prefixer(self, current: str, next_: str | None, next_numeric: bool) -> Iterator[str]:
        yield from self.flush()
        if next_ in NUMBER_WORDS or next_numeric:
            self.prefix = PRECEDING_PREFIXERS[current]
        else:
            yield self.emit(current)

    def following_prefixer(self, current: str) -> Iterator[str]:
        if self.value is not None:
            self.prefix = FOLLOWING_PREFIXERS[current]
            yield self.emit(self.value)
        else:
            yield self.emit(current)


class NumberReader:
    """Callable text -> text: spelled numbers to digits, as Whisper's English normaliser does."""

    def __call__(self, text: str) -> str:
        if self._plain(text):
            return " ".join(text.split())
        text = self.preprocess(text)
        text = " ".join(self.read_words(text.split()))
        return self.postprocess(text)

    @staticmethod
    def _plain(text: str) -> bool:
        """True when the text holds nothing the reader changes: no digit, no "and a half", and no
        number word except "and" (which the reader passes through when no number follows)."""
        if _DIGIT.search(text) or _HALF.search(text):
            return False
        return all(w == "and" or w not in NUMBER_WORDS for w in text.split())

    @staticmethod
    def preprocess(s: str) -> str:
        """"<number> and a half" -> "<number> point five"; split digits from letters but keep
        ordinal and plural suffixes ("1960s", "21st")."""
        parts = re.split(r"\band\s+a\s+half\b", s)
        out: list[str] = []
        for i, part in enumerate(parts):
            if not part.strip():
                continue
            out.append(part)
            if i < len(parts) - 1:
                last = part.rsplit(maxsplit=2)[-1]
                out.append("point five" if last in DECIMALS or last in MULTIPLIERS else "and a half")
        s = " ".join(out)
        s = re.sub(r"([a-z])([0-9])", r"\1 \2", s)
        s = re.sub(r"([0-9])([a-z])", r"\1 \2", s)
        return re.sub(r"([0-9])\s+(st|nd|rd|th|s)\b", r"\1\2", s)

    @staticmethod
    def postprocess(s: str) -> str:
        """Currency cents ("$2 and ¢7" -> "$2.07", "$0.5" -> "¢5") and "1" written back as "one"."""

        def combine_cents(m: re.Match[str]) -> str:
            return f"{m.group(1)}{m.group(2)}.{int(m.group(3)):02d}"

        def extract_cents(m: re.Match[str]) -> str:
            return f"¢{int(m.group(1))}"

        s = re.sub(r"([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})\b", combine_cents, s)
        s = re.sub(r"[€£$]0.([0-9]{1,2})\b", extract_cents, s)
        return re.sub(r"\b1(s?)\b", r"one\1", s)

    def read_words(self, words: list[str]) -> Iterator[str]:
        r = _Reader()
        padded: list[str | None] = [None, *words, None]
        skip = False
        for k in range(1, len(padded) - 1):
            prev, current, next_ = padded[k - 1], padded[k], padded[k + 1]
            assert current is not None
            if skip:
                skip = False
                continue
            next_numeric = next_ is not None and bool(_NUMERIC.match(next_))
            bare = current[1:] if current[0] in PREFIX_SYMBOLS else current
            if _NUMERIC.match(bare):
                yield from r.digits(current)
            elif current not in NUMBER_WORDS:
                yield from r.flush()
                yield r.emit(current)
            elif current in ZEROS:
                r.value = str(r.value or "") + "0"
            elif current in ONES:
                yield from r.ones(prev, current)
            elif current in ONES_SUFFIXED:
                yield from r.ones_suffixed(prev, current)
            elif current in TENS:
                yield from r.tens(current)
            elif current in TENS_SUFFIXED:
                yield from r.tens_suffixed(current)
            elif current in MULTIPLIERS:
                yield from r.multiplier(current)
            elif current in MULTIPLIERS_SUFFIXED:
                yield from r.multiplier_suffixed(current)
            elif current in PRECEDING_PREFIXERS:
                yield from r.preceding_prefixer(current, next_, next_numeric)
            elif current in FOLLOWING_PREFIXERS:
                yield from r.following_prefixer(current)
            elif current in SUFFIXERS:
                skip = yield from self._suffixer(r, current, next_)
            else:  # SPECIALS
                skip = yield from self._special(r, prev, current, next_, next_numeric)
        yield from r.flush()

    @staticmethod
    def _suffixer(r: _Reader, current: str, next_: str | None) -> Iterator[str]:
        """"percent" / "per cent" after a number -> "%". Returns True when ``next_`` was consumed."""
        if r.value is None:
            yield r.emit(current)
            return False
        suffix = SUFFIXERS[current]
        if isinstance(suffix, dict):
            if next_ in suffix:
                yield r.emit(str(r.value) + suffix[next_])
                return True
            yield r.emit(r.value)
            yield r.emit(current)
            return False
        yield r.emit(str(r.value) + suffix)
        return False

    @staticmethod
    def _special(
        r: _Reader, prev: str | None, current: str, next_: str | None, next_numeric: bool
    ) -> Iterator[str]:
        """"and" inside numbers, "double"/"triple" digits, decimal "point". True when ``next_`` is consumed."""
        if next_ not in NUMBER_WORDS and not next_numeric:
            yield from r.flush()
            yield r.emit(current)
            return False
        if current == "and":
            if prev not in MULTIPLIERS:  # "hundred and five" keeps going; any other "and" ends
                yield from r.flush()
                yield r.emit(current)
            return False
        if current in ("double", "triple"):
            if next_ in ONES or next_ in ZEROS:
                repeats = 2 if current == "double" else 3
                r.value = str(r.value or "") + str(ONES.get(next_, 0)) * repeats
                return True
            yield from r.flush()
            yield r.emit(current)
            return False
        # "point"
        if next_ in DECIMALS or next_numeric:
            r.value = str(r.value or "") + "."
        return False
