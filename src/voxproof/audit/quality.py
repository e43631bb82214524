"""Audit stage 1, corpus view: turns the per-file measures of ``signal`` into findings: decode errors,
sample-rate and channel mismatches (against the corpus majority or a declared value), duration outliers
(median/MAD on a log scale), clipping, DC offset, missing speech, low SNR, low level, and a narrow
effective bandwidth (an upsampled recording).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.audit.findings import Finding
from voxproof.audit.signal import ItemAnalysis
from voxproof.audit.transcript import robust_z


@dataclass(frozen=True)
class SignalThresholds:
    clip_ratio: float = 0.001  # share of samples on flat runs at the peak
    dc_offset: float = 0.02  # |mean| in full-scale units
    min_speech_ratio: float = 0.1
    min_snr_db: float = 10.0
    min_loudness_dbfs: float = -45.0
    min_bandwidth_share: float = 0.6  # effective bandwidth / Nyquist
    duration_z: float = 5.0
    duration_factor: float = 3.0
    min_duration: float = 0.1
    sample_rate: int | None = None  # declared rate; None = corpus majority
    channels: int | None = None


def _group(kind: str, severity: str, ids: list[str], message: str, evidence: dict, action: str = "flag") -> Finding:
    return Finding(kind, severity, tuple(ids), message, evidence, action)


def _mismatches(ok: Sequence[ItemAnalysis], attr: str, expected: Any, kind: str, severity: str, stats: dict,
                stats_key: str, message: Callable[[int, Any, Any], str]) -> list[Finding]:
    """One finding per value of ``attr`` that differs from ``expected`` (default: the most common value);
    the value counts go into ``stats[stats_key]``."""
    counts = Counter(getattr(a, attr) for a in ok)
    expected = expected or counts.most_common(1)[0][0]
    stats[stats_key] = {str(k): v for k, v in counts.items()}
    out = []
    for value in counts:
        if value != expected:
            ids = [a.id for a in ok if getattr(a, attr) == value]
            out.append(_group(kind, severity, ids, message(len(ids), value, expected),
                              {attr: value, "expected": expected}))
    return out


def signal_findings(analyses: Sequence[ItemAnalysis], th: SignalThresholds) -> tuple[list[Finding], dict]:
    """Findings and corpus statistics (rates, channels, duration median) from per-item analyses."""
    findings: list[Finding] = []
    errors: dict[str, list[ItemAnalysis]] = {}
    ok = [a for a in analyses if a.ok]
    for a in analyses:
        if not a.ok:
            errors.setdefault((a.error or "").split(":", 1)[0], []).append(a)
    for etype, items in errors.items():
        findings.append(
            _group("signal.decode_error", "high", [a.id for a in items],
                   f"{len(items)} item(s) could not be decoded ({etype})",
                   {"error_type": etype, "examples": [a.error for a in items[:5]], "count": len(items)}, "exclude")
        )
    stats: dict = {"decoded": len(ok), "failed": len(analyses) - len(ok)}
    if not ok:
        return findings, stats
    findings += _mismatches(ok, "sample_rate", th.sample_rate, "signal.sample_rate_mismatch", "medium", stats,
                            "sample_rates", lambda n, v, e: f"{n} item(s) at {v} Hz where the corpus is at {e} Hz")
    findings += _mismatches(ok, "channels", th.channels, "signal.channel_mismatch", "low", stats, "channels",
                            lambda n, v, e: f"{n} item(s) with {v} channel(s) where the corpus has {e}")
    durations = np.array([a.duration or 0.0 for a in ok])
    stats["hours"] = float(durations.sum() / 3600)
    stats["median_duration"] = float(np.median(durations))
    short = [a.id for a, d in zip(ok, durations) if d < th.min_duration]
    if short:
        findings.append(_group("signal.too_short", "medium", short,
                               f"{len(short)} item(s) shorter than {th.min_duration} s",
                               {"min_duration": th.min_duration}, "exclude"))
    if len(ok) >= 12:
        logd = np.log(np.maximum(durations, 1e-3))
        z, med, _ = robust_z(logd)
        for a, zi, ld in zip(ok, z, logd):
            if abs(zi) > th.duration_z and abs(ld - med) > math.log(th.duration_factor) and a.id not in short:
                findings.append(
                    _group("signal.duration_outlier", "low", [a.id],
                           f"{a.duration:.2f} s against a corpus median of {math.exp(med):.2f} s",
                           {"duration": round(a.duration or 0.0, 3), "median": round(math.exp(med), 3),
                            "robust_z": round(float(zi), 2)})
                )
    for a in ok:
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
    feats = {k: [a.features[k] for a in ok if k in a.features]
             for k in ("speech_ratio", "snr_db", "loudness_dbfs", "bandwidth_hz", "clip_ratio")}
    stats["medians"] = {k: round(float(np.median(v)), 4) for k, v in feats.items() if v}
    return findings, stats
