"""Issue 19 parts 2 and 5: CPU/ISA provenance, warnings across instruction sets, ``eval --repeat-check``,
and ``eval --pack`` recorded as a different measurement (compare warns, gate refuses).

One module-scoped pair of real Whisper runs (per-clip and packed) on the 6 shortest bundled clips."""

from __future__ import annotations

import json
import shutil

import pytest

from voxproof.backends.base import Transcript, Word
from voxproof.backends.whisper import WhisperOptions, WhisperTranscriber
from voxproof.cli.main import main
from voxproof.errors import NotComparable, RunError, UsageError
from voxproof.gate.evidence import open_inputs, run_key
from voxproof.manifest import bundled_dataset_path, read_manifest
from voxproof.metrics.compare import compare_runs
from voxproof.run.cpu import cpu_flags, isa_signature, machine_warnings, mkl_code_path, parse_ct2_log
from voxproof.run.determinism import compare_passes
from voxproof.run.runner import RunOptions, run_eval
from voxproof.run.store import RunStore

_MODEL: list = []
SHORT = ("367-130732-0006", "367-130732-0000", "1688-142285-0002", "1998-15444-0008", "1998-15444-0007",
         "2033-164914-0005")


@pytest.fixture(scope="module")
def utterances():
    utts = [u for u in read_manifest(bundled_dataset_path()) if u.id in SHORT]
    assert len(utts) == len(SHORT)
    return utts


@pytest.fixture(scope="module")
def runs(tmp_path_factory, utterances):
    root = tmp_path_factory.mktemp("determ")
    model = WhisperTranscriber(WhisperOptions())
    factory = lambda: model
    norm = {"name": "whisper-en", "version": "1"}
    ds = {"hash": "short6", "utterances": len(utterances)}
    model.close = lambda: None  # the runner closes backends; this one is shared by both runs
    run_eval(factory, utterances, root / "clip", normalizer=norm, dataset=ds, options=RunOptions(features="none"))
    run_eval(factory, utterances, root / "packed", normalizer=norm, dataset=ds,
             options=RunOptions(features="none", pack=True, pack_max_s=3.0))
    _MODEL[:] = [model]
    return root / "clip", root / "packed"


def _provenance(path):
    with RunStore.open(path) as store:
        return store.provenance


def test_provenance_records_cpu_dispatch_threads_and_decode_path_versions(runs):
    prov = _provenance(runs[0])
    rt = prov["runtime"]
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        present = set(next(line for line in fh if line.startswith("flags")).split(":", 1)[1].split())
    assert rt["cpu_flags"] == [f for f in cpu_flags()["flags"]] and set(rt["cpu_flags"]) <= present
    assert ("avx2" in present) == ("avx2" in rt["cpu_flags"])
    assert prov["machine"]["cpu_flags"] == rt["cpu_flags"]
    ct2 = rt["ctranslate2"]
    # captured at the first Whisper load of this process, unless a library loaded CTranslate2 before us
    assert ct2.get("isa") in {"AVX2", "AVX512", "AVX", "NEON", "GENERIC"} or ct2["source"].startswith("not captured")
    assert rt["mkl_code_path"]["value"] == mkl_code_path(rt["cpu_flags"], rt["env"])
    assert rt["threads"]["cpu_threads"] >= 1 and rt["threads"]["workers"] == 1
    assert rt["compute_type_selected"].startswith("int8")
    versions = prov["backend"]["library_versions"]
    assert {"ctranslate2", "faster-whisper", "numpy", "tokenizers", "soxr", "soundfile"} <= set(versions)
    assert prov["measurement"] == {"mode": "per-clip"}


def test_ct2_log_parsed_from_a_real_child_process(runs):
    """CTranslate2's own report, read with CT2_VERBOSE=1 MKL_VERBOSE=1 in a child process."""
    from voxproof.run.cpu import probe_mkl_dispatch

    model_dir = _provenance(runs[0])["backend"]["model"]
    probe = probe_mkl_dispatch(model_dir)
    assert probe["source"].startswith("child process with"), probe
    assert probe["isa"] and probe["gemm_s8_backend"]
    if probe.get("mkl_banner"):  # PyPI wheels link MKL; its report names the instruction set it uses
        assert "Intel" in probe["mkl_banner"] and probe["mkl_cnr"] in ("OFF", "AUTO", "COMPATIBLE", "AVX2")


