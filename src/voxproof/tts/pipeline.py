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
    RESYNTH_CONDITION,
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
    resynth: Sequence[Any] = (),
) -> TtsEvalResult:
    """Evaluate every synthesiser (name -> factory, loaded one at a time) on ``prompts``.

    Rows are committed as they finish; rerunning with the same ``out`` skips finished prompts.
    ``floor`` (real recordings) adds the ground-truth row; ``None`` skips it. ``resynth`` conditions
    (codec round trips, see :mod:`voxproof.perturb`) are applied to the floor recordings, each scored
    into ``OUT/resynth/<name>/`` with PESQ/STOI/MCD/F0 against the original and its WER compared with
    the floor's (summary key ``resynth``).
    """
    if not systems and not resynth:
        raise UsageError("give at least one synthesiser (-m piper) or a resynthesis condition (--resynth codecs)")
    if resynth and not floor:
        raise UsageError("--resynth evaluates codecs on real recordings: it needs the floor recordings (--floor)")
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
    floor_summary, floor_scores = None, []
    if floor:
        store = evaluate_floor(floor, out / FLOOR_SYSTEM, scorer, options=options, source=floor_source,
                               progress=progress)
        with store:
            rows = list(store.rows(condition=FLOOR_CONDITION))
        floor_scores = prompt_scores(rows, scorer.normalizer)
        floor_summary = summarise(FLOOR_SYSTEM, floor_scores,
                                  {"name": FLOOR_SYSTEM, "source": floor_source}, **seeds)
    comparisons = [
        compare_systems(a, scores[a], b, scores[b], n_resamples=options.n_resamples, seed=options.seed,
                        level=options.level)
        for a, b in itertools.combinations(scores, 2)
    ]
    resynth_table = []
    if resynth:
        for cond in resynth:
            from voxproof.run.records import id_filename

            run_dir = out / "resynth" / id_filename(cond.name, "")
            store = evaluate_floor(floor, run_dir, scorer, options=options, source=floor_source,
                                   progress=progress, resynth=cond)
            with store:
                rs = prompt_scores(list(store.rows(condition=RESYNTH_CONDITION)), scorer.normalizer)
                backend = store.provenance.get("backend")
            rsum = summarise(cond.name, rs, backend, **seeds)
            comp = compare_systems(FLOOR_SYSTEM, floor_scores, cond.name, rs, n_resamples=options.n_resamples,
                                   seed=options.seed, level=options.level)
            resynth_table.append({"condition": cond.name, "chain": cond.label, "summary": rsum.to_dict(),
                                  "versus_floor": comp.to_dict(), "run": str(run_dir)})
    summary = build_tts_summary(
        summaries, comparisons, floor=floor_summary, judges=scorer.describe(),
        prompts={"source": prompt_source, "hash": prompts_hash(list(prompts)), "count": len(prompts)},
        worst={name: worst_items(s, worst_n) for name, s in scores.items()},
        resynth=resynth_table,
    )
    summary_path = write_summary(summary, out / "summary.json")
    html_path = write_html(summary, out / "report.html", audio_roots=roots) if html else None
    return TtsEvalResult(summary, out, summary_path, html_path)


def resolve_resynth(specs: Sequence[str]) -> list[Any]:
    """Conditions named by ``--resynth`` values: a suite (``codecs``), one rung of a suite
    (``codecs/opus=6k``) or a perturbation chain (``codec:opus,bitrate=6k``). A condition this machine
    cannot run (encoder missing) is refused with the reason."""
    from voxproof.perturb import SUITE_NAMES, get_suite, resolve_conditions

    out: list[Any] = []
    for spec in specs:
        suite, sep, rung = spec.partition("/")
        if suite.partition("@")[0] in SUITE_NAMES and not sep:
            found = resolve_conditions(suites=[suite])
        elif suite.partition("@")[0] in SUITE_NAMES:
            found = [c for c in get_suite(suite).conditions if c.name == f"{suite.partition('@')[0]}/{rung}"]
            if not found:
                names = ", ".join(c.name for c in get_suite(suite).conditions)
                raise UsageError(f"suite {suite} has no condition {spec!r}; choose one of {names}")
        else:
            found = resolve_conditions(perturbs=[spec])
        for cond in found:
            why = cond.unavailable_reason()
            if why:
                raise UsageError(f"--resynth {cond.name} cannot run here: {why}")
            if cond.name not in {c.name for c in out}:
                out.append(cond)
    return out


def reopen_scores(run_dir: str | Path, normalizer) -> list:
    """Per-prompt scores of an existing system run directory (for re-reporting without re-running)."""
    with RunStore.open(run_dir) as store:
        return prompt_scores(list(store.rows(condition=TTS_CONDITION)), normalizer)
