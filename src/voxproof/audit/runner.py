"""The audit pipeline: manifest (streamed) -> per-item analysis (pool + cache) -> the audit's on-disk
``ItemStore`` -> every check stage, reading streams and SQL aggregates from the store -> ``AuditResult``
(findings, statistics, coverage, attribution, provenance) -> JSON, HTML, datasheet and ``--fix`` outputs.

Memory does not hold one object per item: findings go to a ``FindingLog`` in the same store; what stays
in memory is small aggregates, one stage's duplicate clusters and, while the near-duplicate search runs,
its index (bounded by ``fingerprint.find_near_duplicates``).
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from voxproof.audit.analyse import analyse_all
from voxproof.audit.cache import AnalysisCache
from voxproof.audit.contamination import Side, check_contamination
from voxproof.audit.coverage import Coverage, compute_coverage, coverage_findings
from voxproof.audit.duplicates import duplicate_transcripts, exact_duplicates, near_duplicates, transcript_key
from voxproof.audit.findings import SEVERITIES, Finding, FindingLog
from voxproof.audit.licences import INTENDED_USES, check_licences
from voxproof.audit.pii import check_pii
from voxproof.audit.quality import SignalThresholds, signal_findings
from voxproof.audit.signal import ItemAnalysis, resolve_vad
from voxproof.audit.store import ItemStore
from voxproof.audit.transcript import TranscriptThresholds, check_asr, check_rate, check_text
from voxproof.errors import DataError
from voxproof.manifest.utterance import Utterance

log = logging.getLogger("voxproof.audit")

CACHE_NAME = "audit-cache.sqlite"
STORE_NAME = "audit-items.sqlite"


@dataclass(frozen=True)
class AuditOptions:
    """Every setting of an audit; the CLI flags and ``-O name=value`` are built from this class."""

    workers: int = 0  # 0 = every core
    vad: Literal["silero", "energy"] = "silero"
    fail_on: Literal["info", "low", "medium", "high", "critical"] = "high"
    intended_use: Literal["any", "research", "commercial"] = "any"
    asr: str | None = None  # recogniser for label-noise checks (e.g. "whisper")
    asr_max_wer: float = 0.6  # tiny.en errs up to ~55% on some clean test-other clips
    asr_min_wer: float = 0.25  # below this WER a disagreement is never judged label noise
    asr_second: str | None = "auto"  # second recogniser for the agreement evidence: auto = sphinx, none = off
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
    allow_url_host: tuple[str, ...] = ()  # hosts manifest URLs may be fetched from (none: URLs refused)
    poison: bool = False  # poisoning scan: repeated short sounds, shared tones, label flips (with asr)

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITIES:
            raise ValueError(f"fail_on must be one of {', '.join(SEVERITIES)}, got {self.fail_on!r}")
        if self.intended_use not in INTENDED_USES:
            raise ValueError(f"intended_use must be one of {', '.join(INTENDED_USES)}, got {self.intended_use!r}")
        if self.vad not in ("silero", "energy"):
            raise ValueError(f"vad must be silero or energy, got {self.vad!r}")
        if not 0 < self.near_max_ber < 0.5:
            raise ValueError(f"near_max_ber must be in (0, 0.5), got {self.near_max_ber}")
        self.audio_limits()  # validates allow_url_host
        if self.asr:
            from voxproof.audit.label_noise import LabelNoiseRule

            LabelNoiseRule(min_wer=self.asr_min_wer, max_wer=self.asr_max_wer)  # refuses NaN/inf/out of range
            if self.asr_second and self.asr_second.lower() not in ("auto", "none", "off"):
                from voxproof.backends.registry import get_spec

                get_spec(self.asr_second, kind="asr")  # an unknown name is a usage error before any decoding

    def audio_limits(self) -> Any:
        """The decoder limits of the audit: the shared default (:data:`voxproof.audio.io.DEFAULT_LIMITS`)
        with this audit's URL hosts."""
        from voxproof.audio.io import DEFAULT_LIMITS

        return DEFAULT_LIMITS.replace(url_hosts=tuple(self.allow_url_host))


