"""The runner: evaluates one recogniser on one manifest under a list of conditions.

Each (utterance, condition) becomes one :class:`ResultRow`, committed to the run store as soon as it is
finished, so a killed run keeps its work and ``resume=True`` skips it. Anything that goes wrong with one
utterance (missing file, decode error, backend exception, timeout, empty reference) becomes an error row;
the run goes on. Workers are threads, each with its own backend instance from ``backend_factory``
(CTranslate2 and PocketSphinx release the GIL while decoding).
"""

from __future__ import annotations

import logging
import os
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from voxproof.audio.io import DEFAULT_LIMITS, AudioLimits
from voxproof.audio.signal import Audio
from voxproof.backends.base import Transcriber
from voxproof.errors import BackendError, EndpointRefused, RunError, UsageError, VoxproofError
from voxproof.manifest.utterance import Utterance, is_non_speech
from voxproof.options import bounded, check_ranges, options_dict
from voxproof.run.provenance import build_provenance, identity
from voxproof.run.records import CLEAN, STATUS_ERROR, STATUS_OK, ResultRow, id_filename
from voxproof.run.store import RunStore, store_path

log = logging.getLogger("voxproof.run")

DEFAULT_MAX_SECONDS = DEFAULT_LIMITS.max_seconds  # the decoder's shared safe default
DEFAULT_MAX_TEXT_CHARS = 20_000  # ~20 minutes of fast speech; a 20 MB transcript once took 2.8 GB to score
PACK_GAP_S = 1.0  # silence between packed clips
PACK_WINDOW_S = 28.0  # audio per packed window (Whisper's is 30 s)
PACK_GROUP = 32  # utterances one worker packs per call


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out. Defaults here are the CLI's defaults.

    ``max_seconds``: longest decoded utterance accepted (seconds); longer files become
    ``AudioTooLarge`` error rows, stopped while decoding. ``timeout``: wall seconds one utterance may
    take in the backend before it is recorded as a ``Timeout`` error row (``None``: no limit).
    ``features``: signal features stored on every row: ``basic`` (duration, level, loudness, SNR estimate,
    clipping, bandwidth, DC offset; ~1 % of real time), ``full`` (also the Silero VAD speech ratio, which
    costs about as much as Whisper tiny.en itself), ``none``, or ``auto`` (``full`` when the run has
    perturbation conditions, for the out-of-distribution view, else ``basic``).
    ``allow_url_host``: hosts manifest URLs may be fetched from (none by default: URL rows are
    ``AudioSourceRefused`` errors). ``max_text_chars``: longest reference or hypothesis scored; longer
    ones become ``TranscriptTooLong`` error rows (alignment cost grows with the product of the lengths).
    ``pack``: decode clips of up to ``pack_max_s`` seconds through the backend's ``transcribe_packed``
    (several clips share one 30 s window; a different measurement, recorded as such in provenance);
    longer clips are decoded one by one. A clip's ``processing_time`` is then its share of the shared
    call, by length.
    """

    workers: int = bounded(1, 1, 64)
    seed: int = bounded(0, 0, 2**32 - 1)
    timeout: float | None = bounded(None, 0.0, 86400.0, open_low=True, unit="seconds")
    max_seconds: float = bounded(DEFAULT_MAX_SECONDS, 0.0, 4 * 3600.0, open_low=True, unit="seconds")
    include_clean: bool = True
    features: Literal["auto", "basic", "full", "none"] = "auto"
    keep_audio: bool = False
    allow_url_host: tuple[str, ...] = ()
    max_text_chars: int = bounded(DEFAULT_MAX_TEXT_CHARS, 1, 10_000_000)
    pack: bool = False
    pack_max_s: float = bounded(8.0, 0.0, PACK_WINDOW_S - PACK_GAP_S, open_low=True, unit="seconds")

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.pack and self.timeout is not None:
            raise UsageError("--pack decodes several clips in one call, so a per-utterance --timeout cannot "
                             "apply; drop one of them")
        if self.features not in ("auto", "basic", "full", "none"):
            raise UsageError(f"features must be auto, basic, full or none, got {self.features!r}")
        if isinstance(self.max_text_chars, bool) or not isinstance(self.max_text_chars, int):
            raise UsageError(f"max_text_chars must be an integer, got {self.max_text_chars!r}")
        self.audio_limits()  # validates allow_url_host and max_seconds

    def audio_limits(self) -> AudioLimits:
        """The decoder limits of this run: the shared default with this run's duration and URL hosts."""
        return DEFAULT_LIMITS.replace(max_seconds=self.max_seconds, url_hosts=tuple(self.allow_url_host))

    def feature_level(self, has_conditions: bool) -> str:
        if self.features == "auto":
            return "full" if has_conditions else "basic"
        return self.features


