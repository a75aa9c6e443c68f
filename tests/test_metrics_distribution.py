"""casebench.metrics.distribution against scipy / scikit-learn and a hand-worked Geng (2016) example."""

import math

import numpy as np
import pytest
from scipy.spatial import distance
from scipy.stats import entropy
from sklearn.metrics import f1_score

from casebench.metrics import distribution as dist


def _dists(seed: int, n: int = 60, k: int = 7, sparse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P, Q = rng.dirichlet(np.full(k, 0.7), n), rng.dirichlet(np.full(k, 0.7), n)
    if sparse:  # exact zeros, as in rater vote shares
        P = np.where(rng.random((n, k)) < 0.5, 0.0, P)
        P[np.arange(n), rng.integers(0, k, n)] += 0.1
        P /= P.sum(axis=1, keepdims=True)
    return P, Q


def test_geng_2016_worked_example():
    # Formulas of Geng (2016), Label Distribution Learning, IEEE TKDE 28(7), Table 2, worked by hand for
    # gold P = (0.5, 0.3, 0.2) and predicted Q = (0.4, 0.4, 0.2):
    P, Q = np.array([[0.5, 0.3, 0.2]]), np.array([[0.4, 0.4, 0.2]])
    hand = {
        "chebyshev": 0.1,  # max_j |P_j - Q_j| = max(0.1, 0.1, 0)
        "clark": 0.180980226,  # sqrt(sum (P_j - Q_j)^2 / (P_j + Q_j)^2) = sqrt((0.1/0.9)^2 + (0.1/0.7)^2)
        "canberra": 0.253968254,  # sum |P_j - Q_j| / (P_j + Q_j) = 0.1/0.9 + 0.1/0.7
        "kl": 0.025267154,  # sum P_j ln(P_j / Q_j) = 0.5 ln(1.25) + 0.3 ln(0.75) + 0.2 ln(1)
        "cosine": 0.973328527,  # sum P_j Q_j / (|P| |Q|) = 0.36 / sqrt(0.38 * 0.36)
        "intersection": 0.9,  # sum min(P_j, Q_j) = 0.4 + 0.3 + 0.2
        # Lin (1991): JS = (KL(P||M) + KL(Q||M)) / 2, M = (0.45, 0.35, 0.2)
        # = (0.5 ln(0.5/0.45) + 0.3 ln(0.3/0.35) + 0.4 ln(0.4/0.45) + 0.4 ln(0.4/0.35)) / 2
        "js": 0.006367198,
    }
    assert set(hand) == set(dist.PER_ITEM)
    for name, value in hand.items():
        assert dist.PER_ITEM[name](P, Q)[0] == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sparse", [False, True])
def test_against_scipy(seed, sparse):
    P, Q = _dists(seed, sparse=sparse)
    rows = list(zip(P, Q, strict=True))
    expected = {
        "chebyshev": [distance.chebyshev(p, q) for p, q in rows],
        "canberra": [distance.canberra(p, q) for p, q in rows],
        "cosine": [1 - distance.cosine(p, q) for p, q in rows],
        "kl": [entropy(p, q) for p, q in rows],
        "js": [distance.jensenshannon(p, q) ** 2 for p, q in rows],
        # No library computes these two; written from Geng (2016), Table 2, term by term.
        "clark": [math.sqrt(sum((a - b) ** 2 / (a + b) ** 2 for a, b in zip(p, q, strict=True) if a + b > 0))
                  for p, q in rows],
        "intersection": [sum(min(a, b) for a, b in zip(p, q, strict=True)) for p, q in rows],
    }
    for name, values in expected.items():
        ours = dist.PER_ITEM[name](P, Q)
        assert ours.shape == (len(P),)
        np.testing.assert_allclose(ours, values, rtol=1e-9, atol=1e-12, err_msg=name)


def test_kl_clips_prediction_at_eps():
    # A gold class predicted at exactly 0 costs P_j ln(P_j / EPS), not infinity.
    P, Q = np.array([[0.5, 0.5, 0.0]]), np.array([[1.0, 0.0, 0.0]])
    expected = 0.5 * math.log(0.5) + 0.5 * math.log(0.5 / dist.EPS)
    assert dist.kl(P, Q)[0] == pytest.approx(expected)
    assert np.isfinite(dist.js(P, Q)).all() and np.isfinite(dist.clark(P, Q)).all()


def test_ranges():
    P, Q = _dists(9, n=300, sparse=True)
    k = P.shape[1]
    assert np.all((dist.js(P, Q) >= 0) & (dist.js(P, Q) <= math.log(2) + 1e-12))
    assert np.all(dist.clark(P, Q) <= math.sqrt(k)) and np.all(dist.canberra(P, Q) <= k)
    for name in ("cosine", "intersection", "chebyshev"):
        v = dist.PER_ITEM[name](P, Q)
        assert np.all((v >= 0) & (v <= 1 + 1e-12)), name
    assert np.all(dist.kl(P, Q) >= -1e-12)


def test_batched_shapes():
    P, Q = _dists(2, n=24)
    for name, f in dist.PER_ITEM.items():
        batched = f(P.reshape(2, 3, 4, -1), Q.reshape(2, 3, 4, -1))
        assert batched.shape == (2, 3, 4), name
        np.testing.assert_allclose(batched.ravel(), f(P, Q), err_msg=name)
    assert dist.kl(P[0], Q[0]).shape == ()


def test_lower_is_better_partition():
    assert dist.LOWER_IS_BETTER.issubset(dist.PER_ITEM)
    assert set(dist.PER_ITEM) - dist.LOWER_IS_BETTER == {"cosine", "intersection"}


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        dist.kl(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)


# --- multi-label macro-F1 ---------------------------------------------------------------------------------

def _sklearn_multilabel_f1(p_true, p_pred, weights=None):
    """sklearn's macro-F1 on the 1/K-thresholded indicator matrices, over columns with a gold positive."""
    threshold = 1 / p_true.shape[1] - dist.EPS
    gold, pred = (p_true >= threshold).astype(int), (p_pred >= threshold).astype(int)
    cols = gold.any(axis=0) if weights is None else (gold * weights[:, None]).any(axis=0)
    return f1_score(gold[:, cols], pred[:, cols], average="macro", zero_division=0, sample_weight=weights)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 4, 9])
