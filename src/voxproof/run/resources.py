"""Resource use of a block of work: wall seconds, CPU seconds, peak resident memory.

Stage: run. The runner wraps a run in :func:`measure_resources` and stores ``ResourceUsage.to_dict()``
in the run's ``resources`` meta; the cost and deployment report read it from there.

Peak RSS: Linux keeps one high-water mark per process (``VmHWM`` in /proc/self/status, the same as
``getrusage().ru_maxrss``). :func:`measure_resources` resets it at the start of the block by writing
``5`` to /proc/self/clear_refs when the kernel allows, so the figure is the peak *of the block*
(``peak_rss_scope == "block"``); when the reset is refused the figure is the process's lifetime peak
(``peak_rss_scope == "process"``), which can only overstate. Memory of child processes is reported
separately (``children_peak_rss_mb``, lifetime of all waited-for children). No psutil needed.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("voxproof.run.resources")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mb() -> float | None:
    """Resident memory now, MB (from /proc/self/status ``VmRSS``); ``None`` off Linux."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    """The process's resident-memory high-water mark, MB (``VmHWM``, else ``ru_maxrss``)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux
    return kb / 1024.0


def reset_peak_rss() -> bool:
    """Reset the process's peak-RSS mark to the current RSS. True when the kernel accepted it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class ResourceUsage:
    """What a block of work used. Seconds and MB; CPU seconds are user + system over all threads
    (so CPU seconds / wall seconds is the average number of busy cores)."""

    wall_seconds: float
    cpu_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    peak_rss_mb: float
    start_rss_mb: float | None
    peak_rss_scope: str  # "block" or "process"
    children_cpu_seconds: float
    children_peak_rss_mb: float

    @property
    def cpu_utilisation(self) -> float:
        """Average busy cores during the block."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_utilisation": self.cpu_utilisation}


class ResourceMeter:
    """Filled in by :func:`measure_resources`; ``usage`` is set when the block ends (``None`` before)."""

    def __init__(self) -> None:
        self.usage: ResourceUsage | None = None
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def measure_resources(reset_peak: bool = True) -> Iterator[ResourceMeter]:
    """Measure wall time, CPU time and peak RSS of the ``with`` block (usage recorded even on error)."""
    scope = "block" if reset_peak and reset_peak_rss() else "process"
    start_rss = current_rss_mb()
    self_start = resource.getrusage(resource.RUSAGE_SELF)
    child_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter = ResourceMeter()
    try:
        yield meter
    finally:
        wall = meter.elapsed()
        self_end = resource.getrusage(resource.RUSAGE_SELF)
        child_end = resource.getrusage(resource.RUSAGE_CHILDREN)
        user = self_end.ru_utime - self_start.ru_utime
        system = self_end.ru_stime - self_start.ru_stime
        children = (child_end.ru_utime - child_start.ru_utime) + (child_end.ru_stime - child_start.ru_stime)
        meter.usage = ResourceUsage(
            wall_seconds=wall,
            cpu_seconds=user + system,
            cpu_user_seconds=user,
            cpu_system_seconds=system,
            peak_rss_mb=peak_rss_mb(),
            start_rss_mb=start_rss,
            peak_rss_scope=scope,
            children_cpu_seconds=children,
            children_peak_rss_mb=child_end.ru_maxrss / 1024.0,
        )
        log.debug("resources: %s", meter.usage)
