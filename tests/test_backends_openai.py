"""OpenAI-compatible HTTP backends against httpx.MockTransport endpoints that answer with real models:
Whisper tiny.en transcribing a real LibriSpeech clip (CC BY 4.0), eSpeak NG speaking."""

from __future__ import annotations

import io
import json
from email.parser import BytesParser
from email.policy import default as email_policy

import httpx
import numpy as np
import pytest
import soundfile as sf

from voxproof.audio.signal import Audio
from voxproof.backends import Synthesizer, Transcriber
from voxproof.backends.openai import (
    OpenAISynthesizer,
    OpenAISynthesizerOptions,
    OpenAITranscriber,
    OpenAITranscriberOptions,
)
from voxproof.errors import BackendError, UsageError
from voxproof.options import build_options

BASE = "http://127.0.0.1:8000"  # loopback: the backend calls it without a key (MockTransport answers)
CLIP = "1688-142285-0002"


def multipart(request: httpx.Request) -> tuple[dict[str, list[str]], bytes]:
    """Form fields (repeated names kept) and the uploaded file of a multipart request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=email_policy).parsebytes(head + request.content)
    fields: dict[str, list[str]] = {}
    upload = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            upload = part.get_payload(decode=True)
        else:
            fields.setdefault(name, []).append(part.get_payload(decode=True).decode())
    return fields, upload


@pytest.fixture(scope="module")
def clip(shared_data):
    folder = shared_data / "librispeech-test-other-mini"
    samples, sr = sf.read(str(folder / "audio" / f"{CLIP}.flac"), dtype="float32")
    return Audio(samples, sr)


@pytest.fixture(scope="module")
def whisper():
    pytest.importorskip("faster_whisper")
    from voxproof.backends.whisper import WhisperTranscriber

    return WhisperTranscriber()


@pytest.fixture(scope="module")
def served(whisper, clip):
    """The verbose_json body a Whisper server would send for the clip, built from a real transcription."""
    tr = whisper.transcribe(clip)
    body = {
        "task": "transcribe",
        "language": "english",
        "duration": clip.duration,
        "text": tr.text,
        "words": [{"word": w.text, "start": w.start, "end": w.end} for w in tr.words],
        "segments": [
            {
                "id": 0,
                "start": 0.0,
                "end": clip.duration,
                "text": tr.text,
                "tokens": list(range(len(tr.text.split()) + 2)),
                "avg_logprob": tr.extras["avg_logprob"],
                "no_speech_prob": tr.extras["no_speech_prob"],
                "compression_ratio": tr.extras["compression_ratio"],
            }
        ],
    }
    return tr, body


class Recorder:
    """A MockTransport handler that records requests and answers from a script of callables."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)


def transcriber(handler, **options) -> OpenAITranscriber:
    opts = OpenAITranscriberOptions(base_url=BASE, backoff=0.0, **options)
    return OpenAITranscriber(opts, transport=httpx.MockTransport(handler))


def test_real_whisper_answer_is_parsed_into_words_and_confidence(served, clip, whisper, monkeypatch):
    local, body = served
    monkeypatch.setenv("VOXPROOF_TEST_KEY", "sk-test-123")

    def answer(request):
        fields, upload = multipart(request)
        # The endpoint really transcribes what it was sent: the WAV must carry the clip intact.
        samples, sr = sf.read(io.BytesIO(upload), dtype="float32")
        assert sr == 16000 and len(samples) == len(clip.samples)
        assert np.max(np.abs(samples - clip.samples)) < 1e-4
        assert whisper.transcribe(Audio(samples, sr)).text == body["text"]
        assert fields["model"] == ["whisper-1"] and fields["language"] == ["en"]
        assert fields["response_format"] == ["verbose_json"]
        assert fields["timestamp_granularities[]"] == ["word", "segment"]
        return httpx.Response(200, json=body)

    handler = Recorder(answer)
    backend = transcriber(handler, api_key_env="VOXPROOF_TEST_KEY")
    monkeypatch.delenv("VOXPROOF_TEST_KEY")  # read once at construction, not on every call
    assert isinstance(backend, Transcriber)
    tr = backend.transcribe(clip)
    assert handler.requests[0].url == f"{BASE}/v1/audio/transcriptions"
    assert handler.requests[0].headers["authorization"] == "Bearer sk-test-123"
    assert tr.text == local.text
    assert [w.text for w in tr.words] == [w.text for w in local.words]
    assert all(0.0 <= w.start <= w.end <= clip.duration for w in tr.words)
    assert all(w.confidence is None for w in tr.words)  # OpenAI's format has no word probabilities
    assert tr.confidence == pytest.approx(np.exp(local.extras["avg_logprob"]))
    assert tr.extras["language"] == "english"


