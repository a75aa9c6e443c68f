"""The pure scoring core: sufficient statistics -> metric values and bootstrap draws, returned explicitly.

No I/O, no printing, no hidden state. Every scorer of casebench (``evaluate``, ``compare``, group
breakdowns in :mod:`casebench.fairness`, the robustness summary, the leaderboard's workers and constant
baselines) computes its numbers here, from the one metric registry (:data:`casebench.metrics.METRICS`):

* :func:`categorical` — the categorical and conflict families from the count tensor ``T[target, predicted,
  other label]`` (index K = unknown / no prediction); :func:`constant_categorical` — a constant system's
  from another system's tensor summed over the prediction axis (same items, same resamples);
* :func:`distribution` and :func:`dimensional` — from summed per-item statistics;
* :func:`paired_categorical` — two systems' tensors drawn from *one* resample of the joint cells (a paired
  bootstrap), built in blocks of resamples so memory stays bounded whatever the number of classes;
* :func:`entry` — the JSON entry of a value and its draws: ``{"value", "ci_low", "ci_high", "n",
  "n_clusters", "n_distinct_resamples"}``; :func:`interval_warnings` — the results' ``warnings`` when an
  interval rests on fewer than :data:`MIN_CLUSTERS` clusters or :data:`MIN_DISTINCT` distinct resamples
  (one per split), :func:`group_warnings` and :func:`robustness_warnings` the same for group breakdowns and
  degraded conditions (one message per breakdown, naming the groups or conditions);
* :class:`Prior` and :func:`prior_from_gold` / :func:`prior_from_spec` — the one constant prior (majority class,
  mean distribution, mean V/A/D) used by the constant baselines here and by the train-prior reference
  system in :mod:`casebench.baselines`.

A :class:`Scores` holds ``values`` (metric -> float), ``draws`` (metric -> (n_boot,) array, empty without a
bootstrap), ``n`` and the interval support (``n_clusters``, ``n_distinct``).

>>> import numpy as np
>>> from casebench.stats import Bootstrap
>>> s = categorical(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), None, 3, "all", Bootstrap(200, 0))
>>> round(s.values["accuracy"], 2), s.draws["accuracy"].shape, s.n_clusters
(0.75, (200,), 4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from casebench.metrics import METRICS, family
from casebench.metrics import categorical as cat_metrics
from casebench.metrics import dimensional as dim_metrics
from casebench.stats import Bootstrap, occurring, percentile_ci

MIN_CLUSTERS = 10
"""Fewer clusters (speakers, or items under an item bootstrap) than this and an interval gets a warning."""
MIN_DISTINCT = 100
"""Fewer distinct resamples than this and an interval gets a warning (its percentiles repeat a few values)."""
BLOCK_CELLS = 4_000_000
"""Elements of a dense (resamples x cells) block: count tensors are built this many at a time."""


@dataclass
class Scores:
    """Metric values of one set of items, with their bootstrap draws and what the interval rests on."""

    values: dict[str, float]
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    n: int = 0
    n_clusters: int | None = None
    n_distinct: int | None = None
    #: categorical with ``per_class``: ``precision``/``recall``/``f1`` -> (K+1,) values and (n_boot, K+1) draws
    per_class: dict[str, np.ndarray] = field(default_factory=dict)
    per_class_draws: dict[str, np.ndarray] = field(default_factory=dict)
    #: categorical with ``keep_margin``: counts summed over the prediction axis, (point (m*m,) by cell
    #: ``target * m + other``, the cells that occur (U,) and their resampled counts (n_boot, U); None, None
    #: without a bootstrap), m = K + 1
    margin: tuple | None = None

    def entries(self) -> dict[str, dict]:
        """``{metric: entry}`` (see :func:`entry`)."""
        return {name: entry(v, self.draws.get(name), self.n, self.n_clusters, self.n_distinct)
                for name, v in self.values.items()}


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def entry(value, draws: np.ndarray | None, n: int, n_clusters: int | None = None,
          n_distinct: int | None = None) -> dict:
    """The results entry of one metric: value, 95% percentile CI of ``draws``, items and interval support.

    >>> entry(0.5, np.array([0.4, 0.5, 0.6]), 10, 10, 3)["n_distinct_resamples"]
    3
    """
    lo, hi = percentile_ci(draws) if draws is not None and len(draws) else (np.nan, np.nan)
    out = {"value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi), "n": int(n)}
    if draws is not None and len(draws):
        out["n_clusters"] = None if n_clusters is None else int(n_clusters)
        out["n_distinct_resamples"] = None if n_distinct is None else int(n_distinct)
    return out


def distinct_rows(a: np.ndarray) -> int:
    """Number of distinct rows of a (resamples x statistics) array: the distinct resamples a metric sees."""
    a = np.ascontiguousarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.shape[0] == 0:
        return 0
    return int(np.unique(a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()).size)


def _units(boot: Bootstrap, n: int) -> int:
    return n if boot.clusters is None else (int(boot.clusters.max()) + 1 if boot.clusters.size else 0)


# --------------------------------------------------------------------------------------------------------
# Categorical and conflict families


def count_codes(target: np.ndarray, pred: np.ndarray, other: np.ndarray | None, k: int) -> np.ndarray:
    """Cell code of each item in the (K+1)^3 tensor ``T[target, pred, other]``: -1 (no prediction, other label
    unknown) goes to index K."""
    m = k + 1
    p = np.where(pred < 0, k, pred)
    s = np.full_like(target, k) if other is None else np.where(other < 0, k, other)
    return (target * m + p) * m + s


def _known_other(t: np.ndarray) -> np.ndarray:
    """The tensor with the "other label unknown" slice zeroed (such items are neither conflict nor congruent)."""
    t = t.copy()
    t[..., -1] = 0
    return t


def _categorical_values(t: np.ndarray, metrics: Sequence, per_class: bool) -> dict[str, np.ndarray]:
    cm = t.sum(-1)
    out = {m.name: m.fn(cm) if m.family == "categorical" else m.fn(_known_other(t)) for m in metrics}
    if per_class:
        out["precision"], out["recall"], out["f1"] = cat_metrics.precision_recall_f1(cm)
    return out


def _blocks(n_boot: int, cells: int):
    step = max(1, BLOCK_CELLS // max(cells, 1))
    for start in range(0, n_boot, step):
        yield slice(start, min(n_boot, start + step))


def _dense(counts: np.ndarray, cells: np.ndarray, size: int) -> np.ndarray:
    """(b, size) dense counts from (b, U) counts of used cells mapped to ``cells`` (several may share one)."""
    b = counts.shape[0]
    idx = (np.arange(b)[:, None] * size + cells[None, :]).ravel()
    return np.bincount(idx, weights=counts.ravel(), minlength=b * size).reshape(b, size)


def applicable(fam: str, split_kind: str, *, has_semantic: bool, target: str) -> list:
    """Registered metrics of family ``fam`` reported on a split of ``split_kind``."""
    return [m for m in family(fam) if m.applies(split_kind, has_semantic=has_semantic, target=target)]


def categorical(target: np.ndarray, pred: np.ndarray, other: np.ndarray | None, k: int, split_kind: str,
                boot: Bootstrap, *, target_name: str = "acoustic_label", per_class: bool = False,
                keep_margin: bool = False) -> Scores:
    """Categorical (and, where they apply, conflict) metrics of predictions ``pred`` against ``target``.

    Args:
        target: gold labels (taxonomy indices >= 0) of the items.
        pred: predicted indices (-1 = no prediction, counted wrong).
        other: the other channel's labels (the words' label when the target is the voice's; -1 unknown), or None.
        k: number of classes.
        split_kind: the split's kind (conflict metrics apply to ``conflict``/``all`` splits only).
        boot: the resampling plan of these items.
        target_name: ``acoustic_label`` or ``semantic_label`` (conflict metrics need the voice as target).
        per_class: also per-class ``precision``/``recall``/``f1`` as (K,) values and (n_boot, K) draws.
        keep_margin: keep the counts summed over the prediction axis in ``Scores.margin`` (point and resampled,
            the same draws), from which :func:`constant_categorical` scores a constant system without resampling.
    """
    n, m = int(target.size), k + 1
    codes = count_codes(target, pred, other, k)
    point = np.bincount(codes, minlength=m ** 3).astype(float)
    used, counts = boot.counts_used(codes) if boot.n_boot and n else (None, None)
    out = _categorical_scores(point, used, counts, n, _units(boot, n), k, split_kind, other is not None,
                              target_name, per_class)
    if keep_margin:
        margin = point.reshape(m, m, m).sum(1).ravel()  # cell t * m + s
        out.margin = (margin, None, None)
        if used is not None:
            ts = (used // (m * m)) * m + used % m
            ts_used, local = occurring(ts)
            onehot = np.zeros((used.size, ts_used.size))
            onehot[np.arange(used.size), local] = 1.0
            out.margin = (margin, ts_used, counts @ onehot)  # sums of integer counts: exact
    return out


def constant_categorical(margin: tuple, label: int, n: int, n_clusters: int | None, k: int, split_kind: str,
                         has_other: bool, *, target_name: str = "acoustic_label") -> Scores:
    """Scores of a system predicting ``label`` for every item, from another system's :attr:`Scores.margin` on
    the same items: its count tensor is that margin placed in column ``label``, and so is each resampled one
    (the same resamples). The same numbers as :func:`categorical` on a constant prediction array, without a
    second resampling pass, under a cluster bootstrap (or none); an item bootstrap draws a multinomial over
    the cells that occur, so there a constant system scored on its own gets other draws.

    >>> t, o = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 0, 1, 2, 1, 2])
    >>> b = Bootstrap(50, 0, np.array([0, 0, 1, 1, 2, 2]))
    >>> model = categorical(t, np.array([0, 1, 2, 2, 0, 1]), o, 3, "all", b, keep_margin=True)
    >>> const = constant_categorical(model.margin, 2, 6, 3, 3, "all", True)
    >>> direct = categorical(t, np.full(6, 2), o, 3, "all", b)
    >>> const.entries() == direct.entries()
    True
    """
    m = k + 1
    margin, ts_used, ts_counts = margin
    point = np.zeros(m ** 3)
    t, s = np.divmod(np.arange(m * m), m)
    point[(t * m + label) * m + s] = margin
    used = None if ts_used is None else (ts_used // m * m + label) * m + ts_used % m  # increasing, like ts_used
    return _categorical_scores(point, used, ts_counts, n, n_clusters, k, split_kind, has_other, target_name,
                               False)


def _categorical_scores(point: np.ndarray, used: np.ndarray | None, counts: np.ndarray | None, n: int,
                        n_clusters: int | None, k: int, split_kind: str, has_other: bool, target_name: str,
                        per_class: bool) -> Scores:
    """Scores from the point count tensor (flat) and the resampled counts of the cells ``used`` (or None)."""
    metrics = [*family("categorical"), *applicable("conflict", split_kind, has_semantic=has_other,
                                                   target=target_name)]
    m = k + 1
    size = m ** 3
    values = _categorical_values(point.reshape(m, m, m), metrics, per_class)
    pc = ("precision", "recall", "f1")
    out = Scores({name: float(v) for name, v in values.items() if name not in pc}, n=n,
                 n_clusters=n_clusters, per_class={name: values[name] for name in pc if name in values})
    if counts is None:
        return out
    out.n_distinct = distinct_rows(counts)
    draws: dict[str, list] = {}
    for sl in _blocks(counts.shape[0], size):
        t = _dense(counts[sl], used, size).reshape(-1, m, m, m)
        for name, v in _categorical_values(t, metrics, per_class).items():
            draws.setdefault(name, []).append(v)
    out.draws = {name: np.concatenate(v) for name, v in draws.items() if name not in pc}
    out.per_class_draws = {name: np.concatenate(v) for name, v in draws.items() if name in pc}
    return out


def paired_categorical(target: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, other: np.ndarray | None,
                       k: int, split_kind: str, boot: Bootstrap, *,
                       target_name: str = "acoustic_label") -> tuple[Scores, Scores]:
    """Scores of two systems on the same items and the very same resamples (for a paired difference).

    A resample draws counts of the *joint* cells (target, prediction A, prediction B, other) that occur, so
    both systems see the same items; each system's (K+1)^3 tensor is then built a block of resamples at a time,
    so memory is bounded by :data:`BLOCK_CELLS`, not by resamples x classes^3.
    """
    metrics = [*family("categorical"), *applicable("conflict", split_kind, has_semantic=other is not None,
                                                   target=target_name)]
    n, m = int(target.size), k + 1
    size = m ** 3
    ca, cb = count_codes(target, pred_a, other, k), count_codes(target, pred_b, other, k)
    joint = ca * size + cb
    out = []
    for codes in (ca, cb):
        point = np.bincount(codes, minlength=size).astype(float).reshape(m, m, m)
        out.append(Scores({n_: float(v) for n_, v in _categorical_values(point, metrics, False).items()}, n=n,
                          n_clusters=_units(boot, n)))
    if not boot.n_boot or n == 0:
        return out[0], out[1]
    used, counts = boot.counts_used(joint)
    distinct = distinct_rows(counts)
    cells = (used // size, used % size)
    draws: list[dict[str, list]] = [{}, {}]
    for sl in _blocks(boot.n_boot, size):
        for side in (0, 1):
            t = _dense(counts[sl], cells[side], size).reshape(-1, m, m, m)
            for name, v in _categorical_values(t, metrics, False).items():
                draws[side].setdefault(name, []).append(v)
    for side in (0, 1):
        out[side].draws = {name: np.concatenate(v) for name, v in draws[side].items()}
        out[side].n_distinct = distinct
    return out[0], out[1]


# --------------------------------------------------------------------------------------------------------
# Distribution and dimensional families


def distribution_stats(gold: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, dict[str, slice]]:
    """Per-item statistics of every registered distribution metric, stacked after a column of ones (the item
    count), and each metric's columns."""
    cols, where, at = [np.ones((len(gold), 1))], {}, 1
    for m in family("distribution"):
        s = np.asarray(m.item_stats(gold, pred), dtype=np.float64).reshape(len(gold), -1)
        cols.append(s)
        where[m.name] = slice(at, at + s.shape[1])
        at += s.shape[1]
    return np.hstack(cols), where


