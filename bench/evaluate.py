"""Benchmark: the whole `casebench evaluate` process against a process that only parses the file with orjson.

A user runs `casebench evaluate` as a process, so both sides are whole processes (interpreter start-up and
imports included), timed from outside, each run in its own wrapper so that its peak RSS is its own
(`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` of the wrapper):

  (a) parse only: `python -c` reading the predictions file and calling `orjson.loads` on every line (the floor
      any scorer pays);
  casebench: `python -m casebench evaluate PREDS --gold GOLD --taxonomy ekman7 --json` with the defaults: 1000
      resamples of the 2,000 speaker clusters, every metric on all/conflict/congruent with 95% CIs, per-class
      CIs, confusion, conflict breakdown, the constant baseline.

Two prediction files over the same 1,000,000-item gold (7 classes, half conflict, 2,000 speakers): labels only
(`{"id", "label"}`), and 7-class probabilities rounded to 4 decimals (`{"id", "probs": {...}}`, scored by
their argmax). Best of --repeat runs for each.

Usage: python bench/evaluate.py [--n 1000000] [--repeat 3] [--out out/bench-evaluate]
Goal (issue 13): casebench <= 3x the parse-only process; peak RSS of both reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]

# Runs argv as a child and prints its wall time and peak RSS (the wrapper's only child).
WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""

PARSE_ONLY = """
import sys, orjson
with open(sys.argv[1], "rb") as f:
    rows = [orjson.loads(line) for line in f.read().splitlines()]
assert rows
"""


def make_files(out: Path, n: int, seed: int = 0) -> tuple[Path, Path, Path]:
    gold_path, labels_path, probs_path = out / f"gold-{n}.parquet", out / f"labels-{n}.jsonl", out / f"probs-{n}.jsonl"
    if gold_path.exists() and labels_path.exists() and probs_path.exists():
        return gold_path, labels_path, probs_path
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 7, n)
    s = np.where(rng.random(n) < 0.5, a, rng.integers(0, 7, n))
    p = np.where(rng.random(n) < 0.6, a, rng.integers(0, 7, n))
    ids = np.char.add("clip-", np.arange(n).astype(str))
    lab = np.array(LABELS)
    pd.DataFrame({"id": ids, "acoustic_label": lab[a], "semantic_label": lab[s],
                  "speaker_id": np.char.add("spk", (np.arange(n) % 2000).astype(str))}).to_parquet(gold_path)
    with open(labels_path, "wb") as f:
        f.write(b"".join(orjson.dumps({"id": i, "label": x}) + b"\n"
                         for i, x in zip(ids.tolist(), lab[p].tolist(), strict=True)))
    logits = rng.normal(size=(n, 7))
    logits[np.arange(n), p] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = np.round(probs, 4)  # as most models write them: rows sum to 1 within ~3.5e-4
    with open(probs_path, "wb") as f:
        for start in range(0, n, 100_000):
            chunk = probs[start:start + 100_000].tolist()
            f.write(b"".join(orjson.dumps({"id": i, "probs": dict(zip(LABELS, row, strict=True))}) + b"\n"
                             for i, row in zip(ids[start:start + 100_000].tolist(), chunk, strict=True)))
    return gold_path, labels_path, probs_path


def run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=True)
    wall, rss_kb, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"{argv} exited {rc}")
    return float(wall), int(rss_kb) / 1024


def best(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run(argv) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("out/bench-evaluate"))
    args = ap.parse_args()
    gold, labels, probs = make_files(args.out, args.n)
    rows = []
    for name, preds in (("labels only", labels), ("7-class probabilities", probs)):
        parse = best([sys.executable, "-c", PARSE_ONLY, str(preds)], args.repeat)
        ours = best([sys.executable, "-m", "casebench", "evaluate", str(preds), "--gold", str(gold), "--taxonomy",
                     "ekman7", "--json"], args.repeat)
        rows.append({"file": name, "mb": round(preds.stat().st_size / 1e6, 1), "parse_s": round(parse[0], 2),
                     "parse_rss_mb": round(parse[1]), "casebench_s": round(ours[0], 2),
                     "casebench_rss_mb": round(ours[1]), "ratio": round(ours[0] / parse[0], 2)})
    print(f"{args.n:,} predictions, default evaluate (1000 resamples over 2,000 speakers); whole processes, "
          f"best of {args.repeat}")
    for r in rows:
        print(f"  {r['file']:<22} ({r['mb']:6.1f} MB)  parse-only {r['parse_s']:6.2f} s {r['parse_rss_mb']:6d} MB   "
              f"casebench evaluate {r['casebench_s']:6.2f} s {r['casebench_rss_mb']:6d} MB   = {r['ratio']:.2f}x "
              "(goal <= 3x)")
    print(json.dumps({"bench": "evaluate", "n": args.n, "rows": rows}))


if __name__ == "__main__":
    main()
