"""The ``collect`` step: ingest real recordings into a workspace, with quality checks and a QC report.

Source: a folder (every wav/flac/mp3/ogg/m4a below it) or a manifest, CSV or JSON Lines, with a ``path``
column (relative to the manifest) and optional ``speaker``, ``gender``, ``language``, ``session``,
``text``, ``intended_acoustic``, ``intended_semantic`` and ``clip_id``; any other column is kept as
``meta_<name>``.

Each file is decoded (:func:`casebench.audio.decode`), made 16 kHz mono and loudness-normalised, optionally
cut into utterances with the Silero VAD model that faster-whisper ships (ONNX, no torch), and checked:

=============  ==========================================================================
reason         dropped when
=============  ==========================================================================
unreadable     no decoder can read it (or the manifest names a missing file)
no-speech      VAD found no speech in it
too-short      shorter than ``min_dur`` seconds
too-long       longer than ``max_dur`` seconds (use ``vad=True`` to cut long recordings)
clipping       more than ``max_clipping`` of its samples at full scale (before any gain)
silence        more than ``max_silence`` of its 25 ms frames below -50 dBFS (after normalising)
low-snr        SNR estimate (:func:`casebench.audio.snr_estimate_db`) under ``min_snr_db``
duplicate      the same audio (16-bit PCM hash of the 16 kHz mono signal before the loudness
               gain) as a clip already kept, or a manifest ``clip_id`` another file already has
=============  ==========================================================================

Clip ids derive from the file's absolute path (``c-`` + 12 hex; VAD segments add their start and end
in ms), unless the manifest gives a ``clip_id``.

A bad file is reported with its reasons and skipped; it never stops the run. The outcome of every file
and segment goes to ``reports/collect-qc-<config hash>.json`` and ``.html``. The step is resumable: kept
clips and per-file outcomes are journalled (``Workspace.resumable``) batch by batch, and a re-run under
the same settings skips the files already done.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from casebench import audio
from casebench.errors import (
    CasebenchError,
    ConfigError,
    InputError,
    Problem,
    did_you_mean,
    read_user_text,
    separator_hint,
)
from casebench.progress import progress_bar
from casebench.workspace import Workspace, atomic_write_text, clip_id_for

AUDIO_SUBDIR = "audio/collect"
REASONS = ("unreadable", "no-speech", "too-short", "too-long", "clipping", "silence", "low-snr", "duplicate")
#: Manifest columns with a place in the clips table (manifest name -> clips column).
KNOWN_COLUMNS = {"speaker": "speaker_id", "speaker_id": "speaker_id", "gender": "gender",
                 "language": "language", "session": "session", "text": "text_prompt",
                 "text_prompt": "text_prompt",
                 "intended_acoustic": "intended_acoustic", "intended_semantic": "intended_semantic",
                 "clip_id": "clip_id", "id": "clip_id"}


@dataclass(frozen=True)
class QCSettings:
    """Thresholds of the quality checks (see the module docstring)."""

    min_dur: float = 0.5
    max_dur: float = 30.0
    max_clipping: float = 0.001
    max_silence: float = 0.8
    min_snr_db: float = 5.0
    silence_db: float = -50.0


@dataclass
class Item:
    """One source file to ingest, with what the manifest says about it."""

    key: str                      # stable identity: path relative to the folder / as written in the manifest
    path: Path
    fields: dict[str, Any] = field(default_factory=dict)   # clips columns (speaker_id, language, ...)
    meta: dict[str, Any] = field(default_factory=dict)     # meta_* columns
    line: int | None = None       # manifest line


# --------------------------------------------------------------------------------------------------
# Sources


def _meta_name(column: str) -> str:
    name = re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_") or "column"
    return name if name.startswith("meta_") else f"meta_{name}"


def scan_folder(folder: Path, *, speaker_from_folder: bool = False) -> tuple[list[Item], list[str]]:
    """Audio files below ``folder`` (sorted) and the other files found (reported as ignored)."""
    items, ignored = [], []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        rel = p.relative_to(folder).as_posix()
        if p.suffix.lower() not in audio.AUDIO_EXTENSIONS:
            ignored.append(rel)
            continue
        fields = {}
        if speaker_from_folder and len(p.relative_to(folder).parts) > 1:
            fields["speaker_id"] = p.relative_to(folder).parts[0]
        items.append(Item(rel, p, fields))
    return items, ignored


def read_manifest(path: Path) -> list[Item]:
    """Items of a CSV or JSON Lines manifest; InputError listing every bad line (file:line, field)."""
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for i, line in enumerate(read_user_text(path, "a manifest (JSON Lines)").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                problems.append(Problem(f"not valid JSON ({e})", file=str(path), line=i,
                                        expected="one JSON object per line"))
                continue
            if not isinstance(obj, dict):
                problems.append(Problem(f"a JSON {type(obj).__name__}", file=str(path), line=i,
                                        expected="a JSON object"))
                continue
            rows.append((i, obj))
    else:
        with io.StringIO(read_user_text(path, "a manifest (CSV)"), newline="") as f:
            reader = csv.DictReader(f)
            if "path" not in [h.strip() for h in reader.fieldnames or []]:
                raise InputError(Problem(f"no 'path' column in the header {reader.fieldnames}",
                                         file=str(path), line=1, field="path",
                                         expected="a header row with a path column",
                                         hint=separator_hint(reader.fieldnames or [])
                                         or did_you_mean("path", reader.fieldnames or [])))
            reader.fieldnames = [h.strip() for h in reader.fieldnames]
            rows = [(reader.line_num, row) for row in reader]
    items = []
    first_line: dict[tuple[str, str], int] = {}
    for line, row in rows:
        value = row.get("path")
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"path {value!r}", file=str(path), line=line, field="path",
                                    expected="the audio file's path (relative to the manifest or absolute)"))
            continue
        fields: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for col, v in row.items():
            if col == "path" or col is None:
                continue
            v = None if v is None or (isinstance(v, str) and not v.strip()) else v
            if col in KNOWN_COLUMNS:
                fields[KNOWN_COLUMNS[col]] = None if v is None else str(v).strip()
            else:
                meta[_meta_name(col)] = None if v is None else (v if isinstance(v, str) else json.dumps(v))
        key = value.strip()
        for what, ident in (("path", key), ("clip_id", fields.get("clip_id"))):
            if ident is None:
                continue
            if (what, ident) in first_line:
                first = first_line[what, ident]
                problems.append(Problem(f"{what} {ident!r} listed twice (first at line {first})",
                                        file=str(path), line=line, field=what,
                                        expected=f"one row per {what}"))
            first_line.setdefault((what, ident), line)
        p = Path(key).expanduser()
        items.append(Item(value.strip(), p if p.is_absolute() else path.parent / p, fields, meta, line))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in manifest {path}")
    if not items:
        raise InputError(Problem("no rows", file=str(path), expected="at least one audio file"))
    return items


# --------------------------------------------------------------------------------------------------
# Checks (pure)


def qc_reasons(measures: dict[str, float], qc: QCSettings) -> list[str]:
    """The failed checks of one clip's measures, as ``"code: detail"`` strings (empty when it passes).

    >>> qc_reasons({"duration_s": 0.2, "qc_clipping_ratio": 0.0, "qc_silence_ratio": 0.1,
    ...             "qc_snr_db": 30.0}, QCSettings())
    ['too-short: 0.20 s < 0.5 s']
    """
    out = []
    d = measures["duration_s"]
    if d < qc.min_dur:
        out.append(f"too-short: {d:.2f} s < {qc.min_dur:g} s")
    if d > qc.max_dur:
        out.append(f"too-long: {d:.2f} s > {qc.max_dur:g} s")
    if measures["qc_clipping_ratio"] > qc.max_clipping:
        out.append(f"clipping: {measures['qc_clipping_ratio']:.2%} of samples at full scale > "
                   f"{qc.max_clipping:.2%}")
    if measures["qc_silence_ratio"] > qc.max_silence:
        out.append(f"silence: {measures['qc_silence_ratio']:.0%} of frames silent > {qc.max_silence:.0%}")
    if measures["qc_snr_db"] < qc.min_snr_db:
        out.append(f"low-snr: SNR estimate {measures['qc_snr_db']:.1f} dB < {qc.min_snr_db:g} dB")
    return out


def vad_segments(x: np.ndarray, sr: int = audio.TARGET_SR, *, max_dur: float = 30.0,
                 min_silence_ms: int = 500, speech_pad_ms: int = 200,
                 threshold: float = 0.5) -> list[tuple[int, int]]:
    """Speech segments (start, end sample) of a 16 kHz mono signal, by the Silero VAD of faster-whisper."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    opts = VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms,
                      speech_pad_ms=speech_pad_ms, max_speech_duration_s=max_dur, min_speech_duration_ms=250)
    return [(int(s["start"]), int(s["end"])) for s in get_speech_timestamps(x, opts, sampling_rate=sr)]