class ConditionLike(Protocol):
    name: str

    def apply(self, audio: Audio, seed: int, context: Any) -> Audio: ...

    def to_spec(self) -> dict[str, Any]: ...


@dataclass
class Progress:
    """Counts handed to a progress callback after each finished row."""

    total: int
    done: int = 0
    skipped: int = 0
    errors: int = 0
    audio_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    rows_written: int
    rows_skipped: int
    errors: int
    total_rows: int
    resources: dict[str, Any]


def _condition_seed(run_seed: int, utt_id: str, condition: str) -> int:
    from voxproof.perturb import condition_seed

    return condition_seed(run_seed, utt_id, condition)


def _perturb_context(utterances: Sequence[Utterance], sample_rate: int, limits: AudioLimits) -> Any:
    from voxproof.perturb import PerturbContext

    return PerturbContext.from_utterances(
        list(utterances), lambda u: _load(u, sample_rate, limits)
    )


def _load(utt: Utterance, sample_rate: int, limits: AudioLimits) -> Audio:
    from voxproof.audio.io import load_audio

    return load_audio(utt.audio, sample_rate=sample_rate, offset=utt.offset, duration=utt.duration, limits=limits)


def _features(audio: Audio, level: str) -> dict[str, float]:
    from voxproof.audio.features import signal_features

    return {k: v for k, v in signal_features(audio, vad=level == "full").items() if v is not None}


def _error_row(utt: Utterance, condition: str, exc: BaseException | str, **extra: Any) -> ResultRow:
    if isinstance(exc, str):
        etype, message = exc, extra.pop("message", "")
    else:
        etype, message = type(exc).__name__, str(exc)
    return ResultRow(
        utt_id=utt.id, condition=condition, status=STATUS_ERROR, reference=extra.pop("reference", utt.text),
        error_type=etype, error_message=message[:2000], speaker=utt.speaker, tags=dict(utt.tags), **extra,
    )


