"""Audio: decoding files into mono float32 samples with limits, resampling, and signal features."""

from voxproof.audio.signal import Audio

__all__ = ["Audio"]
