"""Inter-rater agreement: Krippendorff's α, Fleiss' κ, Gwet's AC1, pairwise Cohen's κ and per-rater checks.

Pure functions: a long annotations table (or arrays) in, numbers out; nothing here reads files or prints.
The table is the ``annotations`` shape of DESIGN.md, one row per rating: ``clip_id``, ``rater_id``,
``value`` (a category name or a number), optionally ``dimension``, ``value_num`` and ``cancelled``.
:func:`agreement_report` scores one dimension, :func:`agreement_by_dimension` every dimension, each with
its level of measurement given by the caller: the level changes α a lot (nominal vs interval on a 1..9
scale), so it is a required argument and never guessed.

Everything is computed from the units × values count matrix ``counts[u, c]`` = number of raters who gave
value c to unit (clip) u, in the order of the value domain. Krippendorff's α, Fleiss' κ and Gwet's AC1 are
all ratios of *sums over units* of per-unit terms, so a bootstrap resample of units, which repeats unit u
``w_u`` times, only re-weights those sums: all resamples together are one matrix product ``W @ terms``
with W the (resamples × units) multinomial counts, chunked to bound memory. That is what makes a
1000-resample CI over 100,000 clips take seconds instead of minutes (``bench/agreement.py``). The point
value of α comes from the ``krippendorff`` package; the tests check that the unit sums reproduce it (and
it on every resample) to 1e-9 for all four levels, including the ordinal distances that depend on the
marginals.

>>> df = pd.DataFrame({"clip_id": ["c1", "c1", "c2", "c2", "c3", "c3", "c3"],
...                    "rater_id": ["ann", "bob", "ann", "bob", "ann", "bob", "cy"],
...                    "value": ["sad", "sad", "joy", "sad", "joy", "joy", "joy"]})
>>> rep = agreement_report(df, level="nominal", value_domain=["joy", "sad"], n_boot=200)
>>> round(rep["krippendorff_alpha"]["value"], 4), rep["fleiss_kappa"]["applicable"]
(0.5, False)
>>> rep["n_units"], rep["n_raters"], rep["n_ratings"]
(3, 3, 7)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem, did_you_mean

Level = Literal["nominal", "ordinal", "interval", "ratio", "masi"]
#: Stevens' levels of measurement of single values (what the krippendorff package knows by name).
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
#: Every level accepted: also ``masi``, for set-valued (multi-label) ratings written "a;b" in a long table.
ALL_LEVELS: tuple[str, ...] = (*LEVELS, "masi")

#: Category-based coefficients (Fleiss' κ, Gwet's AC1, Cohen's κ) are reported as not applicable when the
#: value domain has more values than this: they need a small set of categories, not a continuous scale.
MAX_CATEGORIES = 100

#: Resample weights held at once during a bootstrap (entries of a chunk of W, 8 bytes each; at least two
#: resamples per chunk, since a one-row matrix product is much slower per row).
CHUNK_ELEMENTS = 1_000_000

#: Above this many entries in the package's (units × V × V) coincidence array, the point value of an
#: interval α is taken from the exact closed form instead of the krippendorff package (same number).
_PACKAGE_MAX_ELEMENTS = 200_000_000

_REQUIRED = ("clip_id", "rater_id", "value")


class ReliabilityMatrix(NamedTuple):
    """Raters × units ratings, as the krippendorff package takes them.

    ``matrix[r, u]`` is NaN where rater r did not rate unit u; otherwise the number itself for a numeric
    domain, or the index of the value in ``domain`` for a text domain. ``units`` and ``raters`` are the
    clip and rater ids in sorted order.
    """

    matrix: np.ndarray
    units: list
    raters: list
    domain: list


# ----------------------------------------------------------------------------------------------------------
# Long table -> reliability matrix and value counts


def reliability_matrix(df: pd.DataFrame, value_domain: Sequence | None = None) -> ReliabilityMatrix:
    """Turn a long table (``clip_id``, ``rater_id``, ``value``) into a raters × units matrix.

    Args:
        df: one row per rating. Rows whose value is missing (NaN/None) are not ratings and are skipped.
        value_domain: every value a rater could give, in order (the order matters for ordinal data).
            None takes the sorted values that occur.

    Returns:
        :class:`ReliabilityMatrix` (matrix, units, raters, domain).

    Raises:
        InputError: a required column is missing, a value is outside ``value_domain``, values mix text
            and numbers, or a rater rated the same clip twice (every duplicate is listed).
        ConfigError: ``value_domain`` repeats a value.

    >>> df = pd.DataFrame({"clip_id": ["a", "a", "b"], "rater_id": ["r1", "r2", "r1"],
    ...                    "value": ["joy", "sad", "sad"]})
    >>> rm = reliability_matrix(df, ["joy", "sad", "angry"])
    >>> rm.matrix.tolist(), rm.units, rm.raters
    ([[0.0, 1.0], [1.0, nan]], ['a', 'b'], ['r1', 'r2'])
    """
    _check_columns(df)
    df = df[df["value"].notna()]
    enc = _encode(df["clip_id"], df["rater_id"], df["value"], value_domain)
    return enc.as_reliability_matrix()


def value_counts(rm: ReliabilityMatrix) -> np.ndarray:
    """The units × values count matrix ``counts[u, c]`` (raters who gave value ``domain[c]`` to unit u).

    >>> rm = ReliabilityMatrix(np.array([[1.0, 2.0], [1.0, np.nan]]), ["a", "b"], ["r1", "r2"], [1, 2])
    >>> value_counts(rm).tolist()
    [[2, 0], [0, 1]]
    """
    codes = _codes_of(rm)
    return _counts_from_codes(codes, len(rm.domain))


@dataclass(frozen=True)
class _Encoded:
    codes: np.ndarray  # (raters, units) int64, -1 = not rated
    units: list
    raters: list
    domain: list
    numeric: bool

    @property
    def values(self) -> np.ndarray:
        """(raters, units) float: the numbers (numeric domain) or domain indices, NaN where not rated."""
        n = len(self.domain)
        scale = np.asarray(self.domain, dtype=float) if self.numeric else np.arange(n, dtype=float)
        out = np.full(self.codes.shape, np.nan)
        rated = self.codes >= 0
        out[rated] = scale[self.codes[rated]]
        return out

    def as_reliability_matrix(self) -> ReliabilityMatrix:
        return ReliabilityMatrix(self.values, self.units, self.raters, self.domain)


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        expected = "a long table with columns clip_id, rater_id, value"
        raise InputError([Problem("column missing", expected=expected, field=c,
                                  hint=did_you_mean(c, map(str, df.columns))) for c in missing],
                         summary="annotations table lacks required columns")


def _is_numeric(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _encode(clip_ids: pd.Series, rater_ids: pd.Series, values: pd.Series,
            value_domain: Sequence | None) -> _Encoded:
    """Factorize ids (sorted), map values to domain indices; InputError lists every bad value/duplicate."""
    u_idx, units = pd.factorize(clip_ids, sort=True)
    r_idx, raters = pd.factorize(rater_ids, sort=True)
    # map the few distinct values, not every rating, to the domain
    v_idx, distinct = pd.factorize(values)
    distinct = distinct.tolist()
    if value_domain is None:
        try:
            domain = sorted(distinct)
        except TypeError:
            kinds = sorted({type(x).__name__ for x in distinct})
            raise InputError(Problem(f"values mix types {kinds}", expected="all text or all numbers",
                                     field="value")) from None
    else:
        domain = list(value_domain)
        if len(set(domain)) != len(domain):
            dup = sorted({str(x) for x in domain if domain.count(x) > 1})
            raise ConfigError(f"value_domain repeats {dup}; expected each value once, in order")
    numeric = bool(domain) and all(_is_numeric(x) for x in domain)
    if numeric:
        domain = [x.item() if isinstance(x, np.generic) else x for x in domain]
        position = {float(x): i for i, x in enumerate(domain)}
        lookup = [position.get(_as_float(x), -1) for x in distinct]
    else:
        position = {x: i for i, x in enumerate(domain)}
        lookup = [position.get(x, -1) for x in distinct]
    code = np.asarray(lookup + [-1], dtype=np.int64)[v_idx]  # v_idx is never -1: missing values were dropped
    bad = np.flatnonzero(code < 0)
    if bad.size:
        shown = [str(x) for x in domain]
        raw = values.to_numpy(dtype=object)
        ids = clip_ids.to_numpy(dtype=object)
        problems = [Problem(f"value {raw[i]!r} is not in the value domain", expected=f"one of {domain}",
                            id=str(ids[i]), field="value", hint=did_you_mean(str(raw[i]), shown))
                    for i in bad[:50]]
        raise InputError(problems, summary=f"{bad.size} rating(s) outside the value domain")
    n_units, n_raters = len(units), len(raters)
    flat = r_idx.astype(np.int64) * n_units + u_idx
    times = np.bincount(flat, minlength=n_raters * n_units)
    dups = np.flatnonzero(times > 1)
    if dups.size:
        problems = [Problem(f"rater {raters[k // n_units]!r} rated this clip {times[k]} times",
                            expected="one rating per rater and clip (keep the latest annotation, or drop "
                                     "cancelled ones)", id=str(units[k % n_units]), field="rater_id")
                    for k in dups[:50]]
        raise InputError(problems, summary=f"{dups.size} duplicate (rater, clip) pair(s)")
    codes = np.full((n_raters, n_units), -1, dtype=np.int64)
    codes[r_idx, u_idx] = code
    return _Encoded(codes, units.tolist(), raters.tolist(), domain, numeric)


def _as_float(x: Any) -> float | None:
    """A number (or numeric text such as "3") as float, else None."""
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _codes_of(rm: ReliabilityMatrix) -> np.ndarray:
    """Domain indices of a reliability matrix's entries, -1 where not rated."""
    m = np.asarray(rm.matrix, dtype=float)
    rated = ~np.isnan(m)
    codes = np.full(m.shape, -1, dtype=np.int64)
    if all(_is_numeric(x) for x in rm.domain) and rm.domain:
        dom = np.asarray(rm.domain, dtype=float)
        order = np.argsort(dom, kind="stable")
        vals = m[rated]
        pos = np.minimum(np.searchsorted(dom[order], vals), len(dom) - 1)
        codes[rated] = np.where(dom[order][pos] == vals, order[pos], -1)
    else:
        codes[rated] = m[rated].astype(np.int64)
    if (codes[rated] < 0).any() or (codes[rated] >= len(rm.domain)).any():
        raise InputError(Problem("matrix holds values outside the domain", expected=f"values in {rm.domain}"))
    return codes


