"""Serving stage, the process: uvicorn running the app, with graceful shutdown.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish (up to
``graceful_s``); then the app's lifespan ends, which drains the model queues and flushes the request log.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from voxproof.serve.keys import KeyStore
from voxproof.serve.options import ServeOptions

log = logging.getLogger("voxproof.serve")


def run_server(registry: str | Path, options: ServeOptions, keys: KeyStore, *, graceful_s: float = 30.0,
               on_started: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``on_started(port)`` is called once the socket listens."""
    import uvicorn

    from voxproof.serve.app import create_app

    app = create_app(registry, options, keys)
    # loop="asyncio", never uvloop: libuv runs expired timers before reading sockets, so after a model call
    # that held the GIL past the 5 s keep-alive timeout the idle-connection timer closes a connection
    # whose next request is already waiting (the client sees "connection reset"); asyncio reads first.
    # The HTTP parser is httptools when installed (the serve extra), else h11.
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=graceful_s, lifespan="on", loop="asyncio")
    server = uvicorn.Server(config)

    if on_started is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                port = server.servers[0].sockets[0].getsockname()[1] if server.servers else options.port
                on_started(port)

        server.startup = startup  # type: ignore[method-assign]
    # uvicorn re-raises the stop signal after its graceful shutdown, through the handler that was
    # installed before it started: make that a no-op so a stop is a clean exit (status 0), not a kill.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_args: None)
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
