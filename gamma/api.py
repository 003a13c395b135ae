"""The library API: search one layer or a whole model in memory (no files, no printing, no MLflow).

    from gamma.api import search_model
    res = search_model("resnet18", "edge", system="s2", budget=2000, seed=0, layers=[2, 7])
    res.total_cost                      # cycles (the objective's unit); inf if a layer is infeasible
    res.layers[2].mapping, res.layers[2].outputs["energy_nJ"], res.layers[2].history

Settings not given come from ``conf/`` as ``python run.py`` composes them (Hydra's compose API),
so ``search_model(..., seed=s)`` finds the same mappings as ``python run.py ... seed=s``: every
unique layer shape is searched once with its own generator ``np.random.default_rng([seed,
unique_index])``. :class:`gamma.search.Job` is the shell that adds results.json, mapping files,
progress bars and MLflow around :func:`search_unique`. Units: cycles, nJ, elements, seconds.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping
from gamma.mapspace import MapSpace
from gamma.objective import Objective
from gamma.optimizers import Optimizer, ProgressCallback, make_optimizer
from gamma.pareto_objective import (PARETO, Front, ParetoObjective, adapt_config, check_metrics,
                                    is_pareto)
from gamma.workload import Layer, Model, model_from_config

#: The project's Hydra configuration (conf/config.yaml and its groups).
CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("model", "platform", "system", "optimizer", "objective")

Choice = str | dict[str, Any] | None


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
                   objective.front() if isinstance(objective, ParetoObjective) else None)


@dataclass
class ModelResult:
    """The search of a model's selected layers; layers of the same shape share one result."""

    model: Model
    hardware: Hardware
    config: dict[str, Any]  # the settings used, as run.py's composed config
    layers: dict[int, LayerResult]  # 1-based model layer index -> its shape's result
    #: objective=two_stage: both stages and the bottleneck (gamma.twostage.TwoStage); layers
    #: then hold the final (stage-2) results.
    two_stage: Any = None

    @property
    def total_cost(self) -> float:
        """Sum over the selected layers of the best cost (objective's unit); inf if any layer
        is infeasible."""
        return total_cost([r.cost for r in self.layers.values()])

    @property
    def feasible(self) -> bool:
        return all(r.feasible for r in self.layers.values())


def total_cost(costs: Sequence[float | None]) -> float:
    """Sum of per-layer best costs; inf for no layers or any infeasible (None/inf) layer."""
    if not costs or any(c is None or not math.isfinite(c) for c in costs):
        return math.inf
    return float(sum(costs))  # type: ignore[arg-type]


# --- the settings -------------------------------------------------------------------------------
def compose(overrides: Sequence[str] = ()) -> Any:
    """conf/config.yaml composed with Hydra ``overrides`` (an unresolved OmegaConf config)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return hydra_compose("config", overrides=list(overrides))


def settings(*, model: Choice = None, platform: Hardware | Choice = None,
             system: Choice = None, optimizer: Choice = None, objective: Choice = None,
             overrides: Sequence[str] = (), **keys: Any) -> dict[str, Any]:
    """A job's plain config as run.py composes it. Each group is a name from ``conf/<group>/``,
    a dict (its ``name`` picks the file, the other entries replace the file's), or None (the
    default); ``platform`` may be a :class:`Hardware`. ``keys`` are
    top-level keys (``budget``, ``seed``, ``layers``, ``guard``, ...); ``overrides`` are Hydra
    overrides as on the command line."""
    from omegaconf import OmegaConf

    choices = {"model": model, "platform": platform, "system": system, "optimizer": optimizer,
               "objective": objective}
    names, merges = [], {}
    for group, value in choices.items():
        if isinstance(value, Hardware):
            value = value.to_dict()
        if isinstance(value, str):
            names.append(f"{group}={value}")
        elif isinstance(value, dict):
            if (CONF / group / f"{value.get('name')}.yaml").is_file():
                names.append(f"{group}={value['name']}")
            merges[group] = value
        elif value is not None:
            raise GammaError(f"{group}: expected a name from conf/{group}/ or a dict, got {value!r}")
    cfg = compose([*names, *overrides])
    OmegaConf.set_struct(cfg, False)
    for group, value in merges.items():
        cfg[group] = OmegaConf.merge(cfg[group], value)
    for key, value in keys.items():
        cfg[key] = value
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf: an interpolation that does not resolve
        raise GammaError(f"config: {e}") from None
    adapt_config(plain)  # type: ignore[arg-type]
    return plain  # type: ignore[return-value]


# --- the search ---------------------------------------------------------------------------------
def optimizer_spec(cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(registered name, constructor params) from ``cfg['optimizer']``. With ``paper_mode=true``
    GAMMA runs the paper's operators only: its structure mutation (ours) is switched off."""
    opt = dict(cfg["optimizer"])
    name = str(opt.pop("name"))
    if name == "gamma" and search_rules(cfg)["paper_operators"]:
        ops = dict(opt.get("operators") or {})
        ops["structure"] = {**(ops.get("structure") or {}), "enabled": False}
        opt["operators"] = ops
    return name, opt


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


