"""TTS evaluation stage 3a: predicted MOS with DNSMOS (P.835 SIG/BAK/OVRL and P.808) via ``speechmos``,
and optionally PLCMOS v2 (the packet-loss-concealment MOS predictor speechmos also ships, ONNX, offline).

The audio is prepared exactly one way, and the preparation is part of the number:

- resampled to 16 kHz with soxr (HQ), the only rate the models accept;
- headroom: samples must lie in [-1, 1]. When the peak exceeds 1 (Piper peaks at 1.0 and resampling
  can overshoot a little), the whole clip is scaled down by ``1 / peak`` rather than hard-clipped,
  because clipping adds distortion the predictor would charge to the synthesiser. The applied gain
  is recorded (``mos_gain_db``) and a warning is raised. Audio is otherwise never normalised: DNSMOS
  is level-sensitive and the level a system outputs is part of what it ships.

Every score is labelled with the predictor name and version (``speechmos`` package version and a
checksum of its ONNX files) and carries warnings when the input is outside the predictor's domain:
upsampled from below 16 kHz, shorter than ``min_duration`` (speechmos tiles clips under 9.01 s), little
or no speech, or a language other than English. Silence is scored as is (DNSMOS gives pure digital
silence about 1.8 OVRL, so a silent synthesiser is not obviously penalised by MOS alone: the failure
detectors catch it). Empty audio cannot be scored and returns ``None``.

PLCMOS (``MosOptions(plcmos=True)``) sees the same prepared 16 kHz samples. speechmos averages it over
15 random "rater embeddings" drawn from numpy's global generator, so its number changes from call to
call; here the 15 embeddings are drawn once from a fixed seed (``plcmos_seed``), which makes the score
reproducible. Its cost grows with clip length (about 0.07 s of CPU per second of audio on the
development machine, on top of DNSMOS), so it is off by default.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import BackendError, BackendUnavailable

log = logging.getLogger("voxproof.tts.mos")

MOS_SAMPLE_RATE = 16000
DNSMOS_WINDOW_SECONDS = 9.01
MOS_KEYS = ("sig", "bak", "ovrl", "p808")
PLCMOS_ROUNDS = 15
PLCMOS_MAX_SECONDS = 120.0  # longer clips are not scored by PLCMOS: its input (and memory) grows with length
PREDICTOR_KEYS = (*MOS_KEYS, "plcmos")  # every per-clip predictor a row may carry (as ``mos_<key>``)


@dataclass(frozen=True)
class MosScore:
    """DNSMOS scores of one clip on the 1–5 scale, with how the input was prepared.

    ``gain_db`` is the headroom gain applied (0.0 when none); ``input_sample_rate`` the rate before
    resampling; ``warnings`` names every way the clip is outside the predictor's domain.
    """

    sig: float
    bak: float
    ovrl: float
    p808: float
    input_sample_rate: int
    duration: float
    gain_db: float = 0.0
    warnings: tuple[str, ...] = ()
    plcmos: float | None = None

    def features(self) -> dict[str, float]:
        """The numbers as run-store features (``mos_sig``, ``mos_bak``, ``mos_ovrl``, ``mos_p808``,
        and ``mos_plcmos`` when PLCMOS ran)."""
        out = {
            "mos_sig": self.sig, "mos_bak": self.bak, "mos_ovrl": self.ovrl, "mos_p808": self.p808,
            "mos_gain_db": self.gain_db,
        }
        if self.plcmos is not None:
            out["mos_plcmos"] = self.plcmos
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class MosOptions:
    """How DNSMOS is run. ``personalized`` selects the personalised P.835 model (penalises
    interfering talkers); ``min_duration`` (s) and ``min_speech_fraction`` set the domain warnings;
    ``plcmos`` also runs PLCMOS v2 with its rater embeddings drawn from ``plcmos_seed``."""

    personalized: bool = False
    min_duration: float = 1.0
    min_speech_fraction: float = 0.2
    plcmos: bool = False
    plcmos_seed: int = 0


@dataclass
class DnsmosPredictor:
    """DNSMOS through ``speechmos``. Construct once; ``score`` is thread-compatible but not parallel."""

    options: MosOptions = field(default_factory=MosOptions)

    def __post_init__(self) -> None:
        self._dnsmos = _import_dnsmos()
        self._plcmos = _load_plcmos() if self.options.plcmos else None

    @property
    def name(self) -> str:
        return "dnsmos-personalized" if self.options.personalized else "dnsmos"

    def info(self) -> dict[str, Any]:
        """Predictor name, version and model checksum: the label every MOS number carries."""
        from importlib.metadata import version

        out: dict[str, Any] = {
            "name": self.name,
            "version": f"speechmos {version('speechmos')}",
            "models": "P.835 sig_bak_ovr.onnx + P.808 model_v8.onnx",
            "model_checksum": _model_checksum(self._dnsmos.__file__, self.options.personalized),
            "sample_rate": MOS_SAMPLE_RATE,
            "headroom": "peak > 1 scaled to 1 (never clipped)",
        }
        if self._plcmos is not None:
            out["plcmos"] = {
                "model": self._plcmos.onnx_name,
                "model_checksum": hashlib.sha256(Path(self._plcmos.model_path).read_bytes()).hexdigest()[:16],
                "rater_embeddings": f"{PLCMOS_ROUNDS} drawn from numpy default_rng({self.options.plcmos_seed})",
            }
        return out

    def prepare(self, audio: Audio) -> tuple[np.ndarray, float, list[str]]:
        """The 16 kHz samples DNSMOS will see, the gain applied (dB) and domain warnings."""
        if not np.all(np.isfinite(audio.samples)):
            raise BackendError("audio for MOS has NaN or infinite samples; the synthesiser output is corrupt")
        warnings: list[str] = []
        if audio.sample_rate < MOS_SAMPLE_RATE:
            warnings.append(
                f"upsampled from {audio.sample_rate} Hz: no content above {audio.sample_rate // 2} Hz, "
                "DNSMOS expects wideband 16 kHz speech"
            )
        samples = audio.resampled(MOS_SAMPLE_RATE).samples.astype(np.float32, copy=True)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        gain_db = 0.0
        if peak > 1.0:
            samples /= peak
            np.clip(samples, -1.0, 1.0, out=samples)  # guards float rounding only
            gain_db = -20.0 * float(np.log10(peak))
            warnings.append(f"peak {peak:.3f} above full scale: scaled by {gain_db:.2f} dB for the predictor")
        duration = samples.size / MOS_SAMPLE_RATE
        if 0 < duration < self.options.min_duration:
            warnings.append(
                f"only {duration:.2f} s: tiled {int(np.ceil(DNSMOS_WINDOW_SECONDS / duration))}x to fill the "
                f"{DNSMOS_WINDOW_SECONDS} s window, outside the predictor's domain"
            )
        return samples, gain_db, warnings

    def score(
        self, audio: Audio, *, speech_seconds: float | None = None, language: str = "en"
    ) -> MosScore | None:
        """DNSMOS of ``audio``; ``None`` for empty audio. ``speech_seconds`` (from a VAD) enables the
        non-speech warning; ``language`` other than English adds a domain warning."""
        if audio.samples.size == 0:
            return None
        samples, gain_db, warnings = self.prepare(audio)
        if samples.size == 0:
            return None
        duration = samples.size / MOS_SAMPLE_RATE
        if speech_seconds is not None and speech_seconds < self.options.min_speech_fraction * duration:
            warnings.append(
                f"little or no speech ({speech_seconds:.2f} s of {duration:.2f} s): DNSMOS scores speech only"
            )
        if not language.lower().startswith("en"):
            warnings.append(f"language {language!r}: DNSMOS was validated on English speech")
        model_type = "dnsmos_personalized" if self.options.personalized else "dnsmos"
        try:
            result = self._dnsmos.run(samples, MOS_SAMPLE_RATE, model_type=model_type)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"DNSMOS failed on a {duration:.2f} s clip: {exc}") from exc
        plc = None
        if self._plcmos is not None:
            if duration <= PLCMOS_MAX_SECONDS:
                plc = self.plcmos(samples)
            else:
                warnings.append(f"PLCMOS not run: {duration:.0f} s is over its {PLCMOS_MAX_SECONDS:.0f} s limit "
                                "(its input grows with length); split the clip to score it")
        return MosScore(
            sig=float(result["sig_mos"]),
            bak=float(result["bak_mos"]),
            ovrl=float(result["ovrl_mos"]),
            p808=float(result["p808_mos"]),
            input_sample_rate=audio.sample_rate,
            duration=audio.duration,
            gain_db=gain_db,
            warnings=tuple(warnings),
            plcmos=plc,
        )

    def plcmos(self, samples: np.ndarray) -> float:
        """PLCMOS v2 of prepared 16 kHz samples (from ``prepare``): the mean over ``PLCMOS_ROUNDS``
        rater embeddings drawn from a fixed seed, so the same clip always gets the same score."""
        if self._plcmos is None:
            raise BackendUnavailable("PLCMOS was not loaded; construct with MosOptions(plcmos=True)")
        model = self._plcmos
        feats = np.float32(model.stft_transform(samples))[np.newaxis, np.newaxis, ...]
        raters = np.random.default_rng(self.options.plcmos_seed).normal(size=(PLCMOS_ROUNDS, 64)).astype(np.float32)
        try:
            vals = [float(np.ravel(model.session.run(None, {"degraded_audio": feats, "rater_embed": r[None, :]})[0])[0])
                    for r in raters]
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"PLCMOS failed on a {samples.size / MOS_SAMPLE_RATE:.2f} s clip: {exc}") from exc
        return float(np.mean(vals))


def numba_cache_dir() -> Path:
    """Where numba (used by librosa inside speechmos) caches compiled code: ``$NUMBA_CACHE_DIR`` if
    set, else ``$XDG_CACHE_HOME/voxproof/numba`` (default ``~/.cache/voxproof/numba``)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "voxproof" / "numba"