def test_server_error_then_success_is_retried(served, clip):
    _local, body = served
    handler = Recorder(lambda r: httpx.Response(500, text="upstream overloaded"), lambda r: httpx.Response(200, json=body))
    tr = transcriber(handler).transcribe(clip)
    assert len(handler.requests) == 2 and tr.text == body["text"]


def test_rate_limit_honours_retry_after(served, clip, monkeypatch):
    _local, body = served
    waits = []
    monkeypatch.setattr("voxproof.backends.openai.time.sleep", waits.append)
    handler = Recorder(
        lambda r: httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"),
        lambda r: httpx.Response(200, json=body),
    )
    transcriber(handler).transcribe(clip)
    assert waits == [2.0]


def test_unauthorised_is_a_backend_error_with_status_and_body(clip):
    handler = Recorder(lambda r: httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}))
    backend = transcriber(handler, api_key="sk-wrong")
    with pytest.raises(BackendError, match=r"401.*Incorrect API key.*api_key") as caught:
        backend.transcribe(clip)
    assert caught.value.status == 401 and "Incorrect API key" in caught.value.body
    assert len(handler.requests) == 1  # never retried


def test_persistent_outage_gives_up_after_the_retries(clip):
    handler = Recorder(lambda r: httpx.Response(503, text="maintenance"))
    with pytest.raises(BackendError, match=r"3 attempt.*HTTP 503: maintenance") as caught:
        transcriber(handler, max_retries=2).transcribe(clip)
    assert len(handler.requests) == 3 and caught.value.status == 503


def test_connection_errors_are_retried_then_reported(clip):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    handler = Recorder(refuse)
    with pytest.raises(BackendError, match="ConnectError"):
        transcriber(handler, max_retries=1).transcribe(clip)
    assert len(handler.requests) == 2


def test_server_without_verbose_json_falls_back_to_json_once(served, clip):
    _local, body = served

    def answer(request):
        fields, _upload = multipart(request)
        if fields["response_format"] == ["verbose_json"]:
            return httpx.Response(400, json={"error": "response_format verbose_json is not supported"})
        assert "timestamp_granularities[]" not in fields
        return httpx.Response(200, json={"text": body["text"]})

    handler = Recorder(answer)
    backend = transcriber(handler)
    first, second = backend.transcribe(clip), backend.transcribe(clip)
    assert first.text == second.text == body["text"] and first.words == ()
    assert len(handler.requests) == 3  # 400, json, then json straight away


def test_a_body_without_text_is_an_error(clip):
    handler = Recorder(lambda r: httpx.Response(200, json={"result": "ok"}))
    with pytest.raises(BackendError, match="no 'text'"):
        transcriber(handler).transcribe(clip)


def test_info_never_records_the_api_key():
    backend = transcriber(Recorder(lambda r: httpx.Response(200, json={"text": ""})), api_key="sk-secret")
    info = backend.info()
    assert info.model_checksum is None and info.kind == "asr"
    assert "sk-secret" not in json.dumps(info.to_dict()) and "sk-secret" not in repr(backend.options)
    assert info.options["base_url"] == BASE


def test_options_are_validated():
    with pytest.raises(UsageError, match="base_url"):
        build_options(OpenAITranscriberOptions, ["base_url=localhost:8000"])
    with pytest.raises(UsageError, match="speed"):
        build_options(OpenAISynthesizerOptions, ["speed=9"])


