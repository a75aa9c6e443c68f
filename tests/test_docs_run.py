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
* ``<!-- docs-test: leaderboard BOARDS -->`` right before a block: the test starts a real
  ``casebench leaderboard serve --benchmarks BOARDS`` on a free port of 127.0.0.1 (once per document), makes
  an account with an API token, and runs the block with ``http://127.0.0.1:8000`` pointing at that server
  and ``cbt_...`` replaced by the token.

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
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(needs|before:|leaderboard)\s*(.*?)\s*-->\s*$", re.S)
# Starts one real leaderboard per document (BOARDS filled in) and makes a user with an API token.
LEADERBOARD = """if [ -z "$DOCS_LB_PORT" ]; then
  DOCS_LB_PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  DOCS_TOKEN=$(echo docs-test-password | casebench leaderboard add-user docs --token --password-stdin \\
    --data-dir docs-leaderboard --json | python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  casebench leaderboard serve --benchmarks {boards} --port $DOCS_LB_PORT --data-dir docs-leaderboard \\
    --bootstrap 50 > docs-leaderboard.log 2>&1 &
  DOCS_LB_PID=$!
  trap 'kill $DOCS_LB_PID' EXIT
  for _ in $(seq 240); do
    python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \\
      "http://127.0.0.1:$DOCS_LB_PORT/" 2>/dev/null && break
    sleep 0.5
  done
fi"""


@dataclass
class Block:
    document: str
    number: int            # 1-based among the document's bash blocks
    line: int              # document line of the block's first command
    code: str
    needs: str | None      # why the block is not run
    before: str            # setup commands standing in for what the reader has
    leaderboard: str = ""  # boards of the local leaderboard the block talks to


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
        boards = d.group(2) if d and d.group(1) == "leaderboard" else ""
        blocks.append(Block(document, len(blocks) + 1, text[:m.start(2)].count("\n") + 1, m.group(2), needs,
                            before, boards))
    return blocks


def script(blocks: list[Block]) -> tuple[str, dict[int, tuple[Block, int]]]:
    """One bash script of the runnable blocks, and script line -> (block, document line)."""
    lines = ["set -eo pipefail", "trap 'echo \"@@docs-test-failed $LINENO\" >&2' ERR"]
    where: dict[int, tuple[Block, int]] = {}
    for b in blocks:
        if b.needs:
            continue
        setup = b.before.splitlines() + (LEADERBOARD.format(boards=b.leaderboard).splitlines() if b.leaderboard else [])
        for cmd in setup:
            lines.append(cmd)
            where[len(lines)] = (b, b.line - 1)
        for i, cmd in enumerate(b.code.splitlines()):
            if b.leaderboard:
                cmd = cmd.replace("http://127.0.0.1:8000", "http://127.0.0.1:$DOCS_LB_PORT")
                cmd = cmd.replace("cbt_...", "$DOCS_TOKEN")
            lines.append(cmd)
            where[len(lines)] = (b, b.line + i)
    return "\n".join(lines) + "\n", where


def run_document(document: str, tmp_path: Path) -> subprocess.CompletedProcess:
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
        return proc
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
    assert run_document(document, tmp_path).returncode == 0  # a failure names document, block, line and command


@pytest.mark.slow
def test_leaderboard_directive_submits_to_a_real_local_server(tmp_path, monkeypatch):
    md = tmp_path / "doc.md"
    md.write_text('<!-- docs-test: before: cp "$DOCS_MINI_EXAMPLES/voice-model.jsonl" preds.jsonl -->\n'
                  "```bash\ntrue\n```\n\n<!-- docs-test: leaderboard casebench-mini -->\n```bash\n"
                  "export CASEBENCH_TOKEN=cbt_...\n"
                  "casebench submit preds.jsonl --benchmark casebench-mini --server http://127.0.0.1:8000 "
                  "--model-name m --wait\n"
                  "```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    blocks = bash_blocks("doc.md")
    assert blocks[1].leaderboard == "casebench-mini" and "$DOCS_LB_PORT" in script(blocks)[0]
    (tmp_path / "run").mkdir()
    run_document("doc.md", tmp_path / "run")
    log = (tmp_path / "run" / "work" / "docs-leaderboard.log").read_text()
    assert "POST /api/submissions HTTP/1.1\" 20" in log and "GET /api/submissions/1 HTTP/1.1\" 200" in log
