"""``mine-conflicts``: natural acoustic–semantic conflicts found in a corpus of real speech.

An imported corpus (MSP-Podcast, IEMOCAP, EMIS, ...) has a voice label per clip; its words (the corpus's
transcripts, or ``casebench transcribe``'s) carry an emotion of their own. Labelling the words
(:mod:`casebench.text_emotion`: ``lexicon``, ``llm:MODEL@URL`` or ``ratings``) and comparing the two turns
the corpus into a conflict benchmark of real speech. Each clip gets one tag (:func:`conflict_tag`):

==================== ===========================================================================
tag                  meaning
==================== ===========================================================================
conflict             voice and words carry different emotions, neither neutral (angry voice, sad words)
congruent            the same emotion in both
voice-only emotion   an emotional voice over neutral words: the emotion is in the voice alone
words-only emotion   neutral voice, emotional words
no emotion           both neutral
undetermined         the words' emotion is unknown (no text, a tie, an answer the source could not give)
==================== ===========================================================================

**Voice-only emotion is not conflict.** Acted corpora with a fixed set of semantically neutral sentences
(CREMA-D's 12, RAVDESS's 2; the importers declare ``FIXED_SENTENCES``) are voice-only by design: their words
were chosen to carry nothing, so nothing contradicts the voice. They test whether a model hears emotion
without lexical help, not whether it resists misleading words; every clip of such a corpus is tagged from
the design (voice-only emotion or no emotion, confidence 1), whatever a lexicon would find in "Don't forget
a jacket". ``casebench aggregate`` is broader (any two different labels, neutral included, make a conflict
there); mine-conflicts asks for emotional words, which is what a conflict benchmark means.

**Confidence** = the words label's confidence x the voice label's (``labels.agreement`` when the corpus or
the raters give one, else the top of ``acoustic_dist``, else 1). Clips below ``min_confidence`` keep their
tag in ``meta_conflict_tag`` but get ``is_conflict`` null (unknown) rather than a guess.

Written to the ``labels`` table: ``meta_words_emotion``, ``meta_words_confidence``, ``meta_words_evidence``,
``meta_words_source``, ``meta_conflict_tag``, ``meta_conflict_confidence``; and, where the corpus had no
words label (``semantic_label`` null) or ``overwrite``: ``semantic_label``, ``is_conflict``,
``conflict_type`` (``meta_semantic_mined`` marks those rows, which a re-run replaces). A corpus's own words
labels (EMIS) are kept, and the report says how often the mined label agrees with them. ``llm`` answers are
journalled per clip, so an interrupted run resumes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from casebench.errors import ConfigError, InputError, Problem
from casebench.text_emotion import WordsLabel

TAGS = ("conflict", "congruent", "voice-only emotion", "words-only emotion", "no emotion", "undetermined")
#: Tags that decide is_conflict (True for conflict, False for the rest); undetermined leaves it null.
DECIDED = {"conflict": True, "congruent": False, "voice-only emotion": False, "words-only emotion": False,
           "no emotion": False}
DEFAULT_MIN_CONFIDENCE = 0.4
REPORT = "mine-conflicts.json"


def conflict_tag(voice: str | None, words: str | None, neutral: str | None = "neutral") -> str:
    """The tag of one clip from its voice and words labels (see the module table).

    >>> [conflict_tag(v, w) for v, w in (("angry", "sad"), ("sad", "sad"), ("angry", "neutral"),
    ...                                  ("neutral", "happy"), ("neutral", "neutral"), ("angry", None))]
    ['conflict', 'congruent', 'voice-only emotion', 'words-only emotion', 'no emotion', 'undetermined']
    """
    if voice is None or words is None:
        return "undetermined"
    if voice == words:
        return "no emotion" if voice == neutral else "congruent"
    if words == neutral:
        return "voice-only emotion"
    if voice == neutral:
        return "words-only emotion"
    return "conflict"


def voice_confidence(row: Mapping[str, Any]) -> float:
    """How sure the voice label is: ``agreement``, else the top of ``acoustic_dist``, else 1."""
    agreement = row.get("agreement")
    if agreement is not None and not (isinstance(agreement, float) and math.isnan(agreement)):
        return float(agreement)
    dist = row.get("acoustic_dist")
    if dist is not None and len(dist):
        return float(max(dist))
    return 1.0


def tag_clips(voice: Mapping[str, str | None], words: Mapping[str, WordsLabel], voice_conf: Mapping[str, float],
              *, neutral: str | None = "neutral", min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> dict[str, dict]:
    """clip_id -> {tag, confidence, is_conflict, conflict_type}: the pure core of :func:`mine_conflicts`."""
    out = {}
    for cid, v in voice.items():
        w = words.get(cid, WordsLabel(None, 0.0, "no text"))
        tag = conflict_tag(v, w.label, neutral)
        conf = round(w.confidence * voice_conf.get(cid, 1.0), 4) if tag != "undetermined" else 0.0
        decided = tag in DECIDED and conf >= min_confidence
        out[cid] = {"tag": tag, "confidence": conf, "is_conflict": DECIDED[tag] if decided else None,
                    "conflict_type": f"{v}-voice/{w.label}-words" if decided and DECIDED[tag] else None}
    return out


def _texts(ws) -> tuple[dict[str, str], str]:
    """clip_id -> text (transcripts first, then clips.text_prompt), and where they came from."""
    texts: dict[str, str] = {}
    where = []
    if ws.has_table("transcripts"):
        tx = ws.read_df("transcripts")
        texts = {str(c): str(t) for c, t in zip(tx["clip_id"], tx["text"], strict=True)
                 if isinstance(t, str) and t.strip()}
        models = sorted({str(m) for m in tx.get("model", []) if isinstance(m, str)})
        where.append(f"transcripts ({', '.join(models) or 'unknown model'})")
    clips = ws.read_df("clips")
    n_before = len(texts)
    if "text_prompt" in clips.columns:
        for c, t in zip(clips["clip_id"], clips["text_prompt"], strict=True):
            if str(c) not in texts and isinstance(t, str) and t.strip():
                texts[str(c)] = t
    if len(texts) > n_before:
        where.append("clips.text_prompt")
    return texts, " + ".join(where) or "none"


def _not_english(ws, ids: Sequence[str]) -> dict[str, str]:
    """clip_id -> its language, for the clips whose language is known and does not include English: the
    transcript's (``transcripts.language``, what it was decoded in), else ``clips.language``, else the
    workspace's single language."""
    from casebench.asr.quality import declared_languages

    lang: dict[str, str] = {}
    project = [str(x) for x in ws.config.get("project", {}).get("languages", []) or []]
    if len(project) == 1:
        lang = dict.fromkeys(ids, project[0])
    clips = ws.read_df("clips")
    if "language" in clips.columns:
        lang.update({str(c): str(v) for c, v in zip(clips["clip_id"], clips["language"], strict=True)
                     if isinstance(v, str) and v.strip()})
    if ws.has_table("transcripts"):
        tx = ws.read_df("transcripts")
        if "language" in tx.columns:
            lang.update({str(c): str(v) for c, v, t in zip(tx["clip_id"], tx["language"], tx["text"], strict=True)
                         if isinstance(v, str) and v.strip() and isinstance(t, str) and t.strip()})
    return {c: lang[c] for c in ids if c in lang and "en" not in declared_languages(lang[c])}


