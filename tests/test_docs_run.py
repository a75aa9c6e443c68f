"""Every ```bash block of README.md and docs/tutorial-*.md runs, in order, as written.

Each document runs as one bash script (``set -eo pipefail``) in its own temporary directory, with the
``casebench`` under test first on PATH, so a document and the CLI cannot drift. A failure names the
document, the block and the line of the document, with the command's output.

Conventions in the Markdown source (HTML comments, invisible when rendered, visible to anyone editing):

* ``<!-- docs-test: needs WHAT -->`` right before a block: the block is not run, because it needs something
  a test cannot have (a corpus on disk, a remote model server, a token for a public board); WHAT says why.
* ``<!-- docs-test: before: COMMANDS -->`` right before a block: COMMANDS run first, standing in for what
  the reader already has (their own predictions file, say). ``$DOCS_MINI_EXAMPLES`` is the folder of
  casebench-mini's example predictions.

Keep both rare: every ``needs`` is a command the suite does not check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from casebench.benchmarks import get_benchmark

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("tutorial-*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(needs|before:)\s*(.*?)\s*-->\s*$", re.S)


@dataclass
class Block:
    document: str
    number: int            # 1-based among the document's bash blocks
    line: int              # document line of the block's first command
    code: str
    needs: str | None      # why the block is not run
    before: str            # setup commands standing in for what the reader has


def bash_blocks(document: str) -> list[Block]:
    """The ```bash blocks of one document with their directives, in order."""
    text = (ROOT / document).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m.group(1) not in ("bash", "sh", "shell"):
            continue
        preceding = text[:m.start()].rstrip()
        d = DIRECTIVE.search(preceding[preceding.rfind("\n\n") + 1:] if "\n\n" in preceding else preceding)
        needs = d.group(2) if d and d.group(1) == "needs" else None
        before = d.group(2) if d and d.group(1) == "before:" else ""
        blocks.append(Block(document, len(blocks) + 1, text[:m.start(2)].count("\n") + 1, m.group(2), needs,
                            before))
    return blocks


def script(blocks: list[Block]) -> tuple[str, dict[int, tuple[Block, int]]]:
    """One bash script of the runnable blocks, and script line -> (block, document line)."""
    lines = ["set -eo pipefail", "trap 'echo \"@@docs-test-failed $LINENO\" >&2' ERR"]
    where: dict[int, tuple[Block, int]] = {}
    for b in blocks:
        if b.needs:
            continue
        for cmd in b.before.splitlines():
            lines.append(cmd)
            where[len(lines)] = (b, b.line - 1)
        for i, cmd in enumerate(b.code.splitlines()):
            lines.append(cmd)
            where[len(lines)] = (b, b.line + i)
    return "\n".join(lines) + "\n", where


def run_document(document: str, tmp_path: Path) -> None:
    blocks = bash_blocks(document)
    assert blocks, f"{document} has no bash blocks"
    text, where = script(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEBENCH_", "HF_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", HOME=str(tmp_path / "home"),
               DOCS_MINI_EXAMPLES=str(get_benchmark("casebench-mini").gold_path.parent / "examples"),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", NO_COLOR="1", COLUMNS="120")
    (tmp_path / "home").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "doc.sh").write_text(text)
    proc = subprocess.run(["bash", str(tmp_path / "doc.sh")], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1500)
    if proc.returncode == 0:
        return
    failed = re.findall(r"@@docs-test-failed (\d+)", proc.stderr)
    if failed and int(failed[-1]) in where:
        block, line = where[int(failed[-1])]
        place = f"{document}, bash block {block.number}, line {line}: {text.splitlines()[int(failed[-1]) - 1]}"
    else:
        place = f"{document} (exit {proc.returncode}, line not known)"
    pytest.fail(f"{place}\n--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}",
                pytrace=False)


def test_directives_parse_and_every_document_has_blocks():
    for document in DOCUMENTS:
        blocks = bash_blocks(document)
        assert blocks, document
        for b in blocks:
            assert b.needs is None or len(b.needs) > 10, f"{document} block {b.number}: say what it needs"


def test_a_failing_line_is_named(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("x\n\n```bash\ntrue\ncasebench evalute x\n```\n")
    blocks = [Block("d.md", 1, 4, "true\ncasebench evalute x\n", None, "")]
    text, where = script(blocks)
    proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    n = int(re.findall(r"@@docs-test-failed (\d+)", proc.stderr)[-1])
    assert where[n][1] == 5 and "evaluate" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_runs(document, tmp_path):
    run_document(document, tmp_path)
