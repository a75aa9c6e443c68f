"""Cross-corpus benchmarks: several imported corpora, mapped into one taxonomy, as one gold table and spec.

:func:`benchmark_from` reads workspaces (typically made by ``casebench import-corpus``), maps each one's labels
from its own taxonomy into the benchmark's with the taxonomy YAML mappings, and writes ``gold.csv`` plus a spec
``<name>.yaml`` that :func:`casebench.benchmarks.get_benchmark` loads. The spec lists the corpora (so a model
declaring one of them in ``--trained-on`` is marked not zero-shot on it) and has one ``cross-corpus`` split
per corpus (selected by the gold's ``corpus`` column) beside ``all`` (and ``conflict``/``congruent`` when a
corpus has text labels, as EMIS does). ``casebench evaluate`` then scores every corpus and the mean over them
(``results["cross_corpus_mean"]``).

Per corpus, nothing is dropped silently:

- a categorical label with no counterpart in the benchmark taxonomy drops the item (counted per class);
- a distribution keeps the mass of the classes that map, renormalised, and its hard label becomes the argmax
  of the mapped distribution (as the importers do); an item keeping less than half its mass is dropped from
  the categorical and distribution tasks (counted);
- valence/arousal/dominance are kept on their scale when every corpus uses the same one (``[import] vad_scale``);
  when the scales differ each is rescaled linearly to 1-5, and a corpus whose scale is unknown loses its
  dimensional gold; both are noted in the spec's description;
- speakers become ``<corpus>:<speaker>`` (so two corpora's ``speaker1`` stay apart in the speaker bootstrap);
  an unknown speaker becomes its own cluster ``<corpus>:?<clip_id>`` rather than one giant "unknown" speaker.

>>> import tempfile, pathlib
>>> from casebench.corpora import import_corpus
>>> from casebench.corpora.testing import make_crema_d, make_emis
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> a = import_corpus("crema-d", make_crema_d(tmp / "c"), tmp / "ws-c").workspace
>>> b = import_corpus("emis", make_emis(tmp / "e"), tmp / "ws-e").workspace
>>> built = benchmark_from([a, b], tmp / "bench", taxonomy="iemocap4", name="xc")
>>> built["corpora"]["crema-d"]["dropped"]
{'disgust': 1, 'fear': 1}
>>> from casebench.benchmarks import get_benchmark
>>> [s.name for s in get_benchmark(built["spec"]).splits]
['all', 'conflict', 'congruent', 'crema-d', 'emis']
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from casebench.errors import ConfigError, InputError, Problem

log = logging.getLogger("casebench.crosscorpus")

DIMENSIONS = ("valence", "arousal", "dominance")
RESERVED_SPLITS = ("all", "conflict", "congruent")
#: The scale dimensional gold is rescaled to when the corpora's scales differ.
COMMON_VAD_SCALE = (1.0, 5.0)
#: The benchmark taxonomy of workspaces that do not share one (``--taxonomy`` picks another).
DEFAULT_TAXONOMY = "ekman7"


def _value(v: Any) -> Any:
    """None for pandas' missing values (None, NaN), else the value."""
    return None if v is None or (isinstance(v, float) and v != v) else v


