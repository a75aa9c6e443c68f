"""Ranking with ties: pure functions over (value, CI) entries and paired p-values; no I/O, no rendering.

Rows are ordered by one metric (best first; undefined values last and unranked). Walking down the order,
a row shares its predecessor's rank when the difference between the two is **not significant**:

- by the paired bootstrap test of the two submissions on the same items (two-sided p-value of A − B over
  the same resamples, :func:`casebench.evaluate.compare`) when it is known: tie when ``p >= alpha``;
- otherwise by the 95% intervals: tie when they overlap (a conservative stand-in, used until the paired
  test has been computed; the board marks such ranks).

Otherwise the row's rank is its position (standard competition ranking: 1, 2, 2, 4). Ties chain: when B
ties with A and C with B, all three share A's rank, as clusters of "not significantly different"
systems do in shared-task rankings.

>>> es = [Entry("a", 0.80, 0.75, 0.85), Entry("b", 0.79, 0.74, 0.84), Entry("c", 0.60, 0.55, 0.65),
...       Entry("d", None, None, None)]
>>> [(r.entry.key, r.rank, r.basis) for r in rank(es, higher_is_better=True)]
[('a', 1, None), ('b', 1, 'ci'), ('c', 3, 'ci'), ('d', None, None)]
>>> pv = {("a", "b"): 0.01}
>>> [(r.entry.key, r.rank) for r in rank(es, True, p_value=lambda x, y: pv.get((x, y)))]
[('a', 1), ('b', 2), ('c', 3), ('d', None)]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

ALPHA = 0.05


@dataclass(frozen=True)
class Entry:
    """One row's score on the ranking metric: point value and 95% interval (None where undefined)."""

    key: Hashable
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class Ranked:
    """A ranked row: ``rank`` (None when the value is undefined), whether it ties with the row above, and
    what decided that (``"paired"`` test, ``"ci"`` overlap, or None for the first row)."""

    entry: Entry
    rank: int | None
    tied: bool
    basis: str | None
    p_value: float | None = None


def order(entries: Sequence[Entry], higher_is_better: bool) -> list[Entry]:
    """Best first; undefined values last (stable: equal values keep their given order)."""
    defined = [e for e in entries if e.value is not None]
    undefined = [e for e in entries if e.value is None]
    return sorted(defined, key=lambda e: e.value, reverse=higher_is_better) + undefined


def cis_overlap(a: Entry, b: Entry) -> bool:
    """Whether two 95% intervals overlap (True when either is missing: no evidence of a difference).

    >>> a = Entry("a", .5, .4, .6)
    >>> cis_overlap(a, Entry("b", .3, .2, .45)), cis_overlap(a, Entry("b", .3, .2, .35))
    (True, False)
    """
    if None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return True
    return a.ci_low <= b.ci_high and b.ci_low <= a.ci_high


def tie(a: Entry, b: Entry, p_value: float | None, alpha: float = ALPHA) -> tuple[bool, str]:
    """Whether ``b`` ties with ``a``: (tied, basis). Equal values always tie."""
    if a.value == b.value:
        return True, "equal"
    if p_value is not None:
        return p_value >= alpha, "paired"
    return cis_overlap(a, b), "ci"


def rank(entries: Sequence[Entry], higher_is_better: bool,
         p_value: Callable[[Hashable, Hashable], float | None] = lambda a, b: None,
         alpha: float = ALPHA) -> list[Ranked]:
    """Order ``entries`` and rank them with ties (see the module docstring).

    ``p_value(key_above, key_below)`` gives the paired test's two-sided p-value of a neighbouring pair, or
    None when it is not known (then the CIs decide).
    """
    out: list[Ranked] = []
    prev: Ranked | None = None
    for i, e in enumerate(order(entries, higher_is_better)):
        if e.value is None:
            out.append(Ranked(e, None, False, None))
            continue
        if prev is None:
            r = Ranked(e, 1, False, None)
        else:
            p = p_value(prev.entry.key, e.key)
            tied, basis = tie(prev.entry, e, p, alpha)
            r = Ranked(e, prev.rank if tied else i + 1, tied, basis, p)
        out.append(r)
        prev = r
    return out


def neighbour_pairs(ranked: Sequence[Ranked]) -> list[tuple[Hashable, Hashable]]:
    """The (above, below) key pairs whose paired test decides a tie, in board order."""
    defined = [r for r in ranked if r.rank is not None]
    return [(a.entry.key, b.entry.key) for a, b in zip(defined, defined[1:], strict=False)]
