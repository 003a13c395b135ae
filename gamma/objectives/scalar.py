"""The common objective: one layer on one platform, the same scorer for every optimizer.

An optimizer hands the objective a batch of genomes; the objective decodes them, evaluates the
batch in one call of its cost model (:mod:`gamma.costmodel.base`, ``costmodel=maestro`` by
default), applies the feasibility rule, counts every evaluation against a hard budget and keeps
the best-so-far record. Optimizers never see the cost model. The hardware is the objective's
``hw`` unless a batch names its own (``evaluate(genomes, hw=...)``): capacities and the compute
bound are those of the batch's hardware.

Feasibility (a cost of +inf otherwise; each infeasible mapping is counted once, under the
first reason in this order):
- the cost model ran the mapping (no rejection),
- 1 <= L1 requirement <= L1 size and 1 <= L2 requirement <= L2 size (elements),
- runtime >= 1 cycle,
- and, with the guard on (default), the mapping does not win through a cost-model undercount:
  its runtime is at least the compute bound ceil(MACs / num_pes), its reported MAC count
  equals the layer's true K*C*R*S*Y'*X', and its runtime is at least the MACs of its own
  busiest PE (:mod:`gamma.objectives.pe_bound`), as far as the cost model declares these lower
  bounds (``CostModel.lower_bounds``; see ``docs/undercounts.md``),
- and, only when ``max_latency`` is set (stage 2 of ``objective=two_stage``), runtime <=
  ``max_latency`` cycles (the pipeline's bottleneck).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gamma.costmodel.base import (BUSIEST_PE, COMPUTE_BOUND, MAC_COUNT, CostModel, Evaluation,
                                  costmodel_of)
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping, MappingBatch
from gamma.mapspace.space import Genome, MapSpace
from gamma.objectives.metrics import METRICS
from gamma.objectives.pe_bound import busiest_pe_bound

#: The best-so-far curve is recorded at most at this many sample counts per layer.
CURVE_POINTS = 200

#: Rejection reasons, as counted in ``Objective.rejections`` and results.json.
R_COSTMODEL = "rejected by the cost model"
R_RUNTIME = "runtime < 1"
R_L1 = "L1 over capacity"
R_L2 = "L2 over capacity"
R_BOUND = "below the compute bound"
R_MACS = "MAC count differs from the layer's"
R_PE = "below its busiest PE's work"
R_LATENCY = "latency over the bottleneck"


def recording_grid(budget: int) -> np.ndarray:
    """The sample counts at which a search of ``budget`` samples records its best so far, the
    same for every optimizer: every (budget/100)-th sample, rounded up (for the MLflow UI's
    linear axis), and 100 log-spaced counts from the first sample to the last (for log-scale
    plots); at most ``CURVE_POINTS`` counts, ascending, ending with ``budget``; every sample
    when the budget is at most 100."""
    half = CURVE_POINTS // 2
    linear = np.ceil(np.arange(1, half + 1) * budget / half)
    log = np.round(np.geomspace(1, budget, half))
    return np.unique(np.concatenate([linear, log]).astype(np.int64))


class BudgetExceeded(GammaError):
    """An optimizer asked for more evaluations than the budget has left."""


@dataclass
class Best:
    """The best feasible mapping so far."""

    cost: float
    second: float
    genome: Genome | None  # a population of one; None for a mapping evaluated as such
    mapping: Mapping
    outputs: dict[str, float]
    samples: int  # evaluations used when it was found


@dataclass
class Start:
    """A mapping evaluated before the search (``Objective.evaluate_start``), where it starts."""

    genome: Genome  # a population of one
    cost: float  # +inf if infeasible
    second: float


@dataclass
class Objective:
    """Scores genomes of ``space`` for ``layer`` on ``hw``; at most ``budget`` evaluations."""

    space: MapSpace
    hw: Hardware
    budget: int = 10_000
    metric: str = "latency"
    tie_break: str | None = None
    guard: bool = True
    used: int = 0
    best: Best | None = None
    #: (evaluations used, best cost so far) after every batch.
    history: list[tuple[int, float]] = field(default_factory=list)
    #: (samples, best cost after that many samples) at every point of the recording grid
    #: reached (``recording_grid``): per sample, not per batch, so every optimizer has the same
    #: steps.
    curve: list[tuple[int, float]] = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)
    feasible_count: int = 0
    costmodel_s: float = 0.0
    #: Feasibility also needs runtime <= this many cycles (None: no such constraint).
    max_latency: float | None = None
    #: The mapping the search starts from, evaluated first (None: a search from scratch).
    start: Start | None = None
    #: Facts an optimizer adds to the layer's results.json record (e.g. exhaustive's proof).
    report: dict[str, Any] = field(default_factory=dict)
    #: The cost model (default: MAESTRO's, ``costmodel=maestro``).
    costmodel: CostModel = field(default_factory=lambda: costmodel_of("maestro"))

    #: How many metrics a cost of this objective has (1: a scalar per mapping).
    num_metrics: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        for name in (self.metric, self.tie_break):
            if name is not None and name not in METRICS:
                raise GammaError(f"unknown objective {name!r}; choose from {', '.join(METRICS)}")
        if self.budget < 1:
            raise GammaError(f"budget must be at least 1 evaluation, got {self.budget}")
        self.true_macs = self.space.layer.macs
        self.compute_bound = self.compute_bound_of(self.hw)
        self._grid = recording_grid(self.budget)

    @property
    def layer(self):
        return self.space.layer

    @property
    def best_cost(self) -> float:
        """The best feasible cost so far (+inf before any feasible mapping)."""
        return self.best.cost if self.best else math.inf

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def compute_bound_of(self, hw: Hardware) -> int:
        """ceil(the layer's MACs / ``hw``'s PEs): no mapping on ``hw`` takes fewer cycles."""
        return math.ceil(self.true_macs / hw.num_pes)

    def evaluate(self, genomes: Genome, hw: Hardware | None = None) -> np.ndarray:
        """Costs of a batch on ``hw`` (default: the objective's) (+inf where infeasible);
        counts ``len(genomes)`` evaluations."""
        return self.evaluate_with_tie_break(genomes, hw)[0]

    def evaluate_with_tie_break(self, genomes: Genome,
                                hw: Hardware | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(cost, tie-break cost) of a batch on ``hw`` (default: the objective's); the
        tie-break is 0 when none is configured. Counts ``len(genomes)`` evaluations."""
        return self.evaluate_outputs(genomes, hw)[:2]

    def evaluate_outputs(self, genomes: Genome, hw: Hardware | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Evaluation]:
        """(cost, tie-break cost, feasible, the cost model's evaluation) of a batch on ``hw``
        (default: the objective's), for a caller that needs each mapping's outputs
        (``res.outputs(i)``). Counts ``len(genomes)`` evaluations."""
        n = len(genomes)
        self._check_budget(n)
        t0 = time.perf_counter()
        batch = self.space.decode(genomes)
        res = self.costmodel.evaluate(self.layer, hw or self.hw,
                                      self.costmodel.encode(self.layer, batch))
        self.costmodel_s += time.perf_counter() - t0

        def best_of(i: int) -> tuple[Genome, Mapping]:
            g = genomes.take(np.array([i]))
            return g, self.space.to_mapping(g, 0)

        return (*self._score(res, batch, n, best_of, genomes), res)

    def count_rejected(self, n: int, reason: str) -> None:
        """Count ``n`` evaluations rejected before the cost model (e.g. a co-designed hardware
        over its area budget) under ``reason``, each costing +inf, as any evaluation."""
        if n <= 0:
            return
        self._check_budget(n)
        self.used += n
        self.rejections[reason] += n
        self._record_curve(np.full(n, np.inf))
        self.history.append((self.used, self.best_cost))

    def evaluate_mappings(self, mappings: Sequence[Mapping]) -> tuple[np.ndarray, list[str | None]]:
        """Costs of already-built mappings (+inf where infeasible), under the same feasibility
        rule and guard as genomes, and per mapping the reason it is infeasible (None if
        feasible; the first reason in the order of the module docstring, a cost-model
        rejection with the cost model's reason). Counts ``len(mappings)`` evaluations; the best
        record keeps the mapping (``Best.genome`` is None). A mapping the cost model's input
        form cannot hold (too many levels or directives) raises a :class:`GammaError`."""
        n = len(mappings)
        self._check_budget(n)
        t0 = time.perf_counter()
        try:
            encoded = self.costmodel.encode(self.layer, list(mappings))
            batch = MappingBatch.from_mappings(list(mappings))
            res = self.costmodel.evaluate(self.layer, self.hw, encoded)
        except ValueError as e:  # the cost model's encoder: a shape it cannot hold
            raise GammaError(str(e)) from None
        finally:
            self.costmodel_s += time.perf_counter() - t0
        cost, _, feasible = self._score(res, batch, n, lambda i: (None, mappings[i]))
        return cost, [None if feasible[i] else self._reason(res, batch, i) for i in range(n)]

    def _check_budget(self, n: int) -> None:
        if n > self.remaining:
            raise BudgetExceeded(f"{n} evaluations asked with {self.remaining} of {self.budget} left")

    def _score(self, res: Evaluation, batch: MappingBatch, n: int,
               best_of: Callable[[int], tuple[Genome | None, Mapping]],
               genomes: Genome | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Count the batch ``res`` of ``n`` evaluations (the mappings ``batch``), apply the
        feasibility rule and update the best record (``best_of(i)``: the genome, or None, and
        mapping of item ``i``);
        ``genomes``, when the batch came as genomes, goes to :meth:`_observe`.
        (cost, tie-break cost, feasible)."""
        self.used += n
        feasible = self._feasible(res, batch)
        cost = np.where(feasible, self._metric(res, self.metric), np.inf)
        second = (np.where(feasible, self._metric(res, self.tie_break), np.inf)
                  if self.tie_break else np.zeros(n))
        self.feasible_count += int(feasible.sum())
        if genomes is not None:
            self._observe(genomes, res, feasible)
        self._record_curve(cost)
        if feasible.any():
            i = int(np.lexsort((second, cost))[0])
            if self.best is None or (cost[i], second[i]) < (self.best.cost, self.best.second):
                g, mapping = best_of(i)
                self.best = Best(float(cost[i]), float(second[i]), g, mapping,
                                 res.outputs(i), self.used - n + i + 1)
        self.history.append((self.used, self.best_cost))
        return cost, second, feasible

    def _reason(self, res: Evaluation, batch: MappingBatch, i: int) -> str:
        """Why item ``i`` of ``res`` is infeasible: the first reason, as ``_feasible`` counts it."""
        if res.rejected[i]:
            return f"{R_COSTMODEL}: {res.verdict(i)[1]}"
        hw, rt, l1, l2 = res.hw, res.runtime[i], res.l1_size_req[i], res.l2_size_req[i]
        if rt < 1:
            return R_RUNTIME
        if l1 < 1 or l1 > hw.l1_size:
            return f"{R_L1} (needs {l1:.0f} of {hw.l1_size} elements per PE)"
        if l2 < 1 or l2 > hw.l2_size:
            return f"{R_L2} (needs {l2:.0f} of {hw.l2_size} elements)"
        bound = self.compute_bound_of(hw)
        if rt < bound and self._checks(COMPUTE_BOUND):
            return f"{R_BOUND} ({rt:.0f} < {bound} cycles)"
        if res.macs[i] != self.true_macs and self._checks(MAC_COUNT):
            return f"{R_MACS} ({res.macs[i]:.0f} vs {self.true_macs})"
        pe = busiest_pe_bound(self.layer, hw.num_pes, hw.num_simd_lanes, batch)[i]
        return f"{R_PE} ({rt:.0f} < {pe} cycles)"

    def _checks(self, bound: str) -> bool:
        """Whether the guard checks ``bound`` (on, and a lower bound the cost model declares)."""
        return self.guard and bound in self.costmodel.lower_bounds

    def evaluate_start(self, genome: Genome) -> Start:
        """Evaluate ``genome`` (a population of one; counted like any evaluation) and keep it as
        ``start``, the search's starting point (GAMMA's first generation is copies of it)."""
        cost, second = self.evaluate_with_tie_break(genome)
        self.start = Start(genome.take(np.array([0])), float(cost[0]), float(second[0]))
        return self.start

    @property
    def best_curve(self) -> list[tuple[int, float]]:
        """``curve``, ending with the samples used if the search stopped off the grid (before
        its budget)."""
        if self.used and (not self.curve or self.curve[-1][0] != self.used):
            return [*self.curve, (self.used, self.best_cost)]
        return list(self.curve)

    # --- internals ----------------------------------------------------------------------------
    def _observe(self, genomes: Genome, res, feasible: np.ndarray) -> None:
        """Called with every batch evaluated as genomes (its cost-model results and feasibility
        mask), after the budget is counted; a subclass may keep more than the best
        (``ParetoObjective``). Mappings evaluated directly (``evaluate_mappings``) skip it."""

    def _record_curve(self, cost: np.ndarray) -> None:
        """Add the grid points inside the batch just counted (``cost`` in evaluation order, the
        best record not yet updated): the best so far after each point's sample."""
        start = self.used - len(cost)
        pts = self._grid[(self._grid > start) & (self._grid <= self.used)]
        if len(pts):
            run = np.minimum(np.minimum.accumulate(cost), self.best_cost)
            self.curve += [(int(s), float(run[s - start - 1])) for s in pts]

    def _feasible(self, res: Evaluation, batch: MappingBatch) -> np.ndarray:
        ok = res.valid.copy()
        hw = res.hw
        self.rejections[R_COSTMODEL] += int(res.rejected.sum())
        ran = ~res.rejected
        rt, l1, l2 = res.runtime, res.l1_size_req, res.l2_size_req
        self.rejections[R_RUNTIME] += int((ran & (rt < 1)).sum())
        l1_bad = ran & (rt >= 1) & ((l1 < 1) | (l1 > hw.l1_size))
        self.rejections[R_L1] += int(l1_bad.sum())
        self.rejections[R_L2] += int((ran & (rt >= 1) & ~l1_bad & ((l2 < 1) | (l2 > hw.l2_size))).sum())
        if self._checks(COMPUTE_BOUND):
            below = ok & (rt < self.compute_bound_of(hw))
            self.rejections[R_BOUND] += int(below.sum())
            ok &= ~below
        if self._checks(MAC_COUNT):
            macs = ok & (res.macs != self.true_macs)
            self.rejections[R_MACS] += int(macs.sum())
            ok &= ~macs
        if self._checks(BUSIEST_PE):
            idle = ok & (rt < busiest_pe_bound(self.layer, hw.num_pes, hw.num_simd_lanes, batch, ok))
            self.rejections[R_PE] += int(idle.sum())
            ok &= ~idle
        if self.max_latency is not None:
            over = ok & (rt > self.max_latency)
            self.rejections[R_LATENCY] += int(over.sum())
            ok &= ~over
        return ok

    def _metric(self, res: Evaluation, name: str) -> np.ndarray:
        return METRICS[name].batch(res)

    def summary(self) -> dict[str, Any]:
        """What results.json records for this layer's search."""
        return {
            "samples_used": self.used,
            "feasible": self.best is not None,
            "feasible_samples": self.feasible_count,
            "rejections": {k: v for k, v in self.rejections.items() if v},
            "compute_bound_cycles": self.compute_bound,
            "costmodel_s": round(self.costmodel_s, 4),
            **({"optimizer_report": dict(self.report)} if self.report else {}),
        }


__all__ = ["Objective", "Best", "Start", "BudgetExceeded", "CURVE_POINTS", "recording_grid"]
