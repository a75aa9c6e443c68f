"""The model interface of ``casebench predict``: what a kind builds, what it is given, what it returns.

A kind is one module under :mod:`casebench.predict` with a :class:`Model` subclass named ``MODEL`` and a
docstring; :data:`casebench.predict.KINDS` maps its name to the module. ``Model(spec, context)`` builds the
model from the text after ``KIND:`` and a :class:`Context` (benchmark, label map, train clips, options);
:meth:`Model.prepare` runs once in the driving process (a probe fits itself there);
:meth:`Model.predict_batch` turns a list of :class:`Item` into prediction records exactly as
``casebench evaluate`` parses them::

    {"id": "c1", "label": "sad", "probs": {"angry": 0.1, ..., "sad": 0.6}}
    {"id": "c2", "distribution": {...}}
    {"id": "c3", "valence": 3.1, "arousal": 4.0, "dominance": 2.2}

A record may instead be an *abstention*, ``{"id": "c4", "abstain": "why", ...}`` (key :data:`ABSTAIN`): the
model answered but gave no prediction (an LLM's answer that names no label). The runner never writes it to
the predictions file: it goes to ``<out>.abstained.jsonl``, counts as done on resume, and is counted in the
run report and the metadata; ``casebench evaluate --allow-missing`` scores those clips as wrong.

A prepared model is pickled to the workers of the Ray engine, so it keeps heavy state (a loaded encoder)
out of its pickle (:meth:`Model.__getstate__` drops the attributes named in ``_transient``) and loads it
again on first use.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from casebench.benchmarks import Benchmark
from casebench.errors import InputError, Problem

#: The key of an abstention record (see the module docstring).
ABSTAIN = "abstain"


@dataclass
class Item:
    """One clip as a model sees it: mono float32 samples at the model's :attr:`Model.sample_rate`."""

    id: str
    audio: np.ndarray
    text: str | None = None
    path: str | None = None


@dataclass
class Context:
    """What a model is built with.

    Attributes:
        benchmark: the benchmark predicted on (its taxonomy is the label set every record uses).
        label_map: model label -> taxonomy label or None (``--label-map``), for kinds with their own labels.
        train: the labelled clips a probe is fitted on (:class:`casebench.predict.sources.Clips`), or None.
        options: kind-specific settings (``batch_size``, ``device``...).
    """

    benchmark: Benchmark
    label_map: dict[str, str | None] | None = None
    train: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.benchmark.taxonomy.labels

    def task_kinds(self) -> set[str]:
        return {t.kind for t in self.benchmark.tasks}


class Model(ABC):
    """A model that predicts emotion for clips; one subclass per kind (see the module docstring)."""

    #: The kind's name in :data:`casebench.predict.KINDS` (``hf``, ``probe``, ``command``...).
    kind: ClassVar[str] = ""
    #: Whether the kind maps its own labels into the taxonomy with ``--label-map`` (refused otherwise).
    uses_label_map: ClassVar[bool] = False
    #: Whether the kind is fitted on labelled train clips (``Context.train``; ``--train`` refused otherwise).
    needs_train: ClassVar[bool] = False
    #: Attributes holding heavy, re-loadable state: left out of the pickle sent to Ray workers.
    _transient: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: str, context: Context):
        self.spec = spec
        self.context = context

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the items' audio must have; 16 kHz unless the model says otherwise."""
        return 16000

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.spec}"

    def prepare(self, engine: Any = None) -> None:  # noqa: B027 - an optional hook
        """Run once before predicting, in the driving process (a probe fits itself here). ``engine`` maps a
        worker over clips (:func:`casebench.predict.runner.map_clips`) for work that should scale out."""

    @abstractmethod
    def predict_batch(self, items: Sequence[Item]) -> list[dict]:
        """One prediction record per item, in the items' order."""

    @abstractmethod
    def metadata(self) -> dict:
        """``name``, ``revision``, ``parameters`` (int or None), ``trained_on`` (corpora), plus any detail
        worth keeping (``kind``, ``spec``, label mapping notes)."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources (processes, servers); called once at the end of a run."""

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in self._transient:
            state[name] = None
        return state


def probs_record(item_id: str, probs: np.ndarray, labels: Sequence[str]) -> dict:
    """A ``{"id", "label", "probs"}`` record from a probability vector in taxonomy order.

    The row is divided by its sum (full float64 precision: rounding 32 values could move the sum past the
    parser's tolerance); the label is the first argmax (taxonomy order), as the parser would derive it.

    >>> probs_record("c1", np.array([1.0, 3.0]), ["a", "b"])
    {'id': 'c1', 'label': 'b', 'probs': {'a': 0.25, 'b': 0.75}}
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(labels),) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise InputError(Problem(f"model gave probabilities {p.tolist()!r}", id=item_id, field="probs",
                                 expected=f"{len(labels)} finite non-negative values with a positive sum"))
    p = p / p.sum()
    return {"id": item_id, "label": labels[int(np.argmax(p))],
            "probs": {lab: float(v) for lab, v in zip(labels, p.tolist(), strict=True)}}


def finite(value: float, item_id: str, field_name: str) -> float:
    """``value`` as a float, or InputError naming the item and field when it is not finite."""
    v = float(value)
    if not math.isfinite(v):
        raise InputError(Problem(f"model gave {v!r}", id=item_id, field=field_name, expected="a finite number"))
    return v
