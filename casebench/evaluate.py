"""Score predictions against a benchmark: every split and metric with a bootstrap CI, beside constant baselines.

Orchestration only: every value and resample draw comes from the pure scoring core
(:mod:`casebench.scoring`) and the one metric registry (:data:`casebench.metrics.METRICS`). :func:`score` lays
the core's results out per split and metric (no I/O); :func:`evaluate` adds the I/O around it (load the gold,
parse the predictions file), the constant baseline (:func:`baseline_prior`), the interval warnings and the
provenance of the results object (see :mod:`casebench.results`); :func:`compare` scores two submissions on
the same resamples.

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

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from casebench import scoring
from casebench.benchmarks import Benchmark, Gold, Split
from casebench.errors import InputError, Problem, unknown_name
from casebench.stats import BOOTSTRAP_UNITS, Bootstrap


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
        clusters = [scores[n][metric].get("n_clusters") for n in have]
        distinct = [scores[n][metric].get("n_distinct_resamples") for n in have]
        # the mean's resample b joins resample b of every split: at least as many distinct as the most varied
        entry = scoring.entry(point, mean_boot, sum(scores[n][metric]["n"] for n in have),
                              sum(clusters) if all(c is not None for c in clusters) else None,
                              max(distinct) if distinct and all(d is not None for d in distinct) else None)
        entry["splits"] = have
        out[metric] = entry
    return out


def per_class(scores: scoring.Scores, labels: Sequence[str], support: np.ndarray) -> dict:
    """Per-class precision, recall and F1 with CIs, and support, keyed by label (from :func:`scoring.categorical`
    with ``per_class=True``)."""
    out = {}
    for i, lab in enumerate(labels):
        def e(name, i=i):
            d = scores.per_class_draws.get(name)
            return scoring.entry(scores.per_class[name][i], None if d is None else d[:, i], support[i],
                                 scores.n_clusters, scores.n_distinct)

        out[lab] = {"precision": e("precision"), "recall": e("recall"), "f1": e("f1"), "support": int(support[i])}
    return out


def confusion(acoustic, pred, k: int) -> list[list[int]]:
    """Confusion matrix (rows gold, columns predicted; last column = no prediction) as nested lists."""
    cm = np.bincount(acoustic * (k + 1) + np.where(pred < 0, k, pred), minlength=k * (k + 1)).reshape(k, k + 1)
    if not cm[:, k].any():
        cm = cm[:, :k]
    return cm.tolist()


def conflict_breakdown(acoustic, pred, semantic, labels: Sequence[str], conflict: np.ndarray | None = None
                       ) -> list[dict]:
    """For each acoustic x semantic pair of conflict items: share of predictions following voice, text, other.
    ``conflict`` marks the conflict items (default: voice and words labels known and different)."""
    k = len(labels)
    conf = (acoustic >= 0) & (semantic >= 0) & (acoustic != semantic)
    if conflict is not None:
        conf &= conflict
    a, p, s = acoustic[conf], pred[conf], semantic[conf]
    pair = a * k + s
    n = np.bincount(pair, minlength=k * k)
    voice = np.bincount(pair[p == a], minlength=k * k)
    text = np.bincount(pair[p == s], minlength=k * k)
    return [{"acoustic": labels[c // k], "semantic": labels[c % k], "n": int(n[c]), "voice": float(voice[c] / n[c]),
             "text": float(text[c] / n[c]), "other": float((n[c] - voice[c] - text[c]) / n[c])}
            for c in np.flatnonzero(n)]


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
          samples_out: dict | None = None, target: str = "acoustic_label", margins_out: dict | None = None) -> dict:
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
        samples_out: when a dict, filled with ``{split: {metric: bootstrap draws}}`` (for
            :func:`cross_corpus_mean`), from the draws :mod:`casebench.scoring` returns.
        target: the categorical task's gold label (``acoustic_label`` or ``semantic_label``).
        margins_out: when a dict, filled with ``{split: scoring.Scores}`` of the categorical task, with their
            ``margin`` (for :func:`baselines`: the constant baseline's counts on the same resamples).
    """
    k = len(gold.taxonomy)
    boot_all = Bootstrap(n_boot, seed, _clusters(gold, unit))
    out: dict[str, dict] = {}
    for split in splits:
        parts = _score_split(gold, split, tasks, label, dist, vad, k, boot_all, target, margins_out is not None)
        res: dict[str, dict] = {}
        draws: dict[str, np.ndarray] = {}
        for kind, sc in parts.items():
            if kind == "by_dimension":
                res["by_dimension"] = {d: x.entries() for d, x in sc.items()}
                continue
            entries = sc.entries()
            if kind == "categorical" and margins_out is not None:
                margins_out[split.name] = sc
            if kind == "categorical" and with_per_class:
                y = gold.labels_of(target)
                cm_support = np.bincount(y[gold.mask(split) & (y >= 0)], minlength=k)
                res["per_class"] = per_class(sc, gold.taxonomy.labels, cm_support)
            res.update(entries)
            draws.update({m: d for m, d in sc.draws.items() if m in entries})
        if samples_out is not None:
            samples_out[split.name] = draws
        out[split.name] = res
    return out


