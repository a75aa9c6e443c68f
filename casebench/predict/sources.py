"""Where ``casebench predict`` finds the audio: a benchmark, a workspace, or a published dataset.

Four sources, each giving :class:`Clips` (ids, audio paths or embedded bytes, transcripts, and labels when
the source has them, for fitting probes):

- a **benchmark** whose gold (and ``train:``) table has a ``path`` column: audio paths relative to the table
  file; a ``text`` column, when present, is the transcript (:func:`benchmark_clips`). A benchmark whose spec
  has ``dataset:`` reads that dataset instead;
- a **workspace** (``casebench.toml`` + tables): the clips table's paths, the transcripts table's text, the
  labels table's labels, restricted to one split of the splits table (:func:`workspace_clips`);
- a **published dataset folder** (the layout ``casebench publish`` writes): the ``default`` config's Parquet
  shards of one split, with the audio embedded as bytes (:func:`dataset_clips`);
- a **Hub dataset id + revision**: that folder layout fetched with ``huggingface_hub`` (only the ``data/``
  shards and the card); offline, a clear error.

Audio is decoded by :func:`casebench.audio.decode` (soundfile, ffmpeg for the rest), averaged to mono and
resampled with soxr to the rate the model asks for (:func:`load_clip`); a file that cannot be decoded is an
:class:`~casebench.errors.InputError` naming it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from casebench.benchmarks import Benchmark, Gold
from casebench.errors import ConfigError, InputError, Problem, did_you_mean

TEXT_COLUMNS = ("text", "transcript")


@dataclass
class Clip:
    """One clip to predict: an audio file (absolute path) or embedded audio bytes, and its transcript."""

    id: str
    path: str | None = None
    text: str | None = None
    data: bytes | None = None

    @property
    def where(self) -> str:
        """What names the clip's audio in messages: its file, or ``<source>#<id>`` for embedded bytes."""
        return self.path or f"<embedded audio of {self.id}>"


@dataclass
class Clips:
    """The clips of a source, in the source's order.

    Attributes:
        clips: the clips.
        source: what they were read from, for messages and the metadata sidecar.
        labels: a :class:`Gold` aligned to ``clips`` (labels, distributions, V/A/D) when the source has
            labels, else None.
        corpora: the corpora the clips come from (a ``corpus`` column's values, else the source's name):
            what a probe fitted on them records as ``trained_on``.
        dataset: for a published dataset, what pins it, for the metadata sidecar: ``{"path": folder}``, or
            ``{"hub": id, "revision": asked, "commit": resolved}`` for a Hub dataset.
    """

    clips: list[Clip]
    source: str
    labels: Gold | None = None
    corpora: list[str] = field(default_factory=list)
    dataset: dict | None = None

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clips]


