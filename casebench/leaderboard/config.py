"""What a curator configures: the boards (a benchmark in a phase), quotas, limits, where data lives.

A leaderboard serves one or more *boards*. A board is a benchmark spec in a *phase*:

- ``dev``: scores show as soon as a submission is scored (per-split scores with CIs, per-class detail);
- ``test``: scores stay hidden until the organiser reveals the phase (``visibility = "hidden"``), or the
  submitter alone gets feedback before then (``visibility = "submitter"``): on the *public part* of the test
  items only, through the Ladder or rounded to what the CI supports (:mod:`.phases`); the final ranking
  uses the *private part*. Results of a test phase are always *redacted*: headline per-split metrics with
  CIs only, no confusion matrices, per-class tables or conflict breakdowns.

Each phase scores its own items (the gold's ``split`` column by default, see :mod:`.phases`); the service
refuses boards where a public phase and a hidden phase share items.

Settings come from a TOML file (see ``leaderboard/example.toml``) and/or the command line
(``casebench leaderboard serve --benchmarks casebench-mini,casebench-mini:test``); the command line wins.

>>> cfg = LeaderboardConfig.from_dict({"leaderboard": {"data_dir": "/tmp/x"},
...     "board": [{"benchmark": "casebench-mini", "phase": "test", "quota_total": 3}]})
>>> b = cfg.boards[0]
>>> b.key, b.phase, b.visibility, b.quota_total, b.quota_per_day
('casebench-mini/test', 'test', 'hidden', 3, 5)
>>> parse_board_arg("casebench-mini:test").phase
'test'
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from casebench.errors import ConfigError, did_you_mean, path_error, syntax_problem

PHASES = ("dev", "test")
VISIBILITY = ("public", "hidden", "submitter")


@dataclass(frozen=True)
class BoardConfig:
    """One board: a benchmark (built-in name or spec YAML path) in a phase, with its quotas.

    Attributes:
        benchmark: built-in benchmark name or path of a spec YAML (its gold stays on the server).
        phase: ``dev`` or ``test``.
        visibility: ``public`` (scores at once; the default of ``dev``), ``hidden`` (nobody sees test scores
            before the reveal; the default of ``test``) or ``submitter`` (only the submitter sees them).
        quota_per_day: accepted submissions per user per UTC day (0 = no limit).
        quota_total: accepted submissions per user in all (0 = no limit).
        open: whether the board accepts submissions.
        title: shown on the pages (default: benchmark name and phase).
        items: which gold rows the board scores: '' (the rows whose ``split`` column is the phase name, or
            all rows when the gold has no ``split`` column), ``all``, or ``COLUMN=VALUE``.
        public_fraction: test phase: share of the items (by speaker) in the public part that feeds the
            submitter's feedback; the rest, the private part, makes the final ranking (0 = no partition).
        ladder: test phase: feedback through the Ladder (Blum & Hardt 2015) rather than rounded scores.
        ladder_step: the Ladder's step η on its score (0 = the standard error of the paired difference).
    """

    benchmark: str
    phase: str = "dev"
    visibility: str = ""
    quota_per_day: int = 5
    quota_total: int = 0
    open: bool = True
    title: str = ""
    items: str = ""
    public_fraction: float = 0.5
    ladder: bool = True
    ladder_step: float = 0.0

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ConfigError(f"board {self.benchmark!r}: phase {self.phase!r}; expected one of {list(PHASES)}")
        vis = self.visibility or ("public" if self.phase == "dev" else "hidden")
        if vis not in VISIBILITY:
            raise ConfigError(f"board {self.benchmark!r}: visibility {vis!r}; expected one of {list(VISIBILITY)}")
        if self.phase == "dev" and vis != "public":
            raise ConfigError(f"board {self.benchmark!r}: a dev phase shows its scores at once; visibility "
                              f"{vis!r} applies only to a test phase")
        object.__setattr__(self, "visibility", vis)
        if not 0 <= self.public_fraction < 1:
            raise ConfigError(f"board {self.benchmark!r}: public_fraction = {self.public_fraction}; expected a share "
                              "in [0, 1) (0 = no public/private partition)")
        if not 0 <= self.ladder_step < 1:
            raise ConfigError(f"board {self.benchmark!r}: ladder_step = {self.ladder_step}; expected 0 (automatic) "
                              "or a step below 1")
        for q in ("quota_per_day", "quota_total"):
            if getattr(self, q) < 0:
                raise ConfigError(f"board {self.benchmark!r}: {q} = {getattr(self, q)}; expected >= 0 (0 = no limit)")

    @property
    def name(self) -> str:
        """The benchmark's name (the spec's ``name``), as used in URLs."""
        return self.spec().name

    @property
    def key(self) -> str:
        """``NAME/PHASE``: the board's id in URLs and the database."""
        return f"{self.name}/{self.phase}"

    @property
    def hidden_phase(self) -> bool:
        return self.phase == "test"

    def spec(self):
        return _benchmark(self.benchmark)


