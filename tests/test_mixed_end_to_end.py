"""The mixed-emotion (EM2LDL) path end to end through the real Label Studio (slow; the ``label_studio``
fixture of tests/conftest.py): a plutchik32 workspace with 20 raters per clip in mixed mode and clips in
English, Mandarin and Cantonese is pushed, 20 real users answer with several weighted emotions (plus valence
and arousal), and the pull must give the very ratings the same raters' CSV gives through import-csv: the same
label sets and weights, the same MASI-α, the same distributions. Then split, publish, LDL baselines and a
constant scored with every soft-label metric. (The import-csv path alone, as a curator types it, is
tests/test_tutorial_mixed.py.)"""

from __future__ import annotations

import csv
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from casebench import labelstudio as L
from casebench.aggregate import aggregate
from casebench.annotation_schema import AnnotationSchema, parse_label_set, weight_control
from casebench.annotations import run_agreement
from casebench.collect import collect
from casebench.testing import write_mixed_example
from casebench.workspace import Workspace

N_CLIPS, N_RATERS = 16, 20
LDL_METRICS = ("chebyshev", "clark", "canberra", "kl", "cosine", "intersection", "js", "multilabel_macro_f1")


def _workspace(root, name, example):
    ws = Workspace.create(root / name, name, taxonomy="plutchik32", languages=["en", "zh", "yue"],
                          licence="CC-BY-4.0", annotation={"mixed_emotions": True, "raters_per_clip": N_RATERS})
    collect(ws, example / "manifest.csv")
    return ws


def _result(schema, value: str, valence: str, arousal: str) -> list[dict]:
    """What the labelling UI sends for one rater: the ticked emotions, a weight per ticked emotion, V and A."""
    weights = parse_label_set(value)
    items = [{"from_name": "acoustic_emotion", "to_name": "audio", "type": "choices",
              "value": {"choices": list(weights)}}]
    items += [{"from_name": weight_control("acoustic_emotion", label), "to_name": "audio", "type": "rating",
               "value": {"rating": int(w)}} for label, w in weights.items()]
    items += [{"from_name": d, "to_name": "audio", "type": "rating", "value": {"rating": int(v)}}
              for d, v in (("valence", valence), ("arousal", arousal))]
    assert schema.dimensions["valence"].widget == "rating"
    return items