def test_multilabel_against_sklearn(seed, k):
    P, Q = _dists(seed, n=50, k=k, sparse=True)
    S = dist.multilabel_stats(P, Q)
    assert S.shape == (50, 3 * k)
    assert dist.multilabel_macro_f1(P, Q) == pytest.approx(_sklearn_multilabel_f1(P, Q))
    assert dist.multilabel_macro_f1_from_stats(S.sum(axis=0)) == pytest.approx(_sklearn_multilabel_f1(P, Q))


def test_multilabel_bootstrap_batch():
    P, Q = _dists(4, n=40, k=5, sparse=True)
    W = np.random.default_rng(0).multinomial(40, np.full(40, 1 / 40), size=6)  # 6 bootstrap resamples
    batched = dist.multilabel_macro_f1_from_stats(W @ dist.multilabel_stats(P, Q))
    assert batched.shape == (6,)
    for b, w in zip(batched, W, strict=True):
        assert b == pytest.approx(_sklearn_multilabel_f1(P, Q, weights=w.astype(float)))


def test_multilabel_threshold_tolerates_rounding():
    # 0.3 - 0.2 == 0.09999999999999998 in float64: still "present" at threshold 1/K = 0.1.
    share = 0.3 - 0.2
    P = np.array([[share, 1 - share] + [0.0] * 8])
    S = dist.multilabel_stats(P, P)
    assert S[0, 0] == 1 and S[0, 1] == 1 and S[0, 2:10].sum() == 0


def test_multilabel_no_gold_positive_is_nan():
    assert np.isnan(dist.multilabel_macro_f1_from_stats(np.zeros(6)))
    with pytest.raises(ValueError, match="3K"):
        dist.multilabel_macro_f1_from_stats(np.zeros(5))
