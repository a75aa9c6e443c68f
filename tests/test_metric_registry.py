"""Common tests over the one metric registry (casebench.metrics.METRICS), scikit-learn style: each declared
property of every registered metric is checked through the metric's own registry entry (``fn`` on its family's
sufficient statistic, ``item_stats`` for distributions), and a metric that declares no optional property, or
an unknown one, fails."""

import numpy as np
import pytest

from casebench import scoring
from casebench.metrics import METRICS, PROPERTIES, categorical, conflict, dimensional
from casebench.stats import Bootstrap

K, N = 5, 200
REQUIRED = {"batch_consistent", "duplication_invariant"}
OPTIONAL = set(PROPERTIES) - REQUIRED


def items(seed: int, quality: str = "good") -> dict:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, K, N)
    s = np.where(rng.random(N) < 0.5, a, (a + rng.integers(1, K, N)) % K)
    P = rng.dirichlet(np.full(K, 0.8), N)
    x = rng.normal(size=N)
    if quality == "perfect":
        return {"a": a, "s": s, "p": a.copy(), "P": P, "Q": P.copy(), "x": x, "y": x.copy()}
    p = np.where(rng.random(N) < 0.6, a, np.where(rng.random(N) < 0.5, s, rng.integers(0, K, N)))
    Q = 0.6 * P + 0.4 * rng.dirichlet(np.full(K, 0.8), N)
    return {"a": a, "s": s, "p": p, "P": P, "Q": Q, "x": x, "y": x + rng.normal(scale=0.5, size=N)}


def stat(name: str, d: dict) -> np.ndarray:
    """The metric's family statistic of the items (what ``Metric.fn`` takes)."""
    m = METRICS[name]
    if m.family == "categorical":
        return categorical.confusion_matrix(d["a"], d["p"], K).astype(float)
    if m.family == "conflict":
        return conflict.count_tensor(d["a"], d["p"], d["s"], K).astype(float)
    if m.family == "distribution":
        return np.hstack([np.ones((d["P"].shape[0], 1)), m.item_stats(d["P"], d["Q"])]).sum(0)
    return dimensional.moments(d["x"], d["y"]).sum(0)


def value(name: str, d: dict) -> float:
    return float(METRICS[name].fn(stat(name, d)))


def swapped(d: dict) -> dict:
    return {**d, "a": d["p"], "p": d["a"], "P": d["Q"], "Q": d["P"], "x": d["y"], "y": d["x"]}


CHECKS = {
    "batch_consistent": lambda n: np.allclose(
        METRICS[n].fn(np.stack([stat(n, items(s)) for s in range(3)])), [value(n, items(s)) for s in range(3)],
        equal_nan=True),
    "duplication_invariant": lambda n: np.isclose(
        value(n, {k: np.concatenate([v, v]) for k, v in items(1).items()}), value(n, items(1)), equal_nan=True),
    "label_permutation_invariant": lambda n: np.isclose(value(n, _renamed(items(2))), value(n, items(2)),
                                                        equal_nan=True),
    "bounded_unit": lambda n: all(0 - 1e-12 <= v <= 1 + 1e-12 for v in _values(n)),
    "bounded_signed": lambda n: all(-1 - 1e-12 <= v <= 1 + 1e-12 for v in _values(n)),
    "nonnegative": lambda n: all(v >= -1e-12 for v in _values(n)),
    "perfect_is_optimal": lambda n: np.isclose(value(n, items(0, "perfect")),
                                               1.0 if METRICS[n].higher_is_better else 0.0),
    "symmetric": lambda n: np.isclose(value(n, swapped(items(3))), value(n, items(3)), equal_nan=True),
}


def _values(name: str) -> list[float]:
    vals = [value(name, items(s, q)) for s in range(4) for q in ("good", "perfect")]
    return [v for v in vals if np.isfinite(v)]


def _renamed(d: dict) -> dict:
    perm = np.array([3, 0, 4, 1, 2])
    inv = np.argsort(perm)
    return {**d, "a": perm[d["a"]], "p": perm[d["p"]], "s": perm[d["s"]], "P": d["P"][:, inv], "Q": d["Q"][:, inv]}


def test_every_property_has_a_check():
    assert set(CHECKS) == set(PROPERTIES)


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_declares_known_properties_and_at_least_one_optional(name):
    props = METRICS[name].properties
    assert props <= set(PROPERTIES), props - set(PROPERTIES)
    assert props >= REQUIRED, f"{name}: the bootstrap needs {REQUIRED}"
    assert props & OPTIONAL, f"{name} is in no optional property set: say what it satisfies"


@pytest.mark.parametrize("name, prop", [(n, p) for n, m in METRICS.items() for p in sorted(m.properties)])
def test_declared_property_holds(name, prop):
    assert CHECKS[prop](name), f"{name} does not satisfy {prop}: {PROPERTIES[prop]}"


@pytest.mark.parametrize("name", list(METRICS))
def test_registry_entry_is_what_the_scorer_reports(name):
    """The scoring core computes each metric through its registry entry: same value as the entry's fn."""
    d = items(5)
    m = METRICS[name]
    if m.family in ("categorical", "conflict"):
        kind = (m.splits or ("all",))[0]
        got = scoring.categorical(d["a"], d["p"], d["s"], K, kind, Bootstrap(0)).values[name]
    elif m.family == "distribution":
        got = scoring.distribution(d["P"], d["Q"], Bootstrap(0)).values[name]
    else:
        got = scoring.dimensional({"valence": d["x"]}, {"valence": d["y"]}, Bootstrap(0))[0].values[name]
    assert got == pytest.approx(value(name, d), nan_ok=True)
    assert m.direction in ("higher", "lower") and m.description and m.reference
