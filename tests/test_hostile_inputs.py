"""Issue 21 items 1, 2, 10-13: decompression bombs, devices and FIFOs, hostile manifests, transcript
length, a runaway CSV quote, and --limit on a huge manifest. Each case ends in a typed error (a row or a
one-line message with exit 2/3), never a hang, a traceback or exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.audio.io import DEFAULT_LIMITS, AudioLimits, load_audio
from voxproof.errors import AudioSourceRefused, AudioTooLarge, ManifestError
from voxproof.manifest import dataset_hash, read_manifest
from voxproof.manifest.bundled import bundled_dataset_path
from voxproof.manifest.hashing import audio_digest
from voxproof.manifest.utterance import Utterance

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))


def _voxproof(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxproof", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _clip() -> Path:
    return min((bundled_dataset_path() / "audio").rglob("*.flac"))


# ------------------------------------------------------------------------------------ item 1: bombs


def test_one_shared_safe_default() -> None:
    from voxproof.audit.runner import AuditOptions
    from voxproof.run.runner import RunOptions

    assert AudioLimits.default() is DEFAULT_LIMITS and DEFAULT_LIMITS.max_seconds == 600
    assert DEFAULT_LIMITS.url_hosts == () and AudioLimits() == DEFAULT_LIMITS
    assert RunOptions().audio_limits() == DEFAULT_LIMITS
    assert AuditOptions().audio_limits() == DEFAULT_LIMITS


@needs_ffmpeg
def test_flac_of_three_hours_of_silence_fails_fast_in_audit(tmp_path: Path) -> None:
    """A 2 MB FLAC of 3 h silence: audit used to decode it with the 3 h library default (7.8 GB RSS
    before it died); now every entry point refuses it at the header, in a second, with little memory."""
    (tmp_path / "set" / "audio").mkdir(parents=True)
    bomb = tmp_path / "set" / "audio" / "bomb.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
                    "-t", "10800", "-c:a", "flac", str(bomb)], check=True)
    (tmp_path / "set" / "transcripts.tsv").write_text("bomb\thello\n")
    assert bomb.stat().st_size < 3_000_000
    with pytest.raises(AudioTooLarge, match="10,800.0 s of audio, over the 600-s limit"):
        load_audio(bomb)
    code = textwrap.dedent(f"""
        import sys
        from voxproof.audit.runner import AuditOptions, run_audit
        from voxproof.errors import DataError
        try:
            run_audit({str(tmp_path / 'set')!r}, options=AuditOptions(workers=1, vad="energy", cache=False))
        except DataError as exc:
            print(str(exc))
        from voxproof.run.resources import peak_rss_mb
        print(int(peak_rss_mb() * 1024))  # VmHWM: ru_maxrss would keep the forking pytest's peak across exec
    """)
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120, check=False)
    assert "AudioTooLarge" in out.stdout and "over the 600-s limit" in out.stdout, out.stderr
    peak_kb = int(out.stdout.strip().splitlines()[-1])
    assert peak_kb < 400_000  # 3 h of 16 kHz float32 alone would be 691 MB (a hang stops at the timeout)


def test_streamed_bomb_stops_at_the_limit_with_bounded_memory(tmp_path: Path) -> None:
    """No length in the header (a WAV with an 'unknown' data size): decoding stops at 600 s."""
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", 8000, 1, "PCM_16") as f:
        block = np.zeros(8000 * 60, dtype=np.float32)
        for _ in range(11):  # 11 minutes
            f.write(block)
    data = bytearray(path.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"  # the streaming recorders' "unknown length"
    data[4:8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioTooLarge, match="600"):
        load_audio(path)


# ---------------------------------------------------------------------------- item 2: devices, FIFOs


@pytest.fixture()
def specials(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    links = {"zero": Path("/dev/zero"), "urandom": Path("/dev/urandom"), "fifo": fifo}
    for name, target in list(links.items()):
        link = tmp_path / f"link-{name}.flac"
        link.symlink_to(target)
        links[f"link-{name}"] = link
    return links


def test_devices_fifos_and_symlinks_to_them_are_refused(specials: dict[str, Path]) -> None:
    for name, path in specials.items():
        with pytest.raises(AudioSourceRefused, match="not a regular file"):
            load_audio(path)
        assert audio_digest(str(path)) == "not-regular", name  # the dataset hash never opens them
    with pytest.raises(AudioSourceRefused, match="NUL byte"):
        load_audio("/tmp/a\0b.wav")
    assert audio_digest("/tmp/a\0b.wav") == "missing"


def test_dataset_hash_of_specials_returns_at_once_in_a_subprocess(specials: dict[str, Path], tmp_path: Path) -> None:
    """The hang of issue 21 item 2 was in the dataset hash (eval and gate both hash first)."""
    rows = "".join(f"{name},{path},a b\n" for name, path in specials.items())
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,audio,text\n" + rows)
    code = ("from voxproof.run.inputs import resolve_inputs; import sys; "
            f"print(resolve_inputs({str(manifest)!r}).dataset['hash'])")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and len(out.stdout.strip()) == 64, out.stderr


def test_hash_reads_no_more_than_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 5000)
    assert audio_digest(str(big), max_bytes=1000) == "too-large:5000"
    assert audio_digest(str(big)).startswith("sha256:")


def test_eval_turns_specials_into_error_rows_without_hanging(specials: dict[str, Path], tmp_path: Path) -> None:
    rows = "".join(f"{name},{path},a b\n" for name, path in specials.items())
    (tmp_path / "m.csv").write_text("id,audio,text\n" + rows + f"ok,{_clip()},hello\n"
                                    + f"long,{_clip()},{'word ' * 100}\n")
    out = _voxproof("eval", "-d", "m.csv", "-o", "run", "--json-only", "--max-text-chars", "400", cwd=tmp_path,
                    timeout=300)
    assert out.returncode == 0, out.stderr
    from voxproof.run.store import RunStore

    with RunStore.open(tmp_path / "run") as store:
        by_id = {r.utt_id: r for r in store.rows()}
    assert {by_id[n].error_type for n in specials} == {"AudioSourceRefused"}
    assert by_id["ok"].status == "ok"
    assert by_id["long"].error_type == "TranscriptTooLong"  # item 11: the reference cap, as an error row


# ------------------------------------------------------------------------------ item 10: manifests


def _assert_typed(out: subprocess.CompletedProcess, error: str) -> None:
    assert out.returncode in (2, 3), (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    assert error in out.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("huge_cell.csv", "id,audio,text\na,a.wav," + "x" * 140_000 + "\n", "field larger than field limit"),
        ("nested.jsonl", '{"audio_filepath": "a.wav", "x": ' + "[" * 5000 + "]" * 5000 + "}\n", "nested too deeply"),
        ("surrogate.jsonl", '{"audio_filepath": "a.wav", "text": "\\ud800"}\n', "lone surrogate"),
        ("offset.jsonl", '{"audio_filepath": "a.wav", "offset": ' + "9" * 400 + "}\n", "400-digit number"),
        ("digits.jsonl", '{"audio_filepath": "a.wav", "offset": ' + "9" * 5000 + "}\n", "not usable JSON"),
        ("nul.jsonl", '{"audio_filepath": "a\\u0000.wav", "text": "x"}\n', "NUL byte"),
        ("vox.jsonl", '{"id": "a", "audio": "a.wav", "offset": ' + "9" * 400 + "}\n", "bad value"),
    ],
    ids=["huge-cell", "nested", "surrogate", "400-digits", "5000-digits", "nul-path", "voxproof-400-digits"],
)
def test_hostile_manifests_are_one_line_errors(tmp_path: Path, name: str, content: str, expected: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ManifestError, match=expected):
        list(read_manifest(tmp_path / name))
    out = _voxproof("audit", name, "-o", "audit", "--workers", "1", "--vad", "energy", cwd=tmp_path)
    _assert_typed(out, "ManifestError")


# ------------------------------------------------------------------------- item 12: runaway quote


def test_stray_quote_that_merges_rows_is_reported_with_its_line(tmp_path: Path) -> None:
    rows = [f"u{i},u{i}.wav,utterance number {i}" for i in range(2000)]
    rows[2] = 'u2,u2.wav,"a stray quote'
    (tmp_path / "m.csv").write_text("id,audio,text\n" + "\n".join(rows) + "\n")
    with pytest.raises(ManifestError) as info:
        list(read_manifest(tmp_path / "m.csv"))
    (line, message), = info.value.problems
    assert line == 4 and "stray '\"'" in message and "look like rows" in message
    # a legitimate quoted cell with a line break still reads
    (tmp_path / "ok.csv").write_text('id,audio,text\na,a.wav,"two\nlines"\nb,b.wav,plain\n')
    assert [u.text for u in read_manifest(tmp_path / "ok.csv")] == ["two\nlines", "plain"]


# ------------------------------------------------------------------------------- item 13: --limit


def test_limit_reads_validates_and_hashes_only_the_first_n(tmp_path: Path) -> None:
    from voxproof.run.inputs import resolve_inputs

    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        line = '{"audio_filepath": "a%d.wav", "text": "hello world", "duration": 1.0}\n'
        out.writelines(line % i for i in range(1_000_000))
        out.write("not JSON: only a reader that went past the first 3 lines would refuse this\n")
    inputs = resolve_inputs(path, limit=3)
    assert [u.id for u in inputs.utterances] == ["a0", "a1", "a2"]
    assert inputs.dataset["limit"] == 3 and "first 3 utterance(s)" in inputs.dataset["hashed"]
    assert inputs.dataset["hash"] == dataset_hash(inputs.utterances)
    assert "limit" not in resolve_inputs(_small(tmp_path)).dataset


def _small(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "text": "x"}\n')
    return path


def test_limit_stops_before_a_bad_line_it_does_not_evaluate(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio_filepath": "a.wav"}\n{"audio_filepath": "b.wav"}\nnot json\n')
    assert len(list(read_manifest(path, limit=2))) == 2
    with pytest.raises(ManifestError, match="line 3"):
        list(read_manifest(path, limit=3))


def test_utterance_checks_cover_every_format() -> None:
    from voxproof.manifest.entries import check_utterance

    assert check_utterance(Utterance(id="x" * 2000, audio="/a.wav"))[0].startswith("utterance id is 2,000")
    assert "NUL" in check_utterance(Utterance(id="a\0b", audio="/a.wav"))[0]
    assert "surrogate" in check_utterance(Utterance(id="a", audio="/a.wav", tags={"k": "\udcff"}))[0]
