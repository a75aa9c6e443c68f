"""Benchmark: eGeMAPS feature extraction with the process pool vs one process in a loop, on the same clips.

Makes --clips speech-like test signals (casebench.testing.speechlike, 2-4 s each, 16 kHz WAV) in a fresh
workspace, then times:
  loop:   `casebench.features.extract_files(paths, workers=1)` (openSMILE in this process, one clip after another);
  pool:   `extract_files(paths, workers=W)` (W spawned processes, batches of --batch-size clips; the time includes
          starting the workers, each importing openSMILE and building its extractor);
  cold:   `workspace_features(ws, workers=W)`: the pool plus the journal writes of the workspace cache;
  warm:   the same call again, every clip read from the cache.
and checks that the loop and the pool give identical features. Loop and pool run --repeats times, alternated, and
the medians are compared; the record carries the 1-minute load average and the cores the pool really got
(worker CPU seconds per wall second), since on a shared machine other processes take cores from the pool.
Prints a JSON record and the pool/loop ratio.

Usage: python bench/features.py [--clips 200] [--workers 2] [--batch-size 8] [--repeats 2]
Goal (issue 8): the pool about W times faster than the loop on W cores, minus the worker start-up; the whole
run under about two minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time

import numpy as np

from casebench.features import extract_files, workspace_features
from casebench.testing import speechlike, wav_bytes
from casebench.workspace import Workspace


def make_corpus(root: str, n: int, seed: int = 0) -> tuple[Workspace, list[str], float]:
    """A workspace with ``n`` speech-like clips of 2-4 s; returns it, the audio paths and the audio seconds."""
    rng = np.random.default_rng(seed)
    ws = Workspace.create(root, "bench-features")
    rows, paths, total = [], [], 0.0
    for i in range(n):
        dur = float(rng.uniform(2.0, 4.0))
        rel = f"audio/c{i:04d}.wav"
        (ws.root / rel).write_bytes(wav_bytes(speechlike(seed * 10_007 + i, dur)))
        rows.append({"clip_id": f"c{i:04d}", "path": rel, "duration_s": dur, "sample_rate": 16000,
                     "speaker_id": f"s{i % 8}"})
        paths.append(str(ws.root / rel))
        total += dur
    ws.write_table("clips", rows)
    return ws, paths, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="Alternated loop/pool runs; the median is reported.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="casebench-bench-features-") as tmp:
        ws, paths, audio_s = make_corpus(os.path.join(tmp, "ws"), args.clips)
        extract_files(paths[:1], workers=1)  # warm this process (openSMILE import, extractor), like a worker's start

        loop_times, pool_times, pool_cpu = [], [], []
        for _ in range(args.repeats):  # alternated, so a load change on a shared machine hits both alike
            t = time.perf_counter()
            loop = extract_files(paths, workers=1)
            loop_times.append(time.perf_counter() - t)
            t, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            pool = extract_files(paths, workers=args.workers, batch_size=args.batch_size, min_pool_clips=0)
            pool_times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, reaped when the pool closed
            pool_cpu.append(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)
        loop_s, pool_s = float(np.median(loop_times)), float(np.median(pool_times))
        same = all(np.array_equal(a, b, equal_nan=True) and ea == eb
                   for (a, ea), (b, eb) in zip(loop, pool, strict=True))

        t = time.perf_counter()
        cold = workspace_features(ws, workers=args.workers, batch_size=args.batch_size, min_pool_clips=0)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        warm = workspace_features(ws, workers=args.workers, batch_size=args.batch_size)
        warm_s = time.perf_counter() - t

    record = {
        "bench": "features", "clips": args.clips, "audio_s": round(audio_s, 1), "workers": args.workers,
        "batch_size": args.batch_size, "cpus": os.cpu_count(), "python": platform.python_version(),
        "repeats": args.repeats, "loop_runs_s": [round(x, 2) for x in loop_times],
        "pool_runs_s": [round(x, 2) for x in pool_times], "load_avg_1min": round(os.getloadavg()[0], 2),
        "loop_s": round(loop_s, 2), "pool_s": round(pool_s, 2), "speedup_pool_vs_loop": round(loop_s / pool_s, 2),
        # worker CPU seconds per wall second: about W when the pool had W free cores, about 1 on a busy machine
        "pool_cores_used": round(float(np.median(pool_cpu)) / pool_s, 2),
        "identical_features": same, "loop_x_realtime": round(audio_s / loop_s, 1),
        "pool_x_realtime": round(audio_s / pool_s, 1),
        "workspace_cold_s": round(cold_s, 2), "workspace_cold_computed": cold.n_computed,
        "workspace_warm_s": round(warm_s, 3), "workspace_warm_cached": warm.n_cached,
    }
    print(json.dumps(record, indent=2))
    print(f"\n{args.clips} clips ({audio_s:.0f} s of audio): loop {loop_s:.1f} s, pool of {args.workers} "
          f"{pool_s:.1f} s -> {loop_s / pool_s:.2f}x; workspace cache: cold {cold_s:.1f} s, warm {warm_s:.2f} s "
          f"({'identical' if same else 'DIFFERENT'} features); the pool got {record['pool_cores_used']} core(s)")


if __name__ == "__main__":
    main()
