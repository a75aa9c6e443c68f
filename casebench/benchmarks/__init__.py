"""Benchmarks: versioned specs (YAML) naming a gold table, a taxonomy, tasks and splits.

A spec is one ``<name>.yaml`` in this folder (the registry is the folder), or any YAML path. Gold comes
from a table (CSV or Parquet) whose columns are those of :func:`load_gold`; ``gold:`` in a spec is a path
relative to the spec file. An ad-hoc benchmark built straight from a curator's table is
:func:`adhoc_benchmark`.

Two optional fields tell ``casebench predict`` where the audio is: a ``path`` column in the gold (and train)
table (audio path relative to the table file), or ``dataset:``, a mapping with ``hub`` (a Hugging Face
dataset id) and ``revision`` (a commit or tag: a benchmark pins its data), or ``path`` (a folder written by
``casebench publish``, relative to the spec). ``train:`` names a train table (same columns as the gold,
labels included, relative to the spec): what probes are fitted on and train-prior constants come from.

>>> bench = get_benchmark("casebench-mini")
>>> bench.taxonomy.name, [t.kind for t in bench.tasks]
('ekman7', ['categorical', 'distribution', 'dimensional'])
>>> gold = bench.load_gold()
>>> int(gold.is_conflict.sum()) > 0
True
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from casebench.errors import (
    ConfigError,
    InputError,
    Problem,
    SpecError,
    did_you_mean,
    path_error,
    separator_hint,
    syntax_problem,
    unknown_name,
)
from casebench.taxonomy import Taxonomy, as_taxonomy

TASK_KINDS = ("categorical", "distribution", "dimensional")
SPLIT_KINDS = ("all", "conflict", "congruent", "cross-corpus", "subset")
DIMENSIONS = ("valence", "arousal", "dominance")
DEGRADED_SEP = "@"  # casebench.degrade.SEP: the id of a degraded copy is <clip_id>@<condition>


@dataclass(frozen=True)
class Task:
    """One scored task: ``categorical`` (target = acoustic label), ``distribution`` or ``dimensional``."""

    name: str
    kind: str
    target: str = "acoustic_label"
    dimensions: tuple[str, ...] = DIMENSIONS
    main_metric: str | None = None


@dataclass(frozen=True)
class Split:
    """A named set of items: ``all``, ``conflict``, ``congruent``, or a ``cross-corpus``/``subset`` set
    selected by gold column ``column`` equal to ``value`` (e.g. ``corpus == crema-d``)."""

    name: str
    kind: str
    column: str | None = None
    value: str | None = None


@dataclass
class Gold:
    """The gold items of a benchmark, as arrays in one fixed item order (the gold table's order).

    ``acoustic``/``semantic`` are taxonomy indices with -1 where unknown; ``distribution`` is (n, K) in
    taxonomy order with NaN rows where unknown; ``vad`` maps each dimension to floats with NaN where unknown.
    """

    ids: np.ndarray
    taxonomy: Taxonomy
    acoustic: np.ndarray | None = None
    semantic: np.ndarray | None = None
    speaker: np.ndarray | None = None
    distribution: np.ndarray | None = None
    vad: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    def __len__(self) -> int:
        ids = self.__dict__.get("ids")
        return len(self.ids_arrow if ids is None else ids)

    def __getattr__(self, name: str):
        # Only reached for attributes not set: ``read_gold`` leaves ``ids`` unset and keeps them in Arrow
        # (``ids_arrow``); a million Python strings are made the first time something asks for ``ids``.
        if name == "ids" and "ids_arrow" in self.__dict__:
            ids = self.__dict__["ids"] = _objects(self.__dict__["ids_arrow"])
            return ids
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @functools.cached_property
    def ids_arrow(self):
        """The ids as one Arrow string array (``read_gold`` keeps the one it read): the predictions parser
        matches ids with Arrow, without a million Python strings. Raises ArrowException for non-string ids."""
        import pyarrow as pa

        return pa.array(self.ids, pa.string())

    @functools.cached_property
    def id_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.ids.tolist())}

    @functools.cached_property
    def speaker_codes(self) -> np.ndarray | None:
        """Dense int code per item of its speaker (the bootstrap's clusters); an item whose speaker is
        unknown is a cluster of its own (nothing says it shares a voice with any other item)."""
        if self.speaker is None:
            return None
        import pyarrow as pa

        speaker = np.asarray(self.speaker, dtype=object)
        try:
            return _factorize(pa.array(speaker, from_pandas=True))  # None and NaN are null: unknown speakers
        except (pa.ArrowException, TypeError):  # mixed types in the column: pandas factorizes anything
            import pandas as pd

            codes, uniques = pd.factorize(np.where(speaker == "", None, speaker))
            unknown = codes < 0
            codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
            return codes.astype(np.int64)

    def labels_of(self, target: str) -> np.ndarray | None:
        """The gold labels a categorical task scores against: ``acoustic_label`` or ``semantic_label``."""
        return {"acoustic_label": self.acoustic, "semantic_label": self.semantic}[target]

    @functools.cached_property
    def curated_conflict(self) -> np.ndarray | None:
        """The curated conflict tags of a boolean ``is_conflict`` gold column (written by ``aggregate`` with its
        agreement thresholds applied) as 1 (conflict), 0 (not) and -1 (no tag); None without the column."""
        col = self.columns.get("is_conflict")
        if col is None:
            return None
        truth = {"true": 1, "1": 1, "yes": 1, "false": 0, "0": 0, "no": 0}
        return np.array([-1 if v is None or (isinstance(v, float) and np.isnan(v)) else
                         truth.get(str(v).strip().lower().removesuffix(".0"), -1) for v in col], dtype=np.int8)

    @functools.cached_property
    def is_conflict_raw(self) -> np.ndarray:
        """True where acoustic and semantic labels are both known and differ (voice != words)."""
        if self.acoustic is None or self.semantic is None:
            return np.zeros(len(self), dtype=bool)
        return (self.acoustic >= 0) & (self.semantic >= 0) & (self.acoustic != self.semantic)

    @functools.cached_property
    def is_conflict(self) -> np.ndarray:
        """The scored conflict items: the curated ``is_conflict`` tag where the gold has one, else voice != words."""
        raw = self.is_conflict_raw
        tags = self.curated_conflict
        return raw if tags is None else np.where(tags >= 0, tags == 1, raw)

    @functools.cached_property
    def is_congruent(self) -> np.ndarray:
        """Voice and words labels agree; where the gold has curated tags, also tagged not-conflict and not
        failing the thresholds (a ``passes_thresholds`` column, when present)."""
        if self.acoustic is None or self.semantic is None:
            return np.zeros(len(self), dtype=bool)
        agree = (self.acoustic >= 0) & (self.acoustic == self.semantic)
        tags = self.curated_conflict
        if tags is None:
            return agree
        passes = self.columns.get("passes_thresholds")
        ok = np.ones(len(self), bool) if passes is None else np.array(
            [str(v).strip().lower() not in ("false", "0", "no", "0.0") for v in passes])
        return agree & np.where(tags >= 0, (tags == 0) & ok, True)

    @functools.cached_property
    def is_degraded(self) -> np.ndarray:
        """True for degraded copies of clips (``<clip_id>@<condition>``, see casebench.degrade.SEP)."""
        import pyarrow as pa

        return _degraded(pa.array(self.ids, type=pa.string(), from_pandas=True))

    def mask(self, split: Split) -> np.ndarray:
        """Boolean mask of the items in ``split`` (cached: treat it as read-only). ``all``, ``conflict`` and
        ``congruent`` hold the clean items only: degraded copies are scored in their own condition splits and
        the robustness summary."""
        cache = self.__dict__.setdefault("_masks", {})
        if split not in cache:
            cache[split] = self._mask(split)
        return cache[split]

    def _mask(self, split: Split) -> np.ndarray:
        clean = ~self.is_degraded
        if split.kind == "all":
            return clean
        if split.kind == "conflict":
            return self.is_conflict & clean
        if split.kind == "congruent":
            return self.is_congruent & clean
        col = self.columns.get(split.column)
        if col is None:
            raise ConfigError(f"split {split.name!r} selects on gold column {split.column!r}, which the gold "
                              f"table {self.source} does not have; it has {sorted(self.columns)}")
        return col.astype(str) == str(split.value)


def _factorize(arr) -> np.ndarray:
    """Dense int codes of an Arrow array in order of first appearance (as ``pandas.factorize`` numbers them);
    nulls and empty strings are unknown, each a code of its own after the known ones (see
    :attr:`Gold.speaker_codes`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    enc = pc.dictionary_encode(arr)
    n_known = len(enc.dictionary) - enc.dictionary.null_count  # an all-null column's dictionary is [null]
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    unknown = codes < 0
    codes[unknown] = n_known + np.arange(int(unknown.sum()))
    return codes


def _degraded(ids) -> np.ndarray:
    """True where an Arrow string array of ids names a degraded copy (Arrow's substring search, no Python loop)."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.match_substring(ids, DEGRADED_SEP), False).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class Benchmark:
    """A versioned benchmark spec."""

    name: str
    version: str
    taxonomy: Taxonomy
    gold_path: Path
    tasks: tuple[Task, ...]
    splits: tuple[Split, ...]
    description: str = ""
    licence: str = ""
    citation: str = ""
    corpora: tuple[str, ...] = ()
    spec_path: Path | None = None
    #: Gold columns whose groups evaluate breaks the scores down by (spec ``group_by:``); the leaderboard shows
    #: the worst group and the largest gap of each.
    group_by: tuple[str, ...] = ()
    #: Degraded conditions the leaderboard shows the clean-to-degraded drop of (spec ``robustness:``).
    robustness: tuple[str, ...] = ()
    #: Train table (spec ``train:``, same columns as the gold): what probes are fitted on.
    train_path: Path | None = None
    #: Where the audio is, when not in a ``path`` column (spec ``dataset:``): ``{"hub": id, "revision": rev}``
    #: or ``{"path": published folder}`` (absolute once loaded).
    dataset: dict[str, str] | None = None
    #: A train prior carried in the spec (``prior:``: label counts, mean distribution, mean V/A/D), for
    #: benchmarks that ship no train table; see :func:`casebench.scoring.prior_from_spec`.
    prior: dict | None = None

    def load_gold(self) -> Gold:
        """The gold items; ConfigError when the spec pins ``dataset.fingerprint`` and the gold differs."""
        gold = load_gold(self.gold_path, self.taxonomy)
        pinned = (self.dataset or {}).get("fingerprint")
        if pinned and gold.fingerprint != pinned:
            raise ConfigError(f"the gold table {self.gold_path} has fingerprint {gold.fingerprint}, but the "
                              f"benchmark spec {self.spec_path or self.name} pins dataset.fingerprint {pinned}: "
                              "the gold changed since the spec was written (restore the gold, or update the spec "
                              "and the benchmark version)")
        for split in self.splits:  # a misspelt value in the spec would score an empty split without a word
            if split.column is not None and not gold.mask(split).any():
                values = sorted({str(v) for v in gold.columns[split.column]})
                hint = did_you_mean(str(split.value), values)
                raise ConfigError(f"{self.spec_path or self.name}: split {split.name!r} selects {split.column} == "
                                  f"{split.value!r}, which no item of the gold table {self.gold_path} has; expected "
                                  f"one of {values[:20]}" + (f" ({hint})" if hint else ""))
        return gold

    def load_train(self) -> Gold:
        """The train table as a :class:`Gold` (ConfigError when the spec has no ``train:``)."""
        if self.train_path is None:
            raise ConfigError(f"benchmark {self.name!r} has no train split (spec field 'train:'); give a "
                              "train workspace (--train WORKSPACE)")
        return load_gold(self.train_path, self.taxonomy)

    def task(self, kind: str) -> Task | None:
        return next((t for t in self.tasks if t.kind == kind), None)


def _registry_dir():
    return resources.files(__name__)


def list_benchmarks() -> list[str]:
    """Names of the built-in benchmarks."""
    return sorted(p.name[:-5] for p in _registry_dir().iterdir() if p.name.endswith(".yaml"))


def get_benchmark(name_or_path: str | Path) -> Benchmark:
    """A built-in benchmark by name, or a spec YAML by path."""
    p = Path(name_or_path)
    names = list_benchmarks()
    looks_like_path = p.suffix in (".yaml", ".yml") or os.sep in str(name_or_path)
    if str(name_or_path) not in names and (looks_like_path or p.exists()):
        if p.is_dir():
            raise ConfigError(f"{p}: is a folder; expected a benchmark spec file (YAML) or a built-in name {names}")
        if not p.exists():
            raise ConfigError(f"{p}: no such benchmark spec file; expected a spec YAML path or a built-in name "
                              f"{names}")
        return load_spec(p)
    if str(name_or_path) not in names:
        raise unknown_name("benchmark", str(name_or_path), names)
    with resources.as_file(_registry_dir() / f"{name_or_path}.yaml") as spec:
        return load_spec(Path(spec))


def load_spec(path: Path) -> Benchmark:
    """Parse and check a benchmark spec YAML (:class:`casebench.benchmarks.spec.BenchmarkSpec`: unknown keys
    and unknown metric names are refused); SpecError names the file and every bad key."""
    from casebench.benchmarks.spec import parse_spec

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text("utf-8"))
    except OSError as e:
        raise path_error(e, path, action="read the benchmark spec") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise SpecError(syntax_problem(path, e, "a benchmark spec (YAML)"),
                        summary=f"bad benchmark spec {path}") from None
    spec = parse_spec(doc, str(path))
    taxonomy = as_taxonomy(spec.taxonomy)
    if spec.prior is not None:  # the prior's labels must be the taxonomy's (never dropped silently)
        bad = [Problem("not a label of " + taxonomy.name, expected=f"one of {list(taxonomy.labels)}", file=str(path),
                       field=f"prior.{part}.{label}", hint=did_you_mean(label, taxonomy.labels))
               for part in ("labels", "distribution") for label in (getattr(spec.prior, part) or {})
               if label not in taxonomy.labels]
        if bad:
            raise SpecError(bad, summary=f"bad benchmark spec {path}")
    tasks = tuple(Task(name=t.name or t.kind, kind=t.kind, target=t.target,
                       dimensions=tuple(t.dimensions or DIMENSIONS), main_metric=t.main_metric) for t in spec.tasks)
    splits = []
    for s in spec.splits:
        if isinstance(s, str):
            splits.append(Split(name=s, kind=s))
        elif s.kind in ("cross-corpus", "subset") and not s.column:
            splits.append(Split(name=s.name, kind=s.kind, column="corpus", value=s.value or s.name))
        else:
            splits.append(Split(name=s.name, kind=s.kind, column=s.column, value=s.value))

    def resolve(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else (path.parent / p).resolve()

    dataset = None
    if spec.dataset is not None:
        dataset = {k: v for k, v in spec.dataset.model_dump().items() if v is not None}
        if "path" in dataset:
            dataset["path"] = str(resolve(dataset["path"]))
    return Benchmark(name=spec.name, version=spec.version, taxonomy=taxonomy, gold_path=resolve(spec.gold),
                     tasks=tasks, splits=tuple(splits), description=spec.description, licence=spec.licence,
                     citation=spec.citation, corpora=tuple(spec.corpora), spec_path=path,
                     group_by=tuple(spec.group_by), robustness=tuple(spec.robustness),
                     train_path=resolve(spec.train) if spec.train else None, dataset=dataset,
                     prior=spec.prior.model_dump(exclude_none=True) if spec.prior else None)


def adhoc_benchmark(gold_path: str | Path, taxonomy: str | Taxonomy, name: str | None = None) -> Benchmark:
    """A benchmark straight from a curator's gold table (CSV or Parquet): tasks and splits follow the columns.

    Categorical when ``acoustic_label`` is present, distribution when every taxonomy class has a column,
    dimensional when any of valence/arousal/dominance is; conflict/congruent splits when ``semantic_label``
    is present; one ``cross-corpus`` split per value of a ``corpus`` column. The benchmark's ``corpora`` are
    the values of that column and the workspaces the gold was published from (its ``<gold>.lineage.json``,
    written by ``casebench publish``), so a model that declares one of them in ``trained_on`` is marked not
    zero-shot.
    """
    tax = as_taxonomy(taxonomy)
    gold = load_gold(gold_path, tax)
    tasks = []
    if gold.acoustic is not None:
        tasks.append(Task("emotion", "categorical"))
    if gold.distribution is not None:
        tasks.append(Task("distribution", "distribution"))
    if gold.vad:
        tasks.append(Task("dimensional", "dimensional", dimensions=tuple(gold.vad)))
    if not tasks:
        raise InputError(Problem("no scorable column", file=str(gold_path),
                                 expected=f"acoustic_label, one column per {tax.name} class, "
                                          "or valence/arousal/dominance"))
    splits = [Split("all", "all")]
    if gold.semantic is not None and gold.acoustic is not None:
        splits += [Split("conflict", "conflict"), Split("congruent", "congruent")]
    corpora = set(_lineage_names(gold_path))
    if "corpus" in gold.columns:
        column = sorted(set(gold.columns["corpus"].astype(str)))
        splits += [Split(c, "cross-corpus", "corpus", c) for c in column]
        corpora |= set(column)
    if gold.is_degraded.any() and "split" in gold.columns:
        conditions = sorted(set(gold.columns["split"][gold.is_degraded].astype(str)))
        splits += [Split(c, "subset", "split", c) for c in conditions]  # one split per degraded condition
    return Benchmark(name=name or Path(gold_path).stem, version="adhoc", taxonomy=tax,
                     gold_path=Path(gold_path).resolve(), tasks=tuple(tasks), splits=tuple(splits),
                     corpora=tuple(sorted(corpora)))


def _lineage_names(gold_path: str | Path) -> list[str]:
    """The names of the workspaces a gold file was built from, from its lineage sidecar (none when absent or
    unreadable: the lineage is provenance, never required to score)."""
    import json

    p = Path(gold_path)
    side = p.with_name(p.name + ".lineage.json")  # casebench.workspace.lineage_path
    try:
        records = json.loads(side.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    records = records if isinstance(records, list) else [records]
    return [str(r["name"]) for r in records if isinstance(r, dict) and r.get("name")]


STRING_COLUMNS = ("id", "clip_id", "acoustic_label", "semantic_label", "speaker_id", "corpus", "gender")


def read_table(path: str | Path):
    """Read a CSV (UTF-8, optional BOM) or Parquet table into a pyarrow Table; InputError when unreadable.

    Id, label and speaker columns are read as strings (an id ``007`` stays ``007``); empty cells are null.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            # one file: ParquetFile reads the same table without the dataset machinery (~0.25 s less on a
            # 1M-row gold); a folder (a partitioned dataset, as Spark writes them) goes through read_table
            return pq.read_table(path) if path.is_dir() else pq.ParquetFile(path).read()
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in STRING_COLUMNS},
                                    strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=opts)
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path))) from None
    except (OSError, pa.ArrowException) as e:
        raise InputError(Problem(f"cannot read table: {e}", file=str(path),
                                 expected="a CSV (UTF-8) or Parquet file")) from None


