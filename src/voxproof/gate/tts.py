"""TTS figures the gate's floors read from a text-to-speech run: predicted MOS and intelligibility.

Stage: gate evidence for ``kind = "tts"`` runs. Reads the run's rows as ``voxproof tts-eval`` stores
them: ``extras["mos"]`` (DNSMOS scores, ``ovrl`` used) and ``extras["intelligibility"]`` (word counts
of a recogniser's transcript against the prompt). Intelligibility is ``1 - WER`` over all scored
prompts (corpus level: summed counts), MOS the mean OVRL over scored clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voxproof.metrics.counts import ErrorCounts
from voxproof.run.records import ResultRow


def _mos_value(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        for key in ("ovrl", "OVRL", "overall", "ovrl_mos"):
            if isinstance(value.get(key), (int, float)):
                return float(value[key])
    return None


def _counts(value: Any) -> ErrorCounts | None:
    if isinstance(value, dict):
        inner = value.get("words", value.get("word_counts", value))
        if isinstance(inner, dict) and {"hits", "substitutions", "deletions", "insertions"} <= set(inner):
            return ErrorCounts.from_dict(inner)
    return None


def tts_figures(store: Any, rows: Sequence[ResultRow]) -> dict[str, Any]:
    """``{"mos": (mean OVRL, n), "intelligibility": (1 - WER, n)}`` with ``*_how`` texts; a figure the
    run lacks is absent and ``*_reason`` says why."""
    out: dict[str, Any] = {}
    mos = [v for r in rows if r.ok and (v := _mos_value(r.extras.get("mos"))) is not None]
    if mos:
        out["mos"] = (sum(mos) / len(mos), len(mos))
        out["mos_how"] = f"mean DNSMOS OVRL over {len(mos)} synthesised clips"
    else:
        out["mos_reason"] = "the run has no MOS scores (run 'voxproof tts-eval' with MOS prediction on)"
    counts = [c for r in rows if r.ok and (c := _counts(r.extras.get("intelligibility"))) is not None]
    if counts:
        total = ErrorCounts()
        for c in counts:
            total = total + c
        if total.ref_len:
            out["intelligibility"] = (1.0 - total.error_rate, len(counts))
            out["intelligibility_how"] = (f"1 - WER of the recogniser's transcripts over {len(counts)} prompts "
                                          f"({total.ref_len} words)")
    if "intelligibility" not in out:
        out["intelligibility_reason"] = "the run has no intelligibility counts (run 'voxproof tts-eval' with a recogniser)"
    return out
