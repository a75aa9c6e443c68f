"""Tests of casebench.aggregate: tie rule, distributions, V/A/D, thresholds and conflict tagging, crowd-kit
methods against majority vote, intended-emotion match, and the workspace step and CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from casebench.aggregate import (
    Thresholds,
    aggregate,
    aggregate_labels,
    intended_match,
    majority_vote,
    vote_distribution,
)
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.taxonomy import get_taxonomy
from casebench.testing import make_workspace

EKMAN = list(get_taxonomy("ekman7").labels)


def ratings(rows, **extra) -> pd.DataFrame:
    """(clip, rater, dimension, value[, channel]) tuples -> a long annotations frame."""
    df = pd.DataFrame([r if len(r) == 5 else (*r, None) for r in rows],
                      columns=["clip_id", "rater_id", "dimension", "value", "meta_channel"])
    df["value_num"] = pd.to_numeric(df["value"].where(df["dimension"] != "is_ambiguous"), errors="coerce")
    df.loc[df["dimension"] == "is_ambiguous", "value_num"] = (df["value"] == "true").astype(float)
    df["cancelled"] = False
    df["ground_truth"] = False
    for k, v in extra.items():
        df[k] = v
    return df


def clip(cid, acoustic, semantic, raters="abc"):
    rows = [(cid, r, "acoustic_emotion", v) for r, v in zip(raters, acoustic, strict=True)]
    return rows + [(cid, r, "semantic_emotion", v) for r, v in zip(raters, semantic, strict=True)]


# --------------------------------------------------------------------------------------------------
# Tie rule and distributions


def test_tie_rule_is_explicit_and_recorded():
    assert majority_vote(["sad", "happy"], EKMAN) == (None, 0.5)
    assert majority_vote(["sad", "happy"], EKMAN, tie="taxonomy-order") == ("happy", 0.5)  # happy before sad
    assert majority_vote([], EKMAN)[0] is None
    with pytest.raises(ConfigError, match="tie rule"):
        majority_vote(["sad"], EKMAN, tie="coin")
    df = ratings(clip("c1", ["sad", "happy"], ["sad", "sad"], raters="ab"))
    none = aggregate_labels(df, "ekman7").labels.iloc[0]
    assert none.acoustic_label is None and not none.passes_thresholds and not none.is_conflict
    assert none.method == "majority(tie=none)" and "acoustic tie" in none.meta_threshold_failures
    first = aggregate_labels(df, "ekman7", tie="taxonomy-order").labels.iloc[0]
    assert first.acoustic_label == "happy" and first.method == "majority(tie=taxonomy-order)"
    # a tie leaves the distribution intact
    assert none.acoustic_dist[EKMAN.index("sad")] == none.acoustic_dist[EKMAN.index("happy")] == 0.5


def test_distributions_in_taxonomy_order_with_smoothing_and_mixed_weights():
    votes = ["sad", "sad", "angry", "sad"]
    d = vote_distribution(votes, EKMAN)
    assert d.tolist() == [0.25, 0, 0, 0, 0, 0.75, 0] and d.sum() == 1
    s = vote_distribution(votes, EKMAN, smoothing=0.5)
    assert s == pytest.approx((np.array([1, 0, 0, 0, 0, 3, 0]) + 0.5) / (4 + 0.5 * 7))
    w = vote_distribution(["sad", "angry"], EKMAN, weights=[{"sad": 0.6, "fear": 0.4}, None])
    assert w == pytest.approx(np.array([1, 0, 0.4, 0, 0, 0.6, 0]) / 2)
    with pytest.raises(ConfigError):
        vote_distribution(votes, EKMAN, smoothing=-1)
    df = ratings(clip("c1", ["sad", "angry"], ["sad", "sad"], raters="ab"))
    df.loc[0, "meta_weights"] = json.dumps({"fear": 0.5, "sad": 0.5})
    row = aggregate_labels(df, "ekman7", smoothing=1.0).labels.iloc[0]
    assert row.acoustic_dist == pytest.approx((np.array([1, 0, 0.5, 0, 0, 0.5, 0]) + 1) / 9)
    assert row.method == "majority(tie=none),smoothing=1"


def test_vad_mean_and_spread_and_what_is_not_counted():
    rows = clip("c1", ["sad"] * 3, ["sad"] * 3)
    rows += [("c1", r, "valence", v) for r, v in zip("abc", ["1", "2", "4"], strict=True)]
    rows += [("c1", "d", "valence", "5")]          # cancelled: not counted
    rows += [("c1", "a", "acoustic_emotion", "happy")]  # an older rating of rater a: the later one counts
    df = ratings(rows)
    df["created_at"] = pd.Timestamp("2024-01-02", tz="UTC")
    df.loc[len(df) - 1, "created_at"] = pd.Timestamp("2024-01-01", tz="UTC")
    df.loc[len(df) - 2, "cancelled"] = True
    result = aggregate_labels(df, "ekman7")
    row = result.labels.iloc[0]
    assert row.valence == pytest.approx(7 / 3) and row.meta_valence_sd == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert row.arousal is None or np.isnan(row.arousal)
    assert row.acoustic_label == "sad" and row.agreement == 1.0 and row.n_raters == 3
    assert result.report["counted"]["cancelled_rows"] == 1
    assert result.report["counted"]["repeated_ratings_dropped"] == 1


def test_ground_truth_can_be_left_out():
    df = ratings(clip("c1", ["sad", "sad", "angry"], ["sad"] * 3) + [("c1", "gt", "acoustic_emotion", "angry"),
                                                                    ("c1", "gt2", "acoustic_emotion", "angry")])
    df.loc[df["rater_id"].str.startswith("gt"), "ground_truth"] = True
    assert aggregate_labels(df, "ekman7").labels.iloc[0].acoustic_label == "angry"
    assert aggregate_labels(df, "ekman7", include_ground_truth=False).labels.iloc[0].acoustic_label == "sad"


# --------------------------------------------------------------------------------------------------
# Thresholds and conflicts


def test_thresholds_mark_clips_and_never_delete_them():
    rows = (clip("ok", ["sad", "sad", "sad"], ["happy", "happy", "sad"])          # a conflict
            + clip("weak", ["sad", "angry", "fear"], ["happy"] * 3)                 # acoustic 1/3 < 0.5
            + clip("same", ["sad"] * 3, ["sad"] * 3)                                 # congruent
            + clip("amb", ["sad"] * 3, ["happy"] * 3))                               # words ambiguous
    rows += [("amb", r, "is_ambiguous", v, "semantic") for r, v in zip("abc", ["true", "true", "false"],
                                                                        strict=True)]
    rows += [("amb", r, "is_ambiguous", "false", "acoustic") for r in "abc"]
    rows += [("ok", "a", "is_ambiguous", "true")]  # no channel: counts for both, 1 of 1 > 0.5
    labels = aggregate_labels(ratings(rows), "ekman7").labels.set_index("clip_id")
    assert list(labels.index) == ["ok", "weak", "same", "amb"]
    assert labels.loc["same", "passes_thresholds"] and not labels.loc["same", "is_conflict"]
    assert not labels.loc["weak", "passes_thresholds"] and pd.isna(labels.loc["weak", "acoustic_label"])
    assert "acoustic agreement 0.33 < 0.5" in labels.loc["weak", "meta_threshold_failures"]
    assert not labels.loc["amb", "passes_thresholds"]
    assert labels.loc["amb", "meta_threshold_failures"] == "semantic ambiguous share 0.67 > 0.5"
    assert labels.loc["amb", "meta_semantic_ambiguous_votes"] == 2
    assert not labels.loc["ok", "passes_thresholds"]  # the channel-less ambiguity vote counts for both
    # looser thresholds: "ok" becomes a conflict clip with its pair, "amb" too
    loose = aggregate_labels(ratings(rows), "ekman7", thresholds=Thresholds(max_ambiguous_share=1.0))
    loose = loose.labels.set_index("clip_id")
    assert loose.loc["ok", "is_conflict"] and loose.loc["ok", "conflict_type"] == "sad-voice/happy-words"
    assert loose.loc["ok", "meta_semantic_agreement"] == pytest.approx(2 / 3)
    assert loose.loc["amb", "is_conflict"] and not loose.loc["same", "is_conflict"]
    assert pd.isna(loose.loc["same", "conflict_type"])
    strict = aggregate_labels(ratings(rows), "ekman7",
                              thresholds=Thresholds(min_agreement=0.9, max_ambiguous_share=1.0,
                                                    max_ambiguous_votes=1)).labels.set_index("clip_id")
    assert not strict.loc["ok", "passes_thresholds"]  # semantic 2/3 < 0.9
    assert "semantic ambiguous votes 2 > 1" in strict.loc["amb", "meta_threshold_failures"]
    assert strict.loc["same", "passes_thresholds"]
    with pytest.raises(ConfigError):
        Thresholds(min_agreement=1.5)


def test_bad_input_is_reported():
    with pytest.raises(InputError, match="angy"):
        aggregate_labels(ratings(clip("c1", ["angy"], ["sad"], raters="a")), "ekman7")
    with pytest.raises(ConfigError, match="method"):
        aggregate_labels(ratings(clip("c1", ["sad"], ["sad"], raters="a")), "ekman7", method="vote")
    with pytest.raises(InputError, match="rater_id"):
        aggregate_labels(pd.DataFrame({"clip_id": ["c1"], "dimension": ["x"], "value": ["sad"]}), "ekman7")


# --------------------------------------------------------------------------------------------------
# Dawid-Skene and MACE (crowd-kit) against majority vote


def simulated(n_items=100, p_right=(0.9, 0.7, 0.6, 0.6), seed=0, labels=("angry", "happy", "neutral", "sad")):
    """Four honest raters of different skill (each right with its p, else a uniform wrong label) and one bad
    rater who answers 'angry' whatever the clip; returns (annotations, truth)."""
    rng = random.Random(seed)
    rows, truth = [], {}
    for i in range(n_items):
        cid = f"c{i:03d}"
        t = rng.choice(labels)
        truth[cid] = t
        for r, p in enumerate(p_right):
            v = t if rng.random() < p else rng.choice([x for x in labels if x != t])
            rows.append((cid, f"honest{r}", "acoustic_emotion", v))
        rows.append((cid, "bad", "acoustic_emotion", "angry"))
    return ratings(rows), truth


@pytest.mark.parametrize("method", ["dawid-skene", "mace"])
def test_crowdkit_methods_recover_labels_at_least_as_well_as_majority_with_a_bad_rater(method):
    df, truth = simulated()
    t = pd.Series(truth)

    def accuracy(result):
        lab = result.labels.set_index("clip_id")["acoustic_label"]
        return float((lab.reindex(t.index) == t).mean())

    # the stronger majority baseline: ties broken by taxonomy order rather than left unlabelled
    majority = accuracy(aggregate_labels(df, "iemocap4", tie="taxonomy-order"))
    model = aggregate_labels(df, "iemocap4", method=method, seed=0)
    assert accuracy(model) >= majority
    assert accuracy(model) >= 0.8 and model.labels["method"].eq(method).all()
    # agreement is the share of raters behind the model's label
    row = model.labels.iloc[0]
    votes = df[df["clip_id"] == row.clip_id]["value"]
    assert row.agreement == pytest.approx((votes == row.acoustic_label).mean())


# --------------------------------------------------------------------------------------------------
# Intended emotions, the workspace step and the CLI


def test_intended_match():
    ann = ratings(clip("c1", ["sad", "sad", "angry"], ["happy", "happy", "happy"])
                  + clip("c2", ["fear", "fear", "fear"], ["fear", "fear", "sad"]))
    clips = pd.DataFrame({"clip_id": ["c1", "c2"], "intended_acoustic": ["sad", "fear"],
                          "intended_semantic": ["happy", "sad"]})
    labels = aggregate_labels(ann, "ekman7").labels
    m = intended_match(ann, clips, labels)
    assert m["acoustic"]["rating_match"] == pytest.approx(5 / 6) and m["acoustic"]["label_match"] == 1.0
    assert m["semantic"]["rating_match"] == pytest.approx(4 / 6) and m["semantic"]["label_match"] == 0.5
    assert m["acoustic"]["per_rater"]["c"] == {"ratings": 2, "match": 0.5}
    assert m["conflict"] == {"intended": 2, "tagged": 1, "tagged_and_intended": 1, "recall": 0.5,
                             "precision": 1.0}
    assert intended_match(ann, clips.assign(intended_acoustic=None, intended_semantic=None)) == {}


def test_workspace_step_rebuilds_the_testing_labels(tmp_path):
    ws = make_workspace(tmp_path, n_clips=24, seed=5, with_annotations=True)
    before = ws.read_df("labels").set_index("clip_id")
    result = aggregate(ws)
    after = ws.read_df("labels").set_index("clip_id")
    for col in ("acoustic_label", "semantic_label", "is_conflict", "n_raters", "valence"):
        assert (after[col] == before[col]).all(), col
    assert np.allclose(np.stack(after["acoustic_dist"]), np.stack(before["acoustic_dist"]))
    assert after["method"].eq("majority(tie=none)").all()
    report = json.loads((ws.reports_dir / "aggregate.json").read_text())
    assert report["intended"]["acoustic"]["label_match"] == 1.0
    assert report["clips"]["conflict"] == int(before["is_conflict"].sum())
    assert result.report["counted"]["ratings"] == 24 * 3 * 5
    # settings in [aggregate] are the defaults of a run
    ws.set_section("aggregate", {"tie": "taxonomy-order", "min_agreement": 0.9})
    again = aggregate(ws, write=False)
    assert again.report["tie_rule"] == "taxonomy-order" and again.report["thresholds"]["min_agreement"] == 0.9
    assert again.report["clips"]["failing"] > 0


def test_cli(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=6, seed=2, with_annotations=True)
    assert main(["aggregate", str(ws.root), "--method", "dawid-skene", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "dawid-skene" and report["clips"]["rated"] == 6
    assert main(["aggregate", str(ws.root), "--min-agreement", "0.8", "--tie", "taxonomy-order"]) == 0
    out = capsys.readouterr().out
    assert "6 clip(s) rated by majority(tie=taxonomy-order)" in out.replace("\n", " ")
    assert main(["aggregate", str(ws.root), "--method", "vote"]) == 2
    assert "expected one of" in capsys.readouterr().err
    empty = make_workspace(tmp_path, n_clips=2, subdir="empty")
    assert main(["aggregate", str(empty.root)]) == 2
    assert "annotate import" in capsys.readouterr().err


def test_voice_only_ratings_have_no_conflict_or_congruent_counts(tmp_path, capsys):
    """A corpus rated from the voice alone (EM2LDL-style) is neither conflict nor congruent: the report says
    so instead of calling every passing clip congruent."""
    rows = [("c1", r, "acoustic_emotion", v, w) for r, v, w in
            (("a", "sad", '{"angry": 0.25, "sad": 0.75}'), ("b", "sad", None), ("c", "angry", None))]
    df = pd.DataFrame(rows, columns=["clip_id", "rater_id", "dimension", "value", "meta_weights"]).assign(
        cancelled=False, ground_truth=False, value_num=None)
    result = aggregate_labels(df, "ekman7")
    clips = result.report["clips"]
    assert (clips["passing"], clips["conflict"], clips["congruent"]) == (1, None, None)
    assert result.report["conflict_defined"] is False and result.report["channels_rated"] == ["acoustic"]
    assert result.report["multi_label_ratings"] == 1
    # conflict is undefined without a words label: null, not False (which the published dataset and a
    # consumer's `~is_conflict` filter read as "congruent")
    assert result.labels["is_conflict"].isna().all() and result.labels["conflict_type"].isna().all()
    ws = make_workspace(tmp_path, n_clips=4, with_annotations=True)
    ann = ws.read_df("annotations")
    ws.write_table("annotations", ann[ann["dimension"] != "semantic_emotion"])
    assert main(["aggregate", str(ws.root)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert " congruent)" not in out and "(no conflict tags: only acoustic emotion ratings)" in out
    assert ws.read_df("labels")["is_conflict"].isna().all()
    # the schema asks for more raters than the clips have: counted and named
    ws.set_section("annotation", {**ws.section("annotation"), "raters_per_clip": 20})
    report = aggregate(ws).report
    assert report["clips"]["below_raters_per_clip"] == 4 and report["annotation_schema"]["raters_per_clip"] == 20


# --------------------------------------------------------------------------------------------------
# Rater quality: constant and random raters, method vs majority, --exclude-flagged


def spammed(n_items=200, seed=0, ids="c{:03d}"):
    """The case of issue 13: three honest raters (right with p 0.7, 0.6, 0.5, else a uniform label of 7)
    and two constant raters who always say 'neutral'; returns (annotations, truth)."""
    labels = get_taxonomy("ekman7").labels
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for i in range(n_items):
        cid = ids.format(i)
        t = labels[rng.integers(0, 7)]
        truth[cid] = t
        for r, p in zip(("h1", "h2", "h3"), (0.7, 0.6, 0.5), strict=True):
            rows.append((cid, r, "acoustic_emotion", t if rng.random() < p else labels[rng.integers(0, 7)]))
        rows += [(cid, "spam1", "acoustic_emotion", "neutral"), (cid, "spam2", "acoustic_emotion", "neutral")]
    return ratings(rows), pd.Series(truth)


def label_accuracy(result, truth) -> float:
    lab = result.labels.set_index("clip_id")["acoustic_label"]
    return float((lab.reindex(truth.index) == truth).mean())


def test_constant_raters_are_flagged_mace_is_warned_about_and_exclude_flagged_restores_it():
    df, truth = spammed()
    mace = aggregate_labels(df, "ekman7", method="mace", seed=0)
    assert label_accuracy(mace, truth) < 0.3  # the failure of the issue: MACE trusts the spammers
    raters = mace.report["raters"]
    assert raters["flagged"] == ["spam1", "spam2"]
    for r in ("spam1", "spam2"):
        q = raters["acoustic"][r]
        assert q["flags"] == ["constant", "random"] and q["top_label"] == "neutral" and q["top_share"] == 1.0
        assert q["p_value"] > 0.05 and abs(q["agreement"] - q["chance"]) < 0.1
    for r in ("h1", "h2", "h3"):
        q = raters["acoustic"][r]
        assert q["flags"] == [] and q["p_value"] < 1e-6 and q["agreement"] > q["chance"] + 0.2
    warnings_ = mace.report["warnings"]
    assert any(w.startswith("rater 'spam1' (acoustic): constant: 100% 'neutral' over 200 ratings; random:")
               for w in warnings_)
    assert any("mace disagrees with the majority vote on" in w for w in warnings_)
    assert mace.report["method_vs_majority"]["acoustic"]["share"] > 0.2
    assert any("--exclude-flagged" in w for w in warnings_)

    after = aggregate_labels(df, "ekman7", method="mace", seed=0, exclude_flagged=True)
    assert label_accuracy(after, truth) >= 0.7  # 0.13 -> 0.795 on this seed
    assert after.report["raters"]["excluded"] == ["spam1", "spam2"]
    assert not any("disagrees" in w for w in after.report["warnings"])


# accuracy on this seed, before -> after: majority 0.58 -> 0.775, Dawid-Skene 0.74 -> 0.74
@pytest.mark.parametrize(("method", "gain"), [("majority", 0.15), ("dawid-skene", 0.0)])
def test_exclude_flagged_gives_the_labels_and_distributions_of_the_honest_raters(method, gain):
    df, truth = spammed()
    kw = {"tie": "taxonomy-order"} if method == "majority" else {"method": method, "seed": 0}
    before = aggregate_labels(df, "ekman7", **kw)
    after = aggregate_labels(df, "ekman7", exclude_flagged=True, **kw)
    honest = aggregate_labels(df[~df["rater_id"].str.startswith("spam")], "ekman7", **kw)
    assert label_accuracy(after, truth) == label_accuracy(honest, truth) >= 0.7
    assert label_accuracy(after, truth) >= label_accuracy(before, truth) + gain
    assert after.report["raters"]["excluded"] == ["spam1", "spam2"]
    assert after.report["counted"]["flagged_rater_ratings_excluded"] == 400
    dist = np.stack(after.labels.set_index("clip_id").loc[truth.index, "acoustic_dist"].to_list())
    assert np.array_equal(dist, np.stack(honest.labels.set_index("clip_id").loc[truth.index,
                                                                                "acoustic_dist"].to_list()))


def test_random_rater_is_flagged_and_too_few_ratings_are_not():
    labels = get_taxonomy("ekman7").labels
    rng = np.random.default_rng(1)
    rows = []
    for i in range(150):
        t = labels[i % 7]
        rows += [(f"c{i}", r, "acoustic_emotion", t) for r in ("a", "b", "c")]
        rows.append((f"c{i}", "noise", "acoustic_emotion", labels[rng.integers(0, 7)]))
        if i < 10:  # a rater with too few ratings to judge, whatever they answer
            rows.append((f"c{i}", "few", "acoustic_emotion", "sad"))
    q = aggregate_labels(ratings(rows), "ekman7").report["raters"]["acoustic"]
    assert q["noise"]["flags"] == ["random"] and q["few"]["flags"] == []
    assert q["a"]["flags"] == [] and q["a"]["agreement"] == 1.0
    # reference: scipy's exact binomial test on the counts reported
    from scipy.stats import binomtest

    n = q["noise"]
    hits = round(n["agreement"] * n["compared"])
    assert n["p_value"] == pytest.approx(binomtest(hits, n["compared"], n["chance"], alternative="greater").pvalue)
    # chance by hand: the rater's label shares times the leave-one-out majority's (here the truth)
    own = pd.Series([r[3] for r in rows if r[1] == "noise"]).value_counts(normalize=True)
    truth = pd.Series([labels[i % 7] for i in range(150)]).value_counts(normalize=True)
    assert n["compared"] == 150 and n["chance"] == pytest.approx(float((own * truth).sum()), abs=1e-12)


def test_cli_prints_flags_and_exclude_flagged(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=60, with_annotations=True)
    df, _ = spammed(n_items=60, ids="clip-{:04d}")
    ws.write_table("annotations", df.assign(value_num=np.nan))
    assert main(["aggregate", str(ws.root)]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "warning: rater 'spam1' (acoustic): constant" in out and "; --exclude-flagged leaves them out" in out
    assert main(["aggregate", str(ws.root), "--exclude-flagged", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["raters"]["excluded"] == ["spam1", "spam2"]
    saved = json.loads((ws.reports_dir / "aggregate.json").read_text())
    assert saved["raters"]["flagged"] == ["spam1", "spam2"] and saved["warnings"] == report["warnings"]


def test_mace_shows_progress_that_reaches_the_end(capfd, monkeypatch):
    """MACE (about a minute on thousands of ratings) draws a bar over its E-steps; the count ends at the total
    (2 restarts x (3 iterations + 1) + 1 final E-step = 9)."""
    import pandas as pd

    from casebench import aggregate
    from casebench.aggregate import aggregate_labels

    monkeypatch.setattr(aggregate, "MACE_RESTARTS", 2)
    monkeypatch.setattr(aggregate, "MACE_ITERATIONS", 3)
    rows = [(f"c{i}", r, dim, ["sad", "angry"][(i + (r == "c")) % 2]) for i in range(6) for r in "abc"
            for dim in ("acoustic_emotion", "semantic_emotion")]
    df = pd.DataFrame(rows, columns=["clip_id", "rater_id", "dimension", "value"]).assign(
        cancelled=False, ground_truth=False, value_num=None)
    aggregate_labels(df, "ekman7", method="mace", progress=True)
    err = capfd.readouterr().err
    assert "MACE acoustic" in err and "MACE semantic" in err and err.count("9/9") == 2, err


def test_a_corpus_rated_on_dimensions_only(tmp_path, capsys):
    """Valence / arousal / dominance ratings and no emotion: every clip was reported as having fewer raters
    than raters_per_clip (the count was the voice label's raters: 0), "0 pass the thresholds ... 48 fail
    (no conflict tags: only no emotion ratings)", and the card said "No labels are published"."""
    from casebench.datacard import card_context, render_card

    ws = make_workspace(tmp_path, n_clips=4, with_annotations=True)
    ann = ws.read_df("annotations")
    ws.write_table("annotations", ann[ann["dimension"].isin(["valence", "arousal", "dominance"])])
    assert main(["aggregate", str(ws.root)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "4 clip(s) rated: no emotion ratings, so no labels, thresholds or conflict tags" in out
    assert "fewer raters" not in out and "only no emotion" not in out and "fail" not in out
    report = json.loads((ws.reports_dir / "aggregate.json").read_text())
    assert report["clips"]["below_raters_per_clip"] == 0  # 3 raters per clip, as the schema asks
    labels = ws.read_df("labels")
    assert labels["acoustic_label"].isna().all() and labels["valence"].notna().all()
    counts = {"order": [], "rows": {}, "configs": {}, "views": {}, "test_in_no_view": 0}
    ctx = card_context(ws, ws.read_df("clips").merge(labels, on="clip_id"), fields={"licence": "CC0-1.0"},
                       split_counts=counts, audit_report=None, allow_leakage=None, hide_test_labels=False,
                       hidden_splits=[], annotations=None, transcripts=None, images_dir=tmp_path / "img",
                       repo_id=None, configs={}, n_boot=0)
    text = render_card(ctx)
    mean = labels["valence"].mean()
    assert "No labels are published" not in text and f"valence {mean:.2f} ± " in text
