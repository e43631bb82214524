"""``voxproof audit`` through the CLI: exit codes 0/1/2/3, outputs (JSON, self-contained HTML, datasheet),
``--fix`` (cleaned manifest + log, sources untouched) and resuming from the per-item cache.

Audio: LibriSpeech test-other (CC BY 4.0) from ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.audit.runner import AuditOptions, run_audit
from voxproof.cli.main import main
from voxproof.manifest.utterance import Utterance

LIBRI = "librispeech-test-other-mini"


def _manifest(shared: Path, tmp: Path, n: int = 6, extra: list[dict] | None = None) -> Path:
    texts = dict(l.split("\t", 1) for l in (shared / LIBRI / "transcripts.tsv").read_text().splitlines())
    rows = []
    for uid in sorted(texts)[:n]:
        rows.append({"id": uid, "audio": str(shared / LIBRI / "audio" / f"{uid}.flac"), "text": texts[uid],
                     "speaker": uid.split("-")[0], "tags": {"licence": "CC BY 4.0", "source": "LibriSpeech"}})
    rows += extra or []
    path = tmp / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_clean_data_exits_0_and_writes_outputs(shared_data: Path, tmp_path: Path, capsys):
    data = _manifest(shared_data, tmp_path)
    out = tmp_path / "out"
    code = main(["audit", str(data), "-o", str(out), "--vad", "energy", "--workers", "1"])
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "findings.json").read_text())
    assert report["stats"]["items"] == 6 and report["failed"] is False
    page = (out / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    sheet = (out / "datasheet.md").read_text()
    for section in ("## Composition", "## Collection", "## Quality", "## Known issues", "## Licences", "### Attribution"):
        assert section in sheet
    assert "LibriSpeech: CC-BY-4.0 (6 items)" in sheet


def test_findings_at_threshold_exit_1_and_fix_writes_clean_manifest(shared_data: Path, tmp_path: Path, capsys):
    x, sr = sf.read(sorted((shared_data / LIBRI / "audio").glob("*.flac"))[20], dtype="float32")
    sf.write(tmp_path / "clipped.wav", np.clip(10 * x, -1, 1), sr)
    extra = [{"id": "clipped", "audio": str(tmp_path / "clipped.wav"), "text": "SOME WORDS",
              "tags": {"licence": "CC BY 4.0"}},
             {"id": "copy", "audio": str(shared_data / LIBRI / "audio" / "1688-142285-0000.flac"),
              "text": "A COPY OF THE FIRST ONE", "tags": {"licence": "CC BY 4.0"}}]
    data = _manifest(shared_data, tmp_path, extra=extra)
    before = data.read_bytes()
    fix = tmp_path / "fixed.jsonl"
    code = main(["audit", str(data), "-o", str(tmp_path / "out"), "--vad", "energy", "--workers", "1",
                 "--fix", str(fix)])
    assert code == 1
    assert data.read_bytes() == before  # source untouched
    kept = [json.loads(l)["id"] for l in fix.read_text().splitlines()]
    log = [json.loads(l) for l in (tmp_path / "fixed.log.jsonl").read_text().splitlines()]
    excluded = {e["id"]: e for e in log if e["action"] == "excluded"}
    assert "clipped" in excluded and excluded["clipped"]["reasons"][0]["kind"] == "signal.clipping"
    assert "copy" in excluded and "1688-142285-0000" in kept  # the first member of the cluster is kept
    assert len(kept) == 6
    # the same data passes when the gate is set above the worst finding
    assert main(["audit", str(data), "-o", str(tmp_path / "out"), "--vad", "energy", "--workers", "1",
                 "--fail-on", "critical"]) == 0


def test_usage_errors_exit_2(shared_data: Path, tmp_path: Path):
    data = _manifest(shared_data, tmp_path, n=2)
    assert main(["audit", str(data), "-o", str(tmp_path / "o"), "--fail-on", "urgent"]) == 2
    assert main(["audit", str(data), "-o", str(tmp_path / "o"), "--intended-use", "selling"]) == 2
    assert main(["audit"]) == 2


def test_nothing_readable_exits_3(tmp_path: Path, capsys):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"id": "a", "audio": str(tmp_path / "bad.wav"), "text": "X"}) + "\n"
                    + json.dumps({"id": "b", "audio": str(tmp_path / "missing.wav"), "text": "Y"}) + "\n")
    assert main(["audit", str(data), "-o", str(tmp_path / "o"), "--vad", "energy", "--workers", "1"]) == 3
    err = capsys.readouterr().err
    assert "DataError" in err and "could be decoded" in err


def test_resume_from_cache(shared_data: Path, tmp_path: Path):
    data = _manifest(shared_data, tmp_path, n=8)
    from voxproof.manifest import read_manifest

    items = list(read_manifest(data))
    opts = AuditOptions(vad="energy", workers=1)
    out = tmp_path / "out"
    first = run_audit(data, items=items[:5], out_dir=out, options=opts)  # an audit stopped after 5 items
    assert first.stats["analysis"]["analysed"] == 5
    second = run_audit(data, items=items, out_dir=out, options=opts)
    assert second.stats["analysis"]["cached"] == 5 and second.stats["analysis"]["analysed"] == 3
    third = run_audit(data, items=items, out_dir=out, options=opts)
    assert third.stats["analysis"]["cached"] == 8
    # cached analyses give the same findings as fresh ones
    assert [f.to_dict() for f in third.findings] == [f.to_dict() for f in second.findings]
    # the cache is keyed by file, not by id: a renamed item reuses its file's entry
    renamed = [Utterance.replace(items[0], id="renamed")] + items[1:]
    again = run_audit(data, items=renamed, out_dir=out, options=opts)
    assert again.stats["analysis"]["cached"] == 8 and again.analysis("renamed") is not None
    # a copy with another modification time is analysed again
    copy = tmp_path / "copy.flac"
    copy.write_bytes(Path(items[1].audio).read_bytes())
    moved = items[:1] + [Utterance.replace(items[1], audio=str(copy))] + items[2:]
    fresh = run_audit(data, items=moved, out_dir=out, options=opts)
    assert fresh.stats["analysis"]["cached"] == 7 and fresh.stats["analysis"]["analysed"] == 1


def test_split_leakage_inside_one_manifest(shared_data: Path, tmp_path: Path):
    """No --against: the splits named by the 'split' tag are checked against each other."""
    texts = dict(l.split("\t", 1) for l in (shared_data / LIBRI / "transcripts.tsv").read_text().splitlines())
    ids = ["1688-142285-0001", "1688-142285-0002", "3080-5032-0001", "3080-5032-0002"]
    rows = [{"id": i, "audio": str(shared_data / LIBRI / "audio" / f"{i}.flac"), "text": texts[i],
             "speaker": i.split("-")[0], "tags": {"split": "test" if i.startswith("3080") else "train"}} for i in ids]
    rows.append({**rows[2], "id": "leaked", "speaker": "someone-else", "tags": {"split": "train"}})
    data = tmp_path / "splits.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_audit(data, out_dir=tmp_path / "o", options=AuditOptions(vad="energy", workers=1))
    leak = {f.kind: f for f in result.findings if f.kind.startswith("contamination.")}
    assert leak["contamination.exact_audio"].items == ("leaked",)
    assert leak["contamination.exact_audio"].evidence["splits"] == ["train", "test"]
    assert leak["contamination.transcript"].items == ("leaked",)
    assert "contamination.speaker" not in leak


@pytest.mark.slow
def test_killed_audit_resumes_where_it_stopped(shared_data: Path, tmp_path: Path):
    """SIGKILL an audit after its first committed batch; the rerun takes those items from the cache."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    data = _manifest(shared_data, tmp_path, n=40)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "voxproof", "audit", str(data), "-o", str(out), "--workers", "1", "--vad", "silero"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            db = out / "audit-cache.sqlite"
            if db.exists():
                try:
                    done = sqlite3.connect(db).execute("SELECT COUNT(*) FROM items").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
                if done > 0:
                    break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < done < 40, f"the audit was not caught mid-way ({done} items cached)"
    from voxproof.manifest import read_manifest

    result = run_audit(data, items=list(read_manifest(data)), out_dir=out,
                       options=AuditOptions(workers=1, vad="silero"))
    an = result.stats["analysis"]
    assert an["cached"] >= done and an["cached"] + an["analysed"] == 40 and an["analysed"] > 0


