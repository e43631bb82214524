"""Monitor stage: hallucination and failure markers per request, rates per window.

- ``no_speech_text``: text on audio with no speech (speech ratio below ``no_speech_ratio``, output not
  empty). Needs ``speech_ratio`` in the log.
- ``repetition``: a repetition loop. With ``text`` logged: some word 3-gram occurs ``repeat_min`` times or
  more; without text: words per second above ``loop_wps_factor`` x the reference's 99th percentile
  (a proxy, labelled as such).
- ``wps_out_of_range``: words per second outside the reference's [p01, p99] (about 2 % of reference
  traffic by construction, so compare the rate with that, not with 0).
- ``empty_on_speech``: empty output while the speech ratio says speech (>= ``speech_ratio_for_empty``).

A rate is (requests flagged) / (requests where the marker can be judged), with a Wilson interval.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from voxproof.metrics.intervals import wilson  # re-exported: monitor.rules imports it from here
from voxproof.monitor.profile import ReferenceProfile, ok_mask
from voxproof.monitor.source import RequestBatch

MARKERS = ("no_speech_text", "repetition", "wps_out_of_range", "empty_on_speech")


@dataclass(frozen=True)
class MarkerSettings:
    no_speech_ratio: float = 0.05
    speech_ratio_for_empty: float = 0.3
    repeat_min: int = 4
    loop_wps_factor: float = 2.0


@dataclass(frozen=True)
class MarkerRate:
    marker: str
    flagged: int
    judged: int
    low: float
    high: float
    note: str | None = None

    @property
    def rate(self) -> float:
        return self.flagged / self.judged if self.judged else math.nan

    def to_dict(self) -> dict[str, Any]:
        f = lambda x: None if not math.isfinite(x) else round(x, 6)
        return {"marker": self.marker, "flagged": self.flagged, "judged": self.judged, "rate": f(self.rate),
                "low": f(self.low), "high": f(self.high), "note": self.note}


def _has_text(text: np.ndarray) -> np.ndarray:
    return np.fromiter(map(isinstance, text, repeat(str)), dtype=bool, count=len(text))


def _repeats(text: str | None, repeat_min: int) -> bool:
    if not text:
        return False
    words = text.lower().split()
    grams = Counter(tuple(words[i:i + 3]) for i in range(len(words) - 2))
    return bool(grams) and max(grams.values()) >= repeat_min


def marker_flags(batch: RequestBatch, profile: ReferenceProfile | None,
                 settings: MarkerSettings = MarkerSettings()) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per marker: (flagged, judged) boolean arrays over the rows of ``batch``."""
    ok = ok_mask(batch)
    words = batch.get("words")
    speech = batch.get("speech_ratio")
    wps = batch.get("words_per_s")
    has_speech = np.isfinite(speech)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    judged = ok & has_speech & np.isfinite(words)
    out["no_speech_text"] = (judged & (speech < settings.no_speech_ratio) & (words > 0), judged)
    judged = ok & has_speech & np.isfinite(words) & (speech >= settings.speech_ratio_for_empty)
    out["empty_on_speech"] = (judged & (words == 0), judged)
    ref = profile.numeric.get("words_per_s") if profile is not None else None
    if ref is not None and ref.available:
        lo, hi = ref.percentiles.get("p01", math.nan), ref.percentiles.get("p99", math.nan)
        judged = ok & np.isfinite(wps)
        out["wps_out_of_range"] = (judged & ((wps < lo) | (wps > hi)), judged)
    else:
        out["wps_out_of_range"] = (np.zeros(batch.n, bool), np.zeros(batch.n, bool))
    text = batch.get("text")
    has_text = _has_text(text)
    rep = np.zeros(batch.n, dtype=bool)
    idx = np.flatnonzero(ok & has_text)
    rep[idx] = [_repeats(text[i], settings.repeat_min) for i in idx]
    if ref is not None and ref.available and math.isfinite(ref.percentiles.get("p99", math.nan)):
        proxy = ok & ~has_text & np.isfinite(wps) & (wps > settings.loop_wps_factor * ref.percentiles["p99"])
        rep |= proxy
        judged = ok & (has_text | np.isfinite(wps))
    else:
        judged = ok & has_text
    out["repetition"] = (rep, judged)
    return out


def marker_rates(batch: RequestBatch, profile: ReferenceProfile | None,
                 settings: MarkerSettings = MarkerSettings()) -> dict[str, MarkerRate]:
    """Marker rates of a window with Wilson intervals; a marker nothing could judge says why."""
    rates: dict[str, MarkerRate] = {}
    for name, (flag, judged) in marker_flags(batch, profile, settings).items():
        k, n = int(flag.sum()), int(judged.sum())
        low, high = wilson(k, n)
        note = None
        if n == 0:
            note = {"no_speech_text": "n/a (no speech_ratio in the log)",
                    "empty_on_speech": "n/a (no speech_ratio in the log, or no speech)",
                    "wps_out_of_range": "n/a (no words_per_s in the reference or the log)",
                    "repetition": "n/a (no text or words_per_s)"}[name]
        elif name == "repetition" and not _has_text(batch.get("text")).any():
            note = "proxy: words/s above 2x the reference p99 (no text logged)"
        rates[name] = MarkerRate(name, k, n, low, high, note)
    return rates
