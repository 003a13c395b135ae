"""``objective=pareto``: several metrics at once, a cost vector per mapping and an archive of the
non-dominated feasible mappings seen.

:class:`ParetoObjective` is an :class:`~gamma.objectives.scalar.Objective` (same budget, feasibility rule
and guard) whose ``evaluate_vector`` returns one row of costs per genome, one column per metric
of ``objective.metrics`` (2 or 3 of latency, energy, power, edp, area; +inf rows for infeasible
mappings). Its scalar side stays what every single-objective consumer expects: ``best`` and the
best-so-far curve are those of the first metric (ties broken by the second), i.e. the front's
extreme point in the first metric, so totals, compare.py and MLflow keep working.

The archive holds every feasible mapping no other evaluated feasible mapping dominates (equal
cost vectors: the first one found), with its cost-model outputs, mapping and the sample count
at which it was found; ``front()`` returns it sorted by the first metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamma.errors import GammaError
from gamma.mapping import Mapping
from gamma.mapspace.space import Genome
from gamma.objectives.metrics import METRICS, UNITS
from gamma.objectives.scalar import Objective
from gamma.objectives.nondominated import nondominated_mask

#: The objective's config name (``objective=pareto``).
PARETO = "pareto"


def check_metrics(metrics: Any) -> tuple[str, ...]:
    """``objective.metrics`` as a tuple: two or three distinct names of :data:`METRICS`."""
    reason = None
    if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
        reason = "must be a list of metric names"
    elif not 2 <= len(metrics) <= 3:
        reason = "must name two or three metrics"
    elif len(set(metrics)) != len(metrics):
        reason = "must not repeat a metric"
    elif any(m not in METRICS for m in metrics):
        bad = next(m for m in metrics if m not in METRICS)
        reason = f"unknown metric {bad!r}"
    if reason is not None:
        shown = list(metrics) if isinstance(metrics, tuple) else metrics
        raise GammaError(f"objective.metrics = {shown!r}: {reason}; choose two or three of "
                         f"{', '.join(METRICS)}")
    return tuple(metrics)


@dataclass
class FrontPoint:
    """One archived mapping: its cost per metric (the metrics' units), cost-model outputs,
    mapping, and the evaluations used when it was found."""

    cost: tuple[float, ...]
    outputs: dict[str, float]
    mapping: Mapping
    samples: int


@dataclass
class Front:
    """A layer's non-dominated feasible mappings, sorted by the first metric."""

    metrics: tuple[str, ...]
    points: list[FrontPoint]
    offered: int  # feasible evaluations offered to the archive
    evicted: int  # archived points later dominated by a new one


@dataclass
class ParetoObjective(Objective):
    """An objective over ``metrics`` (see the module doc). ``metric`` and ``tie_break`` are set
    from ``metrics`` (first and second)."""

    metrics: tuple[str, ...] = ("latency", "energy")
    offered: int = 0
    evicted: int = 0
    _costs: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _genomes: Genome | None = field(default=None, repr=False)
    _outputs: list[dict[str, float]] = field(default_factory=list, repr=False)
    _found: list[int] = field(default_factory=list, repr=False)
    _last: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.metrics = check_metrics(self.metrics)
        self.metric, self.tie_break = self.metrics[0], self.metrics[1]
        self.num_metrics = len(self.metrics)
        self._costs = np.zeros((0, len(self.metrics)))
        super().__post_init__()

    def evaluate_vector(self, genomes: Genome) -> np.ndarray:
        """Costs of a batch, shape (n, len(metrics)), +inf rows where infeasible; counts
        ``len(genomes)`` evaluations and updates the best record and the archive."""
        self.evaluate_with_tie_break(genomes)
        assert self._last is not None
        return self._last

    def front(self) -> Front:
        """The archive, sorted by the first metric (then the others)."""
        order = np.lexsort(self._costs.T[::-1]) if len(self._costs) else np.zeros(0, np.int64)
        points = [FrontPoint(tuple(float(c) for c in self._costs[i]), self._outputs[i],
                             self.space.to_mapping(self._genomes, int(i)), self._found[i])
                  for i in order]
        return Front(self.metrics, points, self.offered, self.evicted)

    def _observe(self, genomes: Genome, res, feasible: np.ndarray) -> None:
        n = len(genomes)
        F = np.full((n, len(self.metrics)), np.inf)
        if feasible.any():
            F[feasible] = np.stack([self._metric(res, m)[feasible] for m in self.metrics], axis=1)
        self._last = F
        idx = np.flatnonzero(feasible)
        if len(idx):
            self._archive(genomes, res, F[idx], idx, self.used - n)

    def _archive(self, genomes: Genome, res, costs: np.ndarray, idx: np.ndarray, start: int) -> None:
        """Merge the batch's feasible points (``costs`` of batch rows ``idx``; the batch began
        after ``start`` evaluations) into the archive; keep the non-dominated ones."""
        self.offered += len(idx)
        old = len(self._costs)
        keep = nondominated_mask(np.vstack([self._costs, costs]))
        self.evicted += int(old - keep[:old].sum())
        new = idx[keep[old:]]
        self._costs = np.vstack([self._costs[keep[:old]], costs[keep[old:]]])
        self._outputs = [o for o, k in zip(self._outputs, keep[:old]) if k] + [res.outputs(int(i)) for i in new]
        self._found = [s for s, k in zip(self._found, keep[:old]) if k] + [start + int(i) + 1 for i in new]
        kept = [self._genomes.take(np.flatnonzero(keep[:old]))] if self._genomes is not None else []
        self._genomes = Genome.concat(kept + [genomes.take(new)])

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["pareto_points"] = len(self._costs)
        return out


def unit_of(cfg: dict[str, Any]) -> str:
    """The unit of a job's scalar cost (``best_cost``, history): the objective's, or with
    ``objective=pareto`` the first metric's."""
    obj = cfg.get("objective") or {}
    if obj.get("name") == PARETO:
        metrics = obj.get("metrics") or []
        return UNITS.get(metrics[0], "") if metrics else ""
    return UNITS.get(obj.get("name"), "")


__all__ = ["PARETO", "ParetoObjective", "Front", "FrontPoint", "check_metrics", "unit_of"]
