"""The emotion of the words: who labels it, per clip, for ``casebench mine-conflicts``.

Three labellers, one registry (:data:`TEXT_EMOTION`), each returning a :class:`WordsLabel` per clip (label
in the workspace taxonomy or None, a confidence in [0, 1], and the evidence):

- ``lexicon``: emotion words (:func:`lexicon_for`: casebench's own curated English lists, covering every
  shipped taxonomy; source and licence in the YAML headers of ``casebench/data/lexicon/``). Confidence is the
  zero-shot posterior of :func:`casebench.baselines.lexicon_proba` (p_c ∝ matches_c + 0.1, + 0.5 for
  neutral): one matching word gives about 0.5, two about 0.65; a text without any emotion word is neutral
  (about 0.46), or unlabelled in a taxonomy without neutral. Weak evidence: it sees words, not irony.
- ``llm:MODEL@URL``: an OpenAI-compatible chat-completions endpoint asked, per clip, for the emotion the words
  express (not how they might be said) as JSON ``{"emotion": ..., "confidence": ...}``; the key comes from
  ``CASEBENCH_LLM_API_KEY`` or ``OPENAI_API_KEY``. An answer outside the taxonomy is reported, never guessed.
- ``ratings``: the workspace's ``semantic_emotion`` ratings (raters who read the transcript without audio):
  the majority label, confidence = its share of the raters; a tie leaves the clip unlabelled.

>>> lex = lexicon_for("ravdess8")
>>> lex.classes[:2], float(lex.counts("Just relax, everything is peaceful")[1])
(('angry', 'calm'), 2.0)
>>> [lexicon_label(lex, t).label for t in ("I am furious with you", "The meeting is at noon")]
['angry', 'neutral']
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casebench import resources
from casebench.errors import ConfigError, InputError, Problem, did_you_mean

#: The general lexicon (ekman7) and the one with every other class of the shipped taxonomies.
BASE_LEXICON = "emotion_words_en.yaml"
FINE_LEXICON = "emotion_words_fine_en.yaml"
LEXICON_NOTE = ("casebench's own curated English emotion-word lists (casebench/data/lexicon/, Apache-2.0; "
                "not derived from the NRC Emotion Lexicon or WordNet-Affect)")
#: Spellings of taxonomy labels folded to the ekman7 class whose words they share.
FOLD = {"fearful": "fear", "surprised": "surprise", "anger": "angry", "sadness": "sad", "joy": "happy",
        "happiness": "happy"}

SYSTEM_PROMPT = ("You label the emotion expressed by the WORDS of a transcribed utterance: what the text says, "
                 "not how it might have been spoken. Answer with one JSON object and nothing else.")
USER_PROMPT = ('Utterance: "{text}"\n\nWhich one of these emotions do the words express: {labels}? If the words '
               'express none of them{neutral_hint}, say so with "emotion": null. Answer as '
               '{{"emotion": "<one of the list or null>", "confidence": <0 to 1>}}.')


@dataclass(frozen=True)
class WordsLabel:
    """The emotion of one clip's words: label (None: undetermined), confidence, and what it rests on."""

    label: str | None
    confidence: float
    evidence: str = ""


@functools.cache
def _yaml(name: str) -> dict:
    import yaml

    return yaml.safe_load(resources.read_text(f"data/lexicon/{name}"))


