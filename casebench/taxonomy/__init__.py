"""Taxonomies: ordered emotion label lists with explicit many-to-one mappings, shipped as YAML.

A label set is data, not code: each ``<name>.yaml`` in this folder holds ``name``, ``labels`` (the order
that every distribution is stored in) and ``mappings`` to other taxonomies. A mapping value of ``null``
says "no counterpart": mapping such a label is an error unless the caller asks to drop it, and then the
dropped labels are reported back, never silently lost.

>>> tax = get_taxonomy("ekman7")
>>> tax.labels[:3]
('angry', 'disgust', 'fear')
>>> get_taxonomy("ravdess8").map_labels(["calm", "fearful"], "ekman7").labels
['neutral', 'fear']
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import yaml

from casebench.errors import ConfigError, InputError, Problem, did_you_mean, unknown_name


@dataclass(frozen=True)
class Mapped:
    """Result of mapping labels: the mapped labels (None where dropped) and what was dropped."""

    labels: list[str | None]
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """An ordered list of emotion labels plus mappings to other taxonomies."""

    name: str
    labels: tuple[str, ...]
    mappings: dict[str, dict[str, str | None]] = field(default_factory=dict)
    description: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Label -> position in taxonomy order."""
        return {label: i for i, label in enumerate(self.labels)}

    def check_label(self, label: str, **where) -> Problem | None:
        """A Problem (with a did-you-mean) when ``label`` is not in the taxonomy, else None."""
        if label in self.index:
            return None
        return Problem(f"unknown label {label!r}", expected=f"one of {self.name}: {list(self.labels)}",
                       hint=did_you_mean(label, self.labels), **where)

    def encode(self, labels: Sequence[str], **where) -> np.ndarray:
        """Labels -> int indices in taxonomy order; raises InputError listing every unknown label."""
        idx = np.fromiter((self.index.get(x, -1) for x in labels), dtype=np.int64, count=len(labels))
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            raise InputError([self.check_label(labels[i], **where) for i in bad[:50]],
                             summary=f"{bad.size} label(s) not in taxonomy {self.name}")
        return idx

    def mapping_to(self, target: str) -> dict[str, str | None]:
        """The explicit mapping from this taxonomy into ``target`` (identity for the same name).

        Mappings are looked up directly, then composed through ``ekman7`` when both halves exist.
        """
        if target == self.name:
            return {x: x for x in self.labels}
        if target in self.mappings:
            return self.mappings[target]
        hub = "ekman7"
        if self.name != hub and hub in self.mappings:
            second = get_taxonomy(hub).mappings.get(target)
            if second is not None:
                first = self.mappings[hub]
                return {x: (None if first[x] is None else second[first[x]]) for x in self.labels}
        raise ConfigError(f"no mapping from taxonomy {self.name!r} to {target!r}; "
                          f"{self.name} maps to {sorted(self.mappings)}")

    def map_labels(self, labels: Sequence[str], target: str, drop_unmapped: bool = False) -> Mapped:
        """Map labels into ``target``. Labels whose mapping is null raise unless ``drop_unmapped``."""
        table = self.mapping_to(target)
        problems, out, dropped = [], [], {}
        for i, x in enumerate(labels):
            if x not in table:
                problems.append(self.check_label(x, line=i + 1) or
                                Problem(f"label {x!r} has no entry in the {self.name}->{target} mapping"))
                out.append(None)
            elif table[x] is None:
                dropped[x] = dropped.get(x, 0) + 1
                out.append(None)
            else:
                out.append(table[x])
        if dropped and not drop_unmapped:
            problems += [Problem(f"label {k!r} ({n} item(s)) has no counterpart in {target}",
                                 expected=f"a label with a counterpart in {target} (add one to the mapping)")
                         for k, n in dropped.items()]
        if problems:
            raise InputError(problems, summary=f"cannot map {self.name} labels to {target}")
        return Mapped(out, dropped)

    def map_distribution(self, dist: np.ndarray, target: str, drop_unmapped: bool = False) -> np.ndarray:
        """Sum a (n, K) distribution into ``target``'s classes; renormalise if mass was dropped."""
        tgt = get_taxonomy(target)
        table = self.mapping_to(target)
        lost = [x for x in self.labels if table[x] is None]
        if lost and not drop_unmapped:
            raise InputError(Problem(f"labels {lost} have no counterpart in {target}",
                                     expected=f"labels with a counterpart in {target} (add them to the mapping)"))
        m = np.zeros((len(self.labels), len(tgt.labels)))
        for i, x in enumerate(self.labels):
            if table[x] is not None:
                m[i, tgt.index[table[x]]] = 1.0
        out = np.asarray(dist, dtype=float) @ m
        s = out.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(s > 0, out / s, np.nan)


@functools.cache
def _files() -> dict[str, str]:
    root = resources.files(__name__)
    return {p.name[:-5]: p.read_text("utf-8") for p in root.iterdir() if p.name.endswith(".yaml")}


def list_taxonomies() -> list[str]:
    """Names of the shipped taxonomies."""
    return sorted(_files())


@functools.cache
def get_taxonomy(name: str) -> Taxonomy:
    """Load a shipped taxonomy by name (``ekman7``, ``msp8``, ...); ConfigError for an unknown name."""
    files = _files()
    if name not in files:
        raise unknown_name("taxonomy", name, files)
    doc = yaml.safe_load(files[name])
    labels = tuple(doc["labels"])
    if len(set(labels)) != len(labels) or any(x != x.lower() for x in labels):
        raise ConfigError(f"taxonomy {name}: labels must be unique and lower-case")
    mappings = {k: dict(v) for k, v in (doc.get("mappings") or {}).items()}
    for target, table in mappings.items():
        if set(table) != set(labels):
            raise ConfigError(f"taxonomy {name}: mapping to {target} must list every label exactly once; "
                              f"missing {sorted(set(labels) - set(table))}, extra {sorted(set(table) - set(labels))}")
    return Taxonomy(name=name, labels=labels, mappings=mappings, description=doc.get("description", ""))


def as_taxonomy(tax: str | Taxonomy) -> Taxonomy:
    """Accept a taxonomy or its name."""
    return tax if isinstance(tax, Taxonomy) else get_taxonomy(tax)
