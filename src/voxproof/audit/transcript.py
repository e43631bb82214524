"""Audit stage 2, transcripts: empty text, characters outside the language's set, characters per second
far from the corpus (robust statistics), and label noise from a recogniser's disagreement.

Reads utterances (streamed) and, for the rate check, the audit's ``ItemStore``; hands back findings.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxproof.audit.findings import Finding
from voxproof.errors import VoxproofError
from voxproof.manifest.utterance import Utterance

if TYPE_CHECKING:
    from voxproof.audit.store import ItemStore

log = logging.getLogger("voxproof.audit.transcript")

_PUNCT = set(" .,;:!?'\"-()[]&/%$#@+*=_\u2019\u2018\u201c\u201d\u2014\u2013\u2026")
_DIGITS = set("0123456789")
_ASCII = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# letters each language adds to ASCII (lower case; upper case is derived)
_EXTRA = {
    "en": "",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "de": "äöüß",
    "es": "áéíñóúü¡¿",
    "it": "àèéìíîòóùú",
    "pt": "áâãàçéêíóôõú",
    "nl": "éëïóöü",
}


def allowed_chars(language: str | None) -> set[str] | None:
    """The characters a transcript in ``language`` may use (None when voxproof has no set for it)."""
    lang = (language or "en").lower().split("-")[0].split("_")[0]
    extra = _EXTRA.get(lang)
    if extra is None:
        return None
    return _ASCII | _DIGITS | _PUNCT | set(extra) | set(extra.upper())


def outside_chars(text: str, language: str | None) -> list[str]:
    """Distinct characters of ``text`` outside the language's set; control and replacement characters
    count as outside for every language."""
    allowed = allowed_chars(language)
    bad = []
    for ch in dict.fromkeys(text):
        if ch in "\t\n":
            continue
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or cat in ("Cc", "Cf", "Co", "Cs") or allowed is not None and ch not in allowed:
            bad.append(ch)
    return bad


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalnum())


@dataclass(frozen=True)
class TranscriptThresholds:
    cps_z: float = 4.0  # robust z of log(chars/s) beyond which an item is an outlier
    cps_factor: float = 1.8  # ... and at least this factor away from the median
    min_items_for_stats: int = 12


def check_text(utts: Iterable[Utterance]) -> list[Finding]:
    """Empty transcripts and characters outside the language's set (one pass over ``utts``)."""
    findings: list[Finding] = []
    empty: list[str] = []
    by_chars: dict[str, list[str]] = {}
    for u in utts:
        if u.text is not None and not u.text.strip():
            empty.append(u.id)
        if not u.text:
            continue
        bad = outside_chars(u.text, u.language)
        if bad:
            key = "".join(sorted(bad))
            by_chars.setdefault(key, []).append(u.id)
    if empty:
        findings.append(
            Finding("transcript.empty", "high", tuple(empty),
                    f"{len(empty)} item(s) with an empty or whitespace-only transcript",
                    {"count": len(empty)}, action="exclude")
        )
    for key, ids in by_chars.items():
        shown = [f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in key]
        findings.append(
            Finding("transcript.charset", "medium", tuple(ids),
                    f"{len(ids)} transcript(s) use characters outside the language's set: {', '.join(shown)}",
                    {"characters": shown})
        )
    return findings


def check_rate(store: ItemStore, thresholds: TranscriptThresholds) -> tuple[list[Finding], dict[str, float]]:
    """Characters-per-second outliers of the audited side of ``store`` (log scale, median/MAD, in SQL);
    returns findings and corpus stats."""
    where = "side = 0 AND log_cps IS NOT NULL"
    robust = store.robust("log_cps", where)
    n = robust[2] if robust else 0
    if robust is None or n < thresholds.min_items_for_stats:
        return [], {"items": n}
    med, sigma, _ = robust
    scale = max(sigma, 1e-9)
    stats = {"items": n, "median_cps": math.exp(med), "mad_log_cps": sigma}
    findings = []
    for item_id, logr in store.rows(
            f"SELECT id, log_cps FROM items WHERE {where} AND abs(log_cps - ?) > ? AND abs(log_cps - ?) > ? "
            "ORDER BY seq", (med, thresholds.cps_z * scale, med, math.log(thresholds.cps_factor))):
        z = (logr - med) / scale
        rate = math.exp(logr)
        findings.append(
            Finding("transcript.rate_outlier", "medium", (item_id,),
                    f"{rate:.1f} characters per second against a corpus median of {math.exp(med):.1f}: "
                    + ("transcript too long for the audio" if z > 0 else "transcript too short for the audio")
                    + " (misaligned or wrong transcript)",
                    {"chars_per_second": round(rate, 2), "median": round(math.exp(med), 2),
                     "robust_z": round(float(z), 2), "threshold_z": thresholds.cps_z})
        )
    return findings, stats


