"""Every command of the CLI, walked from the typer app, meets a user's mistakes with one readable message and
exit code 2, never a traceback: an unknown option, a missing argument, a bad value and an output it cannot
write (a read-only workspace, a file where a folder should be, a full disk).

The tables below name, per command, the bad value and the unwritable output to try; a command missing from
them fails the test, so a new command has to say how it meets these mistakes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from casebench.benchmarks import get_benchmark
from casebench.cli import app, main
from casebench.testing import make_workspace

EXAMPLES = get_benchmark("casebench-mini").gold_path.parent / "examples"
CARD = ["--licence", "CC-BY-4.0", "--consent", "synthetic", "--summary", "s", "--authors", "a", "--guidelines", "g"]


def leaf_commands() -> dict[str, object]:
    """'annotate push' -> its click command, for every command reachable from `casebench`."""
    out = {}

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                out[f"{prefix}{name}"] = cmd

    walk(typer.main.get_command(app), "")
    return out


COMMANDS = leaf_commands()

# A value each command refuses (parser bounds, registry names, formats). None: the command takes no value.
BAD_VALUE: dict[str, list[str] | None] = {
    "init": ["init", "{tmp}/new", "--taxonomy", "ekmann7"],
    "synth": ["synth", "{ws}", "--per-cell", "-1"],
    "collect": ["collect", "{ws}", "{rec}", "--format", "mp4"],
    "import-corpus": ["import-corpus", "ravdes", "{ravdess}"],
    "transcribe": ["transcribe", "{ws}", "--beam-size", "0"],
    "degrade": ["degrade", "{ws}", "--conditions", "snr5,banana"],
    "annotate push": ["annotate", "push", "{ws}", "--raters-per-clip", "0"],
    "annotate pull": ["annotate", "pull", "{ws}", "--map", "emotion"],
    "annotate import": ["annotate", "import", "{ws}", "{export}", "--map", "emotion"],
    "annotate import-csv": ["annotate", "import-csv", "{ws}", "{csv}", "--map", "=x"],
    "annotate config": ["annotate", "config", "{ws}", "--project", "banana"],
    "agreement": ["agreement", "{ws}", "--level", "banana"],
    "aggregate": ["aggregate", "{ws}", "--method", "banana"],
    "split": ["split", "{ws}", "--ratios", "0.5,abc"],
    "audit": ["audit", "{ws}", "--max-tvd", "2"],
    "publish": ["publish", "{ws}", "{tmp}/pub", "--shard-size", "banana"],
    "benchmark-from": ["benchmark-from", "{ws}", "--out", "{tmp}/xc", "--taxonomy", "banana"],
    "benchmarks show": ["benchmarks", "show", "casebench-mini", "--template", "{tmp}/t.jsonl", "--task", "banana"],
    "taxonomies": None,
    "baseline": ["baseline", "banana", "{ws}"],
    "evaluate": ["evaluate", "{preds}", "-b", "casebench-mini", "--bootstrap-unit", "banana"],
    "compare": ["compare", "{preds}", "{preds}", "-b", "casebench-mini", "--bootstrap", "10000000"],
    "leaderboard serve": ["leaderboard", "serve", "--port", "70000"],
    "leaderboard create-admin": ["leaderboard", "create-admin", "bad name!", "--data-dir", "{tmp}/lb",
                                 "--password-stdin"],
    "leaderboard add-user": ["leaderboard", "add-user", "two words", "--data-dir", "{tmp}/lb", "--password-stdin"],
    "leaderboard reveal": ["leaderboard", "reveal", "casebench-mini", "--phase", "banana", "--data-dir", "{tmp}/lb"],
    "leaderboard export": ["leaderboard", "export", "--benchmarks", "casebench-mini:banana", "--data-dir",
                           "{tmp}/lb", "--out", "{tmp}/site"],
    "submit": ["submit", "{preds}", "-b", "casebench-mini", "--server", "http://127.0.0.1:9", "--parameters", "-1"],
    "demo": ["demo", "--raters", "1"],
    "predict": ["predict", "probe:whisper-tiny.en", "-b", "casebench-mini", "--out", "{tmp}/p.jsonl",
                "--batch-size", "0"],
    "leaderboard worker": ["leaderboard", "worker", "--db", "sqlite:///{tmp}/w.db", "--processes", "0"],
    "mine-conflicts": ["mine-conflicts", "{ws}", "--text-emotion", "banana"],
    "perceive": ["perceive", "{ws}", "--clips", "banana"],
    "labelstudio start": ["labelstudio", "start", "{ws}", "--root", "{tmp}"],
    "labelstudio status": ["labelstudio", "status", "--data-dir", "{file}"],
    "labelstudio stop": ["labelstudio", "stop", "--data-dir", "{file}"],
}

# An output the command cannot write: {ro} is a read-only workspace, {file}/... lies under a regular file.
# None: the command writes nothing.
UNWRITABLE: dict[str, list[str] | None] = {
    "init": ["init", "{file}/ws"],
    "synth": ["synth", "{ro}", "--per-cell", "1", "--emotions", "angry,sad", "--no-progress"],
    "collect": ["collect", "{ro}", "{rec}", "--no-progress"],
    "import-corpus": ["import-corpus", "ravdess", "{ravdess}", "--out", "{file}/ws", "--no-progress"],
    "transcribe": ["transcribe", "{ro}", "--no-progress"],
    "degrade": ["degrade", "{ro}", "--conditions", "snr5"],
    "annotate push": ["annotate", "push", "{ro}", "--url", "http://127.0.0.1:9", "--token", "t"],
    "annotate pull": ["annotate", "pull", "{ro}", "--url", "http://127.0.0.1:9", "--token", "t"],
    "annotate import": ["annotate", "import", "{ro}", "{export}"],
    "annotate import-csv": ["annotate", "import-csv", "{ro}", "{csv}"],
    "annotate config": None,
    "agreement": ["agreement", "{ro}", "--bootstrap", "10"],
    "aggregate": ["aggregate", "{ro}"],
    "split": ["split", "{ro}", "--allow-missing-classes"],
    "audit": ["audit", "{ro}", "--no-audio", "--no-progress"],
    "publish": ["publish", "{ws}", "{file}/pub", "--no-progress", "--no-audio-audit", "--bootstrap", "0",
                "--allow-leakage", "test", *CARD],
    "benchmark-from": ["benchmark-from", "{ws}", "--out", "{file}/xc"],
    "benchmarks show": ["benchmarks", "show", "casebench-mini", "--template", "{file}/t.jsonl"],
    "taxonomies": None,
    "baseline": ["baseline", "majority", "{ro}", "--no-progress"],
    "evaluate": ["evaluate", "{preds}", "-b", "casebench-mini", "--bootstrap", "0", "--out", "{file}/r.json"],
    "compare": None,
    "leaderboard serve": ["leaderboard", "serve", "--data-dir", "{file}/lb"],
    "leaderboard create-admin": ["leaderboard", "create-admin", "admin", "--data-dir", "{file}/lb",
                                 "--password-stdin"],
    "leaderboard add-user": ["leaderboard", "add-user", "x", "--data-dir", "{file}/lb", "--password-stdin"],
    "leaderboard reveal": ["leaderboard", "reveal", "casebench-mini", "--data-dir", "{file}/lb"],
    "leaderboard export": ["leaderboard", "export", "--out", "{file}/site", "--data-dir", "{tmp}/lb-export"],
    "submit": None,
    "demo": ["demo", "--out", "{file}/demo", "--no-label-studio", "--bootstrap", "0"],
    "predict": ["predict", "probe:whisper-tiny.en", "-b", "casebench-audio-mini", "--out", "{file}/p.jsonl"],
    "leaderboard worker": None,  # writes only to the leaderboard's database
    "mine-conflicts": ["mine-conflicts", "{ro}"],
    "perceive": ["perceive", "{ro}", "--bootstrap", "0"],
    "labelstudio start": ["labelstudio", "start", "--root", "{tmp}", "--data-dir", "{file}/ls"],
    "labelstudio status": None,  # reads its state file only
    "labelstudio stop": None,  # writes the state file of a server it stopped (tests/test_labelstudio_cli.py)
}


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` and everything under it unwritable, even for root (who ignores file modes): the immutable
    attribute (chattr +i) as root, modes otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no way to make a folder read-only")
        done = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"running as root on a file system without chattr +i: {done.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(["chattr", "-R", "-i", str(path)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield path
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The inputs every case needs: a workspace, a read-only copy of it (pushed to a Label Studio project, so
    pull gets as far as writing), recordings, a long CSV, a Label Studio export, a RAVDESS tree, a file."""
    from casebench.corpora.testing import TREES
    from casebench.workspace import Workspace

    tmp = tmp_path_factory.mktemp("cli-usage")
    ws = make_workspace(tmp, n_clips=24, with_audio=True, with_transcripts=True, with_annotations=True)
    ro = tmp / "ro"
    shutil.copytree(ws.root, ro)
    copy = Workspace.open(ro)
    copy.set_section("annotation", {**copy.section("annotation"),
                                    "label_studio": {"url": "http://127.0.0.1:9", "acoustic_project": 1}})
    (tmp / "rec").mkdir()
    shutil.copy(ws.root / "audio" / "clip-0000.wav", tmp / "rec" / "a.wav")
    (tmp / "ratings.csv").write_text("clip_id,rater_id,dimension,value\nclip-0000,r9,acoustic_emotion,angry\n")
    (tmp / "afile").write_text("a file, not a folder\n")
    paths = {"tmp": tmp, "ws": ws.root, "ro": ro, "rec": tmp / "rec", "csv": tmp / "ratings.csv",
             "export": Path(__file__).parent / "assets" / "labelstudio" / "export-acoustic.json",
             "ravdess": TREES["ravdess"](tmp / "ravdess"), "file": tmp / "afile",
             "preds": EXAMPLES / "voice-model.jsonl"}
    with read_only(ro):
        yield {k: str(v) for k, v in paths.items()}


