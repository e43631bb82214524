"""Hallucination on the non-speech suite, several systems side by side (markdown).

    voxproof eval -m whisper --data non-speech -o runs/ns-whisper
    voxproof eval -m whisper -O vad_filter=true --data non-speech -o runs/ns-whisper-vad
    voxproof eval -m sphinx --data non-speech -o runs/ns-sphinx
    python benchmarks/non_speech_table.py runs/ns-whisper runs/ns-whisper-vad runs/ns-sphinx

Reads each run's summary.json (re-scored by ``voxproof report`` / ``eval``); prints words per minute and
the share of clips with output per noise type, with intervals, then each system's top phrases.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voxproof.report.html import fmt_interval
from voxproof.report.nonspeech import phrase_rows, rate_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories evaluated on --data non-speech")
    ap.add_argument("--labels", nargs="*", help="column labels (default: the run folder names)")
    args = ap.parse_args()
    labels = args.labels or [Path(r).name for r in args.runs]
    found = []
    for run in args.runs:
        summary = json.loads((Path(run) / "summary.json").read_text())
        ns = next((c["non_speech"] for c in summary["scores"]["conditions"] if c.get("non_speech")), None)
        if ns is None:
            raise SystemExit(f"{run} has no non-speech clips; evaluate it with --data non-speech")
        found.append(ns)
    kinds = [g["name"] for g in found[0]["by_kind"]] + ["all"]
    print("| noise type | clips | " + " | ".join(f"{lab} words/min [CI] | {lab} clips with output [CI]"
                                             for lab in labels) + " |")
    print("|---|---:|" + "---:|---:|" * len(labels))
    for kind in kinds:
        cells = []
        clips = ""
        for ns in found:
            g = ns["overall"] if kind == "all" else next((g for g in ns["by_kind"] if g["name"] == kind), None)
            if g is None:
                cells += ["n/a (kind missing)", "n/a (kind missing)"]
                continue
            clips = str(g["clips"])
            cells += [rate_text(g["words_per_minute"]), fmt_interval(g["with_output"], digits=1, minus="-")]
        print(f"| {kind} | {clips} | " + " | ".join(cells) + " |")
    for lab, ns in zip(labels, found):
        rows = phrase_rows(ns)[:5]
        print(f"\n{lab}: top phrases: " + ("; ".join(f'"{p}" x{c} ({s})' for p, c, s in rows) or "none"))


if __name__ == "__main__":
    main()
