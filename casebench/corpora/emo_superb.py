"""EMO-SUPERB-style soft-label CSVs (EMOsuperb/EMO-SUPERB-submission): per-corpus label distributions and folds.

EMO-SUPERB re-labels several corpora (CREMA-D, IEMOCAP, MSP-IMPROV, NNIME, MSP-Podcast) as distributions over
each corpus's classes, from the raters' votes, with its own rotating train/development/test folds. This
importer reads one corpus folder, one label set (``Primary`` or ``Secondary``) and one fold. Facts from
shared/CORPORA.md, section "EMO-SUPERB soft-label CSVs — verified (CREMA-D, IEMOCAP, IMPROV, NNIME)"
(sources: EMOsuperb/EMO-SUPERB-submission (4167e30) data/*/…, emo-superb/dataset.py, emo-superb/expert.py).

Layout expected (``corpus_dir`` is ``data/<CORPUS>/``, or the checkout with ``corpus=NAME``)::

    data/<CORPUS>/Audios/<FileName>                     flat (IEMOCAP wavs copied out of their dialog folders)
    data/<CORPUS>/{Primary,Secondary}/config.json       "categorical": {"emo_type": [...]}, optional
                                                        "dimensional": {"min_score", "max_score"}
    data/<CORPUS>/{Primary,Secondary}/labels_consensus_<fold>.csv

CSV columns: the file name (with ``.wav``), one column per class in ``emo_type`` order, then ``EmoAct, EmoVal,
EmoDom`` for corpora with dimensions, then ``SpkrID, Gender, Split_Set`` (always last; Train, Development,
Test). Rows sum to 1 (within 2e-6; a floor such as 0.01 replaces zeros). No BOM, LF.

Labels: the classes are words (``angry``, ``frustrated``, ...). When one shipped taxonomy has exactly those
classes it is the native taxonomy (CREMA-D -> crema6, IEMOCAP Secondary -> iemocap9) and its YAML mapping
maps the distribution; otherwise each class is mapped by name (:func:`casebench.corpora.base.word_taxonomy`)
and the classes with no counterpart (MSP-IMPROV's ``depressed``) lose their mass with a note. The hard
label is the argmax of the mapped distribution (ties counted). V/A/D are EmoVal/EmoAct/EmoDom on the config's
scale (``[import] vad_scale``).

Quirks handled: NNIME's first header cell is empty instead of ``FileName`` and it has EmoAct/EmoVal but no
EmoDom, so column 0 is the file name whatever its header and each dimension is read only when present; the
test and development sessions rotate per fold, so ``Split_Set`` is read, never inferred from the fold
number; in IEMOCAP ``SpkrID`` is the two-digit session and ``Gender`` the utterance's speaker, so a SpkrID
seen with both genders becomes two speakers (``01-female``, ``01-male``; noted); a row not summing to 1 within
1e-4 is an error naming its line; the corpus name in the workspace is the underlying corpus (``PODCAST`` ->
``msp-podcast``, ``IMPROV`` -> ``msp-improv``), so clip ids match casebench's own importers and zero-shot
checks see the corpus.

Uncertain: the PODCAST CSVs are not stored publicly (assumed to have the same layout; its config says 8 primary
and 16 secondary classes).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path

from casebench.corpora import base
from casebench.errors import ConfigError, InputError, Problem, did_you_mean

NAME = "emo-superb"
TITLE = "EMO-SUPERB soft-label CSVs"
NATIVE_TAXONOMY = None  # per corpus and label set
DEFAULT_TAXONOMY = "ekman7"
LICENCE = "EMO-SUPERB labels: see EMOsuperb/EMO-SUPERB-submission; the audio keeps each corpus's own licence"
CITATION = ("Wu H, et al. (2024). EMO-SUPERB: An In-depth Look at Speech Emotion Recognition. "
            "arXiv:2402.13018.")
SOURCES = ("shared/CORPORA.md: EMO-SUPERB soft-label CSVs — verified",
           "EMOsuperb/EMO-SUPERB-submission data/CREMA-D/Primary/config.json, data/IEMOCAP/Secondary/config.json",
           "EMOsuperb/EMO-SUPERB-submission emo-superb/dataset.py")

#: EMO-SUPERB corpus folder -> the corpus's name in casebench (workspace name and clip id prefix).
CORPUS_NAMES = {"crema-d": "crema-d", "iemocap": "iemocap", "podcast": "msp-podcast", "improv": "msp-improv",
                "nnime": "nnime", "biic_podcast": "biic-podcast"}
#: The English corpora among them (the others' languages are left for the curator to set).
ENGLISH = ("crema-d", "iemocap", "msp-podcast", "msp-improv")
DIMENSIONS = {"EmoAct": "arousal", "EmoVal": "valence", "EmoDom": "dominance"}
TAIL = ("SpkrID", "Gender", "Split_Set")


def _locate(given: Path, corpus: str | None) -> Path:
    if (given / "Primary").is_dir() or (given / "Secondary").is_dir():
        return given
    data = given / "data" if (given / "data").is_dir() else given
    names = sorted(p.name for p in data.iterdir() if p.is_dir() and ((p / "Primary").is_dir()
                                                                    or (p / "Secondary").is_dir()))
    if corpus is None:
        if len(names) == 1:
            return data / names[0]
        raise ConfigError(f"{data} holds the EMO-SUPERB corpora {names}; choose one with corpus=NAME "
                          "(--opt corpus=NAME)")
    match = next((n for n in names if n.lower() == corpus.lower()), None)
    if match is None:
        hint = did_you_mean(corpus, names)
        raise ConfigError(f"no EMO-SUPERB corpus {corpus!r} under {data}; expected one of {names}"
                          + (f" ({hint})" if hint else ""))
    return data / match


def scan(corpus_dir: str | os.PathLike, *, corpus: str | None = None, label_set: str | None = None, fold: int = 1,
         taxonomy: str = DEFAULT_TAXONOMY) -> base.Scan:
    """Read one EMO-SUPERB corpus folder, label set and fold (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    folder = _locate(Path(corpus_dir).expanduser().resolve(), corpus)
    sets = [s for s in ("Primary", "Secondary") if (folder / s).is_dir()]
    if label_set is None:
        label_set = sets[0]
    elif label_set not in sets:
        match = next((s for s in sets if s.lower() == label_set.lower()), None)
        if match is None:
            raise ConfigError(f"{folder} has no label set {label_set!r}; it has {sets}")
        label_set = match
    cfg_path = folder / label_set / "config.json"
    try:
        config = json.loads(base.read_text(cfg_path))
        emo_type = [str(c) for c in config["categorical"]["emo_type"]]
    except json.JSONDecodeError as e:
        raise InputError(Problem(f"invalid JSON ({e.msg})", file=str(cfg_path), line=e.lineno)) from None
    except (KeyError, TypeError):
        raise InputError(Problem("no categorical.emo_type list", file=str(cfg_path),
                                 expected='{"categorical": {"emo_type": [class, ...]}}')) from None
    dims = config.get("dimensional") or {}
    csv_path = folder / label_set / f"labels_consensus_{fold}.csv"
    if not csv_path.is_file():
        folds = sorted(int(m.group(1)) for p in (folder / label_set).glob("labels_consensus_*.csv")
                       if (m := re.search(r"_(\d+)\.csv$", p.name)))
        raise InputError(Problem(f"no fold {fold}", file=str(csv_path), expected=f"one of the folds {folds}"))
    name = CORPUS_NAMES.get(folder.name.lower(), re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-"))
    target = get_taxonomy(taxonomy)
    native = base.word_taxonomy(emo_type, target, name=f"emo-superb-{name}-{label_set.lower()}")
    order = [native.index[c.strip().lower()] for c in emo_type]  # CSV column j -> native position
    root = folder
    rel = csv_path.relative_to(root).as_posix()
    sc = base.Scan(name, root, native, method=f"EMO-SUPERB {label_set} soft labels (argmax = hard label)",
                   vad_scale=(float(dims["min_score"]), float(dims["max_score"])) if "min_score" in dims else None,
                   split_source=f"{rel} Split_Set", languages=("en",) if name in ENGLISH else (),
                   options={"corpus": folder.name, "label_set": label_set, "fold": fold})
    sc.split_files = [{"split": "*", "file": rel}]
    rows = list(csv.reader(io.StringIO(base.read_text(csv_path), newline="")))
    if not rows:
        raise InputError(Problem("empty file", file=str(csv_path)))
    header = [h.strip() for h in rows[0]]
    problems: list[Problem] = []
    got = [h.lower() for h in header[1:1 + len(emo_type)]]
    if got != [c.lower() for c in emo_type]:
        problems.append(Problem(f"class columns {header[1:1 + len(emo_type)]}", file=rel, line=1,
                                expected=f"the config's emo_type in order: {emo_type}"))
    rest = header[1 + len(emo_type):]
    if rest[-3:] != list(TAIL):
        problems.append(Problem(f"last columns {rest[-3:]}", file=rel, line=1, expected=f"{list(TAIL)}"))
    extra = [c for c in rest[:-3] if c not in DIMENSIONS]
    if extra:
        problems.append(Problem(f"unexpected columns {extra}", file=rel, line=1,
                                expected=f"only {list(DIMENSIONS)} between the classes and {list(TAIL)}"))
    if problems:
        raise InputError(problems, summary=f"{csv_path} is not an EMO-SUPERB label file")
    if header[0] != "FileName":
        sc.count("file_name_column_unnamed" if not header[0] else "file_name_column_renamed", repr(header[0]))
    col = {h: i for i, h in enumerate(header)}
    k = len(emo_type)
    genders: dict[str, set] = defaultdict(set)
    parsed = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.append(Problem(f"{len(cells)} cells", file=rel, line=line, expected=f"{len(header)}"))
            continue
        fname = cells[0].strip()
        try:
            values = [float(cells[1 + j]) for j in range(k)]
        except ValueError:
            problems.append(Problem("a class value is not a number", file=rel, line=line, id=fname))
            continue
        if any(not math.isfinite(v) or v < 0 for v in values) or abs(sum(values) - 1) > 1e-4:
            problems.append(Problem(f"distribution sums to {sum(values):.6g}", file=rel, line=line, id=fname,
                                    expected="non-negative values summing to 1 (within 1e-4)"))
            continue
        dist = [0.0] * len(native)
        for j, v in enumerate(values):
            dist[order[j]] += v
        vad = {}
        for c, dim in DIMENSIONS.items():
            if c in col:
                try:
                    vad[dim] = float(cells[col[c]])
                except ValueError:
                    problems.append(Problem(f"{c} {cells[col[c]]!r}", file=rel, line=line, id=fname, field=c,
                                            expected="a number"))
        spk = cells[col["SpkrID"]].strip()
        gender = cells[col["Gender"]].strip().lower()
        genders[spk].add(gender)
        parsed.append((line, fname, dist, vad, spk, gender, cells[col["Split_Set"]].strip()))
        if len(problems) > 200:
            break
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in {csv_path}")
    mixed = {s for s, g in genders.items() if len(g) > 1}
    if mixed:
        sc.note(f"SpkrID {', '.join(sorted(mixed)[:5])} carry both genders (IEMOCAP: the session): the speaker is "
                "SpkrID plus the utterance's gender")
    seen = set()
    for line, fname, dist, vad, spk, gender, split in parsed:
        key = fname[:-4] if fname.lower().endswith(".wav") else fname
        if key in seen:
            sc.count("duplicate_label_rows", f"{rel}:{line}")
            continue
        seen.add(key)
        speaker = (f"{spk}-{gender}" if spk in mixed else spk) or None
        sc.records.append(base.Record(
            key=key, audio=None, dist=dist, label=emo_type[max(range(k), key=lambda j, d=dist: d[order[j]])],
            valence=vad.get("valence"), arousal=vad.get("arousal"), dominance=vad.get("dominance"),
            speaker=speaker, gender=gender if gender in ("male", "female") else None,
            language="en" if name in ENGLISH else None,
            split=base.fold_split(split) if split else None, split_where=f"{rel}:{line}", where=f"{rel}:{line}",
            meta={"file_name": fname}))
    audio_dir = folder / "Audios"
    files = {f.stem: f for f, _, _ in base.named_files(audio_dir, lambda stem: {}, sc, rel_to=folder,
                                                       suffixes=base.AUDIO_SUFFIXES)}
    if not audio_dir.is_dir():
        sc.note(f"no Audios/ folder in {folder}")
    base.match_audio(sc, files)
    if name == "msp-podcast":
        sc.uncertain.append("the PODCAST CSVs are not stored publicly; their layout is assumed to be the others'")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", corpus: str | None = None, label_set: str | None = None, fold: int = 1,
            keep_unmapped: bool = False, overwrite: bool = False, progress: bool = False) -> base.ImportReport:
    """Import one EMO-SUPERB corpus (label set ``label_set``, fold ``fold``) into a new workspace: distributions
    mapped into ``taxonomy`` (default ekman7), argmax as hard label, the fold's Split_Set as the split.

    Args:
        corpus: the EMO-SUPERB corpus folder name (``CREMA-D``, ``IEMOCAP``, ...) when ``corpus_dir`` holds several.
        label_set: ``Primary`` or ``Secondary`` (default: Primary when present).
        fold: which ``labels_consensus_<fold>.csv`` to read.
    """
    taxonomy = taxonomy or DEFAULT_TAXONOMY
    return base.import_scan(scan(corpus_dir, corpus=corpus, label_set=label_set, fold=int(fold), taxonomy=taxonomy),
                            workspace_dir, taxonomy=taxonomy, audio=audio, keep_unmapped=keep_unmapped,
                            overwrite=overwrite, progress=progress)