def _score_split(gold: Gold, split: Split, tasks, label, dist, vad, k: int, boot_all: Bootstrap,
                 target: str = "acoustic_label", keep_margin: bool = False) -> dict:
    """``{family kind: scoring.Scores}`` of one split (and ``by_dimension``: {dimension: Scores})."""
    mask = gold.mask(split)
    res: dict = {}
    labels = gold.labels_of(target) if "categorical" in tasks else None
    if labels is not None:
        m = mask & (labels >= 0)
        if m.any():
            other = gold.semantic if target == "acoustic_label" else gold.acoustic
            res["categorical"] = scoring.categorical(labels[m], label[m], None if other is None else other[m], k,
                                                     split.kind, boot_all.subset(m), target_name=target,
                                                     per_class=True, keep_margin=keep_margin)
    if "distribution" in tasks and gold.distribution is not None:
        m = mask & np.isfinite(gold.distribution).all(1)
        if m.any():
            res["distribution"] = scoring.distribution(gold.distribution[m], dist[m], boot_all.subset(m))
    if "dimensional" in tasks and gold.vad:
        m = mask & np.column_stack([np.isfinite(v) for v in gold.vad.values()]).any(1)
        if m.any():
            res["dimensional"], res["by_dimension"] = scoring.dimensional(
                {d: v[m] for d, v in gold.vad.items()}, {d: v[m] for d, v in vad.items()}, boot_all.subset(m))
    return res


def baseline_prior(benchmark: Benchmark | None, gold: Gold) -> scoring.Prior:
    """The prior the constant baseline predicts: from the benchmark's train table (spec ``train:``), else the
    train prior its spec carries (``prior:``), else, as a last resort, from the test gold itself (an oracle,
    named "test prior (oracle)" everywhere)."""
    if benchmark is not None and benchmark.train_path is not None:
        return scoring.prior_from_gold(benchmark.load_train(), "train")
    if benchmark is not None and benchmark.prior:
        return scoring.prior_from_spec(benchmark.prior, gold.taxonomy)
    return scoring.prior_from_gold(gold, "test")


def baselines(gold: Gold, splits: Sequence[Split], tasks: Sequence[str], *, n_boot: int, seed: int,
              unit: str, prior: scoring.Prior | None = None, target: str = "acoustic_label",
              margins: dict | None = None) -> dict:
    """The constant reference system, scored on the same items: it predicts the prior's majority class, mean
    distribution and mean V/A/D. ``{prior.name: {split: {metric: entry}}}``: ``train prior``, or, when
    ``prior`` is None or comes from the test labels, ``test prior (oracle)``.

    ``margins``: a model's categorical scores per split from :func:`score` (``margins_out``) with the same
    gold, splits, ``n_boot``, ``seed``, ``unit`` and ``target``; the categorical baseline is then derived from
    them (:func:`casebench.scoring.constant_categorical`: the same resamples, the same numbers as scoring a
    constant prediction array) instead of resampled a second time. Only for a cluster (speaker) bootstrap or
    none: an item bootstrap draws a multinomial over the cells that occur, so a constant system's draws there
    are not the model's."""
    prior = prior or scoring.prior_from_gold(gold, "test")
    n = len(gold)
    arrays: dict = {}
    run = []
    derived = False
    if "categorical" in tasks and gold.labels_of(target) is not None and prior.label is not None:
        if margins is None:
            arrays["label"] = np.full(n, prior.label)
            run.append("categorical")
        else:
            derived = True
    if "distribution" in tasks and gold.distribution is not None and prior.distribution is not None:
        arrays["dist"] = np.tile(prior.distribution, (n, 1))
        run.append("distribution")
    if "dimensional" in tasks and gold.vad and prior.vad:
        arrays["vad"] = {d: np.full(n, prior.vad.get(d, np.nan)) for d in gold.vad}
        run.append("dimensional")
    if not run and not derived:
        return {}
    res = score(gold, splits, run, n_boot=n_boot, seed=seed, unit=unit, target=target, **arrays) if run else {}
    if derived:
        other = gold.semantic if target == "acoustic_label" else gold.acoustic
        k = len(gold.taxonomy)
        out = {}
        for split in splits:
            entries = {}
            sc = margins.get(split.name)
            if sc is not None:
                entries = scoring.constant_categorical(sc.margin, prior.label, sc.n, sc.n_clusters, k, split.kind,
                                                       other is not None, target_name=target).entries()
            out[split.name] = {**entries, **res.get(split.name, {})}  # categorical first, as score() orders
        res = out
    for split_scores in res.values():
        split_scores.pop("by_dimension", None)
    return {prior.name: res}


