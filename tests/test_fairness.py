"""casebench.fairness: group metrics equal per-group scikit-learn values; small groups are flagged, not ranked."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from casebench.benchmarks import Gold
from casebench.errors import ConfigError
from casebench.fairness import MISSING, group_breakdown
from casebench.taxonomy import get_taxonomy

TAX = get_taxonomy("ekman7")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 600
    acoustic = rng.integers(0, 7, n)
    speaker = np.array([f"s{i % 24}" for i in range(n)], dtype=object)
    gender = np.array(["f" if int(s[1:]) % 2 else "m" for s in speaker], dtype=object)
    lang = np.array(["en"] * 400 + ["de"] * 180 + ["fr"] * 20, dtype=object)
    gender[:5] = None
    acc = np.where(gender == "f", 0.8, 0.5)
    pred = np.where(rng.random(n) < acc, acoustic, rng.integers(0, 7, n))
    gold = Gold(ids=np.array([f"c{i}" for i in range(n)], dtype=object), taxonomy=TAX, acoustic=acoustic,
                speaker=speaker, columns={"gender": gender, "language": lang, "speaker_id": speaker})
    return gold, pred


def test_group_metrics_equal_sklearn(data):
    gold, pred = data
    res = group_breakdown(gold, pred, "gender", n_boot=100)
    for g in ("f", "m"):
        m = gold.columns["gender"] == g
        y, p = gold.acoustic[m], pred[m]
        e = res["groups"][g]
        assert e["n"] == m.sum()
        assert e["metrics"]["accuracy"]["value"] == pytest.approx(accuracy_score(y, p))
        assert e["metrics"]["uar"]["value"] == pytest.approx(balanced_accuracy_score(y, p))
        present = sorted(set(y))
        assert e["metrics"]["macro_f1"]["value"] == pytest.approx(f1_score(y, p, labels=present, average="macro"))
        assert e["metrics"]["weighted_f1"]["value"] == pytest.approx(
            f1_score(y, p, labels=present, average="weighted"))
        rec = recall_score(y, p, labels=present, average=None)
        for c, r in zip(present, rec, strict=True):
            assert e["recall"][TAX.labels[c]]["value"] == pytest.approx(r)
        lo, hi = e["metrics"]["uar"]["ci_low"], e["metrics"]["uar"]["ci_high"]
        assert lo <= e["metrics"]["uar"]["value"] <= hi


def test_worst_group_gap_and_recall_gaps(data):
    gold, pred = data
    res = group_breakdown(gold, pred, "gender", n_boot=200)
    f, m = (res["groups"][g]["metrics"]["accuracy"]["value"] for g in ("f", "m"))
    assert res["worst_group"]["accuracy"]["group"] == "m"
    gap = res["largest_gap"]["accuracy"]
    assert (gap["best"], gap["worst"]) == ("f", "m")
    assert gap["diff"]["value"] == pytest.approx(f - m)
    assert gap["diff"]["ci_low"] > 0  # a 30-point gap over 300 items a side is clearly non-zero
    for lab, g in res["recall_gaps"].items():
        vals = [res["groups"][x]["recall"][lab]["value"] for x in res["ranked"] if lab in res["groups"][x]["recall"]]
        assert g["diff"]["value"] == pytest.approx(max(vals) - min(vals))


def test_small_groups_flagged_not_ranked(data):
    gold, pred = data
    res = group_breakdown(gold, pred, "gender", n_boot=0)
    assert res["groups"][MISSING]["ranked"] is False and MISSING in res["not_ranked"]
    lang = group_breakdown(gold, pred, "language", n_boot=0)
    assert lang["not_ranked"] == {"fr": "20 items < 30"}
    assert set(lang["ranked"]) == {"en", "de"}
    assert lang["groups"]["fr"]["metrics"]["accuracy"]["value"] is not None  # scored, just not ranked
    few = group_breakdown(gold, pred, "language", n_boot=0, min_speakers=25)
    assert few["ranked"] == [] and few["worst_group"] == {} and "speaker" in few["not_ranked"]["en"]
    by_speaker = group_breakdown(gold, pred, "speaker_id", n_boot=0)  # one voice per group is the point here
    assert by_speaker["unit"] == "item" and by_speaker["ranked"] == []  # 25 items each
    assert all("speaker" not in r for r in by_speaker["not_ranked"].values())


def test_unknown_column_names_choices(data):
    gold, pred = data
    with pytest.raises(ConfigError, match="did you mean 'gender'"):
        group_breakdown(gold, pred, "gendr")


def test_evaluate_group_by_additive():
    from casebench.benchmarks import get_benchmark
    from casebench.evaluate import evaluate

    bench = get_benchmark("casebench-mini")
    preds = bench.gold_path.parent / "examples" / "voice-model.jsonl"
    plain = evaluate(preds, bench, n_boot=20)
    grouped = evaluate(preds, bench, n_boot=20, group_by="speaker_id", min_group_items=1)
    assert plain["splits"] == grouped["splits"] and "groups" not in plain and "robustness" not in plain
    assert grouped["groups"]["speaker_id"]["column"] == "speaker_id"
