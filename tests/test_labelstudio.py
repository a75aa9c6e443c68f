"""Tests of casebench.labelstudio: generated labelling configs, export and CSV import, and (marked slow) the
round trip through a real Label Studio server started by the ``label_studio`` fixture (tests/conftest.py):
push a synthesized workspace, post annotations of simulated raters through the SDK, pull them back,
aggregate, and compare agreement with the ``krippendorff`` package.

The golden exports in tests/assets/labelstudio/ were produced by that server (see the README there);
``CASEBENCH_REGEN_GOLDEN=1 pytest -m slow tests/test_labelstudio.py -k golden`` writes them again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from casebench import labelstudio as L
from casebench.aggregate import aggregate
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.taxonomy import get_taxonomy, list_taxonomies
from casebench.testing import VAD, make_workspace

GOLDEN = Path(__file__).parent / "assets" / "labelstudio"


# --------------------------------------------------------------------------------------------------
# Labelling configs


@pytest.mark.parametrize("taxonomy", list_taxonomies())
def test_configs_are_generated_from_the_taxonomy_and_validate(taxonomy):
    from label_studio_sdk.label_interface import LabelInterface

    schema = L.AnnotationSchema.from_config({}, taxonomy)
    acoustic = LabelInterface(L.labeling_config(schema, "acoustic"))
    semantic = LabelInterface(L.labeling_config(schema, "semantic"))
    # control names are the dimension names; each project asks only its own emotion
    assert {c.name for c in acoustic.controls} == {"acoustic_emotion", "valence", "arousal", "dominance", "confidence",
                                      "is_ambiguous"}
    assert {c.name for c in semantic.controls} == {"semantic_emotion", "confidence", "is_ambiguous"}
    assert acoustic.get_control("acoustic_emotion").labels == list(get_taxonomy(taxonomy).labels)
    # the voice project shows no text, the words project plays no audio
    assert [(o.tag, o.value) for o in acoustic.objects] == [("Audio", "$audio")]
    assert [(o.tag, o.value) for o in semantic.objects] == [("Text", "$transcript")]
    assert "$transcript" not in L.labeling_config(schema, "acoustic")
    assert "$audio" not in L.labeling_config(schema, "semantic")


def test_config_options_mixed_mode_scales_and_custom_dimensions():
    from label_studio_sdk.label_interface import LabelInterface

    schema = L.AnnotationSchema.from_config(
        {"dimensions": ["acoustic_emotion", "semantic_emotion", "valence", "arousal", "confidence", "noise"],
         "scale": [1, 7], "vad_widget": "choices", "mixed_emotions": True, "mixed_weight_max": 3,
         "custom": {"noise": {"kind": "choices", "values": ["clean", "noisy"], "project": "acoustic"}}},
        "iemocap4")
    li = LabelInterface(L.labeling_config(schema, "acoustic"))
    assert li.get_control("valence").tag == "Choices" and li.get_control("valence").labels == list("1234567")
    assert li.get_control("acoustic_emotion").attr["choice"] == "multiple"
    weight = li.get_control("acoustic_emotion_weight_sad")
    assert weight.tag == "Rating" and weight.attr["maxRating"] == "3"
    assert li.get_control("noise").labels == ["clean", "noisy"]
    assert "dominance" not in {c.name for c in li.controls}  # not declared
    assert set(schema.projects["semantic"]) == {"semantic_emotion", "confidence"}


def test_bad_configs_are_config_errors():
    with pytest.raises(ConfigError, match="scale"):
        L.AnnotationSchema.from_config({"scale": [0, 4]}, "ekman7")  # stars count from 1
    assert L.AnnotationSchema.from_config({"scale": [0, 4], "vad_widget": "choices"}, "ekman7")
    with pytest.raises(ConfigError, match="separate projects"):
        L.AnnotationSchema.from_config({"acoustic_dimensions": ["semantic_emotion"]}, "ekman7")
    with pytest.raises(ConfigError, match="raters_per_clip"):
        L.AnnotationSchema.from_config({"raters_per_clip": 0}, "ekman7")
    with pytest.raises(ConfigError, match="not a valid Label Studio config"):
        L.validate_labeling_config('<View><Choices name="x" toName="nowhere"><Choice value="a"/></Choices></View>')


def test_workspace_schema_and_config_command(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=2)
    assert main(["annotate", "config", str(ws.root), "--project", "semantic"]) == 0
    out = capsys.readouterr().out
    assert 'name="semantic_emotion"' in out and "<Audio" not in out
    paths = L.write_labeling_configs(ws)
    assert sorted(paths) == ["acoustic", "semantic"] and paths["acoustic"].read_text().startswith("<View>")


# --------------------------------------------------------------------------------------------------
# Parsing exports (no server)


def _task(task_id, clip_id, annotations, drafts=(), data=None):
    data = data if data is not None else {"audio": f"/data/local-files/?d=ws/audio/{clip_id}.wav", "clip_id": clip_id}
    return {"id": task_id, "data": data, "annotations": list(annotations), "drafts": list(drafts), "predictions": []}


def _ann(ann_id, rater, result, **kw):
    return {"id": ann_id, "completed_by": rater, "result": result, "was_cancelled": False, "ground_truth": False,
            "lead_time": 3.0, "created_at": "2024-05-01T10:00:00.000000Z", "project": 1, **kw}


def _region_id(*parts) -> str:
    """A 10-character result id, as the labelling UI gives every result item."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


