"""Parse and validate a submitted predictions file against a benchmark's gold items.

The format (see DESIGN.md) is JSON Lines in UTF-8, one object per clip, optionally gzip-compressed
(recognised by the gzip magic bytes, whatever the file is called)::

    {"id": "case-0001", "label": "angry"}
    {"id": "case-0002", "label": "sad", "probs": {"angry": 0.1, "sad": 0.7, "neutral": 0.2}}
    {"id": "em2ldl-0003", "distribution": {"joy": 0.4, "love": 0.6}}
    {"id": "msp-0004", "valence": 3.1, "arousal": 4.0, "dominance": 2.2}

Keys: ``id`` (a string naming a gold item) and one or more of ``label`` (a label of the benchmark's
taxonomy, lower-case as the taxonomy spells it), ``probs`` (label -> probability), ``distribution``
(label -> share), ``valence``/``arousal``/``dominance`` (numbers). Labels absent from a ``probs`` or
``distribution`` object count as 0; the values must be finite and non-negative. A row summing to 1 within
:data:`SUM_TOL` (1e-3: probabilities rounded to 4 decimals, as most models write them) is accepted and
divided by its sum; a row further off is an error unless ``renormalize=True`` rescales it too (with a note);
a row summing to 0 is always an error.

Choices made here, each recorded in :attr:`Predictions.notes` when it applies:

* a line with ``probs`` and no ``label`` gets label = argmax of ``probs`` (ties -> first in taxonomy order);
* a line with ``probs`` and no ``distribution`` gets its ``probs`` as its distribution, so
  ``require=["distribution"]`` is satisfied by ``probs`` (a classifier's posterior is its estimate of the
  label distribution); likewise ``require=["label"]`` is satisfied by ``probs``;
* a UTF-8 byte-order mark at the start of the file is stripped; CRLF line ends and blank lines are accepted;
* a ``label`` that differs from the argmax of the same line's ``probs`` is kept as given (and counted);
* rows summing to 1 within :data:`SUM_TOL` but not within 1e-6 are counted in a note ("rescaled ...").

Everything else that is not exactly the format is an error: every problem in the file is collected (with
file, line, id and field) and raised as one :class:`~casebench.errors.InputError`; nothing is dropped. In
particular a key given twice in one object (at any depth) is an error naming the line and the key: JSON
parsers disagree on which value wins, and a silent choice can change every score.

Speed: a clean file is read by Arrow's multi-threaded JSON reader and checked column-wise; the common case
that Arrow declines (blank lines, CRLF, a missing id) is checked column-wise from orjson objects; anything
else goes to a per-line pass that finds and names every problem. One verdict: each faster path hands any
input it does not fully understand to the next, so all three give the same result, errors included (a
Hypothesis property test mutates files in every known way and compares the paths).

>>> import gzip, os, tempfile
>>> from casebench.benchmarks import Gold
>>> from casebench.taxonomy import get_taxonomy
>>> gold = Gold(ids=np.array(["a", "b"], dtype=object), taxonomy=get_taxonomy("ekman7"))
>>> path = os.path.join(tempfile.mkdtemp(), "p.jsonl.gz")
>>> with gzip.open(path, "wt") as f:
...     _ = f.write('{"id": "a", "label": "sad"}\\n{"id": "b", "probs": {"happy": 0.9, "sad": 0.1}}\\n')
>>> preds = parse_predictions(path, gold)
>>> preds.label.tolist(), preds.notes[0]
([5, 3], 'label = argmax of probs for 1 line(s) without a label (ties -> first in taxonomy order)')
>>> bad = os.path.join(os.path.dirname(path), "bad.jsonl")
>>> with open(bad, "w") as f:
...     _ = f.write('{"id": "a", "lable": "sad"}\\n{"id": "a", "label": "Sad"}\\n')
>>> try:
...     parse_predictions(bad, gold, allow_missing=True)
... except InputError as e:
...     print("\\n".join(f"{p.line} {p.field}: {p.found} ({p.hint})" for p in e.problems))
1 lable: unknown key 'lable' (did you mean 'label'?)
2 id: duplicate id: already given on line 1 (None)
2 label: unknown label 'Sad' (labels are lower-case: did you mean 'sad'?)
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

import numpy as np
import orjson

from casebench.benchmarks import DIMENSIONS, Gold
from casebench.errors import ConfigError, InputError, Problem, did_you_mean
from casebench.taxonomy import Taxonomy

log = logging.getLogger(__name__)

FIELDS = ("label", "probs", "distribution", *DIMENSIONS)
"""The prediction fields a line may carry (besides ``id``)."""
KEYS = ("id", *FIELDS)
SUM_TOL = 1e-3
"""How far a ``probs``/``distribution`` row may sum from 1 and still be accepted (then divided by its sum);
further off is an error unless ``renormalize=True``."""
NOTE_TOL = 1e-6
"""Rows summing to 1 within :data:`SUM_TOL` but not within this are counted in a note when rescaled."""
MAX_PROBLEMS = 10_000
"""Problems kept in an InputError; beyond this they are counted (in the summary) but not kept."""

# What a required field is satisfied by (``require=`` of parse_predictions).
SATISFIED_BY = {"label": ("label", "probs"), "probs": ("probs",), "distribution": ("distribution", "probs"),
                **{d: (d,) for d in DIMENSIONS}}

_KEYSET = frozenset(KEYS)
_MATRIX_FIELDS = ("probs", "distribution")
_NUMBER = (int, float)  # bool is not a number here: type(True) is bool
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_FORMATS = {b"PK\x03\x04": "a zip archive", b"\xfd7zXZ\x00": "an xz archive", b"BZh": "a bzip2 archive",
                  b"\x28\xb5\x2f\xfd": "a zstd archive", b"PAR1": "a Parquet file",
                  b"\xff\xfe": "UTF-16 text", b"\xfe\xff": "UTF-16 text"}
_HEADER_KEYS = frozenset({"model", "model_name", "model_id", "benchmark", "version", "revision", "created",
                          "created_at", "timestamp", "metadata", "meta", "header", "schema", "format",
                          "description", "submitter", "author", "params", "parameters", "config", "dataset",
                          "task", "tasks", "taxonomy"})
_KEY_ALIASES = {
    **dict.fromkeys(("clip_id", "utt_id", "utterance_id", "item_id", "sample_id", "uid", "key", "file",
                     "filename", "path", "audio", "wav"), "the clip id goes in 'id'"),
    **dict.fromkeys(("prediction", "pred", "predicted", "y_pred", "emotion", "class", "category"),
                    "a predicted label goes in 'label'"),
    **dict.fromkeys(("scores", "probabilities", "probas", "proba", "prob", "softmax", "posteriors"),
                    "class probabilities go in 'probs'"),
    "logits": "give probabilities (softmax of the logits) in 'probs'",
    **dict.fromkeys(("dist", "soft_label", "soft_labels", "label_distribution"),
                    "a label distribution goes in 'distribution'"),
    **dict.fromkeys(_HEADER_KEYS, "metadata is not part of a prediction line"),
}
_MISSING = object()  # a line without an "id" key
_ONE_OBJECT = 'one JSON object per line, such as {"id": "...", "label": "..."}'


@dataclass
class Predictions:
    """A validated predictions file, as arrays aligned to the gold item order (``gold.ids``).

    Attributes:
        path: the file as given.
        sha256: ``"sha256:<hex>"`` of the file's bytes as stored (the compressed bytes for gzip).
        n_lines: number of prediction lines (non-blank lines).
        label: int64 (n_gold,) taxonomy index, -1 where the item has no label (given, or argmax of probs);
            None when no line has ``label`` or ``probs``.
        probs: float (n_gold, K) in taxonomy order, NaN rows where absent; None when no line has ``probs``.
        distribution: float (n_gold, K), NaN rows where absent; lines with ``probs`` and no ``distribution``
            contribute their probs. None when no line has either.
        vad: dimension -> float (n_gold,), NaN where absent; only dimensions some line gives.
        present: bool (n_gold,): the item had a line.
        line: int64 (n_gold,): the item's line number in the file (1-based), 0 where it has none.
        missing_ids: gold ids with no line (only non-empty with ``allow_missing=True``).
        notes: explicit choices made while reading (e.g. "renormalised 12 probs row(s) ...").
    """

    path: str
    sha256: str
    n_lines: int
    label: np.ndarray | None
    probs: np.ndarray | None
    distribution: np.ndarray | None
    vad: dict[str, np.ndarray]
    present: np.ndarray
    missing_ids: list[str]
    notes: list[str]
    line: np.ndarray | None = None


def parse_predictions(path: str | os.PathLike, gold: Gold, *, renormalize: bool = False,
                      allow_missing: bool = False, require: Sequence[str] = ()) -> Predictions:
    """Read and validate a predictions file against ``gold``; arrays come back in gold item order.

    Args:
        path: a JSON Lines file, plain or gzip (detected from the magic bytes, not the suffix).
        gold: the benchmark's gold items; ``gold.ids`` and ``gold.taxonomy`` are what lines are checked
            against.
        renormalize: rescale ``probs``/``distribution`` rows that do not sum to 1 within :data:`SUM_TOL`
            instead of reporting them; each use is noted. (Rows within :data:`SUM_TOL` are always
            rescaled.) Negative, non-finite and all-zero rows stay errors.
        allow_missing: gold items without a line are listed in ``missing_ids`` (with a note) instead of
            being an error; the evaluator scores them as wrong.
        require: fields every line must carry for the tasks being scored: ``"label"`` (also satisfied by
            ``"probs"``), ``"probs"``, ``"distribution"`` (also satisfied by ``"probs"``), ``"valence"``,
            ``"arousal"``, ``"dominance"``.

    Returns:
        The :class:`Predictions`.

    Raises:
        InputError: the file is missing or unreadable, or any line breaks the format; every problem is
            listed with its file, line, id and field.
        ConfigError: ``require`` names an unknown field.
    """
    for f in require:
        if f not in SATISFIED_BY:
            hint = did_you_mean(f, SATISFIED_BY)
            raise ConfigError(f"unknown required prediction field {f!r}; expected one of {list(SATISFIED_BY)}"
                              + (f" ({hint})" if hint else ""))
    src = str(path)
    tax = gold.taxonomy
    notes: list[str] = []
    raw, data = _read(Path(path), src, notes)
    sha256 = _Sha256(raw)  # hashed in a thread while the lines are parsed (hashlib releases the GIL)
    del raw
    problems = _Problems(src)

    columnar = _parse_columnar(data, gold, require, renormalize)
    if columnar is not None:  # the common, clean file: parsed and checked column-wise in C
        rec, gidx, values, col_notes = columnar
        notes += col_notes
        present = np.zeros(len(gold), dtype=bool)
        present[gidx] = True
        return _assemble(src, sha256.result(), len(gidx), rec, gidx, values, gold, present, [], notes)

    lines = data.splitlines()
    del data
    while lines and not lines[-1].strip():  # trailing blank lines would only cost the fast path
        lines.pop()
    objs, linenos = _parse_fast(lines)
    if objs is None:
        objs, linenos = _parse_slow(lines, problems)
    _check_duplicate_keys(lines, objs, linenos, problems)
    del lines
    n_lines = len(objs)
    if not n_lines and not problems.count:
        raise InputError(Problem("empty file: no JSON object in it", file=src,
                                 expected=_ONE_OBJECT))

    rec = _structure_fast(objs, linenos) or _structure_slow(objs, linenos, problems)
    del objs
    gidx = _match_ids(rec, gold, problems)
    values: dict[str, np.ndarray] = {}
    for name, (pos, vals) in rec.cols.items():
        if name == "label":
            values[name] = _check_labels(vals, pos, rec, tax, problems)
        elif name in _MATRIX_FIELDS:
            values[name] = _check_matrix(name, vals, pos, rec, tax, problems, renormalize, notes)
        else:
            values[name] = _check_numbers(name, vals, pos, rec, problems)
    _check_required(require, rec, problems)

    present = np.zeros(len(gold), dtype=bool)
    present[gidx[gidx >= 0]] = True
    missing = np.flatnonzero(~present)
    missing_ids: list[str] = []
    if missing.size:
        shown = gold.ids[missing[:20]].tolist()
        more = f" and {missing.size - 20} more" if missing.size > 20 else ""
        if allow_missing:
            missing_ids = gold.ids[missing].tolist()
            notes.append(f"{missing.size} of {len(gold)} gold item(s) have no line; they count as wrong "
                         f"(--allow-missing): {shown}{more}")
        else:
            problems.add(f"{missing.size} of {len(gold)} gold item(s) have no line: {shown}{more}",
                         expected="one line per benchmark item",
                         hint="pass --allow-missing to score them as wrong")
    problems.raise_if_any()
    for note in notes:
        log.info("%s: %s", src, note)
    return _assemble(src, sha256.result(), n_lines, rec, gidx, values, gold, present, missing_ids, notes)


# -- reading -------------------------------------------------------------------------------------------


def _read(path: Path, src: str, notes: list[str]) -> tuple[bytes, bytes]:
    """(raw bytes as stored, decompressed bytes without a BOM); InputError when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = None
        if path.parent.is_dir():
            hint = did_you_mean(path.name, os.listdir(path.parent))
        raise InputError(Problem("file not found", file=src, expected="a predictions file (JSON Lines)",
                                 hint=hint)) from None
    except IsADirectoryError:
        raise InputError(Problem("is a directory", file=src,
                                 expected="a predictions file (JSON Lines, optionally gzip)")) from None
    except OSError as e:
        if path.is_dir():
            raise InputError(Problem("is a directory", file=src,
                                     expected="a predictions file (JSON Lines, optionally gzip)")) from None
        raise InputError(Problem(f"cannot read the file: {e.strerror or e}", file=src)) from None
    data = raw
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise InputError(Problem(f"truncated or corrupt gzip data ({e})", file=src,
                                     expected="a complete gzip file (re-create or re-download it)")) from None
    elif path.suffix.lower() == ".gz":
        notes.append("the file name ends in .gz but the content is not gzip-compressed; read as plain text")
    if data.startswith(_BOM):
        data = data[len(_BOM):]
        notes.append("stripped a UTF-8 byte-order mark at the start of the file")
    for magic, kind in _OTHER_FORMATS.items():
        if data.startswith(magic):
            raise InputError(Problem(f"the file is {kind}", file=src,
                                     expected="JSON Lines in UTF-8, optionally gzip-compressed"))
    if data[257:262] == b"ustar":  # a tar header's magic (a .tar.gz of the predictions file)
        raise InputError(Problem("the file is a tar archive", file=src,
                                 expected="the JSON Lines file itself (optionally gzip-compressed, not tarred)"))
    return raw, data