def _floats(table, col: str, src: str, problems: list[Problem]) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(table.column(col), pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    except pa.ArrowException as e:
        problems.append(Problem(f"not a number: {str(e)[:120]}", file=src, field=col, expected="numbers"))
        return np.full(table.num_rows, np.nan)


def load_gold(path: str | Path, taxonomy: str | Taxonomy) -> Gold:
    """Load a gold table (see :func:`read_gold`), reusing the last few loads of an unchanged file: a
    benchmark's gold is read once per process (the leaderboard scores many submissions against it).
    Treat the returned arrays as read-only."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return read_gold(p, taxonomy)
    tax = as_taxonomy(taxonomy)
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, tax.name, tax.labels)
    gold = _GOLD_CACHE.get(key)
    if gold is None:
        gold = read_gold(p, tax)
        if len(_GOLD_CACHE) >= 4:
            _GOLD_CACHE.pop(next(iter(_GOLD_CACHE)))
        _GOLD_CACHE[key] = gold
    return gold


_GOLD_CACHE: dict[tuple, Gold] = {}


def read_gold(path: str | Path, taxonomy: str | Taxonomy) -> Gold:
    """Read a gold table: ``id`` (or ``clip_id``), optional ``acoustic_label``, ``semantic_label``,
    ``speaker_id``, one column per taxonomy class (a distribution), ``valence``/``arousal``/``dominance``.

    Other columns are kept in ``Gold.columns`` (e.g. ``corpus``, ``gender``) for splits and breakdowns.
    Every problem is reported with the file, line (CSV: the line in the file, header = line 1; Parquet: the
    row, from 1), id and column. Columnar throughout (pyarrow compute), so a million-item gold loads in
    well under a second.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    tax = as_taxonomy(taxonomy)
    table = read_table(path)
    src = str(path)
    names = table.column_names
    id_col = "id" if "id" in names else "clip_id" if "clip_id" in names else None
    if id_col is None:
        raise InputError(Problem("no 'id' column", file=src, expected=f"an 'id' column; found {names}",
                                 hint=separator_hint(names)))
    problems: list[Problem] = []
    n = table.num_rows
    first_line = 2 if Path(path).suffix.lower() != ".parquet" else 1
    id_arr = pc.cast(table.column(id_col), "string")
    missing_id = pc.is_null(id_arr).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(missing_id)[:50]:
        problems.append(Problem("empty id", file=src, line=int(i) + first_line, field="id"))
    if len(pc.unique(id_arr)) - bool(missing_id.any()) < n - int(missing_id.sum()):
        seen: dict[str, int] = {}
        for i, x in enumerate(id_arr.to_pylist()):
            if x is not None and seen.setdefault(x, i) != i and len(problems) < 100:
                problems.append(Problem(f"duplicate id (first on line {seen[x] + first_line})", file=src,
                                        line=i + first_line, id=x, field="id"))

    def labels(col: str) -> np.ndarray | None:
        if col not in names:
            return None
        # dictionary-encode first: a million labels have a handful of distinct values to fold and look up
        enc = pc.dictionary_encode(pc.cast(table.column(col), "string")).combine_chunks()
        folded = [u.strip().lower() for u in enc.dictionary.to_pylist()]
        lookup = np.array([tax.index.get(u, -2) for u in folded] + [-1], dtype=np.int64)
        codes = pc.fill_null(enc.indices, len(lookup) - 1).to_numpy(zero_copy_only=False)
        out = lookup[codes]
        bad = np.flatnonzero(out == -2)
        for i in bad[:50]:
            problems.append(tax.check_label(folded[codes[i]], file=src, line=int(i) + first_line,
                                            id=id_arr[int(i)].as_py(), field=col))
        if bad.size > 50:
            problems.append(Problem(f"... {bad.size} unknown labels in column {col!r} in all", file=src))
        return out

    acoustic, semantic = labels("acoustic_label"), labels("semantic_label")
    dist = None
    dist_cols = [c for c in tax.labels if c in names]
    if dist_cols:
        if len(dist_cols) != len(tax.labels):
            problems.append(Problem(f"distribution columns {dist_cols} cover only part of {tax.name}", file=src,
                                    expected=f"one column per class: {list(tax.labels)}"))
        else:
            dist = np.column_stack([_floats(table, c, src, problems) for c in tax.labels])
            rows = ~np.isnan(dist).all(axis=1)
            sums = np.nansum(dist, axis=1)
            bad = rows & ((np.nanmin(np.where(np.isnan(dist), 0, dist), axis=1) < 0) | (np.abs(sums - 1) > 1e-6))
            for i in np.flatnonzero(bad)[:50]:
                problems.append(Problem(f"distribution sums to {sums[i]:.6g} or has a negative value", file=src,
                                        line=int(i) + first_line, id=id_arr[int(i)].as_py(), field="distribution",
                                        expected="non-negative values summing to 1"))
            dist[~rows] = np.nan
    vad = {d: _floats(table, d, src, problems) for d in DIMENSIONS if d in names}
    # a dimension whose column is empty was not rated (a gold CSV always has the three columns): not scored
    vad = {d: v for d, v in vad.items() if np.isfinite(v).any()}
    if problems:
        raise InputError(problems, summary=f"bad gold table {src}")
    known_cols = {id_col, "acoustic_label", "semantic_label", *tax.labels, *DIMENSIONS}
    columns = {c: _objects(table.column(c)) for c in names if c not in known_cols}
    speaker = columns.get("speaker_id")
    gold = Gold(ids=None, taxonomy=tax, acoustic=acoustic, semantic=semantic, speaker=speaker,
                distribution=dist, vad=vad, columns=columns, source=src, fingerprint=fingerprint_gold(path))
    # Per-item work every evaluation needs, done on the Arrow columns while we hold them (the cached properties
    # would first turn a million Python strings back into Arrow arrays); the same values the properties compute.
    gold.__dict__["is_degraded"] = _degraded(id_arr)
    gold.__dict__["ids_arrow"] = id_arr.combine_chunks()
    del gold.ids  # made from ids_arrow when first asked for (see Gold.__getattr__): evaluate never needs them
    if speaker is not None:
        col = table.column("speaker_id")
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):  # (a float column's NaN is no null)
            gold.__dict__["speaker_codes"] = _factorize(col.combine_chunks())
    return gold


