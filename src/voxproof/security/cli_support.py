"""CLI glue for the supply-chain checks: the shared click options and a verified backend factory, so
``eval`` (and ``gate``/``serve``) need a two-line edit each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from voxproof.errors import UsageError


def supply_options(func: Callable) -> Callable:
    """Adds --expect-checksum, --registry, --expect-version, --allow-changed-model, --allow-pickle."""
    for opt in reversed([
        click.option("--expect-checksum", default=None, metavar="SHA256",
                     help="Refuse to run unless the loaded model has this sha256 checksum."),
        click.option("--registry", default=None, help="Registry (SQLite path or postgresql:// URL) for --expect-version."),
        click.option("--expect-version", default=None, help="Registry version or alias whose recorded model checksum must match."),
        click.option("--allow-changed-model", is_flag=True, help="Run even if the checksum differs (recorded in provenance)."),
        click.option("--allow-pickle", is_flag=True, help="Allow pickle-format model files (they can run code when loaded)."),
    ]):
        func = opt(func)
    return func


def verified_factory(load: Callable[[], Any], expect_checksum: str | None, registry: str | None,
                     expect_version: str | None, allow_changed: bool, allow_pickle: bool) -> tuple[Callable[[], Any], dict[str, Any]]:
    """Load the backend once, verify it (raises ``ModelChanged``/``UnsafeModelFormat``), and return a
    factory handing out that instance first (then fresh loads, for more workers) plus the record."""
    from voxproof.security.supply import registry_checksum, verify_backend

    if expect_version and not registry:
        raise UsageError("--expect-version needs --registry PATH naming the registry that records it")
    if expect_version and expect_checksum:
        raise UsageError("give --expect-checksum or --expect-version, not both")
    expected = registry_checksum(registry, expect_version) if expect_version else expect_checksum
    first = load()
    record = verify_backend(first, expected, allow_changed=allow_changed, allow_pickle=allow_pickle).to_dict()
    if expect_version:
        record["registry_version"] = expect_version
    pending = [first]

    def factory() -> Any:
        return pending.pop() if pending else load()

    return factory, record


def record_verification(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Add the verification record to the run's provenance (``provenance.model_verification``)."""
    from voxproof.run.store import RunStore

    with RunStore.open(run_dir) as store:
        prov = store.provenance
        prov["model_verification"] = record
        store.set_meta("provenance", prov)
