"""The workspace: one directory per corpus being built, its ``casebench.toml`` and its Parquet tables.

::

    my-corpus/
      casebench.toml     # [project] name, version, licence, languages, taxonomy; [annotation]; step configs
      audio/             # one normalised audio file per clip
      tables/            # clips, transcripts, annotations, labels, splits (.parquet), see SCHEMAS
        .parts/<step>/<config_hash>/part-<n>.parquet   # journals of resumable steps (StepJournal)
      reports/           # QC, agreement, audit, evaluation reports

Every table has an explicit schema (:data:`SCHEMAS`); :meth:`Workspace.read_table` and
:meth:`Workspace.write_table` check it and raise one :class:`~casebench.errors.InputError` listing every
problem (missing column, wrong type, null in a required column, duplicate key, label outside the
taxonomy), each naming the table file, the row (0-based, as in ``read_df(name).iloc[row]``), the clip_id
and the column. Besides the schema's columns a table may carry extra columns whose names start with
``qc_`` or ``meta_`` (:data:`EXTRA_PREFIXES`), of any type; any other unknown column is an error, so a
typo never becomes a silent new column. Writes are atomic (temp file in the same directory, fsync,
``os.replace``, fsync of the directory): a reader sees the old table or the new one, never half of one.

Derived tables record the versions (sha256 of the Parquet bytes, :meth:`Workspace.table_version`) of the
tables they were built from, in their Parquet metadata (``labels`` <- annotations by ``aggregate``;
``splits`` <- clips and labels by ``split``; see :data:`DERIVED`); artefacts built outside the workspace
(the gold CSV and published folder of ``publish``, the spec of ``benchmark-from``) record them in a lineage
mapping (:func:`lineage`). :func:`stale_problems` compares them with the tables as they are now and names
the step to re-run, upstream first: "labels.parquet changed after split: re-run `casebench split WS`".

Long steps write through a :class:`StepJournal` (``workspace.resumable(step, config)``) and so survive
``kill -9``: each batch is one atomically written part file keyed by the step's config hash, and a
re-run skips the clip_ids already there.

>>> import tempfile
>>> ws = Workspace.create(tempfile.mkdtemp(), "demo")
>>> ws.config["project"]["taxonomy"], ws.taxonomy.labels[0]
('ekman7', 'angry')
>>> _ = ws.write_table("splits", [{"clip_id": "c1", "split": "train"}, {"clip_id": "c2", "split": "test"}])
>>> ws.read_table("splits").column("fold").null_count   # absent nullable columns are written as nulls
2
>>> ws.write_table("splits", [{"clip_id": "c1", "split": "train"},
...                            {"clip_id": "c1", "split": "test"}])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
casebench.errors.InputError: 1 problem(s) in table splits (.../tables/splits.parquet); nothing was written:
  .../tables/splits.parquet: id 'c1': field 'clip_id': row 1: duplicate clip_id (first at row 0); expected ...
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from casebench.errors import ConfigError, InputError, Problem, did_you_mean, path_error, syntax_problem, unknown_name
from casebench.taxonomy import Taxonomy, get_taxonomy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

CONFIG_FILE = "casebench.toml"
TABLES = ("clips", "transcripts", "annotations", "labels", "splits")
EXTRA_PREFIXES = ("qc_", "meta_")
DEFAULT_DIMENSIONS = ("acoustic_emotion", "semantic_emotion", "valence", "arousal", "dominance",
                      "confidence", "is_ambiguous")
FORMAT_VERSION = 1

#: Type of ``transcripts.words``: one struct per recognised word, times in seconds from the clip start.
WORD = pa.struct([("word", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                  ("probability", pa.float64())])
UTC_TIME = pa.timestamp("us", tz="UTC")

#: Non-nullable columns per table; a null there (or a missing column) is an error.
REQUIRED: dict[str, tuple[str, ...]] = {
    "clips": ("clip_id", "path"),
    "transcripts": ("clip_id",),  # text is null when transcription failed (see failure)
    "annotations": ("clip_id", "rater_id", "dimension", "cancelled", "ground_truth"),
    "labels": ("clip_id",),
    "splits": ("clip_id", "split"),
}

#: Values used for a column absent from the data given to ``write_table`` (not on read).
DEFAULTS: dict[str, dict[str, Any]] = {"annotations": {"cancelled": False, "ground_truth": False}}

#: Derived tables: the step that writes each and the tables it is built from (recorded as their versions).
DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {"labels": ("aggregate", ("annotations",)),
                                                   "splits": ("split", ("clips", "labels"))}
_BUILT_FROM = b"casebench.built_from"

#: Which command writes each table (named in "table not found" messages).
PRODUCERS = {"clips": ("synth", "collect"), "transcripts": ("transcribe",),
             "annotations": ("annotate pull", "annotate import", "annotate import-csv"),
             "labels": ("aggregate",), "splits": ("split",)}

_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "clips": [
        ("clip_id", pa.string()),
        ("path", pa.string()),              # relative to the workspace root, POSIX separators
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("sha256", pa.string()),            # of the audio file's bytes
        ("speaker_id", pa.string()),
        ("gender", pa.string()),
        ("language", pa.string()),          # BCP-47 / ISO 639-1, e.g. "en"
        ("source", pa.string()),            # "synth:<backend>", "<corpus>", ...
        ("session", pa.string()),
        ("text_prompt", pa.string()),       # what was spoken (synth) or the script line (corpora)
        ("intended_acoustic", pa.string()),  # emotion the voice was meant to carry
        ("intended_semantic", pa.string()),  # emotion the words were meant to carry
    ],
    "transcripts": [
        ("clip_id", pa.string()),
        ("text", pa.string()),
        ("language", pa.string()),
        ("language_prob", pa.float64()),
        ("avg_logprob", pa.float64()),
        ("no_speech_prob", pa.float64()),
        ("model", pa.string()),
        ("words", pa.list_(WORD)),
        ("config_hash", pa.string()),       # of the transcribe config that produced the row
        ("wer", pa.float64()),              # against clips.text_prompt, when there is one
        ("language_detected", pa.string()),  # Whisper's most probable language (multilingual model)
        ("code_switching", pa.bool_()),     # several languages declared, or detection split (asr.quality)
        ("failure", pa.string()),           # why text is null (no speech, script mismatch, repetition...)
    ],
    "annotations": [
        ("annotation_id", pa.string()),     # with dimension, the key when set
        ("clip_id", pa.string()),
        ("rater_id", pa.string()),
        ("dimension", pa.string()),         # one of [annotation] dimensions in casebench.toml
        ("value", pa.string()),             # as given: "angry", "3", "true"
        ("value_num", pa.float64()),        # numeric reading of value, when it has one
        ("lead_time_s", pa.float64()),
        ("source", pa.string()),            # "label-studio:<project>/<task>/<annotation>"
        ("created_at", UTC_TIME),
        ("cancelled", pa.bool_()),
        ("ground_truth", pa.bool_()),
    ],
    "labels": [
        ("clip_id", pa.string()),
        ("acoustic_label", pa.string()),
        ("semantic_label", pa.string()),
        ("acoustic_dist", pa.list_(pa.float64())),  # taxonomy order, sums to 1
        ("semantic_dist", pa.list_(pa.float64())),
        ("n_raters", pa.int32()),
        ("agreement", pa.float64()),        # per item
        ("valence", pa.float64()),
        ("arousal", pa.float64()),
        ("dominance", pa.float64()),
        ("is_conflict", pa.bool_()),
        ("conflict_type", pa.string()),     # "happy-voice/sad-words"
        ("method", pa.string()),            # aggregation method
        ("passes_thresholds", pa.bool_()),  # both labels confident enough by the configured thresholds
    ],
    "splits": [
        ("clip_id", pa.string()),
        ("split", pa.string()),             # train / dev / test / conflict_test / ...
        ("fold", pa.int32()),
    ],
}

#: The explicit schema of each table (without ``qc_*``/``meta_*`` extras).
SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema([pa.field(col, typ, nullable=col not in REQUIRED[name]) for col, typ in cols],
                    metadata={"casebench.table": name, "casebench.format": str(FORMAT_VERSION)})
    for name, cols in _COLUMNS.items()
}

_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                   OverflowError)

# mkstemp creates files readable by the owner only; atomic writes give the final file the usual mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------------------------------
# Atomic files


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory entry (after a rename in it) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; the rename itself is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory (EINVAL); nothing more can be done
        pass
    finally:
        os.close(fd)


_STD_STREAMS = {"/dev/stdout": 1, "/dev/stderr": 2, "/dev/fd/1": 1, "/dev/fd/2": 2, "/proc/self/fd/1": 1,
                "/proc/self/fd/2": 2}
# errors of writing the temp file or renaming it, reported against the target path
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.EISDIR, errno.ENOTDIR}


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[Any]:
    """Open ``path`` for binary writing so that it is replaced whole or not at all.

    Writes go to a temp file in the same directory (``.<name>.<random>.tmp``), which is flushed, fsynced
    and renamed over ``path`` when the block ends; the directory is then fsynced. If the block raises, the
    temp file is removed and ``path`` is untouched. A process killed mid-write leaves ``path`` untouched
    and at most a stray temp file. A symbolic link is followed (the link stays); a device, a pipe or a path
    under /dev or /proc (``/dev/stdout``) is written in place. Failures raise a one-line
    :class:`casebench.errors.PathError` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise path_error(IsADirectoryError(errno.EISDIR, "Is a directory", str(path)), action="write")
    if str(path.absolute()).startswith(("/dev/", "/proc/")) or (path.exists() and not path.is_file()):
        # a device, a pipe or /dev/stdout: written where it is (renaming a temp file over it would replace the
        # device node or the link itself); our own stdout/stderr through their file descriptor, so what they
        # printed before stays in order
        std = _STD_STREAMS.get(str(path.absolute()))
        try:
            if std is not None:
                (sys.stdout if std == 1 else sys.stderr).flush()
            with (os.fdopen(os.dup(std), "wb") if std is not None else open(path, "wb")) as f:
                yield f
        except OSError as e:
            raise path_error(e, path, "write") from e
        return
    if path.is_symlink():  # replace the file the link points to, and keep the link
        path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # read-only folder, a file where a folder should be, ...: name the target, not a temp
        raise path_error(e, path, "write") from e
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
            raise path_error(e, path, "write") from e
        raise
    fsync_dir(path.parent)


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Raise a one-line :class:`casebench.errors.PathError` when ``path`` (a file to write, or with ``folder``
    a folder to write into) cannot be written: read-only, protected, a file where a folder should be.
    Steps call it before long or remote work whose result could otherwise not be saved.

    >>> import tempfile, pathlib
    >>> check_writable(pathlib.Path(tempfile.mkdtemp()) / "new" / "out.jsonl")
    """
    path = Path(path)
    where = path if folder else path.parent
    if not folder and path.is_dir():
        raise path_error(IsADirectoryError(errno.EISDIR, "Is a directory", str(path)), action="write")
    base = next(p for p in (where, *where.parents) if p.exists())  # creates nothing: probes the nearest folder
    try:
        if not base.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(where))
        fd, probe = tempfile.mkstemp(dir=base, prefix=".casebench-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise path_error(e, where, "write") from e


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, newlines as given); returns the path.

    >>> import tempfile, pathlib
    >>> p = atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "r.json", "{}")
    >>> p.read_text()
    '{}'
    """
    return atomic_write_bytes(path, text.encode(encoding))


