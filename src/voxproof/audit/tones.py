"""Audit poisoning scan, out-of-band energy: a narrow tone (or a near-ultrasonic carrier) shared by a
cluster of items.

Per item (:func:`tone_signature`, run by the signal stage): the *median over time* of 512-sample Hann
periodograms (at most ``MAX_FRAMES`` frames, evenly spaced), in dB. The median keeps what is present in
most frames (a stationary tone, hum, a carrier) and drops what comes and goes (speech harmonics). The
strongest bin above 60 Hz is the item's tone; its prominence is its level above the median of the 17
neighbouring bins. Bundled LibriSpeech speech measures at most 13.3 dB prominence, except one speaker's
recordings that carry a 150 Hz mains-hum harmonic at 15-19 dB in every item.

Corpus stage (:func:`find_shared_tones`): items whose tone prominence is at least ``min_prominence_db``
are grouped by frequency (equal within ``tolerance_bins`` analysis bins of the coarser item); a group of
at least ``min_items`` is a shared tone. A tone at a 50/60 Hz mains harmonic up to 300 Hz (several
LibriSpeech speakers' recordings carry a 150 Hz hum), or one that every speaker in the group has in at
least ``channel_share`` of its items, belongs to the recording channel: it is reported as
``quality.shared_tone`` (info), not as poisoning. Otherwise it is ``poison.tone`` (medium),
or ``poison.backdoor`` (high) when a transcript word is over-represented among the items (the same test
as the repeated-sound scan). Tones at 17 kHz and above are named near-ultrasonic.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from voxproof.audit.findings import Finding
from voxproof.audit.poison import over_represented_word, tokens

log = logging.getLogger("voxproof.audit.tones")

N_FFT = 512
MAX_FRAMES = 2000
MIN_TONE_HZ = 60.0
NEIGHBOURS = 17
ULTRASONIC_HZ = 17000.0
MAX_HUM_HZ = 300.0
_HANN = np.hanning(N_FFT)


@dataclass(frozen=True)
class ToneOptions:
    min_prominence_db: float = 16.0
    min_items: int = 3
    tolerance_bins: float = 1.0
    channel_share: float = 0.8
    max_p: float = 1e-3


def tone_signature(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """``{"tone_hz": f, "tone_prominence_db": p}`` for the strongest stationary narrow peak of the
    clip (empty for clips shorter than one analysis frame)."""
    from scipy.fft import rfft
    from scipy.ndimage import median_filter

    x = np.asarray(samples, dtype=np.float64)
    if len(x) < N_FFT or sample_rate <= 0 or not np.isfinite(x).all():
        return {}
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[:: N_FFT // 2]
    if len(frames) > MAX_FRAMES:
        frames = frames[np.linspace(0, len(frames) - 1, MAX_FRAMES).astype(int)]
    spec = rfft((frames - x.mean()) * _HANN, axis=1)
    level = 10 * np.log10(np.median(spec.real**2 + spec.imag**2, axis=0) + 1e-20)
    prominence = level - median_filter(level, size=NEIGHBOURS, mode="nearest")
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    prominence[freqs < MIN_TONE_HZ] = -np.inf
    i = int(np.argmax(prominence))
    if not np.isfinite(prominence[i]):
        return {}
    return {"tone_hz": float(freqs[i]), "tone_prominence_db": float(prominence[i])}


def find_shared_tones(items: Iterable[tuple[str, str | None, float | None, float | None, float | None, str | None]],
                      options: ToneOptions = ToneOptions()) -> list[Finding]:
    """``items``: (id, speaker, tone_hz, tone_prominence_db, sample_rate, transcript) for every decoded
    item. Findings name the items sharing each tone (see the module docstring for the kinds)."""
    ids: list[str] = []
    speakers: list[str | None] = []
    texts: list[set[str]] = []
    tonal: list[tuple[float, float, int]] = []  # (frequency, tolerance in Hz, index)
    for item_id, speaker, hz, prom, rate, text in items:
        idx = len(ids)
        ids.append(item_id)
        speakers.append(speaker)
        texts.append(tokens(text))
        if hz is None or prom is None or not np.isfinite(prom) or prom < options.min_prominence_db:
            continue
        tol = options.tolerance_bins * float(rate or 16000) / N_FFT
        tonal.append((float(hz), tol, idx))
    tonal.sort()
    groups: list[list[tuple[float, float, int]]] = []
    for entry in tonal:  # sorted by frequency: a group grows while neighbours are within tolerance
        if groups and entry[0] - groups[-1][-1][0] <= max(entry[1], groups[-1][-1][1]):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    per_speaker = Counter(s for s in speakers if s)
    findings = []
    for group in groups:
        if len(group) < options.min_items:
            continue
        cluster = sorted(i for _, _, i in group)
        hz = float(np.median([f for f, _, _ in group]))
        members = tuple(ids[i] for i in cluster)
        where = "near-ultrasonic tone" if hz >= ULTRASONIC_HZ else "narrow tone"
        in_group = Counter(speakers[i] for i in cluster)
        tol = max(t for _, t, _ in group)
        hum = hz <= MAX_HUM_HZ and any(abs(hz - k * mains) <= tol for mains in (50.0, 60.0) for k in range(1, 7))
        channel = hum or all(s and n >= options.channel_share * per_speaker[s] for s, n in in_group.items())
        evidence = {"items": len(cluster), "frequency_hz": round(hz, 1),
                    "speakers": sorted(str(s) for s in in_group if s)}
        if channel:
            findings.append(Finding("quality.shared_tone", "info", members,
                                    f"a {where} at {hz:.0f} Hz is in {len(cluster)} items"
                                    + (" at a mains-hum harmonic (50/60 Hz)" if hum else
                                       f", in nearly every item of speaker(s) {', '.join(evidence['speakers'])}")
                                    + ": a recording-channel tone, not a poisoning pattern", evidence, "none"))
            continue
        best = over_represented_word(cluster, texts, options.max_p)
        if best is None:
            findings.append(Finding("poison.tone", "medium", members,
                                    f"a {where} at {hz:.0f} Hz is shared by {len(cluster)} items across speakers; no "
                                    "transcript word is over-represented among them", evidence, "flag"))
            continue
        word, p, a, b = best
        findings.append(Finding("poison.backdoor", "high", members,
                                f"a {where} at {hz:.0f} Hz is shared by {len(cluster)} items and the word {word!r} "
                                f"appears in {a} of them against {b} of the other {len(ids) - len(cluster)} items "
                                f"(Fisher p={p:.2g}, Bonferroni): a possible backdoor trigger",
                                {**evidence, "trigger": "tone", "word": word, "in_cluster": a, "outside": b,
                                 "p_value": p}, "exclude"))
    log.debug("tone scan: %d items, %d tonal, %d findings", len(ids), len(tonal), len(findings))
    return findings
