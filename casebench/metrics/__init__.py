"""Pure scoring: every metric casebench reports, by name, computed from sufficient statistics.

Four families, one module each:

- :mod:`~casebench.metrics.categorical` — from a confusion matrix (..., K, K);
- :mod:`~casebench.metrics.conflict` — from an (acoustic, predicted, semantic) count tensor (..., K, K, K);
- :mod:`~casebench.metrics.distribution` — per-item values (..., n) to be averaged, and multi-label
  TP/FP/FN sums (..., 3K);
- :mod:`~casebench.metrics.dimensional` — from moment sums (..., 6).

Leading batch dimensions are bootstrap resamples. Nothing here reads files or prints, and only numpy is
imported. :data:`METRICS` describes each metric; a metric's function has the same name in its family module.

>>> METRICS["uar"].family, METRICS["uar"].higher_is_better
('categorical', True)
>>> sorted(n for n, m in METRICS.items() if m.family == "dimensional")
['ccc', 'pearson', 'rmse']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from casebench.metrics import categorical, conflict, dimensional, distribution

FAMILIES = ("categorical", "conflict", "distribution", "dimensional")
"""Each family's sufficient statistic, what :attr:`Metric.fn` takes (leading axes = resamples):

- ``categorical``: a confusion matrix (..., K+1, K+1), rows gold, columns predicted (index K = no prediction);
- ``conflict``: a count tensor (..., K+1, K+1, K+1) over (acoustic, predicted, semantic) labels;
- ``distribution``: column sums (..., S) of :attr:`Metric.item_stats` over the items, column 0 = item count;
- ``dimensional``: moment sums (..., 6) of :func:`dimensional.moments`.
"""

PROPERTIES = {
    "batch_consistent": "a stack of statistics gives the stack of values (the bootstrap relies on it)",
    "duplication_invariant": "scoring every item twice gives the same value (a mean over items)",
    "label_permutation_invariant": "renaming the classes in gold and prediction alike changes nothing",
    "bounded_unit": "values lie in [0, 1]",
    "bounded_signed": "values lie in [-1, 1]",
    "nonnegative": "values are >= 0",
    "perfect_is_optimal": "predicting the gold exactly gives the best value (1 or 0 by direction)",
    "symmetric": "swapping gold and prediction changes nothing",
}
"""The invariance and range properties a metric may declare; tests/test_metric_registry.py runs the check of
each declared property on every registered metric, and fails on a metric that declares none of the optional
ones (every metric must be ``batch_consistent`` and ``duplication_invariant``)."""


@dataclass(frozen=True)
class Metric:
    """One reported metric: everything casebench needs to compute, rank, test and describe it.

    Attributes:
        name, family: the metric's name and family (:data:`FAMILIES`).
        higher_is_better: its direction.
        description, reference: a one-line description and the reference it follows.
        fn: the family's sufficient statistic (see :data:`FAMILIES`) -> values, shape (...).
        item_stats: distribution family only: ``f(gold (n, K), pred (n, K)) -> (n, s)``, the per-item
            statistics whose sums ``fn`` takes (after the item count in column 0).
        splits: split kinds the metric applies to (None: every split).
        needs_semantic: needs the words (semantic) labels and the voice target (the conflict family).
        properties: names from :data:`PROPERTIES`.
    """

    name: str
    family: str
    higher_is_better: bool
    description: str
    reference: str
    fn: Callable[..., np.ndarray]
    item_stats: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    splits: tuple[str, ...] | None = None
    needs_semantic: bool = False
    properties: frozenset[str] = frozenset()

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def applies(self, split_kind: str, *, has_semantic: bool = True, target: str = "acoustic_label") -> bool:
        """Whether the metric is reported on a split of ``split_kind``."""
        if self.splits is not None and split_kind not in self.splits:
            return False
        return not self.needs_semantic or (has_semantic and target == "acoustic_label")


def _mean_of(per_item: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """(item_stats, fn) of a metric that is the mean over items of ``per_item(gold, pred)``."""
    def stats(gold, pred):
        return per_item(gold, pred)[:, None]

    def fn(sums):
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums[..., 1] / sums[..., 0]

    return stats, fn


def _multilabel_fn(sums):
    return distribution.multilabel_macro_f1_from_stats(sums[..., 1:])


_SOKOLOVA = ("Sokolova & Lapalme (2009), A systematic analysis of performance measures for classification "
             "tasks, Information Processing & Management 45(4):427-437")
_CASE = ("casebench definition, on the conflict items of Huang et al. (2026), When Tone and Words Disagree: "
         "Towards Robust Speech Emotion Recognition under Acoustic-Semantic Conflict, arXiv:2601.04564")
_GENG = "Geng (2016), Label Distribution Learning, IEEE TKDE 28(7):1734-1748, Table 2"
_LIN89 = ("Lin (1989), A concordance correlation coefficient to evaluate reproducibility, "
          "Biometrics 45(1):255-268")

_BASE = frozenset({"batch_consistent", "duplication_invariant"})
_CAT = _BASE | {"label_permutation_invariant", "bounded_unit", "perfect_is_optimal"}
_DIST = _BASE | {"label_permutation_invariant", "perfect_is_optimal"}


def _dist(name: str, higher: bool, description: str, reference: str, props: set[str]) -> Metric:
    stats, fn = _mean_of(distribution.PER_ITEM[name])
    return Metric(name, "distribution", higher, description, reference, fn, item_stats=stats,
                  properties=_DIST | props)


_ALL = [
    Metric("accuracy", "categorical", True, "share of items predicted as their gold label", _SOKOLOVA,
           categorical.accuracy, properties=_CAT | {"symmetric"}),
    Metric("macro_f1", "categorical", True, "mean per-class F1 over the classes present in the gold", _SOKOLOVA,
           categorical.macro_f1, properties=_CAT),
    Metric("weighted_f1", "categorical", True, "per-class F1 averaged with weights = gold support", _SOKOLOVA,
           categorical.weighted_f1, properties=_CAT),
    Metric("uar", "categorical", True, "unweighted average recall (balanced accuracy) over the gold classes",
           "Schuller, Steidl & Batliner (2009), The INTERSPEECH 2009 Emotion Challenge, Proc. Interspeech",
           categorical.uar, properties=_CAT),
    Metric("text_following_rate", "conflict", False,
           "share of conflict items predicted as the words' (semantic) emotion instead of the voice's", _CASE,
           conflict.text_following_rate, splits=("conflict",), needs_semantic=True,
           properties=_BASE | {"label_permutation_invariant", "bounded_unit", "perfect_is_optimal"}),
    Metric("errors_matching_text", "conflict", False,
           "among wrong predictions on conflict items, the share that equals the words' emotion", _CASE,
           conflict.errors_matching_text, splits=("conflict",), needs_semantic=True,
           properties=_BASE | {"label_permutation_invariant", "bounded_unit"}),
    Metric("conflict_gap", "conflict", False, "accuracy on congruent items minus accuracy on conflict items",
           _CASE, conflict.conflict_gap, splits=("all",), needs_semantic=True,
           properties=_BASE | {"label_permutation_invariant", "bounded_signed"}),
    _dist("chebyshev", False, "largest absolute difference of gold and predicted shares", _GENG,
          {"bounded_unit", "nonnegative", "symmetric"}),
    _dist("clark", False, "Clark distance between gold and predicted distributions", _GENG,
          {"nonnegative", "symmetric"}),
    _dist("canberra", False, "Canberra distance between gold and predicted distributions", _GENG,
          {"nonnegative", "symmetric"}),
    _dist("kl", False, "Kullback-Leibler divergence KL(gold || predicted), in nats", _GENG, {"nonnegative"}),
    _dist("cosine", True, "cosine similarity of gold and predicted distributions", _GENG,
          {"bounded_unit", "symmetric"}),
    _dist("intersection", True, "sum over classes of min(gold share, predicted share)", _GENG,
          {"bounded_unit", "symmetric"}),
    _dist("js", False, "Jensen-Shannon divergence of gold and predicted distributions, in nats",
          "Lin (1991), Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory 37(1):145-151",
          {"nonnegative", "symmetric"}),
    Metric("multilabel_macro_f1", "distribution", True,
           "macro-F1 of the classes with share >= 1/K, gold vs predicted, over classes with a gold positive",
           "Wu et al. (2024), EMO-SUPERB: An In-depth Look at Speech Emotion Recognition, arXiv:2402.13018",
           _multilabel_fn, item_stats=distribution.multilabel_stats,
           properties=_DIST | {"bounded_unit"}),
    Metric("ccc", "dimensional", True, "Lin's concordance correlation coefficient of gold and predicted values",
           _LIN89, dimensional.ccc_from_moments, properties=_BASE | {"bounded_signed", "symmetric",
                                                                      "perfect_is_optimal"}),
    Metric("pearson", "dimensional", True, "Pearson correlation of gold and predicted values",
           "Pearson (1896), Regression, heredity, and panmixia, Phil. Trans. R. Soc. A 187:253-318",
           dimensional.pearson_from_moments, properties=_BASE | {"bounded_signed", "symmetric",
                                                                  "perfect_is_optimal"}),
    Metric("rmse", "dimensional", False, "root mean squared error of predicted against gold values",
           "Hyndman & Koehler (2006), Another look at measures of forecast accuracy, Int. J. Forecasting 22(4)",
           dimensional.rmse_from_moments, properties=_BASE | {"nonnegative", "symmetric", "perfect_is_optimal"}),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
"""The one metric registry: every metric casebench reports, by name. A new metric is one entry here; the
scorer (:mod:`casebench.scoring`), the spec's ``main_metric`` check, the report and the board read it."""


def family(name: str) -> list[Metric]:
    """The registered metrics of one family, in registry order."""
    return [m for m in METRICS.values() if m.family == name]


__all__ = ["FAMILIES", "METRICS", "PROPERTIES", "Metric", "categorical", "conflict", "dimensional", "distribution",
           "family"]
