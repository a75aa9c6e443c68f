"""Bootstrap engine and paired tests (casebench.stats)."""

import numpy as np
import pytest
from scipy.stats import binomtest

from casebench.stats import Bootstrap, mcnemar, paired_p_value, percentile_ci


def test_cell_counts_match_index_resampling_in_distribution():
    # The multinomial-over-cells shortcut must have the same sampling distribution as drawing items with
    # replacement: compare the bootstrap mean and standard error of accuracy with the plain index bootstrap.
    rng = np.random.default_rng(1)
    correct = (rng.random(500) < 0.7).astype(int)
    fast = Bootstrap(4000, seed=2).counts(correct, 2)
    acc_fast = fast[:, 1] / fast.sum(1)
    idx = rng.integers(0, 500, size=(4000, 500))
    acc_slow = correct[idx].mean(1)
    assert acc_fast.mean() == pytest.approx(acc_slow.mean(), abs=0.003)
    assert acc_fast.std() == pytest.approx(acc_slow.std(), rel=0.06)
    # and both agree with the analytic standard error sqrt(p(1-p)/n)
    p = correct.mean()
    assert acc_fast.std() == pytest.approx(np.sqrt(p * (1 - p) / 500), rel=0.06)


def test_counts_are_exact_totals_and_seeded():
    codes = np.array([0, 1, 1, 2, 2, 2])
    a = Bootstrap(50, seed=7).counts(codes, 4)
    b = Bootstrap(50, seed=7).counts(codes, 4)
    assert (a == b).all() and (a.sum(1) == 6).all() and (a[:, 3] == 0).all()
    assert not (Bootstrap(50, seed=8).counts(codes, 4) == a).all()


def test_cluster_resampling_keeps_whole_clusters():
    # three speakers with 1, 2 and 3 items: a resample's item total is a sum of whole cluster sizes
    clusters = np.array([0, 1, 1, 2, 2, 2])
    codes = np.zeros(6, dtype=int)
    totals = Bootstrap(300, seed=0, clusters=clusters).counts(codes, 1)[:, 0]
    possible = {a + b + c for a in (1, 2, 3) for b in (1, 2, 3) for c in (1, 2, 3)}
    assert set(totals.astype(int)) <= possible
    assert len(set(totals.astype(int))) > 3


def test_sums_match_counts_for_one_hot_stats():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    s = Bootstrap(2000, seed=1).sums(x)
    assert s.shape == (2000, 2)
    # bootstrap SE of the mean = sd/sqrt(n) (population sd), within sampling error
    se = s[:, 0].std() / 200
    assert se == pytest.approx(x[:, 0].std() / np.sqrt(200), rel=0.08)


def test_sums_chunking_gives_the_right_shape(monkeypatch):
    import casebench.stats as st

    monkeypatch.setattr(st, "_MAX_DENSE", 1000)  # force many chunks
    out = Bootstrap(37, seed=0).sums(np.ones((300, 1)))
    assert out.shape == (37, 1) and (out == 300).all()


def test_subset_recodes_clusters():
    b = Bootstrap(10, seed=0, clusters=np.array([5, 5, 9, 9, 12]))
    sub = b.subset(np.array([False, False, True, True, True]))
    assert sub.clusters.tolist() == [0, 0, 1]


def test_percentile_ci_and_p_value():
    assert percentile_ci(np.arange(101.0)) == (2.5, 97.5)
    assert all(np.isnan(percentile_ci(np.array([np.nan]))))
    # every resample favours A: p is the floor 2 / (B + 1), never 0 (Phipson & Smyth 2010; Davison & Hinkley
    # 1997, eq. 4.11); before, 0.0 was printed for a comparison resting on two speaker clusters
    assert paired_p_value(np.full(100, 0.3)) == pytest.approx(2 / 101)
    assert paired_p_value(np.array([0.1, 0.2, 0.3, -0.1])) == pytest.approx(2 * 2 / 5)
    assert paired_p_value(np.array([-1.0, 1.0])) == 1.0


def test_mcnemar_exact_reference():
    # 10 discordant pairs where only A is right, 2 where only B is: exact two-sided binomial p-value
    # = 2 * P(X <= 2 | n=12, p=0.5) = 2 * (1 + 12 + 66) / 4096 = 0.0385742... (McNemar 1947, exact form)
    a = np.array([1] * 10 + [0] * 2 + [1] * 5, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5, bool)
    res = mcnemar(a, b)
    assert (res["a_only_correct"], res["b_only_correct"]) == (10, 2)
    assert res["p_value"] == pytest.approx(158 / 4096)
    assert res["p_value"] == pytest.approx(binomtest(10, 12, 0.5).pvalue)
