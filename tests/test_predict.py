"""casebench predict: kinds, sources, resume, metadata sidecar, CLI errors (offline).

The benchmark with audio is built per session by casebench.testing.make_audio_benchmark (espeak-ng voices
whose pitch, rate and loudness carry the voice emotion; train and test voices disjoint).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from casebench.benchmarks import get_benchmark, load_spec
from casebench.errors import ConfigError, InputError
from casebench.predictions import parse_predictions


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "casebench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="session")
def audio_bench(tmp_path_factory) -> Path:
    from casebench.testing import make_audio_benchmark

    return make_audio_benchmark(tmp_path_factory.mktemp("audio-bench"))


LOUDNESS_MODEL = textwrap.dedent("""\
    import json, os, sys
    import numpy as np
    import soundfile as sf
    assert os.environ["CASEBENCH_LABELS"].split(",")[0] == "angry"
    for n, line in enumerate(sys.stdin):
        x, sr = sf.read(line.strip())
        loud = float(np.sqrt(np.mean(x ** 2))) > 0.12
        if "--bad" in sys.argv and n == 1:
            print(json.dumps({"label": "hapy"}))
        else:
            print(json.dumps({"probs": {"happy": 0.8 if loud else 0.3, "sad": 0.2 if loud else 0.7}}))
    if "--fail" in sys.argv:
        print("model exploded on purpose", file=sys.stderr)
        sys.exit(3)
