"""Manifests: streams of :class:`Utterance` records, read from common corpus layouts, written as JSONL."""

from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.manifest.hashing import audio_digest, dataset_hash
from voxproof.manifest.jsonl import write_jsonl
from voxproof.manifest.reader import FORMATS, detect_format, read_manifest, validate_manifest
from voxproof.manifest.utterance import SCHEMA_VERSION, Utterance

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "Utterance",
    "audio_digest",
    "bundled_dataset_path",
    "dataset_hash",
    "detect_format",
    "read_manifest",
    "validate_manifest",
    "write_jsonl",
]
