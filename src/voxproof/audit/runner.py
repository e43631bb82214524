"""The audit pipeline: manifest -> per-item analysis (pool + cache) -> every check stage -> ``AuditResult``
(findings, statistics, coverage, attribution, provenance) -> JSON, HTML, datasheet and ``--fix`` outputs.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voxproof.audit.analyse import analyse_all
from voxproof.audit.cache import AnalysisCache
from voxproof.audit.contamination import check_contamination, side_from
from voxproof.audit.coverage import Coverage, compute_coverage, coverage_findings
from voxproof.audit.duplicates import duplicate_transcripts, exact_duplicates, near_duplicates
from voxproof.audit.findings import SEVERITIES, Finding, at_or_above, count_by_severity, severity_rank
from voxproof.audit.licences import INTENDED_USES, check_licences
from voxproof.audit.pii import check_pii
from voxproof.audit.quality import SignalThresholds, signal_findings
from voxproof.audit.signal import ItemAnalysis
from voxproof.audit.transcript import TranscriptThresholds, check_asr, check_rate, check_text
from voxproof.errors import DataError
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit")

CACHE_NAME = "audit-cache.sqlite"


@dataclass(frozen=True)
class AuditOptions:
    """Every setting of an audit; the CLI flags and ``-O name=value`` are built from this class."""

    workers: int = 0  # 0 = every core
    vad: Literal["silero", "energy"] = "silero"
    fail_on: Literal["info", "low", "medium", "high", "critical"] = "high"
    intended_use: Literal["any", "research", "commercial"] = "any"
    asr: str | None = None  # recogniser for label-noise checks (e.g. "whisper")
    asr_max_wer: float = 0.6  # tiny.en errs up to ~55% on some clean test-other clips
    normalizer: str = "whisper-en"
    near_max_ber: float = 0.3  # fingerprint bit error rate at or below which two items are the same audio
    cps_z: float = 4.0
    duration_z: float = 5.0
    clip_ratio: float = 0.001
    dc_offset: float = 0.02
    min_speech_ratio: float = 0.1
    min_snr_db: float = 10.0
    min_bandwidth_share: float = 0.6
    sample_rate: int | None = None
    transcript_min_words: int = 4
    ngram: int = 4
    ngram_overlap: float = 0.8
    cache: bool = True

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITIES:
            raise ValueError(f"fail_on must be one of {', '.join(SEVERITIES)}, got {self.fail_on!r}")
        if self.intended_use not in INTENDED_USES:
            raise ValueError(f"intended_use must be one of {', '.join(INTENDED_USES)}, got {self.intended_use!r}")
        if self.vad not in ("silero", "energy"):
            raise ValueError(f"vad must be silero or energy, got {self.vad!r}")
        if not 0 < self.near_max_ber < 0.5:
            raise ValueError(f"near_max_ber must be in (0, 0.5), got {self.near_max_ber}")


@dataclass(frozen=True)
class AuditResult:
    """What an audit found. ``items`` are the audited manifest's utterances (in order) so the fix
    writer can copy them; ``stats`` holds per-stage numbers (timings, counts, index stats)."""

    source: str
    against: str | None
    options: AuditOptions
    findings: tuple[Finding, ...]
    stats: dict[str, Any]
    coverage: Coverage
    attribution: tuple[dict[str, Any], ...]
    items: tuple[Utterance, ...] = field(repr=False, default=())
    analyses: dict[str, ItemAnalysis] = field(repr=False, default_factory=dict)

    def failing(self) -> list[Finding]:
        return at_or_above(list(self.findings), self.options.fail_on)

    def to_dict(self) -> dict[str, Any]:
        from voxproof import __version__
        from voxproof.options import options_dict

        return {
            "type": "audit",
            "schema": 1,
            "source": self.source,
            "against": self.against,
            "voxproof_version": __version__,
            "options": options_dict(self.options),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "counts": count_by_severity(list(self.findings)),
            "fail_on": self.options.fail_on,
            "failed": bool(self.failing()),
            "stats": self.stats,
            "coverage": self.coverage.to_dict(),
            "attribution": list(self.attribution),
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: -severity_rank(f.severity))],
        }


_SPLIT_ORDER = {"train": 0, "training": 0, "dev": 1, "valid": 1, "validation": 1, "val": 1, "test": 2, "eval": 2}


def split_leakage(utts: list[Utterance], by_id: dict[str, ItemAnalysis], opts: AuditOptions) -> list[Finding]:
    """Contamination checks between the splits of one manifest (tag ``split``), training-like first:
    findings name the items of the earlier split."""
    splits: dict[str, list[Utterance]] = {}
    for u in utts:
        s = u.tags.get("split")
        if s:
            splits.setdefault(s, []).append(u)
    names = sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s.lower(), 1), s))
    found: list[Finding] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for f in check_contamination(side_from(splits[a], by_id), side_from(splits[b], by_id),
                                         max_ber=opts.near_max_ber, ngram=opts.ngram, min_overlap=opts.ngram_overlap):
                found.append(Finding(f.kind, f.severity, f.items, f"[{a} vs {b}] {f.message}",
                                     {**f.evidence, "splits": [a, b]}, f.action))
    return found


def _read(source: str | Path) -> list[Utterance]:
    from voxproof.manifest import read_manifest

    return list(read_manifest(source))


def _analyse(utts: list[Utterance], options: AuditOptions, cache: AnalysisCache | None,
             progress: Callable[[str], None] | None) -> tuple[list[ItemAnalysis], dict[str, Any]]:
    it, stats = analyse_all(utts, vad=options.vad, workers=options.workers, cache=cache,
                            progress=(lambda n: progress(f"analysed {n} items")) if progress else None)
    analyses = list(it)
    return analyses, stats().to_dict()


def run_audit(
    source: str | Path,
    *,
    against: str | Path | None = None,
    out_dir: str | Path | None = None,
    options: AuditOptions | None = None,
    items: list[Utterance] | None = None,
    against_items: list[Utterance] | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit the manifest at ``source`` (or the given ``items``), optionally against a second dataset.

    ``out_dir`` holds the per-item cache (resumable audits); without it nothing is cached.
    Raises :class:`DataError` when the manifest is empty or no item could be decoded.
    """
    opts = options or AuditOptions()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    utts = items if items is not None else _read(source)
    if not utts:
        raise DataError(f"manifest {source} has no items: nothing to audit")
    ids = [u.id for u in utts]
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    dup_ids = [i for i, n in seen.items() if n > 1]
    if dup_ids:
        findings.append(Finding("manifest.duplicate_id", "high", tuple(dup_ids),
                                f"{len(dup_ids)} id(s) used by more than one item", {"count": len(dup_ids)}))
    timings["read"] = time.perf_counter() - t0

    cache = None
    if out_dir is not None and opts.cache:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        cache = AnalysisCache(Path(out_dir) / CACHE_NAME)
    try:
        t = time.perf_counter()
        analyses, analyse_stats = _analyse(utts, opts, cache, progress)
        timings["analyse"] = time.perf_counter() - t
        test_utts: list[Utterance] = []
        test_analyses: list[ItemAnalysis] = []
        if against is not None or against_items is not None:
            test_utts = against_items if against_items is not None else _read(against)  # type: ignore[arg-type]
            t = time.perf_counter()
            test_analyses, against_stats = _analyse(test_utts, opts, cache, progress)
            timings["analyse_against"] = time.perf_counter() - t
        else:
            against_stats = None
    finally:
        if cache is not None:
            cache.close()
    if not any(a.ok for a in analyses):
        raise DataError(
            f"none of the {len(analyses)} item(s) in {source} could be decoded "
            f"(first error: {analyses[0].error}); check the audio paths"
        )
    by_id = {a.id: a for a in analyses}
    durations = {a.id: a.duration for a in analyses if a.ok and a.duration}

    t = time.perf_counter()
    sig_th = SignalThresholds(clip_ratio=opts.clip_ratio, dc_offset=opts.dc_offset,
                              min_speech_ratio=opts.min_speech_ratio, min_snr_db=opts.min_snr_db,
                              min_bandwidth_share=opts.min_bandwidth_share, duration_z=opts.duration_z,
                              sample_rate=opts.sample_rate)
    sig, signal_stats = signal_findings(analyses, sig_th)
    findings += sig
    timings["signal"] = time.perf_counter() - t

    t = time.perf_counter()
    findings += check_text(utts)
    rate_findings, rate_stats = check_rate(utts, durations, TranscriptThresholds(cps_z=opts.cps_z))
    findings += rate_findings
    asr_stats = None
    if opts.asr:
        ok_ids = {a.id for a in analyses if a.ok}
        asr_findings, asr_stats = check_asr(utts, opts.asr, max_wer=opts.asr_max_wer,
                                            normalizer=opts.normalizer, ok_ids=ok_ids)
        findings += asr_findings
    timings["transcript"] = time.perf_counter() - t

    t = time.perf_counter()
    hashes = [a.pcm_sha1 if a.ok else None for a in analyses]
    exact = exact_duplicates(ids, hashes)
    near, index_stats = near_duplicates(ids, [a.fingerprint for a in analyses], hashes, max_ber=opts.near_max_ber)
    timings["near_duplicate_search"] = index_stats.seconds
    audio_dups = {i for f in exact + near for i in f.items}
    findings += exact + near
    findings += duplicate_transcripts(ids, [u.text for u in utts], min_words=opts.transcript_min_words,
                                      exclude_ids=audio_dups)
    timings["duplicates"] = time.perf_counter() - t

    if not test_utts:
        t = time.perf_counter()
        findings += split_leakage(utts, by_id, opts)
        timings["split_leakage"] = time.perf_counter() - t
    else:
        t = time.perf_counter()
        train_side = side_from(utts, by_id)
        test_side = side_from(test_utts, {a.id: a for a in test_analyses})
        findings += check_contamination(train_side, test_side, max_ber=opts.near_max_ber, ngram=opts.ngram,
                                        min_overlap=opts.ngram_overlap)
        timings["contamination"] = time.perf_counter() - t

    t = time.perf_counter()
    coverage = compute_coverage(utts, durations)
    findings += coverage_findings(coverage)
    lic_findings, attribution = check_licences(utts, opts.intended_use)
    findings += lic_findings
    findings += check_pii(utts)
    timings["coverage_licences_pii"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    stats = {
        "items": len(utts),
        "analysis": analyse_stats,
        "analysis_against": against_stats,
        "signal": signal_stats,
        "transcript_rate": rate_stats,
        "asr": asr_stats,
        "near_duplicate_index": index_stats.__dict__,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "against_items": len(test_utts) if test_utts else None,
    }
    log.info("audit of %s: %d items, %d findings", source, len(utts), len(findings))
    return AuditResult(str(source), None if against is None else str(against), opts, tuple(findings), stats,
                       coverage, tuple(attribution), tuple(utts), by_id)


__all__ = ["AuditOptions", "AuditResult", "run_audit"]
