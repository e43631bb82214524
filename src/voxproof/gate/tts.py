"""TTS figures the gate's floors read from a text-to-speech run: predicted MOS and intelligibility.

Stage: gate evidence for ``kind = "tts"`` runs (written by ``voxproof tts-eval``). The figures are
those of :func:`voxproof.tts.summary.summarise`: DNSMOS OVRL averaged over scored clips, and
intelligibility = 1 - WER of the recogniser's transcripts against the prompts (corpus level; a
synthesis error counts as every word deleted), each with its bootstrap interval over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.run.records import ResultRow


@dataclass(frozen=True)
class TtsFigure:
    """One floor's figure: estimate with interval, and how many items it rests on."""

    estimate: float
    low: float
    high: float
    n: int
    how: str


def tts_figures(
    store: Any, rows: Sequence[ResultRow], *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, TtsFigure | str]:
    """``{"mos": TtsFigure, "intelligibility": TtsFigure}``; a figure the run lacks is replaced by
    ``"<name>_reason"`` saying why."""
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.tts.summary import prompt_scores, summarise

    prov = store.provenance
    norm = get_normalizer((prov.get("normalizer") or {}).get("name") or "whisper-en")
    scores = prompt_scores(list(rows), norm)
    system = (prov.get("backend") or {}).get("name") or "system"
    summary = summarise(system, scores, prov.get("backend"), n_resamples=n_resamples, seed=seed, level=level)
    out: dict[str, TtsFigure | str] = {}
    ovrl = summary.mos.get("ovrl")
    if summary.mos_n and ovrl is not None:
        out["mos"] = TtsFigure(ovrl.estimate, ovrl.low, ovrl.high, summary.mos_n,
                               f"mean DNSMOS OVRL over {summary.mos_n} synthesised clips")
    else:
        out["mos_reason"] = "the run has no MOS scores (run 'voxproof tts-eval' with MOS prediction on)"
    scored = [s for s in scores if s.scored]
    wer = summary.wer
    if scored and sum(s.word_ref for s in scored) > 0:
        out["intelligibility"] = TtsFigure(
            1.0 - wer.estimate, 1.0 - wer.high, 1.0 - wer.low, len(scored),
            f"1 - WER of the recogniser's transcripts over {len(scored)} prompts "
            f"({sum(s.word_ref for s in scored)} words)")
    else:
        out["intelligibility_reason"] = "the run has no scored prompts (every item failed to synthesise or score)"
    return out
