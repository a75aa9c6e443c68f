"""Label Studio: labelling configs generated from the workspace, and push / pull / import of annotations.

Raters judge the voice and the words apart, in two Label Studio projects per workspace:

* the **acoustic** project shows the audio only (task data: ``audio``, ``clip_id``, ``speaker_id``; no
  transcript anywhere in the task, so the words cannot leak into the voice ratings) and asks for
  ``acoustic_emotion`` plus, by default, ``valence``, ``arousal``, ``dominance``, ``confidence`` and
  ``is_ambiguous``;
* the **semantic** project shows the transcript only (``transcript``, ``clip_id``, ``speaker_id``; no
  audio) and asks for ``semantic_emotion``, ``confidence`` and ``is_ambiguous``.

The labelling configs are generated from the workspace's taxonomy and ``[annotation]`` settings (never
hand-copied per taxonomy) and checked with label-studio-sdk's ``LabelInterface``; every control is named
after the dimension it fills, so an export maps straight onto the long ``annotations`` table.

The ``[annotation]`` settings (dimensions, scales, raters per clip, single or mixed labels) are the annotation
schema of :mod:`casebench.annotation_schema`; push writes ``[annotation.label_studio]`` (url, project ids,
never a token).

Import rules (``pull``, ``import``; :func:`parse_export` is the pure core):

* one row per rater x clip x dimension; the key is Label Studio's annotation id (``annotation_id``), so
  importing the same export twice adds nothing, and an annotation edited on the server replaces its old rows;
* clips are keyed by the task's ``data.clip_id`` when present, else by the task id (as text);
  ``rater_id`` is the Label Studio user id of ``completed_by`` as text (the e-mail only when an export
  carries no id: ids are stable and are not personal data);
* cancelled (skipped) annotations are kept apart: stored with ``cancelled=True`` (one row per answered
  dimension, or one row with an empty value for the project's emotion dimension when nothing was answered)
  and never counted as ratings by aggregation; drafts are not annotations and are not stored, only counted;
* non-cancelled annotations with an empty result are reported (their ids), not stored;
* ground-truth annotations are stored with ``ground_truth=True``;
* a control name that is no dimension is an error naming the file, task id, annotation id and from_name;
  ``mapping={"from_name": "dimension"}`` (CLI ``--map from_name=dimension``) renames;
* ``is_ambiguous`` is stored as ``"true"``/``"false"`` (value_num 1/0); ratings as their number; mixed
  emotions store the strongest label as ``value`` and, when more than one label was chosen, every chosen
  label's normalised weight as JSON in the ``meta_weights`` column; ``meta_channel`` says which project
  (``acoustic``/``semantic``) a row came from, so that ``confidence`` and ``is_ambiguous`` can be
  attributed to the voice or the words.

Label Studio 1.23 accepts legacy API tokens (``Authorization: Token ...``, when enabled for the
organisation, e.g. ``label-studio start --enable-legacy-api-token``) and personal access tokens (JWT
refresh tokens); ``LabelStudio(base_url=..., api_key=...)`` of label-studio-sdk 2.x takes either and
picks the scheme itself. Audio is served by the server's local-files storage, which needs the server to
run with ``LOCAL_FILES_SERVING_ENABLED=true`` and ``LOCAL_FILES_DOCUMENT_ROOT`` set to a folder that
contains the workspace's ``audio/``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from casebench.annotation_schema import (  # noqa: F401 - re-exported: the schema used to live here
    _TITLES,
    DEFAULT_PROJECT_DIMENSIONS,
    EMOTION_OF,
    PROJECT_KINDS,
    RATING_DIMENSIONS,
    AnnotationSchema,
    DimensionSpec,
    ProjectKind,
    annotation_schema,
    normalise_weights,
    parse_label_set,
    weight_control,
)
from casebench.errors import ConfigError, InputError, Problem, did_you_mean, read_user_text, separator_hint
from casebench.taxonomy import Taxonomy

if TYPE_CHECKING:
    import pandas as pd

    from casebench.workspace import Workspace

#: The object tag (what raters see) of each project, and the task-data key it shows.
OBJECT_OF: dict[str, tuple[str, str]] = {"acoustic": ("Audio", "audio"), "semantic": ("Text", "transcript")}
TRUE_WORDS = frozenset({"true", "yes", "1", "y", "t", "ambiguous"})
FALSE_WORDS = frozenset({"false", "no", "0", "n", "f", "clear"})
SOURCE_PREFIX = "label-studio:"
_INSTRUCTIONS = {
    "acoustic": "Listen to the clip (headphones). Judge only HOW it is said: tone, pitch, loudness, "
                "tempo. Ignore what the words mean.",
    "semantic": "Read the transcript. Judge only WHAT is said, as if you read it in a message. "
                "There is no audio on purpose.",
}
GUIDELINES_RESOURCE = "data/guidelines"  # packaged rater guidelines (casebench.resources)


# --------------------------------------------------------------------------------------------------
# Labelling configs


def labeling_config(schema: AnnotationSchema | Workspace, kind: ProjectKind) -> str:
    """The Label Studio labelling config (XML) of the ``acoustic`` or ``semantic`` project.

    Generated from the schema: the object tag (``<Audio name="audio" value="$audio">`` or
    ``<Text name="transcript" value="$transcript">``), then one control per dimension, named after it:
    emotions as ``Choices`` in taxonomy order (one choice, or in mixed mode several, each with a
    ``Rating`` weight shown when the choice is ticked), ratings as ``Rating`` stars or ``Choices``
    ``low..high``, ``is_ambiguous`` as a yes/no ``Choices``. The result is validated with
    ``LabelInterface``; raises ConfigError when it does not validate.

    >>> xml = labeling_config(AnnotationSchema.from_config({}, "iemocap4"), "semantic")
    >>> '<Text name="transcript" value="$transcript"' in xml, 'name="semantic_emotion"' in xml, "Audio" in xml
    (True, True, False)
    """
    if not isinstance(schema, AnnotationSchema):
        schema = AnnotationSchema.from_workspace(schema)
    if kind not in PROJECT_KINDS:
        raise ConfigError(f"project kind {kind!r}; expected one of {list(PROJECT_KINDS)}")
    tag, obj = OBJECT_OF[kind]
    dims = schema.projects[kind]
    if not dims:
        raise ConfigError(f"the {kind} project asks for no dimension; declare {EMOTION_OF[kind]} in "
                          "[annotation] dimensions")
    lines = ["<View>",
             f"  <Header value={quoteattr(_INSTRUCTIONS[kind])} size=\"5\"/>"]
    if tag == "Audio":
        lines.append(f'  <Audio name="{obj}" value="${obj}" hotkey="ctrl+space"/>')
    else:
        lines.append(f'  <Text name="{obj}" value="${obj}"/>')
    for dim in dims:
        spec = schema.dimensions[dim]
        lines.append(f"  <Header value={quoteattr(spec.title)} size=\"6\"/>")
        lines += _control_xml(spec, obj, schema)
    lines.append("</View>")
    xml = "\n".join(lines) + "\n"
    validate_labeling_config(xml, where=f"generated {kind} config")
    return xml


def _control_xml(spec: DimensionSpec, obj: str, schema: AnnotationSchema) -> list[str]:
    name = quoteattr(spec.name)
    if spec.widget == "rating":
        return [f'  <Rating name={name} toName="{obj}" maxRating="{spec.high}" icon="star" size="medium" '
                'required="true"/>']
    if spec.widget == "textarea":
        return [f'  <TextArea name={name} toName="{obj}" rows="2" maxSubmissions="1"/>']
    mixed = spec.kind == "emotion" and schema.mixed
    choice = "multiple" if mixed else "single-radio"
    out = [f'  <Choices name={name} toName="{obj}" choice="{choice}" showInline="true" required="true">']
    if spec.kind == "boolean":
        out += ['    <Choice value="no"/>', '    <Choice value="yes"/>']
    else:
        out += [f"    <Choice value={quoteattr(v)}/>" for v in spec.values]
    out.append("  </Choices>")
    if mixed:
        for label in spec.values:
            question = f"How strong is {label}? (1 = a trace ... {schema.weight_max} = dominant)"
            out += [f'  <View visibleWhen="choice-selected" whenTagName={name} whenChoiceValue={quoteattr(label)}>',
                    f'    <Header value={quoteattr(question)} size="6"/>',
                    f"    <Rating name={quoteattr(weight_control(spec.name, label))} toName=\"{obj}\" "
                    f'maxRating="{schema.weight_max}" icon="star" size="small"/>',
                    "  </View>"]
    return out


def validate_labeling_config(xml: str, *, where: str = "labelling config") -> None:
    """Check a labelling config with label-studio-sdk's ``LabelInterface``; ConfigError when invalid."""
    try:
        from label_studio_sdk.label_interface import LabelInterface
    except ImportError as e:  # pragma: no cover - the annotation extra is missing
        from casebench.errors import MissingDependencyError

        raise MissingDependencyError("label-studio-sdk is needed for Label Studio configs; install "
                                     "casebench[annotation]") from e
    try:
        LabelInterface(xml).validate()
    except Exception as e:  # the SDK raises its own validation and lxml parse errors
        raise ConfigError(f"{where} is not a valid Label Studio config: {e}") from e


