"""EmoBox JSONL manifests (emo-box/EmoBox): one manifest per dataset, plus fold files, over 32 corpora.

EmoBox does not ship audio: its manifests point at the corpora under ``downloads/<dataset>/``. This importer
reads one dataset's manifests and the audio they name, and keeps EmoBox's fold as the split. Facts from
shared/CORPORA.md, section "EmoBox JSONL manifests — verified" (sources: emo-box/EmoBox README.md,
EmoBox/utils/preprocess_utils.py, EmoBox/EmoDataset.py, data/*/).

Layout expected (``corpus_dir`` is the EmoBox checkout, its ``data/<dataset>/`` folder, or one ``.jsonl``)::

    data/<dataset>/<dataset>.jsonl                          every item
    data/<dataset>/fold_K/<dataset>_{train,test}_fold_K.jsonl   the folds (+ _valid_fold_1 for meld,
                                                                 msppodcast, m3ed: imported as dev)
    data/<dataset>/label_map.json                           corpus code -> class name
    downloads/<dataset>/…                                   the audio (``wav`` paths start here)

One JSON object per line: ``key`` (dataset-prefixed id; some datasets turn ``_`` into ``-``), ``dataset``,
``wav``, ``type``, ``sample_rate``, ``num_frame``, ``task``, ``length``, ``emo`` (the corpus's own code),
``channel``. Legacy files with ``audio``/``label`` keys and track-2 files with ``wav_filename``/``label``/
``speaker`` are read too.

Labels: ``emo`` is raw (IEMOCAP ``exc``, MSP ``X``/``O`` are kept by EmoBox), so it is read with the code table of
casebench's own importer where there is one (iemocap -> iemocap9, msppodcast -> msp8, cremad -> crema6,
ravdess -> ravdess8); otherwise through ``label_map.json`` to a class word and from the word to the chosen
taxonomy (:func:`casebench.corpora.base.word_taxonomy`; a word no shipped taxonomy has, such as EmoDB's
``Boredom``, is dropped with a note). ``meta_original_label`` keeps ``emo``.

Quirks handled: label maps are not always consistent (emodb data says ``neutral`` where its map key is
``Neutral``; ``boredem`` sic): map keys are matched case-insensitively (rows matched only that way are counted
as ``labels_matched_case_insensitively`` and noted), and a code missing from the map is used as the class word
itself (counted as ``labels_not_in_label_map``); a fold in both spellings, ``emodb_test_fold_1.jsonl`` and the
legacy ``emodb_test_fold1.jsonl`` (emodb has both in each ``fold_K/``), is read from the first and the legacy
file left out (counted as ``legacy_fold_files_left_out``); the workspace and clip ids use the
dataset name (``ravdess-03-01-05-02-01-02-07``: the same ids as casebench's RAVDESS importer) with the key's
dataset prefix removed; speakers are read from the file names of the datasets casebench knows (RAVDESS
actor, CREMA-D actor, IEMOCAP utterance speaker), else from a ``speaker`` key, else left null. A manifest
without the all-items file is read from the union of the chosen fold's files. No line is skipped silently:
a malformed JSON line or one without a key, audio path or label is an error naming the file and line.

Uncertain: the ``downloads/`` tree of each dataset is EmoBox's own preparation; ``audio_root`` points elsewhere
when the audio lives apart from the checkout.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from casebench.corpora import base
from casebench.errors import ConfigError, InputError, Problem, did_you_mean

NAME = "emobox"
TITLE = "EmoBox manifests (any EmoBox dataset)"
NATIVE_TAXONOMY = None  # per dataset
DEFAULT_TAXONOMY = "ekman7"
LICENCE = "EmoBox manifests: MIT; the audio keeps each corpus's own licence"
CITATION = ("Ma Z, et al. (2024). EmoBox: Multilingual Multi-corpus Speech Emotion Recognition Toolkit and "
            "Benchmark. Interspeech 2024.")
SOURCES = ("shared/CORPORA.md: EmoBox JSONL manifests — verified", "emo-box/EmoBox README.md, data/*/label_map.json",
           "emo-box/EmoBox EmoBox/utils/preprocess_utils.py, EmoBox/EmoDataset.py")

_FOLD_FILE = re.compile(r"_(train|test|valid|dev)_fold_?(\d+)\.jsonl$")
_SPLIT = {"train": "train", "test": "test", "valid": "dev", "dev": "dev"}


def _known() -> dict:
    """Datasets whose raw codes casebench's own importers read: dataset -> (native taxonomy, code -> label,
    stem -> speaker)."""
    from casebench.corpora import crema_d, iemocap, msp_podcast, ravdess

    def rav_spk(stem):
        f = ravdess.parse_name(stem)
        return f["speaker"] if isinstance(f, dict) else None

    def crema_spk(stem):
        f = crema_d.parse_name(stem)
        return f["actor"] if isinstance(f, dict) else None

    def iemo_spk(stem):
        f = iemocap.parse_utterance_id(stem)
        return f["speaker"] if f else None

    return {"iemocap": ("iemocap9", iemocap.CODES.get, iemo_spk),
            "msppodcast": ("msp8", msp_podcast.CODES.get, lambda stem: None),
            "cremad": ("crema6", crema_d.EMOTIONS.get, crema_spk),
            "ravdess": ("ravdess8", lambda raw: raw.lower() if raw.lower() in ravdess.EMOTIONS.values() else None,
                        rav_spk)}


def _locate(corpus_dir: Path, dataset: str | None) -> tuple[Path, str, Path | None]:
    """(the dataset's data folder, dataset name, one manifest file when given one)."""
    if corpus_dir.is_file():
        return corpus_dir.parent, dataset or corpus_dir.parent.name, corpus_dir
    data = corpus_dir / "data"
    if data.is_dir():
        names = sorted(p.name for p in data.iterdir() if p.is_dir() and any(p.rglob("*.jsonl")))
        if dataset is None:
            if len(names) != 1:
                raise ConfigError(f"{data} holds the EmoBox datasets {names}; choose one with dataset=NAME "
                                  "(--opt dataset=NAME)")
            dataset = names[0]
        if dataset not in names:
            hint = did_you_mean(dataset, names)
            raise ConfigError(f"no EmoBox dataset {dataset!r} under {data}; expected one of {names}"
                              + (f" ({hint})" if hint else ""))
        return data / dataset, dataset, None
    if any(corpus_dir.rglob("*.jsonl")):
        return corpus_dir, dataset or corpus_dir.name, None
    raise InputError(Problem("no EmoBox manifest", file=str(corpus_dir),
                             expected="an EmoBox checkout (data/<dataset>/*.jsonl), a data/<dataset> folder or a "
                                      ".jsonl file"))


def _read_jsonl(path: Path, rel: str, problems: list) -> list[tuple[int, dict]]:
    out = []
    for i, line in enumerate(base.read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(f"invalid JSON ({e.msg})", file=rel, line=i))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem("not a JSON object", file=rel, line=i))
            continue
        item = {"key": obj.get("key"), "wav": obj.get("wav") or obj.get("audio") or obj.get("wav_filename"),
                "emo": obj.get("emo", obj.get("label")), "speaker": obj.get("speaker"),
                "dataset": obj.get("dataset")}
        for field, what in (("key", "key"), ("wav", "wav (or audio/wav_filename)"), ("emo", "emo (or label)")):
            if item[field] in (None, ""):
                if field == "key" and item["wav"]:
                    item["key"] = Path(str(item["wav"])).stem
                    continue
                problems.append(Problem(f"no {what}", file=rel, line=i, field=field))
        out.append((i, {k: (str(v) if v is not None else None) for k, v in item.items()}))
    return out


