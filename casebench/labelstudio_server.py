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


# -- a long-running local server for curators: `casebench labelstudio start|stop|status` ------------------------

STATE_FILE = "server.json"
DEFAULT_PORT = 8080


def default_data_dir() -> Path:
    """Where ``casebench labelstudio`` keeps the server's database, log and state (``server.json``):
    CASEBENCH_LABEL_STUDIO_DIR, else ``$XDG_DATA_HOME/casebench/label-studio`` (~/.local/share/...). Never
    inside the document root, whose files the server hands out."""
    env = os.environ.get("CASEBENCH_LABEL_STUDIO_DIR")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "casebench" / "label-studio"


def read_state(data_dir: str | Path | None = None) -> dict | None:
    """The state a ``start`` left in ``data_dir`` (url, token, password, document_root, pid, ...), or None."""
    import json

    path = Path(data_dir or default_data_dir()) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise CasebenchError(f"{path}: unreadable Label Studio state ({e}); delete it and start again") from e


def _write_state(data_dir: Path, state: dict) -> None:
    import json

    from casebench.workspace import atomic_open

    with atomic_open(data_dir / STATE_FILE) as f:
        os.fchmod(f.fileno(), 0o600)  # it holds the admin's password and token
        f.write((json.dumps(state, indent=2) + "\n").encode())


def _alive(pid: int | None, data_dir: Path) -> bool:
    """True when ``pid`` runs and is the Label Studio of ``data_dir`` (not another process that got the id)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc (macOS): trust the id
        except OSError:
            return False
        return True
    return any(b"label-studio" in part for part in cmdline) and str(data_dir / "data").encode() in cmdline


def status(data_dir: str | Path | None = None) -> dict:
    """``{"running": bool, ...state}``: is the server of ``data_dir`` up (process alive and /health answering)?"""
    import httpx

    data_dir = Path(data_dir or default_data_dir()).resolve()
    if data_dir.exists() and not data_dir.is_dir():
        from casebench.errors import ConfigError

        raise ConfigError(f"--data-dir {data_dir} is a file; expected the folder `casebench labelstudio start` used")
    state = read_state(data_dir) or {}
    running = _alive(state.get("pid"), data_dir)
    healthy = False
    if running:
        with contextlib.suppress(httpx.HTTPError):
            healthy = httpx.get(f"{state['url']}/health", timeout=3).status_code == 200
    return {**state, "data_dir": str(data_dir), "running": running, "healthy": healthy}


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start(document_root: str | Path, *, data_dir: str | Path | None = None, port: int | None = None,
          host: str = "127.0.0.1", timeout_s: float = 600, venv: Path = VENV) -> dict:
    """Start Label Studio in the background, serving local files from ``document_root``, and wait until its
    admin token works. The database, log and ``server.json`` (URL, admin e-mail, password, token, document
    root, process id) stay in ``data_dir`` (:func:`default_data_dir`), so the next start reuses them and
    :func:`stop` / :func:`status` work from any later command. A first start migrates a new database (one to
    two minutes). ``port`` None: :data:`DEFAULT_PORT` when free, else any free port. Returns the state with
    ``already_running`` (a server of ``data_dir`` with this root was up).

    Raises ConfigError when a server of ``data_dir`` runs with another document root, or the port is taken;
    MissingDependencyError when scripts/install.sh has not installed the server.
    """
    import secrets
    import time

    import httpx

    from casebench.errors import ConfigError

    exe = executable(venv)
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    root = Path(document_root).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"document root {root} is not a folder; give the folder that holds your workspaces")
    current = status(data_dir)
    if current["running"]:
        if Path(current["document_root"]) != root:
            raise ConfigError(f"Label Studio of {data_dir} already runs at {current['url']} serving "
                              f"{current['document_root']}; stop it first (casebench labelstudio stop) to serve {root}")
        return {**current, "already_running": True}
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    if port is None:
        port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else free_port()
    elif not _port_free(host, port):
        raise ConfigError(f"port {port} on {host} is taken (another Label Studio?); pass --port with a free one")
    state = {"url": f"http://{host}:{port}", "username": current.get("username") or ADMIN,
             "password": current.get("password") or secrets.token_urlsafe(12),
             "token": current.get("token") or secrets.token_hex(20), "document_root": str(root),
             "data_dir": str(data_dir), "port": port, "version": version(venv), "log": str(data_dir / "server.log")}
    cmd = [str(exe), "start", "--no-browser", "--internal-host", host, "--port", str(port), "--data-dir",
           str(data_dir / "data"), "--username", state["username"], "--password", state["password"],
           "--user-token", state["token"], "--enable-legacy-api-token", "--log-level", "WARNING"]
    with open(data_dir / "server.log", "ab") as log:
        proc = subprocess.Popen(cmd, env=server_env(data_dir / "data", root), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    state["pid"] = proc.pid
    _write_state(data_dir, state)
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Token {state['token']}"}
    while True:
        if proc.poll() is not None:
            state["pid"] = None
            _write_state(data_dir, state)
            raise CasebenchError(f"Label Studio exited with code {proc.returncode} before answering; log "
                                 f"{state['log']}:\n" + Path(state["log"]).read_text(errors="replace")[-3000:])
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{state['url']}/api/current-user/whoami", headers=headers, timeout=5).status_code == 200:
                return {**state, "running": True, "healthy": True, "already_running": False}
        if time.monotonic() > deadline:
            stop(data_dir)
            raise CasebenchError(f"Label Studio did not answer on {state['url']} within {timeout_s:.0f} s; log "
                                 f"{state['log']}")
        time.sleep(0.5)


def stop(data_dir: str | Path | None = None, *, timeout_s: float = 20) -> dict:
    """Stop the server that :func:`start` left running for ``data_dir`` (its whole process group: SIGTERM, then
    SIGKILL after ``timeout_s``). The state keeps the token and password for the next start. Returns
    ``{"stopped": bool, "pid": ...}`` (False when nothing was running)."""
    import time

    data_dir = Path(status(data_dir)["data_dir"])  # checks the folder
    state = read_state(data_dir)
    pid = (state or {}).get("pid")
    if not _alive(pid, data_dir):
        if state and pid:
            _write_state(data_dir, {**state, "pid": None})
        return {"stopped": False, "pid": None, "data_dir": str(data_dir)}
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)  # start_new_session: the server's group id is its pid
    deadline = time.monotonic() + timeout_s
    while _alive(pid, data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid, data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when this process started it (tests, one Python session)
    _write_state(data_dir, {**state, "pid": None})
    return {"stopped": True, "pid": pid, "data_dir": str(data_dir)}


def exports(state: dict) -> list[str]:
    """Shell lines that point ``casebench annotate`` (and the label-studio-sdk) at this server."""
    return [f"export LABEL_STUDIO_URL={state['url']}", f"export LABEL_STUDIO_API_KEY={state['token']}",
            f"export LOCAL_FILES_DOCUMENT_ROOT={state['document_root']}"]


def local_server_for(url: str, data_dir: str | Path | None = None) -> dict | None:
    """The state of the running ``casebench labelstudio`` server at ``url`` (or any, when ``url`` is None)."""
    st = status(data_dir)
    if st["running"] and (url is None or st.get("url", "").rstrip("/") == url.rstrip("/")):
        return st
    return None