def load_clip(clip: Clip, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``clip`` at ``sample_rate`` (soxr); InputError naming the file when the audio
    cannot be decoded."""
    from casebench import audio

    if clip.data is not None:
        suffix = Path(clip.path or "audio.wav").suffix or ".wav"
        try:
            data, sr = audio.decode_bytes(clip.data, suffix=suffix)
        except InputError as e:
            raise InputError(Problem(f"cannot decode the embedded audio ({e.problems[0].found})", id=clip.id,
                                     file=clip.where, expected="audio bytes soundfile or ffmpeg can read")) from None
    else:
        data, sr = audio.decode(clip.path)
    return audio.resample(audio.to_mono(data), sr, sample_rate)


# --------------------------------------------------------------------------------------------------
# Benchmarks


def benchmark_clips(bench: Benchmark, split: str | None = None) -> Clips:
    """The clips of a benchmark: its gold items (``split`` None or ``test``), the items of one of its
    splits (``conflict``...), or its train table (``train``).

    Raises:
        ConfigError: unknown split; the benchmark has no audio (no ``path`` column, no ``dataset:``).
        InputError: a path column with empty cells.
    """
    if (bench.dataset or {}).keys() & {"hub", "path"} and (split is None or split in ("test", "train")):
        ds = bench.dataset
        return dataset_clips(ds.get("path") or ds["hub"], revision=ds.get("revision"), split=split or "test",
                             taxonomy=bench.taxonomy)
    if split == "train":
        gold = bench.load_train()
        table = bench.train_path
    else:
        gold = bench.load_gold()
        table = bench.gold_path
    if "path" not in gold.columns:
        raise ConfigError(f"benchmark {bench.name!r} has no audio: its table {table} has no 'path' column and "
                          "its spec no 'dataset:'; predict on a workspace (--workspace) or a published "
                          "dataset (--dataset) instead")
    mask = np.ones(len(gold), dtype=bool)
    if split not in (None, "test", "train"):
        names = [s.name for s in bench.splits]
        chosen = next((s for s in bench.splits if s.name == split), None)
        if chosen is None:
            hint = did_you_mean(split, [*names, "train", "test"])
            raise ConfigError(f"unknown split {split!r} of benchmark {bench.name!r}; expected one of "
                              f"{[*names, 'train']}" + (f" ({hint})" if hint else ""))
        mask = gold.mask(chosen)
    base = Path(table).parent
    paths = gold.columns["path"]
    texts = next((gold.columns[c] for c in TEXT_COLUMNS if c in gold.columns), None)
    problems, clips = [], []
    line0 = 1 if Path(table).suffix.lower() == ".parquet" else 2
    for i in np.flatnonzero(mask):
        p = paths[i]
        if p is None or (isinstance(p, float) and np.isnan(p)) or not str(p).strip():
            problems.append(Problem("empty audio path", file=str(table), line=int(i) + line0, id=str(gold.ids[i]),
                                    field="path", expected="an audio path relative to the table"))
            continue
        text = texts[i] if texts is not None else None
        clips.append(Clip(str(gold.ids[i]), str((base / str(p)).resolve()),
                          text if isinstance(text, str) else None))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} item(s) without audio in {table}")
    labels = _subset(gold, np.flatnonzero(mask)) if split == "train" else None
    corpora = sorted({str(c) for c in gold.columns["corpus"][mask]}) if "corpus" in gold.columns else [bench.name]
    return Clips(clips, f"benchmark {bench.name} ({Path(table).name})", labels, corpora)


def _subset(gold: Gold, rows: np.ndarray) -> Gold:
    def take(a):
        return None if a is None else a[rows]

    return Gold(ids=gold.ids[rows], taxonomy=gold.taxonomy, acoustic=take(gold.acoustic),
                semantic=take(gold.semantic), speaker=take(gold.speaker), distribution=take(gold.distribution),
                vad={k: v[rows] for k, v in gold.vad.items()}, source=gold.source, fingerprint=gold.fingerprint)


# --------------------------------------------------------------------------------------------------
# Workspaces


def workspace_clips(workspace, split: str | None = None, *, taxonomy=None, with_labels: bool = False) -> Clips:
    """The clips of a workspace, in clips-table order: all of them (``split`` None) or those of one split.

    With ``with_labels``, only labelled clips (a row in the labels table), with their labels as a
    :class:`Gold` in ``taxonomy`` (the workspace's by default; they must agree).

    Raises:
        InputError: a missing or bad table (from :class:`~casebench.workspace.Workspace`).
        ConfigError: unknown split, or a taxonomy other than the benchmark's.
    """
    from casebench.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    clips = ws.read_df("clips")
    keep = np.ones(len(clips), dtype=bool)
    if split is not None:
        if not ws.has_table("splits"):
            raise ConfigError(f"--split {split!r}: workspace {ws.root} has no splits table (`casebench split`)")
        splits = ws.read_df("splits")
        names = sorted(set(splits["split"]))
        if split not in names:
            hint = did_you_mean(split, names)
            raise ConfigError(f"unknown split {split!r} of workspace {ws.root}; expected one of {names}"
                              + (f" ({hint})" if hint else ""))
        keep &= clips["clip_id"].isin(set(splits.loc[splits["split"] == split, "clip_id"])).to_numpy()
    texts = {}
    if ws.has_table("transcripts"):
        tx = ws.read_df("transcripts")
        texts = dict(zip(tx["clip_id"], tx["text"], strict=True))
    labels = None
    if with_labels:
        tax = taxonomy or ws.taxonomy
        if tax.name != ws.taxonomy.name:
            raise ConfigError(f"workspace {ws.root} is labelled in {ws.taxonomy.name}, the benchmark in {tax.name}; "
                              "train on a workspace with the benchmark's taxonomy")
        lab = ws.read_df("labels").set_index("clip_id")
        keep &= clips["clip_id"].isin(set(lab.index)).to_numpy()
    sel = clips[keep]
    out = [Clip(str(r.clip_id), str(ws.resolve(r.path)), texts.get(r.clip_id)) for r in sel.itertuples()]
    if with_labels:
        labels = _workspace_gold(lab.loc[sel["clip_id"]], tax, str(ws.table_path("labels")))
    return Clips(out, f"workspace {ws.name} ({ws.root}" + (f", split {split})" if split else ")"), labels,
                 [ws.name])


def _workspace_gold(lab, tax, src: str) -> Gold:
    """A Gold from rows of a workspace's labels table (validated by the workspace against its taxonomy)."""
    from casebench.benchmarks import DIMENSIONS

    def codes(col: str) -> np.ndarray:
        return np.array([tax.index.get(x, -1) if isinstance(x, str) else -1 for x in lab[col]], dtype=np.int64)

    dists = lab["acoustic_dist"].tolist()
    dist = None
    if any(d is not None and len(d) for d in dists):
        dist = np.array([np.asarray(d, float) if d is not None and len(d) else np.full(len(tax), np.nan)
                         for d in dists])
    vad = {d: lab[d].to_numpy(dtype=float) for d in DIMENSIONS if lab[d].notna().any()}
    return Gold(ids=np.array(lab.index.tolist(), dtype=object), taxonomy=tax, acoustic=codes("acoustic_label"),
                semantic=codes("semantic_label"), distribution=dist, vad=vad, source=src)


# --------------------------------------------------------------------------------------------------
# Published datasets (folders written by `casebench publish`, or the same layout on the Hub)


#: Whether huggingface_hub may draw its download bars (``casebench predict --no-progress``/``--json``: no).
_HUB_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_progress", default=True)


@contextlib.contextmanager
def hub_progress(enabled: bool) -> Iterator[None]:
    """Within the block, Hub downloads draw huggingface_hub's progress bars only if ``enabled``."""
    token = _HUB_PROGRESS.set(enabled)
    try:
        yield
    finally:
        _HUB_PROGRESS.reset(token)


def fetch_hub_dataset(repo_id: str, revision: str | None) -> Path:
    """The local snapshot folder of a Hub dataset at ``revision`` (a branch, tag or commit; None: the default
    branch): its ``data/`` shards and card, downloaded into the Hugging Face cache (``HF_HUB_CACHE``) or reused
    from it. The folder is named by the commit it holds (``.../snapshots/<commit>``). With ``HF_HUB_OFFLINE=1``
    (or no network) a revision already in the cache is used without asking the Hub.

    Raises:
        ConfigError: naming the repo and the revision: no such dataset (or a private or gated one the token
            cannot read), no such revision, a token the Hub refuses, offline and not in the cache (or cached
            only in part), any other Hub or network failure.
    """
    try:
        from huggingface_hub import errors as hf_errors
        from huggingface_hub import snapshot_download
    except ImportError as e:
        from casebench.errors import MissingDependencyError

        raise MissingDependencyError(f"a Hub dataset needs huggingface_hub ({e}): pip install "
                                     "'casebench[publish]'") from None
    what = f"dataset {repo_id!r} at revision {revision or 'main'!r}"
    token_hint = ("if it is private or gated, set HF_TOKEN (or run `hf auth login`) with a token that can read it; "
                  "otherwise check the id (ORG/NAME as on huggingface.co/datasets)")
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    # the bars as asked for this block, whatever an earlier import left (transformers' disable_progress_bar,
    # called when an hf: model is loaded, turns the Hub's bars off process-wide); HF_HUB_DISABLE_PROGRESS_BARS wins
    was_off = are_progress_bars_disabled()
    if _HUB_PROGRESS.get() and was_off and not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
        enable_progress_bars()
    elif not _HUB_PROGRESS.get():
        disable_progress_bars()
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                      allow_patterns=["data/*", "README.md"]))
    except hf_errors.RevisionNotFoundError:
        raise ConfigError(f"{what}: the Hub has dataset {repo_id!r} but no revision {revision!r} (a branch, tag or "
                          "commit of the dataset repo)") from None
    except hf_errors.GatedRepoError:
        raise ConfigError(f"{what}: the dataset is gated and this token has not been granted access; accept its "
                          "conditions on the Hub, then set HF_TOKEN") from None
    except hf_errors.RepositoryNotFoundError:
        raise ConfigError(f"{what}: no such dataset on the Hugging Face Hub, or one this token cannot see; "
                          + token_hint) from None
    except hf_errors.LocalEntryNotFoundError as e:  # offline (or unreachable) and not (fully) in the cache
        partial = "partly in" if type(e).__name__ == "IncompleteSnapshotError" else "not in"
        raise ConfigError(f"{what} is {partial} the local Hugging Face cache and the Hub cannot be reached "
                          "(offline: HF_HUB_OFFLINE is set, or no network); run once online, or pass a published "
                          "folder (--dataset PATH)") from None
    except hf_errors.HfHubHTTPError as e:
        status = e.response.status_code if getattr(e, "response", None) is not None else None
        if status == 401:
            raise ConfigError(f"{what}: the Hub refused the token (401: "
                              f"{getattr(e, 'server_message', None) or 'invalid credentials'}); "
                              "check HF_TOKEN, or unset it for a public dataset") from None
        raise ConfigError(f"cannot fetch {what} from the Hugging Face Hub: {str(e).splitlines()[0]}") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot fetch {what} from the Hugging Face Hub: {str(e).splitlines()[0]}") from None
    finally:
        if was_off != are_progress_bars_disabled():
            (disable_progress_bars if was_off else enable_progress_bars)()


