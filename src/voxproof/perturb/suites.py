"""Perturbation stage, named and versioned suites of conditions (``voxproof eval --suite noise-ladder``).

A suite's conditions are fixed by its name and version: changing a rung means a new version, so two
runs of ``noise-ladder@1`` always heard the same kinds of audio. Condition names are
``SUITE/RUNG`` (``noise-ladder/snr=10``); ``full`` is the union of the other suites and keeps their names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voxproof.errors import UsageError
from voxproof.perturb.base import Perturbation
from voxproof.perturb.channel import BandLimit, Clip, Gain, PacketLoss, Speed, Tempo
from voxproof.perturb.codec import Codec, Telephone
from voxproof.perturb.condition import Condition
from voxproof.perturb.noise import AddNoise
from voxproof.perturb.reverb import Reverb, Room

NOISE_LADDER_SNRS = (40.0, 30.0, 20.0, 10.0, 5.0, 0.0)


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of conditions."""

    name: str
    version: int
    description: str
    conditions: tuple[Condition, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def families(self) -> list[str]:
        seen: list[str] = []
        for c in self.conditions:
            if c.family and c.family not in seen:
                seen.append(c.family)
        return seen


def _cond(suite: str, version: int, rung: str, *chain: Perturbation, family: str | None = None,
          severity: float | None = None) -> Condition:
    base = Condition.from_chain(tuple(chain), name=f"{suite}/{rung}", suite=suite, suite_version=version)
    if family is None and severity is None:
        return base
    return Condition(
        name=base.name, chain=base.chain, suite=suite, suite_version=version,
        severity=base.severity if severity is None else severity, family=family or base.family,
        axis=base.axis, worse=base.worse,
    )


def _g(value: float) -> str:
    return f"{value:g}"


def _noise_ladder() -> Suite:
    name, v = "noise-ladder", 1
    return Suite(name, v, "real background noise (Speech Commands: dishes, exercise bike, running tap) "
                 "at SNR 40, 30, 20, 10, 5, 0 dB",
                 tuple(_cond(name, v, f"snr={_g(s)}", AddNoise(snr=s)) for s in NOISE_LADDER_SNRS))


def _noise_types() -> Suite:
    name, v = "noise-types", 1
    conds = []
    for kind in ("white", "pink", "babble"):
        for snr in (20.0, 10.0, 5.0, 0.0):
            conds.append(_cond(name, v, f"{kind}/snr={_g(snr)}", AddNoise(type=kind, snr=snr)))
    return Suite(name, v, "generated white and pink noise, and 4-talker babble from other speakers of the "
                 "dataset, at SNR 20, 10, 5, 0 dB", tuple(conds))


def _telephony() -> Suite:
    name, v = "telephony", 1
    conds = [
        _cond(name, v, "g711-mulaw", Telephone(codec="mulaw")),
        _cond(name, v, "g711-alaw", Telephone(codec="alaw")),
        _cond(name, v, "gsm", Telephone(codec="gsm")),
    ]
    for kbps in (12.2, 7.4, 4.75):
        conds.append(_cond(name, v, f"amr-nb={_g(kbps)}k", Telephone(codec="amr-nb", bitrate=kbps)))
    for rate in (0.02, 0.05, 0.10, 0.20):
        conds.append(_cond(name, v, f"g711-mulaw+loss={_g(rate * 100)}%", Telephone(codec="mulaw"),
                           PacketLoss(rate=rate, burst=2.0)))
    return Suite(name, v, "telephone channel (300-3400 Hz, 8 kHz) through G.711, GSM and AMR-NB; "
                 "G.711 with 2-20 % packet loss (20 ms frames, mean burst 2)", tuple(conds))


def _rooms() -> Suite:
    name, v = "rooms", 1
    conds = [_cond(name, v, rir, Reverb(rir=rir))
             for rir in ("rir_clap", "large_church", "medium_chamber", "large_hall", "medium_hall")]
    conds += [_cond(name, v, f"rt60={_g(rt)}s", Room(rt60=rt)) for rt in (0.3, 0.6, 0.9, 1.2)]
    return Suite(name, v, "measured room impulse responses (clap, OpenAIR) and simulated 6x5x3 m rooms "
                 "with RT60 0.3-1.2 s", tuple(conds))


def _codecs() -> Suite:
    name, v = "codecs", 1
    conds = [_cond(name, v, f"mp3={_g(k)}k", Codec(codec="mp3", bitrate=k)) for k in (32.0, 24.0, 16.0, 8.0)]
    conds += [_cond(name, v, f"opus={_g(k)}k", Codec(codec="opus", bitrate=k)) for k in (16.0, 12.0, 8.0, 6.0)]
    conds += [_cond(name, v, f"amr-nb={_g(k)}k", Codec(codec="amr-nb", bitrate=k)) for k in (12.2, 7.4, 4.75)]
    conds += [_cond(name, v, c, Codec(codec=c)) for c in ("g722", "mulaw", "alaw", "gsm")]
    return Suite(name, v, "MP3 8-32 kbit/s, Opus 6-16 kbit/s, AMR-NB 4.75-12.2 kbit/s, G.722, G.711 mu/A-law, "
                 "GSM, each round-tripped", tuple(conds))


def _channel() -> Suite:
    name, v = "channel", 1
    conds = [_cond(name, v, f"speed={_g(f)}", Speed(factor=f), family="speed-up") for f in (1.1, 1.2, 1.3)]
    conds += [_cond(name, v, f"speed={_g(f)}", Speed(factor=f), family="slow-down") for f in (0.9, 0.8, 0.7)]
    conds += [_cond(name, v, f"tempo={_g(f)}", Tempo(factor=f), family="tempo-up") for f in (1.1, 1.25, 1.5)]
    conds += [_cond(name, v, f"gain={_g(d)}dB", Gain(db=d)) for d in (-20.0, -35.0, -50.0)]
    conds += [_cond(name, v, f"clip={_g(f * 100)}%", Clip(fraction=f)) for f in (0.01, 0.05, 0.15)]
    conds += [_cond(name, v, f"bandlimit={_g(h)}Hz", BandLimit(hz=h)) for h in (4000.0, 2000.0)]
    conds += [_cond(name, v, f"loss={_g(r * 100)}%", PacketLoss(rate=r, burst=2.0)) for r in (0.05, 0.10, 0.20)]
    return Suite(name, v, "speed and tempo changes, level changes, clipping, band limits and packet loss",
                 tuple(conds))


_BUILDERS: dict[str, Callable[[], Suite]] = {
    "noise-ladder": _noise_ladder,
    "noise-types": _noise_types,
    "telephony": _telephony,
    "rooms": _rooms,
    "codecs": _codecs,
    "channel": _channel,
}


def _full() -> Suite:
    conds: list[Condition] = []
    for build in _BUILDERS.values():
        conds.extend(build().conditions)
    return Suite("full", 1, "every condition of " + ", ".join(_BUILDERS), tuple(conds))


SUITE_NAMES = (*_BUILDERS, "full")


def get_suite(ref: str) -> Suite:
    """The suite ``NAME`` or ``NAME@VERSION`` (only version 1 exists so far)."""
    name, _, version = ref.strip().partition("@")
    if name not in SUITE_NAMES:
        raise UsageError(f"unknown suite {name!r}; choose one of {', '.join(SUITE_NAMES)}")
    suite = _full() if name == "full" else _BUILDERS[name]()
    if version and version.lstrip("v") != str(suite.version):
        raise UsageError(f"suite {name} has version {suite.version} only (asked for {version!r})")
    return suite


def list_suites() -> list[Suite]:
    return [get_suite(n) for n in SUITE_NAMES]
