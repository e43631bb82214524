"""Alternates: spellings that count as the same words (``okay|ok``, ``alright|all right``), applied
between normalisation and alignment, in the spirit of sclite's alternates.

Rule (reference-guided): for each group, if the reference uses exactly one variant of the group, every
other variant of that group found in the hypothesis (longest match first, left to right) is rewritten
to the reference's variant before alignment. So reference word counts never change and a variant the
reference does not use is never rewritten. A group whose variants the reference mixes is left alone
(ambiguous). sclite instead picks, per reference position, the alternative with fewest errors and
counts that alternative's words; the two agree whenever the reference uses one spelling.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError

Variant = tuple[str, ...]


@dataclass(frozen=True)
class Alternates:
    """Equivalence groups; each group is a tuple of variants, each variant a tuple of words."""

    groups: tuple[tuple[Variant, ...], ...]
    source: str = ""

    @property
    def digest(self) -> str:
        """Short content hash, part of the cache key of counts scored with these alternates."""
        text = "\n".join("|".join(" ".join(v) for v in g) for g in self.groups)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def __add__(self, other: Alternates) -> Alternates:
        return Alternates(self.groups + other.groups, "+".join(s for s in (self.source, other.source) if s))

    def normalized(self, normalizer: Any) -> Alternates:
        """Variants passed through ``normalizer`` (so entries match normalised text); groups that
        collapse to one variant are dropped."""
        groups = []
        for group in self.groups:
            seen: dict[Variant, None] = {}
            for v in group:
                nv = tuple(normalizer(" ".join(v)).split())
                if nv:
                    seen.setdefault(nv, None)
            if len(seen) > 1:
                groups.append(tuple(seen))
        return Alternates(tuple(groups), self.source)

    def apply(self, ref: list[str], hyp: list[str]) -> list[str]:
        """The hypothesis tokens with variants rewritten to the reference's variant (new list)."""
        out = list(hyp)
        for group in self.groups:
            used = {v for v in group if _find(ref, v)}
            if len(used) != 1:
                continue
            target = next(iter(used))
            others = sorted((v for v in group if v != target), key=len, reverse=True)
            out = _rewrite(out, others, target)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "digest": self.digest, "groups": [[" ".join(v) for v in g] for g in self.groups]}


def _find(tokens: list[str], variant: Variant) -> bool:
    n = len(variant)
    first = variant[0]
    return any(tokens[k] == first and tuple(tokens[k : k + n]) == variant for k in range(len(tokens) - n + 1))


def _rewrite(tokens: list[str], sources: list[Variant], target: Variant) -> list[str]:
    out: list[str] = []
    k = 0
    while k < len(tokens):
        for v in sources:
            if tuple(tokens[k : k + len(v)]) == v:
                out.extend(target)
                k += len(v)
                break
        else:
            out.append(tokens[k])
            k += 1
    return out


def parse_alternates(text: str, source: str = "") -> Alternates:
    """Groups from text: one group per line, variants separated by ``|``, ``#`` starts a comment."""
    groups = []
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        variants = tuple(tuple(v.lower().split()) for v in line.split("|"))
        if len(variants) < 2 or any(not v for v in variants):
            problems.append(f"line {number}: {line!r} needs two or more non-empty variants separated by '|'")
            continue
        groups.append(variants)
    if problems:
        raise UsageError(f"bad alternates file {source or '<text>'}: " + "; ".join(problems))
    return Alternates(tuple(groups), source)


def load_alternates(path: str | Path) -> Alternates:
    """A user alternates file (same format as the bundled default list)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"alternates file {path} not found; pass a text file with lines like 'okay|ok'")
    return parse_alternates(p.read_text(encoding="utf-8"), source=str(p))


def default_alternates() -> Alternates:
    """The list bundled with voxproof (``voxproof/data/alternates/default.txt``)."""
    text = files("voxproof").joinpath("data/alternates/default.txt").read_text(encoding="utf-8")
    return parse_alternates(text, source="default")


def resolve_alternates(spec: Alternates | str | Path | None | bool) -> Alternates | None:
    """``None``/``False``/``"none"`` -> none; ``True`` or ``"default"`` -> bundled list; a path -> that
    file alone (prefix ``default+`` to add the bundled list: ``default+my.txt``); an :class:`Alternates`
    as is."""
    if spec is None or spec is False or spec == "none" or spec == "":
        return None
    if isinstance(spec, Alternates):
        return spec
    if spec is True or spec == "default":
        return default_alternates()
    if isinstance(spec, str) and spec.startswith("default+"):
        return default_alternates() + load_alternates(spec[len("default+"):])
    return load_alternates(spec)
