"""Issue 21 items 7 and 13: a hand-edited gate verdict cannot promote a model; text fields with NUL bytes
or undecodable characters are refused the same way on SQLite and PostgreSQL.

Runs are built in tmp_path from the bundled sample's references (``test_gate_rules.make_run``); gate
verdicts come from ``voxproof gate`` on them, then are edited as an attacker would.
"""

from __future__ import annotations

import json
import shutil

import pytest
from test_gate_rules import drop_words, make_run
from test_hostile_gate import bundled_utterances
from test_registry_cli import registry  # noqa: F401 - the fixture (SQLite and PostgreSQL)

from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.registry import Registry


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """v1 (baseline), v2 (as good), v3 (5 more words deleted per utterance: much worse), their gates."""
    utts = bundled_utterances()
    root = tmp_path_factory.mktemp("forged")
    runs = {
        "v1": make_run(root / "v1", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 1}),
        "v2": make_run(root / "v2", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 2}),
        "v3": make_run(root / "v3", utts, lambda u, c: drop_words(u[1], 6), options={"beam_size": 3}),
    }
    policy = root / "policy.toml"
    policy.write_text('[decision]\nmethod = "point"\nresamples = 200\n[wer.overall]\nmax_increase = 0.02\n')
    for cand, expected in (("v2", 0), ("v3", 1)):
        assert main(["gate", "--baseline", str(runs["v1"]), "--candidate", str(runs[cand]), "--policy", str(policy),
                     "-o", str(root / f"gate-{cand}")]) == expected
    return root, runs


def forge(src, dst, **changes):
    """Copy a gate.json, marking it passed (every rule passing) and applying ``changes``."""
    d = json.loads((src / "gate.json").read_text())
    d.update(passed=True, status="pass", failing_rules=[])
    for r in d["rules"]:
        r.update(verdict="pass", failing=False)
    for key, value in changes.items():
        d[key] = value
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "gate.json").write_text(json.dumps(d))
    return dst / "gate.json"


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _register_and_promote_v1(capsys, runs):
    for v in ("v1", "v2", "v3"):
        assert cli(capsys, "registry", "register", v, "--from-run", str(runs[v]))[0] == 0
    assert cli(capsys, "registry", "promote", "v1", "--reason", "first")[0] == 0


def test_forged_gate_json_cannot_promote(gated, registry, capsys, tmp_path):  # noqa: F811
    root, runs = gated
    _register_and_promote_v1(capsys, runs)
    forged = forge(root / "gate-v3", tmp_path / "forged")
    code, out, _ = cli(capsys, "registry", "attach-gate", str(forged))
    assert code == 0 and "v3 vs v1: PASSED" in out  # recorded as it claims...
    code, _, err = cli(capsys, "registry", "promote", "v3")
    assert code == 1  # ...but promotion re-derives it from the runs
    assert "PromotionRefused: the latest gate verdict (#1) of 'v3' against production 'v1' says passed, but " \
           "re-deriving it from its runs disagrees: the verdict says passed, the runs give failed" in err
    assert "rule wer.overall: recorded pass, re-derived fail" in err
    with Registry.open(registry) as reg:
        assert reg.aliases()["production"] == "v1"
        last = reg.history()[-1]
        assert last.action == "promote-refused" and "disagrees" in last.details["refused_because"]

    # forced with a reason: allowed, and the history says the verdict was not confirmed
    code, out, _ = cli(capsys, "registry", "promote", "v3", "--force", "--reason", "override for the test")
    assert code == 0 and "(FORCED)" in out
    with Registry.open(registry) as reg:
        last = reg.history()[-1]
        assert (last.action, last.details["verdict"], last.details["forced"]) == ("promote", "forced", True)
        assert "disagrees" in last.details["unconfirmed_because"]
        assert "FORCED without a confirmed passing gate" in last.describe()


