"""TTS evaluation stage 7: the report. ``build_tts_summary`` gathers per-system summaries, the floor and
the paired comparisons into one JSON-serialisable dict (``summary.json``); ``console_table`` renders it
as text for the CLI; ``write_html`` writes a self-contained HTML page with audio players (base64 WAV)
for each system's worst items.
"""

from __future__ import annotations

import base64
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
    resynth: Sequence[dict[str, Any]] = (),
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
        "resynth": list(resynth),
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
    from voxproof.security.redact import redact_value

    summary = redact_value(summary)  # prompt texts and transcripts, under the process's PII policy
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# -- console ---------------------------------------------------------------------------------------
NO_WER = "no item recognised"
NO_MOS = "MOS not run: --no-mos, or the DNSMOS models are missing"
NOT_TIMED = "not timed"


def _why(reason: str | None) -> str:
    return f"n/a ({reason})" if reason else "n/a"


def _pct(iv: dict[str, Any] | None, reason: str | None = None) -> str:
    if not iv or iv.get("estimate") is None:
        return _why(reason)
    low, high = iv.get("low"), iv.get("high")
    ci = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * iv['estimate']:.1f}%{ci}"


def _mos(iv: dict[str, Any] | None, reason: str | None = None) -> str:
    if not iv or iv.get("estimate") is None:
        return _why(reason)
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
    missing = sorted({why for s in rows for why, gone in (
        (f"WER: {NO_WER}", s["wer"].get("estimate") is None if s.get("wer") else True),
        (f"MOS: {NO_MOS if not mos else 'no item in the predictor domain'}", not (s["mos"].get("ovrl") or {}).get("estimate")),
        (f"RTF: {NOT_TIMED}", not s["timing"].get("rtf"))) if gone})
    if missing:
        lines.append("n/a: " + "; ".join(missing))
    if any(s["mos"].get("plcmos") for s in rows):
        lines.append("PLCMOS v2 [95% CI]  " + "   ".join(
            f"{s['system']} {_mos(s['mos'].get('plcmos'), 'not run')}" for s in rows))
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
    speaker = (summary.get("judges") or {}).get("speaker")
    if speaker:
        lines.append("")
        lines.extend(speaker_lines(rows, speaker))
    if summary.get("resynth"):
        lines.append("")
        lines.extend(resynth_lines(summary["resynth"]))
    return "\n".join(lines)


def speaker_lines(rows: Sequence[dict[str, Any]], speaker: dict[str, Any]) -> list[str]:
    """Cosine similarity to the target voice and voice consistency per system."""
    model, ref = speaker.get("model") or {}, speaker.get("reference") or {}
    lines = [(f"Speaker similarity to {ref.get('source')} ({ref.get('clips')} clips) by {model.get('name')} "
             f"(sha256 {str(model.get('checksum'))[:12]}); cosine, comparable only under this model")]
    for s in rows:
        ref_figs = s.get("reference") or {}
        lines.append(f"  {s['system']:<14} similarity {_mos(ref_figs.get('speaker_similarity'), 'no clip embedded'):<20} "
                     f"voice consistency {_fmt(ref_figs.get('voice_consistency'), 'fewer than 2 clips')}")
    return lines


