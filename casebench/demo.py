"""``casebench demo``: the whole flow on an embedded corpus, end to end, in a few minutes on 2 cores.

synthesize (espeak-ng, 10 voices, every acoustic x semantic pair of ekman7) → transcribe (the bundled
Whisper tiny.en) → annotate (simulated raters who listen: they rate the voice from its acoustics with noise,
:class:`casebench.perception.Listener`; posted to a real local Label Studio and pulled back, or straight into
the table with ``--no-label-studio``) → perception check (:func:`casebench.perception.perceive`) →
agreement → aggregate → split → audit → publish (and load back with ``datasets``) → reference baselines →
``probe:whisper-tiny.en`` (``casebench predict``: a linear probe on the bundled Whisper encoder, fitted on the
train split) → evaluate on conflict vs congruent test clips → a local leaderboard exported as a static site.
Every step is the library function its CLI command calls; re-running resumes (synthesis, transcription and
prediction skip finished clips) and rewrites the rest.
"""

from __future__ import annotations

import time
from pathlib import Path

CONDITIONS = ("snr20", "snr5")  # white noise at 20 and 5 dB SNR: a robustness curve over the clean score
PROBE = "probe:whisper-tiny.en"
VOICES = ("en-us+m1", "en-us+m3", "en-us+m5", "en-us+m7", "en-us+f1", "en-us+f2", "en-us+f3", "en-us+f4",
          "en-gb+m3", "en-gb+f3")


class _Steps:
    """Runs named steps, timing each and printing a line per step when a console is given."""

    def __init__(self, console):
        self.console, self.times = console, {}

    def __call__(self, name: str, fn, *args, **kwargs):
        t = time.perf_counter()
        if self.console is not None:
            self.console.print(f"[bold cyan]▶ {name}[/]")
        out = fn(*args, **kwargs)
        self.times[name] = round(time.perf_counter() - t, 1)
        return out


def _annotate(ws, *, label_studio: bool, n_raters: int, p_correct: float, seed: int, base: Path) -> dict:
    from casebench.annotations import post_simulated, simulate_ratings
    from casebench.benchmarks import DEGRADED_SEP
    from casebench.labelstudio import merge_annotations, pull, push
    from casebench.perception import Listener, listener_cues

    clips = ws.read_df("clips")
    clips = clips[~clips["clip_id"].str.contains(DEGRADED_SEP, regex=False)]  # raters hear the originals
    # the raters listen: each acoustic rating is heard in the clip's pitch, range, loudness and rate (with
    # perception noise), never copied from the design label; p_correct applies to reading the words only
    listener, cues = Listener(tuple(ws.taxonomy.labels)), listener_cues(ws, clips["clip_id"].tolist())
    if not label_studio:
        rows = simulate_ratings(clips, list(ws.taxonomy.labels), n_raters=n_raters,
                                p_correct=p_correct, seed=seed, careless=1, listener=listener, cues=cues)
        summary = merge_annotations(ws, rows)
        return {"mode": "simulated raters straight into the annotations table", "rows": len(rows),
                "summary": summary.to_dict() if hasattr(summary, "to_dict") else str(summary)}
    from casebench.labelstudio_server import local_server, migrated_template, version

    cache = Path.home() / ".cache" / "casebench" / f"label-studio-{version()}"
    template = migrated_template(cache, base / "label-studio")
    with local_server(base / "label-studio", template_db=template, document_root=ws.root.parent) as srv:
        push(ws, srv.url, srv.token, document_root=srv.document_root, raters_per_clip=n_raters)
        posted = post_simulated(ws, srv.url, srv.token, n_raters=n_raters, p_correct=p_correct, seed=seed,
                                careless=1, listener=listener, cues=cues)
        pulled = pull(ws, srv.url, srv.token)
    return {"mode": f"simulated raters posted to a local Label Studio {version()} and pulled back", **posted,
            "pulled": pulled.to_dict() if hasattr(pulled, "to_dict") else str(pulled)}


