"""Calibration, latency, cost and efficiency of Whisper tiny.en and PocketSphinx on the bundled 50
LibriSpeech test-other utterances: the deployment section for each, with its figures.

    python benchmarks/calibration_report.py [--out /tmp/voxproof-deployment] [--runs DIR] [--repeat]

Runs each backend once through voxproof's runner (rows in DIR/<backend>, reused when present), then
prints the deployment section and writes reliability diagrams, latency histograms, the review-budget
curves, a WER-vs-RTFx scatter and deployment.json into --out. ``--repeat`` makes a second run of each
configuration and checks that the two RTFx figures agree within the interval each report prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bundled import bundled_utterances

CONFIGS = {
    "whisper": ["cpu_threads=2"],
    "sphinx": [],
}


def ensure_run(name: str, pairs: list[str], run_dir: Path) -> Path:
    from voxproof.backends.registry import load_backend
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.run.runner import RunOptions, run_eval
    from voxproof.run.store import store_path

    if store_path(run_dir).exists():
        return run_dir
    norm = get_normalizer("whisper-en")
    run_eval(
        lambda: load_backend(name, kind="asr", pairs=pairs),
        bundled_utterances(),
        run_dir,
        options=RunOptions(workers=1, features=False),
        normalizer=norm.to_dict(),
        dataset={"source": "librispeech-test-other-mini", "count": 50},
    )
    return run_dir


def corpus_wer(store, norm) -> tuple[float, int]:
    from voxproof.metrics.align import count_edits
    from voxproof.metrics.counts import total

    counts = [count_edits(norm(r.reference).split(), norm(r.hypothesis or "").split())
              for r in store.rows(condition="clean") if r.ok]
    t = total(counts)
    return t.error_rate, t.ref_len


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/voxproof-deployment")
    ap.add_argument("--runs", default="/tmp/voxproof-deployment/runs")
    ap.add_argument("--repeat", action="store_true", help="second run per backend; check RTFx agreement")
    args = ap.parse_args()

    from voxproof.metrics.latency import latency_agreement, latency_from_store
    from voxproof.metrics.normalize import get_normalizer
    from voxproof.report.deployment import (
        build_deployment,
        deployment_figures,
        deployment_lines,
        deployment_to_dict,
        wer_rtfx_scatter_png,
    )
    from voxproof.run.store import RunStore

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    norm = get_normalizer("whisper-en")
    summary: dict[str, object] = {}
    scatter = []
    for name, pairs in CONFIGS.items():
        run_dir = ensure_run(name, pairs, Path(args.runs) / name)
        with RunStore.open(run_dir) as store:
            section = build_deployment(store, normalizer=norm)
            for line in deployment_lines(section):
                print(line)
            wer, ref_words = corpus_wer(store, norm)
            print(f"  WER {wer:.3f} on {ref_words} reference words ({norm.label})")
            for fname, data in deployment_figures(section).items():
                (out / f"{name}_{fname}").write_bytes(data)
            summary[name] = deployment_to_dict(section)
            scatter.append({"name": name, "wer": wer, "rtfx": section.latency.rtfx})
        if args.repeat:
            again = ensure_run(name, pairs, Path(args.runs) / f"{name}-repeat")
            with RunStore.open(run_dir) as a, RunStore.open(again) as b:
                agreement = latency_agreement(latency_from_store(a), latency_from_store(b))
            print(
                f"  repeat: RTFx {agreement.rtfx_a:.1f} [{agreement.interval_a[0]:.1f}, {agreement.interval_a[1]:.1f}] "
                f"vs {agreement.rtfx_b:.1f} [{agreement.interval_b[0]:.1f}, {agreement.interval_b[1]:.1f}]: "
                f"ratio {agreement.ratio:.3f}, {'agree' if agreement.agree else 'DO NOT agree'} within the intervals"
            )
            summary[f"{name}_repeat_agreement"] = agreement.to_dict()
        print()
    (out / "wer_vs_rtfx.png").write_bytes(wer_rtfx_scatter_png(scatter))
    (out / "deployment.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"figures and deployment.json in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