def _llm_words(ws, spec: str, texts: Mapping[str, str], labels, *, api_key, progress: bool
               ) -> tuple[dict[str, WordsLabel], list[Problem]]:
    from casebench.progress import progress_bar
    from casebench.text_emotion import llm_labeller

    label = llm_labeller(spec, api_key=api_key)
    journal = ws.resumable("mine-conflicts-llm", {**label.config, "labels": list(labels)})
    words: dict[str, WordsLabel] = {}
    if journal.parts():
        for r in journal.rows().to_pylist():
            words[r["clip_id"]] = WordsLabel(r["label"], r["confidence"], r["evidence"])
    todo = [c for c in texts if c not in words]
    failures: list[Problem] = []
    batch: list[dict] = []
    try:
        with progress_bar(len(todo), "words emotion (llm)", enabled=progress) as advance:
            for cid in todo:
                try:
                    w = label(texts[cid], labels)
                except InputError as e:
                    failures += [Problem(p.found, id=cid, field=p.field or "answer", expected=p.expected, hint=p.hint)
                                 for p in e.problems]
                    advance()
                    continue
                words[cid] = w
                batch.append({"clip_id": cid, "label": w.label, "confidence": w.confidence, "evidence": w.evidence})
                if len(batch) >= 16:
                    journal.write(batch)
                    batch = []
                advance()
    finally:
        if batch:
            journal.write(batch)
    return words, failures