def distribution_values(sums: np.ndarray, where: Mapping[str, slice]) -> dict[str, np.ndarray]:
    """Metric values from summed :func:`distribution_stats` (..., S)."""
    return {name: METRICS[name].fn(np.concatenate([sums[..., :1], sums[..., sl]], axis=-1))
            for name, sl in where.items()}


def _from_sums(stats: np.ndarray, boot: Bootstrap, values) -> tuple[dict, dict, int | None]:
    point = values(stats.sum(0))
    if not boot.n_boot or len(stats) == 0:
        return point, {}, None
    sums = boot.sums(stats)
    return point, values(sums), distinct_rows(sums)


def distribution(gold: np.ndarray, pred: np.ndarray, boot: Bootstrap) -> Scores:
    """Distribution metrics of predicted distributions ``pred`` (n, K) against ``gold`` (n, K)."""
    stats, where = distribution_stats(gold, pred)
    point, draws, distinct = _from_sums(stats, boot, lambda s: distribution_values(s, where))
    return Scores({k: float(v) for k, v in point.items()}, draws, len(gold), _units(boot, len(gold)), distinct)


def dimensional_stats(gold: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray]) -> np.ndarray:
    """Moment rows of each dimension side by side (6 per dimension); items unknown on a side add zeros."""
    blocks = []
    for d in gold:
        ok = np.isfinite(gold[d]) & np.isfinite(pred[d])
        blocks.append(dim_metrics.moments(np.where(ok, gold[d], 0.0), np.where(ok, pred[d], 0.0)) * ok[:, None])
    return np.column_stack(blocks) if blocks else np.zeros((0, 0))


