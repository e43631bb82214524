"""Label noise or model error? Evidence that tells a wrong transcript from a hard utterance.

A single recogniser's WER cannot tell them apart: Whisper tiny.en gets some clean LibriSpeech test-other
utterances 75-150 % wrong. Three pieces of evidence can (issue 19, measured on a planted corpus by
``benchmarks/label_noise.py``):

- **confidence**: the mean word probability of the recogniser's words that disagree with the reference.
  Whisper's word probabilities are calibrated (ECE 0.036): on a hard utterance its wrong words are
  unsure; on a wrong label it hears the words clearly and is sure of them.
- **agreement**: a second, independent recogniser (PocketSphinx) shares more words with the first
  recogniser's text than with the reference (share of the second's words matched in the first's text
  minus the share matched in the reference).
- **shape**: the share of the alignment taken by its longest run of errors. A transcript of another
  utterance, a truncated one or a partly replaced one puts its errors in one long block; a hard
  utterance scatters short local errors.

:func:`judge` combines them with :class:`LabelNoiseRule`; the severity of a finding is the one the rule
earned on the planted corpus (see ``DEFAULT_SEVERITY``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voxproof.metrics.align import EQUAL, align, word_counts
from voxproof.options import bounded, check_ranges

# The finding's severity follows its precision on the planted corpus of benchmarks/label_noise.py (80
# items: 20 wrong transcripts, 60 hard but correct): >= 0.9 high, >= 0.75 medium, else low. Measured with
# the default rule: precision 0.87, recall 1.00 (20 found, 3 false alarms), against 0.62 / 0.65 for the old
# single rule (WER > 60 %). Whisper alone (confidence + shape): 1.00 / 0.80.
DEFAULT_SEVERITY = "medium"


@dataclass(frozen=True)
class Decoded:
    """A recogniser's output: raw text and ``(word, probability or None)`` pairs."""

    text: str
    words: tuple[tuple[str, float | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "words": [list(w) for w in self.words]}

    @classmethod
    def from_json(cls, data: Any) -> Decoded:
        if isinstance(data, str):  # a cache entry written before word confidences were kept
            return cls(data)
        return cls(str(data.get("text", "")), tuple((str(w), c) for w, c in data.get("words", ())))


@dataclass(frozen=True)
class LabelNoiseRule:
    """When a disagreement is called label noise.

    An item is a candidate when the first recogniser's WER is at least ``min_wer``. A candidate is label
    noise when at least ``min_votes`` of the three pieces of evidence hold: its wrong words have a
    mean probability of at least ``min_error_confidence``; its longest run of errors is at least
    ``min_block_share`` of the alignment; the second recogniser has a share of at least
    ``min_agreement`` more of its words in the first's text than in the reference. Evidence that is
    missing (no confidences, no second recogniser) does not vote. With no evidence at all the old rule applies: WER above
    ``max_wer``.
    """

    min_wer: float = bounded(0.25, 0.0, 10.0)
    max_wer: float = bounded(0.6, 0.0, 10.0)
    min_error_confidence: float = bounded(0.6, 0.0, 1.0)  # calibrated: the model expects most of them right
    min_block_share: float = bounded(0.35, 0.0, 1.0)
    min_agreement: float = bounded(0.1, -1.0, 1.0)
    min_votes: int = bounded(2, 1, 3)

    def __post_init__(self) -> None:
        check_ranges(self)


def token_confidences(decoded: Decoded, norm: Callable[[str], str]) -> tuple[list[str], list[float | None]]:
    """The normalised tokens of ``decoded`` with each one's word probability (every token a raw word
    normalises to gets that word's probability); plain text when there are no word entries."""
    if not decoded.words:
        tokens = norm(decoded.text).split()
        return tokens, [None] * len(tokens)
    tokens: list[str] = []
    confs: list[float | None] = []
    for word, conf in decoded.words:
        for tok in norm(word).split():
            tokens.append(tok)
            confs.append(conf)
    return tokens, confs


def longest_error_share(ops: Sequence[tuple[str, Any, Any]]) -> float:
    """The longest run of consecutive non-hit operations as a share of all operations (0 when none)."""
    best = run = 0
    for op in ops:
        run = 0 if op[0] == EQUAL else run + 1
        best = max(best, run)
    return best / len(ops) if ops else 0.0


def label_noise_evidence(reference: str, first: Decoded, second: Decoded | None,
                         norm: Callable[[str], str]) -> dict[str, Any] | None:
    """The evidence of one item (see the module docstring), or None when the reference has no words."""
    ref = norm(reference).split()
    if not ref:
        return None
    wer = word_counts(" ".join(ref), norm(first.text)).error_rate
    tokens, confs = token_confidences(first, norm)
    alignment = align(ref, tokens)
    wrong = [confs[j] for op, _, j in alignment.ops if op != EQUAL and j is not None]
    wrong_known = [c for c in wrong if c is not None]
    out: dict[str, Any] = {
        "wer": round(wer, 4),
        "error_confidence": round(sum(wrong_known) / len(wrong_known), 4) if wrong_known else None,
        "error_block_share": round(longest_error_share(alignment.ops), 4),
        "hit_share": round(alignment.counts.hits / len(ref), 4),
        "hypothesis_empty": not tokens,
    }
    if second is not None:
        # Share of the second recogniser's words the first one also heard, minus the share the reference
        # has: both over the second's words, so a length difference cannot fake agreement (WERs over two
        # different references could), and two recognisers that both fail score about 0.
        second_n = norm(second.text)
        n = len(second_n.split())
        out["second_wer"] = round(word_counts(" ".join(ref), second_n).error_rate, 4)
        if n:
            with_first = word_counts(second_n, norm(first.text)).hits / n
            with_ref = word_counts(second_n, " ".join(ref)).hits / n
            out["second_matches_first"] = round(with_first, 4)
            out["second_matches_reference"] = round(with_ref, 4)
            out["agreement"] = round(with_first - with_ref, 4)
        else:
            out["agreement"] = None
    return out


def judge(evidence: dict[str, Any], rule: LabelNoiseRule) -> tuple[bool, list[str]]:
    """Is the item label noise under ``rule``? Returns the decision and the reasons that voted for it
    (or, when nothing could vote, the old single-threshold reason)."""
    wer = evidence["wer"]
    if not math.isfinite(wer) or wer < rule.min_wer:
        return False, []
    if evidence.get("hit_share") == 0 and evidence.get("hypothesis_empty"):
        return False, []  # the recogniser heard nothing: that says nothing about the transcript
    votes: list[str] = []
    known = 0
    conf = evidence.get("error_confidence")
    if conf is not None:
        known += 1
        if conf >= rule.min_error_confidence:
            votes.append(f"confident disagreement (wrong words at mean probability {conf:.2f})")
    block = evidence.get("error_block_share")
    if block is not None:
        known += 1
        if block >= rule.min_block_share:
            votes.append(f"errors in one block ({block:.0%} of the alignment)")
    agreement = evidence.get("agreement")
    if agreement is not None:
        known += 1
        if agreement >= rule.min_agreement:
            votes.append(f"second recogniser shares {agreement:.0%} more of its words with the first than with the "
                         "reference")
    if known == 0:
        return (wer > rule.max_wer), ([f"WER {wer:.0%} > {rule.max_wer:.0%}"] if wer > rule.max_wer else [])
    return len(votes) >= min(rule.min_votes, known), votes


def second_recogniser(first: str, choice: str | None) -> str | None:
    """The second recogniser's name: ``choice`` as given, None for ``none``/empty, and for ``auto``
    PocketSphinx when it is installed and is not the first recogniser (else None: no agreement vote)."""
    if choice is None or choice.lower() in ("", "none", "off"):
        return None
    if choice != "auto":
        return choice
    if first == "sphinx":
        return None
    from voxproof.backends.registry import get_spec

    try:
        return None if get_spec("sphinx", kind="asr").missing() else "sphinx"
    except Exception:  # noqa: BLE001 - an unknown backend registry state: no second opinion rather than a failed audit
        return None
