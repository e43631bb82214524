"""Listening tests, stage 1: from ``voxproof tts-eval`` runs to a test design.

The design holds what the listener must not see (which system made which clip, the predictors'
scores of each clip) and goes to ``OUT/design.json``; the page (``listen.page``) gets only opaque item
ids and the audio. Items:

- ``acr``: one clip rated on the ITU-T P.808 absolute category rating scale (5 Excellent ... 1 Bad);
  one per system and common prompt, plus the **hidden reference** (system ``hidden-reference``: the
  run's real recordings, the floor of ``tts-eval``, rated like any other clip without being named).
- ``ab``: the same prompt from two systems, which one sounds more natural (side drawn at random).
- attention checks (P.808's trapping questions, in instructed form): ``acr-check`` is a clip buried in
  noise at -5 dB SNR with the written instruction to rate it 1; ``ab-check`` pairs a clip with its
  noisy copy and the instruction to choose the clean one. A listener who fails one is screened out.

The test id is the SHA-256 of the design's items (ids, systems, prompts, clip checksums), so answers
given to one test are never scored against another.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import DataError, UsageError

log = logging.getLogger("voxproof.listen.design")

SCHEMA_VERSION = 1
REFERENCE_SYSTEM = "hidden-reference"
ACR_LABELS = {5: "Excellent", 4: "Good", 3: "Fair", 2: "Poor", 1: "Bad"}
CHECK_SNR_DB = -5.0
EMBED_RATE = 16000


@dataclass(frozen=True)
class ListenOptions:
    """Settings of ``voxproof listen make`` (the CLI flags mirror these).

    ``modes``: ``acr``, ``ab`` or both; ``attention_checks``: checks per mode; ``reference_clips``: real
    recordings used as hidden reference (0: none); ``max_items``: refuse larger tests (a listener tires
    after ~100 ratings); ``max_clip_seconds``: clips are cut to this length; ``seed``: sides and order.
    """

    modes: tuple[str, ...] = ("acr", "ab")
    attention_checks: int = 2
    reference_clips: int = 4
    max_items: int = 200
    max_clip_seconds: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in ("acr", "ab")]
        if bad or not self.modes:
            raise ValueError(f"modes must be acr and/or ab, got {list(self.modes)}")
        for name, value, lo, hi in (("attention_checks", self.attention_checks, 0, 20),
                                    ("reference_clips", self.reference_clips, 0, 100),
                                    ("max_items", self.max_items, 1, 2000), ("seed", self.seed, 0, 2**32 - 1)):
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
        if not (isinstance(self.max_clip_seconds, (int, float)) and 0.5 <= self.max_clip_seconds <= 120.0):
            raise ValueError(f"max_clip_seconds must be in 0.5..120, got {self.max_clip_seconds!r}")


@dataclass(frozen=True)
class Clip:
    """One audio clip a listener may hear: who made it, for which prompt, and what predictors said."""

    system: str
    prompt: str
    path: str
    text: str = ""
    predictors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One question of the test. ``clips`` are indexes into the design's clip list (A, B for ``ab``)."""

    id: str
    kind: str  # acr, ab, acr-check, ab-check
    clips: tuple[int, ...]
    expected: int | str | None = None  # rating or side an attentive listener gives (checks only)
    degraded: tuple[bool, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "clips": list(self.clips), "expected": self.expected,
                "degraded": list(self.degraded)}


@dataclass(frozen=True)
class Design:
    test_id: str
    systems: tuple[str, ...]
    clips: tuple[Clip, ...]
    items: tuple[Item, ...]
    options: ListenOptions
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "type": "voxproof_listening_test", "schema": SCHEMA_VERSION, "test_id": self.test_id,
            "systems": list(self.systems), "sources": list(self.sources), "options": asdict(self.options),
            "clips": [asdict(c) for c in self.clips], "items": [i.to_dict() for i in self.items],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Design:
        opts = dict(d["options"])
        opts["modes"] = tuple(opts["modes"])
        return cls(
            test_id=str(d["test_id"]), systems=tuple(d["systems"]),
            clips=tuple(Clip(**c) for c in d["clips"]),
            items=tuple(Item(i["id"], i["kind"], tuple(i["clips"]), i.get("expected"), tuple(i.get("degraded") or ()))
                        for i in d["items"]),
            options=ListenOptions(**opts), sources=tuple(d.get("sources") or ()),
        )


def collect_runs(paths: list[str | Path]) -> tuple[dict[str, dict[str, Clip]], list[Clip]]:
    """Clips per system and prompt from ``tts-eval`` output directories (or single system runs), and
    the floor's real recordings (candidates for the hidden reference). Only scored clips whose audio was
    kept (``--keep-audio``) take part."""
    from voxproof.run.store import RunStore, store_path
    from voxproof.tts.evaluate import FLOOR_CONDITION, TTS_CONDITION
    from voxproof.tts.mos import PREDICTOR_KEYS

    systems: dict[str, dict[str, Clip]] = {}
    floor: list[Clip] = []
    run_dirs: list[Path] = []
    for p in paths:
        p = Path(p)
        if store_path(p).exists():
            run_dirs.append(p)
        elif p.is_dir():
            run_dirs += sorted(d for d in p.iterdir() if d.is_dir() and store_path(d).exists())
        else:
            raise UsageError(f"{p} is neither a tts-eval output directory nor a run directory")
    for d in run_dirs:
        with RunStore.open(d) as store:
            name = str(store.meta("system") or d.name)
            for cond, into in ((TTS_CONDITION, None), (FLOOR_CONDITION, floor)):
                for row in store.rows(condition=cond):
                    extras = row.extras or {}
                    rel = extras.get("audio_file") if cond == TTS_CONDITION else extras.get("audio_path")
                    if not row.ok or not rel:
                        continue
                    path = (d / rel) if cond == TTS_CONDITION else Path(rel)
                    pred = {f"mos_{k}": float(row.features[f"mos_{k}"]) for k in PREDICTOR_KEYS if f"mos_{k}" in row.features}
                    clip = Clip(name, row.utt_id, str(path), str(extras.get("text") or row.reference or ""), pred)
                    if into is None:
                        if name in systems and row.utt_id in systems[name] and systems[name][row.utt_id].path != str(path):
                            raise UsageError(f"system {name!r} appears in two runs; give each run once")
                        systems.setdefault(name, {})[row.utt_id] = clip
                    else:
                        into.append(clip)
    if not systems:
        raise DataError("no synthesised clips with kept audio in " + ", ".join(str(p) for p in paths)
                        + "; run 'voxproof tts-eval' (audio is kept by default)")
    return systems, floor