def baseline_info(prior: scoring.Prior) -> dict:
    """What the results say about the constant baseline's prior (``results["baseline_prior"]``)."""
    return {"name": prior.name, "source": prior.source, "n": prior.n, "oracle": prior.oracle}


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
    from casebench.results_model import check
    from casebench.workspace import check_benchmark

    stale = check_benchmark(benchmark, allow_stale=allow_stale)
    gold = benchmark.load_gold()
    preds = parse_predictions(predictions, gold, renormalize=renormalize, allow_missing=allow_missing)
    model = _with_sidecar(model, predictions, preds)
    tasks = scored_tasks(benchmark, preds)
    arrays = prediction_arrays(preds, gold, tasks)
    task = benchmark.task("categorical")
    target = task.target if task is not None else "acoustic_label"
    samples: dict = {}
    # under a cluster bootstrap the constant baseline's resamples are the model's: derived, not drawn again
    margins: dict | None = {} if with_baselines and _clusters(gold, unit) is not None else None
    scores = score(gold, benchmark.splits, tasks, n_boot=n_boot, seed=seed, unit=unit, with_per_class=True,
                   samples_out=samples, target=target, margins_out=margins, **arrays)
    extra: dict = {"per_class": {}, "confusion": {}, "split_counts": split_counts(gold, benchmark.splits)}
    cross = [s.name for s in benchmark.splits if s.kind == "cross-corpus"]
    if cross:
        from casebench.results import split_zero_shot

        extra["cross_corpus_mean"] = cross_corpus_mean(scores, samples, cross)
        flags = split_zero_shot(benchmark, (model or {}).get("trained_on") or [])
        unseen = [n for n in cross if flags.get(n)]
        if len(unseen) < len(cross):  # the model trained on some of them: also the mean over the others
            extra["cross_corpus_mean_zero_shot"] = cross_corpus_mean(scores, samples, unseen)
    gold_labels = gold.labels_of(target) if "categorical" in tasks else None
    if gold_labels is not None:
        labels = list(gold.taxonomy.labels)
        k = len(labels)
        for split in benchmark.splits:
            m = gold.mask(split) & (gold_labels >= 0)
            if m.any():
                extra["per_class"][split.name] = scores[split.name].pop("per_class")
                extra["confusion"][split.name] = confusion(gold_labels[m], arrays["label"][m], k)
        if gold.semantic is not None and gold.acoustic is not None:
            extra["conflict_breakdown"] = conflict_breakdown(gold.acoustic, arrays["label"], gold.semantic, labels,
                                                             gold.is_conflict)
    extra["per_dimension"] = {name: res.pop("by_dimension") for name, res in scores.items() if "by_dimension" in res}
    if gold_labels is not None:
        group_by = group_by if group_by is not None else (list(getattr(benchmark, "group_by", ())) or None)
        extra.update(_robustness_and_groups(gold, arrays["label"], group_by, min_group_items, n_boot, seed, unit,
                                            target))
    base = {}
    if with_baselines:
        prior = baseline_prior(benchmark, gold)
        base = baselines(gold, benchmark.splits, tasks, n_boot=n_boot, seed=seed, unit=unit, prior=prior,
                         target=target, margins=margins if "categorical" in tasks else None)
        extra["baseline_prior"] = baseline_info(prior)
    boot_unit = "item" if _clusters(gold, unit) is None else "speaker"
    extra["warnings"] = scoring.interval_warnings(scores, boot_unit)
    if "cross_corpus_mean" in extra:
        extra["warnings"] += scoring.interval_warnings({"cross_corpus_mean": extra["cross_corpus_mean"]},
                                                       boot_unit, where="mean")
    extra["warnings"] += scoring.group_warnings(extra.get("groups") or {})
    if "robustness" in extra:
        extra["warnings"] += scoring.robustness_warnings(extra["robustness"])
    if with_baselines and extra["baseline_prior"]["oracle"]:
        extra["warnings"].append("the constant baseline 'test prior (oracle)' is computed from the test labels "
                                 "(the benchmark has no train table or train prior): it is an oracle, not a "
                                 "fair baseline")
    results = build_results(benchmark=benchmark, gold=gold, preds=preds, tasks=tasks, scores=scores,
                            baselines=base, extra=extra, n_boot=n_boot, seed=seed, unit=boot_unit, model=model)
    if stale:
        results["staleness"] = {"allow_stale": True, "problems": stale}
        results.setdefault("warnings", []).extend(f"stale (--allow-stale): {p}" for p in stale)
    check(results)  # the typed model of a results file (casebench.results_model): what is written is valid
    return results


