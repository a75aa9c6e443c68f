"""The benchmark spec file as a typed, versioned model (pydantic), and its errors in casebench's one shape.

:class:`BenchmarkSpec` is what a ``<name>.yaml`` may hold, nothing more: an unknown key anywhere
(``main_metrc:``, ``gruop_by:``) is refused with the file, the key and a "did you mean", as is a
``main_metric`` the task kind does not report. :func:`parse_spec` turns a loaded YAML mapping into a
:class:`BenchmarkSpec` or raises one :class:`~casebench.errors.SpecError` listing every problem;
:func:`casebench.benchmarks.load_spec` then resolves paths and builds the runtime
:class:`~casebench.benchmarks.Benchmark`. The JSON Schema of the model is committed as
``docs/schema/benchmark-spec.schema.json`` (:func:`json_schema`; a test keeps the two equal).

>>> spec = parse_spec({"name": "x", "version": 1, "taxonomy": "ekman7", "gold": "g.csv",
...                    "tasks": [{"kind": "categorical", "main_metric": "uar"}]}, "x.yaml")
>>> spec.version, spec.tasks[0].target, [s if isinstance(s, str) else s.name for s in spec.splits]
('1', 'acoustic_label', ['all', 'conflict', 'congruent'])
>>> parse_spec({"name": "x", "version": 1, "taxonomy": "ekman7", "gold": "g.csv", "gruop_by": ["gender"],
...             "tasks": [{"kind": "categorical"}]}, "x.yaml")
Traceback (most recent call last):
...
casebench.errors.SpecError: bad benchmark spec x.yaml:
  x.yaml: field 'gruop_by': unknown key; expected one of [...] (did you mean 'group_by'?)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from casebench.errors import Problem, SpecError, did_you_mean

SPEC_VERSION = 1
TaskKind = Literal["categorical", "distribution", "dimensional"]
SplitKind = Literal["all", "conflict", "congruent", "cross-corpus", "subset"]
Dimension = Literal["valence", "arousal", "dominance"]
#: Which metric families a task kind reports (the names ``main_metric`` may take come from the registry).
TASK_FAMILIES = {"categorical": ("categorical", "conflict"), "distribution": ("distribution",),
                 "dimensional": ("dimensional",)}
_SHA256 = r"^sha256:[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def task_metrics(kind: str) -> list[str]:
    """The metrics a task kind reports, from the one metric registry (:data:`casebench.metrics.METRICS`)."""
    from casebench.metrics import METRICS

    return [name for name, m in METRICS.items() if m.family in TASK_FAMILIES.get(kind, ())]


class TaskSpec(_Strict):
    """One scored task."""

    name: str | None = Field(None, description="display name (default: the kind)")
    kind: TaskKind
    target: Literal["acoustic_label", "semantic_label"] = Field(
        "acoustic_label", description="categorical: the gold label scored against: the voice's emotion "
        "(acoustic_label) or the words' emotion (semantic_label)")
    dimensions: list[Dimension] | None = Field(None, description="dimensional: the dimensions scored")
    main_metric: str | None = Field(None, description="the metric the leaderboard ranks on; one the task "
                                    "kind reports")

    @field_validator("main_metric")
    @classmethod
    def _metric(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if v is not None and kind is not None and v not in task_metrics(kind):
            raise ValueError(f"{v!r} is not a metric of a {kind} task; expected one of {task_metrics(kind)}"
                             + _hint(v, task_metrics(kind)))
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str, info: ValidationInfo) -> str:
        if v != "acoustic_label" and info.data.get("kind", "categorical") != "categorical":
            raise ValueError(f"target applies to categorical tasks only (this one is {info.data['kind']})")
        return v


class SplitSpec(_Strict):
    """A named set of items; ``cross-corpus``/``subset`` sets are selected by gold ``column`` == ``value``."""

    name: str
    kind: SplitKind
    column: str | None = Field(None, description="cross-corpus/subset: the gold column (default corpus)")
    value: str | None = Field(None, description="cross-corpus/subset: the column's value (default the name)")

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return v if v is None else str(v)


class DatasetSpec(_Strict):
    """Where the audio is (``hub`` + ``revision``, or a published ``path``), and an optional pinned fingerprint."""

    hub: str | None = Field(None, min_length=1, description="a Hugging Face dataset id")
    revision: str | None = Field(None, min_length=1, description="the commit or tag the dataset is pinned to")
    path: str | None = Field(None, min_length=1, description="a folder written by `casebench publish`, "
                             "relative to the spec")
    fingerprint: str | None = Field(None, pattern=_SHA256, description="the gold table's fingerprint "
                                    "(sha256 of its bytes, the results' dataset_fingerprint); a gold that "
                                    "differs is refused")

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if self.hub is not None and self.path is not None:
            raise ValueError("give exactly one of 'hub' and 'path'")
        if self.hub is not None and self.revision is None:
            raise ValueError(f"dataset.hub = {self.hub!r} has no revision; pin the dataset with 'revision' (a "
                             "commit hash or tag) so the benchmark stays the same")
        if self.revision is not None and self.hub is None:
            raise ValueError("dataset.revision applies to 'hub' only; a published folder is local")
        if self.hub is None and self.path is None and self.fingerprint is None:
            raise ValueError("expected a mapping with 'hub' and 'revision' (a Hugging Face dataset pinned to a "
                             "commit or tag), or 'path', or 'fingerprint'")
        return self


class PriorSpec(_Strict):
    """A train prior carried in the spec (for benchmarks that ship no train table): what the constant
    baseline predicts. Label counts or shares, a mean distribution and mean V/A/D, each optional."""

    source: str = Field("train", description="what the prior was computed from (e.g. 'train split of X v2')")
    n: int | None = Field(None, ge=1, description="items the prior was computed from")
    labels: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="categorical: count or share of each label (the majority is predicted)")
    distribution: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="distribution: the mean distribution (renormalised)")
    vad: dict[Dimension, float] | None = Field(None, description="dimensional: the mean of each dimension")


class BenchmarkSpec(_Strict):
    """A benchmark spec file (YAML): what it names and how it is scored."""

    spec_version: Literal[1] = Field(SPEC_VERSION, description="version of this spec format")
    name: str = Field(min_length=1)
    version: str = Field(description="the benchmark's version (a number or text)",
                         json_schema_extra={"type": ["string", "number"]})
    description: str = ""
    taxonomy: str = Field(description="a shipped taxonomy name (ekman7, plutchik32, ...)")
    gold: str = Field(min_length=1, description="the gold table (CSV or Parquet), relative to the spec")
    train: str | None = Field(None, min_length=1, description="the train table (same columns as the gold), "
                              "relative to the spec: probes are fitted on it, constant baselines come from it")
    dataset: DatasetSpec | None = None
    prior: PriorSpec | None = None
    fingerprint: str | None = Field(None, pattern=_SHA256, description="sha256 of the SHA256SUMS file listing "
                                    "every shipped data file (built-in benchmarks with audio)")
    licence: str = ""
    citation: str = ""
    corpora: list[str] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(min_length=1)
    splits: list[SplitKind | SplitSpec] = Field(
        default_factory=lambda: ["all", "conflict", "congruent"],
        description="a split kind (all, conflict, congruent) or a mapping {name, kind, column, value}")
    build: dict[str, Any] | None = Field(None, description="provenance of a generated spec (casebench version, "
                                         "sources, notes; written by `casebench benchmark-from`), not scored")
    group_by: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="gold columns evaluate breaks the scores down by")
    robustness: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="degraded conditions the leaderboard shows the drop of")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("group_by", "robustness", "corpora", mode="before")
    @classmethod
    def _one_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else ([] if v is None else v)

    @field_validator("train", mode="before")
    @classmethod
    def _train(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, str):
            raise ValueError("expected the path of a train table (CSV or Parquet) relative to the spec")
        return v

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, dict):
            raise ValueError("expected a mapping with 'hub' and 'revision' (a Hugging Face dataset pinned to a "
                             "commit or tag), or 'path'")
        return v


def _hint(name: str, choices) -> str:
    h = did_you_mean(name, choices)
    return f" ({h})" if h else ""


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class an error location (field names and list indices) points into."""
    import typing

    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        found = None
        for t in _flatten(field.annotation, typing):
            if isinstance(t, type) and issubclass(t, BaseModel):
                found = t
        model = found
    return model


