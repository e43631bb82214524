"""Manifest readers on real datasets (../shared/data and the bundled copy) and on manifests written in
tmp_path in every supported format, including broken ones: every bad line must be reported."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxproof.audio.io import load_audio, probe_audio
from voxproof.errors import AudioNotFound, ManifestError, UnsafeManifest, UsageError
from voxproof.manifest import (
    FORMATS,
    Utterance,
    bundled_dataset_path,
    dataset_hash,
    detect_format,
    read_manifest,
    validate_manifest,
    write_jsonl,
)

LS = "librispeech-test-other-mini"


def _transcripts(folder: Path) -> dict[str, str]:
    lines = (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def ls_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / LS / "audio").glob("*.flac"))


# ---------------------------------------------------------------------------------------- folder layout


def test_bundled_dataset_reads_with_speakers_and_genders(shared_data: Path) -> None:
    root = bundled_dataset_path()
    assert (root / "ATTRIBUTION.md").is_file() and (root / "LICENSE.TXT").is_file()
    utts = list(read_manifest(root))
    assert len(utts) == 50
    assert Counter(u.speaker for u in utts) == {"1688": 10, "1998": 10, "2033": 10, "3080": 10, "367": 10}
    assert Counter(u.tag("gender") for u in utts) == {"F": 30, "M": 20}
    assert {u.id: u.text for u in utts} == _transcripts(shared_data / LS)
    for utt in utts[:5]:
        assert Path(utt.audio).is_file() and Path(utt.audio).is_absolute()
        assert probe_audio(utt.audio).duration == pytest.approx(float(utt.tags["duration_s"]), abs=1e-3)
    # the bundled copy is the shared data, byte for byte: the hash ignores where files live
    assert dataset_hash(utts) == dataset_hash(read_manifest(shared_data / LS))


@pytest.mark.parametrize("name", ["cmu-arctic", "fsdd-digits", "ami-excerpt", "librispeech-test-clean-1"])
def test_shared_folders_read_completely(shared_data: Path, name: str) -> None:
    folder = shared_data / name
    utts = list(read_manifest(folder))
    assert detect_format(folder) == "folder"
    assert {u.id: u.text for u in utts} == _transcripts(folder)
    assert all(Path(u.audio).is_file() for u in utts)


def _folder(tmp_path: Path, ls_files: list[Path], transcripts: str, n: int = 3) -> Path:
    root = tmp_path / "set"
    (root / "audio").mkdir(parents=True)
    for path in ls_files[:n]:
        shutil.copy(path, root / "audio" / path.name)
    (root / "transcripts.tsv").write_text(transcripts, encoding="utf-8")
    return root


def test_folder_missing_audio_is_not_a_manifest_error(tmp_path: Path, ls_files: list[Path]) -> None:
    ids = [p.stem for p in ls_files[:2]]
    root = _folder(tmp_path, ls_files, f"{ids[0]}\tA B\n{ids[1]}\tC D\nghost\tE F\n", n=2)
    utts = list(read_manifest(root / "transcripts.tsv"))  # the file itself works too
    assert [u.id for u in utts] == [*ids, "ghost"]
    assert utts[0].audio.endswith(f"{ids[0]}.flac")
    assert load_audio(utts[0].audio).duration > 1
    with pytest.raises(AudioNotFound):
        load_audio(utts[2].audio)


def test_folder_reports_every_bad_line(tmp_path: Path, ls_files: list[Path]) -> None:
    ids = [p.stem for p in ls_files[:3]]
    text = f"{ids[0]}\tok\nno tab here\n{ids[1]}\tok\n\n{ids[0]}\tagain\n{ids[2]}\tok\n"
    root = _folder(tmp_path, ls_files, text)
    shutil.copy(ls_files[2], root / "audio" / f"{ids[2]}.wav.flac")  # harmless: different stem
    (root / "audio" / f"{ids[2]}.wav").write_bytes(b"RIFF")  # same stem as the FLAC: ambiguous
    with pytest.raises(ManifestError) as err:
        read_manifest(root)
    lines = [n for n, _ in err.value.problems]
    assert lines == [2, 5, 6]
    messages = " | ".join(m for _, m in err.value.problems)
    assert "ID<TAB>TEXT" in messages and "duplicate id" in messages and "several audio files" in messages
    assert validate_manifest(root) == err.value.problems
    assert "line 2" in str(err.value) and "line 5" in str(err.value)


# ----------------------------------------------------------------------------------------------- JSONL


def test_nemo_jsonl(tmp_path: Path, ls_files: list[Path]) -> None:
    (tmp_path / "wavs").mkdir()
    shutil.copy(ls_files[0], tmp_path / "wavs" / ls_files[0].name)
    lines = [
        {
            "audio_filepath": f"wavs/{ls_files[0].name}",
            "duration": 15.0,
            "text": "a b",
            "speaker": 1688,
            "accent": "us",
            "snr": 30.5,
        },
        {"audio_filepath": str(ls_files[1]), "offset": 1.0, "duration": 2.5, "text": "c", "lang": "en"},
        {"audio_filepath": str(ls_files[2]), "duration": 3.0, "text": "d", "utt_id": "custom"},
    ]
    manifest = tmp_path / "train_manifest.json"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert detect_format(manifest) == "nemo"
    a, b, c = read_manifest(manifest)
    assert a.id == ls_files[0].stem and a.audio == str(tmp_path / "wavs" / ls_files[0].name)
    assert (a.speaker, a.duration, a.tags) == ("1688", 15.0, {"accent": "us", "snr": "30.5"})
    assert (b.id, b.offset, b.duration, b.language) == (f"{ls_files[1].stem}@1.000", 1.0, 2.5, "en")
    assert c.id == "custom"
    assert load_audio(b.audio, offset=b.offset, duration=b.duration).duration == pytest.approx(2.5)


def test_nemo_reports_every_bad_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"audio_filepath": "a.wav", "duration": 1.0, "text": "x"}\n'
        '{"audio_filepath": "b.wav", "duration": 1.0, "text": "x"\n'  # bad JSON
        '{"duration": 1.0, "text": "x"}\n'  # no audio
        '{"audio_filepath": "c.wav", "duration": -2.0, "text": "x"}\n'
        "\n"
        '{"audio_filepath": "d.wav", "duration": "long", "text": "x"}\n'
        '{"audio_filepath": "sub/a.wav", "duration": 1.0, "text": "x"}\n'  # duplicate derived id "a"
        "[1, 2]\n"
        '{"audio_filepath": "e.wav", "duration": 1.0, "offset": -1, "text": "x"}\n'
    )
    problems = validate_manifest(manifest)
    assert [n for n, _ in problems] == [2, 3, 4, 6, 7, 8, 9]
    text = [m for _, m in problems]
    assert "not valid JSON" in text[0] and "audio_filepath" in text[1] and "duration -2.0" in text[2]
    assert "number of seconds" in text[3] and "duplicate id 'a' (first at line 1)" in text[4]
    assert "JSON object" in text[5] and "offset -1.0" in text[6]
    with pytest.raises(ManifestError) as err:
        read_manifest(manifest)
    assert err.value.problems == problems


def test_voxproof_jsonl_round_trip_and_relative_paths(tmp_path: Path, ls_files: list[Path]) -> None:
    utts = [
        Utterance(id="u1", audio=str(ls_files[0]), text="hello", speaker="s", tags={"gender": "F"}),
        Utterance(id="u2", audio="https://example.org/a.flac", offset=1.5, duration=2.0, language="en"),
        Utterance(id="u3", audio=str(ls_files[1]), text=None),
    ]
    path = tmp_path / "out" / "m.jsonl"
    assert write_jsonl(iter(utts), path) == 3
    assert detect_format(path) == "jsonl"
    stream = read_manifest(path)
    assert iter(stream) is stream  # lazy
    assert list(stream) == utts
    relative = tmp_path / "rel.jsonl"
    relative.write_text(json.dumps(Utterance(id="r", audio="clips/x.wav").to_dict()) + "\n")
    assert next(read_manifest(relative)).audio == str(tmp_path / "clips" / "x.wav")


def test_voxproof_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    good = Utterance(id="a", audio="/x/a.wav").to_dict()
    path.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                good,
                {"type": "run", "id": "b"},
                {"type": "utterance", "schema": 99, "id": "c", "audio": "/c"},
                {"type": "utterance", "audio": "/d"},
                {**good, "tags": [1]},
                {**good, "id": "e", "duration": 0},
                good,
            ]
        )
        + "\n"
    )
    problems = validate_manifest(path)
    assert [n for n, _ in problems] == [2, 3, 4, 5, 6, 7]
    joined = " | ".join(m for _, m in problems)
    for phrase in (
        "not an utterance",
        "newer",
        "missing key",
        "bad value",
        "duration 0.0",
        "duplicate id 'a'",
    ):
        assert phrase in joined


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_utterance = st.builds(
    Utterance,
    # NUL is refused in ids (a hostile-input rule: ids end up in paths and stores)
    id=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
               max_size=20).filter(
        lambda s: s.strip() != ""
    ),
    audio=st.one_of(
        st.builds(lambda s: "/data/" + s, st.text(alphabet="abcxyz_-0123456789", min_size=1, max_size=12)),
        st.just("https://example.org/a b.flac"),
    ),
    text=st.one_of(st.none(), _text),
    offset=st.floats(min_value=0, max_value=1e5, allow_nan=False),
    duration=st.one_of(st.none(), st.floats(min_value=1e-3, max_value=1e5, allow_nan=False)),
    speaker=st.one_of(st.none(), _text),
    language=st.one_of(st.none(), st.sampled_from(["en", "fr", "de-CH"])),
    tags=st.dictionaries(_text, _text, max_size=4),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_utterance, max_size=8, unique_by=lambda u: u.id))
def test_jsonl_round_trip_property(tmp_path: Path, utts: list[Utterance]) -> None:
    path = tmp_path / "rt.jsonl"
    write_jsonl(utts, path)
    assert list(read_manifest(path, format="jsonl")) == utts
    assert dataset_hash(read_manifest(path, format="jsonl")) == dataset_hash(reversed(utts))


def test_an_utterance_with_a_lone_surrogate_is_refused_on_writing_and_nothing_is_left(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    with pytest.raises(ManifestError, match="cannot be written as UTF-8"):
        write_jsonl([Utterance(id="ok", audio="/data/a"), Utterance(id="\ud800", audio="/data/b")], path)
    assert list(tmp_path.iterdir()) == []  # neither the manifest nor its temporary file


def test_undecodable_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    bad = "caf\xe9".encode("latin-1")  # not UTF-8
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_bytes(
        b'{"audio_filepath": "a.wav", "text": "' + bad + b'"}\n{"audio_filepath": "b.wav", "duration": -1}\n'
    )
    assert [n for n, _ in validate_manifest(jsonl)] == [1, 2]
    assert "UTF-8" in validate_manifest(jsonl)[0][1]
    folder = tmp_path / "set"
    (folder / "audio").mkdir(parents=True)
    (folder / "transcripts.tsv").write_bytes(b"a\tok\nb\t" + bad + b"\nc\tok\n")
    assert validate_manifest(folder) == [
        (2, "transcripts.tsv: not valid UTF-8 text (byte 6); save the file as UTF-8")
    ]
    csv_path = tmp_path / "m.csv"
    csv_path.write_bytes(b"id,audio,text\na,a.wav,x\nb,b.wav," + bad + b"\nc,c.wav,y\n")
    assert [n for n, _ in validate_manifest(csv_path)] == [3]


# ----------------------------------------------------------------------------------------------- Kaldi


def _kaldi(tmp_path: Path, ls_files: list[Path], wav_scp: str) -> Path:
    root = tmp_path / "data" / "test"
    root.mkdir(parents=True)
    (root / "wav.scp").write_text(wav_scp)
    return root


def test_kaldi_dir_with_segments(tmp_path: Path, ls_files: list[Path]) -> None:
    root = _kaldi(tmp_path, ls_files, f"recA {ls_files[0]}\nrecB {ls_files[1]}\n")
    (root / "segments").write_text("u1 recA 0.0 2.0\nu2 recA 2.5 4.0\nu3 recB 1.0 -1\n")
    (root / "text").write_text("u1 hello world\nu2 second one\nu3\n")
    (root / "utt2spk").write_text("u1 spk1\nu2 spk1\nu3 spk2\n")
    (root / "spk2gender").write_text("spk1 m\nspk2 f\n")
    assert detect_format(root) == "kaldi"
    u1, u2, u3 = read_manifest(root)
    assert (u1.id, u1.offset, u1.duration, u1.text, u1.speaker, u1.tags) == (
        "u1",
        0.0,
        2.0,
        "hello world",
        "spk1",
        {"gender": "m"},
    )
    assert (u2.offset, u2.duration) == (2.5, 1.5)
    assert (u3.offset, u3.duration, u3.text, u3.tags["gender"]) == (1.0, None, "", "f")
    assert load_audio(u2.audio, offset=u2.offset, duration=u2.duration).duration == pytest.approx(1.5)


def test_kaldi_without_segments_uses_recordings(tmp_path: Path, ls_files: list[Path]) -> None:
    rel = Path("wav") / ls_files[0].name
    root = _kaldi(tmp_path, ls_files, f"a {rel}\nb {ls_files[1]}\n")
    (root / "text").write_text("a x y\nb z\n")
    a, b = read_manifest(root)
    assert a.audio == str(root / rel) and (a.text, b.text) == ("x y", "z")


def test_piped_wav_scp_is_refused_and_never_run(tmp_path: Path, ls_files: list[Path]) -> None:
    marker = tmp_path / "was_run"
    root = _kaldi(
        tmp_path,
        ls_files,
        f"a {ls_files[0]}\nb touch {marker} |\nc sox {ls_files[1]} -t wav - |\nd foo.ark:1234\n",
    )
    with pytest.raises(UnsafeManifest) as err:
        read_manifest(root)
    assert [n for n, _ in err.value.problems] == [2, 3, 4]
    assert all(m.startswith("wav.scp: ") for _, m in err.value.problems)
    assert "never runs wav.scp commands" in err.value.problems[0][1]
    assert "archive" in err.value.problems[2][1]
    assert not marker.exists()
    assert isinstance(err.value, ManifestError)


def test_kaldi_bad_segments_are_all_reported(tmp_path: Path, ls_files: list[Path]) -> None:
    root = _kaldi(tmp_path, ls_files, f"recA {ls_files[0]}\n")
    (root / "segments").write_text(
        "u1 recA 0 1\nu2 recZ 0 1\nu3 recA 2 1\nu4 recA x 1\nu5 recA 0\nu1 recA 1 2\n"
    )
    problems = validate_manifest(root)
    assert [n for n, _ in problems] == [2, 3, 4, 5, 6]
    assert "recZ" in problems[0][1] and "start < end" in problems[1][1] and "duplicate id" in problems[4][1]


# ------------------------------------------------------------------------------------------------- CSV


def test_csv_and_tsv(tmp_path: Path, ls_files: list[Path]) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        "ID,Path,Transcript,speaker,duration,accent\n"
        f'x1,{ls_files[0]},"hello, world",s1,15.0,us\n'
        f'x2,{ls_files[1].name},"two\nlines",s2,,\n'
    )
    x1, x2 = read_manifest(csv_path)
    assert (x1.id, x1.text, x1.speaker, x1.duration, x1.tags) == (
        "x1",
        "hello, world",
        "s1",
        15.0,
        {"accent": "us"},
    )
    assert x2.audio == str(tmp_path / ls_files[1].name) and x2.text == "two\nlines" and x2.duration is None
    tsv = tmp_path / "validated.tsv"  # Common Voice style: path + sentence + client_id, no id column
    tsv.write_text("client_id\tpath\tsentence\tage\nabc\tclips/one.mp3\tHi there\ttwenties\n")
    (one,) = read_manifest(tsv)
    assert (one.id, one.speaker, one.text, one.tags) == ("one", "abc", "Hi there", {"age": "twenties"})


def test_csv_problems(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,audio,text,duration\na,a.wav,x,1\nb,b.wav,x\nc,,x,1\nd,d.wav,x,-1\na,e.wav,x,1\n")
    problems = validate_manifest(path)
    assert [n for n, _ in problems] == [3, 4, 5, 6]
    no_audio = tmp_path / "n.csv"
    no_audio.write_text("id,text\na,x\n")
    with pytest.raises(ManifestError, match="no audio column"):
        read_manifest(no_audio)


# ----------------------------------------------------------------------------------- detection, hashing


def test_detection_and_bad_requests(tmp_path: Path) -> None:
    assert set(FORMATS) == {"folder", "jsonl", "nemo", "kaldi", "csv", "hf", "stm"}
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ManifestError, match="cannot tell"):
        read_manifest(tmp_path / "x.txt")
    with pytest.raises(ManifestError, match="cannot tell"):
        read_manifest(tmp_path)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")
    with pytest.raises(UsageError, match="unknown manifest format"):
        read_manifest(tmp_path / "x.txt", format="yaml")
    with pytest.raises(UsageError, match="needs a folder"):
        read_manifest(tmp_path / "x.txt", format="kaldi")


def test_dataset_hash_follows_content_not_location(tmp_path: Path, ls_files: list[Path]) -> None:
    utts = [Utterance(id=p.stem, audio=str(p), text="t") for p in ls_files[:3]]
    base = dataset_hash(utts)
    assert len(base) == 64 and base == dataset_hash(list(reversed(utts)))
    copies = []
    for utt in utts:
        target = tmp_path / "copy" / Path(utt.audio).name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(utt.audio, target)
        copies.append(utt.replace(audio=str(target)))
    assert dataset_hash(copies) == base
    assert dataset_hash([utts[0].replace(text="other"), *utts[1:]]) != base
    assert dataset_hash([utts[0].replace(duration=1.0), *utts[1:]]) != base
    data = bytearray(Path(copies[0].audio).read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the audio
    Path(copies[0].audio).write_bytes(bytes(data))
    assert dataset_hash(copies) != base
    missing = [utts[0].replace(audio=str(tmp_path / "gone.flac"))]
    assert dataset_hash(missing) == dataset_hash([utts[0].replace(audio=str(tmp_path / "elsewhere.flac"))])
