"""Two-stage search for a pipelined multi-accelerator (``objective=two_stage``; paper Table 6).

Every selected layer runs on its own sub-accelerator (the job's platform) and the layers form a
pipeline, so its throughput is set by the slowest layer, the *bottleneck*. The search:

1. Stage 1 minimizes latency (cycles) on every unique layer with the full ``budget``, exactly as
   ``objective=latency`` does (same generator, same settings): its results equal a latency job's.
2. The bottleneck is the largest stage-1 best latency over the selected layers (cycles, and the
   first model layer of that shape).
3. Stage 2 minimizes ``objective.stage2`` (energy in nJ or power in mW) on every unique layer with
   the full ``budget`` again, under the constraint latency <= bottleneck (one more feasibility
   rule of :class:`gamma.objectives.scalar.Objective`, counted as ``latency over the bottleneck``). Its
   first evaluation (counted) is the layer's stage-1 best, which is feasible, so stage 2 never ends
   worse than stage 1 on its metric; GAMMA then breeds its first generation from P copies of it
   (as the reference's stage 2), the other optimizers search as usual after that evaluation.

Generators: stage 1 of unique layer ``u`` uses ``default_rng([seed, u])`` (a plain job's
stream), stage 2 ``default_rng([seed, u, 2])``: independent streams, neither depending on the
other layers or on ``layers``.

Totals of a stage (results.json ``two_stage.stage1`` / ``stage2``) sum over the selected layers
(duplicates included): latency (cycles, one input through the pipeline), energy (nJ per input)
and power (mW): the sub-accelerators run at once, so the pipeline draws the sum of their
powers. Each layer's ``power`` is MAESTRO's (:mod:`gamma.costmodel.area_power`): PEs, L1 and L2
sized to the mapping's requirements, and the NoC.

If some layer has no feasible stage-1 mapping there is no bottleneck (the pipeline cannot run):
stage 2 is not run and every layer keeps its stage-1 best. ``resume`` and ``parallel.workers``
> 1 are refused (stage 2 needs every layer's stage 1 first).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gamma.errors import GammaError
from gamma.mapspace.space import Genome
from gamma.objectives.metrics import output_key
from gamma.optimizers import ProgressCallback, make_optimizer
from gamma.results import records as R
from gamma.search.rules import optimizer_spec
from gamma.search.setup import LayerResult, Setup, make_objective, workers_of

#: The metrics stage 2 may minimize.
STAGE2_METRICS = ("energy", "power")
#: The stage totals recorded in results.json (``two_stage.stage1`` / ``stage2``).
TOTAL_KEYS = {"latency_cycles": "runtime_cycles", "energy_nJ": "energy_nJ", "power": "power"}


def is_two_stage(cfg: dict[str, Any]) -> bool:
    """Whether ``cfg`` asks for the two-stage search."""
    return (cfg.get("objective") or {}).get("name") == "two_stage"


def stage2_metric(cfg: dict[str, Any]) -> str:
    """``objective.stage2`` (energy or power), or a :class:`GammaError` naming it."""
    metric = cfg["objective"].get("stage2")
    if metric not in STAGE2_METRICS:
        raise GammaError(f"objective.stage2 = {metric!r}: stage 2 minimizes one of "
                         f"{', '.join(STAGE2_METRICS)}")
    return str(metric)


def check(cfg: dict[str, Any]) -> str:
    """The settings a two-stage job cannot have; returns the stage-2 metric."""
    metric = stage2_metric(cfg)
    if cfg.get("resume"):
        raise GammaError("resume: objective=two_stage cannot be resumed (stage 2 needs every "
                         "layer's stage 1 and the bottleneck); run it again without resume")
    workers = workers_of(cfg)
    if workers > 1:
        raise GammaError(f"parallel.workers = {workers}: objective=two_stage searches one unique "
                         "layer at a time; use parallel.workers=1")
    return metric


def stage_config(cfg: dict[str, Any], stage: int) -> dict[str, Any]:
    """The job's config with the objective of ``stage``: latency (no tie-break) in stage 1,
    ``objective.stage2`` with ``objective.tie_break`` in stage 2."""
    out = copy.copy(cfg)
    if stage == 1:
        out["objective"] = {"name": "latency", "tie_break": None}
    else:
        out["objective"] = {"name": stage2_metric(cfg), "tie_break": cfg["objective"].get("tie_break")}
    return out


def stage_rng(seed: int, u: int, stage: int) -> np.random.Generator:
    """Stage 1: ``default_rng([seed, u])``, the stream of a plain job's unique layer ``u``;
    stage 2: ``default_rng([seed, u, 2])``."""
    return np.random.default_rng([int(seed), u] if stage == 1 else [int(seed), u, 2])


@dataclass
class StageResult:
    """One stage's search of one unique layer."""

    result: LayerResult
    genome: Genome | None  # the best mapping's genome (a population of one); None if infeasible


