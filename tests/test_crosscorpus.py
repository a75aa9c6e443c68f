"""Cross-corpus benchmarks (casebench.crosscorpus) and their scoring: per-corpus splits, the cross-corpus mean
with its bootstrap CI, and the per-corpus zero-shot marker (casebench.evaluate, casebench.results)."""

import json

import numpy as np
import pandas as pd
import pytest

from casebench.benchmarks import Gold, Split, get_benchmark
from casebench.corpora import import_corpus
from casebench.corpora.testing import make_crema_d, make_em2ldl, make_emis, make_iemocap, make_msp_podcast
from casebench.crosscorpus import benchmark_from
from casebench.errors import ConfigError
from casebench.evaluate import cross_corpus_mean, evaluate, score
from casebench.results import model_info, split_zero_shot, zero_shot
from casebench.taxonomy import get_taxonomy


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    root = tmp_path_factory.mktemp("xc")
    out = {}
    for name, build in (("crema-d", make_crema_d), ("emis", make_emis), ("msp-podcast", make_msp_podcast),
                        ("iemocap", make_iemocap)):
        out[name] = import_corpus(name, build(root / f"src-{name}"), root / f"ws-{name}").workspace
    return out


def _predict(gold_csv, path, rule):
    gold = pd.read_csv(gold_csv, dtype=str)
    with open(path, "w") as f:
        for _, row in gold.iterrows():
            f.write(json.dumps({"id": row["id"], "label": rule(row)}) + "\n")
    return path


def test_gold_and_spec_map_every_corpus_into_the_benchmark_taxonomy(workspaces, tmp_path):
    built = benchmark_from([workspaces[c] for c in ("crema-d", "emis", "msp-podcast", "iemocap")], tmp_path / "b",
                           taxonomy="iemocap4", name="xc-test")
    gold = pd.read_csv(built["gold"], dtype={"speaker_id": str})
    assert sorted(set(gold["corpus"])) == ["crema-d", "emis", "iemocap", "msp-podcast"]
    assert set(gold["acoustic_label"].dropna()) <= set(get_taxonomy("iemocap4").labels)
    # unmappable classes dropped per corpus, counted and noted (crema6 disgust/fear, msp8 contempt has no file)
    assert built["corpora"]["crema-d"]["dropped"] == {"disgust": 1, "fear": 1}
    assert any(n.startswith("crema-d: dropped 1 item(s) of class 'disgust'") for n in built["notes"])
    # speakers stay apart across corpora; an unknown speaker is its own cluster
    assert "crema-d:1001" in set(gold["speaker_id"])
    assert "msp-podcast:?msp-podcast-MSP-PODCAST_1023_0235" in set(gold["speaker_id"])
    # IEMOCAP (1-5) and MSP-Podcast (1-7) dimensions: rescaled to 1-5, with a note
    assert built["vad_scale"] == [1.0, 5.0] and any("rescaled linearly to 1-5" in n for n in built["notes"])
    msp = gold.set_index("id").loc["msp-podcast-MSP-PODCAST_0412_0031"]
    assert msp["valence"] == pytest.approx(1 + 4 * (5.6 - 1) / 6)
    bench = get_benchmark(built["spec"])
    assert bench.corpora == ("crema-d", "emis", "msp-podcast", "iemocap")
    assert [(s.name, s.kind) for s in bench.splits][3:] == [(c, "cross-corpus") for c in bench.corpora]
    assert [t.kind for t in bench.tasks] == ["categorical", "dimensional"]


