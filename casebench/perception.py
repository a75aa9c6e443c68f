"""``perceive``: how recognisable the voice emotion of (synthesized) clips is, and whether it is a caricature.

A conflict benchmark is only as good as its voices. If the voice emotion cannot be heard, "acoustic
accuracy" measures noise; if it is carried by one or two dials (an espeak-ng preset moves mean pitch and
loudness per emotion), a model that "recognises" it has learnt the preset, not emotional speech. The check:

1. **Probe** (:func:`probe`): leave-one-speaker-out shrinkage LDA on the clips' eGeMAPS
   functionals (:mod:`casebench.features`: 88 acoustic measures, no words in them), per-speaker z-scored
   (a listener adapts to a voice), predicting the design label (``intended_acoustic``; the voice label where
   there is none). Accuracy and UAR on held-out speakers, with a 95% bootstrap CI over speakers.
2. **Two-dial probe**: the same probe on mean pitch (``F0semitoneFrom27.5Hz_sma3nz_amean``) and mean loudness
   (``loudness_sma3_amean``) only.
3. **Within-voice η² of mean pitch** (:func:`eta_squared`): per speaker, the share of the variance of mean
   pitch across its clips explained by the emotion (SS_between / SS_total); the median over speakers.
4. **Raters**, where there are ``acoustic_emotion`` ratings: the share of single ratings equal to the design
   label and of majority labels equal to it (95% CI over speakers).

The verdict (:func:`verdict`, the rule documented in docs/reference-synthesis.md):

- ``caricature`` when the full probe is well above chance (p < 0.05, one-sided binomial test against the
  majority-class rate, and at least :data:`MARGIN` above it) **and** the two-dial probe reaches at least
  :data:`TWO_DIAL_SHARE` (90%) of its accuracy; or when the median within-voice η² of mean pitch is at least
  :data:`ETA2_CARICATURE` (0.8). Acted human speech has η² of mean pitch well below that: pitch overlaps
  between emotions within a speaker;
- ``near chance`` when the full probe is not above chance by that test;
- ``plausible`` otherwise;
- ``untestable`` first, when at least :data:`UNTESTABLE_SHARE` of the clips cannot be recognised by a
  leave-one-speaker-out probe whatever they sound like: their emotion is voiced by no other speaker, or their
  speaker voices one emotion only (per-speaker z-scores leave nothing). Reference-prompted synthesis from a
  corpus whose speakers hold few emotions confounds speaker and emotion that way.

The module also holds the demo's simulated **listener** (:class:`Listener`): a rater who hears four cues of
the clip relative to the speaker's other clips (mean pitch, pitch range, loudness, rate of loudness peaks) with
Gaussian perception noise and answers the emotion whose prototype cue pattern is nearest. The prototypes
follow the direction of the vocal cues reviewed by Juslin & Laukka (2003, Psychological Bulletin 129(5),
Table 7) and Scherer (2003, Speech Communication 40): anger, joy and fear high and fast, sadness low, soft
and slow, disgust low and slow, surprise high with a wide range. The listener never sees the design label.

>>> import numpy as np
>>> round(eta_squared(np.array([1., 1.1, 5., 5.2]), np.array(["a", "a", "b", "b"])), 3)
0.998
>>> verdict(full=0.85, two_dial=0.8, chance=0.25, p_value=1e-9, eta2=0.4)[0]
'caricature'
>>> verdict(full=0.3, two_dial=0.3, chance=0.25, p_value=0.2, eta2=0.1)[0]
'near chance'
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from casebench.errors import ConfigError, InputError, Problem

PITCH = "F0semitoneFrom27.5Hz_sma3nz_amean"
LOUDNESS = "loudness_sma3_amean"
#: The listener's cues, in prototype order.
CUES = (PITCH, "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2", LOUDNESS, "loudnessPeaksPerSec")
#: Caricature rule: the two-dial probe reaches this share of the full probe's accuracy ...
TWO_DIAL_SHARE = 0.9
#: ... or the median within-voice eta^2 of mean pitch reaches this.
ETA2_CARICATURE = 0.8
#: Above chance means p < ALPHA and at least MARGIN above the majority-class rate.
ALPHA = 0.05
MARGIN = 0.1
#: At least this share of clips unrecognisable by design (see :func:`probe`) makes the verdict ``untestable``.
UNTESTABLE_SHARE = 0.5
REPORT = "perception.json"

#: Prototype cue patterns (z-scores within a speaker: pitch, pitch range, loudness, rate).
PROTOTYPES: dict[str, tuple[float, float, float, float]] = {
    "neutral": (0.0, 0.0, 0.0, 0.0),
    "angry": (0.5, 0.8, 1.2, 0.6),
    "happy": (0.9, 1.0, 0.5, 0.4),
    "fear": (1.1, -0.2, 0.0, 1.0),
    "sad": (-0.9, -1.0, -1.0, -1.0),
    "disgust": (-0.7, -0.2, -0.3, -0.8),
    "surprise": (1.3, 1.2, 0.5, 0.0),
}


def eta_squared(values: np.ndarray, labels: np.ndarray) -> float:
    """Share of the variance of ``values`` explained by ``labels``: SS_between / SS_total (NaN if constant)."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    values, labels = values[ok], np.asarray(labels)[ok]
    total = float(((values - values.mean()) ** 2).sum())
    if total <= 0:
        return float("nan")
    between = sum(float((labels == g).sum()) * (float(values[labels == g].mean()) - float(values.mean())) ** 2
                  for g in np.unique(labels))
    return between / total


