"""Black-box adversarial search: a gradient-free search for one *universal* perturbation (the same for
every utterance) that maximises a recogniser's WER or deletion rate under an SNR and an L-inf budget.

Method: a (1+lambda) evolution strategy with the 1/5th-success step-size rule. The objective (corpus
WER of a handful of clips) is discrete and flat almost everywhere: a small step changes no word, so the
finite differences SPSA relies on are mostly zero and its gradient estimate is noise. ES needs only a
ranking of candidates, keeps the best point found (elitist, so the curve never goes down under a hard
query budget) and its whole state (point, step size, RNG state) fits in a small JSON file to resume.

Search space: ``bands x frames`` log-gains shaping a fixed seeded noise tile in the STFT domain (so the
search moves energy between frequencies and times instead of searching 8,000 raw samples). The tile is
repeated over the utterance (``additive``) or prepended once (``prefix``, the "muting" attack), scaled
to exactly the SNR budget against each utterance's power, then clipped to +-``linf`` (clipping only
raises the SNR, so both budgets hold).

Stage: training clips (queries counted against the budget) -> state file ``search-state.json`` ->
held-apart clips decoded with the best perturbation at query checkpoints, and with fresh random noise at
the same SNR and L-inf, into a run store (conditions ``search/q=NNNN``, ``random/snr=S``, ``clean``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voxproof.audio.signal import Audio
from voxproof.errors import RunError, UsageError
from voxproof.metrics.align import count_edits
from voxproof.options import options_dict
from voxproof.perturb.condition import condition_seed, step_rng
from voxproof.run.records import CLEAN, STATUS_ERROR, STATUS_OK, ResultRow

log = logging.getLogger("voxproof.security.search")

PROBE = "search"
STATE_NAME = "search-state.json"
SR = 16000
N_FFT = 512
HOP = 256


@dataclass(frozen=True)
class SearchOptions:
    """Settings of the search. ``snr_db``: perturbation power below each utterance's power (dB).
    ``linf``: largest absolute sample value of the perturbation (full scale 1.0). ``query_budget``:
    recogniser calls on training clips. ``population``: lambda, offspring per generation. ``sigma``:
    initial step in log-gain units. ``tile_s``: period of the tiled perturbation or length of the prefix.
    ``checkpoints``: how many held-out evaluations along the budget (plus one at 0 queries)."""

    objective: Literal["wer", "deletions"] = "wer"
    placement: Literal["additive", "prefix"] = "additive"
    snr_db: float = 10.0
    linf: float = 0.05
    query_budget: int = 240
    population: int = 4
    sigma: float = 1.0
    bands: int = 16
    frames: int = 8
    tile_s: float = 0.5
    train: int = 4
    heldout: int = 8
    checkpoints: int = 4
    random_draws: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("snr_db", self.snr_db, -10.0, 60.0), ("linf", self.linf, 1e-4, 1.0),
            ("query_budget", self.query_budget, 1, 100_000), ("population", self.population, 1, 64),
            ("sigma", self.sigma, 1e-3, 10.0), ("bands", self.bands, 1, 128), ("frames", self.frames, 1, 64),
            ("tile_s", self.tile_s, 0.1, 5.0), ("train", self.train, 1, 1000), ("heldout", self.heldout, 1, 10_000),
            ("checkpoints", self.checkpoints, 1, 100), ("random_draws", self.random_draws, 1, 20),
        ]
        for name, value, low, high in checks:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
                raise UsageError(f"search option {name} must be between {low:g} and {high:g}, got {value!r}")
        if self.objective not in ("wer", "deletions"):
            raise UsageError(f"objective must be wer or deletions, got {self.objective!r}")
        if self.placement not in ("additive", "prefix"):
            raise UsageError(f"placement must be additive or prefix, got {self.placement!r}")
        if self.query_budget < self.train * (self.population + 1):
            raise UsageError(f"query_budget {self.query_budget} is below one generation "
                             f"({self.train} clips x {self.population + 1} candidates)")


# -- the perturbation --------------------------------------------------------------------------

def _stft(x: np.ndarray) -> np.ndarray:
    from scipy.signal import stft

    return stft(x, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)[2]


def _istft(z: np.ndarray, n: int) -> np.ndarray:
    from scipy.signal import istft

    y = istft(z, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)[1]
    out = np.zeros(n)
    out[: min(n, len(y))] = y[:n]
    return out


class Shaper:
    """Maps a parameter vector (``bands x frames`` log-gains) to a unit-RMS tile of ``tile_s`` seconds."""

    def __init__(self, options: SearchOptions):
        self.options = options
        self.n = int(options.tile_s * SR)
        rng = step_rng(options.seed, 7)
        self.spec = _stft(rng.standard_normal(self.n))
        n_bins, n_frames = self.spec.shape
        # log-spaced band edges over the bins (1..n_bins), so low frequencies get finer bands
        edges = np.unique(np.round(np.geomspace(1, n_bins, options.bands + 1)).astype(int))
        self.band_of_bin = np.clip(np.searchsorted(edges, np.arange(n_bins), side="right") - 1, 0, options.bands - 1)
        self.frame_of_col = np.minimum((np.arange(n_frames) * options.frames) // max(n_frames, 1), options.frames - 1)

    @property
    def dim(self) -> int:
        return self.options.bands * self.options.frames

    def tile(self, theta: np.ndarray) -> np.ndarray:
        g = np.exp(np.clip(theta.reshape(self.options.bands, self.options.frames), -8.0, 8.0))
        gains = g[self.band_of_bin][:, self.frame_of_col]
        y = _istft(self.spec * gains, self.n)
        rms = float(np.sqrt(np.mean(y * y)))
        return y / rms if rms > 0 else y


def apply_perturbation(speech: np.ndarray, tile: np.ndarray, options: SearchOptions) -> np.ndarray:
    """``speech`` with the unit-RMS ``tile`` added (tiled or as a prefix) at ``snr_db`` and clipped to
    +-``linf``. Silent speech is returned unchanged (SNR undefined)."""
    x = speech.astype(np.float64)
    p = float(np.mean(x * x)) if len(x) else 0.0
    if p == 0.0:
        return speech.astype(np.float32)
    scale = math.sqrt(p / 10.0 ** (options.snr_db / 10.0))
    if options.placement == "prefix":
        d = np.clip(tile * scale, -options.linf, options.linf)
        return np.concatenate([d, x]).astype(np.float32)
    reps = math.ceil(len(x) / len(tile))
    d = np.clip(np.tile(tile, reps)[: len(x)] * scale, -options.linf, options.linf)
    return np.clip(x + d, -1.0, 1.0).astype(np.float32)


def random_noise(n: int, seed: int) -> np.ndarray:
    """Fresh unit-RMS white noise (the chance baseline at the same budgets)."""
    y = step_rng(seed, 0).standard_normal(n)
    return y / float(np.sqrt(np.mean(y * y)))


# -- the search --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    utt_id: str
    speaker: str | None
    reference: str
    ref_tokens: tuple[str, ...]
    samples: np.ndarray


def _fitness(counts: Sequence[Any], objective: str) -> float:
    ref = sum(c.ref_len for c in counts)
    if ref == 0:
        return 0.0
    return sum(c.deletions if objective == "deletions" else c.errors for c in counts) / ref


class Search:
    """A resumable (1+lambda)-ES run. ``decode(samples) -> text``; ``normalizer(text) -> text``."""

    def __init__(self, options: SearchOptions, train: Sequence[Clip], decode: Callable[[np.ndarray], str],
                 normalizer: Callable[[str], str], state_path: Path):
        self.options = options
        self.train = list(train)
        self.decode = decode
        self.normalizer = normalizer
        self.state_path = Path(state_path)
        self.shaper = Shaper(options)
        self.state = self._load_state()

    def _fresh_state(self) -> dict[str, Any]:
        rng = step_rng(self.options.seed, 11)
        return {"schema": 1, "options": options_dict(self.options), "train_ids": [c.utt_id for c in self.train],
                "queries": 0, "generation": 0, "theta": [0.0] * self.shaper.dim, "sigma": self.options.sigma,
                "fitness": None, "rng": rng.bit_generator.state, "history": [], "checkpoints": [],
                "accepted": 0}

    def _load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return self._fresh_state()
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read search state {self.state_path}: {exc}; delete it to start again") from exc
        if state.get("options") != options_dict(self.options) or state.get("train_ids") != [c.utt_id for c in self.train]:
            raise RunError(f"{self.state_path} was made with other options or clips; use another --out or the same options")
        return state

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def evaluate(self, theta: np.ndarray) -> float:
        """Objective on the training clips (one query per clip)."""
        tile = self.shaper.tile(theta)
        counts = []
        for clip in self.train:
            hyp = self.normalizer(self.decode(apply_perturbation(clip.samples, tile, self.options))).split()
            counts.append(count_edits(list(clip.ref_tokens), hyp))
        self.state["queries"] += len(self.train)
        return _fitness(counts, self.options.objective)

    def checkpoint_queries(self) -> list[int]:
        """Query counts at which the current best is evaluated on held-out clips (0 included)."""
        o = self.options
        return sorted({0, *(round(o.query_budget * (k + 1) / o.checkpoints) for k in range(o.checkpoints))})

    def run(self, on_checkpoint: Callable[[int, np.ndarray], None] | None = None) -> dict[str, Any]:
        """Search until the query budget is spent; ``on_checkpoint(queries, theta)`` at each checkpoint
        (also the ones already passed before a resume, so held-out rows can be completed)."""
        st, o = self.state, self.options
        marks = self.checkpoint_queries()
        for cp in st["checkpoints"]:
            if on_checkpoint is not None:
                on_checkpoint(cp["mark"], np.asarray(cp["theta"]))
        if st["fitness"] is None:
            st["fitness"] = self.evaluate(np.asarray(st["theta"]))
            st["history"].append({"queries": st["queries"], "fitness": st["fitness"], "sigma": st["sigma"]})
            self._mark(marks, 0, on_checkpoint)
            self._save()
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = st["rng"]
        per_gen = o.population * len(self.train)
        while st["queries"] + per_gen <= o.query_budget:
            theta = np.asarray(st["theta"])
            kids = [theta + st["sigma"] * rng.standard_normal(theta.shape) for _ in range(o.population)]
            scores = [self.evaluate(k) for k in kids]
            best = int(np.argmax(scores))
            success = scores[best] > st["fitness"]
            if scores[best] >= st["fitness"]:  # ties move too: drift across the flat objective
                st["theta"], st["fitness"] = kids[best].tolist(), float(scores[best])
                st["accepted"] += int(success)
            st["sigma"] = float(np.clip(st["sigma"] * (math.exp(1 / 3) if success else math.exp(-1 / 12)), 0.05, 5.0))
            st["generation"] += 1
            st["rng"] = rng.bit_generator.state
            st["history"].append({"queries": st["queries"], "fitness": st["fitness"], "sigma": st["sigma"]})
            log.info("generation %d: %d queries, best train %s %.3f, sigma %.3f", st["generation"], st["queries"],
                     o.objective, st["fitness"], st["sigma"])
            for mark in marks:
                if 0 < mark <= st["queries"] and mark not in {c["mark"] for c in st["checkpoints"]}:
                    self._mark(marks, mark, on_checkpoint)
            self._save()
        # budgets not a multiple of a generation: the last checkpoint takes the final point
        for mark in marks:
            if mark not in {c["mark"] for c in st["checkpoints"]}:
                self._mark(marks, mark, on_checkpoint)
        self._save()
        return st

    def _mark(self, marks: list[int], mark: int, on_checkpoint: Callable[[int, np.ndarray], None] | None) -> None:
        theta = list(self.state["theta"])
        self.state["checkpoints"].append({"mark": mark, "queries": self.state["queries"], "theta": theta,
                                          "train_fitness": self.state["fitness"]})
        if on_checkpoint is not None:
            on_checkpoint(mark, np.asarray(theta))


def checkpoint_name(mark: int) -> str:
    return f"search/q={mark:04d}"


def random_name(options: SearchOptions, draw: int) -> str:
    return f"random/snr={options.snr_db:g}/draw={draw}"


def decode_rows(store: Any, transcriber: Any, clips: Sequence[Clip], condition: str,
                perturb: Callable[[Clip], np.ndarray], spec: dict[str, Any], positions: dict[str, int]) -> int:
    """Decode held-out ``clips`` under one condition into ``store`` (skipping stored rows)."""
    done = store.done_keys()
    written = 0
    for clip in clips:
        if (clip.utt_id, condition) in done:
            continue
        samples = perturb(clip)
        t0 = time.perf_counter()
        try:
            tr = transcriber.transcribe(Audio(samples, SR))
            row = ResultRow(clip.utt_id, condition, STATUS_OK, reference=clip.reference, hypothesis=tr.text,
                            transcript=tr, audio_duration=len(samples) / SR, processing_time=time.perf_counter() - t0,
                            speaker=clip.speaker, perturbation=() if condition == CLEAN else (spec,))
        except Exception as exc:  # noqa: BLE001 - a backend failure is an error row, not a crash
            row = ResultRow(clip.utt_id, condition, STATUS_ERROR, reference=clip.reference, speaker=clip.speaker,
                            error_type=type(exc).__name__, error_message=str(exc), perturbation=(spec,))
        store.add_row(row, positions[clip.utt_id])
        written += 1
    return written


def heldout_perturbers(options: SearchOptions, shaper: Shaper) -> tuple[Callable, Callable]:
    """(checkpoint perturber factory ``theta -> clip -> samples``, random-noise perturber factory ``draw -> ...``)."""
    def searched(theta: np.ndarray) -> Callable[[Clip], np.ndarray]:
        tile = shaper.tile(theta)
        return lambda clip: apply_perturbation(clip.samples, tile, options)

    def random(draw: int) -> Callable[[Clip], np.ndarray]:
        def go(clip: Clip) -> np.ndarray:
            n = len(clip.samples) if options.placement == "additive" else int(options.tile_s * SR)
            seed = condition_seed(options.seed, clip.utt_id, random_name(options, draw))
            noise = random_noise(n, seed)
            return apply_perturbation(clip.samples, noise, options)
        return go

    return searched, random


# -- analysis ----------------------------------------------------------------------------------

def _rate(rows: Sequence[Any], normalizer: Callable[[str], str], objective: str, seed: int) -> tuple[dict, dict[str, Any]]:
    from voxproof.metrics.intervals import bootstrap_rate

    errs, dels, refs, ids = [], [], [], []
    for r in rows:
        ref = normalizer(r.reference or "").split()
        hyp = normalizer(r.hypothesis or "").split() if r.ok else []  # a failed decode deletes every word
        c = count_edits(ref, hyp)
        errs.append(c.errors)
        dels.append(c.deletions)
        refs.append(len(ref))
        ids.append(r.utt_id)
    per_utt = {i: (e, d, n) for i, e, d, n in zip(ids, errs, dels, refs)}
    kw = {"groups": ids, "seed": seed}
    return per_utt, {"n_rows": len(rows), "n_errors": sum(not r.ok for r in rows),
                     "wer": bootstrap_rate(errs, refs, **kw).to_dict(),
                     "deletion_rate": bootstrap_rate(dels, refs, **kw).to_dict()}


def analyze_search(store: Any, state: dict[str, Any], normalizer: Callable[[str], str], options: SearchOptions) -> dict[str, Any]:
    """Held-out WER and deletion rate vs queries, against clean and random noise at the same budgets,
    with a paired test of the final perturbation against random noise (draw 0)."""
    from voxproof.metrics.paired import compare_counts

    rows: dict[str, list[Any]] = {}
    for r in store.rows():
        rows.setdefault(r.condition, []).append(r)
    key = "deletions" if options.objective == "deletions" else "errors"
    _, clean = _rate(rows.get(CLEAN, []), normalizer, options.objective, options.seed)
    random_rows = [r for name, rs in rows.items() if name.startswith("random/") for r in rs]
    _, random = _rate(random_rows, normalizer, options.objective, options.seed)
    curve = []
    final_counts = None
    for cp in state.get("checkpoints", []):
        per_utt, rate = _rate(rows.get(checkpoint_name(cp["mark"]), []), normalizer, options.objective, options.seed)
        curve.append({"queries": cp["mark"], "queries_used": cp["queries"], "train_objective": cp["train_fitness"], **rate})
        final_counts = per_utt
    paired = None
    rand0, _ = _rate(rows.get(random_name(options, 0), []), normalizer, options.objective, options.seed)
    if final_counts and rand0:
        ids = [i for i in final_counts if i in rand0]
        idx = 1 if key == "deletions" else 0
        paired = compare_counts([final_counts[i][2] for i in ids], [rand0[i][idx] for i in ids],
                                [final_counts[i][idx] for i in ids], groups=ids, condition="heldout",
                                seed=options.seed).to_dict()
    return {
        "probe": PROBE, "schema": 1, "method": "(1+lambda)-ES, 1/5th success rule, elitist",
        "options": options_dict(options), "model": store.provenance.get("backend") or {},
        "queries_used": state.get("queries"), "generations": state.get("generation"),
        "accepted_improvements": state.get("accepted"), "train_history": state.get("history", []),
        "clean": clean, "random_noise": random, "curve": curve,
        "paired_final_vs_random": paired,
    }
