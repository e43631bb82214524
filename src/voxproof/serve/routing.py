"""Serving stage, routing: which registry version answers a request.

The router holds a snapshot of the registry (versions and aliases), re-read every ``poll_s`` seconds by
:class:`RegistryWatcher` (and at once after an admin change), so promotions and rollbacks take effect
without a restart. A request resolves its version once, when it arrives; it then finishes on that
version even if the alias moves meanwhile.

Canary: a request for ``production`` goes to the ``canary`` alias when ``canary_point(key) <
canary_share``; the point is a hash of the key name and the seed, so one key always sees one version.
Shadow: a ``shadow_share`` sample of requests (hash of the request id) is also run on the shadow version.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from voxproof.registry import CANARY, PRODUCTION, ModelVersion, Registry

log = logging.getLogger("voxproof.serve.routing")


def unit_hash(*parts: object) -> float:
    """A deterministic point in [0, 1) from ``parts`` (sha256 of their joined text)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Snapshot:
    """Versions by name and aliases (alias -> version name) as read at one moment."""

    versions: dict[str, ModelVersion]
    aliases: dict[str, str]
    changes: int = 0

    def resolve(self, name: str) -> ModelVersion | None:
        version = self.versions.get(name)
        if version is None and name in self.aliases:
            version = self.versions.get(self.aliases[name])
        return version


@dataclass(frozen=True)
class Route:
    version: ModelVersion
    route: str  # "main" | "canary"


class Router:
    """Resolves ``model`` (version or alias) to a version, with the canary split for production."""

    def __init__(self, snapshot: Snapshot, *, canary_share: float = 0.0, seed: int = 0):
        self.snapshot = snapshot
        self.canary_share = canary_share
        self.seed = seed

    def update(self, snapshot: Snapshot) -> None:
        old = self.snapshot
        self.snapshot = snapshot  # one reference swap: readers see the old or the new, never a mix
        if old.aliases != snapshot.aliases:
            log.info("registry aliases changed: %s -> %s", old.aliases, snapshot.aliases)

    def canary_point(self, key_name: str | None) -> float:
        return unit_hash("canary", self.seed, key_name or "")

    def route(self, model: str, key_name: str | None) -> Route | None:
        snap = self.snapshot
        version = snap.resolve(model)
        if version is None:
            return None
        if model == PRODUCTION and self.canary_share > 0:
            canary = snap.resolve(CANARY)
            if (canary is not None and canary.name != version.name and canary.kind == version.kind
                    and self.canary_point(key_name) < self.canary_share):
                return Route(canary, "canary")
        return Route(version, "main")

    def wants_shadow(self, request_id: str, share: float) -> bool:
        return share > 0 and unit_hash("shadow", self.seed, request_id) < share


def read_snapshot(registry: Registry) -> Snapshot:
    versions = {v.name: v for v in registry.versions()}
    return Snapshot(versions, registry.aliases())


class RegistryWatcher:
    """A background thread re-reading the registry every ``poll_s`` seconds; calls ``on_change`` with a
    new :class:`Snapshot` when versions or aliases differ. It opens its own registry connection."""

    def __init__(self, location: str, poll_s: float, on_change: Callable[[Snapshot], None],
                 extra: Callable[[], None] | None = None):
        self.location = location
        self.poll_s = poll_s
        self.on_change = on_change
        self.extra = extra
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vp-registry-watch", daemon=True)
        self._last: Snapshot | None = None

    def start(self, first: Snapshot) -> None:
        self._last = first
        self._thread.start()

    def poke(self) -> None:
        """Re-read now (after an admin change)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        registry = None
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if registry is None:
                    registry = Registry.open(self.location)
                snap = read_snapshot(registry)
                if self._last is None or snap.aliases != self._last.aliases or snap.versions.keys() != \
                        self._last.versions.keys():
                    self._last = snap
                    self.on_change(snap)
                if self.extra is not None:
                    self.extra()
            except Exception:  # a registry hiccup must not kill the watcher; the next poll retries
                log.exception("re-reading the registry at %s failed; keeping the last snapshot", self.location)
                if registry is not None:
                    registry.close()
                registry = None
        if registry is not None:
            registry.close()