""")


@pytest.fixture()
def loudness_script(tmp_path) -> Path:
    p = tmp_path / "loud.py"
    p.write_text(LOUDNESS_MODEL)
    return p


# -- spec fields ---------------------------------------------------------------------------------------------


def test_spec_train_and_dataset_fields(tmp_path, audio_bench):
    bench = load_spec(audio_bench)
    assert bench.train_path == (audio_bench.parent / "train.csv").resolve()
    assert len(bench.load_train()) == 16 and bench.dataset is None
    base = audio_bench.read_text()
    for extra, ok in [("dataset: {hub: org/case, revision: v1}\n", {"hub": "org/case", "revision": "v1"}),
                      ("dataset: {path: pub}\n", {"path": str((tmp_path / "pub").resolve())})]:
        spec = tmp_path / "s.yaml"
        spec.write_text(base.replace("gold: gold.csv", f"gold: {audio_bench.parent}/gold.csv") + extra)
        assert load_spec(spec).dataset == ok
    for extra, words in [("dataset: {hub: org/case}\n", "no revision"), ("dataset: {hub: a/b, path: x}\n",
                         "exactly one"), ("dataset: {hbu: a/b}\n", "did you mean 'hub'"),
                         ("dataset: org/case\n", "expected a mapping"), ("train: [a]\n", "train table")]:
        spec = tmp_path / "s.yaml"
        spec.write_text(base + extra)
        with pytest.raises(ConfigError, match=words):
            load_spec(spec)
    with pytest.raises(ConfigError, match="no train split"):
        get_benchmark("casebench-mini").load_train()


# -- command: ------------------------------------------------------------------------------------------------


def test_command_kind_end_to_end(tmp_path, audio_bench, loudness_script):
    out = tmp_path / "p.jsonl"
    r = cli("predict", f"command:{sys.executable} {loudness_script}", "-b", str(audio_bench), "-o", str(out),
            "--batch-size", "5", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n_predicted"] == 16 and report["n_pending"] == 0
    bench = load_spec(audio_bench)
    preds = parse_predictions(out, bench.load_gold())
    assert preds.present.all()
    # loudness is what espeak's happy voice has: the toy model is right on every clip
    assert (preds.label == bench.load_gold().acoustic).all()
    r = cli("evaluate", str(out), "-b", str(audio_bench), "--bootstrap", "0", "--json")
    res = json.loads(r.stdout)
    assert res["model"]["name"].startswith("command:") and "model metadata from p.jsonl.meta.json" in \
        res["predictions"]["notes"]
    # explicit options win over the sidecar
    r = cli("evaluate", str(out), "-b", str(audio_bench), "--bootstrap", "0", "--json", "--model-name", "mine",
            "--trained-on", "espeak")
    res = json.loads(r.stdout)
    assert res["model"]["name"] == "mine" and res["model"]["zero_shot"] is False
    # a second run has nothing left to do
    r = cli("predict", f"command:{sys.executable} {loudness_script}", "-b", str(audio_bench), "-o", str(out), "--json")
    assert json.loads(r.stdout)["n_predicted"] == 0 and len(out.read_text().splitlines()) == 16


def test_command_kind_failures(tmp_path, audio_bench, loudness_script):
    out = tmp_path / "p.jsonl"
    r = cli("predict", f"command:{sys.executable} {loudness_script} --fail", "-b", str(audio_bench), "-o", str(out))
    assert r.returncode == 2 and "exited with status 3" in r.stderr and "exploded on purpose" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("predict", f"command:{sys.executable} {loudness_script} --bad", "-b", str(audio_bench), "-o", str(out))
    assert r.returncode == 2 and "unknown label 'hapy'" in r.stderr and "did you mean 'happy'" in r.stderr
    assert ":2:" in r.stderr  # the line of the program's output
    r = cli("predict", "command:no-such-program-xyz", "-b", str(audio_bench), "-o", str(out))
    assert r.returncode == 2 and "not found" in r.stderr


# -- CLI errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, words", [
    ("hff:./x", "did you mean 'hf'"), ("whisper", "not KIND:SPEC"), ("probe:", "nothing after"),
    ("hf:/no/such/model/folder", "/no/such/model/folder"), ("probe:whisper-tiny", "whisper-tiny.en"),
])
def test_bad_model_strings_exit_2(tmp_path, audio_bench, model, words):
    r = cli("predict", model, "-b", str(audio_bench), "-o", str(tmp_path / "p.jsonl"))
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_missing_files_and_sources(tmp_path, audio_bench, loudness_script):
    cmd = f"command:{sys.executable} {loudness_script}"
    label_map = tmp_path / "map.yaml"
    label_map.write_text("loud: angry\n")
    for args, words in [
        (["-b", "casebench-mini"], "has no audio"),
        (["-b", str(audio_bench), "--label-map", str(tmp_path / "nope.yaml")], "nope.yaml"),
        (["-b", str(audio_bench), "--split", "conflcit"], "did you mean 'conflict'"),
        (["-b", str(audio_bench), "--dataset", str(tmp_path / "nodata")], "nodata"),
        (["-b", str(audio_bench), "--workspace", str(tmp_path / "nows")], "nows"),
        (["-b", str(audio_bench), "--engine", "rya"], "did you mean 'ray'"),
        (["-b", str(audio_bench), "--train", str(tmp_path)], "--train is for probes"),
        (["-b", str(audio_bench), "--label-map", str(label_map)], "--label-map is for kinds"),
    ]:
        r = cli("predict", cmd, *args, "-o", str(tmp_path / "p.jsonl"))
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = cli("predict", cmd, "-b", str(audio_bench), "-o", str(tmp_path / "no" / "p.jsonl"))
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_unreadable_audio_is_named_and_retried(tmp_path, audio_bench, loudness_script):
    import shutil

    root = tmp_path / "b"
    shutil.copytree(audio_bench.parent, root)
    bad = sorted((root / "audio").glob("test-*.wav"))[3]
    good = bad.read_bytes()
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "p.jsonl"
    cmd = f"command:{sys.executable} {loudness_script}"
    r = cli("predict", cmd, "-b", str(root / audio_bench.name), "-o", str(out))
    assert r.returncode == 2 and bad.name in r.stderr and "a re-run retries" in r.stderr
    assert len(out.read_text().splitlines()) == 15  # the sidecar says which model, and that the run is unfinished
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text())["complete"] is False
    bad.write_bytes(good)
    r = cli("predict", cmd, "-b", str(root / audio_bench.name), "-o", str(out), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["n_predicted"] == 1
    assert "complete" not in json.loads((tmp_path / "p.jsonl.meta.json").read_text())


# -- resume (unit) -------------------------------------------------------------------------------------------


def test_torn_last_line_is_dropped_and_reported(tmp_path):
    from casebench.predict.runner import read_done

    out = tmp_path / "p.jsonl"
    out.write_bytes(b'{"id": "a", "label": "sad"}\n{"id": "b", "lab')
    done = read_done(out)
    assert done.ids == {"a"} and "torn last line of 16 bytes" in done.repaired
    assert out.read_bytes() == b'{"id": "a", "label": "sad"}\n'
    out.write_bytes(b'{"id": "a"}\nnot json\n{"id": "a"}\n')
    with pytest.raises(InputError) as e:
        read_done(out)
    assert [p.line for p in e.value.problems] == [2, 3]


def test_probs_record_sums_to_one():
    from casebench.predict.base import probs_record

    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.dirichlet(np.ones(7) * 0.3)
        rec = probs_record("x", p, list("abcdefg"))
        assert abs(sum(rec["probs"].values()) - 1) <= 1e-9 and min(rec["probs"].values()) >= 0


# -- hf: ------------------------------------------------------------------------------------------------------

RAVDESS_LABELS = ["Calm", "angry", "fearful", "happy", "neutral", "sad", "surprised", "disgust"]


def make_tiny_hf_model(folder: Path, labels: list[str], seed: int = 0) -> Path:
    """A randomly initialised Wav2Vec2ForSequenceClassification (27k parameters) and its feature extractor,
    saved with save_pretrained: the real loading code runs on it."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                         do_stable_layer_norm=True, classifier_proj_size=16,
                         id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory) -> Path:
    return make_tiny_hf_model(tmp_path_factory.mktemp("tiny-hf"), RAVDESS_LABELS)


