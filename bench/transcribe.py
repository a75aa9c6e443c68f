"""Benchmark: transcribing 200 short synthetic clips with Whisper tiny.en on CPU.

Compares, in one run on the same clips (espeak-ng speech, 16 kHz mono, 1-4 s, cached in --out):
  plain: the obvious loop, one clip at a time: ``WhisperModel(<bundled tiny.en>, compute_type="int8")``
      then ``model.transcribe(path)`` with faster-whisper's defaults (beam 5, no word timestamps);
  casebench: ``casebench.transcribe.transcribe`` end to end on a workspace holding the same clips (packing,
      batched windows, word timestamps, journal parts, transcripts table, report).
Both include loading the model, run with the same thread count, and are scored with the same normaliser
(``casebench.asr.wer``) against the text espeak-ng spoke. Wall time is shown with CPU time (process time,
all threads), which moves less when other work shares the machine.

Usage: python bench/transcribe.py [--n 200] [--out out/bench-transcribe] [--threads 2] [--batch-size 4]
Goal (issue 4): casebench at least 3x the plain loop's clips per second, WER no more than 1 point worse.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SUBJECTS = ["My brother", "The teacher", "Our neighbour", "The old man", "Her daughter", "The doctor",
            "My best friend", "The children", "The manager", "Your cousin", "The driver", "A young woman",
            "His father", "The nurse", "Everyone at work", "The baker"]
ACTIONS = ["found a letter", "lost the keys", "painted the fence", "cooked dinner", "sold the car",
           "fixed the radio", "broke the window", "opened the door", "missed the bus", "read the news",
           "planted some roses", "called the police", "won the lottery", "forgot the tickets",
           "cleaned the house", "wrote a song", "burned the toast", "sang a sad song", "lost the match",
           "bought a new phone"]
PLACES = ["in the kitchen", "at the station", "near the river", "behind the school", "in the garden",
          "at the market", "on the beach", "in the hospital", "at the office", "in the dark forest"]
TIMES = ["this morning", "last night", "on Sunday", "after lunch", "yesterday", "two days ago",
         "before the storm", "at midnight"]
# espeak-ng voices and prosody, a crude stand-in for emotional speech (voice variant, pitch, rate)
VOICES = ["en-us", "en", "en-us+f3", "en+m3", "en-us+f2", "en+m7"]


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences of 3-12 words: a third short (subject + action), the rest longer."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        s, a = rng.choice(SUBJECTS), rng.choice(ACTIONS)
        kind = rng.random()
        if kind < 1 / 3:
            text = f"{s} {a}."
        elif kind < 2 / 3:
            text = f"{s} {a} {rng.choice(PLACES)}."
        else:
            text = f"{s} {a} {rng.choice(PLACES)} {rng.choice(TIMES)}."
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def make_clips(out: Path, n: int, seed: int = 0) -> list[dict]:
    """Synthesise (or reuse) ``n`` clips with espeak-ng, resampled to 16 kHz mono WAV; their manifest."""
    import soundfile as sf
    import soxr

    clip_dir = out / "clips"
    manifest = out / f"clips-{n}-{seed}.json"
    if manifest.exists():
        rows = json.loads(manifest.read_text())
        if all((clip_dir / r["file"]).exists() for r in rows):
            return rows
    clip_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(sentences(n, seed)):
            raw = Path(tmp) / "raw.wav"
            voice, rate, pitch = rng.choice(VOICES), rng.randint(140, 190), rng.randint(25, 75)
            # espeak-ng exits 0 even on a bad option: check that the file was written
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(raw), text],
                           check=True, capture_output=True)
            if not raw.is_file():
                raise RuntimeError(f"espeak-ng wrote no audio for {text!r} (voice {voice})")
            audio, sr = sf.read(raw, dtype="float32", always_2d=True)
            audio = soxr.resample(audio.mean(axis=1), sr, 16000)
            name = f"b{i:04d}.wav"
            sf.write(clip_dir / name, audio, 16000, subtype="PCM_16")
            rows.append({"clip_id": f"b{i:04d}", "file": name, "text": text, "duration_s": len(audio) / 16000,
                         "voice": voice, "rate": rate, "pitch": pitch})
    manifest.write_text(json.dumps(rows, indent=1))
    return rows


def run_plain(rows: list[dict], clip_dir: Path, threads: int) -> dict:
    """One clip at a time with faster-whisper's defaults."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel

    from casebench.asr.faster_whisper import default_model_dir
    from casebench.asr.wer import corpus_wer

    w0, c0 = time.perf_counter(), time.process_time()
    model = WhisperModel(str(default_model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    hyps = []
    for r in rows:
        segments, _ = model.transcribe(str(clip_dir / r["file"]))
        hyps.append("".join(s.text for s in segments).strip())
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "wer": corpus_wer([r["text"] for r in rows], hyps).to_dict(),
            "texts": hyps}


def run_casebench(rows: list[dict], clip_dir: Path, out: Path, threads: int, batch_size: int,
                  packing: bool = True) -> dict:
    from casebench.transcribe import transcribe
    from casebench.workspace import Workspace

    root = out / f"ws-{'pack' if packing else 'nopack'}-{batch_size}"
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace.create(root, "bench-transcribe")
    table = []
    for r in rows:
        os.link(clip_dir / r["file"], ws.audio_dir / r["file"])
        table.append({"clip_id": r["clip_id"], "path": f"audio/{r['file']}", "duration_s": r["duration_s"],
                      "sample_rate": 16000, "text_prompt": r["text"], "language": "en",
                      "source": "synth:espeak-ng", "speaker_id": r["voice"]})
    ws.write_table("clips", table)
    w0, c0 = time.perf_counter(), time.process_time()
    report = transcribe(ws, cpu_threads=threads, batch_size=batch_size, packing=packing)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    texts = dict(zip(ws.read_df("transcripts").clip_id, ws.read_df("transcripts").text, strict=True))
    return {"wall_s": wall, "cpu_s": cpu, "wer": report["corpus_wer"], "modes": report["modes"],
            "fallback_reasons": report["fallback_reasons"], "n_windows": report["n_windows"],
            "texts": [texts[r["clip_id"]] for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="number of clips")
    ap.add_argument("--out", type=Path, default=Path("out/bench-transcribe"), help="cache and work folder")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1),
                    help="CPU threads of each run")
    ap.add_argument("--batch-size", type=int, default=4, help="casebench: windows decoded together")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain loop (tuning casebench only)")
    ap.add_argument("--no-pack", action="store_true",
                    help="also run casebench with packing off (batched pipeline alone)")
    ap.add_argument("--unbatched", action="store_true",
                    help="also run casebench with packing on and one window per batch (packing alone)")
    ap.add_argument("--show", type=int, default=0, help="print this many transcripts that differ")
    args = ap.parse_args()

    out = args.out.resolve()
    rows = make_clips(out, args.n)
    audio_s = sum(r["duration_s"] for r in rows)
    print(f"{len(rows)} clips, {audio_s:.0f} s of audio (mean {audio_s / len(rows):.2f} s), "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    results = {}
    if not args.no_plain:
        results["plain loop"] = run_plain(rows, out / "clips", args.threads)
    results["casebench"] = run_casebench(rows, out / "clips", out, args.threads, args.batch_size)
    if args.no_pack:
        results["casebench, no packing"] = run_casebench(rows, out / "clips", out, args.threads,
                                                         args.batch_size, packing=False)
    if args.unbatched:
        results["casebench, batch 1"] = run_casebench(rows, out / "clips", out, args.threads, 1)
    print(f"\n{'run':<24}{'wall s':>8}{'clips/s':>9}{'CPU s':>8}{'CPU s/clip':>11}{'WER %':>7}")
    for name, r in results.items():
        print(f"{name:<24}{r['wall_s']:>8.1f}{len(rows) / r['wall_s']:>9.2f}{r['cpu_s']:>8.1f}"
              f"{r['cpu_s'] / len(rows):>11.3f}{100 * r['wer']['wer']:>7.2f}")
    cb = results["casebench"]
    print(f"casebench decode modes: {cb['modes']}, {cb['n_windows']} windows, fallback reasons: "
          f"{cb['fallback_reasons'] or 'none'}")
    summary = {"bench": "transcribe", "n_clips": len(rows), "audio_s": round(audio_s, 1),
               "threads": args.threads, "batch_size": args.batch_size,
               "load_average": round(os.getloadavg()[0], 2)}
    for name, r in results.items():
        key = name.replace(", ", "_").replace(" ", "_")
        summary[key] = {"wall_s": round(r["wall_s"], 2), "clips_per_s": round(len(rows) / r["wall_s"], 3),
                        "cpu_s": round(r["cpu_s"], 2), "wer": round(r["wer"]["wer"], 4)}
    if "plain loop" in results:
        plain = results["plain loop"]
        summary["speedup_wall"] = round(plain["wall_s"] / cb["wall_s"], 2)
        summary["speedup_cpu"] = round(plain["cpu_s"] / cb["cpu_s"], 2)
        summary["wer_diff_points"] = round(100 * (cb["wer"]["wer"] - plain["wer"]["wer"]), 2)
        summary["goal_met"] = summary["speedup_wall"] >= 3 and summary["wer_diff_points"] <= 1
        if args.show:
            from casebench.asr.wer import normalize_text

            shown = 0
            for r, a, b in zip(rows, plain["texts"], cb["texts"], strict=True):
                if normalize_text(a) != normalize_text(b) and shown < args.show:
                    print(f"  {r['clip_id']} ref : {r['text']}\n        plain: {a}\n        cb   : {b}")
                    shown += 1
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