def _counts_from_codes(codes: np.ndarray, n_values: int) -> np.ndarray:
    n_units = codes.shape[1]
    rated = codes >= 0
    flat = (np.arange(n_units, dtype=np.int64)[None, :] * n_values + codes)[rated]
    return np.bincount(flat, minlength=n_units * n_values).reshape(n_units, n_values)


# ----------------------------------------------------------------------------------------------------------
# Statistics as sums over units: per-unit terms (units × K) and a "finish" mapping column sums to values.
# A point estimate finishes terms.sum(0); resamples finish W @ terms, one row per resample.


@dataclass(frozen=True)
class _UnitSums:
    terms: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray]

    def value(self) -> float:
        return float(self.finish(self.terms.sum(axis=0)[None, :])[0])

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        return self.finish(np.asarray(weights, dtype=float) @ self.terms)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def _distance_matrix(level: str, domain: Sequence) -> np.ndarray:
    """δ²(c, k) for the levels whose distances are fixed (nominal, interval, ratio, masi), Krippendorff (2011).

    nominal: [c ≠ k];  interval: (c − k)²;  ratio: ((c − k) / (c + k))², 0 where c + k = 0 (as the
    krippendorff package does);  masi: :func:`masi_distance` of the label sets.
    """
    n = len(domain)
    if level == "nominal":
        return 1.0 - np.eye(n)
    if level == "masi":
        return masi_matrix(domain)
    x = np.asarray(domain, dtype=float)
    diff = x[:, None] - x[None, :]
    if level == "interval":
        return diff**2
    return np.nan_to_num(_safe_div(diff, x[:, None] + x[None, :])) ** 2


def _ordinal_distances(n_c: np.ndarray) -> np.ndarray:
    """(B, V, V) ordinal δ² from marginals ``n_c`` (B, V), matching the krippendorff package.

    δ²(c, k) = (Σ_{g=min(c,k)..max(c,k)} n_g − (n_c + n_k) / 2)²   (Krippendorff 2011).
    """
    cs = np.cumsum(n_c, axis=-1)
    cs_c, cs_k = cs[:, :, None], cs[:, None, :]
    n_row, n_col = n_c[:, :, None], n_c[:, None, :]
    idx = np.arange(n_c.shape[-1])
    between = np.where(idx[:, None] <= idx[None, :], cs_k - cs_c + n_row, cs_c - cs_k + n_col)
    return (between - (n_row + n_col) / 2.0) ** 2


