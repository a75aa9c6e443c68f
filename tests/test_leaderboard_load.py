"""Load test against a real server on 127.0.0.1: 200 concurrent submissions from 20 users with quotas set,
and a server restart (SIGKILL, then a new process) in the middle.

The server is ``casebench leaderboard serve`` in a subprocess (2 scoring processes, 50 resamples). Each
user sends 9 valid files and 1 invalid one, all at once. Every request carries an Idempotency-Key and is
retried with the same key when the connection fails (as ``casebench submit`` does), so each of the 200 gets
a definite answer. Checked: every accepted submission is scored exactly once (``score_count == 1``, status
``done``), every refused one has its reason (``quota_exceeded``, ``rate_limited`` or
``invalid_predictions``), quotas hold per user, and the database holds exactly the accepted submissions
(nothing lost, nothing doubled) although the server was killed with jobs queued or running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from casebench.benchmarks import get_benchmark
from casebench.leaderboard.config import LeaderboardConfig
from casebench.leaderboard.db import Submission
from casebench.leaderboard.service import Leaderboard

pytestmark = pytest.mark.slow

MINI = get_benchmark("casebench-mini")
EXAMPLES = MINI.gold_path.parent / "examples"
N_USERS, PER_USER = 20, 10
QUOTA_DAY, QUOTA_TOTAL = 5, 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cfg_path, port, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "casebench", "leaderboard", "serve", "--config", str(cfg_path),
                             "--port", str(port), "--log-level", "warning"], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        time.sleep(0.1)
    raise AssertionError("server did not start in 60 s")


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the server and its scoring processes, all at once
    proc.wait(10)


def test_200_concurrent_submissions_with_restart(tmp_path):
    cfg_path = tmp_path / "lb.toml"
    cfg_path.write_text(f"""
[leaderboard]
data_dir = "data"
n_boot = 50
workers = 2
secret_key = "load-test"
[leaderboard.rate_limit]
burst = 8
per_minute = 30
[[board]]
benchmark = "casebench-mini"
quota_per_day = {QUOTA_DAY}
quota_total = {QUOTA_TOTAL}
""")
    cfg = LeaderboardConfig.load(cfg_path)
    lb = Leaderboard(cfg)
    tokens = {}
    for i in range(N_USERS):
        u = lb.create_user(f"user{i:02d}", "load-test-pw")
        tokens[u.username] = lb.create_token(u.id)
    valid = [(EXAMPLES / "voice-model.jsonl").read_bytes(), (EXAMPLES / "text-model.jsonl").read_bytes()]
    invalid = b'{"id": "mini-0000", "label": "angy"}\n'
    jobs = []
    for name in tokens:
        for j in range(PER_USER):
            jobs.append((name, j, invalid if j == PER_USER - 1 else valid[j % 2]))

    port = free_port()
    log = open(tmp_path / "server.log", "ab")  # noqa: SIM115 - outlives two server processes; closed below
    proc = start(cfg_path, port, log)
    base = f"http://127.0.0.1:{port}"
    answers: dict[tuple, tuple[int, dict]] = {}
    state = {"retries": 0, "at_kill": None}

    async def one(client, name, j, body):
        key = uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {tokens[name]}", "Idempotency-Key": key}
        data = {"benchmark": "casebench-mini", "phase": "dev", "model_name": f"{name}-model", "model_revision": str(j)}
        deadline = time.monotonic() + 120
        while True:
            try:
                r = await client.post("/api/submissions", headers=headers, data=data,
                                      files={"file": (f"p{j}.jsonl", body)})
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code < 500:
                answers[(name, j)] = (r.status_code, r.json())
                return
            assert time.monotonic() < deadline, "no answer in 120 s"
            state["retries"] += 1
            await asyncio.sleep(0.3)

    async def restart_midway():
        nonlocal proc
        while len(answers) < 60:
            await asyncio.sleep(0.01)
        kill(proc)
        with lb.db.read() as s:
            counts = s.execute(select(Submission.status, func.count()).group_by(Submission.status)).all()
            state["at_kill"] = dict(counts)
        await asyncio.sleep(0.5)
        proc = await asyncio.to_thread(start, cfg_path, port, log)

    async def run_all():
        limits = httpx.Limits(max_connections=len(jobs), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60, connect=5), limits=limits) as client:
            await asyncio.gather(restart_midway(), *(one(client, *job) for job in jobs))

    t0 = time.monotonic()
    try:
        asyncio.run(run_all())
        # wait for the queue to drain
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with lb.db.read() as s:
                left = s.scalar(select(func.count()).select_from(Submission)
                                .where(Submission.status.in_(("queued", "running"))))
            if not left:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - t0
    finally:
        kill(proc)
        log.close()

    assert len(answers) == len(jobs)
    accepted = {k: a for k, a in answers.items() if a[0] in (200, 202)}
    refused = {k: a for k, a in answers.items() if a[0] not in (200, 202)}
    reasons = Counter(a[1]["error"] for a in refused.values())
    assert set(reasons) <= {"quota_exceeded", "rate_limited", "invalid_predictions"}, reasons
    for status, body in refused.values():
        assert status in (422, 429) and body["detail"]
        if body["error"] == "invalid_predictions":
            assert any("unknown label 'angy'" in p["message"] for p in body["problems"])
    for (_name, j), (_status, body) in refused.items():
        if j == PER_USER - 1:
            assert body["error"] in ("invalid_predictions", "rate_limited")
    per_user = Counter(name for name, _ in accepted)
    assert max(per_user.values()) <= QUOTA_DAY
    ids = [a[1]["id"] for a in accepted.values()]
    assert len(ids) == len(set(ids)) > 0
    with lb.db.read() as s:
        subs = list(s.scalars(select(Submission)))
    assert sorted(x.id for x in subs) == sorted(ids)  # nothing lost, nothing doubled
    assert {x.status for x in subs} == {"done"}
    assert {x.score_count for x in subs} == {1}
    at_kill = state["at_kill"]
    assert at_kill.get("queued", 0) + at_kill.get("running", 0) > 0, at_kill  # the restart hit work in flight
    print(f"\n{len(jobs)} requests in {elapsed:.1f} s: {len(accepted)} accepted, refused {dict(reasons)}; "
          f"{state['retries']} retries across the restart; at kill: {at_kill}; "
          f"re-scored after restart: {sum(x.attempts > 1 for x in subs)}")
