"""Model backends behind small interfaces, registered by name with lazy ``module:attr`` targets."""

from voxproof.backends.base import BackendInfo, Synthesizer, Transcriber, Transcript, Word
from voxproof.backends.registry import BackendSpec, get_spec, list_backends, load_backend

__all__ = [
    "BackendInfo",
    "BackendSpec",
    "Synthesizer",
    "Transcriber",
    "Transcript",
    "Word",
    "get_spec",
    "list_backends",
    "load_backend",
]
