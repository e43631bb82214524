"""Model supply chain: check that the model a backend loaded is the one the registry recorded, and
refuse unsafe (pickle) model files.

``verify_model_checksum(backend_info, expected)`` is what ``eval`` calls after loading (and what
``serve`` can call): a mismatch raises :class:`ModelChanged` naming both checksums unless the caller
passes ``allow_changed=True``; either way the returned record goes into the run's provenance, so an
override is never silent. ``check_model_format(path)`` refuses pickle-based files (``.pkl``, ``.pt``,
``.pth``, ``.ckpt``, ``.joblib``, a raw pickle stream, or a zip archive holding ``*.pkl`` - the PyTorch
format) because loading them runs arbitrary code; ``allow_pickle=True`` lets them through, recorded.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voxproof.errors import BackendError, UsageError

log = logging.getLogger("voxproof.security.supply")

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy.pkl")
MAX_SCAN_FILES = 10_000


class ModelChanged(BackendError):
    """The loaded model file's checksum differs from the one recorded for this model version."""


class UnsafeModelFormat(BackendError):
    """A model file is in a format whose loading can run code (pickle)."""


@dataclass(frozen=True)
class ModelVerification:
    """What was checked on load, for the run's provenance. ``status``: ``match``, ``overridden``
    (mismatch accepted with the override flag) or ``not-recorded`` (no expected checksum)."""

    expected: str | None
    actual: str | None
    status: str
    pickle_files: tuple[str, ...] = ()
    pickle_allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pickle_files": list(self.pickle_files)}


def _checksum_of(backend_info: Any) -> str | None:
    if isinstance(backend_info, dict):
        return backend_info.get("model_checksum")
    return getattr(backend_info, "model_checksum", None)


def verify_model_checksum(backend_info: Any, expected: str | None, *, allow_changed: bool = False) -> ModelVerification:
    """Compare a loaded backend's ``model_checksum`` (a ``BackendInfo`` or its dict) with ``expected``.

    Raises :class:`ModelChanged` on a mismatch unless ``allow_changed``; raises :class:`UsageError` for a
    malformed expected checksum."""
    actual = _checksum_of(backend_info)
    if expected is None:
        return ModelVerification(None, actual, "not-recorded")
    expected = expected.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise UsageError(f"expected model checksum must be 64 hex digits (sha256), got {expected[:80]!r}")
    if actual == expected:
        return ModelVerification(expected, actual, "match")
    if not allow_changed:
        raise ModelChanged(f"model file changed: registry records sha256 {expected}, the loaded model has "
                           f"{actual or 'no checksum'}; restore the registered model, register the new one as a "
                           "new version, or pass --allow-changed-model (recorded in provenance)")
    log.warning("model checksum mismatch accepted by override: expected %s, got %s", expected, actual)
    return ModelVerification(expected, actual, "overridden")


def verify_run_model(side: dict[str, Any], expected: str | None, *, allow_changed: bool = False) -> ModelVerification:
    """The gate's check on a run it reads: the model checksum the run recorded when it loaded its model
    (``side`` is the gate's candidate record, which carries ``model_checksum``) against ``expected``.
    Raises :class:`ModelChanged` on a mismatch unless ``allow_changed``."""
    try:
        return verify_model_checksum({"model_checksum": side.get("model_checksum")}, expected,
                                     allow_changed=allow_changed)
    except ModelChanged:
        raise ModelChanged(f"candidate model changed: the registry records sha256 {expected}, the candidate run "
                           f"{side.get('path')} was made with {side.get('model_checksum') or 'no recorded checksum'}; "
                           "gate a run of the registered model, register the new one as a new version, or pass "
                           "--allow-changed-model (recorded in gate.json)") from None


def is_pickle_file(path: Path) -> bool:
    """True for pickle-based model files: by suffix, by the pickle protocol header (0x80 0x02..0x05), or
    a zip archive (PyTorch) containing a ``.pkl`` member."""
    path = Path(path)
    if path.name.lower().endswith(PICKLE_SUFFIXES):
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head == b"PK":
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith(".pkl") for n in zf.namelist()[:MAX_SCAN_FILES])
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def check_model_format(path: str | Path | None, *, allow_pickle: bool = False) -> tuple[str, ...]:
    """Pickle-format files at ``path`` (a file or a directory, scanned recursively up to 10,000 files).
    Raises :class:`UnsafeModelFormat` naming them unless ``allow_pickle``; returns them otherwise."""
    if path is None:
        return ()
    root = Path(path)
    if not root.exists():
        return ()
    files = [root] if root.is_file() else [p for _, p in zip(range(MAX_SCAN_FILES), root.rglob("*")) if p.is_file()]
    found = tuple(str(p) for p in files if is_pickle_file(p))
    if found and not allow_pickle:
        raise UnsafeModelFormat(f"refusing pickle-format model file(s) {', '.join(found[:3])}"
                                f"{' ...' if len(found) > 3 else ''}: loading pickle runs code; convert to a safe "
                                "format (safetensors, ONNX, CTranslate2) or pass --allow-pickle")
    return found


def verify_backend(backend: Any, expected: str | None, *, allow_changed: bool = False,
                   allow_pickle: bool = False) -> ModelVerification:
    """Both checks for a loaded backend (its ``info().model`` path is scanned when it exists)."""
    info = backend.info()
    pickles = check_model_format(info.model if info.model and Path(str(info.model)).exists() else None,
                                 allow_pickle=allow_pickle)
    v = verify_model_checksum(info, expected, allow_changed=allow_changed)
    return ModelVerification(v.expected, v.actual, v.status, pickles, allow_pickle)


def registry_checksum(registry: str, version: str) -> str | None:
    """The model checksum the registry records for ``version`` (name or alias)."""
    from voxproof.registry.store import Registry

    reg = Registry.open(registry)
    try:
        return reg.show(version).version.model_checksum
    finally:
        close = getattr(reg, "close", None)
        if close:
            close()
