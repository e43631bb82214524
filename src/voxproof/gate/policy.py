"""Gate policy: what must hold for a candidate run against a baseline run, read from a TOML file.

Stage: the first input of the gate. A policy is parsed with :mod:`tomllib`, validated completely (an
unknown key or a bad value raises :class:`~voxproof.errors.UsageError` naming the key path and the
valid choices) and handed on as a frozen :class:`GatePolicy` to :mod:`voxproof.gate.rules`.

The annotated default ships as ``voxproof/data/default_policy.toml``; a user file may start with
``extends = "default"`` to change only what it names (tables are merged key by key).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError

DECISIONS = ("interval", "point")
MARGINS = ("absolute", "relative")
RESAMPLE_UNITS = ("auto", "utterance", "speaker")
MISSING_EVIDENCE = ("fail", "warn")
ADJUSTMENTS = ("none", "bonferroni")
SLICE_CONDITIONS = ("main", "all")
DEFAULT_POLICY = "default"


@dataclass(frozen=True)
class WerLimit:
    """An allowed WER increase of the candidate over the baseline. ``margin="absolute"``: at most
    ``max_increase`` (a fraction, 0.01 = one point of WER); ``"relative"``: at most ``max_increase``
    times the baseline WER."""

    max_increase: float
    margin: str = "absolute"

    def allowed(self, baseline_rate: float) -> float:
        """The allowed increase in WER units for a baseline at ``baseline_rate``."""
        return self.max_increase if self.margin == "absolute" else self.max_increase * baseline_rate

    def describe(self) -> str:
        if self.margin == "absolute":
            return f"+{self.max_increase * 100:g} pts"
        return f"+{self.max_increase * 100:g} % of baseline"


@dataclass(frozen=True)
class SliceLimits:
    """Per-slice WER limits: one slice per value of each key in ``by`` (``speaker`` or a tag)."""

    by: tuple[str, ...]
    limit: WerLimit
    min_utterances: int = 5
    adjust: str = "none"  # "bonferroni": each of k judged slices uses level 1 - (1 - confidence) / k
    conditions: str = "main"  # "main": slices of the clean condition; "all": of every condition


@dataclass(frozen=True)
class ClassLimits:
    """Per-class WER limits (``wer.class[NAME]`` rules): one rule per class in ``by`` (rule classes
    such as ``numbers``, entity classes of ``entities``, ``keywords``, ``oov``), judged on the clean
    condition over the utterances that contain the class. ``entities``/``keywords``/``vocab`` are list
    files (paths relative to the working directory)."""

    by: tuple[str, ...]
    limit: WerLimit
    min_utterances: int = 5
    entities: str | None = None
    keywords: str | None = None
    vocab: str | None = None


@dataclass(frozen=True)
class GatePolicy:
    """A validated gate policy. ``None`` for a rule means it is not checked."""

    source: str = DEFAULT_POLICY
    decision: str = "interval"
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    resample: str = "auto"
    min_speakers_for_blocking: int = 5
    missing_evidence: str = "fail"
    normalizer: str | None = None
    tests: str = "textbook"  # paired tests recorded with WER rules: textbook forms or "sctk" (sc_stats')
    overall: WerLimit | None = None
    slices: SliceLimits | None = None
    conditions: WerLimit | None = None
    classes: ClassLimits | None = None
    min_coverage: float | None = None
    max_latency_p90: float | None = None
    max_rtf: float | None = None
    price_per_machine_hour: float | None = None
    max_cost_per_audio_hour: float | None = None
    max_ece: float | None = None
    min_mos: float | None = None
    min_intelligibility: float | None = None
    max_hallucination_increase: float | None = None  # hallucinated words per minute on non-speech clips
    max_p90_start_increase: float | None = None  # seconds of p90 |word start error| on sessions

    def rules(self) -> tuple[str, ...]:
        """The rules this policy checks (empty: the policy decides nothing)."""
        named = {
            "wer.overall": self.overall, "wer.slices": self.slices, "wer.conditions": self.conditions,
            "wer.classes": self.classes, "coverage": self.min_coverage, "latency.p90": self.max_latency_p90, "latency.rtf": self.max_rtf,
            "cost": self.max_cost_per_audio_hour, "calibration": self.max_ece, "tts.mos": self.min_mos,
            "tts.intelligibility": self.min_intelligibility, "hallucination": self.max_hallucination_increase,
            "timing": self.max_p90_start_increase,
        }
        return tuple(name for name, value in named.items() if value is not None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.slices is not None:
            out["slices"]["by"] = list(self.slices.by)
        if self.classes is not None:
            out["classes"]["by"] = list(self.classes.by)
        return out


# -- schema -----------------------------------------------------------------------------------
# Each table's keys: key -> (kind, extra). Kinds: "fraction" (0..1), "positive", "nonneg", "int"
# (extra = inclusive (low, high)), "margin" (0..MAX_MARGIN), "choice" (extra = choices), "keys" (list of
# slice keys), "string". Every number must be finite: inf or nan would silently turn a rule off.
MAX_MARGIN = 10.0  # 1000 WER points (absolute) or 10x the baseline WER (relative): beyond it a rule is moot
MAX_RESAMPLES = 100_000  # bootstrap resamples; 2e8 ran for minutes
MAX_SEED = 2**32 - 1
_SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    "decision": {
        "method": ("choice", DECISIONS),
        "confidence": ("open_fraction", None),
        "resamples": ("int", (100, MAX_RESAMPLES)),
        "seed": ("int", (0, MAX_SEED)),
        "resample": ("choice", RESAMPLE_UNITS),
        "min_speakers_for_blocking": ("int", (2, 1_000_000)),
        "missing_evidence": ("choice", MISSING_EVIDENCE),
        "normalizer": ("string", None),
        "tests": ("choice", ("textbook", "sctk")),
    },
    "wer.overall": {"max_increase": ("margin", None), "margin": ("choice", MARGINS)},
    "wer.slices": {
        "by": ("keys", None),
        "max_increase": ("margin", None),
        "margin": ("choice", MARGINS),
        "min_utterances": ("int", (1, 1_000_000_000)),
        "adjust": ("choice", ADJUSTMENTS),
        "conditions": ("choice", SLICE_CONDITIONS),
    },
    "wer.conditions": {"max_increase": ("margin", None), "margin": ("choice", MARGINS)},
    "wer.classes": {
        "by": ("classes", None),
        "max_increase": ("margin", None),
        "margin": ("choice", MARGINS),
        "min_utterances": ("int", (1, 1_000_000_000)),
        "entities": ("string", None),
        "keywords": ("string", None),
        "vocab": ("string", None),
    },
    "coverage": {"min": ("fraction", None)},
    "latency": {"max_p90_seconds": ("positive", None), "max_rtf": ("positive", None)},
    "cost": {"price_per_machine_hour": ("nonneg", None), "max_per_audio_hour": ("nonneg", None)},
    "calibration": {"max_ece": ("fraction", None)},
    "tts": {"min_mos": ("mos", None), "min_intelligibility": ("fraction", None)},
    "hallucination": {"max_increase_per_minute": ("nonneg", None)},
    "timing": {"max_p90_start_increase_seconds": ("nonneg", None)},
}
_REQUIRED = {
    "wer.overall": ("max_increase",),
    "wer.slices": ("by", "max_increase"),
    "wer.conditions": ("max_increase",),
    "wer.classes": ("by", "max_increase"),
    "coverage": ("min",),
    "cost": ("price_per_machine_hour", "max_per_audio_hour"),
    "calibration": ("max_ece",),
    "hallucination": ("max_increase_per_minute",),
    "timing": ("max_p90_start_increase_seconds",),
}
_TOP = ("extends", "decision", "wer", "coverage", "latency", "cost", "calibration", "tts", "hallucination", "timing")


def default_policy_text() -> str:
    return resources.files("voxproof").joinpath("data", "default_policy.toml").read_text(encoding="utf-8")


def load_policy(path: str | Path | None = None) -> GatePolicy:
    """The policy in ``path`` (a TOML file), or the shipped default when ``path`` is None."""
    if path is None:
        return parse_policy(default_policy_text(), source=DEFAULT_POLICY)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"policy file {p} does not exist; omit --policy to use the default") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read policy file {p}: {exc}") from None
    return parse_policy(text, source=str(p))


def parse_policy(text: str, *, source: str = "<text>") -> GatePolicy:
    """Parse and validate policy TOML ``text``; errors name ``source`` and the key path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply to be a gate policy") from None
    extends = data.pop("extends", None)
    if extends is not None:
        if extends != DEFAULT_POLICY:
            raise UsageError(f"{source}: extends = {extends!r} is not supported; the only choice is \"default\"")
        data = _merge(tomllib.loads(default_policy_text()), data)
    return _build(data, source)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _tables(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Flatten to {"decision": {...}, "wer.overall": {...}, ...}, refusing unknown keys."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key not in _TOP or key == "extends":
            raise UsageError(f"{source}: unknown key {key!r}; valid top-level keys: {', '.join(_TOP)}")
        if not isinstance(value, dict):
            raise UsageError(f"{source}: {key} must be a table ([{key}]), got {type(value).__name__}")
        if key == "wer":
            for sub, table in value.items():
                path = f"wer.{sub}"
                if path not in _SCHEMA:
                    valid = ", ".join(k for k in _SCHEMA if k.startswith("wer."))
                    raise UsageError(f"{source}: unknown table [{path}]; valid tables: {valid}")
                if not isinstance(table, dict):
                    raise UsageError(f"{source}: {path} must be a table ([{path}])")
                out[path] = table
        else:
            out[key] = value
    for path, table in out.items():
        schema = _SCHEMA[path]
        for key in table:
            if key not in schema:
                raise UsageError(
                    f"{source}: unknown key {path}.{key}; valid keys in [{path}]: {', '.join(schema)}"
                )
        for key in _REQUIRED.get(path, ()):
            if key not in table:
                raise UsageError(f"{source}: [{path}] needs {key} (or remove the table to turn its rules off)")
    return out


def _value(source: str, path: str, key: str, value: Any) -> Any:
    kind, extra = _SCHEMA[path][key]
    where = f"{source}: {path}.{key} = {value!r}"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "choice":
        if value not in extra:
            raise UsageError(f"{where} is not one of {', '.join(extra)}")
        return value
    if kind == "string":
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where} must be a non-empty string")
        return value
    if kind == "keys":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise UsageError(f"{where} must be a non-empty list of slice keys such as [\"speaker\", \"gender\"]")
        if "condition" in value:
            raise UsageError(f"{where}: conditions have their own table; use [wer.conditions] instead")
        return tuple(dict.fromkeys(value))
    if kind == "classes":
        import re

        if (not isinstance(value, list) or not value
                or not all(isinstance(v, str) and re.match(r"^[a-z][a-z0-9_-]{0,39}$", v) for v in value)):
            raise UsageError(f"{where} must be a non-empty list of class names such as [\"numbers\", \"proper_nouns\"]")
        return tuple(dict.fromkeys(value))
    if kind == "int":
        low, high = extra
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise UsageError(f"{where} must be an integer from {low} to {high}")
        return value
    if not is_number:
        raise UsageError(f"{where} must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"{where} must be a finite number (inf or nan would turn the rule off)")
    if kind == "margin" and not 0.0 <= value <= MAX_MARGIN:
        raise UsageError(f"{where} must be from 0 to {MAX_MARGIN:g} (0.01 = one WER point, or 1 % of the "
                         "baseline WER with margin = \"relative\")")
    if kind == "fraction" and not 0.0 <= value <= 1.0:
        raise UsageError(f"{where} must be between 0 and 1 (a fraction: 0.98 = 98 %)")
    if kind == "open_fraction" and not 0.0 < value < 1.0:
        raise UsageError(f"{where} must be strictly between 0 and 1 (for example 0.95)")
    if kind == "positive" and value <= 0:
        raise UsageError(f"{where} must be greater than 0")
    if kind == "nonneg" and value < 0:
        raise UsageError(f"{where} must be 0 or more")
    if kind == "mos" and not 1.0 <= value <= 5.0:
        raise UsageError(f"{where} must be a MOS between 1 and 5")
    return value


def _build(data: dict[str, Any], source: str) -> GatePolicy:
    tables = _tables(data, source)
    v = {path: {k: _value(source, path, k, val) for k, val in t.items()} for path, t in tables.items()}
    d = v.get("decision", {})
    kwargs: dict[str, Any] = {
        "source": source,
        "decision": d.get("method", "interval"),
        "confidence": d.get("confidence", 0.95),
        "resamples": d.get("resamples", 2000),
        "seed": d.get("seed", 0),
        "resample": d.get("resample", "auto"),
        "min_speakers_for_blocking": d.get("min_speakers_for_blocking", 5),
        "missing_evidence": d.get("missing_evidence", "fail"),
        "normalizer": d.get("normalizer"),
        "tests": d.get("tests", "textbook"),
    }
    if "normalizer" in d:
        from voxproof.metrics.normalize import get_normalizer

        try:
            get_normalizer(d["normalizer"])
        except UsageError as exc:
            raise UsageError(f"{source}: decision.normalizer: {exc}") from None
    if "wer.overall" in v:
        o = v["wer.overall"]
        kwargs["overall"] = WerLimit(o["max_increase"], o.get("margin", "absolute"))
    if "wer.slices" in v:
        s = v["wer.slices"]
        kwargs["slices"] = SliceLimits(
            s["by"], WerLimit(s["max_increase"], s.get("margin", "absolute")), s.get("min_utterances", 5),
            s.get("adjust", "none"), s.get("conditions", "main"),
        )
    if "wer.conditions" in v:
        c = v["wer.conditions"]
        kwargs["conditions"] = WerLimit(c["max_increase"], c.get("margin", "absolute"))
    if "wer.classes" in v:
        k = v["wer.classes"]
        kwargs["classes"] = ClassLimits(
            k["by"], WerLimit(k["max_increase"], k.get("margin", "absolute")), k.get("min_utterances", 5),
            k.get("entities"), k.get("keywords"), k.get("vocab"),
        )
    if "coverage" in v:
        kwargs["min_coverage"] = v["coverage"]["min"]
    lat = v.get("latency", {})
    kwargs["max_latency_p90"] = lat.get("max_p90_seconds")
    kwargs["max_rtf"] = lat.get("max_rtf")
    if "cost" in v:
        kwargs["price_per_machine_hour"] = v["cost"]["price_per_machine_hour"]
        kwargs["max_cost_per_audio_hour"] = v["cost"]["max_per_audio_hour"]
    if "calibration" in v:
        kwargs["max_ece"] = v["calibration"]["max_ece"]
    tts = v.get("tts", {})
    kwargs["min_mos"] = tts.get("min_mos")
    kwargs["min_intelligibility"] = tts.get("min_intelligibility")
    if "hallucination" in v:
        kwargs["max_hallucination_increase"] = v["hallucination"]["max_increase_per_minute"]
    if "timing" in v:
        kwargs["max_p90_start_increase"] = v["timing"]["max_p90_start_increase_seconds"]
    policy = GatePolicy(**kwargs)
    if not policy.rules():
        raise UsageError(
            f"{source}: the policy has no rule, so the gate would pass any candidate; add one such as "
            "[wer.overall] max_increase = 0.01, or start the file with extends = \"default\""
        )
    return policy


def policy_from_dict(d: dict[str, Any]) -> GatePolicy:
    """The policy recorded in a verdict (:meth:`GatePolicy.to_dict`), validated again like a file.

    A verdict's policy is data that may have been edited, so it goes through the same checks
    (finite numbers, ranges, at least one rule) as a TOML file.
    """
    if not isinstance(d, dict):
        raise UsageError("the verdict's policy is not a table")
    source = str(d.get("source") or DEFAULT_POLICY)
    decision = {"method": d.get("decision"), "confidence": d.get("confidence"), "resamples": d.get("resamples"),
                "seed": d.get("seed"), "resample": d.get("resample"),
                "min_speakers_for_blocking": d.get("min_speakers_for_blocking"),
                "missing_evidence": d.get("missing_evidence"), "normalizer": d.get("normalizer"),
                "tests": d.get("tests")}
    data: dict[str, Any] = {"decision": {k: v for k, v in decision.items() if v is not None}}
    wer: dict[str, Any] = {}
    for key in ("overall", "conditions"):
        if isinstance(d.get(key), dict):
            wer[key] = {"max_increase": d[key].get("max_increase"), "margin": d[key].get("margin")}
    s = d.get("slices")
    if isinstance(s, dict):
        limit = s.get("limit") or {}
        wer["slices"] = {"by": list(s.get("by") or []), "max_increase": limit.get("max_increase"),
                         "margin": limit.get("margin"), "min_utterances": s.get("min_utterances"),
                         "adjust": s.get("adjust"), "conditions": s.get("conditions")}
    k = d.get("classes")
    if isinstance(k, dict):
        limit = k.get("limit") or {}
        wer["classes"] = {"by": list(k.get("by") or []), "max_increase": limit.get("max_increase"),
                          "margin": limit.get("margin"), "min_utterances": k.get("min_utterances"),
                          "entities": k.get("entities"), "keywords": k.get("keywords"), "vocab": k.get("vocab")}
    if wer:
        data["wer"] = wer
    if d.get("min_coverage") is not None:
        data["coverage"] = {"min": d["min_coverage"]}
    latency = {"max_p90_seconds": d.get("max_latency_p90"), "max_rtf": d.get("max_rtf")}
    if any(v is not None for v in latency.values()):
        data["latency"] = latency
    if d.get("max_cost_per_audio_hour") is not None:
        data["cost"] = {"price_per_machine_hour": d.get("price_per_machine_hour"),
                        "max_per_audio_hour": d["max_cost_per_audio_hour"]}
    if d.get("max_ece") is not None:
        data["calibration"] = {"max_ece": d["max_ece"]}
    tts = {"min_mos": d.get("min_mos"), "min_intelligibility": d.get("min_intelligibility")}
    if any(v is not None for v in tts.values()):
        data["tts"] = tts
    if d.get("max_hallucination_increase") is not None:
        data["hallucination"] = {"max_increase_per_minute": d["max_hallucination_increase"]}
    if d.get("max_p90_start_increase") is not None:
        data["timing"] = {"max_p90_start_increase_seconds": d["max_p90_start_increase"]}
    for table in [data.get("decision", {}), *wer.values(), *(data.get(k, {}) for k in ("latency", "tts"))]:
        for key in [k for k, v in table.items() if v is None]:
            del table[key]
    return _build(data, source)
