"""Benchmark: fitting a label-distribution learner (casebench's LDL baselines) at EM2LDL size.

--clips clips (default 4000; EM2LDL has 3998) x 88 features (eGeMAPS size) x 32 classes, each clip's
target a distribution over 4-16 classes (as EM2LDL's). In one run, the same penalised objective (soft
cross-entropy C * sum_i sum_k p_ik (-log q_k(x_i)) + 1/2 ||W||^2) fitted two ways:
  casebench `SoftLabelLogistic`: scipy.optimize L-BFGS-B on the soft objective with its analytic gradient;
  the obvious alternative: scikit-learn's LogisticRegression (lbfgs) on the clips repeated once per class with a
      positive share, weighted by the share (casebench's first implementation);
and the held-out mean KL of both (they minimise the same function, so they should agree), plus the argmax
fit (plain LogisticRegression on the strongest class) for the KL it loses.

Usage: python bench/ldl.py [--clips 4000] [--features 88] [--classes 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def make(n: int, d: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    logits = x @ rng.normal(scale=0.4, size=(d, k))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for row in p:  # keep 4-16 classes, as EM2LDL's distributions
        keep = np.argsort(row)[::-1][: rng.integers(4, 17)]
        mask = np.zeros(k, bool)
        mask[keep] = True
        row[~mask] = 0
    return x, p / p.sum(1, keepdims=True)


def expanded_fit(x, p, c: float):
    """scikit-learn on the clips repeated per class, weighted by the shares."""
    from sklearn.linear_model import LogisticRegression

    rows, cols = np.nonzero(p > 0)
    model = LogisticRegression(C=c, max_iter=5000).fit(x[rows], cols, sample_weight=p[rows, cols])

    def predict(z):
        q = np.zeros((len(z), p.shape[1]))
        q[:, model.classes_] = model.predict_proba(z)
        return q

    return predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=4000)
    ap.add_argument("--features", type=int, default=88)
    ap.add_argument("--classes", type=int, default=32)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    from casebench.baselines import SoftLabelLogistic
    from casebench.metrics.distribution import kl

    x, p = make(args.clips, args.features, args.classes)
    cut = int(0.8 * len(x))
    xtr, ptr, xte, pte = x[:cut], p[:cut], x[cut:], p[cut:]
    t = time.perf_counter()
    ours = SoftLabelLogistic(C=1.0).fit(xtr, ptr)
    ours_s = time.perf_counter() - t
    q = np.zeros_like(pte)
    q[:, ours.classes_] = ours.predict_proba(xte)
    t = time.perf_counter()
    ref = expanded_fit(xtr, ptr, 1.0)
    ref_s = time.perf_counter() - t
    hard = LogisticRegression(C=1.0, max_iter=5000).fit(xtr, ptr.argmax(1))
    qh = np.full_like(pte, 1e-12)
    qh[:, hard.classes_] = hard.predict_proba(xte)
    out = {"clips": args.clips, "features": args.features, "classes": args.classes,
           "expanded_rows": int((ptr > 0).sum()),
           "casebench_fit_s": round(ours_s, 2), "expanded_sklearn_fit_s": round(ref_s, 2),
           "speedup_vs_expanded_sklearn": round(ref_s / ours_s, 2),
           "heldout_kl_casebench": round(float(kl(pte, q).mean()), 4),
           "heldout_kl_expanded_sklearn": round(float(kl(pte, ref(xte)).mean()), 4),
           "heldout_kl_argmax_fit": round(float(kl(pte, qh).mean()), 4),
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
