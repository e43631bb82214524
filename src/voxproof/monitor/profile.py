"""Monitor stage 2: the reference profile that windows of traffic are compared with.

A :class:`ReferenceProfile` holds, for every monitoring feature of the request log, its reference
distribution (numeric: quantile bin edges with their shares, a sorted sample for KS, percentiles;
categorical: shares per value), and, when built from an evaluation run, the mapping from word
confidence to word correctness (:class:`CalibrationMap`) that the label-free WER estimate uses.

Built from a run (:func:`profile_from_run`: the run's stored rows and their references, read through
the run store; no audio is decoded again) or from a window of a log (:func:`profile_from_batch`; no
calibration, since a log has no references). Saved as JSON (``profile.json``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxproof.errors import DataError, UsageError
from voxproof.monitor.source import RequestBatch, batch_from_records

log = logging.getLogger("voxproof.monitor")

PROFILE_SCHEMA = 1
NUMERIC = ("audio_s", "rms_dbfs", "snr_db", "speech_ratio", "clipping_ratio", "bandwidth_hz", "conf_mean",
           "words_per_s", "output_chars")
CATEGORICAL = ("sample_rate", "codec", "empty_output")
FEATURES = NUMERIC + CATEGORICAL
SAMPLE_SIZE = 1000  # sorted reference values kept for KS (quantiles of the reference when it is larger)
MAX_CATEGORIES = 30
OTHER = "(other)"
MAX_PROFILE_BYTES = 20 << 20


def ok_mask(batch: RequestBatch) -> np.ndarray:
    """Successful transcription requests (2xx, endpoint ``transcriptions``)."""
    status = batch.get("status")
    endpoint = batch.get("endpoint")
    return (status >= 200) & (status < 300) & (endpoint == "transcriptions")


def feature_values(batch: RequestBatch, name: str) -> np.ndarray:
    """A monitoring feature of every row: float64 (NaN when unknown) or object strings (None when unknown)."""
    if name == "empty_output":
        words = batch.get("words")
        out = np.full(batch.n, None, dtype=object)
        out[words == 0] = "empty"
        out[words > 0] = "text"
        return out
    if name == "sample_rate":
        rate = batch.get("sample_rate")
        out = np.full(batch.n, None, dtype=object)
        known = np.isfinite(rate)
        rates, inverse = np.unique(rate[known], return_inverse=True)  # a label per distinct rate, not per row
        out[known] = np.array([f"{int(r)}" for r in rates], dtype=object)[inverse.ravel()]
        return out
    return batch.get(name)


@dataclass(frozen=True)
class NumericProfile:
    """Reference distribution of a numeric feature. ``edges`` are the inner bin cut points (quantiles of
    the reference); ``shares`` has one more entry (bins (-inf, e0), [e0, e1) ... [ek, inf))."""

    name: str
    n: int
    missing: int
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    sample: tuple[float, ...]
    percentiles: dict[str, float]

    @property
    def available(self) -> bool:
        return self.n > 0

    def band(self, low: str = "p05", high: str = "p95") -> tuple[float, float]:
        return self.percentiles.get(low, math.nan), self.percentiles.get(high, math.nan)


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference shares of a categorical feature (rare values beyond the first 30 pooled as ``(other)``)."""

    name: str
    n: int
    missing: int
    shares: dict[str, float]

    @property
    def available(self) -> bool:
        return self.n > 0