def test_evaluate_scores_each_corpus_their_mean_and_marks_seen_corpora(workspaces, tmp_path):
    built = benchmark_from([workspaces[c] for c in ("crema-d", "emis", "iemocap")], tmp_path / "b",
                           taxonomy="ekman7")
    bench = get_benchmark(built["spec"])

    def rule(row):  # right on CREMA-D, follows the words on EMIS, always neutral on IEMOCAP
        if row["corpus"] == "crema-d":
            return row["acoustic_label"]
        return row["semantic_label"] if row["corpus"] == "emis" else "neutral"

    preds = _predict(built["gold"], tmp_path / "p.jsonl", rule)
    res = evaluate(preds, bench, n_boot=200, seed=1, model=model_info("m", trained_on=["CREMA_D", "RAVDESS"]))
    acc = {c: res["splits"][c]["accuracy"]["value"] for c in ("crema-d", "emis", "iemocap")}
    assert acc["crema-d"] == 1.0 and 0 < acc["emis"] < 1
    mean = res["cross_corpus_mean"]["accuracy"]
    assert mean["value"] == pytest.approx(np.mean(list(acc.values())))
    assert mean["splits"] == ["crema-d", "emis", "iemocap"]
    assert mean["n"] == sum(res["splits"][c]["accuracy"]["n"] for c in acc)
    assert mean["ci_low"] <= mean["value"] <= mean["ci_high"]
    # zero-shot: CREMA_D declared (spelling folded) -> crema-d is not zero-shot, the others are
    assert res["model"]["zero_shot"] is False and res["model"]["not_zero_shot_on"] == ["crema-d"]
    assert {k: v["zero_shot"] for k, v in res["split_info"].items() if v["kind"] == "cross-corpus"} == \
        {"crema-d": False, "emis": True, "iemocap": True}
    unseen = res["cross_corpus_mean_zero_shot"]["accuracy"]
    assert unseen["splits"] == ["emis", "iemocap"]
    assert unseen["value"] == pytest.approx((acc["emis"] + acc["iemocap"]) / 2)
    fresh = evaluate(preds, bench, n_boot=0, model=model_info("m", trained_on=["IEMOCAP4"]))
    assert "cross_corpus_mean_zero_shot" not in fresh and fresh["cross_corpus_mean"]["accuracy"]["ci_low"] is None


