"""Text sources for ``synth``: sentences whose words carry one emotion (the *semantic* emotion).

Three sources, each returning a :class:`TextBank` (sentences per emotion, plus notes on what was dropped):

- :func:`builtin_bank`: the sentence bank written for casebench (``casebench/data/synth/sentences_en.yaml``,
  at least 25 English sentences per ``ekman7`` emotion);
- :func:`read_csv_bank`: a user CSV with columns ``text`` and ``semantic_emotion``;
- :func:`llm_bank`: an OpenAI-compatible chat-completions endpoint asked for N sentences per emotion.

Sentences are deduplicated on :func:`normalize_text` (case, punctuation and spacing ignored); duplicates
are counted in the bank's notes, never dropped silently.

>>> bank = builtin_bank()
>>> min(len(v) for v in bank.sentences.values()) >= 25
True
>>> parse_lines('Here are 3 sentences:\\n1. "I lost my keys."\\n2) I lost my keys!\\n- Rain again.')
['I lost my keys.', 'I lost my keys!', 'Rain again.']
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from casebench import resources
from casebench.errors import ConfigError, InputError, Problem, did_you_mean, read_user_text, separator_hint
from casebench.taxonomy import Taxonomy, as_taxonomy

#: Adjective for each ekman7 emotion, used in prompts ("sentences that sound {adjective}").
ADJECTIVES = {"angry": "angry", "disgust": "disgusted", "fear": "afraid", "happy": "happy",
              "neutral": "neutral (matter-of-fact, no emotion)", "sad": "sad", "surprise": "surprised"}

#: The chat prompt; ``{n}``, ``{adjective}``, ``{emotion}`` and ``{language}`` are filled in.
LLM_PROMPT = (
    "Write {n} different sentences in {language} that a person might say out loud, each one clearly "
    "expressing the emotion '{emotion}' ({adjective}) through its words alone: what happened, what the "
    "speaker wants or judges. Use everyday situations, 6 to 16 words each, no names of people, and vary "
    "the situations. Output exactly one sentence per line, with no numbering, quotes or other text."
)
LLM_SYSTEM = "You write test sentences for a speech emotion corpus. You answer with the sentences only."


@dataclass(frozen=True)
class Sentence:
    """A sentence and the emotion its words carry, with where it came from."""

    text: str
    emotion: str
    source: str                 # "builtin:en", "csv:<file>:<line>", "llm:<model>"
    prompt: str | None = None   # the generation prompt, for LLM sentences


@dataclass
class TextBank:
    """Sentences per emotion (taxonomy labels), the source's name, and notes (duplicates dropped ...)."""

    sentences: dict[str, list[Sentence]]
    source: str
    language: str = "en"
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""       # identifies the content, for the synth config hash

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = _fingerprint(self.sentences)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.sentences.items()}


