"""Audit outputs: ``findings.json`` (the whole result) and a self-contained HTML page (no scripts or
assets from elsewhere) listing findings by severity with their items and evidence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voxproof.audit.findings import SEVERITIES
from voxproof.audit.runner import AuditResult
from voxproof.security.redact import redact_finding

MAX_ROWS = 3000  # the page stays light; findings.json has every finding


def write_json(result: AuditResult, path: str | Path) -> Path:
    """``result.to_dict()`` as indented JSON, the findings streamed from the log (worst first) so a long
    list is never held in memory; the text is the same as ``json.dumps(result.to_dict(), indent=2)`` (with the
findings under the process's PII redaction policy, :mod:`voxproof.security.redact`)."""
    path = Path(path)
    head = json.dumps({**result.to_dict(findings=False), "findings": []}, indent=2, ensure_ascii=False)
    assert head.endswith('"findings": []\n}')
    with path.open("w", encoding="utf-8") as out:
        out.write(head[: -len("]\n}")])
        for n, f in enumerate(result.findings.by_severity()):
            text = json.dumps(redact_finding(f.to_dict()), indent=2, ensure_ascii=False).replace("\n", "\n    ")
            out.write(("," if n else "") + "\n    " + text)
        out.write("\n  ]\n}\n" if len(result.findings) else "]\n}\n")
    return path


def _balance(t: dict[str, Any], key: str, spec: str) -> str:
    from voxproof.report.html import fmt_num

    why = "one value only" if t["distinct_values"] < 2 else "no audio duration"
    return fmt_num(t.get(key), spec, why)


def render_html(result: AuditResult) -> str:
    """The audit page, built from the shared report components (no scripts)."""
    from voxproof.report.html import Section, badge, card, esc, fmt_pct, page, paragraph, plain, table

    data = result.to_dict(findings=False)
    counts = data["counts"]
    rows = []
    hidden = max(0, len(result.findings) - MAX_ROWS)
    for f in (redact_finding(f.to_dict()) for f in result.findings.by_severity(limit=MAX_ROWS)):
        items = f["items"]
        shown = ", ".join(items[:12]) + (f" … (+{len(items) - 12})" if len(items) > 12 else "")
        evidence = plain(f["evidence"])
        if len(evidence) > 600:
            evidence = evidence[:600] + " …"
        rows.append([
            (badge(f["severity"], f["severity"]), SEVERITIES.index(f["severity"])),
            (f"<code>{esc(f['kind'])}</code>", f["kind"]), f["message"],
            (esc(shown) if shown else "<i>dataset</i>", shown), f["action"] or "none",
            (f"<span class='muted'>{esc(evidence)}</span>", evidence),
        ])
    cov_rows = []
    for t in data["coverage"]["tags"]:
        top = ", ".join(f"{k} ({v['utterances']}, {v['hours'] * 60:.1f} min)" for k, v in list(t["values"].items())[:8])
        cov_rows.append([t["tag"], t["distinct_values"], fmt_pct(t["missing_share"], 0),
                         _balance(t, "normalised_entropy", ".3f"), _balance(t, "max_min_ratio", ".2f"), top])
    an = data["stats"].get("analysis") or {}
    vad = data["stats"].get("vad") or {}
    failed = data["failed"]
    summary_cards = "<div class='cards'>" + "".join([
        card("items", str(data["stats"]["items"]), f"{data['coverage']['hours']:.3f} h of audio"),
        card("decoded", str(an.get("items", 0) - an.get("failed", 0)), f"{an.get('failed', 0)} failed"),
        card("gate", "FAILED" if failed else "passed", f"fails at {data['fail_on']} or worse"),
        card("speech detector", str(vad.get("used", data["options"].get("vad"))),
             f"{vad['requested']} was asked for: {vad['reason']}" if vad.get("reason") else "speech ratio, SNR, level"),
    ]) + "</div>"
    badges = " ".join(badge(f"{s}: {counts[s]}", s) for s in reversed(SEVERITIES))
    against = f" against {data['against']}" if data["against"] else ""
    findings_body = paragraph("Worst first; the evidence is masked where it holds personal data.", "muted") + table(
        ["severity", "kind", "what", "items", "fix", "evidence"], rows, sortable=False)
    if hidden:
        findings_body += paragraph(f"{hidden} more finding(s) of lower severity are in findings.json.", "muted")
    sections = [
        Section("Summary", summary_cards + f"<p>{badges}</p>", "summary"),
        Section("Findings", findings_body if rows else paragraph("No findings."), "findings"),
        Section("Coverage", table(["tag", "values", "missing", "normalised entropy", "largest / smallest",
                                   "largest values (items, minutes)"], cov_rows, sortable=False, numeric=(1, 2, 3, 4))
                if cov_rows else paragraph("No tags on the items."), "coverage"),
    ]
    return page(f"voxproof audit: {data['source']}", sections,
                subtitle=f"{data['source']}{against} · voxproof {data['voxproof_version']} · personal data is "
                         "masked in evidence",
                badge_html=badge("FAILED" if failed else "passed", "fail" if failed else "pass"))


def write_html(result: AuditResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(result), encoding="utf-8")
    return path
