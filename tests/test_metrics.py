"""Meta-tests over every registered metric: metadata, where its function lives, and invariance checks.

Each property set below must name every metric, so a new metric fails here until someone states its best
value and how its family is scored (as scikit-learn's common metric tests do).
"""

import subprocess
import sys

import numpy as np
import pytest

from casebench.metrics import FAMILIES, METRICS, Metric, categorical, conflict, dimensional, distribution

MODULES = {"categorical": categorical, "conflict": conflict, "distribution": distribution,
           "dimensional": dimensional}

EXPECTED_NAMES = ["accuracy", "macro_f1", "weighted_f1", "uar", "text_following_rate", "errors_matching_text",
                  "conflict_gap", "chebyshev", "clark", "canberra", "kl", "cosine", "intersection", "js",
                  "multilabel_macro_f1", "ccc", "pearson", "rmse"]

# The value of a perfect prediction. errors_matching_text is undefined then: there are no errors to classify.
BEST = {"accuracy": 1.0, "macro_f1": 1.0, "weighted_f1": 1.0, "uar": 1.0, "text_following_rate": 0.0,
        "errors_matching_text": np.nan, "conflict_gap": 0.0, "chebyshev": 0.0, "clark": 0.0, "canberra": 0.0,
        "kl": 0.0, "cosine": 1.0, "intersection": 1.0, "js": 0.0, "multilabel_macro_f1": 1.0, "ccc": 1.0,
        "pearson": 1.0, "rmse": 0.0}

K, N = 4, 160


def make_items(seed: int, quality: str) -> dict[str, np.ndarray]:
    """Gold for every family plus a prediction that is 'perfect', 'good' or 'bad'.

    For the conflict family 'bad' reads the words (predicts the semantic label) and 'good' is right on
    congruent items and on half the conflict items, wrong elsewhere but never the words' emotion.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, K, N)
    s = np.where(rng.random(N) < 0.5, a, (a + rng.integers(1, K, N)) % K)
    P = rng.dirichlet(np.full(K, 0.8), N)
    x = rng.normal(size=N)
    if quality == "perfect":
        p, Q, y = a.copy(), P.copy(), x.copy()
    elif quality == "good":
        avoid = (a + 1) % K
        avoid = np.where(avoid == s, (a + 2) % K, avoid)
        p = np.where((a == s) | (rng.random(N) < 0.5), a, avoid)
        Q = 0.8 * P + 0.2 * rng.dirichlet(np.full(K, 0.8), N)
        y = x + rng.normal(scale=0.3, size=N)
    else:
        p = s.copy()
        Q = rng.dirichlet(np.full(K, 0.8), N)
        y = rng.normal(size=N)
    return {"a": a, "s": s, "p": p, "P": P, "Q": Q, "x": x, "y": y}


def score(name: str, d: dict[str, np.ndarray]) -> float:
    """A metric's value over all items, computed the way its family is meant to be used."""
    family = METRICS[name].family
    f = getattr(MODULES[family], name)
    if family == "categorical":
        return float(f(categorical.confusion_matrix(d["a"], d["p"], K)))
    if family == "conflict":
        return float(f(conflict.count_tensor(d["a"], d["p"], d["s"], K)))
    if family == "distribution":
        return float(np.mean(f(d["P"], d["Q"])))
    value = float(f(d["x"], d["y"]))
    stats = dimensional.moments(d["x"], d["y"]).sum(axis=0)
    from_moments = getattr(dimensional, f"{name}_from_moments")(stats)
    assert np.isclose(value, from_moments, equal_nan=True)
    return value


def test_registry_names():
    assert list(METRICS) == EXPECTED_NAMES
    assert set(BEST) == set(METRICS)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_metadata_and_function(name):
    m = METRICS[name]
    assert isinstance(m, Metric) and m.name == name and m.family in FAMILIES
    assert m.description.strip() and m.reference.strip()
    f = getattr(MODULES[m.family], name, None)
    assert callable(f) and f.__doc__ and ">>>" in f.__doc__, f"{m.family}.{name}: docstring with an example"
    if m.family == "distribution" and name in distribution.PER_ITEM:
        assert m.higher_is_better == (name not in distribution.LOWER_IS_BETTER)
    if m.family == "dimensional":
        assert callable(getattr(dimensional, f"{name}_from_moments"))


def test_metric_is_frozen():
    with pytest.raises(AttributeError):
        METRICS["ccc"].higher_is_better = False


def test_directions_of_conflict_metrics():
    # Following the words is the failure mode, so the CASE-style metrics are lower-is-better.
    assert not any(METRICS[n].higher_is_better for n in ("text_following_rate", "errors_matching_text",
                                                         "conflict_gap"))


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_perfect_prediction_gives_best_value(name):
    np.testing.assert_allclose(score(name, make_items(0, "perfect")), BEST[name], atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_better_prediction_scores_better(name):
    good, bad = score(name, make_items(1, "good")), score(name, make_items(1, "bad"))
    assert (good > bad) if METRICS[name].higher_is_better else (good < bad), (good, bad)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_permuting_items_changes_nothing(name, seed):
    d = make_items(seed, "good")
    perm = np.random.default_rng(100 + seed).permutation(N)
    assert np.isclose(score(name, {k: v[perm] for k, v in d.items()}), score(name, d), atol=1e-12)


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if m.family in ("categorical", "conflict")])
def test_renaming_classes_changes_nothing(name):
    d = make_items(2, "good")
    rename = np.array([2, 0, 3, 1])
    renamed = {**d, "a": rename[d["a"]], "p": rename[d["p"]], "s": rename[d["s"]]}
    assert np.isclose(score(name, renamed), score(name, d), atol=1e-12)


def test_import_needs_only_numpy():
    code = ("import sys, casebench.metrics; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
