"""casebench.degrade: SNR and sample rate of noisy copies, reproducibility, codec round trips, the workspace step."""

import numpy as np
import pytest

from casebench.audio import decode, to_mono
from casebench.degrade import (
    add_noise,
    apply_condition,
    codec_roundtrip,
    coloured_noise,
    degrade,
    degraded_id,
    parse_condition,
    parse_conditions,
    reverberate,
    rng_for,
    snr_db,
    source_of,
    synthetic_rir,
)
from casebench.errors import ConfigError, InputError
from casebench.testing import make_workspace, speechlike

SR = 16000


@pytest.fixture(scope="module")
def speech():
    return speechlike(3, 1.0)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 10.0, 20.0])
@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_noise_has_requested_snr(speech, snr, colour):
    s = speech * np.float32(0.1 / np.max(np.abs(speech)))  # quiet enough that the mixture is never rescaled
    notes = []
    y = add_noise(s, snr, rng=np.random.default_rng(1), colour=colour, notes=notes)
    assert notes == []
    assert abs(snr_db(s, y - s) - snr) < 0.5


def test_loud_mixture_rescaled_keeps_snr(speech):
    s = speech * np.float32(0.95 / np.max(np.abs(speech)))
    notes = []
    y = add_noise(s, 0.0, rng=np.random.default_rng(1), notes=notes)
    assert np.max(np.abs(y)) <= 0.99 + 1e-6 and len(notes) == 1
    g = 10 ** (float(notes[0].split()[3]) / 20)  # "mixture scaled by -x.x dB ..."
    assert abs(snr_db(s, y / g - s)) < 0.5


def test_noise_snr_after_writing_to_flac(tmp_path):
    ws = make_workspace(tmp_path, n_clips=8, with_audio=True)
    degrade(ws, "snr5,snr10", seed=3)
    clips = ws.read_df("clips").set_index("clip_id")
    for cid in ("clip-0003", "clip-0007"):
        clean = to_mono(decode(ws.resolve(clips.loc[cid, "path"]))[0])
        for snr in (5, 10):
            data, sr = decode(ws.resolve(clips.loc[degraded_id(cid, f"snr{snr}"), "path"]))
            y = to_mono(data)
            assert sr == SR and len(y) == len(clean)
            assert abs(snr_db(clean, y - clean) - snr) < 0.5


def test_coloured_noise_spectrum_slopes():
    rng = np.random.default_rng(0)
    f = np.fft.rfftfreq(SR * 4, 1 / SR)
    lo, hi = (f > 100) & (f < 200), (f > 1600) & (f < 3200)
    for colour, expected_db in (("white", 0.0), ("pink", 12.0), ("brown", 24.0)):
        p = np.abs(np.fft.rfft(coloured_noise(SR * 4, colour, rng))) ** 2
        assert abs(10 * np.log10(p[lo].mean() / p[hi].mean()) - expected_db) < 2.5


def test_conditions_reproducible_from_seed(speech):
    for name in ("snr5_pink", "rt400", "clip12"):
        cond = parse_condition(name)
        a = apply_condition(speech, SR, cond, rng_for(7, name, "c1"))
        b = apply_condition(speech, SR, cond, rng_for(7, name, "c1"))
        c = apply_condition(speech, SR, cond, rng_for(8, name, "c1"))
        assert np.array_equal(a, b)
        if name != "clip12":  # clipping is deterministic
            assert not np.array_equal(a, c)


def test_workspace_copies_reproducible(tmp_path):
    shas = []
    for sub in ("a", "b"):
        ws = make_workspace(tmp_path / sub, n_clips=8, with_audio=True)
        degrade(ws, "snr10,rt300", seed=5)
        clips = ws.read_df("clips")
        shas.append(clips.loc[clips["clip_id"].str.contains("@"), ["clip_id", "sha256"]].values.tolist())
    assert shas[0] == shas[1] and len(shas[0]) == 4


@pytest.mark.parametrize("codec,kbps,codec_sr", [("mp3", 32, None), ("opus", 16, None), ("opus", 12, 8000)])
def test_codec_roundtrip_decodable_same_length(speech, codec, kbps, codec_sr):
    y = codec_roundtrip(speech, SR, codec, kbps, codec_sr=codec_sr)
    assert y.dtype == np.float32 and len(y) == len(speech) and np.isfinite(y).all()
    assert np.sqrt(np.mean(y ** 2)) > 0.3 * np.sqrt(np.mean(speech ** 2))  # still the signal, not silence