def _choice(name, *labels, to="audio"):
    return {"id": _region_id(name, labels), "from_name": name, "to_name": to, "type": "choices",
            "value": {"choices": list(labels)}, "origin": "manual"}


def _rating(name, v, to="audio"):
    return {"id": _region_id(name, v), "from_name": name, "to_name": to, "type": "rating", "value": {"rating": v},
            "origin": "manual"}


SCHEMA = L.AnnotationSchema.from_config({}, "ekman7")


def test_parse_export_rules():
    summary = L.ImportSummary()
    tasks = [
        _task(1, "clip-0000", [
            _ann(11, 2, [_choice("acoustic_emotion", "sad"), _rating("valence", 2), _choice("is_ambiguous", "yes")]),
            _ann(12, {"id": 3, "email": "b@x.org"}, [], was_cancelled=True),
            _ann(13, 4, [_choice("acoustic_emotion", "angry")], ground_truth=True),
            _ann(14, 5, []),  # empty result, not cancelled: reported, not stored
        ], drafts=[{"id": 1, "user": "a@x.org", "result": [_choice("acoustic_emotion", "fear")]}]),
        _task(2, None, [_ann(21, 2, [_choice("acoustic_emotion", "happy")])], data={"audio": "x.wav"}),
    ]
    rows = L.parse_export(tasks, SCHEMA, summary=summary)
    by = {(r["annotation_id"], r["dimension"]): r for r in rows}
    assert by[("11", "acoustic_emotion")]["value"] == "sad" and by[("11", "acoustic_emotion")]["rater_id"] == "2"
    assert by[("11", "valence")]["value_num"] == 2.0
    assert by[("11", "is_ambiguous")]["value"] == "true" and by[("11", "is_ambiguous")]["value_num"] == 1.0
    cancelled = by[("12", "acoustic_emotion")]
    assert cancelled["cancelled"] and cancelled["value"] is None and cancelled["rater_id"] == "3"
    assert by[("13", "acoustic_emotion")]["ground_truth"]
    assert by[("21", "acoustic_emotion")]["clip_id"] == "2"  # no data.clip_id: keyed by the task id
    assert all(r["meta_channel"] == "acoustic" for r in rows)
    assert by[("11", "valence")]["source"] == "label-studio:1/1/11"
    assert summary.empty == ["14"] and summary.drafts == 1 and summary.cancelled == 1 and summary.ground_truth == 1
    assert summary.tasks == 2 and summary.annotations == 5 and summary.rows == len(rows) == 6


def test_unknown_control_names_the_file_task_annotation_and_from_name():
    tasks = [_task(7, "c1", [_ann(70, 2, [_choice("emotion", "sad"), _choice("acoustic_emotin", "sad")])])]
    with pytest.raises(InputError) as e:
        L.parse_export(tasks, SCHEMA, file="export.json")
    text = str(e.value)
    assert "export.json" in text and "task 7 annotation 70" in text and "from_name 'emotion'" in text
    assert "--map emotion=DIMENSION" in text and "did you mean 'acoustic_emotion'?" in text
    assert len(e.value.problems) == 2
    renamed = [_task(7, "c1", [_ann(70, 2, [_choice("emotion", "sad")])])]
    rows = L.parse_export(renamed, SCHEMA, mapping={"emotion": "acoustic_emotion"})
    assert [(r["dimension"], r["value"]) for r in rows] == [("acoustic_emotion", "sad")]
    with pytest.raises(InputError, match="not a dimension"):
        L.parse_export([], SCHEMA, mapping={"emotion": "acoustic"})


def test_bad_values_are_reported_all_at_once():
    tasks = [_task(1, "c1", [_ann(1, 2, [_choice("acoustic_emotion", "angy"), _rating("valence", 9),
                                          _choice("is_ambiguous", "maybe")])]),
             {"no": "task"}]
    with pytest.raises(InputError) as e:
        L.parse_export(tasks, SCHEMA, file="f.json")
    found = [p.found for p in e.value.problems]
    assert len(found) == 4 and "label 'angy'" in found[0] and "rating" in found[1]
    assert e.value.problems[0].hint == "did you mean 'angry'?"
    with pytest.raises(InputError, match="list of tasks"):
        L.parse_export({"tasks": []}, SCHEMA)


def test_mixed_emotion_weights():
    schema = L.AnnotationSchema.from_config({"mixed_emotions": True}, "ekman7")
    tasks = [_task(1, "c1", [_ann(1, 2, [_choice("acoustic_emotion", "sad", "angry"),
                                         _rating("acoustic_emotion_weight_sad", 3),
                                         _rating("acoustic_emotion_weight_angry", 1)]),
                             _ann(2, 3, [_choice("acoustic_emotion", "sad", "angry")])])]
    rows = L.parse_export(tasks, schema)
    assert rows[0]["value"] == "sad" and json.loads(rows[0]["meta_weights"]) == {"angry": 0.25, "sad": 0.75}
    assert rows[1]["value"] == "angry" and json.loads(rows[1]["meta_weights"]) == {"angry": 0.5, "sad": 0.5}


