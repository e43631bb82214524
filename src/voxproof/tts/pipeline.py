"""The whole TTS evaluation, end to end (what ``voxproof tts-eval`` runs): every system on the same
prompts into ``OUT/<system>/``, the ground-truth floor into ``OUT/floor/``, then summaries, paired
comparisons of every pair of systems, ``OUT/summary.json`` and ``OUT/report.html``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof.backends.base import Synthesizer
from voxproof.errors import UsageError
from voxproof.run.store import RunStore
from voxproof.tts.evaluate import (
    FLOOR_CONDITION,
    FLOOR_SYSTEM,
    TTS_CONDITION,
    FloorItem,
    Progress,
    TtsEvalOptions,
    TtsScorer,
    evaluate_floor,
    evaluate_system,
)
from voxproof.tts.prompts import Prompt, prompts_hash
from voxproof.tts.report import build_tts_summary, write_html, write_summary
from voxproof.tts.summary import compare_systems, prompt_scores, summarise, worst_items

log = logging.getLogger("voxproof.tts")


@dataclass(frozen=True)
class TtsEvalResult:
    """What a TTS evaluation wrote: the summary dict and the paths of its files."""

    summary: dict[str, Any]
    out: Path
    summary_path: Path
    html_path: Path | None


def run_tts_eval(
    systems: dict[str, Callable[[], Synthesizer]],
    prompts: Sequence[Prompt],
    out: str | Path,
    scorer: TtsScorer,
    *,
    options: TtsEvalOptions = TtsEvalOptions(),  # noqa: B008 - frozen, safe to share
    prompt_source: str = "en-stress",
    floor: Sequence[FloorItem] | None = None,
    floor_source: str = "",
    worst_n: int = 5,
    html: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> TtsEvalResult:
    """Evaluate every synthesiser (name -> factory, loaded one at a time) on ``prompts``.

    Rows are committed as they finish; rerunning with the same ``out`` skips finished prompts.
    ``floor`` (real recordings) adds the ground-truth row; ``None`` skips it.
    """
    if not systems:
        raise UsageError("give at least one synthesiser (-m piper)")
    bad = [n for n in systems if not n or n == FLOOR_SYSTEM or "/" in n]
    if bad:
        raise UsageError(f"system name(s) {bad} are not allowed (reserved or not a folder name)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = {"n_resamples": options.n_resamples, "seed": options.seed, "level": options.level,
             "mos_enabled": scorer.mos is not None}
    summaries, scores, roots = [], {}, {}
    for name, factory in systems.items():
        synth = factory()
        store = evaluate_system(name, synth, prompts, out / name, scorer, options=options,
                                prompt_source=prompt_source, progress=progress)
        del synth  # one synthesiser in memory at a time
        with store:
            rows = list(store.rows(condition=TTS_CONDITION))
            backend = store.provenance.get("backend")
        scores[name] = prompt_scores(rows, scorer.normalizer)
        summaries.append(summarise(name, scores[name], backend, **seeds))
        roots[name] = out / name
    floor_summary = None
    if floor:
        store = evaluate_floor(floor, out / FLOOR_SYSTEM, scorer, options=options, source=floor_source,
                               progress=progress)
        with store:
            rows = list(store.rows(condition=FLOOR_CONDITION))
        floor_summary = summarise(FLOOR_SYSTEM, prompt_scores(rows, scorer.normalizer),
                                  {"name": FLOOR_SYSTEM, "source": floor_source}, **seeds)
    comparisons = [
        compare_systems(a, scores[a], b, scores[b], n_resamples=options.n_resamples, seed=options.seed,
                        level=options.level)
        for a, b in itertools.combinations(scores, 2)
    ]
    summary = build_tts_summary(
        summaries, comparisons, floor=floor_summary, judges=scorer.describe(),
        prompts={"source": prompt_source, "hash": prompts_hash(list(prompts)), "count": len(prompts)},
        worst={name: worst_items(s, worst_n) for name, s in scores.items()},
    )
    summary_path = write_summary(summary, out / "summary.json")
    html_path = write_html(summary, out / "report.html", audio_roots=roots) if html else None
    return TtsEvalResult(summary, out, summary_path, html_path)


def reopen_scores(run_dir: str | Path, normalizer) -> list:
    """Per-prompt scores of an existing system run directory (for re-reporting without re-running)."""
    with RunStore.open(run_dir) as store:
        return prompt_scores(list(store.rows(condition=TTS_CONDITION)), normalizer)