@functools.cache
def _benchmark(name_or_path: str):
    from casebench.benchmarks import get_benchmark

    return get_benchmark(name_or_path)


@dataclass
class RateLimit:
    """Token bucket per API token (or signed-in user): ``burst`` requests at once, refilled at ``per_minute``.

    Held in the server process's memory: a restart refills every bucket, and several server processes
    each keep their own (documented in leaderboard/README.md).
    """

    burst: int = 10
    per_minute: float = 30.0


@dataclass
class LeaderboardConfig:
    """Server settings (``[leaderboard]`` in the TOML file) and the boards (``[[board]]``)."""

    boards: list[BoardConfig] = field(default_factory=list)
    title: str = "casebench leaderboard"
    data_dir: Path = Path("leaderboard-data")
    db_url: str = ""
    max_upload_mb: float = 50.0
    max_uncompressed_mb: float = 500.0
    n_boot: int = 1000
    seed: int = 0
    workers: int = 2
    drain_s: float = 30.0
    max_line_kb: int = 64
    secret_key: str = ""
    rate_limit: RateLimit = field(default_factory=RateLimit)
    session_max_age_s: int = 14 * 24 * 3600
    secure_cookies: bool = False
    base_url: str = ""

    def __post_init__(self):
        self.data_dir = Path(self.data_dir)
        keys = [b.key for b in self.boards]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ConfigError(f"boards listed twice: {sorted(dup)}; each benchmark/phase pair once")

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL: ``db_url``, else an SQLite file in ``data_dir``."""
        return self.db_url or f"sqlite:///{(self.data_dir / 'leaderboard.db').resolve()}"

    def require_database(self, command: str) -> None:
        """ConfigError when the SQLite file of ``data_dir`` does not exist: ``command`` acts on a served board,
        and opening a new database from the wrong folder would act on nothing and say it succeeded."""
        path = self.data_dir / "leaderboard.db"
        if not self.db_url and not path.is_file():
            raise ConfigError(f"no leaderboard database at {path}: `casebench leaderboard {command}` acts on the "
                              "boards of `casebench leaderboard serve`; run it in the folder serve ran in, or pass "
                              "the --data-dir, --db or --config that serve used")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_uncompressed_bytes(self) -> int:
        return int(self.max_uncompressed_mb * 1024 * 1024)

    def board(self, key: str) -> BoardConfig | None:
        return next((b for b in self.boards if b.key == key), None)

    def secret(self) -> str:
        """The signing key: ``secret_key``, else env ``CASEBENCH_LEADERBOARD_SECRET``, else a random key kept
        in ``data_dir/secret_key`` (created on first use, mode 0600)."""
        if self.secret_key:
            return self.secret_key
        env = os.environ.get("CASEBENCH_LEADERBOARD_SECRET")
        if env:
            return env
        path = self.data_dir / "secret_key"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @classmethod
    def from_dict(cls, doc: dict) -> LeaderboardConfig:
        top = dict(doc.get("leaderboard", {}))
        known = {f.name for f in fields(cls)} - {"boards", "rate_limit"}
        for k in top:
            if k not in known and k != "rate_limit":
                hint = did_you_mean(k, known)
                raise ConfigError(f"[leaderboard] unknown setting {k!r}; expected one of {sorted(known)}"
                                  + (f" ({hint})" if hint else ""))
        rate_limit = top.pop("rate_limit", {})
        _check_settings("[leaderboard.rate_limit]", RateLimit, rate_limit)
        _check_settings("[leaderboard]", cls, top)
        rl = RateLimit(**rate_limit)
        boards = []
        board_fields = {f.name for f in fields(BoardConfig)}
        for i, b in enumerate(doc.get("board", [])):
            for k in b:
                if k not in board_fields:
                    hint = did_you_mean(k, board_fields)
                    raise ConfigError(f"[[board]] #{i + 1}: unknown setting {k!r}; expected one of "
                                      f"{sorted(board_fields)}" + (f" ({hint})" if hint else ""))
            if "benchmark" not in b:
                raise ConfigError(f"[[board]] #{i + 1}: 'benchmark' is missing (a built-in name or a spec path)")
            _check_settings(f"[[board]] #{i + 1}", BoardConfig, b)
            boards.append(BoardConfig(**b))
        return cls(boards=boards, rate_limit=rl, **top)

    @classmethod
    def load(cls, path: str | Path) -> LeaderboardConfig:
        """Read a TOML config; relative ``data_dir`` and board spec paths are relative to the file."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib

        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text("utf-8"))
        except OSError as e:
            raise path_error(e, path, action="read the leaderboard config") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(str(syntax_problem(path, e, "a leaderboard config (TOML)"))) from None
        cfg = cls.from_dict(doc)
        if not cfg.data_dir.is_absolute():
            cfg.data_dir = (path.parent / cfg.data_dir).resolve()
        boards = []
        for b in cfg.boards:
            p = Path(b.benchmark)
            if p.suffix in (".yaml", ".yml") and not p.is_absolute():
                b = replace(b, benchmark=str((path.parent / p).resolve()))
            boards.append(b)
        cfg.boards = boards
        return cfg


