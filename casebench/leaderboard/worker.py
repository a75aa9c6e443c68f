"""The scoring worker: takes queued submissions from the database, scores them off the request path.

The queue *is* the ``submissions`` table, so a restart loses nothing:

- **claim**: ``UPDATE submissions SET status='running', claim=<uuid> WHERE id=:id AND status='queued'``; the
  worker that sees row count 1 owns the job (on SQLite inside ``BEGIN IMMEDIATE``; on PostgreSQL the
  ``WHERE`` is re-checked after the row lock, so two workers never both win);
- **finish**: ``UPDATE ... SET status='done', results=..., score_count=score_count+1 WHERE id=:id AND
  claim=<uuid> AND status='running'``: a result is recorded once, by the claim holder only;
- **start-up**: jobs left ``running`` by a stopped server are put back to ``queued``
  (:meth:`Leaderboard.requeue_running`) and scored again; their first run never recorded anything. This
  assumes one server process per database (run more scoring capacity with ``--workers``, not with several
  servers).

Scoring runs in a pool of worker *processes* (``workers`` in the config; 0 = in the worker thread, for
tests), so the numpy work neither holds the web server's GIL nor waits on it. Each job calls
:func:`casebench.evaluate.evaluate`, the very scorer of the CLI, with ``with_baselines=False``: the constant
baselines depend only on the gold, the tasks and the bootstrap settings, so each process computes them once
per board and attaches the same values to every result.

When no submission is queued, the worker computes queued :class:`~casebench.leaderboard.db.Comparison` rows:
paired bootstrap tests (:func:`casebench.evaluate.compare`) between neighbouring board rows, which decide
rank ties.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from sqlalchemy import select, update

from casebench.leaderboard.db import Comparison, Submission, utcnow

log = logging.getLogger(__name__)


# -- the jobs (run in pool processes; module-level so that they pickle) ----------------------------------


@functools.cache
def _bench(ref: str):
    from casebench.benchmarks import get_benchmark

    return get_benchmark(ref)


_BASELINES: dict[tuple, dict] = {}


def score_job(bench_ref: str, path: str, n_boot: int, seed: int, model: dict) -> bytes:
    """Score one stored upload; returns the results object as JSON bytes."""
    from casebench.evaluate import baselines, evaluate

    bench = _bench(bench_ref)
    res = evaluate(path, bench, n_boot=n_boot, seed=seed, unit="auto", model=model, with_baselines=False)
    key = (bench_ref, res["dataset_fingerprint"], tuple(res["tasks"]), n_boot, seed)
    base = _BASELINES.get(key)
    if base is None:
        base = baselines(bench.load_gold(), bench.splits, res["tasks"], n_boot=n_boot, seed=seed, unit="auto")
        for r in base.values():
            for split_scores in r.values():
                split_scores.pop("by_dimension", None)
        _BASELINES[key] = base
    res["baselines"] = base
    return orjson.dumps(res, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def compare_job(bench_ref: str, path_a: str, path_b: str, n_boot: int, seed: int) -> bytes:
    """Paired p-values ``{split: {metric: p}}`` of two stored uploads."""
    from casebench.evaluate import compare

    res = compare(path_a, path_b, _bench(bench_ref), n_boot=n_boot, seed=seed)
    return orjson.dumps({split: {m: e.get("p_value") for m, e in metrics.items()}
                         for split, metrics in res["splits"].items()})


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _init_process() -> None:
    """A pool process: one BLAS thread (the pool already has one process per core: more threads only
    oversubscribe them), then import the scorer before the first job arrives."""
    import os

    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    import casebench.evaluate  # noqa: F401
    import casebench.predictions  # noqa: F401


def _noop() -> None:
    pass


# -- the worker ---------------------------------------------------------------------------------------


class Worker:
    """Threads that claim jobs and run them (in a process pool unless ``processes == 0``).

    Args:
        lb: the :class:`~casebench.leaderboard.service.Leaderboard`.
        processes: scoring processes (and claiming threads); 0 scores in one thread of this process.
        poll_s: how often an idle thread looks at the queue (it is also woken by :meth:`wake`).
    """

    def __init__(self, lb, processes: int = 2, poll_s: float = 1.0):
        self.lb = lb
        self.processes = max(0, int(processes))
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._pending = 0
        self._threads: list[threading.Thread] = []
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> Worker:
        n = self.lb.requeue_running()
        if n:
            log.warning("re-queued %d submission(s) left running by a stopped server", n)
        self._requeue_comparisons()
        if self.processes:
            import multiprocessing

            # spawn, not fork: the server process has threads and database connections
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_process)
            for _ in range(self.processes):
                self._pool.submit(_noop)  # start the processes now rather than at the first upload
        for i in range(max(1, self.processes)):
            t = threading.Thread(target=self._loop, name=f"casebench-scorer-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self, *_args) -> None:
        with self._wake:
            self._pending += 1
            self._wake.notify_all()

    def _idle(self) -> None:
        with self._wake:
            if not self._pending:
                self._wake.wait(self.poll_s)
            self._pending = max(0, self._pending - 1)

    def _run(self, fn, *args) -> bytes:
        if self._pool is None:
            return fn(*args)
        return self._pool.submit(fn, *args).result()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.claim_submission()
                if job is not None:
                    self._score(*job)
                    continue
                cmp = self.claim_comparison()
                if cmp is not None:
                    self._compare(*cmp)
                    continue
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the scorer thread
                log.exception("scoring worker: unexpected error; retrying")
                self._stop.wait(self.poll_s)
                continue
            self._idle()

    # -- submissions --

    def claim_submission(self) -> tuple[int, str] | None:
        """(submission id, claim) of the oldest queued submission, now ``running``; None when none is queued."""
        return self._claim(Submission, started_at=utcnow, attempts=lambda: Submission.attempts + 1)

    def _claim(self, model, **values) -> tuple[int, str] | None:
        """Claim the oldest queued row of ``model``: an UPDATE guarded by ``status == 'queued'``, so two
        claimers never get the same row (the loser retries with the next one). ``values`` are callables
        giving extra columns to set."""
        db = self.lb.db
        while True:
            with db.write() as s:
                rid = s.scalar(select(model.id).where(model.status == "queued").order_by(model.id).limit(1))
                if rid is None:
                    return None
                claim = uuid.uuid4().hex
                extra = {k: v() for k, v in values.items()}
                n = s.execute(update(model).where(model.id == rid, model.status == "queued")
                              .values(status="running", claim=claim, **extra)).rowcount
            if n == 1:
                return rid, claim

    def _score(self, sid: int, claim: str) -> None:
        lb = self.lb
        sub = lb.submission(sid)
        board = lb.boards.get(sub.board)
        from casebench.leaderboard.service import Metadata

        meta = Metadata(sub.model_name, sub.model_revision, sub.model_url, sub.model_parameters,
                        orjson.loads(sub.trained_on), sub.description)
        path = str(lb.config.data_dir / "uploads" / sub.upload_path)
        values: dict
        try:
            if board is None:
                raise LookupError(f"board {sub.board!r} is not served any more")
            data = self._run(score_job, board.benchmark, path, lb.config.n_boot, lb.config.seed, meta.model_info())
            values = {"status": "done", "results": data.decode(), "error": None,
                      "score_count": Submission.score_count + 1}
        except Exception as e:  # noqa: BLE001 - any scoring failure is recorded on the row, not raised
            log.exception("scoring submission %s failed", sid)
            values = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000]}
        if self._stop.is_set() and values["status"] == "failed":
            return  # shutting down: the pool was cancelled under the job; it is re-queued at the next start
        with lb.db.write() as s:
            n = s.execute(update(Submission).where(Submission.id == sid, Submission.claim == claim,
                                                   Submission.status == "running")
                          .values(finished_at=utcnow(), claim=None, **values)).rowcount
        if n != 1:
            log.warning("submission %s: claim %s lost before the result was recorded; result dropped", sid, claim)

    # -- comparisons --

    def _requeue_comparisons(self) -> None:
        with self.lb.db.write() as s:
            s.execute(update(Comparison).where(Comparison.status == "running").values(status="queued", claim=None))

    def claim_comparison(self) -> tuple[int, str] | None:
        """(comparison id, claim) of the oldest queued paired comparison, now ``running``."""
        return self._claim(Comparison)

    def _compare(self, cid: int, claim: str) -> None:
        lb = self.lb
        with lb.db.read() as s:
            c = s.get(Comparison, cid)
            a, b = s.get(Submission, c.a_id), s.get(Submission, c.b_id)
        board = lb.boards.get(a.board)
        up = Path(lb.config.data_dir) / "uploads"
        try:
            data = self._run(compare_job, board.benchmark, str(up / a.upload_path), str(up / b.upload_path),
                             lb.config.n_boot, lb.config.seed)
            values = {"status": "done", "p_values": data.decode()}
        except Exception:  # noqa: BLE001 - recorded; the board falls back to CI overlap for this pair
            log.exception("comparison %s failed", cid)
            values = {"status": "failed"}
        with lb.db.write() as s:
            s.execute(update(Comparison).where(Comparison.id == cid, Comparison.claim == claim)
                      .values(claim=None, **values))
