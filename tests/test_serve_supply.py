"""Serve-side supply chain: a registry version whose model files changed since they were registered is
not loaded (typed ModelChanged, /readyz says why, requests get 503 model_refused) unless
--allow-changed-model, which loads it and logs a warning. Real Whisper tiny.en from a copied model
directory with one byte of model.bin changed."""

from __future__ import annotations

import dataclasses
import logging
import shutil

import pytest

pytest.importorskip("fastapi")

from serve_helpers import auth, clip, make_keys  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from voxproof.backends._checksum import model_checksum  # noqa: E402
from voxproof.backends.whisper import _MODEL_FILES, _bundled_model_dir  # noqa: E402
from voxproof.registry import Registry  # noqa: E402
from voxproof.security.supply import ModelChanged  # noqa: E402
from voxproof.serve.app import create_app  # noqa: E402
from voxproof.serve.options import ServeOptions  # noqa: E402
from voxproof.serve.workers import load_version, verify_version_model  # noqa: E402


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """(registry, key store, keys, root): production 'w1' serves a copy of the bundled model with one byte
    of model.bin flipped, registered with the original files' checksum."""
    root = tmp_path_factory.mktemp("supply")
    original = _bundled_model_dir()
    copy = root / "model"
    shutil.copytree(original, copy)
    with (copy / "model.bin").open("r+b") as fh:  # a byte among the last weights: still a loadable model
        fh.seek(-1000, 2)
        byte = fh.read(1)
        fh.seek(-1000, 2)
        fh.write(bytes([byte[0] ^ 0x01]))
    recorded = model_checksum(original, [original / name for name in _MODEL_FILES])
    assert model_checksum(copy, [copy / name for name in _MODEL_FILES]) != recorded
    location = str(root / "reg.sqlite")
    with Registry.open(location) as reg:
        reg.register("w1", backend="whisper", actor="setup", model_checksum=recorded,
                     options={"beam_size": 1, "model_path": str(copy)})
        reg.register("w0", backend="whisper", actor="setup", model_checksum=recorded, options={"beam_size": 1})
        reg.promote("w1", actor="setup")
    store, keys = make_keys(root / "keys.sqlite")
    return location, store, keys, root


def _serve(tampered, name: str, **options):
    location, store, _keys, root = tampered
    opts = ServeOptions(request_log=str(root / f"{name}.sqlite"), poll_s=0.2, rate_limit=1000.0, burst=1000,
                        **options)
    return TestClient(create_app(location, opts, store))


def _wait_loaded(client):
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if not body["models"]["production"].endswith(": loading"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"the model did not finish loading: {body}")


def test_changed_model_is_refused_and_readyz_says_why(tampered):
    _location, _store, keys, _root = tampered
    with _serve(tampered, "refused") as client:
        body = _wait_loaded(client)
        r = client.get("/readyz")
        assert r.status_code == 503 and body["status"] == "not ready"
        state = body["models"]["production"]
        assert state.startswith("w1: failed (ModelChanged: model file changed: registry records sha256 "), state
        r = client.post("/v1/audio/transcriptions", headers=auth(keys["transcribe"]),
                        files={"file": ("a.flac", clip())}, data={"model": "production"})
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["code"] == "model_refused" and err["message"].startswith("ModelChanged: ") and "Traceback" not in r.text
        assert client.get("/healthz").status_code == 200  # the process keeps serving


def test_allow_changed_model_loads_it_and_logs_a_warning(tampered, caplog):
    _location, _store, keys, _root = tampered
    with caplog.at_level(logging.WARNING, logger="voxproof.serve.workers"), \
            _serve(tampered, "allowed", allow_changed_model=True) as client:
        body = _wait_loaded(client)
        assert client.get("/readyz").status_code == 200, body
        r = client.post("/v1/audio/transcriptions", headers=auth(keys["transcribe"]),
                        files={"file": ("a.flac", clip())}, data={"model": "production"})
        assert r.status_code == 200 and r.headers["x-voxproof-version"] == "w1" and r.json()["text"]
    warnings = [rec.getMessage() for rec in caplog.records if "allowed by --allow-changed-model" in rec.getMessage()]
    assert len(warnings) == 1 and "version w1" in warnings[0]


def test_unchanged_model_matches_and_unrecorded_is_not_checked(tampered):
    location, _store, _keys, _root = tampered
    with Registry.open(location) as reg:
        good, bad = reg.get("w0"), reg.get("w1")
    model = load_version(good)
    try:
        verify_version_model(good, model)  # the bundled files match what was recorded
        with pytest.raises(ModelChanged):  # the same loaded files against another recorded checksum
            verify_version_model(dataclasses.replace(good, model_checksum="0" * 64), model)
        verify_version_model(dataclasses.replace(bad, model_checksum=None), model)  # nothing recorded: no check
    finally:
        getattr(model, "close", lambda: None)()
