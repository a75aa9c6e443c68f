"""Tests for casebench.publish and casebench.datacard: the consumer's view (``datasets.load_dataset`` of the
published folder), the README header the Hub reads, Croissant, the audit gate, curator fields, hidden test
labels, and the upload against huggingface_hub with only the HTTP transport replaced.

``datasets`` 5.x decodes Audio with ``torchcodec`` (in the ``publish`` extra): one test reads decoded rows the
way a consumer does (``datasets.load_dataset`` on the folder, arrays out); the others load the audio column with
``Audio(decode=False)`` and compare the exact bytes and samples that went in.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from casebench import publish as pub
from casebench.cli import main
from casebench.datacard import card_fields, hub_licence, size_category
from casebench.errors import ConfigError, InputError
from casebench.testing import make_clean_workspace
from casebench.workspace import Workspace

CARD = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
        "authors": "Ada Lovelace, Alan Turing", "guidelines": "https://example.org/guidelines"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture()
def ws(tmp_path):
    """24 clips, 4 speakers (train spk-00/01, dev spk-02, test spk-03), annotations: the audit passes."""
    return make_clean_workspace(tmp_path, n_clips=24, n_speakers=4, seed=5, with_annotations=True)


def _load(path, name="default"):
    return pub.load_published(path, name, decode_audio=False, cache_dir=path.parent / f"cache-{name}")


def _samples(path):
    return sf.read(path, dtype="float64")[0]


@pytest.mark.slow
def test_published_audio_decodes_through_datasets(ws, tmp_path):
    """A consumer's plain ``load_dataset(folder)`` decodes the audio (torchcodec) to the samples that went in."""
    import datasets

    assert datasets.config.TORCHCODEC_AVAILABLE, "torchcodec (publish extra) is what decodes Audio in datasets"
    out = tmp_path / "pub"
    pub.publish(ws, out, card=CARD, n_boot=20)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    clips = ws.read_df("clips").set_index("clip_id")
    rows = list(ds["test"]) + list(ds["train"])[:3]
    assert rows
    for row in rows:
        audio = row["audio"]  # an AudioDecoder in datasets 5 (a dict with "array" in 3.x/4.x)
        if isinstance(audio, dict):
            array, sr = np.asarray(audio["array"]), audio["sampling_rate"]
        else:
            samples = audio.get_all_samples()
            array, sr = samples.data.numpy()[0], samples.sample_rate
        want = _samples(ws.root / clips.loc[row["clip_id"], "path"])
        assert sr == 16000 and array.shape == want.shape
        assert np.allclose(array, want, atol=1e-4)  # FLAC/WAV 16-bit: float decoding of the same integers


@pytest.mark.slow
def test_load_dataset_round_trip(ws, tmp_path):
    out = tmp_path / "pub"
    result = pub.publish(ws, out, card=CARD, n_boot=50)
    assert result["audit"]["passed"] and result["croissant_check"]["valid"]
    clips = ws.read_df("clips").set_index("clip_id")
    splits = ws.read_df("splits")
    labels = ws.read_df("labels").set_index("clip_id")
    tax = list(ws.taxonomy.labels)

    ds = _load(out)
    expected = {s: sorted(splits.loc[splits["split"] == s, "clip_id"]) for s in ("train", "dev", "test")}
    for s, ids in expected.items():
        assert sorted(ds[s]["clip_id"]) == ids
    assert set(ds) == {"train", "dev", "test", *result["views"]}
    feats = ds["train"].features
    assert type(feats["audio"]).__name__ == "Audio" and feats["acoustic_label"].names == tax
    for s in ds:
        for row in ds[s]:
            got, sr = pub.decode_audio_bytes(row["audio"])
            want = _samples(ws.root / clips.loc[row["clip_id"], "path"])
            assert sr == 16000 and np.array_equal(got, want)   # the very samples that went in
            assert hashlib.sha256(row["audio"]["bytes"]).hexdigest() == clips.loc[row["clip_id"], "sha256"]
            lab = labels.loc[row["clip_id"]]
            assert tax[row["acoustic_label"]] == lab["acoustic_label"] and row["is_conflict"] == lab["is_conflict"]
    for view, status in (("conflict_test", True), ("congruent_test", False)):
        if view in ds:
            assert set(ds[view]["clip_id"]) <= set(expected["test"])
            assert all(v is status for v in ds[view]["is_conflict"])

    dist = _load(out, "distributions")
    assert set(dist) == {"train", "dev", "test"}
    row = dist["train"][0]
    assert len(row["acoustic_dist"]) == len(tax) and sum(row["acoustic_dist"]) == pytest.approx(1.0)
    assert np.allclose(row["acoustic_dist"], labels.loc[row["clip_id"], "acoustic_dist"])

    ann = _load(out, "annotations")
    n_ann = len(ws.read_df("annotations"))
    assert sum(ann[s].num_rows for s in ann) == n_ann
    assert all(r.startswith("rater-") for r in ann["train"]["rater_id"])
    assert "rater-001" in json.loads((ws.reports_dir / "publish-raters.json").read_text())["raters"]


