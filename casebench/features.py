"""Acoustic features of a workspace's clips: eGeMAPS v02 functionals from openSMILE, cached and resumable.

eGeMAPS (Eyben et al. 2016, "The Geneva Minimalistic Acoustic Parameter Set (GeMAPS) for Voice Research and
Affective Computing", IEEE Trans. Affective Computing 7(2)) is the standard small hand-crafted set for
speech emotion: 88 functionals per clip (means, spreads and percentiles of pitch, loudness, jitter, shimmer,
formants, spectral slope, MFCCs 1-4, voiced/unvoiced segment lengths). openSMILE ships its config inside
the ``opensmile`` Python package, so nothing is downloaded.

Extraction is the long step of the ``acoustic`` baseline (about 0.1 s of CPU per second of audio), so
:func:`workspace_features` writes each batch of results to the workspace's ``features`` journal
(:meth:`~casebench.workspace.Workspace.resumable`, keyed by the clip_id and the hash of :func:`feature_config`)
and a re-run, or a later baseline on the same workspace, reads them back instead of recomputing. A row also
records the audio file's sha256 (from ``clips.sha256``): a clip whose audio changed since is computed again.
CPU work is spread over a process pool (``workers`` processes, spawned, each with its own openSMILE
instance); ``workers=1`` runs in this process. As with any spawned pool, a script that calls this with
``workers`` > 1 must keep its top-level code under ``if __name__ == "__main__":`` (the workers import the
main module); the ``casebench`` command and pytest do.

A clip whose audio cannot be read is not dropped: it is listed in :attr:`FeatureTable.failed` with the
reason (and retried on the next run); a clip too short for openSMILE's windows gets NaN features (listed
in :attr:`FeatureTable.notes`), which the baseline imputes.

>>> import numpy as np
>>> from casebench.testing import speechlike
>>> values = egemaps(speechlike(0, 1.0), 16000)
>>> values.shape, len(feature_names()) == values.size, bool(np.isfinite(values).all())
((88,), True, True)
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from casebench.errors import MissingDependencyError

#: openSMILE feature set and level used by the acoustic baseline.
FEATURE_SET = "eGeMAPSv02"
FEATURE_LEVEL = "Functionals"
#: Journal step name in the workspace (``tables/.parts/features/<config hash>/``).
STEP = "features"
#: Fewest files worth a process pool: spawning a worker (Python, openSMILE, its extractor) takes about 1 s,
#: the work of some 20-30 clips of 3 s on this project's 2-core machine (bench/features.py).
POOL_MIN_CLIPS = 32
#: Sample rate the features are computed at (the workspace's rate; other rates are resampled first).
SAMPLE_RATE = 16000


def _opensmile():
    try:
        import opensmile
    except ImportError as e:
        raise MissingDependencyError("acoustic features need openSMILE: pip install 'casebench[features]' "
                                     f"(opensmile>=2.5) ({e})") from None
    return opensmile


@functools.cache
def smile():
    """The openSMILE extractor (eGeMAPSv02 functionals), one per process; MissingDependencyError without it."""
    opensmile = _opensmile()
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SET),
                           feature_level=getattr(opensmile.FeatureLevel, FEATURE_LEVEL))


def feature_names() -> list[str]:
    """The 88 feature names, in the order of every feature vector."""
    return list(smile().feature_names)


def feature_config() -> dict[str, Any]:
    """What the features depend on; its hash keys the cache (a new openSMILE version recomputes)."""
    return {"extractor": "opensmile", "version": _opensmile().__version__, "feature_set": FEATURE_SET,
            "feature_level": FEATURE_LEVEL, "sample_rate": SAMPLE_RATE}


def egemaps(x: np.ndarray, sr: int) -> np.ndarray:
    """eGeMAPS functionals (float64, 88) of a mono signal; NaN where a clip is too short to measure."""
    with warnings.catch_warnings():
        # "Segment too short, filling with NaN": reported per clip by the caller, not as a warning
        warnings.simplefilter("ignore", UserWarning)
        out = smile().process_signal(np.asarray(x, dtype=np.float32), sr)
    return out.to_numpy(dtype=np.float64)[0]


def file_features(path: str | os.PathLike) -> tuple[np.ndarray | None, str | None]:
    """(features, None) for an audio file, or (None, reason) when it cannot be read or measured.

    The signal is mixed down to mono and resampled to :data:`SAMPLE_RATE` when it is not at that rate.
    """
    from casebench.audio import decode, resample, to_mono
    from casebench.errors import CasebenchError

    try:
        x, sr = decode(path)
    except CasebenchError as e:
        return None, str(e).splitlines()[-1].strip()
    x = to_mono(x)
    if sr != SAMPLE_RATE:
        x, sr = resample(x, sr, SAMPLE_RATE), SAMPLE_RATE
    if x.size == 0:
        return None, "empty audio (0 samples)"
    try:
        return egemaps(x, sr), None
    except (RuntimeError, ValueError) as e:  # openSMILE's own errors (e.g. a config it cannot run)
        return None, f"openSMILE failed: {e}"


def _batch(paths: Sequence[str]) -> list[tuple[list[float] | None, str | None]]:
    """Worker task: features of a batch of files (lists, so they pickle small and go straight to Arrow)."""
    out = []
    for p in paths:
        values, error = file_features(p)
        out.append((None if values is None else values.tolist(), error))
    return out


def _init_worker() -> None:
    # one thread per process: the pool is the parallelism (numpy/BLAS threads would only compete)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    smile()  # build the extractor once per worker, before the first task


def _can_spawn() -> bool:
    """False when spawned workers could not re-import the main script (``python - < script``, a REPL file
    that is gone): then the work runs in this process, with a log line, rather than crashing the pool."""
    import logging
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is None or Path(main_file).is_file():
        return True
    logging.getLogger(__name__).info("main script %r is not a file: extracting features in this process", main_file)
    return False


def extract_files(paths: Sequence[str | os.PathLike], *, workers: int = 2, batch_size: int = 8,
                  on_batch=None, min_pool_clips: int | None = None) -> list[tuple[np.ndarray | None, str | None]]:
    """Features of many files, in order: ``[(features or None, error or None)]``.

    ``workers`` > 1 spreads batches of ``batch_size`` files over a spawned process pool; ``on_batch(start,
    results)`` is called in this process as each batch finishes (in completion order), which is where
    :func:`workspace_features` saves them. It runs here instead with ``workers`` <= 1, a single batch, fewer
    than ``min_pool_clips`` files (default :data:`POOL_MIN_CLIPS`: starting the workers costs more than
    it saves), or a main script that spawned workers cannot re-import (:func:`_can_spawn`).
    """
    paths = [str(p) for p in paths]
    batches = [(i, paths[i:i + batch_size]) for i in range(0, len(paths), batch_size)]
    results: list = [None] * len(paths)

    def done(start: int, res: list) -> None:
        res = [(None if v is None else np.asarray(v, dtype=np.float64), e) for v, e in res]
        results[start:start + len(res)] = res
        if on_batch is not None:
            on_batch(start, res)

    small = len(paths) < (POOL_MIN_CLIPS if min_pool_clips is None else min_pool_clips)
    if workers <= 1 or len(batches) <= 1 or small or not _can_spawn():
        for start, chunk in batches:
            done(start, _batch(chunk))
        return results
    import multiprocessing

    # spawn, not fork: the parent may hold Arrow/BLAS thread pools, which a forked child inherits broken
    with ProcessPoolExecutor(min(workers, len(batches)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker) as pool:
        pending = {pool.submit(_batch, chunk): start for start, chunk in batches}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done(pending.pop(fut), fut.result())
    return results


@dataclass
class FeatureTable:
    """Features of some clips: ``matrix`` (n, 88) aligned with ``ids``; NaN rows for :attr:`failed` clips.

    Attributes:
        ids: clip_ids, in the order asked for.
        matrix: float64 (n, 88); a row is all NaN when the clip failed, partly NaN when it was too short.
        names: feature names (columns of ``matrix``).
        failed: clip_id -> why its audio could not be read (not cached; retried next run).
        n_cached: rows read from the workspace's features journal.
        n_computed: rows computed now.
        config_hash: the hash of :func:`feature_config` keying the cache.
        elapsed_s: wall time of the call.
        notes: explicit choices (e.g. clips whose features are partly NaN).
    """

    ids: list[str]
    matrix: np.ndarray
    names: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    n_cached: int = 0
    n_computed: int = 0
    config_hash: str = ""
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _cached(journal, want: dict[str, str | None]) -> dict[str, np.ndarray]:
    """clip_id -> cached features whose sha256 matches ``want`` (the last matching row of any part wins)."""
    import pyarrow.parquet as pq

    out: dict[str, np.ndarray] = {}
    for part in journal.parts():
        t = pq.read_table(part, columns=["clip_id", "sha256", "values"]).to_pydict()
        for cid, sha, values in zip(t["clip_id"], t["sha256"], t["values"], strict=True):
            if cid in want and values is not None and want[cid] == sha:
                out[cid] = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return out


def workspace_features(workspace: Any, clip_ids: Sequence[str] | None = None, *, workers: int = 2,
                       batch_size: int = 8, progress: bool = False,
                       min_pool_clips: int | None = None) -> FeatureTable:
    """eGeMAPS features of a workspace's clips (all, or ``clip_ids``), from the cache or computed now.

    Computed rows are saved batch by batch in the ``features`` journal, so an interrupted run loses at most
    the batches in flight and the next call only computes what is missing.

    Raises:
        InputError: the clips table is missing, or ``clip_ids`` names clips it does not have.
        MissingDependencyError: opensmile is not installed.
    """
    from casebench.errors import InputError, Problem, did_you_mean
    from casebench.progress import progress_bar
    from casebench.workspace import Workspace

    started = time.monotonic()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    clips = ws.read_df("clips")
    index = {cid: i for i, cid in enumerate(clips["clip_id"].astype(str))}
    ids = list(index) if clip_ids is None else [str(c) for c in clip_ids]
    unknown = [c for c in ids if c not in index]
    if unknown:
        raise InputError([Problem("no such clip", id=c, file=str(ws.table_path("clips")),
                                  hint=did_you_mean(c, index)) for c in unknown],
                         summary=f"{len(unknown)} clip id(s) not in the clips table")
    sha = {c: (clips["sha256"].iloc[index[c]] if "sha256" in clips else None) for c in ids}
    sha = {c: (None if s is None or s != s else str(s)) for c, s in sha.items()}
    journal = ws.resumable(STEP, feature_config())
    names = feature_names()
    have = _cached(journal, sha)
    todo = [c for c in dict.fromkeys(ids) if c not in have]
    failed: dict[str, str] = {}
    computed: dict[str, np.ndarray] = {}
    paths = [str(ws.resolve(clips["path"].iloc[index[c]])) for c in todo]
    with progress_bar(len(todo), "features (eGeMAPS)", enabled=progress) as advance:
        def save(start: int, res: list) -> None:
            rows = []
            for cid, (values, error) in zip(todo[start:start + len(res)], res, strict=True):
                if values is None:
                    failed[cid] = error or "unknown error"
                    continue
                computed[cid] = values
                rows.append({"clip_id": cid, "sha256": sha[cid], "values": values.tolist()})
            if rows:
                journal.write(rows)
            advance(len(res))

        extract_files(paths, workers=workers, batch_size=batch_size, on_batch=save, min_pool_clips=min_pool_clips)
    matrix = np.full((len(ids), len(names)), np.nan)
    for i, c in enumerate(ids):
        row = have.get(c, computed.get(c))
        if row is not None:
            matrix[i] = row
    notes = []
    partial = [c for i, c in enumerate(ids) if c not in failed and np.isnan(matrix[i]).any()]
    if partial:
        notes.append(f"{len(partial)} clip(s) too short for some eGeMAPS features (NaN, imputed by the model): "
                     f"{partial[:10]}")
    return FeatureTable(ids=ids, matrix=matrix, names=names, failed=failed, n_cached=len(have),
                        n_computed=len(computed), config_hash=journal.config_hash,
                        elapsed_s=round(time.monotonic() - started, 3), notes=notes)


def clear_cache(workspace: Any) -> Path:
    """Delete the workspace's cached features of the current config; returns the journal folder."""
    from casebench.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    journal = ws.resumable(STEP, feature_config())
    journal.clear()
    return journal.dir
