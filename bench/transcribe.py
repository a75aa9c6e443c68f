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

``--mix N`` instead runs the realistic mix of issue 16: N clips of 1-15 s (one to five sentences each), a
quarter of them Mandarin (espeak-ng ``cmn-latn-pinyin`` from pinyin; the reference is the Han text), a
fifth of all clips with 0.6-1.2 s of faint noise before and after the speech; for each model, the plain
loop against casebench: ``tiny.en`` on the English clips (workspace language en), ``base`` on all (clips
labelled en/zh, every language detected). English is scored by WER, Mandarin by CER (characters, after
removing punctuation and spaces; traditional and simplified forms of a character count as different, for
both runs alike). Goal: casebench >= 3x the loop, error rate no more than 1 point worse.
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


def _cached(manifest: Path, clip_dir: Path) -> list[dict] | None:
    """The rows of a manifest made by an earlier run, when every clip it lists is still there."""
    if manifest.exists():
        rows = json.loads(manifest.read_text())
        if all((clip_dir / r["file"]).exists() for r in rows):
            return rows
    return None


def make_clips(out: Path, n: int, seed: int = 0) -> list[dict]:
    """Synthesise (or reuse) ``n`` clips with espeak-ng, resampled to 16 kHz mono WAV; their manifest."""
    import soundfile as sf
    import soxr

    clip_dir = out / "clips"
    manifest = out / f"clips-{n}-{seed}.json"
    if (rows := _cached(manifest, clip_dir)) is not None:
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


