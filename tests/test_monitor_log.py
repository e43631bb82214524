"""Request-log reading (SQLite in chunks, JSONL, CSV, PostgreSQL), hostile inputs, and the statistics the
monitor is built on (PSI, KS, chi-square, Holm/BH, windows, WER estimate, markers)."""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3

import numpy as np
import pytest
from scipy import stats

from voxproof.errors import UsageError
from voxproof.monitor.drift import (
    DriftSettings,
    WindowSpec,
    adjust,
    chi_square,
    drift_window,
    iter_windows,
    ks_two_sample,
    psi,
)
from voxproof.monitor.estimate import estimate_window, parse_word_confs, request_mass
from voxproof.monitor.markers import marker_rates, wilson
from voxproof.monitor.profile import CalibrationMap, load_profile, profile_from_batch
from voxproof.monitor.source import (
    COLUMNS,
    LogUnreadable,
    batch_from_records,
    create_sqlite_log,
    insert_sqlite,
    open_log,
    write_jsonl,
)


def make_rows(n, *, seed=0, start=1000.0, snr=25.0, bandwidth=8000.0, codec="pcm", conf=0.9, route="main",
              version="v1", empty_every=0, status=200):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = int(rng.integers(5, 30))
        if empty_every and i % empty_every == 0:
            words = 0
        confs = np.clip(rng.normal(conf, 0.08, words), 0, 1).round(4).tolist()
        audio = float(rng.uniform(2, 15))
        rows.append({
            "ts": start + i, "request_id": f"r{seed}-{i}", "endpoint": "transcriptions", "model": "production",
            "version": version, "route": route, "status": status, "latency_s": float(rng.uniform(0.2, 1.0)),
            "audio_s": audio, "sample_rate": 16000, "codec": codec, "rms_dbfs": float(rng.normal(-22, 2)),
            "snr_db": float(rng.normal(snr, 3)), "speech_ratio": float(rng.uniform(0.6, 0.9)),
            "clipping_ratio": 0.0, "bandwidth_hz": bandwidth, "conf_mean": float(np.mean(confs)) if words else None,
            "conf_min": float(np.min(confs)) if words else None, "words": words, "words_per_s": words / audio,
            "output_chars": words * 5, "text": None, "word_confs": json.dumps(confs) if words else None,
        })
    return rows


CAL = CalibrationMap(edges=(0.0, 0.5, 0.8, 0.95, 1.0), accuracy=(0.3, 0.7, 0.9, 0.98), counts=(10, 10, 10, 10),
                     ece=0.02, words=40, deletions_per_word=0.02, insertion_share=0.1, reference_wer=0.1,
                     fitted_wer=0.1, normalizer="whisper-en@1")


def ref_profile(n=400, calibration=CAL):
    return profile_from_batch(batch_from_records(make_rows(n, seed=99)), source={"kind": "test"},
                              calibration=calibration)


