"""The items behind each board, and what a hidden phase may tell a submitter: pure functions, no database.

**Phases over disjoint items.** A board scores the gold rows of its phase: by default those whose gold column
``split`` equals the phase name (``dev``/``test``) when the gold has that column, else every row; a board's
``items`` setting picks another rule (``all``, or ``COLUMN=VALUE``). :func:`check_disjoint` refuses a
configuration where a public board and a hidden board of the same gold share an item (by item id, and by the
fingerprint of the scored rows: the same gold table scored whole twice is caught even before ids are compared).

**Public/private partition** (Kaggle style). A hidden phase's items are split once, by a keyed hash of the
speaker (of the item id when the gold has no speakers, so a speaker's items stay on one side), into a
*public* part that feeds the submitter's feedback and a *private* part that the final ranking uses
(:func:`partition`). The key is random per board and stays in the database: nobody can tell which side an
item is on.

**Feedback on the public part.** Either the headline metrics rounded to what their 95% interval supports
(:func:`round_entry`: the decade of the interval's half-width), or the **Ladder** (Blum & Hardt 2015, "The
Ladder: A Reliable Leaderboard for Machine Learning Competitions", ICML, Algorithm 1): the submitter sees
their best score so far, which moves only when a submission beats it by more than a step, and then to the new
score rounded to that step. With ``step = 0`` the step is the standard error of the paired per-item loss
difference to the best submission (``std(l_t - l_best) / sqrt(n)``, the paper's parameter-free idea), so a
change of one item, which moves the mean loss by exactly one standard error, never shows.

>>> import numpy as np
>>> best = np.array([1., 1, 0, 0, 1, 0, 0, 0])        # per-item 0/1 errors of the best submission so far
>>> one_flip = best.copy(); one_flip[0] = 0            # one more item right
>>> ladder_update(best, one_flip, step=0).released
False
>>> two = one_flip.copy(); two[1] = 0
>>> r = ladder_update(best, two, step=0); r.released, round(r.loss, 3)
(True, 0.125)
>>> round_entry({"value": 0.61234, "ci_low": 0.55, "ci_high": 0.67, "n": 240})
{'value': 0.61, 'ci_low': 0.55, 'ci_high': 0.67, 'step': 0.01}
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from casebench.benchmarks import Benchmark, Gold
from casebench.errors import ConfigError

PARTS = ("phase", "public", "private")
SPLIT_COLUMN = "split"


# -- which gold rows a board scores ---------------------------------------------------------------------


def phase_mask(gold: Gold, items: str, phase: str) -> np.ndarray:
    """Boolean mask of the gold rows a board scores (see the module docstring for ``items``).

    >>> from casebench.benchmarks import get_benchmark
    >>> gold = get_benchmark("casebench-mini").load_gold()
    >>> [int(phase_mask(gold, rule, phase).sum()) for rule, phase in (("", "dev"), ("", "test"), ("all", "test"))]
    [240, 240, 480]
    """
    rule = (items or "").strip()
    if rule == "all" or (not rule and SPLIT_COLUMN not in gold.columns):
        return np.ones(len(gold), dtype=bool)
    if rule and "=" not in rule:
        raise ConfigError(f"items = {rule!r}: expected 'all' or COLUMN=VALUE (e.g. split=test)")
    column, value = rule.split("=", 1) if rule else (SPLIT_COLUMN, phase)
    column, value = column.strip(), value.strip()
    col = gold.columns.get(column)
    if col is None:
        raise ConfigError(f"items = '{column}={value}': the gold table {gold.source} has no column {column!r}; "
                          f"it has {sorted(gold.columns)}")
    mask = col.astype(str) == value
    if not mask.any():
        values = sorted({str(v) for v in col})[:20]
        raise ConfigError(f"items = '{column}={value}': no row of the gold table {gold.source} has {column} == "
                          f"{value!r}; its values are {values}" + (
                              f". A {phase} board scores the rows whose '{SPLIT_COLUMN}' is {phase!r}: pick another "
                              "phase, or set the board's items (items = 'all' scores every row)" if not rule else ""))
    return mask


def subset_gold(gold: Gold, mask: np.ndarray, tag: str) -> Gold:
    """The gold rows where ``mask`` holds, every per-item array sliced alike (``tag`` names the subset in its
    ``source``); the fingerprint hashes the source table's fingerprint and the kept ids, so two subsets share
    a fingerprint exactly when they hold the same rows of the same table."""
    n = len(gold)
    values = {}
    for f in dataclasses.fields(gold):
        v = getattr(gold, f.name)
        if isinstance(v, np.ndarray) and v.shape[:1] == (n,):
            v = v[mask]
        elif isinstance(v, dict):
            v = {k: (a[mask] if isinstance(a, np.ndarray) and a.shape[:1] == (n,) else a) for k, a in v.items()}
        values[f.name] = v
    values["source"] = f"{gold.source} [{tag}]"
    h = hashlib.sha256(f"{gold.fingerprint}|".encode())
    for x in gold.ids[mask].tolist():
        h.update(str(x).encode() + b"\n")
    values["fingerprint"] = "sha256:" + h.hexdigest()
    return Gold(**values)


def partition(gold: Gold, fraction: float, key: str) -> np.ndarray:
    """Boolean mask of the *public* items: a keyed hash (HMAC-SHA256 with ``key``) of each item's speaker (of
    its id where the speaker is unknown) below ``fraction``. Same key, same split; without the key the split
    cannot be told.

    >>> from casebench.benchmarks import get_benchmark
    >>> gold = get_benchmark("casebench-mini").load_gold()
    >>> pub = partition(gold, 0.5, "k")
    >>> bool(0.3 < pub.mean() < 0.7), all(len(set(pub[gold.speaker == s])) == 1 for s in set(gold.speaker))
    (True, True)
    """
    if not 0 < fraction < 1:
        return np.ones(len(gold), dtype=bool) if fraction >= 1 else np.zeros(len(gold), dtype=bool)
    units = gold.speaker if gold.speaker is not None else gold.ids
    out = np.zeros(len(gold), dtype=bool)
    cache: dict[str, bool] = {}
    for i, (unit, item) in enumerate(zip(units.tolist(), gold.ids.tolist(), strict=True)):
        u = f"speaker:{unit}" if unit not in (None, "") and gold.speaker is not None else f"item:{item}"
        if u not in cache:
            d = hmac.new(key.encode(), u.encode(), hashlib.sha256).digest()
            cache[u] = int.from_bytes(d[:8], "big") / 2 ** 64 < fraction
        out[i] = cache[u]
    return out


@dataclass(frozen=True)
class BoardItems:
    """Everything a scoring process needs to rebuild a board's item sets (small, picklable).

    Attributes:
        benchmark: built-in benchmark name or spec path.
        phase: ``dev`` or ``test``.
        items: the board's ``items`` rule ('' = by the gold's ``split`` column).
        public_fraction: share of a hidden phase's items in the public part (0 = no partition).
        key: the partition key.
    """

    benchmark: str
    phase: str
    items: str = ""
    public_fraction: float = 0.0
    key: str = ""

    def spec(self) -> Benchmark:
        return _spec(self.benchmark)

    def masks(self) -> dict[str, np.ndarray]:
        """``{"phase", "public", "private"}`` masks over the benchmark's full gold (public/private empty
        without a partition)."""
        return _masks(self)

    def benchmark_of(self, part: str = "phase") -> Benchmark:
        """The spec restricted to one part of the board's items (a :class:`PhaseBenchmark`)."""
        if part not in PARTS:
            raise ValueError(f"part {part!r}; expected one of {PARTS}")
        spec = self.spec()
        ids = tuple(spec.load_gold().ids[self.masks()[part]].tolist())
        base = {f.name: getattr(spec, f.name) for f in dataclasses.fields(Benchmark)}
        return PhaseBenchmark(**base, item_ids=ids, part=f"{self.phase}:{part}")

    @property
    def partitioned(self) -> bool:
        return 0 < self.public_fraction < 1


