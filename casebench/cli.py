"""The ``casebench`` command line: thin wrappers over library functions, one command per step.

Each command parses its arguments, calls one library function, and renders the result (a rich table, or
``--json`` for scripts). A :class:`casebench.errors.CasebenchError` becomes a readable message and exit
code 2; anything else is a bug. Heavy libraries are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from rich.console import Console

from casebench.errors import CasebenchError


class _WorkflowGroup(typer.core.TyperGroup):
    """Lists the commands in workflow order (:data:`HELP_PANELS`), not in the order they are defined."""

    def list_commands(self, ctx) -> list[str]:
        names = list(self.commands)
        order = {name: i for i, name in enumerate(n for _, cmds in HELP_PANELS for n, _ in cmds)}
        return sorted(names, key=lambda n: order.get(n, len(order)))


app = typer.Typer(
    name="casebench",
    help="Speech emotion recognition under acoustic-semantic conflict: build corpora, score models.\n\n"
         "Score a submission: casebench evaluate predictions.jsonl --benchmark casebench-mini",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=_WorkflowGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# No emoji codes: a message, path or label holding ':name:' (probe:banana: ...) is printed as written.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def _print_version(value: bool) -> None:
    if value:
        from casebench import __version__

        console.print(f"casebench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", "-V", is_eager=True, callback=_print_version, help="Print casebench's version and exit.")
        ] = False) -> None:
    """Options before the command name (``casebench --version``)."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the JSON result on stdout (for scripts).")]
MAX_SEED = 2**32 - 1  # every random generator casebench uses accepts it (numpy's legacy ones stop there)


def _check_bootstrap(value: int | None) -> int | None:
    from casebench.stats import MAX_BOOTSTRAP

    if value is not None and value > MAX_BOOTSTRAP:
        raise typer.BadParameter(f"{value} resamples is above the limit of {MAX_BOOTSTRAP} (time and memory grow "
                                 "with it; 1000 to 10000 give stable 95% CIs)")
    return value


def _check_unit(value: str | None) -> str | None:
    from casebench.errors import did_you_mean
    from casebench.stats import BOOTSTRAP_UNITS

    if value is not None and value not in BOOTSTRAP_UNITS:
        hint = did_you_mean(value, BOOTSTRAP_UNITS)
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(BOOTSTRAP_UNITS)}"
                                 + (f" ({hint})" if hint else ""))
    return value


def seed_option(help: str):
    """``--seed``: 0 to 2**32 - 1."""
    return typer.Option("--seed", min=0, max=MAX_SEED, help=help)


def bootstrap_option(help: str):
    """``--bootstrap``: 0 to :data:`casebench.stats.MAX_BOOTSTRAP` resamples."""
    return typer.Option("--bootstrap", min=0, callback=_check_bootstrap, help=help)


SeedOpt = Annotated[int, seed_option("Seed of the bootstrap resampling.")]
BootOpt = Annotated[int, bootstrap_option("Bootstrap resamples for 95% CIs (0 = none; at most 100000).")]
UnitOpt = Annotated[str, typer.Option("--bootstrap-unit", callback=_check_unit,
                                      help="auto (speaker clusters when the gold has speaker_id, else items), "
                                           "item or speaker.")]


def _print_json(obj) -> None:
    import orjson

    opts = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS  # numpy scalars, np.str_ keys
    sys.stdout.write(orjson.dumps(obj, option=opts).decode() + "\n")


def _print_stale(problems: list[str] | None) -> None:
    """Stale inputs used anyway (--allow-stale): on stderr, so --json output stays one document."""
    from rich.markup import escape

    for p in problems or []:
        err_console.print(f"[yellow]warning: stale (--allow-stale):[/] {escape(p)}", highlight=False,
                          soft_wrap=True)


