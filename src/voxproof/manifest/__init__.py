"""Manifests: streams of :class:`Utterance` records, read from common corpus layouts, written as JSONL."""

from voxproof.manifest.utterance import SCHEMA_VERSION, Utterance

__all__ = ["SCHEMA_VERSION", "Utterance"]