def test_parse_ct2_log_and_mkl_path_rules():
    text = ("[2026-01-01] [ctranslate2] [thread 1] [info] CPU: AuthenticAMD (SSE4.1=true, AVX=true, AVX2=true, "
            "AVX512=false)\n[x] [ctranslate2] [thread 1] [info]  - Selected ISA: AVX2\n"
            "[x] [ctranslate2] [thread 1] [info]  - GEMM_S8 backend: MKL (packed: true, u8s8 preferred: true)\n")
    facts = parse_ct2_log(text)
    assert facts["isa"] == "AVX2" and facts["cpu"].startswith("AuthenticAMD") and facts["gemm_s8_backend"].startswith("MKL")
    amx = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "amx_tile", "amx_int8"]
    assert mkl_code_path(amx) == "AMX-INT8"
    assert mkl_code_path([f for f in amx if not f.startswith("amx")]) == "AVX-512 VNNI"
    assert mkl_code_path(["avx", "avx2", "fma"]) == "AVX2"
    assert mkl_code_path(amx, {"MKL_CBWR": "AVX2"}) == "AVX2 (capped by AVX2)"
    assert mkl_code_path(None).startswith("unknown")


def test_compare_and_gate_warn_when_runs_used_different_instruction_sets(runs, tmp_path):
    clip, _ = runs
    other = tmp_path / "other-cpu"
    shutil.copytree(clip, other)
    with RunStore.open(other) as store:
        prov = store.provenance
        prov["runtime"]["cpu_flags"] = [f for f in prov["runtime"]["cpu_flags"] if not f.startswith(("amx", "avx512"))]
        prov["runtime"]["mkl_code_path"]["value"] = "AVX2"
        store.set_meta("provenance", prov)
    assert isa_signature(prov) != isa_signature(_provenance(clip))
    with RunStore.open(clip) as a, RunStore.open(other) as b:
        notes = compare_runs(a, b, n_resamples=50).notes
    assert len(notes) == 1 and "different instruction sets" in notes[0] and "mkl_code_path" in notes[0]
    inputs = open_inputs(clip, other)
    try:
        assert any("different instruction sets" in n for n in inputs.notes)
    finally:
        inputs.close()
    with RunStore.open(clip) as a, RunStore.open(clip) as b:  # same machine: no warning
        assert compare_runs(a, b, n_resamples=50).notes == ()


def test_machine_warnings_for_an_old_run_and_changed_library():
    new = {"runtime": {"cpu_flags": ["avx2"]}, "backend": {"name": "whisper", "library_versions": {"ctranslate2": "4.8.5"}}}
    old = {"backend": {"name": "whisper", "library_versions": {"ctranslate2": "4.6.0"}}}
    notes = machine_warnings(old, new)
    assert "run A does not record its CPU instruction sets" in notes[0]
    assert notes[1] == "decode-path libraries differ: ctranslate2 4.6.0 vs 4.8.5"


def test_no_dispatch_warning_when_only_one_run_decodes_through_ctranslate2():
    """PocketSphinx vs Whisper on one machine: CTranslate2's ISA exists in one run only, so it is no difference."""
    flags = ["avx2", "avx512f"]
    whisper = {"runtime": {"cpu_flags": flags, "ctranslate2": {"isa": "AVX2"}, "mkl_code_path": {"value": "AMX-INT8"}},
               "backend": {"name": "whisper"}}
    sphinx = {"runtime": {"cpu_flags": flags}, "backend": {"name": "sphinx"}}
    assert machine_warnings(sphinx, whisper) == []
    other_cpu = {"runtime": {"cpu_flags": ["avx2"]}, "backend": {"name": "sphinx"}}
    (note,) = machine_warnings(other_cpu, whisper)
    assert "only in B: avx512f" in note


