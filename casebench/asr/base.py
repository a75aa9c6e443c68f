"""What every ASR backend returns and must provide: plain data classes and one abstract class.

A backend decodes windows of 16 kHz mono float32 audio (each at most :data:`WINDOW_S` seconds, except that
a backend must also accept longer audio, which it decodes window after window) into :class:`Decoded`
results: the language and the segments Whisper found, each with its words and their timestamps in seconds
from the start of the audio it was given. Packing clips into windows and splitting the words back lives in
:mod:`casebench.asr.packing`, the same for every backend.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

SAMPLE_RATE = 16_000
#: Whisper's fixed input length: every input is padded (or cut) to this many seconds.
WINDOW_S = 30.0


@dataclass(frozen=True)
class Word:
    """One recognised word; ``word`` keeps Whisper's leading space and attached punctuation."""

    word: str
    start: float
    end: float
    probability: float

    def shifted(self, offset: float, limit: float | None = None) -> Word:
        """This word with ``offset`` subtracted from its times, clamped to ``[0, limit]``, rounded to ms."""
        def clamp(t: float) -> float:
            t = max(0.0, t - offset)
            return round(min(t, limit) if limit is not None else t, 3)

        return Word(self.word, clamp(self.start), clamp(self.end), float(self.probability))

    def to_dict(self) -> dict:
        return {"word": self.word, "start": float(self.start), "end": float(self.end),
                "probability": float(self.probability)}


@dataclass(frozen=True)
class Segment:
    """A stretch of decoded text. ``avg_logprob`` and ``no_speech_prob`` are Whisper's, for the 30-s
    window the segment was decoded in (Whisper scores whole windows, not segments)."""

    start: float
    end: float
    text: str
    avg_logprob: float | None
    no_speech_prob: float | None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Decoded:
    """The result of decoding one window (or one long audio)."""

    language: str | None
    language_prob: float | None
    segments: tuple[Segment, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding settings every backend honours (they enter the transcribe config hash).

    ``beam_size`` 5 and temperature 0 are Whisper's defaults; the previous window's text is never used as a
    prompt (each window holds unrelated clips).
    """

    beam_size: int = 5
    temperature: float = 0.0

    def to_dict(self) -> dict:
        return {"beam_size": self.beam_size, "temperature": self.temperature}


class AsrBackend(ABC):
    """One speech recogniser. Subclasses set ``name``, ``source`` and ``licence`` and implement the rest.

    ``model`` is a backend-specific model reference (a directory, a checkpoint, a model name); None means the
    backend's default. Loading may be slow: build one backend per process (or Ray actor) and reuse it.
    """

    name: ClassVar[str]
    source: ClassVar[str]
    licence: ClassVar[str]

    options: DecodeOptions

    @property
    @abstractmethod
    def model_id(self) -> str:
        """What goes into ``transcripts.model``: backend, its version, the model's name and fingerprint."""

    @property
    @abstractmethod
    def multilingual(self) -> bool:
        """False for an English-only model (its language is always ``en``)."""

    @abstractmethod
    def languages(self) -> frozenset[str]:
        """Language codes the model can be told to transcribe (Whisper's: ``en``, ``fr``, ``yue``...)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything about the backend and model that changes its output (hashed into the step config)."""

    @abstractmethod
    def decode(self, audios: Sequence[np.ndarray], language: str | None) -> list[Decoded]:
        """Decode each audio (16 kHz mono float32) with word timestamps, in ``language`` (None: detect)."""

    @abstractmethod
    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The most probable language of ``audio`` and its probability."""

    def detect_languages(self, audios: Sequence[np.ndarray]) -> list[list[tuple[str, float]]]:
        """For each audio, its languages with their probabilities, most probable first (from the first 30 s).

        The default asks :meth:`detect_language` audio by audio (top language only); backends override it
        to run all audios in one batch and return the whole distribution.
        """
        return [[self.detect_language(a)] for a in audios]


def file_fingerprint(path: str | os.PathLike, chunk: int = 4 << 20) -> str:
    """16 hex digits identifying a (possibly multi-GB) model file: sha256 of its size, first and last 4 MiB.

    Cheap enough to run on every start; two different checkpoints of the same size would have to agree in
    their first and last 4 MiB to collide.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            h.update(f.read(chunk))
    return h.hexdigest()[:16]


def package_version(dist: str) -> str:
    """The installed version of distribution ``dist`` (recorded with every transcription), or "unknown"."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