@dataclass(frozen=True)
class CalibrationMap:
    """Word confidence -> probability that the word is right, fitted on a run with references.

    ``edges``/``accuracy``: equal-mass bins of word confidence and the share of correct words in each
    (shrunk toward the bin's mean confidence with ``prior`` pseudo-words, so a sparse bin is not 0 or 1).
    ``deletions_per_word`` and ``insertion_share`` (insertions among wrong hypothesis words) carry what
    confidences cannot see into the WER estimate. ``reference_wer`` is the run's true corpus WER on the
    same rows, ``fitted_wer`` the estimate the map gives on them (in-sample).
    """

    edges: tuple[float, ...]
    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    ece: float
    words: int
    deletions_per_word: float
    insertion_share: float
    reference_wer: float
    fitted_wer: float
    normalizer: str
    prior: float = 5.0

    def prob_correct(self, conf: np.ndarray) -> np.ndarray:
        """P(word correct) for each confidence (clipped to [0, 1])."""
        c = np.clip(np.asarray(conf, dtype=float), 0.0, 1.0)
        e = np.asarray(self.edges)
        idx = np.clip(np.searchsorted(e, c, side="right") - 1, 0, len(e) - 2)
        return np.asarray(self.accuracy)[idx]


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything a window is compared with. ``source`` says where it came from (run path and key, or
    the log window)."""

    source: dict[str, Any]
    n_requests: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    calibration: CalibrationMap | None
    created_at: float = field(default_factory=time.time)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PROFILE_SCHEMA,
            "source": self.source,
            "created_at": self.created_at,
            "n_requests": self.n_requests,
            "numeric": {k: _clean(asdict(v)) for k, v in self.numeric.items()},
            "categorical": {k: asdict(v) for k, v in self.categorical.items()},
            "calibration": None if self.calibration is None else _clean(asdict(self.calibration)),
            "notes": list(self.notes),
        }

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "profile") -> ReferenceProfile:
        try:
            if d.get("schema") != PROFILE_SCHEMA:
                raise UsageError(f"{where}: profile schema {d.get('schema')!r}; expected {PROFILE_SCHEMA}")
            numeric = {k: _numeric_from(v) for k, v in d["numeric"].items() if k in NUMERIC}
            categorical = {
                k: CategoricalProfile(str(v["name"]), int(v["n"]), int(v["missing"]),
                                      {str(a): float(b) for a, b in v["shares"].items()})
                for k, v in d["categorical"].items() if k in CATEGORICAL
            }
            cal = d.get("calibration")
            calibration = None
            if cal is not None:
                calibration = CalibrationMap(
                    tuple(float(x) for x in cal["edges"]), tuple(float(x) for x in cal["accuracy"]),
                    tuple(int(x) for x in cal["counts"]), _f(cal["ece"]), int(cal["words"]),
                    float(cal["deletions_per_word"]), float(cal["insertion_share"]), _f(cal["reference_wer"]),
                    _f(cal["fitted_wer"]), str(cal["normalizer"]), float(cal.get("prior", 5.0)),
                )
                if len(calibration.edges) != len(calibration.accuracy) + 1 or len(calibration.edges) < 2:
                    raise ValueError("calibration edges and accuracy do not match")
            return cls(dict(d.get("source") or {}), int(d["n_requests"]), numeric, categorical, calibration,
                       float(d.get("created_at") or 0.0), tuple(str(n) for n in d.get("notes", ())))
        except UsageError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"{where} is not a voxproof monitor profile ({type(exc).__name__}: {exc}); "
                             "make one with 'voxproof monitor baseline'") from None


def load_profile(path: str | Path) -> ReferenceProfile:
    p = Path(path)
    try:
        if not p.is_file():
            raise UsageError(f"profile {p} is not a file; make one with 'voxproof monitor baseline RUN -o {p}'")
        if p.stat().st_size > MAX_PROFILE_BYTES:
            raise UsageError(f"profile {p} is larger than {MAX_PROFILE_BYTES >> 20} MiB; not a monitor profile")
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read profile {p}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"profile {p} is not a JSON object")
    return ReferenceProfile.from_dict(data, where=str(p))


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _numeric_from(v: dict[str, Any]) -> NumericProfile:
    edges = tuple(float(x) for x in v["edges"])
    shares = tuple(float(x) for x in v["shares"])
    if len(shares) != len(edges) + 1:
        raise ValueError(f"{v.get('name')}: shares need one more entry than edges")
    return NumericProfile(str(v["name"]), int(v["n"]), int(v["missing"]), edges, shares,
                          tuple(float(x) for x in v["sample"]),
                          {str(k): _f(x) for k, x in v["percentiles"].items()})


# -- building ---------------------------------------------------------------------------------------
def n_bins_for(n: int) -> int:
    """Bins for PSI: about 10 reference values per bin, between 2 and 10 (few values, few bins, so
    sampling noise alone does not look like drift)."""
    return int(min(10, max(2, n // 10)))


def numeric_profile(name: str, values: np.ndarray) -> NumericProfile:
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    n = int(finite.size)
    if n == 0:
        return NumericProfile(name, 0, int(x.size), (), (1.0,), (), {})
    qs = np.linspace(0, 1, n_bins_for(n) + 1)[1:-1]
    edges = np.unique(np.quantile(finite, qs))
    shares = bin_shares(finite, edges)
    sample = np.sort(finite) if n <= SAMPLE_SIZE else np.quantile(finite, np.linspace(0, 1, SAMPLE_SIZE))
    pct = {f"p{int(p):02d}": float(np.percentile(finite, p)) for p in (1, 5, 25, 50, 75, 95, 99)}
    pct["mean"] = float(finite.mean())
    return NumericProfile(name, n, int(x.size - n), tuple(float(e) for e in edges),
                          tuple(float(s) for s in shares), tuple(float(s) for s in sample), pct)


def bin_shares(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin (-inf, e0), [e0, e1), ..., [ek, inf)."""
    if values.size == 0:
        return np.full(len(edges) + 1, np.nan)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="right")
    return np.bincount(idx, minlength=len(edges) + 1) / values.size


