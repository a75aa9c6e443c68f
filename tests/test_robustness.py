"""casebench.robustness: paired clean-vs-degraded drop with a CI, SNR curves and their area, via evaluate."""

import json

import numpy as np
import pytest

from casebench.benchmarks import Gold
from casebench.robustness import auc, item_conditions, robustness_summary
from casebench.taxonomy import get_taxonomy

TAX = get_taxonomy("ekman7")


def _paired(n=400, p_clean=0.8, p_deg=(0.75, 0.6, 0.45), seed=0, speakers=True):
    """Clean items c<i> and copies c<i>@snr<N>; a copy is right only if the clean item was right (nested)."""
    rng = np.random.default_rng(seed)
    acoustic = rng.integers(0, 7, n)
    wrong = (acoustic + 1 + rng.integers(0, 6, n)) % 7
    u = rng.random(n)
    ids, ac, pred, spk = [], [], [], []
    for cond, p in [(None, p_clean), *zip(("snr20", "snr10", "snr0"), p_deg, strict=True)]:
        ids += [f"c{i}" if cond is None else f"c{i}@{cond}" for i in range(n)]
        ac.append(acoustic)
        pred.append(np.where(u < p, acoustic, wrong))
        spk += [f"s{i % 40}" for i in range(n)]
    gold = Gold(ids=np.array(ids, dtype=object), taxonomy=TAX, acoustic=np.concatenate(ac),
                speaker=np.array(spk, dtype=object) if speakers else None)
    return gold, np.concatenate(pred)


@pytest.mark.parametrize("speakers", [False, True])
def test_paired_drop_ci_contains_true_difference(speakers):
    gold, pred = _paired(speakers=speakers)
    res = robustness_summary(gold, pred, n_boot=500, seed=1)
    truth = {"snr20": 0.05, "snr10": 0.2, "snr0": 0.35}  # p_clean - p_deg by construction
    for cond, diff in truth.items():
        drop = res["conditions"][cond]["drop"]["accuracy"]
        assert drop["ci_low"] <= diff <= drop["ci_high"]
        assert drop["value"] == pytest.approx(res["conditions"][cond]["clean"]["accuracy"]["value"]
                                              - res["conditions"][cond]["degraded"]["accuracy"]["value"])
        assert res["conditions"][cond]["n_pairs"] == 400
    assert res["unit"] == ("speaker" if speakers else "item")


def test_pairing_narrows_the_interval():
    gold, pred = _paired(p_deg=(0.78, 0.78, 0.78))
    c = robustness_summary(gold, pred, n_boot=500, seed=0)["conditions"]["snr20"]
    paired = c["drop"]["accuracy"]["ci_high"] - c["drop"]["accuracy"]["ci_low"]
    half = [c[k]["accuracy"]["ci_high"] - c[k]["accuracy"]["ci_low"] for k in ("clean", "degraded")]
    assert paired < 0.5 * np.hypot(*half)  # an unpaired difference would be about hypot(widths) wide
    assert c["drop"]["accuracy"]["ci_low"] >= 0  # nested: a copy is never right where its clean item is wrong


def test_snr_curve_and_area():
    gold, pred = _paired()
    res = robustness_summary(gold, pred, n_boot=0)
    curve = res["snr_curves"]["white"]
    assert curve["snr_db"] == [0.0, 10.0, 20.0] and curve["conditions"] == ["snr0", "snr10", "snr20"]
    acc = curve["accuracy"]
    assert acc[0] < acc[1] < acc[2]
    assert curve["auc"]["accuracy"] == pytest.approx((acc[0] + 2 * acc[1] + acc[2]) / 4)
    assert auc(np.array([5.0]), np.array([0.5])) is None


def test_no_degraded_items_no_summary():
    gold = Gold(ids=np.array(["a", "b"], dtype=object), taxonomy=TAX, acoustic=np.array([0, 1]))
    assert robustness_summary(gold, np.array([0, 1]), n_boot=10) is None


def test_condition_and_source_columns():
    gold = Gold(ids=np.array(["a", "x", "b", "y"], dtype=object), taxonomy=TAX, acoustic=np.array([0, 0, 1, 1]),
                columns={"condition": np.array(["clean", "snr5", "", "snr5"], dtype=object),
                         "source_clip": np.array([None, "a", None, "b"], dtype=object)})
    cond, src = item_conditions(gold)
    assert cond.tolist() == [None, "snr5", None, "snr5"] and src.tolist() == ["a", "a", "b", "b"]
    res = robustness_summary(gold, np.array([0, 1, 1, 1]), n_boot=0)
    assert res["conditions"]["snr5"]["n_pairs"] == 2
    assert res["conditions"]["snr5"]["drop"]["accuracy"]["value"] == pytest.approx(0.5)


