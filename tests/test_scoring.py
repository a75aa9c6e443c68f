"""The scoring core and what rests on it: target: semantic_label, the curated conflict split, train-prior
baselines, interval warnings, and compare on any gold (empty splits, 32 classes, bounded memory)."""

import json

import numpy as np
import pandas as pd
import pytest

from casebench import scoring
from casebench.benchmarks import load_spec
from casebench.cli import main
from casebench.evaluate import compare, evaluate
from casebench.stats import Bootstrap
from casebench.taxonomy import get_taxonomy

EKMAN = list(get_taxonomy("ekman7").labels)


def _write(tmp_path, gold: pd.DataFrame, preds: list[dict], spec_extra: str = "", name: str = "p.jsonl",
           tasks: str = "[{kind: categorical}]", taxonomy: str = "ekman7"):
    gold.to_csv(tmp_path / "gold.csv", index=False)
    (tmp_path / name).write_text("".join(json.dumps(p) + "\n" for p in preds))
    spec = tmp_path / "b.yaml"
    spec.write_text(f"name: t\nversion: 1\ntaxonomy: {taxonomy}\ngold: gold.csv\ntasks: {tasks}\n{spec_extra}")
    return load_spec(spec), tmp_path / name


def _gold(n=120, speakers=12, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 7, n)
    s = np.where(rng.random(n) < 0.5, a, rng.integers(0, 7, n))
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "acoustic_label": [EKMAN[i] for i in a],
                         "semantic_label": [EKMAN[i] for i in s], "speaker_id": [f"s{i % speakers}" for i in range(n)]})


def test_target_semantic_label_scores_against_the_words(tmp_path):
    gold = _gold()
    rng = np.random.default_rng(1)
    pred = np.where(rng.random(len(gold)) < 0.7, gold["semantic_label"], gold["acoustic_label"])
    preds = [{"id": i, "label": p} for i, p in zip(gold["id"], pred, strict=True)]
    bench, path = _write(tmp_path, gold, preds, tasks="[{kind: categorical, target: semantic_label}]")
    res = evaluate(path, bench, n_boot=50)
    assert res["splits"]["all"]["accuracy"]["value"] == pytest.approx(np.mean(pred == gold["semantic_label"]))
    assert res["splits"]["all"]["accuracy"]["value"] != pytest.approx(np.mean(pred == gold["acoustic_label"]))
    # the conflict metrics are defined against the voice: not reported when the target is the words
    assert "text_following_rate" not in res["splits"]["conflict"] and "conflict_gap" not in res["splits"]["all"]
    voice = evaluate(path, _write(tmp_path, gold, preds)[0], n_boot=0)
    assert voice["splits"]["all"]["accuracy"]["value"] == pytest.approx(np.mean(pred == gold["acoustic_label"]))


def test_conflict_split_follows_curated_tags_and_reports_both_counts(tmp_path):
    gold = _gold()
    raw = (gold["acoustic_label"] != gold["semantic_label"]).to_numpy()
    tags = raw.copy()
    failed = np.flatnonzero(raw)[:6]  # voice != words, but failed the agreement thresholds: not tagged
    tags[failed] = False
    gold["is_conflict"] = tags
    gold["passes_thresholds"] = True
    gold.loc[failed, "passes_thresholds"] = False
    preds = [{"id": i, "label": a} for i, a in zip(gold["id"], gold["acoustic_label"], strict=True)]
    bench, path = _write(tmp_path, gold, preds)
    res = evaluate(path, bench, n_boot=0)
    assert res["splits"]["conflict"]["accuracy"]["n"] == tags.sum() == raw.sum() - 6
    counts = res["split_counts"]["conflict"]
    assert counts == {"n": int(tags.sum()), "n_raw": int(raw.sum()), "source": "curated is_conflict tags",
                      "n_tagged": len(gold)}
    assert res["split_counts"]["congruent"]["n"] == (~raw).sum()
    # without the column the split is voice != words
    res_raw = evaluate(path, _write(tmp_path, gold.drop(columns=["is_conflict", "passes_thresholds"]), preds)[0],
                       n_boot=0)
    assert res_raw["splits"]["conflict"]["accuracy"]["n"] == raw.sum()
    assert res_raw["split_counts"]["conflict"]["source"] == "voice != words"


