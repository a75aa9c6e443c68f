"""Benchmark specs as a typed model (casebench.benchmarks.spec): unknown keys and metric names refused with
the file, the key and a did-you-mean; the committed JSON Schema equals the generated one."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from casebench.benchmarks import get_benchmark, list_benchmarks, load_spec
from casebench.errors import ConfigError, InputError, SpecError

ROOT = Path(__file__).parents[1]
BASE = "name: x\nversion: 1\ntaxonomy: ekman7\ngold: g.csv\n"


def _spec(tmp_path, text: str) -> Path:
    p = tmp_path / "b.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, field, hint", [
    (BASE + "gruop_by: [gender]\ntasks: [{kind: categorical}]\n", "gruop_by", "did you mean 'group_by'?"),
    (BASE + "tasks: [{kind: categorical, main_metrc: uar}]\n", "tasks[0].main_metrc", "did you mean 'main_metric'?"),
    (BASE + "tasks: [{kind: categorical}]\nsplits: [{name: a, kind: subset, colum: corpus}]\n", "splits[0].colum",
     "did you mean 'column'?"),
    (BASE + "tasks: [{kind: categorical}]\ndataset: {hbu: a/b}\n", "dataset.hbu", "did you mean 'hub'?"),
])
def test_misspelt_key_is_refused_naming_file_key_and_suggestion(tmp_path, text, field, hint):
    p = _spec(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_spec(p)
    msg = str(e.value)
    assert f"{p}: field {field!r}: unknown key" in msg and hint in msg
    assert isinstance(e.value, ConfigError) and isinstance(e.value, InputError)


def test_unknown_main_metric_lists_the_valid_names(tmp_path):
    p = _spec(tmp_path, BASE + "tasks: [{kind: distribution, main_metric: macro_f2}, "
                              "{kind: categorical, main_metric: macro_f2}]\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    msg = str(e.value)
    assert "field 'tasks[0].main_metric': 'macro_f2' is not a metric of a distribution task" in msg
    assert "'js'" in msg and "'kl'" in msg
    assert "field 'tasks[1].main_metric'" in msg and "(did you mean 'macro_f1'?)" in msg


def test_every_problem_is_listed_and_kinds_get_suggestions(tmp_path):
    p = _spec(tmp_path, "name: x\ngold: g.csv\ntasks: [{kind: categorial}]\nsplits: [all, conflcit]\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    msg = str(e.value)
    for part in ("field 'version': missing", "field 'taxonomy': missing", "did you mean 'categorical'?",
                 "field 'splits[1]': found 'conflcit'", "did you mean 'conflict'?"):
        assert part in msg
    assert len(e.value.problems) == 4


def test_target_only_for_categorical_and_fingerprint_pattern(tmp_path):
    with pytest.raises(SpecError, match="target applies to categorical tasks only"):
        load_spec(_spec(tmp_path, BASE + "tasks: [{kind: dimensional, target: semantic_label}]\n"))
    with pytest.raises(SpecError, match="'sha256:' and 64 hex digits"):
        load_spec(_spec(tmp_path, BASE + "tasks: [{kind: categorical}]\ndataset: {path: p, fingerprint: abc}\n"))


def test_pinned_dataset_fingerprint_is_checked(tmp_path):
    gold = tmp_path / "g.csv"
    gold.write_text("id,acoustic_label\na,angry\nb,sad\n")
    from casebench.benchmarks import fingerprint_gold

    fp = fingerprint_gold(gold)
    bench = load_spec(_spec(tmp_path, BASE + f"tasks: [{{kind: categorical}}]\ndataset: {{fingerprint: '{fp}'}}\n"))
    assert bench.dataset == {"fingerprint": fp} and len(bench.load_gold()) == 2
    gold.write_text("id,acoustic_label\na,angry\nb,happy\n")
    with pytest.raises(ConfigError) as e:
        bench.load_gold()
    assert fp in str(e.value) and fingerprint_gold(gold) in str(e.value) and str(gold) in str(e.value)


def test_prior_in_the_spec(tmp_path):
    bench = load_spec(_spec(tmp_path, BASE + "tasks: [{kind: categorical}]\n"
                                             "prior: {source: train of x v1, n: 30, labels: {sad: 20, angry: 10}}\n"))
    assert bench.prior == {"source": "train of x v1", "n": 30, "labels": {"sad": 20.0, "angry": 10.0}}
    with pytest.raises(SpecError, match=r"field 'prior.labels.sda': not a label of ekman7.*did you mean 'sad'"):
        load_spec(_spec(tmp_path, BASE + "tasks: [{kind: categorical}]\nprior: {labels: {sda: 2}}\n"))
    with pytest.raises(SpecError, match="field 'prior.labels.sad'"):
        load_spec(_spec(tmp_path, BASE + "tasks: [{kind: categorical}]\nprior: {labels: {sad: -1}}\n"))


def test_shipped_specs_validate_against_the_committed_schema():
    import jsonschema

    schema = json.loads((ROOT / "docs" / "schema" / "benchmark-spec.schema.json").read_text())
    names = list_benchmarks()
    assert {"casebench-mini", "casebench-audio-mini"} <= set(names)
    for name in names:  # jsonschema.validate raises ValidationError on a spec the schema refuses
        path = get_benchmark(name).spec_path
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_committed_schemas_equal_the_generated_ones():
    spec = importlib.util.spec_from_file_location("export_schemas", ROOT / "scripts" / "export_schemas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, schema in mod.schemas().items():
        committed = (ROOT / "docs" / "schema" / name).read_text()
        assert committed == mod.render(schema), f"docs/schema/{name} is stale: run python scripts/export_schemas.py"


def test_results_validate_against_the_model_and_the_committed_schema(tmp_path):
    import jsonschema
    import orjson

    from casebench.evaluate import evaluate
    from casebench.results import dumps, load, save

    bench = get_benchmark("casebench-mini")
    res = evaluate(bench.gold_path.parent / "examples" / "voice-model.jsonl", bench, n_boot=50, group_by="gender")
    schema = json.loads((ROOT / "docs" / "schema" / "results.schema.json").read_text())
    jsonschema.validate(orjson.loads(dumps(res)), schema)
    path = save(res, tmp_path / "r.json")
    assert load(path)["splits"] == orjson.loads(dumps(res))["splits"]
    bad = orjson.loads(dumps(res))
    bad["warnigns"] = []
    bad["splits"]["all"]["accuracy"]["ci_hgh"] = 0.5
    (tmp_path / "bad.json").write_bytes(orjson.dumps(bad))
    with pytest.raises(SpecError) as e:
        load(tmp_path / "bad.json")
    msg = str(e.value)
    assert "field 'warnigns': unknown key (did you mean 'warnings'?)" in msg
    assert "field 'splits.all.accuracy.ci_hgh': unknown key" in msg


def _degraded_mini(tmp_path, n_speakers=12):
    """casebench-mini's first speakers with an ``@snr5`` copy of each item, and the voice model's predictions
    (the copies' labels every third item turned to 'neutral')."""
    import pandas as pd

    bench = get_benchmark("casebench-mini")
    gold = pd.read_csv(bench.gold_path)
    gold = gold[gold["speaker_id"].isin(sorted(gold["speaker_id"].unique())[:n_speakers])]
    both = pd.concat([gold, gold.assign(id=gold["id"] + "@snr5")], ignore_index=True)
    both.to_csv(tmp_path / "gold.csv", index=False)
    preds = {json.loads(line)["id"]: json.loads(line)
             for line in (bench.gold_path.parent / "examples" / "voice-model.jsonl").read_text().splitlines()}
    lines = []
    for k, i in enumerate(both["id"]):
        p = dict(preds[i.split("@")[0]], id=i)
        if "@" in i and k % 3 == 0:
            p["label"] = "neutral"
        lines.append(json.dumps(p))
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "b.yaml"
    spec.write_text(yaml.safe_dump({"name": "deg", "version": "1", "taxonomy": "ekman7", "gold": "gold.csv",
                                    "group_by": ["gender"], "tasks": [{"kind": "categorical"}]}))
    return load_spec(spec), tmp_path / "p.jsonl"


def test_every_part_of_the_results_is_typed(tmp_path):
    """The model holds every key evaluate writes (a dump of the validated model is the document itself), and a
    misspelled key anywhere, groups and robustness included, is refused with its dotted path and a hint."""
    import orjson

    from casebench.evaluate import evaluate
    from casebench.results import dumps, load
    from casebench.results_model import Results

    bench, preds = _degraded_mini(tmp_path)
    res = orjson.loads(dumps(evaluate(preds, bench, n_boot=50)))
    assert res["groups"]["gender"]["groups"] and res["robustness"]["conditions"]["snr5"]["drop"]
    assert Results.model_validate(res).model_dump(mode="json", exclude_unset=True) == res
    bad = orjson.loads(dumps(res))
    bad["groups"]["gender"]["groups"]["female"]["metrics"]["uar"]["ci_hgh"] = 0.5
    bad["groups"]["gender"]["largest_gap"]["uar"]["wrost"] = "male"
    bad["robustness"]["conditions"]["snr5"]["drop"]["uar"]["pvalue"] = 0.1
    bad["robustness"]["snr_curves"] = {"white": {"conditions": [], "snr_db": [], "auc": {}, "uarr": []}}
    bad["per_class"]["all"]["angry"]["suport"] = 3
    bad["split_info"]["all"]["knd"] = "all"
    bad["conflict_breakdown"] = [{"acoustic": "sad", "semantic": "happy", "n": 1, "voice": 1, "text": 0,
                                  "other": 0, "txt": 0}]
    bad["model"]["trained_onn"] = []
    del bad["splits"]["all"]["uar"]["n_clusters"]
    (tmp_path / "bad.json").write_bytes(orjson.dumps(bad))
    with pytest.raises(SpecError) as e:
        load(tmp_path / "bad.json")
    msg = str(e.value)
    for field, hint in (("groups.gender.groups.female.metrics.uar.ci_hgh", "ci_high"),
                        ("groups.gender.largest_gap.uar.wrost", "worst"),
                        ("robustness.conditions.snr5.drop.uar.pvalue", "p_value"),
                        ("per_class.all.angry.suport", "support"), ("split_info.all.knd", "kind"),
                        ("conflict_breakdown.0.txt", "text"), ("model.trained_onn", "trained_on")):
        assert f"field '{field}': unknown key (did you mean '{hint}'?)" in msg
    assert "field 'robustness.snr_curves.white': unknown key 'uarr'" in msg and "(did you mean 'uar'?)" in msg
    assert "field 'splits.all.uar': an entry with an interval needs n_clusters and n_distinct_resamples" in msg


def test_evaluate_checks_what_it_writes(tmp_path, monkeypatch):
    """A part casebench builds wrong is caught before it is returned or written, not when a file is loaded."""
    from pydantic import ValidationError

    from casebench import fairness
    from casebench.evaluate import evaluate

    bench, preds = _degraded_mini(tmp_path)
    real = fairness.group_breakdown
    monkeypatch.setattr(fairness, "group_breakdown", lambda *a, **kw: {**real(*a, **kw), "worst_grup": {}})
    with pytest.raises(ValidationError, match="worst_grup"):
        evaluate(preds, bench, n_boot=0)