def dimensional_values(sums: np.ndarray, dims: Sequence[str]) -> dict[str, np.ndarray]:
    """Per dimension (``metric:dimension``) and mean over dimensions (``metric``) from moment sums."""
    out = {}
    for m in family("dimensional"):
        per = [m.fn(sums[..., 6 * j:6 * j + 6]) for j in range(len(dims))]
        out.update({f"{m.name}:{d}": v for d, v in zip(dims, per, strict=True)})
        out[m.name] = np.mean(per, axis=0)
    return out


def dimensional(gold: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray], boot: Bootstrap
                ) -> tuple[Scores, dict[str, Scores]]:
    """Dimensional metrics, mean over the dimensions, and per dimension (``{dim: Scores}``)."""
    dims = list(gold)
    stats = dimensional_stats(gold, {d: pred[d] for d in dims})
    point, draws, distinct = _from_sums(stats, boot, lambda s: dimensional_values(s, dims))
    n_items = int(np.any(stats[:, 0::6] > 0, axis=1).sum()) if stats.size else 0
    units = _units(boot, len(stats))
    names = [m.name for m in family("dimensional")]
    mean = Scores({n: float(point[n]) for n in names}, {n: draws[n] for n in names if n in draws}, n_items,
                  units, distinct)
    per = {}
    for j, d in enumerate(dims):
        keys = {n: f"{n}:{d}" for n in names}
        per[d] = Scores({n: float(point[k]) for n, k in keys.items()},
                        {n: draws[k] for n, k in keys.items() if k in draws}, int(stats[:, 6 * j].sum()), units,
                        distinct)
    return mean, per


