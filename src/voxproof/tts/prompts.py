"""TTS evaluation stage 1: prompt sets. What each synthesiser is asked to say, and what a listener
should hear (the expected spoken forms the recogniser's transcript is scored against).

A prompt file is either plain text (one prompt per line, ids ``p0001``..., the text itself is the
expected form) or JSONL with ``id``, ``text`` and optionally ``expected`` (a string or a list of
accepted forms), ``category`` and ``note``. The bundled set ``en-stress`` stresses text normalisation:
numbers, dates, times, currencies, abbreviations, acronyms, URLs, e-mail addresses, names,
homographs, questions, long sentences and very short inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxproof.errors import DataError, ManifestError

BUNDLED_SETS = ("en-stress",)
DEFAULT_SET = "en-stress"


@dataclass(frozen=True)
class Prompt:
    """One thing to synthesise.

    ``expected`` holds the accepted transcriptions of correct speech; the first is the canonical
    spoken form ("three dollars fifty" for "$3.50"), later ones are other correct readings or the
    written form a recogniser may print. It is never empty.
    """

    id: str
    text: str
    expected: tuple[str, ...]
    category: str = "general"
    note: str | None = None
    language: str = "en"
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    reference_audio: str | None = None  # a recording of this text: PESQ/STOI/MCD/F0 of the clip against it

    def __post_init__(self) -> None:
        if not self.expected:
            raise ValueError(f"prompt {self.id!r} has no expected form")

    @property
    def spoken(self) -> str:
        """The canonical expected spoken form."""
        return self.expected[0]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "text": self.text, "expected": list(self.expected), "category": self.category,
            "language": self.language,
        }
        if self.note:
            out["note"] = self.note
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.reference_audio:
            out["reference_audio"] = self.reference_audio
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prompt:
        """Inverse of :meth:`to_dict`; ``expected`` may be a string, a list, or absent (then the text)."""
        text = d["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("'text' must be a non-empty string")
        expected = d.get("expected")
        if expected is None:
            expected = [text]
        elif isinstance(expected, str):
            expected = [expected]
        elif not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
            raise TypeError("'expected' must be a string or a list of strings")
        expected = [e.strip() for e in expected if e.strip()]
        if not expected:
            raise ValueError("'expected' has no non-empty form")
        return cls(
            id=str(d["id"]),
            text=text.strip(),
            expected=tuple(dict.fromkeys(expected)),
            category=str(d.get("category") or "general"),
            note=d.get("note"),
            language=str(d.get("language") or "en"),
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
            reference_audio=_reference_audio(d.get("reference_audio")),
        )


def _reference_audio(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise TypeError("'reference_audio' must be a non-empty path without NUL")
    return value.strip()


def bundled_prompts_path(name: str = DEFAULT_SET) -> Path:
    """Path of a bundled prompt set (``voxproof/data/prompts/<name>.jsonl``)."""
    if name not in BUNDLED_SETS:
        from voxproof.errors import UsageError

        raise UsageError(f"unknown bundled prompt set {name!r}; choose one of: {', '.join(BUNDLED_SETS)}")
    return Path(__file__).resolve().parents[1] / "data" / "prompts" / f"{name}.jsonl"


def load_prompts(source: str | Path | None = None) -> list[Prompt]:
    """Prompts from a bundled set name, a JSONL file or a plain-text file (one prompt per line).

    ``None`` gives the bundled ``en-stress`` set. Every bad line is reported at once in a
    :class:`ManifestError`; duplicate ids are errors. Blank lines and ``#`` comment lines in plain
    text files are skipped.
    """
    if source is None or (isinstance(source, str) and source in BUNDLED_SETS):
        path = bundled_prompts_path(source or DEFAULT_SET)
    else:
        path = Path(source)
    if not path.is_file():
        raise DataError(f"prompt file {path} not found; give a .jsonl or .txt file or one of {BUNDLED_SETS}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"prompt file {path} is not UTF-8 text: {exc}") from exc
    is_jsonl = path.suffix.lower() in {".jsonl", ".json"} or _looks_like_jsonl(lines)
    prompts: list[Prompt] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or (not is_jsonl and stripped.startswith("#")):
            continue
        try:
            if is_jsonl:
                data = json.loads(stripped)
                if not isinstance(data, dict):
                    raise TypeError("each line must be a JSON object")
                if "id" not in data:
                    data["id"] = f"p{len(prompts) + 1:04d}"
                prompt = Prompt.from_dict(data)
                if prompt.reference_audio and not Path(prompt.reference_audio).is_absolute():
                    from dataclasses import replace

                    prompt = replace(prompt, reference_audio=str(path.parent / prompt.reference_audio))
            else:
                prompt = Prompt(f"p{len(prompts) + 1:04d}", stripped, (stripped,))
        except (ValueError, TypeError, KeyError) as exc:
            problems.append((number, str(exc)))
            continue
        if prompt.id in seen:
            problems.append((number, f"duplicate id {prompt.id!r} (first on line {seen[prompt.id]})"))
            continue
        seen[prompt.id] = number
        prompts.append(prompt)
    if problems:
        raise ManifestError(f"prompt file {path} has {len(problems)} bad line(s)", problems)
    if not prompts:
        raise DataError(f"prompt file {path} has no prompts")
    return prompts


def prompts_hash(prompts: list[Prompt]) -> str:
    """sha256 (first 16 hex digits) of the prompts' ids, texts and expected forms, in order."""
    h = hashlib.sha256()
    for p in prompts:
        item = [p.id, p.text, list(p.expected)] + ([p.reference_audio] if p.reference_audio else [])
        h.update(json.dumps(item, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def _looks_like_jsonl(lines: list[str]) -> bool:
    for line in lines:
        if line.strip():
            return line.strip().startswith("{")
    return False