def _current_spelling(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(fold files to read, legacy files left out): where a split's fold is in both spellings,
    ``<ds>_test_fold_1.jsonl`` (current) and ``<ds>_test_fold1.jsonl`` (legacy, ``audio``/``label`` keys; EmoBox's
    emodb has both side by side), the current one is read and the legacy one left out.

    >>> names = ["emodb_test_fold1.jsonl", "emodb_test_fold_1.jsonl", "emodb_train_fold1.jsonl"]
    >>> [[p.name for p in part] for part in _current_spelling([Path(n) for n in names])]
    [['emodb_test_fold_1.jsonl', 'emodb_train_fold1.jsonl'], ['emodb_test_fold1.jsonl']]
    """
    by_split: dict[str, list[Path]] = {}
    for p in files:
        by_split.setdefault(_SPLIT[_FOLD_FILE.search(p.name).group(1)], []).append(p)
    keep, legacy = [], []
    for group in by_split.values():
        current = [p for p in group if re.search(r"_fold_\d+\.jsonl$", p.name)]
        if current and len(current) < len(group):
            legacy += [p for p in group if p not in current]
            group = current
        keep += group
    return sorted(keep), sorted(legacy)


def scan(corpus_dir: str | os.PathLike, *, dataset: str | None = None, fold: int = 1,
         audio_root: str | os.PathLike | None = None, taxonomy: str = DEFAULT_TAXONOMY) -> base.Scan:
    """Read one EmoBox dataset's manifests and audio (see the module docstring)."""
    from casebench.taxonomy import get_taxonomy

    given = Path(corpus_dir).expanduser().resolve()
    data_dir, ds, single = _locate(given, dataset)
    root = Path(audio_root).expanduser().resolve() if audio_root else (
        data_dir.parent.parent if data_dir.parent.name == "data" else given if given.is_dir() else data_dir)
    problems: list[Problem] = []
    legacy: list[Path] = []
    items: list[tuple[str, int, dict]] = []
    split_of: dict[str, tuple[str, str]] = {}
    if single is not None:
        rel = single.name
        items = [(rel, i, it) for i, it in _read_jsonl(single, rel, problems)]
        if (m := _FOLD_FILE.search(single.name)):
            split_of = {it["key"]: (_SPLIT[m.group(1)], f"{rel}:{i}") for _, i, it in items}
    else:
        main = data_dir / f"{ds}.jsonl"
        fold_dir = data_dir / f"fold_{fold}"
        fold_files = sorted(p for p in fold_dir.glob("*.jsonl") if _FOLD_FILE.search(p.name)) if fold_dir.is_dir() \
            else []
        fold_files, legacy = _current_spelling(fold_files)
        if not fold_files and not main.is_file():
            folds = sorted(p.name for p in data_dir.glob("fold_*"))
            raise InputError(Problem(f"neither {ds}.jsonl nor fold_{fold}/*.jsonl", file=str(data_dir),
                                     expected=f"an EmoBox dataset folder; folds here: {folds}"))
        for p in fold_files:
            rel = p.relative_to(data_dir).as_posix()
            split = _SPLIT[_FOLD_FILE.search(p.name).group(1)]
            for i, it in _read_jsonl(p, rel, problems):
                if it["key"] in split_of:
                    problems.append(Problem(f"key also in {split_of[it['key']][1]}", file=rel, line=i, id=it["key"],
                                            expected="each key in one fold file"))
                split_of[it["key"]] = (split, f"{rel}:{i}")
                if not main.is_file():
                    items.append((rel, i, it))
        if main.is_file():
            items = [(main.name, i, it) for i, it in _read_jsonl(main, main.name, problems)]
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in the EmoBox manifests of {ds}")
    known = _known().get(ds)
    target = get_taxonomy(taxonomy)
    raw_values = sorted({it["emo"] for _, _, it in items})
    label_map: dict[str, str] = {}
    exact_keys: set[str] = set()
    exact_keys_lower: dict[str, str] = {}
    map_path = data_dir / "label_map.json"
    if map_path.is_file():
        try:
            raw_map = json.loads(base.read_text(map_path))
            label_map = {str(k).strip().lower(): str(v) for k, v in raw_map.items()}
            exact_keys = {str(k).strip() for k in raw_map}
            exact_keys_lower = {str(k).strip().lower(): str(k).strip() for k in raw_map}
        except json.JSONDecodeError as e:
            raise InputError(Problem(f"invalid JSON ({e.msg})", file=str(map_path), line=e.lineno)) from None
    if known:
        native_name, code_of, speaker_of = known
        native = get_taxonomy(native_name)
        word_of = {raw: code_of(raw) for raw in raw_values}
        unknown = [r for r, w in word_of.items() if w is None and r not in ("oth", "xxx", "O", "X")]
        if unknown:
            raise InputError([Problem(f"emo {r!r} is not a code of {ds}", field="emo", file=str(data_dir))
                              for r in unknown], summary=f"unknown {ds} codes in the EmoBox manifests")
        method = f"EmoBox manifest emo, read with casebench's {ds} codes"
    else:
        speaker_of = None
        word_of = {}
        for raw in raw_values:
            word_of[raw] = (label_map.get(raw.strip().lower()) or raw).strip().lower()
        words = sorted({w for w in word_of.values() if w not in base.NOT_EMOTIONS})
        native = base.word_taxonomy(words, target, name=f"emobox-{ds}")
        word_of = {raw: (None if w in base.NOT_EMOTIONS else w) for raw, w in word_of.items()}
        method = "EmoBox manifest emo, through label_map.json" if label_map else "EmoBox manifest emo"
    sc = base.Scan(ds, root, native, method=method, languages=("en",) if known else (),
                   options={"dataset": ds, "fold": fold, "audio_root": str(root) if audio_root else None},
                   split_source=f"EmoBox fold_{fold}" if split_of else None)
    if single is None and legacy:
        sc.count("legacy_fold_files_left_out", ", ".join(p.name for p in legacy), n=len(legacy))
        sc.note(f"{len(legacy)} fold file(s) in EmoBox's legacy spelling ({', '.join(p.name for p in legacy)}) left "
                f"out: the same fold is also in the <dataset>_<split>_fold_{fold}.jsonl spelling, which is read")
    if not known and label_map:
        rows_of = Counter(it["emo"] for _, _, it in items)
        for raw in raw_values:
            if raw.strip().lower() not in label_map:
                sc.count("labels_not_in_label_map", raw)
            elif raw.strip() not in exact_keys:
                key = exact_keys_lower[raw.strip().lower()]
                sc.count("labels_matched_case_insensitively", f"{raw!r} ~ label_map key {key!r}", n=rows_of[raw])
        if sc.counts["labels_matched_case_insensitively"]:
            sc.note(f"{sc.counts['labels_matched_case_insensitively']} label row(s) matched label_map.json keys only "
                    "when case is ignored: " + "; ".join(sc.examples["labels_matched_case_insensitively"]))
    if split_of:
        sc.split_files = [{"split": s, "file": f"{data_dir.name}/fold_{fold}"}
                          for s in sorted({v[0] for v in split_of.values()})]
    prefix = f"{ds}-"
    seen: set[str] = set()
    for rel, i, it in items:
        key = it["key"][len(prefix):] if it["key"].startswith(prefix) else it["key"]
        if key in seen:
            sc.count("duplicate_label_rows", f"{rel}:{i}")
            continue
        seen.add(key)
        wav = Path(it["wav"])
        path = wav if wav.is_absolute() else root / wav
        stem = wav.stem
        speaker = it["speaker"] or (speaker_of(stem) if speaker_of else None)
        split, split_where = split_of.get(it["key"], (None, None))
        if split_of and split is None:
            sc.count("items_in_no_fold_file", it["key"])
        rec = base.Record(key=key, audio=path if path.is_file() else None, label=it["emo"],
                          native=word_of[it["emo"]], speaker=speaker, language="en" if known else None, split=split,
                          split_where=split_where, where=f"{rel}:{i}", meta={"emobox_key": it["key"]})
        if rec.audio is None:
            sc.count("label_rows_without_audio", it["wav"])
        else:
            sc.count("files_found")
        sc.records.append(rec)
    sc.notes.append(f"EmoBox dataset {ds!r}, fold {fold}; audio under {root}")
    if known is None and ds not in ("", None):
        sc.uncertain.append(f"{ds}: no casebench importer reads its codes; classes come from label_map.json words")
    return sc


def prepare(corpus_dir: str | os.PathLike, workspace_dir: str | os.PathLike, *, taxonomy: str | None = None,
            audio: str = "link", dataset: str | None = None, fold: int = 1, audio_root: str | None = None,
            keep_unmapped: bool = False, overwrite: bool = False, progress: bool = False) -> base.ImportReport:
    """Import one EmoBox dataset into a new workspace, EmoBox's fold ``fold`` as the split (arguments as
    :func:`casebench.corpora.base.import_scan`).

    Args:
        dataset: the EmoBox dataset name (``ravdess``, ``cremad``, ...) when ``corpus_dir`` holds several.
        fold: which of EmoBox's folds becomes the train/test split.
        audio_root: the folder the manifests' ``downloads/...`` paths are relative to (default: the checkout).
    """
    taxonomy = taxonomy or DEFAULT_TAXONOMY
    return base.import_scan(scan(corpus_dir, dataset=dataset, fold=int(fold), audio_root=audio_root,
                                 taxonomy=taxonomy), workspace_dir, taxonomy=taxonomy, audio=audio,
                            keep_unmapped=keep_unmapped, overwrite=overwrite, progress=progress)
