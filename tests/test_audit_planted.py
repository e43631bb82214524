"""The audit on a corpus built from real recordings in ../shared/data with planted defects: every defect
must be found, and nothing at severity low or above may touch a clean item (false positives counted).

Recordings: LibriSpeech test-other/test-clean (CC BY 4.0), CMU ARCTIC (free use, keep notice),
AMI ES2011a excerpt (CC BY 4.0).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from voxproof.audit.findings import severity_rank
from voxproof.audit.runner import AuditOptions, run_audit
from voxproof.manifest.utterance import Utterance

TRAIN_SPEAKERS = ("1688", "1998", "2033")
TEST_SPEAKERS = ("3080", "367")
LIBRI_LICENCE = "CC BY 4.0"
ARCTIC_LICENCE = "CMU ARCTIC licence (free use, keep notice)"


@dataclass
class PlantedCorpus:
    train: Path
    test: Path
    planted: dict[str, list[str]] = field(default_factory=dict)  # expected finding kind -> planted item ids
    clean: set[str] = field(default_factory=set)


def _tsv(path: Path) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)


def _item(uid: str, audio: Path, text: str, speaker: str, licence: str, source: str, **tags: str) -> dict:
    return {"id": uid, "audio": str(audio), "text": text, "speaker": speaker, "language": "en",
            "tags": {"licence": licence, "source": source, **tags}}


def build_corpus(shared: Path, root: Path) -> PlantedCorpus:
    """Train/test manifests (voxproof JSONL) with the issue's planted defects; returns what was planted."""
    root.mkdir(parents=True, exist_ok=True)
    libri = shared / "librispeech-test-other-mini"
    texts = _tsv(libri / "transcripts.tsv")
    genders = {row.split("\t")[0]: row.split("\t")[2] for row in (libri / "utt_info.tsv").read_text().splitlines()[1:]}
    train: list[dict] = []
    test: list[dict] = []
    corpus = PlantedCorpus(root / "train.jsonl", root / "test.jsonl")
    for uid in sorted(texts):
        spk = uid.split("-")[0]
        item = _item(uid, libri / "audio" / f"{uid}.flac", texts[uid], spk, LIBRI_LICENCE, "LibriSpeech",
                     gender=genders[uid], split="train" if spk in TRAIN_SPEAKERS else "test")
        (train if spk in TRAIN_SPEAKERS else test).append(item)
    arctic = shared / "cmu-arctic"
    for uid, text in sorted(_tsv(arctic / "transcripts.tsv").items()):
        spk = "aew" if "_aew_" in uid else "axb" if "_axb_" in uid else "arctic-unknown"
        train.append(_item(uid, arctic / "audio" / f"{uid}.wav", text, spk, ARCTIC_LICENCE, "CMU ARCTIC",
                           gender={"aew": "M", "axb": "F"}.get(spk, "U"), split="train"))
    corpus.clean = {d["id"] for d in train}
    planted: dict[str, list[str]] = {}

    def plant(kind: str, uid: str) -> None:
        planted.setdefault(kind, []).append(uid)
        corpus.clean.discard(uid)

    by_id = {d["id"]: d for d in train}
    # 1. a file re-encoded to MP3 and renamed
    src = by_id["1688-142285-0003"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src["audio"], "-b:a", "48k", str(root / "renamed_clip.mp3")],
                   check=True)
    train.append({**src, "id": "renamed_clip", "audio": str(root / "renamed_clip.mp3")})
    plant("duplicate.near_audio", "renamed_clip")
    # 2. the same utterance at another gain and trimmed
    x, sr = sf.read(by_id["1998-15444-0004"]["audio"], dtype="float32")
    sf.write(root / "quieter_trimmed.wav", 0.35 * x[int(0.23 * sr): len(x) - int(0.31 * sr)], sr)
    train.append({**by_id["1998-15444-0004"], "id": "quieter_trimmed", "audio": str(root / "quieter_trimmed.wav")})
    plant("duplicate.near_audio", "quieter_trimmed")
    # 3. a lossless re-encode (FLAC -> WAV) of a training item: same PCM
    x, sr = sf.read(by_id["2033-164914-0005"]["audio"], dtype="int16")
    sf.write(root / "wav_copy.wav", x, sr, subtype="PCM_16")
    train.append({**by_id["2033-164914-0005"], "id": "wav_copy", "audio": str(root / "wav_copy.wav")})
    plant("duplicate.exact_audio", "wav_copy")
    # 4. a clipped file (LibriSpeech test-clean utterance, 8x gain, hard clipped)
    clean1 = shared / "librispeech-test-clean-1"
    x, sr = sf.read(next((clean1 / "audio").iterdir()), dtype="float32")
    sf.write(root / "clipped.wav", np.clip(8 * x, -1, 1), sr)
    train.append(_item("clipped", root / "clipped.wav", next(iter(_tsv(clean1 / "transcripts.tsv").values())),
                       "1995", LIBRI_LICENCE, "LibriSpeech", gender="F", split="train"))
    plant("signal.clipping", "clipped")
    # 5. an 8 kHz recording upsampled to 16 kHz (AMI headset excerpt taken down to 8 kHz and back)
    ami = shared / "ami-excerpt"
    x, sr = sf.read(next((ami / "audio").iterdir()), dtype="float32")
    up = soxr.resample(soxr.resample(x, sr, 8000, "HQ"), 8000, 16000, "HQ")
    sf.write(root / "telephone_up.wav", up, 16000)
    train.append(_item("telephone_up", root / "telephone_up.wav", next(iter(_tsv(ami / "transcripts.tsv").values())),
                       "ami-mee", "CC BY 4.0", "AMI", gender="F", split="train"))
    plant("signal.narrow_band", "telephone_up")
    # 6. a wrong transcript: two transcripts swapped (a 15 s and a short utterance)
    long_id, short_id = "1688-142285-0000", "1998-15444-0007"
    by_id[long_id]["text"], by_id[short_id]["text"] = by_id[short_id]["text"], by_id[long_id]["text"]
    plant("transcript.rate_outlier", long_id)
    plant("transcript.rate_outlier", short_id)
    # 7. a test utterance copied into the training split (lossless copy under a new name)
    x, sr = sf.read(libri / "audio" / "3080-5032-0001.flac", dtype="int16")
    sf.write(root / "extra_0001.wav", x, sr, subtype="PCM_16")
    test_0001 = next(d for d in test if d["id"] == "3080-5032-0001")
    train.append({**test_0001, "id": "extra_0001", "audio": str(root / "extra_0001.wav"), "speaker": "guest-1",
                  "tags": {**test_0001["tags"], "split": "train"}})
    plant("contamination.exact_audio", "extra_0001")
    plant("contamination.transcript", "extra_0001")
    # 8. a speaker in both splits: a test speaker's utterance moved into training
    moved = next(d for d in test if d["id"] == "367-130732-0005")
    test.remove(moved)
    train.append({**moved, "tags": {**moved["tags"], "split": "train"}})
    plant("contamination.speaker", moved["id"])
    # 9. an item under a non-commercial licence (the dataset is declared for commercial use)
    nc = by_id["cmu_arctic_us_aew_a0002"]
    nc["tags"] = {**nc["tags"], "licence": "CC BY-NC 4.0", "source": "CMU ARCTIC (NC copy)"}
    plant("licence.non_commercial", nc["id"])
    # 10. a transcript with an e-mail address and a phone number
    pii = by_id["1998-15444-0008"]
    pii["text"] = pii["text"] + " WRITE TO JANE DOT DOE AT EXAMPLE DOT COM OR CALL FIVE FIVE FIVE ONE TWO THREE FOUR"
    plant("pii.email", pii["id"])
    plant("pii.phone", pii["id"])
    # 11. a file that cannot be decoded
    (root / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    train.append(_item("broken", root / "broken.wav", "SOME TEXT", "1688", LIBRI_LICENCE, "LibriSpeech",
                       gender="M", split="train"))
    plant("signal.decode_error", "broken")
    for path, items in ((corpus.train, train), (corpus.test, test)):
        path.write_text("".join(json.dumps(d) + "\n" for d in items))
    corpus.planted = planted
    return corpus


@pytest.fixture(scope="module")
def planted(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("planted")
    corpus = build_corpus(shared_data, root)
    result = run_audit(corpus.train, against=corpus.test, out_dir=root / "out",
                       options=AuditOptions(intended_use="commercial", workers=2))
    return corpus, result


def false_positives(corpus: PlantedCorpus, findings) -> list:
    """Findings at severity low or above whose items are all clean (nothing planted among them)."""
    out = []
    for f in findings:
        if severity_rank(f.severity) < severity_rank("low") or not f.items:
            continue
        if all(i in corpus.clean for i in f.items):
            out.append(f)
    return out


@pytest.mark.slow
def test_every_planted_defect_is_found(planted):
    corpus, result = planted
    found: dict[str, set[str]] = {}
    for f in result.findings:
        found.setdefault(f.kind, set()).update(f.items)
    missing = {kind: [i for i in ids if i not in found.get(kind, set())] for kind, ids in corpus.planted.items()}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"planted defects not found: {missing}"


@pytest.mark.slow
def test_no_false_positives_on_clean_items(planted):
    corpus, result = planted
    fps = false_positives(corpus, result.findings)
    assert fps == [], "false positives: " + "; ".join(f"{f.kind} {f.items}" for f in fps)


@pytest.mark.slow
def test_personal_data_is_masked_in_every_output(planted, tmp_path: Path, caplog):
    from voxproof.audit.fix import write_fix
    from voxproof.audit.report import render_html, write_json

    _, result = planted
    write_json(result, tmp_path / "findings.json")
    write_fix(result, tmp_path / "fixed.jsonl")
    outputs = [(tmp_path / "findings.json").read_text(), render_html(result),
               (tmp_path / "fixed.log.jsonl").read_text(), caplog.text]
    for text in outputs:
        assert "JANE DOT DOE AT EXAMPLE DOT COM" not in text
        assert "FIVE FIVE FIVE ONE TWO THREE FOUR" not in text
    pii = next(f for f in result.findings if f.kind == "pii.email")
    assert "[EMAIL]" in pii.evidence["redacted_text"] and "[PHONE]" in pii.evidence["redacted_text"]


@pytest.mark.slow
def test_fix_removes_planted_items_and_keeps_clean_ones(planted, tmp_path: Path):
    from voxproof.audit.fix import write_fix

    corpus, result = planted
    summary = write_fix(result, tmp_path / "fixed.jsonl")
    kept = {json.loads(l)["id"] for l in (tmp_path / "fixed.jsonl").read_text().splitlines()}
    for gone in ("renamed_clip", "quieter_trimmed", "wav_copy", "clipped", "extra_0001", "broken",
                 "cmu_arctic_us_aew_a0002", "1998-15444-0008"):
        assert gone not in kept
    assert corpus.clean <= kept  # every clean item survives
    assert summary.kept == len(kept) and summary.excluded == 8


@pytest.mark.slow
def test_asr_disagreement_finds_swapped_transcripts_of_similar_length(shared_data: Path, tmp_path: Path):
    """Two transcripts of similar length swapped: the rate check cannot see it, Whisper tiny.en can."""
    libri = shared_data / "librispeech-test-other-mini"
    texts = _tsv(libri / "transcripts.tsv")
    ids = ["1688-142285-0002", "1688-142285-0004", "1998-15444-0007", "2033-164914-0004"]
    items = [Utterance(i, str(libri / "audio" / f"{i}.flac"), texts[i], speaker=i.split("-")[0]) for i in ids]
    a, b = items[1], items[3]  # 4.5 s and 4.3 s
    items[1], items[3] = a.replace(text=b.text), b.replace(text=a.text)
    from voxproof.audit.transcript import check_asr

    findings, stats = check_asr(items, "whisper", max_wer=0.6)
    assert {f.items[0] for f in findings} == {ids[1], ids[3]}
    assert stats["threshold"] == 0.6 and stats["recogniser"]["model_checksum"] and stats["scored"] == 4
    assert all(f.evidence["wer"] > 0.6 and "recogniser" in f.evidence for f in findings)


@pytest.mark.slow
def test_asr_transcripts_are_cached_and_unreadable_items_reported(shared_data: Path, tmp_path: Path):
    """A rerun of the label-noise check reads its transcripts from the cache (a killed --asr audit keeps
    them); a changed file is transcribed again; a file the recogniser cannot read is counted and reported."""
    import os
    import shutil

    from voxproof.audit.transcript import check_asr

    libri = shared_data / "librispeech-test-other-mini"
    texts = _tsv(libri / "transcripts.tsv")
    ids = ["1688-142285-0002", "1998-15444-0007"]
    items = []
    for i in ids:
        shutil.copy(libri / "audio" / f"{i}.flac", tmp_path / f"{i}.flac")
        items.append(Utterance(i, str(tmp_path / f"{i}.flac"), texts[i]))
    (tmp_path / "broken.flac").write_bytes(b"not audio at all" * 64)
    items.append(Utterance("broken", str(tmp_path / "broken.flac"), "some words here"))
    cache = tmp_path / "audit-cache.sqlite"

    first, s1 = check_asr(items, "whisper", cache_path=cache)
    assert (s1["scored"], s1["from_cache"], s1["failed"]) == (2, 0, 1)
    failed = [f for f in first if f.kind == "transcript.asr_failed"]
    assert len(failed) == 1 and failed[0].items == ("broken",) and failed[0].evidence["count"] == 1
    assert "could not be transcribed" in failed[0].message

    again, s2 = check_asr(items, "whisper", cache_path=cache)
    assert (s2["scored"], s2["from_cache"], s2["failed"]) == (2, 2, 1)
    assert [f.to_dict() for f in again] == [f.to_dict() for f in first]

    st = os.stat(items[0].audio)
    os.utime(items[0].audio, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file changed
    _, s3 = check_asr(items, "whisper", cache_path=cache)
    assert (s3["scored"], s3["from_cache"]) == (2, 1)