def test_evaluate_on_degraded_workspace(tmp_path):
    from casebench.benchmarks import adhoc_benchmark
    from casebench.degrade import degrade
    from casebench.evaluate import evaluate
    from casebench.publish import gold_table, published_table
    from casebench.testing import make_workspace

    ws = make_workspace(tmp_path, n_clips=16, n_speakers=4, with_audio=True)
    degrade(ws, "snr0,snr10", seed=0)
    meta, _ = published_table(ws)
    gold = gold_table(meta, ws.taxonomy.labels)
    gold["condition"] = [i.split("@")[1] if "@" in i else "clean" for i in gold["id"]]
    gold.to_csv(tmp_path / "gold.csv", index=False)
    with open(tmp_path / "p.jsonl", "w") as f:
        for i, lab in zip(gold["id"], gold["acoustic_label"], strict=True):
            f.write(json.dumps({"id": i, "label": "sad" if i.endswith("@snr0") else lab}) + "\n")
    bench = adhoc_benchmark(tmp_path / "gold.csv", "ekman7")
    res = evaluate(tmp_path / "p.jsonl", bench, n_boot=50, group_by="gender", min_group_items=1)
    rob = res["robustness"]
    assert rob["conditions"]["snr10"]["drop"]["accuracy"]["value"] == 0
    assert rob["conditions"]["snr0"]["degraded"]["accuracy"]["value"] < 1
    assert set(res["groups"]["gender"]["groups"]) <= {"female", "male", "<missing>"}
    # clean items only in the group breakdown
    assert sum(g["n"] for g in res["groups"]["gender"]["groups"].values()) == int((gold["condition"] == "clean").sum())


def test_report_plots_snr_curve_and_groups(tmp_path):
    from casebench.fairness import group_breakdown
    from casebench.report import write_report

    gold, pred = _paired(n=120)
    gold.columns["gender"] = np.array(["f", "m"] * 240, dtype=object)
    from casebench.benchmarks import get_benchmark
    from casebench.evaluate import evaluate

    bench = get_benchmark("casebench-mini")
    res = evaluate(bench.gold_path.parent / "examples" / "voice-model.jsonl", bench, n_boot=20)
    res["robustness"] = robustness_summary(gold, pred, n_boot=50)
    res["groups"] = {"gender": group_breakdown(gold, pred, "gender", n_boot=50)}
    html = write_report(res, tmp_path / "rep")
    assert (tmp_path / "rep" / "robustness_snr.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "groups_gender.png").is_file()
    assert "robustness_snr.png" in html.read_text()


def test_spec_group_by_and_robustness_reach_results_and_board(tmp_path):
    from casebench.benchmarks import get_benchmark
    from casebench.degrade import degrade
    from casebench.evaluate import evaluate
    from casebench.leaderboard.board import build_board
    from casebench.publish import gold_table, published_table
    from casebench.testing import make_workspace

    ws = make_workspace(tmp_path, n_clips=24, n_speakers=8, with_audio=True)  # 4 speakers a gender
    degrade(ws, "snr0,snr10", seed=0)
    meta, _ = published_table(ws)
    gold = gold_table(meta, ws.taxonomy.labels)
    gold.to_csv(tmp_path / "gold.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        "name: tiny-robust\nversion: '1'\ntaxonomy: ekman7\ngold: gold.csv\n"
        "tasks: [{kind: categorical, main_metric: uar}]\n"
        "splits: [{name: test, kind: subset, column: split, value: test},\n"
        "         {name: test.snr0, kind: subset, column: split, value: test.snr0}]\n"
        "group_by: [gender]\nrobustness: [snr0, snr10]\n")
    bench = get_benchmark(tmp_path / "spec.yaml")
    assert bench.group_by == ("gender",) and bench.robustness == ("snr0", "snr10")
    rows = []
    for i, bad in enumerate(("@snr0", "@never")):
        with open(tmp_path / f"p{i}.jsonl", "w") as f:
            for cid, lab in zip(gold["id"], gold["acoustic_label"], strict=True):
                f.write(json.dumps({"id": cid, "label": "sad" if cid.endswith(bad) else lab}) + "\n")
        res = evaluate(tmp_path / f"p{i}.jsonl", bench, n_boot=30, min_group_items=1)
        assert res["splits"]["test.snr0"]["uar"]["n"] == int((gold["split"] == "test.snr0").sum())
        rows.append({"id": i, "model": f"m{i}", "results": res})
    board = build_board(bench, rows, sort="drop.snr0.uar")
    keys = [c["key"] for c in board["columns"]]
    assert {"worst_group.gender.uar", "group_gap.gender.uar", "drop.snr0.uar", "drop.snr10.uar"} <= set(keys)
    by_model = {r["model"]: r for r in board["rows"]}
    assert by_model["m1"]["cells"]["drop.snr0.uar"]["value"] == 0
    assert by_model["m0"]["cells"]["drop.snr0.uar"]["value"] > 0
    assert by_model["m1"]["rank"] == 1  # the smaller drop ranks first
    assert by_model["m0"]["cells"]["worst_group.gender.uar"]["value"] is not None
