"""Leakage audit of a split assignment: what the splits share that they should not.

Runs on any assignment (``casebench split``'s or an imported official one) and reports, for every pair of
splits (and every pair of folds inside a split):

- ``speakers``: speaker ids present on both sides (a reference-prompted synthesized clip also carries its
  reference speaker, ``meta_reference_speaker``: the voice it clones is that person's);
- ``identical_audio``: the same audio file bytes (``clips.sha256``) or the same 16-bit PCM
  (``clips.qc_pcm_sha256``, the same audio stored as WAV and as FLAC) on both sides;
- ``near_audio``: audio that is the same recording up to gain, a little noise, re-encoding or a short shift,
  found with a cheap spectral fingerprint (:func:`fingerprint`, below);
- ``identical_text`` / ``near_text``: the same transcript or prompt text after normalisation
  (:func:`normalize_text`), or token sets with Jaccard similarity >= ``near_text_jaccard`` (MinHash LSH for
  the candidates, exact Jaccard to confirm);
- ``sessions`` / ``sources``: recording sessions and sources present on both sides;
- ``distribution_shift``: total variation distance (and a chi-square test) between the splits' acoustic
  label distributions and their conflict rates.

Each check has a severity (:class:`AuditSettings`): ``fail`` checks are leaks (the audit fails, ``casebench
audit`` exits 1 and ``publish`` refuses the corpus unless given a reason), ``warn`` checks are reported as
warnings, the rest as information. By default speakers, identical and near-identical audio and text fail;
sessions and distribution shift warn (a session shared by *different* speakers is a channel, not a
speaker, leak; a shared session with a shared speaker is already a speaker leak); sources are information
(most corpora have one source). Set ``[audit] fail_on``/``warn_on`` in ``casebench.toml`` to change them,
e.g. add ``sessions`` for corpora where a session is one speaker's recording.

**The audio fingerprint** (written here because no installed library does it; chromaprint needs a C
library): a Haitsma–Kalker style binary fingerprint. The clip (16 kHz mono) is cut into 64 ms Hann frames
every 32 ms; the power spectrum is summed into 33 log-spaced bands from 100 Hz to 4 kHz, smoothed over 4
frames (~160 ms, which makes the bits robust to added noise), converted to dB and floored 40 dB below the
clip's loudest band (so near-silent bands, where noise decides, all read the same). Each frame then gives
32 bits: bit m is the sign of the change over time of the energy difference between bands m and m+1.
Gain cancels out of every difference, so a louder or quieter copy has the same bits; noise at 30 dB SNR
flips about 4% of them, 20 dB about 15%, while different speech-like clips differ in 35–50% (measured on
synthetic harmonic signals; see tests/test_audit.py). Two clips are near-identical when their bit error
rate (BER) at the best alignment within ±8 frames is <= ``near_audio_ber`` (0.2), over an overlap of at
least 80% of the longer clip. Comparing every clip of one split to every clip of the other would be
quadratic, so candidates come first: the clip's mean band-energy profile (gain-normalised, unit length)
is compared by cosine similarity in blocks, and each clip's ``candidates`` most similar clips of similar
duration (within ``duration_tolerance``) on the other side are checked by BER. Trimmed copies (shifted by
more than ±8 frames or shortened by more than 20%) are not found.

The core (:func:`audit_splits`) takes tables and fingerprints and returns a JSON-ready dict; :func:`audit`
reads a workspace, computes the fingerprints (cached per clip and audio hash in
``tables/.parts/audit-fingerprints/``) and writes ``reports/audit.json`` and ``reports/audit.html``.

>>> import pandas as pd
>>> clips = pd.DataFrame({"clip_id": ["a", "b", "c"], "speaker_id": ["s1", "s2", "s1"],
...                       "sha256": ["h1", "h2", "h3"], "text_prompt": ["Hi there!", "Bye.", "hi, there"]})
>>> splits = pd.DataFrame({"clip_id": ["a", "b", "c"], "split": ["train", "train", "test"]})
>>> rep = audit_splits(splits, clips)
>>> rep["passed"], [line.split(":")[0] for line in rep["leaks"]]
(False, ['train/test speakers', 'train/test identical_text'])
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from casebench.errors import ConfigError, InputError, Problem, did_you_mean

#: Every check, in report order.
CHECKS = ("speakers", "identical_audio", "near_audio", "identical_text", "near_text", "sessions", "sources",
          "distribution_shift")
#: Checks run between folds of the same split (the cheap, exact ones).
FOLD_CHECKS = ("speakers", "identical_audio")
#: Text fields compared: clip column -> name in the report.
TEXT_FIELDS = {"text_prompt": "prompt", "transcript": "transcript"}

# Fingerprint parameters (see the module docstring); FP_VERSION keys the cache.
FP_SR = 16000
FP_FRAME = 1024
FP_HOP = 512
FP_BANDS = 33
FP_FMIN, FP_FMAX = 100.0, 4000.0
FP_FLOOR_DB = 40.0
FP_SMOOTH = 4
FP_MAX_SHIFT = 8
FP_MIN_OVERLAP = 0.8
FP_VERSION = 3
#: Least share of set bits of a fingerprint that can match another (speech has about half).
FP_MIN_DENSITY = 0.15


@dataclass
class AuditSettings:
    """Severities and thresholds of the audit.

    Attributes:
        fail_on: checks whose findings are leaks (the audit fails).
        warn_on: checks whose findings are warnings; any other check is information.
        near_audio_ber: largest bit error rate of near-identical audio (see the module docstring).
        near_text_jaccard: smallest token-set Jaccard similarity of near-identical texts (0.8: one word
            changed in a ten-word sentence is 9/11 = 0.82).
        max_tvd: total variation distance between two splits' label (or conflict) distributions above which
            distribution_shift reports the pair.
        candidates: clips of the other split checked by BER per clip (the most similar profiles).
        duration_tolerance: relative duration difference within which two clips can be near-identical.
        max_examples: items listed per check and pair in the report.
    """

    fail_on: tuple[str, ...] = ("speakers", "identical_audio", "near_audio", "identical_text", "near_text")
    warn_on: tuple[str, ...] = ("sessions", "distribution_shift")
    near_audio_ber: float = 0.2
    near_text_jaccard: float = 0.8
    max_tvd: float = 0.1
    candidates: int = 5
    duration_tolerance: float = 0.2
    max_examples: int = 20

    def __post_init__(self):
        for name in ("fail_on", "warn_on"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            value = tuple(value)
            bad = [v for v in value if v not in CHECKS]
            if bad:
                hint = did_you_mean(bad[0], CHECKS)
                raise ConfigError(f"audit {name}: unknown check(s) {bad}; expected some of {list(CHECKS)}"
                                  + (f" ({hint})" if hint else ""))
            setattr(self, name, value)
        for name, lo, hi in (("near_audio_ber", 0, 0.5), ("near_text_jaccard", 0, 1), ("max_tvd", 0, 1),
                             ("duration_tolerance", 0, 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"audit {name} {v!r}; expected a number in [{lo}, {hi}]")
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ConfigError(f"audit candidates {self.candidates!r}; expected an integer >= 1")

    def severity(self, check: str) -> str:
        return "fail" if check in self.fail_on else "warn" if check in self.warn_on else "info"

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, **overrides: Any) -> AuditSettings:
        """Settings from a ``[audit]`` config section, with keyword overrides (None = keep)."""
        values = dict(section or {})
        known = set(cls.__dataclass_fields__)
        unknown = [k for k in values if k not in known]
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise ConfigError(f"[audit] unknown setting(s) {unknown}; expected some of {sorted(known)}"
                              + (f" ({hint})" if hint else ""))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# --------------------------------------------------------------------------------------------------
# Audio fingerprint


@dataclass(frozen=True)
class Fingerprint:
    """A clip's binary fingerprint (one uint32 per frame), mean band profile and duration."""

    bits: np.ndarray
    profile: np.ndarray
    duration_s: float


