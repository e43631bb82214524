"""Comparing two runs: checks that they measured the same thing, then a paired comparison per condition.

Two runs are comparable when they are scored with the same normaliser, were made on the same dataset
(``provenance['dataset_hash']``) and hold the same utterances with the same references. Otherwise
:class:`voxproof.errors.NotComparable` is raised, unless ``intersect=True`` asks to compare only the
utterances both runs share (the dropped ones are counted in the result). Counts come from the run
stores' caches (aligned once by scoring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxproof.errors import NotComparable
from voxproof.metrics.alternates import resolve_alternates
from voxproof.metrics.normalize import DEFAULT_NORMALIZER, get_normalizer
from voxproof.metrics.paired import PairedComparison, compare_counts
from voxproof.metrics.scoring import scorable, utterance_counts

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunComparison:
    """Run A against run B: one :class:`PairedComparison` per condition both runs have."""

    run_a: str
    run_b: str
    normalizer: dict[str, Any]
    alternates: dict[str, Any] | None
    dataset_hash_a: str | None
    dataset_hash_b: str | None
    intersect: bool
    dropped: dict[str, int]
    comparisons: tuple[PairedComparison, ...]
    schema: int = SCHEMA_VERSION

    def condition(self, name: str) -> PairedComparison:
        for c in self.comparisons:
            if c.condition == name:
                return c
        raise KeyError(f"no condition {name!r}; have {[c.condition for c in self.comparisons]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "run_comparison", "schema": self.schema, "run_a": self.run_a, "run_b": self.run_b,
            "normalizer": self.normalizer, "alternates": self.alternates,
            "dataset_hash": {"a": self.dataset_hash_a, "b": self.dataset_hash_b}, "intersect": self.intersect,
            "dropped": dict(self.dropped), "comparisons": [c.to_dict() for c in self.comparisons],
        }


def compare_to_dict(comparison: RunComparison) -> dict[str, Any]:
    """JSON-ready form of a comparison (what ``compare.json`` holds)."""
    return comparison.to_dict()


def _recorded_normalizer(provenance: dict[str, Any]) -> str | None:
    norm = provenance.get("normalizer")
    if isinstance(norm, dict) and norm.get("name"):
        return f"{norm['name']}@{norm['version']}" if norm.get("version") else str(norm["name"])
    if isinstance(norm, str):
        return norm
    return None


def check_comparable(store_a: Any, store_b: Any, normalizer: str | None, intersect: bool) -> str:
    """The normaliser name to score both with; raises :class:`NotComparable` when the runs differ."""
    pa, pb = store_a.provenance, store_b.provenance
    from voxproof.tts.speaker import check_speaker_judges

    check_speaker_judges(*(((p.get("run_options") or {}).get("judges")) for p in (pa, pb)))
    if normalizer is None:
        na, nb = _recorded_normalizer(pa), _recorded_normalizer(pb)
        if na != nb:
            raise NotComparable(
                f"run A was scored with normalizer {na}, run B with {nb}; pass --normalizer NAME to "
                "re-score both with the same one"
            )
        normalizer = na or DEFAULT_NORMALIZER
    ha, hb = pa.get("dataset_hash"), pb.get("dataset_hash")
    if ha != hb and not intersect:
        raise NotComparable(
            f"the runs were made on different datasets (dataset hash {ha} vs {hb}); pass --intersect to "
            "compare only the utterances both share"
        )
    return normalizer


def compare_runs(
    store_a: Any,
    store_b: Any,
    normalizer: str | None = None,
    *,
    intersect: bool = False,
    alternates: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    labels: tuple[str, str] = ("A", "B"),
) -> RunComparison:
    """Paired comparison of two runs (``RunStore``s), condition by condition.

    ``normalizer=None`` uses the runs' recorded normaliser (refused if they differ).
    """
    name = check_comparable(store_a, store_b, normalizer, intersect)
    norm = get_normalizer(name)
    alts = resolve_alternates(alternates)
    alts = alts.normalized(norm) if alts is not None else None
    rows_a = {(r.utt_id, r.condition): r for r in store_a.rows()}
    rows_b = {(r.utt_id, r.condition): r for r in store_b.rows()}
    only_a = rows_a.keys() - rows_b.keys()
    only_b = rows_b.keys() - rows_a.keys()
    shared = rows_a.keys() & rows_b.keys()
    ref_differs = {k for k in shared if (rows_a[k].reference or "") != (rows_b[k].reference or "")}
    if (only_a or only_b or ref_differs) and not intersect:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} rows only in A (e.g. {min(only_a)})")
        if only_b:
            parts.append(f"{len(only_b)} rows only in B (e.g. {min(only_b)})")
        if ref_differs:
            parts.append(f"{len(ref_differs)} utterances with different references (e.g. {min(ref_differs)})")
        raise NotComparable("the runs hold different utterance sets: " + "; ".join(parts)
                            + "; pass --intersect to compare only the utterances both share")
    keys = [k for k in rows_a if k in shared and k not in ref_differs]
    both = [k for k in keys if scorable(rows_a[k]) and scorable(rows_b[k])]
    counts_a = utterance_counts(store_a, [rows_a[k] for k in both], norm, alts)
    counts_b = utterance_counts(store_b, [rows_b[k] for k in both], norm, alts)
    conditions: list[str] = []
    for _, cond in both:
        if cond not in conditions:
            conditions.append(cond)
    comparisons = []
    for cond in conditions:
        ks = [k for k in both if k[1] == cond]
        refs = [counts_a[k][0].ref_len for k in ks]
        speakers = [rows_a[k].speaker for k in ks]
        groups = speakers if ks and all(s is not None for s in speakers) else None
        comp = compare_counts(
            refs, [counts_a[k][0].errors for k in ks], [counts_b[k][0].errors for k in ks], groups=groups,
            condition=cond, n_resamples=n_resamples, seed=seed, level=level,
        )
        scored = set(ks)
        unscored = sum(1 for k in keys if k[1] == cond and k not in scored)
        if unscored:
            comp = _with_warning(comp, f"{unscored} utterances left out: an error row in {labels[0]} or {labels[1]}")
        comparisons.append(comp)
    dropped = {"only_in_a": len(only_a), "only_in_b": len(only_b), "reference_differs": len(ref_differs),
               "error_rows": len(keys) - len(both)}
    return RunComparison(
        run_a=labels[0], run_b=labels[1], normalizer=norm.to_dict(),
        alternates=alts.to_dict() if alts is not None else None,
        dataset_hash_a=store_a.provenance.get("dataset_hash"), dataset_hash_b=store_b.provenance.get("dataset_hash"),
        intersect=intersect, dropped=dropped, comparisons=tuple(comparisons),
    )


def _with_warning(comp: PairedComparison, warning: str) -> PairedComparison:
    from dataclasses import replace

    return replace(comp, warnings=comp.warnings + (warning,))
