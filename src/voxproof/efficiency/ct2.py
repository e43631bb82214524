"""CTranslate2 model directories (config.json + model.bin): variables read from the binary header.

The model.bin layout (CTranslate2 ``ModelSpec._serialize``, binary version 6; versions 4-6 read here):
uint32 binary version, string spec name, uint32 revision, uint32 variable count, then per variable
string name, uint8 rank, uint32 dims..., uint8 dtype id, uint32 byte count, raw bytes; then uint32 alias
count and (alias, target) string pairs. Strings are uint16 length (with the trailing NUL) + bytes.
Only headers are read: the weights are skipped with seek, so a 75 MB file parses in milliseconds.

Parameters = elements of every variable with rank >= 1 whose dtype is a number type, except int8
quantisation scales (``*_scale``); rank-0 variables are configuration (num_heads, activation...).
Aliases (tied weights, e.g. Whisper's output projection = token embedding) are counted once.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from voxproof.efficiency.records import ModelEfficiency
from voxproof.errors import DataError

# CTranslate2 DataType ids (include/ctranslate2/types.h)
DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
WHISPER_SAMPLE_RATE = 16000
WHISPER_WINDOW_SECONDS = 30.0
#: assumed decoded tokens per second of English speech (~150 words/min x ~1.3 tokens/word); an assumption
DEFAULT_TOKENS_PER_SECOND = 3.3


@dataclass(frozen=True)
class CT2Variable:
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int

    @property
    def size(self) -> int:
        return math.prod(self.shape) if self.shape else 1


@dataclass(frozen=True)
class CT2Header:
    binary_version: int
    spec: str
    revision: int
    variables: tuple[CT2Variable, ...]
    aliases: dict[str, str]

    def variable(self, name: str) -> CT2Variable | None:
        name = self.aliases.get(name, name)
        return next((v for v in self.variables if v.name == name), None)


def _read(f: BinaryIO, fmt: str) -> tuple[Any, ...]:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise DataError("CTranslate2 model.bin ended early; the file is truncated")
    return struct.unpack("<" + fmt, data)


def _string(f: BinaryIO) -> str:
    (n,) = _read(f, "H")
    raw = f.read(n)
    if len(raw) != n:
        raise DataError("CTranslate2 model.bin ended inside a name; the file is truncated")
    return raw.rstrip(b"\0").decode("utf-8")


def read_ct2_header(model_dir: str | Path) -> CT2Header:
    """Variable names, shapes and dtypes of a CTranslate2 model directory (or its model.bin)."""
    path = Path(model_dir)
    path = path / "model.bin" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"no CTranslate2 model.bin at {path}; pass a directory holding config.json and model.bin")
    size = path.stat().st_size
    with path.open("rb") as f:
        (version,) = _read(f, "I")
        if version < 4 or version > 6:
            raise DataError(f"{path} has CTranslate2 binary version {version}; voxproof reads versions 4 to 6")
        spec = _string(f)
        (revision,) = _read(f, "I")
        (count,) = _read(f, "I")
        variables = []
        for _ in range(count):
            name = _string(f)
            (rank,) = _read(f, "B")
            shape = _read(f, "I" * rank) if rank else ()
            (dtype_id,) = _read(f, "B")
            (nbytes,) = _read(f, "I")
            if f.tell() + nbytes > size:
                raise DataError(f"{path}: variable {name} claims {nbytes} bytes past the end of the file")
            f.seek(nbytes, 1)
            variables.append(CT2Variable(name, tuple(int(d) for d in shape), DTYPES.get(dtype_id, f"id{dtype_id}"), nbytes))
        aliases: dict[str, str] = {}
        tail = f.read(4)
        if len(tail) == 4:
            (n_alias,) = struct.unpack("<I", tail)
            for _ in range(n_alias):
                alias = _string(f)
                aliases[alias] = _string(f)
    return CT2Header(version, spec, revision, tuple(variables), aliases)


def _is_parameter(v: CT2Variable) -> bool:
    return bool(v.shape) and not v.name.endswith("_scale")


def inspect_ct2(model_dir: str | Path, *, tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND) -> ModelEfficiency:
    """Parameter count (by top-level component and storage dtype) of a CTranslate2 model, with a FLOPs
    estimate for Whisper specs."""
    from voxproof.metrics.cost import disk_size_bytes

    root = Path(model_dir)
    header = read_ct2_header(root)
    components: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    total = 0
    for v in header.variables:
        if not _is_parameter(v):
            continue
        total += v.size
        comp = v.name.split("/", 1)[0]
        components[comp] = components.get(comp, 0) + v.size
        dtypes[v.dtype] = dtypes.get(v.dtype, 0) + v.size
    config: dict[str, Any] = {}
    if root.is_dir() and (root / "config.json").is_file():
        config = json.loads((root / "config.json").read_text())
    eff = ModelEfficiency(
        source="ctranslate2",
        path=str(root),
        architecture=header.spec,
        parameters=total,
        components=components,
        dtypes=dtypes,
        disk_bytes=disk_size_bytes(root),
        extras={
            "binary_version": header.binary_version,
            "revision": header.revision,
            "variables": len(header.variables),
            "tied_aliases": dict(header.aliases),
            "quantisation_scales": sum(v.size for v in header.variables if v.name.endswith("_scale")),
            "config_keys": sorted(config),
        },
    )
    if header.spec == "WhisperSpec":
        detail, notes = whisper_flops(header, tokens_per_second=tokens_per_second)
        eff = replace(
            eff, flops_per_audio_second=detail["per_audio_second_full_windows"], flops_detail=detail, flops_notes=notes
        )
    else:
        eff = replace(eff, flops_notes=f"no FLOPs model for CTranslate2 spec {header.spec}")
    return eff


def _count_layers(header: CT2Header, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    return len({m.group(1) for v in header.variables if (m := pattern.match(v.name))})


def _linear_weights(header: CT2Header, prefix: str) -> int:
    return sum(
        v.size for v in header.variables
        if re.match(rf"^{prefix}\d+/", v.name) and v.name.endswith("/weight") and len(v.shape) == 2
    )


def whisper_flops(header: CT2Header, *, tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND) -> tuple[dict[str, float], str]:
    """FLOPs of Whisper per 30 s window and per second of audio (2 FLOPs per multiply-add; matrix
    products only, no softmax/normalisation/activation, which add a few per cent)."""

    def get(name: str) -> CT2Variable:
        v = header.variable(name)
        if v is None:
            raise DataError(f"Whisper model lacks variable {name}; cannot estimate FLOPs")
        return v

    conv1, conv2 = get("encoder/conv1/weight"), get("encoder/conv2/weight")
    d_model = conv2.shape[0]
    frames = get("encoder/position_encodings/encodings").shape[0]  # 1500 encoder positions per window
    mel_frames = frames * 2  # conv2 has stride 2
    enc_layers = _count_layers(header, "encoder")
    dec_layers = _count_layers(header, "decoder")
    vocab = get("decoder/embeddings/weight").shape[0]

    conv = 2 * math.prod(conv1.shape) * mel_frames + 2 * math.prod(conv2.shape) * frames
    enc_linear = 2 * _linear_weights(header, "encoder/layer_") * frames
    enc_attn = enc_layers * 2 * 2 * frames * frames * d_model  # QK^T and AV
    encoder = conv + enc_linear + enc_attn

    # cross-attention keys/values over the encoder output: once per window (attention/linear_1 = K,V)
    cross_kv = sum(
        2 * v.size * frames for v in header.variables
        if v.name.startswith("decoder/layer_") and v.name.endswith("attention/linear_1/weight")
        and "self_attention" not in v.name
    )
    dec_linear_all = _linear_weights(header, "decoder/layer_")
    per_token_linear = 2 * (dec_linear_all - cross_kv // (2 * frames))
    per_token_proj = 2 * vocab * d_model
    context = 64  # typical decoded positions attended in self-attention (prompt + text); small term
    per_token_attn = dec_layers * 2 * 2 * (frames + context) * d_model
    per_token = per_token_linear + per_token_proj + per_token_attn
    window_fixed = encoder + cross_kv
    per_second_full = window_fixed / WHISPER_WINDOW_SECONDS + tokens_per_second * per_token
    detail = {
        "encoder_per_window": float(encoder),
        "cross_attention_kv_per_window": float(cross_kv),
        "decoder_per_token": float(per_token),
        "tokens_per_second_assumed": float(tokens_per_second),
        "per_window_fixed": float(window_fixed),
        "per_audio_second_full_windows": float(per_second_full),
        "d_model": float(d_model),
        "encoder_layers": float(enc_layers),
        "decoder_layers": float(dec_layers),
    }
    notes = (
        "estimate: matrix products only (2 FLOPs per multiply-add); the encoder always runs a full 30 s "
        f"window, so a clip of d seconds costs per_window_fixed/d + {tokens_per_second:g} tokens/s x "
        "decoder_per_token per second (short clips cost more per second); greedy decoding, no fallback"
    )
    return detail, notes


def whisper_flops_for_clip(eff: ModelEfficiency, clip_seconds: float) -> float:
    """FLOPs per audio second for one clip of ``clip_seconds`` (<= 30 s pays a whole window)."""
    d = eff.flops_detail
    windows = max(1, math.ceil(clip_seconds / WHISPER_WINDOW_SECONDS))
    return (windows * d["per_window_fixed"]) / clip_seconds + d["tokens_per_second_assumed"] * d["decoder_per_token"]
