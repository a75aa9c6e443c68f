"""casebench.synth: sentence sources, the crossing plan, the TTS backends (espeak-ng for real, a command
written by the test, an OpenAI-compatible server run by the test), resuming after kill -9, and the CLI."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from casebench.audio import file_sha256, loudness_lufs
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.synth import synth
from casebench.synth.backends import BACKENDS, make_backend
from casebench.synth.backends.espeak import PROFILES
from casebench.synth.design import cell_counts, make_plan, parse_cell_counts, plan_matrix
from casebench.synth.texts import (
    Sentence,
    TextBank,
    builtin_bank,
    dedupe,
    llm_bank,
    normalize_text,
    parse_lines,
    read_csv_bank,
)
from casebench.taxonomy import get_taxonomy
from casebench.testing import JsonApiHandler, local_http_server
from casebench.workspace import Workspace

EKMAN = list(get_taxonomy("ekman7").labels)


def new_ws(path: Path, name: str = "t") -> Workspace:
    return Workspace.create(path, name)


# ----- texts


def test_builtin_bank_has_25_distinct_sentences_per_ekman7_emotion():
    bank = builtin_bank()
    assert list(bank.sentences) == EKMAN
    keys = [normalize_text(s.text) for v in bank.sentences.values() for s in v]
    assert len(keys) == len(set(keys)), "a sentence is listed twice"
    for emotion, sentences in bank.sentences.items():
        assert len(sentences) >= 25, emotion
        for s in sentences:
            assert s.emotion == emotion and s.source == "builtin:en"
            assert 5 <= len(s.text.split()) <= 20, s.text
    assert bank.notes == [] and len(bank.fingerprint) == 16


def test_builtin_bank_unknown_language():
    with pytest.raises(ConfigError, match="no built-in sentence bank for language 'fr'"):
        builtin_bank("fr")


def test_csv_bank_reads_and_dedupes(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("text,semantic_emotion,notes\nI won the prize!,happy,x\n\"Rain, again.\",Sad,\n"
                 "i won the prize,happy,dup\n\n", encoding="utf-8")
    bank = read_csv_bank(p)
    assert bank.counts() == {"happy": 1, "sad": 1}
    sad = bank.sentences["sad"][0]
    assert sad.text == "Rain, again." and sad.source == "csv:s.csv:3"
    assert "1 duplicate sentence(s) for 'happy'" in bank.notes[0]


def test_csv_bank_lists_every_problem_with_line_and_did_you_mean(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("text,semantic_emotion\nfine,happy\n,sad\nhello there,angy\nok,zzz\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_csv_bank(p)
    text = str(e.value)
    assert len(e.value.problems) == 3
    assert "bad.csv:3: field 'text': empty text" in text
    assert "bad.csv:4: field 'semantic_emotion': unknown label 'angy'" in text
    assert "did you mean 'angry'?" in text
    assert "bad.csv:5" in text
    header = tmp_path / "header.csv"
    header.write_text("text,semantic_emo\nx,happy\n", encoding="utf-8")
    with pytest.raises(InputError, match="did you mean 'semantic_emo'"):
        read_csv_bank(header)


def test_parse_lines_and_dedupe():
    answer = "Sure! Here are three sentences:\n\n1. \"We won!\"\n2) we WON\n* The cat left.\n- ok\n"
    lines = parse_lines(answer)
    assert lines == ["We won!", "we WON", "The cat left."]
    kept, dropped = dedupe(Sentence(t, "happy", "x") for t in lines)
    assert [s.text for s in kept] == ["We won!", "The cat left."] and dropped == 1


# ----- design


def test_plan_is_balanced_with_congruent_controls_and_reproducible():
    bank = builtin_bank().sentences
    voices = ["v1", "v2", "v3"]
    plan = make_plan(bank, EKMAN, voices, per_cell=2, seed=3)
    assert len(plan) == 7 * 7 * 2
    assert all(n == 2 for row in plan_matrix(plan, EKMAN).values() for n in row.values())
    assert sum(c.is_congruent for c in plan) == 14
    assert plan == make_plan(bank, EKMAN, voices, per_cell=2, seed=3)
    assert [c.text for c in plan] != [c.text for c in make_plan(bank, EKMAN, voices, per_cell=2, seed=4)]
    assert len({c.clip_id for c in plan}) == len(plan)
    for a in EKMAN:  # every voice speaks every acoustic emotion, evenly
        counts = Counter(c.voice for c in plan if c.acoustic == a)
        assert set(counts) == set(voices) and max(counts.values()) - min(counts.values()) <= 1
    for s in EKMAN:  # 14 slots, 28 sentences: no sentence reused
        texts = [c.text for c in plan if c.semantic == s]
        assert len(texts) == len(set(texts)) and all(t in {x.text for x in bank[s]} for t in texts)


def test_cell_counts_congruent_and_overrides():
    counts = cell_counts(["angry", "sad"], per_cell=2, congruent=0, overrides={("angry", "sad"): 5})
    assert counts == {("angry", "sad"): 5, ("sad", "angry"): 2}
    with pytest.raises(ConfigError, match="did you mean 'angry'"):
        cell_counts(["angry", "sad"], overrides={("angy", "sad"): 1})
    assert parse_cell_counts("angry/sad=3, sad/sad=0") == {("angry", "sad"): 3, ("sad", "sad"): 0}
    with pytest.raises(InputError) as e:
        parse_cell_counts("angry-sad=1,happy/sad=x")
    assert len(e.value.problems) == 2


def test_plan_needs_sentences_for_every_semantic_emotion():
    bank = {"angry": [Sentence("grr it broke", "angry", "t")]}
    with pytest.raises(ConfigError, match=r"no sentences for semantic emotion\(s\) \['sad'\]"):
        make_plan(bank, ["angry", "sad"], ["v"])
    small = make_plan(bank, ["angry"], ["v"], per_cell=3)
    assert [c.text for c in small] == ["grr it broke"] * 3 and len({c.clip_id for c in small}) == 3


def test_backend_registry_meta():
    for name, cls in BACKENDS.items():
        assert cls.name == name and cls.__doc__ and cls.description and cls.licence_note
    with pytest.raises(ConfigError, match="did you mean 'espeak-ng'"):
        make_backend("espeak")
    assert set(PROFILES) == set(EKMAN)


# ----- espeak-ng, for real


@pytest.fixture(scope="module")
def espeak_ws(tmp_path_factory):
    ws = new_ws(tmp_path_factory.mktemp("espeak") / "ws")
    summary = synth(ws, emotions=EKMAN, per_cell=1, voices=["en-us+m3", "en-us+f3"], seed=0)
    return ws, summary


def _median_f0(path: Path) -> float:
    import librosa

    x, sr = sf.read(str(path))
    f0 = librosa.yin(x, fmin=60, fmax=600, sr=sr, frame_length=1024)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[rms > 0.3 * rms.max()]))


@pytest.mark.slow
def test_espeak_synth_fills_a_valid_clips_table(espeak_ws):
    ws, summary = espeak_ws
    assert summary["n_planned"] == summary["n_made"] == summary["n_in_table"] == 49
    assert summary["n_congruent"] == 7 and summary["n_conflict"] == 42 and summary["n_failed"] == 0
    table = ws.read_table("clips")  # validated against the schema
    df = table.to_pandas()
    assert len(df) == 49 and df.clip_id.is_unique
    assert set(df.speaker_id) == {"espeak-ng:en-us+m3", "espeak-ng:en-us+f3"}
    assert set(df.gender) == {"male", "female"}
    assert (df.source == "synth:espeak-ng").all() and (df.language == "en").all()
    assert Counter(zip(df.intended_acoustic, df.intended_semantic, strict=True)) == {
        (a, s): 1 for a in EKMAN for s in EKMAN}
    for row in df.itertuples():
        info = sf.info(str(ws.resolve(row.path)))
        assert info.samplerate == row.sample_rate == 16000 and info.channels == 1
        assert info.duration == pytest.approx(row.duration_s, abs=1e-3)
        assert 1.0 < row.duration_s < 10.0
        assert file_sha256(ws.resolve(row.path)) == row.sha256
        params = json.loads(row.meta_tts_params)
        assert params["voice"] == row.meta_voice and params["rate"] == PROFILES[row.intended_acoustic].rate
        assert row.text_prompt in {s.text for s in builtin_bank().sentences[row.intended_semantic]}
    report = json.loads((ws.reports_dir / "synth.json").read_text())
    assert report["config_hash"] == summary["config_hash"] and report["matrix"]["angry"]["sad"] == 1
    assert ws.config["synth"]["config_hash"] == summary["config_hash"]


@pytest.mark.slow
def test_espeak_profiles_differ_measurably(espeak_ws):
    """Angry is higher, faster and louder than sad, for each voice (the profiles' designed directions)."""
    ws, _ = espeak_ws
    df = ws.read_df("clips")
    df = df[df.intended_acoustic.isin(["angry", "sad"])].copy()
    df["f0"] = [_median_f0(ws.resolve(p)) for p in df.path]
    df["words_per_s"] = df.text_prompt.str.split().str.len() / df.duration_s
    df["lufs"] = [loudness_lufs(sf.read(str(ws.resolve(p)))[0], 16000) for p in df.path]
    means = df.groupby(["meta_voice", "intended_acoustic"])[["f0", "words_per_s", "lufs"]].mean()
    for voice in ("en-us+m3", "en-us+f3"):
        angry, sad = means.loc[(voice, "angry")], means.loc[(voice, "sad")]
        assert angry.f0 > 1.3 * sad.f0, (voice, angry.f0, sad.f0)
        assert angry.words_per_s > 1.4 * sad.words_per_s
        assert angry.lufs - sad.lufs > 5  # +4.6 dB vs -3.1 dB around -23 LUFS


@pytest.mark.slow
def test_espeak_rerun_skips_everything(espeak_ws):
    ws, first = espeak_ws
    again = synth(ws, emotions=EKMAN, per_cell=1, voices=["en-us+m3", "en-us+f3"], seed=0)
    assert again["config_hash"] == first["config_hash"]
    assert again["n_done_before"] == 49 and again["n_made"] == 0 and ws.read_table("clips").num_rows == 49


def test_espeak_bad_voice_stops_after_a_few_failures(tmp_path):
    ws = new_ws(tmp_path / "ws")
    with pytest.raises(InputError, match="failed on the first 3 clips") as e:
        synth(ws, emotions=["angry", "sad"], voices=["xx-nosuchvoice"], abort_after=3)
    assert all(p.id.startswith("s-") for p in e.value.problems)
    assert not ws.has_table("clips")


# ----- command backend


SCRIPT = '''\
import argparse, json, math, struct, sys, wave
p = argparse.ArgumentParser()
for a in ("--emotion", "--text", "--voice", "--out", "--log"):
    p.add_argument(a)
a = p.parse_args()
if a.text == "FAIL":
    print("boom: cannot say that", file=sys.stderr)
    sys.exit(3)
freq = {"angry": 300.0, "sad": 120.0}.get(a.emotion, 200.0)
sr = 22050
n = int(sr * (0.6 + 0.05 * len(a.text.split())))
frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / sr))
                              if (i // 2205) % 3 else 0) for i in range(n))
with wave.open(a.out, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr); w.writeframes(frames)
with open(a.log, "a", encoding="utf-8") as f:
    f.write(json.dumps({"emotion": a.emotion, "text": a.text, "voice": a.voice}) + "\\n")
'''


def _command(tmp_path: Path) -> tuple[str, Path]:
    script = tmp_path / "mytts.py"
    script.write_text(SCRIPT, encoding="utf-8")
    log = tmp_path / "calls.jsonl"
    cmd = (f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --emotion {{emotion}} --text {{text}} "
           f"--voice {{voice}} --out {{out}} --log {shlex.quote(str(log))}")
    return cmd, log


def test_command_backend_passes_text_as_one_argument(tmp_path):
    cmd, log = _command(tmp_path)
    tricky = 'He said "stop"; then $HOME & `rm -rf` {left}.'
    texts = tmp_path / "t.csv"
    texts.write_text(f'text,semantic_emotion\n"{tricky.replace(chr(34), chr(34) * 2)}",angry\n'
                     "I miss her every day,sad\n", encoding="utf-8")
    ws = new_ws(tmp_path / "ws")
    summary = synth(ws, backend="command", backend_options={"command": cmd}, voices=["v1"],
                    emotions=["angry", "sad"], per_cell=1, texts=texts)
    assert summary["n_in_table"] == 4
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(calls) == 4 and {c["text"] for c in calls} == {tricky, "I miss her every day"}
    assert Counter(c["emotion"] for c in calls) == {"angry": 2, "sad": 2}
    assert {c["voice"] for c in calls} == {"v1"}
    df = ws.read_df("clips")
    assert (df.sample_rate == 16000).all() and (df.source == "synth:command").all()
    assert set(df.text_prompt) == {tricky, "I miss her every day"}
    assert json.loads(df.meta_tts_params[0])["command"] == cmd


def test_command_backend_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"has no \{out\}"):
        make_backend("command", command="mytts --text {text}")
    with pytest.raises(ConfigError, match="needs --tts-cmd"):
        make_backend("command")
    ws = new_ws(tmp_path / "ws")
    with pytest.raises(ConfigError, match="not found"):
        synth(ws, backend="command", backend_options={"command": "no-such-tts-xyz {text} {out}"},
              emotions=["angry"])
    cmd, _ = _command(tmp_path)
    fail = tmp_path / "f.csv"
    fail.write_text("text,semantic_emotion\nFAIL,angry\nall good here,sad\n", encoding="utf-8")
    with pytest.raises(InputError, match="1 of 3 clips failed") as e:
        synth(ws, backend="command", backend_options={"command": cmd}, voices=["v1"],
              emotions=["angry", "sad"], per_cell=1, counts={("sad", "angry"): 0}, texts=fail)
    assert "exited with code 3: boom: cannot say that" in str(e.value)
    assert ws.read_table("clips").num_rows == 2  # the clips that worked are kept


