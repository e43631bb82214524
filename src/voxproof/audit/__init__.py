"""Dataset audit: find what is wrong with speech data before it trains or judges a model.

Stages (one module each): ``signal``/``quality`` (decoding and signal measures), ``transcript``,
``fingerprint``/``duplicates``, ``contamination``, ``coverage``, ``licences``, ``pii``; ``analyse`` fans
the per-file work out over a process pool with a resumable cache; ``runner.run_audit`` ties them together;
``report``, ``datasheet`` and ``fix`` write the outputs.
"""

from __future__ import annotations

from voxproof.audit.findings import SEVERITIES, Finding

__all__ = ["SEVERITIES", "AuditOptions", "AuditResult", "Finding", "run_audit"]


def __getattr__(name: str):
    if name in ("AuditOptions", "AuditResult", "run_audit"):
        from voxproof.audit import runner

        return getattr(runner, name)
    raise AttributeError(name)
