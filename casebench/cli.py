"""The ``casebench`` command line: thin wrappers over library functions, one command per step.

Each command parses its arguments, calls one library function, and renders the result (a rich table, or
``--json`` for scripts). A :class:`casebench.errors.CasebenchError` becomes a readable message and exit
code 2; anything else is a bug. Heavy libraries are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from casebench.errors import CasebenchError, InputError

app = typer.Typer(
    name="casebench",
    help="Speech emotion recognition under acoustic-semantic conflict: build corpora, score models.\n\n"
         "Score a submission: casebench evaluate predictions.jsonl --benchmark casebench-mini",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the JSON result on stdout (for scripts).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")]
BootOpt = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for 95% CIs (0 = none).")]
UnitOpt = Annotated[str, typer.Option("--bootstrap-unit", help="Resample 'item's, 'speaker' clusters, or 'auto' "
                                                              "(speakers when the gold has speaker_id).")]


def _print_json(obj) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")


def _benchmark(benchmark: str | None, gold: Path | None, taxonomy: str | None):
    from casebench.benchmarks import adhoc_benchmark, get_benchmark
    from casebench.errors import ConfigError

    if gold is not None:
        if not taxonomy:
            raise ConfigError("--gold needs --taxonomy (e.g. --taxonomy ekman7): the label list is never "
                              "inferred from the predictions")
        return adhoc_benchmark(gold, taxonomy)
    if not benchmark:
        raise ConfigError("say what to score against: --benchmark NAME (see `casebench benchmarks`) or "
                          "--gold TABLE --taxonomy NAME")
    return get_benchmark(benchmark)


@app.command()
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions file: JSON Lines (optionally gzip), one object per clip.")],
    benchmark: Annotated[Optional[str], typer.Option("--benchmark", "-b", help="Built-in benchmark name or spec YAML path.")] = None,
    gold: Annotated[Optional[Path], typer.Option("--gold", help="Score against your own gold table (CSV/Parquet) instead.")] = None,
    taxonomy: Annotated[Optional[str], typer.Option("--taxonomy", help="Taxonomy of --gold (e.g. ekman7).")] = None,
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    unit: UnitOpt = "auto",
    renormalize: Annotated[bool, typer.Option("--renormalize", help="Rescale probs/distributions that do not sum to 1.")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Score even when items are missing; they count as wrong.")] = False,
    model_name: Annotated[Optional[str], typer.Option("--model-name", help="Model name stored in the results.")] = None,
    model_revision: Annotated[Optional[str], typer.Option("--model-revision", help="Model revision (commit, tag).")] = None,
    trained_on: Annotated[Optional[str], typer.Option("--trained-on", help="Comma-separated training corpora (sets the zero-shot flag).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the results JSON here.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write an HTML report with plots to this folder.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a predictions file: every split and metric with a 95% bootstrap CI, beside constant baselines."""
    from casebench.evaluate import evaluate as run
    from casebench.results import model_info, save

    bench = _benchmark(benchmark, gold, taxonomy)
    model = model_info(model_name, model_revision, trained_on=(trained_on or "").split(","))
    results = run(predictions, bench, n_boot=n_boot, seed=seed, unit=unit, renormalize=renormalize,
                  allow_missing=allow_missing, model=model)
    if out:
        save(results, out)
    if report:
        from casebench.report import write_report

        html = write_report(results, report)
        if not as_json:
            err_console.print(f"report: {html}")
    if as_json:
        _print_json(results)
    else:
        from casebench.report import render

        render(results, console)
        if out:
            console.print(f"results: {out}")


@app.command()
def compare(
    predictions_a: Annotated[Path, typer.Argument(help="First predictions file (A).")],
    predictions_b: Annotated[Path, typer.Argument(help="Second predictions file (B), on the same items.")],
    benchmark: Annotated[Optional[str], typer.Option("--benchmark", "-b", help="Built-in benchmark name or spec path.")] = None,
    gold: Annotated[Optional[Path], typer.Option("--gold", help="Your own gold table instead of a benchmark.")] = None,
    taxonomy: Annotated[Optional[str], typer.Option("--taxonomy", help="Taxonomy of --gold.")] = None,
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    unit: UnitOpt = "auto",
    renormalize: Annotated[bool, typer.Option("--renormalize", help="Rescale probs that do not sum to 1.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare two submissions on the same items: paired bootstrap A − B with CI and p-value, McNemar's test."""
    from casebench.evaluate import compare as run

    result = run(predictions_a, predictions_b, _benchmark(benchmark, gold, taxonomy), n_boot=n_boot, seed=seed,
                 unit=unit, renormalize=renormalize)
    if as_json:
        _print_json(result)
    else:
        from casebench.report import render_compare

        render_compare(result, console)


@app.command()
def benchmarks(as_json: JsonOpt = False) -> None:
    """List the built-in benchmarks."""
    from casebench.benchmarks import get_benchmark, list_benchmarks

    rows = []
    for name in list_benchmarks():
        b = get_benchmark(name)
        rows.append({"name": b.name, "version": b.version, "taxonomy": b.taxonomy.name,
                     "tasks": [t.kind for t in b.tasks], "splits": [s.name for s in b.splits],
                     "description": b.description})
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "version", "taxonomy", "tasks", "splits", "description", show_lines=True)
    for r in rows:
        table.add_row(r["name"], r["version"], r["taxonomy"], ", ".join(r["tasks"]), ", ".join(r["splits"]),
                      r["description"])
    console.print(table)


@app.command()
def taxonomies(as_json: JsonOpt = False) -> None:
    """List the shipped taxonomies with their labels and mappings."""
    from casebench.taxonomy import get_taxonomy, list_taxonomies

    rows = [{"name": t.name, "labels": list(t.labels), "maps_to": sorted(t.mappings)}
            for t in map(get_taxonomy, list_taxonomies())]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        console.print(f"[bold]{r['name']}[/] ({len(r['labels'])}): {', '.join(r['labels'])}  "
                      f"→ maps to {', '.join(r['maps_to'])}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo's outputs.")] = Path("casebench-demo"),
    n_boot: BootOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Run the main job on the embedded example: score the shipped example submissions of casebench-mini,
    compare them, and write an HTML report."""
    from casebench.demo import run_demo

    summary = run_demo(out, n_boot=n_boot, console=None if as_json else console)
    if as_json:
        _print_json(summary)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the Typer app; CasebenchError -> message + exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except CasebenchError as e:
        if isinstance(e, InputError) and "--json" in (argv if argv is not None else sys.argv):
            _print_json(e.to_dict())
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as e:  # click's usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
