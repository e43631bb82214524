"""Audit output: a datasheet in Markdown (composition, collection, quality, known issues, licences and
attribution), in the spirit of "Datasheets for Datasets" (Gebru et al.), filled from an ``AuditResult``.

Tag names and values, sources, licences and attributions come from the audited data, so each goes
through :func:`voxproof.markdown.md_text` (escaped, one line, no links or images).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from voxproof.audit.findings import SEVERITIES
from voxproof.audit.runner import AuditResult
from voxproof.markdown import md_code
from voxproof.markdown import md_text as t


def render_datasheet(result: AuditResult) -> str:
    d = result.to_dict()
    cov = d["coverage"]
    sig = d["stats"].get("signal") or {}
    lines = [f"# Datasheet: {t(result.source)}", ""]
    lines += ["## Composition", "",
              (f"- Items: {cov['items']}; audio: {cov['hours']:.3f} h "
               f"(median item {sig.get('median_duration', 0):.2f} s)."),
              f"- Decoded: {sig.get('decoded', 0)}; could not be decoded: {sig.get('failed', 0)}."]
    for tag in cov["tags"]:
        values = ", ".join(
            f"{t(k)}: {v['utterances']} items / {v['hours'] * 60:.1f} min" for k, v in list(tag["values"].items())[:10]
        )
        more = f" (+{tag['distinct_values'] - 10} more)" if tag["distinct_values"] > 10 else ""
        ent = "" if tag["normalised_entropy"] is None else f"; normalised entropy {tag['normalised_entropy']:.2f}"
        lines.append(f"- **{t(tag['tag'])}** ({tag['distinct_values']} values, missing on {tag['missing_share']:.0%}"
                     f"{ent}): {values}{more}")
    lines += ["", "## Collection", "",
              f"- Sample rates: {', '.join(f'{t(k)} Hz x {v}' for k, v in (sig.get('sample_rates') or {}).items())}.",
              f"- Channels: {', '.join(f'{t(k)} x {v}' for k, v in (sig.get('channels') or {}).items())}."]
    formats = Counter(Path(u.audio).suffix.lower().lstrip(".") or "(none)" for u in result.utterances())
    lines.append("- File formats: " + ", ".join(f"{t(k)} x {v}" for k, v in formats.most_common()))
    sources = Counter(u.tags.get("source") for u in result.utterances() if u.tags.get("source"))
    if sources:
        lines.append("- Sources: " + ", ".join(f"{t(s)} ({n} items)" for s, n in sources.most_common()))
    lines += ["", "## Quality", ""]
    for k, v in (sig.get("medians") or {}).items():
        lines.append(f"- median {t(k)}: {t(v)}")
    vad = d["stats"].get("vad") or {}
    if vad:
        lines.append(f"- speech detector: {t(vad['used'])}" + (f" ({t(vad['requested'])} was asked for: {t(vad['reason'])})"
                                                              if vad.get("reason") else ""))
    rate = d["stats"].get("transcript_rate") or {}
    if "median_cps" in rate:
        lines.append(f"- median characters per second: {rate['median_cps']:.1f} over {rate['items']} transcripts")
    asr = d["stats"].get("asr")
    if asr:
        lines.append(f"- label noise checked with {t(asr['recogniser'].get('name'))} ({t(asr['normalizer'])}): WER threshold "
                     f"{asr['threshold']:.0%}, {asr['scored']} items scored"
                     + (f", {asr['failed']} could not be transcribed" if asr.get("failed") else ""))
    lines += ["", "## Known issues", ""]
    counts = result.findings.counts()
    lines.append("- Findings by severity: " + ", ".join(f"{s} {counts[s]}" for s in reversed(SEVERITIES)))
    for kind, (n, items) in sorted(result.findings.kinds().items()):
        lines.append(f"- {md_code(kind)}: {n} finding(s), {items} item(s)")
    if result.against:
        lines.append(f"- Compared against {md_code(result.against)} for shared audio, transcripts and speakers.")
    lines += ["", "## Licences", ""]
    lic = next((t for t in cov["tags"] if t["tag"] in ("licence", "license")), None)
    if lic:
        for k, v in lic["values"].items():
            lines.append(f"- {t(k)}: {v['utterances']} items")
        lines.append(f"- without a licence tag: {lic['missing']} items")
    else:
        lines.append("- No item carries a licence tag.")
    lines.append(f"- Declared use: {t(result.options.intended_use)}.")
    lines += ["", "### Attribution", ""]
    for e in result.attribution:
        extra = f" — {t(e['attribution'])}" if e.get("attribution") else ""
        lines.append(f"- {t(e['source'])}: {t(e['licence'])} ({e['items']} items){extra}")
    if not result.attribution:
        lines.append("- (none recorded)")
    return "\n".join(lines) + "\n"


def write_datasheet(result: AuditResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_datasheet(result), encoding="utf-8")
    return path
