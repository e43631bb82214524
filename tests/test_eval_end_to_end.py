"""`voxproof eval` end to end on real models and the bundled real speech."""

from __future__ import annotations

import json
import subprocess

import jiwer
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from voxproof.cli.main import main
from voxproof.manifest import bundled_dataset_path, read_manifest
from voxproof.run.store import RunStore


@pytest.fixture(scope="module")
def whisper_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "whisper"
    assert main(["--quiet", "eval", "-o", str(out)]) == 0
    return out


@pytest.mark.slow
def test_default_eval_matches_jiwer_counts_and_the_published_range(whisper_run, capsys):
    summary = json.loads((whisper_run / "summary.json").read_text())
    clean = summary["scores"]["conditions"][0]
    assert clean["condition"] == "clean"
    assert (clean["coverage"]["total"], clean["coverage"]["ok"], clean["coverage"]["by_error_type"]) == (50, 50, {})
    norm = EnglishTextNormalizer()
    with RunStore.open(whisper_run) as store:
        rows = list(store.rows())
    refs = [norm(r.reference).strip() for r in rows]
    hyps = [norm(r.hypothesis).strip() for r in rows]
    out = jiwer.process_words(refs, hyps)
    ours = clean["word_counts"]
    assert (ours["hits"], ours["substitutions"], ours["deletions"], ours["insertions"]) == (
        out.hits, out.substitutions, out.deletions, out.insertions)
    assert clean["ref_words"] == 1060
    # Published Whisper tiny.en test-other WER is 14.6 %; a 50-utterance subset scatters by a few points.
    assert 0.08 <= clean["wer"]["estimate"] <= 0.20
    assert clean["wer"]["low"] < clean["wer"]["estimate"] < clean["wer"]["high"]
    assert summary["provenance"]["backend"]["model_checksum"]
    assert summary["provenance"]["normalizer"] == {"name": "whisper-en", "version": "1"}
    assert summary["provenance"]["dataset_hash"]
    assert summary["latency"]["clean"]["rtfx"] > 0


@pytest.mark.slow
def test_html_report_is_self_contained(whisper_run):
    page = (whisper_run / "report.html").read_text()
    assert "<table" in page and "1688-142285-0000" in page
    for external in ("src='http", 'src="http', "href='http", 'href="http', "<link "):
        assert external not in page


@pytest.mark.slow
def test_rescoring_with_another_normaliser_reuses_the_run(whisper_run, capsys):
    assert main(["score", str(whisper_run), "--normalizer", "none", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    raw = scores["conditions"][0]
    assert scores["normalizer"]["name"] == "none"
    # LibriSpeech references are upper case without punctuation, Whisper writes mixed case: raw WER is high.
    assert raw["wer"]["estimate"] > 0.5


@pytest.mark.slow
def test_bad_items_become_error_rows_with_a_real_model(tmp_path):
    good = list(read_manifest(bundled_dataset_path()))[:2]
    (tmp_path / "empty.flac").write_bytes(b"")
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 4)
    silent = tmp_path / "silent-2h.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "7200",
                    "-c:a", "flac", str(silent)], check=True)
    items = [{"audio_filepath": u.audio, "text": u.text, "id": u.id} for u in good] + [
        {"id": "missing", "audio_filepath": str(tmp_path / "missing.wav"), "text": "hello"},
        {"id": "empty", "audio_filepath": str(tmp_path / "empty.flac"), "text": "hello"},
        {"id": "corrupt", "audio_filepath": str(tmp_path / "corrupt.flac"), "text": "hello"},
        {"id": "noref", "audio_filepath": good[0].audio, "text": ""},
        {"id": "silent", "audio_filepath": str(silent), "text": "nothing is said"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main(["--quiet", "eval", "-d", str(manifest), "-o", str(tmp_path / "run"), "--json-only"]) == 0
    with RunStore.open(tmp_path / "run") as store:
        rows = {r.utt_id: r for r in store.rows()}
    assert {k: rows[k].error_type for k in ("missing", "empty", "corrupt", "noref", "silent")} == {
        "missing": "AudioNotFound", "empty": "EmptyAudio", "corrupt": "CorruptAudio",
        "noref": "EmptyReference", "silent": "AudioTooLarge"}
    assert all(rows[u.id].ok for u in good)
    cov = json.loads((tmp_path / "run" / "summary.json").read_text())["scores"]["conditions"][0]["coverage"]
    assert cov["ok"] == 2 and cov["total"] == 7


@pytest.mark.slow
def test_report_takes_measured_throughput_points(whisper_run, tmp_path):
    points = tmp_path / "tp.json"
    points.write_text(json.dumps([{"label": "sequential", "rtfx": 11.3}, {"label": "2 workers", "rtfx": 11.0}]))
    assert main(["report", str(whisper_run), "--throughput", str(points)]) == 0
    summary = json.loads((whisper_run / "summary.json").read_text())
    assert [p["label"] for p in summary["deployment"]["throughput"]] == ["sequential", "2 workers"]
    assert "Throughput (RTFx, audio seconds per processing second) of each measured configuration" in (
        whisper_run / "report.html").read_text()
    points.write_text('{"not": "a list"}')
    assert main(["report", str(whisper_run), "--throughput", str(points)]) == 2
