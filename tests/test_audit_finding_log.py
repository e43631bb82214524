"""The audit's on-disk finding log: order, severity order with stable ties, counts, per-kind item
counts, the ``--fix`` targets of an item, writes interleaved with a stream of the same store, and a
streamed findings.json equal to the in-memory JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxproof.audit.findings import Finding, FindingLog, fix_targets
from voxproof.audit.store import ItemStore
from voxproof.manifest.utterance import Utterance

FINDINGS = [
    Finding("signal.clipping", "medium", ("a",), "clipped", {"clip_ratio": 0.1}),
    Finding("duplicate.exact_audio", "high", ("a", "b", "c"), "same audio", {"keep": "a"}, action="exclude"),
    Finding("coverage.imbalance", "info", (), "tag imbalance", action="none"),
    Finding("pii.email", "high", ("b",), "e-mail", {"masked": ["j***@e***.com"]}),
    Finding("signal.clipping", "medium", ("c",), "clipped", {"clip_ratio": 0.2}),
]


@pytest.fixture
def log(tmp_path: Path) -> FindingLog:
    store = ItemStore(tmp_path / "s.sqlite")
    log = FindingLog(store.conn)
    log.BUFFER = 2  # force flushes between appends
    log.extend(FINDINGS)
    return log


def test_order_counts_and_kinds(log: FindingLog):
    assert list(log) == FINDINGS and len(log) == 5
    worst_first = sorted(FINDINGS, key=lambda f: -["info", "low", "medium", "high", "critical"].index(f.severity))
    assert list(log.by_severity()) == worst_first  # ties keep the order of addition, like a stable sort
    assert list(log.by_severity(limit=2)) == worst_first[:2]
    assert list(log.by_severity(at_least="high")) == [FINDINGS[1], FINDINGS[3]]
    assert log.counts() == {"info": 1, "low": 0, "medium": 2, "high": 2, "critical": 0}
    assert log.count_at_or_above("medium") == 4 and log.count_at_or_above("critical") == 0
    assert log.kinds() == {"signal.clipping": (2, 2), "duplicate.exact_audio": (1, 3), "coverage.imbalance": (1, 0),
                           "pii.email": (1, 1)}


def test_fix_targets_keep_the_kept_duplicate(log: FindingLog):
    assert fix_targets(FINDINGS[1]) == ("b", "c") and fix_targets(FINDINGS[2]) == ()
    assert log.targets("a") == ([], [FINDINGS[0]])  # kept copy: only its own clipping flag
    assert log.targets("b") == ([FINDINGS[1]], [FINDINGS[3]])
    assert log.targets("c") == ([FINDINGS[1]], [FINDINGS[4]])
    assert log.targets("zzz") == ([], [])


def test_appends_while_streaming_the_same_store(tmp_path: Path):
    """A per-item stage appends (and flushes) while it reads the store's items on the same connection."""
    store = ItemStore(tmp_path / "s.sqlite")
    from voxproof.audit.signal import ItemAnalysis

    n = 1200
    store.add(0, ((Utterance(f"u{i}", f"/x/{i}.wav", text=f"t {i}"), ItemAnalysis(f"u{i}", sample_rate=16000,
                  channels=1, duration=1.0)) for i in range(n)), lambda u: None)
    store.finish()
    log = FindingLog(store.conn)
    log.BUFFER = 7
    for u in store.utterances(0):
        log.append(Finding("test.item", "low", (u.id,), u.text or ""))
    assert len(log) == n and [f.items[0] for f in log] == [f"u{i}" for i in range(n)]


def test_streamed_json_equals_in_memory_json(tmp_path: Path, shared_data: Path):
    from voxproof.audit.report import write_json
    from voxproof.audit.runner import AuditOptions, run_audit

    rows = [json.dumps({"id": f"{i}", "audio": str(p), "text": "hello there my friend", "speaker": "s"})
            for i, p in enumerate(sorted((shared_data / "librispeech-test-other-mini" / "audio").glob("*.flac"))[:3])]
    rows.append(json.dumps({"id": "dup", "audio": json.loads(rows[0])["audio"], "text": "mail me at jo@example.com"}))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    result = run_audit(manifest, out_dir=tmp_path / "out", options=AuditOptions(vad="energy", cache=False))
    assert len(result.findings) >= 2
    path = write_json(result, tmp_path / "findings.json")
    assert path.read_text() == json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
