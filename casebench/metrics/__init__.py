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

from dataclasses import dataclass

from casebench.metrics import categorical, conflict, dimensional, distribution

FAMILIES = ("categorical", "conflict", "distribution", "dimensional")


@dataclass(frozen=True)
class Metric:
    """What a reported metric is: its name, family, direction, a one-line description and a reference."""

    name: str
    family: str
    higher_is_better: bool
    description: str
    reference: str


_SOKOLOVA = ("Sokolova & Lapalme (2009), A systematic analysis of performance measures for classification "
             "tasks, Information Processing & Management 45(4):427-437")
_CASE = ("casebench definition, on the conflict items of Huang et al. (2026), When Tone and Words Disagree: "
         "Towards Robust Speech Emotion Recognition under Acoustic-Semantic Conflict, arXiv:2601.04564")
_GENG = "Geng (2016), Label Distribution Learning, IEEE TKDE 28(7):1734-1748, Table 2"
_LIN89 = ("Lin (1989), A concordance correlation coefficient to evaluate reproducibility, "
          "Biometrics 45(1):255-268")

_ROWS = [
    ("accuracy", "categorical", True, "share of items predicted as their gold label", _SOKOLOVA),
    ("macro_f1", "categorical", True, "mean per-class F1 over the classes present in the gold", _SOKOLOVA),
    ("weighted_f1", "categorical", True, "per-class F1 averaged with weights = gold support", _SOKOLOVA),
    ("uar", "categorical", True, "unweighted average recall (balanced accuracy) over the gold classes",
     "Schuller, Steidl & Batliner (2009), The INTERSPEECH 2009 Emotion Challenge, Proc. Interspeech"),
    ("text_following_rate", "conflict", False,
     "share of conflict items predicted as the words' (semantic) emotion instead of the voice's", _CASE),
    ("errors_matching_text", "conflict", False,
     "among wrong predictions on conflict items, the share that equals the words' emotion", _CASE),
    ("conflict_gap", "conflict", False, "accuracy on congruent items minus accuracy on conflict items",
     _CASE),
    ("chebyshev", "distribution", False, "largest absolute difference of gold and predicted shares", _GENG),
    ("clark", "distribution", False, "Clark distance between gold and predicted distributions", _GENG),
    ("canberra", "distribution", False, "Canberra distance between gold and predicted distributions", _GENG),
    ("kl", "distribution", False, "Kullback-Leibler divergence KL(gold || predicted), in nats", _GENG),
    ("cosine", "distribution", True, "cosine similarity of gold and predicted distributions", _GENG),
    ("intersection", "distribution", True, "sum over classes of min(gold share, predicted share)", _GENG),
    ("js", "distribution", False, "Jensen-Shannon divergence of gold and predicted distributions, in nats",
     "Lin (1991), Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory 37(1):145-151"),
    ("multilabel_macro_f1", "distribution", True,
     "macro-F1 of the classes with share >= 1/K, gold vs predicted, over classes with a gold positive",
     "Wu et al. (2024), EMO-SUPERB: An In-depth Look at Speech Emotion Recognition, arXiv:2402.13018"),
    ("ccc", "dimensional", True, "Lin's concordance correlation coefficient of gold and predicted values",
     _LIN89),
    ("pearson", "dimensional", True, "Pearson correlation of gold and predicted values",
     "Pearson (1896), Regression, heredity, and panmixia, Phil. Trans. R. Soc. A 187:253-318"),
    ("rmse", "dimensional", False, "root mean squared error of predicted against gold values",
     "Hyndman & Koehler (2006), Another look at measures of forecast accuracy, Int. J. Forecasting 22(4)"),
]

METRICS: dict[str, Metric] = {row[0]: Metric(*row) for row in _ROWS}
"""Every metric casebench reports, by name."""

__all__ = ["FAMILIES", "METRICS", "Metric", "categorical", "conflict", "dimensional", "distribution"]
