"""Aggregation: from the long ``annotations`` table to one row of ``labels`` per clip.

Per clip, the voice (``acoustic_emotion``) and the words (``semantic_emotion``) are aggregated apart:

* **hard label** by majority vote, or by Dawid–Skene / MACE (crowd-kit), which weigh raters by their
  estimated reliability. The majority tie rule is explicit and recorded in the ``method`` column:
  ``tie="none"`` (default) leaves a tied clip without a hard label (it keeps its distribution and fails
  the thresholds: a coin flip is not a label), ``tie="taxonomy-order"`` takes the tied label that comes
  first in the taxonomy;
* **distribution**: each rater's vote as a one-hot vector (or, for mixed-emotion ratings, the rater's
  normalised weights from ``meta_weights``), summed, plus optional additive ``smoothing`` per class,
  normalised; in taxonomy order;
* **agreement** (per item): the share of the clip's raters whose label equals the aggregated label
  (for majority: the majority share). ``agreement`` is the acoustic one, ``meta_semantic_agreement``
  the semantic one;
* **valence / arousal / dominance**: the mean of the ratings, and their sample standard deviation as the
  spread (``meta_<dim>_sd``, null with one rating).

Ratings that are not counted: cancelled (skipped) annotations, rows without a value, and — with
``include_ground_truth=False`` — ground-truth annotations. A rater who rated the same clip and dimension
more than once counts once, with the latest rating. Each is counted in the report.

**Conflict tagging** (the documented analogue of the CASE benchmark's expert filtering, where experts kept
only clips whose voice and words clearly carried their intended emotions): a clip *passes the thresholds*
when both channels have a hard label, each backed by at least ``min_agreement`` of its raters, by at least
``min_raters`` raters, and ticked ``is_ambiguous`` by at most ``max_ambiguous_share`` (and, when set,
``max_ambiguous_votes``) of that channel's raters. ``is_ambiguous`` ratings are attributed to a channel by
their ``meta_channel`` (the Label Studio project they came from); rows without one count for both. A
clip *is a conflict clip* when it passes and its acoustic and semantic labels differ; its
``conflict_type`` is ``"<acoustic>-voice/<semantic>-words"``. Clips that fail are kept with
``passes_thresholds=False`` and the reasons in ``meta_threshold_failures``, never deleted. Conflict needs
both channels: when only one is rated (a mixed-emotion corpus rated from the voice alone), no clip is a
conflict and the report's ``conflict`` and ``congruent`` counts are null (``conflict_defined`` false).

**Rater quality** (:func:`rater_quality`, per channel, on the counted ratings). The test: a rater's
agreement with the leave-one-out majority (the majority of the *other* raters of the same clip, on clips
where it is untied) against chance, by a one-sided exact binomial test at level ``alpha``; chance is what
a rater who ignores the clip would reach with the same label frequencies, ``sum_k p_rater(k) *
p_majority(k)`` (as in Cohen's kappa). Only raters with at least ``min_ratings`` compared votes are judged.
A rater one of whose labels makes up at least ``constant_share`` of their votes is a *constant* candidate;
candidates are left out of the majority others are compared with (two constant raters among five would
otherwise *be* that majority, and every honest rater would look random), unless a clip has no other
rater. A candidate not above chance is flagged *constant* (and *random*); another rater not above chance
is flagged *random*. A rater who answers mostly one label because the corpus is mostly that label agrees
with the others above chance and is not flagged. Flags are reported and warned about; ``exclude_flagged``
leaves every rating of a flagged rater out of the labels, distributions and V/A/D. With Dawid–Skene or
MACE, a warning also says when the method's labels differ from the majority vote on more than
``max_disagreement`` of the clips (with two constant raters among five, MACE can trust the spammers and
fall below chance).

For synthesized clips (``clips.intended_acoustic`` / ``intended_semantic``), :func:`intended_match`
reports how often single ratings and aggregated labels match the intended emotions.

The core (:func:`majority_vote`, :func:`vote_distribution`, :func:`aggregate_labels`,
:func:`intended_match`) takes DataFrames and returns values; :func:`aggregate` reads and writes the
workspace.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from casebench.errors import ConfigError, InputError, Problem
from casebench.taxonomy import Taxonomy, as_taxonomy

if TYPE_CHECKING:
    import pandas as pd

    from casebench.workspace import Workspace

Method = Literal["majority", "dawid-skene", "mace"]
TieRule = Literal["none", "taxonomy-order"]
METHODS: tuple[str, ...] = ("majority", "dawid-skene", "mace")
TIE_RULES: tuple[str, ...] = ("none", "taxonomy-order")
CHANNELS = {"acoustic": "acoustic_emotion", "semantic": "semantic_emotion"}
VAD = ("valence", "arousal", "dominance")


@dataclass(frozen=True)
class Thresholds:
    """When a clip's labels are trusted enough to call it congruent or a conflict (see the module docstring).

    >>> Thresholds().min_agreement
    0.5
    """

    min_agreement: float = 0.5
    min_raters: int = 1
    max_ambiguous_share: float = 0.5
    max_ambiguous_votes: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"min_agreement = {self.min_agreement}; expected a share from 0 to 1")
        if not 0.0 <= self.max_ambiguous_share <= 1.0:
            raise ConfigError(f"max_ambiguous_share = {self.max_ambiguous_share}; expected a share from 0 to 1")
        if self.min_raters < 1:
            raise ConfigError(f"min_raters = {self.min_raters}; expected at least 1")
        if self.max_ambiguous_votes is not None and self.max_ambiguous_votes < 0:
            raise ConfigError(f"max_ambiguous_votes = {self.max_ambiguous_votes}; expected >= 0 or unset")


@dataclass(frozen=True)
class RaterChecks:
    """When a rater is flagged and when a crowd-kit method is warned about (see the module docstring).

    >>> RaterChecks().min_ratings
    20
    """

    min_ratings: int = 20
    constant_share: float = 0.9
    alpha: float = 0.05
    max_disagreement: float = 0.2

    def __post_init__(self) -> None:
        if self.min_ratings < 1:
            raise ConfigError(f"min_ratings = {self.min_ratings}; expected at least 1")
        for name in ("constant_share", "alpha", "max_disagreement"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} = {getattr(self, name)}; expected a share from 0 to 1")


@dataclass
class AggregateResult:
    """The labels table (one row per rated clip) and a JSON-able report of what was counted and found."""

    labels: pd.DataFrame
    report: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Small pure pieces


def majority_vote(votes: Sequence[str], labels: Sequence[str], tie: TieRule = "none") -> tuple[str | None, float]:
    """The most frequent of ``votes`` and its share; ties broken by ``tie``.

    ``tie="none"``: a tie for the top gives no label (None), the share is still reported;
    ``tie="taxonomy-order"``: the tied label first in ``labels`` wins. No votes: ``(None, nan)``.

    >>> majority_vote(["sad", "angry", "sad"], ["angry", "sad"])
    ('sad', 0.6666666666666666)
    >>> majority_vote(["sad", "angry"], ["angry", "sad"])
    (None, 0.5)
    >>> majority_vote(["sad", "angry"], ["angry", "sad"], "taxonomy-order")
    ('angry', 0.5)
    """
    if tie not in TIE_RULES:
        raise ConfigError(f"tie rule {tie!r}; expected one of {list(TIE_RULES)}")
    if not votes:
        return None, math.nan
    counts = Counter(votes)
    top = max(counts.values())
    winners = [x for x in labels if counts.get(x, 0) == top]
    unknown = [x for x in counts if x not in set(labels)]
    if unknown:
        raise InputError(Problem(f"vote {unknown[0]!r}", expected=f"one of {list(labels)}"))
    share = top / len(votes)
    if len(winners) > 1 and tie == "none":
        return None, share
    return winners[0], share


def vote_distribution(votes: Sequence[str], labels: Sequence[str], *, weights: Sequence[Mapping | None] | None = None,
                      smoothing: float = 0.0) -> np.ndarray:
    """Vote shares in the order of ``labels``: ``(counts + smoothing) / (n + smoothing * K)``.

    A vote with a ``weights`` mapping (mixed emotions: label -> share, summing to 1) adds those shares
    instead of a one-hot vector.

    >>> vote_distribution(["sad", "sad", "angry"], ["angry", "happy", "sad"]).round(3).tolist()
    [0.333, 0.0, 0.667]
    >>> vote_distribution(["sad"], ["angry", "sad"], smoothing=1.0).tolist()
    [0.3333333333333333, 0.6666666666666666]
    >>> vote_distribution(["sad"], ["angry", "sad"], weights=[{"sad": 0.75, "angry": 0.25}]).tolist()
    [0.25, 0.75]
    """
    if smoothing < 0:
        raise ConfigError(f"smoothing = {smoothing}; expected >= 0")
    index = {x: i for i, x in enumerate(labels)}
    counts = np.zeros(len(labels))
    for i, v in enumerate(votes):
        w = weights[i] if weights is not None else None
        if w:
            for label, share in w.items():
                counts[index[label]] += float(share)
        else:
            counts[index[v]] += 1.0
    counts += smoothing
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(labels), np.nan)


def _weights(raw: Any) -> dict | None:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------
# The core


def counted_ratings(annotations: pd.DataFrame, *, include_ground_truth: bool = True) -> tuple[pd.DataFrame, dict]:
    """The rows aggregation counts as ratings, and counts of what it left out (and why).

    Leaves out cancelled rows, rows with no value, ground-truth rows unless ``include_ground_truth``, and
    all but the latest rating of a rater for the same clip, dimension and channel (``meta_channel``).
    """
    df = annotations.copy()
    n = len(df)
    out = {"rows": n}
    cancelled = df["cancelled"].astype(bool)
    out["cancelled_rows"] = int(cancelled.sum())
    df = df[~cancelled]
    gt = df["ground_truth"].astype(bool)
    out["ground_truth_rows"] = int(gt.sum())
    if not include_ground_truth:
        df = df[~gt]
    empty = df["value"].isna()
    out["rows_without_value"] = int(empty.sum())
    df = df[~empty]
    if "created_at" in df.columns:
        df = df.sort_values("created_at", kind="stable", na_position="first")
    # confidence and is_ambiguous are asked in both projects: a rater's two answers are two ratings
    key = ["clip_id", "rater_id", "dimension"] + (["meta_channel"] if "meta_channel" in df.columns else [])
    dup = df.duplicated(key, keep="last")
    out["repeated_ratings_dropped"] = int(dup.sum())
    df = df[~dup]
    out["ratings"] = len(df)
    return df, out


MACE_RESTARTS, MACE_ITERATIONS = 10, 50  # crowd-kit's MACE: random restarts, EM iterations in each


def _crowdkit(method: str, df: pd.DataFrame, seed: int, progress: bool = False, what: str = "") -> dict:
    """clip_id -> label from crowd-kit's Dawid-Skene or MACE (with a progress bar over MACE's E-steps)."""
    try:
        from crowdkit.aggregation import MACE, DawidSkene
    except ImportError as e:  # pragma: no cover - the annotation extra is missing
        from casebench.errors import MissingDependencyError

        raise MissingDependencyError(f"{method} needs crowd-kit; install casebench[annotation]") from e
    data = df.rename(columns={"rater_id": "worker", "clip_id": "task", "value": "label"})[["worker", "task", "label"]]
    model = (DawidSkene(n_iter=100) if method == "dawid-skene"
             else MACE(n_restarts=MACE_RESTARTS, n_iter=MACE_ITERATIONS, random_state=seed))
    with warnings.catch_warnings():
        # crowd-kit 1.4 still uses pandas keywords (inplace=, copy=) that newer pandas deprecates
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        if method != "mace" or not progress or not hasattr(model, "_e_step"):
            return model.fit_predict(data).to_dict()
        from casebench.progress import progress_bar

        # MACE runs one E-step per iteration of each restart, plus one per restart and a final one; crowd-kit
        # offers only tqdm bars (verbose=), so the bar counts calls of its E-step
        total = model.n_restarts * (model.n_iter + 1) + 1
        with progress_bar(total, f"MACE {what}".strip()) as advance:
            e_step = model._e_step

            def counted(*args, **kwargs):
                out = e_step(*args, **kwargs)
                advance()
                return out

            model._e_step = counted
            return model.fit_predict(data).to_dict()


def aggregate_labels(annotations: pd.DataFrame, taxonomy: str | Taxonomy, *, method: Method = "majority",
                     tie: TieRule = "none", smoothing: float = 0.0, thresholds: Thresholds | None = None,
                     include_ground_truth: bool = True, seed: int = 0,
                     clip_ids: Sequence[str] | None = None, checks: RaterChecks | None = None,
                     exclude_flagged: bool = False, progress: bool = False) -> AggregateResult:
    """Aggregate the long annotations into one labels row per rated clip (see the module docstring).

    Args:
        annotations: the long table (clip_id, rater_id, dimension, value, value_num, cancelled,
            ground_truth, optional created_at, meta_channel, meta_weights).
        taxonomy: the label set; distributions are in its order.
        method: ``majority``, ``dawid-skene`` or ``mace`` (crowd-kit) for the hard labels.
        tie: the majority tie rule (``none`` or ``taxonomy-order``).
        smoothing: additive smoothing of the distributions (0 = raw vote shares).
        thresholds: when a clip passes (and may be called a conflict); default :class:`Thresholds`.
        include_ground_truth: count ground-truth annotations as ratings.
        seed: MACE's random restarts.
        clip_ids: all clips of the corpus, to report those without ratings.
        checks: when raters are flagged and a method is warned about; default :class:`RaterChecks`.
        exclude_flagged: leave every rating of a flagged rater out (the flags are computed on all ratings).
        progress: a progress bar on stderr while MACE runs (it takes about a minute on thousands of ratings).

    Returns an :class:`AggregateResult` (labels DataFrame in the ``labels`` table schema plus ``meta_*``
    columns, and a report with ``raters`` (:func:`rater_quality` per channel, ``flagged``, ``excluded``) and
    ``warnings``). Raises ConfigError for an unknown method, InputError for labels outside the
    taxonomy.

    >>> import pandas as pd
    >>> rows = [("c1", r, "acoustic_emotion", v) for r, v in zip("abc", ["sad", "sad", "angry"])]
    >>> rows += [("c1", r, "semantic_emotion", "happy") for r in "abc"]
    >>> df = pd.DataFrame(rows, columns=["clip_id", "rater_id", "dimension", "value"]).assign(
    ...     cancelled=False, ground_truth=False, value_num=None)
    >>> row = aggregate_labels(df, "ekman7").labels.iloc[0]
    >>> row.acoustic_label, row.semantic_label, round(float(row.agreement), 3), bool(row.is_conflict), row.conflict_type
    ('sad', 'happy', 0.667, True, 'sad-voice/happy-words')
    """
    import pandas as pd

    tax = as_taxonomy(taxonomy)
    labels = list(tax.labels)
    thresholds = thresholds or Thresholds()
    if method not in METHODS:
        raise ConfigError(f"aggregation method {method!r}; expected one of {list(METHODS)}")
    if tie not in TIE_RULES:
        raise ConfigError(f"tie rule {tie!r}; expected one of {list(TIE_RULES)}")
    if smoothing < 0:
        raise ConfigError(f"smoothing = {smoothing}; expected >= 0")
    missing = [c for c in ("clip_id", "rater_id", "dimension", "value") if c not in annotations.columns]
    if missing:
        raise InputError(Problem(f"columns {list(annotations.columns)}", expected=f"also {missing}"))
    ann = annotations.copy()
    for col, default in (("cancelled", False), ("ground_truth", False), ("value_num", np.nan),
                         ("meta_channel", None), ("meta_weights", None)):
        if col not in ann.columns:
            ann[col] = default
    df, counted = counted_ratings(ann, include_ground_truth=include_ground_truth)
    checks = checks or RaterChecks()
    quality = {c: rater_quality(df[df["dimension"] == dim], labels, checks) for c, dim in CHANNELS.items()}
    flagged = sorted({r for q in quality.values() for r, v in q.items() if v["flags"]})
    warn = [f"rater {r!r} ({c}): " + "; ".join(_flag_text(f, v) for f in v["flags"])
            for c, q in quality.items() for r, v in q.items() if v["flags"]]
    if flagged and exclude_flagged:
        out_ = df["rater_id"].isin(flagged)
        counted["flagged_rater_ratings_excluded"] = int(out_.sum())
        df = df[~out_]
        warn.append(f"left out {int(out_.sum())} rating(s) of {len(flagged)} flagged rater(s) (--exclude-flagged)")
    elif flagged:
        warn.append(f"the votes of {len(flagged)} flagged rater(s) are in the labels and distributions; "
                    "--exclude-flagged leaves them out")
    disagree: dict[str, list[int]] = {c: [0, 0] for c in CHANNELS}  # [differ, compared]
    method_name = f"majority(tie={tie})" if method == "majority" else method
    if smoothing:
        method_name += f",smoothing={smoothing:g}"

    per_channel: dict[str, dict[str, dict]] = {}
    for channel, dim in CHANNELS.items():
        sub = df[df["dimension"] == dim]
        bad = sorted(set(sub["value"]) - set(labels))
        if bad:
            raise InputError([Problem(f"{dim} label {b!r}", expected=f"a label of {tax.name}: {labels}")
                              for b in bad], summary=f"{len(bad)} label(s) outside taxonomy {tax.name}")
        model = _crowdkit(method, sub, seed, progress, channel) if method != "majority" and len(sub) else {}
        out: dict[str, dict] = {}
        for clip, g in sub.groupby("clip_id", sort=False):
            votes = g["value"].tolist()
            ws_ = [_weights(w) for w in g["meta_weights"].tolist()]
            label, share = majority_vote(votes, labels, tie)
            if method != "majority":
                if label is not None and model.get(clip) is not None:
                    disagree[channel][0] += label != model.get(clip)
                    disagree[channel][1] += 1
                label = model.get(clip)
                share = sum(v == label for v in votes) / len(votes)
            out[clip] = {"label": label, "agreement": share, "n": len(votes),
                         "dist": vote_distribution(votes, labels, weights=ws_, smoothing=smoothing).tolist(),
                         "tied": label is None}
        per_channel[channel] = out

    amb = df[df["dimension"] == "is_ambiguous"]
    amb_votes: dict[str, Counter] = {c: Counter() for c in CHANNELS}
    amb_n: dict[str, Counter] = {c: Counter() for c in CHANNELS}
    for clip, channel, value in zip(amb["clip_id"], amb["meta_channel"], amb["value"], strict=True):
        targets = [channel] if channel in CHANNELS else list(CHANNELS)
        for c in targets:
            amb_n[c][clip] += 1
            amb_votes[c][clip] += str(value).lower() == "true"

    numeric = df[df["dimension"].isin([*VAD, "confidence"])]
    stats = {}
    if len(numeric):
        vals = numeric.assign(x=pd.to_numeric(numeric["value_num"], errors="coerce"))
        grouped = vals.groupby(["clip_id", "dimension"])["x"]
        stats = {k: (m, s) for k, m, s in zip(grouped.mean().index, grouped.mean(), grouped.std(ddof=1),
                                               strict=True)}

    channels_present = [c for c in CHANNELS if per_channel[c]]
    clips = list(dict.fromkeys(df["clip_id"]))
    rows = []
    failures = Counter()
    for clip in clips:
        a = per_channel["acoustic"].get(clip)
        s = per_channel["semantic"].get(clip)
        reasons = []
        for channel, info in (("acoustic", a), ("semantic", s)):
            if channel not in channels_present:
                continue
            if info is None:
                reasons.append(f"no {channel} ratings")
                continue
            if info["label"] is None:
                reasons.append(f"{channel} tie")
            if info["agreement"] < thresholds.min_agreement:
                reasons.append(f"{channel} agreement {info['agreement']:.2f} < {thresholds.min_agreement:g}")
            if info["n"] < thresholds.min_raters:
                reasons.append(f"{channel} raters {info['n']} < {thresholds.min_raters}")
            n_amb, votes = amb_n[channel].get(clip, 0), amb_votes[channel].get(clip, 0)
            if n_amb and votes / n_amb > thresholds.max_ambiguous_share:
                reasons.append(f"{channel} ambiguous share {votes / n_amb:.2f} > {thresholds.max_ambiguous_share:g}")
            if thresholds.max_ambiguous_votes is not None and votes > thresholds.max_ambiguous_votes:
                reasons.append(f"{channel} ambiguous votes {votes} > {thresholds.max_ambiguous_votes}")
        passes = not reasons and bool(channels_present)
        for r in reasons:
            failures[r.split(" ")[0] + " " + r.split(" ")[1]] += 1
        al = a["label"] if a else None
        sl = s["label"] if s else None
        conflict = bool(passes and al is not None and sl is not None and al != sl)
        row = {"clip_id": clip, "acoustic_label": al, "semantic_label": sl,
               "acoustic_dist": a["dist"] if a else None, "semantic_dist": s["dist"] if s else None,
               "n_raters": a["n"] if a else 0, "agreement": a["agreement"] if a else None,
               # without both labels conflict is undefined (null), not "no conflict": a voice-only mixed corpus
               "is_conflict": conflict if al is not None and sl is not None else None,
               "conflict_type": f"{al}-voice/{sl}-words" if conflict else None,
               "method": method_name, "passes_thresholds": passes,
               "meta_semantic_agreement": s["agreement"] if s else None,
               "meta_semantic_n_raters": s["n"] if s else 0,
               "meta_acoustic_ambiguous_votes": amb_votes["acoustic"].get(clip, 0),
               "meta_semantic_ambiguous_votes": amb_votes["semantic"].get(clip, 0),
               "meta_threshold_failures": "; ".join(reasons) or None}
        for dim in VAD:
            m, sd = stats.get((clip, dim), (None, None))
            row[dim] = _num(m)
            row[f"meta_{dim}_sd"] = _num(sd)
        row["meta_confidence"] = _num(stats.get((clip, "confidence"), (None, None))[0])
        rows.append(row)
    labels_df = pd.DataFrame(rows, columns=list(rows[0]) if rows else
                             ["clip_id", "acoustic_label", "semantic_label", "acoustic_dist", "semantic_dist",
                              "n_raters", "agreement", "is_conflict", "conflict_type", "method",
                              "passes_thresholds"])
    unrated = [c for c in (clip_ids or []) if c not in set(clips)]
    conflict_defined = len(channels_present) == len(CHANNELS)
    report = {
        "channels_rated": channels_present, "conflict_defined": conflict_defined,
        "multi_label_ratings": int(df["dimension"].isin(list(CHANNELS.values())).mul(
            df["meta_weights"].notna()).sum()),
        "method": method_name, "tie_rule": tie if method == "majority" else None, "smoothing": smoothing,
        "thresholds": asdict(thresholds), "include_ground_truth": include_ground_truth,
        "counted": counted,
        "clips": {"rated": len(clips), "without_ratings": len(unrated), "without_ratings_ids": unrated[:50],
                  "passing": int(sum(r["passes_thresholds"] for r in rows)),
                  # conflict and congruent need both channels rated; a voice-only (or words-only) corpus,
                  # such as an EM2LDL-style mixed-emotion corpus, has neither
                  "conflict": int(sum(r["is_conflict"] is True for r in rows)) if conflict_defined else None,
                  "congruent": int(sum(r["passes_thresholds"] and r["is_conflict"] is False for r in rows))
                  if conflict_defined else None,
                  "failing": int(sum(not r["passes_thresholds"] for r in rows)),
                  "failures_by_reason": dict(sorted(failures.items()))},
        "channels": {c: {"clips": len(per_channel[c]),
                         "ties": int(sum(v["tied"] for v in per_channel[c].values())) if method == "majority" else 0,
                         "mean_agreement": _num(np.mean([v["agreement"] for v in per_channel[c].values()]))
                         if per_channel[c] else None}
                     for c in CHANNELS},
        "conflict_types": dict(Counter(r["conflict_type"] for r in rows if r["conflict_type"]).most_common()),
    }
    if method != "majority":
        report["method_vs_majority"] = {c: {"compared": n, "differ": d, "share": d / n if n else None}
                                        for c, (d, n) in disagree.items()}
        for c, (d, n) in disagree.items():
            if n and d / n > checks.max_disagreement:
                warn.append(f"{method} disagrees with the majority vote on {d}/{n} {c} clips "
                            f"({100 * d / n:.0f}% > {100 * checks.max_disagreement:.0f}%): check the flagged "
                            "raters, or use majority")
    report["raters"] = {"checks": asdict(checks), "flagged": flagged, "excluded": flagged if exclude_flagged else [],
                        **quality}
    report["warnings"] = warn
    return AggregateResult(labels_df, report)


def rater_quality(ratings: pd.DataFrame, labels: Sequence[str], checks: RaterChecks | None = None) -> dict:
    """Per rater of one channel: how many votes, their most frequent label and its share, agreement with the
    leave-one-out majority, the chance level of that agreement, the one-sided binomial p-value, and flags
    (``constant``, ``random``; see the module docstring).

    Args:
        ratings: counted hard votes of one channel (``clip_id``, ``rater_id``, ``value``).
        labels: the label set.
        checks: the thresholds; default :class:`RaterChecks`.

    >>> import pandas as pd
    >>> truth = ["sad", "angry"] * 20
    >>> rows = [(f"c{i}", r, t) for i, t in enumerate(truth) for r in "abc"]  # three raters who get it right
    >>> rows += [(f"c{i}", "s", "sad") for i in range(40)]  # and one who always says "sad"
    >>> q = rater_quality(pd.DataFrame(rows, columns=["clip_id", "rater_id", "value"]), ["angry", "sad"])
    >>> q["s"]["flags"], q["s"]["agreement"], q["s"]["chance"], q["a"]["flags"], q["a"]["agreement"]
    (['constant', 'random'], 0.5, 0.5, [], 1.0)
    """
    from scipy.stats import binomtest

    checks = checks or RaterChecks()
    if not len(ratings):
        return {}
    k = len(labels)
    index = {x: i for i, x in enumerate(labels)}
    clip, _ = _codes(ratings["clip_id"])
    rater, raters = _codes(ratings["rater_id"])
    vote = ratings["value"].map(index).to_numpy()
    if np.isnan(vote.astype(float)).any():
        raise InputError(Problem(f"vote {ratings['value'][np.isnan(vote.astype(float))].iloc[0]!r}",
                                 expected=f"one of {list(labels)}"))
    vote = vote.astype(np.int64)
    n_r = np.bincount(rater)
    top_r = np.zeros((len(raters), k), dtype=np.int64)
    np.add.at(top_r, (rater, vote), 1)
    candidate = (top_r.max(axis=1) >= checks.constant_share * n_r)[rater]  # per vote
    onehot = np.eye(k, dtype=np.int64)[vote]
    counts = np.zeros((clip.max() + 1, k), dtype=np.int64)
    np.add.at(counts, clip, onehot * ~candidate[:, None])  # votes of raters who are not constant candidates
    others = counts[clip] - onehot * ~candidate[:, None]  # the other (non-candidate) raters of the clip
    if (others.sum(axis=1) == 0).any():  # no such rater on the clip: compare with all the others
        everyone = np.zeros_like(counts)
        np.add.at(everyone, clip, onehot)
        others = np.where((others.sum(axis=1) == 0)[:, None], everyone[clip] - onehot, others)
    top = others.max(axis=1)
    untied = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    majority = others.argmax(axis=1)
    out = {}
    for j, name in enumerate(raters):
        mine = rater == j
        n = int(mine.sum())
        own = np.bincount(vote[mine], minlength=k)
        valid = mine & untied
        m = int(valid.sum())
        hits = int((majority[valid] == vote[valid]).sum())
        if m:
            chance = float(np.bincount(vote[valid], minlength=k) @ np.bincount(majority[valid], minlength=k)) / m**2
            p = 1.0 if chance >= 1 else float(binomtest(hits, m, chance, alternative="greater").pvalue)
        else:
            chance, p = None, None
        flags = []
        if m >= checks.min_ratings and p >= checks.alpha:
            flags = ["constant", "random"] if own.max() >= checks.constant_share * n else ["random"]
        out[str(name)] = {"ratings": n, "top_label": labels[int(own.argmax())], "top_share": own.max() / n,
                          "compared": m, "agreement": hits / m if m else None, "chance": chance, "p_value": p,
                          "flags": flags}
    return out


def _codes(col) -> tuple[np.ndarray, list]:
    import pandas as pd

    codes, uniques = pd.factorize(col, sort=True)
    return codes, list(uniques)


def _flag_text(flag: str, v: dict) -> str:
    if flag == "constant":
        return f"constant: {100 * v['top_share']:.0f}% {v['top_label']!r} over {v['ratings']} ratings"
    return (f"random: agreement with the other raters' majority {v['agreement']:.2f} vs chance {v['chance']:.2f} "
            f"over {v['compared']} clips (one-sided binomial p = {v['p_value']:.2g})")


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def intended_match(annotations: pd.DataFrame, clips: pd.DataFrame, labels: pd.DataFrame | None = None, *,
                   include_ground_truth: bool = True) -> dict:
    """How often raters' and aggregated labels match the intended emotions of synthesized clips.

    Per channel (acoustic vs ``clips.intended_acoustic``, semantic vs ``intended_semantic``), over clips
    with an intended emotion: ``rating_match`` (share of single counted ratings equal to it),
    ``label_match`` (share of clips whose aggregated label equals it; a clip without a label counts as a
    miss), per-rater rating match; and for conflicts, how many intended conflict clips were tagged as
    conflicts (``recall``) and how many tagged conflicts were intended (``precision``). Returns ``{}``
    when no clip has an intended emotion.

    >>> import pandas as pd
    >>> ann = pd.DataFrame({"clip_id": ["c1", "c1"], "rater_id": ["a", "b"], "dimension": "acoustic_emotion",
    ...                     "value": ["sad", "angry"], "cancelled": False, "ground_truth": False})
    >>> clips = pd.DataFrame({"clip_id": ["c1"], "intended_acoustic": ["sad"], "intended_semantic": [None]})
    >>> intended_match(ann, clips)["acoustic"]["rating_match"]
    0.5
    """
    cols = [c for c in ("intended_acoustic", "intended_semantic") if c in clips.columns]
    if not cols or clips[cols].isna().all().all():
        return {}
    ann = annotations.copy()
    for col in ("cancelled", "ground_truth"):
        if col not in ann.columns:
            ann[col] = False
    df, _ = counted_ratings(ann, include_ground_truth=include_ground_truth)
    out: dict[str, Any] = {}
    lab = labels.set_index("clip_id") if labels is not None and len(labels) else None
    for channel, dim in CHANNELS.items():
        col = f"intended_{channel}"
        if col not in clips.columns:
            continue
        intended = {c: x for c, x in zip(clips["clip_id"], clips[col], strict=True) if isinstance(x, str) and x}
        if not intended:
            continue
        sub = df[(df["dimension"] == dim) & df["clip_id"].isin(intended)]
        hit = sub["value"].to_numpy() == sub["clip_id"].map(intended).to_numpy()
        per_rater = {str(r): {"ratings": int(n), "match": float(m)}
                     for r, n, m in zip(*_per_rater(sub["rater_id"], hit), strict=True)}
        res = {"clips": len(intended), "ratings": len(sub),
               "rating_match": float(hit.mean()) if len(sub) else None, "per_rater": per_rater}
        if lab is not None and f"{channel}_label" in lab.columns:
            got = [lab[f"{channel}_label"].get(c) if c in lab.index else None for c in intended]
            res["label_match"] = float(np.mean([g == x for g, x in zip(got, intended.values(), strict=True)]))
            res["unlabelled_clips"] = int(sum(g is None or (isinstance(g, float) and math.isnan(g)) for g in got))
        out[channel] = res
    if lab is not None and {"intended_acoustic", "intended_semantic"} <= set(clips.columns):
        intended_conflict = {c for c, a, s in zip(clips["clip_id"], clips["intended_acoustic"],
                                                  clips["intended_semantic"], strict=True)
                             if isinstance(a, str) and isinstance(s, str) and a != s}
        tagged = set(lab.index[lab["is_conflict"].fillna(False).astype(bool)]) if "is_conflict" in lab else set()
        out["conflict"] = {"intended": len(intended_conflict), "tagged": len(tagged),
                           "tagged_and_intended": len(tagged & intended_conflict),
                           "recall": len(tagged & intended_conflict) / len(intended_conflict)
                           if intended_conflict else None,
                           "precision": len(tagged & intended_conflict) / len(tagged) if tagged else None}
    return out


def _per_rater(raters, hit) -> tuple[list, list, list]:
    import pandas as pd

    g = pd.DataFrame({"r": raters.to_numpy(), "h": hit}).groupby("r")["h"]
    return list(g.size().index), list(g.size()), list(g.mean())


# --------------------------------------------------------------------------------------------------
# The workspace step


def aggregate(ws: Workspace, *, method: Method | None = None, tie: TieRule | None = None,
              smoothing: float | None = None, min_agreement: float | None = None, min_raters: int | None = None,
              max_ambiguous_share: float | None = None, max_ambiguous_votes: int | None = None,
              include_ground_truth: bool | None = None, seed: int = 0, write: bool = True,
              exclude_flagged: bool | None = None, progress: bool = False) -> AggregateResult:
    """Aggregate the workspace's annotations into its ``labels`` table and ``reports/aggregate.json``.

    Settings not given come from the ``[aggregate]`` section of ``casebench.toml`` (written by the curator,
    never by this step, so one run with another method does not change the next), then the defaults
    (majority, tie none, no smoothing, :class:`Thresholds`); the settings used are in the report and the
    ``method`` column. The report includes :func:`intended_match` for synthesized clips and the rater flags
    (``exclude_flagged`` leaves flagged raters out). With ``write=False`` nothing is written.
    """
    from casebench.workspace import atomic_write_text

    cfg = ws.section("aggregate")
    t = Thresholds()
    settings = {
        "method": method or cfg.get("method", "majority"),
        "tie": tie or cfg.get("tie", "none"),
        "smoothing": float(smoothing if smoothing is not None else cfg.get("smoothing", 0.0)),
        "min_agreement": float(min_agreement if min_agreement is not None
                               else cfg.get("min_agreement", t.min_agreement)),
        "min_raters": int(min_raters if min_raters is not None else cfg.get("min_raters", t.min_raters)),
        "max_ambiguous_share": float(max_ambiguous_share if max_ambiguous_share is not None
                                     else cfg.get("max_ambiguous_share", t.max_ambiguous_share)),
        "max_ambiguous_votes": max_ambiguous_votes if max_ambiguous_votes is not None
        else cfg.get("max_ambiguous_votes"),
        "include_ground_truth": bool(include_ground_truth if include_ground_truth is not None
                                     else cfg.get("include_ground_truth", True)),
        "exclude_flagged": bool(exclude_flagged if exclude_flagged is not None
                                else cfg.get("exclude_flagged", False)),
    }
    thresholds = Thresholds(settings["min_agreement"], settings["min_raters"], settings["max_ambiguous_share"],
                            settings["max_ambiguous_votes"])
    annotations = ws.read_df("annotations")
    clips = ws.read_df("clips") if ws.has_table("clips") else None
    result = aggregate_labels(annotations, ws.taxonomy, method=settings["method"], tie=settings["tie"],
                              smoothing=settings["smoothing"], thresholds=thresholds,
                              include_ground_truth=settings["include_ground_truth"], seed=seed,
                              clip_ids=clips["clip_id"].tolist() if clips is not None else None,
                              exclude_flagged=settings["exclude_flagged"], progress=progress)
    if clips is not None:
        match = intended_match(annotations, clips, result.labels,
                               include_ground_truth=settings["include_ground_truth"])
        if match:
            result.report["intended"] = match
    result.report["workspace"] = str(ws.root)
    # the annotation schema says how many raters each clip should have: name the clips that have fewer
    from casebench.annotation_schema import annotation_schema

    schema = annotation_schema(ws)
    result.report["annotation_schema"] = schema.describe()
    lab = result.labels
    if len(lab):
        # raters of the clip on any dimension (n_raters counts the voice label's only: 0 in a corpus rated on
        # valence and arousal alone, which made every clip "short")
        live = annotations[~annotations["cancelled"].fillna(False).astype(bool)] if "cancelled" in annotations \
            else annotations
        per_clip = live.groupby("clip_id")["rater_id"].nunique()
        n = lab["clip_id"].map(per_clip).fillna(0)
        if "n_raters" in lab:
            n = np.maximum(n, lab["n_raters"].fillna(0))
        short = lab.loc[n < schema.raters_per_clip, "clip_id"].astype(str).tolist()
        result.report["clips"]["below_raters_per_clip"] = len(short)
        result.report["clips"]["below_raters_per_clip_ids"] = short[:50]
    if write:
        from casebench.workspace import downstream_stale, stale_problems

        path = ws.write_table("labels", result.labels, built_from=ws.versions(["annotations"]))
        result.report["labels_table"] = str(path)
        # what this run left stale downstream: the splits (stratified by the old labels), gold, published
        result.report["warnings"] += [p for p in stale_problems(ws, {"splits": None}) if "after split" in p]
        result.report["warnings"] += downstream_stale(ws)
        report_path = ws.reports_dir / "aggregate.json"
        result.report["report"] = str(report_path)
        atomic_write_text(report_path, json.dumps(result.report, indent=2, default=_json) + "\n")
    return result


def _json(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
