"""Every ```bash block of README.md, leaderboard/README.md and docs/*.md runs, in order, as written.

Each document runs as one bash script (``set -eo pipefail``) in its own temporary directory, with the
``casebench`` under test first on PATH and ``$HOME`` a fresh folder, so a document and the CLI cannot drift. A
failure names the document, the block and the line of the document, with the command's output. A fence holding
``casebench`` commands must be a ```bash block (or a ``<!-- recipe: NAME -->`` of docs/reference-synthesis.md,
which tests/test_synth_references.py runs against stand-ins of the TTS programs).

Conventions in the Markdown source (HTML comments, invisible when rendered, visible to anyone editing):

* ``<!-- docs-test: needs WHAT -->`` right before a block: the block is not run, because it needs something
  a test cannot have (root on a fresh machine, a Hugging Face Hub account, a paid remote API); WHAT says why.
* ``<!-- docs-test: before: COMMANDS -->`` right before a block: COMMANDS (one or more lines) run first,
  standing in for what the reader already has (their own predictions file, a corpus on disk, raters'
  ratings). ``$DOCS_MINI_EXAMPLES`` is the folder of casebench-mini's example predictions, ``$DOCS_REPO`` the
  checkout (for files a reader has in theirs, such as leaderboard/example.toml).
* ``<!-- docs-test: leaderboard BOARDS -->`` right before a block: the test starts a real
  ``casebench leaderboard serve --benchmarks BOARDS`` (data in ``docs-leaderboard/``) before it, unless the
  document's server already has those boards.
* ``<!-- docs-test: serve -->`` right before a block: its ``casebench leaderboard serve ...`` line (one line)
  runs in the background, as a reader runs it in a second terminal, on a free port; the test waits until it
  answers, stops the document's earlier server first and every server at the end. A serve line anywhere else
  is an error (it would never return).
* ``<!-- docs-test: labelstudio -->`` right before a block: the block may start the real Label Studio of
  ``.venv-labelstudio`` with ``casebench labelstudio start``; the test seeds its data folder with an already
  migrated database (seconds instead of minutes) and runs ``casebench labelstudio stop`` at the end.
* ``<!-- docs-test: chat-server -->`` right before a block: its ``http://localhost:8000/v1`` is a local
  OpenAI-compatible chat-completions server the test runs (:class:`ChatStandIn`: it names the labels in turn
  and answers every fifth request with no label, an abstention), standing in for a model server such as vLLM.

Once a document has a leaderboard running (``leaderboard`` or ``serve``), ``http://127.0.0.1:8000`` and the
example public board ``https://board.example.org`` in its later blocks point at that server, and ``cbt_...``
is replaced by the API token of a user the test makes. Several directives may stand before one block, one
comment each, on the lines right above it. Keep ``needs`` rare: every ``needs`` is a command the suite does not
check.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from casebench.benchmarks import get_benchmark
from casebench.testing import JsonApiHandler, local_http_server

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "leaderboard/README.md",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
                     if re.search(r"^```bash$", p.read_text(encoding="utf-8"), re.M))]
# Documents that show no command a reader could run as it stands (only diagrams, formats and placeholders
# such as `--db URL`); test_command_fences_are_bash_blocks still checks that none of their fences is a command.
NO_COMMANDS = ["docs/design.md", "docs/leaderboard-security.md", "docs/performance.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(needs\b|before:|leaderboard\b|serve\b|labelstudio\b|chat-server\b)"
                       r"\s*(.*?)\s*-->", re.S)
RECIPE = re.compile(r"<!--\s*recipe:\s*[\w-]+\s*-->\s*$")
SERVE = re.compile(r"^\s*casebench\s+leaderboard\s+serve\b")
PUBLIC_BOARD = ("http://127.0.0.1:8000", "https://board.example.org")
CHAT_API = "http://localhost:8000/v1"
# Helpers every document script starts with. docs_serve runs a leaderboard server in the background on a free
# port (stopping the document's earlier one), waits until it answers and makes a user with an API token
# in the server's data folder (the arguments after the server command: --data-dir/--config, if any).
PRELUDE = r"""set -eo pipefail
trap 'echo "@@docs-test-failed $LINENO" >&2' ERR
DOCS_LB_PID= DOCS_LB_PORT= DOCS_LB_STORE= DOCS_LB_BOARDS= DOCS_TOKEN= DOCS_LS=
docs_cleanup() {
  set +e
  if [ -n "$DOCS_LB_PID" ]; then kill "$DOCS_LB_PID" 2>/dev/null; wait "$DOCS_LB_PID" 2>/dev/null; fi
  if [ -n "$DOCS_LS" ]; then casebench labelstudio stop > /dev/null 2>&1; fi
}
trap docs_cleanup EXIT
docs_free_port() {
  python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
docs_serve() {  # docs_serve "STORE OPTIONS" casebench leaderboard serve ARGS...
  local store=$1; shift
  DOCS_LB_BOARDS=
  if [ -n "$DOCS_LB_PID" ]; then kill "$DOCS_LB_PID"; wait "$DOCS_LB_PID" 2>/dev/null || true; fi
  DOCS_LB_PORT=$(docs_free_port)
  "$@" --port "$DOCS_LB_PORT" >> docs-leaderboard.log 2>&1 &
  DOCS_LB_PID=$!
  for _ in $(seq 600); do
    if ! kill -0 "$DOCS_LB_PID" 2>/dev/null; then
      echo "the leaderboard server stopped; docs-leaderboard.log:" >&2; tail -30 docs-leaderboard.log >&2; return 1
    fi
    python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$DOCS_LB_PORT/" 2>/dev/null && break
    sleep 0.5
  done
  if [ -z "$DOCS_TOKEN" ] || [ "$store" != "$DOCS_LB_STORE" ]; then  # a user per database (named by port)
    # shellcheck disable=SC2086
    DOCS_TOKEN=$(echo docs-test-password | casebench leaderboard add-user "docs-$DOCS_LB_PORT" --token \
      --password-stdin $store --json | python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    DOCS_LB_STORE=$store
  fi
}
docs_labelstudio() {  # a migrated database for `casebench labelstudio start` (the first start then takes seconds)
  local d=${CASEBENCH_LABEL_STUDIO_DIR:-$HOME/.local/share/casebench/label-studio}
  mkdir -p "$d/data"
  [ -e "$d/data/label_studio.sqlite3" ] || cp "$DOCS_LS_TEMPLATE" "$d/data/label_studio.sqlite3"
  DOCS_LS=1
}"""


@dataclass
class Block:
    document: str
    number: int            # 1-based among the document's bash and python blocks
    line: int              # document line of the block's first command
    code: str
    needs: str | None      # why the block is not run
    before: str            # setup commands standing in for what the reader has
    leaderboard: str = ""  # boards of the local leaderboard the block talks to
    serve: bool = False    # its `casebench leaderboard serve` line runs in the background
    labelstudio: bool = False  # it may start Label Studio
    chat_server: bool = False  # its localhost:8000 chat API is a local stand-in
    lang: str = "bash"     # ``python`` blocks run as ``python - <<'EOF'`` in the same script


def directives(text: str, fence_start: int) -> list[tuple[str, str]]:
    """The docs-test comments on the lines right above the fence at ``fence_start``, as (kind, argument)."""
    found = []
    rest = text[:fence_start].rstrip()
    while True:
        m = next(reversed(list(DIRECTIVE.finditer(rest))), None)
        if m is None or rest[m.end():].strip() or (rest[:m.start()] and not rest[:m.start()].endswith("\n")):
            return found[::-1]
        found.append((m.group(1), m.group(2)))
        rest = rest[:m.start()].rstrip()


def bash_blocks(document: str) -> list[Block]:
    """The ```bash (and ```python) blocks of one document with their directives, in order."""
    text = (ROOT / document).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m.group(1) not in ("bash", "sh", "shell", "python"):
            continue
        found = dict(directives(text, m.start()))
        blocks.append(Block(document, len(blocks) + 1, text[:m.start(2)].count("\n") + 1, m.group(2),
                            found.get("needs"), found.get("before:", ""), found.get("leaderboard", ""),
                            "serve" in found, "labelstudio" in found, "chat-server" in found,
                            "python" if m.group(1) == "python" else "bash"))
    return blocks


def serve_line(cmd: str) -> str:
    """``casebench leaderboard serve ARGS  # note`` -> docs_serve with the server's store options."""
    args = shlex.split(cmd, comments=True)
    store = [f"{a} {shlex.quote(b)}" for a, b in zip(args, args[1:], strict=False)
             if a in ("--data-dir", "--config", "-c")]
    return f"docs_serve {shlex.quote(' '.join(store))} {cmd.strip()}"


def script(blocks: list[Block]) -> tuple[str, dict[int, tuple[Block, int]]]:
    """One bash script of the runnable blocks, and script line -> (block, document line)."""
    lines = PRELUDE.splitlines()
    where: dict[int, tuple[Block, int]] = {}
    server = False  # a leaderboard runs: later blocks' board address and token point at it
    for b in blocks:
        if b.needs:
            continue
        setup = b.before.splitlines()
        if b.labelstudio:
            setup.append("docs_labelstudio")
        if b.leaderboard:
            setup += [f"if [ \"$DOCS_LB_BOARDS\" != '{b.leaderboard}' ]; then",
                      f"  docs_serve '--data-dir docs-leaderboard' casebench leaderboard serve --benchmarks "
                      f"{b.leaderboard} --data-dir docs-leaderboard --bootstrap 50",
                      f"  DOCS_LB_BOARDS='{b.leaderboard}'",
                      "fi"]
        for cmd in setup:
            lines.append(cmd)
            where[len(lines)] = (b, b.line - 1)
        server = server or bool(b.leaderboard) or b.serve
        if b.lang == "python":  # as the reader runs it: a Python session in the same folder
            assert "DOCS_PY" not in b.code, f"{b.document} line {b.line}: DOCS_PY ends the here-document"
            lines.append("python - <<'DOCS_PY'")
            where[len(lines)] = (b, b.line)
            lines += [*b.code.splitlines(), "DOCS_PY"]
            continue
        for i, cmd in enumerate(b.code.splitlines()):
            if SERVE.match(cmd):
                assert b.serve, (f"{b.document} line {b.line + i}: a `leaderboard serve` line never returns; "
                                 "put <!-- docs-test: serve --> before its block")
                assert not cmd.rstrip().endswith("\\"), f"{b.document} line {b.line + i}: one-line serve only"
                cmd = serve_line(cmd)
            if b.chat_server:
                cmd = cmd.replace(CHAT_API, "__DOCS_CHAT_URL__")  # the address itself: it may be in '...'
            if server:
                for address in PUBLIC_BOARD:
                    cmd = cmd.replace(address, "http://127.0.0.1:$DOCS_LB_PORT")
                cmd = cmd.replace("cbt_...", "$DOCS_TOKEN")
            lines.append(cmd)
            where[len(lines)] = (b, b.line + i)
    return "\n".join(lines) + "\n", where


class ChatStandIn(JsonApiHandler):
    """POST /v1/chat/completions as the OpenAI API answers it: the iemocap4 labels in turn, in a sentence, and
    every fifth answer without a label (what casebench counts as an abstention)."""

    answers = itertools.count()
    LABELS = ("angry", "happy", "neutral", "sad")

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.read_json()
        n = next(self.answers)
        text = "I cannot tell." if n % 5 == 4 else f"The speaker sounds {self.LABELS[n % 4]}."
        status, payload = (200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0,
                                 "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}, "logprobs": None}]})
        if self.path != "/v1/chat/completions":
            status, payload = 404, {"error": {"message": f"no route {self.path}"}}
        self.send(status, payload)


def run_document(document: str, tmp_path: Path, ls_template: Path | None = None) -> subprocess.CompletedProcess:
    blocks = bash_blocks(document)
    assert blocks, f"{document} has no bash blocks"
    with contextlib.ExitStack() as stack:
        chat_url = (stack.enter_context(local_http_server(ChatStandIn)) + "/v1"
                    if any(b.chat_server and not b.needs for b in blocks) else "")
        return _run_script(document, blocks, tmp_path, ls_template, chat_url)


def _run_script(document: str, blocks: list[Block], tmp_path: Path, ls_template: Path | None,
                chat_url: str) -> subprocess.CompletedProcess:
    text, where = script(blocks)
    text = text.replace("__DOCS_CHAT_URL__", chat_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEBENCH_", "HF_", "LABEL_STUDIO_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", HOME=str(tmp_path / "home"),
               DOCS_MINI_EXAMPLES=str(get_benchmark("casebench-mini").gold_path.parent / "examples"),
               DOCS_REPO=str(ROOT), DOCS_LS_TEMPLATE=str(ls_template or ""),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", NO_COLOR="1", COLUMNS="120")
    env.pop("LOCAL_FILES_DOCUMENT_ROOT", None)
    (tmp_path / "home").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "doc.sh").write_text(text)
    proc = subprocess.Popen(["bash", str(tmp_path / "doc.sh")], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=850)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and the servers it started in the background
        out, err = proc.communicate()
        err += "\n@@docs-test: timed out after 850 s"
    finally:
        if any(b.labelstudio for b in blocks):  # `labelstudio start` detaches; the script's trap may not have run
            subprocess.run(["casebench", "labelstudio", "stop"], env=env, capture_output=True, timeout=120)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
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
    assert set(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")) <= set(DOCUMENTS) | set(NO_COMMANDS)


def test_several_directives_stand_before_one_block():
    text = ("Some prose.\n\n<!-- docs-test: labelstudio -->\n<!-- docs-test: before: echo a\n  echo b -->\n"
            "```bash\ntrue\n```\n\n<!-- docs-test: serve -->\nprose in between\n```bash\ntrue\n```\n")
    first, second = FENCE.finditer(text)
    assert directives(text, first.start()) == [("labelstudio", ""), ("before:", "echo a\n  echo b")]
    assert directives(text, second.start()) == []


def test_command_fences_are_bash_blocks():
    """A fence a reader would copy commands from is a ```bash block, so the test above runs it."""
    documents = ["README.md", "leaderboard/README.md", "annotation/README.md", "data_cards/README.md",
                 *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
    wrong = []
    for document in documents:
        if not (ROOT / document).is_file():
            continue
        text = (ROOT / document).read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            commands = [line for line in m.group(2).splitlines() if line.strip() and not line.startswith("#")]
            if (m.group(1) not in ("bash", "sh", "shell") and commands
                    and re.match(r"\$?\s*(casebench|python|pip|bash)\s", commands[0])
                    and not RECIPE.search(text[:m.start()].rstrip())):
                wrong.append(f"{document} line {text[:m.start()].count(chr(10)) + 1}: {commands[0][:60]}")
    assert not wrong, "command fences that are not ```bash blocks:\n" + "\n".join(wrong)


def test_inline_commands_name_real_commands_and_options():
    """Commands quoted in the prose (`casebench ...` in backticks) cannot run as they stand (they hold
    placeholders such as NAME or URL), but their command and option names must exist: a renamed option is
    found here, not by a reader."""
    from typer.main import get_command

    from casebench.cli import app

    root = get_command(app)
    wrong, seen = [], 0
    documents = ["README.md", "leaderboard/README.md", *(str(p.relative_to(ROOT)) for p in ROOT.glob("docs/*.md"))]
    for document in documents:
        prose = FENCE.sub("", (ROOT / document).read_text(encoding="utf-8"))
        for m in re.finditer(r"`casebench ([^`]+)`", prose):
            try:
                args = shlex.split(m.group(1))
            except ValueError:
                continue
            node = root
            while args and args[0] in getattr(node, "commands", {}):
                node = node.commands[args.pop(0)]
            seen += 1
            if getattr(node, "commands", None) and args and not args[0].startswith("-"):
                wrong.append(f"{document}: `casebench {m.group(1)}`: no command {args[0]!r}")
                continue
            names = {o for p in node.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
            wrong += [f"{document}: `casebench {m.group(1)}`: no option {a.split('=')[0]}" for a in args
                      if a.startswith("--") and a.split("=")[0] not in names | {"--help"}]
    assert seen > 50 and not wrong, "\n".join(wrong)


def test_serve_lines_run_in_the_background_and_need_the_directive():
    served = Block("d.md", 1, 3, "casebench leaderboard serve --benchmarks casebench-mini --data-dir lb   # note\n"
                   "curl http://127.0.0.1:8000/ -H 'Authorization: Bearer cbt_...'\n", None, "", serve=True)
    text, _ = script([served])
    assert "docs_serve '--data-dir lb' casebench leaderboard serve --benchmarks casebench-mini --data-dir lb" in text
    assert "curl http://127.0.0.1:$DOCS_LB_PORT/ -H 'Authorization: Bearer $DOCS_TOKEN'" in text
    with pytest.raises(AssertionError, match="docs-test: serve"):
        script([Block("d.md", 1, 3, "casebench leaderboard serve\n", None, "")])


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
def test_document_runs(document, tmp_path, request):
    starts_label_studio = any(b.labelstudio and not b.needs for b in bash_blocks(document))
    template = request.getfixturevalue("label_studio_template_db") if starts_label_studio else None
    assert run_document(document, tmp_path, template).returncode == 0  # a failure names document, block, line


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