def test_signal_mismatches_dc_offset_and_silence(shared_data: Path, tmp_path: Path):
    files = sorted((shared_data / LIBRI / "audio").glob("*.flac"))
    x, sr = sf.read(files[30], dtype="float32")
    import soxr

    st = soxr.resample(x, sr, 44100)
    sf.write(tmp_path / "stereo44.wav", np.stack([st, st], axis=1), 44100)
    sf.write(tmp_path / "dc.wav", np.clip(sf.read(files[31], dtype="float32")[0] + 0.1, -1, 1), sr)
    sf.write(tmp_path / "silent.wav", np.random.default_rng(0).normal(0, 1e-4, 3 * sr).astype(np.float32), sr)
    extra = [{"id": k, "audio": str(tmp_path / f"{k}.wav"), "text": "A FEW WORDS HERE"} for k in ("stereo44", "dc", "silent")]
    data = _manifest(shared_data, tmp_path, n=8, extra=extra)
    result = run_audit(data, out_dir=tmp_path / "o", options=AuditOptions(vad="silero", workers=1))
    by_kind: dict[str, set[str]] = {}
    for f in result.findings:
        by_kind.setdefault(f.kind, set()).update(f.items)
    assert by_kind["signal.sample_rate_mismatch"] == {"stereo44"}
    assert by_kind["signal.channel_mismatch"] == {"stereo44"}
    assert by_kind["signal.dc_offset"] == {"dc"}
    assert "silent" in by_kind["signal.no_speech"]
    assert result.analysis("stereo44").channels == 2 and result.analysis("stereo44").sample_rate == 44100


@pytest.mark.slow
def test_worker_pool_after_silero_ran_in_the_parent(shared_data: Path, tmp_path: Path):
    """Regression: forked workers hung when the parent had already run Silero VAD; the pool now comes
    from a fork server. Runs in a subprocess so a hang fails the test instead of blocking the suite."""
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(
        "import sys\n"
        "from voxproof.manifest.utterance import Utterance\n"
        "from voxproof.audit.signal import analyse_item\n"
        "from voxproof.audit.analyse import analyse_all\n"
        "if __name__ == '__main__':\n"
        f"    files = {[str(p) for p in sorted((shared_data / LIBRI / 'audio').glob('*.flac'))[:3]]!r}\n"
        "    utts = [Utterance(str(i), f) for i, f in enumerate(files)]\n"
        "    analyse_item(utts[0], vad='silero')\n"
        "    it, stats = analyse_all(utts, vad='silero', workers=2)\n"
        "    out = list(it)\n"
        "    print(len(out), sum(a.ok for a in out))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["3", "3"]