# --------------------------------------------------------------------------------------------------
# Hashes and ids


def _strip_none(value: Any) -> Any:
    """Drop dict entries whose value is None, recursively (TOML has no null: None means "not set")."""
    if isinstance(value, Mapping):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_strip_none(v) for v in value]
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return Path(obj).as_posix()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    raise ConfigError(f"config value {obj!r} of type {type(obj).__name__} cannot be hashed; "
                      "expected str, int, float, bool, list or dict")


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of ``config`` as canonical JSON.

    Canonical: keys sorted, no whitespace, tuples as lists, None values dropped (as they are when the
    config is saved to TOML), paths as POSIX strings. ``1`` and ``1.0`` hash differently.

    >>> config_hash({"b": 1, "a": (1, 2), "c": None}) == config_hash({"a": [1, 2], "b": 1})
    True
    >>> len(config_hash({"model": "tiny"}))
    16
    """
    text = json.dumps(_strip_none(dict(config)), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def clip_id_for(source_key: str, prefix: str = "c-") -> str:
    """A stable short clip id from any string (a source path, a corpus key): prefix + 12 hex of its sha1.

    >>> clip_id_for("crema/1001_DFA_ANG_XX.wav")
    'c-7a96a48ec5d5'
    """
    return prefix + hashlib.sha1(source_key.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# TOML

def dumps_toml(doc: Mapping[str, Any]) -> str:
    """TOML text for ``doc`` (None values dropped); ConfigError naming the key for an unwritable value.

    >>> print(dumps_toml({"project": {"name": "x", "taxonomy": "ekman7", "licence": None}}))
    [project]
    name = "x"
    taxonomy = "ekman7"
    <BLANKLINE>
    """
    import tomli_w  # the standard library reads TOML but cannot write it

    doc = _strip_none(doc)
    try:
        return tomli_w.dumps(doc)
    except TypeError as e:
        raise ConfigError(f"cannot write config as TOML: {e}") from e


# --------------------------------------------------------------------------------------------------
# Converting and checking tables


def _is_dataframe(data: Any) -> bool:
    pd = sys.modules.get("pandas")  # no DataFrame can exist unless pandas was imported
    return pd is not None and isinstance(data, pd.DataFrame)


def _as_list(values: Any) -> list:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


def _parse_time(value: str) -> _dt.datetime:
    """ISO 8601 text -> aware datetime; a naive time is taken as UTC."""
    t = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    for kind, test in (("null", pa.types.is_null), ("bool", pa.types.is_boolean),
                       ("int", pa.types.is_integer), ("float", pa.types.is_floating),
                       ("string", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)
                        or str(x) == "string_view"),
                       ("timestamp", pa.types.is_timestamp), ("struct", pa.types.is_struct),
                       ("list", lambda x: pa.types.is_list(x) or pa.types.is_large_list(x)
                        or pa.types.is_fixed_size_list(x))):
        if test(t):
            return kind
    return str(t)


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether an Arrow column of type ``src`` may be cast to ``dst`` (same kind of value, any width)."""
    ks, kd = _kind(src), _kind(dst)
    if ks == "null" or src == dst:
        return True
    if ks == kd == "list":
        return _castable(src.value_type, dst.value_type)
    if ks == kd == "struct":
        have = {src.field(i).name: src.field(i).type for i in range(src.num_fields)}
        want = {dst.field(i).name: dst.field(i).type for i in range(dst.num_fields)}
        return set(have) == set(want) and all(_castable(have[k], want[k]) for k in want)
    return ks == kd or {ks, kd} == {"int", "float"}


