"""Choosing how to read a model: built-in inspectors for CTranslate2 directories, ONNX files and
PyTorch-style modules, and a plugin hook for anything else.

A plugin is registered in code with :func:`register_inspector`, or by a package through the entry-point
group ``voxproof.efficiency`` (each entry point loads to an ``(accepts, inspect)`` pair of callables).
Plugins are tried before the built-ins, in registration order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxproof.efficiency.records import ModelEfficiency
from voxproof.errors import UsageError

log = logging.getLogger("voxproof.efficiency")

ENTRY_POINT_GROUP = "voxproof.efficiency"


@dataclass(frozen=True)
class Inspector:
    name: str
    accepts: Callable[[Any], bool]
    inspect: Callable[..., ModelEfficiency]


_PLUGINS: list[Inspector] = []
_ENTRY_POINTS_LOADED = False


def register_inspector(name: str, accepts: Callable[[Any], bool], inspect: Callable[..., ModelEfficiency]) -> None:
    """Add an inspector tried before the built-ins: ``accepts(model)`` says whether it can read ``model``,
    ``inspect(model, **kwargs)`` returns a :class:`ModelEfficiency`. Re-registering a name replaces it."""
    _PLUGINS[:] = [p for p in _PLUGINS if p.name != name]
    _PLUGINS.append(Inspector(name, accepts, inspect))


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            accepts, inspect = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the report
            log.warning("efficiency plugin %s could not be loaded: %s", ep.name, exc)
            continue
        register_inspector(ep.name, accepts, inspect)


def _is_ct2(model: Any) -> bool:
    return isinstance(model, (str, Path)) and Path(model).is_dir() and (Path(model) / "model.bin").is_file()


def _is_onnx(model: Any) -> bool:
    return isinstance(model, (str, Path)) and Path(model).suffix == ".onnx" and Path(model).is_file()


def _is_torch_like(model: Any) -> bool:
    return callable(getattr(model, "named_parameters", None))


def _ct2(model: Any, **kwargs: Any) -> ModelEfficiency:
    from voxproof.efficiency.ct2 import inspect_ct2

    return inspect_ct2(model, **kwargs)


def _onnx(model: Any, **kwargs: Any) -> ModelEfficiency:
    from voxproof.efficiency.onnx_graph import inspect_onnx

    return inspect_onnx(model, **kwargs)


def inspect_torch_module(module: Any, **_: Any) -> ModelEfficiency:
    """Parameters of a PyTorch ``nn.Module`` (anything with ``named_parameters()`` whose values have
    ``numel()``), tied parameters once; MoE layers from ``...experts.<i>...`` names with ``top_k`` read
    from the layer module's ``top_k``/``num_experts_per_tok``/``k`` attribute when it has one."""
    from voxproof.efficiency.moe import group_experts, moe_layers_from_names

    seen: set[int] = set()
    sizes: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    components: dict[str, int] = {}
    for name, p in module.named_parameters():
        key = p.data_ptr() if callable(getattr(p, "data_ptr", None)) else id(p)
        if key in seen:
            continue
        seen.add(key)
        n = int(p.numel())
        sizes[name] = n
        dt = str(getattr(p, "dtype", "unknown")).replace("torch.", "")
        dtypes[dt] = dtypes.get(dt, 0) + n
        comp = name.split(".", 1)[0]
        components[comp] = components.get(comp, 0) + n
    modules = dict(module.named_modules()) if callable(getattr(module, "named_modules", None)) else {}
    top_k: dict[str, tuple[int, str]] = {}
    for layer in group_experts(sizes):
        mod = modules.get(layer)
        for attr in ("top_k", "num_experts_per_tok", "k"):
            if mod is not None and isinstance(getattr(mod, attr, None), int):
                top_k[layer] = (int(getattr(mod, attr)), f"module attribute {attr}")
                break
    return ModelEfficiency(
        source="torch",
        path=type(module).__name__,
        architecture=type(module).__name__,
        parameters=sum(sizes.values()),
        components=components,
        dtypes=dtypes,
        moe_layers=moe_layers_from_names(sizes, top_k),
        flops_notes="no FLOPs model for PyTorch modules; register a plugin inspector that provides one",
    )


_BUILTINS = (
    Inspector("ctranslate2", _is_ct2, _ct2),
    Inspector("onnx", _is_onnx, _onnx),
    Inspector("torch", _is_torch_like, inspect_torch_module),
)


def inspect_model(model: Any, **kwargs: Any) -> ModelEfficiency:
    """The :class:`ModelEfficiency` of ``model``: a CTranslate2 model directory, an ``.onnx`` file, a
    PyTorch-style module, or anything a registered plugin accepts. Keyword arguments go to the inspector
    (ONNX: ``input_shapes``, ``audio_seconds``; CTranslate2: ``tokens_per_second``)."""
    _load_entry_points()
    for inspector in (*_PLUGINS, *_BUILTINS):
        if inspector.accepts(model):
            return inspector.inspect(model, **kwargs)
    names = ", ".join(i.name for i in (*_PLUGINS, *_BUILTINS))
    raise UsageError(
        f"cannot inspect {model!r}: not a CTranslate2 directory (config.json + model.bin), an .onnx file "
        f"or a module with named_parameters(); inspectors tried: {names}"
    )
