"""Serving stage, response bodies: transcripts as OpenAI's json/text/srt/vtt/verbose_json, and
synthesised audio encoded as wav/flac/mp3/opus/pcm."""

from __future__ import annotations

import io
import subprocess
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.backends.base import Transcript, Word
from voxproof.errors import UnsupportedAudio

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SPEECH_FORMATS = ("wav", "flac", "mp3", "opus", "pcm")
SPEECH_MEDIA = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
                "pcm": "audio/pcm"}
_CUE_SECONDS = 6.0  # longest subtitle cue built from word times


def verbose_json(t: Transcript, duration: float, language: str | None, granularities: tuple[str, ...]) -> dict:
    """OpenAI's verbose_json: text, language, duration, segments, and words when asked for.

    Words carry ``probability`` (an extension the voxproof openai backend reads as confidence). The
    backend gives no per-segment times, so segments are the subtitle cues built from the word times,
    each with the utterance's ``avg_logprob``/``no_speech_prob``/``compression_ratio``."""
    body: dict[str, Any] = {"task": "transcribe", "language": _language_name(language), "duration": duration,
                            "text": t.text}
    if "segment" in granularities or not granularities:
        cues = _cues(t, duration)
        body["segments"] = [
            {"id": i, "seek": 0, "start": s, "end": e, "text": text, "tokens": [],
             "temperature": 0.0,
             "avg_logprob": t.extras.get("avg_logprob"), "compression_ratio": t.extras.get("compression_ratio"),
             "no_speech_prob": t.extras.get("no_speech_prob")}
            for i, (s, e, text) in enumerate(cues)
        ]
    if "word" in granularities:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end, "probability": w.confidence}
                         for w in t.words]
    return body


def _language_name(code: str | None) -> str:
    return {"en": "english"}.get(code or "en", code or "english")


def _cues(t: Transcript, duration: float) -> list[tuple[float, float, str]]:
    """Subtitle cues (start, end, text): words grouped up to ``_CUE_SECONDS`` or a sentence end."""
    timed = [w for w in t.words if w.start is not None and w.end is not None]
    if not timed:
        return [(0.0, round(duration, 3), t.text)] if t.text else []
    cues: list[tuple[float, float, str]] = []
    group: list[Word] = []
    for w in timed:
        group.append(w)
        if (group[-1].end - group[0].start >= _CUE_SECONDS) or w.text.endswith((".", "?", "!")):
            cues.append((group[0].start, group[-1].end, " ".join(x.text for x in group)))
            group = []
    if group:
        cues.append((group[0].start, group[-1].end, " ".join(x.text for x in group)))
    return cues


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(t: Transcript, duration: float) -> str:
    return "".join(f"{i}\n{_stamp(s, ',')} --> {_stamp(e, ',')}\n{text}\n\n"
                   for i, (s, e, text) in enumerate(_cues(t, duration), 1))


def vtt(t: Transcript, duration: float) -> str:
    return "WEBVTT\n\n" + "".join(f"{_stamp(s, '.')} --> {_stamp(e, '.')}\n{text}\n\n"
                                  for s, e, text in _cues(t, duration))


def change_tempo(audio: Audio, speed: float) -> Audio:
    """Audio played ``speed`` times faster, pitch kept (ffmpeg atempo, chained for < 0.5)."""
    if speed == 1.0 or audio.samples.size == 0:
        return audio
    filters, rest = [], speed
    while rest < 0.5:
        filters.append("atempo=0.5")
        rest /= 0.5
    filters.append(f"atempo={rest:.6f}")
    raw = _ffmpeg(["-f", "f32le", "-ar", str(audio.sample_rate), "-ac", "1", "-i", "pipe:0",
                   "-filter:a", ",".join(filters), "-f", "f32le", "-ac", "1", "pipe:1"],
                  audio.samples.astype("<f4").tobytes())
    return Audio(np.frombuffer(raw, dtype="<f4").astype(np.float32), audio.sample_rate)


def encode_speech(audio: Audio, fmt: str) -> bytes:
    """``audio`` in ``fmt``: wav/flac (16-bit), pcm (raw 16-bit little-endian mono at the audio's rate),
    mp3 (64 kbit/s), opus (Ogg, 48 kbit/s)."""
    samples = np.clip(audio.samples, -1.0, 1.0)
    if fmt == "pcm":
        return (samples * 32767.0).round().astype("<i2").tobytes()
    if fmt in ("wav", "flac"):
        import soundfile

        buf = io.BytesIO()
        soundfile.write(buf, samples, audio.sample_rate, format=fmt.upper(), subtype="PCM_16")
        return buf.getvalue()
    codec = {"mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
             "opus": ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"]}[fmt]
    return _ffmpeg(["-f", "f32le", "-ar", str(audio.sample_rate), "-ac", "1", "-i", "pipe:0", *codec, "pipe:1"],
                   samples.astype("<f4").tobytes())


def _ffmpeg(args: list[str], data: bytes) -> bytes:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", *args]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False, timeout=120)
    except FileNotFoundError as exc:
        raise UnsupportedAudio("ffmpeg is not installed (needed for mp3/opus and speed); "
                               "install it (Debian: apt-get install ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise UnsupportedAudio("ffmpeg took over 120 s to encode the speech") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UnsupportedAudio(f"ffmpeg failed: {tail[-1] if tail else proc.returncode}")
    return proc.stdout