def write_labeling_configs(ws: Workspace, out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write ``<kind>.xml`` for both projects (default folder: ``reports/label-studio``); kind -> path."""
    from casebench.workspace import atomic_write_text

    schema = AnnotationSchema.from_workspace(ws)
    out = Path(out_dir) if out_dir is not None else ws.reports_dir / "label-studio"
    return {kind: atomic_write_text(out / f"{kind}.xml", labeling_config(schema, kind)) for kind in PROJECT_KINDS}


def guidelines(kind: ProjectKind, schema: AnnotationSchema) -> str:
    """The rater guidelines of a project: annotation/<dimension>.md of its dimensions, joined
    (``valence_arousal_dominance.md`` for the three ratings).

    Reads the packaged guidelines (``casebench/data/guidelines/``); a dimension declared in casebench.toml
    without a guideline file gets the one-line instruction of its project, and says so.
    """
    from casebench import resources

    parts = []
    names = dict.fromkeys("valence_arousal_dominance" if d in RATING_DIMENSIONS else d for d in schema.projects[kind])
    for name in names:
        relpath = f"{GUIDELINES_RESOURCE}/{name}.md"
        if resources.exists(relpath):
            parts.append(resources.read_text(relpath).strip())
        else:
            parts.append(f"{_INSTRUCTIONS[kind]} (no guideline file for the dimension '{name}')")
    return "\n\n".join(parts) if parts else _INSTRUCTIONS[kind]


def _markdown_html(text: str) -> str:
    r"""Just enough markdown for Label Studio's instruction panel: headings, bullets, paragraphs (wrapped
    lines joined), **bold**, *italic* and `code`.

    >>> _markdown_html("## Voice\n- judge **how**,\n  not what\n\nText `x`.")
    '<h3>Voice</h3>\n<ul>\n<li>judge <b>how</b>, not what</li>\n</ul>\n<p>Text <code>x</code>.</p>'
    """
    import re
    from html import escape

    blocks: list[list[str]] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            blocks.append(["blank", ""])
        elif s.startswith(("- ", "* ")):
            blocks.append(["li", s[2:]])
        elif s.startswith("#"):
            blocks.append(["h", s])
        elif blocks and blocks[-1][0] in ("li", "p"):
            blocks[-1][1] += " " + s
        else:
            blocks.append(["p", s])

    def inline(t: str) -> str:
        t = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(t))
        t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
        return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", t)

    out, in_list = [], False
    for kind, body in blocks:
        if kind != "li" and in_list:
            out.append("</ul>")
            in_list = False
        if kind == "li":
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(body)}</li>")
        elif kind == "h":
            level = min(len(body) - len(body.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{inline(body.lstrip('#').strip())}</h{level}>")
        elif kind == "p":
            out.append(f"<p>{inline(body)}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Parsing exports (pure)


@dataclass
class ImportSummary:
    """What an import found and did. Counts are of Label Studio annotations unless named rows."""

    files: list[str] = field(default_factory=list)
    tasks: int = 0
    annotations: int = 0
    rows: int = 0
    cancelled: int = 0
    ground_truth: int = 0
    drafts: int = 0
    predictions: int = 0
    empty: list[str] = field(default_factory=list)  # annotation ids with an empty, non-cancelled result
    added: int = 0       # rows new to the table
    updated: int = 0     # rows that replaced a changed row with the same key
    unchanged: int = 0   # rows already in the table as they are
    multi_label: int = 0  # emotion rows holding several labels (weights in meta_weights)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["empty_results"] = d.pop("empty")
        d["n_empty_results"] = len(self.empty)
        return d


def parse_export(tasks: Any, schema: AnnotationSchema, *, mapping: Mapping[str, str] | None = None,
                 file: str = "<export>", project_kinds: Mapping[int, str] | None = None,
                 summary: ImportSummary | None = None) -> list[dict]:
    """Rows of the long ``annotations`` table from a Label Studio JSON export (a list of tasks).

    Args:
        tasks: the parsed export: a list of task dicts, each with ``id``, ``data`` and ``annotations``.
        schema: the workspace's annotation schema (dimension names, labels, scales).
        mapping: renames control names (``from_name``) to dimensions before anything else.
        file: named in error messages.
        project_kinds: project id -> ``acoustic``/``semantic``; otherwise the kind of an annotation is read
            from its emotion control, or from the task data (``audio`` -> acoustic, ``transcript`` ->
            semantic).
        summary: an :class:`ImportSummary` to count into.

    Returns one dict per rating (see the module docstring for the rules). Raises InputError listing every
    problem: unknown control names (with file, task id, annotation id and from_name), values outside the
    taxonomy or scale, malformed tasks.

    >>> s = AnnotationSchema.from_config({}, "ekman7")
    >>> task = {"id": 7, "data": {"clip_id": "c1", "audio": "/data/local-files/?d=a.wav"},
    ...         "annotations": [{"id": 31, "completed_by": 2, "was_cancelled": False, "ground_truth": False,
    ...                          "lead_time": 4.2, "created_at": "2024-01-01T10:00:00Z", "project": 1,
    ...                          "result": [{"from_name": "acoustic_emotion", "to_name": "audio",
    ...                                      "type": "choices", "value": {"choices": ["sad"]}},
    ...                                     {"from_name": "valence", "to_name": "audio", "type": "rating",
    ...                                      "value": {"rating": 2}}]}]}
    >>> [(r["clip_id"], r["rater_id"], r["dimension"], r["value"], r["value_num"]) for r in parse_export([task], s)]
    [('c1', '2', 'acoustic_emotion', 'sad', None), ('c1', '2', 'valence', '2', 2.0)]
    """
    summary = summary if summary is not None else ImportSummary()
    mapping = dict(mapping or {})
    problems: list[Problem] = []
    if isinstance(tasks, Mapping) and "id" in tasks and "data" in tasks:
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise InputError(Problem(f"a JSON {type(tasks).__name__}", file=file,
                                 expected="a Label Studio JSON export: a list of tasks (Export -> JSON)"))
    bad_map = {k: v for k, v in mapping.items() if v not in schema.dimensions}
    if bad_map:
        raise InputError([Problem(f"--map {k}={v}: {v!r} is not a dimension", file=file, field=k,
                                  expected=f"one of {sorted(schema.dimensions)}",
                                  hint=did_you_mean(v, schema.dimensions)) for k, v in bad_map.items()])
    weights = schema.weight_controls()
    rows: list[dict] = []
    for t_index, task in enumerate(tasks):
        if not isinstance(task, Mapping) or "id" not in task or not isinstance(task.get("data"), Mapping):
            problems.append(Problem(f"task #{t_index} is not a Label Studio task", file=file,
                                    expected="an object with 'id', 'data' and 'annotations'"))
            continue
        summary.tasks += 1
        task_id = task["id"]
        data = task["data"]
        clip_id = str(data["clip_id"]) if data.get("clip_id") not in (None, "") else str(task_id)
        summary.drafts += len(task.get("drafts") or [])
        summary.predictions += len(task.get("predictions") or [])
        for ann in task.get("annotations") or []:
            where = {"file": file, "id": f"task {task_id} annotation {ann.get('id')}"}
            rows += _annotation_rows(ann, task_id, clip_id, data, schema, mapping, weights, project_kinds,
                                     where, problems, summary)
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in Label Studio export {file}; "
                                           "nothing was imported")
    summary.rows += len(rows)
    summary.multi_label += sum(r.get("meta_weights") is not None for r in rows)
    return rows


def _annotation_rows(ann: Mapping, task_id: Any, clip_id: str, data: Mapping, schema: AnnotationSchema,
                     mapping: Mapping[str, str], weights: Mapping[str, tuple[str, str]],
                     project_kinds: Mapping[int, str] | None, where: dict, problems: list[Problem],
                     summary: ImportSummary) -> list[dict]:
    ann_id = ann.get("id")
    if ann_id is None:
        problems.append(Problem("annotation without an id", expected="the 'id' Label Studio gives every annotation",
                                **where))
        return []
    rater = _rater_id(ann.get("completed_by"))
    if rater is None:
        problems.append(Problem(f"completed_by = {ann.get('completed_by')!r}", field="completed_by",
                                expected="a user id or {'id': ..., 'email': ...}", **where))
        return []
    cancelled = bool(ann.get("was_cancelled", False))
    ground_truth = bool(ann.get("ground_truth", False))
    summary.annotations += 1
    summary.cancelled += cancelled
    summary.ground_truth += ground_truth
    project = ann.get("project")
    base = {"annotation_id": str(ann_id), "clip_id": clip_id, "rater_id": rater,
            "lead_time_s": _float_or_none(ann.get("lead_time")),
            "source": f"{SOURCE_PREFIX}{project if project is not None else ''}/{task_id}/{ann_id}",
            "created_at": _time_or_none(ann.get("created_at")), "cancelled": cancelled,
            "ground_truth": ground_truth}
    result = ann.get("result") or []
    if not isinstance(result, list):
        problems.append(Problem(f"result is a {type(result).__name__}", field="result", expected="a list",
                                **where))
        return []
    values: dict[str, dict] = {}
    mixed_weights: dict[str, dict[str, float]] = {}
    n_problems = len(problems)
    for item in result:
        if not isinstance(item, Mapping) or "from_name" not in item:
            problems.append(Problem(f"result item {item!r}", field="result",
                                    expected="an object with from_name, type and value", **where))
            continue
        from_name = str(item["from_name"])
        name = mapping.get(from_name, from_name)
        here = {**where, "field": f"from_name {from_name!r}"}
        if name in weights:
            dim, label = weights[name]
            w = _number(item)
            if w is None or w < 0:
                problems.append(Problem(f"weight {item.get('value')!r}", expected="a rating >= 0", **here))
            else:
                mixed_weights.setdefault(dim, {})[label] = w
            continue
        if name not in schema.dimensions:
            known = sorted(schema.dimensions) + sorted(weights)
            problems.append(Problem(f"unknown control name {from_name!r}", **here,
                                    expected=f"a dimension {sorted(schema.dimensions)}, or --map "
                                             f"{from_name}=DIMENSION to rename it",
                                    hint=did_you_mean(name, known)))
            continue
        if name in values:
            problems.append(Problem(f"a second result for {name!r}", expected="one result per control", **here))
            continue
        parsed = _result_value(item, schema.dimensions[name], schema.taxonomy, here, problems)
        if parsed is not None:
            values[name] = parsed
    if len(problems) > n_problems:
        return []
    kind = _annotation_kind(project, values, data, project_kinds)
    for dim, v in values.items():
        if "labels" in v or dim in mixed_weights:
            values[dim] = _apply_weights(v, mixed_weights.get(dim, {}), schema.taxonomy)
    if not values:
        if cancelled:
            dim = EMOTION_OF.get(kind or "")
            dim = dim if dim in schema.dimensions else next(iter(schema.dimensions), None)
            if dim is None:
                return []
            return [{**base, "dimension": dim, "value": None, "value_num": None, "meta_channel": kind,
                     "meta_weights": None}]
        summary.empty.append(str(ann_id))
        return []
    out = []
    for dim, v in values.items():
        out.append({**base, "dimension": dim, "value": v["value"], "value_num": v.get("value_num"),
                    "meta_channel": kind, "meta_weights": v.get("weights")})
    return out


def _rater_id(completed_by: Any) -> str | None:
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int):
        return str(completed_by)
    if isinstance(completed_by, str) and completed_by:
        return completed_by
    if isinstance(completed_by, Mapping):
        if completed_by.get("id") is not None:
            return str(completed_by["id"])
        if completed_by.get("email"):
            return str(completed_by["email"])
    return None


def _number(item: Mapping) -> float | None:
    value = item.get("value")
    if not isinstance(value, Mapping):
        return None
    for key in ("rating", "number"):
        v = value.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    choices = value.get("choices")
    if isinstance(choices, list) and len(choices) == 1:
        try:
            return float(choices[0])
        except (TypeError, ValueError):
            return None
    return None


def _result_value(item: Mapping, spec: DimensionSpec, tax: Taxonomy, where: dict,
                  problems: list[Problem]) -> dict | None:
    value = item.get("value")
    if not isinstance(value, Mapping):
        problems.append(Problem(f"value {value!r}", expected="an object such as {'choices': [...]}", **where))
        return None
    if spec.kind == "emotion":
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(Problem(f"value {dict(value)!r}", expected="{'choices': [one or more labels]}",
                                    **where))
            return None
        bad = [c for c in choices if c not in tax.index]
        if bad:
            problems.append(Problem(f"label {bad[0]!r}", expected=f"a label of {tax.name}: {list(tax.labels)}",
                                    hint=did_you_mean(str(bad[0]), tax.labels), **where))
            return None
        if len(choices) == 1:
            return {"value": choices[0]}
        return {"value": choices[0], "labels": list(dict.fromkeys(choices))}  # weighted after all results
    if spec.kind == "rating":
        v = _number(item)
        if v is None or v != int(v) or not (spec.low <= v <= spec.high):
            problems.append(Problem(f"rating {dict(value)!r}", expected=f"an integer from {spec.low} to {spec.high}",
                                    **where))
            return None
        return {"value": str(int(v)), "value_num": float(v)}
    if spec.kind == "boolean":
        choices = value.get("choices")
        word = str(choices[0]).strip().lower() if isinstance(choices, list) and len(choices) == 1 else None
        if word in TRUE_WORDS:
            return {"value": "true", "value_num": 1.0}
        if word in FALSE_WORDS:
            return {"value": "false", "value_num": 0.0}
        problems.append(Problem(f"value {dict(value)!r}", expected="{'choices': ['yes']} or {'choices': ['no']}",
                                **where))
        return None
    if spec.kind == "choices":
        choices = value.get("choices")
        if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in spec.values:
            problems.append(Problem(f"value {dict(value)!r}", expected=f"one of {list(spec.values)}", **where))
            return None
        return {"value": choices[0], "value_num": _float_or_none(choices[0])}
    text = value.get("text")
    text = " ".join(map(str, text)) if isinstance(text, list) else text
    if not isinstance(text, str):
        problems.append(Problem(f"value {dict(value)!r}", expected="{'text': ['...']}", **where))
        return None
    return {"value": text}


def _apply_weights(v: dict, weights: Mapping[str, float], tax: Taxonomy) -> dict:
    """Mixed emotions: normalised weights of the chosen labels (1 each when no weight was given); the
    strongest label (first in taxonomy order among equals) becomes the value."""
    labels = v.get("labels") or [v["value"]]
    strongest, shares = normalise_weights({x: float(weights.get(x, 1.0)) for x in labels}, tax)
    # one label carries all the weight whatever its rating: stored like a single-label answer (and like CSV)
    return {"value": strongest, "weights": json.dumps(shares, sort_keys=False) if len(shares) > 1 else None}


def _annotation_kind(project: Any, values: Mapping[str, Any], data: Mapping,
                     project_kinds: Mapping[int, str] | None) -> str | None:
    if project_kinds and project in project_kinds:
        return project_kinds[project]
    for kind, dim in EMOTION_OF.items():
        if dim in values:
            return kind
    has_audio, has_text = "audio" in data, "transcript" in data
    if has_audio and not has_text:
        return "acoustic"
    if has_text and not has_audio:
        return "semantic"
    return None


def _float_or_none(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _time_or_none(v: Any) -> _dt.datetime | None:
    if not isinstance(v, str) or not v:
        return None
    try:
        t = _dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def load_export(path: str | os.PathLike) -> Any:
    """Read a Label Studio JSON export file; InputError naming the file (and line) when it is not JSON."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(Problem(f"cannot read the file ({e})", file=str(path),
                                 expected="a Label Studio JSON export (UTF-8)")) from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(Problem(f"not JSON: {e.msg}", file=str(path), line=e.lineno,
                                 expected="a Label Studio JSON export (Export -> JSON, not JSON-MIN or CSV)")) from e


