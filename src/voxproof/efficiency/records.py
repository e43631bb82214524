"""Records of the efficiency stage: what a model is made of and how much of it works per token."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MoELayer:
    """One mixture-of-experts layer. ``expert_parameters`` is the total over all experts;
    ``router_parameters`` belong to the gate (always active); ``top_k`` experts run per token."""

    name: str
    num_experts: int
    top_k: int | None
    expert_parameters: int
    router_parameters: int = 0
    top_k_source: str = ""  # where top_k came from: attribute, TopK node, metadata, plugin

    @property
    def active_expert_parameters(self) -> int | None:
        """Expert parameters used per token (top_k of num_experts, experts assumed equal in size)."""
        if self.top_k is None:
            return None
        return round(self.expert_parameters * self.top_k / self.num_experts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active_expert_parameters": self.active_expert_parameters}


@dataclass(frozen=True)
class ModelEfficiency:
    """A model's footprint. ``parameters`` counts trainable-looking floating-point weights once each
    (tied weights once); ``active_parameters`` is what one token uses when MoE layers are present (equal
    to ``parameters`` for a dense model, ``None`` when a MoE layer's top-k is unknown).
    ``flops_per_audio_second`` is an estimate (multiply-add = 2 FLOPs) with its assumptions in
    ``flops_notes``; ``None`` with the reason when not computable."""

    source: str  # "ctranslate2", "onnx", "torch", or a plugin name
    path: str
    architecture: str
    parameters: int
    components: dict[str, int] = field(default_factory=dict)
    dtypes: dict[str, int] = field(default_factory=dict)  # parameter count per storage dtype
    disk_bytes: int | None = None
    moe_layers: tuple[MoELayer, ...] = ()
    flops_per_audio_second: float | None = None
    flops_detail: dict[str, float] = field(default_factory=dict)
    flops_notes: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def is_moe(self) -> bool:
        return bool(self.moe_layers)

    @property
    def total_expert_parameters(self) -> int:
        return sum(layer.expert_parameters for layer in self.moe_layers)

    @property
    def active_parameters(self) -> int | None:
        if not self.moe_layers:
            return self.parameters
        if any(layer.top_k is None for layer in self.moe_layers):
            return None
        inactive = sum(layer.expert_parameters - (layer.active_expert_parameters or 0) for layer in self.moe_layers)
        return self.parameters - inactive

    def to_dict(self) -> dict[str, Any]:
        return efficiency_to_dict(self)


def efficiency_to_dict(eff: ModelEfficiency) -> dict[str, Any]:
    """JSON-ready dict of a :class:`ModelEfficiency` (for summary.json)."""
    return {
        "source": eff.source,
        "path": eff.path,
        "architecture": eff.architecture,
        "parameters": eff.parameters,
        "active_parameters": eff.active_parameters,
        "is_moe": eff.is_moe,
        "total_expert_parameters": eff.total_expert_parameters,
        "components": dict(eff.components),
        "dtypes": dict(eff.dtypes),
        "disk_bytes": eff.disk_bytes,
        "moe_layers": [layer.to_dict() for layer in eff.moe_layers],
        "flops_per_audio_second": eff.flops_per_audio_second,
        "flops_detail": dict(eff.flops_detail),
        "flops_notes": eff.flops_notes,
        "extras": dict(eff.extras),
    }
