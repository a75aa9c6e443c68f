"""EM2LDL: a multilingual (Mandarin, Cantonese, English code-switching) speech corpus with label distributions
over Plutchik's 32 emotions (xingfengli/EM2LDL).

Every clip has a distribution over 32 categories from many raters; casebench imports it as a distribution
(``acoustic_dist``, in the chosen taxonomy's order) plus a hard label, the argmax. Facts from shared/CORPORA.md,
section "EM2LDL — verified in xingfengli/EM2LDL (3264a4a)" (sources: README.md, labels/labels_readme.md,
labels/labels_distributions_Info.csv, models/models_readme.md, models/train_val_test/*_ids.csv, audio_demos/,
all parsed byte-wise).

Layout expected (the GitHub repository, plus the licence-gated audio somewhere below ``corpus_dir``)::

    labels/labels_distributions_Info.csv       UTF-8 with BOM, CRLF, no final newline; 3998 rows x 40 columns
    models/train_val_test/{train,val,test}_ids.csv   header audio_id, 4-digit zero-padded ids, CRLF
    audio_demos/0001_intj_ce.WAV …              {id4}_{mbti|mbti4}_{lang}.WAV, 44.1 kHz 16-bit stereo

Label file columns: ``AudioID`` (unpadded integer), the 32 categories in plutchik32 order with the corpus's
spellings (``ecstacy``, ``aggresiveness``), then ``speaker ID`` (with a space), ``gender``, ``age`` (``Youth``,
Chinese words such as 中年, or ages like ``25岁``: kept as text in ``meta_age``), ``ageClass``, ``mbtiSingle``,
``mbtiDouble``, ``lang`` (ce Cantonese-English, me Mandarin-English, mc Mandarin-Cantonese). AudioID runs
1-4000 with 2361 and 3676 absent.

Quirks handled:
- the BOM and CRLF line ends are read transparently; every problem in the file (a non-numeric value, a row not
  summing to 1 within 1e-6, a missing column, with a did-you-mean) is reported with its line;
- split files hold zero-padded ids (``0412``) and the label file unpadded ones (``412``): both are joined on
  the integer; split ids with no label row or no audio are counted, an id in two lists is an error;
- the absent AudioIDs (2361, 3676 in the release) are counted as ``audio_ids_absent_from_labels`` with a note;
- **the "speaker-independent" split is not**: speaker12 (864 clips) is in train, val and test (val is only
  speaker12). The split is imported as published (val becomes ``dev``) and the import notes the shared speakers;
  ``casebench audit`` fails it as a speaker leak;
- ``language`` is left null (a code-switching pair is not one BCP-47 tag); ``meta_lang`` keeps the corpus code
  and ``meta_languages`` the pair (``yue,en``);
- a distribution mapped into a smaller taxonomy (ekman7) loses the mass of the petals without a counterpart
  (trust, anticipation, ...) with a note and is renormalised; ties of the argmax are counted.

Uncertain: the full corpus's audio layout is not published. Audio files anywhere below ``corpus_dir`` are
matched by the **leading integer of the file name** (as the demos are
named ``{id4}_{mbti}_{lang}.WAV``); where the name has a third field it is checked against the ``lang`` column
(disagreements counted as ``file_name_disagrees_with_labels``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

from casebench.corpora import base
from casebench.errors import InputError, Problem, did_you_mean

NAME = "em2ldl"
TITLE = "EM2LDL (multilingual speech corpus for mixed emotion recognition through label distribution learning)"
NATIVE_TAXONOMY = "plutchik32"
DEFAULT_TAXONOMY = "plutchik32"
LICENCE = "labels: see xingfengli/EM2LDL; audio: licence-gated by the authors (not redistributable)"
CITATION = ("Li X, et al. EM2LDL: a multilingual speech corpus for mixed emotion recognition through label "
            "distribution learning. https://github.com/xingfengli/EM2LDL")
SOURCES = ("shared/CORPORA.md: EM2LDL — verified in xingfengli/EM2LDL (3264a4a)",
           "xingfengli/EM2LDL labels/labels_distributions_Info.csv, labels/labels_readme.md",
           "xingfengli/EM2LDL models/train_val_test/{train,val,test}_ids.csv, models/models_readme.md")

LABEL_FILE = "labels/labels_distributions_Info.csv"
SPLIT_DIR = "models/train_val_test"
SPLIT_FILES = {"train": "train_ids.csv", "dev": "val_ids.csv", "test": "test_ids.csv"}
META_COLUMNS = ("speaker ID", "gender", "age", "ageClass", "mbtiSingle", "mbtiDouble", "lang")
LANGS = {"ce": "yue,en", "me": "cmn,en", "mc": "cmn,yue"}
_AUDIO_ID = re.compile(r"^(\d+)(?:_(.*))?$")


def _audio_name(stem: str) -> dict | None:
    """The AudioID (and the other ``_`` fields) of an audio file name; None when it does not start with one.

    >>> _audio_name("0001_intj_ce")
    {'key': '0001', 'audio_id': 1, 'rest': ['intj', 'ce']}
    """
    m = _AUDIO_ID.match(stem)
    if not m:
        return None
    aid = int(m.group(1))
    return {"key": f"{aid:04d}", "audio_id": aid, "rest": (m.group(2) or "").split("_") if m.group(2) else []}


def _label_rows(root: Path, sc: base.Scan):
    from casebench.taxonomy import get_taxonomy

    path = root / LABEL_FILE
    if not path.is_file():
        raise InputError(Problem("label file not found", file=str(path),
                                 expected=f"{LABEL_FILE} under the corpus folder (the EM2LDL repository)"))
    classes = get_taxonomy(NATIVE_TAXONOMY).labels
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        sc.count("label_file_bom_removed")
    text = base.read_text(path)  # utf-8-sig: the BOM goes, csv handles CRLF
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    expected = ["AudioID", *classes, *META_COLUMNS]
    problems = [Problem(f"no column {c!r}", file=LABEL_FILE, line=1, field=c, hint=did_you_mean(c, header))
                for c in expected if c not in header]
    problems += [Problem(f"unexpected column {c!r}", file=LABEL_FILE, line=1, field=c,
                         expected=f"the 40 columns AudioID, 32 plutchik32 classes, {', '.join(META_COLUMNS)}",
                         hint=did_you_mean(c, expected)) for c in header if c not in expected]
    if problems:
        raise InputError(problems, summary=f"{path} is not an EM2LDL label file")
    col = {c: header.index(c) for c in expected}
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.append(Problem(f"{len(cells)} cells", file=LABEL_FILE, line=line,
                                    expected=f"{len(header)} as in the header"))
            continue
        aid = cells[col["AudioID"]].strip()
        if not aid.isdigit():
            problems.append(Problem(f"AudioID {aid!r}", file=LABEL_FILE, line=line, field="AudioID",
                                    expected="an integer"))
            continue
        dist = []
        for c in classes:
            v = cells[col[c]].strip()
            try:
                x = float(v)
            except ValueError:
                x = math.nan
            if not math.isfinite(x) or x < 0:
                problems.append(Problem(f"value {v!r}", file=LABEL_FILE, line=line, id=aid, field=c,
                                        expected="a non-negative number"))
            dist.append(x)
        s = sum(dist)
        if math.isfinite(s) and abs(s - 1) > 1e-6:
            problems.append(Problem(f"distribution sums to {s:.9g}", file=LABEL_FILE, line=line, id=aid,
                                    expected="the 32 values summing to 1 (within 1e-6)"))
        rows.append((int(aid), line, dist, {c: cells[col[c]].strip() for c in META_COLUMNS}))
        if len(problems) > 200:
            break
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in {path}")
    return rows


def _split_lists(root: Path, sc: base.Scan) -> dict[int, tuple[str, str]]:
    folder = root / SPLIT_DIR
    if not folder.is_dir():
        sc.note(f"no {SPLIT_DIR}/: no official split imported")
        return {}
    out: dict[int, tuple[str, str]] = {}
    problems = []
    for split, name in SPLIT_FILES.items():
        path = folder / name
        if not path.is_file():
            sc.note(f"no {SPLIT_DIR}/{name}: split {split!r} not imported")
            continue
        sc.split_files.append({"split": split, "file": f"{SPLIT_DIR}/{name}"})
        lines = base.read_text(path).splitlines()
        if not lines or lines[0].strip().lower() != "audio_id":
            problems.append(Problem(f"header {lines[0] if lines else ''!r}", file=f"{SPLIT_DIR}/{name}", line=1,
                                    expected="audio_id"))
            continue
        for i, raw in enumerate(lines[1:], start=2):
            ref = raw.strip()
            if not ref:
                continue
            where = f"{SPLIT_DIR}/{name}:{i}"
            if not ref.isdigit():
                problems.append(Problem(f"id {ref!r}", file=f"{SPLIT_DIR}/{name}", line=i, expected="digits"))
                continue
            if int(ref) in out:
                problems.append(Problem(f"id {ref} also listed at {out[int(ref)][1]}", file=f"{SPLIT_DIR}/{name}",
                                        line=i, id=ref, expected="each id in one split list"))
                continue
            out[int(ref)] = (split, where)
    if problems:
        raise InputError(problems, summary="problems in the EM2LDL split lists")
    sc.split_source = f"{SPLIT_DIR}/{{train,val,test}}_ids.csv (val imported as dev)"
    return out


def scan(corpus_dir: str | os.PathLike) -> base.Scan:
    """Read the EM2LDL repository and its audio (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    root = Path(corpus_dir).expanduser().resolve()
    sc = base.Scan(NAME, root, get_taxonomy(NATIVE_TAXONOMY), method="label distribution (argmax = hard label)",
                   languages=("cmn", "yue", "en"))
    rows = _label_rows(root, sc)
    splits = _split_lists(root, sc)
    ids = {aid for aid, *_ in rows}
    if ids:
        absent = [i for i in range(1, max(ids) + 1) if i not in ids]
        for i in absent:
            sc.count("audio_ids_absent_from_labels", i)
        if absent:
            sc.note(f"AudioID {', '.join(map(str, absent[:10]))}{' …' if len(absent) > 10 else ''} absent from the "
                    "label file (the release lacks 2361 and 3676)")
    for aid, (_split, where) in sorted(splits.items()):
        if aid not in ids:
            sc.count("split_ids_without_label_row", where)
    lang_of = {}
    for aid, line, dist, meta in rows:
        split, split_where = splits.get(aid, (None, None))
        if splits and split is None:
            sc.count("label_rows_in_no_split", aid)
        lang_of[aid] = meta["lang"]
        sc.records.append(base.Record(
            key=f"{aid:04d}", audio=None, label=None, dist=dist, speaker=meta["speaker ID"] or None,
            gender=meta["gender"].lower() if meta["gender"].lower() in ("male", "female") else None,
            split=split, split_where=split_where, where=f"{LABEL_FILE}:{line}",
            meta={"audio_id": aid, "age": meta["age"], "age_class": meta["ageClass"],
                  "mbti_single": meta["mbtiSingle"], "mbti_double": meta["mbtiDouble"], "lang": meta["lang"],
                  "languages": LANGS.get(meta["lang"])}))
    classes = get_taxonomy(NATIVE_TAXONOMY).labels
    for rec in sc.records:  # the corpus has no single label: keep the argmax in its own taxonomy as the original
        rec.label = classes[max(range(len(classes)), key=lambda j: rec.dist[j])]
    files: dict[str, Path] = {}
    for f, rel, fields in base.named_files(root, _audio_name, sc, suffixes=base.AUDIO_SUFFIXES):
        aid, rest = fields["audio_id"], fields["rest"]
        if len(rest) >= 2 and aid in lang_of and rest[-1].lower() != lang_of[aid].lower():
            sc.count("file_name_disagrees_with_labels", f"{rel} (lang {lang_of[aid]} in the label file)")
        files[fields["key"]] = f
    base.match_audio(sc, files)
    sc.uncertain.append("the full corpus's audio layout is not published: audio files are matched by the leading "
                        "integer of their name (the audio_demos naming {id4}_{mbti}_{lang}.WAV)")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", keep_unmapped: bool = False, overwrite: bool = False,
            progress: bool = False) -> base.ImportReport:
    """Import EM2LDL into a new workspace: distributions (plutchik32 by default, or mapped into ``taxonomy``),
    the argmax as hard label, and the official train/val/test split (val as dev), whose shared speakers the
    report notes. Other arguments as :func:`casebench.corpora.base.import_scan`."""
    return base.import_scan(scan(corpus_dir), workspace_dir, taxonomy=taxonomy or DEFAULT_TAXONOMY, audio=audio,
                            keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
