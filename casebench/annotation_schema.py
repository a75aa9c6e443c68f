"""The annotation schema: what raters are asked, which values they may give, and how many rate each clip.

One data model read by every step that touches ratings: the Label Studio adapter (:mod:`casebench.labelstudio`,
which turns it into labelling configs), ``annotate import-csv``, :mod:`casebench.annotations` (levels of
measurement for agreement), :mod:`casebench.aggregate` and the data card (:mod:`casebench.datacard`, which
describes the corpus by what the schema and the labels say it is). It is resolved from the ``[annotation]``
section of ``casebench.toml`` and the workspace taxonomy by :meth:`AnnotationSchema.from_config`::

    dimensions = ["acoustic_emotion", "semantic_emotion", "valence", "arousal", "dominance",
                  "confidence", "is_ambiguous"]
    scale = [1, 5]                 # valence / arousal / dominance (1-5 or 1-7)
    confidence_scale = [1, 5]      # default: scale
    vad_widget = "rating"          # "rating" (stars, scales starting at 1) or "choices" (one button per value)
    raters_per_clip = 3            # how many raters rate each clip (Label Studio overlap)
    mixed_emotions = false         # emotions: one label ("single") or several with weights ("mixed")
    mixed_weight_max = 5           # mixed mode: each chosen label gets a 1..mixed_weight_max weight
    acoustic_dimensions = [...]    # which dimensions each project asks for (defaults below)
    semantic_dimensions = [...]
    [annotation.custom.<name>]     # any other declared dimension: kind = "choices" (values = [...]),
                                   # "rating" (scale = [1, N]) or "text"; project = "acoustic" | "semantic" | "both"

``casebench init --labels single|mixed --raters N`` writes ``mixed_emotions`` and ``raters_per_clip``.

**Multi-label values.** In mixed mode (and wherever a rater chose several emotions) one rating is a set of
labels with weights. In the long ``annotations`` table it is stored as ``value`` = the strongest label
(first in taxonomy order among equals) and ``meta_weights`` = the normalised weights as JSON
(``{"joy": 0.75, "love": 0.25}``); in a long CSV or a ``--level masi`` agreement table it is written
``"joy;love"`` (equal weights) or ``"joy:3;love:1"`` (weights), see :func:`parse_label_set`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from casebench.errors import ConfigError
from casebench.taxonomy import Taxonomy, as_taxonomy

if TYPE_CHECKING:
    from casebench.workspace import Workspace

#: How many emotions one rating may hold: ``single`` (one label) or ``mixed`` (several, weighted).
LABEL_MODES: tuple[str, ...] = ("single", "mixed")
#: Separates the labels of one multi-label value ("joy;love"); ``:`` separates a label from its weight.
LABEL_SEPARATOR = ";"
WEIGHT_SEPARATOR = ":"

ProjectKind = Literal["acoustic", "semantic"]
PROJECT_KINDS: tuple[str, ...] = ("acoustic", "semantic")
#: The emotion dimension each project asks for.
EMOTION_OF: dict[str, str] = {"acoustic": "acoustic_emotion", "semantic": "semantic_emotion"}
RATING_DIMENSIONS = ("valence", "arousal", "dominance")
DEFAULT_PROJECT_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "acoustic": ("acoustic_emotion", "valence", "arousal", "dominance", "confidence", "is_ambiguous"),
    "semantic": ("semantic_emotion", "confidence", "is_ambiguous"),
}

_TITLES = {
    "acoustic_emotion": "Emotion of the VOICE (ignore the words)",
    "semantic_emotion": "Emotion of the WORDS (as written)",
    "valence": "Valence: {lo} = very negative ... {hi} = very positive",
    "arousal": "Arousal: {lo} = very calm ... {hi} = very excited",
    "dominance": "Dominance: {lo} = weak, submissive ... {hi} = strong, in control",
    "confidence": "How sure are you? {lo} = guessing ... {hi} = certain",
    "is_ambiguous": "Could this reasonably be more than one emotion?",
}



@dataclass(frozen=True)
class DimensionSpec:
    """What one dimension asks and which values it accepts.

    ``kind`` is ``emotion`` (a taxonomy label), ``rating`` (an integer from ``low`` to ``high``),
    ``boolean`` (stored ``"true"``/``"false"``), ``choices`` (one of ``values``) or ``text``.
    """

    name: str
    kind: Literal["emotion", "rating", "boolean", "choices", "text"]
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    widget: Literal["choices", "rating", "textarea"] = "choices"
    title: str = ""


@dataclass(frozen=True)
class AnnotationSchema:
    """The workspace's annotation settings, resolved: dimensions, scales and which project asks what.

    >>> s = AnnotationSchema.from_config({"dimensions": ["acoustic_emotion", "valence"], "scale": [1, 7]},
    ...                                  "iemocap4")
    >>> s.projects["acoustic"], s.dimensions["valence"].high, s.dimensions["acoustic_emotion"].values
    (('acoustic_emotion', 'valence'), 7, ('angry', 'happy', 'neutral', 'sad'))
    """

    taxonomy: Taxonomy
    dimensions: dict[str, DimensionSpec]
    projects: dict[str, tuple[str, ...]]
    raters_per_clip: int = 3
    mixed: bool = False
    weight_max: int = 5

    @classmethod
    def from_workspace(cls, ws: Workspace) -> AnnotationSchema:
        """The schema of ``ws`` (its taxonomy and ``[annotation]`` section)."""
        return cls.from_config(ws.section("annotation"), ws.taxonomy, where=str(ws.config_path))

    @classmethod
    def from_config(cls, annotation: Mapping[str, Any], taxonomy: str | Taxonomy, *,
                    where: str = "[annotation]") -> AnnotationSchema:
        """Resolve an ``[annotation]`` section; ConfigError naming the key for a bad setting."""
        from casebench.workspace import DEFAULT_DIMENSIONS

        tax = as_taxonomy(taxonomy)
        declared = list(annotation.get("dimensions", DEFAULT_DIMENSIONS))
        scale = _scale(annotation.get("scale", [1, 5]), f"{where}: [annotation] scale")
        conf_scale = _scale(annotation.get("confidence_scale", scale), f"{where}: [annotation] confidence_scale")
        vad_widget = annotation.get("vad_widget", "rating")
        if vad_widget not in ("rating", "choices"):
            raise ConfigError(f"{where}: [annotation] vad_widget = {vad_widget!r}; expected 'rating' or 'choices'")
        custom = annotation.get("custom", {}) or {}
        if not isinstance(custom, Mapping):
            raise ConfigError(f"{where}: [annotation.custom] must be a table of dimension settings")
        specs: dict[str, DimensionSpec] = {}
        custom_projects: dict[str, list[str]] = {k: [] for k in PROJECT_KINDS}
        for name in declared:
            if name in EMOTION_OF.values():
                specs[name] = DimensionSpec(name, "emotion", tuple(tax.labels), title=_TITLES[name])
            elif name in RATING_DIMENSIONS or name == "confidence":
                lo, hi = conf_scale if name == "confidence" else scale
                # confidence: stars when they can show the scale, else buttons
                widget = ("rating" if lo == 1 else "choices") if name == "confidence" else vad_widget
                if widget == "rating" and lo != 1:
                    raise ConfigError(f"{where}: [annotation] {'confidence_scale' if name == 'confidence' else 'scale'}"
                                      f" = [{lo}, {hi}] cannot be shown as stars (they count from 1); "
                                      "use a scale starting at 1 or vad_widget = 'choices'")
                specs[name] = DimensionSpec(name, "rating", tuple(str(v) for v in range(lo, hi + 1)), lo, hi,
                                            widget, _TITLES[name].format(lo=lo, hi=hi))
            elif name == "is_ambiguous":
                specs[name] = DimensionSpec(name, "boolean", ("true", "false"), title=_TITLES[name])
            elif name in custom:
                spec, projects = _custom_spec(name, custom[name], f"{where}: [annotation.custom.{name}]")
                specs[name] = spec
                for p in projects:
                    custom_projects[p].append(name)
            # other declared names have no widget: they can come from import-csv, not from Label Studio
        for name in custom:
            if name not in declared:
                raise ConfigError(f"{where}: [annotation.custom.{name}] describes a dimension that is not in "
                                  f"[annotation] dimensions {declared}", )
        projects = {}
        for kind in PROJECT_KINDS:
            key = f"{kind}_dimensions"
            if key in annotation:
                dims = list(annotation[key])
                bad = [d for d in dims if d not in specs]
                if bad:
                    raise ConfigError(f"{where}: [annotation] {key} names {bad}; expected dimensions declared "
                                      f"in [annotation] dimensions that have a widget: {sorted(specs)}")
                if EMOTION_OF[kind] in specs and EMOTION_OF[kind] not in dims:
                    dims.insert(0, EMOTION_OF[kind])
            else:
                dims = [d for d in DEFAULT_PROJECT_DIMENSIONS[kind] if d in specs] + custom_projects[kind]
            leak = EMOTION_OF["semantic" if kind == "acoustic" else "acoustic"]
            if leak in dims:
                raise ConfigError(f"{where}: [annotation] {key} must not ask for {leak}: the voice and the "
                                  "words are rated in separate projects")
            projects[kind] = tuple(dims)
        raters = annotation.get("raters_per_clip", 3)
        if not isinstance(raters, int) or isinstance(raters, bool) or raters < 1:
            raise ConfigError(f"{where}: [annotation] raters_per_clip = {raters!r}; expected an integer >= 1")
        weight_max = annotation.get("mixed_weight_max", 5)
        if not isinstance(weight_max, int) or weight_max < 1:
            raise ConfigError(f"{where}: [annotation] mixed_weight_max = {weight_max!r}; expected an integer >= 1")
        mixed = annotation.get("mixed_emotions", False)
        if not isinstance(mixed, bool):
            raise ConfigError(f"{where}: [annotation] mixed_emotions = {mixed!r}; expected true or false")
        return cls(tax, specs, projects, raters, mixed, weight_max)

    @property
    def label_mode(self) -> str:
        """``"mixed"`` when a rating may hold several weighted emotions, else ``"single"``."""
        return "mixed" if self.mixed else "single"

    @property
    def emotion_channels(self) -> tuple[str, ...]:
        """The channels whose emotion is rated (``acoustic``, ``semantic``): conflict needs both."""
        return tuple(k for k, d in EMOTION_OF.items() if d in self.dimensions)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports and cards: label mode, raters per clip, rated emotion channels
        and dimensions.

        >>> AnnotationSchema.from_config({"mixed_emotions": True, "raters_per_clip": 20}, "ekman7").describe()["labels"]
        'mixed'
        """
        return {"labels": self.label_mode, "raters_per_clip": self.raters_per_clip,
                "emotion_channels": list(self.emotion_channels), "dimensions": list(self.dimensions),
                "weight_max": self.weight_max if self.mixed else None}

    def weight_controls(self) -> dict[str, tuple[str, str]]:
        """Mixed-emotion weight control name -> (emotion dimension, label)."""
        return {weight_control(dim, label): (dim, label) for dim in EMOTION_OF.values() if dim in self.dimensions
                for label in self.taxonomy.labels}


