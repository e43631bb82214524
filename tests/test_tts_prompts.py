"""Prompt sets, intelligibility scoring against expected spoken forms, and timing helpers."""

from __future__ import annotations

import json

import pytest

from voxproof.errors import DataError, ManifestError
from voxproof.metrics.normalize import get_normalizer
from voxproof.tts.intelligibility import estimate_syllables, expected_duration, score_intelligibility, timing
from voxproof.tts.prompts import Prompt, load_prompts, prompts_hash

CATEGORIES = {
    "numbers", "dates", "times", "currency", "abbreviations", "acronyms", "urls", "emails", "names",
    "homographs", "questions", "long", "short",
}


def test_bundled_set_covers_every_category_with_expected_forms():
    prompts = load_prompts()
    assert 40 <= len(prompts) <= 60
    assert {p.category for p in prompts} == CATEGORIES
    assert len({p.id for p in prompts}) == len(prompts)
    for p in prompts:
        assert p.expected and all(e.strip() for e in p.expected)
        # the canonical spoken form has no digits or symbols: it is what a listener hears
        assert not any(ch.isdigit() or ch in "$€£%@/" for ch in p.spoken), p.id
    by_id = {p.id: p for p in prompts}
    assert "three dollars fifty" in by_id["cur-01"].spoken
    assert any("fifty cents" in e for e in by_id["cur-01"].expected)
    assert max(len(p.text.split()) for p in prompts) >= 30  # long sentences
    assert min(len(p.text.split()) for p in prompts) == 1  # very short inputs


def test_plain_text_and_jsonl_prompt_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("# comment\nHello there.\n\nGood night.\n", encoding="utf-8")
    prompts = load_prompts(txt)
    assert [p.id for p in prompts] == ["p0001", "p0002"]
    assert prompts[1].expected == ("Good night.",)

    jl = tmp_path / "p.jsonl"
    jl.write_text(
        json.dumps({"id": "a", "text": "It costs $5.", "expected": ["it costs five dollars"], "category": "currency"})
        + "\n" + json.dumps({"id": "b", "text": "Plain."}) + "\n",
        encoding="utf-8",
    )
    prompts = load_prompts(jl)
    assert prompts[0] == Prompt("a", "It costs $5.", ("it costs five dollars",), "currency")
    assert prompts[1].expected == ("Plain.",)
    assert prompts_hash(prompts) != prompts_hash(prompts[:1])


def test_bad_prompt_lines_are_all_reported(tmp_path):
    jl = tmp_path / "bad.jsonl"
    jl.write_text(
        '{"id": "a", "text": "ok"}\n{"id": "a", "text": "dup"}\n{"id": "c"}\nnot json\n{"id": "e", "text": "x", "expected": 3}\n',
        encoding="utf-8",
    )
    with pytest.raises(ManifestError) as exc:
        load_prompts(jl)
    assert [n for n, _ in exc.value.problems] == [2, 3, 4, 5]
    assert "duplicate id 'a'" in str(exc.value)
    with pytest.raises(DataError):
        load_prompts(tmp_path / "missing.txt")


def test_best_expected_form_is_the_reference():
    norm = get_normalizer("whisper-en")
    expected = ("the bus ticket costs three dollars fifty", "the bus ticket costs three dollars and fifty cents")
    res = score_intelligibility(expected, "The bus ticket costs $3.50.", norm)
    assert res.form_index == 1 and res.words.errors == 0 and res.wer == 0.0
    res = score_intelligibility(expected, "The bus ticket cost.", norm)
    # both forms need 2 word edits ("$3 50" vs "$3.50"); the tie goes to fewer character edits
    assert res.form_index == 1 and res.reference_norm == "the bus ticket costs $3.50"
    assert res.words.substitutions == 1 and res.words.deletions == 1
    empty = score_intelligibility(expected, "", norm)
    assert empty.words.deletions == empty.words.ref_len and empty.wer == 1.0


def test_syllables_and_timing():
    assert estimate_syllables("hello") == 2
    assert estimate_syllables("the library will stay open late") == 9  # the li-bra-ry will stay o-pen late
    assert expected_duration("one two three four five") == pytest.approx(2.0)
    t = timing("one two three four five", audio_seconds=2.5, speech_seconds=2.0, synthesis_seconds=0.25)
    assert t.words_per_second == pytest.approx(2.5)
    assert t.duration_ratio == pytest.approx(1.0)
    assert t.rtf == pytest.approx(0.1)
    silent = timing("one two", audio_seconds=1.0, speech_seconds=0.0, synthesis_seconds=None)
    assert silent.words_per_second is None and silent.rtf is None and silent.duration_ratio == 0.0
