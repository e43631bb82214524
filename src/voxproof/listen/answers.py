"""Listening tests, stage 3: the answer files listeners send back, read defensively.

An answer file is JSON: ``{"type": "voxproof_listening_answers", "schema": 1, "test_id", "listener",
"simulated": bool, "answers": [{"item", "rating": 1-5} | {"item", "choice": "A"|"B"}, ...]}``.

Anything a stranger can send is checked: files over 8 MiB, devices and FIFOs, invalid UTF-8 or JSON,
``NaN``/``Infinity`` literals, nesting deeper than JSON needs, another test's id, a listener name that
is not a short plain token, more answers than items, wrong types (a rating of ``"5"``, ``true``, 4.5 or
9), unknown item ids, an item answered twice. A file that is unusable as a whole is *refused* with its
reason; a bad answer inside a usable file is left out and listed as a *problem*. Two files with the
same listener id: the second is refused (a listener counts once).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxproof.errors import DataError

MAX_ANSWER_BYTES = 8 * 1024 * 1024
LISTENER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class AnswerSet:
    """One listener's usable answers: ACR ratings and A/B choices by item id."""

    listener: str
    source: str
    ratings: dict[str, int]
    choices: dict[str, str]
    simulated: bool = False
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnswersRead:
    sets: tuple[AnswerSet, ...]
    refused: tuple[tuple[str, str], ...] = field(default=())  # (file, reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_used": [{"file": s.source, "listener": s.listener, "simulated": s.simulated,
                            "ratings": len(s.ratings), "choices": len(s.choices), "problems": list(s.problems)}
                           for s in self.sets],
            "files_refused": [{"file": f, "reason": r} for f, r in self.refused],
        }


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_file(path: str | Path, max_bytes: int, label: str) -> Any:
    """JSON from a regular file of at most ``max_bytes``; ``DataError`` (one line) otherwise."""
    from voxproof.metrics.userfile import read_user_bytes

    p = str(path)
    raw = read_user_bytes(p, label, max_bytes, error=DataError)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise DataError(f"{p} is not UTF-8 text; a {label} is a JSON file") from None
    except RecursionError:
        raise DataError(f"{p} nests too deeply to be a {label}") from None
    except ValueError as exc:
        raise DataError(f"{p} is not valid JSON ({str(exc)[:120]})") from None


def parse_answers(data: Any, design, source: str) -> AnswerSet:
    """One answer file's usable answers; ``DataError`` when the file as a whole cannot be used."""
    if not isinstance(data, dict) or data.get("type") != "voxproof_listening_answers":
        raise DataError("not a listening-test answer file (type voxproof_listening_answers)")
    if data.get("schema") != 1:
        raise DataError(f"answer schema {data.get('schema')!r} is not 1")
    if data.get("test_id") != design.test_id:
        raise DataError("answers to another test (test_id differs); score them with that test's design")
    listener = data.get("listener")
    if not isinstance(listener, str) or not LISTENER_RE.match(listener):
        raise DataError("listener must be 1-64 letters, digits, '_', '.' or '-'")
    simulated = data.get("simulated", False)
    if not isinstance(simulated, bool):
        raise DataError("simulated must be true or false")
    answers = data.get("answers")
    if not isinstance(answers, list):
        raise DataError("answers must be a list")
    if len(answers) > 4 * len(design.items):
        raise DataError(f"{len(answers)} answers for a test of {len(design.items)} items")
    kinds = {i.id: i.kind for i in design.items}
    ratings: dict[str, int] = {}
    choices: dict[str, str] = {}
    problems: list[str] = []
    for n, a in enumerate(answers):
        where = f"answer {n + 1}"
        if not isinstance(a, dict):
            problems.append(f"{where}: not an object")
            continue
        item = a.get("item")
        if not isinstance(item, str) or item not in kinds:
            problems.append(f"{where}: unknown item {str(item)[:40]!r}")
            continue
        if item in ratings or item in choices:
            problems.append(f"{where}: item {item} answered again (the first answer counts)")
            continue
        if kinds[item].startswith("acr"):
            r = a.get("rating")
            if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 5:
                problems.append(f"{where}: rating {str(r)[:20]!r} of {item} is not an integer 1-5")
                continue
            ratings[item] = r
        else:
            c = a.get("choice")
            if c not in ("A", "B"):
                problems.append(f"{where}: choice {str(c)[:20]!r} of {item} is not 'A' or 'B'")
                continue
            choices[item] = c
    return AnswerSet(listener, source, ratings, choices, simulated, tuple(problems))


def read_answers(paths: list[str | Path], design) -> AnswersRead:
    """Every usable answer file; unusable ones are refused with a reason, never silently dropped."""
    sets: list[AnswerSet] = []
    refused: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for p in paths:
        try:
            s = parse_answers(read_json_file(p, MAX_ANSWER_BYTES, "listening-test answer file"), design, str(p))
        except DataError as exc:
            refused.append((str(p), str(exc)))
            continue
        if s.listener in seen:
            refused.append((str(p), (f"listener {s.listener!r} already answered in {seen[s.listener]}; "
                                    "a listener counts once")))
            continue
        if not s.ratings and not s.choices:
            refused.append((str(p), "no usable answer"))
            continue
        seen[s.listener] = str(p)
        sets.append(s)
    return AnswersRead(tuple(sets), tuple(refused))


def answers_dict(listener: str, design, ratings: dict[str, int], choices: dict[str, str], *,
                 simulated: bool, note: str = "") -> dict[str, Any]:
    """An answer file's content (what the page downloads; used by the simulator and tests)."""
    out = {"type": "voxproof_listening_answers", "schema": 1, "test_id": design.test_id, "listener": listener,
           "simulated": simulated,
           "answers": [{"item": k, "rating": v, "played": True} for k, v in ratings.items()]
           + [{"item": k, "choice": v, "played": True} for k, v in choices.items()]}
    if note:
        out["note"] = note
    return out
