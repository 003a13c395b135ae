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
feasible. For selection an individual gets :class:`Scores`: whether it fits with every layer
feasible, its cost before the area penalty (infeasible layers counted at a multiple of their
compute bound) and its area's excess, which :meth:`CoDesignObjective.costs` turns into the
penalized cost under the penalty of now; a PE array over the budget on its own ranks last
(+inf). The best design is the best individual that fits with every layer feasible, or a design
assembled from each layer's best mapping evaluated on one array (:meth:`_assemble`), whichever
costs less.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome
from gamma.objectives.scalar import BudgetExceeded, Objective

#: The rejection reason of a design over the area budget.
R_AREA = "area over codesign.area_mm2"
#: Individuals with a layer without a feasible mapping (counted per individual, not per layer).
R_LAYER = "a layer's mapping infeasible"
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
class LayerBest:
    """One unique layer's best mapping on one array (:attr:`CoDesignObjective.archive`)."""

    cost: float  # the objective's unit
    l1: int  # L1 it needs per PE (elements)
    l2: int  # L2 it needs (elements)
    genome: Genome  # a population of one
    outputs: dict[str, float]


@dataclass
class Scores:
    """What :meth:`CoDesignObjective.evaluate` says of ``n`` individuals (see there)."""

    rank: np.ndarray  # (n,) 0: fits with every layer feasible; 1: not; +inf: PE array over budget
    raw: np.ndarray  # (n,) cost before the area penalty (+inf: PE array over budget)
    excess: np.ndarray  # (n,) area over the budget, relative (0: fits)
    layer: np.ndarray  # (U, n) each layer's mapping score
    fit_pes: np.ndarray  # (n,) largest PE count the individual's buffers allow (0: none)

    def take(self, idx: np.ndarray) -> "Scores":
        return Scores(self.rank[idx], self.raw[idx], self.excess[idx], self.layer[:, idx],
                      self.fit_pes[idx])

    @staticmethod
    def concat(parts: list["Scores"]) -> "Scores":
        return Scores(*(np.concatenate([getattr(p, f) for p in parts], axis=1 if f == "layer" else 0)
                        for f in ("rank", "raw", "excess", "layer", "fit_pes")))


@dataclass(frozen=True)
class Penalty:
    """How designs and mappings that break the area budget still rank (``codesign.penalty``,
    docs/codesign.md): a design's cost is (its feasible layers' cost + ``infeasible_layer`` x
    the compute bound of each infeasible layer) x (1 + e)^w, e its area's relative excess, w
    growing as ``design_area`` x (samples used / budget)^2; a layer's mapping scores its cost
    over the compute bound x (1 + e')^``layer_area``, e' the excess of its own buffers over
    ``layer_share`` of the area the PEs leave."""

    infeasible_layer: float
    design_area: float
    layer_area: float
    layer_share: float

    @classmethod
    def from_dict(cls, data: Any) -> "Penalty":
        """From ``codesign.penalty``; each a non-negative number (``layer_share`` positive),
        else a :class:`GammaError` naming it."""
        data = data if isinstance(data, dict) else {}
        values = {}
        for name in ("infeasible_layer", "design_area", "layer_area", "layer_share"):
            v = data.get(name)
            low_ok = v > 0 if name == "layer_share" and isinstance(v, (int, float)) else True
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not low_ok:
                raise GammaError(f"codesign.penalty.{name} = {v!r}: must be a "
                                 f"{'positive' if name == 'layer_share' else 'non-negative'} number")
            values[name] = float(v)
        return cls(**values)


