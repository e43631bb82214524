"""Serving stage, request handlers: auth, input checks, routing, decoding, the model call, the log row.

Every model request follows one path (:class:`Call`): authenticate and rate-limit, parse and check the
input, resolve the version, decode (with the audio loader's limits), queue for the version's worker,
answer, and hand a row to the request log. A small upload that libsndfile reads (WAV, FLAC, Ogg; at most
:data:`WORKER_DECODE_BYTES`) is decoded by the version's worker thread just before the model call, so the
request crosses threads once; a larger one, or one that needs an ffmpeg subprocess (MP3, M4A, WebM...),
is decoded first in a thread of its own, at most ``decode_concurrency`` at once. Any
failure on the way becomes an :class:`~voxproof.serve.errors.ApiError` answer and the row records it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from typing import Any

from starlette.requests import Request

from voxproof.audio.io import AudioLimits, ffmpeg_magic, load_audio, probe_audio
from voxproof.audio.signal import Audio
from voxproof.backends.base import Transcript
from voxproof.errors import UsageError, VoxproofError
from voxproof.registry import PromotionRefused, Registry
from voxproof.serve import formats
from voxproof.serve.errors import ApiError, bad_request, from_voxproof, internal_error
from voxproof.serve.keys import ApiKey
from voxproof.serve.requestlog import LogEntry, transcript_fields
from voxproof.serve.workers import Job, QueueFull

log = logging.getLogger("voxproof.serve")

_FIELD_BYTES = 64 * 1024  # room for the non-file multipart fields
_JSON_BYTES = 64 * 1024  # largest JSON body (speech input is at most max_input_chars anyway)
_GRANULARITIES = ("word", "segment")
#: Uploads up to this size (the multipart parser keeps them in memory) whose format libsndfile reads are
#: decoded in the model worker thread; bigger or ffmpeg-decoded ones in a decode thread first.
WORKER_DECODE_BYTES = 1024 * 1024


class _TooLarge(Exception):
    pass


class _Capped:
    """An ASGI ``receive`` that raises :class:`_TooLarge` once the body passes ``limit`` bytes."""

    def __init__(self, receive, limit: int):
        self.receive = receive
        self.limit = limit
        self.seen = 0
        self.complete = False

    async def __call__(self):
        message = await self.receive()
        if message.get("type") == "http.request":
            self.seen += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.seen > self.limit:
                raise _TooLarge()
        else:
            self.complete = True
        return message

    async def drain(self, limit: int) -> None:
        """Read and discard the rest of a refused body (up to ``limit`` bytes), so the client gets the
        answer instead of a reset connection while it is still sending."""
        while not self.complete and self.seen < limit:
            message = await self.receive()
            if message.get("type") != "http.request":
                return
            self.seen += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)


def _finite(value: Any, name: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be a number between {lo} and {hi}, got {str(value)[:40]!r}", name,
                          "invalid_value") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise bad_request(f"{name} must be a number between {lo} and {hi}, got {str(value)[:40]!r}", name,
                          "invalid_value")
    return x


class Call:
    """One model request in progress: timings and fields for its log row."""

    def __init__(self, state, endpoint: str):
        self.state = state
        self.endpoint = endpoint
        self.t0 = time.perf_counter()
        self.row: dict[str, Any] = {"ts": time.time(), "request_id": uuid.uuid4().hex, "endpoint": endpoint,
                                    "route": "main"}
        self.key: ApiKey | None = None
        self.entry = LogEntry(self.row)
        self.version = None
        state.metrics.in_flight.inc()

    def authenticate(self, request, scope: str) -> ApiKey:
        key = authenticate(self.state, request, scope)
        self.key = key
        self.row["key_name"] = key.name
        return key

    def headers(self) -> dict[str, str]:
        out = {"x-request-id": self.row["request_id"]}
        if self.version is not None:
            out["x-voxproof-version"] = self.version.name
        return out

    def finish(self, status: int, error: ApiError | None = None, *, log: bool = True) -> None:
        """Record the outcome in the metrics and (``log``) hand the row to the request log; see
        :meth:`log_after` for handing it over once the answer is sent."""
        latency = time.perf_counter() - self.t0
        self.row["status"] = status
        self.row["latency_s"] = latency
        self.row["error_type"] = None if error is None else error.type
        m = self.state.metrics
        m.in_flight.dec()
        version = self.row.get("version") or "none"
        m.requests.labels(self.endpoint, str(status), version, self.row["route"]).inc()
        m.latency.labels(self.endpoint).observe(latency)
        if log:
            self.submit_log()

    def submit_log(self) -> None:
        if self.state.request_log is not None:
            self.state.request_log.submit(self.entry)

    def log_after(self, response):
        """``response``, handing the row to the request log only after its body is sent, so the log
        writer (signal features, the insert) does not compete with the answer for the CPU and the GIL."""
        from starlette.background import BackgroundTask

        response.background = BackgroundTask(self.submit_log)
        return response

    def error_response(self, err: ApiError):
        from fastapi.responses import JSONResponse

        self.finish(err.status, err)
        return JSONResponse(err.body(), status_code=err.status, headers={**err.headers(), **self.headers()})


def authenticate(state, request, scope: str | None) -> ApiKey:
    """The key presented in ``Authorization: Bearer``, checked for ``scope`` and its rate limit."""
    header = request.headers.get("authorization", "")
    kind, _, presented = header.partition(" ")
    if not header:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer KEY' (create one with "
                       "'voxproof keys create')", "authentication_error", None, "missing_api_key")
    key = state.keys.verify(presented.strip()) if kind.lower() == "bearer" else None
    if key is None:
        raise ApiError(401, "invalid API key", "authentication_error", None, "invalid_api_key")
    if scope is not None and not key.allows(scope):
        raise ApiError(403, f"the key {key.name!r} lacks the {scope!r} scope (it has {', '.join(key.scopes)})",
                       "permission_error", None, "insufficient_scope")
    wait = state.limiter.take(key.name)
    if wait > 0:
        state.metrics.rate_limited.inc()
        raise ApiError(429, f"rate limit of {state.options.rate_limit:g} requests/s for key {key.name!r} "
                       "exceeded; retry after the time in Retry-After", "rate_limit_error", None,
                       "rate_limit_exceeded", retry_after=wait)
    return key


def _route(state, call: Call, model: str, kind: str):
    if not model or len(model) > 200:
        raise bad_request("model is required: a registry version name or alias such as 'production'", "model",
                          "missing_model" if not model else "invalid_value")
    routed = state.router.route(model, call.key.name if call.key else None)
    if routed is None:
        known = sorted(set(state.router.snapshot.versions) | set(state.router.snapshot.aliases))
        raise ApiError(404, f"the model {model[:80]!r} does not exist; known: {', '.join(known[:30])}",
                       "invalid_request_error", "model", "model_not_found")
    if routed.version.kind != kind:
        what = "speech recognition" if kind == "asr" else "speech synthesis"
        raise bad_request(f"the model {model!r} (version {routed.version.name}) is a {routed.version.kind} "
                          f"model; {what} needs a {kind} version", "model", "wrong_model_kind")
    call.version = routed.version
    call.row["model"] = model
    call.row["version"] = routed.version.name
    call.row["route"] = routed.route
    return routed.version


def _submit(state, version, payload, prepare=None) -> Job:
    try:
        return state.pool.get(version).submit(payload, prepare)
    except QueueFull as exc:
        raise ApiError(429, str(exc), "rate_limit_error", None, "queue_full", retry_after=exc.retry_after) from None


def _worker_decodes(upload) -> bool:
    """True when the worker thread may decode ``upload``: small, and not a format needing ffmpeg."""
    size = upload.size
    if size is None or size > WORKER_DECODE_BYTES:
        return False
    upload.file.seek(0)
    head = upload.file.read(12)
    upload.file.seek(0)
    return not ffmpeg_magic(head)


def _decode_file(upload, limits: AudioLimits) -> tuple[Audio, int | None, str | None]:
    """Copy the upload to a temporary file and decode it within ``limits`` (runs in a thread)."""
    fd, name = tempfile.mkstemp(prefix="voxproof-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 1 << 20)
        if os.path.getsize(name) == 0:
            raise bad_request("the uploaded file is empty (0 bytes)", "file", "empty_audio")
        try:
            audio = load_audio(name, limits=limits)
        except VoxproofError as exc:  # name the upload, not the temporary file
            raise type(exc)(str(exc).replace(name, "the uploaded file")) from None
        try:
            info = probe_audio(name)
            return audio, info.sample_rate, info.codec
        except VoxproofError:
            return audio, audio.sample_rate, None
    finally:
        os.unlink(name)


async def _form(request, state, call: Call):
    limit = state.options.max_upload_bytes + _FIELD_BYTES
    length = request.headers.get("content-length")
    too_large = ApiError(413, f"the upload is over the {state.options.max_upload_bytes:,}-byte limit",
                         "invalid_request_error", "file", "file_too_large")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    receive = _Capped(request.receive, limit)
    try:
        return await Request(request.scope, receive).form(max_files=1, max_fields=16, max_part_size=_FIELD_BYTES)
    except _TooLarge:
        await receive.drain(4 * limit)
        raise too_large from None
    except Exception as exc:  # the multipart parser's own errors (malformed body, too many parts)
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        raise bad_request(f"could not read the multipart form: {str(detail)[:200]}", None, "invalid_form") from None


async def _model_request(request, state, endpoint: str, scope: str, handle, param: str | None):
    """Run ``handle(request, state, call)`` within the request timeout; every failure becomes an
    OpenAI-shaped error answer and a log row."""
    call = Call(state, endpoint)
    try:
        call.authenticate(request, scope)
        async with asyncio.timeout(state.options.request_timeout_s):  # no extra task, unlike wait_for
            return await handle(request, state, call)
    except TimeoutError:
        return call.error_response(ApiError(504, f"the request took longer than the "
                                            f"{state.options.request_timeout_s:g} s limit", "timeout_error", None,
                                            "timeout"))
    except ApiError as err:
        return call.error_response(err)
    except VoxproofError as exc:
        return call.error_response(from_voxproof(exc, param=param))
    except Exception as exc:  # never a traceback to the client
        log.error("%s request %s failed unexpectedly: %s", endpoint, call.row["request_id"], exc, exc_info=exc)
        return call.error_response(internal_error())


async def transcriptions(request, state):
    return await _model_request(request, state, "transcriptions", "transcribe", _transcribe, "file")


async def _transcribe(request, state, call: Call):
    from fastapi.responses import JSONResponse, PlainTextResponse

    form = await _form(request, state, call)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not hasattr(upload, "file"):
        raise bad_request("a multipart 'file' field with the audio is required", "file", "missing_file")
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    response_format = fields.get("response_format", "json")
    if response_format not in formats.TRANSCRIPT_FORMATS:
        raise bad_request(f"response_format {response_format[:40]!r} is not one of "
                          f"{', '.join(formats.TRANSCRIPT_FORMATS)}", "response_format", "invalid_value")
    granularities = tuple(dict.fromkeys(v for k, v in form.multi_items()
                                        if k in ("timestamp_granularities[]", "timestamp_granularities")))
    bad = [g for g in granularities if g not in _GRANULARITIES]
    if bad:
        raise bad_request(f"timestamp_granularities[] {bad[0][:40]!r} is not one of word, segment",
                          "timestamp_granularities[]", "invalid_value")
    if granularities and response_format != "verbose_json":
        raise bad_request("timestamp_granularities[] needs response_format=verbose_json",
                          "timestamp_granularities[]", "invalid_value")
    temperature = _finite(fields.get("temperature", 0.0), "temperature", 0.0, 1.0)
    prompt = fields.get("prompt")
    if prompt is not None and len(prompt) > 4096:
        raise bad_request("prompt is over 4096 characters", "prompt", "invalid_value")
    version = _route(state, call, fields.get("model", ""), "asr")
    language = fields.get("language") or None
    version_language = str(version.options.get("language", "en"))
    if language is not None and language != version_language:
        raise bad_request(f"language {language[:20]!r} is not served by version {version.name} (it decodes "
                          f"{version_language!r})", "language", "unsupported_language")
    ignored = [name for name, given, own in (("temperature", temperature, float(version.options.get("temperature", 0.0))),
                                             ("prompt", prompt or None, version.options.get("initial_prompt")))
               if given != own]

    limits = AudioLimits(max_file_bytes=state.options.max_upload_bytes, max_seconds=state.options.max_audio_s,
                         decode_timeout_s=state.options.request_timeout_s)
    if _worker_decodes(upload):
        decoded: dict[str, Any] = {}

        def prepare() -> Audio:
            audio, decoded["sample_rate"], decoded["codec"] = _decode_file(upload, limits)
            return audio

        try:
            job = _submit(state, version, None, prepare)
        except BaseException:
            upload.file.close()
            raise
        job.future.add_done_callback(lambda _f: upload.file.close())  # also when the requester gave up
        try:
            transcript: Transcript = await asyncio.wrap_future(job.future)
        finally:
            if job.prepare_s is not None:
                call.row["decode_s"] = job.prepare_s
                state.metrics.decode.observe(job.prepare_s)
            if decoded:  # also on a model error, like the decode-thread path
                call.row.update(audio_s=job.payload.duration, **decoded)
        audio = job.payload
        sample_rate, codec = decoded["sample_rate"], decoded["codec"]
    else:
        started = time.perf_counter()
        async with state.decode_slots:
            try:
                audio, sample_rate, codec = await asyncio.to_thread(_decode_file, upload, limits)
            finally:
                await upload.close()
        call.row.update(decode_s=time.perf_counter() - started, audio_s=audio.duration, sample_rate=sample_rate,
                        codec=codec)
        state.metrics.decode.observe(call.row["decode_s"])
        job = _submit(state, version, audio)
        transcript = await asyncio.wrap_future(job.future)
    _record_job(state, call, job, "transcriptions")
    state.metrics.audio.labels("transcriptions").inc(audio.duration)
    confs = [w.confidence for w in transcript.words]
    call.row.update(transcript_fields(transcript.text, confs, audio.duration))
    call.entry.audio, call.entry.text = audio, transcript.text
    call.entry.word_confs = [c for c in confs if c is not None] or None
    _maybe_shadow(state, call, audio)

    headers = call.headers()
    if ignored:
        headers["x-voxproof-ignored"] = ",".join(ignored)  # decoding options are the version's
    call.finish(200, log=False)
    if response_format == "json":
        return call.log_after(JSONResponse({"text": transcript.text}, headers=headers))
    if response_format == "verbose_json":
        return call.log_after(JSONResponse(formats.verbose_json(transcript, audio.duration, version_language,
                                                                granularities), headers=headers))
    if response_format == "text":
        return call.log_after(PlainTextResponse(transcript.text + "\n", headers=headers))
    body = formats.srt(transcript, audio.duration) if response_format == "srt" else formats.vtt(transcript, audio.duration)
    return call.log_after(PlainTextResponse(body, headers=headers))


def _record_job(state, call: Call, job: Job, endpoint: str) -> None:
    call.row["queue_s"], call.row["model_s"] = job.queue_s, job.model_s
    if job.queue_s is not None:
        state.metrics.queue_wait.observe(job.queue_s)
    if job.model_s is not None:
        state.metrics.model.labels(endpoint).observe(job.model_s)


def _maybe_shadow(state, call: Call, audio: Audio) -> None:
    """Run ``audio`` on the shadow version too, off the request path; its result is only logged."""
    name = state.options.shadow
    if not name or not state.router.wants_shadow(call.row["request_id"], state.options.shadow_share):
        return
    version = state.router.snapshot.resolve(name)
    if version is None or version.kind != "asr" or version.name == call.row.get("version"):
        return
    try:
        job = state.pool.get(version).submit(audio)
    except (QueueFull, VoxproofError):
        state.metrics.shadow_dropped.inc()
        return
    base = {k: call.row.get(k) for k in ("ts", "request_id", "key_name", "endpoint", "model", "audio_s",
                                         "sample_rate", "codec", "decode_s")}

    def done(future) -> None:
        row = dict(base, version=version.name, route="shadow", queue_s=job.queue_s, model_s=job.model_s)
        row["latency_s"] = None if job.finished is None else job.finished - job.enqueued
        entry = LogEntry(row)
        if future.cancelled() or future.exception() is not None:
            row.update(status=500, error_type="server_error")
        else:
            t: Transcript = future.result()
            confs = [w.confidence for w in t.words]
            row.update(status=200, error_type=None, **transcript_fields(t.text, confs, base["audio_s"]))
            entry.text, entry.word_confs = t.text, [c for c in confs if c is not None] or None
        state.metrics.requests.labels("transcriptions", str(row["status"]), version.name, "shadow").inc()
        if state.request_log is not None:
            state.request_log.submit(entry)

    job.future.add_done_callback(done)


async def speech(request, state):
    return await _model_request(request, state, "speech", "synthesize", _speak, None)


async def _json_body(request) -> dict[str, Any]:
    receive = _Capped(request.receive, _JSON_BYTES)
    try:
        raw = await Request(request.scope, receive).body()
    except _TooLarge:
        await receive.drain(4 * _JSON_BYTES)
        raise ApiError(413, f"the JSON body is over {_JSON_BYTES:,} bytes", "invalid_request_error", None,
                       "body_too_large") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the body is not valid JSON", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", None, "invalid_json")
    return body


async def _speak(request, state, call: Call):
    from fastapi.responses import Response

    body = await _json_body(request)
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("input must be a non-empty string", "input", "invalid_value")
    limit = state.options.max_input_chars
    if len(text) > limit:
        raise bad_request(f"input is {len(text):,} characters, over the {limit:,}-character limit", "input",
                          "string_above_max_length")
    response_format = body.get("response_format", "mp3")
    if response_format not in formats.SPEECH_FORMATS:
        raise bad_request(f"response_format {str(response_format)[:40]!r} is not one of "
                          f"{', '.join(formats.SPEECH_FORMATS)}", "response_format", "invalid_value")
    speed = _finite(body.get("speed", 1.0), "speed", 0.25, 4.0)
    voice = body.get("voice", "")
    if not isinstance(voice, str) or len(voice) > 64:
        raise bad_request("voice must be a string of at most 64 characters", "voice", "invalid_value")
    model = body.get("model", "")
    version = _route(state, call, model if isinstance(model, str) else "", "tts")
    job = _submit(state, version, text)
    audio: Audio = await asyncio.wrap_future(job.future)
    _record_job(state, call, job, "speech")
    started = time.perf_counter()
    audio = await asyncio.to_thread(formats.change_tempo, audio, speed)
    content = await asyncio.to_thread(formats.encode_speech, audio, response_format)
    call.row["decode_s"] = time.perf_counter() - started  # for speech: tempo change and encoding
    state.metrics.audio.labels("speech").inc(audio.duration)
    call.row.update(audio_s=audio.duration, sample_rate=audio.sample_rate, codec=response_format,
                    words=len(text.split()), output_chars=len(text))
    call.row["words_per_s"] = call.row["words"] / audio.duration if audio.duration else None
    call.entry.audio = audio
    headers = call.headers()
    if voice:
        headers["x-voxproof-voice"] = str(version.options.get("voice", version.name))
    call.finish(200, log=False)
    return call.log_after(Response(content, media_type=formats.SPEECH_MEDIA[response_format], headers=headers))


# -- admin and information endpoints -----------------------------------------------------------------
async def admin_change(request, state, action: str):
    from fastapi.responses import JSONResponse

    key = authenticate(state, request, "admin")
    body = await _json_body(request) if request.headers.get("content-length", "0") != "0" else {}
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise bad_request("reason must be a string of at most 2000 characters", "reason", "invalid_value")
    version = body.get("version")
    if action in ("promote",) and not isinstance(version, str):
        raise bad_request("version is required (a registry version name)", "version", "missing_version")
    if action == "canary" and version is not None and not isinstance(version, str):
        raise bad_request("version must be a version name, or null to remove the canary", "version",
                          "invalid_value")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise bad_request("force must be true or false", "force", "invalid_value")

    def change() -> dict[str, Any]:
        with Registry.open(state.registry_location) as reg:
            if action == "promote":
                out = reg.promote(version, actor=key.name, reason=reason, force=force).to_dict()
            elif action == "rollback":
                out = reg.rollback(actor=key.name, reason=reason).to_dict()
            elif version is None:
                out = {"action": "remove-canary", "from_version": reg.remove_alias("canary", actor=key.name,
                                                                                   reason=reason)}
            else:
                old = reg.set_alias("canary", version, actor=key.name, reason=reason)
                out = {"action": "set-canary", "from_version": old, "to_version": reg.get(version).name}
            state.refresh_after_admin(reg)
            return out

    try:
        result = await asyncio.to_thread(change)
    except PromotionRefused as exc:
        raise ApiError(409, f"PromotionRefused: {exc}", "invalid_request_error", "version", "promotion_refused") from None
    except UsageError as exc:
        raise bad_request(f"UsageError: {exc}", "version", "invalid_value") from None
    log.info("admin %s by %s: %s", action, key.name, result)
    return JSONResponse({"object": "registry.change", "actor": key.name, **result,
                         "aliases": state.router.snapshot.aliases})


def models_list(state) -> dict[str, Any]:
    snap = state.router.snapshot
    data = []
    for v in snap.versions.values():
        created = _epoch(v.created_at)
        data.append({"id": v.name, "object": "model", "created": created, "owned_by": v.created_by,
                     "kind": v.kind, "backend": v.backend})
    for alias, target in sorted(snap.aliases.items()):
        v = snap.versions.get(target)
        data.append({"id": alias, "object": "model", "created": _epoch(v.created_at) if v else 0,
                     "owned_by": "voxproof", "kind": v.kind if v else None, "alias_of": target})
    return {"object": "list", "data": data}


def _epoch(iso: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp())
    except ValueError:
        return 0


def add_routes(app, state) -> None:
    from fastapi.responses import JSONResponse, Response

    @app.post("/v1/audio/transcriptions")
    async def _transcriptions(request: Request):
        return await transcriptions(request, state)

    @app.post("/v1/audio/speech")
    async def _speech(request: Request):
        return await speech(request, state)

    @app.get("/v1/models")
    async def _models(request: Request):
        authenticate(state, request, None)
        return JSONResponse(models_list(state))

    @app.get("/healthz")
    async def _healthz():
        return JSONResponse({"status": "ok", "uptime_s": round(time.time() - state.started, 3)})

    @app.get("/readyz")
    async def _readyz():
        ok, states = state.readiness()
        return JSONResponse({"status": "ready" if ok else "not ready", "models": states},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def _metrics(request: Request):
        if not state.options.metrics_public:
            authenticate(state, request, "admin")
        body, content_type = state.metrics.render(state.refresh_metrics)
        return Response(body, media_type=content_type)

    for action in ("promote", "rollback", "canary"):
        def make(action: str):
            async def endpoint(request: Request):
                return await admin_change(request, state, action)
            return endpoint

        app.post(f"/admin/{action}")(make(action))