def _band_edges() -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last FFT bin of each band (bins with edge[j] <= f < edge[j+1])."""
    freqs = np.fft.rfftfreq(FP_FRAME, 1 / FP_SR)
    edges = np.geomspace(FP_FMIN, FP_FMAX, FP_BANDS + 1)
    bins = np.searchsorted(freqs, edges, side="left")
    return bins[:-1], bins[1:]


_BAND_START, _BAND_END = _band_edges()
_WINDOW = np.hanning(FP_FRAME).astype(np.float32)
_SHIFTS = np.arange(FP_BANDS - 1, dtype=np.uint32)


def fingerprint(x: np.ndarray, sr: int) -> Fingerprint:
    """The fingerprint of a mono signal (resampled to 16 kHz when needed); see the module docstring.

    >>> t = np.arange(16000) / 16000
    >>> x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    >>> a, b = fingerprint(x, 16000), fingerprint(0.25 * x, 16000)
    >>> a.bits.dtype, len(a.bits), bit_error_rate(a.bits, b.bits)
    (dtype('uint32'), 26, 0.0)
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1, dtype=np.float32)
    duration = len(x) / sr if sr else 0.0
    if sr != FP_SR:
        from casebench.audio import resample

        x = resample(x, sr, FP_SR)
    if len(x) < FP_FRAME * 2:
        x = np.pad(x, (0, FP_FRAME * 2 - len(x)))
    from scipy.fft import rfft  # several times faster than numpy's on float32 frames

    frames = np.lib.stride_tricks.sliding_window_view(x, FP_FRAME)[::FP_HOP] * _WINDOW
    spectrum = rfft(frames, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    # band sums as differences of a cumulative sum: no BLAS call, whose threads crawl on a busy machine
    cum = np.zeros((len(power), power.shape[1] + 1))
    np.cumsum(power, axis=1, dtype=np.float64, out=cum[:, 1:])
    energy = cum[:, _BAND_END] - cum[:, _BAND_START]
    if len(energy) > FP_SMOOTH:
        c = np.cumsum(np.vstack([np.zeros((1, FP_BANDS), np.float64), energy]), axis=0)
        energy = c[FP_SMOOTH:] - c[:-FP_SMOOTH]
    db = 10 * np.log10(np.maximum(energy, 1e-20))
    db = np.maximum(db, db.max() - FP_FLOOR_DB)
    diff = db[:, :-1] - db[:, 1:]
    bits = (diff[1:] - diff[:-1]) > 0
    words = (bits.astype(np.uint32) << _SHIFTS).sum(axis=1, dtype=np.uint64).astype(np.uint32)
    profile = db.mean(axis=0)
    profile = profile - profile.mean()
    norm = float(np.linalg.norm(profile))
    profile = (profile / norm if norm > 0 else profile).astype(np.float32)
    return Fingerprint(words, profile, float(duration))


def bit_error_rate(a: np.ndarray, b: np.ndarray, max_shift: int = FP_MAX_SHIFT,
                   min_overlap: float = FP_MIN_OVERLAP) -> float:
    """Smallest share of differing bits between two fingerprints over shifts of up to ``max_shift`` frames,
    counting only alignments that overlap at least ``min_overlap`` of the longer one (1.0 when none does).

    >>> bit_error_rate(np.array([0, 1], np.uint32), np.array([0, 3], np.uint32))
    0.015625
    """
    return _match(a, b, max_shift, min_overlap)[0]


def _match(a: np.ndarray, b: np.ndarray, max_shift: int = FP_MAX_SHIFT,
           min_overlap: float = FP_MIN_OVERLAP) -> tuple[float, float]:
    """(BER, chance BER) at the best alignment; chance = p(1-q) + q(1-p) for bit densities p and q."""
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    longest = max(len(a), len(b))
    best, chance = 1.0, 0.5
    for s in range(-max_shift, max_shift + 1):
        x, y = (a[s:], b) if s >= 0 else (a, b[-s:])
        n = min(len(x), len(y))
        if n == 0 or n < min_overlap * longest:
            continue
        ber = float(np.bitwise_count(x[:n] ^ y[:n]).sum()) / (32 * n)
        if ber < best:
            p = float(np.bitwise_count(x[:n]).sum()) / (32 * n)
            q = float(np.bitwise_count(y[:n]).sum()) / (32 * n)
            best, chance = ber, p * (1 - q) + q * (1 - p)
    return best, chance


def is_near_identical(a: np.ndarray, b: np.ndarray, max_ber: float = 0.2) -> tuple[bool, float]:
    """Whether two fingerprints are of the same audio: (verdict, BER).

    The BER must be at most ``max_ber`` *and* at most half the BER two unrelated fingerprints with the same
    bit densities would have by chance. The second condition matters for signals with little spectral
    detail (a steady tone, near-silence), whose fingerprints are mostly zero bits and so agree with any
    other such fingerprint. Fingerprints with fewer than :data:`FP_MIN_DENSITY` set bits (tones,
    near-silence) carry too little detail to tell recordings apart and never match; the audit counts them.

    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(0, 0.1, (2, 32000)).astype(np.float32)
    >>> fx, fy = fingerprint(x, 16000).bits, fingerprint(y, 16000).bits
    >>> is_near_identical(fx, fingerprint(0.3 * x, 16000).bits), is_near_identical(fx, fy)[0]
    ((True, 0.0), False)
    """
    ber, chance = _match(a, b)
    dense = min(_density(a), _density(b)) >= FP_MIN_DENSITY
    return bool(dense and ber <= max_ber and ber <= 0.5 * chance), ber


def _density(bits: np.ndarray) -> float:
    bits = np.asarray(bits, dtype=np.uint32)
    return float(np.bitwise_count(bits).sum()) / (32 * len(bits)) if len(bits) else 0.0


def near_audio_pairs(fp_a: Mapping[str, Fingerprint], fp_b: Mapping[str, Fingerprint], *,
                     max_ber: float = 0.2, candidates: int = 5, duration_tolerance: float = 0.2,
                     skip: set[tuple[str, str]] | None = None, block: int = 256) -> list[tuple[str, str, float]]:
    """Pairs (clip of a, clip of b, BER) of near-identical audio, by profile candidates then BER.

    ``skip`` holds pairs not to report (e.g. identical files, already reported).
    """
    if not fp_a or not fp_b:
        return []
    ids_a, ids_b = list(fp_a), list(fp_b)
    pa_ = np.stack([fp_a[i].profile for i in ids_a])
    da = np.array([fp_a[i].duration_s for i in ids_a])
    db_ = np.array([fp_b[i].duration_s for i in ids_b])
    k = min(candidates, len(ids_a))
    out: list[tuple[str, str, float]] = []
    skip = skip or set()
    for start in range(0, len(ids_b), block):
        stop = min(start + block, len(ids_b))
        pb = np.stack([fp_b[i].profile for i in ids_b[start:stop]])
        sim = pb @ pa_.T
        longer = np.maximum(db_[start:stop, None], da[None, :])
        ok = np.abs(db_[start:stop, None] - da[None, :]) <= duration_tolerance * np.maximum(longer, 1e-9)
        sim = np.where(ok, sim, -np.inf)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < len(ids_a) else np.tile(np.arange(len(ids_a)),
                                                                                       (stop - start, 1))
        for r, row in enumerate(top):
            cid_b = ids_b[start + r]
            for j in row:
                if not np.isfinite(sim[r, j]):
                    continue
                cid_a = ids_a[j]
                if (cid_a, cid_b) in skip:
                    continue
                same, ber = is_near_identical(fp_a[cid_a].bits, fp_b[cid_b].bits, max_ber)
                if same:
                    out.append((cid_a, cid_b, round(ber, 4)))
    return out


# --------------------------------------------------------------------------------------------------
# Text


_SPACE = re.compile(r"\s+")


def normalize_text(text: Any) -> str:
    """NFKC, case-folded, punctuation and symbols removed, whitespace collapsed ('' for no text).

    >>> normalize_text("  Hello,  WORLD!! ")
    'hello world'
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = unicodedata.normalize("NFKC", str(text)).casefold()
    s = "".join(" " if unicodedata.category(ch)[0] in "PSC" else ch for ch in s)
    return _SPACE.sub(" ", s).strip()


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets).

    >>> jaccard({"a", "b"}, {"b", "c"})
    0.3333333333333333
    """
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_MH_PRIME = np.uint64(4294967291)  # largest prime below 2**32: (a * x + b) stays below 2**64


def _token_hashes(tokens: Iterable[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "little")
                     for t in tokens], dtype=np.uint64)


