"""TTS evaluation end to end with real Piper and eSpeak NG voices, real Whisper, real DNSMOS: planted
failures (silence, truncation, repetition, crashes) are each detected and counted; runs resume;
systems are compared pairwise; the HTML report plays the worst items."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from voxproof.audio.signal import Audio
from voxproof.backends.base import Synthesizer
from voxproof.errors import BackendError
from voxproof.run.store import RunStore
from voxproof.tts.evaluate import TTS_CONDITION, TtsEvalOptions, TtsScorer, evaluate_system, floor_items
from voxproof.tts.pipeline import run_tts_eval
from voxproof.tts.prompts import load_prompts
from voxproof.tts.summary import prompt_scores, summarise

pytestmark = pytest.mark.slow  # real synthesisers, recogniser and DNSMOS

IDS = ("q-03", "abbr-01", "hom-01")  # 8 to 12 words each


@pytest.fixture(scope="module")
def prompts():
    by_id = {p.id: p for p in load_prompts()}
    return [by_id[i] for i in IDS]


@pytest.fixture(scope="module")
def piper():
    from voxproof.backends import load_backend

    return load_backend("piper", kind="tts")


@pytest.fixture(scope="module")
def espeak():
    from voxproof.backends import load_backend

    return load_backend("espeak", kind="tts")


@pytest.fixture(scope="module")
def scorer():
    """Recogniser + VAD + detectors, no MOS (detection does not depend on it; MOS is tested below)."""
    return TtsScorer.from_options(TtsEvalOptions(mos=False))


class _Planted:
    """Wraps a real synthesiser and damages its output in one way."""

    label = "planted"

    def __init__(self, inner: Synthesizer):
        self.inner = inner

    def info(self):
        info = self.inner.info()
        return dataclasses.replace(info, name=f"{self.label}-{info.name}")

    def synthesize(self, text: str) -> Audio:
        return self.damage(self.inner.synthesize(text))

    def damage(self, audio: Audio) -> Audio:
        raise NotImplementedError


class Silent(_Planted):
    label = "silent"

    def damage(self, audio):
        return Audio(np.zeros_like(audio.samples), audio.sample_rate)


class Truncating(_Planted):
    label = "truncating"

    def damage(self, audio):
        return Audio(audio.samples[: int(0.35 * len(audio.samples))].copy(), audio.sample_rate)


class Repeating(_Planted):
    label = "repeating"

    def damage(self, audio):
        gap = np.zeros(int(0.2 * audio.sample_rate), dtype=np.float32)
        return Audio(np.concatenate([audio.samples, gap] * 3), audio.sample_rate)


class Mislabelled(_Planted):
    """Declares Piper's 22.05 kHz but labels its clips 16 kHz (they would play slowed down)."""

    label = "mislabelled"

    @property
    def sample_rate(self):
        return self.inner.sample_rate

    def damage(self, audio):
        return Audio(audio.samples, 16000)


class Crashing(_Planted):
    label = "crashing"

    def synthesize(self, text):
        if "Patel" in text:
            raise BackendError("planted crash")
        return self.inner.synthesize(text)


def _run(tmp_path, name, synth, prompts, scorer):
    store = evaluate_system(name, synth, prompts, tmp_path / name, scorer, options=TtsEvalOptions(mos=False))
    with store:
        scores = prompt_scores(list(store.rows(condition=TTS_CONDITION)), scorer.normalizer)
    return summarise(name, scores, n_resamples=200)


def test_planted_failures_are_detected_and_counted(tmp_path, piper, prompts, scorer):
    clean = _run(tmp_path, "piper", piper, prompts, scorer)
    assert clean.any_failure["count"] == 0, clean.failures
    assert clean.wer.estimate < 0.25

    silent = _run(tmp_path, "silent", Silent(piper), prompts, scorer)
    assert silent.failures["silent"]["count"] == 3 and silent.failures["silent"]["ids"] == list(IDS)
    assert silent.n_items == 3 and silent.n_ok == 3  # counted, not skipped
    assert silent.wer.estimate > 0.9  # nothing said, everything deleted

    cut = _run(tmp_path, "truncating", Truncating(piper), prompts, scorer)
    assert cut.failures["truncation"]["count"] == 3
    assert cut.failures["repetition"]["count"] == 0
    assert cut.wer.estimate > clean.wer.estimate + 0.3

    rep = _run(tmp_path, "repeating", Repeating(piper), prompts, scorer)
    assert rep.failures["repetition"]["count"] == 3
    assert rep.failures["truncation"]["count"] == 0
    # extra copies of every word are insertions (Whisper sometimes collapses the third copy: WER 1.0, not 2.0)
    assert rep.wer.estimate > 0.9

    wrong = _run(tmp_path, "mislabelled", Mislabelled(piper), prompts[:1], scorer)
    assert wrong.failures["sample_rate"]["count"] == 1 and clean.failures["sample_rate"]["count"] == 0

    crash = _run(tmp_path, "crashing", Crashing(piper), prompts, scorer)
    assert crash.failures["synthesis_error"] == {"count": 1, "share": 1 / 3, "ids": ["abbr-01"]}
    assert crash.n_synthesis_errors == 1 and crash.n_ok == 2
    # the failed prompt is scored as fully deleted, so it raises WER instead of vanishing
    assert crash.wer.estimate > clean.wer.estimate
    assert crash.wer.n_units == 3


