"""Tests for casebench.agreement: published worked examples (source named beside each value), the
krippendorff package and scikit-learn as references, and independent straightforward implementations."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from casebench import agreement as ag
from casebench.agreement import (
    LEVELS,
    ReliabilityMatrix,
    agreement_by_dimension,
    agreement_report,
    bootstrap_alpha,
    cohen_kappa_matrix,
    consensus_agreement,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    reliability_matrix,
    value_counts,
    weighted_alpha,
)
from casebench.errors import ConfigError, InputError

NAN = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units,
# values 1..5, missing data. The same data are cac.raw4raters in Gwet's irrCAC (Handbook, 4th ed., p. 120)
# and the example in the krippendorff package's docstring.
KRIPP_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])

# Fleiss (1971) data as shipped in irrCAC (distrib.6raters): 15 patients x 5 diagnoses, 6 psychiatrists each.
DISTRIB_6RATERS = np.array([
    [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
])

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
WIKI_FLEISS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def long_table(matrix: np.ndarray, domain=None, raters=None) -> pd.DataFrame:
    """Raters x units matrix (NaN = missing; indices into ``domain`` when given) -> long table."""
    raters = raters or [f"r{i}" for i in range(len(matrix))]
    rows = []
    for r, row in enumerate(matrix):
        for u, x in enumerate(row):
            if not np.isnan(x):
                rows.append({"clip_id": f"u{u:03d}", "rater_id": raters[r],
                             "value": domain[int(x)] if domain is not None else x})
    return pd.DataFrame(rows)


def random_matrix(rng, n_raters, n_units, domain, missing=0.3, p_right=0.6):
    """Ratings that agree more than by chance: each rater gives the unit's true value with p_right."""
    domain = np.asarray(domain, dtype=float)
    truth = rng.integers(0, len(domain), n_units)
    pick = np.where(rng.random((n_raters, n_units)) < p_right, truth[None, :],
                    rng.integers(0, len(domain), (n_raters, n_units)))
    m = domain[pick]
    m[rng.random(m.shape) < missing] = NAN
    return m


def counts_of(matrix: np.ndarray, domain) -> np.ndarray:
    return value_counts(ReliabilityMatrix(matrix, list(range(matrix.shape[1])),
                                          list(range(len(matrix))), list(domain)))


# ---------------------------------------------------------------------------------------------------------
# Krippendorff's alpha


@pytest.mark.parametrize(("level", "expected"), [
    ("nominal", 0.743),   # Krippendorff (2011), section C.1
    ("ordinal", 0.815),   # Krippendorff (2011), section C.2
    ("interval", 0.849),  # Krippendorff (2011), section C.3
    ("ratio", 0.797),     # Krippendorff (2011), section C.4
])
def test_alpha_krippendorff_2011_worked_example(level, expected):
    rep = agreement_report(long_table(KRIPP_2011), level=level, value_domain=[1, 2, 3, 4, 5], n_boot=0)
    assert round(rep["krippendorff_alpha"]["value"], 3) == expected
    assert rep["n_units"] == 12 and rep["n_raters"] == 4 and rep["n_ratings"] == 41
    assert rep["n_pairable_units"] == 11  # unit 12 has a single rating


def test_alpha_nominal_matches_irrcac():
    # irrCAC README (Gwet), krippen.alpha.raw(cac.raw4raters): coeff.val 0.74342
    assert round(krippendorff_alpha(counts_of(KRIPP_2011, [1, 2, 3, 4, 5]), [1, 2, 3, 4, 5],
                                    level="nominal"), 5) == 0.74342
    # irrCAC overview vignette, krippen.alpha.dist(distrib.6raters): 0.4204384
    assert round(krippendorff_alpha(DISTRIB_6RATERS, list("abcde"), level="nominal"), 7) == 0.4204384