def _benchmark(benchmark: str | None, gold: Path | None, taxonomy: str | None):
    from casebench.benchmarks import adhoc_benchmark, get_benchmark
    from casebench.errors import ConfigError

    if gold is not None and benchmark:
        raise ConfigError(f"--benchmark {benchmark} and --gold {gold} both say what to score against: give one")
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
    predictions: Annotated[Path, typer.Argument(
        help="Predictions file: JSON Lines (optionally gzip), one object per clip.")],
    benchmark: Annotated[str | None, typer.Option(
        "--benchmark", "-b", help="Built-in benchmark name or spec YAML path.")] = None,
    gold: Annotated[Path | None, typer.Option(
        "--gold", help="Score against your own gold table (CSV/Parquet) instead.")] = None,
    taxonomy: Annotated[str | None, typer.Option("--taxonomy", help="Taxonomy of --gold (e.g. ekman7).")] = None,
    train: Annotated[Path | None, typer.Option(
        "--train", help="Train table (same columns as the gold) the constant baseline's prior comes from; "
                        "default the spec's train:, else the test labels (named 'test prior (oracle)').")] = None,
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    unit: UnitOpt = "auto",
    renormalize: Annotated[bool, typer.Option(
        "--renormalize", help="Rescale probs/distributions that do not sum to 1.")] = False,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Score even when items are missing; they count as wrong.")] = False,
    model_name: Annotated[str | None, typer.Option("--model-name", help="Model name stored in the results.")] = None,
    model_revision: Annotated[str | None, typer.Option(
        "--model-revision", help="Model revision (commit, tag).")] = None,
    trained_on: Annotated[str | None, typer.Option(
        "--trained-on", help="Comma-separated training corpora (sets the zero-shot flag).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the results JSON here.")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write an HTML report with plots to this folder.")] = None,
    group_by: Annotated[str | None, typer.Option(
        "--group-by", help="Per-group scores, worst group and gaps by these gold columns (comma-separated), "
                           "e.g. gender,language.")] = None,
    min_group_items: Annotated[int | None, typer.Option(
        "--min-group-items", min=1, help="Smallest group that is ranked with --group-by (default 30).")] = None,
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Score although the gold/spec was built from workspace tables that changed since "
                              "(printed and recorded in the results).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score a predictions file: every split and metric with a 95% bootstrap CI, beside constant baselines."""
    from casebench.evaluate import evaluate as run
    from casebench.results import model_info, save

    if out is not None and out.exists() and predictions.exists() and out.samefile(predictions):
        from casebench.errors import ConfigError

        raise ConfigError(f"--out {out} is the predictions file: the results would overwrite it; give --out "
                          "another file (e.g. results.json)")
    bench = _benchmark(benchmark, gold, taxonomy)
    if train is not None:
        import dataclasses

        bench = dataclasses.replace(bench, train_path=train.resolve())
    model = model_info(model_name, model_revision, trained_on=(trained_on or "").split(","))
    results = run(predictions, bench, n_boot=n_boot, seed=seed, unit=unit, renormalize=renormalize,
                  allow_missing=allow_missing, model=model, group_by=_split_list(group_by),
                  min_group_items=min_group_items, allow_stale=allow_stale)
    _print_stale((results.get("staleness") or {}).get("problems"))
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
        _render_groups_and_robustness(results)
        if out:
            console.print(f"results: {out}")


def _render_groups_and_robustness(results: dict) -> None:
    """Rich tables for ``results["groups"]`` and ``results["robustness"]`` (when present)."""
    from rich.table import Table

    def fmt(e: dict | None) -> str:
        if not e or e.get("value") is None:
            return "-"
        ci = "" if e.get("ci_low") is None else f" [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
        return f"{e['value']:.3f}{ci}"

    from casebench import scoring

    rough_note = "* rough interval: fewer than 10 clusters or 100 distinct resamples (see the warnings)"
    for column, g in (results.get("groups") or {}).items():
        table = Table("group", "n", "speakers", "UAR", "accuracy", "ranked", title=f"by {column}",
                      title_justify="left")
        rough = False
        for name, v in g["groups"].items():
            mark = "*" if scoring.thin(scoring.entries_of([v["metrics"], v["recall"]])) else ""
            rough = rough or bool(mark)
            table.add_row(name + mark, str(v["n"]), "-" if v["n_speakers"] is None else str(v["n_speakers"]),
                          fmt(v["metrics"]["uar"]), fmt(v["metrics"]["accuracy"]),
                          "yes" if v["ranked"] else f"no ({v['reason']})")
        table.caption = rough_note if rough else None
        console.print(table)
        if "uar" in g["largest_gap"]:
            gap = g["largest_gap"]["uar"]
            console.print(f"worst group (UAR): {g['worst_group']['uar']['group']}  ·  largest gap "
                          f"{gap['best']} - {gap['worst']}: {fmt(gap['diff'])}", highlight=False)
    rob = results.get("robustness")
    if rob:
        table = Table("condition", "pairs", "UAR clean", "UAR degraded", "drop (paired CI)", title="robustness",
                      title_justify="left")
        rough = False
        for name, c in rob["conditions"].items():
            if "drop" in c:
                mark = "*" if scoring.thin(scoring.entries_of([c["clean"], c["degraded"], c["drop"]])) else ""
                rough = rough or bool(mark)
                table.add_row(name + mark, str(c["n_pairs"]), fmt(c["clean"]["uar"]), fmt(c["degraded"]["uar"]),
                              fmt(c["drop"]["uar"]))
        table.caption = rough_note if rough else None
        console.print(table)
        for noise, curve in rob["snr_curves"].items():
            if curve["auc"]["uar"] is not None:
                console.print(f"{noise} noise: UAR over SNR {curve['snr_db'][0]:g}..{curve['snr_db'][-1]:g} dB, "
                              f"area (mean) {curve['auc']['uar']:.3f}", highlight=False)


@app.command()
def compare(
    predictions_a: Annotated[Path, typer.Argument(help="First predictions file (A).")],
    predictions_b: Annotated[Path, typer.Argument(help="Second predictions file (B), on the same items.")],
    benchmark: Annotated[str | None, typer.Option(
        "--benchmark", "-b", help="Built-in benchmark name or spec path.")] = None,
    gold: Annotated[Path | None, typer.Option("--gold", help="Your own gold table instead of a benchmark.")] = None,
    taxonomy: Annotated[str | None, typer.Option("--taxonomy", help="Taxonomy of --gold.")] = None,
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


benchmarks_app = typer.Typer(help="The built-in benchmarks: list them, or show one's splits, ids and a predictions "
                                   "template.", invoke_without_command=True)
app.add_typer(benchmarks_app, name="benchmarks")


@benchmarks_app.callback()
def benchmarks(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the built-in benchmarks (casebench benchmarks show NAME for one of them)."""
    if ctx.invoked_subcommand is not None:
        return
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
    from rich.markup import escape
    from rich.table import Table

    table = Table("name", "version", "taxonomy", "tasks", "splits")
    table.columns[0].no_wrap = True  # a name is what the reader types next: never cut
    for r in rows:
        table.add_row(r["name"], r["version"], r["taxonomy"], ", ".join(r["tasks"]), ", ".join(r["splits"]))
    console.print(table)
    for r in rows:  # the description's first sentence as a paragraph (a table column wraps it word by word)
        first = r["description"].split(". ")[0].rstrip(".")
        console.print(f"[bold]{escape(r['name'])}[/]: {escape(first)}.", highlight=False)
    console.print("more on one: casebench benchmarks show NAME [--ids] [--template preds.jsonl]")


@benchmarks_app.command("show")
def benchmarks_show(
    name: Annotated[str, typer.Argument(help="Built-in benchmark name or spec YAML path.")],
    ids: Annotated[bool, typer.Option("--ids", help="Print the item ids, one per line (nothing else).")] = False,
    template: Annotated[Path | None, typer.Option(
        "--template", help="Write a predictions file to fill in: one line per item, the tasks' keys set to null.")
    ] = None,
    task: Annotated[list[str] | None, typer.Option(
        "--task", help="Only this task kind in the template (categorical, distribution, dimensional; repeatable).")
    ] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="Only the items of this split (not conflict/congruent: they come from the labels).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What a benchmark is: its description, tasks and the keys a predictions line needs, splits with item and
    speaker counts, where the audio is, example files; its ids (--ids) and a template to fill in (--template)."""
    from casebench.benchmarks import benchmark_ids, describe, get_benchmark, prediction_template

    bench = get_benchmark(name)
    if task and template is None:
        from casebench.errors import ConfigError

        raise ConfigError("--task chooses the keys of the template: give it with --template FILE")
    if template is not None:
        from casebench.workspace import atomic_write_bytes

        data = prediction_template(bench, kinds=task, split=split)
        if template.is_file() and template.stat().st_size and template.read_bytes() != data:
            from casebench.errors import ConfigError  # a filled-in template, or another file: never clobbered

            raise ConfigError(f"--template {template} exists and is not this template (filled in already?); give "
                              "another file name, or delete it first")
        atomic_write_bytes(template, data)
        n_lines = data.count(b"\n")
        err_console.print(f"template: {template} ({n_lines} line(s); fill in the null values, then: "
                          f"casebench evaluate {template} -b {name})", highlight=False, soft_wrap=True)
    if ids:
        sys.stdout.write("\n".join(benchmark_ids(bench, split)) + "\n")
        return
    info = describe(bench)
    if split is not None:
        info["ids"] = benchmark_ids(bench, split)
    if as_json:
        _print_json(info)
        return
    if template is not None:
        return
    from rich.table import Table

    console.print(f"[bold]{info['name']}[/] v{info['version']}  ·  {info['n_items']} items"
                  + (f", {info['n_speakers']} speakers" if info["n_speakers"] else "")
                  + f"  ·  taxonomy {info['taxonomy']}: {', '.join(info['labels'])}", highlight=False)
    console.print(info["description"], highlight=False)
    tasks = Table("task", "kind", "predictions keys", "main metric", title="tasks", title_justify="left")
    for t in info["tasks"]:
        tasks.add_row(t["name"], t["kind"], ", ".join(t["keys"]), t["main_metric"] or "-")
    console.print(tasks)
    splits = Table("split", "kind", "items", "speakers", title="splits", title_justify="left")
    for s in info["splits"]:
        splits.add_row(s["name"], s["kind"] + (f" ({s['selects']})" if s["selects"] else ""), str(s["n_items"]),
                       "-" if s["n_speakers"] is None else str(s["n_speakers"]))
    console.print(splits)
    audio = info["audio"]
    console.print("audio: " + ("none (labels only: score predictions made elsewhere)" if audio is None else
                               ", ".join(f"{k} {v}" for k, v in audio.items())), highlight=False)
    for label, value in (("corpora", ", ".join(info["corpora"])), ("train table", info["train"]),
                         ("licence", info["licence"]), ("spec", info["spec"])):
        if value:
            console.print(f"{label}: {value}", highlight=False, soft_wrap=True)
    for path in info["examples"]:
        console.print(f"example predictions: {path}", highlight=False, soft_wrap=True)
    console.print(f"next: casebench benchmarks show {name} --template preds.jsonl   (fill it in)   then   "
                  f"casebench evaluate preds.jsonl -b {name}", highlight=False, soft_wrap=True)


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
    label_studio: Annotated[bool, typer.Option(
        "--label-studio/--no-label-studio",
        help="Post the simulated raters' annotations to a real local Label Studio and pull them back, or write "
             "them straight into the annotations table.")] = True,
    raters: Annotated[int, typer.Option("--raters", min=2, help="Simulated raters per clip.")] = 5,
    per_cell: Annotated[int, typer.Option("--per-cell", min=1, help="Clips per acoustic x semantic cell.")] = 2,
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole flow on an embedded corpus: synthesize → transcribe → annotate → agreement → aggregate →
    split → audit → publish → baselines → evaluate → leaderboard export, printing a report."""
    from casebench.demo import run_demo

    summary = run_demo(out, n_boot=n_boot, seed=seed, label_studio=label_studio, n_raters=raters,
                       per_cell=per_cell, console=None if as_json else console)
    if as_json:
        _print_json(summary)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new workspace (created if missing).")],
    name: Annotated[str | None, typer.Option("--name", help="Corpus name (default: folder name).")] = None,
    taxonomy: Annotated[str, typer.Option("--taxonomy", help="Label taxonomy, e.g. ekman7.")] = "ekman7",
    version: Annotated[str, typer.Option("--version", help="Corpus version.")] = "0.1.0",
    licence: Annotated[str | None, typer.Option("--licence", help="Corpus licence, e.g. CC-BY-4.0.")] = None,
    language: Annotated[list[str] | None, typer.Option(
        "--language", "-l", help="Language code; repeat for several (default en).")] = None,
    exist_ok: Annotated[bool, typer.Option(
        "--exist-ok", help="Open the workspace if it exists with this name and taxonomy.")] = False,
    labels: Annotated[str, typer.Option(
        "--labels", help="Emotion ratings: single (one label per rating) or mixed (several, each weighted; "
                         "label distributions as in EM2LDL).")] = "single",
    raters: Annotated[int, typer.Option("--raters", min=1, help="Raters per clip.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: casebench.toml (name, version, licence, languages, taxonomy, annotation schema),
    audio/, tables/ and reports/."""
    from casebench.annotation_schema import annotation_settings
    from casebench.workspace import Workspace

    ws = Workspace.create(directory, name or directory.expanduser().resolve().name, taxonomy=taxonomy,
                          version=version, licence=licence, languages=language or ["en"], exist_ok=exist_ok,
                          annotation=annotation_settings(labels, raters))
    result = {"workspace": str(ws.root), "config": ws.config}
    if as_json:
        _print_json(result)
        return
    p = ws.config["project"]
    console.print(f"workspace [bold]{p['name']}[/] v{p['version']} at {ws.root}  ·  "
                  f"taxonomy {p['taxonomy']}  ·  "
                  f"languages {', '.join(p['languages'])}  ·  licence {p.get('licence') or '(unset)'}")
    a = ws.config["annotation"]
    mode = "mixed (several weighted emotions per rating)" if a.get("mixed_emotions") else "single"
    console.print(f"annotation: {mode} labels, {a.get('raters_per_clip')} raters per clip")
    console.print(f"next: casebench synth {directory}   or   casebench collect {directory} RECORDINGS/")


def _split_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command()
def synth(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder (made with `casebench init`).")],
    backend: Annotated[str, typer.Option(
        "--backend", help="TTS backend: espeak-ng (default; needs only the Debian package), command "
                          "(--tts-cmd) or openai (--tts-url, --tts-model).")] = "espeak-ng",
    voices: Annotated[str | None, typer.Option(
        "--voices", help="Comma-separated voices, each a speaker (espeak-ng: en-us+m3,en-us+f3; with "
                         "--reference-from: speaker ids of that corpus, e.g. 1001,1002).")] = None,
    emotions: Annotated[str | None, typer.Option(
        "--emotions", help="Comma-separated emotions to cross (default: the whole taxonomy).")] = None,
    per_cell: Annotated[int, typer.Option("--per-cell", min=0, help="Clips per (acoustic, semantic) cell.")
                        ] = 2,
    congruent: Annotated[int | None, typer.Option(
        "--congruent", min=0, help="Clips per congruent cell (default --per-cell; 0 = none).")] = None,
    counts: Annotated[str | None, typer.Option(
        "--counts", help="Per-cell overrides 'acoustic/semantic=n,...', e.g. 'angry/sad=4'.")] = None,
    texts: Annotated[Path | None, typer.Option(
        "--texts", help="CSV of sentences (columns text, semantic_emotion); default: built-in bank.")] = None,
    text_llm: Annotated[str | None, typer.Option(
        "--text-llm", help="OpenAI-compatible base URL that writes the sentences (http://host:8000/v1); "
                           "key from CASEBENCH_LLM_API_KEY or OPENAI_API_KEY.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Chat model for --text-llm.")] = None,
    tts_cmd: Annotated[str | None, typer.Option(
        "--tts-cmd", help="Command template for --backend command: {text} {emotion} {voice} {out}.")] = None,
    tts_url: Annotated[str | None, typer.Option(
        "--tts-url", help="Base URL of an OpenAI-compatible /v1/audio/speech server (--backend openai); "
                          "key from CASEBENCH_TTS_API_KEY or OPENAI_API_KEY.")] = None,
    tts_model: Annotated[str | None, typer.Option("--tts-model", help="Speech model (openai).")] = None,
    tts_body: Annotated[str | None, typer.Option(
        "--tts-body", help="openai: extra JSON fields per request; values may use {ref_audio_b64} {ref_audio} "
                           "{ref_text} {emotion} {voice} {language}.")] = None,
    reference_from: Annotated[Path | None, typer.Option(
        "--reference-from", help="Imported acted corpus (workspace) whose takes prompt a reference-based TTS: "
                                 "{ref_audio} {ref_text} in --tts-cmd. The voices are its speakers.")] = None,
    reference_split: Annotated[str | None, typer.Option(
        "--reference-split", help="Take references only from this split of --reference-from.")] = None,
    reference_speakers: Annotated[int | None, typer.Option(
        "--reference-speakers", min=1, help="How many reference speakers (most emotions covered first).")] = None,
    seed: Annotated[int, seed_option("Seed of the plan and of the LLM requests.")] = 0,
    lufs: Annotated[float, typer.Option("--lufs", help="Loudness target (EBU R128 LUFS).")] = -23.0,
    audio_format: Annotated[str, typer.Option("--format", help="Audio format: flac or wav.")] = "flac",
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Clips per journal part (the most a kill makes redo).")] = 8,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Synthesize a conflict set: sentences whose words carry one emotion, spoken with another (plus congruent
    controls), into the workspace's clips table. Resumable: re-run after an interruption to finish."""
    from casebench.synth import synth as run
    from casebench.synth.design import parse_cell_counts

    options = {"command": {"command": tts_cmd}, "openai": {"url": tts_url, "model": tts_model, "body": tts_body}}
    options = options.get(backend, {})
    summary = run(workspace, backend=backend, backend_options=options, voices=_split_list(voices),
                  reference_from=reference_from, reference_split=reference_split,
                  reference_speakers=reference_speakers,
                  emotions=_split_list(emotions), per_cell=per_cell, congruent=congruent,
                  counts=parse_cell_counts(counts), texts=texts, text_llm=text_llm, llm_model=model,
                  seed=seed,
                  target_lufs=lufs, audio_format=audio_format, batch_size=batch_size,
                  progress=not (no_progress or as_json))
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    table = Table("voice \\ words", *summary["emotions"], title=f"clips per cell ({summary['backend']}, "
                  f"{len(summary['voices'])} voice(s))", title_justify="left")
    for a, row in summary["matrix"].items():
        table.add_row(a, *(f"[bold]{n}[/]" if a == s else str(n) for s, n in row.items()))
    console.print(table)
    console.print(f"{summary['n_in_table']} of {summary['n_planned']} clips in {summary['clips_table']} "
                  f"({summary['n_made']} made now, {summary['n_done_before']} already done; "
                  f"{summary['n_conflict']} conflict, {summary['n_congruent']} congruent)")
    console.print(f"report: {summary['report']}")
    ref = summary.get("reference")
    if ref:
        used = ref.get("clips") or {}
        n_takes = len({c["reference_clip"] for c in used.values()})
        n_speakers = len({c["speaker"] for c in used.values()})
        console.print(f"references: {n_takes} take(s) of {n_speakers} speaker(s) voice these clips (the reference "
                      f"corpus {ref['name']} at {ref['workspace']} has {ref['counts'].get('references')} usable "
                      "takes); each clip's reference id is in meta_reference_clip")
    if summary.get("n_missing"):
        cells = sorted({m["cell"] for m in summary["missing"]})
        console.print(f"[yellow]missing:[/] {summary['n_missing']} planned clip(s) in {len(cells)} cell(s) no "
                      f"reference speaker can voice ({', '.join(cells[:8])}{', ...' if len(cells) > 8 else ''}); "
                      "reasons in the report")
    for note in summary["texts"]["notes"] + ((ref or {}).get("notes") or []):
        console.print(f"[yellow]note:[/] {note}")


@app.command()
def collect(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder (made with `casebench init`).")],
    source: Annotated[Path, typer.Argument(
        help="Folder of recordings (wav, flac, mp3, ogg, m4a) or a CSV/JSONL manifest with a path column "
             "(and speaker, gender, language, any extra columns).")],
    vad: Annotated[bool, typer.Option(
        "--vad", help="Cut recordings into utterances with the Silero VAD of faster-whisper.")] = False,
    min_dur: Annotated[float, typer.Option("--min-dur", help="Drop clips shorter than this (s).")] = 0.5,
    max_dur: Annotated[float, typer.Option(
        "--max-dur", help="Drop clips longer than this (s); with --vad, the longest segment.")] = 30.0,
    max_clipping: Annotated[float, typer.Option(
        "--max-clipping", help="Drop clips with more than this share of samples at full scale.")] = 0.001,
    max_silence: Annotated[float, typer.Option(
        "--max-silence", help="Drop clips with more than this share of silent frames.")] = 0.8,
    min_snr: Annotated[float, typer.Option("--min-snr", help="Drop clips with SNR estimate under this (dB).")
                       ] = 5.0,
    lufs: Annotated[float, typer.Option("--lufs", help="Loudness target (EBU R128 LUFS).")] = -23.0,
    speaker: Annotated[str | None, typer.Option("--speaker", help="Speaker id where the manifest has none.")
                       ] = None,
    speaker_from_folder: Annotated[bool, typer.Option(
        "--speaker-from-folder", help="Speaker id = the first sub-folder of SOURCE.")] = False,
    gender: Annotated[str | None, typer.Option("--gender", help="Gender where the manifest has none.")
                      ] = None,
    language: Annotated[str | None, typer.Option(
        "--language", help="Language where the manifest has none (default: the workspace's first).")] = None,
    audio_format: Annotated[str, typer.Option("--format", help="Audio format: flac or wav.")] = "flac",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest recordings: decode, 16 kHz mono, loudness-normalise, optional VAD, quality checks. Bad files are
    skipped with their reason; a QC report (JSON + HTML) goes to reports/. Resumable."""
    from casebench.collect import collect as run

    summary = run(workspace, source, vad=vad, min_dur=min_dur, max_dur=max_dur, max_clipping=max_clipping,
                  max_silence=max_silence, min_snr_db=min_snr, target_lufs=lufs, audio_format=audio_format,
                  speaker=speaker, gender=gender, language=language, speaker_from_folder=speaker_from_folder,
                  progress=not (no_progress or as_json))
    if as_json:
        _print_json(summary)
        return
    console.print(f"{summary['n_files']} file(s): [green]{summary['n_kept']} clip(s) kept[/] "
                  f"({summary['kept_duration_s']:.1f} s), [red]{summary['n_dropped']} dropped[/], "
                  f"{summary['n_ignored']} ignored (not audio)")
    if summary["dropped_by_reason"]:
        console.print("dropped, by reason (a clip can fail several checks):")
    for reason, n in summary["dropped_by_reason"].items():
        console.print(f"  {reason}: {n}")
    console.print(f"QC report: {summary['report_html']}")


@app.command()
def transcribe(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with a clips table.")],
    backend: Annotated[str, typer.Option(
        "--backend", help="ASR backend: faster-whisper (default, offline) or openai-whisper (needs "
                          "`pip install openai-whisper torch`).")] = "faster-whisper",
    model: Annotated[str | None, typer.Option(
        "--model", help="faster-whisper: a bundled model, tiny.en (default, English only) or base "
                        "(multilingual, detects each clip's language), or a local CTranslate2 model folder; "
                        "openai-whisper: a cached model name or a checkpoint file.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="local (this process) or ray (Ray Data; RAY_ADDRESS or --ray-address, else a "
                         "local Ray).")] = "local",
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Windows (of up to 28 s) decoded together (and per journal part).")] = 4,
    language: Annotated[str | None, typer.Option(
        "--language", help="Language of every clip (default: clips.language, else detected).")] = None,
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, help="Beam size of the decoder.")] = 5,
    no_pack: Annotated[bool, typer.Option(
        "--no-pack", help="Decode every clip alone (slower; packing is on by default).")] = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="CPU threads of the model (default: min(4, CPUs)); faster-whisper runs "
                          "one one-thread model copy per thread.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help="Ray: number of actors (default: cluster CPUs / --num-cpus).")] = None,
    num_cpus: Annotated[float | None, typer.Option(
        "--num-cpus", help="Ray: CPUs per actor (default 1).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray: cluster address, e.g. ray://head:10001 (default: RAY_ADDRESS).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Transcribe at most this many pending clips in this run.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Transcribe the clips with Whisper: text, language, word timestamps, confidences, and WER against the
    prompt of synthesized clips, into tables/transcripts.parquet. Short clips are packed into windows of up to 28 s.
    Resumable: re-run after an interruption to finish."""
    from casebench.transcribe import transcribe as run

    summary = run(workspace, backend=backend, model=model, engine=engine, batch_size=batch_size,
                  language=language, beam_size=beam_size, packing=not no_pack, cpu_threads=threads,
                  concurrency=concurrency, num_cpus=num_cpus, ray_address=ray_address, limit=limit,
                  progress=not (no_progress or as_json))
    if as_json:
        _print_json(summary)
        return
    modes = ", ".join(f"{n} {m}" for m, n in summary["modes"].items()) or "none"
    console.print(f"{summary['n_transcribed']} clip(s) transcribed now ({modes}; {summary['n_windows']} "
                  f"window(s)), {summary['n_already_done']} already done, {summary['n_pending']} pending, "
                  f"[red]{summary['n_unreadable']} unreadable[/]")
    if summary["clips_per_s"]:
        console.print(f"{summary['clips_per_s']:.2f} clips/s, {summary['realtime_factor']:.1f}x real time "
                      f"({summary['elapsed_s']:.1f} s)")
    for reason, n in summary["fallback_reasons"].items():
        console.print(f"  decoded again alone: {n} ({reason})")
    if summary["languages_detected"]:
        console.print(f"languages detected: {summary['languages_detected']}; "
                      f"{summary['n_code_switching']} clip(s) flagged code-switching")
    if summary["n_failed"]:
        console.print(f"[yellow]{summary['n_failed']} transcription(s) failed (text null, reason in "
                      f"transcripts.failure): {summary['failure_reasons']}[/]")
    for note in summary["notes"]:
        console.print(f"[bold red]{note}[/]" if note.startswith("WARNING") else f"note: {note}", highlight=False)
    for p in summary["unreadable"][:20]:
        console.print(f"  [red]unreadable:[/] {p.get('id')}: {p.get('found')}", highlight=False)
    w = summary["corpus_wer"]
    if w["wer"] is not None:
        console.print(f"corpus WER against the prompts: [bold]{100 * w['wer']:.2f}%[/] over {w['n_clips']} "
                      f"clip(s), {w['n_ref_words']} words (S {w['substitutions']}, D {w['deletions']}, "
                      f"I {w['insertions']})")
    console.print(f"model: {summary['model']}  ·  config {summary['config_hash']}")
    console.print(f"report: {summary['report']}")


def _model_kinds_help() -> str:
    from casebench.predict import KINDS

    return ", ".join(f"{k}:" for k in KINDS)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(
        help=f"KIND:SPEC, kinds: {_model_kinds_help()}; e.g. hf:./my-model, probe:whisper-tiny.en, "
             "'command:python my_model.py' (see docs/predict.md).")],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Built-in benchmark name or spec YAML path.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions file (JSON Lines); ids already in it are "
                                                          "skipped, so a re-run resumes.")],
    split: Annotated[str | None, typer.Option(
        "--split", help="Benchmark split (conflict, train...), or the workspace/dataset split (dataset default: "
                        "test).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Clips per model call and per append.")] = 16,
    engine: Annotated[str, typer.Option("--engine", help="local (this process) or ray (Ray Data actors; "
                                                         "RAY_ADDRESS or --ray-address, else a local Ray).")] = "local",
    label_map: Annotated[Path | None, typer.Option(
        "--label-map", help="YAML/JSON: model label -> benchmark taxonomy label (or null to drop it).")] = None,
    train: Annotated[Path | None, typer.Option(
        "--train", help="Probes: fit on this workspace (default: the benchmark's train split).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", help="Predict on this workspace's clips.")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="Predict on a published dataset: a folder from `casebench publish`, or a Hub id.")] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Revision of a Hub --dataset.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help="Ray: model copies (actors) (default: cluster CPUs / --num-cpus).")] = None,
    num_cpus: Annotated[float | None, typer.Option("--num-cpus", help="Ray: CPUs per actor (default 1).")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray: cluster address.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Predict at most this many clips now.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a model on a benchmark's audio and write predictions that evaluate and submit accept, with the
    model's metadata beside them (<out>.meta.json). Resumable: re-run the same command after a kill."""
    from casebench.predict import predict as run

    report = run(model, benchmark, out, split=split, batch_size=batch_size, engine=engine, label_map=label_map,
                 train=train, workspace=workspace, dataset=dataset, revision=revision, concurrency=concurrency,
                 num_cpus=num_cpus, ray_address=ray_address, limit=limit, progress=not (no_progress or as_json))
    if as_json:
        _print_json(report)
        return
    if report["repaired"]:
        err_console.print(f"resumed: {report['repaired']}", highlight=False)
    console.print(f"{report['n_predicted']} clip(s) predicted now, {report['n_already_done']} already done, "
                  f"{report['n_pending']} pending  ·  {report['source']}", highlight=False)
    if report["clips_per_s"]:
        console.print(f"{report['clips_per_s']:.2f} clips/s ({report['elapsed_s']:.1f} s; preparing "
                      f"{report['prepare_s']:.1f} s)")
    for note in (report.get("model_metadata") or {}).get("notes", []):
        console.print(f"note: {note}", highlight=False)
    console.print(f"predictions: {report['predictions']}" + (f"  ·  metadata: {report['metadata']}"
                                                             if report.get("metadata") else ""))


# -- leaderboard (casebench/leaderboard/; deployment notes in leaderboard/README.md) ------------------------

leaderboard_app = typer.Typer(help="Run a leaderboard with hidden test labels: serve, accounts, reveal, export.",
                              no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")

LbConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Leaderboard config (TOML; see "
                                                                            "leaderboard/example.toml).")]
LbDbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite file in --data-dir; "
                                                             "postgresql+psycopg://... for PostgreSQL).")]
LbDataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Where uploads, the SQLite file and the "
                                                                      "secret key live (default leaderboard-data).")]
LbBenchOpt = Annotated[str | None, typer.Option(
    "--benchmarks", "-b", help="Comma-separated boards NAME[:PHASE] (phase dev or test), e.g. "
                               "casebench-mini,casebench-mini:test; a spec YAML path works for NAME.")]


def _lb_config(config: Path | None, db: str | None, data_dir: Path | None, benchmarks: str | None = None,
               **board_opts):
    from casebench.leaderboard.config import LeaderboardConfig, parse_board_arg

    cfg = LeaderboardConfig.load(config) if config else LeaderboardConfig()
    if data_dir is not None:
        cfg.data_dir = data_dir
    if db:
        cfg.db_url = db
    if benchmarks:
        opts = {k: v for k, v in board_opts.items() if v is not None}
        boards = []
        for item in benchmarks.split(","):
            if item.strip():
                kw = dict(opts)
                if not item.strip().endswith(":test"):
                    kw.pop("visibility", None)
                boards.append(parse_board_arg(item, **kw))
        cfg.boards = boards
        cfg.__post_init__()
    return cfg


def _leaderboard(cfg):
    from casebench.leaderboard.service import Leaderboard

    return Leaderboard(cfg)


