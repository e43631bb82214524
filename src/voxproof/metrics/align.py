"""Alignment of a reference and a hypothesis: the one computation every error rate is read from.

Tokens are words (``word_counts``) or characters (``char_counts``); both go through the same core.
Tokens are mapped to code points and aligned with rapidfuzz's compiled Levenshtein (``editops``),
which is what ``jiwer.process_words`` uses too, so substitution/deletion/insertion counts equal
jiwer's on every input.

Tie-breaking (which of several minimum-edit alignments is returned): rapidfuzz's rule, documented here
because the S/D/I split depends on it while the total does not. With ``D[i][j]`` the edit distance
between the first ``i`` reference and first ``j`` hypothesis tokens:

1. the longest common prefix and suffix are matched first (hits), and the rest is aligned;
2. the rest is traced back from the end ``(n, m)``; at each cell:
   a. **deletion** of ``ref[i-1]`` if ``D[i-1][j] + 1 == D[i][j]``;
   b. otherwise **insertion** of ``hyp[j-1]`` if ``D[i-1][j-1] == D[i][j-1] + 1``;
   c. otherwise the **diagonal**: a hit if the tokens are equal, else a substitution;
3. when one side is exhausted, the remaining tokens are deletions (or insertions).

For example ref ``a b`` / hyp ``b c`` gives two substitutions. Kaldi (``kaldialign``) breaks ties
the other way (one deletion, one insertion): the total number of edits is always the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

from voxproof.metrics.counts import ErrorCounts

EQUAL = "equal"
SUBSTITUTE = "substitute"
DELETE = "delete"
INSERT = "insert"

_RF_TAG = {"replace": SUBSTITUTE, "delete": DELETE, "insert": INSERT}

Op = tuple[str, int | None, int | None]


@dataclass(frozen=True)
class Alignment:
    """Counts and the token-level path: ``ops`` are ``(op, ref_index, hyp_index)`` in order, with
    ``op`` one of ``equal``, ``substitute``, ``delete`` (hyp_index None), ``insert`` (ref_index None)."""

    counts: ErrorCounts
    ops: tuple[Op, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.to_dict(), "ops": [list(op) for op in self.ops]}


def encode(ref_tokens: list[str] | tuple[str, ...], hyp_tokens: list[str] | tuple[str, ...]) -> tuple[Any, Any]:
    """Both token sequences as strings with one code point per distinct token (same token, same
    code point), so the compiled string aligner works on words. Beyond 1,114,111 distinct tokens
    (the code point range) they become lists of small integers instead (rapidfuzz compares those
    exactly too)."""
    table: dict[str, int] = {}
    try:
        ref = "".join([chr(table.setdefault(t, len(table))) for t in ref_tokens])
        hyp = "".join([chr(table.setdefault(t, len(table))) for t in hyp_tokens])
    except ValueError:
        table = {}
        return ([table.setdefault(t, len(table)) for t in ref_tokens],
                [table.setdefault(t, len(table)) for t in hyp_tokens])
    return ref, hyp


def _counts_from_editops(ref_len: int, ops: list[tuple[str, int, int]]) -> ErrorCounts:
    tags = [op[0] for op in ops]
    s = tags.count("replace")
    d = tags.count("delete")
    return ErrorCounts(ref_len - s - d, s, d, len(tags) - s - d)


def count_edits(ref_tokens: list[str] | tuple[str, ...] | str, hyp_tokens: list[str] | tuple[str, ...] | str) -> ErrorCounts:
    """Hits, substitutions, deletions, insertions of the alignment of two token sequences.

    A ``str`` argument is a sequence of characters (character level); lists are word level.
    """
    if isinstance(ref_tokens, str) and isinstance(hyp_tokens, str):
        ref, hyp = ref_tokens, hyp_tokens
    else:
        ref, hyp = encode(ref_tokens, hyp_tokens)
    if ref == hyp:
        return ErrorCounts(len(ref), 0, 0, 0)
    return _counts_from_editops(len(ref), Levenshtein.editops(ref, hyp).as_list())


def align(ref_tokens: list[str] | tuple[str, ...] | str, hyp_tokens: list[str] | tuple[str, ...] | str) -> Alignment:
    """The full alignment (counts and per-token ops) of two token sequences; same counts as
    :func:`count_edits`, tie-breaking as in the module docstring."""
    if isinstance(ref_tokens, str) and isinstance(hyp_tokens, str):
        ref, hyp = ref_tokens, hyp_tokens
    else:
        ref, hyp = encode(ref_tokens, hyp_tokens)
    edit_ops = Levenshtein.editops(ref, hyp).as_list() if ref != hyp else []
    ops: list[Op] = []
    i = j = 0
    for tag, src, dest in edit_ops:
        while i < src:  # tokens between two edits are hits (src - i == dest - j here)
            ops.append((EQUAL, i, j))
            i += 1
            j += 1
        if tag == "replace":
            ops.append((SUBSTITUTE, i, j))
            i += 1
            j += 1
        elif tag == "delete":
            ops.append((DELETE, i, None))
            i += 1
        else:
            ops.append((INSERT, None, j))
            j += 1
    while i < len(ref):
        ops.append((EQUAL, i, j))
        i += 1
        j += 1
    return Alignment(_counts_from_editops(len(ref), edit_ops), tuple(ops))


def words(text: str) -> list[str]:
    """Word tokens of a (normalised) text: split on whitespace."""
    return text.split()


def chars(text: str) -> str:
    """Character tokens of a (normalised) text, jiwer's CER convention: ends stripped, inner spaces
    kept (one space between words once the text is normalised)."""
    return " ".join(text.split())


def word_counts(ref_text: str, hyp_text: str, alternates: Any = None) -> ErrorCounts:
    """Word-level counts of two already-normalised texts; ``alternates`` (an
    :class:`voxproof.metrics.alternates.Alternates`) rewrites hypothesis variants first."""
    ref, hyp = words(ref_text), words(hyp_text)
    if alternates is not None:
        hyp = alternates.apply(ref, hyp)
    return count_edits(ref, hyp)


def char_counts(ref_text: str, hyp_text: str, alternates: Any = None) -> ErrorCounts:
    """Character-level counts (spaces count as characters, as in jiwer's CER)."""
    if alternates is not None:
        ref = words(ref_text)
        hyp_text = " ".join(alternates.apply(ref, words(hyp_text)))
    return count_edits(chars(ref_text), chars(hyp_text))