def test_import_twice_adds_nothing_and_edits_replace(tmp_path):
    ws = make_workspace(tmp_path, n_clips=2)
    export = [_task(1, "clip-0000", [_ann(1, 2, [_choice("acoustic_emotion", "sad"), _rating("valence", 2)])]),
              _task(2, "clip-0001", [_ann(2, 2, [_choice("acoustic_emotion", "fear")])])]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    first = L.import_export(ws, path)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    again = L.import_export(ws, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert ws.read_table("annotations").num_rows == 3
    # the rater changed their answer on the server and dropped the valence rating
    export[0]["annotations"][0]["result"] = [_choice("acoustic_emotion", "angry")]
    edited = L.import_export(ws, export)
    assert (edited.added, edited.updated, edited.unchanged) == (0, 1, 1)
    df = ws.read_df("annotations")
    assert len(df) == 2 and set(df["value"]) == {"angry", "fear"}


def test_import_rejects_clips_not_in_the_workspace(tmp_path):
    ws = make_workspace(tmp_path, n_clips=2)
    with pytest.raises(InputError, match="clip-0009"):
        L.import_export(ws, [_task(1, "clip-0009", [_ann(1, 2, [_choice("acoustic_emotion", "sad")])])])
    assert not ws.has_table("annotations")


def test_import_cli_with_map_and_json(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=1)
    path = tmp_path / "other.json"
    path.write_text(json.dumps([_task(1, "clip-0000", [_ann(5, 2, [_choice("emotion", "sad")])])]))
    assert main(["annotate", "import", str(ws.root), str(path)]) == 2
    assert "from_name 'emotion'" in capsys.readouterr().err
    assert main(["annotate", "import", str(ws.root), str(path), "--map", "emotion=acoustic_emotion", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["added"] == 1 and summary["files"] == [str(path)]
    path.write_text("[{")
    assert main(["annotate", "import", str(ws.root), str(path)]) == 2
    assert f"{path}:1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The golden exports made by the real server (tests/assets/labelstudio/README.md)


def test_import_golden_export(tmp_path):
    ws = make_workspace(tmp_path, n_clips=3, seed=7)
    summary = L.import_exports(ws, [GOLDEN / "export-acoustic.json", GOLDEN / "export-semantic.json"])
    df = ws.read_df("annotations")
    # acoustic: rater A 3 full annotations (6 dims), rater B 1 full + 1 skipped + 1 ground truth (full),
    # rater C 1 empty result; semantic: raters A and B 3 each (3 dims)
    assert summary.tasks == 6 and summary.annotations == 13
    assert summary.cancelled == 1 and summary.ground_truth == 1 and summary.drafts == 1
    assert len(summary.empty) == 1
    assert len(df) == 5 * 6 + 1 + 6 * 3
    assert int(df["cancelled"].sum()) == 1 and df.loc[df["cancelled"], "value"].isna().all()
    assert set(df.loc[df["ground_truth"], "dimension"]) == set(SCHEMA.projects["acoustic"])
    assert set(df["clip_id"]) == {"clip-0000", "clip-0001", "clip-0002"}
    assert set(df["meta_channel"]) == {"acoustic", "semantic"}
    amb = df[df["dimension"] == "is_ambiguous"]
    assert set(amb["value"]) <= {"true", "false"} and set(amb["value_num"]) <= {0.0, 1.0}
    assert df["source"].str.match(r"label-studio:\d+/\d+/\d+$").all()
    assert df["created_at"].notna().all() and (df["lead_time_s"].dropna() > 0).all()
    again = L.import_exports(ws, [GOLDEN / "export-acoustic.json", GOLDEN / "export-semantic.json"])
    assert again.added == 0 and again.unchanged == len(df)
    labels = aggregate(ws).labels.set_index("clip_id")
    assert labels["acoustic_label"].notna().all() and labels["semantic_label"].notna().all()


# --------------------------------------------------------------------------------------------------
# Long CSV


def test_import_csv_with_line_numbered_errors(tmp_path, capsys):
    ws = make_workspace(tmp_path, n_clips=2)
    good = tmp_path / "ratings.csv"
    good.write_text("clip_id,rater_id,dimension,value,cancelled\n"
                    "clip-0000,r1,acoustic_emotion,sad,\n"
                    "clip-0000,r1,valence,4,false\n"
                    "clip-0001,r2,is_ambiguous,yes,\n"
                    "clip-0001,r2,acoustic_emotion,,true\n")
    summary = L.import_csv(ws, good)
    assert (summary.rows, summary.added, summary.cancelled) == (4, 4, 1)
    df = ws.read_df("annotations")
    assert df["source"].eq("csv:ratings.csv").all() and df["annotation_id"].isna().all()
    assert df.set_index("dimension").loc["is_ambiguous", "value"] == "true"
    assert L.import_csv(ws, good).unchanged == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,rater_id,dimension,value\n"
                   "clip-0000,r1,acoustic_emotion,sadd\n"
                   "clip-0000,r1,valance,3\n"
                   ",r1,valence,3\n"
                   "clip-0000,r1,arousal,8\n")
    assert main(["annotate", "import-csv", str(ws.root), str(bad)]) == 2
    err = capsys.readouterr().err
    for line, what in ((2, "did you mean 'sad'"), (3, "did you mean 'valence'"), (4, "clip_id"), (5, "from 1 to 5")):
        assert f"bad.csv:{line}" in err and what in err
    missing = tmp_path / "missing.csv"
    missing.write_text("clip,rater_id,dimension,value\n")
    with pytest.raises(InputError, match="missing \\['clip_id'\\]"):
        L.import_csv(ws, missing)


def test_import_csv_keeps_multi_label_values_and_weight_columns(tmp_path, capsys):
    """'a;b' and 'a:3;b:1' cells, and one label per row with a weight column, are weighted ratings (the
    strongest label as value, normalised weights in meta_weights), as a mixed Label Studio answer is."""
    ws = make_workspace(tmp_path, n_clips=2)
    cells = tmp_path / "cells.csv"
    cells.write_text("clip_id,rater_id,dimension,value\n"
                     "clip-0000,r1,acoustic_emotion,sad;angry\n"
                     "clip-0000,r2,acoustic_emotion,sad:1;angry:3\n"
                     "clip-0001,r1,acoustic_emotion,happy\n")
    summary = L.import_csv(ws, cells)
    assert (summary.rows, summary.multi_label) == (3, 2)
    df = ws.read_df("annotations").set_index(["clip_id", "rater_id"])
    assert df.loc[("clip-0000", "r1"), "value"] == "angry"  # equal weights: first in taxonomy order
    assert json.loads(df.loc[("clip-0000", "r1"), "meta_weights"]) == {"angry": 0.5, "sad": 0.5}
    assert json.loads(df.loc[("clip-0000", "r2"), "meta_weights"]) == {"angry": 0.75, "sad": 0.25}
    assert pd.isna(df.loc[("clip-0001", "r1"), "meta_weights"])
    rows = tmp_path / "rows.csv"
    rows.write_text("clip_id,rater_id,dimension,value,weight\n"
                    "clip-0001,r3,acoustic_emotion,fear,1\n"
                    "clip-0001,r3,acoustic_emotion,sad,4\n")
    assert L.import_csv(ws, rows).rows == 1
    row = ws.read_df("annotations").set_index("rater_id").loc["r3"]
    assert row["value"] == "sad" and json.loads(row["meta_weights"]) == {"fear": 0.2, "sad": 0.8}
    labels = aggregate(ws).labels.set_index("clip_id")
    taxonomy = list(get_taxonomy("ekman7").labels)
    dist = dict(zip(taxonomy, labels.loc["clip-0000", "acoustic_dist"], strict=True))
    assert dist["angry"] == pytest.approx(0.625) and dist["sad"] == pytest.approx(0.375)
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,rater_id,dimension,value,weight\n"
                   "clip-0000,r1,acoustic_emotion,sad;angyr,\n"
                   "clip-0000,r1,acoustic_emotion,sad:x,\n"
                   "clip-0000,r4,acoustic_emotion,sad;angry,2\n"
                   "clip-0000,r1,valence,3,2\n")
    assert main(["annotate", "import-csv", str(ws.root), str(bad)]) == 2
    err = capsys.readouterr().err
    for line, what in ((2, "did you mean 'angry'"), (3, "not a number"), (4, "one label per row"), (5, "weight")):
        assert f"bad.csv:{line}" in err and what in err


def test_import_csv_warns_when_a_corrected_file_repeats_an_earlier_ones_ratings(tmp_path, capsys):
    """A curator fixes ratings.csv and imports it as ratings-v2.csv: every rating was added a second time (the
    source, csv:<file name>, is part of the key) with no word; aggregate then kept the latest and agreement
    refused 'rated this clip 2 times'. Now the import says so and how to replace the earlier file's ratings."""
    ws = make_workspace(tmp_path, n_clips=2)
    first, second = tmp_path / "ratings.csv", tmp_path / "ratings-v2.csv"
    first.write_text("clip_id,rater_id,dimension,value\nclip-0000,r1,acoustic_emotion,sad\n"
                     "clip-0001,r1,acoustic_emotion,happy\n")
    second.write_text("clip_id,rater_id,dimension,value\nclip-0000,r1,acoustic_emotion,angry\n"
                      "clip-0001,r2,acoustic_emotion,happy\n")
    assert L.import_csv(ws, first).warnings == []
    assert main(["annotate", "import-csv", str(ws.root), str(second)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("warning: 1 rating(s) repeat a clip, rater and dimension already rated from another source "
            "(csv:ratings.csv: 1)") in out and "--source csv:ratings.csv" in out
    # the advice works: the same file imported under the earlier source replaces its ratings
    again = L.import_csv(ws, second, source="csv:ratings.csv")
    df = ws.read_df("annotations")
    live = df[df["source"] == "csv:ratings.csv"].set_index(["clip_id", "rater_id"])
    assert live.loc[("clip-0000", "r1"), "value"] == "angry" and again.updated == 1


def test_semantic_tasks_take_the_prompt_where_transcription_failed(tmp_path):
    """A transcripts row with a null text (a transcription that failed the quality checks) falls back to the
    clip's text_prompt, and a clip with neither is named; never a NaN in the task JSON (issue 15)."""
    ws = make_workspace(tmp_path, n_clips=3, with_transcripts=True)
    t = ws.read_df("transcripts")
    t.loc[t["clip_id"] == "clip-0001", "text"] = None
    ws.write_table("transcripts", t)
    data = {d["clip_id"]: d for d in L.task_data(ws, "semantic")}
    clips = ws.read_df("clips").set_index("clip_id")
    assert data["clip-0001"]["transcript"] == clips.loc["clip-0001", "text_prompt"]
    json.dumps(list(data.values()), allow_nan=False)
    c = ws.read_df("clips")
    c.loc[c["clip_id"] == "clip-0001", "text_prompt"] = None
    ws.write_table("clips", c)
    with pytest.raises(InputError, match="clip-0001"):
        L.task_data(ws, "semantic")


def test_init_labels_and_raters_write_the_annotation_schema(tmp_path):
    from casebench.annotation_schema import AnnotationSchema
    from casebench.workspace import Workspace

    assert main(["init", str(tmp_path / "m"), "--taxonomy", "plutchik32", "--labels", "mixed", "--raters", "20"]) == 0
    schema = AnnotationSchema.from_workspace(Workspace.open(tmp_path / "m"))
    assert (schema.label_mode, schema.raters_per_clip) == ("mixed", 20)
    assert 'choice="multiple"' in L.labeling_config(schema, "acoustic")
    assert main(["init", str(tmp_path / "x"), "--labels", "several"]) == 2


# --------------------------------------------------------------------------------------------------
# The real server (slow)

N_CLIPS, N_RATERS, P_RIGHT, SEED = 16, 5, 0.7, 11


def expected_majority_accuracy(n: int, k: int, p: float) -> float:
    """P(the true label gets strictly more of ``n`` votes than any other of ``k`` labels) when each vote is
    right with probability ``p`` and otherwise uniform over the ``k - 1`` wrong labels: exact, by
    enumerating how the wrong votes fall.

    >>> round(expected_majority_accuracy(3, 2, 0.7), 3)   # plain majority of 3: p^3 + 3 p^2 (1-p)
    0.784
    """
    total = 0.0
    for right in range(n + 1):
        p_right = math.comb(n, right) * p**right * (1 - p) ** (n - right)
        wrong = n - right
        if wrong == 0:
            total += p_right if right > 0 else 0.0
            continue
        wins = sum(1 for fall in itertools.product(range(k - 1), repeat=wrong)
                   if max(np.bincount(fall, minlength=k - 1)) < right)
        total += p_right * wins / (k - 1) ** wrong
    return total


def _binomial_interval(n: int, p: float, alpha: float = 0.001) -> tuple[int, int]:
    from scipy.stats import binom

    return int(binom.ppf(alpha / 2, n, p)), int(binom.isf(alpha / 2, n, p))


def _noisy(rng: random.Random, truth: str, labels: list[str]) -> str:
    return truth if rng.random() < P_RIGHT else rng.choice([x for x in labels if x != truth])


def _simulate(ls, ws, raters, seed: int) -> dict:
    """Post one annotation per simulated rater per task of both projects; return what was posted."""
    rng = random.Random(seed)
    labels = list(ws.taxonomy.labels)
    clips = ws.read_df("clips").set_index("clip_id")
    recorded = ws.section("annotation")["label_studio"]
    posted: dict = {}
    jobs = []
    for kind in ("acoustic", "semantic"):
        project = recorded[f"{kind}_project"]
        obj = "audio" if kind == "acoustic" else "transcript"
        for task in ls.tasks.list(project=project, fields="all"):
            clip = task.data["clip_id"]
            truth = clips.loc[clip, f"intended_{kind}"]
            for rater in raters:
                emotion = _noisy(rng, truth, labels)
                values = {f"{kind}_emotion": emotion}
                result = [_choice(f"{kind}_emotion", emotion, to=obj)]
                if kind == "acoustic":
                    for d, dim in enumerate(("valence", "arousal", "dominance")):
                        v = min(5, max(1, round(VAD[truth][d] + rng.uniform(-1, 1))))
                        values[dim] = v
                        result.append(_rating(dim, v, to=obj))
                conf = rng.randint(3, 5)
                amb = "yes" if rng.random() < 0.1 else "no"
                values.update(confidence=conf, is_ambiguous=amb)
                result += [_rating("confidence", conf, to=obj), _choice("is_ambiguous", amb, to=obj)]
                posted[(kind, clip, str(rater.id))] = values
                jobs.append((task.id, rater.id, result, round(rng.uniform(2, 20), 2)))

    def post(job):
        task_id, user_id, result, lead = job
        return ls.annotations.create(id=task_id, result=result, completed_by=user_id, lead_time=lead).id

    with ThreadPoolExecutor(4) as pool:  # the dev server answers requests in threads
        list(pool.map(post, jobs))
    return posted


@pytest.fixture(scope="module")
def round_trip(label_studio):
    """Push a synthesized workspace, post simulated raters' annotations (plus a skip, a ground truth, a draft
    and an empty result), pull twice."""
    import httpx

    server = label_studio
    ws = make_workspace(server.document_root, n_clips=N_CLIPS, seed=SEED, with_audio=True, subdir="sim",
                        raters_per_clip=N_RATERS)
    pushed = L.push(ws, server.url, server.token, document_root=server.document_root)
    with L.connect(server.url, server.token) as ls:
        raters = [ls.users.create(username=f"sim{i}", email=f"sim{i}@casebench.test", password="sim-password-1")
                  for i in range(N_RATERS)]
        posted = _simulate(ls, ws, raters, SEED)
        extra = ls.users.create(username="skipper", email="skipper@casebench.test", password="sim-password-1")
        rec = ws.section("annotation")["label_studio"]
        acoustic_tasks = list(ls.tasks.list(project=rec["acoustic_project"], fields="all"))
        semantic_tasks = list(ls.tasks.list(project=rec["semantic_project"], fields="all"))
        for task in acoustic_tasks[:3]:  # skipped by a sixth rater
            ls.annotations.create(id=task.id, result=[], completed_by=extra.id, was_cancelled=True)
        ls.annotations.create(id=semantic_tasks[0].id, result=[], completed_by=extra.id)  # submitted empty
        gt = ls.annotations.create(id=semantic_tasks[1].id, completed_by=extra.id, ground_truth=True,
                                   result=[_choice("semantic_emotion", "neutral", to="transcript")])
        r = httpx.post(f"{server.url}/api/tasks/{acoustic_tasks[4].id}/drafts",
                       headers={"Authorization": f"Token {server.token}"},
                       json={"result": [_choice("acoustic_emotion", "sad")], "lead_time": 1.0})
        assert r.status_code == 201, r.text
        first = L.pull(ws, server.url, server.token)
        second = L.pull(ws, server.url, server.token)
        yield SimpleNamespace(ws=ws, pushed=pushed, posted=posted, first=first, second=second, ls=ls,
                               raters=raters, extra=extra, gt=gt, server=server, acoustic_tasks=acoustic_tasks,
                               semantic_tasks=semantic_tasks)


@pytest.mark.slow
def test_push_makes_separate_projects_with_overlap_and_served_audio(round_trip):
    import httpx

    rt, ls = round_trip, round_trip.ls
    projects = rt.pushed["projects"]
    assert {k: p["tasks_added"] for k, p in projects.items()} == {"acoustic": N_CLIPS, "semantic": N_CLIPS}
    acoustic = ls.projects.get(id=projects["acoustic"]["project"])
    semantic = ls.projects.get(id=projects["semantic"]["project"])
    assert acoustic.maximum_annotations == semantic.maximum_annotations == N_RATERS
    assert "<Audio" in acoustic.label_config and "<Text" not in acoustic.label_config
    assert "<Text" in semantic.label_config and "<Audio" not in semantic.label_config
    clips = rt.ws.read_df("clips").set_index("clip_id")
    for task in rt.acoustic_tasks:
        assert set(task.data) == {"audio", "clip_id", "speaker_id"}  # no text leaks into the voice project
    for task in rt.semantic_tasks:
        assert set(task.data) == {"transcript", "clip_id", "speaker_id"}
        assert task.data["transcript"] == clips.loc[task.data["clip_id"], "text_prompt"]
    task = rt.acoustic_tasks[0]
    audio = httpx.get(rt.server.url + task.data["audio"], headers={"Authorization": f"Token {rt.server.token}"})
    assert audio.status_code == 200
    assert audio.content == rt.ws.resolve(clips.loc[task.data["clip_id"], "path"]).read_bytes()
    storages = ls.import_storage.local.list(project=acoustic.id)
    assert [Path(s.path) for s in storages] == [rt.ws.audio_dir.resolve()]
    # pushing again adds nothing
    again = L.push(rt.ws, rt.server.url, rt.server.token, document_root=rt.server.document_root)
    assert {k: (p["created"], p["tasks_added"]) for k, p in again["projects"].items()} == {
        "acoustic": (False, 0), "semantic": (False, 0)}


@pytest.mark.slow
def test_pull_writes_one_row_per_rater_clip_dimension(round_trip):
    rt = round_trip
    df = rt.ws.read_df("annotations")
    counted = df[~df["cancelled"]]
    n_acoustic, n_semantic = N_CLIPS * N_RATERS * 6, N_CLIPS * N_RATERS * 3
    assert len(counted) == n_acoustic + n_semantic + 1  # + the ground-truth semantic rating
    assert not counted.duplicated(["annotation_id", "dimension"]).any()
    assert int(df["cancelled"].sum()) == 3 and df.loc[df["cancelled"], "rater_id"].eq(str(rt.extra.id)).all()
    assert rt.first.cancelled == 3 and rt.first.drafts == 1 and rt.first.ground_truth == 1
    assert len(rt.first.empty) == 1
    gt = df[df["ground_truth"]]
    assert list(gt["annotation_id"].unique()) == [str(rt.gt.id)] and gt["value"].tolist() == ["neutral"]
    # every posted value came back, as the right rater, clip and channel
    for (kind, clip, rater), values in rt.posted.items():
        got = counted[(counted["clip_id"] == clip) & (counted["rater_id"] == rater)
                      & (counted["meta_channel"] == kind)].set_index("dimension")["value"].to_dict()
        want = {d: ("true" if v == "yes" else "false") if d == "is_ambiguous" else str(v) for d, v in values.items()}
        assert got == want
    # idempotent: the second pull found every row unchanged
    assert rt.first.added == len(df) and rt.second.added == 0 and rt.second.updated == 0
    assert rt.second.unchanged == len(df)
    assert len(rt.first.files) == 2 and all(Path(f).is_file() for f in rt.first.files)


@pytest.mark.slow
def test_aggregation_recovers_intended_labels_at_the_expected_rate(round_trip):
    rt = round_trip
    result = aggregate(rt.ws, method="majority", include_ground_truth=False)
    labels = result.labels.set_index("clip_id")
    clips = rt.ws.read_df("clips").set_index("clip_id")
    k = len(rt.ws.taxonomy)
    expected = expected_majority_accuracy(N_RATERS, k, P_RIGHT)
    hits = int((labels["acoustic_label"] == clips["intended_acoustic"]).sum()
               + (labels["semantic_label"] == clips["intended_semantic"]).sum())
    lo, hi = _binomial_interval(2 * N_CLIPS, expected)
    assert lo <= hits <= hi, f"{hits}/{2 * N_CLIPS} labels recovered; expected {expected:.3f} ({lo}..{hi})"
    intended = result.report["intended"]
    rating_match = (intended["acoustic"]["rating_match"] * intended["acoustic"]["ratings"]
                    + intended["semantic"]["rating_match"] * intended["semantic"]["ratings"])
    n_ratings = intended["acoustic"]["ratings"] + intended["semantic"]["ratings"]
    assert n_ratings == 2 * N_CLIPS * N_RATERS
    lo, hi = _binomial_interval(n_ratings, P_RIGHT)
    assert lo <= round(rating_match) <= hi
    # V/A/D are the means of what the raters posted
    for clip in clips.index:
        posted = [v for (kind, c, _), v in rt.posted.items() if kind == "acoustic" and c == clip]
        assert labels.loc[clip, "valence"] == pytest.approx(np.mean([v["valence"] for v in posted]))
        assert labels.loc[clip, "n_raters"] == N_RATERS
    conflict = labels["passes_thresholds"] & (labels["acoustic_label"] != labels["semantic_label"])
    assert (labels["is_conflict"] == conflict).all()


@pytest.mark.slow
def test_krippendorff_alpha_of_the_pulled_ratings(round_trip):
    import krippendorff

    from casebench.agreement import agreement_report

    df = round_trip.ws.read_df("annotations")
    labels = list(round_trip.ws.taxonomy.labels)
    for dim, level in (("acoustic_emotion", "nominal"), ("semantic_emotion", "nominal"), ("valence", "interval")):
        sub = df[(df["dimension"] == dim) & ~df["cancelled"] & ~df["ground_truth"]]
        matrix = sub.pivot(index="rater_id", columns="clip_id", values="value")
        if level == "nominal":
            data = matrix.map(lambda v: labels.index(v) if isinstance(v, str) else np.nan).to_numpy(float)
            domain = list(range(len(labels)))
        else:
            data = matrix.astype(float).to_numpy()
            domain = None
        assert data.shape == (N_RATERS, N_CLIPS)
        reference = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=domain)
        report = agreement_report(sub, level=level, dimension=dim,
                                  value_domain=labels if level == "nominal" else None, n_boot=0)
        assert report["krippendorff_alpha"]["value"] == pytest.approx(reference, abs=1e-9)


@pytest.mark.slow
def test_token_and_connection_errors(label_studio, tmp_path):
    ws = make_workspace(label_studio.document_root, n_clips=2, subdir="errors", with_audio=True)
    with pytest.raises(ConfigError, match="refused the token"):
        L.push(ws, label_studio.url, "not-a-valid-token", document_root=label_studio.document_root)
    with pytest.raises(ConfigError, match="cannot reach"):
        L.push(ws, "http://127.0.0.1:9", label_studio.token, document_root=label_studio.document_root)
    with pytest.raises(InputError, match="outside the document root"):
        L.push(ws, label_studio.url, label_studio.token, document_root=tmp_path)
    (ws.audio_dir / "clip-0001.wav").unlink()
    with pytest.raises(InputError, match="clip-0001"):
        L.push(ws, label_studio.url, label_studio.token, document_root=label_studio.document_root)
    with pytest.raises(ConfigError, match="annotate push"):
        L.pull(ws, label_studio.url, label_studio.token)


def _golden_scenario(server) -> dict[str, list]:
    """The annotations behind tests/assets/labelstudio/export-*.json, made on a live server."""

    ws = make_workspace(server.document_root, n_clips=3, seed=7, with_audio=True, subdir="golden",
                        raters_per_clip=2)
    L.push(ws, server.url, server.token, document_root=server.document_root, title="golden")
    with L.connect(server.url, server.token) as ls:
        return _golden_annotations(ls, ws, server)


def _golden_annotations(ls, ws, server) -> dict[str, list]:
    import httpx

    a, b, c = (ls.users.create(username=f"golden{x}", email=f"golden-{x}@casebench.test", password="golden-pw-1")
               for x in "abc")
    rec = ws.section("annotation")["label_studio"]
    clips = ws.read_df("clips").set_index("clip_id")
    acoustic = list(ls.tasks.list(project=rec["acoustic_project"], fields="all"))
    semantic = list(ls.tasks.list(project=rec["semantic_project"], fields="all"))

    def full(task, kind, emotion, v=3):
        obj = "audio" if kind == "acoustic" else "transcript"
        result = [_choice(f"{kind}_emotion", emotion, to=obj)]
        if kind == "acoustic":
            result += [_rating(d, v, to=obj) for d in ("valence", "arousal", "dominance")]
        return result + [_rating("confidence", 4, to=obj), _choice("is_ambiguous", "no", to=obj)]

    for i, task in enumerate(acoustic):
        truth = clips.loc[task.data["clip_id"], "intended_acoustic"]
        ls.annotations.create(id=task.id, result=full(task, "acoustic", truth, 2 + i), completed_by=a.id,
                              lead_time=5.5 + i)
        if i == 0:
            ls.annotations.create(id=task.id, result=full(task, "acoustic", truth), completed_by=b.id, lead_time=7.25)
            ls.annotations.create(id=task.id, result=[], completed_by=c.id, lead_time=1.0)  # submitted empty
        elif i == 1:
            ls.annotations.create(id=task.id, result=[], completed_by=b.id, was_cancelled=True, lead_time=2.0)
        else:
            ls.annotations.create(id=task.id, result=full(task, "acoustic", truth, 4), completed_by=b.id,
                                  ground_truth=True, lead_time=9.0)
            httpx.post(f"{server.url}/api/tasks/{task.id}/drafts", headers={"Authorization": f"Token {server.token}"},
                       json={"result": full(task, "acoustic", "neutral"), "lead_time": 3.0}).raise_for_status()
    for task in semantic:
        truth = clips.loc[task.data["clip_id"], "intended_semantic"]
        for rater in (a, b):
            ls.annotations.create(id=task.id, result=full(task, "semantic", truth), completed_by=rater.id,
                                  lead_time=4.0)
    return {kind: L.export_project(server.url, server.token, rec[f"{kind}_project"]) for kind in ("acoustic",
                                                                                                  "semantic")}


@pytest.mark.slow
def test_golden_export_matches_live_format(label_studio):
    exports = _golden_scenario(label_studio)
    if os.environ.get("CASEBENCH_REGEN_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for kind, export in exports.items():
            (GOLDEN / f"export-{kind}.json").write_text(json.dumps(export, indent=2, ensure_ascii=False) + "\n")
    for kind, export in exports.items():
        golden = json.loads((GOLDEN / f"export-{kind}.json").read_text())
        assert len(golden) == len(export) == 3

        def keys(tasks):
            return ({k for t in tasks for k in t}, {k for t in tasks for a in t["annotations"] for k in a},
                    {k for t in tasks for d in t["drafts"] for k in d})

        assert keys(golden) == keys(export)  # the same fields as the server writes today


@pytest.mark.slow
def test_personal_access_token_works_as_well_as_the_legacy_token(round_trip):
    """Label Studio 1.23 also issues personal access tokens (JWT refresh tokens); the SDK exchanges them for
    access tokens itself, so push and pull take either kind."""
    server = round_trip.server
    with L.connect(server.url, server.token) as ls:
        pat = ls.tokens.create().token
    assert pat.count(".") == 2  # a JWT, not a legacy key
    with L.connect(server.url, pat) as ls:
        assert ls.users.whoami().email == round_trip.ls.users.whoami().email
    summary = L.pull(round_trip.ws, server.url, pat, save_exports=False)
    assert summary.added == 0 and summary.unchanged == len(round_trip.ws.read_df("annotations"))


@pytest.mark.slow
def test_cli_push_and_pull(round_trip, capsys, monkeypatch):
    server, ws = round_trip.server, round_trip.ws
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)  # the token never goes into casebench.toml
    assert main(["annotate", "push", str(ws.root), "--document-root", str(server.document_root), "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert {k: p["tasks_added"] for k, p in pushed["projects"].items()} == {"acoustic": 0, "semantic": 0}
    assert server.token not in ws.config_path.read_text()
    assert main(["annotate", "pull", str(ws.root), "--no-save"]) == 0  # URL recorded by push
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal width
    assert "0 added" in out and "drafts (not imported): 1" in out
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong-token")
    assert main(["annotate", "pull", str(ws.root)]) == 2
    assert "refused the token" in capsys.readouterr().err
