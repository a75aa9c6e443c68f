"""Speaker-disjoint splits stratified by acoustic label × conflict status, k-fold folds, official split lists.

A benchmark is only as good as its splits: a speaker heard in training and again in test turns a speaker-
independent score into a speaker-dependent one. Everything here assigns whole *groups* of clips, never
single clips: a group is a speaker by default, or the connected clips that share any value of several
columns (``group_by=("speaker_id", "session")`` keeps a two-speaker session and both its speakers on one
side). Within that constraint the splits are stratified by the clip's *stratum*, its acoustic label and its
conflict status (``"angry|conflict"``), with scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`:
the corpus is cut into ``n`` group-disjoint, class-balanced units and whole units are dealt to train, dev and
test in proportion to the ratios (``n`` is the smallest number of units, at most :data:`MAX_UNITS` and at most
the number of groups, that matches the ratios best; 0.8/0.1/0.1 gives 10 units, 8+1+1).

``splits.parquet`` keeps one row per clip (the workspace key): ``split`` is ``train``/``dev``/``test``
(holdout), ``fold<i>`` (k-fold over the whole corpus, ``fold`` = i) or the names of an imported official
split; ``fold`` on train clips numbers the optional speaker-independent cross-validation folds inside train.
The named test sets ``conflict_test`` and ``congruent_test`` are **derived views**, not rows: they are the
test clips whose labels conflict (``labels.is_conflict``) and those whose labels agree (acoustic = semantic,
not a conflict, and not failing the confidence thresholds); :func:`named_views` computes them and
``publish`` writes them as splits of their own. A test clip in neither view (labels missing or not
confident) is counted, never dropped silently. Keeping them derived means a relabelled clip moves between the
views without re-splitting, and a clip can never be in ``test`` and ``conflict_test`` with different rows.

The pure core (:func:`conflict_status`, :func:`group_ids`, :func:`holdout_splits`, :func:`kfold_splits`,
:func:`assign_from_lists`, :func:`named_views`) takes DataFrames and returns a :class:`SplitResult`; the edge
(:func:`split`) reads the workspace, writes ``tables/splits.parquet``, records the method, ratios, seed and
library in ``casebench.toml`` ``[split]`` and writes ``reports/split.json``.

>>> import pandas as pd
>>> clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(12)],
...                       "speaker_id": [f"s{i % 6}" for i in range(12)],
...                       "intended_acoustic": ["sad"] * 6 + ["happy"] * 6,
...                       "intended_semantic": ["sad", "happy"] * 6})
>>> res = holdout_splits(clips, ratios={"train": 4, "dev": 1, "test": 1}, seed=0)
>>> res.table.groupby("split")["clip_id"].count().to_dict()
{'dev': 2, 'test': 2, 'train': 8}
>>> bool(res.table.merge(clips, on="clip_id").groupby("speaker_id")["split"].nunique().max() == 1)
True
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from casebench.errors import ConfigError, InputError, Problem, did_you_mean

#: Split names of a holdout split, in order.
HOLDOUT_SPLITS = ("train", "dev", "test")
#: The derived named test sets: view name -> (split it is cut from, conflict status it keeps).
VIEWS: dict[str, tuple[str, str]] = {"conflict_test": ("test", "conflict"),
                                     "congruent_test": ("test", "congruent")}
DEFAULT_RATIOS: dict[str, float] = {"train": 0.8, "dev": 0.1, "test": 0.1}
#: Most units StratifiedGroupKFold cuts the corpus into for a holdout split (finer units fit the ratios
#: better but balance the classes of each unit worse).
MAX_UNITS = 20
#: Status values of :func:`conflict_status`.
STATUSES = ("conflict", "congruent", "unknown")
#: A split name the Hugging Face Hub accepts (and casebench uses as a file name).
SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")
#: Columns of an official split list that can hold the clip reference, in the order they are tried.
ID_COLUMNS = ("clip_id", "id", "utterance_id", "utt_id", "file", "filename", "file_name", "path", "wav",
              "audio")
LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".lst", ".list", ".scp")
METHODS = ("holdout", "kfold", "import")


@dataclass
class SplitResult:
    """A split assignment: ``table`` (clip_id, split, fold), the ``config`` recorded in ``[split]`` and a
    JSON-ready ``summary`` (counts per split, stratum and view; realised ratios; warnings)."""

    table: pd.DataFrame
    config: dict
    summary: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# What a clip is: stratum and group


def conflict_status(clips: pd.DataFrame, labels: pd.DataFrame | None = None, *,
                    source: str = "auto") -> pd.DataFrame:
    """Acoustic label and conflict status of every clip, in the order of ``clips``.

    Args:
        clips: the clips table (``clip_id``; ``intended_acoustic``/``intended_semantic`` for ``"intended"``).
        labels: the labels table, or None.
        source: ``"labels"`` (aggregated labels: ``acoustic_label``, ``is_conflict``, ``semantic_label``,
            ``passes_thresholds``), ``"intended"`` (the emotions a synthetic clip was designed to carry), or
            ``"auto"``: labels when a labels table is given, else intended.

    Returns:
        DataFrame with ``clip_id``, ``acoustic`` (label or None), ``status`` (``conflict``: labels differ and
        the aggregation called it a conflict; ``congruent``: labels agree, not a conflict, thresholds not
        failed; ``unknown``: anything else, e.g. no labels row) and ``source``.

    >>> clips = pd.DataFrame({"clip_id": ["a", "b", "c"], "intended_acoustic": ["sad", "sad", None],
    ...                       "intended_semantic": ["sad", "joy", "joy"]})
    >>> conflict_status(clips)["status"].tolist()
    ['congruent', 'conflict', 'unknown']
    """
    if source not in ("auto", "labels", "intended"):
        raise ConfigError(f"stratify source {source!r}; expected 'auto', 'labels' or 'intended'")
    if source == "auto":
        source = "labels" if labels is not None else "intended"
    ids = clips["clip_id"].astype(str)
    out = pd.DataFrame({"clip_id": ids.to_numpy()})
    if source == "labels":
        if labels is None:
            raise InputError(Problem("no labels table", expected="a labels table (written by `casebench "
                                     "aggregate`) to stratify by labels", field="labels"))
        lab = labels.set_index(labels["clip_id"].astype(str))
        lab = lab[~lab.index.duplicated()].reindex(ids)
        acoustic = _col(lab, "acoustic_label")
        semantic = _col(lab, "semantic_label")
        is_conflict = _col(lab, "is_conflict")
        passes = _col(lab, "passes_thresholds")
        conflict = is_conflict.map(lambda v: v is True or v == 1)
        agree = acoustic.notna() & semantic.notna() & (acoustic == semantic)
        congruent = agree & is_conflict.map(lambda v: v is False or v == 0) & passes.map(
            lambda v: not (v is False or v == 0))
    else:
        acoustic = _col(clips, "intended_acoustic").set_axis(ids)
        semantic = _col(clips, "intended_semantic").set_axis(ids)
        known = acoustic.notna() & semantic.notna()
        conflict = known & (acoustic != semantic)
        congruent = known & (acoustic == semantic)
    status = np.where(conflict.to_numpy(dtype=bool), "conflict",
                      np.where(congruent.to_numpy(dtype=bool), "congruent", "unknown"))
    out["acoustic"] = [None if _missing(v) else str(v) for v in acoustic.to_numpy()]
    out["status"] = status
    out["source"] = source
    return out


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name].astype(object).where(df[name].notna(), None)
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def strata(status: pd.DataFrame) -> np.ndarray:
    """Stratum of each clip: ``"<acoustic label>|<status>"`` (``?`` for an unknown label).

    >>> strata(pd.DataFrame({"acoustic": ["sad", None], "status": ["conflict", "unknown"]})).tolist()
    ['sad|conflict', '?|unknown']
    """
    acoustic = status["acoustic"].map(lambda v: "?" if _missing(v) else str(v))
    return (acoustic + "|" + status["status"].astype(str)).to_numpy()


#: Clips column naming the speaker whose reference take prompted a synthesized clip (casebench.synth.references):
#: a reference-prompted clip carries its reference speaker, so clips sharing one are kept in one split.
REFERENCE_SPEAKER = "meta_reference_speaker"


def linked_columns(clips: pd.DataFrame, group_by: Sequence[str]) -> list[str]:
    """``group_by`` plus :data:`REFERENCE_SPEAKER` when the clips have one (reference-prompted synthesis).

    >>> linked_columns(pd.DataFrame({"speaker_id": ["a"], "meta_reference_speaker": ["crema-d:1001"]}), ["speaker_id"])
    ['speaker_id', 'meta_reference_speaker']
    """
    cols = list(group_by)
    if REFERENCE_SPEAKER in clips.columns and REFERENCE_SPEAKER not in cols and clips[REFERENCE_SPEAKER].notna().any():
        cols.append(REFERENCE_SPEAKER)
    return cols


def group_ids(clips: pd.DataFrame, group_by: Sequence[str] = ("speaker_id",)) -> np.ndarray:
    """Group number of each clip: clips sharing a value of any ``group_by`` column are in one group.

    The first column is required for every clip (a clip without a speaker cannot be kept speaker-disjoint);
    a null in a further column links nothing. Groups are the connected components of the clips-values
    graph (union-find), numbered in order of first appearance.

    Raises:
        InputError: a ``group_by`` column is missing, or a clip has no value in the first one.

    >>> clips = pd.DataFrame({"clip_id": list("abcd"), "speaker_id": ["s1", "s2", "s3", "s1"],
    ...                       "session": ["x", "x", "y", None]})
    >>> group_ids(clips).tolist(), group_ids(clips, ["speaker_id", "session"]).tolist()
    ([0, 1, 2, 0], [0, 0, 1, 0])
    """
    group_by = list(group_by)
    if not group_by:
        raise ConfigError("group_by needs at least one column (e.g. speaker_id)")
    problems = [Problem("column missing", expected=f"a {c} column in the clips table to group by", field=c,
                        hint=did_you_mean(c, clips.columns)) for c in group_by if c not in clips.columns]
    if problems:
        raise InputError(problems, summary="cannot group the clips")
    first = clips[group_by[0]]
    empty = first.isna() | (first.astype(str).str.strip() == "")
    if empty.any():
        raise InputError([Problem(f"row {i}: no {group_by[0]}", id=str(clips['clip_id'].iloc[i]),
                                  field=group_by[0], expected=f"a {group_by[0]} for every clip: a group-disjoint "
                                  "split cannot place a clip whose group is unknown",
                                  hint="fill it in the clips table, or split by another column with group_by")
                          for i in np.flatnonzero(empty.to_numpy())],
                         summary=f"{int(empty.sum())} clip(s) without {group_by[0]}")
    n = len(clips)
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for col in group_by:
        first_of: dict[str, int] = {}
        for i, v in enumerate(clips[col].to_numpy()):
            if _missing(v) or str(v).strip() == "":
                continue
            key = str(v)
            if key in first_of:
                a, b = find(i), find(first_of[key])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first_of[key] = i
    roots = np.array([find(i) for i in range(n)])
    _, first_index, inverse = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_index))  # renumber groups by first appearance
    return order[inverse].astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Holdout and k-fold


def _allocate(ratios: Mapping[str, float], n_units: int) -> dict[str, int]:
    """Units per split by largest remainder, at least one each."""
    names = list(ratios)
    want = np.array([ratios[k] for k in names], dtype=float) * n_units
    alloc = np.maximum(np.floor(want).astype(int), 1)
    while alloc.sum() > n_units:
        i = int(np.argmax(np.where(alloc > 1, alloc - want, -np.inf)))
        alloc[i] -= 1
    while alloc.sum() < n_units:
        alloc[int(np.argmax(want - alloc))] += 1
    return dict(zip(names, alloc.tolist(), strict=True))


def choose_units(ratios: Mapping[str, float], n_groups: int, max_units: int = MAX_UNITS) -> tuple[int, dict]:
    """Number of StratifiedGroupKFold units and units per split that best fit ``ratios`` (normalised).

    The error of a choice is the largest gap between a split's share of units and its ratio; ties go to
    fewer units.

    >>> choose_units({"train": 0.8, "dev": 0.1, "test": 0.1}, 40)
    (10, {'train': 8, 'dev': 1, 'test': 1})
    >>> choose_units({"train": 0.7, "dev": 0.15, "test": 0.15}, 40)
    (20, {'train': 14, 'dev': 3, 'test': 3})
    """
    total = sum(ratios.values())
    norm = {k: v / total for k, v in ratios.items()}
    best: tuple[float, int, dict] | None = None
    for n in range(len(norm), max(len(norm), min(n_groups, max_units)) + 1):
        alloc = _allocate(norm, n)
        err = max(abs(alloc[k] / n - norm[k]) for k in norm)
        if best is None or err < best[0] - 1e-12:
            best = (err, n, alloc)
    return best[1], best[2]


def _check_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(ratios, Mapping) or not ratios:
        raise ConfigError(f"ratios {ratios!r}; expected split name -> share, e.g. train=0.8,dev=0.1,test=0.1")
    bad = [f"{k}={v!r}" for k, v in ratios.items()
           if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v < 0]
    if bad:
        raise ConfigError(f"ratios {', '.join(bad)}; expected non-negative numbers")
    names = [k for k in ratios if not SPLIT_NAME.match(str(k)) or k in VIEWS]
    if names:
        raise ConfigError(f"split name(s) {names}; expected letters, digits, '_' (and not the derived views "
                          f"{list(VIEWS)})")
    kept = {str(k): float(v) for k, v in ratios.items() if v > 0}
    if sum(kept.values()) <= 0:
        raise ConfigError(f"ratios {dict(ratios)} are all zero; expected at least one positive share")
    if "train" not in kept:
        raise ConfigError(f"ratios {dict(ratios)} give no train split; expected train > 0")
    return kept


def parse_ratios(text: str | Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    """Ratios from ``"0.8,0.1,0.1"`` (train, dev, test), ``"train=0.7,test=0.3"``, a dict or a sequence.

    >>> parse_ratios("0.8,0.1,0.1"), parse_ratios("train=3,test=1")
    ({'train': 0.8, 'dev': 0.1, 'test': 0.1}, {'train': 3.0, 'test': 1.0})
    """
    if isinstance(text, Mapping):
        return {str(k): float(v) for k, v in text.items()}
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            if all("=" in p for p in parts):
                named = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
                for name in named:  # 'tset' would be a split no later step looks for
                    hint = did_you_mean(name, HOLDOUT_SPLITS) if name not in HOLDOUT_SPLITS else None
                    if hint:
                        raise ConfigError(f"ratios {text!r}: split name {name!r} ({hint}); baseline, degrade "
                                          f"and publish look for {', '.join(HOLDOUT_SPLITS)}")
                return named
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(f"ratios {text!r}; expected e.g. '0.8,0.1,0.1' or 'train=0.8,test=0.2'") from None
    else:
        values = [float(v) for v in text]
    if len(values) not in (2, 3):
        raise ConfigError(f"ratios {text!r}: {len(values)} numbers; expected 3 (train, dev, test) or 2 "
                          "(train, test)")
    names = HOLDOUT_SPLITS if len(values) == 3 else ("train", "test")
    return dict(zip(names, values, strict=True))


def _sgkf(n_splits: int, seed: int, strata_: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Unit number of each clip from StratifiedGroupKFold (the fold each clip is a test member of)."""
    from sklearn.model_selection import StratifiedGroupKFold

    unit = np.full(len(groups), -1, dtype=np.int64)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "The least populated class in y has only k members": we check the classes per split ourselves
        warnings.simplefilter("ignore", UserWarning)
        for i, (_, test_idx) in enumerate(cv.split(np.zeros(len(groups)), strata_, groups)):
            unit[test_idx] = i
    return unit