def _hf_reference(folder: Path, paths: list[str]) -> np.ndarray:
    """The model's softmax on each clip alone, computed here with transformers directly (the reference)."""
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from casebench.predict.sources import Clip, load_clip

    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    out = []
    for p in paths:
        x = load_clip(Clip("x", p), 16000)
        with torch.inference_mode():
            out.append(torch.softmax(model(**fe([x], sampling_rate=16000, return_tensors="pt")).logits, -1)[0].numpy())
    return np.array(out, dtype=float)


def test_hf_kind_maps_labels_and_writes_full_probabilities(tmp_path, audio_bench, tiny_hf):
    out = tmp_path / "p.jsonl"
    r = cli("predict", f"hf:{tiny_hf}", "-b", str(audio_bench), "-o", str(out), "--batch-size", "3", "--json")
    assert r.returncode == 0, r.stderr
    bench = load_spec(audio_bench)
    gold = bench.load_gold()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(abs(sum(x["probs"].values()) - 1) < 1e-9 and len(x["probs"]) == 7 for x in lines)
    # ravdess8 -> ekman7 (casebench/taxonomy/ravdess8.yaml): calm and neutral both go to neutral
    ref = _hf_reference(tiny_hf, [str(audio_bench.parent / p) for p in gold.columns["path"]])
    idx = {x: i for i, x in enumerate(RAVDESS_LABELS)}
    by_id = {x["id"]: x["probs"] for x in lines}
    for i, cid in enumerate(gold.ids):
        assert by_id[cid]["neutral"] == pytest.approx(ref[i, idx["Calm"]] + ref[i, idx["neutral"]], abs=1e-5)
        assert by_id[cid]["fear"] == pytest.approx(ref[i, idx["fearful"]], abs=1e-5)
    meta = json.loads((tmp_path / "p.jsonl.meta.json").read_text())["model"]
    assert meta["parameters"] == 27506 and meta["label_mapping"]["how"] == "taxonomy mapping ravdess8 -> ekman7"
    assert meta["revision"].startswith("sha256:")


