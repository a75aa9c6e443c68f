"""Benchmark: the perception probe of `casebench perceive`, shrinkage LDA against logistic regression.

The probe fits one model per held-out speaker on 88 eGeMAPS features, so its cost is (speakers x fit). In one
run on the same data (synthetic eGeMAPS-shaped features: --speakers voices x --clips-per-speaker clips, seven
emotions, the emotion a shift in --informative features plus speaker offsets), it times
`casebench.perception.probe` (per-speaker z-scores, imputation, standardisation, LDA with Ledoit-Wolf shrinkage,
closed form) against the obvious alternative, the same pipeline with multinomial logistic regression
(lbfgs, C = 1, as the acoustic baseline uses), and prints both accuracies (the probe must not trade accuracy for
speed) and the ratio of wall times.

Usage: python bench/perceive.py [--speakers 10] [--clips-per-speaker 42] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def data(speakers: int, per_speaker: int, informative: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (len(EMOTIONS), informative))
    xs, ys, gs = [], [], []
    for s in range(speakers):
        offset = rng.normal(0, 2.0, 88)
        labels = np.resize(EMOTIONS, per_speaker)
        x = rng.normal(0, 1.0, (per_speaker, 88)) + offset
        x[:, :informative] += np.stack([centres[EMOTIONS.index(lab)] for lab in labels])
        xs.append(x)
        ys += list(labels)
        gs += [f"s{s}"] * per_speaker
    return np.vstack(xs), np.asarray(ys), np.asarray(gs)


def logistic_probe(matrix, labels, speakers):
    """The alternative: the same leave-one-speaker-out pipeline with logistic regression."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from casebench.baselines import speaker_standardize

    x = speaker_standardize(matrix, speakers.tolist())
    pred = np.empty(len(labels), dtype=object)
    for spk in np.unique(speakers):
        test = speakers == spk
        model = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(),
                              LogisticRegression(C=1.0, max_iter=2000))
        model.fit(x[~test], labels[~test])
        pred[test] = model.predict(x[test])
    return float((pred == labels).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", type=int, default=10)
    ap.add_argument("--clips-per-speaker", type=int, default=42)
    ap.add_argument("--informative", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from casebench.perception import probe

    x, y, g = data(args.speakers, args.clips_per_speaker, args.informative)
    probe(x, y, g, EMOTIONS, n_boot=0)  # imports and warm-up, not counted
    logistic_probe(x[:50], y[:50], g[:50])
    t_lda, t_lr = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        acc_lda = probe(x, y, g, EMOTIONS, n_boot=0)["accuracy"]["value"]
        t_lda.append(time.perf_counter() - t)
        t = time.perf_counter()
        acc_lr = logistic_probe(x, y, g)
        t_lr.append(time.perf_counter() - t)
    out = {"clips": int(len(y)), "speakers": args.speakers, "features": 88,
           "lda_s": round(min(t_lda), 3), "logistic_s": round(min(t_lr), 3),
           "speedup": round(min(t_lr) / min(t_lda), 1), "accuracy_lda": round(acc_lda, 3),
           "accuracy_logistic": round(acc_lr, 3), "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
