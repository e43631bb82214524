"""Perturbation stage, lossy channels: codecs round-tripped through ffmpeg (MP3, Opus, G.711 mu-law and
A-law, GSM 06.10, G.722) or SoX (AMR-NB, through libopencore-amrnb, since Debian's ffmpeg cannot encode
it), and the telephone channel (300-3400 Hz band, 8 kHz, then a narrowband codec).

The decoded signal is resampled back to the input rate, aligned to the input (codec delay removed by
cross-correlation within +-60 ms) and cut or zero-padded to the input's length, so durations and word
timings keep their meaning. Encoding is deterministic; the seed is not used.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import UsageError
from voxproof.perturb.base import (
    Perturbation,
    PerturbationError,
    register,
    require_choice,
    require_range,
)

log = logging.getLogger("voxproof.perturb")


@dataclass(frozen=True)
class CodecInfo:
    """How one codec is run: tool, encoder, container, codec sample rate, bitrate choices (kbit/s)."""

    name: str
    tool: str  # "ffmpeg" or "sox"
    encoder: str
    container: str
    sample_rate: int | None  # None: keep the input rate when the codec allows it
    default_kbps: float | None
    kbps_range: tuple[float, float] | None = None
    kbps_choices: tuple[float, ...] = ()
    description: str = ""


CODECS: dict[str, CodecInfo] = {
    "mp3": CodecInfo("mp3", "ffmpeg", "libmp3lame", "mp3", None, 32.0, (8.0, 320.0),
                     description="MPEG-1/2 Layer III (LAME), CBR"),
    "opus": CodecInfo("opus", "ffmpeg", "libopus", "ogg", None, 16.0, (6.0, 510.0),
                      description="Opus (libopus, VoIP mode)"),
    "amr-nb": CodecInfo("amr-nb", "sox", "amr-nb", "amr-nb", 8000, 12.2,
                        kbps_choices=(4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2),
                        description="AMR narrowband (3GPP), via SoX + libopencore-amrnb"),
    "mulaw": CodecInfo("mulaw", "ffmpeg", "pcm_mulaw", "mulaw", 8000, 64.0,
                       description="G.711 mu-law, 8 kHz"),
    "alaw": CodecInfo("alaw", "ffmpeg", "pcm_alaw", "alaw", 8000, 64.0, description="G.711 A-law, 8 kHz"),
    "gsm": CodecInfo("gsm", "ffmpeg", "libgsm", "gsm", 8000, 13.0, description="GSM 06.10 full rate, 8 kHz"),
    "g722": CodecInfo("g722", "ffmpeg", "g722", "g722", 16000, 64.0, description="G.722 ADPCM, 16 kHz"),
}

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_TIMEOUT_S = 60.0
_RAW = ("mulaw", "alaw", "gsm", "g722")


@functools.lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the audio encoders this machine's ffmpeg has (empty without ffmpeg)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return frozenset()
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0].startswith("A"):
            names.add(parts[1])
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def sox_amrnb_reason() -> str | None:
    """``None`` when SoX can encode AMR-NB here, else why not (probed once by encoding 0.1 s)."""
    exe = shutil.which("sox")
    if exe is None:
        return ("ffmpeg cannot encode AMR-NB and SoX is not installed; install 'sox', 'libsox-fmt-all' "
                "(or libsox-fmt-amr) and 'libopencore-amrnb0'")
    silence = np.zeros(800, dtype="<i2").tobytes()
    try:
        proc = subprocess.run(
            [exe, "-q", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-",
             "-t", "amr-nb", "-C", "7", "-"],
            input=silence, capture_output=True, check=False, timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"SoX failed to run ({exc})"
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        return ("ffmpeg cannot encode AMR-NB and SoX could not either"
                f" ({msg[-1] if msg else 'no output'}); install 'libsox-fmt-all' and 'libopencore-amrnb0'")
    return None


def codec_unavailable_reason(codec: str) -> str | None:
    info = CODECS[codec]
    if info.tool == "sox":
        return sox_amrnb_reason()
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed; install it (Debian: apt-get install ffmpeg)"
    if info.encoder not in ffmpeg_encoders():
        return f"this ffmpeg has no '{info.encoder}' encoder; install an ffmpeg built with it"
    return None


def _run(cmd: list[str], data: bytes | None, what: str) -> bytes:
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise PerturbationError(f"{what}: {cmd[0]} took longer than {_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise PerturbationError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PerturbationError(f"{what}: {cmd[0]} failed: {err[-1] if err else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def codec_rate(info: CodecInfo, sample_rate: int) -> int:
    if info.sample_rate is not None:
        return info.sample_rate
    allowed = _MP3_RATES if info.name == "mp3" else _OPUS_RATES
    for rate in allowed:
        if rate >= sample_rate:
            return rate
    return allowed[-1]


def roundtrip(samples: np.ndarray, sample_rate: int, codec: str, kbps: float | None) -> np.ndarray:
    """Encode then decode ``samples`` (float32 at ``sample_rate``) with ``codec``; returns float32 samples
    at ``sample_rate``, delay-compensated, same length."""
    info = CODECS[codec]
    rate = codec_rate(info, sample_rate)
    x = Audio(samples.astype(np.float32), sample_rate).resampled(rate).samples
    pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
    what = f"codec {codec}"
    with tempfile.TemporaryDirectory(prefix="voxproof-codec-") as tmp:
        coded = str(Path(tmp) / f"coded.{info.container}")
        if info.tool == "sox":
            mode = info.kbps_choices.index(kbps) if kbps in info.kbps_choices else len(info.kbps_choices) - 1
            _run(["sox", "-q", "-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1", "-",
                  "-t", "amr-nb", "-C", str(mode), coded], pcm, what)
            raw = _run(["sox", "-q", "-t", "amr-nb", coded, "-t", "raw", "-e", "signed", "-b", "16",
                        "-c", "1", "-r", str(rate), "-"], None, what)
        else:
            enc = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
                   "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-c:a", info.encoder]
            if kbps is not None and info.kbps_range is not None:
                enc += ["-b:a", f"{int(round(kbps * 1000))}"]
            if codec == "opus":
                enc += ["-application", "voip", "-vbr", "off"]
            enc += ["-map_metadata", "-1", "-f", info.container, coded]
            _run(enc, pcm, what)
            # headerless containers need their format and rate stated to be read back
            raw_in = ["-f", info.container] if info.container in _RAW else []
            if info.container in _RAW and codec != "g722":
                raw_in += ["-ar", str(rate), "-ac", "1"]
            raw = _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
                        *raw_in, "-i", coded, "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"], None, what)
    decoded = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    y = Audio(np.ascontiguousarray(decoded), rate).resampled(sample_rate).samples
    return align_to(y, samples, max_lag=int(0.06 * sample_rate))


def align_to(y: np.ndarray, ref: np.ndarray, max_lag: int) -> np.ndarray:
    """``y`` shifted by the lag (within +-``max_lag`` samples) that best matches ``ref``, then cut or
    zero-padded to ``len(ref)``."""
    n = len(ref)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    lag = 0
    if len(y) and np.any(ref) and np.any(y):
        size = 1 << int(np.ceil(np.log2(len(y) + n)))
        xc = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(ref, size)), size)
        cand = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]]) if max_lag > 0 else xc[:1]
        lags = np.concatenate([np.arange(max_lag + 1), -np.arange(max_lag, 0, -1)]) if max_lag > 0 else [0]
        lag = int(lags[int(np.argmax(cand))])
    if lag > 0:
        y = y[lag:]
    elif lag < 0:
        y = np.concatenate([np.zeros(-lag, dtype=y.dtype), y])
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(y))] = y[:n]
    return out


def _check_codec(kind: str, codec: str, bitrate: float | None) -> None:
    require_choice(kind, "codec", codec, tuple(CODECS))
    info = CODECS[codec]
    if bitrate is None:
        return
    if info.kbps_range is not None:
        require_range(kind, "bitrate (kbit/s)", bitrate, *info.kbps_range)
    elif info.kbps_choices:
        if bitrate not in info.kbps_choices:
            raise UsageError(
                f"{kind}: {codec} bitrate={bitrate:g} kbit/s is not a mode; choose one of "
                + ", ".join(f"{c:g}k" for c in info.kbps_choices)
            )
    elif bitrate != info.default_kbps:
        raise UsageError(f"{kind}: {codec} has a fixed bitrate of {info.default_kbps:g} kbit/s")


def _kbps(value: float | None) -> float | None:
    """Bitrates given in bit/s (``8k`` parses to 8000) become kbit/s; small numbers are kbit/s already."""
    if value is None:
        return None
    return value / 1000.0 if value >= 1000 else value


@register
@dataclass(frozen=True)
class Codec(Perturbation):
    """Round trip through a lossy codec: ``codec`` (mp3, opus, amr-nb, mulaw, alaw, gsm, g722) at
    ``bitrate`` kbit/s (``8k`` or ``8`` both mean 8 kbit/s; default: the codec's usual rate)."""

    codec: str = "mp3"
    bitrate: float | None = None

    kind = "codec"
    positional = "codec"
    severity_field = "bitrate"
    axis = "bitrate (kbit/s)"
    worse = "lower"
    label_units: ClassVar[dict[str, str]] = {"bitrate": "k"}
    description = "lossy codec round trip (ffmpeg; AMR-NB via SoX)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bitrate", _kbps(self.bitrate))
        super().__post_init__()

    @property
    def family(self) -> str:  # type: ignore[override]
        return f"codec-{self.codec}"

    @property
    def severity(self) -> float | None:
        return self.kbps

    @property
    def kbps(self) -> float | None:
        return self.bitrate if self.bitrate is not None else CODECS[self.codec].default_kbps

    def validate(self) -> None:
        _check_codec(self.kind, self.codec, self.bitrate)

    def unavailable_reason(self) -> str | None:
        return codec_unavailable_reason(self.codec)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        if len(audio.samples) == 0:
            return audio
        return Audio(roundtrip(audio.samples, audio.sample_rate, self.codec, self.kbps), audio.sample_rate)