def mine_conflicts(workspace: Any, *, text_emotion: str = "lexicon", min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                   overwrite: bool = False, api_key: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Label the words of a workspace's clips, compare with the voice labels, write conflict tags.

    Args:
        workspace: a Workspace or its folder, with a ``labels`` table (an imported corpus, or ``aggregate``).
        text_emotion: ``lexicon``, ``llm:MODEL@URL`` or ``ratings`` (:mod:`casebench.text_emotion`).
        min_confidence: below it a clip's ``is_conflict`` stays null.
        overwrite: also replace ``semantic_label``/``is_conflict``/``conflict_type`` where the labels table
            already has a words label (a corpus's own, or raters').
        api_key: for ``llm`` (default from the environment; never stored).
        progress: progress bar for ``llm``.

    Returns:
        The report (also in ``reports/mine-conflicts.json``): counts per tag and conflict type, the words
        source, fixed-sentence handling, agreement with the corpus's own words labels, failures, notes.

    Raises:
        InputError: no labels table, or no text for any clip; ``llm`` answers that could not be used are
            listed after the others are saved.
        ConfigError: a bad ``text_emotion``, or an unreachable/failing chat server (answers so far kept).
    """
    import pandas as pd

    from casebench.corpora import CORPORA
    from casebench.text_emotion import describe, lexicon_for, lexicon_label, parse_source, ratings_labels
    from casebench.workspace import Workspace, atomic_write_text

    started = time.monotonic()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if not 0 <= min_confidence <= 1:
        raise ConfigError(f"min_confidence {min_confidence!r}; expected a number in [0, 1]")
    kind, rest = parse_source(text_emotion)
    if not ws.has_table("labels"):
        raise InputError(Problem("no labels table", file=str(ws.root),
                                 expected="voice labels: import a corpus (casebench import-corpus) or run aggregate"))
    labels_df = ws.read_df("labels")
    tax = ws.taxonomy
    neutral = "neutral" if "neutral" in tax.index else None
    corpus = ws.section("import").get("corpus")
    fixed = bool(getattr(CORPORA.get(corpus), "FIXED_SENTENCES", False)) if corpus else False
    notes: list[str] = []
    failures: list[Problem] = []
    texts, text_source = _texts(ws)
    voice = {str(c): (v if isinstance(v, str) else None)
             for c, v in zip(labels_df["clip_id"], labels_df["acoustic_label"], strict=True)}
    if fixed:
        label = neutral
        words = {c: WordsLabel(label, 1.0, f"fixed neutral sentence ({corpus} design)") for c in voice}
        notes.append(f"{corpus} has a fixed set of semantically neutral sentences: every clip is tagged from the "
                     "design (voice-only emotion, or no emotion for a neutral voice), not from its words")
        source = {"source": "corpus design", "about": f"{corpus} speaks fixed neutral sentences"}
    elif kind == "ratings":
        if not ws.has_table("annotations"):
            raise InputError(Problem("no annotations table", file=str(ws.root),
                                     expected="semantic_emotion ratings (casebench annotate pull/import)"))
        words = ratings_labels(ws.read_df("annotations"), tax.labels)
        source = describe(kind, rest)
    else:
        missing = [c for c in voice if c not in texts]
        if len(missing) == len(voice):
            raise InputError(Problem("no clip has a text", file=str(ws.root),
                                     expected="transcripts (casebench transcribe) or the corpus's own",
                                     hint="run `casebench transcribe` on the workspace first"))
        if missing:
            notes.append(f"{len(missing)} clip(s) without a transcript or prompt text are undetermined "
                         f"(e.g. {', '.join(missing[:3])})")
        if kind == "lexicon":
            lex = lexicon_for(tax.name)
            foreign = _not_english(ws, [c for c in voice if c in texts])
            words = {c: (WordsLabel(None, 0.0, f"not English ({foreign[c]}): the lexicon reads English only")
                         if c in foreign else lexicon_label(lex, texts[c])) for c in voice if c in texts}
            source = describe(kind, rest, {"lexicon": lex.source})
            if foreign:
                notes.append(f"{len(foreign)} clip(s) are not in English ({dict(Counter(foreign.values()))}): the "
                             "lexicon reads English only, so they are undetermined; label their words with "
                             "--text-emotion llm:MODEL@URL or ratings")
        else:
            words, failures = _llm_words(ws, rest, {c: texts[c] for c in voice if c in texts}, tax.labels,
                                         api_key=api_key, progress=progress)
            source = describe(kind, rest)
    voice_conf = {str(r["clip_id"]): voice_confidence(r) for r in labels_df.to_dict("records")}
    tags = tag_clips(voice, words, voice_conf, neutral=neutral, min_confidence=min_confidence)

    out = labels_df.copy()
    ids = out["clip_id"].astype(str)
    wl = [words.get(c) for c in ids]
    out["meta_words_emotion"] = [w.label if w else None for w in wl]
    out["meta_words_confidence"] = [w.confidence if w else None for w in wl]
    out["meta_words_evidence"] = [w.evidence if w else "no text" for w in wl]
    out["meta_words_source"] = source["source"] + (f":{source.get('model')}" if source.get("model") else "")
    out["meta_conflict_tag"] = [tags[c]["tag"] for c in ids]
    out["meta_conflict_confidence"] = [tags[c]["confidence"] for c in ids]
    had = out["semantic_label"].notna() if "semantic_label" in out else pd.Series(False, index=out.index)
    if "meta_semantic_mined" in out:  # words labels an earlier mining run wrote are its own to replace
        had &= ~out["meta_semantic_mined"].fillna(False).astype(bool)
    agreement = None
    if had.any():
        both = had & out["meta_words_emotion"].notna()
        if both.any():
            agreement = {"n": int(both.sum()), "share_equal": round(float(
                (out.loc[both, "semantic_label"] == out.loc[both, "meta_words_emotion"]).mean()), 4)}
        if not overwrite:
            notes.append(f"{int(had.sum())} clip(s) keep their own words label (semantic_label); the mined one is in "
                         "meta_words_emotion (pass overwrite to replace it)")
    replace = ~had | overwrite
    decided = [tags[c] for c in ids]
    new_sem = [w.label if (w and d["is_conflict"] is not None) else None for w, d in zip(wl, decided, strict=True)]
    old_sem = out.get("semantic_label", [None] * len(out))
    out["semantic_label"] = [n if r else o for n, r, o in zip(new_sem, replace, old_sem, strict=True)]
    for col, key in (("is_conflict", "is_conflict"), ("conflict_type", "conflict_type")):
        old = out[col] if col in out else pd.Series([None] * len(out), index=out.index, dtype=object)
        out[col] = [d[key] if r else o for d, r, o in zip(decided, replace, old.astype(object), strict=True)]
    out["is_conflict"] = out["is_conflict"].astype("boolean")
    out["meta_semantic_mined"] = replace.to_numpy() if hasattr(replace, "to_numpy") else replace
    path = ws.write_table("labels", out, built_from=ws.built_from("labels"))  # still from the same annotations

    counts = Counter(tags[c]["tag"] for c in ids)
    confident = Counter(tags[c]["tag"] for c in ids if tags[c]["is_conflict"] is not None)
    report = {
        "workspace": str(ws.root), "step": "mine-conflicts", "corpus": corpus, "taxonomy": tax.name,
        "words": source, "texts": text_source, "fixed_sentences": fixed, "min_confidence": min_confidence,
        "n_clips": len(ids), "tags": {t: counts.get(t, 0) for t in TAGS},
        "tags_confident": {t: confident.get(t, 0) for t in TAGS},
        "conflict_types": dict(Counter(tags[c]["conflict_type"] for c in ids
                                       if tags[c]["conflict_type"]).most_common()),
        "n_conflict": int(sum(1 for c in ids if tags[c]["is_conflict"] is True)),
        "agreement_with_corpus_words_labels": agreement, "overwrite": overwrite,
        "failures": [p.to_dict() for p in failures], "notes": notes, "labels_table": str(path),
        "report": str(ws.reports_dir / REPORT), "elapsed_s": round(time.monotonic() - started, 3),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    ws.set_section("mine_conflicts", {"text_emotion": source["source"], "min_confidence": min_confidence,
                                      "fixed_sentences": fixed, "created_at": report["created_at"]})
    atomic_write_text(ws.reports_dir / REPORT, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    if failures:
        raise InputError(failures, summary=f"{len(failures)} clip(s) got no usable words label from the model (left "
                                           "undetermined; the others are saved, a re-run asks only for these)")
    return report


__all__ = ["TAGS", "conflict_tag", "mine_conflicts", "tag_clips", "voice_confidence"]
