"""What a job searches and with what: its model, hardware and layers (:class:`Setup`), and per
unique layer a fresh objective and optimizer built under the job's rules
(:mod:`gamma.search.rules`). Units: cycles, nJ, elements, seconds."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gamma.costmodel.base import costmodel_of
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping
from gamma.mapspace.space import GDIMS, MapSpace
from gamma.objectives.pareto import Front, ParetoObjective, check_metrics
from gamma.objectives.scalar import Objective
from gamma.optimizers import Optimizer, ProgressCallback, make_optimizer
from gamma.results import records as R
from gamma.search.rules import PARETO, SearchRules, optimizer_spec, search_rules
from gamma.workloads.files import model_from_config
from gamma.workloads.layer import Layer, Model


@dataclass
class LayerResult:
    """The search of one layer shape: the best mapping found, its cost-model outputs, the
    best-so-far history."""

    layer: Layer
    cost: float  # best cost in the objective's unit (e.g. cycles); inf if nothing feasible
    mapping: Mapping | None  # None if no sampled mapping was feasible
    outputs: dict[str, float] | None  # the cost model's outputs for ``mapping``
    history: list[tuple[int, float]]  # (samples, best cost so far) on the objective's recording grid
    summary: dict[str, Any]  # Objective.summary(): samples used, rejections, compute bound, ...
    search_s: float  # wall seconds of the search, cost model included
    front: Front | None = None  # objective=pareto: the non-dominated feasible mappings found

    @property
    def feasible(self) -> bool:
        return self.mapping is not None

    @classmethod
    def from_objective(cls, objective: Objective, search_s: float) -> "LayerResult":
        best = objective.best
        return cls(objective.layer, best.cost if best else math.inf,
                   best.mapping if best else None, best.outputs if best else None,
                   objective.best_curve, objective.summary(), search_s,
                   objective.front() if objective.num_metrics > 1 else None)


def total_cost(costs: Sequence[float | None]) -> float:
    """Sum of per-layer best costs; inf for no layers or any infeasible (None/inf) layer."""
    if not costs or any(c is None or not math.isfinite(c) for c in costs):
        return math.inf
    return float(sum(costs))  # type: ignore[arg-type]


@dataclass
class Setup:
    """What a job searches: the model, the hardware and the layers."""

    model: Model
    hw: Hardware
    selected: list[int]  # 1-based model layer indices
    unique: list[Layer]  # the model's unique shapes
    which: list[int]  # per model layer (0-based), its unique index

    @property
    def todo(self) -> list[int]:
        """Unique indices to search, in order of first appearance among the selected layers."""
        return list(dict.fromkeys(self.which[i - 1] for i in self.selected))

    def layers_of(self, u: int) -> list[int]:
        return [i for i in self.selected if self.which[i - 1] == u]


def check_seed_budget(cfg: dict[str, Any]) -> None:
    """``seed`` and ``budget`` (evaluations per unique layer) are non-negative integers."""
    for key in ("seed", "budget"):
        if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or cfg[key] < 0:
            raise GammaError(f"{key} must be a non-negative integer, got {cfg.get(key)!r}")


def check_mapspace(cfg: dict[str, Any]) -> None:
    """``mapspace.parallel_dims``: a non-empty list of the genome's dims (K, C, Y, X, R, S)."""
    dims = (cfg.get("mapspace") or {}).get("parallel_dims")
    if (not isinstance(dims, (list, tuple)) or not dims
            or any(not isinstance(d, str) or d not in GDIMS for d in dims)):
        raise GammaError(f"mapspace.parallel_dims must be a non-empty list of {', '.join(GDIMS)}, "
                         f"got {dims!r}")


