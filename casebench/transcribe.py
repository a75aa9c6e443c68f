"""The ``transcribe`` step: clips table in, transcripts table out, with Whisper, fast and resumable.

What is stored per clip (``tables/transcripts.parquet``, schema in :mod:`casebench.workspace`):

- ``text``: the recognised words joined (Whisper's spelling and punctuation);
- ``words``: each word with ``start``/``end`` in seconds from the clip start and Whisper's probability;
- ``text``: null when the transcription failed the checks of :mod:`casebench.asr.quality` (no speech,
  only digits/punctuation, wrong script for the language, repetition, low confidence), with the reason in
  ``failure`` (the dropped texts are listed in the report); ``words`` is then empty;
- ``language``: the language the clip was decoded in (``language=``, else ``clips.language`` when it names
  one language the model knows, else the detected one); ``language_detected`` and ``language_prob``:
  Whisper's most probable language for the clip and its probability (multilingual models detect every
  clip, in one batched encoder pass; null with an English-only model); ``code_switching``: several
  languages in ``clips.language`` (``zh+en``) or a second detected language with probability >= 0.2
  (:func:`casebench.asr.quality.is_code_switched`);
- ``avg_logprob``, ``no_speech_prob``: Whisper's, averaged over the segments the clip's words came from.
  Whisper scores whole 30-s windows, so clips packed into one window share these two values (their words
  keep their own probabilities); a clip decoded alone has its own;
- ``model``: backend, its version, model name and fingerprint; ``config_hash``: of the step config below;
- ``wer``: word error rate against ``clips.text_prompt`` after :func:`casebench.asr.wer.normalize_text`,
  when the clip has a prompt (synthesised clips); the pooled corpus WER goes into the report.

English-only models. An English-only model (tiny.en) is refused (ConfigError, exit 2) when a pending
clip's ``clips.language``, or the workspace's ``[project] languages`` for clips without one, is not English;
forcing ``language="en"`` runs it with a WARNING note on the console, in the report and in the data card.

Speed. Whisper pads every input to 30 s, so clips are trimmed of leading/trailing silence (an energy gate,
:func:`casebench.asr.packing.trim_silence`) and packed, per decoding language, into windows of up to 28 s
with 0.5 s of silence between them (:mod:`casebench.asr.packing`), decoded once with word timestamps, and
the words split back to their clips by time and mapped back to the untrimmed clip; clips whose words
cannot be assigned cleanly are decoded again alone. Windows are planned from the trimmed lengths (each
pending clip is read once ahead for that, :func:`measure_speech`). ``batch_size`` windows are decoded
together (faster-whisper's batched pipeline, the windows split between one-thread model copies, see
:mod:`casebench.asr.faster_whisper`). Measured figures: ``bench/transcribe.py``.

Resuming. Rows go through a :class:`~casebench.workspace.StepJournal` keyed by the hash of the step config
(backend identity and model fingerprint, decoding and packing settings, language, normaliser version), one
part per batch of windows; a re-run skips the clips already there, so a run killed at any moment loses at
most the batch in flight and duplicates nothing. The engine, batch size and thread counts are not in the
config: they do not change what is computed. Clips whose audio cannot be read are reported and skipped
(a re-run retries them), never abort the run.

Scale-out. ``engine="ray"`` runs the same batches on Ray Data: ``from_items`` of the planned batches,
``map_batches`` with one model per actor (``concurrency`` actors of ``num_cpus`` CPUs each); the driver
writes each returned batch to the journal, so resuming works as with the local engine. It connects to
``ray_address`` or ``RAY_ADDRESS`` (``ray://head:10001`` for a remote cluster; casebench and the backend
must be installed on the workers and the workspace's audio readable at the same path), or starts a local
Ray; an already initialised Ray is used as is.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from casebench.asr import DEFAULT_BACKEND, get_backend
from casebench.asr.base import SAMPLE_RATE, AsrBackend, DecodeOptions, Segment, Word
from casebench.asr.packing import PackingConfig, build_window, plan_windows, split_words, trim_silence
from casebench.asr.quality import declared_languages, failure_reason, is_code_switched
from casebench.asr.wer import ZERO, WerCounts, wer_counts
from casebench.errors import ConfigError, Problem
from casebench.workspace import Workspace, atomic_write_text

STEP = "transcribe"
#: Bump when :func:`casebench.asr.wer.normalize_text` changes meaning (it enters the config hash).
NORMALISER_VERSION = 1
ENGINES = ("local", "ray")


# --------------------------------------------------------------------------------------------------
# Work units: what a batch holds, what it gives back


@dataclass
class ClipTask:
    """One clip to transcribe, as the batch runner sees it (JSON-able, so it can travel to Ray workers)."""

    clip_id: str
    path: str
    duration_s: float
    text_prompt: str | None = None
    language: str | None = None  # the language to decode in; None: the detected one
    declared: str | None = None  # clips.language as written (for the code-switching flag)
    speech_s: float | None = None  # seconds left once silence is trimmed (None: unknown, use duration_s)


@dataclass
class BatchResult:
    """Rows of one batch, plus what happened: decode modes, fallback reasons, unreadable clips."""

    rows: list[dict] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    fallback_reasons: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    n_windows: int = 0
    audio_s: float = 0.0
    failures: list[dict] = field(default_factory=list)  # clip_id, reason, the text that was nulled

    def to_json(self) -> str:
        return json.dumps({"rows": self.rows, "modes": self.modes, "fallback_reasons": self.fallback_reasons,
                           "problems": [p.to_dict() for p in self.problems], "n_windows": self.n_windows,
                           "audio_s": self.audio_s, "failures": self.failures})

    @classmethod
    def from_json(cls, text: str) -> BatchResult:
        d = json.loads(text)
        return cls(d["rows"], Counter(d["modes"]), Counter(d["fallback_reasons"]),
                   [Problem(**p) for p in d["problems"]], d["n_windows"], d["audio_s"], d["failures"])


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """16 kHz mono float32 samples of an audio file (channels averaged, resampled with soxr if needed)."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def _row(task: ClipTask, words: Sequence[Word], segments: Sequence[Segment], language: str | None,
         detected: Sequence[tuple[str, float]] | None, model_id: str, config_hash: str) -> dict:
    """One transcripts row; the text is null, with the reason in ``failure``, when it fails the checks of
    :func:`casebench.asr.quality.failure_reason` (the words are dropped with it)."""
    text = "".join(w.word for w in words).strip() if words else "".join(s.text for s in segments).strip()
    no_speech = _mean(s.no_speech_prob for s in segments)
    failure = failure_reason(text, language, [w.probability for w in words], no_speech)
    top = detected[0] if detected else (None, None)
    return {
        "clip_id": task.clip_id, "text": None if failure else text, "language": language,
        "language_prob": top[1], "avg_logprob": _mean(s.avg_logprob for s in segments),
        "no_speech_prob": no_speech, "model": model_id,
        "words": [] if failure else [w.to_dict() for w in words], "config_hash": config_hash,
        "wer": wer_counts(task.text_prompt, text if not failure else "").wer if task.text_prompt else None,
        "language_detected": top[0],
        "code_switching": is_code_switched(declared_languages(task.declared), detected or []),
        "failure": failure, "failed_text": text if failure else None,
    }