@leaderboard_app.command("serve")
def leaderboard_serve(
    benchmarks: LbBenchOpt = None,
    config: LbConfigOpt = None,
    db: LbDbOpt = None,
    data_dir: LbDataOpt = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Scoring processes in the server (0 = "
                                                                         "none: run `casebench leaderboard worker`).")
                       ] = None,
    n_boot: Annotated[int | None, bootstrap_option("Bootstrap resamples per score.")] = None,
    quota_per_day: Annotated[int | None, typer.Option("--quota-per-day", min=0,
                                                         help="Submissions per user per board per UTC day.")] = None,
    quota_total: Annotated[int | None, typer.Option("--quota-total", min=0,
                                                       help="Submissions per user per board in all.")] = None,
    visibility: Annotated[str | None, typer.Option(
        "--visibility", help="Test phases: 'hidden' (until revealed) or 'submitter' (only the submitter sees "
                             "scores).")] = None,
    max_upload_mb: Annotated[float | None, typer.Option("--max-upload-mb", help="Upload size limit.")] = None,
    rate_burst: Annotated[int | None, typer.Option("--rate-burst", min=1, help="Uploads at once per token.")
                          ] = None,
    rate_per_minute: Annotated[float | None, typer.Option("--rate-per-minute", help="Upload refill rate per "
                                                                                       "token.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Serve boards whose gold/spec was built from workspace tables that changed since "
                              "(printed; recorded in every score).")] = False,
) -> None:
    """Start the leaderboard web app (pages + JSON API) and its scoring worker.

    One command for the embedded benchmark: casebench leaderboard serve --benchmarks casebench-mini"""
    import uvicorn

    from casebench.leaderboard.app import make_app
    from casebench.leaderboard.config import check_port_free

    cfg = _lb_config(config, db, data_dir, benchmarks, quota_per_day=quota_per_day, quota_total=quota_total,
                     visibility=visibility)
    check_port_free(host, port)
    if not cfg.boards:
        from casebench.leaderboard.config import parse_board_arg

        cfg.boards = [parse_board_arg("casebench-mini")]
    for name, value in (("workers", workers), ("n_boot", n_boot), ("max_upload_mb", max_upload_mb)):
        if value is not None:
            setattr(cfg, name, value)
    if rate_burst is not None:
        cfg.rate_limit.burst = rate_burst
    if rate_per_minute is not None:
        cfg.rate_limit.per_minute = rate_per_minute
    from casebench.workspace import check_benchmark

    for board in cfg.boards:  # a stale gold/spec is refused before anything is served
        _print_stale(check_benchmark(board.spec(), allow_stale=allow_stale))
    app_ = make_app(cfg)
    lb = app_.state.lb
    boards = ", ".join(f"{b.key}" for b in cfg.boards)
    err_console.print(f"leaderboard: http://{host}:{port}/  ·  boards {boards}  ·  data {cfg.data_dir}  ·  "
                      f"db {lb.db.engine.url.render_as_string(hide_password=True)}")
    if not lb.usernames():
        err_console.print("no accounts yet: casebench leaderboard create-admin NAME"
                          + (f" --data-dir {data_dir}" if data_dir else "") + (f" --config {config}" if config else ""))
    if cfg.workers == 0:
        err_console.print("no scoring in this server (--workers 0): start `casebench leaderboard worker --db "
                          f"{lb.db.engine.url.render_as_string(hide_password=True)}` where the scoring should run")
    uvicorn.run(app_, host=host, port=port, log_level=log_level, proxy_headers=False)


def _password(password_stdin: bool) -> str:
    from casebench.errors import ConfigError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConfigError("--password-stdin read an empty line; pipe the password in, e.g. "
                              "printf '%s\\n' \"$PW\" | casebench leaderboard create-admin NAME --password-stdin")
        return password
    env = os.environ.get("CASEBENCH_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():  # getpass would fall back to echoing (GetPassWarning) or abort at end of input
        raise ConfigError("no terminal to type the password in: pipe it with --password-stdin (printf '%s\\n' "
                          "\"$PW\" | casebench leaderboard create-admin NAME --password-stdin) or set "
                          "CASEBENCH_PASSWORD")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _add_user(username: str, admin: bool, config, db, data_dir, password_stdin: bool, token: bool,
              as_json: bool) -> None:
    lb = _leaderboard(_lb_config(config, db, data_dir))
    user = lb.create_user(username, _password(password_stdin), admin=admin)
    out = {"username": user.username, "is_admin": user.is_admin}
    if token:
        out["token"] = lb.create_token(user.id, "cli")
    if as_json:
        _print_json(out)
        return
    console.print(f"{'admin' if admin else 'user'} [bold]{user.username}[/] created in "
                  f"{lb.db.engine.url.render_as_string(hide_password=True)}")
    if token:
        console.print(f"API token (shown once): {out['token']}\n  export CASEBENCH_TOKEN={out['token']}")


PwStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                                   "(else CASEBENCH_PASSWORD, else a prompt).")]
TokenOpt = Annotated[bool, typer.Option("--token", help="Also create an API token and print it once.")]


@leaderboard_app.command("worker")
def leaderboard_worker(
    db: Annotated[str, typer.Option("--db", help="The server's database URL (postgresql+psycopg://...).")],
    processes: Annotated[int, typer.Option("--processes", min=1, max=256, help="Scoring processes here.")] = 2,
    drain_s: Annotated[float, typer.Option("--drain", min=0, help="Seconds running jobs get to finish on "
                                                                   "SIGTERM.")] = 30.0,
) -> None:
    """Score queued submissions of a leaderboard database from this machine (until SIGTERM or Ctrl-C).

    Jobs are claimed with row locks (FOR UPDATE SKIP LOCKED): workers share the queue, none scores twice.

    The boards come from the database (written by `casebench leaderboard serve`); install their benchmarks here."""
    from casebench.leaderboard.worker import run_worker

    err_console.print(f"scoring worker: {processes} process(es) on {db.split('@')[-1]}; SIGTERM or Ctrl-C stops it")
    w = run_worker(db, processes=processes, drain_s=drain_s)
    err_console.print(f"stopped: {w.scored} scored, {w.retried} retried")


@leaderboard_app.command("create-admin")
def leaderboard_create_admin(
    username: Annotated[str, typer.Argument(help="The organiser's user name.")],
    config: LbConfigOpt = None, db: LbDbOpt = None, data_dir: LbDataOpt = None,
    password_stdin: PwStdinOpt = False, token: TokenOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create an organiser account (can reveal test phases and see every submission)."""
    _add_user(username, True, config, db, data_dir, password_stdin, token, as_json)


@leaderboard_app.command("add-user")
def leaderboard_add_user(
    username: Annotated[str, typer.Argument(help="User name (letters, digits, '_', '.', '-').")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an organiser.")] = False,
    config: LbConfigOpt = None, db: LbDbOpt = None, data_dir: LbDataOpt = None,
    password_stdin: PwStdinOpt = False, token: TokenOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create a submitter account (password hashed with scrypt)."""
    _add_user(username, admin, config, db, data_dir, password_stdin, token, as_json)


@leaderboard_app.command("reveal")
def leaderboard_reveal(
    benchmark: Annotated[str, typer.Argument(help="Benchmark name of the board.")],
    phase: Annotated[str, typer.Option("--phase", help="The phase to reveal.")] = "test",
    hide: Annotated[bool, typer.Option("--hide", help="Hide the scores again.")] = False,
    benchmarks: LbBenchOpt = None, config: LbConfigOpt = None, db: LbDbOpt = None, data_dir: LbDataOpt = None,
) -> None:
    """Reveal (or hide again) the scores of a test phase."""
    cfg = _lb_config(config, db, data_dir, benchmarks or f"{benchmark}:{phase}")
    cfg.require_database("reveal")
    lb = _leaderboard(cfg)
    lb.reveal(f"{benchmark}/{phase}", hide=hide)
    console.print(f"{benchmark}/{phase}: scores {'hidden' if hide else 'revealed'}")


@leaderboard_app.command("export")
def leaderboard_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the static site.")] = Path("site"),
    benchmarks: LbBenchOpt = None, config: LbConfigOpt = None, db: LbDbOpt = None, data_dir: LbDataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a static copy (HTML + results JSON) of the public boards, for HF Spaces or GitHub Pages."""
    from casebench.leaderboard.export import export_site

    cfg = _lb_config(config, db, data_dir, benchmarks)
    if not cfg.boards:
        from casebench.leaderboard.config import parse_board_arg

        cfg.boards = [parse_board_arg("casebench-mini")]
    summary = export_site(_leaderboard(cfg), out)
    if as_json:
        _print_json(summary)
        return
    for b in summary["boards"]:
        console.print(f"{b['board']}: {b['rows']} row(s)" + ("" if b["visible"] else " (hidden: no scores exported)"))
    console.print(f"{summary['results']} results file(s); site in {summary['out']}")


@app.command()
def submit(
    predictions: Annotated[Path, typer.Argument(help="Predictions file (JSON Lines, optionally gzip).")],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark name of the board.")],
    server: Annotated[str, typer.Option("--server", help="Leaderboard URL, e.g. http://127.0.0.1:8000.")],
    phase: Annotated[str | None, typer.Option("--phase", help="dev or test (default: the open phase).")] = None,
    model_name: Annotated[str, typer.Option("--model-name", help="Model name shown on the board.")] = "",
    model_revision: Annotated[str, typer.Option("--model-revision", help="Commit, tag or checkpoint.")] = "",
    model_url: Annotated[str, typer.Option("--model-url", help="Link to the model.")] = "",
    parameters: Annotated[int | None, typer.Option("--parameters", min=0, help="Parameter count.")] = None,
    trained_on: Annotated[str | None, typer.Option("--trained-on", help="Comma-separated training corpora "
                                                                            "(sets the zero-shot flag).")] = None,
    description: Annotated[str, typer.Option("--description", help="One paragraph about the model.")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the submission is scored.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Submit predictions to a leaderboard (API token from CASEBENCH_TOKEN). The file is checked by the server
    with the parser of `casebench evaluate`; an invalid file costs no quota."""
    from casebench.errors import ConfigError
    from casebench.leaderboard.client import submit as run
    from casebench.predict.runner import sidecar_model

    if not model_name and (not predictions.is_file() or sidecar_model(predictions)[0] is None):
        raise ConfigError("--model-name is required (or a <predictions>.meta.json from `casebench predict`): the "
                          "board shows one row per model revision")
    status = run(predictions, benchmark, server, phase=phase, model_name=model_name, model_revision=model_revision,
                 model_url=model_url, parameters=parameters, trained_on=_split_list(trained_on),
                 description=description, wait=wait)
    if as_json:
        _print_json(status)
        return
    console.print(f"submission {status['id']} on {status['board']}: [bold]{status['status']}[/]  ·  "
                  f"{server.rstrip('/')}/submissions/{status['id']}")
    if status.get("hidden"):
        console.print(status["hidden"])
    from casebench.report import fmt

    for split, metrics in (status.get("splits") or {}).items():
        console.print(f"  {split}: " + ", ".join(f"{m} {fmt(e)}" for m, e in list(metrics.items())[:4]))
    if status["status"] == "failed":
        raise typer.Exit(1)


# -- annotation with Label Studio (casebench/labelstudio.py) and aggregation (casebench/aggregate.py) -------

labelstudio_app = typer.Typer(help="The local Label Studio server that scripts/install.sh puts in .venv-labelstudio: "
                                    "start, stop, status.", no_args_is_help=True)
app.add_typer(labelstudio_app, name="labelstudio")

LsDataOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Database, log and state of the server (default: CASEBENCH_LABEL_STUDIO_DIR, else "
                       "~/.local/share/casebench/label-studio).")]


