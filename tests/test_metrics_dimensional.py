"""casebench.metrics.dimensional against scipy / scikit-learn and Lin's (1989) definitional identities."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import mean_squared_error

from casebench.metrics import dimensional as dim


def _xy(seed: int, n: int = 200, loc: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Gold ratings on a 1-7 style scale and a biased, noisy, shrunk prediction."""
    rng = np.random.default_rng(seed)
    x = loc + rng.normal(size=n)
    return x, 0.3 + 0.7 * x + rng.normal(scale=0.6, size=n)


@pytest.mark.parametrize("seed", range(5))
def test_against_scipy_and_sklearn(seed):
    x, y = _xy(seed)
    S = dim.moments(x, y).sum(axis=0)
    r = pearsonr(x, y).statistic
    assert dim.pearson(x, y) == pytest.approx(r, abs=1e-12)
    assert dim.pearson_from_moments(S) == pytest.approx(r, abs=1e-9)
    rmse = np.sqrt(mean_squared_error(x, y))
    assert dim.rmse(x, y) == pytest.approx(rmse, abs=1e-12)
    assert dim.rmse_from_moments(S) == pytest.approx(rmse, abs=1e-9)
    assert dim.ccc_from_moments(S) == pytest.approx(dim.ccc(x, y), abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_lin_1989_identities(seed):
    # Lin (1989), Biometrics 45(1):255-268. With population moments:
    #   CCC = 1 - E[(X - Y)^2] / (s_x^2 + s_y^2 + (m_x - m_y)^2)      (definition, eq. 1)
    #   CCC = r * C_b, C_b = 2 / (v + 1/v + u^2), v = s_x / s_y, u = (m_x - m_y) / sqrt(s_x s_y)
    x, y = _xy(seed)
    mx, my, sx, sy = x.mean(), y.mean(), x.std(), y.std()
    ccc = dim.ccc(x, y)
    assert ccc == pytest.approx(1 - np.mean((x - y) ** 2) / (sx**2 + sy**2 + (mx - my) ** 2), abs=1e-12)
    v, u = sx / sy, (mx - my) / np.sqrt(sx * sy)
    assert ccc == pytest.approx(pearsonr(x, y).statistic * 2 / (v + 1 / v + u**2), abs=1e-12)
    assert abs(ccc) <= abs(pearsonr(x, y).statistic) + 1e-12


def test_lin_1989_closed_forms():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # mean 0, population variance 2
    # A location shift c: CCC = 2 s^2 / (2 s^2 + c^2) = 4 / (4 + 1) with c = 1, although r = 1.
    assert dim.ccc(x, x + 1) == pytest.approx(0.8)
    assert dim.pearson(x, x + 1) == pytest.approx(1.0)
    # A scale change y = b x about mean 0: CCC = 2b / (1 + b^2) = 0.8 for b = 2.
    assert dim.ccc(x, 2 * x) == pytest.approx(0.8)
    # Reversal: CCC = -1.
    assert dim.ccc(x, -x) == pytest.approx(-1.0)


def test_weights_equal_repeated_items_and_batch():
    x, y = _xy(1, n=50)
    W = np.random.default_rng(2).multinomial(50, np.full(50, 1 / 50), size=8)  # bootstrap resamples
    M = dim.moments(x, y)
    assert M.shape == (50, 6)
    stats = W @ M
    for name in ("ccc", "pearson", "rmse"):
        batched = getattr(dim, f"{name}_from_moments")(stats)
        assert batched.shape == (8,)
        expected = [getattr(dim, name)(np.repeat(x, w), np.repeat(y, w)) for w in W]
        np.testing.assert_allclose(batched, expected, atol=1e-9, err_msg=name)
        nested = getattr(dim, f"{name}_from_moments")(stats.reshape(2, 4, 6))
        np.testing.assert_allclose(nested.ravel(), batched)


def test_array_level_batches_over_leading_axes():
    x, y = _xy(3, n=60)
    for f in (dim.ccc, dim.pearson, dim.rmse):
        np.testing.assert_allclose(f(x.reshape(3, 20), y.reshape(3, 20)),
                                   [f(x[i * 20:(i + 1) * 20], y[i * 20:(i + 1) * 20]) for i in range(3)])


def test_precision_with_large_offset():
    # Raw moments cancel catastrophically for large means; at 1e3 the loss is still well below 1e-6.
    x, y = _xy(4, n=1000, loc=1000.0)
    S = dim.moments(x, y).sum(axis=0)
    assert dim.ccc_from_moments(S) == pytest.approx(dim.ccc(x, y), abs=1e-6)
    assert dim.pearson_from_moments(S) == pytest.approx(dim.pearson(x, y), abs=1e-6)


def test_undefined_is_nan():
    empty = dim.moments([], []).sum(axis=0)
    for f in (dim.ccc_from_moments, dim.pearson_from_moments, dim.rmse_from_moments):
        assert np.isnan(f(empty))
    for f in (dim.ccc, dim.pearson, dim.rmse):
        assert np.isnan(f([], []))
    assert np.isnan(dim.ccc([2.0, 2.0], [2.0, 2.0]))  # 0/0: identical constants
    assert np.isnan(dim.pearson([1.0, 2.0], [3.0, 3.0]))
    assert dim.ccc([1.0, 2.0], [3.0, 3.0]) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        dim.moments([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        dim.ccc_from_moments(np.zeros(5))
