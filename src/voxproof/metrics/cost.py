"""Cost per audio hour and the model's footprint (size on disk, parameters).

Stage: metrics. Turns a run's measured wall time (``resources`` meta) and the audio it processed into
money with a price per machine-hour *given by the user*. voxproof knows no prices: the defaults in
:data:`EXAMPLE_PRICES` are round example figures to show the arithmetic, labelled as examples wherever
they are printed, never facts about any provider.

cost per audio hour = price per machine-hour x (machine seconds used / audio seconds processed),
where machine seconds = wall seconds of the run (all workers share the one machine) and audio seconds
are those of every condition the run decoded (total over total: a run with six noise conditions
decodes each utterance seven times, and its wall clock covers all seven). The figure assumes the
machine does nothing else and is billed only while the run lasts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voxproof.errors import UsageError

#: Example prices per machine-hour (USD) to illustrate the table; NOT quotes from any provider.
EXAMPLE_PRICES: dict[str, float] = {
    "example small 2-vCPU VM": 0.10,
    "example 8-vCPU VM": 0.40,
}
EXAMPLE_NOTE = ("example prices, not quotes: pass --price NAME=USD_PER_MACHINE_HOUR (e.g. --price my-vm=0.05) "
                "to 'voxproof eval' or 'voxproof report' for your own machines")
MAX_PRICE = 1e6  # per machine-hour; anything above is a typo, not a machine


@dataclass(frozen=True)
class CostLine:
    """Cost of processing audio on one priced machine."""

    machine: str
    price_per_machine_hour: float
    currency: str
    machine_seconds: float
    audio_seconds: float
    cost_per_audio_hour: float
    audio_hours_per_machine_hour: float
    is_example: bool
    conditions: int = 1  # conditions whose audio (and machine time) the figure covers

    @property
    def basis(self) -> str:
        return ("total machine time / total audio of the run" if self.conditions == 1 else
                f"total machine time / total audio of all {self.conditions} conditions")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "basis": self.basis}


def cost_per_audio_hour(price_per_machine_hour: float, machine_seconds: float, audio_seconds: float) -> float:
    """Money per hour of audio: price x machine seconds / audio seconds."""
    if not math.isfinite(price_per_machine_hour) or price_per_machine_hour < 0:
        raise UsageError(f"price per machine-hour {price_per_machine_hour} must not be negative")
    if audio_seconds <= 0 or machine_seconds < 0:
        raise UsageError(f"need positive audio seconds (got {audio_seconds}) and machine seconds >= 0")
    return price_per_machine_hour * machine_seconds / audio_seconds


def cost_table(
    machine_seconds: float,
    audio_seconds: float,
    prices: Mapping[str, float] | None = None,
    currency: str = "USD",
    *,
    conditions: int = 1,
) -> list[CostLine]:
    """One :class:`CostLine` per priced machine; ``prices=None`` (or empty) uses :data:`EXAMPLE_PRICES`
    (marked). ``audio_seconds`` must be the audio of every condition ``machine_seconds`` covers."""
    prices = prices or None
    is_example = prices is None
    table = EXAMPLE_PRICES if prices is None else prices
    out = []
    for name, price in table.items():
        c = cost_per_audio_hour(float(price), machine_seconds, audio_seconds)
        out.append(
            CostLine(
                name, float(price), currency, machine_seconds, audio_seconds, c,
                audio_seconds / machine_seconds if machine_seconds > 0 else float("inf"), is_example,
                conditions,
            )
        )
    return out


def parse_prices(pairs: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``["my-vm=0.12", ...]`` -> ``{"my-vm": 0.12}`` (USD per machine-hour); a pair without a name, a
    price that is not a finite number in [0, 1e6], or a name given twice raises :class:`UsageError`."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.rpartition("=")
        name = name.strip()
        try:
            if not sep or not name or "\x00" in name or len(name) > 100:
                raise ValueError
            price = float(value)
        except ValueError:
            raise UsageError(f"--price {pair!r} must look like NAME=USD_PER_MACHINE_HOUR, e.g. my-vm=0.12") from None
        if not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
            raise UsageError(f"--price {pair!r}: the price must be a number from 0 to {MAX_PRICE:g} per machine-hour")
        if name in out:
            raise UsageError(f"--price names {name!r} twice; give each machine once")
        out[name] = price
    return out


def run_audio_seconds(store: Any) -> tuple[float, int]:
    """Audio seconds of every row of a run store (all conditions) and the number of conditions."""
    total, conditions = 0.0, set()
    for row in store.rows():
        conditions.add(row.condition)
        total += row.audio_duration or 0.0
    return total, max(1, len(conditions))


def disk_size_bytes(path: str | os.PathLike[str]) -> int:
    """Size on disk of a model file or directory (all files under it), bytes."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    if not p.is_dir():
        raise UsageError(f"model path {p} does not exist")
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def cost_to_dict(lines: list[CostLine]) -> dict[str, Any]:
    """JSON-ready cost table with the example caveat when example prices were used."""
    return {
        "lines": [line.to_dict() for line in lines],
        "formula": "price per machine-hour x machine seconds / audio seconds",
        "basis": lines[0].basis if lines else None,
        "note": EXAMPLE_NOTE if any(line.is_example for line in lines) else "prices given by the user",
    }
