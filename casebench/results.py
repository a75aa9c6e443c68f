"""The results object: what ``casebench evaluate`` writes and the leaderboard stores.

A results object is plain JSON. It carries everything needed to re-derive a score: benchmark name and
version, the gold table's fingerprint, scorer version (and git commit when run from a checkout), the
predictions file's sha256, model metadata, bootstrap settings and seed, and the scores laid out as
``results["splits"][SPLIT][METRIC] = {"value", "ci_low", "ci_high", "n"}`` (constant baselines under
``results["baselines"][NAME][SPLIT][METRIC]``). ``results["split_info"][SPLIT]`` says what each split is
(``kind``, the gold ``column``/``value`` selecting it) and, for a cross-corpus split, whether the model is
``zero_shot`` there (it did not declare that corpus in ``trained_on``). Benchmarks with cross-corpus splits
add ``results["cross_corpus_mean"][METRIC]``: the mean over those splits with a CI from the same bootstrap
(and ``cross_corpus_mean_zero_shot``, over the splits the model did not train on, when it trained on some).
"""

from __future__ import annotations

import datetime as _dt
import functools
import subprocess
from pathlib import Path

import orjson

from casebench import __version__
from casebench.errors import InputError, Problem

SCHEMA_VERSION = 1


@functools.cache
def git_commit() -> str | None:
    """The commit of the casebench checkout this code runs from, or None when not in a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def model_info(name: str | None = None, revision: str | None = None, url: str | None = None,
               parameters: int | None = None, trained_on: list[str] | None = None,
               description: str | None = None) -> dict:
    """Model metadata as stored in results (``trained_on`` lists corpora the model was trained on)."""
    return {"name": name, "revision": revision, "url": url, "parameters": parameters,
            "trained_on": [c.strip() for c in (trained_on or []) if c.strip()], "description": description}


def corpus_key(name: str) -> str:
    """A corpus name folded for matching: lower case, letters and digits only, so ``CREMA-D``, ``crema_d`` and
    ``cremad`` (EmoBox's spelling) are one corpus.

    >>> corpus_key("MSP-Podcast") == corpus_key("msppodcast")
    True
    """
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def zero_shot(benchmark, trained_on: list[str]) -> tuple[bool, list[str]]:
    """Whether a model trained on ``trained_on`` is zero-shot on the benchmark, and the overlapping corpora.

    Overlap is on :func:`corpus_key` (case, dashes and underscores ignored) of the benchmark's name and its
    ``corpora`` (and cross-corpus split values); the overlap is listed in the benchmark's spelling.

    >>> from casebench.benchmarks import get_benchmark
    >>> zero_shot(get_benchmark("casebench-mini"), ["IEMOCAP", "Mini_Acted"])
    (False, ['mini-acted'])
    """
    own = {benchmark.name.lower(), *(c.lower() for c in benchmark.corpora)}
    own |= {str(s.value).lower() for s in benchmark.splits if s.kind == "cross-corpus" and s.value}
    trained = {corpus_key(c) for c in trained_on if str(c).strip()}
    overlap = sorted(c for c in own if corpus_key(c) in trained)
    return not overlap, overlap


def split_zero_shot(benchmark, trained_on: list[str]) -> dict[str, bool]:
    """For each cross-corpus split: True when the model did not train on its corpus (zero-shot there).

    >>> from casebench.benchmarks import get_benchmark
    >>> split_zero_shot(get_benchmark("casebench-mini"), ["mini-acted"])
    {'mini-acted': False}
    """
    trained = {corpus_key(c) for c in trained_on if str(c).strip()}
    return {s.name: corpus_key(s.value if s.value is not None else s.name) not in trained
            for s in benchmark.splits if s.kind == "cross-corpus"}


def build_results(*, benchmark, gold, preds, tasks, scores, baselines, extra, n_boot, seed, unit,
                  model: dict | None) -> dict:
    """Assemble the results object from the scorer's parts (no I/O)."""
    model = dict(model or model_info())
    model.setdefault("trained_on", [])
    model["zero_shot"], model["not_zero_shot_on"] = zero_shot(benchmark, model["trained_on"])
    flags = split_zero_shot(benchmark, model["trained_on"])
    split_info = {s.name: {"kind": s.kind, "column": s.column, "value": s.value, "zero_shot": flags.get(s.name)}
                  for s in benchmark.splits if s.name in scores}
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": {"name": benchmark.name, "version": benchmark.version, "taxonomy": benchmark.taxonomy.name,
                      "labels": list(benchmark.taxonomy.labels)},
        "dataset_fingerprint": gold.fingerprint,
        "scorer": {"name": "casebench", "version": __version__, "git_commit": git_commit()},
        "predictions": {"file": Path(preds.path).name, "sha256": preds.sha256, "n_lines": preds.n_lines,
                        "missing_ids": list(preds.missing_ids), "notes": list(preds.notes)},
        "model": model,
        "tasks": list(tasks),
        "bootstrap": {"n_resamples": n_boot, "unit": unit, "method": "percentile", "confidence": 0.95},
        "seed": seed,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "splits": scores,
        "split_info": split_info,
        "baselines": baselines,
        **extra,
    }


def dumps(results: dict) -> bytes:
    """Serialise a results object (indented, keys in insertion order)."""
    # numpy scalars as values, numpy strings as keys (group names come from gold columns)
    return orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def save(results: dict, path: str | Path) -> Path:
    """Write a results object atomically."""
    from casebench.workspace import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, dumps(results) + b"\n")
    return path


def load(path: str | Path) -> dict:
    """Read and check a results file against :class:`casebench.results_model.Results`; SpecError names the file
    and every missing, unknown (with a did-you-mean) or malformed key."""
    from casebench.results_model import validate

    path = Path(path)
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path))) from None
    except orjson.JSONDecodeError as e:
        raise InputError(Problem(f"invalid JSON: {e}", file=str(path), expected="a casebench results file")) from None
    validate(doc, str(path))
    return doc
