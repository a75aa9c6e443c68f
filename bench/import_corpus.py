"""Benchmark: `casebench import-corpus` on a CREMA-D-shaped tree, audio linked vs copied vs converted.

Builds a synthetic CREMA-D tree (AudioWAV/ActorID_Sentence_Emotion_Level.wav, 16 kHz mono 16-bit noise of
--seconds each, VideoDemographics.csv) with --files clips, then imports it three times into fresh workspaces:
  link    symlinks + header read + sha256 (the default),
  copy    byte copy + header read + sha256,
  convert decode, loudness-normalise, write 16 kHz mono FLAC (what `collect` does to every file; the obvious
          alternative to linking).
A first, uncounted link import loads the libraries. Prints wall time, files/s and MB/s of each, and the ratio
of convert to link.

Usage: python bench/import_corpus.py [--files 1000] [--seconds 2.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from casebench.corpora import import_corpus
from casebench.corpora.crema_d import EMOTIONS, SENTENCES


def build(root: Path, n: int, seconds: float) -> int:
    rng = np.random.default_rng(0)
    wav = root / "AudioWAV"
    wav.mkdir(parents=True)
    actors = [str(a) for a in range(1001, 1092)]
    sentences = sorted(SENTENCES)
    emotions = sorted(EMOTIONS)
    total = 0
    for i in range(n):
        actor = actors[i % len(actors)]
        sent = sentences[(i // len(actors)) % len(sentences)]
        emo = emotions[(i // (len(actors) * len(sentences))) % len(emotions)]
        level = "MD" if sent == "IEO" and emo != "NEU" else "XX"
        rep = i // (len(actors) * len(sentences) * len(emotions))
        name = f"{actor}_{sent}_{emo}_{level}.wav" if rep == 0 else f"{actor}_{sent}_{emo}_{level}{rep}.wav"
        path = wav / name
        x = 0.1 * rng.standard_normal(int(seconds * 16000))
        sf.write(str(path), x, 16000, subtype="PCM_16")
        total += path.stat().st_size
    (root / "VideoDemographics.csv").write_text('"ActorID","Age","Sex","Race","Ethnicity"\n' + "".join(
        f'{a},30,"{"Male" if int(a) % 2 else "Female"}","Unknown","Not Hispanic"\n' for a in actors))
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=2.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        src = Path(tmp) / "CREMA-D"
        size = build(src, args.files, args.seconds)
        results = {}
        import_corpus("crema-d", src, Path(tmp) / "ws-warm-up")   # loads the libraries; not counted
        for mode in ("link", "copy", "convert"):
            t0 = time.perf_counter()
            rep = import_corpus("crema-d", src, Path(tmp) / f"ws-{mode}", audio=mode)
            wall = time.perf_counter() - t0
            results[mode] = {"wall_s": round(wall, 2), "clips": rep.n_clips,
                             "files_per_s": round(rep.n_clips / wall, 1), "mb_per_s": round(size / 1e6 / wall, 1)}
        out = {"files": args.files, "seconds_per_file": args.seconds, "corpus_mb": round(size / 1e6, 1),
               "cpus": os.cpu_count(), "python": platform.python_version(), "results": results,
               "convert_over_link": round(results["convert"]["wall_s"] / results["link"]["wall_s"], 1)}
        print(json.dumps(out, indent=2))
        # the names are unique only for the first 91 x 12 x 6 files; more repeat with a suffix the importer
        # counts as unparsed, so keep --files <= 6552 for a clean comparison
        if rep.n_clips != args.files:
            print(f"note: {args.files - rep.n_clips} file(s) not imported (unparsed names beyond 6552 files)")


if __name__ == "__main__":
    main()