def minhash(token_sets: Sequence[set[str]], n_perm: int = 64, seed: int = 1) -> np.ndarray:
    """MinHash signatures (len(token_sets) × n_perm) under hash functions (a·x + b) mod p.

    The share of equal signature entries estimates the Jaccard similarity of two sets.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_MH_PRIME), n_perm, dtype=np.uint64)
    b = rng.integers(0, int(_MH_PRIME), n_perm, dtype=np.uint64)
    out = np.full((len(token_sets), n_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i, toks in enumerate(token_sets):
        if toks:
            h = _token_hashes(sorted(toks))
            out[i] = ((a[:, None] * h[None, :] + b[:, None]) % _MH_PRIME).min(axis=1)
    return out


def near_text_pairs(texts_a: Sequence[str], texts_b: Sequence[str], threshold: float = 0.8, *,
                    bands: int = 16, rows: int = 4) -> list[tuple[int, int, float]]:
    """Pairs (index in a, index in b, Jaccard) of different normalised texts whose token sets have Jaccard
    similarity >= ``threshold``.

    Candidates are texts sharing a MinHash LSH bucket (``bands`` × ``rows``; with 16 × 4 a pair at
    Jaccard 0.8 is a candidate with probability 0.9998), confirmed by the exact Jaccard.

    >>> near_text_pairs(["the cat sat on the red mat today"], ["the cat sat on the red mat"], 0.8)
    [(0, 0, 0.8571)]
    """
    sets_a = [set(t.split()) for t in texts_a]
    sets_b = [set(t.split()) for t in texts_b]
    if not sets_a or not sets_b:
        return []
    sig_a = minhash(sets_a, bands * rows)
    sig_b = minhash(sets_b, bands * rows)
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        sl = slice(band * rows, (band + 1) * rows)
        buckets: dict[bytes, list[int]] = {}
        for i, s in enumerate(sets_a):
            if s:
                buckets.setdefault(sig_a[i, sl].tobytes(), []).append(i)
        for j, s in enumerate(sets_b):
            if s:
                for i in buckets.get(sig_b[j, sl].tobytes(), ()):
                    candidates.add((i, j))
    out = []
    for i, j in sorted(candidates):
        if texts_a[i] == texts_b[j]:
            continue
        sim = jaccard(sets_a[i], sets_b[j])
        if sim >= threshold:
            out.append((i, j, round(sim, 4)))
    return out


# --------------------------------------------------------------------------------------------------
# Distribution shift


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total variation distance ½ Σ |p(c) − q(c)| between two count (or probability) dicts, normalised.

    >>> total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1})
    0.25
    """
    keys = set(p) | set(q)
    sp, sq = sum(p.values()), sum(q.values())
    if sp == 0 or sq == 0:
        return 0.0
    return 0.5 * sum(abs(p.get(k, 0) / sp - q.get(k, 0) / sq) for k in keys)


