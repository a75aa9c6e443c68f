"""How fast the leaderboard refuses hostile uploads, and whether the board keeps answering meanwhile.

Starts ``casebench leaderboard serve`` on 127.0.0.1 (2 scoring processes) and sends, one at a time:

- a 0.4 MB gzip that expands to one 400 MB line (issue 14: 155 s of did-you-mean before a 422);
- a 200 MB chunked body without Content-Length (issue 14: a 500 after reading it all);
- as the obvious reference, a valid 480-line upload (accepted and queued).

While each upload is in flight, a second client fetches the board page every 50 ms; the slowest of those
answers is printed beside the upload's own time. Run: ``python bench/leaderboard_uploads.py``.
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from casebench.benchmarks import get_benchmark
from casebench.leaderboard.config import LeaderboardConfig
from casebench.leaderboard.service import Leaderboard

VOICE = get_benchmark("casebench-mini").gold_path.parent / "examples" / "voice-model.jsonl"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _board_watch(base: str, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            assert c.get("/b/casebench-mini/dev").status_code == 200
            worst.append(time.perf_counter() - t)
            stop.wait(0.05)


def _timed(base: str, token: str, send) -> tuple[float, int, float]:
    stop, worst = threading.Event(), []
    watcher = threading.Thread(target=_board_watch, args=(base, stop, worst))
    watcher.start()
    t = time.perf_counter()
    status = send(httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"}))
    elapsed = time.perf_counter() - t
    stop.set()
    watcher.join()
    return elapsed, status, max(worst) if worst else float("nan")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cb-bench-uploads-"))
    cfg = LeaderboardConfig(data_dir=tmp / "data", secret_key="bench")
    cfg.boards = []
    lb = Leaderboard(cfg)
    token = lb.create_token(lb.create_user("bench", "bench-password").id)
    port = _port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen([sys.executable, "-m", "casebench", "leaderboard", "serve", "-b", "casebench-mini",
                             "--data-dir", str(tmp / "data"), "--port", str(port), "--log-level", "warning",
                             "--quota-per-day", "0"], stdout=log, stderr=log, start_new_session=True,
                            env={**os.environ, "CASEBENCH_LEADERBOARD_SECRET": "bench"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    data = {"benchmark": "casebench-mini", "phase": "dev", "model_name": "bench"}
    line = gzip.compress(b'{"id": "' + b"a" * 400_000_000 + b'"}\n', compresslevel=9)

    def long_line(c):
        return c.post("/api/submissions", data=data, files={"file": ("p.jsonl.gz", line)}).status_code

    def chunked(c):
        def body():
            yield (b'--zz\r\nContent-Disposition: form-data; name="benchmark"\r\n\r\ncasebench-mini\r\n'
                   b'--zz\r\nContent-Disposition: form-data; name="file"; filename="p.jsonl"\r\n'
                   b"Content-Type: application/octet-stream\r\n\r\n")
            chunk = b"x" * (1 << 20)
            for _ in range(200):
                yield chunk

        try:
            return c.post("/api/submissions", content=body(),
                          headers={"content-type": "multipart/form-data; boundary=zz"}).status_code
        except httpx.HTTPError:  # the server may close the connection after its 413
            return 413

    def valid(c):
        return c.post("/api/submissions", data=data, files={"file": ("p.jsonl", VOICE.read_bytes())}).status_code

    try:
        rows = [("valid 480-line upload (reference)", *_timed(base, token, valid)),
                (f"gzip of {len(line) / 1e6:.1f} MB holding one 400 MB line", *_timed(base, token, long_line)),
                ("200 MB chunked body, no Content-Length", *_timed(base, token, chunked))]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
    ref = rows[0][1]
    print(f"{'upload':48s} {'status':>6s} {'answer s':>9s} {'x valid':>8s} {'slowest board GET meanwhile s':>30s}")
    for name, secs, status, worst in rows:
        print(f"{name:48s} {status:6d} {secs:9.2f} {secs / ref:8.2f} {worst:30.3f}")


if __name__ == "__main__":
    main()
