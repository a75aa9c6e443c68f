"""ASR backends for ``casebench transcribe``: a registry of one module per backend.

:data:`BACKENDS` maps a backend name to ``"module:Class"``; modules are imported only when a backend is
built, so listing the names (the CLI's ``--backend`` choices) imports no ASR library. A new backend is one
module with a subclass of :class:`casebench.asr.base.AsrBackend` (``name``, ``source``, ``licence``, a
docstring) plus one line here.

>>> sorted(BACKENDS)
['faster-whisper', 'openai-whisper']
>>> get_backend_class("faster-whisper").name
'faster-whisper'
"""

from __future__ import annotations

import importlib
from typing import Any

from casebench.errors import unknown_name

DEFAULT_BACKEND = "faster-whisper"

BACKENDS: dict[str, str] = {
    "faster-whisper": "casebench.asr.faster_whisper:FasterWhisperBackend",
    "openai-whisper": "casebench.asr.openai_whisper:OpenAIWhisperBackend",
}


def get_backend_class(name: str) -> type:
    """The backend class registered as ``name`` (ConfigError with a "did you mean" for an unknown name)."""
    if name not in BACKENDS:
        raise unknown_name("ASR backend", name, BACKENDS)
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_backend(name: str = DEFAULT_BACKEND, model: str | None = None, **kwargs: Any):
    """Build backend ``name`` with ``model`` (None: the backend's default) and its keyword options
    (``options=DecodeOptions(...)``, ``device``, ``compute_type``, ``cpu_threads``). The model loads lazily,
    on first use."""
    return get_backend_class(name)(model, **kwargs)
