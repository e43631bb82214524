"""The model registry: versions, aliases, attached runs and gate verdicts, with an append-only history.

Embedded SQLite by default (one file) or PostgreSQL through a ``postgresql://`` URL, with the same
behaviour. Every change runs in one write transaction holding the registry's write lock (see
:mod:`voxproof.registry.sql`) and appends its history line in that same transaction, so two processes
changing the registry at once are serialised: no update is lost, and the history is complete and in
the order the changes took effect.

Aliases: ``production`` moves only through :meth:`Registry.promote` and :meth:`Registry.rollback`;
``previous`` is kept by the registry (the production before the current one); others (``canary``...)
are set freely. Promotion needs a passing gate verdict of the candidate against the current
production, confirmed by re-deriving it from its two runs (:mod:`voxproof.registry.verify`), unless
forced with a reason; the history records how the verdict was established.

Who did something (``actor``) is passed in by the caller: the CLI reads the user name; the library
never reads the environment.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from voxproof.errors import UsageError
from voxproof.registry.models import (
    CANARY,
    FIRST,
    FORCED,
    MANAGED_ALIASES,
    PREVIOUS,
    PRODUCTION,
    AliasChange,
    AttachedRun,
    GateRecord,
    HistoryEntry,
    ModelVersion,
    PromotionRefused,
    UnconfirmedVerdict,
    VersionDetails,
    check_name,
    check_text,
)
from voxproof.registry.sql import Cursor, Database, connect
from voxproof.registry.verify import Verifier, rederive_gate

log = logging.getLogger("voxproof.registry")

KINDS = ("asr", "tts")

_VERSION_COLS = "name, kind, backend, options, model_checksum, notes, created_at, created_by"
_RUN_COLS = "id, version, path, run_key, role, summary, attached_at, attached_by"
_GATE_COLS = "id, candidate, baseline, passed, verdict, path, created_at, created_by"
_HISTORY_COLS = "seq, at, actor, action, version, alias, from_version, to_version, reason, details"


def now_iso() -> str:
    """UTC time with microseconds, sortable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Registry:
    """Access to one registry. Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(self, db: Database, verifier: Verifier = rederive_gate):
        self._db = db
        self._verifier = verifier

    @classmethod
    def open(cls, location: str | Path, *, verifier: Verifier = rederive_gate) -> Registry:
        """The registry at a SQLite file path (created if missing) or a ``postgresql://`` URL.

        ``verifier`` confirms a passing gate verdict before a promotion (default: re-derive it from
        its runs, :func:`voxproof.registry.verify.rederive_gate`)."""
        return cls(connect(location), verifier)

    @property
    def location(self) -> str:
        return self._db.location

    @property
    def engine(self) -> str:
        return self._db.engine

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- versions ----------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        backend: str,
        actor: str,
        kind: str = "asr",
        options: dict[str, Any] | None = None,
        model_checksum: str | None = None,
        notes: str = "",
        reason: str = "",
    ) -> ModelVersion:
        """Add a model version. Names are unique and never reused; registering an existing name is a
        :class:`UsageError`."""
        check_name("version", name)
        _check_actor(actor)
        check_text(backend=backend, model_checksum=model_checksum, notes=notes, reason=reason)
        if kind not in KINDS:
            raise UsageError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if not backend:
            raise UsageError("a model version needs a backend name (for example whisper)")
        version = ModelVersion(
            name=name, kind=kind, backend=backend, options=dict(options or {}),
            model_checksum=model_checksum, notes=notes, created_at=now_iso(), created_by=actor,
        )
        with self._db.write() as cur:
            if _get_version(cur, name) is not None:
                raise UsageError(f"version {name!r} is already registered; choose a new name")
            cur.execute(
                f"INSERT INTO registry_versions ({_VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, kind, backend, _dumps(version.options), model_checksum, notes, version.created_at, actor),
            )
            _log(cur, actor, "register", version=name, reason=reason,
                 details={"backend": backend, "kind": kind, "options": version.options,
                          "model_checksum": model_checksum})
        return version

    def get(self, name: str) -> ModelVersion:
        """A version by name or by alias (``production``, ``canary``...)."""
        with self._db.read() as cur:
            return _resolve(cur, name)

    def versions(self) -> list[ModelVersion]:
        with self._db.read() as cur:
            rows = cur.execute(f"SELECT {_VERSION_COLS} FROM registry_versions ORDER BY created_at, name").fetchall()
        return [_version(r) for r in rows]

    def aliases(self) -> dict[str, str]:
        """alias -> version name."""
        with self._db.read() as cur:
            return dict(cur.execute("SELECT alias, version FROM registry_aliases ORDER BY alias").fetchall())

    def show(self, name: str) -> VersionDetails:
        """A version (by name or alias) with its aliases, runs, gate verdicts and history."""
        with self._db.read() as cur:
            version = _resolve(cur, name)
            aliases = tuple(
                a for (a,) in cur.execute(
                    "SELECT alias FROM registry_aliases WHERE version = ? ORDER BY alias", (version.name,)
                ).fetchall()
            )
            runs = tuple(_run(r) for r in cur.execute(
                f"SELECT {_RUN_COLS} FROM registry_runs WHERE version = ? ORDER BY id", (version.name,)
            ).fetchall())
            gates = tuple(_gate(r) for r in cur.execute(
                f"SELECT {_GATE_COLS} FROM registry_gates WHERE candidate = ? OR baseline = ? ORDER BY id",
                (version.name, version.name),
            ).fetchall())
            history = tuple(_entry(r) for r in cur.execute(
                f"SELECT {_HISTORY_COLS} FROM registry_history "
                "WHERE version = ? OR from_version = ? OR to_version = ? ORDER BY seq",
                (version.name, version.name, version.name),
            ).fetchall())
        return VersionDetails(version, aliases, runs, gates, history)

    # -- runs and gate verdicts --------------------------------------------------------------
    def attach_run(
        self,
        version: str,
        path: str,
        *,
        run_key: str,
        actor: str,
        role: str = "eval",
        summary: dict[str, Any] | None = None,
    ) -> AttachedRun:
        """Link a run (its directory and a summary snapshot) to ``version``. Attaching the same run
        (same ``run_key`` and role) again replaces the snapshot and is logged."""
        _check_actor(actor)
        check_name("run role", role)
        check_text(path=str(path), run_key=run_key)
        at = now_iso()
        with self._db.write() as cur:
            v = _resolve(cur, version)
            existing = cur.execute(
                "SELECT id FROM registry_runs WHERE version = ? AND run_key = ? AND role = ?",
                (v.name, run_key, role),
            ).fetchone()
            if existing is None:
                run_id = cur.insert_returning_id(
                    f"INSERT INTO registry_runs ({_RUN_COLS.replace('id, ', '', 1)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (v.name, str(path), run_key, role, _dumps(summary or {}), at, actor), "id",
                )
            else:
                run_id = int(existing[0])
                cur.execute(
                    "UPDATE registry_runs SET path = ?, summary = ?, attached_at = ?, attached_by = ? WHERE id = ?",
                    (str(path), _dumps(summary or {}), at, actor, run_id),
                )
            _log(cur, actor, "attach-run", version=v.name,
                 details={"run_id": run_id, "path": str(path), "run_key": run_key, "role": role,
                          "replaced": existing is not None})
            row = cur.execute(f"SELECT {_RUN_COLS} FROM registry_runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row)

    def runs(self, version: str) -> list[AttachedRun]:
        with self._db.read() as cur:
            v = _resolve(cur, version)
            rows = cur.execute(
                f"SELECT {_RUN_COLS} FROM registry_runs WHERE version = ? ORDER BY id", (v.name,)
            ).fetchall()
        return [_run(r) for r in rows]

    def find_runs(self, run_key: str) -> list[AttachedRun]:
        """Attached runs with this run key (to find which version a gate's run belongs to)."""
        with self._db.read() as cur:
            rows = cur.execute(
                f"SELECT {_RUN_COLS} FROM registry_runs WHERE run_key = ? ORDER BY id", (run_key,)
            ).fetchall()
        return [_run(r) for r in rows]

    def attach_gate(
        self,
        candidate: str,
        baseline: str,
        verdict: dict[str, Any],
        *,
        actor: str,
        path: str | None = None,
    ) -> GateRecord:
        """Record a gate verdict (the content of ``gate.json``) of ``candidate`` against ``baseline``."""
        _check_actor(actor)
        check_text(path=path)
        if "passed" not in verdict or not isinstance(verdict["passed"], bool):
            raise UsageError("the gate verdict has no boolean 'passed' field; give the gate.json written by "
                             "'voxproof gate'")
        at = now_iso()
        with self._db.write() as cur:
            c = _resolve(cur, candidate)
            b = _resolve(cur, baseline)
            if c.name == b.name:
                raise UsageError(f"a gate verdict compares two versions; both are {c.name!r}")
            gate_id = cur.insert_returning_id(
                f"INSERT INTO registry_gates ({_GATE_COLS.replace('id, ', '', 1)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.name, b.name, 1 if verdict["passed"] else 0, _dumps(verdict), path, at, actor), "id",
            )
            record = GateRecord(gate_id, c.name, b.name, bool(verdict["passed"]), verdict, path, at, actor)
            _log(cur, actor, "attach-gate", version=c.name, to_version=c.name, from_version=b.name,
                 details={"gate_id": gate_id, "passed": record.passed, "failed_rules": record.failed_rules(),
                          "path": path})
        return record

    def gates(self, version: str | None = None) -> list[GateRecord]:
        with self._db.read() as cur:
            if version is None:
                rows = cur.execute(f"SELECT {_GATE_COLS} FROM registry_gates ORDER BY id").fetchall()
            else:
                v = _resolve(cur, version)
                rows = cur.execute(
                    f"SELECT {_GATE_COLS} FROM registry_gates WHERE candidate = ? OR baseline = ? ORDER BY id",
                    (v.name, v.name),
                ).fetchall()
        return [_gate(r) for r in rows]

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(self, alias: str, version: str, *, actor: str, reason: str = "") -> str | None:
        """Point ``alias`` (not production/previous) at ``version``; returns the version it pointed to."""
        check_name("alias", alias)
        _check_actor(actor, reason)
        if alias in MANAGED_ALIASES:
            raise UsageError(
                f"alias {alias!r} is managed by the registry: use 'registry promote' or 'registry rollback'"
            )
        with self._db.write() as cur:
            v = _resolve(cur, version)
            old = _alias(cur, alias)
            _put_alias(cur, alias, v.name)
            _log(cur, actor, "set-alias", version=v.name, alias=alias, from_version=old, to_version=v.name,
                 reason=reason)
        return old

    def remove_alias(self, alias: str, *, actor: str, reason: str = "") -> str:
        """Remove ``alias`` (not production/previous); returns the version it pointed to."""
        _check_actor(actor, reason)
        if alias in MANAGED_ALIASES:
            raise UsageError(f"alias {alias!r} is managed by the registry and cannot be removed")
        with self._db.write() as cur:
            old = _alias(cur, alias)
            if old is None:
                raise UsageError(f"no alias {alias!r}; aliases: {', '.join(_alias_names(cur)) or 'none'}")
            cur.execute("DELETE FROM registry_aliases WHERE alias = ?", (alias,))
            _log(cur, actor, "remove-alias", version=old, alias=alias, from_version=old, reason=reason)
        return old

    def promote(self, version: str, *, actor: str, reason: str = "", force: bool = False) -> AliasChange:
        """Make ``version`` production.

        Refused (:class:`PromotionRefused`) unless the latest gate verdict of ``version`` against the
        current production passed and the verifier confirms it (by default the gate is evaluated again
        from its two runs, which must be attached to the two versions), or ``force`` is given with a
        non-empty ``reason``. The first promotion (no production yet) needs no gate. The old
        production becomes ``previous``; a ``canary`` alias pointing at the promoted version is
        cleared. All in one transaction; the verification runs before it (it reads the runs), and the
        transaction uses it only if the same verdict is still the latest against the same production.
        """
        _check_actor(actor, reason)
        if force and not reason.strip():
            raise UsageError("a forced promotion needs a reason (--reason 'why the gate is overridden')")
        try:
            check = self._confirm_latest_gate(version)
            return self._promote(version, actor=actor, reason=reason, force=force, check=check)
        except PromotionRefused as exc:
            # the refusal itself is part of the record (who tried to ship what, and why it was stopped)
            with self._db.write() as cur:
                _log(cur, actor, "promote-refused", version=exc.version, alias=PRODUCTION,
                     from_version=exc.production, to_version=exc.version, reason=reason,
                     details={"refused_because": str(exc), "gate_id": exc.gate_id})
            raise

    def _confirm_latest_gate(self, version: str) -> tuple[int, str, dict[str, Any]] | None:
        """(gate id, production it was against, details) after checking the latest passing verdict of
        ``version`` against the current production with the verifier; ``details["error"]`` says why
        it could not be confirmed. None when there is no passing verdict to check."""
        with self._db.read() as cur:
            target = _resolve(cur, version)
            current = _alias(cur, PRODUCTION)
            gate = None if current is None else _latest_gate(cur, target.name, current)
            if gate is None or not gate.passed:
                return None
            keys = {name: {r[0] for r in cur.execute(
                "SELECT run_key FROM registry_runs WHERE version = ?", (name,)).fetchall()}
                for name in (target.name, current)}
        try:
            details = self._verifier(gate, keys[target.name], keys[current])
        except UnconfirmedVerdict as exc:
            details = {"error": str(exc)}
        return gate.id, current, details

    def _promote(self, version: str, *, actor: str, reason: str, force: bool,
                 check: tuple[int, str, dict[str, Any]] | None) -> AliasChange:
        with self._db.write() as cur:
            target = _resolve(cur, version)
            current = _alias(cur, PRODUCTION)
            if current == target.name:
                raise UsageError(f"{target.name!r} is already production")
            gate = None
            confirmed: dict[str, Any] | None = None
            if current is not None:
                gate = _latest_gate(cur, target.name, current)
                unconfirmed = ""
                if gate is not None and gate.passed:
                    if check is None or check[:2] != (gate.id, current):
                        unconfirmed = "it changed while it was being checked; try again"
                    elif "error" in check[2]:
                        unconfirmed = check[2]["error"]
                    else:
                        confirmed = check[2]
                if confirmed is None and not force:
                    if gate is None:
                        why = f"no gate verdict of {target.name!r} against the current production {current!r}"
                    elif gate.passed:
                        why = (f"the latest gate verdict (#{gate.id}) of {target.name!r} against production "
                               f"{current!r} says passed, but {unconfirmed}")
                    else:
                        rules = ", ".join(gate.failed_rules()) or "see the verdict"
                        why = (f"the latest gate verdict (#{gate.id}) of {target.name!r} against production "
                               f"{current!r} failed: {rules}")
                    raise PromotionRefused(
                        f"{why}; run 'voxproof gate' and 'voxproof registry attach-gate', or pass "
                        "--force --reason '...'",
                        version=target.name, production=current, gate_id=None if gate is None else gate.id,
                    )
            top = cur.execute("SELECT MAX(position) FROM registry_production_stack").fetchone()
            position = (top[0] if top and top[0] is not None else 0) + 1
            cur.execute("INSERT INTO registry_production_stack (position, version) VALUES (?, ?)",
                        (position, target.name))
            _put_alias(cur, PRODUCTION, target.name)
            if current is not None:
                _put_alias(cur, PREVIOUS, current)
            if _alias(cur, CANARY) == target.name:
                cur.execute("DELETE FROM registry_aliases WHERE alias = ?", (CANARY,))
            forced = current is not None and confirmed is None
            established = FIRST if current is None else (FORCED if forced else confirmed.get("method", "verified"))
            change = AliasChange("promote", current, target.name, current, forced=forced,
                                 gate_id=None if gate is None else gate.id, established=established)
            details: dict[str, Any] = {
                "forced": forced, "gate_id": change.gate_id, "gate_passed": None if gate is None else gate.passed,
                "first_production": current is None, "verdict": established,
            }
            if confirmed is not None:
                details["verification"] = confirmed
            elif gate is not None and gate.passed and check is not None and "error" in check[2]:
                details["unconfirmed_because"] = check[2]["error"]
            _log(cur, actor, "promote", version=target.name, alias=PRODUCTION, from_version=current,
                 to_version=target.name, reason=reason, details=details)
        return change

    def rollback(self, *, actor: str, reason: str = "") -> AliasChange:
        """Production back to ``previous``, atomically; ``previous`` becomes the production before that
        (so repeated rollbacks walk back through the promotions), or is removed when there is none."""
        _check_actor(actor, reason)
        with self._db.write() as cur:
            stack = [v for (v,) in cur.execute(
                "SELECT version FROM registry_production_stack ORDER BY position DESC LIMIT 3"
            ).fetchall()]
            current = _alias(cur, PRODUCTION)
            if len(stack) < 2 or current is None:
                raise UsageError("nothing to roll back to: there is no previous production")
            if stack[0] != current:  # production was changed outside promote (should not happen)
                raise UsageError(f"production {current!r} is not the last promoted version {stack[0]!r}; "
                                 "promote explicitly instead")
            top = cur.execute("SELECT MAX(position) FROM registry_production_stack").fetchone()[0]
            cur.execute("DELETE FROM registry_production_stack WHERE position = ?", (top,))
            target, before = stack[1], (stack[2] if len(stack) > 2 else None)
            _put_alias(cur, PRODUCTION, target)
            if before is None:
                cur.execute("DELETE FROM registry_aliases WHERE alias = ?", (PREVIOUS,))
            else:
                _put_alias(cur, PREVIOUS, before)
            change = AliasChange("rollback", current, target, before)
            _log(cur, actor, "rollback", version=target, alias=PRODUCTION, from_version=current,
                 to_version=target, reason=reason, details={"previous": before})
        return change

    # -- history -----------------------------------------------------------------------------
    def history(self, version: str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        """The log, oldest first (the last ``limit`` entries when given), optionally for one version."""
        with self._db.read() as cur:
            if version is None:
                sql, params = f"SELECT {_HISTORY_COLS} FROM registry_history", ()
            else:
                v = _resolve(cur, version)
                sql = (f"SELECT {_HISTORY_COLS} FROM registry_history "
                       "WHERE version = ? OR from_version = ? OR to_version = ?")
                params = (v.name, v.name, v.name)
            rows = cur.execute(sql + " ORDER BY seq", params).fetchall()
        entries = [_entry(r) for r in rows]
        return entries[-limit:] if limit else entries


# -- helpers (run inside a transaction) --------------------------------------------------------
def _check_actor(actor: str, reason: str = "") -> None:
    if not actor or not actor.strip():
        raise UsageError("every registry change needs who made it (actor); pass --user or set VOXPROOF_USER")
    check_text(actor=actor, reason=reason)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _log(
    cur: Cursor,
    actor: str,
    action: str,
    *,
    version: str | None = None,
    alias: str | None = None,
    from_version: str | None = None,
    to_version: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    cur.execute(
        "INSERT INTO registry_history (at, actor, action, version, alias, from_version, to_version, reason, "
        "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), actor, action, version, alias, from_version, to_version, reason or "", _dumps(details or {})),
    )
    cur.execute("UPDATE registry_lock SET changes = changes + 1 WHERE id = 1")


def _get_version(cur: Cursor, name: str) -> ModelVersion | None:
    row = cur.execute(f"SELECT {_VERSION_COLS} FROM registry_versions WHERE name = ?", (name,)).fetchone()
    return None if row is None else _version(row)


def _resolve(cur: Cursor, name: str) -> ModelVersion:
    version = _get_version(cur, name)
    if version is None:
        target = _alias(cur, name)
        if target is not None:
            version = _get_version(cur, target)
    if version is None:
        known = [n for (n,) in cur.execute("SELECT name FROM registry_versions ORDER BY name").fetchall()]
        shown = ", ".join(known[:20] + _alias_names(cur)) or "none (register one with 'voxproof registry register')"
        raise UsageError(f"no version or alias {name!r} in the registry; known: {shown}")
    return version


def _alias(cur: Cursor, alias: str) -> str | None:
    row = cur.execute("SELECT version FROM registry_aliases WHERE alias = ?", (alias,)).fetchone()
    return None if row is None else row[0]


def _alias_names(cur: Cursor) -> list[str]:
    return [a for (a,) in cur.execute("SELECT alias FROM registry_aliases ORDER BY alias").fetchall()]


def _put_alias(cur: Cursor, alias: str, version: str) -> None:
    cur.execute(
        "INSERT INTO registry_aliases (alias, version, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
        (alias, version, now_iso()),
    )


def _latest_gate(cur: Cursor, candidate: str, baseline: str) -> GateRecord | None:
    row = cur.execute(
        f"SELECT {_GATE_COLS} FROM registry_gates WHERE candidate = ? AND baseline = ? ORDER BY id DESC LIMIT 1",
        (candidate, baseline),
    ).fetchone()
    return None if row is None else _gate(row)


def _version(row: tuple) -> ModelVersion:
    name, kind, backend, options, checksum, notes, created_at, created_by = row
    return ModelVersion(name, kind, backend, json.loads(options), checksum, notes, created_at, created_by)


def _run(row: tuple) -> AttachedRun:
    rid, version, path, run_key, role, summary, at, by = row
    return AttachedRun(int(rid), version, path, run_key, role, json.loads(summary), at, by)


def _gate(row: tuple) -> GateRecord:
    gid, candidate, baseline, passed, verdict, path, at, by = row
    return GateRecord(int(gid), candidate, baseline, bool(passed), json.loads(verdict), path, at, by)


def _entry(row: tuple) -> HistoryEntry:
    seq, at, actor, action, version, alias, frm, to, reason, details = row
    return HistoryEntry(int(seq), at, actor, action, version, alias, frm, to, reason, json.loads(details))
