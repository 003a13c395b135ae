"""The co-design space (``codesign=digamma``, docs/codesign.md): hardware designs and one
mapping per unique layer, shared by every optimizer that co-searches.

An individual is a design (:class:`~gamma.mapspace.hwspace.HwGenes`, one row) and a genome
per unique layer (:class:`Population`). Each layer's genome lives in that layer's map space on
its own design's PE array (:meth:`CoSpace.space_of`: the base map space with the design's PE
count and, on S1, the inner cluster pinned to the design's columns). :class:`CoSpace` draws
random individuals and repairs genomes onto their designs; the optimizers (GAMMA's co-search,
random search, the baselines' codec) only breed or decode and leave sampling and repair to it.
Units: PEs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome, MapSpace

#: The fields of a :class:`~gamma.mapspace.space.Genome`, per individual.
GENOME_FIELDS = ("nlev", "par", "order", "tile", "cluster")


@dataclass
class Population:
    """Individuals: a design each (``hw``) and, per unique layer, a genome each."""

    hw: HwGenes
    layers: list[Genome]

    def __len__(self) -> int:
        return len(self.hw)

    def take(self, idx: np.ndarray) -> "Population":
        return Population(self.hw.take(idx), [g.take(idx) for g in self.layers])

    @staticmethod
    def concat(parts: list["Population"]) -> "Population":
        return Population(HwGenes.concat([p.hw for p in parts]),
                          [Genome.concat([p.layers[u] for p in parts])
                           for u in range(len(parts[0].layers))])


@dataclass
class CoSpace:
    """The hardware genes (``hw``), each unique layer's map space on the largest PE array
    (``bases``: the operators' ranges) and whether S1's inner cluster follows the design's
    columns (``pinned``)."""

    hw: HwSpace
    bases: list[MapSpace]
    pinned: bool
    _spaces: dict[tuple[int, int, int | None], MapSpace] = field(default_factory=dict, repr=False)

    def space_of(self, u: int, pes: int, cols: int) -> MapSpace:
        """Unique layer ``u``'s map space on ``pes`` PEs (S1: inner cluster = ``cols``); a
        shallow copy of its base sharing the divisor tables, cached."""
        fixed = int(cols) if self.pinned else None
        key = (u, int(pes), fixed)
        space = self._spaces.get(key)
        if space is None:
            space = copy.copy(self.bases[u])
            space.num_pes, space.fixed_inner_cluster = int(pes), fixed
            self._spaces[key] = space
        return space

    def groups(self, hw: HwGenes) -> list[tuple[int, int, np.ndarray]]:
        """The designs of ``hw`` grouped by map space: (PEs, columns (0 unless pinned), their
        indices), in ascending (PEs, columns)."""
        keys = np.stack([hw.pes, hw.cols if self.pinned else np.zeros(len(hw), np.int64)], 1)
        uniq, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.ravel()
        return [(int(p), int(c), np.flatnonzero(group == g)) for g, (p, c) in enumerate(uniq)]

    def repair(self, pop: Population) -> None:
        """Every layer's genomes repaired on their own design's PE array, in place."""
        for pes, cols, idx in self.groups(pop.hw):
            for u in range(len(self.bases)):
                sub = pop.layers[u].take(idx)
                self.space_of(u, pes, cols).repair(sub)
                put(pop.layers[u], idx, sub)

    def hold_at_start(self, pop: Population) -> None:
        """Every design of ``pop`` becomes the start design (:attr:`HwSpace.start`: the
        platform's array, scaled into the budget), its genomes repaired on it; in place."""
        if len(pop) == 0:
            return
        pop.hw = HwGenes.from_matrix(np.repeat(self.hw.start.matrix(), len(pop), axis=0))
        self.repair(pop)

    def random(self, n: int, rng: np.random.Generator, shallowest: bool = False) -> Population:
        """``n`` random designs whose PE arrays fit the budget (:meth:`HwSpace.random`), each
        with a uniform random genome per unique layer (``shallowest``: at the map space's
        smallest depth, as GAMMA starts) repaired on its PE array."""
        hw = self.hw.random(n, rng)
        pop = Population(hw, [b.random(n, rng, levels=b.min_levels if shallowest else None)
                              for b in self.bases])
        self.repair(pop)
        return pop


def put(g: Genome, idx: np.ndarray, sub: Genome) -> None:
    """Write the individuals ``sub`` into ``g`` at ``idx``, in place."""
    for f in GENOME_FIELDS:
        getattr(g, f)[idx] = getattr(sub, f)
