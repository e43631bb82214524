"""Serving stage, errors: every failure a client can see, as an OpenAI-shaped body.

``{"error": {"message", "type", "param", "code"}}`` with the HTTP status; voxproof's typed errors
(:mod:`voxproof.errors`) are translated here, at the edge, so a request never ends in a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxproof.errors import (
    AudioError,
    AudioTooLarge,
    BackendError,
    EmptyAudio,
    UnsupportedAudio,
    UsageError,
    VoxproofError,
)
from voxproof.security.supply import ModelChanged, UnsafeModelFormat


@dataclass(eq=False)  # not frozen: Starlette sets __traceback__ on exceptions it passes on
class ApiError(Exception):
    """An HTTP error answer. ``type`` as OpenAI names them (``invalid_request_error``...)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.retry_after is not None:
            out["Retry-After"] = str(max(1, round(self.retry_after + 0.499)))
        if self.status == 401:
            out["WWW-Authenticate"] = "Bearer"
        return out


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


def from_voxproof(exc: VoxproofError, param: str | None = "file") -> ApiError:
    """The answer for a typed voxproof error raised while handling a request."""
    name = type(exc).__name__
    message = f"{name}: {exc}"
    if isinstance(exc, AudioTooLarge):
        return ApiError(400, message, "invalid_request_error", param, "audio_too_long")
    if isinstance(exc, UnsupportedAudio):
        return ApiError(400, message, "invalid_request_error", param, "unsupported_audio")
    if isinstance(exc, EmptyAudio):
        return ApiError(400, message, "invalid_request_error", param, "empty_audio")
    if isinstance(exc, AudioError):
        return ApiError(400, message, "invalid_request_error", param, "invalid_audio")
    if isinstance(exc, UsageError):
        return ApiError(400, message, "invalid_request_error", None, "invalid_value")
    if isinstance(exc, (ModelChanged, UnsafeModelFormat)):  # the version was refused at load
        return ApiError(503, message, "server_error", "model", "model_refused")
    if isinstance(exc, BackendError):
        return ApiError(502, message, "server_error", None, "backend_error")
    return ApiError(500, message, "server_error", None, "internal_error")


def internal_error() -> ApiError:
    """What an unexpected exception becomes: no traceback, no internals."""
    return ApiError(500, "the server failed on this request; it is logged and the server keeps serving",
                    "server_error", None, "internal_error")