def _render_server(state: dict) -> None:
    from casebench.labelstudio_server import exports

    console.print(f"Label Studio {state.get('version', '')} at [bold]{state['url']}[/]  ·  serving files under "
                  f"{state['document_root']}  ·  pid {state['pid']}", highlight=False, soft_wrap=True)
    console.print(f"log in as {state['username']} / {state['password']}  ·  API token {state['token']}",
                  highlight=False, soft_wrap=True)
    console.print("for casebench annotate and the label-studio-sdk (casebench annotate push finds this server "
                  "without them):", highlight=False)
    for line in exports(state):
        console.print(f"  {line}", highlight=False, soft_wrap=True)


@labelstudio_app.command("start")
def labelstudio_start(
    workspace: Annotated[Path | None, typer.Argument(
        help="A workspace to annotate: the server serves files under its parent folder (default: files under "
             "the current folder).", show_default=False)
    ] = None,
    root: Annotated[Path | None, typer.Option(
        "--root", help="Serve files under this folder instead (it must hold the workspaces to push).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=1, max=65535, help="Port on 127.0.0.1 (default 8080, or a free one when 8080 is taken).")
    ] = None,
    data_dir: LsDataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start Label Studio in the background with local-file serving under the workspace's parent folder (or
    --root), print its URL, login and API token. A first start migrates its database (1-2 minutes)."""
    from casebench.errors import ConfigError
    from casebench.labelstudio_server import start

    if workspace is not None and root is not None:
        raise ConfigError("give a WORKSPACE (its parent folder is served) or --root, not both")
    if workspace is not None:
        from casebench.workspace import Workspace

        document_root = Workspace.open(workspace).root.parent
    else:
        document_root = root if root is not None else Path.cwd()
    with err_console.status("starting Label Studio (a first start migrates its database: 1-2 minutes)"):
        state = start(document_root, data_dir=data_dir, port=port)
    if as_json:
        _print_json(state)
        return
    if state["already_running"]:
        console.print("already running", highlight=False)
    _render_server(state)
    console.print("stop it with: casebench labelstudio stop" + (f" --data-dir {data_dir}" if data_dir else ""),
                  highlight=False, soft_wrap=True)


@labelstudio_app.command("status")
def labelstudio_status(data_dir: LsDataOpt = None, as_json: JsonOpt = False) -> None:
    """Say whether the server is running, and its URL, document root and token. Exit code 1 when it is not."""
    from casebench.labelstudio_server import status

    state = status(data_dir)
    if as_json:
        _print_json(state)
    elif state["running"]:
        _render_server(state)
        if not state["healthy"]:
            console.print("[yellow]the process runs but /health does not answer yet[/]")
    else:
        console.print(f"not running (state in {state['data_dir']}); start it with: casebench labelstudio start "
                      "WORKSPACE", highlight=False, soft_wrap=True)
    if not state["running"]:
        raise typer.Exit(1)


@labelstudio_app.command("stop")
def labelstudio_stop(data_dir: LsDataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the server started by `casebench labelstudio start` (its data, login and token are kept)."""
    from casebench.labelstudio_server import stop

    result = stop(data_dir)
    if as_json:
        _print_json(result)
        return
    console.print(f"stopped Label Studio (pid {result['pid']})" if result["stopped"] else
                  f"not running (state in {result['data_dir']})", highlight=False, soft_wrap=True)


annotate_app = typer.Typer(help="Label Studio annotation: push clips as tasks, pull or import ratings, import a "
                                "long CSV, print the generated labelling configs.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")

LsUrlOpt = Annotated[str | None, typer.Option("--url", help="Label Studio URL, e.g. http://127.0.0.1:8080 (default: "
                                                             "LABEL_STUDIO_URL, else the one recorded by push).")]
LsTokenOpt = Annotated[str | None, typer.Option("--token", help="Personal access token or legacy token (default: "
                                                                 "LABEL_STUDIO_API_KEY); never stored.")]
LsMapOpt = Annotated[list[str] | None, typer.Option("--map", help="Rename a control: FROM_NAME=DIMENSION "
                                                                   "(repeatable).")]


def _render_import(summary: dict) -> None:
    console.print(f"{summary['tasks']} task(s), {summary['annotations']} annotation(s) -> {summary['rows']} "
                  f"rating row(s): [green]{summary['added']} added[/], {summary['updated']} updated, "
                  f"{summary['unchanged']} unchanged")
    console.print(f"cancelled (kept apart, not counted as ratings): {summary['cancelled']}  ·  ground truth: "
                  f"{summary['ground_truth']}  ·  drafts (not imported): {summary['drafts']}")
    if summary["n_empty_results"]:
        ids = ", ".join(summary["empty_results"][:20])
        console.print(f"[yellow]{summary['n_empty_results']} annotation(s) with an empty result, not "
                      f"imported:[/] {ids}")
    for f in summary["files"]:
        console.print(f"  from {f}", highlight=False)


@annotate_app.command("push")
def annotate_push(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with a clips table (and audio).")],
    url: LsUrlOpt = None,
    token: LsTokenOpt = None,
    document_root: Annotated[Path | None, typer.Option(
        "--document-root", help="The server's LOCAL_FILES_DOCUMENT_ROOT (default: that variable, else the "
                                "workspace); it must contain the workspace's audio/.")] = None,
    raters_per_clip: Annotated[int | None, typer.Option(
        "--raters-per-clip", min=1,
        help="Overlap: annotations per task (default: raters_per_clip of casebench.toml).")] = None,
    project: Annotated[list[str] | None, typer.Option(
        "--project", help="Only this project: acoustic or semantic (repeatable; default both).")] = None,
    title: Annotated[str | None, typer.Option("--title",
                                              help="Project title prefix (default: workspace name).")] = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Rewrite the audio URL of tasks pushed earlier with another document root.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the acoustic (audio only) and semantic (transcript only) Label Studio projects and import the
    clips as tasks; project ids go to the annotation.label_studio table of casebench.toml. Safe to re-run: only new
    clips are added."""
    from casebench.labelstudio import PROJECT_KINDS, push
    from casebench.workspace import Workspace

    result = push(Workspace.open(workspace), url, token, document_root=document_root,
                  raters_per_clip=raters_per_clip, kinds=project or PROJECT_KINDS, title=title, repair=repair)
    if as_json:
        _print_json(result)
        return
    for kind, p in result["projects"].items():
        console.print(f"{kind}: project {p['project']} ({'created' if p['created'] else 'reused'}), "
                      f"{p['tasks_added']} task(s) added, {p['tasks_already_there']} already there"
                      + (f" ({p['tasks_repaired']} repaired)" if p["tasks_repaired"] else "") + ", "
                      f"{p['maximum_annotations']} rater(s) per clip  ·  {result['url']}/projects/{p['project']}")


@annotate_app.command("pull")
def annotate_pull(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder pushed with `casebench annotate push`.")],
    url: LsUrlOpt = None,
    token: LsTokenOpt = None,
    mapping: LsMapOpt = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep the raw exports in "
                                                             "reports/label-studio/.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export every task of the workspace's projects from the live server and import the annotations into
    tables/annotations.parquet (idempotent: keyed by Label Studio's annotation id)."""
    from casebench.labelstudio import parse_mapping, pull
    from casebench.workspace import Workspace

    summary = pull(Workspace.open(workspace), url, token, mapping=parse_mapping(mapping),
                   save_exports=not no_save).to_dict()
    if as_json:
        _print_json(summary)
    else:
        _render_import(summary)


@annotate_app.command("import")
def annotate_import(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    exports: Annotated[list[Path], typer.Argument(help="Label Studio JSON export file(s) (Export -> JSON).")],
    mapping: LsMapOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import Label Studio JSON export file(s) a curator downloaded (same rules as pull)."""
    from casebench.labelstudio import import_exports, parse_mapping
    from casebench.workspace import Workspace

    summary = import_exports(Workspace.open(workspace), exports, mapping=parse_mapping(mapping)).to_dict()
    if as_json:
        _print_json(summary)
    else:
        _render_import(summary)


@annotate_app.command("import-csv")
def annotate_import_csv(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    csv_file: Annotated[Path, typer.Argument(help="Long CSV: clip_id, rater_id, dimension, value (+ optional "
                                                  "annotation_id, lead_time_s, created_at, cancelled, "
                                                  "ground_truth, channel, weight). Several emotions in one "
                                                  "value: 'a;b' or 'a:3;b:1', or one label per row with "
                                                  "a weight column.")],
    mapping: LsMapOpt = None,
    source: Annotated[str | None, typer.Option("--source", help="Source recorded on each row "
                                                                "(default csv:<file name>).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import ratings made with another tool from a long CSV; errors name the line, clip and column."""
    from casebench.labelstudio import import_csv, parse_mapping
    from casebench.workspace import Workspace

    summary = import_csv(Workspace.open(workspace), csv_file, mapping=parse_mapping(mapping),
                         source=source).to_dict()
    if as_json:
        _print_json(summary)
        return
    console.print(f"{summary['rows']} rating row(s): [green]{summary['added']} added[/], {summary['updated']} "
                  f"updated, {summary['unchanged']} unchanged; cancelled {summary['cancelled']}, ground truth "
                  f"{summary['ground_truth']}; {summary['multi_label']} with several labels (weights kept)")
    for w in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


@annotate_app.command("config")
def annotate_config(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    project: Annotated[str, typer.Option("--project", help="acoustic or semantic.")] = "acoustic",
) -> None:
    """Print the Label Studio labelling config generated for a project (validated with LabelInterface)."""
    from casebench.labelstudio import labeling_config
    from casebench.workspace import Workspace

    sys.stdout.write(labeling_config(Workspace.open(workspace), project))


@app.command("aggregate")
def aggregate_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with an annotations table.")],
    method: Annotated[str | None, typer.Option(
        "--method",
        help="majority, dawid-skene or mace (default: the aggregate section of casebench.toml, else "
             "majority).")] = None,
    tie: Annotated[str | None, typer.Option(
        "--tie", help="Majority ties: none (no hard label; default) or taxonomy-order.")] = None,
    smoothing: Annotated[float | None, typer.Option("--smoothing", min=0.0, help="Additive smoothing of the "
                                                                                  "distributions.")] = None,
    min_agreement: Annotated[float | None, typer.Option(
        "--min-agreement", min=0.0, max=1.0,
        help="Share of a channel's raters behind its label (default 0.5).")] = None,
    min_raters: Annotated[int | None, typer.Option("--min-raters", min=1,
                                                   help="Raters per channel (default 1).")] = None,
    max_ambiguous_share: Annotated[float | None, typer.Option(
        "--max-ambiguous-share", min=0.0, max=1.0, help="Largest share of is_ambiguous votes (default 0.5).")] = None,
    max_ambiguous_votes: Annotated[int | None, typer.Option(
        "--max-ambiguous-votes", min=0, help="Largest number of is_ambiguous votes (default: no limit).")] = None,
    exclude_ground_truth: Annotated[bool, typer.Option(
        "--exclude-ground-truth", help="Do not count ground-truth annotations as ratings.")] = False,
    seed: Annotated[int, seed_option("Seed of MACE's restarts.")] = 0,
    exclude_flagged: Annotated[bool, typer.Option(
        "--exclude-flagged", help="Leave raters flagged constant or random (20+ ratings) out of labels and "
                                  "distributions.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar (MACE).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Aggregate the annotations into tables/labels.parquet: hard labels, distributions, V/A/D, per-item
    agreement, thresholds and conflict tags; rater flags and warnings; report in reports/aggregate.json."""
    from casebench.aggregate import aggregate as run
    from casebench.workspace import Workspace

    result = run(Workspace.open(workspace), method=method, tie=tie, smoothing=smoothing,
                 min_agreement=min_agreement, min_raters=min_raters, max_ambiguous_share=max_ambiguous_share,
                 max_ambiguous_votes=max_ambiguous_votes,
                 include_ground_truth=False if exclude_ground_truth else None, seed=seed,
                 exclude_flagged=True if exclude_flagged else None, progress=not (no_progress or as_json))
    r = result.report
    if as_json:
        _print_json(r)
        return
    c = r["clips"]
    split_by = (f"{c['conflict']} conflict, {c['congruent']} congruent" if r["conflict_defined"] else
                f"no conflict tags: only {' and '.join(r['channels_rated'])} emotion ratings")
    if not r["channels_rated"]:  # valence / arousal / dominance only: no labels to threshold
        console.print(f"{c['rated']} clip(s) rated: no emotion ratings, so no labels, thresholds or conflict tags; "
                      f"the dimensional ratings are averaged per clip; {c['without_ratings']} without ratings")
    else:
        console.print(f"{c['rated']} clip(s) rated by {r['method']}: [green]{c['passing']} pass the thresholds[/] "
                      f"({split_by}), [yellow]{c['failing']} fail[/], {c['without_ratings']} without ratings"
                      + (f"; {r['multi_label_ratings']} multi-label ratings" if r["multi_label_ratings"] else ""))
    if c.get("below_raters_per_clip"):
        console.print(f"[yellow]{c['below_raters_per_clip']} clip(s) have fewer raters than the schema's "
                      f"raters_per_clip = {r['annotation_schema']['raters_per_clip']}[/] (listed in the report)")
    for reason, n in c["failures_by_reason"].items():
        console.print(f"  failing: {reason}: {n}")
    k = r["counted"]
    console.print(f"{k['ratings']} rating(s) counted; left out: {k['cancelled_rows']} cancelled, "
                  f"{k['rows_without_value']} without value, {k['repeated_ratings_dropped']} repeated")
    for channel, m in (r.get("intended") or {}).items():
        if channel == "conflict":
            console.print(f"intended conflicts tagged: {m['tagged_and_intended']}/{m['intended']}")
        else:
            lm = m.get("label_match")
            labels = f", labels {100 * lm:.1f}%" if lm is not None else ""
            console.print(f"{channel}: ratings match the intended emotion "
                          f"{100 * (m['rating_match'] or 0):.1f}%{labels}")
    from rich.markup import escape

    for w in r.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    console.print(f"labels: {r['labels_table']}  ·  report: {r['report']}")


# -- splits, leakage audit and publishing (casebench/splits.py, audit.py, publish.py) -------------------------


@app.command("split")
def split_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with a clips table (labels used when present).")],
    method: Annotated[str, typer.Option(
        "--method", help="holdout (train/dev/test), kfold (fold0..fold<k-1>) or import (official lists).")
    ] = "holdout",
    ratios: Annotated[str, typer.Option(
        "--ratios", help="Split shares: '0.8,0.1,0.1' (train,dev,test), '0.8,0.2' or 'train=0.7,test=0.3'.")
    ] = "0.8,0.1,0.1",
    seed: Annotated[int, seed_option("Seed of the assignment.")] = 0,
    folds: Annotated[int | None, typer.Option(
        "--folds", min=2, help="Also number speaker-independent cross-validation folds inside train.")] = None,
    k: Annotated[int, typer.Option("--k", min=2, help="Folds for --method kfold.")] = 5,
    group_by: Annotated[str, typer.Option(
        "--group-by", help="Columns whose shared values keep clips together, e.g. speaker_id,session.")
    ] = "speaker_id",
    official: Annotated[Path | None, typer.Option(
        "--official", help="For --method import: a folder of <split>.txt/.csv lists, or one CSV with a split "
                           "column.")] = None,
    allow_unassigned: Annotated[bool, typer.Option(
        "--allow-unassigned", help="Import: leave clips in no list out of the splits (counted).")] = False,
    allow_missing_classes: Annotated[bool, typer.Option(
        "--allow-missing-classes", help="Warn instead of failing when a class is missing from a split.")] = False,
    stratify_source: Annotated[str, typer.Option(
        "--stratify-source", help="auto (labels if present), labels, or intended (synth design).")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Speaker-disjoint splits stratified by acoustic label x conflict status (or k folds, or official lists)
    into tables/splits.parquet; method, ratios and seed are recorded in casebench.toml (split section)."""
    from casebench.splits import split as run

    summary = run(workspace, method=method, ratios=ratios, seed=seed, folds=folds, k=k,
                  group_by=_split_list(group_by) or ["speaker_id"], source=official,
                  allow_unassigned=allow_unassigned, require_all_classes=not allow_missing_classes,
                  stratify_source=stratify_source)
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    cfg = summary["config"]
    table = Table("split", "clips", "share", "speakers", "conflict", "congruent", "unknown", "classes",
                  title=f"{cfg['method']} split, seed {cfg.get('seed', '-')}, grouped by "
                        f"{', '.join(cfg.get('group_by', ['(official)']))}", title_justify="left")
    for name, s in summary["splits"].items():
        table.add_row(name, str(s["n_clips"]), f"{s['share']:.1%}", str(s["n_speakers"]),
                      str(s["status"]["conflict"]), str(s["status"]["congruent"]), str(s["status"]["unknown"]),
                      str(len([c for c in s["acoustic"] if c != "?"])))
    console.print(table)
    if summary["views"] and any(summary["views"].values()):
        console.print("views of test: " + ", ".join(f"{k} {v}" for k, v in summary["views"].items()))
    for w in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"splits: {summary['splits_table']}  ·  report: {summary['report']}  ·  "
                  "next: casebench audit " + str(workspace))


@app.command("audit")
def audit_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with a splits table.")],
    no_audio: Annotated[bool, typer.Option(
        "--no-audio", help="Skip the near-identical audio check (reads no audio).")] = False,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Checks that count as leaks (comma-separated; default speakers, identical_audio, "
                          "near_audio, identical_text, near_text).")] = None,
    warn_on: Annotated[str | None, typer.Option(
        "--warn-on", help="Checks reported as warnings (default sessions, distribution_shift).")] = None,
    near_audio_ber: Annotated[float | None, typer.Option(
        "--near-audio-ber", min=0.0, max=0.5, help="Largest bit error rate of near-identical audio (0.2).")] = None,
    near_text_jaccard: Annotated[float | None, typer.Option(
        "--near-text-jaccard", min=0.0, max=1.0, help="Smallest token Jaccard of near-identical texts (0.8).")
    ] = None,
    max_tvd: Annotated[float | None, typer.Option(
        "--max-tvd", min=0.0, max=1.0, help="Distribution shift above this total variation distance (0.1).")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Leakage audit of the splits (shared speakers, identical or near-identical audio and text, sessions,
    distribution shift), JSON + HTML report in reports/. Exit code 1 when it finds leakage."""
    from casebench.audit import audit as run
    from casebench.audit import summary_lines

    report = run(workspace, audio=not no_audio, progress=not (no_progress or as_json), fail_on=fail_on,
                 warn_on=warn_on, near_audio_ber=near_audio_ber, near_text_jaccard=near_text_jaccard,
                 max_tvd=max_tvd)
    if as_json:
        _print_json(report)
    else:
        from rich.table import Table

        from casebench.audit import CHECKS

        table = Table("pair", *CHECKS, title=f"{report['n_clips']} clips in {len(report['splits'])} splits",
                      title_justify="left")
        for p in report["pairs"] + report["folds"]:
            cells = []
            for c in CHECKS:
                r = p["checks"].get(c)
                if r is None:
                    cells.append("–")
                elif r["flagged"]:
                    color = {"fail": "red", "warn": "yellow"}.get(r["severity"], "cyan")
                    cells.append(f"[{color}]{r['n']}[/]")
                else:
                    cells.append("[green]0[/]" if c != "distribution_shift" else "[green]ok[/]")
            table.add_row(f"{p['a']}/{p['b']}", *cells)
        console.print(table)
        for line in summary_lines(report):
            color = "red" if line.startswith(("FAILED", "leak")) else "yellow" if line.startswith("warning") \
                else "green"
            console.print(f"[{color}]{line}[/]", highlight=False)
        for check, why in report["not_run"].items():
            console.print(f"not run: {check} ({why})")
        console.print(f"report: {report['report_html']}")
    if not report["passed"]:
        raise typer.Exit(1)  # leakage: exit code 1


@app.command("publish")
def publish_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with clips, splits and labels.")],
    out: Annotated[Path, typer.Argument(help="Folder to write the Hugging Face dataset to (new or empty).")],
    repo_id: Annotated[str | None, typer.Option(
        "--repo-id", help="Also upload to this Hub dataset repo, ORG/NAME (token: HF_TOKEN or "
                          "huggingface-cli login).")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repo private.")] = False,
    token: Annotated[str | None, typer.Option("--token", help="Hugging Face token (default HF_TOKEN / login).")
                     ] = None,
    hide_test_labels: Annotated[bool, typer.Option(
        "--hide-test-labels", help="Publish test audio without labels; the labels go to a local gold CSV.")] = False,
    gold: Annotated[Path | None, typer.Option(
        "--gold", help="Where to write the hidden test labels (default <workspace>/gold/<name>-test-gold.csv).")
    ] = None,
    allow_leakage: Annotated[str | None, typer.Option(
        "--allow-leakage", help="Publish although the audit fails; the REASON is printed in the data card.")
    ] = None,
    licence: Annotated[str | None, typer.Option("--licence", help="Licence (SPDX id, e.g. CC-BY-4.0).")] = None,
    licence_url: Annotated[str | None, typer.Option("--licence-url", help="Link to the licence text.")] = None,
    consent: Annotated[str | None, typer.Option("--consent", help="How the speakers consented (card).")] = None,
    summary_text: Annotated[str | None, typer.Option("--summary", help="One-paragraph description (card).")] = None,
    authors: Annotated[str | None, typer.Option("--authors", help="Comma-separated authors (card).")] = None,
    guidelines: Annotated[str | None, typer.Option(
        "--guidelines", help="Link to / summary of the annotation guidelines (card).")] = None,
    pretty_name: Annotated[str | None, typer.Option("--pretty-name", help="Display name on the Hub.")] = None,
    shard_size: Annotated[str, typer.Option("--shard-size", help="Largest Parquet shard, e.g. 500MB.")] = "500MB",
    no_audio_audit: Annotated[bool, typer.Option(
        "--no-audio-audit", help="Audit without the near-identical audio check.")] = False,
    n_boot: Annotated[int, bootstrap_option("Resamples for the agreement CIs.")] = 1000,
    no_views: Annotated[bool, typer.Option(
        "--no-views", help="Do not publish the conflict_test / congruent_test views.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier published folder.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Publish although the labels changed after the split (printed and recorded).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish as a Hugging Face dataset: Parquet shards (configs default, distributions, annotations), README
    with the Hub's YAML header and the generated data card, croissant.json; optionally upload it."""
    from casebench.publish import parse_size
    from casebench.publish import publish as run

    card = {"licence": licence, "licence_url": licence_url, "consent": consent, "summary": summary_text,
            "authors": authors, "guidelines": guidelines, "pretty_name": pretty_name}
    prompt = None
    if not as_json and sys.stdin.isatty():
        def prompt(name: str, what: str) -> str:
            return typer.prompt(f"{name} ({what})", default="", show_default=False)
    result = run(workspace, out, repo_id=repo_id, private=private, token=token, hide_test_labels=hide_test_labels,
                 gold_path=gold, allow_leakage=allow_leakage, card=card, prompt=prompt,
                 shard_bytes=parse_size(shard_size), audit_audio=not no_audio_audit, n_boot=n_boot,
                 views=not no_views, overwrite=overwrite, progress=not (no_progress or as_json),
                 allow_stale=allow_stale)
    _print_stale(result.get("stale"))
    if as_json:
        _print_json(result)
        return
    from rich.table import Table

    table = Table("config", *result["splits"], title=f"{result['name']} → {result['out_dir']}",
                  title_justify="left")
    for cfg, counts in result["configs"].items():
        table.add_row(cfg, *(str(counts.get(s, "–")) for s in result["splits"]))
    console.print(table)
    audit = result["audit"]
    if audit["passed"]:
        console.print("[green]leakage audit passed[/]")
    else:
        console.print(f"[yellow]leakage audit failed ({len(audit['leaks'])} leak(s)); published with the reason: "
                      f"{result['allow_leakage']}[/]", highlight=False)
    console.print(f"{result['audio_bytes'] / 1e6:.1f} MB of audio at {result['mb_per_s_write']} MB/s  ·  "
                  f"card: {result['readme']}  ·  croissant: {result['croissant']} (valid)")
    if result["gold"]:
        console.print(f"hidden test labels (local only): {result['gold']}")
    if result.get("train_labels"):
        console.print(f"train labels for the constant's prior (evaluate --train): {result['train_labels']}")
    for what, n in result["left_out"].items():
        if n:
            console.print(f"[yellow]left out:[/] {n} {what.replace('_', ' ')}")
    if result["upload"]:
        console.print(f"uploaded: {result['upload']['repo_url']}")


@app.command("agreement")
def agreement_cmd(
    path: Annotated[Path, typer.Argument(
        help="A workspace folder, a long table (CSV/Parquet: clip_id, rater_id, value[, dimension]) or a "
             "Label Studio JSON export.")],
    dimension: Annotated[str | None, typer.Option("--dimension", "-d", help="Only this dimension.")] = None,
    level: Annotated[str | None, typer.Option(
        "--level", help="nominal|ordinal|interval|ratio|masi; default: from the annotation schema "
                        "(categories nominal, mixed-emotion categories masi, ratings interval). masi: "
                        "Krippendorff's α with the MASI distance between label sets (values 'a;b'), "
                        "plus a binary α per class.")] = None,
    taxonomy: Annotated[str, typer.Option("--taxonomy", help="Taxonomy of a bare Label Studio export.")] = "ekman7",
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write JSON + HTML + rater heatmaps here (default: the workspace's reports/agreement).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Inter-rater agreement per dimension: Krippendorff's α with a bootstrap CI, Fleiss' κ, Gwet's AC1,
    pairwise Cohen's κ and each rater's agreement with the others (multi-label ratings: --level masi)."""
    from casebench.annotations import run_agreement

    result = run_agreement(path, dimension=dimension, level=level, taxonomy=taxonomy, n_boot=n_boot, seed=seed)
    if report is None and (path.is_dir() or path.name == "casebench.toml"):
        from casebench.workspace import Workspace

        report = Workspace.open(path).reports_dir / "agreement"
    if report is not None:
        from casebench.report import write_agreement_report

        html = write_agreement_report(result, report)
        if not as_json:
            err_console.print(f"report: {html}")
    if as_json:
        _print_json(result)
    else:
        from casebench.report import render_agreement

        render_agreement(result, console)


@app.command("baseline")
def baseline_cmd(
    name: Annotated[str, typer.Argument(
        help="Reference system: majority, mean-distribution, text, text-minilm, acoustic or fusion.")],
    workspace: Annotated[Path | None, typer.Argument(
        help="Workspace folder (clips, splits, labels).", show_default=False)] = None,
    workspace_opt: Annotated[Path | None, typer.Option(
        "--workspace", "-w", hidden=True, help="Deprecated spelling of the WORKSPACE argument.")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="Split to predict: a split of the splits table, or conflict_test / congruent_test.")] = "test",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Predictions file to write (default: <workspace>/predictions/NAME-SPLIT.jsonl).")] = None,
    train_split: Annotated[str, typer.Option("--train-split", help="Split to train on.")] = "train",
    dev_split: Annotated[str, typer.Option("--dev-split", help="Split the fusion weight is tuned on.")] = "dev",
    labels: Annotated[str, typer.Option(
        "--labels", help="auto (the labels table, else intended emotions), labels, or intended.")] = "auto",
    fusion_weight: Annotated[float | None, typer.Option(
        "--fusion-weight", min=0.0, max=1.0, help="Fix the text weight of fusion instead of tuning it on dev.")] = None,
    target: Annotated[str, typer.Option(
        "--target", help="What text/acoustic/fusion fit: label, distribution (label-distribution learning on the "
                         "soft labels) or auto (distribution for a mixed-emotion corpus).")] = "auto",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes for acoustic features.")] = 2,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a reference system on the workspace's train split and write predictions for a split, ready for
    `casebench evaluate`. Acoustic features are cached in the workspace (re-runs reuse them)."""
    from casebench.baselines import BASELINES, baseline
    from casebench.errors import unknown_name

    if name not in BASELINES:
        raise unknown_name("baseline", name, BASELINES)
    if workspace is not None and workspace_opt is not None:
        raise typer.BadParameter("give the workspace once: casebench baseline NAME WORKSPACE")
    if workspace is None and workspace_opt is None:
        raise typer.BadParameter("missing argument 'workspace': casebench baseline NAME WORKSPACE")
    if workspace is None:  # the 0.1 spelling, kept working; the message says what to type from now on
        err_console.print(f"note: --workspace is deprecated; write casebench baseline {name} {workspace_opt}",
                          highlight=False)
        workspace = workspace_opt
    summary = baseline(name, workspace, split=split, out=out, train_split=train_split, dev_split=dev_split,
                       labels=labels, workers=workers, fusion_weight=fusion_weight,
                       progress=not (no_progress or as_json), target=target)
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    console.print(f"[bold]{name}[/]: {summary['summary']}")
    console.print(f"trained on {summary['n_train']} '{summary['train_split']}' clip(s) (labels: "
                  f"{summary['label_source']}, target: {summary['target']}); predicted {summary['n_clips']} "
                  f"'{split}' clip(s)")
    if summary["scores"]["all"].get("kl") is not None:
        console.print(f"mean KL against the workspace's distributions: {summary['scores']['all']['kl']:.4f}")
    if summary["text_sources"]:
        console.print("text from: " + ", ".join(f"{k} {v}" for k, v in summary["text_sources"].items() if v))
    weight = summary["model"].get("text_weight")
    if weight is not None:
        console.print(f"fusion weight of the text: {weight} ({summary['model']['weight_from']})")
    table = Table("clips", "n", "accuracy", "follows the words", title="against the workspace's own labels (no CIs; "
                  "`casebench evaluate` gives them)", title_justify="left")
    for part in ("all", "conflict", "congruent"):
        s = summary["scores"][part]
        tfr = s.get("text_following_rate")
        table.add_row(part, str(s["n"]), "-" if s["accuracy"] is None else f"{s['accuracy']:.3f}",
                      "-" if tfr is None else f"{tfr:.3f}")
    console.print(table)
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"predictions: {summary['out']}")


# -- corpus importers and cross-corpus benchmarks (casebench/corpora/, casebench/crosscorpus.py) ---------------


def _corpus_names() -> list[str]:
    from casebench.corpora import CORPORA  # the importer modules import only the standard library at load

    return sorted(CORPORA)


def _parse_opts(items: list[str] | None) -> dict[str, str]:
    from casebench.errors import ConfigError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--opt {item!r}; expected KEY=VALUE (e.g. --opt fold=2)")
        out[key.strip()] = value.strip()
    return out


@app.command("import-corpus")
def import_corpus_cmd(
    name: Annotated[str, typer.Argument(
        help="Corpus (the importer registry): " + ", ".join(_corpus_names()) + ".", metavar="NAME")],
    path: Annotated[Path, typer.Argument(help="The local copy of the corpus (never downloaded).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Workspace folder to create (default: ./NAME).")] = None,
    taxonomy: Annotated[str | None, typer.Option(
        "--taxonomy", help="casebench taxonomy to map the labels into (default: the corpus's own, e.g. crema6; "
                           "ekman7 for EmoBox/EMO-SUPERB/EMIS).")] = None,
    audio: Annotated[str, typer.Option(
        "--audio", help="link (symlinks, default), copy, or convert (16 kHz mono FLAC).")] = "link",
    opt: Annotated[list[str] | None, typer.Option(
        "--opt", help="A corpus option KEY=VALUE, repeatable (emobox: dataset, fold, audio_root; emo-superb: "
                      "corpus, label_set, fold; ravdess: song; crema-d: skip_uncertain_bad).")] = None,
    keep_unmapped: Annotated[bool, typer.Option(
        "--keep-unmapped", help="Keep clips whose class has no counterpart, with a null label.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier import of this corpus in the same workspace.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a local copy of an existing corpus into a new workspace: clips, labels mapped into a casebench
    taxonomy (original labels kept), official splits; every dropped class and file is counted and noted."""
    from casebench.corpora import get_corpus, import_corpus

    get_corpus(name)  # an unknown name: the registry's choices and a did-you-mean, before anything is read
    report = import_corpus(name, path, out if out is not None else Path(name), taxonomy=taxonomy, audio=audio,
                           options=_parse_opts(opt), keep_unmapped=keep_unmapped, overwrite=overwrite,
                           progress=not (no_progress or as_json))
    if as_json:
        _print_json(report.to_dict())
        return
    for i, line in enumerate(report.lines()):
        style = "bold" if i == 0 else "yellow" if line.startswith(("note:", "uncertain:")) else ""
        console.print(f"[{style}]{line}[/]" if style else line, highlight=False)
    console.print(f"report: {report.report_path}  ·  next: casebench audit {report.workspace} --no-audio")


@app.command("benchmark-from")
def benchmark_from_cmd(
    workspaces: Annotated[list[Path], typer.Argument(help="Imported workspaces, one per corpus.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for gold.csv and the spec YAML.")],
    taxonomy: Annotated[str | None, typer.Option(
        "--taxonomy", help="Benchmark taxonomy every corpus maps into (default: the workspaces' own when they share "
                           "one, else ekman7).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Benchmark name (default xc-<corpora>).")] = None,
    version: Annotated[str, typer.Option("--version", help="Benchmark version.")] = "1.0",
    split: Annotated[str | None, typer.Option(
        "--split", help="Take only this split of each workspace (e.g. test); default every labelled clip.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty --out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a cross-corpus benchmark from imported workspaces: one gold table (a corpus column, labels mapped
    into --taxonomy, unmappable classes dropped per corpus with a note) and a spec with one cross-corpus split
    per corpus. Score it with: casebench evaluate PREDS --benchmark OUT/NAME.yaml --trained-on ..."""
    from casebench.crosscorpus import benchmark_from

    built = benchmark_from(workspaces, out, taxonomy=taxonomy, name=name, version=version, split=split,
                           overwrite=overwrite)
    if as_json:
        _print_json(built)
        return
    from rich.table import Table

    table = Table("corpus", "taxonomy", "items", "dropped", title=f"{built['name']} v{built['version']} "
                  f"({built['taxonomy']}; tasks {', '.join(built['tasks'])})", title_justify="left")
    for corpus, info in built["corpora"].items():
        table.add_row(corpus, info["taxonomy"], str(info["n_items"]),
                      ", ".join(f"{k} {v}" for k, v in info["dropped"].items()) or "-")
    console.print(table)
    for note in built["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"spec: {built['spec']}  ·  gold: {built['gold']}")


@app.command("degrade")
def degrade_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder with clips, splits (and labels).")],
    conditions: Annotated[str, typer.Option(
        "--conditions", help="Comma-separated: snr<N>[_pink|_brown|_noise] (snrm5 = -5 dB), rt<ms>, rir, "
                             "mp3_<k>k, opus<k>k, nb8k, gain<N>/gainm<N>, clip<dB>.")
    ] = "snr0,snr5,snr10,snr20,rt600,opus16k,nb8k",
    seed: Annotated[int, seed_option("Seed of the noise, impulse responses and file picks.")] = 0,
    split: Annotated[str, typer.Option("--split", help="The split whose clips are degraded.")] = "test",
    noise_dir: Annotated[Path | None, typer.Option(
        "--noise-dir", help="Folder of noise recordings (e.g. MUSAN noise/) for snr<N>_noise.")] = None,
    rir_dir: Annotated[Path | None, typer.Option(
        "--rir-dir", help="Folder of room impulse responses for the rir condition.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Degraded copies of a split's clips, one split per condition (test.snr5, ...; ids <clip_id>@<condition>),
    audio under audio/degraded/<condition>/, recorded in casebench.toml (degrade section). Resumable."""
    from casebench.degrade import degrade as run

    summary = run(workspace, conditions, seed=seed, source_split=split, noise_dir=noise_dir, rir_dir=rir_dir,
                  progress=not as_json)
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    table = Table("condition", "split", "made", "reused", title=f"degraded copies of {summary['n_clips']} "
                  f"{split} clips, seed {seed}", title_justify="left")
    for name, c in summary["conditions"].items():
        table.add_row(name, c["split"], str(c["made"]), str(c["reused"]))
    console.print(table)


@app.command("mine-conflicts")
def mine_conflicts_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace of an imported corpus (voice labels + texts).")],
    text_emotion: Annotated[str, typer.Option(
        "--text-emotion", help="Who labels the words: lexicon (built-in, every shipped taxonomy), "
                               "llm:MODEL@URL (OpenAI-compatible chat; key from CASEBENCH_LLM_API_KEY or "
                               "OPENAI_API_KEY) or ratings (semantic_emotion ratings).")] = "lexicon",
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", min=0.0, max=1.0, help="Below this, is_conflict stays unknown (null).")] = 0.4,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Also replace words labels the corpus or raters already gave.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tag natural conflicts: label the emotion of each clip's words, compare it with the voice label, write
    conflict tags with a confidence into the labels table (voice-only emotion is not conflict)."""
    from casebench.mine import mine_conflicts

    report = mine_conflicts(workspace, text_emotion=text_emotion, min_confidence=min_confidence,
                            overwrite=overwrite, progress=not as_json)
    if as_json:
        _print_json(report)
        return
    from rich.table import Table

    table = Table("tag", "clips", f"confidence >= {min_confidence:g}", title=f"{report['n_clips']} clips, words "
                  f"labelled by {report['words']['source']} (texts: {report['texts']})", title_justify="left")
    for tag, n in report["tags"].items():
        table.add_row(tag, str(n), str(report["tags_confident"][tag]))
    console.print(table)
    if report["conflict_types"]:
        console.print("conflict types: " + ", ".join(f"{k} {v}" for k, v in list(report["conflict_types"].items())[:8]))
    if report["agreement_with_corpus_words_labels"]:
        a = report["agreement_with_corpus_words_labels"]
        console.print(f"mined words labels equal the corpus's own on {a['share_equal']:.0%} of {a['n']} clips")
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"labels: {report['labels_table']}  ·  report: {report['report']}")


@app.command("perceive")
def perceive_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace with synthesized (or labelled) clips.")],
    which: Annotated[str, typer.Option(
        "--clips", help="synth: clips with a design label (intended_acoustic); all: also voice-labelled clips.")
    ] = "synth",
    n_boot: BootOpt = 1000,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Feature extraction processes.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Perception check before release: how recognisable the voice emotion is without words (a probe on eGeMAPS
    features, each speaker held out in turn), whether pitch and loudness alone give it away (caricature), and the
    raters' agreement with the design label. Writes reports/perception.json; the data card reports it."""
    from casebench.perception import perceive, summary_line

    report = perceive(workspace, which=which, n_boot=n_boot, seed=seed, workers=workers, progress=not as_json)
    if as_json:
        _print_json(report)
        return
    colour = {"plausible": "green"}.get(report["verdict"], "red")
    console.print(f"[bold {colour}]{report['verdict']}[/]: {summary_line(report).split(': ', 1)[1]}")
    for reason in report["reasons"]:
        console.print(f"  - {reason}")
    console.print(f"report: {report['report']}")


# -- casebench --help: commands grouped in workflow order, one line each --------------------------------------

HELP_PANELS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Build a corpus", [
        ("init", "Create a workspace (casebench.toml, audio/, tables/, reports/)."),
        ("synth", "Synthesize conflict clips: words of one emotion spoken with another."),
        ("collect", "Ingest recordings: 16 kHz mono, loudness, optional VAD, quality checks."),
        ("import-corpus", "Import a local copy of an existing corpus (CREMA-D, RAVDESS, ...)."),
        ("transcribe", "Transcribe the clips with Whisper (text, language, word times, WER)."),
        ("mine-conflicts", "Tag natural conflicts: the words' emotion against the voice label."),
        ("degrade", "Make noisy, reverberant or coded copies of a split for robustness tests."),
    ]),
    ("Annotate", [
        ("labelstudio", "Start, stop or check the local Label Studio server (URL, login, token)."),
        ("annotate", "Push clips to Label Studio, pull or import the ratings."),
        ("agreement", "Inter-rater agreement: Krippendorff's alpha with CI, kappas, AC1."),
        ("aggregate", "Ratings -> labels, distributions, V/A/D and conflict tags."),
    ]),
    ("Release", [
        ("split", "Speaker-disjoint train/dev/test splits (or k folds, or official lists)."),
        ("audit", "Leakage audit of the splits (speakers, audio, text); exit 1 on leaks."),
        ("perceive", "Perception check: is the voice emotion recognisable, or a pitch/loudness caricature?"),
        ("publish", "Write a Hugging Face dataset with data card and Croissant; optionally upload."),
        ("benchmark-from", "Build a benchmark (gold table + spec) from imported workspaces."),
    ]),
    ("Score models", [
        ("benchmarks", "List the built-in benchmarks; show one's tasks, splits, ids, a template."),
        ("taxonomies", "List the label taxonomies and their mappings."),
        ("predict", "Run a model on a benchmark's audio and write a predictions file."),
        ("baseline", "Train a reference system on a workspace and write its predictions."),
        ("evaluate", "Score a predictions file: every split and metric with 95% CIs."),
        ("compare", "Compare two predictions files on the same items (paired tests)."),
    ]),
    ("Leaderboard", [
        ("leaderboard", "Run a leaderboard: serve, scoring workers, accounts, reveal, static export."),
        ("submit", "Submit predictions to a leaderboard server."),
    ]),
    ("Help and examples", [
        ("demo", "Run the whole flow on an embedded corpus and print a report."),
    ]),
]


def _first_paragraph(doc: str | None) -> str | None:
    import inspect

    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else None


def _apply_help_panels(group: typer.Typer = app, top: bool = True) -> None:
    """Set each top-level command's panel and one-line summary from :data:`HELP_PANELS` (one place for both);
    sub-commands get their docstring's first paragraph as one line, so the listing is never hard-wrapped."""
    where = {name: (panel, summary) for panel, cmds in HELP_PANELS for name, summary in cmds}
    for info in group.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        if top and name in where:
            info.rich_help_panel, info.short_help = where[name]
        elif not isinstance(info.short_help, str):
            info.short_help = _first_paragraph(info.help if isinstance(info.help, str) else info.callback.__doc__)
    for info in group.registered_groups:
        if top and info.name in where:
            info.rich_help_panel, info.short_help = where[info.name]
        _apply_help_panels(info.typer_instance, top=False)


_apply_help_panels()


# -- entry point: every user mistake is one message and exit code 2 -----------------------------------------


def _usage_exceptions() -> tuple[type[Exception], ...]:
    # typer >= 0.24 ships its own copy of click, whose exceptions derive from typer.TyperException (not from
    # click.ClickException); older typer raises the real click's.
    classes: list[type[Exception]] = [typer.TyperException]
    try:
        import click
    except ImportError:
        pass
    else:
        classes.append(click.ClickException)
    return tuple(classes)


def _close_options(option: str, ctx) -> list[str]:
    """Options of the command that start with what was typed, else that are spelled alike (without dashes)."""
    import difflib

    if ctx is None:
        return []
    opts = [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    prefixed = [o for o in opts if o.startswith(option)]
    if prefixed:
        return prefixed[:3]
    names = {o.lstrip("-"): o for o in opts}
    return [names[n] for n in difflib.get_close_matches(option.lstrip("-"), list(names), n=2, cutoff=0.6)]


def usage_message(e: Exception) -> str:
    """One readable line for a command-line parser error, with a did-you-mean and where to find help.

    "No such option: --ratio (Possible options: --ratios)" becomes
    "casebench split: no such option --ratio (did you mean '--ratios'?); see casebench split --help".
    """
    ctx = getattr(e, "ctx", None)
    text = e.format_message() if hasattr(e, "format_message") else str(e)
    possibilities = getattr(e, "possibilities", None)
    option = getattr(e, "option_name", None)
    if option and possibilities is not None:  # NoSuchOption: our own did-you-mean (click's matches '--' too)
        text = f"no such option {option}"
        close = _close_options(option, ctx)
        if close:
            text += " (did you mean " + " or ".join(f"'{p}'" for p in close) + "?)"
    text = text.replace(". Did you mean", " (did you mean").rstrip(".")
    if "(did you mean" in text and not text.endswith(")"):
        text += ")"
    if ctx is None:
        return text
    path = ctx.command_path
    return f"{path}: {text[:1].lower() + text[1:]}; see {path} --help"


_COMMAND = None


def _command():
    """The Click command tree, built once per process: Typer rebuilds it from the function signatures on every
    ``app(...)`` call (~0.1 s), which in-process callers (tests, the fuzz test's 3,000 runs) pay each time."""
    global _COMMAND
    if _COMMAND is None:
        _COMMAND = typer.main.get_command(app)
        _hide_flag_types(_COMMAND)
    return _COMMAND


def _hide_flag_types(command) -> None:
    """Typer's help shows a flag as ``--json <bool>``, as if it took a value (``--json true`` is then refused):
    a flag shows no type."""
    def untyped(param):
        if param is not None and getattr(param, "is_flag", False):
            param.display_type_rich = lambda ctx: None
        return param

    for param in command.params:
        untyped(param)
    help_option = command.get_help_option  # made per context, outside ``params``
    command.get_help_option = lambda ctx: untyped(help_option(ctx))
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the Typer app. A CasebenchError or a command-line mistake becomes one message on
    stderr and exit code 2; anything else is a bug and keeps its traceback."""
    from rich.markup import escape

    as_json = "--json" in (argv if argv is not None else sys.argv[1:])

    def fail(e: CasebenchError) -> int:  # --json: the error as JSON on stdout too, so a script reads a document
        if as_json:
            _print_json(e.to_dict())
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2

    try:
        rc = _command().main(args=argv, prog_name="casebench", standalone_mode=False)  # a typer.Exit's code
    except CasebenchError as e:
        return fail(e)
    except OSError as e:  # a file or folder the user named cannot be read or written: one line naming it
        if os.environ.get("CASEBENCH_DEBUG"):
            raise
        from casebench.errors import path_error

        return fail(path_error(e))
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        return 130
    except _usage_exceptions() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `casebench` or `casebench annotate` alone: the help
            e.show()
            return 2
        return fail(CasebenchError(usage_message(e)))
    if rc == 130:  # Ctrl-C: typer turns KeyboardInterrupt into a silent exit code 130
        err_console.print("interrupted (Ctrl-C); a resumable step (synth, collect, transcribe, degrade, predict) "
                          "keeps what it finished: run the same command again to go on", highlight=False)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
