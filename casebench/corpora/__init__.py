"""Corpus importers: a local copy of an existing speech-emotion corpus -> a casebench workspace.

One module per corpus (lhotse-style recipes), each with a docstring describing the corpus, the on-disk layout
it expects (from shared/CORPORA.md, with sources), the quirks it handles and what is uncertain, and the same
interface::

    prepare(corpus_dir, workspace_dir, *, taxonomy=None, audio="link", <corpus options>, keep_unmapped=False,
            overwrite=False, progress=False) -> ImportReport

:data:`CORPORA` is the registry (the CLI's ``import-corpus`` choices come from it). Importers never download
anything: the corpora are licence-gated or not redistributable, so each test builds a tiny tree in the real
layout (:mod:`casebench.corpora.testing`). The shared machinery (label mapping, audio, tables, report) is in
:mod:`casebench.corpora.base`.

>>> sorted(CORPORA)
['crema-d', 'em2ldl', 'emis', 'emo-superb', 'emobox', 'iemocap', 'msp-podcast', 'ravdess']
>>> get_corpus("ravdes")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
casebench.errors.ConfigError: unknown corpus 'ravdes'; expected one of [...] (did you mean 'ravdess'?)
"""

from __future__ import annotations

import inspect
import os
from types import ModuleType

from casebench.corpora import crema_d, em2ldl, emis, emo_superb, emobox, iemocap, msp_podcast, ravdess
from casebench.corpora.base import ImportReport
from casebench.errors import ConfigError, did_you_mean, unknown_name

#: Registry: corpus name -> importer module.
CORPORA: dict[str, ModuleType] = {m.NAME: m for m in (crema_d, em2ldl, emis, emo_superb, emobox, iemocap,
                                                       msp_podcast, ravdess)}
#: Arguments every importer's prepare() takes (the rest are the corpus's own options).
COMMON_OPTIONS = ("corpus_dir", "workspace_dir", "taxonomy", "audio", "keep_unmapped", "overwrite", "progress")


def get_corpus(name: str) -> ModuleType:
    """The importer module registered as ``name``; ConfigError with a did-you-mean otherwise."""
    if name not in CORPORA:
        raise unknown_name("corpus", name, CORPORA)
    return CORPORA[name]


def corpus_options(name: str) -> dict[str, inspect.Parameter]:
    """The corpus-specific options of an importer's ``prepare`` (name -> parameter, with its default)."""
    params = inspect.signature(get_corpus(name).prepare).parameters
    return {k: p for k, p in params.items() if k not in COMMON_OPTIONS}


def import_corpus(name: str, corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *,
                  taxonomy: str | None = None, audio: str = "link", options: dict | None = None,
                  keep_unmapped: bool = False, overwrite: bool = False, progress: bool = False) -> ImportReport:
    """Import corpus ``name`` from ``corpus_dir`` into a new workspace at ``workspace_dir``.

    ``options`` are the corpus's own options (see :func:`corpus_options`); string values (from the command
    line) are converted to the type of the option's default. Raises ConfigError for an unknown corpus or
    option.
    """
    module = get_corpus(name)
    allowed = corpus_options(name)
    kwargs = {}
    for key, value in (options or {}).items():
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            raise ConfigError(f"{name} has no option {key!r}; its options are {sorted(allowed) or 'none'}"
                              + (f" ({hint})" if hint else ""))
        kwargs[key] = _coerce(key, value, allowed[key].default)
    return module.prepare(corpus_dir, workspace_dir, taxonomy=taxonomy, audio=audio, keep_unmapped=keep_unmapped,
                          overwrite=overwrite, progress=progress, **kwargs)


def _coerce(key: str, value, default):
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"option {key}={value!r}; expected true or false")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"option {key}={value!r}; expected an integer") from None
    return value


__all__ = ["CORPORA", "ImportReport", "corpus_options", "get_corpus", "import_corpus"]