@pytest.mark.parametrize("level", LEVELS)
def test_fast_alpha_equals_package_and_resamples(level):
    """The unit-sum form equals krippendorff.alpha to 1e-9 on the data and on bootstrap resamples."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(40):
        domain = np.sort(rng.choice(np.arange(-2, 15), rng.integers(2, 8), replace=False)).astype(float)
        data = random_matrix(rng, rng.integers(2, 7), rng.integers(3, 40), domain, missing=0.35)
        counts = counts_of(data, domain)
        if ag._alpha_undefined(counts):
            continue
        ref = krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level)
        assert weighted_alpha(counts, domain, level=level, weights=np.ones((1, len(counts))))[0] == \
            pytest.approx(ref, abs=1e-9)
        assert krippendorff_alpha(counts, domain, level=level) == pytest.approx(ref, abs=1e-12)
        idx = rng.integers(0, len(counts), len(counts))
        if ag._alpha_undefined(counts[idx]):
            continue
        w = np.bincount(idx, minlength=len(counts))[None, :]
        ref_b = krippendorff.alpha(value_counts=counts[idx], value_domain=domain, level_of_measurement=level)
        assert weighted_alpha(counts, domain, level=level, weights=w)[0] == pytest.approx(ref_b, abs=1e-9)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("level", LEVELS)
def test_bootstrap_alpha_equals_package_on_each_resample(level):
    rng = np.random.default_rng(3)
    domain = [1.0, 2.0, 3.0, 4.0, 5.0]
    counts = counts_of(random_matrix(rng, 5, 60, domain), domain)
    boot = bootstrap_alpha(counts, domain, level=level, n_boot=12, seed=11)
    weights = np.vstack(list(ag._resample_weights(len(counts), 12, 11)))
    for b in range(12):
        again = np.repeat(counts, weights[b].astype(int), axis=0)
        ref = krippendorff.alpha(value_counts=again, value_domain=domain, level_of_measurement=level)
        assert boot[b] == pytest.approx(ref, abs=1e-9)


def test_bootstrap_is_seeded_and_chunking_does_not_change_it(monkeypatch):
    rng = np.random.default_rng(0)
    counts = counts_of(random_matrix(rng, 4, 51, [0, 1, 2]), [0, 1, 2])
    a = bootstrap_alpha(counts, [0, 1, 2], level="nominal", n_boot=30, seed=5)
    assert np.array_equal(a, bootstrap_alpha(counts, [0, 1, 2], level="nominal", n_boot=30, seed=5))
    assert not np.array_equal(a, bootstrap_alpha(counts, [0, 1, 2], level="nominal", n_boot=30, seed=6))
    monkeypatch.setattr(ag, "CHUNK_ELEMENTS", 7 * 51)  # 7 resamples (an odd number of draws) per chunk
    assert np.array_equal(a, bootstrap_alpha(counts, [0, 1, 2], level="nominal", n_boot=30, seed=5))


def test_alpha_ci_brackets_value_and_narrows_with_more_units():
    rng = np.random.default_rng(1)
    small = agreement_report(long_table(random_matrix(rng, 5, 40, [1, 2, 3, 4, 5])), level="interval",
                             value_domain=[1, 2, 3, 4, 5], n_boot=300)
    big = agreement_report(long_table(random_matrix(rng, 5, 1000, [1, 2, 3, 4, 5])), level="interval",
                           value_domain=[1, 2, 3, 4, 5], n_boot=300)
    for rep in (small, big):
        a = rep["krippendorff_alpha"]
        assert a["ci_low"] <= a["value"] <= a["ci_high"]
    width = [r["krippendorff_alpha"]["ci_high"] - r["krippendorff_alpha"]["ci_low"] for r in (small, big)]
    assert width[1] < width[0] / 2


def test_alpha_undefined_is_reported_not_raised():
    df = pd.DataFrame({"clip_id": ["a", "a", "b", "b"], "rater_id": ["r1", "r2"] * 2, "value": ["x"] * 4})
    rep = agreement_report(df, level="nominal", value_domain=["x", "y"], n_boot=10)
    assert rep["krippendorff_alpha"]["applicable"] is False
    assert "same value" in rep["krippendorff_alpha"]["reason"]
    single = agreement_report(df.iloc[[0, 2]], level="nominal", value_domain=["x", "y"], n_boot=10)
    assert "two or more ratings" in single["krippendorff_alpha"]["reason"]
    assert np.isnan(krippendorff_alpha([[2, 0], [2, 0]], ["x", "y"], level="nominal"))


def test_interval_with_more_values_than_categories_uses_closed_form():
    rng = np.random.default_rng(4)
    truth = rng.normal(size=80)
    data = np.round(truth[None, :] + rng.normal(scale=0.5, size=(4, 80)), 3)
    data[rng.random(data.shape) < 0.2] = NAN
    rep = agreement_report(long_table(data), level="interval", n_boot=50)
    assert len(rep["value_domain"]) > ag.MAX_CATEGORIES
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    assert rep["krippendorff_alpha"]["value"] == pytest.approx(ref, abs=1e-9)
    assert rep["krippendorff_alpha"]["method"].startswith("closed form")
    assert rep["fleiss_kappa"]["applicable"] is False and rep["gwet_ac1"]["applicable"] is False
    assert rep["pairwise_cohen_kappa"]["applicable"] is False
    assert rep["per_rater"][0]["agreement_with_consensus"] > 0.5


# ---------------------------------------------------------------------------------------------------------
# Fleiss' kappa


def test_fleiss_wikipedia_worked_example():
    # Wikipedia "Fleiss' kappa" worked example: P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210
    assert round(fleiss_kappa(WIKI_FLEISS), 3) == 0.210


def test_fleiss_and_ac1_irrcac_distrib_6raters():
    # irrCAC overview vignette (Gwet): fleiss.kappa.dist(distrib.6raters) = 0.4139265,
    # gwet.ac1.dist(distrib.6raters) = 0.4448007
    assert round(fleiss_kappa(DISTRIB_6RATERS), 7) == 0.4139265
    assert round(gwet_ac1(DISTRIB_6RATERS), 7) == 0.4448007


def test_fleiss_not_applicable_with_unequal_ratings():
    with pytest.raises(InputError, match="between 3 and 4 ratings"):
        fleiss_kappa([[3, 0], [2, 2]])
    rep = agreement_report(long_table(KRIPP_2011), level="nominal", value_domain=[1, 2, 3, 4, 5], n_boot=0)
    f = rep["fleiss_kappa"]
    assert f["applicable"] is False and f["value"] is None and f["ci_low"] is None
    assert "between 1 and 4 ratings" in f["reason"]


def test_fleiss_in_report_with_equal_ratings_has_ci():
    rng = np.random.default_rng(2)
    data = random_matrix(rng, 4, 200, [0, 1, 2], missing=0.0)
    rep = agreement_report(long_table(data, domain=["a", "b", "c"]), level="nominal",
                           value_domain=["a", "b", "c"], n_boot=200)
    f = rep["fleiss_kappa"]
    assert f["applicable"] is True
    assert f["value"] == pytest.approx(fleiss_kappa(counts_of(data, [0, 1, 2])))
    assert f["ci_low"] < f["value"] < f["ci_high"]


# ---------------------------------------------------------------------------------------------------------
# Gwet's AC1


def test_ac1_gwet_raw4raters_with_missing_ratings():
    # irrCAC README (Gwet), gwet.ac1.raw(cac.raw4raters): pa 0.8181818, pe 0.1903212, AC1 0.77544
    assert round(gwet_ac1(counts_of(KRIPP_2011, [1, 2, 3, 4, 5])), 5) == 0.77544


def test_ac1_irrcac_python_port_examples():
    # afergadis/irrCAC (Python port of irrCAC), test/unit/irrCAC/raw/test_gwet.py: raw_5observers
    # (Gwet, Handbook 4th ed.) AC1 0.497, values 0..3, missing ratings
    obs = np.array([
        [1, 1, 2, NAN, 0, 0, 1, 1, 2, 2, NAN, 0, 1, 3, 1],
        [1, 1, 3, 0, 0, 0, 0, NAN, 2, 1, 1, 0, 2, 3, 1],
        [2, 0, 3, 0, 0, 0, 2, 2, 2, 1, 0, 0, 2, 2, 1],
        [NAN, 1, 3, NAN, NAN, NAN, NAN, 0, NAN, 1, 0, 0, 2, 2, NAN],
        [2, NAN, NAN, 0, 0, 0, 1, NAN, 2, NAN, NAN, NAN, NAN, 3, 1],
    ])
    assert round(gwet_ac1(counts_of(obs, [0, 1, 2, 3])), 3) == 0.497
    # same source, raw_ben_gerry: 2 raters, categories a..e, one missing rating; AC1 0.661
    ben = ["a", "a", "b", "b", "d", "c", "c", "c", "e", "d", "d", "a"]
    gerry = ["b", "a", "b", "b", "b", "c", "c", "c", "e", None, "d", "d"]
    df = pd.DataFrame([{"clip_id": u, "rater_id": r, "value": v}
                       for r, vals in (("ben", ben), ("gerry", gerry)) for u, v in enumerate(vals) if v])
    rep = agreement_report(df, level="nominal", value_domain=list("abcde"), n_boot=0)
    assert round(rep["gwet_ac1"]["value"], 3) == 0.661


def test_ac1_two_raters_contingency_table():
    # irrCAC README (Gwet): cont3x3abstractors, gwet.ac1.table = 0.8493305, kappa2.table = 0.7964094
    table = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    a = np.repeat(np.arange(3), table.sum(axis=1))
    b = np.concatenate([np.repeat(np.arange(3), row) for row in table])
    rm = ReliabilityMatrix(np.vstack([a, b]).astype(float), list(range(len(a))), ["r1", "r2"],
                           ["Ectopic", "AIU", "NIU"])
    assert round(gwet_ac1(value_counts(rm)), 7) == 0.8493305
    assert round(float(cohen_kappa_matrix(rm)[0][0, 1]), 7) == 0.7964094


def _ac1_by_hand(matrix: np.ndarray, q: int) -> float:
    """Gwet's AC1 with missing ratings written out unit by unit (Gwet, Handbook 4th ed., ch. 5; the
    formula of irrCAC's gwet.ac1.raw), as an independent check of the vectorised version."""
    units = [[int(x) for x in col if not np.isnan(x)] for col in matrix.T]
    units = [u for u in units if u]
    pa_terms, pi = [], [0.0] * q
    for u in units:
        r = len(u)
        for k in range(q):
            pi[k] += u.count(k) / r / len(units)
        if r >= 2:
            pa_terms.append(sum(u.count(k) * (u.count(k) - 1) for k in range(q)) / (r * (r - 1)))
    pa = sum(pa_terms) / len(pa_terms)
    pe = sum(p * (1 - p) for p in pi) / (q - 1)
    return (pa - pe) / (1 - pe)


