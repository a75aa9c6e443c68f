"""The scorer (casebench.evaluate.score) against scikit-learn and direct per-item computations."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from casebench.benchmarks import Gold, Split
from casebench.evaluate import baselines, score
from casebench.taxonomy import get_taxonomy

SPLITS = [Split("all", "all"), Split("conflict", "conflict"), Split("congruent", "congruent")]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, k = 900, 7
    acoustic = rng.integers(0, k, n)
    semantic = np.where(rng.random(n) < 0.5, acoustic, rng.integers(0, k, n))
    pred = np.where(rng.random(n) < 0.6, acoustic, np.where(rng.random(n) < 0.5, semantic, rng.integers(0, k, n)))
    g_dist = rng.dirichlet(np.ones(k), n)
    p_dist = rng.dirichlet(np.ones(k), n)
    vad = {d: rng.uniform(1, 5, n) for d in ("valence", "arousal")}
    pvad = {d: v + rng.normal(0, 0.7, n) for d, v in vad.items()}
    gold = Gold(ids=np.array([f"c{i}" for i in range(n)], dtype=object), taxonomy=get_taxonomy("ekman7"),
                acoustic=acoustic, semantic=semantic, speaker=np.array([f"s{i % 30}" for i in range(n)], dtype=object),
                distribution=g_dist, vad=vad)
    return gold, pred, p_dist, pvad


def _masks(gold):
    return {"all": np.ones(len(gold), bool), "conflict": gold.is_conflict, "congruent": gold.is_congruent}


def test_categorical_metrics_equal_sklearn(data):
    gold, pred, _, _ = data
    res = score(gold, SPLITS, ["categorical"], label=pred, n_boot=200, seed=0)
    for split, m in _masks(gold).items():
        y, p = gold.acoustic[m], pred[m]
        present = np.unique(y)
        r = res[split]
        assert r["accuracy"]["value"] == pytest.approx(accuracy_score(y, p))
        assert r["macro_f1"]["value"] == pytest.approx(f1_score(y, p, labels=present, average="macro", zero_division=0))
        assert r["weighted_f1"]["value"] == pytest.approx(f1_score(y, p, labels=present, average="weighted",
                                                                   zero_division=0))
        assert r["uar"]["value"] == pytest.approx(balanced_accuracy_score(y, p))
        for e in r.values():
            assert e["ci_low"] <= e["value"] <= e["ci_high"] and e["n"] == m.sum()


def test_conflict_metrics_equal_per_item_definitions(data):
    gold, pred, _, _ = data
    res = score(gold, SPLITS, ["categorical"], label=pred, n_boot=100, seed=0)
    c = gold.is_conflict
    a, s, p = gold.acoustic[c], gold.semantic[c], pred[c]
    assert res["conflict"]["text_following_rate"]["value"] == pytest.approx(np.mean(p == s))
    wrong = p != a
    assert res["conflict"]["errors_matching_text"]["value"] == pytest.approx(np.mean(p[wrong] == s[wrong]))
    gap = np.mean(pred[gold.is_congruent] == gold.acoustic[gold.is_congruent]) - np.mean(p == a)
    assert res["all"]["conflict_gap"]["value"] == pytest.approx(gap)
    assert "text_following_rate" not in res["congruent"]


def test_missing_predictions_count_as_wrong(data):
    gold, pred, _, _ = data
    pred = pred.copy()
    pred[:100] = -1
    res = score(gold, SPLITS[:1], ["categorical"], label=pred, n_boot=0)
    y = gold.acoustic
    expected = np.mean(pred == y)
    assert res["all"]["accuracy"]["value"] == pytest.approx(expected)
    # macro-F1 over the gold classes: a missing prediction lowers recall of its class and no precision
    p_sk = np.where(pred < 0, 99, pred)
    assert res["all"]["macro_f1"]["value"] == pytest.approx(
        f1_score(y, p_sk, labels=np.unique(y), average="macro", zero_division=0))
    assert res["all"]["accuracy"]["ci_low"] is None  # n_boot=0: no interval


def test_distribution_and_dimensional(data):
    gold, _, p_dist, pvad = data
    res = score(gold, SPLITS[:1], ["distribution", "dimensional"], dist=p_dist, vad=pvad, n_boot=100, seed=0)
    r = res["all"]
    js = np.mean([jensenshannon(g, p) ** 2 for g, p in zip(gold.distribution, p_dist, strict=False)])
    assert r["js"]["value"] == pytest.approx(js)
    ccc = []
    for d in gold.vad:
        x, y = gold.vad[d], pvad[d]
        ccc.append(2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))
    assert r["ccc"]["value"] == pytest.approx(np.mean(ccc))
    assert r["by_dimension"]["valence"]["ccc"]["value"] == pytest.approx(ccc[0])
    assert r["rmse"]["ci_low"] < r["rmse"]["value"] < r["rmse"]["ci_high"]


def test_speaker_bootstrap_is_used_when_speakers_known(data):
    gold, pred, _, _ = data
    by_speaker = score(gold, SPLITS[:1], ["categorical"], label=pred, n_boot=300, seed=0, unit="speaker")
    by_item = score(gold, SPLITS[:1], ["categorical"], label=pred, n_boot=300, seed=0, unit="item")
    auto = score(gold, SPLITS[:1], ["categorical"], label=pred, n_boot=300, seed=0, unit="auto")
    assert auto == by_speaker
    assert by_speaker["all"]["accuracy"]["value"] == by_item["all"]["accuracy"]["value"]
    assert by_speaker["all"]["accuracy"]["ci_low"] != by_item["all"]["accuracy"]["ci_low"]


def test_baselines_are_constant_predictions(data):
    gold = data[0]
    base = baselines(gold, SPLITS, ["categorical", "distribution", "dimensional"], n_boot=0, seed=0, unit="item")
    majority = np.bincount(gold.acoustic).argmax()
    oracle = base["test prior (oracle)"]["all"]  # no train prior given: computed from the test gold, and named so
    assert oracle["accuracy"]["value"] == pytest.approx(np.mean(gold.acoustic == majority))
    assert oracle["ccc"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert oracle["js"]["value"] > 0
