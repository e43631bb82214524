"""voxproof: evaluate, audit and gate speech models (ASR and TTS).

Importing this package is cheap: no model runtime (ctranslate2, onnxruntime, pocketsphinx, ray) is
imported until a backend is loaded.
"""

__version__ = "0.1.0"

from voxproof.errors import VoxproofError

__all__ = ["VoxproofError", "__version__"]
