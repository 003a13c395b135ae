"""GAMMA's co-search of hardware and mappings (``codesign=digamma``; DiGamma, Kao et al., DATE
2022), built on GAMMA's selection and operators (:class:`~gamma.optimizers.gamma.Gamma`).

An individual is a hardware design and a genome per unique layer
(:class:`~gamma.objectives.codesign.CoDesignObjective`). One generation:

- selection of designs: GAMMA's truncation selection on the penalized model cost (elites kept
  unchanged, the best 40 % as parents; a front's cost vectors in NSGA-II's order), with half of the elite places and a place among the
  parents kept for the best designs that fit the budget with every layer feasible;
- hardware crossover: per pair of parent designs, with probability ``hw_crossover``, the two
  swap one hardware gene (rows or cols; on S2 the PE count);
- hardware mutation: per child, with probability ``hw_mutation``, one hardware gene is scaled by
  2^N(0, ``hw_step``) within its bounds;
- mappings, per unique layer: each child draws its two mapping parents from that layer's best
  mappings (by the layer's own score: its cost over its compute bound, penalized when its
  buffers alone take more than a share of the area the PEs leave) among the individuals whose
  PE count is within a factor of two of the child's (its niche); GAMMA's crossover, mutation,
  structure, reorder, growth and aging then act on them as on a single layer;
- repair of every layer's genomes on the child's own hardware (cluster sizes within its PEs; S1:
  the inner cluster pinned to its columns), by the co-design space
  (:class:`~gamma.mapspace.cospace.CoSpace`), which also draws the random individuals.

Around these: the search starts at the platform's array (``platform_start``), each generation's
first children assemble each layer's best mapping on the best arrays (``assemble``) and one is
the best fitting design grown into the area its buffers leave (``grow``).

The children are evaluated in one call of the objective, which groups them by PE count and
sizes each design's buffers to what its mappings need. A population whose every PE array is over
the area budget restarts from random individuals, as GAMMA does. docs/codesign.md
("Operators") gives the reasons and the measurements behind them.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import pes_within_um2
from gamma.mapspace.cospace import CoSpace, Population, put
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome
from gamma.objectives.codesign import CoDesignObjective, Scores
from gamma.objectives.nondominated import nondominated_mask, nsga2_order
from gamma.optimizers.base import ProgressCallback
from gamma.optimizers.operators import Crossover, Variation
from gamma.optimizers.selection import Selection, Truncation

#: The settings of ``codesign.operators`` and what they set.
HW_OPERATORS = ("hw_crossover", "hw_mutation", "hw_step", "hw_fit", "platform_start", "assemble",
                "grow")


class GaParts(Protocol):
    """What the co-search uses of a :class:`~gamma.optimizers.gamma.Gamma` (which imports this
    module for its ``co_optimize``): its population size, selection and operators."""

    population: int
    selection: Selection
    crossover: Crossover | None
    variations: list[Variation]


class CoGamma:
    """GAMMA over designs and mappings. ``gamma``: the GA whose population, selection and
    operators are used (``optimizer.*``); the hardware operators' rates from
    ``codesign.operators``."""

    def __init__(self, gamma: GaParts, operators: dict[str, Any]) -> None:
        if not isinstance(gamma.selection, Truncation) or gamma.selection.ranks_vectors:
            raise GammaError("codesign=digamma ranks one cost: use optimizer.selection.name=truncation")
        if not isinstance(operators, dict):
            raise GammaError(f"codesign.operators must be a mapping of {', '.join(HW_OPERATORS)}")
        self.gamma = gamma
        self.hw_crossover = _setting(operators, "hw_crossover", 1.0)
        self.hw_mutation = _setting(operators, "hw_mutation", 1.0)
        self.hw_step = _setting(operators, "hw_step", 64.0)
        self.hw_fit = _setting(operators, "hw_fit", 1.0)
        self.platform_start = _setting(operators, "platform_start", 1.0)
        self.assemble = _count(operators, "assemble")
        self.grow = _flag(operators, "grow")

    # --- the search ---------------------------------------------------------------------------
    def optimize(self, objective: CoDesignObjective, space: CoSpace,
                 rng: np.random.Generator, on_progress: ProgressCallback | None = None) -> None:
        """Spend the objective's budget on individuals of ``space``."""
        size = self.gamma.population
        pop = space.random(min(size, objective.remaining), rng, shallowest=True)
        self.hold_start(pop, objective, space)
        scores = objective.evaluate(pop.hw, pop.layers)
        _report(objective, on_progress)
        while objective.remaining > 0:
            elites, chosen = self.select(scores.rank, objective.costs(scores))
            n = min(size, objective.remaining)
            if len(chosen) == 0:  # every PE array over the budget: restart
                children = space.random(n, rng, shallowest=True)
                children = self.breed(children.hw, (children, np.zeros((len(space.bases), n))), n,
                                      space, rng)
            else:
                children = self.breed(self.fit_parents(pop.hw, scores.fit_pes, chosen, space.hw, rng),
                                      (pop, scores.layer), n, space, rng)
                self.assemble_best(children, pop, scores, objective.costs(scores))
                if self.grow:
                    self.grow_best(children, pop, scores, objective, space)
                    if objective.pareto:
                        self.grow_into_gap(children, pop, scores, objective, space, rng)
            self.hold_start(children, objective, space)
            new = objective.evaluate(children.hw, children.layers)
            pop = Population.concat([pop.take(elites), children])
            scores = Scores.concat([scores.take(elites), new])
            _report(objective, on_progress)

    def hold_start(self, pop: Population, objective: CoDesignObjective, space: CoSpace) -> None:
        """While the first ``platform_start`` share of the budget is spent: every design of
        ``pop`` is the start design (the platform's array, scaled into the budget), its mappings
        repaired on it; in place."""
        if objective.used < self.platform_start * objective.budget:
            space.hold_at_start(pop)

    def assemble_best(self, children: Population, pop: Population, scores: Scores,
                      cost: np.ndarray) -> None:
        """The first ``assemble`` children become, for the PE arrays of the best designs of
        ``pop`` (by ``cost``, :func:`best_first`; distinct arrays), that array with every
        layer's best mapping (by the layer's score) among the individuals on that very array:
        the per-layer elitism of GAMMA on one layer, which whole-individual selection loses; in
        place."""
        shapes = pop.hw.matrix()
        taken: list[tuple[int, int]] = []
        for i in best_first(cost):
            if len(taken) >= min(self.assemble, len(children)):
                break
            shape = (int(shapes[i, 0]), int(shapes[i, 1]))
            if shape in taken:
                continue
            k = len(taken)
            taken.append(shape)
            same = np.flatnonzero((shapes[:, 0] == shape[0]) & (shapes[:, 1] == shape[1]))
            children.hw.rows[k], children.hw.cols[k] = shape
            for u, layer in enumerate(pop.layers):
                best = same[int(np.argmin(scores.layer[u, same]))]
                put(children.layers[u], np.array([k]), layer.take(np.array([best])))

    def grow_best(self, children: Population, pop: Population, scores: Scores,
                  objective: CoDesignObjective, space: CoSpace) -> None:
        """The child after the assembled ones becomes the best design that fits (every layer
        feasible; a front: the best in the first metric) grown to the largest PE array its
        mappings' buffers leave room for within the budget (its fitting PEs; S1/S3: more
        columns), with its mappings repaired on it; no change when it has no room to grow. In
        place."""
        fits = np.flatnonzero(scores.rank == 0)
        k = self.assemble
        if len(fits) == 0 or k >= len(children):
            return
        cost = objective.costs(scores)
        best = fits[int(np.argmin(cost[fits] if cost.ndim == 1 else cost[fits, 0]))]
        if scores.fit_pes[best] <= pop.hw.pes[best]:
            return
        _grow_into(children, k, pop, best, int(scores.fit_pes[best]), space)

    def grow_into_gap(self, children: Population, pop: Population, scores: Scores,
                      objective: CoDesignObjective, space: CoSpace,
                      rng: np.random.Generator) -> None:
        """A front's search (``objective=pareto``): the child after the grown one becomes a
        design of the population's front (the fitting designs none dominates), drawn with
        probability in proportion to log(the next larger front design's area / its own; the
        largest: the budget / its own), grown to the largest PE array whose area with its
        mappings' buffers stays within that next area, its mappings repaired on it: the
        staircase of the front filled where its steps are widest. No change when no design
        can grow. In place."""
        k = self.assemble + 1
        fits = np.flatnonzero(scores.rank == 0)
        if len(fits) == 0 or k >= len(children):
            return
        front = fits[nondominated_mask(objective.costs(scores)[fits])]
        front = front[np.argsort(scores.area[front], kind="stable")]
        area = scores.area[front]
        upper = np.append(area[1:], objective.hwspace.budget_um2)
        pes = pes_within_um2(upper, scores.l1[front].astype(np.float64),
                             scores.l2[front].astype(np.float64), objective.hwspace.area)
        room = pes > pop.hw.pes[front]
        if not room.any():
            return
        weight = np.where(room, np.log(upper / np.maximum(area, 1e-9)), 0.0)
        j = int(rng.choice(len(front), p=weight / weight.sum()))
        _grow_into(children, k, pop, int(front[j]), int(pes[j]), space)

    def fit_parents(self, hw: HwGenes, fit: np.ndarray, chosen: np.ndarray, hwspace: HwSpace,
                    rng: np.random.Generator) -> HwGenes:
        """The parent designs ``chosen``; each whose mappings need more buffer than its PE count
        leaves room for is, with probability ``hw_fit``, shrunk to the largest PE array that
        would hold those buffers within the budget (a mapping-aware hardware mutation)."""
        parents = hw.take(chosen)
        over = np.flatnonzero((fit[chosen] < parents.pes) & (fit[chosen] >= 1)
                              & (rng.random(len(chosen)) < self.hw_fit))
        hwspace.resize(parents, over, fit[chosen][over])
        return parents

    def select(self, rank: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(elites, parent designs): GAMMA's truncation selection on the penalized cost (a cost
        vector: in NSGA-II's order, :func:`best_first`), with the best designs that fit (rank
        0) given half of the elite places and added to the parents, so that the best fitting
        designs survive while penalized ones keep breeding."""
        n_elites, n_parents = self.gamma.selection.counts(self.gamma.population)
        order = best_first(cost)
        elites, chosen = order[:n_elites], order[:n_parents]
        fit = np.flatnonzero(rank == 0)
        if len(fit) == 0 or len(elites) == 0:
            return elites, chosen
        best = fit[best_first(cost[fit])[: max(1, len(elites) // 2)]]
        elites = np.concatenate([best, elites[~np.isin(elites, best)]])[: len(elites)]
        return elites, np.concatenate([best, chosen[~np.isin(chosen, best)]])

    def layer_parents(self, score: np.ndarray, niche: np.ndarray, want: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        """For each entry of ``want`` (a PE-count niche), the index of a parent mapping of one
        layer: drawn uniformly from the best (by the layer's own ``score``; the parents share of
        the population, at least 2) of the individuals in that niche (PE counts within a factor
        of two), else of all individuals, else of any."""
        _, n_parents = self.gamma.selection.counts(self.gamma.population)
        ok = np.isfinite(score)
        out = np.empty(len(want), np.int64)
        best_all = np.flatnonzero(ok)
        best_all = best_all[np.argsort(score[best_all], kind="stable")[:n_parents]]
        if len(best_all) == 0:
            best_all = np.arange(len(score))
        for b in np.unique(want):
            members = np.flatnonzero(ok & (niche == b))
            pool = (members[np.argsort(score[members], kind="stable")[:n_parents]]
                    if len(members) else best_all)
            at = np.flatnonzero(want == b)
            out[at] = pool[rng.integers(0, len(pool), len(at))]
        return out

    def breed(self, hw_parents: HwGenes, scored: tuple[Population, np.ndarray], n: int,
              space: CoSpace, rng: np.random.Generator) -> Population:
        """``n`` children: designs bred from ``hw_parents`` and, per unique layer, a mapping bred
        from the best mappings of that layer in ``scored`` (a population and its (U, n) layer
        scores) on designs of the child's PE-count niche (see the module docstring)."""
        pop, score = scored
        niche = _niche(pop.hw.pes)
        pairs = (n + 1) // 2
        a = hw_parents.take(rng.integers(0, len(hw_parents), pairs))
        b = hw_parents.take(rng.integers(0, len(hw_parents), pairs))
        self.cross_hw(a, b, space.hw, rng)
        hw = HwGenes.concat([a, b]).take(np.arange(n))
        space.hw.mutate(hw, np.flatnonzero(rng.random(n) < self.hw_mutation), rng, self.hw_step)
        layers = []
        want_a, want_b = _niche(hw.pes[:pairs]), _niche(np.concatenate([hw.pes[pairs:], hw.pes[:1]])[:pairs])
        for u, base in enumerate(space.bases):
            la = pop.layers[u].take(self.layer_parents(score[u], niche, want_a, rng))
            lb = pop.layers[u].take(self.layer_parents(score[u], niche, want_b, rng))
            if self.gamma.crossover is not None:
                self.gamma.crossover(la, lb, rng)
            g = Genome.concat([la, lb]).take(np.arange(n))
            for op in self.gamma.variations:
                op(g, base, rng)
            layers.append(g)
        children = Population(hw, layers)
        space.repair(children)
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