def _alpha_sums(counts: np.ndarray, domain: Sequence, level: str) -> _UnitSums:
    """Krippendorff's α as per-unit sums.

    With m_u = Σ_c n_uc ratings on unit u and only pairable units (m_u ≥ 2) counted, the coincidences are
    o_ck = Σ_u (n_uc n_uk − [c=k] n_uc) / (m_u − 1), the marginals n_c = Σ_k o_ck = Σ_u n_uc, n = Σ_c n_c, and
    α = 1 − (n − 1) Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck. Every part is a sum over units of
    n_u^T Δ n_u / (m_u − 1) (observed) and n_uc (marginals); for ordinal data Δ itself depends on the
    marginals, so the per-unit outer products n_u n_u^T / (m_u − 1) are summed instead.
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    pairable = m >= 2
    cp = counts * pairable[:, None]
    inv = np.nan_to_num(_safe_div(pairable.astype(float), m - 1))  # 1 / (m_u − 1), 0 if not pairable
    v = counts.shape[1]
    if level == "interval":
        x = np.asarray(domain, dtype=float)
        mp = cp.sum(axis=1)
        center = float(cp.sum(axis=0) @ x / mp.sum()) if mp.sum() else 0.0
        xc = x - center
        s1 = cp @ xc
        mean_u = np.nan_to_num(_safe_div(s1, mp))
        ss = (cp * (xc[None, :] - mean_u[:, None]) ** 2).sum(axis=1)
        return _interval_sums(mp, s1, cp @ xc**2, ss)
    if level == "ordinal":
        outer = (cp[:, :, None] * cp[:, None, :] * inv[:, None, None]).reshape(len(cp), v * v)
        terms = np.column_stack([outer, cp])

        def finish(s: np.ndarray) -> np.ndarray:
            o, n_c = s[:, : v * v].reshape(-1, v, v), s[:, v * v:]
            delta = _ordinal_distances(n_c)
            n = n_c.sum(axis=1)
            observed = (o * delta).sum(axis=(1, 2))
            expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
            return 1.0 - (n - 1.0) * _safe_div(observed, expected)

        return _UnitSums(terms, finish)
    delta = _distance_matrix(level, domain)
    d = ((cp @ delta) * cp).sum(axis=1) * inv
    terms = np.column_stack([d, cp])

    def finish(s: np.ndarray) -> np.ndarray:
        n_c = s[:, 1:]
        n = n_c.sum(axis=1)
        return 1.0 - (n - 1.0) * _safe_div(s[:, 0], ((n_c @ delta) * n_c).sum(axis=1))

    return _UnitSums(terms, finish)


def _interval_sums_from_values(values: np.ndarray) -> _UnitSums:
    """Interval α from a raters × units value matrix (NaN = missing), for scales with too many distinct
    values for a count matrix; the same sums as :func:`_alpha_sums` with ``level="interval"``."""
    keep = ~np.isnan(values)
    keep &= keep.sum(axis=0) >= 2
    mp = keep.sum(axis=0).astype(float)
    center = float(values[keep].mean()) if keep.any() else 0.0
    xc = np.where(keep, values - center, 0.0)
    s1 = xc.sum(axis=0)
    mean_u = np.nan_to_num(_safe_div(s1, mp))
    ss = np.where(keep, (xc - mean_u[None, :]) ** 2, 0.0).sum(axis=0)
    return _interval_sums(mp, s1, (xc**2).sum(axis=0), ss)


def _interval_sums(m: np.ndarray, s1: np.ndarray, s2: np.ndarray, ss: np.ndarray) -> _UnitSums:
    """Interval α from per-unit moments of the pairable units (zeros for the others): m ratings, s1 and s2
    the sums of the values and of their squares (values centred on a constant, for accuracy), ss the
    within-unit sum of squares.

    Σ_ck n_uc n_uk (c − k)² = 2 m_u ss_u per unit (observed), and Σ_ck n_c n_k (c − k)² = 2 (n S2 − S1²) in
    total (expected), so α = 1 − (n − 1) Σ_u [2 m_u ss_u / (m_u − 1)] / (2 (n S2 − S1²)).
    """
    d = np.nan_to_num(_safe_div(2.0 * m * ss, m - 1))
    terms = np.column_stack([d, m, s1, s2])

    def finish(s: np.ndarray) -> np.ndarray:
        n = s[:, 1]
        return 1.0 - (n - 1.0) * _safe_div(s[:, 0], 2.0 * (n * s[:, 3] - s[:, 2] ** 2))

    return _UnitSums(terms, finish)


def _fleiss_sums(counts: np.ndarray) -> _UnitSums:
    """Fleiss' κ as per-unit sums (every unit has the same m ≥ 2 ratings; checked by the caller).

    P_u = (Σ_c n_uc² − m) / (m (m − 1)), P̄ = mean_u P_u, p_c = Σ_u n_uc / (N m), P̄_e = Σ_c p_c²,
    κ = (P̄ − P̄_e) / (1 − P̄_e)   (Fleiss 1971).
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    p_u = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    terms = np.column_stack([np.ones(len(counts)), p_u, counts])

    def finish(s: np.ndarray) -> np.ndarray:
        n_units, n_c = s[:, 0], s[:, 2:]
        p_bar = s[:, 1] / n_units
        p_c = n_c / n_c.sum(axis=1, keepdims=True)
        p_e = (p_c**2).sum(axis=1)
        return _safe_div(p_bar - p_e, 1.0 - p_e)

    return _UnitSums(terms, finish)


def _gwet_sums(counts: np.ndarray) -> _UnitSums:
    """Gwet's AC1 as per-unit sums, for any number of ratings per unit (Gwet 2008; Handbook, 4th ed.).

    Over the n units with r_u ≥ 1 ratings and the n₂ units with r_u ≥ 2, q = number of categories:
    p_a = (1/n₂) Σ_{r_u≥2} Σ_c n_uc (n_uc − 1) / (r_u (r_u − 1)),  π_c = (1/n) Σ_u n_uc / r_u,
    p_e = Σ_c π_c (1 − π_c) / (q − 1),  AC1 = (p_a − p_e) / (1 − p_e).
    """
    counts = np.asarray(counts, dtype=float)
    r = counts.sum(axis=1)
    two = r >= 2
    pa_u = np.where(two, (counts * (counts - 1)).sum(axis=1) / np.where(two, r * (r - 1), 1.0), 0.0)
    share = counts / np.where(r > 0, r, 1.0)[:, None]
    terms = np.column_stack([(r > 0).astype(float), two.astype(float), pa_u, share])
    q = counts.shape[1]

    def finish(s: np.ndarray) -> np.ndarray:
        p_a = _safe_div(s[:, 2], s[:, 1])
        pi = s[:, 3:] / s[:, [0]]
        p_e = (pi * (1.0 - pi)).sum(axis=1) / (q - 1) if q >= 2 else np.full(len(s), np.nan)
        return _safe_div(p_a - p_e, 1.0 - p_e)

    return _UnitSums(terms, finish)