@pytest.fixture(scope="module")
def espeak_wav():
    from voxproof.backends.espeak import EspeakSynthesizer

    audio = EspeakSynthesizer().synthesize("The quick brown fox.")
    buf = io.BytesIO()
    sf.write(buf, audio.samples, audio.sample_rate, format="WAV", subtype="PCM_16")
    return audio, buf.getvalue()


def test_synthesizer_posts_json_and_decodes_the_wav(espeak_wav):
    audio, wav = espeak_wav

    def answer(request):
        payload = json.loads(request.content)
        assert payload == {
            "model": "tts-1", "voice": "alloy", "input": "The quick brown fox.", "response_format": "wav", "speed": 1.0,
        }
        return httpx.Response(200, content=wav, headers={"content-type": "audio/wav"})

    handler = Recorder(answer)
    tts = OpenAISynthesizer(OpenAISynthesizerOptions(base_url=BASE, backoff=0.0), transport=httpx.MockTransport(handler))
    assert isinstance(tts, Synthesizer)
    out = tts.synthesize("The quick brown fox.")
    assert handler.requests[0].url == f"{BASE}/v1/audio/speech"
    assert out.sample_rate == 22050 and len(out.samples) == len(audio.samples)
    assert np.max(np.abs(out.samples - audio.samples)) < 1e-4
    assert tts.info().name == "openai-tts"


def test_synthesizer_rejects_audio_that_is_not_wav():
    handler = Recorder(lambda r: httpx.Response(200, content=b"ID3\x04\x00fake-mp3", headers={"content-type": "audio/mpeg"}))
    tts = OpenAISynthesizer(OpenAISynthesizerOptions(base_url=BASE), transport=httpx.MockTransport(handler))
    with pytest.raises(BackendError, match="did not return WAV"):
        tts.synthesize("Hello.")


@pytest.mark.slow
def test_a_real_asgi_server_in_process_through_a_ready_client(clip):
    """The ``client=`` path: a Starlette app that runs PocketSphinx on the uploaded WAV, called through
    Starlette's TestClient, so the multipart encoding meets a real form parser."""
    pytest.importorskip("multipart")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from voxproof.backends.sphinx import SphinxTranscriber

    sphinx = SphinxTranscriber()
    clip = Audio(clip.samples[:24000], clip.sample_rate)  # "you don't mean that you thought..."

    async def transcriptions(request):
        form = await request.form()
        samples, rate = sf.read(io.BytesIO(await form["file"].read()), dtype="float32")
        tr = sphinx.transcribe(Audio(samples, rate))
        words = [{"word": w.text, "start": w.start, "end": w.end, "probability": w.confidence} for w in tr.words]
        return JSONResponse({"text": tr.text, "words": words, "model": form["model"]})

    app = Starlette(routes=[Route("/v1/audio/transcriptions", transcriptions, methods=["POST"])])
    with TestClient(app) as client:
        backend = OpenAITranscriber(OpenAITranscriberOptions(base_url="http://testserver", api_key="k"), client=client)
        tr = backend.transcribe(clip)
        backend.close()  # a client passed in stays open for its owner
        assert not client.is_closed
    direct = sphinx.transcribe(clip)
    assert tr.text == direct.text and tr.text
    assert [w.confidence for w in tr.words] == pytest.approx([w.confidence for w in direct.words])


# -- privacy defaults: audio goes only where the user said, and a refused key stops at once -------------


def test_there_is_no_default_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    sent = Recorder(lambda r: httpx.Response(200, json={"text": "x"}))
    for cls, options in ((OpenAITranscriber, OpenAITranscriberOptions()),
                         (OpenAISynthesizer, OpenAISynthesizerOptions())):
        assert options.base_url is None
        with pytest.raises(UsageError, match="base_url=URL"):
            cls(options, transport=httpx.MockTransport(sent))
    assert sent.requests == []