def run_batch(backend: AsrBackend, windows: Sequence[Sequence[ClipTask]], *, language: str | None,
              packing: PackingConfig, config_hash: str) -> BatchResult:
    """Transcribe a batch of planned windows (each a list of clips) in one backend call per language, then
    the clips that need it alone; the same function runs in the local engine and in each Ray actor.

    A multilingual model first detects every clip's language (one batched encoder pass); each clip is then
    decoded in ``language`` if given, else its ``ClipTask.language``, else the detected language. Windows
    are laid out again per decoding language from the audio's real lengths (the clips table may be off, or
    a clip may be unreadable), after trimming leading/trailing silence, with the same packing rules.
    """
    result = BatchResult()
    loaded: list[tuple[ClipTask, np.ndarray]] = []
    for task in (t for w in windows for t in w):
        try:
            audio = load_audio(task.path)
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported and skipped, never fatal
            result.problems.append(Problem(f"unreadable audio ({type(e).__name__}: {e})", id=task.clip_id,
                                           file=task.path, expected="an audio file soundfile can read"))
            continue
        if audio.size == 0:
            result.problems.append(Problem("empty audio (0 samples)", id=task.clip_id, file=task.path,
                                           expected="at least one sample"))
            continue
        loaded.append((task, audio))
        result.audio_s += audio.size / SAMPLE_RATE
    detected: dict[str, list[tuple[str, float]]] = {}
    if backend.multilingual and loaded:
        for (task, _), langs in zip(loaded, backend.detect_languages([a for _, a in loaded]), strict=True):
            detected[task.clip_id] = langs
    by_lang: dict[str, list[tuple[ClipTask, np.ndarray]]] = {}
    for task, audio in loaded:
        lang = language or task.language or _pick_language(task.declared, detected.get(task.clip_id))
        by_lang.setdefault(lang, []).append((task, audio))

    for lang, members in by_lang.items():
        _run_language(backend, lang, members, detected, packing, config_hash, result)
    return result