class _WrongType(Exception):
    def __init__(self, src: pa.DataType):
        self.src = src


def _convert(values: Any, target: pa.DataType | None) -> pa.Array | pa.ChunkedArray:
    """One column (Arrow, pandas Series or list) as Arrow of type ``target`` (inferred when None).

    Python values are first read with their own types and then cast *safely*, because Arrow's typed
    conversion truncates silently (``pa.array([1.5], pa.int32())`` is ``[1]``, True becomes 1.0).
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        try:
            inferred = pa.array(values, from_pandas=True)
        except _CONVERT_ERRORS:
            if target is None:
                raise
            # mixed Python types: let the typed conversion accept what it can and name what it cannot
            return pa.array(values, type=target, from_pandas=True)
        if target is not None and not _castable(inferred.type, target) \
                and _kind(inferred.type) == _kind(target) in ("list", "struct"):
            # e.g. word dicts missing a key: the typed conversion fills it with null
            return pa.array(values, type=target, from_pandas=True)
        values = inferred
    if target is None or values.type == target:
        return values
    if _castable(values.type, target):
        return values.cast(target, safe=True)
    if pa.types.is_timestamp(target) and _kind(values.type) == "string":
        parsed = [_parse_time(v) if isinstance(v, str) else v for v in values.to_pylist()]
        return pa.array(parsed, type=target)
    raise _WrongType(values.type)


def _columns(data: Any) -> tuple[dict[str, Any], int, list[Problem]]:
    """Split a table, DataFrame or list of row dicts into named columns."""
    if isinstance(data, pa.Table):
        names = data.column_names
        dupes = sorted({c for c in names if names.count(c) > 1})
        cols = {c: data.column(i) for i, c in enumerate(names)}
        return cols, data.num_rows, [Problem(f"column {c!r} appears more than once") for c in dupes]
    if _is_dataframe(data):
        names = [str(c) for c in data.columns]
        dupes = sorted({c for c in names if names.count(c) > 1})
        cols = {str(c): data.iloc[:, i] for i, c in enumerate(data.columns)}
        return cols, len(data), [Problem(f"column {c!r} appears more than once") for c in dupes]
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, (Sequence, Iterator)):
        raise TypeError(f"expected a pyarrow Table, a pandas DataFrame or a list of dicts, not "
                        f"{type(data).__name__}")
    rows = list(data)
    problems = [Problem(f"row {i}: a {type(r).__name__}", expected="a dict of column -> value")
                for i, r in enumerate(rows) if not isinstance(r, Mapping)]
    rows = [r if isinstance(r, Mapping) else {} for r in rows]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {str(k): [r.get(k) for r in rows] for k in keys}, len(rows), problems


def _ids(values: Any, n: int) -> list[str | None]:
    if values is None:
        return [None] * n
    try:
        return [None if v is None or v != v else str(v) for v in _as_list(values)]
    except (TypeError, ValueError):
        return [None] * n


def _bad_rows(values: Any, target: pa.DataType) -> list[tuple[int, Any, str]]:
    """Rows whose single value cannot be stored as ``target``: (row, value, reason)."""
    bad = []
    for i, v in enumerate(_as_list(values)):
        try:
            _convert([v], target)
        except (*_CONVERT_ERRORS, _WrongType) as e:
            bad.append((i, v, str(e).split("\n")[0]))
    return bad


def _first_value(values: Any) -> tuple[int | None, Any]:
    for i, v in enumerate(_as_list(values)):
        if v is not None:
            return i, v
    return None, None


def _problem(file: str | None, row: int | None, clip_id: str | None, column: str | None, found: str,
             expected: str | None = None, hint: str | None = None) -> Problem:
    if row is not None:
        found = f"row {row}: {found}"
    return Problem(found, expected=expected, file=file, id=clip_id, field=column, hint=hint)


def _conform(name: str, data: Any, *, file: str | None, fill_missing: bool,
             check_keys: bool = True) -> tuple[pa.Table | None, list[Problem]]:
    """Cast ``data`` to ``SCHEMAS[name]`` (+ qc_/meta_ extras) and check it; (table or None, problems)."""
    schema = SCHEMAS[name]
    columns, n, problems = _columns(data)
    if not columns and n == 0:  # an empty list of rows: an empty table
        columns = {f.name: pa.chunked_array([], f.type) for f in schema}
    problems = [Problem(p.found, expected=p.expected, file=file) for p in problems]
    ids = _ids(columns.get("clip_id"), n)
    arrays: list[pa.ChunkedArray] = []
    fields: list[pa.Field] = []

    def add(field: pa.Field, values: Any) -> None:
        try:
            arr = _convert(values, None if field.type == pa.null() else field.type)
        except _WrongType as e:
            row, value = _first_value(values)
            problems.append(_problem(file, row, ids[row] if row is not None else None, field.name,
                                     f"column has type {e.src} (value {value!r})", expected=str(field.type)))
            return
        except _CONVERT_ERRORS as e:
            if field.type == pa.null():  # an extra column whose type could not be inferred
                problems.append(_problem(file, None, None, field.name, f"values of mixed types ({e})",
                                         expected="one type per column"))
                return
            bad = _bad_rows(values, field.type)
            problems.extend(_problem(file, row, ids[row], field.name, f"value {value!r} ({why})",
                                     expected=str(field.type)) for row, value, why in bad)
            if not bad:
                problems.append(_problem(file, None, None, field.name, str(e), expected=str(field.type)))
            return
        arrays.append(arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr], type=arr.type))
        fields.append(pa.field(field.name, arr.type, nullable=field.nullable))

    for field in schema:
        if field.name in columns:
            add(field, columns[field.name])
        elif fill_missing and field.name in DEFAULTS.get(name, {}):
            add(field, [DEFAULTS[name][field.name]] * n)
        elif fill_missing and field.nullable:
            add(field, pa.nulls(n, field.type))
        else:
            problems.append(_problem(file, None, None, field.name, "column missing",
                                     expected=f"a {field.type} column (table {name})"))
    for col, values in columns.items():
        if col in schema.names:
            continue
        if col.startswith(EXTRA_PREFIXES):
            add(pa.field(col, pa.null()), values)
        else:
            problems.append(_problem(file, None, None, col, "unknown column",
                                     expected=f"a column of table {name} {schema.names} or an extra "
                                              f"column named qc_* or meta_*",
                                     hint=did_you_mean(col, schema.names)))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))
    if problems:  # still check nulls and keys in the columns that could be read, to list every problem
        if "clip_id" in table.column_names:
            problems += table_problems(name, table, file=file, check_keys=check_keys)
        return None, problems
    return table, table_problems(name, table, file=file, check_keys=check_keys)


def table_problems(name: str, table: pa.Table, *, file: str | None = None,
                   check_keys: bool = True) -> list[Problem]:
    """Problems with the rows of a table already cast to its schema: nulls in required columns, duplicate
    keys. Keys: ``clip_id`` in every table but annotations, which is keyed by (annotation_id, dimension)
    where annotation_id is set and by (clip_id, rater_id, dimension, source) where it is not."""
    problems: list[Problem] = []
    ids = _ids(table.column("clip_id"), table.num_rows)
    for col in REQUIRED[name]:
        if col in table.column_names and table.column(col).null_count:
            rows = pc.indices_nonzero(pc.is_null(table.column(col))).to_pylist()
            problems.extend(_problem(file, r, ids[r], col, "null in a required column",
                                     expected="a value") for r in rows)
    key_cols = ("annotation_id", "clip_id", "rater_id", "dimension", "source")
    if not check_keys or (name == "annotations" and not set(key_cols) <= set(table.column_names)):
        return problems
    if name == "annotations":
        cols = {c: table.column(c).to_pylist() for c in key_cols}
        keys = [(("annotation_id", a, d) if a is not None else ("clip", c, r, d, s))
                for a, c, r, d, s in zip(*cols.values(), strict=True)]
    else:
        keys = ids
    first: dict[Any, int] = {}
    for row, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            field, expected = "clip_id", "one row per clip_id"
            if name == "annotations":
                field = "annotation_id" if key[0] == "annotation_id" else "clip_id"
                expected = ("one row per (annotation_id, dimension)" if key[0] == "annotation_id" else
                            "one row per (clip_id, rater_id, dimension, source) when annotation_id is null")
            what = "clip_id" if name != "annotations" else f"key {key[1:]}"
            problems.append(_problem(file, row, ids[row], field,
                                     f"duplicate {what} (first at row {first[key]})", expected=expected))
        else:
            first[key] = row
    return problems


def conform(name: str, data: Any, *, fill_missing: bool = True, file: str | None = None) -> pa.Table:
    """``data`` (Arrow table, DataFrame or list of row dicts) cast to the schema of table ``name``.

    Absent nullable columns become nulls when ``fill_missing`` (absent ``annotations.cancelled`` and
    ``ground_truth`` become False); raises InputError listing every problem.

    >>> conform("splits", [{"clip_id": "c1", "split": "dev", "fold": 2.0}]).column("fold").type
    DataType(int32)
    """
    _check_name(name)
    table, problems = _conform(name, data, file=file, fill_missing=fill_missing)
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in table {name}")
    return table


def empty_table(name: str) -> pa.Table:
    """A table with ``name``'s schema and no rows."""
    _check_name(name)
    return SCHEMAS[name].empty_table()