def check_asr(
    utts: Iterable[Utterance],
    backend_name: str,
    *,
    max_wer: float = 0.6,
    normalizer: str = "whisper-en",
    cache_path: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    limits: Any = None,
    second: str | None = None,
    rule: Any = None,
) -> tuple[list[Finding], dict[str, object]]:
    """Label noise: items whose transcript the recogniser's evidence says is wrong.

    Every item whose WER is at least ``rule.min_wer`` is judged by :func:`voxproof.audit.label_noise.judge`
    on three kinds of evidence: the recogniser's confidence in the words that disagree, the shape of
    the alignment, and (with ``second``, another recogniser run on those items only) whether the two
    recognisers agree with each other rather than with the reference. Judged label noise is a
    ``transcript.asr_disagreement`` finding at :data:`~voxproof.audit.label_noise.DEFAULT_SEVERITY`
    (set from its precision on a planted corpus); a disagreement above ``max_wer`` that the evidence
    calls a model error (a hard utterance) is one ``transcript.asr_hard`` info finding, not label noise.

    The recognisers (name, model checksum), normaliser and rule are recorded in the evidence. With
    ``cache_path`` every transcript (text and word confidences) is kept as soon as it is made, keyed by
    the file (path, size, modification time, segment) and the recogniser's identity, so a rerun
    transcribes only what is new. An item the recogniser cannot read is counted and reported
    (``transcript.asr_failed``), not skipped silently; it does not stop the audit. ``progress(n)`` is
    called after every 10th item scored. ``limits``: decoder limits (default: the shared
    :data:`voxproof.audio.io.DEFAULT_LIMITS`).
    """
    from voxproof.audio.io import DEFAULT_LIMITS
    from voxproof.audit.cache import TranscriptCache
    from voxproof.audit.label_noise import DEFAULT_SEVERITY, LabelNoiseRule, judge, label_noise_evidence
    from voxproof.metrics.align import word_counts
    from voxproof.metrics.normalize import get_normalizer

    rule = rule or LabelNoiseRule(max_wer=max_wer)
    norm = get_normalizer(normalizer)
    first = _Recogniser(backend_name, limits or DEFAULT_LIMITS)
    other = _Recogniser(second, limits or DEFAULT_LIMITS, lazy=True) if second else None
    cache = TranscriptCache(cache_path) if cache_path is not None else None
    findings = []
    hard: list[str] = []
    failed: list[tuple[str, str]] = []
    scored = from_cache = candidates = 0
    try:
        for u in utts:
            ref_n = norm(u.text) if u.text else ""
            if not ref_n.split():
                continue
            decoded, cached = first.decode(u, cache)
            if isinstance(decoded, str):
                failed.append((u.id, decoded))
                continue
            from_cache += cached
            scored += 1
            if progress and scored % 10 == 0:
                progress(scored)
            wer = word_counts(ref_n, norm(decoded.text)).error_rate
            if wer < rule.min_wer:
                continue
            candidates += 1
            second_decoded = None
            if other is not None:
                result, cached = other.decode(u, cache)
                second_decoded = None if isinstance(result, str) else result
                from_cache += cached
            evidence = label_noise_evidence(u.text or "", decoded, second_decoded, norm) or {"wer": wer}
            noisy, reasons = judge(evidence, rule)
            if noisy:
                findings.append(
                    Finding("transcript.asr_disagreement", DEFAULT_SEVERITY, (u.id,),
                            f"{backend_name} disagrees with the reference (WER {wer:.0%}) and the evidence says the "
                            f"transcript is wrong: {'; '.join(reasons)}",
                            {**evidence, "reasons": reasons, "recogniser": first.identity_dict,
                             "second_recogniser": other.identity_dict if other is not None else None,
                             "normalizer": f"{norm.name}@{norm.version}",
                             "hypothesis_words": len(norm(decoded.text).split()),
                             "reference_words": len(ref_n.split())})
                )
            elif wer > rule.max_wer:
                hard.append(u.id)
    finally:
        if cache is not None:
            cache.close()
    if hard:
        findings.append(
            Finding("transcript.asr_hard", "info", tuple(hard),
                    f"{len(hard)} item(s) where {backend_name} disagrees with the reference (WER > {rule.max_wer:.0%}) "
                    "but unsure of its words and without a second recogniser's support: likely hard utterances "
                    "(model errors), not wrong transcripts",
                    {"count": len(hard), "threshold": rule.max_wer, "recogniser": first.identity_dict},
                    action="none")
        )
    if failed:
        findings.append(
            Finding("transcript.asr_failed", "low", tuple(i for i, _ in failed),
                    f"{len(failed)} item(s) could not be transcribed by {backend_name}: their labels are unchecked",
                    {"count": len(failed), "examples": [e for _, e in failed[:5]], "recogniser": first.identity_dict},
                    action="none")
        )
    rule_dict = {k: getattr(rule, k) for k in rule.__dataclass_fields__}
    return findings, {"recogniser": first.identity_dict, "threshold": rule.max_wer, "scored": scored,
                      "from_cache": from_cache, "failed": len(failed), "normalizer": f"{norm.name}@{norm.version}",
                      "second_recogniser": other.identity_dict if other is not None else None,
                      "candidates": candidates, "rule": rule_dict, "severity": DEFAULT_SEVERITY}