def _corpus_rows(ws, target, split: str | None, notes: list[str]) -> tuple[list[dict], dict]:
    """Gold rows of one workspace mapped into ``target``, and what mapping did (counts)."""
    import numpy as np

    from casebench.corpora.base import MIN_MASS, UNMAPPED_MASS

    corpus = ws.name
    labels = ws.read_df("labels")
    clips = ws.read_df("clips").set_index("clip_id")
    if split is not None:
        if not ws.has_table("splits"):
            raise ConfigError(f"{ws.root}: no splits table, so split {split!r} cannot be chosen (the corpus has "
                              "no official partition; run `casebench split` or leave out --split)")
        sp = ws.read_df("splits")
        names = sorted(set(sp["split"].astype(str)))
        if split not in names:
            raise ConfigError(f"{ws.root}: no split {split!r}; its splits are {names}")
        labels = labels[labels["clip_id"].isin(set(sp.loc[sp["split"] == split, "clip_id"]))]
    native = ws.taxonomy
    table = native.mapping_to(target.name)  # ConfigError when no mapping exists
    matrix = np.zeros((len(native), len(target)))
    for i, lab in enumerate(native.labels):
        if table[lab] is not None:
            matrix[i, target.index[table[lab]]] = 1.0
    dropped: Counter = Counter()
    rows = []
    n_dist = n_vad = 0
    for rec in labels.to_dict("records"):
        rec = {k: _value(v) for k, v in rec.items()}
        cid = rec["clip_id"]
        acoustic, dist = rec.get("acoustic_label"), rec.get("acoustic_dist")
        row: dict[str, Any] = {"id": cid, "corpus": corpus}
        if dist is not None and len(dist):
            d = np.asarray(dist, dtype=float)
            out = d @ matrix
            if out.sum() < MIN_MASS * d.sum() or out.sum() <= 0:
                dropped[UNMAPPED_MASS] += 1
            else:
                out = out / out.sum()
                row.update({lab: float(v) for lab, v in zip(target.labels, out, strict=True)})
                row["acoustic_label"] = target.labels[int(np.argmax(out))]
                n_dist += 1
        elif acoustic is not None:
            mapped = table[acoustic]
            if mapped is None:
                dropped[acoustic] += 1
            else:
                row["acoustic_label"] = mapped
        semantic = rec.get("semantic_label")
        if semantic is not None:
            mapped = table[semantic]
            if mapped is None:
                dropped[f"{semantic} (text)"] += 1
            else:
                row["semantic_label"] = mapped
        if rec.get("is_conflict") is not None and "semantic_label" in row:
            # a curated tag (aggregate's thresholds, mine-conflicts' voice-only rule) beats voice != words;
            # labels that merge in the target taxonomy are no conflict there
            row["is_conflict"] = bool(rec["is_conflict"]) and row.get("acoustic_label") != row["semantic_label"]
        vad = {d: float(rec[d]) for d in DIMENSIONS if rec.get(d) is not None}
        if vad:
            row.update(vad)
            n_vad += 1
        if "acoustic_label" not in row and not vad:
            continue  # nothing left to score for this item (counted above)
        spk = _value(clips.at[cid, "speaker_id"]) if cid in clips.index else None
        row["speaker_id"] = f"{corpus}:{spk}" if spk is not None else f"{corpus}:?{cid}"
        row["gender"] = _value(clips.at[cid, "gender"]) if cid in clips.index else None
        rows.append(row)
    for cls, n in sorted(dropped.items()):
        notes.append(f"{corpus}: dropped {n} item(s) of class {cls!r} (no counterpart in {target.name})"
                     if cls != UNMAPPED_MASS else
                     f"{corpus}: dropped {n} item(s) whose distribution has less than half its mass on classes of "
                     f"{target.name}")
    info = {"workspace": str(ws.root), "taxonomy": native.name, "n_labels": int(len(labels)), "n_items": len(rows),
            "n_distributions": n_dist, "n_dimensional": n_vad, "dropped": dict(sorted(dropped.items())),
            "vad_scale": (ws.section("import").get("vad_scale") or None), "split": split,
            "labels": dict(sorted(Counter(r["acoustic_label"] for r in rows if "acoustic_label" in r).items()))}
    return rows, info


def _harmonise_vad(rows: list[dict], infos: dict[str, dict], notes: list[str]) -> tuple[float, float] | None:
    """Make the dimensional gold comparable across corpora (see the module docstring); returns its scale."""
    with_vad = {c: i for c, i in infos.items() if i["n_dimensional"]}
    if not with_vad:
        return None
    scales = {c: tuple(i["vad_scale"]) if i["vad_scale"] else None for c, i in with_vad.items()}
    unknown = sorted(c for c, s in scales.items() if s is None)
    known = {c: s for c, s in scales.items() if s is not None}
    if unknown and known:
        notes.append(f"dimensional gold of {', '.join(unknown)} dropped: its scale is not recorded "
                     "([import] vad_scale) while other corpora's are")
        for r in rows:
            if r["corpus"] in unknown:
                for d in DIMENSIONS:
                    r.pop(d, None)
        for c in unknown:
            infos[c]["n_dimensional"] = 0
    if not known:
        return None
    if len(set(known.values())) == 1:
        return next(iter(known.values()))
    lo_t, hi_t = COMMON_VAD_SCALE
    notes.append("valence/arousal/dominance rescaled linearly to 1-5 (the corpora's scales differ: "
                 + ", ".join(f"{c} {s[0]:g}-{s[1]:g}" for c, s in sorted(known.items())) + ")")
    for r in rows:
        s = known.get(r["corpus"])
        if s is None:
            continue
        for d in DIMENSIONS:
            if d in r:
                r[d] = lo_t + (hi_t - lo_t) * (r[d] - s[0]) / (s[1] - s[0])
    return COMMON_VAD_SCALE