@functools.cache
def _spec(ref: str) -> Benchmark:
    from casebench.benchmarks import get_benchmark

    return get_benchmark(ref)


@functools.lru_cache(maxsize=32)
def _masks(b: BoardItems) -> dict[str, np.ndarray]:
    gold = b.spec().load_gold()
    phase = phase_mask(gold, b.items, b.phase)
    if b.partitioned:
        pub = partition(gold, b.public_fraction, b.key) & phase
        return {"phase": phase, "public": pub, "private": phase & ~pub}
    return {"phase": phase, "public": np.zeros(len(gold), bool), "private": phase}


@dataclass(frozen=True)
class PhaseBenchmark(Benchmark):
    """A benchmark restricted to some of its gold rows: :meth:`load_gold` returns only ``item_ids`` (so
    :func:`casebench.evaluate.evaluate` scores just them, with the same splits, tasks and bootstrap)."""

    item_ids: tuple[str, ...] = ()
    part: str = ""

    def load_gold(self) -> Gold:
        return _phase_gold(self.gold_path, self.taxonomy.name, self.part, self.item_ids)


@functools.lru_cache(maxsize=16)
def _phase_gold(path, taxonomy: str, part: str, ids: tuple[str, ...]) -> Gold:
    from casebench.benchmarks import load_gold

    gold = load_gold(path, taxonomy)
    return subset_gold(gold, np.isin(gold.ids, np.asarray(ids, dtype=object)), part)


