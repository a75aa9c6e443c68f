"""Render results: rich tables in the terminal, and an HTML page with PNG plots (``--report DIR``).

Rendering only: every number shown comes from the results object; nothing is recomputed here.
"""

from __future__ import annotations

from pathlib import Path

from casebench.metrics import METRICS

SPLIT_ORDER = ("all", "conflict", "congruent")


def fmt(entry: dict | None, digits: int = 3) -> str:
    """``0.812 [0.781, 0.840]`` from a metric entry; ``–`` when undefined.

    >>> fmt({"value": 0.8123, "ci_low": 0.78, "ci_high": 0.84, "n": 10})
    '0.812 [0.780, 0.840]'
    """
    if not entry or entry.get("value") is None:
        return "–"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("ci_low") is not None:
        text += f" [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"
    return text


def ordered_splits(results: dict) -> list[str]:
    names = list(results["splits"])
    return [s for s in SPLIT_ORDER if s in names] + [s for s in names if s not in SPLIT_ORDER]


def baseline_for(results: dict, split: str, metric: str) -> tuple[str, dict] | None:
    """The constant baseline that scores ``metric`` on ``split``, if any."""
    for name, base in (results.get("baselines") or {}).items():
        entry = base.get(split, {}).get(metric)
        if entry is not None:
            return name, entry
    return None


