"""Monitor stage: act on breached rules through the registry, record incidents, send alerts.

One cycle (:func:`watch_once`): read the tail of the log, judge the policy's rules with the registry's
current aliases (canary rules judge only rows of the version the ``canary`` alias names; production
rules only rows of the production version), then for a breach:

- on the canary: remove the ``canary`` alias (actor ``monitor``, the rule and its figures as reason);
- on production: judge the same rule on the rows the ``previous`` version served; when it passes, roll
  production back to it; when it cannot be judged or also breaches, alert only.

Every breach writes an incident record (JSON: rule, window, figures, action, registry change, log row
ids) into the incidents folder, is logged, and is POSTed as JSON to the webhook when one is set.
:func:`watch` repeats cycles every ``every`` seconds, for at most ``cycles`` cycles when given.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.monitor.analysis import ANALYSIS_COLUMNS
from voxproof.monitor.policy import MonitorPolicy
from voxproof.monitor.profile import ReferenceProfile
from voxproof.monitor.rules import RuleResult, evaluate_rule, evaluate_rules, read_tail
from voxproof.monitor.source import open_log

log = logging.getLogger("voxproof.monitor")
ACTOR = "monitor"
TAIL_COLUMNS = ANALYSIS_COLUMNS


@dataclass(frozen=True)
class Incident:
    at: str
    rule: dict[str, Any]
    action: str  # remove-canary / rollback / alert-only
    target: str
    version: str | None
    change: dict[str, Any] | None
    log: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "rule": self.rule, "action": self.action, "target": self.target,
                "version": self.version, "registry_change": self.change, "log": self.log,
                "notes": list(self.notes)}


@dataclass(frozen=True)
class CycleResult:
    results: tuple[RuleResult, ...]
    incidents: tuple[Incident, ...]
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def breached(self) -> bool:
        return any(r.breached for r in self.results)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)[:60].strip("-") or "rule"


def _reason(r: RuleResult) -> str:
    return f"monitor rule {r.rule.name!r} breached: {r.detail}"


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 5.0) -> bool:
    """POST ``payload`` as JSON; False (logged) when the endpoint cannot be reached or answers an error."""
    data = json.dumps(payload, default=str).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ok = 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return False
    if not ok:
        log.warning("webhook %s answered %s", url, resp.status)
    return ok


def watch_once(log_location: str, registry_location: str | None, policy: MonitorPolicy,
               profile: ReferenceProfile | None, *, incidents_dir: str | Path | None = None,
               webhook: str | None = None) -> CycleResult:
    """One evaluation of every rule, with the actions a breach calls for (see the module docstring)."""
    from voxproof.registry import Registry

    keep = max((r.window for r in policy.rules), default=500)
    source = open_log(log_location)
    tails = read_tail(source.chunks(TAIL_COLUMNS), keep * 4)
    registry = Registry.open(registry_location) if registry_location else None
    incidents: list[Incident] = []
    try:
        aliases = registry.aliases() if registry else {}
        results = evaluate_rules(tails, policy, profile, aliases or None)
        acted: set[str] = set()
        for r in results:
            if not r.breached:
                continue
            log.warning("%s", _reason(r))
            action, change, notes = "alert-only", None, []
            if registry is not None and r.rule.target not in acted:
                action, change, notes = _act(registry, r, aliases, log_location, policy, profile)
                if action != "alert-only":
                    acted.add(r.rule.target)
                    aliases = registry.aliases()
            elif registry is None:
                notes.append("no registry given: alert only")
            inc = Incident(
                at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), rule=r.to_dict(), action=action,
                target=r.rule.target, version=r.version, change=change,
                log={"location": log_location if "://" not in log_location else log_location.split("@")[-1],
                     "row_ids": list(r.row_ids), "rows_judged": r.n, "production_rows": r.n_production},
                notes=tuple(notes),
            )
            incidents.append(inc)
            if incidents_dir is not None:
                folder = Path(incidents_dir)
                folder.mkdir(parents=True, exist_ok=True)
                stamp = inc.at.replace(":", "").replace("-", "").replace(".", "")
                path = folder / f"incident-{stamp}-{_slug(r.rule.name)}.json"
                path.write_text(json.dumps(inc.to_dict(), indent=1, default=str) + "\n", encoding="utf-8")
                log.warning("incident written to %s (action: %s)", path, action)
            if webhook or policy.webhook:
                post_webhook(webhook or policy.webhook, {"type": "voxproof.monitor.incident", **inc.to_dict()})
        return CycleResult(tuple(results), tuple(incidents), dict(aliases))
    finally:
        if registry is not None:
            registry.close()


def _act(registry: Any, r: RuleResult, aliases: dict[str, str], log_location: str, policy: MonitorPolicy,
         profile: ReferenceProfile | None) -> tuple[str, dict[str, Any] | None, list[str]]:
    reason = _reason(r)
    if r.rule.target == "canary":
        canary = aliases.get("canary")
        if canary is None or (r.version is not None and canary != r.version):
            return "alert-only", None, [f"the canary alias no longer names {r.version!r}; nothing to remove"]
        old = registry.remove_alias("canary", actor=ACTOR, reason=reason)
        return "remove-canary", {"action": "remove-alias", "alias": "canary", "from_version": old}, []
    previous = aliases.get("previous")
    if previous is None:
        return "alert-only", None, ["production breached and there is no previous version to roll back to"]
    prev_result = _judge_version(r, previous, log_location, policy, profile)
    if prev_result.status != "ok":
        why = (f"previous version {previous!r} not rolled back to: the same rule on its rows "
               f"is {prev_result.status} ({prev_result.detail})")
        return "alert-only", None, [why]
    change = registry.rollback(actor=ACTOR, reason=reason)
    return "rollback", {**change.to_dict(), "previous_check": prev_result.to_dict()}, []


def _judge_version(r: RuleResult, version: str, log_location: str, policy: MonitorPolicy,
                   profile: ReferenceProfile | None) -> RuleResult:
    """The same rule on the main rows ``version`` served (anywhere in the log)."""
    def chunks():
        for c in open_log(log_location).chunks(TAIL_COLUMNS):
            yield c.take(np.flatnonzero(c.get("version") == version))

    tails = read_tail(chunks(), r.rule.window)
    return evaluate_rule(r.rule, tails, policy, profile, {"production": version})


def watch(log_location: str, registry_location: str | None, policy: MonitorPolicy,
          profile: ReferenceProfile | None, *, every: float, cycles: int | None = None,
          incidents_dir: str | Path | None = None, webhook: str | None = None,
          on_cycle: Callable[[CycleResult], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Cycles every ``every`` seconds (``cycles`` of them when given); returns the number of incidents."""
    if not (math.isfinite(every) and 0 < every <= 86400):
        from voxproof.errors import UsageError

        raise UsageError(f"--every {every} must be between 0 and 86400 seconds")
    total = 0
    k = 0
    while cycles is None or k < cycles:
        started = time.monotonic()
        res = watch_once(log_location, registry_location, policy, profile, incidents_dir=incidents_dir,
                         webhook=webhook)
        total += len(res.incidents)
        if on_cycle is not None:
            on_cycle(res)
        k += 1
        if cycles is not None and k >= cycles:
            break
        sleep(max(0.0, every - (time.monotonic() - started)))
    return total