def test_no_key_means_loopback_only(monkeypatch):
    from voxproof.backends.openai import is_loopback

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sent = Recorder(lambda r: httpx.Response(200, json={"text": "hello"}))
    for url in ("https://api.openai.com", "http://10.0.0.7:8000", "http://127.0.0.1.example.com"):
        with pytest.raises(UsageError, match="without an API key"):
            OpenAITranscriber(OpenAITranscriberOptions(base_url=url), transport=httpx.MockTransport(sent))
    assert sent.requests == []
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", "localhost.example.com"))
    # a key, or an explicit choice, lets a remote host be called
    keyed = OpenAITranscriber(OpenAITranscriberOptions(base_url="https://asr.example.com", api_key="sk-1", backoff=0.0),
                              transport=httpx.MockTransport(sent))
    open_lan = OpenAITranscriber(OpenAITranscriberOptions(base_url="http://10.0.0.7:8000", send_without_key=True),
                                 transport=httpx.MockTransport(sent))
    clip = Audio(np.zeros(1600, dtype=np.float32), 16000)
    assert keyed.transcribe(clip).text == open_lan.transcribe(clip).text == "hello"
    assert [str(r.url.host) for r in sent.requests] == ["asr.example.com", "10.0.0.7"]
    assert "authorization" not in sent.requests[1].headers


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_at_once_and_stops_a_run(tmp_path, status):
    from voxproof.backends.openai import EndpointUnauthorized
    from voxproof.errors import EndpointRefused
    from voxproof.manifest.utterance import Utterance
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import RunStore

    handler = Recorder(lambda r: httpx.Response(status, json={"error": {"message": "Invalid API key"}}))
    utts = []
    for i in range(4):
        sf.write(str(tmp_path / f"u{i}.wav"), np.full(8000, 0.1, dtype=np.float32), 16000)
        utts.append(Utterance(f"u{i}", str(tmp_path / f"u{i}.wav"), "hello world"))
    factory = lambda: transcriber(handler, api_key="sk-wrong", max_retries=3)  # noqa: E731
    with pytest.raises(EndpointRefused, match=f"HTTP {status}.*Invalid API key") as caught:
        run_eval(factory, utts, tmp_path / "run", options=RunOptions(workers=2))
    assert isinstance(caught.value, EndpointUnauthorized) and caught.value.status == status
    assert 1 <= len(handler.requests) <= 2  # one per worker at most, never retried, never the other utterances
    with RunStore.open(tmp_path / "run") as store:
        assert store.count_rows() == 0 and store.meta("status") == "incomplete"


def test_redirects_are_not_followed(clip):
    handler = Recorder(lambda r: httpx.Response(307, headers={"location": "https://elsewhere.example/v1/x"}))
    with pytest.raises(BackendError, match="redirected.*elsewhere.example.*not followed"):
        transcriber(handler).transcribe(clip)
    assert len(handler.requests) == 1


def test_cli_with_a_loopback_server_refusing_the_key_exits_3_after_one_request(tmp_path, monkeypatch, capsys):
    """A real HTTP server on 127.0.0.1 answering 401: the whole eval sends one request and exits 3."""
    import http.server
    import threading

    from voxproof.cli.main import main

    hits = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server naming
            self.rfile.read(int(self.headers.get("content-length", 0)))
            hits.append(self.path)
            body = b'{"error": {"message": "Incorrect API key provided"}}'
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("VOXPROOF_TEST_KEY", "sk-wrong")
        base = f"http://127.0.0.1:{server.server_address[1]}"
        code = main(["eval", "-m", "openai", "-O", f"base_url={base}", "-O", "api_key_env=VOXPROOF_TEST_KEY",
                     "--limit", "5", "--features", "none", "-o", str(tmp_path / "run"), "--json-only"])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code == 3
    assert "EndpointUnauthorized" in err and "401" in err and "Incorrect API key" in err
    assert hits == ["/v1/audio/transcriptions"]
    # and with no base_url at all nothing is sent and it is a usage mistake
    assert main(["eval", "-m", "openai", "--limit", "1", "-o", str(tmp_path / "run2")]) == 2
    assert "base_url=URL" in capsys.readouterr().err
