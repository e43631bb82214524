"""Serving stage, settings: one frozen dataclass for everything ``voxproof serve`` can be told.

The CLI flags are derived from it (:func:`voxproof.cli.derive.dataclass_options`), so the library
defaults and the command-line defaults are the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from voxproof.errors import UsageError
from voxproof.options import bounded, check_ranges

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
    Supply chain: a version whose model files no longer match the checksum the registry recorded is not
    loaded (``/readyz`` says why) unless ``allow_changed_model`` (then it is loaded and a warning logged).
    Every numeric field's valid range is declared on it (:func:`voxproof.options.bounded`) and shown in
    ``voxproof serve --help``.
    """

    host: str = "127.0.0.1"
    port: int = bounded(8000, 0, 65535)
    canary_share: float = bounded(0.0, 0.0, 1.0)
    shadow: str | None = None
    shadow_share: float = bounded(1.0, 0.0, 1.0)
    seed: int = bounded(0, 0, 2**32 - 1)
    poll_s: float = bounded(2.0, 0.0, 3600.0, open_low=True, unit="seconds")
    max_upload_bytes: int = bounded(25 * MIB, 1, 2 * 1024 * MIB, unit="bytes")
    max_audio_s: float = bounded(600.0, 0.0, 4 * 3600.0, open_low=True, unit="seconds")
    request_timeout_s: float = bounded(120.0, 0.0, 86400.0, open_low=True, unit="seconds")
    max_input_chars: int = bounded(4096, 1, 1_000_000)
    decode_concurrency: int = bounded(2, 1, 64)
    max_batch: int = bounded(1, 1, 64)
    max_wait_ms: float = bounded(10.0, 0.0, 10_000.0, unit="ms")
    max_queue: int = bounded(64, 1, 100_000)
    workers: int = bounded(1, 1, 16)
    rate_limit: float = bounded(20.0, 0.0, 1_000_000.0, open_low=True, unit="requests/s")
    burst: int = bounded(40, 1, 1_000_000)
    metrics_public: bool = False
    request_log: str = "requests.sqlite"
    log_text: bool = False
    log_vad: bool = False
    log_buffer: int = bounded(10000, 1, 10_000_000)
    preload: bool = True
    allow_changed_model: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):  # whole-number fields refuse fractions (the CLI parses them as int already)
            value = getattr(self, f.name)
            if f.type in ("int", int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise UsageError(f"option {f.name}={value!r} must be a whole number")
        check_ranges(self)


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
    "allow_changed_model": "Load a version even when its model files differ from the checksum the registry "
                            "recorded (logged as a warning); off, such a version is refused.",
}
