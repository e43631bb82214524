"""Manifest reading, shared part: the (line, utterance-or-problem) entries every format reader yields,
the checks every utterance gets, and path/tag helpers.

Format readers never raise on a bad line: they yield a :class:`Problem` for it and carry on, so the
caller can report every bad line at once (:mod:`voxproof.manifest.reader`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof.manifest.utterance import FALSE_VALUES, NON_SPEECH_TAG, TRUE_VALUES, Utterance, is_non_speech


@dataclass(frozen=True)
class Problem:
    """One bad manifest entry. ``unsafe`` marks something voxproof refuses to do (a piped wav.scp)."""

    message: str
    unsafe: bool = False


@dataclass(frozen=True)
class Entry:
    """What a reader yields per record: its 1-based line (or row) number, the file it came from (for
    multi-file formats such as Kaldi dirs; empty for single-file ones), and an utterance or a problem."""

    line: int
    item: Utterance | Problem
    where: str = ""

    def problem_tuple(self) -> tuple[int, str]:
        assert isinstance(self.item, Problem)
        text = f"{self.where}: {self.item.message}" if self.where else self.item.message
        return (self.line, text)


MAX_NESTING = 32  # deepest JSON value accepted in a manifest line (tags are flat metadata)
MAX_ID_CHARS = 1024  # longest utterance id accepted


def check_utterance(utt: Utterance) -> list[str]:
    """Problems with one utterance on its own (ids, paths, offset and duration ranges, text that cannot
    be stored: NUL bytes in ids and paths, lone surrogates anywhere)."""
    out: list[str] = []
    uid = utt.id if len(utt.id) <= 80 else utt.id[:80] + "..."
    for name, value in _strings(utt):
        if _has_surrogate(value):
            out.append(
                f"utterance {uid!r}: {name} has a lone surrogate (invalid Unicode, e.g. a JSON '\\ud800' escape); "
                "fix the text"
            )
            return out
    if "\x00" in utt.id or "\x00" in utt.audio:
        out.append(f"utterance {uid!r}: {'id' if chr(0) in utt.id else 'audio path'} contains a NUL byte")
        return out
    if len(utt.id) > MAX_ID_CHARS:
        out.append(f"utterance id is {len(utt.id):,} characters long, over the {MAX_ID_CHARS:,} limit")
        return out
    if not utt.id.strip():
        out.append("empty utterance id")
    if not utt.audio.strip():
        out.append(f"utterance {utt.id!r} has an empty audio path")
    if not math.isfinite(utt.offset) or utt.offset < 0:
        out.append(f"utterance {utt.id!r} has offset {utt.offset!r}; it must be >= 0 seconds")
    if utt.duration is not None and (not math.isfinite(utt.duration) or utt.duration <= 0):
        out.append(f"utterance {utt.id!r} has duration {utt.duration!r}; it must be > 0 seconds")
    flag = utt.tags.get(NON_SPEECH_TAG)
    if flag is not None and flag.strip().lower() not in TRUE_VALUES + FALSE_VALUES:
        out.append(f"utterance {utt.id!r} has {NON_SPEECH_TAG}={flag[:40]!r}; write true or false")
    elif is_non_speech(utt.tags) and utt.text is not None and utt.text.strip():
        out.append(f"utterance {utt.id!r} is marked {NON_SPEECH_TAG}=true but has a reference transcript; "
                   "a non-speech clip's reference must be empty")
    if SEGMENTS_TAG in utt.tags:
        problem = segments_problem(utt.tags[SEGMENTS_TAG])
        if problem:
            out.append(f"utterance {utt.id!r}: tag {SEGMENTS_TAG}: {problem}")
    if WORD_TIMES_TAG in utt.tags:
        problem = word_times_problem(utt.tags[WORD_TIMES_TAG])
        if problem:
            out.append(f"utterance {utt.id!r}: tag {WORD_TIMES_TAG}: {problem}")
    return out


SEGMENTS_TAG = "session_segments"  # a session's utterances: [[id, start, end, speech_start, speech_end, text]]


def segments_problem(value: str) -> str | None:
    """What is wrong with a ``session_segments`` tag (None when it is a list of ``[utterance id, start,
    end, speech start, speech end, text]`` with finite times, start <= speech start <= speech end <= end)."""
    try:
        segs = json.loads(value)
    except ValueError:
        return "not JSON; write a list of [id, start, end, speech_start, speech_end, text]"
    if not isinstance(segs, list) or not segs:
        return "must be a non-empty list of [id, start, end, speech_start, speech_end, text]"
    for k, seg in enumerate(segs):
        if not (isinstance(seg, list) and len(seg) == 6 and isinstance(seg[0], str) and isinstance(seg[5], str)
                and all(_seconds(x) for x in seg[1:5])):
            return f"segment {k} must be [id, start, end, speech_start, speech_end, text] with finite seconds"
        if not 0 <= seg[1] <= seg[3] <= seg[4] <= seg[2]:
            return f"segment {k} needs 0 <= start <= speech_start <= speech_end <= end (seconds)"
    return None


WORD_TIMES_TAG = "session_word_times"  # forced-aligned words of a session: [[utterance id, word, start, end]]


def _seconds(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def word_times_problem(value: str) -> str | None:
    """What is wrong with a ``session_word_times`` tag (None when it is a list of ``[utterance id, word,
    start, end]`` with finite seconds, 0 <= start <= end)."""
    try:
        words = json.loads(value)
    except ValueError:
        return "not JSON; write a list of [utterance id, word, start, end]"
    if not isinstance(words, list):
        return "must be a list of [utterance id, word, start, end]"
    for k, w in enumerate(words):
        if not (isinstance(w, list) and len(w) == 4 and isinstance(w[0], str) and isinstance(w[1], str)
                and _seconds(w[2]) and _seconds(w[3])):
            return f"word {k} must be [utterance id, word, start, end] with finite seconds"
        if not 0 <= w[2] <= w[3]:
            return f"word {k} needs 0 <= start <= end (seconds)"
    return None


def _strings(utt: Utterance) -> Iterator[tuple[str, str]]:
    for name in ("id", "audio", "text", "speaker", "language"):
        value = getattr(utt, name)
        if isinstance(value, str):
            yield name, value
    for key, value in utt.tags.items():
        yield "a tag name", str(key)
        yield f"tag {key!r}" if not _has_surrogate(str(key)) else "a tag", str(value)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deeply lists/dicts nest in a parsed JSON value (iterative; stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            stack.extend((v, depth) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def resolve_audio(value: str, base: Path) -> str:
    """An audio reference as stored on the Utterance: URLs unchanged, relative paths made absolute
    against ``base`` (the manifest's folder), ``~`` expanded."""
    if value.lower().startswith(("http://", "https://")):
        return value
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(str(path))


def to_float(value: Any, name: str) -> float | None:
    """``value`` as a float, None for null/empty; raises ValueError naming the field otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, bool):  # JSON true/false are not durations
        try:
            return float(value)
        except OverflowError:  # a 400-digit JSON integer: too large for a float
            raise ValueError(f"{name} must be a number of seconds, got a {len(str(value))}-digit number") from None
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{name} must be a number of seconds, got {value!r}")


def tag_value(value: Any) -> str | None:
    """A metadata value as the string stored in ``Utterance.tags`` (None for null/empty values)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


SPEAKER_KEYS = ("speaker", "speaker_id", "spk", "spk_id", "client_id")
LANGUAGE_KEYS = ("language", "lang", "locale")
ID_KEYS = ("id", "utt_id", "utterance_id", "uttid", "segment_id", "audio_id")
TEXT_KEYS = ("text", "transcript", "transcription", "sentence", "normalized_text", "reference")


def pick(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of ``keys`` present in ``row`` (case-insensitive) and its value, else (None, None)."""
    lower = {k.lower(): k for k in row}
    for key in keys:
        if key in lower:
            return lower[key], row[lower[key]]
    return None, None


def text_lines(path: Path) -> Iterator[tuple[int, str | Problem]]:
    """Each line of a UTF-8 text file (BOM and line ending removed) with its 1-based number; a line
    that is not valid UTF-8 comes back as a :class:`Problem` instead of stopping the whole read."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield number, Problem(f"not valid UTF-8 text (byte {exc.start + 1}); save the file as UTF-8")
