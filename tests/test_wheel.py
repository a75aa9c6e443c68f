"""The wheel a user installs: it carries every runtime file, and a fresh virtual environment holding only the
wheel's casebench runs init -> synth -> annotate import-csv -> aggregate -> split -> publish -> evaluate.

The wheel is built from the tracked files of the checkout (``git ls-files``, copied to a temporary folder) with
the project's own setuptools (no build isolation, so nothing is downloaded). The fresh environment gets
casebench from the wheel only; its *dependencies* come from the project's ``.venv`` through a ``.pth`` line, so
CI does not download them again. A ``.pth`` line adds a folder to ``sys.path`` without processing the ``.pth``
files inside it, so the editable install of the checkout stays out of the fresh environment (checked below).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Runtime files the code reads through casebench.resources (and the leaderboard's own folders).
MUST_SHIP = [
    "casebench/data/cards/card.md.j2",
    "casebench/data/guidelines/acoustic_emotion.md",
    "casebench/data/guidelines/semantic_emotion.md",
    "casebench/data/guidelines/valence_arousal_dominance.md",
    "casebench/templates/report.html.j2",
    "casebench/templates/audit.html.j2",
    "casebench/templates/collect_qc.html.j2",
    "casebench/taxonomy/ekman7.yaml",
    "casebench/benchmarks/casebench-mini.yaml",
    "casebench/benchmarks/data/casebench-mini/gold.csv",
    "casebench/benchmarks/casebench-audio-mini.yaml",
    "casebench/data/synth/sentences_en.yaml",
    "casebench/data/lexicon/emotion_words_en.yaml",
]


def _tracked_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():  # a file deleted in the work tree but still tracked is skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the wheel test builds from the git checkout's tracked files; run it in a clone")
    src = _tracked_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    (whl,) = out.glob("casebench-*.whl")
    return whl


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "_casebench_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    return venv


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_wheel_carries_runtime_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in MUST_SHIP if p not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert any(n.startswith("casebench/leaderboard/templates/") for n in names)
    assert any(n.startswith("casebench/benchmarks/data/casebench-audio-mini/audio/") and n.endswith(".flac")
               for n in names)


@pytest.mark.slow
def test_fresh_install_runs_the_flow(fresh_env, tmp_path):
    py = fresh_env / "bin" / "python"
    cb = fresh_env / "bin" / "casebench"
    env = _env()
    where = subprocess.run([str(py), "-c", "import casebench; print(casebench.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(fresh_env)), f"casebench imported from {where}, not from the wheel"

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(cb), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"casebench {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr
        return proc

    run("init", "ws", "--taxonomy", "ekman7", "--licence", "CC-BY-4.0", "--language", "en")
    run("synth", "ws", "--per-cell", "1", "--congruent", "1",
        "--voices", "en-us+m1,en-us+f1,en-gb+m3,en-gb+f3,en-us+m3,en-us+f3,en-gb+m1,en-gb+f1", "--no-progress")
    clips = pq.read_table(tmp_path / "ws" / "tables" / "clips.parquet").to_pandas()
    with open(tmp_path / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "rater_id", "dimension", "value"])
        for row in clips.itertuples():
            for r in range(3):
                w.writerow([row.clip_id, f"r{r}", "acoustic_emotion", row.intended_acoustic])
                w.writerow([row.clip_id, f"r{r}", "semantic_emotion", row.intended_semantic])
    run("annotate", "import-csv", "ws", "ratings.csv")
    run("aggregate", "ws")
    run("split", "ws", "--ratios", "0.5,0.25,0.25", "--seed", "0")
    run("publish", "ws", "pub", "--hide-test-labels", "--gold", "gold.csv", "--consent", "synthetic voices",
        "--summary", "A wheel test corpus.", "--authors", "casebench tests", "--guidelines", "packaged guidelines",
        "--bootstrap", "20", "--no-progress")
    card = (tmp_path / "pub" / "README.md").read_text("utf-8")
    assert "## " in card and "A wheel test corpus." in card  # the packaged card template was used
    gold = (tmp_path / "gold.csv").read_text("utf-8").splitlines()
    ids = [line.split(",")[0] for line in gold[1:]]
    assert ids
    (tmp_path / "preds.jsonl").write_text("".join(f'{{"id": "{i}", "label": "angry"}}\n' for i in ids))
    proc = run("evaluate", "preds.jsonl", "--gold", "gold.csv", "--taxonomy", "ekman7", "--json")
    assert '"accuracy"' in proc.stdout
