"""Named, versioned text normalisers applied to references and hypotheses before alignment.

``get_normalizer("whisper-en")`` (default), ``"basic"`` (lower case, punctuation to spaces),
``"orthographic"`` (case and punctuation kept, punctuation marks as their own tokens: what captioning
is judged on), ``"cased"`` (case kept, punctuation dropped), ``"multilingual-<lang>"`` (any language:
:mod:`voxproof.metrics.normalize.multilingual`) and ``"none"`` (whitespace only). A name may carry a version (``whisper-en@1``); asking for a version this
voxproof does not have is refused, so a run is never silently re-scored with other rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from voxproof.errors import UsageError
from voxproof.metrics.normalize.base import NamedStep, Normalizer

DEFAULT_NORMALIZER = "whisper-en"


def _basic() -> Normalizer:
    def punctuation_to_space(s: str) -> str:
        return "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in unicodedata.normalize("NFKC", s))

    return Normalizer(
        name="basic",
        version="1",
        steps=(
            NamedStep("lowercase", str.lower),
            NamedStep("keep_apostrophes_in_words", lambda s: re.sub(r"(\w)'(\w)", "\\1\u02bc\\2", s)),
            NamedStep("punctuation_to_space", punctuation_to_space),
            NamedStep("restore_apostrophes", lambda s: s.replace("\u02bc", "'")),
        ),
        description="lower case, punctuation and symbols to spaces (apostrophes inside words kept)",
    )


def _none() -> Normalizer:
    return Normalizer(name="none", version="1", steps=(), description="identity; whitespace splits tokens")


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                        "\u00ab": '"', "\u00bb": '"', "\u2013": " - ", "\u2014": " - ", "\u2212": "-",
                        "\u2026": "...", "\u00a0": " "})
# A word keeps inner apostrophes and hyphens (don't, well-known) and inner digit separators (3.5, 1,000);
# every other non-space character that is not a word character is a token of its own (``...`` is one).
_ORTHO_TOKEN = re.compile(r"\w+(?:['-]\w+|(?<=\d)[.,]\d+)*|\.\.\.|[^\w\s]")


def _orthographic() -> Normalizer:
    return Normalizer(
        name="orthographic",
        version="1",
        steps=(
            NamedStep("unicode_nfc", lambda s: unicodedata.normalize("NFC", s)),
            NamedStep("typographic_quotes_and_dashes", lambda s: s.translate(_QUOTES)),
            NamedStep("punctuation_as_tokens", lambda s: " ".join(_ORTHO_TOKEN.findall(s))),
        ),
        description="case kept; each punctuation mark its own token (a missing comma is a deletion); "
                    "typographic quotes and dashes unified; apostrophes and hyphens inside words kept",
    )


def _cased() -> Normalizer:
    return Normalizer(
        name="cased",
        version="1",
        steps=(
            NamedStep("unicode_nfc", lambda s: unicodedata.normalize("NFC", s)),
            NamedStep("typographic_quotes_and_dashes", lambda s: s.translate(_QUOTES)),
            NamedStep("words_only", lambda s: " ".join(t for t in _ORTHO_TOKEN.findall(s) if t[0].isalnum() or t[0] == "_")),
        ),
        description="case kept, punctuation dropped (apostrophes and hyphens inside words kept)",
    )


def _whisper_en() -> Normalizer:
    from voxproof.metrics.normalize.english import whisper_english

    return whisper_english()


_FACTORIES: dict[str, Callable[[], Normalizer]] = {
    "whisper-en": _whisper_en,
    "basic": _basic,
    "orthographic": _orthographic,
    "cased": _cased,
    "none": _none,
}


@cache
def get_normalizer(name: str = DEFAULT_NORMALIZER) -> Normalizer:
    """The normaliser called ``name`` (optionally ``name@version``)."""
    base, _, version = name.partition("@")
    factory = _FACTORIES.get(base)
    if factory is None and base.startswith("multilingual-") and re.fullmatch(r"[a-z]{2,3}", base[13:]):
        from voxproof.metrics.normalize.multilingual import multilingual

        factory = lambda: multilingual(base[13:])  # noqa: E731
    if factory is None:
        raise UsageError(f"unknown normalizer {name!r}; choose one of: {', '.join(_FACTORIES)}, "
                         "multilingual-LANG (an ISO 639-1 code such as multilingual-de)")
    norm = factory()
    if version and version != norm.version:
        raise UsageError(
            f"normalizer {base!r} version {version!r} is not available (this voxproof has version "
            f"{norm.version!r}); re-score with --normalizer {base} to use it"
        )
    return norm


def list_normalizers() -> list[Normalizer]:
    """Every normaliser this voxproof has, default first."""
    return [get_normalizer(n) for n in _FACTORIES]


__all__ = ["DEFAULT_NORMALIZER", "NamedStep", "Normalizer", "get_normalizer", "list_normalizers"]