def _check_name(name: str) -> None:
    if name not in SCHEMAS:
        raise unknown_name("table", name, TABLES)


# --------------------------------------------------------------------------------------------------
# The workspace


class Workspace:
    """A corpus being built: a directory with ``casebench.toml``, ``audio/``, ``tables/``, ``reports/``."""

    def __init__(self, root: str | os.PathLike, config: dict):
        self.root = Path(root).expanduser().resolve()
        self.config = config

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, name={self.name!r})"

    # ----- creating and opening

    @classmethod
    def create(cls, root: str | os.PathLike, name: str, *, taxonomy: str = "ekman7", version: str = "0.1.0",
               licence: str | None = None, languages: Sequence[str] = ("en",), exist_ok: bool = False,
               **sections: Mapping[str, Any]) -> Workspace:
        """Make a workspace: write ``casebench.toml`` and the ``audio/ tables/ reports/`` folders.

        ``sections`` become extra config sections (``synth={...}``); ``annotation={...}`` is merged over the
        defaults (the seven DESIGN dimensions, ``scale = [1, 5]``, ``raters_per_clip = 3``). A ``licence``
        of None is left unset (publishing asks for one).

        Raises ConfigError for an unknown taxonomy, or when ``root`` already holds a workspace (unless
        ``exist_ok``, which opens it when its name and taxonomy match) or other files (unless ``exist_ok``).
        """
        root = Path(root).expanduser().resolve()
        get_taxonomy(taxonomy)  # fail early on an unknown name
        for option, value in (("--name", name), ("--version", version)):  # both end up in file names and cards
            if not str(value).strip() or not str(value).isprintable() or any(c in str(value) for c in "/\\"):
                raise ConfigError(f"{option} {value!r}: expected a non-empty {option[2:]} without '/', '\\' or "
                                  "control characters (it names the gold and published files)")
        if isinstance(languages, str):
            languages = [languages]
        config_path = root / CONFIG_FILE
        if config_path.exists():
            if not exist_ok:
                raise ConfigError(f"{config_path} already exists: use that workspace, or pass "
                                  "--exist-ok to open it when the name and taxonomy match")
            ws = cls.open(root)
            project = ws.config["project"]
            if project.get("name") != name or project.get("taxonomy") != taxonomy:
                raise ConfigError(f"{config_path} is a workspace named {project.get('name')!r} with taxonomy "
                                  f"{project.get('taxonomy')!r}, not {name!r} with {taxonomy!r}")
            return ws
        if root.exists() and any(root.iterdir()) and not exist_ok:
            raise ConfigError(f"{root} exists and is not empty; pass --exist-ok to make a workspace there")
        if "project" in sections:
            raise ConfigError("pass the [project] settings as arguments (name, taxonomy, version, licence, "
                              "languages), not as a section")
        annotation = {"dimensions": list(DEFAULT_DIMENSIONS), "scale": [1, 5], "raters_per_clip": 3}
        annotation.update(sections.pop("annotation", None) or {})
        config: dict[str, Any] = {
            "project": {"name": name, "version": version, "licence": licence, "languages": list(languages),
                        "taxonomy": taxonomy},
            "annotation": annotation,
        }
        for key, values in sections.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"section [{key}] must be a dict of settings, not {type(values).__name__}")
            config[key] = dict(values)
        ws = cls(root, _strip_none(config))
        _check_config(ws.config, str(config_path))
        for sub in ("audio", "tables", "reports"):
            (ws.root / sub).mkdir(parents=True, exist_ok=True)
        ws.save_config()
        return ws

    @classmethod
    def open(cls, root: str | os.PathLike) -> Workspace:
        """Open the workspace at ``root`` (or at the folder of a ``casebench.toml`` path).

        Raises ConfigError naming the path when there is no ``casebench.toml``, it is not valid TOML, or
        its ``[project]`` is incomplete or names an unknown taxonomy.
        """
        root = Path(root).expanduser().resolve()
        if root.name == CONFIG_FILE and root.is_file():
            root = root.parent
        path = root / CONFIG_FILE
        if not path.is_file():
            raise ConfigError(f"{root} is not a casebench workspace: no {CONFIG_FILE} there; expected a "
                              "workspace directory (make one with: casebench init DIR)")
        try:
            config = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(str(syntax_problem(path, e, "a workspace configuration (TOML)"))) from None
        _check_config(config, str(path))
        return cls(root, config)

    # ----- configuration

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def name(self) -> str:
        return self.config["project"]["name"]

    @property
    def taxonomy(self) -> Taxonomy:
        """The taxonomy named in ``[project] taxonomy``."""
        return get_taxonomy(self.config["project"]["taxonomy"])

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Annotation dimensions declared in ``[annotation] dimensions``."""
        return tuple(self.config.get("annotation", {}).get("dimensions", DEFAULT_DIMENSIONS))

    def check_writable(self, *subfolders: str) -> None:
        """Raise a one-line PathError unless the workspace folder (and these sub-folders) can be written."""
        for sub in ("", "tables", *subfolders):
            check_writable(self.root / sub, folder=True)

    def section(self, name: str) -> dict:
        """A config section as a dict ({} when absent)."""
        return dict(self.config.get(name, {}))

    def save_config(self) -> None:
        """Write ``casebench.toml`` atomically (ConfigError, and nothing written, for unwritable values)."""
        _check_config(self.config, str(self.config_path))
        text = ("# casebench workspace; see DESIGN.md. Step sections ([synth], [transcribe], ...) are\n"
                "# written by the steps and hashed to key their resumable journals.\n")
        text += dumps_toml(self.config)
        atomic_write_text(self.config_path, text)

    def set_section(self, name: str, values: Mapping[str, Any]) -> None:
        """Replace config section ``[name]`` with ``values`` (None values dropped) and save the config."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"section [{name}] must be a dict of settings, not {type(values).__name__}")
        new = dict(self.config)
        new[name] = _strip_none(copy.deepcopy(dict(values)))
        _check_config(new, str(self.config_path))
        dumps_toml(new)  # raises before anything changes when a value cannot be written
        self.config = new
        self.save_config()

    # ----- paths

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    def table_path(self, name: str) -> Path:
        """``tables/<name>.parquet``; ConfigError for a name not in TABLES."""
        _check_name(name)
        return self.tables_dir / f"{name}.parquet"

    def resolve(self, path: str | os.PathLike) -> Path:
        """A path stored in a table (relative to the root) as an absolute path."""
        return self.root / path

    def relpath(self, path: str | os.PathLike) -> str:
        """An absolute or root-relative path as stored in tables: relative to the root, POSIX separators."""
        p = Path(path)
        if not p.is_absolute():
            return p.as_posix()
        try:
            return p.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise InputError(Problem("path outside the workspace", file=str(p),
                                     expected=f"a path under {self.root}")) from None

    # ----- tables

    def has_table(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def read_table(self, name: str, *, validate: bool = True) -> pa.Table:
        """Read table ``name``; when ``validate``, cast it to its schema and check it.

        Raises InputError naming the file when the table is missing or unreadable, and listing every
        problem (missing column, wrong type, null in a required column, duplicate key, label outside the
        taxonomy, undeclared dimension), each with its row, clip_id and column.
        """
        path = self.table_path(name)
        if not path.is_file():
            run = " or ".join(f"`casebench {c}`" for c in PRODUCERS[name])
            raise InputError(Problem("table not found", expected=f"the {name} table: run {run} first",
                                     file=str(path)))
        try:
            raw = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise InputError(Problem(f"not a readable Parquet file ({e})", file=str(path),
                                     expected=f"the {name} table as written by casebench")) from e
        if not validate:
            return raw
        table, problems = _conform(name, raw, file=str(path), fill_missing=False)
        if table is not None:
            problems += self._content_problems(name, table, str(path))
        if problems:
            raise InputError(problems, summary=f"{len(problems)} problem(s) in table {name} ({path})")
        return table

    def read_df(self, name: str, *, validate: bool = True):
        """Table ``name`` as a pandas DataFrame (lists as numpy arrays, times as UTC datetimes)."""
        return self.read_table(name, validate=validate).to_pandas()

    def write_table(self, name: str, data: Any, *, fill_missing: bool = True,
                    built_from: Mapping[str, str | None] | None = None) -> Path:
        """Cast ``data`` to the schema of ``name``, check it, replace ``tables/<name>.parquet`` atomically.

        ``built_from`` (table -> :meth:`table_version`) is stored in the file's metadata: what a derived
        table was built from, for :func:`stale_problems`.

        ``data`` is a pyarrow Table, a pandas DataFrame or a list of row dicts. Columns come out in schema
        order, then the ``qc_*``/``meta_*`` extras in the order given. Absent nullable columns are written
        as nulls when ``fill_missing`` (absent ``annotations.cancelled``/``ground_truth`` as False); a
        required column is never filled. Raises InputError (and writes nothing) listing every problem.
        """
        path = self.table_path(name)
        table, problems = _conform(name, data, file=str(path), fill_missing=fill_missing)
        if table is not None:
            problems += self._content_problems(name, table, str(path))
        if problems:
            raise InputError(problems, summary=f"{len(problems)} problem(s) in table {name} ({path}); "
                                               "nothing was written")
        if built_from is not None:
            meta = dict(table.schema.metadata or {})
            meta[_BUILT_FROM] = json.dumps(dict(built_from), sort_keys=True).encode()
            table = table.replace_schema_metadata(meta)
        with atomic_open(path) as f:
            pq.write_table(table, f)
        return path

    # ----- versions of tables (staleness)

    def table_version(self, name: str) -> str | None:
        """``"sha256:<hex>"`` of ``tables/<name>.parquet``'s bytes, or None when there is no such table."""
        path = self.table_path(name)
        try:
            with open(path, "rb") as f:
                return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            return None

    def versions(self, names: Sequence[str]) -> dict[str, str | None]:
        """:meth:`table_version` of each of ``names``."""
        return {n: self.table_version(n) for n in names}

    def built_from(self, name: str) -> dict[str, str | None] | None:
        """What derived table ``name`` was built from (table -> version), or None when it records nothing
        (absent, or written before versions were recorded)."""
        path = self.table_path(name)
        if not path.is_file():
            return None
        try:
            raw = (pq.read_schema(path).metadata or {}).get(_BUILT_FROM)
        except (pa.ArrowException, OSError):
            return None
        return json.loads(raw) if raw else None

    def _content_problems(self, name: str, table: pa.Table, file: str) -> list[Problem]:
        """Checks that need the config: labels in the taxonomy, distributions in taxonomy order,
        annotation dimensions declared."""
        problems: list[Problem] = []
        ids = _ids(table.column("clip_id"), table.num_rows)
        if name == "labels":
            tax = self.taxonomy
            for col in ("acoustic_label", "semantic_label"):
                for row, label in enumerate(table.column(col).to_pylist()):
                    if label is not None and label not in tax.index:
                        expected = f"a label of taxonomy {tax.name}: {list(tax.labels)}"
                        problems.append(_problem(file, row, ids[row], col, f"label {label!r}",
                                                 expected=expected, hint=did_you_mean(label, tax.labels)))
            for col in ("acoustic_dist", "semantic_dist"):
                for row, dist in enumerate(table.column(col).to_pylist()):
                    if dist is None:
                        continue
                    if len(dist) != len(tax) or any(p is None for p in dist):
                        problems.append(_problem(file, row, ids[row], col,
                                                 f"a distribution of {len(dist)} values",
                                                 expected=f"{len(tax)} numbers in {tax.name} order"))
                    elif abs(sum(dist) - 1.0) > 1e-6 or min(dist) < 0:
                        problems.append(_problem(file, row, ids[row], col,
                                                 f"values summing to {sum(dist):.6g}",
                                                 expected="non-negative values summing to 1"))
        elif name == "annotations":
            dims = self.dimensions
            for row, dim in enumerate(table.column("dimension").to_pylist()):
                if dim is not None and dim not in dims:
                    expected = f"one declared in {CONFIG_FILE} [annotation] dimensions: {list(dims)}"
                    problems.append(_problem(file, row, ids[row], "dimension", f"dimension {dim!r}",
                                             expected=expected, hint=did_you_mean(dim, dims)))
        return problems

    # ----- resumable steps

    def resumable(self, step: str, config: Mapping[str, Any], *, table: str | None = None) -> StepJournal:
        """The journal of ``step`` under ``config`` (see :class:`StepJournal`).

        ``table`` names the table its rows are for; when given, every part is cast to that table's schema
        as it is written, so a bad row fails at once rather than at :meth:`StepJournal.finish`.
        """
        return StepJournal(self, step, config, table=table)


def step_command(step: str, ws: Workspace) -> str:
    """The command line that re-runs ``step`` on ``ws`` (for messages)."""
    return f"casebench {step} {ws.root}"


def stale_problems(ws: Workspace, built_from: Mapping[str, str | None] | None = None, *, step: str | None = None,
                   command: str | None = None, what: str | None = None) -> list[str]:
    """Why something built from ``ws``'s tables is stale, upstream first; [] when it is not.

    First the derived tables among ``built_from`` (and their own inputs, recursively): one whose inputs
    changed after it was written names its step ("labels.parquet changed after split: re-run `casebench
    split WS`"). Then each table of ``built_from`` whose version differs from the recorded one names
    ``step`` / ``command`` (what built the artefact ``what``). Tables recorded as absent (None) that exist
    now, and the reverse, count as changed. With no ``built_from``, the workspace's own derived tables are
    checked.

    >>> import tempfile
    >>> ws = Workspace.create(tempfile.mkdtemp(), "demo")
    >>> _ = ws.write_table("labels", [{"clip_id": "c1", "acoustic_label": "sad"}])
    >>> _ = ws.write_table("splits", [{"clip_id": "c1", "split": "test"}],
    ...                    built_from=ws.versions(["clips", "labels"]))
    >>> stale_problems(ws, {"splits": ws.table_version("splits")}, step="publish")
    []
    >>> _ = ws.write_table("labels", [{"clip_id": "c1", "acoustic_label": "happy"}])  # re-aggregated
    >>> stale_problems(ws, {"splits": ws.table_version("splits")}, step="publish")  # doctest: +ELLIPSIS
    ['labels.parquet changed after split (tables/splits.parquet was built from an older version): re-run ...']
    """
    out: list[str] = []
    seen: set[str] = set()

    def upstream(table: str) -> None:
        if table in seen or table not in DERIVED:
            return
        seen.add(table)
        producer, inputs = DERIVED[table]
        for t in inputs:
            upstream(t)
        recorded = ws.built_from(table)
        if recorded is None:
            return  # written before versions were recorded, or absent: nothing to compare
        changed = [t for t in inputs if t in recorded and recorded[t] != ws.table_version(t)]
        if len(changed) == 1:
            what = _change(ws, changed[0], recorded[changed[0]], producer, f"tables/{table}.parquet")
        else:
            what = (" and ".join(f"{t}.parquet" for t in changed) + f" changed after {producer} (tables/{table}"
                    ".parquet was built from other versions)")
        if changed:
            out.append(f"{what}: re-run `{step_command(producer, ws)}`")

    tables = dict(built_from) if built_from is not None else {t: None for t in DERIVED}
    for t in tables:
        upstream(t)
    if built_from is not None and step is not None:
        for t, v in tables.items():
            if v != ws.table_version(t):
                out.append(f"{_change(ws, t, v, step, what)}: re-run `{command or step_command(step, ws)}`")
    return list(dict.fromkeys(out))


def _change(ws: Workspace, table: str, recorded: str | None, step: str, built: str | None) -> str:
    """"<table>.parquet changed after <step> (<built> was built from an older version)", or appeared / was
    removed."""
    if recorded is None:
        return f"{table}.parquet appeared after {step}" + (f" ({built} was built without it)" if built else "")
    if not ws.has_table(table):
        return f"{table}.parquet was removed after {step}"
    return f"{table}.parquet changed after {step}" + (f" ({built} was built from an older version)" if built else "")


def lineage(ws: Workspace, tables: Sequence[str], *, step: str, command: str) -> dict:
    """What an artefact built outside the workspace records: the workspace, the versions of ``tables``, and
    the step and command that built it (read back by :func:`check_lineage`)."""
    return {"workspace": str(ws.root), "name": ws.name, "step": step, "command": command,
            "tables": ws.versions(tables)}


def check_lineage(records: Sequence[tuple[str, Mapping[str, Any]]], *, what: str,
                  allow_stale: bool = False) -> list[str]:
    """Stale problems of artefacts from their lineage ``records`` ((artefact, :func:`lineage` record), one
    per workspace an artefact was built from).

    A workspace that cannot be found (the artefact was copied to another machine) cannot be checked and
    gives no problem. Raises :class:`~casebench.errors.StaleError` listing the problems, unless
    ``allow_stale``; returns them.
    """
    from casebench.errors import StaleError

    problems: list[str] = []
    for artefact, rec in records:
        root = Path(str(rec.get("workspace", "")))
        if not rec.get("workspace") or not (root / CONFIG_FILE).is_file():
            continue
        ws = Workspace.open(root)
        problems += stale_problems(ws, rec.get("tables") or {}, step=rec.get("step"), command=rec.get("command"),
                                   what=artefact)
    problems = list(dict.fromkeys(problems))
    if problems and not allow_stale:
        raise StaleError(f"{what} is stale:\n" + "\n".join(f"  {p}" for p in problems)
                         + "\n(--allow-stale goes ahead and records this in the outputs)")
    return problems


def benchmark_lineage(spec_path: str | os.PathLike | None, gold_path: str | os.PathLike,
                      dataset_path: str | os.PathLike | None = None) -> list[tuple[str, dict]]:
    """The lineage records of a benchmark's artefacts: the spec's ``build.built_from`` (``benchmark-from``),
    the gold's ``<gold>.lineage.json`` and the published folder's lineage file (``publish``)."""
    import yaml

    out: list[tuple[str, dict]] = []
    if spec_path is not None and Path(spec_path).is_file():
        try:
            spec = yaml.safe_load(Path(spec_path).read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError):
            spec = {}
        build = spec.get("build") if isinstance(spec, dict) else None
        for rec in (build or {}).get("built_from") or [] if isinstance(build, dict) else []:
            out.append((f"spec {spec_path}", rec))
    files = [("gold", lineage_path(gold_path))]
    if dataset_path is not None:
        files.append(("published folder", Path(dataset_path) / ".casebench-lineage.json"))
    for kind, f in files:
        if f.is_file():
            try:
                recs = json.loads(f.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            out += [(f"{kind} {f.parent if kind == 'published folder' else gold_path}", r)
                    for r in recs if isinstance(r, dict)]
    return out


def check_benchmark(benchmark: Any, *, allow_stale: bool = False) -> list[str]:
    """:func:`check_lineage` over :func:`benchmark_lineage` of a :class:`~casebench.benchmarks.Benchmark`:
    StaleError (unless ``allow_stale``) when its gold, spec or published folder was built from workspace
    tables that changed since; returns the problems."""
    records = benchmark_lineage(benchmark.spec_path, benchmark.gold_path, (benchmark.dataset or {}).get("path"))
    return check_lineage(records, what=f"benchmark {benchmark.name!r}", allow_stale=allow_stale)


def record_artefact(ws: Workspace, what: str, path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Remember in ``reports/lineage.json`` that ``what`` at ``path`` was built from ``record`` (a
    :func:`lineage`), so that re-aggregating or re-splitting can say which artefacts it left stale."""
    file = ws.reports_dir / "lineage.json"
    try:
        known = json.loads(file.read_text("utf-8")).get("artefacts", [])
    except (OSError, ValueError):
        known = []
    known = [a for a in known if not (a.get("what") == what and a.get("path") == str(path))]
    known.append({"what": what, "path": str(path), **record})
    atomic_write_text(file, json.dumps({"artefacts": known}, indent=2) + "\n")


def downstream_stale(ws: Workspace) -> list[str]:
    """Artefacts recorded by :func:`record_artefact` that the workspace's tables have made stale (those that
    still exist), one message each naming the step to re-run; for ``aggregate`` and ``split`` to print."""
    try:
        known = json.loads((ws.reports_dir / "lineage.json").read_text("utf-8")).get("artefacts", [])
    except (OSError, ValueError):
        return []
    out = []
    here = ws.root.resolve()
    for a in known:
        if not Path(a.get("path", "")).exists():
            continue
        if a.get("workspace") and Path(a["workspace"]).resolve() != here:
            continue  # built from another workspace (this one is a copy of it): this one's tables did not feed it
        problems = stale_problems(ws, a.get("tables") or {}, step=a.get("step"), command=a.get("command"),
                                  what=f"{a['what']} {a['path']}")
        out += [f"{a['what']} {a['path']} is now stale: {problems[-1]}"] if problems else []
    return out


def lineage_path(artefact: str | os.PathLike) -> Path:
    """Where the lineage of a file artefact (a gold CSV) is kept: ``<file>.lineage.json`` beside it."""
    p = Path(artefact)
    return p.with_name(p.name + ".lineage.json")


#: Names casebench reads in casebench.toml: a name one typo away from one of these ([anotation],
#: raters_per_clp) is refused with a did-you-mean instead of being ignored; other names are left alone.
KNOWN_SETTINGS: dict[str, tuple[str, ...]] = {
    "": ("project", "annotation", "aggregate", "audit", "card", "collect", "degrade", "import", "split", "synth",
         "transcribe", "mine_conflicts"),
    "project": ("name", "version", "licence", "licence_url", "languages", "taxonomy"),
    "annotation": ("dimensions", "scale", "raters_per_clip", "mixed_emotions", "mixed_weight_max",
                   "confidence_scale", "vad_widget", "label_studio", "levels", "custom"),
}


def _check_misspelt(config: Mapping[str, Any], where: str) -> None:
    for section, known in KNOWN_SETTINGS.items():
        table = config if not section else config.get(section)
        for key in table if isinstance(table, Mapping) else ():
            hint = did_you_mean(key, known) if key not in known else None
            if hint:
                name = f"[{key}]" if not section else f"[{section}] {key}"
                raise ConfigError(f"{where}: {name} is not a setting casebench reads ({hint}); a misspelt name "
                                  "would be ignored")


def _check_config(config: Mapping[str, Any], where: str) -> None:
    _check_misspelt(config, where)
    project = config.get("project")
    if not isinstance(project, Mapping):
        raise ConfigError(f"{where}: no [project] section; expected name, version, languages, taxonomy")
    missing = [k for k in ("name", "taxonomy") if not isinstance(project.get(k), str) or not project.get(k)]
    if missing:
        raise ConfigError(f"{where}: [project] has no {' or '.join(missing)}; expected a non-empty string")
    try:
        get_taxonomy(project["taxonomy"])
    except ConfigError as e:
        raise ConfigError(f"{where}: [project] taxonomy: {e}") from e
    annotation = config.get("annotation", {})
    dims = annotation.get("dimensions", []) if isinstance(annotation, Mapping) else None
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise ConfigError(f"{where}: [annotation] dimensions must be a list of names, not {dims!r}")


# --------------------------------------------------------------------------------------------------
# Resumable steps

_STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PART = re.compile(r"part-(\d+)\.parquet")


class StepJournal:
    """Rows of a long step (collect, synth, transcribe, features), saved batch by batch so a re-run resumes.

    Each :meth:`write` adds one part file ``tables/.parts/<step>/<config_hash>/part-<n>.parquet``, written
    to a temp file, fsynced and then linked into place, so a process killed at any moment leaves each part
    whole or absent. A re-run under the same config finds the same journal and skips :meth:`done_ids`;
    under a changed config the hash differs and the journal starts empty. A clip_id written twice (a batch
    re-done after a kill just before its part landed) counts once: the first row wins. :meth:`finish`
    writes the step's table; the parts are kept (they are the cache of this config) until :meth:`clear`.

    >>> import tempfile
    >>> ws = Workspace.create(tempfile.mkdtemp(), "demo")
    >>> j = ws.resumable("synth", {"voice": "a"}, table="splits")
    >>> j.write([{"clip_id": "c1", "split": "train"}])
    >>> j.write([{"clip_id": "c1", "split": "test"}, {"clip_id": "c2", "split": "test"}])
    >>> sorted(j.done_ids()), j.rows().column("split").to_pylist()
    (['c1', 'c2'], ['train', 'test'])
    >>> ws.resumable("synth", {"voice": "b"}).done_ids()
    set()
    """

    def __init__(self, workspace: Workspace, step: str, config: Mapping[str, Any], *,
                 table: str | None = None):
        if not _STEP_NAME.fullmatch(step):
            raise ConfigError(f"step name {step!r}; expected letters, digits, '_', '-', '.'")
        if table is not None:
            _check_name(table)
        self.workspace = workspace
        self.step = step
        self.config = dict(config)
        self.config_hash = config_hash(self.config)
        self.table = table
        self.dir = workspace.tables_dir / ".parts" / step / self.config_hash

    def __repr__(self) -> str:
        return f"StepJournal({self.step!r}, {self.config_hash}, {len(self.parts())} part(s))"

    def parts(self) -> list[Path]:
        """The complete part files, in the order they were written."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _PART.fullmatch(p.name))]
        return [p for _, p in sorted(found)]

    def _read_part(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(path, columns=columns)
        except (pa.ArrowException, OSError) as e:
            raise InputError(Problem(f"unreadable journal part ({e})", file=str(path),
                                     expected="a Parquet part written by StepJournal",
                                     hint="delete it and re-run the step; its clips will be redone")) from e

    def done_ids(self) -> set[str]:
        """clip_ids already written under this config hash."""
        done: set[str] = set()
        for part in self.parts():
            done.update(x for x in self._read_part(part, ["clip_id"]).column("clip_id").to_pylist()
                        if x is not None)
        return done

    def write(self, rows: Any) -> None:
        """Append ``rows`` (list of dicts, Arrow table or DataFrame; each with a clip_id) as one part file.

        Raises InputError (nothing written) for rows without a clip_id or, when the journal has a table,
        rows that do not fit its schema. An empty batch writes nothing.
        """
        where = str(self.dir)
        if self.table is not None:
            # a journal may repeat a clip_id (first wins on read): no key check here
            table, problems = _conform(self.table, rows, file=where, fill_missing=True, check_keys=False)
        else:
            columns, n, problems = _columns(rows)
            table = None
            if "clip_id" not in columns:
                problems.append(Problem("no clip_id column", expected="a clip_id in every row", file=where))
            if not problems:
                try:
                    table = pa.table({c: _convert(v, None) for c, v in columns.items()})
                    table = table.set_column(table.column_names.index("clip_id"), "clip_id",
                                             _convert(table.column("clip_id"), pa.string()))
                except (*_CONVERT_ERRORS, _WrongType) as e:
                    problems.append(Problem(f"rows cannot be stored as a table ({e})", file=where))
            if table is not None and not problems and table.column("clip_id").null_count:
                rows_ = pc.indices_nonzero(pc.is_null(table.column("clip_id"))).to_pylist()
                problems += [_problem(where, r, None, "clip_id", "null in a required column",
                                      expected="a value") for r in rows_]
        if problems:
            raise InputError(problems, summary=f"{len(problems)} problem(s) in rows for step {self.step}; "
                                               "nothing was written")
        if table.num_rows == 0:
            return
        self._write_part(table)

    def _write_part(self, table: pa.Table) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "config.json").exists():
            atomic_write_text(self.dir / "config.json", json.dumps(
                {"step": self.step, "config_hash": self.config_hash, "config": _strip_none(self.config)},
                indent=2, sort_keys=True, default=_json_default) + "\n")
        tmp = self.dir / f".part-{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f)
                f.flush()
                os.fsync(f.fileno())
            parts = self.parts()
            n = int(_PART.fullmatch(parts[-1].name).group(1)) + 1 if parts else 0
            while True:
                final = self.dir / f"part-{n:06d}.parquet"
                try:
                    # link, unlike rename, never replaces a part that another process wrote meanwhile
                    os.link(tmp, final)
                    break
                except FileExistsError:
                    n += 1
                except OSError:  # a filesystem without hard links: rename (atomic, but may race)
                    if final.exists():
                        n += 1
                        continue
                    os.replace(tmp, final)
                    break
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(self.dir)
        return final

    def rows(self) -> pa.Table:
        """The union of the parts, one row per clip_id (first written wins), in the order written."""
        tables = []
        for part in self.parts():
            t = self._read_part(part)
            if self.table is not None:
                t = conform(self.table, t, file=str(part))
            tables.append(t)
        if not tables:
            return empty_table(self.table) if self.table else pa.table({"clip_id": pa.array([], pa.string())})
        table = pa.concat_tables(tables, promote_options="permissive")
        seen: set[str] = set()
        keep = []
        for i, cid in enumerate(table.column("clip_id").to_pylist()):
            if cid not in seen:
                seen.add(cid)
                keep.append(i)
        return table.take(pa.array(keep, pa.int64())) if len(keep) < table.num_rows else table

    def finish(self, table: str | None = None, merge_with_existing: bool = True) -> pa.Table:
        """Write table ``table`` (default: the journal's) from the parts, atomically, and return it.

        With ``merge_with_existing``, rows already in the table keep their place unless the journal has the
        same clip_id (then the journal's row replaces them), and the journal's new clip_ids follow. Where
        the table has a ``config_hash`` column, the journal's rows get this journal's hash if they lack one.
        """
        table = table or self.table
        if table is None:
            raise ConfigError(f"StepJournal({self.step!r}).finish needs the table to write; expected one of "
                              f"{list(TABLES)}")
        new = conform(table, self.rows(), file=str(self.dir))
        if "config_hash" in SCHEMAS[table].names:
            i = new.column_names.index("config_hash")
            new = new.set_column(i, new.schema.field(i), pc.fill_null(new.column(i), self.config_hash))
        if merge_with_existing and self.workspace.has_table(table):
            old = self.workspace.read_table(table)
            new_index = {cid: i for i, cid in enumerate(new.column("clip_id").to_pylist())}
            both = pa.concat_tables([old, new], promote_options="permissive")
            order, used = [], set()
            for i, cid in enumerate(old.column("clip_id").to_pylist()):
                if cid in new_index:
                    order.append(old.num_rows + new_index[cid])
                    used.add(cid)
                else:
                    order.append(i)
            order += [old.num_rows + i for cid, i in new_index.items() if cid not in used]
            new = both.take(pa.array(order, pa.int64()))
        self.workspace.write_table(table, new)
        for stray in self.dir.glob(".part-*.tmp") if self.dir.is_dir() else []:
            stray.unlink(missing_ok=True)  # left by a killed writer; no writer runs once the step finishes
        return self.workspace.read_table(table)

    def clear(self) -> None:
        """Delete this journal (its parts and config)."""
        shutil.rmtree(self.dir, ignore_errors=True)
