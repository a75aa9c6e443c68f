"""Bootstrap confidence intervals and paired tests, vectorised over resamples.

Every casebench metric is a function of *summed per-item statistics* (a confusion tensor, per-item
divergences, moment sums), so a bootstrap resample never re-runs a metric over items: it only re-weights
those sums. Two exact shortcuts keep 1000 resamples of a million items cheap:

* **categorical items** fall into a few cells (acoustic x predicted x semantic label). Drawing ``n`` items
  with replacement puts ``Multinomial(n, cell_share)`` items into the cells, so a resample is one
  multinomial draw over the cells, exactly the item bootstrap in distribution;
* **speaker clusters**: a cluster resample draws ``G`` speakers with replacement (``Multinomial(G, 1/G)``
  copies of each), and the resampled sums are ``copies @ per_speaker_sums``.

Continuous per-item statistics without clusters fall back to index resampling, chunked to bound memory.
Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13) over resamples whose statistic is
defined (NaN resamples, e.g. a cluster resample with no conflict items, are left out and counted).

>>> boot = Bootstrap(n_boot=200, seed=0)
>>> codes = np.array([0, 0, 1, 1, 1, 1])          # e.g. 0 = wrong, 1 = right
>>> counts = boot.counts(codes, n_codes=2)         # (200, 2) resampled cell counts
>>> counts.shape, bool((counts.sum(axis=1) == 6).all())
((200, 2), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
MAX_BOOTSTRAP = 100_000  # 100k resamples of the 480-item casebench-mini take ~40 s and 1.3 GB; 10M would need 38 GiB
BOOTSTRAP_UNITS = {"auto": "speaker clusters when the gold has speaker_id, else items",
                   "item": "items (clips), ignoring speakers", "speaker": "speaker clusters"}
_COPIES_CACHE: dict[tuple, np.ndarray] = {}  # cluster resamples by (seed, n_boot, layout)
_MAX_DENSE = 40_000_000  # elements of a (resamples x cells) block before we chunk


@dataclass
class Bootstrap:
    """A seeded resampling plan: ``n_boot`` resamples over items, or over clusters when given.

    Args:
        n_boot: number of resamples (0 disables intervals).
        seed: seed of the random generator; each call draws from its own child stream so that adding a
            metric does not change the intervals of the others.
        clusters: optional int array (n,) of cluster codes (speakers); when given, clusters are resampled.
    """

    n_boot: int = 1000
    seed: int = 0
    clusters: np.ndarray | None = None

    def __post_init__(self):
        from casebench.errors import ConfigError

        if not 0 <= self.n_boot <= MAX_BOOTSTRAP:
            raise ConfigError(f"n_boot {self.n_boot}: expected 0 to {MAX_BOOTSTRAP} bootstrap resamples "
                              "(1000 to 10000 give stable 95% CIs)")
        if self.seed < 0:
            raise ConfigError(f"seed {self.seed}: expected a non-negative integer")
        self._streams = np.random.SeedSequence(self.seed)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self._streams.spawn(1)[0])

    def subset(self, mask: np.ndarray) -> Bootstrap:
        """The same plan restricted to the items in ``mask`` (clusters re-coded densely)."""
        clusters = None
        if self.clusters is not None:
            clusters = dense_codes(self.clusters[mask])
        return Bootstrap(self.n_boot, self.seed, clusters)

    def _cluster_copies(self, dtype=np.float64) -> np.ndarray:
        """(n_boot, G) copies of each cluster. They depend only on the seed and the cluster layout, so every
        metric of a split shares one draw (paired across metrics), and repeated scoring against the same
        gold (a leaderboard) reuses it from a small cache (one entry per dtype asked for)."""
        g = int(self.clusters.max()) + 1 if self.clusters.size else 0
        key = (self.seed, self.n_boot, self.clusters.size, g)  # the draw depends on nothing else
        copies = _COPIES_CACHE.get((*key, np.dtype(dtype).str))
        if copies is not None:
            return copies
        # the same copies in another dtype are exact small integers: converted, not drawn again
        have = next((v for k, v in _COPIES_CACHE.items() if k[:4] == key), None)
        if have is None and g:
            rng = np.random.default_rng([self.seed, g, self.clusters.size])
            # G clusters drawn uniformly with replacement, counted per resample: Multinomial(G, 1/G) copies,
            # ~30x faster than rng.multinomial's one binomial per category for thousands of speakers
            draws = rng.integers(0, g, size=(self.n_boot, g))
            draws += (np.arange(self.n_boot) * g)[:, None]
            have = np.bincount(draws.ravel(), minlength=self.n_boot * g).reshape(self.n_boot, g)
        copies = have.astype(dtype) if have is not None else np.zeros((self.n_boot, 0), dtype)
        if len(_COPIES_CACHE) >= 32:
            _COPIES_CACHE.pop(next(iter(_COPIES_CACHE)))
        _COPIES_CACHE[(*key, np.dtype(dtype).str)] = copies
        return copies

    def counts(self, codes: np.ndarray, n_codes: int) -> np.ndarray:
        """Resampled counts of each cell code: shape (n_boot, n_codes)."""
        out = np.zeros((self.n_boot, n_codes))
        used, counts = self.counts_used(codes)
        out[:, used] = counts
        return out

    def counts_used(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resampled counts of the cells that occur: (the sorted codes used (U,), counts (n_boot, U)).

        Memory is resamples x *occurring* cells (at most the items), never resamples x all cells."""
        rng = self._rng()
        codes = np.asarray(codes, dtype=np.int64)
        n = codes.size
        used, local = occurring(codes)  # only the cells that occur
        if n == 0:
            return used, np.zeros((self.n_boot, 0))
        if self.clusters is None:
            freq = np.bincount(local, minlength=used.size)
            return used, rng.multinomial(n, freq / n, size=self.n_boot).astype(np.float64)
        g = int(self.clusters.max()) + 1
        per_cluster = np.bincount(self.clusters * used.size + local, minlength=g * used.size).reshape(g, used.size)
        # float32 is exact for counts below 2**24 (16.7 million items) and halves the product's cost
        dtype = np.float32 if n < 2**24 else np.float64
        return used, (self._cluster_copies(dtype) @ per_cluster.astype(dtype)).astype(np.float64)

    def sums(self, stats: np.ndarray) -> np.ndarray:
        """Resampled column sums of per-item statistics ``stats`` (n, S): shape (n_boot, S)."""
        rng = self._rng()
        stats = np.asarray(stats, dtype=np.float64)
        n = stats.shape[0]
        if self.clusters is not None:
            g = int(self.clusters.max()) + 1
            # a bincount per column: np.add.at over a million rows is ~20x slower
            per_cluster = np.column_stack([np.bincount(self.clusters, weights=stats[:, j], minlength=g)
                                           for j in range(stats.shape[1])]).reshape(g, stats.shape[1])
            return self._cluster_copies() @ per_cluster
        out = np.empty((self.n_boot, stats.shape[1]))
        step = max(1, _MAX_DENSE // max(n, 1))
        for start in range(0, self.n_boot, step):
            b = min(step, self.n_boot - start)
            idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
            weights = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
            out[start:start + b] = weights @ stats
        return out


def occurring(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct codes, each item's index among them): ``np.unique(codes, return_inverse=True)``, in
    O(n) through a lookup table when the codes are small (cell codes of a count tensor), else by sorting.

    >>> [a.tolist() for a in occurring(np.array([5, 2, 5, 9]))]
    [[2, 5, 9], [1, 0, 1, 2]]
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size == 0 or codes.min() < 0 or codes.max() > max(1 << 22, 4 * codes.size):
        used, local = np.unique(codes, return_inverse=True)
        return used, local.reshape(-1)
    present = np.bincount(codes) > 0
    used = np.flatnonzero(present)
    lut = np.cumsum(present) - 1
    return used, lut[codes]


def dense_codes(codes: np.ndarray) -> np.ndarray:
    """Codes re-numbered 0..G-1 in increasing order (what ``np.unique(..., return_inverse=True)`` gives)."""
    return occurring(codes)[1]


def percentile_ci(samples: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (NaNs ignored); (nan, nan) when none is defined.

    >>> percentile_ci(np.arange(101.0))
    (2.5, 97.5)
    """
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]  # resamples where the statistic is undefined carry no information
    if s.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(s, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def paired_p_value(diffs: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a paired difference: twice the smaller tail share at zero.

    The share of resamples on the far side of zero from the observed direction, counted as (1 + r) / (B + 1)
    so that B resamples can never give p = 0 (Davison & Hinkley 1997, eq. 4.11; Phipson & Smyth 2010,
    "permutation p-values should never be zero"), doubled (Efron & Tibshirani 1993, sec. 16.4 style achieved
    significance level) and clipped to 1. The smallest p-value B resamples can give is 2 / (B + 1).

    >>> paired_p_value(np.array([0.1, 0.2, 0.3, -0.1]))
    0.8
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    tail = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(min(1.0, 2 * (1 + tail) / (d.size + 1)))


def mcnemar(a_correct: np.ndarray, b_correct: np.ndarray) -> dict:
    """McNemar's exact test on paired correctness (binomial test on the discordant pairs).

    Returns the discordant counts ``b01`` (A right, B wrong) and ``b10`` (A wrong, B right) and the
    two-sided exact p-value (McNemar 1947; exact form as in Fagerland et al. 2013).

    >>> mcnemar(np.array([1, 1, 1, 0], bool), np.array([0, 0, 1, 0], bool))["p_value"]
    0.5
    """
    from scipy.stats import binomtest

    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if n01 + n10 == 0 else float(binomtest(n01, n01 + n10, 0.5).pvalue)
    return {"a_only_correct": n01, "b_only_correct": n10, "p_value": p}