# --------------------------------------------------------------------------------------------------
# Long CSV from other tools (pure)

CSV_COLUMNS = ("clip_id", "rater_id", "dimension", "value")
CSV_OPTIONAL = ("annotation_id", "lead_time_s", "created_at", "cancelled", "ground_truth", "channel", "weight")


def parse_long_csv(path: str | os.PathLike, schema: AnnotationSchema, *,
                   mapping: Mapping[str, str] | None = None, source: str | None = None) -> list[dict]:
    """Rows of the ``annotations`` table from a long CSV (``clip_id, rater_id, dimension, value``).

    Optional columns: ``annotation_id``, ``lead_time_s``, ``created_at`` (ISO 8601), ``cancelled``,
    ``ground_truth`` (true/false), ``channel`` (acoustic/semantic), ``weight``. Values are checked like Label
    Studio results (labels in the taxonomy, ratings in the scale, is_ambiguous true/false/yes/no);
    ``mapping`` renames dimensions. Every problem names the file, its line number (the header is line 1),
    the clip id and the column. ``source`` defaults to ``csv:<file name>``.

    An emotion rating may hold several labels, stored like a mixed-emotion Label Studio answer (``value`` =
    the strongest label, ``meta_weights`` = the normalised weights; see :mod:`casebench.annotation_schema`),
    written in either of two ways:

    * in one cell: ``disapproval;rage`` (equal weights) or ``disapproval:3;rage:1``;
    * one label per row with a ``weight`` column: the rows of the same clip, rater, dimension, channel and
      annotation id are one rating.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = f.write_text("clip_id,rater_id,dimension,value\\nc1,r1,acoustic_emotion,sad:3;angry:1\\n")
    >>> row = parse_long_csv(f, AnnotationSchema.from_config({}, "ekman7"))[0]
    >>> row["value"], row["meta_weights"]
    ('sad', '{"angry": 0.25, "sad": 0.75}')
    """
    path = Path(path)
    mapping = dict(mapping or {})
    source = source or f"csv:{path.name}"
    problems: list[Problem] = []
    rows: list[dict] = []
    with io.StringIO(read_user_text(path, "a CSV file of ratings"), newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise InputError(Problem(f"header {header}", file=str(path), line=1,
                                     expected=f"columns {list(CSV_COLUMNS)} (optional: {list(CSV_OPTIONAL)})",
                                     hint=separator_hint(header) or f"missing {missing}"))
        unknown = [c for c in header if c not in CSV_COLUMNS + CSV_OPTIONAL]
        if unknown:
            raise InputError(Problem(f"unknown column(s) {unknown}", file=str(path), line=1,
                                     expected=f"only {list(CSV_COLUMNS + CSV_OPTIONAL)}",
                                     hint=did_you_mean(unknown[0], CSV_COLUMNS + CSV_OPTIONAL)))
        try:
            records = list(reader)
        except csv.Error as e:
            raise InputError(Problem(f"not readable as CSV ({e})", file=str(path))) from e
    weighted: dict[tuple, dict] = {}  # one-label-per-row ratings (the weight column), merged by key
    first_line: dict[tuple, int] = {}  # one rating per clip, rater and dimension (without an annotation_id)
    for i, rec in enumerate(records):
        line = i + 2
        clip = (rec.get("clip_id") or "").strip()
        where = {"file": str(path), "line": line, "id": clip or None}
        if None in rec:  # more fields than the header
            problems.append(Problem(f"{len(rec[None])} extra field(s)", expected=f"{len(header)} fields", **where))
            continue
        empty = [c for c in CSV_COLUMNS if not (rec.get(c) or "").strip() and c != "value"]
        if empty:
            problems += [Problem("empty", field=c, expected="a value", **where) for c in empty]
            continue
        dim = mapping.get(rec["dimension"].strip(), rec["dimension"].strip())
        if dim not in schema.dimensions:
            problems.append(Problem(f"dimension {dim!r}", field="dimension", **where,
                                    expected=f"one of {sorted(schema.dimensions)}",
                                    hint=did_you_mean(dim, schema.dimensions)))
            continue
        cancelled = _csv_bool(rec.get("cancelled"), "cancelled", where, problems)
        ground_truth = _csv_bool(rec.get("ground_truth"), "ground_truth", where, problems)
        raw = (rec.get("value") or "").strip()
        raw_weight = (rec.get("weight") or "").strip()
        spec = schema.dimensions[dim]
        parsed = None
        if raw or not cancelled:
            if spec.kind == "emotion":
                parsed = _csv_labels(raw, raw_weight, schema.taxonomy, where, problems)
            else:
                if raw_weight:
                    problems.append(Problem(f"weight {raw_weight!r} on a {spec.kind} dimension", field="weight",
                                            expected="weights only on emotion dimensions", **where))
                    continue
                parsed = _result_value(_csv_item(raw, spec), spec, schema.taxonomy, {**where, "field": "value"},
                                       problems)
            if parsed is None:
                continue
        lead = (rec.get("lead_time_s") or "").strip()
        lead_time = _float_or_none(lead) if lead else None
        if lead and lead_time is None:
            problems.append(Problem(f"{lead!r}", field="lead_time_s", expected="a number of seconds", **where))
        created = (rec.get("created_at") or "").strip()
        created_at = _time_or_none(created) if created else None
        if created and created_at is None:
            problems.append(Problem(f"{created!r}", field="created_at", expected="an ISO 8601 time", **where))
        channel = (rec.get("channel") or "").strip() or None
        if channel is not None and channel not in PROJECT_KINDS:
            problems.append(Problem(f"{channel!r}", field="channel", expected="acoustic or semantic", **where))
        row = {"annotation_id": (rec.get("annotation_id") or "").strip() or None, "clip_id": clip,
               "rater_id": rec["rater_id"].strip(), "dimension": dim,
               "value": parsed["value"] if parsed else None,
               "value_num": parsed.get("value_num") if parsed else None,
               "lead_time_s": lead_time, "source": source, "created_at": created_at,
               "cancelled": bool(cancelled), "ground_truth": bool(ground_truth),
               "meta_channel": channel or _channel_of(dim),
               "meta_weights": parsed.get("weights") if parsed else None}
        if parsed and "row_weight" in parsed:
            key = (row["annotation_id"], clip, row["rater_id"], dim, row["meta_channel"], row["cancelled"])
            held = weighted.setdefault(key, {"row": row, "weights": {}, "line": line})
            if parsed["value"] in held["weights"]:
                problems.append(Problem(f"label {parsed['value']!r} again for this rating (first on line "
                                        f"{held['line']})", field="value",
                                        expected="each label once per clip, rater and dimension", **where))
            held["weights"][parsed["value"]] = parsed["row_weight"]
            continue
        if row["annotation_id"] is None:  # the table's key: caught here, the message names this file's lines
            first = first_line.setdefault((clip, row["rater_id"], dim), line)
            if first != line:
                problems.append(Problem(f"a second rating by rater {row['rater_id']!r} (first on line {first})",
                                        field="rater_id", expected="one rating per clip, rater and dimension "
                                        "(or an annotation_id column telling the ratings apart)", **where))
                continue
        rows.append(row)
    for held in weighted.values():
        strongest, shares = normalise_weights(held["weights"], schema.taxonomy)
        rows.append({**held["row"], "value": strongest,
                     "meta_weights": json.dumps(shares) if len(shares) > 1 else None})
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in {path}; nothing was imported")
    return rows


def _csv_labels(raw: str, raw_weight: str, tax: Taxonomy, where: dict, problems: list[Problem]) -> dict | None:
    """An emotion cell: one label, ``a;b`` or ``a:3;b:1``, or one label with the row's ``weight``."""
    from casebench.annotation_schema import LABEL_SEPARATOR, WEIGHT_SEPARATOR

    try:
        weights = parse_label_set(raw)
    except ValueError as e:
        problems.append(Problem(str(e), field="value", expected="a label, 'a;b' or 'a:3;b:1'", **where))
        return None
    if not weights:
        problems.append(Problem(f"{raw!r}", field="value", expected=f"a label of {tax.name}", **where))
        return None
    bad = [x for x in weights if x not in tax.index]
    if bad:
        problems += [Problem(f"label {x!r}", field="value", expected=f"a label of {tax.name}: {list(tax.labels)}",
                             hint=did_you_mean(x, tax.labels), **where) for x in bad]
        return None
    if raw_weight:
        w = _float_or_none(raw_weight)
        if len(weights) > 1 or WEIGHT_SEPARATOR in raw or LABEL_SEPARATOR in raw:
            problems.append(Problem(f"{raw!r} with a weight column", field="weight",
                                    expected="one label per row when the weight column is used", **where))
            return None
        if w is None or w < 0:
            problems.append(Problem(f"{raw_weight!r}", field="weight", expected="a number >= 0", **where))
            return None
        return {"value": next(iter(weights)), "row_weight": w}
    if len(weights) == 1:
        return {"value": next(iter(weights))}
    strongest, shares = normalise_weights(weights, tax)
    return {"value": strongest, "weights": json.dumps(shares)}


def _channel_of(dim: str) -> str | None:
    for kind, d in EMOTION_OF.items():
        if d == dim:
            return kind
    return "acoustic" if dim in RATING_DIMENSIONS else None


def _csv_item(raw: str, spec: DimensionSpec) -> dict:
    if spec.kind == "emotion":
        return {"value": {"choices": [x.strip() for x in raw.split(";") if x.strip()]}}
    if spec.kind == "rating":
        v = _float_or_none(raw)
        return {"value": {"rating": v} if v is not None else {"choices": [raw]}}
    if spec.kind == "text":
        return {"value": {"text": [raw]}}
    return {"value": {"choices": [raw]}}


def _csv_bool(raw: str | None, column: str, where: dict, problems: list[Problem]) -> bool:
    word = (raw or "").strip().lower()
    if word in ("", "false", "no", "0"):
        return False
    if word in ("true", "yes", "1"):
        return True
    problems.append(Problem(f"{raw!r}", field=column, expected="true or false", **where))
    return False


# --------------------------------------------------------------------------------------------------
# Writing rows into the workspace


_COMPARE = ("clip_id", "rater_id", "dimension", "value", "value_num", "lead_time_s", "source", "created_at",
            "cancelled", "ground_truth", "meta_channel", "meta_weights")


def _row_key(row: Mapping) -> tuple:
    if row.get("annotation_id") is not None:
        return ("a", str(row["annotation_id"]), row["dimension"])
    return ("c", row["clip_id"], row["rater_id"], row["dimension"], row.get("source"))


def _same(a: Mapping, b: Mapping) -> bool:
    for col in _COMPARE:
        x, y = a.get(col), b.get(col)
        x = None if _isnan(x) else x
        y = None if _isnan(y) else y
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-9:
                return False
        elif hasattr(x, "timestamp") and hasattr(y, "timestamp"):
            if abs(x.timestamp() - y.timestamp()) > 1e-3:
                return False
        elif x != y:
            return False
    return True


def _isnan(x: Any) -> bool:
    """None, NaN or NaT (what a missing cell reads back as from pandas)."""
    import pandas as pd

    if x is None:
        return True
    try:
        return bool(pd.isna(x)) if not isinstance(x, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False


def merge_annotations(ws: Workspace, rows: Sequence[Mapping], *, summary: ImportSummary | None = None,
                      check_clips: bool = True) -> ImportSummary:
    """Add ``rows`` to the workspace's ``annotations`` table, replacing rows with the same key.

    The key is (annotation_id, dimension), or (clip_id, rater_id, dimension, source) for rows without an
    annotation id. All rows of an annotation present in ``rows`` replace all of its old rows (an answer
    removed on the server disappears here too). Counts ``added``, ``updated`` and ``unchanged`` rows into
    ``summary``. With ``check_clips`` and a ``clips`` table, a clip id not in it is an error (InputError
    listing them; nothing written).
    """
    import pandas as pd

    summary = summary if summary is not None else ImportSummary()
    rows = [dict(r) for r in rows]
    if check_clips and rows and ws.has_table("clips"):
        known = set(ws.read_table("clips").column("clip_id").to_pylist())
        unknown = Counter(r["clip_id"] for r in rows if r["clip_id"] not in known)
        if unknown:
            problems = [Problem(f"clip id not in the clips table ({n} rating(s))", id=cid, field="clip_id",
                                file=str(ws.table_path("clips")), hint=did_you_mean(cid, known))
                        for cid, n in sorted(unknown.items())]
            raise InputError(problems, summary=f"{len(unknown)} clip id(s) of the annotations are not clips of "
                                               f"workspace {ws.name}; nothing was imported (clips are keyed by "
                                               "the task's data.clip_id, else the task id)")
    old = ws.read_df("annotations") if ws.has_table("annotations") else pd.DataFrame(columns=list(_COMPARE))
    old_rows = [{k: (None if _isnan(v) else v) for k, v in r.items()} for r in old.to_dict("records")]
    old_by_key = {_row_key(r): r for r in old_rows}
    new_annotations = {str(r["annotation_id"]) for r in rows if r.get("annotation_id") is not None}
    new_keys = {_row_key(r) for r in rows}
    for r in rows:
        prev = old_by_key.get(_row_key(r))
        if prev is None:
            summary.added += 1
        elif _same(prev, r):
            summary.unchanged += 1
        else:
            summary.updated += 1
    kept = [r for r in old_rows if _row_key(r) not in new_keys
            and (r.get("annotation_id") is None or str(r["annotation_id"]) not in new_annotations)]
    merged = pd.DataFrame(kept + rows) if (kept or rows) else old
    for col in ("annotation_id", "clip_id", "rater_id", "dimension", "value", "source", "meta_channel",
                "meta_weights"):
        if col in merged.columns:  # text columns: missing is None, never a float NaN
            merged[col] = merged[col].astype(object).where(merged[col].notna(), None)
    if "created_at" in merged.columns:
        merged["created_at"] = pd.to_datetime(merged["created_at"], utc=True)
    ws.write_table("annotations", merged.reset_index(drop=True))
    return summary


def import_export(ws: Workspace, export: str | os.PathLike | list, *, mapping: Mapping[str, str] | None = None,
                  file: str | None = None) -> ImportSummary:
    """Import a Label Studio JSON export (a file path, or the parsed list) into the workspace.

    See the module docstring for the rules; project ids recorded by :func:`push` tell the project kind.
    Returns an :class:`ImportSummary`; raises InputError (nothing written) for any problem.
    """
    schema = AnnotationSchema.from_workspace(ws)
    if isinstance(export, (str, os.PathLike)):
        file = file or str(export)
        export = load_export(export)
    summary = ImportSummary(files=[file or "<export>"])
    rows = parse_export(export, schema, mapping=mapping, file=file or "<export>",
                        project_kinds=_recorded_kinds(ws), summary=summary)
    return merge_annotations(ws, rows, summary=summary)


def import_exports(ws: Workspace, paths: Sequence[str | os.PathLike], *,
                   mapping: Mapping[str, str] | None = None) -> ImportSummary:
    """Import several export files at once: all are checked before anything is written."""
    schema = AnnotationSchema.from_workspace(ws)
    summary = ImportSummary()
    kinds = _recorded_kinds(ws)
    rows: list[dict] = []
    for path in paths:
        summary.files.append(str(path))
        rows += parse_export(load_export(path), schema, mapping=mapping, file=str(path), project_kinds=kinds,
                             summary=summary)
    return merge_annotations(ws, rows, summary=summary)


def import_csv(ws: Workspace, path: str | os.PathLike, *, mapping: Mapping[str, str] | None = None,
               source: str | None = None) -> ImportSummary:
    """Import a long CSV (``clip_id, rater_id, dimension, value``) from another tool; see :func:`parse_long_csv`."""
    schema = AnnotationSchema.from_workspace(ws)
    summary = ImportSummary(files=[str(path)])
    rows = parse_long_csv(path, schema, mapping=mapping, source=source)
    summary.rows = len(rows)
    summary.cancelled = sum(r["cancelled"] for r in rows)
    summary.ground_truth = sum(r["ground_truth"] for r in rows)
    summary.multi_label = sum(r["meta_weights"] is not None for r in rows)
    summary = merge_annotations(ws, rows, summary=summary)
    repeats = _repeats_of_other_sources(ws, rows)
    if repeats:
        summary.warnings.append(
            f"{sum(repeats.values())} rating(s) repeat a clip, rater and dimension already rated from another "
            f"source ({', '.join(f'{s}: {n}' for s, n in sorted(repeats.items()))}): both are kept, aggregate uses "
            "the latest and agreement refuses the repeats. To replace an earlier file's ratings, import with "
            "--source naming its source (e.g. --source " + sorted(repeats)[0] + ")")
    return summary


def _repeats_of_other_sources(ws: Workspace, rows: Sequence[Mapping]) -> Counter:
    """Other source -> how many of ``rows`` (not cancelled) repeat one of its (clip, rater, dimension) ratings."""
    new = {(r["clip_id"], r["rater_id"], r["dimension"]): r.get("source") for r in rows if not r.get("cancelled")}
    if not new:
        return Counter()
    table = ws.read_df("annotations")
    live = ~table["cancelled"].fillna(False).astype(bool) if "cancelled" in table else True
    out: Counter = Counter()
    for clip, rater, dim, src in table.loc[live, ["clip_id", "rater_id", "dimension", "source"]].itertuples(
            index=False):
        mine = new.get((clip, rater, dim), src)
        if mine != src:
            out[str(src)] += 1
    return out


def _recorded_kinds(ws: Workspace) -> dict[int, str]:
    ls = ws.section("annotation").get("label_studio", {}) or {}
    return {int(ls[f"{k}_project"]): k for k in PROJECT_KINDS if ls.get(f"{k}_project") is not None}


# --------------------------------------------------------------------------------------------------
# Talking to a server


def _credentials(url: str | None, token: str | None, ws: Workspace | None) -> tuple[str, str]:
    from casebench.labelstudio_server import local_server_for

    recorded = (ws.section("annotation").get("label_studio", {}) or {}) if ws is not None else {}
    url = url or os.environ.get("LABEL_STUDIO_URL") or recorded.get("url")
    token = token or os.environ.get("LABEL_STUDIO_API_KEY")
    if not (url and token):  # the server `casebench labelstudio start` runs fills in what is missing
        local = local_server_for(url)
        if local is not None:
            url, token = url or local["url"], token or local["token"]
    if not url:
        raise ConfigError("no Label Studio URL: start one (casebench labelstudio start WORKSPACE), or pass --url "
                          "http://HOST:PORT or set LABEL_STUDIO_URL")
    if not token:
        raise ConfigError("no Label Studio token: pass --token or set LABEL_STUDIO_API_KEY (Account & Settings "
                          "-> Personal Access Token, or a legacy token when the organisation allows them)")
    return url.rstrip("/"), token


def _document_root(ws: Workspace, url: str, document_root: str | os.PathLike | None) -> Path:
    """--document-root, else LOCAL_FILES_DOCUMENT_ROOT, else the root of the `casebench labelstudio` server at
    ``url``, else the workspace folder."""
    from casebench.labelstudio_server import local_server_for

    if document_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT"):
        return Path(document_root or os.environ["LOCAL_FILES_DOCUMENT_ROOT"]).resolve()
    local = local_server_for(url)
    return Path(local["document_root"] if local else ws.root).resolve()


def _audio_status(ls, url: str, token: str, audio_url: str) -> int:
    """HTTP status of GET ``url + audio_url`` through the server, authenticated like the SDK client."""
    import httpx

    try:
        headers = ls._client_wrapper.get_headers()  # the SDK's own auth header (legacy Token or Bearer access)
    except AttributeError:  # pragma: no cover - another SDK layout
        headers = {"Authorization": f"Token {token}"}
    with httpx.stream("GET", url + audio_url, headers=headers, timeout=30) as r:
        return r.status_code


def _unserved(ws: Workspace, root: Path, url: str, audio_url: str, status: int) -> ConfigError:
    from casebench.labelstudio_server import local_server_for

    local = local_server_for(url)
    known = f" (this server serves {local['document_root']}: drop --document-root)" if local else ""
    return ConfigError(
        f"Label Studio at {url} does not serve the workspace's audio: GET {audio_url} answered {status}. The audio "
        f"URLs are relative to the document root {root}, so the server's LOCAL_FILES_DOCUMENT_ROOT must be {root} "
        f"(start one that is: casebench labelstudio start --root {root}), or pass --document-root with the "
        f"server's own root (a folder holding {ws.audio_dir.resolve()}){known}; no tasks were added")


def client(url: str, token: str, *, timeout: float = 60.0, httpx_client: Any = None):
    """A label-studio-sdk client (``LabelStudio``) for ``url`` with a legacy token or personal access token.

    The client keeps HTTP connections open; :func:`connect` closes them when done.
    """
    try:
        from label_studio_sdk.client import LabelStudio
    except ImportError as e:  # pragma: no cover
        from casebench.errors import MissingDependencyError

        raise MissingDependencyError("label-studio-sdk is needed to talk to Label Studio; install "
                                     "casebench[annotation]") from e
    if httpx_client is not None:
        return LabelStudio(base_url=url, api_key=token, httpx_client=httpx_client)
    return LabelStudio(base_url=url, api_key=token, timeout=timeout)


@contextlib.contextmanager
def connect(url: str, token: str, *, timeout: float = 60.0) -> Iterator[Any]:
    """``with connect(url, token) as ls:`` a :func:`client` whose connections are closed when the block ends."""
    import httpx

    with httpx.Client(timeout=timeout, follow_redirects=True) as http:
        yield client(url, token, httpx_client=http)


class _Server:
    """Turns SDK and connection errors into ConfigErrors that say what to do."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (ConfigError, InputError)):
            return False
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(exc, httpx.TransportError):
            raise ConfigError(f"cannot reach Label Studio at {self.url} ({exc}); is the server running?") from exc
        if isinstance(exc, ApiError):
            status = getattr(exc, "status_code", None)
            body = getattr(exc, "body", None)
            if status == 401:
                raise ConfigError(f"Label Studio at {self.url} refused the token (401: {body}); use a personal "
                                  "access token, or a legacy token with legacy tokens enabled for the "
                                  "organisation") from exc
            raise ConfigError(f"Label Studio at {self.url} answered {status}: {body}") from exc
        return False


def _ensure_local_storage(ls, project_id: int, audio_dir: Path) -> int:
    for storage in ls.import_storage.local.list(project=project_id):
        if Path(storage.path or "") == audio_dir:
            return storage.id
    storage = ls.import_storage.local.create(project=project_id, path=str(audio_dir), title="casebench audio",
                                             description="workspace audio/ served to raters; tasks are "
                                                         "imported by casebench, not synced",
                                             use_blob_urls=False)
    return storage.id


def _project_tasks(ls, project_id: int) -> dict[str, dict]:
    """clip_id -> {"id": task id, "data": task data} of the project's tasks."""
    done = {}
    for task in ls.tasks.list(project=project_id, fields="all"):
        data = task.data or {}
        if data.get("clip_id") is not None:
            done[str(data["clip_id"])] = {"id": task.id, "data": dict(data)}
    return done


def task_data(ws: Workspace, kind: ProjectKind, *, document_root: str | os.PathLike | None = None) -> list[dict]:
    """The Label Studio task data of every clip for the ``acoustic`` or ``semantic`` project.

    Acoustic: ``{"audio": "/data/local-files/?d=<path relative to document_root>", "clip_id", "speaker_id"}``
    (no text). Semantic: ``{"transcript", "clip_id", "speaker_id"}`` (no audio); the transcript is the
    ``transcripts`` table's text, else the clip's ``text_prompt``. Raises InputError listing clips whose
    audio file is missing or outside ``document_root``, or that have no text.
    """
    from urllib.parse import quote

    clips = ws.read_df("clips")
    problems: list[Problem] = []
    out = []
    clip_file = str(ws.table_path("clips"))
    if kind == "acoustic":
        root = Path(document_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or ws.root).resolve()
        for i, row in enumerate(clips.itertuples(index=False)):
            path = ws.resolve(row.path).resolve()
            if not path.is_file():
                problems.append(Problem(f"row {i}: audio file {path} not found", file=clip_file, id=row.clip_id,
                                        field="path", expected="an existing audio file"))
                continue
            try:
                rel = path.relative_to(root).as_posix()
            except ValueError:
                problems.append(Problem(f"row {i}: audio {path} is outside the document root {root}",
                                        file=clip_file, id=row.clip_id, field="path",
                                        expected="LOCAL_FILES_DOCUMENT_ROOT of the server to contain the "
                                                 "workspace (pass --document-root)"))
                continue
            out.append({"audio": f"/data/local-files/?d={quote(rel)}", "clip_id": row.clip_id,
                        "speaker_id": _none(getattr(row, "speaker_id", None))})
    else:
        texts = {}
        if ws.has_table("transcripts"):
            t = ws.read_df("transcripts")
            texts = dict(zip(t["clip_id"], t["text"], strict=True))
        for i, row in enumerate(clips.itertuples(index=False)):
            # a failed transcription has a null text (NaN once in pandas): the prompt stands in for it
            text = _none(texts.get(row.clip_id)) or _none(getattr(row, "text_prompt", None))
            if not text:
                problems.append(Problem(f"row {i}: no transcript", file=clip_file, id=row.clip_id, field="text",
                                        expected="a transcripts row (casebench transcribe) or clips.text_prompt"))
                continue
            out.append({"transcript": text, "clip_id": row.clip_id,
                        "speaker_id": _none(getattr(row, "speaker_id", None))})
    if problems:
        raise InputError(problems, summary=f"{len(problems)} clip(s) cannot become {kind} tasks; nothing was pushed")
    return out


def _none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def push(ws: Workspace, url: str | None = None, token: str | None = None, *,
         document_root: str | os.PathLike | None = None, raters_per_clip: int | None = None,
         kinds: Sequence[str] = PROJECT_KINDS, title: str | None = None, repair: bool = False) -> dict:
    """Create (or reuse) the workspace's Label Studio projects and import its clips as tasks.

    One project per kind (``acoustic``: audio only; ``semantic``: transcript only), labelling config from
    :func:`labeling_config`, overlap ``maximum_annotations = raters_per_clip`` on every task
    (``overlap_cohort_percentage = 100``), the guidelines as instructions. The acoustic project gets a
    local-files import storage on the workspace's ``audio/`` (not synced: casebench imports the tasks with
    their metadata, audio URLs ``/data/local-files/?d=<path relative to document_root>``). Projects whose
    ids are already recorded in ``[annotation.label_studio]`` are reused (their config updated) and only
    clips not yet there are imported, so pushing again after adding clips is safe.

    ``document_root`` must equal the server's ``LOCAL_FILES_DOCUMENT_ROOT`` (default: that environment
    variable, else the root of the ``casebench labelstudio`` server at ``url``, else the workspace root).
    Before any task is added, one clip's audio URL is fetched through the server (with the token): a server
    that does not serve it is a ConfigError naming the root it needs (a project made by this call is deleted
    again). Tasks already in the project whose audio URL differs from the one ``document_root`` gives (pushed
    with another root) are a ConfigError too, unless ``repair``, which rewrites their audio URL (annotations
    stay). Returns ``{kind: {"project": id, "tasks_added": n, "tasks_repaired": n, ...}}``.
    """
    ws.check_writable()  # the project ids go to casebench.toml: fail before creating projects on the server
    url, token = _credentials(url, token, ws)
    schema = AnnotationSchema.from_workspace(ws)
    raters = int(raters_per_clip or schema.raters_per_clip)
    if raters < 1:
        raise ConfigError(f"raters_per_clip = {raters}; expected at least 1")
    bad = [k for k in kinds if k not in PROJECT_KINDS]
    if bad:
        raise ConfigError(f"project kind(s) {bad}; expected {list(PROJECT_KINDS)}")
    root = _document_root(ws, url, document_root)
    datas = {k: task_data(ws, k, document_root=root) for k in kinds}
    configs = {k: labeling_config(schema, k) for k in kinds}
    annotation = ws.section("annotation")
    recorded = dict(annotation.get("label_studio", {}) or {})
    if recorded.get("url") and recorded["url"].rstrip("/") != url:
        recorded = {}  # another server: its project ids mean nothing here
    result: dict[str, Any] = {}
    with _Server(url), connect(url, token) as ls:
        for kind in kinds:
            pid = recorded.get(f"{kind}_project")
            project = None
            if pid is not None:
                try:
                    project = ls.projects.get(id=int(pid))
                except Exception as e:  # noqa: BLE001 - a deleted project: make a new one (reported)
                    if getattr(e, "status_code", None) != 404:
                        raise
            settings = {"label_config": configs[kind], "maximum_annotations": raters,
                        "overlap_cohort_percentage": 100, "show_skip_button": True,
                        "expert_instruction": _markdown_html(guidelines(kind, schema)), "show_instruction": True,
                        "description": f"casebench workspace {ws.name}: {kind} ratings "
                                       f"({'audio only' if kind == 'acoustic' else 'transcript only'})"}
            if project is None:
                project = ls.projects.create(title=title_for(ws, kind, title), **settings)
                created = True
            else:
                ls.projects.update(id=project.id, **settings)
                created = False
            storage = _ensure_local_storage(ls, project.id, ws.audio_dir.resolve()) if kind == "acoustic" else None
            existing = {} if created else _project_tasks(ls, project.id)
            have = set(existing)
            repaired = 0
            if kind == "acoustic" and datas[kind]:
                sample = datas[kind][0]["audio"]
                code = _audio_status(ls, url, token, sample)
                if code != 200:
                    if created:  # leave no empty project behind: the next push makes it again
                        ls.projects.delete(id=project.id)
                    raise _unserved(ws, root, url, sample, code)
                wanted = {d["clip_id"]: d for d in datas[kind]}
                wrong = {c: t for c, t in existing.items()
                         if c in wanted and (t["data"] or {}).get("audio") != wanted[c]["audio"]}
                if wrong and not repair:
                    example = next(iter(wrong.values()))["data"].get("audio")
                    raise ConfigError(
                        f"{len(wrong)} of {len(existing)} task(s) in project {project.id} point at audio URLs that "
                        f"document root {root} does not give (e.g. {example}, expected "
                        f"{wanted[next(iter(wrong))]['audio']}): they were pushed with another root; rewrite them "
                        f"with: casebench annotate push {ws.root} --repair" + (
                            f" --document-root {document_root}" if document_root else ""))
                for c, t in wrong.items():
                    ls.tasks.update(id=t["id"], data={**(t["data"] or {}), "audio": wanted[c]["audio"]})
                repaired = len(wrong)
            todo = [{"data": d} for d in datas[kind] if d["clip_id"] not in have]
            for start in range(0, len(todo), 500):
                ls.projects.import_tasks(id=project.id, request=todo[start:start + 500])
            recorded[f"{kind}_project"] = int(project.id)
            if storage is not None:
                recorded[f"{kind}_storage"] = int(storage)
            result[kind] = {"project": int(project.id), "created": created, "tasks_added": len(todo),
                            "tasks_already_there": len(have), "tasks_repaired": repaired,
                            "maximum_annotations": raters, "local_storage": storage}
    recorded.update({"url": url, "document_root": str(root), "raters_per_clip": raters})
    annotation["label_studio"] = recorded
    ws.set_section("annotation", annotation)
    return {"url": url, "document_root": str(root), "projects": result}


def title_for(ws: Workspace, kind: str, title: str | None = None) -> str:
    """Project title: ``<workspace name> · voice`` / ``· words`` (or ``<title> · ...``)."""
    return f"{title or ws.name} · {'voice (acoustic)' if kind == 'acoustic' else 'words (semantic)'}"[:50]


def export_project(url: str, token: str, project_id: int) -> list:
    """The JSON export (all tasks) of one project, as parsed JSON."""
    with _Server(url), connect(url, token) as ls:
        stream = ls.projects.exports.download_sync(int(project_id), export_type="JSON", download_all_tasks=True,
                                                   download_resources=False)
        data = b"".join(stream) if not isinstance(stream, (bytes, bytearray)) else bytes(stream)
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise ConfigError(f"Label Studio at {url} returned an export of project {project_id} that is not JSON "
                          f"({e.msg})") from e


def pull(ws: Workspace, url: str | None = None, token: str | None = None, *,
         mapping: Mapping[str, str] | None = None, kinds: Sequence[str] = PROJECT_KINDS,
         save_exports: bool = True) -> ImportSummary:
    """Export the workspace's projects from the live server and import them (see :func:`import_export`).

    The raw exports are kept as ``reports/label-studio/export-<kind>-project<id>-<UTC time>.json``
    (``save_exports``), so the table can be re-derived. Raises ConfigError when no project was pushed.
    """
    from casebench.workspace import atomic_write_text

    ws.check_writable("reports")  # before exporting every task from the server
    url, token = _credentials(url, token, ws)
    recorded = ws.section("annotation").get("label_studio", {}) or {}
    projects = {k: recorded.get(f"{k}_project") for k in kinds if recorded.get(f"{k}_project") is not None}
    if not projects:
        raise ConfigError(f"{ws.config_path}: no Label Studio project recorded in [annotation.label_studio]; "
                          "run `casebench annotate push` first, or import a downloaded export with "
                          "`casebench annotate import`")
    schema = AnnotationSchema.from_workspace(ws)
    summary = ImportSummary()
    kinds_by_id = {int(pid): k for k, pid in projects.items()}
    rows: list[dict] = []
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for kind, pid in projects.items():
        export = export_project(url, token, int(pid))
        name = f"{url}/projects/{pid} ({kind})"
        if save_exports:
            path = ws.reports_dir / "label-studio" / f"export-{kind}-project{pid}-{stamp}.json"
            atomic_write_text(path, json.dumps(export, indent=1, ensure_ascii=False) + "\n")
            name = str(path)
        summary.files.append(name)
        rows += parse_export(export, schema, mapping=mapping, file=name, project_kinds=kinds_by_id,
                             summary=summary)
    return merge_annotations(ws, rows, summary=summary)


def parse_mapping(pairs: Iterable[str] | None) -> dict[str, str]:
    """``["old=new", ...]`` (CLI ``--map``) -> ``{"old": "new"}``; ConfigError for a malformed pair.

    >>> parse_mapping(["emotion=acoustic_emotion"])
    {'emotion': 'acoustic_emotion'}
    """
    out = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ConfigError(f"--map {pair!r}; expected FROM_NAME=DIMENSION, e.g. --map emotion=acoustic_emotion")
        out[old.strip()] = new.strip()
    return out


def annotations_frame(ws: Workspace) -> pd.DataFrame:
    """The workspace's annotations table as a DataFrame (convenience for notebooks)."""
    return ws.read_df("annotations")