def check_disjoint(boards: Sequence[tuple[str, bool, Gold]]) -> None:
    """Refuse boards where a public one (``hidden`` False) and a hidden one share scored items.

    Args:
        boards: (board key, hidden, the gold rows it scores) per board.

    Raises:
        ConfigError: naming both boards, how many items they share and a few of their ids.
    """
    for key_a, hidden_a, gold_a in boards:
        if hidden_a:
            continue
        ids_a = set(gold_a.ids.tolist())
        for key_b, hidden_b, gold_b in boards:
            if not hidden_b:
                continue
            same = gold_a.fingerprint == gold_b.fingerprint
            shared = sorted(ids_a.intersection(gold_b.ids.tolist()))
            if same or shared:
                what = "the same gold rows (same fingerprint)" if same else f"{len(shared)} items"
                raise ConfigError(
                    f"boards {key_a!r} (public) and {key_b!r} (hidden) score {what}, e.g. ids {shared[:5]}: the "
                    "public board would show scores on the hidden board's items. Give each phase its own items: a "
                    "'split' column in the gold with dev/test values, or the board setting items = 'COLUMN=VALUE'")


# -- uploads: keep the lines of one part -----------------------------------------------------------------


def filter_lines(src: str | Path, dst: str | Path, keep: Iterable[str]) -> int:
    """Copy the JSON Lines of ``src`` (plain or gzip) whose ``id`` is in ``keep`` to ``dst`` (plain); returns
    the number of lines written. Lines that are not objects with a string ``id`` are copied (the parser then
    names their problem)."""
    keep = set(keep)
    n = 0
    opener = gzip.open if _is_gzip(src) else open
    with opener(src, "rb") as f, open(dst, "wb") as out:
        for line in f:
            try:
                rid = orjson.loads(line).get("id")
            except (orjson.JSONDecodeError, AttributeError):
                rid = None
            if rid is None or not isinstance(rid, str) or rid in keep:
                out.write(line if line.endswith(b"\n") else line + b"\n")
                n += 1
    return n


def _is_gzip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


# -- what a hidden phase shows --------------------------------------------------------------------------


def ci_step(entry: dict) -> float | None:
    """The rounding step an entry's 95% interval supports: the decade of its half-width (half-width 0.043 →
    0.01; 0.004 → 0.001), at most 0.1; None when the entry has no interval."""
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    half = (hi - lo) / 2
    if half <= 0:
        return None
    return min(0.1, 10.0 ** math.floor(math.log10(half)))


