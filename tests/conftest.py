"""Shared pytest fixtures. Append new fixtures at the end; keep imports local or aliased so blocks do not clash."""

# -- Label Studio server (tests/test_labelstudio.py) ---------------------------------------------------------

import contextlib as _contextlib
import os as _os
import shutil as _shutil
import signal as _signal
import socket as _socket
import subprocess as _subprocess
import sys as _sys
import time as _time
from pathlib import Path as _Path
from typing import NamedTuple as _NamedTuple

import pytest as _pytest

LABEL_STUDIO_VENV = _Path(__file__).resolve().parent.parent / ".venv-labelstudio"
LABEL_STUDIO_TOKEN = "casebench-test-token-0123456789"  # a legacy token; > 5 characters as LS requires
LABEL_STUDIO_ADMIN = "admin@casebench.test"


class LabelStudioServer(_NamedTuple):
    """A running Label Studio: its URL, an admin's API token, and the LOCAL_FILES_DOCUMENT_ROOT under which
    tests must create the workspaces they push (their audio is served from there)."""

    url: str
    token: str
    document_root: _Path
    data_dir: _Path


def _free_port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _label_studio_version() -> str:
    found = sorted(LABEL_STUDIO_VENV.glob("lib/python*/site-packages/label_studio-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else "unknown"


def _label_studio_env(data_dir: _Path, document_root: _Path) -> dict:
    # a clean environment: no inherited LABEL_STUDIO_*/HEARTEX_* settings, no network beyond 127.0.0.1
    env = {k: v for k, v in _os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in ("USERNAME", "PASSWORD", "USER_TOKEN")}
    env.update({"LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LOCAL_FILES_SERVING_ENABLED": "true",
                "LOCAL_FILES_DOCUMENT_ROOT": str(document_root), "LATEST_VERSION_CHECK": "false",
                "COLLECT_ANALYTICS": "false", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def _migrated_template(cache_dir: _Path | None, scratch: _Path) -> _Path | None:
    """A database with every migration applied, built once and kept in pytest's cache.

    A fresh Label Studio database takes about two minutes of migrations on a small machine; the server
    itself starts in about ten seconds. The template (keyed by the Label Studio version) is copied into
    each session's own data folder, so every session still gets a fresh, empty server. Without pytest's
    cache (``-p no:cacheprovider``) every session migrates from scratch.
    """
    if cache_dir is None:
        return None
    template = cache_dir / "label_studio.sqlite3"
    if template.is_file():
        return template
    build = scratch / "template"
    build.mkdir(parents=True, exist_ok=True)
    cmd = [str(LABEL_STUDIO_VENV / "bin" / "label-studio"), "version", "--data-dir", str(build)]
    log = scratch / "migrate.log"
    with open(log, "wb") as out:
        proc = _subprocess.run(cmd, env=_label_studio_env(build, scratch), stdout=out, stderr=_subprocess.STDOUT,
                               timeout=900, check=False)
    db = build / "label_studio.sqlite3"
    if proc.returncode != 0 or not db.is_file():
        _pytest.fail(f"migrating a Label Studio database failed (exit {proc.returncode}); log {log}:\n"
                     + log.read_text(errors="replace")[-3000:])
    tmp = cache_dir / f".label_studio.sqlite3.{_os.getpid()}.tmp"
    _shutil.copyfile(db, tmp)
    _os.replace(tmp, template)
    return template


@_pytest.fixture(scope="session")
def label_studio(tmp_path_factory, request):
    """The real Label Studio server from ``.venv-labelstudio`` (installed by scripts/install.sh), one per
    session, on 127.0.0.1 and a free port, with its own data folder, local-files serving enabled and an
    admin created non-interactively (``label-studio start --username --password --user-token
    --enable-legacy-api-token``). Yields a :class:`LabelStudioServer` (url, token, document_root,
    data_dir); the server is stopped at the end of the session."""
    import httpx

    exe = LABEL_STUDIO_VENV / "bin" / "label-studio"
    if not exe.exists():
        _pytest.fail(f"{exe} not found: run scripts/install.sh (it installs the Label Studio server in its own venv)")
    base = tmp_path_factory.mktemp("label-studio")
    data_dir, document_root = base / "data", base / "files"
    data_dir.mkdir()
    document_root.mkdir()
    cache = None
    if getattr(request.config, "cache", None) is not None:
        cache = _Path(request.config.cache.mkdir(f"label-studio-{_label_studio_version()}-py{_sys.version_info[0]}"))
    template = _migrated_template(cache, base)
    if template is not None:
        _shutil.copyfile(template, data_dir / "label_studio.sqlite3")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = base / "server.log"
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir), "--username", LABEL_STUDIO_ADMIN, "--password", "casebench-test-pw",
           "--user-token", LABEL_STUDIO_TOKEN, "--enable-legacy-api-token", "--log-level", "WARNING"]
    log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
    proc = _subprocess.Popen(cmd, env=_label_studio_env(data_dir, document_root), stdout=log,
                             stderr=_subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            with _contextlib.suppress(ProcessLookupError):
                _os.killpg(proc.pid, _signal.SIGTERM)  # the server's own process group (start_new_session)
            try:
                proc.wait(timeout=15)
            except _subprocess.TimeoutExpired:
                with _contextlib.suppress(ProcessLookupError):
                    _os.killpg(proc.pid, _signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()

    deadline = _time.monotonic() + 300
    try:
        while True:
            if proc.poll() is not None:
                _pytest.fail(f"Label Studio exited with code {proc.returncode} before answering; log "
                             f"{log_path}:\n" + log_path.read_text(errors="replace")[-3000:])
            with _contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    # /health answers before the admin exists; wait until the token works too
                    r = httpx.get(f"{url}/api/current-user/whoami",
                                  headers={"Authorization": f"Token {LABEL_STUDIO_TOKEN}"}, timeout=5)
                    if r.status_code == 200:
                        break
            if _time.monotonic() > deadline:
                _pytest.fail(f"Label Studio did not answer on {url} within 300 s; log {log_path}:\n"
                             + log_path.read_text(errors="replace")[-3000:])
            _time.sleep(0.5)
    except BaseException:
        stop()
        raise
    try:
        yield LabelStudioServer(url, LABEL_STUDIO_TOKEN, document_root, data_dir)
    finally:
        stop()