def resynth_lines(table: Sequence[dict[str, Any]]) -> list[str]:
    """The codec/vocoder table: reference figures against the original recordings, next to the WER the
    round trip causes (paired against the unmodified recordings)."""
    head = (f"{'resynthesis':<20} {'n':>3} {'PESQ [95% CI]':<19} {'STOI [95% CI]':<19} {'MCD dB':>7} "
            f"{'F0 RMSE c':>9} {'V/UV err':>8}  {'WER':>6} {'WER - floor [95% CI]':<24}")
    lines = ["Resynthesis of the floor recordings (reference figures against the originals)", head,
             "-" * len(head)]
    for item in table:
        s, ref = item["summary"], item["summary"].get("reference") or {}
        try:
            d = next(m for m in item["versus_floor"]["metrics"] if m["metric"] == "wer")["difference"]
            delta = f"{_val(d['estimate'], 100)} [{_val(d['low'], 100)}, {_val(d['high'], 100)}] pts"
        except StopIteration:
            delta = _why("no common recognised items")
        lines.append(
            f"{item['condition']:<20} {s['n_items']:>3} {_mos(ref.get('pesq'), 'not computed'):<19} "
            f"{_mos(ref.get('stoi'), 'not computed'):<19} {_fmt(ref.get('mcd'), 'none'):>7} "
            f"{_fmt(ref.get('f0_rmse'), 'none'):>9} {_fmt(ref.get('vuv_error'), 'none'):>8}  "
            f"{_pct({'estimate': s['wer'].get('estimate')}, NO_WER):>6} {delta:<24}"
        )
    return lines


def _fmt(iv: dict[str, Any] | None, reason: str | None = None) -> str:
    return _why(reason) if not iv or iv.get("estimate") is None else f"{iv['estimate']:.2f}"


def _val(x: float | None, scale: float, reason: str | None = None) -> str:
    return _why(reason) if x is None or not math.isfinite(x) else f"{x * scale:.2f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# -- HTML ------------------------------------------------------------------------------------------
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


def _cell(text: str) -> tuple[str, str]:
    """A table cell of already formatted text, escaped, negatives with a typographic minus."""
    from voxproof.report.html import typographic

    return typographic(text), text