def round_to(x: float | None, step: float) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    decimals = max(0, -int(math.floor(math.log10(step) + 1e-9)))
    return round(round(x / step) * step, decimals)


def round_entry(entry: dict) -> dict:
    """An entry as a hidden phase shows it: value and interval rounded to :func:`ci_step` (two decimals when
    there is no interval); no item count, no bootstrap detail."""
    step = ci_step(entry) or 0.01
    return {"value": round_to(entry.get("value"), step), "ci_low": round_to(entry.get("ci_low"), step),
            "ci_high": round_to(entry.get("ci_high"), step), "step": step}


@dataclass(frozen=True)
class LadderResult:
    """One Ladder round: whether the board moved (``released``), the loss it shows now and the step used."""

    released: bool
    loss: float
    step: float


def ladder_update(best: np.ndarray | None, losses: np.ndarray, step: float = 0.0,
                  best_shown: float | None = None) -> LadderResult:
    """One round of the Ladder over per-item losses (lower is better).

    Blum & Hardt (2015), Algorithm 1: release ``[R(f_t)]_η`` when ``R(f_t) < R_best - η``, else keep showing
    ``R_best``. ``step > 0`` is a fixed η; ``step = 0`` uses ``η = std(l_t - l_best) / sqrt(n)`` (the standard
    error of the paired difference) and rounds a release to ``1/n``. The first round always releases.
    """
    n = len(losses)
    mean = float(np.mean(losses)) if n else 0.0
    if best is None:
        eta = step if step > 0 else 1.0 / max(n, 1)
        return LadderResult(True, _round_loss(mean, eta), eta)
    if step > 0:  # Algorithm 1: against the shown (rounded) best
        shown = best_shown if best_shown is not None else _round_loss(float(np.mean(best)), step)
        if mean < shown - step:
            return LadderResult(True, _round_loss(mean, step), step)
        return LadderResult(False, shown, step)
    eta = float(np.std(losses - best, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    shown = best_shown if best_shown is not None else _round_loss(float(np.mean(best)), 1.0 / n)
    if mean < float(np.mean(best)) - eta - 1e-12:
        return LadderResult(True, _round_loss(mean, 1.0 / n), eta)
    return LadderResult(False, shown, eta)


def _round_loss(x: float, eta: float) -> float:
    return round(round(x / eta) * eta, 12) if eta > 0 else x


def item_losses(kind: str, gold: Gold, arrays: dict) -> np.ndarray:
    """Per-item losses of a task on the scored items (where the gold is known): 0/1 error (categorical),
    Jensen-Shannon divergence in bits (distribution), mean squared error over the dimensions (dimensional)."""
    if kind == "categorical":
        known = gold.acoustic >= 0
        return (arrays["label"][known] != gold.acoustic[known]).astype(float)
    if kind == "distribution":
        known = np.isfinite(gold.distribution).all(1)
        p, q = gold.distribution[known], np.clip(arrays["dist"][known], 0, None)
        q = q / q.sum(1, keepdims=True)
        m = (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = lambda a: np.where(a > 0, a * np.log2(a / m), 0.0).sum(1)  # noqa: E731
            return (kl(p) + kl(q)) / 2
    dims = list(gold.vad)
    g = np.column_stack([gold.vad[d] for d in dims])
    pr = np.column_stack([arrays["vad"][d] for d in dims])
    known = np.isfinite(g).any(1)
    return np.nanmean((g[known] - pr[known]) ** 2, axis=1)


LADDER_SCORE = {"categorical": ("accuracy", True), "distribution": ("js", False), "dimensional": ("mse", False)}


def loss_to_score(kind: str, loss: float) -> float:
    """What the Ladder shows: accuracy (1 - error) for the categorical task, the loss itself otherwise."""
    return 1.0 - loss if LADDER_SCORE[kind][1] else loss
