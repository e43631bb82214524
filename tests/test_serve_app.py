"""voxproof serve in process (Starlette TestClient over the ASGI app): endpoints, OpenAI shapes, auth over
every route, admin changes, alias changes without restart, hostile uploads. Real Whisper and eSpeak."""

from __future__ import annotations

import io
import json
import sqlite3
import time

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from serve_helpers import SHORT, auth, clip, ffmpeg, make_keys, make_registry, wait_ready  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from voxproof.registry import Registry  # noqa: E402
from voxproof.serve.app import create_app  # noqa: E402
from voxproof.serve.options import MIB, ServeOptions  # noqa: E402
from voxproof.serve.requestlog import COLUMNS  # noqa: E402

PROTECTED = [
    ("post", "/v1/audio/transcriptions", "transcribe"),
    ("post", "/v1/audio/speech", "synthesize"),
    ("get", "/v1/models", None),
    ("get", "/metrics", "admin"),
    ("post", "/admin/promote", "admin"),
    ("post", "/admin/rollback", "admin"),
    ("post", "/admin/canary", "admin"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    registry = make_registry(root / "reg.sqlite")
    store, keys = make_keys(root / "keys.sqlite")
    options = ServeOptions(request_log=str(root / "requests.sqlite"), poll_s=0.2, max_audio_s=60.0,
                           rate_limit=1000.0, burst=1000, log_text=True, log_vad=True)
    app = create_app(registry, options, store)
    with TestClient(app) as client:
        wait_ready(client)
        yield client, keys, root, registry


def _transcribe(client, key, data=None, **fields):
    fields.setdefault("model", "production")
    return client.post("/v1/audio/transcriptions", headers=auth(key),
                       files={"file": ("clip.flac", clip() if data is None else data)}, data=fields)


def _is_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert "Traceback" not in r.text
    if code is not None:
        assert body["error"]["code"] == code, body


def test_transcription_json_verbose_and_text(served):
    client, keys, _root, _reg = served
    r = _transcribe(client, keys["transcribe"])
    assert r.status_code == 200, r.text
    assert r.headers["x-voxproof-version"] == "w1" and r.headers["x-request-id"]
    text = r.json()["text"]
    assert set(r.json()) == {"text"} and len(text.split()) >= 3
    r = _transcribe(client, keys["transcribe"], response_format="verbose_json",
                    **{"timestamp_granularities[]": ["word", "segment"]})
    body = r.json()
    assert body["text"] == text and body["duration"] == pytest.approx(2.35)
    assert len(body["words"]) == len(text.split())
    assert all(0 <= w["start"] <= w["end"] <= 2.35 and 0 <= w["probability"] <= 1 for w in body["words"])
    assert body["segments"] and body["segments"][0]["avg_logprob"] < 0
    r = _transcribe(client, keys["transcribe"], response_format="text")
    assert r.text == text + "\n" and r.headers["content-type"].startswith("text/plain")


def test_subtitle_formats_from_word_times():
    from voxproof.backends.base import Transcript, Word
    from voxproof.serve import formats

    t = Transcript("Hello there. General Kenobi", (Word("Hello", 0.0, 0.4), Word("there.", 0.5, 0.9),
                                                   Word("General", 1.2, 1.6), Word("Kenobi", 1.7, 3661.25)))
    assert formats.srt(t, 3700.0) == ("1\n00:00:00,000 --> 00:00:00,900\nHello there.\n\n"
                                      "2\n00:00:01,200 --> 01:01:01,250\nGeneral Kenobi\n\n")
    assert formats.vtt(t, 3700.0).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nHello there.\n")
    assert formats.srt(Transcript("no times"), 2.0) == "1\n00:00:00,000 --> 00:00:02,000\nno times\n\n"
    assert formats.srt(Transcript(""), 2.0) == ""


def test_bad_fields_are_400_with_param(served):
    client, keys, _root, _reg = served
    k = keys["transcribe"]
    cases = [
        ({"response_format": "xml"}, "response_format"),
        ({"temperature": "nan"}, "temperature"),
        ({"temperature": "7"}, "temperature"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities[]"),  # needs verbose_json
        ({"response_format": "verbose_json", "timestamp_granularities[]": "letter"}, "timestamp_granularities[]"),
        ({"language": "fr"}, "language"),
        ({"model": "e1"}, "model"),  # a tts version
    ]
    for fields, param in cases:
        r = _transcribe(client, k, **fields)
        _is_error(r, 400)
        assert r.json()["error"]["param"] == param, (fields, r.json())
    _is_error(_transcribe(client, k, model="no-such-model"), 404, "model_not_found")
    r = client.post("/v1/audio/transcriptions", headers=auth(k), data={"model": "production"})
    _is_error(r, 400)
    r = client.post("/v1/audio/transcriptions", headers={**auth(k), "content-type": "multipart/form-data"},
                    content=b"--x\r\nnot a form")
    _is_error(r, 400)


def test_hostile_uploads_are_4xx_json_and_the_server_keeps_serving(served, tmp_path):
    client, keys, _root, _reg = served
    good = clip()
    wav = io.BytesIO()
    soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    wav = wav.getvalue()
    lying = bytearray(wav)
    lying[40:44] = (10**9).to_bytes(4, "little")  # data chunk claims 1 GB
    zero_channels = bytearray(wav)
    zero_channels[22:24] = (0).to_bytes(2, "little")
    bomb = tmp_path / "bomb.flac"  # 2 hours of silence, a few hundred KB as FLAC
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200", "-c:a", "flac", str(bomb))
    assert bomb.stat().st_size < 2 * MIB
    hostile = {
        "truncated": good[: len(good) // 3],
        "lying header": bytes(lying),
        "zero channels": bytes(zero_channels),
        "not audio": b"%PDF-1.4\n" + bytes(range(256)) * 40,
        "empty": b"",
        "bomb": bomb.read_bytes(),
    }
    for name, data in hostile.items():
        r = _transcribe(client, keys["transcribe"], data=data)
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        _is_error(r, r.status_code)
    r = _transcribe(client, keys["transcribe"], data=bytes(30 * MIB))
    _is_error(r, 413, "file_too_large")
    r = _transcribe(client, keys["transcribe"], data=hostile["bomb"])
    assert "60" in r.json()["error"]["message"]  # names the duration limit
    assert _transcribe(client, keys["transcribe"]).status_code == 200


@pytest.mark.parametrize("fmt,magic", [("wav", b"RIFF"), ("flac", b"fLaC"), ("mp3", None), ("opus", b"OggS"),
                                       ("pcm", None)])
def test_speech_formats(served, fmt, magic):
    client, keys, _root, _reg = served
    r = client.post("/v1/audio/speech", headers=auth(keys["synthesize"]),
                    json={"model": "voice", "input": "Testing one two three.", "voice": "alloy",
                          "response_format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["x-voxproof-version"] == "e1"
    if magic:
        assert r.content.startswith(magic)
    assert len(r.content) > 1000
    if fmt == "pcm":
        assert len(r.content) % 2 == 0 and r.headers["content-type"] == "audio/pcm"


def test_speech_speed_and_limits(served):
    client, keys, _root, _reg = served
    h = auth(keys["synthesize"])
    lengths = {}
    for speed in (1.0, 2.0):
        r = client.post("/v1/audio/speech", headers=h, json={"model": "e1", "input": "A slightly longer sentence "
                                                              "for timing.", "response_format": "wav", "speed": speed})
        assert r.status_code == 200, r.text
        lengths[speed] = soundfile.info(io.BytesIO(r.content)).duration
    assert lengths[2.0] == pytest.approx(lengths[1.0] / 2, rel=0.1)
    _is_error(client.post("/v1/audio/speech", headers=h, json={"model": "e1", "input": "x" * 4097}), 400,
              "string_above_max_length")
    _is_error(client.post("/v1/audio/speech", headers=h, json={"model": "e1", "input": "hi", "speed": 9}), 400)
    _is_error(client.post("/v1/audio/speech", headers=h, json={"model": "w1", "input": "hi"}), 400,
              "wrong_model_kind")
    _is_error(client.post("/v1/audio/speech", headers=h, content=b"{not json"), 400, "invalid_json")
    _is_error(client.post("/v1/audio/speech", headers=h, content=b"[1]"), 400, "invalid_json")
    _is_error(client.post("/v1/audio/speech", headers=h, json={"model": "e1", "input": "a" * 70000}), 413)


def test_auth_over_every_route(served):
    client, keys, _root, _reg = served
    wrong_scope = {"transcribe": keys["synthesize"], "synthesize": keys["transcribe"],
                   "admin": keys["transcribe"]}
    bogus = "vxp_deadbeef_" + "A" * 43
    for method, path, scope in PROTECTED:
        call = getattr(client, method)
        _is_error(call(path), 401, "missing_api_key")
        _is_error(call(path, headers=auth(bogus)), 401, "invalid_api_key")
        _is_error(call(path, headers={"Authorization": "Basic abc"}), 401, "invalid_api_key")
        # a real key with its last character changed
        forged = keys["admin"][:-1] + ("A" if keys["admin"][-1] != "A" else "B")
        _is_error(call(path, headers=auth(forged)), 401, "invalid_api_key")
        if scope is not None:
            _is_error(call(path, headers=auth(wrong_scope[scope])), 403, "insufficient_scope")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    r = client.get("/v1/models", headers=auth(keys["synthesize"]))
    ids = {m["id"] for m in r.json()["data"]}
    assert {"w1", "w2", "s1", "e1", "e2", "production", "voice"} <= ids and r.json()["object"] == "list"
    r = client.get("/metrics", headers=auth(keys["admin"]))
    assert r.status_code == 200 and "voxproof_requests_total" in r.text


def test_metrics_follow_the_conventions(served):
    client, keys, _root, _reg = served
    assert _transcribe(client, keys["transcribe"]).status_code == 200
    text = client.get("/metrics", headers=auth(keys["admin"])).text
    for name in ("voxproof_requests_total", "voxproof_request_duration_seconds_bucket", "voxproof_model_seconds_bucket",
                 "voxproof_audio_seconds_total", "voxproof_queue_depth", "voxproof_batch_size_bucket",
                 "voxproof_model_loaded", "voxproof_request_log_dropped_total"):
        assert name in text, name
    assert 'voxproof_model_loaded{version="w1"} 1.0' in text
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    labels = {part.split("=")[0] for line in samples if "{" in line
              for part in line[line.index("{") + 1:line.index("}")].split(",")}
    assert labels <= {"endpoint", "status", "version", "route", "le"}, labels
    assert not any("-key" in line for line in samples)


def test_admin_changes_take_effect_without_restart(served):
    client, keys, _root, registry = served
    h = auth(keys["admin"])
    _is_error(client.post("/admin/promote", headers=h, json={"version": "w2"}), 409, "promotion_refused")
    r = client.post("/admin/promote", headers=h, json={"version": "w2", "force": True, "reason": "test"})
    assert r.status_code == 200, r.text
    assert r.json()["to_version"] == "w2" and r.json()["actor"] == "admin-key"
    assert _transcribe(client, keys["transcribe"]).headers["x-voxproof-version"] == "w2"
    r = client.post("/admin/rollback", headers=h, json={"reason": "back"})
    assert r.status_code == 200 and r.json()["to_version"] == "w1"
    assert _transcribe(client, keys["transcribe"]).headers["x-voxproof-version"] == "w1"
    r = client.post("/admin/canary", headers=h, json={"version": "s1", "reason": "try sphinx"})
    assert r.status_code == 200 and r.json()["to_version"] == "s1"
    r = client.post("/admin/canary", headers=h, json={"version": None})
    assert r.status_code == 200 and r.json()["from_version"] == "s1"
    _is_error(client.post("/admin/canary", headers=h, json={"version": "nope"}), 400)
    with Registry.open(registry) as reg:
        actors = {(e.action, e.actor) for e in reg.history()}
        assert {("promote", "admin-key"), ("rollback", "admin-key"), ("set-alias", "admin-key"),
                ("remove-alias", "admin-key")} <= actors
        # a change made outside the server (CLI, another process) is picked up by polling
        reg.promote("w2", actor="cli-user", force=True, reason="outside")
    deadline = time.monotonic() + 10
    while _transcribe(client, keys["transcribe"]).headers["x-voxproof-version"] != "w2":
        assert time.monotonic() < deadline, "the alias change was not picked up"
        time.sleep(0.2)
    with Registry.open(registry) as reg:
        reg.rollback(actor="cli-user", reason="restore")
    deadline = time.monotonic() + 10  # leave production as the other tests expect it
    while _transcribe(client, keys["transcribe"]).headers["x-voxproof-version"] != "w1":
        assert time.monotonic() < deadline, "the rollback was not picked up"
        time.sleep(0.2)


def test_request_log_rows_follow_the_contract(served):
    client, keys, root, _reg = served
    assert _transcribe(client, keys["transcribe"], model="w1").status_code == 200
    _transcribe(client, keys["transcribe"], data=b"not audio at all")
    rid = _transcribe(client, keys["transcribe"], model="w1").headers["x-request-id"]
    state = client.app.state.voxproof
    deadline = time.monotonic() + 20
    db = sqlite3.connect(root / "requests.sqlite")
    while not db.execute("SELECT 1 FROM requests WHERE request_id = ?", (rid,)).fetchone():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cols = [r[1] for r in db.execute("PRAGMA table_info(requests)")]
    assert cols == ["id", *COLUMNS]
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    db.row_factory = sqlite3.Row
    row = dict(db.execute("SELECT * FROM requests WHERE request_id = ?", (rid,)).fetchone())
    assert row["status"] == 200 and row["route"] == "main" and row["version"] == "w1"
    assert row["key_name"] == "transcribe-key" and row["endpoint"] == "transcriptions"
    assert row["audio_s"] == pytest.approx(2.35) and row["sample_rate"] == 16000 and row["codec"] == "PCM_16"
    assert row["latency_s"] >= row["model_s"] > 0 and row["decode_s"] > 0 and row["queue_s"] >= 0
    for name in ("rms_dbfs", "snr_db", "speech_ratio", "clipping_ratio", "bandwidth_hz", "conf_mean", "conf_min"):
        assert row[name] is not None, name
    assert row["words"] == len(json.loads(row["word_confs"])) and row["output_chars"] > 0
    assert row["words_per_s"] == pytest.approx(row["words"] / row["audio_s"])
    assert row["text"]  # --log-text on in this fixture
    bad = dict(db.execute("SELECT * FROM requests WHERE status = 400 ORDER BY id DESC").fetchone())
    assert bad["error_type"] == "invalid_request_error" and bad["text"] is None
    assert state.request_log.dropped == 0
    keys_in_log = db.execute("SELECT COUNT(*) FROM requests WHERE key_name LIKE 'vxp_%'").fetchone()[0]
    assert keys_in_log == 0


def test_short_clips_transcribe_as_in_process(served):
    """The same audio gives the same text over the server as a direct Whisper call."""
    from voxproof.audio.io import load_audio
    from voxproof.backends import load_backend

    client, keys, _root, _reg = served
    whisper = load_backend("whisper", kind="asr", pairs=["beam_size=1"])
    for utt in SHORT[1:]:
        direct = whisper.transcribe(load_audio(io.BytesIO(clip(utt)).getvalue())).text
        r = _transcribe(client, keys["transcribe"], data=clip(utt), model="w1")
        assert r.json()["text"] == direct
