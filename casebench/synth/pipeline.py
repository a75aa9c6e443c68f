"""The ``synth`` step: sentences x voices x emotions -> normalised clips in the workspace's ``clips`` table.

CASE builds its conflict set by having an LLM write sentences whose words carry one emotion and an
expressive TTS speak them with another. :func:`synth` does the same with pluggable parts: a text source
(:mod:`casebench.synth.texts`), a crossing plan (:mod:`casebench.synth.design`) and a TTS backend
(:mod:`casebench.synth.backends`). Each clip is decoded, made 16 kHz mono and loudness-normalised
(:func:`casebench.audio.prepare`), written to ``audio/synth/<clip_id>.flac`` and recorded with its text,
intended acoustic and semantic emotion, voice (speaker_id), backend and backend parameters (``meta_*``
columns; parameters as JSON text in ``meta_tts_params``).

Reference-prompted (``reference_from``, the recommended way for clips that sound like people): the voices
are speakers of an imported acted corpus, and each clip's program is given a reference take of its speaker
in its acoustic emotion (:mod:`casebench.synth.references`); the reference's id, speaker and text are
stored with the clip (``meta_reference_*``), and a cell no speaker can fill is reported as missing.

Resumable: rows go through ``workspace.resumable("synth", config)`` in small batches, clip ids follow from
the plan, and a re-run under the same config skips the clips already done, so a run killed with
``kill -9`` loses and duplicates nothing. Text from an LLM is generated once per config and cached in the
workspace (``tables/.parts/synth-texts/``), so a resumed run sees the same sentences.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from casebench.audio import TARGET_LUFS, TARGET_SR, decode, prepare, qc_measures, write_audio
from casebench.errors import CasebenchError, ConfigError, InputError, MissingDependencyError, Problem
from casebench.progress import progress_bar
from casebench.synth.backends import Backend, make_backend
from casebench.synth.design import PlannedClip, cell_counts, make_plan, needed_per_semantic, plan_matrix
from casebench.synth.texts import (
    TextBank,
    bank_from_json,
    bank_to_json,
    builtin_bank,
    llm_bank,
    read_csv_bank,
)
from casebench.workspace import Workspace, atomic_write_text, config_hash

AUDIO_SUBDIR = "audio/synth"
REPORT_NAME = "synth.json"


def _workspace(workspace: Workspace | str | os.PathLike) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)


def _check_emotions(emotions: Sequence[str], ws: Workspace) -> list[str]:
    tax = ws.taxonomy
    problems = [tax.check_label(e, field="emotions") for e in emotions if e not in tax.index]
    if problems:
        raise InputError(problems, summary=f"emotions not in the workspace taxonomy {tax.name}")
    if len(set(emotions)) != len(emotions):
        raise ConfigError(f"emotions listed twice in {list(emotions)}")
    return list(emotions)


def load_texts(ws: Workspace, texts: str | os.PathLike | TextBank | None, *, wanted: Mapping[str, int],
               text_llm: str | None = None, llm_model: str | None = None, llm_temperature: float = 0.9,
               seed: int = 0, api_key: str | None = None) -> TextBank:
    """The sentence bank for a synth run: an LLM (cached in the workspace), a CSV, a bank, or built-in."""
    language = (ws.config["project"].get("languages") or ["en"])[0]
    if text_llm:
        if not llm_model:
            raise ConfigError("--text-llm needs --model (the chat model to ask for sentences)")
        key = config_hash({"url": text_llm, "model": llm_model, "wanted": dict(wanted), "seed": seed,
                           "temperature": llm_temperature, "language": language})
        cache = ws.tables_dir / ".parts" / "synth-texts" / f"{key}.json"
        if cache.is_file():
            return bank_from_json(json.loads(cache.read_text("utf-8")))
        bank = llm_bank(text_llm, llm_model, wanted, api_key=api_key, language=language,
                        temperature=llm_temperature, seed=seed)
        atomic_write_text(cache, json.dumps(bank_to_json(bank), indent=1, ensure_ascii=False))
        return bank
    if isinstance(texts, TextBank):
        return texts
    if texts is None or str(texts) == "builtin":
        return builtin_bank(language, ws.taxonomy)
    return read_csv_bank(texts, ws.taxonomy, language=language)


def _reference_wav(ref, tmp: Path) -> Any:
    """The reference as a WAV file in ``tmp`` (TTS tools read WAV; corpora also hold FLAC or MP3)."""
    import dataclasses

    import soundfile as sf

    path = tmp / f"ref-{ref.clip_id}.wav"
    if not path.exists():
        x, sr = decode(ref.audio)
        sf.write(str(path), x, sr, subtype="PCM_16")
    return dataclasses.replace(ref, audio=str(path))


def _row(ws: Workspace, clip: PlannedClip, backend: Backend, bank: TextBank, tmp: Path, *, target_lufs: float,
         fmt: str, session: str, reference=None, reference_name: str | None = None) -> dict[str, Any]:
    if reference is not None:
        raw = backend.synthesize(clip.text, clip.acoustic, clip.voice, tmp / clip.clip_id,
                                 reference=_reference_wav(reference, tmp))
    else:
        raw = backend.synthesize(clip.text, clip.acoustic, clip.voice, tmp / clip.clip_id)
    try:
        x, sr = decode(raw)
    finally:
        raw.unlink(missing_ok=True)
    prep = prepare(x, sr, target_lufs=target_lufs, offset_db=backend.loudness_offset_db(clip.acoustic))
    rel = f"{AUDIO_SUBDIR}/{clip.clip_id}.{fmt}"
    sha = write_audio(ws.root / rel, prep.samples, prep.sample_rate, fmt)
    qc = qc_measures(x, prep.samples, prep.sample_rate)
    ref_cols = {}
    if reference is not None:
        ref_cols = {"meta_reference_clip": reference.clip_id, "meta_reference_speaker": reference.speaker,
                    "meta_reference_corpus": reference_name, "meta_reference_text": reference.text or None,
                    "meta_reference_emotion": reference.emotion}
    return {
        "clip_id": clip.clip_id, "path": rel, "duration_s": qc.pop("duration_s"),
        "sample_rate": prep.sample_rate, "sha256": sha,
        # a reference-prompted clip speaks with its reference speaker's (cloned) voice
        "speaker_id": reference.speaker if reference is not None else f"{backend.name}:{clip.voice}",
        "gender": reference.gender if reference is not None else backend.gender(clip.voice),
        "language": bank.language, "source": f"synth:{backend.name}", "session": session,
        "text_prompt": clip.text, "intended_acoustic": clip.acoustic, "intended_semantic": clip.semantic,
        "meta_voice": clip.voice, "meta_backend": backend.name,
        "meta_tts_params": json.dumps(backend.params(clip.acoustic, clip.voice), sort_keys=True),
        "meta_text_source": clip.text_source, "meta_text_generation_prompt": clip.text_prompt,
        "meta_cell_index": clip.index,
        "qc_loudness_in_lufs": prep.loudness_in, "qc_gain_db": prep.gain_db,
        "qc_notes": "; ".join(prep.notes) or None, **qc, **ref_cols,
    }


def synth(workspace: Workspace | str | os.PathLike, *, backend: str | Backend = "espeak-ng",
          backend_options: Mapping[str, Any] | None = None, voices: Sequence[str] | None = None,
          emotions: Sequence[str] | None = None, per_cell: int = 2, congruent: int | None = None,
          counts: Mapping[tuple[str, str], int] | None = None,
          texts: str | os.PathLike | TextBank | None = None, text_llm: str | None = None,
          llm_model: str | None = None, llm_temperature: float = 0.9, llm_api_key: str | None = None,
          seed: int = 0, target_lufs: float = TARGET_LUFS, audio_format: str = "flac", batch_size: int = 8,
          progress: bool = False, abort_after: int = 5, reference_from: str | os.PathLike | Workspace | None = None,
          reference_split: str | None = None, reference_speakers: int | None = None) -> dict[str, Any]:
    """Synthesize a conflict set into ``workspace`` and write its ``clips`` table; returns a summary.

    Args:
        workspace: a Workspace or its directory (made with ``casebench init``).
        backend: a name in :data:`casebench.synth.backends.BACKENDS` or a Backend instance;
            ``backend_options`` go to its constructor (``command=`` for ``command``; ``url=``, ``model=``
            for ``openai``).
        voices: voices (speakers) of the backend; default its ``default_voices``. With ``reference_from``:
            speaker ids of the reference workspace (default: its speakers, see ``reference_speakers``).
        emotions: the emotions crossed (acoustic and semantic); default the workspace taxonomy.
        per_cell, congruent, counts: clips per cell, on the diagonal (default ``per_cell``), and per named
            cell ``{(acoustic, semantic): n}`` (see :func:`casebench.synth.design.cell_counts`).
        texts: ``None``/``"builtin"`` for the built-in bank, a CSV path (text, semantic_emotion) or a
            TextBank; ``text_llm`` + ``llm_model`` ask an OpenAI-compatible chat endpoint instead.
        seed: makes the plan (sentence order, voice rotation) and the LLM requests reproducible.
        target_lufs: loudness target; the backend's designed per-emotion offset is kept on top.
        audio_format: ``flac`` or ``wav``.
        batch_size: clips per journal part (the most a kill can make redo).
        progress: draw a progress bar on stderr.
        abort_after: stop when this many clips failed before any succeeded (a broken backend).
        reference_from: an imported acted corpus (workspace) whose takes prompt the backend
            (:mod:`casebench.synth.references`); the backend must accept references (``command`` with
            ``{ref_audio}``, ``openai`` with ``body``).
        reference_split: take references only from this split of ``reference_from``.
        reference_speakers: use this many reference speakers (those covering most emotions first).

    Returns:
        A dict: config hash, counts (planned, already done, made now, failed), the plan matrix, text
        source and notes, report and table paths; with references also ``reference`` (the pool's counts,
        notes and the reference of every clip) and ``missing`` (clips no reference speaker could fill, with
        their cell, planned speaker and reason).

    Raises:
        ConfigError: bad settings, or a backend that cannot work (the clips made so far are kept).
        InputError: clips failed; the others are saved and a re-run retries only the failed ones.
    """
    started = time.monotonic()
    ws = _workspace(workspace)
    fmt = audio_format.lower()
    if fmt not in ("flac", "wav"):
        raise ConfigError(f"audio format {audio_format!r}; expected 'flac' or 'wav'")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
    tts = backend if isinstance(backend, Backend) else make_backend(backend, **dict(backend_options or {}))
    emotions = _check_emotions(list(emotions) if emotions else list(ws.taxonomy.labels), ws)
    tts.check_emotions(emotions)
    tts.check_reference(reference_from is not None)
    pool = None
    if reference_from is not None:
        from casebench.synth.references import choose_speakers, reference_pool

        pool = reference_pool(reference_from, split=reference_split, taxonomy=ws.taxonomy)
        voices = choose_speakers(pool, emotions, speakers=voices, n_speakers=reference_speakers, seed=seed)
    voices = list(voices) if voices else list(tts.default_voices)
    overrides = dict(counts or {})
    cells = cell_counts(emotions, per_cell, congruent, overrides)
    bank = load_texts(ws, texts, wanted=needed_per_semantic(cells), text_llm=text_llm, llm_model=llm_model,
                      llm_temperature=llm_temperature, seed=seed, api_key=llm_api_key)
    plan = make_plan(bank.sentences, emotions, voices, per_cell=per_cell, congruent=congruent,
                     overrides=overrides, seed=seed, available=pool.available() if pool is not None else None)
    if not plan:
        raise ConfigError("the synth plan is empty: every cell count is 0")
    missing = [c for c in plan if not c.voice]
    plan = [c for c in plan if c.voice]
    references = {}
    if pool is not None:
        dealer = pool.dealer(seed)
        references = {c.clip_id: dealer.deal(c.voice, c.acoustic) for c in plan}
    if not plan:
        raise ConfigError(f"no clip of the plan can be made: no reference speaker of {pool.name} has any of the "
                          f"voice emotions {sorted({c.acoustic for c in missing})}")
    config = {
        "backend": tts.config(), "voices": voices, "emotions": emotions, "per_cell": per_cell,
        "congruent": congruent, "counts": {f"{a}/{s}": n for (a, s), n in sorted(overrides.items())},
        "texts": {"source": bank.source.split("@")[0] if bank.source.startswith("llm:") else
                  (f"csv:{Path(bank.source[4:]).name}" if bank.source.startswith("csv:") else bank.source),
                  "fingerprint": bank.fingerprint},
        "seed": seed, "target_lufs": target_lufs, "sample_rate": TARGET_SR, "format": fmt,
    }
    if pool is not None:
        config["reference"] = {"workspace": pool.name, "fingerprint": pool.fingerprint, "split": reference_split}
    journal = ws.resumable("synth", config, table="clips")
    session = f"synth-{journal.config_hash}"
    ws.set_section("synth", {"backend": tts.name, "voices": voices, "emotions": emotions,
                             "per_cell": per_cell, "congruent": congruent, "counts": config["counts"],
                             "texts": config["texts"]["source"], "seed": seed, "target_lufs": target_lufs,
                             "format": fmt, "config_hash": journal.config_hash,
                             **({"reference_from": str((reference_from.root if isinstance(reference_from, Workspace)
                                                        else Path(reference_from)).resolve()),
                                 "reference_split": reference_split} if pool is not None else {})})
    done = journal.done_ids()
    todo = [c for c in plan if c.clip_id not in done]
    (ws.root / AUDIO_SUBDIR).mkdir(parents=True, exist_ok=True)
    failures: list[Problem] = []
    n_ok = 0
    batch: list[dict[str, Any]] = []
    fatal: CasebenchError | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="casebench-synth-") as tmp, \
                progress_bar(len(todo), f"synth ({tts.name})", enabled=progress) as advance:
            for clip in todo:
                try:
                    batch.append(_row(ws, clip, tts, bank, Path(tmp), target_lufs=target_lufs, fmt=fmt,
                                      session=session, reference=references.get(clip.clip_id),
                                      reference_name=pool.name if pool is not None else None))
                    n_ok += 1
                except (ConfigError, MissingDependencyError) as e:
                    fatal = e
                    break
                except CasebenchError as e:
                    why = "; ".join(map(str, e.problems)) if isinstance(e, InputError) else str(e)
                    failures.append(Problem(why, id=clip.clip_id,
                                            field=f"{clip.acoustic} voice / {clip.semantic} words"))
                    if n_ok == 0 and len(failures) >= abort_after:
                        break
                if len(batch) >= batch_size:
                    journal.write(batch)
                    batch = []
                advance()
    finally:
        if batch:
            journal.write(batch)
    rows = journal.rows()
    table = journal.finish("clips") if rows.num_rows else None
    matrix = plan_matrix(plan, emotions)
    have = pool.available() if pool is not None else {}
    missing_rows = [{"cell": f"{c.acoustic}/{c.semantic}", "index": c.index, "text": c.text,
                     "reason": f"no reference speaker among {len(voices)} has a {c.acoustic!r} take"
                               + ("" if any(c.acoustic in v for v in have.values()) else
                                  f" ({pool.name} has no {c.acoustic!r} clip at all)")} for c in missing]
    plan_ids = {c.clip_id for c in plan}
    n_in_table = len(plan_ids & set(rows.column("clip_id").to_pylist()))
    summary = {
        "workspace": str(ws.root), "step": "synth", "config_hash": journal.config_hash, "backend": tts.name,
        "backend_config": tts.config(), "voices": voices, "emotions": emotions, "seed": seed,
        "n_planned": len(plan), "n_done_before": len(plan_ids & done), "n_made": n_ok,
        "n_failed": len(failures),
        "n_in_table": n_in_table, "n_congruent": sum(c.is_congruent for c in plan),
        "n_conflict": sum(not c.is_congruent for c in plan), "matrix": matrix,
        "texts": {"source": bank.source, "counts": bank.counts(), "notes": bank.notes},
        "failures": [p.to_dict() for p in failures],
        "n_missing": len(missing), "missing": missing_rows,
        "clips_table": str(ws.table_path("clips")) if table is not None else None,
        "report": str(ws.reports_dir / REPORT_NAME),
        "elapsed_s": round(time.monotonic() - started, 3),
        # (a pathlib.Path has a .root too: "" or "/", which was recorded as the reference workspace)
        **({"reference": {"workspace": str((reference_from.root if isinstance(reference_from, Workspace)
                                            else Path(reference_from)).resolve()),
                          "name": pool.name, "split": reference_split, "counts": pool.counts, "notes": pool.notes,
                          "speakers": voices,
                          "clips": {cid: {"reference_clip": r.clip_id, "speaker": r.speaker, "emotion": r.emotion}
                                    for cid, r in references.items()}}} if pool is not None else {}),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(ws.reports_dir / REPORT_NAME, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    if isinstance(fatal, ConfigError):
        raise ConfigError(f"{fatal} ({n_in_table} of {len(plan)} clips are saved; fix this and re-run to "
                          "make the rest)") from fatal
    if fatal is not None:
        raise fatal
    if failures:
        stopped = n_ok == 0 and len(failures) >= abort_after and len(todo) > len(failures)
        raise InputError(failures, summary=(
            f"the {tts.name} backend failed on the first {len(failures)} clips; stopped" if stopped else
            f"{len(failures)} of {len(todo)} clips failed; the other {n_in_table} are in the clips table, "
            "re-run to retry the failed ones"))
    return summary
