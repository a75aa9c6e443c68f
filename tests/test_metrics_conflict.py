"""casebench.metrics.conflict against plain per-item numpy computations."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from casebench.metrics import conflict


def _items(seed: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    s = np.where(rng.random(n) < 0.5, a, rng.integers(0, k, n))
    # A model that sometimes listens, sometimes reads the words, sometimes guesses.
    u = rng.random(n)
    p = np.where(u < 0.4, a, np.where(u < 0.7, s, rng.integers(0, k, n)))
    return a, p, s


def _per_item(a, p, s):
    """The metrics written item by item, as their definitions read."""
    c = a != s
    mean = lambda m: m.mean() if m.size else np.nan  # noqa: E731
    wrong = c & (p != a)
    return {"text_following_rate": mean(p[c] == s[c]),
            "errors_matching_text": mean(p[wrong] == s[wrong]),
            "conflict_gap": mean(p[~c] == a[~c]) - mean(p[c] == a[c])}


CASES = [(seed, k, n) for seed in range(5) for k in (2, 3, 6) for n in (3, 40, 500)]


@pytest.mark.parametrize(("seed", "k", "n"), CASES)
def test_tensor_metrics_equal_per_item_definitions(seed, k, n):
    a, p, s = _items(seed, k, n)
    T = conflict.count_tensor(a, p, s, k)
    assert T.shape == (k, k, k) and T.dtype == np.int64 and T.sum() == n
    for name, expected in _per_item(a, p, s).items():
        np.testing.assert_allclose(getattr(conflict, name)(T), expected, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", range(3))
def test_split_confusions_equal_sklearn_on_subsets(seed):
    a, p, s = _items(seed, 4, 200)
    cm_conflict, cm_congruent = conflict.split_confusions(conflict.count_tensor(a, p, s, 4))
    c = a != s
    np.testing.assert_array_equal(cm_conflict, confusion_matrix(a[c], p[c], labels=range(4)))
    np.testing.assert_array_equal(cm_congruent, confusion_matrix(a[~c], p[~c], labels=range(4)))


def test_count_tensor_equals_add_at():
    a, p, s = _items(11, 5, 300)
    expected = np.zeros((5, 5, 5), dtype=np.int64)
    np.add.at(expected, (a, p, s), 1)
    np.testing.assert_array_equal(conflict.count_tensor(a, p, s, 5), expected)


def test_batched_equals_per_tensor():
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 3, size=(2, 5, 4, 4, 4)).astype(float)
    stack[0, 0] = 0
    for name in ("text_following_rate", "errors_matching_text", "conflict_gap"):
        f = getattr(conflict, name)
        batched = f(stack)
        assert batched.shape == (2, 5)
        expected = np.array([[f(stack[i, j]) for j in range(5)] for i in range(2)])
        np.testing.assert_allclose(batched, expected, atol=1e-12)
    for m in conflict.split_confusions(stack):
        assert m.shape == (2, 5, 4, 4)


def test_extremes():
    a = np.array([0, 1, 2, 0, 1, 2])
    s = np.array([1, 2, 0, 0, 1, 2])  # three conflict items, three congruent
    follows = conflict.count_tensor(a, s, s, 3)  # predicts the words' emotion every time
    assert conflict.text_following_rate(follows) == 1
    assert conflict.errors_matching_text(follows) == 1
    assert conflict.conflict_gap(follows) == 1
    listens = conflict.count_tensor(a, a, s, 3)
    assert conflict.text_following_rate(listens) == 0 and conflict.conflict_gap(listens) == 0
    assert np.isnan(conflict.errors_matching_text(listens))  # no errors to classify
    other = conflict.count_tensor(a, np.where(a != s, 3 - a - s, a), s, 3)  # wrong, never the words
    assert conflict.errors_matching_text(other) == 0


def test_no_conflict_items_is_nan():
    T = conflict.count_tensor([0, 1], [0, 0], [0, 1], 2)
    assert np.isnan(conflict.text_following_rate(T)) and np.isnan(conflict.conflict_gap(T))


def test_bad_input():
    with pytest.raises(ValueError, match="same number"):
        conflict.count_tensor([0, 1], [0], [0, 1], 2)
    with pytest.raises(ValueError, match="semantic"):
        conflict.count_tensor([0], [0], [5], 2)
    with pytest.raises(ValueError, match="K, K, K"):
        conflict.text_following_rate(np.zeros((3, 3)))