# -- reading ----------------------------------------------------------------------------------------
def test_all_formats_read_the_same_rows_in_ts_order(tmp_path):
    rows = make_rows(120)
    rows_shuffled = rows[60:] + rows[:60]  # SQL readers order by (ts, id)
    db = tmp_path / "requests.sqlite"
    conn = create_sqlite_log(db)
    insert_sqlite(conn, rows_shuffled)
    conn.close()
    write_jsonl(rows, tmp_path / "log.jsonl")
    with (tmp_path / "log.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[c for c in COLUMNS if c != "id"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    for path in (db, tmp_path / "log.jsonl", tmp_path / "log.csv"):
        src = open_log(path)
        chunks = list(src.chunks(chunk_rows=50))
        assert [c.n for c in chunks] == [50, 50, 20], path
        b = src.read()
        assert b.n == 120 and src.bad_rows == 0
        assert np.all(np.diff(b.get("ts")) > 0)
        assert list(b.get("request_id")[:3]) == ["r0-0", "r0-1", "r0-2"]
        assert np.allclose(b.get("snr_db"), [r["snr_db"] for r in rows])
        assert b.get("word_confs")[0] == rows[0]["word_confs"]
        assert src.read(since=1100.0).n == 20


def test_bad_rows_are_counted_with_their_lines_never_dropped_silently(tmp_path):
    good = make_rows(3)
    p = tmp_path / "log.jsonl"
    lines = [json.dumps(good[0]), "not json", json.dumps([1, 2]), json.dumps({**good[1], "ts": "NaN"}),
             json.dumps({**good[1], "route": "sideways"}), json.dumps({**good[1], "status": True}),
             json.dumps({**good[2], "snr_db": None}),
             "x" * (1 << 20 + 1) + "\n" + json.dumps(good[2])]
    p.write_text("\n".join(lines) + "\n")
    src = open_log(p)
    b = src.read()
    assert b.n == 3
    assert src.bad_rows == 6
    assert any("line 2" in m and "not JSON" in m for m in src.problems)
    assert any("route" in m for m in src.problems)
    assert any("longer than" in m for m in src.problems)
    assert math.isnan(b.get("snr_db")[1])


@pytest.mark.parametrize("make", ["missing", "dir", "fifo", "devzero", "nul", "garbage", "notable", "schema"])
def test_hostile_locations_fail_with_typed_errors(tmp_path, make):
    target = tmp_path / "log.sqlite"
    if make == "dir":
        target = tmp_path
    elif make == "fifo":
        target = tmp_path / "fifo.jsonl"
        os.mkfifo(target)
    elif make == "devzero":
        target = "/dev/zero"
    elif make == "nul":
        with pytest.raises(UsageError):
            open_log("bad\x00name.jsonl")
        return
    elif make == "garbage":
        target.write_bytes(os.urandom(256))
    elif make == "notable":
        sqlite3.connect(target).execute("CREATE TABLE other (x)").connection.commit()
    elif make == "schema":
        conn = create_sqlite_log(target)
        conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
        conn.commit()
    with pytest.raises(LogUnreadable):
        open_log(target).read()


def test_csv_without_ts_header_is_unreadable(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(LogUnreadable, match="ts"):
        open_log(p).read()


@pytest.mark.skipif(not os.environ.get("VOXPROOF_TEST_PG_URL"), reason="VOXPROOF_TEST_PG_URL is not set "
                    "(source .ci/postgres.sh)")
def test_postgresql_log_is_read_in_chunks():
    import uuid

    import psycopg

    url = os.environ["VOXPROOF_TEST_PG_URL"]
    schema = "vp_mon_" + uuid.uuid4().hex[:10]
    rows = make_rows(30)
    names = [c for c in COLUMNS if c != "id"]
    types = {"int": "BIGINT", "real": "DOUBLE PRECISION", "text": "TEXT"}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.requests (id BIGSERIAL PRIMARY KEY, "
                     + ", ".join(f"{c} {types[COLUMNS[c]]}" for c in names) + ")")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {schema}.requests ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                            [tuple(r.get(c) for c in names) for r in reversed(rows)])
    try:
        sep = "&" if "?" in url else "?"
        src = open_log(f"{url}{sep}options=-csearch_path%3D{schema}")
        chunks = list(src.chunks(chunk_rows=12))
        assert [c.n for c in chunks] == [12, 12, 6]
        b = src.read()
        assert list(b.get("request_id")[:2]) == ["r0-0", "r0-1"]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# -- statistics ---------------------------------------------------------------------------------------
def test_ks_and_chi_square_agree_with_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 300), np.sort(rng.normal(0.3, 1, 500))
    d, p = ks_two_sample(a, b, b.size)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=0.15)
    w, r = np.array([30.0, 50.0, 20.0]), np.array([100.0, 80.0, 20.0])
    stat, pv = chi_square(w, r)
    c = stats.chi2_contingency(np.vstack([r, w]), correction=False)
    assert stat == pytest.approx(c.statistic) and pv == pytest.approx(c.pvalue)


def test_holm_and_bh_match_statsmodels_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 with running max
    assert adjust(p, "holm").tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p*m/rank with running min from the top
    assert adjust(p, "bh").tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "none").tolist() == p.tolist()


def test_psi_is_zero_for_same_shares_and_grows_with_shift():
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0
    assert psi(np.array([0.9, 0.1]), np.array([0.5, 0.5])) > 0.4