def test_ac1_matches_unit_by_unit_formula_and_two_rater_identity():
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = int(rng.integers(2, 6))
        data = random_matrix(rng, int(rng.integers(2, 7)), int(rng.integers(5, 50)), range(q), missing=0.3)
        assert gwet_ac1(counts_of(data, range(q))) == pytest.approx(_ac1_by_hand(data, q), abs=1e-12)
    # Gwet (2008), two raters, complete data: pe = sum_k pi_k (1 - pi_k) / (q - 1), pi_k = (p_k+ + p_+k) / 2
    q = 4
    data = random_matrix(rng, 2, 300, range(q), missing=0.0)
    pa = np.mean(data[0] == data[1])
    pi = np.array([(np.mean(data[0] == k) + np.mean(data[1] == k)) / 2 for k in range(q)])
    pe = (pi * (1 - pi)).sum() / (q - 1)
    assert gwet_ac1(counts_of(data, range(q))) == pytest.approx((pa - pe) / (1 - pe), abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Cohen's kappa and per-rater agreement


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_pairwise_cohen_matches_sklearn(weights):
    rng = np.random.default_rng(8)
    domain = ["a", "b", "c", "d"]
    data = random_matrix(rng, 5, 120, range(4), missing=0.3)
    rm = ReliabilityMatrix(data, list(range(120)), [f"r{i}" for i in range(5)], domain)
    kappa, n_common = cohen_kappa_matrix(rm, weights=weights)
    for i in range(5):
        assert np.isnan(kappa[i, i])
        for j in range(i + 1, 5):
            both = ~np.isnan(data[i]) & ~np.isnan(data[j])
            ref = cohen_kappa_score(data[i, both], data[j, both], labels=[0, 1, 2, 3], weights=weights)
            assert kappa[i, j] == pytest.approx(ref, abs=1e-12) and kappa[j, i] == kappa[i, j]
            assert n_common[i, j] == both.sum()


def test_report_cohen_weights_follow_level():
    df = long_table(KRIPP_2011)
    for level, weights in (("nominal", None), ("ordinal", "linear"), ("interval", "quadratic")):
        rep = agreement_report(df, level=level, value_domain=[1, 2, 3, 4, 5], n_boot=0)
        pc = rep["pairwise_cohen_kappa"]
        assert pc["weights"] == weights and pc["raters"] == ["r0", "r1", "r2", "r3"]
        assert len(pc["kappa"]) == 4 and pc["kappa"][0][0] is None


def test_consensus_nominal_ties_are_split():
    # unit 0: r1 'a', r2 'a', r3 'b' -> r1's others {a, b}: tie of 2 -> 1/2; r3's others {a, a} -> 0
    # unit 1: everyone 'b' -> 1 each
    data = np.array([[0, 1], [0, 1], [1, 1]], dtype=float)
    rm = ReliabilityMatrix(data, ["u0", "u1"], ["r1", "r2", "r3"], ["a", "b"])
    got = {d["rater_id"]: d["agreement_with_consensus"] for d in consensus_agreement(rm, level="nominal")}
    assert got == {"r1": 0.75, "r2": 0.75, "r3": 0.5}


def test_consensus_spots_a_careless_rater():
    rng = np.random.default_rng(9)
    for level, domain in (("nominal", range(5)), ("interval", [1, 2, 3, 4, 5, 6, 7])):
        data = random_matrix(rng, 6, 300, domain, missing=0.2, p_right=0.8)
        data[3] = np.asarray(domain, dtype=float)[rng.integers(0, len(domain), 300)]  # rater 3 guesses
        rep = agreement_report(long_table(data), level=level, value_domain=list(domain), n_boot=0)
        scores = [d["agreement_with_consensus"] for d in rep["per_rater"]]
        assert int(np.argmin(scores)) == 3
        if level == "interval":
            assert int(np.argmax([d["mae"] for d in rep["per_rater"]])) == 3


def test_consensus_interval_by_hand():
    data = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [2, 2, 4, NAN]], dtype=float)
    rm = ReliabilityMatrix(data, list(range(4)), ["a", "b", "c"], [1, 2, 3, 4, 5])
    a = consensus_agreement(rm, level="interval")[0]
    others = np.array([1.5, 2.0, 3.5, 5.0])  # mean of b and c (c missing on unit 3)
    assert a["n_compared"] == 4
    assert a["mae"] == pytest.approx(np.abs(data[0] - others).mean())
    assert a["agreement_with_consensus"] == pytest.approx(np.corrcoef(data[0], others)[0, 1])


