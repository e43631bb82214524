"""Issue 21 items 10 and 13 (stores): damaged, foreign, newer, read-only and full run stores and
registries give a typed one-line error (exit 3, "could not evaluate", from ``score`` and ``gate`` alike;
exit 2, a usage mistake, when the path is not a run store at all), or work read-only; never a traceback
and never exit 1.

The damaged stores come from ``tests/corrupt_stores.py`` (truncation, byte flips, dropped tables, wrong
schema versions, garbage files, a directory, a FIFO or /dev/zero instead of the file...).
"""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import re
import sqlite3
from contextlib import redirect_stderr, redirect_stdout

import pytest
from corrupt_stores import corrupt_stores, make_read_only, make_writable, store_summary
from test_gate_rules import drop_words, make_run
from test_hostile_gate import bundled_utterances

from voxproof.cli.main import main
from voxproof.errors import RunError
from voxproof.registry import Registry
from voxproof.registry.models import RegistryError
from voxproof.run.records import ResultRow
from voxproof.run.store import CorruptRunStore, RunStore

ONE_LINE = re.compile(r"^(CorruptRunStore|RunError|UsageError): \S.*\n$")
POLICY = '[decision]\nmethod = "point"\nresamples = 100\n[wer.overall]\nmax_increase = 0.05\n'


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    utts = bundled_utterances()[:20]
    root = tmp_path_factory.mktemp("stores")
    good = make_run(root / "good", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 1})
    base = make_run(root / "base", utts, lambda u, c: drop_words(u[1], 1), options={"beam_size": 2})
    (root / "policy.toml").write_text(POLICY)
    return root, good, base


def _cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# a path where the run store should be is not a file: a usage mistake (2), not a damaged store (3)
NOT_A_STORE = {"directory-instead-of-file", "fifo-instead-of-file", "symlink-to-dev-zero", "dangling-symlink"}


def test_every_corrupted_store_is_a_typed_one_line_error(runs, capsys):
    root, good, base = runs
    tally: dict[str, int] = {}
    problems = []
    cases = list(corrupt_stores(good, root / "bad"))
    assert len(cases) >= 40
    for name, run_dir, expect in cases:
        for command in ("score", "gate"):
            if command == "score":
                code, out, err = _cli(capsys, "score", str(run_dir), "--resamples", "50")
            else:
                code, out, err = _cli(capsys, "gate", "--baseline", str(base), "--candidate", str(run_dir),
                                      "--policy", str(root / "policy.toml"), "-o", str(root / "gate-out" / name))
            failed = 2 if name in NOT_A_STORE else 3
            ok = 0 if command == "score" else (0, 1)  # a readable candidate gets a verdict
            worked = code in ((ok,) if isinstance(ok, int) else ok)
            typed = code == failed and ONE_LINE.match(err) is not None
            tally[f"{command} exit {code}"] = tally.get(f"{command} exit {code}", 0) + 1
            if (expect == "error" and not typed) or (expect == "works" and not worked) or \
                    (expect == "either" and not (worked or typed)) or "Traceback" in err:
                problems.append(f"{command} {name} ({expect}): exit {code}: {err.strip()[:300]}")
    assert not problems, "\n".join(problems)
    print(tally)


def test_a_corrupt_store_says_what_is_recoverable(runs):
    root, good, _ = runs
    cases = {name: d for name, d, _ in corrupt_stores(good, root / "recover")}
    with pytest.raises(CorruptRunStore, match=r"table rows is missing; recoverable: the provenance and 0 result row"):
        RunStore.open(cases["drop-rows"])
    with pytest.raises(CorruptRunStore, match=r"row of '.*' does not parse .*recoverable: the provenance and 20 "
                                              r"result row\(s\) \(copy them out with: sqlite3 .* \.recover"):
        with RunStore.open(cases["row-json-broken"]) as store:
            list(store.rows())
    with pytest.raises(RunError, match=r"written by a newer voxproof \(run store schema 99; this version reads "
                                       r"schema 1\); upgrade voxproof"):
        RunStore.open(cases["schema-newer"])
    with pytest.raises(CorruptRunStore, match="is a directory, not a run store file"):
        RunStore.open(cases["directory-instead-of-file"])
    with pytest.raises(CorruptRunStore, match="not a regular file"):
        RunStore.open(cases["fifo-instead-of-file"])
    with pytest.raises(CorruptRunStore, match="nothing is recoverable"):
        RunStore.open(cases["garbage-random"])


def _as_nobody(target, args, queue):
    """Run ``target(*args)`` as an unprivileged user when root (root ignores file permissions)."""
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = target(*args)
    queue.put((code, out.getvalue(), err.getvalue()))


def _run_unprivileged(args):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_as_nobody, args=(main, (args,), queue))
    proc.start()
    result = queue.get(timeout=120)
    proc.join(30)
    return result


@pytest.fixture
def open_dir():
    """A directory every user can reach (pytest's tmp_path is under a root-only directory)."""
    import shutil
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="voxproof-ro-"))
    d.chmod(0o755)
    yield d
    for sub in d.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(d)