def _chi2_p(p: Mapping[str, int], q: Mapping[str, int]) -> float | None:
    keys = sorted(k for k in set(p) | set(q) if p.get(k, 0) + q.get(k, 0) > 0)
    if len(keys) < 2 or sum(p.values()) == 0 or sum(q.values()) == 0:
        return None
    from scipy.stats import chi2_contingency

    table = np.array([[p.get(k, 0) for k in keys], [q.get(k, 0) for k in keys]])
    return float(chi2_contingency(table)[1])


# --------------------------------------------------------------------------------------------------
# The core


def _split_names(splits: pd.DataFrame) -> list[str]:
    from casebench.splits import split_order

    return split_order(splits["split"].astype(str).unique().tolist())


def _values(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object)
    s = df[col].astype(object)
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), None)


def _shared_values(frame: pd.DataFrame, col: str | tuple[str, ...], side_a: pd.Index, side_b: pd.Index,
                   max_examples: int) -> dict:
    """Values of ``col`` (or of any of several columns) present on both sides, with clip counts and example
    clip ids."""
    def side(index: pd.Index) -> pd.Series:
        if isinstance(col, str):
            return _values(frame.loc[index], col).dropna().astype(str)
        parts = pd.concat([_values(frame.loc[index], c).dropna().astype(str) for c in col])
        keep = ~pd.Series(list(zip(parts.index, parts, strict=True))).duplicated().to_numpy()
        return parts[keep]  # a clip counted once per value

    va, vb = side(side_a), side(side_b)
    shared = sorted(set(va) & set(vb))
    if not shared:
        return {"n": 0, "clips_a": 0, "clips_b": 0, "items": []}
    in_a = va[va.isin(shared)]
    in_b = vb[vb.isin(shared)]
    ids = frame["clip_id"]
    items = []
    count_a, count_b = in_a.value_counts(), in_b.value_counts()
    for v in sorted(shared, key=lambda x: (-(count_a[x] + count_b[x]), x))[:max_examples]:
        items.append({"value": v, "n_a": int(count_a[v]), "n_b": int(count_b[v]),
                      "clips_a": ids.loc[in_a.index[in_a == v]].head(5).tolist(),
                      "clips_b": ids.loc[in_b.index[in_b == v]].head(5).tolist()})
    return {"n": len(shared), "clips_a": int(len(in_a)), "clips_b": int(len(in_b)), "items": items}