def _usable_strata(frame: pd.DataFrame, n_splits: int) -> tuple[np.ndarray, str]:
    """The finest stratification StratifiedGroupKFold accepts for ``n_splits``.

    It refuses labels when *every* class has fewer members than folds; tiny corpora then fall back to the
    acoustic label alone, the conflict status alone, and finally no stratification (group-disjoint only).
    """
    acoustic = frame["acoustic"].map(lambda v: "?" if _missing(v) else str(v)).to_numpy()
    options = [(frame["stratum"].to_numpy(), "acoustic_label x conflict_status"),
               (acoustic, "acoustic_label"), (frame["status"].to_numpy(), "conflict_status")]
    for values, name in options:
        _, counts = np.unique(values, return_counts=True)
        if (counts >= n_splits).any():
            return values, name
    return np.zeros(len(frame), dtype=np.int64), "none (too few clips per class for the folds)"


def _distribution_gap(frame: pd.DataFrame, column: str) -> float:
    """Sum over splits of the total variation distance between the split's strata and the corpus's."""
    overall = frame["stratum"].value_counts(normalize=True)
    gap = 0.0
    for _, part in frame.groupby(column):
        share = part["stratum"].value_counts(normalize=True).reindex(overall.index, fill_value=0.0)
        gap += 0.5 * float(np.abs(share - overall).sum())
    return gap