def search_stage(cfg: dict[str, Any], setup: Setup, u: int, stage: int,
                 bottleneck: float | None = None, seed_genome: Genome | None = None,
                 on_progress: ProgressCallback | None = None) -> StageResult:
    """Search unique layer ``u`` in ``stage`` (1 or 2) with a fresh optimizer; in stage 2 under
    latency <= ``bottleneck`` cycles, evaluating ``seed_genome`` first."""
    objective = make_objective(stage_config(cfg, stage), setup.unique[u], setup.hw)
    objective.max_latency = bottleneck
    name, params = optimizer_spec(cfg)
    optimizer = make_optimizer(name, **params)
    t0 = time.perf_counter()
    if seed_genome is not None:
        objective.evaluate_start(seed_genome)
    optimizer.optimize(objective, stage_rng(cfg["seed"], u, stage), on_progress)
    res = LayerResult.from_objective(objective, time.perf_counter() - t0)
    return StageResult(res, objective.best.genome if objective.best else None)


def find_bottleneck(setup: Setup, stage1: dict[int, StageResult]) -> tuple[float, int] | None:
    """(cycles, 1-based model layer) of the slowest selected layer's stage-1 best (the first such
    layer); None if some layer has no feasible stage-1 mapping."""
    worst: tuple[float, int] | None = None
    for i in setup.selected:
        res = stage1[setup.which[i - 1]].result
        if not res.feasible:
            return None
        if worst is None or res.cost > worst[0]:
            worst = (res.cost, i)
    return worst


@dataclass
class TwoStage:
    """Both stages of every unique layer and the bottleneck."""

    metric: str  # the stage-2 metric (energy | power)
    stage1: dict[int, StageResult]  # unique index -> stage-1 result
    stage2: dict[int, StageResult]  # unique index -> stage-2 result (empty without a bottleneck)
    bottleneck: tuple[float, int] | None = None  # (cycles, 1-based model layer)


class Events:
    """What a caller of :func:`search_two_stage` hears (the job: progress bars, results.json)."""

    def progress(self, stage: int, n: int, u: int) -> Any:
        """A context manager whose value is the search's progress callback (or None)."""
        return contextlib.nullcontext()

    def searched(self, ts: TwoStage, stage: int, n: int, u: int) -> None:
        """Unique layer ``u`` (the ``n``-th, from 1) finished ``stage``."""

    def stage1_done(self, ts: TwoStage) -> None:
        """Every layer finished stage 1; ``ts.bottleneck`` is set (None if infeasible)."""


def search_two_stage(cfg: dict[str, Any], setup: Setup, events: Events | None = None) -> TwoStage:
    """Stage 1 on every unique layer of ``setup.todo``, the bottleneck, then stage 2."""
    events = events or Events()
    ts = TwoStage(check(cfg), {}, {})
    for stage in (1, 2):
        if stage == 2:
            ts.bottleneck = find_bottleneck(setup, ts.stage1)
            events.stage1_done(ts)
            if ts.bottleneck is None:
                break
        for n, u in enumerate(setup.todo, 1):
            kw: dict[str, Any] = {}
            if stage == 2:
                kw = {"bottleneck": ts.bottleneck[0], "seed_genome": ts.stage1[u].genome}
            with events.progress(stage, n, u) as bar:
                res = search_stage(cfg, setup, u, stage, on_progress=bar, **kw)
            (ts.stage1 if stage == 1 else ts.stage2)[u] = res
            events.searched(ts, stage, n, u)
    return ts


