"""The bundled ``non-speech`` suite: a seeded, versioned set of clips in which nobody speaks, built only
from audio voxproof ships or generates, to measure what a recogniser writes when there is nothing to
write (``voxproof eval --data non-speech``).

Version 1 holds digital silence, low-level room tone (pink and white noise at -70 to -50 dBFS), the
bundled recorded noises (Speech Commands: dishes, exercise bike, running tap) at three levels and two
durations, tones and a sweep, click trains, music-like generated signals (chords with harmonics, a
melody, a drum pattern), and the speech-free leading and trailing pauses of the bundled LibriSpeech
recordings. Every clip is tagged ``non_speech=true`` (so its empty reference is scored, see
:mod:`voxproof.metrics.nonspeech`) and ``kind`` (its noise type). The same seed gives the same bytes;
a different rung means a new version.

:func:`materialize` writes the clips (16 kHz PCM WAV) and a voxproof JSONL manifest into a folder, once
per (version, seed), and hands the manifest to the runner like any dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxproof.manifest.utterance import NON_SPEECH_TAG, Utterance

log = logging.getLogger("voxproof.perturb")

NAME = "non-speech"
VERSION = 1
SAMPLE_RATE = 16000
KIND_TAG = "kind"
PAUSE_MARGIN_S = 0.12  # cut this far before the first / after the last voiced frame
MIN_PAUSE_S = 0.3  # shorter pauses are not used
_FRAME_S = 0.02
_VOICED_BELOW_PEAK_DB = 35.0  # a voiced frame is within 35 dB of the loudest frame
_VOICED_ABOVE_FLOOR_DB = 15.0  # ... and 15 dB above the noise floor (10th percentile of frame levels)
_MIN_VOICED_FRAMES = 3  # speech starts with 3 voiced frames in a row (60 ms): a click does not count


@dataclass(frozen=True)
class Clip:
    """One clip of the suite: ``kind`` is its noise type, ``detail`` says how it was made."""

    id: str
    kind: str
    detail: str
    samples: np.ndarray  # float32 mono at SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _rng(seed: int, clip_id: str) -> np.random.Generator:
    from voxproof.perturb.generated import suite_rng

    return suite_rng(f"{NAME}@{VERSION}", seed, clip_id)


def _at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``dbfs`` dB full scale (a full-scale sine is -3 dBFS)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    if rms == 0.0:
        return x.astype(np.float32)
    y = x * (10 ** (dbfs / 20.0) / rms)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:  # keep headroom: never clip
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def _seconds(s: float) -> int:
    return round(s * SAMPLE_RATE)


def _tone(freqs: tuple[float, ...], seconds: float, fade: float = 0.02) -> np.ndarray:
    t = np.arange(_seconds(seconds)) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / fade)
    return np.asarray(x * ramp)


def _sweep(f0: float, f1: float, seconds: float) -> np.ndarray:
    t = np.arange(_seconds(seconds)) / SAMPLE_RATE
    k = np.log(f1 / f0) / seconds
    return np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)


def _clicks(times: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(_seconds(seconds))
    click = rng.standard_normal(48) * np.exp(-np.arange(48) / 8.0)  # 3 ms decaying burst
    for t in times:
        i = int(t * SAMPLE_RATE)
        if i + len(click) < len(x):
            x[i:i + len(click)] += click
    return x


def _note(freq: float, seconds: float, harmonics: int = 5) -> np.ndarray:
    t = np.arange(_seconds(seconds)) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * freq * h * t) / h ** 1.5 for h in range(1, harmonics + 1))
    env = np.minimum(1.0, t / 0.01) * np.exp(-t * 2.5)  # plucked: fast attack, decay
    return np.asarray(x * env)


def _chords(rng: np.random.Generator, seconds: float) -> np.ndarray:
    roots = (220.0, 174.61, 261.63, 196.0)  # A, F, C, G
    beat = 1.0
    out = np.zeros(_seconds(seconds))
    for k in range(int(seconds / beat)):
        root = roots[k % len(roots)] * float(rng.choice([1.0, 2.0]))
        chord = sum(_note(root * r, beat * 1.5) for r in (1.0, 1.26, 1.5))
        i = _seconds(k * beat)
        n = min(len(chord), len(out) - i)
        out[i:i + n] += chord[:n]
    return out


def _melody(rng: np.random.Generator, seconds: float) -> np.ndarray:
    scale = 261.63 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12.0)
    out = np.zeros(_seconds(seconds))
    t = 0.0
    while t < seconds - 0.3:
        dur = float(rng.choice([0.25, 0.5]))
        note = _note(float(rng.choice(scale)), dur + 0.2, harmonics=3)
        i = _seconds(t)
        n = min(len(note), len(out) - i)
        out[i:i + n] += note[:n]
        t += dur
    return out


def _drums(rng: np.random.Generator, seconds: float) -> np.ndarray:
    out = np.zeros(_seconds(seconds))
    step = 0.25
    for k in range(int(seconds / step)):
        i = _seconds(k * step)
        if k % 4 == 0:  # kick: a falling low sine
            t = np.arange(_seconds(0.2)) / SAMPLE_RATE
            hit = np.sin(2 * np.pi * (60 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 18)
        else:  # hi-hat: a short noise burst
            hit = rng.standard_normal(_seconds(0.05)) * np.exp(-np.arange(_seconds(0.05)) / 120.0) * 0.4
        n = min(len(hit), len(out) - i)
        out[i:i + n] += hit[:n]
    return out


def _generated(seed: int) -> Iterator[Clip]:
    from voxproof.perturb.noise import pink_noise

    for s in (1.0, 5.0, 15.0):
        yield Clip(f"silence-{s:g}s", "silence", f"digital silence, {s:g} s", np.zeros(_seconds(s), np.float32))
    for db in (-70.0, -60.0, -50.0):
        cid = f"room-tone-pink{db:g}dB"
        yield Clip(cid, "room-tone", f"pink noise at {db:g} dBFS, 5 s", _at_dbfs(pink_noise(_seconds(5), _rng(seed, cid)), db))
    cid = "room-tone-white-60dB"
    yield Clip(cid, "room-tone", "white noise at -60 dBFS, 5 s", _at_dbfs(_rng(seed, cid).standard_normal(_seconds(5)), -60.0))
    yield Clip("tone-440Hz", "tone", "440 Hz sine at -20 dBFS, 3 s", _at_dbfs(_tone((440.0,), 3.0), -20.0))
    yield Clip("tone-1kHz", "tone", "1 kHz sine at -20 dBFS, 3 s", _at_dbfs(_tone((1000.0,), 3.0), -20.0))
    yield Clip("tone-dtmf", "tone", "dual tone 697+1209 Hz at -20 dBFS, 3 s", _at_dbfs(_tone((697.0, 1209.0), 3.0), -20.0))
    yield Clip("tone-sweep", "tone", "log sweep 100-4000 Hz at -20 dBFS, 5 s", _at_dbfs(_sweep(100.0, 4000.0, 5.0), -20.0))
    cid = "clicks-regular"
    yield Clip(cid, "clicks", "click train at 2 Hz, -30 dBFS, 5 s",
               _at_dbfs(_clicks(np.arange(0.25, 5.0, 0.5), 5.0, _rng(seed, cid)), -30.0))
    cid = "clicks-random"
    rng = _rng(seed, cid)
    yield Clip(cid, "clicks", "Poisson clicks (3/s), -30 dBFS, 5 s",
               _at_dbfs(_clicks(np.cumsum(rng.exponential(1 / 3.0, 20)), 5.0, rng), -30.0))
    cid = "music-chords"
    yield Clip(cid, "music", "plucked chords with harmonics, -20 dBFS, 8 s", _at_dbfs(_chords(_rng(seed, cid), 8.0), -20.0))
    cid = "music-melody"
    yield Clip(cid, "music", "random melody on a major scale, -20 dBFS, 8 s", _at_dbfs(_melody(_rng(seed, cid), 8.0), -20.0))
    cid = "music-drums"
    yield Clip(cid, "music", "kick and hi-hat pattern, -20 dBFS, 8 s", _at_dbfs(_drums(_rng(seed, cid), 8.0), -20.0))


def _recorded(seed: int) -> Iterator[Clip]:
    from voxproof.perturb.noise import bundled_dir, fit_length, load_bank

    for stem, samples in load_bank(str(bundled_dir("noise")), SAMPLE_RATE):
        for db in (-45.0, -35.0, -25.0):
            for s in (3.0, 10.0):
                cid = f"noise-{stem}{db:g}dB-{s:g}s"
                piece = fit_length(samples, _seconds(s), _rng(seed, cid))
                yield Clip(cid, f"noise:{stem}", f"bundled recording {stem} at {db:g} dBFS, {s:g} s",
                           _at_dbfs(piece.astype(np.float64), db))


def voiced_span(samples: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """Seconds from the start to the first voiced 20 ms frame, and to the end of the last one; None for
    audio shorter than a frame. A frame is voiced within 35 dB of the loudest frame and 15 dB above the
    noise floor; only runs of 3 voiced frames count, so a click or a breath does not start speech."""
    n = int(_FRAME_S * sample_rate)
    frames = len(samples) // n
    if frames == 0:
        return None
    power = np.mean(np.square(samples[:frames * n].reshape(frames, n), dtype=np.float64), axis=1)
    db = 10 * np.log10(power + 1e-20)
    threshold = max(db.max() - _VOICED_BELOW_PEAK_DB, np.percentile(db, 10) + _VOICED_ABOVE_FLOOR_DB)
    loud = (db >= threshold).astype(np.int64)
    runs = np.convolve(loud, np.ones(_MIN_VOICED_FRAMES, np.int64), mode="valid") == _MIN_VOICED_FRAMES
    starts = np.flatnonzero(runs)
    if len(starts) == 0:  # no sustained sound: the loudest frame alone
        starts = np.array([int(np.argmax(db))] * 2) - (_MIN_VOICED_FRAMES - 1) * np.array([0, 1])
    return float(starts[0] * _FRAME_S), float((starts[-1] + _MIN_VOICED_FRAMES) * _FRAME_S)


def speech_free_edges(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Seconds of speech-free audio at the start and at the end of a recording: up to ``PAUSE_MARGIN_S``
    before the first and after the last voiced frame (see :func:`voiced_span`)."""
    span = voiced_span(samples, sample_rate)
    if span is None:
        return 0.0, 0.0
    return max(0.0, span[0] - PAUSE_MARGIN_S), max(0.0, len(samples) / sample_rate - span[1] - PAUSE_MARGIN_S)