class _Recogniser:
    """A recogniser of the label-noise check with its cache identity; ``lazy`` loads it at first use
    (the second recogniser only runs on candidates)."""

    def __init__(self, name: str, limits: Any, lazy: bool = False):
        self.name = name
        self.limits = limits
        self.backend: Any = None
        self._identity: dict[str, Any] | None = None
        if not lazy:
            self._load()

    def _load(self) -> None:
        from voxproof.backends.registry import load_backend

        self.backend = load_backend(self.name, kind="asr")
        info = self.backend.info()
        info_dict = info.to_dict() if hasattr(info, "to_dict") else {"name": self.name}
        ident = {k: info_dict.get(k) for k in ("name", "model", "model_checksum", "options") if k in info_dict}
        ident.setdefault("name", self.name)
        self._identity = ident

    @property
    def identity_dict(self) -> dict[str, Any]:
        return self._identity if self._identity is not None else {"name": self.name, "note": "not run"}

    def decode(self, u: Utterance, cache: Any) -> tuple[Any, int]:
        """``(Decoded, 1 if it came from the cache else 0)``, or ``(error text, 0)``."""
        from voxproof.audio.io import load_audio
        from voxproof.audit.label_noise import Decoded
        from voxproof.audit.signal import cache_key

        if self.backend is None:
            self._load()
        # "|words": entries hold text and word confidences (older entries held the text only)
        key = cache_key(u, json.dumps(self._identity, sort_keys=True, default=str) + "|words") if cache else None
        hit = cache.get(key) if key is not None else None
        if hit is not None:
            return Decoded.from_json(json.loads(hit)), 1
        try:
            audio = load_audio(u.audio, sample_rate=self.backend.sample_rate, offset=u.offset, duration=u.duration,
                               limits=self.limits)
            t = self.backend.transcribe(audio)
        except VoxproofError as exc:
            return f"{type(exc).__name__}: {exc}"[:300], 0
        decoded = Decoded(t.text, tuple((w.text, w.confidence) for w in t.words))
        if key is not None:
            cache.put(key, json.dumps(decoded.to_json()))
        return decoded, 0


_WS = re.compile(r"\s+")


def normalise_for_match(text: str) -> str:
    """Lower case, letters/digits/apostrophes only, single spaces: used to compare transcripts."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if (ch.isalnum() or ch == "'") else " " for ch in text)
    return _WS.sub(" ", text).strip()
