"""Tests for casebench.splits: speaker-disjoint, stratified holdout and k-fold splits, official lists, views."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from casebench import splits
from casebench.audit import total_variation
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.testing import make_workspace
from casebench.workspace import Workspace


def _corpus(n_speakers: int = 24, per_speaker: int = 14, seed: int = 0, labels=("angry", "happy", "sad", "neutral"),
            conflict_rate: float = 0.4) -> pd.DataFrame:
    """Clips with intended emotions: every speaker says every label, some clips in conflict."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        for k in range(per_speaker):
            a = labels[(k + s) % len(labels)]
            sem = labels[(k + s + 1) % len(labels)] if rng.random() < conflict_rate else a
            rows.append({"clip_id": f"s{s:02d}-{k:02d}", "speaker_id": f"spk{s:02d}", "intended_acoustic": a,
                         "intended_semantic": sem, "session": f"sess{s // 2}"})
    return pd.DataFrame(rows)


def _speakers_per_split(table: pd.DataFrame, clips: pd.DataFrame, column: str = "split") -> pd.Series:
    merged = table.merge(clips, on="clip_id")
    return merged.groupby("speaker_id")[column].nunique()


def test_holdout_is_speaker_disjoint_and_stratified():
    clips = _corpus()
    res = splits.holdout_splits(clips, ratios={"train": 0.8, "dev": 0.1, "test": 0.1}, seed=3)
    t = res.table
    assert len(t) == len(clips) and set(t["clip_id"]) == set(clips["clip_id"])
    assert (_speakers_per_split(t, clips) == 1).all()  # each speaker in exactly one split
    shares = t["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.8, abs=0.05)
    assert shares["dev"] == pytest.approx(0.1, abs=0.05) and shares["test"] == pytest.approx(0.1, abs=0.05)
    merged = t.merge(clips, on="clip_id")
    merged["conflict"] = merged["intended_acoustic"] != merged["intended_semantic"]
    overall = merged["intended_acoustic"].value_counts().to_dict()
    for name, part in merged.groupby("split"):
        # every class in every split, class and conflict shares close to the corpus's
        assert set(part["intended_acoustic"]) == set(overall), name
        assert total_variation(part["intended_acoustic"].value_counts().to_dict(), overall) < 0.15, name
        assert abs(part["conflict"].mean() - merged["conflict"].mean()) < 0.15, name
    assert res.config["method"] == "holdout" and res.config["stratify"] == "acoustic_label x conflict_status"
    assert res.config["units"] == 10 and res.config["units_per_split"] == {"train": 8, "dev": 1, "test": 1}
    assert res.summary["views"]["conflict_test"] > 0 and res.summary["views"]["congruent_test"] > 0


def test_same_seed_same_split_other_seed_other_split():
    clips = _corpus()
    a = splits.holdout_splits(clips, seed=1).table
    b = splits.holdout_splits(clips, seed=1).table
    c = splits.holdout_splits(clips, seed=2).table
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])


def test_train_folds_are_speaker_independent():
    clips = _corpus()
    res = splits.holdout_splits(clips, seed=0, n_folds=4)
    t = res.table.merge(clips, on="clip_id")
    train = t[t["split"] == "train"]
    assert train["fold"].notna().all() and t.loc[t["split"] != "train", "fold"].isna().all()
    assert sorted(train["fold"].unique().tolist()) == [0, 1, 2, 3]
    assert (train.groupby("speaker_id")["fold"].nunique() == 1).all()
    assert res.summary["splits"]["train"]["folds"] and sum(res.summary["splits"]["train"]["folds"].values()) == \
        len(train)


def test_kfold_covers_every_clip_once_speaker_disjoint():
    clips = _corpus(n_speakers=10)
    res = splits.kfold_splits(clips, k=5, seed=0)
    t = res.table
    assert sorted(t["split"].unique()) == [f"fold{i}" for i in range(5)]
    assert (t["split"] == "fold" + t["fold"].astype(str)).all()
    assert (_speakers_per_split(t, clips) == 1).all()
    assert res.config["method"] == "kfold" and res.config["k"] == 5


def test_too_few_speakers_is_a_plain_error():
    clips = _corpus(n_speakers=2)
    with pytest.raises(InputError) as e:
        splits.holdout_splits(clips)
    msg = str(e.value)
    assert "too few speakers" in msg and "2 speaker(s)" in msg and "at least 3" in msg
    with pytest.raises(InputError, match="at least 5 for 5 speaker-independent folds"):
        splits.kfold_splits(_corpus(n_speakers=4), k=5)
    with pytest.raises(InputError, match="in train"):
        splits.holdout_splits(_corpus(n_speakers=6), n_folds=5)


