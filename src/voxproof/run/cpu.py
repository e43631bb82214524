"""What decides the numbers on this CPU: instruction sets, the kernels CTranslate2 and MKL dispatch to,
thread counts and the environment variables that override them.

The same model, data and options gave 12.08 % WER on one machine and 12.74 % on another of the same kind
with identical package versions. CTranslate2 (as shipped on PyPI) does its int8 and float matrix
products through Intel MKL, linked into ``libctranslate2``, and both libraries pick their kernels at
run time from the CPU's instruction sets. Measured on this machine with ``CT2_VERBOSE=1`` and
``MKL_VERBOSE=1`` (the only ways to see the choice; neither library exposes it to Python):

- CTranslate2 logs, once per process at the first model load, ``CPU: GenuineIntel (SSE4.1=true,
  AVX=true, AVX2=true, AVX512=true)`` and `` - Selected ISA: AVX2`` (its own vectorised primitives:
  softmax, layer norm, quantisation), plus ``GEMM_S8 backend: MKL (packed: true, u8s8 preferred: true)``.
  ``ctranslate2.get_supported_compute_types("cpu")`` only lists compute types, not the ISA.
- MKL logs ``Intel(R) AVX-512 with support for INT8, BF16, FP16 ... and Intel(R) AMX with INT8 and BF16``
  and ``CNR:OFF`` (conditional numerical reproducibility off) for every ``GEMM_S8U8S32`` call: the int8
  products run on AMX tiles here, on VNNI or plain AVX2 elsewhere, and float accumulation order differs.

This module reads the CPU flags from ``/proc/cpuinfo``, captures CTranslate2's dispatch log in process
(:func:`capture_ct2_dispatch`, around the first model load), derives MKL's code path from the flags by
MKL's documented order (verified against ``MKL_VERBOSE`` by :func:`probe_mkl_dispatch`), and compares
two runs' records (:func:`isa_signature`, :func:`machine_warnings`). ``MKL_CBWR=AVX2`` (or
``COMPATIBLE``) pins MKL's code path across CPUs; ``CT2_FORCE_CPU_ISA`` pins CTranslate2's.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

log = logging.getLogger("voxproof.run.cpu")

T = TypeVar("T")

# Flags that change which kernels the math libraries dispatch to (names as in /proc/cpuinfo).
ISA_FLAGS = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni",
    "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "sve",
)
# Environment variables that override a dispatch or a thread count in the decode path.
RUNTIME_ENV = (
    "CT2_FORCE_CPU_ISA", "CT2_USE_MKL", "CT2_USE_EXPERIMENTAL_PACKED_GEMM", "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "MKL_DYNAMIC",
)


@lru_cache(maxsize=1)
def cpu_flags() -> dict[str, Any]:
    """``{"vendor", "flags"}``: the CPU vendor and which of :data:`ISA_FLAGS` it has (from /proc/cpuinfo;
    ``flags`` is None where that file does not exist)."""
    vendor, flags = "unknown", None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and vendor == "unknown":
                    vendor = value.strip()
                elif key in ("flags", "Features") and flags is None:
                    present = set(value.split())
                    flags = [f for f in ISA_FLAGS if f in present]
    except OSError:
        pass
    return {"vendor": vendor, "flags": flags}


def runtime_env() -> dict[str, str]:
    """The set :data:`RUNTIME_ENV` variables and their values."""
    return {k: os.environ[k] for k in RUNTIME_ENV if k in os.environ}


def mkl_code_path(flags: list[str] | None, env: dict[str, str] | None = None) -> str:
    """The code path MKL's integer GEMM takes on a CPU with ``flags``, by MKL's rule (highest supported
    instruction set, unless ``MKL_CBWR``/``MKL_ENABLE_INSTRUCTIONS`` caps it). A derivation, labelled as
    such in provenance; :func:`probe_mkl_dispatch` reads MKL's own report."""
    env = env or {}
    cap = (env.get("MKL_CBWR") or env.get("MKL_ENABLE_INSTRUCTIONS") or "").upper().split(",")[0]
    if flags is None:
        return "unknown (no /proc/cpuinfo)"
    have = set(flags)
    ladder = [
        ("AMX-INT8", {"amx_tile", "amx_int8", "avx512f"}),
        ("AVX-512 VNNI", {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}),
        ("AVX-512", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
        ("AVX2 VNNI", {"avx2", "avx_vnni"}),
        ("AVX2", {"avx2", "fma"}),
        ("AVX", {"avx"}),
        ("SSE4.2", {"sse4_2"}),
    ]
    caps = {"COMPATIBLE": "SSE4.2", "SSE4_2": "SSE4.2", "AVX": "AVX", "AVX2": "AVX2", "AVX512": "AVX-512",
            "AVX512_E1": "AVX-512 VNNI", "AVX512_E4": "AMX-INT8", "AVX512_E5": "AMX-INT8"}
    names = [n for n, _ in ladder]
    limit = names.index(caps[cap]) if cap in caps else 0
    for name, needed in ladder[limit:]:
        if needed <= have:
            return name + (f" (capped by {cap})" if cap in caps else "")
    return "generic"


# -- CTranslate2's own report ---------------------------------------------------------------------

_ct2_lock = threading.Lock()
_ct2_dispatch: dict[str, Any] | None = None
_CT2_PATTERNS = {
    "cpu": re.compile(r"\] CPU: (.+)$"),
    "isa": re.compile(r"Selected ISA: (\S+)"),
    "mkl": re.compile(r"Use Intel MKL: (\S+)"),
    "sgemm_backend": re.compile(r"SGEMM backend: (.+)$"),
    "gemm_s16_backend": re.compile(r"GEMM_S16 backend: (.+)$"),
    "gemm_s8_backend": re.compile(r"GEMM_S8 backend: (.+)$"),
}


def parse_ct2_log(text: str) -> dict[str, Any]:
    """The dispatch facts in a CTranslate2 info log (``CT2_VERBOSE=1``); keys absent when not logged."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        for key, pattern in _CT2_PATTERNS.items():
            m = pattern.search(line)
            if m and key not in out:
                out[key] = m.group(1).strip()
    return out


def ct2_dispatch() -> dict[str, Any]:
    """What :func:`capture_ct2_dispatch` saw in this process, or a record saying why it saw nothing."""
    if _ct2_dispatch is None:
        return {"source": "not captured: no CTranslate2 model was loaded by voxproof in this process"}
    return dict(_ct2_dispatch)


def capture_ct2_dispatch(load: Callable[[], T]) -> T:
    """Call ``load`` (which loads a CTranslate2 model) and, the first time in this process, capture the
    dispatch report CTranslate2 logs at that moment (it logs it once per process, at info level, on its
    own stderr). Lines that are not CTranslate2's are written back to stderr."""
    global _ct2_dispatch
    with _ct2_lock:
        if _ct2_dispatch is not None:
            return load()
        import ctranslate2

        previous = ctranslate2.get_log_level()
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                ctranslate2.set_log_level(logging.INFO)
                result = load()
            finally:
                ctranslate2.set_log_level(previous)
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
        other = "".join(line + "\n" for line in text.splitlines()
                        if "[ctranslate2]" not in line or "[info]" not in line)
        if other:
            sys.stderr.write(other)
        facts = parse_ct2_log(text)
        if "isa" in facts:
            facts["source"] = "CTranslate2 info log at the first model load"
        else:
            facts = {"source": "not captured: CTranslate2 was initialised before voxproof loaded a model "
                               "(run with CT2_VERBOSE=1 to see its report)"}
        _ct2_dispatch = facts
        log.debug("CTranslate2 dispatch: %s", facts)
        return result


def probe_mkl_dispatch(model_dir: str, compute_type: str = "int8", timeout: float = 120.0) -> dict[str, Any]:
    """Decode one second of silence in a child process with ``CT2_VERBOSE=1 MKL_VERBOSE=1`` and read both
    libraries' own reports: CTranslate2's selected ISA and MKL's code path and CNR mode. Costs a model
    load (about 2 s); used by ``eval --repeat-check``, not by every run."""
    code = (
        "import sys, numpy as np, ctranslate2\n"
        "from faster_whisper import WhisperModel\n"
        "m = WhisperModel(sys.argv[1], device='cpu', compute_type=sys.argv[2], cpu_threads=1, "
        "local_files_only=True)\n"
        "list(m.transcribe(np.zeros(16000, np.float32), beam_size=1)[0])\n"
    )
    env = {**os.environ, "CT2_VERBOSE": "1", "MKL_VERBOSE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", code, model_dir, compute_type], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"source": f"probe failed: {exc}"}
    out = parse_ct2_log(proc.stderr + proc.stdout)
    banner = next((line for line in proc.stdout.splitlines() if line.startswith("MKL_VERBOSE oneMKL")), None)
    if banner:
        out["mkl_banner"] = banner.removeprefix("MKL_VERBOSE ").strip()
    cnr = re.search(r"CNR:(\S+)", proc.stdout)
    if cnr:
        out["mkl_cnr"] = cnr.group(1)
    s8 = [line.split()[1].split("(")[0] for line in proc.stdout.splitlines()
          if line.startswith("MKL_VERBOSE GEMM")]
    if s8:
        out["mkl_gemm_calls"] = sorted(set(s8))
    out["source"] = ("child process with CT2_VERBOSE=1 MKL_VERBOSE=1" if proc.returncode == 0
                     else f"child process exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return out


# -- comparing two runs -----------------------------------------------------------------------------

def runtime_record(*, threads: dict[str, Any], ct2: bool) -> dict[str, Any]:
    """The ``runtime`` section of a run's provenance: CPU flags, dispatch, threads, overriding env."""
    flags = cpu_flags()
    env = runtime_env()
    rec: dict[str, Any] = {"cpu_vendor": flags["vendor"], "cpu_flags": flags["flags"], "threads": threads,
                           "env": env}
    if ct2:
        rec["ctranslate2"] = ct2_dispatch()
        rec["mkl_code_path"] = {"value": mkl_code_path(flags["flags"], env),
                                "source": "derived from the CPU flags by MKL's dispatch order"}
    return rec


def isa_signature(provenance: dict[str, Any]) -> dict[str, Any] | None:
    """The dispatch facts of a run that decide its numbers, or None for a run recorded before they were."""
    rt = provenance.get("runtime")
    if not isinstance(rt, dict):
        return None
    sig: dict[str, Any] = {"cpu_flags": rt.get("cpu_flags")}
    ct2 = rt.get("ctranslate2")
    if isinstance(ct2, dict):
        sig["ctranslate2_isa"] = ct2.get("isa")
        sig["mkl_code_path"] = (rt.get("mkl_code_path") or {}).get("value")
    env = rt.get("env") or {}
    for key in ("CT2_FORCE_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"):
        if key in env:
            sig[key] = env[key]
    return sig


def machine_warnings(base: dict[str, Any], cand: dict[str, Any], labels: tuple[str, str] = ("A", "B")) -> list[str]:
    """Why the two runs' numbers may differ for reasons other than the model: different instruction
    sets (dispatch), different decode-path library versions, or an unrecorded ISA."""
    out: list[str] = []
    sa, sb = isa_signature(base), isa_signature(cand)
    missing = [lab for lab, s in zip(labels, (sa, sb)) if s is None]
    if len(missing) == 1:
        out.append(f"run {missing[0]} does not record its CPU instruction sets (made before voxproof recorded "
                   "them), so a difference from CPU dispatch cannot be ruled out")
    if sa is not None and sb is not None and "ctranslate2_isa" in sa and "ctranslate2_isa" in sb:
        keys = set(sa) | set(sb)
    elif sa is not None and sb is not None:  # CTranslate2 in at most one run: its dispatch does not differ between them
        keys = {"cpu_flags"}
    else:
        keys = set()
    if keys and any(sa.get(k) != sb.get(k) for k in keys):
        diffs = []
        for key in sorted(keys):
            if sa.get(key) != sb.get(key):
                if key == "cpu_flags":
                    fa, fb = set(sa.get(key) or ()), set(sb.get(key) or ())
                    diffs.append(f"CPU flags only in {labels[0]}: {','.join(sorted(fa - fb)) or '-'}; only in "
                                 f"{labels[1]}: {','.join(sorted(fb - fa)) or '-'}")
                else:
                    diffs.append(f"{key} {sa.get(key, 'unset')} vs {sb.get(key, 'unset')}")
        out.append("the runs ran on different instruction sets (" + "; ".join(diffs) + "): CTranslate2 and MKL "
                   "pick their int8/float kernels from the CPU, which changes rounding and can change decoded "
                   "words, so part of the difference may be the machine, not the model; rerun both on one "
                   "machine, or pin the kernels with MKL_CBWR=AVX2 and CT2_FORCE_CPU_ISA=AVX2")
    la = (base.get("backend") or {}).get("library_versions") or {}
    lb = (cand.get("backend") or {}).get("library_versions") or {}
    same_backend = (base.get("backend") or {}).get("name") == (cand.get("backend") or {}).get("name")
    changed = sorted(k for k in set(la) & set(lb) if la[k] != lb[k])
    if same_backend and changed:
        out.append("decode-path libraries differ: " + ", ".join(f"{k} {la[k]} vs {lb[k]}" for k in changed))
    return out