# ----- OpenAI-compatible server (chat completions + audio speech), run by the test


def _wav_bytes(freq: float, seconds: float = 1.2, sr: int = 24000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    gate = (np.floor(t / 0.1) % 3 != 0).astype(float)
    buf = io.BytesIO()
    sf.write(buf, 0.3 * gate * np.sin(2 * math.pi * freq * t), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class _Handler(JsonApiHandler):
    requests: list = []

    def do_POST(self):
        body = self.read_json()
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if body.get("model") == "broken":
            return self.send(500, {"error": "model crashed"})
        if self.path == "/v1/chat/completions":
            prompt = body["messages"][-1]["content"]
            emotion = re.search(r"emotion '(\w+)'", prompt).group(1)
            n = int(re.match(r"Write (\d+)", prompt).group(1))
            k = sum(1 for r in self.requests if r["path"] == self.path)
            lines = [f"Here are {n} sentences:"] + [f"{i + 1}. The {emotion} test sentence {k}-{i} is here."
                                                    for i in range(n)]
            lines.append(f"- the {emotion} TEST sentence {k}-0 is here")  # a duplicate
            answer = {"choices": [{"message": {"role": "assistant", "content": "\n".join(lines)}}]}
            return self.send(200, answer)
        if self.path == "/v1/audio/speech":
            if body.get("response_format") != "wav" or not body.get("input"):
                return self.send(400, {"error": "bad request"})
            freq = 300.0 if "angry" in body["instructions"] else 140.0
            return self.send(200, _wav_bytes(freq), "audio/wav")
        return self.send(404, {})


@pytest.fixture(scope="module")
def api_server():
    _Handler.requests = []
    with local_http_server(_Handler) as url:
        yield f"{url}/v1", _Handler.requests


@pytest.mark.slow
def test_llm_bank_dedupes_and_keeps_prompts(api_server, monkeypatch):
    url, requests = api_server
    monkeypatch.setenv("CASEBENCH_LLM_API_KEY", "llm-key")
    before = len(requests)
    bank = llm_bank(url, "chat-test", {"happy": 3, "sad": 2})
    assert bank.counts() == {"happy": 3, "sad": 2}
    assert any("duplicate sentence(s) from the model for 'happy'" in n for n in bank.notes)
    s = bank.sentences["happy"][0]
    assert s.source == "llm:chat-test" and "emotion 'happy'" in s.prompt and s.prompt.startswith("Write 3 ")
    new = requests[before:]
    assert len(new) == 2 and all(r["auth"] == "Bearer llm-key" for r in new)
    assert new[0]["body"]["model"] == "chat-test" and new[0]["body"]["messages"][0]["role"] == "system"
    with pytest.raises(ConfigError, match="HTTP 500"):
        llm_bank(url, "broken", {"happy": 1})


@pytest.mark.slow
def test_openai_tts_and_llm_texts_end_to_end(api_server, tmp_path, monkeypatch):
    url, requests = api_server
    monkeypatch.setenv("CASEBENCH_TTS_API_KEY", "tts-secret")
    monkeypatch.setenv("CASEBENCH_LLM_API_KEY", "llm-secret")
    ws = new_ws(tmp_path / "ws")
    before = len(requests)
    kwargs = dict(backend="openai", backend_options={"url": url, "model": "tts-test"},
                  voices=["alloy", "nova"], emotions=["angry", "sad"], per_cell=1, text_llm=url,
                  llm_model="chat-test")
    summary = synth(ws, **kwargs)
    assert summary["n_in_table"] == 4
    new = requests[before:]
    speech = [r for r in new if r["path"] == "/v1/audio/speech"]
    chat = [r for r in new if r["path"] == "/v1/chat/completions"]
    assert len(speech) == 4 and len(chat) == 2
    assert all(r["auth"] == "Bearer tts-secret" for r in speech)
    assert {r["body"]["voice"] for r in speech} == {"alloy", "nova"}
    for r in speech:
        b = r["body"]
        assert b["model"] == "tts-test" and b["response_format"] == "wav"
        assert b["instructions"].startswith("Speak in a ") and ("angry" in b["instructions"] or "sad" in
                                                               b["instructions"])
    df = ws.read_df("clips")
    assert (df.meta_text_source == "llm:chat-test").all()
    for row in df.itertuples():
        assert f"emotion '{row.intended_semantic}'" in row.meta_text_generation_prompt
        assert json.loads(row.meta_tts_params)["instructions"].count(
            {"angry": "angry", "sad": "sad"}[row.intended_acoustic]) >= 1
        assert sf.info(str(ws.resolve(row.path))).samplerate == 16000
    # resumed run: the sentences come from the workspace cache, the clips from the journal
    again = synth(ws, **kwargs)
    assert again["n_made"] == 0 and len(requests) == before + 6
    # secrets are never written to the workspace
    for p in ws.root.rglob("*"):
        if p.is_file() and p.suffix in (".toml", ".json", ".parquet"):
            assert b"secret" not in p.read_bytes(), p


@pytest.mark.slow
def test_openai_tts_server_error_is_a_config_error(api_server, tmp_path):
    url, _ = api_server
    ws = new_ws(tmp_path / "ws")
    with pytest.raises(ConfigError, match="HTTP 500"):
        synth(ws, backend="openai", backend_options={"url": url, "model": "broken"}, emotions=["angry"])


# ----- resume after kill -9


@pytest.mark.slow
def test_synth_killed_midway_resumes_without_loss_or_duplicates(tmp_path):
    ws = new_ws(tmp_path / "ws")
    emotions = ["angry", "happy", "neutral", "sad", "fear"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "casebench", "synth", str(ws.root), "--emotions",
                             ",".join(emotions), "--per-cell", "1", "--batch-size", "2", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts_dir = ws.tables_dir / ".parts" / "synth"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts_dir.glob("*/part-*.parquet"))) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"synth ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    journal_dir = next(parts_dir.iterdir())
    done = {cid for p in journal_dir.glob("part-*.parquet")
            for cid in pq.read_table(p).column("clip_id").to_pylist()}
    assert 0 < len(done) < 25
    summary = synth(ws, emotions=emotions, per_cell=1)
    assert summary["config_hash"] == journal_dir.name
    assert summary["n_done_before"] == len(done) and summary["n_made"] == 25 - len(done)
    df = ws.read_df("clips")
    plan_ids = {c.clip_id for c in make_plan(builtin_bank().sentences, emotions,
                                             list(BACKENDS["espeak-ng"].default_voices), per_cell=1)}
    assert len(df) == 25 and df.clip_id.is_unique and set(df.clip_id) == plan_ids
    for row in df.itertuples():
        assert file_sha256(ws.resolve(row.path)) == row.sha256
    assert len(list((ws.root / "audio" / "synth").glob("*.flac"))) == 25


# ----- CLI


def test_cli_init_synth_json_and_errors(tmp_path, capsys):
    root = tmp_path / "corpus"
    assert main(["init", str(root), "--licence", "CC-BY-4.0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["project"]["name"] == "corpus" and out["config"]["project"]["licence"] == "CC-BY-4.0"
    assert main(["init", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["synth", str(root), "--emotions", "angry,sad", "--per-cell", "1", "--voices", "en-us+m3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_in_table"] == 4 and out["voices"] == ["en-us+m3"]
    assert main(["synth", str(root), "--emotions", "angy,sad"]) == 2
    err = capsys.readouterr().err
    assert "angy" in err and "did you mean 'angry'" in err
    assert main(["synth", str(tmp_path / "nope")]) == 2
    assert "not a casebench workspace" in capsys.readouterr().err


def test_textbank_objects_can_be_passed_directly(tmp_path):
    ws = new_ws(tmp_path / "ws")
    bank = TextBank({"angry": [Sentence("You broke it again on purpose", "angry", "mine")]}, "mine")
    s = synth(ws, emotions=["angry"], texts=bank, voices=["en-us+f3"])
    assert s["n_in_table"] == 2  # per_cell=2 by default; a one-sentence bank is dealt twice
    assert (ws.read_df("clips").meta_text_source == "mine").all()
