"""Audit output ``--fix OUT``: a cleaned manifest (JSONL) and a log of every change.

Items under an ``exclude`` finding are left out (for duplicate clusters every member but the kept one);
items under a ``flag`` finding are kept with the tag ``audit_flags`` listing the finding kinds. The
source manifest and audio are never touched. The log (``OUT`` with ``.log.jsonl``) has one line per
excluded or flagged item with the kinds, severities and messages behind it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from voxproof.audit.runner import AuditResult


@dataclass(frozen=True)
class FixSummary:
    manifest: Path
    log: Path
    kept: int
    excluded: int
    flagged: int

    def to_dict(self) -> dict[str, object]:
        return {"manifest": str(self.manifest), "log": str(self.log), "kept": self.kept,
                "excluded": self.excluded, "flagged": self.flagged}


def write_fix(result: AuditResult, out: str | Path) -> FixSummary:
    from voxproof.security.redact import redact_text

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name(out.name.removesuffix(".jsonl") + ".log.jsonl")
    kept = flagged = excluded = 0
    with out.open("w", encoding="utf-8") as fm, log_path.open("w", encoding="utf-8") as fl:
        for u in result.utterances():
            exclude, flag = result.findings.targets(u.id)
            if exclude:
                excluded += 1
                fl.write(json.dumps({"id": u.id, "action": "excluded", "reasons": [
                    {"kind": f.kind, "severity": f.severity, "message": redact_text(f.message)} for f in exclude]}) + "\n")
                continue
            if flag:
                flagged += 1
                kinds = sorted({f.kind for f in flag})
                u = u.replace(tags={**u.tags, "audit_flags": ",".join(kinds)})
                fl.write(json.dumps({"id": u.id, "action": "flagged", "reasons": [
                    {"kind": f.kind, "severity": f.severity, "message": redact_text(f.message)} for f in flag]}) + "\n")
            kept += 1
            fm.write(json.dumps(u.to_dict(), ensure_ascii=False) + "\n")
    return FixSummary(out, log_path, kept, excluded, flagged)
