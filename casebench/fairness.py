"""Group breakdowns: does the model serve some speakers (gender, language, age class, ...) worse than others?

:func:`group_breakdown` scores the categorical task separately on each value of one gold column and reports:

* per group: accuracy, macro-F1, weighted-F1 and UAR with 95% bootstrap CIs, per-class recall with CIs,
  ``n`` items and ``n_speakers``;
* ``worst_group``: per metric, the ranked group with the lowest score;
* ``largest_gap``: per metric, best minus worst ranked group, with a CI. The pair is fixed by the point
  estimates, and the CI is that of the difference of the two groups' scores: the groups are disjoint item
  sets, each resampled on its own stream, so resample b of the gap is resample b of one minus resample b of
  the other (a stratified bootstrap; it does not cover the uncertainty in *which* pair is extreme);
* ``recall_gaps``: equal-opportunity style (Hardt et al. 2016): per class, the largest difference in recall
  (true-positive rate) between ranked groups, with the groups named and a CI as above.

**Small groups are not ranked.** A group with fewer than :data:`MIN_ITEMS` scored items, or (when the gold
has speakers and the column is not the speaker itself) fewer than :data:`MIN_SPEAKERS` speakers, gets its
scores and CIs but ``ranked: false`` and a ``reason``; it takes no part in worst group, gaps or recall gaps.
Items whose group value is missing form the group ``"<missing>"``, never ranked. 30 items is the usual floor
for a normal-approximation interval; 3 speakers, because a group of one or two voices measures those voices,
not the group.

The bootstrap unit follows the scorer: speaker clusters when the gold has speakers (within each group),
else items; grouping by the speaker column itself resamples items.

>>> import numpy as np
>>> from casebench.benchmarks import Gold
>>> from casebench.taxonomy import get_taxonomy
>>> gold = Gold(ids=np.array([f"c{i}" for i in range(80)]), taxonomy=get_taxonomy("ekman7"),
...             acoustic=np.array([0, 3] * 40), columns={"gender": np.array(["f"] * 40 + ["m"] * 40, object)})
>>> pred = np.array([0, 3] * 20 + [0, 0] * 20)
>>> res = group_breakdown(gold, pred, "gender", n_boot=50)
>>> res["groups"]["f"]["metrics"]["accuracy"]["value"], res["groups"]["m"]["metrics"]["accuracy"]["value"]
(1.0, 0.5)
>>> res["worst_group"]["accuracy"]["group"], res["largest_gap"]["accuracy"]["diff"]["value"]
('m', 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from casebench.errors import ConfigError, did_you_mean
from casebench.metrics import family

MIN_ITEMS = 30
MIN_SPEAKERS = 3
MISSING = "<missing>"
METRICS = tuple(m.name for m in family("categorical"))  # from the one registry: a new metric is one entry
SPEAKER_COLUMNS = ("speaker_id", "speaker")


def group_values(gold: Any, column: str) -> np.ndarray:
    """The group of every gold item under ``column`` as strings (:data:`MISSING` where unknown).

    Raises ConfigError naming the gold's columns when ``column`` is not one of them.
    """
    col = gold.columns.get(column)
    if col is None and column in SPEAKER_COLUMNS and gold.speaker is not None:
        col = gold.speaker
    if col is None:
        choices = sorted(gold.columns)
        hint = did_you_mean(column, choices)
        raise ConfigError(f"--group-by {column!r}: the gold table {gold.source or ''} has no such column; expected "
                          f"one of {choices}" + (f" ({hint})" if hint else ""))
    out = np.array([MISSING if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "" else str(v)
                    for v in col], dtype=object)
    return out


def _seed_for(seed: int, g: int) -> int:
    return int(seed) * 1_000_003 + 7919 * (g + 1)


def group_breakdown(gold: Any, label: np.ndarray, column: str, *, mask: np.ndarray | None = None,
                    n_boot: int = 1000, seed: int = 0, unit: str = "auto", min_items: int = MIN_ITEMS,
                    min_speakers: int = MIN_SPEAKERS, target: str = "acoustic_label") -> dict:
    """Per-group categorical scores of ``label`` (taxonomy indices, -1 = none) on the items of ``mask``.

    Args:
        gold: the benchmark's :class:`~casebench.benchmarks.Gold` (needs ``acoustic``).
        label: predictions aligned with ``gold.ids``.
        column: the gold column to group by (``gender``, ``language``, ``age_class``, ``speaker_id``, ...).
        mask: items to score (default: all with a known acoustic label).
        n_boot, seed, unit: as :func:`casebench.evaluate.score`.
        min_items, min_speakers: the smallest group that is ranked (see the module docstring).
        target: the gold label scored against (``acoustic_label`` or ``semantic_label``).

    Returns:
        JSON-ready dict (see the module docstring).
    """
    from casebench import scoring
    from casebench.stats import Bootstrap

    gold_labels = gold.labels_of(target)
    if gold_labels is None:
        raise ConfigError(f"--group-by needs the categorical task (a {target} column in the gold)")
    groups = group_values(gold, column)
    k = len(gold.taxonomy)
    labels = list(gold.taxonomy.labels)
    sel = (gold_labels >= 0) if mask is None else (np.asarray(mask, bool) & (gold_labels >= 0))
    by_speaker = column in SPEAKER_COLUMNS
    use_clusters = gold.speaker is not None and unit != "item" and not by_speaker
    speakers = gold.speaker_codes if gold.speaker is not None else None
    out_groups: dict[str, dict] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}
    names = sorted(set(groups[sel].tolist()), key=lambda g: (g == MISSING, g))
    for gi, g in enumerate(names):
        m = sel & (groups == g)
        n = int(m.sum())
        n_spk = int(len(np.unique(speakers[m]))) if speakers is not None else None
        clusters = None
        if use_clusters:
            _, clusters = np.unique(speakers[m], return_inverse=True)
        boot = Bootstrap(n_boot, _seed_for(seed, gi), clusters)
        sc = scoring.categorical(gold_labels[m], label[m], None, k, "subset", boot, target_name=target,
                                 per_class=True)
        support = np.bincount(gold_labels[m], minlength=k)
        entries = sc.entries()
        metrics = {name: entries[name] for name in METRICS}
        recall = {}
        samples[g] = {name: sc.draws.get(name) for name in METRICS}
        for i, lab in enumerate(labels):
            if support[i] > 0:
                d = sc.per_class_draws.get("recall")
                recall[lab] = scoring.entry(sc.per_class["recall"][i], None if d is None else d[:, i], support[i],
                                            sc.n_clusters, sc.n_distinct)
                samples[g][f"recall:{lab}"] = None if d is None else d[:, i]
        reason = None
        if g == MISSING:
            reason = f"no {column} value"
        elif n < min_items:
            reason = f"{n} items < {min_items}"
        elif n_spk is not None and not by_speaker and n_spk < min_speakers:
            reason = f"{n_spk} speaker(s) < {min_speakers}"
        out_groups[g] = {"n": n, "n_speakers": n_spk, "ranked": reason is None, "reason": reason,
                         "metrics": metrics, "recall": recall}
    ranked = [g for g, v in out_groups.items() if v["ranked"]]

    def diff(best: str, worst: str, key: str, point: float) -> dict:
        sb, sw = samples[best].get(key), samples[worst].get(key)
        n = out_groups[best]["n"] + out_groups[worst]["n"]
        support = [out_groups[g]["metrics"]["accuracy"] for g in (best, worst)]
        clusters = [e.get("n_clusters") for e in support]
        distinct = [e.get("n_distinct_resamples") for e in support]
        return scoring.entry(point, None if sb is None or sw is None else sb - sw, n,
                             None if None in clusters else sum(clusters), None if None in distinct else min(distinct))

    worst, gaps, recall_gaps = {}, {}, {}
    if ranked:
        for name in METRICS:
            vals = {g: out_groups[g]["metrics"][name]["value"] for g in ranked
                    if out_groups[g]["metrics"][name]["value"] is not None}
            if not vals:
                continue
            lo, hi = min(vals, key=vals.get), max(vals, key=vals.get)
            worst[name] = {"group": lo, **out_groups[lo]["metrics"][name]}
            if len(vals) > 1:
                gaps[name] = {"best": hi, "worst": lo, "diff": diff(hi, lo, name, vals[hi] - vals[lo])}
        for lab in labels:
            vals = {g: out_groups[g]["recall"][lab]["value"] for g in ranked
                    if lab in out_groups[g]["recall"] and out_groups[g]["recall"][lab]["value"] is not None}
            if len(vals) > 1:
                lo, hi = min(vals, key=vals.get), max(vals, key=vals.get)
                recall_gaps[lab] = {"best": hi, "worst": lo, "diff": diff(hi, lo, f"recall:{lab}", vals[hi] - vals[lo])}
    return {"column": column, "min_items": min_items, "min_speakers": min_speakers,
            "unit": "speaker" if use_clusters else "item", "groups": out_groups, "ranked": ranked,
            "not_ranked": {g: v["reason"] for g, v in out_groups.items() if not v["ranked"]},
            "worst_group": worst, "largest_gap": gaps, "recall_gaps": recall_gaps}


def plot_groups(breakdown: dict, path: Any, metric: str = "uar") -> None:
    """Bar chart of ``metric`` per group with 95% CIs; unranked (small) groups hatched and grey."""
    import matplotlib.pyplot as plt

    names = list(breakdown["groups"])
    entries = [breakdown["groups"][g]["metrics"][metric] for g in names]
    vals = [e["value"] if e["value"] is not None else 0.0 for e in entries]
    lo = [v - (e["ci_low"] if e["ci_low"] is not None else v) for e, v in zip(entries, vals, strict=True)]
    hi = [(e["ci_high"] if e["ci_high"] is not None else v) - v for e, v in zip(entries, vals, strict=True)]
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 3.5))
    bars = ax.bar(names, vals, yerr=[lo, hi], capsize=3, color="#31a354")
    for bar, g in zip(bars, names, strict=True):
        if not breakdown["groups"][g]["ranked"]:
            bar.set_color("#bdbdbd")
            bar.set_hatch("//")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{metric} (95% CI)")
    ax.set_title(f"{metric} by {breakdown['column']} (grey: too small to rank)")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
