"""The results object as a typed, versioned model (pydantic): what ``casebench evaluate`` writes.

:class:`Results` lists every top-level key a results file may hold (unknown keys are refused, with a
did-you-mean) and types every part, closed like the top level: metric entries (:class:`MetricEntry`: value,
95% CI, ``n``, and, with an interval, ``n_clusters`` and ``n_distinct_resamples``, required), the benchmark,
scorer, predictions and model blocks, split info and counts, per-class scores, the conflict breakdown, the
constant baselines and their prior, the group breakdowns (:class:`GroupBreakdown`), the robustness summary
(:class:`Robustness`), staleness and the ``warnings``. :func:`validate` checks a loaded document and
``evaluate`` checks what it returns (:func:`check`); the JSON Schema is committed as
``docs/schema/results.schema.json`` (``python scripts/export_schemas.py``).

>>> validate({"schema_version": 1}, "r.json")
Traceback (most recent call last):
...
casebench.errors.SpecError: not a valid results file r.json:
  r.json: field 'benchmark': missing; expected a value
  r.json: field 'dataset_fingerprint': missing; expected a value
  r.json: field 'scorer': missing; expected a value
  r.json: field 'predictions': missing; expected a value
  r.json: field 'model': missing; expected a value
  r.json: field 'seed': missing; expected a value
  r.json: field 'splits': missing; expected a value
"""

from __future__ import annotations

import types
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from casebench.benchmarks.spec import SplitKind
from casebench.errors import Problem, SpecError, did_you_mean

