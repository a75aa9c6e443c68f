"""Benchmark specs and gold tables (casebench.benchmarks)."""

import numpy as np
import pandas as pd
import pytest

from casebench.benchmarks import adhoc_benchmark, get_benchmark, list_benchmarks, load_gold, load_spec
from casebench.errors import ConfigError, InputError


def test_registry_and_embedded_benchmark():
    assert "casebench-mini" in list_benchmarks()
    for name in list_benchmarks():
        b = get_benchmark(name)
        assert b.description and b.licence and b.citation and b.gold_path.exists()
    b = get_benchmark("casebench-mini")
    gold = b.load_gold()
    assert len(gold) == 480 and gold.speaker is not None and gold.distribution.shape == (480, 7)
    assert 0.3 < gold.is_conflict.mean() < 0.6
    assert set(gold.vad) == {"valence", "arousal", "dominance"}
    assert gold.mask(b.splits[-1]).sum() == 120  # the mini-acted cross-corpus set: 10 speakers x 12
    assert gold.fingerprint.startswith("sha256:")


def test_mini_benchmark_is_reproducible(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "make_mini_benchmark.py"
    spec = importlib.util.spec_from_file_location("make_mini", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path)
    mod.main()
    shipped = get_benchmark("casebench-mini").gold_path
    assert (tmp_path / "gold.csv").read_bytes() == shipped.read_bytes()
    for ex in ("voice-model", "text-model"):
        assert (tmp_path / "examples" / f"{ex}.jsonl").read_bytes() == \
            (shipped.parent / "examples" / f"{ex}.jsonl").read_bytes()


def test_unknown_benchmark_suggests():
    with pytest.raises(ConfigError, match="casebench-mini"):
        get_benchmark("casebench-mnii")


def test_adhoc_gold_table(tmp_path):
    p = tmp_path / "gold.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "acoustic_label": ["angry", "sad", "happy", "sad"],
                  "semantic_label": ["angry", "happy", None, "sad"], "speaker_id": ["s1", "s1", "s2", "s2"],
                  "corpus": ["x", "x", "y", "y"], "notes": ["kept", "as", "meta", "data"]}).to_csv(p, index=False)
    b = adhoc_benchmark(p, "ekman7")
    assert [t.kind for t in b.tasks] == ["categorical"]
    assert [s.name for s in b.splits] == ["all", "conflict", "congruent", "x", "y"]
    g = b.load_gold()
    assert g.semantic.tolist()[2] == -1 and g.is_conflict.tolist() == [False, True, False, False]
    assert "notes" in g.columns


def test_adhoc_gold_knows_the_corpora_it_was_published_from(tmp_path):
    """A model trained on the workspace a gold was published from is not zero-shot on it: the corpora come from
    the gold's corpus column and its lineage sidecar (what casebench publish writes)."""
    import json

    from casebench.results import zero_shot

    p = tmp_path / "my-corpus-test-gold.csv"
    pd.DataFrame({"id": ["a", "b"], "acoustic_label": ["angry", "sad"]}).to_csv(p, index=False)
    assert adhoc_benchmark(p, "ekman7").corpora == ()
    (tmp_path / "my-corpus-test-gold.csv.lineage.json").write_text(json.dumps(
        [{"workspace": "/nowhere", "name": "my-corpus", "step": "publish", "tables": {}}]))
    b = adhoc_benchmark(p, "ekman7")
    assert b.corpora == ("my-corpus",)
    assert zero_shot(b, ["My_Corpus"]) == (False, ["my-corpus"]) and zero_shot(b, ["other"]) == (True, [])
    (tmp_path / "my-corpus-test-gold.csv.lineage.json").write_text("{not json")
    assert adhoc_benchmark(p, "ekman7").corpora == ()  # unreadable provenance never blocks scoring


def test_gold_table_errors_name_file_line_id_and_column(tmp_path):
    p = tmp_path / "gold.csv"
    p.write_text("id,acoustic_label\na,angry\nb,angy\na,sad\n")
    with pytest.raises(InputError) as e:
        load_gold(p, "ekman7")
    msg = str(e.value)
    assert f"{p}:3: id 'b': field 'acoustic_label': unknown label 'angy'" in msg and "did you mean 'angry'" in msg
    assert f"{p}:4: id 'a': field 'id': duplicate id" in msg