def split_counts(gold: Gold, splits: Sequence[Split]) -> dict:
    """Per conflict/congruent split: the items scored, the voice != words count (``raw``), and where the
    scored set comes from (``curated``: the gold's ``is_conflict`` tags, else ``voice != words``)."""
    out = {}
    tags = gold.curated_conflict
    clean = ~gold.is_degraded
    for split in splits:
        if split.kind not in ("conflict", "congruent"):
            continue
        scored = int((gold.mask(split)).sum())
        if split.kind == "conflict":
            raw = int((gold.is_conflict_raw & clean).sum())
        else:
            raw = int((gold.acoustic is not None and gold.semantic is not None)
                      and ((gold.acoustic >= 0) & (gold.acoustic == gold.semantic) & clean).sum())
        out[split.name] = {"n": scored, "n_raw": raw,
                           "source": "curated is_conflict tags" if tags is not None and (tags >= 0).any()
                           else "voice != words",
                           "n_tagged": None if tags is None else int(((tags >= 0) & clean).sum())}
    return out


def _with_sidecar(model: dict | None, predictions, preds) -> dict | None:
    """``model`` completed from the metadata ``casebench predict`` wrote beside the predictions file (when it
    describes this very file); fields given in ``model`` win. What was used or ignored goes into the notes."""
    from casebench.predict.runner import merge_model, sidecar_model

    side, note = sidecar_model(predictions, preds.sha256)
    if note:
        preds.notes.append(note)
    return merge_model(model, side)


def _robustness_and_groups(gold: Gold, label: np.ndarray, group_by, min_items: int | None, n_boot: int, seed: int,
                           unit: str, target: str = "acoustic_label") -> dict:
    """``robustness`` (when the gold has degraded items) and ``groups`` (when asked) for :func:`evaluate`."""
    from casebench import fairness, robustness

    out: dict = {}
    rob = robustness.robustness_summary(gold, label, n_boot=n_boot, seed=seed, unit=unit, target=target)
    if rob is not None:
        out["robustness"] = rob
    if group_by:
        columns = [group_by] if isinstance(group_by, str) else list(group_by)
        clean = np.array([c is None for c in robustness.item_conditions(gold)[0]]) if rob is not None else None
        kw = {} if min_items is None else {"min_items": int(min_items)}
        out["groups"] = {c: fairness.group_breakdown(gold, label, c, mask=clean, n_boot=n_boot, seed=seed, unit=unit,
                                                     target=target, **kw) for c in columns}
    return out


# --------------------------------------------------------------------------------------------------------
# Paired comparison of two submissions on the same items


