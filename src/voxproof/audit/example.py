"""A small audit example with planted defects, built from the bundled LibriSpeech utterances (CC BY 4.0).

    python3 -m voxproof.audit.example DIR    # writes DIR/train.jsonl, DIR/test.jsonl and DIR/audio/

Stage: audit (example data). Nothing is downloaded: every clip is a bundled recording or made from one.

- train: 12 utterances (the first four of speakers 1688, 1998 and 2033), plus
  - ``1688-142285-0000-copy``: an MP3 copy of the first utterance under a new id and speaker;
  - ``clipped``: the second utterance amplified 8x and hard clipped;
  - ``nc-interview``: an item under a non-commercial licence whose transcript holds an e-mail address and a
    phone number.
- test: three utterances of speaker 3080, one of training speaker 1688 (a speaker in both splits) and a
  lossless WAV copy of a training utterance under a new id (the same audio and transcript in both splits).

Audio paths in the manifests are relative to DIR, so the folder can be moved.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voxproof.errors import UsageError
from voxproof.manifest.bundled import bundled_dataset_path

log = logging.getLogger("voxproof.audit.example")

LICENCE = "CC BY 4.0"
NC_LICENCE = "CC BY-NC 4.0"
TRAIN_SPEAKERS = ("1688", "1998", "2033")
PII_SUFFIX = " WRITE TO JANE DOT DOE AT EXAMPLE DOT COM OR CALL FIVE FIVE FIVE ONE TWO THREE FOUR"


@dataclass(frozen=True)
class ExampleCorpus:
    """Where the example was written and what was planted (item id -> what is wrong with it)."""

    train: Path
    test: Path
    planted: dict[str, str]


def _rows(folder: Path) -> list[tuple[str, str, str]]:
    """(id, speaker, gender) for every bundled utterance, sorted by id."""
    lines = (folder / "utt_info.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    idx = {name: header.index(name) for name in ("id", "speaker", "gender")}
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return sorted((r[idx["id"]], r[idx["speaker"]], r[idx["gender"]]) for r in rows)


def _item(uid: str, audio: str, text: str, speaker: str, gender: str, licence: str = LICENCE) -> dict:
    return {"id": uid, "audio": audio, "text": text, "speaker": speaker, "language": "en",
            "tags": {"gender": gender, "licence": licence, "source": "LibriSpeech test-other"}}


def build_example(out_dir: str | os.PathLike[str]) -> ExampleCorpus:
    """Write the example to ``out_dir`` (created; an existing train.jsonl or test.jsonl is refused)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder; give a new or empty folder for the example")
    for name in ("train.jsonl", "test.jsonl"):
        if (out / name).exists():
            raise UsageError(f"{out / name} already exists; give a new folder for the example or delete it")
    bundled = bundled_dataset_path()
    texts = dict(line.split("\t", 1) for line in
                 (bundled / "transcripts.tsv").read_text(encoding="utf-8").splitlines() if line.strip())
    rows = _rows(bundled)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)

    def copy(uid: str, name: str | None = None) -> str:
        target = audio_dir / (name or f"{uid}.flac")
        target.write_bytes((bundled / "audio" / f"{uid}.flac").read_bytes())
        return f"audio/{target.name}"

    by_speaker: dict[str, list[tuple[str, str]]] = {}
    for uid, speaker, gender in rows:
        by_speaker.setdefault(speaker, []).append((uid, gender))
    train = [_item(uid, copy(uid), texts[uid], spk, gender)
             for spk in TRAIN_SPEAKERS for uid, gender in by_speaker[spk][:4]]
    planted: dict[str, str] = {}

    first, second = train[0], train[1]
    x, sr = sf.read(bundled / "audio" / f"{first['id']}.flac", dtype="float32")
    sf.write(audio_dir / "copy.mp3", x, sr, format="MP3")
    train.append({**first, "id": f"{first['id']}-copy", "audio": "audio/copy.mp3", "speaker": "uploader-7"})
    planted[f"{first['id']}-copy"] = "MP3 copy of a training item under a new id and speaker (near duplicate)"

    x, sr = sf.read(bundled / "audio" / f"{second['id']}.flac", dtype="float32")
    sf.write(audio_dir / "clipped.wav", np.clip(8.0 * x, -1.0, 1.0), sr, subtype="PCM_16")
    train.append({**second, "id": "clipped", "audio": "audio/clipped.wav"})
    planted["clipped"] = "amplified 8x and hard clipped"

    # the longest remaining utterance, so the added words do not make the transcript too fast for the audio
    nc_id, nc_gender = max(by_speaker["2033"][4:], key=lambda row: len(texts[row[0]]))
    train.append(_item("nc-interview", copy(nc_id, "nc-interview.flac"), texts[nc_id] + PII_SUFFIX, "2033",
                       nc_gender, licence=NC_LICENCE))
    planted["nc-interview"] = "non-commercial licence; e-mail address and phone number in the transcript"

    test = [_item(uid, copy(uid), texts[uid], "3080", gender) for uid, gender in by_speaker["3080"][:3]]
    shared_uid, shared_gender = by_speaker["1688"][5]
    test.append(_item(shared_uid, copy(shared_uid), texts[shared_uid], "1688", shared_gender))
    planted[shared_uid] = "test utterance of training speaker 1688"
    leaked = train[5]
    x16, sr = sf.read(bundled / "audio" / f"{leaked['id']}.flac", dtype="int16")
    sf.write(audio_dir / "test-0099.wav", x16, sr, subtype="PCM_16")
    test.append({**leaked, "id": "test-0099", "audio": "audio/test-0099.wav", "speaker": "guest-2"})
    planted["test-0099"] = f"lossless copy of training item {leaked['id']} (same audio and transcript)"

    corpus = ExampleCorpus(out / "train.jsonl", out / "test.jsonl", planted)
    for path, items in ((corpus.train, train), (corpus.test, test)):
        path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    log.info("audit example: %d train and %d test items in %s", len(train), len(test), out)
    return corpus


if __name__ == "__main__":
    from voxproof.cli.audit_example import main

    raise SystemExit(main())