def dataset_clips(path_or_id: str | os.PathLike, *, revision: str | None = None, split: str = "test",
                  taxonomy=None) -> Clips:
    """The clips of one split of a published dataset: a local folder, or a Hub id (fetched at ``revision``).

    Labels (``acoustic_label`` class indices, ``valence``/``arousal``/``dominance``) come along when the split
    has them and ``taxonomy`` is given; the published class names must then be the taxonomy's labels.
    """
    import pyarrow.parquet as pq

    folder = Path(path_or_id).expanduser()
    name = str(path_or_id)
    if folder.is_dir():
        pinned = {"path": str(folder.resolve())}
        corpus = folder.resolve().name
    else:
        if folder.exists() or str(path_or_id).startswith((".", "/", "~")) or str(path_or_id).count("/") != 1:
            raise ConfigError(f"--dataset {name!r}: not a folder written by `casebench publish`, nor a Hub "
                              "dataset id (owner/name)")
        folder = fetch_hub_dataset(name, revision)
        pinned = {"hub": name, "revision": revision, "commit": folder.name}  # snapshots/<commit>
        corpus = name
    data = folder / "data"
    shards = sorted(data.glob("*-*-of-*.parquet")) if data.is_dir() else []
    if not shards:
        raise ConfigError(f"{folder}: no data/<split>-*-of-*.parquet shards; expected a dataset written by "
                          "`casebench publish`")
    by_split: dict[str, list[Path]] = {}  # split names may hold dashes; the suffix is -NNNNN-of-NNNNN.parquet
    for s in shards:
        by_split.setdefault(s.name[: -len("-00000-of-00000.parquet")], []).append(s)
    if split not in by_split:
        hint = did_you_mean(split, by_split)
        raise ConfigError(f"unknown split {split!r} of dataset {name}; expected one of {sorted(by_split)}"
                          + (f" ({hint})" if hint else ""))
    clips, rows = [], []
    for shard in by_split[split]:
        try:
            table = pq.read_table(shard)
        except Exception as e:  # noqa: BLE001 - any unreadable shard is reported with its name
            raise InputError(Problem(f"unreadable Parquet shard ({e})", file=str(shard))) from None
        cols = table.column_names
        if "clip_id" not in cols or "audio" not in cols:
            raise InputError(Problem(f"columns {cols}", file=str(shard), expected="'clip_id' and 'audio' columns"))
        ids = table.column("clip_id").to_pylist()
        audio = table.column("audio").to_pylist()
        text = table.column("text").to_pylist() if "text" in cols else [None] * len(ids)
        for cid, a, t in zip(ids, audio, text, strict=True):
            a = a or {}
            clips.append(Clip(str(cid), a.get("path"), t, a.get("bytes")))
            if not a.get("bytes"):
                raise InputError(Problem("no embedded audio bytes", file=str(shard), id=str(cid), field="audio"))
        rows.append(table)
    labels = _dataset_gold(rows, taxonomy, by_split[split][0]) if taxonomy is not None else None
    rev = f"@{revision}" if revision else ""
    return Clips(clips, f"dataset {name}{rev} (split {split})", labels, [corpus], pinned)