def build_setup(cfg: dict[str, Any], model: Model | None = None) -> Setup:
    """Model (``cfg['model']`` unless given), hardware and layer selection; checks the seed,
    budget and optimizer settings."""
    check_seed_budget(cfg)
    check_mapspace(cfg)
    workers_of(cfg)
    rules = search_rules(cfg)
    costmodel_of(rules.costmodel)
    model = model if model is not None else model_from_config(cfg["model"])
    hw = Hardware.from_dict(cfg["platform"])
    build_optimizer(cfg)  # fail before searching
    if rules.kind == PARETO:
        check_metrics((cfg["objective"] or {}).get("metrics"))
    unique, which = model.unique_layers()
    return Setup(model, hw, model.select(cfg.get("layers")), unique, which)


def make_objective(cfg: dict[str, Any], layer: Layer, hw: Hardware,
                   budget: int | None = None, rules: SearchRules | None = None) -> Objective:
    """The objective of one layer: its map space under the system's level limits and the job's
    rules (default: decided from ``cfg``); at most ``budget`` evaluations (default
    ``cfg['budget']``)."""
    sysc, ms, obj = cfg["system"], cfg["mapspace"], cfg["objective"]
    rules = rules or search_rules(cfg)
    try:
        space = MapSpace(layer, hw.num_pes, sysc["min_levels"], sysc["max_levels"],
                         tuple(ms["parallel_dims"]), rules.inner_tiles,
                         fixed_inner_cluster=sysc.get("fixed_inner_cluster"))
    except ValueError as e:
        raise GammaError(f"map space of {layer.shape}: {e}") from None
    budget = int(cfg["budget"] if budget is None else budget)
    costmodel = costmodel_of(rules.costmodel)
    if rules.kind == PARETO:
        return ParetoObjective(space, hw, budget, guard=rules.guard, costmodel=costmodel,
                               metrics=obj.get("metrics"))
    return Objective(space, hw, budget, metric=obj["name"], tie_break=obj.get("tie_break"),
                     guard=rules.guard, costmodel=costmodel)


def build_optimizer(cfg: dict[str, Any], rules: SearchRules | None = None) -> Optimizer:
    """A fresh optimizer of ``cfg['optimizer']``; one that cannot search a cost vector is
    refused under ``objective=pareto``."""
    rules = rules or search_rules(cfg)
    name, params = optimizer_spec(cfg, rules)
    optimizer = make_optimizer(name, **params)
    optimizer.check_search_rules(rules)
    if rules.num_metrics > 1 and not optimizer.multi_objective:
        raise GammaError(f"optimizer={name} cannot search objective=pareto (single-objective only)")
    return optimizer


def run_layer(cfg: dict[str, Any], layer: Layer, hw: Hardware, rng: np.random.Generator,
              on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search ``layer`` on ``hw`` with the settings of ``cfg`` and a fresh optimizer."""
    rules = search_rules(cfg)
    optimizer = build_optimizer(cfg, rules)
    objective = make_objective(cfg, layer, hw, optimizer.evaluation_budget(int(cfg["budget"])),
                               rules)
    t0 = time.perf_counter()
    optimizer.optimize(objective, rng, on_progress)
    return LayerResult.from_objective(objective, time.perf_counter() - t0)


def search_unique(cfg: dict[str, Any], setup: Setup, u: int,
                  on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search unique layer ``u`` with its own generator ``default_rng([seed, u])``."""
    rng = np.random.default_rng([int(cfg["seed"]), u])
    return run_layer(cfg, setup.unique[u], setup.hw, rng, on_progress)


def unique_result(u: int, res: LayerResult) -> R.UniqueResult:
    """What results.json records of unique layer ``u``'s search."""
    return R.UniqueResult(u, res.layer, res.summary, res.cost if res.feasible else None,
                          res.outputs, res.mapping, R.history_record(res.history), res.search_s,
                          res.front)


def workers_of(cfg: dict[str, Any]) -> int:
    """``parallel.workers``: how many unique layers a job searches at once (a positive integer)."""
    workers = (cfg.get("parallel") or {}).get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise GammaError(f"parallel.workers must be a positive integer, got {workers!r}")
    return workers
