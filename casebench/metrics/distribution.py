"""Label-distribution learning measures, per item, and a multi-label macro-F1 read off distributions.

The six measures of Geng (2016), "Label Distribution Learning", IEEE TKDE 28(7):1734–1748, Table 2 —
Chebyshev, Clark, Canberra, Kullback–Leibler (distances, lower is better), cosine and intersection
(similarities, higher is better) — plus the Jensen–Shannon divergence (Lin 1991, IEEE Trans. Inf. Theory
37(1)). Each takes a gold distribution P and a predicted distribution Q of shape (..., K) (taxonomy order,
rows summing to 1: these functions do not renormalise) and returns one value per item, shape (...). The
caller averages over items, so a bootstrap resample is a weighted mean of per-item values.

Zeros: one constant :data:`EPS` = 1e-12. In KL, Q is clipped at EPS (a gold class predicted at 0 costs
P_j·ln(P_j/EPS) instead of infinity) and terms with P_j = 0 are 0 (0·ln 0 = 0). In Clark and Canberra, terms
with P_j = Q_j = 0 are 0. JS needs no epsilon: its mixture is > 0 wherever a term is non-zero.

>>> P, Q = np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]])
>>> {name: float(f(P, Q)[0]) for name, f in PER_ITEM.items()}["kl"]
0.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

EPS = 1e-12
"""Floor for predicted probabilities in KL and tolerance for the multi-label threshold."""


def _pair(p_true: ArrayLike, p_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p_true, dtype=np.float64), np.asarray(p_pred, dtype=np.float64)
    if p.shape != q.shape or p.ndim < 1:
        raise ValueError(f"p_true has shape {p.shape} and p_pred {q.shape}; expected the same shape (..., K)")
    return p, q


def _ratio_sum(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Σ_j num_j / den_j over the last axis, with 0/0 terms counted as 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).sum(axis=-1)


def _xlogy_ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Σ_j x_j ln(x_j / y_j) with terms where x_j = 0 set to 0 (y_j > 0 wherever x_j > 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, x * (np.log(np.where(x > 0, x, 1.0)) - np.log(y)), 0.0).sum(axis=-1)


def chebyshev(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Chebyshev distance: max_j |P_j − Q_j| (Geng 2016, Table 2); lower is better.

    >>> chebyshev([[0.5, 0.3, 0.2]], [[0.4, 0.4, 0.2]]).round(6)
    array([0.1])
    """
    p, q = _pair(p_true, p_pred)
    return np.abs(p - q).max(axis=-1)