def test_hf_label_map_and_unmappable_labels(tmp_path, audio_bench):
    model = make_tiny_hf_model(tmp_path / "m", ["ang", "hap", "neu", "sad", "oth"])
    out = tmp_path / "p.jsonl"
    r = cli("predict", f"hf:{model}", "-b", str(audio_bench), "-o", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    for lab in ("'ang'", "'hap'", "'oth'"):
        assert lab in r.stderr
    assert "--label-map" in r.stderr
    lm = tmp_path / "map.yaml"
    lm.write_text("ang: angry\nhap: happy\nneu: neutral\nsad: sad\noth: null\n")
    r = cli("predict", f"hf:{model}", "-b", str(audio_bench), "-o", str(out), "--label-map", str(lm), "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(abs(sum(x["probs"].values()) - 1) < 1e-9 for x in lines)
    assert all(x["probs"]["disgust"] == 0 and x["probs"]["fear"] == 0 for x in lines)
    mapping = json.loads((tmp_path / "p.jsonl.meta.json").read_text())["model"]["label_mapping"]
    assert mapping["dropped"] == ["oth"] and 0 < mapping["mean_dropped_mass"] < 1
    lm.write_text("ang: angry\nhap: happy\n")
    r = cli("predict", f"hf:{model}", "-b", str(audio_bench), "-o", str(tmp_path / "q.jsonl"), "--label-map", str(lm))
    assert r.returncode == 2 and "'neu' is not in the label map" in r.stderr
    lm.write_text("ang: angri\nhap: happy\nneu: neutral\nsad: sad\noth: null\n")
    r = cli("predict", f"hf:{model}", "-b", str(audio_bench), "-o", str(tmp_path / "q.jsonl"), "--label-map", str(lm))
    assert r.returncode == 2 and "did you mean 'angry'" in r.stderr


# -- probe: ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_probe_whisper_separates_voice_emotions(tmp_path, audio_bench):
    """Happy and sad espeak voices (pitch, rate, loudness) are plainly separable: the probe must beat chance
    (0.5) by far on unseen speakers, conflict clips included; its features match the encoder run clip by clip."""
    out = tmp_path / "p.jsonl"
    r = cli("predict", "probe:whisper-tiny.en", "-b", str(audio_bench), "-o", str(out), "--batch-size", "8", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(cli("evaluate", str(out), "-b", str(audio_bench), "--bootstrap", "0", "--json").stdout)
    assert res["splits"]["all"]["accuracy"]["value"] >= 0.85
    assert res["splits"]["conflict"]["accuracy"]["value"] >= 0.75
    assert res["model"]["trained_on"] == ["espeak"] and res["model"]["zero_shot"] is False

    from casebench.predict.base import Item
    from casebench.predict.probe import WhisperCT2Encoder
    from casebench.predict.sources import benchmark_clips, load_clip

    clips = benchmark_clips(load_spec(audio_bench)).clips[:5]
    items = [Item(c.id, load_clip(c, 16000)) for c in clips]
    # a long clip (7 s: a 10-s bucket, where the others take 5 s) in the batch: a clip's features never depend on
    # its batch, for both window settings
    items.append(Item("long", np.concatenate([items[0].audio, np.zeros(16000 * 4, np.float32), items[1].audio])))
    feats = {}
    for window in ("clip", "30s"):
        enc = WhisperCT2Encoder(window=window)
        batched = np.stack(enc.features(items))
        alone = np.stack([enc.features([it])[0] for it in items])
        np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-4)
        feats[window] = batched
    assert not np.allclose(feats["clip"], feats["30s"], atol=1e-3)  # the two settings really encode differently
    with pytest.raises(ConfigError, match="window"):
        WhisperCT2Encoder(window="5s")


# -- resume after a real kill -9 -----------------------------------------------------------------------------


def _repeated_bench(tmp_path: Path, audio_bench: Path, times: int) -> Path:
    """The audio benchmark with its gold repeated ``times`` (new ids, same audio): a run long enough to kill."""
    import pandas as pd

    gold = pd.read_csv(audio_bench.parent / "gold.csv")
    big = pd.concat([gold.assign(id=gold["id"] + f"-r{k}") for k in range(times)], ignore_index=True)
    big["path"] = [str(audio_bench.parent / p) for p in big["path"]]
    big.to_csv(tmp_path / "gold.csv", index=False)
    spec = tmp_path / "big.yaml"
    spec.write_text(audio_bench.read_text().replace("train: train.csv", f"train: {audio_bench.parent}/train.csv"))
    return spec


def test_hf_resume_after_kill_9(tmp_path, audio_bench, tiny_hf):
    import signal
    import time

    spec = _repeated_bench(tmp_path, audio_bench, 8)  # 128 clips
    args = ["predict", f"hf:{tiny_hf}", "-b", str(spec), "--batch-size", "4", "--no-progress"]
    straight = tmp_path / "straight.jsonl"
    assert cli(*args, "-o", str(straight)).returncode == 0
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "casebench", *args, "-o", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 12):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = out.read_bytes().count(b"\n")
    assert 12 <= n_before < 128, "the run was not killed mid-way"
    r = cli(*args, "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n_already_done"] == n_before and report["n_predicted"] == 128 - n_before
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 128  # nothing lost, nothing twice
    gold = load_spec(spec).load_gold()
    a, b = parse_predictions(straight, gold), parse_predictions(out, gold)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    ev = [json.loads(cli("evaluate", str(p), "-b", str(spec), "--bootstrap", "0", "--json").stdout)["splits"]
          for p in (straight, out)]
    assert ev[0] == ev[1]


# -- sources: workspace, published folder, spec dataset:, Hub offline ---------------------------------------


def test_workspace_and_published_dataset_sources(tmp_path, loudness_script, monkeypatch):
    from casebench import publish as pub
    from casebench.testing import make_clean_workspace

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ws = make_clean_workspace(tmp_path / "ws", n_clips=24, n_speakers=4, seed=5, with_annotations=True)
    card = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
            "authors": "Ada Lovelace", "guidelines": "https://example.org/guidelines"}
    pub.publish(ws, tmp_path / "pub", card=card, n_boot=0)
    splits = ws.read_df("splits")
    test_ids = sorted(splits.loc[splits["split"] == "test", "clip_id"])
    cmd = f"command:{sys.executable} {loudness_script}"
    outs = {}
    for name, args in [("ws", ["--workspace", str(ws.root), "--split", "test"]),
                       ("pub", ["--dataset", str(tmp_path / "pub")])]:
        outs[name] = tmp_path / f"{name}.jsonl"
        r = cli("predict", cmd, "-b", "casebench-mini", "-o", str(outs[name]), *args, "--json")
        assert r.returncode == 0, r.stderr
    lines = {k: sorted(map(json.loads, v.read_text().splitlines()), key=lambda x: x["id"]) for k, v in outs.items()}
    assert [x["id"] for x in lines["ws"]] == test_ids
    assert lines["ws"] == lines["pub"]  # the embedded bytes are the workspace's own files
    # a spec whose dataset: is the published folder
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: pubbench\nversion: '1'\ntaxonomy: ekman7\ngold: {tmp_path / 'g.csv'}\n"
                    "dataset: {path: pub}\ntasks: [{kind: categorical}]\n")
    (tmp_path / "g.csv").write_text("id,acoustic_label\n" + "".join(f"{c},happy\n" for c in test_ids))
    r = cli("predict", cmd, "-b", str(spec), "-o", str(tmp_path / "spec.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(x)["id"] for x in (tmp_path / "spec.jsonl").read_text().splitlines()) == test_ids
    r = cli("predict", cmd, "-b", "casebench-mini", "-o", str(tmp_path / "x.jsonl"), "--dataset",
            str(tmp_path / "pub"), "--split", "tset")
    assert r.returncode == 2 and "did you mean 'test'" in r.stderr
    # a Hub id while offline: one clear line, no traceback
    r = cli("predict", cmd, "-b", "casebench-mini", "-o", str(tmp_path / "x.jsonl"), "--dataset",
            "casebench-test/no-such-dataset", "--revision", "v1")
    assert r.returncode == 2 and "offline" in r.stderr and "Traceback" not in r.stderr


def test_submit_uses_the_sidecar(tmp_path, audio_bench, loudness_script, monkeypatch):
    """The leaderboard client fills the model fields from <out>.meta.json; explicit ones win."""
    import httpx

    from casebench.leaderboard.client import submit

    out = tmp_path / "p.jsonl"
    assert cli("predict", f"command:{sys.executable} {loudness_script}", "-b", str(audio_bench), "-o",
               str(out)).returncode == 0
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(202, json={"id": 1, "status": "queued", "board": "b"})

    client = httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler))
    submit(out, "audio-tiny", "http://127.0.0.1:9", token="t", model_name="", client=client)
    assert b"command:" in seen[0]
    submit(out, "audio-tiny", "http://127.0.0.1:9", token="t", model_name="mine", client=client)
    assert b"mine" in seen[1] and b"command:" not in seen[1]
    out.write_text(out.read_text() + "\n")  # another version of the file: the sidecar no longer applies
    with pytest.raises(ConfigError, match="model name is required"):
        submit(out, "audio-tiny", "http://127.0.0.1:9", token="t", model_name="", client=client)