def write_html(summary: dict[str, Any], path: str | Path, *, audio_roots: dict[str, Path] | None = None) -> Path:
    """A self-contained HTML report from the shared report components. ``audio_roots`` maps each system
    to its run directory, where the worst items' clips (``audio/<id>.wav``) are read and embedded."""
    from voxproof.report.html import Section, badge, details, esc, kv, page, paragraph, table
    from voxproof.security.redact import redact_value

    summary = redact_value(summary)  # the same policy as the JSON

    path = Path(path)
    audio_roots = audio_roots or {}
    judges = summary["judges"]
    mos = judges.get("mos")
    asr = judges.get("asr") or {}
    prompts = summary["prompts"]
    sections = [Section("Judges", kv({
        "prompts": f"{prompts.get('source')} ({prompts.get('count')} prompts, hash {prompts.get('hash')})",
        "intelligibility": f"{asr.get('name')} ({asr.get('model')}) against the expected spoken forms, normaliser "
                           f"{judges['normalizer']['name']}@{judges['normalizer']['version']}",
        "MOS predictor": f"{mos['name']} ({mos['version']}, models {mos['model_checksum']})" if mos else
                         _why(NO_MOS),
        **({"PLCMOS": f"{mos['plcmos']['model']} (models {mos['plcmos']['model_checksum']}, "
                      f"{mos['plcmos']['rater_embeddings']})"} if mos and mos.get("plcmos") else {}),
        "voice activity": judges.get("vad"),
        "intervals": "95% percentile bootstrap over prompts",
    }), "judges")]
    rows = list(summary["systems"].values()) + ([summary["floor"]] if summary.get("floor") else [])
    no_mos = NO_MOS if not mos else "no item in the predictor's domain"
    plc = bool(mos and mos.get("plcmos"))
    mos_heads = ["OVRL", "P.808", "SIG", "BAK", "OVRL (failures at 1.0)", *(["PLCMOS"] if plc else [])] if mos else []
    sys_rows = []
    for s in rows:
        t = s["timing"]
        mos_cells = [_mos(s["mos"].get("ovrl"), no_mos), _mos(s["mos"].get("p808"), no_mos),
                     _fmt(s["mos"].get("sig"), no_mos), _fmt(s["mos"].get("bak"), no_mos),
                     _val(s.get("ovrl_penalised"), 1, no_mos),
                     *([_mos(s["mos"].get("plcmos"), "no clip within PLCMOS' length limit")] if plc else [])] if mos else []
        sys_rows.append([
            s["system"], s["n_items"], _pct(s["wer"], NO_WER), _pct(s["cer"], NO_WER), *mos_cells,
            s["any_failure"]["count"], _val(t.get("median_words_per_second"), 1, NO_WER),
            _val(t.get("median_duration_ratio"), 1, NO_WER), _val(t.get("rtf"), 1, NOT_TIMED),
            _val(t.get("cpu_rtf"), 1, NOT_TIMED),
        ])
    heads = ["system", "items", "WER [95% CI]", "CER", *mos_heads, "items with a failure", "words/s", "duration ratio",
             "RTF (wall)", "RTF (CPU)"]
    body = table(heads, sys_rows, sortable=False, numeric=range(1, len(heads)))
    if not mos:
        body += paragraph("MOS columns left out: " + _why(NO_MOS) + ".", "muted")
    if summary.get("floor"):
        body += paragraph("The floor row is real recorded speech scored the same way: its WER is the recogniser's "
                          "own error on human speech, its MOS what the predictor gives real recordings.", "muted")
    for s in rows:
        for w in s.get("warnings") or []:
            body += paragraph(f"{s['system']}: {w}", "muted")
        if s.get("mos_warnings"):
            body += paragraph(f"{s['system']}: {s['mos_warnings']} item(s) outside the MOS predictor's domain (too "
                              "short, upsampled, little speech or not English): see mos_warnings per row", "muted")
    sections.append(Section("Systems", body, "systems"))
    fail_rows = []
    for kind in FAILURE_KINDS:
        cells: list[Any] = [kind]
        for s in rows:
            n = s["failures"][kind]["count"]
            ids = ", ".join(s["failures"][kind]["ids"])
            cells.append((f"<span title='{esc(ids)}'>{badge(str(n), 'fail') if n else n}</span>", n))
        fail_rows.append(cells)
    sections.append(Section("Failures", table(["detector"] + [s["system"] for s in rows], fail_rows, sortable=False,
                                              numeric=range(1, len(rows) + 1)), "failures"))
    for comp in summary.get("comparisons") or []:
        comp_rows = []
        for m in comp["metrics"]:
            d = m["difference"]
            scale = 1 if m["higher_is_better"] else 100
            tests = "; ".join(f"{t['name']} p={_p(t['p_value'])} (n={t['n']})" for t in m["tests"])
            why = "too few paired prompts"
            comp_rows.append([m["metric"], _cell(_val(m["a"], scale, why)), _cell(_val(m["b"], scale, why)),
                              _cell(f"{_val(d['estimate'], scale, why)} [{_val(d['low'], scale, why)}, "
                                    f"{_val(d['high'], scale, why)}]"),
                              _val(m["prob_b_better"], 1, why), tests])
        body = table(["metric", "A", "B", "B − A [95% CI]", "P(B better)", "tests (two-sided p)"], comp_rows,
                     sortable=False, numeric=(1, 2, 3, 4))
        body += paragraph("WER and failure share in percentage points; MOS on the 1–5 scale.", "muted")
        for w in comp.get("warnings") or []:
            body += paragraph(w, "muted")
        sections.append(Section(f"{comp['b']} − {comp['a']} (paired, {comp['n_common']} prompts)", body))
    speaker = judges.get("speaker")
    if speaker:
        model, ref = speaker.get("model") or {}, speaker.get("reference") or {}
        spk_rows = [[s["system"], _cell(_mos((s.get("reference") or {}).get("speaker_similarity"), "no clip embedded")),
                     _cell(_fmt((s.get("reference") or {}).get("voice_consistency"), "fewer than 2 clips"))]
                    for s in rows]
        body = table(["system", "similarity to the target [95% CI]", "voice consistency"], spk_rows,
                     sortable=False, numeric=(1, 2))
        body += paragraph(f"Cosine similarity of {model.get('name')} embeddings (weights sha256 {model.get('checksum')}) "
                          f"to the mean of {ref.get('clips')} reference recordings ({ref.get('source')}); comparable "
                          "only with runs judged by the same model and references.", "muted")
        sections.append(Section("Speaker similarity", body, "speaker"))
    if summary.get("resynth"):
        rs_rows = []
        for item in summary["resynth"]:
            ref = item["summary"].get("reference") or {}
            wer = next((m for m in item["versus_floor"]["metrics"] if m["metric"] == "wer"), None)
            delta = (f"{_val(wer['difference']['estimate'], 100)} [{_val(wer['difference']['low'], 100)}, "
                     f"{_val(wer['difference']['high'], 100)}]") if wer else _why("no common recognised items")
            rs_rows.append([item["condition"], item["summary"]["n_items"], _cell(_mos(ref.get("pesq"), "not computed")),
                            _cell(_mos(ref.get("stoi"), "not computed")), _cell(_fmt(ref.get("mcd"), "none")),
                            _cell(_fmt(ref.get("f0_rmse"), "none")), _cell(_fmt(ref.get("vuv_error"), "none")),
                            _pct(item["summary"]["wer"], NO_WER), _cell(delta)])
        body = table(["condition", "n", "PESQ [95% CI]", "STOI [95% CI]", "MCD (dB)", "F0 RMSE (cents)",
                      "V/UV error", "WER", "WER − floor (pts) [95% CI]"], rs_rows, sortable=False,
                     numeric=range(1, 9))
        body += paragraph("Each condition round-trips the floor recordings; reference figures are against the "
                          "originals, WER differences paired against the unmodified recordings.", "muted")
        sections.append(Section("Resynthesis (codecs, vocoders)", body, "resynth"))
    cats = sorted({c for s in summary["systems"].values() for c in s["by_category"]})
    if cats:
        cat_rows = []
        for c in cats:
            cells = [c]
            for s in summary["systems"].values():
                v = s["by_category"].get(c) or {"wer": None, "n": 0}
                wer = "n/a (no prompt)" if v["wer"] is None else f"{100 * v['wer']:.1f}%"
                cells.append(f"{wer} ({v['n']})")
            cat_rows.append(cells)
        sections.append(Section("WER by prompt category", table(["category"] + list(summary["systems"]), cat_rows,
                                                                sortable=False), "categories"))
    for n, (name, items) in enumerate((summary.get("worst") or {}).items()):
        root = audio_roots.get(name)
        item_rows = []
        for it in items:
            player = "<span class='muted'>no audio</span>"
            if root is not None and it.get("audio_file"):
                uri = _wav_data_uri(root / it["audio_file"])
                if uri:
                    player = f"<audio controls preload='none' src='{uri}'></audio>"
            flags = "<br>".join(f"{badge(k, 'fail')} {esc((it['failure_details'] or {}).get(k, ''))}"
                                for k in it["failures"]) or "–"
            heard = _clip(it["hypothesis"] if it["hypothesis"] is not None else it["error"])
            item_rows.append([
                (f"{esc(it['id'])}<br><span class='muted'>{esc(it['category'])}</span>", it["id"]), (player, ""),
                ((f"{esc(it['text'])}<br><span class='muted'>expected:</span> {esc(it['reference'])}"
                 f"<br><span class='muted'>heard:</span> {esc(heard) if heard is not None else '–'}"), it["text"] or ""),
                _val(it["wer"], 100, "not recognised") + ("%" if it["wer"] is not None else ""),
                *([_val(it["mos_ovrl"], 1, no_mos)] if mos else []), (flags, ""),
            ])
        body = table(["id", "audio", "text / expected / heard", "WER", *(["OVRL"] if mos else []), "failures"],
                     item_rows, sortable=False, numeric=(3, 4) if mos else (3,))
        sections.append(Section(f"Worst items: {name}", body if n == 0 else details(f"{len(items)} items", body)))
    path.write_text(page("voxproof TTS evaluation", sections,
                         subtitle=f"voxproof {summary.get('voxproof_version')} · {len(summary['systems'])} system(s)"),
                    encoding="utf-8")
    return path