def test_packed_run_is_recorded_as_a_different_measurement(runs):
    clip, packed = runs
    prov = _provenance(packed)
    assert prov["measurement"]["mode"] == "packed" and prov["measurement"]["pack_max_s"] == 3.0
    assert run_key(prov) != run_key(_provenance(clip))
    with RunStore.open(packed) as store:
        rows = list(store.rows())
    by_packed = {r.utt_id: bool(r.extras.get("packed")) for r in rows}
    # clips over pack_max_s (3.17 s and 3.51 s) are decoded alone, the four shorter ones share a window
    assert by_packed == {u: u not in ("1998-15444-0007", "2033-164914-0005") for u in SHORT}
    assert all(r.ok and r.hypothesis for r in rows)
    packed_rows = [r for r in rows if r.extras.get("packed")]
    assert {r.extras["packed_call_clips"] for r in packed_rows} == {4}
    assert {r.transcript.extras["packed_with"] for r in packed_rows} == {4}
    call = packed_rows[0].extras["packed_call_seconds"]
    assert sum(r.processing_time for r in packed_rows) == pytest.approx(call)


def test_compare_warns_and_gate_refuses_packed_vs_per_clip(runs):
    clip, packed = runs
    with RunStore.open(clip) as a, RunStore.open(packed) as b:
        notes = compare_runs(a, b, n_resamples=50).notes
    assert any("different measurement" in n for n in notes)
    with pytest.raises(NotComparable, match="packed"):
        open_inputs(clip, packed)


def test_resuming_with_another_measurement_is_refused(runs, utterances, tmp_path):
    clip, _ = runs
    copy = tmp_path / "resume"
    shutil.copytree(clip, copy)
    with pytest.raises(RunError, match="measurement"):
        run_eval(lambda: _MODEL[0], utterances, copy, resume=True,  # the module's loaded model
                 normalizer={"name": "whisper-en", "version": "1"}, dataset={"hash": "short6"},
                 options=RunOptions(features="none", pack=True))


def test_pack_refusals():
    with pytest.raises(UsageError, match="timeout"):
        RunOptions(pack=True, timeout=5.0)
    for bad in ("nan", "inf", "0", "40"):
        assert main(["eval", "--pack", "--pack-max-s", bad, "--limit", "1"]) == 2


def test_pack_needs_a_packing_backend(tmp_path, utterances):
    from voxproof.backends.registry import load_backend

    with pytest.raises(UsageError, match="--pack needs"):
        run_eval(lambda: load_backend("sphinx", kind="asr"), utterances[:1], tmp_path / "s",
                 options=RunOptions(pack=True, features="none"))


def test_compare_passes_finds_changed_text_and_confidence():
    a = [Transcript("one two", (Word("one", 0, 1, 0.9), Word("two", 1, 2, 0.8))), Transcript("x")]
    b = [Transcript("one two", (Word("one", 0, 1, 0.9), Word("two", 1, 2, 0.7))), Transcript("y")]
    p = compare_passes("t", ["u1", "u2"], a, b)
    assert (p.same_text, p.same_words, p.changed, p.deterministic) == (1, 1, ("u2",), False)
    assert p.max_confidence_change == pytest.approx(0.1)
    assert compare_passes("t", ["u1", "u2"], a, a).deterministic is True


def test_repeat_check_cli_on_sphinx(tmp_path, capsys, utterances):
    out = tmp_path / "det.json"
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(u.to_dict()) + "\n" for u in utterances[:1]))
    code = main(["eval", "-m", "sphinx", "--repeat-check", "1", "-d", str(data), "-o", str(out)])
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert code == (0 if report["deterministic"] else 1)
    assert len(report["sample"]) == 1 and "n/a (sphinx has no cpu_threads option)" in text
    assert [p["name"] for p in report["passes"]][:2] == ["same instance, repeated", "new instance"]
    assert report["runtime"] == {}
    assert main(["eval", "--repeat-check", "2", "--suite", "noise"]) == 2
