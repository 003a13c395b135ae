"""Hardware and mapping co-design (``codesign=digamma``, docs/codesign.md): one hardware design
for the whole model, searched together with every unique layer's mapping under a hard area
budget (``codesign.area_mm2``; default: the platform's own area under the same model).

:func:`check` refuses what a co-design job cannot do; :func:`hw_space` turns the config into the
hardware genes' bounds and the budget (an impossible budget is an ``error:`` naming
``codesign.area_mm2``); :func:`search` runs the co-search; :func:`hardware_record`,
:func:`platform_record` and :func:`unique_results` give what results.json records. Units:
cycles, nJ, elements, PEs, um^2 (mm^2 where the name says so), seconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gamma.errors import GammaError, HardwareError
from gamma.hardware import (AreaModel, Hardware, area_breakdown_um2, hardware_area_um2,
                            pes_within_um2)
from gamma.limits import MAX_HARDWARE
from gamma.mapspace.cospace import CoSpace
from gamma.mapspace.hwspace import HwGenes, HwSpace
from gamma.objectives.metrics import METRICS, UNITS
from gamma.objectives.codesign import (CODESIGN_METRICS, DESIGN_AREA, CoDesignObjective, Design,
                                      Penalty)
from gamma.objectives.pareto import check_metrics
from gamma.optimizers import ProgressCallback, cannot_co_search, factory_of
from gamma.results import records as R
from gamma.search.rules import PARETO, SCALAR, search_rules
from gamma.search.setup import Setup, build_optimizer, make_objective, workers_of

#: ``codesign.name`` values.
MODES = ("off", "digamma")
UM2_PER_MM2 = 1e6


def mode(cfg: dict[str, Any]) -> str:
    """``codesign.name`` (``off`` when the group is absent)."""
    name = (cfg.get("codesign") or {}).get("name", "off")
    name = "off" if name is False else name  # YAML 1.1 reads a bare off as false
    if name not in MODES:
        raise GammaError(f"codesign = {name!r}: choose from {', '.join(MODES)}")
    return str(name)


def is_codesign(cfg: dict[str, Any]) -> bool:
    return mode(cfg) == "digamma"


def check(cfg: dict[str, Any]) -> None:
    """What a co-design job cannot have, as an ``error:`` naming the setting."""
    opt = cfg["optimizer"]["name"]
    if not getattr(factory_of(opt), "co_search", False):
        raise cannot_co_search(opt)
    metrics_of(cfg)
    if cfg.get("resume"):
        raise GammaError("resume: codesign=digamma searches every layer together; run it again "
                         "without resume")
    Penalty.from_dict(cfg["codesign"].get("penalty"))
    if workers_of(cfg) > 1:
        raise GammaError("parallel.workers: codesign=digamma searches every layer together; use "
                         "parallel.workers=1")
    hw_space(cfg)


def metrics_of(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The model's metrics a co-search minimizes: ``objective.name`` (latency, energy or edp,
    without a tie-break), or with ``objective=pareto`` the front's metrics, ``objective.metrics``
    with the design's area (:data:`DESIGN_AREA`, um^2) added when not listed; anything else an
    ``error:`` naming the setting."""
    obj = cfg["objective"]
    name = obj["name"]
    if name == PARETO:
        metrics = check_metrics(obj.get("metrics"))
        bad = [m for m in metrics if m not in (*CODESIGN_METRICS, DESIGN_AREA)]
        if bad:
            raise GammaError(f"objective.metrics = {list(metrics)!r}: codesign=digamma's front is "
                             f"over the model's {', '.join(CODESIGN_METRICS)} and the design's "
                             f"{DESIGN_AREA}, not {bad[0]}")
        metrics = metrics if DESIGN_AREA in metrics else (*metrics, DESIGN_AREA)
        if len(metrics) > 3:
            raise GammaError(f"objective.metrics = {list(obj.get('metrics'))!r}: codesign=digamma's "
                             f"front adds the design's {DESIGN_AREA}; name at most two other metrics")
        return metrics
    if name not in CODESIGN_METRICS or obj.get("tie_break"):
        raise GammaError(f"objective={name}: codesign=digamma minimizes the model's "
                         f"{', '.join(CODESIGN_METRICS)} (without a tie-break), or a front "
                         f"with objective=pareto")
    return (str(name),)


def layer_metric(metrics: tuple[str, ...]) -> str:
    """The metric a layer's mappings are scored by alone: the first of ``metrics`` that is not
    the design's area."""
    return next(m for m in metrics if m != DESIGN_AREA)


def area_model(cfg: dict[str, Any]) -> AreaModel:
    try:
        return AreaModel.from_dict(cfg["codesign"].get("area") or {})
    except HardwareError as e:
        raise GammaError(f"{e.field} = {e.value!r}: {e.reason}") from None


def platform_area_um2(cfg: dict[str, Any]) -> float:
    """The platform's own area under the co-design area model (um^2)."""
    return hardware_area_um2(Hardware.from_dict(cfg["platform"]), area_model(cfg))


