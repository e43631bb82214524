"""Perturbation stage, building blocks: the ``Perturbation`` base record, its registry and the text syntax.

A perturbation is a frozen dataclass whose fields are its parameters. It transforms an
:class:`~voxproof.audio.signal.Audio` given a seeded ``numpy.random.Generator`` (never a global RNG)
and returns audio at the *same sample rate*. Every perturbation serialises to a JSON dict
(``{"kind": "noise", "snr": 10.0, ...}``) and back, and has a severity on a natural scale (SNR in dB,
bitrate in kbit/s, RT60 in s...) with a direction (``worse='lower'`` or ``'higher'``).

Text syntax (CLI ``--perturb``): ``KIND[:[VALUE,]KEY=VALUE[,KEY=VALUE...]]``; the optional bare first
``VALUE`` sets the kind's main parameter (``codec:opus`` = ``codec:codec=opus``). Steps chain with ``+``
and are applied left to right: ``codec:mp3,bitrate=16k+noise:snr=20``. Numbers accept ``k`` (x1000
for bitrates in bit/s: ``8k`` = 8 kbit/s), ``%`` (``rate=5%`` = 0.05) and ``dB``/``s``/``ms`` suffixes.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import UsageError, VoxproofError

SPEC_VERSION = 1


class PerturbationError(VoxproofError):
    """A perturbation failed on one input (for example the codec process crashed)."""


class PerturbationUnavailable(PerturbationError):
    """A perturbation cannot run on this machine (a codec encoder or an optional package is missing).

    The message names what is missing and how to get it.
    """


_REGISTRY: dict[str, type[Perturbation]] = {}


def register(cls: type[Perturbation]) -> type[Perturbation]:
    """Class decorator adding a perturbation kind to the registry (``cls.kind`` is its name)."""
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise ValueError(f"perturbation kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def registry() -> dict[str, type[Perturbation]]:
    """Registered kinds (importing :mod:`voxproof.perturb` registers the built-in ones)."""
    return dict(_REGISTRY)


@dataclass(frozen=True)
class Perturbation:
    """Base of every perturbation. Subclasses set the class variables and implement :meth:`transform`."""

    kind: ClassVar[str] = ""
    #: the field a bare first value in the text syntax sets (``codec:opus`` -> codec="opus")
    positional: ClassVar[str | None] = None
    #: the field holding the severity, and what it means
    severity_field: ClassVar[str | None] = None
    family: ClassVar[str] = ""
    axis: ClassVar[str] = ""
    #: ``'lower'``: lower severity values are harsher (SNR, bitrate); ``'higher'``: higher are harsher
    worse: ClassVar[str] = "higher"
    description: ClassVar[str] = ""
    #: unit suffix written after a field's value in :meth:`label` (``{"bitrate": "k"}`` -> ``bitrate=8k``)
    label_units: ClassVar[dict[str, str]] = {}
    #: leave the main value out of :meth:`label` when it is the default (``noise:snr=10``)
    hide_default_positional: ClassVar[bool] = False

    # -- behaviour ---------------------------------------------------------------------------
    def transform(self, audio: Audio, rng: np.random.Generator, context: Any) -> Audio:
        raise NotImplementedError

    def apply(self, audio: Audio, rng: np.random.Generator, context: Any = None) -> Audio:
        """The perturbed audio (same sample rate, float32, finite). Raises :class:`PerturbationError`."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise PerturbationUnavailable(f"{self.label()}: {reason}")
        out = self.transform(audio, rng, context)
        samples = np.asarray(out.samples, dtype=np.float32)
        if not np.all(np.isfinite(samples)):
            raise PerturbationError(f"{self.label()} produced non-finite samples")
        if out.sample_rate != audio.sample_rate:
            out = Audio(np.ascontiguousarray(samples), out.sample_rate).resampled(audio.sample_rate)
            samples = out.samples
        return Audio(np.ascontiguousarray(samples, dtype=np.float32), audio.sample_rate)

    def unavailable_reason(self) -> str | None:
        """Why this perturbation cannot run here (missing encoder, package), or ``None`` when it can."""
        return None

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range parameters (called on construction)."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def severity(self) -> float | None:
        if self.severity_field is None:
            return None
        value = getattr(self, self.severity_field)
        return None if value is None else float(value)

    # -- serialisation -----------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_spec(self) -> dict[str, Any]:
        """JSON dict: ``{"kind": ..., <every parameter>}``."""
        return {"kind": self.kind, **self.params()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Perturbation:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise UsageError(
                f"{cls.kind}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(cls.kind, k, v, hints[k]) for k, v in params.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise UsageError(f"{cls.kind}: {exc}") from None

    def label(self) -> str:
        """Canonical text form (parses back to an equal perturbation): main value first, then the
        severity parameter and every parameter that differs from its default, in field order."""
        parts: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else object()
            shown = value != default or (f.name == self.severity_field and value is not None)
            if f.name == self.positional:
                shown = shown or (value is not None and not self.hide_default_positional)
                if shown:
                    parts.insert(0, _fmt(value) + self.label_units.get(f.name, ""))
                continue
            if shown:
                unit = self.label_units.get(f.name, "") if value is not None else ""
                parts.append(f"{f.name}={_fmt(value)}{unit}")
        return self.kind + (":" + ",".join(parts) if parts else "")


def perturbation_from_spec(spec: dict[str, Any]) -> Perturbation:
    """Inverse of :meth:`Perturbation.to_spec`."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise UsageError(f"a perturbation spec needs a 'kind': got {spec!r}")
    cls = _kind(str(spec["kind"]))
    return cls.from_params({k: v for k, v in spec.items() if k != "kind"})


def parse_step(text: str) -> Perturbation:
    """One step of the text syntax, e.g. ``codec:opus,bitrate=8k`` or ``noise:snr=10,dir=/data/noise``."""
    text = text.strip()
    if not text:
        raise UsageError("empty perturbation; example: --perturb 'noise:snr=10'")
    kind, _, rest = text.partition(":")
    cls = _kind(kind.strip())
    params: dict[str, Any] = {}
    if rest.strip():
        for i, part in enumerate(_split_params(rest)):
            if "=" not in part:
                if i == 0 and cls.positional:
                    params[cls.positional] = part
                    continue
                raise UsageError(
                    f"{text!r}: {part!r} must look like key=value"
                    + (f" (only the first value may be bare: {cls.positional})" if cls.positional else "")
                )
            key, _, value = part.partition("=")
            params[key.strip().replace("-", "_")] = value.strip()
    return cls.from_params(params)


def parse_chain(text: str) -> tuple[Perturbation, ...]:
    """A ``+``-separated chain of steps, applied left to right."""
    steps = [s for s in _split_chain(text) if s.strip()]
    if not steps:
        raise UsageError(f"empty perturbation chain {text!r}; example: 'codec:mp3,bitrate=16k+noise:snr=20'")
    return tuple(parse_step(s) for s in steps)


def chain_label(chain: tuple[Perturbation, ...]) -> str:
    return "+".join(p.label() for p in chain)


# -- helpers ------------------------------------------------------------------------------------
def _kind(kind: str) -> type[Perturbation]:
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise UsageError(
            f"unknown perturbation {kind!r}; choose one of {', '.join(sorted(_REGISTRY))} "
            "(see 'voxproof suites --perturbations')"
        )
    return cls


def _split_params(rest: str) -> list[str]:
    # a comma inside a path is rare; allow escaping it as '\,'
    parts = re.split(r"(?<!\\),", rest)
    return [p.replace("\\,", ",").strip() for p in parts if p.strip()]


def _split_chain(text: str) -> list[str]:
    # '+' separates steps only when a kind name follows, so 'gain:db=+6' and '1e+3' stay whole
    return [p.strip() for p in re.split(r"\+(?=\s*[A-Za-z][\w-]*\s*(?::|\+|$))", text)]


_NUM = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(k|%|db|s|ms|hz|khz|x)?\s*$", re.IGNORECASE)


def parse_number(kind: str, name: str, raw: Any) -> float:
    """A float from ``10``, ``-6dB``, ``8k``, ``5%``, ``250ms``, ``4kHz``, ``1.1x``."""
    if isinstance(raw, bool):
        raise UsageError(f"{kind}: {name}={raw!r} must be a number")
    if isinstance(raw, (int, float)):
        return float(raw)
    m = _NUM.match(str(raw))
    if not m:
        raise UsageError(f"{kind}: {name}={raw!r} must be a number (e.g. 10, 8k, 5%, 250ms)")
    value = float(m.group(1))
    unit = (m.group(2) or "").lower()
    if unit in ("k", "khz"):
        value *= 1000.0
    elif unit == "%":
        value /= 100.0
    elif unit == "ms":
        value /= 1000.0
    return value


def _coerce(kind: str, name: str, raw: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is not None and type(None) in typing.get_args(annotation):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")):
            return None
        annotation = args[0]
    if annotation is float:
        return parse_number(kind, name, raw)
    if annotation is int:
        value = parse_number(kind, name, raw)
        if value != int(value):
            raise UsageError(f"{kind}: {name}={raw!r} must be a whole number")
        return int(value)
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("1", "true", "yes", "on"):
            return True
        if str(raw).lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{kind}: {name}={raw!r} must be true or false")
    if annotation is str:
        return str(raw)
    return raw


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace(",", "\\,")


def require_range(kind: str, name: str, value: float | None, lo: float, hi: float) -> None:
    """UsageError unless ``lo <= value <= hi`` (``None`` passes)."""
    if value is None:
        return
    if not (lo <= value <= hi) or math.isnan(value):
        raise UsageError(f"{kind}: {name}={value:g} is out of range; use a value from {lo:g} to {hi:g}")


def require_choice(kind: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{kind}: {name}={value!r} is not one of {', '.join(choices)}")


def rms(x: np.ndarray) -> float:
    """Root mean square of samples (float64 accumulation)."""
    if len(x) == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def protect_peak(x: np.ndarray, limit: float = 0.99) -> np.ndarray:
    """``x`` scaled down (as a whole, preserving ratios such as SNR) when its peak exceeds ``limit``."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > limit:
        return (x * (limit / peak)).astype(np.float32)
    return x.astype(np.float32, copy=False)
