"""Benchmark: latency of scoring a 10,000-item submission on the leaderboard under 20 concurrent submitters,
against the time of `casebench evaluate` alone on the same file.

Makes a 10,000-item benchmark in a temp dir (gold CSV with speakers, conflict/congruent labels, a
distribution and V/A/D; spec YAML with four splits and the three tasks) and 20 different prediction files
(label + probs + V/A/D on every line). Then:

  CLI:   `casebench evaluate FILE --benchmark SPEC --json` in a fresh process (what a user waits for), median
         of 3 runs; also `evaluate()` in a warm process (the scorer alone);
  board: `casebench leaderboard serve` in a subprocess (2 scoring processes, 1000 resamples, as the CLI),
         20 users each uploading one file at the same moment through the API; latency = from the upload's
         start to the moment the result is recorded (upload, validation, queueing, waiting, scoring; the end
         is the database's ``finished_at``, so the clients can poll slowly, as `casebench submit --wait`
         does), and the scoring time alone (claim to result).

One warm-up submission per scoring process runs first (a running server has imported the scorer and cached
the constant baselines). Usage: python bench/leaderboard.py [--n 10000] [--users 20] [--boot 1000]
Goal (issue 7): p95 latency under 3x the CLI time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def make_benchmark(out: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 7, n)
    s = np.where(rng.random(n) < 0.5, a, rng.integers(0, 7, n))
    ids = [f"item-{i:06d}" for i in range(n)]
    d = rng.dirichlet(np.ones(7) * 0.5, n)
    d = np.round(d, 6)
    d[:, -1] = 1 - d[:, :-1].sum(1)
    d = np.clip(d, 0, None)
    d /= d.sum(1, keepdims=True)
    df = pd.DataFrame({"id": ids, "speaker_id": [f"spk{i % 200:03d}" for i in range(n)],
                       "corpus": np.where(rng.random(n) < 0.2, "acted", "synth"),
                       "acoustic_label": np.array(LABELS)[a], "semantic_label": np.array(LABELS)[s]})
    for j, lab in enumerate(LABELS):
        df[lab] = d[:, j]
    for v in ("valence", "arousal", "dominance"):
        df[v] = rng.uniform(1, 5, n).round(2)
    df.to_csv(out / "gold.csv", index=False, float_format="%.17g")
    spec = out / "bench10k.yaml"
    spec.write_text("name: bench10k\nversion: '1'\ntaxonomy: ekman7\ngold: gold.csv\ncorpora: [synth, acted]\n"
                    "tasks:\n  - {kind: categorical, main_metric: macro_f1}\n  - {kind: distribution}\n"
                    "  - {kind: dimensional}\n"
                    "splits: [all, conflict, congruent,\n"
                    "         {name: acted, kind: cross-corpus, column: corpus, value: acted}]\n")
    return spec


def make_predictions(out: Path, n: int, k: int) -> list[Path]:
    gold = pd.read_csv(out / "gold.csv")
    a = gold["acoustic_label"].map(LABELS.index).to_numpy()
    paths = []
    for f in range(k):
        rng = np.random.default_rng(100 + f)
        p = rng.dirichlet(np.ones(7), n)
        hit = rng.random(n) < 0.3 + 0.02 * f
        p[hit, a[hit]] += 1.0
        p /= p.sum(1, keepdims=True)
        lines = []
        for i, x in enumerate(gold["id"].tolist()):
            lines.append(orjson.dumps({"id": x, "probs": {lab: float(p[i, j]) for j, lab in enumerate(LABELS)},
                                       "valence": float(rng.uniform(1, 5)), "arousal": 3.0, "dominance": 3.0}))
        path = out / f"preds-{f:02d}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def time_cli(pred: Path, spec: Path, boot: int, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "casebench", "evaluate", str(pred), "--benchmark", str(spec),
                        "--bootstrap", str(boot), "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_in_process(pred: Path, spec: Path, boot: int) -> float:
    from casebench.benchmarks import get_benchmark
    from casebench.evaluate import evaluate

    bench = get_benchmark(spec)
    evaluate(pred, bench, n_boot=boot)
    t = time.perf_counter()
    evaluate(pred, bench, n_boot=boot)
    return time.perf_counter() - t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from casebench.leaderboard.config import LeaderboardConfig
    from casebench.leaderboard.db import Submission, select
    from casebench.leaderboard.service import Leaderboard

    tmp = Path(tempfile.mkdtemp(prefix="bench-leaderboard-"))
    spec = make_benchmark(tmp, args.n)
    preds = make_predictions(tmp, args.n, args.users + args.workers)
    cli = time_cli(preds[0], spec, args.boot)
    warm = time_in_process(preds[0], spec, args.boot)

    cfg_path = tmp / "lb.toml"
    cfg_path.write_text(f'[leaderboard]\ndata_dir = "data"\nn_boot = {args.boot}\nworkers = {args.workers}\n'
                        f'secret_key = "bench"\n[leaderboard.rate_limit]\nburst = 100\nper_minute = 6000\n'
                        f'[[board]]\nbenchmark = "{spec}"\nquota_per_day = 0\n')
    lb = Leaderboard(LeaderboardConfig.load(cfg_path))
    tokens = [lb.create_token(lb.create_user(f"u{i:02d}", "bench-password").id) for i in range(args.users)]
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "casebench", "leaderboard", "serve", "--config", str(cfg_path),
                             "--port", str(port), "--log-level", "warning"], stdout=log, stderr=log,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

        def submit(token: str, path: Path, out: dict) -> None:
            h = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=300) as c:
                out["t0"] = time.time()
                t0 = time.perf_counter()
                r = c.post("/api/submissions", headers=h, files={"file": (path.name, path.read_bytes())},
                           data={"benchmark": "bench10k", "model_name": path.stem})
                r.raise_for_status()
                sid = r.json()["id"]
                out["accepted_s"] = time.perf_counter() - t0
                while True:
                    st = c.get(f"/api/submissions/{sid}", headers=h).json()
                    if st["status"] in ("done", "failed"):
                        break
                    time.sleep(0.5)  # the end time comes from the database: a slow poll costs no precision
                out["id"], out["status"] = sid, st["status"]

        warmups = [{} for _ in range(args.workers)]
        ts = [threading.Thread(target=submit, args=(tokens[i % len(tokens)], preds[args.users + i], warmups[i]))
              for i in range(args.workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        results = [{} for _ in range(args.users)]
        ts = [threading.Thread(target=submit, args=(tokens[i], preds[i], results[i])) for i in range(args.users)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert all(r.get("status") == "done" for r in results), results
    with lb.db.read() as s:
        rows = {x.id: x for x in s.scalars(select(Submission))}
    scoring = [(rows[r["id"]].finished_at - rows[r["id"]].started_at).total_seconds() for r in results]
    lat = [rows[r["id"]].finished_at.replace(tzinfo=datetime.timezone.utc).timestamp() - r["t0"] for r in results]
    acc = [r["accepted_s"] for r in results]
    p50, p95 = pct(lat, 50), pct(lat, 95)
    print(f"{args.n:,}-item submissions, {args.boot} resamples, {args.users} concurrent submitters, "
          f"{args.workers} scoring processes, {os.cpu_count()} CPU(s)")
    print(f"  casebench evaluate (CLI, fresh process, median of 3) {cli:7.2f} s")
    print(f"  evaluate() in a warm process                        {warm:7.2f} s")
    print(f"  upload accepted (parse + validate + queue)  p50 {pct(acc, 50):6.2f} s   p95 {pct(acc, 95):6.2f} s")
    print(f"  scoring alone (claim -> result)             p50 {pct(scoring, 50):6.2f} s   "
          f"p95 {pct(scoring, 95):6.2f} s   = {pct(scoring, 95) / cli:.2f}x the CLI")
    print(f"  end-to-end latency (upload -> done)         p50 {p50:6.2f} s   p95 {p95:6.2f} s"
          f"   = {p95 / cli:.2f}x the CLI (goal < 3x)")
    print(json.dumps({"bench": "leaderboard", "n": args.n, "users": args.users, "boot": args.boot,
                      "workers": args.workers, "cpus": os.cpu_count(), "cli_s": round(cli, 3),
                      "in_process_s": round(warm, 3), "accepted_p50_s": round(pct(acc, 50), 3),
                      "scoring_p50_s": round(pct(scoring, 50), 3), "scoring_p95_s": round(pct(scoring, 95), 3),
                      "latency_p50_s": round(p50, 3), "latency_p95_s": round(p95, 3),
                      "p95_over_cli": round(p95 / cli, 2)}))


if __name__ == "__main__":
    main()
