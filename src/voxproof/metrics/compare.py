"""Comparing two runs: checks that they measured the same thing, then a paired comparison per condition.

Two runs are comparable when they are scored with the same normaliser, were made on the same dataset
(``provenance['dataset_hash']``) and hold the same utterances with the same references. Otherwise
:class:`voxproof.errors.NotComparable` is raised, unless ``intersect=True`` asks to compare only the
utterances both runs share (the dropped ones are counted in the result). Counts come from the run
stores' caches (aligned once by scoring).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from voxproof.errors import NotComparable, UsageError
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
    classes: tuple[tuple[str, PairedComparison], ...] | None = None  # (class, comparison), first condition

    def token_class(self, name: str) -> PairedComparison:
        for cls, comp in self.classes or ():
            if cls == name:
                return comp
        raise KeyError(f"no class {name!r}; compared classes: {[c for c, _ in self.classes or ()]}")
    notes: tuple[str, ...] = ()  # run-level warnings: different CPU dispatch, packed vs per-clip decoding

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
            **({"classes": [{"class": name, **c.to_dict()} for name, c in self.classes]}
               if self.classes is not None else {}),
            "notes": list(self.notes),
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
    tests: str = "textbook",
    classes: Any = None,
) -> RunComparison:
    """Paired comparison of two runs (``RunStore``s), condition by condition.

    ``normalizer=None`` uses the runs' recorded normaliser (refused if they differ). ``tests``:
    ``"textbook"`` (one segment per utterance: MAPSSWE, sign, Wilcoxon, McNemar) or ``"sctk"`` (NIST
    sc_stats' definitions, :mod:`voxproof.metrics.sctk`: MAPSSWE on error regions, sign and Wilcoxon on
    per-speaker %WER, from sclite-weighted alignments). ``classes`` (a
    :class:`voxproof.metrics.classes.ClassSpec`, or a dict of :func:`load_class_spec` arguments) adds
    one paired comparison per token class on the first condition, over the utterances containing it.
    """
    from voxproof.metrics.sctk import TEST_SETS

    if tests not in TEST_SETS:
        raise UsageError(f"unknown test set {tests!r}; choose one of {', '.join(TEST_SETS)}")
    if tests == "sctk" and alternates not in (None, "none"):
        raise UsageError("--tests sctk scores as sclite does, without voxproof's alternates; drop --alternates")
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
        if tests == "sctk":
            comp = replace(comp, tests=sctk_condition_tests([rows_a[k] for k in ks], [rows_b[k] for k in ks], norm))
        scored = set(ks)
        unscored = sum(1 for k in keys if k[1] == cond and k not in scored)
        if unscored:
            comp = _with_warning(comp, f"{unscored} utterances left out: an error row in {labels[0]} or {labels[1]}")
        comparisons.append(comp)
    class_comps = None
    if classes is not None and conditions:
        class_comps = _class_comparisons(classes, norm, alts, [rows_a[k] for k in both if k[1] == conditions[0]],
                                         [rows_b[k] for k in both if k[1] == conditions[0]],
                                         n_resamples=n_resamples, seed=seed, level=level)
    dropped = {"only_in_a": len(only_a), "only_in_b": len(only_b), "reference_differs": len(ref_differs),
               "error_rows": len(keys) - len(both)}
    return RunComparison(
        run_a=labels[0], run_b=labels[1], normalizer=norm.to_dict(),
        alternates=alts.to_dict() if alts is not None else None,
        dataset_hash_a=store_a.provenance.get("dataset_hash"), dataset_hash_b=store_b.provenance.get("dataset_hash"),
        intersect=intersect, dropped=dropped, comparisons=tuple(comparisons), classes=class_comps,
        notes=tuple(run_notes(store_a.provenance, store_b.provenance, labels)),
    )


def run_notes(pa: dict[str, Any], pb: dict[str, Any], labels: tuple[str, str] = ("A", "B")) -> list[str]:
    """Warnings about two runs that are comparable but not measured alike: different CPU dispatch or
    decode-path libraries (:func:`voxproof.run.cpu.machine_warnings`), or packed vs per-clip decoding.
    ``compare`` reports these; ``gate`` refuses the packed/per-clip mix (see :mod:`voxproof.gate.evidence`)."""
    from voxproof.run.cpu import machine_warnings

    notes = machine_warnings(pa, pb, labels)
    mixed = measurement_mismatch(pa, pb, labels)
    if mixed:
        notes.append(mixed + "; the difference includes the change of measurement, not only of the model")
    return notes


def measurement_mismatch(pa: dict[str, Any], pb: dict[str, Any], labels: tuple[str, str] = ("A", "B")) -> str | None:
    """A sentence when one run decoded clips one by one and the other packed them into shared windows
    (the packed model hears neighbouring clips as context, so it is a different measurement), else None."""
    from voxproof.run.provenance import measurement_mode

    ma, mb = measurement_mode(pa), measurement_mode(pb)
    if ma == mb:
        return None

    def describe(m: dict[str, Any]) -> str:
        return "packed (clips up to {}s share 30 s windows)".format(m.get("pack_max_s")) if m["mode"] == "packed" \
            else str(m["mode"])
    return (f"{labels[0]} was decoded {describe(ma)} and {labels[1]} {describe(mb)}: packed decoding lets the "
            "model hear neighbouring clips, so it is a different measurement")


def _class_comparisons(classes: Any, norm: Any, alts: Any, rows_a: list, rows_b: list, *, n_resamples: int,
                       seed: int, level: float) -> tuple[tuple[str, PairedComparison], ...]:
    """One paired comparison per class over the utterances that contain it (rows in the same order)."""
    from voxproof.metrics.class_scores import class_utterances, paired_class_counts
    from voxproof.metrics.classes import ClassSpec, load_class_spec

    spec = classes if isinstance(classes, ClassSpec) else load_class_spec(norm, **classes)
    pairs = list(zip(class_utterances(rows_a, norm, spec, alts), class_utterances(rows_b, norm, spec, alts)))
    out = []
    for name in spec.names:
        refs, ea, eb, spk = paired_class_counts(pairs, name)
        groups = spk if refs and all(s is not None for s in spk) else None
        out.append((name, compare_counts(refs, ea, eb, groups=groups, condition=rows_a[0].condition if rows_a else "",
                                         n_resamples=n_resamples, seed=seed, level=level)))
    return tuple(out)


def _with_warning(comp: PairedComparison, warning: str) -> PairedComparison:
    return replace(comp, warnings=comp.warnings + (warning,))


def sctk_condition_tests(rows_a: Any, rows_b: Any, norm: Any) -> tuple[Any, ...]:
    """sc_stats' tests on paired rows (same utterances, same order): texts normalised and tokenised as
    ``voxproof export`` writes them, compared ignoring ASCII case as sclite does by default, blocks as
    sclite reads them from the exported ids."""
    from voxproof.metrics.sctk import SctkUtterance, sclite_case, sclite_speaker, sctk_tests
    from voxproof.run.export import sclite_tokens

    def toks(text: str | None) -> tuple[str, ...]:
        return tuple(sclite_case(t) for t in sclite_tokens(norm(text or "")))

    utts = [SctkUtterance(sclite_speaker(ra.utt_id, ra.speaker), toks(ra.reference), toks(ra.hypothesis),
                          toks(rb.hypothesis)) for ra, rb in zip(rows_a, rows_b)]
    return sctk_tests(utts)


@dataclass(frozen=True)
class ManyComparison:
    """N runs on the same utterances: one :class:`voxproof.metrics.multi.MultiCondition` per condition."""

    systems: tuple[str, ...]
    normalizer: dict[str, Any]
    intersect: bool
    dropped: dict[str, int]
    conditions: tuple[Any, ...]
    schema: int = SCHEMA_VERSION

    def condition(self, name: str) -> Any:
        for c in self.conditions:
            if c.condition == name:
                return c
        raise KeyError(f"no condition {name!r}; have {[c.condition for c in self.conditions]}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "multi_comparison", "schema": self.schema, "systems": list(self.systems),
                "normalizer": self.normalizer, "intersect": self.intersect, "dropped": dict(self.dropped),
                "conditions": [c.to_dict(self.systems) for c in self.conditions]}


def compare_many(
    stores: list[Any], labels: list[str], normalizer: str | None = None, *, intersect: bool = False,
    alternates: Any = None, n_resamples: int = 1000, n_permutations: int = 2000, seed: int = 0, level: float = 0.95,
) -> ManyComparison:
    """Omnibus tests, Holm-corrected pairwise comparisons and a ranking with intervals for N >= 2 runs
    (:mod:`voxproof.metrics.multi`). Every run is checked against the first as for two runs; without
    ``intersect`` they must hold the same utterances and references."""
    from voxproof.metrics.multi import compare_matrix

    if len(stores) < 2:
        raise NotComparable("give two or more runs to compare")
    if len(set(labels)) != len(labels):
        raise NotComparable("the same run is given twice; give distinct runs")
    names = {check_comparable(stores[0], s, normalizer, intersect) for s in stores[1:]}
    if len(names) > 1:
        raise NotComparable(f"the runs were scored with different normalisers {sorted(names)}; pass --normalizer")
    norm = get_normalizer(names.pop())
    alts = resolve_alternates(alternates)
    alts = alts.normalized(norm) if alts is not None else None
    rows = [{(r.utt_id, r.condition): r for r in s.rows()} for s in stores]
    shared = set(rows[0])
    for r in rows[1:]:
        shared &= r.keys()
    ref_differs = {k for k in shared if len({(r[k].reference or "") for r in rows}) > 1}
    extra = sum(len(r.keys() - shared) for r in rows)
    if (extra or ref_differs) and not intersect:
        raise NotComparable(f"the runs hold different utterance sets ({extra} rows not in every run, "
                            f"{len(ref_differs)} with different references); pass --intersect to compare only "
                            "the utterances all share")
    keys = [k for k in rows[0] if k in shared and k not in ref_differs]
    both = [k for k in keys if all(scorable(r[k]) for r in rows)]
    counts = [utterance_counts(s, [r[k] for k in both], norm, alts) for s, r in zip(stores, rows)]
    conditions = list(dict.fromkeys(c for _, c in both))
    out = []
    for cond in conditions:
        ks = [k for k in both if k[1] == cond]
        speakers = [rows[0][k].speaker for k in ks]
        groups = speakers if ks and all(s is not None for s in speakers) else None
        out.append(compare_matrix([counts[0][k][0].ref_len for k in ks],
                                  [[c[k][0].errors for k in ks] for c in counts], labels, groups=groups,
                                  condition=cond, n_resamples=n_resamples, n_permutations=n_permutations,
                                  seed=seed, level=level))
    dropped = {"not_in_every_run": extra, "reference_differs": len(ref_differs), "error_rows": len(keys) - len(both)}
    return ManyComparison(tuple(labels), norm.to_dict(), intersect, dropped, tuple(out))