def budget_um2(cfg: dict[str, Any]) -> float:
    """``codesign.area_mm2`` in um^2 (null: the platform's own area)."""
    given = cfg["codesign"].get("area_mm2")
    if given is None:
        return platform_area_um2(cfg)
    if isinstance(given, bool) or not isinstance(given, (int, float)) or not given > 0:
        raise GammaError(f"codesign.area_mm2 = {given!r}: must be a positive number (mm^2) or null")
    return float(given) * UM2_PER_MM2


def _bound(cfg: dict[str, Any], key: str, derived: float) -> int:
    """``codesign.<key>``, or (null) ``derived`` rounded down; at least 1."""
    v = cfg["codesign"].get(key)
    if v is None:
        return int(max(1, min(math.floor(derived), MAX_HARDWARE)))
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_HARDWARE:
        raise GammaError(f"codesign.{key} = {v!r}: must be a positive integer or null")
    return v


def hw_space(cfg: dict[str, Any]) -> HwSpace:
    """The hardware genes' bounds and the area budget of ``cfg``. Bounds left null are the
    largest values whose design fits the budget with every other gene at 1. A budget below the
    smallest design (one PE, one element of L1 and of L2) is an error naming
    ``codesign.area_mm2``."""
    model, budget = area_model(cfg), budget_um2(cfg)
    smallest = area_breakdown_um2(1, 1, 1, model)["total_um2"]
    if budget < smallest:
        raise GammaError(f"codesign.area_mm2 = {budget / UM2_PER_MM2:.6g}: smaller than the "
                         f"smallest design (one PE with one element of L1 and of L2: "
                         f"{smallest / UM2_PER_MM2:.6g} mm^2)")
    sram1 = float(model.sram_um2(1))
    max_pes = pes_within_um2(budget, 1, 1, model)  # L1 = L2 = 1
    grid = cfg["system"].get("name") != "s2"
    space = HwSpace(
        grid=grid,
        max_rows=_bound(cfg, "max_rows", max_pes) if grid else 1,
        max_cols=_bound(cfg, "max_cols" if grid else "max_pes", max_pes),
        max_l1=_bound(cfg, "max_l1", (budget - model.mac_um2 - sram1) / sram1),
        max_l2=_bound(cfg, "max_l2", (budget - model.mac_um2 - sram1) / sram1),
        area=model, budget_um2=budget)
    space.start = start_design(cfg, space)
    return space


def start_design(cfg: dict[str, Any], space: HwSpace) -> HwGenes:
    """The design a co-search starts from: the platform's PE array (rows x cols on S1/S3), each
    side scaled by the square root (the PE count, on S2, by the ratio) of budget / the
    platform's area when the platform is over the budget, within the genes' bounds."""
    p = cfg["platform"]
    ratio = min(1.0, space.budget_um2 / platform_area_um2(cfg))
    if space.grid:
        rows = int(p.get("array_rows") or 1) * ratio ** 0.5
        cols = int(p.get("array_cols") or p["num_pes"]) * ratio ** 0.5
    else:
        rows, cols = 1, p["num_pes"] * ratio
    return HwGenes(np.array([min(max(1, int(rows)), space.max_rows)]),
                   np.array([min(max(1, int(cols)), space.max_cols)]))


@dataclass
class CoDesignSearch:
    """A finished co-search: its objective (the best design, per-layer objectives) and time."""

    objective: CoDesignObjective
    hwspace: HwSpace
    search_s: float  # wall seconds, cost model included

    @property
    def design(self) -> Design | None:
        return self.objective.best


def search(cfg: dict[str, Any], setup: Setup,
           on_progress: ProgressCallback | None = None) -> CoDesignSearch:
    """The co-search of ``setup``'s unique layers by ``optimizer`` (its
    :meth:`~gamma.optimizers.base.Optimizer.co_optimize`) with generator
    ``default_rng(seed)``: ``budget`` individuals, i.e. ``budget`` samples per unique layer."""
    check(cfg)
    space = hw_space(cfg)
    metrics = metrics_of(cfg)
    one = layer_metric(metrics)  # the layers' own metric; a front is ranked by the co-search
    rules = replace(search_rules(cfg), kind=SCALAR, metrics=(one,))
    optimizer = build_optimizer(cfg, rules)
    pes = space.max_rows * space.max_cols
    widest = replace(setup.hw, num_pes=pes)
    flat = {**cfg, "system": {**cfg["system"], "fixed_inner_cluster": None},
            "objective": {"name": one, "tie_break": None}}
    todo = setup.todo
    objectives = [make_objective(flat, setup.unique[u], widest, rules=rules) for u in todo]
    counts = [len(setup.layers_of(u)) for u in todo]
    objective = CoDesignObjective(objectives, counts, space, setup.hw,
                                  Penalty.from_dict(cfg["codesign"].get("penalty")), metrics)
    pinned = cfg["system"].get("fixed_inner_cluster") is not None
    cospace = CoSpace(space, [o.space for o in objectives], pinned)
    rng = np.random.default_rng(int(cfg["seed"]))
    t0 = time.perf_counter()
    optimizer.co_optimize(objective, cospace, rng, on_progress,
                          operators=dict(cfg["codesign"].get("operators") or {}))
    return CoDesignSearch(objective, space, time.perf_counter() - t0)