def test_a_read_only_store_can_still_be_read(runs, capsys, open_dir):
    root, good, base = runs
    import shutil

    tmp_path = open_dir
    shutil.copytree(base, tmp_path / "base")
    base = tmp_path / "base"
    (tmp_path / "policy.toml").write_text(POLICY)

    ro = tmp_path / "ro"
    shutil.copytree(good, ro)
    expected = store_summary(ro)
    code, out, _ = _cli(capsys, "score", str(ro), "--resamples", "50")
    assert code == 0
    wer_line = next(line for line in out.splitlines() if "WER" in line)
    fresh = tmp_path / "ro-fresh"  # no count cache yet, so the read-only store has to align again
    shutil.copytree(good, fresh)
    make_read_only(ro)
    make_read_only(fresh)
    out_dir = tmp_path / "gate-out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    try:
        code, out, err = _run_unprivileged(["score", str(fresh), "--resamples", "50"])
        assert code == 0, err
        assert wer_line in out.splitlines()
        code, out, err = _run_unprivileged(["gate", "--baseline", str(base), "--candidate", str(ro), "--policy",
                                            str(tmp_path / "policy.toml"), "-o", str(out_dir / "g")])
        assert code == 0, err
        assert "GATE PASSED" in out
        with RunStore.open(ro) as store:  # as root: writable again, the same content
            assert store.count_rows() == expected["rows"] and store.provenance == expected["provenance"]
    finally:
        make_writable(ro)
        make_writable(fresh)


def test_read_only_store_refuses_writes_with_a_typed_error(runs, open_dir):
    root, good, _ = runs
    import shutil

    tmp_path = open_dir

    ro = tmp_path / "ro"
    shutil.copytree(good, ro)
    make_read_only(ro)
    try:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()

        def write():
            try:
                with RunStore.open(ro) as store:
                    assert store.readonly and store.count_rows() == 20
                    store.save_counts("x", "word", {})  # a cache: silently not kept
                    store.set_meta("status", "complete")
            except RunError as exc:
                return str(exc)
            return "no error"

        proc = ctx.Process(target=_as_nobody, args=(write, (), queue))
        proc.start()
        message = queue.get(timeout=60)[0]
        proc.join(30)
        assert "is read-only here; copy the run directory somewhere writable" in message
    finally:
        make_writable(ro)


def test_a_full_disk_while_writing_a_run_store_says_so(tmp_path):
    store = RunStore.create(tmp_path / "run", {"backend": {"name": "x"}})
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "disk full" (SQLITE_FULL)
    big = "word " * 20000
    with pytest.raises(RunError, match=r"the disk is full \(database or disk is full\); free some space and rerun "
                                       r"with --resume \(finished rows are kept\)"):
        for i in range(50):
            store.add_row(ResultRow(f"u{i}", "clean", "ok", reference=big, hypothesis=big), i)
    store.close()


def test_a_full_disk_while_writing_the_registry_says_so(tmp_path):
    with Registry.open(tmp_path / "reg.sqlite") as reg:
        reg.register("v1", backend="whisper", actor="a")
        conn = reg._db._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(RegistryError, match="the disk is full"):
            for i in range(200):
                reg.register(f"v{i + 2}", backend="whisper", actor="a", notes="n" * 5000)
        assert reg.get("v1").name == "v1"  # what was committed is intact


def test_a_full_disk_in_the_cli_is_one_line_and_exit_3(runs, capsys, monkeypatch):
    root, good, base = runs
    from voxproof.gate.verdict import GateVerdict

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(GateVerdict, "write_json", full)
    code, _, err = _cli(capsys, "gate", "--baseline", str(base), "--candidate", str(good), "--policy",
                        str(root / "policy.toml"), "-o", str(root / "full"))
    assert code == 3
    assert re.fullmatch(r"DiskFull: no space left on the device while writing .*gate\.json; free some space and "
                        r"rerun \(--resume keeps finished rows\)\n", err)


def test_an_unexpected_exception_is_exit_3_not_1(runs, capsys, monkeypatch):
    root, good, base = runs
    import voxproof.gate.verdict as verdict_module

    def boom(*a, **k):
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(verdict_module, "evaluate_rules", boom)
    code, _, err = _cli(capsys, "gate", "--baseline", str(base), "--candidate", str(good), "--policy",
                        str(root / "policy.toml"), "-o", str(root / "boom"))
    assert code == 3 and err.startswith("InternalError: ZeroDivisionError: planted bug") and len(err.splitlines()) == 1
    code, _, err = _cli(capsys, "--debug", "gate", "--baseline", str(base), "--candidate", str(good), "--policy",
                        str(root / "policy.toml"), "-o", str(root / "boom"))
    assert code == 3 and "Traceback" in err


def test_hostile_arguments(runs, capsys, tmp_path):
    root, good, base = runs
    code, _, err = _cli(capsys, "score", str(good) + "\x00x")
    assert code == 2 and err == "UsageError: an argument contains a NUL byte; paths and values cannot contain one\n"
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100000 + "]" * 100000)
    code, _, err = _cli(capsys, "gate", "--baseline", str(base), "--candidate", str(good), "--policy", str(deep))
    assert code == 2 and "nested too deeply" in err


def test_store_opened_while_another_process_holds_the_write_lock_is_not_called_corrupt(runs, tmp_path):
    root, good, _ = runs
    import shutil

    d = tmp_path / "locked"
    shutil.copytree(good, d)
    holder = sqlite3.connect(d / "run.sqlite", isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        import voxproof.run.store as store_module

        with pytest.raises(RunError) as info:
            conn = sqlite3.connect(d / "run.sqlite", timeout=0.1, check_same_thread=False)
            store = store_module.RunStore(d / "run.sqlite", conn)
            store.count_rows()
        assert not isinstance(info.value, CorruptRunStore) and "locked by another process" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