SCHEMA_VERSION = 1


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricEntry(_Closed):
    """One metric on one split: the value and its 95% bootstrap interval (null without a bootstrap). An entry
    with an interval says what it rests on (``n_clusters``, ``n_distinct_resamples``)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(ge=0, description="items scored")
    n_clusters: int | None = Field(None, ge=0, description="clusters the interval rests on (speakers, or items "
                                   "under an item bootstrap)")
    n_distinct_resamples: int | None = Field(None, ge=0, description="distinct resampled statistics")
    splits: list[str] | None = Field(None, description="cross_corpus_mean: the splits averaged")

    @model_validator(mode="after")
    def _support(self) -> MetricEntry:
        if self.ci_low is not None and (self.n_clusters is None or self.n_distinct_resamples is None):
            raise ValueError("an entry with an interval needs n_clusters and n_distinct_resamples")
        return self


class TestedEntry(MetricEntry):
    """A paired difference (a robustness ``drop``): the entry and its two-sided bootstrap p-value."""

    p_value: float | None = None


class BenchmarkInfo(_Closed):
    name: str
    version: str
    taxonomy: str | None = None
    labels: list[str] | None = None


class ScorerInfo(_Closed):
    name: str
    version: str
    git_commit: str | None = None


class PredictionsInfo(_Closed):
    file: str
    sha256: str
    n_lines: int | None = None
    missing_ids: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ModelInfo(_Closed):
    """The model block (:func:`casebench.results.model_info`, completed by the scorer's zero-shot check)."""

    name: str | None = None
    revision: str | None = None
    url: str | None = None
    parameters: int | None = None
    trained_on: list[str] = Field(default_factory=list)
    description: str | None = None
    zero_shot: bool | None = Field(None, description="the model trained on none of the benchmark's corpora")
    not_zero_shot_on: list[str] = Field(default_factory=list, description="the benchmark's corpora it trained on")


class BootstrapInfo(_Closed):
    n_resamples: int = Field(ge=0)
    unit: Literal["item", "speaker"]
    method: str
    confidence: float


class SplitInfo(_Closed):
    """What a split is: its kind, the gold column/value selecting it, and (cross-corpus) zero-shot there."""

    kind: SplitKind
    column: str | None = None
    value: str | None = None
    zero_shot: bool | None = None


class ClassScores(_Closed):
    """One class on one split: precision, recall and F1 with intervals, and the class's items."""

    precision: MetricEntry
    recall: MetricEntry
    f1: MetricEntry
    support: int = Field(ge=0)


class ConflictPair(_Closed):
    """Conflict items of one (voice label, words label) pair: shares of predictions following each channel."""

    acoustic: str
    semantic: str
    n: int = Field(ge=0)
    voice: float
    text: float
    other: float


class BaselinePrior(_Closed):
    """Where the constant baseline's prior comes from: ``train`` (the spec's train table or ``--train``),
    ``spec`` (a prior carried in the spec) or ``test`` (the test labels: an oracle)."""

    name: Literal["train prior", "test prior (oracle)"]
    source: Literal["train", "spec", "test"]
    n: int | None = None
    oracle: bool


class SplitCount(_Closed):
    """Conflict/congruent split sizes: scored (``n``), voice != words (``n_raw``), and the tags behind them."""

    n: int
    n_raw: int
    source: Literal["curated is_conflict tags", "voice != words"]
    n_tagged: int | None = None


Scores = dict[str, dict[str, MetricEntry]]


class Group(_Closed):
    """One group of a breakdown (:func:`casebench.fairness.group_breakdown`)."""

    n: int = Field(ge=0)
    n_speakers: int | None = None
    ranked: bool
    reason: str | None = Field(None, description="why the group is not ranked")
    metrics: dict[str, MetricEntry]
    recall: dict[str, MetricEntry] = Field(description="per-class recall (classes the group has)")


class WorstGroup(MetricEntry):
    """The ranked group with the lowest score of a metric, and that score."""

    group: str


class Gap(_Closed):
    """Best minus worst ranked group (or per-class recall), with the interval of the difference."""

    best: str
    worst: str
    diff: MetricEntry


class GroupBreakdown(_Closed):
    """``results["groups"][column]``: per-group scores, worst group and gaps (docs/design.md)."""

    column: str
    min_items: int
    min_speakers: int
    unit: Literal["item", "speaker"]
    groups: dict[str, Group]
    ranked: list[str]
    not_ranked: dict[str, str | None]
    worst_group: dict[str, WorstGroup]
    largest_gap: dict[str, Gap]
    recall_gaps: dict[str, Gap]


class Condition(_Closed):
    """One degraded condition (:func:`casebench.robustness.robustness_summary`); the scores only when some
    degraded copy pairs with a clean item."""

    n_items: int = Field(ge=0)
    n_pairs: int = Field(ge=0)
    unpaired: int = Field(ge=0)
    noise: str | None = None
    snr_db: float | None = None
    clean: dict[str, MetricEntry] | None = None
    degraded: dict[str, MetricEntry] | None = None
    drop: dict[str, TestedEntry] | None = None


class SnrCurve(BaseModel):
    """One noise type: its conditions by ascending SNR, and per metric ``M`` the degraded scores (``M``), their
    intervals (``M_ci``), the clean scores of the same pairs (``M_clean``) and ``auc``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": "array"}})
    __pydantic_extra__: dict[str, list[float | None] | list[list[float | None]]]

    conditions: list[str]
    snr_db: list[float]
    auc: dict[str, float | None]

    @model_validator(mode="after")
    def _metric_keys(self) -> SnrCurve:
        from casebench.metrics import METRICS

        for key in self.__pydantic_extra__ or {}:
            base = key.removesuffix("_ci").removesuffix("_clean")
            if base not in METRICS:
                raise ValueError(f"unknown key {key!r}; expected METRIC, METRIC_ci or METRIC_clean with a metric "
                                 f"of {sorted(METRICS)}" + (f" ({h})" if (h := did_you_mean(base, METRICS)) else ""))
        return self


class Robustness(_Closed):
    """``results["robustness"]``: clean-vs-degraded scores per condition and SNR curves (docs/robustness.md)."""

    metrics: list[str]
    unit: Literal["item", "speaker"]
    pairing: str
    conditions: dict[str, Condition]
    snr_curves: dict[str, SnrCurve]


class Staleness(_Closed):
    """Stale inputs scored anyway (``--allow-stale``)."""

    allow_stale: Literal[True]
    problems: list[str]


class Results(_Closed):
    """A results file (``schema_version`` 1)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    benchmark: BenchmarkInfo
    dataset_fingerprint: str
    scorer: ScorerInfo
    predictions: PredictionsInfo
    model: ModelInfo
    tasks: list[Literal["categorical", "distribution", "dimensional"]] = Field(default_factory=list)
    bootstrap: BootstrapInfo | None = None
    seed: int
    created_at: str | None = None
    splits: Scores
    split_info: dict[str, SplitInfo] = Field(default_factory=dict)
    split_counts: dict[str, SplitCount] = Field(default_factory=dict)
    cross_corpus_mean: dict[str, MetricEntry] | None = None
    cross_corpus_mean_zero_shot: dict[str, MetricEntry] | None = None
    baselines: dict[str, Scores] = Field(default_factory=dict)
    baseline_prior: BaselinePrior | None = None
    warnings: list[str] = Field(default_factory=list, description="interval (splits, groups, conditions), "
                                "baseline and staleness warnings: shown by the CLI, the HTML report and the board")
    per_class: dict[str, dict[str, ClassScores]] = Field(default_factory=dict)
    per_dimension: dict[str, dict[str, dict[str, MetricEntry]]] = Field(default_factory=dict)
    confusion: dict[str, list[list[int]]] = Field(default_factory=dict)
    conflict_breakdown: list[ConflictPair] = Field(default_factory=list)
    groups: dict[str, GroupBreakdown] | None = None
    robustness: Robustness | None = None
    staleness: Staleness | None = None
    redacted: list[str] | None = Field(None, description="a leaderboard's test phase: the keys it left out")


def validate(doc: Any, path: str = "results") -> Results:
    """Check a loaded results document; SpecError lists every problem with the file and the dotted key."""
    if not isinstance(doc, dict):
        raise SpecError(Problem("not a JSON object", file=path, expected="a casebench results file"),
                        summary=f"not a valid results file {path}")
    try:
        return Results.model_validate(doc)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]  # not union member tags
            field = ".".join(str(p) for p in loc)
            if err["type"] == "extra_forbidden":
                known = _keys_at(loc[:-1])
                hint = did_you_mean(str(loc[-1]), known) if known else None
                problems.append(Problem("unknown key", file=path, field=field, hint=hint))
            elif err["type"] == "missing":
                problems.append(Problem("missing", expected="a value", file=path, field=field))
            elif err["type"] == "value_error":  # a check across fields: its own message says what is wrong
                problems.append(Problem(str(err["msg"]).removeprefix("Value error, "), file=path, field=field))
            else:
                problems.append(Problem(f"found {err.get('input')!r}", expected=str(err["msg"]).lower(), file=path,
                                        field=field))
        unique = list({str(p): p for p in problems}.values())  # a union's members may each report it
        raise SpecError(unique, summary=f"not a valid results file {path}") from None


def _keys_at(loc: list) -> list[str]:
    """The keys the model allows at ``loc`` (a path of keys through the document), for a did-you-mean."""
    import typing

    tp: Any = Results
    for part in loc:
        while typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    while typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def check(doc: dict) -> None:
    """Check a results object casebench built (``evaluate`` calls this before returning it): a problem here is
    a bug in casebench, so it raises pydantic's ValidationError (a traceback), not a user-facing error."""
    Results.model_validate(doc)


def json_schema() -> dict:
    """The JSON Schema of a results file (committed as docs/schema/results.schema.json)."""
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://casebench.invalid/schema/results-v{SCHEMA_VERSION}.json"
    return schema