# -- Ray -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_engine_equals_local(tmp_path, audio_bench):
    """probe:whisper-tiny.en on local Ray (2 CPUs): train features and predictions through Ray actors give the
    local engine's predictions; a second Ray run resumes (nothing left to do)."""
    outs = {}
    for engine in ("local", "ray"):
        outs[engine] = tmp_path / f"{engine}.jsonl"
        r = cli("predict", "probe:whisper-tiny.en", "-b", str(audio_bench), "-o", str(outs[engine]), "--engine",
                engine, "--batch-size", "4", "--num-cpus", "1", "--json")
        assert r.returncode == 0, r.stderr
    gold = load_spec(audio_bench).load_gold()
    a, b = (parse_predictions(outs[e], gold) for e in ("local", "ray"))
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
    r = cli("predict", "probe:whisper-tiny.en", "-b", str(audio_bench), "-o", str(outs["ray"]), "--engine", "ray",
            "--json")
    assert json.loads(r.stdout)["n_predicted"] == 0


# -- probe:hf: with --train WORKSPACE: every head ------------------------------------------------------------


def test_probe_hf_encoder_on_a_workspace_fits_every_head(tmp_path, tiny_hf):
    """probe:hf:<tiny wav2vec2> fitted on a workspace's train split, predicting its test split on an ekman7
    benchmark with categorical, distribution and dimensional tasks; the categorical probabilities equal a
    scikit-learn fit on the same pooled features (the reference)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from casebench.predict.base import Item
    from casebench.predict.probe import HfEncoder
    from casebench.predict.sources import load_clip, workspace_clips
    from casebench.taxonomy import get_taxonomy
    from casebench.testing import make_clean_workspace

    ws = make_clean_workspace(tmp_path / "ws", n_clips=24, n_speakers=4, seed=3)
    out = tmp_path / "p.jsonl"
    r = cli("predict", f"probe:hf:{tiny_hf}", "-b", "casebench-mini", "--train", str(ws.root), "--workspace",
            str(ws.root), "--split", "test", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"probs", "distribution", "valence", "arousal", "dominance"} <= set(lines[0])
    meta = json.loads((tmp_path / "p.jsonl.meta.json").read_text())["model"]
    assert meta["trained_on"] == [ws.name] and meta["probe"]["heads"] == ["arousal", "categorical", "distribution",
                                                                           "dominance", "valence"]
    assert meta["parameters"] > meta["probe_parameters"] > 0
    tax = get_taxonomy("ekman7")
    enc = HfEncoder(str(tiny_hf))
    train = workspace_clips(ws, "train", taxonomy=tax, with_labels=True)
    test = workspace_clips(ws, "test")
    X = np.stack(enc.features([Item(c.id, load_clip(c, 16000)) for c in train.clips]))
    y = train.labels.acoustic
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(X[y >= 0], y[y >= 0])
    Xt = np.stack(enc.features([Item(c.id, load_clip(c, 16000)) for c in test.clips]))
    p = np.zeros((len(Xt), len(tax)))
    p[:, ref.classes_] = ref.predict_proba(Xt)
    by_id = {x["id"]: x for x in lines}
    got = np.array([[by_id[c.id]["probs"][lab] for lab in tax.labels] for c in test.clips])
    np.testing.assert_allclose(got, p, atol=1e-6)


def test_a_second_run_on_the_same_out_is_refused(tmp_path, audio_bench, loudness_script):
    from casebench.predict.runner import exclusive

    out = tmp_path / "p.jsonl"
    cmd = f"command:{sys.executable} {loudness_script}"
    with exclusive(out):  # as if another predict were writing it
        r = cli("predict", cmd, "-b", str(audio_bench), "-o", str(out))
    assert r.returncode == 2 and "another casebench predict is writing" in r.stderr
    r = cli("predict", cmd, "-b", str(audio_bench), "-o", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
