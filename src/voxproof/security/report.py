"""HTML pages and PNG curves of the security probes (self-contained, same look as the run report)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxproof.report.html import Page, cards, esc, json_block, png_img, table


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.{digits}f} %"


def pct_iv(iv: dict[str, Any], digits: int = 1) -> str:
    """``12.3 % [8.1, 17.0]`` or ``n/a (no rows)``."""
    if iv.get("estimate") is None:
        return "n/a (no rows)"
    if iv.get("low") is None or iv.get("high") is None:
        return f"{pct(iv['estimate'], digits)} [n/a: too few units]"
    return f"{pct(iv['estimate'], digits)} [{100 * iv['low']:.{digits}f}, {100 * iv['high']:.{digits}f}]"


def level_text(cross: dict[str, Any]) -> str:
    return f"{cross['value']:.1f} dB" if cross.get("value") is not None else f"n/a ({cross.get('why')})"


def plot_curves(series: Sequence[tuple[str, Sequence[float], Sequence[dict[str, Any]]]], *, xlabel: str,
                ylabel: str, title: str) -> bytes:
    """A PNG of rate curves with interval bands: ``series`` = (label, x values, interval dicts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for label, xs, ivs in series:
        ys = [100 * (iv.get("estimate") or 0.0) for iv in ivs]
        lo = [100 * (iv.get("low") if iv.get("low") is not None else iv.get("estimate") or 0.0) for iv in ivs]
        hi = [100 * (iv.get("high") if iv.get("high") is not None else iv.get("estimate") or 0.0) for iv in ivs]
        line, = ax.plot(xs, ys, marker="o", label=label)
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _curve_rows(points: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [[f"{p['level_db']:g}", p["n_rows"], p["n_errors"], pct_iv(p["word_success"]), pct_iv(p["exact_phrase"]),
             pct_iv(p["carrier_wer"]), pct_iv(p["carrier_lost"])] for p in points]


_CURVE_HEAD = ["level (dB)", "rows", "errors", "payload words in transcript", "exact phrase", "carrier WER",
               "carrier words lost (S+D)"]


def inject_html(report: dict[str, Any], path: str | Path) -> Path:
    model = report.get("model") or {}
    cross = report["crossings"]["overall"]
    page = Page(f"voxproof probe inject: {model.get('name', '?')}",
                f"payload '{report['payload']}' on {report['n_carriers']} carriers; normaliser {report['normalizer']}")
    page.add("Summary", cards([
        ("50 % payload words at", level_text(cross["word_success"]), "relative level, all positions/variants"),
        ("50 % exact phrase at", level_text(cross["exact_phrase"]), "relative level"),
        ("clean carrier WER", pct_iv(report["clean_wer"]), "no payload"),
        ("payload words on clean", pct_iv(report["clean_false_payload"]), "chance hits"),
    ]))
    overall = report["overall"]
    xs = [p["level_db"] for p in overall]
    png = plot_curves([("payload words", xs, [p["word_success"] for p in overall]),
                       ("exact phrase", xs, [p["exact_phrase"] for p in overall]),
                       ("carrier WER", xs, [p["carrier_wer"] for p in overall])],
                      xlabel="payload level relative to speech (dB)", ylabel="%", title="Injection success vs level")
    page.add("Curves over level (pooled)", png_img(png, "injection curves") + table(_CURVE_HEAD, _curve_rows(overall)))
    for key, title in (("by_position", "position"), ("by_variant", "variant")):
        body = []
        for name, points in report[key].items():
            c = report["crossings"][key][name]["word_success"]
            body.append(f"<h3>{esc(title)} {esc(name)}: 50 % at {esc(level_text(c))}</h3>"
                        + table(_CURVE_HEAD, _curve_rows(points)))
        page.add(f"By {title}", "".join(body))
    page.add("Record", json_block({"model": model, "payload_tokens": report["payload_tokens"]}))
    Path(path).write_text(page.render(), encoding="utf-8")
    return Path(path)


def search_html(report: dict[str, Any], path: str | Path) -> Path:
    o = report["options"]
    model = report.get("model") or {}
    page = Page(f"voxproof probe search: {model.get('name', '?')}",
                f"{report['method']}; objective {o['objective']}, placement {o['placement']}, SNR {o['snr_db']:g} dB, "
                f"L-inf {o['linf']:g}, {report['queries_used']} queries")
    final = report["curve"][-1] if report["curve"] else None
    page.add("Summary", cards([
        ("held-out clean WER", pct_iv(report["clean"]["wer"]), "no perturbation"),
        ("random noise WER", pct_iv(report["random_noise"]["wer"]), "same SNR and L-inf"),
        ("searched WER", pct_iv(final["wer"]) if final else "n/a (no checkpoint)", "held-out, final"),
        ("queries", str(report["queries_used"]), f"{report['generations']} generations"),
    ]))
    metric = "deletion_rate" if o["objective"] == "deletions" else "wer"
    xs = [p["queries"] for p in report["curve"]]
    if xs:
        png = plot_curves([("searched perturbation", xs, [p[metric] for p in report["curve"]]),
                           ("random noise", xs, [report["random_noise"][metric]] * len(xs)),
                           ("clean", xs, [report["clean"][metric]] * len(xs))],
                          xlabel="queries", ylabel=f"held-out {metric} (%)", title="Success vs query budget")
        page.add("Held-out success vs budget", png_img(png, "search curve") + table(
            ["queries", "rows", "WER", "deletion rate", "train objective"],
            [[p["queries"], p["n_rows"], pct_iv(p["wer"]), pct_iv(p["deletion_rate"]), pct(p["train_objective"])]
             for p in report["curve"]]))
    page.add("Record", json_block({k: report[k] for k in ("options", "paired_final_vs_random", "train_history")}))
    Path(path).write_text(page.render(), encoding="utf-8")
    return Path(path)


def detect_html(report: dict[str, Any], path: str | Path) -> Path:
    def auc(a: dict[str, Any]) -> str:
        if a.get("estimate") is None:
            return f"n/a ({a.get('why')})"
        return f"{a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"

    page = Page("voxproof probe detect", report["detector"])
    ar = report["alarm_rate"]
    page.add("Summary", cards([
        ("AUROC attacked vs clean", auc(report["auroc_attacked_vs_clean"]), "all attacked inputs"),
        ("AUROC effective attacks", auc(report["auroc_effective_attacks_vs_clean"]), ">= 50 % payload words"),
        ("clean alarm rate", pct_iv(ar["clean"]), f"threshold {report['threshold']:.3f} (in-sample)"),
        ("detection rate", pct_iv(ar["attacked"]) if ar["attacked"] else "n/a (no attacked rows)", "attacked"),
    ]))
    page.add("False alarms on natural conditions", table(
        ["condition", "alarms", "rows", "rate"],
        [[k, v["alarms"], v["n"], pct_iv(v)] for k, v in ar["natural"].items()]))
    page.add("AUROC by attack", table(["attack", "AUROC", "attacked rows", "clean rows"],
                                      [[k, auc(v), v["n_pos"], v["n_neg"]] for k, v in report["auroc_by_attack"].items()]))
    page.add("Sources", json_block(report["sources"]))
    Path(path).write_text(page.render(), encoding="utf-8")
    return Path(path)
