"""Audit stage 6, licences: per-item licence tags (``licence`` or ``license``, per source through the
``source`` tag), items without one, combinations that conflict with the declared use (non-commercial
items in a dataset for commercial use, no-derivatives items, share-alike mixed with other terms), and
the attribution list for the datasheet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from voxproof.audit.findings import Finding
from voxproof.manifest.utterance import Utterance

INTENDED_USES = ("any", "research", "commercial")


@dataclass(frozen=True)
class Licence:
    """A licence string read into its terms. ``family`` is cc / cc0 / public-domain / custom / unknown."""

    raw: str
    spdx: str
    family: str
    non_commercial: bool
    share_alike: bool
    no_derivatives: bool
    attribution: bool


def parse_licence(raw: str) -> Licence:
    """Reads ``CC BY-NC 4.0``, ``cc-by-sa-4.0``, ``CC0``, ``public domain``, ``MIT``... into terms."""
    s = raw.strip().lower().replace("_", "-")
    compact = re.sub(r"[\s-]+", "-", s)
    if compact in ("cc0", "cc0-1.0", "cc-zero") or "publicdomain" in compact.replace("-", ""):
        fam = "cc0" if "cc0" in compact or "zero" in compact else "public-domain"
        return Licence(raw, "CC0-1.0" if fam == "cc0" else "public-domain", fam, False, False, False, False)
    m = re.search(r"(?:creative-?commons|cc)-?(by(?:-(?:nc|sa|nd))*)(?:-(\d\.\d))?", compact)
    if m:
        parts = m.group(1).split("-")
        version = m.group(2) or ""
        spdx = "CC-" + "-".join(p.upper() for p in parts) + (f"-{version}" if version else "")
        return Licence(raw, spdx, "cc", "nc" in parts, "sa" in parts, "nd" in parts, True)
    known = {"mit": "MIT", "apache-2.0": "Apache-2.0", "apache": "Apache-2.0", "bsd": "BSD"}
    for key, spdx in known.items():
        if compact.startswith(key):
            return Licence(raw, spdx, "permissive", False, False, False, True)
    nc = bool(re.search(r"non-?commercial|research[- ]only|\bnc\b", s))
    return Licence(raw, raw.strip(), "custom", nc, False, False, True)


def item_licence(u: Utterance) -> str | None:
    v = u.tags.get("licence") or u.tags.get("license")
    return v.strip() if v and v.strip() else None


def _of_concern(lic: Licence) -> bool:
    """Whether items under ``lic`` can be named by a finding (the others are only counted)."""
    return lic.non_commercial or lic.no_derivatives or lic.share_alike or lic.family == "custom"


def check_licences(utts: Iterable[Utterance], intended_use: str = "any") -> tuple[list[Finding], list[dict[str, Any]]]:
    """Licence findings and the attribution list (one entry per source and licence), from one pass."""
    if intended_use not in INTENDED_USES:
        from voxproof.errors import UsageError

        raise UsageError(f"intended use {intended_use!r} is not one of {', '.join(INTENDED_USES)}")
    findings: list[Finding] = []
    missing: list[str] = []
    total = 0
    parsed: dict[str, Licence] = {}
    by_licence: dict[str, list[str]] = {}  # ids, kept only for licences that can raise a finding
    count: dict[str, int] = {}
    attribution: dict[tuple[str, str], dict[str, Any]] = {}
    for u in utts:
        total += 1
        raw = item_licence(u)
        if not raw:
            missing.append(u.id)
            continue
        lic = parsed.get(raw) or parsed.setdefault(raw, parse_licence(raw))
        count[lic.spdx] = count.get(lic.spdx, 0) + 1
        if _of_concern(lic):
            by_licence.setdefault(lic.spdx, []).append(u.id)
        source = u.tags.get("source") or u.tags.get("corpus") or "(unnamed source)"
        entry = attribution.setdefault((source, lic.spdx), {
            "source": source, "licence": lic.spdx, "items": 0,
            "attribution": u.tags.get("attribution") or u.tags.get("credit") or "",
        })
        entry["items"] += 1
    if missing:
        share = len(missing) / max(total, 1)
        findings.append(
            Finding("licence.missing", "high" if intended_use == "commercial" else "medium", tuple(missing),
                    f"{len(missing)} item(s) ({share:.0%}) carry no licence tag: their use cannot be cleared",
                    {"count": len(missing), "share": round(share, 4)},
                    action="exclude" if intended_use == "commercial" else "flag")
        )
    licences = {spdx: next(l for l in parsed.values() if l.spdx == spdx) for spdx in count}
    for spdx, lic in licences.items():
        ids = tuple(by_licence.get(spdx, ()))
        if lic.non_commercial and intended_use == "commercial":
            findings.append(
                Finding("licence.non_commercial", "high", ids,
                        f"{len(ids)} item(s) under {spdx} (non-commercial) in a dataset declared for commercial use",
                        {"licence": spdx, "intended_use": intended_use}, action="exclude")
            )
        elif lic.non_commercial:
            findings.append(
                Finding("licence.non_commercial", "low", ids,
                        f"{len(ids)} item(s) under {spdx} (non-commercial): the dataset cannot be used commercially",
                        {"licence": spdx, "intended_use": intended_use})
            )
        if lic.no_derivatives:
            findings.append(
                Finding("licence.no_derivatives", "medium", ids,
                        f"{len(ids)} item(s) under {spdx}: no derivatives (trimming, augmentation, training "
                        "may not be allowed)", {"licence": spdx})
            )
        if lic.family == "custom":
            findings.append(
                Finding("licence.custom", "info", ids,
                        f"{len(ids)} item(s) under a custom licence '{lic.raw}': read its terms",
                        {"licence": lic.raw}, action="none")
            )
    sa = [s for s, l in licences.items() if l.share_alike]
    others = [s for s, l in licences.items() if not l.share_alike and l.family not in ("cc0", "public-domain")]
    if sa and others:
        ids = tuple(i for s in sa for i in by_licence[s])
        findings.append(
            Finding("licence.share_alike_mix", "low", ids,
                    f"share-alike licence(s) {', '.join(sa)} mixed with {', '.join(others)}: a derived dataset "
                    "must be released under the share-alike terms",
                    {"share_alike": sa, "others": others})
        )
    return findings, sorted(attribution.values(), key=lambda e: (e["source"], e["licence"]))
