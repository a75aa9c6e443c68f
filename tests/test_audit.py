"""Tests for casebench.audit: leaks planted in a clean corpus are found (and nothing else), the fingerprint
and the text matching behave as documented, reports and exit codes."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from casebench import audit as audit_mod
from casebench.audit import (
    AuditSettings,
    audit,
    audit_splits,
    bit_error_rate,
    fingerprint,
    is_near_identical,
    jaccard,
    minhash,
    near_text_pairs,
    normalize_text,
    total_variation,
)
from casebench.cli import main
from casebench.errors import ConfigError, InputError
from casebench.splits import ListEntry, assign_from_lists
from casebench.testing import distinct_sentence, make_clean_workspace, speechlike, wav_bytes

SR = 16000


def _noisy(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 1, len(x))
    noise *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
    return (x + noise).astype(np.float32)


def _quantised(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.float32) / 32767


# ---------------------------------------------------------------------------------------------- fingerprint


def test_fingerprint_ignores_gain_and_survives_noise_but_separates_clips():
    signals = [speechlike(seed, 2.0) for seed in range(10)]
    fps = [fingerprint(_quantised(x), SR).bits for x in signals]
    for i, x in enumerate(signals):
        assert bit_error_rate(fps[i], fingerprint(_quantised(0.3 * x), SR).bits) < 0.02
        noisy = fingerprint(_quantised(0.6 * _noisy(x, 30, seed=i)), SR).bits
        assert is_near_identical(fps[i], noisy)[0]
        assert bit_error_rate(fps[i], noisy) < 0.1
    different = [bit_error_rate(a, b) for a, b in itertools.combinations(fps, 2)]
    assert min(different) > 0.3
    assert not any(is_near_identical(a, b)[0] for a, b in itertools.combinations(fps, 2))


def test_fingerprint_finds_a_shifted_copy_and_a_resampled_one():
    x = speechlike(3, 2.0)
    shifted = np.concatenate([np.zeros(1600, np.float32), x[:-1600]])  # 100 ms later
    assert is_near_identical(fingerprint(x, SR).bits, fingerprint(shifted, SR).bits)[0]
    import soxr

    at_44k = soxr.resample(x, SR, 44100)
    assert is_near_identical(fingerprint(x, SR).bits, fingerprint(at_44k, 44100).bits)[0]


def test_plain_tones_never_match():
    t = np.arange(SR) / SR
    tone = fingerprint((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR).bits
    # mostly zero bits: equal to every other tone by chance, so not evidence of a copy
    assert not is_near_identical(tone, tone)[0]


# ---------------------------------------------------------------------------------------------- text


def test_normalize_text():
    assert normalize_text("  It's   ＨＥＬＬＯ, world!!\n") == "it s hello world"
    assert normalize_text(None) == "" and normalize_text(float("nan")) == ""


def test_near_text_pairs_match_brute_force():
    rng = random.Random(4)
    base = [distinct_sentence(rng, 12) for _ in range(40)]
    other = []
    for i, s in enumerate(base[:25]):
        words = s.split()
        if i % 3 == 0:
            words[rng.randrange(len(words))] = "zebra"      # one word changed: Jaccard 11/13
        elif i % 3 == 1:
            words.append("indeed")                          # one word added: 12/13
        else:
            words = words[:6] + ["completely", "different", "words", "here", "now", "ok"]
        other.append(" ".join(words))
    other += [distinct_sentence(rng, 12) for _ in range(15)]
    a = [normalize_text(s) for s in base]
    b = [normalize_text(s) for s in other]
    brute = {(i, j) for i in range(len(a)) for j in range(len(b))
             if a[i] != b[j] and jaccard(set(a[i].split()), set(b[j].split())) >= 0.8}
    found = {(i, j) for i, j, _ in near_text_pairs(a, b, 0.8)}
    assert found == brute and len(brute) >= 16


def test_minhash_estimates_jaccard():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    sets = [set(rng.sample(vocab, 40)) for _ in range(30)]
    sig = minhash(sets, 256)
    errors = [abs(float(np.mean(sig[i] == sig[j])) - jaccard(sets[i], sets[j]))
              for i, j in itertools.combinations(range(30), 2)]
    assert np.mean(errors) < 0.03


def test_total_variation_and_chi2():
    assert total_variation({"a": 5, "b": 5}, {"a": 5, "b": 5}) == 0.0
    assert total_variation({"a": 1}, {"b": 1}) == 1.0
    from scipy.stats import chi2_contingency

    p = audit_mod._chi2_p({"a": 30, "b": 10}, {"a": 10, "b": 30})
    assert p == pytest.approx(chi2_contingency([[30, 10], [10, 30]])[1])


# ---------------------------------------------------------------------------------------------- planted leaks


@pytest.fixture()
def clean(tmp_path):
    """32 clips, 4 speakers: spk-00/01 train, spk-02 dev, spk-03 test; speech-like audio, distinct texts."""
    return make_clean_workspace(tmp_path, n_clips=32, n_speakers=4, seed=3, with_annotations=True)


def _plant_leaks(ws) -> dict:
    clips = ws.read_df("clips")
    tx = ws.read_df("transcripts")
    idx = {c: i for i, c in enumerate(clips["clip_id"])}
    # 1. shared speaker: a test clip said by a train speaker
    clips.loc[idx["clip-0007"], "speaker_id"] = "spk-00"
    # 2. duplicate audio: a test clip is a byte copy of a train clip
    src = (ws.root / clips.loc[idx["clip-0000"], "path"]).read_bytes()
    (ws.root / clips.loc[idx["clip-0011"], "path"]).write_bytes(src)
    clips.loc[idx["clip-0011"], "sha256"] = hashlib.sha256(src).hexdigest()
    # 3. near-duplicate audio: a train clip, quieter, with noise at 30 dB SNR, re-encoded as FLAC
    x, sr = sf.read(ws.root / clips.loc[idx["clip-0004"], "path"], dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, 0.5 * _noisy(x, 30, seed=1), sr, format="FLAC", subtype="PCM_16")
    (ws.root / "audio/clip-0015.flac").write_bytes(buf.getvalue())
    clips.loc[idx["clip-0015"], "path"] = "audio/clip-0015.flac"
    clips.loc[idx["clip-0015"], "sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    # 4. duplicate text (after normalisation) in prompt and transcript
    text = clips.loc[idx["clip-0008"], "text_prompt"]
    clips.loc[idx["clip-0019"], "text_prompt"] = text.upper().replace(".", "!!")
    tx.loc[tx["clip_id"] == "clip-0019", "text"] = text.upper()
    # 5. near-identical text: a train prompt plus one word
    clips.loc[idx["clip-0023"], "text_prompt"] = clips.loc[idx["clip-0012"], "text_prompt"] + " indeed"
    tx.loc[tx["clip_id"] == "clip-0023", "text"] = clips.loc[idx["clip-0023"], "text_prompt"]
    ws.write_table("clips", clips)
    ws.write_table("transcripts", tx)
    return {"speaker": "spk-00", "dup": ("clip-0000", "clip-0011"), "near": ("clip-0004", "clip-0015"),
            "text": ("clip-0008", "clip-0019"), "near_text": ("clip-0012", "clip-0023")}


def _check(report: dict, a: str, b: str, check: str) -> dict:
    pair = next(p for p in report["pairs"] if (p["a"], p["b"]) == (a, b))
    return pair["checks"][check]


def test_clean_corpus_passes(clean):
    report = audit(clean)
    assert report["passed"] and report["leaks"] == []
    assert report["not_run"] == {}
    for pair in report["pairs"]:
        for check in ("speakers", "identical_audio", "near_audio", "identical_text", "near_text"):
            assert pair["checks"][check]["n"] == 0, (pair["a"], pair["b"], check)


def test_planted_leaks_are_found(clean):
    planted = _plant_leaks(clean)
    report = audit(clean)
    assert not report["passed"]
    assert {line.split(":")[0] for line in report["leaks"]} == {
        "train/test speakers", "train/test identical_audio", "train/test near_audio", "train/test identical_text",
        "train/test near_text"}
    sp = _check(report, "train", "test", "speakers")
    assert sp["n"] == 1 and sp["items"][0]["value"] == planted["speaker"] and sp["items"][0]["clips_b"] == ["clip-0007"]
    dup = _check(report, "train", "test", "identical_audio")
    assert dup["n"] == 1 and dup["items"][0]["clips_a"] == ["clip-0000"] and dup["items"][0]["clips_b"] == ["clip-0011"]
    near = _check(report, "train", "test", "near_audio")
    assert [(i["clip_a"], i["clip_b"]) for i in near["items"]] == [planted["near"]]
    assert near["items"][0]["ber"] < 0.1
    txt = _check(report, "train", "test", "identical_text")
    assert txt["by_field"] == {"prompt": {"n": 1, "clips_a": 1, "clips_b": 1},
                               "transcript": {"n": 1, "clips_a": 1, "clips_b": 1}}
    assert {(i["clips_a"][0], i["clips_b"][0]) for i in txt["items"]} == {planted["text"]}
    nt = _check(report, "train", "test", "near_text")
    assert {(i["clips_a"][0], i["clips_b"][0]) for i in nt["items"]} == {planted["near_text"]}
    assert all(i["jaccard"] == 0.9 for i in nt["items"])
    # the other pairs stay clean
    for a, b in (("train", "dev"), ("dev", "test")):
        assert all(_check(report, a, b, c)["n"] == 0
                   for c in ("speakers", "identical_audio", "near_audio", "identical_text", "near_text"))
    html = (clean.reports_dir / "audit.html").read_text()
    assert "FAILED" in html and "clip-0015" in html
    assert json.loads((clean.reports_dir / "audit.json").read_text())["leaks"] == report["leaks"]


def test_fingerprints_are_cached_and_redone_when_audio_changes(clean, monkeypatch):
    calls = []
    real = audit_mod.fingerprint
    monkeypatch.setattr(audit_mod, "fingerprint", lambda x, sr: calls.append(1) or real(x, sr))
    audit(clean)
    assert len(calls) == 32
    calls.clear()
    audit(clean)
    assert calls == []
    clips = clean.read_df("clips")
    data = wav_bytes(speechlike(999, 1.0))
    (clean.root / clips.loc[0, "path"]).write_bytes(data)
    clips.loc[0, "sha256"] = hashlib.sha256(data).hexdigest()
    clean.write_table("clips", clips)
    audit(clean)
    assert len(calls) == 1


def test_missing_audio_is_named_unless_audio_is_skipped(clean):
    path = clean.root / clean.read_df("clips")["path"].iloc[5]
    path.unlink()
    with pytest.raises(InputError) as e:
        audit(clean)
    assert "clip-0005" in str(e.value) and "--no-audio" in str(e.value)
    report = audit(clean, audio=False)
    assert report["passed"] and "near_audio" in report["not_run"]


def test_imported_official_split_with_a_shared_speaker(clean):
    clips = clean.read_df("clips")
    ids = clips["clip_id"].tolist()
    lists = {"train": [ListEntry(c, "train.txt", i + 1) for i, c in enumerate(ids[:20])],
             "test": [ListEntry(c, "test.txt", i + 1) for i, c in enumerate(ids[20:])]}
    result = assign_from_lists(clips, lists)
    report = audit_splits(result.table, clips)
    sp = _check(report, "train", "test", "speakers")
    assert not report["passed"] and sp["n"] == 4  # consecutive clip ids cycle through all four speakers


def test_folds_sharing_a_speaker_are_a_leak(clean):
    splits = clean.read_df("splits")
    clips = clean.read_df("clips")
    spk = splits.merge(clips[["clip_id", "speaker_id"]], on="clip_id")["speaker_id"]
    train = splits["split"] == "train"
    splits.loc[train, "fold"] = (spk[train] == "spk-00").astype(int)
    splits.loc[splits["clip_id"] == "clip-0004", "fold"] = 0  # one spk-00 clip in the other fold
    report = audit_splits(splits, clips)
    assert report["folds"][0]["a"] == "train.fold0" and report["folds"][0]["checks"]["speakers"]["n"] == 1
    assert any(line.startswith("train.fold0/train.fold1 speakers") for line in report["leaks"])


def test_settings_from_config_and_bad_names(clean):
    clean.set_section("audit", {"fail_on": ["speakers", "sessions"]})
    report = audit(clean, audio=False)
    # make_workspace sessions span speakers: a warning by default, a leak when configured so
    assert not report["passed"] and all(" sessions:" in line for line in report["leaks"])
    with pytest.raises(ConfigError, match="did you mean 'speakers'"):
        AuditSettings(fail_on=("speakerz",))
    clean.set_section("audit", {"fail_onn": ["speakers"]})
    with pytest.raises(ConfigError, match="fail_on"):
        audit(clean, audio=False)


def test_distribution_shift_is_reported(clean):
    report = audit(clean, audio=False)
    shift = _check(report, "train", "test", "distribution_shift")
    assert set(shift) >= {"acoustic_label", "conflict_status", "severity"} and shift["severity"] == "warn"
    assert 0 <= shift["acoustic_label"]["tvd"] <= 1


def test_splits_naming_unknown_clips_is_an_error():
    clips = pd.DataFrame({"clip_id": ["a"], "speaker_id": ["s"]})
    with pytest.raises(InputError, match="'zz'"):
        audit_splits(pd.DataFrame({"clip_id": ["a", "zz"], "split": ["train", "test"]}), clips)


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_exit_codes(clean, capsys):
    assert main(["audit", str(clean.root), "--no-progress"]) == 0
    assert "PASSED" in capsys.readouterr().out
    _plant_leaks(clean)
    assert main(["audit", str(clean.root), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["passed"] is False
    assert main(["audit", str(clean.root), "--fail-on", "speakerz"]) == 2


def test_cli_exit_code_in_a_real_process(clean):
    _plant_leaks(clean)
    proc = subprocess.run([sys.executable, "-m", "casebench", "audit", str(clean.root), "--no-audio"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "leak: train/test speakers" in proc.stdout
