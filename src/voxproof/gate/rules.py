"""Gate rules: each policy rule evaluated on the paired runs, giving one :class:`RuleResult` per check.

Stage: after :mod:`voxproof.gate.evidence`, before :mod:`voxproof.gate.verdict`. Rules:

- ``wer.overall``: paired WER difference (candidate - baseline) on the clean condition.
- ``wer.slice[KEY=VALUE]``: the same within every slice of each policy key (clean condition); slices
  with fewer than ``min_utterances`` are ``insufficient`` (reported, not judged).
- ``wer.condition[NAME]``: the same on every perturbation condition.
- ``wer.class[NAME]``: the same over the words of one token class (numbers, proper nouns, an entity
  class, keywords, oov; :mod:`voxproof.metrics.classes`) on the clean condition, over the utterances
  that contain the class; fewer than ``min_utterances`` of them are ``insufficient``.
- ``coverage``: share of the candidate's rows decoded without error (all conditions).
- ``latency.p90``, ``latency.rtf``: the candidate's speed on the clean condition.
- ``cost.per_audio_hour``: price per machine-hour x run wall seconds / audio seconds.
- ``calibration.ece``: the candidate's word-level ECE.
- ``tts.mos``, ``tts.intelligibility``: floors for text-to-speech runs.
- ``hallucination.words_per_minute``: paired change of hallucinated words per minute on the clips
  marked non-speech (the ``non-speech`` suite), judged like a WER rule against ``max_increase_per_minute``.
- ``timing.p90_start_error``: paired change of p90 |word start error| on the utterance starts of sessions
  (the ``sessions`` suite) matched in both runs, against ``max_p90_start_increase_seconds``.

A WER rule holds when the decided quantity (upper bound of the interval, or the point estimate, as
the policy says) is at most the allowed increase. Rules that do not apply to the runs' kind are
``not_applicable``; rules whose evidence is missing are ``no_data`` and fail the gate unless the
policy says ``missing_evidence = "warn"``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.errors import UsageError
from voxproof.gate.evidence import GateInputs, PairedUtterance, paired_difference
from voxproof.gate.policy import GatePolicy, WerLimit
from voxproof.metrics.nonspeech import non_speech_rows, paired_hallucination
from voxproof.metrics.timing import has_segments, paired_p90_start
from voxproof.run.records import CLEAN, ResultRow

log = logging.getLogger("voxproof.gate")

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "not_applicable"
INSUFFICIENT = "insufficient"
NO_DATA = "no_data"
VERDICTS = (PASS, FAIL, NOT_APPLICABLE, INSUFFICIENT, NO_DATA)
_EPS = 1e-12


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one check.

    ``value`` is what was decided on: for WER rules the candidate-minus-baseline difference (its
    upper bound under the interval decision), otherwise the candidate's figure. ``limit`` is the
    resolved threshold in the same unit; ``op`` says how they compare (``<=`` or ``>=``).
    ``estimate``/``interval`` are the point estimate and interval of the compared quantity.
    ``failing`` says whether this result makes the gate fail.
    """

    rule: str
    group: str
    verdict: str
    failing: bool
    unit: str  # "wer" (fraction), "fraction" (shown as %), "score", "seconds", "ratio", "money", "mos"
    value: float | None = None
    limit: float | None = None
    op: str = "<="
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    decided_on: str = "value"
    baseline: float | None = None
    candidate: float | None = None
    n: int | None = None
    margin: str = ""
    detail: str = ""
    extra: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "group": self.group, "verdict": self.verdict, "failing": self.failing,
            "unit": self.unit, "value": _num(self.value), "limit": _num(self.limit), "op": self.op,
            "estimate": _num(self.estimate),
            "interval": None if self.interval is None else [_num(self.interval[0]), _num(self.interval[1])],
            "decided_on": self.decided_on, "baseline": _num(self.baseline), "candidate": _num(self.candidate),
            "n": self.n, "margin": self.margin, "detail": self.detail, "extra": _clean(self.extra or {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleResult:
        f = lambda v: None if v is None else float(v)
        iv = d.get("interval")
        return cls(
            rule=d["rule"], group=d["group"], verdict=d["verdict"], failing=bool(d["failing"]), unit=d["unit"],
            value=f(d.get("value")), limit=f(d.get("limit")), op=d.get("op", "<="), estimate=f(d.get("estimate")),
            interval=None if iv is None else (f(iv[0]), f(iv[1])), decided_on=d.get("decided_on", "value"),
            baseline=f(d.get("baseline")), candidate=f(d.get("candidate")), n=d.get("n"),
            margin=d.get("margin", ""), detail=d.get("detail", ""), extra=d.get("extra") or {},
        )


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _clean(value: Any) -> Any:
    """JSON-safe copy: nan and inf become None, tuples become lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return _num(value)
    return value


def evaluate_rules(policy: GatePolicy, inputs: GateInputs) -> list[RuleResult]:
    """Every rule of ``policy`` on ``inputs``, in a fixed order."""
    results: list[RuleResult] = []
    results += _wer_rules(policy, inputs)
    if policy.min_coverage is not None:
        results.append(_coverage(policy, inputs))
    results += _latency_rules(policy, inputs)
    if policy.max_cost_per_audio_hour is not None:
        results.append(_cost(policy, inputs))
    if policy.max_ece is not None:
        results.append(_calibration(policy, inputs))
    results += _tts_rules(policy, inputs)
    if policy.max_hallucination_increase is not None:
        results.append(_hallucination(policy, inputs))
    if policy.max_p90_start_increase is not None:
        results.append(_timing(policy, inputs))
    return results


# -- helpers ------------------------------------------------------------------------------------
def _missing(policy: GatePolicy, rule: str, group: str, unit: str, detail: str, **kw: Any) -> RuleResult:
    return RuleResult(rule, group, NO_DATA, policy.missing_evidence == "fail", unit, detail=detail, **kw)


def _na(rule: str, group: str, unit: str, detail: str) -> RuleResult:
    return RuleResult(rule, group, NOT_APPLICABLE, False, unit, detail=detail)


def _main_condition(inputs: GateInputs) -> str:
    conds = inputs.candidate.conditions
    return CLEAN if CLEAN in conds else conds[0]


def _fmt(unit: str, x: float) -> str:
    if unit == "fraction":
        return f"{x:.1%}"
    if unit == "seconds":
        return f"{x:.3g}s"
    return f"{x:.3g}"


def _threshold(rule: str, group: str, unit: str, value: float, limit: float, op: str, **kw: Any) -> RuleResult:
    """A candidate figure against a fixed ceiling (``<=``) or floor (``>=``); the detail ends with the
    comparison that decided it."""
    ok = value <= limit + _EPS if op == "<=" else value >= limit - _EPS
    shown = op if ok else {"<=": ">", ">=": "<"}[op]
    detail = kw.pop("detail", "")
    verdict_text = f"{_fmt(unit, value)} {shown} {'ceiling' if op == '<=' else 'floor'} {_fmt(unit, limit)}"
    kw["margin"] = f"{op} {_fmt(unit, limit)}"
    return RuleResult(rule, group, PASS if ok else FAIL, not ok, unit, value=value, limit=limit, op=op,
                      estimate=kw.pop("estimate", value), detail=f"{detail}: {verdict_text}" if detail else verdict_text,
                      **kw)


# -- WER ----------------------------------------------------------------------------------------
def _wer_rules(policy: GatePolicy, inputs: GateInputs) -> list[RuleResult]:
    wanted = [(policy.overall, "wer.overall"), (policy.slices, "wer.slice"), (policy.conditions, "wer.condition"),
              (policy.classes, "wer.class")]
    if inputs.kind != "asr":
        return [_na(name, name, "wer", f"WER rules apply to speech-recognition runs; these are {inputs.kind} runs")
                for rule, name in wanted if rule is not None]
    if not inputs.pairs and non_speech_rows(inputs.cand_rows):
        return [_na(name, name, "wer", "the runs hold only non-speech clips (no reference words); the "
                    "hallucination rule judges them") for rule, name in wanted if rule is not None]
    main = _main_condition(inputs)
    main_pairs = [p for p in inputs.pairs if p.condition == main]
    out: list[RuleResult] = []
    if policy.overall is not None:
        out.append(_wer_rule(policy, "wer.overall", "wer.overall", main_pairs, policy.overall, min_n=1,
                             scope=f"condition {main}", normalizer=inputs.normalizer))
    if policy.slices is not None:
        sl = policy.slices
        conds = [main] + ([c for c in inputs.candidate.conditions if c != main] if sl.conditions == "all" else [])
        slices: list[tuple[str, str, str, list[PairedUtterance]]] = []
        for key in sl.by:
            values = sorted({v for p in main_pairs if (v := p.key(key)) is not None})
            if not values:
                out.append(_na(f"wer.slice[{key}]", "wer.slice", "wer",
                               f"no utterance carries {key!r}; nothing to slice"))
            for cond in conds:
                in_cond = main_pairs if cond == main else [p for p in inputs.pairs if p.condition == cond]
                slices += [(key, value, cond, [p for p in in_cond if p.key(key) == value]) for value in values]
        judged = sum(1 for *_, subset in slices if len(subset) >= sl.min_utterances)
        level = policy.confidence
        if sl.adjust == "bonferroni" and judged > 1:
            level = 1.0 - (1.0 - policy.confidence) / judged
        for key, value, cond, subset in slices:
            name = f"wer.slice[{key}={value}]" if cond == main else f"wer.slice[{key}={value} @ {cond}]"
            out.append(_wer_rule(policy, name, "wer.slice", subset, sl.limit,
                                 min_n=sl.min_utterances, scope=f"{key}={value}, condition {cond}", level=level,
                                 adjusted=f"Bonferroni over {judged} slices" if level != policy.confidence else "",
                                 normalizer=inputs.normalizer))
    if policy.classes is not None:
        out += _class_rules(policy, inputs, main, main_pairs)
    if policy.conditions is not None:
        others = [c for c in inputs.candidate.conditions if c != main]
        if not others:
            out.append(_na("wer.condition", "wer.condition", "wer",
                           "the runs have no perturbation conditions (evaluate with --suite or --perturb)"))
        min_n = policy.slices.min_utterances if policy.slices is not None else 1
        for cond in others:
            subset = [p for p in inputs.pairs if p.condition == cond]
            out.append(_wer_rule(policy, f"wer.condition[{cond}]", "wer.condition", subset, policy.conditions,
                                 min_n=min_n, scope=f"condition {cond}", normalizer=inputs.normalizer))
    return out


def _class_rules(policy: GatePolicy, inputs: GateInputs, main: str,
                 main_pairs: Sequence[PairedUtterance]) -> list[RuleResult]:
    """``wer.class[NAME]``: the paired WER rule over each class's words (counts attributed through
    each run's alignment), on the utterances of the main condition that contain the class."""
    from voxproof.metrics.class_scores import class_utterances
    from voxproof.metrics.classes import load_class_spec, parse_rules
    from voxproof.metrics.counts import ErrorCounts

    cl = policy.classes
    norm = inputs.normalizer
    spec = load_class_spec(norm, rules=[n for n in cl.by if n in parse_rules("all")] or "none",
                           keywords=cl.keywords, entities=cl.entities, vocab=cl.vocab)
    keys = {(p.utt_id, p.condition) for p in main_pairs}
    base = {(r.utt_id, r.condition): r for r in inputs.base_rows if (r.utt_id, r.condition) in keys}
    cand = {(r.utt_id, r.condition): r for r in inputs.cand_rows if (r.utt_id, r.condition) in keys}
    order = [(p.utt_id, p.condition) for p in main_pairs]
    b_utts = class_utterances([base[k] for k in order], norm, spec)
    c_utts = class_utterances([cand[k] for k in order], norm, spec)
    out: list[RuleResult] = []
    zero = ErrorCounts()
    for name in cl.by:
        if name not in spec.names:
            out.append(_na(f"wer.class[{name}]", "wer.class", "wer", f"class {name!r} is neither a rule class nor "
                           "a class of the policy's entities, keywords or vocab files"))
            continue
        subset = []
        for p, b, c in zip(main_pairs, b_utts, c_utts):
            bc, cc = b.counts.get(name, zero), c.counts.get(name, zero)
            if bc.ref_len or bc.insertions or cc.insertions:
                subset.append(PairedUtterance(p.utt_id, p.condition, p.speaker, p.tags, bc, cc))
        if not subset:
            out.append(_na(f"wer.class[{name}]", "wer.class", "wer",
                           f"no reference word of class {name} in condition {main}"))
            continue
        out.append(_wer_rule(policy, f"wer.class[{name}]", "wer.class", subset, cl.limit, min_n=cl.min_utterances,
                             scope=f"class {name}, condition {main}"))
    return out


def _wer_rule(
    policy: GatePolicy, rule: str, group: str, pairs: Sequence[PairedUtterance], limit: WerLimit,
    *, min_n: int, scope: str, level: float | None = None, adjusted: str = "", normalizer: Any = None,
) -> RuleResult:
    margin = limit.describe()
    level = policy.confidence if level is None else level
    if not pairs:
        return _missing(policy, rule, group, "wer", f"no utterance of {scope} was decoded in both runs",
                        margin=margin, n=0)
    diff = paired_difference(
        pairs, level=level, n_resamples=policy.resamples, seed=policy.seed,
        resample=policy.resample, min_speakers_for_blocking=policy.min_speakers_for_blocking,
        tests=policy.tests, normalizer=normalizer,
    )
    iv = diff.difference
    allowed = limit.allowed(diff.baseline_rate)
    common: dict[str, Any] = {
        "unit": "wer", "estimate": iv.estimate, "interval": (iv.low, iv.high), "baseline": diff.baseline_rate,
        "candidate": diff.candidate_rate, "n": diff.utterances, "margin": margin, "limit": allowed,
        "extra": {"ref_words": diff.ref_words, "speakers": diff.speakers, "interval": iv.to_dict(), "scope": scope,
                  "prob_candidate_better": diff.prob_candidate_better, "tests": diff.tests,
                  "warnings": list(diff.warnings)},
    }
    if len(pairs) < min_n:
        return RuleResult(rule, group, INSUFFICIENT, False, value=iv.estimate, decided_on="not judged",
                          detail=f"{len(pairs)} utterances, fewer than the {min_n} the policy needs to judge "
                                 f"{'a class' if group == 'wer.class' else 'a slice'}",
                          **common)
    if policy.decision == "interval":
        decided, on = iv.high, f"upper bound of the {level:.{0 if adjusted == '' else 2}%} interval" + (
            f" ({adjusted})" if adjusted else "")
    else:
        decided, on = iv.estimate, "point estimate"
    if decided is None or not math.isfinite(decided):
        return _missing(policy, rule, group, "wer", f"no reference words in {scope}", margin=margin, n=len(pairs))
    ok = decided <= allowed + _EPS
    detail = (f"{on} of the WER change {_pts(decided)} {'<=' if ok else '>'} allowed {_pts(allowed)} "
              f"({scope}, {diff.utterances} utterances, {diff.ref_words} words"
              f"{', resampling speakers' if iv.blocked_by else ''})")
    return RuleResult(rule, group, PASS if ok else FAIL, not ok, value=decided, decided_on=on, detail=detail, **common)


def _pts(x: float) -> str:
    return f"{x * 100:+.2f} pts"


# -- hallucination on non-speech ------------------------------------------------------------------
def _hallucination(policy: GatePolicy, inputs: GateInputs) -> RuleResult:
    """Paired (candidate - baseline) hallucinated words per minute on the non-speech clips of both runs."""
    rule, unit = "hallucination.words_per_minute", "words/min"
    allowed = float(policy.max_hallucination_increase or 0.0)
    margin = f"+{allowed:g} words/min"
    if inputs.kind != "asr":
        return _na(rule, "hallucination", unit, f"applies to speech-recognition runs; these are {inputs.kind} runs")
    if not non_speech_rows(inputs.cand_rows) and not non_speech_rows(inputs.base_rows):
        return _na(rule, "hallucination", unit, "the runs have no non-speech clips (evaluate with --data non-speech "
                   "or mark clips non_speech=true)")
    comp = paired_hallucination(inputs.base_rows, inputs.cand_rows, inputs.normalizer, n_resamples=policy.resamples,
                                seed=policy.seed, level=policy.confidence)
    if comp is None:
        return _missing(policy, rule, "hallucination", unit, "no non-speech clip was decoded in both runs",
                        margin=margin, n=0)
    iv = comp.difference
    decided, on = _decide(policy, iv)
    if not math.isfinite(decided):
        return _missing(policy, rule, "hallucination", unit, "no interval: the clips hold no audio", margin=margin,
                        n=comp.clips)
    ok = decided <= allowed + _EPS
    detail = (f"{on} of the change in hallucinated words per minute {decided:+.2f} {'<=' if ok else '>'} allowed "
              f"+{allowed:g} (baseline {comp.baseline_wpm:.2f}, candidate {comp.candidate_wpm:.2f} words/min on "
              f"{comp.clips} non-speech clips, {comp.minutes:.1f} min)")
    return RuleResult(rule, "hallucination", PASS if ok else FAIL, not ok, unit, value=decided, limit=allowed,
                      estimate=iv.estimate, interval=(iv.low, iv.high), decided_on=on, baseline=comp.baseline_wpm,
                      candidate=comp.candidate_wpm, n=comp.clips, margin=margin, detail=detail,
                      extra={"interval": iv.to_dict(), "minutes": comp.minutes})


def _decide(policy: GatePolicy, iv: Any) -> tuple[float, str]:
    """The figure a paired rule is decided on: the upper bound of the interval or the point estimate."""
    if policy.decision == "interval":
        return iv.high, f"upper bound of the {policy.confidence:.0%} interval"
    return iv.estimate, "point estimate"


# -- word timing on sessions ----------------------------------------------------------------------
def _timing(policy: GatePolicy, inputs: GateInputs) -> RuleResult:
    """Paired change of p90 |word start error| on the session utterance starts matched in both runs."""
    rule, group, unit = "timing.p90_start_error", "timing", "seconds"
    allowed = float(policy.max_p90_start_increase or 0.0)
    margin = f"+{allowed * 1000:g} ms"
    if inputs.kind != "asr" or not any(has_segments(r) for r in inputs.cand_rows):
        return _na(rule, group, unit, "the runs have no sessions with known word boundaries "
                   "(evaluate with --data sessions)")
    comp = paired_p90_start(inputs.base_rows, inputs.cand_rows, inputs.normalizer, n_resamples=policy.resamples,
                            seed=policy.seed, level=policy.confidence)
    if comp is None:
        return _missing(policy, rule, group, unit, "no utterance start was matched with word times in both runs",
                        margin=margin, n=0)
    iv = comp.difference
    decided, on = _decide(policy, iv)
    ok = decided <= allowed + _EPS
    detail = (f"{on} of the change in p90 |word start error| {decided * 1000:+.0f} ms {'<=' if ok else '>'} "
              f"allowed {margin} (baseline {comp.baseline_p90 * 1000:.0f} ms, candidate "
              f"{comp.candidate_p90 * 1000:.0f} ms on {comp.words} utterance starts)")
    return RuleResult(rule, group, PASS if ok else FAIL, not ok, unit, value=decided, limit=allowed,
                      estimate=iv.estimate, interval=(iv.low, iv.high), decided_on=on, baseline=comp.baseline_p90,
                      candidate=comp.candidate_p90, n=comp.words, margin=margin, detail=detail,
                      extra={"interval": iv.to_dict()})


# -- coverage -----------------------------------------------------------------------------------
def _share_ok(rows: Sequence[ResultRow]) -> tuple[float, int, int]:
    ok = sum(1 for r in rows if r.ok)
    return (ok / len(rows) if rows else float("nan")), ok, len(rows)


def _coverage(policy: GatePolicy, inputs: GateInputs) -> RuleResult:
    share, ok, total = _share_ok(inputs.cand_rows)
    base_share, _, _ = _share_ok(inputs.base_rows)
    errors: dict[str, int] = {}
    for r in inputs.cand_rows:
        if not r.ok:
            errors[r.error_type or "Unknown"] = errors.get(r.error_type or "Unknown", 0) + 1
    detail = f"{ok} of {total} candidate rows decoded without error"
    if errors:
        detail += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) + ")"
    return _threshold("coverage", "coverage", "fraction", share, policy.min_coverage, ">=",  # type: ignore[arg-type]
                      baseline=base_share, candidate=share, n=total,
                      detail=detail, extra={"errors": errors})


# -- latency and cost ---------------------------------------------------------------------------
def _latency_rules(policy: GatePolicy, inputs: GateInputs) -> list[RuleResult]:
    if policy.max_latency_p90 is None and policy.max_rtf is None:
        return []
    from voxproof.metrics.latency import latency_from_store

    cond = _main_condition(inputs)
    reports = {}
    for label, store in (("baseline", inputs.base_store), ("candidate", inputs.cand_store)):
        try:
            reports[label] = latency_from_store(store, condition=cond, n_boot=200, seed=policy.seed)
        except UsageError as exc:
            reports[label] = exc
    cand, base = reports["candidate"], reports["baseline"]
    out = []
    checks = (("latency.p90", policy.max_latency_p90, "seconds", lambda r: r.latency_percentiles[90], "s"),
              ("latency.rtf", policy.max_rtf, "ratio", lambda r: r.rtf, ""))
    for rule, limit, unit, read, suffix in checks:
        if limit is None:
            continue
        if isinstance(cand, Exception):
            out.append(_missing(policy, rule, "latency", unit, f"no processing times in the candidate run: {cand}"))
            continue
        value = float(read(cand))
        extra = {"rtfx": cand.rtfx, "rtfx_interval": list(cand.rtfx_interval), "conditions": cand.conditions.to_dict()}
        out.append(_threshold(
            rule, "latency", unit, value, limit, "<=", baseline=None if isinstance(base, Exception) else float(read(base)),
            candidate=value, n=cand.n,
            detail=f"candidate {value:.3g}{suffix} over {cand.n} utterances of condition {cond} "
                   f"({cand.conditions.workers} worker(s), {cand.conditions.cpu_model})",
            extra=extra,
        ))
    return out


def _cost(policy: GatePolicy, inputs: GateInputs) -> RuleResult:
    from voxproof.metrics.cost import cost_per_audio_hour

    def cost(store: Any, rows: Sequence[ResultRow]) -> tuple[float | None, str]:
        wall = (store.meta("resources") or {}).get("wall_seconds")
        audio = sum(r.audio_duration or 0.0 for r in rows)
        if wall is None or audio <= 0:
            return None, "the run records no wall time or no audio duration"
        return cost_per_audio_hour(policy.price_per_machine_hour, float(wall), audio), (
            f"{policy.price_per_machine_hour:g}/machine-hour x {float(wall):.1f} s wall / {audio:.1f} s audio")

    value, how = cost(inputs.cand_store, inputs.cand_rows)
    base, _ = cost(inputs.base_store, inputs.base_rows)
    limit = policy.max_cost_per_audio_hour
    if value is None:
        return _missing(policy, "cost.per_audio_hour", "cost", "money", how)
    return _threshold("cost.per_audio_hour", "cost", "money", value, limit, "<=", baseline=base,  # type: ignore[arg-type]
                      candidate=value, detail=how)


# -- calibration --------------------------------------------------------------------------------
def _calibration(policy: GatePolicy, inputs: GateInputs) -> RuleResult:
    rule = "calibration.ece"
    if inputs.kind != "asr":
        return _na(rule, "calibration", "score", f"confidence calibration applies to recognisers; these are "
                   f"{inputs.kind} runs")
    from voxproof.metrics.calibration import calibrate_store

    cond = _main_condition(inputs)
    reports = [calibrate_store(s, inputs.normalizer, condition=cond, n_boot=min(policy.resamples, 500),
                               seed=policy.seed)
               for s in (inputs.base_store, inputs.cand_store)]
    base, cand = (r.word if r.available else None for r in reports)
    if cand is None:
        return _missing(policy, rule, "calibration", "score", reports[1].reason or "no word confidences")
    iv = cand.intervals.get("ece")
    if policy.decision == "interval" and iv is not None and math.isfinite(iv[1]):
        value, on = iv[1], f"upper bound of the {policy.confidence:.0%} interval"
    else:
        value, on = cand.ece, "point estimate"
    return _threshold(rule, "calibration", "score", value, policy.max_ece, "<=",  # type: ignore[arg-type]
                      estimate=cand.ece, interval=iv, decided_on=on, baseline=None if base is None else base.ece,
                      candidate=cand.ece, n=cand.n,
                      detail=f"{on} of the word-level ECE ({cand.n} words, equal-width bins, intervals "
                             "resample utterances)")


# -- TTS ----------------------------------------------------------------------------------------
def _tts_rules(policy: GatePolicy, inputs: GateInputs) -> list[RuleResult]:
    floors = [("tts.mos", policy.min_mos, "mos"), ("tts.intelligibility", policy.min_intelligibility, "fraction")]
    floors = [f for f in floors if f[1] is not None]
    if not floors:
        return []
    if inputs.kind != "tts":
        return [_na(rule, "tts", unit, f"TTS floors apply to text-to-speech runs; these are {inputs.kind} runs")
                for rule, _, unit in floors]
    from voxproof.gate.tts import tts_figures

    kw = {"n_resamples": policy.resamples, "seed": policy.seed, "level": policy.confidence}
    cand = tts_figures(inputs.cand_store, inputs.cand_rows, **kw)
    base = tts_figures(inputs.base_store, inputs.base_rows, **kw)
    out = []
    for rule, floor, unit in floors:
        key = rule.split(".", 1)[1]
        fig = cand.get(key)
        if fig is None or isinstance(fig, str):
            out.append(_missing(policy, rule, "tts", unit, str(cand.get(f"{key}_reason") or f"no {key}")))
            continue
        b = base.get(key)
        if policy.decision == "interval" and math.isfinite(fig.low):
            value, on = fig.low, f"lower bound of the {policy.confidence:.0%} interval"
        else:
            value, on = fig.estimate, "point estimate"
        out.append(_threshold(rule, "tts", unit, value, floor, ">=", estimate=fig.estimate,  # type: ignore[arg-type]
                              interval=(fig.low, fig.high), decided_on=on,
                              baseline=None if b is None or isinstance(b, str) else b.estimate,
                              candidate=fig.estimate, n=fig.n,
                              detail=f"{on}: {fig.how}"))
    return out
