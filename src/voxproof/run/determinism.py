"""``eval --repeat-check N``: are a recogniser's outputs deterministic on this machine?

Decodes a seeded sample of utterances twice with one model instance, once more with a fresh instance,
and (for backends with a ``cpu_threads`` option) once with one thread, then compares texts and word
confidences. A difference between repeats means the run-to-run noise of this machine is not zero; a
difference between thread counts means a figure depends on ``cpu_threads``; both are reported
utterance by utterance so a user can see what moves. Cross-machine differences (other instruction sets)
cannot be seen from one machine: :mod:`voxproof.run.cpu` records what would change them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxproof.audio.signal import Audio
from voxproof.backends.base import Transcript

log = logging.getLogger("voxproof.run.determinism")


@dataclass(frozen=True)
class PassComparison:
    """Pass ``name`` against the reference pass: how many utterances decoded to identical text, identical
    words with identical confidences, the largest confidence change, and the ids whose text changed."""

    name: str
    utterances: int
    same_text: int
    same_words: int
    max_confidence_change: float | None
    changed: tuple[str, ...]
    note: str | None = None

    @property
    def deterministic(self) -> bool | None:
        if self.note is not None:
            return None
        return self.same_text == self.utterances and self.same_words == self.utterances

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "utterances": self.utterances, "same_text": self.same_text,
                "same_words": self.same_words, "max_confidence_change": self.max_confidence_change,
                "changed": list(self.changed), "deterministic": self.deterministic, "note": self.note}


@dataclass(frozen=True)
class DeterminismReport:
    backend: str
    threads: int | None
    sample: tuple[str, ...]
    seed: int
    passes: tuple[PassComparison, ...]
    runtime: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def deterministic(self) -> bool:
        return all(p.deterministic is not False for p in self.passes)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "determinism_check", "backend": self.backend, "threads": self.threads,
                "seed": self.seed, "sample": list(self.sample), "deterministic": self.deterministic,
                "passes": [p.to_dict() for p in self.passes], "runtime": self.runtime,
                "seconds": round(self.seconds, 2)}


def _words(t: Transcript) -> list[tuple[str, float | None]]:
    return [(w.text, w.confidence) for w in t.words]


def compare_passes(name: str, ids: Sequence[str], ref: Sequence[Transcript], other: Sequence[Transcript]) -> PassComparison:
    """Pass ``other`` against ``ref``, utterance by utterance (same order as ``ids``)."""
    same_text = same_words = 0
    changed: list[str] = []
    worst: float | None = None
    for uid, a, b in zip(ids, ref, other):
        if a.text == b.text:
            same_text += 1
        else:
            changed.append(uid)
        wa, wb = _words(a), _words(b)
        if wa == wb:
            same_words += 1
        if [w for w, _ in wa] == [w for w, _ in wb]:
            for (_, ca), (_, cb) in zip(wa, wb):
                if ca is not None and cb is not None:
                    worst = max(worst or 0.0, abs(ca - cb))
    return PassComparison(name, len(ids), same_text, same_words, worst, tuple(changed))


def check_determinism(
    load: Callable[[int | None], Any],
    ids: Sequence[str],
    audios: Sequence[Audio],
    *,
    seed: int,
    threads: int | None,
    runtime: dict[str, Any] | None = None,
) -> DeterminismReport:
    """Decode ``audios`` with ``load(None)`` twice, with a second ``load(None)`` instance, and with
    ``load(1)`` (one CPU thread) when ``threads`` (the default instance's thread count) is over 1.

    ``load(n)`` returns a backend; ``n`` None keeps the caller's options, else sets ``cpu_threads=n``.
    """
    started = time.monotonic()
    first = load(None)
    try:
        name = first.info().name
        ref = [first.transcribe(a) for a in audios]
        again = [first.transcribe(a) for a in audios]
    finally:
        _close(first)
    passes = [compare_passes("same instance, repeated", ids, ref, again)]
    fresh = load(None)
    try:
        passes.append(compare_passes("new instance", ids, ref, [fresh.transcribe(a) for a in audios]))
    finally:
        _close(fresh)
    label = f"1 thread vs {threads}"
    if threads is None:
        passes.append(PassComparison(label.replace(" vs None", ""), len(ids), 0, 0, None, (),
                                     note=f"n/a ({name} has no cpu_threads option)"))
    elif threads == 1:
        passes.append(PassComparison("1 thread vs 1", len(ids), 0, 0, None, (),
                                     note="n/a (this machine gives the backend only one thread)"))
    else:
        single = load(1)
        try:
            passes.append(compare_passes(label, ids, ref, [single.transcribe(a) for a in audios]))
        finally:
            _close(single)
    return DeterminismReport(name, threads, tuple(ids), seed, tuple(passes), runtime or {},
                             time.monotonic() - started)


def _close(backend: Any) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def report_lines(report: DeterminismReport) -> list[str]:
    """The report as console lines."""
    lines = [(f"determinism check: {report.backend}, {len(report.sample)} utterances (seed {report.seed}), "
              f"{report.threads if report.threads is not None else 'n/a'} threads, {report.seconds:.1f} s")]
    for p in report.passes:
        if p.note:
            lines.append(f"  {p.name:<26} {p.note}")
            continue
        conf = "n/a (no word confidences)" if p.max_confidence_change is None else f"{p.max_confidence_change:.2g}"
        verdict = "identical" if p.deterministic else "DIFFERENT"
        lines.append(f"  {p.name:<26} {verdict}: same text {p.same_text}/{p.utterances}, same words and "
                     f"confidences {p.same_words}/{p.utterances}, largest confidence change {conf}")
        if p.changed:
            lines.append(f"    text changed: {', '.join(p.changed[:8])}" + (" ..." if len(p.changed) > 8 else ""))
    rt = report.runtime
    ct2 = rt.get("ctranslate2") or {}
    if ct2:
        lines.append(f"  CTranslate2 ISA {ct2.get('isa', 'n/a (not captured)')}, MKL code path "
                     f"{(rt.get('mkl_code_path') or {}).get('value', 'n/a')}"
                     + (f" (MKL reports: {rt['mkl_probe']['mkl_banner']})" if (rt.get("mkl_probe") or {}).get("mkl_banner") else "")
                     + (f", MKL CNR {rt['mkl_probe']['mkl_cnr']}" if (rt.get("mkl_probe") or {}).get("mkl_cnr") else ""))
    lines.append("deterministic on this machine" if report.deterministic else
                 "NOT deterministic on this machine: repeat runs or thread counts change outputs")
    return lines
