"""A one-line progress bar with ETA on a terminal; silent when stderr is not a terminal or CI is set."""

from __future__ import annotations

import os
import sys
import time

from voxproof.run.runner import Progress


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


class StatusLine:
    """One overwritten status line (``label: message``) for work whose total is not known in advance,
    such as an audit streaming its manifest; silent when stderr is not a terminal or CI is set."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = _interactive() if enabled is None else enabled
        self._width = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        text = f"{self.label}: {message}"
        sys.stderr.write("\r" + text.ljust(self._width))
        sys.stderr.flush()
        self._width = max(self._width, len(text))

    def close(self) -> None:
        if self.enabled and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


class ProgressBar:
    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = _interactive() if enabled is None else enabled
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and p.done < p.total:
            return
        self._last = now
        new = p.done - p.skipped
        elapsed = now - p.started
        remaining = p.total - p.done
        eta = elapsed / new * remaining if new else None
        width = 30
        filled = int(width * p.done / max(p.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        eta_txt = "--:--" if eta is None else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        sys.stderr.write(
            f"\r{self.label} [{bar}] {p.done}/{p.total} errors {p.errors} ETA {eta_txt} "
        )
        if p.done >= p.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
