"""The board as data: columns (split x metric), rows with CIs and ranks, baseline rows; no I/O, no HTML.

:func:`build_board` takes the benchmark spec, the scored rows (metadata + results object) and the query
(sort column, order, filters) and returns a plain dict that the HTML template, the JSON API and the static
export all render. Columns are, per split of the benchmark (``all``, ``conflict``, ``congruent``, each
cross-corpus set), the main metric of each task (the spec's ``main_metric``, else macro-F1 / JS / CCC), plus
``text_following_rate`` on conflict splits; ``metrics=`` picks other metrics.

>>> from casebench.benchmarks import get_benchmark
>>> bench = get_benchmark("casebench-mini")
>>> e = lambda v: {"value": v, "ci_low": v - .05, "ci_high": v + .05, "n": 100}
>>> res = lambda v: {"splits": {"all": {"macro_f1": e(v)}, "conflict": {"macro_f1": e(v - .2)}}, "baselines": {}}
>>> rows = [{"id": 1, "model": "a", "results": res(.7)}, {"id": 2, "model": "b", "results": res(.9)}]
>>> b = build_board(bench, rows, sort="all.macro_f1")
>>> [(r["model"], r["rank"]) for r in b["rows"]], b["rows"][0]["cells"]["all.macro_f1"]["text"]
([('b', 1), ('a', 2)], '0.900 [0.850, 0.950]')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from casebench.leaderboard import ranking
from casebench.metrics import METRICS
from casebench.report import fmt

DEFAULT_MAIN = {"categorical": "macro_f1", "distribution": "js", "dimensional": "ccc"}
NON_METRIC_SORTS = ("model", "date", "parameters", "overall")


def column_key(split: str, metric: str) -> str:
    return f"{split}.{metric}"


def columns(bench, metrics: Sequence[str] | None = None) -> list[dict]:
    """The board's metric columns for a benchmark, in split order then task order."""
    if metrics:
        names = [m for m in metrics if m in METRICS]
    else:
        names = [t.main_metric or DEFAULT_MAIN[t.kind] for t in bench.tasks]
    out = []
    for split in bench.splits:
        ms = list(dict.fromkeys(names + (["text_following_rate"] if split.kind == "conflict" and not metrics
                                         else [])))
        for m in ms:
            out.append({"key": column_key(split.name, m), "split": split.name, "split_kind": split.kind,
                        "metric": m, "higher_is_better": METRICS[m].higher_is_better,
                        "description": METRICS[m].description})
    return out + robustness_columns(bench)


def robustness_columns(bench) -> list[dict]:
    """Columns for a spec's ``group_by`` (worst-group score, largest gap) and ``robustness`` (drop per
    condition), on the categorical main metric (UAR when that metric is not one the breakdowns compute). Each
    has a ``path`` into the results object (``results["groups"]``/``results["robustness"]``)."""
    from casebench.fairness import METRICS as GROUP_METRICS

    task = next((t for t in bench.tasks if t.kind == "categorical"), None)
    if task is None:
        return []
    m = task.main_metric or DEFAULT_MAIN["categorical"]
    m = m if m in GROUP_METRICS else "uar"
    out = []
    for col in getattr(bench, "group_by", ()):
        out.append({"key": f"worst_group.{col}.{m}", "split": "worst group", "split_kind": "fairness",
                    "metric": f"{m} ({col})", "higher_is_better": True, "path": ("groups", col, "worst_group", m),
                    "description": f"{m} of the worst-served {col} group among groups large enough to rank"})
        out.append({"key": f"group_gap.{col}.{m}", "split": "group gap", "split_kind": "fairness",
                    "metric": f"{m} ({col})", "higher_is_better": False,
                    "path": ("groups", col, "largest_gap", m, "diff"),
                    "description": f"best minus worst {col} group in {m}, with a CI"})
    for cond in getattr(bench, "robustness", ()):
        out.append({"key": f"drop.{cond}.{m}", "split": "drop from clean", "split_kind": "robustness",
                    "metric": f"{m} ({cond})", "higher_is_better": False,
                    "path": ("robustness", "conditions", cond, "drop", m),
                    "description": f"clean minus {cond} {m} on the same items, paired-bootstrap CI"})
    return out