@functools.cache
def lexicon_for(taxonomy: str):
    """A :class:`casebench.baselines.Lexicon` over ``taxonomy``'s labels (any shipped taxonomy).

    A label that is an ekman7 class (through :data:`FOLD`: fearful, sadness, joy, ...) takes that class of the
    base lexicon; any other label its own class of the fine lexicon; an entry that a fine class claims is
    removed from the taxonomy's other labels (the specific word wins: "furious" is plutchik32's rage, not its anger).

    Raises:
        ConfigError: a label has no words in either lexicon (a taxonomy added without extending the lexicon).
    """
    from casebench.baselines import Lexicon
    from casebench.taxonomy import get_taxonomy

    tax = get_taxonomy(taxonomy)
    base, fine = _yaml(BASE_LEXICON), _yaml(FINE_LEXICON)
    own = {lab: fine["classes"][lab] for lab in tax.labels
           if FOLD.get(lab, lab) not in base["classes"] and lab in fine["classes"]}
    claimed = {str(e).lower() for words in own.values() for e in words}
    entries: dict[str, tuple[tuple[str, ...], ...]] = {}
    missing = []
    for lab in tax.labels:
        if lab in own:
            words = own[lab]
        else:
            general = FOLD.get(lab, lab)
            words = [w for w in base["classes"].get(general, []) if str(w).lower() not in claimed]
        if not words and lab != "neutral":
            missing.append(lab)
        entries[lab] = tuple(tuple(str(w).lower().split()) for w in words)
    if missing:
        raise ConfigError(f"the text-emotion lexicon has no words for {taxonomy} label(s) {missing}; add them to "
                          f"casebench/data/lexicon/{FINE_LEXICON}")
    return Lexicon(classes=tax.labels, entries=entries, negators=frozenset(str(n) for n in base["negators"]),
                   source=f"casebench:data/lexicon/{BASE_LEXICON}+{FINE_LEXICON}")


def lexicon_label(lexicon, text: str) -> WordsLabel:
    """The words' emotion by the lexicon (see the module docstring for the confidence)."""
    import numpy as np

    from casebench.baselines import lexicon_proba

    counts = lexicon.counts(text or "")
    hits = {c: int(n) for c, n in zip(lexicon.classes, counts, strict=True) if n}
    if not hits and "neutral" not in lexicon.classes:
        return WordsLabel(None, 0.0, "no emotion word (and the taxonomy has no neutral)")
    p = lexicon_proba(counts, lexicon.classes)[0]
    top = np.flatnonzero(np.isclose(p, p.max()))
    if len(top) > 1:
        return WordsLabel(None, float(p.max()), "tied: " + ", ".join(f"{c} {n}" for c, n in hits.items()))
    evidence = ("matches " + ", ".join(f"{c} {n}" for c, n in hits.items())) if hits else "no emotion word"
    return WordsLabel(lexicon.classes[int(top[0])], round(float(p.max()), 4), evidence)


def parse_llm_answer(answer: str, labels: Sequence[str]) -> WordsLabel:
    """A chat model's answer -> WordsLabel; InputError (with the answer) when it is not what was asked.

    >>> parse_llm_answer('Sure: {"emotion": "Sad", "confidence": 0.8}', ["angry", "sad"])
    WordsLabel(label='sad', confidence=0.8, evidence='llm')
    >>> parse_llm_answer('{"emotion": null, "confidence": 0.9}', ["angry", "sad"]).label is None
    True
    """
    m = re.search(r"\{.*\}", answer or "", re.S)
    try:
        doc = json.loads(m.group(0)) if m else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "emotion" not in doc:
        raise InputError(Problem(f"answer {answer[:200]!r}", expected='{"emotion": ..., "confidence": ...}'))
    emotion = doc["emotion"]
    try:
        conf = float(doc.get("confidence", 0.5))
    except (TypeError, ValueError):
        conf = 0.5
    conf = min(max(conf, 0.0), 1.0)
    if emotion is None or str(emotion).strip().lower() in ("null", "none", ""):
        return WordsLabel(None, conf, "llm: none of the emotions")
    label = FOLD.get(str(emotion).strip().lower(), str(emotion).strip().lower())
    if label not in labels and str(emotion).strip().lower() in labels:
        label = str(emotion).strip().lower()
    if label not in labels:
        raise InputError(Problem(f"emotion {emotion!r} is not in the taxonomy", field="emotion",
                                 expected=f"one of {list(labels)}", hint=did_you_mean(str(emotion), labels)))
    return WordsLabel(label, conf, "llm")


