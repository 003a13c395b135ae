"""The co-design objective (``codesign=digamma``, docs/codesign.md): one hardware design and a
mapping of every unique layer, scored together as the model's end-to-end cost.

An individual is a hardware design (:class:`~gamma.mapspace.hwspace.HwGenes`, one row) and one
genome per unique layer. Evaluating it costs one evaluation of every unique layer's objective
(each holds the usual ``budget`` per unique layer), so a search of ``budget`` individuals spends
exactly ``budget`` samples per unique layer, hardware and mappings counted together:

- a design whose PE array alone is over the area budget is not run in the cost model; every
  layer counts the evaluation as rejected under :data:`R_AREA` (as the guard's reasons are
  counted);
- otherwise every layer's mapping is evaluated on the design's PEs by that layer's
  :class:`~gamma.objectives.scalar.Objective` (feasibility rule and guard unchanged; buffer
  capacities: the largest the budget could hold). The design then gets the L1 and L2 its
  feasible mappings need (the largest requirement of any layer), and its area with them must
  fit the budget, else the individual is rejected as a whole (:attr:`rejections`).

The model's cost is the sum over the selected layers (each unique layer times its count) of the
metric (latency in cycles, or energy in nJ); it is finite only when every layer's mapping is
feasible. For selection an individual ranks by (its number of infeasible unique layers, the
cost of its feasible ones, penalized by its area's excess over the budget); a PE array over the
budget on its own ranks last (+inf).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gamma.hardware import Hardware
from gamma.mapping import Mapping
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome
from gamma.objectives.scalar import BudgetExceeded, Objective

#: The rejection reason of a design over the area budget.
R_AREA = "area over codesign.area_mm2"
#: Individuals with a layer without a feasible mapping (counted per individual, not per layer).
R_LAYER = "a layer's mapping infeasible"
#: The exponent of the area penalty (1 + relative excess)^AREA_PENALTY on a design's cost.
AREA_PENALTY = 2
#: Metrics whose network value is the sum over layers (what a co-design search can minimize).
SUM_METRICS = ("latency", "energy")


@dataclass
class Design:
    """The best co-designed individual so far: its hardware and every unique layer's mapping."""

    cost: float  # the model's cost (objective's unit)
    genes: HwGenes  # a population of one
    hw: Hardware  # the design: its PEs, L1 and L2 as its mappings need them
    genomes: list[Genome]  # per unique layer, a population of one
    mappings: list[Mapping]
    outputs: list[dict[str, float]]  # per unique layer, the cost model's outputs
    samples: int  # samples per unique layer used when it was found


@dataclass
class CoDesignObjective:
    """Scores individuals (a design and a genome per unique layer) on the model's cost.
    ``objectives[u]``: unique layer ``u``'s objective; ``counts[u]``: its selected layers."""

    objectives: list[Objective]
    counts: list[int]
    hwspace: HwSpace
    base: Hardware  # bandwidths and NoC of every design
    best: Design | None = None
    #: Individuals rejected as a whole: over the area budget (the PE array alone, or with the
    #: buffers its mappings need), or with some layer's mapping infeasible.
    rejections: Counter = field(default_factory=Counter)
    #: (samples per unique layer, the model's best cost so far) after every batch.
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def used(self) -> int:
        return self.objectives[0].used

    @property
    def budget(self) -> int:
        return self.objectives[0].budget

    @property
    def remaining(self) -> int:
        return min(o.remaining for o in self.objectives)

    @property
    def best_cost(self) -> float:
        return self.best.cost if self.best else math.inf

    def evaluate(self, hw: HwGenes, genomes: list[Genome]) -> tuple[np.ndarray, np.ndarray]:
        """(rank, cost) per individual, for a selection that ranks by rank, then cost. Rank: its
        number of unique layers without a feasible mapping (+inf when its PE array alone is over
        the area budget). Cost: the sum of its feasible layers' costs, times (1 + e)^2 where e
        is its area's relative excess over the budget with the buffers its mappings need (0
        when it fits): a penalty, so that designs slightly over the budget still breed. Only a
        design with rank 0 that fits is a candidate for :attr:`best`. Counts ``len(hw)``
        samples on every layer."""
        n = len(hw)
        if n > self.remaining:
            raise BudgetExceeded(f"{n} evaluations asked with {self.remaining} of {self.budget} left")
        fits = self.hwspace.fits(hw)
        for o in self.objectives:
            o.count_rejected(int((~fits).sum()), R_AREA)
        U = len(self.objectives)
        per_layer = np.full((U, n), np.inf)
        l1 = np.zeros((U, n))
        l2 = np.zeros((U, n))
        where: dict[int, tuple[list[Any], int]] = {}  # individual -> its evaluations, position
        ok = np.flatnonzero(fits)
        if len(ok):
            _, group = np.unique(hw.pes[ok], return_inverse=True)
            group = group.ravel()
            for g in range(int(group.max()) + 1):
                idx = ok[group == g]
                design = self.hwspace.hardware(hw, int(idx[0]), self.base)
                evals = []
                for u, o in enumerate(self.objectives):
                    cost, _, feasible, res = o.evaluate_outputs(genomes[u].take(idx), hw=design)
                    per_layer[u, idx] = cost
                    l1[u, idx] = np.where(feasible, res.l1_size_req, 0)
                    l2[u, idx] = np.where(feasible, res.l2_size_req, 0)
                    evals.append(res)
                for k, i in enumerate(idx):
                    where[int(i)] = (evals, k)
        need_l1 = np.maximum(1, np.ceil(l1.max(axis=0))).astype(np.int64)
        need_l2 = np.maximum(1, np.ceil(l2.max(axis=0))).astype(np.int64)
        excess = np.maximum(0.0, self.hwspace.area_um2(hw, need_l1, need_l2)
                            / self.hwspace.budget_um2 - 1.0)
        weights = np.array(self.counts, np.float64)[:, None]
        bad = (~np.isfinite(per_layer)).sum(axis=0)
        total = np.where(np.isfinite(per_layer), per_layer * weights, 0.0).sum(axis=0)
        rank = np.where(fits, bad.astype(np.float64), np.inf)
        self.rejections[R_AREA] += int((~fits).sum() + (fits & (bad == 0) & (excess > 0)).sum())
        self.rejections[R_LAYER] += int((fits & (bad > 0)).sum())
        ok_all = fits & (bad == 0) & (excess == 0)
        self._keep_best(hw, genomes, np.where(ok_all, total, np.inf), where, need_l1, need_l2)
        self.history.append((self.used, self.best_cost))
        return rank, np.where(fits, total * (1.0 + excess) ** AREA_PENALTY, np.inf)

    def _keep_best(self, hw: HwGenes, genomes: list[Genome], model: np.ndarray,
                   where: dict[int, tuple[list[Any], int]], l1: np.ndarray, l2: np.ndarray) -> None:
        """Keep the batch's best individual (``model``: its cost, +inf unless every layer is
        feasible and the design fits) if it beats the best so far."""
        i = int(np.argmin(model))
        if not model[i] < self.best_cost:
            return
        evals, k = where[i]
        one = np.array([i])
        layer_genomes = [g.take(one) for g in genomes]
        design = replace(self.base, num_pes=int(hw.pes[i]), l1_size=int(l1[i]), l2_size=int(l2[i]))
        self.best = Design(
            float(model[i]), hw.take(one), design, layer_genomes,
            [o.space.to_mapping(g, 0) for o, g in zip(self.objectives, layer_genomes)],
            [res.outputs(k) for res in evals], self.used)
