"""The results object as a typed, versioned model (pydantic): what ``casebench evaluate`` writes.

:class:`Results` lists every top-level key a results file may hold (unknown keys are refused, with a
did-you-mean) and types the parts every consumer reads: metric entries (:class:`MetricEntry`: value, 95% CI,
``n``, and, with a bootstrap, ``n_clusters`` and ``n_distinct_resamples``), the benchmark, scorer, predictions
and model blocks, the constant baselines and their prior, the conflict split counts and the ``warnings``.
Breakdowns whose shape is documented in their own modules (``groups``, ``robustness``, ``per_class``...) are
typed as mappings. :func:`validate` checks a loaded document; the JSON Schema is committed as
``docs/schema/results.schema.json``.

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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casebench.errors import Problem, SpecError, did_you_mean

SCHEMA_VERSION = 1


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricEntry(_Closed):
    """One metric on one split: the value and its 95% bootstrap interval (null without a bootstrap)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(ge=0, description="items scored")
    n_clusters: int | None = Field(None, ge=0, description="clusters the interval rests on (speakers, or items "
                                   "under an item bootstrap)")
    n_distinct_resamples: int | None = Field(None, ge=0, description="distinct resampled statistics")
    splits: list[str] | None = Field(None, description="cross_corpus_mean: the splits averaged")


class BenchmarkInfo(_Open):
    name: str
    version: str
    taxonomy: str | None = None
    labels: list[str] | None = None


class ScorerInfo(_Open):
    name: str
    version: str
    git_commit: str | None = None


class PredictionsInfo(_Open):
    file: str
    sha256: str
    n_lines: int | None = None
    missing_ids: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class BootstrapInfo(_Open):
    n_resamples: int = Field(ge=0)
    unit: Literal["item", "speaker"]
    method: str
    confidence: float


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


class Results(_Closed):
    """A results file (``schema_version`` 1)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    benchmark: BenchmarkInfo
    dataset_fingerprint: str
    scorer: ScorerInfo
    predictions: PredictionsInfo
    model: dict[str, Any]
    tasks: list[Literal["categorical", "distribution", "dimensional"]] = Field(default_factory=list)
    bootstrap: BootstrapInfo | None = None
    seed: int
    created_at: str | None = None
    splits: Scores
    split_info: dict[str, dict[str, Any]] = Field(default_factory=dict)
    split_counts: dict[str, SplitCount] = Field(default_factory=dict)
    cross_corpus_mean: dict[str, MetricEntry] | None = None
    cross_corpus_mean_zero_shot: dict[str, MetricEntry] | None = None
    baselines: dict[str, Scores] = Field(default_factory=dict)
    baseline_prior: BaselinePrior | None = None
    warnings: list[str] = Field(default_factory=list, description="interval, baseline and staleness warnings: "
                                "shown by the CLI, the HTML report and the board")
    per_class: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    per_dimension: dict[str, dict[str, dict[str, MetricEntry]]] = Field(default_factory=dict)
    confusion: dict[str, list[list[int]]] = Field(default_factory=dict)
    conflict_breakdown: list[dict[str, Any]] = Field(default_factory=list)
    groups: dict[str, dict[str, Any]] | None = None
    robustness: dict[str, Any] | None = None
    staleness: dict[str, Any] | None = None


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
            field = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                hint = did_you_mean(str(err["loc"][-1]), Results.model_fields) if len(err["loc"]) == 1 else None
                problems.append(Problem("unknown key", file=path, field=field, hint=hint))
            elif err["type"] == "missing":
                problems.append(Problem("missing", expected="a value", file=path, field=field))
            else:
                problems.append(Problem(f"found {err.get('input')!r}", expected=str(err["msg"]).lower(), file=path,
                                        field=field))
        raise SpecError(problems, summary=f"not a valid results file {path}") from None


def json_schema() -> dict:
    """The JSON Schema of a results file (committed as docs/schema/results.schema.json)."""
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://casebench.invalid/schema/results-v{SCHEMA_VERSION}.json"
    return schema