# --------------------------------------------------------------------------------------------------------
# Paired differences, warnings


def paired_entries(a: Scores, b: Scores, n: int) -> dict:
    """Per metric: A, B, and A − B with its paired interval and a two-sided bootstrap p-value."""
    from casebench.stats import paired_p_value

    out = {}
    for name in a.values:
        diff = None if name not in a.draws else a.draws[name] - b.draws[name]
        out[name] = {"a": _num(a.values[name]), "b": _num(b.values[name]),
                     "diff": entry(a.values[name] - b.values[name], diff, n, a.n_clusters, a.n_distinct),
                     "p_value": None if diff is None else _num(paired_p_value(diff))}
    return out


def support(entries) -> tuple[int, int | None] | None:
    """(fewest clusters, fewest distinct resamples) over the entries that have an interval, or None when none
    has one (no bootstrap)."""
    entries = [e for e in entries if isinstance(e, Mapping) and e.get("n_clusters") is not None]
    if not entries:
        return None
    distinct = [e["n_distinct_resamples"] for e in entries if e.get("n_distinct_resamples") is not None]
    return min(e["n_clusters"] for e in entries), (min(distinct) if distinct else None)


def thin(entries) -> tuple[int, int | None] | None:
    """:func:`support` of intervals that rest on fewer than :data:`MIN_CLUSTERS` clusters or
    :data:`MIN_DISTINCT` distinct resamples (None when they do not: they are not thin)."""
    s = support(entries)
    return s if s is not None and (s[0] < MIN_CLUSTERS or (s[1] is not None and s[1] < MIN_DISTINCT)) else None


