"""The audit's on-disk item store: SQL medians equal numpy's, groups list members in manifest order,
views stream in order and look items up by position, across spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxproof.audit.fingerprint import Fingerprint
from voxproof.audit.signal import ItemAnalysis
from voxproof.audit.store import ItemStore
from voxproof.manifest.utterance import Utterance


def _fill(store: ItemStore, durations: list[float], side: int = 0) -> None:
    rng = np.random.default_rng(len(durations))
    rows = []
    for i, d in enumerate(durations):
        fp = Fingerprint(rng.integers(0, 2**32, 5, dtype=np.uint32), np.ones(5, dtype=bool))
        u = Utterance(f"s{side}-u{i}", f"/x/{i}.wav", text="the same words here" if i % 3 == 0 else f"text {i}",
                      speaker=f"spk{i % 2}", tags={"split": "train" if i < len(durations) // 2 else "test"})
        a = ItemAnalysis(u.id, sample_rate=16000, channels=1, duration=d, pcm_sha1="h" if i in (1, 4) else f"p{i}",
                         features={"snr_db": 30.0 - i}, fingerprint=fp)
        rows.append((u, a))
    store.add(side, rows, lambda u: u.tags["split"])


@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_sql_median_and_mad_equal_numpy(tmp_path: Path, n: int):
    durations = [float(x) for x in np.random.default_rng(n).uniform(0.5, 9.0, n)]
    store = ItemStore(tmp_path / "s.sqlite", text_key=lambda t: t)
    _fill(store, durations)
    store.finish()
    med, count = store.median("duration", "side = 0")
    assert count == n and med == pytest.approx(float(np.median(durations)))
    centre, sigma, _ = store.robust("duration", "side = 0")
    mad = float(np.median(np.abs(np.array(durations) - np.median(durations)))) * 1.4826
    assert centre == pytest.approx(float(np.median(durations))) and sigma == pytest.approx(mad)
    assert store.median("snr_db", "side = 0")[0] == pytest.approx(float(np.median([30.0 - i for i in range(n)])))
    assert store.median("duration", "side = 1") == (None, 0)


def test_groups_views_and_streams(tmp_path: Path):
    store = ItemStore(tmp_path / "s.sqlite", text_key=lambda t: t)
    _fill(store, [1.0] * 8)
    _fill(store, [2.0] * 4, side=1)
    store.finish()
    assert list(store.groups("pcm_sha1", "side = 0")) == [("h", ["s0-u1", "s0-u4"])]
    assert list(store.groups("text_key", "side = 0")) == [("the same words here", ["s0-u0", "s0-u3", "s0-u6"])]
    assert [u.id for u in store.utterances(1)] == [f"s1-u{i}" for i in range(4)]
    ids = store.view("id", [("part", "train"), ("part", "test")])
    assert len(ids) == 12 and list(ids)[:5] == ["s0-u0", "s0-u1", "s0-u2", "s0-u3", "s1-u0"]
    assert ids[4] == "s1-u0" and ids[-1] == "s1-u3"
    with pytest.raises(IndexError):
        ids[12]
    prints = store.view("fp", [("side", 0)])
    first = next(iter(prints))
    assert isinstance(first, Fingerprint) and np.array_equal(prints[0].codes, first.codes)
    assert store.analysis("s0-u2").duration == 1.0 and store.analysis("nope") is None
    # a new store at the same path starts empty
    store.close()
    again = ItemStore(tmp_path / "s.sqlite")
    assert again.count(0) == 0 and again.scalar("SELECT COUNT(*) FROM items") == 0
