"""One PII redaction policy for every place a transcript leaves the process.

The detectors are the audit's (:func:`voxproof.audit.pii.find_pii`: e-mail written and spoken, phone
numbers, Luhn-checked card numbers, street addresses, personal names); a detected span becomes its
placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[ADDRESS]``, ``[NAME]``).

Where it applies (each writer calls this module, so one policy covers them all):

- eval reports: ``summary.json`` (transcript fields) and ``report.html`` (the per-utterance alignments
  and the confusion table: normalised words that came from a PII span are shown as ``[PII]``);
- ``voxproof compare`` JSON/HTML, audit JSON/HTML/datasheet and the ``--fix`` log (finding messages and
  evidence);
- log records of the ``voxproof`` loggers (a :class:`RedactingFilter` on the CLI's handler);
- the serve request log: :func:`redact_request_entry` (on by default: :data:`SERVE_POLICY`).

Not redacted: the run store (``run.sqlite``) and the audit's item store, which hold the data itself
(as sensitive as the manifest they were made from) and are needed to re-score; metrics are always
computed on the unredacted text, so a figure never changes with the policy.

Policy: off by default outside ``serve``; ``voxproof --redact-pii all|none|KIND,KIND ...`` or the
environment variable ``VOXPROOF_REDACT_PII`` (same values) sets it for the process. Structured outputs
are redacted field by field (transcript fields only), never as whole files: a detector run over a whole
JSON or HTML file would take dates, hashes and chart coordinates for phone numbers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from voxproof.errors import UsageError

log = logging.getLogger("voxproof.security.redact")

KINDS = ("email", "phone", "card", "address", "name")
ENV = "VOXPROOF_REDACT_PII"
TOKEN = "[PII]"
# keys of structured outputs whose string values are transcript text (or derived from it)
TRANSCRIPT_KEYS = frozenset({"reference", "hypothesis", "text", "ref", "hyp", "transcript", "redacted_text",
                             "message", "error_message", "examples", "words", "a_hypothesis", "b_hypothesis"})


@dataclass(frozen=True)
class RedactionPolicy:
    """Which kinds of personal data are replaced in outputs (``enabled=False``: none)."""

    enabled: bool = False
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise UsageError(f"unknown PII kind(s) {', '.join(map(repr, bad))[:120]}: use all, none or a comma list of "
                             f"{', '.join(KINDS)}")

    @classmethod
    def parse(cls, spec: str | None) -> RedactionPolicy:
        """``all``/``on``/``1`` (every kind), ``none``/``off``/``0``/empty, or ``email,phone,...``."""
        s = (spec or "").strip().lower()
        if s in ("", "none", "off", "0", "false", "no"):
            return cls(False)
        if s in ("all", "on", "1", "true", "yes"):
            return cls(True)
        return cls(True, tuple(dict.fromkeys(k.strip() for k in s.split(",") if k.strip())))

    def describe(self) -> str:
        return f"on ({', '.join(self.kinds)})" if self.enabled else "off"

    def text(self, text: str) -> str:
        """``text`` with every detected span of the policy's kinds replaced by its placeholder."""
        if not self.enabled or not text:
            return text
        from voxproof.audit.pii import find_pii, redact

        hits = [h for h in find_pii(text) if h.kind in self.kinds]
        return redact(text, hits) if hits else text

    def terms(self, texts: Iterable[str | None], normalizer: Any = None) -> frozenset[str]:
        """The words (lower case, and as ``normalizer`` writes them) inside PII spans of ``texts``: what a
        word-level display (an alignment, a confusion table) must not show."""
        if not self.enabled:
            return frozenset()
        from voxproof.audit.pii import find_pii

        out: set[str] = set()
        for text in texts:
            for h in find_pii(text or ""):
                if h.kind in self.kinds:
                    span = text[h.start:h.end]  # type: ignore[index]
                    out.update(w.lower() for w in re.split(r"\s+", span) if w)
                    if normalizer is not None:
                        out.update(normalizer(span).split())
        return frozenset(out)


SERVE_POLICY = RedactionPolicy(True)  # serve logs: on by default
_current: list[RedactionPolicy] = []


def current_policy() -> RedactionPolicy:
    """The process's policy: set by :func:`set_policy` (the CLI's ``--redact-pii``), else ``$VOXPROOF_REDACT_PII``."""
    if _current:
        return _current[-1]
    return RedactionPolicy.parse(os.environ.get(ENV))


def set_policy(policy: RedactionPolicy | None) -> None:
    """Set (or with None, clear back to the environment's) the process-wide policy."""
    _current.clear()
    if policy is not None:
        _current.append(policy)


def redact_text(text: str | None, policy: RedactionPolicy | None = None) -> str | None:
    """``text`` under ``policy`` (default: the current one); None stays None."""
    if text is None:
        return None
    return (policy or current_policy()).text(text)


def redact_value(value: Any, policy: RedactionPolicy | None = None, *, keys: frozenset[str] = TRANSCRIPT_KEYS,
                 inside: bool = False) -> Any:
    """A copy of JSON-like ``value`` whose strings under ``keys`` (at any depth, and everything nested
    below such a key) are redacted; other strings (ids, dates, hashes) are left alone."""
    policy = policy or current_policy()
    if not policy.enabled:
        return value
    if isinstance(value, dict):
        return {k: redact_value(v, policy, keys=keys, inside=inside or k in keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, policy, keys=keys, inside=inside) for v in value)
    if isinstance(value, str) and inside:
        return policy.text(value)
    return value


def redact_finding(finding: dict[str, Any], policy: RedactionPolicy | None = None) -> dict[str, Any]:
    """An audit finding's dict with its message and every string of its evidence redacted (ids kept)."""
    return redact_value(finding, policy, keys=TRANSCRIPT_KEYS | {"evidence"})


def redact_words(words: Iterable[str | None], terms: frozenset[str]) -> list[str | None]:
    """Word-level display: each word in ``terms`` becomes ``[PII]``."""
    return [TOKEN if (w is not None and w.lower() in terms) else w for w in words]


def serve_policy() -> RedactionPolicy:
    """The policy of ``serve``'s logs: the one set for the process (``--redact-pii``) or, when none was
    set, :data:`SERVE_POLICY` (on). ``VOXPROOF_REDACT_PII`` also counts as set."""
    if _current:
        return _current[-1]
    return RedactionPolicy.parse(os.environ[ENV]) if os.environ.get(ENV) is not None else SERVE_POLICY


def redact_request_entry(entry: dict[str, Any], policy: RedactionPolicy | None = None) -> dict[str, Any]:
    """A serve request-log row with its transcript fields redacted (default policy: :func:`serve_policy`)."""
    return redact_value(entry, policy or serve_policy())


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with the current policy (a no-op while it is off)."""

    def __init__(self, policy: RedactionPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy

    def filter(self, record: logging.LogRecord) -> bool:
        policy = self.policy or current_policy()
        if policy.enabled:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            record.msg, record.args = policy.text(message), ()
        return True