def build_setup(cfg: dict[str, Any], model: Model | None = None) -> Setup:
    """Model (``cfg['model']`` unless given), hardware and layer selection; checks the seed,
    budget and optimizer settings."""
    check_seed_budget(cfg)
    workers_of(cfg)
    search_rules(cfg)
    model = model if model is not None else model_from_config(cfg["model"])
    hw = Hardware.from_dict(cfg["platform"])
    build_optimizer(cfg)  # fail before searching
    if is_pareto(cfg):
        check_metrics((cfg["objective"] or {}).get("metrics"))
    unique, which = model.unique_layers()
    return Setup(model, hw, model.select(cfg.get("layers")), unique, which)


def search_rules(cfg: dict[str, Any]) -> dict[str, Any]:
    """The map-space and feasibility settings a job searches with: ``inner_tiles``
    (``mapspace.inner_tiles``) and ``guard``; with ``paper_mode=true`` the paper's original
    setting instead, whatever those keys say: inner tiles ``any`` (anything up to the parent
    tile) and no guard (mappings below the compute bound or their busiest PE's work, or with
    a wrong MAC count, count as feasible), on the same cost model, and ``paper_operators``: GAMMA without the operators that
    are not the paper's (:func:`optimizer_spec`). The one place paper mode is decided."""
    paper = cfg.get("paper_mode", False)
    if not isinstance(paper, bool):
        raise GammaError(f"paper_mode must be true or false, got {paper!r}")
    if paper:
        return {"inner_tiles": "any", "guard": False, "paper_operators": True}
    return {"inner_tiles": cfg["mapspace"]["inner_tiles"], "guard": bool(cfg.get("guard", True)),
            "paper_operators": False}


def make_objective(cfg: dict[str, Any], layer: Layer, hw: Hardware,
                   budget: int | None = None) -> Objective:
    """The objective of one layer: its map space under the system's level limits; at most
    ``budget`` evaluations (default ``cfg['budget']``)."""
    sysc, ms, obj = cfg["system"], cfg["mapspace"], cfg["objective"]
    rules = search_rules(cfg)
    try:
        space = MapSpace(layer, hw.num_pes, sysc["min_levels"], sysc["max_levels"],
                         tuple(ms["parallel_dims"]), rules["inner_tiles"],
                         fixed_inner_cluster=sysc.get("fixed_inner_cluster"))
    except ValueError as e:
        raise GammaError(f"map space of {layer.shape}: {e}") from None
    budget = int(cfg["budget"] if budget is None else budget)
    if obj["name"] == PARETO:
        return ParetoObjective(space, hw, budget, guard=rules["guard"],
                               metrics=obj.get("metrics"))
    return Objective(space, hw, budget, metric=obj["name"],
                     tie_break=obj.get("tie_break"), guard=rules["guard"])


def build_optimizer(cfg: dict[str, Any]) -> Optimizer:
    """A fresh optimizer of ``cfg['optimizer']``; one that cannot search a cost vector is
    refused under ``objective=pareto``."""
    name, params = optimizer_spec(cfg)
    optimizer = make_optimizer(name, **params)
    optimizer.check_search_rules(search_rules(cfg))
    if is_pareto(cfg) and not optimizer.multi_objective:
        raise GammaError(f"optimizer={name} cannot search objective=pareto (single-objective only)")
    return optimizer


