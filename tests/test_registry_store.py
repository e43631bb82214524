"""Registry store on SQLite and on a real PostgreSQL server (VOXPROOF_TEST_PG_URL, set by .ci/postgres.sh).

Covers: register/aliases/promote/rollback semantics, promotion refused without a passing gate, atomic
rollback and promote (a failure mid-transaction leaves nothing changed), the append-only history
enforced by the database, and two real processes changing the registry at once.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import uuid

import pytest

from voxproof.errors import UsageError
from voxproof.registry import PromotionRefused, Registry
from voxproof.registry import store as store_module

PG_URL = os.environ.get("VOXPROOF_TEST_PG_URL")


def _recorded(gate, candidate_keys, baseline_keys):
    """These tests are about transactions, not verdicts: accept the recorded verdict as it is (the
    re-derivation from real runs is tested in test_hostile_registry.py)."""
    return {"method": "recorded-for-test"}


def open_registry(location):
    return Registry.open(location, verifier=_recorded)


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A fresh, empty registry location for each engine."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
        return
    if not PG_URL:
        pytest.skip("VOXPROOF_TEST_PG_URL is not set: run 'source .ci/postgres.sh' to test the PostgreSQL path")
    import psycopg

    schema = "vp_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _passing(rules=()):
    return {"passed": True, "rules": [{"rule": r, "verdict": "pass"} for r in rules]}


def _failing(rule="wer.slice.speaker=367"):
    return {"passed": False, "rules": [{"rule": rule, "verdict": "fail"}, {"rule": "wer.overall", "verdict": "pass"}]}


def _setup(reg: Registry, *names: str) -> None:
    for i, name in enumerate(names):
        reg.register(name, backend="whisper", actor="alice", options={"beam_size": i + 1},
                     model_checksum="sha256:" + "ab" * 32, notes=f"version {name}")


def test_register_show_list_and_aliases(location):
    with open_registry(location) as reg:
        _setup(reg, "v1", "v2")
        with pytest.raises(UsageError, match="already registered"):
            reg.register("v1", backend="whisper", actor="alice")
        with pytest.raises(UsageError, match="invalid version name"):
            reg.register("bad name!", backend="whisper", actor="alice")
        with pytest.raises(UsageError, match="no version or alias 'v9'.*v1, v2"):
            reg.get("v9")
        assert [v.name for v in reg.versions()] == ["v1", "v2"]
        assert reg.get("v2").options == {"beam_size": 2}

        assert reg.set_alias("canary", "v2", actor="bob", reason="try it") is None
        assert reg.get("canary").name == "v2"
        with pytest.raises(UsageError, match="managed by the registry"):
            reg.set_alias("production", "v2", actor="bob")
        reg.promote("v1", actor="alice", reason="first production")
        details = reg.show("production")
        assert details.version.name == "v1" and details.aliases == ("production",)
        assert reg.remove_alias("canary", actor="bob") == "v2"
        assert reg.aliases() == {"production": "v1"}
        actions = [(h.action, h.actor) for h in reg.history()]
        assert actions == [("register", "alice"), ("register", "alice"), ("set-alias", "bob"),
                           ("promote", "alice"), ("remove-alias", "bob")]


def test_promote_refused_without_passing_gate(location):
    with open_registry(location) as reg:
        _setup(reg, "v1", "v2", "v3")
        reg.promote("v1", actor="alice")  # first production needs no gate
        with pytest.raises(PromotionRefused, match="no gate verdict of 'v2' against the current production 'v1'"):
            reg.promote("v2", actor="alice")
        reg.attach_gate("v2", "v1", _failing(), actor="ci")
        with pytest.raises(PromotionRefused, match=r"failed: wer.slice.speaker=367"):
            reg.promote("v2", actor="alice")
        # a passing verdict against some other baseline does not count
        reg.attach_gate("v2", "v3", _passing(), actor="ci")
        with pytest.raises(PromotionRefused):
            reg.promote("v2", actor="alice")
        with pytest.raises(UsageError, match="needs a reason"):
            reg.promote("v2", actor="alice", force=True)
        assert reg.aliases() == {"production": "v1"}
        refusals = [h for h in reg.history() if h.action == "promote-refused"]
        assert len(refusals) == 3 and refusals[1].details["gate_id"] is not None
        assert refusals[0].describe() == "promotion of v2 over v1 REFUSED (no gate verdict)"

        reg.attach_gate("v2", "v1", _passing(["wer.overall"]), actor="ci")
        change = reg.promote("v2", actor="alice", reason="gate passed")
        assert (change.from_version, change.to_version, change.forced) == ("v1", "v2", False)
        assert reg.aliases() == {"production": "v2", "previous": "v1"}

        # forced with a reason: allowed and recorded as forced
        change = reg.promote("v3", actor="carol", force=True, reason="hotfix, gate data unavailable")
        assert change.forced
        last = reg.history()[-1]
        assert (last.action, last.actor, last.reason, last.details["forced"]) == (
            "promote", "carol", "hotfix, gate data unavailable", True)
        assert reg.aliases() == {"production": "v3", "previous": "v2"}


def test_rollback_walks_back_and_is_atomic(location, monkeypatch):
    with open_registry(location) as reg:
        _setup(reg, "v1", "v2", "v3")
        with pytest.raises(UsageError, match="nothing to roll back"):
            reg.rollback(actor="alice")
        reg.promote("v1", actor="alice")
        reg.attach_gate("v2", "v1", _passing(), actor="ci")
        reg.promote("v2", actor="alice")
        reg.attach_gate("v3", "v2", _passing(), actor="ci")
        reg.promote("v3", actor="alice")
        reg.set_alias("canary", "v1", actor="alice")
        before = (reg.aliases(), len(reg.history()))

        # a failure after the aliases moved but before the transaction ends leaves nothing changed
        def broken_log(cur, actor, action, **kw):
            raise RuntimeError("disk full")

        monkeypatch.setattr(store_module, "_log", broken_log)
        with pytest.raises(Exception, match="disk full"):
            reg.rollback(actor="alice", reason="latency spike")
        with pytest.raises(Exception, match="disk full"):
            reg.set_alias("canary", "v2", actor="alice")
        monkeypatch.undo()
        assert (reg.aliases(), len(reg.history())) == before

        change = reg.rollback(actor="alice", reason="latency spike")
        assert (change.from_version, change.to_version, change.previous) == ("v3", "v2", "v1")
        assert reg.aliases() == {"production": "v2", "previous": "v1", "canary": "v1"}
        change = reg.rollback(actor="alice", reason="still bad")
        assert (change.to_version, change.previous) == ("v1", None)
        assert reg.aliases() == {"production": "v1", "canary": "v1"}
        with pytest.raises(UsageError, match="nothing to roll back"):
            reg.rollback(actor="alice")
        log = [(h.action, h.from_version, h.to_version, h.reason) for h in reg.history() if h.action == "rollback"]
        assert log == [("rollback", "v3", "v2", "latency spike"), ("rollback", "v2", "v1", "still bad")]


def test_history_is_append_only_in_the_database(location):
    with open_registry(location) as reg:
        _setup(reg, "v1")
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute("UPDATE registry_history SET actor = 'mallory'")
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute("DELETE FROM registry_history")
    else:
        import sqlite3

        conn = sqlite3.connect(location)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE registry_history SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM registry_history")
        conn.close()
    with open_registry(location) as reg:
        assert [h.actor for h in reg.history()] == ["alice"]


# -- two real processes at once -----------------------------------------------------------------
def _forced_promoter(location: str, names: list[str], rounds: int, barrier) -> None:
    reg = open_registry(location)
    barrier.wait()
    for i in range(rounds):
        reg.promote(names[i % len(names)], actor=f"proc-{names[0]}", force=True, reason=f"round {i}")
    reg.close()


def _gated_promoter(location: str, name: str, barrier, results) -> None:
    reg = open_registry(location)
    barrier.wait()
    try:
        reg.promote(name, actor=f"proc-{name}", reason="gate passed")
        results.put((name, "promoted"))
    except PromotionRefused as exc:
        results.put((name, f"refused: {exc}"))
    finally:
        reg.close()


def _run_processes(targets) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=t, args=a) for t, a in targets]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"a promoting process failed (exit {p.exitcode})"


def test_two_processes_promoting_at_once_lose_nothing(location):
    rounds = 12
    with open_registry(location) as reg:
        _setup(reg, "base", "a1", "a2", "a3", "b1", "b2", "b3")
        reg.promote("base", actor="alice")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    _run_processes([
        (_forced_promoter, (location, ["a1", "a2", "a3"], rounds, barrier)),
        (_forced_promoter, (location, ["b1", "b2", "b3"], rounds, barrier)),
    ])
    with open_registry(location) as reg:
        promotes = [h for h in reg.history() if h.action == "promote"]
        assert len(promotes) == 1 + 2 * rounds  # every promotion recorded
        # each promotion moved production from exactly where the one before left it
        for before, after in itertools.pairwise(promotes):
            assert after.from_version == before.to_version
        assert [h.seq for h in promotes] == sorted(h.seq for h in promotes)
        aliases = reg.aliases()
        assert aliases["production"] == promotes[-1].to_version
        assert aliases["previous"] == promotes[-1].from_version
        actors = {h.actor for h in promotes[1:]}
        assert actors == {"proc-a1", "proc-b1"}
        # rollback walks back exactly the recorded chain
        change = reg.rollback(actor="alice")
        assert change.to_version == promotes[-1].from_version
        assert change.previous == promotes[-2].from_version


def test_two_processes_racing_on_the_same_gate_baseline(location):
    with open_registry(location) as reg:
        _setup(reg, "v1", "c1", "c2")
        reg.promote("v1", actor="alice")
        reg.attach_gate("c1", "v1", _passing(), actor="ci")
        reg.attach_gate("c2", "v1", _passing(), actor="ci")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    _run_processes([
        (_gated_promoter, (location, "c1", barrier, results)),
        (_gated_promoter, (location, "c2", barrier, results)),
    ])
    outcome = dict(results.get(timeout=10) for _ in range(2))
    winners = [n for n, o in outcome.items() if o == "promoted"]
    assert len(winners) == 1, outcome
    loser = ({"c1", "c2"} - set(winners)).pop()
    # the loser's gate was against v1, which is no longer production when its turn comes
    assert f"against the current production '{winners[0]}'" in outcome[loser]
    with open_registry(location) as reg:
        assert reg.aliases() == {"production": winners[0], "previous": "v1"}
        promotes = [h for h in reg.history() if h.action == "promote"]
        assert [(h.from_version, h.to_version) for h in promotes] == [(None, "v1"), ("v1", winners[0])]
        refused = [h for h in reg.history() if h.action == "promote-refused"]
        assert [(h.actor, h.to_version, h.from_version) for h in refused] == [(f"proc-{loser}", loser, winners[0])]
