"""Efficiency of a model's architecture: parameters, mixture-of-experts activity, FLOPs per audio second.

Stage: metrics side-car. Reads a model's network as the backend ships it (a CTranslate2 model directory,
an ONNX file, or a PyTorch module through a plugin inspector) without running it, and hands on a
:class:`~voxproof.efficiency.records.ModelEfficiency` for the deployment report. Heavy libraries (onnx)
are imported only inside the inspectors that need them.

    from voxproof.efficiency import inspect_model
    eff = inspect_model("/path/to/ctranslate2-whisper-dir")   # or model.onnx, or a torch module
    eff.parameters, eff.active_parameters, eff.flops_per_audio_second
"""

from voxproof.efficiency.inspect import inspect_model, register_inspector
from voxproof.efficiency.moe import LoadBalance, expert_load_balance
from voxproof.efficiency.records import ModelEfficiency, MoELayer, efficiency_to_dict

__all__ = [
    "LoadBalance",
    "MoELayer",
    "ModelEfficiency",
    "efficiency_to_dict",
    "expert_load_balance",
    "inspect_model",
    "register_inspector",
]