def _prepare(clips: pd.DataFrame, labels: pd.DataFrame | None, group_by: Sequence[str],
             stratify_source: str) -> pd.DataFrame:
    if "clip_id" not in clips.columns:
        raise InputError(Problem("column missing", expected="a clip_id column in the clips table",
                                 field="clip_id"))
    if clips.empty:
        raise InputError(Problem("no clips", expected="a clips table with at least one clip",
                                 field="clips"))
    status = conflict_status(clips, labels, source=stratify_source)
    frame = status.copy()
    frame["group"] = group_ids(clips, linked_columns(clips, group_by))
    frame["speaker"] = clips[group_by[0]].astype(str).to_numpy()
    frame["stratum"] = strata(status)
    return frame


def _speaker_list(speakers: Sequence[str], limit: int = 5) -> str:
    # unknown speakers arrive as None/NaN (pandas 3 keeps NaN through astype(str)); show them as "?"
    speakers = sorted({"?" if _missing(s) else str(s) for s in speakers})
    shown = ", ".join(speakers[:limit])
    return shown + (f" and {len(speakers) - limit} more" if len(speakers) > limit else "")


def class_problems(frame: pd.DataFrame, splits: Sequence[str], *, column: str = "split") -> list[Problem]:
    """Problems for every acoustic class of the corpus that has no clip in one of ``splits``, and for a
    conflict status (conflict, congruent) of the corpus missing from ``test``.

    ``frame`` has ``acoustic``, ``status``, ``speaker`` and the ``column`` holding the split (or fold).
    """
    problems: list[Problem] = []
    known = frame[frame["acoustic"].notna()]
    for cls in sorted(known["acoustic"].unique()):
        rows = known[known["acoustic"] == cls]
        have = set(rows[column].astype(str))
        speakers = rows["speaker"].tolist()
        n_spk = len(set(speakers))
        for s in splits:
            if str(s) in have:
                continue
            where = ", ".join(sorted(have))
            if n_spk < len(splits):
                hint = (f"class {cls!r} is spoken by only {n_spk} speaker(s) ({_speaker_list(speakers)}): it "
                        f"cannot reach all {len(splits)} speaker-disjoint splits")
            else:
                hint = (f"its {len(rows)} clip(s) from {n_spk} speaker(s) all went to {where}; try another "
                        "seed, other ratios, or allow missing classes")
            problems.append(Problem(f"class {cls!r} has no clip in {column} {s!r}",
                                    expected=f"every class of the corpus in every {column}", field="acoustic",
                                    hint=hint))
    if column == "split" and "test" in splits:
        test = frame[frame[column].astype(str) == "test"]
        for st in ("conflict", "congruent"):
            if (frame["status"] == st).any() and not (test["status"] == st).any():
                n = int((frame["status"] == st).sum())
                problems.append(Problem(f"no {st} clip in split 'test', so {st}_test would be empty",
                                        expected=f"{st} clips in test ({n} in the corpus)", field="status",
                                        hint="try another seed or a larger test ratio"))
    return problems


