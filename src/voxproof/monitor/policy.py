"""Monitor policy: windows, drift thresholds, estimate settings, markers and SLO rules, from TOML.

Parsed with :mod:`tomllib` and validated completely (unknown keys, bad values and NaN/inf refused with
the key path, as the gate's policy does). The annotated default ships as
``voxproof/data/default_monitor_policy.toml``. Example rule::

    [[slo]]
    name = "canary-empty-output"
    metric = "empty_output"   # error_rate, empty_output, latency_p99, est_wer, drift, marker:<name>
    route = "canary"                    # main, canary, shadow, all
    compare = "production"              # judge the difference canary - production
    max = 0.05                          # the limit (for a comparison: the largest allowed increase)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError
from voxproof.monitor.drift import CORRECTIONS, DriftSettings, WindowSpec
from voxproof.monitor.markers import MARKERS, MarkerSettings
from voxproof.monitor.profile import CATEGORICAL, NUMERIC

METRICS = ("error_rate", "empty_output", "latency_p99", "est_wer", "drift") + tuple(f"marker:{m}" for m in MARKERS)
RULE_ROUTES = ("main", "canary", "shadow", "all")
DECISIONS = ("interval", "point")
MAX_TEXT = 1 << 20


@dataclass(frozen=True)
class SloRule:
    """One rule. ``compare="production"``: the value is the difference of the route's rows against
    production's main rows (paired by request_id for ``shadow``, two-sample otherwise) and ``max`` the
    largest allowed increase. ``window``: the last N requests of each side."""

    name: str
    metric: str
    route: str = "main"
    max: float = 0.0
    decision: str = "interval"
    compare: str | None = None
    window: int = 500
    min_requests: int = 50

    @property
    def target(self) -> str:
        """Which alias a breach acts on: ``canary`` for canary/shadow rules, else ``production``."""
        return "canary" if self.route in ("canary", "shadow") else "production"


@dataclass(frozen=True)
class MonitorPolicy:
    source: str
    window: WindowSpec = field(default_factory=WindowSpec)
    drift: DriftSettings = field(default_factory=DriftSettings)
    markers: MarkerSettings = field(default_factory=MarkerSettings)
    resamples: int = 200
    confidence: float = 0.95
    seed: int = 0
    rules: tuple[SloRule, ...] = ()
    webhook: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def default_policy_text() -> str:
    return resources.files("voxproof").joinpath("data", "default_monitor_policy.toml").read_text(encoding="utf-8")


def load_policy(path: str | Path | None = None) -> MonitorPolicy:
    if path is None:
        return parse_policy(default_policy_text(), source="default")
    p = Path(path)
    try:
        if not p.is_file():
            raise UsageError(f"monitor policy {p} is not a file; omit --policy to use the default")
        if p.stat().st_size > MAX_TEXT:
            raise UsageError(f"monitor policy {p} is larger than 1 MiB; not a policy file")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read monitor policy {p}: {exc}") from None
    return parse_policy(text, source=str(p))


_TABLES: dict[str, dict[str, str]] = {
    "window": {"by": "choice:count,time", "size": "positive", "step": "positive", "min_requests": "int>=1"},
    "drift": {"psi": "positive", "alpha": "open_fraction", "correction": "choice:" + ",".join(CORRECTIONS),
              "features": "features"},
    "estimate": {"resamples": "int>=0", "confidence": "open_fraction", "seed": "int>=0"},
    "markers": {"no_speech_ratio": "fraction", "speech_ratio_for_empty": "fraction", "repeat_min": "int>=2",
                "loop_wps_factor": "positive"},
    "alerts": {"webhook": "url"},
    "slo": {"name": "string", "metric": "choice:" + ",".join(METRICS), "route": "choice:" + ",".join(RULE_ROUTES),
            "max": "nonneg", "decision": "choice:" + ",".join(DECISIONS), "compare": "choice:production",
            "window": "int>=1", "min_requests": "int>=1"},
}


def _value(source: str, where: str, kind: str, value: Any) -> Any:
    at = f"{source}: {where} = {value!r}"
    if kind.startswith("choice:"):
        choices = kind[7:].split(",")
        if value not in choices:
            raise UsageError(f"{at} is not one of {', '.join(choices)}")
        return value
    if kind == "string":
        if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\x00" in value:
            raise UsageError(f"{at} must be a non-empty name (at most 200 characters)")
        return value
    if kind == "url":
        if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > 2000:
            raise UsageError(f"{at} must be an http(s) URL")
        return value
    if kind == "features":
        valid = NUMERIC + CATEGORICAL
        if not isinstance(value, list) or not value or not all(v in valid for v in value):
            raise UsageError(f"{at} must be a non-empty list of features from: {', '.join(valid)}")
        return tuple(dict.fromkeys(value))
    if kind.startswith("int>="):
        lo = int(kind[5:])
        if not isinstance(value, int) or isinstance(value, bool) or value < lo or value > 10**9:
            raise UsageError(f"{at} must be an integer >= {lo} (at most 1e9)")
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise UsageError(f"{at} must be a finite number")
    value = float(value)
    if kind == "positive" and not 0 < value <= 1e9:
        raise UsageError(f"{at} must be greater than 0 (at most 1e9)")
    if kind == "nonneg" and not 0 <= value <= 1e9:
        raise UsageError(f"{at} must be 0 or more (at most 1e9)")
    if kind == "fraction" and not 0 <= value <= 1:
        raise UsageError(f"{at} must be between 0 and 1")
    if kind == "open_fraction" and not 0 < value < 1:
        raise UsageError(f"{at} must be strictly between 0 and 1")
    return value


def _table(source: str, name: str, table: Any, where: str | None = None) -> dict[str, Any]:
    where = where or name
    if not isinstance(table, dict):
        raise UsageError(f"{source}: {where} must be a table")
    schema = _TABLES[name]
    out = {}
    for key, value in table.items():
        if key not in schema:
            raise UsageError(f"{source}: unknown key {where}.{key}; valid keys: {', '.join(schema)}")
        out[key] = _value(source, f"{where}.{key}", schema[key], value)
    return out


def parse_policy(text: str, *, source: str = "<text>") -> MonitorPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _TABLES:
            raise UsageError(f"{source}: unknown key {key!r}; valid top-level keys: {', '.join(_TABLES)}")
    w = _table(source, "window", data.get("window", {}))
    size = w.get("size", 200)
    window = WindowSpec(w.get("by", "count"), size, w.get("step", size), w.get("min_requests", 50))
    d = _table(source, "drift", data.get("drift", {}))
    drift = DriftSettings(**{k: v for k, v in d.items()})
    m = _table(source, "markers", data.get("markers", {}))
    e = _table(source, "estimate", data.get("estimate", {}))
    a = _table(source, "alerts", data.get("alerts", {}))
    raw_rules = data.get("slo", [])
    if not isinstance(raw_rules, list):
        raise UsageError(f"{source}: slo must be an array of tables ([[slo]])")
    rules: list[SloRule] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        r = _table(source, "slo", raw, where=f"slo[{i}]")
        for need in ("name", "metric", "max"):
            if need not in r:
                raise UsageError(f"{source}: slo[{i}] needs {need}")
        if r["name"] in names:
            raise UsageError(f"{source}: two rules are named {r['name']!r}")
        names.add(r["name"])
        if r.get("compare") and r.get("route", "main") not in ("canary", "shadow"):
            raise UsageError(f"{source}: slo[{i}] ({r['name']}) compares with production: its route must be "
                             "canary (two-sample) or shadow (paired)")
        if r.get("route") == "shadow" and not r.get("compare"):
            raise UsageError(f"{source}: slo[{i}] ({r['name']}): shadow rows are judged only against production "
                             "(compare = \"production\")")
        if r["metric"] == "drift" and r.get("compare"):
            raise UsageError(f"{source}: slo[{i}] ({r['name']}): drift is judged against the reference, not compared")
        r.setdefault("min_requests", window.min_requests)
        rules.append(SloRule(**r))
    return MonitorPolicy(
        source=source, window=window, drift=drift, markers=MarkerSettings(**m),
        resamples=e.get("resamples", 200), confidence=e.get("confidence", 0.95), seed=e.get("seed", 0),
        rules=tuple(rules), webhook=a.get("webhook"),
    )


__all__ = ["METRICS", "MonitorPolicy", "SloRule", "load_policy", "parse_policy"]