def _resample_weights(n_units: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of the (n_boot × n_units) bootstrap weight matrix: W[b, u] = times unit u is drawn in
    resample b (units drawn with replacement, n_units draws per resample). The draws are one stream, so
    the chunk size does not change the resamples."""
    rng = np.random.default_rng(seed)
    chunk = max(2, CHUNK_ELEMENTS // max(n_units, 1))
    # 32-bit draws are ~2.5x cheaper than 64-bit ones, and drawing dominates the bootstrap's cost
    dtype = np.uint32 if n_units < 2**32 else np.int64
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, n_units, size=(b, n_units), dtype=dtype)
        w = np.empty((b, n_units))
        for i, row in enumerate(draws):  # one row at a time keeps bincount's counters in cache
            w[i] = np.bincount(row, minlength=n_units)
        yield w
        done += b


def _bootstrap(stats: Sequence[_UnitSums], n_boot: int, seed: int) -> list[np.ndarray]:
    """Resampled values of several statistics over the *same* unit resamples, one (n_boot,) array each."""
    if not stats or n_boot <= 0:
        return [np.empty(0) for _ in stats]
    n_units = len(stats[0].terms)
    terms = np.column_stack([s.terms for s in stats])
    edges = np.cumsum([0] + [s.terms.shape[1] for s in stats])
    out: list[list[np.ndarray]] = [[] for _ in stats]
    for w in _resample_weights(n_units, n_boot, seed):
        sums = w @ terms
        for i, s in enumerate(stats):
            out[i].append(s.finish(sums[:, edges[i]:edges[i + 1]]))
    return [np.concatenate(parts) for parts in out]


# ----------------------------------------------------------------------------------------------------------
# Set-valued ratings: the MASI distance (Passonneau 2006)

#: Up to this many distinct label sets, MASI-α's bootstrap resamples both its observed and its expected
#: disagreement (a V x V distance matrix per run); above it, the expected one is held fixed.
MASI_EXACT_MAX_SETS = 512

#: MASI's monotonicity factor M (Passonneau 2006): identical sets, one a subset of the other, overlapping
#: sets, disjoint sets. NLTK's ``masi_distance`` rounds 2/3 and 1/3 to 0.67 and 0.33.
MASI_MONOTONICITY = {"identical": 1.0, "subset": 2.0 / 3.0, "overlap": 1.0 / 3.0, "disjoint": 0.0}


def label_set(value: Any) -> frozenset:
    """A set-valued rating as a frozenset: ``"a;b"`` text (blanks ignored; weights written ``"a:3;b:1"`` are
    dropped: MASI compares sets), or any iterable of labels.

    >>> sorted(label_set("rage; disapproval")), sorted(label_set("joy:3;love:1"))
    (['disapproval', 'rage'], ['joy', 'love'])
    """
    if isinstance(value, str):
        return frozenset(x.partition(":")[0].strip() for x in value.split(";") if x.partition(":")[0].strip())
    return frozenset(value)


def masi_distance(a: Any, b: Any) -> float:
    """MASI distance of two label sets (Passonneau 2006, "Measuring agreement on set-valued items (MASI)
    for semantic and pragmatic annotation", LREC): ``1 − J · M`` with J = |A ∩ B| / |A ∪ B| (Jaccard) and
    M = 1 for identical sets, 2/3 when one contains the other, 1/3 when they overlap otherwise, 0 when
    disjoint (:data:`MASI_MONOTONICITY`). Sets may be given as ``"a;b"`` text.

    >>> masi_distance("joy", "joy"), masi_distance("joy", "sad"), round(masi_distance("joy;love", "joy"), 4)
    (0.0, 1.0, 0.6667)
    """
    a, b = label_set(a), label_set(b)
    if not a and not b:
        return 0.0
    inter, union = len(a & b), len(a | b)
    if a == b:
        m = MASI_MONOTONICITY["identical"]
    elif inter == min(len(a), len(b)):
        m = MASI_MONOTONICITY["subset"]
    elif inter:
        m = MASI_MONOTONICITY["overlap"]
    else:
        m = MASI_MONOTONICITY["disjoint"]
    return 1.0 - inter / union * m


def _masi_from_membership(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MASI distances between the rows of two 0/1 label-membership matrices, (..., A, K) and (..., B, K)
    -> (..., A, B); the vectorised :func:`masi_distance`."""
    a, b = a.astype(float), b.astype(float)
    inter = a @ np.swapaxes(b, -1, -2)
    size_a, size_b = a.sum(-1)[..., :, None], b.sum(-1)[..., None, :]
    union = size_a + size_b - inter
    m = np.where(inter == 0, MASI_MONOTONICITY["disjoint"], MASI_MONOTONICITY["overlap"])
    m = np.where((inter > 0) & (inter == np.minimum(size_a, size_b)), MASI_MONOTONICITY["subset"], m)
    m = np.where((inter == size_a) & (inter == size_b), MASI_MONOTONICITY["identical"], m)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 - np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0) * m
    return d.astype(float)


def _membership(domain: Sequence, labels: Sequence | None = None) -> tuple[np.ndarray, list]:
    """(V, K) 0/1 matrix of which labels each set of ``domain`` holds, and the labels (sorted if not given)."""
    sets = [label_set(x) for x in domain]
    labels = list(labels) if labels is not None else sorted(set().union(*sets)) if sets else []
    index = {x: i for i, x in enumerate(labels)}
    out = np.zeros((len(sets), len(labels)), dtype=bool)
    for i, st in enumerate(sets):
        out[i, [index[x] for x in st]] = True
    return out, labels


def masi_matrix(domain: Sequence) -> np.ndarray:
    """(V, V) MASI distances between the label sets of ``domain``.

    >>> masi_matrix(["joy", "joy;love"]).round(4).tolist()
    [[0.0, 0.6667], [0.6667, 0.0]]
    """
    member, _ = _membership(domain)
    return _masi_from_membership(member, member)


def canonical_label_set(value: Any) -> str:
    """A label set as canonical text: labels sorted and joined by ``;`` ("rage;disapproval" ->
    "disapproval;rage"), so that the same set written in another order is the same value."""
    return ";".join(sorted(label_set(value)))


# ----------------------------------------------------------------------------------------------------------
# Public statistics on a count matrix


def _check_level(level: str) -> str:
    if level not in ALL_LEVELS:
        hint = did_you_mean(str(level), ALL_LEVELS)
        raise ConfigError(f"unknown level of measurement {level!r}; expected one of {list(ALL_LEVELS)}"
                          + (f" ({hint})" if hint else ""))
    return level


def krippendorff_alpha(counts: ArrayLike, value_domain: Sequence, *, level: Level) -> float:
    """Krippendorff's α from a units × values count matrix, computed by the ``krippendorff`` package.

    α = 1 − D_o / D_e = 1 − (n − 1) Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck, with o the coincidence matrix of
    the pairable values (units with ≥ 2 ratings), n_c its marginals and δ² the distance of the level
    (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    Args:
        counts: ``counts[u, c]`` = raters who gave ``value_domain[c]`` to unit u.
        value_domain: the values, in order; numbers for interval and ratio.
        level: "nominal", "ordinal", "interval" or "ratio"; required, since it changes the value.

    Returns:
        α; NaN when undefined (no unit with two ratings, or every pairable value the same).

    Raises:
        ConfigError: unknown level, or the domain does not match the columns of ``counts``.
        MissingDependencyError: the krippendorff package is not installed.

    >>> counts = [[2, 0, 0], [0, 2, 0], [1, 1, 0], [0, 0, 3]]
    >>> round(krippendorff_alpha(counts, [1, 2, 3], level="nominal"), 4)
    0.7037
    >>> round(krippendorff_alpha(counts, [1, 2, 3], level="interval"), 4)
    0.8519
    """
    _check_level(level)
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != len(value_domain):
        raise ConfigError(f"counts have shape {counts.shape}; expected (units, {len(value_domain)}) for a "
                          f"domain of {len(value_domain)} values")
    if _alpha_undefined(counts):
        return float("nan")
    try:
        import krippendorff
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("Krippendorff's alpha needs the krippendorff package: "
                                     "pip install 'casebench[annotation]'") from None
    if level == "masi":  # the package takes any distance as a callable over domain indices
        table = masi_matrix(value_domain)

        def metric(v1, v2, i1, i2, n_v, dtype=np.float64):
            return table[i1, i2].astype(dtype)

        return float(krippendorff.alpha(value_counts=counts, value_domain=np.arange(len(value_domain)),
                                        level_of_measurement=metric))
    dom = np.asarray(value_domain, dtype=float if level in ("interval", "ratio") else None)
    return float(krippendorff.alpha(value_counts=counts, value_domain=dom, level_of_measurement=level))


def _alpha_undefined(counts: np.ndarray) -> str | None:
    """Why α is undefined for these counts, or None."""
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(pairable) == 0:
        return "no clip has two or more ratings"
    if (pairable.sum(axis=0) > 0).sum() < 2:
        return "every rating of a clip with two or more ratings has the same value (no expected disagreement)"
    return None


def weighted_alpha(counts: ArrayLike, value_domain: Sequence, *, level: Level,
                   weights: ArrayLike) -> np.ndarray:
    """Krippendorff's α of re-weighted units: one value per row of ``weights`` (resamples × units).

    Row b counts unit u ``weights[b, u]`` times, so bootstrap multinomial counts give bootstrap α's, and a
    row of ones gives α itself (equal to :func:`krippendorff_alpha` to rounding error).

    >>> counts = [[2, 0, 0], [0, 2, 0], [1, 1, 0], [0, 0, 3]]
    >>> weighted_alpha(counts, [1, 2, 3], level="nominal", weights=[[1, 1, 1, 1], [2, 0, 1, 1]]).round(4)
    array([0.7037, 0.6522])
    """
    _check_level(level)
    return _alpha_sums(np.asarray(counts), value_domain, level).weighted(np.atleast_2d(weights))


def bootstrap_alpha(counts: ArrayLike, value_domain: Sequence, *, level: Level, n_boot: int = 1000,
                    seed: int = 0) -> np.ndarray:
    """α of ``n_boot`` bootstrap resamples of the units (rows of ``counts``), seeded; NaN where undefined.

    The percentile interval ``np.nanpercentile(a, [2.5, 97.5])`` is the 95% CI that
    :func:`agreement_report` reports.

    >>> counts = [[2, 0], [0, 2], [1, 1], [2, 0], [0, 3]]
    >>> a = bootstrap_alpha(counts, ["no", "yes"], level="nominal", n_boot=100, seed=1)
    >>> a.shape, bool(np.all(a[~np.isnan(a)] <= 1))
    ((100,), True)
    """
    _check_level(level)
    return _bootstrap([_alpha_sums(np.asarray(counts), value_domain, level)], n_boot, seed)[0]


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' κ for units that all have the same number m ≥ 2 of ratings (unweighted, categories).

    P_u = (Σ_c n_uc² − m) / (m (m − 1)), P̄ = mean P_u, p_c = Σ_u n_uc / (N m), P̄_e = Σ_c p_c²,
    κ = (P̄ − P̄_e) / (1 − P̄_e)   (Fleiss 1971, Psychological Bulletin 76(5)).

    Raises:
        InputError: units have different numbers of ratings (use Gwet's AC1 or Krippendorff's α).

    >>> round(fleiss_kappa([[3, 0], [0, 3], [2, 1], [3, 0]]), 4)
    0.625
    """
    counts = np.asarray(counts, dtype=float)
    reason = _fleiss_not_applicable(counts.sum(axis=1))
    if reason:
        raise InputError(Problem(reason, expected="the same number (≥ 2) of ratings on every clip"))
    return _fleiss_sums(counts).value()


def _fleiss_not_applicable(m: np.ndarray) -> str | None:
    if len(m) == 0:
        return "no ratings"
    lo, hi = int(m.min()), int(m.max())
    if lo != hi:
        return (f"clips have between {lo} and {hi} ratings; Fleiss' kappa needs the same number of ratings "
                f"on every clip (Gwet's AC1 and Krippendorff's alpha do not)")
    if lo < 2:
        return "every clip has a single rating"
    return None


def gwet_ac1(counts: ArrayLike) -> float:
    """Gwet's AC1 for any number of ratings per unit (Gwet 2008, BJMSP 61; Handbook of Inter-Rater
    Reliability, 4th ed., 2014), unweighted, with q = the number of columns (the whole value domain).

    p_a = (1/n₂) Σ_{r_u≥2} Σ_c n_uc (n_uc − 1) / (r_u (r_u − 1)) over the n₂ units with ≥ 2 ratings,
    π_c = (1/n) Σ_u n_uc / r_u over the n units with ≥ 1 rating, p_e = Σ_c π_c (1 − π_c) / (q − 1),
    AC1 = (p_a − p_e) / (1 − p_e).

    >>> round(gwet_ac1([[3, 0], [0, 3], [2, 1], [3, 0]]), 4)
    0.7
    """
    counts = np.asarray(counts, dtype=float)
    counts = counts[counts.sum(axis=1) > 0]
    return _gwet_sums(counts).value()


# ----------------------------------------------------------------------------------------------------------
# Rater-level views


def cohen_kappa_matrix(rm: ReliabilityMatrix, *, weights: Literal["linear", "quadratic"] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's κ for every pair of raters, on the units both rated.

    κ = 1 − Σ_ck w_ck O_ck / Σ_ck w_ck E_ck with O the pair's contingency table over the domain, E the
    product of its margins / n, and w = [c ≠ k] (unweighted), |i − j| ("linear") or (i − j)² ("quadratic")
    on domain positions — the definitions of ``sklearn.metrics.cohen_kappa_score`` with
    ``labels=<domain>`` (Cohen 1960, 1968). Written here, not called per pair, because scikit-learn would
    re-validate and re-encode the labels for each of the R (R − 1) / 2 pairs.

    Returns:
        (kappa, n_common): R × R arrays; kappa is NaN on the diagonal, where two raters share no unit,
        and where κ is undefined (both raters used a single, identical value).

    >>> rm = ReliabilityMatrix(np.array([[0, 1, 1, 0], [0, 1, 0, 0.]]), ["a", "b", "c", "d"], ["r1", "r2"],
    ...                        ["no", "yes"])
    >>> k, n = cohen_kappa_matrix(rm)
    >>> round(float(k[0, 1]), 4), int(n[0, 1])
    (0.5, 4)
    """
    codes = _codes_of(rm)
    n_raters, v = codes.shape[0], len(rm.domain)
    pos = np.arange(v, dtype=float)
    if weights is None:
        w = 1.0 - np.eye(v)
    elif weights == "linear":
        w = np.abs(pos[:, None] - pos[None, :])
    elif weights == "quadratic":
        w = (pos[:, None] - pos[None, :]) ** 2
    else:
        raise ConfigError(f"unknown Cohen's kappa weights {weights!r}; "
                          "expected None, 'linear' or 'quadratic'")
    kappa = np.full((n_raters, n_raters), np.nan)
    n_common = np.zeros((n_raters, n_raters), dtype=np.int64)
    rated = codes >= 0
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            both = rated[i] & rated[j]
            n = int(both.sum())
            n_common[i, j] = n_common[j, i] = n
            if n == 0:
                continue
            o = np.bincount(codes[i, both] * v + codes[j, both], minlength=v * v).reshape(v, v)
            e = np.outer(o.sum(axis=1), o.sum(axis=0)) / n
            den = (w * e).sum()
            if den > 0:
                kappa[i, j] = kappa[j, i] = 1.0 - (w * o).sum() / den
    for i in range(n_raters):
        n_common[i, i] = int(rated[i].sum())
    return kappa, n_common