@dataclass
class CoDesignObjective:
    """Scores individuals (a design and a genome per unique layer) on the model's cost.
    ``objectives[u]``: unique layer ``u``'s objective; ``counts[u]``: its selected layers."""

    objectives: list[Objective]
    counts: list[int]
    hwspace: HwSpace
    base: Hardware  # bandwidths and NoC of every design
    penalty: Penalty
    best: Design | None = None
    #: Individuals rejected as a whole: over the area budget (the PE array alone, or with the
    #: buffers its mappings need), or with some layer's mapping infeasible.
    rejections: Counter = field(default_factory=Counter)
    #: (samples per unique layer, the model's best cost so far) after every batch.
    history: list[tuple[int, float]] = field(default_factory=list)
    #: Per design (array rows, cols) and unique layer, the best feasible mapping evaluated on
    #: that array whose buffers take at most half the area its PEs leave (:meth:`_assemble`).
    archive: dict[tuple[int, int], list["LayerBest | None"]] = field(default_factory=dict)

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

    def evaluate(self, hw: HwGenes, genomes: list[Genome]) -> "Scores":
        """The :class:`Scores` of every individual (a design ``hw[i]`` and ``genomes[u][i]`` per
        unique layer): its rank (the number of unique layers without a feasible mapping, 0 or 1
        here: 0 only when every layer is feasible and the design, with the buffers its mappings
        need, fits the budget; +inf when its PE array alone is over the budget), its cost before
        the area penalty (the sum of its feasible layers' costs, plus ``infeasible_layer`` x the
        compute bound of each infeasible layer), its area's relative excess over the budget, each
        layer's mapping score (:meth:`_layer_scores`) and its fitting PEs (the largest PE count
        whose area with the buffers its mappings need fits the budget; 0: none). :meth:`costs`
        gives the penalized cost a selection ranks by. Only a design with rank 0 is a candidate
        for :attr:`best`. Counts ``len(hw)`` samples on every layer."""
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
        bound = np.ceil(np.array([o.true_macs for o in self.objectives], np.float64)[:, None]
                        / hw.pes.astype(np.float64)[None, :])
        penalized = total + (np.where(np.isfinite(per_layer), 0.0,
                                      self.penalty.infeasible_layer * bound)
                             * weights).sum(axis=0)
        ok_all = fits & (bad == 0) & (excess == 0)
        self.rejections[R_AREA] += int((~fits).sum() + (fits & (bad == 0) & (excess > 0)).sum())
        self.rejections[R_LAYER] += int((fits & (bad > 0)).sum())
        self._keep_best(hw, genomes, np.where(ok_all, total, np.inf), where, need_l1, need_l2)
        self._assemble(hw, genomes, per_layer, l1, l2, where)
        self.history.append((self.used, self.best_cost))
        area = self.hwspace.area
        fit_pes = np.floor((self.hwspace.budget_um2 - area.sram_um2(need_l2.astype(np.float64)))
                           / (area.mac_um2 + area.sram_um2(need_l1.astype(np.float64))))
        return Scores(rank=np.where(fits, np.where(ok_all, 0.0, 1.0), np.inf),
                      raw=np.where(fits, penalized, np.inf), excess=excess,
                      layer=self._layer_scores(hw, per_layer, l1, l2),
                      fit_pes=np.maximum(fit_pes, 0).astype(np.int64))

    def area_weight(self) -> float:
        """The exponent of the design-area penalty now: ``design_area`` x (samples used /
        budget)^2, gentle early and strict at the end."""
        return self.penalty.design_area * (self.used / self.budget) ** 2

    def costs(self, scores: "Scores") -> np.ndarray:
        """Each individual's cost under the area penalty of now: raw x (1 + excess)^w. Scores
        kept from earlier generations are ranked under the same, current penalty (a cost
        computed once, under the gentler penalty of its own time, would keep an early design
        far over the budget among the elites for good)."""
        return scores.raw * (1.0 + scores.excess) ** self.area_weight()

    def _layer_scores(self, hw: HwGenes, per_layer: np.ndarray, l1: np.ndarray,
                      l2: np.ndarray) -> np.ndarray:
        """(U, n) each layer's mapping on its own, comparable across designs: its cost over the
        layer's compute bound on the design (latency; other metrics: the cost), times
        (1 + e)^2 where e is the relative excess of the buffers it needs alone (L1 x PEs + L2)
        over the area the design's PEs leave in the budget; +inf where infeasible."""
        pes = hw.pes.astype(np.float64)[None, :]
        if self.objectives[0].metric == "latency":
            macs = np.array([o.true_macs for o in self.objectives], np.float64)[:, None]
            norm = per_layer / np.ceil(macs / pes)
        else:
            norm = per_layer
        left = np.maximum(self.hwspace.budget_um2 - pes * self.hwspace.area.mac_um2, 1e-9)
        share = self.penalty.layer_share * left
        excess = np.maximum(0.0, self.hwspace.area.sram_um2(l1 * pes + l2) / share - 1.0)
        return norm * (1.0 + excess) ** self.penalty.layer_area

    def _assemble(self, hw: HwGenes, genomes: list[Genome], per_layer: np.ndarray, l1: np.ndarray,
                  l2: np.ndarray, where: dict[int, tuple[list[Any], int]]) -> None:
        """Update :attr:`archive` with the batch's mappings, and for every array of the batch
        consider the design assembled from each layer's best mapping on it: every mapping was
        evaluated on that very array, so the assembled design (buffers sized to the largest
        need of its mappings) is as exact as an evaluated individual; it becomes :attr:`best`
        when it fits the budget and beats it. No sample is spent."""
        area = self.hwspace.area
        pes = hw.pes.astype(np.float64)
        left = self.hwspace.budget_um2 - pes * area.mac_um2
        # at most half the area the PEs leave each: any two of them (the largest L1 and the
        # largest L2 of an assembled design) fit together
        alone = area.sram_um2(l1 * pes[None, :] + l2) <= 0.5 * left
        ok = np.isfinite(per_layer) & alone
        shapes = hw.matrix()
        for shape in np.unique(shapes[ok.any(axis=0)], axis=0):
            key = (int(shape[0]), int(shape[1]))
            idx = np.flatnonzero((shapes[:, 0] == key[0]) & (shapes[:, 1] == key[1]))
            entry = self.archive.setdefault(key, [None] * len(self.objectives))
            changed = False
            for u, g in enumerate(genomes):
                costs = np.where(ok[u, idx], per_layer[u, idx], np.inf)
                j = int(np.argmin(costs))
                if not costs[j] < (entry[u].cost if entry[u] else math.inf):
                    continue
                i = int(idx[j])
                evals, k = where[i]
                entry[u] = LayerBest(float(costs[j]), int(np.ceil(l1[u, i])), int(np.ceil(l2[u, i])),
                                     g.take(np.array([i])), evals[u].outputs(k))
                changed = True
            if changed and all(entry):
                self._consider(key, entry)

    def _consider(self, key: tuple[int, int], entry: list["LayerBest"]) -> None:
        """The design of array ``key`` with the mappings ``entry`` becomes :attr:`best` if it
        fits the budget with the buffers they need and costs less."""
        total = float(sum(c * b.cost for c, b in zip(self.counts, entry)))
        need_l1 = max(1, max(b.l1 for b in entry))
        need_l2 = max(1, max(b.l2 for b in entry))
        genes = HwGenes(np.array([key[0]]), np.array([key[1]]))
        if total < self.best_cost and self.hwspace.fits(genes, need_l1, need_l2)[0]:
            self._set_best(total, genes, need_l1, need_l2, [b.genome for b in entry],
                           [b.outputs for b in entry])

    def _keep_best(self, hw: HwGenes, genomes: list[Genome], model: np.ndarray,
                   where: dict[int, tuple[list[Any], int]], l1: np.ndarray, l2: np.ndarray) -> None:
        """Keep the batch's best individual (``model``: its cost, +inf unless every layer is
        feasible and the design fits) if it beats the best so far."""
        i = int(np.argmin(model))
        if not model[i] < self.best_cost:
            return
        evals, k = where[i]
        one = np.array([i])
        self._set_best(float(model[i]), hw.take(one), int(l1[i]), int(l2[i]),
                       [g.take(one) for g in genomes], [res.outputs(k) for res in evals])

    def _set_best(self, cost: float, genes: HwGenes, l1: int, l2: int, genomes: list[Genome],
                  outputs: list[dict[str, float]]) -> None:
        """:attr:`best` becomes the design ``genes`` (a population of one) with ``l1`` elements
        of L1 per PE and ``l2`` of L2, and the mappings ``genomes`` (one per unique layer) whose
        cost-model outputs are ``outputs``."""
        design = replace(self.base, num_pes=int(genes.pes[0]), l1_size=l1, l2_size=l2)
        self.best = Design(cost, genes, design, genomes,
                           [o.space.to_mapping(g, 0) for o, g in zip(self.objectives, genomes)],
                           outputs, self.used)