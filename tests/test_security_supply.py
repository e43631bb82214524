"""Model supply chain: a changed model file is refused by eval with both checksums named, the override
is recorded in provenance, and pickle-format model files are refused unless allowed."""

from __future__ import annotations

import json
import pickle
import sqlite3
import zipfile

import pytest

from voxproof.backends.base import BackendInfo
from voxproof.errors import UsageError
from voxproof.security.supply import (
    ModelChanged,
    UnsafeModelFormat,
    check_model_format,
    is_pickle_file,
    verify_model_checksum,
)

A, B = "a" * 64, "b" * 64


def _info(checksum):
    return BackendInfo("x", "asr", "/nowhere", checksum, {})


def test_verify_model_checksum():
    assert verify_model_checksum(_info(A), A).status == "match"
    assert verify_model_checksum(_info(A), None).status == "not-recorded"
    with pytest.raises(ModelChanged) as exc:
        verify_model_checksum(_info(B), A)
    assert A in str(exc.value) and B in str(exc.value)
    assert verify_model_checksum({"model_checksum": B}, A, allow_changed=True).status == "overridden"
    for bad in ("xyz", "\x00" * 64, "a" * 63):
        with pytest.raises(UsageError):
            verify_model_checksum(_info(A), bad)


def test_pickle_files_refused_unless_allowed(tmp_path):
    (tmp_path / "weights.onnx").write_bytes(b"\x08\x07onnx")
    raw = tmp_path / "model.bin"
    raw.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    torch_like = tmp_path / "ckpt.zip"
    with zipfile.ZipFile(torch_like, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(1))
    assert is_pickle_file(raw) and is_pickle_file(torch_like) and not is_pickle_file(tmp_path / "weights.onnx")
    with pytest.raises(UnsafeModelFormat):
        check_model_format(tmp_path)
    assert set(check_model_format(tmp_path, allow_pickle=True)) == {str(raw), str(torch_like)}
    assert check_model_format(tmp_path / "weights.onnx") == ()


def _changed_whisper_copy(tmp_path):
    from voxproof.backends.whisper import _MODEL_FILES, _bundled_model_dir

    src = _bundled_model_dir()
    dst = tmp_path / "model"
    dst.mkdir()
    for name in _MODEL_FILES:
        if name == "config.json":
            (dst / name).write_text((src / name).read_text() + "\n")  # one changed byte
        else:
            (dst / name).symlink_to(src / name)
    return dst


def test_eval_refuses_changed_model_and_records_override(tmp_path, capsys):
    from voxproof.backends.registry import load_backend
    from voxproof.cli.main import main
    from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl

    expected = load_backend("whisper", kind="asr").info().model_checksum
    model_dir = _changed_whisper_copy(tmp_path)
    # short clips Whisper tiny.en gets partly wrong (a run with no wrong word has no calibration AUROC)
    ids = {"1688-142285-0002", "1998-15444-0008", "367-130732-0006"}
    write_jsonl([u for u in read_manifest(bundled_dataset_path()) if u.id in ids], tmp_path / "m.jsonl")
    base = ["eval", "-m", "whisper", "-O", f"model_path={model_dir}", "-d", str(tmp_path / "m.jsonl"),
            "--json-only", "--features", "none", "--expect-checksum", expected]
    assert main(base + ["-o", str(tmp_path / "refused")]) == 3
    err = capsys.readouterr().err
    assert "ModelChanged" in err and expected in err
    assert not (tmp_path / "refused" / "run.sqlite").exists()
    assert main(base + ["-o", str(tmp_path / "over"), "--allow-changed-model"]) == 0
    con = sqlite3.connect(tmp_path / "over" / "run.sqlite")
    prov = json.loads(con.execute("SELECT value FROM meta WHERE key='provenance'").fetchone()[0])
    assert prov["model_verification"]["status"] == "overridden"
    assert prov["model_verification"]["expected"] == expected != prov["model_verification"]["actual"]
