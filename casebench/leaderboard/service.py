"""What the web app and the CLI both call: users and tokens, accepting an upload, quotas, visibility, reveal.

Accepting a submission (:meth:`Leaderboard.accept`) is the only way into the queue:

1. the board exists and is open; a repeated ``Idempotency-Key`` returns the submission it made before;
2. the file name is a plain name (no folders, no control characters) and a gzip file does not expand past
   the configured limit;
3. the file is parsed by :func:`casebench.predictions.parse_predictions`, the very parser of
   ``casebench evaluate``, and checked for the benchmark's tasks; its problems come back line-numbered but
   *sanitised* (:func:`sanitize_problems`): no did-you-mean over gold ids, no server paths;
4. the metadata are checked (model name, revision, URL, parameter count, training corpora, description);
5. in one write transaction: the user's quota on the board is checked (per UTC day and in all; refused
   uploads, invalid files and failed scorings cost nothing) and the row is inserted as ``queued``.

Hidden labels: the gold of every board is loaded here and in the scoring worker only. Nothing derived
from it per item ever leaves: results of a test phase are redacted (:func:`redact`) and shown only as
:func:`can_see_scores` allows.

Staleness: ``leaderboard serve`` refuses a stale gold/spec at start; a board whose gold goes stale while it
is served (its workspace re-aggregated or re-split) keeps serving and scoring, and says so:
:meth:`Leaderboard.stale` (checked at most every :data:`STALE_CHECK_S` seconds) feeds a notice on the board
and submission pages and ``stale`` in ``/api/boards`` (server paths replaced by ``<server>``).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import os
import re
import shutil
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from casebench.errors import CasebenchError, InputError, Problem
from casebench.leaderboard import phases
from casebench.leaderboard.config import BoardConfig, LeaderboardConfig
from casebench.leaderboard.db import BoardDef, Database, Phase, Submission, Token, Upload, User, requeue, utcnow
from casebench.leaderboard.security import hash_password, new_token, token_hash, verify_password

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
MAX_PROBLEMS_SHOWN = 100
STALE_CHECK_S = 10.0
"""How long a board's staleness check is reused (it hashes the workspace tables the gold was built from)."""
# Results keys a test phase never shows (aggregates that, compared across submissions, hint at item labels).
REDACTED_KEYS = ("per_class", "confusion", "conflict_breakdown", "per_dimension")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
# control characters (C0, DEL, C1) refused in every text field; a description may hold newlines and tabs
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_ID_CHARS = 256  # an item id longer than this is refused before the parser sees the file
MAX_KEY_CHARS = 64  # a field name or label longer than this likewise (no did-you-mean over it)


