"""casebench predict on a Hugging Face Hub dataset (``--dataset ORG/NAME --revision R``, a spec's ``dataset:
{hub, revision}``), end to end against the Hub stand-in of tests/conftest.py (``fake_hub``): workspaces are
published with casebench's own upload (create_repo + upload_folder), tagged with HfApi.create_tag, and read
back by huggingface_hub's real snapshot_download into a cache under tmp_path. Only the HTTP transport is
replaced; nothing leaves the process (the fixture fails a test that tries).

The model is the ``command:`` kind (a loudness rule in a Python subprocess), which needs no download.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from casebench import publish as pub
from casebench.cli import main
from casebench.testing import make_clean_workspace

CARD = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
        "authors": "Ada Lovelace", "guidelines": "https://example.org/guidelines"}
REPO = "casebench-test/emo"

LOUDNESS = textwrap.dedent("""\
    import json, sys
    import numpy as np
    import soundfile as sf
    for line in sys.stdin:
        x, sr = sf.read(line.strip())
        print(json.dumps({"label": "happy" if float(np.sqrt(np.mean(x ** 2))) > 0.1 else "sad"}))
""")


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict:
    """Two published folders of the same dataset: v1 and a later version with more clips and other audio, and
    the test-split clip ids of each."""
    base = tmp_path_factory.mktemp("hub-datasets")
    out = {}
    for name, seed, n in (("v1", 5, 16), ("v2", 6, 24)):
        ws = make_clean_workspace(base / f"ws-{name}", n_clips=n, n_speakers=4, seed=seed)
        pub.publish(ws, base / name, card=CARD, n_boot=0, views=False)
        splits = ws.read_df("splits")
        out[name] = {"folder": base / name, "workspace": ws,
                     "test_ids": sorted(splits.loc[splits["split"] == "test", "clip_id"])}
    assert set(out["v1"]["test_ids"]) != set(out["v2"]["test_ids"])
    return out


@pytest.fixture()
def model(tmp_path) -> str:
    script = tmp_path / "loudness.py"
    script.write_text(LOUDNESS)
    return f"command:{sys.executable} {script}"


def _publish_two_versions(hub, versions, monkeypatch, *, private: bool = False) -> dict:
    """v1 uploaded and tagged ``v1``, then v2 uploaded on ``main``: {"v1": commit, "main": commit}."""
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    first = pub.upload(versions["v1"]["folder"], REPO, private=private)
    HfApi().create_tag(REPO, tag="v1", repo_type="dataset", revision=first["commit_oid"])
    second = pub.upload(versions["v2"]["folder"], REPO, private=private)
    monkeypatch.delenv("HF_TOKEN")
    assert hub.repos[REPO]["refs"]["v1"] == first["commit_oid"] != second["commit_oid"]
    return {"v1": first["commit_oid"], "main": second["commit_oid"]}


def _ids(path: Path) -> list[str]:
    return sorted(json.loads(line)["id"] for line in path.read_text().splitlines())


def _predict(model: str, out: Path, *args: str, progress: bool = False) -> int:
    return main(["predict", model, "-b", "casebench-mini", "-o", str(out), *args]
                + ([] if progress else ["--no-progress"]))


def test_predict_at_a_revision_records_it_and_reuses_the_cache(fake_hub, versions, model, tmp_path, monkeypatch,
                                                               capsys):
    commits = _publish_two_versions(fake_hub, versions, monkeypatch)
    fake_hub.requests.clear()

    out = tmp_path / "v1.jsonl"
    capsys.readouterr()
    assert _predict(model, out, "--dataset", REPO, "--revision", "v1", progress=True) == 0
    assert "Fetching 4 files" in capsys.readouterr().err  # huggingface_hub's bar, with the run's own
    assert _ids(out) == versions["v1"]["test_ids"]  # the tagged version, not main's clips
    meta = json.loads((tmp_path / "v1.jsonl.meta.json").read_text())
    assert meta["dataset"] == {"hub": REPO, "revision": "v1", "commit": commits["v1"]}
    assert meta["source"] == f"dataset {REPO}@v1 (split test)"
    # what was fetched: the card and every data/ shard of v1, each once; LFS shards from the CDN, no token sent
    v1_files = sorted(p.relative_to(versions["v1"]["folder"]).as_posix()
                      for p in versions["v1"]["folder"].rglob("*")
                      if p.is_file() and (p.name == "README.md" or p.parts[-2] == "data"))
    first = list(fake_hub.downloads)
    assert len(first) == len(v1_files) == len(set(first))
    assert sum(p.startswith("/repos/") for p in first) == len(v1_files) - 1  # the parquet shards: LFS
    assert not [p for m, p, auth in fake_hub.requests if auth]  # a public dataset: no token needed or sent
    cache = tmp_path / "hf-hub-cache" / "datasets--casebench-test--emo"
    assert (cache / "refs" / "v1").read_text() == commits["v1"]
    assert sorted(p.relative_to(cache / "snapshots" / commits["v1"]).as_posix()
                  for p in (cache / "snapshots" / commits["v1"]).rglob("*") if p.is_file()) == v1_files

    # a second run reuses the cache: one request to resolve the tag, no file downloaded again
    fake_hub.requests.clear()
    again = tmp_path / "v1-again.jsonl"
    assert _predict(model, again, "--dataset", REPO, "--revision", "v1") == 0
    assert again.read_text() == out.read_text()
    assert "Fetching" not in capsys.readouterr().err  # --no-progress silences the Hub's bars too
    assert list(fake_hub.downloads) == first
    assert [(m, p) for m, p, _ in fake_hub.requests] == [("GET", f"/api/datasets/{REPO}/revision/v1")]

    # the commit itself as the revision: nothing to ask the Hub at all
    fake_hub.requests.clear()
    assert _predict(model, tmp_path / "by-commit.jsonl", "--dataset", REPO, "--revision", commits["v1"]) == 0
    assert fake_hub.requests == []
    assert (tmp_path / "by-commit.jsonl").read_text() == out.read_text()

    # no revision: the default branch, the newer version; its commit is recorded
    assert _predict(model, tmp_path / "main.jsonl", "--dataset", REPO) == 0
    assert _ids(tmp_path / "main.jsonl") == versions["v2"]["test_ids"]
    meta = json.loads((tmp_path / "main.jsonl.meta.json").read_text())
    assert meta["dataset"] == {"hub": REPO, "revision": None, "commit": commits["main"]}
    downloads = list(fake_hub.downloads)
    assert len(downloads) == len(set(downloads))  # across both versions, no file body fetched twice


def _v1_spec(versions, tmp_path):
    """(workspace, labels by clip, test ids, spec path) of a benchmark whose gold is v1's test labels and whose
    audio is the Hub dataset at revision v1."""
    ws = versions["v1"]["workspace"]
    labels = ws.read_df("labels").set_index("clip_id")
    ids = versions["v1"]["test_ids"]
    (tmp_path / "gold.csv").write_text("id,acoustic_label\n" + "".join(
        f"{i},{labels.loc[i, 'acoustic_label']}\n" for i in ids))
    spec = tmp_path / "bench.yaml"
    spec.write_text(f"name: hubbench\nversion: '1'\ntaxonomy: {ws.taxonomy.name}\ngold: gold.csv\n"
                    f"dataset: {{hub: {REPO}, revision: v1}}\ntasks: [{{kind: categorical}}]\n")
    return ws, labels, ids, spec


def test_a_benchmark_spec_reads_its_hub_dataset_and_evaluate_scores_it(fake_hub, versions, model, tmp_path,
                                                                        monkeypatch, capsys):
    commits = _publish_two_versions(fake_hub, versions, monkeypatch)
    ws, labels, ids, spec = _v1_spec(versions, tmp_path)
    out = tmp_path / "p.jsonl"
    assert main(["predict", model, "-b", str(spec), "-o", str(out), "--no-progress"]) == 0
    assert _ids(out) == ids
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text())["dataset"]["commit"] == commits["v1"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "-b", str(spec), "--bootstrap", "0", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    preds = {r["id"]: r["label"] for r in map(json.loads, out.read_text().splitlines())}
    right = sum(preds[i] == labels.loc[i, "acoustic_label"] for i in ids)  # the reference: a plain count
    accuracy = results["splits"]["all"]["accuracy"]
    assert accuracy["n"] == len(ids) and accuracy["value"] == pytest.approx(right / len(ids))
    assert results["model"]["name"].startswith("command:")  # from the sidecar

    # the train split comes with its labels in the benchmark's taxonomy, and names the repo as its corpus
    from casebench.benchmarks import load_spec
    from casebench.predict.sources import benchmark_clips

    train = benchmark_clips(load_spec(spec), "train")
    splits = ws.read_df("splits")
    assert sorted(train.ids) == sorted(splits.loc[splits["split"] == "train", "clip_id"])
    assert [ws.taxonomy.labels[k] for k in train.labels.acoustic] == list(labels.loc[train.ids, "acoustic_label"])
    assert train.corpora == [REPO]


def test_wrong_revision_unknown_repo_and_private_repos_are_clear_errors(fake_hub, versions, model, tmp_path,
                                                                         monkeypatch, capsys):
    _publish_two_versions(fake_hub, versions, monkeypatch, private=True)
    out = tmp_path / "p.jsonl"

    def fails(*args: str) -> str:
        capsys.readouterr()
        assert _predict(model, out, *args) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "Traceback" not in err and not out.exists()
        return err

    # private, no token: the Hub answers 401 RepoNotFound, as for a missing repo
    err = fails("--dataset", REPO, "--revision", "v1")
    assert f"dataset '{REPO}' at revision 'v1'" in err and "HF_TOKEN" in err and "private" in err
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    err = fails("--dataset", REPO, "--revision", "v9")
    assert f"'{REPO}'" in err and "no revision 'v9'" in err
    err = fails("--dataset", "casebench-test/no-such-dataset", "--revision", "v1")
    assert "dataset 'casebench-test/no-such-dataset' at revision 'v1'" in err and "no such dataset" in err
    monkeypatch.setenv("HF_TOKEN", "hf_revoked")
    err = fails("--dataset", REPO, "--revision", "v1")
    assert "refused the token" in err and "HF_TOKEN" in err and "'v1'" in err
    assert fake_hub.downloads == []
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert _predict(model, out, "--dataset", REPO, "--revision", "v1") == 0
    assert _ids(out) == versions["v1"]["test_ids"]
    # the token goes to the Hub, never to the CDN (checked by the fixture on teardown)
    assert any(auth == "Bearer hf_test_token" for m, p, auth in fake_hub.requests if "/resolve/" in p)


def test_offline_with_a_warm_cache(fake_hub, versions, model, tmp_path, monkeypatch):
    """``HF_HUB_OFFLINE=1`` in a fresh process (the real CLI, endpoint pointed at a closed local port): a
    cached revision is read without the Hub; one never fetched is a clear error."""
    commits = _publish_two_versions(fake_hub, versions, monkeypatch)
    warm = tmp_path / "warm.jsonl"
    assert _predict(model, warm, "--dataset", REPO, "--revision", "v1") == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf-hub-cache"),
           "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN_PATH": str(tmp_path / "no-token"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "casebench", "predict", model, "-b", "casebench-mini",
                               "--no-progress", *args], capture_output=True, text=True, env=env, timeout=300)

    offline = tmp_path / "offline.jsonl"
    r = cli("-o", str(offline), "--dataset", REPO, "--revision", "v1", "--json")
    assert r.returncode == 0, r.stderr
    assert offline.read_text() == warm.read_text()
    assert json.loads((tmp_path / "offline.jsonl.meta.json").read_text())["dataset"]["commit"] == commits["v1"]
    r = cli("-o", str(tmp_path / "never.jsonl"), "--dataset", REPO, "--revision", "main")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = " ".join(r.stderr.split())
    assert f"dataset '{REPO}' at revision 'main' is not in the local Hugging Face cache" in err
    assert "HF_HUB_OFFLINE" in err

    # a snapshot missing a file (a download cut short): offline says so; online fetches only what is missing
    snapshot = tmp_path / "hf-hub-cache" / "datasets--casebench-test--emo" / "snapshots" / commits["v1"]
    [shard] = snapshot.glob("data/test-*.parquet")
    blob = shard.resolve()
    shard.unlink()
    blob.unlink()
    r = cli("-o", str(tmp_path / "partial.jsonl"), "--dataset", REPO, "--revision", "v1")
    assert r.returncode == 2 and "is partly in the local Hugging Face cache" in " ".join(r.stderr.split())
    before = list(fake_hub.downloads)
    assert _predict(model, tmp_path / "again.jsonl", "--dataset", REPO, "--revision", "v1") == 0
    assert (tmp_path / "again.jsonl").read_text() == warm.read_text()
    assert len(fake_hub.downloads) == len(before) + 1 and shard.is_file()


def test_the_stand_in_refuses_every_other_host(fake_hub):
    """The guard the other tests rely on: a Hub call to the real endpoint, and a socket to any host but
    127.0.0.1, fail and are recorded (the fixture fails a test that leaves any)."""
    import socket

    import httpx2
    from huggingface_hub import HfApi

    with pytest.raises(httpx2.ConnectError, match="serves only hub.test"):
        HfApi(endpoint="https://huggingface.co").dataset_info(REPO)
    with pytest.raises(OSError):
        socket.create_connection(("example.org", 80), timeout=1)
    assert any("huggingface.co" in u for u in fake_hub.unexpected)
    assert any("example.org" in u for u in fake_hub.unexpected)
    fake_hub.unexpected.clear()


def test_a_resumed_run_reads_the_commit_it_started_on(fake_hub, versions, model, tmp_path, monkeypatch, capsys):
    """A run stopped half-way pins the dataset commit in its sidecar; going on at a revision that now names
    other data (v2 holds v1's test ids with other audio) is refused, as is adding to a finished file."""
    commits = _publish_two_versions(fake_hub, versions, monkeypatch)
    out = tmp_path / "p.jsonl"
    assert _predict(model, out, "--dataset", REPO, "--revision", "v1", "--limit", "2") == 0
    assert len(out.read_text().splitlines()) == 2
    side = json.loads((tmp_path / "p.jsonl.meta.json").read_text())
    assert side["dataset"]["commit"] == commits["v1"] and side["predictions"]["sha256"] is None
    from casebench.predict.runner import sidecar_model

    assert sidecar_model(out) == (None, f"ignored the metadata sidecar {tmp_path / 'p.jsonl.meta.json'}: the run "
                                        "writing p.jsonl has not finished")
    capsys.readouterr()
    assert _predict(model, out, "--dataset", REPO) == 2  # main: v2, whose test split holds v1's ids
    err = " ".join(capsys.readouterr().err.split())
    assert f"commit {commits['v1'][:12]} (revision v1)" in err and f"commit {commits['main'][:12]}" in err
    assert f"--revision {commits['v1']}" in err
    assert len(out.read_text().splitlines()) == 2  # untouched
    assert _predict(model, out, "--dataset", REPO, "--revision", commits["v1"]) == 0
    assert _ids(out) == versions["v1"]["test_ids"]
    assert json.loads((tmp_path / "p.jsonl.meta.json").read_text())["dataset"]["commit"] == commits["v1"]
    assert _predict(model, out, "--dataset", REPO, "--revision", "main") == 2  # a finished file, too


@pytest.mark.slow
def test_a_probe_fits_on_the_hub_datasets_train_split(fake_hub, versions, tmp_path, monkeypatch):
    """probe:whisper-tiny.en (the bundled encoder) on a spec whose audio is a Hub dataset: fitted on the
    dataset's train split and labels, it records the dataset (not its cache folder) as its training corpus."""
    commits = _publish_two_versions(fake_hub, versions, monkeypatch)
    ws, labels, ids, spec = _v1_spec(versions, tmp_path)
    out = tmp_path / "probe.jsonl"
    assert main(["predict", "probe:whisper-tiny.en", "-b", str(spec), "-o", str(out), "--no-progress"]) == 0
    assert _ids(out) == ids
    meta = json.loads((tmp_path / "probe.jsonl.meta.json").read_text())
    splits = ws.read_df("splits")
    assert meta["model"]["trained_on"] == [REPO]
    assert meta["model"]["notes"][0].startswith(f"probe fitted on {int((splits['split'] == 'train').sum())} clip(s)")
    assert meta["dataset"] == {"hub": REPO, "revision": "v1", "commit": commits["v1"]}


def test_hub_download_bar_shows_after_transformers_turned_it_off(fake_hub, versions, model, tmp_path, monkeypatch,
                                                                capsys):
    """Loading an hf: model calls transformers' disable_progress_bar, which turns the Hub's bars off for the
    whole process: the dataset download then drew no bar although progress was asked for (and this file's
    first test failed whenever tests/test_predict.py ran before it)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    _publish_two_versions(fake_hub, versions, monkeypatch)
    disable_progress_bars()  # what transformers.utils.logging.disable_progress_bar() does
    try:
        capsys.readouterr()
        assert _predict(model, tmp_path / "p.jsonl", "--dataset", REPO, "--revision", "v1", progress=True) == 0
        assert "Fetching 4 files" in capsys.readouterr().err
        assert are_progress_bars_disabled()  # the state it found is restored
    finally:
        enable_progress_bars()
