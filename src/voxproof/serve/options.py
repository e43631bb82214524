"""Serving stage, settings: one frozen dataclass for everything ``voxproof serve`` can be told.

The CLI flags are derived from it (:func:`voxproof.cli.derive.dataclass_options`), so the library
defaults and the command-line defaults are the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxproof.errors import UsageError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeOptions:
    """How the server routes, limits and logs requests. Units: seconds, bytes, requests per second.

    Routing: a request for ``production`` goes to the ``canary`` version with probability
    ``canary_share``, decided by a hash of the API key's name and ``seed`` (so one key sees one
    version). ``shadow`` names a version that also runs a ``shadow_share`` sample of transcription
    requests off the request path; its results are logged (route ``shadow``), never returned.
    ``poll_s``: how often the registry (aliases) and the key store are re-read.

    Limits: ``max_upload_bytes`` (413 over it), ``max_audio_s`` decoded duration (enforced while
    decoding), ``request_timeout_s`` (504), ``max_input_chars`` for speech, ``decode_concurrency``
    uploads decoded at once (bounds memory). Batching: up to ``max_batch`` queued transcriptions of one
    version are decoded together after waiting at most ``max_wait_ms`` for the batch to fill (through
    the backend's batch path when it has one and ``max_batch`` > 1); at most ``max_queue`` wait per
    version, beyond that 429 with Retry-After. ``workers``: model instances (threads) per version.
    Rate limit: a token bucket per key, ``rate_limit`` requests per second, ``burst`` at once.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    canary_share: float = 0.0
    shadow: str | None = None
    shadow_share: float = 1.0
    seed: int = 0
    poll_s: float = 2.0
    max_upload_bytes: int = 25 * MIB
    max_audio_s: float = 600.0
    request_timeout_s: float = 120.0
    max_input_chars: int = 4096
    decode_concurrency: int = 2
    max_batch: int = 1
    max_wait_ms: float = 10.0
    max_queue: int = 64
    workers: int = 1
    rate_limit: float = 20.0
    burst: int = 40
    metrics_public: bool = False
    request_log: str = "requests.sqlite"
    log_text: bool = False
    log_vad: bool = False
    log_buffer: int = 10000
    preload: bool = True

    def __post_init__(self) -> None:
        _check(0.0 <= self.canary_share <= 1.0, f"canary_share={self.canary_share} must be between 0 and 1")
        _check(0.0 <= self.shadow_share <= 1.0, f"shadow_share={self.shadow_share} must be between 0 and 1")
        _check(0 < self.port < 65536 or self.port == 0, f"port={self.port} must be 0-65535")
        for name in ("poll_s", "max_audio_s", "request_timeout_s", "rate_limit"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and math.isfinite(value) and value > 0,
                   f"{name}={value!r} must be a positive finite number")
        _check(math.isfinite(self.max_wait_ms) and self.max_wait_ms >= 0,
               f"max_wait_ms={self.max_wait_ms!r} must be 0 or more")
        for name in ("max_upload_bytes", "max_input_chars", "decode_concurrency", "max_batch", "max_queue",
                     "workers", "burst", "log_buffer"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name}={value!r} must be a whole number >= 1")
        _check(self.max_batch <= 64 and self.workers <= 16 and self.max_queue <= 100_000,
               "max_batch <= 64, workers <= 16 and max_queue <= 100000")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(f"serve option {message}")


SERVE_HELP = {
    "host": "Interface to listen on (default loopback only).",
    "port": "TCP port (0 = any free port).",
    "canary_share": "Share of 'production' requests routed to the 'canary' alias, sticky per API key.",
    "shadow": "Version that also runs sampled transcription requests off the request path (logged only).",
    "shadow_share": "Share of transcription requests mirrored to --shadow.",
    "seed": "Seed of the canary and shadow hashes.",
    "poll_s": "Seconds between re-reads of the registry aliases and the key store.",
    "max_upload_bytes": "Largest upload accepted (413 beyond).",
    "max_audio_s": "Longest decoded audio accepted, enforced while decoding (400 beyond).",
    "request_timeout_s": "Per-request time limit (504 beyond).",
    "max_input_chars": "Longest speech input text (400 beyond).",
    "decode_concurrency": "Uploads decoded at the same time (bounds memory).",
    "max_batch": "Most transcriptions of one version decoded together (1 = one by one).",
    "max_wait_ms": "Longest wait for a batch to fill, milliseconds.",
    "max_queue": "Requests waiting per version before 429.",
    "workers": "Model instances (threads) per version.",
    "rate_limit": "Requests per second per API key (token bucket).",
    "burst": "Token bucket size per API key.",
    "metrics_public": "Serve /metrics without an admin key.",
    "request_log": "Request log: SQLite file, postgresql:// URL, or .jsonl file.",
    "log_text": "Store transcripts in the request log (PII redacted).",
    "log_vad": "Compute speech_ratio (Silero VAD) for the request log (costs ~0.1x real time of CPU and the "
               "GIL in the server process; off, speech_ratio is null).",
    "log_buffer": "Rows the request-log buffer holds before it drops (counted).",
    "preload": "Load the production, canary and shadow models before reporting ready.",
}