def test_cross_corpus_mean_ci_is_a_stratified_bootstrap_and_scores_are_unchanged():
    rng = np.random.default_rng(0)
    n, k = 600, 7
    acoustic = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < np.repeat([0.8, 0.5, 0.3], n // 3), acoustic, rng.integers(0, k, n))
    corpus = np.repeat(np.array(["a", "b", "c"], dtype=object), n // 3)
    gold = Gold(ids=np.array([f"i{j}" for j in range(n)], dtype=object), taxonomy=get_taxonomy("ekman7"),
                acoustic=acoustic, speaker=np.array([f"{c}{j % 20}" for j, c in enumerate(corpus)], dtype=object),
                columns={"corpus": corpus})
    splits = [Split("all", "all")] + [Split(c, "cross-corpus", "corpus", c) for c in "abc"]
    samples = {}
    with_samples = score(gold, splits, ["categorical"], label=pred, n_boot=300, seed=3, samples_out=samples)
    assert with_samples == score(gold, splits, ["categorical"], label=pred, n_boot=300, seed=3)
    assert set(samples) == {"all", "a", "b", "c"} and samples["a"]["uar"].shape == (300,)
    mean = cross_corpus_mean(with_samples, samples, ["a", "b", "c"])
    for metric in ("accuracy", "uar", "macro_f1"):
        values = [with_samples[c][metric]["value"] for c in "abc"]
        assert mean[metric]["value"] == pytest.approx(np.mean(values))
        width = mean[metric]["ci_high"] - mean[metric]["ci_low"]
        widths = [with_samples[c][metric]["ci_high"] - with_samples[c][metric]["ci_low"] for c in "abc"]
        # averaging three independently resampled corpora: sd of the mean <= mean of the sds
        assert 0 < width <= np.mean(widths)
        manual = np.mean([samples[c][metric] for c in "abc"], axis=0)
        assert mean[metric]["ci_low"] == pytest.approx(np.percentile(manual[np.isfinite(manual)], 2.5))


def test_zero_shot_names_fold_case_dashes_and_underscores():
    bench = get_benchmark("casebench-mini")
    assert zero_shot(bench, ["MINI_ACTED"]) == (False, ["mini-acted"])
    assert zero_shot(bench, ["iemocap", " "]) == (True, [])
    assert split_zero_shot(bench, ["miniacted"]) == {"mini-acted": False}


def test_split_option_distributions_and_errors(workspaces, tmp_path_factory, tmp_path):
    built = benchmark_from([workspaces["msp-podcast"]], tmp_path / "t", split="test", taxonomy="msp8")
    assert built["n_items"] == 1 and built["corpora"]["msp-podcast"]["split"] == "test"
    with pytest.raises(ConfigError, match="no split 'dev'; its splits are"):
        benchmark_from([workspaces["msp-podcast"]], tmp_path / "u", split="dev")
    with pytest.raises(ConfigError, match="no splits table"):
        benchmark_from([workspaces["crema-d"]], tmp_path / "v", split="test")
    with pytest.raises(ConfigError, match="two workspaces are named"):
        benchmark_from([workspaces["emis"], workspaces["emis"]], tmp_path / "w")
    with pytest.raises(ConfigError, match="not empty"):
        benchmark_from([workspaces["emis"]], tmp_path / "t")
    # a distribution corpus: mapped distribution columns and the argmax label; mostly-unmapped items dropped
    src = make_em2ldl(tmp_path_factory.mktemp("em") / "em2ldl")
    ws = import_corpus("em2ldl", src, tmp_path / "ws-em").workspace
    built = benchmark_from([ws, workspaces["emis"]], tmp_path / "d", taxonomy="ekman7")
    gold = pd.read_csv(built["gold"])
    em = gold[gold["corpus"] == "em2ldl"]
    assert "distribution" in built["tasks"]
    labels = list(get_taxonomy("ekman7").labels)
    assert np.allclose(em[labels].sum(axis=1), 1)
    assert (em[labels].to_numpy().argmax(1) == [labels.index(x) for x in em["acoustic_label"]]).all()
    assert len(em) + sum(built["corpora"]["em2ldl"]["dropped"].values()) == 9
    assert gold[gold["corpus"] == "emis"][labels].isna().all().all()


def test_cli_benchmark_from_then_evaluate(workspaces, tmp_path, capsys):
    from casebench.cli import main

    out = tmp_path / "bench"
    assert main(["benchmark-from", workspaces["crema-d"], workspaces["emis"], "--taxonomy", "ekman7", "--out",
                 str(out), "--name", "xc", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    preds = _predict(built["gold"], tmp_path / "p.jsonl", lambda row: row["acoustic_label"])
    assert main(["evaluate", str(preds), "--benchmark", built["spec"], "--trained-on", "emis", "--bootstrap", "50",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cross_corpus_mean"]["accuracy"]["value"] == 1.0
    assert res["split_info"]["emis"]["zero_shot"] is False
    assert main(["evaluate", str(preds), "--benchmark", built["spec"], "--trained-on", "emis", "--bootstrap", "20"]
                ) == 0
    text = capsys.readouterr().out
    assert "cross-corpus mean" in text and "NOT zero-shot: the model trained on this corpus" in text
    assert main(["benchmark-from", workspaces["crema-d"], "--out", str(out)]) == 2   # not empty


def test_spec_records_its_workspaces_and_a_reaggregated_corpus_makes_it_stale(workspaces, tmp_path):
    import shutil
    from pathlib import Path

    import yaml

    from casebench.errors import StaleError
    from casebench.workspace import Workspace

    src = Workspace.open(workspaces["crema-d"])
    copy = tmp_path / "ws-crema-d"
    shutil.copytree(src.root, copy)
    ws = Workspace.open(copy)
    built = benchmark_from([copy], tmp_path / "b", taxonomy="ekman7")
    spec = yaml.safe_load(Path(built["spec"]).read_text())
    [rec] = spec["build"]["built_from"]
    assert rec["workspace"] == str(ws.root) and rec["step"] == "benchmark-from"
    assert rec["tables"]["labels"] == ws.table_version("labels")
    bench = get_benchmark(built["spec"])
    preds = _predict(built["gold"], tmp_path / "p.jsonl", lambda row: row["acoustic_label"])
    evaluate(preds, bench, n_boot=0)
    labels = ws.read_df("labels")
    ws.write_table("labels", labels.iloc[1:])  # re-aggregated: one clip lost its label
    with pytest.raises(StaleError) as info:
        evaluate(preds, bench, n_boot=0)
    assert "labels.parquet changed after benchmark-from" in str(info.value)
    assert f"re-run `casebench benchmark-from {ws.root} --out {tmp_path / 'b'}" in str(info.value)
    res = evaluate(preds, bench, n_boot=0, allow_stale=True)
    assert res["staleness"]["problems"] and res["warnings"][-1].startswith("stale (--allow-stale):")


def test_one_workspace_keeps_its_own_taxonomy_by_default(workspaces, tmp_path_factory, tmp_path):
    """`benchmark-from` on a plutchik32 mixed-emotion corpus (the curators' tutorial's section 7 on its
    section 8 corpus) mapped it into ekman7 unless told otherwise: its own predictions were then refused
    ("unknown label 'terror'") and items were dropped. Without --taxonomy the workspaces' shared taxonomy is
    kept; corpora of different taxonomies still meet in ekman7."""
    from casebench.testing import make_workspace

    ws = make_workspace(tmp_path_factory.mktemp("p32"), n_clips=6, taxonomy="plutchik32", with_annotations=True)
    built = benchmark_from([ws.root], tmp_path / "own")
    assert get_benchmark(built["spec"]).taxonomy.name == "plutchik32" and built["n_items"] == 6
    mixed = benchmark_from([workspaces["crema-d"], workspaces["msp-podcast"]], tmp_path / "two")
    assert get_benchmark(mixed["spec"]).taxonomy.name == "ekman7"
