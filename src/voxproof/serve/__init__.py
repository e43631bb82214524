"""Serving: ``voxproof serve``, an OpenAI-compatible speech server that routes through the registry.

:func:`voxproof.serve.app.create_app` builds the ASGI app; :func:`voxproof.serve.server.run_server`
runs it under uvicorn with graceful shutdown. Heavy imports (FastAPI, models) happen only there.
"""

from voxproof.serve.options import ServeOptions

__all__ = ["ServeOptions"]