def _check_splits_table(splits: pd.DataFrame, clips: pd.DataFrame) -> pd.DataFrame:
    problems = [Problem("column missing", field=c, expected=f"a {c} column in the splits table")
                for c in ("clip_id", "split") if c not in splits.columns]
    if problems:
        raise InputError(problems, summary="cannot audit the splits")
    known = set(clips["clip_id"].astype(str))
    unknown = [c for c in splits["clip_id"].astype(str) if c not in known]
    if unknown:
        raise InputError([Problem("clip_id in splits but not in clips", id=c, field="clip_id",
                                  expected="a clip of the clips table") for c in unknown],
                         summary=f"{len(unknown)} split row(s) name unknown clips")
    dup = splits["clip_id"].astype(str).duplicated()
    if dup.any():
        raise InputError([Problem("clip in more than one split row", id=c, field="clip_id",
                                  expected="one row per clip") for c in splits["clip_id"][dup].astype(str)],
                         summary="duplicate clips in the splits table")
    return splits.assign(clip_id=splits["clip_id"].astype(str), split=splits["split"].astype(str))


def audit_splits(splits: pd.DataFrame, clips: pd.DataFrame, *, labels: pd.DataFrame | None = None,
                 transcripts: pd.DataFrame | None = None, fingerprints: Mapping[str, Fingerprint] | None = None,
                 settings: AuditSettings | None = None) -> dict:
    """Audit a split assignment; returns the JSON-ready report.

    Args:
        splits: ``clip_id``, ``split``, optional ``fold``.
        clips: the clips table (``speaker_id``, ``sha256``, ``qc_pcm_sha256``, ``session``, ``source``,
            ``text_prompt`` are used when present).
        labels: the labels table, for the distribution shift (optional).
        transcripts: ``clip_id``, ``text`` (optional).
        fingerprints: clip_id -> :class:`Fingerprint`; without them near_audio is not run (and says so).
        settings: severities and thresholds.

    Returns:
        ``passed``; ``leaks`` and ``warnings`` (one line each, ``"<a>/<b> <check>: ..."``); ``splits``
        (clips and speakers per split); ``pairs``: one entry per pair of splits with every check's ``n``,
        ``clips_a``, ``clips_b``, ``severity`` and example ``items``; ``folds``: the fold pairs inside each
        split; ``not_run`` (checks skipped and why); ``settings``.

    Raises:
        InputError: the splits name clips not in the clips table, or a clip twice.
    """
    settings = settings or AuditSettings()
    splits = _check_splits_table(splits, clips)
    n_degraded = 0
    if "meta_source_clip" in clips.columns:
        # degraded copies (casebench.degrade) repeat their source clips by design; their sources are audited
        copies = set(clips.loc[clips["meta_source_clip"].notna(), "clip_id"].astype(str))
        keep = ~splits["clip_id"].astype(str).isin(copies)
        n_degraded = int((~keep).sum())
        splits = splits[keep]
    frame = splits[["clip_id", "split"] + (["fold"] if "fold" in splits.columns else [])].merge(
        clips.assign(clip_id=clips["clip_id"].astype(str)).drop(columns=["split", "fold"], errors="ignore"),
        on="clip_id", how="left")
    if transcripts is not None and len(transcripts):
        tx = transcripts.assign(clip_id=transcripts["clip_id"].astype(str))
        frame = frame.merge(tx[["clip_id", "text"]].rename(columns={"text": "transcript"}), on="clip_id",
                            how="left")
    status = None
    if labels is not None:
        from casebench.splits import conflict_status

        status = conflict_status(clips, labels).set_index("clip_id")
    names = _split_names(splits)
    not_run: dict[str, str] = {}
    if fingerprints is None:
        not_run["near_audio"] = "no audio fingerprints (audio not read)"
    if status is None:
        not_run["distribution_shift"] = "no labels table"
    text_cols = [c for c in TEXT_FIELDS if c in frame.columns and _values(frame, c).notna().any()]
    if not text_cols:
        not_run["identical_text"] = not_run["near_text"] = "no transcripts or prompt texts"
    for col in ("speaker_id", "session", "source"):
        check = {"speaker_id": "speakers", "session": "sessions", "source": "sources"}[col]
        if col not in frame.columns or _values(frame, col).isna().all():
            not_run[check] = f"no {col} in the clips table"

    norm = {c: _values(frame, c).map(lambda t: normalize_text(t) if t is not None else "") for c in text_cols}
    index_of = {name: frame.index[frame["split"] == name] for name in names}
    pairs = []
    for a, b in itertools.combinations(names, 2):
        pairs.append(_pair_report(frame, a, b, index_of[a], index_of[b], norm, status, fingerprints, settings,
                                  not_run, CHECKS))
    folds = []
    if "fold" in frame.columns:
        for name in names:
            part = frame.loc[index_of[name]]
            fold_values = sorted(int(f) for f in part["fold"].dropna().unique())
            if len(fold_values) < 2 or name.startswith("fold"):
                continue
            for fa, fb in itertools.combinations(fold_values, 2):
                ia = part.index[part["fold"] == fa]
                ib = part.index[part["fold"] == fb]
                rep = _pair_report(frame, f"{name}.fold{fa}", f"{name}.fold{fb}", ia, ib, norm, status, None,
                                   settings, not_run, FOLD_CHECKS)
                folds.append(rep)
    leaks, warns = [], []
    if len(names) < 2:
        warns.append(f"only one split ({', '.join(names) or 'none'}): there is no pair of splits to compare")
    for rep in pairs + folds:
        for check, res in rep["checks"].items():
            if res.get("flagged"):
                line = f"{rep['a']}/{rep['b']} {check}: {res['summary']}"
                if res["severity"] == "fail":
                    leaks.append(line)
                elif res["severity"] == "warn":
                    warns.append(line)
    split_info = {}
    for name in names:
        part = frame.loc[index_of[name]]
        split_info[name] = {"n_clips": int(len(part)),
                            "n_speakers": int(_values(part, "speaker_id").nunique()) if "speaker_id" in part
                            else None}
    return {"passed": not leaks, "leaks": leaks, "warnings": warns, "n_clips": int(len(frame)),
            "degraded_copies_not_audited": n_degraded, "splits": split_info, "pairs": pairs, "folds": folds,
            "not_run": not_run, "settings": asdict(settings)}