class ServiceError(CasebenchError):
    """A refused request: HTTP ``status``, a machine-readable ``code``, a message and optional problems."""

    def __init__(self, status: int, code: str, message: str, problems: list[dict] | None = None,
                 n_problems: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.n_problems = n_problems if n_problems is not None else len(self.problems)
        self.headers = headers or {}

    def to_dict(self) -> dict:
        out = {"error": self.code, "detail": self.message}
        if self.problems:
            out["n_problems"] = self.n_problems
            out["problems"] = self.problems
        return out


@dataclass
class Metadata:
    """What a submitter says about the model (stored with the submission and in the results' ``model``)."""

    model_name: str
    model_revision: str = ""
    model_url: str = ""
    parameters: int | None = None
    trained_on: list[str] = field(default_factory=list)
    description: str = ""

    @classmethod
    def parse(cls, form: dict) -> Metadata:
        """From form/API fields (all strings); ServiceError 422 lists every bad field."""
        problems = []

        def text(name: str, limit: int, multiline: bool = False) -> str:
            v = str(form.get(name) or "").strip()
            if len(v) > limit:
                problems.append(Problem(f"{len(v)} characters", expected=f"at most {limit}", field=name))
            bad = (CONTROL if multiline else CONTROL_ONE_LINE).search(v)
            if bad:
                problems.append(Problem(f"control character U+{ord(bad.group()):04X} at position {bad.start() + 1}",
                                        expected="printable text" + (" (newlines and tabs are fine)" if multiline
                                                                     else ""), field=name))
            return v[:limit]

        name = text("model_name", 200)
        if not name:
            problems.append(Problem("empty", expected="the model's name", field="model_name"))
        revision, url = text("model_revision", 200), text("model_url", 500)
        desc = text("description", 5000, multiline=True)
        if url and not re.match(r"^https?://[^\s]+$", url):
            problems.append(Problem(f"{url[:80]!r}", expected="an http(s):// URL", field="model_url"))
        params = None
        raw = str(form.get("parameters") or "").strip().replace("_", "").replace(",", "")
        if raw:
            try:
                params = int(float(raw)) if re.match(r"^\d+(\.\d+)?([eE]\d+)?$", raw) else int(raw)
            except ValueError:
                params = None
            if params is None or params < 0:
                problems.append(Problem(f"{raw[:40]!r}", expected="a whole number of parameters (e.g. 94000000)",
                                        field="parameters"))
                params = None
        trained = form.get("trained_on") or ""
        items = trained if isinstance(trained, list) else re.split(r"[,\n]", str(trained))
        trained_on = [str(c).strip()[:100] for c in items if str(c).strip()][:50]
        for c in trained_on:
            if CONTROL_ONE_LINE.search(c):
                problems.append(Problem(f"{c[:40]!r} holds a control character", expected="printable text",
                                        field="trained_on"))
        if problems:
            raise ServiceError(422, "invalid_metadata", "the submission's metadata are invalid",
                               problems=[p.to_dict() for p in problems])
        return cls(name, revision, url, params, trained_on, desc)

    def model_info(self) -> dict:
        from casebench.results import model_info

        return model_info(self.model_name, self.model_revision or None, self.model_url or None, self.parameters,
                          self.trained_on, self.description or None)


def check_file_name(name: str | None) -> str:
    """The upload's display name: a plain file name, else ServiceError 400 (path-like names are refused)."""
    name = "predictions.jsonl" if name is None or name == "" else str(name)
    if (_BAD_NAME.search(name) or name in (".", "..") or name.startswith("..") or len(name) > 255
            or ":" in name):
        raise ServiceError(400, "bad_file_name",
                           f"file name {name[:80]!r} is not a plain file name: give the file's own name, "
                           "without folders, '..', ':' or control characters (e.g. predictions.jsonl)")
    return name


def sanitize_problems(err: InputError, display_name: str, scrub: list[str]) -> tuple[list[dict], int]:
    """Problems of the parser, fit to show to a submitter of a hidden-label board.

    The parser's own messages are kept (same lines, fields and wording as ``casebench evaluate``) except:
    unknown ids get no did-you-mean (it would search the gold ids) and become "id X is not in the benchmark";
    the "none of the ids matches" summary names no gold id; the file is the upload's name, and any server
    path in ``scrub`` is replaced. Returns (problems as dicts, total count).
    """
    m = re.match(r"^(\d+) problem", err.summary or "")
    total = int(m.group(1)) if m else len(err.problems)
    out = []
    for p in err.problems[:MAX_PROBLEMS_SHOWN]:
        found, expected, hint = p.found, p.expected, p.hint
        if p.field == "id" and found == "unknown id":
            found, expected, hint = f"id {p.id!r} is not in the benchmark", "the id of a benchmark item", None
        elif found.startswith("none of the ") and "matches a gold id" in found:
            n = re.match(r"none of the (\d+)", found)
            found = f"none of the {n.group(1) if n else ''} ids is an item of this benchmark"
            expected, hint = "ids of the benchmark's items", "wrong benchmark or id scheme?"
        elif p.field == "id" and hint and "did you mean" in hint:
            hint = None
        elif hint and "--allow-missing" in hint:
            hint = "the leaderboard scores complete files only: give one line per item"
        d = Problem(found, expected=expected, file=display_name if p.file is not None else None, line=p.line,
                    id=p.id, field=p.field, hint=hint).to_dict()
        d["message"] = str(Problem(found, expected=expected, file=d.get("file"), line=p.line, id=p.id,
                                   field=p.field, hint=hint))
        for k, v in list(d.items()):
            if isinstance(v, str):
                for s in scrub:
                    if s:
                        v = v.replace(s, "<server>")
                d[k] = v
        out.append(d)
    return out, total


def scrub(text: str, paths) -> str:
    """``text`` with every one of ``paths`` (server paths, longest first) replaced by ``<server>``."""
    for path in paths:
        if path:
            text = text.replace(path, "<server>")
    return text


def redact(results: dict, board: BoardConfig, upload_name: str, paths=()) -> dict:
    """The results object as a board shows it: the upload's own file name, server ``paths`` scrubbed from
    warnings and staleness problems; for a test phase, only the headline per-split metrics (no per-class,
    confusion, conflict breakdown or per-dimension detail) and group scores without per-class recall."""
    out = dict(results)
    out["predictions"] = {**results.get("predictions", {}), "file": upload_name}
    if out.get("warnings"):
        out["warnings"] = [scrub(w, paths) for w in out["warnings"]]
    if out.get("staleness"):
        out["staleness"] = {**out["staleness"], "problems": [scrub(p, paths) for p in out["staleness"]["problems"]]}
    if board.hidden_phase:
        for k in REDACTED_KEYS:
            out.pop(k, None)
        out["predictions"].pop("missing_ids", None)
        redacted = list(REDACTED_KEYS)
        if out.get("groups"):  # per-class recall per group (and its gaps) count classes within groups: kept back
            out["groups"] = {col: {**b, "recall_gaps": {},
                                   "groups": {g: {**v, "recall": {}} for g, v in b["groups"].items()}}
                             for col, b in out["groups"].items()}
            redacted += ["groups.*.groups.*.recall", "groups.*.recall_gaps"]
        out["redacted"] = redacted
    return out


class Leaderboard:
    """The service: configuration, database, gold of every board (server-side), and the operations."""

    def __init__(self, config: LeaderboardConfig, db: Database | None = None, register: bool = True):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_dir, 0o700)
        (config.data_dir / "tmp").mkdir(exist_ok=True)
        self.db = db or Database(config.database_url)
        self.boards = {b.key: b for b in config.boards}
        self._gold: dict[str, object] = {}
        self._gold_lock = threading.Lock()
        self._items: dict[str, phases.BoardItems] = {}
        self._stale: dict[str, tuple[float, tuple, list[str]]] = {}  # spec -> (looked at, files, problems)
        self.on_accept = None  # called with the submission id after a commit (wakes the worker)
        if register:
            self.register_boards()

    # -- boards and gold ---------------------------------------------------------------------------------

    def register_boards(self) -> None:
        """Check that public and hidden boards score disjoint items (ConfigError otherwise) and write each
        board's definition to the database for the scoring workers (a hidden board's partition key is made
        once and kept)."""
        import secrets

        with self.db.write() as s:
            keys = {d.key: d.partition_key for d in s.query(BoardDef).all()}
            for b in self.boards.values():
                if b.key not in keys:
                    keys[b.key] = secrets.token_urlsafe(24)
                    s.add(BoardDef(key=b.key, definition="{}", partition_key=keys[b.key]))
        for b in self.boards.values():
            self._items[b.key] = phases.BoardItems(
                benchmark=b.benchmark, phase=b.phase, items=b.items,
                public_fraction=b.public_fraction if b.hidden_phase else 0.0, key=keys[b.key])
        phases.check_disjoint([(b.key, b.hidden_phase, self.gold(b)) for b in self.boards.values()])
        self._migrate_upload_files()
        with self.db.write() as s:
            for b in self.boards.values():
                d = s.get(BoardDef, b.key)
                d.definition = orjson.dumps(self.board_definition(b)).decode()
                d.updated_at = utcnow()

    def _migrate_upload_files(self) -> None:
        """Submissions accepted by an older casebench kept their file in ``data_dir/uploads``: move each into
        the database (where every worker reads uploads) and delete the file."""
        folder = self.config.data_dir / "uploads"
        if not folder.is_dir():
            return
        with self.db.read() as s:
            old = list(s.execute(select(Submission.id, Submission.upload_path).where(Submission.upload_id.is_(None))))
        for sid, name in old:
            path = folder / Path(str(name)).name
            if not path.is_file():
                continue
            with self.db.write() as s:
                blob = Upload(data=gzip.compress(path.read_bytes(), compresslevel=6))
                s.add(blob)
                s.flush()
                s.execute(update(Submission).where(Submission.id == sid).values(upload_id=blob.id, upload_path="db"))
            path.unlink()

    def board_definition(self, board: BoardConfig) -> dict:
        """What a scoring worker needs to score the board's submissions."""
        it = self._items[board.key]
        return {"benchmark": it.benchmark, "phase": it.phase, "items": it.items,
                "public_fraction": it.public_fraction, "hidden": board.hidden_phase, "ladder": board.ladder,
                "ladder_step": board.ladder_step, "feedback": board.visibility == "submitter",
                "n_boot": self.config.n_boot, "seed": self.config.seed, "fingerprint": self.gold(board).fingerprint}

    def board_items(self, board: BoardConfig) -> phases.BoardItems:
        return self._items[board.key]

    def board(self, key: str) -> BoardConfig:
        b = self.boards.get(key)
        if b is None:
            raise ServiceError(404, "unknown_board", f"no board {key!r}; the boards are {sorted(self.boards)}")
        return b

    def find_board(self, benchmark: str, phase: str | None) -> BoardConfig:
        """The board of a benchmark (and phase, or its only open phase)."""
        if phase:
            return self.board(f"{benchmark}/{phase}")
        cands = [b for b in self.boards.values() if b.name == benchmark]
        if not cands:
            raise ServiceError(404, "unknown_board", f"no board for benchmark {benchmark!r}; the boards are "
                                                     f"{sorted(self.boards)}")
        open_ = [b for b in cands if b.open]
        if len(open_) == 1:
            return open_[0]
        raise ServiceError(400, "phase_needed", f"benchmark {benchmark!r} has phases "
                                                f"{[b.phase for b in cands]}: say which (--phase)")

    def gold(self, board: BoardConfig):
        """The gold rows the board scores (its phase's items)."""
        with self._gold_lock:
            g = self._gold.get(board.key)
            if g is None:
                g = self._gold[board.key] = self._items[board.key].benchmark_of("phase").load_gold()
            return g

    def _lineage(self, board: BoardConfig) -> list[tuple[str, dict]]:
        from casebench.workspace import benchmark_lineage

        spec = board.spec()
        try:
            return benchmark_lineage(spec.spec_path, spec.gold_path, (spec.dataset or {}).get("path"))
        except (CasebenchError, OSError, ValueError):
            return []

    def server_paths(self, board: BoardConfig) -> list[str]:
        """Paths on the server a message about this board may hold (never shown: see :func:`scrub`): the
        gold, the spec, the data folder and the workspaces the gold was built from."""
        spec = board.spec()
        paths = [str(spec.gold_path), str(spec.gold_path.parent), str(self.config.data_dir.resolve()),
                 str(self.config.data_dir)]
        if spec.spec_path:
            paths += [str(spec.spec_path), str(spec.spec_path.parent)]
        paths += [str(rec["workspace"]) for _, rec in self._lineage(board) if rec.get("workspace")]
        return sorted(set(paths), key=len, reverse=True)

    def _lineage_files(self, board: BoardConfig) -> tuple:
        """(path, inode, mtime, size) of every file the staleness check reads: the spec, the gold's and the published
        folder's lineage files, and the tables of the workspaces they name. Unchanged: the answer is too."""
        from casebench.publish import LINEAGE_FILE
        from casebench.workspace import CONFIG_FILE, lineage_path

        spec = board.spec()
        files = [spec.gold_path, lineage_path(spec.gold_path)] + ([Path(spec.spec_path)] if spec.spec_path else [])
        if (spec.dataset or {}).get("path"):
            files.append(Path(spec.dataset["path"]) / LINEAGE_FILE)
        for root in sorted({str(rec["workspace"]) for _, rec in self._lineage(board) if rec.get("workspace")}):
            files += [Path(root) / CONFIG_FILE, *sorted((Path(root) / "tables").glob("*.parquet"))]
        out = []
        for f in files:
            try:
                st = f.stat()
                out.append((str(f), st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(f), None, None))
        return tuple(out)

    def stale(self, board: BoardConfig) -> list[str]:
        """Why the board's gold/spec no longer matches its recorded lineage (the workspace tables it was built
        from changed since: :func:`casebench.workspace.check_benchmark`), server paths scrubbed; empty when
        it matches. Looked at most every :data:`STALE_CHECK_S` seconds per spec, and checked again (tables
        hashed) only when one of the files it reads changed; a check that cannot be made (an unreadable
        workspace) is reported as such, never raised."""
        from casebench.workspace import check_benchmark

        spec = board.spec()
        key = str(spec.spec_path or spec.gold_path)
        hit = self._stale.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < STALE_CHECK_S:
            return hit[2]
        files = self._lineage_files(board)
        if hit is not None and hit[1] == files:
            self._stale[key] = (now, files, hit[2])
            return hit[2]
        try:
            problems = check_benchmark(spec, allow_stale=True)
        except (CasebenchError, OSError, ValueError) as e:
            problems = [f"the gold's lineage could not be checked: {e}"]
        paths = self.server_paths(board)
        problems = [scrub(p, paths) for p in problems]
        self._stale[key] = (now, files, problems)
        return problems

    def revealed(self, board: BoardConfig) -> bool:
        if not board.hidden_phase:
            return True
        with self.db.read() as s:
            ph = s.get(Phase, board.key)
            return bool(ph and ph.revealed_at)

    def reveal(self, board_key: str, admin: User | None = None, hide: bool = False) -> None:
        """Reveal a test phase's scores (or hide them again with ``hide=True``)."""
        board = self.board(board_key)
        if not board.hidden_phase:
            raise ServiceError(400, "not_hidden", f"board {board_key!r} is a dev phase: its scores are public")
        with self.db.write() as s:
            ph = s.get(Phase, board.key) or Phase(board=board.key)
            ph.revealed_at = None if hide else utcnow()
            ph.revealed_by = admin.id if admin else None
            s.add(ph)

    # -- users and tokens --------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, admin: bool = False) -> User:
        if not USERNAME.match(username or ""):
            raise ServiceError(400, "bad_username", f"username {username!r}: use 1-64 letters, digits, '_', '.', '-'"
                                                    ", starting with a letter or digit")
        if len(password or "") < MIN_PASSWORD:
            raise ServiceError(400, "weak_password", f"a password needs at least {MIN_PASSWORD} characters")
        with self.db.write() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise ServiceError(409, "user_exists", f"user {username!r} exists already")
            user = User(username=username, password_hash=hash_password(password), is_admin=admin)
            s.add(user)
        return user

    def set_password(self, username: str, password: str) -> None:
        if len(password or "") < MIN_PASSWORD:
            raise ServiceError(400, "weak_password", f"a password needs at least {MIN_PASSWORD} characters")
        with self.db.write() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise ServiceError(404, "unknown_user", f"no user {username!r}")
            user.password_hash = hash_password(password)

    def user(self, user_id: int | None) -> User | None:
        if user_id is None:
            return None
        with self.db.read() as s:
            return s.get(User, user_id)

    def user_by_name(self, username: str) -> User | None:
        with self.db.read() as s:
            return s.scalar(select(User).where(User.username == username))

    def check_password(self, username: str, password: str) -> User | None:
        user = self.user_by_name(username)
        if user is None:
            verify_password(password, hash_password("timing"))  # same work whether or not the user exists
            return None
        return user if verify_password(password, user.password_hash) else None

    def create_token(self, user_id: int, name: str = "") -> str:
        """A new API token for the user; returns the token (shown once, stored hashed)."""
        if CONTROL_ONE_LINE.search(name or ""):
            raise ServiceError(422, "invalid_name", "a token name holds a control character: use printable text")
        token = new_token()
        with self.db.write() as s:
            s.add(Token(user_id=user_id, name=name[:100], token_hash=token_hash(token), prefix=token[:10]))
        return token

    def tokens(self, user_id: int) -> list[Token]:
        with self.db.read() as s:
            return list(s.scalars(select(Token).where(Token.user_id == user_id, Token.revoked.is_(False))
                                  .order_by(Token.id)))

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self.db.write() as s:
            t = s.get(Token, token_id)
            if t is None or t.user_id != user_id:  # someone else's token is "not found", not "forbidden"
                raise ServiceError(404, "unknown_token", f"no token {token_id} of yours")
            t.revoked = True

    def user_for_token(self, token: str | None) -> User | None:
        if not token:
            return None
        with self.db.read() as s:
            t = s.scalar(select(Token).where(Token.token_hash == token_hash(token), Token.revoked.is_(False)))
            return s.get(User, t.user_id) if t else None

    # -- submissions -------------------------------------------------------------------------------------

    def accept(self, user: User, board_key: str, upload: Path, upload_name: str | None, form: dict,
               idempotency_key: str | None = None) -> tuple[Submission, bool]:
        """Validate an uploaded file and queue it; returns (submission, created). ``upload`` is a temporary
        file that this call moves into the store or deletes."""
        try:
            board = self.board(board_key)
            if idempotency_key is not None:
                idempotency_key = str(idempotency_key)[:100]
                prior = self.by_idempotency_key(user.id, idempotency_key)
                if prior is not None:
                    return prior, False
            if not board.open:
                raise ServiceError(409, "board_closed", f"board {board.key!r} does not take submissions now")
            if board.hidden_phase and self.revealed(board):  # its scores are public now: new uploads could read
                raise ServiceError(409, "board_closed", f"board {board.key!r} was revealed: the test phase is over "
                                                        "and takes no more submissions")
            name = check_file_name(upload_name)
            meta = Metadata.parse(form)
            kept = self._bound_and_filter(board, upload, name)
            try:
                n_lines = self._validate(board, kept, name)
                return self._insert(user, board, upload, kept, name, meta, n_lines, idempotency_key)
            finally:
                kept.unlink(missing_ok=True)
        finally:
            if upload.exists():
                upload.unlink()

    def by_idempotency_key(self, user_id: int, key: str) -> Submission | None:
        with self.db.read() as s:
            return s.scalar(select(Submission).where(Submission.user_id == user_id,
                                                     Submission.idempotency_key == key))

    def _bound_and_filter(self, board: BoardConfig, upload: Path, name: str) -> Path:
        """One bounded pass over the upload before any parsing: each line at most ``max_line_kb`` (read with a
        bounded ``readline``, so a 400 MB line costs 64 KB of reading), ids and field names short and free of
        control characters, the decompressed total under ``max_uncompressed_mb`` (413). Writes the lines of the
        board's items to a temporary file (lines of the benchmark's other phases are dropped: one file
        covering every item is accepted on each phase) and returns its path."""
        cap, limit = self.config.max_line_kb * 1024, self.config.max_uncompressed_bytes
        phase_ids = set(self.gold(board).ids.tolist())
        other_ids = set(board.spec().load_gold().ids.tolist()) - phase_ids
        out = self.config.data_dir / "tmp" / (uuid.uuid4().hex + ".kept.jsonl")
        with open(upload, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        total = 0
        try:
            with (gzip.open if gz else open)(upload, "rb") as f, open(out, "wb") as o:
                for lineno in range(1, 1 << 62):
                    line = f.readline(cap + 2)
                    if not line:
                        break
                    total += len(line)
                    if total > limit:
                        raise ServiceError(413, "too_large", f"{name} expands to more than "
                                                             f"{self.config.max_uncompressed_mb:g} MB uncompressed")
                    if len(line.rstrip(b"\r\n")) > cap:
                        self._line_problem(name, lineno, f"line longer than {self.config.max_line_kb} KB",
                                           "one prediction per line (a few hundred bytes)", None, 413)
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        obj = None  # the parser names the problem
                    if isinstance(obj, dict):
                        self._check_record(obj, name, lineno)
                        rid = obj.get("id")
                        if isinstance(rid, str) and rid in other_ids:
                            continue
                    o.write(line if line.endswith(b"\n") else line + b"\n")
        except (OSError, EOFError, zlib.error):
            shutil.copyfile(upload, out)  # a corrupt gzip: the parser names the problem
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return out

    @staticmethod
    def _line_problem(name: str, line: int, found: str, expected: str, fld: str | None, status: int = 422):
        p = Problem(found, expected=expected, file=name, line=line, field=fld)
        d = {**p.to_dict(), "message": str(p)}
        raise ServiceError(status, "too_large" if status == 413 else "invalid_predictions",
                           f"{name}, line {line}: {found}; nothing was queued and no quota was used",
                           problems=[d])

    def _check_record(self, obj: dict, name: str, line: int) -> None:
        """Lengths and characters of one line's id, field names and labels (before the parser, whose
        did-you-mean suggestions cost time in the length of what they compare)."""
        rid = obj.get("id")
        if isinstance(rid, str):
            if len(rid) > MAX_ID_CHARS:
                self._line_problem(name, line, f"id of {len(rid)} characters", f"at most {MAX_ID_CHARS}", "id")
            if CONTROL_ONE_LINE.search(rid):
                self._line_problem(name, line, "id holds a control character", "printable text", "id")
        for k, v in obj.items():
            if len(k) > MAX_KEY_CHARS:
                self._line_problem(name, line, f"field name of {len(k)} characters", f"at most {MAX_KEY_CHARS}",
                                   None)
            if k == "label" and isinstance(v, str) and len(v) > MAX_KEY_CHARS:
                self._line_problem(name, line, f"label of {len(v)} characters", f"at most {MAX_KEY_CHARS}", "label")
            if isinstance(v, dict):
                for kk in v:
                    if len(kk) > MAX_KEY_CHARS:
                        self._line_problem(name, line, f"label of {len(kk)} characters", f"at most {MAX_KEY_CHARS}",
                                           k)

    def _validate(self, board: BoardConfig, upload: Path, name: str) -> int:
        """Parse with the evaluate parser; ServiceError 422 with sanitised, line-numbered problems."""
        from casebench.evaluate import prediction_arrays, scored_tasks
        from casebench.predictions import parse_predictions

        gold = self.gold(board)
        bench = board.spec()
        try:
            preds = parse_predictions(upload, gold)
            tasks = scored_tasks(bench, preds)
            prediction_arrays(preds, gold, tasks)
        except InputError as e:
            problems, total = sanitize_problems(e, name, [str(upload), *self.server_paths(board)])
            raise ServiceError(422, "invalid_predictions",
                               f"{total} problem{'s' if total != 1 else ''} in {name}; nothing was queued and "
                               "no quota was used", problems=problems, n_problems=total) from None
        return preds.n_lines

    def _insert(self, user: User, board: BoardConfig, upload: Path, kept: Path, name: str, meta: Metadata,
                n_lines: int, idem: str | None) -> tuple[Submission, bool]:
        import hashlib

        from casebench.results import zero_shot

        h = hashlib.sha256()
        with open(upload, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        size = upload.stat().st_size
        data = gzip.compress(kept.read_bytes(), compresslevel=6)
        zs, _ = zero_shot(board.spec(), meta.trained_on)
        try:
            with self.db.write() as s:
                # lock the user's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)
                s.execute(select(User.id).where(User.id == user.id).with_for_update())
                self._check_quota(s, user, board)
                blob = Upload(data=data)
                s.add(blob)
                s.flush()
                sub = Submission(board=board.key, user_id=user.id, status="queued", idempotency_key=idem,
                                 upload_path="db", upload_id=blob.id, upload_name=name,
                                 upload_sha256="sha256:" + h.hexdigest(), upload_bytes=size, n_lines=n_lines,
                                 model_name=meta.model_name, model_revision=meta.model_revision,
                                 model_url=meta.model_url, model_parameters=meta.parameters,
                                 trained_on=orjson.dumps(meta.trained_on).decode(), description=meta.description,
                                 zero_shot=zs)
                s.add(sub)
        except IntegrityError:  # the same idempotency key raced in from another request
            prior = self.by_idempotency_key(user.id, idem) if idem else None
            if prior is None:
                raise
            return prior, False
        if self.on_accept:
            self.on_accept(sub.id)
        return sub, True

    def _check_quota(self, s, user: User, board: BoardConfig) -> None:
        counted = (Submission.user_id == user.id, Submission.board == board.key, Submission.status != "failed")
        if board.quota_total:
            n = s.scalar(select(func.count()).select_from(Submission).where(*counted))
            if n >= board.quota_total:
                raise ServiceError(429, "quota_exceeded", f"quota reached: {n} of {board.quota_total} submissions "
                                                          f"in all on {board.key}")
        if board.quota_per_day:
            now = utcnow()
            day = now.replace(hour=0, minute=0, second=0, microsecond=0)
            n = s.scalar(select(func.count()).select_from(Submission).where(*counted, Submission.created_at >= day))
            if n >= board.quota_per_day:
                wait = int((day + _dt.timedelta(days=1) - now).total_seconds()) + 1
                raise ServiceError(429, "quota_exceeded",
                                   f"daily quota reached: {n} of {board.quota_per_day} submissions today (UTC) on "
                                   f"{board.key}; the next one is possible in {wait // 3600} h {wait % 3600 // 60} min",
                                   headers={"Retry-After": str(wait)})

    def quota_left(self, user: User, board: BoardConfig) -> dict:
        with self.db.read() as s:
            counted = (Submission.user_id == user.id, Submission.board == board.key, Submission.status != "failed")
            total = s.scalar(select(func.count()).select_from(Submission).where(*counted))
            day = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
            today = s.scalar(select(func.count()).select_from(Submission).where(*counted,
                                                                                Submission.created_at >= day))
        return {"today": today, "per_day": board.quota_per_day, "total": total, "quota_total": board.quota_total}

    def submission(self, sub_id: int) -> Submission | None:
        with self.db.read() as s:
            return s.get(Submission, sub_id)

    def submissions_of(self, user_id: int) -> list[Submission]:
        with self.db.read() as s:
            return list(s.scalars(select(Submission).where(Submission.user_id == user_id)
                                  .order_by(Submission.id.desc())))

    def own_submission(self, viewer: User | None, sub_id: int) -> Submission:
        """The submission if the viewer may see it (its submitter or an admin); else 404 (not 403: whether
        someone else's submission exists is not the viewer's business)."""
        sub = self.submission(sub_id)
        if sub is None or viewer is None or (sub.user_id != viewer.id and not viewer.is_admin):
            raise ServiceError(404, "unknown_submission", f"no submission {sub_id} of yours")
        return sub

    def can_see_scores(self, sub: Submission, viewer: User | None) -> bool:
        """Whether the viewer may see the submission's (final) results: a dev phase or a revealed test phase
        for everyone, an organiser always. A submitter of an unrevealed test phase gets only the
        :meth:`feedback` of its public part."""
        board = self.boards.get(sub.board)
        if board is None or sub.status != "done":
            return False
        if not board.hidden_phase or self.revealed(board):
            return True
        return viewer is not None and viewer.is_admin

    def feedback(self, sub: Submission, viewer: User | None) -> dict | None:
        """What the submitter of an unrevealed ``visibility = "submitter"`` test phase learns: the Ladder's
        shown score or the public part's headline metrics rounded to their CIs (None for anyone else)."""
        board = self.boards.get(sub.board)
        if (board is None or sub.status != "done" or not sub.feedback or board.visibility != "submitter"
                or viewer is None or viewer.id != sub.user_id or self.revealed(board)):
            return None
        return orjson.loads(sub.feedback)

    def results_view(self, sub: Submission, viewer: User | None) -> dict:
        """The (redacted) results object of a submission the viewer may see; 404 otherwise."""
        if not self.can_see_scores(sub, viewer) or not sub.results:
            raise ServiceError(404, "no_results", f"no visible results for submission {sub.id}")
        board = self.boards[sub.board]
        return redact(orjson.loads(sub.results), board, sub.upload_name, self.server_paths(board))

    def status_view(self, sub: Submission, viewer: User | None) -> dict:
        """A submission's public-to-its-owner status (no scores unless visible)."""
        board = self.boards.get(sub.board)
        out = {"id": sub.id, "board": sub.board, "status": sub.status, "created_at": _iso(sub.created_at),
               "started_at": _iso(sub.started_at), "finished_at": _iso(sub.finished_at),
               "file": sub.upload_name, "sha256": sub.upload_sha256, "n_lines": sub.n_lines,
               "model": {"name": sub.model_name, "revision": sub.model_revision, "url": sub.model_url,
                         "parameters": sub.model_parameters, "trained_on": orjson.loads(sub.trained_on),
                         "zero_shot": sub.zero_shot, "description": sub.description},
               "scores_visible": self.can_see_scores(sub, viewer)}
        if sub.status == "failed":
            out["error"] = ("scoring failed on the server; the submission does not count against your quota"
                            if sub.failure != "input" else "the file could not be scored; it does not count "
                                                           "against your quota")
        if out["scores_visible"]:
            res = self.results_view(sub, viewer)
            out["splits"] = res["splits"]
            if res.get("warnings"):
                out["warnings"] = res["warnings"]
            out["results_url"] = f"/api/submissions/{sub.id}/results.json"
        elif sub.status == "done" and board is not None and board.hidden_phase:
            fb = self.feedback(sub, viewer)
            if fb is not None:
                out["feedback"] = fb
            out["hidden"] = ("test-phase scores are hidden until the organiser reveals them" if fb is None else
                             "before the reveal you see feedback on the public part of the test items only; the "
                             "final ranking uses the private part")
        return out

    def board_submissions(self, board: BoardConfig) -> list[Submission]:
        """Scored submissions of a board, the latest per (user, model name, revision)."""
        with self.db.read() as s:
            subs = list(s.scalars(select(Submission).where(Submission.board == board.key,
                                                           Submission.status == "done")
                                  .order_by(Submission.id)))
        latest: dict[tuple, Submission] = {}
        for sub in subs:
            latest[(sub.user_id, sub.model_name, sub.model_revision)] = sub
        return list(latest.values())

    def board_meta(self, board: BoardConfig) -> dict:
        """What a board is (no scores): benchmark, phase, visibility, reveal state, quotas, splits, tasks, and
        ``stale``: why its gold no longer matches its recorded lineage (:meth:`stale`; empty when it does)."""
        spec = board.spec()
        items = self._items[board.key]
        return {"key": board.key, "benchmark": spec.name, "version": spec.version, "phase": board.phase,
                "visibility": board.visibility, "revealed": self.revealed(board), "open": board.open,
                "n_items": len(self.gold(board)), "partitioned": board.hidden_phase and items.partitioned,
                "public_fraction": items.public_fraction, "ladder": board.hidden_phase and board.ladder,
                "title": board.title or f"{spec.name} v{spec.version} · {board.phase} phase",
                "description": spec.description, "quota_per_day": board.quota_per_day,
                "quota_total": board.quota_total, "splits": [s.name for s in spec.splits],
                "tasks": [t.kind for t in spec.tasks], "taxonomy": spec.taxonomy.name,
                "labels": list(spec.taxonomy.labels), "stale": self.stale(board)}

    def board_rows(self, board: BoardConfig, results_url: str = "/api/submissions/{id}/results.json") -> list[dict]:
        """Rows for :func:`~casebench.leaderboard.board.build_board`: every scored model revision with its
        results object. Call only for a board whose scores are public."""
        from casebench.results import zero_shot

        names = self.usernames()
        rows = []
        for sub in self.board_submissions(board):
            trained = orjson.loads(sub.trained_on)
            rows.append({"id": sub.id, "model": sub.model_name, "revision": sub.model_revision,
                         "url": sub.model_url, "parameters": sub.model_parameters, "zero_shot": sub.zero_shot,
                         "trained_on": trained, "overlap": zero_shot(board.spec(), trained)[1],
                         "description": sub.description,
                         "user": names.get(sub.user_id, "?"),
                         "created_at": sub.created_at.isoformat(timespec="seconds"),
                         "results_url": results_url.format(id=sub.id), "results": orjson.loads(sub.results)})
        return rows

    def board_view(self, board: BoardConfig, *, sort: str | None = None, order: str | None = None, q: str = "",
                   zero_shot: str = "", metrics: list[str] | None = None, request_comparisons: bool = True,
                   results_url: str = "/api/submissions/{id}/results.json") -> dict:
        """The board as data (see :func:`~casebench.leaderboard.board.build_board`) with ``visible``; no rows
        while a test phase is hidden. Rank ties use the paired tests computed so far (and queue the missing
        neighbour pairs for the worker)."""
        from casebench.leaderboard.board import build_board

        visible = not board.hidden_phase or self.revealed(board)
        rows = self.board_rows(board, results_url) if visible else []
        kw = dict(sort=sort, order=order, q=q, zero_shot=zero_shot, metrics=metrics)
        data = build_board(board.spec(), rows, **kw)
        if data["pairs"]:
            pv = self.comparisons(data["pairs"], request=request_comparisons)
            if pv:
                def p_value(a, b, col):
                    return pv.get((a, b), {}).get(col["split"], {}).get(col["metric"])

                data = build_board(board.spec(), rows, p_value=p_value, **kw)
        data["visible"] = visible
        paths = self.server_paths(board)
        data["warnings"] = list(dict.fromkeys(scrub(w, paths) for w in data["warnings"]))
        return data

    def usernames(self) -> dict[int, str]:
        with self.db.read() as s:
            return dict(s.execute(select(User.id, User.username)).all())

    def comparisons(self, pairs: list[tuple[int, int]], request: bool = True) -> dict[tuple[int, int], dict]:
        """Paired p-values ``{(a, b): {split: {metric: p}}}`` of the pairs already compared (either order);
        with ``request``, queue the others for the worker (it computes them when no submission waits)."""
        from casebench.leaderboard.db import Comparison

        want = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
        if not want:
            return {}
        with self.db.read() as s:
            ids = sorted({x for p in want for x in p})
            rows = s.execute(select(Comparison.a_id, Comparison.b_id, Comparison.status, Comparison.p_values)
                             .where(Comparison.a_id.in_(ids), Comparison.b_id.in_(ids))).all()
        have = {(a, b): (st, pv) for a, b, st, pv in rows}
        out = {}
        for (a, b), (st, pv) in have.items():
            if st == "done" and pv:
                out[(a, b)] = out[(b, a)] = orjson.loads(pv)
        missing = [p for p in want if p not in have]
        if request and missing:
            try:
                with self.db.write() as s:
                    for a, b in missing:
                        s.add(Comparison(a_id=a, b_id=b))
            except IntegrityError:
                pass  # another request queued the same pair first
            if self.on_accept:
                self.on_accept(None)
        return out

    def requeue(self, claimed_by: str | None = None) -> int:
        """See :func:`casebench.leaderboard.db.requeue`."""
        return requeue(self.db, claimed_by)

    def queue_counts(self) -> dict:
        """Submissions per status, and failures by infrastructure."""
        with self.db.read() as s:
            rows = dict(s.execute(select(Submission.status, func.count()).group_by(Submission.status)).all())
            infra = s.scalar(select(func.count()).select_from(Submission)
                             .where(Submission.status == "failed", Submission.failure == "infra"))
        return {**{k: int(rows.get(k, 0)) for k in ("queued", "running", "done", "failed")},
                "failed_infra": int(infra or 0)}


def _iso(t: _dt.datetime | None) -> str | None:
    return None if t is None else t.replace(tzinfo=_dt.timezone.utc).isoformat(timespec="seconds")
