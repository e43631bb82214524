"""The "deployment" section of a report: when to trust the output, how long users wait, what it costs.

Stage: report. Builds from a run store (rows + ``resources`` meta + provenance) a
:class:`DeploymentSection` holding calibration, latency, resources, cost and model efficiency, plus
optional streaming and throughput measurements; renders it as a JSON-ready dict
(:func:`deployment_to_dict`, for summary.json), console lines (:func:`deployment_lines`), PNG figures
(:func:`deployment_figures`: reliability diagram, latency histogram, throughput vs workers, review
budget; :func:`wer_rtfx_scatter_png` when several runs are compared) and an HTML fragment with the
figures embedded (:func:`deployment_html`). matplotlib is imported only when a figure is drawn (Agg).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxproof.errors import UsageError, VoxproofError

log = logging.getLogger("voxproof.report.deployment")


@dataclass(frozen=True)
class DeploymentSection:
    """Everything the deployment section shows for one run. Sub-reports are ``None`` when they could
    not be computed; ``notes`` says why."""

    run: str
    backend: str
    calibration: Any = None  # CalibrationReport
    latency: Any = None  # LatencyReport
    resources: dict[str, Any] = field(default_factory=dict)
    cost: list[Any] = field(default_factory=list)  # CostLine
    efficiency: Any = None  # ModelEfficiency
    streaming: list[Any] = field(default_factory=list)  # StreamingSummary
    throughput: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return deployment_to_dict(self)


def build_deployment(
    store: Any,
    *,
    normalizer: Any = None,
    condition: str = "clean",
    prices: Mapping[str, float] | None = None,
    streaming: Sequence[Any] = (),
    throughput: Sequence[Mapping[str, Any]] = (),
    n_boot: int = 1000,
) -> DeploymentSection:
    """The deployment section of a run store. ``prices`` (name -> price per machine-hour) default to the
    labelled examples; ``streaming``/``throughput`` are measurements made outside the run."""
    from voxproof.efficiency import inspect_model
    from voxproof.metrics.calibration import calibrate_store
    from voxproof.metrics.cost import cost_table, run_audio_seconds
    from voxproof.metrics.latency import latency_from_store

    prov = store.provenance
    backend = (prov.get("backend") or {}).get("name", "unknown")
    notes: dict[str, str] = {}
    try:
        calibration = calibrate_store(store, normalizer, condition=condition, n_boot=n_boot)
    except VoxproofError as exc:
        calibration, notes["calibration"] = None, str(exc)
    try:
        latency = latency_from_store(store, condition=condition)
    except VoxproofError as exc:
        latency, notes["latency"] = None, str(exc)
    resources = dict(store.meta("resources") or {})
    cost = []
    if resources.get("wall_seconds"):
        # The run's wall clock covers every condition, so it is divided by the audio of every condition
        # (total over total); model load is paid once per process and left out.
        machine = max(0.0, resources["wall_seconds"] - (resources.get("model_load_seconds") or 0.0))
        audio, n_conditions = run_audio_seconds(store)
        if audio > 0:
            cost = cost_table(machine, audio, prices, conditions=n_conditions)
        else:
            notes["cost"] = "no row recorded an audio duration; cost per audio hour needs it"
    else:
        notes["cost"] = "the run recorded no wall time; cost per audio hour needs it"
    efficiency = None
    model_path = (prov.get("backend") or {}).get("model")
    if model_path:
        try:
            efficiency = inspect_model(model_path)
        except VoxproofError:
            notes["efficiency"] = (
                f"parameters not available for {backend}: {model_path} is not a network voxproof can read "
                "(CTranslate2 directory, ONNX file, or a module through a plugin inspector)"
            )
    return DeploymentSection(
        run=str(store.path.parent), backend=backend, calibration=calibration, latency=latency,
        resources=resources, cost=cost, efficiency=efficiency, streaming=list(streaming),
        throughput=[dict(t) for t in throughput], notes=notes,
    )


def deployment_to_dict(section: DeploymentSection) -> dict[str, Any]:
    """JSON-ready dict of the section (for summary.json)."""
    from voxproof.metrics.calibration import calibration_to_dict
    from voxproof.metrics.cost import cost_to_dict
    from voxproof.metrics.latency import latency_to_dict

    return {
        "run": section.run,
        "backend": section.backend,
        "calibration": None if section.calibration is None else calibration_to_dict(section.calibration),
        "latency": None if section.latency is None else latency_to_dict(section.latency),
        "resources": dict(section.resources),
        "cost": cost_to_dict(section.cost) if section.cost else None,
        "efficiency": None if section.efficiency is None else section.efficiency.to_dict(),
        "streaming": [s.to_dict() for s in section.streaming],
        "throughput": list(section.throughput),
        "notes": dict(section.notes),
    }


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def deployment_lines(section: DeploymentSection) -> list[str]:
    """Plain-text lines for the console report."""
    out = [f"Deployment: {section.backend}"]
    cal = section.calibration
    if cal is None or not cal.available:
        out.append(f"  calibration: {section.notes.get('calibration') or (cal.reason if cal else 'not computed')}")
    else:
        for s in (cal.word, cal.utterance):
            if s is None:
                continue
            ci = s.intervals.get("ece")
            ci_txt = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            out.append(
                f"  {s.level:<9} n={s.n:<5} acc={_fmt(s.accuracy)} conf={_fmt(s.mean_confidence)} "
                f"ECE={_fmt(s.ece)}{ci_txt} (equal-width {s.equal_width.n_bins} bins; equal-mass "
                f"{_fmt(s.equal_mass.ece)}) MCE={_fmt(s.equal_width.mce)} Brier={_fmt(s.brier)} "
                f"AUROC(wrong)={_fmt(s.auroc_error)} AUPRC(wrong)={_fmt(s.auprc_error)} (chance {_fmt(s.error_rate)})"
            )
        if cal.utterance_spearman is not None:
            out.append(
                f"  utterance confidence vs utterance word accuracy: Spearman {cal.utterance_spearman:.3f} "
                "(an average over tokens or words, not the probability that the whole utterance is right)"
            )
        if cal.review is not None:
            needed = ", ".join(
                f"WER<={t:g}: {_fmt(v, '.0%')} (oracle {_fmt(cal.review.needed_oracle[t], '.0%')})"
                for t, v in cal.review.needed.items()
            )
            out.append(f"  review budget (lowest utterance confidence first): {needed}")
        if cal.review_min_word is not None:
            rw = cal.review_min_word
            needed = ", ".join(f"WER<={t:g}: {_fmt(v, '.0%')}" for t, v in rw.needed.items())
            out.append(f"  review budget (lowest word confidence first): {needed}")
    lat = section.latency
    if lat is not None:
        c = lat.conditions
        out.append(
            f"  speed: RTFx {lat.rtfx:.1f} [{lat.rtfx_interval[0]:.1f}, {lat.rtfx_interval[1]:.1f}] "
            f"(RTF {lat.rtf:.3f}, per-utterance RTF IQR {lat.rtf_iqr:.3f}); latency p50 "
            f"{lat.latency_percentiles[50]:.3f} s p90 {lat.latency_percentiles[90]:.3f} s p99 "
            f"{lat.latency_percentiles[99]:.3f} s (n={lat.n}); cold start {_fmt(lat.model_load_seconds, '.2f')} s"
        )
        out.append(
            f"  conditions: threads={'0 (library default)' if c.threads == 0 else c.threads} workers={c.workers} batch={c.batch_size} precision={c.precision} "
            f"warm-up={c.warmup} cpu={c.cpu_model} ({c.logical_cpus} logical), load average "
            f"{'not recorded' if c.load_average is None else c.load_average}"
        )
        if lat.cpu_rtfx is not None and lat.cpu_rtfx_interval is not None:
            out.append(
                f"  CPU-time RTFx {lat.cpu_rtfx:.1f} [{lat.cpu_rtfx_interval[0]:.1f}, {lat.cpu_rtfx_interval[1]:.1f}] "
                "(audio seconds per CPU second of the backend calls)"
            )
    r = section.resources
    if r:
        out.append(
            f"  resources: peak RSS {_fmt(r.get('peak_rss_mb'), '.0f')} MB, CPU {_fmt(r.get('cpu_seconds'), '.1f')} s, "
            f"wall {_fmt(r.get('wall_seconds'), '.1f')} s"
        )
    for line in section.cost:
        tag = " (example price)" if line.is_example else ""
        out.append(
            f"  cost: {line.machine} at {line.price_per_machine_hour:.2f} {line.currency}/h{tag} -> "
            f"{line.cost_per_audio_hour:.4f} {line.currency} per audio hour ({line.basis})"
        )
    eff = section.efficiency
    if eff is not None:
        active = "" if not eff.is_moe else f", active per token {eff.active_parameters:,}"
        flops = "" if eff.flops_per_audio_second is None else f", ~{eff.flops_per_audio_second / 1e9:.2f} GFLOP per audio second"
        out.append(f"  model: {eff.architecture} {eff.parameters:,} parameters{active}, {eff.disk_bytes or 0:,} bytes on disk{flops}")
    elif "efficiency" in section.notes:
        out.append(f"  model: {section.notes['efficiency']}")
    for s in section.streaming:
        out.append(
            f"  streaming {s.chunk_seconds * 1000:.0f} ms ({s.mode}): first partial p50 "
            f"{_fmt(s.first_partial.get('p50'))} s, final delay p50 {_fmt(s.final_delay.get('p50'))} s "
            f"p90 {_fmt(s.final_delay.get('p90'))} s, keeps up {s.keeps_up_share:.0%}"
        )
    for t in section.throughput:
        out.append(f"  throughput: {t.get('label', '')} RTFx {t.get('rtfx', float('nan')):.1f}")
    return out


# ------------------------------------------------------------------------------------------------
# Figures (PNG bytes)
# ------------------------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise UsageError("figures need matplotlib: pip install 'voxproof[plots]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def reliability_png(scores: Any, title: str = "") -> bytes:
    """Reliability diagram of one :class:`~voxproof.metrics.calibration.CalibrationScores`: accuracy per
    equal-width confidence bin against the diagonal, with the item count per bin underneath."""
    plt = _pyplot()
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    bins = [b for b in scores.equal_width.bins if b.count]
    width = scores.equal_width.edges[1] - scores.equal_width.edges[0]
    mids = [(b.lower + b.upper) / 2 for b in bins]
    ax.bar(mids, [b.accuracy for b in bins], width=width * 0.9, color="#4C72B0", edgecolor="black",
           label="share correct in bin")
    ax.plot(mids, [b.mean_confidence for b in bins], "o", color="#C44E52", label="mean confidence in bin")
    ax.vlines(mids, [b.accuracy for b in bins], [b.mean_confidence for b in bins], color="#C44E52", lw=1.5)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share correct")
    ax.set_title(title or f"{scores.level} reliability: ECE {scores.ece:.3f} (n={scores.n})", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    axn.bar(mids, [b.count for b in bins], width=width * 0.9, color="grey")
    axn.set_xlabel(f"confidence ({scores.equal_width.n_bins} equal-width bins)")
    axn.set_ylabel("count")
    axn.set_xlim(0, 1)
    return _png(fig)


def latency_histogram_png(latency: Any, title: str = "") -> bytes:
    """Histogram of per-utterance processing time with p50/p90/p99 marked."""
    plt = _pyplot()
    times = [p for _u, p, _a in latency.per_utterance]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(times, bins=min(30, max(5, len(times) // 3)), color="#55A868", edgecolor="black")
    for q, style in ((50, "-"), (90, "--"), (99, ":")):
        v = latency.latency_percentiles[q]
        ax.axvline(v, color="black", ls=style, lw=1, label=f"p{q} {v:.3f} s")
    ax.set_xlabel("processing time per utterance (s)")
    ax.set_ylabel("utterances")
    ax.set_title(title or f"latency (n={latency.n}, RTFx {latency.rtfx:.1f})", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def review_budget_png(review: Any, title: str = "", by_min_word: Any = None) -> bytes:
    """Remaining WER against the share of utterances reviewed (confidence order vs oracle vs random)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = [100 * s for s in review.share_reviewed]
    ax.plot(x, [100 * w for w in review.remaining_wer], label="lowest utterance confidence first")
    if by_min_word is not None:
        ax.plot(x, [100 * w for w in by_min_word.remaining_wer], label="lowest word confidence first")
    ax.plot(x, [100 * w for w in review.oracle_wer], "--", label="oracle (most errors first)")
    ax.plot([0, 100], [100 * review.remaining_wer[0], 0], ":", color="grey", label="random order (expected)")
    ax.set_xlabel("utterances reviewed (%)")
    ax.set_ylabel("remaining WER (%)")
    ax.set_title(title or "review budget", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def throughput_png(points: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """RTFx per configuration (``label``, ``rtfx``, optional ``workers``), as bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = [str(p.get("label", p.get("workers", "?"))) for p in points]
    ax.bar(labels, [p["rtfx"] for p in points], color="#8172B2", edgecolor="black")
    ax.set_ylabel("RTFx (audio s / processing s)")
    ax.set_title(title or "throughput", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    return _png(fig)


def wer_rtfx_scatter_png(runs: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """WER against RTFx for several runs (``name``, ``wer``, ``rtfx``, optional ``wer_interval``)."""
    if not runs:
        raise UsageError("a WER-vs-RTFx scatter needs at least one run")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for r in runs:
        lo_hi = r.get("wer_interval")
        yerr = None if not lo_hi else [[100 * (r["wer"] - lo_hi[0])], [100 * (lo_hi[1] - r["wer"])]]
        ax.errorbar([r["rtfx"]], [100 * r["wer"]], yerr=yerr, fmt="o", capsize=3)
        ax.annotate(str(r["name"]), (r["rtfx"], 100 * r["wer"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("RTFx (higher is faster, log scale)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title or "accuracy vs speed", fontsize=10)
    return _png(fig)


def deployment_figures(section: DeploymentSection) -> dict[str, bytes]:
    """PNG figures of the section by file name (reliability diagrams, latency histogram, review budget,
    throughput); figures whose data is missing are left out."""
    figs: dict[str, bytes] = {}
    cal = section.calibration
    if cal is not None and cal.available:
        for s in (cal.word, cal.utterance):
            if s is not None:
                figs[f"reliability_{s.level}.png"] = reliability_png(
                    s, f"{section.backend} {s.level} reliability: ECE {s.ece:.3f} (n={s.n})"
                )
        if cal.review is not None:
            figs["review_budget.png"] = review_budget_png(
                cal.review, f"{section.backend} review budget", by_min_word=cal.review_min_word
            )
    if section.latency is not None:
        figs["latency_histogram.png"] = latency_histogram_png(section.latency, f"{section.backend} latency")
    if section.throughput:
        figs["throughput.png"] = throughput_png(section.throughput, f"{section.backend} throughput")
    return figs


FIGURE_CAPTIONS = {
    "reliability_word.png": "Word reliability: share of words right in each confidence bin against the "
                            "bin's mean confidence; bars on the dashed diagonal are well calibrated.",
    "reliability_utterance.png": "Utterance reliability: share of utterances without an error in each "
                                 "confidence bin; the bottom panel counts utterances per bin.",
    "review_budget.png": "Review budget: WER left after a person corrects the lowest-confidence utterances "
                         "first, against the best possible order (oracle) and a random one.",
    "latency_histogram.png": "Processing time per utterance, with the 50th, 90th and 99th percentiles marked.",
    "throughput.png": "Throughput (RTFx, audio seconds per processing second) of each measured configuration.",
}


def _cal_rows(cal: Any) -> list[list[Any]]:
    from voxproof.report.html import fmt_num, na
    from voxproof.report.reasons import ranking_reason

    rows = []
    for s in (cal.word, cal.utterance):
        if s is None:
            continue
        one_class = ranking_reason(s.level, s.n, s.error_rate)
        ci = s.intervals.get("ece")
        rows.append([
            s.level, s.n, fmt_num(s.accuracy), fmt_num(s.mean_confidence),
            fmt_num(s.ece) + (f" [{fmt_num(ci[0])}, {fmt_num(ci[1])}]" if ci else ""),
            fmt_num(s.equal_mass.ece), fmt_num(s.brier),
            fmt_num(s.auroc_error, reason=one_class), fmt_num(s.auprc_error, reason=one_class),
            fmt_num(s.error_rate) if s.n else na("no items"),
        ])
    return rows


def deployment_html(section: DeploymentSection, figures: Mapping[str, bytes] | None = None) -> str:
    """The deployment section as HTML (``<section>`` with its heading): headline cards, calibration and
    speed tables, cost, model size and the figures with captions (PNGs embedded)."""
    from voxproof.report import html as h
    from voxproof.report.reasons import ranking_reason

    figs = deployment_figures(section) if figures is None else figures
    cal, lat, r = section.calibration, section.latency, section.resources
    items = []
    if cal is not None and cal.available and cal.word is not None:
        w = cal.word
        items.append(("word ECE", h.fmt_num(w.ece), f"equal-width {w.equal_width.n_bins} bins, n={w.n}"))
        auroc = h.fmt_num(w.auroc_error)
        items.append(("AUROC for wrong words", auroc, "how well low confidence finds errors" if auroc != "n/a" else
                      ranking_reason("word", w.n, w.error_rate)))
    if lat is not None:
        items.append(("RTFx", h.fmt_num(lat.rtfx, ".1f"), "audio seconds per processing second"))
        items.append(("latency p90", h.fmt_num(lat.latency_percentiles.get(90), ".2f") + " s", f"n={lat.n}"))
    for line in section.cost[:2]:
        items.append((f"cost per audio hour on {line.machine}",
                      f"{h.fmt_num(line.cost_per_audio_hour, '.4f')} {line.currency}",
                      f"at {line.price_per_machine_hour:g}/h" + (" (example price)" if line.is_example else "")))
    eff = section.efficiency
    if eff is not None:
        items.append(("parameters", f"{eff.parameters:,}", f"{(eff.disk_bytes or 0) / 1e6:.1f} MB on disk"))
    body = [h.cards(items)] if items else []
    if cal is None or not cal.available:
        body.append(h.paragraph("Calibration: " + h.na(section.notes.get("calibration") or (
            cal.reason if cal is not None else "not computed")), "warn"))
    else:
        body.append("<h3>Calibration</h3>" + h.table(
            ["level", "n", "accuracy", "mean confidence", "ECE [95% CI]", "ECE (equal mass)", "Brier",
             "AUROC (wrong)", "AUPRC (wrong)", "AUPRC chance"], _cal_rows(cal), sortable=False, numeric=(1, 2, 3, 4, 5, 6, 9)))
        if cal.review is not None:
            needed = ", ".join(f"WER ≤ {100 * t:g} %: review {h.fmt_pct(v, 0, 'unreachable')} "
                               f"(oracle {h.fmt_pct(cal.review.needed_oracle[t], 0, 'unreachable')})"
                               for t, v in cal.review.needed.items())
            body.append(h.paragraph(f"Review budget, lowest utterance confidence first: {needed}."))
        spearman = cal.utterance_spearman
        body.append(h.paragraph(
            "Utterance confidence against utterance word accuracy: Spearman "
            + h.fmt_num(spearman, reason="needs 3 utterances whose confidence and accuracy vary")
            + " (a mean token probability, not the probability that the whole utterance is right)."))
    if lat is not None:
        c = lat.conditions
        body.append("<h3>Speed</h3>" + h.kv({
            "RTFx [95% CI]": f"{h.fmt_num(lat.rtfx, '.1f')} [{h.fmt_num(lat.rtfx_interval[0], '.1f')}, "
                             f"{h.fmt_num(lat.rtfx_interval[1], '.1f')}]" if lat.n > 1 else
                             f"{h.fmt_num(lat.rtfx, '.1f')} [{h.na('one timed utterance')}]",
            "RTF": f"{h.fmt_num(lat.rtf)} (per-utterance IQR {h.fmt_num(lat.rtf_iqr)})",
            "latency per utterance": ", ".join(f"p{q} {h.fmt_num(lat.latency_percentiles.get(q))} s" for q in (50, 90, 99))
                                     + f" (n={lat.n})",
            "CPU-time RTFx": h.fmt_num(lat.cpu_rtfx, ".1f", "no CPU time recorded per utterance"),
            "cold start (model load)": h.fmt_num(lat.model_load_seconds, ".2f", "not reported") + " s"
                                       if lat.model_load_seconds is not None else h.na("not reported"),
            "measured with": f"{'library default' if c.threads == 0 else c.threads} threads, {c.workers} worker(s), "
                             f"batch {c.batch_size}, {c.precision}, warm-up {c.warmup}, {c.cpu_model} "
                             f"({c.logical_cpus} logical CPUs)",
            "load average (1, 5, 15 min)": _load_text(c.load_average),
        }))
    elif "latency" in section.notes:
        body.append(h.paragraph("Speed: " + h.na(section.notes["latency"]), "warn"))
    if r:
        body.append(h.paragraph(
            f"Resources: peak RSS {h.fmt_num(r.get('peak_rss_mb'), '.0f', 'not recorded')} MB, CPU "
            f"{h.fmt_num(r.get('cpu_seconds'), '.1f', 'not recorded')} s, wall "
            f"{h.fmt_num(r.get('wall_seconds'), '.1f', 'not recorded')} s."))
    if section.cost:
        first = section.cost[0]
        body.append("<h3>Cost</h3>" + h.table(
            ["machine", "price per machine-hour", "cost per audio hour", "audio hours per machine-hour"],
            [[line.machine, f"{line.price_per_machine_hour:g} {line.currency}" + (" (example)" if line.is_example else ""),
              f"{h.fmt_num(line.cost_per_audio_hour, '.4f')} {line.currency}",
              h.fmt_num(line.audio_hours_per_machine_hour, ".1f", "no machine time")] for line in section.cost],
            sortable=False, numeric=(1, 2, 3)) + h.paragraph(
            f"Basis: {first.basis} ({first.machine_seconds:.1f} machine seconds / {first.audio_seconds:.1f} "
            "audio seconds, model load excluded)." + (
                " Example prices, not quotes: pass --price NAME=USD_PER_HOUR to 'voxproof eval' or "
                "'voxproof report'." if first.is_example else ""), "muted"))
    elif "cost" in section.notes:
        body.append(h.paragraph("Cost: " + h.na(section.notes["cost"]), "warn"))
    if eff is None and "efficiency" in section.notes:
        body.append(h.paragraph("Model size: " + h.na(section.notes["efficiency"]), "muted"))
    elif eff is not None:
        flops = ("" if eff.flops_per_audio_second is None else
                 f", about {eff.flops_per_audio_second / 1e9:.2f} GFLOP per audio second")
        active = "" if not eff.is_moe else f", {eff.active_parameters:,} active per token"
        body.append(h.paragraph(f"Model: {eff.architecture}, {eff.parameters:,} parameters{active}{flops}."))
    for st in section.streaming:
        body.append(h.paragraph(
            f"Streaming {st.chunk_seconds * 1000:.0f} ms chunks ({st.mode}): first partial p50 "
            f"{h.fmt_num(st.first_partial.get('p50'), reason='no partial')} s, final delay p50 "
            f"{h.fmt_num(st.final_delay.get('p50'))} s, p90 {h.fmt_num(st.final_delay.get('p90'))} s; keeps up on "
            f"{h.fmt_pct(st.keeps_up_share, 0)} of clips."))
    if figs:
        body.append(h.figures(h.figure(data, FIGURE_CAPTIONS.get(name, name.rsplit(".", 1)[0].replace("_", " ")))
                              for name, data in figs.items()))
    return f'<section id="deployment" class="deployment"><h2>Deployment</h2>{"".join(body)}</section>'


def _load_text(load: Any) -> str:
    """``start 2.63, 0.86, 0.32; end 2.74, 0.91, 0.34`` from the recorded load averages."""
    if not load:
        return "not recorded"
    if isinstance(load, Mapping):
        return "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in vals) for k, vals in load.items())
    return ", ".join(f"{v:.2f}" for v in load)