TELEPHONE_CODECS = ("mulaw", "alaw", "gsm", "amr-nb", "none")


def telephone_band(samples: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Band-pass ``low_hz``..``high_hz`` (4th-order Butterworth, zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    nyq = sample_rate / 2.0
    high = min(high_hz, 0.95 * nyq)
    sos = butter(4, [low_hz / nyq, high / nyq], btype="bandpass", output="sos")
    if len(samples) < 30:
        return samples.astype(np.float32)
    return sosfiltfilt(sos, samples.astype(np.float64)).astype(np.float32)


@register
@dataclass(frozen=True)
class Telephone(Perturbation):
    """Narrowband telephone channel: band-pass ``low``..``high`` Hz, 8 kHz sampling, then ``codec``
    (mulaw, alaw, gsm, amr-nb, or none) at ``bitrate`` kbit/s where the codec has modes (AMR-NB)."""

    codec: str = "mulaw"
    bitrate: float | None = None
    low: float = 300.0
    high: float = 3400.0

    kind = "telephone"
    positional = "codec"
    severity_field = "bitrate"
    family = "telephone"
    axis = "bitrate (kbit/s)"
    worse = "lower"
    label_units: ClassVar[dict[str, str]] = {"bitrate": "k"}
    description = "telephone channel: 300-3400 Hz, 8 kHz, narrowband codec"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bitrate", _kbps(self.bitrate))
        super().__post_init__()

    @property
    def severity(self) -> float | None:
        if self.codec == "none":
            return 128.0  # 8 kHz x 16 bit linear PCM
        return self.bitrate if self.bitrate is not None else CODECS[self.codec].default_kbps

    def validate(self) -> None:
        require_choice(self.kind, "codec", self.codec, TELEPHONE_CODECS)
        if self.codec != "none":
            _check_codec(self.kind, self.codec, self.bitrate)
        require_range(self.kind, "low", self.low, 0.0, 1000.0)
        require_range(self.kind, "high", self.high, 1000.0, 4000.0)

    def unavailable_reason(self) -> str | None:
        return None if self.codec == "none" else codec_unavailable_reason(self.codec)

    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        if len(audio.samples) == 0:
            return audio
        narrow = Audio(audio.samples, audio.sample_rate).resampled(8000)
        band = telephone_band(narrow.samples, 8000, self.low, self.high)
        if self.codec != "none":
            band = roundtrip(band, 8000, self.codec, self.severity)
        back = Audio(np.ascontiguousarray(band), 8000).resampled(audio.sample_rate).samples
        out = np.zeros(len(audio.samples), dtype=np.float32)
        out[: min(len(out), len(back))] = back[: len(out)]
        return Audio(out, audio.sample_rate)
