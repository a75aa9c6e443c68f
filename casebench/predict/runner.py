"""Running a model over clips: batches, engines, a resumable predictions file and its metadata sidecar.

Resuming. The predictions file is JSON Lines, appended one batch at a time: the batch's lines are written
with one ``write`` of whole lines, then flushed and fsynced. A run killed at any moment (even ``kill -9``)
leaves every finished batch on disk and at most a torn last line (a write cut short, without its newline);
a re-run drops that torn line (truncating the file to its last newline, and saying so in the report), reads
the ids already there and predicts only the others, so no line is lost or written twice.

Metadata. At the end of a run ``<out>.meta.json`` records the model (``name``, ``revision``,
``parameters``, ``trained_on``: the shape of :func:`casebench.results.model_info`), the benchmark, the
source of the audio, the engine and the sha256 of the finished predictions file. ``casebench evaluate``
and ``casebench submit`` read it (:func:`sidecar_model`) when it matches the file they are given; options
given on their command line win. Every run writes a first sidecar before any line, with the model's kind and
spec, a published dataset's pin (Hub commit, or folder) and ``"complete": false``: a resumed run must run the
same model (:func:`check_same_model`) on the same data (:func:`check_same_dataset`, since a branch may have
moved in between).

Engines. ``local`` runs the batches in this process. ``ray`` runs the same batches on Ray Data, as
:mod:`casebench.transcribe` does: ``from_items`` of the planned batches (clips pickled), ``map_batches``
through an actor pool with one model copy per actor (``concurrency`` actors of ``num_cpus`` CPUs), and the
driver appends each batch that comes back, so resuming works the same way. Feature extraction of a probe's
train clips goes through the same engine (:func:`map_clips`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from casebench.errors import CasebenchError, ConfigError, InputError, Problem
from casebench.predict.base import ABSTAIN, Item, Model
from casebench.predict.sources import Clip, Clips, load_clip

ENGINES = ("local", "ray")
SIDECAR_SUFFIX = ".meta.json"
ABSTAINED_SUFFIX = ".abstained.jsonl"


# --------------------------------------------------------------------------------------------------
# The predictions file: what is done, appending, the sidecar


@dataclass
class Done:
    """What a predictions file already holds."""

    ids: set[str] = field(default_factory=set)
    n_lines: int = 0
    repaired: str | None = None


def read_done(out: Path) -> Done:
    """The ids already in ``out`` (an absent file holds none). A torn last line (no newline: a write cut
    short by a kill) is removed from the file and described in ``repaired``.

    Raises:
        InputError: a complete line that is not a JSON object with a string ``id``, or an id twice: the file
            was not written by ``casebench predict`` alone; nothing is changed.
    """
    if not out.exists():
        return Done()
    if out.is_dir():
        raise InputError(Problem("is a directory", file=str(out), expected="a predictions file (JSON Lines)"))
    data = out.read_bytes()
    if data[:2] == b"\x1f\x8b":
        raise ConfigError(f"--out {out}: the file is gzip-compressed; predict appends to plain JSON Lines (compress "
                          "it when the run is finished)")
    repaired = None
    end = data.rfind(b"\n") + 1
    if end < len(data):
        repaired = (f"dropped a torn last line of {len(data) - end} bytes (a write interrupted by a kill): "
                    f"{data[end:end + 60]!r}; its clip is predicted again")
        with open(out, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
        data = data[:end]
    done = Done(repaired=repaired)
    problems = []
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            problems.append(Problem(f"not JSON ({e})", file=str(out), line=lineno))
            continue
        cid = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(cid, str):
            problems.append(Problem("no string 'id'", file=str(out), line=lineno, field="id"))
        elif cid in done.ids:
            problems.append(Problem("duplicate id", file=str(out), line=lineno, id=cid, field="id"))
        else:
            done.ids.add(cid)
        done.n_lines += 1
    if problems:
        raise InputError(problems, summary=f"--out {out} holds lines predict cannot resume from; move it away or "
                                           "give another --out")
    return done


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (created when absent) while a run writes it: a second run on the same
    file (two terminals, a retry while the first still runs) would predict the same clips twice."""
    import fcntl

    if out.is_dir():
        raise InputError(Problem("is a directory", file=str(out), expected="a predictions file (JSON Lines)"))
    with open(out, "ab") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"--out {out}: another casebench predict is writing this file; wait for it to "
                              "finish, or give another --out") from None
        yield


