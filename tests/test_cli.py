"""The command line: thin wrappers, exit codes, JSON output, no tracebacks on bad input."""

import gzip
import json
import subprocess
import sys

import pytest

from casebench.benchmarks import get_benchmark
from casebench.cli import main

MINI = get_benchmark("casebench-mini")
EXAMPLES = MINI.gold_path.parent / "examples"


def run(*args):
    """Run the CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "casebench", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command_and_stays_light():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("evaluate", "compare", "benchmarks", "taxonomies", "demo"):
        assert cmd in out.stdout
    # --help must not import heavy libraries
    code = ("import sys; from casebench.cli import app; import typer.testing as t; "
            "t.CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in ('torch','datasets','ray','whisper','faster_whisper','sklearn','pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_evaluate_json_and_out(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["evaluate", str(EXAMPLES / "voice-model.jsonl"), "-b", "casebench-mini", "--bootstrap", "100",
               "--json", "--out", str(out), "--model-name", "m", "--trained-on", "IEMOCAP,mini-acted"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["splits"] == saved["splits"]
    acc = saved["splits"]["conflict"]["accuracy"]
    assert set(acc) == {"value", "ci_low", "ci_high", "n", "n_clusters", "n_distinct_resamples"}
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"] and acc["n_clusters"] <= 40
    assert saved["model"]["zero_shot"] is False and saved["model"]["not_zero_shot_on"] == ["mini-acted"]
    # casebench-mini ships no train table: the constant baseline is the test prior, named an oracle
    assert saved["baselines"]["test prior (oracle)"]["all"]["accuracy"]["n"] == 480
    assert saved["baseline_prior"] == {"name": "test prior (oracle)", "source": "test", "n": 480, "oracle": True}
    assert saved["predictions"]["sha256"].startswith("sha256:") and saved["seed"] == 0


def test_report_writes_html_and_plots(tmp_path):
    rc = main(["evaluate", str(EXAMPLES / "text-model.jsonl"), "-b", "casebench-mini", "--bootstrap", "50",
               "--report", str(tmp_path / "rep")])
    assert rc == 0
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"index.html", "results.json", "confusion.png", "conflict_breakdown.png",
            "per_class_f1_all.png"} <= names
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "text_following_rate" in html and "conflict_breakdown.png" in html


def test_adhoc_gold(tmp_path, capsys):
    gold = tmp_path / "gold.csv"
    gold.write_text("id,acoustic_label,semantic_label\na,angry,happy\nb,sad,sad\nc,happy,happy\n")
    preds = tmp_path / "p.jsonl.gz"
    with gzip.open(preds, "wt") as f:
        f.write('{"id":"a","label":"happy"}\n{"id":"b","label":"sad"}\n{"id":"c","label":"happy"}\n')
    assert main(["evaluate", str(preds), "--gold", str(gold), "--taxonomy", "ekman7", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["splits"]["conflict"]["text_following_rate"]["value"] == 1.0
    assert res["splits"]["congruent"]["accuracy"]["value"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["evaluate", "missing.jsonl", "-b", "casebench-mini"], "missing.jsonl"),
    (["evaluate", "x.jsonl", "-b", "casebench-mnii"], "did you mean 'casebench-mini'"),
    (["evaluate", "x.jsonl", "--gold", "g.csv"], "--taxonomy"),
    (["evaluate", "x.jsonl"], "--benchmark"),
])
def test_user_errors_exit_2_without_traceback(args, message):
    out = run(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_bad_predictions_name_line_id_and_field(tmp_path):
    p = tmp_path / "bad.jsonl"
    lines = (EXAMPLES / "voice-model.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["label"] = "angyr"
    lines[0] = json.dumps(first)
    p.write_text("\n".join(lines) + "\n")
    out = run("evaluate", str(p), "-b", "casebench-mini", "--bootstrap", "0")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{p}:1" in out.stderr and first["id"] in out.stderr and "label" in out.stderr


def test_compare_json(capsys):
    rc = main(["compare", str(EXAMPLES / "voice-model.jsonl"), str(EXAMPLES / "text-model.jsonl"),
               "-b", "casebench-mini", "--bootstrap", "200", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    acc = res["splits"]["conflict"]["accuracy"]
    assert acc["diff"]["value"] == pytest.approx(acc["a"] - acc["b"])
    assert acc["diff"]["ci_low"] > 0 and acc["p_value"] < 0.05  # the voice model is clearly better on conflict
    assert res["mcnemar"]["conflict"]["p_value"] < 0.05


def test_benchmarks_and_taxonomies_json(capsys):
    assert main(["benchmarks", "--json"]) == 0
    assert any(b["name"] == "casebench-mini" for b in json.loads(capsys.readouterr().out))
    assert main(["taxonomies", "--json"]) == 0
    assert {t["name"] for t in json.loads(capsys.readouterr().out)} >= {"ekman7", "plutchik32"}


@pytest.mark.parametrize("args, message", [
    (["evalute"], "no such command 'evalute' (did you mean 'evaluate'?)"),
    (["evaluate", "--ratio"], "no such option --ratio"),
    (["split", "ws", "--ratio", "0.5"], "no such option --ratio (did you mean '--ratios'?)"),
    (["evaluate"], "missing argument 'predictions'"),
    (["evaluate", "x.jsonl", "--bootstrap", "-5"], "'--bootstrap'"),
    (["annotate", "pus"], "no such command 'pus' (did you mean 'push'?)"),
])
def test_usage_errors_are_one_line_with_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert err.startswith("error: casebench") and len(err.strip().splitlines()) == 1, err
    assert "--help" in err  # says where to look


def test_usage_error_in_a_real_process_exits_2():
    out = run("evalute", "x")
    assert out.returncode == 2 and "did you mean 'evaluate'" in out.stderr and "Traceback" not in out.stderr


def test_version(capsys):
    from casebench import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"casebench {__version__}"


def test_help_groups_every_command_in_workflow_order(capsys):
    from casebench.cli import HELP_PANELS, app

    listed = [name for _, cmds in HELP_PANELS for name, _ in cmds]
    registered = [i.name or i.callback.__name__.replace("_", "-") for i in app.registered_commands]
    registered += [i.name for i in app.registered_groups]
    assert sorted(listed) == sorted(registered), "put every command in one panel of HELP_PANELS"
    assert all("\n" not in summary and len(summary) <= 90 for _, cmds in HELP_PANELS for _, summary in cmds)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    panels = [panel for panel, _ in HELP_PANELS]
    assert [out.index(p) for p in panels] == sorted(out.index(p) for p in panels)
    rows = [out.index(f"│ {name} ") for name in ("init", "annotate", "publish", "evaluate")]
    assert rows == sorted(rows)
