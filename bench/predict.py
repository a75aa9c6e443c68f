"""Benchmark: ``casebench predict probe:whisper-tiny.en`` on CPU, feature extraction and engines.

Two comparisons, each measured in the same run on the same clips (espeak-ng speech made by
``casebench.testing.make_audio_benchmark``: 2 test voices x 3 voice emotions x 3 word emotions x repeats,
1.5-4 s each, cached in --out):

1. feature extraction, in one process, model loaded once: the obvious one-clip loop (log-mel, pad to
   Whisper's 30-s window, ``encode`` a batch of one, pool the clip's frames: ``window=30s``, one clip per call)
   against what predict runs by default (``window=clip``: each window padded to the next multiple of 5 s,
   ``--batch-size`` clips per batch, one ``encode`` call per padded length), and, to show where the time goes,
   the 30-s windows batched. Checked: the 30-s loop and the 30-s batches give the same features, and
   ``window=clip`` gives the same features one clip at a time as in batches (a clip's features never depend on
   its batch).
2. whole processes, as a user runs them: ``casebench predict probe:whisper-tiny.en`` with ``--engine local``
   against ``--engine ray --num-cpus 1`` (a local Ray with one actor per CPU; Ray's start-up included). Both
   fit the probe on the train voices and predict the test clips; the predictions are compared.

Wall time is shown with CPU time (process time; for whole processes, the casebench process and its children:
Ray's workers run under the raylet, not as children, so the Ray run's CPU time is its driver's only), which
moves less when other work shares the machine.

Usage: python bench/predict.py [--n 200] [--engine-n 1000] [--out out/bench-predict] [--batch-size 16]
[--skip-engines] [--skip-features]. The engines run on a larger set (--engine-n test clips): with 5-s windows a
few hundred clips take seconds locally, less than Ray's own start-up (actors, model loading), which a user
pays once per run; Ray is for runs where that start-up is small beside the work.
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
    enc = {"30s": WhisperCT2Encoder(threads, window="30s"), "clip": WhisperCT2Encoder(threads, window="clip")}
    for e in enc.values():
        e.features(items[:1])  # load the model outside the timings
    runs = {"loop": ("30s", 1), "batched_30s": ("30s", batch_size), "batched": ("clip", batch_size),
            "loop_clip": ("clip", 1)}
    out = {}
    for name, (window, size) in runs.items():
        some = items if name != "loop_clip" else items[:20]  # only to check batch independence
        w, c = time.perf_counter(), time.process_time()
        feats = [f for i in range(0, len(some), size) for f in enc[window].features(some[i:i + size])]
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        out[name] = {"window": window, "batch": size, "n": len(some), "wall_s": round(wall, 2),
                     "cpu_s": round(cpu, 2), "clips_per_s": round(len(some) / wall, 2), "features": np.stack(feats)}
    feats = {k: v.pop("features") for k, v in out.items()}
    return {"n_clips": len(items), "audio_s": round(sum(len(it.audio) for it in items) / 16000, 1),
            "batch_size": batch_size, "threads": threads, **out,
            "max_abs_diff_30s_loop_vs_batched": float(np.abs(feats["loop"] - feats["batched_30s"]).max()),
            "max_abs_diff_clip_alone_vs_batched": float(np.abs(feats["loop_clip"] - feats["batched"][:20]).max()),
            "speedup": round(out["loop"]["wall_s"] / out["batched"]["wall_s"], 2),
            "speedup_30s_batched": round(out["loop"]["wall_s"] / out["batched_30s"]["wall_s"], 2)}


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
    ap.add_argument("--engine-n", type=int, default=1000)
    ap.add_argument("--skip-engines", action="store_true")
    ap.add_argument("--skip-features", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {}
    if not args.skip_features:
        spec = build(args.out, args.n)
        result["features"] = features(spec, args.n, args.batch_size, args.threads)
        report_features(result["features"], args.threads)
    if not args.skip_engines:
        spec = build(args.out, args.engine_n)
        eng = engines(spec, args.out, args.batch_size)
        print(f"whole processes (fit on the train voices + predict {eng['local']['n_predicted']} test clips):")
        for e in ("local", "ray"):
            r = eng[e]
            cpu = "CPU of the driver" if e == "ray" else "CPU"
            print(f"  --engine {e:5s} {r['wall_s']:7.1f} s wall  {r['cpu_s']:7.1f} s {cpu} (fit {r['prepare_s']} s, "
                  f"predict {r['predict_s']} s)")
        print(f"  ray / local: {eng['ray_over_local']:.2f}x (goal <= 1.3x); same labels: {eng['same_labels']}, "
              f"max |prob diff| {eng['max_abs_prob_diff']:.1e}")
        result["engines"] = eng
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


def report_features(feat: dict, threads: int) -> None:
    print(f"feature extraction, {feat['n_clips']} clips ({feat['audio_s']} s of audio), {threads} threads:")
    for name in ("loop", "batched_30s", "batched", "loop_clip"):
        r = feat[name]
        print(f"  {name:12s} window={r['window']:4s} batch={r['batch']:<3d} {r['n']:4d} clips "
              f"{r['wall_s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU  {r['clips_per_s']:6.2f} clips/s")
    print(f"  predict's default (window=clip, batched) / one-clip 30-s loop: {feat['speedup']:.2f}x (goal >= 3x); "
          f"30-s windows batched / loop: {feat['speedup_30s_batched']:.2f}x")
    print(f"  max |feature diff|: 30-s loop vs batches {feat['max_abs_diff_30s_loop_vs_batched']:.1e}; "
          f"window=clip alone vs in batches {feat['max_abs_diff_clip_alone_vs_batched']:.1e}")


if __name__ == "__main__":
    main()