def run_layer(cfg: dict[str, Any], layer: Layer, hw: Hardware, rng: np.random.Generator,
              on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search ``layer`` on ``hw`` with the settings of ``cfg`` and a fresh optimizer."""
    optimizer = build_optimizer(cfg)
    objective = make_objective(cfg, layer, hw, optimizer.evaluation_budget(int(cfg["budget"])))
    t0 = time.perf_counter()
    optimizer.optimize(objective, rng, on_progress)
    return LayerResult.from_objective(objective, time.perf_counter() - t0)


def search_unique(cfg: dict[str, Any], setup: Setup, u: int,
                  on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search unique layer ``u`` with its own generator ``default_rng([seed, u])``."""
    rng = np.random.default_rng([int(cfg["seed"]), u])
    return run_layer(cfg, setup.unique[u], setup.hw, rng, on_progress)


def workers_of(cfg: dict[str, Any]) -> int:
    """``parallel.workers``: how many unique layers a job searches at once (a positive integer)."""
    workers = (cfg.get("parallel") or {}).get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise GammaError(f"parallel.workers must be a positive integer, got {workers!r}")
    return workers


def _worker_init() -> None:
    """A pool worker leaves Ctrl-C and SIGTERM (sent to the whole process group by a terminal or
    a scheduler) to the job, which stops the pool (see :func:`search_parallel`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_job, daemon=True).start()


def _exit_with_job() -> None:
    """End this worker as soon as the job that started it ends (its sentinel pipe closes; with
    ``forkserver`` the worker's parent is the server, which lives as long as its workers): a job
    killed outright leaves no worker searching on."""
    job = multiprocessing.parent_process()
    if job is not None:
        job.join()
        os._exit(1)


def _search_in_worker(cfg: dict[str, Any], setup: Setup, u: int) -> tuple[int, LayerResult]:
    return u, search_unique(cfg, setup, u)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the pending searches and end the running ones at once (kill the workers, which
    ignore SIGTERM)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.kill()
    for p in procs:
        p.join(timeout=10)


def search_parallel(cfg: dict[str, Any], setup: Setup, todo: Sequence[int],
                    workers: int) -> Iterator[tuple[int, LayerResult]]:
    """Search the unique layers ``todo`` in ``workers`` processes; yields ``(u, result)`` as each
    finishes. Each layer has its own generator (:func:`search_unique`), so the results equal a
    serial search's. Processes start with ``parallel.start_method`` (``forkserver``: a clean
    server process with gamma and the cost model imported once; ``fork`` would copy the job's
    threads and its MLflow helper's pipes). On any exception (Ctrl-C, SIGTERM turned into one,
    a failed search) the pool is stopped: pending layers cancelled, workers terminated."""
    method = str((cfg.get("parallel") or {}).get("start_method", "forkserver"))
    try:
        ctx = multiprocessing.get_context(method)
    except ValueError:
        raise GammaError(f"parallel.start_method: unknown start method {method!r}; available: "
                         f"{', '.join(multiprocessing.get_all_start_methods())}") from None
    if method == "forkserver":  # in a sweep's joblib (loky) worker, the workers must know
        loky = [m for m in ("joblib.externals.loky",) if m in sys.modules]  # loky's start method
        ctx.set_forkserver_preload(["gamma.api", "gamma.costmodel", *loky])
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx,
                               initializer=_worker_init)
    try:
        pending: set[Future] = {pool.submit(_search_in_worker, cfg, setup, u) for u in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: f.result()[0]):
                yield f.result()
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def search_layer(layer: Layer, hardware: Hardware | Choice = None, *, optimizer: Choice = None,
                 budget: int | None = None, seed: int | Sequence[int] | None = None,
                 rng: np.random.Generator | None = None, system: Choice = None,
                 objective: Choice = None, overrides: Sequence[str] = (),
                 on_progress: ProgressCallback | None = None) -> LayerResult:
    """Search the mappings of one layer. ``hardware``: a :class:`Hardware`, a platform name
    (``edge``, ``cloud``) or None (the default platform); ``optimizer``, ``system``,
    ``objective``: names from ``conf/`` or dicts (see :func:`settings`); ``budget``:
    cost-model evaluations (default from conf/config.yaml). The generator is ``rng``, else
    ``np.random.default_rng(seed)``; a model job searches its unique layer ``u`` with
    ``seed=[seed, u]``."""
    keys = {k: v for k, v in (("budget", budget),) if v is not None}
    cfg = settings(platform=hardware, optimizer=optimizer, system=system, objective=objective,
                   overrides=overrides, **keys)
    check_seed_budget(cfg)
    hw = hardware if isinstance(hardware, Hardware) else Hardware.from_dict(cfg["platform"])
    if rng is None:
        rng = np.random.default_rng(cfg["seed"] if seed is None else seed)
    return run_layer(cfg, layer, hw, rng, on_progress)


def search_model(model: Model | str | None = None, hardware: Hardware | Choice = None, *,
                 layers: Sequence[int] | None = None, optimizer: Choice = None,
                 budget: int | None = None, seed: int | None = None, system: Choice = None,
                 objective: Choice = None, overrides: Sequence[str] = (),
                 workers: int | None = None) -> ModelResult:
    """Search every selected layer (1-based ``layers``, None = all) of ``model`` (a
    :class:`Model`, a name from conf/model/, or None for the default) on ``hardware`` (see
    :func:`search_layer`); each unique shape once, with ``default_rng([seed, unique_index])``,
    exactly as ``python run.py``. ``workers`` > 1 searches that many unique layers at once in
    worker processes (same results; default ``parallel.workers`` of conf/config.yaml)."""
    keys: dict[str, Any] = {k: v for k, v in (("budget", budget), ("seed", seed)) if v is not None}
    if layers is not None:
        keys["layers"] = list(layers)
    cfg = settings(model=None if isinstance(model, Model) else model, platform=hardware, optimizer=optimizer, system=system,
                   objective=objective, overrides=overrides, **keys)
    if workers is not None:
        cfg["parallel"] = {**(cfg.get("parallel") or {}), "workers": workers}
    setup = build_setup(cfg, model if isinstance(model, Model) else None)
    if (cfg.get("objective") or {}).get("name") == "two_stage":
        from gamma import twostage

        found2, ts = twostage.search_model(cfg, setup)
        return ModelResult(setup.model, setup.hw, cfg, found2, ts)
    n = workers_of(cfg)
    found = (dict(search_parallel(cfg, setup, setup.todo, n)) if n > 1 and len(setup.todo) > 1
             else {u: search_unique(cfg, setup, u) for u in setup.todo})
    return ModelResult(setup.model, setup.hw, cfg,
                       {i: found[setup.which[i - 1]] for i in setup.selected})