def test_windows_by_count_fixed_and_sliding_and_by_time():
    b = batch_from_records(make_rows(250))
    chunks = [b.take(np.arange(0, 90)), b.take(np.arange(90, 250))]
    fixed = list(iter_windows(iter(chunks), WindowSpec("count", 100, 100, 10)))
    assert [w.batch.n for w in fixed] == [100, 100, 50] and fixed[-1].partial
    sliding = list(iter_windows(iter(chunks), WindowSpec("count", 100, 50, 10)))
    assert [w.batch.n for w in sliding][:4] == [100, 100, 100, 100]
    assert sliding[1].batch.get("ts")[0] == 1050.0
    timed = list(iter_windows(iter(chunks), WindowSpec("time", 60, 60, 10)))
    assert sum(w.batch.n for w in timed) == 250 and all(w.end - w.start == 60 for w in timed)
    with pytest.raises(UsageError):
        WindowSpec("count", 10, 20)
    with pytest.raises(UsageError):
        WindowSpec("count", float("nan"), 1)


def test_drift_fires_on_a_shift_not_on_the_same_distribution_and_not_on_small_windows():
    prof = ref_profile()
    settings = DriftSettings()
    same = batch_from_records(make_rows(300, seed=5))
    from voxproof.monitor.drift import Window

    d = drift_window(Window(0, 0, 1, same), prof, settings, 50)
    assert d.status == "ok", d.drifted
    phone = batch_from_records(make_rows(300, seed=6, bandwidth=3400.0, codec="mulaw", snr=12.0))
    d = drift_window(Window(0, 0, 1, phone), prof, settings, 50)
    assert d.status == "drift" and {"bandwidth_hz", "codec", "snr_db"} <= set(d.drifted)
    small = batch_from_records(make_rows(20, seed=6, bandwidth=3400.0, codec="mulaw"))
    assert drift_window(Window(0, 0, 1, small), prof, settings, 50).status == "too small"


def test_profile_round_trips_and_refuses_garbage(tmp_path):
    prof = ref_profile()
    path = prof.save(tmp_path / "p.json")
    back = load_profile(path)
    assert back.numeric["snr_db"].edges == prof.numeric["snr_db"].edges
    assert back.calibration == prof.calibration
    (tmp_path / "bad.json").write_text('{"schema": 1, "numeric": 3}')
    with pytest.raises(UsageError):
        load_profile(tmp_path / "bad.json")
    with pytest.raises(UsageError):
        load_profile("/dev/zero")


def test_estimate_follows_confidence_and_has_an_interval():
    hi = batch_from_records(make_rows(200, seed=1, conf=0.97))
    lo = batch_from_records(make_rows(200, seed=2, conf=0.6))
    e_hi = estimate_window(request_mass(hi, CAL), CAL)
    e_lo = estimate_window(request_mass(lo, CAL), CAL)
    assert e_hi.low <= e_hi.point <= e_hi.high and e_hi.point < e_lo.point
    # by hand: mass = sum(1 - p) over words; WER = (M + d H) / (H - i M + d H)
    flat, _rows, _ok = parse_word_confs(hi.get("word_confs"))
    m, h = float(np.sum(1 - CAL.prob_correct(flat))), flat.size
    assert e_hi.point == pytest.approx((m + 0.02 * h) / (h - 0.1 * m + 0.02 * h))
    tiny = estimate_window(request_mass(batch_from_records(make_rows(1)), CAL), CAL, min_words=50)
    assert tiny.reason.startswith("n/a")


def test_malformed_confidence_lists_are_not_scored():
    col = np.array(['[0.5, 0.9]', '[2.0]', 'garbage', None, '[]', '[0.1,0.2,0.3]'], dtype=object)
    flat, rows, ok = parse_word_confs(col)
    assert ok.tolist() == [True, False, False, True, True, True]
    assert flat.tolist() == [0.5, 0.9, 0.1, 0.2, 0.3] and rows.tolist() == [0, 0, 5, 5, 5]


def test_markers_flag_text_on_no_speech_and_empty_on_speech():
    rows = make_rows(100, seed=3)
    for r in rows[:10]:
        r["speech_ratio"] = 0.0  # silence, yet text came out
    for r in rows[10:15]:
        r.update(words=0, words_per_s=0.0, word_confs=None)
    for r in rows[15:18]:
        r["text"] = "the cat sat " * 6
    rates = marker_rates(batch_from_records(rows), ref_profile())
    assert rates["no_speech_text"].flagged == 10 and rates["empty_on_speech"].flagged == 5
    assert rates["repetition"].flagged >= 3
    lo, hi = wilson(10, 100)
    assert lo < 0.1 < hi and rates["no_speech_text"].low == pytest.approx(lo)


