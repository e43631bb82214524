"""``voxproof speaker-score REF HYP``: cpWER of speaker-attributed transcripts and DER/JER of
diarization, from STM, CTM, RTTM or SegLST files (:mod:`voxproof.metrics.multispeaker`)."""

from __future__ import annotations

import json

import click


@click.command("speaker-score")
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("hypothesis", type=click.Path(dir_okay=False))
@click.option("--ref-format", default=None, help="stm, ctm, rttm or seglst (default: from the suffix).")
@click.option("--hyp-format", default=None, help="stm, ctm, rttm or seglst (default: from the suffix).")
@click.option("--collar", type=click.FloatRange(0.0, 10.0), default=0.0, show_default=True,
              help="DER/JER: seconds around each reference boundary left unscored (half on each side).")
@click.option("--skip-overlap", is_flag=True, help="DER/JER: leave out regions where reference speakers overlap.")
@click.option("--uem", type=click.Path(dir_okay=False), default=None, help="DER/JER: scored regions (UEM file).")
@click.option("--tcp-collar", type=click.FloatRange(0.0, 60.0), default=5.0, show_default=True,
              help="tcpWER: seconds added on each side of hypothesis word times.")
@click.option("--normalizer", default="none", show_default=True, help="cpWER: normaliser applied to both sides.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def speaker_score_command(reference, hypothesis, ref_format, hyp_format, collar, skip_overlap, uem, tcp_collar,
                          normalizer, as_json) -> None:
    """cpWER and ORC-WER when both files carry words; DER and JER from the segment times in any case."""
    import math

    from voxproof.errors import UsageError

    if not (math.isfinite(collar) and math.isfinite(tcp_collar)):
        raise UsageError(f"--collar and --tcp-collar must be finite numbers of seconds, got {collar}, {tcp_collar}")
    from voxproof.metrics.multispeaker import cp_wer, diarization_errors, orc_wer, tcp_wer
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.metrics.segments import read_segments, read_uem

    ref = read_segments(reference, ref_format)
    hyp = read_segments(hypothesis, hyp_format)
    out = {"reference": str(reference), "hypothesis": str(hypothesis)}
    if any(s.words for s in ref) and any(s.words for s in hyp):
        out["cpwer"] = cp_wer(ref, hyp, get_normalizer(normalizer)).to_dict()
        out["tcpwer"] = {**tcp_wer(ref, hyp, collar=tcp_collar, norm=get_normalizer(normalizer)).to_dict(),
                         "metric": "tcpwer", "collar": tcp_collar}
        try:
            orc = orc_wer(ref, hyp, get_normalizer(normalizer))
            out["orcwer"] = {"error_rate": orc.to_dict()["error_rate"], "errors": orc.errors, "length": orc.length}
        except UsageError as exc:
            out["orcwer"] = {"error_rate": None, "reason": str(exc)}
    d = diarization_errors(ref, hyp, collar=collar, skip_overlap=skip_overlap, uem=read_uem(uem) if uem else None)
    out["diarization"] = {**d.to_dict(), "collar": collar, "skip_overlap": skip_overlap, "uem": uem}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if "cpwer" in out:
        c = out["cpwer"]
        rate = "n/a (no reference words)" if c["error_rate"] is None else f"{100 * c['error_rate']:.2f}%"
        click.echo(f"cpWER {rate}: {c['errors']} errors / {c['length']} reference words; speakers: "
                   f"{c['scored_speakers']} reference, {c['missed_speakers']} missed, {c['falarm_speakers']} extra")
    if "tcpwer" in out:
        t = out["tcpwer"]
        rate = "n/a (no reference words)" if t["error_rate"] is None else f"{100 * t['error_rate']:.2f}%"
        click.echo(f"tcpWER {rate}: {t['errors']} errors / {t['length']} reference words (collar {tcp_collar:g} s)")
    if "orcwer" in out:
        o = out["orcwer"]
        click.echo(f"ORC-WER n/a ({o['reason']})" if o.get("reason") else
                   f"ORC-WER {100 * o['error_rate']:.2f}%: {o['errors']} errors / {o['length']} reference words"
                   if o["error_rate"] is not None else "ORC-WER n/a (no reference words)")
    dd = out["diarization"]
    der = "n/a (no reference speech in the scored region)" if dd["der"] is None else f"{100 * dd['der']:.2f}%"
    jer = "n/a (no reference speaker)" if dd["jer"] is None else f"{100 * dd['jer']:.2f}%"
    click.echo(f"DER {der} (missed {dd['missed']:.2f} s, false alarm {dd['false_alarm']:.2f} s, confusion "
               f"{dd['confusion']:.2f} s of {dd['total']:.2f} s; collar {collar:g} s"
               f"{', overlap skipped' if skip_overlap else ''}{', UEM ' + uem if uem else ''})")
    click.echo(f"JER {jer} over {dd['reference_speakers']} reference speakers")