def test_layout_header_and_parquet_metadata(ws, tmp_path):
    out = tmp_path / "pub"
    pub.publish(ws, out, card=CARD, n_boot=20)
    text = (out / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "cc-by-4.0" and header["language"] == ["en"]
    assert header["task_categories"] == ["audio-classification"] and header["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"default", "distributions", "annotations"} and configs["default"]["default"]
    assert {"split": "train", "path": "data/train-*"} in configs["default"]["data_files"]
    infos = {c["config_name"]: c for c in header["dataset_info"]}
    feats = {f["name"]: f for f in infos["default"]["features"]}
    assert feats["audio"]["dtype"] == {"audio": {"sampling_rate": 16000}}
    assert list(feats["acoustic_label"]["dtype"]["class_label"]["names"].values()) == list(ws.taxonomy.labels)
    train = next(s for s in infos["default"]["splits"] if s["name"] == "train")
    assert train["num_examples"] == 12
    shard = out / "data" / "train-00000-of-00001.parquet"
    meta = pq.ParquetFile(shard)
    assert b"huggingface" in meta.schema_arrow.metadata and meta.metadata.num_row_groups >= 1
    assert all(meta.metadata.row_group(i).num_rows <= pub.ROW_GROUP_ROWS for i in range(meta.metadata.num_row_groups))
    # the card: generated sections, agreement with CIs, heatmap, audit verdict
    for part in ("## Annotation", "Krippendorff's α", "| acoustic_emotion | nominal |", "## Labels and conflicts",
                 "images/conflict_pairs.png", "**pass** casebench's leakage audit", CARD["consent"],
                 "https://example.org/guidelines", "@misc{lovelace", "no split method is recorded"):
        assert part in text, part
    assert (out / "images" / "conflict_pairs.png").stat().st_size > 1000
    assert not list(out.parent.glob(".pub.*.tmp"))  # built aside, renamed into place


def test_croissant_validates_and_reads(ws, tmp_path):
    out = tmp_path / "pub"
    pub.publish(ws, out, card=CARD, n_boot=0)
    doc = json.loads((out / "croissant.json").read_text())
    assert doc["@type"] == "sc:Dataset" and {r["@id"] for r in doc["recordSet"]} == {"default", "distributions",
                                                                                      "annotations"}
    check = pub.validate_croissant(out / "croissant.json", read_records="default", max_records=3)
    assert check == {"valid": True, "warnings": [], "records": 3}
    import mlcroissant as mlc

    records = list(mlc.Dataset(jsonld=str(out / "croissant.json")).records("default"))
    assert len(records) == 24 + sum(1 for r in records if r["default/split"] in (b"conflict_test", b"congruent_test"))
    first = records[0]
    audio, _ = sf.read(io.BytesIO(first["default/audio"]))
    assert audio.shape[0] > 0
    doc["recordSet"][0]["field"][0]["dataType"] = "sc:NoSuchType"
    (out / "broken.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="does not validate"):
        pub.validate_croissant(out / "broken.json")


def test_size_bounded_shards(ws, tmp_path):
    out = tmp_path / "pub"
    result = pub.publish(ws, out, card=CARD, n_boot=0, shard_bytes=128 * 1024)
    train = sorted((out / "data").glob("train-*.parquet"))
    assert len(train) >= 3 and [p.name for p in train] == result["shards"]["default"]["train"]
    assert all(p.name.endswith(f"-of-{len(train):05d}.parquet") for p in train)
    assert all(p.stat().st_size < 128 * 1024 + 16 * 1024 for p in train)  # + footer and page index
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in train) == 12


def test_publish_refuses_leaky_splits_unless_given_a_reason(ws, tmp_path):
    clips = ws.read_df("clips")
    clips.loc[clips["clip_id"] == "clip-0003", "speaker_id"] = "spk-00"  # a test clip by a train speaker
    ws.write_table("clips", clips)
    with pytest.raises(InputError) as e:
        pub.publish(ws, tmp_path / "pub", card=CARD, n_boot=0)
    assert "fail the leakage audit" in str(e.value) and "train/test speakers" in str(e.value)
    assert not (tmp_path / "pub").exists()
    with pytest.raises(ConfigError, match="needs a reason"):
        pub.publish(ws, tmp_path / "pub", card=CARD, allow_leakage="  ")
    result = pub.publish(ws, tmp_path / "pub", card=CARD, n_boot=0,
                         allow_leakage="clip-0003's speaker label is disputed; kept for comparability")
    assert not result["audit"]["passed"]
    text = (tmp_path / "pub" / "README.md").read_text()
    assert "**fail** casebench's leakage audit" in text and "kept for comparability" in text


def test_curator_fields_are_required_prompted_and_saved(ws, tmp_path):
    with pytest.raises(ConfigError) as e:
        pub.publish(ws, tmp_path / "pub", card={"summary": "x"})
    msg = str(e.value)
    for name in ("consent", "authors", "guidelines"):
        assert f"  {name}:" in msg
    assert "summary:" not in msg and "--consent" in msg
    asked = []

    def prompt(name, what):
        asked.append(name)
        return {"consent": "synthetic", "authors": "A. Person", "guidelines": "see annotation/"}.get(name, "")

    fields = card_fields(ws, {"summary": "A corpus."}, prompt=prompt)
    assert asked == ["consent", "authors", "guidelines"] and fields["authors"] == ["A. Person"]
    reopened = Workspace.open(ws.root)
    assert reopened.section("card")["consent"] == "synthetic"
    assert card_fields(reopened)["summary"] == "A corpus."  # saved: no prompt needed the next time
    reopened.config["project"].pop("licence")
    reopened.save_config()
    with pytest.raises(ConfigError, match="licence"):
        card_fields(Workspace.open(ws.root))
    with pytest.raises(ConfigError, match="did you mean 'consent'"):
        card_fields(reopened, {"consnet": "x"})


def test_licences():
    assert hub_licence("CC0-1.0")["license"] == "cc0-1.0"
    other = hub_licence("My Corpus Licence", "https://example.org/l")
    assert other["license"] == "other" and other["license_link"] == "https://example.org/l"
    with pytest.raises(ConfigError, match="licence-url"):
        hub_licence("My Corpus Licence")
    assert size_category(0) == "n<1K" and size_category(2_000_000) == "1M<n<10M"


@pytest.mark.slow
def test_hidden_test_labels(ws, tmp_path):
    out = tmp_path / "pub"
    result = pub.publish(ws, out, card=CARD, n_boot=0, hide_test_labels=True)
    ds = _load(out)
    assert set(ds) == {"train", "dev", "test"}  # no views: they would reveal the conflict status
    test = ds["test"]
    for col in pub.LABEL_COLUMNS:
        assert all(v is None for v in test[col]), col
    assert all(v is not None for v in ds["train"]["acoustic_label"])
    assert set(_load(out, "distributions")) == {"train", "dev"}
    assert set(_load(out, "annotations")) == {"train", "dev"}
    gold = result["gold"]
    assert gold and not gold.startswith(str(out))
    g = pd.read_csv(gold)
    labels = ws.read_df("labels").set_index("clip_id")
    assert sorted(g["id"]) == sorted(test["clip_id"])
    assert (g.set_index("id")["acoustic_label"] == labels.loc[g["id"], "acoustic_label"].to_numpy()).all()
    # the gold file scores with `casebench evaluate --gold`
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r.id, "label": r.acoustic_label}) + "\n" for r in g.itertuples()))
    assert main(["evaluate", str(preds), "--gold", gold, "--taxonomy", ws.taxonomy.name, "--bootstrap", "0",
                 "--json"]) == 0
    with pytest.raises(ConfigError, match="inside the published folder"):
        pub.publish(ws, tmp_path / "pub2", card=CARD, hide_test_labels=True, gold_path=tmp_path / "pub2" / "g.csv")


