"""Benchmark: ``casebench predict probe:whisper-tiny.en`` on CPU, feature extraction and engines.

Two comparisons, each measured in the same run on the same clips (espeak-ng speech made by
``casebench.testing.make_audio_benchmark``: 2 test voices x 3 voice emotions x 3 word emotions x repeats,
1.5-4 s each, cached in --out):

1. feature extraction, in one process, model loaded once: the obvious one-clip loop
   (``WhisperCT2Encoder.features([item])`` per clip: log-mel, pad to 30 s, ``encode`` a batch of one, pool)
   against the batched path predict runs (``--batch-size`` clips per ``encode`` call). Same features (checked).
2. whole processes, as a user runs them: ``casebench predict probe:whisper-tiny.en`` with ``--engine local``
   against ``--engine ray --num-cpus 1`` (a local Ray with one actor per CPU; Ray's start-up included). Both
   fit the probe on the train voices and predict the test clips; the predictions are compared.

Wall time is shown with CPU time (process time; for whole processes, the casebench process and its children:
Ray's workers run under the raylet, not as children, so the Ray run's CPU time is its driver's only), which
moves less when other work shares the machine.

Usage: python bench/predict.py [--n 200] [--out out/bench-predict] [--batch-size 16] [--skip-engines]
Goals (issue 12): batched >= 3x the one-clip loop; the Ray engine on 2 CPUs within 1.3x of local.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def build(out: Path, n: int) -> Path:
    from casebench.testing import make_audio_benchmark

    repeats = max(1, -(-n // 18))  # 18 test clips per repeat
    spec = out / f"bench-{repeats}" / "audio-tiny.yaml"
    if not spec.exists():
        make_audio_benchmark(spec.parent, labels=("happy", "sad", "angry"), repeats=repeats,
                             train_voices=("en-us+m3",), test_voices=("en-gb+m1", "en-us+f2"))
    return spec


def features(spec: Path, n: int, batch_size: int, threads: int) -> dict:
    from casebench.benchmarks import load_spec
    from casebench.predict.base import Item
    from casebench.predict.probe import WhisperCT2Encoder
    from casebench.predict.sources import benchmark_clips, load_clip

    clips = benchmark_clips(load_spec(spec)).clips[:n]
    items = [Item(c.id, load_clip(c, 16000)) for c in clips]
    enc = WhisperCT2Encoder(threads)
    enc.features(items[:1])  # load the model outside the timings
    out = {}
    for name in ("loop", "batched"):
        w, c = time.perf_counter(), time.process_time()
        if name == "loop":
            feats = [enc.features([it])[0] for it in items]
        else:
            feats = [f for i in range(0, len(items), batch_size) for f in enc.features(items[i:i + batch_size])]
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        out[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "clips_per_s": round(len(items) / wall, 2),
                     "features": np.stack(feats)}
    diff = float(np.abs(out["loop"].pop("features") - out["batched"].pop("features")).max())
    return {"n_clips": len(items), "audio_s": round(sum(len(it.audio) for it in items) / 16000, 1),
            "batch_size": batch_size, "threads": threads, **out, "max_abs_feature_diff": diff,
            "speedup": round(out["loop"]["wall_s"] / out["batched"]["wall_s"], 2)}


def engines(spec: Path, out: Path, batch_size: int) -> dict:
    res = {}
    for engine in ("local", "ray"):
        pred = out / f"engine-{engine}.jsonl"
        for f in (pred, Path(str(pred) + ".meta.json")):
            f.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "casebench", "predict", "probe:whisper-tiny.en", "-b", str(spec), "-o",
               str(pred), "--engine", engine, "--batch-size", str(batch_size), "--no-progress", "--json"]
        if engine == "ray":
            cmd += ["--num-cpus", "1"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        w = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "RAY_DEDUP_LOGS": "0"})
        wall = time.perf_counter() - w
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{r.stderr[-3000:]}")
        report = json.loads(r.stdout)
        res[engine] = {"wall_s": round(wall, 1), "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime
                                                                - before.ru_stime, 1),
                       "n_predicted": report["n_predicted"], "prepare_s": report["prepare_s"],
                       "predict_s": report["elapsed_s"]}
    from casebench.benchmarks import load_spec
    from casebench.predictions import parse_predictions

    gold = load_spec(spec).load_gold()
    a, b = (parse_predictions(out / f"engine-{e}.jsonl", gold) for e in ("local", "ray"))
    res["same_labels"] = bool((a.label == b.label).all())
    res["max_abs_prob_diff"] = float(np.nanmax(np.abs(a.probs - b.probs)))
    res["ray_over_local"] = round(res["ray"]["wall_s"] / res["local"]["wall_s"], 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("out/bench-predict"))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-engines", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    spec = build(args.out, args.n)
    feat = features(spec, args.n, args.batch_size, args.threads)
    print(f"feature extraction, {feat['n_clips']} clips ({feat['audio_s']} s of audio), {args.threads} threads:")
    for name in ("loop", "batched"):
        r = feat[name]
        print(f"  {name:8s} {r['wall_s']:7.2f} s wall  {r['cpu_s']:7.2f} s CPU  {r['clips_per_s']:6.2f} clips/s")
    print(f"  batched / loop: {feat['speedup']:.2f}x (goal >= 3x); "
          f"max |feature diff| {feat['max_abs_feature_diff']:.2e}")
    result = {"features": feat}
    if not args.skip_engines:
        eng = engines(spec, args.out, args.batch_size)
        print("whole processes (fit on the train voices + predict the test clips):")
        for e in ("local", "ray"):
            r = eng[e]
            cpu = "CPU of the driver" if e == "ray" else "CPU"
            print(f"  --engine {e:5s} {r['wall_s']:7.1f} s wall  {r['cpu_s']:7.1f} s {cpu} (fit {r['prepare_s']} s, "
                  f"predict {r['predict_s']} s)")
        print(f"  ray / local: {eng['ray_over_local']:.2f}x (goal <= 1.3x); same labels: {eng['same_labels']}, "
              f"max |prob diff| {eng['max_abs_prob_diff']:.1e}")
        result["engines"] = eng
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