class _Job:
    """Everything a worker needs to evaluate one utterance under its pending conditions."""

    __slots__ = ("conditions", "index", "utt")

    def __init__(self, index: int, utt: Utterance, conditions: list[ConditionLike | None]):
        self.index = index
        self.utt = utt
        self.conditions = conditions


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run cleanly: the utterances in progress were finished (or dropped on a second
    Ctrl-C), the model's threads stopped, the store closed. ``rows_done`` of ``total_rows`` are stored;
    ``resume_hint`` is how to continue (set by the command that started the run)."""

    def __init__(self, run_dir: Path, rows_done: int, total_rows: int):
        super().__init__(f"{rows_done} of {total_rows} rows of {run_dir} are stored")
        self.run_dir = run_dir
        self.rows_done = rows_done
        self.total_rows = total_rows
        self.resume_hint = f"continue with --resume -o {run_dir}"


@dataclass(frozen=True)
class _Context:
    """What every worker shares: options, the perturbation context, where kept audio goes, the feature
    level, and the backend calls left running by a timeout (joined before the model is closed)."""

    options: RunOptions
    perturb: Any
    run_dir: Path
    level: str
    lingering: list[threading.Thread] = field(default_factory=list)


class _Pool:
    """Worker threads, each with its own backend, taking jobs from ``work`` and putting
    ``(row, position)`` or a fatal exception on ``results``. Any unexpected exception while evaluating an
    utterance becomes one ``InternalError`` row per pending condition: a worker never dies silently."""

    def __init__(self, factory: Callable[[], Transcriber], first: Transcriber, work: queue.Queue, ctx: _Context,
                 n_workers: int):
        self.factory = factory
        self.work = work
        self.ctx = ctx
        self.results: queue.Queue[tuple[ResultRow, int] | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.backends: list[Transcriber] = [first]
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(first if i == 0 else None,), daemon=True, name=f"vp-worker-{i}")
            for i in range(n_workers)
        ]
        for t in self.threads:
            t.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def _run(self, backend: Transcriber | None) -> None:
        try:
            if backend is None:
                backend = self.factory()
                with self._lock:
                    self.backends.append(backend)
        except BaseException as exc:  # a worker that cannot load its model stops the run cleanly
            self.results.put(exc)
            return
        while not self.stop.is_set():
            try:
                job = self.work.get_nowait()
            except queue.Empty:
                return
            group = job if isinstance(job, list) else [job]
            try:
                if isinstance(job, list):
                    pairs = _evaluate_packed(backend, job, self.ctx)
                else:
                    pairs = [(row, job.index) for row in _evaluate(backend, job, self.ctx)]
            except EndpointRefused as exc:  # every further request would be refused too
                self.results.put(exc)
                return
            except Exception as exc:  # a bug or an unforeseen library failure: these utterances' error rows
                log.error("unexpected %s while evaluating %s; recorded as InternalError rows",
                          type(exc).__name__, ", ".join(repr(j.utt.id) for j in group[:3]), exc_info=True)
                message = f"{type(exc).__name__}: {exc} (a voxproof bug: please report it)"
                pairs = [(_error_row(j.utt, _name(c), "InternalError", message=message), j.index)
                         for j in group for c in j.conditions]
            except BaseException as exc:
                self.results.put(exc)
                return
            for pair in pairs:
                self.results.put(pair)

    def shutdown(self, commit: Callable[[ResultRow, int], None] | None,
                 interrupts: _Interrupts | None = None) -> None:
        """Stop taking jobs, wait for every worker (committing their last rows with ``commit``, unless it
        is None or Ctrl-C is pressed again), wait for timed-out backend calls, then close the backends,
        which stops the model's own threads (CTranslate2's pool, ONNX sessions, HTTP clients)."""
        self.stop.set()
        seen = interrupts.presses if interrupts else 0
        while self.alive() or not self.results.empty():
            presses = interrupts.presses if interrupts else 0
            if presses > seen:
                seen = presses
                if presses == 2:
                    commit = None
                    log.warning("dropping the utterances in progress; waiting for the model to return "
                                "(Ctrl-C again to stop waiting)")
                else:
                    log.warning("not waiting for the model any longer")
                    return
            try:
                item = self.results.get(timeout=0.2)
            except queue.Empty:
                continue
            if commit is not None and not isinstance(item, BaseException):
                commit(*item)
        for t in list(self.ctx.lingering):
            t.join(timeout=_LINGER_SECONDS)
            if t.is_alive():
                log.warning("a timed-out backend call is still running; the model is left open")
                return
        for backend in self.backends:
            _close_quietly(backend)  # best effort: the rows are already stored


class _Interrupts:
    """Counts Ctrl-C presses while a run is in progress. A SIGINT handler (installed only in the main
    thread) increments ``presses`` instead of raising KeyboardInterrupt at an arbitrary point, such as
    inside a queue's lock or a store commit, which can leave a lock released twice."""

    def __init__(self) -> None:
        self.presses = 0
        self._previous: Any = None
        self._installed = False

    def _press(self, signum: int, frame: Any) -> None:
        self.presses += 1

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._press)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False


_LINGER_SECONDS = 30.0  # how long a finished run waits for a backend call its timeout gave up on


