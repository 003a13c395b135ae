"""GAMMA's selection, as an object: which individuals survive unchanged (elites) and which form
the parent pool, and how mating pairs are drawn from the pool.

A selection is built from ``optimizer.selection`` (``name`` plus its settings, see
:data:`SELECTIONS`). Truncation selection is GAMMA's (and the default); ``nsga2`` ranks cost
vectors by non-dominated sorting and crowding distance (``objective=pareto``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from gamma.mapspace import Genome
from gamma.optimizers.settings import SettingError, check_keys, check_real
from gamma.pareto import nsga2_order


class Selection(ABC):
    """Picks elites and parents of the next generation from a scored population."""

    name: ClassVar[str]
    #: Whether ``select`` ranks a cost vector per individual (``objective=pareto``).
    ranks_vectors: ClassVar[bool] = False

    @abstractmethod
    def select(self, cost: np.ndarray, second: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
        """(elite indices, parent indices) into the scored population; both empty when no
        individual is feasible (``cost`` +inf everywhere). ``second`` breaks ties in ``cost``;
        ``population`` is the GA's population size."""

    @staticmethod
    def mate(parents: Genome, n: int, rng: np.random.Generator) -> tuple[Genome, Genome]:
        """``ceil(n / 2)`` mating pairs (copies), each parent drawn uniformly with replacement."""
        pairs = (n + 1) // 2
        dad = rng.integers(0, len(parents), pairs)
        mom = rng.integers(0, len(parents), pairs)
        return parents.take(dad), parents.take(mom)


@dataclass
class Truncation(Selection):
    """Rank the feasible individuals by (cost, tie-break): the best ``elite_ratio`` of the
    population survive unchanged (0: none) and the best ``parents_ratio`` (at least 2) are the
    parent pool. Both are cut to the feasible individuals."""

    name: ClassVar[str] = "truncation"
    elite_ratio: float = 0.05
    parents_ratio: float = 0.4

    def __post_init__(self) -> None:
        check_real("selection.elite_ratio", self.elite_ratio, 0.0, 1.0)
        check_real("selection.parents_ratio", self.parents_ratio, 0.0, 1.0, low_open=True)
        if self.elite_ratio > self.parents_ratio:
            raise SettingError("selection.elite_ratio", self.elite_ratio,
                               f"must not exceed selection.parents_ratio ({self.parents_ratio}): "
                               f"elites are the best of the parents")

    def counts(self, population: int) -> tuple[int, int]:
        """(elites, parents) for a population of ``population``."""
        return int(self.elite_ratio * population), max(2, int(self.parents_ratio * population))

    def select(self, cost: np.ndarray, second: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
        rank = np.lexsort((second, cost))
        n_feasible = int(np.isfinite(cost).sum())
        n_elites, n_parents = self.counts(population)
        return rank[: min(n_elites, n_feasible)], rank[: min(n_parents, n_feasible)]


@dataclass
class Nsga2(Truncation):
    """NSGA-II's ranking (Deb et al. 2002) for cost vectors (``objective=pareto``): the feasible
    individuals sorted by non-dominated front, then by decreasing crowding distance within the
    front (each metric's extreme points first); the first ``elite_ratio`` of the population
    survive unchanged and the first ``parents_ratio`` (at least 2) are the parent pool, as in
    truncation. ``cost`` may be a vector per individual (n, metrics) or a scalar (n,); ``second``
    is not used (the other metrics are in ``cost``)."""

    name: ClassVar[str] = "nsga2"
    ranks_vectors: ClassVar[bool] = True

    def select(self, cost: np.ndarray, second: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
        rank = nsga2_order(cost)
        n_elites, n_parents = self.counts(population)
        return rank[:n_elites], rank[:n_parents]


#: Selections by ``optimizer.selection.name``.
SELECTIONS: dict[str, type[Selection]] = {"truncation": Truncation, "nsga2": Nsga2}


def build_selection(settings: dict[str, Any] | None) -> Selection:
    """The selection of ``optimizer.selection`` (``name`` plus its settings; default truncation)."""
    if settings is not None and not isinstance(settings, dict):
        raise SettingError("selection", settings, "must be a mapping, e.g. {name: truncation, "
                           "elite_ratio: 0.05, parents_ratio: 0.4}")
    params = dict(settings or {})
    name = params.pop("name", "truncation")
    if name not in SELECTIONS:
        raise SettingError("selection.name", name, f"unknown selection; choose from {', '.join(SELECTIONS)}")
    cls = SELECTIONS[name]
    check_keys("selection", params, ["name"] + [f.name for f in fields(cls)])
    return cls(**params)