def test_out_dir_rules(ws, tmp_path):
    out = tmp_path / "pub"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        pub.publish(ws, out, card=CARD)
    with pytest.raises(ConfigError, match="not a published dataset folder"):
        pub.publish(ws, out, card=CARD, overwrite=True)
    (out / "notes.txt").unlink()
    pub.publish(ws, out, card=CARD, n_boot=0)
    pub.publish(ws, out, card=CARD, n_boot=0, overwrite=True)
    assert (out / "README.md").is_file()
    with pytest.raises(ConfigError, match="inside the workspace"):
        pub.publish(ws, ws.root / "pub", card=CARD)


def test_unreadable_or_changed_audio_publishes_nothing(ws, tmp_path):
    clips = ws.read_df("clips")
    (ws.root / clips.loc[2, "path"]).write_bytes(b"RIFF changed")
    with pytest.raises(InputError) as e:
        pub.publish(ws, tmp_path / "pub", card=CARD, audit_audio=False)
    assert "clip-0002" in str(e.value) and "sha256" in str(e.value)
    assert not (tmp_path / "pub").exists() and not list(tmp_path.glob(".pub.*"))


# ---------------------------------------------------------------------------------------------- upload


def test_upload_with_only_the_network_replaced(ws, tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    out = tmp_path / "pub"
    result = pub.publish(ws, out, card=CARD, n_boot=0, repo_id="org/emo", private=True)
    repo = fake_hub.repos["org/emo"]
    assert result["upload"]["repo_id"] == "org/emo" and result["upload"]["commit_oid"] == repo["refs"]["main"]
    assert repo["type"] == "dataset" and repo["private"] and repo["created"]["visibility"] == "private"
    authed = [auth for m, p, auth in fake_hub.requests if p.startswith(("/api/repos", "/api/datasets", "/datasets"))]
    assert len(authed) >= 4 and set(authed) == {"Bearer hf_test_token"}
    [commit] = fake_hub.commits
    assert (commit["repo"], commit["branch"]) == ("org/emo", "main")
    local = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
             if p.is_file() and p.name != pub.LINEAGE_FILE}  # the lineage (local paths) stays local
    assert commit["files"] == local  # every file, byte for byte (parquet and png through LFS)
    assert any(k.endswith(".parquet") for k in commit["files"]) and len(fake_hub.lfs) >= 10
    assert fake_hub.validated[0]["configs"][1]["config_name"] == "default"


