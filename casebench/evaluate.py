"""Score predictions against a benchmark: every split and metric with a bootstrap CI, beside constant baselines.

The core, :func:`score`, is pure: gold arrays and prediction arrays in, a nested dict out. :func:`evaluate`
adds the I/O around it (load the gold, parse the predictions file) and the provenance of the results object
(see :mod:`casebench.results`).

Categorical metrics come from a count tensor ``T[a, p, s]`` (acoustic label, predicted label, semantic
label). Index ``K`` is reserved on the prediction axis for "no prediction" (missing items counted wrong with
``--allow-missing``) and on the semantic axis for "semantic label unknown"; a resample is a re-drawn tensor
(:class:`casebench.stats.Bootstrap`), so the whole bootstrap costs a multinomial draw per resample.

>>> from casebench.benchmarks import get_benchmark
>>> from importlib import resources
>>> bench = get_benchmark("casebench-mini")
>>> preds = bench.gold_path.parent / "examples" / "voice-model.jsonl"
>>> res = evaluate(preds, bench, n_boot=50)
>>> sorted(res["splits"])
['all', 'conflict', 'congruent', 'mini-acted']
>>> 0.5 < res["splits"]["all"]["accuracy"]["value"] < 1
True
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from casebench.benchmarks import Benchmark, Gold, Split
from casebench.errors import InputError, Problem, unknown_name
from casebench.metrics import categorical, conflict, dimensional, distribution
from casebench.stats import BOOTSTRAP_UNITS, Bootstrap, percentile_ci

CATEGORICAL = {"accuracy": categorical.accuracy, "macro_f1": categorical.macro_f1,
               "weighted_f1": categorical.weighted_f1, "uar": categorical.uar}
CONFLICT = {"text_following_rate": conflict.text_following_rate,
            "errors_matching_text": conflict.errors_matching_text}
DISTRIBUTION = tuple(distribution.PER_ITEM)
DIMENSIONAL = {"ccc": dimensional.ccc_from_moments, "pearson": dimensional.pearson_from_moments,
               "rmse": dimensional.rmse_from_moments}


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


#: While :func:`score` scores a split for ``samples_out``, every metric entry made is paired here with its
#: bootstrap samples (a side channel, so the scorers' signatures stay as they are).
_SAMPLE_SINK: contextvars.ContextVar[list | None] = contextvars.ContextVar("casebench_sample_sink", default=None)


def _entry(point, samples: np.ndarray | None, n: int) -> dict:
    lo, hi = percentile_ci(samples) if samples is not None and len(samples) else (np.nan, np.nan)
    entry = {"value": _num(point), "ci_low": _num(lo), "ci_high": _num(hi), "n": int(n)}
    sink = _SAMPLE_SINK.get()
    if sink is not None and samples is not None:
        sink.append((entry, samples))
    return entry


def cross_corpus_mean(scores: dict, samples: dict, splits: Sequence[str]) -> dict:
    """Per metric, the mean over the cross-corpus ``splits`` that have it, with a 95% CI from the same resamples.

    Resample b of the mean is the mean of resample b of each split: the corpora are disjoint item sets, each
    resampled on its own (clusters within the split), so this is a stratified bootstrap of the mean. Each entry
    is ``{"value", "ci_low", "ci_high", "n" (items over the splits), "splits" (the names averaged)}``; without
    samples (``n_boot=0``) the CI is null.

    >>> s = {"a": {"uar": {"value": 0.5, "n": 10}}, "b": {"uar": {"value": 0.7, "n": 20}}}
    >>> boot = {"a": {"uar": np.array([0.4, 0.6])}, "b": {"uar": np.array([0.6, 0.8])}}
    >>> e = cross_corpus_mean(s, boot, ["a", "b"])["uar"]
    >>> round(e["value"], 3), e["n"], e["splits"]
    (0.6, 30, ['a', 'b'])
    """
    names = [n for n in splits if n in scores]
    metrics = list(dict.fromkeys(m for n in names for m, e in scores[n].items()
                                 if isinstance(e, dict) and "value" in e))
    out = {}
    for metric in metrics:
        have = [n for n in names if isinstance(scores[n].get(metric), dict) and "value" in scores[n][metric]]
        values = [scores[n][metric]["value"] for n in have]
        point = np.nan if any(v is None for v in values) else float(np.mean(values))
        boot = [samples.get(n, {}).get(metric) for n in have]
        mean_boot = np.mean(np.vstack(boot), axis=0) if boot and all(b is not None for b in boot) else None
        entry = _entry(point, mean_boot, sum(scores[n][metric]["n"] for n in have))
        entry["splits"] = have
        out[metric] = entry
    return out


# --------------------------------------------------------------------------------------------------------
# Categorical and conflict metrics


def count_codes(acoustic: np.ndarray, pred: np.ndarray, semantic: np.ndarray | None, k: int) -> np.ndarray:
    """Cell code of each item in the (K+1)^3 tensor: -1 predictions go to index K, unknown semantics too."""
    m = k + 1
    p = np.where(pred < 0, k, pred)
    s = np.full_like(acoustic, k) if semantic is None else np.where(semantic < 0, k, semantic)
    return (acoustic * m + p) * m + s


def _tensor(counts: np.ndarray, k: int) -> np.ndarray:
    return counts.reshape(*counts.shape[:-1], k + 1, k + 1, k + 1)


def _known_semantic(t: np.ndarray) -> np.ndarray:
    """The tensor with the "semantic unknown" slice zeroed, so such items are neither conflict nor congruent."""
    t = t.copy()
    t[..., -1] = 0
    return t


def score_categorical(acoustic, pred, semantic, k: int, boot: Bootstrap, split_kind: str,
                      labels: Sequence[str] | None = None) -> dict:
    """Categorical metrics (plus conflict metrics on ``conflict``/``all`` splits) with CIs for one split.

    With ``labels``, also ``per_class``: precision, recall and F1 per class with CIs from the same resamples
    (moved out of the split by :func:`evaluate`).
    """
    n = int(acoustic.size)
    codes = count_codes(acoustic, pred, semantic, k)
    point = _tensor(np.bincount(codes, minlength=(k + 1) ** 3).astype(float), k)
    samples = _tensor(boot.counts(codes, (k + 1) ** 3), k) if boot.n_boot else None
    cm, cm_samples = point.sum(-1), None if samples is None else samples.sum(-1)
    out = {}
    for name, fn in CATEGORICAL.items():
        out[name] = _entry(fn(cm), None if samples is None else fn(cm_samples), n)
    if semantic is not None and split_kind == "conflict":
        for name, fn in CONFLICT.items():
            out[name] = _entry(fn(_known_semantic(point)),
                               None if samples is None else fn(_known_semantic(samples)), n)
    if semantic is not None and split_kind == "all":
        out["conflict_gap"] = _entry(conflict.conflict_gap(_known_semantic(point)), None if samples is None
                                     else conflict.conflict_gap(_known_semantic(samples)), n)
    if labels is not None:
        out["per_class"] = per_class(cm, cm_samples, labels)
    return out


def per_class(cm: np.ndarray, cm_samples: np.ndarray | None, labels: Sequence[str]) -> dict:
    """Per-class precision, recall and F1 with CIs, and support, keyed by label, from a (K+1, K+1) confusion
    matrix and its resamples."""
    p, r, f = categorical.precision_recall_f1(cm)
    sp, sr, sf = categorical.precision_recall_f1(cm_samples) if cm_samples is not None else (None,) * 3
    support = cm.sum(-1)
    out = {}
    for i, lab in enumerate(labels):
        def col(a, i=i):
            return None if a is None else a[:, i]

        out[lab] = {"precision": _entry(p[i], col(sp), support[i]), "recall": _entry(r[i], col(sr), support[i]),
                    "f1": _entry(f[i], col(sf), support[i]), "support": int(support[i])}
    return out


def confusion(acoustic, pred, k: int) -> list[list[int]]:
    """Confusion matrix (rows gold, columns predicted; last column = no prediction) as nested lists."""
    cm = np.bincount(acoustic * (k + 1) + np.where(pred < 0, k, pred), minlength=k * (k + 1)).reshape(k, k + 1)
    if not cm[:, k].any():
        cm = cm[:, :k]
    return cm.tolist()


def conflict_breakdown(acoustic, pred, semantic, labels: Sequence[str]) -> list[dict]:
    """For each acoustic x semantic pair of conflict items: share of predictions following voice, text, other."""
    k = len(labels)
    conf = (acoustic >= 0) & (semantic >= 0) & (acoustic != semantic)
    a, p, s = acoustic[conf], pred[conf], semantic[conf]
    pair = a * k + s
    n = np.bincount(pair, minlength=k * k)
    voice = np.bincount(pair[p == a], minlength=k * k)
    text = np.bincount(pair[p == s], minlength=k * k)
    return [{"acoustic": labels[c // k], "semantic": labels[c % k], "n": int(n[c]), "voice": float(voice[c] / n[c]),
             "text": float(text[c] / n[c]), "other": float((n[c] - voice[c] - text[c]) / n[c])}
            for c in np.flatnonzero(n)]


# --------------------------------------------------------------------------------------------------------
# Distribution and dimensional metrics


def distribution_stats(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-item statistics summed by the bootstrap: [1, each per-item measure, multi-label TP/FP/FN]."""
    cols = [np.ones(len(gold))] + [distribution.PER_ITEM[name](gold, pred) for name in DISTRIBUTION]
    return np.column_stack([*cols, distribution.multilabel_stats(gold, pred)])