def weight_control(dimension: str, label: str) -> str:
    """Name of the weight control of ``label`` in mixed-emotion mode.

    >>> weight_control("acoustic_emotion", "angry")
    'acoustic_emotion_weight_angry'
    """
    return f"{dimension}_weight_{label}"


def _scale(value: Any, where: str) -> tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) or value[0] >= value[1]):
        raise ConfigError(f"{where} = {value!r}; expected [low, high], two integers with low < high (e.g. [1, 5])")
    if value[1] - value[0] > 20:
        raise ConfigError(f"{where} = {list(value)}; expected at most 21 steps")
    return int(value[0]), int(value[1])


def _custom_spec(name: str, cfg: Any, where: str) -> tuple[DimensionSpec, list[str]]:
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where} must be a table with kind = 'choices' | 'rating' | 'text'")
    kind = cfg.get("kind")
    project = cfg.get("project", "both")
    if project not in ("acoustic", "semantic", "both"):
        raise ConfigError(f"{where} project = {project!r}; expected 'acoustic', 'semantic' or 'both'")
    projects = list(PROJECT_KINDS) if project == "both" else [project]
    title = str(cfg.get("title", name.replace("_", " ").capitalize()))
    if kind == "choices":
        values = cfg.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"{where} values = {values!r}; expected a non-empty list of strings")
        return DimensionSpec(name, "choices", tuple(values), title=title), projects
    if kind == "rating":
        lo, hi = _scale(cfg.get("scale", [1, 5]), f"{where} scale")
        widget = "rating" if lo == 1 else "choices"
        return DimensionSpec(name, "rating", tuple(str(v) for v in range(lo, hi + 1)), lo, hi, widget,
                             title), projects
    if kind == "text":
        return DimensionSpec(name, "text", widget="textarea", title=title), projects
    raise ConfigError(f"{where} kind = {kind!r}; expected 'choices', 'rating' or 'text'")