def default_sort(cols: Sequence[dict]) -> str:
    """The first column on a conflict split (the point of the benchmark), else the first column."""
    for c in cols:
        if c["split_kind"] == "conflict":
            return c["key"]
    return cols[0]["key"] if cols else "model"


def _entry(results: dict | None, col: dict, where: str = "splits") -> dict | None:
    if not results:
        return None
    if "path" in col:
        node = results
        for key in col["path"]:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None
    return (results.get(where) or {}).get(col["split"], {}).get(col["metric"])


def _cell(entry: dict | None) -> dict:
    if not entry:
        return {"value": None, "ci_low": None, "ci_high": None, "n": None, "text": "–"}
    return {"value": entry.get("value"), "ci_low": entry.get("ci_low"), "ci_high": entry.get("ci_high"),
            "n": entry.get("n"), "text": fmt(entry)}


def mean_win_rate(rows: Sequence[dict], cols: Sequence[dict]) -> dict:
    """Each row's *mean win rate* over the metric columns (HELM, Liang et al. 2022, "Holistic Evaluation of
    Language Models"): in each column, the share of the other rows with a value there that this row beats
    (a tie counts half), averaged over the columns where the row has a value; None with no rival. One number
    across metrics of different scales and directions (JS lower is better, CCC higher).

    >>> cols = [{"key": "a", "higher_is_better": True}, {"key": "b", "higher_is_better": False}]
    >>> rows = [{"id": 1, "cells": {"a": {"value": .9}, "b": {"value": .2}}},
    ...         {"id": 2, "cells": {"a": {"value": .8}, "b": {"value": .1}}},
    ...         {"id": 3, "cells": {"a": {"value": .7}, "b": {"value": None}}}]
    >>> mean_win_rate(rows, cols)
    {1: 0.5, 2: 0.75, 3: 0.0}
    """
    out = {}
    for r in rows:
        rates = []
        for c in cols:
            v = r["cells"][c["key"]]["value"]
            if v is None:
                continue
            others = [o["cells"][c["key"]]["value"] for o in rows if o is not r]
            others = [o for o in others if o is not None]
            if not others:
                continue
            better = (lambda a, b: a > b) if c["higher_is_better"] else (lambda a, b: a < b)
            rates.append(sum(1.0 if better(v, o) else 0.5 if v == o else 0.0 for o in others) / len(others))
        out[r["id"]] = sum(rates) / len(rates) if rates else None
    return out