def _parse_columnar(data: bytes, gold: Gold, require: Sequence[str], renormalize: bool = False):
    """See :func:`_columnar`; any decoding surprise (bad UTF-8 inside a key or value) means "not clean"."""
    import pyarrow as pa

    try:
        return _columnar(data, gold, require, renormalize)
    except (UnicodeDecodeError, ValueError, pa.ArrowException):
        return None


def _columnar(data: bytes, gold: Gold, require: Sequence[str], renormalize: bool):
    """(records, gold index, values, notes) for a clean file, parsed by Arrow's multi-threaded JSON reader
    and checked column-wise; None at the first sign of anything unusual, and the line-by-line path then
    parses the file again and names every problem.

    "Clean" means: one object per line, each line starting with ``{`` (no blank lines, CR or BOM left),
    every line with the same known keys and no null, valid UTF-8, ids exactly the gold ids (any order, no
    duplicates), labels of the taxonomy, probabilities finite, >= 0 and summing to 1 within ``SUM_TOL`` (or
    to anything but 0 with ``renormalize``), finite V/A/D numbers. Arrow refuses a key given twice, but
    accepts a few things JSON does not (NaN, two objects on one line, bad UTF-8 inside a string); the
    checks below send those to the slow path.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if not data or b"\r" in data or b"\n\n" in data or b"null" in data or b"NaN" in data or b"Infinity" in data:
        return None
    n_lines = data.count(b"\n") + (not data.endswith(b"\n"))
    # Every line starts with "{" (a raw newline cannot occur inside a JSON string), so every line holds at
    # least one object; with as many rows as lines, each holds exactly one. Arrow skips whitespace-only
    # lines and splits "{...}{...}" into two rows, which together could otherwise balance out.
    if data[:1] != b"{" or data.count(b"\n{") + 1 != n_lines:
        return None
    try:
        table = pj.read_json(pa.py_buffer(data))
        names = table.column_names  # decodes the key names: bad UTF-8 in a key raises here
        table.validate(full=True)  # bad UTF-8 inside a string value raises here
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if (table.num_rows != n_lines or table.num_rows != len(gold) or "id" not in names or len(names) < 2
            or not _KEYSET.issuperset(names) or any(table.column(c).null_count for c in names)):
        return None
    if any(not any(s in names for s in SATISFIED_BY[f]) for f in require):
        return None
    n, tax = table.num_rows, gold.taxonomy
    id_col = table.column("id")
    if not pa.types.is_string(id_col.type):
        return None
    # ids stay in Arrow: one comparison (the usual file, in gold order) or one hash lookup, no Python strings
    gold_ids = gold.ids_arrow
    if id_col.equals(pa.chunked_array([gold_ids], pa.string())):
        gidx = np.arange(n, dtype=np.int64)
    else:
        found = pc.index_in(id_col, value_set=gold_ids)
        if found.null_count or pc.count_distinct(found).as_py() != n:
            return None
        gidx = found.to_numpy(zero_copy_only=False).astype(np.int64)
    values: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name in (*FIELDS[:1], *(f for f in FIELDS[1:] if f in names)):  # the slow path's order (notes)
        if name not in names:
            continue
        col = table.column(name)
        if name == "label":
            if not pa.types.is_string(col.type):
                return None
            enc = pc.dictionary_encode(col).combine_chunks()
            lookup = np.array([tax.index.get(x, -1) for x in enc.dictionary.to_pylist()], dtype=np.int64)
            values[name] = lookup[enc.indices.to_numpy(zero_copy_only=False)]
            if (values[name] < 0).any():
                return None
        elif name in _MATRIX_FIELDS:
            if not pa.types.is_struct(col.type):
                return None
            col = col.combine_chunks()
            mat = np.zeros((n, len(tax)))
            for field in col.type:
                j = tax.index.get(field.name)
                if j is None or not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
                    return None
                mat[:, j] = pc.fill_null(col.field(field.name), 0).to_numpy(zero_copy_only=False)
            if not np.isfinite(mat).all() or (mat < 0).any():
                return None
            sums = mat.sum(axis=1)
            if (sums == 0).any() or not renormalize and (np.abs(sums - 1) > SUM_TOL).any():
                return None
            values[name] = _rescale(name, mat, sums, np.ones(n, dtype=bool), notes)
        elif name in DIMENSIONS:
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                return None
            values[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
            if not np.isfinite(values[name]).all():
                return None
    pos = np.arange(n)
    # nothing is reported after this point, so the records' ids (for messages) stay an Arrow column
    rec = _Records(pos + 1, id_col, {name: (pos, None) for name in FIELDS if name in names})
    return rec, gidx, values, notes


def _parse_fast(lines: list[bytes]) -> tuple[list | None, None]:
    """Every line parsed in one C-level pass, or (None, None) when any line fails (blank or invalid)."""
    try:
        return list(map(orjson.loads, lines)), None
    except orjson.JSONDecodeError:
        return None, None


def _parse_slow(lines: list[bytes], problems: _Problems) -> tuple[list, list[int]]:
    """Parse line by line, skipping blank lines and reporting each line that is not JSON."""
    objs, linenos = [], []
    loads = orjson.loads
    for i, raw in enumerate(lines, 1):
        try:
            objs.append(loads(raw))
        except orjson.JSONDecodeError as e:
            if raw.strip():
                problems.add(*_json_problem(raw, e), line=i)
        else:
            linenos.append(i)
    return objs, linenos


def _json_problem(raw: bytes, e: orjson.JSONDecodeError) -> tuple[str, str]:
    """(found, expected) for a line orjson rejected: bad UTF-8, or the parser's message and where."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as u:
        bad = raw[u.start:u.start + 4]
        return (f"bytes that are not valid UTF-8 at byte {u.start + 1} ({bad!r})",
                "UTF-8 text (re-save the file as UTF-8)")
    msg = getattr(e, "msg", str(e))
    near = text[max(0, e.pos - 12):e.pos + 12].strip()
    found = f"invalid JSON: {msg} at column {e.pos + 1}" + (f" near {near!r}" if near else "")
    stripped = text.strip()
    expected = _ONE_OBJECT
    if "\x00" in text:
        expected += "; NUL bytes suggest UTF-16: save the file as UTF-8"
    elif stripped.startswith("{'") or ": '" in stripped:
        expected += "; JSON strings need double quotes"
    elif "NaN" in text or "Infinity" in text or "infinity" in msg:
        expected += "; NaN and Infinity are not valid (and not valid predictions)"
    elif "after document" in msg:
        expected += "; put each object on its own line"
    elif stripped.startswith("["):
        expected += "; not a JSON array"
    elif raw.startswith(_BOM):
        expected += "; a byte-order mark inside the file (concatenated files?)"
    elif re.match(r"[\w\"'.:/-]+\s*[,;\t]", stripped):
        expected += "; this looks like CSV or TSV: write one JSON object per line (JSON Lines)"
    return found, expected