def render(results: dict, console) -> None:
    """Print the results as one rich table per split, constant baselines beside every score."""
    from rich.table import Table

    b, m = results["benchmark"], results["model"]
    shot = "zero-shot" if m.get("zero_shot") else "NOT zero-shot on " + ", ".join(m["not_zero_shot_on"])
    version = "(a --gold table)" if b["version"] == "adhoc" else f"v{b['version']}"
    console.print(f"[bold]{b['name']}[/] {version} ({b['taxonomy']})  ·  model: {m.get('name') or '(unnamed)'}"
                  f"{' @ ' + m['revision'] if m.get('revision') else ''}  ·  {shot}")
    boot = results["bootstrap"]
    console.print(f"95% CIs: {boot['method']} bootstrap, {boot['n_resamples']} resamples over {boot['unit']}s, "
                  f"seed {results['seed']}  ·  predictions {results['predictions']['sha256'][:19]}…")
    for note in results["predictions"].get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    for warning in results.get("warnings") or []:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    prior = results.get("baseline_prior") or {}
    if prior:
        where = {"train": "the train split", "spec": "the train prior in the benchmark spec",
                 "test": "the test labels themselves"}[prior["source"]]
        console.print(f"constant baseline: [bold]{prior['name']}[/] (majority class / mean distribution / mean "
                      f"V/A/D from {where})", highlight=False)
    for split in ordered_splits(results):
        metrics = results["splits"][split]
        if not metrics:
            continue
        n = max(e["n"] for e in metrics.values())
        info = (results.get("split_info") or {}).get(split) or {}
        shot_note = "  ·  NOT zero-shot: the model trained on this corpus" if info.get("zero_shot") is False else ""
        table = Table(title=f"{split}  (n={n}){shot_note}", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("metric", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("95% CI", justify="right", no_wrap=True)
        table.add_column("constant", justify="right", no_wrap=True)
        table.add_column("", no_wrap=True)
        for metric, entry in metrics.items():
            base = baseline_for(results, split, metric)
            arrow = "↑" if METRICS[metric].higher_is_better else "↓"
            mark = versus_constant(entry, base[1] if base else None, METRICS[metric].higher_is_better)
            flag = CONSOLE_MARKS.get(mark, "")  # the HTML report's rule: the whole CI against the constant
            value = fmt(entry).split(" ", 1)
            table.add_row(f"{metric} {arrow}", value[0], value[1] if len(value) > 1 else "",
                          fmt(base[1]).split(" ")[0] if base else "", flag)
        console.print(table)
    for key, what in (("cross_corpus_mean", "cross-corpus mean"),
                      ("cross_corpus_mean_zero_shot", "cross-corpus mean over the corpora the model did not train on")):
        means = results.get(key) or {}
        if means:
            table = Table(title=what, title_justify="left", show_edge=False, pad_edge=False)
            for col in ("metric", "value", "95% CI", "over"):
                table.add_column(col, justify="left" if col in ("metric", "over") else "right", no_wrap=True)
            for metric, entry in means.items():
                value = fmt(entry).split(" ", 1)
                table.add_row(metric, value[0], value[1] if len(value) > 1 else "", ", ".join(entry.get("splits", [])))
            console.print(table)


def render_compare(result: dict, console) -> None:
    """Print a paired comparison: per split and metric, A, B, A−B with CI and p-value."""
    from rich.table import Table

    console.print(f"[bold]{result['benchmark']['name']}[/]: A = {result['a']['file']}, B = {result['b']['file']}; "
                  f"paired bootstrap ({result['bootstrap']['n_resamples']} resamples over "
                  f"{result['bootstrap']['unit']}s)")
    for warning in result.get("warnings") or []:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    for split, metrics in result["splits"].items():
        if not metrics:
            continue
        table = Table(title=split, title_justify="left", show_edge=False)
        for col in ("metric", "A", "B", "A − B [95% CI]", "p"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for metric, e in metrics.items():
            table.add_row(metric, f"{e['a']:.3f}" if e["a"] is not None else "–",
                          f"{e['b']:.3f}" if e["b"] is not None else "–", fmt(e["diff"]),
                          f"{e['p_value']:.3g}" if e.get("p_value") is not None else "–")
        console.print(table)
        mc = result.get("mcnemar", {}).get(split)
        if mc:
            console.print(f"  McNemar (accuracy): A only right {mc['a_only_correct']}, B only right "
                          f"{mc['b_only_correct']}, exact p = {mc['p_value']:.3g}")


# ----------------------------------------------------------------------------------------------------------
# HTML + PNG report

# The report's headline: (split, metric, title, what it says). Conflict benchmarks show these four; others
# show the first four metrics of their first split.
HEADLINE = (
    ("conflict", "accuracy", "Conflict accuracy", "clips whose voice and words disagree, scored on the voice"),
    ("congruent", "accuracy", "Congruent accuracy", "clips whose voice and words agree"),
    ("conflict", "text_following_rate", "Text-following rate", "conflict clips predicted as the words' emotion"),
    ("all", "conflict_gap", "Conflict gap", "congruent accuracy minus conflict accuracy"),
)


CONSOLE_MARKS = {"beats": "[green]beats constant[/]", "below": "[red]below constant[/]",
                 "tie": "CI covers constant"}


def versus_constant(entry: dict | None, base: dict | None, higher_is_better: bool) -> str | None:
    """``"beats"`` when the whole 95% CI is on the better side of the constant's score, ``"below"`` when the
    whole CI is on the worse side, ``"tie"`` when it covers it; None without a constant or a value.

    >>> versus_constant({"value": .8, "ci_low": .7, "ci_high": .9}, {"value": .5}, True)
    'beats'
    >>> versus_constant({"value": .3, "ci_low": .2, "ci_high": .6}, {"value": .5}, False)
    'tie'
    """
    if not entry or not base or entry.get("value") is None or base.get("value") is None:
        return None
    low = entry["ci_low"] if entry.get("ci_low") is not None else entry["value"]
    high = entry["ci_high"] if entry.get("ci_high") is not None else entry["value"]
    c = base["value"]
    if low > c or high < c:
        return "beats" if (low > c) == higher_is_better else "below"
    return "tie"


def _cell(results: dict, split: str, metric: str) -> dict:
    entry = results["splits"][split].get(metric)
    base = baseline_for(results, split, metric)
    better = METRICS[metric].higher_is_better
    value, _, ci = fmt(entry).partition(" ")
    return {"value": value, "ci": ci, "n": (entry or {}).get("n"), "n_clusters": (entry or {}).get("n_clusters"),
            "constant": fmt(base[1]).split(" ")[0] if base else "", "constant_name": base[0] if base else "",
            "mark": versus_constant(entry, base[1] if base else None, better)}


def headline(results: dict) -> list[dict]:
    """The headline cards: title, arrow, what it measures, and the cell (value, CI, constant, mark)."""
    chosen = [h for h in HEADLINE if results["splits"].get(h[0], {}).get(h[1])]
    if not chosen:
        first = next((sp for sp in ordered_splits(results) if results["splits"][sp]), None)
        chosen = [(first, m, f"{m} ({first})", METRICS[m].description) for m in list(results["splits"][first])[:4]] \
            if first else []
    return [{"title": title, "what": what, "arrow": "↑" if METRICS[metric].higher_is_better else "↓",
             **_cell(results, split, metric)} for split, metric, title, what in chosen]


def metric_table(results: dict, splits: list[str]) -> list[dict]:
    """One row per metric (in registry order), one cell per split; empty cells where a split lacks it."""
    present = {m for sp in splits for m in results["splits"][sp]}
    return [{"metric": metric, "arrow": "↑" if METRICS[metric].higher_is_better else "↓",
             "description": METRICS[metric].description,
             "cells": [_cell(results, sp, metric) if metric in results["splits"][sp] else None for sp in splits]}
            for metric in METRICS if metric in present]


def _save(fig, path: Path) -> None:
    """Lay out, write (PNG, 110 dpi) and free a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_confusions(confusion: dict[str, list[list[int]]], labels: list[str], path: Path) -> None:
    """Row-normalised confusion matrices of every split side by side, one shared colour scale.

    Each cell is the share of that gold (voice) class predicted as the column's class, so splits of different
    sizes read alike; the row's clip count is on its tick label.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(confusion)
    k = len(labels)
    width = 0.42 * (k + 1) + 1.6
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), 0.42 * k + 1.6), squeeze=False,
                             layout="constrained")
    image = None
    for ax, name in zip(axes[0], names, strict=True):
        a = np.asarray(confusion[name], dtype=float)
        cols = labels + (["(none)"] if a.shape[1] > k else [])
        rows = a.sum(1)
        norm = a / np.maximum(rows[:, None], 1)
        image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                if a[i, j]:
                    ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), [f"{lab} ({int(n)})" for lab, n in zip(labels, rows, strict=True)], fontsize=7)
        ax.set_title(f"{name} (n={int(rows.sum())})", fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("gold (voice)", fontsize=8)
    fig.colorbar(image, ax=list(axes[0]), fraction=0.015, pad=0.01, label="share of the gold row")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_conflict(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: -r["n"])[:30]
    names = [f"{r['acoustic']}-voice / {r['semantic']}-words (n={r['n']})" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.28 * len(rows)))
    left = [0.0] * len(rows)
    for key, color in (("voice", "#2b8cbe"), ("text", "#e34a33"), ("other", "#bdbdbd")):
        vals = [r[key] for r in rows]
        ax.barh(names, vals, left=left, color=color, label={"voice": "follows voice", "text": "follows words",
                                                            "other": "other"}[key])
        left = [a + b for a, b in zip(left, vals, strict=False)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of predictions")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _plot_per_class(per_class: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    labels = list(per_class)
    vals = [per_class[k]["f1"]["value"] or 0.0 for k in labels]
    lo = [v - (per_class[k]["f1"]["ci_low"] if per_class[k]["f1"]["ci_low"] is not None else v)
          for k, v in zip(labels, vals, strict=False)]
    hi = [(per_class[k]["f1"]["ci_high"] if per_class[k]["f1"]["ci_high"] is not None else v) - v
          for k, v in zip(labels, vals, strict=False)]
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(labels), 3.5))
    ax.bar(labels, vals, yerr=[lo, hi], capsize=3, color="#756bb1")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 (95% CI)")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    _save(fig, path)