@dataclass(frozen=True)
class AuditResult:
    """What an audit found. ``stats`` holds per-stage numbers (timings, counts, index stats). The audited
    items stay on disk in ``store`` (streamed by ``utterances()``, e.g. for the fix writer and the
    datasheet); ``workdir`` keeps a temporary store directory alive as long as the result."""

    source: str
    against: str | None
    options: AuditOptions
    findings: FindingLog
    stats: dict[str, Any]
    coverage: Coverage
    attribution: tuple[dict[str, Any], ...]
    store: ItemStore | None = field(repr=False, default=None)
    workdir: Any = field(repr=False, default=None)

    def failing(self) -> int:
        """How many findings are at or above ``options.fail_on`` (the audit fails when any are)."""
        return self.findings.count_at_or_above(self.options.fail_on)

    def utterances(self) -> Iterator[Utterance]:
        """The audited manifest's utterances, in order, streamed from the store."""
        if self.store is None:
            return iter(())
        return self.store.utterances(0)

    def analysis(self, item_id: str) -> ItemAnalysis | None:
        """One audited item's measures and fingerprint (None for an unknown id)."""
        return self.store.analysis(item_id) if self.store is not None else None

    def to_dict(self, findings: bool = True) -> dict[str, Any]:
        """The whole result as plain data; ``findings=False`` leaves out the (possibly long) list, which
        ``report.write_json`` streams instead."""
        from voxproof import __version__
        from voxproof.options import options_dict

        data = {
            "type": "audit",
            "schema": 1,
            "source": self.source,
            "against": self.against,
            "voxproof_version": __version__,
            "options": options_dict(self.options),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "counts": self.findings.counts(),
            "fail_on": self.options.fail_on,
            "failed": bool(self.failing()),
            "stats": self.stats,
            "coverage": self.coverage.to_dict(),
            "attribution": list(self.attribution),
        }
        if findings:
            data["findings"] = [f.to_dict() for f in self.findings.by_severity()]
        return data


_SPLIT_ORDER = {"train": 0, "training": 0, "dev": 1, "valid": 1, "validation": 1, "val": 1, "test": 2, "eval": 2}
AUDITED, AGAINST = "\x00audited", "\x00against"  # part names of the two datasets of --against


def part_side(store: ItemStore, part: str) -> Side:
    """The contamination view of one part of the store (lazy: nothing is loaded until a check asks)."""
    span = [("part", part)]
    return Side(store.view("id", span), store.view("json_extract(utt, '$.text')", span),
                store.view("speaker", span), store.view("pcm_sha1", span), store.view("fp", span))


def split_leakage(store: ItemStore, opts: AuditOptions) -> list[Finding]:
    """Contamination checks between the splits of one manifest (tag ``split``), training-like first:
    findings name the items of the earlier split."""
    names = sorted(store.parts(), key=lambda s: (_SPLIT_ORDER.get(s.lower(), 1), s))
    found: list[Finding] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for f in check_contamination(part_side(store, a), part_side(store, b),
                                         max_ber=opts.near_max_ber, ngram=opts.ngram, min_overlap=opts.ngram_overlap):
                found.append(Finding(f.kind, f.severity, f.items, f"[{a} vs {b}] {f.message}",
                                     {**f.evidence, "splits": [a, b]}, f.action))
    return found


def _read(source: str | Path, fmt: str | None) -> Iterator[Utterance]:
    from voxproof.manifest import read_manifest

    return read_manifest(source, format=fmt)


def _ingest(store: ItemStore, side: int, utts: Iterable[Utterance], part: Callable[[Utterance], str | None],
            options: AuditOptions, cache: AnalysisCache | None,
            progress: Callable[[str], None] | None) -> dict[str, Any]:
    """Analyse a stream of utterances (pool + cache) into ``store``; only the worker window is in memory."""
    window: deque[Utterance] = deque()

    def feed() -> Iterator[Utterance]:
        for u in utts:
            window.append(u)
            yield u

    it, stats = analyse_all(feed(), vad=options.vad, workers=options.workers, cache=cache, limits=options.audio_limits(),
                            progress=(lambda n: progress(f"analysed {n} items")) if progress else None)

    def rows() -> Iterator[tuple[Utterance, ItemAnalysis]]:
        for a in it:
            u = window.popleft()
            assert a.id == u.id, (a.id, u.id)
            yield u, a

    store.add(side, rows(), part)
    return stats().to_dict()