def test_narrowband_removes_high_band(speech):
    y = apply_condition(speech, SR, parse_condition("nb8k"), rng_for(0, "nb8k", "x"))
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert spec[f > 4200].sum() < 1e-3 * spec.sum()


def test_reverb_keeps_length_and_level(speech):
    y = reverberate(speech, synthetic_rir(0.5, SR, np.random.default_rng(0)))
    assert len(y) == len(speech)
    assert abs(np.sqrt(np.mean(y ** 2)) - np.sqrt(np.mean(speech ** 2))) < 1e-3


def test_noise_folder_and_rir_folder(tmp_path, speech):
    import soundfile as sf

    (tmp_path / "noise" / "free-sound").mkdir(parents=True)
    sf.write(tmp_path / "noise" / "free-sound" / "n1.wav", np.random.default_rng(0).normal(0, 0.1, 8000), 8000)
    (tmp_path / "rirs").mkdir()
    sf.write(tmp_path / "rirs" / "r1.wav", synthetic_rir(0.3, SR, np.random.default_rng(1)), SR)
    ws = make_workspace(tmp_path / "ws", n_clips=8, with_audio=True)
    out = degrade(ws, "snr5_noise,rir", noise_dir=tmp_path / "noise", rir_dir=tmp_path / "rirs")
    assert out["n_copies"] == 4
    with pytest.raises(ConfigError, match="noise_dir"):
        degrade(ws, "snr0_noise")


def test_parse_conditions_errors():
    assert parse_condition("snrm5").params["snr_db"] == -5.0
    assert parse_condition("gainm20").params["gain_db"] == -20.0
    with pytest.raises(InputError) as e:
        parse_conditions("snr5,snr_x,opus")
    assert len(e.value.problems) == 2


def test_workspace_step_rows_splits_labels_config(tmp_path):
    ws = make_workspace(tmp_path, n_clips=8, with_audio=True)
    out = degrade(ws, "snr5,opus16k", seed=2)
    assert out["conditions"]["snr5"]["made"] == 2
    clips, splits, labels = ws.read_df("clips"), ws.read_df("splits"), ws.read_df("labels")
    deg = clips[clips["clip_id"].str.contains("@")]
    assert sorted(deg["meta_condition"].unique()) == ["opus16k", "snr5"]
    assert (deg["clip_id"].map(source_of) == deg["meta_source_clip"]).all()
    assert all((ws.root / p).is_file() and p.startswith("audio/degraded/") for p in deg["path"])
    assert sorted(splits.loc[splits["clip_id"].isin(deg["clip_id"]), "split"].unique()) == ["test.opus16k",
                                                                                            "test.snr5"]
    lab = labels.set_index("clip_id")
    for cid, src in zip(deg["clip_id"], deg["meta_source_clip"], strict=True):
        assert lab.loc[cid, "acoustic_label"] == lab.loc[src, "acoustic_label"]
    sec = ws.section("degrade")
    assert sec["seed"] == 2 and [c["name"] for c in sec["conditions"]] == ["snr5", "opus16k"]
    again = degrade(ws, "snr5", seed=2)  # resumes: nothing re-made, the other condition stays
    assert again["conditions"]["snr5"] == {**again["conditions"]["snr5"], "made": 0, "reused": 2}
    assert len(ws.read_df("clips")) == len(clips)
    assert [c["name"] for c in ws.section("degrade")["conditions"]] == ["opus16k", "snr5"]


def test_cli_degrade(tmp_path):
    from casebench.cli import main

    ws = make_workspace(tmp_path, n_clips=8, with_audio=True)
    assert main(["degrade", str(ws.root), "--conditions", "snr10,gainm6", "--json"]) == 0
    assert main(["degrade", str(ws.root), "--conditions", "snr10,bogus"]) == 2


def test_degraded_splits_pass_audit_and_publish(tmp_path):
    from casebench.audit import audit
    from casebench.publish import load_published, publish
    from casebench.testing import make_clean_workspace

    card = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
            "licence": "cc-by-4.0", "authors": "casebench tests", "guidelines": "Rate the voice; rate the words."}
    ws = make_clean_workspace(tmp_path / "ws", n_clips=12, n_speakers=4)
    degrade(ws, "snr10", seed=0)
    rep = audit(ws, audio=False)
    assert rep["passed"] and rep["degraded_copies_not_audited"] == 3
    publish(ws, tmp_path / "pub", card=card, n_boot=0, audit_audio=False, validate=False)
    ds = load_published(tmp_path / "pub", cache_dir=tmp_path / "cache")
    assert "test.snr10" in ds
    assert sorted(ds["test.snr10"]["clip_id"]) == sorted(f"{c}@snr10" for c in ds["test"]["clip_id"])


