"""Generate the built-in benchmark with audio, `casebench-audio-mini`, with casebench's own synthesis.

Run from the repository root: `python scripts/make_audio_mini_benchmark.py` (needs espeak-ng). It writes
casebench/benchmarks/data/casebench-audio-mini/: `gold.csv` (the test split), `train.csv`, the audio under
`audio/<split>/<id>.flac` and `SHA256SUMS` (every file's sha256), and the spec
casebench/benchmarks/casebench-audio-mini.yaml with the fingerprint (the sha256 of SHA256SUMS, so of every
shipped byte). `python scripts/make_audio_mini_benchmark.py DIR` writes all of it into DIR instead.

What it is. Sentences of the built-in bank (casebench/data/synth/sentences_en.yaml), whose words carry one
of the four iemocap4 emotions, spoken by espeak-ng voices with the prosody profile of one of the four
(casebench.synth, the code `casebench synth` runs):

- test (`gold.csv`): 6 voices, every acoustic x semantic pair of the four emotions: 48 conflict clips
  (4 per off-diagonal cell) and 48 congruent clips (12 per emotion);
- train (`train.csv`): 10 other voices, voice and words agreeing on most clips (30 congruent clips per
  emotion, 2 per conflict cell), as in acted corpora with emotional scripts: a model trained here can
  take the words as a shortcut, and the test split's conflict clips show whether it did.

Train and test share no voice (speaker), no espeak voice variant (timbre) and no sentence: a probe cannot
recognise a test clip's speaker or memorise its sentence. Four classes rather than ekman7 because the four
espeak prosody profiles (angry, happy, neutral, sad) differ most, and the audio budget (about 10 MB) buys
more clips per class.

Size. Clips are 16 kHz mono FLAC, loudness-normalised by casebench.audio.prepare, with the samples rounded
to 12-bit resolution before encoding (FLAC stores the constant zero low bits of a block for free, which
makes the files about 40% smaller; the rounding noise sits near -78 dBFS, far below espeak-ng's own).

Reproducibility. Everything in the label tables (ids, voices, sentences, labels) follows from SEED through
casebench.synth.design.make_plan and does not depend on the audio: `tables()` rebuilds them without
espeak-ng, and a test checks they equal the shipped ones byte for byte. The audio bytes depend on the
espeak-ng build (the shipped audio's is named in the spec's description) and on the prosody profiles in
casebench/synth/backends/espeak.py: regenerating on another build gives other audio, hence a new
fingerprint and a new benchmark version.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261204
VERSION = "1.0"
EMOTIONS = ["angry", "happy", "neutral", "sad"]  # the iemocap4 taxonomy, in its label order
TEST_SENTENCES = 10  # per semantic emotion; the rest of the bank's sentences go to train
SPLITS = {
    # voices: espeak-ng voice+variant names; variants (timbres) differ between the splits
    "test": {"table": "gold.csv", "per_cell": 4, "congruent": 12,
             "voices": ["en-us+m6", "en-gb+m7", "en-gb-scotland+m6", "en-us+f4", "en-gb+f5",
                        "en-gb-scotland+f4"]},
    "train": {"table": "train.csv", "per_cell": 2, "congruent": 30,
              "voices": ["en-us+m1", "en-gb+m2", "en-us+m3", "en-gb-x-rp+m4", "en-029+m5", "en-gb+m1",
                         "en-us+f1", "en-gb+f2", "en-gb-x-rp+f3", "en-029+f1"]},
}
COLUMNS = ["id", "path", "speaker_id", "gender", "acoustic_label", "semantic_label", "is_conflict", "text"]
QUANTUM = 16  # 16-bit samples rounded to multiples of 16: 12-bit resolution
OUT = Path(__file__).resolve().parents[1] / "casebench" / "benchmarks" / "data" / "casebench-audio-mini"


def banks() -> dict[str, dict]:
    """The built-in sentences of the four emotions, split by a seeded shuffle into test and train banks."""
    from casebench.synth.texts import builtin_bank

    bank = builtin_bank("en")  # ekman7 labels; the four iemocap4 ones are taken
    rng = random.Random(SEED)
    out: dict[str, dict] = {"test": {}, "train": {}}
    for emotion in EMOTIONS:
        sentences = list(bank.sentences[emotion])
        rng.shuffle(sentences)
        out["test"][emotion] = sentences[:TEST_SENTENCES]
        out["train"][emotion] = sentences[TEST_SENTENCES:]
    return out


def plans() -> dict[str, list]:
    """The synth plan of each split (casebench.synth.design.make_plan, as `synth` makes it)."""
    from casebench.synth.design import make_plan

    b = banks()
    return {name: make_plan(b[name], EMOTIONS, s["voices"], per_cell=s["per_cell"], congruent=s["congruent"],
                            seed=SEED) for name, s in SPLITS.items()}


def tables() -> dict[str, pd.DataFrame]:
    """The label table of each split, from the plans alone (no audio needed)."""
    from casebench.synth.backends.espeak import EspeakBackend

    gender = EspeakBackend().gender
    out = {}
    for name, plan in plans().items():
        rows = [{"id": c.clip_id, "path": f"audio/{name}/{c.clip_id}.flac", "speaker_id": f"espeak-ng:{c.voice}",
                 "gender": gender(c.voice), "acoustic_label": c.acoustic, "semantic_label": c.semantic,
                 "is_conflict": c.acoustic != c.semantic, "text": c.text} for c in plan]
        out[name] = pd.DataFrame(rows, columns=COLUMNS)
    return out


def write_tables(out: Path) -> dict[str, pd.DataFrame]:
    out.mkdir(parents=True, exist_ok=True)
    t = tables()
    for name, df in t.items():
        df.to_csv(out / SPLITS[name]["table"], index=False, lineterminator="\n")
    return t


def compact_flac(data: bytes) -> bytes:
    """Re-encode 16-bit FLAC bytes at 12-bit resolution and the highest FLAC compression level."""
    import soundfile as sf

    x, sr = sf.read(io.BytesIO(data), dtype="int16")
    q = np.clip(np.round(x.astype(np.float64) / QUANTUM) * QUANTUM, -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, q, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
    return buf.getvalue()


def synthesize(out: Path, t: dict[str, pd.DataFrame]) -> str:
    """Synthesize every split with `casebench.synth.synth` into a scratch workspace and copy the audio to
    ``out``; returns the espeak-ng version."""
    from casebench.synth import synth
    from casebench.synth.backends.espeak import espeak_version
    from casebench.synth.texts import TextBank
    from casebench.workspace import Workspace

    b = banks()
    with tempfile.TemporaryDirectory(prefix="casebench-audio-mini-") as tmp:
        for name, spec in SPLITS.items():
            ws = Workspace.create(Path(tmp) / name, f"casebench-audio-mini-{name}", taxonomy="iemocap4")
            synth(ws, voices=spec["voices"], emotions=EMOTIONS, per_cell=spec["per_cell"],
                  congruent=spec["congruent"], texts=TextBank(b[name], "builtin:en"), seed=SEED, progress=True)
            clips = ws.read_df("clips").set_index("clip_id")
            want = t[name]
            if set(clips.index) != set(want["id"]):  # the plan here and synth's plan must be the same plan
                raise SystemExit(f"{name}: synth made other clips than the plan ({len(clips)} vs {len(want)})")
            dest = out / "audio" / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for clip_id, rel in zip(want["id"], want["path"], strict=True):
                data = (ws.root / clips.loc[clip_id, "path"]).read_bytes()
                (out / rel).write_bytes(compact_flac(data))
    return espeak_version()


def manifest(out: Path) -> str:
    """Write SHA256SUMS (``<sha256>  <path>`` per shipped file, sorted; ``sha256sum -c SHA256SUMS`` checks it)
    and return the benchmark's fingerprint, the sha256 of SHA256SUMS."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}" for p in files]
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "sha256:" + hashlib.sha256((out / "SHA256SUMS").read_bytes()).hexdigest()


