"""TTS backends of ``synth``: one module per backend, one line per backend in :data:`BACKENDS`.

The CLI's ``--backend`` choices come from this registry; a meta-test checks every entry has a
description and a licence note.

>>> sorted(BACKENDS)
['command', 'espeak-ng', 'openai']
"""

from __future__ import annotations

from typing import Any

from casebench.errors import unknown_name
from casebench.synth.backends.base import Backend
from casebench.synth.backends.command import CommandBackend
from casebench.synth.backends.espeak import EspeakBackend
from casebench.synth.backends.openai_speech import OpenAISpeechBackend

BACKENDS: dict[str, type[Backend]] = {
    EspeakBackend.name: EspeakBackend,
    CommandBackend.name: CommandBackend,
    OpenAISpeechBackend.name: OpenAISpeechBackend,
}


def make_backend(name: str, **options: Any) -> Backend:
    """An instance of the backend registered as ``name``; ConfigError (with did-you-mean) otherwise."""
    if name not in BACKENDS:
        raise unknown_name("TTS backend", name, BACKENDS)
    return BACKENDS[name](**options)


__all__ = ["BACKENDS", "Backend", "make_backend"]
