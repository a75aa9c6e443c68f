"""Metrics for dimensional emotion (valence, arousal, dominance): CCC, Pearson's r and RMSE.

Sufficient statistic: the column sums of :func:`moments`, ``S = Σ_i w_i [1, x_i, y_i, x_i², y_i², x_i y_i]``
with x = gold and y = prediction (w = bootstrap weights, or 1). Every ``*_from_moments`` maps (..., 6) to
(...), float64, NaN when undefined. Moments are population moments (divide by n), as in Lin (1989).

Raw moments lose about log10(mean²/variance) of float64's ~16 digits; for rating scales such as 1–7 that is
one or two digits. The array-level :func:`ccc`, :func:`pearson` and :func:`rmse` centre the data first.

>>> S = moments([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).sum(axis=0)
>>> float(ccc_from_moments(S)), float(rmse_from_moments(S))
(1.0, 0.0)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def moments(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Per-item moment rows ``[1, x, y, x², y², x·y]``, shape (..., 6), from gold x and prediction y (...).

    >>> moments([2.0], [3.0]).tolist()
    [[1.0, 2.0, 3.0, 4.0, 9.0, 6.0]]
    """
    x, y = _pair(x, y)
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"gold has shape {x.shape} and prediction {y.shape}; expected the same shape")
    return x, y


def _central(S: ArrayLike) -> tuple[np.ndarray, ...]:
    """(n, mean_x, mean_y, var_x, var_y, cov) from summed moments; NaN where n == 0."""
    S = np.asarray(S, dtype=np.float64)
    if S.ndim < 1 or S.shape[-1] != 6:
        raise ValueError(f"moment sums have shape {S.shape}; expected (..., 6) = [1, x, y, x², y², xy]")
    n = S[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        e = S / np.where(n > 0, n, np.nan)[..., None]
    mx, my = e[..., 1], e[..., 2]
    return n, mx, my, e[..., 3] - mx * mx, e[..., 4] - my * my, e[..., 5] - mx * my


def _ccc(mx, my, vx, vy, cov) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * cov / (vx + vy + (mx - my) ** 2)


def _pearson(vx, vy, cov) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(np.maximum(vx, 0.0) * np.maximum(vy, 0.0))


def ccc_from_moments(S: ArrayLike) -> np.ndarray:
    """Lin's concordance correlation coefficient from moment sums (..., 6) -> (...).

    CCC = 2 σ_xy / (σ_x² + σ_y² + (μ_x − μ_y)²), population moments (Lin 1989, Biometrics 45(1):255–268).
    Higher is better, 1 at best; NaN when x and y are the same constant.

    >>> round(float(ccc_from_moments(moments([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]).sum(axis=0))), 6)  # 4/7
    0.571429
    """
    _, mx, my, vx, vy, cov = _central(S)
    return _ccc(mx, my, vx, vy, cov)


def pearson_from_moments(S: ArrayLike) -> np.ndarray:
    """Pearson's correlation r = σ_xy / (σ_x σ_y) from moment sums (..., 6) -> (...); NaN for a constant.

    >>> round(float(pearson_from_moments(moments([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]).sum(axis=0))), 6)
    1.0
    """
    _, _, _, vx, vy, cov = _central(S)
    return _pearson(vx, vy, cov)


def rmse_from_moments(S: ArrayLike) -> np.ndarray:
    """Root mean squared error sqrt(Σ (x − y)² / n) = sqrt((Σx² − 2Σxy + Σy²) / n); lower is better.

    >>> float(rmse_from_moments(moments([1.0, 2.0], [2.0, 4.0]).sum(axis=0)))
    1.5811388300841898
    """
    S = np.asarray(S, dtype=np.float64)
    n = _central(S)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = (S[..., 3] - 2 * S[..., 5] + S[..., 4]) / np.where(n > 0, n, np.nan)
    return np.sqrt(np.maximum(mse, 0.0))


def _centred(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, ...]:
    """(mean_x, mean_y, var_x, var_y, cov) over the last axis, computed on centred data."""
    x, y = _pair(x, y)
    if x.ndim < 1 or x.shape[-1] == 0:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan, nan, nan, nan
    mx, my = x.mean(axis=-1), y.mean(axis=-1)
    dx, dy = x - mx[..., None], y - my[..., None]
    return mx, my, (dx * dx).mean(axis=-1), (dy * dy).mean(axis=-1), (dx * dy).mean(axis=-1)


def ccc(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Lin's CCC of gold x and prediction y over the last axis (see :func:`ccc_from_moments`).

    >>> float(ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]))
    1.0
    """
    return _ccc(*_centred(x, y))


def pearson(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Pearson's r of gold x and prediction y over the last axis (see :func:`pearson_from_moments`).

    >>> float(pearson([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]))
    -1.0
    """
    _, _, vx, vy, cov = _centred(x, y)
    return _pearson(vx, vy, cov)


def rmse(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Root mean squared error of prediction y against gold x over the last axis; NaN when empty.

    >>> float(rmse([1.0, 2.0], [2.0, 4.0]))
    1.5811388300841898
    """
    x, y = _pair(x, y)
    if x.ndim < 1 or x.shape[-1] == 0:
        return np.full(x.shape[:-1], np.nan)
    return np.sqrt(((x - y) ** 2).mean(axis=-1))
