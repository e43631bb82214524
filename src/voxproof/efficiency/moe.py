"""Mixture-of-experts bookkeeping shared by every inspector: finding expert weights by name, and the
load balance of the routing a backend reports (which experts each token was sent to)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from voxproof.efficiency.records import MoELayer
from voxproof.errors import UsageError

# "<layer>.experts.3.<rest>", "<layer>/expert_3/<rest>", "<layer>_experts_3_<rest>"
_EXPERT = re.compile(r"^(?P<layer>.*?)[./_]?experts?[./_](?P<idx>\d+)(?:[./_]|$)", re.IGNORECASE)
_ROUTER = re.compile(r"(router|gate|gating)", re.IGNORECASE)


def group_experts(sizes: Mapping[str, int]) -> dict[str, dict[int, int]]:
    """Parameter names -> {layer prefix: {expert index: parameter count}} for names that look like
    ``...experts.<i>...``."""
    out: dict[str, dict[int, int]] = {}
    for name, size in sizes.items():
        m = _EXPERT.match(name)
        if m:
            layer = m.group("layer").rstrip("./_") or "moe"
            experts = out.setdefault(layer, {})
            experts[int(m.group("idx"))] = experts.get(int(m.group("idx")), 0) + int(size)
    return {k: v for k, v in out.items() if len(v) >= 2}


def moe_layers_from_names(
    sizes: Mapping[str, int], top_k: Mapping[str, tuple[int, str]] | tuple[int, str] | None
) -> tuple[MoELayer, ...]:
    """MoE layers found by expert naming. ``top_k`` is one (k, source) for all layers, a per-layer map,
    or ``None`` (unknown). Router parameters are names under the layer prefix matching router/gate."""
    layers = []
    for layer, experts in sorted(group_experts(sizes).items()):
        router = sum(
            s for n, s in sizes.items()
            if n.startswith(layer) and _ROUTER.search(n[len(layer):]) and not _EXPERT.match(n)
        )
        if isinstance(top_k, Mapping):
            k, source = top_k.get(layer, (None, ""))
        elif top_k is None:
            k, source = None, ""
        else:
            k, source = top_k
        layers.append(MoELayer(layer, len(experts), k, sum(experts.values()), router, source))
    return tuple(layers)


@dataclass(frozen=True)
class LoadBalance:
    """How evenly routed tokens spread over experts.

    ``shares[e]`` = share of token-to-expert assignments that went to expert e (sums to 1).
    ``imbalance`` = max load / mean load (1 = perfectly even, ``num_experts`` = all on one).
    ``cv`` = coefficient of variation of the loads; ``entropy`` = normalised entropy of the shares
    (1 = even, 0 = one expert); ``unused_experts`` = experts that got no token.
    ``aux_loss`` = Switch-Transformer balancing loss ``E * sum_e f_e * P_e`` (1 when balanced), only when
    router probabilities are given."""

    num_experts: int
    tokens: int
    top_k: int
    counts: tuple[int, ...]
    shares: tuple[float, ...]
    imbalance: float
    cv: float
    entropy: float
    unused_experts: int
    aux_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expert_load_balance(
    assignments: Sequence[Sequence[int]] | np.ndarray,
    num_experts: int,
    router_probs: np.ndarray | None = None,
) -> LoadBalance:
    """Load balance from routing: ``assignments[t]`` are the expert ids token t was sent to (tokens x k);
    ``router_probs`` (tokens x experts) optionally adds the auxiliary balancing loss."""
    a = np.asarray(assignments)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.size == 0:
        raise UsageError(f"routing assignments must be tokens x k expert ids, got shape {a.shape}")
    if num_experts < 1 or a.min() < 0 or a.max() >= num_experts:
        raise UsageError(f"expert ids must be in 0..{num_experts - 1}; got {int(a.min())}..{int(a.max())}")
    counts = np.bincount(a.ravel().astype(int), minlength=num_experts)
    shares = counts / counts.sum()
    mean = counts.mean()
    nz = shares[shares > 0]
    entropy = float(-(nz * np.log(nz)).sum() / math.log(num_experts)) if num_experts > 1 else 1.0
    aux = None
    if router_probs is not None:
        p = np.asarray(router_probs, dtype=float)
        if p.shape != (a.shape[0], num_experts):
            raise UsageError(f"router_probs must be tokens x experts {(a.shape[0], num_experts)}, got {p.shape}")
        top1 = np.bincount(a[:, 0].astype(int), minlength=num_experts) / a.shape[0]
        aux = float(num_experts * np.sum(top1 * p.mean(axis=0)))
    return LoadBalance(
        num_experts=num_experts,
        tokens=int(a.shape[0]),
        top_k=int(a.shape[1]),
        counts=tuple(int(c) for c in counts),
        shares=tuple(float(s) for s in shares),
        imbalance=float(counts.max() / mean),
        cv=float(counts.std() / mean),
        entropy=entropy,
        unused_experts=int((counts == 0).sum()),
        aux_loss=aux,
    )