def consensus_agreement(rm: ReliabilityMatrix, *, level: Level) -> list[dict]:
    """Each rater against the leave-one-out consensus of the *other* raters on the same clips.

    Only clips with at least one other rating count. For nominal data the consensus is the others'
    majority value and the score is the share of clips where the rater gave it (a tie among k values
    scores 1/k when the rater's value is one of them). For ordinal, interval and ratio data the consensus
    is the others' mean (of domain positions for ordinal) and the score is Pearson's r between rater and
    consensus, with the mean absolute difference as ``mae``. A careless rater stands out with a low score.

    Returns:
        One dict per rater: rater_id, n_ratings, n_compared, agreement_with_consensus (None when
        undefined) and, for non-nominal levels, mae.

    >>> rm = ReliabilityMatrix(np.array([[0, 1, 1], [0, 1, 1], [1, 0, 1.]]), ["a", "b", "c"],
    ...                        ["r1", "r2", "r3"], ["no", "yes"])
    >>> [(d["rater_id"], d["agreement_with_consensus"]) for d in consensus_agreement(rm, level="nominal")]
    [('r1', 0.6666666666666666), ('r2', 0.6666666666666666), ('r3', 0.3333333333333333)]
    """
    _check_level(level)
    if level == "masi":
        raise ConfigError("consensus_agreement takes single values; agreement_report(level='masi') scores each "
                          "rater's label sets against the others'")
    codes = _codes_of(rm)
    rated = codes >= 0
    m = rated.sum(axis=0)
    out = []
    if level == "nominal":
        counts = _counts_from_codes(codes, len(rm.domain))
        for r, rater in enumerate(rm.raters):
            units = np.flatnonzero(rated[r] & (m >= 2))
            score = None
            if units.size:
                mine = codes[r, units]
                others = counts[units].copy()
                others[np.arange(units.size), mine] -= 1
                modes = others == others.max(axis=1, keepdims=True)
                score = float((modes[np.arange(units.size), mine] / modes.sum(axis=1)).mean())
            out.append({"rater_id": _py(rater), "n_ratings": int(rated[r].sum()),
                        "n_compared": int(units.size), "agreement_with_consensus": score})
        return out
    if level == "ordinal":
        values = np.where(rated, codes, 0).astype(float)
    else:
        values = np.where(rated, np.asarray(rm.matrix, dtype=float), 0.0)
    total = values.sum(axis=0)
    for r, rater in enumerate(rm.raters):
        units = np.flatnonzero(rated[r] & (m >= 2))
        score = mae = None
        if units.size:
            mine = values[r, units]
            cons = (total[units] - mine) / (m[units] - 1)
            mae = float(np.abs(mine - cons).mean())
            if units.size >= 2 and mine.std() > 0 and cons.std() > 0:
                score = float(np.corrcoef(mine, cons)[0, 1])
        out.append({"rater_id": _py(rater), "n_ratings": int(rated[r].sum()),
                    "n_compared": int(units.size), "agreement_with_consensus": score, "mae": mae})
    return out


