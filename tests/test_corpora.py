"""Corpus importers (casebench.corpora): each on a tiny tree generated in the corpus's real layout.

The trees come from casebench.corpora.testing; each builder's docstring names the shared/CORPORA.md section it
follows (the layout's source) and the quirks it plants. Audio is a few 0.2 s noise WAVs per corpus.
"""

import inspect
import json

import numpy as np
import pytest

from casebench.corpora import COMMON_OPTIONS, CORPORA, corpus_options, get_corpus, import_corpus
from casebench.corpora.base import UNMAPPED_MASS, fold_split
from casebench.corpora.testing import TREES, em2ldl_split_of
from casebench.errors import ConfigError, InputError
from casebench.taxonomy import get_taxonomy
from casebench.workspace import Workspace


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One generated tree per importer, built once for the module (import runs never modify them)."""
    root = tmp_path_factory.mktemp("corpora")
    return {name: build(root / name) for name, build in TREES.items()}


def _null(value) -> bool:
    """A missing value as pandas 3 reads it from Parquet (None or NaN for strings)."""
    return value is None or (isinstance(value, float) and value != value)


def _import(trees, tmp_path, name, sub="ws", **kwargs):
    report = import_corpus(name, trees[name], tmp_path / sub, **kwargs)
    ws = Workspace.open(report.workspace)
    clips = ws.read_df("clips").set_index("clip_id")
    labels = ws.read_df("labels").set_index("clip_id")
    return report, ws, clips, labels


# -- the registry ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_importer_is_documented_and_has_the_common_interface(name):
    mod = get_corpus(name)
    doc = mod.__doc__ or ""
    assert "shared/CORPORA.md" in doc and "Layout expected" in doc and "Quirks handled" in doc
    assert "Uncertain" in doc, "every importer says what it does not know"
    assert name == mod.NAME and mod.SOURCES and mod.LICENCE and mod.CITATION and mod.TITLE
    params = inspect.signature(mod.prepare).parameters
    assert list(params)[:2] == ["corpus_dir", "workspace_dir"]
    assert set(COMMON_OPTIONS) <= set(params)
    assert all(params[k].kind == inspect.Parameter.KEYWORD_ONLY for k in params if k not in COMMON_OPTIONS[:2])
    assert name in TREES and TREES[name].__doc__ and "CORPORA.md" in TREES[name].__doc__


def test_registry_errors_name_the_choices():
    with pytest.raises(ConfigError, match="did you mean 'crema-d'"):
        get_corpus("cremad")
    with pytest.raises(ConfigError, match="no option 'folds'.*did you mean 'fold'"):
        import_corpus("emobox", "/nonexistent", "/tmp/x", options={"folds": "2"})
    assert set(corpus_options("emo-superb")) == {"corpus", "label_set", "fold"}


def test_fold_split_spellings():
    assert [fold_split(s) for s in ("Train", "Development", "Validation", "Test1", "Test2", "val", "Test3")] == \
        ["train", "dev", "dev", "test", "test2", "dev", "test3"]


# -- RAVDESS --------------------------------------------------------------------------------------------------


def test_ravdess_labels_from_names_speech_and_song(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "ravdess")
    assert rep.n_clips == 7 and ws.taxonomy.name == "ravdess8"
    c = "ravdess-03-01-05-02-01-02-01"
    assert labels.at[c, "acoustic_label"] == "angry" and labels.at[c, "meta_original_label"] == "05"
    assert clips.at[c, "speaker_id"] == "Actor_01" and clips.at[c, "gender"] == "male"
    assert clips.at[c, "text_prompt"] == "Kids are talking by the door" and clips.at[c, "meta_intensity"] == "strong"
    assert clips.at["ravdess-03-02-03-02-01-01-01", "meta_vocal_channel"] == "song"
    assert clips.at["ravdess-03-01-04-01-01-01-02", "gender"] == "female"
    # the file name wins over the folder: actor 03's file sitting in Actor_02/
    assert clips.at["ravdess-03-01-02-01-01-01-03", "speaker_id"] == "Actor_03"
    assert rep.counts["folder_disagrees_with_name"] == 1
    assert rep.counts["invalid_file_names"] == 1 and "neutral is never strong" in rep.examples["invalid_file_names"][0]
    assert rep.counts["unparsed_file_names"] == 1 and rep.counts["hidden_files_ignored"] == 1
    assert rep.audio_formats == {"48000 Hz, 1 ch": 7}
    path = ws.resolve(clips.at[c, "path"])
    assert path.is_symlink() and path.resolve() == (trees["ravdess"] / "Actor_01" / f"{c[8:]}.wav").resolve()


def test_ravdess_without_song_and_into_iemocap4(trees, tmp_path):
    rep = import_corpus("ravdess", trees["ravdess"], tmp_path / "a", options={"song": "false"})
    assert rep.n_clips == 5 and rep.counts["song_files_skipped"] == 2
    rep, _, _, labels = _import(trees, tmp_path, "ravdess", sub="b", taxonomy="iemocap4")
    assert rep.dropped == {"fearful": 1, "surprised": 1}
    assert labels.at["ravdess-03-01-02-01-01-01-03", "acoustic_label"] == "neutral"   # calm
    assert any("'surprised'" in n and "no counterpart in iemocap4" in n for n in rep.notes)


# -- CREMA-D --------------------------------------------------------------------------------------------------


def test_crema_d_known_bad_demographics_votes(trees, tmp_path):
    rep, _, clips, labels = _import(trees, tmp_path, "crema-d")
    assert "crema-d-1076_MTI_SAD_XX" not in clips.index and rep.counts["known_bad_skipped"] == 1
    assert "crema-d-1064_TIE_SAD_XX" in clips.index and any("1064_TIE_SAD_XX" in n for n in rep.notes)
    assert rep.counts["invalid_file_names"] == 1 and rep.counts["hidden_files_ignored"] == 1
    c = "crema-d-1001_DFA_ANG_XX"
    assert labels.at[c, "acoustic_label"] == "angry" and labels.at[c, "meta_original_label"] == "ANG"
    assert clips.at[c, "gender"] == "male" and clips.at[c, "meta_age"] == "51"
    assert clips.at[c, "text_prompt"] == "Don't forget a jacket" and clips.at[c, "meta_voice_vote"] == "A"
    assert clips.at["crema-d-1002_TIE_NEU_XX", "meta_voice_vote"] == "N:S"
    assert clips.at["crema-d-1001_IEO_HAP_HI", "meta_level"] == "high"
    rep = import_corpus("crema-d", trees["crema-d"], tmp_path / "b", options={"skip_uncertain_bad": "yes"},
                        taxonomy="iemocap4")
    assert rep.counts["uncertain_bad_skipped"] == 1
    assert rep.dropped == {"disgust": 1, "fear": 1}


# -- IEMOCAP --------------------------------------------------------------------------------------------------


def test_iemocap_speaker_is_the_utterance_letter_and_excited_is_happy(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "iemocap")
    m000 = "iemocap-Ses01F_impro01_M000"
    assert clips.at[m000, "speaker_id"] == "Ses01M" and clips.at[m000, "gender"] == "male"
    assert clips.at[m000, "session"] == "Ses01" and clips.at[m000, "meta_dialog"] == "Ses01F_impro01"
    assert labels.at[m000, "acoustic_label"] == "happy" and labels.at[m000, "meta_original_label"] == "exc"
    assert labels.at[m000, "meta_native_label"] == "excited"
    f000 = "iemocap-Ses01F_impro01_F000"
    assert labels.at[f000, "n_raters"] == 2   # C-E1, C-E2; the self-evaluation C-F1 is not a rater
    assert (labels.at[f000, "valence"], labels.at[f000, "arousal"], labels.at[f000, "dominance"]) == (2.5, 2.0, 2.5)
    assert ws.section("import")["vad_scale"] == [1.0, 5.0]
    assert rep.dropped == {"frustrated": 1, "surprise": 1, "xxx": 1}
    assert rep.counts["label_rows_without_audio"] == 1 and rep.counts["transcript_turns_without_label"] == 2
    texts = ws.read_df("transcripts").set_index("clip_id")["text"]
    assert texts[m000] == "Line number 1 of Ses01F_impro01."
    assert rep.n_records == 8   # the per-rater file under Categorical/ was not read as labels


def test_iemocap_into_ekman7_and_keep_unmapped(trees, tmp_path):
    rep, _, _, labels = _import(trees, tmp_path, "iemocap", taxonomy="ekman7", keep_unmapped=True)
    assert labels.at["iemocap-Ses02M_script01_2_M004", "acoustic_label"] == "surprise"
    kept = labels.loc["iemocap-Ses01F_impro01_M001"]
    assert _null(kept["acoustic_label"]) and kept["meta_original_label"] == "xxx" and kept["valence"] == 2.5
    assert rep.dropped == {"frustrated": 1, "xxx": 1} and any("kept with a null label" in n for n in rep.notes)


# -- MSP-Podcast ----------------------------------------------------------------------------------------------


def test_msp_podcast_partitions_unknown_speakers_and_the_stereo_file(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "msp-podcast")
    assert rep.splits == {"train": 2, "test": 1, "test2": 1}   # Test1 -> test; the X clip (Development) dropped
    assert rep.dropped == {"X": 1} and rep.counts["label_rows_without_audio"] == 1
    odd = "msp-podcast-MSP-PODCAST_1023_0235"
    assert _null(clips.at[odd, "speaker_id"]) and clips.at[odd, "meta_source_channels"] == 2
    assert rep.audio_formats == {"16000 Hz, 1 ch": 3, "44100 Hz, 2 ch": 1}
    a = "msp-podcast-MSP-PODCAST_0412_0031"
    assert (labels.at[a, "valence"], labels.at[a, "arousal"]) == (5.6, 4.8)
    assert labels.at[a, "acoustic_label"] == "happy"
    assert ws.section("import")["vad_scale"] == [1.0, 7.0]
    assert ws.read_df("transcripts")["text"].tolist() == ["that was the best day ever"]
    assert ws.section("split")["method"] == "import"


def test_msp_podcast_old_spelling_partitions_file_and_convert(trees, tmp_path):
    import shutil

    import soundfile as sf

    src = tmp_path / "old"
    shutil.copytree(trees["msp-podcast"], src)
    csv = (src / "Labels" / "labels_consensus.csv").read_text().splitlines()
    (src / "Labels" / "labels_consensus.csv").unlink()
    (src / "Labels" / "labels_concensus.csv").write_text(
        "\n".join(",".join(line.split(",")[:7]) for line in csv) + "\n")   # no Split_Set: Partitions.txt is used
    rep, ws, clips, _ = _import({"msp-podcast": src}, tmp_path, "msp-podcast", keep_unmapped=True, audio="convert")
    assert any("pre-1.10 spelling" in n for n in rep.notes)
    assert rep.splits == {"train": 2, "dev": 1, "test": 1, "test2": 1}
    info = sf.info(str(ws.resolve(clips.at["msp-podcast-MSP-PODCAST_1023_0235", "path"])))
    assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")


# -- EMIS -----------------------------------------------------------------------------------------------------


def test_emis_names_from_the_right_voice_vs_words(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "emis")
    c = "emis-09_sad_explicit_happy_0014_COSY"
    assert labels.at[c, "acoustic_label"] == "happy" and labels.at[c, "semantic_label"] == "sad"
    assert bool(labels.at[c, "is_conflict"]) and labels.at[c, "conflict_type"] == "happy-voice/sad-words"
    assert clips.at[c, "intended_acoustic"] == "happy" and clips.at[c, "intended_semantic"] == "sad"
    assert clips.at[c, "meta_condition"] == "explicit" and clips.at[c, "meta_tts"] == "COSY"
    n = "emis-17_neutral_angry_0018_COSY"
    assert labels.at[n, "semantic_label"] == "neutral" and _null(clips.at[n, "meta_condition"])
    assert clips.at[n, "speaker_id"] == "0018" and clips.at[n, "meta_sentence"] == "neutral_17"
    congruent = "emis-17_neutral_neutral_0018_F5TTS"
    assert not bool(labels.at[congruent, "is_conflict"]) and _null(labels.at[congruent, "conflict_type"])
    assert rep.counts["invalid_file_names"] == 1 and "five-field" in rep.examples["invalid_file_names"][0]
    assert int(labels["is_conflict"].sum()) == 5 and rep.n_clips == 8
    # no speaker table in this tree: the ESD reference voice's gender (0014 male, 0016 female in the ESD ReadMe)
    assert clips.at[c, "gender"] == "male" and clips.at["emis-12_happy_implicit_happy_0016_STYLE", "gender"] == "female"
    assert any("ESD's speaker table" in n for n in rep.notes)


def test_emis_gender_from_a_speaker_table_in_the_download(trees, tmp_path):
    import shutil

    tree = tmp_path / "emis"
    shutil.copytree(trees["emis"], tree)
    (tree / "meta").mkdir()
    (tree / "meta" / "speakers.csv").write_text("Speaker,Sex\n14,F\n0018,male\n0011,x\n")
    rep = import_corpus("emis", tree, tmp_path / "ws")
    clips = Workspace.open(rep.workspace).read_df("clips").set_index("clip_id")
    assert clips.at["emis-09_sad_explicit_happy_0014_COSY", "gender"] == "female"   # the table wins
    assert clips.at["emis-17_neutral_angry_0018_COSY", "gender"] == "male"
    assert rep.counts["speaker_table_gender_unknown"] == 1 and rep.counts["speakers_without_gender"] >= 1
    assert any("speaker table meta/speakers.csv" in n for n in rep.notes)


# -- EM2LDL ---------------------------------------------------------------------------------------------------


def test_em2ldl_distributions_bom_padded_ids_and_gaps(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "em2ldl")
    assert rep.n_records == 3998 and rep.counts["label_file_bom_removed"] == 1
    assert rep.examples["audio_ids_absent_from_labels"] == ["2361", "3676"]
    assert rep.counts["audio_without_label_row"] == 1
    assert "2361_mbti_ce.WAV" in rep.examples["audio_without_label_row"][0]
    assert rep.counts["file_name_disagrees_with_labels"] == 1
    plu = get_taxonomy("plutchik32")
    for cid, row in labels.iterrows():
        dist = np.asarray(row["acoustic_dist"])
        assert dist.shape == (32,) and abs(dist.sum() - 1) < 1e-6
        assert row["acoustic_label"] == plu.labels[int(np.argmax(dist))]
        assert row["meta_original_dist"] is not None and _null(clips.at[cid, "language"])
    split_of = em2ldl_split_of(trees["em2ldl"])
    splits = ws.read_df("splits").set_index("clip_id")["split"]
    for cid, split in splits.items():   # zero-padded list ids joined to unpadded AudioIDs on the integer
        assert {"train": "train", "val": "dev", "test": "test"}[split_of[int(cid.split("-")[1])]] == split
    assert set(splits) == {"train", "dev", "test"}
    assert clips["speaker_id"].str.startswith("speaker").all() and set(clips["meta_languages"]) <= \
        {"yue,en", "cmn,en", "cmn,yue"}
    assert any("speaker12 in train, dev, test" in n and "not speaker-independent" in n for n in rep.notes)


def test_em2ldl_official_split_is_reported_as_leaking_speakers(trees, tmp_path):
    from casebench.audit import audit

    rep = import_corpus("em2ldl", trees["em2ldl"], tmp_path / "ws")
    report = audit(rep.workspace, audio=False, write_report=False)
    assert not report["passed"]
    speaker_leaks = [line for line in report["leaks"] if " speakers:" in line]
    assert {line.split(" ")[0] for line in speaker_leaks} == {"train/dev", "train/test", "dev/test"}
    assert all("speaker12" in json.dumps(p["checks"]["speakers"]) for p in report["pairs"])


def test_em2ldl_into_ekman7_drops_mass_without_counterpart(trees, tmp_path):
    rep, _, _, labels = _import(trees, tmp_path, "em2ldl", taxonomy="ekman7")
    assert set(rep.dropped_mass) <= {"admiration", "trust", "acceptance", "submission", "awe", "disapproval",
                                     "vigilance", "anticipation", "interest"}
    assert rep.dropped_mass and rep.n_clips + sum(rep.dropped.values()) == 9
    assert set(rep.dropped) <= {UNMAPPED_MASS}
    for dist in labels["acoustic_dist"]:
        assert len(dist) == 7 and abs(sum(dist) - 1) < 1e-9


def test_em2ldl_bad_value_is_reported_with_its_line(trees, tmp_path):
    import shutil

    src = tmp_path / "bad"
    shutil.copytree(trees["em2ldl"], src)
    path = src / "labels" / "labels_distributions_Info.csv"
    lines = path.read_bytes().split(b"\r\n")
    cells = lines[5].split(b",")
    cells[3] = b"x"
    lines[5] = b",".join(cells)
    path.write_bytes(b"\r\n".join(lines).replace(b"speaker ID", b"speaker"))
    with pytest.raises(InputError) as e:
        import_corpus("em2ldl", src, tmp_path / "ws")
    assert "no column 'speaker ID'" in str(e.value) and "did you mean" in str(e.value)
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(InputError, match=r"labels_distributions_Info.csv:6: id '\d+': field 'serenity': value 'x'"):
        import_corpus("em2ldl", src, tmp_path / "ws2")


# -- EmoBox ---------------------------------------------------------------------------------------------------


def test_emobox_ravdess_manifest_fold_and_speakers(trees, tmp_path):
    with pytest.raises(ConfigError, match=r"choose one with dataset=NAME"):
        import_corpus("emobox", trees["emobox"], tmp_path / "x")
    rep, ws, clips, labels = _import(trees, tmp_path, "emobox", options={"dataset": "ravdess"})
    assert ws.name == "ravdess" and rep.splits == {"train": 4, "test": 1}
    c = "ravdess-03-01-05-02-01-02-07"   # the id casebench's own RAVDESS importer gives the same file
    assert labels.at[c, "acoustic_label"] == "angry" and labels.at[c, "meta_original_label"] == "Angry"
    assert clips.at[c, "speaker_id"] == "Actor_07" and clips.at[c, "meta_emobox_key"] == f"ravdess-{c[8:]}"
    assert labels.at["ravdess-03-01-02-01-01-01-08", "acoustic_label"] == "neutral"   # Calm via ravdess8


def test_emobox_label_map_quirks(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "emobox", options={"dataset": "emodb"})
    assert rep.dropped == {"boredom": 1} and rep.native_taxonomy == "emobox-emodb"
    assert labels.at["emodb-16a07Na", "acoustic_label"] == "neutral"   # data 'neutral', map key 'Neutral'
    assert rep.counts["labels_matched_case_insensitively"] == 1
    assert any("'neutral' ~ label_map key 'Neutral'" in n for n in rep.notes)
    # fold_1/ holds emodb_*_fold_1.jsonl and the legacy emodb_*_fold1.jsonl: the first is read, the second noted
    assert rep.splits == {"train": 2, "test": 1} and rep.counts["legacy_fold_files_left_out"] == 2  # boredom dropped
    assert labels.at["emodb-03a01Wa", "acoustic_label"] == "angry" and clips["speaker_id"].isna().all()
    manifest = trees["emobox"] / "data" / "emodb" / "fold_1" / "emodb_test_fold_1.jsonl"
    rep = import_corpus("emobox", manifest, tmp_path / "one", options={"audio_root": str(trees["emobox"])})
    assert rep.n_clips == 1 and rep.splits == {"test": 1}


# -- EMO-SUPERB -----------------------------------------------------------------------------------------------


def test_emo_superb_crema_d_soft_labels(trees, tmp_path):
    rep, ws, clips, labels = _import(trees, tmp_path, "emo-superb", options={"corpus": "CREMA-D"})
    assert ws.name == "crema-d" and rep.native_taxonomy == "crema6" and ws.taxonomy.name == "ekman7"
    assert ws.config["project"]["languages"] == ["en"] and set(clips["language"]) == {"en"}
    c = "crema-d-1012_TAI_ANG_XX"
    ekman = get_taxonomy("ekman7")
    dist = labels.at[c, "acoustic_dist"]
    assert dist[ekman.index["angry"]] == pytest.approx(0.762) and dist[ekman.index["surprise"]] == 0
    assert labels.at[c, "arousal"] == 4.2 and labels.at[c, "valence"] == 1.8
    assert rep.splits == {"train": 1, "dev": 1, "test": 1} and rep.counts["label_rows_without_audio"] == 1
    tie = labels.loc["crema-d-1001_DFA_HAP_XX"]   # neutral 0.48 = happy 0.48: first in ekman7 order
    assert tie["acoustic_label"] == "happy" and bool(tie["meta_argmax_tie"])


def test_emo_superb_iemocap_speakers_and_nnime_unnamed_column(trees, tmp_path):
    rep, _, clips, labels = _import(trees, tmp_path, "emo-superb", options={"corpus": "iemocap"})
    assert rep.native_taxonomy == "iemocap9" and rep.dropped == {UNMAPPED_MASS: 1}   # F000 is 60% frustrated
    assert clips.at["iemocap-Ses01F_impro01_M000", "speaker_id"] == "01-male"
    assert labels.at["iemocap-Ses01F_impro01_M000", "acoustic_label"] == "happy"     # excited + happy
    rep, _, clips, labels = _import(trees, tmp_path, "emo-superb", sub="n", options={"corpus": "NNIME"})
    assert rep.counts["file_name_column_unnamed"] == 1 and labels["dominance"].isna().all()
    assert any("language is not known" in n for n in rep.notes) and labels.shape[0] == 2
    assert labels.at["nnime-happy_12_B_026", "acoustic_label"] == "happy" and rep.dropped == {UNMAPPED_MASS: 1}
    assert {"disappointed", "relax"} <= set(rep.dropped_mass)


# -- workspace behaviour shared by every importer --------------------------------------------------------------


def test_copy_mode_overwrite_and_errors(trees, tmp_path):
    rep = import_corpus("crema-d", trees["crema-d"], tmp_path / "ws", audio="copy")
    path = tmp_path / "ws" / "audio" / "crema-d" / "crema-d-1001_DFA_ANG_XX.wav"
    assert path.is_file() and not path.is_symlink()
    with pytest.raises(ConfigError, match="already holds a workspace; re-run with --overwrite"):
        import_corpus("crema-d", trees["crema-d"], tmp_path / "ws")
    rep2 = import_corpus("crema-d", trees["crema-d"], tmp_path / "ws", overwrite=True)
    assert rep2.n_clips == rep.n_clips and path.is_symlink()
    with pytest.raises(ConfigError, match="did you mean 'copy'"):
        import_corpus("crema-d", trees["crema-d"], tmp_path / "w2", audio="cpy")
    with pytest.raises(ConfigError, match="no mapping"):
        import_corpus("ravdess", trees["ravdess"], tmp_path / "w3", taxonomy="plutchik32")
    with pytest.raises(InputError, match="no Session1 … Session5 folders"):
        import_corpus("iemocap", trees["emis"], tmp_path / "w4")
    with pytest.raises(InputError, match="no emis clip with both a label and an audio file"):
        import_corpus("emis", trees["crema-d"], tmp_path / "w5")
    assert not any((tmp_path / w).exists() for w in ("w2", "w3", "w4", "w5")), "nothing written on an error"


def test_report_and_config_record_the_import(trees, tmp_path):
    rep = import_corpus("emis", trees["emis"], tmp_path / "ws")
    saved = json.loads((tmp_path / "ws" / "reports" / "import.json").read_text())
    assert saved["n_clips"] == rep.n_clips and saved["counts"]["invalid_file_names"] == 1
    section = Workspace.open(tmp_path / "ws").section("import")
    assert section["corpus"] == "emis" and section["native_labels"] == ["angry", "happy", "neutral", "sad"]


def test_cli_import_corpus(trees, tmp_path):
    from casebench.cli import main

    out = tmp_path / "ws"
    assert main(["import-corpus", "crema-d", str(trees["crema-d"]), "--out", str(out), "--taxonomy", "iemocap4",
                 "--json"]) == 0
    assert Workspace.open(out).taxonomy.name == "iemocap4"
    assert main(["import-corpus", "emobox", str(trees["emobox"]), "-o", str(tmp_path / "e"), "--opt",
                 "dataset=emodb", "--no-progress"]) == 0
    assert main(["import-corpus", "cremad", str(trees["crema-d"]), "-o", str(tmp_path / "x")]) == 2
    assert main(["import-corpus", "emobox", str(trees["emobox"]), "-o", str(tmp_path / "y"), "--opt", "dataset"]) == 2


def test_truncated_audio_is_named_on_the_console_and_reimport_suggests_overwrite(trees, tmp_path, capsys):
    import shutil

    from casebench.cli import main

    tree = tmp_path / "emis"
    shutil.copytree(trees["emis"], tree)
    cut = tree / "COSY" / "09_sad_explicit_happy_0014_COSY.wav"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])   # libsndfile still opens it and reads half the samples
    out = tmp_path / "ws"
    assert main(["import-corpus", "emis", str(tree), "-o", str(out), "--no-progress"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "unreadable audio (not imported): COSY/09_sad_explicit_happy_0014_COSY.wav (truncated: the header" in text
    assert "09_sad_explicit_happy_0014" not in " ".join(Workspace.open(out).read_df("clips")["clip_id"])
    assert main(["import-corpus", "emis", str(tree), "-o", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "re-run with --overwrite" in err and "Workspace.open" not in err


def test_three_way_argmax_tie_is_marked_like_a_two_way_one():
    """Shares written with 9 decimals (as EM2LDL's file) and merged by the mapping: 1/6 + 1/6 against 1/3
    differ by the files' rounding (1e-9), which is a tie as much as 0.5 against 0.5."""
    from casebench.corpora.base import Record, map_records

    native, target = get_taxonomy("plutchik32"), get_taxonomy("ekman7")

    def rec(key, shares):
        dist = [0.0] * len(native)
        for label, x in shares.items():
            dist[native.index[label]] = x
        return Record(key=key, audio=None, label=None, dist=dist)

    three = rec("three", {"joy": 0.166666667, "serenity": 0.166666667, "rage": 0.333333333, "grief": 0.333333333})
    two = rec("two", {"joy": 0.5, "rage": 0.5})
    clear = rec("clear", {"joy": 0.4, "rage": 0.35, "grief": 0.25})
    out = {m.record.key: m for m in map_records([three, two, clear], native, target).kept}
    assert out["three"].tie and out["two"].tie and not out["clear"].tie
    assert out["three"].label == "angry"   # the first tied class in ekman7 order