def parse_board_arg(text: str, **defaults) -> BoardConfig:
    """``NAME[:PHASE]`` (or ``spec.yaml[:PHASE]``) from the command line into a board."""
    name, sep, phase = text.strip().rpartition(":")
    if not sep or phase not in PHASES:
        name, phase = text.strip(), "dev"
    return BoardConfig(benchmark=name, phase=phase, **defaults)


def _check_settings(section: str, cls, values: dict) -> None:
    """ConfigError for a setting of the wrong type or name (``workers = "two"`` failed deep in the server's
    start-up with a TypeError)."""
    import typing

    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in hints:
            known = sorted(hints)
            hint = did_you_mean(key, known)
            raise ConfigError(f"{section} unknown setting {key!r}; expected one of {known}"
                              + (f" ({hint})" if hint else ""))
        kinds = [t for t in (typing.get_args(hints[key]) or (hints[key],)) if t is not type(None)]
        accepted = tuple({Path: str, float: (int, float)}.get(t, t) for t in kinds)
        flat = tuple(x for a in accepted for x in (a if isinstance(a, tuple) else (a,)))
        if not isinstance(value, flat) or (isinstance(value, bool) and bool not in flat):
            names = " or ".join("a number" if t is float else "true or false" if t is bool else
                                "a whole number" if t is int else "a string" for t in kinds)
            raise ConfigError(f"{section} {key} = {value!r}; expected {names}")


def check_port_free(host: str, port: int) -> None:
    """ConfigError when ``host:port`` cannot be listened on (another server holds it, or the address is not
    this machine's), before the service starts its scoring processes; uvicorn would log it among INFO lines
    and exit 3."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r}: not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use (another server, or a leaderboard already "
                                  "running): stop it, or choose another with --port") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --host or --port"
                              ) from None
