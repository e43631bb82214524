"""Gate policy TOML: the shipped default parses, extends works, every bad key or value is named."""

from __future__ import annotations

import pytest

from voxproof.errors import UsageError
from voxproof.gate.policy import default_policy_text, load_policy, parse_policy


def test_default_policy_ships_and_is_complete():
    p = load_policy()
    assert p.source == "default"
    assert p.decision == "interval" and 0 < p.confidence < 1
    assert p.overall is not None and p.overall.margin == "absolute"
    assert p.slices is not None and "speaker" in p.slices.by and p.slices.min_utterances >= 1
    assert p.conditions is not None and p.min_coverage is not None
    assert p.max_latency_p90 is not None and p.max_rtf is not None
    assert p.min_mos is not None and p.min_intelligibility is not None
    # every key of the shipped file is documented by a comment
    assert default_policy_text().count("#") > 20


def test_extends_default_changes_only_what_is_named(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('extends = "default"\n[decision]\nmethod = "point"\n[wer.slices]\nby = ["accent"]\n'
                 'max_increase = 0.1\nmargin = "relative"\n')
    p = load_policy(f)
    d = load_policy()
    assert p.decision == "point" and p.source == str(f)
    assert p.slices.by == ("accent",) and p.slices.limit.margin == "relative"
    assert p.slices.limit.allowed(0.2) == pytest.approx(0.02)
    assert p.slices.min_utterances == d.slices.min_utterances  # merged from the default
    assert p.overall == d.overall and p.max_rtf == d.max_rtf


def test_a_file_without_extends_checks_only_its_rules():
    p = parse_policy("[wer.overall]\nmax_increase = 0.02\n")
    assert p.overall.max_increase == 0.02
    assert p.slices is None and p.conditions is None and p.min_coverage is None and p.max_rtf is None
    assert p.min_mos is None


@pytest.mark.parametrize(
    "text, message",
    [
        ('[wer.overall]\nmax_increase = 0.01\nmargin = "abs"', r"wer.overall.margin = 'abs' is not one of absolute, relative"),
        ("[wer.slice]\nby = ['x']", r"unknown table \[wer.slice\]; valid tables: wer.overall, wer.slices, wer.conditions"),
        ("[wer.slices]\nby = ['speaker']\nmax_increase = 0.1\nmin_utt = 3",
         r"unknown key wer.slices.min_utt; valid keys in \[wer.slices\]: by, max_increase, margin, min_utterances"),
        ("[wer.slices]\nby = []\nmax_increase = 0.1", r"wer.slices.by = \[\] must be a non-empty list"),
        ("[wer.slices]\nby = ['condition']\nmax_increase = 0.1", r"use \[wer.conditions\]"),
        ("[wer.slices]\nby = ['speaker']", r"\[wer.slices\] needs max_increase"),
        ("[decision]\nmethod = 'bayes'", r"decision.method = 'bayes' is not one of interval, point"),
        ("[decision]\nconfidence = 1.5", r"decision.confidence = 1.5 must be strictly between 0 and 1"),
        ("[decision]\nresamples = 10", r"decision.resamples = 10 must be an integer from 100 to 100000"),
        ("[decision]\nnormalizer = 'klingon'", r"decision.normalizer: unknown normalizer 'klingon'"),
        ("[coverage]\nmin = 98", r"coverage.min = 98 must be between 0 and 1"),
        ("[latency]\nmax_rtf = -1", r"latency.max_rtf = -1 must be greater than 0"),
        ("[latency]\nmax_rtf = 'fast'", r"latency.max_rtf = 'fast' must be a number"),
        ("[cost]\nmax_per_audio_hour = 1", r"\[cost\] needs price_per_machine_hour"),
        ("[tts]\nmin_mos = 7", r"tts.min_mos = 7 must be a MOS between 1 and 5"),
        ("[wer.overall]\nmax_increase = true", r"wer.overall.max_increase = True must be a number"),
        ("gate = 1", r"unknown key 'gate'; valid top-level keys: extends, decision, wer"),
        ('extends = "strict"', r"extends = 'strict' is not supported"),
        ("[wer.overall\n", r"not valid TOML"),
    ],
)
def test_bad_policies_name_the_key_and_the_choices(text, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_policy(text, source="team.toml")
    assert str(info.value).startswith("team.toml")


def test_missing_policy_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
