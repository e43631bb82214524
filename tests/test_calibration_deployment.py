"""The deployment section end to end: a real Whisper tiny.en run on real LibriSpeech recordings through
the runner and run store, then calibration, latency, cost, efficiency, figures and HTML."""

from __future__ import annotations

import json

import pytest

from voxproof.metrics.normalize import get_normalizer
from voxproof.report.deployment import (
    build_deployment,
    deployment_figures,
    deployment_html,
    deployment_lines,
    deployment_to_dict,
    wer_rtfx_scatter_png,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def whisper_run(tmp_path_factory, shared_data):
    from voxproof.backends.registry import load_backend
    from voxproof.manifest.utterance import Utterance
    from voxproof.run.runner import RunOptions, run_eval

    folder = shared_data / "librispeech-test-other-mini"
    lines = (folder / "transcripts.tsv").read_text().splitlines()[:5]
    utts = [Utterance(id=i, audio=str(folder / "audio" / f"{i}.flac"), text=t)
            for i, t in (line.split("\t", 1) for line in lines)]
    run_dir = tmp_path_factory.mktemp("deploy") / "whisper"
    run_eval(lambda: load_backend("whisper", kind="asr", pairs=["cpu_threads=2"]), utts, run_dir,
             options=RunOptions(features="none"), normalizer=get_normalizer("whisper-en").to_dict())
    return run_dir


@pytest.mark.slow
def test_deployment_section_of_a_real_whisper_run(whisper_run):
    from voxproof.run.store import RunStore

    with RunStore.open(whisper_run) as store:
        rows = list(store.rows())
        section = build_deployment(store, normalizer=get_normalizer("whisper-en"), prices={"my vm": 0.2}, n_boot=100)
    cal = section.calibration
    assert cal.available and cal.counters["rows_scored"] == 5
    n_words = sum(len(r.transcript.words) for r in rows)
    assert cal.word.n + cal.counters["words_normalised_away"] == n_words
    assert all(w.confidence is not None for r in rows for w in r.transcript.words)
    assert 0 <= cal.word.ece <= 1 and 0 <= cal.word.brier <= 1
    assert cal.utterance.n == 5  # exp(avg_logprob) per utterance
    lat = section.latency
    assert lat.n == 5 and lat.rtfx == pytest.approx(lat.audio_seconds / lat.processing_seconds)
    assert lat.conditions.precision == "int8" and lat.conditions.threads == 2
    assert section.cost[0].machine == "my vm" and not section.cost[0].is_example
    assert section.efficiency.parameters > 37_000_000
    d = deployment_to_dict(section)
    json.dumps(d)
    assert d["cost"]["note"] == "prices given by the user"
    text = "\n".join(deployment_lines(section))
    assert "ECE=" in text and "RTFx" in text and "parameters" in text
    figs = deployment_figures(section)
    assert {"reliability_word.png", "reliability_utterance.png", "latency_histogram.png", "review_budget.png"} <= set(figs)
    assert all(b.startswith(PNG) for b in figs.values())
    html = deployment_html(section, figs)
    assert html.count("data:image/png;base64,") == len(figs) and "<section" in html
    assert wer_rtfx_scatter_png([{"name": "whisper", "wer": 0.12, "rtfx": lat.rtfx, "wer_interval": (0.08, 0.16)},
                                 {"name": "sphinx", "wer": 0.58, "rtfx": 2.0}]).startswith(PNG)


def test_calibration_of_a_backend_without_confidences_says_so(tmp_path):
    from voxproof.backends.base import Transcript, Word
    from voxproof.run.records import ResultRow
    from voxproof.run.store import RunStore

    with RunStore.create(tmp_path / "run", {"backend": {"name": "openai", "model": "remote"},
                                            "normalizer": {"name": "whisper-en"}}) as store:
        store.add_row(ResultRow("a", "clean", "ok", reference="hello world", hypothesis="hello world",
                                transcript=Transcript("hello world", (Word("hello"), Word("world"))),
                                audio_duration=1.0, processing_time=0.2), 0)
        section = build_deployment(store)
    assert not section.calibration.available
    assert "no word or utterance confidences" in section.calibration.reason
    assert "not available" in "\n".join(deployment_lines(section))
    assert section.efficiency is None and "efficiency" in section.notes
    assert "reliability_word.png" not in deployment_figures(section)
