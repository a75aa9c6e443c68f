"""Benchmark: multi-label agreement (Krippendorff's alpha with the MASI distance) on an EM2LDL-sized corpus.

EM2LDL-like synthetic ratings: --units clips (default 4000, EM2LDL has 3998), --raters raters per clip (20),
32 plutchik32 classes, each rating a set of one to three labels around the clip's own emotions. In one run:
  casebench: `agreement_report(level="masi", n_boot=--boot)`: alpha (krippendorff package with the MASI
      distance as a callable), 32 per-class binary alphas, and percentile CIs of all 33 over the same clip
      resamples (one weighted sum over per-clip terms for all resamples);
  the obvious alternative: NLTK's `AnnotationTask(distance=masi_distance).alpha()` (the reference the tests
      use), once for the value (checked equal to casebench's), and in a loop over resampled clips for a CI,
      timed on --plain-resamples resamples and extrapolated to --boot (the output says so); per-class CIs
      would multiply that by 33.

Usage: python bench/agreement_masi.py [--units 4000] [--raters 20] [--boot 1000] [--plain-resamples 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import pandas as pd

from casebench.agreement import agreement_report, masi_distance
from casebench.taxonomy import get_taxonomy


def make_table(n_units: int, n_raters: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(get_taxonomy("plutchik32").labels)
    core = rng.integers(0, len(labels), (n_units, 3))
    rows = []
    for u in range(n_units):
        for r in range(n_raters):
            k = rng.integers(1, 4)
            pool = core[u] if rng.random() < 0.7 else rng.integers(0, len(labels), 3)
            chosen = sorted(set(labels[rng.choice(pool, k, replace=True)]))
            rows.append((f"clip-{u:05d}", f"rater{r:02d}", ";".join(chosen)))
    return pd.DataFrame(rows, columns=["clip_id", "rater_id", "value"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=4000)
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--plain-resamples", type=int, default=2)
    args = ap.parse_args()
    from nltk.metrics.agreement import AnnotationTask

    df = make_table(args.units, args.raters)
    labels = list(get_taxonomy("plutchik32").labels)
    t = time.perf_counter()
    rep = agreement_report(df, level="masi", value_domain=labels, n_boot=args.boot, seed=0)
    ours_s = time.perf_counter() - t

    by_clip: dict[str, list] = {}
    for c, r, v in zip(df["clip_id"], df["rater_id"], df["value"], strict=True):
        by_clip.setdefault(c, []).append((r, frozenset(v.split(";"))))
    clips = list(by_clip)

    def nltk_alpha(draw: list[str]) -> float:
        # a resample repeats clips: each copy is its own item, as the bootstrap treats it
        data = [(r, f"{c}#{i}", labs) for i, c in enumerate(draw) for r, labs in by_clip[c]]
        return AnnotationTask(data=data, distance=masi_distance).alpha()

    t = time.perf_counter()
    ref = nltk_alpha(clips)
    nltk_point_s = time.perf_counter() - t
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    for _ in range(args.plain_resamples):
        nltk_alpha(list(rng.choice(clips, len(clips), replace=True)))
    per_resample = (time.perf_counter() - t) / args.plain_resamples
    nltk_ci_s = per_resample * args.boot
    out = {
        "units": args.units, "raters": args.raters, "ratings": len(df), "boot": args.boot,
        "label_sets": rep["n_label_sets"], "alpha": rep["krippendorff_alpha"]["value"], "alpha_nltk": ref,
        "casebench_report_s": round(ours_s, 2), "nltk_point_s": round(nltk_point_s, 2),
        "nltk_ci_s_extrapolated": round(nltk_ci_s, 1),
        "nltk_ci_extrapolated_from": f"{args.plain_resamples} resample(s)",
        "speedup_ci_vs_nltk_loop": round(nltk_ci_s / ours_s, 1),
        "per_class_alphas": sum(v["value"] is not None for v in rep["per_class_alpha"].values()),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
    }
    assert abs(out["alpha"] - ref) < 1e-9, out
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