def _run_language(backend: AsrBackend, lang: str, members: Sequence[tuple[ClipTask, np.ndarray]],
                  detected: Mapping[str, list[tuple[str, float]]], packing: PackingConfig, config_hash: str,
                  result: BatchResult) -> None:
    """Trim, pack and decode the clips of one decoding language; redo unclean clips alone; add the rows."""
    model_id = backend.model_id
    trims = [trim_silence(a, packing) if packing.enabled else (0, a.size) for _, a in members]
    plan = plan_windows([(e - s) / SAMPLE_RATE for s, e in trims], packing)
    result.n_windows += len(plan)

    def cut(i: int) -> np.ndarray:
        return members[i][1][trims[i][0]:trims[i][1]]

    def emit(i: int, words: Sequence[Word], segments: Sequence[Segment], mode: str) -> None:
        task, audio = members[i]
        lead = trims[i][0] / SAMPLE_RATE  # word times back to the untrimmed clip
        words = [w.shifted(-lead, limit=audio.size / SAMPLE_RATE) for w in words]
        row = _row(task, words, segments, lang, detected.get(task.clip_id), model_id, config_hash)
        failed = row.pop("failed_text")
        if row["failure"]:
            result.failures.append({"clip_id": task.clip_id, "reason": row["failure"], "text": failed})
        result.rows.append(row)
        result.modes[mode] += 1

    decoded = backend.decode([build_window([cut(i) for i in w.members], w.spans) for w in plan], lang)
    alone: list[int] = []
    for win, dec in zip(plan, decoded, strict=True):
        if win.kind != "packed":
            emit(win.members[0], _clip_words(dec.segments, win.spans[0][1]), dec.segments, win.kind)
            continue
        flat = [(w, k) for k, s in enumerate(dec.segments) for w in s.words]
        split = split_words([w for w, _ in flat], win.spans, edge_s=packing.edge_s,
                            segment_of=[k for _, k in flat])
        for i, cw in zip(win.members, split, strict=True):
            if not cw.clean:
                alone.append(i)
                result.fallback_reasons[_reason_kind(cw.reason)] += 1
                continue
            emit(i, cw.words, [dec.segments[k] for k in sorted(cw.segments)], "packed")
    if alone:
        for i, dec in zip(alone, backend.decode([cut(i) for i in alone], lang), strict=True):
            emit(i, _clip_words(dec.segments, (trims[i][1] - trims[i][0]) / SAMPLE_RATE), dec.segments,
                 "fallback")
        result.n_windows += len(alone)


def _pick_language(declared: str | None, detected: Sequence[tuple[str, float]] | None) -> str:
    """The decoding language of a clip without one given: the most probable detected language among those
    ``clips.language`` names (code-switched clips), else the most probable detected one."""
    if not detected:
        return "en"
    codes = declared_languages(declared)
    among = [lang for lang, _ in detected if lang in codes]
    return among[0] if among else detected[0][0]