# ----------------------------------------------------------------------------------------------------------
# Reports


def _py(x: Any) -> Any:
    """A JSON-ready Python scalar: numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _matrix_json(a: np.ndarray) -> list[list]:
    return [[_py(x) for x in row] for row in a]


def _select(df: pd.DataFrame, dimension: str | None) -> tuple[pd.DataFrame, str | None, dict]:
    """Rows of one dimension, without cancelled annotations and missing values (both counted)."""
    _check_columns(df)
    if "dimension" in df.columns:
        present = sorted(pd.unique(df["dimension"].dropna()).tolist(), key=str)
        if dimension is None:
            if len(present) > 1:
                raise InputError(Problem(f"the table holds {len(present)} dimensions {present}",
                                         expected="one of them chosen with --dimension NAME",
                                         field="dimension"))
            dimension = present[0] if present else None
        elif dimension not in present:
            raise InputError(Problem(f"no ratings for dimension {dimension!r}", expected=f"one of {present}",
                                     field="dimension", hint=did_you_mean(str(dimension), map(str, present))))
        if dimension is not None:
            df = df[df["dimension"] == dimension]
    elif dimension is not None:
        raise InputError(Problem(f"--dimension {dimension!r} given but the table has no 'dimension' column",
                                 expected="a 'dimension' column, or no --dimension", field="dimension"))
    excluded = {}
    if "cancelled" in df.columns:
        cancelled = df["cancelled"].fillna(False).astype(bool)
        excluded["cancelled"] = int(cancelled.sum())
        df = df[~cancelled]
    return df, dimension, excluded


def _values_for_level(df: pd.DataFrame, level: str, value_domain: Sequence | None) -> tuple[pd.Series, str]:
    """The column holding the ratings: ``value``, or numbers for ordered levels (``value_num`` if present,
    else ``value`` parsed as numbers). Ordinal text values need an ordered ``value_domain``."""
    value = df["value"]
    text_domain = value_domain is not None and not all(_is_numeric(x) for x in value_domain)
    if text_domain and level in ("interval", "ratio"):
        raise ConfigError(f"{level} data needs a numeric value domain; got {list(value_domain)[:10]}")
    if pd.api.types.is_numeric_dtype(value) and not pd.api.types.is_bool_dtype(value):
        return value, "value"
    if text_domain or (level == "nominal" and value_domain is None):
        return value, "value"
    if "value_num" in df.columns and level != "nominal":
        return df["value_num"], "value_num"
    num = pd.to_numeric(value, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy() & value.notna().to_numpy())
    if bad.size:
        raw, ids = value.to_numpy(dtype=object), df["clip_id"].to_numpy(dtype=object)
        expected = f"numbers for {level} data"
        if level == "ordinal":
            expected += " (or an ordered value_domain of the text values)"
        problems = [Problem(f"value {raw[i]!r} is not a number", expected=expected, id=str(ids[i]),
                            field="value") for i in bad[:50]]
        raise InputError(problems, summary=f"{bad.size} non-numeric rating(s) for a {level} dimension")
    return num, "value"


def _coefficient(value: float, boot: np.ndarray | None, note: str | None = None) -> dict:
    out: dict[str, Any] = {"value": _py(float(value)), "ci_low": None, "ci_high": None, "applicable": True}
    if boot is not None and boot.size and np.isfinite(boot).any():
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        out.update(ci_low=_py(float(lo)), ci_high=_py(float(hi)))
        out["n_boot_undefined"] = int((~np.isfinite(boot)).sum())
    if note:
        out["note"] = note
    return out


def _not_applicable(reason: str) -> dict:
    return {"value": None, "ci_low": None, "ci_high": None, "applicable": False, "reason": reason}


_COHEN_WEIGHTS = {"nominal": None, "ordinal": "linear", "interval": "quadratic", "ratio": "quadratic"}


def agreement_report(df: pd.DataFrame, *, level: Level, dimension: str | None = None,
                     value_domain: Sequence | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Agreement of the raters on one dimension, as a JSON-ready dict.

    Args:
        df: long table, one row per rating: clip_id, rater_id, value; optional dimension (required when
            it holds several), value_num (used for ordinal/interval/ratio when ``value`` is text) and
            cancelled (such rows are excluded and counted).
        level: "nominal", "ordinal", "interval" or "ratio" — required, never guessed.
        dimension: which dimension to score.
        value_domain: every value a rater could give, in order. None takes the values that occur, and the
            report says so (``value_domain_source: "observed"``): Gwet's AC1 depends on the number of
            categories, so pass the full label list for categories.
        n_boot: bootstrap resamples of the clips for the 95% CIs (0 for none).
        seed: seed of the resampling.

    Returns:
        Keys: level, dimension, value_domain, value_domain_source, value_column, n_units, n_raters,
        n_ratings, n_pairable_units, excluded; krippendorff_alpha, fleiss_kappa and gwet_ac1 (each value,
        ci_low, ci_high, applicable, and reason when not applicable); pairwise_cohen_kappa (raters, weights,
        kappa and n_common as rater × rater lists); per_rater (see :func:`consensus_agreement`) with
        per_rater_measure; bootstrap (n_boot, seed, unit, method). CIs are percentile intervals over the
        same clip resamples for all three coefficients. Fleiss' κ, Gwet's AC1 and Cohen's κ treat values
        as categories (Cohen's κ is weighted for ordered levels, see ``pairwise_cohen_kappa.weights``).

    Raises:
        ConfigError: unknown level, or a text domain for interval/ratio data.
        InputError: missing columns, several dimensions without ``dimension=``, values outside the domain
            or not numeric, duplicate (rater, clip) ratings.

    >>> df = pd.DataFrame({"clip_id": list("aabbcc"), "rater_id": ["r1", "r2"] * 3,
    ...                    "value": [1, 2, 3, 3, 5, 4]})
    >>> rep = agreement_report(df, level="interval", value_domain=[1, 2, 3, 4, 5], n_boot=0)
    >>> round(rep["krippendorff_alpha"]["value"], 4), rep["fleiss_kappa"]["value"] is not None
    (0.8333, True)
    """
    _check_level(level)
    table, dimension, excluded = _select(df, dimension)
    if level == "masi":
        return _masi_report(table, dimension, excluded, value_domain, n_boot, seed)
    values, value_column = _values_for_level(table, level, value_domain)
    keep = values.notna().to_numpy()
    excluded["missing_value"] = int((~keep).sum())
    table, values = table[keep], values[keep]
    if table.empty:
        raise InputError(Problem(f"no ratings left for dimension {dimension!r}",
                                 expected="at least one rating that is neither cancelled nor missing",
                                 field="value"), summary=f"nothing to score (excluded: {excluded})")
    enc = _encode(table["clip_id"], table["rater_id"], values, value_domain)
    if level in ("interval", "ratio") and not enc.numeric:
        raise ConfigError(f"{level} data needs numbers; the values are text {enc.domain[:10]}")
    n_units, v = len(enc.units), len(enc.domain)
    rated = enc.codes >= 0
    m = rated.sum(axis=0)
    out: dict[str, Any] = {
        "level": level, "dimension": dimension, "value_domain": [_py(x) for x in enc.domain],
        "value_domain_source": "observed" if value_domain is None else "given", "value_column": value_column,
        "n_units": n_units, "n_raters": len(enc.raters), "n_ratings": int(rated.sum()),
        "n_pairable_units": int((m >= 2).sum()), "excluded": excluded,
    }
    categorical = v <= MAX_CATEGORIES
    counts = _counts_from_codes(enc.codes, v) if categorical or level != "interval" else None

    # Krippendorff's alpha: point value from the krippendorff package; the bootstrap from the unit sums.
    stats: list[_UnitSums] = []
    names: list[str] = []
    alpha_reason = _alpha_undefined_from(enc, counts)
    if alpha_reason is None:
        if counts is not None and n_units * v * v <= _PACKAGE_MAX_ELEMENTS:
            alpha_value = krippendorff_alpha(counts, enc.domain, level=level)
            alpha_method = "krippendorff package"
            alpha_sums = _alpha_sums(counts, enc.domain, level)
        else:
            alpha_sums = (_interval_sums_from_values(enc.values) if counts is None
                          else _alpha_sums(counts, enc.domain, level))
            alpha_value, alpha_method = alpha_sums.value(), "closed form (too many values for the package)"
        stats.append(alpha_sums)
        names.append("krippendorff_alpha")
    unordered = None if level == "nominal" else "unweighted: values treated as unordered categories"
    fleiss_reason = (_fleiss_not_applicable(m[m > 0]) if categorical
                     else f"{v} distinct values; category-based coefficients need at most {MAX_CATEGORIES}")
    if fleiss_reason is None:
        stats.append(_fleiss_sums(counts))
        names.append("fleiss_kappa")
    gwet_reason = None
    if not categorical:
        gwet_reason = fleiss_reason
    elif v < 2:
        gwet_reason = "the value domain has a single value"
    elif (m >= 2).sum() == 0:
        gwet_reason = "no clip has two or more ratings"
    if gwet_reason is None:
        stats.append(_gwet_sums(counts))
        names.append("gwet_ac1")

    boots = dict(zip(names, _bootstrap(stats, n_boot, seed), strict=True))
    points = dict(zip(names, [s.value() for s in stats], strict=True))
    if alpha_reason is None:
        points["krippendorff_alpha"] = alpha_value
        out["krippendorff_alpha"] = {**_coefficient(alpha_value, boots.get("krippendorff_alpha")),
                                     "method": alpha_method}
    else:
        out["krippendorff_alpha"] = _not_applicable(alpha_reason)
    out["fleiss_kappa"] = (_coefficient(points["fleiss_kappa"], boots.get("fleiss_kappa"), unordered)
                           if fleiss_reason is None else _not_applicable(fleiss_reason))
    out["gwet_ac1"] = (_coefficient(points["gwet_ac1"], boots.get("gwet_ac1"), unordered)
                       if gwet_reason is None else _not_applicable(gwet_reason))

    rm = enc.as_reliability_matrix()
    raters = [_py(r) for r in enc.raters]
    if categorical:
        weights = _COHEN_WEIGHTS[level]
        kappa, n_common = cohen_kappa_matrix(rm, weights=weights)
        out["pairwise_cohen_kappa"] = {"raters": raters, "weights": weights, "kappa": _matrix_json(kappa),
                                       "n_common": n_common.tolist(), "applicable": True}
    else:
        out["pairwise_cohen_kappa"] = {"raters": raters, "applicable": False, "reason": fleiss_reason}
    out["per_rater"] = consensus_agreement(rm, level=level)
    if level == "nominal":
        measure = "share of clips where the rater gave the other raters' majority value (ties split)"
    else:
        of = " domain position" if level == "ordinal" else ""
        measure = (f"Pearson r between the rater and the other raters' mean{of}; "
                   "mae = mean absolute difference")
    out["per_rater_measure"] = measure
    out["bootstrap"] = {"n_boot": int(n_boot), "seed": int(seed), "unit": "clip_id",
                        "method": "percentile 95% interval; clips drawn with replacement, same resamples "
                                  "for every coefficient"}
    return out


