"""Contextual biasing evaluation: what a per-utterance biasing list buys on its words and costs on the
others (biased and unbiased WER, in the sense of Le et al. 2021, "Contextualized streaming end-to-end
speech recognition with trie-based deep biasing").

For an utterance with biasing list ``L`` (phrases; their words form the set ``W``):

- **biased WER (B-WER)**: errors on reference words in ``W`` (substitutions and deletions) plus
  inserted hypothesis words in ``W``, over the reference words in ``W``;
- **unbiased WER (U-WER)**: the same for every other word, over the reference words not in ``W``.

So B-WER + U-WER edits add up to the utterance's edits. A list holds the utterance's own rare words
and **distractors** (rare words of other utterances), so a system that merely sprays list words is
charged for them as insertions. Both are computed for a run without biasing and one with it (for
Whisper the list is the decoder's ``initial_prompt``), with intervals and paired tests from the same
machinery as WER (:func:`voxproof.metrics.paired.compare_counts`).

List file: ``UTT_ID<TAB>phrase|phrase|...``, one utterance a line (``#`` comments). ``build_lists``
makes lists from the references: an utterance's words of ``min_letters`` or more letters that are not
function words and occur in no other reference of the set, plus ``distractors`` such words drawn
(seeded) from the other utterances.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.errors import UsageError
from voxproof.metrics.align import EQUAL, INSERT, align
from voxproof.metrics.classes import _FUNCTION_WORDS, read_list_file
from voxproof.metrics.counts import ErrorCounts, total
from voxproof.metrics.intervals import Interval, _num, bootstrap_rate
from voxproof.metrics.paired import compare_counts

MAX_LIST_PHRASES = 500


def parse_lists(path: str | os.PathLike[str], ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Per-utterance biasing lists from a file; every id must be one of ``ids``."""
    lines, _ = read_list_file(path, "biasing list")
    known = set(ids)
    out: dict[str, tuple[str, ...]] = {}
    for number, line in lines:
        uid, tab, rest = line.partition("\t")
        if not tab:
            raise UsageError(f"biasing list line {number}: expected UTT_ID<TAB>phrase|phrase|...")
        uid = uid.strip()
        if uid not in known:
            raise UsageError(f"biasing list line {number}: utterance {uid!r} is not in the data set")
        if uid in out:
            raise UsageError(f"biasing list line {number}: utterance {uid!r} has a list already (line repeated)")
        phrases = tuple(p.strip() for p in rest.split("|") if p.strip())
        if len(phrases) > MAX_LIST_PHRASES:
            raise UsageError(f"biasing list line {number}: {len(phrases)} phrases, at most {MAX_LIST_PHRASES}")
        out[uid] = phrases
    return out


def build_lists(refs: dict[str, str], norm: Any, *, distractors: int = 10, seed: int = 0,
                min_letters: int = 4) -> dict[str, tuple[str, ...]]:
    """Lists built from the references (module docstring): own rare words plus seeded distractors."""
    words = {uid: [w for w in norm(text).split() if len(w) >= min_letters and w.isalpha()
                   and w not in _FUNCTION_WORDS] for uid, text in refs.items()}
    df = Counter(w for ws in words.values() for w in set(ws))
    rare = {uid: sorted({w for w in ws if df[w] == 1}) for uid, ws in words.items()}
    rng = random.Random(seed)
    out = {}
    for uid in refs:
        others = sorted({w for o, ws in rare.items() if o != uid for w in ws})
        chosen = rng.sample(others, min(distractors, len(others)))
        out[uid] = tuple(sorted(set(rare[uid]) | set(chosen)))
    return out


def format_lists(lists: dict[str, tuple[str, ...]]) -> str:
    return "".join(f"{uid}\t{'|'.join(p)}\n" for uid, p in lists.items())


def bias_counts(ref: Sequence[str], hyp: Sequence[str], words: set[str]) -> tuple[ErrorCounts, ErrorCounts]:
    """``(biased, unbiased)`` counts of one aligned utterance."""
    b = [0, 0, 0, 0]
    u = [0, 0, 0, 0]
    for op, i, j in align(list(ref), list(hyp)).ops:
        if op == INSERT:
            (b if hyp[j] in words else u)[3] += 1
            continue
        slot = 0 if op == EQUAL else 1 if j is not None else 2
        (b if ref[i] in words else u)[slot] += 1
    return ErrorCounts(*b), ErrorCounts(*u)


@dataclass(frozen=True)
class BiasScores:
    """B-WER and U-WER of one run (or of one setting) with intervals; ``list_recall`` is the share of
    reference list words recognised, ``list_insertions`` the list words inserted (distractors said)."""

    label: str
    biased: ErrorCounts
    unbiased: ErrorCounts
    b_wer: Interval
    u_wer: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "biased_counts": self.biased.to_dict(),
                "unbiased_counts": self.unbiased.to_dict(), "b_wer": self.b_wer.to_dict(),
                "u_wer": self.u_wer.to_dict(),
                "list_recall": _num(self.biased.hits / self.biased.ref_len if self.biased.ref_len else float("nan")),
                "list_insertions": self.biased.insertions}


def per_utterance(refs: Sequence[str], hyps: Sequence[str], lists: Sequence[Sequence[str]],
                  norm: Any) -> list[tuple[ErrorCounts, ErrorCounts]]:
    out = []
    for ref, hyp, phrases in zip(refs, hyps, lists):
        words = {w for p in phrases for w in norm(p).split()}
        out.append(bias_counts(norm(ref).split(), norm(hyp).split(), words))
    return out


def score_setting(label: str, counts: Sequence[tuple[ErrorCounts, ErrorCounts]], groups: Sequence[Any] | None,
                  **boot: Any) -> BiasScores:
    b = [c[0] for c in counts]
    u = [c[1] for c in counts]
    return BiasScores(label, total(b), total(u),
                      bootstrap_rate([c.errors for c in b], [c.ref_len for c in b], groups=groups, **boot),
                      bootstrap_rate([c.errors for c in u], [c.ref_len for c in u], groups=groups, **boot))


def compare_settings(base: Sequence[tuple[ErrorCounts, ErrorCounts]], biased: Sequence[tuple[ErrorCounts, ErrorCounts]],
                     groups: Sequence[Any] | None, **boot: Any) -> dict[str, Any]:
    """Paired change (with biasing minus without) of B-WER and U-WER."""
    out = {}
    for k, name in ((0, "b_wer"), (1, "u_wer")):
        comp = compare_counts([c[k].ref_len for c in base], [c[k].errors for c in base],
                              [c[k].errors for c in biased], groups=groups, condition=name, **boot)
        out[name] = comp.to_dict()
    return out
