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
metric (latency in cycles, or energy in nJ), or for EDP the latency total times the energy
total; it is finite only when every layer's mapping is feasible. With two or three metrics
(``objective=pareto``) the cost is a vector, the design's area (um^2) among its metrics, and the
objective keeps the :attr:`~CoDesignObjective.front` of the designs found. For selection an individual gets :class:`Scores`: whether it fits with every layer
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
from gamma.hardware import Hardware, pes_within_um2
from gamma.mapping import Mapping
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.mapspace.space import Genome
from gamma.objectives.metrics import METRICS, QUANTITIES
from gamma.objectives.nondominated import nondominated_mask
from gamma.objectives.scalar import BudgetExceeded, Objective

#: The rejection reason of a design over the area budget.
R_AREA = "area over codesign.area_mm2"
#: Individuals with a layer without a feasible mapping (counted per individual, not per layer).
R_LAYER = "a layer's mapping infeasible"
#: Metrics a co-design search can minimize: a network's latency and energy are sums over its
#: layers, its EDP their product ((sum of latency) x (sum of energy)).
CODESIGN_METRICS = ("latency", "energy", "edp")
#: The metric of ``objective=pareto`` under co-design that is the design's area (um^2, under the
#: co-design area model), not the cost model's per-layer output.
DESIGN_AREA = "area"


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
    values: tuple[float, ...] = ()  # per metric of the objective (area: um^2)


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
    area: np.ndarray  # (n,) the design's area with the buffers its mappings need (um^2)
    l1: np.ndarray  # (n,) the L1 per PE its mappings need (elements)
    l2: np.ndarray  # (n,) the L2 its mappings need (elements)

    def take(self, idx: np.ndarray) -> "Scores":
        return Scores(*(self.layer[:, idx] if f == "layer" else getattr(self, f)[idx]
                        for f in SCORE_FIELDS))

    @staticmethod
    def concat(parts: list["Scores"]) -> "Scores":
        return Scores(*(np.concatenate([getattr(p, f) for p in parts], axis=1 if f == "layer" else 0)
                        for f in SCORE_FIELDS))