def _masi_report(table: pd.DataFrame, dimension: str | None, excluded: dict, labels: Sequence | None,
                 n_boot: int, seed: int) -> dict:
    """:func:`agreement_report` for set-valued ratings (``level="masi"``): Krippendorff's α with the MASI
    distance between the raters' label sets, and per class the binary (nominal) α of "the rater chose this
    label", all with percentile CIs over the same clip resamples."""
    keep = table["value"].notna().to_numpy()
    excluded["missing_value"] = int((~keep).sum())
    table = table[keep]
    if table.empty:
        raise InputError(Problem(f"no ratings left for dimension {dimension!r}",
                                 expected="at least one rating that is neither cancelled nor missing",
                                 field="value"), summary=f"nothing to score (excluded: {excluded})")
    sets = table["value"].map(canonical_label_set)
    empty = np.flatnonzero((sets == "").to_numpy())
    used = sorted({x for v in pd.unique(sets) for x in label_set(v)})
    if labels is None:
        labels, source = used, "observed"
    else:
        labels, source = list(labels), "given"
    problems = [Problem(f"value {table['value'].iloc[i]!r} holds no label", expected="'a' or 'a;b'",
                        id=str(table["clip_id"].iloc[i]), field="value") for i in empty[:50]]
    unknown = sorted(set(used) - set(labels))
    if unknown:
        ids = table["clip_id"].to_numpy(dtype=object)
        for x in unknown[:50]:
            i = int(np.flatnonzero(sets.map(lambda v, x=x: x in label_set(v)).to_numpy())[0])
            problems.append(Problem(f"label {x!r} is not in the value domain", expected=f"one of {labels}",
                                    id=str(ids[i]), field="value", hint=did_you_mean(x, map(str, labels))))
    if problems:
        raise InputError(problems, summary=f"{len(problems)} set-valued rating(s) that are not label sets "
                                           "of the domain")
    enc = _encode(table["clip_id"], table["rater_id"], sets, None)
    n_sets = len(enc.domain)
    member, _ = _membership(enc.domain, labels)  # (V, K): which labels each distinct set holds
    # the ratings of each clip side by side: (U, M) set codes and rater indices, M = most ratings on a clip
    rated_rm = enc.codes >= 0
    m = rated_rm.sum(axis=0)
    width = max(int(m.max()), 1)
    order = np.argsort(~rated_rm, axis=0, kind="stable")[:width]
    codes = np.take_along_axis(enc.codes, order, axis=0).T
    raters = order.T
    rated = codes >= 0
    sets_of = member[np.where(rated, codes, 0)] & rated[:, :, None]  # (U, M, K)
    pair = _masi_from_membership(sets_of, sets_of) * (rated[:, :, None] & rated[:, None, :])  # (U, M, M)
    pairable = m >= 2
    inv = np.where(pairable, 1.0 / np.maximum(m - 1, 1), 0.0)
    d_u = pair.sum(axis=(1, 2)) * inv  # Σ_ck n_uc n_uk δ_ck / (m_u − 1)
    n_c = np.bincount(codes[rated & pairable[:, None]], minlength=n_sets).astype(float)
    expected = 0.0
    for start in range(0, n_sets, 1024):  # Σ_ck n_c n_k δ_ck in row blocks: V x V is never held at once
        block = _masi_from_membership(member[start:start + 1024], member)
        expected += float(n_c[start:start + 1024] @ block @ n_c)
    n = n_c.sum()
    chosen = sets_of.sum(axis=1).astype(float)  # (U, K): raters who chose each label
    out: dict[str, Any] = {
        "level": "masi", "dimension": dimension, "value_domain": list(labels), "value_domain_source": source,
        "value_column": "value", "n_units": len(enc.units), "n_raters": len(enc.raters),
        "n_ratings": int(m.sum()), "n_pairable_units": int(pairable.sum()), "excluded": excluded,
        "n_label_sets": n_sets, "n_multi_label_ratings": int(((sets_of.sum(axis=2) > 1) & rated).sum()),
    }
    stats, names = [], []
    reason = None
    if not pairable.any():
        reason = "no clip has two or more ratings"
    elif (n_c > 0).sum() < 2 or expected <= 0:
        reason = "every rating of a clip with two or more ratings has the same label set (no expected disagreement)"
    exact = n_sets <= MASI_EXACT_MAX_SETS
    if reason is None:
        value = 1.0 - (n - 1.0) * float(d_u.sum()) / expected
        if exact:
            counts = _counts_from_codes(enc.codes, n_sets)
            stats.append(_alpha_sums(counts, enc.domain, "masi"))
            if len(counts) * n_sets * n_sets <= _PACKAGE_MAX_ELEMENTS:
                value = krippendorff_alpha(counts, enc.domain, level="masi")
                method = "krippendorff package with the MASI distance (Passonneau 2006)"
            else:
                method = "closed form with the MASI distance (Passonneau 2006; too many values for the package)"
        else:
            # too many distinct label sets for a V x V distance matrix per resample: the expected disagreement
            # is held at its value on all the data and the observed one resampled (Hayes & Krippendorff 2007)
            d_e = expected / (n * (n - 1.0))
            mp = np.where(pairable, m, 0).astype(float)
            stats.append(_UnitSums(np.column_stack([d_u, mp]),
                                   lambda t, d_e=d_e: 1.0 - _safe_div(t[:, 0], t[:, 1]) / d_e))
            method = "closed form with the MASI distance (Passonneau 2006)"
        names.append("krippendorff_alpha")
    # per class: binary counts [not chosen, chosen] per clip
    per_class_counts = {x: np.column_stack([m - chosen[:, k], chosen[:, k]]) for k, x in enumerate(labels)}
    class_reasons = {}
    for x, c in per_class_counts.items():
        class_reasons[x] = _alpha_undefined(c)
        if class_reasons[x] is None:
            stats.append(_alpha_sums(c, [0, 1], "nominal"))
            names.append(f"class:{x}")
    boots = dict(zip(names, _bootstrap(stats, n_boot, seed), strict=True))
    if reason is None:
        out["krippendorff_alpha"] = {**_coefficient(value, boots["krippendorff_alpha"]), "method": method}
    else:
        out["krippendorff_alpha"] = _not_applicable(reason)
    per_class = {}
    for k, x in enumerate(labels):
        if class_reasons[x] is None:
            per_class[x] = _coefficient(krippendorff_alpha(per_class_counts[x], [0, 1], level="nominal"),
                                        boots[f"class:{x}"])
        else:
            per_class[x] = _not_applicable(class_reasons[x])
        per_class[x]["n_chosen"] = int(chosen[:, k].sum())
    out["per_class_alpha"] = per_class
    out["per_class_alpha_measure"] = ("binary nominal α of 'the rater chose this label' (chosen / not chosen), "
                                      "per class")
    sets_note = "categories need single labels; values here are label sets"
    out["fleiss_kappa"] = _not_applicable(sets_note)
    out["gwet_ac1"] = _not_applicable(sets_note)
    out["pairwise_cohen_kappa"] = {"raters": [_py(r) for r in enc.raters], "applicable": False,
                                   "reason": sets_note}
    # each rater: mean MASI similarity (1 - distance) to the other raters' sets on the same clips
    to_others = pair.sum(axis=2) * inv[:, None]  # (U, M): mean distance of each rating to the clip's others
    counted = rated & pairable[:, None]
    n_compared = np.bincount(raters[counted], minlength=len(enc.raters))
    total = np.bincount(raters[counted], weights=to_others[counted], minlength=len(enc.raters))
    out["per_rater"] = [{"rater_id": _py(r), "n_ratings": int(rated_rm[i].sum()), "n_compared": int(n_compared[i]),
                         "agreement_with_consensus": float(1.0 - total[i] / n_compared[i]) if n_compared[i] else None}
                        for i, r in enumerate(enc.raters)]
    out["per_rater_measure"] = "mean MASI similarity (1 − distance) to the other raters' label sets"
    out["bootstrap"] = {"n_boot": int(n_boot), "seed": int(seed), "unit": "clip_id",
                        "method": "percentile 95% interval; clips drawn with replacement, same resamples "
                                  "for α and every per-class α"
                                  + ("" if exact or reason else f"; with more than {MASI_EXACT_MAX_SETS} distinct "
                                     "label sets the expected disagreement of α is held at its value on all the "
                                     "data (Hayes & Krippendorff 2007)")}
    return out