def _clip_words(segments: Sequence[Segment], duration: float) -> list[Word]:
    """The words of a clip decoded alone, times clamped to the clip (Whisper may stretch the last word into
    the padding), as :func:`~casebench.asr.packing.split_words` does for packed clips."""
    return [w.shifted(0.0, limit=duration) for s in segments for w in s.words]


def _reason_kind(reason: str | None) -> str:
    """Group fallback reasons for the report ("word 'x' runs across ..." -> "word runs across ...")."""
    if not reason:
        return "unknown"
    for key in ("runs across the silence", "lies in the silence", "no words", "words in"):
        if key in reason:
            return {"words in": "too many words"}.get(key, key)
    return reason


# --------------------------------------------------------------------------------------------------
# Planning


@dataclass
class Batch:
    """Windows decoded together: same language (None: detect per clip), clips in table order."""

    language: str | None
    windows: list[list[ClipTask]]

    def to_json(self) -> str:
        windows = [[t.__dict__ for t in w] for w in self.windows]
        return json.dumps({"language": self.language, "windows": windows})

    @classmethod
    def from_json(cls, text: str) -> Batch:
        d = json.loads(text)
        return cls(d["language"], [[ClipTask(**t) for t in w] for w in d["windows"]])

    @property
    def n_clips(self) -> int:
        return sum(len(w) for w in self.windows)


def plan_batches(tasks: Sequence[ClipTask], languages: Sequence[str | None], packing: PackingConfig,
                 batch_size: int) -> list[Batch]:
    """Group clips by language (first appearance order; None: to be detected), pack each group into
    windows, ``batch_size`` windows per batch. :func:`run_batch` regroups a batch's clips by their decoding
    language once detection has run, so clips of unknown language are packed too.

    Clips are packed by ``ClipTask.speech_s`` (their length once trimmed, see :func:`measure_speech`)
    where known, else by ``duration_s``: planning from the untrimmed durations leaves room unused in the
    windows :func:`run_batch` lays out again from the trimmed audio (on the 30 English clips of
    ``bench/transcribe.py --mix 40``: 9 windows in batches of 4+4+1 instead of 8)."""
    groups: dict[str | None, list[ClipTask]] = {}
    for t, lang in zip(tasks, languages, strict=True):
        groups.setdefault(lang, []).append(t)
    batches = []
    for lang, group in groups.items():
        lengths = [t.duration_s if t.speech_s is None else t.speech_s for t in group]
        windows = [[group[i] for i in w.members] for w in plan_windows(lengths, packing)]
        batches += [Batch(lang, windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)]
    return batches


def measure_speech(tasks: Sequence[ClipTask], packing: PackingConfig) -> None:
    """Set each task's ``speech_s``: its audio's length once leading/trailing silence is trimmed (reads
    every clip once, about 1 ms each; an unreadable clip keeps None and is reported by :func:`run_batch`).
    Nothing to do when packing or trimming is off."""
    if not packing.enabled or packing.trim_db is None:
        return
    for task in tasks:
        try:
            audio = load_audio(task.path)
        except Exception:  # noqa: BLE001 - run_batch reads it again and reports it
            continue
        start, end = trim_silence(audio, packing)
        task.speech_s = (end - start) / SAMPLE_RATE


# --------------------------------------------------------------------------------------------------
# Engines


class RayTranscriber:
    """Ray Data callable class: builds one backend (one model) per actor and runs :func:`run_batch` on each
    batch it is given (a column ``batch`` of :meth:`Batch.to_json` strings); returns a column ``result``
    of :meth:`BatchResult.to_json` strings (JSON keeps Arrow type inference out of the way)."""

    def __init__(self, backend: str, model: str | None, backend_kwargs: dict, packing: dict,
                 config_hash: str):
        kwargs = dict(backend_kwargs)
        kwargs["options"] = DecodeOptions(**kwargs.get("options", {}))
        self.backend = get_backend(backend, model, **kwargs)
        self.packing = PackingConfig(**packing)
        self.config_hash = config_hash

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        out = []
        for text in list(batch["batch"]):
            b = Batch.from_json(str(text))
            out.append(run_batch(self.backend, b.windows, language=b.language, packing=self.packing,
                                 config_hash=self.config_hash).to_json())
        return {"result": np.array(out, dtype=object)}