def run_plain(rows: list[dict], clip_dir: Path, threads: int, model_name: str = "tiny.en") -> dict:
    """One clip at a time with faster-whisper's defaults (a multilingual model detects each language)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel

    from casebench.asr.models import model_dir
    from casebench.asr.wer import corpus_wer

    w0, c0 = time.perf_counter(), time.process_time()
    model = WhisperModel(str(model_dir(model_name)), device="cpu", compute_type="int8", cpu_threads=threads)
    hyps, langs = [], []
    for r in rows:
        segments, info = model.transcribe(str(clip_dir / r["file"]))
        hyps.append("".join(s.text for s in segments).strip())
        langs.append(info.language)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "wer": corpus_wer([r["text"] for r in rows], hyps).to_dict(),
            "texts": hyps, "languages": langs}


def run_casebench(rows: list[dict], clip_dir: Path, out: Path, threads: int, batch_size: int,
                  packing: bool = True, model_name: str = "tiny.en", beam_size: int | None = None) -> dict:
    from casebench.transcribe import transcribe
    from casebench.workspace import Workspace

    root = out / f"ws-{'pack' if packing else 'nopack'}-{batch_size}-{model_name}"
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace.create(root, "bench-transcribe", languages=sorted({r.get("language", "en") for r in rows}))
    table = []
    for r in rows:
        os.link(clip_dir / r["file"], ws.audio_dir / r["file"])
        table.append({"clip_id": r["clip_id"], "path": f"audio/{r['file']}", "duration_s": r["duration_s"],
                      "sample_rate": 16000, "text_prompt": r["text"], "language": r.get("language", "en"),
                      "source": "synth:espeak-ng", "speaker_id": r["voice"]})
    ws.write_table("clips", table)
    w0, c0 = time.perf_counter(), time.process_time()
    beam = {} if beam_size is None else {"beam_size": beam_size}  # None: casebench's default
    report = transcribe(ws, model=model_name, cpu_threads=threads, batch_size=batch_size, packing=packing, **beam)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    tr = ws.read_df("transcripts")
    # a failed transcription (null text) is scored as no words, as in the table's own WER
    texts = {cid: t if isinstance(t, str) else "" for cid, t in zip(tr.clip_id, tr.text, strict=True)}
    return {"wall_s": wall, "cpu_s": cpu, "wer": report["corpus_wer"], "modes": report["modes"],
            "fallback_reasons": report["fallback_reasons"], "n_windows": report["n_windows"],
            "texts": [texts[r["clip_id"]] for r in rows],
            "languages": [dict(zip(tr.clip_id, tr.language_detected, strict=True))[r["clip_id"]] for r in rows]}


# Mandarin sentences: (Han text, pinyin with tone numbers) for espeak-ng's cmn-latn-pinyin voice
MANDARIN = [
    ("我们一起去吃饭吧", "wo3 men5 yi4 qi3 qu4 chi1 fan4 ba5"),
    ("今天天气很好", "jin1 tian1 tian1 qi4 hen3 hao3"),
    ("我很喜欢这本书", "wo3 hen3 xi3 huan1 zhe4 ben3 shu1"),
    ("他明天去北京", "ta1 ming2 tian1 qu4 bei3 jing1"),
    ("你为什么不高兴", "ni3 wei4 shen2 me5 bu4 gao1 xing4"),
    ("我的朋友在学校工作", "wo3 de5 peng2 you5 zai4 xue2 xiao4 gong1 zuo4"),
    ("请把门关上", "qing3 ba3 men2 guan1 shang4"),
    ("妈妈在厨房做饭", "ma1 ma5 zai4 chu2 fang2 zuo4 fan4"),
    ("我们明天早上见", "wo3 men5 ming2 tian1 zao3 shang5 jian4"),
    ("这个问题很难", "zhe4 ge5 wen4 ti2 hen3 nan2"),
    ("他昨天买了一辆新车", "ta1 zuo2 tian1 mai3 le5 yi2 liang4 xin1 che1"),
    ("我不想一个人回家", "wo3 bu4 xiang3 yi2 ge4 ren2 hui2 jia1"),
]


def make_mix(out: Path, n: int, seed: int = 0) -> list[dict]:
    """``n`` clips of 1-15 s: 1-5 sentences each, a quarter Mandarin, a fifth padded with faint noise."""
    import numpy as np
    import soundfile as sf
    import soxr

    clip_dir = out / "clips"
    manifest = out / f"mix-{n}-{seed}.json"
    if (rows := _cached(manifest, clip_dir)) is not None:
        return rows
    clip_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 2)
    english = sentences(5 * n, seed + 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            zh = i % 4 == 3
            k = rng.choice([1, 1, 2, 3, 4, 5])
            if zh:
                picks = rng.sample(MANDARIN, min(k, len(MANDARIN)))
                text, spoken = "，".join(h for h, _ in picks) + "。", ", ".join(p for _, p in picks) + "."
                voice, language = "cmn-latn-pinyin", "zh"
            else:
                text = spoken = " ".join(english[5 * i:5 * i + k])
                voice, language = rng.choice(VOICES), "en"
            raw = Path(tmp) / "raw.wav"
            rate, pitch = rng.randint(140, 180), rng.randint(30, 70)
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(raw), spoken],
                           check=True, capture_output=True)
            audio, sr = sf.read(raw, dtype="float32", always_2d=True)
            audio = soxr.resample(audio.mean(axis=1), sr, 16000)[: 15 * 16000]
            pad = 0.0
            if i % 5 == 1:
                pad = rng.uniform(0.6, 1.2)
                noise = (3e-4 * np.random.default_rng(i).standard_normal(int(pad * 16000))).astype(np.float32)
                audio = np.concatenate([noise, audio, noise[::-1]])
            name = f"m{i:04d}.wav"
            sf.write(clip_dir / name, audio, 16000, subtype="PCM_16")
            rows.append({"clip_id": f"m{i:04d}", "file": name, "text": text, "language": language,
                         "duration_s": len(audio) / 16000, "voice": voice, "pad_s": round(pad, 2)})
    manifest.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return rows


def error_rates(rows: list[dict], texts: list[str]) -> dict:
    """WER (casebench.asr.wer) on the English clips, CER (jiwer, no punctuation or spaces) on the Mandarin."""
    import re

    import jiwer

    from casebench.asr.wer import corpus_wer

    out = {}
    en = [(r["text"], t) for r, t in zip(rows, texts, strict=True) if r["language"] == "en"]
    zh = [(r["text"], t) for r, t in zip(rows, texts, strict=True) if r["language"] == "zh"]
    if en:
        out["en_wer"] = corpus_wer([a for a, _ in en], [b for _, b in en]).wer
    if zh:
        def strip(x: str) -> str:
            return re.sub(r"[\W_]+", "", x or "")

        out["zh_cer"] = jiwer.cer([strip(a) for a, _ in zh], [strip(b) or "-" for _, b in zh])
    return out


def main_mix(args: argparse.Namespace) -> None:
    out = args.out.resolve()
    rows = make_mix(out, args.mix)
    audio_s = sum(r["duration_s"] for r in rows)
    print(f"mix: {len(rows)} clips ({sum(r['language'] == 'zh' for r in rows)} Mandarin, "
          f"{sum(r['pad_s'] > 0 for r in rows)} silence-padded), {audio_s:.0f} s of audio "
          f"(mean {audio_s / len(rows):.1f} s, max {max(r['duration_s'] for r in rows):.1f} s), "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    summary = {"bench": "transcribe-mix", "n_clips": len(rows), "audio_s": round(audio_s, 1),
               "threads": args.threads, "batch_size": args.batch_size, "beam_size": args.beam_size}
    for model_name in args.models.split(","):
        subset = [r for r in rows if r["language"] == "en"] if model_name.endswith(".en") else rows
        res = {}
        if not args.no_plain:
            res["plain"] = run_plain(subset, out / "clips", args.threads, model_name)
        res["casebench"] = run_casebench(subset, out / "clips", out, args.threads, args.batch_size,
                                         model_name=model_name, beam_size=args.beam_size)
        print(f"\n{model_name} on {len(subset)} clips")
        print(f"{'run':<12}{'wall s':>8}{'clips/s':>9}{'CPU s':>8}{'WER en %':>10}{'CER zh %':>10}")
        entry = {"n_clips": len(subset)}
        for name, r in res.items():
            rates = error_rates(subset, r["texts"])
            zh = f"{100 * rates['zh_cer']:>10.2f}" if "zh_cer" in rates else f"{'-':>10}"
            print(f"{name:<12}{r['wall_s']:>8.1f}{len(subset) / r['wall_s']:>9.2f}{r['cpu_s']:>8.1f}"
                  f"{100 * rates['en_wer']:>10.2f}{zh}")
            entry[name] = {"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 2),
                           **{k: round(v, 4) for k, v in rates.items()}}
            if not model_name.endswith(".en"):
                entry[name]["language_accuracy"] = round(sum(
                    lang == row["language"] for lang, row in zip(r["languages"], subset, strict=True)) / len(subset), 3)
        cb = res["casebench"]
        print(f"casebench decode modes: {cb['modes']}, {cb['n_windows']} windows, fallback reasons: "
              f"{cb['fallback_reasons'] or 'none'}")
        entry["modes"], entry["fallback_reasons"] = cb["modes"], cb["fallback_reasons"]
        if "plain" in res:
            p, c = entry["plain"], entry["casebench"]
            entry["speedup_wall"] = round(p["wall_s"] / c["wall_s"], 2)
            entry["speedup_cpu"] = round(p["cpu_s"] / c["cpu_s"], 2)
            diffs = [100 * (c[k] - p[k]) for k in ("en_wer", "zh_cer") if k in p]
            entry["error_diff_points"] = [round(d, 2) for d in diffs]
            entry["goal_met"] = entry["speedup_wall"] >= 3 and max(diffs) <= 1
        summary[model_name] = entry
    summary["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(summary))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="number of clips")
    ap.add_argument("--out", type=Path, default=Path("out/bench-transcribe"), help="cache and work folder")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1),
                    help="CPU threads of each run")
    ap.add_argument("--batch-size", type=int, default=4, help="casebench: windows decoded together")
    ap.add_argument("--beam-size", type=int, default=None,
                    help="casebench's beam size (default: casebench's own; the loop keeps faster-whisper's 5)")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain loop (tuning casebench only)")
    ap.add_argument("--no-pack", action="store_true",
                    help="also run casebench with packing off (batched pipeline alone)")
    ap.add_argument("--unbatched", action="store_true",
                    help="also run casebench with packing on and one window per batch (packing alone)")
    ap.add_argument("--show", type=int, default=0, help="print this many transcripts that differ")
    ap.add_argument("--mix", type=int, default=0, metavar="N",
                    help="run the realistic mix of N clips instead (1-15 s, English + Mandarin, padded)")
    ap.add_argument("--models", default="tiny.en,base", help="--mix: bundled models to run, comma-separated")
    args = ap.parse_args()
    if args.mix:
        main_mix(args)
        return

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
