"""Gate inputs: two runs opened, checked for comparability, and paired utterance by utterance.

Stage: between the run stores and the rules. :func:`open_inputs` opens the baseline and candidate run
stores, refuses (:class:`~voxproof.errors.NotComparable`) runs made on different data (dataset hash,
references, utterance and condition sets, condition definitions) or scored with different
normalisers, and pairs their per-utterance word counts (computed once and cached in each store by
:func:`voxproof.metrics.scoring.utterance_counts`). :func:`paired_difference` gives the paired
bootstrap interval of the WER difference of any subset of pairs.

Pairing follows scoring's rule: an utterance enters WER only when it was decoded without error in
*both* runs (error rows are counted by the coverage rule, never scored as text).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxproof.errors import NotComparable, RunError, UsageError
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.intervals import Interval
from voxproof.run.records import CLEAN, ResultRow
from voxproof.run.store import RunStore

log = logging.getLogger("voxproof.gate")


@dataclass(frozen=True)
class PairedUtterance:
    """One utterance under one condition, scored in both runs with the same normaliser."""

    utt_id: str
    condition: str
    speaker: str | None
    tags: dict[str, str]
    base: ErrorCounts
    cand: ErrorCounts
    rows: tuple[ResultRow, ResultRow] | None = field(default=None, compare=False, repr=False)  # base, cand

    def key(self, name: str) -> str | None:
        return self.speaker if name == "speaker" else self.tags.get(name)


@dataclass(frozen=True)
class RunInfo:
    """What the verdict records about one run."""

    path: str
    kind: str
    backend: str
    model: str | None
    model_checksum: str | None
    options: dict[str, Any]
    dataset_hash: str | None
    normalizer: str | None
    run_key: str
    conditions: tuple[str, ...]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "kind": self.kind, "backend": self.backend, "model": self.model,
            "model_checksum": self.model_checksum, "options": self.options, "dataset_hash": self.dataset_hash,
            "normalizer": self.normalizer, "run_key": self.run_key, "conditions": list(self.conditions),
            "rows": self.rows,
        }


@dataclass
class GateInputs:
    """Both runs, open, with their rows and the paired counts. Close with :meth:`close`."""

    baseline: RunInfo
    candidate: RunInfo
    base_store: RunStore
    cand_store: RunStore
    base_rows: list[ResultRow]
    cand_rows: list[ResultRow]
    normalizer: Any
    pairs: list[PairedUtterance]
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.candidate.kind

    def close(self) -> None:
        self.base_store.close()
        self.cand_store.close()


def run_key(provenance: dict[str, Any]) -> str:
    """A short stable id of what a run's rows mean: backend (name, model checksum, options), dataset
    hash, seed and conditions (machine, time and library versions excluded)."""
    from voxproof.run.provenance import identity

    blob = json.dumps(identity(provenance), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_info(store: RunStore, path: str | Path, rows: Sequence[ResultRow]) -> RunInfo:
    prov = store.provenance
    backend = prov.get("backend") or {}
    norm = prov.get("normalizer") or {}
    conditions = tuple(dict.fromkeys([n for n, _ in store.conditions()] + [r.condition for r in rows]))
    return RunInfo(
        path=str(path), kind=backend.get("kind") or "asr", backend=backend.get("name") or "unknown",
        model=backend.get("model"), model_checksum=backend.get("model_checksum"),
        options=dict(backend.get("options") or {}), dataset_hash=prov.get("dataset_hash"),
        normalizer=_norm_label(norm), run_key=run_key(prov), conditions=conditions, rows=len(rows),
    )


def _norm_label(norm: dict[str, Any]) -> str | None:
    if not norm or not norm.get("name"):
        return None
    return f"{norm['name']}@{norm['version']}" if norm.get("version") else str(norm["name"])


def open_inputs(baseline: str | Path, candidate: str | Path, *, normalizer: str | None = None) -> GateInputs:
    """Open, check and pair two runs. ``normalizer`` (a name) re-scores both with that normaliser;
    otherwise both must have recorded the same one.

    Raises :class:`RunError` for a missing or unreadable run or one with no rows, and
    :class:`NotComparable` for runs that are not the same evaluation set.
    """
    from voxproof.metrics.normalize import get_normalizer

    if Path(baseline).resolve() == Path(candidate).resolve():
        raise UsageError(f"baseline and candidate are the same run ({baseline}); give two runs")
    base_store = RunStore.open(baseline)
    try:
        cand_store = RunStore.open(candidate)
    except BaseException:
        base_store.close()
        raise
    try:
        base_rows, cand_rows = list(base_store.rows()), list(cand_store.rows())
        for label, path, rows in (("baseline", baseline, base_rows), ("candidate", candidate, cand_rows)):
            if not rows:
                raise RunError(f"the {label} run {path} has no result rows; finish it with 'voxproof eval --resume'")
        for label, path, store, rows in (("baseline", baseline, base_store, base_rows),
                                         ("candidate", candidate, cand_store, cand_rows)):
            status = store.meta("status")
            if status in ("running", "incomplete"):
                raise RunError(f"the {label} run {path} is {status} ({len(rows)} rows so far); finish it with "
                               "'voxproof eval --resume' before gating")
        base_info = run_info(base_store, baseline, base_rows)
        cand_info = run_info(cand_store, candidate, cand_rows)
        notes = _check_comparable(base_store, cand_store, base_info, cand_info, base_rows, cand_rows,
                                  explicit_normalizer=normalizer)
        name = normalizer or (base_store.provenance.get("normalizer") or {}).get("name")
        norm = get_normalizer(name) if name else get_normalizer()
        if not name:
            notes.append(f"neither run records a normaliser; scored with the default {norm.label}")
        pairs = _pair(base_store, cand_store, base_rows, cand_rows, norm) if cand_info.kind == "asr" else []
        return GateInputs(base_info, cand_info, base_store, cand_store, base_rows, cand_rows, norm, pairs, notes)
    except BaseException:
        base_store.close()
        cand_store.close()
        raise


def _check_comparable(
    base_store: RunStore, cand_store: RunStore, b: RunInfo, c: RunInfo,
    base_rows: Sequence[ResultRow], cand_rows: Sequence[ResultRow], *, explicit_normalizer: str | None,
) -> list[str]:
    notes: list[str] = []
    if b.kind != c.kind:
        raise NotComparable(f"the baseline is a {b.kind} run and the candidate a {c.kind} run")
    if b.dataset_hash != c.dataset_hash:
        raise NotComparable(
            f"different data: dataset hash {b.dataset_hash} (baseline) vs {c.dataset_hash} (candidate); "
            "evaluate both models on the same manifest"
        )
    if explicit_normalizer is None and b.normalizer != c.normalizer:
        raise NotComparable(
            f"different normalisers: {b.normalizer} (baseline) vs {c.normalizer} (candidate); set "
            "decision.normalizer in the policy to re-score both with one"
        )
    base_keys = {(r.utt_id, r.condition) for r in base_rows}
    cand_keys = {(r.utt_id, r.condition) for r in cand_rows}
    if base_keys != cand_keys:
        only_b, only_c = sorted(base_keys - cand_keys), sorted(cand_keys - base_keys)
        shown = "; ".join(
            f"{len(keys)} only in the {label} (e.g. {', '.join(f'{u}/{k}' for u, k in keys[:3])})"
            for label, keys in (("baseline", only_b), ("candidate", only_c)) if keys
        )
        raise NotComparable(f"different utterance sets: {shown}; finish both runs on the same data and conditions")
    base_specs, cand_specs = dict(base_store.conditions()), dict(cand_store.conditions())
    for name in sorted(set(base_specs) & set(cand_specs)):
        if _chain(base_specs[name]) != _chain(cand_specs[name]):
            raise NotComparable(
                f"condition {name!r} is defined differently in the two runs: {base_specs[name]} vs "
                f"{cand_specs[name]}"
            )
    if c.kind == "tts":
        judges = [(s.provenance.get("run_options") or {}).get("judges") for s in (base_store, cand_store)]
        from voxproof.tts.speaker import check_speaker_judges

        check_speaker_judges(*judges)
        if _without_versions(judges[0]) != _without_versions(judges[1]):
            raise NotComparable("the two TTS runs were judged differently (recogniser, normaliser or MOS "
                                f"predictor): {judges[0]} vs {judges[1]}; evaluate both with the same judges")
        return notes  # references are the expected form each system's transcript matched best
    base_refs = {(r.utt_id, r.condition): r.reference for r in base_rows}
    differing = sorted(
        r.utt_id for r in cand_rows
        if r.reference is not None and base_refs.get((r.utt_id, r.condition)) not in (None, r.reference)
    )
    if differing:
        raise NotComparable(f"{len(differing)} reference transcripts differ between the runs "
                            f"(e.g. {differing[0]}); they were made from different manifests")
    from voxproof.metrics.compare import measurement_mismatch
    from voxproof.run.cpu import machine_warnings

    mixed = measurement_mismatch(base_store.provenance, cand_store.provenance, ("the baseline", "the candidate"))
    if mixed:
        # A release decision must not rest on a change of measurement: refuse, as for different data.
        raise NotComparable(mixed + "; evaluate both the same way (both with --pack or both without)")
    notes.extend(machine_warnings(base_store.provenance, cand_store.provenance, ("baseline", "candidate")))
    bseed = base_store.provenance.get("seed")
    cseed = cand_store.provenance.get("seed")
    if bseed != cseed and any(k != CLEAN for _, k in base_keys):
        notes.append(f"the runs used different seeds ({bseed} vs {cseed}): perturbed audio differs in its "
                     "random parts, so condition differences include that noise")
    return notes


def _without_versions(value: Any) -> Any:
    """``value`` without ``library_versions`` entries (they do not change what a judge measures)."""
    if isinstance(value, dict):
        return {k: _without_versions(v) for k, v in value.items() if k != "library_versions"}
    if isinstance(value, list):
        return [_without_versions(v) for v in value]
    return value


def _chain(spec: Any) -> Any:
    return spec.get("chain", spec) if isinstance(spec, dict) else spec


def _pair(
    base_store: RunStore, cand_store: RunStore, base_rows: list[ResultRow], cand_rows: list[ResultRow], norm: Any,
) -> list[PairedUtterance]:
    from voxproof.metrics.scoring import scorable, utterance_counts

    b_good = [r for r in base_rows if scorable(r)]
    c_good = [r for r in cand_rows if scorable(r)]
    b_counts = utterance_counts(base_store, b_good, norm)
    c_counts = utterance_counts(cand_store, c_good, norm)
    b_rows = {(r.utt_id, r.condition): r for r in b_good}
    pairs = []
    for row in c_good:  # manifest order of the candidate
        key = (row.utt_id, row.condition)
        if key not in b_counts:
            continue
        base, cand = b_counts[key][0], c_counts[key][0]
        if base.ref_len != cand.ref_len:
            raise NotComparable(f"utterance {row.utt_id} has {base.ref_len} reference words in the baseline and "
                                f"{cand.ref_len} in the candidate after normalisation")
        pairs.append(PairedUtterance(row.utt_id, row.condition, row.speaker, dict(row.tags), base, cand,
                                     (b_rows[key], row)))
    return pairs


@dataclass(frozen=True)
class PairedDifference:
    """Candidate WER minus baseline WER over a set of paired utterances, with its interval and the
    paired significance tests (from :func:`voxproof.metrics.paired.compare_counts`)."""

    baseline_rate: float
    candidate_rate: float
    difference: Interval
    utterances: int
    speakers: int
    ref_words: int
    prob_candidate_better: float
    tests: dict[str, Any]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_wer": self.baseline_rate, "candidate_wer": self.candidate_rate,
            "difference": self.difference.to_dict(), "utterances": self.utterances,
            "speakers": self.speakers, "ref_words": self.ref_words,
            "prob_candidate_better": self.prob_candidate_better, "tests": self.tests,
            "warnings": list(self.warnings),
        }


def paired_difference(
    pairs: Sequence[PairedUtterance],
    *,
    level: float,
    n_resamples: int,
    seed: int,
    resample: str = "auto",
    min_speakers_for_blocking: int = 5,
    tests: str = "textbook",
    normalizer: Any = None,
) -> PairedDifference:
    """Corpus WER of the candidate minus that of the baseline on ``pairs``, with the paired percentile
    bootstrap interval of :func:`voxproof.metrics.paired.compare_counts` (each resample draws the same
    utterances, or whole speakers, for both runs).

    ``resample``: ``"utterance"``, ``"speaker"``, or ``"auto"`` (speakers when every pair has one and
    there are at least ``min_speakers_for_blocking`` of them). ``tests="sctk"`` records NIST sc_stats'
    tests (:mod:`voxproof.metrics.sctk`, from the pairs' rows and ``normalizer``) instead of the textbook ones.
    """
    from voxproof.metrics.paired import compare_counts

    if not pairs:
        raise UsageError("no paired utterances to compare")
    speakers = [p.speaker for p in pairs]
    n_speakers = len({s for s in speakers if s is not None})
    can_block = all(s is not None for s in speakers) and n_speakers >= 2
    if resample == "speaker" and not can_block:
        raise UsageError("resample = \"speaker\" needs a speaker id on every utterance and at least two speakers")
    blocked = resample == "speaker" or (resample == "auto" and can_block and n_speakers >= min_speakers_for_blocking)
    comp = compare_counts(
        [p.base.ref_len for p in pairs], [p.base.errors for p in pairs], [p.cand.errors for p in pairs],
        groups=speakers if blocked else None, condition=pairs[0].condition, n_resamples=n_resamples, seed=seed,
        level=level,
    )
    chosen = comp.tests
    if tests == "sctk":
        if normalizer is None or any(p.rows is None for p in pairs):
            raise UsageError("the sc_stats tests need the paired rows and the normaliser")
        from voxproof.metrics.compare import sctk_condition_tests

        chosen = sctk_condition_tests([p.rows[0] for p in pairs], [p.rows[1] for p in pairs], normalizer)
    tests = {t.name: t.to_dict() for t in chosen}
    return PairedDifference(comp.wer_a, comp.wer_b, comp.difference, comp.utterances, n_speakers, comp.ref_words,
                            comp.prob_b_better, tests, comp.warnings)