# --------------------------------------------------------------------------------------------------
# The step


def _outcome(item: Item, clip_id: str, status: str, reasons: Sequence[str], **extra) -> dict[str, Any]:
    return {"clip_id": clip_id, "file_key": item.key, "file": str(item.path), "line": item.line,
            "status": status, "reasons": list(reasons),
            "codes": sorted({r.split(":", 1)[0] for r in reasons}), **extra}


def _process(ws: Workspace, item: Item, *, qc: QCSettings, vad: bool, target_lufs: float | None, fmt: str,
             source_name: str, defaults: dict[str, Any], seen: dict[str, str],
             owners: dict[str, str | None], done_clips: set[str]) -> tuple[list[dict], list[dict]]:
    """Kept clip rows and outcome rows of one file. Never raises a CasebenchError: bad files are outcomes."""
    # Ids from the file's absolute path: two folders may both hold an "a.wav", and must not collide.
    abs_path = str(item.path.resolve())
    base_id = item.fields.get("clip_id") or clip_id_for(f"collect:{abs_path}")
    try:
        x, sr = audio.decode(item.path)
    except CasebenchError as e:
        found = e.problems[0].found if isinstance(e, InputError) else str(e)
        reason = re.sub(r"^unreadable audio \((.*)\)$", r"\1", found.replace(f"{item.path}: ", ""))
        return [], [_outcome(item, base_id, "dropped", [f"unreadable: {reason}"])]
    mono = audio.resample(audio.to_mono(x), sr)
    if vad:
        segments = vad_segments(mono, max_dur=qc.max_dur)
        if not segments:
            return [], [_outcome(item, base_id, "dropped", ["no-speech: VAD found no speech"],
                                 duration_s=audio.duration_s(mono, audio.TARGET_SR))]
    else:
        segments = [(0, len(mono))]
    clips, outcomes = [], []
    for start, end in segments:
        whole = (start, end) == (0, len(mono))
        cid = base_id if whole else f"{base_id}-{start // 16:07d}-{end // 16:07d}"   # ms offsets
        seg = mono[start:end]
        src = x[int(start * sr / audio.TARGET_SR):int(np.ceil(end * sr / audio.TARGET_SR))]
        prep = audio.prepare(seg, audio.TARGET_SR, target_lufs=target_lufs)
        measures = audio.qc_measures(src, prep.samples, prep.sample_rate)
        measures["qc_silence_ratio"] = audio.silence_ratio(prep.samples, prep.sample_rate, qc.silence_db)
        reasons = qc_reasons(measures, qc)
        pcm = audio.pcm_sha256(seg)
        if pcm in seen and seen[pcm] != cid:
            reasons.append(f"duplicate: same audio as clip {seen[pcm]}")
        if cid in owners and owners[cid] != abs_path:
            reasons.append(f"duplicate: clip id {cid} is already used by "
                           f"{owners[cid] or 'a clip from another step'}")
        seg_info = {} if whole else {"segment_start_s": start / audio.TARGET_SR,
                                     "segment_end_s": end / audio.TARGET_SR}
        info = {**seg_info, **{k.removeprefix("qc_"): round(float(v), 4) for k, v in measures.items()}}
        if reasons:
            outcomes.append(_outcome(item, cid, "dropped", reasons, **info))
            continue
        seen[pcm] = cid
        owners[cid] = abs_path
        outcomes.append(_outcome(item, cid, "kept", [], **info, notes=prep.notes))
        if cid in done_clips:
            continue  # kept by an earlier, interrupted run whose file outcome was not journalled
        rel = f"{AUDIO_SUBDIR}/{cid}.{fmt}"
        sha = audio.write_audio(ws.root / rel, prep.samples, prep.sample_rate, fmt)
        row = {"clip_id": cid, "path": rel, "duration_s": measures.pop("duration_s"),
               "sample_rate": prep.sample_rate, "sha256": sha, "source": source_name, **defaults,
               **{k: v for k, v in item.fields.items() if k != "clip_id" and v is not None},
               "meta_source_file": item.key, "meta_source_path": abs_path,
               "meta_segment_start_s": seg_info.get("segment_start_s"),
               "meta_segment_end_s": seg_info.get("segment_end_s"), **item.meta,
               "qc_loudness_in_lufs": prep.loudness_in, "qc_gain_db": prep.gain_db,
               "qc_notes": "; ".join(prep.notes) or None, **measures, "qc_pcm_sha256": pcm}
        clips.append(row)
    return clips, outcomes