def test_upload_needs_a_token_before_any_work(ws, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-login"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        pub.publish(ws, tmp_path / "pub", card=CARD, repo_id="org/emo")
    assert not (tmp_path / "pub").exists() and not (ws.reports_dir / "audit.json").exists()


# ---------------------------------------------------------------------------------------------- CLI and demo


def test_cli_publish(ws, tmp_path, capsys):
    out = tmp_path / "pub"
    args = ["publish", str(ws.root), str(out), "--consent", CARD["consent"], "--summary", CARD["summary"],
            "--authors", CARD["authors"], "--guidelines", CARD["guidelines"], "--bootstrap", "0"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["configs"]["default"]["train"] == 12 and summary["audit"]["passed"]
    assert main([*args, "--overwrite", "--no-progress"]) == 0
    assert "leakage audit passed" in capsys.readouterr().out
    assert main(["publish", str(ws.root), str(tmp_path / "other"), "--licence", "Nonsense 1.0"]) == 2
    assert "licence-url" in capsys.readouterr().err


@pytest.mark.slow
def test_split_audit_publish_for_the_demo(ws, tmp_path):
    result = pub.split_audit_publish(ws, tmp_path / "pub", resplit=True, seed=1, ratios="0.5,0.25,0.25",
                                     card=CARD, n_boot=0)
    assert result["split"]["config"]["seed"] == 1
    assert result["audit"]["passed"] and result["audit"]["lines"][0].startswith("PASSED")
    assert result["loaded"]["default"]["train"] == result["publish"]["configs"]["default"]["train"]
    assert set(result["loaded"]) == {"default", "distributions", "annotations"}
    assert result["audio_roundtrip"] == {"checked": 5, "identical": True}


# -- staleness: a gold, a published folder and a spec record the tables they were built from ------------------


def _resplit(ws):
    """What `casebench split` records: the splits, built from the current clips and labels (the same
    speaker-disjoint assignment here, so the audit still passes)."""
    ws.write_table("splits", ws.read_df("splits"), built_from=ws.versions(["clips", "labels"]))


def _reaggregate(ws, drop_rater: str):
    """Change the annotations (a rater's ratings withdrawn) and aggregate again: the labels change."""
    from casebench.aggregate import aggregate

    ann = ws.read_df("annotations")
    ws.write_table("annotations", ann[ann["rater_id"] != drop_rater])
    return aggregate(ws)


def test_a_stale_gold_is_refused_naming_the_step_to_rerun(ws, tmp_path, capsys):
    from casebench.aggregate import aggregate
    from casebench.errors import StaleError

    aggregate(ws)
    _resplit(ws)
    result = pub.publish(ws, tmp_path / "pub", card=CARD, n_boot=0, hide_test_labels=True)
    gold = result["gold"]
    lineage = json.loads((tmp_path / "pub" / pub.LINEAGE_FILE).read_text())
    assert lineage[0]["step"] == "publish" and lineage[0]["tables"]["labels"] == ws.table_version("labels")
    assert json.loads(Path(gold + ".lineage.json").read_text()) == lineage
    g = pd.read_csv(gold)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r.id, "label": r.acoustic_label}) + "\n" for r in g.itertuples()))
    evaluate = ["evaluate", str(preds), "--gold", gold, "--taxonomy", ws.taxonomy.name, "--bootstrap", "0", "--json"]
    assert main(evaluate) == 0
    capsys.readouterr()

    # re-aggregating changes the labels: the splits, the gold and the published folder are now stale
    rater = sorted(ws.read_df("annotations")["rater_id"].unique())[0]
    report = _reaggregate(ws, rater).report
    assert any(w.startswith("labels.parquet changed after split") and f"re-run `casebench split {ws.root}`" in w
               for w in report["warnings"])
    assert any(w.startswith(f"gold {gold} is now stale") for w in report["warnings"])
    assert any(w.startswith(f"published folder {tmp_path / 'pub'} is now stale") for w in report["warnings"])
    # a copy of the workspace (a curator trying another aggregation on it) did not build that gold: re-aggregating
    # the copy said the original's gold and folder were stale and to re-publish the original
    import shutil

    copy = Workspace.open(shutil.copytree(ws.root, tmp_path / "copy"))
    warnings = _reaggregate(copy, sorted(copy.read_df("annotations")["rater_id"].unique())[1]).report["warnings"]
    assert warnings and not any("is now stale" in w for w in warnings), warnings

    assert main(evaluate) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "benchmark" in err and "is stale" in err and "labels.parquet changed after split" in err
    assert f"re-run `casebench split {ws.root}`" in err and "--allow-stale" in err
    with pytest.raises(StaleError, match="labels.parquet changed after split"):
        pub.publish(ws, tmp_path / "pub2", card=CARD, n_boot=0)

    # --allow-stale scores, prints it and records it in the results
    assert main([*evaluate, "--allow-stale"]) == 0
    out = capsys.readouterr()
    results = json.loads(out.out)
    assert results["staleness"]["allow_stale"] is True
    assert any("labels.parquet changed after split" in p for p in results["staleness"]["problems"])
    assert any(w.startswith("stale (--allow-stale): labels.parquet") for w in results["warnings"])
    assert "warning: stale (--allow-stale): labels.parquet changed after split" in out.err.replace("\n", " ")
    forced = pub.publish(ws, tmp_path / "pub2", card=CARD, n_boot=0, allow_stale=True)
    assert forced["stale"] and "labels.parquet changed after split" in forced["stale"][0]

    # re-split: the splits are fresh, the gold still comes from the old labels: re-run publish
    _resplit(ws)
    assert main(evaluate) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "labels.parquet changed after publish" in err and f"re-run `casebench publish {ws.root}" in err
    assert "after split" not in err
    pub.publish(ws, tmp_path / "pub", card=CARD, n_boot=0, hide_test_labels=True, overwrite=True)
    assert main(evaluate) == 0