def annotation_settings(labels: str = "single", raters: int = 3) -> dict[str, Any]:
    """The ``[annotation]`` keys of a label mode and a rater count (what ``casebench init --labels --raters``
    writes); ConfigError for an unknown mode or fewer than one rater.

    >>> annotation_settings("mixed", 20)
    {'mixed_emotions': True, 'raters_per_clip': 20}
    """
    if labels not in LABEL_MODES:
        from casebench.errors import unknown_name

        raise unknown_name("label mode", labels, LABEL_MODES)
    if isinstance(raters, bool) or not isinstance(raters, int) or raters < 1:
        raise ConfigError(f"raters = {raters!r}; expected an integer >= 1")
    return {"mixed_emotions": labels == "mixed", "raters_per_clip": raters}


def annotation_schema(ws: Workspace) -> AnnotationSchema:
    """The resolved annotation schema of a workspace (see :class:`AnnotationSchema`)."""
    return AnnotationSchema.from_workspace(ws)


# --------------------------------------------------------------------------------------------------
# Multi-label values


def parse_label_set(raw: str) -> dict[str, float]:
    """The labels of a multi-label value and their raw weights, in the order given.

    ``"a;b"`` gives every label weight 1; ``"a:3;b:1"`` the given weights (numbers >= 0); blanks around
    the separators are ignored. Raises ValueError (with what was wrong) for an empty label, a weight that
    is not a non-negative number, or a label given twice; callers turn it into an error naming their file,
    line and field.

    >>> parse_label_set("disapproval;rage")
    {'disapproval': 1.0, 'rage': 1.0}
    >>> parse_label_set("joy:3; love:1")
    {'joy': 3.0, 'love': 1.0}
    """
    out: dict[str, float] = {}
    for part in str(raw).split(LABEL_SEPARATOR):
        part = part.strip()
        if not part:
            continue
        label, sep, weight = part.partition(WEIGHT_SEPARATOR)
        label = label.strip()
        if not label:
            raise ValueError(f"empty label in {raw!r}")
        w = 1.0
        if sep:
            try:
                w = float(weight)
            except ValueError:
                raise ValueError(f"weight {weight.strip()!r} of {label!r} is not a number") from None
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight {weight.strip()!r} of {label!r} is not a number >= 0")
        if label in out:
            raise ValueError(f"label {label!r} given twice in {raw!r}")
        out[label] = w
    return out


