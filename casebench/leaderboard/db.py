"""The leaderboard's tables (SQLAlchemy 2) and the engine: an SQLite file by default, PostgreSQL by URL.

Tables: ``users`` (password hashed with scrypt), ``api_tokens`` (SHA-256 of the token; the token itself is
shown once), ``submissions`` (the persistent scoring queue: ``status`` is queued -> running -> done |
failed; the full results object stays here, server-side), ``uploads`` (the accepted files, gzip, so that a
scoring worker on another machine reads them from the database), ``comparisons`` (paired tests between two
submissions, computed on demand for rank ties), ``phases`` (when a test phase was revealed), ``boards``
(what each board scores, written by the server for the workers) and ``ladder`` (each submitter's Ladder
state on a hidden board).

Concurrency: on SQLite, :meth:`Database.write` opens ``BEGIN IMMEDIATE`` transactions, so writers queue on
the file lock (busy timeout 30 s) instead of failing on a lock upgrade, and reads run in WAL mode beside
them. On PostgreSQL, quota checks lock the user's row (``SELECT ... FOR UPDATE``). A queue claim is one
``UPDATE ... WHERE id = :id AND status = 'queued'`` on both, after ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL (claimers skip each other's locked rows instead of queueing on them): exactly one worker gets a
row count of 1. A claim holds a lease (``lease_until``) that its worker renews while scoring; a job whose
lease ran out (its worker died) goes back to the queue.

The SQLite file is created private to the service user (mode 0600; SQLite gives its -wal and -shm files the
same mode).

>>> db = Database("sqlite://")
>>> with db.write() as s:
...     s.add(User(username="ada", password_hash="x"))
>>> with db.read() as s:
...     s.scalar(select(User.username))
'ada'
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from casebench.errors import ConfigError

STATUSES = ("queued", "running", "done", "failed")

__all__ = ["Base", "BoardDef", "Comparison", "Database", "LadderState", "Phase", "STATUSES", "Submission", "Token",
           "Upload", "User", "select", "utcnow"]


def utcnow() -> _dt.datetime:
    """Naive UTC now: every timestamp in the database is naive UTC (SQLite keeps no time zone)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class Token(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[_dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_submission_idempotency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    board: Mapped[str] = mapped_column(String(200), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[_dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[_dt.datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    score_count: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    upload_path: Mapped[str] = mapped_column(String(500))
    upload_name: Mapped[str] = mapped_column(String(255))
    upload_sha256: Mapped[str] = mapped_column(String(80))
    upload_bytes: Mapped[int] = mapped_column(BigInteger)
    n_lines: Mapped[int] = mapped_column(Integer, default=0)
    model_name: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(200), default="")
    model_url: Mapped[str] = mapped_column(String(500), default="")
    model_parameters: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    trained_on: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    description: Mapped[str] = mapped_column(Text, default="")
    zero_shot: Mapped[bool] = mapped_column(Boolean, default=True)
    results: Mapped[str | None] = mapped_column(Text, nullable=True)  # the full results object (JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: why a failed job failed: "infra" (a worker died, the database hiccupped...: re-queued at the next start,
    #: never the submitter's fault) or "input" (the file itself)
    failure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[_dt.datetime | None] = mapped_column(DateTime, nullable=True)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"), nullable=True)
    #: what a hidden phase tells the submitter before the reveal (JSON: Ladder state or rounded public scores)
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)


class Upload(Base):
    """An accepted predictions file (only the lines of its board's items), gzip-compressed."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BoardDef(Base):
    """What a board scores (JSON of :class:`~casebench.leaderboard.phases.BoardItems`, bootstrap settings,
    Ladder settings), written by the server at start-up; ``casebench leaderboard worker`` reads it."""

    __tablename__ = "boards"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    partition_key: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class LadderState(Base):
    """A submitter's Ladder on a hidden board: the per-item losses of their best submission and what shows."""

    __tablename__ = "ladder"

    board: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    best_id: Mapped[int] = mapped_column(Integer)
    best_losses: Mapped[bytes] = mapped_column(LargeBinary)
    shown: Mapped[float] = mapped_column(Float)
    rounds: Mapped[int] = mapped_column(Integer, default=0)


class Comparison(Base):
    """A paired comparison of two scored submissions of one board (``a_id < b_id``), for rank ties."""

    __tablename__ = "comparisons"
    __table_args__ = (UniqueConstraint("a_id", "b_id", name="uq_comparison_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    a_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    b_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    p_values: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {split: {metric: p}}
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class Phase(Base):
    """Reveal state of a board's phase (a row exists once the organiser revealed it)."""

    __tablename__ = "phases"

    board: Mapped[str] = mapped_column(String(200), primary_key=True)
    revealed_at: Mapped[_dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revealed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


def _safe_url(url: str) -> str:
    """``url`` with its password hidden (as written when it does not parse)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given (it has no parsable password)
        return url


class Database:
    """An engine and sessions: :meth:`read` for reads, :meth:`write` for a serialised write transaction."""

    def __init__(self, url: str, echo: bool = False):
        from sqlalchemy import exc

        try:
            self._open(url, echo)
        except (exc.ArgumentError, exc.NoSuchModuleError) as e:  # not a URL, or a database kind not installed
            raise ConfigError(f"--db {_safe_url(url)!r}: {str(e).splitlines()[0]}; expected sqlite:///PATH or "
                              "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE") from None
        except exc.OperationalError as e:  # the server is down, refuses the login, or the file cannot be opened
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise ConfigError(f"cannot open the leaderboard database {_safe_url(url)}: {reason}") from None

    def _open(self, url: str, echo: bool) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            memory = url in ("sqlite://", "sqlite:///:memory:")
            if not memory:
                _private_file(url)
            kw = dict(connect_args={"check_same_thread": False, "timeout": 30}, echo=echo)
            if memory:
                kw["poolclass"] = StaticPool
            self.engine = create_engine(url, **kw)
            self.write_engine = self.engine if memory else create_engine(url, **kw)
            _sqlite_setup(self.engine, immediate=memory)
            if self.write_engine is not self.engine:
                _sqlite_setup(self.write_engine, immediate=True)
        else:
            self.engine = self.write_engine = create_engine(url, echo=echo, pool_pre_ping=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        Base.metadata.create_all(self.write_engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """A database made by an older casebench lacks the newer (nullable) columns: add them, so that an
        upgrade keeps its users, tokens and submissions (``create_all`` adds only missing tables)."""
        from sqlalchemy import inspect, text

        insp = inspect(self.write_engine)
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have or not col.nullable:
                    continue
                kind = col.type.compile(dialect=self.write_engine.dialect)
                with self.write_engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {kind}'))

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        with self._write() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def _private_file(url: str) -> None:
    """Create the SQLite file with mode 0600 before SQLite does (it would use the umask: world-readable), and
    make an existing one private."""
    import os

    from sqlalchemy.engine import make_url

    path = make_url(url).database
    if not path:
        return
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.chmod(p, 0o600)


def _sqlite_setup(engine, immediate: bool) -> None:
    """WAL, a busy timeout and foreign keys on every connection; take over BEGIN from pysqlite (whose own
    transaction handling defers BEGIN) so that write transactions can be ``BEGIN IMMEDIATE``."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")  # an in-memory database answers "memory": fine
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def requeue(db: Database, claimed_by: str | None = None) -> int:
    """Put jobs back in the queue: those left ``running`` by ``claimed_by`` (a stopped server's own scorer),
    those whose lease ran out (a worker that died), and those failed by infrastructure. Their first runs
    recorded nothing, so each is still scored exactly once."""
    now = utcnow()
    back = dict(status="queued", claim=None, claimed_by=None, lease_until=None)
    with db.write() as s:
        n = 0
        if claimed_by is not None:
            n += s.execute(update(Submission).where(Submission.status == "running",
                                                    Submission.claimed_by == claimed_by).values(**back)).rowcount
        n += s.execute(update(Submission).where(Submission.status == "running", Submission.lease_until < now)
                       .values(**back)).rowcount
        n += s.execute(update(Submission).where(Submission.status == "failed", Submission.failure == "infra")
                       .values(**back, error=None, failure=None, attempts=0)).rowcount
        return n
