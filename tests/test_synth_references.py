"""Reference-prompted synthesis: references picked from an imported corpus tree (casebench.corpora.testing),
every cell filled or reported missing, provenance, no reference speaker across splits, and the recipes of
docs/reference-synthesis.md run against stand-in scripts that take the real tools' arguments."""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from casebench.audit import audit_splits
from casebench.cli import main
from casebench.corpora import import_corpus
from casebench.corpora.testing import make_crema_d
from casebench.errors import ConfigError, InputError
from casebench.splits import holdout_splits, split
from casebench.synth import synth
from casebench.synth.references import choose_speakers, reference_pool
from casebench.testing import JsonApiHandler, local_http_server, write_tts_standins
from casebench.workspace import Workspace

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference-synthesis.md"

@pytest.fixture(scope="module")
def crema_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("crema")
    tree = make_crema_d(root / "CREMA-D")
    import_corpus("crema-d", tree, root / "crema-ws", taxonomy="ekman7")
    return Workspace.open(root / "crema-ws")


@pytest.fixture()
def tools(tmp_path, monkeypatch):
    """f5-tts_infer-cli and tts stand-ins on PATH; returns the log file."""
    bin_dir = tmp_path / "bin"
    write_tts_standins(bin_dir)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("STANDIN_LOG", str(log))
    return log


