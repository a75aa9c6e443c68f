"""Robustness summary: how much a model loses on degraded copies of the same test items.

A benchmark gold table that holds degraded copies (made by :mod:`casebench.degrade`) has, besides the clean
item ``c``, items ``c@snr5``, ``c@opus16k``, ... An item's condition is read from a gold column
``condition`` when there is one (empty or ``clean`` = clean), else from its id (:func:`casebench.degrade.
condition_of`); its source clip from a ``source_clip`` column, else from the id (:func:`casebench.degrade.
source_of`).

:func:`robustness_summary` then reports, for the categorical task and each condition:

* ``clean`` and ``degraded``: accuracy, macro-F1, weighted-F1 and UAR on the *paired* items (sources that
  have both a clean and a degraded copy with a known acoustic label), with 95% CIs;
* ``drop``: clean minus degraded, with a paired-bootstrap CI and p-value. Both scores are computed from one
  resampled tensor ``T[acoustic, prediction on clean, prediction on degraded]``, so each resample draws the
  same source items for both (speaker clusters when the gold has speakers): the CI is that of a paired
  difference, as in :func:`casebench.evaluate.compare`;
* ``snr_curves``: per noise type, the degraded score at each SNR (ascending) and the clean score; and
  ``auc``: the area under the score-over-SNR curve (trapezoids) divided by the SNR span, i.e. the mean score
  over the SNR range tested, comparable across noise types with the same SNR grid. It needs two or more
  SNRs; it has no CI (each condition is resampled on its own).

>>> import numpy as np
>>> from casebench.benchmarks import Gold
>>> from casebench.taxonomy import get_taxonomy
>>> ids = np.array([f"c{i}" for i in range(40)] + [f"c{i}@snr5" for i in range(40)])
>>> gold = Gold(ids=ids, taxonomy=get_taxonomy("ekman7"), acoustic=np.array([0, 3] * 40))
>>> pred = np.concatenate([np.array([0, 3] * 20), np.array([0, 3] * 10 + [0, 0] * 10)])
>>> res = robustness_summary(gold, pred, n_boot=100)
>>> c = res["conditions"]["snr5"]
>>> c["clean"]["accuracy"]["value"], c["degraded"]["accuracy"]["value"], c["drop"]["accuracy"]["value"]
(1.0, 0.75, 0.25)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from casebench.metrics import family

CLEAN = ("", "clean", "none")
METRICS = tuple(m.name for m in family("categorical"))  # from the one registry: a new metric is one entry


def item_conditions(gold: Any) -> tuple[np.ndarray, np.ndarray]:
    """(condition or None, source clip id) of every gold item (see the module docstring)."""
    from casebench.degrade import condition_of, source_of

    ids = [str(x) for x in gold.ids]
    col = gold.columns.get("condition")
    if col is not None:
        cond = np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).lower() in CLEAN
                         else str(v) for v in col], dtype=object)
    else:
        cond = np.array([condition_of(x) for x in ids], dtype=object)
    src_col = gold.columns.get("source_clip")
    if src_col is not None:
        src = np.array([str(s) if s is not None and str(s) not in ("", "nan") else source_of(i)
                        for s, i in zip(src_col, ids, strict=True)], dtype=object)
    else:
        src = np.array([source_of(x) if c is not None else x for x, c in zip(ids, cond, strict=True)], dtype=object)
    return cond, src


def has_conditions(gold: Any) -> bool:
    """Whether the gold holds any degraded item."""
    return any(c is not None for c in item_conditions(gold)[0])


def _snr(name: str) -> tuple[str, float] | None:
    from casebench.degrade import parse_condition

    try:
        c = parse_condition(name)
    except Exception:  # noqa: BLE001 - a gold may name conditions casebench did not make; they get no curve
        return None
    return (c.params["noise"], c.params["snr_db"]) if c.kind == "noise" else None


def auc(snrs: np.ndarray, values: np.ndarray) -> float | None:
    """Mean of a score over an SNR range: trapezoid area under (snr, value) divided by the SNR span.

    >>> auc(np.array([0.0, 10.0, 20.0]), np.array([0.4, 0.6, 0.8]))
    0.6
    """
    snrs, values = np.asarray(snrs, float), np.asarray(values, float)
    ok = np.isfinite(values)
    snrs, values = snrs[ok], values[ok]
    if len(snrs) < 2 or snrs.max() == snrs.min():
        return None
    order = np.argsort(snrs)
    s, v = snrs[order], values[order]
    return round(float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(s)) / (s[-1] - s[0])), 12)


@np.errstate(invalid="ignore", divide="ignore")
def robustness_summary(gold: Any, label: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                       unit: str = "auto", target: str = "acoustic_label") -> dict | None:
    """The robustness summary of categorical predictions ``label`` (aligned with ``gold.ids``); None when the
    gold has no degraded items or no acoustic labels."""
    from casebench import scoring
    from casebench.stats import Bootstrap

    gold_labels = gold.labels_of(target)
    if gold_labels is None:
        return None
    if "condition" not in gold.columns:
        import pandas as pd

        from casebench.degrade import SEP

        degraded = gold.is_degraded if hasattr(gold, "is_degraded") else \
            pd.Series(gold.ids, dtype=object).astype(str).str.contains(SEP, regex=False)
        if not np.asarray(degraded).any():
            return None  # the usual case, decided without a Python loop over a large gold
    cond, src = item_conditions(gold)
    if not any(c is not None for c in cond):
        return None
    k = len(gold.taxonomy)
    clean_index = {s: i for i, (s, c) in enumerate(zip(src, cond, strict=True)) if c is None}
    use_clusters = gold.speaker is not None and unit != "item"
    names = sorted({c for c in cond if c is not None}, key=lambda c: (_snr(c) is None, _snr(c) or (c, 0)))
    out: dict[str, dict] = {}
    for name in names:
        deg = np.flatnonzero(cond == name)
        pairs = [(clean_index[src[j]], j) for j in deg if src[j] in clean_index and gold_labels[j] >= 0]
        entry: dict[str, Any] = {"n_items": int(len(deg)), "n_pairs": len(pairs),
                                 "unpaired": int(len(deg) - len(pairs))}
        snr = _snr(name)
        if snr is not None:
            entry["noise"], entry["snr_db"] = snr
        if not pairs:
            out[name] = entry
            continue
        ci, di = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        a = gold_labels[ci]
        clusters = None
        if use_clusters:
            _, clusters = np.unique(gold.speaker_codes[ci], return_inverse=True)
        boot = Bootstrap(n_boot, seed, clusters)
        # clean and degraded predictions of the same sources, scored on one paired resample of the pairs
        sc, sd = scoring.paired_categorical(a, label[ci], label[di], None, k, "subset", boot, target_name=target)
        sc.values = {n: sc.values[n] for n in METRICS}
        sd.values = {n: sd.values[n] for n in METRICS}
        paired = scoring.paired_entries(sc, sd, len(pairs))
        entry["clean"] = {n: e for n, e in sc.entries().items()}
        entry["degraded"] = {n: e for n, e in sd.entries().items()}
        entry["drop"] = {n: {**paired[n]["diff"], "p_value": paired[n]["p_value"]} for n in METRICS}
        out[name] = entry
    curves: dict[str, dict] = {}
    for name, e in out.items():
        if "snr_db" in e and "degraded" in e:
            curves.setdefault(e["noise"], {"conditions": [], "snr_db": []})
            curves[e["noise"]]["conditions"].append(name)
            curves[e["noise"]]["snr_db"].append(e["snr_db"])
    for c in curves.values():
        order = np.argsort(c["snr_db"])
        c["conditions"] = [c["conditions"][i] for i in order]
        c["snr_db"] = [c["snr_db"][i] for i in order]
        for n in METRICS:
            c[n] = [out[x]["degraded"][n]["value"] for x in c["conditions"]]
            c[f"{n}_ci"] = [[out[x]["degraded"][n]["ci_low"], out[x]["degraded"][n]["ci_high"]]
                            for x in c["conditions"]]
            c[f"{n}_clean"] = [out[x]["clean"][n]["value"] for x in c["conditions"]]
        c["auc"] = {n: auc(np.array(c["snr_db"]), np.array([np.nan if v is None else v for v in c[n]]))
                    for n in METRICS}
    return {"metrics": list(METRICS), "unit": "speaker" if use_clusters else "item",
            "pairing": "source clip id (degraded id = <clip_id>@<condition>, or the gold's source_clip column)",
            "conditions": out, "snr_curves": curves}


def plot_snr_curves(robustness: dict, path: Any, metric: str = "uar") -> None:
    """Plot ``metric`` against SNR (one line with its 95% CI band per noise type, the clean score dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for noise, c in robustness["snr_curves"].items():
        x = np.array(c["snr_db"], float)
        y = np.array([np.nan if v is None else v for v in c[metric]], float)
        ci = np.array([[np.nan if v is None else v for v in pair] for pair in c[f"{metric}_ci"]], float)
        line, = ax.plot(x, y, marker="o", label=f"{noise} noise")
        if np.isfinite(ci).any():
            ax.fill_between(x, ci[:, 0], ci[:, 1], alpha=0.2, color=line.get_color())
        clean = [v for v in c[f"{metric}_clean"] if v is not None]
        if clean:
            ax.axhline(float(np.mean(clean)), ls="--", color=line.get_color(), lw=1, label=f"clean ({noise} pairs)")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel(f"{metric} (95% CI)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{metric} against SNR")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