# ---------------------------------------------------------------------------------------------------------
# Tables, validation and the report


def test_reliability_matrix_encodes_text_as_indices_and_keeps_numbers():
    df = pd.DataFrame({"clip_id": ["b", "a", "a"], "rater_id": ["r2", "r1", "r2"],
                       "value": ["sad", "joy", "sad"]})
    rm = reliability_matrix(df, ["joy", "sad", "fear"])
    assert rm.units == ["a", "b"] and rm.raters == ["r1", "r2"] and rm.domain == ["joy", "sad", "fear"]
    np.testing.assert_array_equal(rm.matrix, [[0, NAN], [1, 1]])
    num = reliability_matrix(df.assign(value=[2.5, 1, 2.5]))
    assert num.domain == [1, 2.5]
    np.testing.assert_array_equal(num.matrix, [[1, NAN], [2.5, 2.5]])
    np.testing.assert_array_equal(value_counts(num), [[1, 1], [0, 1]])


def test_bad_values_duplicates_and_columns_are_all_listed():
    df = pd.DataFrame({"clip_id": ["a", "a", "b", "c"], "rater_id": ["r1", "r2", "r1", "r1"],
                       "value": ["joy", "angy", "sadd", "joy"]})
    with pytest.raises(InputError) as err:
        reliability_matrix(df, ["joy", "sad", "angry"])
    msg = str(err.value)
    assert "2 rating(s) outside the value domain" in msg and "did you mean 'angry'?" in msg
    assert "'sadd'" in msg
    dup = pd.DataFrame({"clip_id": ["a", "a", "b", "b"], "rater_id": ["r1", "r1", "r2", "r2"],
                        "value": [1] * 4})
    with pytest.raises(InputError, match="2 duplicate") as err:
        reliability_matrix(dup)
    assert "rater 'r1' rated this clip 2 times" in str(err.value)
    with pytest.raises(InputError, match="rater_id"):
        reliability_matrix(pd.DataFrame({"clip_id": ["a"], "rater": ["r1"], "value": [1]}))
    with pytest.raises(InputError, match="mix types"):
        reliability_matrix(pd.DataFrame({"clip_id": ["a", "b"], "rater_id": ["r1", "r1"], "value": ["x", 1]}))