def _open_store(out_dir: Path | None, opts: AuditOptions) -> tuple[ItemStore, Any]:
    holder = None
    if out_dir is None:
        holder = tempfile.TemporaryDirectory(prefix="voxproof-audit-")
        path = Path(holder.name) / STORE_NAME
    else:
        path = out_dir / STORE_NAME
    return ItemStore(path, text_key=lambda t: transcript_key(t, opts.transcript_min_words)), holder


def run_audit(
    source: str | Path,
    *,
    against: str | Path | None = None,
    out_dir: str | Path | None = None,
    options: AuditOptions | None = None,
    items: Iterable[Utterance] | None = None,
    against_items: Iterable[Utterance] | None = None,
    format: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit the manifest at ``source`` (or the given ``items``), optionally against a second dataset.

    Items are streamed: each is analysed and written to the audit's store (``OUT/audit-items.sqlite``,
    or a temporary directory without ``out_dir``), then every stage reads the store. ``out_dir`` also
    holds the per-item cache (resumable audits). ``format`` forces the manifest format.
    Raises :class:`DataError` when the manifest is empty or no item could be decoded.
    """
    opts = options or AuditOptions()
    vad_used, vad_note = resolve_vad(opts.vad)
    vad_record = {"requested": opts.vad, "used": vad_used, "reason": vad_note}
    if vad_used != opts.vad:
        log.warning("%s", vad_note)
        opts = replace(opts, vad=vad_used)  # the recorded options (and the cache key) name what ran
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    store, holder = _open_store(out, opts)
    cache_path = out / CACHE_NAME if (out is not None and opts.cache) else None
    cache = AnalysisCache(cache_path) if cache_path is not None else None
    with_against = against is not None or against_items is not None
    try:
        utts = items if items is not None else _read(source, format)
        part = (lambda u: AUDITED) if with_against else (lambda u: u.tags.get("split") or None)
        analyse_stats = _ingest(store, 0, utts, part, opts, cache, progress)
        timings["analyse"] = time.perf_counter() - t0
        against_stats = None
        if with_against:
            t = time.perf_counter()
            test_utts = against_items if against_items is not None else _read(against, format)  # type: ignore[arg-type]
            against_stats = _ingest(store, 1, test_utts, lambda u: AGAINST, opts, cache, progress)
            timings["analyse_against"] = time.perf_counter() - t
    finally:
        if cache is not None:
            cache.close()
    store.finish()
    n_items = store.count(0)
    if not n_items:
        raise DataError(f"manifest {source} has no items: nothing to audit")
    if not store.scalar("SELECT 1 FROM items WHERE side = 0 AND ok = 1 LIMIT 1"):
        first = store.scalar("SELECT error FROM items WHERE side = 0 ORDER BY seq LIMIT 1")
        raise DataError(f"none of the {n_items} item(s) in {source} could be decoded "
                        f"(first error: {first}); check the audio paths")
    findings = FindingLog(store.conn)
    dup_ids = [i for (i,) in store.rows("SELECT id FROM items WHERE side = 0 GROUP BY id HAVING COUNT(*) > 1")]
    if dup_ids:
        findings.append(Finding("manifest.duplicate_id", "high", tuple(dup_ids),
                                f"{len(dup_ids)} id(s) used by more than one item", {"count": len(dup_ids)}))

    say = progress or (lambda message: None)
    say(f"{n_items} items analysed; signal checks")
    t = time.perf_counter()
    sig_th = SignalThresholds(clip_ratio=opts.clip_ratio, dc_offset=opts.dc_offset,
                              min_speech_ratio=opts.min_speech_ratio, min_snr_db=opts.min_snr_db,
                              min_bandwidth_share=opts.min_bandwidth_share, duration_z=opts.duration_z,
                              sample_rate=opts.sample_rate)
    signal_stats = signal_findings(store, sig_th, findings)
    timings["signal"] = time.perf_counter() - t

    say("transcript checks")
    t = time.perf_counter()
    findings.extend(check_text(store.utterances(0)))
    rate_findings, rate_stats = check_rate(store, TranscriptThresholds(cps_z=opts.cps_z))
    findings.extend(rate_findings)
    asr_stats = None
    if opts.asr:
        decodable = (u for u, a in store.pairs(0) if a.ok)
        from voxproof.audit.label_noise import LabelNoiseRule, second_recogniser

        rule = LabelNoiseRule(min_wer=opts.asr_min_wer, max_wer=opts.asr_max_wer)
        asr_findings, asr_stats = check_asr(decodable, opts.asr, max_wer=opts.asr_max_wer, normalizer=opts.normalizer,
                                            cache_path=cache_path, limits=opts.audio_limits(), rule=rule,
                                            second=second_recogniser(opts.asr, opts.asr_second),
                                            progress=lambda n: say(f"label noise: {n} items transcribed"))
        findings.extend(asr_findings)
        if opts.poison:
            from voxproof.audit.label_flips import contradicted_items, find_label_flips

            flagged = contradicted_items(asr_findings)
            failed = {i for f in asr_findings if f.kind == "transcript.asr_failed" for i in f.items}
            findings.extend(find_label_flips(
                (u for u, a in store.pairs(0) if a.ok and u.text and u.id not in failed), flagged))
    timings["transcript"] = time.perf_counter() - t

    say("duplicate search")
    t = time.perf_counter()
    side0 = [("side", 0)]
    exact = exact_duplicates(store.groups("pcm_sha1", "side = 0 AND ok = 1"))
    near, index_stats = near_duplicates(store.view("id", side0), store.view("fp", side0),
                                        store.view("pcm_sha1", side0), max_ber=opts.near_max_ber)
    timings["near_duplicate_search"] = index_stats.seconds
    audio_dups = {i for f in exact + near for i in f.items}
    findings.extend(exact + near)
    findings.extend(duplicate_transcripts(store.groups("text_key", "side = 0"), exclude_ids=audio_dups))
    timings["duplicates"] = time.perf_counter() - t
    if opts.poison:
        from voxproof.audit.poison import find_repeated_sounds

        say("poisoning scan")
        t = time.perf_counter()
        from voxproof.audit.tones import find_shared_tones

        findings.extend(find_repeated_sounds(store.rows(
            "SELECT id, fp, json_extract(utt, '$.text') FROM items WHERE side = 0 AND ok = 1 ORDER BY seq")))
        findings.extend(find_shared_tones(store.rows(
            "SELECT id, speaker, json_extract(analysis, '$.features.tone_hz'), "
            "json_extract(analysis, '$.features.tone_prominence_db'), sample_rate, json_extract(utt, '$.text') "
            "FROM items WHERE side = 0 AND ok = 1 ORDER BY seq")))
        timings["poison"] = time.perf_counter() - t

    say("contamination" if with_against else "split leakage")
    t = time.perf_counter()
    if with_against:
        findings.extend(check_contamination(part_side(store, AUDITED), part_side(store, AGAINST),
                                            max_ber=opts.near_max_ber, ngram=opts.ngram,
                                            min_overlap=opts.ngram_overlap))
        timings["contamination"] = time.perf_counter() - t
    else:
        findings.extend(split_leakage(store, opts))
        timings["split_leakage"] = time.perf_counter() - t

    say("coverage, licences, personal data")
    t = time.perf_counter()
    coverage = compute_coverage((u, (a.duration or 0.0) if a.ok else 0.0) for u, a in store.pairs(0))
    findings.extend(coverage_findings(coverage))
    lic_findings, attribution = check_licences(store.utterances(0), opts.intended_use)
    findings.extend(lic_findings)
    findings.extend(check_pii(store.utterances(0)))
    findings.flush()
    timings["coverage_licences_pii"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    stats = {
        "items": n_items,
        "vad": vad_record,
        "analysis": analyse_stats,
        "analysis_against": against_stats,
        "signal": signal_stats,
        "transcript_rate": rate_stats,
        "asr": asr_stats,
        "near_duplicate_index": index_stats.__dict__,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "against_items": store.count(1) if with_against else None,
    }
    log.debug("audit of %s: %d items, %d findings", source, n_items, len(findings))
    return AuditResult(str(source), None if against is None else str(against), opts, findings, stats,
                       coverage, tuple(attribution), store, holder)


__all__ = ["AuditOptions", "AuditResult", "run_audit"]
