"""Backend stage: any OpenAI-compatible HTTP endpoint, for speech to text and text to speech.

Audio leaves the machine only to an endpoint the user named: ``base_url`` has no default, a host other
than loopback (127.0.0.0/8, ::1, localhost) is refused without an API key unless ``send_without_key``
says so, redirects are not followed, and a 401/403 answer stops at once (:class:`EndpointUnauthorized`,
never retried; a run stops at the first one instead of uploading every utterance to be refused).

``OpenAITranscriber`` posts a 16-bit WAV to ``{base_url}/v1/audio/transcriptions`` (multipart) and reads
text, word times and, when the server sends them, Whisper segment statistics. ``OpenAISynthesizer`` posts
JSON to ``{base_url}/v1/audio/speech`` and decodes the WAV it returns. Both retry 429 and 5xx answers and
transport errors with exponential backoff, and raise :class:`BackendError` with the status and an excerpt
of the body otherwise. The HTTP layer is injectable (``transport=`` or a ready ``client=``), so tests run
against ``httpx.MockTransport`` and voxproof's own server in-process.
"""

from __future__ import annotations

import io
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.backends._checksum import library_versions
from voxproof.backends._wav import decode_wav
from voxproof.backends.base import BackendInfo, Transcript, Word
from voxproof.errors import BackendError, EndpointRefused, UsageError
from voxproof.options import bounded, check_ranges, options_dict

log = logging.getLogger("voxproof.backends.openai")

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is capped


class EndpointError(BackendError):
    """An endpoint answered with an HTTP error status. ``status`` is the code, ``body`` an excerpt."""

    def __init__(self, message: str, status: int, body: str):
        super().__init__(message)
        self.status = status
        self.body = body


class EndpointUnauthorized(EndpointError, EndpointRefused):
    """The endpoint answered 401 or 403: the key is missing or wrong. Never retried; stops a run."""


def _check_common(o: Any) -> None:
    check_ranges(o)
    if o.base_url is not None and not o.base_url.startswith(("http://", "https://")):
        raise UsageError(f"option base_url={o.base_url!r} must start with http:// or https://")


@dataclass(frozen=True)
class OpenAITranscriberOptions:
    """Where and how to call ``/v1/audio/transcriptions``.

    ``base_url`` is required (no default host: nothing is uploaded anywhere the user did not name, e.g.
    ``http://127.0.0.1:8000`` or ``https://api.openai.com``). The API key is ``api_key`` or else the
    environment variable named by ``api_key_env`` (read once, when the backend is built); without a key
    only a loopback host is called, unless ``send_without_key=true`` (a keyless server on the network).
    The key is never recorded in provenance. ``response_format="verbose_json"`` asks for word times
    (``timestamp_granularities[]=word`` when ``word_timestamps``); a server that rejects it with 400 is
    asked again with plain ``json``.
    ``backoff`` is the first retry delay in seconds, doubled on every retry.
    """

    base_url: str | None = None
    model: str = "whisper-1"
    language: str | None = "en"
    response_format: Literal["verbose_json", "json"] = "verbose_json"
    word_timestamps: bool = True
    temperature: float = bounded(0.0, 0.0, 1.0)
    prompt: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = "OPENAI_API_KEY"
    send_without_key: bool = False
    timeout: float = bounded(60.0, 0.0, 3600.0, open_low=True, unit="seconds")
    max_retries: int = bounded(3, 0, 10)
    backoff: float = bounded(0.5, 0.0, 60.0, unit="seconds")

    def __post_init__(self) -> None:
        _check_common(self)


@dataclass(frozen=True)
class OpenAISynthesizerOptions:
    """Where and how to call ``/v1/audio/speech`` (always asking for WAV). ``speed`` 0.25-4.0.
    ``base_url`` (required), API key, timeout and retries behave as in :class:`OpenAITranscriberOptions`."""

    base_url: str | None = None
    model: str = "tts-1"
    voice: str = "alloy"
    speed: float = bounded(1.0, 0.25, 4.0)
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = "OPENAI_API_KEY"
    send_without_key: bool = False
    timeout: float = bounded(60.0, 0.0, 3600.0, open_low=True, unit="seconds")
    max_retries: int = bounded(3, 0, 10)
    backoff: float = bounded(0.5, 0.0, 60.0, unit="seconds")

    def __post_init__(self) -> None:
        _check_common(self)


