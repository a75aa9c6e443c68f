"""casebench.collect: ingest a folder or manifest of real-looking recordings (espeak-ng speech converted by
ffmpeg to wav/flac/mp3/ogg/m4a, plus corrupt, duplicate, clipped, silent, noisy, short and long files),
check what is kept and dropped and why, VAD segmentation, the QC report, and resuming."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from casebench.audio import loudness_lufs
from casebench.cli import main
from casebench.collect import QCSettings, collect, qc_reasons, read_manifest
from casebench.errors import InputError
from casebench.workspace import Workspace

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
                                reason="needs the Debian packages espeak-ng and ffmpeg")

SENTENCES = {
    "a": ("en-us+m3", "The meeting has been moved to Thursday at half past ten."),
    "b": ("en-us+f3", "Please put the blue folders on the second shelf."),
    "c": ("en-us+m1", "The train to the airport leaves from platform four."),
    "d": ("en-us+f2", "The library is open from nine until six on weekdays."),
    "e": ("en-us+m3", "Water boils at one hundred degrees at sea level."),
    "f": ("en-us+f3", "The printer is in the room next to the kitchen."),
    "g": ("en-us+m1", "We need two kilos of potatoes and a bag of rice."),
}
KEPT = {"a.wav", "b.wav", "c.mp3", "d.ogg", "e.m4a"}
DROPPED = {"corrupt.wav": "unreadable", "dup.flac": "duplicate", "clipped.wav": "clipping",
           "silent.wav": "silence", "noise.wav": "low-snr", "long.wav": "too-long", "short.wav": "too-short"}


def _speak(voice: str, text: str, out: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True)
    return sf.read(str(out))[0]


def _ffmpeg(src: Path, dst: Path, *args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    src, work = root / "src", root / "work"
    src.mkdir()
    work.mkdir()
    speech = {k: _speak(v, t, work / f"{k}.wav") for k, (v, t) in SENTENCES.items()}
    sr = 22050  # espeak-ng's rate
    shutil.copy(work / "a.wav", src / "a.wav")
    shutil.copy(work / "b.wav", src / "b.wav")
    _ffmpeg(work / "c.wav", src / "c.mp3")
    _ffmpeg(work / "d.wav", src / "d.ogg", "-c:a", "libvorbis")
    _ffmpeg(work / "e.wav", src / "e.m4a", "-c:a", "aac")
    _ffmpeg(work / "a.wav", src / "dup.flac")                      # lossless copy of a.wav
    sf.write(str(src / "clipped.wav"), np.clip(speech["b"] * 30, -1, 1), sr)
    sf.write(str(src / "silent.wav"), np.zeros(2 * sr), sr)
    sf.write(str(src / "noise.wav"), np.random.default_rng(0).normal(0, 0.1, 2 * sr), sr)
    sf.write(str(src / "short.wav"), speech["f"][: int(0.3 * sr)], sr)
    gap = np.zeros(int(1.5 * sr))
    long = np.concatenate([gap, speech["e"], gap, speech["f"], gap, speech["g"], gap])
    sf.write(str(src / "long.wav"), long, sr)
    (src / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)
    (src / "notes.txt").write_text("recorded in the kitchen\n")
    return src


def _by_file(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in report["outcomes"]:
        out.setdefault(o["file_key"], []).append(o)
    return out


def test_qc_reasons_pure():
    ok = {"duration_s": 2.0, "qc_clipping_ratio": 0.0, "qc_silence_ratio": 0.2, "qc_snr_db": 40.0}
    assert qc_reasons(ok, QCSettings()) == []
    bad = {"duration_s": 40.0, "qc_clipping_ratio": 0.2, "qc_silence_ratio": 0.9, "qc_snr_db": 1.0}
    codes = [r.split(":")[0] for r in qc_reasons(bad, QCSettings())]
    assert codes == ["too-long", "clipping", "silence", "low-snr"]


def test_collect_folder_keeps_good_files_and_drops_bad_ones_with_reasons(recordings, tmp_path):
    ws = Workspace.create(tmp_path / "ws", "real")
    summary = collect(ws, recordings, max_dur=6.0, batch_files=3)
    report = json.loads(Path(summary["report_json"]).read_text())
    outcomes = _by_file(report)
    assert set(outcomes) == KEPT | set(DROPPED)
    for name in KEPT:
        assert [o["status"] for o in outcomes[name]] == ["kept"], outcomes[name]
    for name, code in DROPPED.items():
        (o,) = outcomes[name]
        assert o["status"] == "dropped" and code in o["codes"], (name, o)
    assert "same audio as clip" in outcomes["dup.flac"][0]["reasons"][0]
    assert outcomes["dup.flac"][0]["reasons"][0].endswith(outcomes["a.wav"][0]["clip_id"])
    assert outcomes["corrupt.wav"][0]["reasons"][0].startswith("unreadable: ")
    assert summary["n_kept"] == 5 and summary["n_dropped"] == 7 and summary["n_files"] == 12
    assert summary["ignored"][0]["file"] == "notes.txt"
    assert summary["dropped_by_reason"]["duplicate"] == 1
    html = Path(summary["report_html"]).read_text()
    for name in [*KEPT, *DROPPED, "notes.txt", "too-long", "clipping"]:
        assert name in html

    df = ws.read_table("clips").to_pandas()  # validated against the schema
    assert set(df.meta_source_file) == KEPT and df.clip_id.is_unique
    assert (df.sample_rate == 16000).all() and (df.language == "en").all()
    assert (df.source == "collect:src").all()
    for row in df.itertuples():
        x, sr = sf.read(str(ws.resolve(row.path)))
        assert sr == 16000 and x.ndim == 1 and len(x) / sr == pytest.approx(row.duration_s, abs=1e-3)
        assert loudness_lufs(x, sr) == pytest.approx(-23.0, abs=0.5)
        assert row.qc_snr_db > 5 and row.qc_clipping_ratio == 0

    # a re-run skips every file and changes nothing
    again = collect(ws, recordings, max_dur=6.0)
    assert again["n_files_resumed"] == 12 and again["n_kept"] == 5
    assert ws.read_table("clips").num_rows == 5

    # a kill between writing the clips and the outcomes of a batch: that batch is redone, nothing doubles
    files_parts = sorted((ws.tables_dir / ".parts" / "collect-files").glob("*/part-*.parquet"))
    assert len(files_parts) == 4
    files_parts[-1].unlink()
    resumed = collect(ws, recordings, max_dur=6.0)
    assert resumed["n_files_resumed"] == 9 and resumed["n_kept"] == 5 and resumed["n_dropped"] == 7
    assert resumed["dropped_by_reason"] == summary["dropped_by_reason"]
    assert ws.read_table("clips").num_rows == 5


@pytest.mark.slow
def test_collect_with_vad_cuts_long_recordings(recordings, tmp_path):
    ws = Workspace.create(tmp_path / "ws", "real")
    summary = collect(ws, recordings, vad=True, max_dur=6.0)
    report = json.loads(Path(summary["report_json"]).read_text())
    outcomes = _by_file(report)
    segments = outcomes["long.wav"]
    assert [o["status"] for o in segments] == ["kept"] * 3
    starts = [o["segment_start_s"] for o in segments]
    assert starts == sorted(starts) and starts[0] > 1.0  # the leading 1.5 s of silence is cut off
    assert all(1.5 < o["duration_s"] < 5.0 for o in segments)
    for name in ("silent.wav", "noise.wav"):
        assert outcomes[name][0]["codes"] == ["no-speech"]
    df = ws.read_df("clips")
    long = df[df.meta_source_file == "long.wav"].sort_values("meta_segment_start_s")
    assert len(long) == 3 and long.clip_id.str.match(r"c-[0-9a-f]{12}-\d{7}-\d{7}$").all()
    assert (long.meta_segment_end_s > long.meta_segment_start_s).all()


def test_collect_manifest_with_metadata_missing_files_and_cross_run_duplicates(recordings, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,gender,language,session,mood note\n"
                        f"{recordings}/a.wav,spk1,female,en,s1,calm\n"
                        f"{recordings}/b.wav,spk2,male,,s1,\n"
                        f"missing.wav,spk3,male,en,s2,tired\n", encoding="utf-8")
    ws = Workspace.create(tmp_path / "ws", "real", languages=["en", "de"])
    summary = collect(ws, manifest)
    assert summary["n_kept"] == 2 and summary["dropped_by_reason"] == {"unreadable": 1}
    report = json.loads(Path(summary["report_json"]).read_text())
    (missing,) = _by_file(report)["missing.wav"]
    assert missing["reasons"] == ["unreadable: file not found"] and missing["line"] == 4
    df = ws.read_df("clips").set_index("meta_source_file")
    a, b = df.loc[f"{recordings}/a.wav"], df.loc[f"{recordings}/b.wav"]
    assert (a.speaker_id, a.gender, a.session, a.meta_mood_note) == ("spk1", "female", "s1", "calm")
    assert b.language == "en" and pd.isna(b.meta_mood_note)   # empty cell -> workspace default / null

    jsonl = tmp_path / "m2.jsonl"
    jsonl.write_text(json.dumps({"path": str(recordings / "dup.flac"), "speaker": "spk1", "take": 2}) + "\n"
                     + json.dumps({"path": str(recordings / "d.ogg"), "take": 1}) + "\n"
                     + json.dumps({"path": str(recordings / "e.m4a"), "clip_id": a.clip_id}) + "\n",
                     encoding="utf-8")
    second = collect(ws, jsonl, speaker="default-spk")
    outcomes = _by_file(json.loads(Path(second["report_json"]).read_text()))
    (dup,) = outcomes[str(recordings / "dup.flac")]
    assert dup["codes"] == ["duplicate"] and dup["reasons"][0].endswith(a.clip_id)
    (taken,) = outcomes[str(recordings / "e.m4a")]  # an explicit id may not overwrite another file's clip
    assert taken["codes"] == ["duplicate"]
    assert f"clip id {a.clip_id} is already used by" in taken["reasons"][0]
    df = ws.read_df("clips")
    assert len(df) == 3
    d = df[df.meta_source_file == str(recordings / "d.ogg")].iloc[0]
    assert d.speaker_id == "default-spk" and d.meta_take == "1"


def test_same_file_names_in_two_folders_do_not_collide(recordings, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    shutil.copy(recordings / "a.wav", one / "x.wav")
    shutil.copy(recordings / "b.wav", two / "x.wav")
    ws = Workspace.create(tmp_path / "ws", "real")
    collect(ws, one)
    second = collect(ws, two)
    assert second["n_kept"] == 1
    df = ws.read_df("clips")
    assert len(df) == 2 and df.clip_id.is_unique and set(df.source) == {"collect:one", "collect:two"}


def test_manifest_errors_list_every_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.wav"}\nnot json\n[1, 2]\n{"path": ""}\n{"path": "a.wav"}\n', encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_manifest(bad)
    lines = [p.line for p in e.value.problems]
    assert lines == [2, 3, 4, 5] and "listed twice (first at line 1)" in str(e.value)
    nopath = tmp_path / "nopath.csv"
    nopath.write_text("file,speaker\na.wav,s\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'path' column"):
        read_manifest(nopath)


def test_cli_collect_json(recordings, tmp_path, capsys):
    manifest = tmp_path / "one.csv"
    manifest.write_text(f"path\n{recordings}/b.wav\n{recordings}/corrupt.wav\n", encoding="utf-8")
    root = tmp_path / "ws"
    assert main(["init", str(root), "--json"]) == 0
    capsys.readouterr()
    assert main(["collect", str(root), str(manifest), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_kept"] == 1 and out["dropped_by_reason"] == {"unreadable": 1}
    assert main(["collect", str(root), str(tmp_path / "nothing-here")]) == 2
    assert "not found" in capsys.readouterr().err
