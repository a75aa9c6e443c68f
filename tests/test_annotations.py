"""The agreement step: ratings from a workspace, a long table or a Label Studio export."""

import json

import krippendorff
import numpy as np
import pandas as pd
import pytest

from casebench.annotations import run_agreement
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.testing import make_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("agree"), n_clips=30, with_annotations=True, seed=3)


def test_workspace_alpha_equals_krippendorff_package(ws):
    res = run_agreement(ws.root, n_boot=100)
    df = ws.read_df("annotations")
    for dim, level in (("acoustic_emotion", "nominal"), ("valence", "interval")):
        part = df[df.dimension == dim]
        raters, clips = sorted(part.rater_id.unique()), sorted(part.clip_id.unique())
        m = np.full((len(raters), len(clips)), np.nan)
        labels = list(ws.taxonomy.labels)
        for r in part.itertuples():
            v = labels.index(r.value) if level == "nominal" else float(r.value_num)
            m[raters.index(r.rater_id), clips.index(r.clip_id)] = v
        domain = list(range(len(labels))) if level == "nominal" else None
        ref = krippendorff.alpha(reliability_data=m, level_of_measurement=level, value_domain=domain)
        got = res["dimensions"][dim]
        assert got["krippendorff_alpha"]["value"] == pytest.approx(ref, abs=1e-9)
        assert got["level"] == level and got["level_source"].startswith("annotation schema")


def test_long_table_needs_a_level_and_names_the_dimension(tmp_path):
    p = tmp_path / "ratings.csv"
    pd.DataFrame({"clip_id": ["a", "a", "b", "b"], "rater_id": ["x", "y", "x", "y"],
                  "value": ["1", "2", "3", "3"]}).to_csv(p, index=False)
    with pytest.raises(ConfigError, match="--level"):
        run_agreement(p)
    res = run_agreement(p, level="interval", n_boot=50)
    assert res["dimensions"]["value"]["level_source"] == "--level"
    with pytest.raises(ConfigError, match="did you mean 'value'"):
        run_agreement(p, level="interval", dimension="valeu")


def test_missing_columns_are_named(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("clip,rater_id,value\na,x,1\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['clip_id'\]"):
        run_agreement(p, level="nominal")


def test_label_studio_export_file(tmp_path):
    # An export in the shape Label Studio writes (one task, two raters; completed_by as an id) for a bare file
    tasks = [{"id": 1, "data": {"clip_id": "c1", "audio": "/data/local-files/?d=a.wav"}, "annotations": [
        {"id": 10 + r, "completed_by": r, "was_cancelled": False, "ground_truth": False, "lead_time": 3.0,
         "created_at": "2025-01-01T10:00:00Z", "result": [
             {"from_name": "acoustic_emotion", "to_name": "audio", "type": "choices",
              "value": {"choices": ["sad"]}}]} for r in (1, 2)]},
        {"id": 2, "data": {"clip_id": "c2", "audio": "/data/local-files/?d=b.wav"}, "annotations": [
            {"id": 20 + r, "completed_by": r, "was_cancelled": False, "ground_truth": False, "lead_time": 3.0,
             "created_at": "2025-01-01T10:00:00Z", "result": [
                 {"from_name": "acoustic_emotion", "to_name": "audio", "type": "choices",
                  "value": {"choices": [lab]}}]} for r, lab in ((1, "angry"), (2, "happy"))]}]
    p = tmp_path / "export.json"
    p.write_text(json.dumps(tasks))
    res = run_agreement(p, n_boot=20)
    r = res["dimensions"]["acoustic_emotion"]
    assert (r["n_units"], r["n_raters"], r["n_ratings"]) == (2, 2, 4)


def test_cli_writes_report_with_heatmaps(ws, capsys):
    assert main(["agreement", str(ws.root), "--bootstrap", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["dimensions"]) >= {"acoustic_emotion", "semantic_emotion", "valence"}
    rep = ws.reports_dir / "agreement"
    assert (rep / "index.html").exists() and (rep / "agreement.json").exists()
    assert (rep / "raters_acoustic_emotion.png").stat().st_size > 1000


def test_dimensions_asked_in_both_projects_are_split_by_channel(tmp_path):
    import pandas as pd

    from casebench.labelstudio import merge_annotations
    from casebench.testing import make_workspace

    ws = make_workspace(tmp_path, n_clips=6, with_annotations=True, seed=1)
    rows = []
    for clip in ws.read_df("clips").clip_id:
        for r in ("r1", "r2"):
            for ch, v in (("acoustic", "4"), ("semantic", "2")):
                rows.append({"clip_id": clip, "rater_id": r, "dimension": "confidence", "value": v,
                             "value_num": float(v), "source": f"test:{ch}", "cancelled": False,
                             "ground_truth": False, "annotation_id": f"{clip}-{r}-{ch}", "meta_channel": ch,
                             "created_at": pd.Timestamp("2026-01-01", tz="UTC")})
    merge_annotations(ws, rows)
    res = run_agreement(ws.root, n_boot=0)
    assert {"confidence:acoustic", "confidence:semantic"} <= set(res["dimensions"])
    assert res["dimensions"]["confidence:acoustic"]["n_ratings"] == 12


def test_masi_agreement_on_a_long_csv_with_weighted_values(tmp_path, capsys):
    """`casebench agreement ratings.csv --level masi` on the long table a curator imports ('a:3;b:1' values):
    the weights are dropped (MASI compares sets) and the result sits under krippendorff_alpha."""
    import json

    from casebench.cli import main
    from casebench.testing import write_mixed_example

    info = write_mixed_example(tmp_path, n_clips=12, n_raters=6, seed=2)
    assert main(["agreement", info["ratings_csv"], "--level", "masi", "--dimension", "acoustic_emotion",
                 "--bootstrap", "50", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["dimensions"]["acoustic_emotion"]
    assert rep["level"] == "masi" and rep["n_raters"] == 6 and rep["n_units"] == 12
    assert 0 < rep["krippendorff_alpha"]["value"] < 1 and all(":" not in v for v in rep["value_domain"])
    # without --level: label-set values can only be compared as sets, so masi (the message listed only
    # nominal|ordinal|interval|ratio, none of which fits 'a;b' values)
    assert main(["agreement", info["ratings_csv"], "--dimension", "acoustic_emotion", "--bootstrap", "50",
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["dimensions"]["acoustic_emotion"]
    assert again["level"] == "masi" and again["krippendorff_alpha"] == rep["krippendorff_alpha"]
    assert main(["agreement", info["ratings_csv"], "--dimension", "valence"]) == 2
    assert "or masi for label sets" in capsys.readouterr().err
