"""ONNX models: parameters from initializers, mixture-of-experts layers, FLOPs of a static-shaped graph.

Parameters = elements of floating-point and 8-bit initializers (int64/int32 initializers are shapes and
indices, not weights). Each initializer is counted once however many nodes share it.

Mixture-of-experts layers are found two ways: ONNX Runtime's contrib ``MoE``/``QMoE`` operators
(attribute ``k``; expert weights stacked on a leading expert axis), or initializers named like
``<layer>.experts.<i>.<...>`` with ``top_k`` from a ``TopK`` node whose ``k`` is a constant, or from
model metadata ``moe.top_k`` when the graph routes another way.

FLOPs: shape inference with the input shapes the caller gives; MatMul, Gemm and Conv are counted
(2 FLOPs per multiply-add) when their shapes resolve, others (elementwise, softmax) are ignored. A dense
graph that runs every expert and masks the outputs is counted as executed (all experts), which the
notes say. Graphs whose output length depends on the data (TTS duration predictors) are not computable
statically: the count of unresolved operators is reported instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxproof.efficiency.moe import moe_layers_from_names
from voxproof.efficiency.records import ModelEfficiency, MoELayer
from voxproof.errors import BackendUnavailable, DataError

_WEIGHT_TYPES = {"FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE", "INT8", "UINT8", "INT4", "UINT4"}


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise BackendUnavailable("reading ONNX models needs the onnx package: pip install onnx") from exc
    return onnx


def _load(path: str | Path):
    onnx = _onnx()
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no ONNX model at {p}")
    try:
        return onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others from protobuf
        raise DataError(f"{p} is not a readable ONNX model: {exc}") from exc


def _constants(graph) -> dict[str, Any]:
    """name -> numpy array for initializers and Constant nodes."""
    from onnx import numpy_helper

    out = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = attr.t
    return {k: numpy_helper.to_array(v) for k, v in out.items() if math.prod(v.dims) <= 16}


def inspect_onnx(
    path: str | Path,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    audio_seconds: float | None = None,
) -> ModelEfficiency:
    """Parameters, MoE layers and (with ``input_shapes`` resolving every shape) FLOPs of an ONNX model.
    ``audio_seconds`` is the audio that ``input_shapes`` represents, giving FLOPs per audio second."""
    onnx = _onnx()
    from voxproof.metrics.cost import disk_size_bytes

    model = _load(path)
    graph = model.graph
    sizes: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    components: dict[str, int] = {}
    other = 0
    for init in graph.initializer:
        n = math.prod(init.dims) if init.dims else 1
        dtype = onnx.TensorProto.DataType.Name(init.data_type)
        if dtype not in _WEIGHT_TYPES:
            other += n
            continue
        sizes[init.name] = n
        dtypes[dtype] = dtypes.get(dtype, 0) + n
        comp = "unnamed" if init.name.startswith("onnx::") else (init.name.replace("/", ".").split(".", 1)[0] or "root")
        components[comp] = components.get(comp, 0) + n
    metadata = {p.key: p.value for p in model.metadata_props}
    moe = _contrib_moe(graph, sizes) or _named_moe(graph, sizes, metadata)
    flops, detail, notes = None, {}, "pass input_shapes (and audio_seconds) to estimate FLOPs"
    if input_shapes is not None:
        total, unresolved, by_op = graph_flops(model, input_shapes)
        detail = {f"{op}_flops": float(v) for op, v in by_op.items()}
        detail["graph_flops"] = float(total)
        detail["unresolved_ops"] = float(unresolved)
        if unresolved:
            notes = (
                f"not computable statically: {unresolved} MatMul/Gemm/Conv nodes have shapes that depend on "
                "the data for these inputs"
            )
        else:
            notes = "matrix products of the graph as executed for the given input shapes (2 FLOPs per multiply-add)"
            if moe:
                notes += "; a dense graph that runs all experts is counted with all experts"
            if audio_seconds:
                flops = total / audio_seconds
    producer = f"{model.producer_name} {model.producer_version}".strip()
    return ModelEfficiency(
        source="onnx",
        path=str(path),
        architecture=metadata.get("architecture") or graph.name or producer or "onnx graph",
        parameters=sum(sizes.values()),
        components=components,
        dtypes=dtypes,
        disk_bytes=disk_size_bytes(path),
        moe_layers=moe,
        flops_per_audio_second=flops,
        flops_detail=detail,
        flops_notes=notes,
        extras={
            "opsets": {imp.domain or "ai.onnx": imp.version for imp in model.opset_import},
            "producer": producer,
            "nodes": len(graph.node),
            "non_weight_initializer_elements": other,
            "inputs": [i.name for i in graph.input if i.name not in sizes],
        },
    )


def _contrib_moe(graph, sizes: Mapping[str, int]) -> tuple[MoELayer, ...]:
    layers = []
    for node in graph.node:
        if node.domain == "com.microsoft" and node.op_type in ("MoE", "QMoE", "SparseMoE"):
            k = next((a.i for a in node.attribute if a.name == "k"), None)
            weights = [name for name in node.input[2:] if name in sizes]
            experts = next(
                (init.dims[0] for init in graph.initializer if weights and init.name == weights[0]), None
            )
            if experts:
                layers.append(
                    MoELayer(node.name or f"moe_{len(layers)}", int(experts), None if k is None else int(k),
                             sum(sizes[w] for w in weights), 0, f"{node.op_type} attribute k")
                )
    return tuple(layers)


def _named_moe(graph, sizes: Mapping[str, int], metadata: Mapping[str, str]) -> tuple[MoELayer, ...]:
    top_k: tuple[int, str] | None = None
    if "moe.top_k" in metadata:
        top_k = (int(metadata["moe.top_k"]), "metadata moe.top_k")
    else:
        consts = _constants(graph)
        ks = set()
        for node in graph.node:
            if node.op_type == "TopK" and len(node.input) > 1 and node.input[1] in consts:
                ks.add(int(consts[node.input[1]].reshape(-1)[0]))
        if len(ks) == 1:
            top_k = (ks.pop(), "TopK node")
    return moe_layers_from_names(sizes, top_k)


def graph_flops(model, input_shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int, dict[str, int]]:
    """(total FLOPs, unresolved node count, FLOPs per op type) of MatMul/Gemm/Conv after shape inference
    with ``input_shapes`` fixed."""
    onnx = _onnx()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for inp in model.graph.input:
        if inp.name in input_shapes:
            dims = inp.type.tensor_type.shape.dim
            shape = input_shapes[inp.name]
            if len(dims) != len(shape):
                raise DataError(f"input {inp.name} has rank {len(dims)}, got shape {shape}")
            for d, v in zip(dims, shape):
                d.ClearField("dim_param")
                d.dim_value = int(v)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, tuple[int, ...] | None] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value for d in dims) if all(d.HasField("dim_value") for d in dims) else None
    for init in inferred.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    total, unresolved = 0, 0
    by_op: dict[str, int] = {}
    for node in inferred.graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        flops = _node_flops(node, shapes)
        if flops is None:
            unresolved += 1
            continue
        total += flops
        by_op[node.op_type] = by_op.get(node.op_type, 0) + flops
    return total, unresolved, by_op


def _node_flops(node, shapes: Mapping[str, tuple[int, ...] | None]) -> int | None:
    ins = [shapes.get(name) for name in node.input[:2]]
    out = shapes.get(node.output[0])
    if any(s is None for s in ins) or out is None:
        return None
    a, b = ins
    if node.op_type == "MatMul":
        k = a[-1] if len(a) >= 1 else 1
        return 2 * math.prod(out) * k
    if node.op_type == "Gemm":
        trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
        return 2 * math.prod(out) * k
    # Conv: weight (Cout, Cin/group, *kernel); every output element costs Cin/group x kernel MACs
    return 2 * math.prod(out) * math.prod(b[1:])