def run_demo(out: str | Path, *, n_boot: int = 1000, seed: int = 0, label_studio: bool = True,
             n_raters: int = 5, p_correct: float = 0.8, per_cell: int = 2, console=None) -> dict:
    """Run the demo into ``out``; returns a summary (paths and headline figures). Prints when given a console."""
    import os

    from casebench.aggregate import aggregate
    from casebench.annotations import run_agreement
    from casebench.degrade import degrade
    from casebench.evaluate import evaluate
    from casebench.publish import split_audit_publish
    from casebench.report import write_agreement_report
    from casebench.results import model_info, save
    from casebench.splits import split
    from casebench.synth import synth
    from casebench.transcribe import transcribe
    from casebench.workspace import Workspace

    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # the demo prints its own steps
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    step = _Steps(console)
    ws = Workspace.create(out / "workspace", "casebench-demo", taxonomy="ekman7", licence="CC0-1.0",
                          exist_ok=True)
    summary: dict = {"out": str(out), "workspace": str(ws.root)}
    summary["synth"] = step("synthesize conflict clips (espeak-ng)", synth, ws, voices=VOICES, per_cell=per_cell,
                            congruent=3 * per_cell, seed=seed)
    summary["transcribe"] = step("transcribe (faster-whisper tiny.en)", transcribe, ws)
    summary["annotate"] = step("annotate (simulated raters)", _annotate, ws, label_studio=label_studio,
                               n_raters=n_raters, p_correct=p_correct, seed=seed, base=out)
    from casebench.perception import perceive

    summary["perception"] = step("perception check (probe, raters)", perceive, ws, n_boot=n_boot, seed=seed)
    agreement = step("agreement", run_agreement, ws.root, n_boot=n_boot, seed=seed)
    write_agreement_report(agreement, ws.reports_dir / "agreement")
    summary["agreement"] = {d: r["krippendorff_alpha"] for d, r in agreement["dimensions"].items()}
    per_rater = agreement["dimensions"]["acoustic_emotion"]["per_rater"]
    summary["least_agreeing_rater"] = min(per_rater, key=lambda p: p["agreement_with_consensus"] or 0)
    summary["aggregate"] = step("aggregate (majority vote, conflict tags)", aggregate, ws).report
    summary["split"] = step("split (speaker-disjoint, stratified)", split, ws, ratios={"train": 0.6, "dev": 0.1,
                                                                                       "test": 0.3}, seed=seed)
    summary["degrade"] = step(f"degrade the test clips ({', '.join(CONDITIONS)})", degrade, ws, CONDITIONS, seed=seed)
    summary["transcribe_degraded"] = step("transcribe the degraded copies", transcribe, ws)
    release = step("audit → publish → load back", split_audit_publish, ws, out / "published", resplit=False,
                   seed=seed, hide_test_labels=True, n_boot=min(n_boot, 200), card=_card_fields())
    summary["release"] = {"audit_passed": release["audit"]["passed"], "loaded": release["loaded"],
                          "audio_roundtrip": release["audio_roundtrip"], "published": str(out / "published"),
                          "gold": release["publish"].get("gold")}
    gold = Path(release["publish"]["gold"])
    summary["baselines"] = {}
    preds_dir = out / "predictions"
    from casebench.benchmarks import adhoc_benchmark
    from casebench.report import write_report

    bench = adhoc_benchmark(gold, ws.taxonomy.name, name="casebench-demo-test")
    for name, preds in step("reference baselines", _baselines, ws, preds_dir, seed).items():
        results = evaluate(preds, bench, n_boot=n_boot, seed=seed, group_by="gender",
                           model=model_info(name, "demo", trained_on=["casebench-demo"]))
        save(results, out / "results" / f"{name}.json")
        write_report(results, out / "reports" / name)
        b = {k: results["splits"].get(s, {}).get(m) for k, s, m in (
            ("accuracy_conflict", "conflict", "accuracy"), ("accuracy_congruent", "congruent", "accuracy"),
            ("text_following_rate", "conflict", "text_following_rate"))}
        rob = (results.get("robustness") or {}).get("conditions", {})
        b["accuracy_drop"] = {c: rob[c]["drop"]["accuracy"] for c in CONDITIONS if c in rob}
        groups = (results.get("groups") or {}).get("gender") or {}
        b["gender"] = {g: v["metrics"]["accuracy"] for g, v in groups.get("groups", {}).items()}
        b["gender_not_ranked"] = groups.get("not_ranked", {})
        summary["baselines"][name] = b
    summary["probe"] = step(f"{PROBE} (casebench predict: Whisper encoder + linear probe)", _probe, ws, gold, out,
                            n_boot, seed)
    summary["leaderboard"] = step("leaderboard (static export)", _leaderboard, out, gold, preds_dir, n_boot, seed)
    summary["times_s"] = step.times
    if console is not None:
        _print_summary(summary, ws, console)
    return summary


