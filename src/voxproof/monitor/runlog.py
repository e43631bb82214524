"""Request-log rows from an evaluation run: what a log would hold had the run's audio been served.

Stage: between the run store and the monitor. :func:`rows_from_run` turns each stored result row into a
request-log row of the documented schema (signal features, word confidences, words per second, status),
with two extra keys (``x_utt_id``, ``x_condition``) that readers ignore and the validation benchmark uses
to join an estimate to the truth. It is also the worked example of a team writing its own log.

Fields the run does not know are stated, not invented: ``latency_s`` is the backend call plus the
decode/perturbation time of the run (no queue), ``sample_rate`` is the rate the model heard, ``codec`` the
codec of the condition's chain (``pcm`` when the chain has none).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxproof.run.records import ResultRow
from voxproof.run.store import RunStore

log = logging.getLogger("voxproof.monitor")


def _codec(chain: tuple[dict[str, Any], ...]) -> str:
    for step in chain:
        if step.get("kind") in ("codec", "telephone") and step.get("codec"):
            return str(step["codec"])
    return "pcm"


def log_row(row: ResultRow, *, ts: float, version: str, route: str = "main", request_id: str | None = None,
            sample_rate: int = 16000, include_text: bool = False) -> dict[str, Any]:
    """One request-log row (a dict of the schema's keys) for a stored result row."""
    words = list(row.transcript.words) if row.transcript is not None else []
    confs = [float(w.confidence) for w in words if w.confidence is not None]
    f = row.features or {}
    audio_s = row.audio_duration if row.audio_duration is not None else f.get("duration_s")
    n_words = len(words) if row.transcript is not None else (len((row.hypothesis or "").split()) if row.ok else 0)
    prep = float((row.extras or {}).get("prep_time") or 0.0)
    rid = request_id or hashlib.sha256(f"{version}\x1f{row.condition}\x1f{row.utt_id}".encode()).hexdigest()[:32]
    return {
        "ts": ts,
        "request_id": rid,
        "key_name": None,
        "endpoint": "transcriptions",
        "model": "production" if route == "main" else version,
        "version": version,
        "route": route,
        "status": 200 if row.ok else 500,
        "error_type": None if row.ok else (row.error_type or "BackendError"),
        "latency_s": None if row.processing_time is None else row.processing_time + prep,
        "queue_s": 0.0,
        "decode_s": prep,
        "model_s": row.processing_time,
        "audio_s": audio_s,
        "sample_rate": sample_rate,
        "codec": _codec(row.perturbation),
        "rms_dbfs": f.get("rms_dbfs"),
        "snr_db": f.get("snr_db"),
        "speech_ratio": f.get("speech_ratio"),
        "clipping_ratio": f.get("clipping_ratio"),
        "bandwidth_hz": f.get("bandwidth_hz"),
        "conf_mean": sum(confs) / len(confs) if confs else None,
        "conf_min": min(confs) if confs else None,
        "words": n_words if row.ok else None,
        "words_per_s": (n_words / audio_s) if row.ok and audio_s else None,
        "output_chars": len(row.hypothesis or "") if row.ok else None,
        "text": (row.hypothesis if include_text else None),
        "word_confs": json.dumps([round(c, 5) for c in confs]) if confs else None,
        "x_utt_id": row.utt_id,
        "x_condition": row.condition,
    }


def rows_from_run(run_dir: str | Path, *, condition: str | None = None, version: str = "run",
                  start_ts: float = 0.0, every_s: float = 1.0, route: str = "main",
                  include_text: bool = False) -> Iterator[dict[str, Any]]:
    """Request-log rows for every stored row of the run (or one ``condition``), one every ``every_s``
    seconds from ``start_ts``, in the run's order."""
    with RunStore.open(run_dir) as store:
        for i, row in enumerate(store.rows(condition=condition)):
            yield log_row(row, ts=start_ts + i * every_s, version=version, route=route, include_text=include_text)