def _flag(operators: dict[str, Any], name: str) -> bool:
    """``codesign.operators.<name>``: true or false."""
    v = operators.get(name)
    if not isinstance(v, bool):
        raise GammaError(f"codesign.operators.{name} = {v!r}: must be true or false")
    return v


def _count(operators: dict[str, Any], name: str) -> int:
    """``codesign.operators.<name>``: a non-negative integer."""
    v = operators.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise GammaError(f"codesign.operators.{name} = {v!r}: must be a non-negative integer")
    return v


def _grow_into(children: Population, k: int, pop: Population, i: int, pes: int,
               space: CoSpace) -> None:
    """Child ``k`` becomes individual ``i`` of ``pop`` on an array of at most ``pes`` PEs (S2:
    the PE count; S1/S3: more columns, rows kept), its mappings repaired on it; in place."""
    grown = pop.take(np.array([i]))
    space.hw.resize(grown.hw, np.array([0]), np.array([pes], np.int64))
    space.repair(grown)
    children.hw.rows[k], children.hw.cols[k] = grown.hw.rows[0], grown.hw.cols[0]
    for u, layer in enumerate(grown.layers):
        put(children.layers[u], np.array([k]), layer)


def best_first(cost: np.ndarray) -> np.ndarray:
    """Indices of the individuals with a finite cost, best first: by cost (ties by index), or,
    with a cost vector per row (a front's metrics), by non-dominated front and then decreasing
    crowding distance (NSGA-II's order)."""
    if cost.ndim == 2:
        return nsga2_order(cost)
    finite = np.flatnonzero(np.isfinite(cost))
    return finite[np.argsort(cost[finite], kind="stable")]


def _niche(pes: np.ndarray) -> np.ndarray:
    """The PE-count niche of each design: floor(log2(PEs))."""
    return np.floor(np.log2(np.maximum(pes, 1))).astype(np.int64)


def _report(objective: CoDesignObjective, on_progress: ProgressCallback | None) -> None:
    if on_progress:
        on_progress(objective.used, objective.best_cost)