def test_missing_class_names_class_and_split():
    clips = _corpus(n_speakers=12)
    # 'fear' is spoken by one speaker only: it cannot be in train, dev and test
    clips.loc[clips["speaker_id"] == "spk03", ["intended_acoustic", "intended_semantic"]] = "fear"
    with pytest.raises(InputError) as e:
        splits.holdout_splits(clips, seed=0)
    problems = [str(p) for p in e.value.problems]
    assert any("class 'fear' has no clip in split" in p and "only 1 speaker(s) (spk03)" in p for p in problems)
    # the same with folds: the message speaks of train folds (it said "in every fold_name", a column name)
    with pytest.raises(InputError) as e:
        splits.holdout_splits(clips, seed=0, n_folds=3, require_all_classes=True)
    folds = [str(p) for p in e.value.problems if "fold" in str(p)]
    assert folds and all("fold_name" not in p for p in folds), folds
    assert any("every class of the corpus in every train fold" in p for p in folds)
    res = splits.holdout_splits(clips, seed=0, require_all_classes=False)
    assert any("'fear'" in w for w in res.summary["warnings"])


def test_group_by_session_keeps_sessions_together():
    clips = _corpus(n_speakers=12)
    res = splits.holdout_splits(clips, group_by=("speaker_id", "session"), seed=0)
    merged = res.table.merge(clips, on="clip_id")
    assert (merged.groupby("session")["split"].nunique() == 1).all()
    assert splits.group_ids(clips, ["speaker_id", "session"]).max() == 5  # 12 speakers in 6 sessions


def test_clip_without_speaker_is_an_error():
    clips = _corpus(n_speakers=6)
    clips.loc[3, "speaker_id"] = None
    with pytest.raises(InputError) as e:
        splits.holdout_splits(clips)
    assert "id 's00-03'" in str(e.value) and "speaker_id" in str(e.value)


def test_bad_ratios():
    with pytest.raises(ConfigError):
        splits.holdout_splits(_corpus(), ratios={"train": -1, "test": 1})
    with pytest.raises(ConfigError, match="derived views"):
        splits.holdout_splits(_corpus(), ratios={"train": 1, "conflict_test": 1})
    with pytest.raises(ConfigError):
        splits.parse_ratios("0.8,0.1,0.05,0.05")
    assert splits.parse_ratios("0.9,0.1") == {"train": 0.9, "test": 0.1}


def test_tiny_corpus_falls_back_to_coarser_strata():
    clips = _corpus(n_speakers=4, per_speaker=2, labels=("a", "b", "c", "d", "e", "f"))
    res = splits.holdout_splits(clips, ratios={"train": 2, "test": 1}, require_all_classes=False)
    assert res.config["stratify"] != "acoustic_label x conflict_status"
    assert (_speakers_per_split(res.table, clips) == 1).all()


def test_named_views_and_status_from_labels():
    clips = pd.DataFrame({"clip_id": list("abcde")})
    labels = pd.DataFrame({"clip_id": list("abcde"), "acoustic_label": ["sad", "sad", "joy", "joy", None],
                           "semantic_label": ["sad", "joy", "joy", "sad", "joy"],
                           "is_conflict": [False, True, False, False, None],
                           "passes_thresholds": [True, True, False, False, None]})
    st = splits.conflict_status(clips, labels)
    # c agrees but fails the thresholds; d differs but was not called a conflict: neither view
    assert st["status"].tolist() == ["congruent", "conflict", "unknown", "unknown", "unknown"]
    sp = pd.DataFrame({"clip_id": list("abcde"), "split": ["test"] * 5})
    assert splits.named_views(sp, st) == {"conflict_test": ["b"], "congruent_test": ["a"]}


# ---------------------------------------------------------------------------------------------- official lists


def test_import_lists_by_id_and_file_name(tmp_path):
    clips = pd.DataFrame({"clip_id": ["c1", "c2", "c3", "c4"], "speaker_id": ["a", "a", "b", "c"],
                          "path": ["audio/x/one.flac", "audio/x/two.flac", "audio/y/three.flac", "audio/four.wav"],
                          "meta_source_file": [None, None, None, "orig/Ses01_F004.wav"]})
    (tmp_path / "train.txt").write_text("# official training list\nc1\ntwo.flac\n")
    (tmp_path / "test.csv").write_text("file,fold\nthree,1\nSes01_F004,2\n")
    lists, info = splits.read_split_lists(tmp_path)
    assert sorted(lists) == ["test", "train"] and {i["split"] for i in info} == {"test", "train"}
    res = splits.assign_from_lists(clips, lists)
    assert dict(zip(res.table["clip_id"], res.table["split"], strict=True)) == \
        {"c1": "train", "c2": "train", "c3": "test", "c4": "test"}
    assert res.table.set_index("clip_id").loc["c4", "fold"] == 2


