"""Single-label classification metrics, computed from a confusion matrix.

Every metric takes a confusion matrix ``cm`` of shape (..., K, K) (rows = gold, columns = predicted; counts
or bootstrap weights) and returns shape (...): a stack of resampled matrices is scored in one call. Values are
float64 and NaN when undefined (an empty matrix).

Class-set rule: the label list (hence K and the class order) always comes from the caller's taxonomy, never
from the predictions. Macro averages (:func:`macro_f1`, :func:`uar`) run over the classes with gold support
> 0 *in that matrix*, so a class absent from a split (or from a bootstrap resample) neither counts as 0 nor
as 1. This equals scikit-learn's ``f1_score(y, p, labels=<classes present in y>, average="macro",
zero_division=0)`` and ``balanced_accuracy_score(y, p)``. Per-class precision, recall and F1 with a zero
denominator are 0 (sklearn ``zero_division=0``).

>>> cm = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], n_classes=3)
>>> float(accuracy(cm)), float(uar(cm))
(0.75, 0.8333333333333334)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """Count matrix ``cm[t, p]`` = number of items with gold class t predicted as p.

    Args:
        y_true: gold class indices in 0..K-1 (taxonomy order).
        y_pred: predicted class indices in 0..K-1. A missing prediction has no index of its own: the caller
            maps it to a label other than the gold one, so that it counts as wrong.
        n_classes: K, the size of the caller's label list.

    Returns:
        (K, K) int64 array.

    Raises:
        ValueError: the arrays differ in length or hold an index outside 0..K-1.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], n_classes=2).tolist()
    [[1, 0], [1, 1]]
    """
    t, p = _indices(n_classes, y_true=y_true, y_pred=y_pred)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _indices(n_classes: int, **arrays: ArrayLike) -> list[np.ndarray]:
    """The named arrays as flat int64 class indices; ValueError unless equally long and within 0..K-1."""
    out = [np.asarray(a, dtype=np.int64).ravel() for a in arrays.values()]
    if len({a.size for a in out}) > 1:
        raise ValueError(f"{', '.join(arrays)} have {[a.size for a in out]} items; expected the same number")
    for name, a in zip(arrays, out, strict=True):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} holds class indices in [{a.min()}, {a.max()}]; "
                             f"expected 0..{n_classes - 1} (map a missing prediction to a wrong label)")
    return out


def _div(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den with ``empty`` where den == 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)


def _counts(cm: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, gold support, predicted count), each (..., K)."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"confusion matrix has shape {cm.shape}; expected (..., K, K)")
    return np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-1), cm.sum(axis=-2)


def precision_recall_f1(cm: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1, each (..., K); 0 where a denominator is 0.

    P_k = TP_k / (TP_k + FP_k),  R_k = TP_k / (TP_k + FN_k),  F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)
    (van Rijsbergen 1979; Sokolova & Lapalme 2009, Inf. Process. Manag. 45(4)).

    >>> [x.tolist() for x in precision_recall_f1([[1, 1], [0, 2]])]
    [[1.0, 0.6666666666666666], [0.5, 1.0], [0.6666666666666666, 0.8]]
    """
    tp, support, predicted = _counts(cm)
    return _div(tp, predicted, 0.0), _div(tp, support, 0.0), _div(2 * tp, support + predicted, 0.0)


def accuracy(cm: ArrayLike) -> np.ndarray:
    """Share of items predicted correctly: trace(cm) / sum(cm); NaN for an empty matrix.

    Also called weighted accuracy (WA) in speech emotion recognition.

    >>> float(accuracy([[3, 1], [0, 4]]))
    0.875
    """
    tp, support, _ = _counts(cm)
    return _div(tp.sum(axis=-1), support.sum(axis=-1), np.nan)


def macro_f1(cm: ArrayLike) -> np.ndarray:
    """Unweighted mean of per-class F1 over the classes with gold support > 0 (see module docstring).

    macro-F1 = (1/|C|) Σ_{k∈C} 2 TP_k / (2 TP_k + FP_k + FN_k),  C = {k : TP_k + FN_k > 0}
    (Sokolova & Lapalme 2009).

    >>> round(float(macro_f1([[1, 1], [0, 2]])), 4)
    0.7333
    """
    _, support, _ = _counts(cm)
    f1 = precision_recall_f1(cm)[2]
    present = support > 0
    return _div(np.where(present, f1, 0.0).sum(axis=-1), present.sum(axis=-1), np.nan)


def weighted_f1(cm: ArrayLike) -> np.ndarray:
    """Per-class F1 averaged with weights = gold support (sklearn ``average="weighted"``).

    weighted-F1 = Σ_k n_k F1_k / Σ_k n_k,  n_k = TP_k + FN_k.

    >>> round(float(weighted_f1([[1, 1], [0, 2]])), 4)
    0.7333
    """
    _, support, _ = _counts(cm)
    f1 = precision_recall_f1(cm)[2]
    return _div((f1 * support).sum(axis=-1), support.sum(axis=-1), np.nan)


def uar(cm: ArrayLike) -> np.ndarray:
    """Unweighted average recall (balanced accuracy) over the classes with gold support > 0.

    UAR = (1/|C|) Σ_{k∈C} TP_k / (TP_k + FN_k); the primary measure since the INTERSPEECH 2009 Emotion
    Challenge (Schuller, Steidl & Batliner 2009) because it does not reward predicting the majority class.

    >>> float(uar([[1, 1], [0, 2]]))
    0.75
    """
    _, support, _ = _counts(cm)
    recall = precision_recall_f1(cm)[1]
    present = support > 0
    return _div(np.where(present, recall, 0.0).sum(axis=-1), present.sum(axis=-1), np.nan)