def test_hidden_test_labels_hide_degraded_copies_too(tmp_path):
    import pandas as pd

    from casebench.publish import load_published, publish
    from casebench.testing import make_clean_workspace

    card = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
            "licence": "cc-by-4.0", "authors": "casebench tests", "guidelines": "Rate the voice; rate the words."}
    ws = make_clean_workspace(tmp_path / "ws", n_clips=12, n_speakers=4)
    degrade(ws, "gainm6", seed=0)
    out = publish(ws, tmp_path / "pub", card=card, n_boot=0, audit_audio=False, validate=False,
                  hide_test_labels=True)
    ds = load_published(tmp_path / "pub", cache_dir=tmp_path / "cache")
    assert set(ds["test.gainm6"]["acoustic_label"]) == {None}
    gold = pd.read_csv(out["gold"] if "gold" in out else ws.root / "gold" / f"{ws.name}-test-gold.csv")
    assert sorted(gold["split"].unique()) == ["test", "test.gainm6"]
    assert gold["acoustic_label"].notna().all()


def test_data_card_describes_conditions_and_counts_only_clean_clips(tmp_path):
    from casebench.publish import publish
    from casebench.testing import make_clean_workspace

    card = {"consent": "No people: synthetic test signals.", "summary": "A tiny speech-like test corpus.",
            "licence": "cc-by-4.0", "authors": "casebench tests", "guidelines": "Rate the voice; rate the words."}
    ws = make_clean_workspace(tmp_path / "ws", n_clips=12, n_speakers=4)
    degrade(ws, "snr5,nb8k", seed=4)
    publish(ws, tmp_path / "pub", card=card, n_boot=0, audit_audio=False, validate=False)
    text = (tmp_path / "pub" / "README.md").read_text()
    assert "### Degraded test conditions" in text and "| `nb8k` | narrowband |" in text and "seed 4" in text
    assert "The 6 clips of the `test.<condition>` splits" in text


def test_resplit_leaves_copies_out_and_degrade_rebuilds(tmp_path):
    from casebench.splits import split

    ws = make_workspace(tmp_path, n_clips=16, n_speakers=8, with_audio=True)
    degrade(ws, "gainm6", seed=0)
    summary = split(ws, seed=3, ratios={"train": 0.5, "dev": 0.25, "test": 0.25}, require_all_classes=False)
    assert any("degraded copies" in w for w in summary["warnings"])
    assert not ws.read_df("splits")["clip_id"].str.contains("@").any()
    out = degrade(ws, "gainm6", seed=0)
    sp = ws.read_df("splits")
    test = set(sp.loc[sp["split"] == "test", "clip_id"])
    copies = ws.read_df("clips").dropna(subset=["meta_source_clip"])
    assert set(copies["meta_source_clip"]) == test and out["n_copies"] == len(test)
    assert set(sp.loc[sp["split"] == "test.gainm6", "clip_id"]) == {degraded_id(c, "gainm6") for c in test}
    assert set(ws.read_df("labels")["clip_id"]) >= set(copies["clip_id"])


def test_degrade_keeps_fresh_splits_fresh_and_stale_ones_stale(tmp_path):
    from casebench.splits import split
    from casebench.workspace import stale_problems

    ws = make_workspace(tmp_path, n_clips=16, n_speakers=8, with_audio=True)
    split(ws, seed=3, ratios={"train": 0.5, "dev": 0.25, "test": 0.25}, require_all_classes=False)
    degrade(ws, "gainm6", seed=0)  # new clips, split rows and label rows, all following their sources
    assert stale_problems(ws) == []
    labels = ws.read_df("labels")
    labels.loc[0, "agreement"] = 0.1  # the labels change after the split (a re-aggregation)
    ws.write_table("labels", labels)
    degrade(ws, "snr5", seed=0)
    assert any(p.startswith("clips.parquet and labels.parquet changed after split") for p in stale_problems(ws))
