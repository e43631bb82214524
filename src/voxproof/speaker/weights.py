"""Speaker stage, weights: PyTorch checkpoints read without torch.

``torch.save`` writes either the legacy stream (pickled magic number, protocol, system info, then the
object whose tensors point at storages by key, then the storage keys, then each storage's raw bytes
after an 8-byte element count) or, since torch 1.6, a zip (``*/data.pkl`` plus ``*/data/<key>``).
Both are read here with a restricted unpickler that builds numpy arrays for tensors and refuses every
other global (a checkpoint is code otherwise: pickle can call anything).
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.errors import DataError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024


class _Storage:
    def __init__(self, dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel
        self.data: np.ndarray | None = None


class _StorageType:
    def __init__(self, name: str):
        if name not in _DTYPES:
            raise DataError(f"checkpoint uses an unsupported tensor storage {name}")
        self.dtype = _DTYPES[name]


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *args):
    return ("tensor", storage, int(offset), tuple(size), tuple(stride))


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


class _Unpickler(pickle.Unpickler):
    """Builds only tensors, storages and ordered dicts; any other global is refused."""

    def __init__(self, f, storages: dict[str, _Storage]):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return _ordered_dict
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise DataError(f"checkpoint refers to {module}.{name}, which a weights file does not need; refusing it")

    def persistent_load(self, pid):
        kind, stype, key, _location, numel = pid[:5]
        if kind != "storage":
            raise DataError(f"checkpoint has an unknown persistent object {kind!r}")
        dtype = stype.dtype if isinstance(stype, _StorageType) else _DTYPES.get(getattr(stype, "__name__", ""), np.float32)
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, key, int(numel))
        return self.storages[key]


def _materialise(obj: Any) -> Any:
    if isinstance(obj, tuple) and obj and obj[0] == "tensor":
        _, storage, offset, size, stride = obj
        if storage.data is None:
            raise DataError(f"checkpoint storage {storage.key} has no data")
        item = storage.data.itemsize
        return np.lib.stride_tricks.as_strided(storage.data[offset:], size, [s * item for s in stride]).copy()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def load_checkpoint(path: str | Path) -> Any:
    """The checkpoint's object with every tensor as a numpy array."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise DataError(f"{path} is {size} bytes, over the {MAX_CHECKPOINT_BYTES}-byte checkpoint limit")
    raw = path.read_bytes()
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(io.BytesIO(raw)):
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
                root = pkl[: -len("data.pkl")]
                obj = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
                for key, st in storages.items():
                    st.data = np.frombuffer(z.read(f"{root}data/{key}"), dtype=st.dtype)
            return _materialise(obj)
        f = io.BytesIO(raw)
        if pickle.Unpickler(f).load() != LEGACY_MAGIC:
            raise DataError(f"{path} is not a PyTorch checkpoint (no magic number)")
        pickle.Unpickler(f).load()  # protocol version
        pickle.Unpickler(f).load()  # system info (endianness, type sizes)
        obj = _Unpickler(f, storages).load()
        keys = pickle.Unpickler(f).load()
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            st = storages[str(key)]
            nbytes = numel * np.dtype(st.dtype).itemsize
            st.data = np.frombuffer(f.read(nbytes), dtype=st.dtype, count=numel)
        return _materialise(obj)
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error, StopIteration, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