def test_import_reports_every_problem(tmp_path):
    clips = pd.DataFrame({"clip_id": ["c1", "c2", "c3"], "speaker_id": ["a", "b", "c"],
                          "path": ["a/c1.wav", "a/c2.wav", "a/c3.wav"]})
    (tmp_path / "train.txt").write_text("c1\nc11\n")
    (tmp_path / "test.txt").write_text("c1\n")
    lists, _ = splits.read_split_lists(tmp_path)
    with pytest.raises(InputError) as e:
        splits.assign_from_lists(clips, lists)
    text = str(e.value)
    assert "train.txt:2" in text and "'c11' matches no clip" in text and "did you mean" in text
    assert "listed for split" in text and "clip is in no official split list" in text and "'c2'" in text
    (tmp_path / "test.txt").write_text("c3\n")
    (tmp_path / "train.txt").write_text("c1\n")
    res = splits.assign_from_lists(clips, splits.read_split_lists(tmp_path)[0], allow_unassigned=True)
    assert set(res.table["clip_id"]) == {"c1", "c3"} and res.summary["unassigned"] == ["c2"]


def test_import_one_csv_with_split_column(tmp_path):
    clips = pd.DataFrame({"clip_id": ["c1", "c2"], "speaker_id": ["a", "b"], "path": ["c1.wav", "c2.wav"]})
    f = tmp_path / "official.csv"
    f.write_text("id,split\nc1,train\nc2,validation\n")
    lists, _ = splits.read_split_lists(f)
    assert splits.assign_from_lists(clips, lists).table["split"].tolist() == ["train", "validation"]


# ---------------------------------------------------------------------------------------------- workspace + CLI


def test_split_step_writes_table_config_and_report(tmp_path):
    ws = make_workspace(tmp_path, n_clips=120, n_speakers=12, seed=2)
    summary = splits.split(ws, ratios="0.7,0.15,0.15", seed=5, folds=3, require_all_classes=False)
    ws = Workspace.open(ws.root)
    cfg = ws.section("split")
    assert cfg["method"] == "holdout" and cfg["seed"] == 5 and cfg["n_folds"] == 3
    assert cfg["ratios"] == {"train": 0.7, "dev": 0.15, "test": 0.15} and "StratifiedGroupKFold" in cfg["library"]
    table = ws.read_df("splits")
    assert len(table) == 120 and (_speakers_per_split(table, ws.read_df("clips")) == 1).all()
    report = json.loads((ws.reports_dir / "split.json").read_text())
    assert report["config"]["splits_sha256"] == cfg["splits_sha256"] and summary["splits"]["train"]["n_clips"] > 0


def test_cli_split_json_and_errors(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=80, n_speakers=8, seed=1)
    assert main(["split", str(ws.root), "--seed", "1", "--allow-missing-classes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["splits"]) == {"train", "dev", "test"}
    assert main(["split", str(ws.root), "--method", "kfold", "--k", "4", "--allow-missing-classes"]) == 0
    assert "fold3" in capsys.readouterr().out
    assert main(["split", str(ws.root), "--ratios", "0.5,x"]) == 2
    assert main(["split", str(ws.root), "--method", "kfold", "--k", "9"]) == 2
    assert "too few speakers" in capsys.readouterr().err


def test_cli_split_import(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=8, n_speakers=4, seed=1)
    lists = tmp_path / "official"
    lists.mkdir()
    ids = ws.read_df("clips")["clip_id"].tolist()
    (lists / "train.txt").write_text("\n".join(ids[:6]))
    (lists / "test.txt").write_text("\n".join(ids[6:]))
    assert main(["split", str(ws.root), "--method", "import", "--official", str(lists), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["method"] == "import" and out["splits"]["test"]["n_clips"] == 2
    assert len(out["config"]["files"]) == 2


def test_split_records_what_it_was_built_from_and_a_new_labels_table_makes_it_stale(tmp_path):
    from casebench.workspace import stale_problems

    ws = make_workspace(tmp_path, n_clips=80, n_speakers=8, seed=1)
    splits.split(ws, seed=1, require_all_classes=False)
    assert ws.built_from("splits") == {"clips": ws.table_version("clips"), "labels": ws.table_version("labels")}
    assert stale_problems(ws) == []
    labels = ws.read_df("labels")
    labels.loc[0, "acoustic_label"] = "sad" if labels.loc[0, "acoustic_label"] != "sad" else "happy"
    ws.write_table("labels", labels)  # as aggregate would, from other annotations
    assert stale_problems(ws) == [f"labels.parquet changed after split (tables/splits.parquet was built from an "
                                  f"older version): re-run `casebench split {ws.root}`"]
    splits.split(ws, seed=1, require_all_classes=False)
    assert stale_problems(ws) == []
