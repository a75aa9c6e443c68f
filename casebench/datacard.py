"""The data card of a published corpus, generated from the workspace (templates in ``casebench/data/cards/``).

Nothing in the card is written by hand except the fields only the curator knows (:data:`REQUIRED_FIELDS`:
licence, consent, summary, authors; plus the annotation guidelines when the corpus has annotations). Those
come from keyword arguments, ``casebench.toml`` (``[project] licence``, ``[card]`` for the rest) or an
interactive prompt, and a card is never rendered with one of them empty: :func:`card_fields` raises a
:class:`~casebench.errors.ConfigError` naming every missing field and where to give it.

Everything else is computed (:func:`card_context`): sizes, how the clips were made (``[synth]``/
``[collect]`` parameters, sources), the transcription model, the annotation process (raters, ratings per
clip, dimensions), agreement with 95% bootstrap CIs (:mod:`casebench.agreement`), label and conflict
statistics with a conflict-pair heatmap PNG, speaker/gender/language breakdowns, the split method and the
audit verdict. :func:`render_card` fills ``data_cards/card.md.j2`` with it.

When test labels are hidden, every statistic that involves labels or ratings (label counts, heatmap,
agreement) is computed over the clips whose labels are published, and the card says so.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from casebench.errors import ConfigError

#: Fields only the curator can fill; the card is never published with one of them empty.
REQUIRED_FIELDS: dict[str, str] = {
    "licence": "licence of the corpus, an SPDX id such as CC-BY-4.0 (or any name plus licence_url)",
    "consent": "how the speakers consented to recording and release, or why no consent was needed "
               "(e.g. synthetic voices only)",
    "summary": "one paragraph: what the corpus is and what it is for",
    "authors": "who made the corpus (comma-separated names)",
}
#: Required when the corpus has annotations.
REQUIRED_WITH_ANNOTATIONS: dict[str, str] = {
    "guidelines": "link to (or a short summary of) the guidelines the raters followed",
}
#: Fields used when given.
OPTIONAL_FIELDS: dict[str, str] = {
    "licence_url": "link to the licence text (required for a licence the Hub does not know)",
    "pretty_name": "display name on the Hub",
    "homepage": "project page",
    "contact": "who to write to about the corpus",
    "citation": "BibTeX to cite (default: generated from authors, name, version, year)",
    "intended_uses": "what the corpus is meant for (added to casebench's default text)",
    "limitations": "known limitations (added to casebench's default text)",
    "annotators": "who the raters were (crowd, experts, demographics)",
    "personal_information": "personal or sensitive information in the audio or metadata, and how it was handled",
}

#: Packaged folder of the card templates (see :mod:`casebench.resources`); a folder of one's own can be given
#: with ``template_dir`` or the CASEBENCH_DATA_CARDS environment variable.
CARDS_RESOURCE = "data/cards"



def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, (list, tuple)) and not v)


def card_fields(ws: Any, given: Mapping[str, Any] | None = None, *,
                prompt: Callable[[str, str], str | None] | None = None, save: bool = True,
                with_annotations: bool | None = None) -> dict[str, Any]:
    """The curator's fields: ``given`` over ``[card]`` over ``[project] licence``; missing ones prompted.

    Args:
        ws: the workspace.
        given: values from the caller (CLI options); None values are ignored.
        prompt: ``prompt(field, description) -> value`` for each missing required field (the CLI passes an
            interactive prompt when stdin is a terminal).
        save: write given and prompted values back (``licence`` to ``[project]``, the rest to ``[card]``)
            so the next publish does not ask again.
        with_annotations: whether :data:`REQUIRED_WITH_ANNOTATIONS` apply (default: the workspace has an
            annotations table).

    Raises:
        ConfigError: naming every required field still empty, what it is, and how to give it.
    """
    known = {**REQUIRED_FIELDS, **REQUIRED_WITH_ANNOTATIONS, **OPTIONAL_FIELDS}
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = [k for k in given if k not in known]
    if unknown:
        from casebench.errors import did_you_mean

        hint = did_you_mean(unknown[0], known)
        raise ConfigError(f"unknown data card field(s) {unknown}; expected some of {sorted(known)}"
                          + (f" ({hint})" if hint else ""))
    fields: dict[str, Any] = {"licence": ws.config.get("project", {}).get("licence")}
    fields.update({k: v for k, v in ws.section("card").items() if k in known})
    fields.update(given)
    if with_annotations is None:
        with_annotations = ws.has_table("annotations")
    required = {**REQUIRED_FIELDS, **(REQUIRED_WITH_ANNOTATIONS if with_annotations else {})}
    asked: dict[str, Any] = {}
    if prompt is not None:
        for name, what in required.items():
            if _blank(fields.get(name)):
                value = prompt(name, what)
                if not _blank(value):
                    asked[name] = fields[name] = str(value).strip()
    missing = [k for k in required if _blank(fields.get(k))]
    if missing:
        lines = [f"  {k}: {required[k]}" for k in missing]
        opts = " ".join(f"--{k.replace('_', '-')} TEXT" for k in missing)
        raise ConfigError("the data card cannot be published with these fields empty:\n" + "\n".join(lines)
                          + f"\ngive them as options ({opts}), in casebench.toml ([project] licence, [card] "
                            "for the others), or run publish in a terminal to be asked")
    if save and (given or asked):
        new = {**given, **asked}
        card = ws.section("card")
        card.update({k: v for k, v in new.items() if k != "licence"})
        if "licence" in new and new["licence"] != ws.config["project"].get("licence"):
            ws.config["project"]["licence"] = new["licence"]
            ws.save_config()
        if card != ws.section("card"):
            ws.set_section("card", card)
    if isinstance(fields.get("authors"), str):
        fields["authors"] = [a.strip() for a in fields["authors"].split(",") if a.strip()]
    return fields


# --------------------------------------------------------------------------------------------------
# Licences

#: SPDX ids the Hub's ``license`` field accepts (lower-cased there), with their URLs.
HUB_LICENCES = {
    "apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0", "mit": "https://opensource.org/licenses/MIT",
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-nd-4.0": "https://creativecommons.org/licenses/by-nd/4.0/",
    "cc-by-nc-sa-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "cc-by-nc-nd-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "cc-by-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "cc-by-sa-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "cc-by-nc-3.0": "https://creativecommons.org/licenses/by-nc/3.0/",
    "cc-by-nc-sa-3.0": "https://creativecommons.org/licenses/by-nc-sa/3.0/",
    "cc-by-2.0": "https://creativecommons.org/licenses/by/2.0/",
    "odc-by": "https://opendatacommons.org/licenses/by/1-0/",
    "odbl": "https://opendatacommons.org/licenses/odbl/1-0/",
    "pddl": "https://opendatacommons.org/licenses/pddl/1-0/",
    "cdla-permissive-2.0": "https://cdla.dev/permissive-2-0/", "cdla-sharing-1.0": "https://cdla.dev/sharing-1-0/",
    "gpl-3.0": "https://www.gnu.org/licenses/gpl-3.0.html", "bsd-3-clause": "https://opensource.org/licenses/BSD-3-Clause",
    "openrail": "https://huggingface.co/blog/open_rail",
}


def hub_licence(licence: str, licence_url: str | None = None) -> dict[str, str]:
    """The Hub's licence fields: ``{"license": id}`` for a known SPDX id, else ``other`` + name + link.

    >>> hub_licence("CC-BY-4.0")
    {'license': 'cc-by-4.0', 'url': 'https://creativecommons.org/licenses/by/4.0/'}
    >>> hub_licence("Corpus Licence v2", "https://example.org/licence")["license_name"]
    'corpus-licence-v2'

    Raises:
        ConfigError: an unknown licence without ``licence_url``.
    """
    key = licence.strip().lower()
    if key in HUB_LICENCES:
        return {"license": key, "url": HUB_LICENCES[key]}
    if not licence_url:
        raise ConfigError(f"licence {licence!r} is not one the Hub knows ({', '.join(sorted(HUB_LICENCES)[:6])}, "
                          "...); give its text's address with --licence-url (or [card] licence_url)")
    slug = re.sub(r"[^a-z0-9]+", "-", key).strip("-") or "custom"
    return {"license": "other", "license_name": slug, "license_link": licence_url, "url": licence_url}


# --------------------------------------------------------------------------------------------------
# Statistics


def size_category(n: int) -> str:
    """The Hub's size bucket for ``n`` examples.

    >>> size_category(999), size_category(1000), size_category(25_000)
    ('n<1K', '1K<n<10K', '10K<n<100K')
    """
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T"


def _counts(series: pd.Series, order: Sequence[str] | None = None) -> list[dict]:
    s = series.dropna().astype(str)
    counts = s.value_counts()
    keys = list(order) if order is not None else sorted(counts.index, key=lambda k: (-counts[k], k))
    total = int(counts.sum())
    return [{"name": k, "n": int(counts.get(k, 0)), "share": (counts.get(k, 0) / total) if total else 0.0}
            for k in keys]


def conflict_heatmap(labels: pd.DataFrame, taxonomy: Sequence[str], path: Path) -> Path:
    """Write a PNG heatmap of clip counts per (acoustic label, semantic label) pair; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(taxonomy)
    index = {t: i for i, t in enumerate(taxonomy)}
    m = np.zeros((k, k), dtype=int)
    for a, s in zip(labels["acoustic_label"], labels["semantic_label"], strict=True):
        if isinstance(a, str) and isinstance(s, str) and a in index and s in index:
            m[index[a], index[s]] += 1
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(k), taxonomy, rotation=45, ha="right")
    ax.set_yticks(range(k), taxonomy)
    ax.set_xlabel("semantic label (the words)")
    ax.set_ylabel("acoustic label (the voice)")
    ax.set_title("clips per voice / words pair (diagonal = congruent)")
    if k <= 16:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if m[i, j] > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _agreement(annotations: pd.DataFrame, ws: Any, n_boot: int, seed: int) -> tuple[list[dict], dict]:
    """Rows of the card's agreement table: the same statistics, levels and channels as `casebench agreement`."""
    from casebench.annotation_schema import annotation_schema
    from casebench.annotations import agreement_reports, split_channels

    configured = ws.section("annotation").get("levels", {}) or {}
    reports = agreement_reports(split_channels(annotations), annotation_schema(ws), configured=configured,
                                n_boot=n_boot, seed=seed, collect_errors=True)
    rows, levels = [], {}
    for dim, rep in sorted(reports.items()):
        if "error" in rep:
            rows.append({"dimension": dim, "level": rep.get("level"), "error": rep["error"]})
            continue
        levels[dim] = rep["level"]
        per_class = [{"label": label, "n_chosen": c.get("n_chosen", 0), "text": _coef(c)}
                     for label, c in (rep.get("per_class_alpha") or {}).items() if c.get("n_chosen")]
        rows.append({"dimension": dim, "level": rep["level"], "n_units": rep["n_units"], "n_raters": rep["n_raters"],
                     "n_ratings": rep["n_ratings"], "per_class": per_class,
                     **{k: rep[k] for k in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1")}})
    return rows, levels


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _coef(c: Mapping[str, Any] | None) -> str:
    if not c:
        return "–"
    if not c.get("applicable", True) or c.get("value") is None:
        return "n/a"
    text = _fmt(c["value"])
    if c.get("ci_low") is not None and c.get("ci_high") is not None:
        text += f" [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
    return text


def corpus_kinds(labels: pd.DataFrame | None, annotations: pd.DataFrame | None, schema: Any = None) -> dict:
    """What the corpus is, from its labels, ratings and annotation schema, so the card describes it and
    leaves out what it is not:

    * ``conflict``: voice and words both labelled (some clip has an acoustic and a semantic label), so
      conflict and congruent clips exist as categories;
    * ``mixed``: raters could give several weighted emotions (the schema's mixed mode, or ratings with
      weights), so the label distributions are the primary target;
    * ``dimensional``: valence / arousal / dominance ratings were aggregated.

    ``channels`` lists the emotion channels with labels (``acoustic``, ``semantic``).

    >>> corpus_kinds(pd.DataFrame({"acoustic_label": ["joy"], "semantic_label": [None], "valence": [3.0]}), None)
    {'conflict': False, 'mixed': False, 'dimensional': True, 'channels': ['acoustic'], 'dimensions': ['valence']}
    """
    def has(df: pd.DataFrame | None, col: str) -> bool:
        return df is not None and col in df.columns and bool(df[col].notna().any())

    channels = [c for c in ("acoustic", "semantic") if has(labels, f"{c}_label")]
    mixed = bool(getattr(schema, "mixed", False)) or has(annotations, "meta_weights")
    dims = [d for d in ("valence", "arousal", "dominance") if has(labels, d)]
    return {"conflict": len(channels) == 2, "mixed": mixed, "dimensional": bool(dims), "channels": channels,
            "dimensions": dims}


def card_context(ws: Any, meta: pd.DataFrame, *, fields: Mapping[str, Any], split_counts: Mapping[str, Any],
                 audit_report: Mapping[str, Any] | None, allow_leakage: str | None, hide_test_labels: bool,
                 hidden_splits: Sequence[str], annotations: pd.DataFrame | None, transcripts: pd.DataFrame | None,
                 images_dir: Path, repo_id: str | None, configs: Mapping[str, Any], n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """Everything the card template shows, computed from the workspace (see the module docstring).

    ``meta`` is one row per published clip (clips ⋈ labels ⋈ splits): the caller's published set.
    """
    from casebench import __version__
    from casebench.degrade import card_section

    tax = list(ws.taxonomy.labels)
    project = ws.config["project"]
    # degraded copies (casebench degrade) are described in their own section, not counted as clips of the corpus
    clips_all = ws.read_df("clips")
    copies = set(clips_all.loc[clips_all["meta_source_clip"].notna(), "clip_id"].astype(str)) \
        if "meta_source_clip" in clips_all.columns else set()
    is_copy = meta["clip_id"].astype(str).isin(copies)
    degrade_ctx = card_section(ws)
    if degrade_ctx is not None or is_copy.any():
        degrade_ctx = {**(degrade_ctx or {}), "n_copies": int(is_copy.sum())}
    meta = meta[~is_copy]
    labelled = meta[~meta["split"].isin(hidden_splits)] if hide_test_labels else meta
    has_labels = "acoustic_label" in meta.columns and meta["acoustic_label"].notna().any()
    ctx: dict[str, Any] = {
        "name": project["name"], "version": project.get("version", ""), "taxonomy": ws.taxonomy.name,
        "labels": tax, "repo_id": repo_id,
        "fields": {**{k: None for k in (*REQUIRED_FIELDS, *REQUIRED_WITH_ANNOTATIONS, *OPTIONAL_FIELDS)},
                   **fields},
        "created_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "casebench_version": __version__, "hide_test_labels": hide_test_labels, "hidden_splits": list(hidden_splits),
        "configs": configs, "allow_leakage": allow_leakage, "degrade": degrade_ctx,
    }
    ctx["n_clips"] = int(len(meta))
    dur = pd.to_numeric(meta.get("duration_s"), errors="coerce") if "duration_s" in meta else pd.Series(dtype=float)
    ctx["hours"] = float(dur.sum() / 3600) if len(dur) else 0.0
    ctx["duration"] = {"mean": _fmt(float(dur.mean()), 2) if dur.notna().any() else "–",
                       "min": _fmt(float(dur.min()), 2) if dur.notna().any() else "–",
                       "max": _fmt(float(dur.max()), 2) if dur.notna().any() else "–"}
    ctx["sample_rates"] = sorted({int(x) for x in meta.get("sample_rate", pd.Series(dtype=float)).dropna()})
    # speakers, gender, language
    spk = meta.get("speaker_id", pd.Series([None] * len(meta)))
    ctx["n_speakers"] = int(spk.nunique())
    per_speaker = meta.groupby("speaker_id").size() if "speaker_id" in meta and spk.notna().any() else None
    ctx["clips_per_speaker"] = ({"min": int(per_speaker.min()), "median": float(per_speaker.median()),
                                 "max": int(per_speaker.max())} if per_speaker is not None else None)
    ctx["gender"] = _counts(meta["gender"]) if "gender" in meta else []
    if "gender" in meta and "speaker_id" in meta:
        first = meta.dropna(subset=["speaker_id"]).drop_duplicates("speaker_id")
        speakers_by_gender = first["gender"].fillna("unknown").value_counts().to_dict()
        for row in ctx["gender"]:
            row["speakers"] = int(speakers_by_gender.get(row["name"], 0))
    ctx["languages"] = _counts(meta["language"]) if "language" in meta else []
    ctx["language_codes"] = sorted({*(project.get("languages") or []),
                                    *[r["name"] for r in ctx["languages"]]})
    # how the clips were made
    ctx["sources"] = _counts(meta["source"]) if "source" in meta else []
    ctx["synth"] = {k: v for k, v in ws.section("synth").items() if k != "config_hash"}
    ctx["collect"] = {k: v for k, v in ws.section("collect").items() if k not in ("config_hash", "source")}
    ctx["synthetic"] = bool(ctx["synth"]) or any(str(r["name"]).startswith("synth") for r in ctx["sources"])
    # per-clip backend parameters written by synth (meta_tts_params, JSON text): the most common settings
    all_clips = ws.read_df("clips")
    if "meta_tts_params" in all_clips.columns:
        params = all_clips.loc[all_clips["clip_id"].isin(meta["clip_id"]), "meta_tts_params"].dropna().astype(str)
        counts = params.value_counts()
        ctx["tts_params"] = [{"params": k, "n": int(v)} for k, v in counts.head(8).items()]
        ctx["tts_params_distinct"] = int(len(counts))
    else:
        ctx["tts_params"], ctx["tts_params_distinct"] = [], 0
    # reference-prompted synthesis and the perception check (casebench perceive)
    ctx["references"] = None
    if "meta_reference_clip" in all_clips.columns:
        refs = all_clips.loc[all_clips["clip_id"].isin(meta["clip_id"])]
        refs = refs[refs["meta_reference_clip"].notna()]
        if len(refs):
            ctx["references"] = {"n_clips": int(len(refs)), "n_references": int(refs["meta_reference_clip"].nunique()),
                                 "n_speakers": int(refs["meta_reference_speaker"].nunique()),
                                 "corpora": sorted(refs["meta_reference_corpus"].dropna().astype(str).unique())}
    ctx["perception"] = None
    perception_path = ws.reports_dir / "perception.json"
    if perception_path.is_file():
        import json

        from casebench.perception import summary_line

        report = json.loads(perception_path.read_text("utf-8"))
        ctx["perception"] = {**report, "line": summary_line(report)}
    # transcription
    if transcripts is not None and len(transcripts):
        tx = transcripts[transcripts["clip_id"].isin(meta["clip_id"])]
        wer = pd.to_numeric(tx.get("wer"), errors="coerce") if "wer" in tx else pd.Series(dtype=float)
        ctx["transcription"] = {
            "n": int(len(tx)), "models": _counts(tx["model"]) if "model" in tx else [],
            "config": {k: v for k, v in ws.section("transcribe").items() if k != "config_hash"},
            "wer_mean": _fmt(float(wer.mean())) if wer.notna().any() else None,
            "languages": _counts(tx["language"]) if "language" in tx else [],
            "languages_detected": _counts(tx["language_detected"].dropna())
            if "language_detected" in tx else [],
            "n_code_switching": int(tx["code_switching"].fillna(False).astype(bool).sum())
            if "code_switching" in tx else 0,
            "failures": _counts(tx["failure"].dropna().str.split(":").str[0]) if "failure" in tx else [],
            "warnings": _transcribe_warnings(ws)}
    else:
        ctx["transcription"] = None
    # annotation and agreement
    if annotations is not None and len(annotations):
        ann = annotations[annotations["clip_id"].isin(labelled["clip_id"])]
        live = ann[~ann["cancelled"].fillna(False).astype(bool)] if "cancelled" in ann else ann
        per_clip = live.groupby(["clip_id"])["rater_id"].nunique()
        agreement, levels = _agreement(ann, ws, n_boot, seed) if len(ann) else ([], {})
        for row in agreement:
            for k in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1"):
                row[k + "_text"] = _coef(row.get(k))
        ctx["annotation"] = {
            "n_ratings": int(len(live)), "n_cancelled": int(len(ann) - len(live)),
            "n_raters": int(live["rater_id"].nunique()), "dimensions": sorted(live["dimension"].dropna().unique()),
            "raters_per_clip": ({"min": int(per_clip.min()), "median": float(per_clip.median()),
                                 "max": int(per_clip.max()), "mean": _fmt(float(per_clip.mean()), 2)}
                                if len(per_clip) else None),
            "config": {k: v for k, v in ws.section("annotation").items() if k not in ("label_studio",)},
            "label_studio": bool(live.get("source", pd.Series(dtype=str)).astype(str).str.startswith(
                "label-studio").any()),
            "agreement": agreement, "levels": levels, "n_boot": n_boot,
            "n_multi_label": int(live["meta_weights"].notna().sum()) if "meta_weights" in live else 0,
        }
    else:
        ctx["annotation"] = None
    # what the corpus is (the card leaves out what it is not: no conflict text for a corpus without conflicts)
    from casebench.annotation_schema import annotation_schema

    schema = annotation_schema(ws)
    ctx["kinds"] = corpus_kinds(labelled if has_labels else None, annotations, schema)
    ctx["label_mode"] = schema.label_mode
    #: columns of the published configs that only mean something for a conflict corpus (listed only then)
    ctx["conflict_fields"] = ["semantic_label", "semantic_dist", "is_conflict", "conflict_type", "intended_semantic"]
    ctx["weight_max"] = schema.weight_max
    # labels and conflicts
    if has_labels:
        ac = labelled["acoustic_label"].value_counts()
        se = labelled["semantic_label"].value_counts() if "semantic_label" in labelled else pd.Series(dtype=int)
        ctx["label_table"] = [{"label": t, "acoustic": int(ac.get(t, 0)), "semantic": int(se.get(t, 0))} for t in tax]
        channel = (ctx["kinds"]["channels"] or ["acoustic"])[0]
        dists = [np.asarray(d, dtype=float) for d in labelled.get(f"{channel}_dist", pd.Series(dtype=object))
                 if isinstance(d, (list, np.ndarray)) and len(d) == len(tax)]
        mean_share = np.mean(dists, axis=0) if dists else np.full(len(tax), np.nan)
        for row, share in zip(ctx["label_table"], mean_share, strict=True):
            row["mean_share"] = _fmt(float(share))
        conflict = labelled.get("is_conflict")
        n_conf = int((conflict == True).sum()) if conflict is not None else 0  # noqa: E712 (nullable)
        ctx["n_labelled"] = int(labelled["acoustic_label"].notna().sum())
        ctx["n_conflict"] = n_conf
        passes = labelled.get("passes_thresholds")
        ctx["n_failing_thresholds"] = int((passes == False).sum()) if passes is not None else 0  # noqa: E712
        types = labelled["conflict_type"].dropna().value_counts() if "conflict_type" in labelled else pd.Series()
        ctx["top_conflicts"] = [{"type": k, "n": int(v)} for k, v in types.head(10).items()]
        if ctx["kinds"]["conflict"]:  # a corpus without words ratings has no (voice, words) pairs to draw
            heat = conflict_heatmap(labelled, tax, images_dir / "conflict_pairs.png")
            ctx["heatmap"] = f"{images_dir.name}/{heat.name}"
    else:
        ctx["label_table"] = None
    vad = {}  # a corpus rated on valence / arousal alone has these and no label
    for d in ("valence", "arousal", "dominance"):
        if d in labelled and labelled[d].notna().any():
            vad[d] = {"mean": _fmt(float(labelled[d].mean()), 2), "sd": _fmt(float(labelled[d].std()), 2)}
    ctx["vad"] = vad
    # splits and audit
    ctx["split_config"] = ws.section("split")
    ctx["split_counts"] = split_counts
    if audit_report is not None:
        ctx["audit"] = {"passed": audit_report["passed"], "leaks": audit_report["leaks"],
                        "warnings": audit_report["warnings"], "not_run": audit_report.get("not_run", {}),
                        "fail_on": audit_report["settings"]["fail_on"],
                        "created_at": audit_report.get("created_at")}
    else:
        ctx["audit"] = None
    # citation
    authors = fields.get("authors") or []
    year = _dt.date.today().year
    key = re.sub(r"[^a-z0-9]+", "", (authors[0].split()[-1] if authors else "casebench").lower()) + str(year)
    url = f"https://huggingface.co/datasets/{repo_id}" if repo_id else fields.get("homepage", "")
    ctx["citation"] = fields.get("citation") or (
        f"@misc{{{key}{re.sub(r'[^a-z0-9]+', '', project['name'].lower())},\n"
        f"  title = {{{fields.get('pretty_name') or project['name']}}},\n"
        f"  author = {{{' and '.join(authors)}}},\n  year = {{{year}}},\n"
        f"  note = {{Version {project.get('version', '')}, built with casebench {__version__}}},\n"
        + (f"  howpublished = {{\\url{{{url}}}}},\n" if url else "") + "}")
    return ctx


def _transcribe_warnings(ws: Any) -> list[str]:
    """The loud notes of the last transcribe run (an English-only model forced on non-English clips)."""
    path = ws.reports_dir / "transcribe.json"
    try:
        notes = json.loads(path.read_text("utf-8")).get("notes") or []
    except (OSError, ValueError):
        return []
    return [n for n in notes if str(n).startswith("WARNING")]


def render_card(context: Mapping[str, Any], template_dir: str | os.PathLike | None = None,
                template: str = "card.md.j2") -> str:
    """The Markdown body of the card (no YAML header): ``template`` filled with ``context``, from the packaged
    templates (``casebench/data/cards/``), or from ``template_dir`` / the folder named by CASEBENCH_DATA_CARDS.

    Raises:
        ConfigError: the template folder or file is missing.
    """
    import jinja2

    from casebench import resources

    options = dict(autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                   undefined=jinja2.StrictUndefined)
    own = template_dir or os.environ.get("CASEBENCH_DATA_CARDS")
    if own:
        folder = Path(own)
        if not (folder / template).is_file():
            raise ConfigError(f"data card template {folder / template} not found"
                              + ("" if template_dir else " (folder from CASEBENCH_DATA_CARDS)"))
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), **options)
    else:
        resources.read_text(f"{CARDS_RESOURCE}/{template}")  # a clear error when the package lacks it
        env = resources.jinja_env(CARDS_RESOURCE, **options)
    env.filters["fmt"] = _fmt
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%"
    return env.get_template(template).render(**context)
