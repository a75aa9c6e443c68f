"""Reference clips for reference-prompted synthesis, picked from an imported acted corpus.

Zero-shot TTS systems (F5-TTS, CosyVoice, XTTS, ...) clone the voice *and the manner* of a short reference
recording into new words. Prompting such a system with an angry take of an actor and a sad sentence gives an
angry-voice/sad-words clip whose anger is a person's, not a preset's. This module turns a workspace made
by ``casebench import-corpus`` (CREMA-D, RAVDESS, EMIS/ESD, IEMOCAP, ...) into a pool of references keyed
by (speaker, voice emotion) and deals them out to the clips of a synth plan:

- a reference must have a voice label in the workspace taxonomy (``labels.acoustic_label``), a speaker and
  readable audio; its text is the transcript (``transcripts`` table: the corpus's own or ``transcribe``'s),
  else the clip's prompt text (CREMA-D's and RAVDESS's fixed sentences), else empty (counted: some tools,
  F5-TTS among them, transcribe an empty reference text themselves);
- clips of :data:`MIN_S`-:data:`MAX_S` seconds are preferred (zero-shot systems clip longer prompts and
  copy too little from shorter ones); others are used only when a speaker has nothing better;
- within a (speaker, emotion) the references are dealt from a seeded shuffle, so the clips of one cell use
  different takes where the corpus has them;
- ``split`` restricts the pool to one split of the reference workspace (``--reference-split train``), so
  a corpus's test speakers never lend their voice to training material.

A synthesized clip carries its reference's speaker (``meta_reference_speaker``, ``<corpus>:<speaker>``):
``casebench split`` keeps all clips of one reference speaker in one split and ``casebench audit`` counts a
reference speaker as a speaker (see :mod:`casebench.splits`, :mod:`casebench.audit`).

>>> pool = ReferencePool("c", [Reference("c-1", "c:1", "1", "angry", "/a.wav", "hi", 3.0),
...                            Reference("c-2", "c:1", "1", "sad", "/b.wav", "hi", 3.0)])
>>> pool.speakers(), pool.emotions_of("1")
(['1'], ['angry', 'sad'])
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from casebench.errors import ConfigError, InputError, Problem, did_you_mean

#: Preferred reference length in seconds (F5-TTS clips prompts to about 12 s; XTTS asks for 3-10 s).
MIN_S, MAX_S = 2.0, 12.0


@dataclass(frozen=True)
class Reference:
    """One reference clip: its id in the reference workspace, speaker, voice emotion, audio and text."""

    clip_id: str
    speaker: str          # qualified: <reference workspace name>:<speaker_id>
    local_speaker: str    # the speaker_id as the reference workspace spells it
    emotion: str
    audio: str            # absolute path of the audio file
    text: str
    duration_s: float
    gender: str | None = None

    @property
    def preferred(self) -> bool:
        return MIN_S <= self.duration_s <= MAX_S


@dataclass
class ReferencePool:
    """The references of a workspace, by (speaker, emotion); see :func:`reference_pool`."""

    name: str
    references: list[Reference]
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.by_cell: dict[tuple[str, str], list[Reference]] = {}
        for ref in self.references:
            self.by_cell.setdefault((ref.local_speaker, ref.emotion), []).append(ref)

    def speakers(self) -> list[str]:
        """Speakers in order of how many emotions they cover (most first), then by id."""
        cover: dict[str, set] = {}
        for spk, emo in self.by_cell:
            cover.setdefault(spk, set()).add(emo)
        return sorted(cover, key=lambda s: (-len(cover[s]), s))

    def emotions_of(self, speaker: str) -> list[str]:
        return sorted(e for s, e in self.by_cell if s == speaker)

    def available(self) -> dict[str, set[str]]:
        """speaker -> the voice emotions it has references for."""
        out: dict[str, set[str]] = {}
        for spk, emo in self.by_cell:
            out.setdefault(spk, set()).add(emo)
        return out

    def dealer(self, seed: int = 0) -> ReferenceDealer:
        return ReferenceDealer(self, seed)


class ReferenceDealer:
    """Deals references per (speaker, emotion) from a seeded shuffle, preferred lengths first, cycling."""

    def __init__(self, pool: ReferencePool, seed: int):
        self.decks: dict[tuple[str, str], list[Reference]] = {}
        for key in sorted(pool.by_cell):
            refs = sorted(pool.by_cell[key], key=lambda r: r.clip_id)
            random.Random(f"{seed}\x1f{key[0]}\x1f{key[1]}").shuffle(refs)
            self.decks[key] = sorted(refs, key=lambda r: not r.preferred)  # stable: the shuffle within each
        self.used: dict[tuple[str, str], int] = {}

    def deal(self, speaker: str, emotion: str) -> Reference | None:
        deck = self.decks.get((speaker, emotion))
        if not deck:
            return None
        i = self.used.get((speaker, emotion), 0)
        self.used[(speaker, emotion)] = i + 1
        return deck[i % len(deck)]


def reference_pool(workspace: Any, *, emotions: Sequence[str] | None = None, split: str | None = None,
                   taxonomy: Any = None) -> ReferencePool:
    """The references of an imported workspace (its clips with a voice label, a speaker and audio).

    Args:
        workspace: a Workspace or its folder (made by ``casebench import-corpus`` or ``collect`` +
            ``aggregate``).
        emotions: keep only these voice emotions (labels of ``taxonomy``).
        split: keep only the clips of this split of the reference workspace's splits table.
        taxonomy: the taxonomy the synth workspace uses; the reference labels are mapped into it with the
            taxonomy YAML mappings when the two differ (a label without a counterpart is left out, counted).

    Raises:
        InputError: the workspace has no labels, no speakers, or nothing usable (every count is listed).
    """
    import pandas as pd

    from casebench.taxonomy import get_taxonomy
    from casebench.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    problems = [Problem(f"no {t} table", file=str(ws.root), expected="an imported corpus (casebench import-corpus)")
                for t in ("clips", "labels") if not ws.has_table(t)]
    if problems:
        raise InputError(problems, summary=f"{ws.root} cannot lend reference clips")
    clips = ws.read_df("clips")
    labels = ws.read_df("labels")[["clip_id", "acoustic_label"]]
    frame = clips.merge(labels, on="clip_id", how="left")
    counts: dict[str, int] = {"clips": int(len(frame))}
    notes: list[str] = []
    if "meta_source_clip" in frame.columns:  # degraded copies are not references
        frame = frame[frame["meta_source_clip"].isna()]
    if split is not None:
        if not ws.has_table("splits"):
            raise InputError(Problem("no splits table", file=str(ws.root), field="reference split",
                                     expected=f"a split named {split!r}: run `casebench split` on it first"))
        splits = ws.read_df("splits")
        names = sorted(set(splits["split"].astype(str)))
        if split not in names:
            raise InputError(Problem(f"no split {split!r}", file=str(ws.table_path("splits")),
                                     field="reference split", expected=f"one of {names}",
                                     hint=did_you_mean(split, names)))
        frame = frame[frame["clip_id"].isin(set(splits.loc[splits["split"].astype(str) == split, "clip_id"]))]
        counts["in_split"] = int(len(frame))
    target = get_taxonomy(taxonomy) if isinstance(taxonomy, str) else (taxonomy or ws.taxonomy)
    if target.name != ws.taxonomy.name:
        table = ws.taxonomy.mapping_to(target.name)
        mapped = frame["acoustic_label"].map(lambda v: table.get(v) if isinstance(v, str) else None)
        lost = int((frame["acoustic_label"].notna() & mapped.isna()).sum())
        if lost:
            counts["label_without_counterpart"] = lost
            notes.append(f"{lost} reference clip(s) whose {ws.taxonomy.name} label has no counterpart in "
                         f"{target.name} left out")
        frame = frame.assign(acoustic_label=mapped)
    for what, bad in (("no_voice_label", frame["acoustic_label"].isna()),
                      ("no_speaker", frame["speaker_id"].isna() if "speaker_id" in frame else None)):
        if bad is None:
            raise InputError(Problem("no speaker_id column", file=str(ws.table_path("clips")),
                                     expected="speakers: a reference speaker must be known to keep it in one split"))
        if bad.any():
            counts[what] = int(bad.sum())
            frame = frame[~bad]
    if emotions is not None:
        frame = frame[frame["acoustic_label"].isin(list(emotions))]
    text_of: dict[str, str] = {}
    if ws.has_table("transcripts"):
        tx = ws.read_df("transcripts")
        text_of = {str(c): str(t) for c, t in zip(tx["clip_id"], tx["text"], strict=True) if isinstance(t, str)}
    refs = []
    no_text = missing_audio = 0
    for row in frame.itertuples(index=False):
        path = ws.resolve(row.path)
        if not path.exists():
            missing_audio += 1
            continue
        text = text_of.get(str(row.clip_id)) or (row.text_prompt if isinstance(getattr(row, "text_prompt", None),
                                                                              str) else "")
        no_text += not text
        duration = float(row.duration_s) if pd.notna(getattr(row, "duration_s", None)) else 0.0
        gender = getattr(row, "gender", None)
        refs.append(Reference(str(row.clip_id), f"{ws.name}:{row.speaker_id}", str(row.speaker_id),
                              str(row.acoustic_label), str(path.resolve()), text.strip(), duration,
                              gender if isinstance(gender, str) else None))
    if missing_audio:
        counts["audio_missing"] = missing_audio
        notes.append(f"{missing_audio} reference clip(s) whose audio file is missing left out")
    if no_text:
        counts["no_text"] = no_text
        notes.append(f"{no_text} reference clip(s) without a transcript or prompt text: {{ref_text}} is empty for "
                     "them (run `casebench transcribe` on the reference workspace to fill it)")
    if not refs:
        raise InputError([Problem(f"{k.replace('_', ' ')}: {v}", file=str(ws.root)) for k, v in counts.items()],
                         summary=f"no usable reference clip in {ws.root} (a voice label, a speaker and audio each)")
    counts["references"] = len(refs)
    digest = hashlib.sha256("\n".join(sorted(f"{r.clip_id}\t{r.emotion}\t{r.local_speaker}" for r in refs))
                            .encode()).hexdigest()[:16]
    return ReferencePool(ws.name, refs, fingerprint=digest, notes=notes, counts=counts)


def choose_speakers(pool: ReferencePool, emotions: Sequence[str], *, speakers: Sequence[str] | None = None,
                    n_speakers: int | None = None, seed: int = 0) -> list[str]:
    """The reference speakers that become the plan's voices.

    ``speakers`` names them (ids of the reference workspace; unknown ones are an error with did-you-mean);
    otherwise every speaker with a reference for at least one of ``emotions``, or ``n_speakers`` of them
    (those covering most emotions first, ties broken by a seeded shuffle).
    """
    have = pool.available()
    if speakers:
        unknown = [s for s in speakers if s not in have]
        if unknown:
            raise InputError([Problem(f"no reference clips of speaker {s!r} in {pool.name}", field="voices",
                                      hint=did_you_mean(s, list(have))) for s in unknown],
                             summary="unknown reference speakers")
        return list(dict.fromkeys(speakers))
    useful = [s for s in have if have[s] & set(emotions)]
    if not useful:
        raise ConfigError(f"no reference speaker of {pool.name} has any of the emotions {list(emotions)}; it has "
                          f"{sorted({e for v in have.values() for e in v})}")
    rng = random.Random(seed)
    order = sorted(useful)
    rng.shuffle(order)
    order.sort(key=lambda s: -len(have[s] & set(emotions)))
    return order[:n_speakers] if n_speakers else order