def build_design(systems: dict[str, dict[str, Clip]], floor: list[Clip], options: ListenOptions,
                 sources: tuple[str, ...] = (), audio_digest=None) -> Design:
    """Items over the prompts every system has, hidden reference, attention checks, seeded sides."""
    rng = np.random.default_rng(options.seed)
    names = sorted(systems)
    common = sorted(set.intersection(*(set(v) for v in systems.values())))
    if not common:
        raise DataError(f"the systems {names} share no prompt with kept audio; run them on the same prompts")
    clips: list[Clip] = []
    index: dict[tuple[str, str], int] = {}

    def clip_index(c: Clip) -> int:
        key = (c.system, c.prompt)
        if key not in index:
            index[key] = len(clips)
            clips.append(c)
        return index[key]

    items: list[Item] = []
    refs = floor[:options.reference_clips]
    if "acr" in options.modes:
        pool = [systems[s][p] for s in names for p in common]
        pool += [Clip(REFERENCE_SYSTEM, c.prompt, c.path, c.text, c.predictors) for c in refs]
        items += [Item("", "acr", (clip_index(c),)) for c in pool]
        check_src = [clip_index(c) for c in pool]
        for k in range(options.attention_checks):
            items.append(Item("", "acr-check", (check_src[k % len(check_src)],), 1, (True,)))
    if "ab" in options.modes:
        if len(names) < 2:
            raise UsageError("an A/B test needs at least two systems; give more runs or --mode acr")
        for a, b in itertools.combinations(names, 2):
            for p in common:
                pair = (clip_index(systems[a][p]), clip_index(systems[b][p]))
                if rng.random() < 0.5:
                    pair = pair[::-1]
                items.append(Item("", "ab", pair))
        src = [clip_index(systems[s][p]) for s in names for p in common]
        for k in range(options.attention_checks):
            c = src[(k * 7) % len(src)]
            clean_first = bool(rng.random() < 0.5)
            items.append(Item("", "ab-check", (c, c), "A" if clean_first else "B",
                              (False, True) if clean_first else (True, False)))
    if len(items) > options.max_items:
        raise UsageError(f"the test would have {len(items)} items, over max_items={options.max_items}; "
                         "use fewer prompts (tts-eval --limit) or systems, or raise --max-items")
    order = rng.permutation(len(items))
    width = len(str(len(items)))
    items = [Item(f"q{n + 1:0{width}d}", items[i].kind, items[i].clips, items[i].expected, items[i].degraded)
             for n, i in enumerate(order)]
    shown = sorted({clips[c].system for i in items for c in i.clips})
    digest = hashlib.sha256(json.dumps(
        {"items": [i.to_dict() for i in items],
         "clips": [[c.system, c.prompt, (audio_digest or _file_digest)(c.path)] for c in clips]},
        sort_keys=True).encode()).hexdigest()
    return Design(digest, tuple(shown), tuple(clips), tuple(items), options, tuple(sources))


def _file_digest(path: str) -> str:
    from voxproof.audio.io import regular_file_stat

    regular_file_stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_clip(clip: Clip, options: ListenOptions) -> Audio:
    """The clip as the listener hears it: mono, 16 kHz, cut to ``max_clip_seconds``."""
    from voxproof.audio.io import DEFAULT_LIMITS, load_audio

    audio = load_audio(clip.path, limits=DEFAULT_LIMITS).resampled(EMBED_RATE)
    n = int(options.max_clip_seconds * EMBED_RATE)
    return Audio(audio.samples[:n].astype(np.float32), EMBED_RATE)


def degrade(audio: Audio, seed: int) -> Audio:
    """The attention-check version of a clip: white noise at ``CHECK_SNR_DB`` over its speech."""
    x = audio.samples.astype(np.float64)
    power = float(np.mean(x ** 2)) if x.size else 0.0
    noise = np.random.default_rng(seed).normal(0.0, 1.0, x.size) * np.sqrt(max(power, 1e-8) / 10 ** (CHECK_SNR_DB / 10))
    y = x + noise
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return Audio((y / max(peak, 1.0) * 0.9 if peak > 0.9 else y).astype(np.float32), audio.sample_rate)


def write_design(design: Design, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(design.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path


MAX_DESIGN_BYTES = 16 * 1024 * 1024


def read_design(path: str | Path) -> Design:
    """A design written by ``listen make`` (``design.json`` or the folder holding it)."""
    from voxproof.listen.answers import read_json_file

    p = Path(path)
    if p.is_dir():
        p = p / "design.json"
    data = read_json_file(p, MAX_DESIGN_BYTES, "listening-test design")
    if not isinstance(data, dict) or data.get("type") != "voxproof_listening_test":
        raise DataError(f"{p} is not a listening-test design (made by 'voxproof listen make')")
    try:
        return Design.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{p} is a damaged listening-test design ({type(exc).__name__}: {exc}); make the test again") from None