def test_level_is_required_and_checked():
    df = long_table(KRIPP_2011)
    with pytest.raises(TypeError):
        agreement_report(df)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="did you mean 'ordinal'"):
        agreement_report(df, level="ordnial")
    with pytest.raises(ConfigError, match="numeric value domain"):
        agreement_report(df, level="interval", value_domain=["low", "high"])


def test_report_is_json_ready_and_complete():
    rng = np.random.default_rng(12)
    df = long_table(random_matrix(rng, 5, 80, range(3), missing=0.2), domain=["neg", "neu", "pos"])
    domain = ["neg", "neu", "pos", "mixed"]
    rep = agreement_report(df, level="nominal", value_domain=domain, n_boot=100, seed=3)
    json.dumps(rep, allow_nan=False)
    for key in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1"):
        assert {"value", "ci_low", "ci_high", "applicable"} <= set(rep[key])
    assert rep["krippendorff_alpha"]["ci_low"] < rep["krippendorff_alpha"]["ci_high"]
    assert rep["gwet_ac1"]["ci_low"] < rep["gwet_ac1"]["value"] < rep["gwet_ac1"]["ci_high"]
    assert rep["level"] == "nominal" and rep["value_domain_source"] == "given"
    assert rep["value_domain"] == ["neg", "neu", "pos", "mixed"]
    assert rep["n_ratings"] == len(df) == sum(d["n_ratings"] for d in rep["per_rater"])
    assert rep["bootstrap"]["n_boot"] == 100 and rep["bootstrap"]["seed"] == 3
    assert rep == agreement_report(df, level="nominal", value_domain=domain, n_boot=100, seed=3)
    # AC1 depends on the number of categories, so the unused "mixed" label changes it
    observed = agreement_report(df, level="nominal", n_boot=0)
    assert observed["value_domain_source"] == "observed"
    assert observed["gwet_ac1"]["value"] != rep["gwet_ac1"]["value"]
    assert observed["krippendorff_alpha"]["value"] == pytest.approx(rep["krippendorff_alpha"]["value"])


