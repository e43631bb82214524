"""Builds a run's summary (summary.json) from its store and writes the reports.

The summary is the one document every view reads: the console table, the HTML page, ``compare`` and
``gate``. Sections: provenance, resources, scores (accuracy with intervals, coverage, slices), latency,
calibration, robustness. A section that cannot be computed records why, instead of vanishing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxproof.errors import VoxproofError
from voxproof.run.store import RunStore

log = logging.getLogger("voxproof.report")

SUMMARY_SCHEMA = "voxproof.summary/1"


def _latency(store: RunStore, scores: Any) -> dict[str, Any]:
    from voxproof.metrics.latency import latency_from_store, latency_to_dict

    out: dict[str, Any] = {}
    for c in scores.conditions:
        if c.coverage.ok == 0:
            out[c.condition] = {"available": False, "reason": "no successful rows to time"}
        else:
            out[c.condition] = latency_to_dict(latency_from_store(store, condition=c.condition))
    return out


def _deployment(store: RunStore, scores: Any, normalizer: str) -> Any:
    """Calibration, latency, resources and model efficiency of the first (clean) condition; cost of the
    whole run at the prices recorded with ``--price`` (``report_settings`` meta), else example prices."""
    from voxproof.report.deployment import build_deployment

    name = scores.conditions[0].condition if scores.conditions else "clean"
    pairs = (store.meta("report_settings") or {}).get("prices") or []
    prices = {str(name): float(price) for name, price in pairs} or None  # a list keeps the user's order
    return build_deployment(store, normalizer=normalizer, condition=name, prices=prices,
                            throughput=store.meta("throughput") or ())


def record_prices(run: str | Path, prices: dict[str, float]) -> None:
    """Keep ``--price`` figures (name -> USD per machine-hour) in the run, so every later report of it
    prices the same machines."""
    with RunStore.open(run) as store:
        settings = dict(store.meta("report_settings") or {})
        settings["prices"] = [[name, price] for name, price in prices.items()]
        store.set_meta("report_settings", settings)


def _robustness(store: RunStore, scores: Any, normalizer: str, threshold: float | None) -> dict[str, Any] | None:
    if len(scores.conditions) < 2:
        return None
    from voxproof.metrics.robustness import robustness_to_dict, score_robustness

    return robustness_to_dict(score_robustness(store, scores, normalizer=normalizer, threshold=threshold))


def _section(name: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except VoxproofError as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # a broken view must not hide the accuracy numbers
        log.warning("the %s section could not be computed: %s", name, exc, exc_info=True)
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}


def build_summary(
    run: str | Path,
    *,
    normalizer: str | None = None,
    alternates: str | None = None,
    n_resamples: int = 1000,
    wer_threshold: float | None = None,
    classes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of the run in ``run`` (counts cached in its store, so this is cheap to repeat).

    ``classes``: ``{"rules", "keywords", "entities", "vocab"}`` (see
    :func:`voxproof.metrics.classes.load_class_spec`) to add per-class scores.

    ``wer_threshold`` (a rate, 0.2 = 20 %) is where robustness curves report the crossing severity;
    by default the one recorded at evaluation time, if any.
    """
    return _build(run, normalizer, alternates, n_resamples, wer_threshold, classes)[0]


def _build(
    run: str | Path, normalizer: str | None, alternates: str | None, n_resamples: int,
    wer_threshold: float | None, classes: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """The summary and the deployment section object (its figures are drawn from the object)."""
    from voxproof.metrics.scoring import score_run
    from voxproof.report.deployment import deployment_to_dict
    from voxproof.report.reasons import explain_summary

    with RunStore.open(run) as store:
        provenance = store.provenance
        norm = normalizer or (provenance.get("normalizer") or {}).get("name") or "whisper-en"
        seed = int(provenance.get("seed") or 0)
        spec = None
        if classes is not None:
            from voxproof.metrics.classes import load_class_spec
            from voxproof.metrics.normalize import get_normalizer

            spec = load_class_spec(get_normalizer(norm), **classes)
        scores = score_run(store, norm, alternates=alternates, n_resamples=n_resamples, seed=seed, classes=spec)
        if wer_threshold is None:
            wer_threshold = (store.meta("report_settings") or {}).get("wer_threshold")
        deployment = _section("deployment", lambda: _deployment(store, scores, norm))
        deployment_dict = deployment if isinstance(deployment, dict) else deployment_to_dict(deployment)
        summary = {
            "schema": SUMMARY_SCHEMA,
            "run_dir": str(Path(run)),
            "status": store.meta("status"),
            "provenance": provenance,
            "resources": store.meta("resources") or {},
            "scores": scores.to_dict(),
            "latency": _section("latency", lambda: _latency(store, scores)),
            "calibration": deployment_dict.get("calibration") or deployment_dict,
            "deployment": {k: v for k, v in deployment_dict.items() if k not in ("calibration", "latency")},
            "robustness": _section("robustness", lambda: _robustness(store, scores, norm, wer_threshold)),
        }
    explain_summary(summary)
    return summary, (None if isinstance(deployment, dict) else deployment)


def write_reports(
    run: str | Path,
    *,
    normalizer: str | None = None,
    alternates: str | None = None,
    n_resamples: int = 1000,
    wer_threshold: float | None = None,
    html: bool = True,
    html_path: str | Path | None = None,
    classes: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write ``summary.json`` (and ``report.html``) into the run directory; returns the summary and
    the written paths by label."""
    run = Path(run)
    from voxproof.security.redact import redact_value

    summary, deployment = _build(run, normalizer, alternates, n_resamples, wer_threshold, classes)
    summary = redact_value(summary)  # transcript fields only, under the process's PII policy
    paths: dict[str, Path] = {}
    out = run / "summary.json"
    out.write_text(json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    paths["summary"] = out
    if html:
        from voxproof.report.run_page import render_run_page

        target = Path(html_path) if html_path else run / "report.html"
        target.write_text(render_run_page(summary, run, deployment), encoding="utf-8")
        paths["report"] = target
    return summary, paths