def _best_of(tries: int, seed: int, attempt) -> tuple[Any, int]:
    """Run ``attempt(seed_i)`` for ``tries`` seeds derived from ``seed``; keep the best by its score.

    StratifiedGroupKFold's greedy balance depends on the shuffled group order, and on a small corpus one
    order can leave a class out of a split that another order covers. Trying a few orders derived from the
    seed (the first is the seed itself) keeps the result a pure function of the seed.
    """
    best = None
    for i in range(max(1, tries)):
        sub_seed = seed if i == 0 else int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        result = attempt(sub_seed)
        if best is None or result[0] < best[0][0]:
            best = (result, i)
        if result[0][0] == 0 and result[0][1] == 0.0:
            break
    return best[0], best[1]


def holdout_splits(clips: pd.DataFrame, labels: pd.DataFrame | None = None, *,
                   ratios: Mapping[str, float] | None = None, seed: int = 0, n_folds: int | None = None,
                   group_by: Sequence[str] = ("speaker_id",), stratify_source: str = "auto",
                   require_all_classes: bool = True, max_units: int = MAX_UNITS, tries: int = 10) -> SplitResult:
    """Group-disjoint train/dev/test split stratified by acoustic label × conflict status.

    Args:
        clips: clips table (``clip_id``, the ``group_by`` columns, intended emotions when no labels).
        labels: labels table or None (see :func:`conflict_status`).
        ratios: split name -> share (normalised); default 0.8/0.1/0.1. A zero share drops the split.
        seed: seed of StratifiedGroupKFold's shuffling and of the dealing of units to splits.
        n_folds: also number k speaker-independent cross-validation folds inside train (``fold``).
        group_by: columns whose shared values tie clips together (first one required for every clip).
        stratify_source: ``"auto"``, ``"labels"`` or ``"intended"`` (:func:`conflict_status`).
        require_all_classes: raise when a class of the corpus is missing from a split (or a fold), or test
            lacks the conflict or congruent clips the corpus has; otherwise list them as warnings.
        max_units: most StratifiedGroupKFold units (:func:`choose_units`).
        tries: assignments tried (seeds derived from ``seed``); the one with the fewest missing classes,
            then the smallest sum of the gaps between realised and asked shares and between each split's
            strata distribution and the corpus's (total variation), is kept (:func:`_best_of`).

    Raises:
        InputError: fewer groups than splits (or train groups than folds); a class missing from a split.
        ConfigError: bad ratios or folds.
    """
    ratios = _check_ratios(DEFAULT_RATIOS if ratios is None else ratios)
    if n_folds is not None and (not isinstance(n_folds, int) or isinstance(n_folds, bool) or n_folds < 2):
        raise ConfigError(f"folds {n_folds!r}; expected an integer of at least 2")
    frame = _prepare(clips, labels, group_by, stratify_source)
    n_groups = int(frame["group"].nunique())
    what = "speaker" if list(group_by) == ["speaker_id"] else "group"
    if n_groups < len(ratios):
        raise InputError(Problem(
            f"{n_groups} {what}(s) ({_speaker_list(frame['speaker'])})",
            expected=f"at least {len(ratios)}, one per split {list(ratios)}, for a {what}-disjoint split",
            field=group_by[0], hint="add speakers, drop the dev split (ratios train=0.8,test=0.2), or use "
                                    "k-fold folds"), summary="too few speakers for the requested splits")
    n_units, alloc = choose_units(ratios, n_groups, max_units)
    y, stratify = _usable_strata(frame, n_units)
    # the smaller splits (test, dev) are dealt their units first
    names = sorted(alloc, key=lambda k: (k == "train", list(ratios).index(k)))
    total = sum(ratios.values())

    def attempt(sub_seed: int):
        unit = _sgkf(n_units, sub_seed, y, frame["group"].to_numpy())
        order = np.random.default_rng(sub_seed).permutation(n_units)
        unit_split: dict[int, str] = {}
        start = 0
        for name in names:
            for u in order[start:start + alloc[name]]:
                unit_split[int(u)] = name
            start += alloc[name]
        trial = frame.copy()
        trial["split"] = [unit_split[int(u)] for u in unit]
        problems = class_problems(trial, list(ratios))
        shares = trial["split"].value_counts(normalize=True)
        off = sum(abs(float(shares.get(k, 0.0)) - v / total) for k, v in ratios.items())
        return (len(problems), round(off + _distribution_gap(trial, "split"), 9)), trial, problems

    (_, frame, problems), chosen = _best_of(tries, seed, attempt)
    frame["fold"] = pd.array([pd.NA] * len(frame), dtype="Int32")
    warns: list[str] = []
    fold_stratify = None
    if n_folds is not None:
        fold_problems, fold_stratify = _train_folds(frame, n_folds, seed, what, tries)
        problems += fold_problems
    if problems:
        if require_all_classes:
            raise InputError(problems, summary="the data cannot satisfy the requested split")
        warns += [str(p) for p in problems]
    config = {"method": "holdout", "ratios": dict(ratios), "seed": int(seed), "n_folds": n_folds,
              "group_by": list(group_by), "stratify": stratify, "stratify_source": str(frame["source"].iloc[0]),
              "units": n_units, "units_per_split": alloc, "tries": tries, "chosen_try": chosen,
              "library": _sklearn_version()}
    if fold_stratify is not None and fold_stratify != stratify:
        config["fold_stratify"] = fold_stratify
    table = pd.DataFrame({"clip_id": frame["clip_id"], "split": frame["split"], "fold": frame["fold"]})
    return SplitResult(table, config, summarize(frame, warnings=warns))