def _run_ray(batches: Sequence[Batch], *, backend: str, model: str | None, backend_kwargs: dict,
             packing: PackingConfig, config_hash: str, concurrency: int | None, num_cpus: float | None,
             ray_address: str | None) -> Iterable[BatchResult]:
    from casebench.scale import ray_pool

    ray, num_cpus, concurrency = ray_pool(ray_address, num_cpus, concurrency)
    backend_kwargs = dict(backend_kwargs)
    backend_kwargs.setdefault("cpu_threads", max(1, int(num_cpus)))
    if not batches:
        return
    ctx = ray.data.DataContext.get_current()
    bars, ctx.enable_progress_bars = ctx.enable_progress_bars, False  # the step shows its own
    try:
        ds = ray.data.from_items([{"batch": b.to_json()} for b in batches], override_num_blocks=len(batches))
        actor_kwargs = {"backend": backend, "model": model, "backend_kwargs": backend_kwargs,
                        "packing": packing.to_dict(), "config_hash": config_hash}
        ds = ds.map_batches(RayTranscriber, batch_size=1, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=num_cpus,
                            fn_constructor_kwargs=actor_kwargs)
        for block in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for text in block["result"]:
                yield BatchResult.from_json(str(text))
    finally:
        ctx.enable_progress_bars = bars


# --------------------------------------------------------------------------------------------------
# The step


def _clip_tasks(ws: Workspace, clips: Any,
                problems: list[Problem]) -> tuple[list[ClipTask], list[str | None]]:
    """ClipTasks (absolute paths, durations) and each clip's language from the clips table."""
    import soundfile as sf

    ids = clips.column("clip_id").to_pylist()
    paths = clips.column("path").to_pylist()
    durations = clips.column("duration_s").to_pylist()
    prompts = clips.column("text_prompt").to_pylist()
    langs = clips.column("language").to_pylist()
    tasks, languages = [], []
    for cid, path, dur, prompt, lang in zip(ids, paths, durations, prompts, langs, strict=True):
        full = ws.resolve(path)
        if dur is None or not math.isfinite(dur) or dur < 0:
            try:
                dur = sf.info(str(full)).duration
            except Exception as e:  # noqa: BLE001 - reported and skipped
                problems.append(Problem(f"unreadable audio ({type(e).__name__}: {e})", id=cid, file=str(full),
                                        expected="an audio file soundfile can read"))
                continue
        tasks.append(ClipTask(cid, str(full), float(dur), prompt or None))
        languages.append(lang or None)
    return tasks, languages


def _whisper_code(code: str) -> str:
    """A BCP-47 tag as Whisper's language code: its primary subtag, lower case (``en-US`` -> ``en``)."""
    return code.replace("_", "-").split("-")[0].strip().lower()


def _check_language(language: str, asr: AsrBackend) -> str:
    """``language`` as a code the model accepts, or ConfigError (English-only model, unknown code)."""
    from casebench.errors import did_you_mean

    code = _whisper_code(language)
    known = asr.languages()
    if code not in known:
        if not asr.multilingual:
            raise ConfigError(f"--language {language!r}: the model ({asr.model_id}) is English-only; expected "
                              "'en', or a multilingual model (--model)")
        hint = did_you_mean(code, known)
        if code == "yue":  # a Whisper language since large-v3 only
            hint = "Whisper before large-v3 (base included) has no Cantonese token: pass --language zh, or leave " \
                   "--language out to decode each clip in its detected language"
        raise ConfigError(f"--language {language!r}: not a language of this model ({asr.model_id}); expected a "
                          "code such as 'en', 'de', 'zh'" + (f" ({hint})" if hint else ""))
    return code


