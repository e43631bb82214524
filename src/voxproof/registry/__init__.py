"""Model registry: versions, aliases (production, canary, previous), linked runs, gate verdicts, history.

Embedded SQLite by default, PostgreSQL through a URL. See :mod:`voxproof.registry.store`.
"""

from voxproof.registry.models import (
    CANARY,
    PREVIOUS,
    PRODUCTION,
    AliasChange,
    AttachedRun,
    GateRecord,
    HistoryEntry,
    ModelVersion,
    PromotionRefused,
    RegistryError,
    VersionDetails,
)
from voxproof.registry.store import Registry

__all__ = [
    "CANARY", "PREVIOUS", "PRODUCTION", "AliasChange", "AttachedRun", "GateRecord", "HistoryEntry",
    "ModelVersion", "PromotionRefused", "Registry", "RegistryError", "VersionDetails",
]
