"""Metrics for acoustic–semantic conflict: items whose voice (acoustic) label differs from their words'
(semantic) label, as in the CASE benchmark (Huang et al. 2026, "When Tone and Words Disagree",
arXiv:2601.04564).

The target of the categorical task is the acoustic label. A model that reads the words instead of listening
predicts the semantic label on conflict items; these metrics measure that failure.

Sufficient statistic: a count tensor ``T`` of shape (..., K, K, K) with ``T[a, p, s]`` = number of items
with acoustic label a, predicted label p and semantic label s (see :func:`count_tensor`). Every metric maps
(..., K, K, K) to (...), float64, NaN when its denominator is 0.

>>> T = count_tensor(acoustic=[0, 0, 1, 1], pred=[0, 1, 0, 1], semantic=[1, 1, 0, 1], n_classes=2)
>>> float(text_following_rate(T)), float(conflict_gap(T))
(0.6666666666666666, 0.6666666666666667)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from casebench.metrics.categorical import _div, _indices, accuracy


def count_tensor(acoustic: ArrayLike, pred: ArrayLike, semantic: ArrayLike, n_classes: int) -> np.ndarray:
    """Count tensor ``T[a, p, s]`` (K, K, K) int64 from per-item class indices in 0..K-1.

    Raises:
        ValueError: the arrays differ in length or hold an index outside 0..K-1.

    >>> count_tensor([0, 1], [1, 1], [1, 0], n_classes=2)[0].tolist()
    [[0, 0], [0, 1]]
    """
    a, p, s = _indices(n_classes, acoustic=acoustic, pred=pred, semantic=semantic)
    k = n_classes
    return np.bincount((a * k + p) * k + s, minlength=k**3).reshape(k, k, k)


def _tensor(T: ArrayLike) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < 3 or not T.shape[-1] == T.shape[-2] == T.shape[-3]:
        raise ValueError(f"count tensor has shape {T.shape}; expected (..., K, K, K)")
    return T


def split_confusions(T: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Confusion matrices (rows = acoustic label, columns = prediction) of conflict and congruent items.

    conflict[a, p] = Σ_{s≠a} T[a, p, s],  congruent[a, p] = T[a, p, a]; each (..., K, K).

    >>> T = count_tensor([0, 0], [0, 1], [0, 1], n_classes=2)
    >>> [m.tolist() for m in split_confusions(T)]
    [[[0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]
    """
    T = _tensor(T)
    congruent = np.einsum("...apa->...ap", T)
    return T.sum(axis=-1) - congruent, congruent


def _followed(T: np.ndarray) -> np.ndarray:
    """Number of conflict items predicted as their semantic label: Σ_{a≠s} T[a, s, s]."""
    pss = np.einsum("...ass->...as", T)
    return pss.sum(axis=(-2, -1)) - np.einsum("...aa->...", pss)


def text_following_rate(T: ArrayLike) -> np.ndarray:
    """Share of conflict items predicted as their semantic label (the words' emotion); lower is better.

    TFR = Σ_{a≠s} T[a, s, s] / Σ_{a≠s} Σ_p T[a, p, s].

    >>> float(text_following_rate(count_tensor([0, 0], [1, 0], [1, 1], n_classes=2)))
    0.5
    """
    T = _tensor(T)
    return _div(_followed(T), split_confusions(T)[0].sum(axis=(-2, -1)), np.nan)


def errors_matching_text(T: ArrayLike) -> np.ndarray:
    """Among wrong predictions (p ≠ a) on conflict items, the share equal to the semantic label.

    EMT = Σ_{a≠s} T[a, s, s] / Σ_{a≠s} Σ_{p≠a} T[a, p, s]. Chance level for a model whose errors ignore the
    words is 1/(K-1); 1 means every error on a conflict item is the words' emotion. Lower is better.

    >>> float(errors_matching_text(count_tensor([0, 0, 0], [1, 2, 0], [1, 1, 1], n_classes=3)))
    0.5
    """
    T = _tensor(T)
    conflict = split_confusions(T)[0]
    wrong = conflict.sum(axis=(-2, -1)) - np.einsum("...aa->...", conflict)
    return _div(_followed(T), wrong, np.nan)


def conflict_gap(T: ArrayLike) -> np.ndarray:
    """Accuracy on congruent items minus accuracy on conflict items; lower is better (0 = no penalty).

    gap = acc(congruent) − acc(conflict); NaN when either set is empty.

    >>> float(conflict_gap(count_tensor([0, 1, 0, 1], [0, 1, 1, 1], [0, 1, 1, 0], n_classes=2)))
    0.5
    """
    conflict, congruent = split_confusions(T)
    return accuracy(congruent) - accuracy(conflict)
