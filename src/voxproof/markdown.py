"""Safe Markdown from untrusted text: names, notes, tags and reasons that end up in the model card and
the audit datasheet.

Data must never make structure: a newline in a speaker name must not start a ``## Gate history``
section, a ``|`` must not add a table cell, and ``![x](http://evil/a.png)`` must not make a code-hosting
site fetch a remote image or show a link. :func:`md_text` gives inline text (control and bidi characters
removed, every run of whitespace including newlines collapsed to one space, Markdown and HTML
punctuation backslash-escaped, URLs defanged to ``http[:]//``); :func:`md_code` gives an inline code
span that no content can close early.
"""

from __future__ import annotations

import re
from typing import Any

# C0/C1 controls, zero-width and bidi-override characters, line/paragraph separators, BOM.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
# Everything Markdown (CommonMark + GFM tables, strikethrough, math on code-hosting sites) or inline
# HTML gives a meaning to, and @ (e-mail autolinks); CommonMark lets any ASCII punctuation be
# backslash-escaped.
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#~$&!@])")
_BULLET = re.compile(r"^([-+=])")  # a list item or a setext underline when at the start of a line
_NUMBERED = re.compile(r"^(\d+)([.)])")  # an ordered list item when at the start of a line
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}):(?=//)")
_WWW = re.compile(r"(?i)\bwww\.")


def plain(value: Any, *, limit: int = 500) -> str:
    """``value`` as one line of plain text: invisible characters removed, whitespace collapsed,
    cut to ``limit`` characters (with an ellipsis)."""
    text = _SPACE.sub(" ", _INVISIBLE.sub("", "" if value is None else str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def md_text(value: Any, *, limit: int = 500) -> str:
    """Untrusted ``value`` as inline Markdown that renders as exactly that text (see the module doc)."""
    text = _SPECIAL.sub(r"\\\1", plain(value, limit=limit))
    text = _SCHEME.sub(r"\1\\[:\\]", text)  # http://x -> http[:]//x: no autolink
    text = _WWW.sub(r"www\\[.\\]", text)
    return _NUMBERED.sub(r"\1\\\2", _BULLET.sub(r"\\\1", text))


def md_code(value: Any, *, limit: int = 200, in_table: bool = False) -> str:
    """Untrusted ``value`` as an inline code span: the fence is longer than any backtick run inside,
    so the content cannot end it; ``|`` is escaped when the span sits in a table cell."""
    text = plain(value, limit=limit)
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"
