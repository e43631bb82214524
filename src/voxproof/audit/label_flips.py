"""Audit poisoning scan, label flips concentrated in one speaker or source.

A label-flipping attacker (or a broken ingestion job) changes the transcripts of one contributor's or
one source's items. The label-noise stage (``check_asr``: a recogniser's WER against the reference above
a threshold) flags single items; this stage asks whether the flagged items are *concentrated*: for every
speaker and every value of the ``source`` tag, a one-sided Fisher exact test of flagged-in-group against
flagged-elsewhere, Bonferroni-corrected over all the groups tested. A group at or below ``max_p`` with at
least ``min_items`` flagged items is a ``poison.label_flip`` finding naming those items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from voxproof.audit.findings import Finding
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit.label_flips")

GROUP_TAGS = ("source",)


@dataclass(frozen=True)
class LabelFlipOptions:
    min_items: int = 3
    max_p: float = 0.05  # family-wise (Bonferroni over the groups tested)


def contradicted_items(asr_findings: Iterable[Any]) -> set[str]:
    """Items the recogniser contradicts at or above the label-noise WER: judged label noise
    (``transcript.asr_disagreement``) and judged model error (``transcript.asr_hard``) alike. A flip scan
    asks whether contradictions concentrate in one group, so it counts both: a swapped transcript the
    recogniser was unsure of is still a contradiction, and the group test controls for the base rate."""
    kinds = ("transcript.asr_disagreement", "transcript.asr_hard")
    return {i for f in asr_findings if f.kind in kinds for i in f.items}


def find_label_flips(utts: Iterable[Utterance], flagged: set[str],
                     options: LabelFlipOptions = LabelFlipOptions()) -> list[Finding]:
    """``utts``: the items the recogniser scored; ``flagged``: the ids whose transcript it contradicts."""
    from scipy.stats import fisher_exact

    members: dict[tuple[str, str], list[str]] = {}
    n = n_flagged = 0
    for u in utts:
        n += 1
        n_flagged += u.id in flagged
        keys = [("speaker", u.speaker)] + [(t, u.tags.get(t)) for t in GROUP_TAGS]
        for attr, value in keys:
            if value:
                members.setdefault((attr, str(value)), []).append(u.id)
    tests = [(k, ids) for k, ids in members.items() if len(ids) < n]  # a group that is everything tests nothing
    findings = []
    for (attr, value), ids in tests:
        a = sum(1 for i in ids if i in flagged)
        if a < options.min_items:
            continue
        b = n_flagged - a
        table = [[a, len(ids) - a], [b, (n - len(ids)) - b]]
        p = min(1.0, float(fisher_exact(table, alternative="greater")[1]) * len(tests))
        log.debug("label flips %s=%s: %d/%d flagged vs %d/%d, p=%.3g", attr, value, a, len(ids), b, n - len(ids), p)
        if p > options.max_p:
            continue
        items = tuple(i for i in ids if i in flagged)
        findings.append(Finding(
            "poison.label_flip", "high", items,
            f"{a} of the {len(ids)} items of {attr} {value} have transcripts the recogniser contradicts, against "
            f"{b} of the other {n - len(ids)} items (Fisher p={p:.2g}, Bonferroni over {len(tests)} groups): "
            "labels flipped or corrupted in one "
            f"{attr}",
            {"group": attr, "value": value, "flagged_in_group": a, "group_items": len(ids), "flagged_outside": b,
             "other_items": n - len(ids), "p_value": p}, "exclude"))
    return findings
