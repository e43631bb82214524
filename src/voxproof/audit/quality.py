"""Audit stage 1, corpus view: turns the per-file measures of ``signal`` (read back from the audit's
``ItemStore``) into findings: decode errors, sample-rate and channel mismatches (against the corpus
majority or a declared value), duration outliers (median/MAD on a log scale), clipping, DC offset,
missing speech, low SNR, low level, and a narrow effective bandwidth (an upsampled recording).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voxproof.audit.findings import Finding, FindingSink
from voxproof.audit.signal import ItemAnalysis
from voxproof.audit.store import MEDIAN_FEATURES, ItemStore


@dataclass(frozen=True)
class SignalThresholds:
    clip_ratio: float = 0.001  # share of samples on flat runs at the peak
    dc_offset: float = 0.02  # |mean| in full-scale units
    min_speech_ratio: float = 0.1
    min_snr_db: float = 10.0
    min_loudness_dbfs: float = -45.0
    min_bandwidth_share: float = 0.6  # effective bandwidth / Nyquist
    # spectral mirror correlation (audit.signal.mirror_image) above which a file is an interpolated upsample:
    # 50 bundled LibriSpeech clips measure 0.02-0.19 as recorded and 0.98-1.00 after 8 kHz + linear interpolation
    min_mirror_correlation: float = 0.7
    duration_z: float = 5.0
    duration_factor: float = 3.0
    min_duration: float = 0.1
    sample_rate: int | None = None  # declared rate; None = corpus majority
    channels: int | None = None


_DECODED = "side = 0 AND ok = 1"  # the audited side's decodable items


def _group(kind: str, severity: str, ids: list[str], message: str, evidence: dict, action: str = "flag") -> Finding:
    return Finding(kind, severity, tuple(ids), message, evidence, action)


def _mismatches(store: ItemStore, column: str, expected: Any, kind: str, severity: str, stats: dict,
                stats_key: str, message: Callable[[int, Any, Any], str]) -> list[Finding]:
    """One finding per value of ``column`` that differs from ``expected`` (default: the most common
    value); the value counts go into ``stats[stats_key]``."""
    counts = dict(store.rows(f"SELECT {column}, COUNT(*) FROM items WHERE {_DECODED} GROUP BY {column} "
                             "ORDER BY COUNT(*) DESC"))
    expected = expected or next(iter(counts))
    stats[stats_key] = {str(k): v for k, v in counts.items()}
    out = []
    for value in counts:
        if value != expected:
            ids = [i for (i,) in store.rows(f"SELECT id FROM items WHERE {_DECODED} AND {column} IS ? ORDER BY seq",
                                             (value,))]
            out.append(_group(kind, severity, ids, message(len(ids), value, expected),
                              {column: value, "expected": expected}))
    return out


def item_findings(a: ItemAnalysis, th: SignalThresholds) -> list[Finding]:
    """The findings one decoded item earns on its own measures (clipping, DC, speech, SNR, level, band)."""
    findings: list[Finding] = []
    f = a.features
    clip = f.get("clip_ratio", 0.0)
    if clip >= th.clip_ratio:
        severe = clip >= 10 * th.clip_ratio
        findings.append(_group("signal.clipping", "high" if severe else "medium", [a.id],
                               f"{clip:.2%} of samples sit on flat runs at the peak (clipped)",
                               {"clip_ratio": round(clip, 5), "threshold": th.clip_ratio},
                               "exclude" if severe else "flag"))
    dc = f.get("dc_offset", 0.0)
    if abs(dc) > th.dc_offset:
        findings.append(_group("signal.dc_offset", "low", [a.id], f"DC offset {dc:+.3f} of full scale",
                               {"dc_offset": round(dc, 4), "threshold": th.dc_offset}))
    sr = f.get("speech_ratio")
    if sr is not None and sr < th.min_speech_ratio:
        none = sr < 0.02
        findings.append(_group("signal.no_speech" if none else "signal.low_speech", "high" if none else "medium",
                               [a.id], f"speech in {sr:.0%} of the audio",
                               {"speech_ratio": round(sr, 3), "threshold": th.min_speech_ratio},
                               "exclude" if none else "flag"))
    snr = f.get("snr_db")
    if snr is not None and snr < th.min_snr_db:
        findings.append(_group("signal.low_snr", "medium" if snr < th.min_snr_db - 5 else "low", [a.id],
                               f"estimated SNR {snr:.1f} dB", {"snr_db": round(snr, 2), "threshold": th.min_snr_db}))
    loud = f.get("loudness_dbfs")
    if loud is not None and loud < th.min_loudness_dbfs and (sr or 0) >= th.min_speech_ratio:
        findings.append(_group("signal.too_quiet", "low", [a.id], f"speech level {loud:.1f} dBFS",
                               {"loudness_dbfs": round(loud, 2), "threshold": th.min_loudness_dbfs}))
    bw, nyq = f.get("bandwidth_hz"), f.get("nyquist_hz")
    if bw is not None and nyq and nyq > 4000 and bw < th.min_bandwidth_share * nyq:
        likely = min((r for r in (4000, 5512.5, 8000, 11025, 16000) if r >= bw * 0.98), default=None)
        guess = f"; likely upsampled from {int(likely * 2)} Hz" if likely else ""
        findings.append(_group("signal.narrow_band", "medium", [a.id],
                               f"effective bandwidth {bw / 1000:.1f} kHz of a {nyq / 1000:.1f} kHz Nyquist{guess}",
                               {"bandwidth_hz": round(bw, 1), "nyquist_hz": nyq,
                                "threshold_share": th.min_bandwidth_share}))
    mirror, corr = f.get("mirror_nyquist_hz"), f.get("mirror_correlation")
    if mirror and corr is not None and corr >= th.min_mirror_correlation:
        findings.append(_group(
            "signal.upsampled_image", "medium", [a.id],
            f"the spectrum above {mirror / 1000:.1f} kHz mirrors the one below it (correlation {corr:.2f}): "
            f"likely upsampled from {int(mirror * 2)} Hz by interpolation, which leaves spectral images "
            "instead of real high-frequency content",
            {"original_nyquist_hz": mirror, "mirror_correlation": corr,
             "threshold": th.min_mirror_correlation, "likely_source_rate": int(mirror * 2)}))
    return findings


def signal_findings(store: ItemStore, th: SignalThresholds, out: FindingSink) -> dict:
    """Signal findings for the audited side of ``store``, appended to ``out`` as they are found (per-item
    checks on a stream of analyses, corpus checks in SQL); returns the corpus statistics (rates,
    channels, duration median, feature medians)."""
    errors: dict[str, list[tuple[str, str]]] = {}
    for item_id, error in store.rows("SELECT id, error FROM items WHERE side = 0 AND ok = 0 ORDER BY seq"):
        errors.setdefault((error or "").split(":", 1)[0], []).append((item_id, error))
    for etype, items in errors.items():
        out.append(
            _group("signal.decode_error", "high", [i for i, _ in items],
                   f"{len(items)} item(s) could not be decoded ({etype})",
                   {"error_type": etype, "examples": [e for _, e in items[:5]], "count": len(items)}, "exclude")
        )
    decoded = int(store.scalar(f"SELECT COUNT(*) FROM items WHERE {_DECODED}") or 0)
    stats: dict = {"decoded": decoded, "failed": store.count(0) - decoded}
    if not decoded:
        return stats
    out.extend(_mismatches(store, "sample_rate", th.sample_rate, "signal.sample_rate_mismatch", "medium", stats,
                           "sample_rates", lambda n, v, e: f"{n} item(s) at {v} Hz where the corpus is at {e} Hz"))
    out.extend(_mismatches(store, "channels", th.channels, "signal.channel_mismatch", "low", stats, "channels",
                           lambda n, v, e: f"{n} item(s) with {v} channel(s) where the corpus has {e}"))
    stats["hours"] = float(store.scalar(f"SELECT TOTAL(duration) FROM items WHERE {_DECODED}") / 3600)
    stats["median_duration"], _ = store.median("coalesce(duration, 0.0)", _DECODED)
    short = [i for (i,) in store.rows(f"SELECT id FROM items WHERE {_DECODED} AND coalesce(duration, 0) < ? "
                                      "ORDER BY seq", (th.min_duration,))]
    if short:
        out.append(_group("signal.too_short", "medium", short,
                          f"{len(short)} item(s) shorter than {th.min_duration} s",
                          {"min_duration": th.min_duration}, "exclude"))
    robust = store.robust("log_duration", _DECODED)
    if robust is not None and robust[2] >= 12:
        med, sigma, _ = robust
        scale = max(sigma, 1e-9)
        for item_id, dur, ld in store.rows(
                f"SELECT id, duration, log_duration FROM items WHERE {_DECODED} AND abs(log_duration - ?) > ? "
                "AND abs(log_duration - ?) > ? AND duration >= ? ORDER BY seq",
                (med, th.duration_z * scale, med, math.log(th.duration_factor), th.min_duration)):
            z = (ld - med) / scale
            out.append(
                _group("signal.duration_outlier", "low", [item_id],
                       f"{dur:.2f} s against a corpus median of {math.exp(med):.2f} s",
                       {"duration": round(dur or 0.0, 3), "median": round(math.exp(med), 3),
                        "robust_z": round(float(z), 2)})
            )
    for a in store.analyses(0, ok_only=True):
        out.extend(item_findings(a, th))
    medians = {}
    for k in MEDIAN_FEATURES:
        m, _ = store.median(k, _DECODED)
        if m is not None:
            medians[k] = round(m, 4)
    stats["medians"] = medians
    return stats