def _flag(res: dict, severity: str, summary: str, flagged: bool | None = None) -> dict:
    res["severity"] = severity
    res["flagged"] = bool(res["n"] > 0) if flagged is None else flagged
    res["summary"] = summary
    return res


def _pair_report(frame: pd.DataFrame, a: str, b: str, ia: pd.Index, ib: pd.Index, norm: dict, status,
                 fingerprints, settings: AuditSettings, not_run: dict, checks: Sequence[str]) -> dict:
    mx = settings.max_examples
    out: dict[str, dict] = {}
    if "speakers" in checks and "speakers" not in not_run:
        # a reference-prompted clip also carries its reference speaker (casebench.synth.references)
        res = _shared_values(frame, ("speaker_id", "meta_reference_speaker") if "meta_reference_speaker" in frame
                             else "speaker_id", ia, ib, mx)
        shown = ", ".join(i["value"] for i in res["items"][:5])
        out["speakers"] = _flag(res, settings.severity("speakers"),
                                f"{res['n']} shared speaker(s) ({shown}{', ...' if res['n'] > 5 else ''}); "
                                f"{res['clips_a']} clip(s) in {a}, {res['clips_b']} in {b}")
    identical_pairs: set[tuple[str, str]] = set()
    if "identical_audio" in checks:
        res = {"n": 0, "clips_a": 0, "clips_b": 0, "items": []}
        ca, cb = set(), set()
        for col in ("sha256", "qc_pcm_sha256"):
            if col not in frame.columns:
                continue
            sub = _shared_values(frame, col, ia, ib, 10 ** 9)
            for item in sub["items"]:
                va = _values(frame.loc[ia], col).astype(str) == item["value"]
                vb = _values(frame.loc[ib], col).astype(str) == item["value"]
                ids_a = frame.loc[va[va].index, "clip_id"].tolist()
                ids_b = frame.loc[vb[vb].index, "clip_id"].tolist()
                if all((x, y) in identical_pairs for x in ids_a for y in ids_b):
                    continue
                identical_pairs.update((x, y) for x in ids_a for y in ids_b)
                ca.update(ids_a)
                cb.update(ids_b)
                res["n"] += 1
                if len(res["items"]) < mx:
                    res["items"].append({"hash": f"{col}:{item['value'][:16]}", "n_a": len(ids_a),
                                         "n_b": len(ids_b), "clips_a": ids_a[:5], "clips_b": ids_b[:5]})
        res["clips_a"], res["clips_b"] = len(ca), len(cb)
        out["identical_audio"] = _flag(res, settings.severity("identical_audio"),
                                       f"{res['n']} audio file(s) on both sides ({res['clips_a']} clip(s) in "
                                       f"{a}, {res['clips_b']} in {b})")
    if "near_audio" in checks and fingerprints is not None:
        fa = {c: fingerprints[c] for c in frame.loc[ia, "clip_id"] if c in fingerprints}
        fb = {c: fingerprints[c] for c in frame.loc[ib, "clip_id"] if c in fingerprints}
        found = near_audio_pairs(fa, fb, max_ber=settings.near_audio_ber, candidates=settings.candidates,
                                 duration_tolerance=settings.duration_tolerance, skip=identical_pairs)
        found.sort(key=lambda t: (t[2], t[0], t[1]))
        res = {"n": len(found), "clips_a": len({p[0] for p in found}), "clips_b": len({p[1] for p in found}),
               "items": [{"clip_a": x, "clip_b": y, "ber": ber} for x, y, ber in found[:mx]],
               "n_fingerprinted_a": len(fa), "n_fingerprinted_b": len(fb),
               "n_uninformative_a": sum(_density(f.bits) < FP_MIN_DENSITY for f in fa.values()),
               "n_uninformative_b": sum(_density(f.bits) < FP_MIN_DENSITY for f in fb.values())}
        ex = ", ".join(f"{x}~{y}" for x, y, _ in found[:3])
        out["near_audio"] = _flag(res, settings.severity("near_audio"),
                                  f"{res['n']} near-identical audio pair(s) (BER <= {settings.near_audio_ber})"
                                  + (f": {ex}{', ...' if res['n'] > 3 else ''}" if found else "")
                                  + (f"; {res['n_uninformative_a'] + res['n_uninformative_b']} clip(s) too "
                                     "plain to compare (tones, silence)"
                                     if res["n_uninformative_a"] + res["n_uninformative_b"] else ""))
    if "identical_text" in checks and "identical_text" not in not_run:
        res = {"n": 0, "clips_a": 0, "clips_b": 0, "items": [], "by_field": {}}
        for col, texts in norm.items():
            ta, tb = texts.loc[ia], texts.loc[ib]
            ta, tb = ta[ta != ""], tb[tb != ""]
            shared = set(ta) & set(tb)
            in_a, in_b = ta[ta.isin(shared)], tb[tb.isin(shared)]
            res["by_field"][TEXT_FIELDS[col]] = {"n": len(shared), "clips_a": int(len(in_a)),
                                                 "clips_b": int(len(in_b))}
            res["n"] += len(shared)
            res["clips_a"] = max(res["clips_a"], int(len(in_a)))
            res["clips_b"] = max(res["clips_b"], int(len(in_b)))
            ca, cb = in_a.value_counts(), in_b.value_counts()
            for t in sorted(shared, key=lambda s: (-(ca[s] + cb[s]), s)):
                if len(res["items"]) >= mx:
                    break
                res["items"].append({"field": TEXT_FIELDS[col], "text": t[:120], "n_a": int(ca[t]),
                                     "n_b": int(cb[t]),
                                     "clips_a": frame.loc[in_a.index[in_a == t], "clip_id"].head(5).tolist(),
                                     "clips_b": frame.loc[in_b.index[in_b == t], "clip_id"].head(5).tolist()})
        fields = ", ".join(f"{k} {v['n']}" for k, v in res["by_field"].items() if v["n"])
        out["identical_text"] = _flag(res, settings.severity("identical_text"),
                                      f"{res['n']} text(s) on both sides ({fields}); up to {res['clips_b']} "
                                      f"clip(s) of {b} say a text heard in {a}")
    if "near_text" in checks and "near_text" not in not_run:
        res = {"n": 0, "clips_a": 0, "clips_b": 0, "items": []}
        ca_all, cb_all = set(), set()
        for col, texts in norm.items():
            ta, tb = texts.loc[ia], texts.loc[ib]
            ua = sorted(set(ta[ta != ""]))
            ub = sorted(set(tb[tb != ""]))
            found = near_text_pairs(ua, ub, settings.near_text_jaccard)
            res["n"] += len(found)
            for i, j, sim in found:
                ids_a = frame.loc[ta.index[ta == ua[i]], "clip_id"].tolist()
                ids_b = frame.loc[tb.index[tb == ub[j]], "clip_id"].tolist()
                ca_all.update(ids_a)
                cb_all.update(ids_b)
                if len(res["items"]) < mx:
                    res["items"].append({"field": TEXT_FIELDS[col], "text_a": ua[i][:120], "text_b": ub[j][:120],
                                         "jaccard": sim, "clips_a": ids_a[:5], "clips_b": ids_b[:5]})
        res["clips_a"], res["clips_b"] = len(ca_all), len(cb_all)
        out["near_text"] = _flag(res, settings.severity("near_text"),
                                 f"{res['n']} near-identical text pair(s) (token Jaccard >= "
                                 f"{settings.near_text_jaccard})")
    for check, col in (("sessions", "session"), ("sources", "source")):
        if check in checks and check not in not_run:
            res = _shared_values(frame, col, ia, ib, mx)
            shown = ", ".join(i["value"] for i in res["items"][:5])
            out[check] = _flag(res, settings.severity(check),
                               f"{res['n']} shared {col}(s) ({shown}{', ...' if res['n'] > 5 else ''})")
    if "distribution_shift" in checks and status is not None:
        sa = status.reindex(frame.loc[ia, "clip_id"])
        sb = status.reindex(frame.loc[ib, "clip_id"])
        la = sa["acoustic"].dropna().value_counts().to_dict()
        lb = sb["acoustic"].dropna().value_counts().to_dict()
        ka = sa["status"].value_counts().to_dict()
        kb = sb["status"].value_counts().to_dict()
        tvd_l, tvd_c = total_variation(la, lb), total_variation(ka, kb)
        res = {"acoustic_label": {"tvd": round(tvd_l, 4), "chi2_p": _round(_chi2_p(la, lb)),
                                  "a": {str(k): int(v) for k, v in sorted(la.items())},
                                  "b": {str(k): int(v) for k, v in sorted(lb.items())}},
               "conflict_status": {"tvd": round(tvd_c, 4), "chi2_p": _round(_chi2_p(ka, kb)),
                                   "a": {str(k): int(v) for k, v in sorted(ka.items())},
                                   "b": {str(k): int(v) for k, v in sorted(kb.items())}},
               "items": []}
        flagged = max(tvd_l, tvd_c) > settings.max_tvd
        res["n"] = int(tvd_l > settings.max_tvd) + int(tvd_c > settings.max_tvd)
        res["clips_a"], res["clips_b"] = int(len(ia)), int(len(ib))
        out["distribution_shift"] = _flag(res, settings.severity("distribution_shift"),
                                          f"total variation distance {tvd_l:.2f} between acoustic label "
                                          f"distributions, {tvd_c:.2f} between conflict statuses (limit "
                                          f"{settings.max_tvd})", flagged)
    return {"a": a, "b": b, "n_a": int(len(ia)), "n_b": int(len(ib)), "checks": out}


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


