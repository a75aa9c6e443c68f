"""Generate the embedded `casebench-mini` benchmark (labels only) and its example predictions.

Run from the repository root: `python scripts/make_mini_benchmark.py`. Output is deterministic for the
seed below and is committed under casebench/benchmarks/data/casebench-mini/.

The gold table imitates a small CASE-style conflict set: 40 speakers (20 female, 20 male) x 12 clips, the
voice (acoustic) emotion and the words (semantic) emotion crossed so that about 45% of the clips are
conflict clips; a quarter of the speakers come from a second, "acted" corpus used as a cross-corpus set.
A `split` column puts half of the speakers in `dev` and half in `test` (the leaderboard's two phases).
Each clip has a 10-rater label distribution peaked at its acoustic label and V/A/D ratings (1-5) around
per-emotion prototypes. Two example submissions are written: `voice-model.jsonl` (follows the voice,
with probs, distribution and V/A/D) and `text-model.jsonl` (follows the words on most conflict clips).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261129
LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
VAD = {  # prototype valence, arousal, dominance on a 1-5 scale
    "angry": (1.8, 4.3, 4.0), "disgust": (2.0, 3.2, 3.5), "fear": (1.9, 4.0, 1.8), "happy": (4.4, 3.8, 3.6),
    "neutral": (3.0, 2.2, 3.0), "sad": (1.7, 1.8, 1.9), "surprise": (3.6, 4.2, 2.8),
}
OUT = Path(__file__).resolve().parents[1] / "casebench" / "benchmarks" / "data" / "casebench-mini"


def make_gold(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    k = len(LABELS)
    for s in range(40):
        speaker = f"spk{s:02d}"
        corpus = "mini-acted" if s >= 30 else "mini-synth"
        gender = "female" if s % 2 == 0 else "male"
        for j in range(12):
            a = int(rng.integers(k))
            sem = a if rng.random() < 0.55 else int((a + rng.integers(1, k)) % k)
            votes = rng.multinomial(10, _peaked(a, 0.6, k))
            v, ar, d = (np.clip(np.array(VAD[LABELS[a]]) + rng.normal(0, 0.4, 3), 1, 5)).round(2)
            rows.append({"id": f"mini-{s:02d}{j:02d}", "speaker_id": speaker, "gender": gender,
                         "corpus": corpus, "acoustic_label": LABELS[a], "semantic_label": LABELS[sem],
                         **{lab: votes[i] / 10 for i, lab in enumerate(LABELS)},
                         "valence": v, "arousal": ar, "dominance": d,
                         # speaker-disjoint phases for the leaderboard: 20 speakers each, both genders and corpora
                         "split": "test" if s % 4 in (1, 2) else "dev"})
    return pd.DataFrame(rows)


def _peaked(i: int, mass: float, k: int) -> np.ndarray:
    p = np.full(k, (1 - mass) / (k - 1))
    p[i] = mass
    return p


def make_predictions(gold: pd.DataFrame, rng: np.random.Generator, follow_text: float, skill: float):
    k = len(LABELS)
    out = []
    for row in gold.itertuples():
        a, s = LABELS.index(row.acoustic_label), LABELS.index(row.semantic_label)
        if a != s and rng.random() < follow_text:
            target = s
        elif rng.random() < skill:
            target = a
        else:
            target = int(rng.integers(k))
        logits = rng.normal(0, 1, k)
        logits[target] += 3.0
        probs = np.exp(logits) / np.exp(logits).sum()
        target = int(np.argmax(probs))  # the label is the argmax of the probs, as a real model's would be
        probs = np.round(probs, 6)
        probs[target] = 0.0
        probs[target] = round(1 - probs.sum(), 6)  # sums to 1 within float error
        vad = np.clip(np.array(VAD[LABELS[target]]) + rng.normal(0, 0.5, 3), 1, 5).round(2)
        out.append({"id": row.id, "label": LABELS[target], "probs": dict(zip(LABELS, probs.tolist(), strict=False)),
                    "valence": vad[0], "arousal": vad[1], "dominance": vad[2]})
    return out


def main() -> None:
    rng = np.random.default_rng(SEED)
    gold = make_gold(rng)
    (OUT / "examples").mkdir(parents=True, exist_ok=True)
    gold.to_csv(OUT / "gold.csv", index=False)
    for name, follow, skill in [("voice-model", 0.15, 0.75), ("text-model", 0.7, 0.6)]:
        preds = make_predictions(gold, rng, follow, skill)
        with open(OUT / "examples" / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for p in preds:
                f.write(json.dumps(p) + "\n")
    print(f"wrote {len(gold)} items to {OUT}")


if __name__ == "__main__":
    main()
