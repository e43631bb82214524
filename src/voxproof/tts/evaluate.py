"""TTS evaluation stage 5: synthesise every prompt, score it, store one row per prompt.

``TtsScorer`` holds the shared judges (recogniser, normaliser, voice-activity detector, MOS predictor,
detector thresholds) and turns one clip into a :class:`ResultRow`. ``evaluate_system`` runs one
synthesiser over the prompts into ``OUT/<system>/run.sqlite`` (condition ``tts``), committing each row
as it finishes; a rerun skips finished prompts. ``evaluate_floor`` runs the same scoring on real
recordings (condition ``recorded``) to show the recogniser's error floor and the MOS predictor's
ceiling on human speech.

Synthesis time is wall time of ``synthesize`` after one untimed warm-up call; its CPU time (process
threads + child processes) is kept too (``features['cpu_rtf']``), as wall time depends on what else
the machine runs. Row layout: ``utt_id`` = prompt id, ``reference`` = the expected form the transcript was scored
against, ``hypothesis`` = the raw ASR text, ``processing_time`` = synthesis seconds, ``features`` =
MOS, timing and detector values, ``extras['failures']`` = every detector's flag. A synthesiser
exception gives an ``error`` row with ``extras['failures']['synthesis_error'] = True``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from voxproof.audio.signal import Audio
from voxproof.backends.base import Synthesizer, Transcriber, Transcript
from voxproof.errors import DataError, RunError, VoxproofError
from voxproof.run.records import STATUS_ERROR, STATUS_OK, ResultRow
from voxproof.run.store import RunStore, store_path
from voxproof.tts.activity import SpeechDetector
from voxproof.tts.detectors import FAILURE_KINDS, DetectorOptions, detect_failures
from voxproof.tts.intelligibility import score_intelligibility, timing
from voxproof.tts.prompts import Prompt, prompts_hash

log = logging.getLogger("voxproof.tts.evaluate")

TTS_CONDITION = "tts"
FLOOR_CONDITION = "recorded"
FLOOR_SYSTEM = "floor"
RESYNTH_CONDITION = "resynth"


@dataclass(frozen=True)
class TtsEvalOptions:
    """Settings of a TTS evaluation (the CLI flags of ``voxproof tts-eval`` mirror these).

    ``asr``: recogniser backend judging intelligibility; ``normalizer``: text normaliser for WER;
    ``vad``: ``silero`` or ``energy``; ``mos``: run DNSMOS; ``plcmos``: also run PLCMOS v2 (needs
    ``mos``; off by default: about 0.07 s of CPU per second of audio, a fifth to a half of DNSMOS's cost); ``keep_audio``: write each clip to
    ``OUT/<system>/audio/<id>.wav`` (the HTML report plays the worst ones); ``seed``, ``n_resamples``,
    ``level``: bootstrap settings of every interval and paired test; ``speaker_ref``: recordings of the
    target voice (manifest or folder): each clip then gets its speaker similarity to them (needs
    ``pip install --no-deps resemblyzer``), using the first ``speaker_ref_limit`` recordings.
    """

    asr: str = "whisper"
    normalizer: str = "whisper-en"
    vad: Literal["silero", "energy"] = "silero"
    mos: bool = True
    personalized_mos: bool = False
    plcmos: bool = False
    keep_audio: bool = True
    seed: int = 0
    n_resamples: int = 1000
    level: float = 0.95
    speaker_ref: str = ""
    speaker_ref_limit: int = 20

    def __post_init__(self) -> None:
        if not 1 <= self.speaker_ref_limit <= 200:
            raise ValueError(f"speaker_ref_limit must be in 1..200, got {self.speaker_ref_limit}")
        if self.plcmos and not self.mos:
            raise ValueError("plcmos runs with the MOS predictors: drop --no-mos or drop --plcmos")
        if self.vad not in ("silero", "energy"):
            raise ValueError(f"vad={self.vad!r} is not one of silero, energy")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {self.n_resamples}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be between 0 and 1, got {self.level}")


@dataclass(frozen=True)
class Progress:
    """One finished item, handed to a progress callback."""

    system: str
    done: int
    total: int
    skipped: int
    item_id: str
    status: str


class TtsScorer:
    """The judges shared by every system and the floor: recogniser, normaliser, VAD, MOS, detectors."""

    def __init__(
        self,
        asr: Transcriber | None,
        normalizer,
        *,
        speech: SpeechDetector | None = None,
        mos=None,
        detector_options: DetectorOptions = DetectorOptions(),  # noqa: B008 - frozen, safe to share
        speaker=None,
    ):
        self.speaker = speaker
        self.asr = asr
        self.normalizer = normalizer
        self.speech = speech or SpeechDetector()
        self.mos = mos
        self.detector_options = detector_options

    @classmethod
    def from_options(cls, options: TtsEvalOptions,
                     detector_options: DetectorOptions = DetectorOptions(),  # noqa: B008 - frozen
                     asr_pairs: Sequence[str] = ()) -> TtsScorer:
        """Load the recogniser, normaliser, VAD and (if ``options.mos``) DNSMOS named by ``options``."""
        from voxproof.backends import load_backend
        from voxproof.metrics.normalize import get_normalizer

        asr = load_backend(options.asr, kind="asr", pairs=list(asr_pairs))
        mos = None
        if options.mos:
            from voxproof.tts.mos import DnsmosPredictor, MosOptions

            mos = DnsmosPredictor(MosOptions(personalized=options.personalized_mos, plcmos=options.plcmos))
        speaker = None
        if options.speaker_ref:
            from voxproof.tts.speaker import SpeakerJudge

            speaker = SpeakerJudge.from_source(options.speaker_ref, limit=options.speaker_ref_limit)
        return cls(asr, get_normalizer(options.normalizer), speech=SpeechDetector(method=options.vad),
                   mos=mos, detector_options=detector_options, speaker=speaker)

    def describe(self) -> dict[str, Any]:
        """Provenance of the judges: recorded in every run they score."""
        return {
            "asr": None if self.asr is None else self.asr.info().to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "vad": self.speech.method,
            "mos": None if self.mos is None else self.mos.info(),
            "detectors": asdict(self.detector_options),
            **({"speaker": self.speaker.describe()} if self.speaker is not None else {}),
        }

    def transcribe(self, audio: Audio) -> Transcript:
        """The recogniser's transcript; empty audio gives an empty transcript without a model call."""
        if self.asr is None:
            raise VoxproofError("no recogniser configured for intelligibility scoring")
        if audio.samples.size == 0:
            return Transcript("")
        return self.asr.transcribe(audio.resampled(self.asr.sample_rate))

    def score(
        self,
        item_id: str,
        audio: Audio,
        expected: Sequence[str],
        *,
        condition: str,
        synthesis_seconds: float | None = None,
        expected_sample_rate: int | None = None,
        language: str = "en",
        tags: dict[str, str] | None = None,
        extras: dict[str, Any] | None = None,
        speaker: str | None = None,
    ) -> ResultRow:
        """One clip judged: transcript, WER/CER counts against the best expected form, timing, MOS and
        every detector. Recogniser or predictor failures give an ``error`` row (``ScoringError``)."""
        activity = self.speech.detect(audio)
        try:
            transcript = self.transcribe(audio)
            intel = score_intelligibility(tuple(expected), transcript.text, self.normalizer)
            mos = None
            if self.mos is not None:
                mos = self.mos.score(audio, speech_seconds=activity.speech_seconds, language=language)
        except VoxproofError as exc:
            return ResultRow(
                utt_id=item_id, condition=condition, status=STATUS_ERROR, reference=expected[0],
                audio_duration=audio.duration, processing_time=synthesis_seconds,
                error_type="ScoringError", error_message=f"{type(exc).__name__}: {exc}"[:2000],
                speaker=speaker, tags=dict(tags or {}),
                extras={**(extras or {}), "failures": {}, "scoring_error": True},
            )
        detections = detect_failures(
            audio, activity, expected[intel.form_index],
            reference_words=intel.reference_norm.split(), hypothesis_words=intel.hypothesis_norm.split(),
            expected_sample_rate=expected_sample_rate, options=self.detector_options,
        )
        times = timing(expected[intel.form_index], audio.duration, activity.span, synthesis_seconds)
        features: dict[str, float] = dict(times.features())
        cpu = (extras or {}).get("synthesis_cpu_seconds")
        if cpu is not None and audio.duration > 0:
            features["cpu_rtf"] = cpu / audio.duration
        features["wer"] = intel.wer if intel.ref_words else float(intel.hyp_words > 0)
        features["cer"] = intel.cer if intel.chars.ref_len else float(intel.chars.hyp_len > 0)
        for d in detections:
            if d.value is not None:
                features[f"det_{d.kind}"] = float(d.value)
        if mos is not None:
            features.update(mos.features())
        voice = self.speaker.score(audio) if self.speaker is not None else None
        if voice is not None:
            features["spk_sim"] = voice.similarity
        failures = {kind: False for kind in FAILURE_KINDS}
        failures.update({d.kind: d.flagged for d in detections})
        row_extras = {
            **(extras or {}),
            "expected": list(expected),
            "form_index": intel.form_index,
            "reference_norm": intel.reference_norm,
            "hypothesis_norm": intel.hypothesis_norm,
            "words": intel.words.to_dict(),
            "chars": intel.chars.to_dict(),
            "sample_rate": audio.sample_rate,
            "speech_segments": [list(s) for s in activity.segments],
            "failures": failures,
            "failure_details": {d.kind: d.detail for d in detections if d.flagged},
            "mos_warnings": [] if mos is None else list(mos.warnings),
            "mos_scored": mos is not None,
            **({"speaker_embedding": [round(float(v), 5) for v in voice.embedding]} if voice is not None else {}),
        }
        return ResultRow(
            utt_id=item_id, condition=condition, status=STATUS_OK, reference=intel.reference,
            hypothesis=transcript.text, transcript=transcript, audio_duration=audio.duration,
            processing_time=synthesis_seconds, speaker=speaker, tags=dict(tags or {}),
            features={k: float(v) for k, v in features.items()}, extras=row_extras,
        )


def _open_or_create(run_dir: Path, provenance: dict[str, Any], resume: bool) -> RunStore:
    from voxproof.run.provenance import identity

    if store_path(run_dir).exists():
        if not resume:
            raise RunError(f"{run_dir} already holds a run; rerun with resume or choose another output directory")
        store = RunStore.open(run_dir)
        old, new = _tts_identity(store.provenance, identity), _tts_identity(provenance, identity)
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            store.close()
            raise RunError(
                f"{run_dir} was made with other settings ({', '.join(changed)} differ); "
                "choose another output directory to evaluate these settings"
            )
        return store
    return RunStore.create(run_dir, provenance)


def _tts_identity(provenance: dict[str, Any], identity: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    out = identity(provenance)
    judges = dict((provenance.get("run_options") or {}).get("judges") or {})
    if judges.get("asr"):
        judges["asr"] = {k: v for k, v in judges["asr"].items() if k != "library_versions"}
    out["judges"] = judges
    return out


def _provenance(info: dict[str, Any], dataset: dict[str, Any], scorer: TtsScorer, options: TtsEvalOptions,
                condition: str) -> dict[str, Any]:
    from voxproof.run.provenance import build_provenance

    return build_provenance(
        backend=info, dataset=dataset, normalizer=scorer.normalizer.to_dict(), seed=options.seed,
        run_options={"kind": "tts", "judges": scorer.describe(), "keep_audio": options.keep_audio},
        conditions=[{"name": condition, "chain": []}],
    )


def evaluate_system(
    system: str,
    synthesizer: Synthesizer,
    prompts: Sequence[Prompt],
    run_dir: str | Path,
    scorer: TtsScorer,
    *,
    options: TtsEvalOptions = TtsEvalOptions(),
    prompt_source: str = "en-stress",
    expected_sample_rate: int | None = None,
    resume: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> RunStore:
    """Synthesise and score every prompt with ``synthesizer`` into ``run_dir``; returns the open store.

    ``expected_sample_rate`` defaults to the synthesiser's ``sample_rate`` attribute, else the rate of
    its first clip (recorded in the run, so a resumed run checks against the same rate).
    """
    run_dir = Path(run_dir)
    info = synthesizer.info().to_dict()
    dataset = {"kind": "tts-prompts", "source": prompt_source, "hash": prompts_hash(list(prompts)),
               "count": len(prompts)}
    store = _open_or_create(run_dir, _provenance(info, dataset, scorer, options, TTS_CONDITION), resume)
    store.set_conditions([(TTS_CONDITION, [])])
    store.set_meta("status", "running")
    store.set_meta("system", system)
    store.set_meta("prompts", [p.to_dict() for p in prompts])
    rate = expected_sample_rate or getattr(synthesizer, "sample_rate", None) or store.meta("expected_sample_rate")
    done = {u for u, c in store.done_keys() if c == TTS_CONDITION}
    skipped = written = 0
    started = time.perf_counter()
    if any(p.id not in done for p in prompts):
        _warm_up(synthesizer, system)
    for position, prompt in enumerate(prompts):
        if prompt.id in done:
            skipped += 1
            continue
        base_extras = {"text": prompt.text, "category": prompt.category, "expected": list(prompt.expected)}
        t0, c0 = time.perf_counter(), _cpu_seconds()
        try:
            audio = synthesizer.synthesize(prompt.text)
        except Exception as exc:  # noqa: BLE001 - any synthesiser failure is a counted result, not a crash
            seconds = time.perf_counter() - t0
            log.warning("%s failed on %s: %s: %s", system, prompt.id, type(exc).__name__, exc)
            row = ResultRow(
                utt_id=prompt.id, condition=TTS_CONDITION, status=STATUS_ERROR, reference=prompt.spoken,
                hypothesis=None, processing_time=seconds, error_type=type(exc).__name__,
                error_message=str(exc)[:2000], tags={"category": prompt.category},
                extras={**base_extras, "failures": {k: k == "synthesis_error" for k in FAILURE_KINDS},
                        "failure_details": {"synthesis_error": f"{type(exc).__name__}: {exc}"[:500]}},
            )
        else:
            seconds = time.perf_counter() - t0
            base_extras["synthesis_cpu_seconds"] = _cpu_seconds() - c0
            if rate is None and audio.samples.size:
                rate = audio.sample_rate
                store.set_meta("expected_sample_rate", rate)
            if options.keep_audio:
                base_extras["audio_file"] = _keep(run_dir, prompt.id, audio)
            row = scorer.score(
                prompt.id, audio, prompt.expected, condition=TTS_CONDITION, synthesis_seconds=seconds,
                expected_sample_rate=rate, language=prompt.language, tags={"category": prompt.category},
                extras=base_extras,
            )
            if prompt.reference_audio and row.ok:
                row = _against_recording(row, prompt.reference_audio, audio)
        store.add_row(row, position)
        written += 1
        if progress is not None:
            progress(Progress(system, written + skipped, len(prompts), skipped, prompt.id, row.status))
    store.set_meta("status", "complete")
    wall = time.perf_counter() - started
    before = store.meta("resources") or {}
    store.set_meta("resources", {  # totals over every session of this run, and the latest session
        "wall_seconds": before.get("wall_seconds", 0.0) + wall,
        "rows_written": before.get("rows_written", 0) + written,
        "last_session": {"wall_seconds": wall, "rows_written": written, "rows_skipped": skipped},
    })
    return store


@dataclass(frozen=True)
class FloorItem:
    """A real recording with its transcript, for the ground-truth floor."""

    id: str
    audio_path: str
    text: str
    speaker: str | None = None


def floor_items(source: str | Path, limit: int | None = None) -> list[FloorItem]:
    """Real recordings with transcripts for the floor: any manifest ``read_manifest`` accepts (when the
    manifest readers are installed), else a folder with ``transcripts.tsv`` (``ID<TAB>TEXT``) and
    ``audio/ID.*``. Utterances without a transcript are left out (there is nothing to score)."""
    try:
        from voxproof.manifest import read_manifest
    except ImportError:
        read_manifest = None
    if read_manifest is not None:
        items = [FloorItem(u.id, u.audio, u.text or "", u.speaker) for u in read_manifest(source) if u.text]
    else:
        items = _folder_items(Path(source))
    return items[:limit] if limit is not None else items


def default_floor_source() -> Path:
    """The bundled real recordings (LibriSpeech test-other utterances) used as the floor by default."""
    try:
        from voxproof.manifest import bundled_dataset_path
    except ImportError:
        raise VoxproofError(
            "no bundled dataset in this voxproof; pass the floor recordings explicitly (--floor-data DIR)"
        ) from None
    return Path(bundled_dataset_path())


def _folder_items(folder: Path) -> list[FloorItem]:
    tsv = folder / "transcripts.tsv"
    if not tsv.is_file():
        raise DataError(f"{folder} has no transcripts.tsv; give a folder with transcripts.tsv and audio/")
    audio = {p.stem: p for p in (folder / "audio").iterdir()} if (folder / "audio").is_dir() else {}
    items = []
    for line in tsv.read_text(encoding="utf-8").splitlines():
        uid, _, text = line.partition("\t")
        if uid.strip() and text.strip() and uid.strip() in audio:
            items.append(FloorItem(uid.strip(), str(audio[uid.strip()]), text.strip(), uid.split("-")[0]))
    return items


def evaluate_floor(
    items: Sequence[FloorItem],
    run_dir: str | Path,
    scorer: TtsScorer,
    *,
    options: TtsEvalOptions = TtsEvalOptions(),
    source: str = "",
    resume: bool = True,
    progress: Callable[[Progress], None] | None = None,
    resynth: Any = None,
) -> RunStore:
    """Score real recordings exactly like synthesised clips (condition ``recorded``).

    With ``resynth`` (a :class:`voxproof.perturb.Condition`, e.g. a codec round trip) every recording
    is passed through it first and scored as condition ``resynth`` (system = the condition's name),
    with the reference figures of :mod:`voxproof.tts.reference` (PESQ, STOI, MCD, F0) against the
    original recording added to the row's features."""
    import hashlib

    from voxproof.audio.io import DEFAULT_LIMITS, load_audio

    run_dir = Path(run_dir)
    digest = hashlib.sha256("\n".join(f"{i.id}\t{i.text}" for i in items).encode("utf-8")).hexdigest()[:16]
    condition, system = FLOOR_CONDITION, FLOOR_SYSTEM
    info = {"name": FLOOR_SYSTEM, "kind": "recordings", "model": source, "model_checksum": None, "options": {}}
    if resynth is not None:
        condition, system = RESYNTH_CONDITION, resynth.name
        info = {"name": resynth.name, "kind": "resynth", "model": resynth.label, "model_checksum": None,
                "options": {"condition": resynth.to_spec()}}
    dataset = {"kind": "recordings", "source": source, "hash": digest, "count": len(items)}
    store = _open_or_create(run_dir, _provenance(info, dataset, scorer, options, condition), resume)
    store.set_conditions([(condition, [])])
    store.set_meta("status", "running")
    store.set_meta("system", system)
    done = {u for u, c in store.done_keys() if c == condition}
    skipped = written = 0
    for position, item in enumerate(items):
        if item.id in done:
            skipped += 1
            continue
        try:
            audio = load_audio(item.audio_path, limits=DEFAULT_LIMITS)  # the shared safe default (600 s)
            heard = audio if resynth is None else _resynthesise(resynth, audio, item, options.seed)
        except VoxproofError as exc:
            row = ResultRow(utt_id=item.id, condition=condition, status=STATUS_ERROR,
                            reference=item.text, error_type=type(exc).__name__, error_message=str(exc)[:2000],
                            speaker=item.speaker, extras={"failures": {}, "audio_path": item.audio_path})
        else:
            row = scorer.score(item.id, heard, (item.text,), condition=condition, speaker=item.speaker,
                               extras={"audio_path": item.audio_path, "text": item.text, "category": "recorded"})
            if resynth is not None and row.ok:
                row = _with_reference(row, audio, heard)
        store.add_row(row, position)
        written += 1
        if progress is not None:
            progress(Progress(system, written + skipped, len(items), skipped, item.id, row.status))
    store.set_meta("status", "complete")
    return store


def _resynthesise(condition: Any, audio: Audio, item: FloorItem, seed: int) -> Audio:
    from voxproof.perturb import condition_seed
    from voxproof.perturb.base import PerturbationError

    try:
        return condition.apply(audio, condition_seed(seed, item.id, condition.name))
    except PerturbationError as exc:
        raise RunError(f"{condition.name} failed on {item.id}: {exc}") from None


def _with_reference(row: ResultRow, reference: Audio, heard: Audio) -> ResultRow:
    """``row`` with the reference figures of ``heard`` against ``reference`` added (``ref_*``)."""
    from dataclasses import replace

    from voxproof.tts.reference import reference_scores

    scores = reference_scores(reference, heard)
    return replace(row, features={**row.features, **scores.features()},
                   extras={**row.extras, "reference_reasons": scores.reasons})


def _against_recording(row: ResultRow, path: str, audio: Audio) -> ResultRow:
    """``row`` with reference figures against the prompt's recording; an unreadable recording is
    noted in ``extras['reference_reasons']`` (the clip's other figures stand)."""
    from dataclasses import replace

    from voxproof.audio.io import DEFAULT_LIMITS, load_audio

    try:
        recording = load_audio(path, limits=DEFAULT_LIMITS)
    except VoxproofError as exc:
        return replace(row, extras={**row.extras, "reference_reasons": {"all": f"{type(exc).__name__}: {exc}"[:300]}})
    return _with_reference(row, recording, audio)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished child processes (a
    subprocess synthesiser such as eSpeak NG). Unlike wall time, it does not grow when other jobs
    compete for the cores, so the CPU real-time factor stays comparable on a busy machine."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _warm_up(synthesizer: Synthesizer, system: str) -> None:
    """One untimed synthesis so that session start-up (ONNX graph optimisation, process spawn caches)
    is not charged to the first prompt's real-time factor. Its failure is left to the real prompts."""
    try:
        synthesizer.synthesize("Warm up.")
    except Exception as exc:  # noqa: BLE001 - the prompts themselves will record the failure
        log.debug("%s warm-up failed: %s", system, exc)


def _keep(run_dir: Path, item_id: str, audio: Audio) -> str | None:
    """Write a clip as float WAV (lossless, so clipping and DC stay visible) and return its relative path."""
    import soundfile as sf

    if audio.samples.size == 0:
        return None
    from voxproof.run.records import id_filename

    name = id_filename(item_id, ".wav")  # one path component whatever the id holds
    out = run_dir / "audio"
    out.mkdir(parents=True, exist_ok=True)
    sf.write(str(out / name), audio.samples, audio.sample_rate, subtype="FLOAT")
    return f"audio/{name}"
