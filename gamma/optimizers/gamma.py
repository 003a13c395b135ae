"""GAMMA: the genetic algorithm of Kao & Krishna (ICCAD 2020), after the reference code V1
(``src/GAMMA/gamma_env.py``), with its known bugs fixed, composed from parts built from the
optimizer config (``conf/optimizer/gamma.yaml``): a selection object (``selection.py``;
truncation by default) and six operator objects (``operators.py``: the reference code's five
and our structure mutation, docs/gamma-algorithm.md section 2.8), each of which can be switched
off (``optimizer.operators.<name>.enabled=false``; it keeps its rate and is never applied).

One generation: the selection picks elites (kept unchanged, not re-evaluated; ``elite_ratio: 0``
keeps none) and a parent pool from the best feasible individuals and draws mating pairs from the
pool; crossover swaps genes within each pair (switched off: the children are copies of the drawn
parents); mutation, structure, reorder, growth and aging change the children, in that order; the
map space repairs its invariants (``MapSpace.repair``); the children are evaluated in one batch.

Bugs of the reference code (see docs/gamma-algorithm.md) and what we do:
1. ``reset_dimension`` kept the first layer's dims for mutation ranges in multi-layer runs:
   fixed (every layer gets its own map space).
2. Reorder never moved the innermost loop: fixed (all six positions).
3. Throughput objectives were always invalid: not applicable (no throughput objective).
4. Crossover and level-0 mutation could leave inner tiles larger than (or not dividing) their
   parents and cluster sizes stale: fixed by ``MapSpace.repair`` after the operators. This is
   the bug that let the original GA converge to MAESTRO's undercounts.
5. Elites were re-evaluated every generation (10,500 calls for "10K") and the random initial
   population was never scored as drawn: fixed. Generation 1 evaluates the random population,
   later generations evaluate only their children, so population x generations = the budget.
A mutated inner parallel gene recomputes its cluster size as the reference code does: the parent's
tile of the new parallel dim, within the PEs the levels above leave (an earlier version drew it
uniformly below that bound; over seeds 0-4 on ResNet-18 the reference rule gave median end-to-end
latencies 1.2 % lower on S2/edge and 8-24 % lower on the cloud platform, equal within 0.1 % on S1
and S3 edge). The V1 operator rates are kept (crossover 0.57, mutation 3 x 0.52, reorder 0.47,
growth 0.57, aging 0.27, elites 5 %). Parents are the best 40 % (the reference code's V2 value; V1
used 15 %): over 5 seeds on ResNet-18 layers 7 and 15 (S2) and 2 (S1), the worst best/bound ratio
fell from 1.262, 1.149 and 1.215 with 15 % to 1.111, 1.094 and 1.167 with 40 % (measured with the
earlier cluster draw). The initial population starts at the system's shallowest depth, as in V1,
and after an all-infeasible generation a new random population is bred by the operators (growth
included) before it is evaluated, as in V1. An objective with a start (``Objective.start``,
stage 2 of ``objective=two_stage``) replaces the random first generation by P copies of that
mapping, scored by its one evaluation, from which the operators breed the next (as the
reference's stage 2).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from gamma.errors import GammaError
from gamma.mapspace.space import Genome, MapSpace
from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback
from gamma.optimizers.operators import VARIATION_ORDER, Crossover, Variation, build_operators
from gamma.optimizers.selection import build_selection
from gamma.optimizers.settings import check_int

if TYPE_CHECKING:
    from gamma.mapspace.cospace import CoSpace
    from gamma.objectives.codesign import CoDesignObjective


class Gamma(Optimizer):
    """The GA. ``population`` individuals per generation; generations run until the objective's
    budget is spent (200 x 50 = 10,000 with the defaults). ``selection`` and ``operators`` are
    the config's ``optimizer.selection`` and ``optimizer.operators`` (missing entries take the
    defaults of the selection and operator classes, which are the config file's)."""

    name = "gamma"
    multi_objective = True

    def __init__(self, population: int = 200, selection: dict[str, Any] | None = None,
                 operators: dict[str, Any] | None = None) -> None:
        self.population = check_int("population", population, 2)
        self.selection = build_selection(selection)
        self.operators, self.enabled = build_operators(operators)
        cx = self.operators["crossover"]
        self.crossover: Crossover | None = cx if self.enabled["crossover"] else None  # type: ignore[assignment]
        self.variations: list[Variation] = [self.operators[n] for n in VARIATION_ORDER  # type: ignore[misc]
                                            if self.enabled[n]]

    co_search = True

    def co_optimize(self, objective: "CoDesignObjective", space: "CoSpace",
                    rng: np.random.Generator, on_progress: ProgressCallback | None = None,
                    operators: dict[str, Any] | None = None) -> None:
        """GAMMA's co-search (DiGamma's hardware operators, ``operators``:
        :class:`~gamma.optimizers.digamma.CoGamma`)."""
        from gamma.optimizers.digamma import CoGamma
        CoGamma(self, dict(operators or {})).optimize(objective, space, rng, on_progress)

    @classmethod
    def adapt_settings(cls, params: dict[str, Any], *, paper_mode: bool,
                       num_metrics: int) -> tuple[dict[str, Any], str | None]:
        """Paper mode: the paper's operators only (the structure mutation, ours, off). A cost
        vector: the truncation selection, which ranks one cost, becomes ``nsga2`` (same elite
        and parent shares), with a note."""
        out, note = copy.deepcopy(params), None
        if paper_mode:
            ops = dict(out.get("operators") or {})
            ops["structure"] = {**(ops.get("structure") or {}), "enabled": False}
            out["operators"] = ops
        sel = out.get("selection")
        if num_metrics > 1 and isinstance(sel, dict) and sel.get("name", "truncation") == "truncation":
            out["selection"] = {**sel, "name": "nsga2"}
            note = ("objective=pareto: GAMMA selects by non-dominated sorting and crowding distance "
                    "(optimizer.selection.name=nsga2; truncation ranks a single cost)")
        return out, note

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        space = objective.space
        if objective.num_metrics > 1 and not self.selection.ranks_vectors:
            raise GammaError(f"optimizer.selection.name={self.selection.name} cannot rank cost "
                             f"vectors (objective=pareto); use optimizer.selection.name=nsga2")
        pop, cost, second = self._fresh(objective, rng)
        self._report(objective, on_progress)
        while objective.remaining > 0:
            elites, chosen = self.selection.select(cost, second, self.population)
            if len(chosen) == 0:
                # Nothing to select from: restart from a random population, which (as in the
                # reference code) is bred by the operators before it is evaluated.
                parents = space.random(self.population, rng, levels=space.min_levels)
            else:
                parents = pop.take(chosen)
            children = self._breed(parents, min(self.population, objective.remaining), space, rng)
            c_cost, c_second = self._evaluate(objective, children)
            pop = Genome.concat([pop.take(elites), children])
            cost = np.concatenate([cost[elites], c_cost])
            second = np.concatenate([second[elites], c_second])
            self._report(objective, on_progress)

    def _breed(self, parents: Genome, n: int, space: MapSpace, rng: np.random.Generator) -> Genome:
        """``n`` children of ``parents``: mating pairs, crossover, the variations, repair."""
        a, b = self.selection.mate(parents, n, rng)
        if self.crossover is not None:
            self.crossover(a, b, rng)
        children = Genome.concat([a, b]).take(np.arange(n))
        for op in self.variations:
            op(children, space, rng)
        space.repair(children)
        return children

    def _fresh(self, objective: Objective, rng: np.random.Generator) -> tuple[Genome, np.ndarray, np.ndarray]:
        space = objective.space
        if objective.start is not None:  # a search from a given mapping (two-stage): P copies
            s = objective.start  # of it, already evaluated; the operators breed from them
            idx = np.zeros(self.population, dtype=np.intp)
            return s.genome.take(idx), np.full(self.population, s.cost), np.full(self.population, s.second)
        n = min(self.population, objective.remaining)
        pop = space.random(n, rng, levels=space.min_levels)
        cost, second = self._evaluate(objective, pop)
        return pop, cost, second

    @staticmethod
    def _evaluate(objective: Objective, genomes: Genome) -> tuple[np.ndarray, np.ndarray]:
        """(cost, tie-break) of a batch; with ``objective=pareto`` a cost vector per genome
        (n, metrics), which the ``nsga2`` selection ranks, and no tie-break."""
        if objective.num_metrics > 1:
            return objective.evaluate_vector(genomes), np.zeros(len(genomes))
        return objective.evaluate_with_tie_break(genomes)

    @staticmethod
    def _report(objective: Objective, on_progress: ProgressCallback | None) -> None:
        if on_progress:
            on_progress(objective.used, objective.best_cost)
