"""TTS evaluation stage 7: the report. ``build_tts_summary`` gathers per-system summaries, the floor and
the paired comparisons into one JSON-serialisable dict (``summary.json``); ``console_table`` renders it
as text for the CLI; ``write_html`` writes a self-contained HTML page with audio players (base64 WAV)
for each system's worst items.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxproof.tts.detectors import FAILURE_KINDS
from voxproof.tts.summary import PromptScore, SystemComparison, SystemSummary

SCHEMA_VERSION = 1
MAX_EMBED_SECONDS = 30.0


def build_tts_summary(
    systems: Sequence[SystemSummary],
    comparisons: Sequence[SystemComparison],
    *,
    floor: SystemSummary | None,
    judges: dict[str, Any],
    prompts: dict[str, Any],
    worst: dict[str, list[PromptScore]] | None = None,
) -> dict[str, Any]:
    """The whole evaluation as one dict: what judged (recogniser, normaliser, MOS predictor, VAD,
    detector thresholds), the prompts, each system, the floor, and every paired comparison."""
    from voxproof import __version__

    return {
        "type": "tts_evaluation",
        "schema": SCHEMA_VERSION,
        "voxproof_version": __version__,
        "judges": judges,
        "prompts": prompts,
        "systems": {s.system: s.to_dict() for s in systems},
        "floor": None if floor is None else floor.to_dict(),
        "comparisons": [c.to_dict() for c in comparisons],
        "worst": {
            name: [_item_dict(s) for s in items] for name, items in (worst or {}).items()
        },
    }


def _item_dict(s: PromptScore) -> dict[str, Any]:
    extras = s.row.extras or {}
    return {
        "id": s.id, "category": s.category, "status": s.status, "text": extras.get("text"),
        "reference": s.row.reference, "hypothesis": s.row.hypothesis, "wer": _num(s.wer),
        "mos_ovrl": _num(s.mos.get("ovrl")),
        "failures": [k for k, v in s.failures.items() if v],
        "failure_details": extras.get("failure_details") or {},
        "error": s.row.error_message, "audio_file": extras.get("audio_file"),
    }


def write_summary(summary: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# -- console ---------------------------------------------------------------------------------------
def _pct(iv: dict[str, Any] | None) -> str:
    if not iv or iv.get("estimate") is None:
        return "n/a"
    low, high = iv.get("low"), iv.get("high")
    ci = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * iv['estimate']:.1f}%{ci}"


def _mos(iv: dict[str, Any] | None) -> str:
    if not iv or iv.get("estimate") is None:
        return "n/a"
    low, high = iv.get("low"), iv.get("high")
    ci = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"{iv['estimate']:.2f}{ci}"


def console_table(summary: dict[str, Any]) -> str:
    """Plain-text tables: systems (and the floor), failure counts, paired comparisons."""
    rows = list(summary["systems"].values())
    if summary.get("floor"):
        rows.append(summary["floor"])
    lines = []
    mos = (summary.get("judges") or {}).get("mos")
    label = f"MOS by {mos['name']} ({mos['version']})" if mos else "MOS not run"
    head = f"{'system':<14} {'items':>5} {'WER [95% CI]':<22} {'CER':<20} {'OVRL [95% CI]':<19} {'P.808':<19} {'SIG':>5} {'BAK':>5} {'fail':>5} {'RTF':>6} {'cpuRTF':>6}"
    lines.append(f"Intelligibility by {(summary['judges'].get('asr') or {}).get('name', '?')} "
                 f"(normaliser {summary['judges']['normalizer']['name']}@{summary['judges']['normalizer']['version']}); "
                 f"{label}")
    lines.append(head)
    lines.append("-" * len(head))
    for s in rows:
        rtf, cpu = s["timing"].get("rtf"), s["timing"].get("cpu_rtf")
        lines.append(
            f"{s['system']:<14} {s['n_items']:>5} {_pct(s['wer']):<22} {_pct(s['cer']):<20} "
            f"{_mos(s['mos'].get('ovrl')):<19} {_mos(s['mos'].get('p808')):<19} "
            f"{_fmt(s['mos'].get('sig')):>5} {_fmt(s['mos'].get('bak')):>5} "
            f"{s['any_failure']['count']:>5} {f'{rtf:.3f}' if rtf else 'n/a':>6} {f'{cpu:.3f}' if cpu else 'n/a':>6}"
        )
    lines.append("")
    names = [s["system"] for s in rows]
    lines.append("Failures (count of items flagged)  " + "  ".join(f"{n:>10}" for n in names))
    for kind in FAILURE_KINDS:
        lines.append(f"  {kind:<32} " + "  ".join(f"{s['failures'][kind]['count']:>10}" for s in rows))
    for comp in summary.get("comparisons") or []:
        lines.append("")
        lines.append(f"Paired comparison {comp['b']} - {comp['a']} on {comp['n_common']} prompts")
        for m in comp["metrics"]:
            d = m["difference"]
            scale = 100 if not m["higher_is_better"] else 1
            unit = " pts" if scale == 100 else ""
            tests = ", ".join(f"{t['name']} p={_p(t['p_value'])}" for t in m["tests"])
            lines.append(
                f"  {m['metric']:<14} A {_val(m['a'], scale)}  B {_val(m['b'], scale)}  "
                f"B-A {_val(d['estimate'], scale)}{unit} [{_val(d['low'], scale)}, {_val(d['high'], scale)}]  "
                f"P(B better) {_val(m['prob_b_better'], 1)}  {tests}"
            )
        for w in comp.get("warnings") or []:
            lines.append(f"  note: {w}")
    return "\n".join(lines)


def _fmt(iv: dict[str, Any] | None) -> str:
    return "n/a" if not iv or iv.get("estimate") is None else f"{iv['estimate']:.2f}"


def _val(x: float | None, scale: float) -> str:
    return "n/a" if x is None else f"{x * scale:.2f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# -- HTML ------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.txt{overflow-wrap:anywhere;max-width:560px}td.n{text-align:right;font-variant-numeric:tabular-nums}
.flag{color:#b00;font-weight:600}.muted{color:#777}code{background:#f6f6f6;padding:0 3px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _clip(text: str | None, limit: int = 400) -> str | None:
    """Long transcripts (a looping recogniser) shortened for display; the JSON keeps them whole."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _wav_data_uri(path: Path) -> str | None:
    """16-bit PCM WAV of ``path`` (first MAX_EMBED_SECONDS) as a data: URI, or None if unreadable."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (OSError, RuntimeError):
        return None
    data = data[: int(MAX_EMBED_SECONDS * rate)]
    buf = io.BytesIO()
    sf.write(buf, data.clip(-1, 1), rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_html(summary: dict[str, Any], path: str | Path, *, audio_roots: dict[str, Path] | None = None) -> Path:
    """A self-contained HTML report. ``audio_roots`` maps each system to its run directory, where the
    worst items' clips (``audio/<id>.wav``) are read and embedded."""
    path = Path(path)
    audio_roots = audio_roots or {}
    judges = summary["judges"]
    mos = judges.get("mos")
    asr = judges.get("asr") or {}
    head = ("<!doctype html><html><head><meta charset='utf-8'><title>voxproof TTS evaluation</title>"
            f"<style>{_CSS}</style></head><body><h1>TTS evaluation</h1>")
    out = [head]
    out.append(
        f"<p>Prompts: <code>{_e(summary['prompts'].get('source'))}</code> ({summary['prompts'].get('count')} prompts, "
        f"hash {_e(summary['prompts'].get('hash'))}). Intelligibility: {_e(asr.get('name'))} "
        f"(<code>{_e(asr.get('model'))}</code>) against the expected spoken forms, normaliser "
        f"<code>{_e(judges['normalizer']['name'])}@{_e(judges['normalizer']['version'])}</code>. "
        f"MOS: {_e(mos['name'] + ' (' + mos['version'] + ', models ' + mos['model_checksum'] + ')') if mos else 'not run'}"
        f"; voice activity: {_e(judges.get('vad'))}. Intervals: 95% percentile bootstrap over prompts.</p>"
    )
    rows = list(summary["systems"].values()) + ([summary["floor"]] if summary.get("floor") else [])
    out.append("<h2>Systems</h2><table><tr><th>system</th><th>items</th><th>WER [95% CI]</th><th>CER</th>"
               "<th>OVRL</th><th>P.808</th><th>SIG</th><th>BAK</th><th>OVRL (failures at 1.0)</th>"
               "<th>items with a failure</th><th>words/s</th><th>duration ratio</th><th>RTF (wall)</th><th>RTF (CPU)</th></tr>")
    for s in rows:
        t = s["timing"]
        out.append(
            f"<tr><td>{_e(s['system'])}</td><td class=n>{s['n_items']}</td><td class=n>{_pct(s['wer'])}</td>"
            f"<td class=n>{_pct(s['cer'])}</td><td class=n>{_mos(s['mos'].get('ovrl'))}</td>"
            f"<td class=n>{_mos(s['mos'].get('p808'))}</td><td class=n>{_fmt(s['mos'].get('sig'))}</td>"
            f"<td class=n>{_fmt(s['mos'].get('bak'))}</td><td class=n>{_val(s.get('ovrl_penalised'), 1)}</td>"
            f"<td class=n>{s['any_failure']['count']}</td><td class=n>{_val(t.get('median_words_per_second'), 1)}</td>"
            f"<td class=n>{_val(t.get('median_duration_ratio'), 1)}</td><td class=n>{_val(t.get('rtf'), 1)}</td><td class=n>{_val(t.get('cpu_rtf'), 1)}</td></tr>"
        )
    out.append("</table>")
    if summary.get("floor"):
        out.append("<p class=muted>The <b>floor</b> row is real recorded speech scored the same way: its WER is "
                   "the recogniser's own error on human speech, its MOS what the predictor gives real recordings.</p>")
    for s in rows:
        for w in s.get("warnings") or []:
            out.append(f"<p class=muted>{_e(s['system'])}: {_e(w)}</p>")
        if s.get("mos_warnings"):
            out.append(f"<p class=muted>{_e(s['system'])}: {s['mos_warnings']} item(s) outside the MOS predictor's "
                       "domain (too short, upsampled, little speech or not English): see mos_warnings per row</p>")
    out.append("<h2>Failures</h2><table><tr><th>detector</th>" + "".join(f"<th>{_e(s['system'])}</th>" for s in rows) + "</tr>")
    for kind in FAILURE_KINDS:
        cells = "".join(
            f"<td class=n title='{_e(', '.join(s['failures'][kind]['ids']))}'>"
            f"{'<span class=flag>' if s['failures'][kind]['count'] else ''}{s['failures'][kind]['count']}"
            f"{'</span>' if s['failures'][kind]['count'] else ''}</td>" for s in rows
        )
        out.append(f"<tr><td>{kind}</td>{cells}</tr>")
    out.append("</table>")
    for comp in summary.get("comparisons") or []:
        out.append(f"<h2>{_e(comp['b'])} &minus; {_e(comp['a'])} (paired, {comp['n_common']} prompts)</h2>"
                   "<table><tr><th>metric</th><th>A</th><th>B</th><th>B &minus; A [95% CI]</th>"
                   "<th>P(B better)</th><th>tests (two-sided p)</th></tr>")
        for m in comp["metrics"]:
            d = m["difference"]
            scale = 1 if m["higher_is_better"] else 100
            tests = "; ".join(f"{_e(t['name'])} p={_p(t['p_value'])} (n={t['n']})" for t in m["tests"])
            out.append(f"<tr><td>{_e(m['metric'])}</td><td class=n>{_val(m['a'], scale)}</td><td class=n>{_val(m['b'], scale)}</td>"
                       f"<td class=n>{_val(d['estimate'], scale)} [{_val(d['low'], scale)}, {_val(d['high'], scale)}]</td>"
                       f"<td class=n>{_val(m['prob_b_better'], 1)}</td><td>{tests}</td></tr>")
        out.append("</table><p class=muted>WER and failure share in percentage points; MOS on the 1&ndash;5 scale.</p>")
        for w in comp.get("warnings") or []:
            out.append(f"<p class=muted>{_e(w)}</p>")
    cats = sorted({c for s in summary["systems"].values() for c in s["by_category"]})
    if cats:
        out.append("<h2>WER by prompt category</h2><table><tr><th>category</th>"
                   + "".join(f"<th>{_e(n)}</th>" for n in summary["systems"]) + "</tr>")
        for c in cats:
            cells = ""
            for s in summary["systems"].values():
                v = s["by_category"].get(c) or {"wer": None, "n": 0}
                wer = "n/a" if v["wer"] is None else f"{100 * v['wer']:.1f}%"
                cells += f"<td class=n>{wer} ({v['n']})</td>"
            out.append(f"<tr><td>{_e(c)}</td>{cells}</tr>")
        out.append("</table>")
    for name, items in (summary.get("worst") or {}).items():
        out.append(f"<h2>Worst items: {_e(name)}</h2><table><tr><th>id</th><th>audio</th><th>text / expected / heard</th>"
                   "<th>WER</th><th>OVRL</th><th>failures</th></tr>")
        root = audio_roots.get(name)
        for it in items:
            player = "<span class=muted>no audio</span>"
            if root is not None and it.get("audio_file"):
                uri = _wav_data_uri(root / it["audio_file"])
                if uri:
                    player = f"<audio controls preload='none' src='{uri}'></audio>"
            flags = "<br>".join(f"<span class=flag>{_e(k)}</span>: {_e((it['failure_details'] or {}).get(k, ''))}"
                                for k in it["failures"]) or "&ndash;"
            out.append(
                f"<tr><td>{_e(it['id'])}<br><span class=muted>{_e(it['category'])}</span></td><td>{player}</td>"
                f"<td class=txt>{_e(it['text'])}<br><span class=muted>expected:</span> {_e(it['reference'])}"
                f"<br><span class=muted>heard:</span> {_e(_clip(it['hypothesis'] if it['hypothesis'] is not None else it['error']))}</td>"
                f"<td class=n>{_val(it['wer'], 100)}%</td><td class=n>{_val(it['mos_ovrl'], 1)}</td><td>{flags}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    path.write_text("\n".join(out), encoding="utf-8")
    return path