def write_report(results: dict, out_dir: str | Path) -> Path:
    """Write ``index.html``, ``results.json`` and the PNG plots to ``out_dir``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")
    from jinja2 import select_autoescape

    from casebench import resources
    from casebench.results import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = results["benchmark"]["labels"]
    images = []
    if results.get("confusion"):
        _plot_confusions(results["confusion"], labels, out / "confusion.png")
        images.append(("Confusion matrices, row-normalised (% of each gold class; clip counts beside the labels)",
                       "confusion.png"))
    if results.get("conflict_breakdown"):
        _plot_conflict(results["conflict_breakdown"], out / "conflict_breakdown.png")
        images.append(("Conflict clips by voice/words pair: does the model follow the voice or the words?",
                       "conflict_breakdown.png"))
    for split in ("all", "conflict"):
        pc = (results.get("per_class") or {}).get(split)
        if pc:
            _plot_per_class(pc, out / f"per_class_f1_{split}.png")
            images.append((f"Per-class F1 — {split}", f"per_class_f1_{split}.png"))
    if (results.get("robustness") or {}).get("snr_curves"):
        from casebench.robustness import plot_snr_curves

        plot_snr_curves(results["robustness"], out / "robustness_snr.png")
        images.append(("Score against SNR", "robustness_snr.png"))
    for column, breakdown in (results.get("groups") or {}).items():
        from casebench.fairness import plot_groups

        name = f"groups_{''.join(ch if ch.isalnum() else '_' for ch in column)}.png"
        plot_groups(breakdown, out / name)
        images.append((f"UAR by {column}", name))
    save(results, out / "results.json")
    env = resources.jinja_env("templates", autoescape=select_autoescape(["html", "j2"]))
    splits = [sp for sp in ordered_splits(results) if results["splits"][sp]]
    html = env.get_template("report.html.j2").render(r=results, headline=headline(results), splits=splits,
                                                     images=images,
                                                     table=metric_table(results, splits))
    (out / "index.html").write_text(html, encoding="utf-8")
    return out / "index.html"


# ----------------------------------------------------------------------------------------------------------
# Agreement


def render_agreement(result: dict, console) -> None:
    """One row per dimension: α, Fleiss κ and Gwet AC1 with CIs; then the least-agreeing rater of each."""
    from rich.table import Table

    console.print(f"ratings: {result['source']}")
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  title="agreement (95% CIs over clips)",
                  title_justify="left")
    for col in ("dimension", "level", "α", "α 95% CI", "Fleiss κ", "AC1", "units", "raters"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("dimension", "level") else "right")
    for dim, r in result["dimensions"].items():
        alpha = fmt(r["krippendorff_alpha"]).split(" ", 1)
        fleiss = fmt(r["fleiss_kappa"]).split(" ")[0] if r["fleiss_kappa"].get("applicable") else "n/a"
        ac1 = fmt(r["gwet_ac1"]).split(" ")[0] if r["gwet_ac1"].get("applicable") else "n/a"
        table.add_row(dim, r["level"], alpha[0], alpha[1] if len(alpha) > 1 else "", fleiss, ac1,
                      str(r["n_units"]), str(r["n_raters"]))
    console.print(table)
    for dim, r in result["dimensions"].items():
        scored = [p for p in r["per_rater"] if p.get("agreement_with_consensus") is not None]
        if scored:
            worst = min(scored, key=lambda p: p["agreement_with_consensus"])
            console.print(f"  {dim}: least agreement with the others — rater {worst['rater_id']} "
                          f"({worst['agreement_with_consensus']:.2f}; {r['per_rater_measure']})")
        if not r["fleiss_kappa"].get("applicable"):
            console.print(f"  {dim}: Fleiss κ not applicable: {r['fleiss_kappa'].get('reason')}")
        scored_classes = sorted(((k, v) for k, v in (r.get("per_class_alpha") or {}).items()
                                 if v.get("value") is not None), key=lambda kv: kv[1]["value"])
        if scored_classes:
            shown = [f"{k} {fmt(v)}" for k, v in scored_classes[:3]]
            console.print(f"  {dim}: per-class binary α ({len(scored_classes)} classes), lowest: {'; '.join(shown)}")


def _plot_rater_heatmap(pair: dict, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    k = np.array([[np.nan if v is None else v for v in row] for row in pair["kappa"]], dtype=float)
    raters = pair["raters"]
    size = 1.5 + 0.35 * len(raters)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(k, cmap="RdYlGn", vmin=-0.2, vmax=1)
    ax.set_xticks(range(len(raters)), raters, rotation=90, fontsize=7)
    ax.set_yticks(range(len(raters)), raters, fontsize=7)
    if len(raters) <= 12:
        for i in range(len(raters)):
            for j in range(len(raters)):
                if np.isfinite(k[i, j]):
                    ax.text(j, i, f"{k[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="Cohen's κ" + (f" ({pair['weights']})" if pair.get("weights") else ""))
    ax.set_title(title)
    _save(fig, path)


def write_agreement_report(result: dict, out_dir: str | Path) -> Path:
    """Write ``agreement.json``, ``index.html`` and a rater × rater Cohen's κ heatmap per dimension."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import orjson

    from casebench.workspace import atomic_write_bytes, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "agreement.json", orjson.dumps(result, option=orjson.OPT_INDENT_2))
    parts = [f"<h1>Inter-rater agreement</h1><p>{html.escape(result['source'])}</p>",
             "<table><tr><th>dimension</th><th>level</th><th>Krippendorff α [95% CI]</th><th>Fleiss κ</th>"
             "<th>Gwet AC1</th><th>units</th><th>raters</th><th>ratings</th></tr>"]
    figures = []
    for dim, r in result["dimensions"].items():
        cells = [dim, f"{r['level']} ({r['level_source']})", fmt(r["krippendorff_alpha"]),
                 fmt(r["fleiss_kappa"]) if r["fleiss_kappa"].get("applicable") else "n/a",
                 fmt(r["gwet_ac1"]) if r["gwet_ac1"].get("applicable") else "n/a",
                 r["n_units"], r["n_raters"], r["n_ratings"]]
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        pair = r.get("pairwise_cohen_kappa") or {}
        if pair.get("applicable") and pair.get("raters"):
            name = f"raters_{''.join(ch if ch.isalnum() else '_' for ch in dim)}.png"
            _plot_rater_heatmap(pair, out / name, f"{dim}: pairwise Cohen's κ")
            figures.append((dim, name))
    parts.append("</table>")
    parts += [f'<figure><img src="{n}" alt="{html.escape(d)}"><figcaption>{html.escape(d)}</figcaption></figure>'
              for d, n in figures]
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>casebench agreement</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
            "td,th{border-bottom:1px solid #ddd;padding:.3em .7em}table{border-collapse:collapse}"
            "figure{display:inline-block}</style></head><body>" + "".join(parts) +
            "<p><a href='agreement.json'>agreement.json</a></p></body></html>")
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