def reported_hardware(design: Design) -> Hardware:
    """The design: its PEs, with L1 and L2 as its mappings need them."""
    return design.hw


def area_record(hw: Hardware, model: AreaModel) -> dict[str, Any]:
    """results.json ``area_mm2`` and ``area_um2`` (by part) of ``hw`` under ``model``."""
    parts = area_breakdown_um2(hw.num_pes, hw.l1_size, hw.l2_size, model)
    return {"area_mm2": parts["total_um2"] / UM2_PER_MM2,
            "area_um2": {k: round(v, 3) for k, v in parts.items()}}


def hardware_record(found: CoDesignSearch) -> dict[str, Any] | None:
    """results.json ``hardware`` of a co-design job: the design (PEs, array shape, L1, L2 as its
    mappings need them, bandwidths), its area and its breakdown."""
    return design_record(found.design, found.hwspace) if found.design is not None else None


def design_record(d: Design, space: HwSpace) -> dict[str, Any]:
    """A design as results.json records it (:func:`hardware_record`)."""
    shape = ({"array_rows": int(d.genes.rows[0]), "array_cols": int(d.genes.cols[0])}
             if space.grid else {})
    return {**d.hw.to_dict(), **shape, **area_record(d.hw, space.area)}


def front_designs(found: CoDesignSearch) -> list[Design]:
    """``objective=pareto``: the front's designs, smallest area first."""
    at = found.objective.metrics.index(DESIGN_AREA) if found.objective.pareto else 0
    return sorted(found.objective.front, key=lambda d: d.values[at])


def front_record(found: CoDesignSearch, counts: list[int]) -> dict[str, Any] | None:
    """results.json ``codesign.front`` (``objective=pareto``; None otherwise): the metrics,
    their units (the design's area in um^2) and per design of :func:`front_designs` its value
    per metric, the model's latency (cycles) and energy (nJ) summed over the selected layers
    (``counts``: selected layers per unique layer), the design (:func:`design_record`), when it
    was found (samples per unique layer) and the folder of its MAESTRO files."""
    obj = found.objective
    if not obj.pareto:
        return None
    points = []
    for k, d in enumerate(front_designs(found)):
        points.append({
            "values": list(d.values),
            "latency_cycles": float(sum(c * o["runtime_cycles"] for c, o in zip(counts, d.outputs))),
            "energy_nJ": float(sum(c * o["energy_nJ"] for c, o in zip(counts, d.outputs))),
            "hardware": design_record(d, found.hwspace), "found_at_samples": d.samples,
            "files": front_folder(k)})
    return {"metrics": list(obj.metrics), "units": [UNITS[m] for m in obj.metrics],
            "points": points}


def front_folder(k: int) -> str:
    """The folder (under the run folder) of the MAESTRO files of the front's ``k``-th design."""
    return f"mappings/front/design_{k:02d}"


def platform_record(cfg: dict[str, Any]) -> dict[str, Any]:
    """results.json ``platform_hardware`` of a co-design job: the platform's hardware and its
    area under the same model (``platform`` stays its name)."""
    hw = Hardware.from_dict(cfg["platform"])
    return {"name": cfg["platform"].get("name"), **hw.to_dict(), **area_record(hw, area_model(cfg))}


def codesign_record(cfg: dict[str, Any], found: CoDesignSearch) -> dict[str, Any]:
    """results.json ``codesign``: the mode, the budget and bounds, the model's best cost and
    its best-so-far curve (samples per unique layer, cost)."""
    s = found.hwspace
    return {"name": "digamma", "area_budget_mm2": s.budget_um2 / UM2_PER_MM2,
            "bounds": {"max_rows": s.max_rows, "max_cols": s.max_cols, "max_l1": s.max_l1,
                       "max_l2": s.max_l2},
            "best_cost": R.finite_or_none(found.objective.best_cost),
            "rejections": {k: v for k, v in found.objective.rejections.items() if v},
            "found_at_samples": found.design.samples if found.design else None,
            "samples_per_unique_layer": found.objective.used,
            "search_s": round(found.search_s, 4),
            "history": [[int(n), R.finite_or_none(c)] for n, c in found.objective.history]}


def unique_results(setup: Setup, found: CoDesignSearch) -> list[R.UniqueResult]:
    """Per unique layer what results.json records: the design's mapping and outputs, the
    layer's samples and rejections, the compute bound on the design's PEs."""
    d, out = found.design, []
    per_layer_s = found.search_s / max(1, len(setup.todo))
    for k, (u, obj) in enumerate(zip(setup.todo, found.objective.objectives)):
        summary = obj.summary()
        summary["feasible"] = d is not None
        pes = d.hw.num_pes if d is not None else setup.hw.num_pes
        summary["compute_bound_cycles"] = math.ceil(obj.layer.macs / pes)
        out.append(R.UniqueResult(
            u, obj.layer, summary, METRICS[obj.metric].of_outputs(d.outputs[k]) if d else None,
            d.outputs[k] if d else None, d.mappings[k] if d else None, [], per_layer_s))
    return out