def test_leaderboard_serve_refuses_a_stale_spec(ws, tmp_path, capsys):
    from casebench.aggregate import aggregate

    aggregate(ws)
    _resplit(ws)
    gold = pub.publish(ws, tmp_path / "pub", card=CARD, n_boot=0, hide_test_labels=True)["gold"]
    spec = tmp_path / "bench.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny", "version": "1", "taxonomy": ws.taxonomy.name, "gold": gold,
                                    "tasks": [{"name": "emotion", "kind": "categorical",
                                               "main_metric": "macro_f1"}]}))
    _reaggregate(ws, sorted(ws.read_df("annotations")["rater_id"].unique())[0])
    assert main(["leaderboard", "serve", "--benchmarks", str(spec), "--data-dir", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "benchmark 'tiny' is stale" in err and f"re-run `casebench split {ws.root}`" in err


def test_mixed_corpus_publishes_rating_weights_and_no_conflict_figure(ws, tmp_path):
    """A voice-only, multi-label corpus: each multi-label rating keeps its weights in the annotations config
    (before, only its strongest label was published: the raters' label sets were lost), and no voice/words
    pair heatmap is drawn for a corpus without words ratings."""
    ann = ws.read_df("annotations")
    ann = ann[ann["dimension"] != "semantic_emotion"].reset_index(drop=True)
    first = ann.index[ann["dimension"] == "acoustic_emotion"][0]
    label = ann.at[first, "value"]
    other = next(x for x in ws.taxonomy.labels if x != label)
    weights = json.dumps({label: 0.75, other: 0.25})
    ann["meta_weights"] = None
    ann.at[first, "meta_weights"] = weights
    ws.write_table("annotations", ann)
    labels = ws.read_df("labels")
    labels["semantic_label"] = None
    labels["semantic_dist"] = None
    labels["is_conflict"] = False
    labels["conflict_type"] = None
    ws.write_table("labels", labels)
    ws.set_section("annotation", {**ws.section("annotation"), "mixed_emotions": True})
    out = tmp_path / "pub"
    pub.publish(ws, out, card=CARD, n_boot=20, validate=False)
    rows = pd.concat([pq.read_table(p).to_pandas() for p in (out / "annotations").glob("*.parquet")])
    row = rows[(rows["clip_id"] == ann.at[first, "clip_id"]) & (rows["dimension"] == "acoustic_emotion")
               & rows["weights"].notna()]
    assert len(row) == 1 and json.loads(row["weights"].iloc[0]) == {label: 0.75, other: 0.25}
    assert row["value"].iloc[0] == label and rows["weights"].notna().sum() == 1
    text = (out / "README.md").read_text()
    assert "conflict_pairs.png" not in text and not (out / "images" / "conflict_pairs.png").exists()
    assert "- `weights` (string)" in text
    # the card promised "a binary α per class" and showed none: now a table of the classes chosen
    assert "| acoustic_emotion | masi |" in text and "| class | ratings choosing it | binary α |" in text
    from casebench.agreement import agreement_report
    from casebench.annotation_schema import label_set_of

    emo = ann[ann["dimension"] == "acoustic_emotion"]
    sets = emo.assign(value=[label_set_of(v, w) for v, w in zip(emo["value"], emo["meta_weights"], strict=True)])
    rep = agreement_report(sets[["clip_id", "rater_id", "dimension", "value"]], level="masi", n_boot=0,
                           value_domain=list(ws.taxonomy.labels))["per_class_alpha"][other]
    assert f"| {other} | {rep['n_chosen']} | {rep['value']:.3f} [" in text
