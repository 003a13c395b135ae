"""GAMMA's co-search of hardware and mappings (``codesign=digamma``; DiGamma, Kao et al., DATE
2022), built on GAMMA's selection and operators (:class:`~gamma.optimizers.gamma.Gamma`).

An individual is a hardware design and a genome per unique layer
(:class:`~gamma.objectives.codesign.CoDesignObjective`). One generation, as GAMMA's:
truncation selection on (infeasible layers, model cost) picks elites and parents; mating pairs
are drawn from the parents; then

- hardware crossover: per pair, with probability ``hw_crossover``, the two swap one hardware gene
  (rows or cols; on S2 the PE count);
- layer swap: per pair and unique layer, with probability ``layer_swap``, the two swap that
  layer's whole mapping (good mappings of one layer travel between designs);
- GAMMA's crossover on every layer's genomes (tiles swapped within a pair);
- hardware mutation: per child, with probability ``hw_mutation``, one hardware gene is scaled by
  2^N(0, ``hw_step``) within its bounds;
- GAMMA's mutation, structure, reorder, growth and aging on every layer's genomes;
- repair of every layer's genomes on the child's own hardware (cluster sizes within its PEs; S1:
  the inner cluster pinned to its columns), so a mapping follows its design's PE array.

The children are evaluated in one call of the objective, which groups them by PE count and
sizes each design's buffers to what its mappings need. A population whose every PE array is over
the area budget restarts from random individuals, as GAMMA does. docs/codesign.md ("Operators") gives the reasons.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from gamma.errors import GammaError
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome, MapSpace
from gamma.objectives.codesign import CoDesignObjective
from gamma.optimizers.base import ProgressCallback
from gamma.optimizers.gamma import Gamma
from gamma.optimizers.selection import Truncation

#: The settings of ``codesign.operators`` and what they set.
HW_OPERATORS = ("hw_crossover", "layer_swap", "hw_mutation", "hw_step")


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


class CoGamma:
    """GAMMA over designs and mappings. ``gamma``: the GA whose population, selection and
    operators are used (``optimizer.*``); the hardware operators' rates from
    ``codesign.operators``."""

    def __init__(self, gamma: Gamma, operators: dict[str, Any]) -> None:
        if not isinstance(gamma.selection, Truncation) or gamma.selection.ranks_vectors:
            raise GammaError("codesign=digamma ranks one cost: use optimizer.selection.name=truncation")
        if not isinstance(operators, dict):
            raise GammaError(f"codesign.operators must be a mapping of {', '.join(HW_OPERATORS)}")
        self.gamma = gamma
        self.hw_crossover = _setting(operators, "hw_crossover", 1.0)
        self.layer_swap = _setting(operators, "layer_swap", 1.0)
        self.hw_mutation = _setting(operators, "hw_mutation", 1.0)
        self.hw_step = _setting(operators, "hw_step", 64.0)
        self._spaces: dict[tuple[int, int, int | None], MapSpace] = {}

    # --- map spaces per design ----------------------------------------------------------------
    def space_of(self, u: int, base: MapSpace, pes: int, cols: int, pinned: bool) -> MapSpace:
        """Unique layer ``u``'s map space on ``pes`` PEs (S1, ``pinned``: inner cluster = ``cols``);
        a shallow copy of ``base`` sharing its divisor tables."""
        fixed = int(cols) if pinned else None
        key = (u, int(pes), fixed)
        space = self._spaces.get(key)
        if space is None:
            space = copy.copy(base)
            space.num_pes, space.fixed_inner_cluster = int(pes), fixed
            self._spaces[key] = space
        return space

    def repair(self, pop: Population, bases: list[MapSpace], pinned: bool) -> None:
        """Every layer's genomes repaired on their own design's PE array, in place."""
        keys = np.stack([pop.hw.pes, pop.hw.cols if pinned else np.zeros(len(pop), np.int64)], 1)
        uniq, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.ravel()
        for g, (pes, cols) in enumerate(uniq):
            idx = np.flatnonzero(group == g)
            for u, base in enumerate(bases):
                sub = pop.layers[u].take(idx)
                self.space_of(u, base, pes, cols, pinned).repair(sub)
                _put(pop.layers[u], idx, sub)

    # --- the search ---------------------------------------------------------------------------
    def optimize(self, objective: CoDesignObjective, bases: list[MapSpace], pinned: bool,
                 rng: np.random.Generator, on_progress: ProgressCallback | None = None) -> None:
        """Spend the objective's budget. ``bases``: each unique layer's map space on the largest
        PE count (the operators' ranges); ``pinned``: S1's inner cluster follows the columns."""
        size, sel = self.gamma.population, self.gamma.selection
        pop = self.random(min(size, objective.remaining), objective.hwspace, bases, pinned, rng)
        rank, cost = objective.evaluate(pop.hw, pop.layers)
        _report(objective, on_progress)
        while objective.remaining > 0:
            elites, chosen = sel.select(rank, cost, size)
            if len(chosen) == 0:
                parents = self.random(size, objective.hwspace, bases, pinned, rng)
            else:
                parents = pop.take(chosen)
            children = self.breed(parents, min(size, objective.remaining), objective.hwspace,
                                  bases, pinned, rng)
            c_rank, c_cost = objective.evaluate(children.hw, children.layers)
            pop = Population.concat([pop.take(elites), children])
            rank = np.concatenate([rank[elites], c_rank])
            cost = np.concatenate([cost[elites], c_cost])
            _report(objective, on_progress)

    def random(self, n: int, hwspace: HwSpace, bases: list[MapSpace], pinned: bool,
               rng: np.random.Generator) -> Population:
        """``n`` random designs inside the budget, each with random genomes (GAMMA's: the
        shallowest depth) repaired on its PE array."""
        hw = hwspace.random(n, rng)
        pop = Population(hw, [b.random(n, rng, levels=b.min_levels) for b in bases])
        self.repair(pop, bases, pinned)
        return pop

    def breed(self, parents: Population, n: int, hwspace: HwSpace, bases: list[MapSpace],
              pinned: bool, rng: np.random.Generator) -> Population:
        """``n`` children of ``parents`` (see the module docstring for the steps)."""
        pairs = (n + 1) // 2
        a = parents.take(rng.integers(0, len(parents), pairs))
        b = parents.take(rng.integers(0, len(parents), pairs))
        self.cross_hw(a.hw, b.hw, hwspace, rng)
        for u in range(len(bases)):
            _swap_rows(a.layers[u], b.layers[u], rng.random(pairs) < self.layer_swap)
            if self.gamma.crossover is not None:
                self.gamma.crossover(a.layers[u], b.layers[u], rng)
        children = Population.concat([a, b]).take(np.arange(n))
        hwspace.mutate(children.hw, np.flatnonzero(rng.random(n) < self.hw_mutation), rng,
                       self.hw_step)
        for u, base in enumerate(bases):
            for op in self.gamma.variations:
                op(children.layers[u], base, rng)
        self.repair(children, bases, pinned)
        return children

    def cross_hw(self, a: HwGenes, b: HwGenes, hwspace: HwSpace, rng: np.random.Generator) -> None:
        """Per pair, with probability ``hw_crossover``: swap one searched hardware gene, in place."""
        hit = np.flatnonzero(rng.random(len(a)) < self.hw_crossover)
        genes = np.array(hwspace.genes)[rng.integers(0, len(hwspace.genes), len(hit))]
        ma, mb = a.matrix(), b.matrix()
        ma[hit, genes], mb[hit, genes] = mb[hit, genes], ma[hit, genes].copy()
        for g, m in ((a, ma), (b, mb)):
            g.rows[:], g.cols[:] = m[:, 0], m[:, 1]


def _setting(operators: dict[str, Any], name: str, high: float) -> float:
    """``codesign.operators.<name>``: a number in [0, ``high``] (a rate: [0, 1])."""
    unknown = [k for k in operators if k not in HW_OPERATORS]
    if unknown:
        raise GammaError(f"codesign.operators.{unknown[0]}: unknown; choose from {', '.join(HW_OPERATORS)}")
    v = operators.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= high:
        raise GammaError(f"codesign.operators.{name} = {v!r}: must be a number in [0, {high:g}]")
    return float(v)


GENOME_FIELDS = ("nlev", "par", "order", "tile", "cluster")


def _put(g: Genome, idx: np.ndarray, sub: Genome) -> None:
    """Write the individuals ``sub`` into ``g`` at ``idx``."""
    for f in GENOME_FIELDS:
        getattr(g, f)[idx] = getattr(sub, f)


def _swap_rows(a: Genome, b: Genome, mask: np.ndarray) -> None:
    """Swap the individuals of ``a`` and ``b`` where ``mask``, in place."""
    idx = np.flatnonzero(mask)
    if len(idx):
        ta = a.take(idx)
        _put(a, idx, b.take(idx))
        _put(b, idx, ta)


def _report(objective: CoDesignObjective, on_progress: ProgressCallback | None) -> None:
    if on_progress:
        on_progress(objective.used, objective.best_cost)