def _alpha_undefined_from(enc: _Encoded, counts: np.ndarray | None) -> str | None:
    if counts is not None:
        return _alpha_undefined(counts)
    rated = enc.codes >= 0
    pairable = rated.sum(axis=0) >= 2
    if not pairable.any():
        return "no clip has two or more ratings"
    if len(np.unique(enc.codes[:, pairable][rated[:, pairable]])) < 2:
        return "every rating of a clip with two or more ratings has the same value (no expected disagreement)"
    return None


def agreement_by_dimension(df: pd.DataFrame, levels: Mapping[str, Level], *,
                           value_domains: Mapping[str, Sequence] | None = None, n_boot: int = 1000,
                           seed: int = 0) -> dict[str, dict]:
    """:func:`agreement_report` for every dimension of the table, each at the level given for it.

    Args:
        df: long table with a ``dimension`` column.
        levels: dimension -> level of measurement, for exactly the dimensions in the table.
        value_domains: dimension -> value domain (optional per dimension).
        n_boot, seed: as for :func:`agreement_report` (the same seed for every dimension).

    Raises:
        ConfigError: a dimension of the table has no level, or a level names a dimension without ratings.

    >>> df = pd.DataFrame({"clip_id": list("aabb") * 2, "rater_id": ["r1", "r2"] * 4,
    ...                    "dimension": ["emotion"] * 4 + ["valence"] * 4,
    ...                    "value": ["joy", "joy", "sad", "joy", "4", "5", "1", "2"]})
    >>> reps = agreement_by_dimension(df, {"emotion": "nominal", "valence": "interval"}, n_boot=0)
    >>> sorted(reps), reps["valence"]["value_domain"]
    (['emotion', 'valence'], [1, 2, 4, 5])
    """
    _check_columns(df)
    if "dimension" not in df.columns:
        raise InputError(Problem("column missing", expected="a 'dimension' column (or call agreement_report)",
                                 field="dimension"))
    present = sorted(pd.unique(df["dimension"].dropna()).tolist(), key=str)
    problems = [f"dimension {d!r} has ratings but no level of measurement"
                + (f" ({h})" if (h := did_you_mean(str(d), map(str, levels))) else "")
                for d in present if d not in levels]
    problems += [f"level given for dimension {d!r}, which has no ratings"
                 + (f" ({h})" if (h := did_you_mean(str(d), map(str, present))) else "")
                 for d in levels if d not in present]
    for d, lvl in levels.items():
        if lvl not in ALL_LEVELS:
            problems.append(f"dimension {d!r}: unknown level {lvl!r}; expected one of {list(ALL_LEVELS)}")
    if problems:
        raise ConfigError("levels of measurement do not match the table:\n  " + "\n  ".join(problems))
    domains = value_domains or {}
    return {d: agreement_report(df, level=levels[d], dimension=d, value_domain=domains.get(d), n_boot=n_boot,
                                seed=seed) for d in present}
