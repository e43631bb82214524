"""Per-class scores of a run or of two runs: class WER with intervals, keyword precision/recall/F1,
OOV recall, and paired comparisons per class.

Stage: after :mod:`voxproof.metrics.classes` (tagging and attribution), feeding ``score_run``
(``ConditionScores.classes``), ``compare_runs`` (``RunComparison.classes``), the report's class
table and the gate's ``wer.class[NAME]`` rules. A class's interval resamples the utterances that
contain the class (or their speakers, as for slices); a class found in no reference is reported with
``n/a`` and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.alternates import Alternates
from voxproof.metrics.classes import (
    KEYWORDS,
    OOV,
    PROPER,
    RULE_CLASSES,
    ClassSpec,
    KeywordCounts,
    UtteranceClasses,
    attribute,
    tag_reference,
)
from voxproof.metrics.counts import ErrorCounts, total
from voxproof.metrics.intervals import METHOD, Interval, _num, bootstrap_rate
from voxproof.metrics.slices import FEW_SPEAKERS
from voxproof.run.records import ResultRow

MAX_KEYWORDS_SHOWN = 50


def class_utterances(rows: Sequence[ResultRow], norm: Any, spec: ClassSpec,
                     alternates: Alternates | None = None) -> list[UtteranceClasses]:
    """Class counts of every row (rows must be scorable: ok with a reference), hypothesis variants
    rewritten by ``alternates`` (already normalised) as for WER."""
    out = []
    for row in rows:
        tokens, tags, has_case = tag_reference(row.reference or "", norm, spec)
        hyp = norm(row.hypothesis or "").split()
        if alternates is not None:
            hyp = alternates.apply(tokens, hyp)
        counts, kw, per = attribute(tokens, tags, hyp, spec)
        out.append(UtteranceClasses(row.utt_id, row.condition, row.speaker, dict(row.tags), counts, kw, per,
                                    has_case))
    return out


def _kind(name: str) -> str:
    if name in RULE_CLASSES:
        return "rule"
    return {KEYWORDS: "keywords", OOV: "oov"}.get(name, "entity")


@dataclass(frozen=True)
class ClassScore:
    """One class under one condition. ``wer`` is (S + D + inside insertions) / class reference tokens;
    ``recall`` the share of class reference tokens recognised (hits); for ``oov`` that is the OOV
    recall. ``keywords`` (class ``keywords`` only): micro precision/recall/F1 of keyword occurrences
    and the per-keyword counts. ``reason`` says why the class has no figure."""

    name: str
    kind: str
    utterances: int
    speakers: int
    counts: ErrorCounts
    wer: Interval
    recall: float
    keywords: dict[str, Any] | None = None
    reason: str | None = None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "utterances": self.utterances, "speakers": self.speakers,
                "ref_words": self.counts.ref_len, "counts": self.counts.to_dict(), "wer": self.wer.to_dict(),
                "recall": _num(self.recall), "keywords": self.keywords, "reason": self.reason,
                "warning": self.warning}


def class_members(utts: Sequence[UtteranceClasses], name: str) -> list[UtteranceClasses]:
    """The utterances that contain class ``name`` (reference tokens or attributed insertions)."""
    return [u for u in utts if name in u.counts and (u.counts[name].ref_len or u.counts[name].insertions)]


def _keyword_summary(utts: Sequence[UtteranceClasses]) -> dict[str, Any]:
    kw = sum((u.keywords for u in utts), KeywordCounts())
    per: dict[str, KeywordCounts] = {}
    for u in utts:
        for phrase, c in u.per_keyword.items():
            per[phrase] = per.get(phrase, KeywordCounts()) + c
    ranked = sorted(per.items(), key=lambda kv: (-(kv[1].ref - kv[1].found), -kv[1].ref, kv[0]))
    return {"ref": kw.ref, "hyp": kw.hyp, "found": kw.found, "precision": _num(kw.precision),
            "recall": _num(kw.recall), "f1": _num(kw.f1),
            "per_keyword": [{"keyword": p, "ref": c.ref, "hyp": c.hyp, "found": c.found,
                             "precision": _num(c.precision), "recall": _num(c.recall), "f1": _num(c.f1)}
                            for p, c in ranked[:MAX_KEYWORDS_SHOWN]],
            "keywords_listed": min(len(ranked), MAX_KEYWORDS_SHOWN), "keywords_seen": len(ranked)}


def score_classes(utts: Sequence[UtteranceClasses], spec: ClassSpec, *, n_resamples: int, seed: int,
                  level: float, method: str = METHOD) -> tuple[ClassScore, ...]:
    """One :class:`ClassScore` per class of ``spec`` over ``utts`` (one condition)."""
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level, "method": method}
    out = []
    for name in spec.names:
        members = class_members(utts, name)
        counts = total(u.counts[name] for u in members)
        speakers = [u.speaker for u in members]
        groups = speakers if members and all(s is not None for s in speakers) and len(set(speakers)) >= 2 else None
        wer = bootstrap_rate([u.counts[name].errors for u in members], [u.counts[name].ref_len for u in members],
                             groups=groups, **boot)
        reason = warning = None
        if not members:
            reason = f"none in the {len(utts)} references"
            if name == PROPER and utts and not any(u.has_case for u in utts):
                reason = "references without letter case; list proper nouns with --entities"
        elif groups is not None and len(set(speakers)) < FEW_SPEAKERS:
            warning = (f"{name}: {counts.ref_len} words from {len(set(speakers))} speakers; the interval "
                       f"resamples speakers and runs narrow below {FEW_SPEAKERS}")
        if name == PROPER and members and not all(u.has_case for u in utts):
            uncased = sum(1 for u in utts if not u.has_case)
            warning = (f"{uncased} of {len(utts)} references carry no letter case; proper nouns are found only "
                       "in the others")
        recall = counts.hits / counts.ref_len if counts.ref_len else float("nan")
        keywords = _keyword_summary(utts) if name == KEYWORDS else None
        n_spk = len({s for s in speakers if s is not None})
        out.append(ClassScore(name, _kind(name), len(members), n_spk, counts, wer, recall, keywords, reason, warning))
    return tuple(out)


def paired_class_counts(
    pairs: Sequence[tuple[UtteranceClasses, UtteranceClasses]], name: str,
) -> tuple[list[int], list[int], list[int], list[str | None]]:
    """``(ref_len, errors_a, errors_b, speakers)`` of class ``name`` over paired utterances (same
    utterance, two systems) that contain it; the input of :func:`voxproof.metrics.paired.compare_counts`."""
    refs: list[int] = []
    ea: list[int] = []
    eb: list[int] = []
    spk: list[str | None] = []
    zero = ErrorCounts()
    for a, b in pairs:
        ca, cb = a.counts.get(name, zero), b.counts.get(name, zero)
        if not (ca.ref_len or ca.insertions or cb.insertions):
            continue
        refs.append(ca.ref_len)
        ea.append(ca.errors)
        eb.append(cb.errors)
        spk.append(a.speaker)
    return refs, ea, eb, spk