def test_report_excludes_cancelled_and_missing_values_and_counts_them():
    df = long_table(KRIPP_2011)
    extra = pd.DataFrame({"clip_id": ["u000", "u001"], "rater_id": ["r9", "r9"], "value": [5.0, NAN]})
    df = pd.concat([df.assign(cancelled=False), extra.assign(cancelled=[True, False])], ignore_index=True)
    rep = agreement_report(df, level="nominal", value_domain=[1, 2, 3, 4, 5], n_boot=0)
    assert rep["excluded"] == {"cancelled": 1, "missing_value": 1}
    assert round(rep["krippendorff_alpha"]["value"], 3) == 0.743  # Krippendorff (2011), unchanged


def test_interval_sums_from_values_equal_count_form_on_resamples():
    rng = np.random.default_rng(6)
    domain = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    data = random_matrix(rng, 6, 70, domain, missing=0.4)
    w = np.vstack(list(ag._resample_weights(70, 20, 0)))
    from_counts = ag._alpha_sums(counts_of(data, domain), domain, "interval").weighted(w)
    np.testing.assert_allclose(ag._interval_sums_from_values(data).weighted(w), from_counts, atol=1e-12)


def test_nothing_left_to_score_is_an_error():
    df = long_table(KRIPP_2011).assign(cancelled=True)
    with pytest.raises(InputError, match="nothing to score"):
        agreement_report(df, level="interval", n_boot=0)


def test_report_uses_value_num_for_ordered_levels_of_text_values():
    df = long_table(KRIPP_2011)
    df = df.assign(value=df["value"].map(lambda x: f"{x:g}"), value_num=df["value"])
    rep = agreement_report(df, level="interval", n_boot=0)
    assert rep["value_column"] == "value_num" and round(rep["krippendorff_alpha"]["value"], 3) == 0.849
    parsed = agreement_report(df.drop(columns="value_num"), level="ratio", n_boot=0)
    assert parsed["value_column"] == "value" and round(parsed["krippendorff_alpha"]["value"], 3) == 0.797
    with pytest.raises(InputError, match="not a number"):
        agreement_report(df.drop(columns="value_num").assign(value="high"), level="interval", n_boot=0)
    # ordinal text values with an ordered domain (Krippendorff 2011 data relabelled), alpha 0.815
    labels = ["very low", "low", "mid", "high", "very high"]
    text = long_table(KRIPP_2011 - 1, domain=labels)
    assert round(agreement_report(text, level="ordinal", value_domain=labels, n_boot=0)
                 ["krippendorff_alpha"]["value"], 3) == 0.815


