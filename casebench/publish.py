"""Publish a workspace as a Hugging Face dataset: Parquet shards, a generated data card, Croissant, upload.

``publish(workspace, out_dir)`` writes the Hub layout to a folder::

    out_dir/
      README.md                 # YAML header the Hub reads (configs, data files per split, features,
                                #   licence, languages, task categories, size) + the data card body
      croissant.json            # Croissant 1.0 metadata, validated with mlcroissant
      images/conflict_pairs.png # voice x words label pairs (corpora whose voice and words were both rated)
      data/<split>-00000-of-0000N.parquet           # config "default": audio + hard labels + transcript
      distributions/<split>-00000-of-00001.parquet  # config "distributions": soft labels (taxonomy order)
      annotations/<split>-00000-of-00001.parquet    # config "annotations": the raw per-rater table (a
                                                    #   multi-label rating's weights as JSON in `weights`)

The ``default`` config holds the audio, embedded as the ``datasets`` Audio feature struct
``{bytes, path}`` (the workspace file's own bytes, not re-encoded, so they hash to ``clips.sha256``), the
transcript and the metadata and hard labels of each clip; its splits are the workspace splits plus the
derived views ``conflict_test`` and ``congruent_test`` (:data:`casebench.splits.VIEWS`; their rows repeat
test rows). ``distributions`` and ``annotations`` carry no audio (join them to ``default`` on ``clip_id``), so
the audio is stored once. Shards are written streaming, one row group (<= :data:`ROW_GROUP_ROWS` rows or
:data:`ROW_GROUP_BYTES`) at a time with :class:`pyarrow.parquet.ParquetWriter`, and roll over at
``shard_bytes`` (500 MB by default, as ``push_to_hub``): memory holds one row group, whatever the corpus
size. The Parquet options follow ``datasets``' own writer (no compression and plain encoding for the audio
bytes, dictionary-encoded snappy for the rest, page index, content-defined chunking for deduplicated
re-uploads) and the schema carries the ``huggingface`` features metadata, so the files load as the same
features even without the README.

Before writing, ``publish`` runs the leakage audit (:mod:`casebench.audit`) and refuses a corpus that fails
it unless given ``allow_leakage="reason"``; the reason goes into the card. The curator's fields (licence,
consent, summary, authors, guidelines) must be filled (:func:`casebench.datacard.card_fields`).
``hide_test_labels`` publishes the test audio without labels (the label columns are null, ``distributions``
and ``annotations`` have no test split, the conflict/congruent views are not published since they reveal
the conflict status) and writes the labels to a local gold CSV for ``casebench evaluate --gold`` and the
leaderboard. The folder is built next to ``out_dir`` and renamed into place at the end, so a failed or
killed publish leaves no half-written dataset.

With ``repo_id``, the folder is then uploaded with ``huggingface_hub`` (``create_repo`` + ``upload_folder``;
the token from ``token=``, ``HF_TOKEN`` or ``huggingface-cli login``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem, path_error

#: The published folder's record of the workspace tables it was built from (local only: not uploaded).
LINEAGE_FILE = ".casebench-lineage.json"
#: Config name -> folder in the published layout.
CONFIG_DIRS = {"default": "data", "distributions": "distributions", "annotations": "annotations"}
CONFIGS = tuple(CONFIG_DIRS)
#: Default largest shard (bytes of Parquet written), as push_to_hub's max_shard_size.
DEFAULT_SHARD_BYTES = 500 * 1000 ** 2
#: A row group holds at most this many rows ...
ROW_GROUP_ROWS = 100
#: ... or this many bytes of audio (the most publish holds in memory at once, twice: Python and Arrow).
ROW_GROUP_BYTES = 32 * 1024 ** 2
#: Content-defined chunking options (those of ``datasets``' Parquet writer), for deduplicated uploads.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
#: Columns of the default config that are labels (null in a split whose labels are hidden).
LABEL_COLUMNS = ("acoustic_label", "semantic_label", "is_conflict", "conflict_type", "valence", "arousal",
                 "dominance", "n_raters", "agreement", "passes_thresholds", "intended_acoustic",
                 "intended_semantic")

_DESCRIPTIONS = {
    "clip_id": "unique clip id (joins the configs)",
    "audio": "the clip: bytes of the original audio file and its file name",
    "duration_s": "duration in seconds",
    "text": "automatic transcript",
    "text_prompt": "the text that was meant to be spoken (synthesis prompt or script line), when known",
    "language": "language code of the clip",
    "speaker_id": "speaker (or synthetic voice) id",
    "gender": "speaker gender as recorded in the source",
    "source": "where the clip comes from (synth:<backend> or a corpus name)",
    "session": "recording session, when known",
    "acoustic_label": "emotion of the voice (aggregated rating of listeners who did not see the words)",
    "semantic_label": "emotion of the words (aggregated rating of readers who did not hear the audio)",
    "is_conflict": "acoustic and semantic labels differ, both confident by the aggregation thresholds (null "
                   "where undefined: no words label, as in a voice-only corpus)",
    "conflict_type": "'<acoustic>-voice/<semantic>-words' for conflict clips",
    "valence": "mean valence rating", "arousal": "mean arousal rating", "dominance": "mean dominance rating",
    "n_raters": "raters behind the acoustic label", "agreement": "share of raters agreeing with the acoustic label",
    "passes_thresholds": "both labels are confident enough by the aggregation thresholds",
    "intended_acoustic": "emotion the voice was designed to carry (synthetic clips)",
    "intended_semantic": "emotion the words were designed to carry (synthetic clips)",
    "acoustic_dist": "distribution of the acoustic ratings over the taxonomy (taxonomy order)",
    "semantic_dist": "distribution of the semantic ratings over the taxonomy (taxonomy order)",
    "annotation_id": "Label Studio annotation id", "rater_id": "pseudonymous rater id",
    "dimension": "what was rated (acoustic_emotion, semantic_emotion, valence, ...)",
    "value": "the rating as given", "value_num": "numeric reading of the rating",
    "lead_time_s": "seconds the rater spent", "created_at": "when the rating was made (UTC)",
    "cancelled": "the rater skipped the task (not a rating)", "ground_truth": "a ground-truth (gold) annotation",
    "annotation_source": "where the rating was imported from",
    "weights": "a rating holding several emotions: each one's normalised weight as JSON ({label: share}, "
               "summing to 1; `value` is the strongest); null for a one-label rating",
}


# --------------------------------------------------------------------------------------------------
# Features


def _require_datasets():
    try:
        import datasets  # noqa: F401
    except ImportError:  # pragma: no cover - the publish extra is installed with casebench[all]
        raise MissingDependencyError("publishing needs the 'datasets' package: pip install 'casebench[publish]'") \
            from None
    return datasets


def config_features(config: str, labels: Sequence[str], sample_rate: int | None = None):
    """The ``datasets.Features`` of a published config (``default``, ``distributions``, ``annotations``)."""
    datasets = _require_datasets()
    from datasets import Audio, ClassLabel, Features, List, Value

    if config == "default":
        return Features({
            "clip_id": Value("string"), "audio": Audio(sampling_rate=sample_rate), "duration_s": Value("float64"),
            "text": Value("string"), "text_prompt": Value("string"), "language": Value("string"),
            "speaker_id": Value("string"), "gender": Value("string"), "source": Value("string"),
            "session": Value("string"),
            "acoustic_label": ClassLabel(names=list(labels)), "semantic_label": ClassLabel(names=list(labels)),
            "is_conflict": Value("bool"), "conflict_type": Value("string"), "valence": Value("float64"),
            "arousal": Value("float64"), "dominance": Value("float64"), "n_raters": Value("int32"),
            "agreement": Value("float64"), "passes_thresholds": Value("bool"),
            "intended_acoustic": Value("string"), "intended_semantic": Value("string"),
        })
    if config == "distributions":
        return Features({
            "clip_id": Value("string"), "speaker_id": Value("string"),
            "acoustic_label": ClassLabel(names=list(labels)), "semantic_label": ClassLabel(names=list(labels)),
            "acoustic_dist": List(Value("float64")), "semantic_dist": List(Value("float64")),
            "n_raters": Value("int32"), "agreement": Value("float64"),
        })
    if config == "annotations":
        return Features({
            "annotation_id": Value("string"), "clip_id": Value("string"), "rater_id": Value("string"),
            "dimension": Value("string"), "value": Value("string"), "value_num": Value("float64"),
            "lead_time_s": Value("float64"), "annotation_source": Value("string"),
            "created_at": Value("timestamp[us, tz=UTC]"), "cancelled": Value("bool"),
            "ground_truth": Value("bool"), "weights": Value("string"),
        })
    del datasets
    raise ConfigError(f"unknown config {config!r}; expected one of {list(CONFIGS)}")


def _type_name(feature: Any) -> str:
    kind = type(feature).__name__
    if kind == "Value":
        return feature.dtype
    if kind == "ClassLabel":
        return "class label"
    if kind == "List":
        return f"list of {_type_name(feature.feature)}"
    return kind.lower()


def _parquet_options(schema, audio_columns: Sequence[str]) -> dict:
    """Per-leaf compression / dictionary / encoding, as ``datasets``' writer sets them."""
    compression, dictionary, encoding = {}, [], {}

    def leaves(path: str, typ) -> list[str]:
        import pyarrow as pa

        if pa.types.is_struct(typ):
            return [leaf for f in typ for leaf in leaves(f"{path}.{f.name}", f.type)]
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            return leaves(f"{path}.list.element", typ.value_type)
        return [path]

    for field in schema:
        embed = field.name in audio_columns
        for leaf in leaves(field.name, field.type):
            compression[leaf] = "none" if embed else "snappy"
            if embed:
                encoding[leaf] = "PLAIN"
            else:
                dictionary.append(leaf)
    return {"compression": compression, "use_dictionary": dictionary, "column_encoding": encoding}