def collect(workspace: Workspace | str | os.PathLike, source: str | os.PathLike, *, vad: bool = False,
            min_dur: float = 0.5, max_dur: float = 30.0, max_clipping: float = 0.001,
            max_silence: float = 0.8, min_snr_db: float = 5.0, target_lufs: float | None = audio.TARGET_LUFS,
            audio_format: str = "flac",
            speaker: str | None = None, gender: str | None = None, language: str | None = None,
            speaker_from_folder: bool = False, source_name: str | None = None, batch_files: int = 8,
            progress: bool = False) -> dict[str, Any]:
    """Ingest ``source`` (a folder or a CSV/JSONL manifest) into the workspace's ``clips`` table.

    Args:
        workspace: a Workspace or its directory.
        source: a folder of audio files, or a manifest (``.csv``, ``.jsonl``) with a ``path`` column.
        vad: cut each recording into utterances with Silero VAD (segments up to ``max_dur``).
        min_dur, max_dur, max_clipping, max_silence, min_snr_db: QC thresholds (see the module docstring).
        target_lufs: loudness target (None keeps the recorded level).
        audio_format: ``flac`` or ``wav``.
        speaker, gender, language: defaults for clips the manifest says nothing about (language defaults
            to the workspace's first language); ``speaker_from_folder`` takes the speaker from the first
            sub-folder of a folder source.
        source_name: the ``source`` column (default ``collect:<folder or manifest name>``).
        batch_files: files per journal part (the most a kill can make redo).
        progress: draw a progress bar on stderr.

    Returns:
        A summary dict: kept/dropped counts, counts per reason, the report paths.

    Raises:
        InputError: the source is missing or the manifest is malformed (bad audio files never raise).
        ConfigError: bad settings.
    """
    started = time.monotonic()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    src = Path(source).expanduser().resolve()
    fmt = audio_format.lower()
    if fmt not in ("flac", "wav"):
        raise ConfigError(f"audio format {audio_format!r}; expected 'flac' or 'wav'")
    if not 0 < min_dur <= max_dur:
        raise ConfigError(f"durations: expected 0 < min_dur <= max_dur, got {min_dur} and {max_dur}")
    qc = QCSettings(min_dur, max_dur, max_clipping, max_silence, min_snr_db)
    ignored: list[str] = []
    if src.is_dir():
        items, ignored = scan_folder(src, speaker_from_folder=speaker_from_folder)
        manifest_sha = None
    elif src.is_file():
        items = read_manifest(src)
        manifest_sha = hashlib.sha256(src.read_bytes()).hexdigest()
    else:
        raise InputError(Problem("not found", file=str(src), expected="a folder of audio files or a "
                                 "CSV/JSONL manifest with a path column"))
    source_name = source_name or f"collect:{src.stem if src.is_file() else src.name}"
    defaults = {"speaker_id": speaker, "gender": gender,
                "language": language or (ws.config["project"].get("languages") or [None])[0]}
    config = {"source": str(src), "manifest_sha256": manifest_sha, "vad": vad, "qc": qc.__dict__,
              "target_lufs": target_lufs, "sample_rate": audio.TARGET_SR, "format": fmt,
              "defaults": defaults, "speaker_from_folder": speaker_from_folder, "source_name": source_name}
    clips_journal = ws.resumable("collect", config, table="clips")
    files_journal = ws.resumable("collect-files", config)
    report_stem = f"collect-qc-{clips_journal.config_hash}"

    # Kept audio already in the workspace (earlier runs, other sources) counts for duplicate detection.
    # Clip ids already taken, with the file they came from, so an explicit manifest id cannot overwrite them.
    seen: dict[str, str] = {}
    owners: dict[str, str | None] = {}
    journalled = clips_journal.rows() if clips_journal.parts() else None
    done_clips = set(journalled.column("clip_id").to_pylist()) if journalled is not None else set()
    for table in (ws.read_table("clips") if ws.has_table("clips") else None, journalled):
        if table is None:
            continue
        ids, hashes, paths = (_column(table, c) for c in ("clip_id", "qc_pcm_sha256", "meta_source_path"))
        for i, cid in enumerate(ids):
            if hashes and hashes[i]:
                seen.setdefault(hashes[i], cid)
            owners.setdefault(cid, paths[i] if paths else None)
    done_files = set()
    if files_journal.parts():
        done_files = set(files_journal.rows().column("file_key").to_pylist())
    todo = [it for it in items if it.key not in done_files]
    (ws.root / AUDIO_SUBDIR).mkdir(parents=True, exist_ok=True)

    clip_batch: list[dict] = []
    outcome_batch: list[dict] = []
    n_files = 0

    def flush() -> None:
        nonlocal clip_batch, outcome_batch, n_files
        # clips first: a kill between the two writes only makes the file be redone (its clips count once)
        if clip_batch:
            clips_journal.write(clip_batch)
        if outcome_batch:
            files_journal.write([{**o, "reasons": json.dumps(o["reasons"]), "codes": ",".join(o["codes"]),
                                  "notes": json.dumps(o.get("notes", []))} for o in outcome_batch])
        clip_batch, outcome_batch, n_files = [], [], 0

    with progress_bar(len(todo), "collect", enabled=progress) as advance:
        for item in todo:
            rows, outcomes = _process(ws, item, qc=qc, vad=vad, target_lufs=target_lufs, fmt=fmt,
                                      source_name=source_name, defaults=defaults, seen=seen,
                                      owners=owners, done_clips=done_clips)
            clip_batch += rows
            outcome_batch += outcomes
            n_files += 1
            if n_files >= batch_files:
                flush()
            advance()
        flush()

    if clips_journal.parts():
        clips_journal.finish("clips")
    outcomes = _read_outcomes(files_journal)
    report = qc_report(outcomes, ignored=ignored, config=config, config_hash=clips_journal.config_hash,
                       workspace=ws)
    report["elapsed_s"] = round(time.monotonic() - started, 3)
    report["n_files_resumed"] = len(items) - len(todo)
    json_path = ws.reports_dir / f"{report_stem}.json"
    html_path = ws.reports_dir / f"{report_stem}.html"
    report["report_json"], report["report_html"] = str(json_path), str(html_path)
    atomic_write_text(json_path, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(html_path, render_html(report))
    ws.set_section("collect", {"source": str(src), "vad": vad, "min_dur": min_dur, "max_dur": max_dur,
                               "max_clipping": max_clipping, "max_silence": max_silence,
                               "min_snr_db": min_snr_db, "target_lufs": target_lufs, "format": fmt,
                               "config_hash": clips_journal.config_hash})
    return {k: v for k, v in report.items() if k != "outcomes"}


def _column(table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else []


def _read_outcomes(journal) -> list[dict[str, Any]]:
    if not journal.parts():
        return []
    out = []
    for row in journal.rows().to_pylist():
        row["reasons"] = json.loads(row["reasons"]) if row.get("reasons") else []
        row["codes"] = [c for c in (row.get("codes") or "").split(",") if c]
        row["notes"] = json.loads(row["notes"]) if row.get("notes") else []
        out.append({k: v for k, v in row.items() if v is not None})
    return out


def qc_report(outcomes: list[dict[str, Any]], *, ignored: Sequence[str] = (), config: dict | None = None,
              config_hash: str | None = None, workspace: Workspace | None = None) -> dict[str, Any]:
    """The QC report of a collect run: counts kept/dropped, per reason, and every outcome (pure)."""
    kept = [o for o in outcomes if o["status"] == "kept"]
    dropped = [o for o in outcomes if o["status"] != "kept"]
    by_reason = Counter(code for o in dropped for code in o["codes"])
    files = {o["file_key"] for o in outcomes}
    files_kept = {o["file_key"] for o in kept}
    return {
        "step": "collect", "workspace": str(workspace.root) if workspace else None,
        "config_hash": config_hash,
        "config": config, "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "n_files": len(files), "n_files_with_kept_clips": len(files_kept),
        "n_kept": len(kept), "n_dropped": len(dropped),
        "kept_duration_s": round(sum(o.get("duration_s", 0.0) for o in kept), 3),
        "dropped_by_reason": {r: by_reason[r] for r in REASONS if by_reason[r]},
        "n_ignored": len(ignored), "ignored": [{"file": f, "reason": "not an audio file extension "
                                                f"({', '.join(audio.AUDIO_EXTENSIONS)})"} for f in ignored],
        "outcomes": outcomes,
    }


def render_html(report: dict[str, Any]) -> str:
    """The QC report as a standalone HTML page (jinja2 template ``templates/collect_qc.html.j2``)."""
    from jinja2 import select_autoescape

    from casebench import resources

    env = resources.jinja_env("templates", autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("collect_qc.html.j2").render(r=report)
