"""Speaker stage, embeddings: Resemblyzer's voice encoder (GE2E, Wan et al. 2018; 3-layer LSTM of 256
units over 40 mel bands, 256-d output) run in numpy from the weights the ``resemblyzer`` package ships
(``pretrained.pt``), without torch.

Front end as in Resemblyzer: 16 kHz, volume raised to -30 dBFS (never lowered), silences longer than
~0.2 s trimmed, a 40-band power mel spectrogram (25 ms Hann window, 10 ms hop, Slaney mel filters,
centred frames), partial windows of 160 frames (1.6 s) at 1.3 per second; the utterance embedding is
the L2-normalised mean of the partial embeddings. Resemblyzer trims silences with WebRTC VAD; here
the trim uses frame energy (30 ms windows, 40 dB under the loudest), the one deviation.

``info()`` carries the sha256 of the weights file: similarities from different embedding models are
never compared (``SpeakerModelMismatch``).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import BackendUnavailable

log = logging.getLogger("voxproof.speaker")

RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 40
PARTIAL = 160
HIDDEN = 256
MODEL_NAME = "resemblyzer-ge2e"
INSTALL_HINT = ("speaker similarity needs the Resemblyzer weights: pip install --no-deps resemblyzer "
                "(--no-deps: its declared dependencies would pull torch, which voxproof does not need)")


def default_weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise BackendUnavailable(INSTALL_HINT)
    path = Path(spec.origin).parent / "pretrained.pt"
    if not path.is_file():
        raise BackendUnavailable(f"the resemblyzer package has no pretrained.pt; {INSTALL_HINT}")
    return path


def slaney_mel(sr: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) defaults: Slaney mel scale, area-normalised triangles."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log_region = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_region, lin)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        lin = m * (200.0 / 3)
        log_region = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log_region, lin)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]).astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """[frames, 40] power mel spectrogram as ``librosa.feature.melspectrogram`` (centred, zero-padded)."""
    padded = np.pad(wav.astype(np.float32), N_FFT // 2)
    n = 1 + (padded.size - N_FFT) // HOP
    frames = padded[np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ _MEL.T).astype(np.float32)


_MEL = slaney_mel()


def preprocess(audio: Audio) -> np.ndarray:
    """16 kHz, volume up to -30 dBFS, long silences trimmed."""
    wav = audio.resampled(RATE).samples.astype(np.float64)
    wav = np.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0)
    rms = float(np.sqrt(np.mean(wav ** 2))) if wav.size else 0.0
    if rms > 0:
        change = -30.0 - 20 * np.log10(rms)
        if change > 0:
            wav = wav * 10 ** (change / 20)
    return _trim_long_silences(wav).astype(np.float32)


def _trim_long_silences(wav: np.ndarray) -> np.ndarray:
    win = 480  # 30 ms
    n = wav.size // win
    if n == 0:
        return wav
    energy = 10 * np.log10(np.mean(wav[: n * win].reshape(n, win) ** 2, axis=1) + 1e-12)
    flags = energy > energy.max() - 40.0
    width = 8
    padded = np.concatenate([np.zeros((width - 1) // 2), flags.astype(float), np.zeros(width // 2)])
    avg = np.convolve(padded, np.ones(width) / width, mode="valid")
    mask = np.round(avg).astype(bool)
    from scipy.ndimage import binary_dilation

    mask = binary_dilation(mask, np.ones(7))
    return wav[: n * win][np.repeat(mask, win)]


@dataclass(frozen=True)
class SpeakerModelInfo:
    name: str
    checksum: str
    path: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "checksum": self.checksum, "path": self.path}


class SpeakerEncoder:
    """Utterance embeddings (256-d, unit length); cosine similarity = dot product."""

    def __init__(self, weights_path: str | Path | None = None):
        from voxproof.speaker.weights import file_sha256, load_checkpoint

        path = Path(weights_path) if weights_path else default_weights_path()
        state = load_checkpoint(path)
        state = state.get("model_state", state) if isinstance(state, dict) else state
        try:
            self.layers = [(state[f"lstm.weight_ih_l{k}"].T.copy(), state[f"lstm.weight_hh_l{k}"].T.copy(),
                            state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]) for k in range(3)]
            self.linear_w, self.linear_b = state["linear.weight"].T.copy(), state["linear.bias"]
        except (KeyError, TypeError, AttributeError) as exc:
            from voxproof.errors import DataError

            raise DataError(f"{path} is not a Resemblyzer voice-encoder checkpoint (missing {exc})") from None
        self._info = SpeakerModelInfo(MODEL_NAME, file_sha256(path), str(path))

    def info(self) -> SpeakerModelInfo:
        return self._info

    def forward(self, mels: np.ndarray) -> np.ndarray:
        """[batch, frames, 40] -> [batch, 256] unit-length embeddings."""
        x = mels.astype(np.float32)
        batch, steps, _ = x.shape
        for w_ih, w_hh, b in self.layers:
            pre = x @ w_ih + b  # [batch, steps, 1024], gates i, f, g, o
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            out = np.empty((batch, steps, HIDDEN), np.float32)
            for t in range(steps):
                g = pre[:, t] + h @ w_hh
                i, f = _sigmoid(g[:, :HIDDEN]), _sigmoid(g[:, HIDDEN:2 * HIDDEN])
                cell, o = np.tanh(g[:, 2 * HIDDEN:3 * HIDDEN]), _sigmoid(g[:, 3 * HIDDEN:])
                c = f * c + i * cell
                h = o * np.tanh(c)
                out[:, t] = h
            x = out
        raw = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        norm = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.where(norm > 0, norm, 1.0)

    def embed(self, audio: Audio, *, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray | None:
        """The utterance embedding, or ``None`` when the clip has no sound after trimming."""
        wav = preprocess(audio)
        if wav.size < HOP or not np.any(wav):
            return None
        mel_slices, needed = _partial_slices(wav.size, rate, min_coverage)
        if needed > wav.size:
            wav = np.pad(wav, (0, needed - wav.size))
        mel = mel_spectrogram(wav)
        mels = np.stack([mel[s:s + PARTIAL] for s in mel_slices])
        with _one_blas_thread():
            partial = self.forward(mels)
        raw = partial.mean(axis=0)
        return (raw / np.linalg.norm(raw)).astype(np.float32)


def _one_blas_thread():
    """The LSTM's 480 small matrix products per window run 10-15x faster on one BLAS thread than on a
    thread pool that spins up for each (measured on a loaded 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _partial_slices(n_samples: int, rate: float, min_coverage: float) -> tuple[list[int], int]:
    """Start frames of the 1.6 s partial windows and the samples they need (Resemblyzer's rule)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE / rate) / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return starts, (starts[-1] + PARTIAL) * HOP


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
