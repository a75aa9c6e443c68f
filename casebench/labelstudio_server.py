"""A local Label Studio server for the demo and the tests: started from its own venv, on 127.0.0.1.

Label Studio pins its own dependency versions, so ``scripts/install.sh`` installs it into
``.venv-labelstudio`` beside the project's venv. :func:`local_server` starts it with a fresh data folder,
local-files serving (so pushed workspaces' audio is served from ``document_root``) and an admin with a
legacy API token, waits until the token works, and stops the whole process group at the end.

A fresh database spends one to two minutes on migrations; pass ``template_db`` (a migrated
``label_studio.sqlite3``, see :func:`migrated_template`) to start in seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from casebench.errors import CasebenchError, MissingDependencyError

VENV = Path(__file__).resolve().parent.parent / ".venv-labelstudio"
ADMIN = "admin@casebench.local"


@dataclass(frozen=True)
class LabelStudioServer:
    """A running Label Studio: its URL, an admin's API token, and the LOCAL_FILES_DOCUMENT_ROOT under
    which workspaces to push must live (their audio is served from there)."""

    url: str
    token: str
    document_root: Path
    data_dir: Path


def executable(venv: Path = VENV) -> Path:
    exe = Path(venv) / "bin" / "label-studio"
    if not exe.exists():
        raise MissingDependencyError(f"{exe} not found: run scripts/install.sh (it installs the Label Studio "
                                     "server into its own venv)")
    return exe


def version(venv: Path = VENV) -> str:
    found = sorted(Path(venv).glob("lib/python*/site-packages/label_studio-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, document_root: Path) -> dict:
    """A clean environment: no inherited LABEL_STUDIO_*/HEARTEX_* settings, no version check, no analytics."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in ("USERNAME", "PASSWORD", "USER_TOKEN")}
    env.update({"LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LOCAL_FILES_SERVING_ENABLED": "true",
                "LOCAL_FILES_DOCUMENT_ROOT": str(document_root), "LATEST_VERSION_CHECK": "false",
                "COLLECT_ANALYTICS": "false", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def migrated_template(cache_dir: Path, scratch: Path, venv: Path = VENV) -> Path:
    """A database with every migration applied, built once into ``cache_dir`` (keyed by the caller, e.g.
    by Label Studio version) and copied into each server's fresh data folder."""
    template = Path(cache_dir) / "label_studio.sqlite3"
    if template.is_file():
        return template
    build = Path(scratch) / "template"
    build.mkdir(parents=True, exist_ok=True)
    log = Path(scratch) / "migrate.log"
    with open(log, "wb") as out:
        proc = subprocess.run([str(executable(venv)), "version", "--data-dir", str(build)],
                              env=server_env(build, Path(scratch)), stdout=out, stderr=subprocess.STDOUT,
                              timeout=900, check=False)
    db = build / "label_studio.sqlite3"
    if proc.returncode != 0 or not db.is_file():
        raise CasebenchError(f"migrating a Label Studio database failed (exit {proc.returncode}); log {log}:\n"
                             + log.read_text(errors="replace")[-3000:])
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(cache_dir) / f".label_studio.sqlite3.{os.getpid()}.tmp"
    shutil.copyfile(db, tmp)
    os.replace(tmp, template)
    return template


@contextlib.contextmanager
def local_server(base: str | Path, *, token: str = "casebench-local-token-0123456789",
                 password: str = "casebench-local-pw", template_db: Path | None = None,
                 document_root: str | Path | None = None, timeout_s: float = 300,
                 venv: Path = VENV) -> Iterator[LabelStudioServer]:
    """Run a Label Studio server with data under ``base`` (``data/``, ``server.log``); audio is served from
    ``document_root`` (default ``base/files``), which must contain the workspaces to push."""
    import httpx

    exe = executable(venv)
    base = Path(base)
    data_dir = base / "data"
    document_root = Path(document_root) if document_root is not None else base / "files"
    data_dir.mkdir(parents=True, exist_ok=True)
    document_root.mkdir(parents=True, exist_ok=True)
    if template_db is not None and not (data_dir / "label_studio.sqlite3").exists():
        shutil.copyfile(template_db, data_dir / "label_studio.sqlite3")
    url = f"http://127.0.0.1:{free_port()}"
    log_path = base / "server.log"
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
           "--data-dir", str(data_dir), "--username", ADMIN, "--password", password, "--user-token", token,
           "--enable-legacy-api-token", "--log-level", "WARNING"]
    log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
    proc = subprocess.Popen(cmd, env=server_env(data_dir, document_root), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()

    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise CasebenchError(f"Label Studio exited with code {proc.returncode} before answering; log "
                                     f"{log_path}:\n" + log_path.read_text(errors="replace")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    # /health answers before the admin exists; wait until the token works too
                    r = httpx.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"},
                                  timeout=5)
                    if r.status_code == 200:
                        break
            if time.monotonic() > deadline:
                raise CasebenchError(f"Label Studio did not answer on {url} within {timeout_s:.0f} s; log "
                                     f"{log_path}:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield LabelStudioServer(url, token, document_root, data_dir)
    finally:
        stop()