@pytest.mark.slow
def test_mixed_corpus_through_label_studio_matches_import_csv(label_studio, tmp_path):
    from casebench.baselines import baseline
    from casebench.benchmarks import adhoc_benchmark
    from casebench.evaluate import compare, evaluate
    from casebench.publish import publish
    from casebench.splits import split

    server = label_studio
    example = tmp_path / "example"
    info = write_mixed_example(example, n_clips=N_CLIPS, n_raters=N_RATERS, seed=3)
    assert info["languages"] == ["en", "yue", "zh"]
    ws = _workspace(server.document_root, "mixed-ls", example)
    twin = _workspace(tmp_path, "mixed-csv", example)
    L.import_csv(twin, example / "ratings.csv")

    pushed = L.push(ws, server.url, server.token, document_root=server.document_root, kinds=("acoustic",))
    schema = AnnotationSchema.from_workspace(ws)
    project = pushed["projects"]["acoustic"]["project"]
    with open(example / "ratings.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_rating: dict[tuple, dict] = {}
    for r in rows:
        by_rating.setdefault((r["clip_id"], r["rater_id"]), {})[r["dimension"]] = r["value"]
    with L.connect(server.url, server.token) as ls:
        config = ls.projects.get(id=project).label_config
        assert 'choice="multiple"' in config and weight_control("acoustic_emotion", "joy") in config
        raters = sorted({rater for _, rater in by_rating})
        users = {name: ls.users.create(username=name, email=f"{name}@casebench.test", password="mixed-rater-pw1").id
                 for name in raters}
        tasks = {t.data["clip_id"]: t.id for t in ls.tasks.list(project=project, fields="all")}
        jobs = [(tasks[clip], users[rater], _result(schema, v["acoustic_emotion"], v["valence"], v["arousal"]))
                for (clip, rater), v in by_rating.items()]

        def post(job):
            return ls.annotations.create(id=job[0], result=job[2], completed_by=job[1], lead_time=4.0).id

        with ThreadPoolExecutor(4) as pool:
            assert len(list(pool.map(post, jobs))) == N_CLIPS * N_RATERS
    summary = L.pull(ws, server.url, server.token)
    assert summary.multi_label > 0 and summary.cancelled == 0

    # the same ratings as the CSV gives: label sets and weights, per clip and rater
    name_of = {str(uid): name for name, uid in users.items()}
    got = ws.read_df("annotations")
    got = got[got["dimension"] == "acoustic_emotion"].assign(rater_id=lambda d: d["rater_id"].map(name_of))
    want = twin.read_df("annotations")
    want = want[want["dimension"] == "acoustic_emotion"]

    def ratings(df):
        return {(c, r): (v, json.loads(w) if isinstance(w, str) else None)
                for c, r, v, w in zip(df["clip_id"], df["rater_id"], df["value"], df["meta_weights"], strict=True)}

    assert ratings(got) == ratings(want)
    masi = run_agreement(ws.root, dimension="acoustic_emotion", n_boot=200)["dimensions"]["acoustic_emotion"]
    masi_csv = run_agreement(twin.root, dimension="acoustic_emotion", n_boot=200)["dimensions"]["acoustic_emotion"]
    assert masi["level"] == "masi" and masi["krippendorff_alpha"] == masi_csv["krippendorff_alpha"]
    assert masi["n_raters"] == N_RATERS and masi["n_units"] == N_CLIPS
    labels = aggregate(ws).labels.set_index("clip_id").sort_index()
    labels_csv = aggregate(twin).labels.set_index("clip_id").sort_index()
    assert np.allclose(np.stack(labels["acoustic_dist"]), np.stack(labels_csv["acoustic_dist"]))
    assert np.allclose(labels["valence"], labels_csv["valence"])

    # split, publish, LDL baselines and the constant, scored with every soft-label metric
    split(ws, ratios="train=0.6,dev=0.2,test=0.2", seed=0, require_all_classes=False)  # 16 clips, 8 classes
    card = {"consent": "Synthetic signals.", "summary": "Mixed-emotion test corpus.", "authors": ["Test"],
            "guidelines": "Tick every emotion you hear, weight each 1-5."}
    out = publish(ws, tmp_path / "published", hide_test_labels=True, card=card, n_boot=100, validate=False)
    bench = dataclasses.replace(adhoc_benchmark(out["gold"], taxonomy="plutchik32"),
                                train_path=Path(out["train_labels"]))
    for name in ("fusion", "mean-distribution"):
        res = baseline(name, ws, split="test", out=tmp_path / f"{name}.jsonl", workers=1)
        assert res["target"] == "distribution"
        scores = evaluate(tmp_path / f"{name}.jsonl", bench, n_boot=100)
        for metric in LDL_METRICS:
            assert scores["splits"]["all"][metric]["value"] is not None, (name, metric)
            assert scores["baselines"]["train prior"]["all"][metric]["value"] is not None
        assert scores["splits"]["all"]["ccc"]["value"] is not None
        if name == "mean-distribution":  # the baseline is the same train prior as the constant beside the score
            assert scores["splits"]["all"]["kl"]["value"] == pytest.approx(
                scores["baselines"]["train prior"]["all"]["kl"]["value"], abs=1e-9)
    paired = compare(tmp_path / "fusion.jsonl", tmp_path / "mean-distribution.jsonl", bench, n_boot=100)
    assert paired["splits"]["all"]["kl"]["diff"]["value"] is not None and not paired["splits"]["conflict"]