def test_dimensions():
    emo = long_table(KRIPP_2011, domain=[None, "angry", "happy", "neutral", "sad", "fear"]).assign(
        dimension="acoustic_emotion")
    val = long_table(KRIPP_2011).assign(dimension="valence")
    df = pd.concat([emo, val], ignore_index=True)
    with pytest.raises(InputError, match="2 dimensions"):
        agreement_report(df, level="nominal")
    with pytest.raises(InputError, match="did you mean 'valence'"):
        agreement_report(df, level="interval", dimension="valnce")
    reps = agreement_by_dimension(df, {"acoustic_emotion": "nominal", "valence": "interval"}, n_boot=0)
    assert round(reps["acoustic_emotion"]["krippendorff_alpha"]["value"], 3) == 0.743  # Krippendorff (2011)
    assert round(reps["valence"]["krippendorff_alpha"]["value"], 3) == 0.849  # Krippendorff (2011)
    assert reps["valence"] == agreement_report(df, level="interval", dimension="valence", n_boot=0)
    with pytest.raises(ConfigError) as err:
        agreement_by_dimension(df, {"acoustic_emotion": "nominal", "valense": "interval"})
    assert "'valence' has ratings but no level" in str(err.value)
    assert "did you mean 'valence'" in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# Set-valued ratings: Krippendorff's alpha with the MASI distance. Reference: NLTK's
# nltk.metrics.agreement.AnnotationTask (an independent implementation of alpha over any distance) with
# nltk.metrics.distance.masi_distance (Passonneau 2006).


def _multilabel_table(rng, n_clips=30, n_raters=6, labels=("joy", "love", "sad", "rage", "calm")):
    rows = []
    for c in range(n_clips):
        core = set(rng.choice(labels, rng.integers(1, 3), replace=False))
        for r in range(n_raters):
            chosen = set(core) if rng.random() < 0.6 else set(rng.choice(labels, rng.integers(1, 4), replace=False))
            rows.append({"clip_id": f"c{c:02d}", "rater_id": f"r{r}", "value": ";".join(sorted(chosen))})
    return pd.DataFrame(rows)


def test_masi_distance_matches_nltk():
    from nltk.metrics.distance import masi_distance as nltk_masi

    from casebench.agreement import masi_distance

    cases = [("a", "a"), ("a", "b"), ("a;b", "a"), ("a;b", "b;c"), ("a;b;c", "a;b"), ("a;b", "a;b")]
    for x, y in cases:
        ours = masi_distance(x, y)
        ref = nltk_masi(frozenset(x.split(";")), frozenset(y.split(";")))
        # NLTK rounds Passonneau's monotonicity factors 2/3 and 1/3 to 0.67 and 0.33
        assert ours == pytest.approx(ref, abs=0.0034), (x, y)
    assert masi_distance("a;b", "a") == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi_distance("b;a", "a;b") == 0.0


def test_masi_alpha_matches_nltk_annotation_task():
    from nltk.metrics.agreement import AnnotationTask

    from casebench.agreement import masi_distance

    rng = np.random.default_rng(4)
    for _ in range(3):
        df = _multilabel_table(rng)
        rep = agreement_report(df, level="masi", n_boot=0)
        data = [(r.rater_id, r.clip_id, frozenset(r.value.split(";"))) for r in df.itertuples()]
        # NLTK's alpha over the same distance (complete data: every rater rated every clip)
        ref = AnnotationTask(data=data, distance=masi_distance).alpha()
        assert rep["krippendorff_alpha"]["value"] == pytest.approx(ref, abs=1e-9)
        # and with NLTK's own (rounded) masi_distance, within the rounding
        from nltk.metrics.distance import masi_distance as nltk_masi

        assert rep["krippendorff_alpha"]["value"] == pytest.approx(
            AnnotationTask(data=data, distance=nltk_masi).alpha(), abs=0.01)


