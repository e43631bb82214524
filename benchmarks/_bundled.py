"""The bundled LibriSpeech test-other mini set (50 utterances) as voxproof Utterances, for the benchmarks.

Uses voxproof's manifest reader when it is available, else reads the folder's transcripts.tsv directly.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("VOXPROOF_SHARED_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root / "librispeech-test-other-mini"


def bundled_utterances():
    from voxproof.manifest.utterance import Utterance

    folder = data_dir()
    try:
        from voxproof.manifest import read_manifest

        return list(read_manifest(folder))
    except ImportError:
        pass
    out = []
    for line in (folder / "transcripts.tsv").read_text().splitlines():
        if not line.strip():
            continue
        utt_id, text = line.split("\t", 1)
        out.append(Utterance(id=utt_id, audio=str(folder / "audio" / f"{utt_id}.flac"), text=text,
                             speaker=utt_id.split("-")[0]))
    return out