def _train_folds(frame: pd.DataFrame, n_folds: int, seed: int, what: str,
                 tries: int) -> tuple[list[Problem], str]:
    """Number speaker-independent folds inside train (in place); returns the fold problems and stratification."""
    train = frame.index[frame["split"] == "train"]
    sub = frame.loc[train].copy()
    n_train_groups = int(sub["group"].nunique())
    if n_train_groups < n_folds:
        raise InputError(Problem(f"{n_train_groups} {what}(s) in train",
                                 expected=f"at least {n_folds} for {n_folds} {what}-independent folds",
                                 field="fold", hint="use fewer folds"),
                         summary="too few speakers for the requested folds")
    y, stratify = _usable_strata(sub, n_folds)
    names = [str(i) for i in range(n_folds)]

    def attempt(sub_seed: int):
        fold = _sgkf(n_folds, sub_seed, y, sub["group"].to_numpy())
        trial = sub.assign(fold_name=fold.astype(str))
        problems = class_problems(trial, names, column="fold_name")
        return (len(problems), round(_distribution_gap(trial, "fold_name"), 9)), fold, problems

    (_, fold, problems), _ = _best_of(tries, seed + 1, attempt)
    frame.loc[train, "fold"] = fold.astype("int32")
    problems = [Problem(p.found.replace("fold_name", "train fold"), expected=p.expected.replace("fold_name",
                                                                                              "train fold"),
                        field="fold", hint=p.hint) for p in problems]
    return problems, stratify


