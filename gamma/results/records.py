"""results.json: the record of one job, rewritten atomically after every searched layer.

Units: cycles (latency, compute bound), nJ (energy), elements (L1/L2 requirements), seconds
(``wall_s``, ``costmodel_s``, ``search_s``), evaluations (``samples_used``, history x values).
A layer's ``history`` is its best-so-far on one grid of sample counts shared by every optimizer
at a given budget (:func:`gamma.objectives.scalar.recording_grid`).
Non-finite numbers (no feasible mapping yet) are written as ``null``. With ``objective=pareto``
each layer also has ``pareto`` (its front, :func:`pareto_record`) and ``totals`` has ``pareto``
(the end-to-end front, :func:`gamma.results.pareto.end_to_end_front`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gamma.workloads.maestro_io import format_maestro_input
from gamma.mapping import Mapping
from gamma.objectives.metrics import UNITS
from gamma.objectives.scalar import Objective
from gamma.objectives.pareto import Front, ParetoObjective
from gamma.results.layout import write_text_atomic
from gamma.results.pareto import end_to_end_front, has_fronts
from gamma.workloads.layer import Layer


def finite_or_none(x: float | int | None) -> float | int | None:
    """``x`` as a JSON-safe number: ``None`` for None, NaN and +/-inf."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    x = float(x)
    return x if math.isfinite(x) else None


def history_record(curve: list[tuple[int, float]]) -> list[list]:
    """[samples, best_cost] pairs of a best-so-far curve recorded on the objective's grid
    (``Objective.best_curve``: every budget/100-th sample and 100 log-spaced counts, the same
    steps for every optimizer at one budget; at most 200 points, so no thinning)."""
    return [[int(s), finite_or_none(c)] for s, c in curve]


@dataclass
class UniqueResult:
    """The search of one unique layer shape (shared by every layer of that shape)."""

    unique_index: int  # 0-based, among the model's unique shapes
    layer: Layer
    summary: dict[str, Any]  # Objective.summary()
    best_cost: float | None  # in the objective's metric units
    outputs: dict[str, float] | None  # cost-model outputs of the best mapping
    mapping: Mapping | None
    history: list[list]  # [samples, best_cost] on the objective's recording grid
    search_s: float  # wall seconds in optimizer.optimize (cost model included)
    front: Front | None = None  # objective=pareto: the non-dominated feasible mappings

    @classmethod
    def from_objective(cls, obj: Objective, unique_index: int, search_s: float) -> "UniqueResult":
        best = obj.best
        return cls(unique_index, obj.layer, obj.summary(), best.cost if best else None,
                   best.outputs if best else None, best.mapping if best else None,
                   history_record(obj.best_curve), search_s,
                   obj.front() if isinstance(obj, ParetoObjective) else None)

    @property
    def feasible(self) -> bool:
        return self.mapping is not None


def maestro_text(index: int, res: UniqueResult, network: str = "N0") -> str | None:
    """The MAESTRO mapping file of layer ``index`` (1-based) with its best mapping, or None."""
    if res.mapping is None:
        return None
    layer = res.layer if res.layer.name else replace(res.layer, name=f"L{index:02d}")
    try:
        return format_maestro_input(layer, res.mapping, network)
    except ValueError:  # a layer/network name MAESTRO cannot read: use neutral names
        return format_maestro_input(replace(layer, name=f"L{index:02d}"), res.mapping, "N0")


def feasible_flag(res: UniqueResult) -> bool | None:
    """Whether a feasible mapping was found; None when none was and the search says it did not
    prove there is none (``optimizer=exhaustive`` stopped by a limit: ``infeasible_proven``)."""
    if res.feasible:
        return True
    return None if res.summary.get("optimizer_report", {}).get("infeasible_proven") is False else False


def below_bound(outputs: dict[str, float] | None, bound: int) -> bool | None:
    """Whether a best mapping runs in fewer cycles than the compute bound ceil(MACs / PEs): a
    MAESTRO artifact (docs/undercounts.md) that only a search without the guard (paper_mode)
    can keep. None for no feasible mapping."""
    return None if outputs is None else bool(outputs["runtime_cycles"] < bound)