def test_gold_distribution_must_sum_to_one(tmp_path):
    p = tmp_path / "gold.csv"
    cols = "angry,disgust,fear,happy,neutral,sad,surprise"
    p.write_text(f"id,{cols}\na,1,0,0,0,0,0,0\nb,0.5,0.6,0,0,0,0,0\n")
    with pytest.raises(InputError, match="gold.csv:3: id 'b': field 'distribution'"):
        load_gold(p, "ekman7")


def test_spec_errors(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("name: x\nversion: 1\ntaxonomy: ekman7\ngold: g.csv\ntasks: [{kind: categorial}]\n")
    with pytest.raises(ConfigError, match="categorial"):
        load_spec(p)
    p.write_text("name: x\n")
    with pytest.raises(InputError, match="field 'taxonomy'"):
        load_spec(p)


def test_parquet_gold(tmp_path):
    p = tmp_path / "gold.parquet"
    pd.DataFrame({"clip_id": ["a", "b"], "acoustic_label": ["angry", "sad"], "valence": [1.0, np.nan]}).to_parquet(p)
    g = load_gold(p, "ekman7")
    assert g.ids.tolist() == ["a", "b"] and np.isnan(g.vad["valence"][1])


def test_csv_with_bom_crlf_and_zero_padded_ids(tmp_path):
    p = tmp_path / "gold.csv"
    p.write_bytes(b"\xef\xbb\xbfid,acoustic_label,semantic_label\r\n007,Angry ,\r\n0010,,sad\r\n")
    g = load_gold(p, "ekman7")
    assert g.ids.tolist() == ["007", "0010"]  # ids stay strings, zero padding kept
    assert g.acoustic.tolist() == [0, -1] and g.semantic.tolist() == [-1, 5]  # case and spaces folded; empty = unknown


def test_degraded_copies_are_kept_out_of_the_standard_splits(tmp_path):
    from casebench.benchmarks import DEGRADED_SEP
    from casebench.degrade import SEP

    assert SEP == DEGRADED_SEP
    p = tmp_path / "gold.csv"
    p.write_text("id,split,acoustic_label,semantic_label\na,test,angry,happy\nb,test,sad,sad\n"
                 "a@snr5,test.snr5,angry,happy\nb@snr5,test.snr5,sad,sad\n")
    b = adhoc_benchmark(p, "ekman7")
    g = b.load_gold()
    names = {s.name: s for s in b.splits}
    assert g.mask(names["all"]).tolist() == [True, True, False, False]
    assert g.mask(names["conflict"]).tolist() == [True, False, False, False]
    assert g.mask(names["test.snr5"]).tolist() == [False, False, True, True]


# --------------------------------------------------------------------------------------------------
# casebench-audio-mini: the built-in benchmark with audio (scripts/make_audio_mini_benchmark.py)

AUDIO_MINI = "casebench-audio-mini"


def _audio_mini_script():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "make_audio_mini_benchmark.py"
    spec = importlib.util.spec_from_file_location("make_audio_mini", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _audio_mini_tables():
    b = get_benchmark(AUDIO_MINI)
    data = b.gold_path.parent
    return b, data, pd.read_csv(data / "gold.csv"), pd.read_csv(data / "train.csv")


def test_audio_mini_spec_loads_with_conflict_and_congruent_test_clips():
    assert AUDIO_MINI in list_benchmarks()
    b, data, test, train = _audio_mini_tables()
    assert b.taxonomy.name == "iemocap4" and [t.kind for t in b.tasks] == ["categorical"]
    gold = b.load_gold()
    assert len(gold) == len(test) == 96
    assert gold.is_conflict.sum() == 48 and gold.is_congruent.sum() == 48
    assert gold.columns["is_conflict"].astype(str).tolist() == [str(x) for x in gold.is_conflict.tolist()]
    for table in (test, train):
        assert list(table.columns) == ["id", "path", "speaker_id", "gender", "acoustic_label", "semantic_label",
                                       "is_conflict", "text"]
        assert set(table.acoustic_label) == set(table.semantic_label) == set(b.taxonomy.labels)
        assert table.text.str.len().min() > 10 and set(table.gender) == {"female", "male"}
    assert len(train) >= 100 and train.is_conflict.mean() < 0.25  # words mostly agree with the voice in train


def test_audio_mini_train_and_test_share_no_speaker_timbre_or_sentence():
    _, _, test, train = _audio_mini_tables()
    assert not set(test.speaker_id) & set(train.speaker_id)
    assert not {v.split("+")[1] for v in test.speaker_id} & {v.split("+")[1] for v in train.speaker_id}
    assert not set(test.text) & set(train.text)
    assert test.speaker_id.nunique() >= 6 and train.speaker_id.nunique() >= 10


def test_audio_mini_fingerprint_matches_the_shipped_files():
    import hashlib

    import yaml

    b, data, test, train = _audio_mini_tables()
    sums = (data / "SHA256SUMS").read_text("utf-8").splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums}
    files = {p.relative_to(data).as_posix(): p for p in data.rglob("*") if p.is_file() and p.name != "SHA256SUMS"}
    assert set(listed) == set(files)  # nothing shipped unlisted, nothing listed missing
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == listed[k] for k, p in files.items())
    spec = yaml.safe_load(b.spec_path.read_text("utf-8"))
    assert spec["fingerprint"] == "sha256:" + hashlib.sha256((data / "SHA256SUMS").read_bytes()).hexdigest()
    assert set(listed) == {"gold.csv", "train.csv", *test.path, *train.path}  # every clip, and only them


