"""Serving stage, per-key rate limit: one token bucket per API key name."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """``rate`` tokens per second up to ``burst``; :meth:`take` returns 0 when a request may go, else the
    seconds until a token is available (the ``Retry-After``)."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.rate
