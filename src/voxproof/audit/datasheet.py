"""Audit output: a datasheet in Markdown (composition, collection, quality, known issues, licences and
attribution), in the spirit of "Datasheets for Datasets" (Gebru et al.), filled from an ``AuditResult``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from voxproof.audit.findings import SEVERITIES
from voxproof.audit.runner import AuditResult


def render_datasheet(result: AuditResult) -> str:
    d = result.to_dict()
    cov = d["coverage"]
    sig = d["stats"].get("signal") or {}
    lines = [f"# Datasheet: {result.source}", ""]
    lines += ["## Composition", "",
              (f"- Items: {cov['items']}; audio: {cov['hours']:.3f} h "
               f"(median item {sig.get('median_duration', 0):.2f} s)."),
              f"- Decoded: {sig.get('decoded', 0)}; could not be decoded: {sig.get('failed', 0)}."]
    for t in cov["tags"]:
        values = ", ".join(
            f"{k}: {v['utterances']} items / {v['hours'] * 60:.1f} min" for k, v in list(t["values"].items())[:10]
        )
        more = f" (+{t['distinct_values'] - 10} more)" if t["distinct_values"] > 10 else ""
        ent = "" if t["normalised_entropy"] is None else f"; normalised entropy {t['normalised_entropy']:.2f}"
        lines.append(f"- **{t['tag']}** ({t['distinct_values']} values, missing on {t['missing_share']:.0%}{ent}): "
                     f"{values}{more}")
    lines += ["", "## Collection", "",
              f"- Sample rates: {', '.join(f'{k} Hz x {v}' for k, v in (sig.get('sample_rates') or {}).items())}.",
              f"- Channels: {', '.join(f'{k} x {v}' for k, v in (sig.get('channels') or {}).items())}."]
    formats = Counter(Path(u.audio).suffix.lower().lstrip(".") or "(none)" for u in result.utterances())
    lines.append("- File formats: " + ", ".join(f"{k} x {v}" for k, v in formats.most_common()))
    sources = Counter(u.tags.get("source") for u in result.utterances() if u.tags.get("source"))
    if sources:
        lines.append("- Sources: " + ", ".join(f"{s} ({n} items)" for s, n in sources.most_common()))
    lines += ["", "## Quality", ""]
    for k, v in (sig.get("medians") or {}).items():
        lines.append(f"- median {k}: {v}")
    vad = d["stats"].get("vad") or {}
    if vad:
        lines.append(f"- speech detector: {vad['used']}" + (f" ({vad['requested']} was asked for: {vad['reason']})"
                                                              if vad.get("reason") else ""))
    rate = d["stats"].get("transcript_rate") or {}
    if "median_cps" in rate:
        lines.append(f"- median characters per second: {rate['median_cps']:.1f} over {rate['items']} transcripts")
    asr = d["stats"].get("asr")
    if asr:
        lines.append(f"- label noise checked with {asr['recogniser'].get('name')} ({asr['normalizer']}): WER threshold "
                     f"{asr['threshold']:.0%}, {asr['scored']} items scored"
                     + (f", {asr['failed']} could not be transcribed" if asr.get("failed") else ""))
    lines += ["", "## Known issues", ""]
    counts = result.findings.counts()
    lines.append("- Findings by severity: " + ", ".join(f"{s} {counts[s]}" for s in reversed(SEVERITIES)))
    for kind, (n, items) in sorted(result.findings.kinds().items()):
        lines.append(f"- `{kind}`: {n} finding(s), {items} item(s)")
    if result.against:
        lines.append(f"- Compared against `{result.against}` for shared audio, transcripts and speakers.")
    lines += ["", "## Licences", ""]
    lic = next((t for t in cov["tags"] if t["tag"] in ("licence", "license")), None)
    if lic:
        for k, v in lic["values"].items():
            lines.append(f"- {k}: {v['utterances']} items")
        lines.append(f"- without a licence tag: {lic['missing']} items")
    else:
        lines.append("- No item carries a licence tag.")
    lines.append(f"- Declared use: {result.options.intended_use}.")
    lines += ["", "### Attribution", ""]
    for e in result.attribution:
        extra = f" — {e['attribution']}" if e.get("attribution") else ""
        lines.append(f"- {e['source']}: {e['licence']} ({e['items']} items){extra}")
    if not result.attribution:
        lines.append("- (none recorded)")
    return "\n".join(lines) + "\n"


def write_datasheet(result: AuditResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_datasheet(result), encoding="utf-8")
    return path