def _pauses() -> Iterator[Clip]:
    """The longest leading and the longest trailing pause of each speaker of the bundled recordings."""
    from voxproof.audio.io import load_audio
    from voxproof.manifest import bundled_dataset_path, read_manifest

    best: dict[tuple[str, str], tuple[float, str, np.ndarray]] = {}
    for utt in read_manifest(bundled_dataset_path()):
        audio = load_audio(utt.audio, sample_rate=SAMPLE_RATE)
        lead, trail = speech_free_edges(audio.samples, SAMPLE_RATE)
        for where, secs, part in (("lead", lead, audio.samples[:_seconds(lead)]),
                                  ("trail", trail, audio.samples[len(audio.samples) - _seconds(trail):])):
            key = (utt.speaker or "?", where)
            if secs >= MIN_PAUSE_S and (key not in best or secs > best[key][0]):
                best[key] = (secs, utt.id, part)
    for (speaker, where), (secs, uid, part) in sorted(best.items()):
        yield Clip(f"pause-{uid}-{where}", "pause",
                   f"{'leading' if where == 'lead' else 'trailing'} pause of bundled recording {uid} "
                   f"(speaker {speaker}), {secs:.2f} s", part.astype(np.float32))


def clips(seed: int = 0) -> list[Clip]:
    """Every clip of ``non-speech@1`` for ``seed``, in a fixed order."""
    return [*_generated(seed), *_recorded(seed), *_pauses()]


def items(seed: int) -> Iterator[tuple[Utterance, np.ndarray]]:
    """The suite's manifest entries (audio paths relative to the suite folder) with their samples."""
    for clip in clips(seed):
        yield (Utterance(id=clip.id, audio=f"audio/{clip.id}.wav", text="",
                         tags={NON_SPEECH_TAG: "true", KIND_TAG: clip.kind, "detail": clip.detail,
                               "suite": f"{NAME}@{VERSION}"}), clip.samples)


def materialize(seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Write the suite for ``seed`` (once) and return its JSONL manifest (see :mod:`voxproof.perturb.generated`)."""
    from voxproof.perturb.generated import materialize as write

    return write(f"{NAME}@{VERSION}", seed, cache_dir, items)
