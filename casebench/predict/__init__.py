"""``casebench predict``: run a model on a benchmark's audio and write a predictions file evaluate accepts.

A model is named ``KIND:SPEC``; :data:`KINDS` maps each kind to its module (one module per kind, holding a
:class:`~casebench.predict.base.Model` subclass named ``MODEL``), imported only when used, so
``casebench --help`` never imports torch or transformers. Adding a kind is one module and one line here.

>>> parse_model("hf:./my-model")
('hf', './my-model')
>>> parse_model("hff:./my-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
casebench.errors.ConfigError: unknown model kind 'hff' in 'hff:./my-model'; expected one of [...] (did you mean 'hf'?)
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from casebench.errors import ConfigError, InputError, Problem, did_you_mean, path_error, syntax_problem

#: Kind name -> module path (the module defines ``MODEL``, a Model subclass, and documents the kind).
KINDS: dict[str, str] = {
    "hf": "casebench.predict.hf",
    "probe": "casebench.predict.probe",
    "command": "casebench.predict.command",
    "audio-llm": "casebench.predict.audio_llm",
    "text-llm": "casebench.predict.text_llm",
}


def parse_model(model: str) -> tuple[str, str]:
    """``KIND:SPEC`` split into (kind, spec); ConfigError (with a did-you-mean) for a bad string."""
    text = str(model).strip()
    kind, sep, spec = text.partition(":")
    if not sep:
        hint = did_you_mean(text, KINDS)
        raise ConfigError(f"model {text!r} is not KIND:SPEC (e.g. hf:./my-model, probe:whisper-tiny.en, "
                          f"command:\"python my_model.py\"); kinds: {sorted(KINDS)}" + (f" ({hint})" if hint else ""))
    kind = kind.strip().lower()
    if kind not in KINDS:
        hint = did_you_mean(kind, KINDS)
        raise ConfigError(f"unknown model kind {kind!r} in {text!r}; expected one of {sorted(KINDS)}"
                          + (f" ({hint})" if hint else ""))
    if not spec.strip():
        raise ConfigError(f"model {text!r}: nothing after '{kind}:'; expected {kind}:SPEC")
    return kind, spec.strip()


def model_class(kind: str):
    """The Model subclass of a kind (imports its module)."""
    return importlib.import_module(KINDS[kind]).MODEL


def load_label_map(path: str | os.PathLike, taxonomy) -> dict[str, str | None]:
    """A ``--label-map`` file (YAML or JSON mapping model label -> taxonomy label or null), checked against
    ``taxonomy``; InputError naming the file and every bad entry."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text("utf-8"))  # JSON is YAML
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path), expected="a label map (YAML or JSON)")) from None
    except OSError as e:
        raise path_error(e, path, action="read the label map") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError(syntax_problem(path, e, "a label map (YAML or JSON)")) from None
    if not isinstance(doc, dict) or not doc:
        raise InputError(Problem(f"found {type(doc).__name__}", file=str(path),
                                 expected="a mapping: model label -> taxonomy label (or null to drop it)"))
    problems = []
    for k, v in doc.items():
        if v is not None and (not isinstance(v, str) or v not in taxonomy.index):
            problems.append(Problem(f"maps {k!r} to {v!r}", file=str(path), field=str(k),
                                    expected=f"a label of {taxonomy.name} {list(taxonomy.labels)} or null",
                                    hint=did_you_mean(str(v), taxonomy.labels)))
    if problems:
        raise InputError(problems, summary=f"bad label map {path}")
    return {str(k): v for k, v in doc.items()}


def resolve_clips(bench, *, split: str | None = None, workspace: str | os.PathLike | None = None,
                  dataset: str | None = None, revision: str | None = None):
    """The clips to predict: from ``workspace``, ``dataset`` (folder or Hub id), else the benchmark."""
    from casebench.predict import sources

    if workspace is not None and dataset is not None:
        raise ConfigError("give one audio source: --workspace or --dataset, not both")
    if revision is not None and dataset is None:
        raise ConfigError("--revision applies to --dataset (a Hub dataset id)")
    if workspace is not None:
        return sources.workspace_clips(workspace, split)
    if dataset is not None:
        return sources.dataset_clips(dataset, revision=revision, split=split or "test")
    return sources.benchmark_clips(bench, split)


def train_clips(bench, train: str | os.PathLike | None):
    """Labelled clips a probe is fitted on: ``train`` (a workspace: its ``train`` split when it has splits,
    else every labelled clip), else the benchmark's train split."""
    from casebench.predict import sources
    from casebench.workspace import Workspace

    if train is not None:
        ws = Workspace.open(train)
        split = None
        if ws.has_table("splits") and "train" in set(ws.read_table("splits").column("split").to_pylist()):
            split = "train"
        return sources.workspace_clips(ws, split, taxonomy=bench.taxonomy, with_labels=True)
    return sources.benchmark_clips(bench, "train")