# --------------------------------------------------------------------------------------------------
# Streaming shard writer


class ShardWriter:
    """Writes one config × split as size-bounded Parquet shards, one row group per :meth:`write`.

    Shards are ``<dir>/<split>-<i>.parquet.part`` while open and renamed to
    ``<split>-<iiiii>-of-<nnnnn>.parquet`` by :meth:`close`. A new shard starts when the next row group
    would take the current one past ``shard_bytes``, so a shard stays under ``shard_bytes`` plus its footer,
    unless a single row group is larger; callers cut row groups at :attr:`group_bytes` (a quarter of a shard
    at most; one larger clip is a row group of its own).
    """

    def __init__(self, root: Path, folder: str, split: str, features: Any, shard_bytes: int,
                 audio_columns: Sequence[str] = ()):
        self.dir = root / folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.folder, self.split, self.features = folder, split, features
        self.schema = features.arrow_schema
        self.shard_bytes = shard_bytes
        # a shard can overshoot by one row group: keep row groups to a quarter of a shard at most
        self.group_bytes = min(ROW_GROUP_BYTES, max(shard_bytes // 4, 1))
        self.options = _parquet_options(self.schema, audio_columns)
        self.parts: list[Path] = []
        self.rows = 0
        self.arrow_bytes = 0
        self._writer = None
        self._file = None

    def _open(self) -> None:
        import pyarrow.parquet as pq

        path = self.dir / f"{self.split}-{len(self.parts):05d}.parquet.part"
        self._file = open(path, "wb")  # noqa: SIM115 (closed in _close_current)
        kwargs = dict(self.options, write_page_index=True)
        try:
            self._writer = pq.ParquetWriter(self._file, self.schema, use_content_defined_chunking=CDC_OPTIONS,
                                            **kwargs)
        except TypeError:  # pragma: no cover - pyarrow without content-defined chunking
            self._writer = pq.ParquetWriter(self._file, self.schema, **kwargs)
        self.parts.append(path)

    def _close_current(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
            self._writer.close()
            self._file.close()
            self._writer = self._file = None

    def write(self, rows: list[dict]) -> None:
        """Write ``rows`` (dicts of the config's columns) as one row group."""
        import pyarrow as pa

        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self.schema)
        if self._writer is not None and self._file.tell() + table.nbytes > self.shard_bytes:
            self._close_current()
        if self._writer is None:
            self._open()
        self._writer.write_table(table, row_group_size=len(rows))
        self.rows += table.num_rows
        self.arrow_bytes += table.nbytes

    def close(self) -> list[Path]:
        """Finish the last shard (an empty split gets one empty shard) and name them ``-of-``; returns the
        final paths."""
        if not self.parts:
            self._open()
        self._close_current()
        n = len(self.parts)
        final = []
        for i, part in enumerate(self.parts):
            target = self.dir / f"{self.split}-{i:05d}-of-{n:05d}.parquet"
            os.replace(part, target)
            final.append(target)
        self.parts = final
        return final

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close_current()


# --------------------------------------------------------------------------------------------------
# Assembling the published rows


def _py(v: Any) -> Any:
    """A pandas/numpy cell as a plain Python value (NaN/NA -> None)."""
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


def published_table(ws: Any) -> tuple[pd.DataFrame, dict]:
    """One row per clip that has a split: clips ⋈ splits ⋈ labels ⋈ transcripts, in split order, then
    clips order; plus counts of what is left out (clips without a split, split rows without labels).

    Raises:
        InputError: no splits table, no labels table, or split rows naming unknown clips.
    """
    from casebench.splits import split_order

    clips = ws.read_df("clips")
    if not ws.has_table("splits"):
        raise InputError(Problem("table not found", file=str(ws.table_path("splits")),
                                 expected="a splits table: run `casebench split` first"))
    if not ws.has_table("labels"):
        raise InputError(Problem("table not found", file=str(ws.table_path("labels")),
                                 expected="a labels table: publish needs labels (`casebench aggregate`)"))
    splits = ws.read_df("splits")
    labels = ws.read_df("labels")
    known = set(clips["clip_id"])
    unknown = [c for c in splits["clip_id"] if c not in known]
    if unknown:
        raise InputError([Problem("split row names no clip", id=c, field="clip_id",
                                  file=str(ws.table_path("splits")), expected="a clip of the clips table")
                          for c in unknown], summary=f"{len(unknown)} split row(s) name unknown clips")
    order = {c: i for i, c in enumerate(clips["clip_id"])}
    meta = splits.merge(clips.drop(columns=[c for c in clips.columns if c.startswith(("qc_", "meta_"))]),
                        on="clip_id", how="inner")
    lab = labels.drop(columns=[c for c in labels.columns if c.startswith(("qc_", "meta_"))])
    meta = meta.merge(lab, on="clip_id", how="left")
    if ws.has_table("transcripts"):
        tx = ws.read_df("transcripts")[["clip_id", "text"]]
        meta = meta.merge(tx, on="clip_id", how="left")
    else:
        meta["text"] = None
    rank = {s: i for i, s in enumerate(split_order(meta["split"].unique().tolist()))}
    meta["_split_rank"] = meta["split"].map(rank)
    meta["_clip_rank"] = meta["clip_id"].map(order)
    meta = meta.sort_values(["_split_rank", "_clip_rank"]).drop(columns=["_split_rank", "_clip_rank"])
    meta = meta.reset_index(drop=True)
    left_out = {"clips_without_split": sorted(known - set(splits["clip_id"])),
                "clips_without_labels": sorted(set(meta["clip_id"]) - set(labels["clip_id"]))}
    return meta, left_out


def _default_row(r: Mapping[str, Any], tax_index: Mapping[str, int], hidden: bool) -> dict:
    row = {k: _py(r.get(k)) for k in ("clip_id", "duration_s", "text", "text_prompt", "language", "speaker_id",
                                      "gender", "source", "session", "is_conflict", "conflict_type", "valence",
                                      "arousal", "dominance", "n_raters", "agreement", "passes_thresholds",
                                      "intended_acoustic", "intended_semantic")}
    row["acoustic_label"] = tax_index.get(_py(r.get("acoustic_label")))
    row["semantic_label"] = tax_index.get(_py(r.get("semantic_label")))
    if hidden:
        for k in LABEL_COLUMNS:
            row[k] = None
    return row


def _audio_name(path: str) -> str:
    return Path(str(path)).name


# --------------------------------------------------------------------------------------------------
# Croissant


_CROISSANT_TYPES = {"string": "TEXT", "float64": "FLOAT", "float32": "FLOAT", "int32": "INTEGER",
                    "int64": "INTEGER", "bool": "BOOL", "timestamp[us, tz=UTC]": "DATETIME"}


def build_croissant(*, name: str, description: str, version: str, licence_url: str, url: str, cite_as: str,
                    authors: Sequence[str], languages: Sequence[str], configs: Mapping[str, Mapping[str, Any]],
                    rai: Mapping[str, str] | None = None, date_published: _dt.datetime | None = None,
                    keywords: Sequence[str] = ("speech emotion recognition", "acoustic-semantic conflict")) -> dict:
    """Croissant 1.0 JSON-LD for the published folder: one FileSet and one RecordSet per config.

    ``configs[name]`` holds ``folder``, ``features`` (datasets.Features) and ``description``. Each record set
    has one field per column (ClassLabel as integers with the names in the description, lists as arrays,
    Audio as ``sc:AudioObject`` taken from the struct's ``bytes``) plus a ``split`` field read from the
    file name.
    """
    import mlcroissant as mlc

    distribution, record_sets = [], []
    for cfg, info in configs.items():
        fs_id = f"parquet-{cfg}"
        folder = info["folder"]
        distribution.append(mlc.FileSet(id=fs_id, name=fs_id, description=f"Parquet shards of config {cfg}",
                                        encoding_formats=["application/x-parquet"],
                                        includes=[f"{folder}/*.parquet"]))
        fields = []
        for col, feat in info["features"].items():
            kind = type(feat).__name__
            extract = mlc.Extract(column=col)
            transforms, is_array, desc = [], False, info.get("descriptions", {}).get(col, col)
            if kind == "Audio":
                dtype = mlc.DataType.AUDIO_OBJECT
                transforms = [mlc.Transform(json_path="bytes")]
            elif kind == "ClassLabel":
                dtype = mlc.DataType.INTEGER
                desc = f"{desc}; class index into {list(feat.names)}"
            elif kind == "List":
                dtype = getattr(mlc.DataType, _CROISSANT_TYPES.get(feat.feature.dtype, "TEXT"))
                is_array = True
            else:
                dtype = getattr(mlc.DataType, _CROISSANT_TYPES.get(feat.dtype, "TEXT"))
            source = mlc.Source(file_set=fs_id, extract=extract, transforms=transforms)
            kwargs = {"is_array": True, "array_shape": "-1"} if is_array else {}
            fields.append(mlc.Field(id=f"{cfg}/{col}", name=col, description=desc, data_types=[dtype],
                                    source=source, **kwargs))
        split_source = mlc.Source(file_set=fs_id, extract=mlc.Extract(file_property=mlc.FileProperty.fullpath),
                                  transforms=[mlc.Transform(regex=rf"^(?:.*/)?{folder}/(\w+(?:\.\w+)*)-\d{{5}}-of-"
                                                                  r"\d{5}\.parquet$")])
        fields.append(mlc.Field(id=f"{cfg}/split", name="split", description="split, from the shard's file name",
                                data_types=[mlc.DataType.TEXT], source=split_source))
        record_sets.append(mlc.RecordSet(id=cfg, name=cfg, description=info.get("description", ""), fields=fields))
    rai = dict(rai or {})
    metadata = mlc.Metadata(
        name=name, description=description, version=version, license=[licence_url], url=url, cite_as=cite_as,
        creators=[mlc.Person(name=a) for a in authors], in_language=list(languages),
        date_published=date_published or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0),
        keywords=[*keywords, "audio", "casebench"],
        distribution=distribution, record_sets=record_sets, **rai)
    return metadata.to_json()


def validate_croissant(path: str | os.PathLike, *, read_records: str | None = None,
                       max_records: int = 2) -> dict:
    """Validate a croissant.json with mlcroissant (``mlcroissant.Dataset(jsonld=path)``); optionally read a
    few records of a record set. Returns ``{"valid": True, "warnings": [...], "records": n}``.

    Raises:
        InputError: the file does not validate (mlcroissant's errors in the message).
    """
    import mlcroissant as mlc

    try:
        ds = mlc.Dataset(jsonld=str(path))
    except mlc.ValidationError as e:
        raise InputError(Problem(f"Croissant metadata does not validate: {e}", file=str(path),
                                 expected="valid Croissant 1.0")) from None
    out = {"valid": True, "warnings": sorted(ds.metadata.ctx.issues.warnings), "records": 0}
    if read_records:
        for i, _ in enumerate(ds.records(read_records)):
            out["records"] = i + 1
            if i + 1 >= max_records:
                break
    return out


# --------------------------------------------------------------------------------------------------
# Upload


def hf_token(token: str | None = None) -> str:
    """The Hugging Face token: ``token``, else ``HF_TOKEN``, else the one saved by ``huggingface-cli login``.

    Raises:
        ConfigError: none is set.
    """
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise ConfigError("no Hugging Face token: set HF_TOKEN, run `huggingface-cli login`, or pass --token")
    return found


def check_repo_id(repo_id: str) -> None:
    """ConfigError unless ``repo_id`` is ORG/NAME in the Hub's characters (letters, digits, '-', '_', '.')."""
    if not isinstance(repo_id, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id):
        raise ConfigError(f"--repo-id {repo_id!r}; expected ORG/NAME (letters, digits, '-', '_', '.'), e.g. "
                          "my-lab/my-corpus")


def upload(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
           commit_message: str | None = None) -> dict:
    """Create the dataset repo ``repo_id`` (if missing) and upload ``folder`` to it in one commit.

    Returns ``{"repo_id", "repo_url", "commit_url", "commit_oid", "private"}``.
    """
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    api = HfApi(token=hf_token(token))
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                             commit_message=commit_message or f"casebench publish {Path(folder).name}",
                             ignore_patterns=[LINEAGE_FILE])  # local paths: not for the Hub
    return {"repo_id": repo_id, "repo_url": str(repo_url), "commit_url": getattr(info, "commit_url", None),
            "commit_oid": getattr(info, "oid", None), "private": private}