# --------------------------------------------------------------------------------------------------
# The workspace step


def workspace_fingerprints(ws: Any, clip_ids: Iterable[str] | None = None, *, progress: bool = False,
                           batch: int = 64) -> dict[str, Fingerprint]:
    """Fingerprints of a workspace's clips, computed once per clip and audio hash and cached in
    ``tables/.parts/audit-fingerprints/`` (a re-run, or a killed run, reuses them).

    Raises:
        InputError: listing every clip whose audio file is missing or unreadable.
    """
    import pyarrow as pa

    from casebench.audio import decode
    from casebench.progress import progress_bar

    clips = ws.read_df("clips")
    if clip_ids is not None:
        wanted = set(map(str, clip_ids))
        clips = clips[clips["clip_id"].astype(str).isin(wanted)]
    journal = ws.resumable("audit-fingerprints", {"version": FP_VERSION, "frame": FP_FRAME, "hop": FP_HOP,
                                                   "bands": FP_BANDS, "floor_db": FP_FLOOR_DB,
                                                   "smooth": FP_SMOOTH})
    key_of = {}
    for cid, sha, path in zip(clips["clip_id"].astype(str), _values(clips, "sha256"), clips["path"], strict=True):
        key_of[cid] = f"{cid}@{sha or ''}@{path}"
    done = journal.done_ids()
    todo = [cid for cid, key in key_of.items() if key not in done]
    problems: list[Problem] = []
    rows: list[dict] = []
    paths = dict(zip(clips["clip_id"].astype(str), clips["path"], strict=True))
    with progress_bar(len(todo), "fingerprinting audio", enabled=progress) as advance:
        for cid in todo:
            try:
                x, sr = decode(ws.resolve(paths[cid]))
            except InputError as e:
                problems += [Problem(p.found, expected=p.expected, file=p.file, id=cid, field="path")
                             for p in e.problems]
                advance()
                continue
            fp = fingerprint(x, sr)
            rows.append({"clip_id": key_of[cid], "bits": fp.bits.tobytes(), "profile": fp.profile.tolist(),
                         "duration_s": fp.duration_s})
            if len(rows) >= batch:
                journal.write(pa.Table.from_pylist(rows))
                rows = []
            advance()
    if rows:
        journal.write(pa.Table.from_pylist(rows))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} clip(s) whose audio cannot be read for the "
                                           "near-identical audio check (--no-audio skips that check)")
    table = journal.rows()
    wanted_keys = {v: k for k, v in key_of.items()}
    out: dict[str, Fingerprint] = {}
    keys = table.column("clip_id").to_pylist()
    bits = table.column("bits").to_pylist()
    profiles = table.column("profile").to_pylist()
    durations = table.column("duration_s").to_pylist()
    for key, b, p, d in zip(keys, bits, profiles, durations, strict=True):
        cid = wanted_keys.get(key)
        if cid is not None:
            out[cid] = Fingerprint(np.frombuffer(b, dtype=np.uint32), np.asarray(p, dtype=np.float32), float(d))
    return out