def benchmark_from(workspaces: Sequence[str | os.PathLike], out: str | os.PathLike, *, taxonomy: str | None = None,
                   name: str | None = None, version: str = "1.0", split: str | None = None,
                   description: str | None = None, overwrite: bool = False) -> dict:
    """Build a cross-corpus benchmark (``gold.csv`` + ``<name>.yaml`` in ``out``) from imported workspaces.

    Args:
        workspaces: workspace folders; each one's name is its corpus name (as ``import-corpus`` sets it) and
            must be unique.
        out: the folder to write (new or empty unless ``overwrite``).
        taxonomy: the benchmark taxonomy every corpus is mapped into; default the workspaces' own when they
            share one (a plutchik32 corpus stays plutchik32), else ``ekman7``.
        name, version, description: of the benchmark (name default: ``xc-<corpora>``).
        split: take only the clips of this split of each workspace (e.g. ``test`` of the official partitions);
            default every labelled clip.

    Returns:
        ``spec`` and ``gold`` paths, ``corpora`` (per corpus: items, dropped classes, labels), ``notes`` (every
        drop and rescaling, one line each; also logged) and the task and split names.

    Raises:
        ConfigError: fewer than one workspace, duplicate corpus names, a corpus named like a reserved split,
            no mapping from a corpus's taxonomy to ``taxonomy``, a missing split, or ``out`` not empty.
    """
    import pandas as pd
    import yaml

    from casebench import __version__
    from casebench.benchmarks import get_benchmark
    from casebench.taxonomy import get_taxonomy
    from casebench.workspace import Workspace, atomic_write_text, lineage, stale_problems

    if not workspaces:
        raise ConfigError("benchmark-from needs at least one workspace")
    opened = [Workspace.open(w) for w in workspaces]
    if taxonomy is None:
        own = {ws.taxonomy.name for ws in opened}
        taxonomy = own.pop() if len(own) == 1 else DEFAULT_TAXONOMY
    target = get_taxonomy(taxonomy)
    names = [ws.name for ws in opened]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two workspaces are named {dupes}: a cross-corpus benchmark needs one workspace per "
                          "corpus (the workspace name is the corpus name)")
    bad = [n for n in names if n in RESERVED_SPLITS]
    if bad:
        raise ConfigError(f"corpus name(s) {bad} clash with the split names {list(RESERVED_SPLITS)}")
    out = Path(out).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    name = name or "xc-" + "-".join(names)
    notes: list[str] = []
    rows: list[dict] = []
    infos: dict[str, dict] = {}
    for ws in opened:
        r, info = _corpus_rows(ws, target, split, notes)
        if not r:
            raise InputError(Problem(f"no item of {ws.name} is left after mapping into {target.name}",
                                     file=str(ws.root), expected="labels with a counterpart in the taxonomy"))
        rows += r
        infos[ws.name] = info
    vad_scale = _harmonise_vad(rows, infos, notes)
    command = ("casebench benchmark-from " + " ".join(str(ws.root) for ws in opened) + f" --out {out} --taxonomy "
               f"{target.name}" + (f" --split {split}" if split else "") + " --overwrite")
    built_from = [lineage(ws, ("clips", "labels", "splits"), step="benchmark-from", command=command)
                  for ws in opened]
    for ws in opened:  # labels older than their annotations, splits older than the labels: say so
        notes += [f"{ws.name}: {p}" for p in stale_problems(ws)]
    for n in notes:
        log.warning("%s", n)
    has_sem = any("semantic_label" in r for r in rows)
    has_dist = any(target.labels[0] in r for r in rows)
    dims = [d for d in DIMENSIONS if any(d in r for r in rows)]
    columns = ["id", "corpus", "speaker_id", "gender", "acoustic_label"] + (["semantic_label"] if has_sem else []) \
        + (["is_conflict"] if any("is_conflict" in r for r in rows) else []) \
        + (list(target.labels) if has_dist else []) + dims
    gold = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    out.mkdir(parents=True, exist_ok=True)
    gold_path = out / "gold.csv"
    atomic_write_text(gold_path, gold.to_csv(index=False, lineterminator="\n"))
    tasks = [{"name": "emotion", "kind": "categorical", "target": "acoustic_label", "main_metric": "uar"}]
    if has_dist:
        tasks.append({"name": "distribution", "kind": "distribution", "main_metric": "js"})
    if dims:
        tasks.append({"name": "dimensional", "kind": "dimensional", "dimensions": dims, "main_metric": "ccc"})
    splits: list[Any] = ["all"] + (["conflict", "congruent"] if has_sem else [])
    splits += [{"name": c, "kind": "cross-corpus", "column": "corpus", "value": c} for c in names]
    desc = description or (f"Cross-corpus benchmark over {', '.join(names)}, mapped into {target.name}"
                           + (f" (split {split!r} of each)" if split else "") + ".")
    if notes:
        desc += " Notes: " + " ".join(n.rstrip(".") + "." for n in notes)
    spec = {"name": name, "version": str(version), "description": desc, "taxonomy": target.name,
            "gold": gold_path.name, "licence": "each corpus keeps its own licence (see build.sources)",
            "citation": "", "corpora": names, "tasks": tasks, "splits": splits,
            "build": {"casebench_version": __version__,
                      "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "vad_scale": list(vad_scale) if vad_scale else None, "notes": notes,
                      "sources": [{"corpus": c, **i} for c, i in infos.items()],
                      "built_from": built_from}}
    spec_path = out / f"{name}.yaml"
    atomic_write_text(spec_path, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100))
    bench = get_benchmark(spec_path)
    bench.load_gold()  # the same checks evaluate runs: a bad gold fails here, not at the first submission
    return {"name": name, "version": str(version), "spec": str(spec_path), "gold": str(gold_path),
            "taxonomy": target.name, "n_items": len(rows), "corpora": infos, "notes": notes,
            "tasks": [t["kind"] for t in tasks], "splits": [s.name for s in bench.splits],
            "vad_scale": list(vad_scale) if vad_scale else None}
