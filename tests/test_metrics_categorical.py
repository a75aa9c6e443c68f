"""casebench.metrics.categorical against scikit-learn, on seeded random labels."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from casebench.metrics import categorical as cat


def _labels(seed: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gold labels from a random subset of the classes (so some are absent); predictions from all."""
    rng = np.random.default_rng(seed)
    present = rng.choice(k, size=rng.integers(1, k + 1), replace=False)
    y = rng.choice(present, size=n)
    p = np.where(rng.random(n) < 0.5, y, rng.integers(0, k, n))
    return y, p


CASES = [(seed, k, n) for seed in range(4) for k in (2, 4, 7) for n in (1, 5, 60, 400)]


@pytest.mark.parametrize(("seed", "k", "n"), CASES)
def test_against_sklearn(seed, k, n):
    y, p = _labels(seed, k, n)
    cm = cat.confusion_matrix(y, p, k)
    assert cm.dtype == np.int64 and cm.shape == (k, k)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p, labels=range(k)))
    assert np.isclose(cat.accuracy(cm), skm.accuracy_score(y, p))
    # Class-set rule: macro averages over the classes present in the gold labels.
    gold_classes = np.unique(y)
    f1 = lambda average, labels: skm.f1_score(y, p, labels=labels, average=average, zero_division=0)  # noqa: E731
    assert np.isclose(cat.macro_f1(cm), f1("macro", gold_classes))
    assert np.isclose(cat.weighted_f1(cm), f1("weighted", range(k)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        assert np.isclose(cat.uar(cm), skm.balanced_accuracy_score(y, p))
    P, R, F, _ = skm.precision_recall_fscore_support(y, p, labels=range(k), zero_division=0)
    for ours, theirs in zip(cat.precision_recall_f1(cm), (P, R, F), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_class_absent_from_gold_is_left_out_of_macro_averages():
    # Class 2 is predicted once but never gold: macro-F1 = mean(F1_0, F1_1) = mean(2/3, 1) = 5/6, not 5/9.
    cm = cat.confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], n_classes=3)
    assert np.isclose(cat.macro_f1(cm), 5 / 6)
    assert np.isclose(cat.uar(cm), 0.75)
    assert np.isclose(cat.weighted_f1(cm), 5 / 6)


def test_batched_equals_per_matrix():
    rng = np.random.default_rng(7)
    stack = rng.integers(0, 5, size=(3, 4, 6, 6)).astype(float)
    stack[0, 0, 2] = 0  # a class without gold support in one matrix
    stack[1, 1] = 0  # an empty matrix
    for f in (cat.accuracy, cat.macro_f1, cat.weighted_f1, cat.uar):
        batched = f(stack)
        assert batched.shape == (3, 4)
        expected = np.array([[f(stack[i, j]) for j in range(4)] for i in range(3)])
        np.testing.assert_allclose(batched, expected, atol=1e-12)
    for batched, i in zip(cat.precision_recall_f1(stack), range(3), strict=True):
        assert batched.shape == (3, 4, 6)
        np.testing.assert_allclose(batched[2, 3], cat.precision_recall_f1(stack[2, 3])[i])


def test_bootstrap_weights_equal_repeated_items():
    y, p = _labels(3, 5, 80)
    w = np.random.default_rng(0).integers(0, 4, size=80)
    weighted = np.zeros((5, 5))
    np.add.at(weighted, (y, p), w)
    repeated = cat.confusion_matrix(np.repeat(y, w), np.repeat(p, w), 5)
    for f in (cat.accuracy, cat.macro_f1, cat.weighted_f1, cat.uar):
        assert np.isclose(f(weighted), f(repeated))


def test_empty_matrix_is_nan():
    cm = cat.confusion_matrix([], [], n_classes=3)
    assert cm.shape == (3, 3)
    for f in (cat.accuracy, cat.macro_f1, cat.weighted_f1, cat.uar):
        assert np.isnan(f(cm))
    assert all(np.all(x == 0) for x in cat.precision_recall_f1(cm))


def test_unbatched_input_gives_0d():
    assert np.ndim(cat.accuracy([[1, 0], [0, 1]])) == 0


@pytest.mark.parametrize(("y", "p", "match"), [([0, 1], [0], "items"), ([0, 3], [0, 1], "y_true"),
                                               ([0, 1], [-1, 1], "y_pred")])
def test_confusion_matrix_rejects_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        cat.confusion_matrix(y, p, n_classes=3)


def test_bad_matrix_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., K, K\)"):
        cat.accuracy(np.zeros((2, 3)))