def build_model(model: str, bench, *, label_map: str | os.PathLike | dict | None = None,
                train: str | os.PathLike | None = None, options: dict | None = None):
    """A model ready to run: ``KIND:SPEC`` built with its context (label map, train clips if it needs them)."""
    from casebench.predict.base import Context

    kind, spec = parse_model(model)
    cls = model_class(kind)
    if isinstance(label_map, (str, os.PathLike)):
        label_map = load_label_map(label_map, bench.taxonomy)
    if label_map is not None and not cls.uses_label_map:
        raise ConfigError(f"--label-map is for kinds with their own labels (hf:, audio-llm:, text-llm:); a {kind}: "
                          "model predicts the benchmark's labels already")
    ctx = Context(benchmark=bench, label_map=label_map, options=dict(options or {}))
    if cls.needs_train:
        ctx.train = train_clips(bench, train)
    elif train is not None:
        raise ConfigError(f"--train is for probes; a {kind}: model is not fitted here")
    return cls(spec, ctx)


def predict(model: str, benchmark, out: str | os.PathLike, *, split: str | None = None, batch_size: int = 16,
            engine: str = "local", label_map: str | os.PathLike | dict | None = None,
            train: str | os.PathLike | None = None, workspace: str | os.PathLike | None = None,
            dataset: str | None = None, revision: str | None = None, options: dict | None = None,
            concurrency: int | None = None, num_cpus: float | None = None, ray_address: str | None = None,
            limit: int | None = None, progress: Any = False) -> dict:
    """Run ``model`` (``KIND:SPEC``) on a benchmark's clips and append its predictions to ``out``.

    Args:
        model: ``hf:PATH_OR_ID``, ``probe:ENCODER``, ``command:"..."`` (see :data:`KINDS` and docs/predict.md).
        benchmark: a :class:`~casebench.benchmarks.Benchmark`, a built-in name or a spec path.
        out: the predictions file; ids already in it are skipped (resume). ``<out>.meta.json`` is written
            when every clip is predicted.
        split: a benchmark split (``conflict``..., ``train``), or a workspace/dataset split (default: the
            benchmark's gold items; every workspace clip; a dataset's ``test`` split).
        batch_size: clips per model call and per append.
        engine: ``local`` or ``ray`` (``concurrency`` actors of ``num_cpus`` CPUs, at ``ray_address``).
        label_map: a ``--label-map`` file (or mapping) from model labels to the benchmark's taxonomy.
        train: a workspace to fit a probe on (default: the benchmark's ``train:`` table).
        workspace, dataset, revision: predict on a workspace's clips, or a published dataset (folder, or a Hub
            id at ``revision``), instead of the benchmark's own audio.
        options: kind-specific settings.
        limit: predict at most this many pending clips in this run.
        progress: True for a progress bar on stderr, or a callable ``(done, total)``.

    Returns:
        The run report of :func:`casebench.predict.runner.run`.

    Raises:
        ConfigError: bad model string, unknown kind, engine or split, a model that cannot be loaded.
        InputError: bad files (label map, tables, audio, an ``--out`` predict cannot resume).
    """
    from casebench.benchmarks import Benchmark, get_benchmark
    from casebench.predict import runner

    bench = benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)
    parse_model(model)  # a bad model string fails before any audio is looked at
    from casebench.workspace import check_writable

    check_writable(out)  # and an unwritable --out before any model is loaded
    if engine not in runner.ENGINES:
        from casebench.errors import unknown_name

        raise unknown_name("engine", engine, runner.ENGINES)
    from casebench.predict.sources import hub_progress

    with hub_progress(progress is True):  # a Hub dataset's download bars, as the run's own
        clips = resolve_clips(bench, split=split, workspace=workspace, dataset=dataset, revision=revision)
        m = build_model(model, bench, label_map=label_map, train=train, options={"batch_size": batch_size,
                                                                                **(options or {})})
    ray_options = {"concurrency": concurrency, "num_cpus": num_cpus, "ray_address": ray_address}
    extra = {"benchmark": {"name": bench.name, "version": bench.version, "taxonomy": bench.taxonomy.name},
             "split": split}
    return runner.run(m, clips, out, batch_size=batch_size, engine=engine, ray_options=ray_options,
                      progress=progress, limit=limit, extra_meta=extra)