SPEC = """\
# Made by scripts/make_audio_mini_benchmark.py: edit the script, not this file.
name: casebench-audio-mini
version: "{version}"
description: >-
  The built-in benchmark with audio: {n_test} test clips (half conflict: the voice's emotion is not the words'
  emotion) from {n_test_voices} espeak-ng voices, and a train split of {n_train} clips from {n_train_voices}
  other voices whose words mostly agree with the voice, to train a probe on. Four emotions (iemocap4); 16 kHz
  mono FLAC shipped in the package, made with casebench's own synthesis ({espeak}) by
  scripts/make_audio_mini_benchmark.py (seed {seed}). Train and test share no speaker, voice timbre or sentence.
taxonomy: iemocap4
gold: data/casebench-audio-mini/gold.csv
train: data/casebench-audio-mini/train.csv
# sha256 of data/casebench-audio-mini/SHA256SUMS, which lists the sha256 of every shipped file (audio included)
fingerprint: "{fingerprint}"
licence: CC0-1.0 (synthetic speech made with espeak-ng, GPL-3.0-or-later, whose output is not covered by its licence)
citation: casebench contributors (2026). casebench-audio-mini, a built-in conflict benchmark with audio.
corpora: [casebench-audio-mini-train]
tasks:
  - {{name: emotion, kind: categorical, target: acoustic_label, main_metric: macro_f1}}
splits:
  - all
  - conflict
  - congruent
group_by: [gender]
"""


def write_spec(path: Path, t: dict[str, pd.DataFrame], fingerprint: str, espeak: str) -> None:
    path.write_text(SPEC.format(
        version=VERSION, n_test=len(t["test"]), n_train=len(t["train"]), seed=SEED,
        espeak=espeak.split("Data at")[0].strip(),  # the version, not the data path
        n_test_voices=t["test"]["speaker_id"].nunique(), n_train_voices=t["train"]["speaker_id"].nunique(),
        fingerprint=fingerprint), encoding="utf-8")


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else OUT
    t = write_tables(out)
    espeak = synthesize(out, t)
    fingerprint = manifest(out)
    write_spec(out.parent.parent / "casebench-audio-mini.yaml" if not argv else out / "spec.yaml", t,
               fingerprint, espeak)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {sum(map(len, t.values()))} clips ({', '.join(f'{k} {len(v)}' for k, v in t.items())}), "
          f"{size / 1e6:.1f} MB, to {out}\nfingerprint: {fingerprint}")


if __name__ == "__main__":
    main(sys.argv[1:])