def final_result(ts: TwoStage, u: int) -> LayerResult:
    """The layer's result: stage 2's, or without a bottleneck its stage-1 best scored in the
    stage-2 metric (stage 2 did not run: no samples, no history)."""
    if u in ts.stage2:
        return ts.stage2[u].result
    r1 = ts.stage1[u].result
    cost = r1.outputs[output_key(ts.metric)] if r1.outputs else math.inf
    none = {**r1.summary, "samples_used": 0, "feasible_samples": 0, "rejections": {},
            "costmodel_s": 0.0}
    return LayerResult(r1.layer, cost, r1.mapping, r1.outputs, [], none, 0.0)


def search_model(cfg: dict[str, Any], setup: Setup) -> tuple[dict[int, LayerResult], TwoStage]:
    """The library API's two-stage search (:func:`gamma.search.api.search_model`): per selected layer
    its final result, and both stages."""
    ts = search_two_stage(cfg, setup)
    return {i: final_result(ts, setup.which[i - 1]) for i in setup.selected}, ts


# --- results.json -------------------------------------------------------------------------------
def outputs_record(res: LayerResult | None) -> dict[str, Any] | None:
    """The cost model's outputs of a stage's best (JSON-safe), None if it found none."""
    if res is None or res.outputs is None:
        return None
    return {k: R.finite_or_none(v) for k, v in res.outputs.items()}


def stage1_search_record(res: LayerResult) -> dict[str, Any]:
    """What results.json keeps of a layer's stage-1 search (``layers[].stage1_search``)."""
    s = res.summary
    return {"best_cost": R.finite_or_none(res.cost), "samples_used": s["samples_used"],
            "feasible_samples": s["feasible_samples"], "rejections": s["rejections"],
            "mapping": res.mapping.to_dict() if res.mapping is not None else None,
            "history": R.history_record(res.history), "costmodel_s": s["costmodel_s"],
            "search_s": round(res.search_s, 4)}


def layer_extra(ts: TwoStage, u: int) -> dict[str, Any]:
    """The two-stage entries of a layer's record: ``stage1`` and ``stage2`` (the cost model's
    outputs of each stage's best; ``stage2`` None if stage 2 did not run) and
    ``stage1_search``."""
    r1 = ts.stage1[u].result
    r2 = ts.stage2[u].result if u in ts.stage2 else None
    return {"stage1": outputs_record(r1), "stage2": outputs_record(r2),
            "stage1_search": stage1_search_record(r1)}


def stage_totals(records: list[dict[str, Any]], stage: str) -> dict[str, Any] | None:
    """Sums over ``records`` of a stage's latency (cycles), energy (nJ), power (mW) and the part
    of the power that a mapping changes, its L1 and L2 buffers' (``l1_l2_power``, mW), and its
    slowest layer (``max_layer_latency_cycles``); None unless every layer has that stage."""
    if not records or any(r.get(stage) is None for r in records):
        return None
    out: dict[str, Any] = {k: sum(r[stage][src] for r in records) for k, src in TOTAL_KEYS.items()}
    out["l1_l2_power"] = sum(r[stage]["l1_power"] + r[stage]["l2_power"] for r in records)
    out["max_layer_latency_cycles"] = max(r[stage]["runtime_cycles"] for r in records)
    return out


def saving_percent(before: float, after: float) -> float | None:
    """How much lower ``after`` is than ``before``, in percent of ``before``."""
    return round(100.0 * (1.0 - after / before), 3) if before else None


def summary(ts: TwoStage | None, metric: str, records: list[dict[str, Any]],
            stage: int | None) -> dict[str, Any]:
    """results.json's ``two_stage`` block. ``stage``: the stage being searched (None when
    done)."""
    s1, s2 = stage_totals(records, "stage1"), stage_totals(records, "stage2")
    bott = ts.bottleneck if ts is not None else None
    out: dict[str, Any] = {
        "stage2_metric": metric, "running_stage": stage,
        "bottleneck_cycles": R.finite_or_none(bott[0]) if bott else None,
        "bottleneck_layer": bott[1] if bott else None,
        "stage1": s1, "stage2": s2, "savings_percent": None,
    }
    if s1 and s2:
        out["savings_percent"] = {k: saving_percent(s1[k], s2[k]) for k in (*TOTAL_KEYS, "l1_l2_power")}
    return out