def normalize_text(text: str) -> str:
    """The deduplication key of a sentence: NFKC, lower case, letters/digits only, single spaces.

    >>> normalize_text("  I LOST my keys!! ") == normalize_text("i lost my keys")
    True
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def dedupe(sentences: Iterable[Sentence], seen: set[str] | None = None) -> tuple[list[Sentence], int]:
    """Keep the first sentence of each :func:`normalize_text` key; returns (kept, number dropped).

    ``seen`` (updated in place) carries keys across calls, so a sentence cannot serve two emotions.
    """
    seen = set() if seen is None else seen
    kept, dropped = [], 0
    for s in sentences:
        key = normalize_text(s.text)
        if not key or key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(s)
    return kept, dropped


def _fingerprint(bank: Mapping[str, list[Sentence]]) -> str:
    import hashlib

    doc = {k: [s.text for s in v] for k, v in sorted(bank.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _finish(raw: dict[str, list[Sentence]], source: str, language: str, notes: list[str]) -> TextBank:
    seen: set[str] = set()
    out: dict[str, list[Sentence]] = {}
    for emotion, items in raw.items():
        kept, dropped = dedupe(items, seen)
        if dropped:
            notes.append(f"{dropped} duplicate sentence(s) for {emotion!r} dropped (same text after "
                         "normalising case, punctuation and spacing)")
        out[emotion] = kept
    return TextBank(out, source, language, notes)


# --------------------------------------------------------------------------------------------------
# Built-in bank


def builtin_bank(language: str = "en", taxonomy: str | Taxonomy = "ekman7") -> TextBank:
    """The sentence bank shipped with casebench for ``language`` (only ``en`` so far).

    Raises:
        ConfigError: no bank for the language, or the bank's labels are not in ``taxonomy``.
    """
    tax = as_taxonomy(taxonomy)
    root = resources.files("data/synth")
    name = f"sentences_{language}.yaml"
    banks = sorted(p.name[len("sentences_"):-5] for p in root.iterdir() if p.name.startswith("sentences_"))
    if not (root / name).is_file():
        hint = did_you_mean(language, banks)
        raise ConfigError(f"no built-in sentence bank for language {language!r}; expected one of {banks}"
                          + (f" ({hint})" if hint else "")
                          + "; or pass your own CSV (text, semantic_emotion)")
    doc = yaml.safe_load((root / name).read_text("utf-8"))
    bad = [k for k in doc["sentences"] if k not in tax.index]
    if bad:
        raise ConfigError(f"the built-in bank is written for {doc.get('taxonomy')} and has labels {bad} that "
                          f"taxonomy {tax.name} lacks; pass a CSV bank in {tax.name} labels instead")
    raw = {k: [Sentence(t.strip(), k, f"builtin:{language}") for t in v] for k, v in doc["sentences"].items()}
    return _finish(raw, f"builtin:{language}", language, [])


# --------------------------------------------------------------------------------------------------
# User CSV


def read_csv_bank(path: str | os.PathLike, taxonomy: str | Taxonomy = "ekman7", *,
                  language: str = "en") -> TextBank:
    """Sentences from a CSV file with a header row and columns ``text`` and ``semantic_emotion``.

    Other columns are ignored. Every problem (missing column, empty text, emotion outside the taxonomy,
    with a did-you-mean) is collected and raised together, each naming the file, line and field.

    Raises:
        InputError: the file is missing or unreadable, or any row is bad.
    """
    tax = as_taxonomy(taxonomy)
    path = Path(path)
    if not path.is_file():
        raise InputError(Problem("file not found", file=str(path), expected="a CSV with columns text, "
                                 "semantic_emotion"))
    problems: list[Problem] = []
    raw: dict[str, list[Sentence]] = {}
    with io.StringIO(read_user_text(path, "a CSV with columns text, semantic_emotion"), newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in ("text", "semantic_emotion") if c not in header]
        if missing:
            raise InputError([Problem(f"no column {c!r} in the header {header}", file=str(path), line=1,
                                      field=c, expected="a header row with text and semantic_emotion",
                                      hint=separator_hint(header) or did_you_mean(c, header)) for c in missing])
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                text = (row.get("text") or "").strip()
                emotion = (row.get("semantic_emotion") or "").strip()
                if not text and not emotion:
                    continue  # a blank line
                if not text:
                    problems.append(Problem("empty text", file=str(path), line=line, field="text",
                                            expected="a sentence"))
                label = emotion.lower()
                if label not in tax.index:
                    problems.append(tax.check_label(emotion, file=str(path), line=line,
                                                    field="semantic_emotion"))
                    continue
                if text:
                    raw.setdefault(label, []).append(Sentence(text, label, f"csv:{path.name}:{line}"))
        except (csv.Error, UnicodeDecodeError) as e:
            problems.append(Problem(f"unreadable CSV ({e})", file=str(path), line=line + 1,
                                    expected="UTF-8 CSV text"))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} problem(s) in sentence file {path}")
    if not raw:
        raise InputError(Problem("no sentences", file=str(path), expected="at least one row"))
    return _finish({k: raw[k] for k in tax.labels if k in raw}, f"csv:{path}", language, [])


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible chat completions

_BULLET = re.compile(r"^\s*(?:\(?\d{1,3}[.):]\s*|[-*\u2022]\s+)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019"


def parse_lines(content: str) -> list[str]:
    """Sentences from a chat answer: one per line, numbering/bullets/quotes stripped, preambles
    ("Here are 5 sentences:") and empty lines skipped."""
    out = []
    for line in content.splitlines():
        line = _BULLET.sub("", line.strip()).strip().strip(_QUOTES).strip()
        if not line or line.endswith(":") or len(normalize_text(line).split()) < 2:
            continue
        out.append(line)
    return out


def llm_prompt(emotion: str, n: int, language: str = "English") -> str:
    """The user prompt asking for ``n`` sentences carrying ``emotion``."""
    return LLM_PROMPT.format(n=n, emotion=emotion, adjective=ADJECTIVES.get(emotion, emotion),
                             language=language)


def chat_complete(url: str, model: str, prompt: str, *, api_key: str | None = None, temperature: float = 0.9,
                  seed: int | None = None, timeout: float = 120.0, system: str | None = None) -> str:
    """The text of the first choice of one chat completion (``POST {url}/chat/completions``); ``system`` is
    the system message (default: the sentence writer's).

    Raises:
        ConfigError: the server is unreachable, answers an HTTP error, or the answer has no message text.
    """
    from casebench.synth._http import endpoint, post_json

    full = endpoint(url, "/chat/completions")
    payload = {"model": model, "temperature": temperature,
               "messages": [{"role": "system", "content": system or LLM_SYSTEM},
                            {"role": "user", "content": prompt}]}
    if seed is not None:
        payload["seed"] = seed
    body, _ = post_json(full, payload, api_key=api_key, timeout=timeout)
    try:
        return json.loads(body)["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ConfigError(f"{full}: the answer is not a chat completion ({body[:200]!r}); expected "
                          "{'choices': [{'message': {'content': ...}}]}") from e


def llm_bank(url: str, model: str, wanted: Mapping[str, int], *, api_key: str | None = None,
             language: str = "en", temperature: float = 0.9, seed: int | None = 0, max_rounds: int = 3,
             timeout: float = 120.0) -> TextBank:
    """Ask a chat model for ``wanted[emotion]`` sentences per emotion, one request per emotion and round.

    Answers are split into lines (:func:`parse_lines`) and deduplicated across all emotions; while an
    emotion has fewer unique sentences than wanted, it is asked again (at most ``max_rounds`` times).
    Each sentence keeps the exact prompt it was generated from. ``api_key`` defaults to the environment
    (``CASEBENCH_LLM_API_KEY``, then ``OPENAI_API_KEY``).

    Raises:
        ConfigError: the endpoint fails, or an emotion still has no sentence after ``max_rounds``.
    """
    from casebench.synth._http import api_key_from_env

    if api_key is None:
        api_key = api_key_from_env("CASEBENCH_LLM_API_KEY", "OPENAI_API_KEY")
    lang_name = {"en": "English"}.get(language, language)
    seen: set[str] = set()
    raw: dict[str, list[Sentence]] = {}
    notes: list[str] = []
    for emotion, n in wanted.items():
        kept: list[Sentence] = []
        dropped = 0
        for round_ in range(max_rounds):
            if len(kept) >= n:
                break
            prompt = llm_prompt(emotion, n - len(kept), lang_name)
            answer = chat_complete(url, model, prompt, api_key=api_key, temperature=temperature,
                                   seed=None if seed is None else seed + round_, timeout=timeout)
            new, d = dedupe((Sentence(t, emotion, f"llm:{model}", prompt) for t in parse_lines(answer)), seen)
            kept += new
            dropped += d
        if dropped:
            notes.append(f"{dropped} duplicate sentence(s) from the model for {emotion!r} dropped")
        if len(kept) > n:
            notes.append(f"{len(kept) - n} extra sentence(s) for {emotion!r} beyond the {n} asked for unused")
            kept = kept[:n]
        if not kept:
            raise ConfigError(f"{url}: model {model!r} gave no usable sentence for {emotion!r} in "
                              f"{max_rounds} round(s); expected one sentence per line")
        if len(kept) < n:
            notes.append(f"only {len(kept)} of {n} sentences for {emotion!r} after {max_rounds} round(s); "
                         "sentences are reused across cells")
        raw[emotion] = kept
    return TextBank(raw, f"llm:{model}@{url}", language, notes)


def bank_to_json(bank: TextBank) -> dict:
    """A JSON-able dict of a bank (for caching generated sentences in the workspace)."""
    return {"source": bank.source, "language": bank.language, "notes": bank.notes,
            "fingerprint": bank.fingerprint,
            "sentences": {k: [s.__dict__ for s in v] for k, v in bank.sentences.items()}}


def bank_from_json(doc: Mapping) -> TextBank:
    """The inverse of :func:`bank_to_json`."""
    sentences = {k: [Sentence(**s) for s in v] for k, v in doc["sentences"].items()}
    return TextBank(sentences, doc["source"], doc.get("language", "en"), list(doc.get("notes", [])),
                    doc.get("fingerprint", ""))
