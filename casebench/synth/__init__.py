"""Synthesize CASE-style conflict clips: sentences carrying one emotion, spoken with another.

- :mod:`casebench.synth.texts`: sentence sources (built-in bank, CSV, OpenAI-compatible chat model);
- :mod:`casebench.synth.design`: the acoustic x semantic crossing plan, reproducible from a seed;
- :mod:`casebench.synth.backends`: TTS backends (``espeak-ng``, ``command``, ``openai``), a registry dict;
- :mod:`casebench.synth.pipeline`: :func:`synth`, the resumable step that fills the ``clips`` table.
"""

from __future__ import annotations

from casebench.synth.pipeline import synth

__all__ = ["synth"]