def run_cli(args: list[str], env: dict, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-password-1234\n"))
    rc = main([a.format(**env) for a in args])
    return rc, capsys.readouterr().err


def assert_one_clean_message(rc: int, err: str) -> None:
    """Exit 2, no traceback, one message starting with 'error:' (after at most a progress bar's line)."""
    assert rc == 2, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert err[err.index("error:"):].count("\n") == 1 or "\n  " in err[err.index("error:"):], err


def test_every_command_is_in_the_tables():
    assert set(COMMANDS) == set(BAD_VALUE) == set(UNWRITABLE), "say how each new command meets the mistakes"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unknown_option(name, capsys):
    rc = main([*name.split(), "--no-such-option"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "no such option --no-such-option" in err and f"casebench {name} --help" in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_missing_argument(name, capsys):
    if not any(p.required for p in COMMANDS[name].params):
        return  # nothing can be missing (and run bare, demo would run and serve would serve)
    rc = main(name.split())
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "missing" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bad_value(name, env, capsys, monkeypatch):
    args = BAD_VALUE[name]
    if args is None:
        assert all(p.is_flag or p.name == "help" for p in COMMANDS[name].params if hasattr(p, "is_flag")), \
            f"{name} takes values: give it a bad one in BAD_VALUE"
        return
    rc, err = run_cli(args, env, capsys, monkeypatch)
    assert_one_clean_message(rc, err)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unwritable_output(name, env, capsys, monkeypatch):
    args = UNWRITABLE[name]
    if args is None:
        return
    rc, err = run_cli(args, env, capsys, monkeypatch)
    assert_one_clean_message(rc, err)
    where = env["ro"] if "{ro}" in args else env["file"]
    assert where in err, err
    assert len(err[err.index("error:"):].strip().splitlines()) == 1, err


@pytest.mark.parametrize("args, message", [
    (["--bootstrap", "-5"], "'--bootstrap'"),
    (["--seed", "-1"], "'--seed'"),
    (["--bootstrap", "10000000"], "above the limit of 100000"),
    (["--bootstrap-unit", "banana"], "'banana' is not one of auto, item, speaker"),
    (["--bootstrap-unit", "speakers"], "did you mean 'speaker'?"),
    (["--out", "{tmp}"], "is a folder; expected a file"),
    (["--out", "/dev/full"], "no space left on the device"),
    (["--report", "{file}"], "is a file; expected a folder"),
    (["--out", "{ro}/r.json"], "cannot write {ro}/r.json"),
    (["--report", "{ro}/report"], "{ro}/report"),
])
def test_evaluate_values_and_outputs(args, message, env, capsys, monkeypatch):
    rc, err = run_cli(["evaluate", "{preds}", "-b", "casebench-mini", "--bootstrap", "0", *args], env, capsys,
                      monkeypatch)
    assert_one_clean_message(rc, err)
    assert message.format(**env) in err, err


def test_library_refuses_the_same_values():
    """The bounds hold for Python callers too (the CLI only reports them earlier)."""
    from casebench.errors import ConfigError
    from casebench.evaluate import evaluate

    bench = get_benchmark("casebench-mini")
    with pytest.raises(ConfigError, match="did you mean 'speaker'"):
        evaluate(EXAMPLES / "voice-model.jsonl", bench, n_boot=0, unit="speakers")
    with pytest.raises(ConfigError, match="0 to 100000"):
        evaluate(EXAMPLES / "voice-model.jsonl", bench, n_boot=10_000_000)


def test_out_can_be_a_device(env, capfd):
    """A device or a pipe (/dev/stdout) is written in place, not replaced by a renamed temp file."""
    assert main(["evaluate", env["preds"], "-b", "casebench-mini", "--bootstrap", "0", "--out", "/dev/stdout"]) == 0
    out = capfd.readouterr().out
    results, _ = json.JSONDecoder().raw_decode(out[out.index('{\n  "schema_version"'):])
    assert results["benchmark"]["name"] == "casebench-mini" and Path("/dev/stdout").exists()


def test_out_through_a_symlink_keeps_the_link(tmp_path, capsys):
    target = tmp_path / "results" / "r.json"
    target.parent.mkdir()
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    assert main(["evaluate", str(EXAMPLES / "voice-model.jsonl"), "-b", "casebench-mini", "--bootstrap", "0",
                 "--out", str(tmp_path / "link.json")]) == 0
    assert (tmp_path / "link.json").is_symlink() and json.loads(target.read_text())["seed"] == 0


def test_no_message_names_a_python_call():
    """Messages speak the command line (--overwrite), not the Python API (overwrite=True, Workspace.create)."""
    import ast
    import re

    api = re.compile(r"\b[a-z_]+=(True|False|None)\b|\bWorkspace\.[a-z_]+|\b[a-z_]+\(\)")
    makers = {"Problem", "ConfigError", "InputError", "CasebenchError", "MissingDependencyError", "PathError",
              "StaleError", "note"}
    found = []
    for path in sorted(Path(__file__).parents[1].joinpath("casebench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(getattr(node, "func", None), "attr", "")
            if isinstance(node, ast.Raise) or (isinstance(node, ast.Call) and name in makers):
                found += [f"{path.name}:{c.lineno}: {c.value}" for c in ast.walk(node)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str) and api.search(c.value)]
    assert not found, "\n".join(found)


def test_create_admin_without_a_terminal_says_how(tmp_path):
    """No terminal to type a password in (a script, CI): one message naming --password-stdin, no GetPassWarning;
    a piped password works."""
    env = {k: v for k, v in os.environ.items() if k != "CASEBENCH_PASSWORD"}
    cmd = [sys.executable, "-m", "casebench", "leaderboard", "create-admin", "boss", "--data-dir", str(tmp_path)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--password-stdin" in r.stderr, r.stderr
    assert "GetPassWarning" not in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*cmd, "--password-stdin"], input="a-long-password\n", capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and "admin boss created" in r.stdout, r.stderr


def test_baseline_takes_the_workspace_positionally_and_still_knows_the_option(env, capsys):
    assert main(["baseline", "majority", env["ws"], "--out", f"{env['tmp']}/b1.jsonl", "--no-progress"]) == 0
    assert main(["baseline", "majority", "--workspace", env["ws"], "--out", f"{env['tmp']}/b2.jsonl",
                 "--no-progress"]) == 0
    assert "--workspace is deprecated" in capsys.readouterr().err
    assert Path(env["tmp"], "b1.jsonl").read_text() == Path(env["tmp"], "b2.jsonl").read_text()


# -- found by walking the tutorials as a new user (each test fails without its fix) ---------------------------


def _spec(tmp_path: Path, edit=lambda text: text, name: str = "spec.yaml") -> Path:
    """A copy of casebench-mini's spec whose gold path is absolute, edited by ``edit``."""
    bench = get_benchmark("casebench-mini")
    text = bench.spec_path.read_text().replace("gold: data/", f"gold: {bench.spec_path.parent}/data/")
    path = tmp_path / name
    path.write_text(edit(text))
    return path


def test_benchmarks_list_fits_a_terminal_and_names_are_whole(capsys, monkeypatch):
    from casebench import cli

    monkeypatch.setattr(cli.console, "width", 80)
    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    assert "casebench-audio-mini " in out and "casebench-a…" not in out, out
    assert len(out.splitlines()) < 25, out  # was ~70 lines: the description wrapped word by word in a column


def test_console_marks_follow_the_html_report_rule(capsys):
    """"beats constant" only when the whole CI is on the better side (as in the HTML report), never from the
    point estimate alone; a ↓ metric is never marked "≤ constant" (read as 'below the constant', i.e. better)."""
    assert main(["evaluate", str(EXAMPLES / "voice-model.jsonl"), "-b", "casebench-mini"]) == 0
    out = capsys.readouterr().out
    follow = next(line for line in out.splitlines() if line.startswith("text_following_rate"))
    assert "CI covers constant" in follow, follow  # 0.148 [0.103, 0.196] against 0.166
    assert "≤ constant" not in out and "below constant" in out


def test_messages_are_printed_as_written_without_emoji_codes(tmp_path, capsys):
    rc = main(["predict", "probe:banana", "-b", "casebench-audio-mini", "--out", str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "probe:banana:" in err and "\N{BANANA}" not in err, err


@pytest.mark.parametrize("spec, message", [
    ("missing.yaml", "missing.yaml: no such benchmark spec file"),
    ("sub/missing.yml", "missing.yml: no such benchmark spec file"),
    ("folder", "folder: is a folder; expected a benchmark spec file"),
    ("not-utf8.yaml", "not-utf8.yaml: byte 0 (b'\\xff') is not UTF-8"),
    ("broken.yaml", "broken.yaml:22: not valid: expected ',' or ']'"),
    ("typo-split.yaml", "split 'mini-acted' selects corpus == 'mini-actd', which no item"),
])
def test_a_spec_path_that_cannot_be_used_says_why(spec, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "not-utf8.yaml").write_bytes(b"\xff\xfe name: x\n")
    _spec(tmp_path, lambda t: t + "  - [broken\n", "broken.yaml")
    _spec(tmp_path, lambda t: t.replace("value: mini-acted", "value: mini-actd"), "typo-split.yaml")
    rc = main(["evaluate", str(EXAMPLES / "voice-model.jsonl"), "-b", spec, "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert message in err and "unknown benchmark" not in err, err
    if spec == "typo-split.yaml":
        assert "did you mean 'mini-acted'?" in err


@pytest.mark.parametrize("args", [
    ["predict", "probe:whisper-tiny.en", "-b", "casebench-audio-mini", "--out", "p.jsonl", "--label-map", "{bad}"],
    ["leaderboard", "serve", "--config", "{bad}"],
])
def test_a_config_file_that_is_not_utf8_is_a_usage_error(args, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad").write_bytes(b"\xff\xfe")
    rc = main([a.format(bad=tmp_path / "bad") for a in args])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert f"{tmp_path / 'bad'}: byte 0" in err and "UTF-8" in err, err


def test_a_yaml_label_map_error_names_the_line_in_one_message(tmp_path, capsys):
    (tmp_path / "map.yaml").write_text("excited: happy\ncalm: [neutral\n")
    rc = main(["predict", "probe:whisper-tiny.en", "-b", "casebench-audio-mini", "--out", str(tmp_path / "p.jsonl"),
               "--label-map", str(tmp_path / "map.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'map.yaml'}:3: not valid" in err and '<unicode string>' not in err, err


@pytest.mark.parametrize("args, key", [
    (["evaluate", "{preds}", "-b", "banana", "--json"], "unknown benchmark 'banana'"),
    (["evaluate", "{preds}", "-b", "casebench-mini", "--bootstrap", "0", "--out", "{tmp}", "--json"],
     "is a folder"),
    (["evaluate", "{preds}", "--json", "--no-such-option"], "no such option --no-such-option"),
    (["benchmarks", "show", "banana", "--json"], "unknown benchmark"),
])
def test_json_errors_are_json_on_stdout(args, key, env, capsys):
    rc = main([a.format(**env) for a in args])
    out = capsys.readouterr().out
    assert rc == 2 and key in json.loads(out)["error"], out


def test_reveal_from_the_wrong_folder_reveals_nothing(tmp_path, capsys, monkeypatch):
    """The default --data-dir is relative: run from another folder, reveal used to create an empty database,
    say 'scores revealed' and exit 0 while the served board stayed hidden."""
    monkeypatch.chdir(tmp_path)
    rc = main(["leaderboard", "reveal", "casebench-mini"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "no leaderboard database at leaderboard-data/leaderboard.db" in err and "--data-dir" in err, err
    assert not (tmp_path / "leaderboard-data").exists()


def test_benchmarks_show_task_needs_a_template(capsys):
    rc = main(["benchmarks", "show", "casebench-mini", "--task", "categorical"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "--template" in err


def test_publish_names_the_folder_not_its_temp_copy(env, capsys, monkeypatch):
    rc, err = run_cli(["publish", "{ws}", "{ro}/pub", "--no-progress", "--no-audio-audit", "--bootstrap", "0",
                       "--allow-leakage", "test", *CARD], env, capsys, monkeypatch)
    assert_one_clean_message(rc, err)
    assert f"cannot write {env['ro']}/pub:" in err and ".tmp" not in err, err


def test_own_gold_header_says_so(env, capsys):
    gold = get_benchmark("casebench-mini").gold_path
    assert main(["evaluate", env["preds"], "--gold", str(gold), "--taxonomy", "ekman7", "--bootstrap", "0"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("gold (a --gold table) (ekman7)") and "vadhoc" not in first, first


def test_transcribe_help_states_the_packing_window():
    from casebench.asr.packing import PackingConfig

    cmd = COMMANDS["transcribe"]
    help_text = cmd.help + next(p.help for p in cmd.params if p.name == "batch_size")
    assert f"{PackingConfig().window_s:g} s" in help_text and "30-s" not in help_text, help_text


def test_no_message_pairs_a_parameter_name_with_its_option():
    """'exclude_flagged (--exclude-flagged) leaves them out', 'they count as wrong (allow_missing)': the option
    is what a user types, not the Python parameter behind it (checked in every string literal of the package)."""
    import ast
    import re

    options = {p.name for cmd in COMMANDS.values() for p in cmd.params
               if "_" in (p.name or "") and any(o.startswith("--") for o in getattr(p, "opts", []))}
    pattern = re.compile(r"\b[a-z]+_[a-z_]+ \(--[a-z-]+\)|\((" + "|".join(sorted(options)) + r")\)")
    found = [f"{path.name}:{node.lineno}: {node.value}"
             for path in sorted(Path(__file__).parents[1].joinpath("casebench").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.search(node.value)]
    assert not found, "\n".join(found)


UTF16 = "clip_id,path,text\n".encode("utf-16")  # what Excel's "Unicode Text" export starts with


@pytest.mark.parametrize("args, name", [
    (["annotate", "import-csv", "{ws}", "{bad}"], "ratings.csv"),
    (["collect", "{ws}", "{bad}"], "manifest.csv"),
    (["collect", "{ws}", "{bad}"], "manifest.jsonl"),
    (["synth", "{ws}", "--texts", "{bad}"], "texts.csv"),
])
def test_a_utf16_or_binary_table_is_named_not_a_traceback(args, name, env, capsys, tmp_path):
    bad = tmp_path / name
    bad.write_bytes(UTF16 if name.endswith(".csv") else b'{"path": "a.wav"}\n\xff\n')
    rc = main([a.format(**env, bad=bad) for a in args])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert f"{bad}: byte" in err and "not UTF-8" in err, err
    if name.endswith(".csv"):
        assert "the file is UTF-16" in err


@pytest.mark.parametrize("args, header", [
    (["annotate", "import-csv", "{ws}", "{bad}"], "clip_id;rater_id;dimension;value"),
    (["collect", "{ws}", "{bad}"], "path;speaker"),
    (["synth", "{ws}", "--texts", "{bad}"], "text;semantic_emotion"),
    (["evaluate", "{preds}", "--gold", "{bad}", "--taxonomy", "ekman7"], "id;acoustic_label"),
])
def test_a_semicolon_separated_csv_says_so(args, header, env, capsys, tmp_path):
    bad = tmp_path / "table.csv"
    bad.write_text(f"{header}\nx;y;z;w\n")
    rc = main([a.format(**env, bad=bad) for a in args])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "separated by ';', not commas" in err, err


def test_import_csv_names_the_line_of_a_second_rating(env, capsys, tmp_path):
    """A rater rating a clip twice in the CSV was reported as a duplicate key at a row of annotations.parquet."""
    csv_file = tmp_path / "twice.csv"
    csv_file.write_text("clip_id,rater_id,dimension,value\nclip-0001,r9,acoustic_emotion,angry\n"
                        "clip-0001,r9,acoustic_emotion,sad\n")
    rc = main(["annotate", "import-csv", env["ws"], str(csv_file)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{csv_file}:3: id 'clip-0001': field 'rater_id'" in err and "(first on line 2)" in err, err
    assert "annotations.parquet" not in err


def test_a_step_run_too_early_names_the_commands_to_run_first(tmp_path, capsys):
    from casebench.workspace import Workspace

    Workspace.create(tmp_path / "ws", "ws")
    assert main(["aggregate", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "run `casebench annotate pull` or `casebench annotate import` or `casebench annotate import-csv` first" \
        in err and "a annotations" not in err, err


def test_submit_refuses_a_server_without_a_scheme_at_once(tmp_path, capsys, monkeypatch):
    """'127.0.0.1:8000' (no http://) was retried for 25 s and then reported as unreachable."""
    monkeypatch.setenv("CASEBENCH_TOKEN", "cbt_x")
    rc = main(["submit", str(EXAMPLES / "voice-model.jsonl"), "-b", "casebench-mini", "--server", "127.0.0.1:9",
               "--model-name", "m"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "expected the leaderboard's URL, http://HOST:PORT" in err, err


def test_serve_on_a_port_in_use_is_one_message(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = main(["leaderboard", "serve", "--data-dir", str(tmp_path / "lb"), "--port", str(port)])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err, err


def test_predict_does_not_resume_another_models_file(tmp_path, capsys):
    """The --out of model A given again for model B was 'resumed': 0 predicted, every clip 'already done', and
    B's name written into the sidecar of A's predictions (which submit then uploads under B's name)."""
    model = tmp_path / "model.py"
    model.write_text("import json, sys\nfor line in sys.stdin:\n    print(json.dumps({'label': 'angry'}))\n")
    out = tmp_path / "a.jsonl"
    a = f"command:{sys.executable} {model}"
    assert main(["predict", a, "-b", "casebench-audio-mini", "-o", str(out), "--limit", "3", "--no-progress"]) == 0
    capsys.readouterr()
    rc = main(["predict", f"{a} --other", "-b", "casebench-audio-mini", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert f"{out}: 3 prediction(s) of {a}; expected predictions of {a} --other" in err, err
    assert main(["predict", a, "-b", "casebench-audio-mini", "-o", str(out), "--no-progress"]) == 0  # A resumes
    assert len(out.read_text().splitlines()) == 96
    capsys.readouterr()
    orphan = tmp_path / "orphan.jsonl"
    orphan.write_text(out.read_text().splitlines()[0] + "\n")  # lines no sidecar vouches for
    rc = main(["predict", a, "-b", "casebench-audio-mini", "-o", str(orphan), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no orphan.jsonl.meta.json says which model wrote them" in err, err


@pytest.mark.parametrize("option, value", [("--name", "my corpus/2"), ("--version", " "), ("--name", "a\tb")])
def test_init_refuses_a_name_or_version_that_cannot_name_files(option, value, tmp_path, capsys):
    rc = main(["init", str(tmp_path / "ws"), option, value])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert f"{option} {value!r}" in err and not (tmp_path / "ws").exists(), err


def test_split_refuses_a_misspelt_split_name(env, capsys, tmp_path):
    """'tset' was made a split: every later step then missed 'test' and suggested 'tset'."""
    ws = tmp_path / "ws"
    shutil.copytree(env["ws"], ws)
    rc = main(["split", str(ws), "--ratios", "train=0.5,tset=0.5"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "split name 'tset' (did you mean 'test'?)" in err, err


def test_agreement_level_masi_leaves_the_rating_dimensions_at_their_level(env, capsys):
    """`agreement WS --level masi` (as in the README) failed on the valence ratings with "label '1' is not in
    the value domain; expected one of [1, 2, 3, 4, 5] (did you mean '1'?)"."""
    assert main(["agreement", env["ws"], "--level", "masi", "--bootstrap", "0", "--json",
                 "--report", f"{env['tmp']}/agreement-masi"]) == 0
    reports = json.loads(capsys.readouterr().out)["dimensions"]
    assert reports["acoustic_emotion"]["level"] == "masi" and reports["valence"]["level"] == "interval", reports
    rc = main(["agreement", env["ws"], "--level", "masi", "--dimension", "valence", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "dimension 'valence' is a rating: use --level interval" in err, err


@pytest.mark.parametrize("name", ["", *sorted(COMMANDS)])
def test_help_shows_no_value_for_a_flag(name, capsys):
    """Typer printed '--json <bool>' (and '--help <bool>'), as if the flag took a value."""
    assert main([*name.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out, out


@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_benchmark_and_gold_together_is_refused(command, env, capsys):
    """--gold used to win silently over --benchmark."""
    files = [env["preds"]] * (2 if command == "compare" else 1)
    gold = get_benchmark("casebench-mini").gold_path
    rc = main([command, *files, "-b", "casebench-audio-mini", "--gold", str(gold), "--taxonomy", "ekman7",
               "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "give one" in err, err


def test_ctrl_c_says_what_happened(capsys, monkeypatch):
    """Typer turned Ctrl-C into exit code 130 without a word, in the middle of a progress bar."""
    import casebench.benchmarks

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(casebench.benchmarks, "list_benchmarks", interrupted)
    assert main(["benchmarks"]) == 130
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C)" in err and "run the same command again" in err and "Traceback" not in err, err


def test_a_malformed_ray_address_is_named(tmp_path, capsys):
    pytest.importorskip("ray")
    model = tmp_path / "model.py"
    model.write_text("import json, sys\nfor line in sys.stdin:\n    print(json.dumps({'label': 'angry'}))\n")
    rc = main(["predict", f"command:{sys.executable} {model}", "-b", "casebench-audio-mini", "-o",
               str(tmp_path / "p.jsonl"), "--engine", "ray", "--ray-address", "banana", "--limit", "1",
               "--no-progress"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "--ray-address 'banana': cannot connect to a Ray cluster" in err, err


@pytest.mark.parametrize("toml, message", [
    ('[leaderboard]\nworkers = "two"\n', '[leaderboard] workers = \'two\'; expected a whole number'),
    ("[leaderboard.rate_limit]\nburts = 3\n", "unknown setting 'burts'; expected one of ['burst', 'per_minute']"),
    ('[[board]]\nbenchmark = "casebench-mini"\nquota_per_day = "ten"\n', "[[board]] #1 quota_per_day = 'ten'"),
    ("[leaderboard]\nsecure_cookies = 1\n", "secure_cookies = 1; expected true or false"),
])
def test_leaderboard_config_values_of_the_wrong_type(toml, message, tmp_path, capsys):
    """A string where a number belongs failed with a TypeError traceback in the server's start-up."""
    (tmp_path / "lb.toml").write_text(toml)
    rc = main(["leaderboard", "serve", "--config", str(tmp_path / "lb.toml")])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert message in err, err


@pytest.mark.parametrize("edit, message", [
    (("raters_per_clip = 3", "raters_per_clp = 3"), "[annotation] raters_per_clp is not a setting casebench reads "
                                                  "(did you mean 'raters_per_clip'?)"),
    (("[annotation]", "[anotation]"), "[anotation] is not a setting casebench reads (did you mean 'annotation'?)"),
])
def test_a_misspelt_workspace_setting_is_not_ignored(edit, message, tmp_path, capsys):
    """casebench.toml is edited by hand (the tutorial says where mixed_emotions and raters_per_clip live): a
    misspelt name used to be ignored and the default used instead."""
    from casebench.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", "ws")
    ws.config_path.write_text(ws.config_path.read_text().replace(*edit))
    rc = main(["annotate", "config", str(ws.root)])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert message in err, err


def test_publish_checks_the_repo_id_before_writing(env, capsys):
    """A malformed --repo-id was refused only after the whole dataset had been written."""
    out = Path(env["tmp"]) / "pub-repo-id"
    rc = main(["publish", env["ws"], str(out), "--repo-id", "not a repo", "--token", "hf_x", "--no-progress",
               "--no-audio-audit", "--bootstrap", "0", "--allow-leakage", "test", *CARD])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "--repo-id 'not a repo'; expected ORG/NAME" in err and not out.exists(), err


def test_perceive_on_too_few_clips_says_so(env, capsys, tmp_path):
    """An imported corpus with a handful of clips per speaker: sklearn's 'The number of samples must be more
    than the number of classes' came out as a traceback."""
    ws = tmp_path / "rav-ws"
    assert main(["import-corpus", "ravdess", env["ravdess"], "--out", str(ws), "--no-progress"]) == 0
    capsys.readouterr()
    rc = main(["perceive", str(ws), "--clips", "all", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "more clips than emotions in every leave-one-speaker-out fold" in err and "np.str_" not in err, err
    rc = main(["perceive", str(ws), "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--clips all with a labels table" in err and "which=" not in err, err


@pytest.mark.parametrize("args, message", [
    (["leaderboard", "worker", "--db", "banana"], "--db 'banana': Could not parse"),
    (["leaderboard", "serve", "--db", "postgresql+psycopg://u:secret@127.0.0.1:9/db", "--port", "{port}"],
     "cannot open the leaderboard database postgresql+psycopg://u:***@127.0.0.1:9/db: connection failed"),
])
def test_a_bad_or_unreachable_database_url_is_one_message(args, message, capsys):
    """sqlalchemy's ArgumentError and OperationalError (server down) came out as tracebacks."""
    import socket

    pytest.importorskip("psycopg")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    rc = main([a.format(port=port) for a in args])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert message in err and "secret" not in err, err


def test_evaluate_out_never_overwrites_the_predictions(tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    shutil.copy(EXAMPLES / "voice-model.jsonl", preds)
    before = preds.read_bytes()
    rc = main(["evaluate", str(preds), "-b", "casebench-mini", "--bootstrap", "0", "--out", str(preds)])
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "the results would overwrite it" in err and preds.read_bytes() == before, err


def test_template_never_overwrites_a_filled_in_file(tmp_path, capsys):
    """Running the documented `benchmarks show ... --template preds.jsonl` again replaced the filled-in file."""
    preds = tmp_path / "preds.jsonl"
    args = ["benchmarks", "show", "casebench-mini", "--template", str(preds), "--task", "categorical"]
    assert main(args) == 0 and main(args) == 0  # the same template again: nothing lost
    shutil.copy(EXAMPLES / "voice-model.jsonl", preds)
    filled = preds.read_bytes()
    rc = main(args)
    err = capsys.readouterr().err
    assert_one_clean_message(rc, err)
    assert "exists and is not this template" in err and preds.read_bytes() == filled, err


def test_a_csv_predictions_file_is_called_csv(tmp_path, capsys):
    preds = tmp_path / "preds.csv"
    preds.write_text("id,label\nmini-0000,angry\n")
    assert main(["evaluate", str(preds), "-b", "casebench-mini", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{preds}:1:" in err and f"{preds}:2:" in err and err.count("this looks like CSV or TSV") == 2, err


def test_a_tar_gz_of_the_predictions_is_called_a_tar_archive(tmp_path, capsys):
    """It was said to hold NUL bytes that 'suggest UTF-16'."""
    import tarfile

    archive = tmp_path / "preds.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(EXAMPLES / "voice-model.jsonl", arcname="preds.jsonl")
    assert main(["evaluate", str(archive), "-b", "casebench-mini", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert_one_clean_message(2, err)
    assert f"{archive}: the file is a tar archive" in err and "UTF-16" not in err, err
