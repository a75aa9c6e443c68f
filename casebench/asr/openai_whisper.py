"""openai-whisper backend (``--backend openai-whisper``): OpenAI's reference Whisper on PyTorch.

An optional extra (it needs torch): ``pip install openai-whisper torch``. ``model`` is a model name
(``tiny``, ``base.en``, ``large-v3``, ...) whose checkpoint is already in Whisper's download folder
(``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``), or the path of a checkpoint file (``.pt`` with
``dims`` and ``model_state_dict``). Nothing is downloaded at run time: for a name that is not cached the
error says how to fetch it once.

openai-whisper has no batched decoding: windows are decoded one after the other with
``model.transcribe`` (beam search at temperature 0 when ``beam_size`` > 1, word timestamps, no conditioning
on the previous window), so packing short clips into windows is where the speed comes from.

Source: https://github.com/openai/whisper (MIT; model weights MIT).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from casebench.asr.base import AsrBackend, Decoded, DecodeOptions, Segment, Word, file_fingerprint, package_version
from casebench.errors import ConfigError, MissingDependencyError, did_you_mean

INSTALL_HINT = "pip install openai-whisper torch"


def _import_whisper():
    try:
        import torch  # noqa: F401  (imported here so that a missing torch is named, not a missing whisper)
        import whisper
    except ImportError as e:
        raise MissingDependencyError(f"the openai-whisper backend needs openai-whisper and torch ({e}); "
                                     f"install them with: {INSTALL_HINT}") from e
    return whisper


def cache_dir() -> Path:
    """Where openai-whisper keeps downloaded checkpoints (its own default)."""
    return Path(os.getenv("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"


def resolve_checkpoint(model: str | os.PathLike) -> Path:
    """The local checkpoint file for a model name or path; ConfigError (never a download) if there is none."""
    path = Path(model).expanduser()
    if path.is_file():
        return path.resolve()
    if path.suffix == ".pt" or os.sep in str(model):
        raise ConfigError(f"--model {str(model)!r}: no such checkpoint file; expected a Whisper checkpoint "
                          "(.pt) or a model name")
    whisper = _import_whisper()
    names = whisper.available_models()
    if str(model) not in names:
        hint = did_you_mean(str(model), names)
        raise ConfigError(f"--model {str(model)!r}: unknown openai-whisper model; expected one of {names} "
                          "or a checkpoint path" + (f" ({hint})" if hint else ""))
    url = whisper._MODELS[str(model)]  # the file name of a cached checkpoint is that of its URL
    cached = cache_dir() / os.path.basename(url)
    if not cached.is_file():
        raise ConfigError(f"--model {str(model)!r}: checkpoint not found at {cached}, and casebench does not "
                          "download at run time; fetch it once with: python -c \"import whisper; "
                          f"whisper.load_model('{model}')\"")
    return cached



class OpenAIWhisperBackend(AsrBackend):
    """Whisper via the openai-whisper package (see the module docstring)."""

    name = "openai-whisper"
    source = "https://github.com/openai/whisper"
    licence = "MIT (code and weights)"

    def __init__(self, model: str | os.PathLike | None = None, *, options: DecodeOptions = DecodeOptions(),
                 device: str = "cpu", compute_type: str | None = None, cpu_threads: int | None = None):
        _import_whisper()
        self.checkpoint = resolve_checkpoint(model or "tiny.en")
        self.model_name = Path(self.checkpoint).stem
        self.options = options
        self.device = device
        self.fp16 = compute_type in ("float16", "fp16") and device != "cpu"
        self.cpu_threads = int(cpu_threads) if cpu_threads else min(4, os.cpu_count() or 1)

    @cached_property
    def _model(self):
        import torch
        import whisper

        if self.device == "cpu":
            torch.set_num_threads(self.cpu_threads)
        return whisper.load_model(str(self.checkpoint), device=self.device)

    @cached_property
    def fingerprint(self) -> str:
        return file_fingerprint(self.checkpoint)

    @property
    def model_id(self) -> str:
        return f"openai-whisper {package_version('openai-whisper')}: {self.model_name} @{self.fingerprint}"

    @property
    def multilingual(self) -> bool:
        return bool(self._model.is_multilingual)

    def languages(self) -> frozenset[str]:
        from whisper.tokenizer import LANGUAGES

        if not self.multilingual:
            return frozenset(("en",))
        # LANGUAGES is in token order with yue (large-v3's 100th) last; earlier models have 99 tokens
        return frozenset(tuple(LANGUAGES)[:getattr(self._model, "num_languages", len(LANGUAGES))])

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "openai_whisper": package_version("openai-whisper"),
                "torch": package_version("torch"), "model": self.model_name, "model_fingerprint": self.fingerprint,
                "device": self.device, "fp16": self.fp16, **self.options.to_dict()}

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        import whisper

        model = self._model
        if not model.is_multilingual:
            return "en", 1.0
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(np.asarray(audio, dtype=np.float32)),
                                          n_mels=model.dims.n_mels).to(model.device)
        _, probs = model.detect_language(mel)
        language = max(probs, key=probs.get)
        return language, float(probs[language])

    def decode(self, audios: Sequence[np.ndarray], language: str | None) -> list[Decoded]:
        out = []
        for audio in audios:
            audio = np.asarray(audio, dtype=np.float32)
            prob = None  # given, or fixed by an English-only model
            lang = language
            if lang is None:
                if self._model.is_multilingual:
                    lang, prob = self.detect_language(audio)
                else:
                    lang = "en"
            greedy = self.options.beam_size <= 1 or self.options.temperature > 0
            beam = None if greedy else self.options.beam_size
            result = self._model.transcribe(audio, language=lang, task="transcribe", verbose=None,
                                            temperature=self.options.temperature, beam_size=beam,
                                            word_timestamps=True, condition_on_previous_text=False,
                                            fp16=self.fp16)
            segments = tuple(
                Segment(float(s["start"]), float(s["end"]), s["text"], float(s["avg_logprob"]),
                        float(s["no_speech_prob"]),
                        tuple(Word(w["word"], round(float(w["start"]), 3), round(float(w["end"]), 3),
                                   float(w["probability"])) for w in s.get("words", ())))
                for s in result["segments"])
            out.append(Decoded(lang, prob, segments))
        return out