def _recipe(name: str) -> str:
    text = DOCS.read_text("utf-8")
    m = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\n(.*?)\n```", text, re.S)
    assert m, f"no recipe {name} in {DOCS}"
    return m.group(1).strip()


def test_reference_pool_from_an_imported_tree(crema_ws):
    pool = reference_pool(crema_ws)
    # the tree's readable labelled clips: 1001 ANG/HAP, 1002 NEU/SAD, 1064 SAD, 1091 FEA/DIS
    assert pool.available() == {"1001": {"angry", "happy"}, "1002": {"neutral", "sad"}, "1064": {"sad"},
                                "1091": {"fear", "disgust"}}
    ref = next(r for r in pool.references if r.clip_id == "crema-d-1001_DFA_ANG_XX")
    assert ref.text == "Don't forget a jacket" and ref.speaker == "crema-d:1001" and Path(ref.audio).is_file()
    assert choose_speakers(pool, ["angry", "happy"]) == ["1001"]
    with pytest.raises(InputError, match="did you mean '1091'"):
        choose_speakers(pool, ["angry"], speakers=["1090"])
    with pytest.raises(InputError, match="no split 'train'|no splits table"):
        reference_pool(crema_ws, split="train")


def test_every_cell_filled_or_reported_missing_with_provenance(crema_ws, tools, tmp_path):
    ws = Workspace.create(tmp_path / "conflict", "conflict", taxonomy="ekman7")
    emotions = ["angry", "happy", "sad", "surprise"]
    summary = synth(ws, backend="command", reference_from=crema_ws.root, emotions=emotions, per_cell=1,
                    backend_options={"command": _recipe("f5-tts").split("--tts-cmd ", 1)[1].strip("'")})
    # CREMA-D has no surprise take: the four surprise-voice cells are missing, every other cell is filled
    assert summary["n_missing"] == 4
    assert {m["cell"] for m in summary["missing"]} == {f"surprise/{s}" for s in emotions}
    assert all("no 'surprise' clip at all" in m["reason"] for m in summary["missing"])
    assert summary["n_in_table"] == 12
    clips = ws.read_df("clips")
    filled = {(a, s) for a, s in zip(clips.intended_acoustic, clips.intended_semantic, strict=True)}
    assert filled == {(a, s) for a in emotions if a != "surprise" for s in emotions}
    refs = crema_ws.read_df("clips").set_index("clip_id")
    ref_labels = crema_ws.read_df("labels").set_index("clip_id")["acoustic_label"]
    for row in clips.itertuples():
        # the reference is a take of the clip's speaker in the clip's voice emotion
        assert ref_labels[row.meta_reference_clip] == row.intended_acoustic
        assert row.meta_reference_speaker == f"crema-d:{refs.loc[row.meta_reference_clip, 'speaker_id']}"
        assert row.speaker_id == row.meta_reference_speaker
        assert row.meta_reference_text == refs.loc[row.meta_reference_clip, "text_prompt"]
    calls = [json.loads(line) for line in tools.read_text().splitlines()]
    assert len(calls) == 12 and all(c["tool"] == "f5" for c in calls)
    argv = calls[0]["argv"]
    assert argv[argv.index("--ref_audio") + 1].endswith(".wav") and argv[argv.index("--model") + 1] == "F5TTS_v1_Base"
    assert {c["argv"][c["argv"].index("--ref_text") + 1] for c in calls} <= {
        "Don't forget a jacket", "It's eleven o'clock", "That is exactly what happened"}
    again = synth(ws, backend="command", reference_from=crema_ws.root, emotions=emotions, per_cell=1,
                  backend_options={"command": _recipe("f5-tts").split("--tts-cmd ", 1)[1].strip("'")})
    assert again["n_made"] == 0 and again["n_missing"] == 4  # resumed: nothing redone


def test_reference_speakers_never_cross_splits(crema_ws, tools, tmp_path):
    ws = Workspace.create(tmp_path / "conflict", "conflict", taxonomy="ekman7")
    synth(ws, backend="command", reference_from=crema_ws.root, emotions=["angry", "happy", "sad", "neutral"],
          per_cell=1, backend_options={"command": _recipe("xtts").split("--tts-cmd ", 1)[1].strip("'")})
    res = split(ws, ratios={"train": 0.5, "test": 0.5}, seed=0, require_all_classes=False)
    assert res["config"]["group_by"] == ["speaker_id"]
    frame = ws.read_df("splits").merge(ws.read_df("clips"), on="clip_id")
    assert frame.groupby("meta_reference_speaker")["split"].nunique().max() == 1
    assert audit_splits(ws.read_df("splits"), ws.read_df("clips"))["passed"]
    # the data card says how the clips were made
    from casebench.datacard import card_context, render_card

    counts = {"order": [], "rows": {}, "configs": {}, "views": {}, "test_in_no_view": 0}
    ctx = card_context(ws, ws.read_df("clips"), fields={"licence": "CC0-1.0"}, split_counts=counts,
                       audit_report=None, allow_leakage=None, hide_test_labels=False, hidden_splits=[],
                       annotations=None, transcripts=None, images_dir=ws.root / "img", repo_id=None, configs={},
                       n_boot=20)
    assert ctx["references"]["corpora"] == ["crema-d"] and ctx["references"]["n_clips"] == 16
    card = render_card(ctx)
    assert "reference-prompted synthesis" in card and "not checked with `casebench perceive`" in card
    # the rule itself: clips of different voices that share a reference speaker are grouped, and the audit
    # fails a split that separates them
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(8)],
                          "speaker_id": ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"],
                          "meta_reference_speaker": ["crema-d:1", "crema-d:1", "crema-d:2", "crema-d:2",
                                                     "crema-d:3", "crema-d:3", "crema-d:4", "crema-d:4"],
                          "intended_acoustic": ["angry", "sad"] * 4, "intended_semantic": ["sad", "angry"] * 4})
    table = holdout_splits(clips, None, ratios={"train": 0.5, "test": 0.5}, seed=1,
                           require_all_classes=False).table.merge(clips, on="clip_id")
    assert table.groupby("meta_reference_speaker")["split"].nunique().max() == 1
    bad = pd.DataFrame({"clip_id": clips.clip_id, "split": ["train", "test"] * 4})
    report = audit_splits(bad, clips)
    assert not report["passed"] and any("speakers" in line and "crema-d:" in line for line in report["leaks"])


def test_reference_settings_are_checked(crema_ws, tmp_path):
    ws = Workspace.create(tmp_path / "conflict", "conflict", taxonomy="ekman7")
    with pytest.raises(ConfigError, match="cannot be prompted with a reference"):
        synth(ws, reference_from=crema_ws.root, emotions=["angry"])
    with pytest.raises(ConfigError, match=r"has no \{ref_audio\}"):
        synth(ws, backend="command", backend_options={"command": "x {text} {out}"}, reference_from=crema_ws.root)
    with pytest.raises(ConfigError, match="pass --reference-from"):
        synth(ws, backend="command", backend_options={"command": "x --ref {ref_audio} {text} {out}"})
    with pytest.raises(ConfigError, match="--tts-body"):
        synth(ws, backend="openai", backend_options={"url": "http://127.0.0.1:9/v1", "model": "m"},
              reference_from=crema_ws.root)
    code = main(["synth", str(ws.root), "--reference-from", str(tmp_path / "nope"), "--backend", "command",
                 "--tts-cmd", "x {ref_audio} {text} {out}"])
    assert code == 2


def test_docs_recipes_run_against_stand_ins(crema_ws, tools, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("crema-ws").symlink_to(crema_ws.root)
    for name, n_calls in (("f5-tts", 9), ("xtts", 9)):
        assert main(["init", "conflict-ws", "--taxonomy", "ekman7"]) == 0
        assert main(shlex.split(_recipe(name))[1:]) == 0, name
        assert len(Workspace.open("conflict-ws").read_df("clips")) == n_calls
        import shutil

        shutil.rmtree("conflict-ws")
    calls = [json.loads(line) for line in tools.read_text().splitlines()]
    assert [c["tool"] for c in calls].count("xtts") == 9
    x = calls[-1]["argv"]
    assert x[x.index("--language_idx") + 1] == "en" and x[x.index("--speaker_wav") + 1].endswith(".wav")
    # the report names the reference workspace (a relative --reference-from was recorded as "." : the
    # pathlib.Path's .root) and the console counts the takes that voice the clips, not the whole pool
    capsys.readouterr()
    assert main(["init", "c2", "--taxonomy", "ekman7"]) == 0
    assert main(["synth", "c2", "--reference-from", "crema-ws", "--reference-speakers", "2", "--per-cell", "1",
                 "--emotions", "angry,sad", "--backend", "command", "--no-progress",
                 "--tts-cmd", _recipe("f5-tts").split("--tts-cmd ", 1)[1].strip("'")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    ref = json.loads((tmp_path / "c2" / "reports" / "synth.json").read_text())["reference"]
    assert ref["workspace"] == str((tmp_path / "crema-ws").resolve())
    assert Workspace.open(tmp_path / "c2").section("synth")["reference_from"] == ref["workspace"]
    used = {c["reference_clip"] for c in ref["clips"].values()}
    assert f"references: {len(used)} take(s) of 2 speaker(s) voice these clips" in out and len(used) < 7


# ----- the instruction-following API recipe and --tts-body, against a local OpenAI-style server


class _Speech(JsonApiHandler):
    requests: list = []

    def do_POST(self):
        body = self.read_json()
        self.requests.append(body)
        if self.path != "/v1/audio/speech":
            code, out, ctype = 404, b'{"error": {"message": "not found"}}', "application/json"
        elif body.get("voice") == "broken":
            code, out, ctype = 400, b'{"error": {"message": "unknown voice broken"}}', "application/json"
        else:
            buf = io.BytesIO()
            t = np.arange(24000) / 24000
            f0 = 260.0 if "angry" in body.get("instructions", "") else 150.0
            sf.write(buf, 0.3 * np.sin(2 * np.pi * f0 * t), 24000, format="WAV", subtype="PCM_16")
            code, out, ctype = 200, buf.getvalue(), "audio/wav"
        self.send(code, out, ctype)


@pytest.fixture()
def speech_server():
    _Speech.requests = []
    with local_http_server(_Speech) as url:
        yield f"{url}/v1", _Speech.requests


def test_instruction_api_recipe_and_errors(speech_server, tmp_path, monkeypatch):
    url, requests = speech_server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASEBENCH_TTS_API_KEY", "k")
    assert main(["init", "conflict-ws", "--taxonomy", "ekman7"]) == 0
    argv = shlex.split(_recipe("openai-instructions").replace("https://api.openai.com/v1", url))[1:]
    assert main(argv) == 0
    assert len(requests) == 9 and {r["voice"] for r in requests} == {"alloy", "coral"}
    assert all(r["model"] == "gpt-4o-mini-tts" and r["instructions"].startswith("Speak in a ") for r in requests)
    assert main(["init", "ws2", "--taxonomy", "ekman7"]) == 0
    code = main(["synth", "ws2", "--backend", "openai", "--tts-url", url, "--tts-model", "m", "--voices", "broken",
                 "--emotions", "angry", "--per-cell", "1"])
    assert code == 2  # HTTP 400 from the server: a clear error, no traceback


def test_http_backend_gets_the_reference_in_body_fields(crema_ws, speech_server, tmp_path):
    url, requests = speech_server
    ws = Workspace.create(tmp_path / "conflict", "conflict", taxonomy="ekman7")
    summary = synth(ws, backend="openai", reference_from=crema_ws.root, emotions=["angry", "sad"], per_cell=1,
                    backend_options={"url": url, "model": "clone",
                                     "body": '{"ref_audio": "{ref_audio_b64}", "ref_text": "{ref_text}"}'})
    assert summary["n_in_table"] == 4 and len(requests) == 4
    for r in requests:
        wav, sr = sf.read(io.BytesIO(base64.b64decode(r["ref_audio"])))
        assert sr == 16000 and len(wav) == 3200  # the tree's 0.2 s take, as WAV
        assert r["ref_text"] in ("Don't forget a jacket", "That is exactly what happened", "It's eleven o'clock")
    stored = ws.read_df("clips")
    assert stored.meta_reference_clip.notna().all()
    assert not any("ref_audio" in json.loads(p) and len(json.loads(p)["ref_audio"]) > 0
                   for p in stored.meta_tts_params)  # the take's bytes are not stored with each clip


def test_reference_split_keeps_to_one_split_of_the_reference_corpus(tmp_path):
    tree = make_crema_d(tmp_path / "CREMA-D")
    import_corpus("crema-d", tree, tmp_path / "ws", taxonomy="ekman7")
    ref = Workspace.open(tmp_path / "ws")
    clips = ref.read_df("clips")
    split_of = {c: ("train" if s in ("1001", "1091") else "test") for c, s in zip(clips.clip_id, clips.speaker_id,
                                                                                  strict=True)}
    ref.write_table("splits", pd.DataFrame({"clip_id": list(split_of), "split": list(split_of.values())}))
    pool = reference_pool(ref, split="train")
    assert {r.local_speaker for r in pool.references} == {"1001", "1091"}
    assert all(split_of[r.clip_id] == "train" for r in pool.references)
    with pytest.raises(InputError, match="no split 'dev'"):
        reference_pool(ref, split="dev")


def test_perceive_on_a_speaker_emotion_confound_says_untestable(crema_ws, tools, tmp_path, capsys):
    """The tree's four speakers hold one or two emotions each, so every voice emotion of the clips comes from
    one speaker (sad from two): a leave-one-speaker-out probe cannot recognise them whatever the TTS does.
    `perceive` said "near chance: the voice emotion is not recognisable" (blaming the voices); now it says
    untestable, names the confound, and the card carries the warning."""
    ws = Workspace.create(tmp_path / "conflict", "conflict", taxonomy="ekman7")
    synth(ws, backend="command", reference_from=crema_ws.root, emotions=["angry", "happy", "neutral", "sad"],
          per_cell=1, backend_options={"command": _recipe("f5-tts").split("--tts-cmd ", 1)[1].strip("'")})
    assert main(["perceive", str(ws.root), "--bootstrap", "50"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("untestable:") and "speaker and emotion are confounded" in out
    report = json.loads((ws.reports_dir / "perception.json").read_text())
    # angry, happy (1001 only) and neutral (1002 only) cannot be learnt from the other speakers, nor the sad
    # clip of 1064 (its only emotion: the per-speaker z-scores leave nothing); 1002's sad clips can
    sad_1064 = int((ws.read_df("clips").query("intended_acoustic == 'sad'")["speaker_id"] == "crema-d:1064").sum())
    assert report["verdict"] == "untestable" and report["probe"]["n_unrecognisable"] == 12 + sad_1064 == 13
    from casebench.datacard import card_context, render_card

    counts = {"order": [], "rows": {}, "configs": {}, "views": {}, "test_in_no_view": 0}
    ctx = card_context(ws, ws.read_df("clips"), fields={"licence": "CC0-1.0"}, split_counts=counts,
                       audit_report=None, allow_leakage=None, hide_test_labels=False, hidden_splits=[],
                       annotations=None, transcripts=None, images_dir=tmp_path / "img", repo_id=None, configs={},
                       n_boot=20)
    assert "Warning: the perception check could not test the voices" in render_card(ctx)
