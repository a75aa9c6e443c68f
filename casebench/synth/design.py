"""The crossing plan of a synthetic conflict set: which sentence is spoken with which voice and emotion.

A plan crosses acoustic emotions (how the voice sounds) with semantic emotions (what the words say). Each
cell (acoustic, semantic) gets a count: ``per_cell`` everywhere by default, ``congruent`` on the diagonal
(the congruent controls; 0 drops them), and any cell may be set explicitly. Within a cell, voices rotate
so every voice (speaker) speaks in every acoustic emotion; sentences for a semantic emotion are drawn
from a seeded shuffle of the bank without repeats until the bank is used up.

Everything follows from the seed: the same bank, voices, counts and seed give the same plan and the same
clip ids, which is what lets ``synth`` resume.

>>> from casebench.synth.texts import Sentence
>>> bank = {e: [Sentence(f"{e} words {i}", e, "test") for i in range(3)] for e in ("angry", "sad")}
>>> plan = make_plan(bank, ["angry", "sad"], ["v1", "v2"], per_cell=2, seed=0)
>>> len(plan), sum(c.is_congruent for c in plan)
(8, 4)
>>> plan == make_plan(bank, ["angry", "sad"], ["v1", "v2"], per_cell=2, seed=0)
True
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from casebench.errors import ConfigError, InputError, Problem, did_you_mean
from casebench.synth.texts import Sentence
from casebench.workspace import clip_id_for


@dataclass(frozen=True)
class PlannedClip:
    """One clip of the plan: its id, the emotions it crosses, its sentence and its voice."""

    clip_id: str
    acoustic: str
    semantic: str
    index: int            # k-th clip of its cell
    text: str
    voice: str
    text_source: str
    text_prompt: str | None = None

    @property
    def is_congruent(self) -> bool:
        return self.acoustic == self.semantic


def parse_cell_counts(spec: str | Mapping[str, int] | None) -> dict[tuple[str, str], int]:
    """Cell overrides from ``"angry/sad=3,happy/happy=0"`` (acoustic/semantic=count) or a dict of the same.

    >>> parse_cell_counts("angry/sad=3, happy/happy=0")
    {('angry', 'sad'): 3, ('happy', 'happy'): 0}
    """
    if not spec:
        return {}
    items = spec.items() if isinstance(spec, Mapping) else (
        part.split("=", 1) if "=" in part else (part, "") for part in str(spec).split(",") if part.strip())
    out: dict[tuple[str, str], int] = {}
    problems = []
    for key, value in items:
        key = str(key).strip()
        if key.count("/") != 1:
            problems.append(Problem(f"cell {key!r}", expected="acoustic/semantic, e.g. angry/sad",
                                    field="counts"))
            continue
        try:
            n = int(str(value).strip())
            if n < 0:
                raise ValueError
        except ValueError:
            problems.append(Problem(f"count {value!r} for cell {key!r}", expected="an integer >= 0",
                                    field="counts"))
            continue
        a, s = (x.strip() for x in key.split("/"))
        out[(a, s)] = n
    if problems:
        raise InputError(problems, summary="bad cell counts")
    return out


def cell_counts(emotions: Sequence[str], per_cell: int = 1, congruent: int | None = None,
                overrides: Mapping[tuple[str, str], int] | None = None) -> dict[tuple[str, str], int]:
    """Count of each (acoustic, semantic) cell: ``per_cell``, ``congruent`` on the diagonal (default
    ``per_cell``), then ``overrides``; cells with 0 are left out.

    >>> cell_counts(["angry", "sad"], per_cell=2, congruent=1)
    {('angry', 'angry'): 1, ('angry', 'sad'): 2, ('sad', 'angry'): 2, ('sad', 'sad'): 1}
    """
    if per_cell < 0 or (congruent is not None and congruent < 0):
        raise ConfigError(f"cell counts must be >= 0, not per_cell={per_cell}, congruent={congruent}")
    congruent = per_cell if congruent is None else congruent
    counts = {(a, s): (congruent if a == s else per_cell) for a in emotions for s in emotions}
    for cell, n in (overrides or {}).items():
        bad = [e for e in cell if e not in emotions]
        if bad:
            hint = did_you_mean(bad[0], emotions)
            raise ConfigError(f"cell {cell[0]}/{cell[1]}: emotion {bad[0]!r} is not in the plan's emotions "
                              f"{list(emotions)}" + (f" ({hint})" if hint else ""))
        counts[cell] = n
    return {cell: n for cell, n in counts.items() if n > 0}


def needed_per_semantic(counts: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """How many clips each semantic emotion has in a plan (how many sentences would avoid any reuse)."""
    out: dict[str, int] = {}
    for (_, s), n in counts.items():
        out[s] = out.get(s, 0) + n
    return out


def make_plan(bank: Mapping[str, Sequence[Sentence]], emotions: Sequence[str], voices: Sequence[str], *,
              per_cell: int = 1, congruent: int | None = None,
              overrides: Mapping[tuple[str, str], int] | None = None, seed: int = 0,
              id_prefix: str = "s-", available: Mapping[str, set[str]] | None = None) -> list[PlannedClip]:
    """The plan: one :class:`PlannedClip` per clip, in cell order (acoustic, then semantic, then index).

    Voices: in cell (a, s) clip k gets ``voices[(i_a + i_s + k + r) % V]`` with ``r`` a seeded offset, so
    each voice covers every row and column of the crossing. Sentences: a seeded shuffle of the bank for
    each semantic emotion, dealt out in cell order; a bank smaller than the demand is dealt again (the
    same sentence then appears with several acoustic emotions).

    ``available`` (reference-prompted synthesis: voice -> the acoustic emotions it has a reference for)
    makes the rotation skip a voice that cannot speak the cell's acoustic emotion and take the next one
    that can; a clip no voice can speak gets ``voice=""`` (the caller reports it as missing).

    Raises:
        ConfigError: no voices, no emotions, or a semantic emotion the bank has no sentence for.
    """
    if not voices:
        raise ConfigError("a synth plan needs at least one voice")
    if not emotions:
        raise ConfigError("a synth plan needs at least one emotion")
    counts = cell_counts(emotions, per_cell, congruent, overrides)
    missing = sorted({s for (_, s) in counts if not bank.get(s)}, key=list(emotions).index)
    if missing:
        raise ConfigError(f"the sentence source has no sentences for semantic emotion(s) {missing}; it has "
                          f"{sorted(k for k, v in bank.items() if v)}")
    rng = random.Random(seed)
    decks = {}
    for s in emotions:
        deck = list(bank.get(s, ()))
        rng.shuffle(deck)
        decks[s] = deck
    offset = rng.randrange(len(voices))
    dealt = {s: 0 for s in emotions}
    plan: list[PlannedClip] = []
    for ia, a in enumerate(emotions):
        for is_, s in enumerate(emotions):
            for k in range(counts.get((a, s), 0)):
                sentence = decks[s][dealt[s] % len(decks[s])]
                dealt[s] += 1
                start = ia + is_ + k + offset
                voice = voices[start % len(voices)]
                if available is not None:
                    voice = next((voices[(start + j) % len(voices)] for j in range(len(voices))
                                  if a in available.get(voices[(start + j) % len(voices)], ())), "")
                key = "\x1f".join(("synth", a, s, str(k), voice, sentence.text))
                plan.append(PlannedClip(clip_id_for(key, id_prefix), a, s, k, sentence.text, voice,
                                        sentence.source, sentence.prompt))
    ids = [c.clip_id for c in plan]
    if len(set(ids)) != len(ids):  # would need a sha1 collision on distinct keys
        raise ConfigError("the synth plan produced duplicate clip ids")
    return plan


def plan_matrix(plan: Sequence[PlannedClip], emotions: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts as a nested dict ``{acoustic: {semantic: n}}`` in ``emotions`` order (for reports)."""
    m = {a: {s: 0 for s in emotions} for a in emotions}
    for c in plan:
        m[c.acoustic][c.semantic] += 1
    return m