def _flatten(t, typing):
    args = typing.get_args(t)
    if not args:
        return [t]
    return [x for a in args for x in _flatten(a, typing)]


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_]\w*", str(part)):
            out += ("." if out else "") + str(part)
    return out


def parse_spec(doc: Any, path: str) -> BenchmarkSpec:
    """Validate a loaded spec mapping; SpecError lists every problem with the file, the key and what to write."""
    if not isinstance(doc, dict):
        raise SpecError(Problem("a benchmark spec is a YAML mapping", file=str(path)),
                        summary=f"bad benchmark spec {path}")
    try:
        return BenchmarkSpec.model_validate(doc)
    except ValidationError as e:
        problems = []
        seen = set()
        for err in e.errors():
            # drop the union-member tags pydantic puts in a location (SplitSpec, literal[...], function-...)
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p
                                                                               or p.startswith("function"))))
            # a split given as a name or a mapping reports each alternative: keep the mapping's unless unknown kind
            if len(loc) >= 2 and loc[0] == "splits" and isinstance(doc.get("splits"), list):
                item = doc["splits"][loc[1]] if loc[1] < len(doc["splits"]) else None
                if isinstance(item, str) and (len(loc) > 2 or err["type"] == "model_type"):
                    continue
                if isinstance(item, dict) and err["type"] == "literal_error" and len(loc) == 2:
                    continue
            field = _dotted(loc)
            if err["type"] == "extra_forbidden":
                parent = _model_at(BenchmarkSpec, loc[:-1])
                choices = sorted(parent.model_fields) if parent else []
                problem = Problem("unknown key", expected=f"one of {choices}", file=str(path), field=field,
                                  hint=did_you_mean(str(loc[-1]), choices))
            elif err["type"] == "missing":
                problem = Problem("missing", expected="a value", file=str(path), field=field)
            elif err["type"] == "value_error":
                problem = Problem(str(err["msg"]).removeprefix("Value error, "), file=str(path), field=field)
            else:
                found = err.get("input")
                problem = Problem(f"found {found!r}", expected=_expected(err), file=str(path), field=field,
                                  hint=did_you_mean(str(found), err.get("ctx", {}).get("expected", "").replace(
                                      "'", "").replace(" or ", ", ").split(", "))
                                  if isinstance(found, str) and err["type"] == "literal_error" else None)
            if str(problem) not in seen:
                seen.add(str(problem))
                problems.append(problem)
        raise SpecError(problems, summary=f"bad benchmark spec {path}") from None


def _expected(err: dict) -> str:
    if err["type"] == "literal_error":
        return f"one of {err['ctx']['expected']}"
    if err["type"] == "string_pattern_mismatch":
        return "'sha256:' and 64 hex digits"
    return str(err["msg"]).lower()


def json_schema() -> dict:
    """The JSON Schema of a benchmark spec (committed as docs/schema/benchmark-spec.schema.json)."""
    schema = BenchmarkSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://casebench.invalid/schema/benchmark-spec-v{SPEC_VERSION}.json"
    return schema
