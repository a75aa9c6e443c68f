"""Benchmark: Krippendorff's alpha and its 1000-resample bootstrap CI on 20 raters x 100,000 clips.

For a nominal dimension (7 emotion categories) and an interval one (a 1..9 rating scale), in one run on the
same synthetic data (each rater skips a clip with probability --missing):
  table -> matrix: `casebench.agreement.reliability_matrix` on the long table (one row per rating);
  alpha: casebench (value counts + the krippendorff package) vs. the plain package call on the raters x
      clips matrix, and the unit-sum form casebench uses for resamples (checked equal to the package);
  CI: `casebench.agreement.bootstrap_alpha` (all resamples as one weighted sum over per-clip terms) vs. the
      plain loop `krippendorff.alpha(reliability_data=m[:, idx])`, and the loop on precomputed value counts,
      both timed on --plain-resamples resamples and extrapolated to --boot (the output says so);
  report: `agreement_report` on the long table (alpha + Fleiss + AC1 with CIs, 190 Cohen pairs, per rater).

Usage: python bench/agreement.py [--units 100000] [--raters 20] [--boot 1000]
Goal (issue 5): alpha under 1 s; the CI at least 10x faster than the plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import krippendorff
import numpy as np
import pandas as pd

from casebench.agreement import (
    agreement_report,
    bootstrap_alpha,
    krippendorff_alpha,
    reliability_matrix,
    value_counts,
    weighted_alpha,
)

EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
SCALE = [1, 2, 3, 4, 5, 6, 7, 8, 9]


def make_tables(n_units: int, n_raters: int, missing: float, seed: int = 0) -> list[pd.DataFrame]:
    """Long annotations table with a nominal and an interval dimension; raters agree more than by chance,
    and rater 0 answers at random (a careless rater)."""
    rng = np.random.default_rng(seed)
    clip = np.char.add("clip-", np.arange(n_units).astype(str))
    rater = np.array([f"rater{r:02d}" for r in range(n_raters)])
    parts = []
    truth = rng.integers(0, len(EMOTIONS), n_units)
    guess = rng.integers(0, len(EMOTIONS), (n_raters, n_units))
    pick = np.where(rng.random((n_raters, n_units)) < 0.6, truth, guess)
    pick[0] = rng.integers(0, len(EMOTIONS), n_units)
    valence = np.clip(np.rint(rng.normal(5, 2, n_units) + rng.normal(0, 1.2, (n_raters, n_units))), 1, 9)
    valence[0] = rng.integers(1, 10, n_units)
    for dim, values in (("acoustic_emotion", np.array(EMOTIONS)[pick]), ("valence", valence)):
        rated = rng.random((n_raters, n_units)) >= missing
        r_idx, u_idx = np.nonzero(rated)
        parts.append(pd.DataFrame({"clip_id": clip[u_idx], "rater_id": rater[r_idx], "dimension": dim,
                                   "value": values[r_idx, u_idx]}))
    return parts


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_level(table: pd.DataFrame, level: str, domain: list, n_boot: int, plain_resamples: int) -> dict:
    t_matrix, rm = timed(lambda: reliability_matrix(table, domain))
    # the plain call gets the raters x clips matrix as numbers (category indices for nominal data)
    m = rm.matrix
    dom = np.arange(len(domain)) if level == "nominal" else np.asarray(domain)

    def casebench_alpha():
        counts = value_counts(rm)
        return counts, krippendorff_alpha(counts, domain, level=level)

    t_alpha, (counts, alpha) = timed(casebench_alpha, repeat=3)
    t_plain_alpha, plain_alpha = timed(lambda: krippendorff.alpha(reliability_data=m, value_domain=dom,
                                                                  level_of_measurement=level), repeat=3)
    t_sums, sums_alpha = timed(lambda: weighted_alpha(counts, domain, level=level,
                                                      weights=np.ones((1, len(counts))))[0], repeat=3)
    t_ci, boot = timed(lambda: bootstrap_alpha(counts, domain, level=level, n_boot=n_boot, seed=0))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])

    rng = np.random.default_rng(1)
    n_units = m.shape[1]
    t = time.perf_counter()
    for _ in range(plain_resamples):
        idx = rng.integers(0, n_units, n_units)
        krippendorff.alpha(reliability_data=m[:, idx], value_domain=dom, level_of_measurement=level)
    plain_per = (time.perf_counter() - t) / plain_resamples
    t = time.perf_counter()
    for _ in range(plain_resamples):
        idx = rng.integers(0, n_units, n_units)
        krippendorff.alpha(value_counts=counts[idx], value_domain=dom, level_of_measurement=level)
    counts_per = (time.perf_counter() - t) / plain_resamples
    t_report, rep = timed(lambda: agreement_report(table, level=level, value_domain=domain, n_boot=n_boot,
                                                   seed=0))
    worst = min(rep["per_rater"], key=lambda d: d["agreement_with_consensus"])
    return {
        "level": level, "n_ratings": int(np.isfinite(rm.matrix).sum()), "values": len(domain),
        "alpha": alpha, "alpha_ci": [float(lo), float(hi)], "max_abs_diff_vs_package":
            max(abs(alpha - plain_alpha), abs(sums_alpha - plain_alpha)),
        "table_to_matrix_s": t_matrix, "alpha_s": t_alpha, "plain_alpha_s": t_plain_alpha,
        "unit_sums_alpha_s": t_sums, "ci_s": t_ci, "plain_ci_extrapolated_s": plain_per * n_boot,
        "counts_loop_ci_extrapolated_s": counts_per * n_boot, "plain_resamples_timed": plain_resamples,
        "report_s": t_report, "careless_rater_found": worst["rater_id"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--missing", type=float, default=0.1, help="probability that a rater skips a clip")
    ap.add_argument("--plain-resamples", type=int, default=3, help="resamples timed for the plain loops")
    args = ap.parse_args()
    nominal, interval = make_tables(args.units, args.raters, args.missing)
    rows = [bench_level(nominal, "nominal", EMOTIONS, args.boot, args.plain_resamples),
            bench_level(interval, "interval", SCALE, args.boot, args.plain_resamples)]

    print(f"{args.raters} raters x {args.units:,} clips ({args.missing:.0%} missing), {args.boot} bootstrap "
          f"resamples; {os.cpu_count()} CPUs, numpy {np.__version__}, krippendorff package")
    print(f"{'':44}{'nominal':>12}{'interval':>12}")
    lines = [
        ("ratings", "n_ratings", "{:>12,}"),
        ("alpha", "alpha", "{:>12.4f}"),
        ("  |casebench - package|", "max_abs_diff_vs_package", "{:>12.1e}"),
        ("long table -> reliability matrix (s)", "table_to_matrix_s", "{:>12.3f}"),
        ("alpha, casebench: counts + package (s)", "alpha_s", "{:>12.3f}"),
        ("alpha, plain package call on matrix (s)", "plain_alpha_s", "{:>12.3f}"),
        ("alpha, unit-sum form (s)", "unit_sums_alpha_s", "{:>12.3f}"),
        ("CI, casebench bootstrap_alpha (s)", "ci_s", "{:>12.2f}"),
        ("CI, plain loop (extrapolated) (s)", "plain_ci_extrapolated_s", "{:>12.1f}"),
        ("CI, loop on value counts (extrapolated) (s)", "counts_loop_ci_extrapolated_s", "{:>12.1f}"),
        ("agreement_report, everything (s)", "report_s", "{:>12.2f}"),
    ]
    for name, key, fmt in lines:
        print(f"{name:44}" + "".join(fmt.format(r[key]) for r in rows))
    print(f"{'CI speed-up vs plain loop':44}"
          + "".join(f"{r['plain_ci_extrapolated_s'] / r['ci_s']:>11.0f}x" for r in rows))
    print(f"{'CI speed-up vs loop on value counts':44}"
          + "".join(f"{r['counts_loop_ci_extrapolated_s'] / r['ci_s']:>11.0f}x" for r in rows))
    for r in rows:
        print(f"{r['level']}: alpha {r['alpha']:.4f} [{r['alpha_ci'][0]:.4f}, {r['alpha_ci'][1]:.4f}]; "
              f"lowest consensus agreement: {r['careless_rater_found']} (the careless rater is rater00)")
    print(f"Plain-loop CI times are extrapolated from {args.plain_resamples} timed resamples x {args.boot}.")
    fast_ci = all(r["plain_ci_extrapolated_s"] >= 10 * r["ci_s"] for r in rows)
    print(f"Goals: alpha < 1 s: {all(r['alpha_s'] < 1 for r in rows)}; "
          f"CI >= 10x faster than the plain loop: {fast_ci}")
    print(json.dumps({"bench": "agreement", "units": args.units, "raters": args.raters, "boot": args.boot,
                      "missing": args.missing, "cpus": os.cpu_count(), "machine": platform.machine(),
                      "results": [{k: _short(v) for k, v in r.items()} for r in rows]}))


def _short(v):
    """Floats to 4 significant digits for the JSON line (keeps a 1e-15 difference visible)."""
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, list):
        return [_short(x) for x in v]
    return v


if __name__ == "__main__":
    main()
