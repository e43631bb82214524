"""Issue 21 item 5: the gate must not fail open.

A policy with no rule, a non-finite or absurd margin, or a policy none of whose rules applies to the runs
is a usage error (exit 2); a real regression still fails (exit 1). Runs are built in tmp_path from the
bundled LibriSpeech sample's references (``test_gate_rules.make_run``), with words deleted on purpose.
"""

from __future__ import annotations

import pytest
from test_gate_rules import drop_words, make_run, read_utterances

from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.gate import evaluate_gate, parse_policy
from voxproof.gate.policy import GatePolicy, policy_from_dict


def bundled_utterances():
    from voxproof.manifest.bundled import bundled_dataset_path

    return read_utterances(bundled_dataset_path())


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory):
    """A baseline and a candidate that is much worse (5 more words deleted in every utterance)."""
    utts = bundled_utterances()
    root = tmp_path_factory.mktemp("hostile-gate")
    base = make_run(root / "base", utts, lambda u, c: drop_words(u[1], 0), options={"beam_size": 1})
    worse = make_run(root / "worse", utts, lambda u, c: drop_words(u[1], 5), options={"beam_size": 2})
    return root, base, worse


def _gate(root, base, cand, policy_text, capsys, name="p.toml"):
    policy = root / name
    policy.write_text(policy_text)
    code = main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(policy),
                 "-o", str(root / ("out-" + name))])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("", "the policy has no rule"),
    ("# nothing but a comment\n[decision]\nmethod = \"point\"\n", "the policy has no rule"),
    ("[wer.overall]\nmax_increase = inf\n", "must be a finite number"),
    ("[wer.overall]\nmax_increase = nan\n", "must be a finite number"),
    ("[wer.slices]\nby = [\"speaker\"]\nmax_increase = -inf\n", "must be a finite number"),
    ("[wer.overall]\nmax_increase = 1e300\n", "must be from 0 to 10"),
    ("[latency]\nmax_rtf = inf\n", "must be a finite number"),
    ("[decision]\nresamples = 200000000\n[wer.overall]\nmax_increase = 0.01\n", "from 100 to 100000"),
    ("[decision]\nresamples = 2e8\n[wer.overall]\nmax_increase = 0.01\n", "from 100 to 100000"),
    ("[decision]\nseed = -1\n[wer.overall]\nmax_increase = 0.01\n", "from 0 to 4294967295"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_a_policy_that_would_fail_open_is_a_usage_error(gate_runs, capsys, text, message):
    root, base, worse = gate_runs
    code, err = _gate(root, base, worse, text, capsys)
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_policy_whose_rules_do_not_apply_is_a_usage_error(gate_runs, capsys):
    root, base, worse = gate_runs
    code, err = _gate(root, base, worse, "[tts]\nmin_mos = 3.5\n", capsys, name="tts.toml")
    assert code == 2 and "applies to asr runs" in err


def test_a_real_regression_still_fails(gate_runs, capsys):
    root, base, worse = gate_runs
    code, err = _gate(root, base, worse, "[decision]\nresamples = 200\n[wer.overall]\nmax_increase = 0.01\n",
                      capsys, name="ok.toml")
    assert code == 1
    out = (root / "out-ok.toml" / "gate.json").read_text()
    assert '"passed": false' in out and '"wer.overall"' in out


def test_library_refuses_a_policy_without_rules(gate_runs):
    _, base, worse = gate_runs
    with pytest.raises(UsageError, match="has no rule"):
        evaluate_gate(base, worse, GatePolicy())


def test_the_policy_recorded_in_a_verdict_is_validated_again():
    policy = parse_policy('extends = "default"\n')
    assert policy_from_dict(policy.to_dict()) == policy
    forged = policy.to_dict()
    forged["overall"]["max_increase"] = float("inf")
    with pytest.raises(UsageError, match="finite"):
        policy_from_dict(forged)
    with pytest.raises(UsageError, match="has no rule"):
        policy_from_dict({"source": "x", "decision": "point"})
