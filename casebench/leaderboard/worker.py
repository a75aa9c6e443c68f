"""The scoring worker: takes queued submissions from the database and scores them off the request path.

The queue *is* the ``submissions`` table, so a restart loses nothing, and any number of workers, in the
server or on other machines (``casebench leaderboard worker --db URL``), share it:

- **claim**: ``SELECT id ... WHERE status='queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`` (PostgreSQL;
  on SQLite the ``BEGIN IMMEDIATE`` write lock serialises claimers), then ``UPDATE ... SET status='running',
  claim=<uuid>, claimed_by=<worker>, lease_until=now+lease WHERE id=:id AND status='queued'``: the worker
  that sees row count 1 owns the job;
- **lease**: a heartbeat thread renews ``lease_until`` of the jobs a worker holds; a job whose lease ran out
  (its worker died with the machine) is put back in the queue by the next claimer;
- **finish**: ``UPDATE ... SET status='done', results=..., score_count=score_count+1 WHERE id=:id AND
  claim=<uuid> AND status='running'``: a result is recorded once, by the claim holder only (a late finisher
  whose job was re-queued records nothing);
- **failures**: a scoring process that dies (killed, out of memory) is replaced and its job goes back to the
  queue, up to :data:`MAX_ATTEMPTS` runs; other infrastructure errors likewise. Failures are marked
  ``failure='infra'`` (never the submitter's fault, never charged to a quota: failed jobs do not count) and
  re-queued at the next start; only a file the scorer itself refuses is ``failure='input'``;
- **start-up**: jobs left ``running`` by this server's own scorer (``claimed_by='server'``) and jobs failed
  by infrastructure go back to ``queued`` (:meth:`Leaderboard.requeue`);
- **stop** (SIGTERM): no new claims; running jobs get ``drain_s`` to finish; what is still running then goes
  back to the queue and every scoring process is stopped (terminated, then killed).

Scoring runs in scoring processes (one per claiming thread, each its own ``spawn``-ed process talking over
a pipe), so the numpy work neither holds the web server's GIL nor waits on it, and one dead process costs
one job one retry instead of breaking a shared pool (``ProcessPoolExecutor`` fails every pending job with
``BrokenProcessPool`` when any of its processes dies, which is why this is not one). ``processes == 0``
scores in the claiming thread (tests). Each job calls :func:`casebench.evaluate.evaluate`, the very scorer
of the CLI, on the board's items (:mod:`.phases`), with ``with_baselines=False``: the constant baselines
depend only on the gold, the tasks and the bootstrap settings, so each process computes them once per board.

When no submission is queued, the worker computes queued :class:`~casebench.leaderboard.db.Comparison` rows:
paired bootstrap tests (:func:`casebench.evaluate.compare`) between neighbouring board rows, which decide
rank ties.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import logging
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import select, update

from casebench.leaderboard.db import (
    BoardDef,
    Comparison,
    Database,
    LadderState,
    Submission,
    Upload,
    requeue,
    utcnow,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
LEASE_S = 60.0


class WorkerDied(Exception):
    """The scoring process died under a job (an infrastructure failure)."""


class JobFailed(Exception):
    """The job raised; ``input`` when the scorer refused the file itself (a CasebenchError)."""

    def __init__(self, message: str, input: bool):
        super().__init__(message)
        self.input = input


# -- the jobs (run in scoring processes; module-level so that they pickle) ------------------------------


def _items(defn: dict):
    from casebench.leaderboard.phases import BoardItems

    return BoardItems(defn["benchmark"], defn["phase"], defn.get("items", ""), float(defn.get("public_fraction", 0)),
                      defn.get("key", ""))


_BASELINES: dict[tuple, dict] = {}


def _evaluate_part(items, part: str, path: str, n_boot: int, seed: int, model: dict | None) -> dict:
    from casebench.evaluate import baseline_info, baseline_prior, baselines, evaluate
    from casebench.leaderboard.phases import filter_lines

    bench = items.benchmark_of(part)
    gold = bench.load_gold()
    src = path
    tmp = None
    if part != "phase":  # the stored file holds the phase's items: keep the part's lines
        fd, tmp = tempfile.mkstemp(suffix=".jsonl")
        os.close(fd)
        filter_lines(path, tmp, gold.ids.tolist())
        src = tmp
    try:
        # stale boards were refused when the server started (`leaderboard serve --allow-stale` overrides); a
        # workspace table changed while serving is recorded in the results rather than failing the job
        res = evaluate(src, bench, n_boot=n_boot, seed=seed, unit="auto", model=model, with_baselines=False,
                       allow_stale=True)
    finally:
        if tmp:
            os.unlink(tmp)
    key = (gold.fingerprint, tuple(res["tasks"]), n_boot, seed, str(bench.train_path), str(bench.prior))
    base = _BASELINES.get(key)
    if base is None:
        prior = baseline_prior(bench, gold)  # train split or spec prior; else the test prior, named an oracle
        base = (baselines(gold, bench.splits, res["tasks"], n_boot=n_boot, seed=seed, unit="auto", prior=prior,
                          target=(bench.task("categorical") or bench.tasks[0]).target), baseline_info(prior))
        _BASELINES[key] = base
    res["baselines"], res["baseline_prior"] = base
    return res


def _public_losses(items, part: str, path: str) -> tuple[str, list[float]]:
    """(task kind, per-item losses) of the benchmark's first scored task on a part's items."""
    from casebench.evaluate import prediction_arrays, scored_tasks
    from casebench.leaderboard.phases import filter_lines, item_losses
    from casebench.predictions import parse_predictions

    bench = items.benchmark_of(part)
    gold = bench.load_gold()
    fd, tmp = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    try:
        filter_lines(path, tmp, gold.ids.tolist())
        preds = parse_predictions(tmp, gold)
    finally:
        os.unlink(tmp)
    tasks = scored_tasks(bench, preds)
    kind = tasks[0]
    return kind, item_losses(kind, gold, prediction_arrays(preds, gold, tasks)).tolist()


def score_job(defn: dict, path: str, model: dict) -> bytes:
    """Score one stored upload on its board; returns JSON bytes ``{"results", "public", "losses", "kind"}``:
    the final results object (the private part of a partitioned test phase, else the phase's items) and,
    for a test phase whose submitter gets feedback, the public part's rounded headline scores or its
    per-item losses for the Ladder."""
    from casebench.leaderboard.phases import round_entry

    items = _items(defn)
    fp = items.benchmark_of("phase").load_gold().fingerprint
    if defn.get("fingerprint") and fp != defn["fingerprint"]:  # this machine's fault, not the submitter's
        raise RuntimeError(f"board gold differs on this machine ({fp[:19]}…, the server has "
                          f"{defn['fingerprint'][:19]}…): install the same benchmark version")
    n_boot, seed = int(defn["n_boot"]), int(defn["seed"])
    hidden, partitioned = defn.get("hidden", False), items.partitioned
    out: dict = {"results": _evaluate_part(items, "private" if hidden and partitioned else "phase", path, n_boot,
                                           seed, model)}
    if hidden and defn.get("feedback"):
        part = "public" if partitioned else "phase"
        if defn.get("ladder", True):
            out["kind"], out["losses"] = _public_losses(items, part, path)
        else:
            pub = _evaluate_part(items, part, path, n_boot, seed, model)
            out["public"] = {split: {m: round_entry(e) for m, e in ms.items() if isinstance(e, dict)}
                             for split, ms in pub["splits"].items()}
    return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def compare_job(defn: dict, path_a: str, path_b: str) -> bytes:
    """Paired p-values ``{split: {metric: p}}`` of two stored uploads on the part the board ranks on."""
    from casebench.evaluate import compare

    items = _items(defn)
    part = "private" if defn.get("hidden") and items.partitioned else "phase"
    bench = items.benchmark_of(part)
    paths = [path_a, path_b]
    tmps = []
    if part != "phase":
        from casebench.leaderboard.phases import filter_lines

        ids = bench.load_gold().ids.tolist()
        for i, p in enumerate(paths):
            fd, tmp = tempfile.mkstemp(suffix=".jsonl")
            os.close(fd)
            filter_lines(p, tmp, ids)
            tmps.append(tmp)
            paths[i] = tmp
    try:
        res = compare(paths[0], paths[1], bench, n_boot=int(defn["n_boot"]), seed=int(defn["seed"]))
    finally:
        for t in tmps:
            os.unlink(t)
    return orjson.dumps({split: {m: e.get("p_value") for m, e in metrics.items()}
                         for split, metrics in res["splits"].items()})


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _serve(conn) -> None:
    """A scoring process: one BLAS thread (one process per core already), the scorer imported before the
    first job, then jobs from the pipe until ``None`` or until the parent goes away (EOF)."""
    import signal

    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the parent decides (it drains,
    # then sends None; it kills a process that does not stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    import casebench.evaluate  # noqa: F401
    import casebench.predictions  # noqa: F401
    from casebench.errors import CasebenchError

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply = (True, fn(*args))
        except CasebenchError as e:
            reply = (False, (str(e), True))
        except Exception as e:  # noqa: BLE001 - sent back to the parent, which records it
            reply = (False, (f"{type(e).__name__}: {e}", False))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ScoringProcess:
    """One scoring process and its pipe; :meth:`run` raises :class:`WorkerDied` when it dies under a job."""

    def __init__(self):
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")  # not fork: the server has threads and connections
        self.proc = None
        self.conn = None
        self.replaced = 0
        self.start()

    def start(self) -> None:
        parent, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_serve, args=(child,), name="casebench-scoring", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def ensure(self) -> None:
        """Replace the process if it died (between jobs, e.g. killed while idle)."""
        if not self.alive():
            log.warning("scoring process %s is gone (exit code %s): starting a new one",
                        self.proc.pid if self.proc else "?", self.proc.exitcode if self.proc else "?")
            self.close(0)
            self.start()
            self.replaced += 1

    def run(self, fn, *args) -> bytes:
        from multiprocessing.connection import wait

        self.ensure()
        try:
            self.conn.send((fn, args))
        except (BrokenPipeError, OSError):
            self.ensure()
            raise WorkerDied("the scoring process was gone before the job started") from None
        while True:
            ready = wait([self.conn, self.proc.sentinel], timeout=5.0)
            if self.conn in ready:
                try:
                    ok, value = self.conn.recv()
                except (EOFError, OSError):
                    ready = [self.proc.sentinel]
                else:
                    if ok:
                        return value
                    raise JobFailed(*value)
            if self.proc.sentinel in ready:
                self.proc.join(1)
                code = self.proc.exitcode
                self.ensure()
                raise WorkerDied(f"the scoring process died under the job (exit code {code})")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the process: ask (``None``), then kill."""
        if self.proc is None:
            return
        try:
            if self.proc.is_alive():
                with contextlib.suppress(BrokenPipeError, OSError):
                    self.conn.send(None)
                self.proc.join(timeout)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(2)
        finally:
            with contextlib.suppress(OSError):
                self.conn.close()


# -- the worker ---------------------------------------------------------------------------------------


class Worker:
    """Threads that claim jobs and run them, each in its own scoring process (unless ``processes == 0``).

    Args:
        db: the leaderboard's :class:`~casebench.leaderboard.db.Database` (or a Leaderboard: its ``db``).
        processes: scoring processes (and claiming threads); 0 scores in one thread of this process.
        name: who claims (``claimed_by``): ``server`` for the server's own scorer, else host:pid.
        poll_s: how often an idle thread looks at the queue (it is also woken by :meth:`wake`).
        lease_s: how long a claim holds without a heartbeat.
        drain_s: at :meth:`stop`, how long running jobs get to finish.
        requeue_own: at start, put back jobs left running under ``name`` (the server's restart).
    """

    def __init__(self, db, processes: int = 2, name: str | None = None, poll_s: float = 1.0,
                 lease_s: float = LEASE_S, drain_s: float = 30.0, requeue_own: bool = True):
        self.lb = db if not isinstance(db, Database) else None
        self.db: Database = db.db if self.lb is not None else db
        self.processes = max(0, int(processes))
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_s, self.lease_s, self.drain_s = poll_s, lease_s, drain_s
        self.requeue_own = requeue_own
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._pending = 0
        self._threads: list[threading.Thread] = []
        self._slots: list[ScoringProcess] = []
        self._held: dict[str, type] = {}  # claim -> table, renewed by the heartbeat
        self._held_lock = threading.Lock()
        self._defs: dict[str, dict] = {}
        self.scored = 0
        self.retried = 0

    # -- life cycle --

    def start(self) -> Worker:
        n = requeue(self.db, self.name if self.requeue_own else None)
        if n:
            log.warning("re-queued %d submission(s): left running by a stopped server, lease expired, or failed by "
                        "infrastructure", n)
        self._requeue_comparisons()
        self._slots = [ScoringProcess() for _ in range(self.processes)]
        for i in range(max(1, self.processes)):
            t = threading.Thread(target=self._loop, args=(i,), name=f"casebench-scorer-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        hb = threading.Thread(target=self._heartbeat, name="casebench-lease", daemon=True)
        hb.start()
        self._threads.append(hb)
        return self

    def stop(self, drain_s: float | None = None) -> None:
        """Stop claiming; give running jobs ``drain_s`` to finish; put back what still runs; stop every
        scoring process."""
        import time

        self._stop.set()
        self.wake()
        deadline = time.monotonic() + (self.drain_s if drain_s is None else drain_s)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._release_held()
        for slot in self._slots:
            slot.close(timeout=2.0)

    def health(self) -> dict:
        alive = sum(s.alive() for s in self._slots)
        threads = sum(t.is_alive() for t in self._threads)
        return {"name": self.name, "processes": self.processes, "alive": alive,
                "replaced": sum(s.replaced for s in self._slots), "retried": self.retried, "scored": self.scored,
                "threads_alive": threads, "stopping": self._stop.is_set(),
                "ok": not self._stop.is_set() and threads >= 1 and (self.processes == 0 or alive >= 1)}

    def wake(self, *_args) -> None:
        with self._wake:
            self._pending += 1
            self._wake.notify_all()

    def _idle(self) -> None:
        with self._wake:
            if not self._pending:
                self._wake.wait(self.poll_s)
            self._pending = max(0, self._pending - 1)

    def _run(self, slot: int, fn, *args) -> bytes:
        if not self._slots:
            from casebench.errors import CasebenchError

            try:
                return fn(*args)
            except CasebenchError as e:
                raise JobFailed(str(e), True) from None
        return self._slots[slot].run(fn, *args)

    def _loop(self, slot: int) -> None:
        while not self._stop.is_set():
            try:
                if self._slots:
                    self._slots[slot].ensure()
                job = self.claim_submission()
                if job is not None:
                    self._score(*job, slot=slot)
                    continue
                cmp = self.claim_comparison()
                if cmp is not None:
                    self._compare(*cmp, slot=slot)
                    continue
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the scorer thread
                log.exception("scoring worker: unexpected error; retrying")
                self._stop.wait(self.poll_s)
                continue
            self._idle()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._held_lock:
                held = dict(self._held)
            claims = [c for c, model in held.items() if model is Submission]
            if not claims:
                continue
            try:
                with self.db.write() as s:
                    s.execute(update(Submission).where(Submission.claim.in_(claims), Submission.status == "running")
                              .values(lease_until=utcnow() + _dt.timedelta(seconds=self.lease_s)))
            except Exception:  # noqa: BLE001 - retried at the next beat
                log.exception("lease renewal failed")

    def _release_held(self) -> None:
        """Jobs still running at stop go back to the queue (nothing was recorded for them)."""
        with self._held_lock:
            held = dict(self._held)
            self._held.clear()
        for claim, model in held.items():
            try:
                with self.db.write() as s:
                    values = dict(status="queued", claim=None)
                    if model is Submission:
                        values["claimed_by"] = None
                    s.execute(update(model).where(model.claim == claim, model.status == "running").values(**values))
            except Exception:  # noqa: BLE001 - the lease runs out and the job is re-queued anyway
                log.exception("could not release claim %s", claim)

    # -- board definitions (written by the server) --

    def definition(self, board: str) -> dict | None:
        d = self._defs.get(board)
        if d is None:
            with self.db.read() as s:
                row = s.get(BoardDef, board)
            if row is None or row.definition in ("", "{}"):
                return None
            d = {**orjson.loads(row.definition), "key": row.partition_key}
            self._defs[board] = d
        return d

    # -- submissions --

    def claim_submission(self) -> tuple[int, str] | None:
        """(submission id, claim) of the oldest queued submission, now ``running``; None when none is queued."""
        now = utcnow()
        with self.db.write() as s:  # a job whose worker stopped renewing its lease goes back to the queue
            s.execute(update(Submission).where(Submission.status == "running", Submission.lease_until < now)
                      .values(status="queued", claim=None, claimed_by=None))
        return self._claim(Submission, started_at=utcnow, attempts=lambda: Submission.attempts + 1,
                           claimed_by=lambda: self.name,
                           lease_until=lambda: utcnow() + _dt.timedelta(seconds=self.lease_s))

    def _claim(self, model, **values) -> tuple[int, str] | None:
        """Claim the oldest queued row of ``model`` (see the module docstring); ``values`` are callables
        giving extra columns to set."""
        while True:
            with self.db.write() as s:
                rid = s.scalar(select(model.id).where(model.status == "queued").order_by(model.id).limit(1)
                               .with_for_update(skip_locked=True))
                if rid is None:
                    return None
                claim = uuid.uuid4().hex
                extra = {k: v() for k, v in values.items()}
                n = s.execute(update(model).where(model.id == rid, model.status == "queued")
                              .values(status="running", claim=claim, **extra)).rowcount
            if n == 1:
                with self._held_lock:
                    self._held[claim] = model
                return rid, claim

    def _upload_file(self, s, sub: Submission) -> str:
        """The stored upload, written to a private temporary file (the caller deletes it)."""
        data = s.scalar(select(Upload.data).where(Upload.id == sub.upload_id))
        fd, path = tempfile.mkstemp(prefix=f"casebench-sub{sub.id}-", suffix=".jsonl")
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.decompress(data))
        return path

    def _score(self, sid: int, claim: str, slot: int = 0) -> None:
        from casebench.results import model_info

        with self.db.read() as s:
            sub = s.get(Submission, sid)
            path = self._upload_file(s, sub)
        defn = self.definition(sub.board)
        # the submitter's metadata as stored (validated on upload by service.Metadata.parse)
        model = model_info(sub.model_name, sub.model_revision or None, sub.model_url or None, sub.model_parameters,
                           orjson.loads(sub.trained_on), sub.description or None)
        values: dict
        out = None
        try:
            if defn is None:
                raise JobFailed(f"board {sub.board!r} is not served any more", False)
            out = orjson.loads(self._run(slot, score_job, defn, path, model))
            values = {"status": "done", "results": orjson.dumps(out["results"]).decode(), "error": None,
                      "failure": None, "score_count": Submission.score_count + 1}
        except JobFailed as e:
            if not e.input:
                log.error("scoring submission %s failed: %s", sid, e)
            values = {"status": "failed", "error": str(e)[:2000], "failure": "input" if e.input else "infra"}
        except WorkerDied as e:
            log.warning("submission %s: %s", sid, e)
            values = {"status": "failed", "error": str(e)[:2000], "failure": "infra"}
        except Exception as e:  # noqa: BLE001 - an infrastructure failure, recorded and retried
            log.exception("scoring submission %s failed", sid)
            values = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000], "failure": "infra"}
        finally:
            os.unlink(path)
        if values["status"] == "failed" and values["failure"] == "infra":
            if self._stop.is_set():
                return  # shutting down: released to the queue by stop()
            if sub.attempts < MAX_ATTEMPTS:  # retried (bounded): back to the queue
                values = {"status": "queued", "error": values["error"]}
                self.retried += 1
        with self.db.write() as s:
            n = s.execute(update(Submission).where(Submission.id == sid, Submission.claim == claim,
                                                   Submission.status == "running")
                          .values(finished_at=utcnow() if values["status"] != "queued" else None, claim=None,
                                  claimed_by=None, lease_until=None, **values)).rowcount
            if n == 1 and out is not None and values["status"] == "done" and "losses" in out:
                fb = self._ladder(s, sub, defn, out["kind"], np.asarray(out["losses"], dtype=float))
                s.execute(update(Submission).where(Submission.id == sid).values(feedback=orjson.dumps(fb).decode()))
            elif n == 1 and out is not None and values["status"] == "done" and "public" in out:
                fb = {"kind": "rounded", "part": "public" if _items(defn).partitioned else "phase",
                      "splits": out["public"]}
                s.execute(update(Submission).where(Submission.id == sid).values(feedback=orjson.dumps(fb).decode()))
        with self._held_lock:
            self._held.pop(claim, None)
        if n != 1:
            log.warning("submission %s: claim %s lost before the result was recorded; result dropped", sid, claim)
        elif values["status"] == "done":
            self.scored += 1

    def _ladder(self, s, sub: Submission, defn: dict, kind: str, losses: np.ndarray) -> dict:
        """One Ladder round for the submitter (in the finishing transaction, under a lock on their state)."""
        from casebench.leaderboard.phases import LADDER_SCORE, ci_step, ladder_update, loss_to_score, round_to

        st = s.scalar(select(LadderState).where(LadderState.board == sub.board, LadderState.user_id == sub.user_id)
                      .with_for_update())
        best = None if st is None else np.frombuffer(st.best_losses, dtype=np.float64)
        if best is not None and len(best) != len(losses):
            best = None  # the board's items changed: start over
        r = ladder_update(best, losses, float(defn.get("ladder_step") or 0.0),
                          None if st is None or best is None else st.shown)
        if st is None:
            st = LadderState(board=sub.board, user_id=sub.user_id, best_id=sub.id, best_losses=b"", shown=r.loss,
                             rounds=0)
            s.add(st)
        st.rounds = (st.rounds or 0) + 1
        if r.released:
            st.best_id, st.best_losses, st.shown = sub.id, losses.astype(np.float64).tobytes(), r.loss
        metric, _ = LADDER_SCORE[kind]
        # shown to the precision its 95% interval supports (normal approximation over the items)
        best_losses = np.frombuffer(st.best_losses, dtype=np.float64) if st.best_losses else losses
        half = 1.96 * float(np.std(best_losses, ddof=1)) / np.sqrt(len(best_losses)) if len(best_losses) > 1 else 0
        step = ci_step({"ci_low": 0.0, "ci_high": 2 * half}) or 0.01
        return {"kind": "ladder", "metric": metric, "part": "public" if _items(defn).partitioned else "phase",
                "shown": round_to(loss_to_score(kind, st.shown), step), "step": step, "moved": r.released,
                "round": st.rounds}

    # -- comparisons --

    def _requeue_comparisons(self) -> None:
        with self.db.write() as s:
            s.execute(update(Comparison).where(Comparison.status == "running").values(status="queued", claim=None))

    def claim_comparison(self) -> tuple[int, str] | None:
        """(comparison id, claim) of the oldest queued paired comparison, now ``running``."""
        return self._claim(Comparison)

    def _compare(self, cid: int, claim: str, slot: int = 0) -> None:
        paths: list[str] = []
        try:
            with self.db.read() as s:
                c = s.get(Comparison, cid)
                a, b = s.get(Submission, c.a_id), s.get(Submission, c.b_id)
                paths = [self._upload_file(s, a), self._upload_file(s, b)]
            defn = self.definition(a.board)
            data = self._run(slot, compare_job, defn, *paths)
            values = {"status": "done", "p_values": data.decode()}
        except Exception:  # noqa: BLE001 - recorded; the board falls back to CI overlap for this pair
            log.exception("comparison %s failed", cid)
            values = {"status": "queued" if self._stop.is_set() else "failed"}
        finally:
            for p in paths:
                Path(p).unlink(missing_ok=True)
        with self.db.write() as s:
            s.execute(update(Comparison).where(Comparison.id == cid, Comparison.claim == claim)
                      .values(claim=None, **values))
        with self._held_lock:
            self._held.pop(claim, None)


def run_worker(db_url: str, processes: int = 2, drain_s: float = 30.0, poll_s: float = 1.0) -> Worker:
    """``casebench leaderboard worker``: score jobs of the database at ``db_url`` until SIGTERM or Ctrl-C.

    The boards come from the database (written there by ``casebench leaderboard serve``); the benchmarks
    they name must be installed here too (the gold fingerprint is checked before each job)."""
    import signal

    db = Database(db_url)
    w = Worker(db, processes=processes, poll_s=poll_s, drain_s=drain_s, requeue_own=False).start()
    done = threading.Event()

    def _on_signal(_signum, _frame):
        done.set()

    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not done.wait(1.0):
            pass
    finally:
        w.stop()
        for sig, h in old.items():
            signal.signal(sig, h)
        db.dispose()
    return w