def _dataset_gold(tables: Sequence, tax, shard: Path) -> Gold | None:
    """Labels of a published split as a Gold, or None when it has none (hidden test labels)."""
    import json

    import pyarrow as pa

    from casebench.benchmarks import DIMENSIONS

    table = pa.concat_tables(tables)
    meta = (tables[0].schema.metadata or {}).get(b"huggingface")
    names = None
    if meta:
        feats = json.loads(meta).get("info", {}).get("features", {})
        names = (feats.get("acoustic_label") or {}).get("names")
    ids = np.array(table.column("clip_id").to_pylist(), dtype=object)
    acoustic = None
    if "acoustic_label" in table.column_names and table.column("acoustic_label").null_count < table.num_rows:
        if names is not None and list(names) != list(tax.labels):
            raise ConfigError(f"{shard}: the dataset's labels {names} are not the benchmark's {list(tax.labels)}")
        acoustic = np.array([-1 if v is None else int(v) for v in table.column("acoustic_label").to_pylist()])
    vad = {d: np.array([np.nan if v is None else float(v) for v in table.column(d).to_pylist()])
           for d in DIMENSIONS if d in table.column_names and table.column(d).null_count < table.num_rows}
    if acoustic is None and not vad:
        return None
    return Gold(ids=ids, taxonomy=tax, acoustic=acoustic, vad=vad, source=str(shard))