def kfold_splits(clips: pd.DataFrame, labels: pd.DataFrame | None = None, *, k: int = 5, seed: int = 0,
                 group_by: Sequence[str] = ("speaker_id",), stratify_source: str = "auto",
                 require_all_classes: bool = True, tries: int = 10) -> SplitResult:
    """k group-disjoint folds over the whole corpus, stratified as :func:`holdout_splits`.

    Every clip gets ``split = "fold<i>"`` and ``fold = i``: train on k-1 folds, test on the one left out.
    The audit then checks every pair of folds.

    Raises:
        InputError: fewer groups than folds; a class missing from a fold (unless not ``require_all_classes``).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ConfigError(f"k {k!r}; expected an integer of at least 2")
    frame = _prepare(clips, labels, group_by, stratify_source)
    n_groups = int(frame["group"].nunique())
    what = "speaker" if list(group_by) == ["speaker_id"] else "group"
    if n_groups < k:
        raise InputError(Problem(f"{n_groups} {what}(s) ({_speaker_list(frame['speaker'])})",
                                 expected=f"at least {k} for {k} {what}-independent folds", field=group_by[0],
                                 hint="use fewer folds"), summary="too few speakers for the requested folds")
    y, stratify = _usable_strata(frame, k)
    names = [f"fold{i}" for i in range(k)]

    def attempt(sub_seed: int):
        unit = _sgkf(k, sub_seed, y, frame["group"].to_numpy())
        trial = frame.assign(split=[names[u] for u in unit], fold=pd.array(unit.astype("int32"), dtype="Int32"))
        problems = class_problems(trial, names)
        return (len(problems), round(_distribution_gap(trial, "split"), 9)), trial, problems

    (_, frame, problems), chosen = _best_of(tries, seed, attempt)
    warns: list[str] = []
    if problems:
        if require_all_classes:
            raise InputError(problems, summary="the data cannot satisfy the requested folds")
        warns = [str(p) for p in problems]
    config = {"method": "kfold", "k": k, "seed": int(seed), "group_by": list(group_by), "stratify": stratify,
              "stratify_source": str(frame["source"].iloc[0]), "tries": tries, "chosen_try": chosen,
              "library": _sklearn_version()}
    table = pd.DataFrame({"clip_id": frame["clip_id"], "split": frame["split"], "fold": frame["fold"]})
    return SplitResult(table, config, summarize(frame, warnings=warns))


def _sklearn_version() -> str:
    import sklearn

    return f"sklearn.model_selection.StratifiedGroupKFold (scikit-learn {sklearn.__version__})"


# --------------------------------------------------------------------------------------------------
# Official split lists


@dataclass(frozen=True)
class ListEntry:
    """One line of an official split list: the clip reference, optional fold, and where it was read."""

    ref: str
    file: str
    line: int
    fold: int | None = None


def _keys(value: Any) -> list[str]:
    """The reference itself, its base name and its stem (``wav/a.wav`` -> ``wav/a.wav``, ``a.wav``, ``a``)."""
    if _missing(value):
        return []
    text = str(value).strip().replace("\\", "/")
    if not text:
        return []
    p = PurePosixPath(text)
    return list(dict.fromkeys([text, p.name, p.stem] if p.name else [text]))


def assign_from_lists(clips: pd.DataFrame, lists: Mapping[str, Sequence[ListEntry]], *,
                      allow_unassigned: bool = False, labels: pd.DataFrame | None = None) -> SplitResult:
    """Splits from official lists of clip references, one list per split.

    A reference matches the clip whose ``clip_id`` is it; failing that, every clip whose ``path``,
    ``meta_source_file`` or ``meta_source_path`` has it as full text, base name or stem (so a list of the
    original recordings assigns all clips cut from each one).

    Raises:
        InputError: listing every reference that matches no clip (with a did-you-mean), every clip two
            lists claim, and (unless ``allow_unassigned``, which leaves them out of the table and counts
            them) every clip no list names.
    """
    bad = [s for s in lists if not SPLIT_NAME.match(str(s)) or s in VIEWS]
    if bad:
        raise ConfigError(f"split name(s) {bad} in the official lists; expected letters, digits, '_' (rename "
                          f"the files) and not the derived views {list(VIEWS)}")
    ids = clips["clip_id"].astype(str).tolist()
    exact = {cid: i for i, cid in enumerate(ids)}
    alias: dict[str, set[int]] = {}
    for col in ("path", "meta_source_file", "meta_source_path"):
        if col in clips.columns:
            for i, v in enumerate(clips[col].to_numpy()):
                for key in _keys(v):
                    alias.setdefault(key, set()).add(i)
    owner: dict[int, tuple[str, ListEntry]] = {}
    fold = [None] * len(ids)
    problems: list[Problem] = []
    conflicts: list[Problem] = []
    n_refs = 0
    for split_name, entries in lists.items():
        for e in entries:
            n_refs += 1
            hits = ({exact[e.ref]} if e.ref in exact
                    else next((alias[k] for k in _keys(e.ref) if k in alias), set()))
            if not hits:
                problems.append(Problem(f"{e.ref!r} matches no clip", file=e.file, line=e.line, id=e.ref,
                                        expected="a clip_id, or a file name/stem of a clip's path or source file",
                                        hint=did_you_mean(e.ref, ids)))
                continue
            for i in sorted(hits):
                if i in owner and owner[i][0] != split_name:
                    prev_split, prev = owner[i]
                    conflicts.append(Problem(f"clip listed for split {split_name!r} and for {prev_split!r} "
                                             f"({prev.file}:{prev.line})", file=e.file, line=e.line, id=ids[i],
                                             expected="each clip in one split"))
                    continue
                owner[i] = (split_name, e)
                if e.fold is not None:
                    fold[i] = e.fold
    problems += conflicts
    unassigned = [ids[i] for i in range(len(ids)) if i not in owner]
    if unassigned and not allow_unassigned:
        problems += [Problem("clip is in no official split list", id=cid,
                             expected="every clip in one list (or allow unassigned clips, which are then "
                                      "left out of splits and of the published dataset)")
                     for cid in unassigned]
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) importing the official splits")
    keep = sorted(owner)
    table = pd.DataFrame({"clip_id": [ids[i] for i in keep], "split": [owner[i][0] for i in keep],
                          "fold": pd.array([fold[i] for i in keep], dtype="Int32")})
    status = conflict_status(clips, labels)
    frame = status.iloc[keep].reset_index(drop=True)
    frame["split"] = table["split"].to_numpy()
    frame["speaker"] = (clips["speaker_id"].astype(str).to_numpy()[keep] if "speaker_id" in clips.columns
                        else "?")
    frame["fold"] = table["fold"].to_numpy()
    warns = [str(p) for p in class_problems(frame, list(lists))] if "speaker_id" in clips.columns else []
    if unassigned:
        warns.insert(0, f"{len(unassigned)} clip(s) in no official list are left out of the splits "
                        f"(e.g. {', '.join(unassigned[:5])})")
    config = {"method": "import", "n_references": n_refs, "unassigned": len(unassigned)}
    summary = summarize(frame, warnings=warns)
    summary["unassigned"] = unassigned
    return SplitResult(table, config, summary)


def read_split_lists(source: str | os.PathLike | Mapping[str, str | os.PathLike]) -> tuple[dict, list[dict]]:
    """Read official split lists: ``({split: [ListEntry]}, [file info])``.

    ``source`` is a folder of lists named after their split (``train.txt``, ``test.csv``, ...), a mapping
    split -> file, or one CSV/TSV with a ``split`` column. A list is a CSV/TSV with a header naming the
    reference column (one of :data:`ID_COLUMNS`) and optionally ``fold``, or a text file with one reference
    per line (the first whitespace-separated token; blank lines and ``#`` comments skipped). File info
    holds each file's path and sha256, for the record.
    """
    if isinstance(source, Mapping):
        files = {str(k): Path(v) for k, v in source.items()}
    else:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LIST_SUFFIXES)
            if not found:
                raise InputError(Problem("no split lists", file=str(path),
                                         expected=f"files named <split>{{{','.join(LIST_SUFFIXES)}}}"))
            files = {}
            for p in found:
                if p.stem in files:
                    raise InputError(Problem(f"two lists for split {p.stem!r} ({files[p.stem].name}, {p.name})",
                                             file=str(path), expected="one list per split"))
                files[p.stem] = p
        elif path.is_file():
            return _read_combined(path)
        else:
            raise InputError(Problem("not found", file=str(path),
                                     expected="a folder of split lists, or a CSV with a split column"))
    lists, info = {}, []
    for split_name, p in files.items():
        lists[split_name] = _read_list(p)
        info.append({"split": split_name, "file": str(p), "sha256": _sha256(p)})
    return lists, info


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path), expected="a split list")) from None
    except UnicodeDecodeError as e:
        raise InputError(Problem(f"not UTF-8 text ({e.reason})", file=str(path),
                                 expected="a UTF-8 CSV or text list")) from None


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, dict]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in text.split("\n", 1)[0]) else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    rows = []
    for row in reader:
        rows.append((reader.line_num, {str(k).strip().lower(): (v or "").strip()
                                       for k, v in row.items() if k is not None}))
    return header, rows


def _id_column(header: list[str], path: Path) -> str:
    col = next((c for c in ID_COLUMNS if c in header), None)
    if col is None:
        raise InputError(Problem(f"no clip reference column in header {header}", file=str(path), line=1,
                                 expected=f"one of {list(ID_COLUMNS)}",
                                 hint=did_you_mean(header[0], ID_COLUMNS) if header else None))
    return col


def _fold(value: str, path: Path, line: int, ref: str) -> int | None:
    if value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        raise InputError(Problem(f"fold {value!r}", file=str(path), line=line, id=ref, field="fold",
                                 expected="an integer")) from None


def _read_list(path: Path) -> list[ListEntry]:
    text = _read_text(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        header, rows = _csv_rows(path, text)
        col = _id_column(header, path)
        return [ListEntry(r[col], str(path), line, _fold(r.get("fold", ""), path, line, r[col]))
                for line, r in rows if r.get(col)]
    out = []
    for line, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if s and not s.startswith("#"):
            out.append(ListEntry(s.split()[0], str(path), line))
    return out


def _read_combined(path: Path) -> tuple[dict, list[dict]]:
    header, rows = _csv_rows(path, _read_text(path))
    if "split" not in header:
        raise InputError(Problem(f"no split column in header {header}", file=str(path), line=1,
                                 expected="a CSV with a clip reference column and a split column, or a folder "
                                          "of lists named <split>.txt"))
    col = _id_column(header, path)
    lists: dict[str, list[ListEntry]] = {}
    for line, r in rows:
        if r.get(col):
            lists.setdefault(r["split"], []).append(
                ListEntry(r[col], str(path), line, _fold(r.get("fold", ""), path, line, r[col])))
    return lists, [{"split": "*", "file": str(path), "sha256": _sha256(path)}]


# --------------------------------------------------------------------------------------------------
# Views and summaries


def named_views(splits: pd.DataFrame, status: pd.DataFrame) -> dict[str, list[str]]:
    """The derived named test sets (:data:`VIEWS`): view name -> clip_ids, in the order of ``splits``.

    >>> sp = pd.DataFrame({"clip_id": ["a", "b", "c"], "split": ["test", "test", "train"]})
    >>> st = pd.DataFrame({"clip_id": ["a", "b", "c"], "status": ["conflict", "congruent", "conflict"]})
    >>> named_views(sp, st)
    {'conflict_test': ['a'], 'congruent_test': ['b']}
    """
    st = dict(zip(status["clip_id"].astype(str), status["status"], strict=True))
    out: dict[str, list[str]] = {}
    for view, (base, wanted) in VIEWS.items():
        out[view] = [cid for cid, s in zip(splits["clip_id"].astype(str), splits["split"].astype(str), strict=True)
                     if s == base and st.get(cid) == wanted]
    return out


def summarize(frame: pd.DataFrame, *, warnings: Sequence[str] = ()) -> dict:
    """Counts per split: clips, speakers, share, per stratum part; views; warnings (JSON-ready)."""
    n = len(frame)
    splits: dict[str, dict] = {}
    for name in _split_order(frame["split"].astype(str).unique()):
        part = frame[frame["split"].astype(str) == name]
        splits[name] = {
            "n_clips": int(len(part)), "share": round(len(part) / n, 4) if n else 0.0,
            "n_speakers": int(part["speaker"].nunique()),
            "status": {s: int((part["status"] == s).sum()) for s in STATUSES},
            "acoustic": {str(k): int(v) for k, v in part["acoustic"].fillna("?").value_counts().sort_index().items()},
        }
        folds = part["fold"].dropna() if "fold" in part.columns else pd.Series([], dtype=object)
        if len(folds) and name == "train":
            splits[name]["folds"] = {str(int(k)): int(v) for k, v in folds.value_counts().sort_index().items()}
    views = named_views(frame[["clip_id", "split"]], frame[["clip_id", "status"]])
    test = frame[frame["split"].astype(str) == "test"]
    summary = {"n_clips": n, "splits": splits, "views": {k: len(v) for k, v in views.items()},
               "warnings": list(warnings)}
    if len(test):
        summary["test_in_no_view"] = int(len(test) - sum(len(v) for v in views.values()))
    return summary


def _split_order(names: Sequence[str]) -> list[str]:
    rank = {"train": 0, "dev": 1, "validation": 1, "test": 2}
    return sorted(names, key=lambda s: (rank.get(s, 3), _natural(s)))


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def split_order(names: Sequence[str]) -> list[str]:
    """Split names in reading order: train, dev/validation, test, then the rest (fold2 before fold10).

    >>> split_order(["test", "fold10", "train", "fold2"])
    ['train', 'test', 'fold2', 'fold10']
    """
    return _split_order(list(names))


# --------------------------------------------------------------------------------------------------
# The workspace step


def split(workspace: Any, *, method: str = "holdout", ratios: Mapping[str, float] | str | None = None,
          seed: int = 0, folds: int | None = None, k: int = 5, group_by: Sequence[str] = ("speaker_id",),
          source: str | os.PathLike | Mapping[str, Any] | None = None, allow_unassigned: bool = False,
          require_all_classes: bool = True, stratify_source: str = "auto") -> dict:
    """Split a workspace's clips and write ``tables/splits.parquet``, ``[split]`` and ``reports/split.json``.

    Args:
        workspace: a :class:`~casebench.workspace.Workspace` or its path.
        method: ``"holdout"`` (train/dev/test, :func:`holdout_splits`), ``"kfold"`` (:func:`kfold_splits`)
            or ``"import"`` (official lists from ``source``, :func:`read_split_lists`).
        ratios, seed, folds, group_by, require_all_classes, stratify_source: see :func:`holdout_splits`
            (``folds`` = cross-validation folds inside train); ``k`` for k-fold.
        source: the official lists for ``"import"``.
        allow_unassigned: for ``"import"``, leave clips no list names out of the splits (counted).

    Returns:
        The summary: ``config`` (as recorded), counts per split (clips, speakers, shares, classes,
        conflict status, folds), view sizes, warnings, and the paths written.
    """
    from casebench.workspace import Workspace, atomic_write_text

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if method not in METHODS:
        raise ConfigError(f"split method {method!r}; expected one of {list(METHODS)}"
                          + (f" ({h})" if (h := did_you_mean(method, METHODS)) else ""))
    clips = ws.read_df("clips")
    n_copies = 0
    if "meta_source_clip" in clips.columns:
        # degraded copies (casebench degrade) are not split: they follow their source clips
        n_copies = int(clips["meta_source_clip"].notna().sum())
        clips = clips[clips["meta_source_clip"].isna()].reset_index(drop=True)
    labels = ws.read_df("labels") if ws.has_table("labels") else None
    if method == "import":
        if source is None:
            raise ConfigError("split --method import needs the official lists (a folder of <split>.txt/.csv, "
                              "or one CSV with a split column)")
        lists, files = read_split_lists(source)
        result = assign_from_lists(clips, lists, allow_unassigned=allow_unassigned, labels=labels)
        result.config["files"] = files
    elif method == "kfold":
        result = kfold_splits(clips, labels, k=k, seed=seed, group_by=group_by, stratify_source=stratify_source,
                              require_all_classes=require_all_classes)
    else:
        if isinstance(ratios, str) or (ratios is not None and not isinstance(ratios, Mapping)):
            ratios = parse_ratios(ratios)
        result = holdout_splits(clips, labels, ratios=ratios, seed=seed, n_folds=folds, group_by=group_by,
                                stratify_source=stratify_source, require_all_classes=require_all_classes)
    table = result.table.copy()
    table["fold"] = table["fold"].astype("Int32")
    path = ws.write_table("splits", table, built_from=ws.versions(["clips", "labels"]))
    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()).hexdigest()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    config = {**result.config, "splits_sha256": digest[:16], "created_at": created}
    ws.set_section("split", config)
    report = {"config": config, **result.summary}
    if n_copies:
        report["warnings"] = [*report.get("warnings", []), f"{n_copies} degraded copies were not split and have no "
                              "split now: run `casebench degrade` again to rebuild them for the new test split"]
    from casebench.workspace import downstream_stale

    stale = downstream_stale(ws)  # the gold, published folders and specs built from the old splits
    if stale:
        report["warnings"] = [*report.get("warnings", []), *stale]
    report_path = ws.reports_dir / "split.json"
    atomic_write_text(report_path, json.dumps(report, indent=2, default=_json_default) + "\n")
    return {**report, "splits_table": str(path), "report": str(report_path)}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