#: The fields of :class:`Scores`, in order.
SCORE_FIELDS = ("rank", "raw", "excess", "layer", "fit_pes", "area", "l1", "l2")


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
    ``objectives[u]``: unique layer ``u``'s objective (its metric scores its mappings alone);
    ``counts[u]``: its selected layers; ``metrics``: the model's metrics minimized (default: the
    layers' metric; two or three: a Pareto front over them, :data:`DESIGN_AREA` the design's
    area in um^2)."""

    objectives: list[Objective]
    counts: list[int]
    hwspace: HwSpace
    base: Hardware  # bandwidths and NoC of every design
    penalty: Penalty
    metrics: tuple[str, ...] = ()
    best: Design | None = None
    #: With two or more metrics: the designs found that no other design found dominates (every
    #: layer feasible, within the budget), in the order found; :attr:`best` is the one best in
    #: the first metric (ties: the next).
    front: list[Design] = field(default_factory=list)
    #: Individuals rejected as a whole: over the area budget (the PE array alone, or with the
    #: buffers its mappings need), or with some layer's mapping infeasible.
    rejections: Counter = field(default_factory=Counter)
    #: (samples per unique layer, the model's best cost so far) after every batch.
    history: list[tuple[int, float]] = field(default_factory=list)
    #: Per design (array rows, cols) and unique layer, the best feasible mapping evaluated on
    #: that array whose buffers take at most half the area its PEs leave (:meth:`_assemble`).
    archive: dict[tuple[int, int], list["LayerBest | None"]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics) or (self.objectives[0].metric,)
        #: The per-layer quantities the metrics are built from (latency, energy).
        self.quantities = tuple(dict.fromkeys(q for m in self.metrics if m != DESIGN_AREA
                                              for q in METRICS[m].state))

    @property
    def pareto(self) -> bool:
        """Whether a cost is a vector (one value per metric)."""
        return len(self.metrics) > 1

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
        """The best design's cost in the first metric (+inf: none yet)."""
        return self.best.cost if self.best else math.inf

    def evaluate(self, hw: HwGenes, genomes: list[Genome]) -> "Scores":
        """The :class:`Scores` of every individual (a design ``hw[i]`` and ``genomes[u][i]`` per
        unique layer): its rank (the number of unique layers without a feasible mapping, 0 or 1
        here: 0 only when every layer is feasible and the design, with the buffers its mappings
        need, fits the budget; +inf when its PE array alone is over the budget), its cost before
        the area penalty (per metric: the model's value with its feasible layers, each
        infeasible layer adding ``infeasible_layer`` x its compute bound to each quantity; the
        area: the design's with the buffers its mappings need), its area's relative excess over
        the budget, each layer's mapping score (:meth:`_layer_scores`) and its fitting PEs (the
        largest PE count whose area with the buffers its mappings need fits the budget; 0:
        none). :meth:`costs` gives the penalized cost a selection ranks by. Only a design with
        rank 0 is a candidate for :attr:`best` (and :attr:`front`). Counts ``len(hw)`` samples
        on every layer."""
        n = len(hw)
        if n > self.remaining:
            raise BudgetExceeded(f"{n} evaluations asked with {self.remaining} of {self.budget} left")
        fits = self.hwspace.fits(hw)
        for o in self.objectives:
            o.count_rejected(int((~fits).sum()), R_AREA)
        U = len(self.objectives)
        per_layer = np.full((U, n), np.inf)
        quantity = {q: np.full((U, n), np.inf) for q in self.quantities}
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
                    for q, values in quantity.items():
                        values[u, idx] = np.where(feasible, QUANTITIES[q].batch(res), np.inf)
                    l1[u, idx] = np.where(feasible, res.l1_size_req, 0)
                    l2[u, idx] = np.where(feasible, res.l2_size_req, 0)
                    evals.append(res)
                for k, i in enumerate(idx):
                    where[int(i)] = (evals, k)
        need_l1 = np.maximum(1, np.ceil(l1.max(axis=0))).astype(np.int64)
        need_l2 = np.maximum(1, np.ceil(l2.max(axis=0))).astype(np.int64)
        area_um2 = self.hwspace.area_um2(hw, need_l1, need_l2)
        excess = np.maximum(0.0, area_um2 / self.hwspace.budget_um2 - 1.0)
        weights = np.array(self.counts, np.float64)[:, None]
        bad = (~np.isfinite(per_layer)).sum(axis=0)
        bound = np.ceil(np.array([o.true_macs for o in self.objectives], np.float64)[:, None]
                        / hw.pes.astype(np.float64)[None, :])
        missing = (np.where(np.isfinite(per_layer), 0.0, self.penalty.infeasible_layer * bound)
                   * weights).sum(axis=0)
        totals = {q: np.where(np.isfinite(v), v * weights, 0.0).sum(axis=0)
                  for q, v in quantity.items()}
        model = self._values(totals, area_um2)
        penalized = self._values({q: t + missing for q, t in totals.items()}, area_um2)
        ok_all = fits & (bad == 0) & (excess == 0)
        self.rejections[R_AREA] += int((~fits).sum() + (fits & (bad == 0) & (excess > 0)).sum())
        self.rejections[R_LAYER] += int((fits & (bad > 0)).sum())
        self._keep_best(hw, genomes, model, ok_all, where, need_l1, need_l2)
        self._assemble(hw, genomes, per_layer, l1, l2, where)
        self.history.append((self.used, self.best_cost))
        fit_pes = pes_within_um2(self.hwspace.budget_um2, need_l1.astype(np.float64),
                                 need_l2.astype(np.float64), self.hwspace.area)
        unfit = ~fits if penalized.ndim == 1 else ~fits[:, None]
        return Scores(rank=np.where(fits, np.where(ok_all, 0.0, 1.0), np.inf),
                      raw=np.where(unfit, np.inf, penalized), excess=excess,
                      layer=self._layer_scores(hw, per_layer, l1, l2),
                      fit_pes=np.maximum(fit_pes, 0).astype(np.int64), area=area_um2,
                      l1=need_l1, l2=need_l2)

    def _values(self, totals: dict[str, np.ndarray], area_um2: np.ndarray) -> np.ndarray:
        """Each individual's value of every metric from the model's quantities ``totals``
        (sums over its layers) and its design's area: (n,) with one metric, else (n, metrics)."""
        cols = [area_um2 if m == DESIGN_AREA else METRICS[m].of_quantities(totals)
                for m in self.metrics]
        return cols[0] if len(cols) == 1 else np.stack(cols, axis=1)

    def area_weight(self) -> float:
        """The exponent of the design-area penalty now: ``design_area`` x (samples used /
        budget)^2, gentle early and strict at the end."""
        return self.penalty.design_area * (self.used / self.budget) ** 2

    def costs(self, scores: "Scores") -> np.ndarray:
        """Each individual's cost under the area penalty of now: raw x (1 + excess)^w (every
        metric of a cost vector). Scores kept from earlier generations are ranked under the
        same, current penalty (a cost computed once, under the gentler penalty of its own time,
        would keep an early design far over the budget among the elites for good)."""
        factor = (1.0 + scores.excess) ** self.area_weight()
        return scores.raw * (factor if scores.raw.ndim == 1 else factor[:, None])

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
        (joins :attr:`front`) when it fits the budget and beats it. No sample is spent."""
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
        """The design of array ``key`` with the mappings ``entry`` becomes :attr:`best` (joins
        :attr:`front`) if it fits the budget with the buffers they need and costs less (is not
        dominated)."""
        need_l1 = max(1, max(b.l1 for b in entry))
        need_l2 = max(1, max(b.l2 for b in entry))
        genes = HwGenes(np.array([key[0]]), np.array([key[1]]))
        if not self.hwspace.fits(genes, need_l1, need_l2)[0]:
            return
        totals = {q: np.array([sum(c * float(b.outputs[QUANTITIES[q].output])
                                   for c, b in zip(self.counts, entry))])
                  for q in self.quantities}
        values = self._values(totals, self.hwspace.area_um2(genes, need_l1, need_l2))
        self._offer(values.reshape(1, -1), lambda _: (genes, need_l1, need_l2,
                                                      [b.genome for b in entry],
                                                      [b.outputs for b in entry]))

    def _keep_best(self, hw: HwGenes, genomes: list[Genome], model: np.ndarray,
                   ok_all: np.ndarray, where: dict[int, tuple[list[Any], int]], l1: np.ndarray,
                   l2: np.ndarray) -> None:
        """Offer the batch's individuals that fit with every layer feasible (``model``: their
        values) to :attr:`best` (:attr:`front`)."""
        cand = np.flatnonzero(ok_all)
        if len(cand) == 0:
            return
        if not self.pareto:  # only the batch's best can beat the best so far
            cand = cand[[int(np.argmin(model[cand]))]]

        def parts(j: int) -> tuple[Any, ...]:
            i = int(cand[j])
            evals, k = where[i]
            one = np.array([i])
            return (hw.take(one), int(l1[i]), int(l2[i]), [g.take(one) for g in genomes],
                    [res.outputs(k) for res in evals])

        self._offer(model[cand].reshape(len(cand), -1), parts)

    def _offer(self, values: np.ndarray, parts: Any) -> None:
        """Candidates with ``values`` (rows: one value per metric); ``parts(j)`` gives candidate
        ``j``'s design (genes, L1, L2, genomes, outputs). One metric: the first that costs less
        than :attr:`best` becomes it. Several: those no design of :attr:`front` or of the
        candidates dominates (nor repeats) join the front, the designs they dominate leave it,
        and :attr:`best` is the front's best in the first metric (ties: the next)."""
        if not self.pareto:
            j = int(np.argmin(values[:, 0]))
            if values[j, 0] < self.best_cost:
                self.best = self._design(values[j], *parts(j))
            return
        old = np.array([d.values for d in self.front], np.float64).reshape(-1, len(self.metrics))
        keep = nondominated_mask(np.vstack([old, values]))
        if not keep[len(old):].any():
            return
        self.front = ([d for d, k in zip(self.front, keep) if k]
                      + [self._design(values[j], *parts(j))
                         for j in np.flatnonzero(keep[len(old):])])
        self.best = min(self.front, key=lambda d: d.values)

    def _design(self, values: np.ndarray, genes: HwGenes, l1: int, l2: int, genomes: list[Genome],
                outputs: list[dict[str, float]]) -> Design:
        """The design ``genes`` (a population of one) with ``l1`` elements of L1 per PE and
        ``l2`` of L2, and the mappings ``genomes`` (one per unique layer) whose cost-model
        outputs are ``outputs``; ``values``: its value per metric."""
        design = replace(self.base, num_pes=int(genes.pes[0]), l1_size=l1, l2_size=l2)
        return Design(float(values[0]), genes, design, genomes,
                      [o.space.to_mapping(g, 0) for o, g in zip(self.objectives, genomes)],
                      outputs, self.used, tuple(float(v) for v in values))
