"""Manifest readers for JSON-lines files (voxproof's own and NeMo's) and the JSONL writer.

voxproof JSONL: one :meth:`Utterance.to_dict` object per line (``"type": "utterance"``, ``"schema"``).
NeMo JSONL: ``audio_filepath``, ``duration``, ``text``, optional ``offset``; an ``id``-like key names the
utterance (else the audio file's stem, plus ``@offset`` when there is an offset); ``speaker``/``lang``-like
keys fill those fields; every other key becomes a tag. Relative paths in both are resolved against the
manifest's folder. Both are streamed line by line.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from voxproof.errors import ManifestError
from voxproof.manifest.entries import (
    ID_KEYS,
    LANGUAGE_KEYS,
    MAX_NESTING,
    SPEAKER_KEYS,
    Entry,
    Problem,
    nesting_depth,
    pick,
    resolve_audio,
    tag_value,
    text_lines,
    to_float,
)
from voxproof.manifest.utterance import SCHEMA_VERSION, Utterance

_NEMO_FIELDS = {"audio_filepath", "duration", "text", "offset"}


def sniff_jsonl(path: Path, max_lines: int = 50) -> str:
    """``"nemo"`` when the first JSON object has ``audio_filepath``, else ``"jsonl"`` (voxproof)."""
    for number, raw in text_lines(path):
        if number > max_lines:
            break
        if isinstance(raw, Problem):
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):  # the reading pass reports the line
            continue
        if isinstance(obj, dict):
            return "nemo" if "audio_filepath" in obj else "jsonl"
    return "jsonl"


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    for number, raw in text_lines(path):
        if isinstance(raw, Problem):
            yield number, raw
            continue
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, Problem(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield number, Problem(f"JSON nested too deeply (more than {MAX_NESTING} levels)")
            continue
        except ValueError as exc:  # e.g. an integer with more digits than Python converts
            yield number, Problem(f"not usable JSON ({str(exc)[:120]})")
            continue
        if nesting_depth(obj) > MAX_NESTING:
            yield number, Problem(f"JSON nested too deeply (more than {MAX_NESTING} levels)")
            continue
        if not isinstance(obj, dict):
            yield number, Problem(f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield number, obj


def read_voxproof_jsonl(path: Path) -> Iterator[Entry]:
    """Entries of a voxproof JSONL manifest (lines written by :func:`write_jsonl`)."""
    base = path.parent
    for number, obj in _objects(path):
        if isinstance(obj, Problem):
            yield Entry(number, obj)
            continue
        kind = obj.get("type", "utterance")
        if kind != "utterance":
            yield Entry(number, Problem(f"type {kind!r} is not an utterance record"))
            continue
        schema = obj.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            yield Entry(
                number,
                Problem(
                    f"schema {schema!r} is newer than this voxproof reads ({SCHEMA_VERSION}); "
                    "upgrade voxproof"
                ),
            )
            continue
        try:
            utt = Utterance.from_dict(obj)
        except KeyError as exc:
            yield Entry(number, Problem(f"missing key: {exc.args[0] if exc.args else exc}"))
            continue
        except (TypeError, ValueError, OverflowError) as exc:
            yield Entry(number, Problem(f"bad value: {str(exc)[:200]}"))
            continue
        for name in ("text", "speaker", "language"):
            value = getattr(utt, name)
            if value is not None and not isinstance(value, str):
                utt = utt.replace(**{name: str(value)})
        yield Entry(number, utt.replace(audio=resolve_audio(utt.audio, base)) if utt.audio else utt)


def read_nemo_jsonl(path: Path) -> Iterator[Entry]:
    """Entries of a NeMo-style JSONL manifest."""
    base = path.parent
    for number, obj in _objects(path):
        if isinstance(obj, Problem):
            yield Entry(number, obj)
            continue
        audio = obj.get("audio_filepath")
        if not isinstance(audio, str) or not audio.strip():
            yield Entry(number, Problem("missing key 'audio_filepath' (a path to the audio file)"))
            continue
        try:
            offset = to_float(obj.get("offset"), "offset")
            duration = to_float(obj.get("duration"), "duration")
        except ValueError as exc:
            yield Entry(number, Problem(str(exc)))
            continue
        text = obj.get("text")
        id_key, utt_id = pick(obj, ID_KEYS)
        if utt_id is None or not str(utt_id).strip():
            utt_id = Path(audio).stem if offset is None else f"{Path(audio).stem}@{offset:.3f}"
        spk_key, speaker = pick(obj, SPEAKER_KEYS)
        lang_key, language = pick(obj, LANGUAGE_KEYS)
        used = _NEMO_FIELDS | {k for k in (id_key, spk_key, lang_key) if k}
        tags = {
            k: v for k, v in ((k, tag_value(val)) for k, val in obj.items() if k not in used) if v is not None
        }
        utt = Utterance(
            id=str(utt_id),
            audio=resolve_audio(audio, base),
            text=None if text is None else str(text),
            offset=offset or 0.0,
            duration=duration,
            speaker=None if speaker is None else str(speaker),
            language=None if language is None else str(language),
            tags=tags,
        )
        yield Entry(number, utt)


def write_jsonl(utts: Iterable[Utterance], path: str | os.PathLike[str]) -> int:
    """Write utterances as voxproof JSONL (one :meth:`Utterance.to_dict` per line, UTF-8).

    The file is written to a temporary name beside ``path`` and renamed, so a crash never leaves a half
    manifest. Returns the number of lines written. ``read_manifest`` reads it back to equal utterances
    (audio paths written relative are resolved against the file's folder on reading).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    count = 0
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as out:
            for utt in utts:
                try:
                    out.write(json.dumps(utt.to_dict(), ensure_ascii=False) + "\n")
                except UnicodeEncodeError as exc:  # a lone surrogate: the reader would refuse it too
                    raise ManifestError(f"utterance {utt.id!r} cannot be written as UTF-8 ({exc.reason}: "
                                        f"{exc.object[exc.start:exc.end]!r}); fix its text",
                                        [(count + 1, "not encodable as UTF-8")]) from None
                count += 1
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