_SPACED_COLON = re.compile(rb'"\s+:')


def _check_duplicate_keys(lines: list[bytes], objs: list, linenos: list[int] | None,
                          problems: _Problems) -> None:
    """Report every key given twice in one object (orjson, like most parsers, silently keeps the last).

    A cheap exact test first: in JSON text a ``"`` directly followed by ``:`` closes a key, or is an escaped
    quote inside a string, so with no ``"`` followed by spaces and ``:`` the count of ``":`` is at least the
    number of keys written, which is at least the number of keys parsed, with equality everywhere only when
    no key repeats. Lines where the counts differ are re-read with the standard library's hook on pairs.
    """
    sel = lines if linenos is None else [lines[i - 1] for i in linenos]
    text = np.fromiter(map(bytes.count, sel, repeat(b'":')), dtype=np.int64, count=len(sel))
    spaced = np.fromiter(map(bool, map(_SPACED_COLON.search, sel)), dtype=bool, count=len(sel))
    if not spaced.any() and int(text.sum()) == _count_keys(objs):
        return
    for i, raw in enumerate(sel):
        if not spaced[i] and text[i] == _count_keys([objs[i]]):
            continue
        oid = objs[i].get("id") if type(objs[i]) is dict else None
        for path, key, times in _duplicate_keys(raw):
            problems.add(f"duplicate key {_short(key)!r}: given {times} times in one object",
                         expected="each key at most once per object (JSON readers disagree on which value "
                                  "wins)", line=i + 1 if linenos is None else linenos[i],
                         id=oid if type(oid) is str else None, field=path)


