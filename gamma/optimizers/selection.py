"""GAMMA's selection, as an object: which individuals survive unchanged (elites) and which form
the parent pool, and how mating pairs are drawn from the pool.

A selection is built from ``optimizer.selection`` (``name`` plus its settings, see
:data:`SELECTIONS`). Truncation selection is GAMMA's (and the default); ``nsga2`` ranks cost
vectors by non-dominated sorting and crowding distance (``objective=pareto``) and breeds a share
of the children from each metric's best.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from gamma.mapspace.space import Genome
from gamma.optimizers.settings import SettingError, check_keys, check_real
from gamma.objectives.nondominated import nsga2_order


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
    """NSGA-II's ranking (Deb et al. 2002) for cost vectors (``objective=pareto``), with each
    metric's extreme kept in focus. The feasible individuals are sorted by non-dominated front,
    then by decreasing crowding distance within the front (each metric's extreme points first):
    the first ``elite_ratio`` of the population survive unchanged and the first ``parents_ratio``
    (at least 2) form the front's parent block, as in truncation. Per metric, the best
    ``extreme_parents_ratio`` of the population by that metric (ties by the other metrics) form
    that metric's parent block. Mating pairs are drawn within one block, each block getting a
    share of the pairs equal to its share of the pool, so a share of the children is bred from each extreme's neighbourhood as a
    single-objective run would breed them (ResNet-18 layer 2, S2 edge, 10,000 samples, seeds 0-39:
    the front's ends were within 5 % of the latency and energy runs on 37 seeds, against 32 with
    ``extreme_parents_ratio: 0``, the plain ranking; over all of ResNet-18, seeds 0-5, the energy
    end was within 5 % of the energy run in 49 of 66 searches with either; README, Pareto search).
    ``cost`` may be a vector per individual (n, metrics) or a scalar (n,: the front block alone);
    ``second`` is not used (the other metrics are in ``cost``)."""

    name: ClassVar[str] = "nsga2"
    ranks_vectors: ClassVar[bool] = True
    extreme_parents_ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("selection.extreme_parents_ratio", self.extreme_parents_ratio, 0.0, 1.0)
        self._blocks: list[int] = []  # parent block sizes of the last ``select``, in pool order

    def select(self, cost: np.ndarray, second: np.ndarray, population: int) -> tuple[np.ndarray, np.ndarray]:
        rank = nsga2_order(cost)
        n_elites, n_parents = self.counts(population)
        blocks = [rank[:n_parents]]
        if cost.ndim == 2:
            n_extreme = int(self.extreme_parents_ratio * population)
            for m in range(cost.shape[1]):
                others = [cost[:, j] for j in reversed(range(cost.shape[1])) if j != m]
                best = np.lexsort(others + [cost[:, m]])[: len(rank)]  # feasible rows only
                blocks.append(best[:n_extreme])
        self._blocks = [len(b) for b in blocks if len(b)]
        return rank[:n_elites], np.concatenate(blocks)

    def mate(self, parents: Genome, n: int, rng: np.random.Generator) -> tuple[Genome, Genome]:
        """``ceil(n / 2)`` mating pairs (copies): a block per pair (drawn in proportion to the
        blocks' sizes), then both parents uniformly within it. Parents that are not the last
        ``select``'s pool (a random restart) are drawn as in truncation."""
        if len(self._blocks) < 2 or sum(self._blocks) != len(parents):
            return Selection.mate(parents, n, rng)
        sizes = np.array(self._blocks)
        pairs = (n + 1) // 2
        block = rng.choice(len(sizes), pairs, p=sizes / sizes.sum())
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])[block]
        dad = start + rng.integers(0, sizes[block])
        mom = start + rng.integers(0, sizes[block])
        return parents.take(dad), parents.take(mom)


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