def run_eval(
    backend_factory: Callable[[], Transcriber],
    utterances: Sequence[Utterance],
    run_dir: str | Path,
    *,
    options: RunOptions = RunOptions(),
    conditions: Sequence[ConditionLike] = (),
    normalizer: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Evaluate ``backend_factory()`` on ``utterances`` under clean + ``conditions`` into ``run_dir``.

    ``normalizer`` and ``dataset`` are provenance dicts (name/version; hash/source/count). Returns
    counts of rows written, skipped (already done) and errors. Raises :class:`RunError` when resuming
    a run made with other settings, or creating over an existing run without ``resume``.
    """
    run_dir = Path(run_dir)
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise UsageError(f"utterance ids must be unique; repeated: {', '.join(dup)}")
    all_conditions: list[ConditionLike | None] = ([None] if options.include_clean else []) + list(conditions)
    if not all_conditions:
        raise UsageError("nothing to run: the clean condition is off and no perturbation was given")
    cond_names = [CLEAN if c is None else c.name for c in all_conditions]
    cond_specs = [{"name": CLEAN, "chain": []} if c is None else c.to_spec() for c in all_conditions]

    wall_start = time.monotonic()
    loadavg_start = list(os.getloadavg())
    load_start = time.monotonic()
    try:
        first_backend = backend_factory()
    except VoxproofError:
        raise
    except Exception as exc:  # third-party load failure
        raise BackendError(f"could not load the backend: {type(exc).__name__}: {exc}") from exc
    model_load_seconds = time.monotonic() - load_start
    info = first_backend.info()
    if options.pack and not callable(getattr(first_backend, "transcribe_packed", None)):
        _close_quietly(first_backend)
        raise UsageError(f"--pack needs a backend that packs clips into shared windows (whisper); "
                         f"{info.name} decodes clips one by one: drop --pack")
    provenance = build_provenance(
        backend=info.to_dict(),
        dataset=dataset or {},
        normalizer=normalizer or {},
        seed=options.seed,
        run_options=options_dict(options),
        conditions=cond_specs,
        runtime=_runtime(first_backend, options),
        measurement=_measurement(options),
    )

    if resume and store_path(run_dir).exists():
        store = RunStore.open(run_dir)
        old, new = identity(store.provenance), identity(provenance)
        if old != new:
            differing = sorted(k for k in new if old.get(k) != new.get(k))
            store.close()
            raise RunError(
                f"cannot resume {run_dir}: it was made with different {', '.join(differing)}; "
                "use a new --out directory"
            )
    else:
        store = RunStore.create(run_dir, provenance)
    store.set_conditions(zip(cond_names, cond_specs))
    store.set_meta("status", "running")

    done = store.done_keys()
    jobs: list[_Job] = []
    skipped = 0
    for index, utt in enumerate(utterances):
        pending = [c for c, n in zip(all_conditions, cond_names) if (utt.id, n) not in done]
        skipped += len(all_conditions) - len(pending)
        if pending:
            jobs.append(_Job(index, utt, pending))
    total_rows = len(utterances) * len(all_conditions)
    state = Progress(total=total_rows, done=skipped, skipped=skipped)
    context = _perturb_context(utterances, info_rate(first_backend), options.audio_limits()) if conditions else None

    level = options.feature_level(bool(conditions))
    for condition in conditions:
        reason = getattr(condition, "unavailable_reason", lambda: None)()
        if reason:
            log.warning("condition %s cannot run here (%s): its rows will be error rows", condition.name, reason)
    work: queue.Queue[_Job | list[_Job] | None] = queue.Queue()
    if options.pack:
        for k in range(0, len(jobs), PACK_GROUP):
            work.put(jobs[k:k + PACK_GROUP])
    else:
        for job in jobs:
            work.put(job)
    ctx = _Context(options, context, run_dir, level)
    written = 0
    expected = sum(len(j.conditions) for j in jobs)

    def commit(row: ResultRow, position: int) -> None:
        nonlocal written
        store.add_row(row, position)
        written += 1
        state.done += 1
        if not row.ok:
            state.errors += 1
        state.audio_seconds += row.audio_duration or 0.0
        if progress is not None:
            progress(state)

    failure: BaseException | None = None
    interrupts = _Interrupts()
    with interrupts:  # from here on Ctrl-C is counted, never raised inside a lock or a commit
        pool = _Pool(backend_factory, first_backend, work, ctx, max(1, min(options.workers, work.qsize())))
        try:
            while written < expected and not interrupts.presses:
                try:
                    item = pool.results.get(timeout=0.2)
                except queue.Empty:
                    if not pool.alive() and pool.results.empty():
                        break
                    continue
                if isinstance(item, BaseException):
                    failure = item
                    break
                commit(*item)
            if interrupts.presses:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            # Ctrl-C: let every worker finish the utterance it is on and commit its rows, stop the model's
            # threads, close the store; the caller prints how to resume.
            log.warning("interrupted: finishing the utterances in progress (Ctrl-C again to drop them)")
            interrupts.presses = max(interrupts.presses, 1)
            pool.shutdown(commit, interrupts)
            store.set_meta("status", "interrupted")
            rows_done = store.count_rows()
            store.close()
            raise RunInterrupted(run_dir, rows_done, total_rows) from None
        except BaseException:
            pool.shutdown(None)
            store.close()
            raise
        pool.shutdown(None)
    n_workers = len(pool.threads)
    if failure is None and written < expected:
        failure = RunError(f"the run stopped after {written} of {expected} rows without an error from any "
                           f"worker; the stored rows are kept: rerun with --resume -o {run_dir}")
    if failure is not None:
        store.set_meta("status", "incomplete")
        store.close()
        if isinstance(failure, VoxproofError):
            raise failure
        raise BackendError(f"a worker stopped with {type(failure).__name__}: {failure}") from failure

    usage = resource.getrusage(resource.RUSAGE_SELF)
    resources = {
        "load_average": {"start": loadavg_start, "end": list(os.getloadavg())},
        "wall_seconds": time.monotonic() - wall_start,
        "model_load_seconds": model_load_seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "workers": n_workers,
        "resumed": bool(resume and skipped),
    }
    previous = store.meta("resources") or {}
    if resume and previous:
        resources["previous_sessions"] = previous.get("previous_sessions", []) + [
            {k: v for k, v in previous.items() if k != "previous_sessions"}
        ]
    store.set_meta("resources", resources)
    store.set_meta("status", "complete" if store.count_rows() == total_rows else "incomplete")
    all_errors = store.count_rows(status=STATUS_ERROR)
    store.close()
    return RunResult(run_dir, written, skipped, all_errors, total_rows, resources)


def info_rate(backend: Transcriber) -> int:
    return int(getattr(backend, "sample_rate", 16000))


def _evaluate(backend: Transcriber, job: _Job, ctx: _Context) -> list[ResultRow]:
    """Rows for one utterance: decode it once, then each pending condition."""
    utt = job.utt
    options = ctx.options
    prep_start = time.monotonic()
    if utt.text is not None and len(utt.text) > options.max_text_chars:
        message = (f"the reference is {len(utt.text):,} characters, over the {options.max_text_chars:,}-character "
                   "limit (--max-text-chars); split the utterance or fix the transcript")
        return [_error_row(utt, _name(c), "TranscriptTooLong", message=message,
                           reference=utt.text[: options.max_text_chars]) for c in job.conditions]
    try:
        clean = _load(utt, info_rate(backend), options.audio_limits())
    except VoxproofError as exc:
        return [_error_row(utt, _name(c), exc) for c in job.conditions]
    except Exception as exc:  # an unexpected decoder failure is still one utterance's error
        return [_error_row(utt, _name(c), "DecodeError", message=f"{type(exc).__name__}: {exc}") for c in job.conditions]
    load_time = time.monotonic() - prep_start
    rows = []
    for condition in job.conditions:
        rows.append(_evaluate_condition(backend, utt, clean, condition, ctx, load_time))
    return rows


def _name(condition: ConditionLike | None) -> str:
    return CLEAN if condition is None else condition.name


def _evaluate_condition(
    backend: Transcriber,
    utt: Utterance,
    clean: Audio,
    condition: ConditionLike | None,
    ctx: _Context,
    load_time: float,
) -> ResultRow:
    prepared = _prepare(utt, clean, condition, ctx, load_time)
    if isinstance(prepared, ResultRow):
        return prepared
    try:
        cpu_start = time.process_time()
        start = time.perf_counter()
        transcript = _transcribe(backend, prepared.audio, ctx.options.timeout, ctx.lingering)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    except EndpointRefused:
        raise
    except Exception as exc:
        return _backend_error_row(utt, prepared, exc)
    return _finish(utt, prepared, transcript, elapsed, cpu, ctx.options)


@dataclass(frozen=True)
class _Prepared:
    """One utterance under one condition, ready for the model."""

    name: str
    audio: Audio
    chain: tuple[dict[str, Any], ...]
    features: dict[str, float]
    prep_time: float


def _prepare(utt: Utterance, clean: Audio, condition: ConditionLike | None, ctx: _Context,
             load_time: float) -> _Prepared | ResultRow:
    """The audio the model hears (perturbed, kept if asked) with its features, or an error row."""
    options, context, level = ctx.options, ctx.perturb, ctx.level
    name = _name(condition)
    chain: tuple[dict[str, Any], ...] = ()
    prep_start = time.monotonic()
    audio = clean
    if condition is not None:
        spec = condition.to_spec()
        chain = tuple(spec.get("chain", ()))
        try:
            audio = condition.apply(clean, _condition_seed(options.seed, utt.id, name),
                                    None if context is None else context.for_utterance(utt))
        except VoxproofError as exc:
            return _error_row(utt, name, exc, perturbation=chain)
        except Exception as exc:
            return _error_row(utt, name, "PerturbationError", message=f"{type(exc).__name__}: {exc}",
                              perturbation=chain)
        if options.keep_audio:
            _keep(ctx.run_dir, name, utt.id, audio)
    if len(audio.samples) == 0:
        return _error_row(utt, name, "EmptyAudio", message="the audio has no samples", perturbation=chain)
    features: dict[str, float] = {}
    if level != "none":
        try:
            features = _features(audio, level)
        except Exception as exc:  # features are diagnostics: never lose the row for them
            log.warning("features failed for %s/%s: %s", utt.id, name, exc)
    return _Prepared(name, audio, chain, features, time.monotonic() - prep_start + load_time)


def _backend_error_row(utt: Utterance, p: _Prepared, exc: Exception) -> ResultRow:
    if isinstance(exc, VoxproofError):
        return _error_row(utt, p.name, exc, perturbation=p.chain, audio_duration=p.audio.duration,
                          features=p.features)
    return _error_row(utt, p.name, "BackendError", message=f"{type(exc).__name__}: {exc}",
                      perturbation=p.chain, audio_duration=p.audio.duration, features=p.features)


def _finish(utt: Utterance, p: _Prepared, transcript: Any, elapsed: float, cpu: float, options: RunOptions,
            extra: dict[str, Any] | None = None) -> ResultRow:
    """The result row of a decoded utterance."""
    name, audio, chain, features = p.name, p.audio, p.chain, p.features
    if len(transcript.text) > options.max_text_chars:
        return _error_row(utt, name, "TranscriptTooLong", perturbation=chain, audio_duration=audio.duration,
                          features=features, message=f"the hypothesis is {len(transcript.text):,} characters, over "
                          f"the {options.max_text_chars:,}-character limit (--max-text-chars); not scored")
    extras: dict[str, Any] = {"prep_time": p.prep_time, **(extra or {})}
    if options.workers == 1:
        # process CPU seconds of the call (all the model's threads); with several workers they overlap
        extras["cpu_seconds"] = cpu
    if not transcript.text.strip():
        extras["empty_hypothesis"] = True
    if (utt.text is None or not utt.text.strip()) and not is_non_speech(utt.tags):
        return ResultRow(
            utt_id=utt.id, condition=name, status=STATUS_ERROR, reference=utt.text,
            hypothesis=transcript.text, transcript=transcript, audio_duration=audio.duration,
            processing_time=elapsed, error_type="EmptyReference",
            error_message="the reference transcript is empty, so this utterance cannot be scored",
            speaker=utt.speaker, tags=dict(utt.tags), perturbation=chain, features=features, extras=extras,
        )
    return ResultRow(  # a non-speech clip is scored with its empty reference (metrics.nonspeech)
        utt_id=utt.id, condition=name, status=STATUS_OK, reference=utt.text or "", hypothesis=transcript.text,
        transcript=transcript, audio_duration=audio.duration, processing_time=elapsed, speaker=utt.speaker,
        tags=dict(utt.tags), perturbation=chain, features=features, extras=extras,
    )


def _evaluate_packed(backend: Any, jobs: list[_Job], ctx: _Context) -> list[tuple[ResultRow, int]]:
    """Rows for a group of utterances in pack mode: per condition, clips of up to ``pack_max_s`` go
    through ``backend.transcribe_packed`` in one call (its time and CPU shared out by clip length plus
    gap), longer ones through :func:`_evaluate_condition` as usual."""
    options = ctx.options
    out: list[tuple[ResultRow, int]] = []
    by_condition: dict[str, list[tuple[_Job, _Prepared]]] = {}
    for job in jobs:
        utt = job.utt
        if utt.text is not None and len(utt.text) > options.max_text_chars:
            out += [(row, job.index) for row in _evaluate(backend, job, ctx)]
            continue
        prep_start = time.monotonic()
        try:
            clean = _load(utt, info_rate(backend), options.audio_limits())
        except VoxproofError as exc:
            out += [(_error_row(utt, _name(c), exc), job.index) for c in job.conditions]
            continue
        except Exception as exc:
            out += [(_error_row(utt, _name(c), "DecodeError", message=f"{type(exc).__name__}: {exc}"), job.index)
                    for c in job.conditions]
            continue
        load_time = time.monotonic() - prep_start
        for condition in job.conditions:
            prepared = _prepare(utt, clean, condition, ctx, load_time)
            if isinstance(prepared, ResultRow):
                out.append((prepared, job.index))
            elif prepared.audio.duration > options.pack_max_s:
                out.append((_evaluate_condition(backend, utt, clean, condition, ctx, load_time), job.index))
            else:
                by_condition.setdefault(prepared.name, []).append((job, prepared))
    for items in by_condition.values():
        cpu_start = time.process_time()
        start = time.perf_counter()
        try:
            transcripts = backend.transcribe_packed([p.audio for _, p in items], gap_seconds=PACK_GAP_S,
                                                    window_seconds=PACK_WINDOW_S)
        except EndpointRefused:
            raise
        except Exception as exc:
            out += [(_backend_error_row(job.utt, p, exc), job.index) for job, p in items]
            continue
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        weights = [p.audio.duration + PACK_GAP_S for _, p in items]
        total = sum(weights)
        for (job, p), transcript, w in zip(items, transcripts, weights):
            share = w / total
            extra = {"packed": True, "packed_call_seconds": elapsed, "packed_call_clips": len(items)}
            out.append((_finish(job.utt, p, transcript, elapsed * share, cpu * share, options, extra), job.index))
    return out


def _runtime(backend: Any, options: RunOptions) -> dict[str, Any]:
    """The backend's runtime record (CPU dispatch, threads) plus the run's worker count."""
    get = getattr(backend, "runtime_info", None)
    record: dict[str, Any] = {}
    if callable(get):
        try:
            record = dict(get())
        except Exception as exc:  # provenance detail: never fail a run for it
            log.warning("could not read the backend's runtime facts: %s", exc)
    if not record:
        from voxproof.run.cpu import runtime_record

        record = runtime_record(threads={}, ct2=False)
    record.setdefault("threads", {})["workers"] = options.workers
    return record


def _measurement(options: RunOptions) -> dict[str, Any]:
    if not options.pack:
        return {"mode": "per-clip"}
    return {"mode": "packed", "pack_max_s": options.pack_max_s, "gap_s": PACK_GAP_S, "window_s": PACK_WINDOW_S,
            "group": PACK_GROUP}


def _close_quietly(backend: Any) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            log.warning("closing the backend failed: %s", exc)


class Timeout(BackendError):
    """The backend took longer than the run's per-utterance timeout."""


def _transcribe(backend: Transcriber, audio: Audio, timeout: float | None, lingering: list[threading.Thread]):
    if timeout is None:
        return backend.transcribe(audio)
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = backend.transcribe(audio)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=call, daemon=True, name="vp-call")
    t.start()
    t.join(timeout)
    if t.is_alive():
        # The call cannot be interrupted; it finishes in the background and its result is dropped.
        lingering.append(t)  # list.append is atomic: several workers may time out at once
        raise Timeout(f"no result within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def kept_audio_path(run_dir: Path, condition: str, utt_id: str) -> Path:
    """Where ``--keep-audio`` writes an utterance's audio: ``RUN/audio/CONDITION/ID.wav``, both names
    encoded by :func:`~voxproof.run.records.id_filename`, so no id leaves ``RUN/audio``."""
    return run_dir / "audio" / id_filename(condition) / id_filename(utt_id, ".wav")


def _keep(run_dir: Path, condition: str, utt_id: str, audio: Audio) -> None:
    import soundfile as sf

    path = kept_audio_path(run_dir, condition, utt_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio.samples, audio.sample_rate, subtype="PCM_16")
    except (OSError, RuntimeError) as exc:  # a full disk must not cost the row; say so loudly
        log.warning("could not keep the audio of %r (%s) at %s: %s", utt_id, condition, path, exc)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