def append_lines(f, records: Sequence[dict]) -> None:
    """Append records as whole JSON lines with one write, then flush and fsync: a kill loses at most this
    batch, and can only leave a torn last line (which :func:`read_done` drops)."""
    if not records:
        return
    f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
    f.flush()
    os.fsync(f.fileno())


def sidecar_path(predictions: str | os.PathLike) -> Path:
    """``<predictions>.meta.json``."""
    p = Path(predictions)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def abstained_path(predictions: str | os.PathLike) -> Path:
    """``<predictions>.abstained.jsonl``: the clips a model answered without a prediction (see :data:`ABSTAIN`)."""
    p = Path(predictions)
    return p.with_name(p.name + ABSTAINED_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def sidecar_model(predictions: str | os.PathLike, sha256: str | None = None) -> tuple[dict | None, str | None]:
    """The model metadata ``casebench predict`` wrote beside ``predictions``, and a note.

    Returns ``(model, note)``: ``model`` in :func:`casebench.results.model_info`'s shape, or None when there
    is no sidecar, it is unreadable, or it describes another version of the file (its sha256 differs from
    ``sha256``, or from the file's own when ``sha256`` is None); ``note`` says which, or None.
    """
    side = sidecar_path(predictions)
    if not side.is_file():
        return None, None
    try:
        meta = json.loads(side.read_text("utf-8"))
        if isinstance(meta, dict) and meta.get("complete") is False:  # pinned a dataset, then stopped
            return None, (f"ignored the metadata sidecar {side}: the run writing {Path(predictions).name} has "
                          "not finished")
        model = meta["model"]
        recorded = meta["predictions"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"ignored the metadata sidecar {side}: unreadable ({e})"
    if sha256 is None:
        try:
            sha256 = file_sha256(predictions)
        except OSError:
            return None, None
    if recorded != sha256:
        return None, (f"ignored the metadata sidecar {side}: it describes another version of the predictions "
                      "file (sha256 differs)")
    keys = ("name", "revision", "url", "parameters", "trained_on", "description")
    return {k: model.get(k) for k in keys}, f"model metadata from {side.name}"


def _dataset_text(pin: dict) -> str:
    if "hub" in pin:
        return (f"Hub dataset {pin['hub']} at commit {str(pin.get('commit'))[:12]} (revision "
                f"{pin.get('revision') or 'main'})")
    return f"dataset folder {pin.get('path')}"


def check_same_model(out: Path, model: Model, *, n_done: int) -> None:
    """A run that adds to ``out`` must run the model that wrote its lines (recorded in the sidecar before the
    first line): another model would skip every clip already there and leave one file of two models' answers,
    described as the second.

    Raises:
        InputError: naming the file, the model that wrote it and this run's model.
    """
    if not n_done:
        return
    side = sidecar_path(out)
    try:
        before = json.loads(side.read_text("utf-8")).get("model")
    except (OSError, ValueError, AttributeError):
        before = None
    hint = "give another --out, or delete the file (and its sidecar) to start over"
    if not isinstance(before, dict) or "kind" not in before:
        raise InputError(Problem(f"{n_done} prediction(s) already, but no {side.name} says which model wrote "
                                 "them", file=str(out), expected=f"a file that `casebench predict {model.name}` "
                                 "started", hint=hint))
    if (before.get("kind"), before.get("spec")) != (model.kind, model.spec):
        written_by = before.get("name") or f"{before.get('kind')}:{before.get('spec')}"
        raise InputError(Problem(f"{n_done} prediction(s) of {written_by}", file=str(out),
                                 expected=f"predictions of {model.name}, the model of this run", hint=hint))


def check_same_dataset(out: Path, clips: Clips, *, resuming: bool) -> None:
    """A run that adds to ``out`` must read the published dataset its lines came from: the same Hub commit
    (a branch may have moved since), or the same folder, as recorded in the sidecar (written at the start
    of a run on a dataset, see :func:`run`).

    Raises:
        ConfigError: naming both, when they differ.
    """
    side = sidecar_path(out)
    if not (resuming and clips.dataset and side.is_file()):
        return
    try:
        before = json.loads(side.read_text("utf-8")).get("dataset")
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(before, dict):
        return

    def key(pin: dict):
        return (pin.get("hub"), pin.get("commit")) if "hub" in pin else pin.get("path")

    if key(before) != key(clips.dataset):
        same = (f"--dataset {before['hub']} --revision {before.get('commit')}" if "hub" in before
                else f"--dataset {before.get('path')}")
        raise ConfigError(f"--out {out} holds predictions on {_dataset_text(before)}; this run reads "
                          f"{_dataset_text(clips.dataset)}. Finish it on the same data ({same}), or give "
                          "another --out")


def merge_model(explicit: dict | None, sidecar: dict | None) -> dict | None:
    """``explicit`` model fields (from the command line) over the sidecar's: a field given explicitly wins.

    >>> merge_model({"name": "mine", "trained_on": []}, {"name": "hf:x", "parameters": 5, "trained_on": ["a"]})
    {'name': 'mine', 'parameters': 5, 'trained_on': ['a']}
    """
    if sidecar is None:
        return explicit
    out = dict(sidecar)
    for k, v in (explicit or {}).items():
        if v not in (None, "", [], ()):
            out[k] = v
        else:
            out.setdefault(k, v)
    return out


# --------------------------------------------------------------------------------------------------
# Mapping a worker over clips, locally or on Ray


@dataclass
class BatchOut:
    """What one batch gave: the worker's results (one per readable clip), those clips, unreadable ones."""

    clips: list[Clip]
    results: list[Any]
    problems: list[Problem] = field(default_factory=list)


def run_batch(worker: Any, method: str, clips: Sequence[Clip]) -> BatchOut:
    """Decode ``clips`` at ``worker.sample_rate`` and call ``worker.<method>(items)``; clips whose audio cannot
    be decoded are reported and left out (a re-run tries them again)."""
    items, ok, problems = [], [], []
    for clip in clips:
        try:
            audio = load_clip(clip, worker.sample_rate)
        except InputError as e:
            problems += e.problems
            continue
        except Exception as e:  # noqa: BLE001 - any decoder failure is reported with the file, never fatal
            problems.append(Problem(f"unreadable audio ({type(e).__name__}: {e})", file=clip.where, id=clip.id))
            continue
        items.append(Item(clip.id, audio, clip.text, clip.path))
        ok.append(clip)
    results = getattr(worker, method)(items) if items else []
    if len(results) != len(items):
        raise CasebenchError(f"{getattr(worker, 'name', worker)}.{method} returned {len(results)} results for "
                             f"{len(items)} clips")
    return BatchOut(ok, list(results), problems)


def map_clips(worker: Any, method: str, clips: Sequence[Clip], *, batch_size: int, engine: str = "local",
              ray_options: dict | None = None) -> Iterator[BatchOut]:
    """Run ``worker.<method>`` over ``clips`` in batches of ``batch_size``; yields each :class:`BatchOut` as it
    finishes (in order locally, in completion order on Ray)."""
    batches = [list(clips[i:i + batch_size]) for i in range(0, len(clips), batch_size)]
    if engine == "local":
        for b in batches:
            yield run_batch(worker, method, b)
    elif engine == "ray":
        yield from _map_ray(worker, method, batches, **(ray_options or {}))
    else:
        from casebench.errors import unknown_name

        raise unknown_name("engine", engine, ENGINES)


class RayWorker:
    """Ray Data callable class: unpickles one worker (one model copy) per actor and runs :func:`run_batch` on
    each batch (a column ``clips`` of pickled clip lists); returns a column ``out`` of pickled BatchOuts."""

    def __init__(self, worker: bytes, method: str, threads: int):
        try:
            import torch

            torch.set_num_threads(max(1, threads))
        except ImportError:  # torch-free kinds (command:, probe:whisper-tiny.en) run without it
            pass
        self.worker = pickle.loads(worker)
        self.method = method

    def __call__(self, batch: dict) -> dict:
        out = [pickle.dumps(run_batch(self.worker, self.method, pickle.loads(bytes(b)))) for b in batch["clips"]]
        return {"out": np.array(out, dtype=object)}


def _map_ray(worker: Any, method: str, batches: Sequence[list[Clip]], *, concurrency: int | None = None,
             num_cpus: float | None = None, ray_address: str | None = None) -> Iterator[BatchOut]:
    from casebench.scale import ray_pool

    if not batches:
        return
    ray, num_cpus, concurrency = ray_pool(ray_address, num_cpus, concurrency)
    ctx = ray.data.DataContext.get_current()
    bars, ctx.enable_progress_bars = ctx.enable_progress_bars, False  # predict shows its own
    try:
        ds = ray.data.from_items([{"clips": pickle.dumps(b)} for b in batches], override_num_blocks=len(batches))
        ds = ds.map_batches(RayWorker, batch_size=1, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=num_cpus,
                            fn_constructor_kwargs={"worker": pickle.dumps(worker), "method": method,
                                                   "threads": int(num_cpus)})
        for block in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for b in block["out"]:
                yield pickle.loads(bytes(b))
    finally:
        ctx.enable_progress_bars = bars


# --------------------------------------------------------------------------------------------------
# The run


def run(model: Model, clips: Clips, out: str | os.PathLike, *, batch_size: int = 16, engine: str = "local",
        ray_options: dict | None = None, progress: bool | Callable[[int, int], None] = False,
        limit: int | None = None, extra_meta: dict | None = None) -> dict:
    """Predict every clip of ``clips`` not yet in ``out``, appending to it; write the sidecar; return a report.

    Args:
        model: a built model (its :meth:`~Model.prepare` is called here, once).
        clips: what to predict.
        out: the predictions file (JSON Lines, appended; created when absent).
        batch_size: clips per batch (per model call, and per append).
        engine, ray_options: ``local`` or ``ray`` (``concurrency``, ``num_cpus``, ``ray_address``).
        progress: True for a progress bar on stderr, or a callable ``(done, total)``.
        limit: predict at most this many pending clips in this run (the rest stay pending).
        extra_meta: more fields for the sidecar (benchmark, split...).

    Returns:
        The report: counts (``n_clips``, ``n_already_done``, ``n_predicted``, ``n_pending``), unreadable clips,
        ``repaired`` (a dropped torn line), throughput, the sidecar path.

    Raises:
        InputError: ``out`` holds lines predict did not write; after the run, clips whose audio could not be
            decoded (everything else is written; a re-run retries them).
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, not {batch_size}")
    if engine not in ENGINES:
        from casebench.errors import unknown_name

        raise unknown_name("engine", engine, ENGINES)
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(Problem("no such folder", file=str(out.parent), expected="an existing folder for --out"))
    with exclusive(out):
        done = read_done(out)
        abstained = read_done(abstained_path(out))  # answered without a prediction: done too (delete it to re-ask)
        done_ids = done.ids | abstained.ids
        known = set(clips.ids)
        stray = sorted(done_ids - known)
        if stray:
            raise InputError(Problem(f"{len(stray)} id(s) already in the file are not clips of {clips.source}: "
                                     f"{stray[:5]}", file=str(out), expected="a predictions file of the same clips",
                                     hint="give another --out, or the same benchmark, split and source as before"))
        check_same_dataset(out, clips, resuming=bool(done_ids))
        check_same_model(out, model, n_done=len(done_ids))
        pending = [c for c in clips.clips if c.id not in done_ids]
        if pending and not (done_ids and sidecar_path(out).is_file()):  # model (and dataset) before any line
            from casebench.workspace import atomic_write_text

            atomic_write_text(sidecar_path(out), json.dumps(
                {"model": {"name": model.name, "kind": model.kind, "spec": model.spec},
                 **({"dataset": clips.dataset} if clips.dataset else {}), "source": clips.source,
                 "complete": False, "predictions": {"file": out.name, "sha256": None}}, indent=2) + "\n")
        if limit is not None:
            pending = pending[:limit]
        total = len(pending)
        t0 = time.perf_counter()
        if pending or sidecar_model(out)[0] is None:  # a finished file with its sidecar needs no fitting
            model.prepare(engine=lambda worker, method, cl: map_clips(worker, method, cl, batch_size=batch_size,
                                                                       engine=engine, ray_options=ray_options))
        t_prepare = time.perf_counter() - t0
        problems: list[Problem] = []
        n_new = n_abstained = 0
        from casebench.progress import progress_bar

        report_progress = progress if callable(progress) else None
        t1 = time.perf_counter()
        with progress_bar(total, f"predict {model.name}", enabled=progress is True) as advance, open(out, "ab") as f:
            results: Iterable[BatchOut] = map_clips(model, "predict_batch", pending, batch_size=batch_size,
                                                    engine=engine, ray_options=ray_options)
            for res in results:
                records = _check_records(model, res)
                abstentions = [r for r in records if ABSTAIN in r]
                if abstentions:
                    records = [r for r in records if ABSTAIN not in r]
                    with open(abstained_path(out), "ab") as fa:
                        append_lines(fa, abstentions)
                append_lines(f, records)
                problems += res.problems
                n_new += len(records)
                n_abstained += len(abstentions)
                advance(len(res.clips) + len(res.problems))
                if report_progress:
                    report_progress(n_new + n_abstained + len(problems), total)
        elapsed = time.perf_counter() - t1
        model.close()
        n_pending = len(known) - len(done_ids) - n_new - n_abstained
        n_abstained_all = len(abstained.ids) + n_abstained
        report = {
            "model": model.name, "source": clips.source, "predictions": str(out), "engine": engine,
            "batch_size": batch_size, "n_clips": len(clips), "n_already_done": len(done_ids), "n_predicted": n_new,
            "n_abstained": n_abstained, "n_abstained_total": n_abstained_all,
            "abstained_file": str(abstained_path(out)) if n_abstained_all else None,
            "n_pending": n_pending, "n_unreadable": len(problems), "unreadable": [p.to_dict() for p in problems],
            "repaired": done.repaired, "prepare_s": round(t_prepare, 3), "elapsed_s": round(elapsed, 3),
            "clips_per_s": round(n_new / elapsed, 3) if elapsed > 0 and n_new else None,
        }
        if n_pending == 0 and (n_new or n_abstained or sidecar_model(out)[0] is None):
            meta = {"model": {**model.metadata(), "kind": model.kind, "spec": model.spec},
                    "predictions": {"file": out.name, "sha256": file_sha256(out),
                                    "n_lines": len(known) - n_abstained_all},
                    "abstained": {"file": abstained_path(out).name, "n": n_abstained_all,
                                  "note": "clips the model answered without a prediction; not in the predictions file: "
                                          "evaluate --allow-missing scores them as wrong"} if n_abstained_all else None,
                    "source": clips.source, **({"dataset": clips.dataset} if clips.dataset else {}),
                    "engine": engine, "batch_size": batch_size,
                    "casebench_version": _version(),
                    "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    **(extra_meta or {})}
            from casebench.workspace import atomic_write_text

            atomic_write_text(sidecar_path(out), json.dumps(meta, indent=2, default=str) + "\n")
            report["model_metadata"] = meta["model"]
        if n_pending == 0:
            report["metadata"] = str(sidecar_path(out))
        if problems:
            raise InputError(problems, summary=f"{len(problems)} clip(s) could not be decoded and were not predicted "
                                               f"({n_new} others were written to {out}; a re-run retries these)")
        return report


def _check_records(model: Model, res: BatchOut) -> list[dict]:
    """The model's records for a batch, checked to carry the batch's ids in order (a kind's bug otherwise)."""
    records = res.results
    for clip, rec in zip(res.clips, records, strict=True):
        if not isinstance(rec, dict) or rec.get("id") != clip.id:
            got = rec.get("id") if isinstance(rec, dict) else type(rec).__name__
            raise CasebenchError(f"model {model.name} gave a record for {got!r} where {clip.id!r} was expected")
    return records


def _version() -> str:
    from casebench import __version__

    return __version__
