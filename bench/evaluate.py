"""Benchmark: scoring 1,000,000 predictions with 1000 bootstrap resamples.

Compares, in one run on the same files:
  (a) parsing alone: `orjson.loads` over every line of the predictions file (the floor any scorer pays);
  (b) the obvious naive scorer: scikit-learn metrics called in a Python loop over index resamples, timed on a
      few resamples and extrapolated to the full count;
  casebench: `casebench.evaluate.evaluate` end to end (gold table load, parse + validate, every metric on
      all/conflict/congruent with 95% CIs, per-class CIs, the majority baseline).

Usage: python bench/evaluate.py [--n 1000000] [--boot 1000] [--out out/bench-evaluate]
Goal (issue 3): casebench within 3x of (a) and at least 20x faster than (b).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def make_files(out: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    gold_path, pred_path = out / f"gold-{n}.parquet", out / f"preds-{n}.jsonl"
    if gold_path.exists() and pred_path.exists():
        return gold_path, pred_path
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 7, n)
    s = np.where(rng.random(n) < 0.5, a, rng.integers(0, 7, n))
    p = np.where(rng.random(n) < 0.6, a, rng.integers(0, 7, n))
    ids = np.char.add("clip-", np.arange(n).astype(str))
    lab = np.array(LABELS)
    pd.DataFrame({"id": ids, "acoustic_label": lab[a], "semantic_label": lab[s],
                  "speaker_id": np.char.add("spk", (np.arange(n) % 2000).astype(str))}).to_parquet(gold_path)
    with open(pred_path, "wb") as f:
        rows = zip(ids.tolist(), lab[p].tolist(), strict=True)
        f.write(b"".join(orjson.dumps({"id": i, "label": x}) + b"\n" for i, x in rows))
    return gold_path, pred_path


def time_parse_only(pred_path: Path) -> float:
    t = time.perf_counter()
    rows = [orjson.loads(line) for line in pred_path.read_bytes().splitlines()]
    assert len(rows) > 0
    return time.perf_counter() - t


def time_naive(gold_path: Path, pred_path: Path, n_resamples: int) -> float:
    """sklearn metrics on index resamples in a Python loop, for all/conflict/congruent; seconds per resample."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    gold = pd.read_parquet(gold_path)
    preds = pd.DataFrame([orjson.loads(x) for x in pred_path.read_bytes().splitlines()])
    df = gold.merge(preds, on="id")
    splits = {"all": df, "conflict": df[df.acoustic_label != df.semantic_label],
              "congruent": df[df.acoustic_label == df.semantic_label]}
    # labels as integer codes first: scikit-learn on a million strings would spend most of its time sorting them
    code = {lab: i for i, lab in enumerate(LABELS)}
    arrays = {k: (part.acoustic_label.map(code).to_numpy(), part.label.map(code).to_numpy())
              for k, part in splits.items()}
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(n_resamples):
        for y_all, p_all in arrays.values():
            idx = rng.integers(0, len(y_all), len(y_all))
            y, p = y_all[idx], p_all[idx]
            accuracy_score(y, p)
            f1_score(y, p, average="macro")
            f1_score(y, p, average="weighted")
            balanced_accuracy_score(y, p)
    return (time.perf_counter() - t) / n_resamples


def time_casebench(gold_path: Path, pred_path: Path, n_boot: int, unit: str = "item") -> tuple[float, dict]:
    from casebench.benchmarks import adhoc_benchmark
    from casebench.evaluate import evaluate

    t = time.perf_counter()
    bench = adhoc_benchmark(gold_path, "ekman7")
    res = evaluate(pred_path, bench, n_boot=n_boot, seed=0, unit=unit)
    return time.perf_counter() - t, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--naive-resamples", type=int, default=3, help="resamples actually timed for (b)")
    ap.add_argument("--out", type=Path, default=Path("out/bench-evaluate"))
    args = ap.parse_args()
    gold_path, pred_path = make_files(args.out, args.n)
    parse = min(time_parse_only(pred_path) for _ in range(3))
    ours, res = time_casebench(gold_path, pred_path, args.boot)
    ours_spk, _ = time_casebench(gold_path, pred_path, args.boot, unit="speaker")
    naive = time_naive(gold_path, pred_path, args.naive_resamples) * args.boot
    acc = res["splits"]["all"]["accuracy"]
    print(f"{args.n:,} predictions, {args.boot} bootstrap resamples (all/conflict/congruent, 4 metrics + conflict)")
    print(f"  (a) orjson parse only         {parse:8.2f} s")
    print(f"  casebench evaluate            {ours:8.2f} s   = {ours / parse:.2f}x parse-only (goal <= 3x)")
    print(f"  ... resampling 2000 speakers  {ours_spk:8.2f} s   = {ours_spk / parse:.2f}x parse-only")
    print(f"  (b) naive sklearn loop (extr.) {naive:8.1f} s   = {naive / ours:.0f}x slower than casebench "
          "(goal >= 20x)")
    print(f"  accuracy {acc['value']:.4f} [{acc['ci_low']:.4f}, {acc['ci_high']:.4f}]")
    print(json.dumps({"bench": "evaluate", "n": args.n, "boot": args.boot, "parse_only_s": round(parse, 3),
                      "casebench_s": round(ours, 3), "casebench_speaker_s": round(ours_spk, 3),
                      "naive_extrapolated_s": round(naive, 1),
                      "ratio_vs_parse": round(ours / parse, 2), "speedup_vs_naive": round(naive / ours, 1)}))


if __name__ == "__main__":
    main()
