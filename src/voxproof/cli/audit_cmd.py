"""``voxproof audit DATA [--against TEST]``: find what is wrong with a speech dataset before it trains or
judges a model. Writes findings.json, report.html and datasheet.md to --out, next to the audit's item store
(audit-items.sqlite, rebuilt each run) and per-item cache (audit-cache.sqlite, for resuming); ``--fix``
writes a cleaned manifest. Exit 1 when findings at or above --fail-on exist, 3 when nothing could be read, 2 on usage.
"""

from __future__ import annotations

from pathlib import Path

import click

from voxproof.audit.runner import AuditOptions
from voxproof.cli.derive import dataclass_options, pop_dataclass
from voxproof.cli.params import EXISTING_PATH
from voxproof.errors import EXIT_FAILED

AUDIT_HELP = {
    "workers": "Worker processes for decoding, measures and fingerprints (0 = every core).",
    "vad": "Speech detector for speech ratio, SNR and level: silero (Silero VAD) or energy (faster).",
    "fail_on": "Exit 1 when a finding at or above this severity exists (info, low, medium, high, critical).",
    "intended_use": "Declared use of the data (any, research, commercial): non-commercial items conflict with commercial.",
    "asr": "Recogniser for label-noise checks (e.g. whisper): items with WER above --asr-max-wer are findings.",
    "asr_max_wer": "WER above which a disagreement the evidence calls a model error is reported (info, asr_hard).",
    "asr_min_wer": "WER from which a disagreement is judged: word confidences, alignment shape, second recogniser.",
    "asr_second": "Second recogniser for the agreement evidence (auto = sphinx when installed; none = off).",
    "normalizer": "Text normaliser for the ASR check.",
    "near_max_ber": "Fingerprint bit error rate at or below which two items hold the same audio.",
    "cps_z": "Robust z (median/MAD, log scale) of characters per second beyond which a transcript is suspect.",
    "duration_z": "Robust z of log duration beyond which an item is a duration outlier.",
    "clip_ratio": "Share of samples on flat peak runs that counts as clipping.",
    "dc_offset": "Absolute mean (full-scale units) that counts as DC offset.",
    "min_speech_ratio": "Share of speech frames below which an item has too little speech.",
    "min_snr_db": "Estimated SNR (dB) below which an item is noisy.",
    "min_bandwidth_share": "Effective bandwidth / Nyquist below which an item is narrow-band (upsampled).",
    "sample_rate": "Declared sample rate in Hz (default: the corpus majority).",
    "transcript_min_words": "Shortest transcript (words) compared for duplicate and shared transcripts.",
    "ngram": "Word n-gram length for transcript overlap between datasets.",
    "ngram_overlap": "Share of shared n-grams at which two transcripts are the same text.",
    "cache": "Keep per-item results in OUT/audit-cache.sqlite so a rerun resumes.",
    "poison": "Poisoning scan: a short sound repeated across items, a tone (narrow or near-ultrasonic) shared by a "
              "cluster of items, each with a transcript word over-represented among them; with --asr, label "
              "flips concentrated in one speaker or source.",
    "allow_url_host": "Fetch manifest audio URLs from this host (URLs are off by default; * = any public host).",
}


@click.command("audit")
@click.argument("data", type=EXISTING_PATH)
@click.option("--against", default=None, type=EXISTING_PATH, help="Second dataset (e.g. the test split) to check for contamination and leakage.")
@click.option("--format", "data_format", default=None, help="Force the manifest format instead of detecting it.")
@click.option("-o", "--out", default=None, help="Output directory (default: audits/NAME).")
@click.option("--fix", "fix_out", default=None, metavar="OUT.jsonl", help="Write a cleaned manifest here (sources untouched) and OUT.log.jsonl.")
@dataclass_options(AuditOptions, AUDIT_HELP)
def audit_command(data, against, data_format, out, fix_out, **kwargs) -> None:
    """Audit DATA: signal quality, transcripts, duplicates, contamination, coverage, licences, personal data."""
    from voxproof.audit.datasheet import write_datasheet
    from voxproof.audit.fix import write_fix
    from voxproof.audit.report import write_html, write_json
    from voxproof.audit.runner import run_audit
    from voxproof.cli.progress import StatusLine
    from voxproof.errors import UsageError

    try:
        options = pop_dataclass(AuditOptions, kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out_dir = Path(out) if out else Path("audits") / Path(data).name.split(".")[0]
    status = StatusLine("audit")
    try:
        result = run_audit(data, against=against, out_dir=out_dir, options=options, format=data_format,
                           progress=status)
    finally:
        status.close()
    write_json(result, out_dir / "findings.json")
    write_html(result, out_dir / "report.html")
    write_datasheet(result, out_dir / "datasheet.md")
    counts = result.findings.counts()
    an = result.stats["analysis"]
    click.echo(f"audited {result.stats['items']} items ({an['cached']} from cache, {an['failed']} undecodable) "
               f"in {result.stats['timings']['total']:.1f} s")
    click.echo("findings: " + ", ".join(f"{k} {v}" for k, v in reversed(list(counts.items()))))
    for kind, (n, _) in sorted(result.findings.kinds().items()):
        click.echo(f"  {kind}: {n}")
    click.echo(f"wrote {out_dir / 'findings.json'}, {out_dir / 'report.html'}, {out_dir / 'datasheet.md'}")
    if fix_out:
        summary = write_fix(result, fix_out)
        click.echo(f"fix: kept {summary.kept} ({summary.flagged} flagged), excluded {summary.excluded} -> "
                   f"{summary.manifest} (log {summary.log})")
    failing = result.failing()
    if failing:
        click.echo(f"{failing} finding(s) at or above {options.fail_on}: failing", err=True)
        raise click.exceptions.Exit(EXIT_FAILED)