def _objects(col) -> np.ndarray:
    """An Arrow column as a NumPy object array (nulls: None for strings, NaN for numbers). A string column of
    few distinct values (speaker, corpus, gender) converts its distinct values once and indexes them: half the
    time of converting a million strings one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col.to_numpy(zero_copy_only=False).astype(object)
    head = col.slice(0, 4096)
    if len(col) > 8192 and pc.count_distinct(head, mode="all").as_py() < len(head) // 4:
        enc = pc.dictionary_encode(col).combine_chunks()
        uniques = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
        return uniques[pc.fill_null(enc.indices, len(uniques) - 1).to_numpy(zero_copy_only=False)]
    return col.to_numpy(zero_copy_only=False).astype(object)


def fingerprint_gold(path: str | Path) -> str:
    """sha256 of the gold table's bytes: the dataset fingerprint stored in every results file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


# -- what a model author needs to know: `casebench benchmarks show` ------------------------------------------

#: The keys of a predictions line per task kind (docs/design.md, "Predictions file").
TASK_KEYS = {"categorical": ("label",), "distribution": ("distribution",)}
#: Split kinds whose members follow from the labels: their ids are never listed (that would leak labels).
LABEL_SPLITS = ("conflict", "congruent")


def task_keys(task: Task) -> tuple[str, ...]:
    """The predictions-file keys a model writes for ``task`` (``label``; ``distribution``; the dimensions)."""
    return TASK_KEYS.get(task.kind, tuple(task.dimensions))