def normalise_weights(weights: Mapping[str, float], taxonomy: Taxonomy) -> tuple[str, dict[str, float]]:
    """(strongest label, shares summing to 1 in taxonomy order) of a weighted label set.

    The strongest label is the one with the largest weight, first in taxonomy order among equals; all-zero
    weights count as equal weights.

    >>> normalise_weights({"sad": 1, "angry": 3}, as_taxonomy("ekman7"))
    ('angry', {'angry': 0.75, 'sad': 0.25})
    """
    w = {x: float(v) for x, v in weights.items()}
    total = sum(w.values())
    if total <= 0:
        w = {x: 1.0 for x in w}
        total = float(len(w))
    strongest = min(w, key=lambda x: (-w[x], taxonomy.index[x]))
    return strongest, {x: w[x] / total for x in sorted(w, key=taxonomy.index.__getitem__)}


def label_set_of(value: Any, weights: Any) -> str | None:
    """A stored rating (``value`` plus ``meta_weights`` JSON) as a ``"a;b"`` label set, labels sorted by
    name: the form ``--level masi`` compares. None for a missing value.

    >>> label_set_of("joy", '{"love": 0.25, "joy": 0.75}'), label_set_of("sad", None)
    ('joy;love', 'sad')
    """
    if isinstance(weights, str) and weights:
        try:
            parsed = json.loads(weights)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping) and parsed:
            return LABEL_SEPARATOR.join(sorted(k for k, v in parsed.items() if float(v) > 0))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
