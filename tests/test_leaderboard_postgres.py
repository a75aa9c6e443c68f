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