def _clusters_word(unit: str, one: bool = False) -> str:
    return ("speaker cluster" if unit == "speaker" else "item") + ("" if one else "s")


_ROUGH = "they understate the uncertainty; treat them as rough"


def interval_warnings(scores: Mapping[str, Mapping], unit: str, where: str = "split") -> list[str]:
    """Messages for the results' ``warnings``: one per split whose intervals rest on fewer than
    :data:`MIN_CLUSTERS` clusters or :data:`MIN_DISTINCT` distinct resamples.

    >>> e = {"uar": {"value": .2, "ci_low": .2, "ci_high": .2, "n": 9, "n_clusters": 2, "n_distinct_resamples": 3}}
    >>> interval_warnings({"all": e}, "speaker")  # doctest: +NORMALIZE_WHITESPACE
    ["split 'all': 95% intervals rest on 2 speaker clusters (fewer than 10) and 3 distinct resamples
      (fewer than 100): they understate the uncertainty; treat them as rough"]
    """
    out = []
    for name, metrics in scores.items():
        s = thin(metrics.values())
        if s is None:
            continue
        clusters, distinct = s
        parts = []
        if clusters < MIN_CLUSTERS:
            parts.append(f"{clusters} {_clusters_word(unit, clusters == 1)} (fewer than {MIN_CLUSTERS})")
        if distinct is not None and distinct < MIN_DISTINCT:
            parts.append(f"{distinct} distinct resamples (fewer than {MIN_DISTINCT})")
        out.append(f"{where} {str(name)!r}: 95% intervals rest on {' and '.join(parts)}: {_ROUGH}")
    return out


MAX_LISTED = 20
"""A breakdown warning names at most this many groups or conditions (and says how many more)."""