def test_audio_mini_audio_is_16k_mono_flac_within_the_size_budget():
    import soundfile as sf

    _, data, test, train = _audio_mini_tables()
    total = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    assert total <= 10_000_000, f"casebench-audio-mini is {total / 1e6:.1f} MB; the budget is 10 MB"
    for rel in [*test.path, *train.path]:
        info = sf.info(data / rel)
        assert (info.format, info.samplerate, info.channels) == ("FLAC", 16000, 1), rel
        assert 1.0 < info.duration < 10.0, rel


def test_audio_mini_label_tables_regenerate_identically(tmp_path):
    """The label tables follow from the script's seed alone (the audio bytes also depend on the espeak-ng
    build, so they are checked by fingerprint above, not regenerated here)."""
    mod = _audio_mini_script()
    mod.write_tables(tmp_path)
    _, data, _, _ = _audio_mini_tables()
    for name in ("gold.csv", "train.csv"):
        assert (tmp_path / name).read_bytes() == (data / name).read_bytes(), (
            f"{name} differs from what scripts/make_audio_mini_benchmark.py makes now (did the built-in sentence "
            "bank or the synth plan change?): regenerate the benchmark and bump its version")


# -- `casebench benchmarks show`: what a model author needs ---------------------------------------------------


def test_show_describes_the_benchmark_without_labels(capsys):
    import json

    from casebench.cli import main

    assert main(["benchmarks", "show", "casebench-mini", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    gold = get_benchmark("casebench-mini").load_gold()
    assert info["n_items"] == len(gold) == 480 and info["n_speakers"] == 40
    assert {s["name"]: s["n_items"] for s in info["splits"]} == {
        "all": 480, "conflict": int(gold.is_conflict.sum()), "congruent": int(gold.is_congruent.sum()),
        "mini-acted": 120}
    assert [t["keys"] for t in info["tasks"]] == [["label"], ["distribution"], ["valence", "arousal", "dominance"]]
    assert any(p.endswith("voice-model.jsonl") for p in info["examples"])
    assert "acoustic_label" not in json.dumps(info["splits"]) and "angry,happy" not in json.dumps(info)
    assert main(["benchmarks", "show", "casebench-mini"]) == 0
    out = capsys.readouterr().out
    assert "valence, arousal, dominance" in out and "casebench evaluate preds.jsonl -b casebench-mini" in out


def test_ids_and_a_filled_template_scores(tmp_path, capsys):
    import json

    from casebench.cli import main

    assert main(["benchmarks", "show", "casebench-mini", "--ids"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids == get_benchmark("casebench-mini").load_gold().ids.astype(str).tolist()
    assert main(["benchmarks", "show", "casebench-mini", "--ids", "--split", "mini-acted"]) == 0
    assert len(capsys.readouterr().out.split()) == 120
    assert main(["benchmarks", "show", "casebench-mini", "--ids", "--split", "conflict"]) == 2
    assert "made from the labels" in capsys.readouterr().err

    template = tmp_path / "preds.jsonl"
    assert main(["benchmarks", "show", "casebench-mini", "--template", str(template), "--task", "categorical"]) == 0
    rows = [json.loads(line) for line in template.read_text().splitlines()]
    assert [r["id"] for r in rows] == ids and all(r == {"id": r["id"], "label": None} for r in rows)
    assert main(["evaluate", str(template), "-b", "casebench-mini", "--bootstrap", "0"]) == 2  # nulls: not filled
    assert "field 'label': null" in capsys.readouterr().err
    for r in rows:  # a model author fills it in
        r["label"] = "neutral"
    template.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(template), "-b", "casebench-mini", "--bootstrap", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["all"]["accuracy"]["n"] == 480


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_speaker_codes_and_degraded_flags_read_columnwise_match_the_reference(tmp_path, suffix):
    # read_gold fills speaker_codes and is_degraded from the Arrow columns; the reference is pandas.factorize
    # (codes in order of first appearance, unknown speakers "" / missing each a cluster of their own) and
    # Python's `"@" in id`, and the properties recomputed from the Python objects agree with both
    speakers = ["s2", "s1", "", "s2", None, "s3", "s1", None]
    ids = ["a", "b", "c", "d@noise", "e", "f@snr10", "g", "h"]
    gold_path = tmp_path / f"gold{suffix}"
    df = pd.DataFrame({"id": ids, "acoustic_label": ["angry"] * 8, "speaker_id": speakers})
    df.to_csv(gold_path, index=False) if suffix == ".csv" else df.to_parquet(gold_path)
    gold = load_gold(gold_path, "ekman7")
    codes, uniques = pd.factorize(pd.Series(speakers, dtype=object).replace("", None).to_numpy(dtype=object))
    unknown = codes < 0
    codes[unknown] = len(uniques) + np.arange(unknown.sum())
    assert gold.speaker_codes.tolist() == codes.tolist() == [0, 1, 3, 0, 4, 2, 1, 5]
    assert gold.is_degraded.tolist() == ["@" in i for i in ids]
    fresh = type(gold)(ids=gold.ids, taxonomy=gold.taxonomy, speaker=gold.speaker)  # no cached values
    assert fresh.speaker_codes.tolist() == codes.tolist()
    assert fresh.is_degraded.tolist() == gold.is_degraded.tolist()
    mixed = type(gold)(ids=gold.ids, taxonomy=gold.taxonomy,
                       speaker=np.array(["s1", 7, "s1", np.nan, 7, "", "x", "x"], dtype=object))
    assert mixed.speaker_codes.tolist() == [0, 1, 0, 3, 1, 4, 2, 2]  # pandas.factorize: s1, 7, x, then unknowns


def test_read_gold_keeps_ids_in_arrow_until_asked_and_converts_columns_like_pyarrow(tmp_path):
    # read_gold leaves the ids in Arrow (evaluate never needs a million Python strings); the first use of
    # `gold.ids` makes them, and length, pickling and subsets behave as for a gold built from NumPy arrays.
    # String columns of few distinct values go through Arrow's dictionary: the reference is pyarrow's own
    # object conversion, nulls included.
    import pickle

    import pyarrow as pa

    from casebench.benchmarks import _objects
    from casebench.leaderboard.phases import subset_gold

    n = 10_000
    ids = [f"clip-{i}" for i in range(n)]
    speakers = [None if i % 97 == 0 else f"spk{i % 40}" for i in range(n)]
    pd.DataFrame({"id": ids, "acoustic_label": ["angry", "sad"] * (n // 2), "speaker_id": speakers,
                  "path": [f"audio/{i}.flac" for i in range(n)]}).to_parquet(tmp_path / "gold.parquet")
    gold = load_gold(tmp_path / "gold.parquet", "ekman7")
    assert "ids" not in gold.__dict__ and len(gold) == n
    again = pickle.loads(pickle.dumps(gold))
    assert gold.ids.tolist() == ids and "ids" in gold.__dict__
    assert again.ids.tolist() == ids and len(again) == n
    assert gold.columns["speaker_id"].tolist() == speakers and gold.speaker is gold.columns["speaker_id"]
    half = subset_gold(gold, np.arange(n) % 2 == 0, "even")
    assert half.ids.tolist() == ids[::2] and half.speaker.tolist() == speakers[::2]
    for values in (speakers, [f"audio/{i}.flac" for i in range(n)], ["a", None] * (n // 2)):
        col = pa.chunked_array([pa.array(values[: n // 2]), pa.array(values[n // 2:])])
        assert _objects(col).tolist() == col.to_numpy(zero_copy_only=False).tolist() == values