class _Endpoint:
    """An httpx client with retries. ``transport`` or ``client`` replace the network (tests, in-process
    servers); a client passed in keeps its own timeout and is not closed by :meth:`close`."""

    def __init__(self, options: Any, transport: Any = None, client: Any = None):
        import httpx

        self.options = options
        if not options.base_url:
            raise UsageError(
                "the openai backends upload audio or text to the server you name, and there is no default: "
                "give -O base_url=URL (for example http://127.0.0.1:8000 for a local server, or "
                "https://api.openai.com with an API key)"
            )
        self.base_url = options.base_url.rstrip("/")
        key = options.api_key or (os.environ.get(options.api_key_env) if options.api_key_env else None)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.has_key = bool(key)
        host = httpx.URL(self.base_url).host
        if not key and not options.send_without_key and not is_loopback(host):
            raise UsageError(
                f"refusing to send data to {host} without an API key: set -O api_key=KEY or the environment "
                f"variable {options.api_key_env}, or -O send_without_key=true for a server that needs no key"
            )
        self._own_client = client is None
        # No redirects: a POST must not carry audio to a host the user did not name.
        self.client = client or httpx.Client(timeout=options.timeout, transport=transport, follow_redirects=False)
        # A client passed in may come from another httpx generation (Starlette's TestClient is an
        # httpx2.Client): retry that library's transport errors too.
        family = sys.modules.get(type(self.client).__module__.split(".")[0])
        self._transport_errors = (httpx.TransportError, getattr(family, "TransportError", httpx.TransportError))

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST with retries; returns the successful ``httpx.Response`` or raises :class:`BackendError`."""
        url = f"{self.base_url}{path}"
        o = self.options
        last, last_status, last_body = "", None, ""
        for attempt in range(o.max_retries + 1):
            delay = o.backoff * (2**attempt)
            try:
                response = self.client.post(url, headers=self._headers, **kwargs)  # client holds the timeout
            except self._transport_errors as exc:
                last, last_status = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 300:
                    return response
                if response.status_code < 400:
                    raise EndpointError(
                        f"POST {url} was redirected (HTTP {response.status_code}) to "
                        f"{response.headers.get('location', '(no location)')}; redirects are not followed, so "
                        "that data goes only where you said: set base_url to the final address",
                        response.status_code, _excerpt(response),
                    )
                last_status, last_body = response.status_code, _excerpt(response)
                last = f"HTTP {last_status}: {last_body}"
                if response.status_code in (401, 403):
                    raise EndpointUnauthorized(
                        _status_message(url, response, self.has_key, o.api_key_env),
                        response.status_code,
                        last_body,
                    )
                if response.status_code not in _RETRY_STATUS:
                    raise EndpointError(
                        _status_message(url, response, self.has_key, o.api_key_env),
                        response.status_code,
                        _excerpt(response),
                    )
                retry_after = _retry_after(response)
                if retry_after is not None:
                    delay = retry_after
            if attempt < o.max_retries:
                log.warning("POST %s failed (%s); retry %d of %d in %.1f s", url, last, attempt + 1, o.max_retries, delay)
                time.sleep(delay)
        message = f"POST {url} failed after {o.max_retries + 1} attempt(s): {last}"
        if last_status is not None:
            raise EndpointError(message, last_status, last_body)
        raise BackendError(message)

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host: a name or an IP address) is this machine's loopback interface.
    Names other than ``localhost`` are not resolved: a name that points at 127.0.0.1 still counts as
    remote, which errs on the side of not sending."""
    import ipaddress

    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _excerpt(response: Any, limit: int = 300) -> str:
    try:
        text = response.text
    except UnicodeDecodeError:  # a body in an unknown encoding
        text = repr(response.content[:limit])
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _status_message(url: str, response: Any, has_key: bool, key_env: str) -> str:
    status = response.status_code
    hint = ""
    if status in (401, 403):
        hint = (
            "; check the API key (option api_key or environment variable " + key_env + ")"
            if has_key
            else f"; no API key was sent: set option api_key or environment variable {key_env}"
        )
    elif status == 404:
        hint = "; check base_url (the path /v1/... is added to it) and model"
    return f"POST {url} returned HTTP {status}: {_excerpt(response)}{hint}"


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(_MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _wav_bytes(audio: Audio) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _parse_transcription(body: dict[str, Any], duration: float) -> Transcript:
    """A Transcript from an OpenAI ``json`` or ``verbose_json`` body (words may come at the top level
    or inside segments; a ``probability`` on a word is used as its confidence)."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise BackendError(f"transcription response has no 'text' field: {str(body)[:200]}")
    raw_words = body.get("words")
    segments = [s for s in body.get("segments") or () if isinstance(s, dict)]
    if not raw_words:
        raw_words = [w for s in segments for w in s.get("words") or ()]
    words = []
    for w in raw_words or ():
        text = str(w.get("word", "")).strip()
        if not text:
            continue
        start, end, prob = w.get("start"), w.get("end"), w.get("probability")
        words.append(
            Word(
                text,
                None if start is None else round(min(max(float(start), 0.0), duration), 3),
                None if end is None else round(min(max(float(end), 0.0), duration), 3),
                None if prob is None else float(min(1.0, max(0.0, prob))),
            )
        )
    extras: dict[str, Any] = {}
    confidence = None
    scored = [s for s in segments if isinstance(s.get("avg_logprob"), (int, float))]
    if scored:
        # Same definition as the local Whisper backend: exp of the token-weighted mean avg_logprob.
        weights = [len(s.get("tokens") or ()) + 1 for s in scored]
        mean = sum(s["avg_logprob"] * n for s, n in zip(scored, weights)) / sum(weights)
        confidence = float(min(1.0, max(0.0, math.exp(mean))))
        extras["avg_logprob"] = float(mean)
        for key in ("no_speech_prob", "compression_ratio"):
            values = [s[key] for s in scored if isinstance(s.get(key), (int, float))]
            if values:
                extras[key] = float(max(values))
        extras["segments"] = len(segments)
    for key in ("language", "duration"):
        if key in body:
            extras[key] = body[key]
    return Transcript(body["text"].strip(), tuple(words), confidence, extras)


class _EndpointOwner:
    """Closing the HTTP client of a backend that owns an ``_endpoint``; usable as a context manager."""

    _endpoint: _Endpoint

    def close(self) -> None:
        self._endpoint.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenAITranscriber(_EndpointOwner):
    """Speech to text through an OpenAI-compatible ``/v1/audio/transcriptions`` endpoint."""

    sample_rate = 16000

    def __init__(self, options: OpenAITranscriberOptions | None = None, *, transport: Any = None, client: Any = None):
        self.options = options or OpenAITranscriberOptions()
        self._endpoint = _Endpoint(self.options, transport=transport, client=client)
        self._format = self.options.response_format

    def _fields(self, response_format: str) -> dict[str, Any]:
        o = self.options
        data: dict[str, Any] = {"model": o.model, "response_format": response_format, "temperature": str(o.temperature)}
        if o.language:
            data["language"] = o.language
        if o.prompt:
            data["prompt"] = o.prompt
        if response_format == "verbose_json" and o.word_timestamps:
            data["timestamp_granularities[]"] = ["word", "segment"]
        return data

    def transcribe(self, audio: Audio) -> Transcript:
        """Send one clip (as 16-bit WAV at its own rate) and parse the answer."""
        wav = _wav_bytes(audio)
        files = {"file": ("audio.wav", wav, "audio/wav")}
        try:
            response = self._endpoint.post("/v1/audio/transcriptions", data=self._fields(self._format), files=files)
        except EndpointError as exc:
            if self._format != "verbose_json" or exc.status != 400:
                raise
            log.warning("server rejected verbose_json (%s); using response_format=json from now on", exc)
            self._format = "json"
            response = self._endpoint.post("/v1/audio/transcriptions", data=self._fields("json"), files=files)
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendError(f"transcription response is not JSON: {_excerpt(response)}") from exc
        return _parse_transcription(body, audio.duration)

    def info(self) -> BackendInfo:
        return BackendInfo(
            name="openai",
            kind="asr",
            model=f"{self.options.model} at {self._endpoint.base_url}",
            model_checksum=None,
            options=_public_options(self.options),
            library_versions=library_versions("httpx"),
        )


class OpenAISynthesizer(_EndpointOwner):
    """Text to speech through an OpenAI-compatible ``/v1/audio/speech`` endpoint (WAV responses)."""

    def __init__(self, options: OpenAISynthesizerOptions | None = None, *, transport: Any = None, client: Any = None):
        self.options = options or OpenAISynthesizerOptions()
        self._endpoint = _Endpoint(self.options, transport=transport, client=client)

    def synthesize(self, text: str) -> Audio:
        """Speech for ``text`` at the rate of the WAV the server returns."""
        if not text.strip():
            raise BackendError("nothing to synthesise: the text is empty")
        o = self.options
        payload = {"model": o.model, "voice": o.voice, "input": text, "response_format": "wav", "speed": o.speed}
        response = self._endpoint.post("/v1/audio/speech", json=payload)
        audio = decode_wav(response.content, source=f"{self._endpoint.base_url}/v1/audio/speech")
        if audio.samples.size == 0:
            raise BackendError(f"the speech endpoint returned empty audio for {text[:60]!r}")
        return audio

    def info(self) -> BackendInfo:
        return BackendInfo(
            name="openai-tts",
            kind="tts",
            model=f"{self.options.model} voice {self.options.voice} at {self._endpoint.base_url}",
            model_checksum=None,
            options=_public_options(self.options),
            library_versions=library_versions("httpx"),
        )


def _public_options(options: Any) -> dict[str, Any]:
    """Options for provenance, with the API key redacted."""
    out = options_dict(options)
    if out.get("api_key"):
        out["api_key"] = "(redacted)"
    return out
