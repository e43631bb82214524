"""Manifest reader for Hugging Face ``datasets`` saved with ``save_to_disk`` (a ``Dataset`` or a
``DatasetDict``; each split's rows get a ``split`` tag). Needs the ``hf`` extra, imported lazily.

The audio column is the first column with an ``Audio`` feature (else one named like ``audio``/``path``).
``save_to_disk`` embeds the audio bytes in the Arrow files, and every voxproof stage reads audio from a
path, so embedded bytes are written once into a content-addressed cache
(``<cache_dir>/hf-audio/<sha256>.<ext>``, default ``~/.cache/voxproof``); rows that only hold a path
use it directly (relative to the dataset folder). The id comes from an ``id``-like column, else
``<split>-<row>``; other scalar columns become tags. Problems are numbered by 1-based row.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxproof.errors import DataError, UsageError
from voxproof.manifest.entries import (
    ID_KEYS,
    LANGUAGE_KEYS,
    SPEAKER_KEYS,
    TEXT_KEYS,
    Entry,
    Problem,
    pick,
    resolve_audio,
    tag_value,
)
from voxproof.manifest.utterance import Utterance

_AUDIO_NAMES = ("audio", "path", "audio_path", "audio_filepath", "file", "wav")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "voxproof"


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())
    )


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise UsageError(
            "reading a Hugging Face dataset needs the 'datasets' package; install it with "
            "pip install 'voxproof[hf]'"
        ) from exc
    return datasets


def read_hf(root: Path, *, materialize: bool = True, cache_dir: Path | None = None) -> Iterator[Entry]:
    """Entries of a saved dataset. With ``materialize=False`` (the checking pass) embedded audio is not
    written out and utterances point at a placeholder."""
    datasets = _datasets()
    try:
        loaded = datasets.load_from_disk(str(root))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, pyarrow errors...
        raise DataError(f"cannot load the Hugging Face dataset at {root}: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded.items())
    else:
        splits = [(None, loaded)]
    audio_cache = (cache_dir or default_cache_dir()) / "hf-audio"
    number = 0
    for split, ds in splits:
        audio_col = _audio_column(ds, datasets)
        if audio_col is None:
            yield Entry(
                0,
                Problem(
                    f"split {split or '(default)'} has no audio column; columns are {list(ds.column_names)}"
                ),
            )
            number += len(ds)
            continue
        if isinstance(ds.features[audio_col], datasets.Audio):
            ds = ds.cast_column(audio_col, datasets.Audio(decode=False))
        for index, row in enumerate(ds):
            number += 1
            yield _entry(number, index, split, row, audio_col, root, audio_cache if materialize else None)


def _audio_column(ds: Any, datasets: Any) -> str | None:
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Audio):
            return str(name)
    key, _ = pick(dict.fromkeys(ds.column_names, None), _AUDIO_NAMES)
    return key


def _entry(
    number: int,
    index: int,
    split: str | None,
    row: dict[str, Any],
    audio_col: str,
    root: Path,
    audio_cache: Path | None,
) -> Entry:
    value = row.get(audio_col)
    audio: str | None = None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            audio = _cached(data, path, audio_cache) if audio_cache else f"<embedded audio, row {index + 1}>"
        elif path:
            audio = resolve_audio(str(path), root)
    elif isinstance(value, str) and value.strip():
        audio = resolve_audio(value, root)
    if audio is None:
        return Entry(
            number,
            Problem(
                f"row {index + 1}{f' of split {split}' if split else ''} has no audio in column {audio_col!r}"
            ),
        )
    id_key, utt_id = pick(row, ID_KEYS)
    text_key, text = pick(row, TEXT_KEYS)
    spk_key, speaker = pick(row, SPEAKER_KEYS)
    lang_key, language = pick(row, LANGUAGE_KEYS)
    used = {k for k in (audio_col, id_key, text_key, spk_key, lang_key) if k}
    tags = {}
    for key, val in row.items():
        if key in used or isinstance(val, (dict, list, bytes)):
            continue
        tagged = tag_value(val)
        if tagged is not None:
            tags[key] = tagged
    if split is not None:
        tags.setdefault("split", split)
    if utt_id is None or not str(utt_id).strip():
        utt_id = f"{split}-{index}" if split else str(index)
    utt = Utterance(
        id=str(utt_id),
        audio=audio,
        text=None if text is None else str(text),
        speaker=None if speaker is None else str(speaker),
        language=None if language is None else str(language),
        tags=tags,
    )
    return Entry(number, utt)


def _cached(data: bytes, name: str | None, cache: Path) -> str:
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(name).suffix.lower()[:10] if name else ""
    target = cache / f"{digest}{suffix}"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return str(target)