def audit(workspace: Any, *, settings: AuditSettings | None = None, audio: bool = True,
          write_report: bool = True, progress: bool = False, **overrides: Any) -> dict:
    """Audit a workspace's ``splits`` table; writes ``reports/audit.json`` and ``reports/audit.html``.

    Args:
        workspace: a Workspace or its path.
        settings: severities and thresholds; default from ``[audit]`` in casebench.toml, with ``overrides``
            (``fail_on=...``, ``near_audio_ber=...``) on top.
        audio: fingerprint the audio for the near-identical audio check (reads every clip once; cached).
        write_report: write the JSON and HTML reports.

    Returns:
        The report of :func:`audit_splits` plus ``workspace``, ``splits_sha256`` (of the audited table),
        ``created_at`` and the report paths.
    """
    from casebench.workspace import Workspace, atomic_write_text

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if settings is None:
        settings = AuditSettings.from_config(ws.section("audit"), **overrides)
    splits = ws.read_df("splits")
    clips = ws.read_df("clips")
    labels = ws.read_df("labels") if ws.has_table("labels") else None
    transcripts = ws.read_df("transcripts") if ws.has_table("transcripts") else None
    fps = workspace_fingerprints(ws, splits["clip_id"], progress=progress) if audio else None
    report = audit_splits(splits, clips, labels=labels, transcripts=transcripts, fingerprints=fps,
                          settings=settings)
    digest = hashlib.sha256(pd.util.hash_pandas_object(splits[["clip_id", "split"]].astype(str), index=False)
                            .to_numpy().tobytes()).hexdigest()[:16]
    report = {"workspace": str(ws.root), "name": ws.name, "splits_sha256": digest,
              "split_config": ws.section("split"),
              "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **report}
    if write_report:
        json_path = ws.reports_dir / "audit.json"
        html_path = ws.reports_dir / "audit.html"
        atomic_write_text(json_path, json.dumps(report, indent=2, default=_json_default) + "\n")
        atomic_write_text(html_path, render_html(report))
        report["report_json"], report["report_html"] = str(json_path), str(html_path)
    return report


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def render_html(report: Mapping[str, Any]) -> str:
    """The audit report as a standalone HTML page (template ``casebench/templates/audit.html.j2``)."""
    import jinja2

    from casebench import resources

    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    text = resources.read_text("templates/audit.html.j2")
    return env.from_string(text).render(report=report, checks=CHECKS)


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few lines for a terminal or a data card: the verdict, then every leak and warning."""
    head = ("PASSED: no leakage found" if report["passed"]
            else f"FAILED: {len(report['leaks'])} leak(s) between splits")
    return [head, *[f"leak: {x}" for x in report["leaks"]], *[f"warning: {x}" for x in report["warnings"]]]


__all__ = ["AuditSettings", "CHECKS", "Fingerprint", "audit", "audit_splits", "bit_error_rate", "fingerprint",
           "is_near_identical", "jaccard", "minhash", "near_audio_pairs", "near_text_pairs", "normalize_text",
           "render_html", "summary_lines", "total_variation", "workspace_fingerprints"]