def clark(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Clark distance: sqrt(Σ_j (P_j − Q_j)² / (P_j + Q_j)²) (Geng 2016, Table 2); lower is better.

    Terms with P_j + Q_j = 0 are 0. Ranges over [0, sqrt(K)].

    >>> clark([[0.5, 0.5]], [[1.0, 0.0]]).round(6)
    array([1.054093])
    """
    p, q = _pair(p_true, p_pred)
    return np.sqrt(_ratio_sum((p - q) ** 2, (p + q) ** 2))


def canberra(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Canberra distance: Σ_j |P_j − Q_j| / (P_j + Q_j) (Geng 2016, Table 2); lower is better.

    Terms with P_j + Q_j = 0 are 0. Ranges over [0, K].

    >>> canberra([[0.5, 0.5]], [[1.0, 0.0]]).round(6)
    array([1.333333])
    """
    p, q = _pair(p_true, p_pred)
    return _ratio_sum(np.abs(p - q), p + q)


def kl(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Kullback–Leibler divergence KL(P‖Q) = Σ_j P_j ln(P_j / max(Q_j, EPS)) (Geng 2016, Table 2), in nats.

    Lower is better; terms with P_j = 0 are 0.

    >>> kl([[0.5, 0.5]], [[0.25, 0.75]]).round(6)
    array([0.143841])
    """
    p, q = _pair(p_true, p_pred)
    return _xlogy_ratio(p, np.maximum(q, EPS))


def cosine(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Cosine similarity: Σ_j P_j Q_j / (‖P‖₂ ‖Q‖₂) (Geng 2016, Table 2); higher is better, 1 at best.

    NaN when either vector is all zeros.

    >>> cosine([[1.0, 0.0]], [[0.5, 0.5]]).round(6)
    array([0.707107])
    """
    p, q = _pair(p_true, p_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (p * q).sum(axis=-1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(q, axis=-1))


def intersection(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Intersection similarity: Σ_j min(P_j, Q_j) (Geng 2016, Table 2); higher is better, 1 at best.

    >>> intersection([[0.5, 0.3, 0.2]], [[0.4, 0.4, 0.2]]).round(6)
    array([0.9])
    """
    p, q = _pair(p_true, p_pred)
    return np.minimum(p, q).sum(axis=-1)


def js(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Jensen–Shannon divergence ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, natural log (Lin 1991).

    Lower is better; in [0, ln 2]. This is the divergence, i.e. the square of
    ``scipy.spatial.distance.jensenshannon(P, Q)`` (base e).

    >>> js([[1.0, 0.0]], [[0.0, 1.0]]).round(6)
    array([0.693147])
    """
    p, q = _pair(p_true, p_pred)
    m = (p + q) / 2
    return (_xlogy_ratio(p, m) + _xlogy_ratio(q, m)) / 2


PER_ITEM = {"chebyshev": chebyshev, "clark": clark, "canberra": canberra, "kl": kl, "cosine": cosine,
            "intersection": intersection, "js": js}
"""Per-item distribution measures by name: ``f(p_true (..., K), p_pred (..., K)) -> (...)``."""

LOWER_IS_BETTER = frozenset({"chebyshev", "clark", "canberra", "kl", "js"})
"""Names in :data:`PER_ITEM` that are distances; the rest (cosine, intersection) are similarities."""


def multilabel_stats(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Per-item, per-class TP, FP, FN indicators of the multi-label reading of two distributions.

    A class is present when its share is ≥ 1/K (up to :data:`EPS`, so that sums such as 0.1 + 0.1 + 0.1
    still reach 0.3), on both the gold and the predicted side (EMO-SUPERB style, Wu et al. 2024,
    arXiv:2402.13018). Sum the rows (with bootstrap weights) and pass the sums to
    :func:`multilabel_macro_f1_from_stats`.

    Returns:
        (..., 3K) float64: ``[TP_1..TP_K, FP_1..FP_K, FN_1..FN_K]``.

    >>> multilabel_stats([[0.6, 0.4, 0.0]], [[0.2, 0.8, 0.0]]).astype(int).tolist()
    [[0, 1, 0, 0, 0, 0, 1, 0, 0]]
    """
    p, q = _pair(p_true, p_pred)
    threshold = 1.0 / p.shape[-1] - EPS
    t, y = p >= threshold, q >= threshold
    return np.concatenate([t & y, ~t & y, t & ~y], axis=-1).astype(np.float64)


def multilabel_macro_f1_from_stats(S: ArrayLike) -> np.ndarray:
    """Macro-F1 from summed :func:`multilabel_stats`, (..., 3K) -> (...).

    macro-F1 = (1/|C|) Σ_{k∈C} 2 TP_k / (2 TP_k + FP_k + FN_k),  C = {k : TP_k + FN_k > 0};
    NaN when no class has a gold positive.

    >>> float(multilabel_macro_f1_from_stats([2, 0, 1, 0, 0, 0]))
    0.8
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim < 1 or S.shape[-1] % 3:
        raise ValueError(f"multi-label statistics have shape {S.shape}; expected (..., 3K)")
    tp, fp, fn = np.split(S, 3, axis=-1)
    present = tp + fn > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(present, 2 * tp + fp + fn, 1.0), 0.0)
        return np.where(present.any(axis=-1), f1.sum(axis=-1) / present.sum(axis=-1), np.nan)


def multilabel_macro_f1(p_true: ArrayLike, p_pred: ArrayLike) -> np.ndarray:
    """Multi-label macro-F1 over items (..., n, K) -> (...), at threshold 1/K on both sides.

    >>> float(multilabel_macro_f1([[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]))
    0.8333333333333333
    """
    return multilabel_macro_f1_from_stats(multilabel_stats(p_true, p_pred).sum(axis=-2))
