"""Audit stages one by one, on real recordings from ../shared/data (LibriSpeech test-other, CC BY 4.0;
Free Spoken Digit Dataset, CC BY-SA 4.0) and small hand-written texts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from voxproof.audit.contamination import Side, shared_transcripts
from voxproof.audit.coverage import compute_coverage, coverage_findings
from voxproof.audit.findings import Finding, severity_rank
from voxproof.audit.fingerprint import Fingerprint, compute_fingerprint, find_near_duplicates
from voxproof.audit.licences import check_licences, parse_licence
from voxproof.audit.pii import find_pii, luhn_ok, redact
from voxproof.audit.signal import clipping_ratio, effective_bandwidth, pcm_hash
from voxproof.audit.transcript import check_text, outside_chars
from voxproof.errors import UsageError
from voxproof.manifest.utterance import Utterance

LIBRI = "librispeech-test-other-mini"


def _libri(shared: Path, n: int) -> list[tuple[np.ndarray, int]]:
    files = sorted((shared / LIBRI / "audio").glob("*.flac"))[:n]
    return [sf.read(f, dtype="float32") for f in files]


# ------------------------------------------------------------------ fingerprints and the index


def test_fingerprint_survives_mp3_gain_resampling_and_trim(shared_data: Path, tmp_path: Path):
    src = sorted((shared_data / LIBRI / "audio").glob("*.flac"))[3]
    x, sr = sf.read(src, dtype="float32")
    mp3 = tmp_path / "a.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-b:a", "32k", str(mp3)], check=True)
    wav = tmp_path / "a.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mp3), str(wav)], check=True)
    y, ysr = sf.read(wav, dtype="float32")
    others = _libri(shared_data, 12)
    copies = [
        (y, ysr),  # MP3 at 32 kbit/s
        (0.2 * x, sr),  # -14 dB
        (soxr.resample(x, sr, 22050), 22050),  # resampled
        (x[int(0.3 * sr): len(x) - int(0.2 * sr)], sr),  # trimmed 0.3 s + 0.2 s, not on the 16 ms grid
    ]
    prints = [compute_fingerprint(x, sr)] + [compute_fingerprint(a, r) for a, r in copies]
    prints += [compute_fingerprint(a, r) for i, (a, r) in enumerate(others) if i != 3]
    matches, stats = find_near_duplicates(prints)
    from voxproof.audit.duplicates import UnionFind

    uf = UnionFind()
    for m in matches:
        uf.union(m.a, m.b)
        assert m.ber <= 0.3
    # the original and its four copies form one cluster; no other utterance joins it or matches anything
    assert uf.clusters() == [[0, 1, 2, 3, 4]]
    assert stats.indexed_frames > 0 and stats.matches == len(matches)


def test_fingerprint_bytes_round_trip(shared_data: Path):
    (x, sr), = _libri(shared_data, 1)
    fp = compute_fingerprint(x, sr)
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(back.codes, fp.codes) and np.array_equal(back.loud, fp.loud)


def test_index_boundary_reports_only_cross_pairs(shared_data: Path):
    clips = _libri(shared_data, 3)
    prints = [compute_fingerprint(a, r) for a, r in clips]
    # item 3 = copy of 0 (same side), item 4 = copy of 1 (other side)
    prints = [prints[0], prints[1], prints[0], prints[1]]
    matches, _ = find_near_duplicates(prints, boundary=2)
    assert {(m.a, m.b) for m in matches} == {(0, 2), (1, 3)}


def test_pcm_hash_equal_for_lossless_copy(shared_data: Path, tmp_path: Path):
    src = min((shared_data / LIBRI / "audio").glob("*.flac"))
    x, sr = sf.read(src, dtype="int16")
    sf.write(tmp_path / "c.wav", x, sr, subtype="PCM_16")
    a, _ = sf.read(src, dtype="float32")
    b, _ = sf.read(tmp_path / "c.wav", dtype="float32")
    assert pcm_hash(a, sr) == pcm_hash(b, sr)
    assert pcm_hash(a, sr) != pcm_hash(a * 0.5, sr)


# ------------------------------------------------------------------ signal measures


def test_clipping_and_bandwidth_measures(shared_data: Path):
    (x, sr), = _libri(shared_data, 1)
    assert clipping_ratio(x) == 0.0
    assert clipping_ratio(np.clip(6 * x, -1, 1)) > 0.01
    assert effective_bandwidth(x, sr) > 7000
    digit = min((shared_data / "fsdd-digits" / "audio").glob("*.wav"))
    d, dsr = sf.read(digit, dtype="float32")
    up = soxr.resample(d, dsr, 16000, "HQ")
    assert dsr == 8000 and effective_bandwidth(up, 16000) < 4100


# ------------------------------------------------------------------ transcripts, PII, licences


def test_text_checks():
    utts = [Utterance("a", "x.wav", "  "), Utterance("b", "x.wav", "HELLO\u200bWORLD"),
            Utterance("c", "x.wav", "café au lait", language="fr"), Utterance("d", "x.wav", "café", language="en")]
    findings = check_text(utts)
    kinds = {f.kind: f.items for f in findings}
    assert kinds["transcript.empty"] == ("a",)
    flagged = {i for f in findings if f.kind == "transcript.charset" for i in f.items}
    assert flagged == {"b", "d"}
    assert outside_chars("naïve", "fr") == []


@pytest.mark.parametrize(
    "text, kinds",
    [
        ("Write to jane.doe@example.com today", {"email"}),
        ("MY EMAIL IS JOHN DOT SMITH AT GMAIL DOT COM", {"email"}),
        ("call +44 20 7946 0958 tomorrow", {"phone"}),
        ("CALL FIVE FIVE FIVE ONE TWO THREE FOUR", {"phone"}),
        ("pay with 4111 1111 1111 1111", {"card"}),
        ("I live at 221 Baker Street", {"address"}),
        ("WE WALKED TWO MILES DOWN THE ROAD", set()),
        ("IN EIGHTEEN FIFTY ONE TWO THREE", set()),
        ("Ask Margaret about it", {"name"}),
    ],
)
def test_pii_detection(text: str, kinds: set[str]):
    hits = find_pii(text)
    assert {h.kind for h in hits} == kinds
    red = redact(text, hits)
    for h in hits:
        value = text[h.start: h.end]
        assert value not in red and value not in h.masked


def test_luhn():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert find_pii("pay with 4111 1111 1111 1112") == []  # 16 digits failing Luhn: neither card nor phone


def test_licences():
    assert parse_licence("CC BY-NC-SA 4.0").non_commercial and parse_licence("cc-by-nc-sa-4.0").share_alike
    assert parse_licence("CC0").family == "cc0"
    assert not parse_licence("CC BY 4.0").non_commercial
    utts = [Utterance("a", "x", tags={"licence": "CC BY 4.0", "source": "S1"}),
            Utterance("b", "x", tags={"license": "CC BY-NC 4.0", "source": "S2"}),
            Utterance("c", "x", tags={"licence": "CC BY-SA 4.0", "source": "S3"}),
            Utterance("d", "x")]
    findings, attribution = check_licences(utts, "commercial")
    by_kind = {f.kind: f for f in findings}
    assert by_kind["licence.non_commercial"].items == ("b",) and by_kind["licence.non_commercial"].severity == "high"
    assert by_kind["licence.missing"].items == ("d",)
    assert by_kind["licence.share_alike_mix"].items == ("c",)
    assert {(e["source"], e["licence"]) for e in attribution} == {("S1", "CC-BY-4.0"), ("S2", "CC-BY-NC-4.0"),
                                                                  ("S3", "CC-BY-SA-4.0")}
    research, _ = check_licences(utts, "research")
    assert next(f for f in research if f.kind == "licence.non_commercial").severity == "low"
    with pytest.raises(UsageError):
        check_licences(utts, "selling")


def test_coverage_entropy_missing_and_dominant_speaker():
    utts = [Utterance(f"u{i}", "x", speaker="s1" if i < 8 else f"s{i}", tags={"gender": "F" if i < 11 else "M"}
                      if i != 3 else {}) for i in range(12)]
    durations = {u.id: 2.0 for u in utts}
    cov = compute_coverage((u, durations[u.id]) for u in utts)
    gender = next(t for t in cov.tags if t.tag == "gender")
    assert gender.missing == 1 and gender.values["F"][0] == 10 and gender.values["M"][0] == 1
    assert 0 < gender.normalised_entropy < 0.7 and gender.max_min_ratio == pytest.approx(10)
    kinds = {f.kind for f in coverage_findings(cov)}
    assert {"coverage.missing_tag", "coverage.imbalance", "coverage.dominant_speaker"} <= kinds


def test_coverage_stops_listing_values_of_an_identifier_like_tag(monkeypatch):
    """A tag with more distinct values than the cap (here 3) keeps its counts but lists no more values,
    and is not judged for balance; the speaker tag has its own, much larger cap."""
    from voxproof.audit import coverage

    monkeypatch.setattr(coverage, "MAX_DISTINCT", 3)
    utts = [Utterance(f"u{i}", "x", speaker=f"s{i}", tags={"note": f"n{i}", "gender": "F"}) for i in range(6)]
    cov = compute_coverage((u, 1.0) for u in utts)
    note = next(t for t in cov.tags if t.tag == "note")
    assert note.truncated and len(note.values) == 3 and note.missing == 0 and note.normalised_entropy is None
    assert note.to_dict()["truncated"] is True
    speaker = next(t for t in cov.tags if t.tag == "speaker")
    assert not speaker.truncated and len(speaker.values) == 6
    assert cov.items == 6 and cov.hours == pytest.approx(6 / 3600)


def test_shared_transcripts_ngram_overlap():
    train = Side(["t1", "t2", "t3"], ["The quick brown fox jumps over the lazy dog today",
                                      "completely different words in this one sentence here",
                                      "LOBSTER A LA NEWBERG IS GOOD TO EAT WITH BREAD"], [None] * 3, [None] * 3, [None] * 3)
    test = Side(["x1", "x2"], ["the quick brown fox jumps over the lazy dog", "lobster a la newberg"],
                [None] * 2, [None] * 2, [None] * 2)
    found = shared_transcripts(train, test)
    assert [f.items for f in found] == [("t1",)]
    assert found[0].evidence["overlap"] >= 0.8


def test_findings_severity_rules():
    f = Finding("signal.clipping", "high", ("a",), "m")
    assert severity_rank("high") > severity_rank("medium") and severity_rank("info") == 0
    with pytest.raises(UsageError):
        severity_rank("urgent")
    assert Finding.from_dict(f.to_dict()) == f


def test_duplicate_clusters_and_transcripts(shared_data: Path):
    from voxproof.audit.duplicates import (
        duplicate_transcripts,
        exact_duplicates,
        group_values,
        near_duplicates,
        transcript_key,
    )

    clips = _libri(shared_data, 3)
    base = [compute_fingerprint(a, r) for a, r in clips]
    x, sr = clips[0]
    copies = [compute_fingerprint(0.5 * x, sr), compute_fingerprint(x[sr // 5:], sr)]
    ids = ["a", "b", "c", "a-quiet", "a-trimmed"]
    hashes = [pcm_hash(a, r) for a, r in clips] + [pcm_hash(0.5 * x, sr), pcm_hash(x[sr // 5:], sr)]
    findings, _ = near_duplicates(ids, base + copies, hashes, max_ber=0.3)
    assert [f.items for f in findings] == [("a", "a-quiet", "a-trimmed")]
    assert findings[0].evidence["keep"] == "a" and findings[0].action == "exclude"
    assert exact_duplicates(group_values(["p", "q", "r"], ["h1", "h2", "h1"]))[0].items == ("p", "r")
    texts = ["The cat sat on the mat", "the CAT sat on the mat!", "ZERO", "ZERO", "another one entirely here"]
    ids = ["1", "2", "3", "4", "5"]
    dup = duplicate_transcripts(group_values(ids, [transcript_key(t, 4) for t in texts]))
    assert [f.items for f in dup] == [("1", "2")]  # one-word prompts are meant to repeat
    assert duplicate_transcripts(group_values(ids, [transcript_key(t, 4) for t in texts]), exclude_ids={"2"}) == []