def within_voice_eta2(values: np.ndarray, labels: np.ndarray, speakers: np.ndarray) -> dict[str, float]:
    """Per speaker with at least two labels and more clips than labels, :func:`eta_squared` of ``values`` by
    ``labels``. With one clip per label there is no variance within a label to compare against: η² is 1 by
    construction, whatever the voice does, so such a speaker is left out.

    >>> within_voice_eta2(np.array([1.0, 2.0, 3.0, 4.0]), np.array(["a", "b", "a", "b"]), np.array(["s"] * 4))
    {'s': 0.2}
    >>> within_voice_eta2(np.array([1.0, 2.0]), np.array(["a", "b"]), np.array(["s", "s"]))
    {}
    """
    out = {}
    for spk in np.unique(speakers):
        m = speakers == spk
        if 2 <= len(np.unique(labels[m])) < int(m.sum()):
            out[str(spk)] = round(eta_squared(values[m], labels[m]), 4)
    return out


def _standardize(matrix: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    from casebench.baselines import speaker_standardize

    return speaker_standardize(matrix, speakers.tolist())


def probe(matrix: np.ndarray, labels: np.ndarray, speakers: np.ndarray, classes: Sequence[str], *,
          n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Leave-one-speaker-out probe: per-speaker z-scores -> mean imputation -> standardisation -> linear
    discriminant analysis with Ledoit-Wolf shrinkage (closed form: a fraction of a second per fold, and
    well-behaved with few clips per class), each speaker predicted by a model fitted on the others.

    Returns accuracy and UAR (recall averaged over the classes present), each with a 95% CI from a bootstrap
    over speakers (``n_clusters`` = speakers), the majority-class rate of the data (chance), and the one-sided
    binomial p-value of the accuracy against it.
    """
    from scipy.stats import binomtest
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from casebench.stats import Bootstrap, percentile_ci

    speakers = np.asarray(speakers).astype(str)
    labels = np.asarray(labels).astype(str)
    groups = np.unique(speakers)
    if len(groups) < 2:
        raise InputError(Problem(f"{len(groups)} speaker(s)", field="speaker_id",
                                 expected="at least two speakers for a leave-one-speaker-out probe"))
    x = _standardize(np.asarray(matrix, dtype=float), speakers)
    pred = np.empty(len(labels), dtype=object)
    for spk in groups:
        test = speakers == spk
        train = ~test
        if len(np.unique(labels[train])) < 2:
            pred[test] = labels[train][0]
            continue
        if train.sum() <= len(np.unique(labels[train])):  # LDA needs more samples than classes
            raise InputError(Problem(f"{int(train.sum())} clip(s) of {len(np.unique(labels[train]))} emotions to fit "
                                     f"on with speaker {str(spk)!r} held out", field="speaker_id",
                                     expected="more clips than emotions in every leave-one-speaker-out fold "
                                              "(the probe needs more clips per emotion)"))
        model = make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler(),
                              LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
        model.fit(x[train], labels[train])
        pred[test] = model.predict(x[test])
    correct = (pred == labels).astype(float)
    # clips the design leaves no way to recognise: an emotion no other speaker voices (absent from the fit),
    # or a speaker voicing one emotion only (per-speaker z-scores take away all it has)
    emotions_of = {spk: set(labels[speakers == spk]) for spk in groups}
    unseen = np.array([len(emotions_of[s]) < 2 or not any(lab in e for o, e in emotions_of.items() if o != s)
                       for s, lab in zip(speakers, labels, strict=True)])
    present = [c for c in classes if (labels == c).any()]
    recall = {c: float(correct[labels == c].mean()) for c in present}
    chance = max(float((labels == c).mean()) for c in present)
    p_value = float(binomtest(int(correct.sum()), len(correct), chance, alternative="greater").pvalue)
    _, codes = np.unique(speakers, return_inverse=True)
    boot = Bootstrap(n_boot, seed, codes)
    per_class = np.stack([correct * (labels == c) for c in present] + [(labels == c).astype(float) for c in present],
                         axis=1)
    sums = boot.sums(np.column_stack([correct, np.ones_like(correct), per_class]))
    acc_s = sums[:, 0] / sums[:, 1]
    k = len(present)
    with np.errstate(invalid="ignore", divide="ignore"):
        uar_s = np.nanmean(sums[:, 2:2 + k] / sums[:, 2 + k:], axis=1)
    return {"accuracy": {"value": round(float(correct.mean()), 4), "ci": [round(v, 4) for v in percentile_ci(acc_s)],
                         "n": int(len(correct)), "n_clusters": int(len(groups))},
            "uar": {"value": round(float(np.mean(list(recall.values()))), 4),
                    "ci": [round(v, 4) for v in percentile_ci(uar_s)], "n_clusters": int(len(groups))},
            "recall": {c: round(v, 4) for c, v in recall.items()}, "chance": round(chance, 4),
            "p_value": p_value, "n_features": int(matrix.shape[1]), "n_unrecognisable": int(unseen.sum())}


def verdict(*, full: float, two_dial: float, chance: float, p_value: float, eta2: float | None,
            unrecognisable: float = 0.0) -> tuple[str, list[str]]:
    """The perception verdict and its reasons (see the module docstring for the rule); ``unrecognisable`` is
    the share of clips the probe cannot recognise by design (``n_unrecognisable`` of :func:`probe`)."""
    if unrecognisable >= UNTESTABLE_SHARE:
        return "untestable", [f"{unrecognisable:.0%} of the clips have an emotion that no other speaker voices, or "
                              "a speaker who voices one emotion only: a leave-one-speaker-out probe cannot recognise "
                              "them (speaker and emotion are confounded), whatever the voices sound like; give "
                              "every speaker several emotions, each voiced by several speakers (e.g. more "
                              "reference speakers)"]
    caveat = [f"{unrecognisable:.0%} of the clips cannot be recognised by design (an emotion no other speaker "
              "voices, or a speaker voicing one emotion only): the accuracy understates the voices"
              ] if unrecognisable > 0 else []
    above = p_value < ALPHA and full >= chance + MARGIN
    if not above:
        return "near chance", [f"the acoustic probe's accuracy {full:.2f} is not above chance ({chance:.2f}; p = "
                               f"{p_value:.2g}): the voice emotion is not recognisable from the audio"] + caveat
    reasons = []
    if full > 0 and two_dial >= TWO_DIAL_SHARE * full:
        reasons.append(f"mean pitch and loudness alone reach {two_dial:.2f}, {two_dial / full:.0%} of the full "
                       f"probe's {full:.2f} (>= {TWO_DIAL_SHARE:.0%})")
    if eta2 is not None and np.isfinite(eta2) and eta2 >= ETA2_CARICATURE:
        reasons.append(f"within a voice, the emotion explains {eta2:.2f} of the variance of mean pitch "
                       f"(median eta^2 >= {ETA2_CARICATURE})")
    if reasons:
        return "caricature", reasons + ["the emotions are presets on a few dials, not emotional speech: a model "
                                        "that recognises them has learnt the preset"] + caveat
    return "plausible", [f"recognisable ({full:.2f} against chance {chance:.2f}) and not from pitch and loudness "
                         f"alone ({two_dial:.2f})"] + caveat


def rater_agreement(annotations, design: Mapping[str, str], speakers: Mapping[str, str], *, n_boot: int = 1000,
                    seed: int = 0) -> dict[str, Any] | None:
    """How often ``acoustic_emotion`` ratings (single, and per-clip majority) equal the design label."""
    from casebench.stats import Bootstrap, percentile_ci

    df = annotations[annotations["dimension"] == "acoustic_emotion"]
    for col in ("cancelled", "ground_truth"):
        if col in df.columns:
            df = df[~df[col].fillna(False).astype(bool)]
    df = df[df["clip_id"].astype(str).isin(set(design))]
    if df.empty:
        return None
    truth = df["clip_id"].astype(str).map(design)
    single = (df["value"].astype(str) == truth).to_numpy(float)
    maj_ids, maj_ok = [], []
    for cid, part in df.groupby("clip_id"):
        votes = part["value"].astype(str).value_counts()
        tie = len(votes) > 1 and votes.iloc[0] == votes.iloc[1]
        maj_ids.append(str(cid))
        maj_ok.append(0.0 if tie else float(votes.index[0] == design[str(cid)]))
    out = {"n_ratings": int(len(single)), "n_raters": int(df["rater_id"].nunique()), "n_clips": len(maj_ids)}
    for name, ids, ok in (("single", df["clip_id"].astype(str).tolist(), single), ("majority", maj_ids,
                                                                                   np.asarray(maj_ok))):
        spk = np.asarray([speakers.get(c, c) for c in ids])
        _, codes = np.unique(spk, return_inverse=True)
        sums = Bootstrap(n_boot, seed, codes).sums(np.column_stack([ok, np.ones_like(ok)]))
        out[name] = {"value": round(float(ok.mean()), 4), "ci": [round(v, 4) for v in
                                                                 percentile_ci(sums[:, 0] / sums[:, 1])],
                     "n_clusters": int(codes.max() + 1)}
    return out


# --------------------------------------------------------------------------------------------------
# The simulated listener (demo raters)


@dataclass(frozen=True)
class Listener:
    """A simulated rater's ear: cue z-scores + N(0, noise^2) -> the emotion with the nearest prototype."""

    labels: tuple[str, ...]
    noise: float = 0.5

    def __post_init__(self):
        missing = [lab for lab in self.labels if lab not in PROTOTYPES]
        if missing:
            raise ConfigError(f"the simulated listener has no cue prototype for {missing}; it knows "
                              f"{sorted(PROTOTYPES)}")

    def rate(self, cues: np.ndarray, rng: np.random.Generator) -> str:
        """One rating of a clip from its cue z-scores (NaN cues read as the speaker's average)."""
        heard = np.nan_to_num(np.asarray(cues, dtype=float)) + rng.normal(0.0, self.noise, len(CUES))
        protos = np.asarray([PROTOTYPES[lab] for lab in self.labels])
        return self.labels[int(np.argmin(((protos - heard) ** 2).sum(axis=1)))]


def listener_cues(ws, clip_ids: Sequence[str], *, workers: int = 2, progress: bool = False) -> dict[str, np.ndarray]:
    """clip_id -> the listener's cue z-scores (per speaker) from the clips' eGeMAPS features (cached)."""
    from casebench.features import workspace_features

    table = workspace_features(ws, list(clip_ids), workers=workers, progress=progress)
    clips = ws.read_df("clips").set_index("clip_id")
    idx = [table.names.index(c) for c in CUES]
    speakers = clips.loc[table.ids, "speaker_id"].astype(str).to_numpy()
    z = _standardize(table.matrix[:, idx], speakers)
    return {cid: z[i] for i, cid in enumerate(table.ids)}


# --------------------------------------------------------------------------------------------------
# The workspace step


def perceive(workspace: Any, *, which: str = "synth", n_boot: int = 1000, seed: int = 0, workers: int = 2,
             progress: bool = False) -> dict[str, Any]:
    """Measure how recognisable the voice emotion of a workspace's clips is; write ``reports/perception.json``.

    Args:
        workspace: a Workspace or its folder.
        which: ``synth`` (clips with a design label ``intended_acoustic``: synthesized clips) or ``all``
            (every clip with a design or voice label).
        n_boot, seed: the bootstrap over speakers for the CIs.
        workers, progress: feature extraction (cached in the workspace, shared with the acoustic baseline).

    Returns:
        The report: ``probe`` (eGeMAPS), ``two_dial_probe`` (mean pitch + loudness), ``pitch_eta2`` (median and
        per speaker), ``raters`` (or None), ``verdict`` and ``reasons``, the rule's thresholds.

    Raises:
        InputError: no clips with a label, fewer than two speakers or two emotions.
    """
    from casebench.features import workspace_features
    from casebench.workspace import Workspace, atomic_write_text

    started = time.monotonic()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if which not in ("synth", "all"):
        raise ConfigError(f"perceive which={which!r}; expected 'synth' or 'all'")
    clips = ws.read_df("clips")
    if "meta_source_clip" in clips.columns:  # degraded copies are not what the voices sound like
        clips = clips[clips["meta_source_clip"].isna()]
    design = clips.set_index("clip_id")["intended_acoustic"] if "intended_acoustic" in clips else None
    label_of: dict[str, str] = {}
    if design is not None:
        label_of = {str(c): v for c, v in design.items() if isinstance(v, str)}
    source = "design label (intended_acoustic)"
    if which == "all" and ws.has_table("labels"):
        lab = ws.read_df("labels").set_index("clip_id")["acoustic_label"]
        for c, v in lab.items():
            if isinstance(v, str) and str(c) in set(clips["clip_id"].astype(str)):
                label_of.setdefault(str(c), v)
        source = "design label, else the voice label"
    if not label_of:
        raise InputError(Problem("no clip with a design label (intended_acoustic)", file=str(ws.table_path("clips")),
                                 expected="synthesized clips (casebench synth), or --clips all with a labels table"))
    ids = sorted(label_of)
    spk_of = clips.set_index("clip_id")["speaker_id"].astype(str)
    speakers = np.asarray([spk_of[c] for c in ids])
    labels = np.asarray([label_of[c] for c in ids])
    if len(set(labels)) < 2:
        raise InputError(Problem(f"one emotion only ({labels[0]})", expected="clips of at least two emotions"))
    table = workspace_features(ws, ids, workers=workers, progress=progress)
    ok = np.array([c not in table.failed for c in ids])
    matrix, speakers, labels = table.matrix[ok], speakers[ok], labels[ok]
    classes = list(ws.taxonomy.labels)
    full = probe(matrix, labels, speakers, classes, n_boot=n_boot, seed=seed)
    two = probe(matrix[:, [table.names.index(PITCH), table.names.index(LOUDNESS)]], labels, speakers, classes,
                n_boot=n_boot, seed=seed)
    eta = within_voice_eta2(matrix[:, table.names.index(PITCH)], labels, speakers)
    eta_median = float(np.nanmedian(list(eta.values()))) if eta else None
    raters = None
    designed = {c: label_of[c] for c in ids if design is not None and isinstance(design.get(c), str)}
    if ws.has_table("annotations") and designed:  # against a voice label the raters made themselves: circular
        raters = rater_agreement(ws.read_df("annotations"), designed, spk_of.to_dict(), n_boot=n_boot, seed=seed)
    name, reasons = verdict(full=full["accuracy"]["value"], two_dial=two["accuracy"]["value"],
                            chance=full["chance"], p_value=full["p_value"], eta2=eta_median,
                            unrecognisable=full["n_unrecognisable"] / max(1, full["accuracy"]["n"]))
    report = {
        "workspace": str(ws.root), "step": "perceive", "which": which, "labels": source,
        "n_clips": int(ok.sum()), "n_speakers": int(len(np.unique(speakers))),
        "failed": dict(table.failed), "features": "eGeMAPSv02 functionals (openSMILE), per-speaker z-scores",
        "probe": full, "two_dial_probe": {**two, "features": [PITCH, LOUDNESS]},
        "pitch_eta2": {"median": None if eta_median is None else round(eta_median, 4), "per_speaker": eta},
        "raters": raters, "verdict": name, "reasons": reasons,
        "rule": {"two_dial_share": TWO_DIAL_SHARE, "eta2": ETA2_CARICATURE, "alpha": ALPHA, "margin": MARGIN},
        "seed": seed, "n_boot": n_boot, "elapsed_s": round(time.monotonic() - started, 3),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(ws.reports_dir / REPORT, json.dumps(report, indent=2, default=str) + "\n")
    report["report"] = str(ws.reports_dir / REPORT)
    return report


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for terminals and cards: the verdict and its figures."""
    p, t = report["probe"], report["two_dial_probe"]
    line = (f"{report['verdict']}: acoustic probe {p['accuracy']['value']:.2f} [{p['accuracy']['ci'][0]:.2f}, "
            f"{p['accuracy']['ci'][1]:.2f}] on unseen speakers ({p['accuracy']['n_clusters']} speakers; chance "
            f"{p['chance']:.2f}), pitch+loudness only {t['accuracy']['value']:.2f}")
    if report["pitch_eta2"]["median"] is not None:
        line += f", within-voice eta^2 of mean pitch {report['pitch_eta2']['median']:.2f}"
    if report.get("raters"):
        r = report["raters"]
        line += (f"; raters agree with the design label on {r['single']['value']:.0%} of ratings "
                 f"({r['majority']['value']:.0%} by majority)")
    return line