def _distribution_values(sums: np.ndarray) -> dict[str, np.ndarray]:
    n = sums[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {name: sums[..., 1 + i] / n for i, name in enumerate(DISTRIBUTION)}
    out["multilabel_macro_f1"] = distribution.multilabel_macro_f1_from_stats(sums[..., 1 + len(DISTRIBUTION):])
    return out


def score_distribution(gold: np.ndarray, pred: np.ndarray, boot: Bootstrap) -> dict:
    stats = distribution_stats(gold, pred)
    point = _distribution_values(stats.sum(0))
    samples = _distribution_values(boot.sums(stats)) if boot.n_boot else {}
    return {name: _entry(point[name], samples.get(name), len(gold)) for name in point}


def score_dimensional(gold: dict[str, np.ndarray], pred: dict[str, np.ndarray], boot: Bootstrap) -> dict:
    """CCC, Pearson r and RMSE, each the mean over the dimensions (one CI over the same resamples), plus
    ``by_dimension``: the same three per dimension (moved out of the split by :func:`evaluate`)."""
    dims = [d for d in gold if d in pred]
    blocks = []
    for d in dims:
        ok = np.isfinite(gold[d]) & np.isfinite(pred[d])
        mom = dimensional.moments(np.where(ok, gold[d], 0.0), np.where(ok, pred[d], 0.0))
        blocks.append(mom * ok[:, None])
    stats = np.column_stack(blocks)
    sums_point = stats.sum(0)
    sums_boot = boot.sums(stats) if boot.n_boot else None
    by_dim: dict[str, dict] = {}
    point: dict[str, list] = {name: [] for name in DIMENSIONAL}
    samples: dict[str, list] = {name: [] for name in DIMENSIONAL}
    for j, d in enumerate(dims):
        sl = slice(6 * j, 6 * j + 6)
        n = int(sums_point[6 * j])
        by_dim[d] = {}
        for name, fn in DIMENSIONAL.items():
            value, boot_values = fn(sums_point[sl]), None if sums_boot is None else fn(sums_boot[:, sl])
            by_dim[d][name] = _entry(value, boot_values, n)
            point[name].append(value)
            samples[name].append(boot_values)
    n_items = int(np.any(stats[:, 0::6] > 0, axis=1).sum())
    out = {name: _entry(np.mean(point[name]), None if sums_boot is None else np.mean(samples[name], axis=0),
                        n_items) for name in DIMENSIONAL}
    out["by_dimension"] = by_dim
    return out


# --------------------------------------------------------------------------------------------------------
# The whole scorer


def _clusters(gold: Gold, unit: str) -> np.ndarray | None:
    if unit not in BOOTSTRAP_UNITS:
        raise unknown_name("bootstrap unit", unit, BOOTSTRAP_UNITS)
    if unit == "item" or (unit == "auto" and gold.speaker is None):
        return None
    if gold.speaker is None:
        raise InputError(Problem("speaker-cluster bootstrap asked for, but the gold has no speaker_id column",
                                 file=gold.source, field="speaker_id"))
    return gold.speaker_codes


@np.errstate(invalid="ignore", divide="ignore")  # undefined resamples become NaN, counted
def score(gold: Gold, splits: Sequence[Split], tasks: Sequence[str], *, label=None, dist=None, vad=None,
          n_boot: int = 1000, seed: int = 0, unit: str = "auto", with_per_class: bool = False,
          samples_out: dict | None = None) -> dict:
    """Score prediction arrays (aligned with ``gold.ids``) on every split: ``{split: {metric: entry}}``.

    Args:
        gold: the benchmark's gold items.
        splits: which splits to score.
        tasks: task kinds to score (``categorical``, ``distribution``, ``dimensional``).
        label: int predictions (taxonomy index, -1 = none) for the categorical task.
        dist: (n, K) predicted distributions (NaN rows = none) for the distribution task.
        vad: dimension -> predicted floats (NaN = none) for the dimensional task.
        n_boot, seed, unit: bootstrap resamples, seed and unit (``item``, ``speaker`` or ``auto``).
        with_per_class: also return per-class precision/recall/F1 under each split's ``per_class`` key.
        samples_out: when a dict, filled with ``{split: {metric: bootstrap samples}}`` (for
            :func:`cross_corpus_mean`).
    """
    k = len(gold.taxonomy)
    clusters = _clusters(gold, unit)
    boot_all = Bootstrap(n_boot, seed, clusters)
    out: dict[str, dict] = {}
    for split in splits:
        sink: list | None = [] if samples_out is not None else None
        token = _SAMPLE_SINK.set(sink)
        try:
            res = _score_split(gold, split, tasks, label, dist, vad, k, boot_all, with_per_class)
        finally:
            _SAMPLE_SINK.reset(token)
        if sink is not None:
            by_entry = {id(e): b for e, b in sink}
            samples_out[split.name] = {m: by_entry[id(e)] for m, e in res.items() if id(e) in by_entry}
        out[split.name] = res
    return out


def _score_split(gold: Gold, split: Split, tasks, label, dist, vad, k: int, boot_all: Bootstrap,
                 with_per_class: bool) -> dict:
    """The metrics of one split (see :func:`score`)."""
    mask = gold.mask(split)
    res: dict[str, dict] = {}
    if "categorical" in tasks and gold.acoustic is not None:
        m = mask & (gold.acoustic >= 0)
        if m.any():
            sem = None if gold.semantic is None else gold.semantic[m]
            res.update(score_categorical(gold.acoustic[m], label[m], sem, k, boot_all.subset(m), split.kind,
                                         labels=gold.taxonomy.labels if with_per_class else None))
    if "distribution" in tasks and gold.distribution is not None:
        m = mask & np.isfinite(gold.distribution).all(1)
        if m.any():
            res.update(score_distribution(gold.distribution[m], dist[m], boot_all.subset(m)))
    if "dimensional" in tasks and gold.vad:
        m = mask & np.column_stack([np.isfinite(v) for v in gold.vad.values()]).any(1)
        if m.any():
            res.update(score_dimensional({d: v[m] for d, v in gold.vad.items()},
                                         {d: v[m] for d, v in vad.items()}, boot_all.subset(m)))
    return res


def baselines(gold: Gold, splits: Sequence[Split], tasks: Sequence[str], *, n_boot: int, seed: int,
              unit: str) -> dict:
    """The constant reference systems, scored on the same items: majority class, mean distribution and
    mean V/A/D (each computed from the gold of all scored items)."""
    n, out = len(gold), {}
    if "categorical" in tasks and gold.acoustic is not None and (gold.acoustic >= 0).any():
        majority = int(np.bincount(gold.acoustic[gold.acoustic >= 0]).argmax())
        out["majority_class"] = score(gold, splits, ["categorical"], label=np.full(n, majority),
                                      n_boot=n_boot, seed=seed, unit=unit)
    if "distribution" in tasks and gold.distribution is not None:
        mean = np.nanmean(gold.distribution, axis=0)
        out["mean_distribution"] = score(gold, splits, ["distribution"], dist=np.tile(mean, (n, 1)),
                                         n_boot=n_boot, seed=seed, unit=unit)
    if "dimensional" in tasks and gold.vad:
        vad = {d: np.full(n, np.nanmean(v)) for d, v in gold.vad.items()}
        out["mean_vad"] = score(gold, splits, ["dimensional"], vad=vad, n_boot=n_boot, seed=seed, unit=unit)
    return out


def scored_tasks(benchmark: Benchmark, preds) -> list[str]:
    """The benchmark's task kinds for which the submission carries predictions."""
    have = {"categorical": preds.label is not None,
            "distribution": preds.distribution is not None or preds.probs is not None,
            "dimensional": bool(preds.vad)}
    tasks = [t.kind for t in benchmark.tasks if have[t.kind]]
    if not tasks:
        raise InputError(Problem("the file has no prediction field this benchmark scores", file=preds.path,
                                 expected=f"fields for one of the tasks {[t.kind for t in benchmark.tasks]}: "
                                          "label/probs, distribution/probs, valence/arousal/dominance"))
    return tasks


def _check_coverage(preds, gold: Gold, tasks: Sequence[str], arrays: dict) -> None:
    """Every present item must carry the fields of every scored task (the parser checks lines; this
    checks that no item silently lacks a task's field)."""
    problems = []
    for task, missing in arrays.items():
        if task not in tasks:
            continue
        bad = np.flatnonzero(preds.present & missing)
        if preds.line is not None:  # name the first offending lines first
            bad = bad[np.argsort(preds.line[bad], kind="stable")]
        for i in bad[:50]:
            problems.append(Problem(f"no prediction for the {task} task, which other lines give",
                                    file=preds.path, id=str(gold.ids[i]),
                                    line=int(preds.line[i]) if preds.line is not None else None,
                                    expected={"categorical": "'label' or 'probs'",
                                              "distribution": "'distribution' or 'probs'",
                                              "dimensional": "valence, arousal and dominance"}[task]
                                    + " on every line once any line has them"))
    problems.sort(key=lambda p: p.line or 0)
    if problems:
        raise InputError(problems, summary=f"{preds.path}: some items lack fields of a scored task")


def prediction_arrays(preds, gold: Gold, tasks: Sequence[str]) -> dict:
    """The arrays :func:`score` takes, from parsed predictions (probs stand in for a distribution)."""
    dist = preds.distribution if preds.distribution is not None else preds.probs
    if preds.distribution is not None and preds.probs is not None:
        dist = np.where(np.isfinite(preds.distribution), preds.distribution, preds.probs)
    vad = {d: preds.vad.get(d, np.full(len(gold), np.nan)) for d in gold.vad}
    missing = {
        "categorical": (preds.label < 0) if preds.label is not None else np.zeros(len(gold), bool),
        "distribution": ~np.isfinite(dist).all(1) if dist is not None else np.zeros(len(gold), bool),
        "dimensional": np.column_stack([~np.isfinite(v) & np.isfinite(gold.vad[d]) for d, v in vad.items()]).any(1)
        if vad else np.zeros(len(gold), bool),
    }
    _check_coverage(preds, gold, tasks, missing)
    k = len(gold.taxonomy)
    if dist is not None:
        dist = np.where(np.isfinite(dist), dist, 1.0 / k)  # absent items (allow-missing) get the uniform guess
    return {"label": preds.label, "dist": dist, "vad": vad}


def evaluate(predictions: str | Path, benchmark: Benchmark, *, n_boot: int = 1000, seed: int = 0,
             unit: str = "auto", renormalize: bool = False, allow_missing: bool = False,
             model: dict | None = None, with_baselines: bool = True, group_by: str | Sequence[str] | None = None,
             min_group_items: int | None = None, allow_stale: bool = False) -> dict:
    """Parse ``predictions`` and score them on ``benchmark``; returns the results object (a dict).

    A gold, spec or published folder built from workspace tables that changed since is refused
    (:func:`casebench.workspace.check_benchmark`: StaleError naming the step to re-run) unless
    ``allow_stale``, which records the problems in ``results["staleness"]`` and ``results["warnings"]``.

    With ``group_by`` (one gold column or several; default the benchmark's ``group_by``),
    ``results["groups"][column]`` holds the per-group breakdown of the categorical task over the clean items
    (:func:`casebench.fairness.group_breakdown`; groups under ``min_group_items`` items are not ranked). When
    the gold holds degraded copies (``<clip_id>@<condition>``), ``results["robustness"]`` holds
    :func:`casebench.robustness.robustness_summary`.

    Raises:
        InputError: the predictions file or the gold table is invalid (every problem with file, line,
            id and field).
    """
    from casebench.predictions import parse_predictions
    from casebench.results import build_results
    from casebench.workspace import check_benchmark

    stale = check_benchmark(benchmark, allow_stale=allow_stale)
    gold = benchmark.load_gold()
    preds = parse_predictions(predictions, gold, renormalize=renormalize, allow_missing=allow_missing)
    model = _with_sidecar(model, predictions, preds)
    tasks = scored_tasks(benchmark, preds)
    arrays = prediction_arrays(preds, gold, tasks)
    samples: dict = {}
    scores = score(gold, benchmark.splits, tasks, n_boot=n_boot, seed=seed, unit=unit, with_per_class=True,
                   samples_out=samples, **arrays)
    extra: dict = {"per_class": {}, "confusion": {}}
    cross = [s.name for s in benchmark.splits if s.kind == "cross-corpus"]
    if cross:
        from casebench.results import split_zero_shot

        extra["cross_corpus_mean"] = cross_corpus_mean(scores, samples, cross)
        flags = split_zero_shot(benchmark, (model or {}).get("trained_on") or [])
        unseen = [n for n in cross if flags.get(n)]
        if len(unseen) < len(cross):  # the model trained on some of them: also the mean over the others
            extra["cross_corpus_mean_zero_shot"] = cross_corpus_mean(scores, samples, unseen)
    if "categorical" in tasks and gold.acoustic is not None:
        labels = list(gold.taxonomy.labels)
        k = len(labels)
        for split in benchmark.splits:
            m = gold.mask(split) & (gold.acoustic >= 0)
            if m.any():
                extra["per_class"][split.name] = scores[split.name].pop("per_class")
                extra["confusion"][split.name] = confusion(gold.acoustic[m], arrays["label"][m], k)
        if gold.semantic is not None:
            extra["conflict_breakdown"] = conflict_breakdown(gold.acoustic, arrays["label"], gold.semantic, labels)
    extra["per_dimension"] = {name: res.pop("by_dimension") for name, res in scores.items() if "by_dimension" in res}
    if "categorical" in tasks and gold.acoustic is not None:
        group_by = group_by if group_by is not None else (list(getattr(benchmark, "group_by", ())) or None)
        extra.update(_robustness_and_groups(gold, arrays["label"], group_by, min_group_items, n_boot, seed, unit))
    base = baselines(gold, benchmark.splits, tasks, n_boot=n_boot, seed=seed, unit=unit) if with_baselines else {}
    for res in base.values():
        for split_scores in res.values():
            split_scores.pop("by_dimension", None)
    results = build_results(benchmark=benchmark, gold=gold, preds=preds, tasks=tasks, scores=scores,
                            baselines=base, extra=extra, n_boot=n_boot, seed=seed,
                            unit="item" if _clusters(gold, unit) is None else "speaker", model=model)
    if stale:
        results["staleness"] = {"allow_stale": True, "problems": stale}
        results.setdefault("warnings", []).extend(f"stale (--allow-stale): {p}" for p in stale)
    return results


def _with_sidecar(model: dict | None, predictions, preds) -> dict | None:
    """``model`` completed from the metadata ``casebench predict`` wrote beside the predictions file (when it
    describes this very file); fields given in ``model`` win. What was used or ignored goes into the notes."""
    from casebench.predict.runner import merge_model, sidecar_model

    side, note = sidecar_model(predictions, preds.sha256)
    if note:
        preds.notes.append(note)
    return merge_model(model, side)


def _robustness_and_groups(gold: Gold, label: np.ndarray, group_by, min_items: int | None, n_boot: int, seed: int,
                           unit: str) -> dict:
    """``robustness`` (when the gold has degraded items) and ``groups`` (when asked) for :func:`evaluate`."""
    from casebench import fairness, robustness

    out: dict = {}
    rob = robustness.robustness_summary(gold, label, n_boot=n_boot, seed=seed, unit=unit)
    if rob is not None:
        out["robustness"] = rob
    if group_by:
        columns = [group_by] if isinstance(group_by, str) else list(group_by)
        clean = np.array([c is None for c in robustness.item_conditions(gold)[0]]) if rob is not None else None
        kw = {} if min_items is None else {"min_items": int(min_items)}
        out["groups"] = {c: fairness.group_breakdown(gold, label, c, mask=clean, n_boot=n_boot, seed=seed, unit=unit,
                                                     **kw) for c in columns}
    return out


# --------------------------------------------------------------------------------------------------------
# Paired comparison of two submissions on the same items


def _dimensional_values(sums: np.ndarray, n_dims: int) -> dict[str, np.ndarray]:
    """Mean over dimensions of CCC, Pearson r and RMSE from moment sums laid out 6 per dimension."""
    return {name: np.mean([fn(sums[..., 6 * j:6 * j + 6]) for j in range(n_dims)], axis=0)
            for name, fn in DIMENSIONAL.items()}


def _paired_entries(va: dict, vb: dict, sa: dict | None, sb: dict | None, n: int) -> dict:
    from casebench.stats import paired_p_value

    out = {}
    for name in va:
        diff_samples = None if sa is None else sa[name] - sb[name]
        out[name] = {"a": _num(va[name]), "b": _num(vb[name]),
                     "diff": _entry(va[name] - vb[name], diff_samples, n),
                     "p_value": None if diff_samples is None else _num(paired_p_value(diff_samples))}
    return out


@np.errstate(invalid="ignore", divide="ignore")
def compare(predictions_a: str | Path, predictions_b: str | Path, benchmark: Benchmark, *, n_boot: int = 1000,
            seed: int = 0, unit: str = "auto", renormalize: bool = False) -> dict:
    """Paired comparison of two submissions on the same items: per split and metric, A, B and A − B with a
    paired-bootstrap CI and p-value (both scored on the very same resamples), and McNemar's exact test on
    per-item correctness for the categorical task."""
    from casebench.predictions import parse_predictions
    from casebench.stats import mcnemar

    gold = benchmark.load_gold()
    pa = parse_predictions(predictions_a, gold, renormalize=renormalize)
    pb = parse_predictions(predictions_b, gold, renormalize=renormalize)
    tasks = [t for t in scored_tasks(benchmark, pa) if t in scored_tasks(benchmark, pb)]
    arr_a, arr_b = prediction_arrays(pa, gold, tasks), prediction_arrays(pb, gold, tasks)
    k, m = len(gold.taxonomy), len(gold.taxonomy) + 1
    clusters = _clusters(gold, unit)
    boot_all = Bootstrap(n_boot, seed, clusters)
    splits_out, mcnemar_out = {}, {}
    for split in benchmark.splits:
        mask = gold.mask(split)
        res: dict[str, dict] = {}
        if "categorical" in tasks and gold.acoustic is not None:
            sel = mask & (gold.acoustic >= 0)
            a, la, lb = gold.acoustic[sel], arr_a["label"][sel], arr_b["label"][sel]
            s = np.full_like(a, k) if gold.semantic is None else np.where(gold.semantic[sel] < 0, k, gold.semantic[sel])
            codes = ((a * m + np.where(la < 0, k, la)) * m + np.where(lb < 0, k, lb)) * m + s
            shape = (m, m, m, m)
            point = np.bincount(codes, minlength=m ** 4).astype(float).reshape(shape)
            samples = boot_all.subset(sel).counts(codes, m ** 4).reshape(-1, *shape) if n_boot else None

            def values(t4, which, kind=split.kind):
                t = t4.sum(axis=-2) if which == "a" else t4.sum(axis=-3)
                out = {name: fn(t.sum(-1)) for name, fn in CATEGORICAL.items()}
                if gold.semantic is not None and kind == "conflict":
                    out.update({name: fn(_known_semantic(t)) for name, fn in CONFLICT.items()})
                if gold.semantic is not None and kind == "all":
                    out["conflict_gap"] = conflict.conflict_gap(_known_semantic(t))
                return out

            res.update(_paired_entries(values(point, "a"), values(point, "b"),
                                       None if samples is None else values(samples, "a"),
                                       None if samples is None else values(samples, "b"), int(sel.sum())))
            mcnemar_out[split.name] = mcnemar(la == a, lb == a)
        if "distribution" in tasks and gold.distribution is not None:
            sel = mask & np.isfinite(gold.distribution).all(1)
            g = gold.distribution[sel]
            st = np.column_stack([distribution_stats(g, arr_a["dist"][sel]), distribution_stats(g, arr_b["dist"][sel])])
            half = st.shape[1] // 2
            sums = boot_all.subset(sel).sums(st) if n_boot else None
            tot = st.sum(0)
            res.update(_paired_entries(
                _distribution_values(tot[:half]), _distribution_values(tot[half:]),
                None if sums is None else _distribution_values(sums[:, :half]),
                None if sums is None else _distribution_values(sums[:, half:]), int(sel.sum())))
        if "dimensional" in tasks and gold.vad:
            dims = list(gold.vad)
            sel = mask & np.column_stack([np.isfinite(gold.vad[d]) for d in dims]).any(1)
            blocks = []
            for arr in (arr_a, arr_b):
                for d in dims:
                    x, y = gold.vad[d][sel], arr["vad"][d][sel]
                    ok = np.isfinite(x) & np.isfinite(y)
                    blocks.append(dimensional.moments(np.where(ok, x, 0), np.where(ok, y, 0)) * ok[:, None])
            st = np.column_stack(blocks)
            half = st.shape[1] // 2
            sums = boot_all.subset(sel).sums(st) if n_boot else None
            tot = st.sum(0)
            res.update(_paired_entries(
                _dimensional_values(tot[:half], len(dims)), _dimensional_values(tot[half:], len(dims)),
                None if sums is None else _dimensional_values(sums[:, :half], len(dims)),
                None if sums is None else _dimensional_values(sums[:, half:], len(dims)), int(sel.sum())))
        splits_out[split.name] = res
    return {"benchmark": {"name": benchmark.name, "version": benchmark.version},
            "dataset_fingerprint": gold.fingerprint,
            "a": {"file": Path(pa.path).name, "sha256": pa.sha256},
            "b": {"file": Path(pb.path).name, "sha256": pb.sha256},
            "bootstrap": {"n_resamples": n_boot, "unit": "item" if clusters is None else "speaker",
                          "method": "paired percentile", "confidence": 0.95},
            "seed": seed, "tasks": tasks, "splits": splits_out, "mcnemar": mcnemar_out}
