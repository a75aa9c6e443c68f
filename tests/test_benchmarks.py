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