def _count_keys(values: list) -> int:
    """Keys of all objects at any depth in ``values``, level by level (no recursion: values may nest
    1,024 deep)."""
    total = 0
    level = values
    while level:
        kinds = set(map(type, level))
        if dict not in kinds and list not in kinds:
            break
        dicts = [v for v in level if type(v) is dict]
        total += sum(map(len, dicts))
        level = [*chain.from_iterable(map(dict.values, dicts)),
                 *chain.from_iterable(v for v in level if type(v) is list)]
    return total


def _duplicate_keys(raw: bytes) -> list[tuple[str, str, int]]:
    """(path of the object, key, times given) for each repeated key in one line of valid JSON."""
    import json

    found: list[tuple[dict, str, int]] = []

    def pairs_hook(pairs: list) -> dict:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            counts: dict[str, int] = {}
            for k, _ in pairs:
                counts[k] = counts.get(k, 0) + 1
            found.extend((obj, k, c) for k, c in counts.items() if c > 1)
        return obj

    try:
        top = json.loads(raw, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        # orjson read the line, so it is JSON; the standard library refuses only what nests deeper than
        # its recursion limit or an integer longer than 4,300 digits: a value no field accepts, reported
        # as such on this line already.
        return []
    if not found:
        return []
    paths: dict[int, str] = {}
    stack: list[tuple[object, str]] = [(top, "")]
    while stack:
        v, path = stack.pop()
        if type(v) is dict:
            paths[id(v)] = path
            stack.extend((x, f"{path}.{k}" if path else k) for k, x in v.items())
        elif type(v) is list:
            stack.extend((x, f"{path}[{i}]") for i, x in enumerate(v))
    return [(f"{paths[id(o)]}.{k}" if paths.get(id(o)) else k, k, c) for o, k, c in found]


# -- structure: objects -> records (one per prediction line) with columns per field --------------------


@dataclass
class _Records:
    """Prediction lines: line numbers, raw ids, and per field (record positions, raw values)."""

    lines: np.ndarray
    ids: list  # (the clean columnar path: the Arrow id column)
    cols: dict[str, tuple[np.ndarray, list]]

    def where(self, r: int) -> dict:
        x = self.ids[r]
        return {"line": int(self.lines[r]), "id": x if type(x) is str else None}


def _structure_fast(objs: list, linenos: list[int] | None) -> _Records | None:
    """Column-wise split when every object has exactly the first object's (valid) keys, else None."""
    if not objs or type(objs[0]) is not dict:
        return None
    keys = tuple(objs[0])
    if "id" not in objs[0] or len(keys) < 2 or not _KEYSET.issuperset(keys):
        return None
    try:
        # itemgetter raises for a non-object (TypeError) or a missing key (KeyError); with equal lengths,
        # every object then has exactly these keys.
        cols = {k: list(map(itemgetter(k), objs)) for k in keys}
    except (KeyError, TypeError):
        return None
    if set(map(len, objs)) != {len(keys)}:
        return None
    n = len(objs)
    lines = np.arange(1, n + 1) if linenos is None else np.asarray(linenos, dtype=np.int64)
    pos = np.arange(n)
    ids = cols.pop("id")
    return _Records(lines, ids, {k: (pos, cols[k]) for k in FIELDS if k in cols})


def _structure_slow(objs: list, linenos: list[int] | None, problems: _Problems) -> _Records:
    """Object by object: report non-objects, header lines, missing ids, unknown keys and empty lines."""
    if linenos is None:
        linenos = range(1, len(objs) + 1)
    lines, ids = [], []
    cols: dict[str, tuple[list, list]] = {k: ([], []) for k in FIELDS}
    for i, (obj, ln) in enumerate(zip(objs, linenos, strict=True)):
        if type(obj) is not dict:
            problems.add(_describe(obj), expected=_ONE_OBJECT, line=ln)
            continue
        unknown = [k for k in obj if k not in _KEYSET]
        has_id = "id" in obj
        if _looks_like_header(obj, unknown, has_id, first=i == 0):
            problems.add(f"looks like a header: an object with keys {_short(list(obj))}"
                         + ("" if has_id else " and no 'id'"),
                         expected="only prediction lines; the format has no header line, remove it", line=ln)
            continue
        r = len(lines)
        lines.append(ln)
        oid = obj.get("id", _MISSING)
        ids.append(oid)
        shown = oid if type(oid) is str else None
        if not has_id:
            problems.add("no 'id'", expected="the id of a benchmark item (a string)", line=ln, field="id")
        for k in unknown:
            problems.add(f"unknown key {_short(k)!r}", expected=f"one of {list(KEYS)}", line=ln, id=shown,
                         field=k, hint=_KEY_ALIASES.get(k) or did_you_mean(k, KEYS))
        n_fields = 0
        for k in FIELDS:
            if k in obj:
                cols[k][0].append(r)
                cols[k][1].append(obj[k])
                n_fields += 1
        if not n_fields and not unknown:
            problems.add("no prediction", expected=f"at least one of {list(FIELDS)}", line=ln, id=shown)
    return _Records(np.asarray(lines, dtype=np.int64), ids,
                    {k: (np.asarray(p, dtype=np.int64), v) for k, (p, v) in cols.items() if p})


def _looks_like_header(obj: dict, unknown: list[str], has_id: bool, first: bool) -> bool:
    """A metadata line: header keys without an id (or, on the first line, without a prediction field), or
    nothing but unknown keys without a close known key."""
    if any(k in _HEADER_KEYS for k in unknown):
        return not has_id or first and not any(k in obj for k in FIELDS)
    return (not has_id and bool(unknown) and len(unknown) == len(obj)
            and not any(_KEY_ALIASES.get(k) or did_you_mean(k, KEYS) for k in unknown))


# -- ids -----------------------------------------------------------------------------------------------


def _match_ids(rec: _Records, gold: Gold, problems: _Problems) -> np.ndarray:
    """Gold index per record (-1 where the id is bad), reporting bad, unknown and duplicate ids."""
    ids, n, n_gold = rec.ids, len(rec.ids), len(gold)
    if n == n_gold and ids == gold.ids.tolist():  # the usual file: every item, in gold order
        return np.arange(n, dtype=np.int64)
    try:
        gidx = np.fromiter(map(gold.id_index.__getitem__, ids), dtype=np.int64, count=n)
    except (KeyError, TypeError):  # an unknown, missing or non-string id: find and name each below
        pass
    else:
        if not n or np.bincount(gidx, minlength=n_gold).max() <= 1:
            return gidx
    return _match_ids_slow(rec, gold, problems)


def _match_ids_slow(rec: _Records, gold: Gold, problems: _Problems) -> np.ndarray:
    index = gold.id_index
    gidx = np.full(len(rec.ids), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    unknown: list[int] = []
    for r, x in enumerate(rec.ids):
        if x is _MISSING:
            continue  # reported with the line's structure
        ln = int(rec.lines[r])
        if type(x) is not str:
            hint = f'write it as a string: "{x}"' if type(x) in _NUMBER else None
            problems.add(_describe(x), expected="the id of a benchmark item (a string)", line=ln, field="id",
                         hint=hint)
            continue
        if not x.strip():
            problems.add("empty id" if not x else f"blank id {x!r}", expected="the id of a benchmark item",
                         line=ln, field="id")
            continue
        if x in seen:
            problems.add(f"duplicate id: already given on line {seen[x]}", expected="one line per id",
                         line=ln, id=x, field="id")
            continue
        seen[x] = ln
        j = index.get(x)
        if j is None:
            unknown.append(r)
        else:
            gidx[r] = j
    if unknown:
        _report_unknown_ids(rec, unknown, gold, problems, matched=bool((gidx >= 0).any()))
    return gidx


def _report_unknown_ids(rec: _Records, unknown: list[int], gold: Gold, problems: _Problems,
                        matched: bool) -> None:
    """One problem per unknown id, with a did-you-mean: a normalised match (case, spaces, folder, audio
    suffix) for every id, and a fuzzy match for the first few ids when the gold set is small."""
    norm = {}
    for g in gold.ids.tolist():
        norm.setdefault(_norm_id(g), g)
    fuzzy = 5 if len(gold) <= 20_000 else 0
    if not matched:
        example = f"; the gold set has e.g. {gold.ids[0]!r}" if len(gold) else "; the gold set is empty"
        problems.add(f"none of the {len(rec.ids)} ids matches a gold id (the file has e.g. "
                     f"{rec.ids[unknown[0]]!r}{example})",
                     expected=f"ids of the benchmark's items ({gold.source or 'gold'})",
                     hint="wrong benchmark or id scheme?")
    for r in unknown:
        x = rec.ids[r]
        close = norm.get(_norm_id(x))
        if close is not None:
            hint = f"did you mean {close!r}?"
        elif fuzzy:
            fuzzy -= 1
            hint = did_you_mean(x, gold.ids.tolist())
        else:
            hint = None
        problems.add("unknown id", expected="the id of a benchmark item", line=int(rec.lines[r]), id=x,
                     field="id", hint=hint)


def _norm_id(x: str) -> str:
    x = x.strip().lower().replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = x.rpartition(".")
    return stem if dot and ext in ("wav", "flac", "mp3", "ogg", "opus", "m4a", "json", "txt") else x


# -- fields --------------------------------------------------------------------------------------------


def _check_labels(vals: list, pos: np.ndarray, rec: _Records, tax: Taxonomy,
                  problems: _Problems) -> np.ndarray:
    """Taxonomy index per value (-1 where bad), reporting non-strings and unknown labels."""
    try:
        return np.fromiter(map(tax.index.__getitem__, vals), dtype=np.int64, count=len(vals))
    except (KeyError, TypeError):
        pass
    out = np.full(len(vals), -1, dtype=np.int64)
    for i, v in enumerate(vals):
        if type(v) is str and v in tax.index:
            out[i] = tax.index[v]
        else:
            problems.add(*_label_problem(v, tax), field="label", **rec.where(pos[i]))
    return out


def _label_problem(v, tax: Taxonomy) -> tuple[str, str, str | None]:
    """(found, expected, hint) for a label value that is not a label of ``tax``."""
    expected = f"one of {tax.name}: {list(tax.labels)}"
    if type(v) is not str:
        hint = None
        if type(v) is int and 0 <= v < len(tax):
            hint = f"give the name, not the class index: {tax.labels[v]!r}?"
        elif v is None:
            hint = "omit the key rather than writing null"
        return _describe(v), expected, hint
    fixed = v.strip().lower()
    if fixed in tax.index:
        why = "labels are lower-case" if fixed == v.lower() else "labels have no surrounding spaces"
        return f"unknown label {_short(v)!r}", expected, f"{why}: did you mean {fixed!r}?"
    return f"unknown label {_short(v)!r}", expected, did_you_mean(v, tax.labels)


def _check_matrix(name: str, vals: list, pos: np.ndarray, rec: _Records, tax: Taxonomy, problems: _Problems,
                  renormalize: bool, notes: list[str]) -> np.ndarray:
    """(m, K) rows in taxonomy order from label->value objects; reports bad rows, renormalises if asked."""
    m, k = len(vals), len(tax)
    word = "probabilities" if name == "probs" else "shares"
    bad = np.zeros(m, dtype=bool)
    if set(map(type, vals)) - {dict}:
        for i, v in enumerate(vals):
            if type(v) is not dict:
                bad[i] = True
                hint = None
                if type(v) is list and len(v) == k:
                    hint = f'a list is ambiguous: write {{"{tax.labels[0]}": p, ...}}'
                elif v is None:
                    hint = "omit the key rather than writing null"
                problems.add(_describe(v), expected=f"an object mapping labels of {tax.name} to {word}",
                             field=name, hint=hint, **rec.where(pos[i]))
        vals = [v if type(v) is dict else {} for v in vals]
    lens = np.fromiter(map(len, vals), dtype=np.int64, count=m)
    keys = list(chain.from_iterable(vals))
    entries = list(chain.from_iterable(map(dict.values, vals)))
    row = np.repeat(np.arange(m), lens)
    col = np.fromiter(map(tax.index.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))
    ok = col >= 0
    for e in np.flatnonzero(~ok)[:MAX_PROBLEMS]:
        bad[row[e]] = True
        problems.add(*_label_problem(keys[e], tax), field=name, **rec.where(pos[row[e]]))
    if set(map(type, entries)) - {int, float}:
        is_num = np.fromiter((type(v) in _NUMBER for v in entries), dtype=bool, count=len(entries))
        for e in np.flatnonzero(~is_num):
            bad[row[e]] = True
            problems.add(_describe(entries[e]), expected="a number", field=f"{name}.{keys[e]}",
                         hint=_number_hint(entries[e]), **rec.where(pos[row[e]]))
        entries = [v if num else 0.0 for v, num in zip(entries, is_num.tolist(), strict=True)]
    mat = np.zeros((m, k))
    mat[row[ok], col[ok]] = np.array(entries, dtype=np.float64)[ok]

    finite = np.isfinite(mat).all(axis=1)
    negative = (mat < 0).any(axis=1) & finite
    for i in np.flatnonzero(~bad & (~finite | negative)):
        neg = {tax.labels[j]: float(mat[i, j]) for j in np.flatnonzero(~np.isfinite(mat[i]) | (mat[i] < 0))}
        problems.add(f"negative or non-finite {word}: {neg}", expected="finite values >= 0", field=name,
                     **rec.where(pos[i]))
    bad |= ~finite | negative
    sums = mat.sum(axis=1)
    zero = ~bad & (sums == 0)
    for i in np.flatnonzero(zero):
        problems.add(f"{word} sum to 0", field=name, **rec.where(pos[i]),
                     expected=f"{word} summing to 1 (an all-zero row cannot be renormalised)")
    off = ~bad & ~zero & (np.abs(sums - 1) > SUM_TOL)
    if off.any() and not renormalize:
        for i in np.flatnonzero(off):
            problems.add(f"{word} sum to {sums[i]:.9g}", field=name, **rec.where(pos[i]),
                         expected=f"a sum of 1 within {SUM_TOL:g}, or --renormalize "
                                  "to rescale such rows")
        return mat
    return _rescale(name, mat, sums, ~bad & ~zero, notes)


def _rescale(name: str, mat: np.ndarray, sums: np.ndarray, ok: np.ndarray, notes: list[str]) -> np.ndarray:
    """Divide the ``ok`` rows of ``mat`` by their ``sums`` (all non-zero), noting rows off 1 by more than
    :data:`NOTE_TOL`; shared by the Arrow path and the per-line path so both give the same numbers and
    notes."""
    dev = np.abs(sums - 1)
    far = ok & (dev > SUM_TOL)
    near = ok & (dev > NOTE_TOL) & ~far
    if far.any():
        notes.append(f"renormalised {int(far.sum())} {name} row(s) whose sum was off 1 by more than "
                     f"{SUM_TOL:g} (sums from {sums[far].min():.6g} to {sums[far].max():.6g})")
    if near.any():
        notes.append(f"rescaled {int(near.sum())} {name} row(s) summing to 1 within {SUM_TOL:g} "
                     f"(sums from {sums[near].min():.6g} to {sums[near].max():.6g})")
    scale = np.where(ok & (sums != 1), sums, 1.0)
    if (scale != 1).any():
        mat = mat / scale[:, None]
    return mat


def _check_numbers(name: str, vals: list, pos: np.ndarray, rec: _Records, problems: _Problems) -> np.ndarray:
    """Floats from JSON numbers, reporting anything else (a bool is not a number) and non-finite values."""
    if set(map(type, vals)) - {int, float}:
        out = np.full(len(vals), np.nan)
        for i, v in enumerate(vals):
            if type(v) in _NUMBER:
                out[i] = v
            else:
                problems.add(_describe(v), expected="a number", field=name, hint=_number_hint(v),
                             **rec.where(pos[i]))
    else:
        out = np.array(vals, dtype=np.float64)
    for i in np.flatnonzero(~np.isfinite(out) & ~np.isnan(out)):
        problems.add(f"the number {out[i]!r}", expected="a finite number", field=name, **rec.where(pos[i]))
    return out


def _number_hint(v) -> str | None:
    if type(v) is str:
        try:
            float(v)
        except ValueError:
            return None
        return "write the number without quotes"
    return "omit the key rather than writing null" if v is None else None


def _check_required(require: Sequence[str], rec: _Records, problems: _Problems) -> None:
    """Every record must carry each required field (or a field that satisfies it)."""
    for f in dict.fromkeys(require):
        has = np.zeros(len(rec.ids), dtype=bool)
        for s in SATISFIED_BY[f]:
            if s in rec.cols:
                has[rec.cols[s][0]] = True
        alt = [s for s in SATISFIED_BY[f] if s != f]
        expected = f"{f!r} on every line for the task being scored" + (f" (or {alt[0]!r})" if alt else "")
        if len(has) > 1 and not has.any():  # one message, not one per line
            problems.add(f"none of the {len(has)} lines has {f!r}", expected=expected, field=f)
            continue
        for r in np.flatnonzero(~has):
            problems.add(f"no {f!r}", expected=expected, field=f, **rec.where(r))


# -- output --------------------------------------------------------------------------------------------


def _assemble(src: str, sha256: str, n_lines: int, rec: _Records, gidx: np.ndarray, values: dict,
              gold: Gold, present: np.ndarray, missing_ids: list[str], notes: list[str]) -> Predictions:
    n, k = len(gold), len(gold.taxonomy)

    def rows(name: str) -> np.ndarray:
        return gidx[rec.cols[name][0]]

    def matrix(name: str) -> np.ndarray:
        out = np.full((n, k), np.nan)
        out[rows(name)] = values[name]
        return out

    probs = matrix("probs") if "probs" in values else None
    none = np.zeros(0, dtype=np.int64)
    prow = rows("probs") if probs is not None else none
    lrow = rows("label") if "label" in values else none
    label = None
    if lrow.size or prow.size:
        label = np.full(n, -1, dtype=np.int64)
        label[prow] = np.argmax(probs[prow], axis=1) if prow.size else none  # first maximum = taxonomy order
        if lrow.size:
            differ = int(((label[lrow] != values["label"]) & _member(lrow, prow, n)).sum())
            if differ:
                notes.append(f"{differ} line(s) give a label other than the argmax of their probs; "
                             "the given label is kept")
            label[lrow] = values["label"]
        n_derived = int((~_member(prow, lrow, n)).sum())
        if n_derived:
            notes.append(f"label = argmax of probs for {n_derived} line(s) without a label "
                         "(ties -> first in taxonomy order)")
    distribution = None
    if "distribution" in values or probs is not None:
        distribution = matrix("distribution") if "distribution" in values else np.full((n, k), np.nan)
        if probs is not None:
            fill = rows("probs")
            if "distribution" in values:
                fill = fill[~_member(fill, rows("distribution"), n)]
            if fill.size:
                distribution[fill] = probs[fill]
                notes.append(f"used probs as the distribution for {fill.size} line(s) without a distribution")
    vad = {}
    for d in DIMENSIONS:
        if d in values:
            vad[d] = np.full(n, np.nan)
            vad[d][rows(d)] = values[d]
    line = np.zeros(n, dtype=np.int64)
    ok = gidx >= 0
    line[gidx[ok]] = rec.lines[ok]
    return Predictions(path=src, sha256=sha256, n_lines=n_lines, label=label, probs=probs,
                       distribution=distribution, vad=vad, present=present, missing_ids=missing_ids,
                       notes=notes, line=line)


def _member(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Mask over ``a`` (indices < n): which are also in ``b``."""
    mask = np.zeros(n, dtype=bool)
    mask[b] = True
    return mask[a]


class _Sha256:
    """``"sha256:<hex>"`` of some bytes, computed in a background thread when they are large."""

    def __init__(self, data: bytes):
        self._hex: str | None = None
        self._thread = None
        if len(data) < 1 << 20:
            self._hash(data)
        else:
            self._thread = threading.Thread(target=self._hash, args=(data,), daemon=True)
            self._thread.start()

    def _hash(self, data: bytes) -> None:
        self._hex = hashlib.sha256(data).hexdigest()

    def result(self) -> str:
        if self._thread is not None:
            self._thread.join()
        return f"sha256:{self._hex}"


# -- problems ------------------------------------------------------------------------------------------


class _Problems:
    """Collects problems for one file: keeps the first MAX_PROBLEMS, counts all."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []
        self.count = 0

    def add(self, found: str, expected: str | None = None, hint: str | None = None, *,
            line: int | None = None, id: str | None = None, field: str | None = None) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(found, expected=expected, file=self.file, line=line, id=id, field=field,
                                      hint=hint))

    def raise_if_any(self) -> None:
        if not self.count:
            return
        items = sorted(self.items, key=lambda p: p.line or 0)  # stable: file-level problems first
        summary = f"{self.count} problem{'s' if self.count != 1 else ''} in predictions file {self.file}"
        if self.count > len(items):
            summary += f" (the first {len(items)} are kept)"
        raise InputError(items, summary=summary)


def _short(x, n: int = 60) -> str:
    s = x if isinstance(x, str) else str(x)
    return s if len(s) <= n else s[:n - 3] + "..."


def _describe(v) -> str:
    """What a JSON value is, for a message: ``null``, ``true (a boolean)``, ``the number 3``, ..."""
    if v is None:
        return "null"
    if type(v) is bool:
        return f"{str(v).lower()} (a boolean)"
    if type(v) in _NUMBER:
        return f"the number {v!r}"
    if type(v) is str:
        return f"the string {_short(v)!r}"
    kind = "a list" if type(v) is list else "an object"
    return f"{kind} {_preview(v)}"


def _preview(v, n: int = 60) -> str:
    """The start of ``v`` as compact JSON, at most ``n`` characters; iterative, so a value nested hundreds
    deep (orjson reads up to 1024 levels but writes only 254) is described, not a crash."""
    out: list[str] = []
    size = 0
    stack: list[tuple[bool, object]] = [(False, v)]  # (is literal text, value)
    while stack and size <= n:
        literal, x = stack.pop()
        if literal:
            piece = x
        elif type(x) is dict:
            piece = "{"
            todo = [(True, "}")]
            for i, (k, val) in enumerate(reversed(x.items())):
                todo += [(False, val), (True, orjson.dumps(k).decode() + ":")] + ([(True, ",")] if i < len(x) - 1
                                                                                   else [])
            stack += todo
        elif type(x) is list:
            piece = "["
            todo = [(True, "]")]
            for i, val in enumerate(reversed(x)):
                todo += [(False, val)] + ([(True, ",")] if i < len(x) - 1 else [])
            stack += todo
        else:
            piece = orjson.dumps(x).decode()
        out.append(piece)
        size += len(piece)
    return _short("".join(out) + ("..." if stack else ""), n)