def test_fast_paths_match_the_plain_numpy_forms():
    """The monitor's per-window shortcuts give exactly what the straightforward forms give."""
    from voxproof.monitor.drift import _categorical_windows
    from voxproof.monitor.profile import CategoricalProfile, feature_values
    from voxproof.monitor.source import _plain_text

    vals = np.array(["pcm", "gsm", "pcm", "a\x00", "a", "é", "Z", "pcm", None, "gsm"], dtype=object)
    cat = CategoricalProfile("codec", 100, 0, {"pcm": 0.7, "gsm": 0.3})
    for lengths in ([10], [4, 0, 6], [1, 9]):
        got = _categorical_windows(cat, vals, np.array(lengths))
        for part, fd in zip(np.split(vals, np.cumsum(lengths)[:-1]), got):
            known = [v for v in part if v is not None]
            if not known:
                assert fd.n == 0 and fd.reason == "no values in the window"
                continue
            u, c = np.unique(np.asarray(known, dtype=str), return_counts=True)  # the plain form
            assert fd.n == len(known) and fd.summary == str(u[int(np.argmax(c))])
            seen = dict(zip(u.tolist(), c.tolist()))
            wc = np.array([seen.get("pcm", 0), seen.get("gsm", 0), len(known) - seen.get("pcm", 0) - seen.get("gsm", 0)],
                          dtype=float)
            rc = np.array([70.0, 30.0, 0.0])
            assert fd.psi == psi(wc / wc.sum(), rc / rc.sum())
            assert (fd.statistic, fd.p_value) == chi_square(wc, rc)
    rate = np.array([16000.0, np.nan, 8000.0, 16000.0, -0.0, 44100.0])
    got = feature_values(batch_from_records([{"ts": 0.0, "sample_rate": r} for r in rate]), "sample_rate")
    assert got.tolist() == [None if not np.isfinite(r) else f"{int(r)}" for r in rate]
    assert _plain_text(("a", None, "b")) and not _plain_text(("a", b"b")) and not _plain_text(("x" * 200_000,))
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 57), np.sort(np.round(rng.normal(0, 1, 400), 1))
    allv = np.concatenate([np.sort(a), b])
    pooled = np.max(np.abs(np.searchsorted(np.sort(a), allv, side="right") / a.size
                           - np.searchsorted(b, allv, side="right") / b.size))
    assert ks_two_sample(a, b, b.size)[0] == float(pooled)


def test_numeric_drift_of_many_windows_equals_one_window_at_a_time():
    """``drift_windows`` computes PSI, KS and the median of a group of windows at once; each figure is bit for
    bit the plain one-window form (bin shares, ``ks_two_sample``, ``np.median``), with missing values,
    ties, empty windows and windows of different sizes."""
    from voxproof.monitor.drift import _numeric_windows
    from voxproof.monitor.profile import NumericProfile, bin_shares

    rng = np.random.default_rng(5)
    ref = np.sort(np.round(rng.normal(0, 1, 300), 2))
    edges = tuple(float(e) for e in np.quantile(ref, np.linspace(0.1, 0.9, 9)))
    shares = tuple(float(x) for x in bin_shares(ref, edges))
    prof = NumericProfile("snr_db", 300, 0, edges, shares, tuple(float(x) for x in ref), {})
    lengths = np.array([50, 0, 7, 120, 1, 2, 33])
    vals = np.round(rng.normal(0.3, 1.2, lengths.sum()), 1)
    vals[rng.random(vals.size) < 0.1] = np.nan
    vals[60:67] = np.nan  # a window with no values
    got = _numeric_windows(prof, vals, lengths)
    for part, fd in zip(np.split(vals, np.cumsum(lengths)[:-1]), got):
        x = part[np.isfinite(part)]
        if x.size == 0:
            assert fd.n == 0 and fd.reason == "no values in the window"
            continue
        d, pv = ks_two_sample(x, ref, prof.n)
        assert (fd.n, fd.psi, fd.statistic, fd.p_value, fd.summary) == \
            (x.size, psi(bin_shares(x, edges), shares), d, pv, float(np.median(x)))
