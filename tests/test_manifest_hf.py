"""Hugging Face ``save_to_disk`` datasets as manifests (needs the ``hf`` extra), built from real LibriSpeech
clips in ../shared/data; and the install hint when ``datasets`` is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from voxproof.audio.io import load_audio
from voxproof.errors import UsageError
from voxproof.manifest import dataset_hash, detect_format, read_manifest, validate_manifest

LS = "librispeech-test-other-mini"


def _rows(shared_data: Path, n: int) -> tuple[list[Path], list[str]]:
    files = sorted((shared_data / LS / "audio").glob("*.flac"))[:n]
    texts = dict(
        line.split("\t", 1)
        for line in (shared_data / LS / "transcripts.tsv").read_text().splitlines()
        if line
    )
    return files, [texts[f.stem] for f in files]


@pytest.mark.slow  # importing datasets + pyarrow takes seconds
def test_saved_dataset_dict_reads_with_embedded_audio(shared_data: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    files, texts = _rows(shared_data, 4)
    columns = {
        "audio": [str(f) for f in files],
        "text": texts,
        "speaker_id": [int(f.stem.split("-")[0]) for f in files],
        "id": [f.stem for f in files],
        "chapter": [f.stem.split("-")[1] for f in files],
    }
    ds = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio())
    root = tmp_path / "hf"
    datasets.DatasetDict({"test": ds.select(range(3)), "dev": ds.select([3])}).save_to_disk(str(root))
    assert detect_format(root) == "hf"
    assert validate_manifest(root) == []
    cache = tmp_path / "cache"
    utts = list(read_manifest(root, cache_dir=cache))
    assert [u.id for u in utts] == [f.stem for f in files]
    assert [u.text for u in utts] == texts
    assert [u.tags["split"] for u in utts] == ["test", "test", "test", "dev"]
    assert (
        utts[0].speaker == files[0].stem.split("-")[0]
        and utts[0].tags["chapter"] == files[0].stem.split("-")[1]
    )
    for utt, original in zip(utts, files):
        assert Path(utt.audio).parent == cache / "hf-audio"  # embedded bytes written once, by content hash
        np.testing.assert_array_equal(load_audio(utt.audio).samples, load_audio(original).samples)
    # same audio, same references: same dataset hash as the original files
    assert dataset_hash(utts) == dataset_hash(u.replace(audio=str(f)) for u, f in zip(utts, files))
    assert list(read_manifest(root, cache_dir=cache)) == utts  # second read reuses the cache


def test_saved_dataset_without_ids_or_audio_problems(shared_data: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    files, texts = _rows(shared_data, 2)
    ds = datasets.Dataset.from_dict({"path": [str(files[0]), None], "sentence": texts})
    root = tmp_path / "hf"
    ds.save_to_disk(str(root))
    problems = validate_manifest(root)
    assert problems == [(2, "row 2 has no audio in column 'path'")]
    ok = datasets.Dataset.from_dict({"path": [str(files[0])], "sentence": texts[:1]})
    ok.save_to_disk(str(tmp_path / "ok"))
    (utt,) = read_manifest(tmp_path / "ok")
    assert (utt.id, utt.audio, utt.text) == ("0", str(files[0]), texts[0])


def test_missing_datasets_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "hf"
    root.mkdir()
    (root / "state.json").write_text("{}")
    (root / "dataset_info.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'voxproof\[hf\]'"):
        read_manifest(root)