def _clip_languages(clip_langs: Sequence[str | None], language: str | None,
                    asr: AsrBackend) -> tuple[list[str | None], list[str]]:
    """The language each clip is decoded in (None: the detected one) and notes on the choices made.

    ``language`` wins; else an English-only model decodes everything as ``en`` (:func:`refuse_english_only`
    has already refused non-English clips); else ``clips.language`` when it names one language the model
    knows (:meth:`AsrBackend.languages`), a Cantonese (``yue``) clip as ``zh`` on a model without ``yue``
    (Whisper before large-v3 was trained with Cantonese labelled Chinese; detection can wander to ja or ko on
    a short clip); else (none, several: code-switched, unknown) the detected language.
    """
    if language is not None:
        return [language] * len(clip_langs), []
    if not asr.multilingual:
        return ["en"] * len(clip_langs), []
    notes = []
    known = asr.languages()
    out: list[str | None] = []
    unknown: Counter = Counter()
    as_zh = 0
    for value in clip_langs:
        codes = declared_languages(value)
        if codes == ["yue"] and "yue" not in known and "zh" in known:
            codes, as_zh = ["zh"], as_zh + 1
        unknown.update(c for c in codes if c not in known)
        out.append(codes[0] if len(codes) == 1 and codes[0] in known else None)
    if as_zh:
        notes.append(f"{as_zh} Cantonese (yue) clip(s) were decoded as zh: this model has no yue token (Whisper "
                     "before large-v3 writes Cantonese as Chinese)")
    if unknown:
        notes.append(f"clips.language {dict(unknown)} is not a language of this model; those clips' language "
                     "was detected instead")
    if None in out:
        notes.append(f"{out.count(None)} clip(s) without one usable clips.language (none, unknown, or several "
                     "for code-switched clips) were decoded in their detected language")
    return out, notes


def refuse_english_only(asr: AsrBackend, clip_langs: Sequence[str | None], project_langs: Sequence[str],
                        language: str | None) -> list[str]:
    """Refuse (ConfigError) to run an English-only model over clips that are not English: a clip's
    language is ``clips.language``, else the workspace's ``[project] languages``. Forcing ``--language en``
    runs anyway and returns a loud note (shown on the console, kept in the report and the data card)."""
    if asr.multilingual:
        return []
    fallback = [c for x in project_langs for c in declared_languages(x)]
    other: Counter = Counter()
    for value in clip_langs:
        codes = declared_languages(value) or fallback
        if any(c != "en" for c in codes):
            other["+".join(codes)] += 1
    if not other:
        return []
    n = sum(other.values())
    if language is None:
        raise ConfigError(f"the model ({asr.model_id}) is English-only, but {n} clip(s) are not English "
                          f"({dict(other)}; clips.language, else [project] languages in casebench.toml); "
                          "expected a multilingual model: --model base (or --language en to force English)")
    return [f"WARNING: {n} non-English clip(s) ({dict(other)}) were transcribed with the English-only model "
            f"because --language {language} was forced; their text is unreliable (use --model base)"]


def step_config(backend: AsrBackend, packing: PackingConfig, language: str | None) -> dict:
    """The config whose hash keys the journal: everything that changes the rows, nothing that does not."""
    return {"asr": backend.identity(), "packing": packing.to_dict(), "language": language,
            "normaliser": NORMALISER_VERSION}


