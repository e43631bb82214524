"""Token classes: tagging rules, error attribution through the alignment (hand-counted), keyword
precision/recall/F1, OOV recall, list files (hostile ones too), class scores in score_run, compare
and the gate's ``wer.class[NAME]`` rule on run stores built from the bundled references."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from voxproof.backends.base import Transcript
from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.gate import evaluate_gate, parse_policy
from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.metrics.align import word_counts
from voxproof.metrics.classes import (
    ClassSpec,
    KeywordCounts,
    attribute,
    load_class_spec,
    parse_rules,
    read_list_file,
    tag_reference,
)
from voxproof.metrics.compare import compare_runs
from voxproof.metrics.counts import ErrorCounts
from voxproof.metrics.normalize import get_normalizer
from voxproof.metrics.scoring import score_run
from voxproof.run.provenance import build_provenance
from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore

WHISPER = get_normalizer("whisper-en")
BASIC = get_normalizer("basic")
ENTITIES = Path(__file__).resolve().parents[1] / "src/voxproof/data/classes/librispeech-mini-entities.tsv"


def tags_of(raw, norm=WHISPER, spec=None):
    spec = spec or ClassSpec()
    tokens, tags, has_case = tag_reference(raw, norm, spec)
    return {t: sorted(c) for t, c in zip(tokens, tags)}, has_case


def test_rule_classes_on_a_mixed_case_reference():
    got, has_case = tags_of("Then Margaret paid Mr. Thornton twenty five dollars at 10:30 pm on May 3rd; "
                            "mail j.doe@example.com about the B B C.", BASIC)
    assert has_case
    assert got["margaret"] == ["proper_nouns"] and got["thornton"] == ["proper_nouns"]  # after "Mr." too
    assert "proper_nouns" not in got["then"]  # starts the sentence
    assert got["twenty"] == ["currency", "numbers"] and got["dollars"] == ["currency"]
    assert got["30"] == ["numbers", "times"] and got["pm"] == ["times"]
    assert "dates" in got["may"] and "dates" in got["3rd"] and "ordinals" in got["3rd"]
    assert got["example"] == ["email_url"]
    assert "spelled_letters" in got["b"] and "spelled_letters" in got["c"]
    assert got["the"] == ["function_words"] and got["about"] == ["function_words"]


def test_whisper_normaliser_turns_spelled_numbers_into_tagged_digits_and_case_is_missing():
    got, has_case = tags_of("IT COST TWENTY FIVE DOLLARS THE DOSE IS TEN MINIMS IN MAY")
    assert not has_case  # LibriSpeech: upper case only, so no proper nouns by capitalisation
    assert got["$25"] == ["currency", "numbers"] and got["10"] == ["numbers"]
    assert got["may"] == ["function_words"]  # "may" alone is the verb, not the month
    assert all("proper_nouns" not in c for c in got.values())


def test_errors_are_attributed_through_the_alignment_hand_counted():
    spec = ClassSpec(rules=("numbers", "function_words"))
    tokens, tags, _ = tag_reference("we paid twenty five pounds for the house", BASIC, spec)
    hyp = ["we", "paid", "twenty", "and", "six", "pounds", "for", "a", "house"]
    counts, _, _ = attribute(tokens, tags, hyp, spec)
    # ref: we paid [twenty five] pounds for the house; hyp inserts "and" inside the number span,
    # substitutes five->six and the->a
    assert counts["numbers"] == ErrorCounts(hits=1, substitutions=1, deletions=0, insertions=1)
    assert counts["function_words"] == ErrorCounts(hits=2, substitutions=1, deletions=0, insertions=0)
    overall = word_counts(" ".join(tokens), " ".join(hyp))
    assert overall.errors == 3  # class errors are a restriction of the utterance's edits


def test_every_token_in_one_class_gives_back_the_utterance_counts():
    spec = ClassSpec(rules=(), vocabulary=frozenset())  # empty vocabulary: every word is out of it
    for ref, hyp in [("a b c d e", "a x c e f"), ("one two three", "zero one two three four"), ("a b", "")]:
        tokens, tags, _ = tag_reference(ref, BASIC, spec)
        counts, _, _ = attribute(tokens, tags, hyp.split(), spec)
        full = word_counts(ref, hyp)
        oov = counts["oov"]
        assert (oov.hits, oov.substitutions, oov.deletions) == (full.hits, full.substitutions, full.deletions)
        assert oov.insertions <= full.insertions  # boundary insertions belong to no class


def test_keyword_precision_recall_f1_hand_counted():
    spec = ClassSpec(rules=(), keywords=(("san", "francisco"), ("lobster",)))
    tokens, tags, _ = tag_reference("lobster from san francisco and lobster again", BASIC, spec)
    hyp = ["lobster", "from", "san", "fran", "cisco", "and", "lobster", "lobster", "again"]
    counts, kw, per = attribute(tokens, tags, hyp, spec)
    assert per["lobster"] == KeywordCounts(ref=2, hyp=3, found=2)
    assert per["san francisco"] == KeywordCounts(ref=1, hyp=0, found=0)
    assert kw == KeywordCounts(3, 3, 2)
    assert kw.precision == pytest.approx(2 / 3) and kw.recall == pytest.approx(2 / 3)
    assert kw.f1 == pytest.approx(2 / 3)
    assert counts["keywords"].ref_len == 4 and counts["keywords"].substitutions == 1


def test_oov_recall_against_a_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\ncat\nsat on\n# a comment\n", encoding="utf-8")
    spec = load_class_spec(BASIC, rules="none", vocab=vocab)
    tokens, tags, _ = tag_reference("The cat sat on the zebra mat", BASIC, spec)
    counts, _, _ = attribute(tokens, tags, ["the", "cat", "sat", "on", "the", "zebra", "hat"], spec)
    assert counts["oov"] == ErrorCounts(hits=1, substitutions=1, deletions=0, insertions=0)  # zebra ok, mat->hat
    assert spec.to_dict()["vocabulary"] == 4 and "sha256:" in spec.sources["vocab"]


@pytest.mark.parametrize("content, message", [
    (b"x\x00y\n", "NUL"), (b"\xff\xfe\xfa\n", "not UTF-8"),
])
def test_list_files_with_bad_bytes_are_refused(tmp_path, content, message):
    p = tmp_path / "list.txt"
    p.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_list_file(p, "keywords")


def test_list_files_that_are_not_regular_or_too_big_are_refused(tmp_path):
    with pytest.raises(UsageError, match="not a regular file"):
        read_list_file("/dev/zero", "keywords")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        read_list_file(fifo, "entities")
    with pytest.raises(UsageError, match="not a regular file"):
        read_list_file(tmp_path, "vocabulary")
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:
        fh.truncate(9 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(UsageError, match="byte limit"):
        read_list_file(big, "keywords")
    with pytest.raises(UsageError, match="does not exist"):
        read_list_file(tmp_path / "missing.txt", "keywords")
    with pytest.raises(UsageError, match="NUL"):
        read_list_file("a\x00b", "keywords")


def test_bad_entity_lines_and_rule_names_are_refused(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("Bad Class\tfoo\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 1"):
        load_class_spec(BASIC, entities=p)
    p.write_text("person\t...\n", encoding="utf-8")
    with pytest.raises(UsageError, match="empty after normalisation"):
        load_class_spec(BASIC, entities=p)
    p.write_text("oov\tfoo\n", encoding="utf-8")
    with pytest.raises(UsageError, match="reserved"):
        load_class_spec(BASIC, entities=p)
    with pytest.raises(UsageError, match="unknown class rule 'numbrs'"):
        parse_rules("numbers,numbrs")
    assert parse_rules("none") == () and "numbers" in parse_rules(None)


# -- run stores from the bundled references ---------------------------------------------------------
def bundled_rows():
    d = bundled_dataset_path()
    import csv

    info = {r["id"]: r for r in csv.DictReader((d / "utt_info.tsv").read_text().splitlines(), delimiter="\t")}
    for line in (d / "transcripts.tsv").read_text().splitlines():
        uid, text = line.split("\t", 1)
        yield uid, text, info[uid]["speaker"]


DIGITS = {"one": "1", "two": "2", "four": "4", "ten": "10", "three": "3"}


def make_store(path: Path, hyp_fn, normalizer=BASIC) -> Path:
    rows = list(bundled_rows())
    prov = build_provenance(backend={"name": "fixture", "kind": "asr", "model": "m", "options": {}},
                            dataset={"hash": "bundled", "utterances": len(rows)},
                            normalizer=normalizer.to_dict(), seed=0, run_options={}, conditions=[])
    with RunStore.create(path, prov) as store:
        for i, (uid, ref, spk) in enumerate(rows):
            text = hyp_fn(uid, ref)
            store.add_row(ResultRow(uid, "clean", "ok", reference=ref, hypothesis=text,
                                    transcript=Transcript(text, (), None), audio_duration=5.0,
                                    processing_time=0.5, speaker=spk), i)
        store.set_meta("status", "complete")
        store.set_meta("resources", {"wall_seconds": 10.0, "workers": 1})
    return path


def spoken(uid, ref):
    """The reference with one word dropped in every third utterance (a baseline with some errors)."""
    words = BASIC(ref).split()
    return " ".join(words[1:] if int(uid[-1]) % 3 == 0 else words)


def digits(uid, ref):
    """The baseline with number words written as digits (what a captioning model does)."""
    return " ".join(DIGITS.get(w, w) for w in spoken(uid, ref).split())


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    return make_store(root / "spoken", spoken), make_store(root / "digits", digits)


def test_score_run_gives_class_wer_with_intervals_and_reasons(stores):
    spec = load_class_spec(BASIC, entities=ENTITIES)
    with RunStore.open(stores[1]) as store:
        scores = score_run(store, "basic", classes=spec, n_resamples=200)
    clean = scores.condition("clean")
    numbers = clean.token_class("numbers")
    n_number_words = sum(1 for _, ref, _ in bundled_rows() for w in BASIC(ref).split() if w in DIGITS)
    assert numbers.counts.substitutions >= n_number_words - numbers.counts.deletions - 2
    assert numbers.wer.estimate > 0.5 and numbers.wer.low <= numbers.wer.estimate <= numbers.wer.high
    assert numbers.wer.blocked_by == "speaker"
    proper = clean.token_class("proper_nouns")
    assert proper.counts.ref_len >= 10 and proper.kind == "rule"  # found through the entity list
    assert clean.token_class("dates").reason == "none in the 50 references"
    d = scores.to_dict()
    assert d["classes"]["sources"]["entities"].startswith(str(ENTITIES))
    assert {c["name"] for c in d["conditions"][0]["classes"]} >= {"numbers", "function_words", "proper_nouns"}
    json.dumps(d, allow_nan=False)


def test_compare_runs_pairs_each_class(stores):
    with RunStore.open(stores[0]) as a, RunStore.open(stores[1]) as b:
        comp = compare_runs(a, b, "basic", classes={"rules": "numbers,function_words"}, n_resamples=200)
    numbers = comp.token_class("numbers")
    assert numbers.errors_b > numbers.errors_a and numbers.difference.low > 0
    assert comp.token_class("function_words").difference.estimate == 0
    assert comp.to_dict()["classes"][0]["class"] == "numbers"


GATE = """
[decision]
method = "interval"
resamples = 500
[wer.overall]
max_increase = 0.02
[wer.classes]
by = ["numbers", "function_words", "proper_nouns"]
max_increase = 0.0
min_utterances = 3
entities = "{entities}"
"""


def test_gate_fails_the_candidate_only_on_the_numbers_class(stores):
    policy = parse_policy(GATE.format(entities=ENTITIES))
    verdict = evaluate_gate(stores[0], stores[1], policy)
    failing = [r.rule for r in verdict.rules if r.failing]
    assert failing == ["wer.class[numbers]"], [(r.rule, r.verdict, r.detail) for r in verdict.rules]
    by_rule = {r.rule: r for r in verdict.rules}
    assert by_rule["wer.class[function_words]"].verdict == "pass"
    assert by_rule["wer.class[proper_nouns]"].verdict == "pass"
    assert by_rule["wer.overall"].verdict == "pass"
    assert by_rule["wer.class[numbers]"].interval[0] > 0


def test_gate_policy_class_table_is_validated():
    with pytest.raises(UsageError, match="class names"):
        parse_policy('[wer.classes]\nby = ["Numbers!"]\nmax_increase = 0.0\n')
    with pytest.raises(UsageError, match="needs max_increase"):
        parse_policy('[wer.classes]\nby = ["numbers"]\n')


def test_score_cli_prints_the_class_table_and_refuses_bad_options(stores, tmp_path, capsys):
    kw = tmp_path / "kw.txt"
    kw.write_text("lobster\nthornton\nsan francisco\n", encoding="utf-8")
    code = main(["score", str(stores[1]), "--normalizer", "basic", "--entities", str(ENTITIES), "--keywords", str(kw),
                 "--resamples", "100"])
    out = capsys.readouterr().out
    assert code == 0
    assert "classes (clean):" in out and "numbers" in out and "keywords:" in out and "precision" in out
    assert main(["score", str(stores[1]), "--classes", "numbrs"]) == 2
    assert main(["score", str(stores[1]), "--keywords", "/dev/zero"]) == 2
