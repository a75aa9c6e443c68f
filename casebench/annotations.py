"""Ratings from wherever they live, as one long table, and the agreement step over them.

``load_ratings`` reads a workspace (its ``annotations`` table), a long table (CSV or Parquet with
``clip_id``, ``rater_id``, ``value`` and optional ``dimension``), or a Label Studio JSON export (same import
rules as ``casebench annotate import``). ``run_agreement`` computes the statistics of
:mod:`casebench.agreement` per dimension; the level of measurement comes from the annotation schema
(categories nominal, ratings interval) or from the caller, and the report says which.
"""

from __future__ import annotations

from pathlib import Path

from casebench.errors import ConfigError, InputError, Problem, did_you_mean

KIND_LEVEL = {"emotion": "nominal", "boolean": "nominal", "choices": "nominal", "rating": "interval"}


def _schema(taxonomy: str, config: dict | None = None):
    from casebench.annotation_schema import AnnotationSchema

    return AnnotationSchema.from_config(config or {}, taxonomy)


def load_ratings(path: str | Path, *, taxonomy: str = "ekman7"):
    """(ratings DataFrame, annotation schema or None, description of the source).

    Cancelled annotations and ground-truth rows are left out (counted in the description); a long table
    without a ``dimension`` column is one dimension named ``value``.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir() or path.name == "casebench.toml":
        from casebench.workspace import Workspace

        ws = Workspace.open(path)
        if not ws.has_table("annotations"):
            raise InputError(Problem("the workspace has no annotations table yet", file=str(ws.root),
                                     expected="ratings: run `casebench annotate pull|import|import-csv` first"))
        df = ws.read_df("annotations")
        from casebench.annotation_schema import annotation_schema

        schema = annotation_schema(ws)
        source = f"workspace {ws.root}"
    elif path.suffix.lower() == ".json":
        from casebench.labelstudio import load_export, parse_export

        schema = _schema(taxonomy)
        df = pd.DataFrame(parse_export(load_export(path), schema, file=str(path)))
        source = f"Label Studio export {path}"
    elif path.suffix.lower() in (".csv", ".parquet", ".tsv"):
        try:
            df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else \
                pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str,
                            keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(Problem("file not found", file=str(path))) from None
        except Exception as e:  # pandas raises many types for unreadable files
            raise InputError(Problem(f"cannot read table: {e}", file=str(path))) from None
        missing = [c for c in ("clip_id", "rater_id", "value") if c not in df.columns]
        if missing:
            raise InputError(Problem(f"missing column(s) {missing}", file=str(path),
                                     expected="a long table with clip_id, rater_id, value (and optional "
                                              f"dimension); found {list(df.columns)}"))
        if "dimension" not in df.columns:
            df["dimension"] = "value"
        schema = None
        source = f"long table {path}"
    else:
        raise InputError(Problem("unknown kind of ratings file", file=str(path),
                                 expected="a workspace folder, a CSV/Parquet long table or a Label Studio "
                                          "JSON export"))
    n_all = len(df)
    if "cancelled" in df.columns:
        df = df[~df["cancelled"].fillna(False).astype(bool)]
    if "ground_truth" in df.columns:
        df = df[~df["ground_truth"].fillna(False).astype(bool)]
    df = split_channels(df)
    source += f" ({len(df)} ratings used of {n_all}; cancelled and ground-truth rows left out)"
    return df, schema, source


def split_channels(df):
    """Dimensions rated in both projects (``confidence``, ``is_ambiguous``: asked when listening and when
    reading) become one dimension per channel, ``confidence:acoustic`` and ``confidence:semantic``: the same
    rater has two ratings of a clip there, and each channel is its own question."""
    if "meta_channel" not in df.columns or df.empty:
        return df
    channels = df.groupby("dimension")["meta_channel"].nunique()
    both = df["dimension"].isin(channels[channels > 1].index) & df["meta_channel"].notna()
    df = df.copy()
    df.loc[both, "dimension"] = df.loc[both, "dimension"] + ":" + df.loc[both, "meta_channel"].astype(str)
    return df


def _spec(schema, dimension: str):
    """The schema entry of a dimension, also for per-channel names such as ``confidence:acoustic``."""
    return None if schema is None else schema.dimensions.get(dimension.split(":")[0])


#: Levels for dimensions whose schema kind alone would mislead (a 1-5 confidence is ordered, not interval).
DIMENSION_LEVELS = {"confidence": "ordinal"}


def levels_for(dimensions: list[str], schema, level: str | None = None, dimension: str | None = None,
               configured: dict | None = None, label_sets: frozenset[str] = frozenset()) -> dict[str, tuple]:
    """dimension -> (level, where the level came from). A level is never defaulted silently: it comes from
    ``level`` (the caller), ``[annotation] levels`` (``configured``), :data:`DIMENSION_LEVELS`, or the
    annotation schema's kind of the dimension (categories nominal, mixed-emotion categories masi, ratings
    interval); else masi for a dimension in ``label_sets`` (its values hold ``a;b`` label sets, the only level
    that compares them); else ConfigError."""
    if dimension is not None:
        if dimension not in dimensions:
            raise ConfigError(f"no ratings for dimension {dimension!r}; the ratings have {sorted(dimensions)}"
                              + (f" ({h})" if (h := did_you_mean(dimension, dimensions)) else ""))
        dimensions = [dimension]
    configured = configured or {}
    out = {}
    for d in dimensions:
        base = d.split(":")[0]
        spec = _spec(schema, d)
        if level == "masi" and spec is not None and spec.kind != "emotion":  # label sets: emotions only
            if dimension is not None:
                raise ConfigError(f"--level masi compares label sets; dimension {d!r} is a {spec.kind}: use "
                                  f"--level {KIND_LEVEL.get(spec.kind, 'interval')}")
            out.update(levels_for([d], schema, None, None, configured, label_sets))  # its own level
        elif level is not None:
            out[d] = (level, "--level")
        elif base in configured:
            out[d] = (configured[base], "[annotation] levels")
        elif base in DIMENSION_LEVELS:
            out[d] = (DIMENSION_LEVELS[base], "casebench default for this dimension")
        elif spec is not None and spec.kind == "emotion" and schema.mixed:
            out[d] = ("masi", "annotation schema (mixed emotions: label sets)")
        elif spec is not None and spec.kind in KIND_LEVEL:
            out[d] = (KIND_LEVEL[spec.kind], f"annotation schema ({spec.kind})")
        elif d in label_sets:
            out[d] = ("masi", "values hold label sets ('a;b')")
        else:
            raise ConfigError(f"dimension {d!r}: no level of measurement known; pass --level "
                              "nominal|ordinal|interval|ratio, or masi for label sets ('a;b' values) (and "
                              "--dimension to pick one dimension), or set [annotation] levels in casebench.toml")
    return out


def agreement_reports(df, schema, *, level: str | None = None, dimension: str | None = None,
                      configured: dict | None = None, n_boot: int = 1000, seed: int = 0,
                      collect_errors: bool = False) -> dict[str, dict]:
    """:func:`casebench.agreement.agreement_report` per dimension of a long ratings table, with the level and
    value domain from the schema (see :func:`levels_for`). With ``collect_errors`` a dimension that cannot be
    scored gets ``{"error": message}`` instead of raising (the data card lists it)."""
    from casebench.agreement import agreement_report
    from casebench.errors import CasebenchError

    dims = sorted(df["dimension"].dropna().astype(str).unique())
    from casebench.annotation_schema import LABEL_SEPARATOR

    sets = df["value"].astype(str).str.contains(LABEL_SEPARATOR, regex=False) if "value" in df else None
    label_sets = frozenset(df.loc[sets, "dimension"].astype(str)) if sets is not None else frozenset()
    if collect_errors:
        levels, failed = {}, {}
        for d in dims if dimension is None else [dimension]:
            try:
                levels.update(levels_for(dims, schema, level, d, configured, label_sets))
            except CasebenchError as e:
                failed[d] = {"error": str(e).splitlines()[0]}
    else:
        levels, failed = levels_for(dims, schema, level, dimension, configured, label_sets), {}
    reports = {}
    for d, (lvl, why) in levels.items():
        part = df[df["dimension"] == d]
        spec = _spec(schema, d)
        domain = None
        if spec is not None and spec.kind == "emotion":
            domain = list(schema.taxonomy.labels)
        elif spec is not None and spec.kind == "rating":
            domain = list(range(spec.low, spec.high + 1))
        if lvl == "masi" and "meta_weights" in part.columns:  # a mixed rating's label set is in its weights
            from casebench.annotation_schema import label_set_of

            part = part.assign(value=[label_set_of(v, w) for v, w in zip(part["value"], part["meta_weights"],
                                                                          strict=True)])
        cols = [c for c in ("clip_id", "rater_id", "dimension", "value", "value_num", "cancelled") if c in part]
        try:
            rep = agreement_report(part[cols], level=lvl, dimension=d, value_domain=domain, n_boot=n_boot, seed=seed)
        except CasebenchError as e:
            if not collect_errors:
                raise
            failed[d] = {"error": str(e).splitlines()[0], "level": lvl}
            continue
        rep["level_source"] = why
        reports[d] = rep
    return {**reports, **failed}


def run_agreement(path: str | Path, *, dimension: str | None = None, level: str | None = None,
                  taxonomy: str = "ekman7", n_boot: int = 1000, seed: int = 0) -> dict:
    """Agreement statistics per dimension for the ratings at ``path`` (see :func:`load_ratings`)."""
    df, schema, source = load_ratings(path, taxonomy=taxonomy)
    if df.empty:
        raise InputError(Problem("no ratings to compare", file=str(path)))
    configured = None
    if Path(path).is_dir() or Path(path).name == "casebench.toml":
        from casebench.workspace import Workspace

        configured = Workspace.open(path).section("annotation").get("levels")
    reports = agreement_reports(df, schema, level=level, dimension=dimension, configured=configured,
                                n_boot=n_boot, seed=seed)
    return {"source": source, "dimensions": reports}


# ---------------------------------------------------------------------------------------------------------
# Simulated raters (the demo, and tests that need ratings with a known truth)

#: Illustrative valence/arousal/dominance prototypes (1-5 scale) per ekman7 emotion, for simulation only:
#: the ordering follows the circumplex literature (e.g. Russell 1980), the numbers are not measurements.
VAD_PROTOTYPES = {
    "angry": (1.8, 4.3, 4.0), "disgust": (2.0, 3.2, 3.5), "fear": (1.9, 4.0, 1.8), "happy": (4.4, 3.8, 3.6),
    "neutral": (3.0, 2.2, 3.0), "sad": (1.7, 1.8, 1.9), "surprise": (3.6, 4.2, 2.8),
}


def simulate_ratings(clips, labels: list[str], *, n_raters: int = 5, p_correct: float = 0.8, seed: int = 0,
                     scale: tuple[int, int] = (1, 5), careless: int = 0, listener=None,
                     cues: dict | None = None) -> list[dict]:
    """Ratings from a seeded noise model: rater r gives a clip's intended emotion with probability
    ``p_correct``, else a uniformly random *other* label; acoustic ratings follow ``intended_acoustic``,
    semantic ratings ``intended_semantic`` (reading); valence/arousal/dominance are the prototype of the
    acoustic emotion plus N(0, 0.6) noise, rounded and clipped to ``scale``. The last ``careless`` raters
    answer uniformly at random (to exercise the per-rater checks).

    With a ``listener`` (:class:`casebench.perception.Listener`) and ``cues`` (clip_id -> the clip's cue
    z-scores, :func:`casebench.perception.listener_cues`) the raters *listen*: each acoustic rating is what
    the listener hears in the clip's acoustics with fresh perception noise, never the design label, and the
    V/A/D ratings follow the emotion heard. A clip without cues (unreadable audio) gets no acoustic rating.

    Returns rows of the ``annotations`` table (one per rater x clip x dimension), keyed by a stable
    annotation id, so importing them twice adds nothing.

    >>> import pandas as pd
    >>> clips = pd.DataFrame({"clip_id": ["c1"], "intended_acoustic": ["sad"], "intended_semantic": ["happy"]})
    >>> rows = simulate_ratings(clips, ["happy", "sad"], n_raters=2, p_correct=1.0)
    >>> sorted({(r["rater_id"], r["dimension"], r["value"]) for r in rows if "emotion" in r["dimension"]})
    [('sim-00', 'acoustic_emotion', 'sad'), ('sim-00', 'semantic_emotion', 'happy'), \
('sim-01', 'acoustic_emotion', 'sad'), ('sim-01', 'semantic_emotion', 'happy')]
    """
    import datetime as dt

    import numpy as np

    rng = np.random.default_rng(seed)
    lo, hi = scale
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    rows = []
    for clip in clips.itertuples():
        for r in range(n_raters):
            rater = f"sim-{r:02d}"
            careless_rater = r >= n_raters - careless
            ann_id = f"sim-{seed}-{rater}-{clip.clip_id}"
            base = {"clip_id": clip.clip_id, "rater_id": rater, "lead_time_s": float(rng.uniform(3, 12)),
                    "source": f"simulated:seed={seed}", "created_at": now, "cancelled": False,
                    "ground_truth": False}
            heard = clip.intended_acoustic
            for dim, truth in (("acoustic_emotion", clip.intended_acoustic),
                               ("semantic_emotion", clip.intended_semantic)):
                if truth is None or truth != truth:  # no intended label: nothing to simulate
                    continue
                if listener is not None and dim == "acoustic_emotion":
                    if clip.clip_id not in (cues or {}):
                        heard = None
                        continue
                    value = (labels[int(rng.integers(len(labels)))] if careless_rater
                             else listener.rate(cues[clip.clip_id], rng))
                    heard = value
                elif careless_rater:
                    value = labels[int(rng.integers(len(labels)))]
                elif rng.random() < p_correct:
                    value = truth
                else:
                    others = [x for x in labels if x != truth]
                    value = others[int(rng.integers(len(others)))]
                rows.append({**base, "dimension": dim, "value": value, "value_num": None,
                             "annotation_id": f"{ann_id}-{dim[:8]}"})
            proto = VAD_PROTOTYPES.get(heard)
            if proto is None:
                continue
            for dim, centre in zip(("valence", "arousal", "dominance"), proto, strict=True):
                centre = lo + (centre - 1) * (hi - lo) / 4  # prototypes are on 1-5
                v = rng.uniform(lo, hi) if careless_rater else centre + rng.normal(0, 0.6)
                v = int(np.clip(round(v), lo, hi))
                rows.append({**base, "dimension": dim, "value": str(v), "value_num": float(v),
                             "annotation_id": f"{ann_id}-acoustic"})
    return rows


def post_simulated(ws, url: str, token: str, *, n_raters: int = 5, p_correct: float = 0.8, seed: int = 0,
                   careless: int = 0, listener=None, cues: dict | None = None) -> dict:
    """Post :func:`simulate_ratings` to a live Label Studio into the workspace's pushed projects, one user
    per simulated rater (created when missing), as the labelling UI would: acoustic emotion and V/A/D in
    the acoustic project, the semantic emotion in the semantic project. Returns counts."""
    from concurrent.futures import ThreadPoolExecutor

    from casebench.annotation_schema import annotation_schema
    from casebench.labelstudio import connect

    schema = annotation_schema(ws)
    lo_hi = next(((s.low, s.high) for s in schema.dimensions.values() if s.kind == "rating"), (1, 5))
    from casebench.benchmarks import DEGRADED_SEP

    clips = ws.read_df("clips")
    clips = clips[~clips["clip_id"].str.contains(DEGRADED_SEP, regex=False)]  # raters hear the originals
    rows = simulate_ratings(clips, list(ws.taxonomy.labels), n_raters=n_raters,
                            p_correct=p_correct, seed=seed, scale=lo_hi, careless=careless, listener=listener,
                            cues=cues)
    recorded = ws.section("annotation").get("label_studio") or {}
    if "acoustic_project" not in recorded:
        raise InputError(Problem("the workspace has not been pushed to Label Studio", file=str(ws.config_path),
                                 field="annotation.label_studio", expected="run `casebench annotate push` first"))

    def item(dim: str, value: str, to: str) -> dict:
        spec = schema.dimensions[dim]
        if spec.kind == "rating" and spec.widget == "rating":
            return {"from_name": dim, "to_name": to, "type": "rating", "value": {"rating": int(value)}}
        return {"from_name": dim, "to_name": to, "type": "choices", "value": {"choices": [value]}}

    with connect(url, token) as ls:
        existing = {u.username: u.id for u in ls.users.list()}
        users = {}
        for r in sorted({row["rater_id"] for row in rows}):
            users[r] = existing.get(r) or ls.users.create(username=r, email=f"{r}@casebench.local",
                                                         password="simulated-rater-pw").id
        jobs = []
        for kind, obj in (("acoustic", "audio"), ("semantic", "transcript")):
            tasks = {t.data["clip_id"]: t.id for t in ls.tasks.list(project=recorded[f"{kind}_project"], fields="all")}
            dims = [d for d in schema.projects[kind] if d in schema.dimensions]
            results: dict[tuple, list] = {}
            for row in rows:
                if row["dimension"] in dims and row["clip_id"] in tasks:
                    results.setdefault((row["clip_id"], row["rater_id"]), []).append(
                        item(row["dimension"], row["value"], obj))
            jobs += [(tasks[c], users[r], res) for (c, r), res in results.items()]

        def post(job):
            task_id, user_id, result = job
            return ls.annotations.create(id=task_id, result=result, completed_by=user_id, lead_time=5.0).id

        with ThreadPoolExecutor(4) as pool:  # the server answers requests in threads
            ids = list(pool.map(post, jobs))
    return {"raters": len(users), "annotations_posted": len(ids)}