def test_rerun_skips_finished_prompts(tmp_path, piper, prompts, scorer):
    calls = []

    class Interrupted(_Planted):
        label = "counting"

        def synthesize(self, text):
            if "novel" in text:  # the third prompt: the run is killed here
                raise KeyboardInterrupt
            return self.inner.synthesize(text)

    class Counting(_Planted):
        label = "counting"

        def damage(self, audio):
            calls.append(1)
            return audio

    with pytest.raises(KeyboardInterrupt):
        evaluate_system("c", Interrupted(piper), prompts, tmp_path / "c", scorer, options=TtsEvalOptions(mos=False))
    with RunStore.open(tmp_path / "c") as store:
        assert [r.utt_id for r in store.rows()] == list(IDS[:2])  # finished rows were committed
    store = evaluate_system("c", Counting(piper), prompts, tmp_path / "c", scorer, options=TtsEvalOptions(mos=False))
    with store:
        assert [r.utt_id for r in store.rows()] == list(IDS)
        assert store.meta("status") == "complete"
    assert len(calls) == 2  # one warm-up call and the one missing prompt
    row = next(RunStore.open(tmp_path / "c").rows())
    assert row.reference in prompts[0].expected and row.hypothesis
    assert set(row.extras["failures"]) >= {"silent", "truncation", "repetition", "clipping"}
    assert (tmp_path / "c" / row.extras["audio_file"]).is_file()


def test_piper_and_espeak_compared_with_mos_floor_and_report(tmp_path, piper, espeak, prompts, shared_data):
    scorer = TtsScorer.from_options(TtsEvalOptions())
    floor = floor_items(shared_data / "librispeech-test-other-mini", limit=2)
    result = run_tts_eval(
        {"piper": lambda: piper, "espeak": lambda: espeak}, prompts, tmp_path / "out", scorer,
        options=TtsEvalOptions(n_resamples=200), floor=floor, floor_source="librispeech mini", worst_n=2,
    )
    summary = json.loads(result.summary_path.read_text())
    sysp, syse = summary["systems"]["piper"], summary["systems"]["espeak"]
    for s in (sysp, syse, summary["floor"]):
        assert s["mos_n"] == s["n_items"]
        assert 1.0 < s["mos"]["ovrl"]["estimate"] < 5.0
        assert s["mos"]["ovrl"]["low"] <= s["mos"]["ovrl"]["estimate"] <= s["mos"]["ovrl"]["high"]
    # Piper's neural voice is more natural and more intelligible than eSpeak NG's formant voice
    assert sysp["mos"]["ovrl"]["estimate"] > syse["mos"]["ovrl"]["estimate"]
    assert sysp["wer"]["estimate"] < syse["wer"]["estimate"]
    assert summary["floor"]["n_items"] == 2 and summary["floor"]["wer"]["estimate"] < 0.3
    assert summary["judges"]["mos"]["name"] == "dnsmos"
    comp = summary["comparisons"][0]
    assert (comp["a"], comp["b"], comp["n_common"]) == ("piper", "espeak", 3)
    names = [m["metric"] for m in comp["metrics"]]
    assert names == ["wer", "failure_share", "mos_sig", "mos_bak", "mos_ovrl", "mos_p808"]
    ovrl = comp["metrics"][names.index("mos_ovrl")]
    assert ovrl["difference"]["estimate"] == pytest.approx(ovrl["b"] - ovrl["a"])
    assert {t["name"] for t in ovrl["tests"]} == {"wilcoxon", "sign"}
    page = result.html_path.read_text()
    assert page.count("<audio controls") == 4 and "data:audio/wav;base64," in page
    assert "floor" in page and "espeak" in page
