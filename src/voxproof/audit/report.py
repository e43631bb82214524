"""Audit outputs: ``findings.json`` (the whole result) and a self-contained HTML page (no scripts or
assets from elsewhere) listing findings by severity with their items and evidence.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from voxproof.audit.findings import SEVERITIES
from voxproof.audit.runner import AuditResult

MAX_ROWS = 3000  # the page stays light; findings.json has every finding
_COLOURS = {"info": "#6b7280", "low": "#2563eb", "medium": "#d97706", "high": "#dc2626", "critical": "#7f1d1d"}


def write_json(result: AuditResult, path: str | Path) -> Path:
    """``result.to_dict()`` as indented JSON, the findings streamed from the log (worst first) so a long
    list is never held in memory; the text is the same as ``json.dumps(result.to_dict(), indent=2)``."""
    path = Path(path)
    head = json.dumps({**result.to_dict(findings=False), "findings": []}, indent=2, ensure_ascii=False)
    assert head.endswith('"findings": []\n}')
    with path.open("w", encoding="utf-8") as out:
        out.write(head[: -len("]\n}")])
        for n, f in enumerate(result.findings.by_severity()):
            text = json.dumps(f.to_dict(), indent=2, ensure_ascii=False).replace("\n", "\n    ")
            out.write(("," if n else "") + "\n    " + text)
        out.write("\n  ]\n}\n" if len(result.findings) else "]\n}\n")
    return path


def _esc(value: Any) -> str:
    return html.escape(str(value))


def render_html(result: AuditResult) -> str:
    data = result.to_dict(findings=False)
    counts = data["counts"]
    rows = []
    hidden = max(0, len(result.findings) - MAX_ROWS)
    for f in (f.to_dict() for f in result.findings.by_severity(limit=MAX_ROWS)):
        items = f["items"]
        shown = ", ".join(items[:12]) + (f" … (+{len(items) - 12})" if len(items) > 12 else "")
        evidence = json.dumps(f["evidence"], ensure_ascii=False)
        if len(evidence) > 600:
            evidence = evidence[:600] + " …"
        rows.append(
            f"<tr><td><span class='sev' style='background:{_COLOURS[f['severity']]}'>{_esc(f['severity'])}</span></td>"
            f"<td><code>{_esc(f['kind'])}</code></td><td>{_esc(f['message'])}</td>"
            f"<td class='items'>{_esc(shown) or '<i>dataset</i>'}</td><td>{_esc(f['action'])}</td>"
            f"<td class='ev'><code>{_esc(evidence)}</code></td></tr>"
        )
    badges = " ".join(
        f"<span class='sev' style='background:{_COLOURS[s]}'>{s}: {counts[s]}</span>" for s in reversed(SEVERITIES)
    )
    cov_rows = []
    for t in data["coverage"]["tags"]:
        top = ", ".join(f"{k} ({v['utterances']}, {v['hours'] * 60:.1f} min)" for k, v in list(t["values"].items())[:8])
        cov_rows.append(
            f"<tr><td>{_esc(t['tag'])}</td><td>{t['distinct_values']}</td><td>{t['missing_share']:.0%}</td>"
            f"<td>{_esc(t['normalised_entropy'])}</td><td>{_esc(t['max_min_ratio'])}</td><td>{_esc(top)}</td></tr>"
        )
    an = data["stats"].get("analysis") or {}
    verdict = "FAILED" if data["failed"] else "passed"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voxproof audit: {_esc(data['source'])}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#111}} table{{border-collapse:collapse;width:100%;margin:1em 0}}
td,th{{border-bottom:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left;font-size:13px}}
.sev{{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}} .items{{max-width:22em}}
.ev code{{font-size:11px;word-break:break-all}}
</style></head><body>
<h1>Dataset audit</h1>
<p><b>{_esc(data['source'])}</b>{' against <b>' + _esc(data['against']) + '</b>' if data['against'] else ''}:
{data['stats']['items']} items, {data['coverage']['hours']:.3f} h; decoded {_esc(an.get('items', 0) - an.get('failed', 0))},
failed {_esc(an.get('failed', 0))}. Gate at <b>{_esc(data['fail_on'])}</b>: {verdict}.</p>
<p>{badges}</p>
<h2>Findings</h2>
<table><tr><th>severity</th><th>kind</th><th>what</th><th>items</th><th>fix</th><th>evidence</th></tr>
{''.join(rows)}</table>
{f"<p>{hidden} more finding(s) of lower severity are in findings.json.</p>" if hidden else ""}
<h2>Coverage</h2>
<table><tr><th>tag</th><th>values</th><th>missing</th><th>normalised entropy</th><th>max/min</th><th>largest values (items, minutes)</th></tr>
{''.join(cov_rows)}</table>
<p style="color:#666">voxproof {_esc(data['voxproof_version'])}; personal data is masked in evidence.</p>
</body></html>
"""


def write_html(result: AuditResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(result), encoding="utf-8")
    return path
