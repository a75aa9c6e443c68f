"""Tiny, valid, deterministic workspaces for tests.

:func:`make_workspace` builds a workspace with a ``clips`` table (speakers, prompts, intended emotions),
``labels`` (a mix of conflict and congruent clips, distributions over the taxonomy), ``splits``
(speaker-disjoint where there are enough speakers) and, on request, short sine-tone WAV files,
``transcripts`` and LONG ``annotations``. Everything follows from ``seed``.

The annotations, when made, are the votes the labels come from: ``labels.acoustic_dist`` is the share of
each label among the clip's ``acoustic_emotion`` ratings (the same for ``semantic``), the majority is
the label, and ``valence``/``arousal``/``dominance`` are the means of the raters' 1-5 ratings. So an
aggregation test can rebuild the labels from the annotations.

>>> import tempfile
>>> ws = make_workspace(tempfile.mkdtemp(), n_clips=8, seed=1, with_annotations=True)
>>> labels = ws.read_df("labels")
>>> bool(labels["is_conflict"].any() and not labels["is_conflict"].all())
True
>>> sorted(set(ws.read_df("splits")["split"]))
['dev', 'test', 'train']
>>> ws.read_table("annotations").num_rows   # 8 clips x 3 raters x 5 dimensions
120
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import http.server
import io
import json
import os
import random
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from casebench.taxonomy import get_taxonomy
from casebench.workspace import Workspace, config_hash

#: Valence, arousal, dominance (1-5) of the ekman7 emotions, for plausible dimensional ratings;
#: other labels get the scale's middle.
VAD = {"angry": (1.6, 4.3, 4.0), "disgust": (1.8, 3.3, 3.4), "fear": (1.7, 4.0, 1.8),
       "happy": (4.4, 3.8, 3.6), "neutral": (3.0, 2.2, 3.0), "sad": (1.6, 1.9, 1.8),
       "surprise": (3.6, 4.2, 3.0)}

SENTENCES = {"angry": "I told you twice and you still did not listen to me.",
             "disgust": "The food in that place smelled rotten and made me sick.",
             "fear": "Someone is outside the door and the lights just went out.",
             "happy": "We won the match and everyone is coming to celebrate.",
             "neutral": "The meeting is on Tuesday at ten in the second room.",
             "sad": "My old dog died last night and the house feels empty.",
             "surprise": "You came all this way without telling anyone at all."}

DIMENSIONS = ("acoustic_emotion", "semantic_emotion", "valence", "arousal", "dominance")


def sine_wav_bytes(freq_hz: float, duration_s: float, sample_rate: int = 16000,
                   amplitude: float = 0.3) -> bytes:
    """A mono 16-bit PCM WAV file of a sine tone, as bytes (stdlib ``wave``; 10 ms fades avoid clicks).

    >>> data = sine_wav_bytes(220.0, 0.5)
    >>> data[:4], len(data)
    (b'RIFF', 16044)
    """
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    signal = amplitude * np.sin(2 * np.pi * freq_hz * t)
    fade = min(n // 2, int(0.01 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[n - fade:] *= ramp[::-1]
    return wav_bytes(signal, sample_rate)


def make_workspace(tmp_path: str | os.PathLike, n_clips: int = 20, n_speakers: int = 4, seed: int = 0,
                   with_audio: bool = False, *, taxonomy: str = "ekman7", name: str = "tiny",
                   conflict_rate: float = 0.5, raters_per_clip: int = 3, with_transcripts: bool = False,
                   with_annotations: bool = False, subdir: str = "ws") -> Workspace:
    """Build a tiny valid workspace at ``tmp_path/subdir`` and return it.

    Args:
        tmp_path: parent folder (pytest's ``tmp_path``).
        n_clips, n_speakers: sizes; clip ``i`` is ``clip-{i:04d}`` spoken by speaker ``i % n_speakers``.
        seed: everything random (labels, conflicts, durations, dissenting raters) follows from it.
        with_audio: write ``audio/clip-XXXX.wav`` (16 kHz mono sine tones, 0.5-1.5 s, the pitch set by
            the acoustic label); without it the clips still have ``path`` and ``sha256`` of the audio
            that would be there, but no file.
        taxonomy: the workspace taxonomy; labels are drawn from it.
        conflict_rate: share of conflict clips (acoustic label != semantic label); with two or more clips
            and a rate strictly between 0 and 1, clip 0 is congruent and clip 1 a conflict, so both
            kinds are always present.
        raters_per_clip: raters behind each label; with 3 or more, about a third of the clips have one
            dissenting acoustic vote and a third one dissenting semantic vote.
        with_transcripts: write ``transcripts`` (text = prompt, word times spread over the clip).
        with_annotations: write LONG ``annotations`` that the labels are aggregated from (5 dimensions:
            acoustic_emotion, semantic_emotion, valence, arousal, dominance).

    Splits: with 4 or more speakers they are speaker-disjoint (speakers 0, 1 mod 4 train, 2 dev, 3 test);
    with fewer, clips are assigned by index in the same pattern. ``fold`` is the speaker number for
    train clips and null elsewhere.
    """
    if n_clips < 1 or n_speakers < 1 or raters_per_clip < 1:
        raise ValueError("n_clips, n_speakers and raters_per_clip must be at least 1")
    tax = get_taxonomy(taxonomy)
    labels = list(tax.labels)
    rng = random.Random(seed)
    ws = Workspace.create(os.path.join(os.fspath(tmp_path), subdir), name, taxonomy=taxonomy,
                          licence="CC-BY-4.0", annotation={"raters_per_clip": raters_per_clip})
    t0 = _dt.datetime(2024, 1, 1, 9, 0, tzinfo=_dt.timezone.utc)
    clips, label_rows, split_rows, transcripts, annotations = [], [], [], [], []
    for i in range(n_clips):
        cid = f"clip-{i:04d}"
        spk = i % n_speakers
        acoustic = rng.choice(labels)
        conflict = i == 1 if n_clips >= 2 and 0 < conflict_rate < 1 and i < 2 else rng.random() < conflict_rate
        others = [x for x in labels if x != acoustic]
        semantic = rng.choice(others) if conflict and others else acoustic
        duration = round(rng.uniform(0.5, 1.5), 3)
        audio = sine_wav_bytes(150.0 + 25.0 * tax.index[acoustic] + 10.0 * spk, duration)
        path = f"audio/{cid}.wav"
        if with_audio:
            (ws.root / path).write_bytes(audio)
        prompt = SENTENCES.get(semantic, f"This is a sentence that means {semantic}.")
        clips.append({"clip_id": cid, "path": path, "duration_s": duration, "sample_rate": 16000,
                      "sha256": hashlib.sha256(audio).hexdigest(), "speaker_id": f"spk-{spk:02d}",
                      "gender": "female" if spk % 2 == 0 else "male", "language": "en", "source": "testing",
                      "session": f"s{i // 10}", "text_prompt": prompt, "intended_acoustic": acoustic,
                      "intended_semantic": semantic})

        votes = {"acoustic_emotion": _votes(rng, acoustic, labels, raters_per_clip),
                 "semantic_emotion": _votes(rng, semantic, labels, raters_per_clip)}
        base = VAD.get(acoustic, (3.0, 3.0, 3.0))
        for d, dim in enumerate(("valence", "arousal", "dominance")):
            votes[dim] = [str(min(5, max(1, round(base[d] + rng.uniform(-1, 1)))))
                          for _ in range(raters_per_clip)]
        acoustic_dist = _dist(votes["acoustic_emotion"], labels)
        semantic_dist = _dist(votes["semantic_emotion"], labels)
        label_rows.append({
            "clip_id": cid, "acoustic_label": acoustic, "semantic_label": semantic,
            "acoustic_dist": acoustic_dist, "semantic_dist": semantic_dist, "n_raters": raters_per_clip,
            "agreement": max(acoustic_dist),
            **{dim: float(np.mean([float(v) for v in votes[dim]]))
               for dim in ("valence", "arousal", "dominance")},
            "is_conflict": acoustic != semantic,
            "conflict_type": f"{acoustic}-voice/{semantic}-words" if acoustic != semantic else None,
            "method": "testing", "passes_thresholds": True})

        key = spk if n_speakers >= 4 else i
        split = ("train", "train", "dev", "test")[key % 4]
        split_rows.append({"clip_id": cid, "split": split, "fold": spk if split == "train" else None})

        if with_transcripts:
            words = prompt.split()
            step = duration / len(words)
            transcripts.append({
                "clip_id": cid, "text": prompt, "language": "en", "language_prob": 0.99, "avg_logprob": -0.2,
                "no_speech_prob": 0.01, "model": "testing",
                "words": [{"word": w, "start": round(k * step, 3), "end": round((k + 1) * step, 3),
                           "probability": 0.9} for k, w in enumerate(words)],
                "config_hash": config_hash({"model": "testing"}), "wer": 0.0})

        if with_annotations:
            for r in range(raters_per_clip):
                rater = f"rater-{(i + r) % (2 * raters_per_clip):02d}"
                ann_id = f"{i + 1}-{r + 1}"
                for dim in DIMENSIONS:
                    value = votes[dim][r]
                    annotations.append({
                        "annotation_id": ann_id, "clip_id": cid, "rater_id": rater, "dimension": dim,
                        "value": value, "value_num": float(value) if value.isdigit() else None,
                        "lead_time_s": round(rng.uniform(5, 30), 1),
                        "source": f"label-studio:1/{i + 1}/{ann_id}",
                        "created_at": t0 + _dt.timedelta(minutes=i * raters_per_clip + r),
                        "cancelled": False, "ground_truth": False})

    ws.write_table("clips", clips)
    ws.write_table("labels", label_rows)
    ws.write_table("splits", split_rows)
    if with_transcripts:
        ws.write_table("transcripts", transcripts)
    if with_annotations:
        ws.write_table("annotations", annotations)
    return ws


def _votes(rng: random.Random, label: str, labels: list[str], n: int) -> list[str]:
    """``n`` votes for ``label``; with 3+ raters, a third of the time the last one dissents."""
    votes = [label] * n
    if n >= 3 and len(labels) > 1 and rng.random() < 1 / 3:
        votes[-1] = rng.choice([x for x in labels if x != label])
    return votes


def _dist(votes: list[str], labels: list[str]) -> list[float]:
    counts = Counter(votes)
    return [counts[x] / len(votes) for x in labels]


# --------------------------------------------------------------------------------------------------
# Speech-like audio and distinct texts (leakage audit and publish tests)

_WORDS = ("apple", "river", "stone", "window", "garden", "yellow", "quiet", "morning", "letter", "travel",
          "silver", "market", "doctor", "winter", "candle", "forest", "bridge", "pocket", "engine",
          "summer", "button", "island", "ladder", "orange", "planet", "rabbit", "shadow", "tunnel",
          "violin", "wagon", "harbor", "jacket", "kettle", "lemon", "meadow", "needle", "oyster", "parrot",
          "quilt", "rocket", "saddle", "tiger", "umbrella", "valley", "walnut", "anchor", "basket",
          "cotton", "dragon", "feather", "glove", "hammer", "ivory", "jungle", "lantern", "marble",
          "napkin", "orchard", "pepper", "ribbon", "spider", "thunder", "velvet", "whistle", "zipper",
          "blanket", "compass", "desert", "falcon", "granite", "helmet", "insect", "jigsaw", "koala",
          "lobster", "mirror", "nickel", "olive", "pillow", "radar", "sponge", "trumpet", "walrus")


def speechlike(seed: int, duration_s: float = 1.5, sample_rate: int = 16000, f0: float = 120.0) -> np.ndarray:
    """A speech-like float32 test signal: 24 harmonics of a wandering pitch, shaped by a syllable-rate
    envelope, plus a little noise. Different seeds differ as much as different utterances do for the audit's
    fingerprint (bit error rate 0.3-0.5), unlike :func:`sine_wav_bytes` tones, which are too plain to compare.

    >>> x = speechlike(0, 0.5)
    >>> x.dtype, x.shape, float(abs(x).max()) <= 0.3 + 1e-6
    (dtype('float32'), (8000,), True)
    """
    r = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = f0 + 40 * np.sin(2 * np.pi * r.uniform(0.5, 2) * t + r.uniform(0, 6)) + r.uniform(-20, 20)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = np.zeros(n)
    for k in range(1, 25):
        am = 1 + 0.8 * np.sin(2 * np.pi * r.uniform(2, 6) * t * k / 3 + r.uniform(0, 6))
        x += (1 / k) * np.sin(k * phase + r.uniform(0, 6)) * am
    x *= np.clip(np.sin(2 * np.pi * r.uniform(2, 4) * t + r.uniform(0, 6)), 0, None) ** 0.5
    x += r.normal(0, 0.002, n)
    return (0.3 * x / max(float(np.abs(x).max()), 1e-9)).astype(np.float32)


def wav_bytes(x: np.ndarray, sample_rate: int = 16000) -> bytes:
    """Mono 16-bit PCM WAV bytes of a float signal in [-1, 1] (stdlib ``wave``)."""
    pcm = np.round(np.clip(np.asarray(x, dtype=np.float64), -1, 1) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def distinct_sentence(rng: random.Random, n_words: int = 9) -> str:
    """A sentence of ``n_words`` words drawn without repeats from a fixed list of 83 words (two such sentences
    share few words, so they are not near-identical texts for the audit)."""
    words = rng.sample(_WORDS, n_words)
    return " ".join(words).capitalize() + "."


def make_clean_workspace(tmp_path: str | os.PathLike, n_clips: int = 24, n_speakers: int = 4, seed: int = 0,
                         **kwargs) -> Workspace:
    """:func:`make_workspace` with speech-like audio (:func:`speechlike`, one signal per clip), a distinct
    prompt and transcript per clip, and speaker-disjoint splits: a corpus the leakage audit passes.

    Takes ``make_workspace``'s other arguments (``with_annotations``, ``conflict_rate``, ...); always writes
    audio and transcripts.
    """
    ws = make_workspace(tmp_path, n_clips=n_clips, n_speakers=n_speakers, seed=seed, with_audio=False,
                        with_transcripts=True, **kwargs)
    rng = random.Random(seed + 7919)
    clips = ws.read_df("clips")
    transcripts = ws.read_df("transcripts")
    shas, prompts = [], []
    for i, (path, dur) in enumerate(zip(clips["path"], clips["duration_s"], strict=True)):
        data = wav_bytes(speechlike(seed * 100_003 + i, float(dur)))
        (ws.root / path).write_bytes(data)
        shas.append(hashlib.sha256(data).hexdigest())
        prompts.append(distinct_sentence(rng))
    clips["sha256"] = shas
    clips["text_prompt"] = prompts
    transcripts["text"] = prompts
    transcripts["words"] = [[{"word": w, "start": None, "end": None, "probability": None} for w in p.split()]
                            for p in prompts]
    ws.write_table("clips", clips)
    ws.write_table("transcripts", transcripts)
    return ws


# --------------------------------------------------------------------------------------------------
# A tiny benchmark with audio (casebench predict tests)

#: espeak-ng prosody (pitch 0-99, words per minute, amplitude) that makes each voice emotion plainly audible.
ESPEAK_PROSODY = {"happy": (88, 200, 170), "sad": (12, 105, 70), "angry": (45, 215, 200)}


def make_audio_benchmark(tmp_path: str | os.PathLike, *, labels: tuple[str, ...] = ("happy", "sad"),
                         train_voices: tuple[str, ...] = ("en-us+m3", "en-us+f3"),
                         test_voices: tuple[str, ...] = ("en-gb+m1", "en-us+f2"), repeats: int = 2,
                         name: str = "audio-tiny") -> os.PathLike:
    """A benchmark spec (YAML, ekman7, categorical task) with espeak-ng audio, and its path.

    Every (voice, voice emotion, words emotion, repeat) is one clip: the voice emotion is carried by
    espeak-ng's pitch, rate and loudness (:data:`ESPEAK_PROSODY`), the words are :data:`SENTENCES` of the
    words emotion, so half the clips are conflict clips. ``train.csv`` holds the ``train_voices``, ``gold.csv``
    the ``test_voices`` (speaker-disjoint); both have ``path`` (relative to the table) and ``text`` columns.
    Needs the ``espeak-ng`` program (Debian package espeak-ng).
    """
    import subprocess
    from pathlib import Path

    import pandas as pd
    import yaml

    root = Path(tmp_path)
    (root / "audio").mkdir(parents=True, exist_ok=True)

    def table(voices: tuple[str, ...], part: str) -> pd.DataFrame:
        rows = []
        for v in voices:
            for acoustic in labels:
                for semantic in labels:
                    for r in range(repeats):
                        cid = f"{part}-{v.replace('+', '_')}-{acoustic}-{semantic}-{r}"
                        pitch, rate, amp = ESPEAK_PROSODY[acoustic]
                        rate += 4 * (r // 2)  # repeats beyond two differ in speed
                        text = SENTENCES[semantic] if r == 0 else SENTENCES[semantic].split(" and ")[0] + "."
                        path = f"audio/{cid}.wav"
                        subprocess.run(["espeak-ng", "-v", v, "-p", str(pitch), "-s", str(rate), "-a", str(amp),
                                        "-w", str(root / path), text], check=True, capture_output=True)
                        rows.append({"id": cid, "acoustic_label": acoustic, "semantic_label": semantic,
                                     "speaker_id": v, "path": path, "text": text, "corpus": "espeak"})
        return pd.DataFrame(rows)

    table(train_voices, "train").to_csv(root / "train.csv", index=False)
    table(test_voices, "test").to_csv(root / "gold.csv", index=False)
    spec = {"name": name, "version": "1", "taxonomy": "ekman7", "gold": "gold.csv", "train": "train.csv",
            "corpora": ["espeak"], "tasks": [{"name": "emotion", "kind": "categorical", "main_metric": "macro_f1"}],
            "splits": ["all", "conflict", "congruent"]}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# A mixed-emotion example (the curators' tutorial, and the end-to-end test of the EM2LDL path)

#: The plutchik32 classes the mixed example's clips are dominated by, with a word for each in the example's
#: three languages (English, Mandarin, Cantonese): what the words of a clip say.
MIXED_EXAMPLE_WORDS = {
    "joy": ("joy", "喜悦", "開心"), "sadness": ("sadness", "悲伤", "傷心"), "anger": ("anger", "愤怒", "嬲"),
    "fear": ("fear", "恐惧", "驚"), "trust": ("trust", "信任", "信"), "disgust": ("disgust", "厌恶", "討厭"),
    "surprise": ("surprise", "惊讶", "估唔到"), "anticipation": ("anticipation", "期待", "期待"),
}
_MIXED_TEMPLATES = ("Honestly I feel {w} about the {x} today.", "我对{x}感到{w}。", "我對{x}覺得好{w}。")
_MIXED_THINGS = (("garden", "花园", "花園"), ("letter", "信件", "封信"), ("train", "火车", "火車"),
                 ("market", "市场", "街市"), ("concert", "音乐会", "音樂會"), ("river", "河流", "條河"),
                 ("school", "学校", "學校"), ("kitchen", "厨房", "廚房"))
MIXED_LANGUAGES = ("en", "zh", "yue")


def write_mixed_example(out_dir: str | os.PathLike, *, n_clips: int = 48, n_raters: int = 20, seed: int = 0,
                        duration_s: float = 1.2) -> dict:
    """Write the inputs of a small EM2LDL-like corpus: ``recordings/*.wav``, ``manifest.csv`` (for
    ``casebench collect``) and ``ratings.csv`` (for ``casebench annotate import-csv``).

    Clips: speech-like signals (:func:`speechlike`) of twelve speakers, four per language (``en``, ``zh``
    Mandarin, ``yue`` Cantonese), each clip carrying a *true* distribution over plutchik32: a dominant class of
    :data:`MIXED_EXAMPLE_WORDS` (the voice's pitch rises with it, the text names it in the speaker's language)
    and one or two secondary classes. Ratings: ``n_raters`` raters per clip choose the dominant class (with
    probability 0.85) and, half of the time, a secondary one, each with a 1-5 weight, written as
    ``"joy:4;trust:2"``; plus valence and arousal (1-5) following the dominant class. Returns counts and paths.

    >>> import tempfile
    >>> info = write_mixed_example(tempfile.mkdtemp(), n_clips=9, n_raters=3)
    >>> info["clips"], info["ratings"] > 0, info["languages"]
    (9, True, ['en', 'yue', 'zh'])
    """
    import csv
    from pathlib import Path

    from casebench.taxonomy import get_taxonomy

    out = Path(out_dir)
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    classes = list(MIXED_EXAMPLE_WORDS)
    others = [x for x in get_taxonomy("plutchik32").labels if x not in classes]
    vad = {"joy": (4.5, 3.8), "sadness": (1.6, 1.8), "anger": (1.6, 4.5), "fear": (1.8, 4.2), "trust": (4.0, 2.4),
           "disgust": (1.8, 3.2), "surprise": (3.6, 4.4), "anticipation": (3.8, 3.4)}
    speakers = [(f"spk{i:02d}", MIXED_LANGUAGES[i // 4], "female" if i % 2 else "male") for i in range(12)]
    manifest, ratings = [], []
    for i in range(n_clips):
        speaker, lang, gender = speakers[i % len(speakers)]
        dominant = classes[(i // len(speakers) + i) % len(classes)]
        secondary = rng.sample([x for x in classes if x != dominant] + others[:4], rng.randint(1, 2))
        clip = f"mix-{i:03d}"
        k = MIXED_LANGUAGES.index(lang)
        text = _MIXED_TEMPLATES[k].format(w=MIXED_EXAMPLE_WORDS[dominant][k], x=_MIXED_THINGS[i % 8][k])
        text = f"{text} {i + 1}"  # every text its own, as separate recordings would be
        x = speechlike(seed * 100_000 + i, duration_s, f0=100.0 + 25.0 * classes.index(dominant))
        (out / "recordings" / f"{clip}.wav").write_bytes(wav_bytes(x))
        manifest.append({"clip_id": clip, "path": f"recordings/{clip}.wav", "speaker": speaker, "gender": gender,
                         "language": lang, "text": text})
        for r in range(n_raters):
            chosen = {dominant if rng.random() < 0.85 else rng.choice(secondary): rng.randint(3, 5)}
            if rng.random() < 0.5:
                extra = rng.choice(secondary)
                chosen.setdefault(extra, rng.randint(1, 3))
            value = ";".join(f"{label}:{w}" for label, w in chosen.items())
            rater = f"rater-{r:02d}"
            ratings.append({"clip_id": clip, "rater_id": rater, "dimension": "acoustic_emotion", "value": value})
            v, a = vad[dominant]
            for dim, centre in (("valence", v), ("arousal", a)):
                ratings.append({"clip_id": clip, "rater_id": rater, "dimension": dim,
                                "value": str(int(np.clip(round(centre + rng.gauss(0, 0.7)), 1, 5)))})
    for name, rows in (("manifest.csv", manifest), ("ratings.csv", ratings)):
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return {"clips": len(manifest), "ratings": len(ratings), "raters": n_raters,
            "languages": sorted({m["language"] for m in manifest}), "manifest": str(out / "manifest.csv"),
            "ratings_csv": str(out / "ratings.csv")}


if __name__ == "__main__":  # python -m casebench.testing mixed-example DIR  (the curators' tutorial)
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "mixed-example":
        sys.exit("usage: python -m casebench.testing mixed-example DIR")
    info = write_mixed_example(sys.argv[2])
    print(f"{info['clips']} recordings in {info['languages']}, {info['ratings']} ratings by {info['raters']} raters: "
          f"{info['manifest']}, {info['ratings_csv']}")



class JsonApiHandler(http.server.BaseHTTPRequestHandler):
    """Base of the remote-API stand-ins the tests serve with :func:`local_http_server`: ``read_json()`` reads a
    request's JSON body, ``send(code, body)`` answers with a dict/list (as JSON) or bytes, a content type and
    extra headers; nothing is logged to the test output."""

    def read_json(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def send(self, code: int, body, content_type: str = "application/json", headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def local_http_server(handler: type) -> Iterator[str]:
    """Serve ``handler`` (an ``http.server.BaseHTTPRequestHandler`` class) on 127.0.0.1 and a free port, in a
    daemon thread, for tests of clients of remote APIs (chat completions, speech); yields the base URL
    ``http://127.0.0.1:PORT`` and shuts the server down afterwards."""
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


#: How the browser tests start Debian's Chromium headless (Playwright's own browser download cannot run here):
#: no sandbox as root, and no background traffic, which the closed network would refuse.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


_STANDIN = r'''#!{python}
import argparse, json, os, sys
import numpy as np, soundfile as sf
p = argparse.ArgumentParser()
TOOL = {tool!r}
if TOOL == "f5":
    p.add_argument("--model"); p.add_argument("--ref_audio", required=True); p.add_argument("--ref_text", default="")
    p.add_argument("--gen_text", required=True); p.add_argument("--output_dir", required=True)
    p.add_argument("--output_file", required=True)
else:
    p.add_argument("--model_name", required=True); p.add_argument("--text", required=True)
    p.add_argument("--speaker_wav", required=True); p.add_argument("--language_idx", required=True)
    p.add_argument("--out_path", required=True)
a = p.parse_args()
ref = a.ref_audio if TOOL == "f5" else a.speaker_wav
x, sr = sf.read(ref)
text = a.gen_text if TOOL == "f5" else a.text
out = os.path.join(a.output_dir, a.output_file) if TOOL == "f5" else a.out_path
t = np.arange(int(0.05 * len(text) * 24000)) / 24000
y = np.sqrt(np.mean(x ** 2)) * 1.4 * np.sin(2 * np.pi * 180 * t) * (np.floor(t / 0.1) % 3 != 0)
sf.write(out, y, 24000, subtype="PCM_16")
if os.environ.get("STANDIN_LOG"):
    with open(os.environ["STANDIN_LOG"], "a") as f:
        f.write(json.dumps({{"tool": TOOL, "argv": sys.argv[1:], "ref_sr": sr}}) + "\n")
'''


def write_tts_standins(bin_dir: str | os.PathLike) -> Path:
    """Write stand-ins for the reference-prompted TTS programs of docs/reference-synthesis.md into ``bin_dir``
    (``f5-tts_infer-cli`` and coqui's ``tts``; put it first on PATH). Each parses its tool's real flags, reads
    the reference WAV (and text) and writes a WAV whose loudness follows the reference and whose length follows
    the text, so the recipes run without the models; with ``STANDIN_LOG`` set, each call appends its arguments
    there as a JSON line. Returns ``bin_dir``."""
    import sys

    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, tool in (("f5-tts_infer-cli", "f5"), ("tts", "xtts")):
        script = bin_dir / name
        script.write_text(_STANDIN.format(python=sys.executable, tool=tool), encoding="utf-8")
        script.chmod(0o755)
    return bin_dir