def transcribe(workspace: str | os.PathLike | Workspace, *, backend: str | AsrBackend = DEFAULT_BACKEND,
               model: str | None = None, engine: str = "local", batch_size: int = 4,
               language: str | None = None, packing: PackingConfig | bool = True, beam_size: int = 5,
               device: str = "cpu", compute_type: str | None = None, cpu_threads: int | None = None,
               concurrency: int | None = None, num_cpus: float | None = None, ray_address: str | None = None,
               limit: int | None = None, progress: bool | Callable[[int, int], None] = False) -> dict:
    """Transcribe the workspace's clips into ``tables/transcripts.parquet`` and ``reports/transcribe.json``.

    Args:
        workspace: the workspace (or its directory); its ``clips`` table must exist.
        backend, model: ASR backend name (:data:`casebench.asr.BACKENDS`) and its model (None: default;
            faster-whisper: ``tiny.en``, ``base`` or a model folder), or an already built backend (its
            model stays loaded between calls; local engine only).
        engine: ``local`` (this process) or ``ray`` (Ray Data; see the module docstring).
        batch_size: windows decoded together, and per journal part.
        language: force this language for every clip; else ``clips.language``, else detection (never needed
            with an English-only model).
        packing: a :class:`PackingConfig`, True for the defaults, False to decode every clip alone.
        beam_size, device, compute_type, cpu_threads: decoding settings (compute_type: int8 on CPU).
        concurrency, num_cpus, ray_address: Ray actors, CPUs per actor (also its thread count), cluster.
        limit: transcribe at most this many of the pending clips in this run (the rest stay pending).
        progress: True for a progress bar on stderr, or a callable ``(done, total)``.

    Returns:
        The report (also written to ``reports/transcribe.json``): counts, decode modes, fallback reasons,
        unreadable clips, throughput, corpus WER of the table's rows with a prompt, model and config hash.

    Raises:
        ConfigError: unknown backend or engine, bad model, bad option. InputError: a bad clips table.
        MissingDependencyError: the backend or Ray is not installed.
    """
    if engine not in ENGINES:
        from casebench.errors import unknown_name

        raise unknown_name("engine", engine, ENGINES)
    if batch_size < 1 or beam_size < 1:
        raise ConfigError(f"batch_size and beam_size must be >= 1, not {batch_size} and {beam_size}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if isinstance(packing, bool):
        packing = PackingConfig(enabled=packing)
    options = DecodeOptions(beam_size=beam_size)
    backend_kwargs = {"options": options.to_dict(), "device": device, "compute_type": compute_type,
                      "cpu_threads": cpu_threads}
    if isinstance(backend, AsrBackend):
        if engine != "local":
            raise ConfigError("a built backend runs with engine='local' only; pass its name for Ray")
        asr = backend
    else:
        asr = get_backend(backend, model, **{**backend_kwargs, "options": options})
    if language is not None:
        language = _check_language(language, asr)
    config = step_config(asr, packing, language)
    journal = ws.resumable(STEP, config, table="transcripts")
    ws.set_section(STEP, config)

    clips = ws.read_table("clips")
    problems: list[Problem] = []
    tasks, clip_langs = _clip_tasks(ws, clips, problems)
    done = journal.done_ids()
    n_before = sum(t.clip_id in done for t in tasks)
    pending = [(t, lang) for t, lang in zip(tasks, clip_langs, strict=True) if t.clip_id not in done]
    if limit is not None:
        pending = pending[:limit]
    project_langs = ws.section("project").get("languages") or []
    notes = refuse_english_only(asr, [lang for _, lang in pending], project_langs, language)
    langs, lang_notes = _clip_languages([lang for _, lang in pending], language, asr)
    notes += lang_notes
    for (task, declared), lang in zip(pending, langs, strict=True):
        task.language, task.declared = lang, declared
    measure_speech([t for t, _ in pending], packing)
    batches = plan_batches([t for t, _ in pending], langs, packing, batch_size)

    total = len(pending)
    report_progress = _progress(progress, total)
    modes, reasons, n_windows, audio_s, n_done = Counter(), Counter(), 0, 0.0, 0
    failures: list[dict] = []
    detected_langs: Counter = Counter()
    n_switch = 0
    t0 = time.perf_counter()
    if engine == "local":
        results: Iterable[BatchResult] = (
            run_batch(asr, b.windows, language=b.language, packing=packing, config_hash=journal.config_hash)
            for b in batches)
    else:
        results = _run_ray(batches, backend=backend, model=model, backend_kwargs=backend_kwargs,
                           packing=packing, config_hash=journal.config_hash, concurrency=concurrency,
                           num_cpus=num_cpus, ray_address=ray_address)
    try:
        for res in results:
            journal.write(res.rows)
            modes.update(res.modes)
            reasons.update(res.fallback_reasons)
            failures += res.failures
            for row in res.rows:
                detected_langs[row["language_detected"]] += row["language_detected"] is not None
                n_switch += bool(row["code_switching"])
            problems += res.problems
            n_windows += res.n_windows
            audio_s += res.audio_s
            n_done += len(res.rows) + len(res.problems)
            report_progress(n_done)
    finally:
        report_progress(None)
    elapsed = time.perf_counter() - t0

    table = _in_clip_order(ws, journal.finish(), clips.column("clip_id").to_pylist())
    n_now = sum(modes.values())
    report = {
        "step": STEP, "workspace": str(ws.root), "model": asr.model_id, "config_hash": journal.config_hash,
        "config": config, "engine": engine, "batch_size": batch_size,
        "n_clips": len(clips), "n_already_done": n_before, "n_transcribed": n_now,
        "n_pending": len(set(clips.column("clip_id").to_pylist()) - journal.done_ids()) - len(problems),
        "n_unreadable": len(problems), "unreadable": [p.to_dict() for p in problems],
        "modes": dict(modes), "fallback_reasons": dict(reasons), "n_windows": n_windows,
        "audio_s": round(audio_s, 3), "elapsed_s": round(elapsed, 3),
        "clips_per_s": round(n_now / elapsed, 3) if elapsed > 0 and n_now else None,
        "realtime_factor": round(audio_s / elapsed, 3) if elapsed > 0 and audio_s else None,
        "corpus_wer": corpus_wer_of(ws, table, journal.config_hash),
        "n_failed": len(failures),
        "failure_reasons": dict(Counter(f["reason"].split(":")[0] for f in failures)),
        "failures": failures[:20],
        "languages_detected": {k: v for k, v in detected_langs.items() if v},
        "n_code_switching": n_switch,
        "notes": notes,
    }
    path = ws.reports_dir / "transcribe.json"
    report["report"] = str(path)
    atomic_write_text(path, json.dumps(report, indent=2, default=str) + "\n")
    return report


def _in_clip_order(ws: Workspace, table: Any, clip_ids: Sequence[str]) -> Any:
    """The transcripts table with its rows in clips-table order (rows of other clips last), rewritten if the
    journal's order (the order batches finished, with Ray) differs."""
    import pyarrow as pa

    rank = {cid: i for i, cid in enumerate(clip_ids)}
    ids = table.column("clip_id").to_pylist()
    order = sorted(range(len(ids)), key=lambda i: (rank.get(ids[i], len(rank)), i))
    if order == list(range(len(ids))):
        return table
    table = table.take(pa.array(order, pa.int64()))
    ws.write_table("transcripts", table)
    return table


def corpus_wer_of(ws: Workspace, transcripts: Any, config_hash: str) -> dict:
    """Pooled WER (see :mod:`casebench.asr.wer`) of the transcripts made under ``config_hash`` whose clips
    have a ``text_prompt``; ``{"wer": None, "n_clips": 0, ...}`` when there are none."""
    clips = ws.read_table("clips")
    prompts = dict(zip(clips.column("clip_id").to_pylist(), clips.column("text_prompt").to_pylist(),
                       strict=True))
    total: WerCounts = ZERO
    n = 0
    for cid, text, h in zip(transcripts.column("clip_id").to_pylist(), transcripts.column("text").to_pylist(),
                            transcripts.column("config_hash").to_pylist(), strict=True):
        if h == config_hash and prompts.get(cid):
            total = total + wer_counts(prompts[cid], text or "")  # a failed (null) text counts as nothing
            n += 1
    return {**total.to_dict(), "n_clips": n}


def _progress(progress: bool | Callable[[int, int], None], total: int) -> Callable[[int | None], None]:
    """A function to call with the number of clips done (None at the end)."""
    if callable(progress):
        return lambda done: progress(done if done is not None else total, total)
    if not progress:
        return lambda done: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("transcribe"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=False)
    task = bar.add_task("clips", total=total)
    bar.start()

    def update(done: int | None) -> None:
        if done is None:
            bar.stop()
        else:
            bar.update(task, completed=done)

    return update