def _card_fields() -> dict:
    """The fields only a curator can fill, filled for the demo corpus."""
    return {"licence": "CC0-1.0", "consent": "synthetic voices only (espeak-ng); no human speakers",
            "summary": "A small CASE-style conflict set made by casebench demo: sentences whose words carry one "
                       "ekman7 emotion spoken by espeak-ng with the prosody of another, rated by simulated raters.",
            "authors": "casebench demo", "guidelines": "annotation/ in the casebench repository",
            "limitations": "espeak-ng prosody is a crude emotion signal; the raters are simulated."}


def _baselines(ws, preds_dir: Path, seed: int) -> dict[str, Path]:
    """Each baseline's predictions for the test clips and their degraded copies, in one file per system."""
    from casebench.baselines import run_baseline

    preds_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("majority", "text", "acoustic", "fusion"):
        parts = []
        for split_name in ("test", *(f"test.{c}" for c in CONDITIONS)):
            part = preds_dir / f".{name}.{split_name}.jsonl"
            run_baseline(name, ws, split=split_name, out=part, seed=seed)
            parts.append(part.read_bytes())
            part.unlink()
        (preds_dir / f"{name}.jsonl").write_bytes(b"".join(parts))
        out[name] = preds_dir / f"{name}.jsonl"
    return out


def _probe(ws, gold: Path, out: Path, n_boot: int, seed: int) -> dict:
    """``probe:whisper-tiny.en`` fitted on the workspace's train split, run on its clean test clips and scored
    on them (the degraded copies are left out: a Whisper encoding per clip is the demo's dearest step)."""
    import pandas as pd

    from casebench.benchmarks import DEGRADED_SEP, adhoc_benchmark
    from casebench.evaluate import evaluate
    from casebench.predict import predict
    from casebench.report import write_report
    from casebench.results import save

    table = pd.read_csv(gold, dtype=str, keep_default_na=False)
    clean = out / "benchmark" / "casebench-demo-test-clean.csv"
    clean.parent.mkdir(parents=True, exist_ok=True)
    table[~table["id"].str.contains(DEGRADED_SEP, regex=False)].to_csv(clean, index=False)
    bench = adhoc_benchmark(clean, ws.taxonomy.name, name="casebench-demo-test-clean")
    preds = out / "probe" / "probe-whisper-tiny.en.jsonl"
    preds.parent.mkdir(parents=True, exist_ok=True)
    run = predict(PROBE, bench, preds, workspace=ws.root, split="test", train=ws.root)
    results = evaluate(preds, bench, n_boot=n_boot, seed=seed, group_by="gender")
    save(results, out / "results" / "probe-whisper-tiny.en.json")
    write_report(results, out / "reports" / "probe-whisper-tiny.en")
    g = bench.load_gold()
    entry = {k: results["splits"].get(s, {}).get(m) for k, s, m in (
        ("accuracy_conflict", "conflict", "accuracy"), ("accuracy_congruent", "congruent", "accuracy"),
        ("text_following_rate", "conflict", "text_following_rate"), ("conflict_gap", "all", "conflict_gap"))}
    entry.update(predictions=str(preds), n_speakers=int(len(set(g.speaker.tolist()))) if g.speaker is not None
                 else None, n_conflict=int(g.is_conflict.sum()), n_congruent=int(g.is_congruent.sum()),
                 predict_s=round(run["prepare_s"] + run["elapsed_s"], 1), n_predicted=run["n_predicted"],
                 trained_on=(run.get("model_metadata") or {}).get("trained_on"))
    return entry