def layer_record(index: int, res: UniqueResult, network: str = "N0") -> dict[str, Any]:
    """The ``layers[]`` entry of results.json for model layer ``index`` (1-based). ``shape`` is
    the layer the cost model evaluates (the optima cache's key); a GEMM-view layer also has
    ``gemm`` (its M, N, K, elements)."""
    s = res.summary
    return {
        "index": index,
        "shape": res.layer.shape,
        **({"gemm": res.layer.gemm_dims} if res.layer.gemm else {}),  # the GEMM it evaluates
        "unique_index": res.unique_index,
        "feasible": feasible_flag(res),
        "samples_used": s["samples_used"],
        "feasible_samples": s["feasible_samples"],
        "rejections": s["rejections"],
        "compute_bound_cycles": s["compute_bound_cycles"],
        "below_bound": below_bound(res.outputs, s["compute_bound_cycles"]),
        "best_cost": finite_or_none(res.best_cost),
        "best": ({k: finite_or_none(v) for k, v in res.outputs.items()}
                 if res.outputs is not None else None),
        "mapping": res.mapping.to_dict() if res.mapping is not None else None,
        "mapping_text": maestro_text(index, res, network),
        "history": res.history,
        "costmodel_s": s["costmodel_s"],
        "search_s": round(res.search_s, 4),
        **s.get("optimizer_report", {}),  # e.g. exhaustive: proven_optimal, ...
        **({"pareto": pareto_record(res.front)} if res.front is not None else {}),
    }


def pareto_record(front: Front) -> dict[str, Any]:
    """A layer's ``pareto`` in results.json: the metrics and their units, how many feasible
    evaluations were offered to the archive and how many archived points were later dominated,
    and the points sorted by the first metric, each with the cost-model outputs (keys as in
    ``best``), ``cost`` (one value per metric), ``samples`` (evaluations used when found) and
    ``mapping``."""
    return {"metrics": list(front.metrics), "units": [UNITS[m] for m in front.metrics],
            "offered": front.offered, "evicted": front.evicted,
            "points": [{**{k: finite_or_none(v) for k, v in p.outputs.items()},
                        "cost": [float(c) for c in p.cost], "samples": p.samples,
                        "mapping": p.mapping.to_dict()} for p in front.points]}


def compute_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over ``records`` (every layer, duplicates included). Latency, energy and the ratio to
    the compute bound are ``None`` when some layer has no feasible mapping."""
    bound = sum(r["compute_bound_cycles"] for r in records)
    infeasible = [r["index"] for r in records if not r["feasible"]]
    out: dict[str, Any] = {"layers": len(records), "feasible": bool(records) and not infeasible,
                           "infeasible_layers": infeasible,
                           "below_bound_layers": sum(bool(r.get("below_bound")) for r in records),
                           "latency_cycles": None,
                           "energy_nJ": None, "compute_bound_cycles": bound,
                           "ratio_to_compute_bound": None}
    if records and not infeasible:
        latency = sum(r["best"]["runtime_cycles"] for r in records)
        out["latency_cycles"] = latency
        out["energy_nJ"] = sum(r["best"]["energy_nJ"] for r in records)
        out["ratio_to_compute_bound"] = latency / bound if bound else None
        if all(r.get("optimum_cycles") is not None for r in records):  # every optimum known
            opt = sum(r["optimum_cycles"] for r in records)
            out["optimum_cycles"] = opt
            out["ratio_to_optimum"] = latency / opt if opt else None
    if has_fronts(records):
        out["pareto"] = end_to_end_front(records)
    return out


def bound_ratio_text(results: dict[str, Any]) -> str:
    """How a job's totals compare with a bound, in the job's own terms: ``ratio to the bound
    1.234x`` (latency over the compute bound, cycles) for ``objective=latency``; for other
    objectives, which have no bound of their own (the cost model's bounds are latency bounds),
    the same ratio named as the latency's: ``latency 26.924x the compute bound (no energy
    bound)``. Empty where some layer is infeasible."""
    t = results["totals"]
    ratio = t.get("ratio_to_compute_bound")
    if ratio is None:
        return ""
    objective = results.get("objective", "latency")
    if objective == "latency":
        return f"ratio to the bound {ratio:,.3f}x"
    return f"latency {ratio:,.3f}x the compute bound (no {objective} bound)"


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and an atomic rename."""
    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")
