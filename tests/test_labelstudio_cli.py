"""`casebench labelstudio start|stop|status` and the audio check of `annotate push`, against the real Label Studio
of .venv-labelstudio. One server start for the whole module (its data folder is seeded with the migrated
database of the `label_studio_template_db` fixture, as an earlier start would have left it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from casebench.cli import main
from casebench.labelstudio import connect
from casebench.labelstudio_server import free_port, read_state
from casebench.testing import make_workspace
from casebench.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, label_studio_template_db):
    """`casebench labelstudio start WS` with the workspace in a corpora/ folder (the document root), stopped at
    the end with `casebench labelstudio stop`."""
    tmp = tmp_path_factory.mktemp("ls-cli")
    data_dir = tmp / "ls-data"
    (data_dir / "data").mkdir(parents=True)
    shutil.copyfile(label_studio_template_db, data_dir / "data" / "label_studio.sqlite3")
    ws = make_workspace(tmp / "corpora", n_clips=6, with_audio=True, with_transcripts=True)
    port = free_port()
    mp = pytest.MonkeyPatch()
    mp.setenv("CASEBENCH_LABEL_STUDIO_DIR", str(data_dir))
    for var in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LOCAL_FILES_DOCUMENT_ROOT"):
        mp.delenv(var, raising=False)
    try:
        assert main(["labelstudio", "start", str(ws.root), "--port", str(port), "--json"]) == 0
        yield {"ws": ws, "data_dir": data_dir, "root": tmp / "corpora", "state": read_state(data_dir)}
    finally:
        main(["labelstudio", "stop"])
        mp.undo()


def test_start_prints_url_token_and_exports_and_status_finds_it(server, capsys):
    state = server["state"]
    assert state["document_root"] == str(server["root"].resolve()) and state["pid"]
    assert (server["data_dir"] / "server.json").stat().st_mode & 0o077 == 0  # password and token inside
    r = httpx.get(f"{state['url']}/api/current-user/whoami", headers={"Authorization": f"Token {state['token']}"})
    assert r.status_code == 200 and r.json()["email"] == state["username"]
    capsys.readouterr()
    assert main(["labelstudio", "status"]) == 0
    out = capsys.readouterr().out
    assert state["url"] in out and f"export LABEL_STUDIO_API_KEY={state['token']}" in out
    assert f"export LOCAL_FILES_DOCUMENT_ROOT={state['document_root']}" in out
    # a second start finds it running; one with another root is refused
    assert main(["labelstudio", "start", str(server["ws"].root), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["already_running"] and again["pid"] == state["pid"]
    assert main(["labelstudio", "start", "--root", str(server["ws"].root)]) == 2
    assert "stop it first" in capsys.readouterr().err


def test_push_checks_the_audio_url_and_repairs_a_wrong_root(server, capsys):
    ws: Workspace = server["ws"]
    state = server["state"]
    # the workspace folder as document root: URLs the server (serving corpora/) answers 404 to
    assert main(["annotate", "push", str(ws.root), "--document-root", str(ws.root)]) == 2
    err = capsys.readouterr().err
    assert "answered 404" in err and f"LOCAL_FILES_DOCUMENT_ROOT must be {ws.root}" in err
    assert f"this server serves {state['document_root']}" in err
    with connect(state["url"], state["token"]) as ls:
        assert [p.title for p in ls.projects.list()] == []  # the project made for the check is gone

    # no --url, --token or --document-root: the running server's, from its state file
    assert main(["annotate", "push", str(ws.root), "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    pid = pushed["projects"]["acoustic"]["project"]
    assert pushed["document_root"] == state["document_root"] and pushed["projects"]["acoustic"]["tasks_added"] == 6

    def audio_urls():
        with connect(state["url"], state["token"]) as ls:
            return {t.id: t.data for t in ls.tasks.list(project=pid, fields="all")}

    headers = {"Authorization": f"Token {state['token']}"}
    for data in audio_urls().values():
        assert httpx.get(state["url"] + data["audio"], headers=headers).status_code == 200

    # tasks pushed (by an older casebench) with the workspace as root: a push says so, --repair fixes them
    with connect(state["url"], state["token"]) as ls:
        for tid, data in audio_urls().items():
            ls.tasks.update(id=tid, data={**data, "audio": data["audio"].replace("?d=ws%2F", "?d=").replace(
                "?d=ws/", "?d=")})
    broken = audio_urls()
    assert all(httpx.get(state["url"] + d["audio"], headers=headers).status_code == 404 for d in broken.values())
    assert main(["annotate", "push", str(ws.root)]) == 2
    assert "6 of 6 task(s)" in capsys.readouterr().err
    assert main(["annotate", "push", str(ws.root), "--repair", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projects"]["acoustic"]["tasks_repaired"] == 6
    fixed = audio_urls()
    assert set(fixed) == set(broken)  # the same tasks (their annotations stay), new URLs
    assert all(httpx.get(state["url"] + d["audio"], headers=headers).status_code == 200 for d in fixed.values())


def test_stop_and_status(server, capsys):
    """Runs last in the module: stop, status says so (exit 1), the state keeps the token for the next start."""
    assert main(["labelstudio", "stop"]) == 0
    assert "stopped Label Studio" in capsys.readouterr().out
    assert main(["labelstudio", "status"]) == 1
    assert "not running" in capsys.readouterr().out
    state = read_state(server["data_dir"])
    assert state["pid"] is None and state["token"] == server["state"]["token"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server['state']['url']}/health", timeout=2)
    assert main(["labelstudio", "stop"]) == 0 and "not running" in capsys.readouterr().out
    assert not Path(f"/proc/{server['state']['pid']}").exists() or \
        Path(f"/proc/{server['state']['pid']}/cmdline").read_bytes() == b""