def _import_dnsmos():
    # numba writes its cache beside the package (site-packages) unless told otherwise, which fails on
    # read-only installs; it reads NUMBA_CACHE_DIR at import, so set it before librosa is imported.
    if "NUMBA_CACHE_DIR" not in os.environ:
        path = numba_cache_dir()
        path.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(path)
    try:
        from speechmos import dnsmos
    except ImportError as exc:
        raise BackendUnavailable(
            f"DNSMOS needs speechmos, librosa, onnxruntime and requests ({exc}); "
            "install with: pip install 'voxproof[mos]'"
        ) from exc
    return dnsmos


def _load_plcmos():
    _import_dnsmos()  # sets the numba cache directory and checks the extra is installed
    try:
        from speechmos.plcmos import PLCMOS
    except ImportError as exc:
        raise BackendUnavailable(
            f"PLCMOS needs speechmos 0.0.1.1 or later with onnxruntime ({exc}); install with: pip install 'voxproof[mos]'"
        ) from exc
    try:
        return PLCMOS()
    except Exception as exc:  # onnxruntime raises its own exception types for a missing or corrupt model
        raise BackendUnavailable(f"PLCMOS model could not be loaded ({type(exc).__name__}: {exc}); "
                                 "reinstall speechmos") from exc


_CHECKSUMS: dict[tuple[str, bool], str] = {}


def _model_checksum(module_file: str, personalized: bool) -> str:
    key = (module_file, personalized)
    if key not in _CHECKSUMS:
        root = Path(module_file).parent
        primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        h = hashlib.sha256()
        for path in (primary, root / "dnsmos_models" / "model_v8.onnx"):
            h.update(path.read_bytes())
        _CHECKSUMS[key] = h.hexdigest()[:16]
    return _CHECKSUMS[key]