def categorical_profile(name: str, values: np.ndarray) -> CategoricalProfile:
    known = [v for v in values if v is not None]
    if not known:
        return CategoricalProfile(name, 0, len(values), {})
    uniq, counts = np.unique(np.asarray(known, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="mergesort")
    shares: dict[str, float] = {}
    for i in order[:MAX_CATEGORIES]:
        shares[str(uniq[i])] = float(counts[i] / len(known))
    rest = float(counts[order[MAX_CATEGORIES:]].sum() / len(known)) if len(order) > MAX_CATEGORIES else 0.0
    if rest:
        shares[OTHER] = rest
    return CategoricalProfile(name, len(known), int(len(values) - len(known)), shares)


def profile_from_batch(batch: RequestBatch, *, source: dict[str, Any],
                       calibration: CalibrationMap | None = None, notes: Sequence[str] = ()) -> ReferenceProfile:
    """The profile of the successful transcription rows of ``batch``."""
    ok = batch.take(np.flatnonzero(ok_mask(batch)))
    if ok.n == 0:
        raise DataError("the reference has no successful transcription requests (2xx, endpoint transcriptions)")
    numeric = {name: numeric_profile(name, feature_values(ok, name)) for name in NUMERIC}
    categorical = {name: categorical_profile(name, feature_values(ok, name)) for name in CATEGORICAL}
    notes = list(notes)
    for name, p in {**numeric, **categorical}.items():
        if not p.available:
            notes.append(f"{name}: not in the reference (no values); not monitored")
    return ReferenceProfile(source, ok.n, numeric, categorical, calibration, notes=tuple(notes))


# -- from a run ---------------------------------------------------------------------------------------
def fit_calibration(rows: Sequence[Any], normalizer: Callable[[str], str], *, n_bins: int = 10,
                    prior: float = 5.0) -> CalibrationMap | None:
    """The confidence -> correctness map of the ok rows with references and word confidences (word
    correctness as :func:`voxproof.metrics.calibration.judge_words` defines it). None without any."""
    from voxproof.metrics.calibration import EQUAL_MASS, align_ops, judge_words, reliability

    confs: list[float] = []
    correct: list[bool] = []
    hyp_words = dels = ins = errors = ref_words = 0
    for row in rows:
        if not row.ok or row.reference is None:
            continue
        ref = normalizer(row.reference).split()
        hyp = normalizer(row.hypothesis or "").split()
        ops = align_ops(ref, hyp)
        dels += sum(1 for op, _r, _h in ops if op == "delete")
        ins += sum(1 for op, _r, _h in ops if op == "insert")
        errors += sum(1 for op, _r, _h in ops if op != "equal")
        ref_words += len(ref)
        if row.transcript is None:
            continue
        for j in judge_words(row.reference, row.transcript.words, normalizer):
            if j.correct is None or j.confidence is None:
                continue
            confs.append(float(min(1.0, max(0.0, j.confidence))))
            correct.append(bool(j.correct))
            hyp_words += 1
    if not confs:
        return None
    conf = np.asarray(confs)
    corr = np.asarray(correct, dtype=float)
    binned = reliability(conf, corr, n_bins, EQUAL_MASS)
    acc = []
    for b in binned.bins:
        centre = (b.lower + b.upper) / 2 if b.count == 0 else b.mean_confidence
        a = 0.0 if b.count == 0 else b.accuracy
        acc.append((a * b.count + centre * prior) / (b.count + prior))
    wrong = float(np.sum(1 - corr))
    cal = CalibrationMap(
        edges=binned.edges, accuracy=tuple(float(a) for a in acc), counts=tuple(b.count for b in binned.bins),
        ece=binned.ece, words=int(conf.size), deletions_per_word=dels / max(hyp_words, 1),
        insertion_share=(ins / wrong) if wrong else 0.0,
        reference_wer=errors / ref_words if ref_words else math.nan, fitted_wer=math.nan,
        normalizer=f"{getattr(normalizer, 'name', '?')}@{getattr(normalizer, 'version', '?')}", prior=prior,
    )
    from voxproof.monitor.estimate import estimate_wer_point

    mass = float(np.sum(1.0 - cal.prob_correct(conf)))
    fitted = estimate_wer_point(mass, float(conf.size), cal)
    return CalibrationMap(**{**asdict(cal), "fitted_wer": fitted})


def profile_from_run(run_dir: str | Path, *, condition: str = "clean",
                     keep: Callable[[str], bool] | None = None) -> ReferenceProfile:
    """The profile of one condition of an evaluation run (``keep(utt_id)`` selects utterances), with the
    calibration map fitted on the same rows against their references. Reads the run store only."""
    from voxproof.gate.evidence import run_key
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.monitor.runlog import log_row
    from voxproof.run.store import RunStore

    with RunStore.open(run_dir) as store:
        rows = [r for r in store.rows(condition=condition) if keep is None or keep(r.utt_id)]
        prov = store.provenance
    if not rows:
        conds = "the run's conditions" if keep else f"condition {condition!r}"
        raise DataError(f"no rows for {conds} in {run_dir}; choose --condition from the run's conditions")
    name = (prov.get("normalizer") or {}).get("name") or "whisper-en"
    norm = get_normalizer(name)
    backend = prov.get("backend") or {}
    records = [log_row(r, ts=float(i), version=str(backend.get("name") or "run")) for i, r in enumerate(rows)]
    batch = batch_from_records(records)
    calibration = fit_calibration(rows, norm)
    notes = []
    if calibration is None:
        notes.append("no word confidences in the run: the WER estimate is not available")
    source = {"kind": "run", "run": str(run_dir), "run_key": run_key(prov), "condition": condition,
              "backend": backend.get("name"), "options": backend.get("options"), "rows": len(rows),
              "normalizer": name}
    return profile_from_batch(batch, source=source, calibration=calibration, notes=notes)