def probe_reading(probe: dict, acoustic: dict | None) -> list[str]:
    """What the probe's conflict figures mean, in sentences (printed by the demo; docs/predict.md says the same).

    >>> e = lambda v, lo, hi: {"value": v, "ci_low": lo, "ci_high": hi}
    >>> probe = {"accuracy_conflict": e(.5, .4, .6), "accuracy_congruent": e(.8, .7, .9),
    ...          "text_following_rate": e(.3, .2, .4), "conflict_gap": e(.3, .1, .5), "n_speakers": 6}
    >>> lines = probe_reading(probe, {"text_following_rate": e(.1, .05, .15)})
    >>> lines[1][:60]
    'Here it drops from 0.80 on congruent clips to 0.50 on confli'
    >>> lines[2][-41:]
    'the Whisper probe follows the words more.'
    """
    def ci(entry: dict) -> str:
        return f"95% CI [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]"

    lines = ["A Whisper encoder was trained to recognise words, so its features carry what was said as well as how; "
             "a probe fitted on them may use the words' emotion, and on conflict clips that pulls it away from the "
             "voice. The eGeMAPS (acoustic) baseline hears pitch, loudness, tempo and voice quality only: it cannot "
             "follow words it never hears."]
    gap, tf = probe.get("conflict_gap"), probe.get("text_following_rate")
    conf, cong = probe.get("accuracy_conflict"), probe.get("accuracy_congruent")
    speakers = f"over {probe.get('n_speakers')} test speakers"
    if not (gap and tf and conf and cong) or gap.get("value") is None:
        return [*lines, "This test split has no conflict or no congruent clips, so the effect is not measured here."]
    if gap["ci_low"] > 0:
        lines.append(f"Here it drops from {cong['value']:.2f} on congruent clips to {conf['value']:.2f} on conflict "
                     f"clips (gap {gap['value']:.2f}, {ci(gap)}, {speakers}): the words pull it off the voice.")
    else:
        lines.append(f"Here congruent {cong['value']:.2f} vs conflict {conf['value']:.2f} (gap {gap['value']:.2f}, "
                     f"{ci(gap)}, {speakers}): no drop this test split can tell from chance; a larger test set "
                     "(more speakers) would be needed to see one.")
    a = (acoustic or {}).get("text_following_rate")
    if a and a.get("value") is not None:
        more = tf["ci_low"] > a["ci_high"]
        lines.append(f"It answers with the words' emotion on {tf['value']:.0%} of conflict clips ({ci(tf)}), the "
                     f"acoustic baseline on {a['value']:.0%} ({ci(a)}): "
                     + ("the Whisper probe follows the words more." if more else
                        "the intervals overlap, so this run cannot say the probe follows the words more."))
    return lines