def test_constant_baseline_comes_from_the_train_split(tmp_path):
    gold = _gold()
    gold["acoustic_label"] = ["sad"] * 70 + ["happy"] * 50  # test majority: sad
    train = _gold(seed=3)
    train["acoustic_label"] = ["happy"] * 80 + ["sad"] * 40  # train majority: happy
    train.to_csv(tmp_path / "train.csv", index=False)
    preds = [{"id": i, "label": "sad"} for i in gold["id"]]
    bench, path = _write(tmp_path, gold, preds, "train: train.csv\n")
    res = evaluate(path, bench, n_boot=0)
    assert list(res["baselines"]) == ["train prior"]
    assert res["baselines"]["train prior"]["all"]["accuracy"]["value"] == pytest.approx(50 / 120)
    assert res["baseline_prior"] == {"name": "train prior", "source": "train", "n": 120, "oracle": False}
    assert not any("oracle" in w for w in res["warnings"])
    # a prior carried in the spec
    bench, _ = _write(tmp_path, gold, preds, "prior: {source: train of t v1, labels: {happy: 0.7, sad: 0.3}}\n")
    res = evaluate(path, bench, n_boot=0)
    assert res["baselines"]["train prior"]["all"]["accuracy"]["value"] == pytest.approx(50 / 120)
    assert res["baseline_prior"]["source"] == "spec"
    # only test labels: the test prior, named an oracle everywhere
    bench, _ = _write(tmp_path, gold, preds)
    res = evaluate(path, bench, n_boot=0)
    assert list(res["baselines"]) == ["test prior (oracle)"] and res["baseline_prior"]["oracle"] is True
    assert res["baselines"]["test prior (oracle)"]["all"]["accuracy"]["value"] == pytest.approx(70 / 120)
    assert any("oracle" in w for w in res["warnings"])
    # --gold with --train: the train prior again
    out = tmp_path / "r.json"
    assert main(["evaluate", str(path), "--gold", str(tmp_path / "gold.csv"), "--taxonomy", "ekman7", "--train",
                 str(tmp_path / "train.csv"), "--bootstrap", "0", "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["baselines"]) == ["train prior"]


def test_two_speaker_gold_warns_in_json_cli_and_report(tmp_path, capsys):
    gold = _gold(n=40, speakers=2)
    pairs = enumerate(zip(gold["id"], gold["acoustic_label"], strict=True))
    preds = [{"id": i, "label": a if k % 3 else "sad"} for k, (i, a) in pairs]
    bench, path = _write(tmp_path, gold, preds)
    res = evaluate(path, bench, n_boot=200)
    e = res["splits"]["all"]["accuracy"]
    assert e["n_clusters"] == 2 and e["n_distinct_resamples"] <= 3  # copies (2,0), (1,1), (0,2)
    assert any("'all'" in w and "2 speaker clusters" in w and "distinct resamples" in w for w in res["warnings"])
    assert main(["evaluate", str(path), "-b", str(bench.spec_path), "--bootstrap", "200", "--report",
                 str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "2 speaker clusters" in out and "test prior (oracle)" in out
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "2 speaker clusters" in html and "constant baseline: test prior (oracle)" in html
    # many speakers: no interval warning
    bench, path = _write(tmp_path, _gold(n=400, speakers=200), [{"id": f"c{i}", "label": "sad"} for i in range(400)])
    many = evaluate(path, bench, n_boot=200)
    assert not [w for w in many["warnings"] if "intervals" in w]


def _plutchik_gold(tmp_path, n=300, seed=0):
    tax = list(get_taxonomy("plutchik32").labels)
    rng = np.random.default_rng(seed)
    dist = rng.dirichlet(np.full(32, 0.3), n)
    gold = pd.DataFrame(dist, columns=tax)
    gold.insert(0, "id", [f"m{i}" for i in range(n)])
    gold.insert(1, "acoustic_label", [tax[i] for i in dist.argmax(1)])
    gold.insert(2, "speaker_id", [f"s{i % 40}" for i in range(n)])
    return gold, tax, rng


def test_compare_on_32_classes_with_an_empty_conflict_split(tmp_path, capsys):
    gold, tax, rng = _plutchik_gold(tmp_path)
    gold["semantic_label"] = gold["acoustic_label"]  # words agree everywhere: the conflict split is empty
    a = [{"id": i, "label": tax[int(rng.integers(32))], "distribution": dict(zip(tax, rng.dirichlet(np.ones(32)),
                                                                                 strict=True))} for i in gold["id"]]
    b = [{"id": i, "label": lab, "distribution": dict(zip(tax, rng.dirichlet(np.ones(32)), strict=True))}
         for i, lab in zip(gold["id"], gold["acoustic_label"], strict=True)]
    bench, pa = _write(tmp_path, gold, a, "splits: [all, conflict, congruent]\n", "a.jsonl",
                       "[{kind: categorical}, {kind: distribution}]", "plutchik32")
    pb = tmp_path / "b.jsonl"
    pb.write_text("".join(json.dumps(p) + "\n" for p in b))
    res = compare(pa, pb, bench, n_boot=200)
    assert res["splits"]["conflict"] == {} and res["split_items"]["conflict"] == 0
    assert any("'conflict' has no scorable item" in w for w in res["warnings"])
    ra, rb = evaluate(pa, bench, n_boot=0), evaluate(pb, bench, n_boot=0)
    for metric in ("accuracy", "macro_f1", "js", "kl"):
        d = res["splits"]["all"][metric]["diff"]
        assert d["value"] == pytest.approx(ra["splits"]["all"][metric]["value"] - rb["splits"]["all"][metric]["value"])
        assert d["ci_low"] <= d["value"] <= d["ci_high"] and d["n_clusters"] == 40
    assert main(["compare", str(pa), str(pb), "-b", str(bench.spec_path), "--bootstrap", "50"]) == 0
    assert "no scorable item" in capsys.readouterr().out


def test_compare_memory_does_not_grow_with_resamples_times_classes(tmp_path):
    import tracemalloc

    gold, tax, rng = _plutchik_gold(tmp_path, n=2000)
    gold["semantic_label"] = [tax[int(i)] for i in rng.integers(0, 32, len(gold))]
    a = [{"id": i, "label": tax[int(rng.integers(32))]} for i in gold["id"]]
    b = [{"id": i, "label": tax[int(rng.integers(32))]} for i in gold["id"]]
    bench, pa = _write(tmp_path, gold.drop(columns=tax), a, "", "a.jsonl", "[{kind: categorical}]", "plutchik32")
    pb = tmp_path / "b.jsonl"
    pb.write_text("".join(json.dumps(p) + "\n" for p in b))
    compare(pa, pb, bench, n_boot=20, unit="item")
    peaks = []
    for n_boot in (100, 400):
        tracemalloc.start()
        res = compare(pa, pb, bench, n_boot=n_boot, unit="item")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert res["splits"]["conflict"]["text_following_rate"]["diff"]["n"] > 0
    # the old joint (K+1)^4 tensor per resample needed ~9.5 MB x resamples (1.9 GB at 200)
    assert peaks[1] < 400e6 and peaks[1] < 4 * peaks[0] + 50e6


def test_paired_categorical_matches_single_scoring_and_is_zero_against_itself():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    pa, pb = rng.integers(0, 5, 300), np.where(rng.random(300) < 0.5, y, -1)
    boot = Bootstrap(300, 1, np.arange(300) % 30)
    sa, sb = scoring.paired_categorical(y, pa, pb, s, 5, "conflict", boot)
    for sc, p in ((sa, pa), (sb, pb)):
        single = scoring.categorical(y, p, s, 5, "conflict", Bootstrap(0))
        assert sc.values == pytest.approx(single.values, nan_ok=True)
    same_a, same_b = scoring.paired_categorical(y, pa, pa, s, 5, "conflict", boot)
    assert all(np.array_equal(same_a.draws[m], same_b.draws[m], equal_nan=True) for m in same_a.draws)
    # the paired draws of A alone are a speaker bootstrap of A: same spread as scoring A on its own
    alone = scoring.categorical(y, pa, s, 5, "conflict", Bootstrap(300, 1, np.arange(300) % 30))
    assert np.std(sa.draws["accuracy"]) == pytest.approx(np.std(alone.draws["accuracy"]), rel=0.25)


def test_categorical_blocks_give_the_same_draws_as_one_dense_tensor(monkeypatch):
    rng = np.random.default_rng(2)
    y, p, s = rng.integers(0, 7, 500), rng.integers(-1, 7, 500), rng.integers(-1, 7, 500)
    whole = scoring.categorical(y, p, s, 7, "conflict", Bootstrap(100, 4))
    monkeypatch.setattr(scoring, "BLOCK_CELLS", 512 * 7)  # 7 resamples per block
    blocked = scoring.categorical(y, p, s, 7, "conflict", Bootstrap(100, 4))
    for m in whole.draws:
        np.testing.assert_array_equal(whole.draws[m], blocked.draws[m])


@pytest.mark.parametrize("clusters", [None, np.arange(400) % 25], ids=["items", "speakers"])
@pytest.mark.parametrize("kind", ["all", "conflict", "congruent"])
def test_constant_baseline_from_the_model_margin_equals_scoring_the_constant(clusters, kind):
    # reference: categorical() on a constant prediction array (what the baseline computed before): values,
    # draws, distinct resamples and entries must be equal to the last digit, other label unknown included
    rng = np.random.default_rng(5)
    y, p, s = rng.integers(0, 7, 400), rng.integers(-1, 7, 400), rng.integers(-1, 7, 400)
    # an item bootstrap draws a multinomial over the cells that occur: the constant's cells are other draws
    # than the model's, so evaluate derives the baseline only under a cluster bootstrap (and n_boot = 0)
    for n_boot in (0, 200) if clusters is not None else (0,):
        model = scoring.categorical(y, p, s, 7, kind, Bootstrap(n_boot, 3, clusters), keep_margin=True)
        for label in (0, 4, 6):
            direct = scoring.categorical(y, np.full(400, label), s, 7, kind, Bootstrap(n_boot, 3, clusters))
            derived = scoring.constant_categorical(model.margin, label, model.n, model.n_clusters, 7, kind, True)
            assert derived.entries() == direct.entries()
            assert derived.n_distinct == direct.n_distinct
            assert derived.draws.keys() == direct.draws.keys()
            for m in direct.draws:
                np.testing.assert_array_equal(derived.draws[m], direct.draws[m])


def test_evaluate_baseline_derived_from_the_model_equals_its_own_pass(tmp_path):
    from casebench.evaluate import baselines, prediction_arrays, score, scored_tasks
    from casebench.predictions import parse_predictions

    rng = np.random.default_rng(1)
    gold = _gold(300, 20)
    preds = [{"id": i, "label": EKMAN[rng.integers(0, 7)]} for i in gold["id"]]
    for target in ("acoustic_label", "semantic_label"):
        bench, path = _write(tmp_path, gold, preds, tasks=f"[{{kind: categorical, target: {target}}}]")
        g = bench.load_gold()
        p = parse_predictions(path, g)
        tasks = scored_tasks(bench, p)
        margins: dict = {}
        score(g, bench.splits, tasks, n_boot=300, seed=2, unit="auto", target=target, margins_out=margins,
              **prediction_arrays(p, g, tasks))
        own = baselines(g, bench.splits, tasks, n_boot=300, seed=2, unit="auto", target=target)
        derived = baselines(g, bench.splits, tasks, n_boot=300, seed=2, unit="auto", target=target, margins=margins)
        assert json.dumps(derived) == json.dumps(own)


def _breakdown_gold(n_speakers=40, per_speaker=10, seed=0):
    """A gold of 40 speakers: ``language`` 'fr' for 2 of them, 'en' for the rest; ``room`` one per speaker;
    degraded copies ``@snr5`` of the first 4 speakers' items and ``@snr20`` of every item."""
    rng = np.random.default_rng(seed)
    n = n_speakers * per_speaker
    spk = np.repeat(np.arange(n_speakers), per_speaker)
    a = rng.integers(0, 7, n)
    clean = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "acoustic_label": [EKMAN[i] for i in a],
                          "speaker_id": [f"s{s:02d}" for s in spk],
                          "language": np.where(spk < 2, "fr", "en"), "room": [f"r{s:02d}" for s in spk]})
    snr5 = clean[spk < 4].assign(id=lambda d: d["id"] + "@snr5")
    snr20 = clean.assign(id=lambda d: d["id"] + "@snr20")
    gold = pd.concat([clean, snr5, snr20], ignore_index=True)
    right = rng.random(len(gold)) < 0.6
    preds = [{"id": i, "label": lab if ok else "neutral"}
             for i, lab, ok in zip(gold["id"], gold["acoustic_label"], right, strict=True)]
    return gold, preds


def test_group_and_condition_intervals_warn_once_per_breakdown(tmp_path, capsys):
    gold, preds = _breakdown_gold()
    bench, path = _write(tmp_path, gold, preds)
    res = evaluate(path, bench, n_boot=200, group_by=["language", "room"])
    # every entry with an interval, wherever it sits, says what it rests on
    entries = scoring.entries_of(res)
    for part in ("splits", "per_class", "baselines", "groups", "robustness"):
        assert scoring.entries_of(res[part]), part
    assert all(e["n_clusters"] is not None and e["n_distinct_resamples"] is not None
               for e in entries if e["ci_low"] is not None)
    fr = res["groups"]["language"]["groups"]["fr"]["metrics"]["uar"]
    assert fr["n_clusters"] == 2 and res["groups"]["language"]["groups"]["en"]["metrics"]["uar"]["n_clusters"] == 38
    assert res["robustness"]["conditions"]["snr5"]["drop"]["uar"]["n_clusters"] == 4

    warnings = res["warnings"]
    language = [w for w in warnings if w.startswith("groups by 'language'")]
    assert len(language) == 1
    assert "1 of 2 groups" in language[0] and "2 speaker clusters (fewer than 10)" in language[0]
    assert "'fr'" in language[0] and "'en'" not in language[0]
    # 40 one-speaker groups: one message naming the first 20 and counting the rest, not 40 lines
    room = [w for w in warnings if "room" in w]
    assert len(room) == 1 and "40 of 40 groups rest on 1 speaker cluster (fewer" in room[0]
    assert "'r00'" in room[0] and "'r19'" in room[0] and "'r20'" not in room[0] and "and 20 more" in room[0]
    assert "largest-gap" not in language[0]  # 'fr' (20 items) is not ranked: no gap involves it
    robust = [w for w in warnings if w.startswith("robustness")]
    assert len(robust) == 1 and "1 of 2 conditions" in robust[0] and "'snr5'" in robust[0]
    assert "'snr20'" not in robust[0] and "4 speaker clusters" in robust[0]
    assert not any(w.startswith("split ") for w in warnings)  # the splits rest on 40 speakers

    # the terminal and the HTML report show them
    assert main(["evaluate", str(path), "-b", str(bench.spec_path), "--bootstrap", "200", "--group-by",
                 "language,room", "--report", str(tmp_path / "rep")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: groups by 'language'" in out and "warning: robustness: the 95% intervals of 1 of 2" in out
    # the group and condition tables mark the thin rows
    assert "│ fr* " in out and "│ en " in out and "│ snr5* " in out and "│ snr20 " in out
    assert "* rough interval: fewer than 10 clusters or 100 distinct resamples" in out
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "groups by &#39;room&#39;: the 95% intervals of 40 of 40 groups" in html  # HTML-escaped quotes
    assert "robustness: the 95% intervals of 1 of 2 conditions" in html


def test_a_ranked_thin_group_marks_the_gaps_too():
    e = {"value": .5, "ci_low": .4, "ci_high": .6, "n": 40, "n_clusters": 3, "n_distinct_resamples": 500}
    ok = {**e, "n_clusters": 30}
    group = {"n": 40, "n_speakers": 3, "ranked": True, "reason": None, "metrics": {"uar": e}, "recall": {}}
    other = {**group, "metrics": {"uar": ok}, "n_speakers": 30}
    breakdown = {"unit": "speaker", "groups": {"a": group, "b": other},
                 "largest_gap": {"uar": {"best": "b", "worst": "a", "diff": ok}}, "recall_gaps": {}}
    (msg,) = scoring.group_warnings({"gender": breakdown})
    assert msg.startswith("groups by 'gender': the 95% intervals of 1 of 2 groups rest on 3 speaker clusters")
    assert "so do the largest-gap intervals that involve them" in msg
    assert scoring.group_warnings({"gender": {**breakdown, "groups": {"a": other, "b": other}}}) == []
    # without a bootstrap no entry has an interval: nothing to warn about
    bare = {"value": .5, "ci_low": None, "ci_high": None, "n": 40}
    assert scoring.breakdown_warning("x", {"a": [bare]}, "speaker", "group") is None


def test_warnings_name_ad_hoc_splits_plainly(tmp_path):
    """An ad-hoc benchmark's splits come from gold values (numpy strings): warnings quote them as written."""
    from casebench.benchmarks import adhoc_benchmark

    gold = _gold(n=120, speakers=12).assign(corpus=lambda d: np.where(np.arange(len(d)) < 60, "a", "b"))
    _, path = _write(tmp_path, gold, [{"id": i, "label": "sad"} for i in gold["id"]])
    res = evaluate(path, adhoc_benchmark(tmp_path / "gold.csv", "ekman7"), n_boot=50)
    assert "split 'a': 95% intervals rest on" in " ".join(res["warnings"])
    assert not [w for w in res["warnings"] if "np.str_" in w]


def test_the_train_prior_has_the_models_floor():
    """The train mean gave a class no train rater chose exactly 0, and KL clips a prediction at 1e-12: a test
    clip where 1 rater in 20 chose it cost the constant 0.05·ln(0.05/1e-12) = 1.23 nats against 0.37 for an
    LDL baseline with the 1e-3 floor, so "beats the constant" could come from the floor alone. The constant now
    gets the models' floor (casebench.scoring.LDL_SMOOTHING)."""
    from casebench.benchmarks import Gold
    from casebench.metrics.distribution import kl
    from casebench.scoring import LDL_SMOOTHING, prior_from_gold
    from casebench.taxonomy import get_taxonomy

    tax = get_taxonomy("ekman7")
    train = np.tile([0.5, 0.5, 0, 0, 0, 0, 0], (4, 1))
    prior = prior_from_gold(Gold(ids=np.array(list("abcd")), taxonomy=tax, distribution=train))
    assert prior.distribution.sum() == pytest.approx(1) and prior.distribution.min() == LDL_SMOOTHING / 7
    test = np.array([[0.475, 0.475, 0.05, 0, 0, 0, 0]])
    model = (1 - LDL_SMOOTHING) * np.array([[0.5, 0.5, 0, 0, 0, 0, 0]]) + LDL_SMOOTHING / 7   # same shape, floored
    assert float(kl(test, prior.distribution[None])[0]) == pytest.approx(float(kl(test, model)[0]))
    raw = float(kl(test, np.array([[0.5, 0.5, 0, 0, 0, 0, 0]]))[0])   # what the constant was charged before
    assert raw - float(kl(test, model)[0]) > 0.8