def describe(bench: Benchmark) -> dict:
    """What a benchmark is, for a model author: spec fields, tasks with the keys to predict, splits with item
    and speaker counts, where the audio is, the example predictions shipped beside the gold. Shows no label.

    >>> d = describe(get_benchmark("casebench-mini"))
    >>> d["n_items"], [s["name"] for s in d["splits"]][:3], d["tasks"][0]["keys"]
    (480, ['all', 'conflict', 'congruent'], ['label'])
    """
    gold = bench.load_gold()
    speakers = gold.speaker if gold.speaker is not None else None
    splits = []
    for s in bench.splits:
        mask = gold.mask(s)
        splits.append({"name": s.name, "kind": s.kind, "n_items": int(mask.sum()),
                       "n_speakers": None if speakers is None else int(len(set(speakers[mask].tolist()))),
                       "selects": None if s.column is None else f"{s.column} = {s.value}"})
    examples = bench.gold_path.parent / "examples"
    if bench.dataset:
        audio = {k: str(v) for k, v in bench.dataset.items()}
    else:
        audio = {"path_column": str(bench.gold_path)} if "path" in gold.columns else None
    return {"name": bench.name, "version": bench.version, "description": " ".join(bench.description.split()),
            "taxonomy": bench.taxonomy.name, "labels": list(bench.taxonomy.labels),
            "n_items": len(gold), "n_speakers": None if speakers is None else int(len(set(speakers.tolist()))),
            "tasks": [{"name": t.name, "kind": t.kind, "target": t.target, "main_metric": t.main_metric,
                       "keys": list(task_keys(t))} for t in bench.tasks],
            "splits": splits, "corpora": list(bench.corpora), "licence": bench.licence, "citation": bench.citation,
            "group_by": list(bench.group_by), "audio": audio,
            "train": None if bench.train_path is None else str(bench.train_path),
            "spec": None if bench.spec_path is None else str(bench.spec_path),
            "examples": sorted(str(p) for p in examples.glob("*.jsonl*")) if examples.is_dir() else []}


