"""Contextual biasing: biased/unbiased WER hand-counted, lists built from references, the bundled
example list, list files refused when malformed or hostile."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxproof.errors import UsageError
from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.manifest.reader import read_manifest
from voxproof.metrics.align import word_counts
from voxproof.metrics.biasing import (
    bias_counts,
    build_lists,
    format_lists,
    parse_lists,
    per_utterance,
    score_setting,
)
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.normalize import get_normalizer

NORM = get_normalizer("whisper-en")
BUNDLED_LIST = Path(__file__).resolve().parents[1] / "src/voxproof/data/classes/librispeech-mini-bias.tsv"


def test_biased_and_unbiased_counts_hand_counted():
    ref = ["margaret", "said", "mister", "thornton", "came"]
    hyp = ["margret", "said", "mister", "thornton", "thornton", "came"]
    b, u = bias_counts(ref, hyp, {"margaret", "thornton", "helstone"})
    assert b == ErrorCounts(hits=1, substitutions=1, deletions=0, insertions=1)  # margaret->margret, extra thornton
    assert u == ErrorCounts(hits=3, substitutions=0, deletions=0, insertions=0)
    assert (b + u).errors == word_counts(" ".join(ref), " ".join(hyp)).errors
    b, u = bias_counts(ref, ["said", "mister", "helstone", "came"], {"margaret", "thornton", "helstone"})
    assert b.deletions == 1 and b.substitutions == 1 and u.errors == 0  # distractor said in place of thornton


def test_lists_built_from_references_hold_rare_words_and_distractors():
    refs = {"a": "The lobster was served with sherry", "b": "The lobster came from Helstone", "c": "Nothing rare here"}
    lists = build_lists(refs, NORM, distractors=2, seed=0)
    assert "sherry" in lists["a"] and "served" in lists["a"] and "lobster" not in lists["a"]  # lobster is in 2
    assert {"helstone", "came"} <= set(lists["b"]) and len(lists["b"]) == 2 + 2  # own rare words + 2 distractors
    assert lists == build_lists(refs, NORM, distractors=2, seed=0)  # seeded
    scores = score_setting("x", per_utterance(list(refs.values()), list(refs.values()), list(lists.values()), NORM),
                           None, n_resamples=100, seed=0, level=0.95)
    assert scores.b_wer.estimate == 0 and scores.biased.ref_len >= 4


def test_bundled_example_list_is_the_built_one_and_parses():
    utts = list(read_manifest(str(bundled_dataset_path())))
    lists = parse_lists(BUNDLED_LIST, [u.id for u in utts])
    assert len(lists) == 50
    built = build_lists({u.id: u.text for u in utts}, NORM, distractors=10, seed=0)
    assert format_lists(lists) == format_lists(built)


@pytest.mark.parametrize("text, message", [
    ("u1 no tab\n", "expected UTT_ID"), ("nope\tx\n", "not in the data set"), ("u1\ta\nu1\tb\n", "repeated"),
    ("u1\t" + "|".join(["w"] * 501) + "\n", "at most 500"),
])
def test_bad_list_files_are_refused(tmp_path, text, message):
    p = tmp_path / "l.tsv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        parse_lists(p, ["u1"])
    with pytest.raises(UsageError, match="not a regular file"):
        parse_lists("/dev/zero", ["u1"])