def _leaderboard(out: Path, gold: Path, preds_dir: Path, n_boot: int, seed: int) -> dict:
    """A local leaderboard for the demo's test set: the baselines submitted, scored by the worker's function,
    exported as a static site."""
    import yaml

    from casebench.leaderboard.config import LeaderboardConfig, parse_board_arg
    from casebench.leaderboard.export import export_site
    from casebench.leaderboard.service import Leaderboard
    from casebench.leaderboard.worker import Worker

    spec = out / "benchmark" / "casebench-demo.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump({
        "name": "casebench-demo", "version": "1.0", "taxonomy": "ekman7", "gold": str(gold),
        "description": "The demo corpus's test split (synthesized conflict clips).", "licence": "CC0-1.0",
        "citation": "casebench demo", "corpora": ["casebench-demo"],
        "tasks": [{"name": "emotion", "kind": "categorical", "main_metric": "macro_f1"}],
        "splits": ["all", "conflict", "congruent"]}))
    data_dir = out / "leaderboard-data"
    # one public board over every gold row (the demo shows its test scores; items="all": the gold's split column
    # says "test", and a board otherwise scores the rows of its own phase)
    cfg = LeaderboardConfig(boards=[parse_board_arg(str(spec), items="all")], data_dir=data_dir, n_boot=n_boot,
                            seed=seed,
                            workers=1, secret_key="casebench-demo")
    lb = Leaderboard(cfg)
    user = lb.user_by_name("demo") or lb.create_user("demo", "casebench-demo-password")
    board = next(iter(lb.boards))
    import shutil
    import tempfile

    for preds in sorted(preds_dir.glob("*.jsonl")):
        tmp = Path(tempfile.mkstemp(suffix=".jsonl")[1])
        shutil.copyfile(preds, tmp)
        lb.accept(user, board, tmp, preds.name, {"model_name": preds.stem, "model_revision": "demo"},
                  idempotency_key=f"demo-{preds.stem}")
    worker = Worker(lb, processes=1).start()
    try:
        deadline = time.monotonic() + 600
        while any(s.status in ("queued", "running") for s in lb.submissions_of(user.id)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        worker.stop()
    return export_site(lb, out / "site")


def _print_summary(summary: dict, ws, console) -> None:
    from rich.table import Table

    from casebench.report import fmt

    console.rule("[bold]casebench demo: summary")
    labels = ws.read_df("labels")
    conflict_share = float(labels["is_conflict"].fillna(False).mean()) if "is_conflict" in labels else float("nan")
    console.print(f"clips: {len(ws.read_df('clips'))}  ·  conflict share after aggregation: {conflict_share:.0%}  "
                  f"·  audit passed: {summary['release']['audit_passed']}")
    agr = Table("dimension", "Krippendorff α [95% CI]", title="agreement", title_justify="left", show_edge=False)
    for dim, entry in summary["agreement"].items():
        agr.add_row(dim, fmt(entry))
    console.print(agr)
    from casebench.perception import summary_line

    console.print("perception of the synthesized voices: " + summary_line(summary["perception"]))
    worst = summary["least_agreeing_rater"]
    console.print(f"the last simulated rater answers at random; the per-rater check names it: {worst['rater_id']} "
                  f"agrees with the others' majority on {worst['agreement_with_consensus']:.0%} of clips")
    table = Table("baseline", "accuracy, conflict clips", "accuracy, congruent clips", "follows the words",
                  title="baselines on the test split (95% CIs over speakers)", title_justify="left",
                  show_edge=False)
    for name, b in summary["baselines"].items():
        table.add_row(name, fmt(b["accuracy_conflict"]), fmt(b["accuracy_congruent"]), fmt(b["text_following_rate"]))
    probe = summary.get("probe")
    if probe:
        table.add_row(PROBE, fmt(probe["accuracy_conflict"]), fmt(probe["accuracy_congruent"]),
                      fmt(probe["text_following_rate"]))
    console.print(table)
    if probe:
        console.print(f"[bold]{PROBE}[/] (fitted on the train split; {probe['n_conflict']} conflict and "
                      f"{probe['n_congruent']} congruent test clips, CIs over {probe['n_speakers']} speakers):")
        for line in probe_reading(probe, summary["baselines"].get("acoustic")):
            console.print("  " + line, highlight=False)
    rob = Table("baseline", *(f"drop at {c}" for c in CONDITIONS), "accuracy by gender",
                title="robustness: accuracy drop from clean (paired, 95% CI); fairness", title_justify="left",
                show_edge=False)
    small = set()
    for name, b in summary["baselines"].items():
        gender = ", ".join(f"{g} {e['value']:.2f}" for g, e in b["gender"].items() if e and e.get("value") is not None)
        small |= set(b["gender_not_ranked"].values())
        rob.add_row(name, *(fmt(b["accuracy_drop"].get(c)) for c in CONDITIONS), gender + (" *" if small else ""))
    console.print(rob)
    if small:
        console.print("* groups too small to rank: " + "; ".join(sorted(small)))
    console.print(f"workspace: {summary['workspace']}")
    console.print(f"published dataset: {summary['release']['published']}")
    console.print(f"reports: {ws.reports_dir} (corpus), {Path(summary['out']) / 'reports'} (baselines: confusion, "
                  "conflict breakdown, score against SNR, gender)")
    console.print(f"results: {Path(summary['out']) / 'results'}")
    console.print(f"leaderboard site: {summary['leaderboard'].get('out')}/index.html")
    console.print("step times (s): " + ", ".join(f"{k} {v}" for k, v in summary["times_s"].items()))