def llm_labeller(spec: str, *, api_key: str | None = None, timeout: float = 60.0
                 ) -> Callable[[str, Sequence[str]], WordsLabel]:
    """A labeller asking ``MODEL@URL`` (OpenAI-compatible chat completions) for each text."""
    from casebench.synth._http import api_key_from_env
    from casebench.synth.texts import chat_complete

    model, sep, url = spec.partition("@")
    if not sep or not model or not url.startswith(("http://", "https://")):
        raise ConfigError(f"--text-emotion llm:{spec!r}; expected llm:MODEL@URL, e.g. "
                          "llm:qwen2.5-7b-instruct@http://localhost:8000/v1")
    key = api_key if api_key is not None else api_key_from_env("CASEBENCH_LLM_API_KEY", "OPENAI_API_KEY")

    def label(text: str, labels: Sequence[str]) -> WordsLabel:
        hint = "" if "neutral" in labels else " (or none at all)"
        prompt = USER_PROMPT.format(text=text.replace('"', "'"), labels=", ".join(labels), neutral_hint=hint)
        answer = chat_complete(url, model, prompt, api_key=key, temperature=0.0, seed=0, timeout=timeout,
                               system=SYSTEM_PROMPT)
        return parse_llm_answer(answer, labels)

    label.config = {"model": model, "url": url, "system": SYSTEM_PROMPT, "prompt": USER_PROMPT}  # type: ignore[attr-defined]
    return label


def ratings_labels(annotations, labels: Sequence[str], dimension: str = "semantic_emotion") -> dict[str, WordsLabel]:
    """clip_id -> majority ``semantic_emotion`` rating (confidence = its share; a tie gives None).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"clip_id": ["a", "a", "a", "b", "b"], "rater_id": ["r1", "r2", "r3", "r1", "r2"],
    ...                    "dimension": "semantic_emotion", "value": ["sad", "sad", "happy", "sad", "happy"]})
    >>> out = ratings_labels(df, ["happy", "sad"]); out["a"].label, round(out["a"].confidence, 3), out["b"].label
    ('sad', 0.667, None)
    """
    df = annotations[annotations["dimension"] == dimension]
    for col in ("cancelled", "ground_truth"):
        if col in df.columns:
            df = df[~df[col].fillna(False).astype(bool)]
    df = df[df["value"].isin(list(labels))]
    out = {}
    for cid, part in df.groupby("clip_id"):
        votes = part.drop_duplicates("rater_id", keep="last")["value"].value_counts()
        share = float(votes.iloc[0] / votes.sum())
        tie = len(votes) > 1 and votes.iloc[0] == votes.iloc[1]
        out[str(cid)] = WordsLabel(None if tie else str(votes.index[0]), round(share, 4),
                                   f"{int(votes.sum())} rater(s): " + ", ".join(f"{k} {v}" for k, v in votes.items()))
    return out


#: Registry of text-emotion sources (the CLI's --text-emotion choices; ``llm`` takes ``:MODEL@URL``).
TEXT_EMOTION: dict[str, str] = {
    "lexicon": LEXICON_NOTE,
    "llm": "an OpenAI-compatible chat model (llm:MODEL@URL), asked per clip; answers cached in the workspace",
    "ratings": "the workspace's semantic_emotion ratings (raters reading the transcript), majority and share",
}


def parse_source(spec: str) -> tuple[str, str]:
    """``"lexicon"`` -> ("lexicon", ""); ``"llm:m@http://h/v1"`` -> ("llm", "m@http://h/v1")."""
    kind, _, rest = str(spec).partition(":")
    if kind not in TEXT_EMOTION:
        hint = did_you_mean(kind, TEXT_EMOTION)
        raise ConfigError(f"--text-emotion {spec!r}; expected lexicon, llm:MODEL@URL or ratings"
                          + (f" ({hint})" if hint else ""))
    if kind == "llm" and not rest:
        raise ConfigError("--text-emotion llm needs :MODEL@URL, e.g. llm:qwen2.5-7b-instruct@http://localhost:8000/v1")
    return kind, rest


def describe(kind: str, rest: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a mining run's words labels rest on (for the report and the labels' method column)."""
    out = {"source": kind, "about": TEXT_EMOTION[kind]}
    if kind == "llm":
        out["model"], _, out["url"] = rest.partition("@")
    return {**out, **dict(extra or {})}
