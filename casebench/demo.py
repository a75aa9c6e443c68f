"""``casebench demo``: the main job on the embedded example, end to end, printing a report.

Today the demo scores the example submissions that ship with the embedded benchmark ``casebench-mini``
(one model that follows the voice, one that follows the words), compares them with paired tests, and
writes an HTML report per submission.
"""

from __future__ import annotations

from pathlib import Path

from casebench.benchmarks import get_benchmark


def run_demo(out: str | Path, *, n_boot: int = 1000, seed: int = 0, console=None) -> dict:
    """Run the demo into ``out``; returns a summary (paths and headline figures). Prints when given a console."""
    from casebench.evaluate import compare, evaluate
    from casebench.report import fmt, render, render_compare, write_report
    from casebench.results import model_info, save

    out = Path(out)
    bench = get_benchmark("casebench-mini")
    examples = sorted((bench.gold_path.parent / "examples").glob("*.jsonl"))
    summary = {"benchmark": bench.name, "out": str(out.resolve()), "models": {}}
    for path in examples:
        name = path.stem
        results = evaluate(path, bench, n_boot=n_boot, seed=seed, model=model_info(name, "demo"))
        save(results, out / "results" / f"{name}.json")
        html = write_report(results, out / "reports" / name)
        summary["models"][name] = {
            "report": str(html), "results": str(out / "results" / f"{name}.json"),
            **{f"accuracy_{s}": results["splits"][s]["accuracy"] for s in ("all", "conflict", "congruent")},
            "text_following_rate": results["splits"]["conflict"]["text_following_rate"],
        }
        if console is not None:
            console.rule(f"[bold]{name}")
            render(results, console)
    if len(examples) >= 2:
        cmp = compare(examples[0], examples[1], bench, n_boot=n_boot, seed=seed)
        summary["compare"] = {"a": examples[0].stem, "b": examples[1].stem,
                              "accuracy_conflict_diff": cmp["splits"]["conflict"]["accuracy"]["diff"],
                              "mcnemar_conflict": cmp["mcnemar"]["conflict"]}
        if console is not None:
            console.rule("[bold]paired comparison")
            render_compare(cmp, console)
    if console is not None:
        from rich.table import Table

        console.rule("[bold]summary")
        table = Table("model", "accuracy (all)", "conflict", "congruent", "follows the words on conflict",
                      title="casebench-mini, 95% CIs over speakers", title_justify="left")
        for name, m in summary["models"].items():
            table.add_row(name, fmt(m["accuracy_all"]), fmt(m["accuracy_conflict"]), fmt(m["accuracy_congruent"]),
                          fmt(m["text_following_rate"]))
        console.print(table)
        for name, m in summary["models"].items():
            console.print(f"report for {name}: {m['report']}")
    return summary