def build_board(bench, rows: Sequence[dict], *, sort: str | None = None, order: str | None = None,
                q: str = "", zero_shot: str = "", metrics: Sequence[str] | None = None,
                p_value: Callable | None = None, show_baselines: bool = True) -> dict:
    """Assemble the board.

    Args:
        bench: the benchmark spec (splits and tasks give the columns).
        rows: one dict per model revision: ``id``, ``model``, optional ``revision``, ``url``, ``parameters``,
            ``zero_shot``, ``user``, ``created_at``, ``description``, ``results_url``, and ``results`` (the
            results object).
        sort: a column key (``split.metric``) or ``model``/``date``/``parameters``; default
            :func:`default_sort`.
        order: ``desc`` or ``asc`` (of the values); default best first for a metric, A-Z for ``model``, newest first for
            ``date``.
        q: keep rows whose model name, revision or user contains this (case-insensitive).
        zero_shot: ``"1"`` only zero-shot rows, ``"0"`` only the others, else all.
        metrics: metric names for the columns instead of the main metrics.
        p_value: ``p_value(id_above, id_below)`` from paired tests, None where unknown.
        show_baselines: add the constant baselines as reference rows (unranked).

    Returns:
        ``{"columns", "rows", "baselines", "sort", "order", "rank_column", "pairs", "filters", "warnings"}``
        where ``pairs`` lists the neighbouring (id, id) pairs whose paired test would settle a tie, each row
        has ``overall`` (:func:`mean_win_rate` among the shown rows) and ``warnings`` gathers the distinct
        ``warnings`` of the rows' results (e.g. intervals resting on few speaker clusters).
    """
    cols = columns(bench, metrics)
    col_by_key = {c["key"]: c for c in cols}
    if sort not in col_by_key and sort not in NON_METRIC_SORTS:
        sort = default_sort(cols)
    rank_col = col_by_key.get(sort) or col_by_key.get(default_sort(cols))
    needle = (q or "").strip().lower()
    kept = []
    for r in rows:
        if needle and not any(needle in str(r.get(k) or "").lower() for k in ("model", "revision", "user")):
            continue
        if zero_shot in ("1", "0") and bool(r.get("zero_shot")) != (zero_shot == "1"):
            continue
        kept.append(r)

    out_rows = []
    for r in kept:
        out_rows.append({**{k: v for k, v in r.items() if k != "results"},
                         "cells": {c["key"]: _cell(_entry(r.get("results"), c)) for c in cols}})
    overall = mean_win_rate(out_rows, cols)
    for r in out_rows:
        r["overall"] = overall[r["id"]]
    ranked_by_id: dict = {}
    pairs: list = []
    if rank_col is not None:
        entries = [ranking.Entry(r["id"], r["cells"][rank_col["key"]]["value"], r["cells"][rank_col["key"]]["ci_low"],
                                 r["cells"][rank_col["key"]]["ci_high"]) for r in out_rows]
        ranked = ranking.rank(entries, rank_col["higher_is_better"],
                              p_value=(lambda a, b: p_value(a, b, rank_col)) if p_value else (lambda a, b: None))
        ranked_by_id = {x.entry.key: x for x in ranked}
        pairs = ranking.neighbour_pairs(ranked)
        position = {x.entry.key: i for i, x in enumerate(ranked)}
    for r in out_rows:
        x = ranked_by_id.get(r["id"])
        r["rank"] = x.rank if x else None
        r["tied"] = bool(x and x.tied)
        r["tie_basis"] = x.basis if x and x.tied else None

    if order not in ("asc", "desc"):
        order = None
    if sort in col_by_key:
        out_rows.sort(key=lambda r: position[r["id"]])  # best first
        hib = col_by_key[sort]["higher_is_better"]
        best_first = "desc" if hib else "asc"  # "asc"/"desc" name the order of the values
        order = order or best_first
        if order != best_first:
            defined = [r for r in out_rows if r["cells"][sort]["value"] is not None]
            out_rows = defined[::-1] + [r for r in out_rows if r["cells"][sort]["value"] is None]
    elif sort == "model":
        order = order or "asc"
        out_rows.sort(key=lambda r: (str(r.get("model") or "").lower(), str(r.get("revision") or "")),
                      reverse=order == "desc")
    elif sort == "overall":
        order = order or "desc"
        known = sorted((r for r in out_rows if r["overall"] is not None), key=lambda r: r["overall"],
                       reverse=order == "desc")
        out_rows = known + [r for r in out_rows if r["overall"] is None]
    elif sort == "date":
        order = order or "desc"
        out_rows.sort(key=lambda r: str(r.get("created_at") or ""), reverse=order == "desc")
    else:  # parameters
        order = order or "asc"
        known = [r for r in out_rows if r.get("parameters") is not None]
        known.sort(key=lambda r: r["parameters"], reverse=order == "desc")
        out_rows = known + [r for r in out_rows if r.get("parameters") is None]

    base_rows = []
    if show_baselines:
        base_src = next((r["results"].get("baselines") for r in kept if r.get("results")), None)
        if base_src is None:
            base_src = next((r["results"].get("baselines") for r in rows if r.get("results")), None) or {}
        for name, base in base_src.items():
            base_rows.append({"name": name, "cells": {c["key"]: _cell(_entry({"splits": base}, c)) for c in cols}})
    warnings: list[str] = []
    for r in kept:
        for w in (r.get("results") or {}).get("warnings") or []:
            text = w if isinstance(w, str) else str(w.get("message") or w) if isinstance(w, dict) else str(w)
            if text not in warnings:
                warnings.append(text)
    return {"columns": cols, "rows": out_rows, "baselines": base_rows, "sort": sort, "order": order,
            "rank_column": rank_col["key"] if rank_col else None, "pairs": pairs,
            "filters": {"q": q or "", "zero_shot": zero_shot or "", "metrics": list(metrics or [])},
            "warnings": warnings}