@np.errstate(invalid="ignore", divide="ignore")
def compare(predictions_a: str | Path, predictions_b: str | Path, benchmark: Benchmark, *, n_boot: int = 1000,
            seed: int = 0, unit: str = "auto", renormalize: bool = False) -> dict:
    """Paired comparison of two submissions on the same items: per split and metric, A, B and A − B with a
    paired-bootstrap CI and p-value (both scored on the very same resamples, :mod:`casebench.scoring`), and
    McNemar's exact test on per-item correctness for the categorical task. A split with no scorable item is
    reported with ``n: 0`` and no metrics (an EM2LDL-style gold has an empty conflict split)."""
    from casebench.predictions import parse_predictions
    from casebench.stats import mcnemar

    gold = benchmark.load_gold()
    pa = parse_predictions(predictions_a, gold, renormalize=renormalize)
    pb = parse_predictions(predictions_b, gold, renormalize=renormalize)
    tasks = [t for t in scored_tasks(benchmark, pa) if t in scored_tasks(benchmark, pb)]
    arr_a, arr_b = prediction_arrays(pa, gold, tasks), prediction_arrays(pb, gold, tasks)
    task = benchmark.task("categorical")
    target = task.target if task is not None else "acoustic_label"
    k = len(gold.taxonomy)
    clusters = _clusters(gold, unit)
    boot_all = Bootstrap(n_boot, seed, clusters)
    splits_out, mcnemar_out, empty = {}, {}, []
    for split in benchmark.splits:
        mask = gold.mask(split)
        res: dict[str, dict] = {}
        labels = gold.labels_of(target) if "categorical" in tasks else None
        if labels is not None and (sel := mask & (labels >= 0)).any():
            other = gold.semantic if target == "acoustic_label" else gold.acoustic
            y, la, lb = labels[sel], arr_a["label"][sel], arr_b["label"][sel]
            sa, sb = scoring.paired_categorical(y, la, lb, None if other is None else other[sel], k, split.kind,
                                                boot_all.subset(sel), target_name=target)
            res.update(scoring.paired_entries(sa, sb, int(sel.sum())))
            mcnemar_out[split.name] = mcnemar(la == y, lb == y)
        if "distribution" in tasks and gold.distribution is not None and \
                (sel := mask & np.isfinite(gold.distribution).all(1)).any():
            g = gold.distribution[sel]
            st_a, where = scoring.distribution_stats(g, arr_a["dist"][sel])
            st_b, _ = scoring.distribution_stats(g, arr_b["dist"][sel])
            res.update(_paired_sums(np.hstack([st_a, st_b]), st_a.shape[1], boot_all.subset(sel),
                                    lambda x, w=where: scoring.distribution_values(x, w)))
        if "dimensional" in tasks and gold.vad:
            dims = list(gold.vad)
            sel = mask & np.column_stack([np.isfinite(gold.vad[d]) for d in dims]).any(1)
            if sel.any():
                g = {d: gold.vad[d][sel] for d in dims}
                st_a = scoring.dimensional_stats(g, {d: arr_a["vad"][d][sel] for d in dims})
                st_b = scoring.dimensional_stats(g, {d: arr_b["vad"][d][sel] for d in dims})
                names = [m.name for m in scoring.family("dimensional")]
                res.update(_paired_sums(np.hstack([st_a, st_b]), st_a.shape[1], boot_all.subset(sel),
                                        lambda x, d=dims, keep=names: {
                                            n: v for n, v in scoring.dimensional_values(x, d).items() if n in keep}))
        if not res:
            empty.append(split.name)
        splits_out[split.name] = res
    unit_name = "item" if clusters is None else "speaker"
    warnings = scoring.interval_warnings({s: {m: e["diff"] for m, e in r.items()} for s, r in splits_out.items()},
                                         unit_name)
    warnings += [f"split {name!r} has no scorable item: nothing compared there" for name in empty]
    return {"benchmark": {"name": benchmark.name, "version": benchmark.version},
            "dataset_fingerprint": gold.fingerprint,
            "a": {"file": Path(pa.path).name, "sha256": pa.sha256},
            "b": {"file": Path(pb.path).name, "sha256": pb.sha256},
            "bootstrap": {"n_resamples": n_boot, "unit": unit_name, "method": "paired percentile", "confidence": 0.95},
            "seed": seed, "tasks": tasks, "splits": splits_out,
            "split_items": {s: int(gold.mask(sp).sum()) for sp in benchmark.splits for s in [sp.name]},
            "mcnemar": mcnemar_out, "warnings": warnings}


def _paired_sums(stats: np.ndarray, half: int, boot: Bootstrap, values) -> dict:
    """Paired entries of two systems whose per-item statistics sit side by side (A's first ``half`` columns):
    one resample of the items gives both systems' sums."""
    n = len(stats)
    tot = stats.sum(0)
    units = n if boot.clusters is None else int(boot.clusters.max()) + 1
    a = scoring.Scores({k: float(v) for k, v in values(tot[:half]).items()}, n=n, n_clusters=units)
    b = scoring.Scores({k: float(v) for k, v in values(tot[half:]).items()}, n=n, n_clusters=units)
    if boot.n_boot:
        sums = boot.sums(stats)
        a.draws, b.draws = values(sums[:, :half]), values(sums[:, half:])
        a.n_distinct = b.n_distinct = scoring.distinct_rows(sums)
    return scoring.paired_entries(a, b, n)
