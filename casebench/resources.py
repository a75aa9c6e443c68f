"""Runtime data shipped inside the package, behind one loader.

Everything casebench reads at run time that is not code lives under ``casebench/`` so that a wheel carries it:
``data/cards/`` (data card templates), ``data/guidelines/`` (rater guidelines, one Markdown file per
dimension), ``data/lexicon/``, ``data/synth/``, ``data/predict/``, ``templates/`` (HTML reports),
``taxonomy/`` and ``benchmarks/``. Code asks this module for a file by its path under the package and never
builds paths from ``__file__``; a missing resource is a :class:`~casebench.errors.ConfigError` naming it, never a
silent fallback.

>>> "## " in read_text("data/guidelines/acoustic_emotion.md")
True
>>> sorted(p.name for p in listdir("data/cards"))
['card.md.j2']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from casebench.errors import ConfigError

PACKAGE = "casebench"


def files(relpath: str = "") -> Traversable:
    """The resource at ``relpath`` (``/``-separated, relative to the package), which may not exist."""
    node = resources.files(PACKAGE)
    for part in [p for p in relpath.split("/") if p]:
        node = node / part
    return node


def _existing(relpath: str) -> Traversable:
    node = files(relpath)
    if not (node.is_file() or node.is_dir()):
        raise ConfigError(f"casebench resource {PACKAGE}/{relpath} is missing from the installed package; "
                          "reinstall casebench (a wheel or `pip install -e .` ships it)")
    return node


def read_text(relpath: str) -> str:
    """The text (UTF-8) of the packaged file ``relpath``.

    Raises:
        ConfigError: the file is not in the installed package.
    """
    node = _existing(relpath)
    if not node.is_file():
        raise ConfigError(f"casebench resource {PACKAGE}/{relpath} is a folder, not a file")
    return node.read_text("utf-8")


def exists(relpath: str) -> bool:
    """Whether the packaged file or folder ``relpath`` exists."""
    node = files(relpath)
    return node.is_file() or node.is_dir()


def listdir(relpath: str) -> list[Traversable]:
    """The entries of the packaged folder ``relpath``, sorted by name."""
    return sorted(_existing(relpath).iterdir(), key=lambda p: p.name)


@contextlib.contextmanager
def as_path(relpath: str) -> Iterator[Path]:
    """A real file-system path of the packaged file or folder (for loaders that need one, e.g. jinja2's
    ``FileSystemLoader``); valid inside the ``with`` block."""
    with resources.as_file(_existing(relpath)) as path:
        yield Path(path)


def jinja_env(folder: str, **options):
    """A jinja2 environment loading templates from the packaged ``folder`` (e.g. ``"templates"``)."""
    import jinja2

    _existing(folder)
    return jinja2.Environment(loader=jinja2.PackageLoader(PACKAGE, folder), **options)


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """No Hugging Face Hub access while a model on disk loads (faster-whisper and sentence-transformers fall back
    to the Hub for a missing file); the environment is restored afterwards, so later steps of the same process
    (a Hub dataset for ``predict``, an upload) may use the Hub.

    >>> before = os.environ.get("HF_HUB_OFFLINE")
    >>> with hub_offline():
    ...     os.environ["HF_HUB_OFFLINE"], os.environ["TRANSFORMERS_OFFLINE"]
    ('1', '1')
    >>> os.environ.get("HF_HUB_OFFLINE") == before
    True
    """
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
