"""The leaderboard on PostgreSQL (the database-URL path): a real server from Debian's PostgreSQL package,
started by the fixture on 127.0.0.1 in a temporary folder, runs the same submit → score → board flow."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_leaderboard import Site  # tests/ is on sys.path (pytest's rootdir-relative import)

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/usr/lib/postgresql/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)  # Debian's newest installed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server (trust auth, loopback only). PostgreSQL refuses to run as root, so
    the server runs as the ``postgres`` system user that Debian's package creates."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN}/initdb not found: scripts/install.sh installs Debian's postgresql package")
    # not under pytest's tmp folder: that one is root-only (0700), and the postgres user must reach the data
    base = Path(tempfile.mkdtemp(prefix="casebench-pg-"))
    shutil.chown(base, "postgres")
    os.chmod(base, 0o700)
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w",
                    "-o", f"-h 127.0.0.1 -p {port} -k {base}", "start"], check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_submit_score_and_board_on_postgres(tmp_path, postgres_url):
    site = Site(tmp_path, db_url=postgres_url)
    try:
        ids = []
        for model in ("voice-a", "voice-b"):
            r = site.api_submit(model_name=model)
            assert r.status_code in (200, 201, 202), r.text
            ids.append(r.json()["id"])
        for sub_id in ids:
            done = site.wait(sub_id, timeout=120)
            assert done["status"] == "done"
        board = site.req("GET", "/api/boards/casebench-mini/dev").json()
        assert {"voice-a", "voice-b"} <= {row["model"] for row in board["rows"]}
        subs = [site.lb.submission(i) for i in ids]
        assert all(s.score_count == 1 for s in subs)  # scored exactly once
        assert site.cfg.database_url.startswith("postgresql+psycopg://")
    finally:
        site.close()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pids: list[int], wait_s: float = 10.0) -> list[int]:
    """The processes of ``pids`` still running (not zombies) after up to ``wait_s``."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        alive = []
        for k in pids:
            try:
                state = Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(k)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.mark.slow
def test_two_worker_commands_share_200_queued_submissions(tmp_path, postgres_url):
    """Two `casebench leaderboard worker` processes (separate commands, as on two machines) drain one
    PostgreSQL queue of 200 submissions: each is scored exactly once, by one of them; SIGTERM stops each
    worker and its scoring processes."""
    import signal
    import sys
    import time

    from sqlalchemy import select
    from test_leaderboard import VOICE

    from casebench.leaderboard.config import BoardConfig, LeaderboardConfig
    from casebench.leaderboard.db import Submission
    from casebench.leaderboard.service import Leaderboard

    cfg = LeaderboardConfig(boards=[BoardConfig("casebench-mini", quota_per_day=0)], data_dir=tmp_path / "lb",
                            db_url=postgres_url, n_boot=10, workers=0, secret_key="k")
    lb = Leaderboard(cfg)
    user = lb.user_by_name("queue-filler") or lb.create_user("queue-filler", "filler-password")
    ids = []
    for i in range(200):
        p = cfg.data_dir / "tmp" / f"u{i}"
        p.write_bytes(VOICE.read_bytes())
        ids.append(lb.accept(user, "casebench-mini/dev", p, "v.jsonl", {"model_name": f"m{i}"})[0].id)
    cmd = [sys.executable, "-m", "casebench", "leaderboard", "worker", "--db", postgres_url, "--processes", "1",
           "--drain", "5"]
    logs = [open(tmp_path / f"worker{k}.log", "wb") for k in range(2)]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen(cmd, stdout=log, stderr=log) for log in logs]
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with lb.db.read() as s:
                left = s.scalar(select(func_count()).select_from(Submission).where(
                    Submission.id.in_(ids), Submission.status != "done"))
            if not left:
                break
            assert all(p.poll() is None for p in procs), "a worker exited early"
            time.sleep(0.5)
        children = {p.pid: _children(p.pid) for p in procs}
        assert all(children.values()), "each worker runs a scoring process"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        for log in logs:
            log.close()
    with lb.db.read() as s:
        subs = list(s.scalars(select(Submission).where(Submission.id.in_(ids))))
    assert len(subs) == 200 and {x.status for x in subs} == {"done"}
    assert {x.score_count for x in subs} == {1}  # none scored twice
    assert all(p.returncode == 0 for p in procs)
    for pid, kids in children.items():  # scoring processes and multiprocessing's resource tracker
        assert not _alive(kids), f"worker {pid} left processes {_alive(kids)}"
    text = [(tmp_path / f"worker{k}.log").read_text() for k in range(2)]
    scored = [int(t.rsplit("stopped: ", 1)[1].split()[0]) for t in text]
    assert sum(scored) == 200 and min(scored) > 0, text  # both took part


def func_count():
    from sqlalchemy import func

    return func.count()