# --------------------------------------------------------------------------------------------------
# Gold labels kept local


def gold_table(meta: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The gold CSV rows for ``meta``'s clips, in the shape ``casebench evaluate --gold`` reads: id,
    speaker_id, gender, split, acoustic_label, semantic_label, one column per taxonomy label (the acoustic
    distribution), valence, arousal, dominance, is_conflict."""
    out = pd.DataFrame({"id": meta["clip_id"].to_numpy()})
    for col in ("speaker_id", "gender", "split", "acoustic_label", "semantic_label"):
        out[col] = meta[col].to_numpy() if col in meta else None
    dists = meta["acoustic_dist"] if "acoustic_dist" in meta else pd.Series([None] * len(meta))
    for k, label in enumerate(labels):
        out[label] = [None if d is None or (isinstance(d, float) and np.isnan(d)) else float(d[k])
                      for d in dists]
    for col in ("valence", "arousal", "dominance", "is_conflict"):
        out[col] = meta[col].to_numpy() if col in meta else None
    return out


def parse_size(text: str | int) -> int:
    """Bytes from ``"500MB"``, ``"1.5GB"``, ``"64MiB"`` or a number of bytes.

    >>> parse_size("500MB"), parse_size("64MiB"), parse_size(1000)
    (500000000, 67108864, 1000)
    """
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?)B?\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ConfigError(f"size {text!r}; expected e.g. 500MB, 1GB, 64MiB or a number of bytes")
    base = 1024 if m.group(3) else 1000
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * base ** power)


# --------------------------------------------------------------------------------------------------
# The step


def _prepare_out(out_dir: Path, overwrite: bool) -> Path:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if not overwrite:
            raise ConfigError(f"{out_dir} exists and is not empty; choose another folder or pass --overwrite "
                              "to replace it")
        if out_dir.is_dir() and not (out_dir / "README.md").is_file():
            raise ConfigError(f"{out_dir} is not a published dataset folder (no README.md); refusing to replace it")
    try:  # the dataset is written beside out_dir, then renamed: a failure here names out_dir, not the temp folder
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    except OSError as e:
        raise path_error(e, out_dir, action="write") from None


def publish(workspace: Any, out_dir: str | os.PathLike, *, repo_id: str | None = None, private: bool = False,
            token: str | None = None, hide_test_labels: bool = False, allow_leakage: str | None = None,
            card: Mapping[str, Any] | None = None, prompt: Callable[[str, str], str | None] | None = None,
            shard_bytes: int = DEFAULT_SHARD_BYTES, audit_audio: bool = True, n_boot: int = 1000,
            views: bool = True, pseudonymize_raters: bool = True, gold_path: str | os.PathLike | None = None,
            overwrite: bool = False, progress: bool = False, audit_report: Mapping[str, Any] | None = None,
            validate: bool = True, allow_stale: bool = False) -> dict:
    """Publish a workspace to ``out_dir`` in the Hugging Face layout (see the module docstring).

    Args:
        workspace: a Workspace or its path; needs clips, splits and labels (transcripts and annotations used
            when present).
        out_dir: the folder to write (must be new or empty, unless ``overwrite`` and it is a published folder).
        repo_id: also upload to this Hub dataset repo (``ORG/NAME``); ``private`` makes a new repo private;
            ``token`` as :func:`hf_token`.
        hide_test_labels: publish the test split without labels; the labels go to ``gold_path`` (default
            ``<workspace>/gold/<name>-test-gold.csv``), never into ``out_dir``.
        allow_leakage: publish even though the audit fails; the reason is printed in the card.
        card: the curator's fields (:mod:`casebench.datacard`); ``prompt`` asks for missing ones.
        shard_bytes: largest Parquet shard.
        audit_audio: fingerprint the audio in the audit (near-identical audio check).
        n_boot: bootstrap resamples for the agreement CIs in the card.
        views: publish ``conflict_test`` / ``congruent_test`` (unless the test labels are hidden).
        pseudonymize_raters: replace rater ids by ``rater-001``... in the annotations config (the mapping
            is written to ``<workspace>/reports/publish-raters.json``, not published).
        audit_report: an audit report of the current splits to use instead of running the audit again.
        validate: validate croissant.json with mlcroissant.
        allow_stale: publish even though the labels changed after the split (or the annotations after
            aggregate); the problems go into the summary (``stale``). Without it that is a StaleError.

    Returns:
        Summary: ``out_dir``, per config and split the rows and shards, bytes written, MB/s, the audit
        verdict, the leakage reason, the gold path, the README and Croissant paths, the upload result,
        what was left out, and timings.

    Raises:
        ConfigError: missing curator fields, unknown licence without URL, no token for ``repo_id``, an
            occupied ``out_dir``.
        StaleError: the splits were made from other labels or clips, or the labels from other annotations,
            than the workspace has now (the message names the step to re-run), and no ``allow_stale``.
        InputError: the audit fails (listing the leaks) and no ``allow_leakage`` reason; missing tables;
            audio files missing or not matching ``clips.sha256``.
    """
    from casebench import datacard
    from casebench.audit import audit as run_audit
    from casebench.errors import StaleError
    from casebench.splits import conflict_status, named_views, split_order
    from casebench.workspace import Workspace, atomic_write_text, lineage, lineage_path, record_artefact, stale_problems

    t0 = time.perf_counter()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    stale = stale_problems(ws, {t: None for t in ("labels", "splits")})
    if stale and not allow_stale:
        raise StaleError("the workspace's tables are stale, so publish refuses them:\n"
                         + "\n".join(f"  {p}" for p in stale)
                         + "\n(--allow-stale publishes anyway and says so in the summary)")
    out_dir = Path(out_dir).expanduser().resolve()
    if ws.root == out_dir or ws.root in out_dir.parents:
        raise ConfigError(f"publish folder {out_dir} is inside the workspace {ws.root}; choose a folder outside it")
    if allow_leakage is not None and not str(allow_leakage).strip():
        raise ConfigError("allow_leakage needs a reason (it is printed in the data card)")
    if shard_bytes < 64 * 1024:
        raise ConfigError(f"shard size {shard_bytes} bytes; expected at least 64 KiB")
    with_annotations = ws.has_table("annotations")
    fields = datacard.card_fields(ws, card, prompt=prompt, with_annotations=with_annotations)
    licence = datacard.hub_licence(fields["licence"], fields.get("licence_url"))
    if repo_id:
        check_repo_id(repo_id)  # fail before the long part
        token = hf_token(token)
    _require_datasets()
    meta, left_out = published_table(ws)
    tax = ws.taxonomy
    labels_df = ws.read_df("labels")
    clips_df = ws.read_df("clips")
    split_names = split_order(meta["split"].unique().tolist())
    # degraded copies of test (casebench.degrade: test.<condition>) carry the test labels: hidden with it
    hidden = [s for s in split_names if s == "test" or s.startswith("test.")] if hide_test_labels else []
    if hide_test_labels and "test" not in split_names:
        raise ConfigError(f"--hide-test-labels needs a split named 'test'; the splits are {split_names}")
    gold = None
    if hide_test_labels:
        gold = Path(gold_path).expanduser().resolve() if gold_path else ws.root / "gold" / f"{ws.name}-test-gold.csv"
        if out_dir == gold.parent or out_dir in gold.parents:
            raise ConfigError(f"the gold file {gold} would be inside the published folder {out_dir}; the hidden "
                              "labels must stay local")

    # the audit
    t_audit = time.perf_counter()
    if audit_report is None:
        audit_report = run_audit(ws, audio=audit_audio, progress=progress)
    audit_s = time.perf_counter() - t_audit
    if not audit_report["passed"] and allow_leakage is None:
        problems = [Problem(line) for line in audit_report["leaks"]]
        raise InputError(problems, summary="the splits fail the leakage audit, so publish refuses the corpus (fix "
                                           "the splits, or pass allow_leakage / --allow-leakage \"reason\" to publish "
                                           "anyway with the reason in the data card); leaks")

    # what goes where
    status = conflict_status(clips_df, labels_df)
    view_ids = named_views(meta[["clip_id", "split"]], status) if views and not hide_test_labels else {}
    view_ids = {k: v for k, v in view_ids.items() if v}
    published_splits = split_names + list(view_ids)
    rates = sorted({int(x) for x in meta["sample_rate"].dropna()}) if "sample_rate" in meta else []
    features = {"default": config_features("default", tax.labels, rates[0] if len(rates) == 1 else None),
                "distributions": config_features("distributions", tax.labels),
                "annotations": config_features("annotations", tax.labels)}
    tmp = _prepare_out(out_dir, overwrite)
    writers: list[ShardWriter] = []
    counts: dict[str, dict[str, int]] = {c: {} for c in CONFIGS}
    shards: dict[str, dict[str, list[str]]] = {c: {} for c in CONFIGS}
    audio_bytes = 0
    try:
        t_write = time.perf_counter()
        tax_index = tax.index
        by_split = {s: meta[meta["split"] == s] for s in split_names}
        index_of = {cid: i for i, cid in enumerate(meta["clip_id"])}
        for view, ids in view_ids.items():
            by_split[view] = meta.iloc[[index_of[c] for c in ids]]
        problems: list[Problem] = []
        from casebench.progress import progress_bar

        total_rows = sum(len(by_split[s]) for s in published_splits)
        with progress_bar(total_rows, "writing audio shards", enabled=progress) as advance:
            for split in published_splits:
                part = by_split[split]
                w = ShardWriter(tmp, CONFIG_DIRS["default"], split, features["default"], shard_bytes, ("audio",))
                writers.append(w)
                rows, pending = [], 0
                for r in part.to_dict("records"):
                    path = ws.resolve(r["path"])
                    try:
                        data = path.read_bytes()
                    except OSError as e:
                        problems.append(Problem(f"audio file unreadable ({e.strerror or e})", file=str(path),
                                                id=r["clip_id"], field="path", expected="the clip's audio file"))
                        advance()
                        continue
                    sha = _py(r.get("sha256"))
                    if sha and hashlib.sha256(data).hexdigest() != sha:
                        problems.append(Problem("audio file does not match clips.sha256 (changed since it was "
                                                "recorded)", file=str(path), id=r["clip_id"], field="sha256",
                                                expected=sha[:16] + "..."))
                    if rows and (len(rows) >= ROW_GROUP_ROWS or pending + len(data) > w.group_bytes):
                        if not problems:
                            w.write(rows)
                        rows, pending = [], 0
                    row = _default_row(r, tax_index, split in hidden)
                    row["audio"] = {"bytes": data, "path": _audio_name(r["path"])}
                    rows.append(row)
                    pending += len(data)
                    audio_bytes += len(data)
                    advance()
                if rows and not problems:
                    w.write(rows)
                if len(problems) > 50:
                    break
        if problems:
            raise InputError(problems, summary=f"{len(problems)} problem(s) with the audio files; nothing was "
                                               "published")
        for w in writers:
            shards["default"][w.split] = [p.name for p in w.close()]
            counts["default"][w.split] = w.rows

        # distributions: no audio, no views, no hidden split
        for split in split_names:
            if split in hidden:
                continue
            part = by_split[split]
            w = ShardWriter(tmp, CONFIG_DIRS["distributions"], split, features["distributions"], shard_bytes)
            rows = [{"clip_id": r["clip_id"], "speaker_id": _py(r.get("speaker_id")),
                     "acoustic_label": tax_index.get(_py(r.get("acoustic_label"))),
                     "semantic_label": tax_index.get(_py(r.get("semantic_label"))),
                     "acoustic_dist": _py(r.get("acoustic_dist")), "semantic_dist": _py(r.get("semantic_dist")),
                     "n_raters": _py(r.get("n_raters")), "agreement": _py(r.get("agreement"))}
                    for r in part.to_dict("records")]
            for i in range(0, len(rows), 10_000):
                w.write(rows[i:i + 10_000])
            shards["distributions"][split] = [p.name for p in w.close()]
            counts["distributions"][split] = w.rows

        annotations = ws.read_df("annotations") if with_annotations else None
        rater_map: dict[str, str] = {}
        if annotations is not None:
            raters = sorted(annotations["rater_id"].dropna().astype(str).unique())
            rater_map = {r: f"rater-{i + 1:03d}" for i, r in enumerate(raters)} if pseudonymize_raters else {}
            split_of = dict(zip(meta["clip_id"], meta["split"], strict=True))
            ann = annotations.assign(split=annotations["clip_id"].map(split_of))
            left_out["annotations_without_published_clip"] = int(ann["split"].isna().sum())
            for split in split_names:
                if split in hidden:
                    continue
                part = ann[ann["split"] == split]
                w = ShardWriter(tmp, CONFIG_DIRS["annotations"], split, features["annotations"], shard_bytes)
                recs = part.to_dict("records")
                for i in range(0, len(recs), 10_000):
                    w.write([{"annotation_id": _py(r.get("annotation_id")), "clip_id": r["clip_id"],
                              "rater_id": rater_map.get(str(r["rater_id"]), str(r["rater_id"])),
                              "dimension": _py(r.get("dimension")), "value": _py(r.get("value")),
                              "value_num": _py(r.get("value_num")), "lead_time_s": _py(r.get("lead_time_s")),
                              "annotation_source": _py(r.get("source")), "created_at": _py(r.get("created_at")),
                              "cancelled": _py(r.get("cancelled")), "ground_truth": _py(r.get("ground_truth")),
                              "weights": _py(r.get("meta_weights"))}
                             for r in recs[i:i + 10_000]])
                shards["annotations"][split] = [p.name for p in w.close()]
                counts["annotations"][split] = w.rows
        write_s = time.perf_counter() - t_write
        configs_written = [c for c in CONFIGS if counts[c]]

        # the card, README header, Croissant
        config_info = {}
        for cfg in configs_written:
            desc = {"default": "audio, transcript, metadata and hard labels (acoustic = voice, semantic = words)",
                    "distributions": "soft labels: the distribution of the ratings over the taxonomy, per clip "
                                     f"({', '.join(tax.labels)})",
                    "annotations": "the raw ratings, one row per rater × clip × dimension"}[cfg]
            config_info[cfg] = {"description": desc, "folder": CONFIG_DIRS[cfg], "features": features[cfg],
                                "descriptions": _DESCRIPTIONS,
                                "fields": [{"name": k, "type": _type_name(v), "description": _DESCRIPTIONS.get(k, k)}
                                           for k, v in features[cfg].items()]}
        split_rows = []
        for s in split_names:
            part = by_split[s]
            st = status.set_index("clip_id").reindex(part["clip_id"])["status"]
            split_rows.append({"split": s, "n_clips": len(part), "n_speakers": int(part["speaker_id"].nunique()),
                               "conflict": "hidden" if s in hidden else int((st == "conflict").sum()),
                               "congruent": "hidden" if s in hidden else int((st == "congruent").sum())})
        test = by_split.get("test")
        in_views = sum(len(v) for v in view_ids.values())
        split_counts = {"order": published_splits, "configs": {c: counts[c] for c in configs_written},
                        "rows": split_rows, "views": list(view_ids),
                        "test_in_no_view": (len(test) - in_views) if test is not None and view_ids else 0}
        transcripts = ws.read_df("transcripts") if ws.has_table("transcripts") else None
        ctx = datacard.card_context(ws, meta, fields=fields, split_counts=split_counts, audit_report=audit_report,
                                    allow_leakage=allow_leakage, hide_test_labels=hide_test_labels,
                                    hidden_splits=hidden, annotations=annotations, transcripts=transcripts,
                                    images_dir=tmp / "images", repo_id=repo_id,
                                    configs={k: {"description": v["description"], "fields": v["fields"]}
                                             for k, v in config_info.items()}, n_boot=n_boot)
        body = datacard.render_card(ctx)
        header = _readme_header(ws, fields, licence, ctx, features, counts, shards, configs_written, tmp)
        atomic_write_text(tmp / "README.md", f"---\n{header}\n---\n\n{body}")

        url = f"https://huggingface.co/datasets/{repo_id}" if repo_id else (fields.get("homepage") or
                                                                            f"file://{out_dir}")
        rai = {"data_collection": _collection_text(ctx), "personal_sensitive_information": fields["consent"]
               + (f" {fields['personal_information']}" if fields.get("personal_information") else ""),
               "data_use_cases": fields.get("intended_uses") or "Speech emotion recognition research" + (
                   " under acoustic-semantic conflict." if ctx["kinds"]["conflict"] else
                   " on mixed emotions (label distributions)." if ctx["kinds"]["mixed"] else "."),
               "data_limitations": fields.get("limitations") or "See the Limitations section of the card."}
        if ctx.get("annotation"):
            a = ctx["annotation"]
            how = ("voice and words rated apart" if ctx["kinds"]["conflict"]
                   else f"{' and '.join(ctx['kinds']['channels']) or 'no'} emotion channel(s) rated")
            if ctx["kinds"]["mixed"]:
                how += "; several weighted emotions per rating (label distributions)"
            rai["data_annotation_protocol"] = (f"{a['n_raters']} raters; {how}. "
                                               f"Guidelines: {fields.get('guidelines', '')}")
            if a.get("raters_per_clip"):
                rai["annotations_per_item"] = f"{a['raters_per_clip']['mean']} raters per clip on average"
        croissant = build_croissant(
            name=fields.get("pretty_name") or ws.name, description=fields["summary"],
            version=str(ws.config["project"].get("version", "0.1.0")), licence_url=licence["url"], url=url,
            cite_as=ctx["citation"], authors=fields["authors"], languages=ctx["language_codes"],
            configs=config_info, rai=rai, keywords=["speech emotion recognition", *_kind_tags(ctx["kinds"], " ")])
        atomic_write_text(tmp / "croissant.json", json.dumps(croissant, indent=2, default=str) + "\n")
        croissant_check = validate_croissant(tmp / "croissant.json") if validate else None

        # what the folder and the gold were built from: kept local (the upload leaves the file out)
        command = f"casebench publish {ws.root} {out_dir}" + (" --hide-test-labels" if hide_test_labels else "")
        built = lineage(ws, [t for t in ("clips", "labels", "splits", "annotations", "transcripts")],
                        step="publish", command=command)
        if stale:
            built["allow_stale"] = stale
        atomic_write_text(tmp / LINEAGE_FILE, json.dumps([built], indent=2) + "\n")
        # gold, rater map: local only
        if gold is not None:
            gold_df = gold_table(pd.concat([by_split[s] for s in hidden]), tax.labels)
            atomic_write_text(gold, gold_df.to_csv(index=False))
            atomic_write_text(lineage_path(gold), json.dumps([built], indent=2) + "\n")
            record_artefact(ws, "gold", gold, built)
            if "train" in by_split:  # the train labels in the gold's shape: `evaluate --train`'s prior (public)
                train_table = gold.with_name(f"{ws.name}-train-labels.csv")
                atomic_write_text(train_table, gold_table(by_split["train"], tax.labels).to_csv(index=False))
        if rater_map:
            atomic_write_text(ws.reports_dir / "publish-raters.json",
                              json.dumps({"note": "local only: published pseudonym -> workspace rater_id",
                                          "raters": {v: k for k, v in rater_map.items()}}, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.replace(tmp, out_dir)
    except BaseException:
        for w in writers:
            w.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record_artefact(ws, "published folder", out_dir, built)
    written = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    summary = {
        "out_dir": str(out_dir), "name": ws.name, "configs": {c: counts[c] for c in configs_written},
        "shards": {c: shards[c] for c in configs_written}, "splits": published_splits, "views": list(view_ids),
        "n_clips": int(len(meta)), "audio_bytes": audio_bytes, "bytes_written": written,
        "audit": {"passed": audit_report["passed"], "leaks": audit_report["leaks"],
                  "warnings": audit_report["warnings"]},
        "allow_leakage": allow_leakage, "hide_test_labels": hide_test_labels,
        "gold": str(gold) if gold else None,
        "train_labels": str(gold.with_name(f"{ws.name}-train-labels.csv")) if gold and "train" in by_split else None,
        "readme": str(out_dir / "README.md"),
        "croissant": str(out_dir / "croissant.json"), "croissant_check": croissant_check,
        "left_out": {k: (len(v) if isinstance(v, list) else v) for k, v in left_out.items()},
        "timings_s": {"audit": round(audit_s, 3), "write": round(write_s, 3),
                      "total": round(time.perf_counter() - t0, 3)},
        "mb_per_s_write": round(audio_bytes / 1e6 / write_s, 2) if write_s > 0 else None,
        "upload": None, "stale": stale,
    }
    if repo_id:
        summary["upload"] = upload(out_dir, repo_id, private=private, token=token,
                                   commit_message=f"casebench publish {ws.name} v{ws.config['project'].get('version')}")
    return summary


def _kind_tags(kinds: Mapping[str, Any], sep: str) -> list[str]:
    """Hub tags (``sep="-"``) or Croissant keywords (``sep=" "``) for what the corpus is (see
    :func:`casebench.datacard.corpus_kinds`).

    >>> _kind_tags({"conflict": False, "mixed": True, "dimensional": False}, "-")
    ['mixed-emotions', 'label-distribution-learning']
    """
    names = {"conflict": "acoustic-semantic conflict", "mixed": "mixed emotions", "dimensional": "dimensional emotion"}
    out = [names[k] for k in names if kinds.get(k)] + (["label distribution learning"] if kinds.get("mixed") else [])
    return [t.replace(" ", sep) for t in out]


def _collection_text(ctx: Mapping[str, Any]) -> str:
    parts = []
    if ctx.get("synth"):
        parts.append("Synthesized with casebench synth: " + ", ".join(f"{k}={v}" for k, v in ctx["synth"].items()))
    if ctx.get("collect"):
        parts.append("Collected with casebench collect: " + ", ".join(f"{k}={v}" for k, v in ctx["collect"].items()))
    if ctx.get("sources"):
        parts.append("Sources: " + ", ".join(f"{s['name']} ({s['n']})" for s in ctx["sources"]))
    return ". ".join(parts) or "See the data card."


def _readme_header(ws: Any, fields: Mapping[str, Any], licence: Mapping[str, str], ctx: Mapping[str, Any],
                   features: Mapping[str, Any], counts: Mapping[str, Mapping[str, int]],
                   shards: Mapping[str, Mapping[str, list[str]]], configs: Sequence[str], root: Path) -> str:
    """The YAML header: the same fields ``push_to_hub`` writes (configs with data_files per split,
    dataset_info with features and split sizes) plus licence, languages, task categories and size."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    n_clips = int(ctx["n_clips"])
    card = DatasetCardData(
        license=licence["license"], language=ctx["language_codes"] or None,
        task_categories=["audio-classification"], task_ids=["audio-emotion-recognition"],
        size_categories=[_size(n_clips)], pretty_name=fields.get("pretty_name") or ws.name,
        tags=["speech-emotion-recognition", "emotion", *_kind_tags(ctx["kinds"], "-"), "casebench"],
        multilinguality="multilingual" if len(ctx["language_codes"]) > 1 else "monolingual",
        **({"license_name": licence["license_name"], "license_link": licence["license_link"]}
           if licence["license"] == "other" else {}),
    )
    infos, meta_configs = {}, {}
    for cfg in configs:
        folder = CONFIG_DIRS[cfg]
        split_infos = {}
        for split, n in counts[cfg].items():
            nbytes = sum((root / folder / s).stat().st_size for s in shards[cfg][split])
            split_infos[split] = SplitInfo(name=split, num_bytes=nbytes, num_examples=n)
        size = sum(i.num_bytes for i in split_infos.values())
        infos[cfg] = DatasetInfo(features=features[cfg], splits=SplitDict(split_infos), download_size=size,
                                 dataset_size=size)
        meta_configs[cfg] = {"data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in counts[cfg]],
                             **({"default": True} if cfg == "default" else {})}
    DatasetInfosDict(infos).to_dataset_card_data(card)
    MetadataConfigs(meta_configs).to_dataset_card_data(card)
    return card.to_yaml()


def _size(n: int) -> str:
    from casebench.datacard import size_category

    return size_category(n)


# --------------------------------------------------------------------------------------------------
# Loading back (the consumer's view) and the demo entry point


def load_published(path: str | os.PathLike, name: str = "default", *, decode_audio: bool | None = None,
                   cache_dir: str | os.PathLike | None = None):
    """``datasets.load_dataset(path, name=name)`` of a published folder (or Hub id).

    ``datasets`` 4+ decodes audio with ``torchcodec``; when it is not installed (``decode_audio=None``
    detects this) the audio column is cast to ``Audio(decode=False)``, so rows give ``{bytes, path}`` that
    :func:`decode_audio_bytes` reads with soundfile.
    """
    datasets = _require_datasets()
    ds = datasets.load_dataset(str(path), name=name, cache_dir=str(cache_dir) if cache_dir else None)
    if decode_audio is None:
        decode_audio = bool(datasets.config.TORCHCODEC_AVAILABLE)
    if not decode_audio:
        for split in ds:
            if "audio" in ds[split].features:
                ds[split] = ds[split].cast_column("audio", datasets.Audio(decode=False))
    return ds


def decode_audio_bytes(value: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """Samples (float64, mono or frames × channels) and sample rate of an undecoded Audio value."""
    import io

    import soundfile as sf

    data, sr = sf.read(io.BytesIO(value["bytes"]), dtype="float64")
    return data, int(sr)


def split_audit_publish(workspace: Any, out_dir: str | os.PathLike, *, resplit: bool = False, seed: int = 0,
                        ratios: Mapping[str, float] | str | None = None, group_by: Sequence[str] = ("speaker_id",),
                        require_all_classes: bool = False, allow_leakage: str | None = None,
                        card: Mapping[str, Any] | None = None, load_back: bool = True, n_boot: int = 200,
                        overwrite: bool = True, **publish_kwargs: Any) -> dict:
    """The whole release in one call (what ``casebench demo`` runs on the embedded corpus): split the
    workspace (unless it has splits and not ``resplit``), audit, publish to ``out_dir``, then load every
    config back with ``datasets`` and check that the audio decodes to the workspace's samples.

    Returns ``{"split": ..., "audit": ..., "publish": ..., "loaded": {config: {split: rows}},
    "audio_roundtrip": {"checked": n, "identical": bool}}``.
    """
    from casebench.audio import decode
    from casebench.audit import audit as run_audit
    from casebench.audit import summary_lines
    from casebench.splits import split as run_split
    from casebench.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    split_summary = None
    if resplit or not ws.has_table("splits"):
        split_summary = run_split(ws, ratios=ratios, seed=seed, group_by=group_by,
                                  require_all_classes=require_all_classes)
    report = run_audit(ws, audio=publish_kwargs.pop("audit_audio", True))
    pub = publish(ws, out_dir, allow_leakage=allow_leakage, card=card, n_boot=n_boot, overwrite=overwrite,
                  audit_report=report, **publish_kwargs)
    result = {"split": split_summary, "audit": {"passed": report["passed"], "lines": summary_lines(report),
                                                "report_html": report.get("report_html")},
              "publish": pub, "loaded": {}, "audio_roundtrip": None}
    if load_back:
        with tempfile.TemporaryDirectory(prefix="casebench-load-") as cache:
            paths = dict(zip(ws.read_df("clips")["clip_id"], ws.read_df("clips")["path"], strict=True))
            checked, identical = 0, True
            for cfg in pub["configs"]:
                ds = load_published(pub["out_dir"], cfg, decode_audio=False, cache_dir=cache)
                result["loaded"][cfg] = {s: ds[s].num_rows for s in ds}
                if cfg == "default":
                    first = next(iter(ds))
                    for row in ds[first].select(range(min(5, ds[first].num_rows))):
                        got, _ = decode_audio_bytes(row["audio"])
                        want, _ = decode(ws.resolve(paths[row["clip_id"]]))
                        want = want[:, 0] if want.ndim == 2 and want.shape[1] == 1 else want
                        identical &= bool(got.shape == want.shape and np.allclose(got, want, atol=1e-6))
                        checked += 1
            result["audio_roundtrip"] = {"checked": checked, "identical": identical}
    return result