def breakdown_warning(what: str, members: Mapping[str, Sequence[Mapping]], unit: str, noun: str,
                      derived: str | None = None) -> str | None:
    """One message for the results' ``warnings`` about a breakdown (groups of a column, robustness
    conditions): which of its ``members`` (name -> that member's metric entries) have intervals resting on
    fewer than :data:`MIN_CLUSTERS` clusters or :data:`MIN_DISTINCT` distinct resamples (the first
    :data:`MAX_LISTED`, then how many more; each with its clusters when they differ), with the range of
    clusters and distinct resamples; None when no member's are thin.
    ``derived`` names intervals computed from the members' draws (gaps), rough where a member's are.

    >>> e = lambda c, d: [{"value": .5, "ci_low": .4, "ci_high": .6, "n": 30, "n_clusters": c,
    ...                    "n_distinct_resamples": d}]
    >>> breakdown_warning("groups by 'gender'", {"f": e(2, 40), "m": e(25, 1000), "x": e(4, 300)}, "speaker",
    ...                   "group")  # doctest: +NORMALIZE_WHITESPACE
    "groups by 'gender': the 95% intervals of 2 of 3 groups rest on 2-4 speaker clusters (fewer than 10) or 40
     distinct resamples (fewer than 100): 'f' (2 speakers), 'x' (4 speakers); they understate the uncertainty;
     treat them as rough"
    """
    rough = {str(name): s for name, entries in members.items() if (s := thin(entries)) is not None}
    if not rough:
        return None
    with_ci = sum(support(entries) is not None for entries in members.values())

    def span(values: list[int]) -> str:
        return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"

    few_clusters = {n: s[0] for n, s in rough.items() if s[0] < MIN_CLUSTERS}
    few_distinct = [s[1] for s in rough.values() if s[1] is not None and s[1] < MIN_DISTINCT]
    parts = []
    if few_clusters:
        counts = list(few_clusters.values())
        parts.append(f"{span(counts)} {_clusters_word(unit, max(counts) == 1)} (fewer than {MIN_CLUSTERS})")
    if few_distinct:
        parts.append(f"{span(few_distinct)} distinct resamples (fewer than {MIN_DISTINCT})")
    both = len(few_clusters) == len(few_distinct) == len(rough)
    # each member's clusters when they differ (the number a reader wants: how few speakers a group has)
    show = len(set(few_clusters.values())) > 1
    unit_short = "speakers" if unit == "speaker" else "items"
    names = list(rough)[:MAX_LISTED]
    listed = [f"{n!r} ({few_clusters[n]} {unit_short})" if show and n in few_clusters else f"{n!r}" for n in names]
    if len(rough) > MAX_LISTED:
        listed.append(f"and {len(rough) - MAX_LISTED} more")
    head = (f"{what}: the 95% intervals of {len(rough)} of {with_ci} {noun if with_ci == 1 else noun + 's'} "
            f"rest on {(' and ' if both else ' or ').join(parts)}")
    text = f"{head}: {', '.join(listed)}"
    if derived:
        text += f"; so do the {derived} that involve them"
    return f"{text}; {_ROUGH}"


def entries_of(tree) -> list[Mapping]:
    """Every metric entry (a mapping with ``value`` and ``n``) anywhere in a nested part of the results."""
    if isinstance(tree, Mapping):
        if "value" in tree and "n" in tree:
            return [tree]
        return [e for v in tree.values() for e in entries_of(v)]
    if isinstance(tree, list):
        return [e for v in tree for e in entries_of(v)]
    return []


def group_warnings(groups: Mapping[str, Mapping]) -> list[str]:
    """One message per ``results["groups"]`` column whose groups have thin intervals (see
    :func:`breakdown_warning`)."""
    out = []
    for column, b in groups.items():
        members = {g: entries_of([v.get("metrics"), v.get("recall")]) for g, v in b["groups"].items()}
        rough = {g for g, entries in members.items() if thin(entries) is not None}
        gaps = [k for k in ("largest_gap", "recall_gaps")
                if any(rough & {v.get("best"), v.get("worst")} for v in (b.get(k) or {}).values())]
        derived = " and ".join({"largest_gap": "largest-gap", "recall_gaps": "recall-gap"}[k] for k in gaps)
        msg = breakdown_warning(f"groups by {str(column)!r}", members, b.get("unit", "item"), "group",
                                f"{derived} intervals" if derived else None)
        out += [msg] if msg else []
    return out


def robustness_warnings(robustness: Mapping) -> list[str]:
    """The message for ``results["robustness"]`` when conditions have thin intervals (clean, degraded and
    drop entries of each condition; see :func:`breakdown_warning`)."""
    members = {name: entries_of([c.get("clean"), c.get("degraded"), c.get("drop")])
               for name, c in robustness["conditions"].items()}
    msg = breakdown_warning("robustness", members, robustness.get("unit", "item"), "condition")
    return [msg] if msg else []