def test_genuine_verdict_is_re_derived_and_recorded(gated, registry, capsys):  # noqa: F811
    root, runs = gated
    _register_and_promote_v1(capsys, runs)
    assert cli(capsys, "registry", "attach-gate", str(root / "gate-v2"))[0] == 0
    code, out, _ = cli(capsys, "registry", "promote", "v2", "--reason", "gate passed")
    assert code == 0 and "(gate #1 re-derived from its runs)" in out
    with Registry.open(registry) as reg:
        last = reg.history()[-1]
        assert last.details["verdict"] == "re-derived" and last.details["forced"] is False
        v = last.details["verification"]
        assert v["passed"] is True and v["policy_source"].endswith("policy.toml") and len(v["policy_sha256"]) == 16
        assert "verdict re-derived from the runs" in last.describe()


def test_verdict_naming_other_runs_or_missing_runs_is_refused(gated, registry, capsys, tmp_path):  # noqa: F811
    root, runs = gated
    _register_and_promote_v1(capsys, runs)
    # a verdict that points its candidate at the good run v2 while recorded for v3
    d = json.loads((root / "gate-v2" / "gate.json").read_text())
    forged = forge(root / "gate-v2", tmp_path / "swapped", candidate=d["candidate"])
    assert cli(capsys, "registry", "attach-gate", str(forged), "--candidate", "v3", "--baseline", "v1")[0] == 0
    code, _, err = cli(capsys, "registry", "promote", "v3")
    assert code == 1 and "is not a run attached to 'v3'" in err

    # the runs are gone: the verdict cannot be confirmed here
    moved = tmp_path / "v2-copy"
    shutil.copytree(runs["v2"], moved)
    d["candidate"]["path"] = str(moved)
    gone = forge(root / "gate-v2", tmp_path / "gone", candidate=d["candidate"])
    assert cli(capsys, "registry", "attach-gate", str(gone))[0] == 0
    shutil.rmtree(moved)
    code, _, err = cli(capsys, "registry", "promote", "v2")
    assert code == 1 and "cannot be re-derived from its runs here (RunError: no run found at" in err


def test_forged_policy_in_the_verdict_is_validated_again(gated, registry, capsys, tmp_path):  # noqa: F811
    root, runs = gated
    _register_and_promote_v1(capsys, runs)
    d = json.loads((root / "gate-v3" / "gate.json").read_text())
    d["policy"]["overall"]["max_increase"] = float("inf")  # json writes Infinity
    forged = forge(root / "gate-v3", tmp_path / "inf", policy=d["policy"])
    assert cli(capsys, "registry", "attach-gate", str(forged))[0] == 0
    code, _, err = cli(capsys, "registry", "promote", "v3")
    assert code == 1 and "must be a finite number" in err


@pytest.mark.parametrize("bad, message", [
    ("why\x00not", "contains a NUL byte"),
    ("caf\udce9", "is not valid UTF-8 text"),
])
def test_nul_and_undecodable_text_refused_the_same_on_both_engines(registry, capsys, bad, message):  # noqa: F811
    assert cli(capsys, "registry", "register", "a", "-m", "whisper")[0] == 0
    # the CLI refuses a NUL in any argument before it reaches the registry; the library checks each field
    shown = "an argument contains a NUL byte" if "\x00" in bad else None
    for args, field in ((["promote", "a", "--reason", bad], "reason"),
                        (["register", "b", "-m", "whisper", "--notes", bad], "notes")):
        code, _, err = cli(capsys, "registry", *args)
        assert code == 2 and f"UsageError: {shown or field + ' ' + message}" in err and "Traceback" not in err
    code, _, err = cli(capsys, "registry", "--user", bad, "register", "c", "-m", "whisper")
    assert code == 2 and f"UsageError: {shown or 'actor ' + message}" in err
    with Registry.open(registry) as reg:  # nothing half-written, and the library refuses the same way
        assert [v.name for v in reg.versions()] == ["a"] and reg.aliases() == {}
        with pytest.raises(UsageError, match=f"reason {message}"):
            reg.set_alias("canary", "a", actor="x", reason=bad)
        with pytest.raises(UsageError, match=f"notes {message}"):
            reg.register("d", backend="whisper", actor="x", notes=bad)
        with pytest.raises(UsageError, match=f"actor {message}"):
            reg.promote("a", actor=bad)
        assert [v.name for v in reg.versions()] == ["a"]
