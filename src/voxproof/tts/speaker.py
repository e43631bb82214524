"""TTS evaluation, speaker judge: does the synthesised voice sound like the target speaker?

``SpeakerJudge`` embeds reference recordings of the target voice once (their L2-normalised mean is the
target), then gives each clip its cosine similarity to the target (row feature ``spk_sim``) and keeps
the clip's embedding (``extras['speaker_embedding']``) for voice consistency across prompts: the mean
cosine similarity between every two clips of one system.

Cosine similarities depend on the embedding model (the same audio scores 0.33 under one and 0.77 under
another), so the judge's description carries the model's checksum and the reference set's hash, and
runs judged with different ones are never compared. ``eer`` is the speaker-verification equal error
rate used to validate the encoder on real speakers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import DataError, NotComparable

log = logging.getLogger("voxproof.tts.speaker")

MAX_REFERENCE_CLIPS = 200


@dataclass(frozen=True)
class SpeakerScore:
    similarity: float
    embedding: np.ndarray


class SpeakerJudge:
    """Cosine similarity of clips to a target voice given by reference recordings."""

    def __init__(self, encoder, reference: Sequence[Audio], *, source: str = "", ids: Sequence[str] = ()):
        embeds = [e for e in (encoder.embed(a) for a in reference) if e is not None]
        if not embeds:
            raise DataError(f"no usable speech in the speaker reference recordings {source!r}")
        raw = np.mean(embeds, axis=0)
        self.encoder = encoder
        self.target = raw / np.linalg.norm(raw)
        digest = hashlib.sha256()
        for e in embeds:
            digest.update(np.round(e, 4).astype(np.float32).tobytes())
        self.reference = {"source": source, "clips": len(embeds), "embedding_hash": digest.hexdigest()[:16],
                          "ids": list(ids)[:20]}

    @classmethod
    def from_source(cls, source: str, encoder=None, limit: int = 20) -> SpeakerJudge:
        """Reference recordings from any manifest ``read_manifest`` accepts (or a folder of audio)."""
        from voxproof.audio.io import DEFAULT_LIMITS, load_audio
        from voxproof.speaker.encoder import SpeakerEncoder

        limit = min(limit, MAX_REFERENCE_CLIPS)
        paths = _reference_paths(source, limit)
        audios = [load_audio(p, limits=DEFAULT_LIMITS) for _, p in paths]
        return cls(encoder or SpeakerEncoder(), audios, source=str(source), ids=[i for i, _ in paths])

    def describe(self) -> dict[str, Any]:
        return {"model": self.encoder.info().to_dict(), "reference": self.reference}

    def score(self, audio: Audio) -> SpeakerScore | None:
        e = self.encoder.embed(audio)
        if e is None:
            return None
        return SpeakerScore(float(np.dot(e, self.target)), e)


def _reference_paths(source: str, limit: int) -> list[tuple[str, str]]:
    from pathlib import Path

    p = Path(source)
    if p.is_dir() and not (p / "transcripts.tsv").exists() and not any(p.glob("*.jsonl")):
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg"))
        return [(f.stem, str(f)) for f in files[:limit]]
    from voxproof.manifest import read_manifest

    return [(u.id, u.audio) for u in read_manifest(source, limit=limit)]


def consistency(embeddings: Sequence[np.ndarray]) -> float | None:
    """Mean cosine similarity over every two clips (None with fewer than two)."""
    if len(embeddings) < 2:
        return None
    m = np.stack([e / np.linalg.norm(e) for e in embeddings])
    sims = m @ m.T
    n = len(embeddings)
    return float((sims.sum() - n) / (n * (n - 1)))


def eer(scores: Sequence[float], same: Sequence[bool]) -> tuple[float, float]:
    """(equal error rate, threshold) of verification scores; ``same`` marks target trials."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(same, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("EER needs both same-speaker and different-speaker trials")
    thresholds = np.unique(s)
    far = np.array([np.mean(s[~y] >= t) for t in thresholds])
    frr = np.array([np.mean(s[y] < t) for t in thresholds])
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2), float(thresholds[k])


def check_speaker_judges(base: Any, cand: Any) -> None:
    """Refuse to compare speaker similarities made with different embedding models or targets: the
    same audio scores 0.33 under one encoder and 0.77 under another."""
    speakers = [((j or {}).get("speaker") or {}) for j in (base, cand)]
    if not any(speakers):
        return
    if not all(speakers):
        raise NotComparable("only one of the two TTS runs has speaker similarity; evaluate both with the "
                            "same --speaker-ref")
    models = [(s.get("model") or {}).get("checksum") for s in speakers]
    if models[0] != models[1]:
        raise NotComparable(f"speaker similarities come from different embedding models (sha256 {str(models[0])[:12]} "
                            f"vs {str(models[1])[:12]}); cosine scores of two encoders are not on one scale")
    refs = [(s.get("reference") or {}).get("embedding_hash") for s in speakers]
    if refs[0] != refs[1]:
        raise NotComparable("speaker similarities were measured against different reference recordings; "
                            "use the same --speaker-ref for both runs")