def test_masi_per_class_alpha_is_binary_nominal_alpha_and_cis_share_resamples():
    rng = np.random.default_rng(9)
    df = _multilabel_table(rng)
    rep = agreement_report(df, level="masi", n_boot=200, seed=3)
    assert rep["level"] == "masi" and rep["fleiss_kappa"]["applicable"] is False
    a = rep["krippendorff_alpha"]
    assert a["ci_low"] <= a["value"] <= a["ci_high"]
    for label, coef in rep["per_class_alpha"].items():
        binary = df.assign(value=df["value"].map(lambda v, x=label: int(x in v.split(";"))))
        ref = krippendorff.alpha(reliability_data=binary.pivot(index="rater_id", columns="clip_id", values="value")
                                 .to_numpy(dtype=float), level_of_measurement="nominal")
        assert coef["value"] == pytest.approx(ref, abs=1e-9), label
        assert coef["ci_low"] <= coef["value"] <= coef["ci_high"]
    # the same seed gives the same intervals; the order of labels inside a value does not matter
    again = agreement_report(df.assign(value=df["value"].map(lambda v: ";".join(reversed(v.split(";"))))),
                             level="masi", n_boot=200, seed=3)
    assert again["krippendorff_alpha"] == a
    # single labels everywhere: MASI reduces to the nominal distance
    single = df.assign(value=df["value"].str.split(";").str[0])
    assert agreement_report(single, level="masi", n_boot=0)["krippendorff_alpha"]["value"] == pytest.approx(
        agreement_report(single, level="nominal", n_boot=0)["krippendorff_alpha"]["value"], abs=1e-12)


def test_masi_rejects_labels_outside_the_domain():
    df = pd.DataFrame({"clip_id": ["a", "a"], "rater_id": ["r1", "r2"], "value": ["joy;sadd", "joy"]})
    with pytest.raises(InputError, match="sadd"):
        agreement_report(df, level="masi", value_domain=["joy", "sad"], n_boot=0)


def test_masi_with_many_label_sets_and_sparse_raters(monkeypatch):
    """Above MASI_EXACT_MAX_SETS distinct sets the point value is the same closed form and the bootstrap holds
    the expected disagreement fixed (Hayes & Krippendorff 2007), as the report says; raters who rated only
    some clips (60 raters, 8 per clip) are placed per clip, not in a raters x clips grid."""
    rng = np.random.default_rng(2)
    labels = [f"l{i}" for i in range(12)]
    rows = []
    for c in range(40):
        core = rng.choice(labels, 2, replace=False)
        for r in rng.choice(60, 8, replace=False):
            pick = set(core[: rng.integers(1, 3)]) if rng.random() < 0.7 else set(rng.choice(labels, 2))
            rows.append({"clip_id": f"c{c}", "rater_id": f"r{r:02d}", "value": ";".join(sorted(pick))})
    df = pd.DataFrame(rows)
    exact = agreement_report(df, level="masi", n_boot=100, seed=1)
    monkeypatch.setattr(ag, "MASI_EXACT_MAX_SETS", 2)
    fixed = agreement_report(df, level="masi", n_boot=100, seed=1)
    assert fixed["krippendorff_alpha"]["value"] == pytest.approx(exact["krippendorff_alpha"]["value"], abs=1e-9)
    assert "Hayes & Krippendorff" in fixed["bootstrap"]["method"]
    assert fixed["krippendorff_alpha"]["ci_low"] <= fixed["krippendorff_alpha"]["value"] <= \
        fixed["krippendorff_alpha"]["ci_high"]
    assert fixed["per_rater"] == exact["per_rater"] and len(fixed["per_rater"]) == df["rater_id"].nunique()
    from casebench.agreement import masi_distance

    # the per-rater score by hand: the mean MASI distance to the other raters of the same clips
    one = df[df["rater_id"] == fixed["per_rater"][0]["rater_id"]]
    ref = []
    for clip, value in zip(one["clip_id"], one["value"], strict=True):
        others = df[(df["clip_id"] == clip) & (df["rater_id"] != one["rater_id"].iloc[0])]["value"]
        ref.append(np.mean([masi_distance(value, o) for o in others]))
    assert fixed["per_rater"][0]["agreement_with_consensus"] == pytest.approx(1 - np.mean(ref), abs=1e-9)
