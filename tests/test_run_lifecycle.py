"""A run's lifecycle under faults: ids that would escape the run directory, a worker that meets an exception
nobody planned for, and the seeded speaker-stratified sample (``--sample``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxproof.backends.base import BackendInfo, Transcript
from voxproof.errors import BackendError, UsageError
from voxproof.manifest import bundled_dataset_path, read_manifest
from voxproof.manifest.utterance import Utterance
from voxproof.run.records import id_filename
from voxproof.run.runner import RunOptions, kept_audio_path, run_eval
from voxproof.run.sampling import stratified_sample
from voxproof.run.store import RunStore

HOSTILE_IDS = [
    "..", ".", "", "/", "a/b", "a_b", "a%2Fb", "../../../../x/ESCAPED", "/etc/passwd", "a\x00b", "x" * 300,
    "y" * 300, "é", "e\u0301", "日本語/テスト", "\udc80lone", ".hidden", "sub/x", "CON", "a\\b", "tab\there", "~",
]


def test_id_filenames_are_one_safe_component_and_distinct(tmp_path):
    names = [id_filename(i, ".wav") for i in HOSTILE_IDS]
    assert len(set(names)) == len(names)  # no two ids share a file
    for ident, name in zip(HOSTILE_IDS, names):
        stem = name[: -len(".wav")]
        assert "/" not in name and "\\" not in name and "\x00" not in name and stem not in (".", "..", "")
        assert not name.startswith("."), name
        assert all(ch.isprintable() for ch in name), name
        assert len(name.encode()) <= 140
        path = tmp_path / name
        assert path.resolve().parent == tmp_path.resolve()
        path.write_bytes(b"ok")  # the file system takes it
    assert id_filename("sub/x") == "sub%2Fx" and id_filename("plain-id_1.2") == "plain-id_1.2"
    assert id_filename("x" * 300) != id_filename("x" * 299 + "y")  # long ids keep a hash of the whole id
    assert len(list(tmp_path.iterdir())) == len(HOSTILE_IDS)


class ToneEcho:
    """Hears 'a b' in every clip; for chosen utterance lengths it returns nothing usable (``None``, which
    the runner cannot read: an exception no code path plans for) or raises an exotic exception type."""

    sample_rate = 16000

    def __init__(self, broken=(), exotic=(), fatal=()):
        self.broken, self.exotic, self.fatal = set(broken), set(exotic), set(fatal)

    def transcribe(self, audio):
        n = len(audio.samples)
        if n in self.broken:
            return None
        if n in self.exotic:
            raise LookupError("a failure type no handler names")
        if n in self.fatal:
            raise Meltdown("not even an Exception")
        return Transcript("a b")

    def info(self):
        return BackendInfo("tone-echo", "asr", "tone-echo", "0" * 64, {})


class Meltdown(BaseException):
    pass


def _corpus(root: Path, ids: list[str]) -> tuple[list[Utterance], list[int]]:
    utts, lengths = [], []
    for k, ident in enumerate(ids):
        n = 4000 + 800 * k
        path = root / f"clip{k}.wav"
        sf.write(str(path), (0.2 * np.sin(np.arange(n) / 5.0)).astype(np.float32), 16000)
        utts.append(Utterance(ident, str(path), "a b", speaker=f"s{k % 3}"))
        lengths.append(n)
    return utts, lengths


def test_keep_audio_with_hostile_ids_stays_inside_the_run(tmp_path):
    from voxproof.perturb import resolve_conditions

    # the empty id and a lone surrogate cannot come from a manifest (nor be stored); the helper covers them
    ids = [i for i in HOSTILE_IDS if i and "\udc80" not in i]
    utts, _ = _corpus(tmp_path, ids)
    run = tmp_path / "deep" / "er" / "run"
    result = run_eval(lambda: ToneEcho(), utts, run, conditions=resolve_conditions([], ["gain:-6"]),
                      options=RunOptions(keep_audio=True, features="none"))
    assert result.errors == 0 and result.total_rows == 2 * len(ids)
    written = sorted(p for p in tmp_path.rglob("*.wav") if not p.name.startswith("clip"))
    assert len(written) == len(ids)
    assert all(p.resolve().is_relative_to((run / "audio").resolve()) for p in written)
    assert not (tmp_path / "x").exists() and not list(tmp_path.parent.glob("**/ESCAPED*"))
    for ident in ids:
        assert kept_audio_path(run, "gain:-6", ident).is_file()


def test_an_unexpected_exception_in_a_worker_is_an_error_row(tmp_path):
    utts, lengths = _corpus(tmp_path, [f"u{i}" for i in range(6)])
    backend = lambda: ToneEcho(broken={lengths[1]}, exotic={lengths[4]})  # noqa: E731
    result = run_eval(backend, utts, tmp_path / "run", options=RunOptions(workers=2, features="none"))
    assert result.total_rows == 6 and result.rows_written == 6 and result.errors == 2
    with RunStore.open(tmp_path / "run") as store:
        rows = {r.utt_id: r for r in store.rows()}
        assert store.meta("status") == "complete"
    assert sorted(rows) == [u.id for u in utts]  # coverage counts the whole manifest
    assert rows["u1"].error_type == "InternalError" and "AttributeError" in rows["u1"].error_message
    assert rows["u4"].error_type == "BackendError" and "LookupError" in rows["u4"].error_message
    assert all(rows[u].ok for u in ("u0", "u2", "u3", "u5"))
    # resuming a complete run adds nothing and repeats nothing
    again = run_eval(backend, utts, tmp_path / "run", options=RunOptions(workers=2, features="none"), resume=True)
    assert again.rows_written == 0 and again.rows_skipped == 6


def test_an_exception_that_is_not_an_error_stops_the_run_with_exit_3(tmp_path):
    utts, lengths = _corpus(tmp_path, [f"u{i}" for i in range(4)])
    with pytest.raises(BackendError, match="Meltdown") as caught:
        run_eval(lambda: ToneEcho(fatal={lengths[2]}), utts, tmp_path / "run", options=RunOptions(features="none"))
    assert caught.value.exit_code == 3
    with RunStore.open(tmp_path / "run") as store:
        assert store.meta("status") == "incomplete"
        assert {r.utt_id for r in store.rows()} <= {"u0", "u1", "u3"}


def test_cli_keep_audio_with_a_slash_in_an_id_covers_every_utterance(tmp_path, capsys):
    """The reported case: ids ``sub/x`` and an escaping path with ``--keep-audio`` used to kill the worker
    (exit 0, coverage 1/1 of 3). Now every utterance is evaluated and the audio stays in the run."""
    pytest.importorskip("pocketsphinx")
    from voxproof.cli.main import main

    src = list(read_manifest(bundled_dataset_path()))[:3]
    manifest = tmp_path / "m.jsonl"
    ids = ["sub/x", "../../../../x/ESCAPED", "plain"]
    manifest.write_text("".join(json.dumps({"audio_filepath": u.audio, "text": u.text, "duration": 1.0, "id": i,
                                            "offset": 0.0}) + "\n" for u, i in zip(src, ids)))
    run = tmp_path / "a" / "b" / "c" / "d" / "run"
    code = main(["eval", "-m", "sphinx", "-d", str(manifest), "--perturb", "gain:-6", "--keep-audio",
                 "--features", "none", "-o", str(run), "--json-only"])
    capsys.readouterr()
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    for cond in summary["scores"]["conditions"]:
        assert cond["coverage"]["total"] == 3 and cond["coverage"]["ok"] == 3
    kept = sorted(p.relative_to(run).as_posix() for p in run.rglob("*.wav"))
    assert kept == ["audio/gain%3A-6/%2E.%2F..%2F..%2F..%2Fx%2FESCAPED.wav",
                    "audio/gain%3A-6/plain.wav", "audio/gain%3A-6/sub%2Fx.wav"]
    assert not list(tmp_path.rglob("ESCAPED.wav"))


# -- --sample ----------------------------------------------------------------------------------------


def test_stratified_sample_spreads_over_speakers_deterministically():
    utts = list(read_manifest(bundled_dataset_path()))  # 5 speakers x 10, sorted by speaker
    assert len({u.speaker for u in utts[:10]}) == 1  # what --limit 10 gives
    ten = stratified_sample(utts, 10, seed=0)
    assert Counter(u.speaker for u in ten) == {s: 2 for s in {u.speaker for u in utts}}
    assert [u.id for u in ten] == [u.id for u in stratified_sample(utts, 10, seed=0)]
    assert [u.id for u in ten] != [u.id for u in stratified_sample(utts, 10, seed=1)]
    order = {u.id: i for i, u in enumerate(utts)}
    assert [order[u.id] for u in ten] == sorted(order[u.id] for u in ten)  # manifest order kept
    three = stratified_sample(utts, 3, seed=7)
    assert len({u.speaker for u in three}) == 3
    assert stratified_sample(utts, 500, seed=0) == utts
    with pytest.raises(UsageError):
        stratified_sample(utts, 0, seed=0)


def test_stratified_sample_is_proportional_and_keeps_unknown_speakers_as_one_stratum():
    utts = ([Utterance(f"a{i}", "x.wav", "t", speaker="A") for i in range(30)]
            + [Utterance(f"b{i}", "x.wav", "t", speaker="B") for i in range(10)]
            + [Utterance(f"n{i}", "x.wav", "t") for i in range(10)])
    picked = Counter(u.speaker for u in stratified_sample(utts, 10, seed=3))
    assert picked == {"A": 6, "B": 2, None: 2}
    for seed in range(5):  # fewer than one per stratum: that many distinct strata
        assert len({u.speaker for u in stratified_sample(utts, 2, seed=seed)}) == 2


def test_sample_is_recorded_in_the_run_provenance(tmp_path):
    from voxproof.run.inputs import resolve_inputs
    from voxproof.run.sampling import SAMPLE_METHOD, sample_inputs

    full = resolve_inputs(None)
    inputs = sample_inputs(full, 5, seed=4)
    assert inputs.dataset["sample"] == {"n": 5, "seed": 4, "method": SAMPLE_METHOD, "of": 50, "speakers": 5}
    assert inputs.dataset["utterances"] == 5 and inputs.dataset["hash"] != full.dataset["hash"]
    tiny = [Utterance(u.id, u.audio, u.text, speaker=u.speaker, offset=0.0, duration=0.3) for u in inputs.utterances]
    run_eval(lambda: ToneEcho(), tiny, tmp_path / "run", dataset=inputs.dataset, options=RunOptions(features="none"))
    with RunStore.open(tmp_path / "run") as store:
        assert store.provenance["dataset"]["sample"]["seed"] == 4


def test_every_worker_backend_is_closed_once_after_its_last_call(tmp_path):
    utts, _ = _corpus(tmp_path, [f"u{i}" for i in range(6)])
    made = []

    class Closable(ToneEcho):
        def __init__(self):
            super().__init__()
            self.closed = 0
            made.append(self)

        def transcribe(self, audio):
            assert not self.closed, "called after close()"
            return super().transcribe(audio)

        def close(self):
            self.closed += 1

    run_eval(Closable, utts, tmp_path / "run", options=RunOptions(workers=3, features="none"))
    assert len(made) == 3 and [b.closed for b in made] == [1, 1, 1]
