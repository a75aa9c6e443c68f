"""The mixed-emotion section of docs/tutorial-curators.md, run as written: every shell command of its bash
blocks, in order, in a fresh folder, with the casebench of this checkout. Then what the section promises is
checked on the outputs: a 32-class, 20-rater, three-language corpus built through import-csv with multi-label
ratings, MASI agreement, distributions, splits, a published dataset, LDL baselines and a constant scored with
every soft-label metric."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## 8. Mixed-emotion corpora"


def section_commands(path: Path = ROOT / "docs" / "tutorial-curators.md", heading: str = SECTION) -> list[str]:
    text = path.read_text("utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    body = text[start:end if end >= 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", body, flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_section_has_the_promised_commands():
    commands = section_commands()
    assert any("--labels mixed --raters 20" in c for c in commands)
    assert any("--level masi" in c for c in commands) and any("import-csv" in c for c in commands)


@pytest.mark.slow
def test_mixed_section_runs_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    outputs = {}
    for command in section_commands():
        res = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
        outputs[shlex.split(command)[1] if command.startswith("casebench") else command] = res.stdout
    from casebench.annotation_schema import AnnotationSchema
    from casebench.workspace import Workspace

    ws = Workspace.open(tmp_path / "mixed-corpus")
    schema = AnnotationSchema.from_workspace(ws)
    assert (ws.taxonomy.name, len(ws.taxonomy), schema.label_mode, schema.raters_per_clip) == \
        ("plutchik32", 32, "mixed", 20)
    assert set(ws.read_df("clips")["language"]) == {"en", "zh", "yue"}
    ann = ws.read_df("annotations")
    emo = ann[ann["dimension"] == "acoustic_emotion"]
    assert emo["rater_id"].nunique() == 20 and emo["meta_weights"].notna().sum() > 100   # multi-label kept
    report = json.loads((ws.reports_dir / "agreement" / "agreement.json").read_text())
    masi = report["dimensions"]["acoustic_emotion"]
    assert masi["level"] == "masi" and 0 < masi["krippendorff_alpha"]["value"] < 1
    assert masi["krippendorff_alpha"]["ci_low"] <= masi["krippendorff_alpha"]["value"]
    assert any(v["value"] is not None for v in masi["per_class_alpha"].values())
    aggregated = json.loads((ws.reports_dir / "aggregate.json").read_text())
    assert aggregated["clips"]["congruent"] is None and aggregated["conflict_defined"] is False
    labels = ws.read_df("labels")
    assert (labels["acoustic_dist"].map(lambda d: sum(x > 0 for x in d)) > 1).mean() > 0.5   # distributions
    card = (tmp_path / "out" / "mixed-corpus" / "README.md").read_text("utf-8").split("\n---\n", 1)[1]  # body
    assert "mixed-emotion" in card and "MASI" in card and "conflict clips" not in card
    assert "conflict_test" not in card and "is_conflict" not in card
    results = json.loads((tmp_path / "fusion-results.json").read_text())
    ldl = ("chebyshev", "clark", "canberra", "kl", "cosine", "intersection", "js", "multilabel_macro_f1")
    assert list(results["baselines"]) == ["train prior"]   # the constant, from the train labels (--train)
    for metric in (*ldl, "ccc"):
        assert results["splits"]["all"][metric]["value"] is not None, metric
        assert results["baselines"]["train prior"]["all"][metric]["value"] is not None, metric
    compared = " ".join(outputs["compare"].split())
    assert " kl " in compared and "split 'conflict' has no scorable item" in compared
    for name in ("acoustic", "text", "fusion", "prior"):
        line = json.loads((tmp_path / f"{name}.jsonl").read_text().splitlines()[0])
        assert len(line["probs"]) == 32
    assert "valence" in json.loads((tmp_path / "acoustic.jsonl").read_text().splitlines()[0])
    assert "target: distribution" in " ".join(outputs["baseline"].split())
