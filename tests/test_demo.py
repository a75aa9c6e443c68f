"""The demo end to end (issue 8), and the simulated raters it posts to Label Studio."""

import json
from pathlib import Path

import pytest

from casebench.cli import main


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-label-studio", "--bootstrap", "200", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)

    # the published dataset loads with the consumer's tool, every split of the default config
    import datasets

    ds = datasets.load_dataset(str(out / "published"), cache_dir=str(tmp_path / "hf-cache"))
    assert {"train", "dev", "test"} <= set(ds) and ds["train"].num_rows > 0
    assert summary["release"]["audit_passed"] is True and summary["release"]["audio_roundtrip"]["identical"]

    # every baseline's results file is a valid results object scored on conflict and congruent clips
    from casebench.results import load

    for name in ("majority", "text", "acoustic", "fusion"):
        res = load(out / "results" / f"{name}.json")
        assert res["splits"]["conflict"]["accuracy"]["n"] > 0 and res["splits"]["congruent"]["accuracy"]["n"] > 0
        assert res["model"]["name"] == name

    # the conflict effect CASE reports, on our own data: the text-only system follows the words
    b = summary["baselines"]
    assert b["text"]["text_following_rate"]["value"] > b["acoustic"]["text_following_rate"]["value"] + 0.2
    assert b["acoustic"]["accuracy_conflict"]["value"] > b["text"]["accuracy_conflict"]["value"]

    # probe:whisper-tiny.en beside them (casebench predict), scored on the clean test clips with CIs
    p = summary["probe"]
    for key in ("accuracy_conflict", "accuracy_congruent", "text_following_rate", "conflict_gap"):
        assert p[key]["value"] is not None and p[key]["ci_low"] <= p[key]["value"] <= p[key]["ci_high"], key
    assert p["n_conflict"] > 0 and p["n_congruent"] > 0 and p["n_speakers"] >= 2
    probe = load(out / "results" / "probe-whisper-tiny.en.json")
    assert probe["model"]["name"] == "probe:whisper-tiny.en" and probe["model"]["trained_on"] == ["casebench-demo"]

    # reports and the leaderboard's static site
    ws = Path(summary["workspace"])
    assert (ws / "reports" / "agreement" / "index.html").exists()
    assert (out / "site" / "index.html").exists()
    assert all(summary["agreement"][d]["value"] > 0.3 for d in ("acoustic_emotion", "semantic_emotion"))
    # the demo checks its own voices: espeak-ng presets are a caricature, and the raters listen (no copying)
    assert summary["perception"]["verdict"] == "caricature"
    assert 0.3 < summary["perception"]["raters"]["single"]["value"] < 0.9

    # running it again resumes: nothing is synthesized or transcribed twice
    assert main(["demo", "--out", str(out), "--no-label-studio", "--bootstrap", "50", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("transcribe", "transcribe_degraded"):
        assert again[key]["n_transcribed"] == 0 and again[key]["n_already_done"] > 0
    assert summary["transcribe_degraded"]["n_transcribed"] > 0  # the noisy copies got their own ASR text
    assert again["probe"]["n_predicted"] == 0 and summary["probe"]["n_predicted"] > 0  # predict resumes too


@pytest.mark.slow
def test_simulated_raters_round_trip_through_label_studio(label_studio):
    from casebench.annotations import post_simulated
    from casebench.labelstudio import pull, push
    from casebench.testing import make_workspace

    ws = make_workspace(label_studio.document_root, n_clips=6, seed=5, with_audio=True, subdir="demo-sim")
    push(ws, label_studio.url, label_studio.token, document_root=label_studio.document_root, raters_per_clip=3)
    posted = post_simulated(ws, label_studio.url, label_studio.token, n_raters=3, p_correct=1.0, seed=1)
    assert posted["annotations_posted"] == 6 * 3 * 2  # clips x raters x (acoustic, semantic) project
    pull(ws, label_studio.url, label_studio.token)
    ann = ws.read_df("annotations")
    clips = ws.read_df("clips").set_index("clip_id")
    emo = ann[ann.dimension == "acoustic_emotion"]
    assert len(emo) == 18 and (emo.value.to_numpy() == clips.loc[emo.clip_id, "intended_acoustic"].to_numpy()).all()
    assert set(ann.dimension) >= {"acoustic_emotion", "semantic_emotion", "valence", "arousal", "dominance"}