def benchmark_ids(bench: Benchmark, split: str | None = None) -> list[str]:
    """The item ids a predictions file must cover, in gold order: every clean item, or those of ``split``.

    Splits made from the labels (conflict, congruent) are refused: their membership is part of the answer.
    """
    gold = bench.load_gold()
    if split is None:
        return gold.ids.astype(str).tolist()
    found = next((s for s in bench.splits if s.name == split), None)
    if found is None:
        raise unknown_name(f"split of {bench.name}", split, [s.name for s in bench.splits])
    if found.kind in LABEL_SPLITS:
        raise ConfigError(f"the {split!r} split is made from the labels, so its ids are not listed; predict "
                          f"every item (casebench benchmarks show {bench.name} --ids)")
    return gold.ids[gold.mask(found)].astype(str).tolist()


def prediction_template(bench: Benchmark, *, kinds: list[str] | None = None, split: str | None = None) -> bytes:
    """A predictions file to fill in: one JSON line per item, ``{"id": ..., "label": null, ...}`` with the keys
    of the tasks of ``kinds`` (default: every task of the benchmark) set to null."""
    import json

    tasks = [t for t in bench.tasks if kinds is None or t.kind in kinds]
    if kinds:
        unknown = [k for k in kinds if k not in {t.kind for t in bench.tasks}]
        if unknown:
            raise unknown_name(f"task of {bench.name}", unknown[0], [t.kind for t in bench.tasks])
    keys = [k for t in tasks for k in task_keys(t)]
    lines = (json.dumps({"id": i, **dict.fromkeys(keys)}, ensure_ascii=False) for i in benchmark_ids(bench, split))
    return ("\n".join(lines) + "\n").encode("utf-8")
