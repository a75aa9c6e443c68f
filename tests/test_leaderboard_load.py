"""Load test against a real server on 127.0.0.1: 240 concurrent uploads from 20 users with quotas set (200
accepted), one scoring process killed, then the server killed and restarted, in the middle; SIGTERM at the end.

The server is ``casebench leaderboard serve`` in a subprocess (2 scoring processes, 50 resamples). Each
user sends 11 valid files and 1 invalid one, all at once, against a quota of 10 a day. Every request carries
an Idempotency-Key and is retried with the same key when the connection fails or the rate limit says wait
(as ``casebench submit`` does), so each gets a definite answer. Checked: exactly 10 accepted per user (200 in
all), every one scored exactly once (``score_count == 1``, status ``done``: none failed although a scoring
process died under a job and the server was killed with jobs queued or running), the eleventh valid upload
refused with ``quota_exceeded`` and the invalid one with ``invalid_predictions``; ``/healthz`` reports the
replaced process; after SIGTERM no process of the server is left (nor of the killed server).
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
N_USERS, PER_USER = 20, 12
QUOTA_DAY, QUOTA_TOTAL = 10, 11


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


def children(pid: int) -> dict[int, str]:
    """{pid: command line} of the processes whose parent is ``pid``."""
    out = {}
    for d in os.scandir("/proc"):
        if d.name.isdigit():
            try:
                with open(f"/proc/{d.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    with open(f"/proc/{d.name}/cmdline", "rb") as f:
                        out[int(d.name)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


def alive(pids, wait_s: float = 15.0) -> list[int]:
    """Which of ``pids`` still run (zombies do not count) after up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        left.append(p)
            except OSError:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


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
    old_children: dict[int, str] = {}

    port = free_port()
    log = open(tmp_path / "server.log", "ab")  # noqa: SIM115 - outlives two server processes; closed below
    proc = start(cfg_path, port, log)
    base = f"http://127.0.0.1:{port}"
    answers: dict[tuple, tuple[int, dict]] = {}
    state = {"retries": 0, "at_kill": None, "health": None, "killed_scorer": None}

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
            if r is not None and r.status_code == 429 and r.json()["error"] == "rate_limited":
                await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), 5))
                continue
            if r is not None and r.status_code < 500:
                answers[(name, j)] = (r.status_code, r.json())
                return
            assert time.monotonic() < deadline, "no answer in 120 s"
            state["retries"] += 1
            await asyncio.sleep(0.3)

    async def restart_midway():
        nonlocal proc
        while len(answers) < 40:
            await asyncio.sleep(0.01)
        scorers = [p for p, cmd in children(proc.pid).items() if "spawn_main" in cmd]
        assert len(scorers) == 2, children(proc.pid)
        os.kill(scorers[0], signal.SIGKILL)  # a scoring process dies, perhaps under a job
        state["killed_scorer"] = scorers[0]
        while len(answers) < 120:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=base) as c:  # the dead process is replaced when its thread next looks
            deadline = time.monotonic() + 60
            while True:
                state["health"] = (await c.get("/healthz", timeout=30)).json()
                if state["health"]["pool"]["replaced"] >= 1 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        old_children.update(children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)  # the server alone: its scoring processes must go by themselves
        proc.wait(10)
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
        kids = children(proc.pid)
        proc.send_signal(signal.SIGTERM)  # drains and stops every child
        proc.wait(60)
    finally:
        if proc.poll() is None:
            kill(proc)
        log.close()
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    assert not alive(kids), f"left after SIGTERM: {kids}"
    assert not alive(old_children), f"left by the killed server: {old_children}"

    assert len(answers) == len(jobs)
    accepted = {k: a for k, a in answers.items() if a[0] in (200, 202)}
    refused = {k: a for k, a in answers.items() if a[0] not in (200, 202)}
    reasons = Counter(a[1]["error"] for a in refused.values())
    assert reasons == {"quota_exceeded": N_USERS, "invalid_predictions": N_USERS}, reasons
    for status, body in refused.values():
        assert status in (422, 429) and body["detail"]
        if body["error"] == "invalid_predictions":
            assert any("unknown label 'angy'" in p["message"] for p in body["problems"])
    for (_name, j), (_status, body) in refused.items():
        if j == PER_USER - 1:
            assert body["error"] == "invalid_predictions"
    per_user = Counter(name for name, _ in accepted)
    assert set(per_user.values()) == {QUOTA_DAY} and len(accepted) == 200  # quotas exact
    health = state["health"]
    assert health["ok"] and health["pool"]["replaced"] >= 1 and health["pool"]["alive"] == 2, health
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
          f"{state['retries']} retries (restart, rate limit); at kill: {at_kill}; health then: {health['pool']}; "
          f"re-scored after a kill: {sum(x.attempts > 1 for x in subs)}")