# --------------------------------------------------------------------------------------------------------
# The constant prior


#: Distribution outputs of the reference systems (the LDL baselines and the constant prior) are mixed with this
#: much of the uniform distribution: a class given (almost) nothing then costs a bounded KL on a clip whose raters
#: chose it. The constant gets the same floor as the models, else a class never chosen in train but chosen in
#: test costs it P·ln(P/1e-12) (about 1.2 nats at P = 0.05) against P·ln(P/3e-5) for a model: a handicap larger
#: than the gaps LDL papers report (EM2LDL: 0.8477 for the train mean against 0.8462 for the best model).
LDL_SMOOTHING = 1e-3


def smooth_distribution(p: np.ndarray) -> np.ndarray:
    """Mix ``p`` (..., K) with :data:`LDL_SMOOTHING` of the uniform distribution.

    >>> q = smooth_distribution(np.array([1.0, 0.0]))
    >>> np.round(q, 12).tolist(), round(float(q.sum()), 12)
    ([0.9995, 0.0005], 1.0)
    """
    p = np.asarray(p, dtype=float)
    return (1.0 - LDL_SMOOTHING) * p + LDL_SMOOTHING / p.shape[-1]


@dataclass(frozen=True)
class Prior:
    """What a constant reference system predicts: the majority label, the mean distribution and mean V/A/D,
    and where they come from (``source``: ``train``, ``spec`` or ``test``; ``n`` items)."""

    source: str
    n: int | None
    label: int | None = None
    distribution: np.ndarray | None = None
    vad: dict[str, float] = field(default_factory=dict)
    label_counts: np.ndarray | None = None

    @property
    def oracle(self) -> bool:
        """True when computed from the test labels themselves (not a fair baseline)."""
        return self.source == "test"

    @property
    def name(self) -> str:
        """The name the reference row carries everywhere (CLI, JSON, report, board)."""
        return "test prior (oracle)" if self.oracle else "train prior"


def prior_from_gold(gold, source: str = "train") -> Prior:
    """The prior of a labelled table (a :class:`casebench.benchmarks.Gold`): majority acoustic label (ties to
    the first in taxonomy order), mean distribution over items that have one (smoothed like the LDL baselines'
    outputs, :func:`smooth_distribution`), mean of each V/A/D dimension.

    >>> from casebench.benchmarks import Gold
    >>> from casebench.taxonomy import get_taxonomy
    >>> g = Gold(ids=np.array(["a", "b", "c"]), taxonomy=get_taxonomy("ekman7"), acoustic=np.array([5, 5, 0]))
    >>> p = prior_from_gold(g)
    >>> p.label, p.name
    (5, 'train prior')
    """
    k = len(gold.taxonomy)
    counts = label = dist = None
    if gold.acoustic is not None and (gold.acoustic >= 0).any():
        counts = np.bincount(gold.acoustic[gold.acoustic >= 0], minlength=k).astype(float)
        label = int(counts.argmax())
    if gold.distribution is not None and np.isfinite(gold.distribution).all(1).any():
        rows = gold.distribution[np.isfinite(gold.distribution).all(1)]
        dist = rows.mean(0)
        dist = smooth_distribution(dist / dist.sum())
    vad = {d: float(np.nanmean(v)) for d, v in gold.vad.items() if np.isfinite(v).any()}
    return Prior(source, len(gold), label, dist, vad, counts)


def prior_from_spec(prior: Mapping, taxonomy) -> Prior:
    """The prior a benchmark spec carries (``prior:``: label counts or shares, a distribution, V/A/D means)."""
    labels = list(taxonomy.labels)
    counts = label = dist = None
    if prior.get("labels"):
        counts = np.array([float(prior["labels"].get(lab, 0.0)) for lab in labels])
        label = int(counts.argmax()) if counts.sum() > 0 else None
    if prior.get("distribution"):
        d = np.array([float(prior["distribution"].get(lab, 0.0)) for lab in labels])
        dist = smooth_distribution(d / d.sum()) if d.sum() > 0 else None
    return Prior("spec", prior.get("n"), label, dist, dict(prior.get("vad") or {}), counts)
