"""sclite-compatible exports of a run (``voxproof export RUN --format trn|sgml|ctm``), so a team can
score it with NIST SCTK itself.

- ``trn``: ``ref.trn`` and ``hyp.trn``, one line per scorable utterance, ``tokens (ID)``, the texts
  normalised with the run's normaliser (so sclite scores what voxproof scores). Score with
  ``sclite -r ref.trn trn -h hyp.trn trn -i spu_id -o sgml``.
- ``sgml``: ``hyp.sgml``, the aligned form sclite writes with ``-o sgml`` and ``sc_stats`` reads,
  aligned with sclite's weights (:func:`voxproof.metrics.sctk.sclite_align`), ASCII case folded as
  sclite folds it by default.
- ``ctm``: ``hyp.ctm`` (``FILE 1 START DUR WORD CONF`` from the backend's word times, each raw word
  normalised on its own; a word that normalises to several tokens shares its time evenly) and
  ``ref.stm`` (one segment per utterance). Rows without word times get their words spread evenly over
  the utterance, and are counted.

IDs: sclite takes the speaker (its block for the sign and Wilcoxon tests) from the id up to the first
``-``, so the id is ``SPEAKER-UTTERANCE`` with ``-`` in the speaker replaced by ``_`` (the utterance id
when there is no speaker). Whitespace, parentheses and other characters sclite treats specially become
``_`` in ids and tokens.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError

log = logging.getLogger("voxproof.run.export")

FORMATS = ("trn", "sgml", "ctm")
_ID_BAD = re.compile(r"[\s()\x00-\x1f\x7f]")
_TOKEN_BAD = re.compile(r"[()\[\]{}<>/@;\"\\\x00-\x1f\x7f]")


def _clean_id(text: str) -> str:
    cleaned = _ID_BAD.sub("_", text)
    return cleaned or "_"


def trn_id(utt_id: str, speaker: str | None) -> str:
    """The sclite utterance id of a row: ``SPEAKER-UTTERANCE`` (sclite's ``spu_id``)."""
    spk = _clean_id(speaker if speaker else utt_id).replace("-", "_")
    return f"{spk}-{_clean_id(utt_id)}"


def sclite_tokens(text: str) -> list[str]:
    """Tokens of an already-normalised text as written to sclite files."""
    return [_TOKEN_BAD.sub("_", t) for t in text.split()]


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: the files, the utterances written and those left out (error rows)."""

    format: str
    files: tuple[Path, ...]
    utterances: int
    skipped: int
    condition: str
    normalizer: str
    without_times: int = 0
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "files": [str(f) for f in self.files], "utterances": self.utterances,
                "skipped": self.skipped, "condition": self.condition, "normalizer": self.normalizer,
                "without_times": self.without_times, "commands": list(self.commands)}


@dataclass(frozen=True)
class _Utt:
    ident: str
    speaker: str
    ref: list[str]
    hyp: list[str]
    row: Any


def _collect(store: Any, condition: str, norm: Any) -> tuple[list[_Utt], int]:
    from voxproof.metrics.scoring import scorable

    utts: list[_Utt] = []
    skipped = 0
    seen: set[str] = set()
    for row in store.rows(condition=condition):
        if not scorable(row):
            skipped += 1
            continue
        ident = trn_id(row.utt_id, row.speaker)
        base, k = ident, 1
        while ident in seen:  # two ids that differ only in characters sclite cannot read
            k += 1
            ident = f"{base}_{k}"
        seen.add(ident)
        utts.append(_Utt(ident, ident.split("-", 1)[0], sclite_tokens(norm(row.reference or "")),
                         sclite_tokens(norm(row.hypothesis or "")), row))
    return utts, skipped


def _trn_lines(utts: Iterable[_Utt], side: str) -> str:
    return "".join(f"{' '.join(getattr(u, side))} ({u.ident})\n" for u in utts)


def _sgml_quote(token: str | None) -> str:
    return "" if token is None else f'"{token}"'


def _sgml(utts: list[_Utt], title: str) -> str:
    from voxproof.metrics.sctk import sclite_align, sclite_case

    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(0))
    title = _clean_id(title).replace('"', "_")
    out = [(f'<SYSTEM title="{title}" ref_fname="ref.trn" hyp_fname="hyp.trn" creation_date="{stamp}" '
            'format="2.4" frag_corr="FALSE" opt_del="FALSE" weight_ali="FALSE" weight_filename="">\n')]
    by_speaker: dict[str, list[_Utt]] = {}
    for u in utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    for speaker in sorted(by_speaker):
        out.append(f'<SPEAKER id="{speaker}">\n')
        for seq, u in enumerate(sorted(by_speaker[speaker], key=lambda x: x.ident)):
            path = sclite_align([sclite_case(t) for t in u.ref], [sclite_case(t) for t in u.hyp])  # as sclite
            out.append(f'<PATH id="({u.ident})" word_cnt="{len(path)}" sequence="{seq}">\n')
            out.append(":".join(f"{e},{_sgml_quote(r)},{_sgml_quote(h)}" for e, r, h in path) + "\n")
            out.append("</PATH>\n")
        out.append("</SPEAKER>\n")
    out.append("</SYSTEM>\n")
    return "".join(out)


def _ctm(utts: list[_Utt], norm: Any) -> tuple[str, str, int]:
    ctm: list[str] = []
    stm: list[str] = []
    without = 0
    for u in utts:
        row = u.row
        duration = float(row.audio_duration or 0.0)
        stm.append(f"{u.ident} 1 {u.speaker} 0.000 {duration:.3f} {' '.join(u.ref)}\n")
        words = list(row.transcript.words) if row.transcript is not None else []
        timed = words and all(w.start is not None and w.end is not None for w in words)
        if timed:
            for w in words:
                toks = sclite_tokens(norm(w.text))
                if not toks:
                    continue
                step = max(float(w.end) - float(w.start), 0.0) / len(toks)
                conf = "" if w.confidence is None else f" {min(1.0, max(0.0, float(w.confidence))):.4f}"
                for k, t in enumerate(toks):
                    ctm.append(f"{u.ident} 1 {float(w.start) + k * step:.3f} {step:.3f} {t}{conf}\n")
        else:
            if u.hyp:
                without += 1
            step = duration / len(u.hyp) if u.hyp else 0.0
            for k, t in enumerate(u.hyp):
                ctm.append(f"{u.ident} 1 {k * step:.3f} {step:.3f} {t}\n")
    return "".join(ctm), "".join(stm), without


def _tool(name: str) -> str:
    """How to call an SCTK program here: on its own, or through Debian's ``sctk`` dispatcher."""
    import shutil

    return name if shutil.which(name) or not shutil.which("sctk") else f"sctk {name}"


def export_run(run_dir: str | Path, out_dir: str | Path, fmt: str, *, condition: str = "clean",
               normalizer: str | None = None) -> ExportResult:
    """Write ``run_dir``'s ``condition`` in ``fmt`` into ``out_dir`` (created)."""
    from voxproof.metrics.normalize import DEFAULT_NORMALIZER, get_normalizer
    from voxproof.run.store import RunStore

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with RunStore.open(run_dir) as store:
        if condition not in {c for c, _ in store.conditions()} | {"clean"}:
            raise UsageError(f"the run has no condition {condition!r}; it has "
                             f"{', '.join(c for c, _ in store.conditions()) or 'none'}")
        recorded = store.provenance.get("normalizer")
        name = normalizer or (recorded.get("name") if isinstance(recorded, dict) else recorded) or DEFAULT_NORMALIZER
        norm = get_normalizer(name)
        utts, skipped = _collect(store, condition, norm)
    if not utts:
        raise UsageError(f"the run has no scorable utterances in condition {condition!r} to export")
    out = Path(out_dir)
    try:
        return _write(out, fmt, utts, norm, skipped, condition, Path(run_dir).name or "hyp")
    except OSError as exc:
        raise UsageError(f"cannot write the export to {out}: {exc.strerror or exc}; choose another -o DIR") from None


def _write(out: Path, fmt: str, utts: list[_Utt], norm: Any, skipped: int, condition: str, title: str) -> ExportResult:
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    without = 0
    commands: tuple[str, ...] = ()
    if fmt == "trn":
        for side, fname in (("ref", "ref.trn"), ("hyp", "hyp.trn")):
            (out / fname).write_text(_trn_lines(utts, side), encoding="utf-8")
            files.append(out / fname)
        commands = (f"{_tool('sclite')} -r {out / 'ref.trn'} trn -h {out / 'hyp.trn'} trn -i spu_id -o sgml sum -O {out}",)
    elif fmt == "sgml":
        (out / "hyp.sgml").write_text(_sgml(utts, title), encoding="utf-8")
        files.append(out / "hyp.sgml")
        commands = (f"cat {out / 'hyp.sgml'} OTHER.sgml | {_tool('sc_stats')} -p -t mapsswe sign wilc -v -u -n -",)
    else:
        ctm, stm, without = _ctm(utts, norm)
        (out / "hyp.ctm").write_text(ctm, encoding="utf-8")
        (out / "ref.stm").write_text(stm, encoding="utf-8")
        files += [out / "hyp.ctm", out / "ref.stm"]
        commands = (f"{_tool('sclite')} -r {out / 'ref.stm'} stm -h {out / 'hyp.ctm'} ctm -o sum -O {out}",)
    log.info("exported %d utterances as %s to %s", len(utts), fmt, out)
    return ExportResult(fmt, tuple(files), len(utts), skipped, condition, norm.name, without, commands)
